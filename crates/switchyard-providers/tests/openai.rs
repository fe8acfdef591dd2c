#![allow(clippy::unwrap_used, clippy::expect_used)]
//! OpenAI-compatible codec: recorded-shape fixtures (OpenAI, DeepSeek, Groq, vLLM), translated
//! both ways, checked by snapshots.

mod common;

use common::*;
use serde_json::{json, Value};
use switchyard_core::catalog::Catalog;
use switchyard_providers::openai::OpenAiCodec;
use switchyard_providers::Codec;

fn cat() -> Catalog {
    catalog("openai", "https://api.openai.com/v1", "gpt-4o-2024-08-06")
}

/// A catalogue whose endpoint lists its parameters (as a reasoning model's does).
fn listing_cat(parameters: &str) -> Catalog {
    Catalog::from_toml(
        "test",
        &format!(
            r#"
[[providers]]
slug = "p"
name = "P"
kind = "openai"
base_url = "https://api.openai.com/v1"
api_key_env = "P_KEY"

[[models]]
id = "a/m"
name = "M"
context_length = 200000

[[models.endpoints]]
provider = "p"
upstream_model = "o4-mini-2025-04-16"
max_completion_tokens = 100000
pricing = {{ prompt = "0.0000011", completion = "0.0000044" }}
supported_parameters = [{parameters}]
"#
        ),
    )
    .unwrap()
}

#[test]
fn encodes_a_full_conversation() {
    let out = encode(
        &OpenAiCodec,
        &cat(),
        &fixture("openai", "request_full.json"),
    );
    assert_eq!(out["url"], "https://api.openai.com/v1/chat/completions");
    let body = &out["body"];
    assert_eq!(body["model"], "gpt-4o-2024-08-06");
    // OpenRouter's reasoning echo is not OpenAI's: left out of the assistant turn.
    let assistant = &body["messages"][3];
    assert!(assistant.get("reasoning").is_none(), "{assistant}");
    assert!(assistant.get("reasoning_details").is_none(), "{assistant}");
    assert_eq!(assistant["tool_calls"][0]["id"], "call_01");
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    insta::assert_json_snapshot!("openai_request_full", out);
}

#[test]
fn encodes_reasoning_effort_clamped_and_max_completion_tokens_where_listed() {
    let request = fixture("openai", "request_reasoning.json");
    let out = encode(
        &OpenAiCodec,
        &listing_cat(r#""reasoning", "max_completion_tokens", "temperature""#),
        &request,
    );
    assert_eq!(
        out["body"]["reasoning_effort"], "high",
        "xhigh stops at high"
    );
    assert_eq!(out["body"]["max_completion_tokens"], 4096);
    assert!(out["body"].get("max_tokens").is_none());
    insta::assert_json_snapshot!("openai_request_reasoning", out);
    // An endpoint that lists neither gets neither.
    let out = encode(&OpenAiCodec, &listing_cat(r#""temperature""#), &request);
    assert!(out["body"].get("reasoning_effort").is_none());
    assert_eq!(out["body"]["max_tokens"], 4096);
}

#[test]
fn an_endpoint_listing_no_parameters_takes_every_standard_one() {
    let out = encode(
        &OpenAiCodec,
        &catalog("openai", "http://127.0.0.1:8000/v1", "m"),
        &fixture("openai", "request_plain.json"),
    );
    for name in [
        "temperature",
        "top_k",
        "min_p",
        "repetition_penalty",
        "max_tokens",
    ] {
        assert!(out["body"].get(name).is_some(), "{name} missing: {out}");
    }
    assert!(out["body"].get("stream").is_none());
    insta::assert_json_snapshot!("openai_request_plain", out);
}

#[test]
fn decodes_every_response_shape() {
    for name in [
        "response_text",
        "response_tool_calls",
        "response_reasoning_content",
        "response_length",
        "response_content_filter",
        "response_logprobs",
    ] {
        let c = OpenAiCodec
            .decode(&fixture("openai", &format!("{name}.json")))
            .expect("decodes");
        insta::assert_json_snapshot!(format!("openai_{name}"), completion_json(&c));
    }
}

#[test]
fn refuses_bodies_that_are_not_completions() {
    let cases: [(&[u8], &str); 3] = [
        (&fixture("openai", "response_error_body.json"), "Server"),
        (
            &fixture("openai", "response_no_choices.json"),
            "InvalidResponse",
        ),
        (b"{\"choices\": [", "InvalidResponse"),
    ];
    for (body, kind) in cases {
        let e = OpenAiCodec.decode(body).expect_err("refused");
        assert_eq!(
            format!("{:?}", e.kind),
            kind,
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn finish_reasons_map_to_the_contract() {
    use switchyard_providers::openai::normalize_finish_reason as n;
    let table = [
        ("stop", "stop"),
        ("length", "length"),
        ("max_tokens", "length"),
        ("model_length", "length"),
        ("tool_calls", "tool_calls"),
        ("function_call", "tool_calls"),
        ("content_filter", "content_filter"),
        ("error", "error"),
        ("eos", "stop"),
    ];
    for (native, want) in table {
        assert_eq!(n(native), want, "{native}");
    }
}

#[test]
fn decodes_every_stream_shape() {
    for name in [
        "stream_text",
        "stream_tool_calls",
        "stream_reasoning",
        "stream_error",
        "stream_cut",
        "stream_invalid_chunk",
    ] {
        let bytes = fixture("openai", &format!("{name}.sse"));
        let whole = stream_json(&OpenAiCodec, &bytes, bytes.len());
        for piece in [1, 7] {
            let split = stream_json(&OpenAiCodec, &bytes, piece);
            assert_eq!(whole, split, "{name}: splitting the bytes changes nothing");
        }
        insta::assert_json_snapshot!(format!("openai_{name}"), whole);
    }
}

#[test]
fn streamed_tool_arguments_add_up_to_json() {
    let events = stream_json(
        &OpenAiCodec,
        &fixture("openai", "stream_tool_calls.sse"),
        64,
    );
    let mut calls: Vec<(String, String)> = Vec::new();
    for event in events.as_array().unwrap() {
        let deltas = event.pointer("/chunk/choices/0/delta/tool_calls");
        for call in deltas.and_then(Value::as_array).into_iter().flatten() {
            let index = call["index"].as_u64().unwrap() as usize;
            if calls.len() <= index {
                calls.resize(index + 1, Default::default());
            }
            if let Some(name) = call.pointer("/function/name").and_then(Value::as_str) {
                calls[index].0 = name.to_owned();
            }
            calls[index].1 += call["function"]["arguments"].as_str().unwrap();
        }
    }
    let parsed: Vec<(String, Value)> = calls
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
        ("error_rate_limit.json", 429),
        ("error_quota.json", 429),
        ("error_context_length.json", 400),
        ("error_context_message.json", 400),
        ("error_content_filter.json", 400),
        ("error_auth.json", 401),
        ("error_not_found.json", 404),
        ("error_server.json", 500),
        ("error_string.json", 503),
        ("error_html.txt", 502),
    ];
    let out: Vec<_> = cases
        .iter()
        .map(|(name, status)| {
            error_json(&OpenAiCodec.decode_error(*status, &fixture("openai", name)))
        })
        .collect();
    assert_eq!(out[2]["kind"], "ContextLengthExceeded");
    assert_eq!(
        out[3]["kind"], "ContextLengthExceeded",
        "recognised by its message"
    );
    assert_eq!(out[4]["kind"], "ContentPolicy");
    insta::assert_json_snapshot!("openai_errors", out);
}
