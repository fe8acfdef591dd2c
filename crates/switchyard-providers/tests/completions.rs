#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The legacy completions API on OpenAI-compatible endpoints: the upstream request, recorded
//! answers and streams decoded into the canonical chat shapes, and refusals by name.

mod common;

use common::{catalog, completion_json, fixture};
use serde_json::{json, Value};
use switchyard_core::chat::ChatRequest;
use switchyard_core::completions::CompletionsRequest;
use switchyard_providers::anthropic::AnthropicCodec;
use switchyard_providers::gemini::GeminiCodec;
use switchyard_providers::openai::OpenAiCodec;
use switchyard_providers::{Codec, StreamEvent, Target};

/// A legacy request: `chat` is the chat form's body without `messages`, one user message is
/// added for each prompt.
fn legacy(prompts: &[&str], chat: Value) -> CompletionsRequest {
    let mut chat = chat;
    chat["model"] = json!("a/m");
    chat["messages"] = prompts
        .iter()
        .map(|p| json!({"role": "user", "content": p}))
        .collect();
    CompletionsRequest {
        chat: ChatRequest::from_value(chat).expect("chat form"),
        suffix: None,
        echo: false,
        n: None,
        best_of: None,
        logprobs: None,
    }
}

fn encode(codec: &dyn Codec, request: &CompletionsRequest) -> Result<(String, Value), String> {
    let catalog = catalog(
        "openai",
        "https://api.together.xyz/v1",
        "meta-llama/Llama-3-8b",
    );
    let target = Target {
        provider: catalog.provider("p").expect("provider"),
        endpoint: &catalog.model("a/m").expect("model").endpoints[0],
        api_key: Some("secret-key"),
    };
    codec
        .encode_completions(request, &target)
        .map(|up| {
            assert!(up
                .headers
                .contains(&("authorization".into(), "Bearer secret-key".into())));
            (up.url, serde_json::from_slice(&up.body).expect("JSON body"))
        })
        .map_err(|e| e.0)
}

#[test]
fn encodes_the_legacy_body() {
    let mut fim = legacy(
        &["def add(a, b):"],
        json!({"max_tokens": 16, "temperature": 0.2, "stop": ["\n\n"], "stream": true}),
    );
    fim.suffix = Some("\n    return c".into());
    let mut many = legacy(
        &["Say A", "Say B"],
        json!({"top_k": 5, "seed": 3, "logit_bias": {"50256": -100}, "user": "u-1"}),
    );
    many.n = Some(2);
    many.best_of = Some(3);
    many.echo = true;
    many.logprobs = Some(2);
    // An empty suffix is no suffix.
    let mut empty_suffix = legacy(&["x"], json!({}));
    empty_suffix.suffix = Some(String::new());
    let cases = [
        (
            legacy(&["Once upon a time"], json!({})),
            json!({"model": "meta-llama/Llama-3-8b", "prompt": "Once upon a time"}),
        ),
        (
            fim,
            json!({
                "model": "meta-llama/Llama-3-8b", "prompt": "def add(a, b):",
                "suffix": "\n    return c", "max_tokens": 16, "temperature": 0.2,
                "stop": ["\n\n"], "stream": true, "stream_options": {"include_usage": true},
            }),
        ),
        (
            many,
            json!({
                "model": "meta-llama/Llama-3-8b", "prompt": ["Say A", "Say B"], "echo": true,
                "n": 2, "best_of": 3, "logprobs": 2, "top_k": 5, "seed": 3,
                "logit_bias": {"50256": -100}, "user": "u-1",
            }),
        ),
        (
            empty_suffix,
            json!({"model": "meta-llama/Llama-3-8b", "prompt": "x"}),
        ),
    ];
    for (request, expected) in cases {
        let (url, body) = encode(&OpenAiCodec, &request).expect("encodes");
        assert_eq!(url, "https://api.together.xyz/v1/completions");
        assert_eq!(body, expected);
    }
}

