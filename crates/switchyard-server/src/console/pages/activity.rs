//! Activity: spend, tokens and requests per day, model, provider, key and end user over a
//! window of completed days. The per-day, model and provider figures are the rows of
//! `GET /api/v1/activity` (its handler is called), summed exactly.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use serde_json::Value;
use switchyard_core::money::Money;

use super::{data, money_of};
use crate::console::chart::{self, Bar};
use crate::console::view::{self, count, html_response, shell, short_hash, usd, Nav, Notice};
use crate::console::Signed;
use crate::routes::activity::{day_string, DAY_MS};
use crate::state::SharedState;

/// The windows offered, in completed UTC days.
const WINDOWS: [u32; 3] = [1, 7, 30];

/// Sums of one group of rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Requests.
    pub requests: u64,
    /// Spend charged to credits.
    pub usage: Money,
    /// Spend on BYOK endpoints.
    pub byok: Money,
    /// Prompt tokens.
    pub prompt: u64,
    /// Completion tokens.
    pub completion: u64,
}

impl Totals {
    fn add(&mut self, other: &Totals) {
        self.requests += other.requests;
        self.usage = self.usage.saturating_add(other.usage);
        self.byok = self.byok.saturating_add(other.byok);
        self.prompt += other.prompt;
        self.completion += other.completion;
    }

    fn tokens(&self) -> u64 {
        self.prompt + self.completion
    }

    /// One row of `GET /api/v1/activity`.
    fn of_row(row: &Value) -> Totals {
        let n = |k: &str| row.get(k).and_then(Value::as_u64).unwrap_or(0);
        Totals {
            requests: n("requests"),
            usage: money_of(row.get("usage").unwrap_or(&Value::Null)),
            byok: money_of(row.get("byok_usage_inference").unwrap_or(&Value::Null)),
            prompt: n("prompt_tokens"),
            completion: n("completion_tokens"),
        }
    }
}

/// The API's rows grouped: per day, model and provider, and in all.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Grouped {
    /// Per `YYYY-MM-DD`.
    pub days: BTreeMap<String, Totals>,
    /// Per model id.
    pub models: BTreeMap<String, Totals>,
    /// Per provider name.
    pub providers: BTreeMap<String, Totals>,
    /// Everything.
    pub total: Totals,
}

impl Grouped {
    /// Adds one row's totals under its day, model and provider.
    fn add(&mut self, date: String, model: String, provider: String, t: &Totals) {
        self.days.entry(date).or_default().add(t);
        self.models.entry(model).or_default().add(t);
        self.providers.entry(provider).or_default().add(t);
        self.total.add(t);
    }
}

/// Groups the rows of `GET /api/v1/activity` dated `from` (a `YYYY-MM-DD`) or later.
pub fn group(rows: &[Value], from: &str) -> Grouped {
    let mut g = Grouped::default();
    let text = |row: &Value, k: &str| row.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    for row in rows {
        let date = text(row, "date");
        if date.as_str() < from {
            continue;
        }
        g.add(
            date,
            text(row, "model"),
            text(row, "provider_name"),
            &Totals::of_row(row),
        );
    }
    g
}

