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

mod answer;
mod request;
mod stream;
mod turns;

pub use answer::*;
pub use request::*;
pub use stream::*;
pub use turns::MessagesError;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use switchyard_core::chat::ChatRequest;

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
        // Members Anthropic's usage requires and the gateway cannot know are null.
        let unknown = json!({"output_tokens_details": {"thinking_tokens": 0}, "cache_creation": null,
                             "inference_geo": null, "server_tool_use": null, "service_tier": null});
        let with = |counts: Value| {
            let mut usage = unknown.clone();
            if let (Some(u), Value::Object(c)) = (usage.as_object_mut(), counts) {
                u.extend(c);
            }
            usage
        };
        let counted = with(
            json!({"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": 60,
                             "cache_creation_input_tokens": 30}),
        );
        let zero = with(
            json!({"input_tokens": 0, "output_tokens": 0, "cache_read_input_tokens": 0,
                          "cache_creation_input_tokens": 0}),
        );
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
                "container": null,
                "content": [
                    {"type": "thinking", "thinking": "r", "signature": "s"},
                    {"type": "text", "text": "ok", "citations": null},
                    {"type": "tool_use", "id": "c1", "caller": {"type": "direct"}, "name": "f", "input": {"x": 2}},
                ],
                "stop_reason": "tool_use", "stop_details": null, "stop_sequence": null,
                "usage": {"input_tokens": 5, "output_tokens": 5, "cache_read_input_tokens": 3,
                          "cache_creation_input_tokens": 2, "cost": 0.001,
                          "output_tokens_details": {"thinking_tokens": 0}, "cache_creation": null,
                          "inference_geo": null, "server_tool_use": null, "service_tier": null},
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
