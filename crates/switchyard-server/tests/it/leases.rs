//! Budget leases: with database holds, requests hold against slices of the budget leased from
//! the store in memory; near exhaustion, per request in the store. Either way, never over.

use serde_json::json;
use switchyard_core::keys::hash_key;
use switchyard_core::money::Money;
use switchyard_server::keys::KeySpec;
use switchyard_server::ledger::HoldMode;

use crate::harness::{catalog, TestGateway, ACCOUNT};
use crate::mock::{completion, MockUpstream, Reply};

fn usd(text: &str) -> Money {
    Money::parse_usd(text).expect("amount")
}

/// Sends `n` requests at once with `key`; returns their statuses.
async fn burst(gw: &TestGateway, key: &str, n: usize) -> Vec<u16> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let request = gw
                .http
                .post(gw.url("/api/v1/chat/completions"))
                .bearer_auth(key)
                .json(&json!({"model": "test/model", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}));
            tokio::spawn(async move { request.send().await.expect("send").status().as_u16() })
        })
        .collect();
    futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("join"))
        .collect()
}

#[tokio::test]
async fn leases_serve_a_large_limit_and_never_overspend_a_small_one() {
    // Every answer costs about its hold (100 completion tokens, the request's max_tokens).
    let replies = (0..120)
        .map(|_| Reply::Json(200, completion("x", 5, 100)))
        .collect();
    let mock = MockUpstream::start(replies).await;
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), "0.000001", "0.000002")]))
        .config(|c| c.store.holds = Some(HoldMode::Database))
        .build()
        .await;
    // A limit covering about ten requests, and one covering far more than the load.
    let small = gw
        .new_key(KeySpec {
            name: "small".into(),
            limit: Some(usd("0.0021")),
            ..KeySpec::default()
        })
        .await;
    let large = gw
        .new_key(KeySpec {
            name: "large".into(),
            limit: Some(usd("5")),
            ..KeySpec::default()
        })
        .await;
    let statuses = burst(&gw, &large, 60).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // The large key was served from a lease: one row, no per-request hold.
    let leases = gw.state.store.leases().await.expect("leases");
    assert!(
        leases.iter().any(|l| l.key_hash == hash_key(&large)),
        "{leases:?}"
    );
    let statuses = burst(&gw, &small, 60).await;
    let served = statuses.iter().filter(|s| **s == 200).count();
    assert!((1..=12).contains(&served), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 402),
        "{statuses:?}"
    );
    gw.settled().await;
    let store = &gw.state.store;
    let k = store
        .key(&hash_key(&small), gw.state.now_ms())
        .await
        .expect("read")
        .expect("key");
    assert!(
        k.usage.total.picos() + k.held.picos() <= usd("0.0021").picos(),
        "{:?} + {:?}",
        k.usage.total,
        k.held
    );
    // Stopping gives every lease back: nothing stays held, and spend is the sum of the
    // generation records' costs.
    let stopped = gw.stop().await;
    let store = switchyard_store::Store::connect(&stopped.store_url)
        .await
        .expect("store");
    let leases = store.leases().await.expect("leases");
    assert!(leases.is_empty(), "{leases:?}");
    assert_eq!(store.hold_count().await.expect("holds"), 0);
    let account = store
        .account(ACCOUNT)
        .await
        .expect("read")
        .expect("account");
    assert_eq!(account.held, Money::ZERO);
    let (n, total) = store.generation_totals(ACCOUNT).await.expect("totals");
    assert_eq!(n as usize, 60 + served);
    assert_eq!(account.usage, total);
    for key in [&small, &large] {
        let k = store
            .key(&hash_key(key), 0)
            .await
            .expect("read")
            .expect("key");
        assert_eq!(k.held, Money::ZERO);
    }
}

#[tokio::test]
async fn a_changed_key_gives_its_lease_back() {
    let replies = (0..4)
        .map(|_| Reply::Json(200, completion("x", 5, 10)))
        .collect();
    let mock = MockUpstream::start(replies).await;
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), "0.000001", "0.000002")]))
        .config(|c| c.store.holds = Some(HoldMode::Database))
        .build()
        .await;
    assert_eq!(burst(&gw, &gw.key, 2).await, vec![200, 200]);
    let hash = hash_key(&gw.key);
    assert!(gw.state.ledger.lease_available(&hash).is_some());
    let admin = gw.admin_key().await;
    let response = gw
        .http
        .patch(gw.url(&format!("/api/v1/keys/{hash}")))
        .bearer_auth(&admin)
        .json(&json!({"limit": 1}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    gw.settled().await;
    assert!(gw.state.ledger.lease_available(&hash).is_none());
    let leases = gw.state.store.leases().await.expect("leases");
    assert!(leases.iter().all(|l| l.amount.is_zero()), "{leases:?}");
    let k = gw
        .state
        .store
        .key(&hash, gw.state.now_ms())
        .await
        .expect("read")
        .expect("key");
    assert_eq!(k.held, Money::ZERO);
}
