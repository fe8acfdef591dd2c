//! Hardening: bounded client-supplied lists, connection timeouts and limits.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use switchyard_server::config::Config;
use switchyard_server::ledger::HoldMode;
use switchyard_store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::harness::{catalog, TestGateway};
use crate::mock::{completion, stream_events, MockUpstream, Reply};

#[tokio::test]
async fn a_hundred_thousand_models_are_refused_naming_the_field() {
    let mock = MockUpstream::start(vec![Reply::Json(200, completion("hi", 1, 1))]).await;
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), "0.000001", "0.000002")]))
        .config(|c| c.server.body_limit_bytes = 8 * 1024 * 1024)
        .build()
        .await;
    let models: Vec<String> = (0..100_000).map(|i| format!("test/model-{i}")).collect();
    let response = gw
        .post(
            "/api/v1/chat/completions",
            json!({"model": "test/model", "models": models, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], 400, "{body}");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("models takes at most 128 entries, got 100000"),
        "{message}"
    );
    assert!(mock.requests().is_empty(), "nothing reached the upstream");
}

/// Reads until the server closes the connection (end of stream or reset); panics if it is
/// still open after ten seconds, far past every deadline these tests configure.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the server left the connection open");
    received
}

/// Reads one response whose body ends with `end`, leaving the connection open.
async fn response_ending(stream: &mut TcpStream, end: &[u8]) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    while !received.ends_with(end) {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("no response")
            .expect("read");
        assert!(
            n > 0,
            "closed early: {}",
            String::from_utf8_lossy(&received)
        );
        received.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&received).into_owned()
}

async fn gateway(configure: impl FnOnce(&mut Config)) -> (MockUpstream, TestGateway) {
    let mock = MockUpstream::start(vec![Reply::Json(200, completion("hi", 1, 1))]).await;
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), "0.000001", "0.000002")]))
        .config(|c| {
            // Each test shortens only the deadline it is about.
            c.server.header_read_timeout_secs = 30.0;
            c.server.body_read_timeout_secs = 30.0;
            c.server.idle_timeout_secs = 30.0;
            configure(c);
        })
        .build()
        .await;
    (mock, gw)
}

async fn connect(gw: &TestGateway) -> TcpStream {
    TcpStream::connect(gw.base.trim_start_matches("http://"))
        .await
        .expect("connect")
}

#[tokio::test]
async fn headers_trickled_byte_by_byte_time_out() {
    let (_mock, gw) = gateway(|c| c.server.header_read_timeout_secs = 0.3).await;
    let stream = connect(&gw).await;
    let (mut read, mut write) = stream.into_split();
    // One byte of a never-ending header every 50 ms: each byte is progress, none completes it.
    let trickle = tokio::spawn(async move {
        let head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ";
        let mut every = tokio::time::interval(Duration::from_millis(50));
        for byte in head.iter().chain(std::iter::repeat(&b'a')) {
            every.tick().await;
            if write.write_all(&[*byte]).await.is_err() {
                return;
            }
        }
    });
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    trickle.abort();
    assert!(closed.is_ok(), "a trickled header kept the connection open");
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let (_mock, gw) = gateway(|c| c.server.idle_timeout_secs = 0.3).await;
    let mut stream = connect(&gw).await;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let response = response_ending(&mut stream, b"ok").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // Kept alive after the answer, then closed once idle.
    assert!(until_closed(&mut stream).await.is_empty());
}

