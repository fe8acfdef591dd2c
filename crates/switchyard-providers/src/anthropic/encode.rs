//! The Messages request: Anthropic's turns, system blocks, thinking, tools and output format,
//! and the headers (version, betas, key) every request carries.

use serde_json::{json, Map, Value};
use switchyard_core::chat::{ChatRequest, Content, ContentPart, Message};

use super::decode::REASONING_FORMAT;
use crate::{parse_data_url, CodecError, Target, UpstreamRequest};

/// The `anthropic-version` header sent with every request.
pub const API_VERSION: &str = "2023-06-01";

/// Default `max_tokens` when neither the request nor the endpoint gives one.
const DEFAULT_MAX_TOKENS: u64 = 4096;

/// The catalogue's name (in an endpoint's `supported_parameters`) for endpoints whose model
/// takes system messages inside `messages` (Claude Opus 4.8 and later on Anthropic's own API).
pub const MID_CONVERSATION_SYSTEM: &str = "mid_conversation_system_messages";

/// The `anthropic-beta` flag that `context_management` needs.
pub const CONTEXT_MANAGEMENT_BETA: &str = "context-management-2025-06-27";

/// The `anthropic-beta` flag that `output_config.task_budget` needs.
pub const TASK_BUDGETS_BETA: &str = "task-budgets-2026-03-13";

/// The `anthropic-beta` flag that `thinking.display: "updates"` needs.
pub const THINKING_DISPLAY_UPDATES_BETA: &str = "thinking-display-updates-2026-08-18";

fn codec_error(message: impl Into<String>) -> CodecError {
    CodecError(message.into())
}

fn text_block(text: &str, cache_control: Option<&Value>) -> Value {
    let mut block = json!({"type": "text", "text": text});
    if let Some(cc) = cache_control {
        block["cache_control"] = cc.clone();
    }
    block
}

fn image_block(url: &str) -> Value {
    match parse_data_url(url) {
        Some((media, data)) => {
            json!({"type": "image", "source": {"type": "base64", "media_type": media, "data": data}})
        }
        None => json!({"type": "image", "source": {"type": "url", "url": url}}),
    }
}

fn part_blocks(content: &Content, out: &mut Vec<Value>) -> Result<(), CodecError> {
    match content {
        Content::Text(text) => {
            if !text.is_empty() {
                out.push(text_block(text, None));
            }
        }
        Content::Parts(parts) => {
            for part in parts {
                match part {
                    ContentPart::Text {
                        text,
                        cache_control,
                    } => {
                        if !text.is_empty() || cache_control.is_some() {
                            out.push(text_block(text, cache_control.as_ref()));
                        }
                    }
                    ContentPart::ImageUrl { image_url } => out.push(image_block(&image_url.url)),
                    ContentPart::File { file } => {
                        let data = file
                            .get("file_data")
                            .and_then(Value::as_str)
                            .and_then(parse_data_url);
                        match data {
                            Some((media, data)) if media == "application/pdf" => out.push(json!({
                                "type": "document",
                                "source": {"type": "base64", "media_type": media, "data": data},
                            })),
                            _ => {
                                return Err(codec_error(
                                    "anthropic accepts file parts only as base64 PDF data (file_data: data:application/pdf;base64,...)",
                                ))
                            }
                        }
                    }
                    other => {
                        return Err(codec_error(format!(
                            "anthropic does not accept {} content parts",
                            other.type_name()
                        )))
                    }
                }
            }
        }
    }
    Ok(())
}

fn tool_result_content(content: &Content) -> Result<Value, CodecError> {
    match content {
        Content::Text(text) => Ok(json!(text)),
        Content::Parts(_) => {
            let mut blocks = Vec::new();
            part_blocks(content, &mut blocks)?;
            Ok(Value::Array(blocks))
        }
    }
}

fn is_tool_result(block: &Value) -> bool {
    block.get("type").and_then(Value::as_str) == Some("tool_result")
}

/// Appends blocks to the last turn when it has the same role, else starts a turn. Tool results
/// go after the turn's leading tool results, before its other blocks.
fn push_turn(turns: &mut Vec<Value>, role: &str, blocks: Vec<Value>) {
    if blocks.is_empty() {
        return;
    }
    if let Some(last) = turns.last_mut() {
        if last["role"] == role {
            if let Some(existing) = last["content"].as_array_mut() {
                for block in blocks {
                    if is_tool_result(&block) {
                        let at = existing.iter().take_while(|b| is_tool_result(b)).count();
                        existing.insert(at, block);
                    } else {
                        existing.push(block);
                    }
                }
                return;
            }
        }
    }
    turns.push(json!({"role": role, "content": blocks}));
}

