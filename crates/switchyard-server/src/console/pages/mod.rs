//! The console's pages, one module per page of the navigation (and sign-in).

pub mod activity;
pub mod audit;
pub mod credits;
pub mod generations;
pub mod guardrails;
pub mod keys;
pub mod providers;
pub mod settings;
pub mod sign_in;

use std::sync::Arc;

use axum::response::Response;
use axum::Extension;
use serde_json::Value;
use switchyard_core::money::Money;

use super::{see_other, Console, Signed};
use crate::error::ApiError;

/// The console's root: Activity when signed in, else sign-in.
pub async fn index(
    Extension(console): Extension<Arc<Console>>,
    signed: Option<Signed>,
) -> Response {
    match signed {
        Some(_) => see_other(&console.link("activity")),
        None => see_other(&console.link("sign-in")),
    }
}

/// The `data` member of an API answer.
fn data(answer: Result<axum::Json<Value>, ApiError>) -> Result<Value, ApiError> {
    answer.map(|axum::Json(mut v)| v.get_mut("data").map(Value::take).unwrap_or(Value::Null))
}

/// An API amount (a JSON number of USD) back as exact money; 0 when absent.
fn money_of(value: &Value) -> Money {
    match value {
        Value::Number(n) => Money::from_json_number(n).unwrap_or(Money::ZERO),
        _ => Money::ZERO,
    }
}

/// A form's text for a JSON body member: a number when it reads as one (the API then checks
/// it), else a string (which the API refuses naming the field when it wants a number).
fn number_or_text(text: &str) -> Value {
    serde_json::from_str::<serde_json::Number>(text)
        .map(Value::Number)
        .unwrap_or_else(|_| Value::String(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn form_numbers_table() {
        assert_eq!(number_or_text("5"), json!(5));
        assert_eq!(number_or_text("2.50"), json!(2.5));
        assert_eq!(number_or_text("five"), json!("five"));
        assert_eq!(number_or_text("1e400"), json!("1e400"));
        assert_eq!(money_of(&json!(0.1)), Money::parse_usd("0.1").expect("usd"));
        assert_eq!(money_of(&Value::Null), Money::ZERO);
    }
}
