//! Wire codecs between Switchyard's canonical chat model and each provider's API.
//!
//! A codec turns a [`ChatRequest`] into the provider's HTTP request, and the provider's JSON body,
//! SSE stream and error bodies back into the canonical shapes ([`Completion`], [`StreamEvent`],
//! [`UpstreamError`]). The canonical response shapes are OpenAI's chat-completion message and
//! chunk delta, which is also OpenRouter's.
//!
//! Besides chat, a codec may serve embeddings ([`Codec::encode_embeddings`],
//! [`Codec::decode_embeddings`]) and the legacy completions API ([`Codec::encode_completions`],
//! [`Codec::decode_completions`], [`Codec::completions_stream_decoder`]), whose answers decode
//! into the same canonical chat shapes. The trait's defaults refuse both, naming the provider
//! kind: OpenAI-compatible servers serve both, Gemini serves embeddings, Anthropic neither.
//!
//! Invariants:
//! - Codecs never open sockets and never read a clock: the engine does the transport.
//! - Adding a provider kind is one module implementing [`Codec`], plus its fixtures.
//! - A codec never silently corrupts input it cannot express: it returns [`CodecError`].

pub mod anthropic;
pub mod gemini;
pub mod openai;
pub mod sse;

use serde_json::Value;
use switchyard_core::catalog::{Endpoint, Provider, ProviderKind};
use switchyard_core::chat::ChatRequest;
use switchyard_core::completions::CompletionsRequest;
use switchyard_core::embeddings::{Embeddings, EmbeddingsRequest};
use switchyard_core::error::{UpstreamError, UpstreamErrorKind};
use switchyard_core::pricing::Usage;

/// Where a request goes: the provider, the endpoint and the provider key.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The provider.
    pub provider: &'a Provider,
    /// The endpoint.
    pub endpoint: &'a Endpoint,
    /// The provider key, when the provider needs one.
    pub api_key: Option<&'a str>,
}

/// An HTTP request for the transport to send (always `POST`).
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamRequest {
    /// Full URL.
    pub url: String,
    /// Headers, secrets included; never log them.
    pub headers: Vec<(String, String)>,
    /// JSON body.
    pub body: Vec<u8>,
}

/// A non-streamed answer in canonical shape.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Completion {
    /// The provider's own id for the generation.
    pub upstream_id: Option<String>,
    /// Choices: `{index, message, finish_reason, native_finish_reason, logprobs?}` with
    /// `finish_reason` already in the contract's vocabulary.
    pub choices: Vec<Value>,
    /// Token counts, when the provider reported them.
    pub usage: Option<Usage>,
    /// `system_fingerprint`, passed through.
    pub system_fingerprint: Option<Value>,
    /// `service_tier`, passed through.
    pub service_tier: Option<Value>,
}

/// One event of a decoded upstream stream.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A chunk: choices in OpenAI delta shape (`{index, delta, finish_reason,
    /// native_finish_reason?}`), and usage when this chunk reports it.
    Chunk {
        /// The provider's own id for the generation, when the chunk carries it.
        upstream_id: Option<String>,
        /// Choice deltas.
        choices: Vec<Value>,
        /// Usage reported by this chunk (the latest report wins).
        usage: Option<Usage>,
    },
    /// The provider reported an error inside the stream.
    Error(UpstreamError),
    /// The provider ended the stream normally.
    Done,
}

/// Input a codec cannot express for its provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(pub String);

/// Refuses a request asking for several choices (`n`) from a provider whose API returns one.
pub(crate) fn one_choice(request: &ChatRequest, provider: &str) -> Result<(), CodecError> {
    let n = request.choices();
    if n > 1 {
        return Err(CodecError(format!(
            "n: {provider} endpoints return one choice, and this request asks for {n}; send n: 1 or choose an OpenAI-compatible endpoint"
        )));
    }
    Ok(())
}

/// Decodes a provider's stream incrementally.
pub trait StreamDecoder: Send {
    /// Feeds bytes as they arrive; returns the events completed by them.
    fn feed(&mut self, bytes: &[u8]) -> Vec<StreamEvent>;
    /// The stream ended; returns what the remaining bytes complete.
    fn finish(&mut self) -> Vec<StreamEvent>;
}

/// A provider wire format.
pub trait Codec: Send + Sync {
    /// The provider kind this codec speaks.
    fn kind(&self) -> ProviderKind;
    /// Builds the upstream request.
    fn encode(
        &self,
        request: &ChatRequest,
        target: &Target<'_>,
    ) -> Result<UpstreamRequest, CodecError>;
    /// Decodes a successful (2xx) non-streamed body.
    fn decode(&self, body: &[u8]) -> Result<Completion, UpstreamError>;
    /// Classifies an error answer.
    fn decode_error(&self, status: u16, body: &[u8]) -> UpstreamError;
    /// A fresh decoder for a streamed answer.
    fn stream_decoder(&self) -> Box<dyn StreamDecoder>;

