//! Chat completions end to end: JSON, SSE, failures, fallbacks, metering.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use switchyard_core::money::Money;
use switchyard_server::keys::KeySpec;
use switchyard_store::Store;
use tokio::sync::Notify;

use crate::harness::{catalog, TestGateway, ACCOUNT};
use crate::mock::{completion, stream_events, MockUpstream, Reply};

const PRICE_P: &str = "0.000001";
const PRICE_C: &str = "0.000002";

async fn one(reply: Vec<Reply>) -> (MockUpstream, TestGateway) {
    let mock = MockUpstream::start(reply).await;
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), PRICE_P, PRICE_C)]))
        .build()
        .await;
    (mock, gw)
}

fn usd(text: &str) -> Money {
    Money::parse_usd(text).expect("usd")
}

/// Parses an SSE body into its comments and data payloads, in order.
fn sse_items(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn non_streamed_completion_is_forwarded_priced_and_recorded() {
    let (mock, gw) = one(vec![Reply::Json(200, completion("Hello", 10, 4))]).await;
    let response = gw
        .post("/api/v1/chat/completions", json!({
            "model": "test/model",
            "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
            "temperature": 0.3, "top_k": 4, "seed": 9, "max_tokens": 20, "stop": ["x"],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            "provider": {"sort": "price"}, "user": "end-user-1"
        }))
        .header("HTTP-Referer", "https://app.example")
        .header("X-OpenRouter-Title", "Example App")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let header_id = response
        .headers()
        .get("x-generation-id")
        .expect("header")
        .to_str()
        .expect("str")
        .to_owned();
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["id"], header_id);
    assert!(header_id.starts_with("gen-"));
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "test/model");
    assert_eq!(body["provider"], "ALPHA");
    assert_eq!(body["choices"][0]["message"]["content"], "Hello");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["choices"][0]["native_finish_reason"], "stop");
    assert_eq!(body["usage"]["prompt_tokens"], 10);
    assert_eq!(body["usage"]["completion_tokens"], 4);
    assert_eq!(body["usage"]["total_tokens"], 14);
    // 10 × 0.000001 + 4 × 0.000002 = 0.000018
    assert_eq!(body["usage"]["cost"], json!(0.000018));
    assert_eq!(body["usage"]["is_byok"], false);

    let sent = &mock.requests()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.headers
            .get("authorization")
            .expect("auth")
            .to_str()
            .expect("s"),
        "Bearer secret-ALPHA_KEY"
    );
    assert_eq!(sent.body["model"], "alpha-model");
    assert_eq!(sent.body["temperature"], 0.3);
    assert_eq!(sent.body["seed"], 9);
    assert_eq!(sent.body["max_tokens"], 20);
    assert_eq!(sent.body["stop"], json!(["x"]));
    assert_eq!(sent.body["user"], "end-user-1");
    assert_eq!(sent.body["tools"][0]["function"]["name"], "f");
    assert!(
        sent.body.get("top_k").is_none(),
        "unsupported parameters are dropped"
    );
    assert!(
        sent.body.get("provider").is_none(),
        "routing fields never go upstream"
    );
    assert_eq!(
        sent.body["messages"][0],
        json!({"role": "system", "content": "be brief"})
    );

    gw.settled().await;
    let generation = gw
        .state
        .store
        .generation(&header_id)
        .await
        .expect("read")
        .expect("recorded");
    assert_eq!(generation.cost, usd("0.000018"));
    assert_eq!(
        (generation.tokens_prompt, generation.tokens_completion),
        (10, 4)
    );
    assert_eq!(
        generation.http_referer.as_deref(),
        Some("https://app.example")
    );
    assert_eq!(generation.app_title.as_deref(), Some("Example App"));
    assert_eq!(generation.end_user.as_deref(), Some("end-user-1"));
    assert_eq!(generation.upstream_id.as_deref(), Some("chatcmpl-up"));
    let account = gw
        .state
        .store
        .account(ACCOUNT)
        .await
        .expect("read")
        .expect("account");
    assert_eq!(
        (account.usage, account.held),
        (usd("0.000018"), Money::ZERO)
    );

    let g: Value = gw
        .http
        .get(gw.url(&format!("/api/v1/generation?id={header_id}")))
        .bearer_auth(&gw.key)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(g["data"]["total_cost"], json!(0.000018));
    assert_eq!(g["data"]["provider_name"], "ALPHA");
    assert_eq!(g["data"]["streamed"], false);
}

