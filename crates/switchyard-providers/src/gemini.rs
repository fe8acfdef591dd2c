//! Google AI Studio's Gemini API: `POST {base_url}/models/{model}:generateContent`, and
//! `:streamGenerateContent?alt=sse` when streamed; the key goes in `x-goog-api-key`. Embeddings
//! are in `gemini/embeddings.rs`; Gemini has no legacy completions API.
//!
//! Decisions:
//! - System and developer messages become `systemInstruction`; assistant turns are role `model`;
//!   consecutive turns of one role are merged; tool results are `functionResponse` parts named
//!   after the call they answer (looked up by `tool_call_id` in the conversation).
//! - Function calls without an upstream `id` get `call_<n>_<name>`, stable within a response.
//! - Thought signatures come back in `reasoning_details`: as the `signature` of the
//!   `reasoning.text` detail when Gemini put it on a thought part, otherwise as a
//!   `reasoning.encrypted` detail (with the tool call id when it belongs to a function call).
//!   In a follow-up turn a call's signature goes back on that call's `functionCall` part; a
//!   signature tied to no call goes on the last text part (where Gemini puts it in answers
//!   without calls). Thought text itself is not sent back.
//! - Reasoning: `reasoning.max_tokens` is `thinkingBudget`; `reasoning.effort` maps to a budget
//!   (minimal 512, low 2048, medium 8192, high 24576, max 32768); `enabled: false` or effort
//!   `none` is a budget of 0; thoughts are included unless `reasoning.exclude`.
//!   `thinkingLevel` (Gemini 3) is not used: those models still accept `thinkingBudget`.
//! - `response_format`: `json_object` sets `responseMimeType`; `json_schema` adds
//!   `responseJsonSchema` (full JSON Schema, unlike the OpenAPI subset of `responseSchema`);
//!   function parameters likewise go in `parametersJsonSchema`.
//! - `logprobs`/`top_logprobs` are `responseLogprobs`/`logprobs`; `logprobsResult` comes back
//!   as OpenAI `logprobs.content`.
//! - Usage: prompt tokens include tool-use prompt tokens; completion tokens include thoughts;
//!   audio prompt tokens come from `promptTokensDetails`.
//! - A stream ends with [`StreamEvent::Done`] only when a chunk carried a `finishReason`; a
//!   stream cut before that is left to the engine to report.

use std::collections::HashMap;

use serde_json::{json, Map, Value};
use switchyard_core::catalog::ProviderKind;
use switchyard_core::chat::{ChatRequest, Content, ContentPart, Message};
use switchyard_core::embeddings::{Embeddings, EmbeddingsRequest};
use switchyard_core::error::{UpstreamError, UpstreamErrorKind};
use switchyard_core::pricing::Usage;

use crate::sse::SseParser;

pub mod embeddings;
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
                            return Err(codec_error(
                                "gemini accepts input_audio parts only with base64 data",
                            ));
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

