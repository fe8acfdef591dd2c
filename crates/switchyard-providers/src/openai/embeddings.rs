//! OpenAI's embeddings API, `POST {base_url}/embeddings`, also spoken by Mistral, Together,
//! DeepInfra, Fireworks, vLLM and Ollama.
//!
//! Decisions:
//! - Input goes as a list (of texts or of token arrays) even when the client sent one item.
//! - Vectors are always asked for as floats (`encoding_format` is left out, every server's
//!   default); the gateway writes base64 itself when the client asked for it. Base64 answers
//!   are read all the same.
//! - `input_type` has no OpenAI equivalent and is refused, naming the provider.
//! - A server that reports no usage is billed on the estimate of
//!   [`switchyard_core::embeddings::estimate_tokens`], and the result says so.

use serde_json::{json, Map, Value};
use switchyard_core::embeddings::{EmbeddingInput, Embeddings, EmbeddingsRequest};
use switchyard_core::error::UpstreamError;

use crate::{embeddings, invalid_response, vector, CodecError, Target, UpstreamRequest};

/// The upstream request.
pub(super) fn encode(
    request: &EmbeddingsRequest,
    target: &Target<'_>,
) -> Result<UpstreamRequest, CodecError> {
    if request.input_type.is_some() {
        return Err(CodecError(format!(
            "input_type is not taken by {} (OpenAI-compatible embeddings have no task type); leave it out",
            target.provider.name
        )));
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(target.endpoint.upstream_model));
    body.insert(
        "input".into(),
        match &request.input {
            EmbeddingInput::Texts(texts) => json!(texts),
            EmbeddingInput::Tokens(tokens) => json!(tokens),
        },
    );
    if let Some(dimensions) = request.dimensions {
        body.insert("dimensions".into(), json!(dimensions));
    }
    if let Some(user) = &request.user {
        body.insert("user".into(), json!(user));
    }
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if let Some(key) = target.api_key {
        headers.push(("authorization".to_owned(), format!("Bearer {key}")));
    }
    Ok(UpstreamRequest {
        url: format!("{}/embeddings", target.provider.base_url),
        headers,
        body: serde_json::to_vec(&Value::Object(body)).map_err(|e| CodecError(e.to_string()))?,
    })
}

/// The vectors of a 2xx answer, placed by their `index`; every input must get exactly one.
pub(super) fn decode(
    request: &EmbeddingsRequest,
    body: &[u8],
    error: impl Fn(&[u8]) -> UpstreamError,
) -> Result<Embeddings, UpstreamError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid_response(body, format!("Provider returned invalid JSON: {e}")))?;
    if value.get("error").is_some_and(|e| !e.is_null()) {
        return Err(error(body));
    }
    let Some(data) = value.get("data").and_then(Value::as_array) else {
        return Err(invalid_response(body, "Provider response has no `data`"));
    };
    let wanted = request.input.len();
    let mut vectors: Vec<Option<Vec<f32>>> = vec![None; wanted];
    for (position, item) in data.iter().enumerate() {
        let index = item
            .get("index")
            .and_then(Value::as_u64)
            .map_or(position, |i| usize::try_from(i).unwrap_or(usize::MAX));
        let Some(slot) = vectors.get_mut(index).filter(|v| v.is_none()) else {
            return Err(invalid_response(
                body,
                format!("Provider returned a second or unexpected embedding at index {index} for {wanted} inputs"),
            ));
        };
        let Some(v) = item.get("embedding").and_then(vector) else {
            return Err(invalid_response(
                body,
                format!(
                    "Provider's embedding {index} is not a list of finite numbers or base64 floats"
                ),
            ));
        };
        *slot = Some(v);
    }
    let vectors: Vec<Vec<f32>> = vectors.into_iter().flatten().collect();
    if vectors.len() != wanted {
        return Err(invalid_response(
            body,
            format!(
                "Provider returned {} embeddings for {wanted} inputs",
                vectors.len()
            ),
        ));
    }
    let reported = value
        .get("usage")
        .and_then(|u| u.get("prompt_tokens"))
        .and_then(Value::as_u64);
    Ok(embeddings(vectors, reported, request))
}
