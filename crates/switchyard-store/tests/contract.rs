#![allow(clippy::unwrap_used, clippy::expect_used)]
//! One contract suite for every store: SQLite always, PostgreSQL when
//! `SWITCHYARD_TEST_POSTGRES_URL` is set.

use std::sync::Arc;

use switchyard_core::money::Money;
use switchyard_core::periods::DAY_MS;
use switchyard_store::{
    Block, EndUserLimits, GenerationRecord, HoldRefused, KeyUpdate, KeyUserPolicy, LimitReset,
    NewKey, ProviderResponse, Store, StrikeRow, UserHold, BLOCKED_BY_OPERATOR,
};

const NOW: i64 = 20_780 * DAY_MS + 3_600_000; // Monday 2026-11-23 01:00 UTC

fn usd(text: &str) -> Money {
    Money::parse_usd(text).expect("amount")
}

struct Db {
    store: Store,
    /// Where it is, for a second instance on the same database.
    url: String,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Db {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    Db {
        store: Store::connect(&url).await.expect("connect"),
        url,
        _dir: Some(dir),
    }
}

async fn postgres() -> Option<Db> {
    let Ok(base) = std::env::var("SWITCHYARD_TEST_POSTGRES_URL") else {
        eprintln!(
            "SWITCHYARD_TEST_POSTGRES_URL is not set: skipping the PostgreSQL run of this test"
        );
        return None;
    };
    let schema = format!("t_{}", rand::random::<u64>());
    // A plain connection: the database's own schema may be at another version (another
    // checkout's migrations); each run migrates only its fresh schema.
    use sqlx::Connection as _;
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .expect("connect admin");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await
        .expect("schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    Some(Db {
        store: Store::connect(&url).await.expect("connect schema"),
        url,
        _dir: None,
    })
}

async fn stores() -> Vec<(&'static str, Db)> {
    let mut all = vec![("sqlite", sqlite().await)];
    if let Some(pg) = postgres().await {
        all.push(("postgres", pg));
    }
    all
}

async fn key(store: &Store, hash: &str, limit: Option<&str>, reset: Option<LimitReset>) {
    store
        .create_key(
            &NewKey {
                hash: hash.into(),
                label: "sk-or-v1-abc...1234".into(),
                account_id: "acct".into(),
                name: hash.into(),
                is_management: false,
                limit: limit.map(usd),
                limit_reset: reset,
                include_byok_in_limit: false,
                expires_at: None,
                creator_user_id: None,
            },
            NOW,
        )
        .await
        .expect("create key");
}

fn generation(id: &str, key: &str, cost: &str, at: i64) -> GenerationRecord {
    GenerationRecord {
        id: id.into(),
        account_id: "acct".into(),
        key_hash: key.into(),
        created_at: at,
        model: "m/x".into(),
        provider_slug: "p".into(),
        provider_name: "P".into(),
        cost: usd(cost),
        status: 200,
        ..GenerationRecord::default()
    }
}

async fn setup(store: &Store, credits: &str) {
    store
        .ensure_account("acct", "Acct", NOW)
        .await
        .expect("account");
    store
        .add_credits("acct", usd(credits))
        .await
        .expect("credits");
}

#[tokio::test]
async fn keys_round_trip_and_update() {
    for (name, db) in stores().await {
        let s = &db.store;
        setup(s, "10").await;
        key(s, "h1", Some("5"), Some(LimitReset::Daily)).await;
        let k = s.key("h1", NOW).await.expect("read").expect("exists");
        assert_eq!(k.limit, Some(usd("5")), "{name}");
        assert_eq!(k.limit_reset, Some(LimitReset::Daily), "{name}");
        assert!(!k.disabled && !k.is_management, "{name}");
        let updated = s
            .update_key(
                "h1",
                &KeyUpdate {
                    name: Some("renamed".into()),
                    disabled: Some(true),
                    limit: Some(None),
                    limit_reset: Some(Some(LimitReset::Monthly)),
                    include_byok_in_limit: Some(true),
                    expires_at: Some(Some(NOW + 1)),
                },
                NOW + 5,
            )
            .await
            .expect("update")
            .expect("exists");
        assert_eq!(updated.name, "renamed", "{name}");
        assert!(updated.disabled && updated.include_byok_in_limit, "{name}");
        assert_eq!(updated.limit, None, "{name}");
        assert_eq!(updated.limit_reset, Some(LimitReset::Monthly), "{name}");
        assert!(updated.is_expired(NOW + 1), "{name}");
        assert_eq!(updated.updated_at, NOW + 5, "{name}");
        assert_eq!(
            s.list_keys("acct", NOW).await.expect("list").len(),
            1,
            "{name}"
        );
        assert!(s.delete_key("h1").await.expect("delete"), "{name}");
        assert!(!s.delete_key("h1").await.expect("delete"), "{name}");
        assert!(s.key("h1", NOW).await.expect("read").is_none(), "{name}");
    }
}

#[tokio::test]
async fn hold_settle_release_are_exact_and_idempotent() {
    for (name, db) in stores().await {
        let s = &db.store;
        setup(s, "1").await;
        key(s, "k", Some("0.5"), None).await;
        s.hold("g1", "k", "acct", usd("0.3"), NOW)
            .await
            .expect("hold")
            .expect("granted");
        // The limit has 0.2 left after the hold.
        let refused = s
            .hold("g2", "k", "acct", usd("0.25"), NOW)
            .await
            .expect("hold");
        assert_eq!(
            refused,
            Err(HoldRefused::KeyLimit {
                needed: usd("0.25"),
                remaining: usd("0.2")
            }),
            "{name}"
        );
        assert!(
            s.settle(&generation("g1", "k", "0.1234", NOW), Some("g1"))
                .await
                .expect("settle"),
            "{name}"
        );
        assert!(
            !s.settle(&generation("g1", "k", "0.1234", NOW), Some("g1"))
                .await
                .expect("settle"),
            "{name}"
        );
        let k = s.key("k", NOW).await.expect("read").expect("exists");
        assert_eq!(k.usage.total, usd("0.1234"), "{name}");
        assert_eq!(k.usage.daily, usd("0.1234"), "{name}");
        assert_eq!(k.held, Money::ZERO, "{name}");
        let a = s.account("acct").await.expect("read").expect("exists");
        assert_eq!((a.usage, a.held), (usd("0.1234"), Money::ZERO), "{name}");
        s.hold("g3", "k", "acct", usd("0.2"), NOW)
            .await
            .expect("hold")
            .expect("granted");
        assert!(s.release("g3").await.expect("release"), "{name}");
        assert!(!s.release("g3").await.expect("release"), "{name}");
        let a = s.account("acct").await.expect("read").expect("exists");
        assert_eq!((a.usage, a.held), (usd("0.1234"), Money::ZERO), "{name}");
        assert_eq!(s.hold_count().await.expect("count"), 0, "{name}");
        let g = s.generation("g1").await.expect("read").expect("exists");
        assert_eq!(g.cost, usd("0.1234"), "{name}");
        assert_eq!(g.provider_responses, [], "{name}");

        // The details `GET /generation` reports round-trip.
        let detailed = GenerationRecord {
            api_type: Some("embeddings".into()),
            user_agent: Some("client/1.0".into()),
            provider_responses: vec![
                ProviderResponse {
                    provider_name: "Down".into(),
                    status: Some(500),
                    model_permaslug: Some("m/x".into()),
                    is_byok: false,
                },
                ProviderResponse {
                    provider_name: "P".into(),
                    status: Some(200),
                    model_permaslug: None,
                    is_byok: true,
                },
            ],
            ..generation("g4", "k", "0", NOW)
        };
        assert!(s.settle(&detailed, None).await.expect("settle"), "{name}");
        let g = s.generation("g4").await.expect("read").expect("exists");
        assert_eq!(
            (g.api_type, g.user_agent, g.provider_responses),
            (
                detailed.api_type.clone(),
                detailed.user_agent.clone(),
                detailed.provider_responses.clone()
            ),
            "{name}"
        );
    }
}

