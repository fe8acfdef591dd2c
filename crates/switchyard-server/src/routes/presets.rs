//! The presets API (`/api/v1/presets`, management keys): presets are saved from an inference
//! request body (`POST /presets/{slug}/chat/completions`, `/messages`, `/responses`; each save
//! a new version, designated at once) and read with their versions. Requests apply them
//! through [`crate::presets`].

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};
use switchyard_core::periods::to_iso8601;
use switchyard_core::preset::{take_reference, valid_slug, Preset, MAX_SLUG_LEN};
use switchyard_store::{NewPresetVersion, PresetRow, PresetVersionRow, PresetWithVersion};

use crate::error::ApiError;
use crate::extract::Management;
use crate::formats::{body_error, require_json, ClientFormat};
use crate::state::SharedState;

/// The largest page.
const MAX_LIMIT: u64 = 100;
/// The page when none is asked for.
const DEFAULT_LIMIT: u64 = 50;

fn preset_json(p: &PresetRow) -> Value {
    json!({
        "id": p.id,
        "creator_user_id": Value::Null,
        "workspace_id": Value::Null,
        "name": p.name,
        "slug": p.slug,
        "description": p.description,
        "status": p.status,
        "designated_version_id": p.designated_version_id,
        "created_at": to_iso8601(p.created_at),
        "updated_at": to_iso8601(p.updated_at),
        "status_updated_at": p.status_updated_at.map(to_iso8601),
    })
}

fn version_json(v: &PresetVersionRow) -> Value {
    // Stored only after validation; a corrupt row shows as an empty configuration.
    let config: Value = serde_json::from_str(&v.config).unwrap_or_else(|_| json!({}));
    json!({
        "id": v.id,
        "preset_id": v.preset_id,
        "creator_id": v.creator_id,
        "version": v.version,
        "system_prompt": v.system_prompt,
        "config": config,
        "created_at": to_iso8601(v.created_at),
        // Versions never change.
        "updated_at": to_iso8601(v.created_at),
    })
}

fn with_version_json(p: &PresetWithVersion) -> Value {
    let mut value = preset_json(&p.preset);
    value["designated_version"] = p.version.as_ref().map_or(Value::Null, version_json);
    value
}

fn checked_slug(slug: &str) -> Result<(), ApiError> {
    if valid_slug(slug) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "slug: a preset slug is 1 to {MAX_SLUG_LEN} lower-case letters, digits, '-', '_' or '.'"
        )))
    }
}

fn not_found(slug: &str) -> ApiError {
    ApiError::not_found(format!("Preset {slug} not found"))
}

/// `offset` (≥ 0, default 0) and `limit` (1 to 100, default 50) of a list query.
fn page(query: &HashMap<String, String>) -> Result<(u64, u64), ApiError> {
    let number = |name: &str| -> Result<Option<u64>, ApiError> {
        query
            .get(name)
            .filter(|v| !v.is_empty() && v.as_str() != "null")
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!("{name} must be a non-negative integer"))
                })
            })
            .transpose()
    };
    let offset = number("offset")?.unwrap_or(0);
    let limit = number("limit")?.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    Ok((offset, limit))
}

/// `GET /api/v1/presets`: the account's presets, most recently updated first.
pub async fn list(
    State(state): State<SharedState>,
    Management(auth): Management,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (offset, limit) = page(&query)?;
    let (rows, total) = state
        .store
        .list_presets(&auth.key.account_id, offset, limit)
        .await?;
    let data: Vec<Value> = rows.iter().map(preset_json).collect();
    Ok(Json(json!({"data": data, "total_count": total})))
}

/// `GET /api/v1/presets/{slug}`: the preset with its designated version.
pub async fn get(
    State(state): State<SharedState>,
    Management(auth): Management,
    Path(slug): Path<String>,
) -> Result<Json<Value>, ApiError> {
    checked_slug(&slug)?;
    let row = state
        .store
        .preset(&auth.key.account_id, &slug)
        .await?
        .ok_or_else(|| not_found(&slug))?;
    Ok(Json(json!({"data": with_version_json(&row)})))
}

/// `GET /api/v1/presets/{slug}/versions`: every version, oldest first.
pub async fn versions(
    State(state): State<SharedState>,
    Management(auth): Management,
    Path(slug): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    checked_slug(&slug)?;
    let (offset, limit) = page(&query)?;
    let (rows, total) = state
        .store
        .preset_versions(&auth.key.account_id, &slug, offset, limit)
        .await?
        .ok_or_else(|| not_found(&slug))?;
    let data: Vec<Value> = rows.iter().map(version_json).collect();
    Ok(Json(json!({"data": data, "total_count": total})))
}

/// `GET /api/v1/presets/{slug}/versions/{version}`.
pub async fn version(
    State(state): State<SharedState>,
    Management(auth): Management,
    Path((slug, version)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    checked_slug(&slug)?;
    let number: i64 = version
        .parse()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| ApiError::bad_request("version must be a positive integer"))?;
    let row = state
        .store
        .preset_version(&auth.key.account_id, &slug, number)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Preset {slug} has no version {number}")))?;
    Ok(Json(json!({"data": version_json(&row)})))
}

/// `POST /api/v1/presets/{slug}/chat/completions`, `/messages` and `/responses`: saves a new
/// version of the preset (created when it does not exist) from a request body in that format.
/// The body is parsed as the format's requests are (a bad one is a 400 naming the field); its
/// leading system text becomes the system prompt and the fields a preset holds
/// ([`switchyard_core::preset::CONFIG_FIELDS`]) its configuration; messages, `stream` and the
/// rest are not kept.
pub async fn save(
    format: &'static dyn ClientFormat,
    state: SharedState,
    auth: crate::state::Authenticated,
    slug: String,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    checked_slug(&slug)?;
    require_json(&headers)?;
    let body = body.map_err(body_error)?;
    let mut parsed = format.parse(&state, &body)?;
    // A body naming a preset (its own or another) is saved without the reference.
    take_reference(&mut parsed.request).map_err(|e| ApiError::bad_request(e.0))?;
    let preset = Preset::from_request(&parsed.request).map_err(|e| ApiError::bad_request(e.0))?;
    let config = Value::Object(preset.config).to_string();
    let account = &auth.key.account_id;
    let saved = state
        .store
        .save_preset_version(
            account,
            &slug,
            &NewPresetVersion {
                system_prompt: preset.system_prompt.as_deref(),
                config: &config,
                creator_id: &auth.key.hash,
            },
            state.now_ms(),
        )
        .await?;
    state.presets.invalidate(account, &slug).await;
    Ok(Json(json!({"data": with_version_json(&saved)})))
}

/// The handler of `POST /api/v1/presets/{slug}/<format path>` for one format.
pub fn save_route(format: &'static dyn ClientFormat) -> axum::routing::MethodRouter<SharedState> {
    axum::routing::post(
        move |State(state): State<SharedState>,
              Management(auth): Management,
              Path(slug): Path<String>,
              headers: HeaderMap,
              body: Result<Bytes, BytesRejection>| async move {
            save(format, state, auth, slug, headers, body).await
        },
    )
}
