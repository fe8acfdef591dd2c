//! Anthropic's Messages API as an *inbound* format: requests sent to the gateway's
//! `/api/v1/messages` become the canonical chat request, and the canonical answer (OpenAI chat
//! completion shape, chunk by chunk when streamed) becomes Anthropic's message and SSE events.
//!
//! This is the mirror of `switchyard_providers::anthropic`, which speaks the same format to an upstream. Here
//! the gateway is the server: whatever provider kind serves the request, the client sees
//! Anthropic's shapes.
//!
//! Native Anthropic fields that the canonical request has no place for (`thinking`,
//! `cache_control` on the system prompt, tools and text blocks) are kept, so that a request
//! routed to an Anthropic endpoint arrives intact.

use serde_json::{json, Map, Value};

/// A request that is not a valid Messages API request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MessagesError(pub String);

fn err<T>(message: impl Into<String>) -> Result<T, MessagesError> {
    Err(MessagesError(message.into()))
}

/// Fields of the Messages request that are translated; anything else passes through as an
/// extra member of the canonical request.
const TRANSLATED: &[&str] = &[
    "model",
    "messages",
    "system",
    "max_tokens",
    "stop_sequences",
    "temperature",
    "top_p",
    "top_k",
    "stream",
    "metadata",
    "tools",
    "tool_choice",
    "thinking",
];

/// Gateway fields accepted beside Anthropic's own.
const GATEWAY: &[&str] = &["provider", "user", "session_id", "route", "usage"];

/// Translates a Messages API request body into a canonical chat request body (OpenAI shape,
/// ready for `ChatRequest::from_value`).
pub fn request_to_chat(body: &Value) -> Result<Value, MessagesError> {
    let Some(obj) = body.as_object() else {
        return err("The request body must be a JSON object");
    };
    let mut out = Map::new();
    match obj.get("model") {
        Some(Value::String(m)) if !m.is_empty() => {
            out.insert("model".into(), json!(m));
        }
        Some(Value::String(_)) | None => {
            if !obj.contains_key("models") {
                return err("model: field required");
            }
        }
        Some(_) => return err("model: must be a string"),
    }
    match obj.get("max_tokens") {
        None => return err("max_tokens: field required"),
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => {
                out.insert("max_tokens".into(), json!(n));
            }
            _ => return err("max_tokens: must be a positive integer"),
        },
    }

    let mut messages: Vec<Value> = Vec::new();
    if let Some(system) = obj.get("system") {
        messages.push(json!({"role": "system", "content": system_content(system)?}));
    }
    let Some(turns) = obj.get("messages").and_then(Value::as_array) else {
        return err("messages: field required and must be an array");
    };
    if turns.is_empty() {
        return err("messages: at least one message is required");
    }
    for (i, turn) in turns.iter().enumerate() {
        translate_turn(i, turn, &mut messages)?;
    }
    out.insert("messages".into(), Value::Array(messages));

    if let Some(stop) = obj.get("stop_sequences") {
        if !stop.is_array() {
            return err("stop_sequences: must be an array of strings");
        }
        out.insert("stop".into(), stop.clone());
    }
    for field in ["temperature", "top_p", "top_k", "stream"] {
        if let Some(v) = obj.get(field) {
            out.insert(field.into(), v.clone());
        }
    }
    if let Some(user) = obj
        .get("metadata")
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
    {
        out.insert("user".into(), json!(user));
    }
    if let Some(tools) = obj.get("tools") {
        let Some(list) = tools.as_array() else {
            return err("tools: must be an array");
        };
        let mut translated = Vec::with_capacity(list.len());
        for (i, tool) in list.iter().enumerate() {
            translated.push(translate_tool(i, tool)?);
        }
        out.insert("tools".into(), Value::Array(translated));
    }
    if let Some(choice) = obj.get("tool_choice") {
        let (choice, parallel) = translate_tool_choice(choice)?;
        if let Some(choice) = choice {
            out.insert("tool_choice".into(), choice);
        }
        if let Some(parallel) = parallel {
            out.insert("parallel_tool_calls".into(), json!(parallel));
        }
    }
    if let Some(thinking) = obj.get("thinking") {
        match thinking.get("type").and_then(Value::as_str) {
            Some("enabled") => {
                let budget = thinking.get("budget_tokens").and_then(Value::as_u64);
                let mut reasoning = Map::new();
                if let Some(b) = budget {
                    reasoning.insert("max_tokens".into(), json!(b));
                } else {
                    reasoning.insert("enabled".into(), json!(true));
                }
                out.insert("reasoning".into(), Value::Object(reasoning));
            }
            Some("disabled") => {
                out.insert("reasoning".into(), json!({"enabled": false}));
            }
            _ => return err("thinking.type: must be \"enabled\" or \"disabled\""),
        }
        // Kept verbatim for Anthropic upstreams.
        out.insert("thinking".into(), thinking.clone());
    }
    for (k, v) in obj {
        if k == "models" || k == "fallbacks" {
            continue;
        }
        if GATEWAY.contains(&k.as_str()) || !TRANSLATED.contains(&k.as_str()) {
            out.insert(k.clone(), v.clone());
        }
    }
    // Model fallbacks: `models`, then `fallbacks` (the name some gateways use).
    let mut models: Vec<Value> = Vec::new();
    for field in ["models", "fallbacks"] {
        match obj.get(field) {
            None => {}
            Some(Value::Array(list)) => models.extend(list.iter().cloned()),
            Some(_) => return err(format!("{field}: must be an array of model ids")),
        }
    }
    if obj.contains_key("models") || obj.contains_key("fallbacks") {
        out.insert("models".into(), Value::Array(models));
    }
    if let (Some(Value::String(model)), Some(Value::Array(models))) =
        (out.get("model").cloned(), out.get_mut("models"))
    {
        // `model` comes first; `models` then lists the fallbacks.
        models.retain(|m| m.as_str() != Some(model.as_str()));
    }
    Ok(Value::Object(out))
}

