//! End users through the real server: identification and `require_user`, spending limits per
//! end user, rate limits (requests and tokens per minute), blocks, moderation with each action,
//! strikes and automatic blocks (on the injectable clock), failing moderation providers, and the
//! abuse report checked against the audit chain.

use serde_json::{json, Value};
use switchyard_core::keys::hash_key;

use crate::harness::{catalog, TestGateway, ACCOUNT, AUDIT_KEY};
use crate::mock::{completion, MockUpstream, Reply};

/// One provider, `alpha`, whose answers use 10 prompt and 5 completion tokens.
async fn gateway(prompt: &str, completion_price: &str) -> (MockUpstream, TestGateway, String) {
    let mock = MockUpstream::start(vec![Reply::Json(200, completion("ok", 10, 5))]).await;
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), prompt, completion_price)]))
        .build()
        .await;
    let admin = gw.admin_key().await;
    (mock, gw, admin)
}

/// A gateway with a moderation provider (`moderator`, a mock answering `replies` in turn).
async fn moderated(
    replies: Vec<Reply>,
    settings: Value,
) -> (MockUpstream, MockUpstream, TestGateway, String) {
    let mock = MockUpstream::start(vec![Reply::Json(200, completion("the answer", 10, 5))]).await;
    let moderator = MockUpstream::start(replies).await;
    let text = format!(
        "[[providers]]\nslug = \"moderator\"\nname = \"Moderator\"\nkind = \"openai\"\nbase_url = \"{}\"\napi_key_env = \"MODERATOR_KEY\"\ndata_policy = {{ training = false, retains_prompts = false, zdr = true }}\n\n{}",
        moderator.url(),
        catalog(&[("alpha", &mock.url(), "0.000001", "0.000002")])
    );
    let gw = TestGateway::builder(text).build().await;
    let mut moderation = json!({"provider": "moderator", "model": "omni-moderation-latest"});
    if let (Some(m), Some(extra)) = (moderation.as_object_mut(), settings.as_object()) {
        m.extend(extra.clone());
    }
    gw.state
        .store
        .set_account_settings(ACCOUNT, &json!({"moderation": moderation}))
        .await
        .expect("settings");
    gw.state.settings.invalidate(ACCOUNT).await;
    let admin = gw.admin_key().await;
    (mock, moderator, gw, admin)
}

/// An OpenAI moderation answer marking `marked` (of four categories).
fn moderation(marked: &[&str]) -> Reply {
    let all = ["harassment", "hate", "sexual/minors", "violence"];
    let categories: serde_json::Map<String, Value> = all
        .iter()
        .map(|c| ((*c).to_owned(), json!(marked.contains(c))))
        .collect();
    let scores: serde_json::Map<String, Value> = all
        .iter()
        .map(|c| {
            (
                (*c).to_owned(),
                json!(if marked.contains(c) { 0.93 } else { 0.01 }),
            )
        })
        .collect();
    Reply::Json(
        200,
        json!({"id": "modr-1", "model": "omni-moderation-latest", "results": [
            {"flagged": !marked.is_empty(), "categories": categories, "category_scores": scores}
        ]}),
    )
}

/// A chat request as `user` (none: no end user), its status, `Retry-After` and body.
async fn chat_as(gw: &TestGateway, user: Option<&str>, text: &str) -> (u16, Option<u64>, Value) {
    let mut body = json!({"model": "test/model", "max_tokens": 10, "messages": [{"role": "user", "content": text}]});
    if let Some(u) = user {
        body["user"] = json!(u);
    }
    let r = gw
        .post("/api/v1/chat/completions", body)
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (status, retry, r.json().await.unwrap_or(Value::Null))
}

async fn set_policy(gw: &TestGateway, admin: &str, policy: Value) {
    let path = format!("/api/v1/keys/{}/end-users", hash_key(&gw.key));
    let (status, body) = gw.call(admin, "PUT", &path, policy).await;
    assert_eq!(status, 200, "{body}");
}

async fn record_of(gw: &TestGateway, generation_id: &str) -> Value {
    gw.audit_records()
        .await
        .into_iter()
        .find(|r| r["generation_id"] == generation_id)
        .expect("the request's audit record")
}

fn generation_id(body: &Value) -> String {
    body["id"].as_str().map(str::to_owned).unwrap_or_default()
}