#[test]
fn chat_only_fields_and_other_kinds_are_refused_by_name() {
    let cases = [
        (
            legacy(
                &["x"],
                json!({"tools": [{"type": "function", "function": {"name": "f"}}]}),
            ),
            "tools cannot be sent to the legacy completions API of P",
        ),
        (
            legacy(&["x"], json!({"response_format": {"type": "json_object"}})),
            "response_format cannot be sent",
        ),
        (
            legacy(&["x"], json!({"reasoning": {"effort": "low"}})),
            "reasoning cannot be sent",
        ),
    ];
    for (request, words) in cases {
        let err = encode(&OpenAiCodec, &request).expect_err("refused");
        assert!(err.contains(words), "{words}: {err}");
    }
    let mut conversation = legacy(&["x"], json!({}));
    conversation.chat = ChatRequest::from_value(json!({
        "model": "a/m",
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "x"}],
    }))
    .expect("chat");
    let err = encode(&OpenAiCodec, &conversation).expect_err("refused");
    assert!(
        err.contains("one user text message for each prompt"),
        "{err}"
    );

    for (codec, kind) in [
        (&AnthropicCodec as &dyn Codec, "anthropic"),
        (&GeminiCodec as &dyn Codec, "gemini"),
    ] {
        let err = encode(codec, &legacy(&["x"], json!({}))).expect_err("refused");
        assert_eq!(
            err,
            format!("provider kind {kind} does not serve the legacy completions API")
        );
        let err = codec.completions_stream_decoder().err().expect("refused");
        assert!(err.0.contains(kind));
        let err = codec.decode_completions(b"{}").expect_err("refused");
        assert!(
            err.message.contains("legacy completions"),
            "{}",
            err.message
        );
    }
}

#[test]
fn decodes_a_text_completion_into_the_chat_shape() {
    let c = OpenAiCodec
        .decode_completions(&fixture("openai", "completions_text.json"))
        .expect("decodes");
    let out = completion_json(&c);
    assert_eq!(out["upstream_id"], "cmpl-8Zq4gx2wq");
    assert_eq!(
        out["choices"][0]["message"],
        json!({"role": "assistant", "content": "\n\nThis is a test."})
    );
    assert_eq!(out["choices"][0]["finish_reason"], "length");
    assert_eq!(out["choices"][0]["native_finish_reason"], "length");
    assert!(out["choices"][0].get("text").is_none());
    // The legacy logprobs object is kept as it came.
    assert_eq!(
        out["choices"][0]["logprobs"]["text_offset"],
        json!([12, 14, 18, 21, 23, 28])
    );
    assert_eq!(out["usage"]["prompt_tokens"], 5);
    assert_eq!(out["usage"]["completion_tokens"], 7);

    let err = OpenAiCodec
        .decode_completions(b"nope")
        .expect_err("invalid");
    assert!(err.message.contains("invalid JSON"), "{}", err.message);
    let err = OpenAiCodec
        .decode_completions(br#"{"error": {"message": "model not found"}}"#)
        .expect_err("error body");
    assert_eq!(err.message, "model not found");
}

#[test]
fn decodes_a_legacy_stream_into_chat_chunks() {
    let bytes = fixture("openai", "completions_stream.sse");
    for piece in [1, 7, bytes.len()] {
        let mut decoder = OpenAiCodec.completions_stream_decoder().expect("decoder");
        let mut events = Vec::new();
        for chunk in bytes.chunks(piece) {
            events.extend(decoder.feed(chunk));
        }
        events.extend(decoder.finish());
        let summary: Vec<Value> = events
            .iter()
            .map(|e| match e {
                StreamEvent::Chunk { choices, usage, .. } => {
                    json!({"choices": choices, "usage": usage.map(|u| u.total_tokens())})
                }
                StreamEvent::Error(err) => json!({"error": err.message}),
                StreamEvent::Done => json!("done"),
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                json!({"choices": [{"index": 0, "delta": {"content": "Hel"}, "logprobs": null,
                                    "finish_reason": null, "native_finish_reason": null}],
                       "usage": null}),
                json!({"choices": [{"index": 0, "delta": {"content": "lo"}, "logprobs": null,
                                    "finish_reason": "stop", "native_finish_reason": "stop"}],
                       "usage": null}),
                json!({"choices": [], "usage": 4}),
                json!("done"),
            ],
            "pieces of {piece}"
        );
    }
    // The chat decoder is unchanged by the legacy one.
    let mut chat = OpenAiCodec.stream_decoder();
    let events =
        chat.feed(b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n");
    assert!(
        matches!(&events[0], StreamEvent::Chunk { choices, .. } if choices[0]["delta"]["content"] == "x")
    );
}
