//! OpenAI Chat Completions, spoken by OpenAI and every OpenAI-compatible server (Groq, Together,
//! DeepInfra, Fireworks, Mistral, DeepSeek, vLLM, Ollama, llama.cpp...), and beside it OpenAI's
//! embeddings (`openai/embeddings.rs`) and legacy completions (`openai/legacy.rs`) APIs.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value};
use switchyard_core::catalog::ProviderKind;
use switchyard_core::chat::{ChatRequest, Message};
use switchyard_core::completions::CompletionsRequest;
use switchyard_core::embeddings::{Embeddings, EmbeddingsRequest};
use switchyard_core::error::{UpstreamError, UpstreamErrorKind};
use switchyard_core::pricing::Usage;

use crate::sse::SseParser;
use crate::{
    raw_excerpt, Codec, CodecError, Completion, StreamDecoder, StreamEvent, Target, UpstreamRequest,
};

mod embeddings;
mod legacy;

/// The OpenAI-compatible codec.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenAiCodec;

/// Maps OpenAI's finish reasons into the contract's vocabulary.
pub fn normalize_finish_reason(native: &str) -> &'static str {
    match native {
        "length" | "max_tokens" | "model_length" => "length",
        "tool_calls" | "function_call" | "tool_use" => "tool_calls",
        "content_filter" | "safety" => "content_filter",
        "error" => "error",
        _ => "stop",
    }
}

/// Reads OpenAI's usage object.
pub fn parse_usage(usage: &Value) -> Option<Usage> {
    let object = usage.as_object()?;
    let n = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    let prompt_details = object.get("prompt_tokens_details");
    let completion_details = object.get("completion_tokens_details");
    Some(Usage {
        prompt_tokens: n(object.get("prompt_tokens")),
        completion_tokens: n(object.get("completion_tokens")),
        cached_tokens: n(prompt_details.and_then(|d| d.get("cached_tokens"))),
        cache_write_tokens: n(prompt_details.and_then(|d| d.get("cache_write_tokens"))),
        reasoning_tokens: n(completion_details.and_then(|d| d.get("reasoning_tokens"))),
        audio_prompt_tokens: n(prompt_details.and_then(|d| d.get("audio_tokens"))),
        web_search_requests: 0,
    })
}

/// The standard parameters copied as-is when the endpoint supports them, named once: the list
/// (for tests) and the writer of those present in a request.
macro_rules! standard_parameters {
    ($($field:ident),* $(,)?) => {
        #[cfg(test)]
        const PASSTHROUGH: &[&str] = &[$(stringify!($field)),*];

        fn write_standard<M: SerializeMap>(
            map: &mut M,
            request: &ChatRequest,
            target: &Target<'_>,
        ) -> Result<(), M::Error> {
            $(
                if let Some(value) = &request.$field {
                    if supports(target, stringify!($field)) {
                        map.serialize_entry(stringify!($field), value)?;
                    }
                }
            )*
            Ok(())
        }
    };
}

standard_parameters!(
    temperature,
    top_p,
    top_k,
    frequency_penalty,
    presence_penalty,
    repetition_penalty,
    min_p,
    top_a,
    seed,
    logit_bias,
    logprobs,
    top_logprobs,
    stop,
    tools,
    tool_choice,
    parallel_tool_calls,
    response_format,
    prediction,
    modalities,
    service_tier,
    verbosity,
    web_search_options,
    audio,
    user,
);

fn supports(target: &Target<'_>, parameter: &str) -> bool {
    // An endpoint that lists no parameters accepts every standard one; the end-user id is not a
    // generation parameter and always goes.
    parameter == "user"
        || target.endpoint.supported_parameters.is_empty()
        || target.endpoint.supports(parameter)
}

/// The messages as OpenAI takes them: OpenRouter's reasoning echo fields on assistant turns
/// are left out (OpenAI rejects them).
struct Messages<'a>(&'a [Message]);

impl Serialize for Messages<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for message in self.0 {
            match message {
                Message::Assistant {
                    reasoning,
                    reasoning_details,
                    ..
                } if reasoning.is_some() || reasoning_details.is_some() => {
                    let mut bare = message.clone();
                    if let Message::Assistant {
                        reasoning,
                        reasoning_details,
                        ..
                    } = &mut bare
                    {
                        *reasoning = None;
                        *reasoning_details = None;
                    }
                    seq.serialize_element(&bare)?;
                }
                _ => seq.serialize_element(message)?,
            }
        }
        seq.end()
    }
}

/// The upstream body, written straight from the typed request without an intermediate value.
struct Body<'a> {
    request: &'a ChatRequest,
    target: &'a Target<'a>,
}

