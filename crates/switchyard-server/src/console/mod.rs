//! The operator console: server-rendered pages (maud) over the management API's own handlers
//! and services, served by the gateway under `[console] path` when `[console] enabled`.
//!
//! - [`session`]: sign-in sessions (cookie id, stored as its SHA-256 with the account).
//! - [`csrf`]: the token and origin checks every change passes.
//! - [`chart`]: bar charts as inline SVG.
//! - [`view`]: the page shell, navigation and formatting helpers.
//! - [`pages`]: one module per page.
//!
//! Invariants: every page but sign-in needs a live session whose management key is checked as
//! the API checks a key (present, enabled, unexpired, a management key of the session's
//! account) on every request; every `POST` but sign-in is refused without the session's CSRF
//! token and a same-site origin; validation and changes go through the API's own request
//! types, handlers and services (`routes::*`, `keys`), never a second implementation; the
//! session id is never stored or logged, and no page carries a key's secret except the one
//! answering its creation.

pub mod chart;
pub mod csrf;
pub mod pages;
pub mod session;
pub mod view;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};

use crate::state::{Authenticated, SharedState};
use session::{Session, Sessions};

/// The console's own state, beside the gateway's.
#[derive(Debug)]
pub struct Console {
    /// The path pages live under, with a trailing slash (`/`, `/console/`).
    pub base: String,
    /// Signed-in browsers.
    pub sessions: Sessions,
    /// Whether cookies are marked `Secure`.
    pub secure: bool,
}

impl Console {
    /// A page's path: `link("keys")` is `/keys` under `/`.
    pub fn link(&self, page: &str) -> String {
        format!("{}{page}", self.base)
    }

    /// The cookie's `Path` (the base without its trailing slash, `/` at the root).
    fn cookie_path(&self) -> &str {
        match self.base.trim_end_matches('/') {
            "" => "/",
            path => path,
        }
    }
}

/// Static assets, embedded in the binary.
const CSS: &str = include_str!("../../assets/console.css");
const JS: &str = include_str!("../../assets/console.js");

/// The console's routes under `[console] path`, to merge into the gateway's router.
pub fn router(state: &SharedState) -> Router<SharedState> {
    let config = &state.config.console;
    let console = Arc::new(Console {
        base: config.base(),
        sessions: Sessions::new(Duration::from_secs(config.session_ttl_secs)),
        secure: config.secure_cookie,
    });
    let at = |page: &str| console.link(page);
    let mut router = Router::new()
        .route(&at(""), get(pages::index))
        .route(
            &at("sign-in"),
            get(pages::sign_in::form).post(pages::sign_in::submit),
        )
        .route(&at("sign-out"), post(pages::sign_in::sign_out))
        .route(&at("activity"), get(pages::activity::page))
        .route(&at("generations"), get(pages::generations::list))
        .route(&at("generations/{id}"), get(pages::generations::one))
        .route(
            &at("generations/{id}/content"),
            post(pages::generations::content),
        )
        .route(
            &at("keys"),
            get(pages::keys::page).post(pages::keys::create),
        )
        .route(&at("keys/{hash}"), post(pages::keys::change))
        .route(
            &at("credits"),
            get(pages::credits::page).post(pages::credits::add),
        )
        .route(
            &at("guardrails"),
            get(pages::guardrails::page).post(pages::guardrails::create),
        )
        .route(&at("guardrails/{id}"), post(pages::guardrails::change))
        .route(
            &at("settings"),
            get(pages::settings::page).post(pages::settings::save),
        )
        .route(&at("providers"), get(pages::providers::page))
        .route(&at("audit"), get(pages::audit::page))
        .route(&at("audit/verify"), post(pages::audit::verify))
        .route(&at("audit/export"), get(pages::audit::export))
        .route(&at("assets/console.css"), get(|| asset(CSS, "text/css")))
        .route(
            &at("assets/console.js"),
            get(|| asset(JS, "text/javascript")),
        );
    if console.base != "/" {
        // `/console` as well as `/console/`.
        let index = console.base.trim_end_matches('/').to_owned();
        router = router.route(&index, get(pages::index));
    }
    router.layer(Extension(console))
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// A request of a signed-in browser: its session, and the management key behind it as of
/// this request.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The console.
    pub console: Arc<Console>,
    /// The session.
    pub session: Arc<Session>,
    /// The management key, checked as the API checks one.
    pub auth: Authenticated,
}

