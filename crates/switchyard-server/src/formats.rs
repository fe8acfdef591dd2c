//! The client formats at the pipeline's edge. Each parses its request into the canonical chat
//! request and renders the canonical result (the OpenRouter completion, its stream chunks, and
//! [`GatewayError`]s) in its own shapes; the pipeline ([`crate::engine`]) knows none of them.
//!
//! Adding a client format is one module implementing [`ClientFormat`] (its pure wire shapes in
//! `switchyard-formats`), one route using [`crate::inference::serve`], and its fixtures and tests.
//!
//! Invariants: every inference answer, error or not, carries the `X-Generation-Id` made when
//! the request arrived, and every refusal is audited under that id: in a record of its own, or,
//! refused before its key is known (401), counted in its source's record of the minute
//! ([`crate::auth_failures`]), which names the minute's first id as its sample.

pub mod chat;
pub mod completions;
pub mod embeddings;
pub mod messages;
pub mod responses;

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::Value;
use switchyard_core::chat::ChatRequest;
use switchyard_formats::openrouter::{Chunk, Completion};

use crate::error::{ErrorKind, GatewayError};

/// A request parsed by its format: the canonical request, and what the format keeps of the
/// client's own request to render the answer.
#[derive(Debug)]
pub struct Parsed {
    /// The canonical request.
    pub request: ChatRequest,
    /// The client's request as sent, for formats whose answers echo it (Responses).
    pub original: Option<serde_json::Value>,
    /// The legacy completions request's own parts, for endpoints that serve it natively.
    pub legacy: Option<Box<switchyard_core::completions::CompletionsRequest>>,
    /// The embeddings request, when it is one: the canonical request then carries its texts as
    /// user messages, so that guardrails, hashes and holds see them as any prompt.
    pub embeddings: Option<Box<switchyard_core::embeddings::EmbeddingsRequest>>,
}

impl Parsed {
    /// A canonical request with nothing kept beside it.
    pub fn plain(request: ChatRequest) -> Parsed {
        Parsed {
            request,
            original: None,
            legacy: None,
            embeddings: None,
        }
    }
}

/// What a format may use to render a request's answer.
#[derive(Clone, Copy)]
pub struct RenderContext<'a> {
    /// Shared state (the reasoning sealer, the clock).
    pub state: &'a crate::state::AppState,
    /// The client's request as sent, when the format kept it.
    pub original: Option<&'a serde_json::Value>,
}

/// A wire format a client speaks to the gateway.
pub trait ClientFormat: Send + Sync + 'static {
    /// The format's name in the audit record and in `/generation`'s `api_type`.
    fn name(&self) -> &'static str;
    /// Parses a request body into the canonical request. Errors name the field at fault and
    /// never quote the value.
    fn parse(&self, state: &crate::state::AppState, body: &[u8]) -> Result<Parsed, GatewayError>;
    /// Renders a non-streamed answer as the JSON body the client expects.
    fn render(
        &self,
        cx: RenderContext<'_>,
        completion: &Completion<'_>,
    ) -> Result<Vec<u8>, GatewayError>;
    /// A renderer for one stream, whose chunks share `head`.
    fn streamer(&self, cx: RenderContext<'_>, head: &Chunk<'_>) -> Box<dyn StreamRenderer>;
    /// The error envelope of this format.
    fn error_body(&self, e: &GatewayError) -> Value;
    /// The error as a response in this format's envelope.
    fn error_response(&self, e: GatewayError) -> Response {
        let body = self.error_body(&e);
        e.respond(body)
    }
}

/// Renders one stream in a client's format.
pub trait StreamRenderer: Send {
    /// Sent while waiting for the provider.
    fn keepalive(&mut self) -> Vec<u8>;
    /// The provider reported usage (an Anthropic upstream gives the prompt's count first); a
    /// format whose stream opens with it (Anthropic's `message_start`) keeps it.
    fn usage_seen(&mut self, _usage: &switchyard_core::pricing::Usage) {}
    /// A canonical chunk; `None` when it gives the client nothing yet.
    fn chunk(&mut self, chunk: &Chunk<'_>) -> Option<Vec<u8>>;
    /// The chunk echoing the body sent upstream (`debug.echo_upstream_body`), for the formats
    /// that accept `debug`; the others refuse the field when they parse.
    fn debug(&mut self, _chunk: &Value) -> Option<Vec<u8>> {
        None
    }
    /// The end of a successful stream; `last` is the canonical chunk with `usage` (and
    /// `openrouter_metadata` when asked for).
    fn done(&mut self, last: &Value) -> Vec<u8>;
    /// A failure after the stream started.
    fn failed(&mut self, head: &Chunk<'_>, e: &GatewayError) -> Vec<u8>;
}

/// The address a request came from, when the server knows it (the serving workers give every
/// request its connection's peer address as `ConnectInfo`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Source(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Source {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Source(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
        ))
    }
}

/// Whether an error, or any error it was caused by, is a `T`.
fn caused_by<T: std::error::Error + 'static>(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<T>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// The error for a body that could not be read (408 when it did not arrive in time, 413 past
/// the configured limit).
pub fn body_error(rejection: BytesRejection) -> GatewayError {
    let status = rejection.status().as_u16();
    if caused_by::<crate::workers::BodyReadTimeout>(&rejection) {
        GatewayError::of(
            ErrorKind::RequestTimeout,
            "The request body did not arrive in time (server.body_read_timeout_secs)",
        )
    } else if status == 413 {
        GatewayError::of(
            ErrorKind::PayloadTooLarge,
            "Request body is larger than the configured limit (server.body_limit_bytes)",
        )
    } else {
        GatewayError::of(
            ErrorKind::for_status(status),
            format!("Could not read the request body: {rejection}"),
        )
    }
}

/// A request body as JSON; the error names where it stops being JSON, never what it holds.
pub fn json_body(body: &[u8]) -> Result<Value, GatewayError> {
    serde_json::from_slice(body).map_err(|e| {
        GatewayError::bad_request(format!(
            "Request body is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

/// Refuses a body that says it is something other than JSON.
pub fn require_json(headers: &HeaderMap) -> Result<(), GatewayError> {
    match headers
        .get("content-type")
        .map(|v| v.to_str().unwrap_or(""))
    {
        None => Ok(()),
        Some(ct)
            if ct
                .trim()
                .to_ascii_lowercase()
                .starts_with("application/json") =>
        {
            Ok(())
        }
        Some(ct) => Err(GatewayError::of(
            ErrorKind::UnsupportedMediaType,
            format!(
                "Unsupported content type {:?}: send application/json",
                ct.chars().take(100).collect::<String>()
            ),
        )),
    }
}
