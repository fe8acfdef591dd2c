//! The routers through the HTTP API: `openrouter/free`, `openrouter/auto` and
//! `~author/family-latest` reach the endpoint their rule chooses, and `openrouter_metadata`
//! names the strategy.

use serde_json::{json, Value};

use crate::harness::{catalog, TestGateway};
use crate::mock::{completion, MockUpstream, Reply};

async fn ask(gw: &TestGateway, model: &str) -> (u16, Value) {
    let r = gw
        .post(
            "/api/v1/chat/completions",
            json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .header("X-OpenRouter-Metadata", "enabled")
        .send()
        .await
        .expect("send");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn free_and_auto_choose_by_their_rules_and_say_so() {
    let paid = MockUpstream::start(vec![Reply::Json(200, completion("paid", 3, 2))]).await;
    let cheaper = MockUpstream::start(vec![Reply::Json(200, completion("cheaper", 3, 2))]).await;
    let free = MockUpstream::start(vec![Reply::Json(200, completion("free", 3, 2))]).await;
    let gw = TestGateway::builder(catalog(&[
        ("alpha", &paid.url(), "0.000002", "0.000004"),
        ("beta", &cheaper.url(), "0.000001", "0.000002"),
    ]))
    .build()
    .await;
    // No free endpoint: `openrouter/free` finds nothing and says why.
    let (status, body) = ask(&gw, "openrouter/free").await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not_free"),
        "{body}"
    );
    // `openrouter/auto`: the cheapest capable endpoint.
    let (status, body) = ask(&gw, "openrouter/auto").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "cheaper");
    assert_eq!(body["model"], "test/model");
    assert_eq!(body["openrouter_metadata"]["strategy"], "auto", "{body}");
    assert_eq!(body["openrouter_metadata"]["requested"], "openrouter/auto");
    assert_eq!(paid.requests().len(), 0);
    // The generation record names the router.
    gw.settled().await;
    let id = body["id"].as_str().expect("id");
    let r = gw
        .http
        .get(gw.url(&format!("/api/v1/generation?id={id}")))
        .bearer_auth(&gw.key)
        .send()
        .await
        .expect("send");
    let generation: Value = r.json().await.expect("json");
    assert_eq!(
        generation["data"]["router"], "openrouter/auto",
        "{generation}"
    );
    assert_eq!(generation["data"]["preset_id"], Value::Null, "{generation}");

    let gw = TestGateway::builder(catalog(&[
        ("alpha", &paid.url(), "0.000002", "0.000004"),
        ("gamma", &free.url(), "0", "0"),
    ]))
    .build()
    .await;
    let (status, body) = ask(&gw, "openrouter/free").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "free");
    assert_eq!(body["openrouter_metadata"]["strategy"], "free", "{body}");
    let excluded = body["openrouter_metadata"]["endpoints"]["excluded"].to_string();
    assert!(excluded.contains("not_free"), "{body}");
    assert_eq!(paid.requests().len(), 0);
}

#[tokio::test]
async fn latest_reaches_the_newest_family_member() {
    let mock = MockUpstream::start(vec![Reply::Json(200, completion("ok", 3, 2))]).await;
    // The harness's model is `test/model`; its family `test/model` has it as only member.
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), "0.000001", "0.000002")]))
        .build()
        .await;
    let (status, body) = ask(&gw, "~test/model-latest").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model"], "test/model");
    assert_eq!(body["openrouter_metadata"]["strategy"], "latest", "{body}");
    let (status, body) = ask(&gw, "~test/other-latest").await;
    assert_eq!(status, 400, "{body}");
}