/// Keeps the system turns that stand where Anthropic takes them (right after a user turn, and
/// before an assistant turn or at the end) and moves the others, in order, to the end of the
/// top-level system prompt; the turns around a moved one are merged.
fn place_system_turns(turns: Vec<Value>, system: &mut Vec<Value>) -> Vec<Value> {
    let roles: Vec<String> = turns
        .iter()
        .map(|t| t["role"].as_str().unwrap_or("").to_owned())
        .collect();
    let mut placed: Vec<Value> = Vec::with_capacity(turns.len());
    for (i, mut turn) in turns.into_iter().enumerate() {
        let blocks = match turn["content"].take() {
            Value::Array(blocks) => blocks,
            _ => Vec::new(),
        };
        if roles[i] == "system" {
            // System turns are never next to each other (`push_turn` merged them), so moving
            // one never changes what stands around another.
            let after_user = i > 0 && roles[i - 1] == "user";
            let before_assistant = !matches!(roles.get(i + 1), Some(r) if r != "assistant");
            if !(after_user && before_assistant) {
                system.extend(blocks);
                continue;
            }
        }
        push_turn(&mut placed, &roles[i], blocks);
    }
    placed
}

/// Trims the trailing whitespace of a final assistant turn (a prefill), dropping text blocks
/// left empty; Anthropic refuses a final assistant turn that ends with whitespace.
fn trim_prefill(turns: &mut Vec<Value>) {
    let Some(last) = turns.last_mut() else {
        return;
    };
    if last["role"] != "assistant" {
        return;
    }
    if let Some(blocks) = last["content"].as_array_mut() {
        while let Some(block) = blocks.last_mut() {
            if block.get("type").and_then(Value::as_str) != Some("text") {
                break;
            }
            let text = block
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim_end()
                .to_owned();
            if text.is_empty() && block.get("cache_control").is_none() {
                blocks.pop();
            } else {
                block["text"] = json!(text);
                break;
            }
        }
        if blocks.is_empty() {
            turns.pop();
        }
    }
}

fn assistant_blocks(
    content: Option<&Content>,
    tool_calls: Option<&Vec<switchyard_core::chat::ToolCall>>,
    reasoning_details: Option<&Vec<Value>>,
) -> Result<Vec<Value>, CodecError> {
    let mut blocks = Vec::new();
    for detail in reasoning_details.into_iter().flatten() {
        // Reasoning another provider produced (a Gemini thought signature, OpenAI encrypted
        // reasoning) means nothing to Anthropic, which refuses signatures it did not make.
        // Details without a format are taken as Anthropic's.
        if detail
            .get("format")
            .and_then(Value::as_str)
            .is_some_and(|f| f != REASONING_FORMAT)
        {
            continue;
        }
        match detail.get("type").and_then(Value::as_str) {
            Some("reasoning.text") => {
                // Only signed thinking can be sent back.
                if let Some(signature) = detail.get("signature").and_then(Value::as_str) {
                    blocks.push(json!({
                        "type": "thinking",
                        "thinking": detail.get("text").and_then(Value::as_str).unwrap_or(""),
                        "signature": signature,
                    }));
                }
            }
            Some("reasoning.encrypted") => {
                if let Some(data) = detail.get("data").and_then(Value::as_str) {
                    blocks.push(json!({"type": "redacted_thinking", "data": data}));
                }
            }
            _ => {}
        }
    }
    if let Some(content) = content {
        part_blocks(content, &mut blocks)?;
    }
    for call in tool_calls.into_iter().flatten() {
        let arguments = call.function.arguments.trim();
        let input: Value = if arguments.is_empty() {
            json!({})
        } else {
            serde_json::from_str(arguments).map_err(|e| {
                codec_error(format!(
                    "tool call {} has arguments that are not JSON: {e}",
                    call.id
                ))
            })?
        };
        blocks.push(
            json!({"type": "tool_use", "id": call.id, "name": call.function.name, "input": input}),
        );
    }
    Ok(blocks)
}