fn system_content(system: &Value) -> Result<Value, MessagesError> {
    match system {
        Value::String(s) => Ok(json!(s)),
        Value::Array(blocks) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for (i, block) in blocks.iter().enumerate() {
                if block.get("type").and_then(Value::as_str) != Some("text") {
                    return err(format!("system[{i}]: only text blocks are allowed"));
                }
                parts.push(text_part(block, &format!("system[{i}]"))?);
            }
            Ok(Value::Array(parts))
        }
        _ => err("system: must be a string or an array of text blocks"),
    }
}

fn text_part(block: &Value, at: &str) -> Result<Value, MessagesError> {
    let Some(text) = block.get("text").and_then(Value::as_str) else {
        return err(format!("{at}.text: field required"));
    };
    let mut part = json!({"type": "text", "text": text});
    if let Some(cc) = block.get("cache_control") {
        part["cache_control"] = cc.clone();
    }
    Ok(part)
}

fn image_part(block: &Value, at: &str) -> Result<Value, MessagesError> {
    let source = block.get("source");
    let kind = source.and_then(|s| s.get("type")).and_then(Value::as_str);
    let url = match kind {
        Some("base64") => {
            let media = source
                .and_then(|s| s.get("media_type"))
                .and_then(Value::as_str);
            let data = source.and_then(|s| s.get("data")).and_then(Value::as_str);
            match (media, data) {
                (Some(m), Some(d)) => format!("data:{m};base64,{d}"),
                _ => {
                    return err(format!(
                        "{at}.source: base64 sources need media_type and data"
                    ))
                }
            }
        }
        Some("url") => match source.and_then(|s| s.get("url")).and_then(Value::as_str) {
            Some(u) => u.to_owned(),
            None => return err(format!("{at}.source.url: field required")),
        },
        _ => return err(format!("{at}.source.type: must be \"base64\" or \"url\"")),
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

fn document_part(block: &Value, at: &str) -> Result<Value, MessagesError> {
    let source = block.get("source");
    match source.and_then(|s| s.get("type")).and_then(Value::as_str) {
        Some("base64") => {
            let media = source
                .and_then(|s| s.get("media_type"))
                .and_then(Value::as_str)
                .unwrap_or("application/pdf");
            let Some(data) = source.and_then(|s| s.get("data")).and_then(Value::as_str) else {
                return err(format!("{at}.source.data: field required"));
            };
            let name = block
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or("document.pdf");
            Ok(
                json!({"type": "file", "file": {"filename": name, "file_data": format!("data:{media};base64,{data}")}}),
            )
        }
        Some("text") => {
            let Some(data) = source.and_then(|s| s.get("data")).and_then(Value::as_str) else {
                return err(format!("{at}.source.data: field required"));
            };
            Ok(json!({"type": "text", "text": data}))
        }
        _ => err(format!(
            "{at}.source.type: documents must be base64 or text sources"
        )),
    }
}

/// Content of a `tool_result` block: a string, or text (and image) blocks.
fn tool_result_content(block: &Value, at: &str) -> Result<Value, MessagesError> {
    let mut content = match block.get("content") {
        None | Some(Value::Null) => json!(""),
        Some(Value::String(s)) => json!(s),
        Some(Value::Array(blocks)) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for (i, b) in blocks.iter().enumerate() {
                let at = format!("{at}.content[{i}]");
                match b.get("type").and_then(Value::as_str) {
                    Some("text") => parts.push(text_part(b, &at)?),
                    Some("image") => parts.push(image_part(b, &at)?),
                    other => {
                        return err(format!(
                            "{at}.type: {} is not allowed in a tool result",
                            other.unwrap_or("a block without a type")
                        ))
                    }
                }
            }
            Value::Array(parts)
        }
        Some(_) => return err(format!("{at}.content: must be a string or an array")),
    };
    if block.get("is_error").and_then(Value::as_bool) == Some(true) {
        // The canonical tool message has no error flag: say it in the content.
        content = match content {
            Value::String(s) => json!(format!("Error: {s}")),
            Value::Array(mut parts) => {
                parts.insert(0, json!({"type": "text", "text": "Error:"}));
                Value::Array(parts)
            }
            other => other,
        };
    }
    Ok(content)
}

fn translate_turn(i: usize, turn: &Value, out: &mut Vec<Value>) -> Result<(), MessagesError> {
    let at = format!("messages[{i}]");
    let role = match turn.get("role").and_then(Value::as_str) {
        Some(r @ ("user" | "assistant")) => r,
        Some(other) => {
            return err(format!(
                "{at}.role: {other:?} is not allowed (user or assistant; put system prompts in `system`)"
            ))
        }
        None => return err(format!("{at}.role: field required")),
    };
    let blocks: Vec<Value> = match turn.get("content") {
        Some(Value::String(s)) => {
            out.push(json!({"role": role, "content": s}));
            return Ok(());
        }
        Some(Value::Array(blocks)) => blocks.clone(),
        Some(_) => return err(format!("{at}.content: must be a string or an array")),
        None => return err(format!("{at}.content: field required")),
    };
    let mut parts: Vec<Value> = Vec::new();
    let mut tool_calls: Vec<Value> = Vec::new();
    let mut reasoning_details: Vec<Value> = Vec::new();
    let mut reasoning_text = String::new();
    for (j, block) in blocks.iter().enumerate() {
        let at = format!("{at}.content[{j}]");
        let kind = block.get("type").and_then(Value::as_str).unwrap_or("");
        match (role, kind) {
            (_, "text") => parts.push(text_part(block, &at)?),
            ("user", "image") => parts.push(image_part(block, &at)?),
            ("user", "document") => parts.push(document_part(block, &at)?),
            ("user", "tool_result") => {
                let Some(id) = block.get("tool_use_id").and_then(Value::as_str) else {
                    return err(format!("{at}.tool_use_id: field required"));
                };
                // Tool results answer the previous assistant turn: they come before the rest.
                out.push(json!({
                    "role": "tool",
                    "tool_call_id": id,
                    "content": tool_result_content(block, &at)?,
                }));
            }
            ("assistant", "tool_use") => {
                let (Some(id), Some(name)) = (
                    block.get("id").and_then(Value::as_str),
                    block.get("name").and_then(Value::as_str),
                ) else {
                    return err(format!("{at}: tool_use blocks need id and name"));
                };
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                tool_calls.push(json!({
                    "id": id,
                    "type": "function",
                    "function": {"name": name, "arguments": input.to_string()},
                }));
            }
            ("assistant", "thinking") => {
                let text = block.get("thinking").and_then(Value::as_str).unwrap_or("");
                reasoning_text.push_str(text);
                let mut detail = json!({
                    "type": "reasoning.text",
                    "text": text,
                    "format": "anthropic-claude-v1",
                    "index": reasoning_details.len(),
                });
                if let Some(sig) = block.get("signature") {
                    detail["signature"] = sig.clone();
                }
                reasoning_details.push(detail);
            }
            ("assistant", "redacted_thinking") => {
                reasoning_details.push(json!({
                    "type": "reasoning.encrypted",
                    "data": block.get("data").cloned().unwrap_or(Value::Null),
                    "format": "anthropic-claude-v1",
                    "index": reasoning_details.len(),
                }));
            }
            (_, "") => return err(format!("{at}.type: field required")),
            (_, other) => {
                return err(format!(
                    "{at}.type: {other:?} blocks are not accepted in {role} messages"
                ))
            }
        }
    }
    if role == "user" {
        if !parts.is_empty() {
            out.push(json!({"role": "user", "content": parts}));
        }
        return Ok(());
    }
    let mut message = json!({"role": "assistant"});
    if !parts.is_empty() {
        message["content"] = Value::Array(parts);
    }
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    if !reasoning_details.is_empty() {
        message["reasoning"] = json!(reasoning_text);
        message["reasoning_details"] = Value::Array(reasoning_details);
    }
    if message.get("content").is_none() && message.get("tool_calls").is_none() {
        message["content"] = json!("");
    }
    out.push(message);
    Ok(())
}

fn translate_tool(i: usize, tool: &Value) -> Result<Value, MessagesError> {
    let at = format!("tools[{i}]");
    let Some(name) = tool.get("name").and_then(Value::as_str) else {
        return err(format!("{at}.name: field required"));
    };
    if let Some(kind) = tool.get("type").and_then(Value::as_str) {
        if kind != "custom" {
            return err(format!(
                "{at}.type: server tool {kind:?} is not supported; declare client tools with name, description and input_schema"
            ));
        }
    }
    let mut function = json!({"name": name});
    if let Some(d) = tool.get("description") {
        function["description"] = d.clone();
    }
    function["parameters"] = tool
        .get("input_schema")
        .cloned()
        .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    let mut out = json!({"type": "function", "function": function});
    if let Some(cc) = tool.get("cache_control") {
        out["cache_control"] = cc.clone();
    }
    Ok(out)
}

/// `(tool_choice, parallel_tool_calls)`.
fn translate_tool_choice(choice: &Value) -> Result<(Option<Value>, Option<bool>), MessagesError> {
    let parallel = choice
        .get("disable_parallel_tool_use")
        .and_then(Value::as_bool)
        .map(|d| !d);
    let choice = match choice.get("type").and_then(Value::as_str) {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => match choice.get("name").and_then(Value::as_str) {
            Some(name) => json!({"type": "function", "function": {"name": name}}),
            None => return err("tool_choice.name: field required when type is \"tool\""),
        },
        _ => return err("tool_choice.type: must be auto, any, tool or none"),
    };
    Ok((Some(choice), parallel))
}

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

/// Anthropic usage from the canonical usage object (`prompt_tokens` includes cached and
/// cache-written tokens; Anthropic's `input_tokens` does not).
pub fn usage_to_anthropic(usage: &Value) -> Value {
    let n = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    let prompt = n(usage.get("prompt_tokens"));
    let details = usage.get("prompt_tokens_details");
    let cached = n(details.and_then(|d| d.get("cached_tokens")));
    let written = n(details.and_then(|d| d.get("cache_write_tokens")));
    let mut out = json!({
        "input_tokens": prompt.saturating_sub(cached).saturating_sub(written),
        "output_tokens": n(usage.get("completion_tokens")),
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": written,
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
            content.push(json!({"type": "text", "text": s}));
        }
        Some(Value::Array(parts)) => {
            for p in parts {
                if let Some(t) = p.get("text").and_then(Value::as_str) {
                    content.push(json!({"type": "text", "text": t}));
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
            "name": function.and_then(|f| f.get("name")).cloned().unwrap_or(Value::Null),
            "input": parse_arguments(function.and_then(|f| f.get("arguments"))),
        }));
    }
    let finish = choice.get("finish_reason").and_then(Value::as_str);
    let native = choice.get("native_finish_reason").and_then(Value::as_str);
    let mut out = json!({
        "id": completion.get("id").cloned().unwrap_or(Value::Null),
        "type": "message",
        "role": "assistant",
        "model": completion.get("model").cloned().unwrap_or(Value::Null),
        "content": content,
        "stop_reason": stop_reason(finish, native),
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

/// Anthropic's error envelope.
pub fn error_body(status: u16, message: &str) -> Value {
    json!({"type": "error", "error": {"type": error_type(status), "message": message}})
}

/// One server-sent event: `(event name, data)`.
pub type Event = (&'static str, Value);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Thinking,
    Text,
    Tool(u64),
}

/// Turns the canonical chunk stream into Anthropic's event stream.
///
/// Call [`StreamTranscoder::start`] once, [`StreamTranscoder::chunk`] for each chunk, and
/// [`StreamTranscoder::finish`] with the final usage (or [`StreamTranscoder::error`]).
#[derive(Debug)]
pub struct StreamTranscoder {
    id: String,
    model: String,
    open: Option<Block>,
    index: usize,
    finish_reason: Option<String>,
    native_finish_reason: Option<String>,
}

impl StreamTranscoder {
    /// A transcoder for one message.
    pub fn new(id: &str, model: &str) -> Self {
        StreamTranscoder {
            id: id.to_owned(),
            model: model.to_owned(),
            open: None,
            index: 0,
            finish_reason: None,
            native_finish_reason: None,
        }
    }

    /// `message_start`.
    pub fn start(&self) -> Event {
        (
            "message_start",
            json!({"type": "message_start", "message": {
                "id": self.id,
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [],
                "stop_reason": Value::Null,
                "stop_sequence": Value::Null,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }}),
        )
    }

    fn switch_to(&mut self, block: Block, start: Value, out: &mut Vec<Event>) {
        if self.open == Some(block) {
            return;
        }
        self.close(out);
        out.push((
            "content_block_start",
            json!({"type": "content_block_start", "index": self.index, "content_block": start}),
        ));
        self.open = Some(block);
    }

    fn close(&mut self, out: &mut Vec<Event>) {
        if self.open.take().is_some() {
            out.push((
                "content_block_stop",
                json!({"type": "content_block_stop", "index": self.index}),
            ));
            self.index += 1;
        }
    }

    fn delta(&self, delta: Value) -> Event {
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": self.index, "delta": delta}),
        )
    }

    /// Events for one canonical chunk (`{choices: [{delta, finish_reason}]}`).
    pub fn chunk(&mut self, chunk: &Value) -> Vec<Event> {
        let mut out = Vec::new();
        let Some(choice) = chunk.get("choices").and_then(|c| c.get(0)) else {
            return out;
        };
        let delta = choice.get("delta").cloned().unwrap_or(Value::Null);
        let details = delta.get("reasoning_details").and_then(Value::as_array);
        let reasoning = delta.get("reasoning").and_then(Value::as_str);
        if reasoning.is_some_and(|r| !r.is_empty()) || details.is_some_and(|d| !d.is_empty()) {
            self.switch_to(
                Block::Thinking,
                json!({"type": "thinking", "thinking": "", "signature": ""}),
                &mut out,
            );
            if let Some(r) = reasoning.filter(|r| !r.is_empty()) {
                out.push(self.delta(json!({"type": "thinking_delta", "thinking": r})));
            } else if let Some(text) = details
                .into_iter()
                .flatten()
                .filter_map(|d| d.get("text").and_then(Value::as_str))
                .find(|t| !t.is_empty())
            {
                out.push(self.delta(json!({"type": "thinking_delta", "thinking": text})));
            }
            for sig in details
                .into_iter()
                .flatten()
                .filter_map(|d| d.get("signature").and_then(Value::as_str))
                .filter(|s| !s.is_empty())
            {
                out.push(self.delta(json!({"type": "signature_delta", "signature": sig})));
            }
        }
        if let Some(text) = delta.get("content").and_then(Value::as_str) {
            if !text.is_empty() {
                self.switch_to(Block::Text, json!({"type": "text", "text": ""}), &mut out);
                out.push(self.delta(json!({"type": "text_delta", "text": text})));
            }
        }
        for call in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
            let function = call.get("function");
            if self.open != Some(Block::Tool(index)) {
                let id = call
                    .get("id")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("toolu_{}_{index}", self.id), str::to_owned);
                let name = function
                    .and_then(|f| f.get("name"))
                    .cloned()
                    .unwrap_or(json!(""));
                self.switch_to(
                    Block::Tool(index),
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                    &mut out,
                );
            }
            if let Some(args) = function
                .and_then(|f| f.get("arguments"))
                .and_then(Value::as_str)
            {
                if !args.is_empty() {
                    out.push(self.delta(json!({"type": "input_json_delta", "partial_json": args})));
                }
            }
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_owned());
            self.native_finish_reason = choice
                .get("native_finish_reason")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        out
    }

    /// The closing events, with the final canonical usage object.
    pub fn finish(&mut self, usage: &Value) -> Vec<Event> {
        let mut out = Vec::new();
        self.close(&mut out);
        out.push((
            "message_delta",
            json!({
                "type": "message_delta",
                "delta": {
                    "stop_reason": stop_reason(self.finish_reason.as_deref(), self.native_finish_reason.as_deref()),
                    "stop_sequence": Value::Null,
                },
                "usage": usage_to_anthropic(usage),
            }),
        ));
        out.push(("message_stop", json!({"type": "message_stop"})));
        out
    }

    /// An error after the stream started.
    pub fn error(&mut self, status: u16, message: &str) -> Vec<Event> {
        vec![("error", error_body(status, message))]
    }
}

/// Frames one event as SSE bytes.
pub fn frame(event: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.0.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    if serde_json::to_writer(&mut out, &event.1).is_err() {
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate(body: Value) -> Value {
        request_to_chat(&body).expect("valid")
    }

    #[test]
    fn plain_request() {
        let out = translate(json!({
            "model": "anthropic/claude-sonnet-4",
            "max_tokens": 100,
            "system": "Be brief.",
            "messages": [{"role": "user", "content": "Hi"}],
            "stop_sequences": ["END"],
            "temperature": 0.5,
            "top_k": 5,
            "metadata": {"user_id": "u-1"},
            "stream": true,
        }));
        assert_eq!(
            out,
            json!({
                "model": "anthropic/claude-sonnet-4",
                "max_tokens": 100,
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Hi"},
                ],
                "stop": ["END"],
                "temperature": 0.5,
                "top_k": 5,
                "stream": true,
                "user": "u-1",
            })
        );
    }

    #[test]
    fn blocks_tools_and_thinking() {
        let out = translate(json!({
            "model": "m/x",
            "max_tokens": 2048,
            "system": [{"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}}],
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "tools": [{"name": "get", "description": "d", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}},
                    {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                ]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "text", "text": "calling"},
                    {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {"a": 1}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"},
                    {"type": "text", "text": "thanks"},
                ]},
            ],
        }));
        let messages = out["messages"].as_array().expect("messages");
        assert_eq!(
            messages[0]["content"][0]["cache_control"],
            json!({"type": "ephemeral"})
        );
        assert_eq!(
            messages[1]["content"][1]["image_url"]["url"],
            "data:image/png;base64,AAA"
        );
        assert_eq!(
            messages[1]["content"][2]["image_url"]["url"],
            "https://x/y.png"
        );
        assert_eq!(
            messages[2]["tool_calls"][0]["function"]["arguments"],
            "{\"a\":1}"
        );
        assert_eq!(messages[2]["reasoning_details"][0]["signature"], "sig");
        assert_eq!(
            messages[3],
            json!({"role": "tool", "tool_call_id": "toolu_1", "content": "42"})
        );
        assert_eq!(messages[4]["content"][0]["text"], "thanks");
        assert_eq!(out["tool_choice"], "required");
        assert_eq!(out["parallel_tool_calls"], false);
        assert_eq!(out["reasoning"], json!({"max_tokens": 1024}));
        assert_eq!(out["thinking"]["budget_tokens"], 1024);
        assert_eq!(
            out["tools"][0]["function"]["parameters"],
            json!({"type": "object"})
        );
        assert_eq!(
            out["tools"][0]["cache_control"],
            json!({"type": "ephemeral"})
        );
    }

    #[test]
    fn invalid_requests_name_the_problem() {
        let cases = [
            (json!([]), "JSON object"),
            (json!({"max_tokens": 1, "messages": []}), "model"),
            (json!({"model": "m/x", "messages": []}), "max_tokens"),
            (
                json!({"model": "m/x", "max_tokens": 0, "messages": []}),
                "max_tokens",
            ),
            (
                json!({"model": "m/x", "max_tokens": 1, "messages": []}),
                "at least one",
            ),
            (json!({"model": "m/x", "max_tokens": 1}), "messages"),
            (
                json!({"model": "m/x", "max_tokens": 1, "messages": [{"role": "system", "content": "x"}]}),
                "messages[0].role",
            ),
            (
                json!({"model": "m/x", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "tool_use"}]}]}),
                "messages[0].content[0].type",
            ),
            (
                json!({"model": "m/x", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file"}}]}]}),
                "source.type",
            ),
            (
                json!({"model": "m/x", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}], "tool_choice": {"type": "tool"}}),
                "tool_choice.name",
            ),
            (
                json!({"model": "m/x", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}], "thinking": {"type": "maybe"}}),
                "thinking.type",
            ),
        ];
        for (body, needle) in cases {
            let e = request_to_chat(&body).expect_err("invalid");
            assert!(e.0.contains(needle), "{needle:?} not in {:?}", e.0);
        }
    }

    #[test]
    fn fallbacks_extend_models() {
        let out = translate(json!({
            "model": "a/x", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}],
            "models": ["a/x", "b/y"], "fallbacks": ["c/z"], "provider": {"only": ["p"]},
        }));
        assert_eq!(out["models"], json!(["b/y", "c/z"]));
        assert_eq!(out["provider"], json!({"only": ["p"]}));
    }

    #[test]
    fn response_translation() {
        let completion = json!({
            "id": "gen-1", "model": "m/x", "provider": "P",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "native_finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "ok", "reasoning": "r",
                "reasoning_details": [{"type": "reasoning.text", "text": "r", "signature": "s"}],
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"x\":2}"}}],
            }}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "cost": 0.001,
                      "prompt_tokens_details": {"cached_tokens": 3, "cache_write_tokens": 2}},
        });
        let out = response_from_chat(&completion);
        assert_eq!(
            out,
            json!({
                "id": "gen-1", "type": "message", "role": "assistant", "model": "m/x",
                "content": [
                    {"type": "thinking", "thinking": "r", "signature": "s"},
                    {"type": "text", "text": "ok"},
                    {"type": "tool_use", "id": "c1", "name": "f", "input": {"x": 2}},
                ],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 5, "output_tokens": 5, "cache_read_input_tokens": 3,
                          "cache_creation_input_tokens": 2, "cost": 0.001},
                "provider": "P",
            })
        );
    }

    #[test]
    fn stop_reasons() {
        let cases = [
            (Some("stop"), None, "end_turn"),
            (Some("stop"), Some("stop_sequence"), "stop_sequence"),
            (Some("length"), Some("MAX_TOKENS"), "max_tokens"),
            (Some("tool_calls"), None, "tool_use"),
            (Some("content_filter"), Some("SAFETY"), "refusal"),
            (None, None, "end_turn"),
        ];
        for (finish, native, want) in cases {
            assert_eq!(stop_reason(finish, native), want, "{finish:?} {native:?}");
        }
    }

    #[test]
    fn stream_transcoding() {
        let mut t = StreamTranscoder::new("gen-1", "m/x");
        let mut events = vec![t.start()];
        for chunk in [
            json!({"choices": [{"delta": {"reasoning": "think"}}]}),
            json!({"choices": [{"delta": {"reasoning_details": [{"type": "reasoning.text", "text": "", "signature": "sig"}]}}]}),
            json!({"choices": [{"delta": {"content": "Hel"}}]}),
            json!({"choices": [{"delta": {"content": "lo"}}]}),
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": ""}}]}}]}),
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":"}}]}}]}),
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}}]}),
            json!({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]}),
        ] {
            events.extend(t.chunk(&chunk));
        }
        events.extend(t.finish(&json!({"prompt_tokens": 4, "completion_tokens": 9, "cost": 0.5})));
        let names: Vec<&str> = events.iter().map(|e| e.0).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ]
        );
        assert_eq!(
            events[3].1["delta"],
            json!({"type": "signature_delta", "signature": "sig"})
        );
        assert_eq!(events[5].1["index"], 1);
        assert_eq!(events[9].1["content_block"]["type"], "tool_use");
        assert_eq!(events[9].1["index"], 2);
        assert_eq!(events[11].1["delta"]["partial_json"], "1}");
        assert_eq!(events[13].1["delta"]["stop_reason"], "tool_use");
        assert_eq!(events[13].1["usage"]["output_tokens"], 9);
        assert_eq!(
            String::from_utf8(frame(&events[14])).expect("utf8"),
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
        );
    }
}