impl Serialize for Body<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (request, target) = (self.request, self.target);
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("model", &target.endpoint.upstream_model)?;
        map.serialize_entry("messages", &Messages(&request.messages))?;
        write_standard(&mut map, request, target)?;
        if let Some(max) = request.max_output_tokens() {
            let name = if target.endpoint.supports("max_completion_tokens") {
                "max_completion_tokens"
            } else {
                "max_tokens"
            };
            map.serialize_entry(name, &max)?;
        }
        let effort = request
            .reasoning
            .as_ref()
            .and_then(|r| {
                r.effort.as_deref().or_else(|| {
                    r.max_tokens
                        .map(|budget| effort_for_budget(budget, request, target))
                        .or_else(|| r.enabled.filter(|e| *e).map(|_| "medium"))
                })
            })
            .or(request.reasoning_effort.as_deref());
        if let Some(effort) = effort {
            if supports(target, "reasoning") || supports(target, "reasoning_effort") {
                // OpenAI's efforts stop at `high`; stronger OpenRouter efforts are clamped.
                let effort = match effort {
                    "max" | "xhigh" => "high",
                    other => other,
                };
                map.serialize_entry("reasoning_effort", effort)?;
            }
        }
        let n = request.choices();
        if n > 1 {
            map.serialize_entry("n", &n)?;
        }
        for field in ["prompt_cache_key", "prompt_cache_options", "image_config"] {
            if let Some(value) = request.extra.get(field).filter(|v| !v.is_null()) {
                if supports(target, field) {
                    map.serialize_entry(field, value)?;
                }
            }
        }
        if request.is_stream() {
            map.serialize_entry("stream", &true)?;
            map.serialize_entry(
                "stream_options",
                &StreamOptions {
                    include_usage: true,
                },
            )?;
        }
        map.end()
    }
}

