//! OpenAI's Responses API as an *inbound* format: requests sent to the gateway's
//! `/api/v1/responses` become the canonical chat request, and the canonical answer (the OpenAI
//! chat completion, chunk by chunk when streamed) becomes a `response` object and the Responses
//! SSE events.
//!
//! The gateway keeps no conversation state, so this is the *stateless* Responses API: every
//! request carries the whole conversation in `input`.
//!
//! # What is mapped
//!
//! - `input`: a string (one user message) or a list of items. `message` items (roles `user`,
//!   `system`, `developer`, `assistant`; parts `input_text`, `output_text`, `input_image`,
//!   `input_file`, `input_audio`, `input_video`, `refusal`; the `type` may be left out) become
//!   chat messages. `function_call` and `custom_tool_call` items become the assistant's
//!   `tool_calls` (a custom call's text as the `input` argument, a namespaced call under its flat
//!   name); `function_call_output` and `custom_tool_call_output` items (a string or content
//!   parts) become `tool` messages. An assistant turn is the run of consecutive `reasoning`,
//!   assistant `message` and call items: it becomes one chat assistant message, so a reply that
//!   was rendered as `[reasoning, message, function_call, function_call]` comes back as the
//!   single message it was.
//! - Tools: `function`, `custom` and `namespace` tools, in `tools` and in `additional_tools`
//!   input items, become the chat tool list. A `custom` tool becomes a function taking one
//!   required string, `input`, with its format (a Lark or regular-expression grammar) written
//!   into the description: no chat provider constrains arguments by a grammar, so the description
//!   is where the model learns it. A namespace's members become tools named `namespace__name`,
//!   the flat name OpenAI's clients use, the namespace's description added to each. The
//!   `additional_tools` items leave the conversation: the chat request has one tool list, so
//!   tools made available at a point of the conversation join it for the whole of it.
//!   `tool_choice` may name a function or custom tool, with its namespace.
//! - `reasoning` items: `encrypted_content` is opened with the [`Sealer`] and restores the
//!   assistant message's `reasoning_details` exactly as the provider returned them (Anthropic
//!   thinking signatures, Gemini thought signatures, encrypted reasoning). Without it, the
//!   readable text (`content`, else `summary`) becomes the message's `reasoning`, and an
//!   OpenRouter-style `signature` a signed `reasoning.text` detail.
//! - `instructions` is a leading system message; `max_output_tokens` is `max_tokens`;
//!   `text.format` is `response_format` (`json_schema`, `json_object`; `text` is the default);
//!   `text.verbosity` is `verbosity`; `reasoning` {effort, summary, enabled, max_tokens} is the
//!   chat `reasoning`; `safety_identifier` is the end-user id (`user`) when `user` is absent. An
//!   empty `tools` list is no tools, and without tools `tool_choice` auto or none and
//!   `parallel_tool_calls` change nothing and are left out (OpenAI-compatible upstreams refuse
//!   them).
//! - `reasoning.context`: `current_turn` leaves out the reasoning of the assistant messages before
//!   the last user message; `all_turns` and `auto` forward every reasoning item given, which is
//!   what the gateway does anyway.
//! - `prompt_cache_key` is forwarded, and is the sticky-routing `session_id` when the request
//!   has none: both exist to send a conversation to the same backend for cache hits.
//! - `metadata` (at most 16 string pairs) is recorded with the request, never forwarded.
//! - `client_metadata` (Codex's string pairs of session, thread, turn and installation ids) is
//!   checked and neither forwarded nor recorded: it describes the client, not the answer wanted,
//!   so it cannot change the answer, and its ids identify the user's machine.
//! - Fields shared with the chat request keep their chat meaning and are forwarded unchanged:
//!   `model`, `models`, `provider`, `route`, `session_id`, `user`, `stream`, `temperature`,
//!   `top_p`, `top_k`, `frequency_penalty`, `presence_penalty`, `parallel_tool_calls`,
//!   `service_tier`, `plugins`, `trace`, `cache_control`, `prompt_cache_options`.
//! - `store: false`, `background: false`, `truncation: "disabled"` and
//!   `include: ["reasoning.encrypted_content"]` (or `[]`) describe what the gateway always does:
//!   it stores nothing, answers in the foreground, never drops input, and always returns
//!   reasoning sealed in `encrypted_content` (without it a stateless client could not hand
//!   reasoning back).
//!
//! # What is refused, and why
//!
//! Each with a 400 naming the field:
//! - `previous_response_id`, `store: true`, `conversation`, `prompt` and `item_reference` items:
//!   they need state kept between requests.
//! - `background: true`: answers are only given on the request's own connection.
//! - Built-in tools (`web_search`, `file_search`, `computer_use_preview`, `code_interpreter`,
//!   `image_generation`, `mcp`, `local_shell`, ...), their call items and tool choices,
//!   `max_tool_calls`, `stop_server_tools_when` and `defer_loading: true`: the gateway runs no
//!   tools.
//! - Two tools with the same chat name (a namespace member is named `namespace__name`): the
//!   model could not tell them apart.
//! - `truncation: "auto"`: the gateway does not drop parts of the conversation.
//! - `include` values other than `reasoning.encrypted_content`, `top_logprobs`, `debug`,
//!   `image_config` and output `modalities` other than text: the answer has no place for them.
//! - Any other field.
//!
//! # Rendering
//!
//! [`response_from_chat`] and [`StreamTranscoder`] render output items in order: `reasoning`
//! (readable text as `summary_text`, the provider's reasoning details sealed in
//! `encrypted_content`; reasoning text is never written there in the clear), `message`
//! (`output_text`, `refusal`), then the calls: a call of a tool the client declared `custom` is a
//! `custom_tool_call` whose `input` is the call's `input` argument (streamed as
//! `response.custom_tool_call_input.delta` and `.done`), any other a `function_call`; a namespace
//! member's call carries its `namespace` and its own `name`, as OpenAI returns it. What each tool
//! was is read from the request in [`ResponseContext`], so rendering needs nothing else. The
//! response echoes the request parameters the OpenAPI schema requires. A streamed answer is
//! `response.created`, `response.in_progress`, the item events with a strictly increasing
//! `sequence_number`, then `response.completed`, `response.incomplete`, or `error` followed by
//! `response.failed`.

use std::sync::Arc;

use serde_json::{json, Map, Value};
use switchyard_core::chat::json_type;
use switchyard_core::error::error_type_for_status;

use tools::{Declared, InputStream, ToolKinds};

mod tools;

/// Seals reasoning into an opaque string a client hands back unchanged, and opens it again.
///
/// The server implements it with authenticated encryption under a gateway key, so a client can
/// neither read nor forge the reasoning details it carries between requests.
pub trait Sealer: Send + Sync {
    /// Seals `plain` into a printable token.
    fn seal(&self, plain: &[u8]) -> String;
    /// Opens a token made by [`Sealer::seal`]; `None` when it was not, or was altered.
    fn open(&self, sealed: &str) -> Option<Vec<u8>>;
}

/// A request that is not a valid (stateless) Responses API request; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ResponsesError(pub String);

fn err<T>(message: impl Into<String>) -> Result<T, ResponsesError> {
    Err(ResponsesError(message.into()))
}

const STATELESS: &str =
    "this gateway keeps no conversation state; send the whole conversation in input";

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