/// The streamed request most tests send.
fn streamed_hi() -> Value {
    json!({"model": "test/model", "stream": true, "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn streamed_completion_follows_the_sse_contract() {
    let events = stream_events(&["Hel", "lo"], (7, 2));
    let (mock, gw) = one(vec![Reply::Sse {
        events,
        delay: Duration::from_millis(5),
        cut: false,
    }])
    .await;
    let response = gw
        .post("/api/v1/chat/completions", streamed_hi())
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let id = response.headers()["x-generation-id"]
        .to_str()
        .expect("s")
        .to_owned();
    let text = response.text().await.expect("text");
    let items = sse_items(&text);
    assert_eq!(
        items[0], ": OPENROUTER PROCESSING",
        "a keep-alive comes before the first token"
    );
    let data: Vec<&str> = items
        .iter()
        .filter_map(|i| i.strip_prefix("data: "))
        .collect();
    assert_eq!(*data.last().expect("last"), "[DONE]");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).expect("json"))
        .collect();
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Hello");
    for c in &chunks {
        assert_eq!(c["id"], id);
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "test/model");
        assert_eq!(c["provider"], "ALPHA");
    }
    let with_usage: Vec<&Value> = chunks.iter().filter(|c| c.get("usage").is_some()).collect();
    assert_eq!(with_usage.len(), 1, "usage comes exactly once");
    let last = chunks.last().expect("chunk");
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["prompt_tokens"], 7);
    assert_eq!(last["usage"]["cost"], json!(0.000011));
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        mock.requests()[0].body["stream_options"],
        json!({"include_usage": true})
    );
    gw.settled().await;
    let g = gw
        .state
        .store
        .generation(&id)
        .await
        .expect("read")
        .expect("recorded");
    assert!(g.streamed && !g.cancelled);
    assert_eq!(g.cost, usd("0.000011"));
    assert_eq!(g.finish_reason.as_deref(), Some("stop"));
}

