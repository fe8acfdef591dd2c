//! The top level of a Responses request: the fields forwarded, translated, checked or refused,
//! `reasoning` and `text` as their chat equivalents.

use serde_json::{json, Map, Value};
use switchyard_core::chat::json_type;

use super::input::translate_input;
use super::tools;
use super::types::{err, ResponsesError, Sealer, STATELESS};

/// Fields of the Responses request that mean the same as in the chat request and are forwarded
/// unchanged (the chat request validates them).
const SHARED: &[&str] = &[
    "models",
    "provider",
    "route",
    "temperature",
    "top_p",
    "top_k",
    "frequency_penalty",
    "presence_penalty",
    "service_tier",
    "plugins",
    "trace",
    "cache_control",
    "prompt_cache_options",
    "preset",
];

/// Translates a Responses API request body into a canonical chat request body (OpenAI shape,
/// ready for `ChatRequest::from_value`). Reasoning sealed in `encrypted_content` is opened with
/// `sealer`.
pub fn request_to_chat(body: &Value, sealer: &dyn Sealer) -> Result<Value, ResponsesError> {
    let Some(obj) = body.as_object() else {
        return err(format!(
            "The request body must be a JSON object, not {}",
            json_type(body)
        ));
    };
    let mut out = Map::new();
    let mut current_turn_only = false;
    for (key, value) in obj {
        if value.is_null() {
            // Every Responses field is nullable: null is the same as absent.
            continue;
        }
        let key = key.as_str();
        match key {
            // Read below, once every field is known to be valid.
            "input" | "instructions" | "safety_identifier" | "tools" | "tool_choice" => {}
            "model" => {
                let Some(model) = value.as_str() else {
                    return err(format!("model: must be a string, not {}", json_type(value)));
                };
                out.insert("model".into(), json!(model));
            }
            _ if SHARED.contains(&key) => {
                out.insert(key.into(), value.clone());
            }
            "stream" | "parallel_tool_calls" => {
                if !value.is_boolean() {
                    return err(format!("{key}: must be a boolean"));
                }
                out.insert(key.into(), value.clone());
            }
            "user" | "session_id" | "prompt_cache_key" => {
                let Some(s) = value.as_str() else {
                    return err(format!("{key}: must be a string"));
                };
                if s.chars().count() > 256 {
                    return err(format!("{key}: must be at most 256 characters"));
                }
                out.insert(key.into(), value.clone());
            }
            "max_output_tokens" => match value.as_u64() {
                Some(n) if n >= 1 => {
                    out.insert("max_tokens".into(), json!(n));
                }
                _ => return err("max_output_tokens: must be a positive integer"),
            },
            "metadata" => {
                check_metadata(value)?;
                out.insert("metadata".into(), value.clone());
            }
            "client_metadata" => check_client_metadata(value)?,
            "reasoning" => {
                let (reasoning, context) = translate_reasoning(value)?;
                if !reasoning.as_object().is_some_and(Map::is_empty) {
                    out.insert("reasoning".into(), reasoning);
                }
                current_turn_only = context == ReasoningContext::CurrentTurn;
            }
            "text" => translate_text(value, &mut out)?,
            "include" => check_include(value)?,
            "truncation" => match value.as_str() {
                Some("disabled") => {}
                Some("auto") => {
                    return err("truncation: \"auto\" is not supported: this gateway never drops parts of the conversation; send \"disabled\" and trim input yourself")
                }
                _ => return err("truncation: must be \"disabled\""),
            },
            "modalities" => {
                let only_text = value
                    .as_array()
                    .is_some_and(|m| m.iter().all(|v| v.as_str() == Some("text")));
                if !only_text {
                    return err("modalities: only text output is supported on the Responses API");
                }
                out.insert("modalities".into(), value.clone());
            }
            "store" => match value.as_bool() {
                Some(false) => {}
                Some(true) => return err(format!("store: true is not supported: {STATELESS}")),
                None => return err("store: must be a boolean"),
            },
            "background" => match value.as_bool() {
                Some(false) => {}
                Some(true) => {
                    return err("background: true is not supported: answers are only given on the request's own connection")
                }
                None => return err("background: must be a boolean"),
            },
            "previous_response_id" | "conversation" | "prompt" => {
                return err(format!("{key}: not supported: {STATELESS}"));
            }
            "max_tool_calls" | "stop_server_tools_when" => {
                return err(format!(
                    "{key}: not supported: this gateway runs no built-in tools"
                ));
            }
            "top_logprobs" => {
                return err("top_logprobs: not supported: log probabilities are not returned on the Responses API");
            }
            "debug" | "image_config" => {
                return err(format!("{key}: not supported on the Responses API"));
            }
            other => return err(format!("{}: unknown field", switchyard_core::parse_error::field("", other))),
        }
    }

    let (tools, kinds) = tools::collect(obj)?;
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = obj.get("tool_choice").filter(|c| !c.is_null()) {
        out.insert(
            "tool_choice".into(),
            tools::translate_choice(choice, &kinds)?,
        );
    }

    let mut messages: Vec<Value> = Vec::new();
    match obj.get("instructions") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => messages.push(json!({"role": "system", "content": s})),
        Some(other) => {
            return err(format!(
                "instructions: must be a string, not {}",
                json_type(other)
            ))
        }
    }
    match obj.get("input") {
        None | Some(Value::Null) => return err("input: field required"),
        Some(Value::String(s)) => messages.push(json!({"role": "user", "content": s})),
        Some(Value::Array(items)) => {
            if items.is_empty() {
                return err("input: at least one item is required");
            }
            translate_input(items, sealer, &kinds, &mut messages)?;
        }
        Some(other) => {
            return err(format!(
                "input: must be a string or an array of items, not {}",
                json_type(other)
            ))
        }
    }
    if current_turn_only {
        forget_earlier_reasoning(&mut messages);
    }
    out.insert("messages".into(), Value::Array(messages));

    match obj.get("safety_identifier") {
        None | Some(Value::Null) => {}
        Some(Value::String(id)) => match out.get("user").and_then(Value::as_str) {
            None => {
                out.insert("user".into(), json!(id));
            }
            Some(user) if user == id => {}
            Some(_) => {
                return err(
                    "safety_identifier: differs from user; both name the end user, send one",
                )
            }
        },
        Some(_) => return err("safety_identifier: must be a string"),
    }
    // No tools is what an empty list says; OpenAI-compatible upstreams refuse `[]`, and tool
    // settings without tools.
    if !out.contains_key("tools") {
        out.remove("parallel_tool_calls");
        if matches!(
            out.get("tool_choice").and_then(Value::as_str),
            Some("auto" | "none")
        ) {
            out.remove("tool_choice");
        }
    }
    if !out.contains_key("session_id") {
        if let Some(key) = out.get("prompt_cache_key").cloned() {
            out.insert("session_id".into(), key);
        }
    }
    Ok(Value::Object(out))
}

