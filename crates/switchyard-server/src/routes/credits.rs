//! `GET /api/v1/credits`: the account's credits and usage (management keys).

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::usd;
use crate::error::ApiError;
use crate::state::{Authenticated, SharedState};

/// `GET /api/v1/credits`.
pub async fn get(
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
