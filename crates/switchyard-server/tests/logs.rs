#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The gateway's logs never hold a key, a provider key, an `Authorization` header or prompt
//! text, even at the most verbose level.
//!
//! A test binary of its own, with one test: the subscriber is the process's global one, since the
//! gateway serves from its own worker threads.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

#[path = "it/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "it/mock.rs"]
#[allow(dead_code)]
mod mock;

use harness::{catalog, TestGateway};
use mock::{completion, stream_events, MockUpstream, Reply};

const PROMPT: &str = "confidential-prompt-marker-7731";
const COMPLETION: &str = "confidential-completion-marker-4410";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn trace_level_logs_contain_no_secret_and_no_prompt() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(switchyard_server::log_filter(Some("trace")))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let mock = MockUpstream::start(vec![
        Reply::Json(200, completion(COMPLETION, 5, 2)),
        Reply::Json(500, json!({"error": {"message": "upstream broke"}})),
        Reply::Sse {
            events: stream_events(&[COMPLETION], (5, 2)),
            delay: Duration::from_millis(1),
            cut: true,
        },
    ])
    .await;
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), "0.000001", "0.000001")]))
        .build()
        .await;
    let body = json!({"model": "test/model", "messages": [{"role": "user", "content": PROMPT}]});
    for stream in [false, false, true] {
        let mut b = body.clone();
        b["stream"] = json!(stream);
        let r = gw
            .post("/api/v1/chat/completions", b)
            .send()
            .await
            .expect("send");
        let _ = r.text().await;
    }
    // Refusals log too: a wrong key and a malformed body.
    let _ = gw
        .http
        .post(gw.url("/api/v1/chat/completions"))
        .bearer_auth("sk-or-v1-abababababababababababababababababababababababababababababababab")
        .json(&body)
        .send()
        .await;
    let _ = gw
        .post(
            "/api/v1/messages",
            json!({"model": "test/model", "messages": [{"role": "user", "content": PROMPT}]}),
        )
        .send()
        .await;
    gw.settled().await;

    let logs = String::from_utf8(capture.0.lock().expect("lock").clone()).expect("utf8");
    // The capture sees the gateway's own events (so the scan below is not vacuous).
    assert!(
        logs.contains("upstream attempt failed"),
        "the gateway's logs were not captured:\n{logs}"
    );
    for (what, needle) in [
        ("the client key", gw.key.as_str()),
        ("the client key's hex", &gw.key["sk-or-v1-".len()..]),
        ("a wrong key", "abababababababababababababababababababab"),
        ("the provider key", "secret-ALPHA_KEY"),
        ("an Authorization header", "Bearer "),
        ("an authorization header", "authorization"),
        ("the prompt", PROMPT),
        ("the completion", COMPLETION),
    ] {
        assert!(
            !logs
                .to_ascii_lowercase()
                .contains(&needle.to_ascii_lowercase()),
            "{what} appears in the logs:\n{logs}"
        );
    }
}
