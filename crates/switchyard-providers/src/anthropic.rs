//! Anthropic's Messages API (`POST {base_url}/messages`), spoken to Anthropic upstreams.
//!
//! Decisions:
//! - System and developer messages before the first turn become the top-level `system` blocks.
//!   Later ones (mid-conversation system messages) are sent where they stand, as
//!   `{"role": "system"}` turns, to endpoints whose catalogue entry lists
//!   [`MID_CONVERSATION_SYSTEM`] (Anthropic's own API with Claude Opus 4.8 and later; older
//!   models answer 400), wherever Anthropic's placement rules allow: right after a user turn,
//!   and before an assistant turn or at the end; consecutive ones are merged. Elsewhere, and
//!   where the rules do not allow them, they are appended in order to the top-level `system`,
//!   which every model takes: the instruction keeps a system prompt's authority, at the cost of
//!   a new prompt-cache prefix whenever one is added.
//! - Consecutive turns of one role are merged (Anthropic requires alternating roles); tool
//!   results become `tool_result` blocks of a user turn.
//! - `max_tokens` is required: the request's, else the endpoint's `max_completion_tokens`, else
//!   4096.
//! - `response_format`: Anthropic documents JSON outputs as `output_config: {format: {type:
//!   "json_schema", schema}}`, accepted by its newer models only (Claude Sonnet 4.5, Haiku 4.5,
//!   Opus 4.5 and later; older ones answer 400). A `json_schema` format is therefore sent only
//!   to endpoints whose catalogue entry lists `response_format` or `structured_outputs`, and
//!   dropped elsewhere, like any unsupported parameter (routing already keeps requests with
//!   `require_parameters` away from such endpoints, and prefers supporting ones otherwise).
//!   `json_object` has no schema-less equivalent and is dropped; `text` is the default. A native
//!   `output_config` (from the gateway's `/messages` endpoint) is sent as is. A function's
//!   `strict: true` goes to the same endpoints only.
//! - Native fields kept by the gateway's `/messages` endpoint are sent as is: `thinking`,
//!   `output_config`, `context_management` and the top-level `cache_control`. The
//!   `anthropic-beta` flags the sent fields need are added ([`CONTEXT_MANAGEMENT_BETA`],
//!   [`TASK_BUDGETS_BETA`], [`THINKING_DISPLAY_UPDATES_BETA`]); any other beta is the caller's.
//! - Reasoning: a native `thinking` object (from the gateway's `/messages` endpoint) is sent as
//!   is; otherwise `reasoning.max_tokens` is the thinking budget and `reasoning.effort` a share
//!   of `max_tokens` (at least 1024, Anthropic's minimum, with `max_tokens` raised above it),
//!   except when a native `output_config.effort` is sent: that effort is Anthropic's own, and
//!   does not turn thinking on.
//!   With thinking on, `temperature` and `top_k` are not sent and `top_p` only from 0.95 up
//!   (Anthropic refuses other values together with thinking).
//! - Thinking comes back as `reasoning_details` (`thinking` as a signed `reasoning.text`,
//!   `redacted_thinking` as `reasoning.encrypted`, format `anthropic-claude-v1`), streamed or
//!   not, and goes back in a later turn as the same blocks. Unsigned text and details another
//!   provider made (another `format`) are not sent: Anthropic only accepts its own signatures.
//! - A trailing assistant message is a prefill; its trailing whitespace is trimmed, which
//!   Anthropic requires of the final assistant turn.
//! - Tool results lead their user turn (Anthropic wants `tool_result` blocks before any text).
//! - Audio and video parts, and files other than base64 PDFs, cannot be expressed: a
//!   [`CodecError`] names the part and the provider.
//! - Token counts: [`AnthropicCodec::encode_count_tokens`] sends the same body, less what a
//!   count does not take, to `{base_url}/messages/count_tokens`.

use serde_json::{json, Map, Value};
use switchyard_core::catalog::ProviderKind;
use switchyard_core::chat::{ChatRequest, Content, ContentPart, Message};
use switchyard_core::error::{UpstreamError, UpstreamErrorKind};
use switchyard_core::pricing::Usage;

use crate::sse::{SseEvent, SseParser};
use crate::{
    parse_data_url, raw_excerpt, Codec, CodecError, Completion, StreamDecoder, StreamEvent, Target,
    UpstreamRequest,
};

/// The Anthropic codec.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnthropicCodec;

/// The `anthropic-version` header sent with every request.
pub const API_VERSION: &str = "2023-06-01";

/// Default `max_tokens` when neither the request nor the endpoint gives one.
const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Format tag of Anthropic reasoning details.
pub const REASONING_FORMAT: &str = "anthropic-claude-v1";

/// The catalogue's name (in an endpoint's `supported_parameters`) for endpoints whose model
/// takes system messages inside `messages` (Claude Opus 4.8 and later on Anthropic's own API).
pub const MID_CONVERSATION_SYSTEM: &str = "mid_conversation_system_messages";

/// The `anthropic-beta` flag that `context_management` needs.
pub const CONTEXT_MANAGEMENT_BETA: &str = "context-management-2025-06-27";

/// The `anthropic-beta` flag that `output_config.task_budget` needs.
pub const TASK_BUDGETS_BETA: &str = "task-budgets-2026-03-13";

/// The `anthropic-beta` flag that `thinking.display: "updates"` needs.
pub const THINKING_DISPLAY_UPDATES_BETA: &str = "thinking-display-updates-2026-08-18";

