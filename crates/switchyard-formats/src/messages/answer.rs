//! The canonical answer as Anthropic's message: stop reasons, usage, content blocks, and the
//! error envelope.

use serde_json::{json, Value};

/// Anthropic's `stop_reason` for a canonical finish reason, preferring the native one when the
/// upstream was Anthropic.
pub fn stop_reason(finish_reason: Option<&str>, native: Option<&str>) -> &'static str {
    match native {
        Some("end_turn") => return "end_turn",
        Some("max_tokens") => return "max_tokens",
        Some("stop_sequence") => return "stop_sequence",
        Some("tool_use") => return "tool_use",
        Some("pause_turn") => return "pause_turn",
        Some("refusal") => return "refusal",
        _ => {}
    }
    match finish_reason {
        Some("length") => "max_tokens",
        Some("tool_calls") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// Anthropic's `stop_details` for a stop reason: a refusal's (its category and explanation are
/// not known), `null` otherwise.
pub fn stop_details(stop_reason: &str) -> Value {
    if stop_reason == "refusal" {
        json!({"type": "refusal", "category": Value::Null, "explanation": Value::Null})
    } else {
        Value::Null
    }
}

/// Anthropic usage from the canonical usage object (`prompt_tokens` includes cached and
/// cache-written tokens; Anthropic's `input_tokens` does not). Every member Anthropic's usage
/// requires is present: the split of cache writes by lifetime (`cache_creation`), the serving
/// region (`inference_geo`), server tools and the service tier are not known, so `null`.
pub fn usage_to_anthropic(usage: &Value) -> Value {
    let n = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    let prompt = n(usage.get("prompt_tokens"));
    let details = usage.get("prompt_tokens_details");
    let cached = n(details.and_then(|d| d.get("cached_tokens")));
    let written = n(details.and_then(|d| d.get("cache_write_tokens")));
    let thinking = n(usage
        .get("completion_tokens_details")
        .and_then(|d| d.get("reasoning_tokens")));
    let mut out = json!({
        "input_tokens": prompt.saturating_sub(cached).saturating_sub(written),
        "output_tokens": n(usage.get("completion_tokens")),
        "output_tokens_details": {"thinking_tokens": thinking},
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": written,
        "cache_creation": Value::Null,
        "inference_geo": Value::Null,
        "server_tool_use": Value::Null,
        "service_tier": Value::Null,
    });
    if let Some(cost) = usage.get("cost") {
        out["cost"] = cost.clone();
    }
    out
}

fn parse_arguments(arguments: Option<&Value>) -> Value {
    match arguments {
        Some(Value::String(s)) if s.trim().is_empty() => json!({}),
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or_else(|_| json!({})),
        Some(v @ Value::Object(_)) => v.clone(),
        _ => json!({}),
    }
}

/// Translates a canonical chat completion (the gateway's own response body) into Anthropic's
/// message object.
pub fn response_from_chat(completion: &Value) -> Value {
    let choice = completion
        .get("choices")
        .and_then(|c| c.get(0))
        .cloned()
        .unwrap_or(Value::Null);
    let message = choice.get("message").cloned().unwrap_or(Value::Null);
    let mut content: Vec<Value> = Vec::new();
    match message.get("reasoning_details").and_then(Value::as_array) {
        Some(details) if !details.is_empty() => {
            for d in details {
                match d.get("type").and_then(Value::as_str) {
                    Some("reasoning.encrypted") => content.push(json!({
                        "type": "redacted_thinking",
                        "data": d.get("data").cloned().unwrap_or(Value::Null),
                    })),
                    _ => content.push(json!({
                        "type": "thinking",
                        "thinking": d.get("text").or_else(|| d.get("summary")).and_then(Value::as_str).unwrap_or(""),
                        "signature": d.get("signature").and_then(Value::as_str).unwrap_or(""),
                    })),
                }
            }
        }
        _ => {
            if let Some(r) = message.get("reasoning").and_then(Value::as_str) {
                if !r.is_empty() {
                    content.push(json!({"type": "thinking", "thinking": r, "signature": ""}));
                }
            }
        }
    }
    match message.get("content") {
        Some(Value::String(s)) if !s.is_empty() => {
            content.push(json!({"type": "text", "text": s, "citations": Value::Null}));
        }
        Some(Value::Array(parts)) => {
            for p in parts {
                if let Some(t) = p.get("text").and_then(Value::as_str) {
                    content.push(json!({"type": "text", "text": t, "citations": Value::Null}));
                }
            }
        }
        _ => {}
    }
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let function = call.get("function");
        content.push(json!({
            "type": "tool_use",
            "id": call.get("id").cloned().unwrap_or(Value::Null),
            "caller": {"type": "direct"},
            "name": function.and_then(|f| f.get("name")).cloned().unwrap_or(Value::Null),
            "input": parse_arguments(function.and_then(|f| f.get("arguments"))),
        }));
    }
    let finish = choice.get("finish_reason").and_then(Value::as_str);
    let native = choice.get("native_finish_reason").and_then(Value::as_str);
    let reason = stop_reason(finish, native);
    let mut out = json!({
        "id": completion.get("id").cloned().unwrap_or(Value::Null),
        "type": "message",
        "role": "assistant",
        "container": Value::Null,
        "model": completion.get("model").cloned().unwrap_or(Value::Null),
        "content": content,
        "stop_reason": reason,
        "stop_details": stop_details(reason),
        "stop_sequence": Value::Null,
        "usage": usage_to_anthropic(completion.get("usage").unwrap_or(&Value::Null)),
    });
    if let Some(p) = completion.get("provider") {
        out["provider"] = p.clone();
    }
    if let Some(m) = completion.get("openrouter_metadata") {
        out["openrouter_metadata"] = m.clone();
    }
    out
}

/// The Anthropic error `type` for an HTTP status.
pub fn error_type(status: u16) -> &'static str {
    match status {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        408 | 504 => "timeout_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

/// Anthropic's error envelope: `{"type": "error", "error": {"type", "message"}, "request_id"}`,
/// `request_id` being the gateway's id for the request (its generation id), `null` when the
/// request failed before it got one.
pub fn error_body(status: u16, message: &str, request_id: Option<&str>) -> Value {
    json!({
        "type": "error",
        "error": {"type": error_type(status), "message": message},
        "request_id": request_id,
    })
}
