//! Read and management APIs: models, endpoints, providers, keys, credits, generations.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use switchyard_core::catalog::{Endpoint, Model, Pricing};
use switchyard_core::keys::{hash_key, key_from_bytes, label};
use switchyard_core::money::Money;
use switchyard_core::periods::{parse_iso8601, to_iso8601};
use switchyard_store::{KeyRecord, KeyUpdate, LimitReset, NewKey, Store, StoreResult};

use crate::error::ApiError;
use crate::state::{Authenticated, SharedState};

// === catalogue ===

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

fn parse_count(name: &str, text: &Option<String>, max: usize) -> Result<Option<usize>, ApiError> {
    match text {
        None => Ok(None),
        Some(t) => match t.trim().parse::<usize>() {
            Ok(n) if n <= max => Ok(Some(n)),
            _ => Err(ApiError::bad_request(format!(
                "{name} must be an integer between 0 and {max}, got {t:?}"
            ))),
        },
    }
}

/// `GET /api/v1/models`.
pub async fn models(
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
pub async fn model_endpoints(
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

// === keys ===

fn usd(m: Money) -> Value {
    m.to_json_number()
}

fn key_usage_fields(k: &KeyRecord, map: &mut Map<String, Value>) {
    map.insert("label".into(), json!(k.label));
    map.insert("limit".into(), k.limit.map_or(Value::Null, usd));
    map.insert(
        "limit_remaining".into(),
        k.limit_remaining().map_or(Value::Null, usd),
    );
    map.insert(
        "limit_reset".into(),
        json!(k.limit_reset.map(LimitReset::as_str)),
    );
    map.insert(
        "include_byok_in_limit".into(),
        json!(k.include_byok_in_limit),
    );
    map.insert("usage".into(), usd(k.usage.total));
    map.insert("usage_daily".into(), usd(k.usage.daily));
    map.insert("usage_weekly".into(), usd(k.usage.weekly));
    map.insert("usage_monthly".into(), usd(k.usage.monthly));
    map.insert("byok_usage".into(), usd(k.byok_usage.total));
    map.insert("byok_usage_daily".into(), usd(k.byok_usage.daily));
    map.insert("byok_usage_weekly".into(), usd(k.byok_usage.weekly));
    map.insert("byok_usage_monthly".into(), usd(k.byok_usage.monthly));
    map.insert("creator_user_id".into(), json!(k.creator_user_id));
    map.insert("expires_at".into(), json!(k.expires_at.map(to_iso8601)));
}

/// The one workspace of an account (the gateway has no others).
const DEFAULT_WORKSPACE: &str = "default";

/// The management API's `Key` object.
pub fn key_json(k: &KeyRecord) -> Value {
    let mut map = Map::new();
    map.insert("hash".into(), json!(k.hash));
    map.insert("name".into(), json!(k.name));
    map.insert("disabled".into(), json!(k.disabled));
    key_usage_fields(k, &mut map);
    map.insert("created_at".into(), json!(to_iso8601(k.created_at)));
    map.insert("updated_at".into(), json!(to_iso8601(k.updated_at)));
    map.insert("last_used_at".into(), json!(k.last_used_at.map(to_iso8601)));
    // The contract's Key always names a workspace; every key is in the account's only one.
    map.insert("workspace_id".into(), json!(DEFAULT_WORKSPACE));
    map.insert("external_user".into(), Value::Null);
    Value::Object(map)
}

/// `GET /api/v1/key` and `GET /api/v1/auth/key`.
pub async fn current_key(
    State(state): State<SharedState>,
    auth: Authenticated,
) -> Result<Json<Value>, ApiError> {
    let k = &auth.key;
    let account = state.store.account(&k.account_id).await?;
    let mut map = Map::new();
    key_usage_fields(k, &mut map);
    map.insert("name".into(), json!(k.name));
    map.insert(
        "is_free_tier".into(),
        json!(account.is_none_or(|a| a.credits.picos() <= 0)),
    );
    map.insert("is_management_key".into(), json!(k.is_management));
    map.insert("is_provisioning_key".into(), json!(k.is_management));
    let budget = k.limit.map(|limit| {
        let remaining =
            Money::from_picos(limit.picos().saturating_sub(k.limit_usage().picos()).max(0));
        json!({
            "scope": "key_limit",
            "budget_id": Value::Null,
            "guardrail_id": Value::Null,
            "include_byok": k.include_byok_in_limit,
            "limit_usd": usd(limit),
            "spend_usd": usd(k.limit_usage()),
            "remaining_usd": usd(remaining),
            "reset_interval": k.limit_reset.map(LimitReset::as_str),
            "resets_at": k.limit_reset.map(|r| to_iso8601(next_reset(r, state.now_ms()))),
        })
    });
    map.insert("budgets".into(), json!(budget.iter().collect::<Vec<_>>()));
    map.insert("effective_budget".into(), budget.unwrap_or(Value::Null));
    map.insert("allowed_data_regions".into(), json!([]));
    map.insert("organization_id".into(), Value::Null);
    map.insert("workspace_id".into(), Value::Null);
    // Free-model requests are not rate limited here; -1 says "no limit" as `rate_limit` does.
    map.insert(
        "free_model_daily_requests".into(),
        json!({"limit": -1, "used": 0, "remaining": -1}),
    );
    map.insert(
        "rate_limit".into(),
        json!({"requests": -1, "interval": "10s", "note": "This field is deprecated and safe to ignore."}),
    );
    Ok(Json(json!({"data": map})))
}

/// Start of the next window of a limit (Unix ms).
pub fn next_reset(reset: LimitReset, now_ms: i64) -> i64 {
    use switchyard_core::periods::{civil_from_days, days_from_civil, Periods, DAY_MS};
    let p = Periods::at(now_ms);
    match reset {
        LimitReset::Daily => (p.day + 1) * DAY_MS,
        LimitReset::Weekly => ((p.week + 1) * 7 - 3) * DAY_MS,
        LimitReset::Monthly => {
            let (y, m, _) = civil_from_days(p.day);
            let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            days_from_civil(y, m, 1) * DAY_MS
        }
    }
}

/// Parameters of a new key.
#[derive(Debug, Clone, Default)]
pub struct KeySpec {
    /// Name.
    pub name: String,
    /// Limit in USD.
    pub limit: Option<Money>,
    /// Window.
    pub limit_reset: Option<LimitReset>,
    /// BYOK spend counts against the limit.
    pub include_byok_in_limit: bool,
    /// Management key.
    pub management: bool,
    /// Expiry (Unix ms).
    pub expires_at: Option<i64>,
    /// Creator.
    pub creator_user_id: Option<String>,
}

/// Creates a key with 32 random bytes; returns the plaintext (shown once) and its record.
pub async fn create_key(
    store: &Store,
    account_id: &str,
    spec: &KeySpec,
    now_ms: i64,
) -> StoreResult<(String, KeyRecord)> {
    let bytes: [u8; 32] = rand::random();
    let key = key_from_bytes(&bytes);
    let record = store
        .create_key(
            &NewKey {
                hash: hash_key(&key),
                label: label(&key),
                account_id: account_id.to_owned(),
                name: spec.name.clone(),
                is_management: spec.management,
                limit: spec.limit,
                limit_reset: spec.limit_reset,
                include_byok_in_limit: spec.include_byok_in_limit,
                expires_at: spec.expires_at,
                creator_user_id: spec.creator_user_id.clone(),
            },
            now_ms,
        )
        .await?;
    Ok((key, record))
}

fn field<'a>(body: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    body.get(name)
}

fn parse_limit(value: &Value) -> Result<Option<Money>, ApiError> {
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => {
            let m = Money::from_json_number(n)
                .map_err(|e| ApiError::bad_request(format!("limit {e}")))?;
            if m.picos() < 0 {
                return Err(ApiError::bad_request("limit must not be negative"));
            }
            Ok(Some(m))
        }
        _ => Err(ApiError::bad_request(
            "limit must be a number of USD or null",
        )),
    }
}

