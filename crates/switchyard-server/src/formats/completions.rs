//! Legacy completions (`POST /api/v1/completions`): the prompt becomes one user message for
//! chat endpoints, as OpenRouter does, or is sent as is to endpoints that declare the legacy
//! API (`legacy_completions`); answers are `text_completion` objects and chunks. The
//! translation itself is `switchyard_formats::completions`.

use serde_json::Value;
use switchyard_formats::completions::{self as wire, StreamTranscoder};
use switchyard_formats::openrouter::{Chunk, Completion, KEEPALIVE};

use crate::error::GatewayError;
use crate::formats::{ClientFormat, Parsed, RenderContext, StreamRenderer};
use crate::state::AppState;

/// The legacy completions format.
pub struct Completions;

/// The one instance routes use.
pub static COMPLETIONS: Completions = Completions;

impl ClientFormat for Completions {
    fn name(&self) -> &'static str {
        "completions"
    }

    fn parse(&self, _state: &AppState, body: &[u8]) -> Result<Parsed, GatewayError> {
        let request = wire::parse(body).map_err(|e| GatewayError::bad_request(e.0))?;
        Ok(Parsed {
            request: request.chat.clone(),
            original: None,
            legacy: Some(Box::new(request)),
            embeddings: None,
        })
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

    fn streamer(&self, _cx: RenderContext<'_>, _head: &Chunk<'_>) -> Box<dyn StreamRenderer> {
        Box::new(CompletionsStream {
            transcoder: StreamTranscoder::new(),
        })
    }

    fn error_body(&self, e: &GatewayError) -> Value {
        e.body()
    }
}

/// `text_completion` chunks, the usage chunk, `[DONE]`.
struct CompletionsStream {
    transcoder: StreamTranscoder,
}

impl StreamRenderer for CompletionsStream {
    fn keepalive(&mut self) -> Vec<u8> {
        KEEPALIVE.to_vec()
    }

    fn chunk(&mut self, chunk: &Chunk<'_>) -> Option<Vec<u8>> {
        let value = serde_json::to_value(chunk).unwrap_or(Value::Null);
        self.transcoder.chunk(&value).map(|c| wire::frame(&c))
    }

    fn done(&mut self, last: &Value) -> Vec<u8> {
        let mut out = self
            .transcoder
            .chunk(last)
            .map(|c| wire::frame(&c))
            .unwrap_or_default();
        out.extend_from_slice(wire::DONE);
        out
    }

    fn failed(&mut self, head: &Chunk<'_>, e: &GatewayError) -> Vec<u8> {
        switchyard_formats::openrouter::sse(&crate::formats::chat::error_chunk(head, e))
    }
}
