//! Embeddings (`POST /api/v1/embeddings`): the texts go through the pipeline as the user
//! messages of a canonical request (so that guardrails screen and redact them, the audit record
//! hashes them and holds price them), and the vectors come back in OpenAI's list shape. The
//! wire shapes are `switchyard_formats::embeddings`.

use serde_json::{json, Value};
use switchyard_core::chat::ChatRequest;
use switchyard_core::embeddings::EmbeddingInput;
use switchyard_formats::openrouter::{Chunk, Completion};

use crate::error::GatewayError;
use crate::formats::{ClientFormat, Parsed, RenderContext, StreamRenderer};
use crate::state::AppState;

/// The embeddings format.
pub struct Embeddings;

/// The one instance routes use.
pub static EMBEDDINGS: Embeddings = Embeddings;

impl ClientFormat for Embeddings {
    fn name(&self) -> &'static str {
        "embeddings"
    }

    fn parse(&self, _state: &AppState, body: &[u8]) -> Result<Parsed, GatewayError> {
        let request = switchyard_formats::embeddings::parse(body)
            .map_err(|e| GatewayError::bad_request(e.0))?;
        // Token arrays are carried as their JSON text: hashed like a prompt, never sent as such.
        let texts: Vec<String> = match &request.input {
            EmbeddingInput::Texts(texts) => texts.clone(),
            EmbeddingInput::Tokens(tokens) => tokens
                .iter()
                .map(|t| serde_json::to_string(t).unwrap_or_default())
                .collect(),
        };
        let messages: Vec<Value> = texts
            .iter()
            .map(|t| json!({"role": "user", "content": t}))
            .collect();
        let chat = json!({
            "model": request.model,
            "messages": messages,
            "user": request.user,
        });
        let chat = ChatRequest::from_value(chat).map_err(|e| GatewayError::bad_request(e.0))?;
        Ok(Parsed {
            request: chat,
            original: None,
            legacy: None,
            embeddings: Some(Box::new(request)),
        })
    }

    fn render(
        &self,
        _cx: RenderContext<'_>,
        _completion: &Completion<'_>,
    ) -> Result<Vec<u8>, GatewayError> {
        // Embeddings are rendered from their own result by the respond stage.
        Err(GatewayError::internal(
            &"an embeddings request was answered as a completion",
        ))
    }

    fn streamer(&self, _cx: RenderContext<'_>, _head: &Chunk<'_>) -> Box<dyn StreamRenderer> {
        Box::new(NoStream)
    }

    fn error_body(&self, e: &GatewayError) -> Value {
        e.body()
    }
}

/// Embeddings never stream (the parser refuses `stream`); this renderer only closes.
struct NoStream;

impl StreamRenderer for NoStream {
    fn keepalive(&mut self) -> Vec<u8> {
        Vec::new()
    }

    fn chunk(&mut self, _chunk: &Chunk<'_>) -> Option<Vec<u8>> {
        None
    }

    fn done(&mut self, _last: &Value) -> Vec<u8> {
        Vec::new()
    }

    fn failed(&mut self, head: &Chunk<'_>, e: &GatewayError) -> Vec<u8> {
        switchyard_formats::openrouter::sse(&crate::formats::chat::error_chunk(head, e))
    }
}
