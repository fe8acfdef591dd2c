//! Anthropic's Messages API as an *inbound* format: requests sent to the gateway's
//! `/api/v1/messages` (and `/api/v1/messages/count_tokens`) become the canonical chat request,
//! and the canonical answer (OpenAI chat completion shape, chunk by chunk when streamed) becomes
//! Anthropic's message and SSE events.
//!
//! This is the mirror of `switchyard_providers::anthropic`, which speaks the same format to an
//! upstream. Here the gateway is the server: whatever provider kind serves the request, the
//! client sees Anthropic's shapes.
//!
//! Decisions:
//! - Native Anthropic fields that the canonical request has no place for are kept verbatim as
//!   extra members of the canonical request (`thinking`, `output_config`, `context_management`,
//!   the top-level `cache_control`, and `cache_control` on system, text, tool and tool result
//!   blocks), so that a request routed to an Anthropic endpoint arrives intact. Where a
//!   canonical equivalent exists the field is *also* translated, for the other provider kinds:
//!   - `thinking` becomes `reasoning`: `enabled` with `budget_tokens` is `reasoning.max_tokens`,
//!     `adaptive` is `reasoning.enabled` (the provider's default effort, or
//!     `output_config.effort` when given), and `disabled` is `reasoning.enabled: false`.
//!     `display` (how much thinking text comes back) is a presentation choice, not translated.
//!   - `output_config.effort` becomes `reasoning.effort` (unless thinking is disabled), and
//!     `output_config.format` (a JSON schema) becomes a strict `response_format`.
//!   - `output_config.task_budget` and `context_management` have no canonical equivalent and
//!     are only honoured by Anthropic endpoints; both leave the meaning of the request unchanged
//!     (the reasons are given where they are checked).
//! - `system` entries inside `messages` (mid-conversation system messages) become canonical
//!   system messages where they stand; the Anthropic codec decides how its upstream takes them.
//! - `fallbacks: [{"model": ...}]` becomes the canonical `models` list.
//! - Server tools (`web_search_20250305`, `bash_20250124`, ...), `mcp_servers` and `container`
//!   are refused for every endpoint, Anthropic's included: their results come back as blocks
//!   (`server_tool_use`, `web_search_tool_result`, ...) that the canonical answer cannot carry,
//!   so the client would get an answer without what it asked for.
//! - Anything else the request carries that is not Anthropic's own passes through as an extra
//!   member, for the gateway's fields (`provider`, `models`, `session_id`, `plugins`, ...).

use serde_json::{json, Map, Value};
use switchyard_core::chat::{ChatRequest, Content, ContentPart, Message};

/// A request that is not a valid Messages API request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MessagesError(pub String);

fn err<T>(message: impl Into<String>) -> Result<T, MessagesError> {
    Err(MessagesError(message.into()))
}

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

