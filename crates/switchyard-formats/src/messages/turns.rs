//! The parts of a Messages request below its top level: system content, turns and their
//! blocks, tools and the tool choice, and the error any part of a request raises.

use serde_json::{json, Value};

/// A request that is not a valid Messages API request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MessagesError(pub String);

pub(super) fn err<T>(message: impl Into<String>) -> Result<T, MessagesError> {
    Err(MessagesError(message.into()))
}

/// A system prompt: a string, or text blocks (their `cache_control` kept).
pub(super) fn system_content(system: &Value, at: &str) -> Result<Value, MessagesError> {
    match system {
        Value::String(s) => Ok(json!(s)),
        Value::Array(blocks) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for (i, block) in blocks.iter().enumerate() {
                if block.get("type").and_then(Value::as_str) != Some("text") {
                    return err(format!("{at}[{i}]: only text blocks are allowed"));
                }
                parts.push(text_part(block, &format!("{at}[{i}]"))?);
            }
            Ok(Value::Array(parts))
        }
        _ => err(format!("{at}: must be a string or an array of text blocks")),
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

/// Content of a `tool_result` block: a string, or text, image and document blocks.
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
                    // What a file-reading tool returns for a PDF.
                    Some("document") => parts.push(document_part(b, &at)?),
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
    if let Some(cache) = block.get("cache_control").filter(|c| !c.is_null()) {
        content = with_cache_breakpoint(content, cache);
    }
    Ok(content)
}

/// Puts a tool result's cache breakpoint on its last text, where the canonical tool message can
/// carry it (the prompt up to there is the same). A result without text keeps no breakpoint: a
/// breakpoint only changes what caching saves, never the answer.
fn with_cache_breakpoint(content: Value, cache: &Value) -> Value {
    match content {
        Value::String(s) if !s.is_empty() => {
            json!([{"type": "text", "text": s, "cache_control": cache}])
        }
        Value::Array(mut parts) => {
            if let Some(last) = parts.iter_mut().rev().find(|p| {
                p.get("type").and_then(Value::as_str) == Some("text")
                    && p.get("text")
                        .and_then(Value::as_str)
                        .is_some_and(|t| !t.is_empty())
            }) {
                last["cache_control"] = cache.clone();
            }
            Value::Array(parts)
        }
        other => other,
    }
}

pub(super) fn translate_turn(
    i: usize,
    turn: &Value,
    out: &mut Vec<Value>,
) -> Result<(), MessagesError> {
    let at = format!("messages[{i}]");
    let role = match turn.get("role").and_then(Value::as_str) {
        Some(r @ ("user" | "assistant")) => r,
        Some("system") => {
            // A mid-conversation system message: a system message where it stands.
            let Some(content) = turn.get("content") else {
                return err(format!("{at}.content: field required"));
            };
            let content = system_content(content, &format!("{at}.content"))?;
            out.push(json!({"role": "system", "content": content}));
            return Ok(());
        }
        Some(other) => {
            return err(format!(
                "{at}.role: {} is not allowed (user, assistant or system)",
                switchyard_core::parse_error::name(other)
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
                    "{at}.type: {} blocks are not accepted in {role} messages",
                    switchyard_core::parse_error::name(other)
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

/// Tool definition members that only tune how Anthropic loads or streams a tool, not what the
/// tool is: not sent on.
///
/// `defer_loading` only matters with a tool search tool (a server tool, refused), and
/// `eager_input_streaming` only changes how finely the arguments are streamed.
const TOOL_TUNING: &[&str] = &["defer_loading", "eager_input_streaming"];

pub(super) fn translate_tool(i: usize, tool: &Value) -> Result<Value, MessagesError> {
    let at = format!("tools[{i}]");
    let Some(fields) = tool.as_object() else {
        return err(format!("{at}: must be an object"));
    };
    match fields.get("type") {
        None | Some(Value::Null) => {}
        Some(Value::String(kind)) if kind == "custom" => {}
        Some(Value::String(kind)) => {
            // Server tools run on Anthropic's side and answer with blocks the canonical answer
            // cannot carry; they are never sent to another provider either.
            return err(format!(
                "{at}.type: server tool {} is not supported; declare client tools with name, description and input_schema",
                switchyard_core::parse_error::name(kind)
            ));
        }
        Some(_) => return err(format!("{at}.type: must be a string")),
    }
    let Some(name) = fields.get("name").and_then(Value::as_str) else {
        return err(format!("{at}.name: field required"));
    };
    let mut function = json!({"name": name});
    let mut out = json!({"type": "function"});
    for (key, value) in fields {
        match key.as_str() {
            "type" | "name" => {}
            "description" => function["description"] = value.clone(),
            "input_schema" if value.is_object() => function["parameters"] = value.clone(),
            "input_schema" => {
                return err(format!("{at}.input_schema: must be a JSON schema object"))
            }
            "strict" => match value {
                Value::Bool(_) => function["strict"] = value.clone(),
                Value::Null => {}
                _ => return err(format!("{at}.strict: must be a boolean")),
            },
            "cache_control" => {
                if !value.is_null() {
                    out["cache_control"] = value.clone();
                }
            }
            k if TOOL_TUNING.contains(&k) => {}
            other => {
                return err(format!(
                    "{}: is not supported",
                    switchyard_core::parse_error::field(&at, other)
                ))
            }
        }
    }
    if function.get("parameters").is_none() {
        function["parameters"] = json!({"type": "object", "properties": {}});
    }
    out["function"] = function;
    Ok(out)
}

/// `(tool_choice, parallel_tool_calls)`.
pub(super) fn translate_tool_choice(
    choice: &Value,
) -> Result<(Value, Option<bool>), MessagesError> {
    let parallel = match choice.get("disable_parallel_tool_use") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(disable)) => Some(!disable),
        Some(_) => return err("tool_choice.disable_parallel_tool_use: must be a boolean"),
    };
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
    Ok((choice, parallel))
}
