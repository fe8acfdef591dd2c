//! The top level of a Messages request (and of a `count_tokens` request): the fields read,
//! refused or passed through, `thinking` and `output_config` as canonical reasoning, and the
//! estimate of a request's input tokens.

use serde_json::{json, Map, Value};
use switchyard_core::chat::{ChatRequest, Content, ContentPart, Message};

use super::turns::{
    err, system_content, translate_tool, translate_tool_choice, translate_turn, MessagesError,
};

/// Fields of the Messages request that are read here; anything else passes through as an extra
/// member of the canonical request (or is refused, see [`REFUSED`]).
const TRANSLATED: &[&str] = &[
    "model",
    "models",
    "fallbacks",
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
    "output_config",
    "context_management",
    "cache_control",
    "speed",
];

/// Anthropic request fields that make Anthropic's servers run something whose results come back
/// as answer blocks the canonical answer cannot carry.
const REFUSED: &[(&str, &str)] = &[
    (
        "mcp_servers",
        "MCP servers called by Anthropic's servers are not supported; declare the tools and call them from the client",
    ),
    (
        "container",
        "code execution containers are not supported",
    ),
    (
        "debug",
        "debug.echo_upstream_body is served on the chat completions API only",
    ),
    ("n", "a Messages answer carries one message; send n on the chat completions API"),
];

/// Anthropic's effort levels (`output_config.effort`).
const EFFORTS: &[&str] = &["low", "medium", "high", "xhigh", "max"];

/// Anthropic's thinking displays (`thinking.display`; `updates` is a beta).
const THINKING_DISPLAYS: &[&str] = &["summarized", "omitted", "updates"];

/// The most entries `fallbacks` takes.
const MAX_FALLBACKS: usize = 3;

/// Which endpoint a body was sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    /// `POST /messages`: `max_tokens` is required.
    Create,
    /// `POST /messages/count_tokens`: nothing is generated, so no `max_tokens` or `stream`.
    CountTokens,
}

/// Translates a Messages API request body into a canonical chat request body (OpenAI shape,
/// ready for `ChatRequest::from_value`).
pub fn request_to_chat(body: &Value) -> Result<Value, MessagesError> {
    translate(body, Endpoint::Create)
}

/// Translates a `/messages/count_tokens` body (`model`, `messages`, `system`, `tools`,
/// `tool_choice`, `thinking`, `output_config`, `context_management`...) into a canonical chat
/// request body, as [`request_to_chat`] does, except that `max_tokens` is not required and
/// `stream` is refused.
///
/// The result is what gets counted: the Anthropic codec sends it to its upstream's
/// `count_tokens` (`switchyard_providers::anthropic::AnthropicCodec::encode_count_tokens`), and
/// [`estimate_input_tokens`] estimates it for the other provider kinds.
pub fn count_tokens_request(body: &Value) -> Result<Value, MessagesError> {
    translate(body, Endpoint::CountTokens)
}

/// The body of a `count_tokens` answer.
pub fn count_tokens_response(input_tokens: u64) -> Value {
    json!({ "input_tokens": input_tokens })
}

/// Tokens an image or another media part is estimated at: Anthropic's figure for an image of
/// about 1.15 megapixels, the largest it takes without resizing.
pub const MEDIA_PART_TOKENS: u64 = 1600;

/// An *estimate* of a request's input tokens, for endpoints that cannot count them: a quarter
/// of the characters of every text (system, messages, tool results, tool calls and their
/// arguments, reasoning sent back, and each tool's definition serialized as JSON), rounded up,
/// plus [`MEDIA_PART_TOKENS`] for each image, file, audio or video part. Tokenizers differ, and
/// a provider's own count (Anthropic's `count_tokens`) is to be preferred where there is one.
pub fn estimate_input_tokens(request: &ChatRequest) -> u64 {
    let mut chars: u64 = 0;
    let mut media: u64 = 0;
    for message in &request.messages {
        if let Some(content) = message.content() {
            let (c, m) = content_size(content);
            chars += c;
            media += m;
        }
        if let Message::Assistant {
            tool_calls,
            reasoning,
            ..
        } = message
        {
            for call in tool_calls.iter().flatten() {
                chars += char_count(&call.function.name) + char_count(&call.function.arguments);
            }
            chars += reasoning.as_deref().map_or(0, char_count);
        }
    }
    for tool in request.tools.iter().flatten() {
        chars += serde_json::to_string(tool).map_or(0, |s| char_count(&s));
    }
    chars.div_ceil(4) + media * MEDIA_PART_TOKENS
}