/// The effort that spends about `budget` reasoning tokens, for OpenAI-compatible APIs that take
/// an effort rather than a budget: the budget's share of the completion limit (the request's,
/// else the endpoint's), in the shares the Anthropic codec gives each effort, or, with no limit
/// known, the budget itself against OpenAI's usual spends.
fn effort_for_budget(budget: u64, request: &ChatRequest, target: &Target<'_>) -> &'static str {
    let limit = request
        .max_output_tokens()
        .or(target.endpoint.max_completion_tokens);
    let share = match limit {
        Some(limit) if limit > 0 => budget as f64 / limit as f64,
        _ if budget >= 16_384 => 1.0,
        _ if budget >= 4_096 => 0.5,
        _ => 0.0,
    };
    if share >= 0.8 {
        "high"
    } else if share >= 0.5 {
        "medium"
    } else {
        "low"
    }
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

impl OpenAiCodec {
    /// Decodes a parsed chat-completion body (`body` is the raw bytes, for error excerpts).
    fn decode_value(&self, mut value: Value, body: &[u8]) -> Result<Completion, UpstreamError> {
        if value.get("error").is_some_and(|e| !e.is_null()) {
            return Err(self.decode_error(502, body));
        }
        let Some(Value::Array(mut choices)) = value.get_mut("choices").map(Value::take) else {
            return Err(UpstreamError {
                raw: Some(raw_excerpt(body)),
                ..UpstreamError::new(
                    UpstreamErrorKind::InvalidResponse,
                    None,
                    "Provider response has no `choices`",
                )
            });
        };
        for choice in &mut choices {
            if let Some(object) = choice.as_object_mut() {
                normalize_choice(object, "message");
            }
        }
        Ok(Completion {
            upstream_id: value.get("id").and_then(Value::as_str).map(str::to_owned),
            choices,
            usage: value.get("usage").and_then(parse_usage),
            system_fingerprint: value.get("system_fingerprint").cloned(),
            service_tier: value.get("service_tier").cloned(),
        })
    }
}

impl Codec for OpenAiCodec {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Openai
    }

    fn encode(
        &self,
        request: &ChatRequest,
        target: &Target<'_>,
    ) -> Result<UpstreamRequest, CodecError> {
        if request.choices() > 1 && !supports(target, "n") {
            return Err(CodecError(format!(
                "n: the endpoint {} does not return several choices; send n: 1",
                target.endpoint.tag
            )));
        }
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        if let Some(key) = target.api_key {
            headers.push(("authorization".to_owned(), format!("Bearer {key}")));
        }
        Ok(UpstreamRequest {
            url: format!("{}/chat/completions", target.provider.base_url),
            headers,
            body: serde_json::to_vec(&Body { request, target })
                .map_err(|e| CodecError(e.to_string()))?,
        })
    }

    fn decode(&self, body: &[u8]) -> Result<Completion, UpstreamError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| UpstreamError {
            raw: Some(raw_excerpt(body)),
            ..UpstreamError::new(
                UpstreamErrorKind::InvalidResponse,
                None,
                format!("Provider returned invalid JSON: {e}"),
            )
        })?;
        self.decode_value(value, body)
    }

    fn decode_error(&self, status: u16, body: &[u8]) -> UpstreamError {
        let value: Option<Value> = serde_json::from_slice(body).ok();
        let error = value.as_ref().and_then(|v| v.get("error"));
        let message = error
            .and_then(|e| {
                e.get("message")
                    .and_then(Value::as_str)
                    .or_else(|| e.as_str())
            })
            .map(str::to_owned)
            .unwrap_or_else(|| format!("Provider returned HTTP {status}"));
        let code = error.and_then(|e| e.get("code")).and_then(|c| {
            c.as_str()
                .map(str::to_owned)
                .or_else(|| c.as_u64().map(|n| n.to_string()))
        });
        let mut kind = UpstreamError::kind_for_status(status);
        if code.as_deref() == Some("context_length_exceeded")
            || message.contains("maximum context length")
        {
            kind = UpstreamErrorKind::ContextLengthExceeded;
        } else if code.as_deref() == Some("content_filter") {
            kind = UpstreamErrorKind::ContentPolicy;
        }
        UpstreamError {
            kind,
            status: Some(status),
            message,
            raw: Some(raw_excerpt(body)),
            provider_code: code,
        }
    }

    fn stream_decoder(&self) -> Box<dyn StreamDecoder> {
        Box::new(OpenAiStream::default())
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

    fn encode_completions(
        &self,
        request: &CompletionsRequest,
        target: &Target<'_>,
    ) -> Result<UpstreamRequest, CodecError> {
        legacy::encode(request, target)
    }

    fn decode_completions(&self, body: &[u8]) -> Result<Completion, UpstreamError> {
        let mut value: Value = serde_json::from_slice(body).map_err(|e| {
            crate::invalid_response(body, format!("Provider returned invalid JSON: {e}"))
        })?;
        if let Some(choices) = value.get_mut("choices").and_then(Value::as_array_mut) {
            for choice in choices.iter_mut().filter_map(Value::as_object_mut) {
                legacy::text_to_chat(choice, "message");
            }
        }
        self.decode_value(value, body)
    }

    fn completions_stream_decoder(&self) -> Result<Box<dyn StreamDecoder>, CodecError> {
        Ok(Box::new(OpenAiStream {
            legacy: true,
            ..OpenAiStream::default()
        }))
    }
}

/// Normalizes one choice in place: contract finish reason, native reason kept, DeepSeek-style
/// `reasoning_content` exposed as `reasoning`. `field` is `message` or `delta`.
fn normalize_choice(choice: &mut Map<String, Value>, field: &str) {
    if let Some(native) = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .map(str::to_owned)
    {
        choice.insert(
            "finish_reason".into(),
            json!(normalize_finish_reason(&native)),
        );
        choice
            .entry("native_finish_reason")
            .or_insert(Value::String(native));
    } else {
        choice.entry("finish_reason").or_insert(Value::Null);
        choice.entry("native_finish_reason").or_insert(Value::Null);
    }
    if let Some(message) = choice.get_mut(field).and_then(Value::as_object_mut) {
        if let Some(reasoning) = message.remove("reasoning_content") {
            if !reasoning.is_null() {
                message.entry("reasoning").or_insert(reasoning);
            }
        }
    }
}

#[derive(Default)]
struct OpenAiStream {
    parser: SseParser,
    /// The stream is a legacy completions stream (`choices[].text`).
    legacy: bool,
}

