//! Keys: `GET /api/v1/key` (the calling key) and the management API `/api/v1/keys`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use switchyard_core::money::Money;
use switchyard_core::periods::{parse_iso8601, to_iso8601};
use switchyard_store::{KeyRecord, KeyUpdate, LimitReset};

use super::{parse_count, usd, DEFAULT_WORKSPACE};
use crate::error::ApiError;
use crate::extract::{ApiJson, Management, Patch, Usd};
use crate::keys::{self, KeySpec};
use crate::state::{Authenticated, SharedState};

/// Body of `POST /api/v1/keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// Name (required).
    pub name: Option<String>,
    /// Spending limit in USD.
    pub limit: Option<Usd>,
    /// `daily`, `weekly` or `monthly`.
    pub limit_reset: Option<String>,
    /// BYOK spend counts against the limit.
    pub include_byok_in_limit: Option<bool>,
    /// Expiry, ISO-8601 UTC.
    pub expires_at: Option<String>,
    /// Creator.
    pub creator_user_id: Option<String>,
    /// Workspace: only the account's one workspace, `default`.
    pub workspace_id: Option<String>,
}

/// Body of `PATCH /api/v1/keys/{hash}`: absent members stay, `null` clears.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateKeyRequest {
    /// New name.
    #[serde(default)]
    pub name: Patch<String>,
    /// Disable or enable.
    #[serde(default)]
    pub disabled: Patch<bool>,
    /// New spending limit in USD.
    #[serde(default)]
    pub limit: Patch<Usd>,
    /// New window.
    #[serde(default)]
    pub limit_reset: Patch<String>,
    /// BYOK spend counts against the limit.
    #[serde(default)]
    pub include_byok_in_limit: Patch<bool>,
    /// New expiry, ISO-8601 UTC.
    #[serde(default)]
    pub expires_at: Patch<String>,
    /// Workspace: only the account's one workspace, `default`.
    #[serde(default)]
    pub workspace_id: Patch<String>,
}

fn parse_reset(text: String) -> Result<LimitReset, ApiError> {
    text.parse().map_err(ApiError::bad_request)
}

fn parse_expiry(text: String) -> Result<i64, ApiError> {
    parse_iso8601(&text).ok_or_else(|| {
        ApiError::bad_request(format!(
            "expires_at {text:?} is not an ISO-8601 UTC time like 2027-01-01T00:00:00Z"
        ))
    })
}

fn check_workspace(workspace: Option<&str>) -> Result<(), ApiError> {
    match workspace {
        None => Ok(()),
        Some(w) if w == DEFAULT_WORKSPACE => Ok(()),
        Some(_) => Err(ApiError::bad_request(format!(
            "workspace_id: this gateway has one workspace per account, {DEFAULT_WORKSPACE:?}"
        ))),
    }
}

impl CreateKeyRequest {
    /// The key's parameters (a standard key); checked further by [`keys::create`].
    pub fn into_spec(self) -> Result<KeySpec, ApiError> {
        check_workspace(self.workspace_id.as_deref())?;
        Ok(KeySpec {
            name: self.name.unwrap_or_default(),
            limit: self.limit.map(|l| l.0),
            limit_reset: self.limit_reset.map(parse_reset).transpose()?,
            include_byok_in_limit: self.include_byok_in_limit.unwrap_or(false),
            management: false,
            expires_at: self.expires_at.map(parse_expiry).transpose()?,
            creator_user_id: self.creator_user_id,
        })
    }
}

impl UpdateKeyRequest {
    /// The change; checked further by [`keys::update`].
    pub fn into_update(self) -> Result<KeyUpdate, ApiError> {
        let required = |name: &str| {
            ApiError::bad_request(format!("{name} cannot be null: leave it out to keep it"))
        };
        check_workspace(match &self.workspace_id {
            Patch::Set(w) => Some(w),
            Patch::Keep | Patch::Clear => None,
        })?;
        Ok(KeyUpdate {
            name: match self.name {
                Patch::Keep => None,
                Patch::Clear => return Err(required("name")),
                Patch::Set(n) => Some(n),
            },
            disabled: self.disabled.into_change().flatten(),
            limit: self
                .limit
                .try_map(|l| Ok::<_, ApiError>(l.0))?
                .into_change(),
            limit_reset: self.limit_reset.try_map(parse_reset)?.into_change(),
            include_byok_in_limit: self.include_byok_in_limit.into_change().flatten(),
            expires_at: self.expires_at.try_map(parse_expiry)?.into_change(),
        })
    }
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
pub async fn current(
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

/// Query of `GET /keys`.
#[derive(Debug, Default, Deserialize)]
pub struct KeysQuery {
    /// Keys skipped.
    pub offset: Option<String>,
    /// `true` to list disabled keys too.
    pub include_disabled: Option<String>,
    /// `true` to list expired keys too.
    pub include_expired: Option<String>,
}

/// `GET /api/v1/keys`.
pub async fn list(
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
pub async fn get(
    State(state): State<SharedState>,
    auth: Authenticated,
    Path(hash): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let k = owned_key(&state, &auth, &hash).await?;
    Ok(Json(json!({"data": key_json(&k)})))
}

/// `DELETE /api/v1/keys/{hash}`.
pub async fn delete(
    State(state): State<SharedState>,
    auth: Authenticated,
    Path(hash): Path<String>,
) -> Result<Json<Value>, ApiError> {
    owned_key(&state, &auth, &hash).await?;
    state.store.delete_key(&hash).await?;
    state.keys.invalidate(&hash).await;
    state.ledger.forget_key(&hash);
    Ok(Json(json!({"deleted": true})))
}

/// `POST /api/v1/keys`.
pub async fn create(
    State(state): State<SharedState>,
    Management(auth): Management,
    ApiJson(body): ApiJson<CreateKeyRequest>,
) -> Result<Response, ApiError> {
    let spec = body.into_spec()?;
    let now = state.now_ms();
    keys::check_future_expiry(spec.expires_at, now)?;
    let (key, record) =
        keys::create(&state.store, &auth.key.account_id, &spec, state.now_ms()).await?;
    let body = json!({"data": key_json(&record), "key": key});
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `PATCH /api/v1/keys/{hash}`.
pub async fn update(
    State(state): State<SharedState>,
    auth: Authenticated,
    Path(hash): Path<String>,
    body: Result<ApiJson<UpdateKeyRequest>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    owned_key(&state, &auth, &hash).await?;
    let ApiJson(body) = body?;
    let update = body.into_update()?;
    let now = state.now_ms();
    keys::check_future_expiry(update.expires_at.flatten(), now)?;
    let k = keys::update(&state.store, &hash, &update, now)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No key with hash {hash}")))?;
    state.keys.invalidate(&hash).await;
    state.ledger.update_key(&k);
    Ok(Json(json!({"data": key_json(&k)})))
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
