#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Anthropic codec: recorded-shape fixtures, translated both ways, checked by snapshots.

mod common;

use common::*;
use serde_json::json;
use switchyard_providers::anthropic::AnthropicCodec;
use switchyard_providers::Codec;

fn cat() -> switchyard_core::catalog::Catalog {
    catalog(
        "anthropic",
        "https://api.anthropic.com/v1",
        "claude-sonnet-4-20250514",
    )
}

#[test]
fn encodes_a_full_conversation() {
    let out = encode(
        &AnthropicCodec,
        &cat(),
        &fixture("anthropic", "request_full.json"),
    );
    insta::assert_json_snapshot!("anthropic_request_full", out);
}

#[test]
fn encodes_reasoning_effort_as_a_thinking_budget() {
    let out = encode(
        &AnthropicCodec,
        &cat(),
        &fixture("anthropic", "request_reasoning.json"),
    );
    assert_eq!(
        out["body"]["thinking"],
        json!({"type": "enabled", "budget_tokens": 6400})
    );
    assert!(
        out["body"].get("temperature").is_none(),
        "not sent with thinking"
    );
    insta::assert_json_snapshot!("anthropic_request_reasoning", out);
}

#[test]
fn encodes_tool_results_documents_and_signed_thinking() {
    let out = encode(
        &AnthropicCodec,
        &cat(),
        &fixture("anthropic", "request_agentic.json"),
    );
    let body = &out["body"];
    // Tool results lead the user turn, ahead of the text that came before them.
    assert_eq!(body["messages"][2]["content"][0]["type"], "tool_result");
    assert_eq!(body["messages"][2]["content"][1]["type"], "text");
    // Only signed thinking and redacted thinking go back, first in the assistant turn.
    assert_eq!(body["messages"][1]["content"][0]["type"], "thinking");
    assert_eq!(
        body["messages"][1]["content"][1]["type"],
        "redacted_thinking"
    );
    assert_eq!(body["messages"][1]["content"][2]["type"], "tool_use");
    insta::assert_json_snapshot!("anthropic_request_agentic", out);
}

#[test]
fn reasoning_made_by_other_providers_is_not_sent_back() {
    let out = encode(
        &AnthropicCodec,
        &cat(),
        &fixture("anthropic", "request_foreign_reasoning.json"),
    );
    assert_eq!(
        out["body"]["messages"][1]["content"],
        json!([
            {"type": "thinking", "thinking": "Claude thought", "signature": "claude-sig"},
            {"type": "redacted_thinking", "data": "claude-redacted"},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        ])
    );
}

/// Merges streamed reasoning details the way a client does: fragments with the same index and
/// type are one detail.
fn merge_details(chunks: &serde_json::Value) -> Vec<serde_json::Value> {
    let mut merged: Vec<serde_json::Value> = Vec::new();
    for event in chunks.as_array().unwrap() {
        let details = event.pointer("/chunk/choices/0/delta/reasoning_details");
        for d in details.and_then(|d| d.as_array()).into_iter().flatten() {
            let same = merged
                .iter_mut()
                .find(|m| m["index"] == d["index"] && m["type"] == d["type"]);
            match same {
                None => merged.push(d.clone()),
                Some(m) => {
                    for (k, v) in d.as_object().unwrap() {
                        match (k.as_str(), v.as_str()) {
                            ("text", Some(t)) => {
                                m["text"] =
                                    json!(format!("{}{t}", m["text"].as_str().unwrap_or("")));
                            }
                            (_, Some("")) => {}
                            _ if v.is_null() => {}
                            _ => m[k.as_str()] = v.clone(),
                        }
                    }
                }
            }
        }
    }
    merged
}

