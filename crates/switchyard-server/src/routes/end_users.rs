//! End users (management keys only): `GET /api/v1/end-users`, `GET|PATCH
//! /api/v1/end-users/{id}` (usage, limits, block state, strikes), `POST|DELETE
//! /api/v1/end-users/{id}/block`, `GET /api/v1/end-users/{id}/abuse-report`, and a key's
//! end-user policy, `GET|PUT /api/v1/keys/{hash}/end-users`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_core::periods::{parse_iso8601, to_iso8601};
use switchyard_store::{EndUser, EndUserLimits, KeyRecord, KeyUserPolicy, LimitReset};

use super::{parse_count, usd};
use crate::error::ApiError;
use crate::extract::{ApiJson, Management, Patch, Usd};
use crate::state::SharedState;

/// Strikes shown with an end user: those of the last 30 days.
const STRIKES_SHOWN_MS: i64 = 30 * 86_400_000;

fn time(ms: i64) -> Value {
    json!(to_iso8601(ms))
}

/// The end user object of the API.
pub fn end_user_json(u: &EndUser, now_ms: i64) -> Value {
    let block = u.block.as_ref().map(|b| {
        json!({
            "reason": b.reason,
            "blocked_at": time(b.at),
            "expires_at": b.expires_at.map(to_iso8601),
            "source": b.source,
            "active": b.active(now_ms),
        })
    });
    json!({
        "id": u.id,
        "first_seen": time(u.first_seen),
        "last_seen": time(u.last_seen),
        "requests": u.requests,
        "usage": usd(u.usage.total),
        "usage_daily": usd(u.usage.daily),
        "usage_weekly": usd(u.usage.weekly),
        "usage_monthly": usd(u.usage.monthly),
        "held": usd(u.held),
        "limits": {
            "limit": u.limit.map_or(Value::Null, usd),
            "limit_reset": u.limit_reset.map(LimitReset::as_str),
            "requests_per_minute": u.rpm,
            "tokens_per_minute": u.tpm,
        },
        "blocked": u.active_block(now_ms).is_some(),
        "block": block,
        "updated_at": time(u.updated_at),
    })
}

/// A key's end-user policy as the API shows it.
pub fn policy_json(k: &KeyRecord) -> Value {
    let p = &k.end_users;
    json!({
        "require_user": p.require_user,
        "user_limit": p.user_limit.map_or(Value::Null, usd),
        "user_limit_reset": p.user_limit_reset.map(LimitReset::as_str),
        "requests_per_minute": p.rpm,
        "tokens_per_minute": p.tpm,
        "user_requests_per_minute": p.user_rpm,
        "user_tokens_per_minute": p.user_tpm,
    })
}

fn flag(name: &str, v: Option<&String>) -> Result<bool, ApiError> {
    match v.map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "{name} must be true or false, got {other:?}"
        ))),
    }
}

