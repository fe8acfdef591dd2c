//! Switchyard's HTTP surface and engine.
//!
//! Layout:
//! - [`config`]: TOML configuration with environment overrides.
//! - [`state`]: shared state (catalogue snapshot, store, HTTP client) and authentication.
//! - [`formats`]: the client formats at the pipeline's edge (chat, Anthropic Messages,
//!   Responses, embeddings, legacy completions).
//! - [`engine`]: the request pipeline, which knows no wire format (prepare, hold, attempt,
//!   respond or stream, settle and audit).
//! - [`routes`]: the read and management APIs, one module per resource (models, keys, credits,
//!   generations, activity, guardrails); [`extract`] parses their bodies, [`keys`] is the key
//!   service they share with the CLI.
//! - [`cache`]: the bounded TTL cache behind keys, settings and guardrails.
//! - [`error`]: the one error type, and the one table from its kind to an HTTP status.
//! - [`workers`]: the serving threads, one single-threaded runtime per core.
//! - [`console`]: the operator console in the browser (`[console]`), over the management
//!   API's own handlers.
//!
//! Invariants:
//! - Only this crate knows axum and HTTP status codes.
//! - Handlers extract and delegate; they never touch SQL.
//! - Every error a client sees is the contract's envelope; internal causes are logged, not shown.

// `ApiError` is large (envelope, metadata, headers) but only travels on the cold error path;
// boxing it everywhere would cost more readability than it saves.
#![allow(clippy::result_large_err)]

pub mod abuse;
pub mod audit;
pub mod auth_failures;
pub mod cache;
pub mod changes;
pub mod clock;
pub mod config;
pub mod console;
pub mod content;
pub mod end_users;
pub mod engine;
pub mod error;
pub mod extract;
pub mod files;
pub mod formats;
pub mod guardrails;
pub mod inference;
pub mod keys;
pub mod ledger;
pub mod metrics;
pub mod moderation;
pub mod presets;
pub mod rate_limit;
pub mod recorder;
pub mod routes;
pub mod settings;
pub mod state;
pub mod telemetry;
pub mod upstream;
pub mod workers;

use std::future::Future;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use switchyard_core::catalog::{Catalog, CatalogError};
use tokio::net::TcpListener;

use crate::error::{ApiError, ErrorKind, GatewayError};
use crate::formats::ClientFormat;
use crate::state::{InferenceAuth, SharedState};

/// The catalogue bundled into the binary.
pub const DEFAULT_CATALOG: &str = include_str!("../../../catalog/default.toml");

/// Loads the catalogue file, or the bundled one when `path` is `None`.
pub fn load_catalog(path: Option<&str>) -> Result<Catalog, CatalogError> {
    match path {
        None => Catalog::from_toml("bundled catalog", DEFAULT_CATALOG),
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => Catalog::from_toml(path, &text),
            Err(e) => Err(CatalogError(vec![switchyard_core::catalog::Problem {
                location: path.to_owned(),
                message: format!("cannot read the catalogue: {e}"),
            }])),
        },
    }
}

/// The route of an inference operation in a client format (`POST`): every one is served by
/// [`inference::serve_operation`], which makes the generation id before anything else.
fn inference_route(
    operation: inference::Operation,
    format: &'static dyn ClientFormat,
) -> axum::routing::MethodRouter<SharedState> {
    post(
        move |State(state): State<SharedState>,
              source: formats::Source,
              auth: Result<InferenceAuth, GatewayError>,
              headers: HeaderMap,
              body: Result<Bytes, BytesRejection>| async move {
            inference::serve_operation(operation, format, state, source, auth, headers, body).await
        },
    )
}

/// An id for an answer made outside the pipeline (a route the gateway does not serve), in the
/// generation ids' form, for Anthropic's `request_id`.
fn request_id() -> String {
    engine::new_generation_id(clock::Clock::System.now_ms())
}

/// A path the gateway does not serve: the contract's 404, in Anthropic's envelope (with a
/// `request_id`) under `/api/v1/messages`.
async fn not_found(request: Request) -> Response {
    let path = request.uri().path();
    let e = ApiError::not_found(format!(
        "No route for {} {}",
        request.method(),
        path.chars().take(200).collect::<String>()
    ));
    if path.starts_with("/api/v1/messages") {
        return formats::messages::MESSAGES.error_response(e.with_generation(&request_id()));
    }
    e.into_response()
}