fn char_count(text: &str) -> u64 {
    text.chars().count() as u64
}

/// Characters of text and number of media parts.
fn content_size(content: &Content) -> (u64, u64) {
    match content {
        Content::Text(text) => (char_count(text), 0),
        Content::Parts(parts) => parts
            .iter()
            .fold((0, 0), |(chars, media), part| match part {
                ContentPart::Text { text, .. } => (chars + char_count(text), media),
                _ => (chars, media + 1),
            }),
    }
}

fn translate(body: &Value, endpoint: Endpoint) -> Result<Value, MessagesError> {
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
    match (endpoint, obj.get("max_tokens")) {
        (Endpoint::Create, None) => return err("max_tokens: field required"),
        (Endpoint::CountTokens, None) => {}
        (_, Some(v)) => match v.as_u64() {
            Some(n) if n >= 1 => {
                out.insert("max_tokens".into(), json!(n));
            }
            _ => return err("max_tokens: must be a positive integer"),
        },
    }

    let mut messages: Vec<Value> = Vec::new();
    if let Some(system) = obj.get("system").filter(|s| !s.is_null()) {
        messages.push(json!({"role": "system", "content": system_content(system, "system")?}));
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
    for field in ["temperature", "top_p", "top_k"] {
        if let Some(v) = obj.get(field) {
            out.insert(field.into(), v.clone());
        }
    }
    match (endpoint, obj.get("stream")) {
        (_, None | Some(Value::Null)) => {}
        (Endpoint::CountTokens, Some(_)) => {
            return err("stream: not accepted by count_tokens, which answers with a count")
        }
        (Endpoint::Create, Some(v)) => {
            out.insert("stream".into(), v.clone());
        }
    }
    match obj.get("metadata") {
        None | Some(Value::Null) => {}
        Some(Value::Object(metadata)) => match metadata.get("user_id") {
            None | Some(Value::Null) => {}
            Some(Value::String(user)) => {
                out.insert("user".into(), json!(user));
            }
            Some(_) => return err("metadata.user_id: must be a string"),
        },
        Some(_) => return err("metadata: must be an object"),
    }
    if let Some(tools) = obj.get("tools").filter(|t| !t.is_null()) {
        let Some(list) = tools.as_array() else {
            return err("tools: must be an array");
        };
        let mut translated = Vec::with_capacity(list.len());
        for (i, tool) in list.iter().enumerate() {
            translated.push(translate_tool(i, tool)?);
        }
        out.insert("tools".into(), Value::Array(translated));
    }
    if let Some(choice) = obj.get("tool_choice").filter(|c| !c.is_null()) {
        let (choice, parallel) = translate_tool_choice(choice)?;
        out.insert("tool_choice".into(), choice);
        if let Some(parallel) = parallel {
            out.insert("parallel_tool_calls".into(), json!(parallel));
        }
    }

    let thinking = obj.get("thinking").filter(|t| !t.is_null());
    let output_config = obj.get("output_config").filter(|o| !o.is_null());
    let (effort, response_format) = match output_config {
        Some(config) => check_output_config(config)?,
        None => (None, None),
    };
    if let Some(reasoning) = reasoning(thinking, effort)? {
        out.insert("reasoning".into(), reasoning);
    }
    if let Some(format) = response_format {
        out.insert("response_format".into(), format);
    }
    // Kept verbatim for Anthropic upstreams.
    if let Some(thinking) = thinking {
        out.insert("thinking".into(), thinking.clone());
    }
    if let Some(config) = output_config {
        out.insert("output_config".into(), config.clone());
    }
    if let Some(context) = obj.get("context_management").filter(|c| !c.is_null()) {
        check_context_management(context)?;
        out.insert("context_management".into(), context.clone());
    }
    if let Some(cache) = obj.get("cache_control").filter(|c| !c.is_null()) {
        // Automatic prompt caching: a cost optimisation, kept for Anthropic upstreams.
        if !cache.is_object() {
            return err("cache_control: must be an object such as {\"type\": \"ephemeral\"}");
        }
        out.insert("cache_control".into(), cache.clone());
    }
    match obj.get("speed") {
        None | Some(Value::Null) => {}
        // The default: nothing to send.
        Some(Value::String(s)) if s == "standard" => {}
        Some(Value::String(s)) if s == "fast" => {
            return err(
                "speed: \"fast\" is not available through the gateway, which cannot price it; omit speed",
            )
        }
        Some(_) => return err("speed: must be \"standard\" or \"fast\""),
    }

    for (k, v) in obj {
        if TRANSLATED.contains(&k.as_str()) {
            continue;
        }
        if let Some((_, why)) = REFUSED.iter().find(|(name, _)| name == k) {
            return err(format!("{k}: {why}"));
        }
        out.insert(k.clone(), v.clone());
    }
    if let Some(models) = fallback_models(obj)? {
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

/// The fallback models: `models` (the gateway's list of ids) or `fallbacks` (the contract's
/// `[{"model": ...}]`, at most three), never both.
fn fallback_models(obj: &Map<String, Value>) -> Result<Option<Vec<Value>>, MessagesError> {
    let models = obj.get("models").filter(|m| !m.is_null());
    let fallbacks = obj.get("fallbacks").filter(|f| !f.is_null());
    match (models, fallbacks) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => err("fallbacks: cannot be combined with `models`; use one of them"),
        (Some(Value::Array(list)), None) => Ok(Some(list.clone())),
        (Some(_), None) => err("models: must be an array of model ids"),
        (None, Some(Value::Array(list))) => {
            if list.len() > MAX_FALLBACKS {
                return err(format!(
                    "fallbacks: at most {MAX_FALLBACKS} entries, got {}",
                    list.len()
                ));
            }
            let mut models = Vec::with_capacity(list.len());
            for (i, entry) in list.iter().enumerate() {
                let Some(entry) = entry.as_object() else {
                    return err(format!(
                        "fallbacks[{i}]: must be an object {{\"model\": ...}}"
                    ));
                };
                if let Some(other) = entry.keys().find(|k| *k != "model") {
                    return err(format!(
                        "fallbacks[{i}].{other}: only `model` is accepted; per-attempt overrides are not supported"
                    ));
                }
                match entry.get("model") {
                    Some(Value::String(m)) if !m.trim().is_empty() => models.push(json!(m)),
                    _ => return err(format!("fallbacks[{i}].model: field required (a model id)")),
                }
            }
            Ok(Some(models))
        }
        (None, Some(_)) => err("fallbacks: must be an array of {\"model\": ...} objects"),
    }
}

/// Checks `output_config`; returns its effort and, for a JSON schema format, the canonical
/// `response_format`.
///
/// `task_budget` is advisory (the model sees a countdown of the tokens left for its task and
/// paces itself; nothing is capped) and has no canonical equivalent: it is honoured by Anthropic
/// endpoints and ignored by the others, whose answers stay answers to the same request. Members
/// not known here are refused, since their effect cannot be judged.
fn check_output_config(config: &Value) -> Result<(Option<&str>, Option<Value>), MessagesError> {
    let Some(config) = config.as_object() else {
        return err("output_config: must be an object");
    };
    let mut effort = None;
    let mut format = None;
    for (key, value) in config {
        match (key.as_str(), value) {
            (_, Value::Null) => {}
            ("effort", Value::String(e)) if EFFORTS.contains(&e.as_str()) => {
                effort = Some(e.as_str())
            }
            ("effort", _) => {
                return err(format!(
                    "output_config.effort: must be one of {}",
                    EFFORTS.join(", ")
                ))
            }
            ("format", Value::Object(f)) => {
                if f.get("type").and_then(Value::as_str) != Some("json_schema") {
                    return err("output_config.format.type: must be \"json_schema\"");
                }
                let Some(schema) = f.get("schema").filter(|s| s.is_object()) else {
                    return err(
                        "output_config.format.schema: field required (a JSON schema object)",
                    );
                };
                format = Some(json!({
                    "type": "json_schema",
                    "json_schema": {"name": "output", "schema": schema, "strict": true},
                }));
            }
            ("format", _) => return err("output_config.format: must be an object"),
            ("task_budget", Value::Object(b)) => {
                if b.get("type").and_then(Value::as_str) != Some("tokens") {
                    return err("output_config.task_budget.type: must be \"tokens\"");
                }
                if b.get("total").and_then(Value::as_u64).is_none() {
                    return err("output_config.task_budget.total: must be a positive integer");
                }
            }
            ("task_budget", _) => return err("output_config.task_budget: must be an object"),
            (other, _) => {
                return err(format!(
                    "output_config.{other}: is not supported (effort, format and task_budget are)"
                ))
            }
        }
    }
    Ok((effort, format))
}

/// Context editing edits the gateway accepts.
const CONTEXT_EDITS: &[&str] = &["clear_tool_uses_20250919", "clear_thinking_20251015"];

/// Checks `context_management`.
///
/// Context editing (clearing old tool uses and old thinking from what the model re-reads) is a
/// server-side optimisation of context use and cost: it is honoured by Anthropic endpoints and
/// ignored by the others, which then read the whole conversation the client sent, so the
/// request means the same. Compaction (`compact_20260112`) is refused: it answers with a
/// `compaction` block and a `compaction` stop reason that the canonical answer cannot carry.
fn check_context_management(context: &Value) -> Result<(), MessagesError> {
    let Some(context) = context.as_object() else {
        return err("context_management: must be an object");
    };
    if let Some(other) = context.keys().find(|k| *k != "edits") {
        return err(format!(
            "{}: is not supported",
            switchyard_core::parse_error::field("context_management", other)
        ));
    }
    let edits = match context.get("edits") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(edits)) => edits,
        Some(_) => return err("context_management.edits: must be an array"),
    };
    for (i, edit) in edits.iter().enumerate() {
        match edit.get("type").and_then(Value::as_str) {
            Some(kind) if CONTEXT_EDITS.contains(&kind) => {}
            Some(kind) if kind.starts_with("compact") => {
                return err(format!(
                    "context_management.edits[{i}].type: {} (server-side compaction) is not supported; compact on the client",
                    switchyard_core::parse_error::name(kind)
                ))
            }
            Some(kind) => {
                return err(format!(
                    "context_management.edits[{i}].type: {} is not supported ({} are)",
                    switchyard_core::parse_error::name(kind),
                    CONTEXT_EDITS.join(", ")
                ))
            }
            None => return err(format!("context_management.edits[{i}].type: field required")),
        }
    }
    Ok(())
}

