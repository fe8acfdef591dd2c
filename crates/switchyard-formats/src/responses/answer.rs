//! The canonical answer as a Responses `response` object: output items, usage, the echoed
//! request parameters, and the error envelope; the item builders are shared with the stream.

use serde_json::{json, Map, Value};
use switchyard_core::error::error_type_for_status;

use super::tools::{self, Declared, ToolKinds};
use super::types::Sealer;

/// What the chat completion does not carry and the `response` object needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseContext {
    /// The response id: the generation id, so that `/generation?id=` finds it.
    pub id: String,
    /// When the request was accepted, in Unix seconds.
    pub created_at: u64,
    /// When the answer ended, in Unix seconds (`None` while in progress).
    pub completed_at: Option<u64>,
    /// The client's Responses request body, whose parameters the response echoes.
    pub request: Value,
}

/// `reasoning`, `message` and `function_call` item id prefixes, with the response id and the
/// item's output index: unique within the response and stable for the same input.
pub(super) fn item_id(prefix: &str, ctx: &ResponseContext, index: usize) -> String {
    format!("{prefix}_{}_{index}", ctx.id)
}

/// The request's `tools` as the response echoes them: function tools in the schema's shape,
/// custom and namespace tools as declared.
fn echo_tools(request: &Value) -> Value {
    let tools = request
        .get("tools")
        .and_then(Value::as_array)
        .map(|list| list.iter().map(echo_tool).collect())
        .unwrap_or_default();
    Value::Array(tools)
}

fn echo_tool(t: &Value) -> Value {
    if t.get("type").and_then(Value::as_str) != Some("function") {
        let mut tool = without_nulls(t);
        if let Some(members) = tool.get_mut("tools").and_then(Value::as_array_mut) {
            for member in members {
                *member = without_nulls(member);
            }
        }
        return tool;
    }
    let mut tool = json!({
        "type": "function",
        "name": t.get("name").cloned().unwrap_or(Value::Null),
        "parameters": t.get("parameters").cloned().unwrap_or(Value::Null),
        "strict": t.get("strict").cloned().unwrap_or(Value::Null),
    });
    if let Some(d) = t.get("description").filter(|d| d.is_string()) {
        tool["description"] = d.clone();
    }
    tool
}

/// An object without its null members (null is the same as absent in a request, but not every
/// schema of the answer allows it).
fn without_nulls(value: &Value) -> Value {
    match value.as_object() {
        Some(obj) => Value::Object(
            obj.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        None => value.clone(),
    }
}

fn echo_reasoning(request: &Value) -> Value {
    let Some(r) = request.get("reasoning").and_then(Value::as_object) else {
        return Value::Null;
    };
    let mut out = Map::new();
    for key in ["effort", "summary"] {
        out.insert(key.into(), r.get(key).cloned().unwrap_or(Value::Null));
    }
    if let Some(context) = r.get("context").filter(|c| c.is_string()) {
        out.insert("context".into(), context.clone());
    }
    Value::Object(out)
}

fn echo_text(request: &Value) -> Value {
    let text = request.get("text");
    let format = text
        .and_then(|t| t.get("format"))
        .filter(|f| f.is_object())
        .cloned()
        .unwrap_or_else(|| json!({"type": "text"}));
    let mut out = json!({"format": format});
    if let Some(v) = text
        .and_then(|t| t.get("verbosity"))
        .filter(|v| v.is_string())
    {
        out["verbosity"] = v.clone();
    }
    out
}

/// The `response` object around `output`, echoing the request's parameters.
pub(super) fn response_object(
    ctx: &ResponseContext,
    model: &str,
    status: &str,
    output: Vec<Value>,
    usage: Option<Value>,
    completed_at: Option<u64>,
) -> Value {
    let req = &ctx.request;
    let get = |k: &str| req.get(k).cloned().unwrap_or(Value::Null);
    let mut out = json!({
        "id": ctx.id,
        "object": "response",
        "created_at": ctx.created_at,
        "completed_at": completed_at,
        "status": status,
        "error": Value::Null,
        "incomplete_details": Value::Null,
        "model": model,
        "output": output,
        "instructions": get("instructions"),
        "metadata": get("metadata"),
        "temperature": get("temperature"),
        "top_p": get("top_p"),
        "presence_penalty": get("presence_penalty"),
        "frequency_penalty": get("frequency_penalty"),
        "max_output_tokens": get("max_output_tokens"),
        "tools": echo_tools(req),
        "tool_choice": req.get("tool_choice").filter(|c| !c.is_null()).cloned().unwrap_or_else(|| json!("auto")),
        "parallel_tool_calls": req.get("parallel_tool_calls").and_then(Value::as_bool).unwrap_or(true),
        "reasoning": echo_reasoning(req),
        "text": echo_text(req),
        "truncation": "disabled",
        "store": false,
        "background": false,
        "previous_response_id": Value::Null,
    });
    if let Some(usage) = usage {
        // Absent, not null, until it is known: the schema has no null usage.
        out["usage"] = usage;
    }
    for key in ["user", "safety_identifier", "prompt_cache_key"] {
        if let Some(v) = req.get(key).filter(|v| v.is_string()) {
            out[key] = v.clone();
        }
    }
    out
}

/// Responses usage from the canonical chat usage (`prompt_tokens` already counts cached tokens,
/// as `input_tokens` does). OpenRouter's `cost` and `is_byok` are kept.
pub fn usage_from_chat(usage: &Value) -> Value {
    let n = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    let input = n(usage.get("prompt_tokens"));
    let output = n(usage.get("completion_tokens"));
    let prompt_details = usage.get("prompt_tokens_details");
    let mut input_details =
        json!({"cached_tokens": n(prompt_details.and_then(|d| d.get("cached_tokens")))});
    if let Some(w) = prompt_details
        .and_then(|d| d.get("cache_write_tokens"))
        .filter(|w| w.is_u64())
    {
        input_details["cache_write_tokens"] = w.clone();
    }
    let mut out = json!({
        "input_tokens": input,
        "input_tokens_details": input_details,
        "output_tokens": output,
        "output_tokens_details": {
            "reasoning_tokens": n(usage.get("completion_tokens_details").and_then(|d| d.get("reasoning_tokens"))),
        },
        "total_tokens": usage.get("total_tokens").and_then(Value::as_u64).unwrap_or(input + output),
    });
    if let Some(cost) = usage.get("cost").filter(|c| c.is_number()) {
        out["cost"] = cost.clone();
    }
    if let Some(byok) = usage.get("is_byok").filter(|b| b.is_boolean()) {
        out["is_byok"] = byok.clone();
    }
    if let Some(details) = usage.get("cost_details") {
        let (prompt, completion) = (
            details.get("upstream_inference_prompt_cost"),
            details.get("upstream_inference_completions_cost"),
        );
        if let (Some(p), Some(c)) = (
            prompt.filter(|v| v.is_number()),
            completion.filter(|v| v.is_number()),
        ) {
            out["cost_details"] = json!({
                "upstream_inference_cost": details.get("upstream_inference_cost").cloned().unwrap_or(Value::Null),
                "upstream_inference_input_cost": p,
                "upstream_inference_output_cost": c,
            });
        }
    }
    out
}

/// How a finish reason ends the response: `(status, incomplete_details)`.
pub(super) fn outcome(finish_reason: Option<&str>) -> (&'static str, Value) {
    match finish_reason {
        Some("length") => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some("content_filter") => ("incomplete", json!({"reason": "content_filter"})),
        _ => ("completed", Value::Null),
    }
}

/// The `code` of a response's `error` for an HTTP status (the schema's vocabulary).
pub(super) fn error_code(status: u16) -> &'static str {
    match status {
        429 => "rate_limit_exceeded",
        400 | 413 | 422 => "invalid_prompt",
        _ => "server_error",
    }
}