fn only(query: &HashMap<String, String>, known: &[&str]) -> Result<(), ApiError> {
    for name in query.keys() {
        if !known.contains(&name.as_str()) {
            return Err(ApiError::bad_request(format!(
                "Unknown query parameter {name:?}: use {}",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

fn parse_time(name: &str, text: Option<&String>) -> Result<Option<i64>, ApiError> {
    text.map(|t| {
        parse_iso8601(t).ok_or_else(|| {
            ApiError::bad_request(format!(
                "{name} {t:?} is not an ISO-8601 UTC time like 2027-01-01T00:00:00Z"
            ))
        })
    })
    .transpose()
}

/// `GET /api/v1/end-users`: the account's end users, last seen first (`offset`, `limit` up to
/// 100, `blocked=true` for those blocked now).
pub async fn list(
    State(state): State<SharedState>,
    Management(auth): Management,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    only(&query, &["offset", "limit", "blocked"])?;
    let offset = parse_count("offset", &query.get("offset").cloned(), usize::MAX)?.unwrap_or(0);
    let limit = parse_count("limit", &query.get("limit").cloned(), 100)?.unwrap_or(100);
    let blocked = flag("blocked", query.get("blocked"))?;
    let now = state.now_ms();
    let users = state
        .store
        .list_end_users(&auth.key.account_id, now, blocked, offset, limit)
        .await?;
    let data: Vec<Value> = users.iter().map(|u| end_user_json(u, now)).collect();
    Ok(Json(json!({ "data": data })))
}

async fn known(state: &SharedState, account_id: &str, id: &str) -> Result<EndUser, ApiError> {
    crate::end_users::check_id(id, "id")?;
    state
        .store
        .end_user(account_id, id, state.now_ms())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No end user {id:?}")))
}

/// `GET /api/v1/end-users/{id}`: usage, limits, block state and the strikes of the last 30
/// days.
pub async fn get(
    State(state): State<SharedState>,
    Management(auth): Management,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let account = &auth.key.account_id;
    let u = known(&state, account, &id).await?;
    let now = state.now_ms();
    let strikes = state
        .store
        .strikes(account, &id, now.saturating_sub(STRIKES_SHOWN_MS))
        .await?;
    let mut data = end_user_json(&u, now);
    data["strikes"] = json!({
        "last_30_days": strikes.len(),
        "recent": strikes.iter().rev().take(20).map(|s| json!({
            "generation_id": s.generation_id,
            "at": time(s.at),
            "categories": s.categories,
        })).collect::<Vec<_>>(),
    });
    Ok(Json(json!({ "data": data })))
}

/// Body of `PATCH /api/v1/end-users/{id}`: the end user's own limits; absent members stay,
/// `null` returns one to the key's default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsRequest {
    /// Spending limit in USD.
    #[serde(default)]
    pub limit: Patch<Usd>,
    /// `daily`, `weekly` or `monthly`.
    #[serde(default)]
    pub limit_reset: Patch<String>,
    /// Requests per minute.
    #[serde(default)]
    pub requests_per_minute: Patch<u64>,
    /// Tokens per minute.
    #[serde(default)]
    pub tokens_per_minute: Patch<u64>,
}

fn parse_reset(text: String) -> Result<LimitReset, ApiError> {
    text.parse().map_err(ApiError::bad_request)
}

/// `PATCH /api/v1/end-users/{id}`: sets the end user's own limits (recording them if never
/// seen); effective on their next request.
pub async fn update(
    State(state): State<SharedState>,
    Management(auth): Management,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<LimitsRequest>,
) -> Result<Json<Value>, ApiError> {
    let limits = EndUserLimits {
        limit: body
            .limit
            .try_map(|l| Ok::<_, ApiError>(l.0))?
            .into_change(),
        limit_reset: body.limit_reset.try_map(parse_reset)?.into_change(),
        rpm: body.requests_per_minute.into_change(),
        tpm: body.tokens_per_minute.into_change(),
    };
    let now = state.now_ms();
    let account = &auth.key.account_id;
    let u = crate::end_users::set_limits(&state.store, account, &id, &limits, now).await?;
    state.end_users.forget(account, &id).await;
    Ok(Json(json!({ "data": end_user_json(&u, now) })))
}

/// Body of `POST /api/v1/end-users/{id}/block`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockRequest {
    /// Why (for the operator; never shown to the end user).
    pub reason: String,
    /// Until when, ISO-8601 UTC; absent or `null` until unblocked.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// `POST /api/v1/end-users/{id}/block`: blocks the end user from their next request on (in
/// this gateway at once; in others within a second), audited.
pub async fn block(
    State(state): State<SharedState>,
    Management(auth): Management,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<BlockRequest>,
) -> Result<Json<Value>, ApiError> {
    let expires_at = parse_time("expires_at", body.expires_at.as_ref())?;
    let now = state.now_ms();
    let account = &auth.key.account_id;
    let u = crate::end_users::block(
        &state.store,
        Some(&state.recorder),
        account,
        &id,
        crate::end_users::NewBlock {
            reason: &body.reason,
            expires_at,
            source: switchyard_store::BLOCKED_BY_OPERATOR,
        },
        now,
    )
    .await?;
    state.end_users.forget(account, &id).await;
    Ok(Json(json!({ "data": end_user_json(&u, now) })))
}

/// `DELETE /api/v1/end-users/{id}/block`: lifts the block, audited.
pub async fn unblock(
    State(state): State<SharedState>,
    Management(auth): Management,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let now = state.now_ms();
    let account = &auth.key.account_id;
    known(&state, account, &id).await?;
    let u =
        crate::end_users::unblock(&state.store, Some(&state.recorder), account, &id, now).await?;
    state.end_users.forget(account, &id).await;
    Ok(Json(json!({ "data": end_user_json(&u, now) })))
}

/// `GET /api/v1/end-users/{id}/abuse-report?since=&until=&format=jsonl|csv`: every flagged or
/// blocked request of the end user from the audit chain, verified against it. The chain's
/// verification is in `X-Switchyard-Audit-Chain` (`verified <records>`); a broken chain is a
/// 409 naming the first broken record.
pub async fn abuse_report(
    State(state): State<SharedState>,
    Management(auth): Management,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    only(&query, &["since", "until", "format"])?;
    crate::end_users::check_id(&id, "id")?;
    let since = parse_time("since", query.get("since"))?.unwrap_or(0);
    let until = parse_time("until", query.get("until"))?.unwrap_or(i64::MAX);
    let csv = match query.get("format").map(String::as_str) {
        None | Some("jsonl") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format {other:?} is not one of jsonl, csv"
            )))
        }
    };
    // Everything queued before the report is in the chain it reads.
    state.recorder.flush().await;
    let report = crate::abuse::report(
        &state.store,
        state.audit_key.as_deref(),
        &auth.key.account_id,
        &id,
        since,
        until,
    )
    .await
    .map_err(|e| match e {
        crate::audit::AuditError::Broken(b) => ApiError::conflict(format!(
            "The audit chain does not verify ({b}): the report cannot be trusted"
        )),
        crate::audit::AuditError::Store(e) => ApiError::from(e),
        crate::audit::AuditError::Io(e) => ApiError::internal(&e),
    })?;
    let (body, content_type) = if csv {
        (
            crate::abuse::to_csv(&report.entries),
            "text/csv; charset=utf-8",
        )
    } else {
        (
            crate::abuse::to_jsonl(&report.entries),
            "application/x-ndjson",
        )
    };
    Ok((
        [
            (CONTENT_TYPE, content_type.to_owned()),
            (
                axum::http::HeaderName::from_static("x-switchyard-audit-chain"),
                format!("verified {}", report.chain.records),
            ),
        ],
        body,
    )
        .into_response())
}

/// Body of `PUT /api/v1/keys/{hash}/end-users`: the whole policy (absent members: none).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRequest {
    /// A request without an end user is refused (400).
    #[serde(default)]
    pub require_user: bool,
    /// Each end user's default spending limit, USD.
    #[serde(default)]
    pub user_limit: Option<Usd>,
    /// Its window.
    #[serde(default)]
    pub user_limit_reset: Option<String>,
    /// The key's requests per minute.
    #[serde(default)]
    pub requests_per_minute: Option<u64>,
    /// The key's tokens per minute.
    #[serde(default)]
    pub tokens_per_minute: Option<u64>,
    /// Each end user's default requests per minute.
    #[serde(default)]
    pub user_requests_per_minute: Option<u64>,
    /// Each end user's default tokens per minute.
    #[serde(default)]
    pub user_tokens_per_minute: Option<u64>,
}

