//! Counting a Messages request's input tokens (`POST /api/v1/messages/count_tokens`): routed
//! like a generation (settings, guardrail, classification, every restriction), so the prompt
//! reaches only a provider it may reach; an Anthropic endpoint is asked, any other answer is
//! the gateway's estimate and says so (`X-Switchyard-Token-Count: estimated`). Nothing is held
//! or charged; the request is audited like any other.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use switchyard_core::catalog::ProviderKind;
use switchyard_core::error::{UpstreamError, UpstreamErrorKind};
use switchyard_formats::messages as wire;
use switchyard_providers::anthropic::AnthropicCodec;
use switchyard_providers::Target;

use crate::engine::attempt::{read_limited, transport_error};
use crate::engine::audit::{Ending, Trail};
use crate::engine::inference::{refuse, withheld};
use crate::engine::prepare::route;
use crate::engine::resolved::{resolve, Resolved};
use crate::engine::respond::with_generation_header;
use crate::error::GatewayError;
use crate::formats::{ClientFormat, Parsed};
use crate::state::{Authenticated, SharedState};

/// Counts, or estimates, the input tokens of a parsed Messages request.
pub async fn count_tokens(
    state: SharedState,
    format: &'static dyn ClientFormat,
    trail: Trail,
    key: Authenticated,
    headers: HeaderMap,
    parsed: Parsed,
) -> Response {
    let recorder_state = state.clone();
    let p = match Box::pin(route(state, format, trail, key, &headers, parsed)).await {
        Ok(p) => p,
        Err((trail, e)) => return refuse(&recorder_state, format, &trail, e).await,
    };
    let first = p
        .trail
        .plan
        .candidates
        .first()
        .and_then(|c| resolve(&p.catalog, c));
    let asked = match first {
        Some(r) if r.provider.kind == ProviderKind::Anthropic => {
            Some((r, ask(&p.state, &p.request, &r).await))
        }
        _ => None,
    };
    let (tokens, served, estimated) = match asked {
        Some((r, Ok(n))) => (n, Some(r), false),
        Some((r, Err(err))) => {
            let err = crate::engine::attempt::redact(&p.state, err);
            let e = GatewayError::upstream(&err, &r.provider.name);
            return refuse(&p.state, format, &p.trail, e).await;
        }
        None => (wire::estimate_input_tokens(&p.request), None, true),
    };
    let pending = p.trail.write(
        &p.state.recorder,
        p.state.now_ms(),
        &Ending {
            served: served.as_ref(),
            status: 200,
            ..Ending::default()
        },
    );
    if let Err(why) = pending.wait().await {
        let e = withheld(&p.trail.generation_id, why);
        return format.error_response(e.with_generation(&p.trail.generation_id));
    }
    let mut response = (
        StatusCode::OK,
        axum::Json(wire::count_tokens_response(tokens)),
    )
        .into_response();
    if estimated {
        response.headers_mut().insert(
            "x-switchyard-token-count",
            HeaderValue::from_static("estimated"),
        );
    }
    with_generation_header(response, &p.trail.generation_id)
}

/// Asks an Anthropic endpoint to count.
async fn ask(
    state: &SharedState,
    request: &switchyard_core::chat::ChatRequest,
    r: &Resolved<'_>,
) -> Result<u64, UpstreamError> {
    let codec = AnthropicCodec;
    let api_key = r
        .provider
        .api_key_env
        .as_deref()
        .and_then(|env| state.secrets.expose(env));
    let target = Target {
        provider: r.provider,
        endpoint: r.endpoint,
        api_key,
    };
    let upstream = codec
        .encode_count_tokens(request, &target)
        .map_err(|e| UpstreamError::new(UpstreamErrorKind::InvalidRequest, Some(400), e.0))?;
    let mut builder = state.http().post(&upstream.url).body(upstream.body);
    for (name, value) in &upstream.headers {
        builder = builder.header(name, value);
    }
    let timeout = state.config.server.upstream_timeout();
    let response = tokio::time::timeout(timeout, builder.send())
        .await
        .map_err(|_| {
            UpstreamError::new(
                UpstreamErrorKind::Timeout,
                None,
                format!("{} did not answer in time", r.provider.name),
            )
        })?
        .map_err(|e| transport_error(&e, &r.provider.name))?;
    let status = response.status().as_u16();
    let body = read_limited(hyper::Response::from(response), &state.config.server).await?;
    if !(200..300).contains(&status) {
        return Err(crate::engine::attempt::decode_error(
            state, &codec, status, &body,
        ));
    }
    codec.decode_count_tokens(&body)
}
