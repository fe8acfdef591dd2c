//! BYOK endpoints: served with the operator's own provider key; their generations carry
//! `is_byok`, count in `byok_usage`, and count against a key's limit only when
//! `include_byok_in_limit` is set.

use serde_json::{json, Value};
use switchyard_core::money::Money;
use switchyard_server::keys::KeySpec;

use crate::harness::{catalog, TestGateway, ACCOUNT};
use crate::mock::{completion, MockUpstream, Reply};

fn usd(text: &str) -> Money {
    Money::parse_usd(text).expect("usd")
}

async fn call(gw: &TestGateway, key: &str) -> Value {
    let r = gw
        .http
        .post(gw.url("/api/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    r.json().await.expect("json")
}

async fn key_info(gw: &TestGateway, key: &str) -> Value {
    gw.http
        .get(gw.url("/api/v1/key"))
        .bearer_auth(key)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn byok_generations_are_marked_and_counted_apart() {
    let mock = MockUpstream::start(vec![Reply::Json(200, completion("ok", 100, 50))]).await;
    let text = catalog(&[("own", &mock.url(), "0.000001", "0.000002")]).replace(
        "api_key_env = \"OWN_KEY\"",
        "api_key_env = \"OWN_KEY\"\nbyok = true",
    );
    let gw = TestGateway::builder(text).build().await;
    let plain = gw
        .new_key(KeySpec {
            name: "plain".into(),
            limit: Some(usd("1")),
            ..KeySpec::default()
        })
        .await;
    let counted = gw
        .new_key(KeySpec {
            name: "counted".into(),
            limit: Some(usd("1")),
            include_byok_in_limit: true,
            ..KeySpec::default()
        })
        .await;
    let body = call(&gw, &plain).await;
    // 100 × 0.000001 + 50 × 0.000002 = 0.0002
    assert_eq!(body["usage"]["is_byok"], true);
    assert_eq!(body["usage"]["cost"], json!(0.0002));
    assert_eq!(
        body["usage"]["cost_details"]["upstream_inference_cost"],
        json!(0.0002)
    );
    let id = body["id"].as_str().expect("id").to_owned();
    call(&gw, &counted).await;
    gw.settled().await;

    let generation: Value = gw
        .http
        .get(gw.url(&format!("/api/v1/generation?id={id}")))
        .bearer_auth(&plain)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(generation["data"]["is_byok"], true);

    let p = key_info(&gw, &plain).await;
    assert_eq!(p["data"]["byok_usage"], json!(0.0002), "{p}");
    assert_eq!(p["data"]["usage"], json!(0), "{p}");
    assert_eq!(p["data"]["limit_remaining"], json!(1), "not counted: {p}");
    let c = key_info(&gw, &counted).await;
    assert_eq!(c["data"]["limit_remaining"], json!(0.9998), "counted: {c}");

    // BYOK spend is not taken from the account's credits.
    let account = gw
        .state
        .store
        .account(ACCOUNT)
        .await
        .expect("read")
        .expect("account");
    assert_eq!(
        (account.usage, account.byok_usage),
        (Money::ZERO, usd("0.0004"))
    );
}
