#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Three gateways (the binary, three processes) on one PostgreSQL database, when
//! `SWITCHYARD_TEST_POSTGRES_URL` is set: concurrent load on one key across all three against a
//! small limit and a large one never goes over either and serves every request the large one
//! covers (from budget leases); a key disabled through one is refused by the others at once
//! (change notifications); the lease of a replica killed with SIGKILL is reclaimed by the others
//! once lapsed; and at the end nothing stays held, spend is the sum of the generation records'
//! costs and `switchyard audit verify` passes over what every replica wrote. And a gateway whose
//! database goes away for seven seconds under load (a proxy cuts every connection, as a restart
//! does) answers every request within a bounded time, serves again by itself, and leaves a ledger
//! that agrees with its records.

mod support;

use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{check_ledger, cli, postgres, serve, setup_on, sigterm, upstream};
use switchyard_core::keys::hash_key;
use switchyard_core::money::Money;
use switchyard_store::Store;

/// The gateways, killed if the test ends early (a failed assertion).
struct Replicas(Vec<(Child, String)>);

impl Drop for Replicas {
    fn drop(&mut self) {
        for (child, _) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The status and body of a chat request.
async fn send(client: &reqwest::Client, base: &str, key: &str) -> (u16, String) {
    let r = client
        .post(format!("{base}/api/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": "t/m", "messages": [{"role": "user", "content": "quick"}]}))
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

async fn status(client: &reqwest::Client, base: &str, key: &str) -> u16 {
    send(client, base, key).await.0
}

/// Sends `n` requests at once with `key`, spread over `bases`; returns the answers that were
/// not a 200.
async fn load(
    client: &reqwest::Client,
    bases: &[String],
    key: &str,
    n: usize,
) -> Vec<(u16, String)> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (client, base, key) = (
                client.clone(),
                bases[i % bases.len()].clone(),
                key.to_owned(),
            );
            tokio::spawn(async move { send(&client, &base, &key).await })
        })
        .collect();
    futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("join"))
        .filter(|(status, _)| *status != 200)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_gateways_share_one_database_exactly() {
    let Some(db) = postgres().await else { return };
    let upstream = upstream().await;
    // Holds and leases lapse after a second unless renewed (set for PostgreSQL by `setup_on`).
    let setup = setup_on(&upstream, Some(db));
    let dir = setup.dir.path();
    // A hold is about 0.0002 (100 completion tokens at most) and an answer costs 0.00014: the
    // small limit covers about ten requests, the large one far more than the load.
    let small = cli(
        dir,
        &["keys", "create", "--name", "small", "--limit", "0.002"],
    );
    let large = cli(dir, &["keys", "create", "--name", "large", "--limit", "50"]);
    let solo = cli(dir, &["keys", "create", "--name", "solo"]);
    let admin = cli(dir, &["keys", "create", "--name", "admin", "--management"]);
    let mut gateways = Replicas((0..3).map(|_| serve(&setup)).collect());
    let bases: Vec<String> = gateways.0.iter().map(|(_, b)| b.clone()).collect();
    let client = reqwest::Client::new();
    let store = Store::connect(&setup.db).await.expect("store");

    // The large limit: every request served, from leases.
    let began = Instant::now();
    let refused = load(&client, &bases, &large, 150).await;
    assert!(refused.is_empty(), "{refused:?}");
    eprintln!("150 requests on the large key in {:?}", began.elapsed());
    let leases = store.leases().await.expect("leases");
    assert!(
        leases.iter().any(|l| l.key_hash == hash_key(&large)),
        "{leases:?}"
    );
    // The small limit: never over, however the 60 requests fall on the three gateways.
    let refused = load(&client, &bases, &small, 60).await;
    let served = 60 - refused.len();
    assert!((1..=14).contains(&served), "{served} served");
    assert!(refused.iter().all(|(s, _)| *s == 402), "{refused:?}");
    let k = store
        .key(&hash_key(&small), 0)
        .await
        .expect("read")
        .expect("key");
    assert!(
        k.usage.total.picos() + k.held.picos() <= Money::parse_usd("0.002").expect("usd").picos(),
        "{:?} + {:?}",
        k.usage.total,
        k.held
    );

    // A key disabled through the first gateway is refused by the other two at once (their
    // caches would keep it for a second without the change notification).
    for base in &bases[1..] {
        assert_eq!(status(&client, base, &setup.key).await, 200);
    }
    let response = client
        .patch(format!("{}/api/v1/keys/{}", bases[0], hash_key(&setup.key)))
        .bearer_auth(&admin)
        .json(&json!({"disabled": true}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let disabled_at = Instant::now();
    for base in &bases[1..] {
        while status(&client, base, &setup.key).await == 200 {
            assert!(
                disabled_at.elapsed() < Duration::from_secs(1),
                "a disabled key was still served by another gateway a second later"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    eprintln!(
        "disabled key refused everywhere after {:?}",
        disabled_at.elapsed()
    );

    // The third gateway takes a lease for a key only it serves, then is killed: the others
    // reclaim the lease once it lapsed.
    assert_eq!(status(&client, &bases[2], &solo).await, 200);
    let solo_hash = hash_key(&solo);
    let owner = store
        .leases()
        .await
        .expect("leases")
        .into_iter()
        .find(|l| l.key_hash == solo_hash)
        .expect("a lease for the key")
        .owner;
    let (mut killed, _) = gateways.0.pop().expect("third");
    killed.kill().expect("SIGKILL");
    killed.wait().expect("reaped");
    let deadline = Instant::now() + Duration::from_secs(30);
    while store
        .leases()
        .await
        .expect("leases")
        .iter()
        .any(|l| l.owner == owner)
    {
        assert!(
            Instant::now() < deadline,
            "the killed gateway's leases stayed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let k = store.key(&solo_hash, 0).await.expect("read").expect("key");
    assert_eq!(k.held, Money::ZERO);
    store.close().await;

    // The others stop cleanly: nothing stays held, spend is the sum of the generation costs,
    // and the audit chain every gateway wrote to verifies.
    for (child, _) in &gateways.0 {
        sigterm(child);
    }
    for (child, _) in &mut gateways.0 {
        assert!(child.wait().expect("exit").success());
    }
    let (n, _) = check_ledger(&setup.db).await;
    assert!(n >= 150, "{n} generations");
    cli(dir, &["audit", "verify"]);
}

/// A TCP proxy in front of PostgreSQL that can play a database restart: every open connection
/// cut, new ones refused, until it is brought back.
struct Proxy {
    addr: std::net::SocketAddr,
    down: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (down, watch) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                if *watch.borrow() {
                    drop(client);
                    continue;
                }
                let mut watch = watch.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = watch.wait_for(|down| *down) => {}
                    }
                });
            }
        });
        Proxy { addr, down }
    }

    fn set_down(&self, down: bool) {
        self.down.send_replace(down);
    }
}