impl PolicyRequest {
    /// The policy, checked.
    pub fn into_policy(self) -> Result<KeyUserPolicy, ApiError> {
        let user_limit = self.user_limit.map(|l| l.0);
        if user_limit.is_some_and(|l| l.picos() < 0) {
            return Err(ApiError::bad_request("user_limit must not be negative"));
        }
        Ok(KeyUserPolicy {
            require_user: self.require_user,
            user_limit,
            user_limit_reset: self.user_limit_reset.map(parse_reset).transpose()?,
            rpm: self.requests_per_minute,
            tpm: self.tokens_per_minute,
            user_rpm: self.user_requests_per_minute,
            user_tpm: self.user_tokens_per_minute,
        })
    }
}

async fn owned_key(
    state: &SharedState,
    account_id: &str,
    hash: &str,
) -> Result<KeyRecord, ApiError> {
    match state.store.key(hash, state.now_ms()).await? {
        Some(k) if k.account_id == account_id && !k.is_management => Ok(k),
        _ => Err(ApiError::not_found(format!("No key with hash {hash}"))),
    }
}

/// `GET /api/v1/keys/{hash}/end-users`: the key's end-user policy.
pub async fn get_policy(
    State(state): State<SharedState>,
    Management(auth): Management,
    Path(hash): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let k = owned_key(&state, &auth.key.account_id, &hash).await?;
    Ok(Json(json!({ "data": policy_json(&k) })))
}

