//! The account APIs: key, keys (management), credits, generation, activity; their access rules,
//! the 402s, and limit windows that reset with the (injected) clock.

use std::sync::atomic::Ordering;

use serde_json::{json, Value};
use switchyard_core::money::Money;
use switchyard_server::keys::{create as create_key, KeySpec};
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
    gw.admin_key().await
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

/// Unix ms of a UTC civil time.
fn at(y: i64, m: u32, d: u32, hour: i64) -> i64 {
    switchyard_core::periods::days_from_civil(y, m, d) * DAY + hour * 3_600_000
}

#[tokio::test]
async fn current_key_reports_every_field() {
    let (_mock, gw) = gateway("10").await;
    set_clock(&gw, at(2026, 11, 18, 12));
    // An unlimited standard key: nulls where there is no limit, zeros where nothing was spent.
    let (status, body) = get(&gw, &gw.key, "/api/v1/key").await;
    assert_eq!(status, 200, "{body}");
    let d = &body["data"];
    for name in [
        "limit",
        "limit_remaining",
        "limit_reset",
        "creator_user_id",
        "expires_at",
    ] {
        assert_eq!(d[name], Value::Null, "{name}: {d}");
    }
    for name in [
        "usage",
        "usage_daily",
        "usage_weekly",
        "usage_monthly",
        "byok_usage",
        "byok_usage_daily",
        "byok_usage_weekly",
        "byok_usage_monthly",
    ] {
        assert_eq!(d[name], json!(0), "{name}: {d}");
    }
    for name in [
        "include_byok_in_limit",
        "is_free_tier",
        "is_management_key",
        "is_provisioning_key",
    ] {
        assert_eq!(d[name], false, "{name}: {d}");
    }
    assert_eq!(d["budgets"], json!([]));
    assert_eq!(d["effective_budget"], Value::Null);
    assert!(d["rate_limit"]["interval"].is_string(), "{d}");
    assert!(d["free_model_daily_requests"].is_object(), "{d}");

    // A limited, expiring key: its budget, window and expiry.
    let key = gw
        .new_key(KeySpec {
            name: "weekly".into(),
            limit: Some(usd("0.5")),
            limit_reset: Some(LimitReset::Weekly),
            include_byok_in_limit: true,
            expires_at: Some(at(2027, 1, 1, 0)),
            creator_user_id: Some("user-1".into()),
            ..KeySpec::default()
        })
        .await;
    assert_eq!(chat(&gw, &key).await.0, 200);
    gw.settled().await;
    let (_, body) = get(&gw, &key, "/api/v1/auth/key").await;
    let d = &body["data"];
    assert_eq!(d["limit"], json!(0.5));
    assert_eq!(d["limit_reset"], "weekly");
    assert_eq!(d["limit_remaining"], json!(0.499982));
    assert_eq!(d["include_byok_in_limit"], true);
    assert_eq!(d["usage_weekly"], json!(0.000018));
    assert_eq!(d["expires_at"], "2027-01-01T00:00:00Z");
    assert_eq!(d["creator_user_id"], "user-1");
    let budget = &d["effective_budget"];
    assert_eq!(budget["limit_usd"], json!(0.5));
    assert_eq!(budget["spend_usd"], json!(0.000018));
    assert_eq!(budget["remaining_usd"], json!(0.499982));
    assert_eq!(budget["reset_interval"], "weekly");
    assert_eq!(budget["include_byok"], true);
    // Wednesday 2026-11-18: the week ends on Sunday; the next one starts Monday the 23rd.
    assert_eq!(budget["resets_at"], "2026-11-23T00:00:00Z");
    assert_eq!(d["budgets"], json!([budget]));

    // A management key says so.
    let admin = management(&gw).await;
    let (status, body) = get(&gw, &admin, "/api/v1/key").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["is_management_key"], true);
    assert_eq!(body["data"]["is_provisioning_key"], true);

    // An account that never bought credits is on the free tier.
    let (_mock, free) = gateway("0").await;
    let (_, body) = get(&free, &free.key, "/api/v1/key").await;
    assert_eq!(body["data"]["is_free_tier"], true, "{body}");
}