#[tokio::test]
async fn a_streamed_piece_reaches_the_client_before_the_provider_sends_the_next() {
    let events = stream_events(&["Hel", "lo"], (7, 2));
    // The role chunk and "Hel" in one burst; the rest only once the client has seen "Hel".
    let gate = Arc::new(Notify::new());
    let (_mock, gw) = one(vec![Reply::Gated {
        before: events[..2].to_vec(),
        gate: Arc::clone(&gate),
        after: events[2..].to_vec(),
    }])
    .await;
    let response = gw
        .post("/api/v1/chat/completions", streamed_hi())
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let first = tokio::time::timeout(Duration::from_secs(10), async {
        while !text.contains("\"Hel\"") {
            let bytes = body.next().await.expect("more").expect("bytes");
            text.push_str(std::str::from_utf8(&bytes).expect("utf8"));
        }
    })
    .await;
    assert!(first.is_ok(), "the first piece was held back: {text:?}");
    gate.notify_one();
    while let Some(bytes) = body.next().await {
        text.push_str(std::str::from_utf8(&bytes.expect("bytes")).expect("utf8"));
    }
    let content: String = sse_items(&text)
        .iter()
        .filter_map(|i| i.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(content, "Hello");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
}

#[tokio::test]
async fn a_stream_cut_midway_ends_with_an_error_chunk_and_bills_what_was_produced() {
    let mut events = stream_events(&["abcd", "efgh"], (5, 5));
    events.truncate(3); // role, two pieces; then the connection breaks.
    let (_mock, gw) = one(vec![Reply::Sse {
        events,
        delay: Duration::from_millis(1),
        cut: true,
    }])
    .await;
    let response = gw
        .post("/api/v1/chat/completions", streamed_hi())
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-generation-id"]
        .to_str()
        .expect("s")
        .to_owned();
    let text = response.text().await.expect("text");
    let last = sse_items(&text).pop().expect("items");
    let chunk: Value =
        serde_json::from_str(last.strip_prefix("data: ").expect("data")).expect("json");
    assert_eq!(chunk["choices"][0]["finish_reason"], "error");
    assert_eq!(chunk["error"]["code"], 502);
    assert!(chunk["error"]["message"]
        .as_str()
        .expect("msg")
        .contains("ALPHA"));
    assert!(!text.contains("[DONE]"));
    gw.settled().await;
    let g = gw
        .state
        .store
        .generation(&id)
        .await
        .expect("read")
        .expect("recorded");
    assert_eq!(g.finish_reason.as_deref(), Some("error"));
    assert_eq!(
        g.tokens_completion, 2,
        "eight characters produced, about two tokens"
    );
    assert!(g.cost > Money::ZERO);
    let account = gw
        .state
        .store
        .account(ACCOUNT)
        .await
        .expect("read")
        .expect("account");
    assert_eq!((account.usage, account.held), (g.cost, Money::ZERO));
}

#[tokio::test]
async fn retryable_failures_fall_back_and_request_faults_do_not() {
    let bad = MockUpstream::start(vec![Reply::Json(
        500,
        json!({"error": {"message": "boom"}}),
    )])
    .await;
    let good = MockUpstream::start(vec![Reply::Json(200, completion("ok", 1, 1))]).await;
    let gw = TestGateway::builder(catalog(&[
        ("alpha", &bad.url(), "0.000001", "0.000001"),
        ("beta", &good.url(), "0.000002", "0.000002"),
    ]))
    .build()
    .await;
    let body: Value = gw
        .post("/api/v1/chat/completions", json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}], "provider": {"sort": "price"}}))
        .header("X-OpenRouter-Metadata", "enabled")
        .send().await.expect("send").json().await.expect("json");
    assert_eq!(body["provider"], "BETA");
    assert_eq!(
        body["openrouter_metadata"]["attempts"]
            .as_array()
            .expect("attempts")
            .len(),
        2
    );
    assert_eq!(bad.requests().len(), 1);

    // A 400 is the request's fault: returned at once, no fallback.
    let bad400 = MockUpstream::start(vec![Reply::Json(
        400,
        json!({"error": {"message": "bad tool schema", "code": "invalid_schema"}}),
    )])
    .await;
    let good2 = MockUpstream::start(vec![Reply::Json(200, completion("ok", 1, 1))]).await;
    let gw2 = TestGateway::builder(catalog(&[
        ("alpha", &bad400.url(), "0.000001", "0.000001"),
        ("beta", &good2.url(), "0.000002", "0.000002"),
    ]))
    .build()
    .await;
    let response = gw2
        .post("/api/v1/chat/completions", json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}], "provider": {"sort": "price"}}))
        .send().await.expect("send");
    assert_eq!(response.status(), 400);
    assert!(response.headers().contains_key("x-generation-id"));
    let err: Value = response.json().await.expect("json");
    assert_eq!(err["error"]["code"], 400);
    assert_eq!(err["error"]["message"], "bad tool schema");
    assert_eq!(err["error"]["metadata"]["provider_name"], "ALPHA");
    assert!(err["error"]["metadata"]["raw"]
        .as_str()
        .expect("raw")
        .contains("invalid_schema"));
    assert!(good2.requests().is_empty());
    gw2.settled().await;
    let account = gw2
        .state
        .store
        .account(ACCOUNT)
        .await
        .expect("read")
        .expect("account");
    assert_eq!(
        (account.usage, account.held),
        (Money::ZERO, Money::ZERO),
        "a failed request costs nothing"
    );
}

#[tokio::test]
async fn all_providers_failing_reports_every_attempt() {
    let a = MockUpstream::start(vec![Reply::Json(
        429,
        json!({"error": {"message": "slow down"}}),
    )])
    .await;
    let b = MockUpstream::start(vec![Reply::Json(
        503,
        json!({"error": {"message": "overloaded"}}),
    )])
    .await;
    let gw = TestGateway::builder(catalog(&[
        ("alpha", &a.url(), "0.000001", "0.000001"),
        ("beta", &b.url(), "0.000002", "0.000002"),
    ]))
    .build()
    .await;
    let response = gw
        .post("/api/v1/chat/completions", json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}], "provider": {"sort": "price"}}))
        .send().await.expect("send");
    assert_eq!(response.status(), 503);
    let err: Value = response.json().await.expect("json");
    let previous = err["error"]["metadata"]["previous_errors"]
        .as_array()
        .expect("previous");
    assert_eq!(previous.len(), 2);
    assert_eq!(previous[0]["provider"], "alpha");
    assert_eq!(previous[0]["status"], 429);
    assert_eq!(previous[1]["status"], 503);
}

