//! The guardrails API (`/api/v1/guardrails`, management keys) and the per-key guardrail the
//! engine enforces, compiled once and cached briefly.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use switchyard_core::guard::{Guardrail, Rule};
use switchyard_core::periods::to_iso8601;
use switchyard_store::{Assignment, GuardrailRow, Store, StoreResult};

use crate::error::ApiError;
use crate::state::{Authenticated, SharedState};

/// How long a key's compiled guardrail is reused before it is read again.
const TTL: Duration = Duration::from_secs(2);

/// A guardrail ready to enforce.
#[derive(Debug)]
pub struct Compiled {
    /// The guardrail.
    pub guardrail: Guardrail,
    /// Its content rules.
    pub rules: Vec<Rule>,
}

type Entry = (Instant, Option<Arc<Compiled>>);

/// Key hash to its guardrail, cached.
#[derive(Debug, Default)]
pub struct GuardrailCache {
    entries: RwLock<HashMap<String, Entry>>,
}

impl GuardrailCache {
    /// The guardrail assigned to a key, if any.
    pub async fn for_key(
        &self,
        store: &Store,
        key_hash: &str,
    ) -> StoreResult<Option<Arc<Compiled>>> {
        if let Ok(map) = self.entries.read() {
            if let Some((at, g)) = map.get(key_hash) {
                if at.elapsed() < TTL {
                    return Ok(g.clone());
                }
            }
        }
        let compiled = match store.guardrail_for_key(key_hash).await? {
            None => None,
            Some(row) => match parse(&row) {
                Ok(g) => Some(Arc::new(g)),
                Err(e) => {
                    // Stored guardrails were validated; one that no longer compiles blocks
                    // nothing silently: it is logged and enforced without content rules.
                    tracing::error!(guardrail = %row.id, error = %e, "a stored guardrail is invalid");
                    serde_json::from_str::<Guardrail>(&row.body)
                        .ok()
                        .map(|guardrail| {
                            Arc::new(Compiled {
                                guardrail,
                                rules: Vec::new(),
                            })
                        })
                }
            },
        };
        if let Ok(mut map) = self.entries.write() {
            map.insert(key_hash.to_owned(), (Instant::now(), compiled.clone()));
        }
        Ok(compiled)
    }

    /// Forgets everything (after a change made by this process).
    pub fn clear(&self) {
        if let Ok(mut map) = self.entries.write() {
            map.clear();
        }
    }
}

fn parse(row: &GuardrailRow) -> Result<Compiled, String> {
    let guardrail: Guardrail = serde_json::from_str(&row.body).map_err(|e| e.to_string())?;
    let rules = guardrail.validate()?;
    Ok(Compiled { guardrail, rules })
}

fn render(row: &GuardrailRow) -> Value {
    let mut value: Value = serde_json::from_str(&row.body).unwrap_or_else(|_| json!({}));
    value["id"] = json!(row.id);
    value["created_at"] = json!(to_iso8601(row.created_at));
    value["updated_at"] = json!(to_iso8601(row.updated_at));
    value["workspace_id"] = Value::Null;
    value
}

fn body_object(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request("Request body must be a JSON object")),
        Err(e) => Err(ApiError::bad_request(format!(
            "Invalid JSON in request body: {e}"
        ))),
    }
}

/// Validates a guardrail document; returns its canonical JSON.
fn validated(mut map: Map<String, Value>) -> Result<String, ApiError> {
    for server_side in ["id", "created_at", "updated_at", "workspace_id"] {
        map.remove(server_side);
    }
    let guardrail: Guardrail = serde_json::from_value(Value::Object(map))
        .map_err(|e| ApiError::bad_request(format!("Invalid guardrail: {e}")))?;
    guardrail
        .validate()
        .map_err(|e| ApiError::bad_request(format!("Invalid guardrail: {e}")))?;
    serde_json::to_string(&guardrail).map_err(|e| ApiError::internal(&e))
}

