#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The binary killed with SIGKILL under load, restarted: no stuck hold, the ledger agrees with
//! the generation records, and every answer a client received has its generation and audit
//! records (`store.durability = "before_answer"`, the default), on SQLite and, when
//! `SWITCHYARD_TEST_POSTGRES_URL` is set, on PostgreSQL. Stopped with SIGTERM while streams are
//! open: the streams finish, the process exits 0, and every answered request is recorded.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use serde_json::{json, Value};
use switchyard_core::money::Money;
use switchyard_store::Store;

/// An OpenAI-compatible upstream: JSON at once, or 40 SSE chunks 25 ms apart (3 chunks at once
/// when the prompt is [`QUICK`]).
async fn upstream() -> String {
    async fn handle(body: Bytes) -> Response {
        let body = serde_json::from_slice::<Value>(&body).unwrap_or_default();
        let streamed = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
        let quick = body["messages"][0]["content"] == QUICK;
        let (chunks, gap) = if quick {
            (3, Duration::ZERO)
        } else {
            (40, Duration::from_millis(25))
        };
        if !streamed {
            return axum::Json(json!({"id": "c", "object": "chat.completion", "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "done"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20}}))
            .into_response();
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
        tokio::spawn(async move {
            for i in 0..chunks {
                tokio::time::sleep(gap).await;
                let chunk = json!({"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": format!("w{i} ")}, "finish_reason": null}]});
                if tx
                    .send(Ok(Bytes::from(format!("data: {chunk}\n\n"))))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            let end = json!({"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 100, "completion_tokens": 40}});
            let _ = tx
                .send(Ok(Bytes::from(format!("data: {end}\n\ndata: [DONE]\n\n"))))
                .await;
        });
        let stream =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
        Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(stream))
            .expect("response")
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(
            listener,
            Router::new().fallback(axum::routing::post(handle)),
        )
        .await
        .expect("serve")
    });
    format!("http://{addr}/v1")
}

/// The prompt the upstream answers at once, even streamed.
const QUICK: &str = "quick";

struct Setup {
    dir: tempfile::TempDir,
    db: String,
    key: String,
}

/// A fresh schema of the PostgreSQL database named by `SWITCHYARD_TEST_POSTGRES_URL`, as a
/// store URL; `None` when the variable is not set.
async fn postgres() -> Option<String> {
    let Ok(base) = std::env::var("SWITCHYARD_TEST_POSTGRES_URL") else {
        eprintln!("SWITCHYARD_TEST_POSTGRES_URL is not set: skipping the PostgreSQL run");
        return None;
    };
    use sqlx::Connection as _;
    let schema = format!("crash_{}", rand::random::<u64>());
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .expect("connect to PostgreSQL");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await
        .expect("schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}options=-c%20search_path%3D{schema}"))
}

fn cli(setup_dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("--config")
        .arg(setup_dir.join("switchyard.toml"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn setup(upstream: &str) -> Setup {
    setup_on(upstream, None)
}

/// A catalogue, a configuration on `db` (a temporary SQLite file when `None`), credits and a
/// key.
fn setup_on(upstream: &str, db: Option<String>) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    // Database holds (PostgreSQL) of a crashed gateway lapse after their lease: a short one.
    let lease = if db.is_some() {
        "hold_lease_secs = 1\n"
    } else {
        ""
    };
    let db = db.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("db.sqlite").display()));
    let catalog = format!(
        "[[providers]]\nslug = \"up\"\nname = \"Up\"\nkind = \"openai\"\nbase_url = \"{upstream}\"\ndata_policy = {{ training = false, retains_prompts = false, zdr = true }}\n\n\
         [[models]]\nid = \"t/m\"\nname = \"M\"\ncontext_length = 8000\n\n\
         [[models.endpoints]]\nprovider = \"up\"\nupstream_model = \"m\"\nmax_completion_tokens = 100\npricing = {{ prompt = \"0.000001\", completion = \"0.000002\" }}\n"
    );
    std::fs::write(dir.path().join("catalog.toml"), catalog).expect("catalog");
    std::fs::write(
        dir.path().join("switchyard.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace_secs = 20\n[store]\nurl = \"{db}\"\n{lease}[catalog]\npath = \"{}\"\n",
            dir.path().join("catalog.toml").display()
        ),
    )
    .expect("config");
    cli(dir.path(), &["credits", "add", "100"]);
    let key = cli(dir.path(), &["keys", "create", "--name", "load"]);
    Setup { dir, db, key }
}

/// Starts `serve`; returns the child and its base URL once it listens.
fn serve(setup: &Setup) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("--config")
        .arg(setup.dir.path().join("switchyard.toml"))
        .arg("serve")
        .env("NO_COLOR", "1")
        .env("SWITCHYARD_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent {
                if let Some(rest) = line.split("address=").nth(1) {
                    let addr: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
                    let _ = tx.send(addr);
                    sent = true;
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the gateway did not start");
    (child, format!("http://{addr}"))
}

async fn request(client: &reqwest::Client, base: &str, key: &str, stream: bool) -> Option<String> {
    request_saying(client, base, key, stream, "hello").await
}

/// A chat request; the generation id of its answer when the whole answer arrived (a 200, its
/// body complete; a stream up to `[DONE]`).
async fn request_saying(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    stream: bool,
    prompt: &str,
) -> Option<String> {
    let r = client
        .post(format!("{base}/api/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": "t/m", "stream": stream, "messages": [{"role": "user", "content": prompt}]}))
        .send()
        .await
        .ok()?;
    if r.status() != 200 {
        return None;
    }
    let id = r
        .headers()
        .get("x-generation-id")?
        .to_str()
        .ok()?
        .to_owned();
    let body = r.text().await.ok()?;
    (!stream || body.ends_with("data: [DONE]\n\n")).then_some(id)
}

async fn check_ledger(db: &str) -> (i64, Money) {
    let store = Store::connect(db).await.expect("store");
    assert_eq!(
        store.hold_count().await.expect("holds"),
        0,
        "a hold survived"
    );
    let account = store
        .account("default")
        .await
        .expect("read")
        .expect("account");
    assert_eq!(account.held, Money::ZERO, "held money survived");
    let (n, total) = store.generation_totals("default").await.expect("totals");
    assert_eq!(
        account.usage, total,
        "the ledger disagrees with the generation records"
    );
    for key in store.list_keys("default", 0).await.expect("keys") {
        assert_eq!(key.held, Money::ZERO, "a key kept held money");
    }
    store.close().await;
    (n, total)
}

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

/// Sends SIGTERM with `kill(1)` (std has no API for it, and the project forbids unsafe code).
fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success(), "kill -TERM failed");
}