/// Turns axum's plain-text rejections (405, JSON extractors) into the contract's envelope.
async fn envelope_errors(request: Request, next: Next) -> Response {
    let anthropic = request.uri().path().starts_with("/api/v1/messages");
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with("application/json")
                || v.starts_with("text/event-stream")
                // The console's own error pages.
                || v.starts_with("text/html")
        });
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        let message = match status.as_u16() {
            405 => "Method not allowed for this endpoint".to_owned(),
            413 => "Request body is larger than the configured limit (server.body_limit_bytes)"
                .to_owned(),
            _ => status.canonical_reason().unwrap_or("Error").to_owned(),
        };
        let e = GatewayError::of(ErrorKind::for_status(status.as_u16()), message);
        return if anthropic {
            formats::messages::MESSAGES.error_response(e.with_generation(&request_id()))
        } else {
            e.into_response()
        };
    }
    response
}

/// The gateway's router.
pub fn router(state: SharedState) -> Router {
    use routes::{activity, credits, generations, guardrails, keys, models, presets};
    let limit = state.config.server.body_limit_bytes;
    // Full paths rather than a nested router: nesting rewrites every request's URI.
    let router = Router::new()
        .route(
            "/api/v1/chat/completions",
            inference_route(inference::Operation::Generate, &formats::chat::CHAT),
        )
        .route(
            "/api/v1/messages",
            inference_route(inference::Operation::Generate, &formats::messages::MESSAGES),
        )
        .route(
            "/api/v1/messages/count_tokens",
            inference_route(
                inference::Operation::CountTokens,
                &formats::messages::COUNT_TOKENS,
            ),
        )
        .route(
            "/api/v1/responses",
            inference_route(
                inference::Operation::Generate,
                &formats::responses::RESPONSES,
            ),
        )
        .route(
            "/api/v1/completions",
            inference_route(
                inference::Operation::Generate,
                &formats::completions::COMPLETIONS,
            ),
        )
        .route(
            "/api/v1/embeddings",
            inference_route(
                inference::Operation::Generate,
                &formats::embeddings::EMBEDDINGS,
            ),
        )
        .route("/api/v1/embeddings/models", get(models::embedding_models))
        .route("/api/v1/models", get(models::list))
        .route("/api/v1/models/count", get(models::count))
        .route("/api/v1/models/user", get(models::user))
        // The openai SDK's `models.retrieve` sends the id with its slash encoded.
        .route("/api/v1/models/{id}", get(models::retrieve_encoded))
        .route("/api/v1/models/{author}/{slug}", get(models::retrieve))
        .route("/api/v1/model/{author}/{slug}", get(models::one))
        .route(
            "/api/v1/models/{author}/{slug}/endpoints",
            get(models::endpoints),
        )
        .route("/api/v1/endpoints/zdr", get(models::zdr_endpoints))
        .route("/api/v1/providers", get(models::providers))
        .route("/api/v1/key", get(keys::current))
        .route("/api/v1/auth/key", get(keys::current))
        .route("/api/v1/keys", get(keys::list).post(keys::create))
        .route(
            "/api/v1/keys/{hash}",
            get(keys::get).patch(keys::update).delete(keys::delete),
        )
        .route(
            "/api/v1/keys/{hash}/end-users",
            get(routes::end_users::get_policy).put(routes::end_users::put_policy),
        )
        .route("/api/v1/end-users", get(routes::end_users::list))
        .route(
            "/api/v1/end-users/{id}",
            get(routes::end_users::get).patch(routes::end_users::update),
        )
        .route(
            "/api/v1/end-users/{id}/block",
            post(routes::end_users::block).delete(routes::end_users::unblock),
        )
        .route(
            "/api/v1/end-users/{id}/abuse-report",
            get(routes::end_users::abuse_report),
        )
        .route("/api/v1/credits", get(credits::get))
        .route("/api/v1/generation", get(generations::get))
        .route("/api/v1/generation/content", get(generations::content))
        .route("/api/v1/activity", get(activity::get))
        .route(
            "/api/v1/guardrails",
            get(guardrails::list).post(guardrails::create),
        )
        .route(
            "/api/v1/guardrails/assignments/keys",
            get(guardrails::all_key_assignments),
        )
        .route(
            "/api/v1/guardrails/{id}",
            get(guardrails::get)
                .patch(guardrails::update)
                .delete(guardrails::delete),
        )
        .route(
            "/api/v1/guardrails/{id}/assignments/keys",
            get(guardrails::key_assignments).post(guardrails::assign_keys),
        )
        .route(
            "/api/v1/guardrails/{id}/assignments/keys/remove",
            post(guardrails::unassign_keys),
        )
        .route("/api/v1/presets", get(presets::list))
        .route("/api/v1/presets/{slug}", get(presets::get))
        .route("/api/v1/presets/{slug}/versions", get(presets::versions))
        .route(
            "/api/v1/presets/{slug}/versions/{version}",
            get(presets::version),
        )
        .route(
            "/api/v1/presets/{slug}/chat/completions",
            presets::save_route(&formats::chat::CHAT),
        )
        .route(
            "/api/v1/presets/{slug}/messages",
            presets::save_route(&formats::messages::MESSAGES),
        )
        .route(
            "/api/v1/presets/{slug}/responses",
            presets::save_route(&formats::responses::RESPONSES),
        )
        .route_layer(axum::middleware::from_fn(metrics::track))
        .route("/health", get(|| async { "ok" }));
    // Metrics are served on their own address when one is configured, and then not here.
    let router = if state.config.server.metrics_address.is_some() {
        router
    } else {
        router.route("/metrics", get(metrics::render_authenticated))
    };
    // The console's pages, when enabled; the API's routes are the same either way.
    let router = if state.config.console.enabled {
        router.merge(console::router(&state))
    } else {
        router
    };
    let cors = cors(&state.config.server.cors_allowed_origins);
    let router = router
        .fallback(not_found)
        .layer(axum::middleware::from_fn(envelope_errors))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state);
    match cors {
        // Outermost, so that a preflight is answered before routing.
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// The CORS policy for browser clients, when origins are allowed: the API's methods, any request
/// header (keys travel in `Authorization`, never in cookies, so credentials are not allowed), and
/// `X-Generation-Id` readable by the page.
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{HeaderName, HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, Any, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PATCH,
                Method::DELETE,
                Method::OPTIONS,
            ])
            .allow_headers(Any)
            .expose_headers([HeaderName::from_static("x-generation-id")])
            .max_age(Duration::from_secs(600)),
    )
}