#[tokio::test]
async fn credits_refuse_holds_beyond_balance() {
    for (name, db) in stores().await {
        let s = &db.store;
        setup(s, "0.01").await;
        key(s, "k", None, None).await;
        let refused = s
            .hold("g", "k", "acct", usd("0.02"), NOW)
            .await
            .expect("hold");
        assert_eq!(
            refused,
            Err(HoldRefused::Credits {
                needed: usd("0.02"),
                remaining: usd("0.01")
            }),
            "{name}"
        );
        assert_eq!(s.hold_count().await.expect("count"), 0, "{name}");
        let k = s.key("k", NOW).await.expect("read").expect("exists");
        assert_eq!(
            k.held,
            Money::ZERO,
            "the key hold was rolled back on {name}"
        );
    }
}

#[tokio::test]
async fn limit_windows_reset() {
    for (name, db) in stores().await {
        let s = &db.store;
        setup(s, "100").await;
        for (hash, reset) in [
            ("d", LimitReset::Daily),
            ("w", LimitReset::Weekly),
            ("m", LimitReset::Monthly),
        ] {
            key(s, hash, Some("1"), Some(reset)).await;
            s.settle(&generation(&format!("{hash}-1"), hash, "1", NOW), None)
                .await
                .expect("settle");
            assert!(
                s.hold(&format!("{hash}-h"), hash, "acct", usd("0.1"), NOW)
                    .await
                    .expect("hold")
                    .is_err(),
                "{name} {hash}"
            );
        }
        let next_day = NOW + DAY_MS;
        assert!(
            s.hold("d-2", "d", "acct", usd("0.1"), next_day)
                .await
                .expect("hold")
                .is_ok(),
            "{name}"
        );
        assert!(
            s.hold("w-2", "w", "acct", usd("0.1"), next_day)
                .await
                .expect("hold")
                .is_err(),
            "{name}"
        );
        let next_week = NOW + 7 * DAY_MS;
        assert!(
            s.hold("w-3", "w", "acct", usd("0.1"), next_week)
                .await
                .expect("hold")
                .is_ok(),
            "{name}"
        );
        assert!(
            s.hold("m-3", "m", "acct", usd("0.1"), next_week)
                .await
                .expect("hold")
                .is_err(),
            "{name}"
        );
        let next_month = NOW + 8 * DAY_MS; // 2026-12-01
        assert!(
            s.hold("m-4", "m", "acct", usd("0.1"), next_month)
                .await
                .expect("hold")
                .is_ok(),
            "{name}"
        );
        let k = s.key("d", next_day).await.expect("read").expect("exists");
        assert_eq!(
            (k.usage.daily, k.usage.total),
            (Money::ZERO, usd("1")),
            "{name}"
        );
    }
}

#[tokio::test]
async fn concurrent_holds_never_overspend() {
    for (name, db) in stores().await {
        let s = Arc::new(db.store.clone());
        setup(&s, "100").await;
        key(&s, "k", Some("1"), None).await;
        // 50 requests each holding 0.1 against a limit of 1: exactly 10 can be granted.
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let s = Arc::clone(&s);
                tokio::spawn(async move {
                    let id = format!("g{i}");
                    let granted = s
                        .hold(&id, "k", "acct", usd("0.1"), NOW)
                        .await
                        .expect("hold")
                        .is_ok();
                    if granted {
                        s.settle(&generation(&id, "k", "0.1", NOW), Some(&id))
                            .await
                            .expect("settle");
                    }
                    granted
                })
            })
            .collect();
        let granted = futures::future::join_all(tasks)
            .await
            .into_iter()
            .filter(|r| matches!(r, Ok(true)))
            .count();
        assert_eq!(granted, 10, "{name}");
        let k = s.key("k", NOW).await.expect("read").expect("exists");
        assert_eq!(k.usage.total, usd("1"), "{name}");
        assert_eq!(k.held, Money::ZERO, "{name}");
    }
}

#[tokio::test]
async fn a_starting_instance_releases_only_its_own_and_lapsed_holds() {
    const LEASE: std::time::Duration = std::time::Duration::from_secs(60);
    for (name, db) in stores().await {
        let running = db.store.clone().with_hold_lease(LEASE);
        setup(&running, "1").await;
        key(&running, "k", None, None).await;
        // A gateway that stopped renewing its holds long ago (it crashed).
        let crashed = Store::connect(&db.url)
            .await
            .expect("connect")
            .with_hold_lease(LEASE);
        crashed
            .hold("crashed", "k", "acct", usd("0.5"), NOW - 120_000)
            .await
            .expect("hold")
            .expect("granted");
        // A gateway still running: its hold is in its lease.
        running
            .hold("running", "k", "acct", usd("0.1"), NOW - 1_000)
            .await
            .expect("hold")
            .expect("granted");
        // A new gateway starts on the same database.
        let starting = Store::connect(&db.url)
            .await
            .expect("connect")
            .with_hold_lease(LEASE);
        assert_ne!(starting.instance_id(), running.instance_id(), "{name}");
        starting
            .hold("own", "k", "acct", usd("0.2"), NOW)
            .await
            .expect("hold")
            .expect("granted");
        assert_eq!(
            starting.release_stale_holds(NOW).await.expect("release"),
            2,
            "{name}: the lapsed hold and its own"
        );
        assert_eq!(starting.hold_count().await.expect("count"), 1, "{name}");
        let a = starting
            .account("acct")
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(
            a.held,
            usd("0.1"),
            "{name}: the running gateway's hold is kept"
        );
        let k = starting.key("k", NOW).await.expect("read").expect("exists");
        assert_eq!(k.held, usd("0.1"), "{name}");
    }
}

#[tokio::test]
async fn the_sweep_renews_its_own_holds_and_releases_lapsed_ones() {
    const LEASE_MS: i64 = 60_000;
    let lease = std::time::Duration::from_millis(LEASE_MS as u64);
    for (name, db) in stores().await {
        let a = db.store.clone().with_hold_lease(lease);
        setup(&a, "1").await;
        key(&a, "k", None, None).await;
        let b = Store::connect(&db.url)
            .await
            .expect("connect")
            .with_hold_lease(lease);
        a.hold("a", "k", "acct", usd("0.1"), NOW)
            .await
            .expect("hold")
            .expect("granted");
        b.hold("b", "k", "acct", usd("0.2"), NOW)
            .await
            .expect("hold")
            .expect("granted");
        // Within the lease nothing is released.
        assert_eq!(
            a.sweep_holds(NOW + LEASE_MS - 1).await.expect("sweep"),
            0,
            "{name}"
        );
        // A keeps sweeping (renewing); B stopped: past B's lease only B's hold goes.
        assert_eq!(
            a.sweep_holds(NOW + LEASE_MS).await.expect("sweep"),
            1,
            "{name}"
        );
        assert_eq!(a.hold_count().await.expect("count"), 1, "{name}");
        let account = a.account("acct").await.expect("read").expect("exists");
        assert_eq!(account.held, usd("0.1"), "{name}");
        // Renewed at NOW + LEASE_MS - 1 and again at NOW + LEASE_MS: still held later on.
        assert_eq!(
            a.sweep_holds(NOW + 2 * LEASE_MS - 1).await.expect("sweep"),
            0,
            "{name}"
        );
        assert_eq!(a.renew_holds(NOW).await.expect("renew"), 1, "{name}");
        // Another instance's sweep releases A's hold once its lease ran out unrenewed.
        assert_eq!(
            b.sweep_holds(NOW + LEASE_MS).await.expect("sweep"),
            1,
            "{name}"
        );
        assert_eq!(a.hold_count().await.expect("count"), 0, "{name}");
    }
}

