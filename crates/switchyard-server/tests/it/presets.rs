//! Presets: the API (saved from chat, Messages and Responses bodies, versions kept), and their
//! application to requests of each format (checked at the mock upstream): `@preset/slug`,
//! `model@preset/slug` and `preset`, request fields winning.

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
    let mut request = gw
        .http
        .request(method.parse().expect("method"), gw.url(path))
        .bearer_auth(key);
    if method != "GET" {
        request = request.json(&body);
    }
    let r = request.send().await.expect("send");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn save(gw: &TestGateway, admin: &str, slug: &str, body: Value) -> Value {
    let (status, saved) = call(
        gw,
        admin,
        "POST",
        &format!("/api/v1/presets/{slug}/chat/completions"),
        body,
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    saved["data"].clone()
}

fn last_sent(mock: &MockUpstream) -> Value {
    mock.requests()
        .last()
        .map(|r| r.body.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_api_saves_versions_and_reads_them() {
    let (_mock, gw, admin) = setup().await;
    let first = save(
        &gw,
        &admin,
        "helper",
        json!({
            "model": "test/model",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
            "temperature": 0.7,
            "stream": true,
            "user": "someone"
        }),
    )
    .await;
    assert_eq!(first["slug"], "helper");
    assert_eq!(first["name"], "helper");
    assert_eq!(first["status"], "active");
    let v1 = &first["designated_version"];
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["system_prompt"], "Be brief.");
    assert_eq!(
        v1["config"],
        json!({"model": "test/model", "temperature": 0.7})
    );
    assert_eq!(v1["preset_id"], first["id"]);
    assert_eq!(first["designated_version_id"], v1["id"]);
    for field in [
        "created_at",
        "updated_at",
        "creator_user_id",
        "workspace_id",
        "description",
        "status_updated_at",
    ] {
        assert!(first.get(field).is_some(), "{field} missing: {first}");
    }

    // A second save from a Messages body: a new version, designated at once.
    let (status, second) = call(
        &gw,
        &admin,
        "POST",
        "/api/v1/presets/helper/messages",
        json!({"model": "test/model", "max_tokens": 64, "system": "Answer in French.",
               "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    let v2 = &second["data"]["designated_version"];
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["system_prompt"], "Answer in French.");
    assert_eq!(v2["config"]["max_tokens"], 64);
    assert_eq!(second["data"]["id"], first["id"]);

    // And from a Responses body.
    let (status, third) = call(
        &gw,
        &admin,
        "POST",
        "/api/v1/presets/other/responses",
        json!({"model": "test/model", "instructions": "Be kind.", "input": "hi"}),
    )
    .await;
    assert_eq!(status, 200, "{third}");
    assert_eq!(
        third["data"]["designated_version"]["system_prompt"],
        "Be kind."
    );

    let (status, list) = call(&gw, &admin, "GET", "/api/v1/presets", Value::Null).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["total_count"], 2);
    let (status, page) = call(
        &gw,
        &admin,
        "GET",
        "/api/v1/presets?limit=1&offset=1",
        Value::Null,
    )
    .await;
    assert_eq!(
        (status, page["data"].as_array().map(Vec::len)),
        (200, Some(1)),
        "{page}"
    );

    let (status, got) = call(&gw, &admin, "GET", "/api/v1/presets/helper", Value::Null).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["data"]["designated_version"]["version"], 2);

    let (status, versions) = call(
        &gw,
        &admin,
        "GET",
        "/api/v1/presets/helper/versions",
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{versions}");
    assert_eq!(versions["total_count"], 2);
    assert_eq!(versions["data"][0]["version"], 1);
    assert_eq!(versions["data"][0]["system_prompt"], "Be brief.");
    assert_eq!(versions["data"][1]["version"], 2);

    let (status, one) = call(
        &gw,
        &admin,
        "GET",
        "/api/v1/presets/helper/versions/1",
        Value::Null,
    )
    .await;
    assert_eq!(
        (status, one["data"]["config"]["temperature"].as_f64()),
        (200, Some(0.7)),
        "{one}"
    );
}

#[tokio::test]
async fn the_api_refuses_clearly() {
    let (_mock, gw, admin) = setup().await;
    save(
        &gw,
        &admin,
        "p",
        json!({"messages": [{"role": "user", "content": "hi"}], "temperature": 1.0}),
    )
    .await;
    let cases = [
        ("GET", "/api/v1/presets/missing", 404, "not found"),
        ("GET", "/api/v1/presets/missing/versions", 404, "not found"),
        ("GET", "/api/v1/presets/p/versions/9", 404, "no version 9"),
        ("GET", "/api/v1/presets/p/versions/zero", 400, "version"),
        ("GET", "/api/v1/presets/Bad%20Slug", 400, "slug"),
        ("GET", "/api/v1/presets?limit=101", 400, "limit"),
        ("GET", "/api/v1/presets?offset=-1", 400, "offset"),
    ];
    for (method, path, expected, words) in cases {
        let (status, body) = call(&gw, &admin, method, path, Value::Null).await;
        assert_eq!(status, expected, "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{path}: {body}");
    }
    // A body that is not a valid request: 400 naming the field.
    let (status, body) = call(
        &gw,
        &admin,
        "POST",
        "/api/v1/presets/p/chat/completions",
        json!({"messages": [{"role": "user", "content": "hi"}], "temperature": 9}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("temperature"),
        "{body}"
    );
    // Nothing was saved by it.
    let (_, versions) = call(
        &gw,
        &admin,
        "GET",
        "/api/v1/presets/p/versions",
        Value::Null,
    )
    .await;
    assert_eq!(versions["total_count"], 1);
    // A standard key may not manage presets.
    let (status, body) = call(&gw, &gw.key.clone(), "GET", "/api/v1/presets", Value::Null).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = call(
        &gw,
        &gw.key.clone(),
        "POST",
        "/api/v1/presets/p/chat/completions",
        json!({"messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
}

#[tokio::test]
async fn requests_take_the_preset_under_their_own_fields() {
    let (mock, gw, admin) = setup().await;
    save(
        &gw,
        &admin,
        "brief",
        json!({
            "model": "test/model",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "x"}],
            "temperature": 0.2,
            "seed": 7,
            "provider": {"only": ["alpha"]}
        }),
    )
    .await;
    let key = gw.key.clone();

    // `@preset/slug`: the preset's model, system prompt and parameters.
    let (status, body) = call(
        &gw,
        &key,
        "POST",
        "/api/v1/chat/completions",
        json!({"model": "@preset/brief", "messages": [{"role": "user", "content": "hello"}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model"], "test/model");
    // The generation record names the preset.
    gw.settled().await;
    let id = body["id"].as_str().expect("id").to_owned();
    let (status, generation) = call(
        &gw,
        &key,
        "GET",
        &format!("/api/v1/generation?id={id}"),
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{generation}");
    let (_, preset) = call(&gw, &admin, "GET", "/api/v1/presets/brief", Value::Null).await;
    assert_eq!(
        generation["data"]["preset_id"], preset["data"]["id"],
        "{generation}"
    );
    assert_eq!(generation["data"]["router"], Value::Null, "{generation}");
    let sent = last_sent(&mock);
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "Be brief."}),
        "{sent}"
    );
    assert_eq!(sent["messages"][1]["content"], "hello", "{sent}");
    assert_eq!(
        (sent["temperature"].as_f64(), sent["seed"].as_i64()),
        (Some(0.2), Some(7)),
        "{sent}"
    );
    assert!(
        sent.get("provider").is_none() && sent.get("preset").is_none(),
        "{sent}"
    );

    // `preset` with the request's own temperature: the request wins.
    let (status, body) = call(
        &gw,
        &key,
        "POST",
        "/api/v1/chat/completions",
        json!({"preset": "brief", "model": "test/model", "temperature": 1.5,
               "messages": [{"role": "user", "content": "hello"}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let sent = last_sent(&mock);
    assert_eq!(
        (sent["temperature"].as_f64(), sent["seed"].as_i64()),
        (Some(1.5), Some(7)),
        "{sent}"
    );

    // `model@preset/slug`, streamed.
    let r = gw.post("/api/v1/chat/completions",
        json!({"model": "test/model@preset/brief", "stream": true, "messages": [{"role": "user", "content": "hello"}]}))
        .send().await.expect("send");
    assert_eq!(r.status().as_u16(), 200);
    let _ = r.text().await.expect("body");
    assert_eq!(last_sent(&mock)["messages"][0]["content"], "Be brief.");

    // The Messages format.
    let r = gw.post("/api/v1/messages",
        json!({"model": "@preset/brief", "max_tokens": 50, "messages": [{"role": "user", "content": "hello"}]}))
        .send().await.expect("send");
    assert_eq!(r.status().as_u16(), 200);
    let sent = last_sent(&mock);
    assert_eq!(sent["messages"][0]["content"], "Be brief.", "{sent}");
    assert_eq!(sent["seed"].as_i64(), Some(7), "{sent}");

    // The Responses format, naming it in `preset`.
    let r = gw
        .post(
            "/api/v1/responses",
            json!({"preset": "brief", "input": "hello"}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200, "{:?}", r.text().await);
    let sent = last_sent(&mock);
    assert_eq!(sent["messages"][0]["content"], "Be brief.", "{sent}");
    assert_eq!(sent["temperature"].as_f64(), Some(0.2), "{sent}");
}

#[tokio::test]
async fn a_new_version_applies_at_once_and_bad_references_are_refused() {
    let (mock, gw, admin) = setup().await;
    save(
        &gw,
        &admin,
        "p",
        json!({"model": "test/model", "temperature": 0.1,
        "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    let key = gw.key.clone();
    let ask = json!({"model": "@preset/p", "messages": [{"role": "user", "content": "hello"}]});
    let (status, body) = call(&gw, &key, "POST", "/api/v1/chat/completions", ask.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(last_sent(&mock)["temperature"].as_f64(), Some(0.1));
    save(
        &gw,
        &admin,
        "p",
        json!({"model": "test/model", "temperature": 0.9,
        "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    let (status, body) = call(&gw, &key, "POST", "/api/v1/chat/completions", ask).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(last_sent(&mock)["temperature"].as_f64(), Some(0.9));

    let sent_before = mock.requests().len();
    let cases = [
        (
            json!({"model": "@preset/nope", "messages": [{"role": "user", "content": "hi"}]}),
            "Preset nope not found",
        ),
        (
            json!({"model": "@preset/p", "preset": "q", "messages": [{"role": "user", "content": "hi"}]}),
            "two different presets",
        ),
        (
            json!({"preset": 5, "messages": [{"role": "user", "content": "hi"}]}),
            "preset: must be a string",
        ),
        (
            json!({"model": "@preset/Not Valid", "messages": [{"role": "user", "content": "hi"}]}),
            "model: a preset slug",
        ),
    ];
    for (body, words) in cases {
        let (status, answer) =
            call(&gw, &key, "POST", "/api/v1/chat/completions", body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{body}: {answer}");
    }
    // Refused in the Messages envelope too.
    let r = gw.post("/api/v1/messages",
        json!({"model": "@preset/nope", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}))
        .send().await.expect("send");
    assert_eq!(r.status().as_u16(), 400);
    let answer: Value = r.json().await.expect("json");
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(
        mock.requests().len(),
        sent_before,
        "nothing refused reached the upstream"
    );
}
