//! Prompt logging: off by default, encrypted at rest when an account opts in, readable by the
//! owning account only.

use std::time::Duration;

use serde_json::{json, Value};
use switchyard_server::keys::{create as create_key, KeySpec};

use crate::harness::{catalog, TestGateway, ACCOUNT};
use crate::mock::{completion, stream_events, MockUpstream, Reply};

const PROMPT: &str = "the launch code is swordfish";

async fn gateway() -> (MockUpstream, TestGateway) {
    let mock = MockUpstream::start(vec![
        Reply::Json(200, completion("noted", 5, 1)),
        Reply::Json(200, completion("noted again", 5, 2)),
        Reply::Sse {
            events: stream_events(&["str", "eamed"], (5, 2)),
            delay: Duration::from_millis(1),
            cut: false,
        },
    ])
    .await;
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), "0.000001", "0.000001")]))
        .build()
        .await;
    (mock, gw)
}

async fn ask(gw: &TestGateway, stream: bool) -> String {
    let r = gw
        .post(
            "/api/v1/chat/completions",
            json!({"model": "test/model", "stream": stream, "messages": [{"role": "user", "content": PROMPT}]}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-generation-id"]
        .to_str()
        .expect("s")
        .to_owned();
    r.text().await.expect("body");
    id
}

async fn content(gw: &TestGateway, key: &str, id: &str) -> (u16, Value) {
    let r = gw
        .http
        .get(gw.url(&format!("/api/v1/generation/content?id={id}")))
        .bearer_auth(key)
        .send()
        .await
        .expect("send");
    (r.status().as_u16(), r.json().await.expect("json"))
}

#[tokio::test]
async fn prompt_logging_is_opt_in_encrypted_and_private() {
    let (_mock, gw) = gateway().await;
    // Off by default: only metadata is stored.
    let first = ask(&gw, false).await;
    gw.settled().await;
    assert!(gw
        .state
        .store
        .content(&first)
        .await
        .expect("read")
        .is_none());
    let (status, _) = content(&gw, &gw.key, &first).await;
    assert_eq!(status, 404);

    // Opt in.
    gw.state
        .store
        .set_account_settings(ACCOUNT, &json!({"prompt_logging": true}))
        .await
        .expect("settings");
    gw.state.settings.invalidate(ACCOUNT).await;
    let second = ask(&gw, false).await;
    let streamed = ask(&gw, true).await;
    gw.settled().await;

    let row = gw
        .state
        .store
        .content(&second)
        .await
        .expect("read")
        .expect("logged");
    assert!(
        !row.ciphertext.contains(&hex::encode("swordfish")),
        "stored encrypted"
    );
    let (status, body) = content(&gw, &gw.key, &second).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["id"], second);
    assert_eq!(body["data"]["input"]["messages"][0]["content"], PROMPT);
    assert_eq!(body["data"]["output"]["completion"], "noted again");
    assert_eq!(body["data"]["error"], serde_json::Value::Null);
    let (status, body) = content(&gw, &gw.key, &streamed).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["output"]["completion"], "streamed");

    // Another account's key cannot read it.
    let now = gw.state.now_ms();
    gw.state
        .store
        .ensure_account("other", "Other", now)
        .await
        .expect("account");
    let (other_key, _) = create_key(
        &gw.state.store,
        "other",
        &KeySpec {
            name: "other".into(),
            ..KeySpec::default()
        },
        now,
    )
    .await
    .expect("key");
    let (status, body) = content(&gw, &other_key, &second).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = content(&gw, &gw.key, "").await;
    assert_eq!(status, 400);
}