#[tokio::test]
async fn a_body_that_never_finishes_is_answered_408_and_closed() {
    let (mock, gw) = gateway(|c| c.server.body_read_timeout_secs = 0.3).await;
    let mut stream = connect(&gw).await;
    let head = format!(
        "POST /api/v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"model\":",
        gw.key
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let response = String::from_utf8_lossy(&until_closed(&mut stream).await).into_owned();
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    let body = &response[response.find("\r\n\r\n").expect("head") + 4..];
    let body: Value = serde_json::from_str(body).expect("json body");
    assert_eq!(body["error"]["code"], 408, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("server.body_read_timeout_secs")),
        "{body}"
    );
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn past_max_connections_a_connection_gets_503_and_is_closed() {
    let (_mock, gw) = gateway(|c| c.server.max_connections = 1).await;
    // The one connection allowed, answered and kept open.
    let mut first = connect(&gw).await;
    first
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    assert!(response_ending(&mut first, b"ok")
        .await
        .starts_with("HTTP/1.1 200"));
    let mut second = connect(&gw).await;
    second
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let response = String::from_utf8_lossy(&until_closed(&mut second).await).into_owned();
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("retry-after: 1"),
        "{response}"
    );
    let body = &response[response.find("\r\n\r\n").expect("head") + 4..];
    let body: Value = serde_json::from_str(body).expect("json body");
    assert_eq!(body["error"]["code"], 503, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("server.max_connections")),
        "{body}"
    );
    // The first connection is still served.
    first
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    assert!(response_ending(&mut first, b"ok")
        .await
        .starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_starting_replica_leaves_a_running_gateways_holds() {
    let events = stream_events(&["Hel", "lo"], (7, 2));
    let gate = Arc::new(Notify::new());
    let mock = MockUpstream::start(vec![Reply::Gated {
        before: events[..2].to_vec(),
        gate: Arc::clone(&gate),
        after: events[2..].to_vec(),
    }])
    .await;
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), "0.000001", "0.000002")]))
        .config(|c| {
            c.store.holds = Some(HoldMode::Database);
            // Per-request holds: this test is about their ownership.
            c.store.leases = false;
        })
        .build()
        .await;
    let response = gw
        .post(
            "/api/v1/chat/completions",
            json!({"model": "test/model", "stream": true, "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut text = String::new();
    while !text.contains("\"Hel\"") {
        let bytes = body.next().await.expect("more").expect("bytes");
        text.push_str(std::str::from_utf8(&bytes).expect("utf8"));
    }
    // The stream is open: its hold is in the database, owned by the running gateway.
    assert_eq!(gw.state.store.hold_count().await.expect("count"), 1);
    // Another gateway starts on the same database a second later.
    let replica = Store::connect(&gw.store_url()).await.expect("connect");
    assert_eq!(
        replica
            .release_stale_holds(gw.state.now_ms() + 1_000)
            .await
            .expect("release"),
        0,
        "a starting replica released a running gateway's hold"
    );
    assert_eq!(gw.state.store.hold_count().await.expect("count"), 1);
    gate.notify_one();
    while let Some(bytes) = body.next().await {
        text.push_str(std::str::from_utf8(&bytes.expect("bytes")).expect("utf8"));
    }
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    gw.settled().await;
    assert_eq!(gw.state.store.hold_count().await.expect("count"), 0);
}

#[tokio::test]
async fn a_stream_that_stalls_is_cut_at_the_idle_timeout_whatever_the_keepalives() {
    // One chunk, then silence: the upstream keeps its connection open and sends nothing more.
    let events = stream_events(&["Hel"], (7, 2));
    let mock = MockUpstream::start(vec![Reply::Gated {
        before: events[..2].to_vec(),
        gate: Arc::new(Notify::new()),
        after: Vec::new(),
    }])
    .await;
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), "0.000001", "0.000002")]))
        .config(|c| {
            c.server.keepalive_secs = 0.1;
            c.server.stream_idle_timeout_secs = 1.0;
        })
        .build()
        .await;
    let started = std::time::Instant::now();
    let response = gw
        .post(
            "/api/v1/chat/completions",
            json!({"model": "test/model", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let text = tokio::time::timeout(Duration::from_secs(10), response.text())
        .await
        .expect("the stream was never cut")
        .expect("body");
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(4),
        "cut after {elapsed:?}, not about the idle timeout"
    );
    assert!(
        text.matches(": OPENROUTER PROCESSING").count() >= 3,
        "keep-alives flowed meanwhile: {text}"
    );
    assert!(text.contains("\"Hel\""), "{text}");
    assert!(text.contains("stopped sending for 1s"), "{text}");
    gw.settled().await;
    let stats = gw
        .state
        .health
        .stats("test/model", "alpha", gw.state.now_ms());
    assert_eq!(
        stats.uptime_last_5m,
        Some(0.0),
        "the stall counts as the endpoint's failure"
    );
}

#[tokio::test]
async fn a_flood_of_bogus_keys_is_audited_in_a_record_per_source_and_minute() {
    let (mock, gw) = gateway(|_| {}).await;
    let mut ids = Vec::new();
    let requests = futures::stream::iter(0..500)
        .map(|i| {
            let gw = &gw;
            async move {
                let bogus = format!("sk-or-v1-{i:064x}");
                let request = gw
                    .http
                    .post(gw.url("/api/v1/chat/completions"))
                    .json(&json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}]}));
                // Unknown keys, malformed keys and no key at all.
                let request = match i % 3 {
                    0 => request.bearer_auth(bogus),
                    1 => request.header("x-api-key", "nonsense"),
                    _ => request,
                };
                request.send().await.expect("send")
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    for response in requests {
        assert_eq!(response.status(), 401);
        let id = response
            .headers()
            .get("x-generation-id")
            .expect("the 401 carries its generation id")
            .to_str()
            .expect("ascii")
            .to_owned();
        ids.push(id);
    }
    gw.settled().await;
    let rows = gw.state.store.audit_page(0, 1000).await.expect("page");
    assert!(
        (1..=2).contains(&rows.len()),
        "{} audit rows for 500 refusals",
        rows.len()
    );
    let mut total = 0;
    for row in &rows {
        let record: Value = serde_json::from_str(&row.body).expect("json");
        assert_eq!(record["kind"], "auth_failures", "{record}");
        assert_eq!(record["source"], "127.0.0.1", "{record}");
        assert_eq!(record["status"], 401, "{record}");
        assert!(
            ids.contains(&row.generation_id),
            "the sample is one of the refused requests"
        );
        assert_eq!(record["sample_generation_id"], json!(row.generation_id));
        total += record["count"].as_u64().expect("count");
        // Nothing the client sent is stored, its key least of all.
        assert!(!row.body.contains(&"0".repeat(32)), "{record}");
        assert!(!row.body.contains("nonsense"), "{record}");
        assert!(!row.body.contains("hi\""), "{record}");
    }
    assert_eq!(total, 500);
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn provider_keys_never_reach_a_client_or_the_audit_chain() {
    // Per format: a refused request, a refused stream, and a stream that fails after it began
    // (embeddings do not stream).
    let chat = json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}]});
    let messages = json!({"model": "test/model", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    let responses = json!({"model": "test/model", "input": "hi"});
    let completions = json!({"model": "test/model", "prompt": "hi"});
    let embeddings = json!({"model": "test/embed", "input": "hi"});
    let streamed = |mut body: Value| {
        body["stream"] = json!(true);
        body
    };
    let cases: Vec<(&str, Value, Reply)> = [
        ("/api/v1/chat/completions", chat),
        ("/api/v1/messages", messages),
        ("/api/v1/responses", responses),
        ("/api/v1/completions", completions),
    ]
    .into_iter()
    .flat_map(|(path, body)| {
        [
            (path, body.clone(), Reply::Echo(400)),
            (path, streamed(body.clone()), Reply::Echo(400)),
            (path, streamed(body), Reply::EchoSse),
        ]
    })
    .chain([("/api/v1/embeddings", embeddings, Reply::Echo(400))])
    .collect();
    let mock = MockUpstream::start(cases.iter().map(|c| c.2.clone()).collect()).await;
    let mut text = catalog(&[("alpha", &mock.url(), "0.000001", "0.000002")]);
    text.push_str("[[models]]\nid = \"test/embed\"\nname = \"Test: Embed\"\nkind = \"embedding\"\ndimensions = 3\ncontext_length = 8000\n\n[[models.endpoints]]\nprovider = \"alpha\"\nupstream_model = \"embed-up\"\npricing = { prompt = \"0.0000001\" }\n\n");
    let gw = TestGateway::builder(text).build().await;
    let secret = gw
        .state
        .secrets
        .expose("ALPHA_KEY")
        .expect("key")
        .to_owned();
    let leaks = [
        secret.as_str(),
        "sk-proj-abcdefghijklmnopqrstuvwx0123",
        "other-credential-9",
    ];
    for (path, body, reply) in &cases {
        let response = gw.post(path, body.clone()).send().await.expect("send");
        let status = response.status();
        let answer = response.text().await.expect("body");
        assert!(
            answer.contains("[REDACTED]"),
            "{path} {reply:?}: the echo reached the client: {status} {answer}"
        );
        for leak in leaks {
            assert!(
                !answer.contains(leak),
                "{path} {reply:?} handed {leak} to the client: {answer}"
            );
        }
    }
    assert_eq!(mock.requests().len(), cases.len());
    assert_eq!(
        mock.requests()[0].headers["authorization"],
        format!("Bearer {secret}"),
        "the provider got its key"
    );
    gw.settled().await;
    let rows = gw.state.store.audit_page(0, 1000).await.expect("page");
    assert_eq!(rows.len(), cases.len());
    for row in rows {
        assert!(row.body.contains("[REDACTED]"), "{}", row.body);
        for leak in leaks {
            assert!(
                !row.body.contains(leak),
                "{leak} in the audit chain: {}",
                row.body
            );
        }
    }
}

/// The hold of a chat request of `body` limited to `max_tokens` on the test model's first
/// endpoint, as the gateway takes it.
fn hold_of(gw: &TestGateway, body: &Value, max_tokens: u64) -> switchyard_core::money::Money {
    let request: switchyard_core::chat::ChatRequest =
        serde_json::from_value(body.clone()).expect("request");
    let catalog = gw.state.catalog();
    let pricing = &catalog.model("test/model").expect("model").endpoints[0].pricing;
    switchyard_core::pricing::max_cost(request.estimated_prompt_tokens() * 2, max_tokens, pricing)
        .expect("in range")
}

/// The audit record of a generation.
async fn audit_of(gw: &TestGateway, id: &str) -> Value {
    let rows = gw.state.store.audit_page(0, 1000).await.expect("page");
    let row = rows
        .iter()
        .find(|r| r.generation_id == id)
        .expect("an audit record");
    serde_json::from_str(&row.body).expect("json")
}

#[tokio::test]
async fn a_settled_cost_never_exceeds_its_hold_whatever_the_usage_reported() {
    let body = json!({"model": "test/model", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]});
    // (completion tokens reported, the anomaly recorded)
    let cases = [
        (1_000_000, Some("usage_exceeds_hold")),
        (i64::MAX as u64, Some("usage_out_of_range")),
        (u64::MAX, Some("usage_out_of_range")),
        (3, None),
    ];
    let mock = MockUpstream::start(
        cases
            .iter()
            .map(|(tokens, _)| {
                let mut answer = completion("hi", 5, 0);
                answer["usage"]["completion_tokens"] = json!(tokens);
                answer["usage"]["total_tokens"] = json!(tokens);
                Reply::Json(200, answer)
            })
            .collect(),
    )
    .await;
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), "0.000001", "0.000002")]))
        .build()
        .await;
    let hold = hold_of(&gw, &body, 16);
    for (tokens, anomaly) in cases {
        let response = gw
            .post("/api/v1/chat/completions", body.clone())
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 200);
        let id = response.headers()["x-generation-id"]
            .to_str()
            .expect("id")
            .to_owned();
        gw.settled().await;
        let record = gw
            .state
            .store
            .generation(&id)
            .await
            .expect("read")
            .expect("settled");
        match anomaly {
            Some(_) => assert_eq!(record.cost, hold, "{tokens} tokens are charged the hold"),
            None => assert!(
                record.cost < hold && !record.cost.is_zero(),
                "an honest usage is charged its cost"
            ),
        }
        assert!(record.tokens_completion <= 1_000_000_000, "{tokens}");
        let audit = audit_of(&gw, &id).await;
        assert_eq!(audit["anomaly"], json!(anomaly), "{tokens}: {audit}");
        assert_eq!(audit["cost"], json!(record.cost.to_usd().to_string()));
    }
}