/// Thinking comes back, streamed or not, as reasoning details; sent back in the next turn they
/// are the same thinking blocks.
#[test]
fn thinking_round_trips_through_reasoning_details() {
    let whole = AnthropicCodec
        .decode(&fixture("anthropic", "response_thinking.json"))
        .expect("decodes");
    let streamed = merge_details(&stream_json(
        &AnthropicCodec,
        &fixture("anthropic", "stream_thinking.sse"),
        16,
    ));
    let cases = [
        (
            whole.choices[0]["message"]["reasoning_details"].clone(),
            json!([
                {"type": "thinking", "thinking": "Suppose finitely many primes...", "signature": "EqQBCkYIARgCIkB"},
                {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
            ]),
        ),
        (
            json!(streamed),
            json!([
                {"type": "thinking", "thinking": "Let me solve this step by step", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"},
            ]),
        ),
    ];
    for (details, blocks) in cases {
        let request = json!({
            "model": "anthropic/claude-sonnet-4",
            "messages": [
                {"role": "user", "content": "Prove it."},
                {"role": "assistant", "content": "Done.", "reasoning_details": details},
                {"role": "user", "content": "Again."},
            ],
            "reasoning": {"max_tokens": 2048},
            "max_tokens": 4000,
        });
        let out = encode(
            &AnthropicCodec,
            &cat(),
            serde_json::to_vec(&request).unwrap().as_slice(),
        );
        let mut want = blocks.as_array().unwrap().clone();
        want.push(json!({"type": "text", "text": "Done."}));
        assert_eq!(out["body"]["messages"][1]["content"], json!(want));
    }
}

/// A catalogue whose endpoint lists structured outputs.
fn structured_cat() -> switchyard_core::catalog::Catalog {
    switchyard_core::catalog::Catalog::from_toml(
        "test",
        r#"
[[providers]]
slug = "p"
name = "P"
kind = "anthropic"
base_url = "https://api.anthropic.com/v1"
api_key_env = "P_KEY"

[[models]]
id = "a/m"
name = "M"
context_length = 200000

[[models.endpoints]]
provider = "p"
upstream_model = "claude-sonnet-4-5-20250929"
max_completion_tokens = 64000
pricing = { prompt = "0.000003", completion = "0.000015" }
supported_parameters = ["temperature", "max_tokens", "response_format", "structured_outputs"]
"#,
    )
    .unwrap()
}

#[test]
fn encodes_a_json_schema_as_output_config_where_listed() {
    let request = fixture("anthropic", "request_structured.json");
    let out = encode(&AnthropicCodec, &structured_cat(), &request);
    assert_eq!(
        out["body"]["output_config"]["format"]["type"],
        "json_schema"
    );
    insta::assert_json_snapshot!("anthropic_request_structured", out);
    // An endpoint that does not list it gets no output_config.
    let out = encode(&AnthropicCodec, &cat(), &request);
    assert!(out["body"].get("output_config").is_none());
    assert!(out["body"].get("response_format").is_none());
}

#[test]
fn native_fields_pass_through() {
    let body = serde_json::to_vec(&json!({
        "model": "a/m", "max_tokens": 3000,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]}],
        "thinking": {"type": "enabled", "budget_tokens": 2048},
    }))
    .unwrap();
    let out = encode(&AnthropicCodec, &cat(), &body);
    assert_eq!(
        out["body"]["thinking"],
        json!({"type": "enabled", "budget_tokens": 2048})
    );
    assert_eq!(
        out["body"]["messages"][0]["content"][0]["cache_control"],
        json!({"type": "ephemeral", "ttl": "1h"})
    );
    assert_eq!(out["body"]["max_tokens"], 3000);
}

