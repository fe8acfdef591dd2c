//! Guardrails: the API, assignment to keys, content filters through both inbound formats
//! (checked at the mock upstream), model and provider lists, budgets, and the audit record.

use serde_json::{json, Value};

use crate::harness::{catalog, TestGateway};
use crate::mock::{completion, MockUpstream, Reply};

async fn setup() -> (MockUpstream, TestGateway, String) {
    let mock = MockUpstream::start(vec![Reply::Json(200, completion("ok", 10, 4))]).await;
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), "0.000001", "0.000002")]))
        .build()
        .await;
    let admin = gw.admin_key().await;
    (mock, gw, admin)
}

async fn call(gw: &TestGateway, key: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let r = gw
        .http
        .request(method.parse().expect("method"), gw.url(path))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("send");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Creates a guardrail and assigns it to the gateway's standard key; returns its id.
async fn guard(gw: &TestGateway, admin: &str, body: Value) -> String {
    let (status, created) = call(gw, admin, "POST", "/api/v1/guardrails", body).await;
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["id"].as_str().expect("id").to_owned();
    let hash = switchyard_core::keys::hash_key(&gw.key);
    let (status, assigned) = call(
        gw,
        admin,
        "POST",
        &format!("/api/v1/guardrails/{id}/assignments/keys"),
        json!({"key_hashes": [hash]}),
    )
    .await;
    assert_eq!(
        (status, assigned["assigned_count"].as_u64()),
        (200, Some(1)),
        "{assigned}"
    );
    id
}

async fn chat(gw: &TestGateway, text: &str) -> (u16, Value) {
    call(
        gw,
        &gw.key.clone(),
        "POST",
        "/api/v1/chat/completions",
        json!({"model": "test/model", "messages": [{"role": "user", "content": text}]}),
    )
    .await
}

fn sent_text(mock: &MockUpstream) -> String {
    mock.requests()
        .last()
        .map(|r| r.body["messages"].to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_api_manages_guardrails_and_assignments() {
    let (_mock, gw, admin) = setup().await;
    let (status, _) = call(
        &gw,
        &gw.key.clone(),
        "GET",
        "/api/v1/guardrails",
        json!(null),
    )
    .await;
    assert_eq!(status, 403, "standard keys cannot manage guardrails");
    let id = guard(&gw, &admin, json!({"name": "prod", "limit_usd": 50, "reset_interval": "monthly",
        "allowed_providers": ["alpha"], "content_filter_builtins": [{"slug": "email", "action": "redact"}]})).await;
    let (status, list) = call(&gw, &admin, "GET", "/api/v1/guardrails", json!(null)).await;
    assert_eq!((status, list["total_count"].as_u64()), (200, Some(1)));
    assert_eq!(list["data"][0]["name"], "prod");
    let (status, one) = call(
        &gw,
        &admin,
        "GET",
        &format!("/api/v1/guardrails/{id}"),
        json!(null),
    )
    .await;
    assert_eq!(
        (status, one["data"]["limit_usd"].as_f64()),
        (200, Some(50.0))
    );
    let (status, patched) = call(
        &gw,
        &admin,
        "PATCH",
        &format!("/api/v1/guardrails/{id}"),
        json!({"description": "live", "allowed_providers": null}),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["data"]["description"], "live");
    assert_eq!(patched["data"]["allowed_providers"], Value::Null);
    let (_, assignments) = call(
        &gw,
        &admin,
        "GET",
        "/api/v1/guardrails/assignments/keys",
        json!(null),
    )
    .await;
    assert_eq!(assignments["data"][0]["key_name"], "test");
    let hash = switchyard_core::keys::hash_key(&gw.key);
    let (_, removed) = call(
        &gw,
        &admin,
        "POST",
        &format!("/api/v1/guardrails/{id}/assignments/keys/remove"),
        json!({"key_hashes": [hash]}),
    )
    .await;
    assert_eq!(removed["unassigned_count"], 1);
    for (body, needle) in [
        (
            json!({"name": "x", "content_filter_builtins": [{"slug": "person-name", "action": "redact"}]}),
            "person-name",
        ),
        (
            json!({"name": "x", "content_filters": [{"pattern": "(unclosed", "action": "block"}]}),
            "content_filters[0]",
        ),
        (json!({"name": "x", "colour": "red"}), "colour"),
        (json!({"name": "x", "reset_interval": "hourly"}), "hourly"),
        (json!({"description": "no name"}), "name"),
    ] {
        let (status, err) = call(&gw, &admin, "POST", "/api/v1/guardrails", body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            err["error"]["message"]
                .as_str()
                .expect("m")
                .contains(needle),
            "{needle}: {err}"
        );
    }
    let (status, deleted) = call(
        &gw,
        &admin,
        "DELETE",
        &format!("/api/v1/guardrails/{id}"),
        json!(null),
    )
    .await;
    assert_eq!((status, deleted["deleted"].as_bool()), (200, Some(true)));
    let (status, _) = call(
        &gw,
        &admin,
        "GET",
        &format!("/api/v1/guardrails/{id}"),
        json!(null),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn every_detector_and_action_applies_before_anything_leaves() {
    let (mock, gw, admin) = setup().await;
    guard(&gw, &admin, json!({"name": "pii", "content_filter_builtins": [
        {"slug": "email", "action": "redact"},
        {"slug": "phone", "action": "redact", "label": "[PHONE]"},
        {"slug": "ip-address", "action": "redact"},
        {"slug": "secrets", "action": "redact"},
        {"slug": "ssn", "action": "flag"},
        {"slug": "credit-card", "action": "block"},
    ], "content_filters": [{"pattern": "Project [A-Z]{4}", "action": "redact", "label": "[CODENAME]"}]})).await;

    let secret = format!("sk-or-v1-{}", "0f".repeat(32));
    let (status, body) = chat(&gw, &format!(
        "mail bob@corp.example, call +1 415-555-0132, host 10.1.2.3, key {secret}, ssn 123-45-6789, Project ORCA"
    )).await;
    assert_eq!(status, 200, "{body}");
    let sent = sent_text(&mock);
    for leaked in [
        "bob@corp.example",
        "415-555-0132",
        "10.1.2.3",
        secret.as_str(),
        "ORCA",
    ] {
        assert!(
            !sent.contains(leaked),
            "{leaked} reached the provider: {sent}"
        );
    }
    for label in [
        "[REDACTED:email]",
        "[PHONE]",
        "[REDACTED:ip-address]",
        "[REDACTED:secrets]",
        "[CODENAME]",
    ] {
        assert!(sent.contains(label), "{label} missing: {sent}");
    }
    assert!(sent.contains("123-45-6789"), "flag lets the text through");

    // Block: a Luhn-valid card number never reaches the provider.
    let before = mock.requests().len();
    let (status, body) = chat(&gw, "charge 4111 1111 1111 1111 please").await;
    assert_eq!(status, 403, "{body}");
    let message = body["error"]["message"].as_str().expect("m");
    assert!(
        message.contains("pii") && message.contains("credit-card"),
        "{message}"
    );
    assert_eq!(mock.requests().len(), before);

    // The Anthropic-compatible endpoint is screened the same way.
    let (status, body) = call(&gw, &gw.key.clone(), "POST", "/api/v1/messages", json!({
        "model": "test/model", "max_tokens": 20, "system": "escalate to ops@corp.example",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "my IP is 192.168.0.7"}]}],
    })).await;
    assert_eq!(status, 200, "{body}");
    let sent = sent_text(&mock);
    assert!(
        !sent.contains("ops@corp.example") && !sent.contains("192.168.0.7"),
        "{sent}"
    );
    let (status, body) = call(
        &gw,
        &gw.key.clone(),
        "POST",
        "/api/v1/messages",
        json!({
            "model": "test/model", "max_tokens": 20,
            "messages": [{"role": "user", "content": "card 5500 0000 0000 0004"}],
        }),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["type"], "permission_error");

    // The audit record names the guardrail and what it found, never the text.
    gw.settled().await;
    let records = gw.state.store.audit_page(0, 100).await.expect("audit");
    let first: Value = serde_json::from_str(&records[0].body).expect("json");
    let findings = &first["guardrails"][0]["findings"];
    assert_eq!(first["guardrails"][0]["name"], "pii");
    assert!(
        findings
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f["rule"] == "ssn" && f["action"] == "flag"),
        "{first}"
    );
    for r in &records {
        assert!(
            // The card number in any of its spellings (a bare "4111" may be part of an id).
            !r.body.contains("bob@corp.example")
                && !r.body.contains("4111 1111")
                && !r.body.contains("41111111"),
            "{}",
            r.body
        );
    }
}