fn parse_reset(value: &Value) -> Result<Option<LimitReset>, ApiError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => s.parse().map(Some).map_err(ApiError::bad_request),
        _ => Err(ApiError::bad_request(
            "limit_reset must be \"daily\", \"weekly\", \"monthly\" or null",
        )),
    }
}

fn parse_expiry(value: &Value, now_ms: i64) -> Result<Option<i64>, ApiError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => {
            let t = parse_iso8601(s).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "expires_at {s:?} is not an ISO-8601 UTC time like 2027-01-01T00:00:00Z"
                ))
            })?;
            if t <= now_ms {
                return Err(ApiError::bad_request("expires_at must be in the future"));
            }
            Ok(Some(t))
        }
        _ => Err(ApiError::bad_request(
            "expires_at must be an ISO-8601 string or null",
        )),
    }
}

fn parse_bool(body: &Map<String, Value>, name: &str) -> Result<Option<bool>, ApiError> {
    match field(body, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::bad_request(format!("{name} must be a boolean"))),
    }
}

fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request("Request body must be a JSON object")),
        Err(e) => Err(ApiError::bad_request(format!(
            "Invalid JSON in request body: {e}"
        ))),
    }
}

fn check_fields(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    let unknown: Vec<&str> = body
        .keys()
        .map(String::as_str)
        .filter(|k| !allowed.contains(k))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Unknown field(s): {}; allowed: {}",
            unknown.join(", "),
            allowed.join(", ")
        )))
    }
}

