//! OpenAI's Responses API (`POST /api/v1/responses`), stateless as OpenRouter's: requests
//! translated into the canonical chat request, answers rendered as the `response` object and
//! its typed stream events. Reasoning goes back to the client sealed ([`ReasoningSealer`]) and
//! is restored to the provider's own form in the next turn. The translation itself is
//! `switchyard_formats::responses`.
//!
//! [`ReasoningSealer`]: crate::content::ReasoningSealer

use std::sync::Arc;

use serde_json::Value;
use switchyard_core::chat::ChatRequest;
use switchyard_formats::openrouter::{Chunk, Completion};
use switchyard_formats::responses::{self as wire, ResponseContext, Sealer, StreamTranscoder};

use crate::error::GatewayError;
use crate::formats::{ClientFormat, Parsed, RenderContext, StreamRenderer};
use crate::state::AppState;

/// The Responses format.
pub struct Responses;

/// The one instance routes use.
pub static RESPONSES: Responses = Responses;

fn context(cx: RenderContext<'_>, id: &str, created: i64) -> ResponseContext {
    ResponseContext {
        id: id.to_owned(),
        created_at: u64::try_from(created).unwrap_or(0),
        completed_at: None,
        request: cx.original.cloned().unwrap_or(Value::Null),
    }
}

fn now_secs(cx: RenderContext<'_>) -> u64 {
    u64::try_from(cx.state.now_ms() / 1000).unwrap_or(0)
}

impl ClientFormat for Responses {
    fn name(&self) -> &'static str {
        "responses"
    }

    fn parse(&self, state: &AppState, body: &[u8]) -> Result<Parsed, GatewayError> {
        let value = crate::formats::json_body(body)?;
        let chat = wire::request_to_chat(&value, state.sealer.as_ref())
            .map_err(|e| GatewayError::bad_request(e.0))?;
        let request = ChatRequest::from_value(chat).map_err(|e| GatewayError::bad_request(e.0))?;
        Ok(Parsed {
            request,
            original: Some(value),
            legacy: None,
            embeddings: None,
        })
    }

    fn render(
        &self,
        cx: RenderContext<'_>,
        completion: &Completion<'_>,
    ) -> Result<Vec<u8>, GatewayError> {
        let value = serde_json::to_value(completion).map_err(|e| GatewayError::internal(&e))?;
        let mut ctx = context(cx, completion.id, completion.created);
        ctx.completed_at = Some(now_secs(cx));
        let response = wire::response_from_chat(&value, &ctx, cx.state.sealer.as_ref());
        serde_json::to_vec(&response).map_err(|e| GatewayError::internal(&e))
    }

    fn streamer(&self, cx: RenderContext<'_>, head: &Chunk<'_>) -> Box<dyn StreamRenderer> {
        let sealer: Arc<dyn Sealer> = cx.state.sealer.clone();
        Box::new(ResponsesStream {
            transcoder: StreamTranscoder::new(
                context(cx, head.id, head.created),
                head.model,
                sealer,
            ),
            started: false,
            clock: cx.state.clock.clone(),
        })
    }

    fn error_body(&self, e: &GatewayError) -> Value {
        wire::error_body(e.status(), &e.message)
    }
}

/// The typed events of one response; `started` once `response.created` went out.
struct ResponsesStream {
    transcoder: StreamTranscoder,
    started: bool,
    clock: crate::clock::Clock,
}

fn frame(events: &[wire::Event]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 * events.len());
    for e in events {
        out.extend_from_slice(&wire::frame(e));
    }
    out
}

impl ResponsesStream {
    fn start(&mut self, out: &mut Vec<wire::Event>) {
        if !std::mem::replace(&mut self.started, true) {
            out.extend(self.transcoder.start());
        }
    }
}

impl StreamRenderer for ResponsesStream {
    /// `response.created` and `response.in_progress` first, then SSE comments.
    fn keepalive(&mut self) -> Vec<u8> {
        let mut events = Vec::new();
        self.start(&mut events);
        if events.is_empty() {
            return b": keep-alive\n\n".to_vec();
        }
        frame(&events)
    }

    fn chunk(&mut self, chunk: &Chunk<'_>) -> Option<Vec<u8>> {
        let mut events = Vec::new();
        self.start(&mut events);
        let chunk = serde_json::to_value(chunk).unwrap_or(Value::Null);
        events.extend(self.transcoder.chunk(&chunk));
        (!events.is_empty()).then(|| frame(&events))
    }

    fn done(&mut self, last: &Value) -> Vec<u8> {
        let mut events = Vec::new();
        self.start(&mut events);
        let now = u64::try_from(self.clock.now_ms() / 1000).unwrap_or(0);
        events.extend(
            self.transcoder
                .finish(last.get("usage").unwrap_or(&Value::Null), now),
        );
        frame(&events)
    }

    fn failed(&mut self, _head: &Chunk<'_>, e: &GatewayError) -> Vec<u8> {
        let mut events = Vec::new();
        self.start(&mut events);
        events.extend(self.transcoder.error(e.status(), &e.message));
        frame(&events)
    }
}
