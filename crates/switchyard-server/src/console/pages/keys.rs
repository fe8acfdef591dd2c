//! Keys: create (the secret shown once), limits and their reset window, expiry, disable and
//! enable, delete, and the key's guardrail. Every change is the keys and guardrails APIs' own
//! request type parsed from the form's JSON and handed to their handler or service.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use serde_json::{json, Map, Value};

use super::{data, money_of, number_or_text};
use crate::console::view::{csrf_field, html_response, shell, time, usd, Nav, Notice};
use crate::console::{Change, Fields, Signed};
use crate::error::ApiError;
use crate::extract::{parse, ApiJson, Management};
use crate::routes::guardrails::KeyHashes;
use crate::routes::keys::{CreateKeyRequest, UpdateKeyRequest};
use crate::state::SharedState;

/// `GET keys`.
pub async fn page(State(state): State<SharedState>, signed: Signed) -> Response {
    render(&state, &signed, StatusCode::OK, Notice::None, None).await
}

async fn render(
    state: &SharedState,
    signed: &Signed,
    status: StatusCode,
    notice: Notice,
    created: Option<Markup>,
) -> Response {
    let mut notice = notice;
    // Every key, a page of the API's list (100) at a time.
    let mut keys: Vec<Value> = Vec::new();
    loop {
        let query = crate::routes::keys::KeysQuery {
            offset: Some(keys.len().to_string()),
            include_disabled: Some("true".to_owned()),
            include_expired: Some("true".to_owned()),
        };
        let answer =
            crate::routes::keys::list(State(state.clone()), signed.auth.clone(), Ok(Query(query)))
                .await;
        match data(answer) {
            Ok(Value::Array(page)) => {
                let full = page.len() >= 100;
                keys.extend(page);
                if !full {
                    break;
                }
            }
            Ok(_) => break,
            Err(e) => {
                notice = Notice::Failed(e.message);
                break;
            }
        }
    }
    let account = &signed.auth.key.account_id;
    let guardrails = state
        .store
        .list_guardrails(account)
        .await
        .unwrap_or_default();
    let guardrail_name = |id: &str| {
        guardrails
            .iter()
            .find(|g| g.id == id)
            .and_then(|g| serde_json::from_str::<Value>(&g.body).ok())
            .and_then(|b| b.get("name").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| id.to_owned())
    };
    let assignments = state
        .store
        .guardrail_assignments(account, None)
        .await
        .unwrap_or_default();
    let assigned: HashMap<&str, &str> = assignments
        .iter()
        .map(|a| (a.key_hash.as_str(), a.guardrail_id.as_str()))
        .collect();
    let now_iso = time(state.now_ms());
    let s = |k: &Value, f: &str| k.get(f).and_then(Value::as_str).unwrap_or("").to_owned();
    let body = html! {
        @if let Some(created) = created { (created) }
        section {
            h2 { "Create a key" }
            form.stack.create method="post" action=(signed.console.link("keys")) {
                (csrf_field(signed))
                label for="new-name" { "Name" }
                input id="new-name" name="name" type="text" required maxlength="200";
                label for="new-limit" { "Spending limit (USD, empty for none)" }
                input id="new-limit" name="limit" type="text" inputmode="decimal";
                label for="new-reset" { "Limit resets" }
                select id="new-reset" name="limit_reset" {
                    option value="" { "Never" }
                    option value="daily" { "Daily" }
                    option value="weekly" { "Weekly (Monday)" }
                    option value="monthly" { "Monthly" }
                }
                label for="new-expires" { "Expires at (ISO-8601 UTC, empty for never)" }
                input id="new-expires" name="expires_at" type="text" placeholder="2027-01-01T00:00:00Z";
                label.check { input name="include_byok_in_limit" type="checkbox" value="true"; " BYOK spend counts against the limit" }
                button type="submit" { "Create key" }
            }
        }
        section {
            h2 { "Keys" }
            @if keys.is_empty() {
                p.empty { "No keys yet." }
            } @else {
                div.table-wrap {
                    table.keys {
                        thead { tr {
                            th scope="col" { "Name" } th scope="col" { "Key" } th scope="col" { "State" }
                            th.num scope="col" { "Limit" } th.num scope="col" { "Remaining" }
                            th.num scope="col" { "Usage (total / month / week / day)" }
                            th scope="col" { "Guardrail" } th scope="col" { "Last used" }
                            th scope="col" { "Actions" }
                        } }
                        tbody {
                            @for k in &keys {
                                @let hash = s(k, "hash");
                                @let disabled = k.get("disabled").and_then(Value::as_bool).unwrap_or(false);
                                @let expires = s(k, "expires_at");
                                @let expired = !expires.is_empty() && expires <= now_iso;
                                @let action = signed.console.link(&format!("keys/{hash}"));
                                tr data-key=(hash) {
                                    th scope="row" { (s(k, "name")) }
                                    td { code { (s(k, "label")) } }
                                    td { @if disabled { span.bad { "disabled" } } @else if expired { span.bad { "expired" } } @else { span.ok { "enabled" } } }
                                    td.num {
                                        @if k.get("limit").is_some_and(|l| !l.is_null()) { (usd(money_of(&k["limit"]))) } @else { "none" }
                                        @let reset = s(k, "limit_reset"); @if !reset.is_empty() { " / " (reset) }
                                    }
                                    td.num { @if k.get("limit_remaining").is_some_and(|l| !l.is_null()) { (usd(money_of(&k["limit_remaining"]))) } @else { "–" } }
                                    td.num { (usd(money_of(&k["usage"]))) " / " (usd(money_of(&k["usage_monthly"]))) " / " (usd(money_of(&k["usage_weekly"]))) " / " (usd(money_of(&k["usage_daily"]))) }
                                    td { @if let Some(g) = assigned.get(hash.as_str()) { (guardrail_name(g)) } @else { "none" } }
                                    td { @let last = s(k, "last_used_at"); @if last.is_empty() { "never" } @else { (last) } }
                                    td.actions {
                                        form method="post" action=(action) {
                                            (csrf_field(signed))
                                            @if disabled {
                                                button type="submit" name="action" value="enable" { "Enable" }
                                            } @else {
                                                button type="submit" name="action" value="disable" { "Disable" }
                                            }
                                        }
                                        form method="post" action=(action) data-confirm=(format!("Delete the key {}? Requests with it will be refused.", s(k, "name"))) {
                                            (csrf_field(signed))
                                            button.danger type="submit" name="action" value="delete" { "Delete" }
                                        }
                                        details {
                                            summary { "Limits and guardrail" }
                                            form.stack method="post" action=(action) {
                                                (csrf_field(signed))
                                                input type="hidden" name="action" value="limits";
                                                input type="hidden" name="current_expires_at" value=(expires);
                                                label for=(format!("limit-{hash}")) { "Spending limit (USD, empty for none)" }
                                                input id=(format!("limit-{hash}")) name="limit" type="text" inputmode="decimal"
                                                    value=(k.get("limit").filter(|l| !l.is_null()).map(|l| money_of(l).to_usd().to_string()).unwrap_or_default());
                                                label for=(format!("reset-{hash}")) { "Limit resets" }
                                                select id=(format!("reset-{hash}")) name="limit_reset" {
                                                    @let reset = s(k, "limit_reset");
                                                    option value="" selected[reset.is_empty()] { "Never" }
                                                    @for r in ["daily", "weekly", "monthly"] { option value=(r) selected[reset == r] { (r) } }
                                                }
                                                label for=(format!("expires-{hash}")) { "Expires at (ISO-8601 UTC, empty for never)" }
                                                input id=(format!("expires-{hash}")) name="expires_at" type="text" value=(expires);
                                                label.check { input name="include_byok_in_limit" type="checkbox" value="true" checked[k.get("include_byok_in_limit").and_then(Value::as_bool).unwrap_or(false)]; " BYOK spend counts against the limit" }
                                                button type="submit" { "Save limits" }
                                            }
                                            form.stack method="post" action=(action) {
                                                (csrf_field(signed))
                                                input type="hidden" name="action" value="guardrail";
                                                label for=(format!("guardrail-{hash}")) { "Guardrail" }
                                                select id=(format!("guardrail-{hash}")) name="guardrail" {
                                                    option value="" { "None" }
                                                    @for g in &guardrails {
                                                        option value=(g.id) selected[assigned.get(hash.as_str()) == Some(&g.id.as_str())] { (guardrail_name(&g.id)) }
                                                    }
                                                }
                                                button type="submit" { "Assign" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    html_response(status, shell(signed, Nav::Keys, "Keys", &notice, body))
}

/// The form's members as a keys API body: blank fields left out.
fn body_of(fields: &Fields, names: &[&str]) -> Map<String, Value> {
    let mut body = Map::new();
    for name in names {
        if let Some(v) = fields.get(name) {
            let value = if *name == "limit" {
                number_or_text(v)
            } else {
                Value::String(v.to_owned())
            };
            body.insert((*name).to_owned(), value);
        }
    }
    body
}

/// `POST keys`: `POST /api/v1/keys`'s body, request type and key service.
pub async fn create(
    State(state): State<SharedState>,
    Change { signed, fields }: Change,
) -> Response {
    let mut body = body_of(&fields, &["name", "limit", "limit_reset", "expires_at"]);
    if fields.checked("include_byok_in_limit") {
        body.insert("include_byok_in_limit".into(), json!(true));
    }
    let result = async {
        let request: CreateKeyRequest = parse(Value::Object(body).to_string().as_bytes())?;
        let answer = crate::routes::keys::create(
            State(state.clone()),
            Management(signed.auth.clone()),
            ApiJson(request),
        )
        .await?;
        let bytes = axum::body::to_bytes(answer.into_body(), 1 << 20)
            .await
            .map_err(|e| ApiError::internal(&e))?;
        serde_json::from_slice::<Value>(&bytes).map_err(|e| ApiError::internal(&e))
    }
    .await;
    match result {
        Ok(created) => {
            let key = created.get("key").and_then(Value::as_str).unwrap_or("");
            let name = created
                .pointer("/data/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let shown = html! {
                section.secret aria-labelledby="new-key-title" {
                    h2 id="new-key-title" { "New key " (name) }
                    p { strong { "Copy it now: it is not shown again." } " Only its hash is stored." }
                    p { output id="new-key" data-copy { (key) } }
                    button type="button" data-copy-from="new-key" hidden { "Copy" }
                }
            };
            render(
                &state,
                &signed,
                StatusCode::CREATED,
                Notice::Done(format!("Key {name} created.")),
                Some(shown),
            )
            .await
        }
        Err(e) => {
            render(
                &state,
                &signed,
                StatusCode::BAD_REQUEST,
                Notice::Failed(e.message),
                None,
            )
            .await
        }
    }
}

/// `POST keys/{hash}` with `action`: `enable`, `disable`, `limits`, `delete` or `guardrail`.
pub async fn change(
    State(state): State<SharedState>,
    Path(hash): Path<String>,
    Change { signed, fields }: Change,
) -> Response {
    let update = |body: Value| {
        let state = state.clone();
        let auth = signed.auth.clone();
        let hash = hash.clone();
        async move {
            let request: UpdateKeyRequest = parse(body.to_string().as_bytes())?;
            crate::routes::keys::update(State(state), auth, Path(hash), Ok(ApiJson(request)))
                .await
                .map(|_| ())
        }
    };
    let result: Result<&str, ApiError> = match fields.get("action") {
        Some("disable") => update(json!({"disabled": true}))
            .await
            .map(|()| "Key disabled."),
        Some("enable") => update(json!({"disabled": false}))
            .await
            .map(|()| "Key enabled."),
        Some("limits") => {
            let mut body = Map::new();
            body.insert(
                "limit".into(),
                fields.get("limit").map_or(Value::Null, number_or_text),
            );
            body.insert(
                "limit_reset".into(),
                fields.get("limit_reset").map_or(Value::Null, |r| json!(r)),
            );
            body.insert(
                "include_byok_in_limit".into(),
                json!(fields.checked("include_byok_in_limit")),
            );
            // The expiry is sent only when changed: an unchanged past expiry is not refused.
            if fields.get("expires_at") != fields.get("current_expires_at") {
                body.insert(
                    "expires_at".into(),
                    fields.get("expires_at").map_or(Value::Null, |e| json!(e)),
                );
            }
            update(Value::Object(body)).await.map(|()| "Limits saved.")
        }
        Some("delete") => crate::routes::keys::delete(
            State(state.clone()),
            signed.auth.clone(),
            Path(hash.clone()),
        )
        .await
        .map(|_| "Key deleted."),
        Some("guardrail") => assign(&state, &signed, &hash, fields.get("guardrail"))
            .await
            .map(|()| "Guardrail assignment saved."),
        _ => Err(ApiError::bad_request(
            "action must be enable, disable, limits, delete or guardrail",
        )),
    };
    let (status, notice) = Notice::of(result);
    render(&state, &signed, status, notice, None).await
}

/// Moves a key to a guardrail (or to none) through the assignment endpoints' handlers.
async fn assign(
    state: &SharedState,
    signed: &Signed,
    hash: &str,
    guardrail: Option<&str>,
) -> Result<(), ApiError> {
    let account = &signed.auth.key.account_id;
    // The key must be the account's, as the keys API requires.
    let _key = crate::routes::keys::get(
        State(state.clone()),
        signed.auth.clone(),
        Path(hash.to_owned()),
    )
    .await?;
    let hashes = || -> Result<KeyHashes, ApiError> {
        parse(json!({"key_hashes": [hash]}).to_string().as_bytes())
    };
    let current = state.store.guardrail_assignments(account, None).await?;
    for a in current.iter().filter(|a| a.key_hash == hash) {
        if Some(a.guardrail_id.as_str()) == guardrail {
            return Ok(());
        }
        let _removed = crate::routes::guardrails::unassign_keys(
            State(state.clone()),
            Management(signed.auth.clone()),
            Path(a.guardrail_id.clone()),
            ApiJson(hashes()?),
        )
        .await?;
    }
    if let Some(id) = guardrail {
        let _assigned = crate::routes::guardrails::assign_keys(
            State(state.clone()),
            Management(signed.auth.clone()),
            Path(id.to_owned()),
            ApiJson(hashes()?),
        )
        .await?;
    }
    Ok(())
}
