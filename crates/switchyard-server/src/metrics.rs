//! Prometheus metrics at `/metrics`.
//!
//! Counters and histograms go through the `metrics` facade (a few atomic operations per
//! request); the exporter renders them on scrape. Money is counted in integer pico-dollars.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::extract::Management;
use crate::state::SharedState;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Request latency buckets, in seconds (50 µs to 60 s).
const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Installs the process-wide recorder once; later calls return the same handle.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("seconds".to_owned()), LATENCY_BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "a metrics recorder is already installed");
                    None
                }
            }
        })
        .as_ref()
}

/// `GET /metrics` on the main address: management keys only (the series name providers and
/// routes, and their counts reveal traffic).
pub async fn render_authenticated(
    state: State<SharedState>,
    Management(auth): Management,
    query: axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    // `?user=ID`: one end user's series of the caller's account, instead of the process's
    // (end-user ids are never labels of the process-wide series).
    if let Some(user) = query.get("user") {
        return crate::routes::end_users::metrics_of(&state, &auth.key.account_id, user)
            .await
            .into_response();
    }
    if let Some(name) = query.keys().next() {
        return crate::error::ApiError::bad_request(format!(
            "Unknown query parameter {name:?}: use user"
        ))
        .into_response();
    }
    render(state).await
}

/// `GET /metrics` on `[server] metrics_address`, without authentication.
pub async fn render(State(state): State<SharedState>) -> Response {
    let (settlements, audit, content) = state.recorder.depths();
    for (queue, depth) in [
        ("settlements", settlements),
        ("audit", audit),
        ("content", content),
    ] {
        metrics::gauge!("switchyard_recorder_queue_depth", "queue" => queue).set(depth as f64);
    }
    metrics::gauge!("switchyard_ledger_open_holds").set(state.ledger.open_holds() as f64);
    match install() {
        Some(handle) => (
            [("content-type", "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "metrics are not available\n",
        )
            .into_response(),
    }
}

/// Counts every request and its latency (to the response head) by route and status.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("switchyard_http_requests_total", "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("switchyard_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