#[tokio::test]
async fn byok_spend_is_apart_from_credits() {
    for (name, db) in stores().await {
        let s = &db.store;
        setup(s, "1").await;
        key(s, "k", Some("1"), None).await;
        let mut g = generation("b", "k", "0.4", NOW);
        g.is_byok = true;
        s.settle(&g, None).await.expect("settle");
        let k = s.key("k", NOW).await.expect("read").expect("exists");
        assert_eq!(
            (k.usage.total, k.byok_usage.total),
            (Money::ZERO, usd("0.4")),
            "{name}"
        );
        let a = s.account("acct").await.expect("read").expect("exists");
        assert_eq!((a.usage, a.byok_usage), (Money::ZERO, usd("0.4")), "{name}");
    }
}

#[tokio::test]
async fn batched_writes_settle_and_chain_audit_records() {
    use switchyard_core::audit::{self, Anchor, GENESIS};
    use switchyard_store::{AuditRow, Settlement};
    for (name, db) in stores().await {
        let s = &db.store;
        setup(s, "1").await;
        key(s, "k", None, None).await;
        s.hold("g1", "k", "acct", usd("0.5"), NOW)
            .await
            .expect("hold")
            .expect("granted");
        let record = GenerationRecord {
            id: "g1".into(),
            account_id: "acct".into(),
            key_hash: "k".into(),
            created_at: NOW,
            model: "m/x".into(),
            provider_slug: "p".into(),
            provider_name: "P".into(),
            cost: usd("0.25"),
            status: 200,
            ..GenerationRecord::default()
        };
        let mut prev = GENESIS.to_owned();
        let mut rows = Vec::new();
        for seq in 1..=3 {
            let body = audit::canonical_json(&serde_json::json!({"n": seq}));
            let hash = audit::record_hash(&prev, seq, &body);
            rows.push(AuditRow {
                seq,
                created_at: NOW + seq,
                generation_id: format!("g{seq}"),
                account_id: Some("acct".into()),
                body,
                prev_hash: prev.clone(),
                hash: hash.clone(),
            });
            prev = hash;
        }
        let head = Anchor {
            seq: 3,
            hash: prev.clone(),
            signature: "sig".into(),
        };
        let settlement = Settlement {
            record: record.clone(),
            hold_id: Some("g1".into()),
            lease_id: None,
        };
        s.write_batch(
            std::slice::from_ref(&settlement),
            &[],
            &rows,
            Some(&head),
            NOW,
        )
        .await
        .expect("batch");
        // A retried batch charges nothing twice (its audit rows would conflict: retry settles only).
        s.write_batch(&[settlement], &[], &[], None, NOW)
            .await
            .expect("retry");
        let a = s.account("acct").await.expect("read").expect("exists");
        assert_eq!((a.usage, a.held), (usd("0.25"), Money::ZERO), "{name}");
        assert_eq!(
            s.audit_last().await.expect("last"),
            Some((3, prev.clone())),
            "{name}"
        );
        assert_eq!(
            s.audit_anchor("head").await.expect("head"),
            Some(head),
            "{name}"
        );
        let page = s.audit_page(1, 10).await.expect("page");
        assert_eq!(
            page.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [2, 3],
            "{name}"
        );
        let range = s
            .audit_range(NOW + 2, NOW + 3, i64::MIN, 10)
            .await
            .expect("range");
        assert_eq!(range.len(), 1, "{name}");
        // Pruning leaves a checkpoint naming the last pruned record.
        let removed = s
            .audit_prune(NOW + 3, |seq, hash| format!("{seq}:{hash}"), NOW)
            .await
            .expect("prune");
        assert_eq!(removed, 2, "{name}");
        let c = s
            .audit_anchor("checkpoint")
            .await
            .expect("cp")
            .expect("exists");
        assert_eq!((c.seq, c.hash.clone()), (2, rows[1].hash.clone()), "{name}");
        assert_eq!(c.signature, format!("2:{}", rows[1].hash), "{name}");
        // A duplicate seq is refused: the chain is append-only.
        assert!(
            s.write_batch(&[], &[], &rows[2..], None, NOW)
                .await
                .is_err(),
            "{name}"
        );
    }
}

#[tokio::test]
async fn large_batches_settle_every_record_once_across_windows() {
    use switchyard_store::Settlement;
    for (name, db) in stores().await {
        let s = &db.store;
        setup(s, "1000").await;
        key(s, "k", Some("100"), Some(LimitReset::Daily)).await;
        key(s, "other", None, None).await;
        // 600 records (three multi-row chunks of different sizes), half of them the next day,
        // one BYOK, and one id twice: each is charged once, per its own day.
        let mut batch: Vec<Settlement> = (0..600)
            .map(|i| {
                let at = if i < 300 { NOW } else { NOW + DAY_MS };
                let key = if i % 2 == 0 { "k" } else { "other" };
                let mut record = generation(&format!("b{i}"), key, "0.01", at);
                record.is_byok = i == 599;
                Settlement {
                    record,
                    hold_id: None,
                    lease_id: None,
                }
            })
            .collect();
        batch.push(batch[0].clone());
        s.write_batch(&batch, &[], &[], None, NOW + DAY_MS)
            .await
            .expect("batch");
        let (count, total) = s.generation_totals("acct").await.expect("totals");
        assert_eq!((count, total), (600, usd("5.99")), "{name}");
        let account = s.account("acct").await.expect("account").expect("exists");
        assert_eq!(account.usage, usd("5.99"), "{name}");
        assert_eq!(account.byok_usage, usd("0.01"), "{name}");
        // The activity report's daily totals count each record once, on its own day.
        let days = s
            .activity(
                "acct",
                NOW - NOW % DAY_MS,
                NOW - NOW % DAY_MS + 2 * DAY_MS,
                None,
            )
            .await
            .expect("activity");
        let requests: u64 = days.iter().map(|d| d.requests).sum();
        let usage: i64 = days.iter().map(|d| d.usage.picos()).sum();
        let byok: i64 = days.iter().map(|d| d.byok_usage.picos()).sum();
        assert_eq!(
            (requests, Money::from_picos(usage), Money::from_picos(byok)),
            (600, usd("5.99"), usd("0.01")),
            "{name}"
        );
        assert_eq!(
            days.len(),
            2,
            "{name}: one row per day (one model, one provider)"
        );
        let k = s
            .key("k", NOW + DAY_MS)
            .await
            .expect("key")
            .expect("exists");
        assert_eq!(k.usage.total, usd("3"), "{name}");
        // Only the second day's records count in the daily window.
        assert_eq!(k.usage.daily, usd("1.5"), "{name}");
        assert_eq!(k.last_used_at, Some(NOW + DAY_MS), "{name}");
        let other = s
            .key("other", NOW + DAY_MS)
            .await
            .expect("key")
            .expect("exists");
        assert_eq!(other.usage.total, usd("2.99"), "{name}");
        assert_eq!(other.byok_usage.total, usd("0.01"), "{name}");
        // The same batch again charges nothing.
        s.write_batch(&batch, &[], &[], None, NOW + DAY_MS)
            .await
            .expect("retry");
        let account = s.account("acct").await.expect("account").expect("exists");
        assert_eq!(account.usage, usd("5.99"), "{name}");
    }
}

#[tokio::test]
async fn generation_totals_match_settled_usage() {
    for (name, db) in stores().await {
        let s = &db.store;
        setup(s, "1").await;
        key(s, "k", None, None).await;
        for (id, cost, byok) in [
            ("a", "0.1", false),
            ("b", "0.25", false),
            ("c", "0.5", true),
        ] {
            let record = GenerationRecord {
                id: id.into(),
                account_id: "acct".into(),
                key_hash: "k".into(),
                created_at: NOW,
                model: "m/x".into(),
                provider_slug: "p".into(),
                provider_name: "P".into(),
                cost: usd(cost),
                is_byok: byok,
                status: 200,
                ..GenerationRecord::default()
            };
            s.settle(&record, None).await.expect("settle");
        }
        let (n, total) = s.generation_totals("acct").await.expect("totals");
        assert_eq!((n, total), (3, usd("0.35")), "{name}");
        let a = s.account("acct").await.expect("read").expect("exists");
        assert_eq!(a.usage, total, "{name}");
    }
}

