//! `/metrics`: Prometheus text with the request, upstream, token, cost and stream series.

use std::time::Duration;

use serde_json::json;

use switchyard_server::keys::KeySpec;

use crate::harness::{catalog, TestGateway};
use crate::mock::{completion, stream_events, MockUpstream, Reply};

#[tokio::test]
async fn metrics_count_requests_attempts_tokens_and_cost() {
    let mock = MockUpstream::start(vec![
        Reply::Json(200, completion("hi", 10, 5)),
        Reply::Sse {
            events: stream_events(&["a", "b"], (3, 2)),
            delay: Duration::from_millis(1),
            cut: false,
        },
    ])
    .await;
    let gw = TestGateway::builder(catalog(&[("metered", &mock.url(), "0.000001", "0.000002")]))
        .build()
        .await;
    let body = json!({"model": "test/model", "messages": [{"role": "user", "content": "x"}]});
    let r = gw
        .post("/api/v1/chat/completions", body.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let r = gw
        .post("/api/v1/chat/completions", streamed)
        .send()
        .await
        .expect("send");
    r.text().await.expect("stream");
    gw.settled().await;

    let admin = gw
        .new_key(KeySpec {
            name: "scraper".into(),
            management: true,
            ..KeySpec::default()
        })
        .await;
    let r = gw
        .http
        .get(gw.url("/metrics"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .expect("ct")
        .starts_with("text/plain"));
    let text = r.text().await.expect("text");
    // Series are process-wide (other tests run in this process): check ours by label.
    for needle in [
        "switchyard_http_requests_total{route=\"/api/v1/chat/completions\",status=\"200\"}",
        "switchyard_http_request_duration_seconds_bucket{route=\"/api/v1/chat/completions\"",
        "switchyard_upstream_attempts_total{provider=\"metered\",outcome=\"ok\"} 2",
        "switchyard_tokens_total{provider=\"metered\",kind=\"prompt\"} 13",
        "switchyard_tokens_total{provider=\"metered\",kind=\"completion\"} 7",
        // 13 × 1e-6 + 7 × 2e-6 = 27e-6 USD = 27,000,000 pico-dollars
        "switchyard_cost_picodollars_total{provider=\"metered\"} 27000000",
        "switchyard_active_streams",
        "switchyard_recorder_queue_depth{queue=\"settlements\"}",
        "switchyard_recorder_queue_depth{queue=\"audit\"}",
        "switchyard_ledger_open_holds",
        "switchyard_upstream_duration_seconds_bucket{provider=\"metered\"",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}