/// Anthropic's stop reasons in the contract's vocabulary.
pub fn normalize_stop_reason(native: &str) -> &'static str {
    match native {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

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

impl AnthropicCodec {
    /// The Messages body for a request, without `stream`.
    fn body(
        &self,
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
                None => {
                    return Err(codec_error(
                        "tool_choice must be auto, none, required or {type: function, function: {name}}",
                    ))
                }
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

    /// A request for Anthropic's token counter, `POST {base_url}/messages/count_tokens` with
    /// the usual headers: the body [`Codec::encode`] would send, less what a count does not take
    /// (`max_tokens`, sampling, `stop_sequences`, `metadata`, `stream`).
    pub fn encode_count_tokens(
        &self,
        request: &ChatRequest,
        target: &Target<'_>,
    ) -> Result<UpstreamRequest, CodecError> {
        let mut body = self.body(request, target)?;
        body.retain(|k, _| COUNT_TOKENS_FIELDS.contains(&k.as_str()));
        upstream_request(target, "messages/count_tokens", body)
    }

    /// The count of a successful (2xx) `count_tokens` answer, `{"input_tokens": N}`.
    pub fn decode_count_tokens(&self, body: &[u8]) -> Result<u64, UpstreamError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| UpstreamError {
            raw: Some(raw_excerpt(body)),
            ..UpstreamError::new(
                UpstreamErrorKind::InvalidResponse,
                None,
                format!("Anthropic answered the token count with a body that is not JSON: {e}"),
            )
        })?;
        if value.get("type").and_then(Value::as_str) == Some("error") {
            return Err(self.decode_error(502, body));
        }
        value
            .get("input_tokens")
            .and_then(Value::as_u64)
            .ok_or_else(|| UpstreamError {
                raw: Some(raw_excerpt(body)),
                ..UpstreamError::new(
                    UpstreamErrorKind::InvalidResponse,
                    None,
                    "Anthropic's token count has no `input_tokens`",
                )
            })
    }
}

/// Members of a Messages body that `count_tokens` takes.
const COUNT_TOKENS_FIELDS: &[&str] = &[
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
fn upstream_request(
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

impl Codec for AnthropicCodec {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Anthropic
    }

    fn encode(
        &self,
        request: &ChatRequest,
        target: &Target<'_>,
    ) -> Result<UpstreamRequest, CodecError> {
        let mut body = self.body(request, target)?;
        if request.is_stream() {
            body.insert("stream".into(), json!(true));
        }
        upstream_request(target, "messages", body)
    }

    fn decode(&self, body: &[u8]) -> Result<Completion, UpstreamError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| UpstreamError {
            raw: Some(raw_excerpt(body)),
            ..UpstreamError::new(
                UpstreamErrorKind::InvalidResponse,
                None,
                format!("Anthropic answered with a body that is not JSON: {e}"),
            )
        })?;
        if value.get("type").and_then(Value::as_str) == Some("error") {
            return Err(self.decode_error(502, body));
        }
        let Some(content) = value.get("content").and_then(Value::as_array) else {
            return Err(UpstreamError {
                raw: Some(raw_excerpt(body)),
                ..UpstreamError::new(
                    UpstreamErrorKind::InvalidResponse,
                    None,
                    "Anthropic response has no `content`",
                )
            });
        };
        let mut text = String::new();
        let mut reasoning = String::new();
        let mut details: Vec<Value> = Vec::new();
        let mut tool_calls: Vec<Value> = Vec::new();
        for block in content {
            match block.get("type").and_then(Value::as_str) {
                Some("text") => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or("")),
                Some("thinking") => {
                    let t = block.get("thinking").and_then(Value::as_str).unwrap_or("");
                    reasoning.push_str(t);
                    details.push(json!({
                        "type": "reasoning.text",
                        "text": t,
                        "signature": block.get("signature").cloned().unwrap_or(Value::Null),
                        "format": REASONING_FORMAT,
                        "index": details.len(),
                    }));
                }
                Some("redacted_thinking") => details.push(json!({
                    "type": "reasoning.encrypted",
                    "data": block.get("data").cloned().unwrap_or(Value::Null),
                    "format": REASONING_FORMAT,
                    "index": details.len(),
                })),
                Some("tool_use") => tool_calls.push(json!({
                    "id": block.get("id").cloned().unwrap_or(Value::Null),
                    "type": "function",
                    "function": {
                        "name": block.get("name").cloned().unwrap_or(Value::Null),
                        "arguments": block.get("input").map_or_else(|| "{}".to_owned(), Value::to_string),
                    },
                })),
                _ => {}
            }
        }
        let native = value
            .get("stop_reason")
            .and_then(Value::as_str)
            .unwrap_or("end_turn");
        let mut message = json!({
            "role": "assistant",
            "content": if text.is_empty() { Value::Null } else { json!(text) },
        });
        if !tool_calls.is_empty() {
            message["tool_calls"] = Value::Array(tool_calls);
        }
        if !reasoning.is_empty() {
            message["reasoning"] = json!(reasoning);
        }
        if !details.is_empty() {
            message["reasoning_details"] = Value::Array(details);
        }
        Ok(Completion {
            upstream_id: value.get("id").and_then(Value::as_str).map(str::to_owned),
            choices: vec![json!({
                "index": 0,
                "message": message,
                "finish_reason": normalize_stop_reason(native),
                "native_finish_reason": native,
            })],
            usage: value.get("usage").map(parse_usage),
            system_fingerprint: None,
            service_tier: value.pointer("/usage/service_tier").cloned(),
        })
    }

    fn decode_error(&self, status: u16, body: &[u8]) -> UpstreamError {
        let value: Option<Value> = serde_json::from_slice(body).ok();
        let error = value.as_ref().and_then(|v| v.get("error"));
        let kind_name = error.and_then(|e| e.get("type")).and_then(Value::as_str);
        let message = error
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("Anthropic returned HTTP {status}"));
        let kind = match kind_name {
            Some(_) if message.contains("content filtering policy") => {
                UpstreamErrorKind::ContentPolicy
            }
            Some("invalid_request_error") if message.contains("prompt is too long") => {
                UpstreamErrorKind::ContextLengthExceeded
            }
            Some("invalid_request_error") => UpstreamErrorKind::InvalidRequest,
            Some("authentication_error" | "permission_error" | "billing_error") => {
                UpstreamErrorKind::ProviderAuth
            }
            Some("not_found_error") => UpstreamErrorKind::NotFound,
            Some("request_too_large") => UpstreamErrorKind::PayloadTooLarge,
            Some("rate_limit_error") => UpstreamErrorKind::RateLimited,
            Some("overloaded_error") => UpstreamErrorKind::Overloaded,
            Some("api_error") => UpstreamErrorKind::Server,
            Some("timeout_error") => UpstreamErrorKind::Timeout,
            _ => UpstreamError::kind_for_status(status),
        };
        UpstreamError {
            kind,
            status: Some(status),
            message,
            raw: Some(raw_excerpt(body)),
            provider_code: kind_name.map(str::to_owned),
        }
    }

    fn stream_decoder(&self) -> Box<dyn StreamDecoder> {
        Box::new(AnthropicStream::default())
    }
}