#[tokio::test]
async fn a_stream_past_max_tokens_is_cut_and_charged_at_most_its_hold() {
    // A provider that ignores max_tokens and would stream 100,000 characters.
    let pieces: Vec<String> = (0..10_000).map(|i| format!("word{i:05} ")).collect();
    let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
    let mock = MockUpstream::start(vec![Reply::Sse {
        events: stream_events(&pieces, (5, 0)),
        delay: Duration::ZERO,
        cut: false,
    }])
    .await;
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), "0.000001", "0.000002")]))
        .build()
        .await;
    let body = json!({"model": "test/model", "max_tokens": 16, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let hold = hold_of(&gw, &body, 16);
    let response = gw
        .post("/api/v1/chat/completions", body)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-generation-id"]
        .to_str()
        .expect("id")
        .to_owned();
    let text = tokio::time::timeout(Duration::from_secs(10), response.text())
        .await
        .expect("the stream ended")
        .expect("body");
    assert!(
        text.contains("kept generating past the request's limit of 16 tokens"),
        "{}",
        &text[text.len().saturating_sub(600)..]
    );
    let forwarded = text.matches("word").count();
    assert!(
        (10..200).contains(&forwarded),
        "{forwarded} pieces forwarded before the cut"
    );
    tokio::time::timeout(Duration::from_secs(5), mock.stream_dropped())
        .await
        .expect("the upstream stream was dropped");
    gw.settled().await;
    let record = gw
        .state
        .store
        .generation(&id)
        .await
        .expect("read")
        .expect("settled");
    assert!(record.cost <= hold, "{:?} > {hold:?}", record.cost);
    let audit = audit_of(&gw, &id).await;
    assert_eq!(audit["anomaly"], "output_exceeds_max_tokens", "{audit}");
}

#[tokio::test]
async fn upstream_bodies_past_the_configured_cap_are_refused() {
    let big = "x".repeat(100 * 1024);
    let chat = json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}]});
    let mut streamed = chat.clone();
    streamed["stream"] = json!(true);
    // (request, reply, status, what the answer says)
    let cases = [
        (
            chat.clone(),
            Reply::Json(200, completion(&big, 1, 1)),
            502,
            "larger than 16384 bytes",
        ),
        (
            chat.clone(),
            Reply::Unsized(200, completion(&big, 1, 1).to_string()),
            502,
            "larger than 16384 bytes",
        ),
        (
            chat.clone(),
            Reply::Unsized(500, json!({"error": {"message": big}}).to_string()),
            502,
            "larger than 16384 bytes",
        ),
        (
            streamed,
            Reply::Sse {
                events: stream_events(&[&big], (1, 1)),
                delay: Duration::ZERO,
                cut: false,
            },
            200,
            "sent a stream event larger than 16384 bytes",
        ),
        (
            chat,
            Reply::Json(200, completion("small", 1, 1)),
            200,
            "small",
        ),
    ];
    let mock = MockUpstream::start(cases.iter().map(|c| c.1.clone()).collect()).await;
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), "0.000001", "0.000002")]))
        .config(|c| c.server.max_upstream_body_bytes = 16 * 1024)
        .build()
        .await;
    for (body, reply, status, says) in cases {
        let name = format!("{reply:?}").chars().take(40).collect::<String>();
        let response = gw
            .post("/api/v1/chat/completions", body)
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), status, "{name}");
        let text = response.text().await.expect("body");
        assert!(
            text.contains(says),
            "{name}: {}",
            &text[..text.len().min(600)]
        );
        assert!(
            text.len() < 20 * 1024,
            "{name}: {} bytes reached the client",
            text.len()
        );
    }
}

