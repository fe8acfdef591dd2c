//! Routing through the real server: fallbacks by failure kind, none after the first streamed
//! byte, model fallbacks, the circuit breaker, sticky sessions and the availability errors.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{json, Value};
use switchyard_server::state::Clock;

use crate::harness::{catalog, TestGateway};
use crate::mock::{completion, stream_events, MockUpstream, Reply};

fn advance(gw: &TestGateway, ms: i64) {
    match &gw.state.clock {
        Clock::Manual(t) => {
            t.fetch_add(ms, Ordering::SeqCst);
        }
        Clock::System => panic!("test gateways use a manual clock"),
    }
}

async fn ask(gw: &TestGateway, body: Value) -> (u16, Value) {
    let r = gw
        .post("/api/v1/chat/completions", body)
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn by_price() -> Value {
    json!({"model": "test/model", "provider": {"sort": "price"}, "messages": [{"role": "user", "content": "hi"}]})
}

/// A base URL where nothing listens.
async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}/v1")
}

#[tokio::test]
async fn every_retryable_failure_kind_falls_back_to_the_next_endpoint() {
    let kinds: Vec<(&str, Option<Reply>)> = vec![
        (
            "429",
            Some(Reply::Json(429, json!({"error": {"message": "slow down"}}))),
        ),
        (
            "502",
            Some(Reply::Json(
                502,
                json!({"error": {"message": "bad gateway"}}),
            )),
        ),
        (
            "503",
            Some(Reply::Json(
                503,
                json!({"error": {"message": "unavailable"}}),
            )),
        ),
        (
            "529",
            Some(Reply::Json(
                529,
                json!({"error": {"message": "overloaded"}}),
            )),
        ),
        ("timeout", Some(Reply::Hang)),
        ("connection refused", None),
    ];
    for (kind, reply) in kinds {
        let failing = match &reply {
            Some(r) => Some(MockUpstream::start(vec![r.clone()]).await),
            None => None,
        };
        let failing_url = match &failing {
            Some(m) => m.url(),
            None => closed_port().await,
        };
        let good = MockUpstream::start(vec![Reply::Json(200, completion("ok", 1, 1))]).await;
        let gw = TestGateway::builder(catalog(&[
            ("alpha", &failing_url, "0.000001", "0.000001"),
            ("beta", &good.url(), "0.000002", "0.000002"),
        ]))
        .config(|c| c.server.upstream_timeout_secs = 0.5)
        .build()
        .await;
        let (status, body) = ask(&gw, by_price()).await;
        assert_eq!(status, 200, "{kind}: {body}");
        assert_eq!(body["provider"], "BETA", "{kind}");
        if let Some(m) = &failing {
            assert_eq!(m.requests().len(), 1, "{kind}");
        }
    }
}

#[tokio::test]
async fn no_fallback_after_the_first_streamed_byte() {
    let cut = MockUpstream::start(vec![Reply::Sse {
        events: stream_events(&["partial ", "answer", "never", "ends"], (3, 4))[..3].to_vec(),
        delay: Duration::from_millis(1),
        cut: true,
    }])
    .await;
    let good = MockUpstream::start(vec![Reply::Json(200, completion("ok", 1, 1))]).await;
    let gw = TestGateway::builder(catalog(&[
        ("alpha", &cut.url(), "0.000001", "0.000001"),
        ("beta", &good.url(), "0.000002", "0.000002"),
    ]))
    .build()
    .await;
    let mut body = by_price();
    body["stream"] = json!(true);
    let r = gw
        .post("/api/v1/chat/completions", body)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("text");
    assert!(text.contains("partial "), "{text}");
    assert!(text.contains("\"finish_reason\":\"error\""), "{text}");
    assert!(
        good.requests().is_empty(),
        "fell back after content reached the client"
    );
}