/// The HTTP status Anthropic pairs with an error `type` (for errors met inside a stream).
pub fn status_for_error_type(error_type: &str) -> u16 {
    match error_type {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500,
    }
}

/// Anthropic's usage: `input_tokens` excludes cache reads and writes; the canonical prompt count
/// includes them.
pub fn parse_usage(usage: &Value) -> Usage {
    let n = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0);
    let read = n("cache_read_input_tokens");
    let written = n("cache_creation_input_tokens");
    Usage {
        prompt_tokens: n("input_tokens") + read + written,
        completion_tokens: n("output_tokens"),
        cached_tokens: read,
        cache_write_tokens: written,
        reasoning_tokens: 0,
        audio_prompt_tokens: 0,
        web_search_requests: usage
            .pointer("/server_tool_use/web_search_requests")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    }
}

/// What an open content block is, by Anthropic block index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Thinking,
    /// A tool call, with its index among the message's tool calls.
    Tool(usize),
    Other,
}

#[derive(Default)]
struct AnthropicStream {
    parser: SseParser,
    id: Option<String>,
    /// Open blocks by index (the latest start of an index wins).
    blocks: std::collections::HashMap<u64, Block>,
    tool_calls: usize,
    reasoning_index: usize,
    /// Usage from `message_start`, completed by `message_delta`.
    usage: Value,
}

impl AnthropicStream {
    fn block(&self, index: u64) -> Block {
        self.blocks.get(&index).copied().unwrap_or(Block::Other)
    }

    fn chunk(
        &self,
        delta: Value,
        finish: Option<(&str, &str)>,
        usage: Option<Usage>,
    ) -> StreamEvent {
        let mut choice = json!({"index": 0, "delta": delta, "finish_reason": Value::Null, "native_finish_reason": Value::Null});
        if let Some((reason, native)) = finish {
            choice["finish_reason"] = json!(reason);
            choice["native_finish_reason"] = json!(native);
        }
        StreamEvent::Chunk {
            upstream_id: self.id.clone(),
            choices: vec![choice],
            usage,
        }
    }

    fn event(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) {
        let data = event.data.trim();
        if data.is_empty() {
            return;
        }
        let value: Value = match serde_json::from_str(data) {
            Ok(v) => v,
            Err(e) => {
                out.push(StreamEvent::Error(UpstreamError {
                    raw: Some(raw_excerpt(data.as_bytes())),
                    ..UpstreamError::new(
                        UpstreamErrorKind::InvalidResponse,
                        None,
                        format!("Anthropic sent an invalid stream event: {e}"),
                    )
                }));
                return;
            }
        };
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .or(event.event.as_deref())
            .unwrap_or("");
        match kind {
            "message_start" => {
                let message = value.get("message");
                self.id = message
                    .and_then(|m| m.get("id"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                self.usage = message
                    .and_then(|m| m.get("usage"))
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                let usage = Some(parse_usage(&self.usage));
                out.push(self.chunk(json!({"role": "assistant", "content": ""}), None, usage));
            }
            "content_block_start" => {
                let index = value.get("index").and_then(Value::as_u64).unwrap_or(0);
                let block = value.get("content_block").cloned().unwrap_or(Value::Null);
                match block.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        self.blocks.insert(index, Block::Text);
                        if let Some(t) = block
                            .get("text")
                            .and_then(Value::as_str)
                            .filter(|t| !t.is_empty())
                        {
                            out.push(self.chunk(json!({"content": t}), None, None));
                        }
                    }
                    Some("thinking") => {
                        self.blocks.insert(index, Block::Thinking);
                    }
                    Some("redacted_thinking") => {
                        self.blocks.insert(index, Block::Other);
                        let detail = json!({"type": "reasoning.encrypted", "data": block.get("data").cloned().unwrap_or(Value::Null),
                                            "format": REASONING_FORMAT, "index": self.reasoning_index});
                        self.reasoning_index += 1;
                        out.push(self.chunk(json!({"reasoning_details": [detail]}), None, None));
                    }
                    Some("tool_use") => {
                        let call = self.tool_calls;
                        self.tool_calls += 1;
                        self.blocks.insert(index, Block::Tool(call));
                        out.push(self.chunk(
                            json!({"tool_calls": [{
                                "index": call,
                                "id": block.get("id").cloned().unwrap_or(Value::Null),
                                "type": "function",
                                "function": {"name": block.get("name").cloned().unwrap_or(Value::Null), "arguments": ""},
                            }]}),
                            None,
                            None,
                        ));
                    }
                    _ => {
                        self.blocks.insert(index, Block::Other);
                    }
                }
            }
            "content_block_delta" => {
                let index = value.get("index").and_then(Value::as_u64).unwrap_or(0);
                let delta = value.get("delta").cloned().unwrap_or(Value::Null);
                let s = |k: &str| {
                    delta
                        .get(k)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned()
                };
                match (delta.get("type").and_then(Value::as_str), self.block(index)) {
                    (Some("text_delta"), _) => {
                        out.push(self.chunk(json!({"content": s("text")}), None, None));
                    }
                    (Some("thinking_delta"), _) => {
                        let text = s("thinking");
                        let detail = json!({"type": "reasoning.text", "text": text, "format": REASONING_FORMAT, "index": self.reasoning_index});
                        out.push(self.chunk(
                            json!({"reasoning": text, "reasoning_details": [detail]}),
                            None,
                            None,
                        ));
                    }
                    (Some("signature_delta"), _) => {
                        let detail = json!({"type": "reasoning.text", "text": "", "signature": s("signature"),
                                            "format": REASONING_FORMAT, "index": self.reasoning_index});
                        out.push(self.chunk(json!({"reasoning_details": [detail]}), None, None));
                    }
                    (Some("input_json_delta"), Block::Tool(call)) => {
                        out.push(self.chunk(
                            json!({"tool_calls": [{"index": call, "function": {"arguments": s("partial_json")}}]}),
                            None,
                            None,
                        ));
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                let index = value.get("index").and_then(Value::as_u64).unwrap_or(0);
                if self.block(index) == Block::Thinking {
                    self.reasoning_index += 1;
                }
            }
            "message_delta" => {
                if let Some(u) = value.get("usage").and_then(Value::as_object) {
                    if let Some(map) = self.usage.as_object_mut() {
                        for (k, v) in u {
                            map.insert(k.clone(), v.clone());
                        }
                    } else {
                        self.usage = Value::Object(u.clone());
                    }
                }
                let usage = Some(parse_usage(&self.usage));
                match value.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    Some(native) => {
                        let reason = normalize_stop_reason(native);
                        out.push(self.chunk(json!({}), Some((reason, native)), usage));
                    }
                    None => out.push(StreamEvent::Chunk {
                        upstream_id: self.id.clone(),
                        choices: Vec::new(),
                        usage,
                    }),
                }
            }
            "message_stop" => out.push(StreamEvent::Done),
            "error" => {
                let status = value
                    .pointer("/error/type")
                    .and_then(Value::as_str)
                    .map_or(500, status_for_error_type);
                out.push(StreamEvent::Error(
                    AnthropicCodec.decode_error(status, data.as_bytes()),
                ));
            }
            // `ping` and event types added later are ignored.
            _ => {}
        }
    }
}

impl StreamDecoder for AnthropicStream {
    fn feed(&mut self, bytes: &[u8]) -> Vec<StreamEvent> {
        let events = self.parser.feed(bytes);
        let mut out = Vec::new();
        for e in &events {
            self.event(e, &mut out);
        }
        out
    }

