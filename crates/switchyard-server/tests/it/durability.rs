//! `store.durability`: by default an answer completes only once its generation and audit
//! records are committed; a store that cannot commit them in time withholds the answer (a 500,
//! or the stream's error event) rather than serve it unrecorded; `batched` answers first.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};
use switchyard_server::keys::KeySpec;
use switchyard_server::recorder::Durability;

use crate::harness::{catalog, TestGateway};
use crate::mock::{completion, stream_events, MockUpstream, Reply};

fn chat(stream: bool) -> Value {
    json!({"model": "test/model", "stream": stream,
        "messages": [{"role": "user", "content": "hi"}]})
}

fn stream_reply() -> Reply {
    Reply::Sse {
        events: stream_events(&["a", "b"], (3, 2)),
        delay: Duration::from_millis(1),
        cut: false,
    }
}

/// The generation ids the audit chain holds records for.
async fn audited(gw: &TestGateway) -> HashSet<String> {
    let rows = gw.state.store.audit_page(0, 1000).await.expect("audit");
    rows.into_iter().map(|r| r.generation_id).collect()
}

fn generation_id(r: &reqwest::Response) -> String {
    r.headers()["x-generation-id"]
        .to_str()
        .expect("id")
        .to_owned()
}

#[tokio::test]
async fn by_default_every_answer_is_recorded_before_it_completes() {
    let mock = MockUpstream::start(vec![
        Reply::Json(200, completion("hi", 10, 5)),
        stream_reply(),
    ])
    .await;
    let gw = TestGateway::builder(catalog(&[("up", &mock.url(), "0.000001", "0.000002")]))
        .build()
        .await;
    assert_eq!(gw.state.recorder.durability(), Durability::BeforeAnswer);

    // No flush, no waiting for background settlement: what the client holds is in the store.
    let r = gw
        .post("/api/v1/chat/completions", chat(false))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let json_id = generation_id(&r);
    r.bytes().await.expect("body");
    let record = gw.state.store.generation(&json_id).await.expect("read");
    assert!(record.is_some_and(|g| g.status == 200 && !g.streamed));
    assert!(audited(&gw).await.contains(&json_id));

    let r = gw
        .post("/api/v1/chat/completions", chat(true))
        .send()
        .await
        .expect("send");
    let sse_id = generation_id(&r);
    let text = r.text().await.expect("stream");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let record = gw.state.store.generation(&sse_id).await.expect("read");
    assert!(record.is_some_and(|g| g.streamed && g.tokens_completion == 2));
    assert!(audited(&gw).await.contains(&sse_id));

    // A refusal too is sent once its record is in the chain.
    let r = gw
        .post(
            "/api/v1/chat/completions",
            json!({"model": "no/such", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    assert!(audited(&gw).await.contains(&generation_id(&r)));
    gw.stop().await;
}

#[tokio::test]
async fn an_answer_whose_records_cannot_be_committed_is_withheld() {
    let mock = MockUpstream::start(vec![
        Reply::Json(200, completion("secret answer", 10, 5)),
        stream_reply(),
    ])
    .await;
    let gw = TestGateway::builder(catalog(&[("up", &mock.url(), "0.000001", "0.000002")]))
        .config(|c| c.store.record_timeout_secs = 0.3)
        .build()
        .await;
    // Every write of the audit chain fails, as with a database that refuses writes.
    gw.state
        .store
        .raw_execute(
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log \
             BEGIN SELECT RAISE(ABORT, 'refused'); END",
        )
        .await
        .expect("trigger");

    let r = gw
        .post("/api/v1/chat/completions", chat(false))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 500);
    let json_id = generation_id(&r);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], 500);
    assert_eq!(body["error"]["message"], "Internal Server Error");
    assert!(!body.to_string().contains("secret answer"), "{body}");

    // A stream's content went out as it came; its end is the error event instead of the usage
    // and `[DONE]`.
    let r = gw
        .post("/api/v1/chat/completions", chat(true))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let sse_id = generation_id(&r);
    let text = r.text().await.expect("stream");
    assert!(text.contains("\"content\":\"a\""), "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
    assert!(!text.contains("\"usage\""), "{text}");
    let last = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .next_back()
        .expect("an event");
    let last: Value = serde_json::from_str(last).expect("json");
    assert_eq!(last["choices"][0]["finish_reason"], "error");
    assert_eq!(last["error"]["code"], 500);

    // Counted, by reason.
    let admin = gw
        .new_key(KeySpec {
            name: "scraper".into(),
            management: true,
            ..KeySpec::default()
        })
        .await;
    let metrics = gw
        .http
        .get(gw.url("/metrics"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    let failures: f64 = metrics
        .lines()
        .find(|l| l.starts_with("switchyard_record_wait_failures_total{reason=\"timeout\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the failure counter");
    assert!(failures >= 2.0, "{failures}");

    // Once the store takes writes again, the writer's retries commit what was queued: the
    // provider was paid for both, and the trail says so.
    gw.state
        .store
        .raw_execute("DROP TRIGGER refuse_audit")
        .await
        .expect("drop trigger");
    gw.settled().await;
    for id in [&json_id, &sse_id] {
        assert!(
            gw.state.store.generation(id).await.expect("read").is_some(),
            "{id}"
        );
        assert!(audited(&gw).await.contains(id.as_str()), "{id}");
    }
    assert_eq!(gw.state.ledger.open_holds(), 0);
    gw.stop().await;
}

#[tokio::test]
async fn batched_answers_first_and_records_within_the_writers_window() {
    let mock = MockUpstream::start(vec![
        Reply::Json(200, completion("hi", 10, 5)),
        stream_reply(),
    ])
    .await;
    let gw = TestGateway::builder(catalog(&[("up", &mock.url(), "0.000001", "0.000002")]))
        .config(|c| c.store.durability = Durability::Batched)
        .build()
        .await;
    assert_eq!(gw.state.recorder.durability(), Durability::Batched);
    let mut ids = Vec::new();
    for stream in [false, true] {
        let r = gw
            .post("/api/v1/chat/completions", chat(stream))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 200);
        ids.push(generation_id(&r));
        r.bytes().await.expect("body");
    }
    gw.settled().await;
    let audited = audited(&gw).await;
    for id in &ids {
        assert!(gw.state.store.generation(id).await.expect("read").is_some());
        assert!(audited.contains(id), "{id}");
    }
    gw.stop().await;
}
