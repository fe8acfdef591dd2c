//! The account APIs: key, keys (management), credits, generation, activity; their access rules,
//! the 402s, and limit windows that reset with the (injected) clock.

use std::sync::atomic::Ordering;

use serde_json::{json, Value};
use switchyard_core::money::Money;
use switchyard_server::api::{create_key, KeySpec};
use switchyard_server::state::Clock;
use switchyard_store::LimitReset;

use crate::harness::{catalog, TestGateway};
use crate::mock::{completion, MockUpstream, Reply};

const DAY: i64 = 86_400_000;

fn usd(text: &str) -> Money {
    Money::parse_usd(text).expect("usd")
}

async fn gateway(credits: &'static str) -> (MockUpstream, TestGateway) {
    // Each answer costs 10 × 0.000001 + 4 × 0.000002 = 0.000018.
    let mock = MockUpstream::start(vec![Reply::Json(200, completion("ok", 10, 4))]).await;
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), "0.000001", "0.000002")]))
        .credits(credits)
        .build()
        .await;
    (mock, gw)
}

fn set_clock(gw: &TestGateway, ms: i64) {
    match &gw.state.clock {
        Clock::Manual(t) => t.store(ms, Ordering::SeqCst),
        Clock::System => panic!("manual clock expected"),
    }
}

