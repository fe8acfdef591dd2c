//! Google AI Studio's Gemini API: `POST {base_url}/models/{model}:generateContent`, and
//! `:streamGenerateContent?alt=sse` when streamed; the key goes in `x-goog-api-key`.
//!
//! Decisions:
//! - System and developer messages become `systemInstruction`; assistant turns are role `model`;
//!   consecutive turns of one role are merged; tool results are `functionResponse` parts named
//!   after the call they answer (looked up by `tool_call_id` in the conversation).
//! - Gemini gives function calls no ids: they get `call_<n>_<name>`, stable within a response.
//! - Thought signatures come back as `reasoning_details` of type `reasoning.encrypted` (with the
//!   tool call id when the signature belongs to a function call) and are put back on the same
//!   part in a follow-up turn.
//! - Reasoning: `reasoning.max_tokens` is `thinkingBudget`; `reasoning.effort` maps to a budget
//!   (minimal 512, low 2048, medium 8192, high 24576, max 32768); `enabled: false` or effort
//!   `none` is a budget of 0; thoughts are included unless `reasoning.exclude`.
//! - `response_format`: `json_object` sets `responseMimeType`; `json_schema` adds
//!   `responseJsonSchema`.

use serde_json::{json, Map, Value};
use switchyard_core::catalog::ProviderKind;
use switchyard_core::chat::{ChatRequest, Content, ContentPart, Message};
use switchyard_core::error::{UpstreamError, UpstreamErrorKind};
use switchyard_core::pricing::Usage;

use crate::sse::SseParser;
use crate::{
    parse_data_url, raw_excerpt, Codec, CodecError, Completion, StreamDecoder, StreamEvent, Target,
    UpstreamRequest,
};

/// The Gemini codec.
#[derive(Debug, Clone, Copy, Default)]
pub struct GeminiCodec;

/// Format tag of Gemini reasoning details.
pub const REASONING_FORMAT: &str = "google-gemini-v1";

/// Gemini's finish reasons in the contract's vocabulary (`tool_calls` is decided by the caller
/// when the candidate holds function calls).
pub fn normalize_finish_reason(native: &str) -> &'static str {
    match native {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY"
        | "LANGUAGE" => "content_filter",
        "MALFORMED_FUNCTION_CALL" | "UNEXPECTED_TOOL_CALL" | "TOO_MANY_TOOL_CALLS" => "error",
        _ => "stop",
    }
}

fn codec_error(message: impl Into<String>) -> CodecError {
    CodecError(message.into())
}

fn mime_from_url(url: &str) -> &'static str {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    match path.rsplit('.').next() {
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("heic") => "image/heic",
        Some("pdf") => "application/pdf",
        Some("mp4") => "video/mp4",
        _ => "image/jpeg",
    }
}

