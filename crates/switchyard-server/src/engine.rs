//! The request pipeline, which knows no wire format: a canonical chat request in, a canonical
//! result out, through `prepare → hold → attempt → respond → settle/audit`.
//!
//! Each client format ([`crate::formats`]) parses its request into the canonical
//! [`ChatRequest`] and renders the canonical result (the OpenRouter completion or its stream
//! chunks, and [`GatewayError`]s) in its own shapes. The stages:
//! 1. [`prepare`]: settings, guardrail, classification, the route plan narrowed by every
//!    restriction, and the hold of the most the request can cost (owned by the ledger,
//!    released when dropped unsettled).
//! 2. [`attempt`]: each candidate in turn until one answers 2xx.
//! 3. [`respond`] (non-streamed) or [`stream`]: decode, render, forward.
//! 4. Settlement and the audit record ([`audit`]), written by the recorder's group commit,
//!    built once whatever the way the request ended. With `store.durability =
//!    "before_answer"` (the default) the answer waits for their commit: a JSON answer's body,
//!    a stream's last event and every refusal leave only once the records are in the store.
//!
//! Invariants: no fallback after the first byte of content reached the client; in
//! `before_answer` mode no served answer completes before its generation and audit record are
//! committed (past `store.record_timeout_secs` it is withheld: a 500, or the stream's error
//! event).

pub mod attempt;
pub mod audit;
pub mod count;
pub mod fields;
pub mod inference;
pub mod prepare;
pub mod resolved;
pub mod respond;
pub mod stream;

use axum::http::HeaderMap;
use axum::response::Response;

use crate::engine::audit::Trail;
use crate::formats::ClientFormat;
use crate::state::{Authenticated, SharedState};

pub use audit::{new_generation_id, Attribution};
pub use inference::{refuse, Inference};
pub use prepare::CLASSIFICATION_HEADER;

/// Runs a parsed request to its answer, in the client's format. Every way it can end writes
/// the one audit record of the request.
pub async fn run(
    state: SharedState,
    format: &'static dyn ClientFormat,
    mut trail: Trail,
    key: Authenticated,
    headers: HeaderMap,
    parsed: crate::formats::Parsed,
) -> Response {
    trail.account_id = Some(key.key.account_id.clone());
    trail.key_hash = Some(key.key.hash.clone());
    trail.requested_model.clone_from(&parsed.request.model);
    // The end user is named by the request or the X-Switchyard-User header (`prepare`).
    if let Some(span) = &trail.span {
        span.requested(parsed.request.model.as_deref());
    }
    let recorder_state = std::sync::Arc::clone(&state);
    // The stages are boxed: each is a large state machine, and nested inline they would make
    // this future (moved by every layer of the server) several times larger.
    let prepared = Box::pin(prepare::prepare(
        state, format, trail, key, &headers, parsed,
    ))
    .await;
    let mut inference = match prepared {
        Ok(p) => p,
        Err((trail, e)) => return refuse(&recorder_state, format, &trail, e).await,
    };
    let result = if inference.embeddings.is_some() {
        match Box::pin(inference.attempt()).await {
            Ok(answer) => Box::pin(respond::embeddings(inference, answer)).await,
            Err(e) => Err((inference, e)),
        }
    } else if inference.request.is_stream() {
        Box::pin(stream::stream(inference)).await
    } else {
        match Box::pin(inference.attempt()).await {
            Ok(answer) => Box::pin(respond::complete(inference, answer)).await,
            Err(e) => Err((inference, e)),
        }
    };
    match result {
        Ok(response) => response,
        Err((inference, e)) => {
            // Nothing reached the client: the hold is released when `inference` drops.
            refuse(&recorder_state, format, &inference.trail, e).await
        }
    }
}