fn translate_input(
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

// === Rendering ===

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
fn item_id(prefix: &str, ctx: &ResponseContext, index: usize) -> String {
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
fn response_object(
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
fn outcome(finish_reason: Option<&str>) -> (&'static str, Value) {
    match finish_reason {
        Some("length") => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some("content_filter") => ("incomplete", json!({"reason": "content_filter"})),
        _ => ("completed", Value::Null),
    }
}

/// The `code` of a response's `error` for an HTTP status (the schema's vocabulary).
fn error_code(status: u16) -> &'static str {
    match status {
        429 => "rate_limit_exceeded",
        400 | 413 | 422 => "invalid_prompt",
        _ => "server_error",
    }
}

/// Whether a reasoning detail carries anything (text, summary, signature or data).
fn meaningful(detail: &Value) -> bool {
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

fn reasoning_output(id: String, text: &str, details: &[Value], sealer: &dyn Sealer) -> Value {
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
fn call_prefix(tool: Option<&Declared>) -> &'static str {
    if tool.is_some_and(|t| t.custom) {
        "ctc"
    } else {
        "fc"
    }
}

/// A chat tool call, as [`call_item`] renders it.
struct CallItem<'a> {
    id: &'a str,
    call_id: &'a str,
    /// The name the chat model called.
    name: &'a str,
    /// What the client declared that name as, when it is known.
    tool: Option<&'a Declared>,
    /// The chat call's JSON arguments.
    arguments: &'a str,
    status: &'a str,
}

/// The output item of a tool call: a `custom_tool_call` (with the `input` argument as its input)
/// for a custom tool, else a `function_call`; a namespace member's call carries its namespace and
/// its own name.
fn call_item(call: CallItem<'_>) -> Value {
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

fn text_part(text: &str) -> Value {
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

/// One server-sent event: `(event type, data)`.
pub type Event = (&'static str, Value);

/// Frames one event as SSE bytes: `event: <type>\ndata: <json>\n\n`.
pub fn frame(event: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.0.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    if serde_json::to_writer(&mut out, &event.1).is_err() {
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartKind {
    Text,
    Refusal,
}

/// The output item being streamed.
#[derive(Debug)]
enum Open {
    Reasoning {
        id: String,
        text: String,
        /// Details merged by their `index`, as the provider split them into deltas.
        details: Vec<Value>,
        summary_open: bool,
    },
    Message {
        id: String,
        /// Finished content parts.
        parts: Vec<Value>,
        /// The part being streamed.
        current: Option<(PartKind, String)>,
    },
    Call {
        id: String,
        /// The chat tool call index.
        index: u64,
        call_id: String,
        /// The name the chat model called.
        name: String,
        /// The chat call's JSON arguments so far.
        arguments: String,
        /// What the client declared the tool as, known from the name the call opened with (every
        /// canonical stream names a call in its first fragment).
        tool: Option<Declared>,
        /// For a custom tool: its input as streamed so far.
        custom: Option<CustomInput>,
    },
}

/// A custom tool call's input while its arguments stream.
#[derive(Debug, Default)]
struct CustomInput {
    stream: InputStream,
    /// The text sent in `response.custom_tool_call_input.delta` events.
    sent: String,
}

/// A tool call already closed, to which later argument fragments still belong.
#[derive(Debug)]
struct FinishedCall {
    /// The chat tool call index.
    chat_index: u64,
    /// Its position in the output.
    position: usize,
    arguments: String,
}

/// Merges a streamed reasoning detail into `details`: fragments with the same `index` and
/// `type` are one detail (text and summary concatenated, signature and data taken when given).
fn merge_detail(details: &mut Vec<Value>, detail: &Value) {
    let index = detail.get("index").and_then(Value::as_u64);
    let kind = detail.get("type").and_then(Value::as_str);
    let existing = index.and_then(|i| {
        details.iter_mut().find(|d| {
            d.get("index").and_then(Value::as_u64) == Some(i)
                && d.get("type").and_then(Value::as_str) == kind
        })
    });
    let Some(existing) = existing else {
        details.push(detail.clone());
        return;
    };
    let Some(fields) = detail.as_object() else {
        return;
    };
    for (key, value) in fields {
        match (key.as_str(), value.as_str()) {
            ("text" | "summary", Some(piece)) => {
                let joined = format!(
                    "{}{piece}",
                    existing.get(key).and_then(Value::as_str).unwrap_or("")
                );
                existing[key.as_str()] = json!(joined);
            }
            (_, Some("")) => {}
            _ if value.is_null() => {}
            _ => existing[key.as_str()] = value.clone(),
        }
    }
}

/// Turns the canonical chunk stream into the Responses event stream.
///
/// Call [`StreamTranscoder::start`] once, [`StreamTranscoder::chunk`] for each chat chunk, then
/// [`StreamTranscoder::finish`] with the final canonical usage, or [`StreamTranscoder::error`]
/// when the answer failed. Once ended, the transcoder emits nothing more.
pub struct StreamTranscoder {
    ctx: ResponseContext,
    model: String,
    sealer: Arc<dyn Sealer>,
    sequence: u64,
    /// Finished output items, in order.
    output: Vec<Value>,
    open: Option<Open>,
    /// Calls already finished.
    finished_calls: Vec<FinishedCall>,
    /// The client's tools, to render each call as the item the client expects.
    kinds: ToolKinds,
    finish_reason: Option<String>,
    /// An error reported inside the chunk stream: `(status, message)`.
    failure: Option<(u16, String)>,
    ended: bool,
}

impl std::fmt::Debug for StreamTranscoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamTranscoder")
            .field("id", &self.ctx.id)
            .field("sequence", &self.sequence)
            // The open item holds generated text: only whether there is one is shown.
            .field("item_open", &self.open.is_some())
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl StreamTranscoder {
    /// A transcoder for one response; `model` is the model named until a chunk names the one
    /// that serves.
    pub fn new(ctx: ResponseContext, model: &str, sealer: Arc<dyn Sealer>) -> Self {
        StreamTranscoder {
            kinds: ToolKinds::of(&ctx.request),
            ctx,
            model: model.to_owned(),
            sealer,
            sequence: 0,
            output: Vec::new(),
            open: None,
            finished_calls: Vec::new(),
            finish_reason: None,
            failure: None,
            ended: false,
        }
    }

    fn event(&mut self, kind: &'static str, mut data: Value) -> Event {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        (kind, data)
    }

    fn snapshot(
        &self,
        status: &str,
        output: Vec<Value>,
        usage: Option<Value>,
        completed_at: Option<u64>,
    ) -> Value {
        response_object(&self.ctx, &self.model, status, output, usage, completed_at)
    }

    /// `response.created` and `response.in_progress`.
    pub fn start(&mut self) -> Vec<Event> {
        let response = self.snapshot("in_progress", Vec::new(), None, None);
        vec![
            self.event("response.created", json!({"response": response})),
            self.event("response.in_progress", json!({"response": response})),
        ]
    }

    fn output_index(&self) -> usize {
        self.output.len()
    }

    fn add_item(&mut self, item: Value, out: &mut Vec<Event>) {
        let index = self.output_index();
        out.push(self.event(
            "response.output_item.added",
            json!({"output_index": index, "item": item}),
        ));
    }

    fn open_reasoning(&mut self, out: &mut Vec<Event>) {
        if matches!(self.open, Some(Open::Reasoning { .. })) {
            return;
        }
        self.close("completed", out);
        let id = item_id("rs", &self.ctx, self.output_index());
        self.add_item(json!({"type": "reasoning", "id": id, "summary": []}), out);
        self.open = Some(Open::Reasoning {
            id,
            text: String::new(),
            details: Vec::new(),
            summary_open: false,
        });
    }

    fn open_part(&mut self, kind: PartKind, out: &mut Vec<Event>) {
        if !matches!(self.open, Some(Open::Message { .. })) {
            self.close("completed", out);
            let id = item_id("msg", &self.ctx, self.output_index());
            self.add_item(
                json!({"type": "message", "id": id, "status": "in_progress", "role": "assistant", "content": []}),
                out,
            );
            self.open = Some(Open::Message {
                id,
                parts: Vec::new(),
                current: None,
            });
        }
        let index = self.output_index();
        let Some(Open::Message { id, parts, current }) = self.open.take() else {
            return;
        };
        let mut parts = parts;
        let current = match current {
            Some((k, text)) if k == kind => Some((k, text)),
            other => {
                if let Some((k, text)) = other {
                    parts.push(self.close_part(&id, index, parts.len(), k, &text, out));
                }
                let part = match kind {
                    PartKind::Text => text_part(""),
                    PartKind::Refusal => json!({"type": "refusal", "refusal": ""}),
                };
                out.push(self.event(
                    "response.content_part.added",
                    json!({"item_id": id, "output_index": index, "content_index": parts.len(), "part": part}),
                ));
                Some((kind, String::new()))
            }
        };
        self.open = Some(Open::Message { id, parts, current });
    }

    /// The done events of a content part; returns the finished part.
    fn close_part(
        &mut self,
        id: &str,
        index: usize,
        content_index: usize,
        kind: PartKind,
        text: &str,
        out: &mut Vec<Event>,
    ) -> Value {
        let part = match kind {
            PartKind::Text => {
                out.push(self.event(
                    "response.output_text.done",
                    json!({"item_id": id, "output_index": index, "content_index": content_index, "text": text, "logprobs": []}),
                ));
                text_part(text)
            }
            PartKind::Refusal => {
                out.push(self.event(
                    "response.refusal.done",
                    json!({"item_id": id, "output_index": index, "content_index": content_index, "refusal": text}),
                ));
                json!({"type": "refusal", "refusal": text})
            }
        };
        out.push(self.event(
            "response.content_part.done",
            json!({"item_id": id, "output_index": index, "content_index": content_index, "part": part}),
        ));
        part
    }

    /// Closes the open item with its done events; `status` is the item's final status.
    fn close(&mut self, status: &str, out: &mut Vec<Event>) {
        let index = self.output_index();
        let item = match self.open.take() {
            None => return,
            Some(Open::Reasoning {
                id,
                text,
                details,
                summary_open,
            }) => {
                if summary_open {
                    out.push(self.event(
                        "response.reasoning_summary_text.done",
                        json!({"item_id": id, "output_index": index, "summary_index": 0, "text": text}),
                    ));
                    out.push(self.event(
                        "response.reasoning_summary_part.done",
                        json!({"item_id": id, "output_index": index, "summary_index": 0,
                               "part": {"type": "summary_text", "text": text}}),
                    ));
                }
                reasoning_output(id, &text, &details, self.sealer.as_ref())
            }
            Some(Open::Message {
                id,
                mut parts,
                current,
            }) => {
                if let Some((kind, text)) = current {
                    parts.push(self.close_part(&id, index, parts.len(), kind, &text, out));
                }
                json!({"type": "message", "id": id, "status": status, "role": "assistant", "content": parts})
            }
            Some(Open::Call {
                id,
                index: chat_index,
                call_id,
                name,
                arguments,
                tool,
                custom,
            }) => {
                let item = call_item(CallItem {
                    id: &id,
                    call_id: &call_id,
                    name: &name,
                    tool: tool.as_ref(),
                    arguments: &arguments,
                    status,
                });
                if let Some(custom) = custom {
                    let input = item["input"].as_str().unwrap_or_default();
                    // What the stream could not decode (the arguments strayed from the declared
                    // shape) is sent before the done event, which carries the whole input.
                    if let Some(rest) = input
                        .strip_prefix(custom.sent.as_str())
                        .filter(|r| !r.is_empty())
                    {
                        out.push(self.event(
                            "response.custom_tool_call_input.delta",
                            json!({"item_id": id, "output_index": index, "delta": rest}),
                        ));
                    }
                    out.push(self.event(
                        "response.custom_tool_call_input.done",
                        json!({"item_id": id, "output_index": index, "input": input}),
                    ));
                } else {
                    out.push(self.event(
                        "response.function_call_arguments.done",
                        json!({"item_id": id, "output_index": index, "name": item["name"], "arguments": arguments}),
                    ));
                }
                self.finished_calls.push(FinishedCall {
                    chat_index,
                    position: index,
                    arguments,
                });
                item
            }
        };
        out.push(self.event(
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        ));
        self.output.push(item);
    }

    /// The open item as it stands, without events, for a failed response's output.
    fn abandon(&mut self) {
        let item = match self.open.take() {
            None => return,
            Some(Open::Reasoning {
                id, text, details, ..
            }) => {
                let mut item = reasoning_output(id, &text, &details, self.sealer.as_ref());
                item["status"] = json!("incomplete");
                item
            }
            Some(Open::Message {
                id,
                mut parts,
                current,
            }) => {
                if let Some((kind, text)) = current {
                    parts.push(match kind {
                        PartKind::Text => text_part(&text),
                        PartKind::Refusal => json!({"type": "refusal", "refusal": text}),
                    });
                }
                json!({"type": "message", "id": id, "status": "incomplete", "role": "assistant", "content": parts})
            }
            Some(Open::Call {
                id,
                call_id,
                name,
                arguments,
                tool,
                custom,
                ..
            }) => {
                let mut item = call_item(CallItem {
                    id: &id,
                    call_id: &call_id,
                    name: &name,
                    tool: tool.as_ref(),
                    arguments: &arguments,
                    status: "incomplete",
                });
                // Cut arguments do not parse: the input is what was streamed of it.
                if let Some(custom) = custom.filter(|c| !c.sent.is_empty()) {
                    if tools::declared_input(&arguments).is_none() {
                        item["input"] = json!(custom.sent);
                    }
                }
                item
            }
        };
        self.output.push(item);
    }

    /// Events for one canonical chunk (`{model?, choices: [{index, delta, finish_reason}]}`);
    /// only the choice with index 0 is rendered.
    pub fn chunk(&mut self, chunk: &Value) -> Vec<Event> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        if let Some(model) = chunk
            .get("model")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
        {
            self.model = model.to_owned();
        }
        let choices = chunk.get("choices").and_then(Value::as_array);
        let Some(choice) = choices.and_then(|c| {
            c.iter()
                .find(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0)
        }) else {
            return out;
        };
        let delta = choice.get("delta").unwrap_or(&Value::Null);

        let details: Vec<&Value> = delta
            .get("reasoning_details")
            .and_then(Value::as_array)
            .map(|d| d.iter().filter(|d| meaningful(d)).collect())
            .unwrap_or_default();
        let text = match delta.get("reasoning").and_then(Value::as_str) {
            Some(r) if !r.is_empty() => r.to_owned(),
            _ => details
                .iter()
                .filter_map(|d| {
                    d.get("text")
                        .or_else(|| d.get("summary"))
                        .and_then(Value::as_str)
                })
                .collect(),
        };
        if !text.is_empty() || !details.is_empty() {
            self.open_reasoning(&mut out);
            self.reasoning_delta(&text, &details, &mut out);
        }
        if let Some(text) = delta
            .get("content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            self.text_delta(PartKind::Text, text, &mut out);
        }
        if let Some(refusal) = delta
            .get("refusal")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            self.text_delta(PartKind::Refusal, refusal, &mut out);
        }
        for call in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.call_delta(call, &mut out);
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_owned());
            if reason == "error" {
                let error = choice.get("error").or_else(|| chunk.get("error"));
                let message = error
                    .and_then(|e| e.get("message"))
                    .and_then(Value::as_str)
                    .unwrap_or("The provider failed while answering");
                let status = error
                    .and_then(|e| e.get("code"))
                    .and_then(Value::as_u64)
                    .and_then(|c| u16::try_from(c).ok())
                    .unwrap_or(502);
                self.failure = Some((status, message.to_owned()));
            }
        }
        out
    }

    fn reasoning_delta(&mut self, text: &str, details: &[&Value], out: &mut Vec<Event>) {
        let index = self.output_index();
        let Some(Open::Reasoning {
            id,
            text: mut all,
            details: mut merged,
            summary_open,
        }) = self.open.take()
        else {
            return;
        };
        let mut summary_open = summary_open;
        if !text.is_empty() {
            if !summary_open {
                out.push(self.event(
                    "response.reasoning_summary_part.added",
                    json!({"item_id": id, "output_index": index, "summary_index": 0,
                           "part": {"type": "summary_text", "text": ""}}),
                ));
                summary_open = true;
            }
            out.push(self.event(
                "response.reasoning_summary_text.delta",
                json!({"item_id": id, "output_index": index, "summary_index": 0, "delta": text}),
            ));
            all.push_str(text);
        }
        for d in details {
            merge_detail(&mut merged, d);
        }
        self.open = Some(Open::Reasoning {
            id,
            text: all,
            details: merged,
            summary_open,
        });
    }

    fn text_delta(&mut self, kind: PartKind, piece: &str, out: &mut Vec<Event>) {
        self.open_part(kind, out);
        let index = self.output_index();
        let Some(Open::Message {
            id,
            parts,
            current: Some((_, text)),
        }) = &mut self.open
        else {
            return;
        };
        text.push_str(piece);
        let (id, content_index) = (id.clone(), parts.len());
        let event = match kind {
            PartKind::Text => self.event(
                "response.output_text.delta",
                json!({"item_id": id, "output_index": index, "content_index": content_index, "delta": piece, "logprobs": []}),
            ),
            PartKind::Refusal => self.event(
                "response.refusal.delta",
                json!({"item_id": id, "output_index": index, "content_index": content_index, "delta": piece}),
            ),
        };
        out.push(event);
    }

    fn call_delta(&mut self, call: &Value, out: &mut Vec<Event>) {
        let chat_index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
        let function = call.get("function");
        let arguments = function
            .and_then(|f| f.get("arguments"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let name = function
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if let Some(done) = self
            .finished_calls
            .iter_mut()
            .find(|c| c.chat_index == chat_index)
        {
            // Arguments for a call already closed (another item came in between): they still
            // belong to it, and the final response carries them whole.
            done.arguments.push_str(arguments);
            if let Some(item) = self.output.get_mut(done.position) {
                if item["type"] == "custom_tool_call" {
                    item["input"] = json!(tools::custom_input(&done.arguments));
                } else {
                    item["arguments"] = json!(done.arguments);
                }
            }
            return;
        }
        let same = matches!(&self.open, Some(Open::Call { index, .. }) if *index == chat_index);
        if !same {
            self.close("completed", out);
            let position = self.output_index();
            let tool = self.kinds.get(name).cloned();
            let id = item_id(call_prefix(tool.as_ref()), &self.ctx, position);
            let call_id = call
                .get("id")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .map_or_else(
                    || format!("call_{}_{chat_index}", self.ctx.id),
                    str::to_owned,
                );
            let item = call_item(CallItem {
                id: &id,
                call_id: &call_id,
                name,
                tool: tool.as_ref(),
                arguments: "",
                status: "in_progress",
            });
            self.add_item(item, out);
            let custom = tool
                .as_ref()
                .is_some_and(|t| t.custom)
                .then(CustomInput::default);
            self.open = Some(Open::Call {
                id,
                index: chat_index,
                call_id,
                name: name.to_owned(),
                arguments: String::new(),
                tool,
                custom,
            });
        }
        let index = self.output_index();
        let Some(Open::Call {
            id,
            name: open_name,
            arguments: all,
            custom,
            ..
        }) = &mut self.open
        else {
            return;
        };
        if open_name.is_empty() && !name.is_empty() {
            *open_name = name.to_owned();
        }
        if arguments.is_empty() {
            return;
        }
        all.push_str(arguments);
        let id = id.clone();
        let event = match custom {
            Some(custom) => {
                let piece = custom.stream.advance(all);
                custom.sent.push_str(&piece);
                ("response.custom_tool_call_input.delta", piece)
            }
            None => (
                "response.function_call_arguments.delta",
                arguments.to_owned(),
            ),
        };
        if !event.1.is_empty() {
            out.push(self.event(
                event.0,
                json!({"item_id": id, "output_index": index, "delta": event.1}),
            ));
        }
    }

    /// The closing events: the open item's done events, then `response.completed` (or
    /// `response.incomplete` when the answer was cut short) with the final canonical usage.
    /// `completed_at` is the Unix time the answer ended.
    pub fn finish(&mut self, usage: &Value, completed_at: u64) -> Vec<Event> {
        if self.ended {
            return Vec::new();
        }
        if let Some((status, message)) = self.failure.take() {
            return self.error(status, &message);
        }
        let (status, incomplete) = outcome(self.finish_reason.as_deref());
        let item_status = if status == "completed" {
            "completed"
        } else {
            "incomplete"
        };
        let mut out = Vec::new();
        self.close(item_status, &mut out);
        self.ended = true;
        let mut response = self.snapshot(
            status,
            self.output.clone(),
            Some(usage_from_chat(usage)),
            Some(completed_at),
        );
        response["incomplete_details"] = incomplete;
        let kind = if status == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        out.push(self.event(kind, json!({"response": response})));
        out
    }

    /// A failure after the stream started: an `error` event, then `response.failed` whose
    /// output holds what was produced (an unfinished item with status `incomplete`).
    pub fn error(&mut self, status: u16, message: &str) -> Vec<Event> {
        if self.ended {
            return Vec::new();
        }
        self.ended = true;
        self.abandon();
        let code = error_code(status);
        let mut out = vec![self.event(
            "error",
            json!({"code": code, "message": message, "param": Value::Null}),
        )];
        let mut response = self.snapshot("failed", self.output.clone(), None, None);
        response["error"] = json!({"code": code, "message": message});
        response["error_type"] = json!(error_type_for_status(status));
        out.push(self.event("response.failed", json!({"response": response})));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seals by prefixing and reversing the bytes: trivial, reversible, never the plain text.
    struct TestSealer;

    impl Sealer for TestSealer {
        fn seal(&self, plain: &[u8]) -> String {
            let reversed: Vec<u8> = plain.iter().rev().copied().collect();
            format!("t1:{}", String::from_utf8_lossy(&reversed))
        }

        fn open(&self, sealed: &str) -> Option<Vec<u8>> {
            let body = sealed.strip_prefix("t1:")?;
            Some(body.bytes().rev().collect())
        }
    }

    fn translate(body: Value) -> Value {
        request_to_chat(&body, &TestSealer).expect("valid")
    }

    fn refusal(body: Value) -> String {
        request_to_chat(&body, &TestSealer).expect_err("refused").0
    }

    fn with(fields: Value) -> Value {
        let mut body = json!({"model": "m/x", "input": "hi"});
        for (k, v) in fields.as_object().expect("object") {
            body[k.as_str()] = v.clone();
        }
        body
    }

    /// The parameters of the function a custom tool becomes.
    fn input_param() -> Value {
        json!({"type": "object", "properties": {"input": {"type": "string", "description": "The tool's input, as free-form text."}}, "required": ["input"], "additionalProperties": false})
    }

    #[test]
    fn fields_map_to_the_chat_request() {
        // (Responses fields, expected chat fields)
        let cases = [
            (json!({"max_output_tokens": 50}), json!({"max_tokens": 50})),
            (
                json!({"temperature": 0.2, "top_p": 0.5}),
                json!({"temperature": 0.2, "top_p": 0.5}),
            ),
            (
                json!({"tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": null}], "tool_choice": "required", "parallel_tool_calls": false}),
                json!({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}], "tool_choice": "required", "parallel_tool_calls": false}),
            ),
            (
                json!({"tools": [{"type": "function", "name": "f"}], "tool_choice": {"type": "function", "name": "f"}}),
                json!({"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "function", "function": {"name": "f"}}}),
            ),
            // Without tools, tool settings that change nothing are left out.
            (
                json!({"tools": [], "tool_choice": "auto", "parallel_tool_calls": true}),
                json!({}),
            ),
            (json!({"tool_choice": "none"}), json!({})),
            (
                json!({"tool_choice": "required"}),
                json!({"tool_choice": "required"}),
            ),
            (
                json!({"reasoning": {"effort": "low", "summary": "detailed", "max_tokens": null}}),
                json!({"reasoning": {"effort": "low", "summary": "detailed"}}),
            ),
            (
                json!({"text": {"format": {"type": "json_object"}, "verbosity": "high"}}),
                json!({"response_format": {"type": "json_object"}, "verbosity": "high"}),
            ),
            (json!({"text": {"format": {"type": "text"}}}), json!({})),
            (
                json!({"text": {"format": {"type": "json_schema", "name": "n", "schema": {"type": "object"}, "strict": true}}}),
                json!({"response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object"}, "strict": true}}}),
            ),
            (
                json!({"metadata": {"k": "v"}}),
                json!({"metadata": {"k": "v"}}),
            ),
            (json!({"safety_identifier": "u"}), json!({"user": "u"})),
            (
                json!({"user": "u", "safety_identifier": "u"}),
                json!({"user": "u"}),
            ),
            (
                json!({"prompt_cache_key": "c"}),
                json!({"prompt_cache_key": "c", "session_id": "c"}),
            ),
            (
                json!({"prompt_cache_key": "c", "session_id": "s"}),
                json!({"prompt_cache_key": "c", "session_id": "s"}),
            ),
            (
                json!({"store": false, "background": false, "truncation": "disabled", "include": ["reasoning.encrypted_content"], "previous_response_id": null}),
                json!({}),
            ),
            (
                json!({"models": ["a/b"], "provider": {"sort": "price"}, "route": "fallback", "stream": true}),
                json!({"models": ["a/b"], "provider": {"sort": "price"}, "route": "fallback", "stream": true}),
            ),
            (
                json!({"top_k": 4, "frequency_penalty": 0.1, "presence_penalty": 0.2, "service_tier": "flex", "modalities": ["text"]}),
                json!({"top_k": 4, "frequency_penalty": 0.1, "presence_penalty": 0.2, "service_tier": "flex", "modalities": ["text"]}),
            ),
            // A custom tool is a function of one string, `input`; its format is in the description.
            (
                json!({"tools": [{"type": "custom", "name": "apply_patch", "description": "Edit files."}], "tool_choice": {"type": "custom", "name": "apply_patch"}}),
                json!({"tools": [{"type": "function", "function": {"name": "apply_patch",
                    "description": "Edit files.\n\nCall this tool with its whole input as the string argument `input`: free-form text, not JSON.",
                    "parameters": input_param()}}],
                    "tool_choice": {"type": "function", "function": {"name": "apply_patch"}}}),
            ),
            (
                json!({"tools": [{"type": "custom", "name": "digits", "format": {"type": "grammar", "syntax": "regex", "definition": "[0-9]+"}}]}),
                json!({"tools": [{"type": "function", "function": {"name": "digits",
                    "description": "Call this tool with its whole input as the string argument `input`: free-form text, not JSON. The input must match this regular expression:\n```regex\n[0-9]+\n```",
                    "parameters": input_param()}}]}),
            ),
            (
                json!({"tools": [{"type": "custom", "name": "js", "description": "Run code.", "format": {"type": "grammar", "syntax": "lark", "definition": "\nstart: SOURCE\nSOURCE: /.+/\n"}}]}),
                json!({"tools": [{"type": "function", "function": {"name": "js",
                    "description": "Run code.\n\nCall this tool with its whole input as the string argument `input`: free-form text, not JSON. The input must match this Lark grammar:\n```lark\nstart: SOURCE\nSOURCE: /.+/\n```",
                    "parameters": input_param()}}]}),
            ),
            (
                json!({"tools": [{"type": "custom", "name": "note", "format": {"type": "text"}}]}),
                json!({"tools": [{"type": "function", "function": {"name": "note",
                    "description": "Call this tool with its whole input as the string argument `input`: free-form text, not JSON.",
                    "parameters": input_param()}}]}),
            ),
            // Namespace members become tools of their own, named namespace__name.
            (
                json!({"tools": [{"type": "namespace", "name": "crm", "description": "Customer records.", "tools": [
                    {"type": "function", "name": "lookup", "description": "Find a customer.", "parameters": {"type": "object"}, "strict": false},
                    {"type": "function", "name": "list"},
                    {"type": "custom", "name": "query"},
                ]}], "tool_choice": {"type": "function", "name": "lookup", "namespace": "crm"}, "parallel_tool_calls": false}),
                json!({"tools": [
                    {"type": "function", "function": {"name": "crm__lookup", "description": "Find a customer.\n\nThis tool belongs to the `crm` group: Customer records.", "parameters": {"type": "object"}, "strict": false}},
                    {"type": "function", "function": {"name": "crm__list", "description": "This tool belongs to the `crm` group: Customer records."}},
                    {"type": "function", "function": {"name": "crm__query", "description": "This tool belongs to the `crm` group: Customer records.\n\nCall this tool with its whole input as the string argument `input`: free-form text, not JSON.", "parameters": input_param()}},
                ], "tool_choice": {"type": "function", "function": {"name": "crm__lookup"}}, "parallel_tool_calls": false}),
            ),
            (
                json!({"tools": [{"type": "namespace", "name": "clock", "description": "", "tools": [{"type": "function", "name": "sleep", "description": "Pause."}]}]}),
                json!({"tools": [{"type": "function", "function": {"name": "clock__sleep", "description": "Pause."}}]}),
            ),
            // A custom tool named without its namespace is the one member of that name.
            (
                json!({"tools": [{"type": "namespace", "name": "functions", "description": "", "tools": [{"type": "custom", "name": "exec"}]}], "tool_choice": {"type": "custom", "name": "exec"}}),
                json!({"tools": [{"type": "function", "function": {"name": "functions__exec",
                    "description": "Call this tool with its whole input as the string argument `input`: free-form text, not JSON.",
                    "parameters": input_param()}}],
                    "tool_choice": {"type": "function", "function": {"name": "functions__exec"}}}),
            ),
            // Reasoning from every turn given is what the gateway forwards anyway.
            (
                json!({"reasoning": {"effort": "low", "context": "all_turns"}}),
                json!({"reasoning": {"effort": "low"}}),
            ),
            (json!({"reasoning": {"context": "auto"}}), json!({})),
            (
                json!({"reasoning": {"effort": "none"}}),
                json!({"reasoning": {"effort": "none"}}),
            ),
            // Client descriptions are checked, never forwarded.
            (
                json!({"client_metadata": {"session_id": "s", "x-codex-turn-metadata": "{\"turn\":1}"}}),
                json!({}),
            ),
            (json!({"include": [], "tools": []}), json!({})),
        ];
        for (fields, expected) in cases {
            let out = translate(with(fields.clone()));
            let mut want = json!({"model": "m/x", "messages": [{"role": "user", "content": "hi"}]});
            for (k, v) in expected.as_object().expect("object") {
                want[k.as_str()] = v.clone();
            }
            assert_eq!(out, want, "{fields}");
            switchyard_core::chat::ChatRequest::from_value(out).expect("a valid chat request");
        }
    }

    #[test]
    fn every_refusal_names_its_field() {
        let long = "x".repeat(257);
        // (request, text the message starts with)
        let cases = [
            (json!("hi"), "The request body must be a JSON object"),
            (json!({"model": "m/x"}), "input: field required"),
            (json!({"input": []}), "input: at least one item"),
            (json!({"input": 5}), "input: must be a string or an array"),
            (with(json!({"model": 1})), "model: must be a string"),
            (with(json!({"instructions": ["x"]})), "instructions: must be a string"),
            (with(json!({"previous_response_id": "resp_1"})), "previous_response_id: not supported: this gateway keeps no conversation state; send the whole conversation in input"),
            (with(json!({"store": true})), "store: true is not supported: this gateway keeps no conversation state"),
            (with(json!({"conversation": "conv_1"})), "conversation: not supported"),
            (with(json!({"prompt": {"id": "pmpt_1"}})), "prompt: not supported"),
            (with(json!({"background": true})), "background: true is not supported"),
            (with(json!({"truncation": "auto"})), "truncation: \"auto\" is not supported"),
            (with(json!({"include": ["file_search_call.results"]})), "include[0]: \"file_search_call.results\" is not supported"),
            (with(json!({"include": ["reasoning.encrypted_content", "message.output_text.logprobs"]})), "include[1]:"),
            (with(json!({"top_logprobs": 2})), "top_logprobs: not supported"),
            (with(json!({"max_tool_calls": 3})), "max_tool_calls: not supported"),
            (with(json!({"stop_server_tools_when": {}})), "stop_server_tools_when: not supported"),
            (with(json!({"debug": {"echo_upstream_body": true}})), "debug: not supported"),
            (with(json!({"image_config": {}})), "image_config: not supported"),
            (with(json!({"modalities": ["text", "image"]})), "modalities:"),
            (with(json!({"stream_options": {}})), "stream_options: unknown field"),
            (with(json!({"max_output_tokens": 0})), "max_output_tokens: must be a positive integer"),
            (with(json!({"stream": "yes"})), "stream: must be a boolean"),
            (with(json!({"user": long})), "user: must be at most 256 characters"),
            (with(json!({"metadata": {"k": 1}})), "metadata.k: must be a string"),
            (with(json!({"metadata": {"a[b]": "v"}})), "metadata.a[b]: keys are"),
            (with(json!({"metadata": ["x"]})), "metadata: must be an object"),
            (with(json!({"user": "a", "safety_identifier": "b"})), "safety_identifier: differs from user"),
            (with(json!({"reasoning": {"effort": "low", "mode": "pro"}})), "reasoning.mode: not supported"),
            (with(json!({"reasoning": {"context": "last_turn"}})), "reasoning.context: must be"),
            (with(json!({"client_metadata": {"turn": 1}})), "client_metadata.turn: must be a string"),
            (with(json!({"client_metadata": "x"})), "client_metadata: must be an object"),
            (with(json!({"tools": [{"type": "custom"}]})), "tools[0].name: field required"),
            (with(json!({"tools": [{"type": "custom", "name": "c", "format": {"type": "grammar", "syntax": "ebnf", "definition": "x"}}]})), "tools[0].format.syntax: must be \"lark\" or \"regex\""),
            (with(json!({"tools": [{"type": "custom", "name": "c", "format": {"type": "grammar", "syntax": "lark"}}]})), "tools[0].format.definition: field required"),
            (with(json!({"tools": [{"type": "custom", "name": "c", "format": {"type": "json"}}]})), "tools[0].format.type: must be"),
            (with(json!({"tools": [{"type": "custom", "name": "c", "format": {"type": "text", "strict": true}}]})), "tools[0].format.strict: unknown field"),
            (with(json!({"tools": [{"type": "custom", "name": "c", "parameters": {}}]})), "tools[0].parameters: unknown field"),
            (with(json!({"tools": [{"type": "custom", "name": "c", "defer_loading": true}]})), "tools[0].defer_loading: not supported"),
            (with(json!({"tools": [{"type": "namespace", "name": "n", "description": "", "tools": [{"type": "namespace", "name": "m", "description": "", "tools": []}]}]})), "tools[0].tools[0].type: a namespace holds function and custom tools"),
            (with(json!({"tools": [{"type": "namespace", "name": "n", "description": "", "tools": [{"type": "web_search"}]}]})), "tools[0].tools[0].type: built-in tool \"web_search\""),
            (with(json!({"tools": [{"type": "namespace", "name": "n", "description": ""}]})), "tools[0].tools: must be an array"),
            (with(json!({"tools": [{"type": "namespace", "description": "", "tools": []}]})), "tools[0].name: field required"),
            (with(json!({"tools": [{"type": "namespace", "name": "n", "description": "", "tools": [], "strict": true}]})), "tools[0].strict: unknown field"),
            (with(json!({"tools": [{"type": "function", "name": "n__f"}, {"type": "namespace", "name": "n", "description": "", "tools": [{"type": "function", "name": "f"}]}]})), "tools[1].tools[0].name: a tool named \"n__f\" is already declared"),
            (with(json!({"tools": [{"type": "function", "name": "f"}], "input": [{"type": "additional_tools", "tools": [{"type": "custom", "name": "f"}]}]})), "input[0].tools[0].name: a tool named \"f\" is already declared"),
            (with(json!({"input": [{"type": "additional_tools", "role": "developer"}]})), "input[0].tools: must be an array"),
            (with(json!({"input": [{"type": "additional_tools", "tools": [], "note": "x"}]})), "input[0].note: unknown field"),
            (with(json!({"input": [{"type": "additional_tools", "tools": [{"type": "mcp"}]}]})), "input[0].tools[0].type: built-in tool \"mcp\""),
            (with(json!({"tool_choice": {"type": "custom"}})), "tool_choice.name: field required when type is \"custom\""),
            (with(json!({"tool_choice": {"type": "function", "name": "f", "namespace": 1}})), "tool_choice.namespace: must be a string"),
            (with(json!({"input": [{"type": "custom_tool_call", "call_id": "c", "name": "exec"}]})), "input[0].input: field required"),
            (with(json!({"input": [{"type": "custom_tool_call", "call_id": "c", "name": "exec", "input": "x", "arguments": "{}"}]})), "input[0].arguments: unknown field"),
            (with(json!({"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}", "namespace": 2}]})), "input[0].namespace: must be a string"),
            (with(json!({"input": [{"type": "custom_tool_call_output", "call_id": "c", "output": 5}]})), "input[0].output: must be a string or an array"),
            (with(json!({"reasoning": {"budget": 1}})), "reasoning.budget: unknown field"),
            (with(json!({"text": {"format": {"type": "json_schema", "schema": {}}}})), "text.format.name: field required"),
            (with(json!({"text": {"format": {"type": "grammar"}}})), "text.format.type:"),
            (with(json!({"text": {"stop": "x"}})), "text.stop: unknown field"),
            (with(json!({"tool_choice": "any"})), "tool_choice: must be"),
            (with(json!({"tool_choice": {"type": "web_search_preview"}})), "tool_choice.type: \"web_search_preview\" is not supported"),
            (with(json!({"tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": []}})), "tool_choice.type: \"allowed_tools\""),
            (with(json!({"tools": [{"type": "function"}]})), "tools[0].name: field required"),
            (with(json!({"tools": [{"type": "function", "name": "f", "defer_loading": true}]})), "tools[0].defer_loading: not supported"),
            (with(json!({"tools": [{"type": "function", "name": "f", "cache": 1}]})), "tools[0].cache: unknown field"),
            (with(json!({"tools": [{"type": "function", "name": "f"}, {"type": "web_search"}]})), "tools[1].type: built-in tool \"web_search\" is not supported"),
            (with(json!({"input": [{"role": "user", "content": "x", "name": "n"}]})), "input[0].name: unknown field"),
            (with(json!({"input": [{"role": "tool", "content": "x"}]})), "input[0].role: \"tool\""),
            (with(json!({"input": [{"content": "x"}]})), "input[0].type: field required"),
            (with(json!({"input": [{"role": "user"}]})), "input[0].content: field required"),
            (with(json!({"input": [{"type": "item_reference", "id": "msg_1"}]})), "input[0].type: item_reference is not supported"),
            (with(json!({"input": [{"type": "local_shell_call", "call_id": "c"}]})), "input[0].type: \"local_shell_call\" items are not supported"),
            (with(json!({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]})), "input[0].call_id: field required"),
            (with(json!({"input": [{"type": "function_call_output", "call_id": "c"}]})), "input[0].output: field required"),
            (with(json!({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]})), "input[0].content[0].file_id: uploaded files are not supported"),
            (with(json!({"input": [{"role": "user", "content": [{"type": "input_file", "filename": "a.pdf"}]}]})), "input[0].content[0]: an input_file needs"),
            (with(json!({"input": [{"role": "system", "content": [{"type": "input_image", "image_url": "https://x/y.png"}]}]})), "input[0].content[0].type: input_image parts are only accepted"),
            (with(json!({"input": [{"role": "user", "content": [{"type": "refusal", "refusal": "no"}]}]})), "input[0].content[0].type: \"refusal\" parts"),
            (with(json!({"input": [{"type": "reasoning", "summary": [], "encrypted_content": "garbage"}, {"role": "assistant", "content": "x"}]})), "input[0].encrypted_content: was not issued by this gateway"),
            (with(json!({"input": [{"type": "reasoning", "summary": [], "encrypted_content": "t1:}{"}, {"role": "assistant", "content": "x"}]})), "input[0].encrypted_content:"),
            (with(json!({"input": [{"role": "user", "content": "q"}, {"type": "reasoning", "summary": [{"type": "summary_text", "text": "t"}]}, {"role": "user", "content": "again"}]})), "input[1]: a reasoning item must be followed"),
            (with(json!({"input": [{"type": "reasoning", "summary": [{"type": "reasoning_text", "text": "t"}]}]})), "input[0].summary[0].type: must be summary_text"),
        ];
        for (body, needle) in cases {
            let message = refusal(body.clone());
            assert!(
                message.starts_with(needle),
                "{body}\n  expected a message starting with {needle:?}\n  got {message:?}"
            );
        }
    }

    #[test]
    fn messages_and_parts() {
        let out = translate(json!({
            "instructions": "Be brief.",
            "input": [
                {"role": "system", "content": [{"type": "input_text", "text": "S1"}, {"type": "input_text", "text": "S2"}]},
                {"role": "user", "content": [
                    {"type": "input_text", "text": "cached", "prompt_cache_breakpoint": {"mode": "explicit"}},
                    {"type": "input_image", "image_url": "https://x/y.png"},
                    {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,AAA"},
                    {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}},
                    {"type": "input_video", "video_url": "https://x/v.mp4"},
                ]},
                {"type": "message", "role": "assistant", "content": [{"type": "refusal", "refusal": "I can't."}]},
                {"role": "user", "content": "ok"},
                {"type": "message", "role": "assistant", "content": "Sure", "phase": "final_answer"},
            ],
        }));
        let m = &out["messages"];
        assert_eq!(m[0], json!({"role": "system", "content": "Be brief."}));
        assert_eq!(
            m[1],
            json!({"role": "system", "content": [{"type": "text", "text": "S1"}, {"type": "text", "text": "S2"}]})
        );
        assert_eq!(
            m[2]["content"][0]["cache_control"],
            json!({"type": "ephemeral"})
        );
        assert_eq!(
            m[2]["content"][1],
            json!({"type": "image_url", "image_url": {"url": "https://x/y.png"}})
        );
        assert_eq!(
            m[2]["content"][2],
            json!({"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,AAA"}})
        );
        assert_eq!(m[2]["content"][3]["input_audio"]["format"], "wav");
        assert_eq!(
            m[2]["content"][4],
            json!({"type": "video_url", "video_url": {"url": "https://x/v.mp4"}})
        );
        assert_eq!(
            m[3],
            json!({"role": "assistant", "content": "I can't.", "refusal": "I can't."})
        );
        // A trailing assistant message is a prefill.
        assert_eq!(m[5], json!({"role": "assistant", "content": "Sure"}));
        switchyard_core::chat::ChatRequest::from_value(out).expect("valid chat request");
    }

    #[test]
    fn custom_and_namespaced_calls_are_chat_tool_calls() {
        let out = translate(json!({
            "tools": [{"type": "function", "name": "plain"}],
            "input": [
                {"type": "additional_tools", "id": "at_1", "role": "developer", "tools": [
                    {"type": "namespace", "name": "functions", "description": "", "tools": [{"type": "custom", "name": "exec"}]},
                    {"type": "namespace", "name": "collaboration", "description": "Agents.", "tools": [{"type": "function", "name": "spawn_agent"}]},
                ]},
                {"role": "user", "content": "go"},
                // Echoed without its namespace, as a client that was not sent one does.
                {"type": "custom_tool_call", "id": "ctc_1", "call_id": "c1", "name": "exec", "input": "text(\"hi\")", "status": "completed"},
                {"type": "custom_tool_call", "call_id": "c2", "namespace": "functions", "name": "exec", "input": "exit()"},
                {"type": "function_call", "call_id": "c3", "namespace": "collaboration", "name": "spawn_agent", "arguments": "{}"},
                {"type": "function_call", "call_id": "c4", "name": "plain", "arguments": "{}"},
                {"type": "custom_tool_call_output", "id": "ctco_1", "call_id": "c1", "output": [
                    {"type": "input_text", "text": "Script completed\n"}, {"type": "input_text", "text": "hi"},
                ]},
                {"type": "custom_tool_call_output", "call_id": "c2", "output": "done"},
                {"type": "additional_tools", "tools": [{"type": "function", "name": "late"}]},
                {"type": "function_call_output", "call_id": "c3", "output": "spawned"},
                {"type": "function_call_output", "call_id": "c4", "output": "ok"},
            ],
        }));
        let names: Vec<&str> = out["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .map(|t| t["function"]["name"].as_str().expect("name"))
            .collect();
        assert_eq!(
            names,
            [
                "plain",
                "functions__exec",
                "collaboration__spawn_agent",
                "late"
            ],
            "tools in order: the request's, then each additional_tools item's"
        );
        let m = &out["messages"];
        assert_eq!(m.as_array().map(Vec::len), Some(6), "{m:#}");
        assert_eq!(m[0], json!({"role": "user", "content": "go"}));
        assert_eq!(
            m[1]["tool_calls"],
            json!([
                {"id": "c1", "type": "function", "function": {"name": "functions__exec", "arguments": "{\"input\":\"text(\\\"hi\\\")\"}"}},
                {"id": "c2", "type": "function", "function": {"name": "functions__exec", "arguments": "{\"input\":\"exit()\"}"}},
                {"id": "c3", "type": "function", "function": {"name": "collaboration__spawn_agent", "arguments": "{}"}},
                {"id": "c4", "type": "function", "function": {"name": "plain", "arguments": "{}"}},
            ])
        );
        assert_eq!(
            m[2],
            json!({"role": "tool", "tool_call_id": "c1", "content": [
                {"type": "text", "text": "Script completed\n"}, {"type": "text", "text": "hi"},
            ]})
        );
        assert_eq!(
            m[3],
            json!({"role": "tool", "tool_call_id": "c2", "content": "done"})
        );
        assert_eq!(m[4]["tool_call_id"], "c3");
        assert_eq!(m[5]["tool_call_id"], "c4");
        switchyard_core::chat::ChatRequest::from_value(out).expect("a valid chat request");
    }

    #[test]
    fn current_turn_context_forgets_earlier_reasoning() {
        let input = json!([
            {"role": "user", "content": "first"},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "old thought"}], "signature": "s1"},
            {"role": "assistant", "content": "one"},
            {"role": "user", "content": "second"},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "new thought"}], "signature": "s2"},
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c", "output": "r"},
        ]);
        // (reasoning.context, reasoning kept on the earlier turn's assistant message)
        let cases = [
            (json!("current_turn"), false),
            (json!("all_turns"), true),
            (json!("auto"), true),
            (Value::Null, true),
        ];
        for (context, kept) in cases {
            let out = translate(
                json!({"input": input, "reasoning": {"effort": "high", "context": context}}),
            );
            let m = &out["messages"];
            assert_eq!(m[1]["reasoning"].is_string(), kept, "{context}");
            assert_eq!(m[1]["reasoning_details"].is_array(), kept, "{context}");
            assert_eq!(
                m[3]["reasoning"], "new thought",
                "{context}: this turn's stays"
            );
            assert_eq!(m[3]["reasoning_details"][0]["signature"], "s2", "{context}");
        }
    }

    #[test]
    fn reasoning_without_a_sealed_blob() {
        // OpenRouter-style reasoning items carry the text and signature in the clear.
        let out = translate(json!({"input": [
            {"role": "user", "content": "q"},
            {"type": "reasoning", "id": "r1", "summary": [{"type": "summary_text", "text": "short"}],
             "content": [{"type": "reasoning_text", "text": "long form"}],
             "signature": "sig", "format": "anthropic-claude-v1"},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "done"},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "only a summary"}]},
            {"role": "assistant", "content": [{"type": "output_text", "text": "answer"}]},
        ]}));
        let m = &out["messages"];
        assert_eq!(m[1]["reasoning"], "long form");
        assert_eq!(
            m[1]["reasoning_details"],
            json!([{"type": "reasoning.text", "text": "long form", "signature": "sig", "format": "anthropic-claude-v1", "index": 0}])
        );
        assert_eq!(m[3]["reasoning"], "only a summary");
        assert!(m[3].get("reasoning_details").is_none());
    }

    fn ctx() -> ResponseContext {
        ResponseContext {
            id: "gen-1".into(),
            created_at: 10,
            completed_at: Some(12),
            request: json!({"model": "m/x", "input": "hi"}),
        }
    }

    #[test]
    fn statuses_follow_the_finish_reason() {
        // (finish_reason, status, incomplete reason, last item status)
        let cases = [
            ("stop", "completed", Value::Null, "completed"),
            ("tool_calls", "completed", Value::Null, "completed"),
            (
                "length",
                "incomplete",
                json!("max_output_tokens"),
                "incomplete",
            ),
            (
                "content_filter",
                "incomplete",
                json!("content_filter"),
                "incomplete",
            ),
            ("error", "failed", Value::Null, "incomplete"),
        ];
        for (finish, status, reason, item) in cases {
            let completion = json!({"model": "m/x", "choices": [{"index": 0, "finish_reason": finish,
                "error": {"code": 429, "message": "slow down"},
                "message": {"role": "assistant", "content": "partial"}}]});
            let out = response_from_chat(&completion, &ctx(), &TestSealer);
            assert_eq!(out["status"], status, "{finish}");
            assert_eq!(out["incomplete_details"]["reason"], reason, "{finish}");
            assert_eq!(out["output"][0]["status"], item, "{finish}");
            if finish == "error" {
                assert_eq!(
                    out["error"],
                    json!({"code": "rate_limit_exceeded", "message": "slow down"})
                );
                assert_eq!(out["error_type"], "rate_limit_exceeded");
            } else {
                assert!(out["error"].is_null());
            }
        }
    }

    #[test]
    fn reasoning_text_is_never_sealed_in_the_clear() {
        let completion = json!({"model": "m/x", "choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "a",
        "reasoning_details": [
            {"type": "reasoning.summary", "summary": "plan", "format": "openai-responses-v1", "index": 0},
            {"type": "reasoning.encrypted", "data": "opaque", "format": "openai-responses-v1", "index": 1},
            {"type": "reasoning.text", "text": "", "format": "unknown", "index": 2},
        ]}}]});
        let out = response_from_chat(&completion, &ctx(), &TestSealer);
        let item = &out["output"][0];
        assert_eq!(
            item["summary"],
            json!([{"type": "summary_text", "text": "plan"}])
        );
        let sealed = item["encrypted_content"].as_str().expect("sealed");
        assert!(!sealed.contains("plan"), "{sealed}");
        let opened: Value =
            serde_json::from_slice(&TestSealer.open(sealed).expect("opens")).expect("json");
        // Empty details carry nothing and are left out.
        assert_eq!(opened.as_array().map(Vec::len), Some(2));

        // Reasoning text without details: readable, nothing to seal.
        let completion = json!({"choices": [{"index": 0, "finish_reason": "stop", "message": {
            "role": "assistant", "content": "a", "reasoning": "thought"}}]});
        let out = response_from_chat(&completion, &ctx(), &TestSealer);
        assert_eq!(out["output"][0]["summary"][0]["text"], "thought");
        assert!(out["output"][0].get("encrypted_content").is_none());
        assert_eq!(
            out["model"], "m/x",
            "the requested model when the completion names none"
        );
    }

    #[test]
    fn usage_maps_with_cost() {
        let usage = usage_from_chat(&json!({
            "prompt_tokens": 100, "completion_tokens": 20, "cost": 0.5, "is_byok": true,
            "prompt_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 10},
            "completion_tokens_details": {"reasoning_tokens": 5},
            "cost_details": {"upstream_inference_cost": null, "upstream_inference_prompt_cost": 0.2, "upstream_inference_completions_cost": 0.3},
        }));
        assert_eq!(
            usage,
            json!({
                "input_tokens": 100, "input_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 10},
                "output_tokens": 20, "output_tokens_details": {"reasoning_tokens": 5},
                "total_tokens": 120, "cost": 0.5, "is_byok": true,
                "cost_details": {"upstream_inference_cost": null, "upstream_inference_input_cost": 0.2, "upstream_inference_output_cost": 0.3},
            })
        );
    }

    #[test]
    fn merging_streamed_details() {
        let mut details = Vec::new();
        for d in [
            json!({"type": "reasoning.text", "text": "a", "index": 0}),
            json!({"type": "reasoning.text", "text": "b", "index": 0}),
            json!({"type": "reasoning.text", "text": "", "signature": "s", "index": 0}),
            json!({"type": "reasoning.encrypted", "data": "d", "index": 1}),
            json!({"type": "reasoning.text", "text": "c"}),
        ] {
            merge_detail(&mut details, &d);
        }
        assert_eq!(
            details,
            vec![
                json!({"type": "reasoning.text", "text": "ab", "signature": "s", "index": 0}),
                json!({"type": "reasoning.encrypted", "data": "d", "index": 1}),
                json!({"type": "reasoning.text", "text": "c"}),
            ]
        );
    }

    fn run(chunks: &[Value]) -> (StreamTranscoder, Vec<Event>) {
        run_with(ctx(), chunks)
    }

    fn run_with(ctx: ResponseContext, chunks: &[Value]) -> (StreamTranscoder, Vec<Event>) {
        let mut t = StreamTranscoder::new(ctx, "m/x", Arc::new(TestSealer));
        let mut events = t.start();
        for c in chunks {
            events.extend(t.chunk(c));
        }
        (t, events)
    }

    /// A context whose request declares a plain function, a namespaced function, a custom tool
    /// in a namespace, given in an `additional_tools` item, and a custom tool of its own.
    fn tools_ctx() -> ResponseContext {
        ResponseContext {
            request: json!({"model": "m/x", "tools": [
                {"type": "function", "name": "plain"},
                {"type": "custom", "name": "apply_patch"},
                {"type": "namespace", "name": "collaboration", "description": "", "tools": [{"type": "function", "name": "spawn_agent"}]},
            ], "input": [
                {"type": "additional_tools", "tools": [
                    {"type": "namespace", "name": "functions", "description": "", "tools": [{"type": "custom", "name": "exec"}]},
                ]},
                {"role": "user", "content": "hi"},
            ]}),
            ..ctx()
        }
    }

    #[test]
    fn calls_render_as_the_tools_were_declared() {
        // (chat tool name, chat arguments, expected output item without id and status)
        let cases = [
            (
                "plain",
                r#"{"a":1}"#,
                json!({"type": "function_call", "call_id": "c", "name": "plain", "arguments": "{\"a\":1}"}),
            ),
            (
                "unknown",
                "{}",
                json!({"type": "function_call", "call_id": "c", "name": "unknown", "arguments": "{}"}),
            ),
            (
                "apply_patch",
                r#"{"input":"*** Begin Patch"}"#,
                json!({"type": "custom_tool_call", "call_id": "c", "name": "apply_patch", "input": "*** Begin Patch"}),
            ),
            (
                "collaboration__spawn_agent",
                r#"{"task_name":"t"}"#,
                json!({"type": "function_call", "call_id": "c", "namespace": "collaboration", "name": "spawn_agent", "arguments": "{\"task_name\":\"t\"}"}),
            ),
            (
                "functions__exec",
                r#"{"input":"text(1)"}"#,
                json!({"type": "custom_tool_call", "call_id": "c", "namespace": "functions", "name": "exec", "input": "text(1)"}),
            ),
            // The member's own name, when no other tool has it, is that member.
            (
                "exec",
                r#"{"input":"text(2)"}"#,
                json!({"type": "custom_tool_call", "call_id": "c", "namespace": "functions", "name": "exec", "input": "text(2)"}),
            ),
            // Arguments not of the declared shape are handed on as the input.
            (
                "functions__exec",
                "text(3)",
                json!({"type": "custom_tool_call", "call_id": "c", "namespace": "functions", "name": "exec", "input": "text(3)"}),
            ),
        ];
        for (name, arguments, expected) in cases {
            let completion = json!({"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": null,
                "tool_calls": [{"id": "c", "type": "function", "function": {"name": name, "arguments": arguments}}]}}]});
            let out = response_from_chat(&completion, &tools_ctx(), &TestSealer);
            let mut item = out["output"][0].clone();
            let prefix = if expected["type"] == "custom_tool_call" {
                "ctc_"
            } else {
                "fc_"
            };
            assert!(
                item["id"].as_str().is_some_and(|id| id.starts_with(prefix)),
                "{name}: {item}"
            );
            assert_eq!(item["status"], "completed");
            for key in ["id", "status"] {
                item.as_object_mut().map(|i| i.remove(key));
            }
            assert_eq!(item, expected, "{name}");

            // The stream renders the same item, in whatever fragments the arguments come.
            let mut chunks = vec![json!({"choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": 0, "id": "c", "function": {"name": name, "arguments": ""}}]}}]})];
            let mut rest = arguments;
            while !rest.is_empty() {
                let cut = rest.char_indices().nth(3).map_or(rest.len(), |(i, _)| i);
                chunks.push(json!({"choices": [{"index": 0, "delta": {"tool_calls": [
                    {"index": 0, "function": {"arguments": &rest[..cut]}}]}}]}));
                rest = &rest[cut..];
            }
            chunks.push(
                json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
            );
            let (mut t, mut events) = run_with(tools_ctx(), &chunks);
            events.extend(t.finish(&json!({}), 12));
            let last = &events.last().expect("events").1["response"]["output"][0];
            assert_eq!(last, &out["output"][0], "{name}: streamed");
            let custom = expected["type"] == "custom_tool_call";
            let (delta, done) = if custom {
                (
                    "response.custom_tool_call_input.delta",
                    "response.custom_tool_call_input.done",
                )
            } else {
                (
                    "response.function_call_arguments.delta",
                    "response.function_call_arguments.done",
                )
            };
            let streamed: String = events
                .iter()
                .filter(|e| e.0 == delta)
                .map(|e| e.1["delta"].as_str().expect("delta"))
                .collect();
            let whole = if custom {
                &expected["input"]
            } else {
                &expected["arguments"]
            };
            assert_eq!(
                streamed,
                whole.as_str().expect("text"),
                "{name}: the deltas add up"
            );
            let done = events.iter().find(|e| e.0 == done).expect("a done event");
            if custom {
                assert_eq!(done.1["input"], *whole, "{name}");
            } else {
                assert_eq!(done.1["arguments"], *whole, "{name}");
                assert_eq!(done.1["name"], expected["name"], "{name}");
            }
            assert_eq!(
                events[2].1["item"]["type"], expected["type"],
                "{name}: added"
            );
            assert_eq!(
                events[2].1["item"].get("namespace"),
                expected.get("namespace"),
                "{name}: added"
            );
        }
    }

    #[test]
    fn late_input_for_a_closed_custom_call_still_counts() {
        let (mut t, mut events) = run_with(
            tools_ctx(),
            &[
                json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "functions__exec", "arguments": "{\"input\":\"a"}}]}}]}),
                json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 1, "id": "c2", "function": {"name": "plain", "arguments": "{}"}}]}}]}),
                json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "b\"}"}}]}}]}),
            ],
        );
        events.extend(t.finish(&json!({}), 12));
        let output = &events.last().expect("events").1["response"]["output"];
        assert_eq!(output[0]["input"], "ab");
        assert_eq!(output[1]["arguments"], "{}");
    }

    #[test]
    fn an_unfinished_custom_call_fails_incomplete() {
        let (mut t, mut events) = run_with(
            tools_ctx(),
            &[
                json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "apply_patch", "arguments": "{\"input\":\"*** Beg"}}]}}]}),
            ],
        );
        events.extend(t.error(502, "reset"));
        let output = &events.last().expect("events").1["response"]["output"];
        assert_eq!(
            output[0],
            json!({"type": "custom_tool_call", "id": "ctc_gen-1_0", "call_id": "c1", "name": "apply_patch",
                   "input": "*** Beg", "status": "incomplete"})
        );
        assert!(!events
            .iter()
            .any(|e| e.0 == "response.custom_tool_call_input.done"));
    }

    #[test]
    fn a_stream_cut_by_the_token_limit_is_incomplete() {
        let (mut t, mut events) = run(&[
            json!({"choices": [{"index": 0, "delta": {"content": "Once"}}]}),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}),
        ]);
        events.extend(t.finish(&json!({"prompt_tokens": 1, "completion_tokens": 1}), 12));
        let (kind, last) = events.last().expect("events");
        assert_eq!(*kind, "response.incomplete");
        assert_eq!(last["response"]["status"], "incomplete");
        assert_eq!(
            last["response"]["incomplete_details"]["reason"],
            "max_output_tokens"
        );
        assert_eq!(last["response"]["output"][0]["status"], "incomplete");
        assert_eq!(last["response"]["completed_at"], 12);
    }

    #[test]
    fn an_error_chunk_fails_the_stream() {
        let (mut t, mut events) = run(&[
            json!({"choices": [{"index": 0, "delta": {"content": "Hi"}}]}),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "error",
                   "error": {"code": 503, "message": "overloaded"}}]}),
        ]);
        events.extend(t.finish(&json!({}), 12));
        let kinds: Vec<&str> = events.iter().map(|e| e.0).collect();
        assert_eq!(
            kinds,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "error",
                "response.failed",
            ]
        );
        assert_eq!(events[5].1["code"], "server_error");
        assert_eq!(events[6].1["response"]["error"]["message"], "overloaded");
        assert_eq!(events[6].1["response"]["error_type"], "provider_overloaded");
        assert_eq!(
            events[6].1["response"]["output"][0]["content"][0]["text"],
            "Hi"
        );
    }

    #[test]
    fn refusals_and_late_arguments() {
        let (mut t, mut events) = run(&[
            json!({"choices": [{"index": 0, "delta": {"content": "Well"}}]}),
            json!({"choices": [{"index": 0, "delta": {"refusal": "No."}}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": "{\"a\""}}]}}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 1, "id": "c2", "function": {"name": "g", "arguments": "{}"}}]}}]}),
            // More arguments for the first call after the second opened.
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}}]}),
        ]);
        events.extend(t.finish(&json!({}), 12));
        let kinds: Vec<&str> = events.iter().map(|e| e.0).collect();
        assert!(
            kinds.contains(&"response.refusal.delta") && kinds.contains(&"response.refusal.done")
        );
        let output = &events.last().expect("events").1["response"]["output"];
        assert_eq!(
            output[0]["content"],
            json!([
                {"type": "output_text", "text": "Well", "annotations": []},
                {"type": "refusal", "refusal": "No."},
            ])
        );
        assert_eq!(
            output[1]["call_id"], "call_gen-1_0",
            "a call without an id gets one"
        );
        assert_eq!(output[1]["arguments"], "{\"a\":1}");
        assert_eq!(output[2]["name"], "g");
        for (i, (_, data)) in events.iter().enumerate() {
            assert_eq!(data["sequence_number"], i);
        }
    }

    #[test]
    fn error_bodies() {
        let cases = [
            (400, "invalid_request_error", "invalid_request"),
            (401, "authentication_error", "authentication"),
            (402, "insufficient_quota", "payment_required"),
            (429, "rate_limit_error", "rate_limit_exceeded"),
            (502, "server_error", "provider_unavailable"),
        ];
        for (status, kind, error_type) in cases {
            let body = error_body(status, "m");
            assert_eq!(body["error"]["code"], status);
            assert_eq!(body["error"]["type"], kind);
            assert_eq!(body["error"]["metadata"]["error_type"], error_type);
            assert_eq!(body["error"]["message"], "m");
        }
    }
}