fn thinking_budget(request: &ChatRequest, max_tokens: u64) -> Option<u64> {
    let reasoning = request.reasoning.as_ref();
    if reasoning.and_then(|r| r.enabled) == Some(false) {
        return None;
    }
    if let Some(budget) = reasoning.and_then(|r| r.max_tokens) {
        return Some(budget);
    }
    // A native `output_config.effort` is Anthropic's own effort, sent as is; the canonical
    // effort translated from it must not also turn thinking on.
    let native_effort = request
        .extra
        .get("output_config")
        .and_then(|c| c.get("effort"))
        .is_some_and(|e| !e.is_null());
    let effort = reasoning
        .and_then(|r| r.effort.as_deref())
        .or(request.reasoning_effort.as_deref())
        .filter(|_| !native_effort);
    let share = match effort {
        Some("max" | "xhigh") => 0.95,
        Some("high") => 0.8,
        Some("medium") => 0.5,
        Some("low") => 0.2,
        Some("minimal") => 0.1,
        Some(_) => return None,
        None if reasoning.and_then(|r| r.enabled) == Some(true) => 0.5,
        None => return None,
    };
    Some(((max_tokens as f64) * share) as u64)
}

/// Whether the endpoint's catalogue entry lists structured outputs (JSON outputs and strict
/// tools, which only Anthropic's newer models accept).
fn structured(target: &Target<'_>) -> bool {
    let endpoint = target.endpoint;
    endpoint.supports("response_format") || endpoint.supports("structured_outputs")
}

/// `response_format` as Anthropic's `output_config.format`, for endpoints that list support.
fn output_format(request: &ChatRequest, target: &Target<'_>) -> Option<Value> {
    let format = request.response_format.as_ref()?;
    if format.get("type").and_then(Value::as_str) != Some("json_schema") {
        return None;
    }
    if !structured(target) {
        return None;
    }
    let schema = format.pointer("/json_schema/schema")?;
    Some(json!({"type": "json_schema", "schema": schema}))
}

/// The Messages body for a request, without `stream`.
pub(super) fn body(
    request: &ChatRequest,
    target: &Target<'_>,
) -> Result<Map<String, Value>, CodecError> {
    let in_place = target.endpoint.supports(MID_CONVERSATION_SYSTEM);
    let mut system: Vec<Value> = Vec::new();
    let mut turns: Vec<Value> = Vec::new();
    for message in &request.messages {
        match message {
            Message::System { content, .. } | Message::Developer { content, .. } => {
                let mut blocks = Vec::new();
                part_blocks(content, &mut blocks)?;
                if in_place && !turns.is_empty() {
                    push_turn(&mut turns, "system", blocks);
                } else {
                    system.extend(blocks);
                }
            }
            Message::User { content, .. } => {
                let mut blocks = Vec::new();
                part_blocks(content, &mut blocks)?;
                push_turn(&mut turns, "user", blocks);
            }
            Message::Assistant {
                content,
                tool_calls,
                reasoning_details,
                ..
            } => {
                let blocks = assistant_blocks(
                    content.as_ref(),
                    tool_calls.as_ref(),
                    reasoning_details.as_ref(),
                )?;
                push_turn(&mut turns, "assistant", blocks);
            }
            Message::Tool {
                content,
                tool_call_id,
            } => {
                let block = json!({
                    "type": "tool_result",
                    "tool_use_id": tool_call_id,
                    "content": tool_result_content(content)?,
                });
                push_turn(&mut turns, "user", vec![block]);
            }
        }
    }
    if in_place {
        turns = place_system_turns(turns, &mut system);
    }
    trim_prefill(&mut turns);
    if turns.is_empty() {
        return Err(codec_error(
            "anthropic needs at least one user or assistant message besides the system prompt",
        ));
    }

    let mut body = Map::new();
    body.insert("model".into(), json!(target.endpoint.upstream_model));
    let mut max_tokens = request
        .max_output_tokens()
        .or(target.endpoint.max_completion_tokens)
        .unwrap_or(DEFAULT_MAX_TOKENS);
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    body.insert("messages".into(), Value::Array(turns));

    let thinking = match request.extra.get("thinking") {
        Some(native) => Some(native.clone()),
        None => thinking_budget(request, max_tokens).map(|budget| {
            // Anthropic's minimum budget is 1024, and it must stay below max_tokens.
            let budget = budget.max(1024);
            if max_tokens <= budget {
                max_tokens = budget + 1024;
            }
            json!({"type": "enabled", "budget_tokens": budget})
        }),
    };
    // `enabled` or `adaptive`.
    let thinking_on = thinking
        .as_ref()
        .is_some_and(|t| t.get("type").and_then(Value::as_str) != Some("disabled"));
    body.insert("max_tokens".into(), json!(max_tokens));
    if let Some(t) = thinking {
        body.insert("thinking".into(), t);
    }
    if let Some(stop) = &request.stop {
        body.insert("stop_sequences".into(), json!(stop.sequences()));
    }
    if !thinking_on {
        if let Some(t) = request.temperature {
            // Anthropic's range is 0 to 1.
            body.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
        }
        if let Some(k) = request.top_k {
            body.insert("top_k".into(), json!(k));
        }
    }
    if let Some(p) = request.top_p.filter(|p| !thinking_on || *p >= 0.95) {
        body.insert("top_p".into(), json!(p));
    }
    if let Some(user) = &request.user {
        body.insert("metadata".into(), json!({"user_id": user}));
    }
    if let Some(tools) = &request.tools {
        let mut list = Vec::with_capacity(tools.len());
        for tool in tools {
            let Some(f) = &tool.function else {
                return Err(codec_error(format!(
                    "anthropic accepts only function tools, not {:?}",
                    tool.kind
                )));
            };
            let mut t = json!({
                "name": f.name,
                "input_schema": f.parameters.clone().unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            });
            if let Some(d) = &f.description {
                t["description"] = json!(d);
            }
            if f.strict == Some(true) && structured(target) {
                t["strict"] = json!(true);
            }
            if let Some(cc) = tool.extra.get("cache_control") {
                t["cache_control"] = cc.clone();
            }
            list.push(t);
        }
        body.insert("tools".into(), Value::Array(list));
    }
    let mut choice = match request.tool_choice.as_ref() {
        None => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({"type": "auto"})),
            "none" => Some(json!({"type": "none"})),
            "required" | "any" => Some(json!({"type": "any"})),
            other => {
                return Err(codec_error(format!(
                    "tool_choice {other:?} is not one of auto, none, required"
                )))
            }
        },
        Some(v) => match v.pointer("/function/name").and_then(Value::as_str) {
            Some(name) => Some(json!({"type": "tool", "name": name})),
            None => return Err(codec_error(
                "tool_choice must be auto, none, required or {type: function, function: {name}}",
            )),
        },
    };
    if request.parallel_tool_calls == Some(false) && request.tools.is_some() {
        let c = choice.get_or_insert_with(|| json!({"type": "auto"}));
        if c["type"] != "none" {
            c["disable_parallel_tool_use"] = json!(true);
        }
    }
    if let Some(c) = choice {
        body.insert("tool_choice".into(), c);
    }
    if let Some(native) = request.extra.get("output_config") {
        body.insert("output_config".into(), native.clone());
    } else if let Some(format) = output_format(request, target) {
        body.insert("output_config".into(), json!({ "format": format }));
    }
    for native in ["context_management", "cache_control"] {
        if let Some(value) = request.extra.get(native).filter(|v| !v.is_null()) {
            body.insert(native.into(), value.clone());
        }
    }
    Ok(body)
}

