//! The pipeline's stages driven one by one, without the HTTP server: prepare and hold, attempt,
//! respond, refuse; each checked on the state it leaves (the ledger, the trail, the audit
//! record).

use std::sync::Arc;

use axum::http::HeaderMap;
use serde_json::{json, Value};
use switchyard_core::chat::ChatRequest;
use switchyard_core::keys::hash_key;
use switchyard_server::engine::audit::Trail;
use switchyard_server::engine::{self, prepare, respond, Attribution};
use switchyard_server::formats::{chat::CHAT, Parsed};
use switchyard_server::state::{AppState, Authenticated};

use crate::harness::{catalog, TestGateway};
use crate::mock::{completion, MockUpstream, Reply};

async fn setup(
    replies: Vec<Reply>,
    providers: usize,
) -> (
    MockUpstream,
    Arc<AppState>,
    Authenticated,
    tempfile::TempDir,
) {
    let mock = MockUpstream::start(replies).await;
    let url = mock.url();
    let list: Vec<(&str, &str, &str, &str)> = [
        ("alpha", url.as_str(), "0.000001", "0.000002"),
        ("beta", url.as_str(), "0.000003", "0.000004"),
    ]
    .into_iter()
    .take(providers)
    .collect();
    let (state, key, dir) = TestGateway::builder(catalog(&list)).state().await;
    let record = state
        .store
        .key(&hash_key(&key), state.now_ms())
        .await
        .expect("store")
        .expect("key");
    (mock, state, Authenticated { key: record }, dir)
}

fn parsed(body: Value) -> Parsed {
    Parsed::plain(ChatRequest::from_value(body).expect("request"))
}

fn trail(state: &AppState) -> Trail {
    Trail::arrive(state.now_ms(), "chat", Attribution::default())
}

#[tokio::test]
async fn prepare_plans_narrows_and_holds_and_a_dropped_inference_releases_its_hold() {
    let (_mock, state, key, _dir) = setup(vec![], 2).await;
    let body = json!({"model": "test/model", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    let inference = prepare::prepare(
        Arc::clone(&state),
        &CHAT,
        trail(&state),
        key,
        &HeaderMap::new(),
        parsed(body),
    )
    .await
    .map_err(|(_, e)| e)
    .expect("prepared");
    let providers: Vec<&str> = inference
        .trail
        .plan
        .candidates
        .iter()
        .map(|c| c.provider.as_str())
        .collect();
    assert_eq!(providers.len(), 2);
    assert!(inference.hold.is_some());
    assert_eq!(state.ledger.open_holds(), 1);
    drop(inference);
    assert_eq!(state.ledger.open_holds(), 0, "dropped unsettled: released");
}

#[tokio::test]
async fn prepare_refuses_with_the_trail_kept_for_the_record() {
    let (_mock, state, key, _dir) = setup(vec![], 1).await;
    let body = json!({"model": "no/such", "messages": [{"role": "user", "content": "hi"}]});
    let (trail, e) = match prepare::prepare(
        Arc::clone(&state),
        &CHAT,
        trail(&state),
        key,
        &HeaderMap::new(),
        parsed(body),
    )
    .await
    {
        Ok(_) => panic!("an unknown model is refused"),
        Err(refused) => refused,
    };
    assert_eq!(e.status(), 400);
    assert_eq!(state.ledger.open_holds(), 0, "nothing held");
    // The refusal renders in the format's envelope with the trail's id, and is audited: by
    // default the record is committed before the refusal is rendered (no flush needed).
    let response = engine::refuse(&state, &CHAT, &trail, e).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["x-generation-id"].to_str().expect("id"),
        trail.generation_id
    );
    let records = state.store.audit_page(0, 10).await.expect("page");
    let record: Value = serde_json::from_str(&records[0].body).expect("json");
    assert_eq!(record["generation_id"], json!(trail.generation_id));
    assert_eq!(record["status"], 400);
}

#[tokio::test]
async fn attempt_falls_back_and_respond_settles_the_exact_cost() {
    let (mock, state, key, _dir) = setup(
        vec![
            Reply::Json(503, json!({"error": {"message": "busy"}})),
            Reply::Json(200, completion("fine", 10, 5)),
        ],
        2,
    )
    .await;
    let body = json!({"model": "test/model", "provider": {"sort": "price"}, "messages": [{"role": "user", "content": "hi"}]});
    let mut inference = prepare::prepare(
        Arc::clone(&state),
        &CHAT,
        trail(&state),
        key,
        &HeaderMap::new(),
        parsed(body),
    )
    .await
    .map_err(|(_, e)| e)
    .expect("prepared");
    let answer = inference
        .attempt()
        .await
        .expect("the second provider answers");
    assert_eq!(answer.candidate.provider, "beta");
    let statuses: Vec<u16> = inference.trail.attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [503, 200]);
    let response = respond::complete(inference, answer)
        .await
        .map_err(|(_, e)| e)
        .expect("answered");
    assert_eq!(response.status(), 200);
    state.tasks.close();
    state.tasks.wait().await;
    state.recorder.flush().await;
    assert_eq!(state.ledger.open_holds(), 0, "settled");
    assert_eq!(mock.requests().len(), 2);
    let records = state.store.audit_page(0, 10).await.expect("page");
    let record: Value = serde_json::from_str(&records[0].body).expect("json");
    assert_eq!(record["served"]["provider"], "beta");
    // 10 prompt tokens at 0.000003 and 5 completion tokens at 0.000004.
    assert_eq!(record["cost"], "0.00005");
    assert_eq!(record["routing"]["attempts"][0]["status"], 503);
}