#[tokio::test]
async fn model_provider_and_budget_rules_are_403s_naming_the_guardrail() {
    let (mock, gw, admin) = setup().await;
    let id = guard(
        &gw,
        &admin,
        json!({"name": "claude-only", "allowed_models": ["anthropic/*"]}),
    )
    .await;
    let (status, body) = chat(&gw, "hi").await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .expect("m")
        .contains("claude-only"));
    assert_eq!(
        body["error"]["availability"]["excluded_by"],
        json!(["guardrail:model"])
    );

    call(
        &gw,
        &admin,
        "PATCH",
        &format!("/api/v1/guardrails/{id}"),
        json!({"allowed_models": ["test/*"], "ignored_providers": ["alpha"]}),
    )
    .await;
    let (status, body) = chat(&gw, "hi").await;
    assert_eq!(status, 403);
    assert_eq!(
        body["error"]["availability"]["excluded_by"],
        json!(["guardrail:provider"])
    );

    call(
        &gw,
        &admin,
        "PATCH",
        &format!("/api/v1/guardrails/{id}"),
        json!({"ignored_providers": null, "limit_usd": 0.00003, "reset_interval": "daily"}),
    )
    .await;
    // 0.000018 per request: the second one spends past the budget, the third is refused.
    assert_eq!(chat(&gw, "hi").await.0, 200);
    gw.settled().await;
    assert_eq!(chat(&gw, "hi").await.0, 200);
    gw.settled().await;
    let (status, body) = chat(&gw, "hi").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("m")
            .contains("budget"),
        "{body}"
    );
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn the_guardrail_id_reaches_the_403_and_the_audit_record() {
    let (_mock, gw, admin) = setup().await;
    let id = guard(
        &gw,
        &admin,
        json!({"name": "no-cards", "content_filter_builtins": [{"slug": "credit-card", "action": "block"}, {"slug": "email", "action": "redact"}]}),
    )
    .await;
    assert!(!id.is_empty());
    let (status, body) = chat(&gw, "card 4111 1111 1111 1111").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"]["metadata"]["guardrail_id"],
        id.as_str(),
        "{body}"
    );

    let (status, body) = chat(&gw, "mail ops@corp.example").await;
    assert_eq!(status, 200, "{body}");
    gw.settled().await;
    let rows = gw.state.store.audit_page(0, 1000).await.expect("page");
    let guardrails: Vec<Value> = rows
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).expect("json"))
        .filter_map(|r| r["guardrails"].as_array().cloned())
        .flatten()
        .collect();
    assert!(
        !guardrails.is_empty(),
        "no audit record names the guardrail"
    );
    for g in guardrails {
        assert_eq!(g["id"], id.as_str(), "{g}");
    }
}