/// Members of a Messages body that `count_tokens` takes.
pub(super) const COUNT_TOKENS_FIELDS: &[&str] = &[
    "model",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "thinking",
    "output_config",
    "context_management",
    "cache_control",
];

/// The `anthropic-beta` flags a body needs: the fields of Anthropic's betas that are sent.
fn betas(body: &Map<String, Value>) -> Vec<&'static str> {
    let mut betas = Vec::new();
    if body.contains_key("context_management") {
        betas.push(CONTEXT_MANAGEMENT_BETA);
    }
    if body
        .get("output_config")
        .and_then(|c| c.get("task_budget"))
        .is_some_and(|b| !b.is_null())
    {
        betas.push(TASK_BUDGETS_BETA);
    }
    if body.get("thinking").and_then(|t| t.get("display")) == Some(&json!("updates")) {
        betas.push(THINKING_DISPLAY_UPDATES_BETA);
    }
    betas
}

/// `POST {base_url}/{path}` with the usual headers and the body's betas.
pub(super) fn upstream_request(
    target: &Target<'_>,
    path: &str,
    body: Map<String, Value>,
) -> Result<UpstreamRequest, CodecError> {
    let mut headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("anthropic-version".to_owned(), API_VERSION.to_owned()),
    ];
    let betas = betas(&body);
    if !betas.is_empty() {
        headers.push(("anthropic-beta".to_owned(), betas.join(",")));
    }
    if let Some(key) = target.api_key {
        headers.push(("x-api-key".to_owned(), key.to_owned()));
    }
    let body = serde_json::to_vec(&Value::Object(body))
        .map_err(|e| codec_error(format!("could not encode the request: {e}")))?;
    Ok(UpstreamRequest {
        url: format!("{}/{path}", target.provider.base_url.trim_end_matches('/')),
        headers,
        body,
    })
}