/// The router of `[server] metrics_address`: `/metrics` without authentication, for a
/// scraper on a private network.
pub fn metrics_router(state: SharedState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::render))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(envelope_errors))
        .with_state(state)
}

/// Dependencies that log request and response details (headers, bodies, SQL) below `info`; they
/// are capped whatever filter the operator sets, so that keys and prompts never reach the logs.
const LOG_CAPS: &str = "hyper=info,hyper_util=info,h2=info,reqwest=info,rustls=info,tower_http=info,axum=info,sqlx=warn";

/// The log filter for an operator's `SWITCHYARD_LOG` value (default `info`), with the caps of
/// [`LOG_CAPS`] applied after it.
pub fn log_filter(spec: Option<&str>) -> tracing_subscriber::EnvFilter {
    let spec = spec
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("info");
    tracing_subscriber::EnvFilter::try_new(format!("{spec},{LOG_CAPS}")).unwrap_or_else(|e| {
        eprintln!("SWITCHYARD_LOG={spec:?} is not a valid filter ({e}); using info");
        tracing_subscriber::EnvFilter::new(format!("info,{LOG_CAPS}"))
    })
}

/// Applies the retention windows every hour: audit records behind a signed checkpoint, logged
/// content outright.
async fn prune_periodically(state: SharedState) {
    let audit_days = state.config.audit.retention_days;
    let content_days = state.config.prompt_logging.retention_days;
    let generation_days = state.config.store.generation_retention_days;
    if audit_days == 0 && content_days == 0 && generation_days == 0 {
        return;
    }
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every.tick().await;
        let now = state.now_ms();
        match audit::prune(&state.store, audit_days, state.audit_key.as_deref(), now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(records = n, "pruned audit records past retention"),
            Err(e) => tracing::error!(error = %e, "pruning the audit trail failed"),
        }
        if content_days > 0 {
            let before = now - i64::from(content_days) * 86_400_000;
            match state.store.prune_content(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "pruned logged content past retention"),
                Err(e) => tracing::error!(error = %e, "pruning logged content failed"),
            }
        }
        if generation_days > 0 {
            let before = now - i64::from(generation_days) * 86_400_000;
            match state.store.prune_generations(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "pruned generation records past retention"),
                Err(e) => tracing::error!(error = %e, "pruning generation records failed"),
            }
        }
    }
}

/// With database holds, every third of the hold lease: renews this gateway's holds and budget
/// leases, releases the holds and reclaims the leases whose gateway stopped renewing them
/// (crashed) once they lapsed, and gives back the leases of keys gone idle.
async fn sweep_holds_periodically(state: SharedState) {
    if state.config.store.hold_mode() != ledger::HoldMode::Database {
        return;
    }
    let mut every = tokio::time::interval(state.config.store.hold_lease() / 3);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match state.store.sweep_holds(state.now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(released = n, "released lapsed holds of a stopped gateway"),
            Err(e) => tracing::error!(error = %e, "sweeping credit holds failed"),
        }
        match state.ledger.maintain_leases(state.now_ms()).await {
            Ok(m) if m.is_zero() => {}
            Ok(m) => tracing::warn!(
                reclaimed_picodollars = m.picos(),
                "reclaimed lapsed budget leases of a stopped gateway"
            ),
            Err(e) => tracing::error!(error = %e, "budget lease upkeep failed"),
        }
    }
}

