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
//! - A stream ends with [`StreamEvent::Done`](crate::StreamEvent::Done) only when a chunk
//!   carried a `finishReason`; a stream cut before that is left to the engine to report.

mod decode;
pub mod embeddings;
mod encode;
mod stream;

use switchyard_core::catalog::ProviderKind;
use switchyard_core::chat::ChatRequest;
use switchyard_core::embeddings::{Embeddings, EmbeddingsRequest};
use switchyard_core::error::UpstreamError;

use crate::{Codec, CodecError, Completion, StreamDecoder, Target, UpstreamRequest};

pub use decode::{normalize_finish_reason, parse_usage, REASONING_FORMAT};

/// The Gemini codec.
#[derive(Debug, Clone, Copy, Default)]
pub struct GeminiCodec;

impl Codec for GeminiCodec {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Gemini
    }

    fn encode(
        &self,
        request: &ChatRequest,
        target: &Target<'_>,
    ) -> Result<UpstreamRequest, CodecError> {
        crate::one_choice(request, "Gemini")?;
        encode::request(request, target)
    }

    fn decode(&self, body: &[u8]) -> Result<Completion, UpstreamError> {
        decode::completion(body)
    }

    fn decode_error(&self, status: u16, body: &[u8]) -> UpstreamError {
        decode::error(status, body)
    }

    fn stream_decoder(&self) -> Box<dyn StreamDecoder> {
        Box::new(stream::GeminiStream::default())
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde_json::{json, Value};
    use switchyard_core::catalog::Catalog;
    use switchyard_core::error::UpstreamErrorKind;

    use super::encode::mime_from_url;

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
            // `include_reasoning: true` alone turns reasoning on, as `reasoning: {}` does.
            (
                json!({"include_reasoning": true}),
                json!({"thinkingBudget": -1, "includeThoughts": true}),
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
