//! The read and management API, one module per resource. Handlers extract (authentication,
//! path, query, an [`ApiJson`](crate::extract::ApiJson) body), call the store or a service, and
//! render the contract's JSON.

pub mod activity;
pub mod credits;
pub mod end_users;
pub mod generations;
pub mod guardrails;
pub mod keys;
pub mod models;
pub mod presets;

use serde_json::Value;
use switchyard_core::money::Money;

use crate::error::ApiError;

/// The one workspace of an account (the gateway has no others).
pub const DEFAULT_WORKSPACE: &str = "default";

/// An amount as the contract's JSON number of USD.
fn usd(m: Money) -> Value {
    m.to_json_number()
}

/// A count from a query parameter, at most `max`.
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