#[tokio::test]
async fn a_hung_upstream_times_out() {
    let mock = MockUpstream::start(vec![Reply::Hang]).await;
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), PRICE_P, PRICE_C)]))
        .config(|c| c.server.upstream_timeout_secs = 0.3)
        .build()
        .await;
    let response = gw
        .post(
            "/api/v1/chat/completions",
            json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 408);
    let err: Value = response.json().await.expect("json");
    assert_eq!(err["error"]["metadata"]["error_type"], "timeout");
    gw.settled().await;
    assert_eq!(gw.state.store.hold_count().await.expect("count"), 0);
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_the_upstream_stream() {
    let events: Vec<String> = (0..1000).map(|i| json!({"id": "c", "choices": [{"index": 0, "delta": {"content": format!("t{i} ")}, "finish_reason": null}]}).to_string()).collect();
    let (mock, gw) = one(vec![Reply::Sse {
        events,
        delay: Duration::from_millis(20),
        cut: false,
    }])
    .await;
    let mut response = gw
        .post("/api/v1/chat/completions", streamed_hi())
        .send()
        .await
        .expect("send");
    let id = response.headers()["x-generation-id"]
        .to_str()
        .expect("s")
        .to_owned();
    // Read until the first content chunk, then hang up.
    loop {
        let chunk = response.chunk().await.expect("chunk").expect("more");
        if String::from_utf8_lossy(&chunk).contains("t0") {
            break;
        }
    }
    drop(response);
    tokio::time::timeout(Duration::from_secs(10), mock.stream_dropped())
        .await
        .expect("upstream cancelled");
    gw.settled().await;
    let g = gw
        .state
        .store
        .generation(&id)
        .await
        .expect("read")
        .expect("recorded");
    assert!(g.cancelled);
    assert!(g.tokens_completion >= 1, "billed for what was produced");
    assert_eq!(gw.state.store.hold_count().await.expect("count"), 0);
}

#[tokio::test]
async fn keys_are_checked() {
    let (_mock, gw) = one(vec![Reply::Json(200, completion("x", 1, 1))]).await;
    let chat = json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}]});
    let send = |key: Option<String>| {
        let mut r = gw.http.post(gw.url("/api/v1/chat/completions")).json(&chat);
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        r.send()
    };
    let missing = send(None).await.expect("send");
    assert_eq!(missing.status(), 401);
    let body: Value = missing.json().await.expect("json");
    assert_eq!(body["error"]["code"], 401);
    assert!(body["error"]["message"]
        .as_str()
        .expect("m")
        .contains("Authorization"));
    assert_eq!(
        send(Some("sk-or-v1-nope".into()))
            .await
            .expect("send")
            .status(),
        401
    );
    assert_eq!(
        send(Some(format!("sk-or-v1-{}", "0".repeat(64))))
            .await
            .expect("send")
            .status(),
        401
    );

    let disabled = gw
        .new_key(KeySpec {
            name: "d".into(),
            ..KeySpec::default()
        })
        .await;
    let hash = switchyard_core::keys::hash_key(&disabled);
    gw.state
        .store
        .update_key(
            &hash,
            &switchyard_store::KeyUpdate {
                disabled: Some(true),
                ..Default::default()
            },
            gw.state.now_ms(),
        )
        .await
        .expect("update");
    let r = send(Some(disabled)).await.expect("send");
    assert_eq!(r.status(), 401);
    assert!(r.text().await.expect("t").contains("disabled"));

    let expired = gw
        .new_key(KeySpec {
            name: "e".into(),
            expires_at: Some(gw.state.now_ms() - 1),
            ..KeySpec::default()
        })
        .await;
    let r = send(Some(expired)).await.expect("send");
    assert_eq!(r.status(), 401);
    assert!(r.text().await.expect("t").contains("expired"));

    let management = gw
        .new_key(KeySpec {
            name: "m".into(),
            management: true,
            ..KeySpec::default()
        })
        .await;
    let r = send(Some(management)).await.expect("send");
    assert_eq!(r.status(), 403);

    let limited = gw
        .new_key(KeySpec {
            name: "l".into(),
            limit: Some(Money::parse_usd("0.000001").expect("m")),
            ..KeySpec::default()
        })
        .await;
    let r = send(Some(limited)).await.expect("send");
    assert_eq!(r.status(), 402);
    let body: Value = r.json().await.expect("json");
    assert!(body["error"]["message"]
        .as_str()
        .expect("m")
        .contains("limit"));
    assert!(
        body["error"]["metadata"]["needed"]
            .as_f64()
            .expect("needed")
            > 0.0
    );
}