#[tokio::test]
async fn bodies_are_typed_and_errors_name_the_path() {
    let (_mock, gw, admin) = setup().await;
    let id = guard(&gw, &admin, json!({"name": "typed"})).await;
    let cases = [
        (
            "POST",
            "/api/v1/guardrails".to_owned(),
            json!({"name": "x", "limit_usd": "sk-or-v1-oops"}),
            "`limit_usd`",
        ),
        (
            "POST",
            "/api/v1/guardrails".to_owned(),
            json!({"name": "x", "allowed_models": "a/b"}),
            "`allowed_models`",
        ),
        (
            "PATCH",
            format!("/api/v1/guardrails/{id}"),
            json!({"colour": "red"}),
            "colour",
        ),
        (
            "PATCH",
            format!("/api/v1/guardrails/{id}"),
            json!({"content_filters": [{"pattern": "x", "action": 1}]}),
            "`content_filters[0].action`",
        ),
        (
            "POST",
            format!("/api/v1/guardrails/{id}/assignments/keys"),
            json!({"key_hashes": [7]}),
            "`key_hashes[0]`",
        ),
        (
            "POST",
            format!("/api/v1/guardrails/{id}/assignments/keys"),
            json!({"key_hashes": ["abc"]}),
            "key_hashes[0]",
        ),
        (
            "POST",
            format!("/api/v1/guardrails/{id}/assignments/keys"),
            json!({"key_hashes": [], "extra": 1}),
            "extra",
        ),
        (
            "POST",
            format!("/api/v1/guardrails/{id}/assignments/keys/remove"),
            json!({}),
            "key_hashes",
        ),
    ];
    for (method, path, body, needle) in cases {
        let (status, err) = call(&gw, &admin, method, &path, body.clone()).await;
        assert_eq!(status, 400, "{method} {path} {body}: {err}");
        let message = err["error"]["message"].as_str().expect("m");
        assert!(message.contains(needle), "{body}: {message}");
        assert!(
            !message.contains("sk-or-v1"),
            "the value is not repeated: {message}"
        );
    }
    // A standard key is refused before its body is read.
    let (status, _) = call(
        &gw,
        &gw.key.clone(),
        "POST",
        "/api/v1/guardrails",
        json!({"bad": 1}),
    )
    .await;
    assert_eq!(status, 403);
}
