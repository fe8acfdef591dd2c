//! The catalogue: `GET /api/v1/models` (and `/models/count`, `/models/user`), one model
//! (`/model/{author}/{slug}`, and `/models/{author}/{slug}` or `/models/{id}` with the slash
//! encoded, as the openai SDK's `models.retrieve` asks), a model's endpoints, the ZDR endpoints,
//! the providers and the embedding models. The entries themselves are rendered by
//! [`switchyard_formats::models`].

mod query;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, RawQuery, State};
use axum::Json;
use serde_json::{json, Value};
use switchyard_core::catalog::{Catalog, Endpoint, Model};
use switchyard_core::guard;
use switchyard_core::restrict::{Restriction, TrainingSettings};
use switchyard_core::routing::{matches_slug, split_variant};
use switchyard_formats::models::{architecture_json, endpoint_entry, model_entry};

use super::parse_count;
use crate::error::ApiError;
use crate::state::{Authenticated, SharedState};
pub use query::ModelsQuery;

type ModelsQueryResult = Result<Query<ModelsQuery>, QueryRejection>;

/// The query, or a 400 naming what is wrong with it.
fn read_query(query: ModelsQueryResult) -> Result<ModelsQuery, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| ApiError::bad_request(format!("Invalid query: {}", e.body_text())))
}

/// The models `query` selects, in its order.
fn select<'a>(
    state: &SharedState,
    catalog: &'a Catalog,
    selection: &query::Selection,
    also: impl Fn(&Model) -> bool,
) -> Vec<&'a Model> {
    let now = state.now_ms();
    let mut selected: Vec<&Model> = catalog
        .models()
        .iter()
        .filter(|m| selection.admits(catalog, m, now) && also(m))
        .collect();
    selection.order(&mut selected, |m| {
        m.endpoints
            .iter()
            .map(|e| state.health.stats(&m.id, &e.tag, now))
            .collect()
    });
    selected
}

/// A page of models as the contract's list: `data`, `links.next` (only while models remain,
/// so that following it ends; with the request's other parameters, so that the next page is of
/// the same selection) and `total_count`.
fn page(
    catalog: &Catalog,
    selected: &[&Model],
    selection: &query::Selection,
    path: &str,
    raw_query: Option<&str>,
) -> Value {
    let total = selected.len();
    let offset = selection.offset;
    let data: Vec<Value> = selected
        .iter()
        .skip(offset)
        .take(selection.limit.unwrap_or(usize::MAX))
        .map(|m| model_entry(catalog, m))
        .collect();
    let next = selection.limit.and_then(|l| {
        let next = offset.saturating_add(l);
        let kept: String = raw_query
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("offset=") && !p.starts_with("limit="))
            .map(|p| format!("{p}&"))
            .collect();
        (next < total).then(|| format!("{path}?{kept}offset={next}&limit={l}"))
    });
    json!({"data": data, "links": {"next": next}, "total_count": total})
}

/// `GET /api/v1/models`.
pub async fn list(
    State(state): State<SharedState>,
    RawQuery(raw): RawQuery,
    query: ModelsQueryResult,
) -> Result<Json<Value>, ApiError> {
    let selection = read_query(query)?.selection()?;
    let catalog = state.catalog();
    let selected = select(&state, &catalog, &selection, |_| true);
    Ok(Json(page(
        &catalog,
        &selected,
        &selection,
        "/api/v1/models",
        raw.as_deref(),
    )))
}

/// `GET /api/v1/models/count`: how many models the same filters select.
pub async fn count(
    State(state): State<SharedState>,
    query: ModelsQueryResult,
) -> Result<Json<Value>, ApiError> {
    let selection = read_query(query)?.selection()?;
    let catalog = state.catalog();
    let n = select(&state, &catalog, &selection, |_| true).len();
    Ok(Json(json!({"data": {"count": n}})))
}

/// Whether the calling key's account settings and guardrail let some endpoint of `m` serve it.
fn usable(
    catalog: &Catalog,
    m: &Model,
    settings: &crate::settings::AccountSettings,
    guardrail: Option<&guard::Effective>,
) -> bool {
    let training = TrainingSettings {
        allow_paid: settings.allow_training_paid,
        allow_free: settings.allow_training_free,
    };
    let allowed = |e: &Endpoint| {
        let Some(p) = catalog.provider(&e.provider) else {
            return false;
        };
        let listed = |list: &[String]| list.iter().any(|s| matches_slug(s, e));
        settings.allowed_providers.as_deref().is_none_or(listed)
            && !listed(&settings.ignored_providers)
            && (!settings.zdr_only || p.data_policy.zdr)
            && training.refuses(&m.id, p, e).is_none()
            && guardrail.is_none_or(|g| g.refuses(&m.id, p, e).is_none())
    };
    m.endpoints.iter().any(allowed)
}

/// `GET /api/v1/models/user`: the models the calling key may use, under its account's data
/// settings and its guardrail (a standard key; a management key does no inference).
pub async fn user(
    State(state): State<SharedState>,
    auth: Authenticated,
    RawQuery(raw): RawQuery,
    query: ModelsQueryResult,
) -> Result<Json<Value>, ApiError> {
    if auth.key.is_management {
        return Err(ApiError::forbidden(
            "A management key does no inference: list a standard key's models with that key",
        ));
    }
    let selection = read_query(query)?.selection()?;
    let settings = state
        .settings
        .get(&state.store, &auth.key.account_id)
        .await?;
    let compiled = state
        .guardrails
        .for_key(&state.store, &auth.key.hash)
        .await?;
    let effective = compiled
        .as_ref()
        .map(|g| guard::Effective::layer(&g.guardrail));
    let catalog = state.catalog();
    let selected = select(&state, &catalog, &selection, |m| {
        usable(&catalog, m, &settings, effective.as_ref())
    });
    Ok(Json(page(
        &catalog,
        &selected,
        &selection,
        "/api/v1/models/user",
        raw.as_deref(),
    )))
}