    /// Builds the upstream embeddings request. By default the kind serves no embeddings.
    fn encode_embeddings(
        &self,
        request: &EmbeddingsRequest,
        target: &Target<'_>,
    ) -> Result<UpstreamRequest, CodecError> {
        let _ = (request, target);
        Err(CodecError(format!(
            "provider kind {} does not serve embeddings",
            self.kind().as_str()
        )))
    }

    /// Decodes a successful (2xx) embeddings answer to `request`: one vector for each input, in
    /// input order. Errors are classified by [`Codec::decode_error`].
    fn decode_embeddings(
        &self,
        request: &EmbeddingsRequest,
        body: &[u8],
    ) -> Result<Embeddings, UpstreamError> {
        let _ = (request, body);
        Err(unserved(self.kind(), "embeddings"))
    }

    /// Builds the upstream request of a legacy completions request for an endpoint that serves
    /// that API natively (`legacy_completions = true`). By default the kind does not.
    fn encode_completions(
        &self,
        request: &CompletionsRequest,
        target: &Target<'_>,
    ) -> Result<UpstreamRequest, CodecError> {
        let _ = (request, target);
        Err(CodecError(format!(
            "provider kind {} does not serve the legacy completions API",
            self.kind().as_str()
        )))
    }

    /// Decodes a successful (2xx) legacy completions answer into the canonical chat shape (the
    /// text as the assistant message's content).
    fn decode_completions(&self, body: &[u8]) -> Result<Completion, UpstreamError> {
        let _ = body;
        Err(unserved(self.kind(), "the legacy completions API"))
    }

    /// A fresh decoder for a streamed legacy completions answer, yielding canonical chat chunks.
    fn completions_stream_decoder(&self) -> Result<Box<dyn StreamDecoder>, CodecError> {
        Err(CodecError(format!(
            "provider kind {} does not serve the legacy completions API",
            self.kind().as_str()
        )))
    }
}

/// The error of a decoder asked for an API its kind does not serve (the encoder refuses first,
/// so only a caller's mistake reaches it).
fn unserved(kind: ProviderKind, api: &str) -> UpstreamError {
    UpstreamError::new(
        UpstreamErrorKind::InvalidRequest,
        None,
        format!("provider kind {} does not serve {api}", kind.as_str()),
    )
}

/// The codec for a provider kind.
pub fn codec_for(kind: ProviderKind) -> Option<&'static dyn Codec> {
    match kind {
        ProviderKind::Openai => Some(&openai::OpenAiCodec),
        ProviderKind::Anthropic => Some(&anthropic::AnthropicCodec),
        ProviderKind::Gemini => Some(&gemini::GeminiCodec),
    }
}

/// Splits a `data:` URL into its media type and base64 payload.
pub fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media = meta.strip_suffix(";base64")?;
    Some((
        if media.is_empty() {
            "application/octet-stream"
        } else {
            media
        },
        data,
    ))
}

/// Truncates a raw upstream body for `metadata.raw` (at most 4 KiB, on a char boundary).
pub fn raw_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut end = text.len().min(4096);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// An answer the gateway cannot read, with an excerpt of it.
pub(crate) fn invalid_response(body: &[u8], message: impl Into<String>) -> UpstreamError {
    UpstreamError {
        raw: Some(raw_excerpt(body)),
        ..UpstreamError::new(UpstreamErrorKind::InvalidResponse, None, message)
    }
}

/// A vector written as a JSON array of numbers or as base64 of little-endian `f32`s; `None`
/// unless every component is a finite `f32`.
pub(crate) fn vector(value: &Value) -> Option<Vec<f32>> {
    let floats = match value {
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_f64().map(|f| f as f32))
            .collect::<Option<Vec<f32>>>()?,
        Value::String(text) => switchyard_core::embeddings::from_base64(text)?,
        _ => return None,
    };
    floats.iter().all(|f| f.is_finite()).then_some(floats)
}

/// The JSON of one stream event, or an error event with an excerpt of what was sent, its
/// message `what` followed by the parser's reason.
pub(crate) fn stream_json(data: &str, what: &str) -> Result<Value, StreamEvent> {
    serde_json::from_str(data).map_err(|e| {
        StreamEvent::Error(UpstreamError {
            raw: Some(raw_excerpt(data.as_bytes())),
            ..UpstreamError::new(
                UpstreamErrorKind::InvalidResponse,
                None,
                format!("{what}: {e}"),
            )
        })
    })
}

/// The vectors of an embeddings answer with their usage: the prompt tokens the provider
/// reported, else an estimate from the input (the exact count of token arrays, a token for
/// every four characters of text), marked as such.
pub(crate) fn embeddings(
    vectors: Vec<Vec<f32>>,
    reported_prompt_tokens: Option<u64>,
    request: &EmbeddingsRequest,
) -> Embeddings {
    Embeddings {
        vectors,
        usage: Usage {
            prompt_tokens: reported_prompt_tokens
                .unwrap_or_else(|| request.estimated_prompt_tokens()),
            ..Usage::default()
        },
        usage_estimated: reported_prompt_tokens.is_none(),
    }
}