/// `GET activity?days=&key=`.
pub async fn page(
    State(state): State<SharedState>,
    signed: Signed,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut notice = Notice::None;
    let days = match query.get("days").map(|d| d.parse::<u32>()) {
        None => 30,
        Some(Ok(d)) if WINDOWS.contains(&d) => d,
        Some(_) => {
            notice = Notice::Failed("The window must be 1, 7 or 30 days; showing 30.".into());
            30
        }
    };
    let key = query
        .get("key")
        .filter(|k| !k.is_empty())
        .map(|k| k.to_ascii_lowercase());
    let mut api_query = HashMap::new();
    if let Some(k) = &key {
        api_query.insert("api_key_hash".to_owned(), k.clone());
    }
    let answer =
        crate::routes::activity::get(State(state.clone()), signed.auth.clone(), Query(api_query))
            .await;
    let rows = match data(answer) {
        Ok(Value::Array(rows)) => rows,
        Ok(_) => Vec::new(),
        Err(e) => {
            notice = Notice::Failed(e.message);
            Vec::new()
        }
    };
    let account = &signed.auth.key.account_id;
    let now = state.now_ms();
    let today = now.div_euclid(DAY_MS);
    let first = today - i64::from(days);
    // The API reports completed days; today so far comes from the same store query.
    let completed = group(&rows, &day_string(first));
    let mut grouped = group(&rows, &day_string(first));
    match state
        .store
        .activity(
            account,
            today * DAY_MS,
            (today + 1) * DAY_MS,
            key.as_deref(),
        )
        .await
    {
        Ok(today_rows) => {
            for r in today_rows {
                let t = Totals {
                    requests: r.requests,
                    usage: r.usage,
                    byok: r.byok_usage,
                    prompt: r.prompt_tokens,
                    completion: r.completion_tokens,
                };
                grouped.add(day_string(r.day), r.model, r.provider_name, &t);
            }
        }
        Err(e) => notice = Notice::Failed(crate::error::ApiError::from(e).message),
    }
    let keys = state
        .store
        .list_keys(account, now)
        .await
        .unwrap_or_default();
    let names: HashMap<&str, &str> = keys
        .iter()
        .map(|k| (k.hash.as_str(), k.name.as_str()))
        .collect();
    let by_user = match state
        .store
        .usage_by_key_and_user(
            account,
            first * DAY_MS,
            (today + 1) * DAY_MS,
            key.as_deref(),
        )
        .await
    {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(error = %e, "reading usage per key and user failed");
            Vec::new()
        }
    };
    let mut per_key: BTreeMap<String, Totals> = BTreeMap::new();
    let mut per_user: BTreeMap<String, Totals> = BTreeMap::new();
    for r in &by_user {
        let t = Totals {
            requests: r.requests,
            usage: r.usage,
            byok: r.byok_usage,
            prompt: r.prompt_tokens,
            completion: r.completion_tokens,
        };
        let name = names
            .get(r.key_hash.as_str())
            .map_or_else(|| short_hash(&r.key_hash).to_owned(), |n| (*n).to_owned());
        per_key.entry(name).or_default().add(&t);
        per_user
            .entry(r.end_user.clone().unwrap_or_else(|| "(none)".to_owned()))
            .or_default()
            .add(&t);
    }
    let series: Vec<(String, Totals)> = (first..=today)
        .map(|d| {
            let label = day_string(d);
            let t = grouped.days.get(&label).copied().unwrap_or_default();
            (label, t)
        })
        .collect();
    let spend_bars: Vec<Bar> = series
        .iter()
        .map(|(l, t)| Bar {
            label: l.clone(),
            value: u128::try_from(t.usage.picos().max(0)).unwrap_or(0),
            shown: usd(t.usage),
        })
        .collect();
    let token_bars: Vec<Bar> = series
        .iter()
        .map(|(l, t)| Bar {
            label: l.clone(),
            value: u128::from(t.tokens()),
            shown: count(t.tokens()),
        })
        .collect();
    let request_bars: Vec<Bar> = series
        .iter()
        .map(|(l, t)| Bar {
            label: l.clone(),
            value: u128::from(t.requests),
            shown: count(t.requests),
        })
        .collect();
    let window = format!(
        "{} to {}, and today so far (UTC)",
        day_string(first),
        day_string(today - 1)
    );
    let body = html! {
        form.filters method="get" action=(signed.console.link("activity")) {
            label for="days" { "Window" }
            select id="days" name="days" {
                @for w in WINDOWS {
                    option value=(w) selected[w == days] {
                        @if w == 1 { "Yesterday and today" } @else { "Last " (w) " days and today" }
                    }
                }
            }
            label for="key" { "Key" }
            select id="key" name="key" {
                option value="" { "All keys" }
                @for k in keys.iter().filter(|k| !k.is_management) {
                    option value=(k.hash) selected[key.as_deref() == Some(k.hash.as_str())] { (k.name) }
                }
            }
            button type="submit" { "Show" }
        }
        p.help {
            (window) ". Completed days are the rows of " code { "GET /api/v1/activity" }
            "; today joins them once it ends."
        }
        dl.totals {
            div { dt { "Spend" } dd data-total="spend" { (usd(grouped.total.usage)) } }
            div { dt { "BYOK spend" } dd data-total="byok" { (usd(grouped.total.byok)) } }
            div { dt { "Requests" } dd data-total="requests" { (count(grouped.total.requests)) } }
            div { dt { "Prompt tokens" } dd data-total="prompt" { (count(grouped.total.prompt)) } }
            div { dt { "Completion tokens" } dd data-total="completion" { (count(grouped.total.completion)) } }
        }
        p.api-totals {
            "Of which completed days, as " code { "/api/v1/activity" } " reports them: "
            span data-api="spend" { (usd(completed.total.usage)) } " spend, "
            span data-api="byok" { (usd(completed.total.byok)) } " BYOK, "
            span data-api="requests" { (count(completed.total.requests)) } " requests, "
            span data-api="prompt" { (count(completed.total.prompt)) } " prompt and "
            span data-api="completion" { (count(completed.total.completion)) } " completion tokens."
        }
        div.charts {
            (chart::bars("spend", "Spend per day", &format!("Spend charged to credits per UTC day, {window}"), &spend_bars))
            (chart::bars("tokens", "Tokens per day", &format!("Prompt and completion tokens per UTC day, {window}"), &token_bars))
            (chart::bars("requests", "Requests per day", &format!("Requests per UTC day, {window}"), &request_bars))
        }
        (breakdown("By day", "Day", grouped.days.iter().rev()))
        (breakdown("By model", "Model", grouped.models.iter()))
        (breakdown("By provider", "Provider", grouped.providers.iter()))
        (breakdown("By key", "Key", per_key.iter()))
        (breakdown("By end user", "End user (the request's user)", per_user.iter()))
    };
    html_response(
        StatusCode::OK,
        shell(&signed, Nav::Activity, "Activity", &notice, body),
    )
}

