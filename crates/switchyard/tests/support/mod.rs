//! What the tests that run the `switchyard` binary share: a scripted upstream, a configuration
//! on SQLite or a fresh PostgreSQL schema, the CLI, `serve` and the checks of the ledger.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use serde_json::{json, Value};
use switchyard_core::money::Money;
use switchyard_store::Store;

/// An OpenAI-compatible upstream: JSON at once, or 40 SSE chunks 25 ms apart (3 chunks at once
/// when the prompt is [`QUICK`]).
pub async fn upstream() -> String {
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
pub const QUICK: &str = "quick";

pub struct Setup {
    pub dir: tempfile::TempDir,
    pub db: String,
    pub key: String,
}

/// A fresh schema of the PostgreSQL database named by `SWITCHYARD_TEST_POSTGRES_URL`, as a
/// store URL; `None` when the variable is not set.
pub async fn postgres() -> Option<String> {
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

pub fn cli(setup_dir: &std::path::Path, args: &[&str]) -> String {
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

pub fn setup(upstream: &str) -> Setup {
    setup_on(upstream, None)
}

/// A catalogue, a configuration on `db` (a temporary SQLite file when `None`), credits and a
/// key.
pub fn setup_on(upstream: &str, db: Option<String>) -> Setup {
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
pub fn serve(setup: &Setup) -> (Child, String) {
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

pub async fn request(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    stream: bool,
) -> Option<String> {
    request_saying(client, base, key, stream, "hello").await
}

/// A chat request; the generation id of its answer when the whole answer arrived (a 200, its
/// body complete; a stream up to `[DONE]`).
pub async fn request_saying(
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

pub async fn check_ledger(db: &str) -> (i64, Money) {
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
    assert_eq!(
        store.leases().await.expect("leases"),
        Vec::new(),
        "a budget lease survived"
    );
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

/// Sends SIGTERM with `kill(1)` (std has no API for it, and the project forbids unsafe code).
pub fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success(), "kill -TERM failed");
}