    fn finish(&mut self) -> Vec<StreamEvent> {
        let events = self.parser.finish();
        let mut out = Vec::new();
        for e in &events {
            self.event(e, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::catalog::Catalog;

    fn catalog(supported: &str) -> Catalog {
        Catalog::from_toml(
            "t",
            &format!(
                r#"
[[providers]]
slug = "anthropic"
name = "Anthropic"
kind = "anthropic"
base_url = "https://api.anthropic.com/v1/"
api_key_env = "ANTHROPIC_API_KEY"
[[models]]
id = "anthropic/claude"
name = "Claude"
context_length = 200000
[[models.endpoints]]
provider = "anthropic"
upstream_model = "claude-x"
max_completion_tokens = 16000
pricing = {{ prompt = "0.000003", completion = "0.000015" }}
supported_parameters = [{supported}]
"#
            ),
        )
        .expect("catalog")
    }

    fn encode_with(supported: &str, request: Value) -> Result<Value, CodecError> {
        let catalog = catalog(supported);
        let model = catalog.model("anthropic/claude").expect("model");
        let target = Target {
            provider: catalog.provider("anthropic").expect("provider"),
            endpoint: &model.endpoints[0],
            api_key: None,
        };
        let request = ChatRequest::from_value(request).expect("request");
        let upstream = AnthropicCodec.encode(&request, &target)?;
        assert_eq!(upstream.url, "https://api.anthropic.com/v1/messages");
        assert!(!upstream.headers.iter().any(|(k, _)| k == "x-api-key"));
        Ok(serde_json::from_slice(&upstream.body).expect("json"))
    }

    fn encode(request: Value) -> Value {
        encode_with("", request).expect("encodes")
    }

    fn user(extra: Value) -> Value {
        let mut request =
            json!({"model": "anthropic/claude", "messages": [{"role": "user", "content": "hi"}]});
        if let (Some(r), Some(e)) = (request.as_object_mut(), extra.as_object()) {
            r.extend(e.clone());
        }
        request
    }

    #[test]
    fn reasoning_becomes_a_thinking_budget() {
        // (request fields, expected thinking, expected max_tokens)
        let cases = [
            (json!({}), Value::Null, 16000),
            (json!({"max_tokens": 100}), Value::Null, 100),
            (
                json!({"reasoning": {"max_tokens": 3000}}),
                json!({"type": "enabled", "budget_tokens": 3000}),
                16000,
            ),
            (
                json!({"reasoning": {"effort": "high"}, "max_tokens": 10000}),
                json!({"type": "enabled", "budget_tokens": 8000}),
                10000,
            ),
            (
                json!({"reasoning": {"effort": "medium"}, "max_completion_tokens": 10000}),
                json!({"type": "enabled", "budget_tokens": 5000}),
                10000,
            ),
            (
                json!({"reasoning_effort": "low", "max_tokens": 10000}),
                json!({"type": "enabled", "budget_tokens": 2000}),
                10000,
            ),
            (
                json!({"reasoning": {"effort": "minimal"}, "max_tokens": 20000}),
                json!({"type": "enabled", "budget_tokens": 2000}),
                20000,
            ),
            // The budget is at least 1024 and max_tokens is raised above it.
            (
                json!({"reasoning": {"effort": "low"}, "max_tokens": 500}),
                json!({"type": "enabled", "budget_tokens": 1024}),
                2048,
            ),
            (
                json!({"reasoning": {"max_tokens": 4000}, "max_tokens": 1000}),
                json!({"type": "enabled", "budget_tokens": 4000}),
                5024,
            ),
            (
                json!({"reasoning": {"enabled": true}, "max_tokens": 4000}),
                json!({"type": "enabled", "budget_tokens": 2000}),
                4000,
            ),
            (
                json!({"reasoning": {"effort": "none"}, "max_tokens": 4000}),
                Value::Null,
                4000,
            ),
            (
                json!({"reasoning": {"enabled": false, "max_tokens": 2000}}),
                Value::Null,
                16000,
            ),
            // A native object passes verbatim.
            (
                json!({"thinking": {"type": "adaptive"}, "reasoning": {"effort": "low"}, "max_tokens": 900}),
                json!({"type": "adaptive"}),
                900,
            ),
            // A native effort is Anthropic's own: the effort translated from it does not turn
            // thinking on.
            (
                json!({"output_config": {"effort": "high"}, "reasoning": {"effort": "high"}, "max_tokens": 9000}),
                Value::Null,
                9000,
            ),
            (
                json!({"output_config": {"effort": null}, "reasoning": {"effort": "high"}, "max_tokens": 10000}),
                json!({"type": "enabled", "budget_tokens": 8000}),
                10000,
            ),
        ];
        for (fields, thinking, max_tokens) in cases {
            let body = encode(user(fields.clone()));
            assert_eq!(
                body.get("thinking").cloned().unwrap_or(Value::Null),
                thinking,
                "{fields}"
            );
            assert_eq!(body["max_tokens"], max_tokens, "{fields}");
        }
    }

    fn upstream_with(supported: &str, request: Value) -> UpstreamRequest {
        let catalog = catalog(supported);
        let model = catalog.model("anthropic/claude").expect("model");
        let target = Target {
            provider: catalog.provider("anthropic").expect("provider"),
            endpoint: &model.endpoints[0],
            api_key: Some("sk-ant"),
        };
        let request = ChatRequest::from_value(request).expect("request");
        AnthropicCodec.encode(&request, &target).expect("encodes")
    }

    fn header<'a>(upstream: &'a UpstreamRequest, name: &str) -> Option<&'a str> {
        upstream
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn system_messages_in_place_or_in_the_system_prompt() {
        let text = |t: &str| json!([{"type": "text", "text": t}]);
        let turn = |role: &str, t: &str| json!({"role": role, "content": text(t)});
        let sys = |t: &str| json!({"role": "system", "content": t});
        let msg = |role: &str, t: &str| json!({"role": role, "content": t});
        let supported = format!("\"{MID_CONVERSATION_SYSTEM}\"");
        // (endpoint lists mid-conversation system messages, messages, system, turns)
        let cases = [
            // Leading system messages are the system prompt, everywhere.
            (
                true,
                json!([sys("a"), msg("developer", "b"), msg("user", "u")]),
                json!([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]),
                json!([turn("user", "u")]),
            ),
            // After a user turn, before an assistant turn or at the end: in place.
            (
                true,
                json!([
                    sys("top"),
                    msg("user", "u1"),
                    sys("s1"),
                    msg("assistant", "a1"),
                    msg("user", "u2"),
                    sys("s2")
                ]),
                text("top"),
                json!([
                    turn("user", "u1"),
                    turn("system", "s1"),
                    turn("assistant", "a1"),
                    turn("user", "u2"),
                    turn("system", "s2")
                ]),
            ),
            // Consecutive system messages are merged into one turn.
            (
                true,
                json!([msg("user", "u1"), sys("s1"), msg("developer", "s2")]),
                Value::Null,
                json!([turn("user", "u1"), {"role": "system", "content": [{"type": "text", "text": "s1"}, {"type": "text", "text": "s2"}]}]),
            ),
            // After an assistant turn, or before a user turn: to the system prompt, in order,
            // and the turns around them merge.
            (
                true,
                json!([
                    sys("top"),
                    msg("user", "u1"),
                    msg("assistant", "a1"),
                    sys("late1"),
                    msg("user", "u2"),
                    sys("late2"),
                    msg("user", "u3")
                ]),
                json!([{"type": "text", "text": "top"}, {"type": "text", "text": "late1"}, {"type": "text", "text": "late2"}]),
                json!([turn("user", "u1"), turn("assistant", "a1"),
                       {"role": "user", "content": [{"type": "text", "text": "u2"}, {"type": "text", "text": "u3"}]}]),
            ),
            // A tool result is a user turn.
            (
                true,
                json!([msg("user", "u1"),
                       {"role": "assistant", "content": null, "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                       {"role": "tool", "tool_call_id": "t1", "content": "r"}, sys("env")]),
                Value::Null,
                json!([turn("user", "u1"),
                       {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
                       {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "r"}]},
                       turn("system", "env")]),
            ),
            // Endpoints that do not list them get every system message in the system prompt.
            (
                false,
                json!([
                    sys("top"),
                    msg("user", "u1"),
                    sys("s1"),
                    msg("assistant", "a1"),
                    msg("user", "u2"),
                    sys("s2")
                ]),
                json!([{"type": "text", "text": "top"}, {"type": "text", "text": "s1"}, {"type": "text", "text": "s2"}]),
                json!([
                    turn("user", "u1"),
                    turn("assistant", "a1"),
                    turn("user", "u2")
                ]),
            ),
        ];
        for (in_place, messages, system, turns) in cases {
            let listed = if in_place { supported.as_str() } else { "" };
            let body = encode_with(
                listed,
                json!({"model": "anthropic/claude", "messages": messages}),
            )
            .expect("encodes");
            assert_eq!(
                body.get("system").cloned().unwrap_or(Value::Null),
                system,
                "{messages}"
            );
            assert_eq!(body["messages"], turns, "{messages}");
        }
    }

    #[test]
    fn native_fields_go_as_they_are_with_their_betas() {
        let context = json!({"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]});
        // (native fields, expected anthropic-beta)
        let cases = [
            (json!({}), None),
            (
                json!({"thinking": {"type": "adaptive", "display": "omitted"}, "reasoning": {"enabled": true, "effort": "high"},
                       "output_config": {"effort": "high"}, "context_management": context, "cache_control": {"type": "ephemeral"}}),
                Some(CONTEXT_MANAGEMENT_BETA.to_owned()),
            ),
            (
                json!({"output_config": {"effort": "high", "task_budget": {"type": "tokens", "total": 64000}},
                       "thinking": {"type": "adaptive", "display": "updates"}, "context_management": context}),
                Some(format!(
                    "{CONTEXT_MANAGEMENT_BETA},{TASK_BUDGETS_BETA},{THINKING_DISPLAY_UPDATES_BETA}"
                )),
            ),
        ];
        for (fields, beta) in cases {
            let upstream = upstream_with("", user(fields.clone()));
            assert_eq!(
                header(&upstream, "anthropic-beta").map(str::to_owned),
                beta,
                "{fields}"
            );
            assert_eq!(header(&upstream, "x-api-key"), Some("sk-ant"));
            let body: Value = serde_json::from_slice(&upstream.body).expect("json");
            for native in [
                "thinking",
                "output_config",
                "context_management",
                "cache_control",
            ] {
                assert_eq!(body.get(native), fields.get(native), "{native} in {fields}");
            }
            assert!(body.get("reasoning").is_none());
        }
    }

    #[test]
    fn strict_tools_go_to_endpoints_with_structured_outputs() {
        let tools = json!({"tools": [{"type": "function", "function": {"name": "f", "strict": true, "parameters": {"type": "object"}}}]});
        for (supported, strict) in [("", Value::Null), ("\"structured_outputs\"", json!(true))] {
            let body = encode_with(supported, user(tools.clone())).expect("encodes");
            assert_eq!(
                body["tools"][0]
                    .get("strict")
                    .cloned()
                    .unwrap_or(Value::Null),
                strict,
                "{supported}"
            );
        }
    }

    #[test]
    fn token_counts() {
        let catalog = catalog("");
        let model = catalog.model("anthropic/claude").expect("model");
        let target = Target {
            provider: catalog.provider("anthropic").expect("provider"),
            endpoint: &model.endpoints[0],
            api_key: Some("sk-ant"),
        };
        let request = ChatRequest::from_value(json!({
            "model": "anthropic/claude", "stream": true, "max_tokens": 100, "temperature": 0.5,
            "user": "u1", "stop": ["x"],
            "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "auto",
            "thinking": {"type": "adaptive"}, "output_config": {"effort": "low"},
            "context_management": {"edits": [{"type": "clear_thinking_20251015"}]},
        }))
        .expect("request");
        let upstream = AnthropicCodec
            .encode_count_tokens(&request, &target)
            .expect("encodes");
        assert_eq!(
            upstream.url,
            "https://api.anthropic.com/v1/messages/count_tokens"
        );
        assert_eq!(header(&upstream, "anthropic-version"), Some(API_VERSION));
        assert_eq!(header(&upstream, "x-api-key"), Some("sk-ant"));
        assert_eq!(
            header(&upstream, "anthropic-beta"),
            Some(CONTEXT_MANAGEMENT_BETA)
        );
        let body: Value = serde_json::from_slice(&upstream.body).expect("json");
        let mut keys: Vec<&str> = body
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "context_management",
                "messages",
                "model",
                "output_config",
                "system",
                "thinking",
                "tool_choice",
                "tools"
            ]
        );
        assert_eq!(body["model"], "claude-x");

        assert_eq!(
            AnthropicCodec.decode_count_tokens(br#"{"input_tokens": 2095}"#),
            Ok(2095)
        );
        // (body, error kind)
        let cases: [(&[u8], UpstreamErrorKind); 4] = [
            (b"{}", UpstreamErrorKind::InvalidResponse),
            (
                b"{\"input_tokens\": -1}",
                UpstreamErrorKind::InvalidResponse,
            ),
            (b"<html>", UpstreamErrorKind::InvalidResponse),
            (
                br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
                UpstreamErrorKind::Overloaded,
            ),
        ];
        for (body, kind) in cases {
            let e = AnthropicCodec
                .decode_count_tokens(body)
                .expect_err("not a count");
            assert_eq!(e.kind, kind, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn sampling_with_and_without_thinking() {
        let sampling =
            json!({"temperature": 1.5, "top_p": 0.9, "top_k": 5, "stop": "END", "user": "u1"});
        let body = encode(user(sampling.clone()));
        assert_eq!(body["temperature"], 1.0, "clamped to Anthropic's range");
        assert_eq!(body["top_p"], 0.9);
        assert_eq!(body["top_k"], 5);
        assert_eq!(body["stop_sequences"], json!(["END"]));
        assert_eq!(body["metadata"], json!({"user_id": "u1"}));
        let mut thinking = sampling;
        thinking["reasoning"] = json!({"max_tokens": 2048});
        let body = encode(user(thinking.clone()));
        for dropped in ["temperature", "top_p", "top_k"] {
            assert!(body.get(dropped).is_none(), "{dropped}");
        }
        thinking["top_p"] = json!(0.97);
        assert_eq!(encode(user(thinking))["top_p"], 0.97);
    }

    #[test]
    fn tool_choice_table() {
        let tools = json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]);
        let cases = [
            (json!("auto"), None, json!({"type": "auto"})),
            (json!("none"), None, json!({"type": "none"})),
            (json!("required"), None, json!({"type": "any"})),
            (
                json!({"type": "function", "function": {"name": "f"}}),
                None,
                json!({"type": "tool", "name": "f"}),
            ),
            (
                json!("required"),
                Some(false),
                json!({"type": "any", "disable_parallel_tool_use": true}),
            ),
            (json!("none"), Some(false), json!({"type": "none"})),
            (
                Value::Null,
                Some(false),
                json!({"type": "auto", "disable_parallel_tool_use": true}),
            ),
            (json!("auto"), Some(true), json!({"type": "auto"})),
        ];
        for (choice, parallel, want) in cases {
            let mut fields = json!({"tools": tools});
            if !choice.is_null() {
                fields["tool_choice"] = choice.clone();
            }
            if let Some(p) = parallel {
                fields["parallel_tool_calls"] = json!(p);
            }
            let body = encode(user(fields));
            assert_eq!(body["tool_choice"], want, "{choice} {parallel:?}");
            assert_eq!(
                body["tools"],
                json!([{"name": "f", "input_schema": {"type": "object"}}])
            );
        }
        let body = encode(user(
            json!({"tools": [{"type": "function", "function": {"name": "g"}}]}),
        ));
        assert_eq!(
            body["tools"][0]["input_schema"],
            json!({"type": "object", "properties": {}})
        );
        assert!(body.get("tool_choice").is_none());
    }

    #[test]
    fn response_format_goes_to_endpoints_that_list_it() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": false});
        let json_schema = json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}});
        // (supported_parameters, request, expected output_config)
        let cases = [
            ("", json_schema.clone(), Value::Null),
            (
                "\"response_format\"",
                json_schema.clone(),
                json!({"format": {"type": "json_schema", "schema": schema}}),
            ),
            (
                "\"structured_outputs\"",
                json_schema,
                json!({"format": {"type": "json_schema", "schema": schema}}),
            ),
            (
                "\"response_format\"",
                json!({"response_format": {"type": "json_object"}}),
                Value::Null,
            ),
            (
                "",
                json!({"output_config": {"effort": "low"}}),
                json!({"effort": "low"}),
            ),
        ];
        for (supported, fields, want) in cases {
            let body = encode_with(supported, user(fields.clone())).expect("encodes");
            assert_eq!(
                body.get("output_config").cloned().unwrap_or(Value::Null),
                want,
                "{supported} {fields}"
            );
            assert!(body.get("response_format").is_none());
        }
    }

    #[test]
    fn turns_alternate_with_tool_results_first_and_a_trimmed_prefill() {
        let body = encode(json!({"model": "anthropic/claude", "messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": ""}}]},
            {"role": "user", "content": "interjection"},
            {"role": "tool", "tool_call_id": "t1", "content": [{"type": "text", "text": "done"}]},
            {"role": "system", "content": "late system"},
            {"role": "assistant", "content": "Answer: \n "},
        ]}));
        assert_eq!(
            body["system"],
            json!([{"type": "text", "text": "late system"}])
        );
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": [{"type": "text", "text": "a"}]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "done"}]},
                    {"type": "text", "text": "interjection"},
                ]},
                {"role": "assistant", "content": [{"type": "text", "text": "Answer:"}]},
            ])
        );
        // A whitespace-only prefill is dropped.
        let body = encode(json!({"model": "anthropic/claude", "messages": [
            {"role": "user", "content": "a"}, {"role": "assistant", "content": "  "}]}));
        assert_eq!(body["messages"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn refusals_name_what_cannot_be_sent() {
        let cases = [
            (
                json!([{"role": "system", "content": "only a system prompt"}]),
                "at least one",
            ),
            (
                json!([{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA", "format": "mp3"}}]}]),
                "anthropic does not accept input_audio content parts",
            ),
            (
                json!([{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}]),
                "PDF",
            ),
            (
                json!([{"role": "user", "content": "x"}, {"role": "assistant", "content": null, "tool_calls": [{"id": "c9", "type": "function", "function": {"name": "f", "arguments": "[1,"}}]}]),
                "tool call c9",
            ),
        ];
        for (messages, needle) in cases {
            let e = encode_with(
                "",
                json!({"model": "anthropic/claude", "messages": messages}),
            )
            .expect_err("refused");
            assert!(e.0.contains(needle), "{e}");
        }
    }

    #[test]
    fn pdf_files_become_documents() {
        let body = encode(
            json!({"model": "anthropic/claude", "messages": [{"role": "user", "content": [
            {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}}]}]}),
        );
        assert_eq!(
            body["messages"][0]["content"][0],
            json!({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}})
        );
    }

    #[test]
    fn error_types_classify() {
        // (status, error type, kind, retryable)
        let cases = [
            (
                400,
                "invalid_request_error",
                UpstreamErrorKind::InvalidRequest,
                false,
            ),
            (
                401,
                "authentication_error",
                UpstreamErrorKind::ProviderAuth,
                true,
            ),
            (402, "billing_error", UpstreamErrorKind::ProviderAuth, true),
            (
                403,
                "permission_error",
                UpstreamErrorKind::ProviderAuth,
                true,
            ),
            (404, "not_found_error", UpstreamErrorKind::NotFound, true),
            (
                413,
                "request_too_large",
                UpstreamErrorKind::PayloadTooLarge,
                false,
            ),
            (
                429,
                "rate_limit_error",
                UpstreamErrorKind::RateLimited,
                true,
            ),
            (500, "api_error", UpstreamErrorKind::Server, true),
            (504, "timeout_error", UpstreamErrorKind::Timeout, true),
            (529, "overloaded_error", UpstreamErrorKind::Overloaded, true),
        ];
        for (status, kind_name, kind, retryable) in cases {
            let body =
                json!({"type": "error", "error": {"type": kind_name, "message": "m"}}).to_string();
            let e = AnthropicCodec.decode_error(status, body.as_bytes());
            assert_eq!(e.kind, kind, "{kind_name}");
            assert_eq!(e.retryable(), retryable, "{kind_name}");
            assert_eq!(e.status, Some(status));
            assert_eq!(e.message, "m");
            assert_eq!(e.provider_code.as_deref(), Some(kind_name));
            assert_eq!(e.raw.as_deref(), Some(body.as_str()));
            assert_eq!(status_for_error_type(kind_name), status, "{kind_name}");
        }
        // Without an envelope, the status decides.
        for (status, kind) in [
            (529, UpstreamErrorKind::Overloaded),
            (503, UpstreamErrorKind::Overloaded),
            (502, UpstreamErrorKind::Server),
            (429, UpstreamErrorKind::RateLimited),
        ] {
            let e = AnthropicCodec.decode_error(status, b"<html>bad gateway</html>");
            assert_eq!(e.kind, kind, "{status}");
            assert!(e.retryable());
            assert_eq!(e.message, format!("Anthropic returned HTTP {status}"));
        }
        let e = AnthropicCodec.decode_error(
            400,
            br#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 201000 tokens > 200000 maximum"}}"#,
        );
        assert_eq!(e.kind, UpstreamErrorKind::ContextLengthExceeded);
    }

    #[test]
    fn decode_rejects_what_is_not_a_message() {
        for body in [&b"nope"[..], b"{}", b"[]", b"{\"content\": 3}"] {
            let e = AnthropicCodec.decode(body).expect_err("invalid");
            assert_eq!(e.kind, UpstreamErrorKind::InvalidResponse);
        }
        let e = AnthropicCodec
            .decode(
                br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            )
            .expect_err("error body");
        assert_eq!(e.kind, UpstreamErrorKind::Overloaded);
        // Empty content: no text is a null content.
        let c = AnthropicCodec
            .decode(br#"{"id":"m","type":"message","content":[],"stop_reason":"pause_turn","usage":{"input_tokens":1,"output_tokens":0}}"#)
            .expect("decodes");
        assert_eq!(c.choices[0]["message"]["content"], Value::Null);
        assert_eq!(c.choices[0]["finish_reason"], "stop");
        assert_eq!(c.choices[0]["native_finish_reason"], "pause_turn");
    }

    fn events(stream: &str) -> Vec<StreamEvent> {
        let mut decoder = AnthropicCodec.stream_decoder();
        let mut out = decoder.feed(stream.as_bytes());
        out.extend(decoder.finish());
        out
    }

    fn event(kind: &str, data: Value) -> String {
        format!("event: {kind}\ndata: {data}\n\n")
    }

    #[test]
    fn tool_call_indices_count_tool_calls_only() {
        let stream = [
            event("message_start", json!({"type": "message_start", "message": {"id": "m1", "usage": {"input_tokens": 3, "output_tokens": 1}}})),
            event("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}})),
            event("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
            event("content_block_start", json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}})),
            event("content_block_stop", json!({"type": "content_block_stop", "index": 1})),
            event("content_block_start", json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "a", "name": "f", "input": {}}})),
            event("content_block_start", json!({"type": "content_block_start", "index": 3, "content_block": {"type": "tool_use", "id": "b", "name": "g", "input": {}}})),
            event("content_block_delta", json!({"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": "{}"}})),
            event("content_block_delta", json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"x\":1}"}})),
            event("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 7}})),
            event("message_stop", json!({"type": "message_stop"})),
        ]
        .concat();
        let events = events(&stream);
        let calls: Vec<(u64, Value)> = events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::Chunk { choices, .. } => {
                    choices[0]["delta"]["tool_calls"][0].as_object().map(|c| {
                        (
                            c["index"].as_u64().unwrap_or(99),
                            c["function"]["arguments"].clone(),
                        )
                    })
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            calls,
            vec![
                (0, json!("")),
                (1, json!("")),
                (1, json!("{}")),
                (0, json!("{\"x\":1}"))
            ]
        );
        let Some(StreamEvent::Chunk {
            choices,
            usage,
            upstream_id,
        }) = events.get(events.len() - 2)
        else {
            panic!("no finish chunk: {events:?}");
        };
        assert_eq!(upstream_id.as_deref(), Some("m1"));
        assert_eq!(choices[0]["finish_reason"], "tool_calls");
        assert_eq!(
            usage.map(|u| (u.prompt_tokens, u.completion_tokens)),
            Some((3, 7))
        );
        assert_eq!(events.last(), Some(&StreamEvent::Done));
    }

    #[test]
    fn the_first_chunk_carries_the_prompt_usage() {
        let stream = [
            event("message_start", json!({"type": "message_start", "message": {"id": "m1", "usage": {
                "input_tokens": 12, "output_tokens": 1, "cache_read_input_tokens": 2000,
                "cache_creation_input_tokens": 300}}})),
            event("ping", json!({"type": "ping"})),
            event("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})),
            event("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}})),
        ]
        .concat();
        let events = events(&stream);
        let Some(StreamEvent::Chunk {
            usage: Some(usage),
            choices,
            ..
        }) = events.first()
        else {
            panic!("no usage on the first chunk: {events:?}");
        };
        assert_eq!(choices[0]["delta"]["role"], "assistant");
        assert_eq!(usage.prompt_tokens, 2312);
        assert_eq!(usage.cached_tokens, 2000);
        assert_eq!(usage.cache_write_tokens, 300);
        assert_eq!(usage.completion_tokens, 1);
    }

    #[test]
    fn stream_errors_carry_their_kind() {
        for (kind_name, kind) in [
            ("overloaded_error", UpstreamErrorKind::Overloaded),
            ("rate_limit_error", UpstreamErrorKind::RateLimited),
            ("api_error", UpstreamErrorKind::Server),
            ("invalid_request_error", UpstreamErrorKind::InvalidRequest),
            ("something_new", UpstreamErrorKind::Server),
        ] {
            let events = events(&event(
                "error",
                json!({"type": "error", "error": {"type": kind_name, "message": "boom"}}),
            ));
            match events.as_slice() {
                [StreamEvent::Error(e)] => {
                    assert_eq!(e.kind, kind, "{kind_name}");
                    assert_eq!(e.message, "boom");
                }
                other => panic!("{kind_name}: {other:?}"),
            }
        }
        let events = events("event: content_block_delta\ndata: {not json\n\n");
        assert!(
            matches!(events.as_slice(), [StreamEvent::Error(e)] if e.kind == UpstreamErrorKind::InvalidResponse)
        );
    }

    #[test]
    fn odd_input_never_panics() {
        let inputs = [
            "data: {}\n\n",
            "data: null\n\ndata: []\n\ndata: 3\n\n",
            "data: {\"type\":\"content_block_delta\"}\n\n",
            "data: {\"type\":\"content_block_delta\",\"index\":-1,\"delta\":{\"type\":\"input_json_delta\"}}\n\n",
            "data: {\"type\":\"content_block_start\",\"index\":\"x\",\"content_block\":7}\n\n",
            "data: {\"type\":\"message_delta\",\"usage\":7,\"delta\":{\"stop_reason\":1}}\n\n",
            "data: {\"type\":\"message_start\",\"message\":3}\n\n",
            "data: {\"type\":\"error\",\"error\":\"x\"}\n\n",
            "event: ping\n\n\u{0}\u{ff}",
        ];
        for input in inputs {
            let _ = events(input);
        }
        for body in [
            &b"{\"content\":[1,{\"type\":\"tool_use\"},{\"type\":\"thinking\"}]}"[..],
            b"{\"content\":[],\"usage\":3}",
        ] {
            let _ = AnthropicCodec.decode(body);
        }
        let _ = AnthropicCodec.decode_error(0, b"\xff\xfe");
    }
}
