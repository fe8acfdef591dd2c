//! The catalogue: `GET /api/v1/models`, `/models/{author}/{slug}/endpoints`, `/providers`.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use switchyard_core::catalog::{Endpoint, Model, Pricing};

use super::parse_count;
use crate::error::ApiError;
use crate::state::SharedState;

fn pricing_json(p: &Pricing) -> Value {
    let mut map = Map::new();
    map.insert("prompt".into(), json!(p.prompt.text));
    map.insert("completion".into(), json!(p.completion.text));
    for (name, price) in p.optional_keys() {
        if let Some(price) = price {
            map.insert(name.into(), json!(price.text));
        }
    }
    Value::Object(map)
}

fn architecture_json(m: &Model) -> Value {
    json!({
        "modality": m.modality(),
        "input_modalities": m.input_modalities,
        "output_modalities": m.output_modalities,
        "tokenizer": m.tokenizer,
        "instruct_type": m.instruct_type,
    })
}

fn model_json(m: &Model) -> Value {
    let top = m.cheapest_endpoint();
    json!({
        "id": m.id,
        "canonical_slug": m.canonical_slug,
        // The contract requires the member; no catalogue model is a text-to-speech model.
        "supported_voices": Value::Null,
        "hugging_face_id": m.hugging_face_id,
        "name": m.name,
        "created": m.created,
        "description": m.description,
        "context_length": m.context_length,
        "architecture": architecture_json(m),
        "pricing": top.map_or(Value::Null, |e| pricing_json(&e.pricing)),
        "top_provider": {
            "context_length": top.map(|e| e.context_length),
            "max_completion_tokens": top.and_then(|e| e.max_completion_tokens),
            "is_moderated": false,
        },
        "per_request_limits": Value::Null,
        "supported_parameters": m.supported_parameters(),
        "default_parameters": Value::Null,
        "links": {"details": format!("/api/v1/models/{}/endpoints", m.id)},
    })
}

/// Query of `GET /models`.
#[derive(Debug, Deserialize)]
pub struct ModelsQuery {
    offset: Option<String>,
    limit: Option<String>,
    supported_parameters: Option<String>,
    input_modalities: Option<String>,
    output_modalities: Option<String>,
    q: Option<String>,
    zdr: Option<String>,
    sort: Option<String>,
    category: Option<String>,
}

fn csv(text: &Option<String>) -> Vec<String> {
    text.iter()
        .flat_map(|t| t.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// `GET /api/v1/models`.
pub async fn list(
    State(state): State<SharedState>,
    query: Result<Query<ModelsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(format!("Invalid query: {e}")))?;
    let catalog = state.catalog();
    let offset = parse_count("offset", &query.offset, usize::MAX)?.unwrap_or(0);
    let limit = parse_count("limit", &query.limit, 1000)?;
    let params = csv(&query.supported_parameters);
    let inputs = csv(&query.input_modalities);
    let outputs = {
        let o = csv(&query.output_modalities);
        if o.is_empty() {
            vec!["text".to_owned()]
        } else {
            o
        }
    };
    let needle = query.q.as_deref().map(str::to_lowercase);
    let zdr = match query.zdr.as_deref() {
        None => false,
        Some("true") => true,
        Some("false") => false,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "zdr must be true or false, got {other:?}"
            )))
        }
    };
    let _ = &query.category;
    let mut selected: Vec<&Model> = catalog
        .models()
        .iter()
        .filter(|m| {
            let supported = m.supported_parameters();
            params.iter().all(|p| supported.iter().any(|s| s == p))
        })
        .filter(|m| {
            inputs
                .iter()
                .all(|i| m.input_modalities.iter().any(|x| x == i))
        })
        .filter(|m| {
            outputs
                .iter()
                .any(|o| o == "all" || m.output_modalities.iter().any(|x| x == o))
        })
        .filter(|m| {
            needle.as_ref().is_none_or(|n| {
                m.id.to_lowercase().contains(n)
                    || m.name.to_lowercase().contains(n)
                    || m.description.to_lowercase().contains(n)
            })
        })
        .filter(|m| {
            !zdr || m.endpoints.iter().any(|e| {
                catalog
                    .provider(&e.provider)
                    .is_some_and(|p| p.data_policy.zdr)
            })
        })
        .collect();
    match query.sort.as_deref() {
        None | Some("") => {}
        Some("created" | "newest") => selected.sort_by_key(|m| std::cmp::Reverse(m.created)),
        Some("name" | "alphabetical") => selected.sort_by(|a, b| a.name.cmp(&b.name)),
        Some("context_length" | "context-high-to-low") => {
            selected.sort_by_key(|m| std::cmp::Reverse(m.context_length))
        }
        Some("price" | "pricing-low-to-high") => selected.sort_by_key(|m| {
            m.cheapest_endpoint().map(|e| {
                e.pricing
                    .prompt
                    .amount
                    .saturating_add(e.pricing.completion.amount)
            })
        }),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "sort {other:?} is not one of created, name, context_length, price"
            )))
        }
    }
    let total = selected.len();
    let page: Vec<Value> = selected
        .into_iter()
        .skip(offset)
        .take(limit.unwrap_or(usize::MAX))
        .map(model_json)
        .collect();
    let next = limit.and_then(|l| {
        (offset + l < total).then(|| format!("/api/v1/models?offset={}&limit={l}", offset + l))
    });
    Ok(Json(
        json!({"data": page, "links": {"next": next}, "total_count": total}),
    ))
}