#[tokio::test]
async fn management_api_validates_and_filters() {
    let (_mock, gw) = gateway("10").await;
    let admin = management(&gw).await;
    let now = gw.state.now_ms();
    // Standard keys can use none of it.
    for (method, path) in [
        ("GET", "/api/v1/keys"),
        ("POST", "/api/v1/keys"),
        ("GET", "/api/v1/keys/abc"),
        ("PATCH", "/api/v1/keys/abc"),
        ("DELETE", "/api/v1/keys/abc"),
    ] {
        let (status, body) = send(&gw, &gw.key, method, path, json!({"name": "x"})).await;
        assert_eq!(status, 403, "{method} {path}: {body}");
    }
    // Bad bodies name what is wrong.
    for (body, needle) in [
        (json!({"name": "x", "colour": "blue"}), "colour"),
        (json!({"name": ""}), "name"),
        (json!({"name": 5}), "name"),
        (json!({"name": "x", "limit": "ten"}), "limit"),
        (json!({"name": "x", "limit": -5}), "limit"),
        (json!({"name": "x", "limit_reset": "hourly"}), "hourly"),
        (
            json!({"name": "x", "include_byok_in_limit": "yes"}),
            "include_byok_in_limit",
        ),
        (json!({"name": "x", "expires_at": "soon"}), "expires_at"),
        (
            json!({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (
            json!({"name": "x", "creator_user_id": 7}),
            "creator_user_id",
        ),
        (json!(["name"]), "JSON object"),
    ] {
        let (status, err) = send(&gw, &admin, "POST", "/api/v1/keys", body.clone()).await;
        assert_eq!(status, 400, "{body}: {err}");
        let message = err["error"]["message"].as_str().expect("message");
        assert!(message.contains(needle), "{body}: {message}");
    }

    // Every field of the Key object.
    let (status, body) = send(
        &gw,
        &admin,
        "POST",
        "/api/v1/keys",
        json!({"name": "ci", "limit": 1, "limit_reset": "daily", "expires_at": to_iso(now + 3 * DAY), "creator_user_id": "user-9"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let ci = body["key"].as_str().expect("key").to_owned();
    let ci_hash = body["data"]["hash"].as_str().expect("hash").to_owned();
    assert_eq!(ci_hash, switchyard_core::keys::hash_key(&ci));
    let d = &body["data"];
    assert_eq!(d["name"], "ci");
    assert_eq!(d["disabled"], false);
    assert_eq!(d["limit"], json!(1));
    assert_eq!(d["limit_remaining"], json!(1));
    assert_eq!(d["limit_reset"], "daily");
    assert_eq!(d["include_byok_in_limit"], false);
    assert_eq!(d["expires_at"], to_iso(now + 3 * DAY));
    assert_eq!(d["creator_user_id"], "user-9");
    assert_eq!(d["usage"], json!(0));
    assert_eq!(d["last_used_at"], Value::Null);
    assert!(d["label"].as_str().expect("label").starts_with("sk-or-v1-"));
    for name in ["created_at", "updated_at"] {
        assert!(
            switchyard_core::periods::parse_iso8601(d[name].as_str().expect(name)).is_some(),
            "{name}: {d}"
        );
    }
    for name in [
        "usage_daily",
        "usage_weekly",
        "usage_monthly",
        "byok_usage",
        "byok_usage_daily",
        "byok_usage_weekly",
        "byok_usage_monthly",
        "workspace_id",
        "external_user",
    ] {
        assert!(d.get(name).is_some(), "{name} missing: {d}");
    }
    assert!(d.get("is_management_key").is_none(), "{d}");
    // The contract's Key names its workspace (a string, never null).
    assert_eq!(d["workspace_id"], "default");

    // Spending shows on the key and on the account's credits.
    assert_eq!(chat(&gw, &ci).await.0, 200);
    gw.settled().await;
    let (_, body) = get(&gw, &admin, &format!("/api/v1/keys/{ci_hash}")).await;
    assert_eq!(body["data"]["usage"], json!(0.000018), "{body}");
    assert_eq!(body["data"]["limit_remaining"], json!(0.999982));
    assert!(body["data"]["last_used_at"].is_string(), "{body}");
    let (_, credits) = get(&gw, &admin, "/api/v1/credits").await;
    assert_eq!(credits["data"]["total_credits"], json!(10));
    assert_eq!(credits["data"]["total_usage"], json!(0.000018));

    // Disabled and expired keys are listed only when asked for; management keys never.
    let (_, body) = send(&gw, &admin, "POST", "/api/v1/keys", json!({"name": "off"})).await;
    let off = body["data"]["hash"].as_str().expect("hash").to_owned();
    let (status, _) = send(
        &gw,
        &admin,
        "PATCH",
        &format!("/api/v1/keys/{off}"),
        json!({"disabled": true}),
    )
    .await;
    assert_eq!(status, 200);
    let names = |body: &Value| -> Vec<String> {
        let mut names: Vec<String> = body["data"]
            .as_array()
            .expect("list")
            .iter()
            .map(|k| k["name"].as_str().expect("name").to_owned())
            .collect();
        names.sort();
        names
    };
    let (_, body) = get(&gw, &admin, "/api/v1/keys").await;
    assert_eq!(names(&body), ["ci", "test"]);
    let (_, body) = get(&gw, &admin, "/api/v1/keys?include_disabled=true").await;
    assert_eq!(names(&body), ["ci", "off", "test"]);
    set_clock(&gw, now + 4 * DAY);
    let (_, body) = get(&gw, &admin, "/api/v1/keys").await;
    assert_eq!(names(&body), ["test"]);
    let (_, body) = get(&gw, &admin, "/api/v1/keys?include_expired=true").await;
    assert_eq!(names(&body), ["ci", "test"]);
    let (_, body) = get(&gw, &admin, "/api/v1/keys?offset=1&include_expired=true").await;
    assert_eq!(body["data"].as_array().map(Vec::len), Some(1));
    for query in ["include_disabled=yes", "include_expired=1", "offset=-1"] {
        let (status, body) = get(&gw, &admin, &format!("/api/v1/keys?{query}")).await;
        let name = query.split('=').next().expect("name");
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body["error"]["message"].as_str().expect("m").contains(name),
            "{query}: {body}"
        );
    }
    // The expired key is refused.
    assert_eq!(chat(&gw, &ci).await.0, 401);

    // Another account's key, and the management key itself, are not found.
    gw.state
        .store
        .ensure_account("other", "Other", now)
        .await
        .expect("account");
    let (_, theirs) = create_key(
        &gw.state.store,
        "other",
        &KeySpec {
            name: "theirs".into(),
            ..KeySpec::default()
        },
        now,
    )
    .await
    .expect("key");
    for hash in [theirs.hash.clone(), switchyard_core::keys::hash_key(&admin)] {
        for method in ["GET", "PATCH", "DELETE"] {
            let (status, body) = send(
                &gw,
                &admin,
                method,
                &format!("/api/v1/keys/{hash}"),
                json!({"name": "mine"}),
            )
            .await;
            assert_eq!(status, 404, "{method}: {body}");
        }
    }
    let still = gw
        .state
        .store
        .key(&theirs.hash, now)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(still.name, "theirs");
}

fn to_iso(ms: i64) -> String {
    switchyard_core::periods::to_iso8601(ms)
}

/// Spends with `key` until it is refused with a 402; returns how many requests were served.
async fn spend_until_refused(gw: &TestGateway, key: &str) -> usize {
    let mut served = 0;
    loop {
        let (status, body) = chat(gw, key).await;
        gw.settled().await;
        if status == 402 {
            assert!(
                body["error"]["message"]
                    .as_str()
                    .expect("m")
                    .contains("limit"),
                "{body}"
            );
            return served;
        }
        assert_eq!(status, 200, "{body}");
        served += 1;
        assert!(served < 10, "the limit never refused");
    }
}

#[tokio::test]
async fn weekly_limits_reset_on_monday_and_monthly_ones_on_the_first() {
    let (_mock, gw) = gateway("10").await;
    // Wednesday 2026-11-18.
    set_clock(&gw, at(2026, 11, 18, 9));
    let weekly = gw
        .new_key(KeySpec {
            name: "weekly".into(),
            limit: Some(usd("0.00005")),
            limit_reset: Some(LimitReset::Weekly),
            ..KeySpec::default()
        })
        .await;
    assert!(spend_until_refused(&gw, &weekly).await >= 1);
    // Later the same week, up to the last millisecond of Sunday: still refused.
    for t in [at(2026, 11, 19, 9), at(2026, 11, 23, 0) - 1] {
        set_clock(&gw, t);
        assert_eq!(chat(&gw, &weekly).await.0, 402, "{}", to_iso(t));
    }
    // Monday 00:00 UTC: a new week.
    set_clock(&gw, at(2026, 11, 23, 0));
    assert_eq!(chat(&gw, &weekly).await.0, 200);
    gw.settled().await;

    let monthly = gw
        .new_key(KeySpec {
            name: "monthly".into(),
            limit: Some(usd("0.00005")),
            limit_reset: Some(LimitReset::Monthly),
            ..KeySpec::default()
        })
        .await;
    set_clock(&gw, at(2026, 11, 2, 9));
    assert!(spend_until_refused(&gw, &monthly).await >= 1);
    // A new week and a new day do not help a monthly limit.
    for t in [at(2026, 11, 9, 9), at(2026, 12, 1, 0) - 1] {
        set_clock(&gw, t);
        assert_eq!(chat(&gw, &monthly).await.0, 402, "{}", to_iso(t));
    }
    set_clock(&gw, at(2026, 12, 1, 0));
    assert_eq!(chat(&gw, &monthly).await.0, 200);
    gw.settled().await;

    // A limit without a window never resets.
    let lifetime = gw
        .new_key(KeySpec {
            name: "lifetime".into(),
            limit: Some(usd("0.00005")),
            ..KeySpec::default()
        })
        .await;
    assert!(spend_until_refused(&gw, &lifetime).await >= 1);
    set_clock(&gw, at(2027, 2, 1, 0));
    assert_eq!(chat(&gw, &lifetime).await.0, 402);
}

#[tokio::test]
async fn activity_rows_carry_every_field_and_only_this_account() {
    let (_mock, gw) = gateway("10").await;
    let admin = management(&gw).await;
    let day = at(2026, 11, 10, 15);
    set_clock(&gw, day);
    assert_eq!(chat(&gw, &gw.key).await.0, 200);
    // Another account's spend the same day is not reported.
    gw.state
        .store
        .ensure_account("other", "Other", day)
        .await
        .expect("account");
    gw.state
        .store
        .add_credits("other", usd("1"))
        .await
        .expect("credits");
    let (theirs, _) = create_key(
        &gw.state.store,
        "other",
        &KeySpec {
            name: "theirs".into(),
            ..KeySpec::default()
        },
        day,
    )
    .await
    .expect("key");
    assert_eq!(chat(&gw, &theirs).await.0, 200);
    gw.settled().await;

    set_clock(&gw, day + DAY);
    let (status, body) = get(&gw, &admin, "/api/v1/activity").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"],
        json!([{
            "date": "2026-11-10",
            "model": "test/model",
            "model_permaslug": "test/model",
            "endpoint_id": "test/model:alpha",
            "provider_name": "ALPHA",
            "usage": 0.000018,
            "byok_usage_inference": 0,
            "requests": 1,
            "prompt_tokens": 10,
            "completion_tokens": 4,
            "reasoning_tokens": 0,
            "cached_tokens": 0,
        }])
    );
    // Grouped by workspace: one workspace, named on every row.
    let (_, body) = get(&gw, &admin, "/api/v1/activity?group_by=workspace").await;
    assert_eq!(body["data"][0]["workspace_id"], "default", "{body}");
    assert_eq!(body["data"][0]["requests"], 1);
    let (_, body) = get(&gw, &admin, "/api/v1/activity?workspace_id=default").await;
    assert_eq!(body["data"][0]["requests"], 1, "{body}");
    let (_, body) = get(&gw, &admin, "/api/v1/activity?workspace_id=elsewhere").await;
    assert_eq!(body["data"], json!([]));
    for (query, needle) in [("group_by=model", "group_by"), ("user_id=u1", "user_id")] {
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
    // Thirty completed days later the day is still reported; a day after that it is gone.
    set_clock(&gw, day + 30 * DAY);
    let (_, body) = get(&gw, &admin, "/api/v1/activity").await;
    assert_eq!(body["data"].as_array().map(Vec::len), Some(1), "{body}");
    set_clock(&gw, day + 31 * DAY);
    let (_, body) = get(&gw, &admin, "/api/v1/activity").await;
    assert_eq!(body["data"], json!([]));
    let (status, _) = get(&gw, &admin, "/api/v1/activity?date=2026-11-10").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn generation_of_a_stream_reports_every_contract_field() {
    let mock = MockUpstream::start(vec![Reply::Sse {
        events: crate::mock::stream_events(&["Hel", "lo"], (9, 2)),
        delay: std::time::Duration::ZERO,
        cut: false,
    }])
    .await;
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), "0.000001", "0.000002")]))
        .credits("10")
        .build()
        .await;
    let r = gw
        .post(
            "/api/v1/chat/completions",
            json!({"model": "test/model", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-generation-id"]
        .to_str()
        .expect("s")
        .to_owned();
    let _ = r.text().await.expect("stream");
    gw.settled().await;
    let (status, body) = get(&gw, &gw.key, &format!("/api/v1/generation?id={id}")).await;
    assert_eq!(status, 200, "{body}");
    let d = body["data"].as_object().expect("data");
    for name in [
        "id",
        "request_id",
        "session_id",
        "created_at",
        "model",
        "origin",
        "api_type",
        "streamed",
        "cancelled",
        "total_cost",
        "usage",
        "cache_discount",
        "upstream_inference_cost",
        "is_byok",
        "upstream_id",
        "provider_name",
        "provider_responses",
        "app_id",
        "http_referer",
        "user_agent",
        "external_user",
        "preset_id",
        "router",
        "workspace_id",
        "data_region",
        "service_tier",
        "web_search_engine",
        "latency",
        "moderation_latency",
        "generation_time",
        "finish_reason",
        "native_finish_reason",
        "tokens_prompt",
        "tokens_completion",
        "native_tokens_prompt",
        "native_tokens_completion",
        "native_tokens_reasoning",
        "native_tokens_cached",
        "native_tokens_completion_images",
        "num_media_prompt",
        "num_media_completion",
        "num_input_audio_prompt",
        "num_search_results",
        "num_fetches",
    ] {
        assert!(d.contains_key(name), "{name} missing: {body}");
    }
    assert_eq!(d["streamed"], true);
    assert_eq!(d["cancelled"], false);
    assert_eq!(d["api_type"], "completions");
    assert_eq!(d["is_byok"], false);
    assert_eq!(d["tokens_prompt"], 9);
    assert_eq!(d["tokens_completion"], 2);
    assert_eq!(d["native_tokens_prompt"], 9);
    assert_eq!(d["native_tokens_completion"], 2);
    assert_eq!(d["native_tokens_reasoning"], 0);
    assert_eq!(d["total_cost"], json!(0.000013));
    assert_eq!(d["usage"], json!(0.000013));
    assert_eq!(d["upstream_inference_cost"], Value::Null);
    assert_eq!(d["finish_reason"], "stop");
    assert_eq!(d["data_region"], "global");
    assert_eq!(d["external_user"], Value::Null);
    let created = switchyard_core::periods::parse_iso8601(d["created_at"].as_str().expect("t"))
        .expect("ISO-8601 created_at");
    assert_eq!(created / 1000, gw.state.now_ms() / 1000);
    // A management key of the same account may read it; nobody may read it unauthenticated.
    let admin = management(&gw).await;
    assert_eq!(
        get(&gw, &admin, &format!("/api/v1/generation?id={id}"))
            .await
            .0,
        200
    );
    let r = gw
        .http
        .get(gw.url(&format!("/api/v1/generation?id={id}")))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn cors_answers_preflights_for_allowed_origins_only() {
    let mock = crate::mock::MockUpstream::start(vec![crate::mock::Reply::Json(
        200,
        crate::mock::completion("hi", 1, 1),
    )])
    .await;
    let gw = crate::harness::TestGateway::builder(crate::harness::catalog(&[(
        "alpha",
        &mock.url(),
        "0.000001",
        "0.000002",
    )]))
    .config(|c| c.server.cors_allowed_origins = vec!["https://app.example".to_owned()])
    .build()
    .await;
    let preflight = |origin: &'static str| {
        gw.http
            .request(reqwest::Method::OPTIONS, gw.url("/api/v1/chat/completions"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let allowed = preflight("https://app.example").await.expect("send");
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let refused = preflight("https://evil.example").await.expect("send");
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    // The actual request carries the header and exposes the generation id.
    let response = gw
        .post(
            "/api/v1/chat/completions",
            serde_json::json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .header("origin", "https://app.example")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert!(response.headers()["access-control-expose-headers"]
        .to_str()
        .expect("ascii")
        .contains("x-generation-id"));
}

#[tokio::test]
async fn without_allowed_origins_there_is_no_cors() {
    let mock = crate::mock::MockUpstream::start(vec![]).await;
    let gw = crate::harness::TestGateway::builder(crate::harness::catalog(&[(
        "alpha",
        &mock.url(),
        "0.000001",
        "0.000002",
    )]))
    .build()
    .await;
    let response = gw
        .http
        .request(reqwest::Method::OPTIONS, gw.url("/api/v1/chat/completions"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("send");
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}
