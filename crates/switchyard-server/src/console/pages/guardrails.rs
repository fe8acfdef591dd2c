//! Guardrails: the account's guardrails as the guardrails API shows them, created and changed
//! from the API's own JSON body (parsed by its request types, validated by its handlers).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde_json::Value;

use super::data;
use crate::console::view::{csrf_field, html_response, shell, Nav, Notice};
use crate::console::{Change, Signed};
use crate::error::ApiError;
use crate::extract::{parse, ApiJson, Management};
use crate::routes::guardrails::GuardrailPatch;
use crate::state::SharedState;

/// What a new guardrail's text box starts with.
const EXAMPLE: &str = r#"{
  "name": "Team budget",
  "limit_usd": 50,
  "reset_interval": "monthly",
  "enforce_zdr": true,
  "content_filter_builtins": []
}"#;

/// A guardrail as its `PATCH` body: without the members the server sets.
fn editable(guardrail: &Value) -> String {
    let mut g = guardrail.clone();
    if let Some(map) = g.as_object_mut() {
        for k in ["id", "created_at", "updated_at", "workspace_id"] {
            map.remove(k);
        }
    }
    serde_json::to_string_pretty(&g).unwrap_or_default()
}

/// `GET guardrails`.
pub async fn page(State(state): State<SharedState>, signed: Signed) -> Response {
    render(&state, &signed, StatusCode::OK, Notice::None, None).await
}

async fn render(
    state: &SharedState,
    signed: &Signed,
    status: StatusCode,
    notice: Notice,
    draft: Option<&str>,
) -> Response {
    let mut notice = notice;
    let answer = crate::routes::guardrails::list(
        State(state.clone()),
        Management(signed.auth.clone()),
        Ok(axum::extract::Query(Default::default())),
    )
    .await;
    let list = match data(answer) {
        Ok(Value::Array(list)) => list,
        Ok(_) => Vec::new(),
        Err(e) => {
            notice = Notice::Failed(e.message);
            Vec::new()
        }
    };
    let body = html! {
        p.help {
            "A guardrail is the JSON body of " code { "POST /api/v1/guardrails" }
            ", checked by the same validation. Assign it to keys on the Keys page."
        }
        @for g in &list {
            @let id = g.get("id").and_then(Value::as_str).unwrap_or("");
            @let name = g.get("name").and_then(Value::as_str).unwrap_or(id);
            @let action = signed.console.link(&format!("guardrails/{id}"));
            section.guardrail {
                h2 { (name) }
                form.stack method="post" action=(action) {
                    (csrf_field(signed))
                    label for=(format!("g-{id}")) { "Guardrail (JSON; members given replace, null clears)" }
                    textarea.code id=(format!("g-{id}")) name="body" rows="10" spellcheck="false" {
                        (editable(g))
                    }
                    div.row {
                        button type="submit" name="action" value="update" { "Save" }
                    }
                }
                form method="post" action=(action) data-confirm=(format!("Delete the guardrail {name}? Its keys lose it.")) {
                    (csrf_field(signed))
                    button.danger type="submit" name="action" value="delete" { "Delete" }
                }
            }
        }
        @if list.is_empty() { p.empty { "No guardrails yet." } }
        section {
            h2 { "Create a guardrail" }
            form.stack method="post" action=(signed.console.link("guardrails")) {
                (csrf_field(signed))
                label for="new-guardrail" { "Guardrail (JSON)" }
                textarea.code id="new-guardrail" name="body" rows="10" spellcheck="false" { (draft.unwrap_or(EXAMPLE)) }
                button type="submit" { "Create" }
            }
        }
    };
    html_response(
        status,
        shell(signed, Nav::Guardrails, "Guardrails", &notice, body),
    )
}

/// `POST guardrails`: `POST /api/v1/guardrails` with the text box as its body.
pub async fn create(
    State(state): State<SharedState>,
    Change { signed, fields }: Change,
) -> Response {
    let text = fields.get("body").unwrap_or("").to_owned();
    let result = async {
        let guardrail = parse(text.as_bytes())?;
        crate::routes::guardrails::create(
            State(state.clone()),
            Management(signed.auth.clone()),
            ApiJson(guardrail),
        )
        .await
    }
    .await;
    match result {
        Ok(_) => {
            render(
                &state,
                &signed,
                StatusCode::OK,
                Notice::Done("Guardrail created.".into()),
                None,
            )
            .await
        }
        Err(e) => {
            render(
                &state,
                &signed,
                StatusCode::BAD_REQUEST,
                Notice::Failed(e.message),
                Some(&text),
            )
            .await
        }
    }
}

/// `POST guardrails/{id}` with `action` `update` (the text box is the `PATCH` body) or
/// `delete`.
pub async fn change(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    Change { signed, fields }: Change,
) -> Response {
    let management = Management(signed.auth.clone());
    let result = match fields.get("action") {
        Some("update") => {
            let text = fields.get("body").unwrap_or("");
            match parse::<GuardrailPatch>(text.as_bytes()) {
                Ok(patch) => crate::routes::guardrails::update(
                    State(state.clone()),
                    management,
                    Path(id),
                    ApiJson(patch),
                )
                .await
                .map(|_| "Guardrail saved."),
                Err(e) => Err(e),
            }
        }
        Some("delete") => {
            crate::routes::guardrails::delete(State(state.clone()), management, Path(id))
                .await
                .map(|_| "Guardrail deleted.")
        }
        _ => Err(ApiError::bad_request("action must be update or delete")),
    };
    let (status, notice) = Notice::of(result);
    render(&state, &signed, status, notice, None).await
}