#[tokio::test]
async fn activity_aggregates_per_day_model_and_provider() {
    use switchyard_store::ActivityRow;
    let today = NOW.div_euclid(DAY_MS);
    let yesterday = today - 1;
    for (name, db) in stores().await {
        let s = &db.store;
        setup(s, "10").await;
        key(s, "k1", None, None).await;
        key(s, "k2", None, None).await;
        s.ensure_account("other", "Other", NOW)
            .await
            .expect("account");
        s.add_credits("other", usd("10")).await.expect("credits");
        s.create_key(
            &NewKey {
                hash: "o".into(),
                label: "sk-or-v1-oth...0000".into(),
                account_id: "other".into(),
                name: "o".into(),
                is_management: false,
                limit: None,
                limit_reset: None,
                include_byok_in_limit: false,
                expires_at: None,
                creator_user_id: None,
            },
            NOW,
        )
        .await
        .expect("key");
        // (id, key, model, provider, cost, byok, at, prompt, completion, reasoning, cached)
        let rows = [
            // Yesterday, first and last millisecond included.
            (
                "a",
                "k1",
                "m/x",
                "p",
                "0.1",
                false,
                yesterday * DAY_MS,
                10,
                5,
                2,
                3,
            ),
            (
                "b",
                "k2",
                "m/x",
                "p",
                "0.2",
                false,
                today * DAY_MS - 1,
                20,
                7,
                0,
                0,
            ),
            (
                "c",
                "k1",
                "m/x",
                "p",
                "0.4",
                true,
                yesterday * DAY_MS + 5,
                1,
                1,
                1,
                1,
            ),
            (
                "d",
                "k1",
                "m/y",
                "q",
                "0.05",
                false,
                yesterday * DAY_MS + 9,
                4,
                4,
                0,
                0,
            ),
            (
                "e",
                "k1",
                "m/x",
                "r",
                "0.07",
                false,
                yesterday * DAY_MS + 9,
                3,
                3,
                0,
                0,
            ),
            // The day before.
            (
                "f",
                "k1",
                "m/x",
                "p",
                "0.3",
                false,
                (yesterday - 1) * DAY_MS + 1,
                6,
                6,
                6,
                6,
            ),
            // Outside the window: today (the end is exclusive) and 40 days ago.
            (
                "g",
                "k1",
                "m/x",
                "p",
                "1",
                false,
                today * DAY_MS,
                1,
                1,
                1,
                1,
            ),
            (
                "h",
                "k1",
                "m/x",
                "p",
                "1",
                false,
                (today - 40) * DAY_MS,
                1,
                1,
                1,
                1,
            ),
            // Another account, same day.
            (
                "i",
                "o",
                "m/x",
                "p",
                "1",
                false,
                yesterday * DAY_MS + 1,
                1,
                1,
                1,
                1,
            ),
        ];
        for (id, k, model, provider, cost, byok, at, tp, tc, tr, tk) in rows {
            let mut g = generation(id, k, cost, at);
            if k == "o" {
                g.account_id = "other".into();
            }
            g.model = model.into();
            g.provider_slug = provider.into();
            g.provider_name = provider.to_uppercase();
            g.is_byok = byok;
            g.tokens_prompt = tp;
            g.tokens_completion = tc;
            g.tokens_reasoning = tr;
            g.tokens_cached = tk;
            s.settle(&g, None).await.expect("settle");
        }
        let row =
            |day: i64, model: &str, provider: &str, counts: [u64; 5], usage: &str, byok: &str| {
                ActivityRow {
                    day,
                    model: model.into(),
                    provider_slug: provider.into(),
                    provider_name: provider.to_uppercase(),
                    requests: counts[0],
                    usage: usd(usage),
                    byok_usage: usd(byok),
                    prompt_tokens: counts[1],
                    completion_tokens: counts[2],
                    reasoning_tokens: counts[3],
                    cached_tokens: counts[4],
                }
            };
        let since = (today - 30) * DAY_MS;
        let until = today * DAY_MS;
        let all = s
            .activity("acct", since, until, None)
            .await
            .expect("activity");
        assert_eq!(
            all,
            [
                row(yesterday, "m/x", "p", [3, 31, 13, 3, 4], "0.3", "0.4"),
                row(yesterday, "m/x", "r", [1, 3, 3, 0, 0], "0.07", "0"),
                row(yesterday, "m/y", "q", [1, 4, 4, 0, 0], "0.05", "0"),
                row(yesterday - 1, "m/x", "p", [1, 6, 6, 6, 6], "0.3", "0"),
            ],
            "{name}"
        );
        let one_key = s
            .activity("acct", since, until, Some("k2"))
            .await
            .expect("activity");
        assert_eq!(
            one_key,
            [row(yesterday, "m/x", "p", [1, 20, 7, 0, 0], "0.2", "0")],
            "{name}"
        );
        let one_day = s
            .activity("acct", (yesterday - 1) * DAY_MS, yesterday * DAY_MS, None)
            .await
            .expect("activity");
        assert_eq!(
            one_day,
            [row(yesterday - 1, "m/x", "p", [1, 6, 6, 6, 6], "0.3", "0")],
            "{name}"
        );
        assert!(s
            .activity("acct", since, until, Some("unknown"))
            .await
            .expect("activity")
            .is_empty());
        assert!(s
            .activity("nobody", since, until, None)
            .await
            .expect("activity")
            .is_empty());
    }
}

fn preset_version<'a>(
    prompt: Option<&'a str>,
    config: &'a str,
) -> switchyard_store::NewPresetVersion<'a> {
    switchyard_store::NewPresetVersion {
        system_prompt: prompt,
        config,
        creator_id: "k",
    }
}

