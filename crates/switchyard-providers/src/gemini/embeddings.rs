//! Gemini embeddings: `POST {base_url}/models/{model}:batchEmbedContents`, one request for each
//! input in one batch.
//!
//! Decisions:
//! - Each text is one `content` of one text part; token arrays have no Gemini form and are
//!   refused, naming the input.
//! - `dimensions` is `outputDimensionality`; `input_type` is `taskType`, from OpenRouter-style
//!   names (`search_query` is `RETRIEVAL_QUERY`, `search_document` is `RETRIEVAL_DOCUMENT`...) or
//!   Gemini's own; anything else is refused, naming the accepted names.
//! - Gemini takes at most [`MAX_BATCH`] inputs in one request; more are refused.
//! - Gemini reports no token usage for embeddings. The usage is then the gateway's estimate
//!   (a token for every four characters of each text, rounded up; see
//!   [`switchyard_core::embeddings::estimate_tokens`]) and [`Embeddings::usage_estimated`] says
//!   so. If an answer does carry `usageMetadata.promptTokenCount`, that count is used.

use serde_json::{json, Value};
use switchyard_core::embeddings::{EmbeddingInput, Embeddings, EmbeddingsRequest};
use switchyard_core::error::UpstreamError;

use super::encode::codec_error;
use crate::{embeddings, invalid_response, vector, CodecError, Target, UpstreamRequest};

/// Most inputs Gemini embeds in one `batchEmbedContents` request.
pub const MAX_BATCH: usize = 100;

/// `input_type` names and the Gemini task types they stand for.
const TASK_TYPES: &[(&str, &str)] = &[
    ("search_query", "RETRIEVAL_QUERY"),
    ("query", "RETRIEVAL_QUERY"),
    ("search_document", "RETRIEVAL_DOCUMENT"),
    ("document", "RETRIEVAL_DOCUMENT"),
    ("passage", "RETRIEVAL_DOCUMENT"),
    ("semantic_similarity", "SEMANTIC_SIMILARITY"),
    ("classification", "CLASSIFICATION"),
    ("clustering", "CLUSTERING"),
    ("question_answering", "QUESTION_ANSWERING"),
    ("fact_verification", "FACT_VERIFICATION"),
    ("code_retrieval_query", "CODE_RETRIEVAL_QUERY"),
];

/// The Gemini task type for an `input_type` (an OpenRouter-style name or Gemini's own, in any
/// case).
pub fn task_type(input_type: &str) -> Option<&'static str> {
    let wanted = input_type.trim();
    TASK_TYPES.iter().find_map(|(name, task)| {
        (name.eq_ignore_ascii_case(wanted) || task.eq_ignore_ascii_case(wanted)).then_some(*task)
    })
}

/// The upstream request.
pub(super) fn encode(
    request: &EmbeddingsRequest,
    target: &Target<'_>,
) -> Result<UpstreamRequest, CodecError> {
    let texts = match &request.input {
        EmbeddingInput::Texts(texts) => texts,
        EmbeddingInput::Tokens(_) => return Err(codec_error(
            "input: token arrays cannot be embedded by gemini (it takes text only); send the text",
        )),
    };
    if texts.len() > MAX_BATCH {
        return Err(codec_error(format!(
            "input: gemini embeds at most {MAX_BATCH} inputs in one request, got {}",
            texts.len()
        )));
    }
    let task = match request.input_type.as_deref() {
        None => None,
        Some(name) => Some(task_type(name).ok_or_else(|| {
            codec_error(format!(
                "input_type {name:?} has no gemini task type; use one of {}",
                TASK_TYPES
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?),
    };
    let base = target.provider.base_url.trim_end_matches('/');
    let model = &target.endpoint.upstream_model;
    let requests: Vec<Value> = texts
        .iter()
        .map(|text| {
            let mut one = json!({
                "model": format!("models/{model}"),
                "content": {"parts": [{"text": text}]},
            });
            if let Some(task) = task {
                one["taskType"] = json!(task);
            }
            if let Some(dimensions) = request.dimensions {
                one["outputDimensionality"] = json!(dimensions);
            }
            one
        })
        .collect();
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if let Some(key) = target.api_key {
        headers.push(("x-goog-api-key".to_owned(), key.to_owned()));
    }
    Ok(UpstreamRequest {
        url: format!("{base}/models/{model}:batchEmbedContents"),
        headers,
        body: serde_json::to_vec(&json!({"requests": requests}))
            .map_err(|e| codec_error(format!("could not encode the request: {e}")))?,
    })
}

/// The vectors of a 2xx answer (`{embeddings: [{values}]}`), in request order.
pub(super) fn decode(
    request: &EmbeddingsRequest,
    body: &[u8],
    error: impl Fn(&[u8]) -> UpstreamError,
) -> Result<Embeddings, UpstreamError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid_response(body, format!("Gemini returned invalid JSON: {e}")))?;
    if value.get("error").is_some_and(|e| !e.is_null()) {
        return Err(error(body));
    }
    let Some(items) = value.get("embeddings").and_then(Value::as_array) else {
        return Err(invalid_response(
            body,
            "Gemini response has no `embeddings`",
        ));
    };
    let wanted = request.input.len();
    if items.len() != wanted {
        return Err(invalid_response(
            body,
            format!(
                "Gemini returned {} embeddings for {wanted} inputs",
                items.len()
            ),
        ));
    }
    let mut vectors = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let Some(v) = item.get("values").and_then(vector) else {
            return Err(invalid_response(
                body,
                format!("Gemini's embedding {index} is not a list of finite numbers"),
            ));
        };
        vectors.push(v);
    }
    let reported = value
        .pointer("/usageMetadata/promptTokenCount")
        .and_then(Value::as_u64);
    Ok(embeddings(vectors, reported, request))
}