/// Query of `GET /keys`.
#[derive(Debug, Deserialize)]
pub struct KeysQuery {
    offset: Option<String>,
    include_disabled: Option<String>,
    include_expired: Option<String>,
}

/// `GET /api/v1/keys`.
pub async fn list_keys(
    State(state): State<SharedState>,
    auth: Authenticated,
    query: Result<Query<KeysQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    auth.require_management()?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(format!("Invalid query: {e}")))?;
    let offset = parse_count("offset", &query.offset, usize::MAX)?.unwrap_or(0);
    let flag = |name: &str, v: &Option<String>| match v.as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "{name} must be true or false, got {other:?}"
        ))),
    };
    let include_disabled = flag("include_disabled", &query.include_disabled)?;
    let include_expired = flag("include_expired", &query.include_expired)?;
    let now = state.now_ms();
    let keys = state.store.list_keys(&auth.key.account_id, now).await?;
    let data: Vec<Value> = keys
        .iter()
        .filter(|k| !k.is_management)
        .filter(|k| include_disabled || !k.disabled)
        .filter(|k| include_expired || !k.is_expired(now))
        .skip(offset)
        .take(100)
        .map(key_json)
        .collect();
    Ok(Json(json!({"data": data})))
}

/// `POST /api/v1/keys`.
pub async fn create_key_api(
    State(state): State<SharedState>,
    auth: Authenticated,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    auth.require_management()?;
    let body = json_object(&body)?;
    check_fields(
        &body,
        &[
            "name",
            "limit",
            "limit_reset",
            "include_byok_in_limit",
            "expires_at",
            "creator_user_id",
            "workspace_id",
            "external",
        ],
    )?;
    let now = state.now_ms();
    let name = match field(&body, "name") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => {
            return Err(ApiError::bad_request(
                "name is required and must be a non-empty string",
            ))
        }
    };
    let spec = KeySpec {
        name,
        limit: field(&body, "limit")
            .map(parse_limit)
            .transpose()?
            .flatten(),
        limit_reset: field(&body, "limit_reset")
            .map(parse_reset)
            .transpose()?
            .flatten(),
        include_byok_in_limit: parse_bool(&body, "include_byok_in_limit")?.unwrap_or(false),
        management: false,
        expires_at: field(&body, "expires_at")
            .map(|v| parse_expiry(v, now))
            .transpose()?
            .flatten(),
        creator_user_id: match field(&body, "creator_user_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(ApiError::bad_request(
                    "creator_user_id must be a string or null",
                ))
            }
        },
    };
    let (key, record) = create_key(&state.store, &auth.key.account_id, &spec, now).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"data": key_json(&record), "key": key})),
    )
        .into_response())
}

async fn owned_key(
    state: &SharedState,
    auth: &Authenticated,
    hash: &str,
) -> Result<KeyRecord, ApiError> {
    auth.require_management()?;
    match state.store.key(hash, state.now_ms()).await? {
        Some(k) if k.account_id == auth.key.account_id && !k.is_management => Ok(k),
        _ => Err(ApiError::not_found(format!("No key with hash {hash}"))),
    }
}

/// `GET /api/v1/keys/{hash}`.
pub async fn get_key(
    State(state): State<SharedState>,
    auth: Authenticated,
    Path(hash): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let k = owned_key(&state, &auth, &hash).await?;
    Ok(Json(json!({"data": key_json(&k)})))
}