#[tokio::test]
async fn model_fallbacks_are_tried_in_order() {
    let down = MockUpstream::start(vec![Reply::Json(
        500,
        json!({"error": {"message": "down"}}),
    )])
    .await;
    let up = MockUpstream::start(vec![Reply::Json(200, completion("ok", 1, 1))]).await;
    let text = format!(
        "{}{}",
        catalog(&[("alpha", &down.url(), "0.000001", "0.000001")]),
        catalog(&[("beta", &up.url(), "0.000001", "0.000001")])
            .replace("test/model", "test/backup")
            .replace("Test: Model", "Test: Backup")
    );
    let gw = TestGateway::builder(text).build().await;
    let (status, body) = ask(
        &gw,
        json!({"model": "test/model", "models": ["test/backup"], "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model"], "test/backup");
    assert_eq!(body["provider"], "BETA");
    assert_eq!(down.requests().len(), 1);
}

#[tokio::test]
async fn the_circuit_opens_on_repeated_failures_and_closes_after_a_good_probe() {
    let mut script: Vec<Reply> = (0..5)
        .map(|_| Reply::Json(503, json!({"error": {"message": "down"}})))
        .collect();
    script.push(Reply::Json(200, completion("back", 1, 1)));
    let flaky = MockUpstream::start(script).await;
    let steady = MockUpstream::start(vec![Reply::Json(200, completion("ok", 1, 1))]).await;
    let gw = TestGateway::builder(catalog(&[
        ("flaky", &flaky.url(), "0.000001", "0.000001"),
        ("steady", &steady.url(), "0.000002", "0.000002"),
    ]))
    .build()
    .await;
    // Requests pinned to the flaky provider: five failures in a row.
    let pinned = json!({"model": "test/model", "provider": {"only": ["flaky"]},
                        "messages": [{"role": "user", "content": "hi"}]});
    for _ in 0..5 {
        let (status, _) = ask(&gw, pinned.clone()).await;
        assert_eq!(status, 503);
    }
    assert_eq!(flaky.requests().len(), 5);
    // Open: nothing is sent to it, and the open circuit is what the client is told.
    let (status, body) = ask(&gw, pinned.clone()).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("m")
            .contains("circuit open"),
        "{body}"
    );
    // Unpinned requests go to the healthy provider though the flaky one is cheaper.
    let (_, body) = ask(&gw, by_price()).await;
    assert_eq!(body["provider"], "STEADY");
    assert_eq!(
        flaky.requests().len(),
        5,
        "an open circuit still received requests"
    );
    let endpoints: Value = gw
        .http
        .get(gw.url("/api/v1/models/test/model/endpoints"))
        .bearer_auth(&gw.key)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let flaky_uptime = endpoints["data"]["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .find(|e| e["provider_name"] == "FLAKY")
        .map(|e| e["uptime_last_30m"].clone());
    assert_eq!(flaky_uptime, Some(json!(0.0)), "{endpoints}");
    // After the cool-down one probe goes; it succeeds and the circuit closes.
    advance(&gw, 31_000);
    let (status, body) = ask(&gw, pinned.clone()).await;
    assert_eq!(
        (status, body["provider"].as_str()),
        (200, Some("FLAKY")),
        "{body}"
    );
    let (status, _) = ask(&gw, pinned).await;
    assert_eq!(status, 200);
    assert_eq!(flaky.requests().len(), 7);
}

#[tokio::test]
async fn sticky_sessions_return_to_the_provider_that_served_them() {
    let cheap = MockUpstream::start(vec![Reply::Json(200, completion("cheap", 1, 1))]).await;
    let dear = MockUpstream::start(vec![Reply::Json(200, completion("dear", 1, 1))]).await;
    let gw = TestGateway::builder(catalog(&[
        ("cheap", &cheap.url(), "0.0000001", "0.0000001"),
        ("dear", &dear.url(), "0.000001", "0.000001"),
    ]))
    .build()
    .await;
    // The session starts on the dear provider (asked for explicitly)...
    let (_, body) = ask(
        &gw,
        json!({"model": "test/model", "session_id": "s-1", "provider": {"order": ["dear"]},
               "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(body["provider"], "DEAR");
    // ...and stays there, though the default choice weighs the cheap one 100 to 1.
    for _ in 0..10 {
        let (_, body) = ask(
            &gw,
            json!({"model": "test/model", "session_id": "s-1", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
        assert_eq!(body["provider"], "DEAR");
    }
    // The header works too.
    let r = gw
        .post(
            "/api/v1/chat/completions",
            json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .header("x-session-id", "s-1")
        .send()
        .await
        .expect("send");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["provider"], "DEAR");
    // After 10 minutes idle the session is forgotten.
    advance(&gw, 11 * 60_000);
    let mut cheap_seen = false;
    for _ in 0..10 {
        let (_, body) = ask(
            &gw,
            json!({"model": "test/model", "session_id": "s-2", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
        cheap_seen |= body["provider"] == "CHEAP";
    }
    assert!(cheap_seen, "a new session follows the default weighting");
}

#[tokio::test]
async fn availability_errors_say_which_constraint_excluded_what() {
    let m = MockUpstream::start(vec![Reply::Json(200, completion("ok", 1, 1))]).await;
    let gw = TestGateway::builder(catalog(&[("alpha", &m.url(), "0.000001", "0.000002")]))
        .build()
        .await;
    let cases = [
        (
            json!({"max_price": {"prompt": 0.5}}),
            "constraint_filtered",
            "max_price",
        ),
        (
            json!({"quantizations": ["fp4"]}),
            "constraint_filtered",
            "quantization",
        ),
        (json!({"only": ["nobody"]}), "constraint_filtered", "only"),
    ];
    for (provider, code, reason) in cases {
        let (status, body) = ask(
            &gw,
            json!({"model": "test/model", "provider": provider, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
        assert_eq!(status, 404, "{body}");
        let availability = &body["error"]["availability"];
        assert_eq!(availability["code"], code, "{body}");
        assert_eq!(availability["excluded_by"], json!([reason]), "{body}");
        assert_eq!(availability["excluded"][0]["provider"], "alpha", "{body}");
    }
    // Unknown provider fields are a 400 naming them.
    let (status, body) = ask(
        &gw,
        json!({"model": "test/model", "provider": {"sorting": "price"}, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("m")
            .contains("sorting"),
        "{body}"
    );
    assert!(m.requests().is_empty());
}
