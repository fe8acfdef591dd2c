//! Generations: the searchable log, one generation's page (its routing decision, the data
//! policy of the provider that served it, the guardrail findings, its audit records and their
//! place in the chain) and, where prompt logging kept them, its prompt and completion, shown
//! on demand and the viewing audited.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use serde_json::{json, Value};
use switchyard_store::{AuditRow, GenerationQuery, GenerationRecord};

use super::data;
use crate::console::view::{
    count, csrf_field, html_response, shell, short_hash, time, usd, Nav, Notice,
};
use crate::console::{Change, Signed};
use crate::recorder::AuditEntry;
use crate::state::SharedState;

/// Rows per page of the log.
const PAGE: i64 = 50;

/// The log's filters read from the query string.
fn query_of(q: &HashMap<String, String>) -> (GenerationQuery, i64) {
    let text = |k: &str| {
        q.get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let page = q
        .get("page")
        .and_then(|p| p.parse::<i64>().ok())
        .unwrap_or(1)
        .clamp(1, 10_000);
    (
        GenerationQuery {
            key_hash: text("key"),
            model: text("model"),
            provider: text("provider"),
            end_user: text("user"),
            succeeded: match q.get("status").map(String::as_str) {
                Some("ok") => Some(true),
                Some("failed") => Some(false),
                _ => None,
            },
            search: text("q"),
            since_ms: None,
            until_ms: None,
            offset: (page - 1) * PAGE,
            limit: PAGE + 1,
        },
        page,
    )
}

/// `GET generations?q=&key=&model=&provider=&user=&status=&page=`.
pub async fn list(
    State(state): State<SharedState>,
    signed: Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (query, page_no) = query_of(&q);
    let account = &signed.auth.key.account_id;
    let mut notice = Notice::None;
    let mut rows = match state.store.list_generations(account, &query).await {
        Ok(rows) => rows,
        Err(e) => {
            notice = Notice::Failed(crate::error::ApiError::from(e).message);
            Vec::new()
        }
    };
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let keys = state
        .store
        .list_keys(account, state.now_ms())
        .await
        .unwrap_or_default();
    let names: HashMap<&str, &str> = keys
        .iter()
        .map(|k| (k.hash.as_str(), k.name.as_str()))
        .collect();
    let catalog = state.catalog();
    let link = |page: i64| {
        let mut params: Vec<(String, String)> = q
            .iter()
            .filter(|(k, _)| k.as_str() != "page")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        params.sort();
        params.push(("page".into(), page.to_string()));
        let encoded: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        format!(
            "{}?{}",
            signed.console.link("generations"),
            encoded.join("&")
        )
    };
    let value = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    let body = html! {
        form.filters method="get" action=(signed.console.link("generations")) role="search" {
            label for="q" { "Search" }
            input id="q" name="q" type="search" value=(value("q")) placeholder="gen-… id, model or provider";
            label for="key" { "Key" }
            select id="key" name="key" {
                option value="" { "All keys" }
                @for k in keys.iter().filter(|k| !k.is_management) {
                    option value=(k.hash) selected[value("key") == k.hash] { (k.name) }
                }
            }
            label for="model" { "Model" }
            select id="model" name="model" {
                option value="" { "All models" }
                @for m in catalog.models() {
                    option value=(m.id) selected[value("model") == m.id] { (m.id) }
                }
            }
            label for="provider" { "Provider" }
            select id="provider" name="provider" {
                option value="" { "All providers" }
                @for p in catalog.providers() {
                    option value=(p.slug) selected[value("provider") == p.slug] { (p.name) }
                }
            }
            label for="user" { "End user" }
            input id="user" name="user" type="text" value=(value("user"));
            label for="status" { "Status" }
            select id="status" name="status" {
                option value="" { "Any" }
                option value="ok" selected[value("status") == "ok"] { "Succeeded" }
                option value="failed" selected[value("status") == "failed"] { "Failed" }
            }
            button type="submit" { "Search" }
        }
        @if rows.is_empty() {
            p.empty { "No generation matches." }
        } @else {
            div.table-wrap {
                table.log {
                    caption { "Generations, newest first (page " (page_no) ")" }
                    thead { tr {
                        th scope="col" { "Time (UTC)" }
                        th scope="col" { "Generation" }
                        th scope="col" { "Key" }
                        th scope="col" { "Model" }
                        th scope="col" { "Provider" }
                        th.num scope="col" { "Tokens" }
                        th.num scope="col" { "Cost" }
                        th.num scope="col" { "Status" }
                        th.num scope="col" { "Latency" }
                    } }
                    tbody {
                        @for g in &rows {
                            tr {
                                td { (time(g.created_at)) }
                                td { a href=(signed.console.link(&format!("generations/{}", g.id))) { code { (g.id) } } }
                                td { (names.get(g.key_hash.as_str()).copied().unwrap_or_else(|| short_hash(&g.key_hash))) }
                                td { (g.model) }
                                td { (g.provider_name) }
                                td.num { (count(g.tokens_prompt)) " + " (count(g.tokens_completion)) }
                                td.num { (usd(g.cost)) }
                                td.num { span class=(if g.status < 400 { "ok" } else { "bad" }) { (g.status) } }
                                td.num { @if let Some(ms) = g.latency_ms { (ms) " ms" } @else { "–" } }
                            }
                        }
                    }
                }
            }
            nav.pager aria-label="Pages" {
                @if page_no > 1 { a href=(link(page_no - 1)) rel="prev" { "Newer" } }
                @if more { a href=(link(page_no + 1)) rel="next" { "Older" } }
            }
        }
    };
    html_response(
        StatusCode::OK,
        shell(&signed, Nav::Generations, "Generations", &notice, body),
    )
}

/// Percent-encodes a query string component.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The generation, when it is the account's.
async fn owned(state: &SharedState, signed: &Signed, id: &str) -> Option<GenerationRecord> {
    match state.store.generation(id).await {
        Ok(Some(g)) if g.account_id == signed.auth.key.account_id => Some(g),
        Ok(_) => None,
        Err(e) => {
            tracing::error!(error = %e, "reading a generation failed");
            None
        }
    }
}

fn not_found(signed: &Signed, id: &str) -> Response {
    crate::console::view::error_page(
        &signed.console,
        StatusCode::NOT_FOUND,
        "Generation not found",
        &format!("No generation {id} in this account."),
    )
}

/// `GET generations/{id}`.
pub async fn one(
    State(state): State<SharedState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Response {
    let Some(g) = owned(&state, &signed, &id).await else {
        return not_found(&signed, &id);
    };
    detail(&state, &signed, &g, Notice::None, None).await
}

/// The generation's page, with its logged content when it was just asked for.
async fn detail(
    state: &SharedState,
    signed: &Signed,
    g: &GenerationRecord,
    notice: Notice,
    content: Option<Markup>,
) -> Response {
    let account = &signed.auth.key.account_id;
    let records: Vec<AuditRow> = state
        .store
        .audit_for_generation(&g.id)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.account_id.as_deref() == Some(account))
        .collect();
    let head = state.store.audit_last().await.ok().flatten();
    let mut links = Vec::with_capacity(records.len());
    for r in &records {
        let previous = state.store.audit_record(r.seq - 1).await.ok().flatten();
        let genesis = r.prev_hash.bytes().all(|b| b == b'0');
        links.push(match previous {
            Some(p) if p.hash == r.prev_hash => "linked to the record before it",
            Some(_) => "BROKEN: the record before it has another hash",
            None if genesis => "the first record of the chain",
            None => "the record before it was pruned, behind the checkpoint",
        });
    }
    let request = records
        .iter()
        .filter_map(|r| serde_json::from_str::<Value>(&r.body).ok())
        .find(|b| b.get("kind").and_then(Value::as_str) == Some("inference"));
    let logged = state.store.content(&g.id).await.ok().flatten().is_some();
    let body = html! {
        section {
            h2 { "Summary" }
            dl.facts {
                div { dt { "Time (UTC)" } dd { (time(g.created_at)) } }
                div { dt { "Model" } dd { (g.model) } }
                div { dt { "Provider" } dd { (g.provider_name) } }
                div { dt { "Key" } dd { code { (short_hash(&g.key_hash)) } } }
                div { dt { "Status" } dd { (g.status) @if let Some(e) = &g.error_message { " – " (e) } } }
                div { dt { "Tokens" } dd { (count(g.tokens_prompt)) " prompt, " (count(g.tokens_completion)) " completion, " (count(g.tokens_reasoning)) " reasoning, " (count(g.tokens_cached)) " cached" } }
                div { dt { "Cost" } dd { (usd(g.cost)) @if g.is_byok { " (BYOK)" } } }
                div { dt { "Latency" } dd { @if let Some(ms) = g.latency_ms { (ms) " ms to first byte" } @if let Some(ms) = g.generation_time_ms { ", " (ms) " ms in all" } } }
                div { dt { "Finish" } dd { (g.finish_reason.as_deref().unwrap_or("–")) } }
                @if let Some(u) = &g.end_user { div { dt { "End user" } dd { (u) } } }
                @if let Some(r) = &g.router { div { dt { "Router" } dd { (r) } } }
            }
        }
        @match &request {
            Some(body) => (routing(body)),
            None => p.empty { "No audit record of this request is stored (pruned by retention)." },
        }
        section {
            h2 { "Audit records" }
            @if records.is_empty() {
                p.empty { "None stored." }
            } @else {
                div.table-wrap {
                    table {
                        thead { tr {
                            th scope="col" { "Seq" } th scope="col" { "Kind" } th scope="col" { "Hash" }
                            th scope="col" { "Previous hash" } th scope="col" { "Link" }
                        } }
                        tbody {
                            @for (r, link) in records.iter().zip(&links) {
                                tr {
                                    td { (r.seq) @if let Some((last, _)) = &head { " of " (last) } }
                                    td { (serde_json::from_str::<Value>(&r.body).ok().and_then(|b| b.get("kind").and_then(Value::as_str).map(str::to_owned)).unwrap_or_default()) }
                                    td { code.hash { (r.hash) } }
                                    td { code.hash { (r.prev_hash) } }
                                    td { (link) }
                                }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Prompt and completion" }
            @if let Some(content) = content {
                (content)
            } @else if logged {
                p { "Prompt logging was on for this request. Showing the content decrypts it and writes an audit record of the viewing." }
                form method="post" action=(signed.console.link(&format!("generations/{}/content", g.id))) {
                    (csrf_field(signed))
                    button type="submit" { "Show prompt and completion" }
                }
            } @else {
                p.empty { "Not logged: prompt logging was off for this account, or the content was pruned." }
            }
        }
    };
    html_response(
        StatusCode::OK,
        shell(
            signed,
            Nav::Generations,
            &format!("Generation {}", g.id),
            &notice,
            body,
        ),
    )
}

/// The routing decision, data policy and guardrail findings of an inference audit record.
fn routing(record: &Value) -> Markup {
    let list = |v: Option<&Value>| v.and_then(Value::as_array).cloned().unwrap_or_default();
    let routing = record.get("routing");
    let candidates = list(routing.and_then(|r| r.get("candidates")));
    let excluded = list(routing.and_then(|r| r.get("excluded")));
    let attempts = list(routing.and_then(|r| r.get("attempts")));
    let s = |v: &Value, k: &str| match v.get(k) {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let served = record.get("served").filter(|v| !v.is_null());
    let guardrails = list(record.get("guardrails"));
    html! {
        section {
            h2 { "Routing decision" }
            p {
                "Requested: " code { (s(record, "requested_model")) }
                @if let Some(c) = record.get("data_classification").and_then(Value::as_str) { "; classification " strong { (c) } }
            }
            h3 { "Candidates, in order" }
            @if candidates.is_empty() { p.empty { "None." } } @else {
                ol.candidates { @for c in &candidates { li { code { (s(c, "model")) } " at " (s(c, "provider")) " (" (s(c, "endpoint")) ")" } } }
            }
            h3 { "Excluded" }
            @if excluded.is_empty() { p.empty { "None." } } @else {
                ul.excluded { @for x in &excluded { li { code { (s(x, "model")) } " at " (s(x, "provider")) ": " strong { (s(x, "reason")) } } } }
            }
            h3 { "Attempts" }
            @if attempts.is_empty() { p.empty { "None." } } @else {
                ol.attempts { @for a in &attempts { li { (s(a, "provider")) " → " (s(a, "status")) @let e = s(a, "error"); @if !e.is_empty() { ": " (e) } } } }
            }
        }
        section {
            h2 { "Data policy of the provider that served it" }
            @if let Some(served) = served {
                @let policy = served.get("data_policy").cloned().unwrap_or(json!({}));
                dl.facts {
                    div { dt { "Provider" } dd { (s(served, "provider")) " (" (s(served, "endpoint")) ", upstream " code { (s(served, "upstream_model")) } ")" } }
                    div { dt { "Trains on prompts" } dd { (yes_no(&policy, "training")) } }
                    div { dt { "Retains prompts" } dd { (yes_no(&policy, "retains_prompts")) } }
                    div { dt { "Retention" } dd { @if let Some(d) = policy.get("retention_days").and_then(Value::as_u64) { (d) " days" } @else { "not stated" } } }
                    div { dt { "Zero data retention" } dd { (yes_no(&policy, "zdr")) } }
                }
            } @else {
                p.empty { "No provider served it." }
            }
        }
        section {
            h2 { "Guardrail findings" }
            @if guardrails.is_empty() { p.empty { "No guardrail applied to this key." } } @else {
                @for g in &guardrails { pre.json { (serde_json::to_string_pretty(g).unwrap_or_default()) } }
            }
        }
    }
}

fn yes_no(v: &Value, k: &str) -> &'static str {
    match v.get(k).and_then(Value::as_bool) {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    }
}

/// `POST generations/{id}/content`: decrypts the logged content through the API's handler,
/// after an audit record of the viewing is committed.
pub async fn content(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    Change { signed, .. }: Change,
) -> Response {
    let Some(g) = owned(&state, &signed, &id).await else {
        return not_found(&signed, &id);
    };
    let mut q = HashMap::new();
    q.insert("id".to_owned(), id.clone());
    let answer =
        crate::routes::generations::content(State(state.clone()), signed.auth.clone(), Query(q))
            .await;
    let content = match data(answer) {
        Ok(content) => content,
        Err(e) => return detail(&state, &signed, &g, Notice::Failed(e.message), None).await,
    };
    // The viewing is recorded before anything is shown.
    let now = state.now_ms();
    let record = json!({
        "account_id": signed.auth.key.account_id,
        "generation_id": id,
        "key_hash": signed.auth.key.hash,
        "kind": "content_view",
        "time": now,
        "via": "console",
    });
    let pending = state.recorder.record(
        None,
        AuditEntry {
            created_at: now,
            generation_id: id.clone(),
            account_id: Some(signed.auth.key.account_id.clone()),
            body: switchyard_core::audit::canonical_json(&record),
        },
    );
    if pending.wait().await.is_err() {
        return detail(
            &state,
            &signed,
            &g,
            Notice::Failed("The viewing could not be recorded in the audit trail, so the content is not shown.".into()),
            None,
        )
        .await;
    }
    let shown = html! {
        h3 { "Input" }
        pre.json { (serde_json::to_string_pretty(content.get("input").unwrap_or(&Value::Null)).unwrap_or_default()) }
        h3 { "Output" }
        pre.json { (serde_json::to_string_pretty(content.get("output").unwrap_or(&Value::Null)).unwrap_or_default()) }
    };
    detail(
        &state,
        &signed,
        &g,
        Notice::Done("Content decrypted; the viewing is in the audit trail.".into()),
        Some(shown),
    )
    .await
}
