//! Anthropic-kind and Gemini-kind endpoints through the real server, streamed and not.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{catalog_of_kinds, TestGateway};
use crate::mock::{MockUpstream, Reply};

pub fn anthropic_message() -> Value {
    json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
           "content": [{"type": "thinking", "thinking": "hmm", "signature": "sig-1"}, {"type": "text", "text": "Bonjour"}],
           "stop_reason": "end_turn", "stop_sequence": null,
           "usage": {"input_tokens": 10, "cache_read_input_tokens": 90, "output_tokens": 5}})
}

pub fn anthropic_events() -> Vec<String> {
    let ev = |kind: &str, data: Value| format!("event: {kind}\ndata: {data}");
    vec![
        ev(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_2", "type": "message", "role": "assistant", "content": [], "model": "claude", "stop_reason": null, "usage": {"input_tokens": 10, "output_tokens": 1}}}),
        ),
        ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        ev("ping", json!({"type": "ping"})),
        ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Bon"}}),
        ),
        ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "jour"}}),
        ),
        ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        ev(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 7}}),
        ),
        ev("message_stop", json!({"type": "message_stop"})),
    ]
}

pub fn gemini_response() -> Value {
    json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hallo"}]}, "finishReason": "STOP", "index": 0}],
           "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15}, "responseId": "r1"})
}

fn gemini_chunks() -> Vec<String> {
    vec![
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hal"}]}, "index": 0}], "responseId": "r2"}).to_string(),
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "lo"}]}, "finishReason": "SAFETY", "index": 0}],
               "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 2, "totalTokenCount": 12}, "responseId": "r2"}).to_string(),
    ]
}

async fn gateway(kind: &str, replies: Vec<Reply>) -> (MockUpstream, TestGateway) {
    let mock = MockUpstream::start(replies).await;
    let gw = TestGateway::builder(catalog_of_kinds(&[(
        "up",
        kind,
        &mock.url(),
        "0.000001",
        "0.000002",
    )]))
    .build()
    .await;
    (mock, gw)
}

async fn chat(gw: &TestGateway, stream: bool) -> (u16, String) {
    let r = gw
        .post(
            "/api/v1/chat/completions",
            json!({"model": "test/model", "stream": stream, "max_tokens": 100,
                   "messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Say hello"}]}),
        )
        .send()
        .await
        .expect("send");
    (r.status().as_u16(), r.text().await.expect("text"))
}

fn data_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).expect("chunk"))
        .collect()
}

#[tokio::test]
async fn anthropic_kind_endpoints_serve_chat_completions() {
    let (mock, gw) = gateway(
        "anthropic",
        vec![
            Reply::Json(200, anthropic_message()),
            Reply::Sse {
                events: anthropic_events(),
                delay: Duration::from_millis(1),
                cut: false,
            },
        ],
    )
    .await;
    let (status, text) = chat(&gw, false).await;
    assert_eq!(status, 200, "{text}");
    let body: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(body["choices"][0]["message"]["content"], "Bonjour");
    assert_eq!(body["choices"][0]["message"]["reasoning"], "hmm");
    assert_eq!(
        body["choices"][0]["message"]["reasoning_details"][0]["signature"],
        "sig-1"
    );
    assert_eq!(body["choices"][0]["native_finish_reason"], "end_turn");
    assert_eq!(body["usage"]["prompt_tokens"], 100);
    assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 90);
    let sent = &mock.requests()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.headers["x-api-key"], "secret-UP_KEY");
    assert_eq!(sent.headers["anthropic-version"], "2023-06-01");
    assert_eq!(sent.body["system"][0]["text"], "Be kind.");
    assert_eq!(sent.body["max_tokens"], 100);

    let (status, text) = chat(&gw, true).await;
    assert_eq!(status, 200);
    let chunks = data_lines(&text);
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Bonjour");
    let finish: Vec<&Value> = chunks
        .iter()
        .filter(|c| {
            !c["choices"][0]["finish_reason"].is_null()
                && c["choices"].as_array().is_some_and(|a| !a.is_empty())
        })
        .map(|c| &c["choices"][0])
        .collect();
    assert_eq!(finish[0]["finish_reason"], "length");
    assert_eq!(finish[0]["native_finish_reason"], "max_tokens");
    let last = chunks.last().expect("usage chunk");
    assert_eq!(last["usage"]["completion_tokens"], 7);
    assert_eq!(mock.requests()[1].body["stream"], true);
}

#[tokio::test]
async fn gemini_kind_endpoints_serve_chat_completions() {
    let (mock, gw) = gateway(
        "gemini",
        vec![
            Reply::Json(200, gemini_response()),
            Reply::Sse {
                events: gemini_chunks(),
                delay: Duration::from_millis(1),
                cut: false,
            },
        ],
    )
    .await;
    let (status, text) = chat(&gw, false).await;
    assert_eq!(status, 200, "{text}");
    let body: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(body["choices"][0]["message"]["content"], "Hallo");
    assert_eq!(body["usage"]["completion_tokens"], 5);
    let sent = &mock.requests()[0];
    assert_eq!(sent.path, "/v1/models/up-model:generateContent");
    assert_eq!(sent.headers["x-goog-api-key"], "secret-UP_KEY");
    assert_eq!(
        sent.body["systemInstruction"]["parts"][0]["text"],
        "Be kind."
    );
    assert_eq!(sent.body["generationConfig"]["maxOutputTokens"], 100);

    let (status, text) = chat(&gw, true).await;
    assert_eq!(status, 200);
    assert_eq!(
        mock.requests()[1].path,
        "/v1/models/up-model:streamGenerateContent?alt=sse"
    );
    let chunks = data_lines(&text);
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Hallo");
    assert!(
        text.contains("\"finish_reason\":\"content_filter\""),
        "{text}"
    );
    assert!(
        text.contains("\"native_finish_reason\":\"SAFETY\""),
        "{text}"
    );
    assert!(text.ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn messages_to_an_anthropic_endpoint_keep_native_fields() {
    let (mock, gw) = gateway("anthropic", vec![Reply::Json(200, anthropic_message())]).await;
    let r = gw
        .post(
            "/api/v1/messages",
            json!({
                "model": "test/model", "max_tokens": 4000,
                "system": [{"type": "text", "text": "Long context", "cache_control": {"type": "ephemeral"}}],
                "thinking": {"type": "enabled", "budget_tokens": 2000},
                "messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}],
            }),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        body["content"][0],
        json!({"type": "thinking", "thinking": "hmm", "signature": "sig-1"})
    );
    assert_eq!(
        body["content"][1],
        json!({"type": "text", "text": "Bonjour", "citations": null})
    );
    assert_eq!(body["usage"]["cache_read_input_tokens"], 90);
    assert_eq!(body["usage"]["input_tokens"], 10);
    let sent = &mock.requests()[0].body;
    assert_eq!(
        sent["thinking"],
        json!({"type": "enabled", "budget_tokens": 2000})
    );
    assert_eq!(
        sent["system"][0]["cache_control"],
        json!({"type": "ephemeral"})
    );
    assert_eq!(
        sent["messages"][0]["content"][0]["cache_control"],
        json!({"type": "ephemeral"})
    );
}