/// The Gemini signature of an assistant turn that belongs to no tool call: a
/// `reasoning.encrypted` detail without id, or the signature of a `reasoning.text` detail.
fn unbound_signature(details: Option<&[Value]>) -> Option<&Value> {
    let mut found = None;
    for d in details.into_iter().flatten() {
        if d.get("format").and_then(Value::as_str) != Some(REASONING_FORMAT) {
            continue;
        }
        let sig = match d.get("type").and_then(Value::as_str) {
            Some("reasoning.encrypted") if d.get("id").is_none_or(Value::is_null) => d.get("data"),
            Some("reasoning.text") => d.get("signature"),
            _ => None,
        };
        // The latest signature of the turn wins.
        if let Some(sig) = sig.filter(|s| s.as_str().is_some_and(|s| !s.is_empty())) {
            found = Some(sig);
        }
    }
    found
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
        // Function names by call id, for tool results (the latest call of an id wins).
        let mut call_names: HashMap<&str, &str> = HashMap::new();
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
                    // Signatures by call id (the first of an id wins).
                    let mut signatures: HashMap<&str, &Value> = HashMap::new();
                    for d in reasoning_details.iter().flatten().filter(|d| {
                        d.get("type").and_then(Value::as_str) == Some("reasoning.encrypted")
                            && d.get("format").and_then(Value::as_str) == Some(REASONING_FORMAT)
                    }) {
                        if let (Some(id), Some(data)) =
                            (d.get("id").and_then(Value::as_str), d.get("data"))
                        {
                            signatures.entry(id).or_insert(data);
                        }
                    }
                    let mut parts = Vec::new();
                    if let Some(content) = content {
                        parts_of(content, &mut parts)?;
                    }
                    for call in tool_calls.iter().flatten() {
                        call_names.insert(call.id.as_str(), call.function.name.as_str());
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
                        if let Some(sig) = signatures.get(call.id.as_str()) {
                            part["thoughtSignature"] = (*sig).clone();
                        }
                        parts.push(part);
                    }
                    // A signature not tied to a call (from a text or thought part) goes back on
                    // the last text part, where Gemini puts it in answers without calls; with
                    // no text, on the first part that has none.
                    if let Some(sig) = unbound_signature(reasoning_details.as_deref()) {
                        let slot = match parts.iter().rposition(|p| p.get("text").is_some()) {
                            Some(i) => Some(i),
                            None => parts
                                .iter()
                                .position(|p| p.get("thoughtSignature").is_none()),
                        };
                        if let Some(part) = slot.and_then(|i| parts.get_mut(i)) {
                            if part.get("thoughtSignature").is_none() {
                                part["thoughtSignature"] = sig.clone();
                            }
                        }
                    }
                    push_turn(&mut turns, "model", parts);
                }
                Message::Tool {
                    content,
                    tool_call_id,
                } => {
                    let Some(name) = call_names.get(tool_call_id.as_str()).copied() else {
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
        let mut choice = json!({
            "index": 0,
            "message": message,
            "finish_reason": reason,
            "native_finish_reason": native,
        });
        if let Some(lp) = logprobs(&value) {
            choice["logprobs"] = lp;
        }
        Ok(Completion {
            upstream_id: value
                .get("responseId")
                .and_then(Value::as_str)
                .map(str::to_owned),
            choices: vec![choice],
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
        // A bad key is `INVALID_ARGUMENT` with reason `API_KEY_INVALID` in the details.
        let key_invalid = error
            .and_then(|e| e.get("details"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|d| d.get("reason").and_then(Value::as_str) == Some("API_KEY_INVALID"));
        let kind = match code {
            _ if key_invalid => UpstreamErrorKind::ProviderAuth,
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

    fn encode_embeddings(
        &self,
        request: &EmbeddingsRequest,
        target: &Target<'_>,
    ) -> Result<UpstreamRequest, CodecError> {
        embeddings::encode(request, target)
    }

    fn decode_embeddings(
        &self,
        request: &EmbeddingsRequest,
        body: &[u8],
    ) -> Result<Embeddings, UpstreamError> {
        embeddings::decode(request, body, |b| self.decode_error(502, b))
    }
}

/// The first candidate's `logprobsResult` as OpenAI `logprobs` (`{content: [{token, logprob,
/// bytes, top_logprobs}]}`); `None` when absent.
fn logprobs(value: &Value) -> Option<Value> {
    let result = value.pointer("/candidates/0/logprobsResult")?;
    let chosen = result.get("chosenCandidates")?.as_array()?;
    let top = result.get("topCandidates").and_then(Value::as_array);
    let entry = |c: &Value| {
        json!({
            "token": c.get("token").and_then(Value::as_str).unwrap_or(""),
            "logprob": c.get("logProbability").and_then(Value::as_f64).unwrap_or(0.0),
            "bytes": Value::Null,
        })
    };
    let content: Vec<Value> = chosen
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut e = entry(c);
            let alternatives: Vec<Value> = top
                .and_then(|t| t.get(i))
                .and_then(|t| t.get("candidates"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(entry)
                .collect();
            e["top_logprobs"] = Value::Array(alternatives);
            e
        })
        .collect();
    Some(json!({"content": content}))
}

/// Gemini's usage metadata; thoughts count as completion (and reasoning) tokens.
pub fn parse_usage(meta: &Value) -> Usage {
    let n = |k: &str| meta.get(k).and_then(Value::as_u64).unwrap_or(0);
    let audio = meta
        .get("promptTokensDetails")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|d| d.get("modality").and_then(Value::as_str) == Some("AUDIO"))
        .filter_map(|d| d.get("tokenCount").and_then(Value::as_u64))
        .sum();
    let thoughts = n("thoughtsTokenCount");
    Usage {
        prompt_tokens: n("promptTokenCount") + n("toolUsePromptTokenCount"),
        completion_tokens: n("candidatesTokenCount") + thoughts,
        cached_tokens: n("cachedContentTokenCount"),
        cache_write_tokens: 0,
        reasoning_tokens: thoughts,
        audio_prompt_tokens: audio,
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
                let mut detail = json!({"type": "reasoning.text", "text": t,
                                        "format": REASONING_FORMAT, "index": self.reasoning_index});
                if let Some(sig) = signature {
                    detail["signature"] = sig;
                }
                details.push(detail);
                self.reasoning_index += 1;
                continue;
            }
            text.push_str(t);
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
            if let Some(lp) = logprobs(&value) {
                choice["logprobs"] = lp;
            }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use switchyard_core::catalog::Catalog;

    fn catalog() -> Catalog {
        Catalog::from_toml(
            "test",
            r#"
[[providers]]
slug = "g"
name = "G"
kind = "gemini"
base_url = "https://generativelanguage.googleapis.com/v1beta/"
api_key_env = "G_KEY"

[[models]]
id = "a/m"
name = "M"
context_length = 1000000

[[models.endpoints]]
provider = "g"
upstream_model = "gemini-2.5-flash"
pricing = { prompt = "0.0000003", completion = "0.0000025" }
"#,
        )
        .unwrap()
    }

    fn encode(request: Value) -> Result<(UpstreamRequest, Value), CodecError> {
        let catalog = catalog();
        let target = Target {
            provider: catalog.provider("g").unwrap(),
            endpoint: &catalog.model("a/m").unwrap().endpoints[0],
            api_key: Some("k"),
        };
        let request = ChatRequest::from_value(request).unwrap();
        let upstream = GeminiCodec.encode(&request, &target)?;
        let body = serde_json::from_slice(&upstream.body).unwrap();
        Ok((upstream, body))
    }

    fn body(extra: Value) -> Value {
        let mut request = json!({"model": "a/m", "messages": [{"role": "user", "content": "hi"}]});
        for (k, v) in extra.as_object().unwrap() {
            request[k] = v.clone();
        }
        encode(request).unwrap().1
    }

    #[test]
    fn url_and_headers() {
        let (up, _) =
            encode(json!({"model": "a/m", "messages": [{"role": "user", "content": "hi"}]}))
                .unwrap();
        assert_eq!(
            up.url,
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
        );
        assert!(up.headers.contains(&("x-goog-api-key".into(), "k".into())));
        assert!(up
            .headers
            .contains(&("content-type".into(), "application/json".into())));
        let (up, _) = encode(
            json!({"model": "a/m", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .unwrap();
        assert!(up.url.ends_with(":streamGenerateContent?alt=sse"));
    }

    #[test]
    fn mime_types_are_guessed_from_the_extension() {
        for (url, want) in [
            ("https://x/a.PNG", "image/png"),
            ("https://x/a.webp?size=2", "image/webp"),
            ("https://x/a.gif#f", "image/gif"),
            ("https://x/doc.pdf", "application/pdf"),
            ("https://x/a", "image/jpeg"),
            ("https://x/a.jpeg", "image/jpeg"),
        ] {
            assert_eq!(mime_from_url(url), want, "{url}");
        }
    }

    #[test]
    fn tool_choice_maps_to_function_calling_config() {
        let cases = [
            (json!("auto"), json!({"mode": "AUTO"})),
            (json!("none"), json!({"mode": "NONE"})),
            (json!("required"), json!({"mode": "ANY"})),
            (
                json!({"type": "function", "function": {"name": "f"}}),
                json!({"mode": "ANY", "allowedFunctionNames": ["f"]}),
            ),
        ];
        for (choice, want) in cases {
            let b = body(json!({"tool_choice": choice}));
            assert_eq!(b["toolConfig"]["functionCallingConfig"], want, "{choice}");
        }
    }

    #[test]
    fn generation_config_fields() {
        let cases = [
            (json!({"max_tokens": 10}), "maxOutputTokens", json!(10)),
            (
                json!({"max_tokens": 10, "max_completion_tokens": 20}),
                "maxOutputTokens",
                json!(20),
            ),
            (json!({"temperature": 0.5}), "temperature", json!(0.5)),
            (json!({"top_p": 0.9}), "topP", json!(0.9)),
            (json!({"top_k": 40}), "topK", json!(40)),
            (json!({"stop": "END"}), "stopSequences", json!(["END"])),
            (json!({"seed": 3}), "seed", json!(3)),
            (
                json!({"presence_penalty": 0.1}),
                "presencePenalty",
                json!(0.1),
            ),
            (
                json!({"frequency_penalty": 0.2}),
                "frequencyPenalty",
                json!(0.2),
            ),
            (
                json!({"logprobs": true, "top_logprobs": 3}),
                "logprobs",
                json!(3),
            ),
            (
                json!({"response_format": {"type": "json_object"}}),
                "responseMimeType",
                json!("application/json"),
            ),
            (
                json!({"response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object"}}}}),
                "responseJsonSchema",
                json!({"type": "object"}),
            ),
        ];
        for (extra, key, want) in cases {
            let b = body(extra.clone());
            assert_eq!(b["generationConfig"][key], want, "{extra}");
        }
        assert!(body(json!({})).get("generationConfig").is_none());
    }

    #[test]
    fn reasoning_maps_to_thinking_config() {
        let cases = [
            (
                json!({"reasoning": {"max_tokens": 1000}}),
                json!({"thinkingBudget": 1000, "includeThoughts": true}),
            ),
            (
                json!({"reasoning": {"effort": "minimal"}}),
                json!({"thinkingBudget": 512, "includeThoughts": true}),
            ),
            (
                json!({"reasoning": {"effort": "medium"}}),
                json!({"thinkingBudget": 8192, "includeThoughts": true}),
            ),
            (
                json!({"reasoning_effort": "high"}),
                json!({"thinkingBudget": 24576, "includeThoughts": true}),
            ),
            (
                json!({"reasoning": {"effort": "none"}}),
                json!({"thinkingBudget": 0}),
            ),
            (
                json!({"reasoning": {"enabled": false, "max_tokens": 900}}),
                json!({"thinkingBudget": 0}),
            ),
            (
                json!({"reasoning": {"exclude": true}}),
                json!({"includeThoughts": false}),
            ),
            (
                json!({"include_reasoning": true}),
                json!({"includeThoughts": true}),
            ),
        ];
        for (extra, want) in cases {
            let b = body(extra.clone());
            assert_eq!(b["generationConfig"]["thinkingConfig"], want, "{extra}");
        }
    }

    #[test]
    fn messages_map_to_contents() {
        let b = body(json!({"messages": [
            {"role": "system", "content": "s1"},
            {"role": "developer", "content": [{"type": "text", "text": "s2"}]},
            {"role": "user", "content": "a"},
            {"role": "user", "content": [{"type": "file", "file": {"filename": "x.pdf", "file_data": "data:application/pdf;base64,JVBER"}}]},
            {"role": "assistant", "content": "b"},
            {"role": "assistant", "content": "c"},
        ]}));
        assert_eq!(
            b["systemInstruction"],
            json!({"parts": [{"text": "s1"}, {"text": "s2"}]})
        );
        assert_eq!(
            b["contents"],
            json!([
                {"role": "user", "parts": [{"text": "a"}, {"inlineData": {"mimeType": "application/pdf", "data": "JVBER"}}]},
                {"role": "model", "parts": [{"text": "b"}, {"text": "c"}]},
            ])
        );
    }

    #[test]
    fn tool_results_take_the_name_of_their_call() {
        let b = body(json!({"messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}},
                {"id": "c2", "type": "function", "function": {"name": "g", "arguments": ""}}]},
            {"role": "tool", "tool_call_id": "c2", "content": "plain"},
            {"role": "tool", "tool_call_id": "c1", "content": "{\"ok\":true}"},
        ]}));
        assert_eq!(
            b["contents"][1]["parts"],
            json!([{"functionCall": {"name": "f", "args": {"x": 1}}}, {"functionCall": {"name": "g", "args": {}}}])
        );
        assert_eq!(
            b["contents"][2],
            json!({"role": "user", "parts": [
                {"functionResponse": {"name": "g", "response": {"content": "plain"}}},
                {"functionResponse": {"name": "f", "response": {"ok": true}}}]})
        );
    }

    #[test]
    fn signatures_go_back_where_they_came_from() {
        let b = body(json!({"messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "answer",
             "reasoning_details": [
                {"type": "reasoning.text", "text": "t", "signature": "s-thought", "format": REASONING_FORMAT, "index": 0},
                {"type": "reasoning.encrypted", "data": "s-call", "id": "c1", "format": REASONING_FORMAT, "index": 1},
                {"type": "reasoning.encrypted", "data": "foreign", "format": "anthropic-claude-v1", "index": 2}],
             "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        ]}));
        assert_eq!(
            b["contents"][1]["parts"],
            json!([
                {"text": "answer", "thoughtSignature": "s-thought"},
                {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "s-call"}])
        );
        let b = body(json!({"messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "one",
             "reasoning_details": [{"type": "reasoning.encrypted", "data": "s", "format": REASONING_FORMAT}]},
        ]}));
        assert_eq!(
            b["contents"][1]["parts"],
            json!([{"text": "one", "thoughtSignature": "s"}])
        );
    }

    #[test]
    fn refusals_name_the_part_and_the_provider() {
        let cases = [
            (
                json!([{"type": "video_url", "video_url": {"url": "https://x/v.mp4"}}]),
                "video_url",
            ),
            (
                json!([{"type": "file", "file": {"file_id": "f-1"}}]),
                "file",
            ),
            (
                json!([{"type": "input_audio", "input_audio": {"format": "mp3"}}]),
                "input_audio",
            ),
        ];
        for (content, part) in cases {
            let e =
                encode(json!({"model": "a/m", "messages": [{"role": "user", "content": content}]}))
                    .unwrap_err()
                    .0;
            assert!(
                e.contains(part) && e.to_lowercase().contains("gemini"),
                "{e}"
            );
        }
        let e = encode(json!({"model": "a/m", "messages": [{"role": "user", "content": "a"},
            {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]}))
        .unwrap_err();
        assert!(e.0.contains("not JSON"), "{e}");
        let youtube = body(json!({"messages": [{"role": "user", "content": [
            {"type": "video_url", "video_url": {"url": "https://www.youtube.com/watch?v=x"}}]}]}));
        assert_eq!(
            youtube["contents"][0]["parts"][0]["fileData"]["fileUri"],
            "https://www.youtube.com/watch?v=x"
        );
    }

    #[test]
    fn error_statuses_are_classified() {
        let cases = [
            (
                "INVALID_ARGUMENT",
                400,
                UpstreamErrorKind::InvalidRequest,
                false,
            ),
            (
                "FAILED_PRECONDITION",
                400,
                UpstreamErrorKind::InvalidRequest,
                false,
            ),
            (
                "UNAUTHENTICATED",
                401,
                UpstreamErrorKind::ProviderAuth,
                true,
            ),
            (
                "PERMISSION_DENIED",
                403,
                UpstreamErrorKind::ProviderAuth,
                true,
            ),
            ("NOT_FOUND", 404, UpstreamErrorKind::NotFound, true),
            (
                "RESOURCE_EXHAUSTED",
                429,
                UpstreamErrorKind::RateLimited,
                true,
            ),
            ("INTERNAL", 500, UpstreamErrorKind::Server, true),
            ("UNAVAILABLE", 503, UpstreamErrorKind::Overloaded, true),
            ("DEADLINE_EXCEEDED", 504, UpstreamErrorKind::Timeout, true),
        ];
        // `retryable` means another endpoint may be tried: everything but the request's fault.
        for (code, status, kind, retryable) in cases {
            let raw =
                json!({"error": {"code": status, "message": "m", "status": code}}).to_string();
            let e = GeminiCodec.decode_error(status, raw.as_bytes());
            assert_eq!(e.kind, kind, "{code}");
            assert_eq!(e.retryable(), retryable, "{code}");
            assert_eq!(e.status, Some(status));
            assert_eq!(e.message, "m");
            assert_eq!(e.provider_code.as_deref(), Some(code));
            assert_eq!(e.raw.as_deref(), Some(raw.as_str()));
        }
        let bad_key = json!({"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]}});
        let e = GeminiCodec.decode_error(400, bad_key.to_string().as_bytes());
        assert_eq!(e.kind, UpstreamErrorKind::ProviderAuth);
        let e = GeminiCodec.decode_error(502, b"<html>bad gateway</html>");
        assert_eq!(e.message, "Gemini returned HTTP 502");
        assert_eq!(e.kind, UpstreamErrorKind::Server);
    }

    #[test]
    fn usage_counts_thoughts_as_completion_tokens() {
        let u = parse_usage(&json!({
            "promptTokenCount": 100, "candidatesTokenCount": 20, "thoughtsTokenCount": 30,
            "cachedContentTokenCount": 40, "toolUsePromptTokenCount": 5,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 90}, {"modality": "AUDIO", "tokenCount": 10}],
        }));
        assert_eq!(
            (
                u.prompt_tokens,
                u.completion_tokens,
                u.reasoning_tokens,
                u.cached_tokens,
                u.audio_prompt_tokens
            ),
            (105, 50, 30, 40, 10)
        );
        assert_eq!(parse_usage(&json!("junk")), parse_usage(&json!({})));
    }

    #[test]
    fn logprobs_become_openai_shape() {
        let c = GeminiCodec
            .decode(
                json!({"candidates": [{"content": {"parts": [{"text": "Hi"}]}, "finishReason": "STOP",
                    "logprobsResult": {
                        "topCandidates": [{"candidates": [{"token": "Hi", "logProbability": -0.1}, {"token": "Yo", "logProbability": -2.5}]}],
                        "chosenCandidates": [{"token": "Hi", "logProbability": -0.1}]}}]})
                .to_string()
                .as_bytes(),
            )
            .unwrap();
        assert_eq!(
            c.choices[0]["logprobs"],
            json!({"content": [{"token": "Hi", "logprob": -0.1, "bytes": null, "top_logprobs": [
                {"token": "Hi", "logprob": -0.1, "bytes": null}, {"token": "Yo", "logprob": -2.5, "bytes": null}]}]})
        );
    }

    #[test]
    fn junk_never_panics() {
        let inputs: [&[u8]; 10] = [
            b"",
            b"null",
            b"[]",
            b"{}",
            b"{\"candidates\": 3}",
            b"{\"candidates\": [null]}",
            b"{\"candidates\": [{\"content\": {\"parts\": [1, null, {\"functionCall\": 2}, {\"text\": 5}]}, \"finishReason\": 7}]}",
            b"{\"candidates\": [{\"logprobsResult\": {\"chosenCandidates\": [1], \"topCandidates\": 2}}]}",
            b"{\"error\": 1}",
            b"{\"usageMetadata\": [1], \"promptFeedback\": {\"blockReason\": 2}}",
        ];
        for input in inputs {
            let _ = GeminiCodec.decode(input);
            let _ = GeminiCodec.decode_error(500, input);
            let mut s = GeminiCodec.stream_decoder();
            let mut framed = b"data: ".to_vec();
            framed.extend_from_slice(input);
            framed.extend_from_slice(b"\n\n");
            let _ = s.feed(&framed);
            let _ = s.finish();
        }
    }
}
