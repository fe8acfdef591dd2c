//! Audit: the chain's state, a verification run from the page, and an export of the account's
//! records over a window (JSON Lines, as `switchyard audit export` writes them).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use switchyard_core::periods::parse_iso8601;

use crate::audit::AuditError;
use crate::console::view::{csrf_field, html_response, shell, time, Nav, Notice};
use crate::console::{Change, Signed};
use crate::routes::activity::{day_string, DAY_MS};
use crate::state::SharedState;

/// `GET audit`.
pub async fn page(State(state): State<SharedState>, signed: Signed) -> Response {
    render(&state, &signed, Notice::None, None).await
}

async fn render(
    state: &SharedState,
    signed: &Signed,
    notice: Notice,
    result: Option<Markup>,
) -> Response {
    let head = state.store.audit_last().await.ok().flatten();
    let checkpoint = state.store.audit_anchor("checkpoint").await.ok().flatten();
    let today = state.now_ms().div_euclid(DAY_MS);
    let body = html! {
        dl.facts {
            div { dt { "Last record" } dd { @if let Some((seq, hash)) = &head { "seq " (seq) ", hash " code.hash { (hash) } } @else { "none yet" } } }
            div { dt { "Prune checkpoint" } dd { @if let Some(c) = &checkpoint { "seq " (c.seq) } @else { "none (nothing pruned)" } } }
            div { dt { "Anchors" } dd { @if state.audit_key.is_some() { "signed (HMAC-SHA-256 with the audit key)" } @else { "unsigned: no audit key is configured" } } }
        }
        section {
            h2 { "Verify the chain" }
            p { "Reads every stored record, recomputes each hash and link, and checks the signed head and checkpoint." }
            form method="post" action=(signed.console.link("audit/verify")) {
                (csrf_field(signed))
                button type="submit" { "Verify now" }
            }
            @if let Some(result) = result { (result) }
        }
        section {
            h2 { "Export" }
            p { "This account's records created in the window, as JSON Lines (each with its seq, hash and previous hash)." }
            form.filters method="get" action=(signed.console.link("audit/export")) {
                label for="since" { "From (UTC day)" }
                input id="since" name="since" type="date" value=(day_string(today - 7)) required;
                label for="until" { "To (UTC day, included)" }
                input id="until" name="until" type="date" value=(day_string(today)) required;
                button type="submit" { "Export" }
            }
        }
    };
    html_response(
        StatusCode::OK,
        shell(signed, Nav::Audit, "Audit trail", &notice, body),
    )
}

/// `POST audit/verify`.
pub async fn verify(State(state): State<SharedState>, Change { signed, .. }: Change) -> Response {
    let at = time(state.now_ms());
    let (notice, result) = match crate::audit::verify(&state.store, state.audit_key.as_deref())
        .await
    {
        Ok(v) => {
            let range = v
                .range
                .map_or_else(|| "none".to_owned(), |(a, b)| format!("{a} to {b}"));
            (
                Notice::Done("The audit chain is intact.".into()),
                html! {
                    p.result.ok data-verified="true" {
                        "Verified at " (at) ": " (v.records) " records (seq " (range) "), anchors "
                        @if v.signed { "signed and checked." } @else { "unsigned (no audit key to check them with)." }
                    }
                },
            )
        }
        Err(AuditError::Broken(b)) => (
            Notice::Failed("The audit chain is broken.".into()),
            html! { p.result.bad data-verified="false" { "Verification at " (at) " failed: " (b) } },
        ),
        Err(e) => {
            tracing::error!(error = %e, "audit verification could not run");
            (
                Notice::Failed(
                    "The verification could not run (the store failed); see the gateway's log."
                        .into(),
                ),
                html! {},
            )
        }
    };
    render(&state, &signed, notice, Some(result)).await
}

/// A `YYYY-MM-DD` as the Unix ms of its start.
fn day_start(text: &str) -> Option<i64> {
    parse_iso8601(&format!("{text}T00:00:00Z"))
}

/// `GET audit/export?since=&until=`: a download of the account's records.
pub async fn export(
    State(state): State<SharedState>,
    signed: Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let since = q.get("since").and_then(|d| day_start(d));
    let until = q
        .get("until")
        .and_then(|d| day_start(d))
        .map(|t| t + DAY_MS);
    let (Some(since), Some(until)) = (since, until) else {
        return render(
            &state,
            &signed,
            Notice::Failed("Give the window as two days like 2026-11-23.".into()),
            None,
        )
        .await;
    };
    if until <= since {
        return render(
            &state,
            &signed,
            Notice::Failed("The window ends before it starts.".into()),
            None,
        )
        .await;
    }
    let mut out = Vec::new();
    match crate::audit::export(
        &state.store,
        since,
        until,
        Some(&signed.auth.key.account_id),
        &mut out,
    )
    .await
    {
        Ok(_) => (
            [
                (header::CONTENT_TYPE, "application/x-ndjson".to_owned()),
                (header::CACHE_CONTROL, "no-store".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!(
                        "attachment; filename=\"audit-{}-{}.jsonl\"",
                        day_string(since.div_euclid(DAY_MS)),
                        day_string(until.div_euclid(DAY_MS) - 1)
                    ),
                ),
            ],
            out,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "audit export failed");
            render(
                &state,
                &signed,
                Notice::Failed("The export failed; see the gateway's log.".into()),
                None,
            )
            .await
        }
    }
}