/// The console of a request (the router's extension).
fn console_of(parts: &Parts) -> Result<Arc<Console>, Response> {
    parts
        .extensions
        .get::<Arc<Console>>()
        .cloned()
        .ok_or_else(|| StatusCode::NOT_FOUND.into_response())
}

/// The signed-in session of a request, if it has one that is still valid.
async fn signed(parts: &Parts, state: &SharedState, console: Arc<Console>) -> Option<Signed> {
    let id = session::cookie_id(&parts.headers)?;
    let session = console.sessions.get(id).await?;
    let now = state.now_ms();
    let key = match state.store.key(&session.key_hash, now).await {
        Ok(Some(key)) => key,
        Ok(None) => {
            console.sessions.end(id).await;
            return None;
        }
        Err(e) => {
            tracing::error!(error = %e, "reading a console session's key failed");
            return None;
        }
    };
    if key.disabled
        || key.is_expired(now)
        || !key.is_management
        || key.account_id != session.account_id
    {
        // The key was disabled, deleted or changed since sign-in: the session ends with it.
        console.sessions.end(id).await;
        return None;
    }
    Some(Signed {
        console,
        session,
        auth: Authenticated { key },
    })
}

impl FromRequestParts<SharedState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let console = console_of(parts)?;
        match signed(parts, state, Arc::clone(&console)).await {
            Some(s) => Ok(s),
            None => Err(see_other(&console.link("sign-in"))),
        }
    }
}

impl OptionalFromRequestParts<SharedState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Option<Self>, Self::Rejection> {
        let console = console_of(parts)?;
        Ok(signed(parts, state, console).await)
    }
}

/// A `303 See Other` to `location`.
pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The fields of a submitted form.
#[derive(Debug, Clone, Default)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// The first value of a field, trimmed; `None` when absent or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Whether a checkbox was ticked.
    pub fn checked(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// A change sent from one of the console's forms: the signed-in session and the form's fields,
/// its origin and CSRF token checked by [`checked_form`]; anything else is refused with the
/// console's error page before the handler runs. The last extractor of a handler (it reads the
/// body).
pub struct Change {
    /// Who is signed in.
    pub signed: Signed,
    /// The form's fields.
    pub fields: Fields,
}

impl axum::extract::FromRequest<SharedState> for Change {
    type Rejection = Response;

    async fn from_request(
        request: axum::extract::Request,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let signed =
            <Signed as FromRequestParts<SharedState>>::from_request_parts(&mut parts, state)
                .await?;
        let headers = parts.headers.clone();
        let form = axum::Form::<Vec<(String, String)>>::from_request(
            axum::extract::Request::from_parts(parts, body),
            state,
        )
        .await;
        let fields = checked_form(&signed, &headers, form).await?;
        Ok(Change { signed, fields })
    }
}

/// The body of a console form: the fields, once the CSRF token and the origin were checked
/// against the session. A refusal is a 403 page.
pub async fn checked_form(
    signed: &Signed,
    headers: &HeaderMap,
    form: Result<axum::Form<Vec<(String, String)>>, axum::extract::rejection::FormRejection>,
) -> Result<Fields, Response> {
    let refused = |why: &str| {
        view::error_page(
            &signed.console,
            StatusCode::FORBIDDEN,
            "Change refused",
            why,
        )
    };
    if !csrf::same_origin(headers) {
        return Err(refused(
            "The form was not sent from a page of this console (its origin differs).",
        ));
    }
    let Ok(axum::Form(fields)) = form else {
        return Err(refused("The form could not be read."));
    };
    let fields = Fields(fields);
    if !csrf::token_matches(&signed.session.csrf, fields.get(csrf::FIELD)) {
        return Err(refused(
            "The form's security token is missing or out of date: reload the page and try again.",
        ));
    }
    Ok(fields)
}