#[tokio::test]
async fn presets_keep_every_version_and_designate_the_last() {
    for (name, db) in stores().await {
        let s = &db.store;
        setup(s, "1").await;
        s.ensure_account("other", "Other", NOW)
            .await
            .expect("account");
        let first = s
            .save_preset_version(
                "acct",
                "p",
                &preset_version(Some("Be brief."), r#"{"model":"a/b"}"#),
                NOW,
            )
            .await
            .expect("save");
        let v1 = first.version.clone().expect("designated");
        assert_eq!(
            (v1.version, v1.system_prompt.as_deref()),
            (1, Some("Be brief.")),
            "{name}"
        );
        assert_eq!(
            first.preset.designated_version_id.as_deref(),
            Some(v1.id.as_str()),
            "{name}"
        );
        assert_eq!(
            (first.preset.slug.as_str(), first.preset.status.as_str()),
            ("p", "active"),
            "{name}"
        );
        let second = s
            .save_preset_version(
                "acct",
                "p",
                &preset_version(None, r#"{"temperature":0.5}"#),
                NOW + 10,
            )
            .await
            .expect("save");
        let v2 = second.version.clone().expect("designated");
        assert_eq!(
            (v2.version, v2.system_prompt.as_deref(), v2.config.as_str()),
            (2, None, r#"{"temperature":0.5}"#),
            "{name}"
        );
        assert_eq!(second.preset.id, first.preset.id, "{name}: same preset");
        assert_eq!(
            (second.preset.created_at, second.preset.updated_at),
            (NOW, NOW + 10),
            "{name}"
        );
        // The read the request path makes sees the designated (newest) version.
        let read = s.preset("acct", "p").await.expect("read").expect("exists");
        assert_eq!(read, second, "{name}");
        // Every version is kept, oldest first, and each can be read alone.
        let (versions, total) = s
            .preset_versions("acct", "p", 0, 50)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(total, 2, "{name}");
        assert_eq!(versions, vec![v1.clone(), v2.clone()], "{name}");
        let (page, total) = s
            .preset_versions("acct", "p", 1, 1)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!((page, total), (vec![v2.clone()], 2), "{name}");
        assert_eq!(
            s.preset_version("acct", "p", 1).await.expect("read"),
            Some(v1),
            "{name}"
        );
        assert_eq!(
            s.preset_version("acct", "p", 3).await.expect("read"),
            None,
            "{name}"
        );
        // Another account neither sees the preset nor collides with its slug.
        assert_eq!(s.preset("other", "p").await.expect("read"), None, "{name}");
        assert_eq!(
            s.preset_versions("other", "p", 0, 50).await.expect("read"),
            None,
            "{name}"
        );
        assert_eq!(
            s.preset_version("other", "p", 1).await.expect("read"),
            None,
            "{name}"
        );
        let theirs = s
            .save_preset_version("other", "p", &preset_version(None, "{}"), NOW)
            .await
            .expect("save");
        assert_ne!(theirs.preset.id, first.preset.id, "{name}");
        assert_eq!(theirs.version.expect("designated").version, 1, "{name}");
    }
}

#[tokio::test]
async fn presets_list_newest_update_first_with_pages() {
    for (name, db) in stores().await {
        let s = &db.store;
        setup(s, "1").await;
        for (i, slug) in ["a", "b", "c"].iter().enumerate() {
            s.save_preset_version("acct", slug, &preset_version(None, "{}"), NOW + i as i64)
                .await
                .expect("save");
        }
        // Updating `a` makes it the most recent.
        s.save_preset_version("acct", "a", &preset_version(None, "{}"), NOW + 10)
            .await
            .expect("save");
        let (rows, total) = s.list_presets("acct", 0, 50).await.expect("list");
        let slugs: Vec<&str> = rows.iter().map(|r| r.slug.as_str()).collect();
        assert_eq!((slugs, total), (vec!["a", "c", "b"], 3), "{name}");
        let (rows, total) = s.list_presets("acct", 1, 1).await.expect("list");
        let slugs: Vec<&str> = rows.iter().map(|r| r.slug.as_str()).collect();
        assert_eq!((slugs, total), (vec!["c"], 3), "{name}");
        assert_eq!(
            s.list_presets("nobody", 0, 50).await.expect("list"),
            (vec![], 0),
            "{name}"
        );
    }
}

#[tokio::test]
async fn concurrent_preset_saves_number_versions_without_gaps() {
    for (name, db) in stores().await {
        let s = Arc::new(db.store.clone());
        setup(&s, "1").await;
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let s = Arc::clone(&s);
                tokio::spawn(async move {
                    let config = format!(r#"{{"seed":{i}}}"#);
                    s.save_preset_version("acct", "race", &preset_version(None, &config), NOW + i)
                        .await
                })
            })
            .collect();
        let mut saved = 0;
        for t in tasks {
            match t.await.expect("task") {
                Ok(_) => saved += 1,
                Err(switchyard_store::StoreError::Conflict(_)) => {}
                Err(e) => panic!("{name}: {e}"),
            }
        }
        assert!(saved >= 1, "{name}");
        let (versions, total) = s
            .preset_versions("acct", "race", 0, 100)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(total, saved, "{name}: every save that succeeded is kept");
        let numbers: Vec<i64> = versions.iter().map(|v| v.version).collect();
        let expected: Vec<i64> = (1..=i64::try_from(saved).expect("small")).collect();
        assert_eq!(numbers, expected, "{name}");
        let designated = s
            .preset("acct", "race")
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(
            designated.version.expect("designated").version,
            *expected.last().expect("one"),
            "{name}"
        );
    }
}

#[tokio::test]
async fn generations_keep_their_preset_and_router() {
    for (name, db) in stores().await {
        let s = &db.store;
        setup(s, "1").await;
        key(s, "k", None, None).await;
        let mut g = generation("gp", "k", "0.1", NOW);
        g.preset_id = Some("preset-1".into());
        g.router = Some("openrouter/auto".into());
        s.settle(&g, None).await.expect("settle");
        let plain = generation("gq", "k", "0.1", NOW);
        s.settle(&plain, None).await.expect("settle");
        assert_eq!(s.generation("gp").await.expect("read"), Some(g), "{name}");
        assert_eq!(
            s.generation("gq").await.expect("read"),
            Some(plain),
            "{name}"
        );
    }
}

#[tokio::test]
async fn the_generations_log_filters_searches_and_pages() {
    use switchyard_store::{GenerationQuery, Settlement};
    for (name, db) in stores().await {
        let s = &db.store;
        setup(s, "100").await;
        key(s, "k1", None, None).await;
        key(s, "k2", None, None).await;
        let mut records = Vec::new();
        for i in 0..6_i64 {
            let mut r = generation(
                &format!("gen-{i}"),
                if i % 2 == 0 { "k1" } else { "k2" },
                "0.01",
                NOW + i,
            );
            if i == 1 {
                r.model = "other/100%_model".into();
                r.provider_slug = "q".into();
                r.provider_name = "Q Cloud".into();
            }
            if i == 2 {
                r.status = 502;
            }
            r.end_user = (i == 3).then(|| "alice".to_owned());
            r.is_byok = i == 4;
            records.push(Settlement {
                record: r,
                hold_id: None,
                lease_id: None,
            });
        }
        let mut foreign = generation("gen-foreign", "k1", "0.01", NOW);
        foreign.account_id = "other".into();
        records.push(Settlement {
            record: foreign,
            hold_id: None,
            lease_id: None,
        });
        s.write_batch(&records, &[], &[], None, NOW + 10)
            .await
            .expect("batch");
        let ids = |q: GenerationQuery| async move {
            s.list_generations("acct", &GenerationQuery { limit: 50, ..q })
                .await
                .expect("list")
                .into_iter()
                .map(|g| g.id)
                .collect::<Vec<_>>()
        };
        let text = |t: &str| Some(t.to_owned());
        let cases = [
            (GenerationQuery::default(), vec![5, 4, 3, 2, 1, 0]),
            (
                GenerationQuery {
                    key_hash: text("k2"),
                    ..GenerationQuery::default()
                },
                vec![5, 3, 1],
            ),
            (
                GenerationQuery {
                    model: text("m/x"),
                    provider: text("p"),
                    ..GenerationQuery::default()
                },
                vec![5, 4, 3, 2, 0],
            ),
            (
                GenerationQuery {
                    succeeded: Some(false),
                    ..GenerationQuery::default()
                },
                vec![2],
            ),
            (
                GenerationQuery {
                    succeeded: Some(true),
                    end_user: text("alice"),
                    ..GenerationQuery::default()
                },
                vec![3],
            ),
            // The search matches an id exactly, or a part of a model or provider name, with
            // LIKE's wildcards taken literally.
            (
                GenerationQuery {
                    search: text("gen-4"),
                    ..GenerationQuery::default()
                },
                vec![4],
            ),
            (
                GenerationQuery {
                    search: text("100%_"),
                    ..GenerationQuery::default()
                },
                vec![1],
            ),
            (
                GenerationQuery {
                    search: text("Cloud"),
                    ..GenerationQuery::default()
                },
                vec![1],
            ),
            (
                GenerationQuery {
                    search: text("%"),
                    ..GenerationQuery::default()
                },
                vec![1],
            ),
            (
                GenerationQuery {
                    since_ms: Some(NOW + 2),
                    until_ms: Some(NOW + 4),
                    ..GenerationQuery::default()
                },
                vec![3, 2],
            ),
            (
                GenerationQuery {
                    offset: 4,
                    ..GenerationQuery::default()
                },
                vec![1, 0],
            ),
        ];
        for (query, expected) in cases {
            let expected: Vec<String> = expected.iter().map(|i| format!("gen-{i}")).collect();
            assert_eq!(ids(query.clone()).await, expected, "{name}: {query:?}");
        }
        let page = s
            .list_generations(
                "acct",
                &GenerationQuery {
                    limit: 2,
                    ..GenerationQuery::default()
                },
            )
            .await
            .expect("page");
        assert_eq!(page.len(), 2, "{name}");
        assert_eq!(
            page[0],
            s.generation("gen-5").await.expect("one").expect("exists")
        );

        // Usage per key and end user sums the same rows.
        let usage = s
            .usage_by_key_and_user("acct", NOW, NOW + 10, None)
            .await
            .expect("usage");
        let total: i64 = usage
            .iter()
            .map(|u| u.usage.picos() + u.byok_usage.picos())
            .sum();
        assert_eq!(total, usd("0.06").picos(), "{name}");
        let alice = usage
            .iter()
            .find(|u| u.end_user.as_deref() == Some("alice"))
            .expect("alice");
        assert_eq!(
            (alice.key_hash.as_str(), alice.requests),
            ("k2", 1),
            "{name}"
        );
        let byok: i64 = usage.iter().map(|u| u.byok_usage.picos()).sum();
        assert_eq!(byok, usd("0.01").picos(), "{name}");
        let k1 = s
            .usage_by_key_and_user("acct", NOW, NOW + 10, Some("k1"))
            .await
            .expect("usage");
        assert!(k1.iter().all(|u| u.key_hash == "k1"), "{name}");
        assert_eq!(k1.iter().map(|u| u.requests).sum::<u64>(), 3, "{name}");
    }
}

#[tokio::test]
async fn end_users_are_created_once_and_keep_their_limits_and_blocks() {
    for (name, db) in stores().await {
        let s = &db.store;
        setup(s, "100").await;
        let first = s.end_user_seen("acct", "alice", NOW).await.expect("seen");
        let again = s
            .end_user_seen("acct", "alice", NOW + 1000)
            .await
            .expect("seen");
        assert_eq!(again.first_seen, first.first_seen, "{name}");
        assert_eq!((again.requests, again.block.is_none()), (0, true), "{name}");
        // Another account's end user of the same id is another end user.
        assert!(s
            .end_user("other", "alice", NOW)
            .await
            .expect("read")
            .is_none());
        let limits = EndUserLimits {
            limit: Some(Some(usd("2.5"))),
            limit_reset: Some(Some(LimitReset::Weekly)),
            rpm: Some(Some(7)),
            tpm: None,
        };
        let u = s
            .set_end_user_limits("acct", "alice", &limits, NOW)
            .await
            .expect("limits")
            .expect("exists");
        assert_eq!(
            (u.limit, u.limit_reset, u.rpm, u.tpm),
            (Some(usd("2.5")), Some(LimitReset::Weekly), Some(7), None),
            "{name}"
        );
        let block = Block {
            reason: "abuse".into(),
            at: NOW,
            expires_at: Some(NOW + 60_000),
            source: BLOCKED_BY_OPERATOR.into(),
        };
        let u = s
            .block_end_user("acct", "alice", &block, NOW)
            .await
            .expect("block")
            .expect("exists");
        assert_eq!(u.block.as_ref(), Some(&block), "{name}");
        assert!(u.active_block(NOW + 59_999).is_some(), "{name}");
        assert!(u.active_block(NOW + 60_000).is_none(), "{name}");
        let listed = s
            .list_end_users("acct", NOW, true, 0, 10)
            .await
            .expect("list");
        assert_eq!(listed.len(), 1, "{name}");
        assert!(s
            .list_end_users("acct", NOW + 60_000, true, 0, 10)
            .await
            .expect("list")
            .is_empty());
        let u = s
            .unblock_end_user("acct", "alice", NOW)
            .await
            .expect("unblock")
            .expect("exists");
        assert!(u.block.is_none(), "{name}");
        // Strikes are counted within a window.
        for (i, at) in [NOW, NOW + 10, NOW + 20].iter().enumerate() {
            let row = StrikeRow {
                generation_id: format!("g{i}"),
                at: *at,
                categories: vec!["hate".into(), "violence".into()],
            };
            let n = s
                .add_strike("acct", "alice", &row, NOW + 5)
                .await
                .expect("strike");
            assert_eq!(n, [0u64, 1, 2][i], "{name}");
        }
        let strikes = s.strikes("acct", "alice", 0).await.expect("strikes");
        assert_eq!(strikes.len(), 3, "{name}");
        assert_eq!(strikes[0].categories, ["hate", "violence"], "{name}");
        // The key's end-user policy.
        key(s, "k", None, None).await;
        let policy = KeyUserPolicy {
            require_user: true,
            user_limit: Some(usd("1")),
            user_limit_reset: Some(LimitReset::Daily),
            rpm: Some(100),
            tpm: Some(10_000),
            user_rpm: Some(10),
            user_tpm: None,
        };
        let k = s
            .set_key_user_policy("k", &policy, NOW)
            .await
            .expect("policy")
            .expect("key");
        assert_eq!(k.end_users, policy, "{name}");
    }
}

#[tokio::test]
async fn a_generations_audit_records_are_found_by_its_id() {
    use switchyard_core::audit::{self, GENESIS};
    use switchyard_store::AuditRow;
    for (name, db) in stores().await {
        let s = &db.store;
        let mut prev = GENESIS.to_owned();
        let mut rows = Vec::new();
        for (seq, generation) in [(1, "g1"), (2, "g2"), (3, "g1")] {
            let body = audit::canonical_json(&serde_json::json!({"n": seq}));
            let hash = audit::record_hash(&prev, seq, &body);
            rows.push(AuditRow {
                seq,
                created_at: NOW + seq,
                generation_id: generation.into(),
                account_id: Some("acct".into()),
                body,
                prev_hash: prev.clone(),
                hash: hash.clone(),
            });
            prev = hash;
        }
        s.write_batch(&[], &[], &rows, None, NOW)
            .await
            .expect("batch");
        let found = s.audit_for_generation("g1").await.expect("records");
        assert_eq!(
            found.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [1, 3],
            "{name}"
        );
        assert!(s.audit_for_generation("g9").await.expect("none").is_empty());
        assert_eq!(
            s.audit_record(2).await.expect("one"),
            Some(rows[1].clone()),
            "{name}"
        );
        assert_eq!(s.audit_record(9).await.expect("none"), None, "{name}");
    }
}

#[tokio::test]
async fn concurrent_holds_never_overspend_an_end_user_or_the_key() {
    for (name, db) in stores().await {
        let s = Arc::new(db.store.clone());
        setup(&s, "100").await;
        key(&s, "k", Some("2"), None).await;
        for u in ["a", "b", "c"] {
            s.end_user_seen("acct", u, NOW).await.expect("seen");
        }
        // Each end user may spend 0.5 (daily); the key 2 in all. 60 holds of 0.1 by three end
        // users: exactly 5 each.
        let tasks: Vec<_> = (0..60)
            .map(|i| {
                let s = Arc::clone(&s);
                tokio::spawn(async move {
                    let user = ["a", "b", "c"][i % 3];
                    let id = format!("g{i}");
                    let hold = UserHold {
                        user: user.into(),
                        limit: Some(usd("0.5")),
                        reset: Some(LimitReset::Daily),
                    };
                    let result = s
                        .hold_for(&id, "k", "acct", Some(&hold), usd("0.1"), NOW)
                        .await
                        .expect("hold");
                    if result.is_ok() {
                        let mut record = generation(&id, "k", "0.1", NOW);
                        record.end_user = Some(user.into());
                        s.settle(&record, Some(&id)).await.expect("settle");
                    }
                    result
                })
            })
            .collect();
        let results: Vec<_> = futures::future::join_all(tasks)
            .await
            .into_iter()
            .map(|r| r.expect("join"))
            .collect();
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 15, "{name}");
        assert!(results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, HoldRefused::EndUserLimit { .. })));
        for u in ["a", "b", "c"] {
            let e = s
                .end_user("acct", u, NOW)
                .await
                .expect("read")
                .expect("user");
            assert_eq!(
                (e.usage.total, e.usage.daily, e.held, e.requests),
                (usd("0.5"), usd("0.5"), Money::ZERO, 5),
                "{name} {u}"
            );
        }
        // A released hold gives the end user's room back; a new day starts from zero.
        let hold = UserHold {
            user: "a".into(),
            limit: Some(usd("0.5")),
            reset: Some(LimitReset::Daily),
        };
        assert!(s
            .hold_for("x1", "k", "acct", Some(&hold), usd("0.1"), NOW)
            .await
            .expect("hold")
            .is_err());
        assert!(s
            .hold_for("x2", "k", "acct", Some(&hold), usd("0.1"), NOW + DAY_MS)
            .await
            .expect("hold")
            .is_ok());
        let e = s
            .end_user("acct", "a", NOW + DAY_MS)
            .await
            .expect("read")
            .expect("user");
        assert_eq!((e.held, e.usage.daily), (usd("0.1"), Money::ZERO), "{name}");
        assert!(s.release("x2").await.expect("release"), "{name}");
        let e = s
            .end_user("acct", "a", NOW + DAY_MS)
            .await
            .expect("read")
            .expect("user");
        assert_eq!(e.held, Money::ZERO, "{name}");
        // The key's limit holds too: 1.5 spent, 0.5 left.
        let none = UserHold {
            user: "d".into(),
            limit: None,
            reset: None,
        };
        s.end_user_seen("acct", "d", NOW).await.expect("seen");
        assert!(matches!(
            s.hold_for("x3", "k", "acct", Some(&none), usd("0.6"), NOW)
                .await
                .expect("hold"),
            Err(HoldRefused::KeyLimit { .. })
        ));
    }
}

