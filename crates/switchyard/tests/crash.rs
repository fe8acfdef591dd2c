#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The binary killed with SIGKILL under load, restarted: no stuck hold, the ledger agrees with
//! the generation records, and every answer a client received has its generation and audit
//! records (`store.durability = "before_answer"`, the default), on SQLite and, when
//! `SWITCHYARD_TEST_POSTGRES_URL` is set, on PostgreSQL. Stopped with SIGTERM while streams are
//! open: the streams finish, the process exits 0, and every answered request is recorded.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use support::{
    check_ledger, postgres, request, request_saying, serve, setup, setup_on, sigterm, upstream,
    QUICK,
};
use switchyard_core::money::Money;
use switchyard_store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_leaves_a_consistent_ledger() {
    let upstream = upstream().await;
    let setup = setup(&upstream);
    let (mut child, base) = serve(&setup);
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..24 {
        let (client, base, key) = (client.clone(), base.clone(), setup.key.clone());
        tasks.push(tokio::spawn(async move {
            request(&client, &base, &key, i % 2 == 0).await
        }));
    }
    // Kill once the quick requests are answered and the streams are midway.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut answered = 0;
    for t in tasks.iter_mut().skip(1).step_by(2) {
        if t.await.expect("join").is_some() {
            answered += 1;
        }
    }
    assert!(Instant::now() < deadline);
    assert_eq!(answered, 12, "the non-streamed requests were served");
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    // The streams were cut by the kill.
    for t in tasks.into_iter().step_by(2) {
        let _ = t.await;
    }

    // Restart: holds left by the crash are released at start.
    let (mut child, base) = serve(&setup);
    assert!(
        request(&client, &base, &setup.key, false).await.is_some(),
        "serves after restart"
    );
    sigterm(&child);
    let status = child.wait().expect("exit");
    assert!(status.success(), "{status:?}");
    let (n, total) = check_ledger(&setup.db).await;
    assert!(n >= 1 && total > Money::ZERO, "{n} generations, {total}");
}

/// Keeps 16 clients sending (a quarter of the requests streamed) until `answers` answers have
/// arrived, kills the gateway with SIGKILL, restarts it, then checks that every answer a
/// client received has its generation and its audit record, and that the ledger agrees.
async fn sigkill_under_load_loses_no_answer_on(db: Option<String>, answers: usize) {
    let upstream = upstream().await;
    let setup = setup_on(&upstream, db);
    let (mut child, base) = serve(&setup);
    let client = reqwest::Client::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let began = Instant::now();
    let mut clients = Vec::new();
    for i in 0..16u64 {
        let (client, base, key, tx) = (client.clone(), base.clone(), setup.key.clone(), tx.clone());
        clients.push(tokio::spawn(async move {
            for n in 0u64.. {
                // Until the gateway is gone: then every request fails.
                let Some(id) = request_saying(&client, &base, &key, (i + n) % 4 == 0, QUICK).await
                else {
                    return;
                };
                if tx.send(id).is_err() {
                    return;
                }
            }
        }));
    }
    drop(tx);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut answered = HashSet::new();
    while answered.len() < answers {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(id)) => {
                answered.insert(id);
            }
            other => panic!("{} answers in two minutes ({other:?})", answered.len()),
        }
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let elapsed = began.elapsed();
    // The answers that completed before the kill reached their clients too.
    for c in clients {
        c.await.expect("client");
    }
    while let Some(id) = rx.recv().await {
        answered.insert(id);
    }
    eprintln!(
        "{} answers in {elapsed:?} ({:.0}/s) before SIGKILL",
        answered.len(),
        answered.len() as f64 / elapsed.as_secs_f64()
    );

    // The crashed gateway's budget leases (database holds), reclaimed once lapsed.
    let crashed_leases: Vec<String> = {
        let store = Store::connect(&setup.db).await.expect("store");
        let ids = store.leases().await.expect("leases");
        store.close().await;
        ids.into_iter().map(|l| l.id).collect()
    };
    // Restart: holds left by the crash are released (memory holds: at start; database holds
    // and leases: once lapsed, by the restarted gateway's sweep); then a clean stop.
    let (mut child, base) = serve(&setup);
    assert!(
        request(&client, &base, &setup.key, false).await.is_some(),
        "serves after restart"
    );
    let store = Store::connect(&setup.db).await.expect("store");
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.hold_count().await.expect("holds") > 0
        || store
            .leases()
            .await
            .expect("leases")
            .iter()
            .any(|l| crashed_leases.contains(&l.id))
    {
        assert!(
            Instant::now() < deadline,
            "the crashed gateway's holds or leases were not released"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    store.close().await;
    sigterm(&child);
    assert!(child.wait().expect("exit").success());
    check_ledger(&setup.db).await;

    let store = Store::connect(&setup.db).await.expect("store");
    let mut audited = HashSet::new();
    let mut after = 0;
    loop {
        let page = store.audit_page(after, 1000).await.expect("audit");
        let Some(last) = page.last() else { break };
        after = last.seq;
        audited.extend(page.into_iter().map(|r| r.generation_id));
    }
    let mut unrecorded = Vec::new();
    for id in &answered {
        let generation = store.generation(id).await.expect("read");
        if generation.is_none() || !audited.contains(id) {
            unrecorded.push(id.clone());
        }
    }
    store.close().await;
    assert!(
        unrecorded.is_empty(),
        "{} of {} answered requests have no generation or no audit record: {unrecorded:?}",
        unrecorded.len(),
        answered.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_answer() {
    sigkill_under_load_loses_no_answer_on(None, 1000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_answer_on_postgres() {
    if let Some(db) = postgres().await {
        sigkill_under_load_loses_no_answer_on(Some(db), 1000).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_open_streams_finish_and_records_every_answer() {
    let upstream = upstream().await;
    let setup = setup(&upstream);
    let (mut child, base) = serve(&setup);
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (client, base, key) = (client.clone(), base.clone(), setup.key.clone());
        tasks.push(tokio::spawn(async move {
            request(&client, &base, &key, i % 2 == 0).await
        }));
    }
    // Wait for the quick ones, so that the streams are open when the signal arrives.
    let mut ids = Vec::new();
    for t in tasks.iter_mut().skip(1).step_by(2) {
        ids.push(t.await.expect("join").expect("served"));
    }
    sigterm(&child);
    for (i, t) in tasks.into_iter().enumerate() {
        if i % 2 == 0 {
            ids.push(
                t.await
                    .expect("join")
                    .expect("an open stream was cut by a clean shutdown"),
            );
        }
    }
    let status = child.wait().expect("exit");
    assert!(status.success(), "{status:?}");
    let (n, _) = check_ledger(&setup.db).await;
    assert_eq!(n, 10, "every answered request is recorded");
    let store = Store::connect(&setup.db).await.expect("store");
    for id in &ids {
        assert!(
            store.generation(id).await.expect("read").is_some(),
            "{id} lost"
        );
    }
}
