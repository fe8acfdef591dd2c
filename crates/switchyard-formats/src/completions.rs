//! The legacy completions API, `POST /api/v1/completions`: a raw prompt instead of a
//! conversation, answered as `text_completion` objects.
//!
//! [`parse`] reads a client's body into the canonical
//! [`CompletionsRequest`](switchyard_core::completions::CompletionsRequest): its chat form has
//! one user message for each prompt, so that every chat-only endpoint can serve a plain
//! request; `suffix`, `echo`, several prompts, `n` and `best_of` above one are kept beside it
//! and routing sends such requests to endpoints serving the legacy API natively only. Token
//! array prompts are refused (the gateway screens and bills text); unknown fields are refused,
//! naming them. `logprobs` (the legacy count, 0 to 5) becomes chat's `logprobs: true` and
//! `top_logprobs` for chat endpoints.
//!
//! The answer, whichever way it was served, arrives in the canonical chat shapes and is
//! rendered back by [`response_from_chat`] and [`StreamTranscoder`]: `choices[].text` is the
//! message's (or delta's) content, chat `logprobs.content` becomes the legacy `tokens`,
//! `token_logprobs`, `top_logprobs` and `text_offset`, and every other top-level member (`id`,
//! `created`, `model`, `provider`, `usage`, a mid-stream `error`) is kept. Reasoning has no
//! place in a `text_completion` and is not rendered.

use std::collections::HashMap;

use serde_json::{json, Map, Value};
use switchyard_core::chat::{json_type, ChatRequest};
use switchyard_core::completions::CompletionsRequest;

/// A body that is not a valid legacy completions request (a 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CompletionsError(pub String);

fn invalid<T>(message: impl Into<String>) -> Result<T, CompletionsError> {
    Err(CompletionsError(format!(
        "Invalid request: {}",
        message.into()
    )))
}

/// Fields copied as they are into the chat form, where chat validates them.
const SHARED: &[&str] = &[
    "model",
    "models",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
    "min_p",
    "top_a",
    "seed",
    "logit_bias",
    "stop",
    "stream",
    "stream_options",
    "user",
    "provider",
    "route",
    "session_id",
    "usage",
];

/// Fields of the legacy API itself.
const LEGACY: &[&str] = &["prompt", "suffix", "echo", "n", "best_of", "logprobs"];

/// Largest legacy `logprobs`.
pub const MAX_LOGPROBS: u64 = 5;

/// Parses and validates a JSON body.
pub fn parse(body: &[u8]) -> Result<CompletionsRequest, CompletionsError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| CompletionsError(format!("Invalid JSON in request body: {e}")))?;
    parse_value(&value)
}

/// Parses and validates a JSON value.
pub fn parse_value(value: &Value) -> Result<CompletionsRequest, CompletionsError> {
    let Some(body) = value.as_object() else {
        return Err(CompletionsError(format!(
            "Request body must be a JSON object, not {}",
            json_type(value)
        )));
    };
    if let Some(unknown) = body
        .keys()
        .find(|k| !SHARED.contains(&k.as_str()) && !LEGACY.contains(&k.as_str()))
    {
        let mut accepted: Vec<&str> = LEGACY.iter().chain(SHARED).copied().collect();
        accepted.sort_unstable();
        return invalid(format!(
            "unknown field `{unknown}` (accepted: {})",
            accepted.join(", ")
        ));
    }
    let present = |name: &str| body.get(name).filter(|v| !v.is_null());
    let prompts = match present("prompt") {
        None => return invalid("prompt: field required"),
        Some(prompt) => parse_prompt(prompt)?,
    };
    let suffix = match present("suffix") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return invalid(format!("suffix must be a string, not {}", json_type(other)))
        }
    };
    let echo = match present("echo") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return invalid(format!("echo must be a boolean, not {}", json_type(other))),
    };
    let count = |name: &str, max: u64| -> Result<Option<u64>, CompletionsError> {
        match present(name) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if (1..=max).contains(&n) => Ok(Some(n)),
                _ => invalid(format!("{name} must be an integer from 1 to {max}")),
            },
        }
    };
    let n = count("n", 128)?;
    let best_of = count("best_of", 20)?;
    if let (Some(n), Some(best_of)) = (n, best_of) {
        if best_of < n {
            return invalid(format!("best_of ({best_of}) must be at least n ({n})"));
        }
    }
    let logprobs = match present("logprobs") {
        None => None,
        Some(v) => match v.as_u64() {
            Some(k) if k <= MAX_LOGPROBS => u8::try_from(k).ok(),
            _ => {
                return invalid(format!(
                    "logprobs must be an integer from 0 to {MAX_LOGPROBS} (the number of most likely tokens returned at each position)"
                ))
            }
        },
    };

    let mut chat = Map::new();
    for field in SHARED {
        if let Some(v) = body.get(*field) {
            chat.insert((*field).to_owned(), v.clone());
        }
    }
    chat.insert(
        "messages".into(),
        prompts
            .iter()
            .map(|p| json!({"role": "user", "content": p}))
            .collect(),
    );
    if let Some(k) = logprobs {
        chat.insert("logprobs".into(), json!(true));
        chat.insert("top_logprobs".into(), json!(k));
    }
    let chat = ChatRequest::from_value(Value::Object(chat)).map_err(|e| CompletionsError(e.0))?;
    Ok(CompletionsRequest {
        chat,
        suffix,
        echo,
        n,
        best_of,
        logprobs,
    })
}

