//! The `generateContent` request: Gemini's contents, system instruction, thinking, tools and
//! generation config.

use std::collections::HashMap;

use serde_json::{json, Map, Value};
use switchyard_core::chat::{ChatRequest, Content, ContentPart, Message};

use super::decode::REASONING_FORMAT;
use crate::{parse_data_url, CodecError, Target, UpstreamRequest};

pub(super) fn codec_error(message: impl Into<String>) -> CodecError {
    CodecError(message.into())
}

pub(super) fn mime_from_url(url: &str) -> &'static str {
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

/// The `generateContent` (or streamed) request for a chat request.
pub(super) fn request(
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
