//! Sign-in with a management key, and sign-out.

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::{Extension, Form};
use maud::html;

use crate::console::view::{bare, error_page, html_response};
use crate::console::{csrf, see_other, session, Change, Console, Fields, Signed};
use crate::state::{verify_key, SharedState};

fn sign_in_page(console: &Console, status: StatusCode, failure: Option<&str>) -> Response {
    html_response(
        status,
        bare(
            console,
            "Sign in",
            html! {
                @if let Some(message) = failure {
                    p.notice.failed role="alert" id="sign-in-error" { (message) }
                }
                form.stack method="post" action=(console.link("sign-in")) {
                    label for="key" { "Management key" }
                    input id="key" name="key" type="password" autocomplete="off" required
                        spellcheck="false" placeholder="sk-or-v1-…"
                        aria-describedby=(if failure.is_some() { "key-help sign-in-error" } else { "key-help" });
                    p.help id="key-help" {
                        "A management key of the account (" code { "switchyard keys create --management" }
                        "). It is checked once and never stored in the browser; the session lasts "
                        (duration(console.sessions.ttl().as_secs())) " at most."
                    }
                    button type="submit" { "Sign in" }
                }
            },
        ),
    )
}

/// A session's length in words: `8 hours`, `1 hour`, `30 minutes`.
fn duration(secs: u64) -> String {
    let (n, unit) = if secs >= 3600 && secs.is_multiple_of(3600) {
        (secs / 3600, "hour")
    } else {
        (secs.div_ceil(60), "minute")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// `GET sign-in`.
pub async fn form(Extension(console): Extension<Arc<Console>>, signed: Option<Signed>) -> Response {
    if signed.is_some() {
        return see_other(&console.link("activity"));
    }
    sign_in_page(&console, StatusCode::OK, None)
}

/// `POST sign-in`: the key is checked exactly as the API checks one, then must be a management
/// key; a session starts.
pub async fn submit(
    State(state): State<SharedState>,
    Extension(console): Extension<Arc<Console>>,
    source: crate::formats::Source,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    if !csrf::same_origin(&headers) {
        return error_page(
            &console,
            StatusCode::FORBIDDEN,
            "Sign-in refused",
            "The form was not sent from a page of this console (its origin differs).",
        );
    }
    let fields = form.map(|Form(f)| Fields(f)).unwrap_or_default();
    let Some(key) = fields.get("key") else {
        return sign_in_page(
            &console,
            StatusCode::BAD_REQUEST,
            Some("Enter a management key."),
        );
    };
    let auth = match verify_key(&state, key, false).await {
        Ok(auth) => auth,
        Err(e) => {
            if e.kind == crate::error::ErrorKind::Unauthorized {
                // Counted with the API's refusals of unknown keys: one audit record per source
                // address and minute.
                let now = state.now_ms();
                state.auth_failures.record(
                    &state.recorder,
                    source.0,
                    now,
                    &crate::engine::new_generation_id(now),
                    "console",
                    &e.message,
                );
            }
            return sign_in_page(&console, StatusCode::UNAUTHORIZED, Some(&e.message));
        }
    };
    if let Err(e) = auth.require_management() {
        return sign_in_page(&console, StatusCode::FORBIDDEN, Some(&e.message));
    }
    let (id, _) = console
        .sessions
        .start(&auth.key.account_id, &auth.key.hash)
        .await;
    tracing::info!(key = %auth.key.label, "console sign-in");
    let mut response = see_other(&console.link("activity"));
    let cookie = session::set_cookie(
        &id,
        console.cookie_path(),
        console.sessions.ttl(),
        console.secure,
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `POST sign-out`.
pub async fn sign_out(headers: HeaderMap, Change { signed, .. }: Change) -> Response {
    if let Some(id) = session::cookie_id(&headers) {
        signed.console.sessions.end(id).await;
    }
    let mut response = see_other(&signed.console.link("sign-in"));
    let cookie = session::clear_cookie(signed.console.cookie_path(), signed.console.secure);
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_table() {
        for (secs, text) in [
            (28_800, "8 hours"),
            (3600, "1 hour"),
            (60, "1 minute"),
            (5400, "90 minutes"),
            (61, "2 minutes"),
        ] {
            assert_eq!(duration(secs), text);
        }
    }
}