/// `PATCH /api/v1/keys/{hash}`.
pub async fn update_key(
    State(state): State<SharedState>,
    auth: Authenticated,
    Path(hash): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    owned_key(&state, &auth, &hash).await?;
    let body = json_object(&body)?;
    check_fields(
        &body,
        &[
            "name",
            "disabled",
            "limit",
            "limit_reset",
            "include_byok_in_limit",
            "expires_at",
            "workspace_id",
        ],
    )?;
    let now = state.now_ms();
    let update = KeyUpdate {
        name: match field(&body, "name") {
            None => None,
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            Some(_) => return Err(ApiError::bad_request("name must be a non-empty string")),
        },
        disabled: parse_bool(&body, "disabled")?,
        limit: field(&body, "limit").map(parse_limit).transpose()?,
        limit_reset: field(&body, "limit_reset").map(parse_reset).transpose()?,
        include_byok_in_limit: parse_bool(&body, "include_byok_in_limit")?,
        expires_at: field(&body, "expires_at")
            .map(|v| parse_expiry(v, now))
            .transpose()?,
    };
    let k = state
        .store
        .update_key(&hash, &update, now)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No key with hash {hash}")))?;
    state.keys.invalidate(&hash);
    state.ledger.update_key(&k);
    Ok(Json(json!({"data": key_json(&k)})))
}

/// `DELETE /api/v1/keys/{hash}`.
pub async fn delete_key(
    State(state): State<SharedState>,
    auth: Authenticated,
    Path(hash): Path<String>,
) -> Result<Json<Value>, ApiError> {
    owned_key(&state, &auth, &hash).await?;
    state.store.delete_key(&hash).await?;
    state.keys.invalidate(&hash);
    state.ledger.forget_key(&hash);
    Ok(Json(json!({"deleted": true})))
}