fn endpoint_json(
    m: &Model,
    e: &Endpoint,
    provider_name: &str,
    stats: &switchyard_core::health::EndpointStats,
) -> Value {
    json!({
        "name": format!("{provider_name} | {}", m.id),
        "model_id": m.id,
        "model_name": m.name,
        "provider_name": provider_name,
        "tag": e.tag,
        "context_length": e.context_length,
        "max_completion_tokens": e.max_completion_tokens,
        "max_prompt_tokens": e.max_prompt_tokens,
        "quantization": e.quantization,
        "pricing": pricing_json(&e.pricing),
        // 0 when serving, -1 while the circuit breaker keeps requests away.
        "status": if stats.circuit == switchyard_core::health::CircuitState::Open { -1 } else { 0 },
        "service_tier": e.service_tier,
        "supported_parameters": e.supported_parameters,
        "supports_implicit_caching": e.supports_implicit_caching,
        "uptime_last_5m": stats.uptime_last_5m,
        "uptime_last_30m": stats.uptime_last_30m,
        "uptime_last_1d": stats.uptime_last_1d,
        "latency_last_30m": stats.latency_last_30m,
        "throughput_last_30m": stats.throughput_last_30m,
    })
}

/// `GET /api/v1/models/{author}/{slug}/endpoints`.
pub async fn endpoints(
    State(state): State<SharedState>,
    Path((author, slug)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let catalog = state.catalog();
    let id = format!("{author}/{slug}");
    let model = catalog
        .model(&id)
        .ok_or_else(|| ApiError::not_found(format!("Model {id} not found")))?;
    let endpoints: Vec<Value> = model
        .endpoints
        .iter()
        .map(|e| {
            let name = catalog
                .provider(&e.provider)
                .map_or(e.provider.as_str(), |p| p.name.as_str());
            let stats = state.health.stats(&model.id, &e.tag, state.now_ms());
            endpoint_json(model, e, name, &stats)
        })
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
    query: Result<Query<EmbeddingModelsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(format!("Invalid query: {e}")))?;
    let offset = parse_count("offset", &query.offset, usize::MAX)?.unwrap_or(0);
    let limit = parse_count("limit", &query.limit, 1000)?;
    Ok(Json(switchyard_formats::embeddings::models_list(
        &state.catalog(),
        offset,
        limit,
    )))
}
