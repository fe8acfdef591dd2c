//! Credits: the balance (`GET /api/v1/credits`'s figures, plus what is held by requests in
//! flight) and adding credits.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_core::money::Money;

use super::{data, money_of, number_or_text};
use crate::console::view::{csrf_field, html_response, shell, usd, Nav, Notice};
use crate::console::{Change, Signed};
use crate::error::ApiError;
use crate::extract::{parse, Usd};
use crate::state::SharedState;

/// Most credits added at once, in USD: a typo's extra zeros are refused.
const MAX_ADD_USD: i64 = 1_000_000;

/// The body of an addition, read like a management API body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddCredits {
    amount: Usd,
}

/// Checks an amount to add: positive, at most [`MAX_ADD_USD`].
pub fn check_amount(amount: Money) -> Result<Money, ApiError> {
    let max = Money::from_picos(MAX_ADD_USD.saturating_mul(1_000_000_000_000));
    if amount.picos() <= 0 || amount.picos() > max.picos() {
        Err(ApiError::bad_request(format!(
            "amount must be more than 0 and at most {MAX_ADD_USD} USD"
        )))
    } else {
        Ok(amount)
    }
}

/// `GET credits`.
pub async fn page(State(state): State<SharedState>, signed: Signed) -> Response {
    render(&state, &signed, StatusCode::OK, Notice::None).await
}

async fn render(
    state: &SharedState,
    signed: &Signed,
    status: StatusCode,
    notice: Notice,
) -> Response {
    let mut notice = notice;
    let answer = crate::routes::credits::get(State(state.clone()), signed.auth.clone()).await;
    let credits = data(answer).unwrap_or_else(|e| {
        notice = Notice::Failed(e.message);
        Value::Null
    });
    let total = money_of(credits.get("total_credits").unwrap_or(&Value::Null));
    let used = money_of(credits.get("total_usage").unwrap_or(&Value::Null));
    let held = state
        .store
        .account(&signed.auth.key.account_id)
        .await
        .ok()
        .flatten()
        .map_or(Money::ZERO, |a| a.held);
    let body = html! {
        dl.totals {
            div { dt { "Credits bought" } dd data-total="credits" { (usd(total)) } }
            div { dt { "Used" } dd data-total="usage" { (usd(used)) } }
            div { dt { "Held by requests in flight" } dd { (usd(held)) } }
            div { dt { "Balance" } dd data-total="balance" { (usd(Money::from_picos(total.picos().saturating_sub(used.picos())))) } }
        }
        p.help { "Figures of " code { "GET /api/v1/credits" } "." }
        section {
            h2 { "Add credits" }
            form.stack method="post" action=(signed.console.link("credits")) {
                (csrf_field(signed))
                label for="amount" { "Amount (USD)" }
                input id="amount" name="amount" type="text" inputmode="decimal" required placeholder="10.00";
                button type="submit" { "Add" }
            }
        }
    };
    html_response(
        status,
        shell(signed, Nav::Credits, "Credits", &notice, body),
    )
}

/// `POST credits`: adds to the account's credits, as `switchyard credits add` does.
pub async fn add(State(state): State<SharedState>, Change { signed, fields }: Change) -> Response {
    let result = async {
        let amount = fields
            .get("amount")
            .ok_or_else(|| ApiError::bad_request("Enter an amount"))?;
        let body: AddCredits = parse(json!({"amount": number_or_text(amount)}).to_string().as_bytes())?;
        let amount = check_amount(body.amount.0)?;
        state
            .store
            .add_credits(&signed.auth.key.account_id, amount)
            .await?
            .ok_or_else(|| ApiError::not_found("Account not found"))?;
        tracing::info!(key = %signed.auth.key.label, amount = %amount, "credits added from the console");
        Ok::<_, ApiError>(amount)
    }
    .await;
    match result {
        Ok(amount) => {
            render(
                &state,
                &signed,
                StatusCode::OK,
                Notice::Done(format!("Added {}.", usd(amount))),
            )
            .await
        }
        Err(e) => {
            render(
                &state,
                &signed,
                StatusCode::BAD_REQUEST,
                Notice::Failed(e.message),
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_table() {
        let usd = |s: &str| Money::parse_usd(s).expect("usd");
        assert!(check_amount(usd("0.01")).is_ok());
        assert!(check_amount(usd("1000000")).is_ok());
        assert!(check_amount(usd("1000000.01")).is_err());
        assert!(check_amount(usd("0")).is_err());
        assert!(check_amount(usd("-1")).is_err());
    }
}