async fn owned(
    state: &SharedState,
    auth: &Authenticated,
    id: &str,
) -> Result<GuardrailRow, ApiError> {
    state
        .store
        .guardrail(&auth.key.account_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Guardrail {id} not found")))
}

/// `GET /api/v1/guardrails`.
pub async fn list(
    State(state): State<SharedState>,
    auth: Authenticated,
) -> Result<Json<Value>, ApiError> {
    auth.require_management()?;
    let rows = state.store.list_guardrails(&auth.key.account_id).await?;
    let data: Vec<Value> = rows.iter().map(render).collect();
    Ok(Json(json!({"total_count": data.len(), "data": data})))
}

/// `POST /api/v1/guardrails`.
pub async fn create(
    State(state): State<SharedState>,
    auth: Authenticated,
    body: Bytes,
) -> Result<Response, ApiError> {
    auth.require_management()?;
    let text = validated(body_object(&body)?)?;
    let id = uuid::Uuid::new_v4().to_string();
    let now = state.now_ms();
    state
        .store
        .create_guardrail(&auth.key.account_id, &id, &text, now)
        .await?;
    let row = owned(&state, &auth, &id).await?;
    Ok((StatusCode::CREATED, Json(json!({"data": render(&row)}))).into_response())
}

/// `GET /api/v1/guardrails/{id}`.
pub async fn get(
    State(state): State<SharedState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.require_management()?;
    Ok(Json(
        json!({"data": render(&owned(&state, &auth, &id).await?)}),
    ))
}

/// `PATCH /api/v1/guardrails/{id}`: given fields replace (arrays whole), `null` clears.
pub async fn update(
    State(state): State<SharedState>,
    auth: Authenticated,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    auth.require_management()?;
    let row = owned(&state, &auth, &id).await?;
    let mut current: Map<String, Value> = serde_json::from_str(&row.body).unwrap_or_default();
    for (k, v) in body_object(&body)? {
        if v.is_null() {
            current.remove(&k);
        } else {
            current.insert(k, v);
        }
    }
    let text = validated(current)?;
    state
        .store
        .update_guardrail(&auth.key.account_id, &id, &text, state.now_ms())
        .await?;
    state.guardrails.clear();
    Ok(Json(
        json!({"data": render(&owned(&state, &auth, &id).await?)}),
    ))
}

/// `DELETE /api/v1/guardrails/{id}`.
pub async fn delete(
    State(state): State<SharedState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.require_management()?;
    if !state
        .store
        .delete_guardrail(&auth.key.account_id, &id)
        .await?
    {
        return Err(ApiError::not_found(format!("Guardrail {id} not found")));
    }
    state.guardrails.clear();
    Ok(Json(json!({"deleted": true})))
}

fn assignment_json(a: &Assignment) -> Value {
    json!({
        "id": format!("{}:{}", a.guardrail_id, a.key_hash),
        "guardrail_id": a.guardrail_id,
        "key_hash": a.key_hash,
        "key_name": a.key_name,
        "key_label": a.key_label,
        "assigned_by": Value::Null,
        "created_at": to_iso8601(a.assigned_at),
    })
}

fn key_hashes(body: &Bytes) -> Result<Vec<String>, ApiError> {
    let map = body_object(body)?;
    let Some(Value::Array(items)) = map.get("key_hashes") else {
        return Err(ApiError::bad_request(
            "key_hashes must be an array of key hashes",
        ));
    };
    items
        .iter()
        .map(|v| {
            v.as_str()
                .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(str::to_ascii_lowercase)
                .ok_or_else(|| ApiError::bad_request(format!("key_hashes: {v} is not a key hash")))
        })
        .collect()
}

/// `GET /api/v1/guardrails/{id}/assignments/keys`.
pub async fn key_assignments(
    State(state): State<SharedState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.require_management()?;
    owned(&state, &auth, &id).await?;
    let rows = state
        .store
        .guardrail_assignments(&auth.key.account_id, Some(&id))
        .await?;
    let data: Vec<Value> = rows.iter().map(assignment_json).collect();
    Ok(Json(json!({"total_count": data.len(), "data": data})))
}

/// `GET /api/v1/guardrails/assignments/keys`.
pub async fn all_key_assignments(
    State(state): State<SharedState>,
    auth: Authenticated,
) -> Result<Json<Value>, ApiError> {
    auth.require_management()?;
    let rows = state
        .store
        .guardrail_assignments(&auth.key.account_id, None)
        .await?;
    let data: Vec<Value> = rows.iter().map(assignment_json).collect();
    Ok(Json(json!({"total_count": data.len(), "data": data})))
}

/// `POST /api/v1/guardrails/{id}/assignments/keys`.
pub async fn assign_keys(
    State(state): State<SharedState>,
    auth: Authenticated,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    auth.require_management()?;
    owned(&state, &auth, &id).await?;
    let hashes = key_hashes(&body)?;
    let n = state
        .store
        .assign_guardrail(&auth.key.account_id, &id, &hashes, state.now_ms())
        .await?;
    state.guardrails.clear();
    Ok(Json(json!({"assigned_count": n})))
}

/// `POST /api/v1/guardrails/{id}/assignments/keys/remove`.
pub async fn unassign_keys(
    State(state): State<SharedState>,
    auth: Authenticated,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    auth.require_management()?;
    owned(&state, &auth, &id).await?;
    let hashes = key_hashes(&body)?;
    let n = state
        .store
        .unassign_guardrail(&auth.key.account_id, &id, &hashes)
        .await?;
    state.guardrails.clear();
    Ok(Json(json!({"unassigned_count": n})))
}
