//! Gemini's answers: candidates as OpenAI messages and deltas, errors, log probabilities and
//! usage.

use serde_json::{json, Map, Value};
use switchyard_core::error::{UpstreamError, UpstreamErrorKind};
use switchyard_core::pricing::Usage;

use crate::{raw_excerpt, Completion};

/// Format tag of Gemini reasoning details.
pub const REASONING_FORMAT: &str = "google-gemini-v1";

/// Gemini's finish reasons in the contract's vocabulary (`tool_calls` is decided by the caller
/// when the candidate holds function calls).
pub fn normalize_finish_reason(native: &str) -> &'static str {
    match native {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY"
        | "LANGUAGE" => "content_filter",
        "MALFORMED_FUNCTION_CALL" | "UNEXPECTED_TOOL_CALL" | "TOO_MANY_TOOL_CALLS" => "error",
        _ => "stop",
    }
}

/// The completion in a successful (2xx) `generateContent` answer.
pub(super) fn completion(body: &[u8]) -> Result<Completion, UpstreamError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| UpstreamError {
        raw: Some(raw_excerpt(body)),
        ..UpstreamError::new(
            UpstreamErrorKind::InvalidResponse,
            None,
            format!("Gemini answered with a body that is not JSON: {e}"),
        )
    })?;
    if value.get("error").is_some() {
        return Err(error(502, body));
    }
    let mut state = Decoded::default();
    let (delta, finish) = state.candidate(&value);
    let mut message =
        json!({"role": "assistant", "content": delta.get("content").cloned().unwrap_or(json!(""))});
    for key in ["tool_calls", "reasoning", "reasoning_details"] {
        if let Some(v) = delta.get(key) {
            message[key] = v.clone();
        }
    }
    // A message's tool calls carry no stream index.
    for call in message
        .get_mut("tool_calls")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(c) = call.as_object_mut() {
            c.remove("index");
        }
    }
    if message.get("tool_calls").is_some() && message["content"] == "" {
        message["content"] = Value::Null;
    }
    let (reason, native) = finish.unwrap_or(("stop", String::from("STOP")));
    let mut choice = json!({
        "index": 0,
        "message": message,
        "finish_reason": reason,
        "native_finish_reason": native,
    });
    if let Some(lp) = logprobs(&value) {
        choice["logprobs"] = lp;
    }
    Ok(Completion {
        upstream_id: value
            .get("responseId")
            .and_then(Value::as_str)
            .map(str::to_owned),
        choices: vec![choice],
        usage: value.get("usageMetadata").map(parse_usage),
        system_fingerprint: value.get("modelVersion").cloned(),
        service_tier: None,
    })
}

/// The error in a failed answer (or an error body within a 2xx).
pub(super) fn error(status: u16, body: &[u8]) -> UpstreamError {
    let value: Option<Value> = serde_json::from_slice(body).ok();
    // Some errors arrive as a one-element array.
    let error = value.as_ref().and_then(|v| {
        v.get("error")
            .or_else(|| v.get(0).and_then(|e| e.get("error")))
    });
    let code = error.and_then(|e| e.get("status")).and_then(Value::as_str);
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("Gemini returned HTTP {status}"));
    // A bad key is `INVALID_ARGUMENT` with reason `API_KEY_INVALID` in the details.
    let key_invalid = error
        .and_then(|e| e.get("details"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|d| d.get("reason").and_then(Value::as_str) == Some("API_KEY_INVALID"));
    let kind = match code {
        _ if key_invalid => UpstreamErrorKind::ProviderAuth,
        Some("INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE")
            if message.contains("token count") && message.contains("exceeds") =>
        {
            UpstreamErrorKind::ContextLengthExceeded
        }
        Some("INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE") => {
            UpstreamErrorKind::InvalidRequest
        }
        Some("UNAUTHENTICATED" | "PERMISSION_DENIED") => UpstreamErrorKind::ProviderAuth,
        Some("NOT_FOUND") => UpstreamErrorKind::NotFound,
        Some("RESOURCE_EXHAUSTED") => UpstreamErrorKind::RateLimited,
        Some("UNAVAILABLE") => UpstreamErrorKind::Overloaded,
        Some("DEADLINE_EXCEEDED") => UpstreamErrorKind::Timeout,
        Some("INTERNAL" | "UNKNOWN") => UpstreamErrorKind::Server,
        _ => UpstreamError::kind_for_status(status),
    };
    UpstreamError {
        kind,
        status: Some(status),
        message,
        raw: Some(raw_excerpt(body)),
        provider_code: code.map(str::to_owned),
    }
}