fn parts_of(content: &Content, out: &mut Vec<Value>) -> Result<(), CodecError> {
    match content {
        Content::Text(text) => {
            if !text.is_empty() {
                out.push(json!({"text": text}));
            }
        }
        Content::Parts(parts) => {
            for part in parts {
                match part {
                    ContentPart::Text { text, .. } => {
                        if !text.is_empty() {
                            out.push(json!({"text": text}));
                        }
                    }
                    ContentPart::ImageUrl { image_url } => {
                        out.push(match parse_data_url(&image_url.url) {
                            Some((mime, data)) => {
                                json!({"inlineData": {"mimeType": mime, "data": data}})
                            }
                            None => json!({"fileData": {"mimeType": mime_from_url(&image_url.url), "fileUri": image_url.url}}),
                        });
                    }
                    ContentPart::InputAudio { input_audio } => {
                        let data = input_audio.get("data").and_then(Value::as_str);
                        let format = input_audio
                            .get("format")
                            .and_then(Value::as_str)
                            .unwrap_or("wav");
                        let Some(data) = data else {
                            return Err(codec_error("input_audio parts need base64 data"));
                        };
                        out.push(json!({"inlineData": {"mimeType": format!("audio/{format}"), "data": data}}));
                    }
                    ContentPart::File { file } => {
                        match file
                            .get("file_data")
                            .and_then(Value::as_str)
                            .and_then(parse_data_url)
                        {
                            Some((mime, data)) => {
                                out.push(json!({"inlineData": {"mimeType": mime, "data": data}}));
                            }
                            None => {
                                return Err(codec_error(
                                    "gemini accepts file parts only as base64 data URLs (file_data: data:...;base64,...)",
                                ))
                            }
                        }
                    }
                    ContentPart::VideoUrl { video_url } => {
                        let url = video_url.get("url").and_then(Value::as_str).unwrap_or("");
                        if url.contains("youtube.com/") || url.contains("youtu.be/") {
                            out.push(
                                json!({"fileData": {"mimeType": "video/mp4", "fileUri": url}}),
                            );
                        } else if let Some((mime, data)) = parse_data_url(url) {
                            out.push(json!({"inlineData": {"mimeType": mime, "data": data}}));
                        } else {
                            return Err(codec_error(
                                "gemini accepts video_url content parts only as YouTube links or base64 data URLs",
                            ));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

fn push_turn(turns: &mut Vec<Value>, role: &str, mut parts: Vec<Value>) {
    if parts.is_empty() {
        return;
    }
    if let Some(last) = turns.last_mut() {
        if last["role"] == role {
            if let Some(existing) = last["parts"].as_array_mut() {
                existing.append(&mut parts);
                return;
            }
        }
    }
    turns.push(json!({"role": role, "parts": parts}));
}

fn effort_budget(effort: &str) -> Option<u64> {
    match effort {
        "none" => Some(0),
        "minimal" => Some(512),
        "low" => Some(2048),
        "medium" => Some(8192),
        "high" => Some(24576),
        "max" | "xhigh" => Some(32768),
        _ => None,
    }
}

fn thinking_config(request: &ChatRequest) -> Option<Value> {
    let reasoning = request.reasoning.as_ref();
    let effort = reasoning
        .and_then(|r| r.effort.as_deref())
        .or(request.reasoning_effort.as_deref());
    let budget = if reasoning.and_then(|r| r.enabled) == Some(false) {
        Some(0)
    } else if let Some(b) = reasoning.and_then(|r| r.max_tokens) {
        Some(b)
    } else if let Some(e) = effort {
        effort_budget(e)
    } else if reasoning.and_then(|r| r.enabled) == Some(true) {
        // Dynamic thinking.
        Some(u64::MAX)
    } else {
        None
    };
    let include = request.include_reasoning.unwrap_or(true)
        && reasoning.and_then(|r| r.exclude) != Some(true);
    match budget {
        None if reasoning.is_none() && request.include_reasoning.is_none() => None,
        None => Some(json!({"includeThoughts": include})),
        Some(0) => Some(json!({"thinkingBudget": 0})),
        Some(u64::MAX) => Some(json!({"thinkingBudget": -1, "includeThoughts": include})),
        Some(b) => Some(json!({"thinkingBudget": b, "includeThoughts": include})),
    }
}

impl Codec for GeminiCodec {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Gemini
    }

    fn encode(
        &self,
        request: &ChatRequest,
        target: &Target<'_>,
    ) -> Result<UpstreamRequest, CodecError> {
        let mut system: Vec<Value> = Vec::new();
        let mut turns: Vec<Value> = Vec::new();
        // Function names by call id, for tool results.
        let mut call_names: Vec<(&str, &str)> = Vec::new();
        for message in &request.messages {
            match message {
                Message::System { content, .. } | Message::Developer { content, .. } => {
                    parts_of(content, &mut system)?;
                }
                Message::User { content, .. } => {
                    let mut parts = Vec::new();
                    parts_of(content, &mut parts)?;
                    push_turn(&mut turns, "user", parts);
                }
                Message::Assistant {
                    content,
                    tool_calls,
                    reasoning_details,
                    ..
                } => {
                    let signatures: Vec<&Value> = reasoning_details
                        .iter()
                        .flatten()
                        .filter(|d| {
                            d.get("type").and_then(Value::as_str) == Some("reasoning.encrypted")
                                && d.get("format").and_then(Value::as_str) == Some(REASONING_FORMAT)
                        })
                        .collect();
                    let mut parts = Vec::new();
                    if let Some(content) = content {
                        parts_of(content, &mut parts)?;
                    }
                    for call in tool_calls.iter().flatten() {
                        call_names.push((call.id.as_str(), call.function.name.as_str()));
                        let arguments = call.function.arguments.trim();
                        let args: Value = if arguments.is_empty() {
                            json!({})
                        } else {
                            serde_json::from_str(arguments).map_err(|e| {
                                codec_error(format!(
                                    "tool call {} has arguments that are not JSON: {e}",
                                    call.id
                                ))
                            })?
                        };
                        let mut part =
                            json!({"functionCall": {"name": call.function.name, "args": args}});
                        if let Some(sig) = signatures
                            .iter()
                            .find(|d| d.get("id").and_then(Value::as_str) == Some(call.id.as_str()))
                            .and_then(|d| d.get("data"))
                        {
                            part["thoughtSignature"] = sig.clone();
                        }
                        parts.push(part);
                    }
                    // A signature not tied to a call goes back on the first part.
                    if let Some(sig) = signatures
                        .iter()
                        .find(|d| d.get("id").is_none_or(Value::is_null))
                        .and_then(|d| d.get("data"))
                    {
                        if let Some(first) = parts.first_mut() {
                            if first.get("thoughtSignature").is_none() {
                                first["thoughtSignature"] = sig.clone();
                            }
                        }
                    }
                    push_turn(&mut turns, "model", parts);
                }
                Message::Tool {
                    content,
                    tool_call_id,
                } => {
                    let Some(name) = call_names
                        .iter()
                        .rev()
                        .find(|(id, _)| *id == tool_call_id.as_str())
                        .map(|(_, name)| *name)
                    else {
                        return Err(codec_error(format!(
                            "gemini needs the function name of tool result {tool_call_id}: no earlier assistant tool call has that id"
                        )));
                    };
                    let text = content.text();
                    let response = match serde_json::from_str::<Value>(&text) {
                        Ok(v @ Value::Object(_)) => v,
                        _ => json!({"content": text}),
                    };
                    push_turn(
                        &mut turns,
                        "user",
                        vec![json!({"functionResponse": {"name": name, "response": response}})],
                    );
                }
            }
        }
        if turns.is_empty() {
            return Err(codec_error(
                "gemini needs at least one user or assistant message besides the system prompt",
            ));
        }
        let mut body = Map::new();
        body.insert("contents".into(), Value::Array(turns));
        if !system.is_empty() {
            body.insert("systemInstruction".into(), json!({"parts": system}));
        }

        let mut config = Map::new();
        if let Some(n) = request.max_output_tokens() {
            config.insert("maxOutputTokens".into(), json!(n));
        }
        if let Some(v) = request.temperature {
            config.insert("temperature".into(), json!(v));
        }
        if let Some(v) = request.top_p {
            config.insert("topP".into(), json!(v));
        }
        if let Some(v) = request.top_k {
            config.insert("topK".into(), json!(v));
        }
        if let Some(stop) = &request.stop {
            config.insert("stopSequences".into(), json!(stop.sequences()));
        }
        if let Some(v) = request.seed {
            config.insert("seed".into(), json!(v));
        }
        if let Some(v) = request.presence_penalty {
            config.insert("presencePenalty".into(), json!(v));
        }
        if let Some(v) = request.frequency_penalty {
            config.insert("frequencyPenalty".into(), json!(v));
        }
        if request.logprobs == Some(true) {
            config.insert("responseLogprobs".into(), json!(true));
            if let Some(n) = request.top_logprobs {
                config.insert("logprobs".into(), json!(n));
            }
        }
        if let Some(format) = &request.response_format {
            match format.get("type").and_then(Value::as_str) {
                Some("json_object") => {
                    config.insert("responseMimeType".into(), json!("application/json"));
                }
                Some("json_schema") => {
                    config.insert("responseMimeType".into(), json!("application/json"));
                    if let Some(schema) = format.pointer("/json_schema/schema") {
                        config.insert("responseJsonSchema".into(), schema.clone());
                    }
                }
                _ => {}
            }
        }
        if let Some(thinking) = thinking_config(request) {
            config.insert("thinkingConfig".into(), thinking);
        }
        if !config.is_empty() {
            body.insert("generationConfig".into(), Value::Object(config));
        }

        if let Some(tools) = &request.tools {
            let mut declarations = Vec::with_capacity(tools.len());
            for tool in tools {
                let Some(f) = &tool.function else {
                    return Err(codec_error(format!(
                        "gemini accepts only function tools, not {:?}",
                        tool.kind
                    )));
                };
                let mut d = json!({"name": f.name});
                if let Some(desc) = &f.description {
                    d["description"] = json!(desc);
                }
                if let Some(p) = &f.parameters {
                    d["parametersJsonSchema"] = p.clone();
                }
                declarations.push(d);
            }
            body.insert(
                "tools".into(),
                json!([{"functionDeclarations": declarations}]),
            );
        }
        if let Some(choice) = &request.tool_choice {
            let config = match choice {
                Value::String(s) => match s.as_str() {
                    "auto" => json!({"mode": "AUTO"}),
                    "none" => json!({"mode": "NONE"}),
                    "required" | "any" => json!({"mode": "ANY"}),
                    other => {
                        return Err(codec_error(format!(
                            "tool_choice {other:?} is not one of auto, none, required"
                        )))
                    }
                },
                v => match v.pointer("/function/name").and_then(Value::as_str) {
                    Some(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
                    None => {
                        return Err(codec_error(
                            "tool_choice must be auto, none, required or {type: function, function: {name}}",
                        ))
                    }
                },
            };
            body.insert(
                "toolConfig".into(),
                json!({"functionCallingConfig": config}),
            );
        }

        let base = target.provider.base_url.trim_end_matches('/');
        let model = &target.endpoint.upstream_model;
        let url = if request.is_stream() {
            format!("{base}/models/{model}:streamGenerateContent?alt=sse")
        } else {
            format!("{base}/models/{model}:generateContent")
        };
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        if let Some(key) = target.api_key {
            headers.push(("x-goog-api-key".to_owned(), key.to_owned()));
        }
        let body = serde_json::to_vec(&Value::Object(body))
            .map_err(|e| codec_error(format!("could not encode the request: {e}")))?;
        Ok(UpstreamRequest { url, headers, body })
    }

    fn decode(&self, body: &[u8]) -> Result<Completion, UpstreamError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| UpstreamError {
            raw: Some(raw_excerpt(body)),
            ..UpstreamError::new(
                UpstreamErrorKind::InvalidResponse,
                None,
                format!("Gemini answered with a body that is not JSON: {e}"),
            )
        })?;
        if value.get("error").is_some() {
            return Err(self.decode_error(502, body));
        }
        let mut state = Decoded::default();
        let (delta, finish) = state.candidate(&value);
        let mut message = json!({"role": "assistant", "content": delta.get("content").cloned().unwrap_or(json!(""))});
        for key in ["tool_calls", "reasoning", "reasoning_details"] {
            if let Some(v) = delta.get(key) {
                message[key] = v.clone();
            }
        }
        // A message's tool calls carry no stream index.
        for call in message
            .get_mut("tool_calls")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(c) = call.as_object_mut() {
                c.remove("index");
            }
        }
        if message.get("tool_calls").is_some() && message["content"] == "" {
            message["content"] = Value::Null;
        }
        let (reason, native) = finish.unwrap_or(("stop", String::from("STOP")));
        Ok(Completion {
            upstream_id: value
                .get("responseId")
                .and_then(Value::as_str)
                .map(str::to_owned),
            choices: vec![json!({
                "index": 0,
                "message": message,
                "finish_reason": reason,
                "native_finish_reason": native,
            })],
            usage: value.get("usageMetadata").map(parse_usage),
            system_fingerprint: value.get("modelVersion").cloned(),
            service_tier: None,
        })
    }

    fn decode_error(&self, status: u16, body: &[u8]) -> UpstreamError {
        let value: Option<Value> = serde_json::from_slice(body).ok();
        // Some errors arrive as a one-element array.
        let error = value.as_ref().and_then(|v| {
            v.get("error")
                .or_else(|| v.get(0).and_then(|e| e.get("error")))
        });
        let code = error.and_then(|e| e.get("status")).and_then(Value::as_str);
        let message = error
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("Gemini returned HTTP {status}"));
        let kind = match code {
            Some("INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE")
                if message.contains("token count") && message.contains("exceeds") =>
            {
                UpstreamErrorKind::ContextLengthExceeded
            }
            Some("INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE") => {
                UpstreamErrorKind::InvalidRequest
            }
            Some("UNAUTHENTICATED" | "PERMISSION_DENIED") => UpstreamErrorKind::ProviderAuth,
            Some("NOT_FOUND") => UpstreamErrorKind::NotFound,
            Some("RESOURCE_EXHAUSTED") => UpstreamErrorKind::RateLimited,
            Some("UNAVAILABLE") => UpstreamErrorKind::Overloaded,
            Some("DEADLINE_EXCEEDED") => UpstreamErrorKind::Timeout,
            Some("INTERNAL" | "UNKNOWN") => UpstreamErrorKind::Server,
            _ => UpstreamError::kind_for_status(status),
        };
        UpstreamError {
            kind,
            status: Some(status),
            message,
            raw: Some(raw_excerpt(body)),
            provider_code: code.map(str::to_owned),
        }
    }

    fn stream_decoder(&self) -> Box<dyn StreamDecoder> {
        Box::new(GeminiStream::default())
    }
}

/// Gemini's usage metadata; thoughts count as completion (and reasoning) tokens.
pub fn parse_usage(meta: &Value) -> Usage {
    let n = |k: &str| meta.get(k).and_then(Value::as_u64).unwrap_or(0);
    let thoughts = n("thoughtsTokenCount");
    Usage {
        prompt_tokens: n("promptTokenCount") + n("toolUsePromptTokenCount"),
        completion_tokens: n("candidatesTokenCount") + thoughts,
        cached_tokens: n("cachedContentTokenCount"),
        cache_write_tokens: 0,
        reasoning_tokens: thoughts,
        audio_prompt_tokens: 0,
        web_search_requests: 0,
    }
}

/// Turns candidates into OpenAI deltas, numbering function calls across a whole response.
#[derive(Default)]
struct Decoded {
    calls: usize,
    reasoning_index: usize,
}

impl Decoded {
    /// The delta of the first candidate, and `(finish_reason, native)` when it finished.
    fn candidate(&mut self, value: &Value) -> (Value, Option<(&'static str, String)>) {
        let mut delta = Map::new();
        let candidate = value.pointer("/candidates/0");
        let Some(candidate) = candidate else {
            // No candidate: the prompt itself was blocked.
            if let Some(reason) = value
                .pointer("/promptFeedback/blockReason")
                .and_then(Value::as_str)
            {
                delta.insert("content".into(), json!(""));
                return (
                    Value::Object(delta),
                    Some(("content_filter", reason.to_owned())),
                );
            }
            return (Value::Object(delta), None);
        };
        let mut text = String::new();
        let mut reasoning = String::new();
        let mut details: Vec<Value> = Vec::new();
        let mut calls: Vec<Value> = Vec::new();
        for part in candidate
            .pointer("/content/parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let signature = part.get("thoughtSignature").cloned();
            if let Some(call) = part.get("functionCall") {
                let name = call.get("name").and_then(Value::as_str).unwrap_or("");
                let id = call
                    .get("id")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("call_{}_{name}", self.calls), str::to_owned);
                let args = call.get("args").cloned().unwrap_or_else(|| json!({}));
                calls.push(json!({
                    "index": self.calls,
                    "id": id,
                    "type": "function",
                    "function": {"name": name, "arguments": args.to_string()},
                }));
                self.calls += 1;
                if let Some(sig) = signature {
                    details.push(json!({"type": "reasoning.encrypted", "data": sig, "id": id,
                                        "format": REASONING_FORMAT, "index": self.reasoning_index}));
                    self.reasoning_index += 1;
                }
                continue;
            }
            let Some(t) = part.get("text").and_then(Value::as_str) else {
                continue;
            };
            if part.get("thought").and_then(Value::as_bool) == Some(true) {
                reasoning.push_str(t);
                details.push(json!({"type": "reasoning.text", "text": t,
                                    "format": REASONING_FORMAT, "index": self.reasoning_index}));
                self.reasoning_index += 1;
            } else {
                text.push_str(t);
            }
            if let Some(sig) = signature {
                details.push(json!({"type": "reasoning.encrypted", "data": sig,
                                    "format": REASONING_FORMAT, "index": self.reasoning_index}));
                self.reasoning_index += 1;
            }
        }
        if !text.is_empty() {
            delta.insert("content".into(), json!(text));
        }
        if !reasoning.is_empty() {
            delta.insert("reasoning".into(), json!(reasoning));
        }
        if !details.is_empty() {
            delta.insert("reasoning_details".into(), Value::Array(details));
        }
        let has_calls = !calls.is_empty() || self.calls > 0;
        if !calls.is_empty() {
            delta.insert("tool_calls".into(), Value::Array(calls));
        }
        let finish = candidate
            .get("finishReason")
            .and_then(Value::as_str)
            .filter(|r| *r != "FINISH_REASON_UNSPECIFIED")
            .map(|native| {
                let reason = match normalize_finish_reason(native) {
                    "stop" if has_calls => "tool_calls",
                    other => other,
                };
                (reason, native.to_owned())
            });
        (Value::Object(delta), finish)
    }
}

#[derive(Default)]
struct GeminiStream {
    parser: SseParser,
    decoded: Decoded,
    started: bool,
    finished: bool,
}

impl GeminiStream {
    fn events(&mut self, events: Vec<crate::sse::SseEvent>) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        for event in events {
            let data = event.data.trim();
            if data.is_empty() {
                continue;
            }
            let value: Value = match serde_json::from_str(data) {
                Ok(v) => v,
                Err(e) => {
                    out.push(StreamEvent::Error(UpstreamError {
                        raw: Some(raw_excerpt(data.as_bytes())),
                        ..UpstreamError::new(
                            UpstreamErrorKind::InvalidResponse,
                            None,
                            format!("Gemini sent an invalid stream chunk: {e}"),
                        )
                    }));
                    continue;
                }
            };
            if let Some(error) = value.get("error") {
                let status = error
                    .get("code")
                    .and_then(Value::as_u64)
                    .and_then(|c| u16::try_from(c).ok())
                    .filter(|s| (400..600).contains(s))
                    .unwrap_or(502);
                out.push(StreamEvent::Error(
                    GeminiCodec.decode_error(status, data.as_bytes()),
                ));
                continue;
            }
            let (mut delta, finish) = self.decoded.candidate(&value);
            if !self.started {
                self.started = true;
                delta["role"] = json!("assistant");
            }
            let mut choice = json!({"index": 0, "delta": delta, "finish_reason": Value::Null, "native_finish_reason": Value::Null});
            if let Some((reason, native)) = finish {
                self.finished = true;
                choice["finish_reason"] = json!(reason);
                choice["native_finish_reason"] = json!(native);
            }
            out.push(StreamEvent::Chunk {
                upstream_id: value
                    .get("responseId")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                choices: vec![choice],
                usage: value.get("usageMetadata").map(parse_usage),
            });
        }
        out
    }
}

impl StreamDecoder for GeminiStream {
    fn feed(&mut self, bytes: &[u8]) -> Vec<StreamEvent> {
        let events = self.parser.feed(bytes);
        self.events(events)
    }

    fn finish(&mut self) -> Vec<StreamEvent> {
        let events = self.parser.finish();
        let mut out = self.events(events);
        // Gemini ends a stream by closing it; a stream that never finished is left to the
        // engine, which reports it as cut.
        if self.finished {
            out.push(StreamEvent::Done);
        }
        out
    }
}