fn check_metadata(value: &Value) -> Result<(), ResponsesError> {
    let Some(map) = value.as_object() else {
        return err("metadata: must be an object of strings");
    };
    if map.len() > 16 {
        return err("metadata: at most 16 pairs");
    }
    for (k, v) in map {
        if k.chars().count() > 64 || k.contains('[') || k.contains(']') {
            return err(format!(
                "metadata.{k}: keys are at most 64 characters, without brackets"
            ));
        }
        match v.as_str() {
            Some(s) if s.chars().count() <= 512 => {}
            Some(_) => return err(format!("metadata.{k}: values are at most 512 characters")),
            None => return err(format!("metadata.{k}: must be a string")),
        }
    }
    Ok(())
}

fn check_include(value: &Value) -> Result<(), ResponsesError> {
    let Some(list) = value.as_array() else {
        return err("include: must be an array of strings");
    };
    for (i, v) in list.iter().enumerate() {
        match v.as_str() {
            Some("reasoning.encrypted_content") => {}
            Some(other) => {
                return err(format!(
                    "include[{i}]: {} is not supported; only \"reasoning.encrypted_content\" is",
                    switchyard_core::parse_error::name(other)
                ))
            }
            None => return err(format!("include[{i}]: must be a string")),
        }
    }
    Ok(())
}

/// A Codex-style `client_metadata`: string pairs describing the client (session, thread and turn
/// ids, an installation id, turn details). They are checked and kept from the providers: they
/// say nothing about the answer wanted, so they cannot change it, and the ids identify the user's
/// machine to whoever receives them.
fn check_client_metadata(value: &Value) -> Result<(), ResponsesError> {
    let Some(map) = value.as_object() else {
        return err("client_metadata: must be an object of strings");
    };
    for (k, v) in map {
        if !v.is_string() {
            return err(format!("client_metadata.{k}: must be a string"));
        }
    }
    Ok(())
}

