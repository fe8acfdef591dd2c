//! Providers and models: the catalogue snapshot (prices, data policies) and each endpoint's
//! live health (circuit state, error rate, latency quantiles) from the health tracker routing
//! uses.

use std::str::FromStr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use rust_decimal::Decimal;
use switchyard_core::health::CircuitState;

use crate::console::view::{count, html_response, shell, Nav, Notice};
use crate::console::Signed;
use crate::state::SharedState;

/// A per-token price as USD per million tokens, exactly (`0.0000025` is `2.5`).
pub fn per_million(price: &str) -> String {
    Decimal::from_str(price)
        .ok()
        .and_then(|d| d.checked_mul(Decimal::from(1_000_000)))
        .map_or_else(|| price.to_owned(), |d| d.normalize().to_string())
}

/// `GET providers`.
pub async fn page(State(state): State<SharedState>, signed: Signed) -> Response {
    let catalog = state.catalog();
    let now = state.now_ms();
    let yes = |b: bool| if b { "yes" } else { "no" };
    let body = html! {
        section {
            h2 { "Providers" }
            div.table-wrap {
                table {
                    thead { tr {
                        th scope="col" { "Provider" } th scope="col" { "Wire format" }
                        th scope="col" { "Trains on prompts" } th scope="col" { "Retains prompts" }
                        th scope="col" { "Retention" } th scope="col" { "Zero data retention" }
                        th scope="col" { "Key" }
                    } }
                    tbody {
                        @for p in catalog.providers() {
                            tr {
                                th scope="row" { (p.name) " " code { (p.slug) } }
                                td { (p.kind.as_str()) }
                                td { (yes(p.data_policy.training)) }
                                td { (yes(p.data_policy.retains_prompts)) }
                                td { @if let Some(d) = p.data_policy.retention_days { (d) " days" } @else { "not stated" } }
                                td { (yes(p.data_policy.zdr)) }
                                td { @if p.byok { "your own (BYOK)" } @else if p.api_key_env.is_some() { "configured" } @else { "none needed" } }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Models and endpoints" }
            p.help { "Prices in USD per million tokens. Health covers this gateway process: the circuit breaker, the share of failed attempts over the last 5 minutes, and time to first token over the last 30 minutes." }
            div.table-wrap {
                table.models {
                    thead { tr {
                        th scope="col" { "Model" } th scope="col" { "Endpoint" }
                        th.num scope="col" { "Context" }
                        th.num scope="col" { "Prompt" } th.num scope="col" { "Completion" }
                        th scope="col" { "Circuit" } th.num scope="col" { "Error rate" }
                        th.num scope="col" { "Latency p50 / p90 / p99" }
                    } }
                    tbody {
                        @for m in catalog.models() {
                            @for (i, e) in m.endpoints.iter().enumerate() {
                                @let stats = state.health.stats(&m.id, &e.tag, now);
                                tr {
                                    @if i == 0 {
                                        th scope="rowgroup" rowspan=(m.endpoints.len()) { (m.name) br; code { (m.id) } }
                                    }
                                    td { (e.tag) }
                                    td.num { (count(e.context_length)) }
                                    td.num { "$" (per_million(&e.pricing.prompt.text)) }
                                    td.num { "$" (per_million(&e.pricing.completion.text)) }
                                    td {
                                        @match stats.circuit {
                                            CircuitState::Closed => span.ok { "closed" },
                                            CircuitState::Open => span.bad { "open" },
                                            CircuitState::HalfOpen => span.warn { "half-open" },
                                        }
                                    }
                                    td.num { @if let Some(up) = stats.uptime_last_5m { (format!("{:.1}", 100.0 - up)) " %" } @else { "–" } }
                                    td.num {
                                        @if let Some(q) = stats.latency_last_30m {
                                            (format!("{:.0} / {:.0} / {:.0}", q.p50, q.p90, q.p99)) " ms"
                                        } @else { "not measured" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    html_response(
        StatusCode::OK,
        shell(
            &signed,
            Nav::Providers,
            "Providers and models",
            &Notice::None,
            body,
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_million_table() {
        for (price, expected) in [
            ("0.0000025", "2.5"),
            ("0", "0"),
            ("0.000000000001", "0.000001"),
            ("0.00003", "30"),
            ("nope", "nope"),
        ] {
            assert_eq!(per_million(price), expected, "{price}");
        }
    }
}