fn lease_settlement(id: &str, cost: &str, lease: &str) -> switchyard_store::Settlement {
    switchyard_store::Settlement {
        record: generation(id, "k", cost, NOW),
        hold_id: None,
        lease_id: Some(lease.into()),
    }
}

#[tokio::test]
async fn leases_are_granted_consumed_returned_and_reclaimed() {
    const LEASE: std::time::Duration = std::time::Duration::from_secs(60);
    for (name, db) in stores().await {
        let a = db.store.clone().with_hold_lease(LEASE);
        setup(&a, "100").await;
        key(&a, "k", Some("10"), Some(LimitReset::Daily)).await;
        let b = Store::connect(&db.url)
            .await
            .expect("connect")
            .with_hold_lease(LEASE);
        // A slice is what was asked, at most half of what is left (share 2).
        let g = a
            .grant_lease("la", "k", "acct", usd("4"), usd("1"), 2, NOW)
            .await
            .expect("grant")
            .expect("granted");
        assert_eq!((g.slice, g.lease_amount), (usd("4"), usd("4")), "{name}");
        let g = b
            .grant_lease("lb", "k", "acct", usd("4"), usd("1"), 2, NOW)
            .await
            .expect("grant")
            .expect("granted");
        assert_eq!(g.slice, usd("3"), "{name}: half of the 6 left");
        // Leases count as held: a per-request hold sees only what they leave.
        assert!(
            matches!(
                a.hold("g", "k", "acct", usd("3.5"), NOW)
                    .await
                    .expect("hold"),
                Err(HoldRefused::KeyLimit { .. })
            ),
            "{name}"
        );
        // Not even the minimum fits in a share of what is left: refused, nothing taken.
        assert!(
            matches!(
                a.grant_lease("la", "k", "acct", usd("4"), usd("2"), 2, NOW)
                    .await
                    .expect("grant"),
                Err(HoldRefused::KeyLimit { .. })
            ),
            "{name}"
        );
        // Adding to a lease keeps one row.
        let g = a
            .grant_lease("la", "k", "acct", usd("1"), usd("1"), 2, NOW)
            .await
            .expect("grant")
            .expect("granted");
        assert_eq!((g.slice, g.lease_amount), (usd("1"), usd("5")), "{name}");
        // A settlement consumes its cost from its lease: held shrinks as spend grows.
        let batch = [lease_settlement("s1", "1.5", "la")];
        a.write_batch(&batch, &[], &[], None, NOW)
            .await
            .expect("batch");
        // Retried: charged and consumed once.
        a.write_batch(&batch, &[], &[], None, NOW)
            .await
            .expect("batch");
        let k = a.key("k", NOW).await.expect("read").expect("exists");
        assert_eq!((k.usage.total, k.held), (usd("1.5"), usd("6.5")), "{name}");
        let acct = a.account("acct").await.expect("read").expect("exists");
        assert_eq!((acct.usage, acct.held), (usd("1.5"), usd("6.5")), "{name}");
        // Returning gives back no more than is left, and closes the lease at nothing.
        assert_eq!(
            a.return_lease("la", usd("100"), true)
                .await
                .expect("return"),
            usd("3.5"),
            "{name}"
        );
        let leases = a.leases().await.expect("leases");
        assert_eq!(leases.len(), 1, "{name}");
        assert_eq!(
            (leases[0].id.as_str(), leases[0].owner.as_str()),
            ("lb", b.instance_id()),
            "{name}"
        );
        // Renewed by its owner only; reclaimed by anyone once lapsed.
        assert_eq!(a.renew_leases(NOW).await.expect("renew"), 0, "{name}");
        assert_eq!(
            b.renew_leases(NOW + 1_000).await.expect("renew"),
            1,
            "{name}"
        );
        assert_eq!(
            a.reclaim_leases(NOW + 60_000).await.expect("reclaim"),
            Money::ZERO,
            "{name}: not lapsed yet"
        );
        assert_eq!(
            a.reclaim_leases(NOW + 61_000).await.expect("reclaim"),
            usd("3"),
            "{name}"
        );
        let k = a.key("k", NOW).await.expect("read").expect("exists");
        assert_eq!((k.usage.total, k.held), (usd("1.5"), Money::ZERO), "{name}");
        let acct = a.account("acct").await.expect("read").expect("exists");
        assert_eq!(acct.held, Money::ZERO, "{name}");
        assert!(a.leases().await.expect("leases").is_empty(), "{name}");
        // A settlement whose lease was reclaimed records its charge alone.
        a.write_batch(&[lease_settlement("s2", "1", "lb")], &[], &[], None, NOW)
            .await
            .expect("batch");
        let k = a.key("k", NOW).await.expect("read").expect("exists");
        assert_eq!((k.usage.total, k.held), (usd("2.5"), Money::ZERO), "{name}");
    }
}