/// Which reasoning from earlier turns the model sees (`reasoning.context`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReasoningContext {
    /// `auto` or `all_turns`: every reasoning item handed back in `input` is forwarded, which
    /// is what the gateway does anyway (whether the provider then reads earlier turns' reasoning
    /// is its model's default).
    AllGiven,
    /// `current_turn`: reasoning from before the last user message is left out.
    CurrentTurn,
}

/// Drops the reasoning of assistant messages before the last user message: the turns before the
/// current one.
fn forget_earlier_reasoning(messages: &mut [Value]) {
    let Some(last_user) = messages.iter().rposition(|m| m["role"] == "user") else {
        return;
    };
    for message in &mut messages[..last_user] {
        if message["role"] == "assistant" {
            if let Some(m) = message.as_object_mut() {
                m.remove("reasoning");
                m.remove("reasoning_details");
            }
        }
    }
}

fn translate_reasoning(value: &Value) -> Result<(Value, ReasoningContext), ResponsesError> {
    let Some(obj) = value.as_object() else {
        return err("reasoning: must be an object");
    };
    let mut out = Map::new();
    let mut context = ReasoningContext::AllGiven;
    for (key, v) in obj {
        if v.is_null() {
            continue;
        }
        match key.as_str() {
            "effort" | "summary" => {
                if !v.is_string() {
                    return err(format!("reasoning.{key}: must be a string"));
                }
                out.insert(key.clone(), v.clone());
            }
            "enabled" => {
                if !v.is_boolean() {
                    return err("reasoning.enabled: must be a boolean");
                }
                out.insert(key.clone(), v.clone());
            }
            "max_tokens" => {
                if v.as_u64().is_none() {
                    return err("reasoning.max_tokens: must be a non-negative integer");
                }
                out.insert(key.clone(), v.clone());
            }
            "context" => {
                match v.as_str() {
                    Some("auto" | "all_turns") => {}
                    Some("current_turn") => context = ReasoningContext::CurrentTurn,
                    _ => return err(
                        "reasoning.context: must be \"auto\", \"all_turns\" or \"current_turn\"",
                    ),
                }
            }
            "mode" => {
                return err(format!("reasoning.{key}: not supported by this gateway"));
            }
            other => {
                return err(format!(
                    "{}: unknown field",
                    switchyard_core::parse_error::field("reasoning", other)
                ))
            }
        }
    }
    Ok((Value::Object(out), context))
}

fn translate_text(value: &Value, out: &mut Map<String, Value>) -> Result<(), ResponsesError> {
    let Some(obj) = value.as_object() else {
        return err("text: must be an object");
    };
    for (key, v) in obj {
        if v.is_null() {
            continue;
        }
        match key.as_str() {
            "verbosity" => {
                if !v.is_string() {
                    return err("text.verbosity: must be a string");
                }
                out.insert("verbosity".into(), v.clone());
            }
            "format" => match v.get("type").and_then(Value::as_str) {
                // Plain text is what a request without `response_format` gets.
                Some("text") => {}
                Some("json_object") => {
                    out.insert("response_format".into(), json!({"type": "json_object"}));
                }
                Some("json_schema") => {
                    let Some(format) = v.as_object() else {
                        return err("text.format: must be an object");
                    };
                    let Some(name) = format.get("name").and_then(Value::as_str) else {
                        return err("text.format.name: field required for json_schema");
                    };
                    let Some(schema) = format.get("schema").filter(|s| s.is_object()) else {
                        return err("text.format.schema: field required for json_schema");
                    };
                    let mut json_schema = json!({"name": name, "schema": schema});
                    for (k, fv) in format {
                        match k.as_str() {
                            "type" | "name" | "schema" => {}
                            _ if fv.is_null() => {}
                            "description" | "strict" => {
                                json_schema[k.as_str()] = fv.clone();
                            }
                            other => {
                                return err(format!(
                                    "{}: unknown field",
                                    switchyard_core::parse_error::field("text.format", other)
                                ))
                            }
                        }
                    }
                    out.insert(
                        "response_format".into(),
                        json!({"type": "json_schema", "json_schema": json_schema}),
                    );
                }
                _ => return err("text.format.type: must be text, json_object or json_schema"),
            },
            other => {
                return err(format!(
                    "{}: unknown field",
                    switchyard_core::parse_error::field("text", other)
                ))
            }
        }
    }
    Ok(())
}
