//! Data classifications: routing never leaves what the classification allows, fallbacks
//! included; a request can tighten its account's classification but never loosen it.

use serde_json::{json, Value};

use crate::harness::{TestGateway, ACCOUNT};
use crate::mock::{completion, MockUpstream, Reply};

/// `cheap` trains on prompts and is cheaper; `vault` is zero-retention. `solo/model` is served by
/// `cheap` alone.
fn catalog(cheap: &str, vault: &str) -> String {
    format!(
        r#"
[[providers]]
slug = "cheap"
name = "Cheap"
kind = "openai"
base_url = "{cheap}"
api_key_env = "CHEAP_KEY"
data_policy = {{ training = true, retains_prompts = true }}

[[providers]]
slug = "vault"
name = "Vault"
kind = "openai"
base_url = "{vault}"
api_key_env = "VAULT_KEY"
data_policy = {{ training = false, retains_prompts = false, zdr = true }}

[[models]]
id = "test/model"
name = "Test"
context_length = 8000

[[models.endpoints]]
provider = "cheap"
upstream_model = "m"
pricing = {{ prompt = "0.0000001", completion = "0.0000001" }}

[[models.endpoints]]
provider = "vault"
upstream_model = "m"
pricing = {{ prompt = "0.000001", completion = "0.000001" }}

[[models]]
id = "solo/model"
name = "Solo"
context_length = 8000

[[models.endpoints]]
provider = "cheap"
upstream_model = "m"
pricing = {{ prompt = "0.0000001", completion = "0.0000001" }}
"#
    )
}

async fn setup(vault_reply: Reply) -> (MockUpstream, MockUpstream, TestGateway) {
    let cheap = MockUpstream::start(vec![Reply::Json(200, completion("cheap", 1, 1))]).await;
    let vault = MockUpstream::start(vec![vault_reply]).await;
    let gw = TestGateway::builder(catalog(&cheap.url(), &vault.url()))
        .build()
        .await;
    // The account allows providers that train, so that only classifications restrict here.
    set_settings(
        &gw,
        json!({"allow_training_paid": true, "allow_training_free": true}),
    )
    .await;
    (cheap, vault, gw)
}

async fn set_settings(gw: &TestGateway, settings: Value) {
    gw.state
        .store
        .set_account_settings(ACCOUNT, &settings)
        .await
        .expect("settings");
    gw.state.settings.invalidate(ACCOUNT).await;
}

async fn ask(gw: &TestGateway, model: &str, class: Option<&str>) -> (u16, Value) {
    let mut req = gw.post(
        "/api/v1/chat/completions",
        json!({"model": model, "provider": {"sort": "price"}, "messages": [{"role": "user", "content": "x"}]}),
    );
    if let Some(c) = class {
        req = req.header("X-Switchyard-Data-Classification", c);
    }
    let r = req.send().await.expect("send");
    (r.status().as_u16(), r.json().await.expect("json"))
}

#[tokio::test]
async fn a_classification_keeps_prompts_on_allowed_providers() {
    let (cheap, vault, gw) = setup(Reply::Json(200, completion("vault", 1, 1))).await;
    // Unclassified: the cheapest endpoint.
    let (status, body) = ask(&gw, "test/model", None).await;
    assert_eq!((status, body["provider"].as_str()), (200, Some("Cheap")));
    // Restricted: only the zero-retention provider.
    let (status, body) = ask(&gw, "test/model", Some("restricted")).await;
    assert_eq!(
        (status, body["provider"].as_str()),
        (200, Some("Vault")),
        "{body}"
    );
    // No allowed endpoint: the contract's availability error, naming the constraint.
    let (status, body) = ask(&gw, "solo/model", Some("internal")).await;
    assert_eq!(status, 404, "{body}");
    let availability = &body["error"]["availability"];
    assert_eq!(availability["code"], "privacy_restricted");
    assert_eq!(
        availability["excluded_by"],
        json!(["data_classification:training"])
    );
    // Unknown names are a 400 that lists the known ones.
    let (status, body) = ask(&gw, "test/model", Some("top-secret")).await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"]
        .as_str()
        .expect("m")
        .contains("restricted"));
    assert_eq!(cheap.requests().len(), 1);
    assert_eq!(vault.requests().len(), 1);

    gw.settled().await;
    let records = gw.state.store.audit_page(0, 100).await.expect("audit");
    let classes: Vec<Value> = records
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(&r.body).expect("json")["data_classification"].clone()
        })
        .collect();
    assert_eq!(
        classes,
        [
            json!(null),
            json!("restricted"),
            json!("internal"),
            json!("top-secret")
        ]
    );
}

#[tokio::test]
async fn fallbacks_never_escape_the_classification() {
    // The allowed provider fails; the disallowed one would answer, but is never tried.
    let (cheap, vault, gw) = setup(Reply::Json(503, json!({"error": {"message": "down"}}))).await;
    let (status, body) = ask(&gw, "test/model", Some("restricted")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(vault.requests().len(), 1);
    assert_eq!(cheap.requests().len(), 0, "a fallback left the allowed set");
}

#[tokio::test]
async fn a_request_cannot_loosen_its_accounts_classification() {
    let (cheap, _vault, gw) = setup(Reply::Json(200, completion("vault", 1, 1))).await;
    set_settings(
        &gw,
        json!({"allow_training_paid": true, "data_classification": "restricted"}),
    )
    .await;
    let (status, body) = ask(&gw, "test/model", Some("public")).await;
    assert_eq!(
        (status, body["provider"].as_str()),
        (200, Some("Vault")),
        "{body}"
    );
    let (status, _) = ask(&gw, "test/model", None).await;
    assert_eq!(status, 200);
    assert_eq!(cheap.requests().len(), 0);
}

#[tokio::test]
async fn account_privacy_settings_filter_routing_and_requests_only_tighten_them() {
    let (cheap, vault, gw) = setup(Reply::Json(200, completion("vault", 1, 1))).await;
    // Default settings: providers that may train are not used.
    set_settings(&gw, json!({})).await;
    let (status, body) = ask(&gw, "test/model", None).await;
    assert_eq!(
        (status, body["provider"].as_str()),
        (200, Some("Vault")),
        "{body}"
    );
    let (status, body) = ask(&gw, "solo/model", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["availability"]["code"], "privacy_restricted");
    assert_eq!(
        body["error"]["availability"]["excluded_by"],
        json!(["data_policy:training"])
    );
    // Allowing training on paid endpoints lets the cheap one serve.
    set_settings(&gw, json!({"allow_training_paid": true})).await;
    let (_, body) = ask(&gw, "test/model", None).await;
    assert_eq!(body["provider"], "Cheap");
    // Provider deny-list, and a request cannot undo it with `only`.
    set_settings(
        &gw,
        json!({"allow_training_paid": true, "ignored_providers": ["cheap"]}),
    )
    .await;
    let r = gw
        .post(
            "/api/v1/chat/completions",
            json!({"model": "test/model", "provider": {"only": ["cheap"]}, "messages": [{"role": "user", "content": "x"}]}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 404);
    // ZDR-only accounts.
    set_settings(&gw, json!({"allow_training_paid": true, "zdr_only": true})).await;
    let (_, body) = ask(&gw, "test/model", None).await;
    assert_eq!(body["provider"], "Vault");
    assert_eq!(cheap.requests().len(), 1);
    assert_eq!(vault.requests().len(), 2);
}
