//! The `input` items of a Responses request as chat messages: messages and their parts,
//! reasoning items, calls and call outputs, each assistant turn gathered into one message.

use serde_json::{json, Map, Value};
use switchyard_core::chat::json_type;

use super::tools::{self, ToolKinds};
use super::types::{err, ResponsesError, Sealer, STATELESS};

/// One assistant turn being assembled from consecutive assistant-side items.
#[derive(Default)]
struct Turn {
    /// Index of the turn's first item, for error messages.
    first: Option<usize>,
    parts: Vec<Value>,
    refusal: String,
    tool_calls: Vec<Value>,
    reasoning: String,
    details: Vec<Value>,
    has_reasoning: bool,
}

impl Turn {
    fn touch(&mut self, i: usize) {
        self.first.get_or_insert(i);
    }

    /// Appends the finished turn to `out` as one chat assistant message.
    fn flush(&mut self, out: &mut Vec<Value>) -> Result<(), ResponsesError> {
        let turn = std::mem::take(self);
        let Some(first) = turn.first else {
            return Ok(());
        };
        if turn.parts.is_empty() && turn.tool_calls.is_empty() && turn.refusal.is_empty() {
            if turn.has_reasoning {
                return err(format!(
                    "input[{first}]: a reasoning item must be followed by the assistant message or function call it belongs to"
                ));
            }
            out.push(json!({"role": "assistant", "content": ""}));
            return Ok(());
        }
        let mut message = json!({"role": "assistant"});
        if !turn.parts.is_empty() {
            message["content"] = collapse_parts(turn.parts);
        } else if !turn.refusal.is_empty() && turn.tool_calls.is_empty() {
            // The refusal is what the model said; providers without a refusal field read it here.
            message["content"] = json!(turn.refusal);
        }
        if !turn.refusal.is_empty() {
            message["refusal"] = json!(turn.refusal);
        }
        if !turn.tool_calls.is_empty() {
            message["tool_calls"] = Value::Array(turn.tool_calls);
        }
        if !turn.reasoning.is_empty() {
            message["reasoning"] = json!(turn.reasoning);
        }
        if !turn.details.is_empty() {
            message["reasoning_details"] = Value::Array(turn.details);
        }
        out.push(message);
        Ok(())
    }
}

/// A single text part without a cache breakpoint becomes a string; several parts stay parts, so
/// that texts are never glued together.
fn collapse_parts(mut parts: Vec<Value>) -> Value {
    let single_text = parts.len() == 1
        && parts[0].get("type").and_then(Value::as_str) == Some("text")
        && parts[0].get("cache_control").is_none();
    match parts.pop() {
        Some(part) if single_text => part.get("text").cloned().unwrap_or_else(|| json!("")),
        Some(part) => {
            parts.push(part);
            Value::Array(parts)
        }
        None => json!(""),
    }
}

fn check_keys(item: &Map<String, Value>, allowed: &[&str], at: &str) -> Result<(), ResponsesError> {
    for key in item.keys() {
        if !allowed.contains(&key.as_str()) {
            return err(format!(
                "{}: unknown field",
                switchyard_core::parse_error::field(at, key)
            ));
        }
    }
    Ok(())
}

fn str_field<'a>(
    item: &'a Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<&'a str, ResponsesError> {
    match item.get(key) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => err(format!("{at}.{key}: field required")),
        Some(other) => err(format!(
            "{at}.{key}: must be a string, not {}",
            json_type(other)
        )),
    }
}

