//! Generations: `GET /api/v1/generation` (the record) and `/api/v1/generation/content` (the
//! logged prompt and completion). A management key reads every generation of its account; a
//! standard key only its own.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::Json;
use serde_json::{json, Value};
use switchyard_core::periods::to_iso8601;
use switchyard_store::GenerationRecord;

use super::usd;
use crate::error::ApiError;
use crate::state::{Authenticated, SharedState};

/// Whether the calling key may read this generation: its account's management keys, and the
/// standard key that made it.
fn may_read(auth: &Authenticated, g: &GenerationRecord) -> bool {
    g.account_id == auth.key.account_id && (auth.key.is_management || g.key_hash == auth.key.hash)
}

/// `GET /api/v1/generation?id=`.
pub async fn get(
    State(state): State<SharedState>,
    auth: Authenticated,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let id = query.get("id").filter(|s| !s.is_empty()).ok_or_else(|| {
        ApiError::bad_request("Query parameter id is required: /api/v1/generation?id=gen-...")
    })?;
    let g = match state.store.generation(id).await? {
        Some(g) if may_read(&auth, &g) => g,
        _ => return Err(ApiError::not_found(format!("Generation {id} not found"))),
    };
    let mut data = json!({
        "id": g.id,
        "request_id": Value::Null,
        "session_id": g.session_id,
        "created_at": to_iso8601(g.created_at),
        "model": g.model,
        "origin": g.http_referer.clone().unwrap_or_default(),
        "api_type": g.api_type,
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
        "preset_id": g.preset_id,
        "router": g.router,
        "user_agent": g.user_agent,
        // Every attempt, fallbacks included; `null` for a record from before they were kept.
        "provider_responses": (!g.provider_responses.is_empty()).then_some(&g.provider_responses),
    });
    // Fields the gateway has no value for, present (null) because the contract requires them.
    if let Some(map) = data.as_object_mut() {
        for field in [
            "num_fetches",
            "num_input_audio_prompt",
            "native_tokens_completion_images",
            "service_tier",
            "web_search_engine",
            "workspace_id",
        ] {
            map.insert(field.to_owned(), Value::Null);
        }
        map.insert("data_region".to_owned(), json!("global"));
    }
    Ok(Json(json!({ "data": data })))
}

/// `GET /api/v1/generation/content?id=`: the logged prompt and completion of a generation, for
/// the keys that may read the generation only.
pub async fn content(
    State(state): State<SharedState>,
    auth: Authenticated,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let Some(id) = query.get("id").filter(|id| !id.is_empty()) else {
        return Err(ApiError::bad_request("Missing query parameter: id"));
    };
    let not_found = || {
        ApiError::not_found(format!(
            "No logged content for generation {id}: prompt logging was off, the content was pruned, or the generation belongs to another account or key"
        ))
    };
    let row = state.store.content(id).await?.ok_or_else(not_found)?;
    if row.account_id != auth.key.account_id {
        return Err(not_found());
    }
    if !auth.key.is_management {
        // Content rows carry no key: the generation record says which key made it.
        match state.store.generation(id).await? {
            Some(g) if may_read(&auth, &g) => {}
            _ => return Err(not_found()),
        }
    }
    let cipher = state.content_cipher.as_ref().ok_or_else(|| {
        ApiError::of(
            crate::error::ErrorKind::Unavailable,
            "Logged content cannot be read: the content key is not configured",
        )
    })?;
    let plain = cipher
        .decrypt(&row.id, &row.nonce, &row.ciphertext)
        .ok_or_else(|| {
            ApiError::of(
                crate::error::ErrorKind::Internal,
                "Logged content could not be decrypted with the configured key",
            )
        })?;
    let stored: Value = serde_json::from_slice(&plain).map_err(|e| ApiError::internal(&e))?;
    let error = state
        .store
        .generation(id)
        .await?
        .filter(|g| g.status >= 400)
        .map(|g| {
            json!({
                "status": g.status,
                "message": g.error_message,
                "provider_name": (!g.provider_name.is_empty()).then_some(&g.provider_name),
                "raw": Value::Null,
                "previous_errors": [],
            })
        });
    Ok(Json(json!({"data": {
        "id": row.id,
        "input": stored.get("input").cloned().unwrap_or_else(|| json!({"messages": []})),
        "output": output(stored.get("output").unwrap_or(&Value::Null)),
        "error": error,
    }})))
}

/// The contract's `output` (`{completion, reasoning}`) of a logged answer: the assistant
/// message as it was logged (its text content, the parts' texts joined, and its reasoning).
fn output(message: &Value) -> Value {
    let completion = match message.get("content") {
        Some(Value::String(text)) => Some(text.clone()),
        Some(Value::Array(parts)) => Some(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<String>(),
        ),
        _ => None,
    };
    let reasoning = message.get("reasoning").and_then(Value::as_str);
    json!({"completion": completion, "reasoning": reasoning})
}