/// Serves until `shutdown` resolves, then lets open requests and streams finish (up to the
/// configured grace), waits for background settlement, and closes the store. Connections are
/// accepted here and served by [`workers`], one single-threaded runtime per core.
pub async fn serve(
    listener: TcpListener,
    state: SharedState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let grace = state.config.server.shutdown_grace();
    metrics::install();
    let metrics_server = match &state.config.server.metrics_address {
        None => None,
        Some(address) => {
            let listener = TcpListener::bind(address).await?;
            let bound = listener.local_addr()?;
            tracing::info!(address = %bound, "metrics listening");
            state.set_metrics_address(bound);
            let app = metrics_router(state.clone());
            Some(tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!(error = %e, "the metrics listener failed");
                }
            }))
        }
    };
    let limits = workers::ConnectionLimits::from_config(&state.config.server);
    let mut workers = workers::Workers::start(state.workers(), router(state.clone()), limits)?;
    let pruner = tokio::spawn(prune_periodically(state.clone()));
    let hold_sweeper = tokio::spawn(sweep_holds_periodically(state.clone()));
    let change_listener = tokio::spawn(changes::listen(state.clone()));
    let auth_failures = {
        let state = state.clone();
        tokio::spawn(async move {
            // The minute's aggregated authentication failures are written once it ended.
            let mut every = tokio::time::interval(Duration::from_secs(5));
            loop {
                every.tick().await;
                state
                    .auth_failures
                    .close_ended(&state.recorder, state.now_ms());
            }
        })
    };
    let housekeeping = {
        let state = state.clone();
        tokio::spawn(async move {
            // Old health samples and idle sessions are dropped every minute.
            let mut every = tokio::time::interval(Duration::from_secs(60));
            loop {
                every.tick().await;
                let now = state.now_ms();
                state.health.prune(now);
                state.sessions.prune(now);
            }
        })
    };
    tokio::pin!(shutdown);
    let mut accept_failures = 0u32;
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) => {
                    accept_failures = 0;
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::warn!(error = %e, "could not set TCP_NODELAY");
                    }
                    workers.hand(stream, addr);
                }
                Err(e) => {
                    if let Some(pause) = accept_failed(&e, &mut accept_failures) {
                        // The shutdown is still heard while the failure is waited out.
                        tokio::select! {
                            () = &mut shutdown => break,
                            () = tokio::time::sleep(pause) => {}
                        }
                    }
                }
            },
        }
    }
    drop(listener);
    if !workers.stop(grace).await {
        tracing::warn!("shutdown grace elapsed with requests still open");
    }
    state.tasks.close();
    if tokio::time::timeout(grace.max(Duration::from_secs(1)), state.tasks.wait())
        .await
        .is_err()
    {
        tracing::error!("background settlement did not finish before shutdown");
    }
    pruner.abort();
    hold_sweeper.abort();
    change_listener.abort();
    housekeeping.abort();
    auth_failures.abort();
    if let Some(server) = metrics_server {
        server.abort();
    }
    state.auth_failures.close_all(&state.recorder);
    state.recorder.flush().await;
    // Requests have ended and their settlements are committed (each consumed its cost from its
    // lease): what this gateway leased and did not use goes back, and its leases close.
    if let Err(e) = state.ledger.return_leases().await {
        tracing::error!(error = %e, "returning budget leases failed");
    }
    if state.telemetry.is_some() {
        // The exporter's last batch is sent off the runtime: shutting it down blocks.
        let telemetry = std::sync::Arc::clone(&state);
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(t) = &telemetry.telemetry {
                t.shutdown();
            }
        })
        .await;
    }
    state.store.close().await;
    workers.exit().await;
    Ok(())
}

/// A failed accept: a connection reset before it was accepted is nothing; anything else
/// (running out of file descriptors or memory) is logged and paused on, longer each time it
/// repeats ([`workers::accept_backoff`]), so the loop neither spins nor stalls.
fn accept_failed(e: &std::io::Error, failures: &mut u32) -> Option<Duration> {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return None;
    }
    *failures = failures.saturating_add(1);
    let pause = workers::accept_backoff(*failures);
    tracing::error!(error = %e, failures = *failures, pause_ms = pause.as_millis() as u64, "accepting a connection failed");
    Some(pause)
}
