//! `GET /api/v1/activity`: the account's spend and tokens per day, model and provider.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::Json;
use serde_json::{json, Value};

use super::{usd, DEFAULT_WORKSPACE};
use crate::error::ApiError;
use crate::state::{Authenticated, SharedState};

pub(crate) const DAY_MS: i64 = 86_400_000;

/// A UTC day (days since the epoch) as `2026-11-23`.
pub(crate) fn day_string(day: i64) -> String {
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
pub async fn get(
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
            "user",
        ]
        .contains(&name.as_str())
        {
            return Err(ApiError::bad_request(format!(
                "Unknown query parameter {name:?}: use date, api_key_hash, user, user_id, workspace_id or group_by"
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
    // One end user's activity (the request's `user` or X-Switchyard-User).
    let end_user = query.get("user").map(String::as_str);
    if let Some(u) = end_user {
        crate::end_users::check_id(u, "user")?;
    }
    let rows = state
        .store
        .activity_of(
            &auth.key.account_id,
            since * DAY_MS,
            until * DAY_MS,
            key_hash.map(str::to_ascii_lowercase).as_deref(),
            end_user,
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