/// `GET /api/v1/credits`.
pub async fn credits(
    State(state): State<SharedState>,
    auth: Authenticated,
) -> Result<Json<Value>, ApiError> {
    auth.require_management()?;
    let account = state
        .store
        .account(&auth.key.account_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Account not found"))?;
    Ok(Json(json!({"data": {
        "total_credits": usd(account.credits),
        "total_usage": usd(account.usage),
    }})))
}

/// `GET /api/v1/generation?id=`.
pub async fn generation(
    State(state): State<SharedState>,
    auth: Authenticated,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let id = query.get("id").filter(|s| !s.is_empty()).ok_or_else(|| {
        ApiError::bad_request("Query parameter id is required: /api/v1/generation?id=gen-...")
    })?;
    let g = match state.store.generation(id).await? {
        Some(g) if g.account_id == auth.key.account_id => g,
        _ => return Err(ApiError::not_found(format!("Generation {id} not found"))),
    };
    let mut data = json!({
        "id": g.id,
        "request_id": Value::Null,
        "session_id": g.session_id,
        "created_at": to_iso8601(g.created_at),
        "model": g.model,
        "origin": g.http_referer.clone().unwrap_or_default(),
        "api_type": "completions",
        "streamed": g.streamed,
        "cancelled": g.cancelled,
        "total_cost": usd(g.cost),
        "usage": usd(g.cost),
        "cache_discount": Value::Null,
        "upstream_inference_cost": if g.is_byok { usd(g.cost) } else { Value::Null },
        "is_byok": g.is_byok,
        "upstream_id": g.upstream_id,
        "provider_name": g.provider_name,
        "app_id": Value::Null,
        "http_referer": g.http_referer,
        "app_title": g.app_title,
        "external_user": g.end_user,
        "latency": g.latency_ms,
        "moderation_latency": Value::Null,
        "generation_time": g.generation_time_ms,
        "finish_reason": g.finish_reason,
        "native_finish_reason": g.native_finish_reason,
        "tokens_prompt": g.tokens_prompt,
        "tokens_completion": g.tokens_completion,
        "native_tokens_prompt": g.tokens_prompt,
        "native_tokens_completion": g.tokens_completion,
        "native_tokens_reasoning": g.tokens_reasoning,
        "native_tokens_cached": g.tokens_cached,
        "num_media_prompt": Value::Null,
        "num_media_completion": Value::Null,
        "num_search_results": Value::Null,
    });
    // Fields the gateway has no value for, present (null) because the contract requires them.
    if let Some(map) = data.as_object_mut() {
        for field in [
            "num_fetches",
            "num_input_audio_prompt",
            "native_tokens_completion_images",
            "preset_id",
            "provider_responses",
            "router",
            "service_tier",
            "user_agent",
            "web_search_engine",
            "workspace_id",
        ] {
            map.insert(field.to_owned(), Value::Null);
        }
        map.insert("data_region".to_owned(), json!("global"));
    }
    Ok(Json(json!({ "data": data })))
}

const DAY_MS: i64 = 86_400_000;

fn day_string(day: i64) -> String {
    let (y, m, d) = switchyard_core::periods::civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

fn parse_day(text: &str) -> Option<i64> {
    let mut parts = text.splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    if text.len() != 10 || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let day = switchyard_core::periods::days_from_civil(y, m, d);
    // Reject dates such as 2026-02-30 that normalise to another day.
    (day_string(day) == text).then_some(day)
}

/// `GET /api/v1/activity`: the account's spend and tokens per UTC day, model and provider over
/// the last 30 completed days (management keys only).
pub async fn activity(
    State(state): State<SharedState>,
    auth: Authenticated,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    auth.require_management()?;
    for name in query.keys() {
        if ![
            "date",
            "api_key_hash",
            "user_id",
            "workspace_id",
            "group_by",
        ]
        .contains(&name.as_str())
        {
            return Err(ApiError::bad_request(format!(
                "Unknown query parameter {name:?}: use date, api_key_hash, user_id, workspace_id or group_by"
            )));
        }
    }
    let today = state.now_ms().div_euclid(DAY_MS);
    let (first, last) = (today - 30, today - 1);
    let (since, until) = match query.get("date") {
        None => (first, today),
        Some(text) => {
            let day = parse_day(text).ok_or_else(|| {
                ApiError::bad_request(format!("date {text:?} is not a date like 2026-11-23"))
            })?;
            if day < first || day > last {
                return Err(ApiError::bad_request(format!(
                    "date {text} is not one of the last 30 completed UTC days ({} to {})",
                    day_string(first),
                    day_string(last)
                )));
            }
            (day, day + 1)
        }
    };
    let key_hash = query.get("api_key_hash").map(String::as_str);
    if let Some(h) = key_hash {
        if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::bad_request(
                "api_key_hash must be a SHA-256 hex string, as the keys API returns",
            ));
        }
    }
    if query.contains_key("user_id") {
        return Err(ApiError::bad_request(
            "user_id applies to organization accounts; this gateway has none",
        ));
    }
    match query.get("group_by").map(String::as_str) {
        None | Some("workspace") => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "group_by {other:?} is not supported: use group_by=workspace"
            )))
        }
    }
    let workspace = query.contains_key("group_by").then_some(DEFAULT_WORKSPACE);
    if let Some(w) = query.get("workspace_id") {
        if w != DEFAULT_WORKSPACE {
            return Ok(Json(json!({"data": []})));
        }
    }
    let rows = state
        .store
        .activity(
            &auth.key.account_id,
            since * DAY_MS,
            until * DAY_MS,
            key_hash.map(str::to_ascii_lowercase).as_deref(),
        )
        .await?;
    let data: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut item = json!({
                "date": day_string(r.day),
                "model": r.model,
                "model_permaslug": r.model,
                "endpoint_id": format!("{}:{}", r.model, r.provider_slug),
                "provider_name": r.provider_name,
                "usage": usd(r.usage),
                "byok_usage_inference": usd(r.byok_usage),
                "requests": r.requests,
                "prompt_tokens": r.prompt_tokens,
                "completion_tokens": r.completion_tokens,
                "reasoning_tokens": r.reasoning_tokens,
                "cached_tokens": r.cached_tokens,
            });
            if let Some(w) = workspace {
                item["workspace_id"] = json!(w);
            }
            item
        })
        .collect();
    Ok(Json(json!({ "data": data })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::periods::{parse_iso8601, to_iso8601};

    #[test]
    fn next_reset_table() {
        let at = |s: &str| parse_iso8601(s).expect("time");
        let cases = [
            (
                LimitReset::Daily,
                "2026-11-24T13:00:00Z",
                "2026-11-25T00:00:00Z",
            ),
            (
                LimitReset::Weekly,
                "2026-11-24T13:00:00Z",
                "2026-11-30T00:00:00Z",
            ),
            (
                LimitReset::Weekly,
                "2026-11-30T00:00:00Z",
                "2026-12-07T00:00:00Z",
            ),
            (
                LimitReset::Monthly,
                "2026-12-31T23:59:59Z",
                "2027-01-01T00:00:00Z",
            ),
            (
                LimitReset::Monthly,
                "2026-02-01T00:00:00Z",
                "2026-03-01T00:00:00Z",
            ),
        ];
        for (reset, now, expected) in cases {
            assert_eq!(
                to_iso8601(next_reset(reset, at(now))),
                expected,
                "{reset:?} {now}"
            );
        }
    }
}