pub(super) fn translate_input(
    items: &[Value],
    sealer: &dyn Sealer,
    kinds: &ToolKinds,
    out: &mut Vec<Value>,
) -> Result<(), ResponsesError> {
    let mut turn = Turn::default();
    for (i, item) in items.iter().enumerate() {
        let at = format!("input[{i}]");
        let Some(obj) = item.as_object() else {
            return err(format!("{at}: must be an object"));
        };
        let kind = match obj.get("type") {
            Some(Value::String(t)) => t.as_str(),
            // Easy input messages may leave out the type.
            None | Some(Value::Null) if obj.contains_key("role") => "message",
            None | Some(Value::Null) => return err(format!("{at}.type: field required")),
            Some(_) => return err(format!("{at}.type: must be a string")),
        };
        match kind {
            "message" => {
                check_keys(obj, &["type", "role", "content", "id", "status", "phase"], &at)?;
                let role = str_field(obj, "role", &at)?;
                match role {
                    "assistant" => {
                        turn.touch(i);
                        assistant_content(obj.get("content"), &at, &mut turn)?;
                    }
                    "user" | "system" | "developer" => {
                        turn.flush(out)?;
                        let content = input_content(obj.get("content"), role, &at)?;
                        out.push(json!({"role": role, "content": content}));
                    }
                    other => {
                        return err(format!(
                            "{at}.role: {} is not one of user, assistant, system, developer",
                            switchyard_core::parse_error::name(other)
                        ))
                    }
                }
            }
            "function_call" | "custom_tool_call" => {
                let custom = kind == "custom_tool_call";
                let payload = if custom { "input" } else { "arguments" };
                check_keys(
                    obj,
                    &["type", "call_id", "name", "namespace", payload, "id", "status"],
                    &at,
                )?;
                turn.touch(i);
                let call_id = str_field(obj, "call_id", &at)?;
                let name = str_field(obj, "name", &at)?;
                let namespace = match obj.get("namespace") {
                    None | Some(Value::Null) => None,
                    Some(_) => Some(str_field(obj, "namespace", &at)?),
                };
                let payload = str_field(obj, payload, &at)?;
                // A custom tool is a chat function taking its text as the `input` argument.
                let arguments = if custom {
                    tools::custom_arguments(payload)
                } else {
                    payload.to_owned()
                };
                turn.tool_calls.push(json!({
                    "id": call_id,
                    "type": "function",
                    "function": {"name": kinds.chat_name(namespace, name), "arguments": arguments},
                }));
            }
            "function_call_output" | "custom_tool_call_output" => {
                check_keys(obj, &["type", "call_id", "output", "id", "status"], &at)?;
                turn.flush(out)?;
                let call_id = str_field(obj, "call_id", &at)?;
                let content = match obj.get("output") {
                    Some(Value::String(s)) => json!(s),
                    Some(Value::Array(parts)) => {
                        let mut list = Vec::with_capacity(parts.len());
                        for (j, part) in parts.iter().enumerate() {
                            list.push(input_part(part, "tool", &format!("{at}.output[{j}]"))?);
                        }
                        Value::Array(list)
                    }
                    None | Some(Value::Null) => return err(format!("{at}.output: field required")),
                    Some(_) => {
                        return err(format!(
                            "{at}.output: must be a string or an array of content parts"
                        ))
                    }
                };
                out.push(json!({"role": "tool", "tool_call_id": call_id, "content": content}));
            }
            // Its tools joined the request's tool list (`tools::collect`); the chat request has
            // no place for tools inside the conversation.
            "additional_tools" => {}
            "reasoning" => {
                check_keys(
                    obj,
                    &[
                        "type",
                        "id",
                        "summary",
                        "content",
                        "encrypted_content",
                        "status",
                        "format",
                        "signature",
                    ],
                    &at,
                )?;
                turn.touch(i);
                turn.has_reasoning = true;
                reasoning_item(obj, &at, sealer, &mut turn)?;
            }
            "item_reference" => {
                return err(format!("{at}.type: item_reference is not supported: {STATELESS}"));
            }
            other => {
                return err(format!(
                    "{at}.type: {} items are not supported; this gateway runs no built-in tools (message, function_call, function_call_output, custom_tool_call, custom_tool_call_output, additional_tools and reasoning items are)",
                    switchyard_core::parse_error::name(other)
                ))
            }
        }
    }
    turn.flush(out)
}

/// Content of a user, system or developer message, as chat content.
fn input_content(content: Option<&Value>, role: &str, at: &str) -> Result<Value, ResponsesError> {
    match content {
        Some(Value::String(s)) => Ok(json!(s)),
        Some(Value::Array(parts)) => {
            let mut list = Vec::with_capacity(parts.len());
            for (j, part) in parts.iter().enumerate() {
                list.push(input_part(part, role, &format!("{at}.content[{j}]"))?);
            }
            Ok(collapse_parts(list))
        }
        None | Some(Value::Null) => err(format!("{at}.content: field required")),
        Some(other) => err(format!(
            "{at}.content: must be a string or an array of content parts, not {}",
            json_type(other)
        )),
    }
}

/// One input content part as a chat content part. Media parts are accepted in user messages and
/// tool outputs (`role` "user" or "tool"), text anywhere.
fn input_part(part: &Value, role: &str, at: &str) -> Result<Value, ResponsesError> {
    let Some(obj) = part.as_object() else {
        return err(format!("{at}: must be an object"));
    };
    let kind = str_field(obj, "type", at)?;
    let media = matches!(role, "user" | "tool");
    match kind {
        "input_text" | "output_text" => {
            check_keys(
                obj,
                &[
                    "type",
                    "text",
                    "prompt_cache_breakpoint",
                    "annotations",
                    "logprobs",
                ],
                at,
            )?;
            let text = str_field(obj, "text", at)?;
            let mut out = json!({"type": "text", "text": text});
            if obj
                .get("prompt_cache_breakpoint")
                .is_some_and(|b| !b.is_null())
            {
                out["cache_control"] = json!({"type": "ephemeral"});
            }
            Ok(out)
        }
        "input_image" if media => {
            check_keys(obj, &["type", "image_url", "detail", "file_id"], at)?;
            if obj.get("file_id").is_some_and(|f| !f.is_null()) {
                return err(format!(
                    "{at}.file_id: uploaded files are not supported; send image_url (a URL or data URL)"
                ));
            }
            let url = str_field(obj, "image_url", at)?;
            let mut image = json!({"url": url});
            if let Some(detail) = obj.get("detail").and_then(Value::as_str) {
                image["detail"] = json!(detail);
            }
            Ok(json!({"type": "image_url", "image_url": image}))
        }
        "input_file" if media => {
            check_keys(
                obj,
                &["type", "file_data", "file_url", "filename", "file_id"],
                at,
            )?;
            if obj.get("file_id").is_some_and(|f| !f.is_null()) {
                return err(format!(
                    "{at}.file_id: uploaded files are not supported; send file_data or file_url"
                ));
            }
            let data = obj
                .get("file_data")
                .or_else(|| obj.get("file_url"))
                .and_then(Value::as_str);
            let Some(data) = data else {
                return err(format!("{at}: an input_file needs file_data or file_url"));
            };
            let mut file = json!({"file_data": data});
            if let Some(name) = obj.get("filename").and_then(Value::as_str) {
                file["filename"] = json!(name);
            }
            Ok(json!({"type": "file", "file": file}))
        }
        "input_audio" if media => {
            check_keys(obj, &["type", "input_audio"], at)?;
            match obj.get("input_audio") {
                Some(audio @ Value::Object(_)) => {
                    Ok(json!({"type": "input_audio", "input_audio": audio}))
                }
                _ => err(format!("{at}.input_audio: field required")),
            }
        }
        "input_video" if media => {
            check_keys(obj, &["type", "video_url"], at)?;
            let url = str_field(obj, "video_url", at)?;
            Ok(json!({"type": "video_url", "video_url": {"url": url}}))
        }
        "input_image" | "input_file" | "input_audio" | "input_video" => err(format!(
            "{at}.type: {kind} parts are only accepted in user messages and function call outputs"
        )),
        other => err(format!(
            "{at}.type: {} parts are not accepted here",
            switchyard_core::parse_error::name(other)
        )),
    }
}