/// A table of totals per group.
fn breakdown<'a>(
    title: &str,
    what: &str,
    rows: impl Iterator<Item = (&'a String, &'a Totals)>,
) -> Markup {
    let rows: Vec<_> = rows.collect();
    html! {
        section {
            h2 { (title) }
            @if rows.is_empty() {
                p.empty { "No requests in this window." }
            } @else {
                div.table-wrap {
                    table {
                        thead { tr {
                            th scope="col" { (what) }
                            th.num scope="col" { "Requests" }
                            th.num scope="col" { "Spend" }
                            th.num scope="col" { "BYOK spend" }
                            th.num scope="col" { "Prompt tokens" }
                            th.num scope="col" { "Completion tokens" }
                        } }
                        tbody {
                            @for (name, t) in rows {
                                tr {
                                    th scope="row" { (name) }
                                    td.num { (count(t.requests)) }
                                    td.num { (view::usd(t.usage)) }
                                    td.num { (view::usd(t.byok)) }
                                    td.num { (count(t.prompt)) }
                                    td.num { (count(t.completion)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn groups_sum_exactly_from_the_window() {
        let rows = vec![
            json!({"date": "2026-11-20", "model": "a/x", "provider_name": "P", "usage": 0.1, "byok_usage_inference": 0, "requests": 1, "prompt_tokens": 10, "completion_tokens": 5}),
            json!({"date": "2026-11-21", "model": "a/x", "provider_name": "Q", "usage": 0.2, "byok_usage_inference": 0.05, "requests": 2, "prompt_tokens": 1, "completion_tokens": 1}),
            json!({"date": "2026-11-21", "model": "b/y", "provider_name": "P", "usage": 0.000000000001, "byok_usage_inference": 0, "requests": 1, "prompt_tokens": 0, "completion_tokens": 0}),
        ];
        let g = group(&rows, "2026-11-21");
        assert_eq!(g.total.requests, 3);
        assert_eq!(
            g.total.usage,
            Money::parse_usd("0.200000000001").expect("usd")
        );
        assert_eq!(g.total.byok, Money::parse_usd("0.05").expect("usd"));
        assert_eq!(g.days.len(), 1);
        assert_eq!(g.models["a/x"].requests, 2);
        assert_eq!(g.providers["P"].requests, 1);
        let all = group(&rows, "");
        assert_eq!(
            all.total.usage,
            Money::parse_usd("0.300000000001").expect("usd")
        );
        assert_eq!(all.total.prompt, 11);
    }
}
