//! Anthropic's Messages API (`POST /api/v1/messages`): requests translated into the canonical
//! chat request, answers and events rendered in Anthropic's shapes, errors in Anthropic's
//! envelope. The translation itself is `switchyard_formats::messages`.

use serde_json::{json, Value};
use switchyard_core::chat::ChatRequest;
use switchyard_formats::messages::{self as wire, StreamTranscoder};
use switchyard_formats::openrouter::{Chunk, Completion};

use crate::error::GatewayError;
use crate::formats::{ClientFormat, Parsed, RenderContext, StreamRenderer};
use crate::state::AppState;

/// The Messages format.
pub struct Messages;

/// The one instance routes use.
pub static MESSAGES: Messages = Messages;

impl ClientFormat for Messages {
    fn name(&self) -> &'static str {
        "messages"
    }

    fn parse(&self, _state: &AppState, body: &[u8]) -> Result<Parsed, GatewayError> {
        let value = crate::formats::json_body(body)?;
        let chat = wire::request_to_chat(&value).map_err(|e| GatewayError::bad_request(e.0))?;
        ChatRequest::from_value(chat)
            .map(Parsed::plain)
            .map_err(|e| GatewayError::bad_request(e.0))
    }

    fn render(
        &self,
        _cx: RenderContext<'_>,
        completion: &Completion<'_>,
    ) -> Result<Vec<u8>, GatewayError> {
        let value = serde_json::to_value(completion).map_err(|e| GatewayError::internal(&e))?;
        serde_json::to_vec(&wire::response_from_chat(&value))
            .map_err(|e| GatewayError::internal(&e))
    }

    fn streamer(&self, _cx: RenderContext<'_>, head: &Chunk<'_>) -> Box<dyn StreamRenderer> {
        Box::new(MessagesStream {
            transcoder: Box::new(StreamTranscoder::new(head.id, head.model)),
            started: false,
            input_usage: None,
        })
    }

    fn error_body(&self, e: &GatewayError) -> Value {
        wire::error_body(e.status(), &e.message, e.generation_id.as_deref())
    }
}

/// `POST /api/v1/messages/count_tokens`: the same request shape without `max_tokens`.
pub struct CountTokens;

/// The one instance the route uses.
pub static COUNT_TOKENS: CountTokens = CountTokens;

impl ClientFormat for CountTokens {
    fn name(&self) -> &'static str {
        "messages"
    }

    fn parse(&self, _state: &AppState, body: &[u8]) -> Result<Parsed, GatewayError> {
        let value = crate::formats::json_body(body)?;
        let chat =
            wire::count_tokens_request(&value).map_err(|e| GatewayError::bad_request(e.0))?;
        ChatRequest::from_value(chat)
            .map(Parsed::plain)
            .map_err(|e| GatewayError::bad_request(e.0))
    }

    fn render(
        &self,
        cx: RenderContext<'_>,
        completion: &Completion<'_>,
    ) -> Result<Vec<u8>, GatewayError> {
        MESSAGES.render(cx, completion)
    }

    fn streamer(&self, cx: RenderContext<'_>, head: &Chunk<'_>) -> Box<dyn StreamRenderer> {
        MESSAGES.streamer(cx, head)
    }

    fn error_body(&self, e: &GatewayError) -> Value {
        MESSAGES.error_body(e)
    }
}

/// Anthropic's typed events; `started` once `message_start` went out, carrying the prompt's
/// token count when the provider gave it before the first content.
struct MessagesStream {
    transcoder: Box<StreamTranscoder>,
    started: bool,
    input_usage: Option<Value>,
}

fn frame(events: &[wire::Event]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 * events.len());
    for e in events {
        out.extend_from_slice(&wire::frame(e));
    }
    out
}

impl MessagesStream {
    /// `message_start`, once, before anything else.
    fn start(&mut self, events: &mut Vec<wire::Event>) {
        if !std::mem::replace(&mut self.started, true) {
            events.push(match &self.input_usage {
                Some(usage) => self.transcoder.start_with_usage(usage),
                None => self.transcoder.start(),
            });
        }
    }
}

impl StreamRenderer for MessagesStream {
    /// Before the first content, an SSE comment (so that `message_start` can carry the
    /// prompt's real token count); after it, Anthropic's `ping` events.
    fn keepalive(&mut self) -> Vec<u8> {
        if !self.started {
            return b": ping\n\n".to_vec();
        }
        frame(&[("ping", json!({"type": "ping"}))])
    }

    fn usage_seen(&mut self, usage: &switchyard_core::pricing::Usage) {
        if !self.started {
            let out = switchyard_formats::openrouter::UsageOut::new(
                usage,
                &switchyard_core::pricing::Cost::default(),
                false,
            );
            self.input_usage = serde_json::to_value(out).ok();
        }
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
        events.extend(
            self.transcoder
                .finish(last.get("usage").unwrap_or(&Value::Null)),
        );
        frame(&events)
    }

    fn failed(&mut self, _head: &Chunk<'_>, e: &GatewayError) -> Vec<u8> {
        frame(&self.transcoder.error(e.status(), &e.message))
    }
}