/// Whether a reasoning detail carries anything (text, summary, signature or data).
pub(super) fn meaningful(detail: &Value) -> bool {
    ["text", "summary", "signature", "data"].iter().any(|k| {
        detail
            .get(*k)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    })
}

/// The readable text of reasoning details (text, else summary), concatenated.
fn details_text(details: &[Value]) -> String {
    details
        .iter()
        .filter_map(|d| {
            d.get("text")
                .or_else(|| d.get("summary"))
                .and_then(Value::as_str)
        })
        .collect()
}

pub(super) fn reasoning_output(
    id: String,
    text: &str,
    details: &[Value],
    sealer: &dyn Sealer,
) -> Value {
    let summary = if text.is_empty() {
        json!([])
    } else {
        json!([{"type": "summary_text", "text": text}])
    };
    let mut item = json!({"type": "reasoning", "id": id, "summary": summary});
    if !details.is_empty() {
        // Serializing a vector of JSON values cannot fail.
        let plain = serde_json::to_vec(details).unwrap_or_default();
        item["encrypted_content"] = json!(sealer.seal(&plain));
    }
    item
}

/// The item id prefix of a tool call: `ctc` for a custom tool's, `fc` for a function's.
pub(super) fn call_prefix(tool: Option<&Declared>) -> &'static str {
    if tool.is_some_and(|t| t.custom) {
        "ctc"
    } else {
        "fc"
    }
}

/// A chat tool call, as [`call_item`] renders it.
pub(super) struct CallItem<'a> {
    pub(super) id: &'a str,
    pub(super) call_id: &'a str,
    /// The name the chat model called.
    pub(super) name: &'a str,
    /// What the client declared that name as, when it is known.
    pub(super) tool: Option<&'a Declared>,
    /// The chat call's JSON arguments.
    pub(super) arguments: &'a str,
    pub(super) status: &'a str,
}