impl OpenAiStream {
    fn events(&self, events: Vec<crate::sse::SseEvent>) -> Vec<StreamEvent> {
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            let data = event.data.trim();
            if data == "[DONE]" {
                out.push(StreamEvent::Done);
                continue;
            }
            if data.is_empty() {
                continue;
            }
            let mut value = match crate::stream_json(data, "Provider sent an invalid stream chunk")
            {
                Ok(v) => v,
                Err(e) => {
                    out.push(e);
                    continue;
                }
            };
            if let Some(error) = value.get("error").filter(|e| !e.is_null()) {
                let status = error
                    .get("code")
                    .and_then(Value::as_u64)
                    .and_then(|c| u16::try_from(c).ok());
                let status = status.filter(|s| (400..600).contains(s)).unwrap_or(502);
                out.push(StreamEvent::Error(OpenAiCodec.decode_error(
                    status,
                    serde_json::to_vec(&value).unwrap_or_default().as_slice(),
                )));
                continue;
            }
            let mut choices = match value.get_mut("choices").map(Value::take) {
                Some(Value::Array(choices)) => choices,
                _ => Vec::new(),
            };
            for c in &mut choices {
                if let Some(object) = c.as_object_mut() {
                    if self.legacy {
                        legacy::text_to_chat(object, "delta");
                    }
                    normalize_choice(object, "delta");
                }
            }
            out.push(StreamEvent::Chunk {
                upstream_id: value.get("id").and_then(Value::as_str).map(str::to_owned),
                choices,
                usage: value
                    .get("usage")
                    .filter(|u| !u.is_null())
                    .and_then(parse_usage),
            });
        }
        out
    }
}

impl StreamDecoder for OpenAiStream {
    fn feed(&mut self, bytes: &[u8]) -> Vec<StreamEvent> {
        let events = self.parser.feed(bytes);
        self.events(events)
    }