#[tokio::test]
async fn a_refusal_never_repeats_the_text_sent() {
    const TEXT: &str = "Please summarise my diagnosis, patient 4111";
    let cases = [
        (
            "/api/v1/chat/completions",
            json!({"model": "test/model", "messages": TEXT}),
        ),
        (
            "/api/v1/chat/completions",
            json!({"model": "test/model", "messages": [{"role": TEXT, "content": "hi"}]}),
        ),
        (
            "/api/v1/chat/completions",
            json!({"model": "test/model", "temperature": TEXT, "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "/api/v1/chat/completions",
            json!({"model": "test/model", "messages": [{"role": "user", "content": [{"type": TEXT, "text": "hi"}]}]}),
        ),
        (
            "/api/v1/chat/completions",
            json!({"model": "test/model", "provider": {"order": TEXT}, "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "/api/v1/messages",
            json!({"model": "test/model", "max_tokens": 5, "messages": TEXT}),
        ),
        (
            "/api/v1/messages",
            json!({"model": "test/model", "max_tokens": 5, "messages": [{"role": TEXT, "content": "hi"}]}),
        ),
        (
            "/api/v1/messages",
            json!({"model": "test/model", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": TEXT}]}]}),
        ),
        (
            "/api/v1/messages/count_tokens",
            json!({"model": "test/model", "messages": [{"role": TEXT, "content": "hi"}]}),
        ),
        (
            "/api/v1/responses",
            json!({"model": "test/model", "input": [{"role": TEXT, "content": "hi"}]}),
        ),
        (
            "/api/v1/responses",
            json!({"model": "test/model", "input": [{"type": TEXT}]}),
        ),
        (
            "/api/v1/responses",
            json!({"model": "test/model", "input": "hi", "include": [TEXT]}),
        ),
        (
            "/api/v1/completions",
            json!({"model": "test/model", "prompt": "hi", "temperature": TEXT}),
        ),
        (
            "/api/v1/embeddings",
            json!({"model": "test/model", "input": "hi", "provider": {"sort": TEXT}}),
        ),
        (
            "/api/v1/embeddings",
            json!({"model": "test/model", "input": [{"content": [{"type": TEXT}]}]}),
        ),
        (
            "/api/v1/responses",
            json!({"model": "test/model", "input": "hi", "text": {TEXT: 1}}),
        ),
    ];
    let (mock, gw) = gateway(|_| {}).await;
    for (path, body) in &cases {
        let response = gw.post(path, body.clone()).send().await.expect("send");
        let status = response.status();
        let answer = response.text().await.expect("body");
        assert_eq!(status, 400, "{path} {body}: {answer}");
        assert!(!answer.contains("4111"), "{path} {body}: {answer}");
    }
    assert!(mock.requests().is_empty());
    gw.settled().await;
    let rows = gw.state.store.audit_page(0, 1000).await.expect("page");
    assert_eq!(rows.len(), cases.len());
    for row in rows {
        assert!(!row.body.contains("4111"), "{}", row.body);
    }
}
