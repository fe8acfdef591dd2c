//! OpenRouter's chat completions (`POST /api/v1/chat/completions`): the canonical format, so
//! parsing is the canonical request's own and rendering writes the canonical shapes.

use serde_json::{json, Value};
use switchyard_core::chat::ChatRequest;
use switchyard_formats::openrouter::{sse, Chunk, Completion, DONE, KEEPALIVE};

use crate::error::GatewayError;
use crate::formats::{ClientFormat, Parsed, RenderContext, StreamRenderer};
use crate::state::AppState;

/// The chat completions format.
pub struct Chat;

/// The one instance routes use.
pub static CHAT: Chat = Chat;

impl ClientFormat for Chat {
    fn name(&self) -> &'static str {
        "chat"
    }

    fn parse(&self, _state: &AppState, body: &[u8]) -> Result<Parsed, GatewayError> {
        let request = ChatRequest::from_json(body).map_err(|e| GatewayError::bad_request(e.0))?;
        // Nothing is accepted and dropped: a field the gateway does not know is refused.
        if let Some(field) = request.unknown_field() {
            return Err(GatewayError::bad_request(format!(
                "Invalid request: {}: unknown field; see docs/openrouter-request-fields.md for the fields this gateway serves",
                switchyard_core::parse_error::field("", field)
            )));
        }
        Ok(Parsed::plain(request))
    }

    fn render(
        &self,
        _cx: RenderContext<'_>,
        completion: &Completion<'_>,
    ) -> Result<Vec<u8>, GatewayError> {
        serde_json::to_vec(completion).map_err(|e| GatewayError::internal(&e))
    }

    fn streamer(&self, _cx: RenderContext<'_>, _head: &Chunk<'_>) -> Box<dyn StreamRenderer> {
        Box::new(ChatStream)
    }

    fn error_body(&self, e: &GatewayError) -> Value {
        e.body()
    }
}

/// OpenRouter SSE: chunk objects, a usage chunk, `[DONE]`.
struct ChatStream;

impl StreamRenderer for ChatStream {
    fn keepalive(&mut self) -> Vec<u8> {
        KEEPALIVE.to_vec()
    }

    fn chunk(&mut self, chunk: &Chunk<'_>) -> Option<Vec<u8>> {
        Some(sse(chunk))
    }

    fn debug(&mut self, chunk: &Value) -> Option<Vec<u8>> {
        Some(sse(chunk))
    }

    fn done(&mut self, last: &Value) -> Vec<u8> {
        let mut out = sse(last);
        out.extend_from_slice(DONE);
        out
    }

    fn failed(&mut self, head: &Chunk<'_>, e: &GatewayError) -> Vec<u8> {
        sse(&error_chunk(head, e))
    }
}

/// The contract's mid-stream error chunk: a final choice with `finish_reason: "error"`, and
/// the error (its status, message and metadata) beside it.
pub fn error_chunk(head: &Chunk<'_>, e: &GatewayError) -> Value {
    let choices = [json!({
        "index": 0,
        "delta": {"content": ""},
        "finish_reason": "error",
        "native_finish_reason": Value::Null,
    })];
    let mut chunk = serde_json::to_value(Chunk {
        choices: &choices,
        ..*head
    })
    .unwrap_or(Value::Null);
    let body = e.body();
    let mut error = body["error"].clone();
    if let Some(metadata) = error.get_mut("metadata").and_then(Value::as_object_mut) {
        // The raw upstream body belongs to the provider's answer, not to a stream's last chunk.
        metadata.remove("raw");
        metadata.remove("provider_code");
    }
    chunk["error"] = error;
    chunk
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::error::{UpstreamError, UpstreamErrorKind};

    #[test]
    fn the_error_chunk_ends_the_choice_and_carries_the_error() {
        let head = Chunk::head("gen-1", 1, "a/b", "Prov");
        let e = GatewayError::upstream(
            &UpstreamError::new(UpstreamErrorKind::Server, Some(500), "boom"),
            "Prov",
        );
        let chunk = error_chunk(&head, &e);
        assert_eq!(chunk["choices"][0]["finish_reason"], "error");
        assert_eq!(chunk["error"]["code"], e.status());
        assert_eq!(chunk["error"]["message"], "boom");
        assert_eq!(chunk["error"]["metadata"]["provider_name"], "Prov");
        assert!(chunk["error"]["metadata"].get("raw").is_none());
        let framed = String::from_utf8(ChatStream.failed(&head, &e)).expect("utf-8");
        assert!(framed.starts_with("data: {") && framed.ends_with("\n\n"));
    }
}