    fn finish(&mut self) -> Vec<StreamEvent> {
        let events = self.parser.finish();
        self.events(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::catalog::Catalog;

    fn catalog() -> Catalog {
        Catalog::from_toml(
            "t",
            r#"
[[providers]]
slug = "openai"
name = "OpenAI"
kind = "openai"
base_url = "https://api.openai.com/v1"
api_key_env = "OPENAI_API_KEY"
[[models]]
id = "openai/gpt-4o"
name = "GPT-4o"
context_length = 128000
[[models.endpoints]]
provider = "openai"
upstream_model = "gpt-4o-2024-08-06"
pricing = { prompt = "0.0000025", completion = "0.00001" }
supported_parameters = ["temperature", "tools", "tool_choice", "max_tokens", "stop", "reasoning", "response_format", "seed"]
[[providers]]
slug = "local"
name = "Local"
kind = "openai"
base_url = "http://127.0.0.1:1/v1"
[[models]]
id = "local/m"
name = "M"
context_length = 1000
[[models.endpoints]]
provider = "local"
upstream_model = "m"
pricing = { prompt = "0", completion = "0" }
"#,
        )
        .expect("catalog")
    }

    /// The body sent for `body` to the model's first endpoint.
    fn encode_for(model: &str, body: &ChatRequest) -> UpstreamRequest {
        let catalog = catalog();
        let model = catalog.model(model).expect("model");
        let endpoint = &model.endpoints[0];
        let target = Target {
            provider: catalog.provider(&endpoint.provider).expect("provider"),
            endpoint,
            api_key: Some("sk-upstream"),
        };
        OpenAiCodec.encode(body, &target).expect("encode")
    }

    fn encode(body: Value) -> Value {
        let request = ChatRequest::from_value(body).expect("request");
        let upstream = encode_for("openai/gpt-4o", &request);
        assert_eq!(upstream.url, "https://api.openai.com/v1/chat/completions");
        assert!(upstream
            .headers
            .contains(&("authorization".into(), "Bearer sk-upstream".into())));
        serde_json::from_slice(&upstream.body).expect("json")
    }

    #[test]
    fn encodes_supported_parameters_and_drops_the_rest() {
        let body = encode(json!({
            "model": "openai/gpt-4o",
            "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x", "reasoning": "r"}],
            "temperature": 0.2, "top_k": 5, "seed": 1, "stop": ["a"], "max_tokens": 50,
            "reasoning": {"effort": "xhigh"}, "provider": {"order": ["openai"]}, "plugins": [], "stream": true,
            "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "auto"
        }));
        assert_eq!(
            body,
            json!({
                "model": "gpt-4o-2024-08-06",
                "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x"}],
                "temperature": 0.2, "seed": 1, "stop": ["a"], "max_tokens": 50,
                "reasoning_effort": "high", "stream": true, "stream_options": {"include_usage": true},
                "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "auto"
            })
        );
    }

    #[test]
    fn every_standard_parameter_passes_through_unchanged_to_an_endpoint_that_lists_none() {
        let request = json!({
            "model": "local/m", "messages": [{"role": "user", "content": "hi"}],
            "temperature": 0.5, "top_p": 0.9, "top_k": 3, "frequency_penalty": 0.1,
            "presence_penalty": 0.2, "repetition_penalty": 1.1, "min_p": 0.05, "top_a": 0.1,
            "seed": 7, "logit_bias": {"50256": -100}, "logprobs": true, "top_logprobs": 2,
            "stop": "END", "tools": [{"type": "function", "function": {"name": "f"}}],
            "tool_choice": "auto", "parallel_tool_calls": false,
            "response_format": {"type": "json_object"}, "prediction": {"type": "content", "content": "x"},
            "modalities": ["text"], "service_tier": "auto", "verbosity": "low",
            "web_search_options": {"search_context_size": "low"}, "audio": {"voice": "alloy"},
            "user": "u-1", "plugins": [{"id": "response-healing"}], "provider": {"sort": "price"}
        });
        let parsed = ChatRequest::from_value(request).expect("request");
        let typed = serde_json::to_value(&parsed).expect("value");
        let upstream = encode_for("local/m", &parsed);
        let body: Value = serde_json::from_slice(&upstream.body).expect("json");
        for name in PASSTHROUGH {
            assert_eq!(body.get(*name), typed.get(*name), "{name}");
            assert!(body.get(*name).is_some(), "{name} was dropped");
        }
        for gateway in ["plugins", "provider", "models", "stream_options"] {
            assert!(body.get(gateway).is_none(), "{gateway} was sent upstream");
        }
    }

    #[test]
    fn decodes_completion_and_usage() {
        let body = json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi", "reasoning_content": "think"}, "finish_reason": "function_call"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14,
                      "prompt_tokens_details": {"cached_tokens": 2}, "completion_tokens_details": {"reasoning_tokens": 1}}
        });
        let completion = OpenAiCodec
            .decode(body.to_string().as_bytes())
            .expect("decode");
        assert_eq!(completion.upstream_id.as_deref(), Some("chatcmpl-1"));
        assert_eq!(completion.choices[0]["finish_reason"], "tool_calls");
        assert_eq!(
            completion.choices[0]["native_finish_reason"],
            "function_call"
        );
        assert_eq!(completion.choices[0]["message"]["reasoning"], "think");
        assert_eq!(
            completion.usage,
            Some(Usage {
                prompt_tokens: 10,
                completion_tokens: 4,
                cached_tokens: 2,
                reasoning_tokens: 1,
                ..Usage::default()
            })
        );
        assert_eq!(
            OpenAiCodec.decode(b"not json").expect_err("bad").kind,
            UpstreamErrorKind::InvalidResponse
        );
        assert_eq!(
            OpenAiCodec.decode(b"{}").expect_err("bad").kind,
            UpstreamErrorKind::InvalidResponse
        );
    }

    #[test]
    fn classifies_errors() {
        let cases: [(u16, &str, UpstreamErrorKind); 5] = [
            (
                400,
                r#"{"error":{"message":"bad","code":"context_length_exceeded"}}"#,
                UpstreamErrorKind::ContextLengthExceeded,
            ),
            (
                400,
                r#"{"error":{"message":"bad"}}"#,
                UpstreamErrorKind::InvalidRequest,
            ),
            (
                429,
                r#"{"error":{"message":"slow down"}}"#,
                UpstreamErrorKind::RateLimited,
            ),
            (500, "oops", UpstreamErrorKind::Server),
            (503, "", UpstreamErrorKind::Overloaded),
        ];
        for (status, body, kind) in cases {
            let err = OpenAiCodec.decode_error(status, body.as_bytes());
            assert_eq!(err.kind, kind, "{status} {body}");
            assert_eq!(err.raw.as_deref(), Some(body));
        }
    }

    #[test]
    fn decodes_stream() {
        let mut decoder = OpenAiCodec.stream_decoder();
        let mut events = decoder.feed(b"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"He\"},\"finish_reason\":null}]}\n\ndata: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\ndata: [DO");
        events.extend(decoder.feed(b"NE]\n\n"));
        events.extend(decoder.finish());
        assert_eq!(events.len(), 4);
        match &events[1] {
            StreamEvent::Chunk { choices, .. } => {
                assert_eq!(choices[0]["finish_reason"], "stop");
                assert_eq!(choices[0]["native_finish_reason"], "stop");
            }
            other => panic!("unexpected {other:?}"),
        }
        match &events[2] {
            StreamEvent::Chunk { usage, choices, .. } => {
                assert!(choices.is_empty());
                assert_eq!(usage.map(|u| u.total_tokens()), Some(5));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(events[3], StreamEvent::Done);
        let mut decoder = OpenAiCodec.stream_decoder();
        let events = decoder.feed(b"data: {\"error\":{\"code\":429,\"message\":\"limit\"}}\n\n");
        assert!(
            matches!(&events[0], StreamEvent::Error(e) if e.kind == UpstreamErrorKind::RateLimited)
        );
    }
}
