//! `/api/v1/messages`: Anthropic's Messages API in front of any provider kind.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{catalog, TestGateway};
use crate::mock::{stream_events, MockUpstream, Reply};

async fn openai_backed(reply: Vec<Reply>) -> (MockUpstream, TestGateway) {
    let mock = MockUpstream::start(reply).await;
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), "0.000001", "0.000002")]))
        .build()
        .await;
    (mock, gw)
}

/// Splits an Anthropic SSE body into (event, data) pairs; comment frames (`: ...`, which SSE
/// clients ignore) are skipped.
pub fn anthropic_events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|frame| !frame.trim().is_empty() && !frame.starts_with(':'))
        .map(|frame| {
            let mut event = String::new();
            let mut data = Value::Null;
            for line in frame.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = e.to_owned();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).expect("event data is JSON");
                }
            }
            (event, data)
        })
        .collect()
}

#[tokio::test]
async fn messages_request_is_translated_and_answered_in_anthropic_shape() {
    let upstream_answer = json!({
        "id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": "alpha-model",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Let me look.",
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]
        }}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 10},
    });
    let (mock, gw) = openai_backed(vec![Reply::Json(200, upstream_answer)]).await;
    let response = gw
        .http
        .post(gw.url("/api/v1/messages"))
        .header("x-api-key", &gw.key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({
            "model": "test/model",
            "max_tokens": 300,
            "system": "You are terse.",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
            ],
            "tools": [{"name": "weather", "description": "Current weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
            "tool_choice": {"type": "auto"},
            "stop_sequences": ["STOP"],
            "temperature": 0.2,
        }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-generation-id"]
        .to_str()
        .expect("s")
        .to_owned();
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["id"], id);
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["model"], "test/model");
    assert_eq!(body["provider"], "ALPHA");
    assert_eq!(body["stop_reason"], "tool_use");
    assert_eq!(
        body["content"],
        json!([
            {"type": "text", "text": "Let me look.", "citations": null},
            {"type": "tool_use", "id": "call_1", "caller": {"type": "direct"}, "name": "weather", "input": {"city": "Paris"}},
        ])
    );
    assert_eq!(body["usage"]["input_tokens"], 20);
    assert_eq!(body["usage"]["output_tokens"], 10);
    // 20 × 0.000001 + 10 × 0.000002
    assert_eq!(body["usage"]["cost"], json!(0.00004));

    let sent = &mock.requests()[0].body;
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        ])
    );
    assert_eq!(sent["max_tokens"], 300);
    assert_eq!(sent["stop"], json!(["STOP"]));
    assert_eq!(sent["tools"][0]["function"]["name"], "weather");
    assert_eq!(sent["tool_choice"], "auto");
}

#[tokio::test]
async fn streamed_messages_follow_anthropic_event_order() {
    let (_mock, gw) = openai_backed(vec![Reply::Sse {
        events: stream_events(&["Hel", "lo"], (7, 2)),
        delay: Duration::from_millis(2),
        cut: false,
    }])
    .await;
    let response = gw
        .post(
            "/api/v1/messages",
            json!({"model": "test/model", "max_tokens": 50, "stream": true,
                   "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = response.text().await.expect("text");
    let events = anthropic_events(&text);
    let names: Vec<&str> = events
        .iter()
        .map(|(e, _)| e.as_str())
        .filter(|e| *e != "ping")
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ],
        "{text}"
    );
    let text_out: String = events
        .iter()
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect();
    assert_eq!(text_out, "Hello");
    let delta = events
        .iter()
        .find(|(e, _)| e == "message_delta")
        .expect("delta");
    assert_eq!(delta.1["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta.1["usage"]["output_tokens"], 2);
    assert_eq!(delta.1["usage"]["input_tokens"], 7);
    assert_eq!(delta.1["usage"]["cost"], json!(0.000011));
}

#[tokio::test]
async fn messages_errors_use_the_anthropic_envelope() {
    let (mock, gw) = openai_backed(vec![Reply::Json(
        429,
        json!({"error": {"message": "slow down", "type": "rate_limit"}}),
    )])
    .await;
    let cases = [
        (
            Some("sk-or-v1-0000000000000000000000000000000000000000000000000000000000000000"),
            json!({"model": "test/model", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}),
            401,
            "authentication_error",
            "key",
        ),
        (
            None,
            json!({"model": "test/model", "messages": [{"role": "user", "content": "x"}]}),
            400,
            "invalid_request_error",
            "max_tokens",
        ),
        (
            None,
            json!({"model": "test/model", "max_tokens": 5, "messages": [{"role": "robot", "content": "x"}]}),
            400,
            "invalid_request_error",
            "messages[0].role",
        ),
        (
            None,
            json!({"model": "nobody/nothing", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}),
            400,
            "invalid_request_error",
            "nobody/nothing",
        ),
        (
            None,
            json!({"model": "test/model", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}),
            429,
            "rate_limit_error",
            "slow down",
        ),
    ];
    for (key, body, status, kind, needle) in cases {
        let response = gw
            .http
            .post(gw.url("/api/v1/messages"))
            .header("x-api-key", key.unwrap_or(&gw.key))
            .json(&body)
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), status, "{body}");
        let got: Value = response.json().await.expect("json");
        assert_eq!(got["type"], "error", "{got}");
        assert_eq!(got["error"]["type"], kind, "{got}");
        let message = got["error"]["message"].as_str().expect("message");
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
    assert_eq!(
        mock.requests().len(),
        1,
        "only the valid request went upstream"
    );
}