/// Spends 0.1 at a time from one store instance until refused: through a lease while one can
/// be taken, per request after. Returns the cost settled.
async fn spend_until_refused(s: Store, who: usize) -> i64 {
    let lease = format!("lease-{who}");
    let step = usd("0.1");
    let mut n = 0;
    let mut spent = 0i64;
    loop {
        let granted = s
            .grant_lease(&lease, "k", "acct", usd("0.3"), step, 2, NOW)
            .await
            .expect("grant");
        match granted {
            Ok(g) => {
                let mut left = g.slice.picos();
                while left >= step.picos() {
                    n += 1;
                    let batch = [lease_settlement(&format!("w{who}-{n}"), "0.1", &lease)];
                    s.write_batch(&batch, &[], &[], None, NOW)
                        .await
                        .expect("batch");
                    left -= step.picos();
                    spent += step.picos();
                }
            }
            Err(_) => {
                n += 1;
                let id = format!("w{who}-{n}");
                if s.hold(&id, "k", "acct", step, NOW)
                    .await
                    .expect("hold")
                    .is_err()
                {
                    break;
                }
                s.settle(&generation(&id, "k", "0.1", NOW), Some(&id))
                    .await
                    .expect("settle");
                spent += step.picos();
            }
        }
    }
    s.return_lease(&lease, usd("100"), true)
        .await
        .expect("return");
    spent
}

