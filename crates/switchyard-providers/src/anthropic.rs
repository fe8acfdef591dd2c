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

mod decode;
mod encode;
mod stream;

use serde_json::json;
use switchyard_core::catalog::ProviderKind;
use switchyard_core::chat::ChatRequest;
use switchyard_core::error::UpstreamError;

use crate::{Codec, CodecError, Completion, StreamDecoder, Target, UpstreamRequest};

pub use decode::{normalize_stop_reason, parse_usage, status_for_error_type, REASONING_FORMAT};
pub use encode::{
    API_VERSION, CONTEXT_MANAGEMENT_BETA, MID_CONVERSATION_SYSTEM, TASK_BUDGETS_BETA,
    THINKING_DISPLAY_UPDATES_BETA,
};

/// The Anthropic codec.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnthropicCodec;

impl AnthropicCodec {
    /// A request for Anthropic's token counter, `POST {base_url}/messages/count_tokens` with
    /// the usual headers: the body [`Codec::encode`] would send, less what a count does not take
    /// (`max_tokens`, sampling, `stop_sequences`, `metadata`, `stream`).
    pub fn encode_count_tokens(
        &self,
        request: &ChatRequest,
        target: &Target<'_>,
    ) -> Result<UpstreamRequest, CodecError> {
        crate::one_choice(request, "Anthropic")?;
        let mut body = encode::body(request, target)?;
        body.retain(|k, _| encode::COUNT_TOKENS_FIELDS.contains(&k.as_str()));
        encode::upstream_request(target, "messages/count_tokens", body)
    }

    /// The count of a successful (2xx) `count_tokens` answer, `{"input_tokens": N}`.
    pub fn decode_count_tokens(&self, body: &[u8]) -> Result<u64, UpstreamError> {
        decode::count_tokens(body)
    }
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
        crate::one_choice(request, "Anthropic")?;
        let mut body = encode::body(request, target)?;
        if request.is_stream() {
            body.insert("stream".into(), json!(true));
        }
        encode::upstream_request(target, "messages", body)
    }

    fn decode(&self, body: &[u8]) -> Result<Completion, UpstreamError> {
        decode::completion(body)
    }

    fn decode_error(&self, status: u16, body: &[u8]) -> UpstreamError {
        decode::error(status, body)
    }

    fn stream_decoder(&self) -> Box<dyn StreamDecoder> {
        Box::new(stream::AnthropicStream::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StreamEvent;
    use serde_json::Value;
    use switchyard_core::catalog::Catalog;
    use switchyard_core::error::UpstreamErrorKind;

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