fn parse_prompt(prompt: &Value) -> Result<Vec<String>, CompletionsError> {
    const TOKENS: &str =
        "prompt: token arrays are not supported; send the prompt as text (a string or an array of strings)";
    match prompt {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if items.is_empty() => invalid("prompt must not be an empty array"),
        Value::Array(items) => {
            let mut prompts = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => prompts.push(s.clone()),
                    Value::Number(_) | Value::Array(_) => return invalid(TOKENS),
                    other => {
                        return invalid(format!(
                            "prompt[{i}] must be a string, not {}",
                            json_type(other)
                        ))
                    }
                }
            }
            Ok(prompts)
        }
        other => invalid(format!(
            "prompt must be a string or an array of strings, not {}",
            json_type(other)
        )),
    }
}

/// The text of a canonical message or delta: its `content` string, or its text parts joined.
fn content_text(message: Option<&Value>) -> String {
    match message.and_then(|m| m.get("content")) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

/// Legacy `logprobs` from a choice's canonical ones, with `text_offset` counted in characters
/// from `offset`; returns the offset after the last token. A legacy object (from an endpoint
/// serving the legacy API) is kept as it is.
fn legacy_logprobs(logprobs: Option<&Value>, offset: usize) -> (Value, usize) {
    let Some(logprobs) = logprobs.filter(|l| !l.is_null()) else {
        return (Value::Null, offset);
    };
    if logprobs.get("tokens").is_some() {
        return (logprobs.clone(), offset);
    }
    let Some(entries) = logprobs.get("content").and_then(Value::as_array) else {
        return (Value::Null, offset);
    };
    let mut tokens = Vec::with_capacity(entries.len());
    let mut token_logprobs = Vec::with_capacity(entries.len());
    let mut top = Vec::with_capacity(entries.len());
    let mut offsets = Vec::with_capacity(entries.len());
    let mut at = offset;
    for entry in entries {
        let token = entry.get("token").and_then(Value::as_str).unwrap_or("");
        tokens.push(json!(token));
        token_logprobs.push(entry.get("logprob").cloned().unwrap_or(Value::Null));
        let mut alternatives = Map::new();
        for alt in entry
            .get("top_logprobs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(t) = alt.get("token").and_then(Value::as_str) {
                alternatives.insert(
                    t.to_owned(),
                    alt.get("logprob").cloned().unwrap_or(Value::Null),
                );
            }
        }
        top.push(Value::Object(alternatives));
        offsets.push(json!(at));
        at += token.chars().count();
    }
    (
        json!({
            "tokens": tokens,
            "token_logprobs": token_logprobs,
            "top_logprobs": top,
            "text_offset": offsets,
        }),
        at,
    )
}

/// Every top-level member of a canonical completion or chunk but `object` and `choices`, with
/// `object: "text_completion"`.
fn envelope(canonical: &Value) -> Map<String, Value> {
    let mut out: Map<String, Value> = canonical
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| k.as_str() != "object" && k.as_str() != "choices")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    out.insert("object".into(), json!("text_completion"));
    out
}

/// Renders the gateway's canonical chat completion (its response body) as a `text_completion`.
pub fn response_from_chat(completion: &Value) -> Value {
    let mut out = envelope(completion);
    let choices: Vec<Value> = completion
        .get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(position, choice)| {
            let (logprobs, _) = legacy_logprobs(choice.get("logprobs"), 0);
            json!({
                "text": content_text(choice.get("message")),
                "index": choice.get("index").cloned().unwrap_or(json!(position)),
                "logprobs": logprobs,
                "finish_reason": choice.get("finish_reason").cloned().unwrap_or(Value::Null),
            })
        })
        .collect();
    out.insert("choices".into(), Value::Array(choices));
    Value::Object(out)
}

/// Turns the canonical chunk stream (the gateway's own chunks) into `text_completion` chunks,
/// keeping each choice's `text_offset` running across chunks.
#[derive(Debug, Default)]
pub struct StreamTranscoder {
    /// Characters of text so far, by choice index.
    offsets: HashMap<u64, usize>,
}

impl StreamTranscoder {
    /// A transcoder for one answer.
    pub fn new() -> Self {
        StreamTranscoder::default()
    }

    /// The `text_completion` chunk for one canonical chunk; `None` when it carries nothing a
    /// legacy client sees (a role-only or reasoning-only delta).
    pub fn chunk(&mut self, chunk: &Value) -> Option<Value> {
        let mut out = envelope(chunk);
        let source = chunk
            .get("choices")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let mut choices = Vec::with_capacity(source.len());
        for (position, choice) in source.iter().enumerate() {
            let index = choice
                .get("index")
                .and_then(Value::as_u64)
                .unwrap_or(position as u64);
            let text = content_text(choice.get("delta"));
            let finish = choice.get("finish_reason").cloned().unwrap_or(Value::Null);
            let offset = self.offsets.entry(index).or_insert(0);
            let (logprobs, next) = legacy_logprobs(choice.get("logprobs"), *offset);
            if text.is_empty() && finish.is_null() && logprobs.is_null() {
                continue;
            }
            *offset = if next == *offset {
                *offset + text.chars().count()
            } else {
                next
            };
            choices.push(json!({
                "text": text,
                "index": index,
                "logprobs": logprobs,
                "finish_reason": finish,
            }));
        }
        let carries_more = ["usage", "error"]
            .iter()
            .any(|k| chunk.get(*k).is_some_and(|v| !v.is_null()));
        if choices.is_empty() && !source.is_empty() && !carries_more {
            return None;
        }
        out.insert("choices".into(), Value::Array(choices));
        Some(Value::Object(out))
    }
}

/// Frames one chunk as an SSE event (`data: {...}`).
pub fn frame(chunk: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"data: ");
    if serde_json::to_writer(&mut out, chunk).is_err() {
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
    out
}

/// The event that ends a stream.
pub const DONE: &[u8] = b"data: [DONE]\n\n";

#[cfg(test)]
mod tests;