/// A system prompt: a string, or text blocks (their `cache_control` kept).
fn system_content(system: &Value, at: &str) -> Result<Value, MessagesError> {
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

fn translate_turn(i: usize, turn: &Value, out: &mut Vec<Value>) -> Result<(), MessagesError> {
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

fn translate_tool(i: usize, tool: &Value) -> Result<Value, MessagesError> {
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
fn translate_tool_choice(choice: &Value) -> Result<(Value, Option<bool>), MessagesError> {
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
/// `message_start` carries the input token counts, which an upstream usually reports with its
/// first chunk. The transcoder supports both ways of starting:
/// - Call [`StreamTranscoder::chunk`] for each canonical chunk without calling `start`: the
///   first call opens with `message_start`, carrying that chunk's `usage` (canonical shape:
///   `prompt_tokens`, `prompt_tokens_details.cached_tokens` and `.cache_write_tokens`) when it
///   has one. [`StreamTranscoder::start_with_usage`] does the same with usage known otherwise.
/// - Call [`StreamTranscoder::start`] first when something must be sent before the upstream
///   answers (a keep-alive): `message_start` then goes out with zero counts, and the real ones
///   arrive with `message_delta`.
///
/// Then [`StreamTranscoder::finish`] with the final usage (it opens with `message_start` too if
/// nothing was sent), or [`StreamTranscoder::error`].
#[derive(Debug)]
pub struct StreamTranscoder {
    id: String,
    model: String,
    request_id: Option<String>,
    started: bool,
    /// Canonical usage known before `message_start`.
    input_usage: Option<Value>,
    open: Option<Block>,
    index: usize,
    finish_reason: Option<String>,
    native_finish_reason: Option<String>,
}

impl StreamTranscoder {
    /// A transcoder for one message; `id` is the message id (the gateway's generation id), also
    /// used as the `request_id` of error events unless [`StreamTranscoder::with_request_id`]
    /// gives another.
    pub fn new(id: &str, model: &str) -> Self {
        StreamTranscoder {
            id: id.to_owned(),
            model: model.to_owned(),
            request_id: None,
            started: false,
            input_usage: None,
            open: None,
            index: 0,
            finish_reason: None,
            native_finish_reason: None,
        }
    }

    /// The `request_id` that error events carry.
    pub fn with_request_id(mut self, request_id: &str) -> Self {
        self.request_id = Some(request_id.to_owned());
        self
    }

    /// Whether `message_start` went out.
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// `message_start` now, with the input counts known so far (zero when none are). Call it
    /// once, and only if `message_start` must go out before the first chunk.
    pub fn start(&mut self) -> Event {
        self.started = true;
        let mut usage = usage_to_anthropic(self.input_usage.as_ref().unwrap_or(&Value::Null));
        if let Some(usage) = usage.as_object_mut() {
            usage.remove("cost");
        }
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
                "usage": usage,
            }}),
        )
    }

    /// `message_start` now, carrying the input counts of `usage` (canonical usage object).
    pub fn start_with_usage(&mut self, usage: &Value) -> Event {
        if usage.is_object() {
            self.input_usage = Some(usage.clone());
        }
        self.start()
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

    /// Events for one canonical chunk (`{choices: [{delta, finish_reason}], usage?}`), opening
    /// with `message_start` when it has not gone out yet.
    pub fn chunk(&mut self, chunk: &Value) -> Vec<Event> {
        let mut out = Vec::new();
        if !self.started {
            out.push(self.start_with_usage(chunk.get("usage").unwrap_or(&Value::Null)));
        }
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
        if !self.started {
            out.push(self.start_with_usage(usage));
        }
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

    /// An error after the stream started, in Anthropic's envelope with the `request_id`.
    pub fn error(&mut self, status: u16, message: &str) -> Vec<Event> {
        let request_id = self.request_id.as_deref().unwrap_or(&self.id);
        vec![("error", error_body(status, message, Some(request_id)))]
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

    /// A valid request with `fields` added (or replaced).
    fn with(fields: Value) -> Value {
        let mut body = json!({
            "model": "m/x",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": "x"}],
        });
        if let (Some(b), Some(f)) = (body.as_object_mut(), fields.as_object()) {
            b.extend(f.clone());
        }
        body
    }

    #[test]
    fn invalid_requests_name_the_problem() {
        let cases = [
            (json!([]), "JSON object"),
            (json!({"max_tokens": 1, "messages": []}), "model"),
            (json!({"model": "m/x", "messages": []}), "max_tokens"),
            (with(json!({"max_tokens": 0})), "max_tokens"),
            (with(json!({"messages": []})), "at least one"),
            (json!({"model": "m/x", "max_tokens": 1}), "messages"),
            (
                with(json!({"messages": [{"role": "tool", "content": "x"}]})),
                "messages[0].role: \"tool\"",
            ),
            (
                with(
                    json!({"messages": [{"role": "user", "content": "x"}, {"role": "system", "content": [{"type": "image"}]}]}),
                ),
                "messages[1].content[0]: only text blocks",
            ),
            (
                with(json!({"messages": [{"role": "system"}]})),
                "messages[0].content: field required",
            ),
            (
                with(json!({"messages": [{"role": "user", "content": [{"type": "tool_use"}]}]})),
                "messages[0].content[0].type",
            ),
            (
                with(
                    json!({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file"}}]}]}),
                ),
                "source.type",
            ),
            (
                with(json!({"tool_choice": {"type": "tool"}})),
                "tool_choice.name",
            ),
            (
                with(json!({"tool_choice": {"type": "auto", "disable_parallel_tool_use": "yes"}})),
                "tool_choice.disable_parallel_tool_use",
            ),
            (
                with(json!({"thinking": {"type": "maybe"}})),
                "thinking.type",
            ),
            (
                with(json!({"thinking": "on"})),
                "thinking: must be an object",
            ),
            (
                with(json!({"thinking": {"type": "enabled", "budget_tokens": -5}})),
                "thinking.budget_tokens",
            ),
            (
                with(json!({"thinking": {"type": "adaptive", "display": "verbose"}})),
                "thinking.display",
            ),
            (
                with(json!({"output_config": "high"})),
                "output_config: must be an object",
            ),
            (
                with(json!({"output_config": {"effort": "huge"}})),
                "output_config.effort",
            ),
            (
                with(json!({"output_config": {"format": {"type": "regex"}}})),
                "output_config.format.type",
            ),
            (
                with(json!({"output_config": {"format": {"type": "json_schema"}}})),
                "output_config.format.schema",
            ),
            (
                with(json!({"output_config": {"task_budget": {"type": "tokens"}}})),
                "output_config.task_budget.total",
            ),
            (
                with(json!({"output_config": {"verbosity": "low"}})),
                "output_config.verbosity",
            ),
            (
                with(json!({"context_management": {"edits": [{"type": "compact_20260112"}]}})),
                "context_management.edits[0].type: \"compact_20260112\"",
            ),
            (
                with(json!({"context_management": {"edits": [{"type": "clear_everything"}]}})),
                "context_management.edits[0].type: \"clear_everything\"",
            ),
            (
                with(json!({"context_management": {"edits": [{"keep": "all"}]}})),
                "context_management.edits[0].type: field required",
            ),
            (
                with(json!({"context_management": {"rules": []}})),
                "context_management.rules",
            ),
            (with(json!({"cache_control": "ephemeral"})), "cache_control"),
            (with(json!({"speed": "fast"})), "speed: \"fast\""),
            (with(json!({"speed": 2})), "speed"),
            (
                with(json!({"metadata": {"user_id": 7}})),
                "metadata.user_id",
            ),
            (
                with(json!({"metadata": "u"})),
                "metadata: must be an object",
            ),
            (
                with(
                    json!({"tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]}),
                ),
                "tools[0].type: server tool \"web_search_20250305\"",
            ),
            (
                with(json!({"tools": [{"type": "bash_20250124", "name": "bash"}]})),
                "tools[0].type: server tool \"bash_20250124\"",
            ),
            (
                with(
                    json!({"tools": [{"name": "f", "input_schema": {"type": "object"}, "input_examples": [{}]}]}),
                ),
                "tools[0].input_examples",
            ),
            (
                with(json!({"tools": [{"name": "f", "input_schema": "object"}]})),
                "tools[0].input_schema",
            ),
            (
                with(json!({"tools": [{"description": "d"}]})),
                "tools[0].name",
            ),
            (
                with(json!({"mcp_servers": [{"type": "url", "url": "https://x", "name": "x"}]})),
                "mcp_servers",
            ),
            (with(json!({"container": "c-1"})), "container"),
        ];
        for (body, needle) in cases {
            let e = request_to_chat(&body).expect_err("invalid");
            assert!(e.0.contains(needle), "{needle:?} not in {:?}", e.0);
        }
    }

    #[test]
    fn system_messages_stay_where_they_are() {
        let out = translate(with(json!({
            "system": "top",
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "system", "content": "plain"},
                {"role": "assistant", "content": "b"},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "r"}]},
                {"role": "system", "content": [{"type": "text", "text": "blocks", "cache_control": {"type": "ephemeral"}}]},
            ],
        })));
        assert_eq!(
            out["messages"],
            json!([
                {"role": "system", "content": "top"},
                {"role": "user", "content": "a"},
                {"role": "system", "content": "plain"},
                {"role": "assistant", "content": "b"},
                {"role": "tool", "tool_call_id": "t", "content": "r"},
                {"role": "system", "content": [{"type": "text", "text": "blocks", "cache_control": {"type": "ephemeral"}}]},
            ])
        );
    }

    #[test]
    fn thinking_and_effort_become_reasoning() {
        // (thinking, output_config, expected reasoning, expected response_format)
        let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        let cases = [
            (Value::Null, Value::Null, Value::Null, Value::Null),
            (
                json!({"type": "enabled", "budget_tokens": 2048}),
                Value::Null,
                json!({"max_tokens": 2048}),
                Value::Null,
            ),
            (
                json!({"type": "enabled", "budget_tokens": 2048, "display": "omitted"}),
                json!({"effort": "low"}),
                json!({"max_tokens": 2048, "effort": "low"}),
                Value::Null,
            ),
            (
                json!({"type": "enabled"}),
                Value::Null,
                json!({"enabled": true}),
                Value::Null,
            ),
            (
                json!({"type": "adaptive"}),
                Value::Null,
                json!({"enabled": true}),
                Value::Null,
            ),
            (
                json!({"type": "adaptive", "display": "summarized"}),
                json!({"effort": "xhigh"}),
                json!({"enabled": true, "effort": "xhigh"}),
                Value::Null,
            ),
            (
                json!({"type": "adaptive", "display": "omitted"}),
                json!({"effort": "high"}),
                json!({"enabled": true, "effort": "high"}),
                Value::Null,
            ),
            (
                json!({"type": "disabled"}),
                json!({"effort": "high"}),
                json!({"enabled": false}),
                Value::Null,
            ),
            (
                Value::Null,
                json!({"effort": "max"}),
                json!({"effort": "max"}),
                Value::Null,
            ),
            (
                Value::Null,
                json!({"effort": null, "format": {"type": "json_schema", "schema": schema}, "task_budget": {"type": "tokens", "total": 64000}}),
                Value::Null,
                json!({"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": true}}),
            ),
        ];
        for (thinking, config, reasoning, format) in cases {
            let mut fields = json!({});
            if !thinking.is_null() {
                fields["thinking"] = thinking.clone();
            }
            if !config.is_null() {
                fields["output_config"] = config.clone();
            }
            let out = translate(with(fields));
            let get = |k: &str| out.get(k).cloned().unwrap_or(Value::Null);
            assert_eq!(get("reasoning"), reasoning, "{thinking} {config}");
            assert_eq!(get("response_format"), format, "{thinking} {config}");
            // The native objects are kept verbatim for Anthropic upstreams.
            assert_eq!(get("thinking"), thinking);
            assert_eq!(get("output_config"), config);
            // Whatever the combination, the canonical request parses.
            ChatRequest::from_value(out.clone()).expect("canonical request");
        }
    }

    #[test]
    fn native_fields_are_kept_or_dropped_by_rule() {
        let context = json!({"edits": [
            {"type": "clear_thinking_20251015", "keep": "all"},
            {"type": "clear_tool_uses_20250919", "trigger": {"type": "input_tokens", "value": 100000}},
        ]});
        let out = translate(with(json!({
            "context_management": context,
            "cache_control": {"type": "ephemeral", "ttl": "1h"},
            "speed": "standard",
            "safeguards": {"mode": "default"},
            "session_id": "s-1",
        })));
        assert_eq!(out["context_management"], context);
        assert_eq!(
            out["cache_control"],
            json!({"type": "ephemeral", "ttl": "1h"})
        );
        assert!(out.get("speed").is_none(), "the default speed is not sent");
        // Fields that are not Anthropic's own pass through for the gateway.
        assert_eq!(out["safeguards"], json!({"mode": "default"}));
        assert_eq!(out["session_id"], "s-1");
    }

    #[test]
    fn tools_keep_what_the_canonical_tool_can_carry() {
        let out = translate(with(json!({"tools": [
            {"name": "a", "description": "d", "input_schema": {"type": "object", "properties": {"x": {"type": "string"}}},
             "strict": true, "cache_control": {"type": "ephemeral"}},
            {"type": "custom", "name": "b", "defer_loading": true, "eager_input_streaming": true},
        ]})));
        assert_eq!(
            out["tools"],
            json!([
                {"type": "function", "cache_control": {"type": "ephemeral"}, "function": {
                    "name": "a", "description": "d", "strict": true,
                    "parameters": {"type": "object", "properties": {"x": {"type": "string"}}}}},
                {"type": "function", "function": {"name": "b", "parameters": {"type": "object", "properties": {}}}},
            ])
        );
    }

    #[test]
    fn tool_result_cache_breakpoints_move_to_their_last_text() {
        let cache = json!({"type": "ephemeral"});
        // (tool_result content, is_error, expected canonical content)
        let cases = [
            (
                json!("42"),
                false,
                json!([{"type": "text", "text": "42", "cache_control": cache}]),
            ),
            (
                json!("bad"),
                true,
                json!([{"type": "text", "text": "Error: bad", "cache_control": cache}]),
            ),
            (
                json!([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}, {"type": "image", "source": {"type": "url", "url": "https://x/i.png"}}]),
                false,
                json!([{"type": "text", "text": "a"}, {"type": "text", "text": "b", "cache_control": cache},
                       {"type": "image_url", "image_url": {"url": "https://x/i.png"}}]),
            ),
            // Nowhere to put it: the breakpoint only saves cost, so the result goes without it.
            (json!(""), false, json!("")),
            (
                json!([{"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}]),
                false,
                json!([{"type": "file", "file": {"filename": "document.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}}]),
            ),
        ];
        for (content, is_error, want) in cases {
            let out = translate(with(json!({"messages": [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": content,
                                              "is_error": is_error, "cache_control": cache}]},
            ]})));
            assert_eq!(out["messages"][2]["content"], want, "{content}");
            ChatRequest::from_value(out).expect("canonical request");
        }
    }

    #[test]
    fn fallbacks_become_models() {
        let base = || with(json!({"model": "a/x", "provider": {"only": ["p"]}}));
        let mut ok = base();
        ok["fallbacks"] = json!([{"model": "b/y"}, {"model": "a/x"}, {"model": "c/z"}]);
        let out = translate(ok);
        assert_eq!(out["models"], json!(["b/y", "c/z"]));
        assert_eq!(out["provider"], json!({"only": ["p"]}));
        assert!(out.get("fallbacks").is_none());
        let mut ok = base();
        ok["models"] = json!(["a/x", "b/y"]);
        assert_eq!(translate(ok)["models"], json!(["b/y"]));

        // (fallbacks, models, error)
        let cases = [
            (
                json!([{"model": "b/y"}]),
                json!(["c/z"]),
                "cannot be combined",
            ),
            (
                json!(["b/y"]),
                Value::Null,
                "fallbacks[0]: must be an object",
            ),
            (
                json!([{"model": "b/y", "max_tokens": 5}]),
                Value::Null,
                "fallbacks[0].max_tokens",
            ),
            (json!([{"model": ""}]), Value::Null, "fallbacks[0].model"),
            (json!([{}]), Value::Null, "fallbacks[0].model"),
            (
                json!([{"model": "a"}, {"model": "b"}, {"model": "c"}, {"model": "d"}]),
                Value::Null,
                "at most 3",
            ),
            (
                json!({"model": "b"}),
                Value::Null,
                "fallbacks: must be an array",
            ),
        ];
        for (fallbacks, models, needle) in cases {
            let mut body = base();
            body["fallbacks"] = fallbacks.clone();
            if !models.is_null() {
                body["models"] = models;
            }
            let e = request_to_chat(&body).expect_err("invalid");
            assert!(
                e.0.contains(needle),
                "{fallbacks}: {needle:?} not in {:?}",
                e.0
            );
        }
    }

    #[test]
    fn count_tokens_bodies() {
        let body = json!({
            "model": "anthropic/claude-sonnet-4",
            "system": "S",
            "messages": [{"role": "user", "content": "Hello there"}],
            "tools": [{"name": "f", "input_schema": {"type": "object"}}],
            "thinking": {"type": "enabled", "budget_tokens": 2048},
        });
        let out = count_tokens_request(&body).expect("valid");
        assert!(out.get("max_tokens").is_none());
        assert_eq!(out["thinking"], body["thinking"]);
        assert_eq!(
            out["messages"][0],
            json!({"role": "system", "content": "S"})
        );
        // The same body is not a valid request to create a message.
        assert!(request_to_chat(&body).is_err());
        let mut streamed = body.clone();
        streamed["stream"] = json!(true);
        let e = count_tokens_request(&streamed).expect_err("stream");
        assert!(e.0.starts_with("stream:"), "{e}");
        assert_eq!(count_tokens_response(12), json!({"input_tokens": 12}));
    }

    #[test]
    fn input_token_estimates() {
        let parse = |v: Value| ChatRequest::from_value(v).expect("request");
        // (request, estimate)
        let cases = [
            (
                json!({"messages": [{"role": "user", "content": "abcd"}]}),
                1,
            ),
            (
                json!({"messages": [{"role": "user", "content": "abcde"}]}),
                2,
            ),
            // Characters, not bytes.
            (
                json!({"messages": [{"role": "user", "content": "ééééé"}]}),
                2,
            ),
            (
                json!({"messages": [
                    {"role": "system", "content": "12345678"},
                    {"role": "user", "content": [
                        {"type": "text", "text": "1234"},
                        {"type": "image_url", "image_url": {"url": "https://x/i.png"}},
                    ]},
                    {"role": "assistant", "content": null, "reasoning": "1234",
                     "tool_calls": [{"id": "c", "type": "function", "function": {"name": "ab", "arguments": "cd"}}]},
                    {"role": "tool", "tool_call_id": "c", "content": "1234"},
                ]}),
                // 8 + 4 + 4 + 4 + 4 characters, then one image.
                6 + MEDIA_PART_TOKENS,
            ),
        ];
        for (request, want) in cases {
            assert_eq!(
                estimate_input_tokens(&parse(request.clone())),
                want,
                "{request}"
            );
        }
        // Tool definitions count as their JSON.
        let tools = json!({"messages": [{"role": "user", "content": ""}],
                           "tools": [{"type": "function", "function": {"name": "f"}}]});
        let json_len = r#"{"type":"function","function":{"name":"f"}}"#.len() as u64;
        assert_eq!(estimate_input_tokens(&parse(tools)), json_len.div_ceil(4));
    }

    #[test]
    fn error_envelopes_carry_the_request_id() {
        // (status, request id, expected body)
        let cases = [
            (
                400,
                Some("gen-1"),
                json!({"type": "error", "error": {"type": "invalid_request_error", "message": "m"}, "request_id": "gen-1"}),
            ),
            (
                529,
                None,
                json!({"type": "error", "error": {"type": "overloaded_error", "message": "m"}, "request_id": null}),
            ),
            (
                402,
                Some("gen-2"),
                json!({"type": "error", "error": {"type": "billing_error", "message": "m"}, "request_id": "gen-2"}),
            ),
        ];
        for (status, id, want) in cases {
            assert_eq!(error_body(status, "m", id), want);
        }
        let mut t = StreamTranscoder::new("gen-3", "m/x");
        assert_eq!(t.error(429, "slow down")[0].1["request_id"], "gen-3");
        let mut t = StreamTranscoder::new("gen-3", "m/x").with_request_id("req-9");
        let event = t.error(429, "slow down");
        assert_eq!(event[0].0, "error");
        assert_eq!(event[0].1["request_id"], "req-9");
        assert_eq!(event[0].1["error"]["type"], "rate_limit_error");
    }

    #[test]
    fn message_start_carries_the_input_counts_it_knows() {
        let usage = json!({"prompt_tokens": 100, "completion_tokens": 1, "cost": 0.1,
                           "prompt_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 30}});
        let counted = json!({"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": 60,
                             "cache_creation_input_tokens": 30});
        let zero = json!({"input_tokens": 0, "output_tokens": 0, "cache_read_input_tokens": 0,
                          "cache_creation_input_tokens": 0});
        let first = json!({"choices": [{"delta": {"content": "Hi"}}], "usage": usage});
        // Started by the first chunk: its usage.
        let mut t = StreamTranscoder::new("gen-1", "m/x");
        assert!(!t.is_started());
        let events = t.chunk(&first);
        assert!(t.is_started());
        assert_eq!(events[0].0, "message_start");
        assert_eq!(events[0].1["message"]["usage"], counted);
        assert_eq!(events[1].0, "content_block_start");
        // Started with usage known otherwise.
        let mut t = StreamTranscoder::new("gen-1", "m/x");
        assert_eq!(t.start_with_usage(&usage).1["message"]["usage"], counted);
        assert_eq!(t.chunk(&first)[0].0, "content_block_start");
        // Started early (a keep-alive): zero counts, and no second message_start.
        let mut t = StreamTranscoder::new("gen-1", "m/x");
        assert_eq!(t.start().1["message"]["usage"], zero);
        let events = t.chunk(&first);
        assert!(events.iter().all(|e| e.0 != "message_start"));
        // A stream with no chunk at all still opens before it closes.
        let mut t = StreamTranscoder::new("gen-1", "m/x");
        let names: Vec<&str> = t.finish(&usage).iter().map(|e| e.0).collect();
        assert_eq!(names, ["message_start", "message_delta", "message_stop"]);
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
