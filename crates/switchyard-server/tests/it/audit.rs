//! The audit trail: one chained record per request, no prompt text, tamper detection, pruning.

use serde_json::{json, Value};
use switchyard_core::audit::sha256_hex;
use switchyard_server::audit;
use switchyard_server::engine::audit::prompt_sha256;

use crate::harness::{catalog, TestGateway, AUDIT_KEY};
use crate::mock::{completion, MockUpstream, Reply};

const SECRET_PROMPT: &str = "my card is 4111 1111 1111 1111, keep it secret";

async fn gateway() -> (MockUpstream, TestGateway) {
    let mock = MockUpstream::start(vec![
        Reply::Json(200, completion("Sure thing", 12, 3)),
        Reply::Json(400, json!({"error": {"message": "bad things"}})),
        Reply::Json(200, completion("again", 5, 1)),
    ])
    .await;
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), "0.000001", "0.000002")]))
        .build()
        .await;
    (mock, gw)
}

async fn records(gw: &TestGateway) -> Vec<(i64, Value)> {
    gw.state
        .store
        .audit_page(0, 1000)
        .await
        .expect("page")
        .into_iter()
        .map(|r| (r.seq, serde_json::from_str(&r.body).expect("json")))
        .collect()
}

/// Six requests; the second gets `second` (the mock's 400 the first time, 200 once its
/// script is used up).
async fn traffic(gw: &TestGateway, second: u16) {
    let body = json!({"model": "test/model", "user": "u-9", "messages": [{"role": "user", "content": SECRET_PROMPT}]});
    // Served.
    let r = gw
        .post("/api/v1/chat/completions", body.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    // Failed upstream (400 from the provider).
    let r = gw
        .post("/api/v1/chat/completions", body.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), second);
    // Refused: unknown model, bad body, bad key.
    let r = gw
        .post(
            "/api/v1/chat/completions",
            json!({"model": "no/such", "messages": [{"role": "user", "content": SECRET_PROMPT}]}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    let r = gw
        .post("/api/v1/chat/completions", json!({"model": "test/model"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    let r = gw
        .http
        .post(gw.url("/api/v1/chat/completions"))
        .bearer_auth("sk-or-v1-ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff")
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    // Served through the Messages API.
    let r = gw
        .post("/api/v1/messages", json!({"model": "test/model", "max_tokens": 10, "messages": [{"role": "user", "content": SECRET_PROMPT}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    gw.settled().await;
}

#[tokio::test]
async fn every_request_leaves_one_chained_record_without_prompt_text() {
    let (_mock, gw) = gateway().await;
    traffic(&gw, 400).await;
    let recs = records(&gw).await;
    assert_eq!(recs.len(), 6, "{recs:?}");
    let seqs: Vec<i64> = recs.iter().map(|r| r.0).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    for (_, body) in &recs {
        let text = body.to_string();
        assert!(
            !text.contains("4111"),
            "prompt text leaked into the audit log: {text}"
        );
        assert!(
            !text.contains("Sure thing"),
            "completion text leaked: {text}"
        );
    }
    let statuses: Vec<u64> = recs
        .iter()
        .map(|r| r.1["status"].as_u64().expect("status"))
        .collect();
    // The unknown key's refusal is counted in its source's record of the minute, written when
    // the minute ends (here, when the harness settles).
    assert_eq!(statuses, [200, 400, 400, 400, 200, 401]);

    let served = &recs[0].1;
    let request: switchyard_core::chat::ChatRequest = serde_json::from_value(
        json!({"model": "test/model", "messages": [{"role": "user", "content": SECRET_PROMPT}]}),
    )
    .expect("request");
    assert_eq!(served["prompt_sha256"], prompt_sha256(&request));
    assert_eq!(served["completion_sha256"], sha256_hex(b"Sure thing"));
    assert_eq!(served["user"], "u-9");
    assert_eq!(served["served"]["provider"], "alpha");
    assert_eq!(served["served"]["data_policy"]["zdr"], true);
    assert_eq!(served["routing"]["candidates"][0]["provider"], "alpha");
    assert_eq!(served["tokens"]["prompt"], 12);
    assert_eq!(served["cost"], "0.000018");
    assert_eq!(served["key_hash"], switchyard_core::keys::hash_key(&gw.key));
    let failed = &recs[1].1;
    assert_eq!(failed["served"], Value::Null);
    assert_eq!(failed["routing"]["attempts"][0]["status"], 400);
    assert_eq!(recs[5].1["kind"], "auth_failures");
    assert_eq!(recs[5].1["count"], 1);
    assert_eq!(recs[5].1["formats"], json!({"chat": 1}));
    assert_eq!(
        recs[5].1["account_id"],
        Value::Null,
        "an unknown key has no account"
    );
    assert_eq!(recs[4].1["format"], "messages");

    let v = audit::verify(&gw.state.store, Some(AUDIT_KEY.as_bytes()))
        .await
        .expect("intact chain verifies");
    assert_eq!(v.records, 6);
    assert!(v.signed);
    // The wrong key is a forged head.
    assert!(audit::verify(&gw.state.store, Some(b"another key"))
        .await
        .is_err());
}

#[tokio::test]
async fn tampering_is_detected_at_the_first_bad_record() {
    let cases: [(&str, &[&str], i64); 5] = [
        (
            "edit a field",
            &["UPDATE audit_log SET body = REPLACE(body, '\"status\":400', '\"status\":200') WHERE seq = 3"],
            3,
        ),
        ("delete a row", &["DELETE FROM audit_log WHERE seq = 4"], 4),
        (
            "reorder two rows",
            &[
                "UPDATE audit_log SET seq = 100 WHERE seq = 2",
                "UPDATE audit_log SET seq = 2 WHERE seq = 3",
                "UPDATE audit_log SET seq = 3 WHERE seq = 100",
            ],
            2,
        ),
        ("truncate the tail", &["DELETE FROM audit_log WHERE seq >= 5"], 5),
        (
            "truncate and move the head back",
            &[
                "DELETE FROM audit_log WHERE seq >= 5",
                "UPDATE audit_anchors SET seq = 4, hash = (SELECT hash FROM audit_log WHERE seq = 4) WHERE kind = 'head'",
            ],
            4,
        ),
    ];
    for (name, statements, first_bad) in cases {
        let (_mock, gw) = gateway().await;
        traffic(&gw, 400).await;
        audit::verify(&gw.state.store, Some(AUDIT_KEY.as_bytes()))
            .await
            .expect("intact before tampering");
        for sql in statements {
            gw.state.store.raw_execute(sql).await.expect("tamper");
        }
        match audit::verify(&gw.state.store, Some(AUDIT_KEY.as_bytes())).await {
            Err(audit::AuditError::Broken(b)) => assert_eq!(b.seq, first_bad, "{name}: {b}"),
            other => panic!("{name}: tampering not detected: {other:?}"),
        }
    }
}

#[tokio::test]
async fn pruning_keeps_the_chain_verifiable_and_new_records_continue_it() {
    let (_mock, gw) = gateway().await;
    traffic(&gw, 400).await;
    let now = gw.state.now_ms();
    // Everything is older than one day once the clock moves two days ahead.
    let later = now + 2 * 86_400_000;
    let pruned = audit::prune(&gw.state.store, 1, Some(AUDIT_KEY.as_bytes()), later)
        .await
        .expect("prune");
    assert_eq!(pruned, 6);
    let v = audit::verify(&gw.state.store, Some(AUDIT_KEY.as_bytes()))
        .await
        .expect("verifies after prune");
    assert_eq!(v.records, 0);
    // New traffic chains on from the checkpoint.
    traffic(&gw, 200).await;
    let v = audit::verify(&gw.state.store, Some(AUDIT_KEY.as_bytes()))
        .await
        .expect("verifies after more traffic");
    assert_eq!(v.range, Some((7, 12)));
    // A forged checkpoint is caught.
    gw.state
        .store
        .raw_execute("UPDATE audit_anchors SET seq = 8 WHERE kind = 'checkpoint'")
        .await
        .expect("tamper");
    assert!(audit::verify(&gw.state.store, Some(AUDIT_KEY.as_bytes()))
        .await
        .is_err());
}

#[tokio::test]
async fn export_writes_json_lines_for_a_time_range() {
    let (_mock, gw) = gateway().await;
    traffic(&gw, 400).await;
    let mut out = Vec::new();
    let n = audit::export(&gw.state.store, i64::MIN, i64::MAX, None, &mut out)
        .await
        .expect("export");
    assert_eq!(n, 6);
    let lines: Vec<Value> = String::from_utf8(out)
        .expect("utf8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("line is JSON"))
        .collect();
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[0]["seq"], 1);
    assert_eq!(lines[1]["prev_hash"], lines[0]["hash"]);
    assert!(lines[0]["record"]["generation_id"]
        .as_str()
        .expect("id")
        .starts_with("gen-"));
    let mut none = Vec::new();
    let n = audit::export(&gw.state.store, 0, 1, None, &mut none)
        .await
        .expect("export");
    assert_eq!(n, 0);
}