#[tokio::test]
async fn an_account_without_credits_is_refused_even_for_free_models() {
    let mock = MockUpstream::start(vec![Reply::Json(200, completion("x", 1, 1))]).await;
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), "0", "0")]))
        .credits("0")
        .build()
        .await;
    let r = gw
        .post(
            "/api/v1/chat/completions",
            json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 402);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["metadata"]["error_type"], "payment_required");
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn bad_input_gets_a_4xx_that_names_the_problem() {
    let (mock, gw) = one(vec![Reply::Json(200, completion("x", 1, 1))]).await;
    let cases: Vec<(Option<&str>, Vec<u8>, u16, &str)> = vec![
        (None, b"{\"messages\": [".to_vec(), 400, "Invalid JSON"),
        (None, b"[]".to_vec(), 400, "JSON object"),
        (None, br#"{"model": "test/model"}"#.to_vec(), 400, "messages"),
        (None, br#"{"model": "test/model", "messages": []}"#.to_vec(), 400, "at least one message"),
        (None, br#"{"model": "test/model", "messages": [{"role": "user", "content": 3}]}"#.to_vec(), 400, "content"),
        (None, br#"{"model": "test/model", "messages": [{"role": "user", "content": "x"}], "temperature": "warm"}"#.to_vec(), 400, "temperature"),
        (None, br#"{"model": "nobody/nothing", "messages": [{"role": "user", "content": "x"}]}"#.to_vec(), 400, "not a valid model ID"),
        (None, br#"{"messages": [{"role": "user", "content": "x"}]}"#.to_vec(), 400, "model"),
        (Some("text/plain"), br#"{}"#.to_vec(), 415, "content type"),
        (None, format!(r#"{{"model": "test/model", "messages": [{{"role": "user", "content": "{}"}}]}}"#, "x".repeat(70_000)).into_bytes(), 413, "larger than"),
    ];
    for (content_type, body, status, needle) in cases {
        let response = gw
            .http
            .post(gw.url("/api/v1/chat/completions"))
            .bearer_auth(&gw.key)
            .header("content-type", content_type.unwrap_or("application/json"))
            .body(body.clone())
            .send()
            .await
            .expect("send");
        assert_eq!(
            response.status().as_u16(),
            status,
            "{}",
            String::from_utf8_lossy(&body[..body.len().min(80)])
        );
        let err: Value = response.json().await.expect("envelope");
        assert_eq!(err["error"]["code"], status);
        let message = err["error"]["message"].as_str().expect("message");
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    }
    assert!(mock.requests().is_empty());
    let unknown: Value = gw
        .http
        .get(gw.url("/api/v1/nothing"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(unknown["error"]["code"], 404);
}

#[tokio::test]
async fn clean_shutdown_keeps_every_settlement() {
    let (_mock, gw) = one(vec![Reply::Json(200, completion("x", 3, 3))]).await;
    let mut ids = Vec::new();
    // Each request on a connection of its own, so every serving worker takes some.
    for _ in 0..6 {
        let r = reqwest::Client::new()
            .post(gw.url("/api/v1/chat/completions"))
            .bearer_auth(&gw.key)
            .json(&json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 200);
        ids.push(
            r.headers()["x-generation-id"]
                .to_str()
                .expect("id")
                .to_owned(),
        );
    }
    let stopped = gw.stop().await;
    // Shutdown closed the store: what it wrote is read back from the same database.
    let store = Store::connect(&stopped.store_url).await.expect("reopen");
    for id in &ids {
        let record = store.generation(id).await.expect("read").expect("settled");
        assert_eq!(record.tokens_prompt, 3);
        assert_eq!(record.tokens_completion, 3);
    }
    store.close().await;
}