#[tokio::test]
async fn concurrent_leases_and_holds_never_overspend() {
    for (name, db) in stores().await {
        setup(&db.store, "100").await;
        key(&db.store, "k", Some("2"), None).await;
        let mut replicas = vec![db.store.clone()];
        for _ in 0..2 {
            replicas.push(Store::connect(&db.url).await.expect("connect"));
        }
        let tasks: Vec<_> = replicas
            .iter()
            .enumerate()
            .flat_map(|(i, s)| {
                (0..3).map(move |j| tokio::spawn(spend_until_refused(s.clone(), i * 3 + j)))
            })
            .collect();
        let spent: i64 = futures::future::join_all(tasks)
            .await
            .into_iter()
            .map(|r| r.expect("task"))
            .sum();
        let s = &db.store;
        let k = s.key("k", NOW).await.expect("read").expect("exists");
        assert!(k.usage.total <= usd("2"), "{name}: {:?}", k.usage.total);
        assert_eq!(k.usage.total.picos(), spent, "{name}");
        assert_eq!(k.held, Money::ZERO, "{name}");
        assert!(s.leases().await.expect("leases").is_empty(), "{name}");
        let (_, total) = s.generation_totals("acct").await.expect("totals");
        assert_eq!(
            total, k.usage.total,
            "{name}: spend is the sum of generation costs"
        );
        // Everything was spent but what leases still in use held when the last one was refused
        // (less than a step each).
        assert!(k.usage.total >= usd("1"), "{name}: {:?}", k.usage.total);
    }
}

#[tokio::test]
async fn changes_reach_listeners_on_postgres() {
    use switchyard_store::{Change, Dialect, Heard};
    for (name, db) in stores().await {
        let s = &db.store;
        setup(s, "1").await;
        key(s, "notified-key", None, None).await;
        let Some(mut listener) = s.listen().await.expect("listen") else {
            assert_eq!(s.dialect(), Dialect::Sqlite, "{name}");
            continue;
        };
        // Changes made by another process on the same database.
        let other = Store::connect(&db.url).await.expect("connect");
        other
            .update_key(
                "notified-key",
                &KeyUpdate {
                    disabled: Some(true),
                    ..KeyUpdate::default()
                },
                NOW,
            )
            .await
            .expect("update");
        other.add_credits("acct", usd("1")).await.expect("credits");
        other
            .set_account_settings("acct", &serde_json::json!({}))
            .await
            .expect("settings");
        other
            .create_guardrail("acct", "g1", "{}", NOW)
            .await
            .expect("guardrail");
        let mut want = vec![
            Change::Key("notified-key".into()),
            Change::Credits("acct".into()),
            Change::Settings("acct".into()),
            Change::Guardrails("acct".into()),
        ];
        // The channel is the database's: other tests' changes may arrive in between.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !want.is_empty() {
            let heard = tokio::time::timeout_at(deadline, listener.recv())
                .await
                .expect("notified in time")
                .expect("recv");
            if let Heard::Change(c) = heard {
                want.retain(|w| *w != c);
            }
        }
    }
}

/// Inserts `count` generations of account `acct` spread over the year before `NOW`, in
/// statements of 100,000 rows generated by the database itself.
async fn bulk_generations(s: &Store, count: i64) {
    const PER_STATEMENT: i64 = 100_000;
    let mut from = 0;
    while from < count {
        let to = (from + PER_STATEMENT).min(count);
        s.raw_execute(&format!(
            "WITH RECURSIVE n(i) AS (SELECT CAST({from} AS BIGINT) UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {to}) \
             INSERT INTO generations (id, account_id, key_hash, created_at, model, provider_slug, provider_name, \
             streamed, cancelled, finish_reason, tokens_prompt, tokens_completion, tokens_reasoning, tokens_cached, \
             cost, is_byok, latency_ms, generation_time_ms, status) \
             SELECT 'gen-' || i, 'acct', 'k', {NOW} - 1 - (i * 31536) % 31536000000, 'vendor/model-' || (i % 8), \
             'p' || (i % 3), 'Provider', 0, 0, 'stop', 100 + i % 50, 20 + i % 10, 0, 0, 140000000 + i % 1000, 0, \
             200, 900, 200 FROM n"
        ))
        .await
        .expect("bulk insert");
        from = to;
    }
    // The daily totals, built from them as migration 0010 builds them from existing records
    // (settlements keep them up to date; these rows did not come through settlement).
    s.raw_execute(
        "INSERT INTO activity_daily (account_id, day, key_hash, model, provider_slug, provider_name, requests, \
         usage, byok_usage, prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens) \
         SELECT account_id, CAST(created_at / 86400000 AS BIGINT), key_hash, model, provider_slug, provider_name, \
         COUNT(*), SUM(CASE WHEN is_byok = 0 THEN cost ELSE 0 END), SUM(CASE WHEN is_byok = 1 THEN cost ELSE 0 END), \
         SUM(tokens_prompt), SUM(tokens_completion), SUM(tokens_reasoning), SUM(tokens_cached) \
         FROM generations GROUP BY account_id, CAST(created_at / 86400000 AS BIGINT), key_hash, model, \
         provider_slug, provider_name",
    )
    .await
    .expect("daily totals");
}

/// The fastest of three runs of `f`, in milliseconds.
async fn best_of_three<F, Fut>(mut f: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = std::time::Instant::now();
        f().await;
        best = best.min(t.elapsed().as_secs_f64() * 1000.0);
    }
    best
}

#[tokio::test]
async fn a_million_generations_keep_activity_and_lookups_fast() {
    const ROWS: i64 = 1_000_000;
    for (name, db) in stores().await {
        let s = &db.store;
        setup(s, "1").await;
        let began = std::time::Instant::now();
        bulk_generations(s, ROWS).await;
        let inserted = began.elapsed();
        let today = NOW - NOW % DAY_MS;
        let activity_ms = best_of_three(|| async {
            let rows = s
                .activity("acct", today - 30 * DAY_MS, today, None)
                .await
                .expect("activity");
            // Every day of the window, each of 8 models on one of 3 providers.
            assert!(rows.len() >= 30 * 24, "{name}: {}", rows.len());
        })
        .await;
        let lookup_ms = best_of_three(|| async {
            let g = s.generation("gen-123457").await.expect("read");
            assert!(g.is_some(), "{name}");
        })
        .await;
        let row_bytes: i64 = match s.dialect() {
            switchyard_store::Dialect::Postgres => {
                sqlx_scalar(&db.url, "SELECT CAST(AVG(pg_column_size(g.*)) AS BIGINT) FROM generations g").await
            }
            switchyard_store::Dialect::Sqlite => {
                sqlx_scalar(&db.url, "SELECT (SELECT page_count FROM pragma_page_count()) * (SELECT page_size FROM pragma_page_size()) / 1000000").await
            }
        };
        eprintln!(
            "{name}: {ROWS} generations inserted in {inserted:?}; activity over 30 days {activity_ms:.1} ms, \
             lookup by id {lookup_ms:.2} ms; {row_bytes} bytes a row ({})",
            if s.dialect() == switchyard_store::Dialect::Postgres { "pg_column_size" } else { "database file / rows, indexes included" }
        );
        assert!(
            activity_ms < 100.0,
            "{name}: activity took {activity_ms} ms"
        );
        assert!(lookup_ms < 100.0, "{name}: lookup took {lookup_ms} ms");
        // Retention deletes by age, in batches.
        let pruned = s
            .prune_generations(NOW - 335 * DAY_MS)
            .await
            .expect("prune");
        assert!(pruned > 0, "{name}");
        let (left, _) = s.generation_totals("acct").await.expect("totals");
        assert_eq!(left + i64::try_from(pruned).expect("count"), ROWS, "{name}");
        if s.dialect() == switchyard_store::Dialect::Postgres {
            // The schema stays behind: it need not keep a million rows.
            s.raw_execute("TRUNCATE generations")
                .await
                .expect("truncate");
        }
    }
}

/// One integer from `sql`, over a connection of its own.
async fn sqlx_scalar(url: &str, sql: &str) -> i64 {
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect");
    sqlx::query_scalar(sql)
        .fetch_one(&mut conn)
        .await
        .expect("scalar")
}