async fn get(gw: &TestGateway, key: &str, path: &str) -> (u16, Value) {
    let r = gw
        .http
        .get(gw.url(path))
        .bearer_auth(key)
        .send()
        .await
        .expect("send");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn send(gw: &TestGateway, key: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
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

async fn chat(gw: &TestGateway, key: &str) -> (u16, Value) {
    send(
        gw,
        key,
        "POST",
        "/api/v1/chat/completions",
        json!({"model": "test/model", "max_tokens": 4, "user": "u-7", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await
}

async fn management(gw: &TestGateway) -> String {
    gw.new_key(KeySpec {
        name: "admin".into(),
        management: true,
        ..KeySpec::default()
    })
    .await
}

#[tokio::test]
async fn current_key_reports_limits_and_usage() {
    let (_mock, gw) = gateway("10").await;
    let key = gw
        .new_key(KeySpec {
            name: "svc".into(),
            limit: Some(usd("1")),
            limit_reset: Some(LimitReset::Monthly),
            ..KeySpec::default()
        })
        .await;
    assert_eq!(chat(&gw, &key).await.0, 200);
    gw.settled().await;
    for path in ["/api/v1/key", "/api/v1/auth/key"] {
        let (status, body) = get(&gw, &key, path).await;
        assert_eq!(status, 200, "{body}");
        let d = &body["data"];
        assert_eq!(d["limit"], json!(1));
        assert_eq!(d["limit_reset"], "monthly");
        assert_eq!(d["usage"], json!(0.000018));
        assert_eq!(d["usage_daily"], json!(0.000018));
        assert_eq!(d["usage_monthly"], json!(0.000018));
        assert_eq!(d["limit_remaining"], json!(0.999982));
        assert_eq!(d["is_management_key"], false);
        assert_eq!(d["is_free_tier"], false);
        assert!(d["label"].as_str().expect("label").starts_with("sk-or-v1-"));
        assert!(
            !d["label"].as_str().expect("label").contains(&key[20..]),
            "labels mask the key"
        );
    }
}

#[tokio::test]
async fn management_api_creates_reads_updates_and_deletes_keys() {
    let (_mock, gw) = gateway("10").await;
    let admin = management(&gw).await;
    let (status, body) = send(
        &gw,
        &admin,
        "POST",
        "/api/v1/keys",
        json!({"name": "batch-jobs", "limit": 2.5, "limit_reset": "weekly", "include_byok_in_limit": true}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let created = body["key"].as_str().expect("key shown once").to_owned();
    let hash = body["data"]["hash"].as_str().expect("hash").to_owned();
    assert_eq!(body["data"]["limit"], json!(2.5));
    assert_eq!(body["data"]["limit_reset"], "weekly");
    assert_eq!(body["data"]["include_byok_in_limit"], true);

    let (status, list) = get(&gw, &admin, "/api/v1/keys").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|k| k["name"].as_str())
        .collect();
    assert!(names.contains(&"batch-jobs"), "{list}");
    assert!(
        !list.to_string().contains(&created),
        "the key itself is never listed"
    );

    let (status, one) = get(&gw, &admin, &format!("/api/v1/keys/{hash}")).await;
    assert_eq!(
        (status, one["data"]["name"].as_str()),
        (200, Some("batch-jobs"))
    );

    let (status, body) = send(
        &gw,
        &admin,
        "PATCH",
        &format!("/api/v1/keys/{hash}"),
        json!({"name": "nightly", "limit": null, "disabled": true, "expires_at": "2030-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["name"], "nightly");
    assert_eq!(body["data"]["limit"], Value::Null);
    assert_eq!(body["data"]["disabled"], true);
    assert_eq!(body["data"]["expires_at"], "2030-01-01T00:00:00Z");
    // The disabled key is refused.
    assert_eq!(chat(&gw, &created).await.0, 401);

    for (body, needle) in [
        (json!({"nmae": "x"}), "nmae"),
        (json!({"limit": -1}), "limit"),
        (json!({"limit_reset": "hourly"}), "hourly"),
        (json!({"disabled": "yes"}), "disabled"),
        (json!({"expires_at": "tomorrow"}), "expires_at"),
    ] {
        let (status, err) = send(
            &gw,
            &admin,
            "PATCH",
            &format!("/api/v1/keys/{hash}"),
            body.clone(),
        )
        .await;
        assert_eq!(status, 400, "{body}: {err}");
        assert!(
            err["error"]["message"]
                .as_str()
                .expect("m")
                .contains(needle),
            "{needle}: {err}"
        );
    }
    let (status, _) = send(&gw, &admin, "POST", "/api/v1/keys", json!({"limit": 1})).await;
    assert_eq!(status, 400, "a key needs a name");

    let (status, _) = send(
        &gw,
        &admin,
        "DELETE",
        &format!("/api/v1/keys/{hash}"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = get(&gw, &admin, &format!("/api/v1/keys/{hash}")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn access_rules_hold() {
    let (_mock, gw) = gateway("10").await;
    let admin = management(&gw).await;
    // Standard keys cannot manage; management keys cannot infer.
    for path in ["/api/v1/keys", "/api/v1/credits", "/api/v1/activity"] {
        assert_eq!(get(&gw, &gw.key, path).await.0, 403, "{path}");
    }
    let (status, body) = chat(&gw, &admin).await;
    assert_eq!(status, 403, "{body}");
    // Credits for the management key.
    let (status, credits) = get(&gw, &admin, "/api/v1/credits").await;
    assert_eq!(status, 200);
    assert_eq!(credits["data"]["total_credits"], json!(10));

    // A key cannot read another account's generation.
    let (status, body) = chat(&gw, &gw.key).await;
    assert_eq!(status, 200);
    let id = body["id"].as_str().expect("id").to_owned();
    gw.settled().await;
    let now = gw.state.now_ms();
    gw.state
        .store
        .ensure_account("other", "Other", now)
        .await
        .expect("account");
    let (other, _) = create_key(
        &gw.state.store,
        "other",
        &KeySpec {
            name: "o".into(),
            ..KeySpec::default()
        },
        now,
    )
    .await
    .expect("key");
    assert_eq!(
        get(&gw, &other, &format!("/api/v1/generation?id={id}"))
            .await
            .0,
        404
    );
    assert_eq!(
        get(&gw, &gw.key, &format!("/api/v1/generation?id={id}"))
            .await
            .0,
        200
    );

    // Missing, malformed, expired keys: 401.
    let r = gw
        .http
        .get(gw.url("/api/v1/key"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    assert_eq!(get(&gw, "not-a-key", "/api/v1/key").await.0, 401);
    let expiring = gw
        .new_key(KeySpec {
            name: "short".into(),
            expires_at: Some(now + 1000),
            ..KeySpec::default()
        })
        .await;
    assert_eq!(chat(&gw, &expiring).await.0, 200);
    set_clock(&gw, now + 2000);
    let (status, body) = chat(&gw, &expiring).await;
    assert_eq!(status, 401);
    assert!(body["error"]["message"]
        .as_str()
        .expect("m")
        .contains("expired"));
}

#[tokio::test]
async fn generation_metadata_is_complete() {
    let (_mock, gw) = gateway("10").await;
    let r = gw
        .post(
            "/api/v1/chat/completions",
            json!({"model": "test/model", "user": "end-9", "session_id": "s-3", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .header("HTTP-Referer", "https://crm.example")
        .header("X-OpenRouter-Title", "CRM")
        .send()
        .await
        .expect("send");
    let id = r.headers()["x-generation-id"]
        .to_str()
        .expect("s")
        .to_owned();
    gw.settled().await;
    let (status, body) = get(&gw, &gw.key, &format!("/api/v1/generation?id={id}")).await;
    assert_eq!(status, 200);
    let d = &body["data"];
    assert_eq!(d["id"], id);
    assert_eq!(d["model"], "test/model");
    assert_eq!(d["provider_name"], "ALPHA");
    assert_eq!(d["tokens_prompt"], 10);
    assert_eq!(d["tokens_completion"], 4);
    assert_eq!(d["total_cost"], json!(0.000018));
    assert_eq!(d["streamed"], false);
    assert_eq!(d["cancelled"], false);
    assert_eq!(d["finish_reason"], "stop");
    assert_eq!(d["native_finish_reason"], "stop");
    assert_eq!(d["http_referer"], "https://crm.example");
    assert_eq!(d["app_title"], "CRM");
    assert_eq!(d["external_user"], "end-9");
    assert_eq!(d["session_id"], "s-3");
    assert!(
        d["latency"].is_number() && d["generation_time"].is_number(),
        "{d}"
    );
    assert_eq!(get(&gw, &gw.key, "/api/v1/generation").await.0, 400);
    assert_eq!(
        get(&gw, &gw.key, "/api/v1/generation?id=gen-nope").await.0,
        404
    );
}

#[tokio::test]
async fn refusals_say_what_is_needed_and_what_is_left() {
    // Credits too low.
    let (_mock, gw) = gateway("0.000001").await;
    let (status, body) = chat(&gw, &gw.key).await;
    assert_eq!(status, 402, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .expect("m")
        .contains("credits"));
    assert!(
        body["error"]["metadata"]["needed"]
            .as_f64()
            .expect("needed")
            > 0.000001
    );
    assert_eq!(body["error"]["metadata"]["remaining"], json!(0.000001));

    // Key limit exhausted.
    let (_mock, gw) = gateway("10").await;
    let key = gw
        .new_key(KeySpec {
            name: "tiny".into(),
            limit: Some(usd("0.00001")),
            ..KeySpec::default()
        })
        .await;
    let (status, body) = chat(&gw, &key).await;
    assert_eq!(status, 402, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .expect("m")
        .contains("limit"));
    assert_eq!(body["error"]["metadata"]["remaining"], json!(0.00001));
}

/// Days since the epoch of an instant, and that day's Monday-based weekday.
fn day_of(ms: i64) -> (i64, i64) {
    let day = ms.div_euclid(DAY);
    (day, (day + 3).rem_euclid(7))
}

#[tokio::test]
async fn limit_windows_reset_with_the_clock() {
    let (_mock, gw) = gateway("10").await;
    // A Tuesday, mid-month: 2026-11-17 10:00 UTC.
    let tuesday = switchyard_core::periods::days_from_civil(2026, 11, 17) * DAY + 10 * 3_600_000;
    assert_eq!(day_of(tuesday).1, 1);
    set_clock(&gw, tuesday);
    let daily = gw
        .new_key(KeySpec {
            name: "daily".into(),
            limit: Some(usd("0.00005")),
            limit_reset: Some(LimitReset::Daily),
            ..KeySpec::default()
        })
        .await;
    // Spend until the daily limit refuses.
    let mut served = 0;
    loop {
        let (status, _) = chat(&gw, &daily).await;
        gw.settled().await;
        if status == 402 {
            break;
        }
        assert_eq!(status, 200);
        served += 1;
        assert!(served < 10, "the limit never refused");
    }
    assert!(served >= 1);
    let (_, info) = get(&gw, &daily, "/api/v1/key").await;
    let spent = info["data"]["usage_daily"].as_f64().expect("usage");
    assert!(spent <= 0.00005, "usage {spent} passed the limit");
    // Next day: the daily window is fresh; the weekly and monthly ones are not.
    set_clock(&gw, tuesday + DAY);
    let (_, info) = get(&gw, &daily, "/api/v1/key").await;
    assert_eq!(info["data"]["usage_daily"], json!(0));
    assert_eq!(info["data"]["usage_weekly"].as_f64(), Some(spent));
    assert_eq!(info["data"]["usage_monthly"].as_f64(), Some(spent));
    assert_eq!(chat(&gw, &daily).await.0, 200);
    gw.settled().await;
    // Next Monday: the weekly window starts again.
    set_clock(&gw, tuesday + 6 * DAY);
    let (_, info) = get(&gw, &daily, "/api/v1/key").await;
    assert_eq!(info["data"]["usage_weekly"], json!(0));
    assert!(info["data"]["usage_monthly"].as_f64().expect("monthly") > spent);
    // The first of the next month: the monthly window too.
    set_clock(
        &gw,
        switchyard_core::periods::days_from_civil(2026, 12, 1) * DAY + 60_000,
    );
    let (_, info) = get(&gw, &daily, "/api/v1/key").await;
    assert_eq!(info["data"]["usage_monthly"], json!(0));
    assert!(
        info["data"]["usage"].as_f64().expect("total") > spent,
        "the total never resets"
    );
}

#[tokio::test]
async fn activity_reports_completed_days_with_filters() {
    let (_mock, gw) = gateway("10").await;
    let admin = management(&gw).await;
    let day1 = switchyard_core::periods::days_from_civil(2026, 11, 20) * DAY + 3_600_000;
    set_clock(&gw, day1);
    let other = gw
        .new_key(KeySpec {
            name: "other".into(),
            ..KeySpec::default()
        })
        .await;
    for key in [&gw.key, &gw.key, &other] {
        assert_eq!(chat(&gw, key).await.0, 200);
    }
    gw.settled().await;
    // Today's activity is not complete yet.
    let (status, body) = get(&gw, &admin, "/api/v1/activity").await;
    assert_eq!(
        (status, body["data"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{body}"
    );
    set_clock(&gw, day1 + DAY);
    let (_, body) = get(&gw, &admin, "/api/v1/activity").await;
    let rows = body["data"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{body}");
    let row = &rows[0];
    assert_eq!(row["date"], "2026-11-20");
    assert_eq!(row["model"], "test/model");
    assert_eq!(row["provider_name"], "ALPHA");
    assert_eq!(row["requests"], 3);
    assert_eq!(row["prompt_tokens"], 30);
    assert_eq!(row["completion_tokens"], 12);
    assert_eq!(row["usage"], json!(0.000054));
    assert_eq!(row["byok_usage_inference"], json!(0));

    let hash = switchyard_core::keys::hash_key(&other);
    let (_, body) = get(
        &gw,
        &admin,
        &format!("/api/v1/activity?api_key_hash={hash}"),
    )
    .await;
    assert_eq!(body["data"][0]["requests"], 1, "{body}");
    let (_, body) = get(&gw, &admin, "/api/v1/activity?date=2026-11-20").await;
    assert_eq!(body["data"][0]["requests"], 3);
    let (_, body) = get(&gw, &admin, "/api/v1/activity?date=2026-11-19").await;
    assert_eq!(body["data"], json!([]));
    for (query, needle) in [
        ("date=2026-11-21", "last 30"),
        ("date=2026-02-30", "not a date"),
        ("date=2025-01-01", "last 30"),
        ("api_key_hash=xyz", "api_key_hash"),
        ("colour=blue", "colour"),
    ] {
        let (status, body) = get(&gw, &admin, &format!("/api/v1/activity?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .expect("m")
                .contains(needle),
            "{query}: {body}"
        );
    }
}