#[test]
fn unsupported_parts_name_the_part_and_the_provider() {
    let cases = [
        (
            json!({"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}),
            "input_audio",
        ),
        (
            json!({"type": "video_url", "video_url": {"url": "https://x/v.mp4"}}),
            "video_url",
        ),
        (
            json!({"type": "file", "file": {"filename": "a.txt", "file_data": "data:text/plain;base64,AA=="}}),
            "PDF",
        ),
    ];
    for (part, needle) in cases {
        let e = encode_error(
            &AnthropicCodec,
            &cat(),
            json!({"model": "a/m", "messages": [{"role": "user", "content": [part]}]}),
        );
        assert!(e.contains(needle) && e.contains("anthropic"), "{e}");
    }
    let e = encode_error(
        &AnthropicCodec,
        &cat(),
        json!({"model": "a/m", "messages": [{"role": "assistant", "content": null, "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}]}),
    );
    assert!(e.contains("t1"), "{e}");
}

#[test]
fn decodes_every_response_shape() {
    for name in [
        "response_text",
        "response_tool_use",
        "response_thinking",
        "response_stop_sequence",
        "response_refusal",
        "response_pause_turn",
        "response_max_tokens",
    ] {
        let c = AnthropicCodec
            .decode(&fixture("anthropic", &format!("{name}.json")))
            .expect("decodes");
        insta::assert_json_snapshot!(format!("anthropic_{name}"), completion_json(&c));
    }
}

#[test]
fn finish_reasons_map_to_the_contract() {
    use switchyard_providers::anthropic::normalize_stop_reason as n;
    let table = [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("model_context_window_exceeded", "length"),
    ];
    for (native, want) in table {
        assert_eq!(n(native), want, "{native}");
    }
}

#[test]
fn decodes_every_stream_event_type() {
    for name in [
        "stream_text",
        "stream_tool_use",
        "stream_thinking",
        "stream_error",
        "stream_refusal",
        "stream_rate_limited",
    ] {
        let bytes = fixture("anthropic", &format!("{name}.sse"));
        let whole = stream_json(&AnthropicCodec, &bytes, bytes.len());
        for piece in [1, 7] {
            let split = stream_json(&AnthropicCodec, &bytes, piece);
            assert_eq!(whole, split, "{name}: splitting the bytes changes nothing");
        }
        insta::assert_json_snapshot!(format!("anthropic_{name}"), whole);
    }
}

#[test]
fn streamed_tool_arguments_add_up_to_json() {
    let events = stream_json(
        &AnthropicCodec,
        &fixture("anthropic", "stream_tool_use.sse"),
        64,
    );
    let mut calls: Vec<(String, String)> = Vec::new();
    for event in events.as_array().unwrap() {
        let deltas = event.pointer("/chunk/choices/0/delta/tool_calls");
        for call in deltas.and_then(|d| d.as_array()).into_iter().flatten() {
            let index = call["index"].as_u64().unwrap() as usize;
            if calls.len() <= index {
                calls.resize(index + 1, Default::default());
            }
            if let Some(name) = call.pointer("/function/name").and_then(|n| n.as_str()) {
                calls[index].0 = name.to_owned();
            }
            calls[index].1 += call["function"]["arguments"].as_str().unwrap();
        }
    }
    let parsed: Vec<(String, serde_json::Value)> = calls
        .into_iter()
        .map(|(name, args)| (name, serde_json::from_str(&args).unwrap()))
        .collect();
    assert_eq!(
        parsed,
        vec![
            ("get_weather".to_owned(), json!({"city": "Paris"})),
            ("get_time".to_owned(), json!({})),
        ]
    );
}

#[test]
fn classifies_provider_errors() {
    let cases = [
        ("error_overloaded.json", 529),
        ("error_rate_limit.json", 429),
        ("error_invalid.json", 400),
        ("error_too_long.json", 400),
        ("error_auth.json", 401),
        ("error_permission.json", 403),
        ("error_not_found.json", 404),
        ("error_too_large.json", 413),
        ("error_api.json", 500),
    ];
    let out: Vec<_> = cases
        .iter()
        .map(|(name, status)| {
            error_json(&AnthropicCodec.decode_error(*status, &fixture("anthropic", name)))
        })
        .collect();
    insta::assert_json_snapshot!("anthropic_errors", out);
}