/// A model by `author/slug` (a variant suffix such as `:free` is ignored) or alias; a 404 in
/// the contract's envelope when the catalogue has none.
fn find<'a>(catalog: &'a Catalog, name: &str) -> Result<&'a Model, ApiError> {
    let (base, _) = split_variant(name);
    catalog
        .model(base)
        .ok_or_else(|| ApiError::not_found(format!("Model {} not found", shown(name))))
}

/// A name from a path, cut short for an error message.
fn shown(name: &str) -> String {
    name.chars().take(200).collect()
}

/// `GET /api/v1/model/{author}/{slug}`: `{data: Model}`.
pub async fn one(
    State(state): State<SharedState>,
    Path((author, slug)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let catalog = state.catalog();
    let model = find(&catalog, &format!("{author}/{slug}"))?;
    Ok(Json(json!({"data": model_entry(&catalog, model)})))
}

/// The model as OpenAI's `GET /models/{model}` answers (`id`, `object`, `created`,
/// `owned_by`), with the contract's model entry's members beside them.
fn retrieved(catalog: &Catalog, model: &Model) -> Value {
    let mut entry = model_entry(catalog, model);
    entry["object"] = json!("model");
    entry["owned_by"] = json!(model.author());
    entry
}

/// `GET /api/v1/models/{author}/{slug}`.
pub async fn retrieve(
    State(state): State<SharedState>,
    Path((author, slug)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let catalog = state.catalog();
    let model = find(&catalog, &format!("{author}/{slug}"))?;
    Ok(Json(retrieved(&catalog, model)))
}

/// `GET /api/v1/models/{id}`: the id with its slash URL-encoded (`openai%2Fgpt-4o`), or an
/// alias (`gpt-4o`).
pub async fn retrieve_encoded(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let catalog = state.catalog();
    let model = find(&catalog, &id)?;
    Ok(Json(retrieved(&catalog, model)))
}

/// A model's endpoint as the endpoints lists show it, with its measured performance.
fn endpoint_json(state: &SharedState, catalog: &Catalog, m: &Model, e: &Endpoint) -> Value {
    let name = catalog
        .provider(&e.provider)
        .map_or(e.provider.as_str(), |p| p.name.as_str());
    let stats = state.health.stats(&m.id, &e.tag, state.now_ms());
    endpoint_entry(catalog, m, e, name, &stats)
}

/// `GET /api/v1/models/{author}/{slug}/endpoints`.
pub async fn endpoints(
    State(state): State<SharedState>,
    Path((author, slug)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let catalog = state.catalog();
    let model = find(&catalog, &format!("{author}/{slug}"))?;
    let endpoints: Vec<Value> = model
        .endpoints
        .iter()
        .map(|e| endpoint_json(&state, &catalog, model, e))
        .collect();
    Ok(Json(json!({"data": {
        "id": model.id,
        "name": model.name,
        "created": model.created,
        "description": model.description,
        "architecture": architecture_json(model),
        "endpoints": endpoints,
    }})))
}

/// `GET /api/v1/endpoints/zdr`: every endpoint whose provider keeps no data.
pub async fn zdr_endpoints(State(state): State<SharedState>) -> Json<Value> {
    let catalog = state.catalog();
    let data: Vec<Value> = catalog
        .models()
        .iter()
        .flat_map(|m| m.endpoints.iter().map(move |e| (m, e)))
        .filter(|(_, e)| {
            catalog
                .provider(&e.provider)
                .is_some_and(|p| p.data_policy.zdr)
        })
        .map(|(m, e)| endpoint_json(&state, &catalog, m, e))
        .collect();
    Json(json!({ "data": data }))
}

/// `GET /api/v1/providers`.
pub async fn providers(State(state): State<SharedState>) -> Json<Value> {
    let catalog = state.catalog();
    let data: Vec<Value> = catalog
        .providers()
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "slug": p.slug,
                "privacy_policy_url": p.privacy_policy_url,
                "terms_of_service_url": p.terms_of_service_url,
                "status_page_url": p.status_page_url,
                "headquarters": p.headquarters,
                "datacenters": p.datacenters,
            })
        })
        .collect();
    Json(json!({"data": data}))
}

/// Query of `GET /api/v1/embeddings/models`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingModelsQuery {
    /// Models skipped.
    offset: Option<String>,
    /// Most models returned.
    limit: Option<String>,
}

/// `GET /api/v1/embeddings/models`: the catalogue's embedding models.
pub async fn embedding_models(
    State(state): State<SharedState>,
    query: Result<Query<EmbeddingModelsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::bad_request(format!("Invalid query: {}", e.body_text())))?;
    let offset = parse_count("offset", &query.offset, usize::MAX)?.unwrap_or(0);
    let limit = match parse_count("limit", &query.limit, 1000)? {
        Some(0) => return Err(ApiError::bad_request("limit must be between 1 and 1000")),
        other => other,
    };
    Ok(Json(switchyard_formats::embeddings::models_list(
        &state.catalog(),
        offset,
        limit,
    )))
}
