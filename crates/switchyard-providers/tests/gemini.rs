#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Gemini codec: recorded-shape fixtures, translated both ways, checked by snapshots.

mod common;

use common::*;
use serde_json::json;
use switchyard_providers::gemini::GeminiCodec;
use switchyard_providers::Codec;

fn cat() -> switchyard_core::catalog::Catalog {
    catalog(
        "gemini",
        "https://generativelanguage.googleapis.com/v1beta",
        "gemini-2.5-flash",
    )
}

#[test]
fn encodes_a_full_conversation() {
    let out = encode(
        &GeminiCodec,
        &cat(),
        &fixture("gemini", "request_full.json"),
    );
    assert_eq!(
        out["url"],
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    insta::assert_json_snapshot!("gemini_request_full", out);
}

#[test]
fn non_streamed_requests_use_generate_content_and_reasoning_maps_to_a_budget() {
    let cases = [
        (
            json!({"effort": "low"}),
            json!({"thinkingBudget": 2048, "includeThoughts": true}),
        ),
        (
            json!({"effort": "high", "exclude": true}),
            json!({"thinkingBudget": 24576, "includeThoughts": false}),
        ),
        (json!({"enabled": false}), json!({"thinkingBudget": 0})),
        (
            json!({"enabled": true}),
            json!({"thinkingBudget": -1, "includeThoughts": true}),
        ),
    ];
    for (reasoning, want) in cases {
        let body = serde_json::to_vec(&json!({
            "model": "a/m", "messages": [{"role": "user", "content": "hi"}], "reasoning": reasoning,
        }))
        .unwrap();
        let out = encode(&GeminiCodec, &cat(), &body);
        assert!(out["url"].as_str().unwrap().ends_with(":generateContent"));
        assert_eq!(
            out["body"]["generationConfig"]["thinkingConfig"], want,
            "{reasoning}"
        );
    }
}

#[test]
fn unsupported_input_names_the_part_and_the_provider() {
    let e = encode_error(
        &GeminiCodec,
        &cat(),
        json!({"model": "a/m", "messages": [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": "https://x/v.mp4"}}]}]}),
    );
    assert!(e.contains("video_url") && e.contains("gemini"), "{e}");
    let e = encode_error(
        &GeminiCodec,
        &cat(),
        json!({"model": "a/m", "messages": [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "nope", "content": "1"}]}),
    );
    assert!(e.contains("nope"), "{e}");
}

#[test]
fn decodes_every_response_shape() {
    for name in [
        "response_text",
        "response_function_call",
        "response_thoughts",
        "response_safety",
        "response_prompt_blocked",
        "response_malformed_call",
        "response_recitation",
        "response_logprobs",
        "response_audio_prompt",
        "response_thought_signed",
    ] {
        let c = GeminiCodec
            .decode(&fixture("gemini", &format!("{name}.json")))
            .expect("decodes");
        insta::assert_json_snapshot!(format!("gemini_{name}"), completion_json(&c));
    }
}

#[test]
fn finish_reasons_map_to_the_contract() {
    use switchyard_providers::gemini::normalize_finish_reason as n;
    let table = [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "error"),
        ("OTHER", "stop"),
    ];
    for (native, want) in table {
        assert_eq!(n(native), want, "{native}");
    }
}

#[test]
fn decodes_streams() {
    for name in [
        "stream_text",
        "stream_function_call",
        "stream_error",
        "stream_thoughts",
        "stream_parallel_calls",
        "stream_prompt_blocked",
        "stream_max_tokens",
        "stream_cut",
    ] {
        let bytes = fixture("gemini", &format!("{name}.sse"));
        let whole = stream_json(&GeminiCodec, &bytes, bytes.len());
        let split = stream_json(&GeminiCodec, &bytes, 5);
        assert_eq!(whole, split, "{name}: splitting the bytes changes nothing");
        insta::assert_json_snapshot!(format!("gemini_{name}"), whole);
    }
}

#[test]
fn classifies_provider_errors() {
    let cases = [
        ("error_invalid.json", 400),
        ("error_too_long.json", 400),
        ("error_quota.json", 429),
        ("error_key.json", 403),
        ("error_unavailable.json", 503),
        ("error_deadline.json", 504),
        ("error_key_invalid.json", 400),
        ("error_unauthenticated.json", 401),
        ("error_not_found.json", 404),
        ("error_location.json", 400),
        ("error_quota_details.json", 429),
        ("error_internal.json", 500),
    ];
    let out: Vec<_> = cases
        .iter()
        .map(|(name, status)| {
            error_json(&GeminiCodec.decode_error(*status, &fixture("gemini", name)))
        })
        .collect();
    insta::assert_json_snapshot!("gemini_errors", out);
}

#[test]
fn encodes_a_plain_conversation() {
    let out = encode(
        &GeminiCodec,
        &cat(),
        &fixture("gemini", "request_plain.json"),
    );
    assert_eq!(
        out["url"],
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    );
    insta::assert_json_snapshot!("gemini_request_plain", out);
}

#[test]
fn a_decoded_answer_encodes_back_with_its_signatures() {
    // The assistant message of a decoded answer, sent back in the next turn, puts each thought
    // signature back on the part Gemini attached it to.
    for name in ["response_function_call", "response_thought_signed"] {
        let c = GeminiCodec
            .decode(&fixture("gemini", &format!("{name}.json")))
            .unwrap();
        let mut assistant = c.choices[0]["message"].clone();
        let calls = assistant["tool_calls"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut messages = vec![json!({"role": "user", "content": "go"}), assistant.take()];
        for call in &calls {
            messages.push(
                json!({"role": "tool", "tool_call_id": call["id"], "content": "{\"ok\": true}"}),
            );
        }
        let request = serde_json::to_vec(&json!({"model": "a/m", "messages": messages})).unwrap();
        let out = encode(&GeminiCodec, &cat(), &request);
        insta::assert_json_snapshot!(format!("gemini_roundtrip_{name}"), out["body"]["contents"]);
    }
}

#[test]
fn each_finish_reason_decodes() {
    let reasons = [
        "STOP",
        "MAX_TOKENS",
        "SAFETY",
        "RECITATION",
        "LANGUAGE",
        "OTHER",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "MALFORMED_FUNCTION_CALL",
        "IMAGE_SAFETY",
        "UNEXPECTED_TOOL_CALL",
        "TOO_MANY_TOOL_CALLS",
        "FINISH_REASON_UNSPECIFIED",
    ];
    let table: Vec<_> = reasons
        .iter()
        .map(|native| {
            let body = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "x"}]},
                                              "finishReason": native, "index": 0}]});
            let c = GeminiCodec
                .decode(body.to_string().as_bytes())
                .unwrap();
            json!([native, c.choices[0]["finish_reason"], c.choices[0]["native_finish_reason"]])
        })
        .collect();
    insta::assert_json_snapshot!("gemini_finish_reasons", table);
}