#[tokio::test]
async fn end_users_are_recorded_on_first_sight_and_a_key_may_require_one() {
    let (mock, gw, admin) = gateway("0.000001", "0.000002").await;
    // The user field, the header, and Messages' metadata.user_id all name the end user.
    assert_eq!(chat_as(&gw, Some("alice"), "hi").await.0, 200);
    let r = gw
        .post(
            "/api/v1/chat/completions",
            json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .header("X-Switchyard-User", "bob")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let r = gw
        .post("/api/v1/messages", json!({"model": "test/model", "max_tokens": 10, "metadata": {"user_id": "carol"}, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    // Two different names are refused.
    let r = gw
        .post("/api/v1/chat/completions", json!({"model": "test/model", "user": "alice", "messages": [{"role": "user", "content": "hi"}]}))
        .header("X-Switchyard-User", "bob")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    gw.settled().await;
    let (status, list) = gw
        .call(&admin, "GET", "/api/v1/end-users", Value::Null)
        .await;
    assert_eq!(status, 200, "{list}");
    let mut ids: Vec<&str> = list["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|u| u["id"].as_str())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["alice", "bob", "carol"]);
    let (status, alice) = gw
        .call(&admin, "GET", "/api/v1/end-users/alice", Value::Null)
        .await;
    assert_eq!(status, 200);
    assert_eq!(alice["data"]["requests"], 1, "{alice}");
    assert!(
        alice["data"]["usage"].as_f64().is_some_and(|u| u > 0.0),
        "{alice}"
    );
    assert_eq!(alice["data"]["blocked"], false);
    // A standard key may not read end users.
    let (status, _) = gw
        .call(&gw.key.clone(), "GET", "/api/v1/end-users", Value::Null)
        .await;
    assert_eq!(status, 403);

    set_policy(&gw, &admin, json!({"require_user": true})).await;
    let sent = mock.requests().len();
    let (status, _, body) = chat_as(&gw, None, "hi").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("requires an end user")));
    assert_eq!(
        mock.requests().len(),
        sent,
        "nothing left for a refused request"
    );
    assert_eq!(chat_as(&gw, Some("alice"), "hi").await.0, 200);
}

#[tokio::test]
async fn a_user_over_their_spend_limit_gets_402_while_another_is_served() {
    // Each answer costs 10 * 0.0001 + 5 * 0.0001 = $0.0015.
    let (_mock, gw, admin) = gateway("0.0001", "0.0001").await;
    set_policy(
        &gw,
        &admin,
        json!({"user_limit": 0.01, "user_limit_reset": "daily"}),
    )
    .await;
    let mut served = 0;
    let refused = loop {
        let (status, _, body) = chat_as(&gw, Some("spender"), "hi").await;
        match status {
            200 => served += 1,
            402 => break body,
            other => panic!("{other}: {body}"),
        }
        assert!(served < 50, "the limit never refused");
    };
    assert!(served >= 1);
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("end user")),
        "{refused}"
    );
    // Another end user of the same key is served.
    assert_eq!(chat_as(&gw, Some("frugal"), "hi").await.0, 200);
    // The spender's spend is within their limit, and the refusal is audited.
    gw.settled().await;
    let (_, spender) = gw
        .call(&admin, "GET", "/api/v1/end-users/spender", Value::Null)
        .await;
    assert!(
        spender["data"]["usage_daily"]
            .as_f64()
            .is_some_and(|u| u <= 0.01),
        "{spender}"
    );
    let refusals: Vec<Value> = gw
        .audit_records()
        .await
        .into_iter()
        .filter(|r| r["refusal"] == "end_user_spend_limit")
        .collect();
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0]["status"], 402);
    // The end user's own limit overrides the key's default.
    let (status, body) = gw
        .call(
            &admin,
            "PATCH",
            "/api/v1/end-users/spender",
            json!({"limit": 1}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(chat_as(&gw, Some("spender"), "hi").await.0, 200);
}

#[tokio::test]
async fn sixty_requests_against_ten_per_minute_give_exactly_ten() {
    let (_mock, gw, admin) = gateway("0.000001", "0.000002").await;
    set_policy(&gw, &admin, json!({"requests_per_minute": 10})).await;
    let results = futures::future::join_all(
        (0..60).map(|i| chat_as(&gw, Some(["a", "b", "c"][i % 3]), "hi")),
    )
    .await;
    let ok = results.iter().filter(|r| r.0 == 200).count();
    let limited: Vec<&(u16, Option<u64>, Value)> = results.iter().filter(|r| r.0 == 429).collect();
    assert_eq!((ok, limited.len()), (10, 50));
    for (_, retry, body) in &limited {
        let retry = retry.expect("Retry-After");
        assert!((1..=60).contains(&retry), "{retry}");
        assert_eq!(body["error"]["code"], 429);
        assert_eq!(
            body["error"]["metadata"]["limit"], "key_requests_per_minute",
            "{body}"
        );
    }
    // A minute later the window has moved on.
    gw.advance_clock(60_000);
    assert_eq!(chat_as(&gw, Some("a"), "hi").await.0, 200);
}

#[tokio::test]
async fn an_end_users_rate_limit_leaves_the_others_alone() {
    let (_mock, gw, admin) = gateway("0.000001", "0.000002").await;
    set_policy(&gw, &admin, json!({"user_requests_per_minute": 2})).await;
    let statuses: Vec<u16> =
        futures::future::join_all((0..5).map(|_| chat_as(&gw, Some("eager"), "hi")))
            .await
            .into_iter()
            .map(|r| r.0)
            .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 2);
    let (status, _, body) = chat_as(&gw, Some("eager"), "hi").await;
    assert_eq!(status, 429);
    assert_eq!(
        body["error"]["metadata"]["limit"],
        "end_user_requests_per_minute"
    );
    assert_eq!(chat_as(&gw, Some("calm"), "hi").await.0, 200);
    // The end user's own limit overrides the key's default.
    let (status, _) = gw
        .call(
            &admin,
            "PATCH",
            "/api/v1/end-users/eager",
            json!({"requests_per_minute": 5}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(chat_as(&gw, Some("eager"), "hi").await.0, 200);
}

#[tokio::test]
async fn tokens_per_minute_count_the_tokens_actually_used() {
    // Each answer uses 10 + 5 = 15 tokens; the limit is 20 per end user.
    let (_mock, gw, admin) = gateway("0.000001", "0.000002").await;
    set_policy(&gw, &admin, json!({"user_tokens_per_minute": 20})).await;
    assert_eq!(chat_as(&gw, Some("talker"), "hi").await.0, 200);
    // 15 used, under 20: admitted; it takes the window to 30.
    assert_eq!(chat_as(&gw, Some("talker"), "hi").await.0, 200);
    let (status, retry, body) = chat_as(&gw, Some("talker"), "hi").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(
        body["error"]["metadata"]["limit"],
        "end_user_tokens_per_minute"
    );
    assert!(retry.is_some_and(|r| (1..=60).contains(&r)));
    assert_eq!(chat_as(&gw, Some("quiet"), "hi").await.0, 200);
    gw.advance_clock(60_001);
    assert_eq!(chat_as(&gw, Some("talker"), "hi").await.0, 200);
}

#[tokio::test]
async fn a_block_takes_effect_on_the_next_request_and_is_audited() {
    let (mock, gw, admin) = gateway("0.000001", "0.000002").await;
    // The key and the end user are cached by a first request.
    assert_eq!(chat_as(&gw, Some("mallory"), "hi").await.0, 200);
    let (status, body) = gw
        .call(
            &admin,
            "POST",
            "/api/v1/end-users/mallory/block",
            json!({"reason": "ticket 4711: scraping"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["blocked"], true);
    let sent = mock.requests().len();
    let (status, _, refused) = chat_as(&gw, Some("mallory"), "hi").await;
    assert_eq!(status, 403, "{refused}");
    let text = refused.to_string();
    assert!(
        !text.contains("4711") && !text.contains("scraping"),
        "{text}"
    );
    assert_eq!(mock.requests().len(), sent);
    // Through the header too, and through another format.
    let r = gw
        .post(
            "/api/v1/embeddings",
            json!({"model": "test/model", "input": "x"}),
        )
        .header("X-Switchyard-User", "mallory")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 403);
    // Another end user is served.
    assert_eq!(chat_as(&gw, Some("trent"), "hi").await.0, 200);
    let refusals = gw
        .audit_records()
        .await
        .into_iter()
        .filter(|r| r["refusal"] == "end_user_blocked")
        .count();
    assert_eq!(refusals, 2, "each refusal is audited");
    // The operator's change is in the chain too.
    assert!(gw
        .audit_records()
        .await
        .iter()
        .any(|r| r["kind"] == "end_user_change" && r["action"] == "block"));
    // Unblocked: served again at once.
    let (status, _) = gw
        .call(
            &admin,
            "DELETE",
            "/api/v1/end-users/mallory/block",
            Value::Null,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(chat_as(&gw, Some("mallory"), "hi").await.0, 200);
    // A block with an expiry ends by itself.
    let until = switchyard_core::periods::to_iso8601(gw.state.now_ms() + 3_600_000);
    let (status, _) = gw
        .call(
            &admin,
            "POST",
            "/api/v1/end-users/mallory/block",
            json!({"reason": "cool down", "expires_at": until}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(chat_as(&gw, Some("mallory"), "hi").await.0, 403);
    let (_, blocked) = gw
        .call(&admin, "GET", "/api/v1/end-users?blocked=true", Value::Null)
        .await;
    assert_eq!(blocked["data"].as_array().map(Vec::len), Some(1));
    gw.advance_clock(3_600_000);
    assert_eq!(chat_as(&gw, Some("mallory"), "hi").await.0, 200);
    // Bad bodies name the field.
    let (status, body) = gw
        .call(
            &admin,
            "POST",
            "/api/v1/end-users/mallory/block",
            json!({"reson": "x"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn a_blocking_category_refuses_before_anything_leaves() {
    let (mock, moderator, gw, _admin) = moderated(
        vec![moderation(&["violence"])],
        json!({"actions": {"harassment": "flag"}}),
    )
    .await;
    let (status, _, body) = chat_as(&gw, Some("u1"), "something violent").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("violence")),
        "{body}"
    );
    assert!(mock.requests().is_empty(), "nothing reached the provider");
    let sent = &moderator.requests()[0];
    assert!(sent.path.ends_with("/moderations"), "{}", sent.path);
    assert_eq!(sent.body["model"], "omni-moderation-latest");
    assert_eq!(sent.body["input"], json!(["something violent"]));
    assert_eq!(sent.headers["authorization"], "Bearer secret-MODERATOR_KEY");
    let records = gw.audit_records().await;
    let record = records
        .iter()
        .find(|r| r["kind"] == "inference")
        .expect("record");
    assert_eq!(record["moderation"][0]["action"], "block");
    assert_eq!(record["moderation"][0]["categories"], json!(["violence"]));
    assert_eq!(record["moderation"][0]["scores"]["violence"], 0.93);
    assert!(
        !record.to_string().contains("something violent"),
        "no text in the record"
    );
}

#[tokio::test]
async fn a_flagging_category_is_audited_and_served() {
    let (mock, _moderator, gw, _admin) = moderated(
        vec![moderation(&["harassment"]), moderation(&[])],
        json!({"actions": {"harassment": "flag"}}),
    )
    .await;
    let (status, _, body) = chat_as(&gw, Some("u2"), "you are silly").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(mock.requests().len(), 1);
    let record = record_of(&gw, &generation_id(&body)).await;
    let stages: Vec<(&str, &str)> = record["moderation"]
        .as_array()
        .expect("moderation")
        .iter()
        .map(|m| {
            (
                m["stage"].as_str().unwrap_or(""),
                m["action"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(stages, [("request", "flag"), ("completion", "none")]);
}

#[tokio::test]
async fn a_flagged_completion_is_withheld_and_billed() {
    let (_mock, moderator, gw, _admin) =
        moderated(vec![moderation(&[]), moderation(&["hate"])], json!({})).await;
    let (status, _, body) = chat_as(&gw, Some("u3"), "hello").await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("answer") && m.contains("hate")));
    assert!(
        !body.to_string().contains("the answer"),
        "the completion is not sent"
    );
    assert_eq!(moderator.requests()[1].body["input"], json!(["the answer"]));
    gw.settled().await;
    let u = gw
        .state
        .store
        .end_user(ACCOUNT, "u3", gw.state.now_ms())
        .await
        .expect("read")
        .expect("user");
    assert_eq!(u.requests, 1);
    assert!(
        u.usage.total.picos() > 0,
        "what the provider produced is billed"
    );
}

#[tokio::test]
async fn strikes_block_an_end_user_automatically_until_the_block_expires() {
    let (_mock, _moderator, gw, admin) = moderated(
        vec![
            moderation(&["sexual/minors"]),
            moderation(&["sexual/minors"]),
            moderation(&[]),
        ],
        json!({
            "actions": {"sexual/minors": "block_and_strike"},
            "strikes": {"count": 2, "window_secs": 600, "block_secs": 3600},
        }),
    )
    .await;
    let (first, _, _) = chat_as(&gw, Some("offender"), "bad").await;
    let (second, _, _) = chat_as(&gw, Some("offender"), "bad again").await;
    assert_eq!((first, second), (403, 403));
    // The third request is clean, but the end user is blocked now.
    let (status, _, body) = chat_as(&gw, Some("offender"), "innocent").await;
    assert_eq!(status, 403, "{body}");
    assert!(!body.to_string().contains("strikes"), "{body}");
    let (_, u) = gw
        .call(&admin, "GET", "/api/v1/end-users/offender", Value::Null)
        .await;
    assert_eq!(u["data"]["blocked"], true, "{u}");
    assert_eq!(u["data"]["block"]["source"], "strikes");
    assert_eq!(u["data"]["strikes"]["last_30_days"], 2);
    let recs = gw.audit_records().await;
    let struck: Vec<&Value> = recs
        .iter()
        .filter(|r| r["moderation"][0]["action"] == "block_and_strike")
        .collect();
    assert_eq!(struck.len(), 2);
    assert_eq!(struck[0]["moderation"][0]["strikes"], 1);
    assert_eq!(struck[1]["moderation"][0]["auto_blocked"], true);
    // The block expires on the gateway's clock.
    gw.advance_clock(3_600_000);
    assert_eq!(chat_as(&gw, Some("offender"), "innocent").await.0, 200);
}

#[tokio::test]
async fn a_failing_moderation_provider_fails_closed_or_open_as_configured() {
    for (mode, want) in [("closed", 503), ("open", 200)] {
        let (mock, _moderator, gw, _admin) = moderated(
            vec![Reply::Json(500, json!({"error": {"message": "down"}}))],
            json!({"on_failure": mode}),
        )
        .await;
        let (status, _, body) = chat_as(&gw, Some("u4"), "hello").await;
        assert_eq!(status, want, "{mode}: {body}");
        assert_eq!(mock.requests().len(), usize::from(want == 200), "{mode}");
        let recs = gw.audit_records().await;
        let record = recs
            .iter()
            .find(|r| r["kind"] == "inference")
            .expect("record");
        assert_eq!(record["moderation"][0]["failure"], mode, "{record}");
    }
}

#[tokio::test]
async fn the_abuse_report_lists_exactly_the_flagged_requests_and_verifies_against_the_chain() {
    let (_mock, _moderator, gw, admin) = moderated(
        vec![
            // suspect: flagged (request), served (completion clean)
            moderation(&["harassment"]),
            moderation(&[]),
            // suspect: clean, served
            moderation(&[]),
            moderation(&[]),
            // bystander: flagged, served
            moderation(&["harassment"]),
            moderation(&[]),
            // suspect: blocked
            moderation(&["violence"]),
        ],
        json!({"actions": {"harassment": "flag"}}),
    )
    .await;
    let mut flagged = Vec::new();
    let (_, _, b) = chat_as(&gw, Some("suspect"), "one").await;
    flagged.push(generation_id(&b));
    assert_eq!(chat_as(&gw, Some("suspect"), "two").await.0, 200);
    assert_eq!(chat_as(&gw, Some("bystander"), "three").await.0, 200);
    let r = gw
        .post("/api/v1/chat/completions", json!({"model": "test/model", "user": "suspect", "messages": [{"role": "user", "content": "four"}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 403);
    flagged.push(
        r.headers()["x-generation-id"]
            .to_str()
            .expect("id")
            .to_owned(),
    );
    // Blocked by the operator: that refusal is listed as well.
    let (status, _) = gw
        .call(
            &admin,
            "POST",
            "/api/v1/end-users/suspect/block",
            json!({"reason": "review"}),
        )
        .await;
    assert_eq!(status, 200);
    let r = gw
        .post("/api/v1/chat/completions", json!({"model": "test/model", "user": "suspect", "messages": [{"role": "user", "content": "five"}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 403);
    flagged.push(
        r.headers()["x-generation-id"]
            .to_str()
            .expect("id")
            .to_owned(),
    );

    let r = gw
        .http
        .get(gw.url("/api/v1/end-users/suspect/abuse-report"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert!(r.headers()["x-switchyard-audit-chain"]
        .to_str()
        .is_ok_and(|v| v.starts_with("verified ")));
    let text = r.text().await.expect("text");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let ids: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["generation_id"].as_str())
        .collect();
    assert_eq!(ids, flagged.iter().map(String::as_str).collect::<Vec<_>>());
    let actions: Vec<&str> = lines.iter().filter_map(|l| l["action"].as_str()).collect();
    assert_eq!(actions, ["flag", "block", "blocked"]);
    assert_eq!(lines[0]["categories"], json!(["harassment"]));
    assert_eq!(lines[0]["provider"], "alpha");
    assert_eq!(lines[0]["model"], "test/model");
    assert_eq!(lines[0]["key_hash"], hash_key(&gw.key));
    // Each line's hash is its record's in the chain.
    let stored = gw.state.store.audit_page(0, 10_000).await.expect("page");
    for l in &lines {
        let row = stored
            .iter()
            .find(|r| r.seq == l["seq"].as_i64().unwrap_or(-1))
            .expect("row");
        assert_eq!(Some(row.hash.as_str()), l["hash"].as_str());
    }
    // CSV: a header and one row each.
    let csv = gw
        .http
        .get(gw.url("/api/v1/end-users/suspect/abuse-report?format=csv"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    assert_eq!(csv.lines().count(), 1 + flagged.len(), "{csv}");
    assert!(csv.starts_with("time,generation_id,key_hash,model,provider,categories,action"));

    // A record edited in the store breaks the report.
    let seq = lines[0]["seq"].as_i64().expect("seq");
    gw.state
        .store
        .raw_execute(&format!(
            "UPDATE audit_log SET body = REPLACE(body, '\"flag\"', '\"none\"') WHERE seq = {seq}"
        ))
        .await
        .expect("tamper");
    let broken = switchyard_server::abuse::report(
        &gw.state.store,
        Some(AUDIT_KEY.as_bytes()),
        ACCOUNT,
        "suspect",
        0,
        i64::MAX,
    )
    .await;
    assert!(broken.is_err(), "tampering is detected");
    let (status, body) = gw
        .call(
            &admin,
            "GET",
            "/api/v1/end-users/suspect/abuse-report",
            Value::Null,
        )
        .await;
    assert_eq!(status, 409, "{body}");
}

#[tokio::test]
async fn activity_is_broken_down_by_end_user_on_request() {
    let (_mock, gw, admin) = gateway("0.000001", "0.000002").await;
    for user in ["ann", "ann", "ben"] {
        assert_eq!(chat_as(&gw, Some(user), "hi").await.0, 200);
    }
    gw.settled().await;
    let now = gw.state.now_ms();
    let day = 86_400_000;
    let of = |u: Option<&'static str>| {
        let store = gw.state.store.clone();
        async move {
            store
                .activity_of(ACCOUNT, now - day, now + day, None, u)
                .await
                .expect("activity")
                .iter()
                .map(|r| r.requests)
                .sum::<u64>()
        }
    };
    assert_eq!(
        (of(None).await, of(Some("ann")).await, of(Some("ben")).await),
        (3, 2, 1)
    );
    let (status, body) = gw
        .call(&admin, "GET", "/api/v1/activity?user=ann", Value::Null)
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = gw
        .call(&admin, "GET", "/api/v1/activity?usr=ann", Value::Null)
        .await;
    assert_eq!(status, 400);
    // The metrics of one end user, labelled with their id only when asked for.
    let text = gw
        .http
        .get(gw.url("/metrics?user=ann"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    assert!(
        text.contains("switchyard_end_user_requests_total{user=\"ann\"} 2"),
        "{text}"
    );
    assert!(!text.contains("ben"), "{text}");
    let text = gw
        .http
        .get(gw.url("/metrics"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    assert!(
        !text.contains("\"ann\""),
        "end-user ids are not labels of the process's series"
    );
}

#[tokio::test]
async fn end_user_limits_hold_with_database_holds() {
    let mock = MockUpstream::start(vec![Reply::Json(200, completion("ok", 10, 5))]).await;
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), "0.0001", "0.0001")]))
        .config(|c| c.store.holds = Some(switchyard_server::ledger::HoldMode::Database))
        .build()
        .await;
    let admin = gw.admin_key().await;
    set_policy(&gw, &admin, json!({"user_limit": 0.01})).await;
    let results =
        futures::future::join_all((0..30).map(|_| chat_as(&gw, Some("spender"), "hi"))).await;
    let served = results.iter().filter(|r| r.0 == 200).count();
    assert!(served >= 1 && results.iter().all(|r| r.0 == 200 || r.0 == 402));
    assert_eq!(chat_as(&gw, Some("other"), "hi").await.0, 200);
    gw.settled().await;
    let u = gw
        .state
        .store
        .end_user(ACCOUNT, "spender", gw.state.now_ms())
        .await
        .expect("read")
        .expect("user");
    assert!(u.usage.total <= switchyard_core::money::Money::parse_usd("0.01").expect("usd"));
    assert_eq!(u.held, switchyard_core::money::Money::ZERO);
    assert_eq!(u.requests, served as u64);
}

#[tokio::test]
async fn a_guardrails_moderation_replaces_the_accounts() {
    // The account flags violence; the key's guardrail blocks it.
    let (mock, _moderator, gw, admin) = moderated(
        vec![moderation(&["violence"])],
        json!({"actions": {"violence": "flag"}}),
    )
    .await;
    let (status, created) = gw
        .call(
            &admin,
            "POST",
            "/api/v1/guardrails",
            json!({"name": "strict", "moderation": {
                "provider": "moderator", "model": "omni-moderation-latest", "completions": false,
                "actions": {"violence": "block"}
            }}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["data"]["moderation"]["actions"]["violence"],
        "block"
    );
    let id = created["data"]["id"].as_str().expect("id").to_owned();
    // A guardrail without moderation shows none.
    let (_, plain) = gw
        .call(
            &admin,
            "POST",
            "/api/v1/guardrails",
            json!({"name": "plain"}),
        )
        .await;
    assert!(plain["data"].get("moderation").is_none(), "{plain}");
    // An unknown provider is refused.
    let (status, body) = gw
        .call(
            &admin,
            "PATCH",
            &format!("/api/v1/guardrails/{id}"),
            json!({"moderation": {"provider": "nowhere", "model": "m"}}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("nowhere")));
    // Before the assignment the account's flag applies; after it, the guardrail's block.
    assert_eq!(chat_as(&gw, Some("u5"), "violent").await.0, 200);
    let (status, _) = gw
        .call(
            &admin,
            "POST",
            &format!("/api/v1/guardrails/{id}/assignments/keys"),
            json!({"key_hashes": [hash_key(&gw.key)]}),
        )
        .await;
    assert_eq!(status, 200);
    let sent = mock.requests().len();
    let (status, _, body) = chat_as(&gw, Some("u5"), "violent").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(mock.requests().len(), sent);
}

#[tokio::test]
async fn a_streamed_answer_counts_against_its_end_users_spend_and_tokens() {
    let mock = MockUpstream::start(vec![Reply::Sse {
        events: crate::mock::stream_events(&["Hel", "lo"], (10, 5)),
        delay: std::time::Duration::ZERO,
        cut: false,
    }])
    .await;
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), "0.000001", "0.000002")]))
        .build()
        .await;
    let admin = gw.admin_key().await;
    set_policy(&gw, &admin, json!({"user_tokens_per_minute": 25})).await;
    for want in [200, 200] {
        let r = gw
            .post("/api/v1/chat/completions", json!({"model": "test/model", "stream": true, "user": "streamer", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), want);
        let text = r.text().await.expect("stream");
        assert!(text.contains("[DONE]"), "{text}");
    }
    // 30 tokens used within the minute, past 25: the next is refused.
    let (status, _, body) = chat_as(&gw, Some("streamer"), "hi").await;
    assert_eq!(status, 429, "{body}");
    gw.settled().await;
    let u = gw
        .state
        .store
        .end_user(ACCOUNT, "streamer", gw.state.now_ms())
        .await
        .expect("read")
        .expect("user");
    assert_eq!(u.requests, 2);
    // 2 * (10 * 0.000001 + 5 * 0.000002) = $0.00004
    assert_eq!(
        u.usage.total,
        switchyard_core::money::Money::parse_usd("0.00004").expect("usd")
    );
}
