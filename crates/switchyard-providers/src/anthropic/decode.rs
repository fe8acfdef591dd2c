//! Anthropic's answers: completions, errors, token counts, usage and stop reasons.

use serde_json::{json, Value};
use switchyard_core::error::{UpstreamError, UpstreamErrorKind};
use switchyard_core::pricing::Usage;

use crate::{raw_excerpt, Completion};

/// Format tag of Anthropic reasoning details.
pub const REASONING_FORMAT: &str = "anthropic-claude-v1";

/// Anthropic's stop reasons in the contract's vocabulary.
pub fn normalize_stop_reason(native: &str) -> &'static str {
    match native {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

/// The completion in a successful (2xx) Messages answer.
pub(super) fn completion(body: &[u8]) -> Result<Completion, UpstreamError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| UpstreamError {
        raw: Some(raw_excerpt(body)),
        ..UpstreamError::new(
            UpstreamErrorKind::InvalidResponse,
            None,
            format!("Anthropic answered with a body that is not JSON: {e}"),
        )
    })?;
    if value.get("type").and_then(Value::as_str) == Some("error") {
        return Err(error(502, body));
    }
    let Some(content) = value.get("content").and_then(Value::as_array) else {
        return Err(UpstreamError {
            raw: Some(raw_excerpt(body)),
            ..UpstreamError::new(
                UpstreamErrorKind::InvalidResponse,
                None,
                "Anthropic response has no `content`",
            )
        });
    };
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut details: Vec<Value> = Vec::new();
    let mut tool_calls: Vec<Value> = Vec::new();
    for block in content {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("thinking") => {
                let t = block.get("thinking").and_then(Value::as_str).unwrap_or("");
                reasoning.push_str(t);
                details.push(json!({
                    "type": "reasoning.text",
                    "text": t,
                    "signature": block.get("signature").cloned().unwrap_or(Value::Null),
                    "format": REASONING_FORMAT,
                    "index": details.len(),
                }));
            }
            Some("redacted_thinking") => details.push(json!({
                "type": "reasoning.encrypted",
                "data": block.get("data").cloned().unwrap_or(Value::Null),
                "format": REASONING_FORMAT,
                "index": details.len(),
            })),
            Some("tool_use") => tool_calls.push(json!({
                "id": block.get("id").cloned().unwrap_or(Value::Null),
                "type": "function",
                "function": {
                    "name": block.get("name").cloned().unwrap_or(Value::Null),
                    "arguments": block.get("input").map_or_else(|| "{}".to_owned(), Value::to_string),
                },
            })),
            _ => {}
        }
    }
    let native = value
        .get("stop_reason")
        .and_then(Value::as_str)
        .unwrap_or("end_turn");
    let mut message = json!({
        "role": "assistant",
        "content": if text.is_empty() { Value::Null } else { json!(text) },
    });
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    if !reasoning.is_empty() {
        message["reasoning"] = json!(reasoning);
    }
    if !details.is_empty() {
        message["reasoning_details"] = Value::Array(details);
    }
    Ok(Completion {
        upstream_id: value.get("id").and_then(Value::as_str).map(str::to_owned),
        choices: vec![json!({
            "index": 0,
            "message": message,
            "finish_reason": normalize_stop_reason(native),
            "native_finish_reason": native,
        })],
        usage: value.get("usage").map(parse_usage),
        system_fingerprint: None,
        service_tier: value.pointer("/usage/service_tier").cloned(),
    })
}

/// The error in a failed Messages answer (or an error body within a 2xx).
pub(super) fn error(status: u16, body: &[u8]) -> UpstreamError {
    let value: Option<Value> = serde_json::from_slice(body).ok();
    let error = value.as_ref().and_then(|v| v.get("error"));
    let kind_name = error.and_then(|e| e.get("type")).and_then(Value::as_str);
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("Anthropic returned HTTP {status}"));
    let kind = match kind_name {
        Some(_) if message.contains("content filtering policy") => UpstreamErrorKind::ContentPolicy,
        Some("invalid_request_error") if message.contains("prompt is too long") => {
            UpstreamErrorKind::ContextLengthExceeded
        }
        Some("invalid_request_error") => UpstreamErrorKind::InvalidRequest,
        Some("authentication_error" | "permission_error" | "billing_error") => {
            UpstreamErrorKind::ProviderAuth
        }
        Some("not_found_error") => UpstreamErrorKind::NotFound,
        Some("request_too_large") => UpstreamErrorKind::PayloadTooLarge,
        Some("rate_limit_error") => UpstreamErrorKind::RateLimited,
        Some("overloaded_error") => UpstreamErrorKind::Overloaded,
        Some("api_error") => UpstreamErrorKind::Server,
        Some("timeout_error") => UpstreamErrorKind::Timeout,
        _ => UpstreamError::kind_for_status(status),
    };
    UpstreamError {
        kind,
        status: Some(status),
        message,
        raw: Some(raw_excerpt(body)),
        provider_code: kind_name.map(str::to_owned),
    }
}

/// The count of a successful (2xx) `count_tokens` answer, `{"input_tokens": N}`.
pub(super) fn count_tokens(body: &[u8]) -> Result<u64, UpstreamError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| UpstreamError {
        raw: Some(raw_excerpt(body)),
        ..UpstreamError::new(
            UpstreamErrorKind::InvalidResponse,
            None,
            format!("Anthropic answered the token count with a body that is not JSON: {e}"),
        )
    })?;
    if value.get("type").and_then(Value::as_str) == Some("error") {
        return Err(error(502, body));
    }
    value
        .get("input_tokens")
        .and_then(Value::as_u64)
        .ok_or_else(|| UpstreamError {
            raw: Some(raw_excerpt(body)),
            ..UpstreamError::new(
                UpstreamErrorKind::InvalidResponse,
                None,
                "Anthropic's token count has no `input_tokens`",
            )
        })
}

/// The HTTP status Anthropic pairs with an error `type` (for errors met inside a stream).
pub fn status_for_error_type(error_type: &str) -> u16 {
    match error_type {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500,
    }
}

/// Anthropic's usage: `input_tokens` excludes cache reads and writes; the canonical prompt count
/// includes them.
pub fn parse_usage(usage: &Value) -> Usage {
    let n = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0);
    let read = n("cache_read_input_tokens");
    let written = n("cache_creation_input_tokens");
    Usage {
        prompt_tokens: n("input_tokens") + read + written,
        completion_tokens: n("output_tokens"),
        cached_tokens: read,
        cache_write_tokens: written,
        reasoning_tokens: 0,
        audio_prompt_tokens: 0,
        web_search_requests: usage
            .pointer("/server_tool_use/web_search_requests")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    }
}
