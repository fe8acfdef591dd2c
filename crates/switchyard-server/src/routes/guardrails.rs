//! The guardrails API (`/api/v1/guardrails`, management keys): guardrails and their assignment
//! to keys. The engine enforces them through [`crate::guardrails::GuardrailCache`].

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_core::guard::{BuiltinFilter, CustomFilter, Guardrail};
use switchyard_core::money::Money;
use switchyard_core::periods::to_iso8601;
use switchyard_store::{Assignment, GuardrailRow};

use crate::error::ApiError;
use crate::extract::{ApiJson, Management, Patch, Usd};
use crate::state::{Authenticated, SharedState};

/// A guardrail field a `PATCH` member can set.
trait Slot<T> {
    fn set(&mut self, value: T);
}

impl<T> Slot<T> for Option<T> {
    fn set(&mut self, value: T) {
        *self = Some(value);
    }
}

impl Slot<Usd> for Option<Money> {
    fn set(&mut self, value: Usd) {
        *self = Some(value.0);
    }
}

impl Slot<String> for String {
    fn set(&mut self, value: String) {
        *self = value;
    }
}

impl Slot<bool> for bool {
    fn set(&mut self, value: bool) {
        *self = value;
    }
}

/// Declares [`GuardrailPatch`] with one [`Patch`] member per guardrail field, and its `apply`.
macro_rules! guardrail_patch {
    ($($field:ident: $ty:ty),* $(,)?) => {
        /// Body of `PATCH /api/v1/guardrails/{id}`: given members replace (arrays whole),
        /// `null` clears, absent members stay.
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct GuardrailPatch {
            $(
                #[serde(default)]
                $field: Patch<$ty>,
            )*
            // Server-side members, accepted (clients send back what they read) and ignored.
            #[serde(default, rename = "id")]
            _id: Option<IgnoredAny>,
            #[serde(default, rename = "created_at")]
            _created_at: Option<IgnoredAny>,
            #[serde(default, rename = "updated_at")]
            _updated_at: Option<IgnoredAny>,
            #[serde(default, rename = "workspace_id")]
            _workspace_id: Option<IgnoredAny>,
        }

        impl GuardrailPatch {
            /// Applies the change to a guardrail.
            pub fn apply(self, guardrail: &mut Guardrail) {
                $(
                    match self.$field {
                        Patch::Keep => {}
                        Patch::Clear => guardrail.$field = Default::default(),
                        Patch::Set(value) => guardrail.$field.set(value),
                    }
                )*
            }
        }
    };
}

guardrail_patch! {
    name: String,
    description: String,
    limit_usd: Usd,
    reset_interval: String,
    include_byok_in_budgets: bool,
    allowed_models: Vec<String>,
    ignored_models: Vec<String>,
    allowed_providers: Vec<String>,
    ignored_providers: Vec<String>,
    enforce_zdr: bool,
    enforce_zdr_anthropic: bool,
    enforce_zdr_openai: bool,
    enforce_zdr_google: bool,
    enforce_zdr_xai: bool,
    enforce_zdr_other: bool,
    enable_paid_model_training: bool,
    enable_free_model_training: bool,
    enable_free_model_publication: bool,
    content_filter_builtins: Vec<BuiltinFilter>,
    content_filters: Vec<CustomFilter>,
    moderation: switchyard_core::guard::moderation::ModerationSettings,
}

/// Body of the assignment endpoints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyHashes {
    /// SHA-256 hashes of keys, as the keys API returns them.
    pub key_hashes: Vec<String>,
}

impl KeyHashes {
    /// The hashes, lower-cased, each checked to be a hash.
    fn checked(self) -> Result<Vec<String>, ApiError> {
        self.key_hashes
            .into_iter()
            .enumerate()
            .map(|(i, h)| {
                if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Ok(h.to_ascii_lowercase())
                } else {
                    Err(ApiError::bad_request(format!(
                        "key_hashes[{i}] is not a key hash (64 hex characters)"
                    )))
                }
            })
            .collect()
    }
}

fn render(row: &GuardrailRow) -> Value {
    let mut value: Value = serde_json::from_str(&row.body).unwrap_or_else(|_| json!({}));
    value["id"] = json!(row.id);
    value["created_at"] = json!(to_iso8601(row.created_at));
    value["updated_at"] = json!(to_iso8601(row.updated_at));
    value["workspace_id"] = Value::Null;
    value
}

/// Validates a guardrail; returns its canonical JSON. Server-side members (id, times,
/// workspace) are not stored: they come from the row.
fn validated(mut guardrail: Guardrail) -> Result<String, ApiError> {
    guardrail.id = String::new();
    guardrail.created_at = None;
    guardrail.updated_at = None;
    guardrail.workspace_id = None;
    guardrail
        .validate()
        .map_err(|e| ApiError::bad_request(format!("Invalid guardrail: {e}")))?;
    serde_json::to_string(&guardrail).map_err(|e| ApiError::internal(&e))
}