/// The canonical `reasoning` for `thinking` and `output_config.effort`.
fn reasoning(
    thinking: Option<&Value>,
    effort: Option<&str>,
) -> Result<Option<Value>, MessagesError> {
    let mut reasoning = Map::new();
    let Some(thinking) = thinking else {
        // Effort alone: how much the model may spend, which is a reasoning effort elsewhere.
        return Ok(effort.map(|e| json!({ "effort": e })));
    };
    let Some(fields) = thinking.as_object() else {
        return err("thinking: must be an object");
    };
    match fields.get("type").and_then(Value::as_str) {
        Some("enabled") => {
            match fields.get("budget_tokens") {
                None | Some(Value::Null) => {
                    reasoning.insert("enabled".into(), json!(true));
                }
                Some(b) => match b.as_u64().filter(|b| *b >= 1) {
                    Some(b) => {
                        reasoning.insert("max_tokens".into(), json!(b));
                    }
                    None => return err("thinking.budget_tokens: must be a positive integer"),
                },
            }
            if let Some(e) = effort {
                reasoning.insert("effort".into(), json!(e));
            }
        }
        Some("adaptive") => {
            // The model decides how much to think: reasoning on, at the requested effort or
            // the provider's default.
            reasoning.insert("enabled".into(), json!(true));
            if let Some(e) = effort {
                reasoning.insert("effort".into(), json!(e));
            }
        }
        Some("disabled") => {
            // `output_config.effort` still shapes an Anthropic answer; elsewhere it would turn
            // reasoning back on, so it is not translated.
            return Ok(Some(json!({"enabled": false})));
        }
        _ => return err("thinking.type: must be \"enabled\", \"adaptive\" or \"disabled\""),
    }
    // `display` only chooses how much thinking text comes back. It is not `reasoning.exclude`,
    // which drops the reasoning entirely, signatures included, and an Anthropic client must
    // send signed thinking back with its tool results; other providers return their reasoning
    // as they do with "summarized".
    match fields.get("display") {
        None | Some(Value::Null) => {}
        Some(Value::String(d)) if THINKING_DISPLAYS.contains(&d.as_str()) => {}
        Some(_) => {
            return err(format!(
                "thinking.display: must be one of {}",
                THINKING_DISPLAYS.join(", ")
            ))
        }
    }
    Ok(Some(Value::Object(reasoning)))
}
