//! Anthropic's Messages API (`POST {base_url}/messages`), spoken to Anthropic upstreams.
//!
//! Decisions:
//! - System and developer messages become the top-level `system` blocks, wherever they appear.
//! - Consecutive turns of one role are merged (Anthropic requires alternating roles); tool
//!   results become `tool_result` blocks of a user turn.
//! - `max_tokens` is required: the request's, else the endpoint's `max_completion_tokens`, else
//!   4096.
//! - `response_format` has no equivalent in the Messages API and is not sent; routing already
//!   keeps requests with `require_parameters` away from endpoints that do not list it.
//! - Reasoning: a native `thinking` object (from the gateway's `/messages` endpoint) is sent as
//!   is; otherwise `reasoning.max_tokens` is the thinking budget and `reasoning.effort` a share
//!   of `max_tokens`. With thinking on, `temperature` and `top_k` are not sent (Anthropic
//!   refuses them together).
//! - Audio and video parts cannot be expressed: a [`CodecError`] names the part.

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

/// Appends blocks to the last turn when it has the same role, else starts a turn.
fn push_turn(turns: &mut Vec<Value>, role: &str, mut blocks: Vec<Value>) {
    if blocks.is_empty() {
        return;
    }
    if let Some(last) = turns.last_mut() {
        if last["role"] == role {
            if let Some(existing) = last["content"].as_array_mut() {
                existing.append(&mut blocks);
                return;
            }
        }
    }
    turns.push(json!({"role": role, "content": blocks}));
}

fn assistant_blocks(
    content: Option<&Content>,
    tool_calls: Option<&Vec<switchyard_core::chat::ToolCall>>,
    reasoning_details: Option<&Vec<Value>>,
) -> Result<Vec<Value>, CodecError> {
    let mut blocks = Vec::new();
    for detail in reasoning_details.into_iter().flatten() {
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
    let effort = reasoning
        .and_then(|r| r.effort.as_deref())
        .or(request.reasoning_effort.as_deref());
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

impl Codec for AnthropicCodec {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Anthropic
    }

    fn encode(
        &self,
        request: &ChatRequest,
        target: &Target<'_>,
    ) -> Result<UpstreamRequest, CodecError> {
        let mut system: Vec<Value> = Vec::new();
        let mut turns: Vec<Value> = Vec::new();
        for message in &request.messages {
            match message {
                Message::System { content, .. } | Message::Developer { content, .. } => {
                    part_blocks(content, &mut system)?;
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
        let thinking_on = thinking
            .as_ref()
            .is_some_and(|t| t.get("type").and_then(Value::as_str) == Some("enabled"));
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
        if let Some(p) = request.top_p {
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
        if request.is_stream() {
            body.insert("stream".into(), json!(true));
        }

        let mut headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("anthropic-version".to_owned(), API_VERSION.to_owned()),
        ];
        if let Some(key) = target.api_key {
            headers.push(("x-api-key".to_owned(), key.to_owned()));
        }
        let body = serde_json::to_vec(&Value::Object(body))
            .map_err(|e| codec_error(format!("could not encode the request: {e}")))?;
        Ok(UpstreamRequest {
            url: format!(
                "{}/messages",
                target.provider.base_url.trim_end_matches('/')
            ),
            headers,
            body,
        })
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
        let mut text = String::new();
        let mut reasoning = String::new();
        let mut details: Vec<Value> = Vec::new();
        let mut tool_calls: Vec<Value> = Vec::new();
        for block in value
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
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
            "content": if text.is_empty() && !tool_calls.is_empty() { Value::Null } else { json!(text) },
        });
        if !tool_calls.is_empty() {
            message["tool_calls"] = Value::Array(tool_calls);
        }
        if !details.is_empty() {
            message["reasoning"] = json!(reasoning);
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
            Some("invalid_request_error") if message.contains("prompt is too long") => {
                UpstreamErrorKind::ContextLengthExceeded
            }
            Some("invalid_request_error") => UpstreamErrorKind::InvalidRequest,
            Some("authentication_error" | "permission_error") => UpstreamErrorKind::ProviderAuth,
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
    blocks: Vec<(u64, Block)>,
    tool_calls: usize,
    reasoning_index: usize,
    /// Usage from `message_start`, completed by `message_delta`.
    usage: Value,
}

impl AnthropicStream {
    fn block(&self, index: u64) -> Block {
        self.blocks
            .iter()
            .rev()
            .find(|(i, _)| *i == index)
            .map_or(Block::Other, |(_, b)| *b)
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
                out.push(self.chunk(json!({"role": "assistant", "content": ""}), None, None));
            }
            "content_block_start" => {
                let index = value.get("index").and_then(Value::as_u64).unwrap_or(0);
                let block = value.get("content_block").cloned().unwrap_or(Value::Null);
                match block.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        self.blocks.push((index, Block::Text));
                        if let Some(t) = block
                            .get("text")
                            .and_then(Value::as_str)
                            .filter(|t| !t.is_empty())
                        {
                            out.push(self.chunk(json!({"content": t}), None, None));
                        }
                    }
                    Some("thinking") => self.blocks.push((index, Block::Thinking)),
                    Some("redacted_thinking") => {
                        self.blocks.push((index, Block::Other));
                        let detail = json!({"type": "reasoning.encrypted", "data": block.get("data").cloned().unwrap_or(Value::Null),
                                            "format": REASONING_FORMAT, "index": self.reasoning_index});
                        self.reasoning_index += 1;
                        out.push(self.chunk(json!({"reasoning_details": [detail]}), None, None));
                    }
                    Some("tool_use") => {
                        let call = self.tool_calls;
                        self.tool_calls += 1;
                        self.blocks.push((index, Block::Tool(call)));
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
                    _ => self.blocks.push((index, Block::Other)),
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
                let status = match value.pointer("/error/type").and_then(Value::as_str) {
                    Some("overloaded_error") => 529,
                    Some("rate_limit_error") => 429,
                    Some("invalid_request_error") => 400,
                    Some("timeout_error") => 504,
                    _ => 500,
                };
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
