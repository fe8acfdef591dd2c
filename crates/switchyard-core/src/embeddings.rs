//! The canonical embeddings request and result.
//!
//! The `/embeddings` wire format (`switchyard_formats::embeddings`) parses a client's body into an
//! [`EmbeddingsRequest`]; provider codecs encode it for their API and decode the vectors into
//! [`Embeddings`], which the format renders back.
//!
//! Vectors are kept as `f32`, the precision providers compute them in: a float printed by a
//! provider reads back to the same `f32`, and `base64` output is the little-endian bytes of
//! those `f32`s, as OpenAI sends it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::catalog::ModelKind;
use crate::pricing::Usage;
use crate::routing::{ProviderPreferences, RouteRequest};

/// What to embed: one vector is produced for each item, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EmbeddingInput {
    /// Texts (a single string is a list of one).
    Texts(Vec<String>),
    /// Token ids, one array for each input (a single array is a list of one).
    Tokens(Vec<Vec<u32>>),
}

impl EmbeddingInput {
    /// How many vectors the input asks for.
    pub fn len(&self) -> usize {
        match self {
            EmbeddingInput::Texts(texts) => texts.len(),
            EmbeddingInput::Tokens(tokens) => tokens.len(),
        }
    }

    /// Whether there is nothing to embed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Token estimate of each item: the exact count for token arrays, [`estimate_tokens`] for
    /// texts.
    pub fn token_estimates(&self) -> Vec<u64> {
        match self {
            EmbeddingInput::Texts(texts) => texts.iter().map(|t| estimate_tokens(t)).collect(),
            EmbeddingInput::Tokens(tokens) => tokens.iter().map(|t| t.len() as u64).collect(),
        }
    }
}

/// How vectors are written in the answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    /// JSON arrays of numbers.
    #[default]
    Float,
    /// Base64 of the little-endian `f32` bytes.
    Base64,
}

/// A parsed and validated embeddings request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsRequest {
    /// Catalogue id or alias of an embedding model, with an optional variant.
    pub model: String,
    /// Fallback models tried after `model`.
    pub models: Vec<String>,
    /// What to embed.
    pub input: EmbeddingInput,
    /// How the answer writes vectors; providers are always asked for floats.
    pub encoding_format: EncodingFormat,
    /// Shorter vectors, for models that take the parameter.
    pub dimensions: Option<u32>,
    /// What the input is for (`search_query`, `search_document`...), for providers that tune
    /// vectors by task.
    pub input_type: Option<String>,
    /// End-user id.
    pub user: Option<String>,
    /// Provider routing preferences.
    pub provider: Option<ProviderPreferences>,
}

/// Rough token count of a text: a token for every four characters, rounded up.
pub fn estimate_tokens(text: &str) -> u64 {
    text.chars().count().div_ceil(4) as u64
}

impl EmbeddingsRequest {
    /// The routing view: an embedding model, the largest input against each endpoint's context.
    pub fn route_request(&self) -> RouteRequest<'_> {
        RouteRequest {
            kind: ModelKind::Embedding,
            model: Some(self.model.as_str()),
            models: &self.models,
            provider: self.provider.as_ref(),
            route: None,
            service_tier: None,
            parameters: Vec::new(),
            prompt_tokens: self.input.token_estimates().into_iter().max().unwrap_or(0),
            max_output_tokens: None,
            modalities: vec!["text"],
            tools: false,
            dimensions: self.dimensions,
            legacy_completions: None,
        }
    }

    /// Token estimate of the whole input, for credit holds.
    pub fn estimated_prompt_tokens(&self) -> u64 {
        self.input.token_estimates().into_iter().sum()
    }

    /// Calls `f` on every text sent upstream, for guardrail screening and redaction. Token
    /// arrays are not texts and are not visited.
    pub fn for_each_text(&mut self, mut f: impl FnMut(&mut String)) {
        if let EmbeddingInput::Texts(texts) = &mut self.input {
            texts.iter_mut().for_each(&mut f);
        }
    }
}

/// The vectors a provider returned, in input order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Embeddings {
    /// One vector for each input item, in order.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens billed: `prompt_tokens` only.
    pub usage: Usage,
    /// The provider reported no usage and `usage` is the gateway's estimate.
    pub usage_estimated: bool,
}

/// Base64 of a vector's little-endian `f32` bytes (OpenAI's `encoding_format: "base64"`).
pub fn to_base64(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector.iter().flat_map(|v| v.to_le_bytes()).collect();
    STANDARD.encode(bytes)
}

/// The vector a base64 string of little-endian `f32` bytes holds; `None` when the text is not
/// base64 or not a whole number of `f32`s.
pub fn from_base64(text: &str) -> Option<Vec<f32>> {
    let bytes = STANDARD.decode(text.trim()).ok()?;
    if bytes.len() % 4 != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(input: EmbeddingInput) -> EmbeddingsRequest {
        EmbeddingsRequest {
            model: "openai/text-embedding-3-small".to_owned(),
            models: Vec::new(),
            input,
            encoding_format: EncodingFormat::Float,
            dimensions: Some(256),
            input_type: None,
            user: None,
            provider: None,
        }
    }

    #[test]
    fn base64_is_little_endian_f32_and_reads_back() {
        let cases: [(&[f32], &str); 3] = [
            (&[], ""),
            (&[1.0], "AACAPw=="),
            (&[1.0, -2.0, 0.5], "AACAPwAAAMAAAAA/"),
        ];
        for (vector, text) in cases {
            assert_eq!(to_base64(vector), text, "{vector:?}");
            assert_eq!(from_base64(text).as_deref(), Some(vector), "{text}");
        }
        assert_eq!(from_base64("AACA"), None, "three bytes are not an f32");
        assert_eq!(from_base64("not base64!"), None);
    }

    #[test]
    fn estimates_and_the_routing_view() {
        let cases = [
            (
                EmbeddingInput::Texts(vec!["abcd".into(), "abcdefghi".into(), "é".into()]),
                vec![1, 3, 1],
            ),
            (
                EmbeddingInput::Tokens(vec![vec![1, 2, 3], vec![]]),
                vec![3, 0],
            ),
        ];
        for (input, estimates) in cases {
            assert_eq!(input.token_estimates(), estimates, "{input:?}");
            let r = request(input);
            assert_eq!(r.estimated_prompt_tokens(), estimates.iter().sum::<u64>());
            let route = r.route_request();
            assert_eq!(route.kind, ModelKind::Embedding);
            assert_eq!(route.model, Some("openai/text-embedding-3-small"));
            assert_eq!(route.dimensions, Some(256));
            assert_eq!(
                route.prompt_tokens,
                estimates.iter().copied().max().unwrap_or(0)
            );
        }
    }

    #[test]
    fn screening_visits_texts_only() {
        let mut r = request(EmbeddingInput::Texts(vec!["a@b.c".into(), "x".into()]));
        r.for_each_text(|t| t.make_ascii_uppercase());
        assert_eq!(
            r.input,
            EmbeddingInput::Texts(vec!["A@B.C".into(), "X".into()])
        );
        let mut r = request(EmbeddingInput::Tokens(vec![vec![1]]));
        let mut visited = 0;
        r.for_each_text(|_| visited += 1);
        assert_eq!(visited, 0);
    }
}