/// The next answer's status (recorded with its duration in `seen`).
async fn next(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(u16, Duration)>,
    seen: &mut Vec<(u16, Duration)>,
    deadline: tokio::time::Instant,
) -> u16 {
    let got = tokio::time::timeout_at(deadline, rx.recv())
        .await
        .expect("answers keep coming")
        .expect("clients running");
    seen.push(got);
    got.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_under_load_fails_requests_cleanly_and_charges_nothing_twice() {
    let Some(db) = postgres().await else { return };
    // The gateway reaches the database through the proxy.
    let (scheme, rest) = db.split_once("://").expect("url");
    let (userinfo, rest) = rest.rsplit_once('@').map_or(("", rest), |(u, r)| (u, r));
    let (authority, path) = rest.split_once('/').expect("path");
    let proxy = Proxy::start(authority.to_owned()).await;
    let at = if userinfo.is_empty() { "" } else { "@" };
    let proxied = format!("{scheme}://{userinfo}{at}{}/{path}", proxy.addr);
    let upstream = upstream().await;
    let setup = setup_on(&upstream, Some(proxied));
    let mut gateway = Replicas(vec![serve(&setup)]);
    let base = gateway.0[0].1.clone();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");

    // Clients send requests without pause, before, during and after the restart.
    let stop = tokio::sync::watch::channel(false);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u16, Duration)>();
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (client, base, key, tx, stop) = (
            client.clone(),
            base.clone(),
            setup.key.clone(),
            tx.clone(),
            stop.1.clone(),
        );
        clients.push(tokio::spawn(async move {
            while !*stop.borrow() {
                let began = Instant::now();
                let status = match client
                    .post(format!("{base}/api/v1/chat/completions"))
                    .bearer_auth(&key)
                    .json(&json!({"model": "t/m", "messages": [{"role": "user", "content": "quick"}]}))
                    .send()
                    .await
                {
                    Ok(r) => r.status().as_u16(),
                    Err(e) => panic!("a request got no answer: {e}"),
                };
                if tx.send((status, began.elapsed())).is_err() {
                    return;
                }
            }
        }));
    }
    drop(tx);
    let mut seen: Vec<(u16, Duration)> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut served = 0;
    while served < 100 {
        if next(&mut rx, &mut seen, deadline).await == 200 {
            served += 1;
        }
    }
    // PostgreSQL "restarts": every connection cut, none accepted for seven seconds (longer
    // than the store waits for a connection).
    proxy.set_down(true);
    let down_at = seen.len();
    tokio::time::sleep(Duration::from_secs(7)).await;
    proxy.set_down(false);
    // The gateway recovers by itself: answers are served again.
    let mut after = 0;
    while after < 100 {
        if next(&mut rx, &mut seen, deadline).await == 200 {
            after += 1;
        }
    }
    stop.0.send_replace(true);
    for c in clients {
        c.await.expect("client");
    }
    while let Some(got) = rx.recv().await {
        seen.push(got);
    }
    let failed: Vec<&(u16, Duration)> = seen.iter().filter(|(s, _)| *s != 200).collect();
    eprintln!(
        "{} answers, {} while or after the database was away; not served: {failed:?}",
        seen.len(),
        seen.len() - down_at
    );
    // Every request was answered within a bounded wait: served, refused with a 503 (the store
    // out of reach), or withheld with the masked 500 once its records could not be committed
    // within `store.record_timeout_secs` (10 s).
    assert!(
        seen.iter()
            .all(|(s, d)| *s == 200 || *s == 503 || (*s == 500 && *d >= Duration::from_secs(10))),
        "{failed:?}"
    );
    let slowest = seen.iter().map(|(_, d)| *d).max().unwrap_or_default();
    assert!(
        slowest < Duration::from_secs(30),
        "slowest answer {slowest:?}"
    );

    // Nothing charged twice, nothing left held: the ledger agrees with the records.
    for (child, _) in &gateway.0 {
        sigterm(child);
    }
    for (child, _) in &mut gateway.0 {
        assert!(child.wait().expect("exit").success());
    }
    check_ledger(&setup.db).await;
    cli(setup.dir.path(), &["audit", "verify"]);
}