/// The output item of a tool call: a `custom_tool_call` (with the `input` argument as its input)
/// for a custom tool, else a `function_call`; a namespace member's call carries its namespace and
/// its own name.
pub(super) fn call_item(call: CallItem<'_>) -> Value {
    let name = call.tool.map_or(call.name, |t| t.name.as_str());
    let mut item = if call.tool.is_some_and(|t| t.custom) {
        json!({"type": "custom_tool_call", "id": call.id, "call_id": call.call_id, "name": name,
               "input": tools::custom_input(call.arguments), "status": call.status})
    } else {
        json!({"type": "function_call", "id": call.id, "call_id": call.call_id, "name": name,
               "arguments": call.arguments, "status": call.status})
    };
    if let Some(namespace) = call.tool.and_then(|t| t.namespace.as_deref()) {
        item["namespace"] = json!(namespace);
    }
    item
}

pub(super) fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": []})
}

/// Translates a canonical chat completion (the gateway's own response body) into a Responses
/// `response` object. Reasoning details are sealed with `sealer` into `encrypted_content`.
pub fn response_from_chat(completion: &Value, ctx: &ResponseContext, sealer: &dyn Sealer) -> Value {
    let choice = completion
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| {
            c.iter()
                .find(|c| c.get("index").and_then(Value::as_u64) == Some(0))
                .or_else(|| c.first())
        })
        .cloned()
        .unwrap_or(Value::Null);
    let message = choice.get("message").cloned().unwrap_or(Value::Null);
    let finish = choice.get("finish_reason").and_then(Value::as_str);
    let (mut status, incomplete) = outcome(finish);
    let failure =
        (finish == Some("error")).then(|| choice.get("error").cloned().unwrap_or(Value::Null));
    if failure.is_some() {
        status = "failed";
    }

    let mut output: Vec<Value> = Vec::new();
    let details: Vec<Value> = message
        .get("reasoning_details")
        .and_then(Value::as_array)
        .map(|d| d.iter().filter(|d| meaningful(d)).cloned().collect())
        .unwrap_or_default();
    let reasoning = message
        .get("reasoning")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
        .map_or_else(|| details_text(&details), str::to_owned);
    if !reasoning.is_empty() || !details.is_empty() {
        let id = item_id("rs", ctx, output.len());
        output.push(reasoning_output(id, &reasoning, &details, sealer));
    }
    let mut parts: Vec<Value> = Vec::new();
    match message.get("content") {
        Some(Value::String(s)) if !s.is_empty() => parts.push(text_part(s)),
        Some(Value::Array(list)) => {
            let text: String = list
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect();
            if !text.is_empty() {
                parts.push(text_part(&text));
            }
        }
        _ => {}
    }
    if let Some(refusal) = message
        .get("refusal")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
    {
        parts.push(json!({"type": "refusal", "refusal": refusal}));
    }
    if !parts.is_empty() {
        let id = item_id("msg", ctx, output.len());
        output.push(json!({"type": "message", "id": id, "status": "completed", "role": "assistant", "content": parts}));
    }
    let kinds = ToolKinds::of(&ctx.request);
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let function = call.get("function");
        let name = function
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let tool = kinds.get(name);
        let id = item_id(call_prefix(tool), ctx, output.len());
        let call_id = call.get("id").and_then(Value::as_str).unwrap_or_default();
        let arguments = function
            .and_then(|f| f.get("arguments"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        output.push(call_item(CallItem {
            id: &id,
            call_id,
            name,
            tool,
            arguments,
            status: "completed",
        }));
    }
    if status != "completed" {
        // The answer stopped inside its last item.
        if let Some(last) = output
            .last_mut()
            .filter(|i| i.get("type").and_then(Value::as_str) != Some("reasoning"))
        {
            last["status"] = json!("incomplete");
        }
    }

    let model = completion
        .get("model")
        .and_then(Value::as_str)
        .or_else(|| ctx.request.get("model").and_then(Value::as_str))
        .unwrap_or_default();
    let usage = usage_from_chat(completion.get("usage").unwrap_or(&Value::Null));
    let mut out = response_object(ctx, model, status, output, Some(usage), ctx.completed_at);
    out["incomplete_details"] = incomplete;
    if let Some(error) = failure {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("The provider failed while answering");
        let status = error
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(502);
        out["error"] = json!({"code": error_code(status), "message": message});
        out["error_type"] = json!(error_type_for_status(status));
    }
    if let Some(tier) = completion
        .get("service_tier")
        .and_then(Value::as_str)
        .filter(|t| matches!(*t, "auto" | "default" | "flex" | "priority" | "scale"))
    {
        out["service_tier"] = json!(tier);
    }
    if let Some(m) = completion.get("openrouter_metadata") {
        out["openrouter_metadata"] = m.clone();
    }
    out
}

/// The error envelope for a Responses client: OpenRouter's `{"error": {"code", "message",
/// "metadata": {"error_type"}}}` with the HTTP status as `code`, plus OpenAI's `type` and
/// `param` members, which the OpenAI SDKs read.
pub fn error_body(status: u16, message: &str) -> Value {
    let kind = match status {
        400 | 404 | 409 | 413 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "insufficient_quota",
        403 => "permission_error",
        429 => "rate_limit_error",
        _ => "server_error",
    };
    json!({"error": {
        "code": status,
        "message": message,
        "type": kind,
        "param": Value::Null,
        "metadata": {"error_type": error_type_for_status(status)},
    }})
}
