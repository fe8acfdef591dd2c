//! Every inference route: the generation id is made when the request arrives, then the key, the
//! content type and the body are checked, the client's format parses the request and the preset
//! it names is applied ([`crate::presets`]); a refusal
//! on the way is audited and answered in the format's envelope; the rest is the pipeline's.
//!
//! This is the one place that joins the client formats ([`crate::formats`]) and the pipeline
//! ([`crate::engine`]); neither imports the other's entry points.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::Response;
use switchyard_core::audit;

use crate::engine::audit::Trail;
use crate::engine::Attribution;
use crate::error::{ErrorKind, GatewayError};
use crate::formats::{body_error, require_json, ClientFormat, Source};
use crate::state::{InferenceAuth, SharedState};

/// What a parsed request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A generation (or embeddings): through the whole pipeline.
    Generate,
    /// Counting input tokens: routed, never generated.
    CountTokens,
}

/// Serves one inference request from `source` in `format`: the generation id is made first,
/// then the key, the content type and the body are checked and the request parsed; a refusal on
/// the way is audited and answered in the format's envelope; the rest is the pipeline's. A
/// refusal before the key is known (401) is counted in the source's record of the minute
/// rather than audited alone.
pub async fn serve(
    format: &'static dyn ClientFormat,
    state: SharedState,
    source: Source,
    auth: Result<InferenceAuth, GatewayError>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    serve_operation(
        Operation::Generate,
        format,
        state,
        source,
        auth,
        headers,
        body,
    )
    .await
}

/// [`serve`] for an operation.
pub async fn serve_operation(
    operation: Operation,
    format: &'static dyn ClientFormat,
    state: SharedState,
    source: Source,
    auth: Result<InferenceAuth, GatewayError>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut trail = Trail::arrive(
        state.now_ms(),
        format.name(),
        Attribution::from_headers(&headers),
    );
    // The request's span (telemetry on), a child of the client's `traceparent`. Counting
    // tokens generates nothing and is not traced.
    if let (Some(telemetry), Operation::Generate) = (&state.telemetry, operation) {
        trail.span = Some(Box::new(telemetry.request(
            &headers,
            crate::telemetry::operation_name(format.name()),
            &trail.generation_id,
        )));
    }
    let key = match auth {
        Ok(InferenceAuth(key)) => key,
        Err(e) if e.kind == ErrorKind::Unauthorized => {
            if let Some(span) = &trail.span {
                span.refused(e.status(), &e.message);
            }
            state.auth_failures.record(
                &state.recorder,
                source.0,
                trail.created_ms,
                &trail.generation_id,
                format.name(),
                &e.message,
            );
            return format.error_response(e.with_generation(&trail.generation_id));
        }
        Err(e) => return crate::engine::refuse(&state, format, &trail, e).await,
    };
    trail.account_id = Some(key.key.account_id.clone());
    trail.key_hash = Some(key.key.hash.clone());
    let parsed = key
        .require_standard()
        .and_then(|()| require_json(&headers))
        .and_then(|()| body.map_err(body_error))
        .and_then(|body| {
            format.parse(&state, &body).inspect_err(|_| {
                // A body that does not parse has no messages: its hash stands for the prompt.
                trail.prompt_sha256 = audit::sha256_hex(&body);
            })
        });
    // The preset the request names, merged under it before anything reads the request.
    let parsed = match parsed {
        Ok(mut parsed) => {
            let applied = crate::presets::apply(&state, &key.key.account_id, &mut parsed).await;
            // A parsed request's prompt hash is its messages' (the preset's system prompt
            // included), computed once here for every operation.
            trail.prompt_sha256 = crate::engine::audit::prompt_sha256(&parsed.request);
            match applied {
                Ok(preset) => {
                    trail.preset_id = preset.map(|p| p.id.clone());
                    Ok(parsed)
                }
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    match parsed {
        Ok(parsed) => match operation {
            Operation::Generate => {
                crate::engine::run(state, format, trail, key, headers, parsed).await
            }
            Operation::CountTokens => {
                crate::engine::count::count_tokens(state, format, trail, key, headers, parsed).await
            }
        },
        Err(e) => crate::engine::refuse(&state, format, &trail, e).await,
    }
}