/// The first candidate's `logprobsResult` as OpenAI `logprobs` (`{content: [{token, logprob,
/// bytes, top_logprobs}]}`); `None` when absent.
pub(super) fn logprobs(value: &Value) -> Option<Value> {
    let result = value.pointer("/candidates/0/logprobsResult")?;
    let chosen = result.get("chosenCandidates")?.as_array()?;
    let top = result.get("topCandidates").and_then(Value::as_array);
    let entry = |c: &Value| {
        json!({
            "token": c.get("token").and_then(Value::as_str).unwrap_or(""),
            "logprob": c.get("logProbability").and_then(Value::as_f64).unwrap_or(0.0),
            "bytes": Value::Null,
        })
    };
    let content: Vec<Value> = chosen
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut e = entry(c);
            let alternatives: Vec<Value> = top
                .and_then(|t| t.get(i))
                .and_then(|t| t.get("candidates"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(entry)
                .collect();
            e["top_logprobs"] = Value::Array(alternatives);
            e
        })
        .collect();
    Some(json!({"content": content}))
}

/// Gemini's usage metadata; thoughts count as completion (and reasoning) tokens.
pub fn parse_usage(meta: &Value) -> Usage {
    let n = |k: &str| meta.get(k).and_then(Value::as_u64).unwrap_or(0);
    let audio = meta
        .get("promptTokensDetails")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|d| d.get("modality").and_then(Value::as_str) == Some("AUDIO"))
        .filter_map(|d| d.get("tokenCount").and_then(Value::as_u64))
        .sum();
    let thoughts = n("thoughtsTokenCount");
    Usage {
        prompt_tokens: n("promptTokenCount") + n("toolUsePromptTokenCount"),
        completion_tokens: n("candidatesTokenCount") + thoughts,
        cached_tokens: n("cachedContentTokenCount"),
        cache_write_tokens: 0,
        reasoning_tokens: thoughts,
        audio_prompt_tokens: audio,
        web_search_requests: 0,
    }
}

/// Turns candidates into OpenAI deltas, numbering function calls across a whole response.
#[derive(Default)]
pub(super) struct Decoded {
    calls: usize,
    reasoning_index: usize,
}

impl Decoded {
    /// The delta of the first candidate, and `(finish_reason, native)` when it finished.
    pub(super) fn candidate(&mut self, value: &Value) -> (Value, Option<(&'static str, String)>) {
        let mut delta = Map::new();
        let candidate = value.pointer("/candidates/0");
        let Some(candidate) = candidate else {
            // No candidate: the prompt itself was blocked.
            if let Some(reason) = value
                .pointer("/promptFeedback/blockReason")
                .and_then(Value::as_str)
            {
                delta.insert("content".into(), json!(""));
                return (
                    Value::Object(delta),
                    Some(("content_filter", reason.to_owned())),
                );
            }
            return (Value::Object(delta), None);
        };
        let mut text = String::new();
        let mut reasoning = String::new();
        let mut details: Vec<Value> = Vec::new();
        let mut calls: Vec<Value> = Vec::new();
        for part in candidate
            .pointer("/content/parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let signature = part.get("thoughtSignature").cloned();
            if let Some(call) = part.get("functionCall") {
                let name = call.get("name").and_then(Value::as_str).unwrap_or("");
                let id = call
                    .get("id")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("call_{}_{name}", self.calls), str::to_owned);
                let args = call.get("args").cloned().unwrap_or_else(|| json!({}));
                calls.push(json!({
                    "index": self.calls,
                    "id": id,
                    "type": "function",
                    "function": {"name": name, "arguments": args.to_string()},
                }));
                self.calls += 1;
                if let Some(sig) = signature {
                    details.push(json!({"type": "reasoning.encrypted", "data": sig, "id": id,
                                        "format": REASONING_FORMAT, "index": self.reasoning_index}));
                    self.reasoning_index += 1;
                }
                continue;
            }
            let Some(t) = part.get("text").and_then(Value::as_str) else {
                continue;
            };
            if part.get("thought").and_then(Value::as_bool) == Some(true) {
                reasoning.push_str(t);
                let mut detail = json!({"type": "reasoning.text", "text": t,
                                        "format": REASONING_FORMAT, "index": self.reasoning_index});
                if let Some(sig) = signature {
                    detail["signature"] = sig;
                }
                details.push(detail);
                self.reasoning_index += 1;
                continue;
            }
            text.push_str(t);
            if let Some(sig) = signature {
                details.push(json!({"type": "reasoning.encrypted", "data": sig,
                                    "format": REASONING_FORMAT, "index": self.reasoning_index}));
                self.reasoning_index += 1;
            }
        }
        if !text.is_empty() {
            delta.insert("content".into(), json!(text));
        }
        if !reasoning.is_empty() {
            delta.insert("reasoning".into(), json!(reasoning));
        }
        if !details.is_empty() {
            delta.insert("reasoning_details".into(), Value::Array(details));
        }
        let has_calls = !calls.is_empty() || self.calls > 0;
        if !calls.is_empty() {
            delta.insert("tool_calls".into(), Value::Array(calls));
        }
        let finish = candidate
            .get("finishReason")
            .and_then(Value::as_str)
            .filter(|r| *r != "FINISH_REASON_UNSPECIFIED")
            .map(|native| {
                let reason = match normalize_finish_reason(native) {
                    "stop" if has_calls => "tool_calls",
                    other => other,
                };
                (reason, native.to_owned())
            });
        (Value::Object(delta), finish)
    }
}