/// `PUT /api/v1/keys/{hash}/end-users`: replaces the key's end-user policy; effective on the
/// key's next request in this gateway (within a second in others).
pub async fn put_policy(
    State(state): State<SharedState>,
    Management(auth): Management,
    Path(hash): Path<String>,
    ApiJson(body): ApiJson<PolicyRequest>,
) -> Result<Json<Value>, ApiError> {
    owned_key(&state, &auth.key.account_id, &hash).await?;
    let policy = body.into_policy()?;
    let k = state
        .store
        .set_key_user_policy(&hash, &policy, state.now_ms())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No key with hash {hash}")))?;
    state.keys.invalidate(&hash).await;
    Ok(Json(json!({ "data": policy_json(&k) })))
}

/// A Prometheus label value, escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `GET /metrics?user=ID` (management key): one end user's series, labelled with their id, in
/// the Prometheus text format. Only the end user asked for is labelled, so their ids never
/// become unbounded label sets of the process-wide series.
pub async fn metrics_of(
    state: &SharedState,
    account_id: &str,
    id: &str,
) -> Result<Response, ApiError> {
    let u = known(state, account_id, id).await?;
    let now = state.now_ms();
    let strikes = state
        .store
        .strikes(account_id, id, now.saturating_sub(STRIKES_SHOWN_MS))
        .await?;
    let l = label(id);
    let series: [(&str, &str, &str, i128); 6] = [
        (
            "switchyard_end_user_requests_total",
            "counter",
            "Requests served to the end user.",
            i128::from(u.requests),
        ),
        (
            "switchyard_end_user_spend_picodollars_total",
            "counter",
            "The end user's spend, all time.",
            i128::from(u.usage.total.picos()),
        ),
        (
            "switchyard_end_user_spend_today_picodollars",
            "gauge",
            "The end user's spend this UTC day.",
            i128::from(u.usage.daily.picos()),
        ),
        (
            "switchyard_end_user_held_picodollars",
            "gauge",
            "Held by the end user's requests in flight (database holds).",
            i128::from(u.held.picos()),
        ),
        (
            "switchyard_end_user_blocked",
            "gauge",
            "1 while the end user is blocked.",
            i128::from(u.active_block(now).is_some()),
        ),
        (
            "switchyard_end_user_strikes_30d",
            "gauge",
            "Moderation strikes of the last 30 days.",
            strikes.len() as i128,
        ),
    ];
    let mut text = String::new();
    for (name, kind, help, value) in series {
        text.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{user=\"{l}\"}} {value}\n"
        ));
    }
    Ok(([(CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}