/// Checks a guardrail's moderation settings against the catalogue.
fn check_moderation(state: &SharedState, guardrail: &Guardrail) -> Result<(), ApiError> {
    match &guardrail.moderation {
        Some(m) => m
            .validate(&state.catalog())
            .map_err(|e| ApiError::bad_request(format!("Invalid guardrail: {e}"))),
        None => Ok(()),
    }
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

/// Query of `GET /api/v1/guardrails`: a page of the list.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    offset: Option<String>,
    limit: Option<String>,
    workspace_id: Option<String>,
}

/// `GET /api/v1/guardrails`: `total_count` counts them all, `data` is the page asked for.
pub async fn list(
    State(state): State<SharedState>,
    Management(auth): Management,
    query: Result<axum::extract::Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let axum::extract::Query(query) =
        query.map_err(|e| ApiError::bad_request(format!("Invalid query: {}", e.body_text())))?;
    let offset = super::parse_count("offset", &query.offset, usize::MAX)?.unwrap_or(0);
    let limit = match super::parse_count("limit", &query.limit, 100)? {
        Some(0) => return Err(ApiError::bad_request("limit must be between 1 and 100")),
        other => other.unwrap_or(50),
    };
    let rows = state.store.list_guardrails(&auth.key.account_id).await?;
    // The account's one workspace holds every guardrail.
    let in_workspace = query
        .workspace_id
        .as_deref()
        .is_none_or(|w| w.is_empty() || w == super::DEFAULT_WORKSPACE);
    let total = if in_workspace { rows.len() } else { 0 };
    let data: Vec<Value> = rows
        .iter()
        .filter(|_| in_workspace)
        .skip(offset)
        .take(limit)
        .map(render)
        .collect();
    Ok(Json(json!({"total_count": total, "data": data})))
}

/// `POST /api/v1/guardrails`.
pub async fn create(
    State(state): State<SharedState>,
    Management(auth): Management,
    ApiJson(guardrail): ApiJson<Guardrail>,
) -> Result<Response, ApiError> {
    check_moderation(&state, &guardrail)?;
    let text = validated(guardrail)?;
    let id = uuid::Uuid::new_v4().to_string();
    state
        .store
        .create_guardrail(&auth.key.account_id, &id, &text, state.now_ms())
        .await?;
    let row = owned(&state, &auth, &id).await?;
    Ok((StatusCode::CREATED, Json(json!({"data": render(&row)}))).into_response())
}

/// `GET /api/v1/guardrails/{id}`.
pub async fn get(
    State(state): State<SharedState>,
    Management(auth): Management,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = owned(&state, &auth, &id).await?;
    Ok(Json(json!({"data": render(&row)})))
}

/// `PATCH /api/v1/guardrails/{id}`: given fields replace (arrays whole), `null` clears.
pub async fn update(
    State(state): State<SharedState>,
    Management(auth): Management,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<GuardrailPatch>,
) -> Result<Json<Value>, ApiError> {
    let row = owned(&state, &auth, &id).await?;
    let mut guardrail: Guardrail = serde_json::from_str(&row.body).unwrap_or_default();
    patch.apply(&mut guardrail);
    check_moderation(&state, &guardrail)?;
    let text = validated(guardrail)?;
    state
        .store
        .update_guardrail(&auth.key.account_id, &id, &text, state.now_ms())
        .await?;
    state.guardrails.clear();
    let row = owned(&state, &auth, &id).await?;
    Ok(Json(json!({"data": render(&row)})))
}

/// `DELETE /api/v1/guardrails/{id}`.
pub async fn delete(
    State(state): State<SharedState>,
    Management(auth): Management,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
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

async fn assignments(
    state: &SharedState,
    auth: &Authenticated,
    id: Option<&str>,
) -> Result<Json<Value>, ApiError> {
    let rows = state
        .store
        .guardrail_assignments(&auth.key.account_id, id)
        .await?;
    let data: Vec<Value> = rows.iter().map(assignment_json).collect();
    Ok(Json(json!({"total_count": data.len(), "data": data})))
}

/// `GET /api/v1/guardrails/{id}/assignments/keys`.
pub async fn key_assignments(
    State(state): State<SharedState>,
    Management(auth): Management,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    owned(&state, &auth, &id).await?;
    assignments(&state, &auth, Some(&id)).await
}

/// `GET /api/v1/guardrails/assignments/keys`.
pub async fn all_key_assignments(
    State(state): State<SharedState>,
    Management(auth): Management,
) -> Result<Json<Value>, ApiError> {
    assignments(&state, &auth, None).await
}

/// `POST /api/v1/guardrails/{id}/assignments/keys`.
pub async fn assign_keys(
    State(state): State<SharedState>,
    Management(auth): Management,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<KeyHashes>,
) -> Result<Json<Value>, ApiError> {
    owned(&state, &auth, &id).await?;
    let hashes = body.checked()?;
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
    Management(auth): Management,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<KeyHashes>,
) -> Result<Json<Value>, ApiError> {
    owned(&state, &auth, &id).await?;
    let hashes = body.checked()?;
    let n = state
        .store
        .unassign_guardrail(&auth.key.account_id, &id, &hashes)
        .await?;
    state.guardrails.clear();
    Ok(Json(json!({"unassigned_count": n})))
}