/// Adds an assistant message item's content to the turn.
fn assistant_content(
    content: Option<&Value>,
    at: &str,
    turn: &mut Turn,
) -> Result<(), ResponsesError> {
    match content {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) => {
            turn.parts.push(json!({"type": "text", "text": s}));
            Ok(())
        }
        Some(Value::Array(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                let at = format!("{at}.content[{j}]");
                if part.get("type").and_then(Value::as_str) == Some("refusal") {
                    let Some(obj) = part.as_object() else {
                        return err(format!("{at}: must be an object"));
                    };
                    check_keys(obj, &["type", "refusal"], &at)?;
                    turn.refusal.push_str(str_field(obj, "refusal", &at)?);
                } else {
                    turn.parts.push(input_part(part, "assistant", &at)?);
                }
            }
            Ok(())
        }
        Some(other) => err(format!(
            "{at}.content: must be a string or an array of content parts, not {}",
            json_type(other)
        )),
    }
}

/// The readable text of a reasoning item's `content` (reasoning text) or else `summary`.
fn reasoning_item_text(obj: &Map<String, Value>, at: &str) -> Result<String, ResponsesError> {
    let mut text = String::new();
    for (field, part_type) in [("content", "reasoning_text"), ("summary", "summary_text")] {
        match obj.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::Array(parts)) => {
                for (j, part) in parts.iter().enumerate() {
                    let at = format!("{at}.{field}[{j}]");
                    let Some(p) = part.as_object() else {
                        return err(format!("{at}: must be an object"));
                    };
                    let kind = str_field(p, "type", &at)?;
                    if kind != part_type && !(field == "content" && kind == "text") {
                        return err(format!("{at}.type: must be {part_type}"));
                    }
                    if !text.is_empty() {
                        text.push_str("\n\n");
                    }
                    text.push_str(str_field(p, "text", &at)?);
                }
                if !text.is_empty() {
                    // The full reasoning text wins over its summary.
                    return Ok(text);
                }
            }
            Some(_) => return err(format!("{at}.{field}: must be an array")),
        }
    }
    Ok(text)
}

fn reasoning_item(
    obj: &Map<String, Value>,
    at: &str,
    sealer: &dyn Sealer,
    turn: &mut Turn,
) -> Result<(), ResponsesError> {
    match obj.get("encrypted_content") {
        Some(Value::String(sealed)) => {
            let details = sealer
                .open(sealed)
                .and_then(|plain| serde_json::from_slice::<Vec<Value>>(&plain).ok())
                .filter(|d| d.iter().all(Value::is_object));
            let Some(details) = details else {
                return err(format!(
                    "{at}.encrypted_content: was not issued by this gateway, or was altered"
                ));
            };
            for d in &details {
                let text = d
                    .get("text")
                    .or_else(|| d.get("summary"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                turn.reasoning.push_str(text);
            }
            turn.details.extend(details);
            Ok(())
        }
        None | Some(Value::Null) => {
            let text = reasoning_item_text(obj, at)?;
            if let Some(signature) = obj.get("signature").and_then(Value::as_str) {
                let mut detail = json!({"type": "reasoning.text", "text": text, "signature": signature, "index": turn.details.len()});
                if let Some(format) = obj.get("format").filter(|f| f.is_string()) {
                    detail["format"] = format.clone();
                }
                turn.details.push(detail);
            }
            turn.reasoning.push_str(&text);
            Ok(())
        }
        Some(_) => err(format!("{at}.encrypted_content: must be a string")),
    }
}
