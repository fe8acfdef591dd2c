//! OpenTelemetry traces: an in-process OTLP/HTTP collector receives the spans of a streamed and
//! a failed-over request, parented under the client's `traceparent`, with the GenAI attributes
//! and no prompt text; the upstream gets each attempt's `traceparent`, and nothing with
//! telemetry off.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use futures::StreamExt;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode as SpanStatus, Span};
use prost::Message as _;
use serde_json::{json, Value};
use switchyard_core::money::Money;
use tokio::sync::Notify;

use crate::harness::{catalog, TestGateway, ACCOUNT};
use crate::mock::{completion, stream_events, MockUpstream, Reply};

/// Text of the prompt: it must appear in no exported byte.
const PROMPT: &str = "PROMPT-TEXT-do-not-export-7741";
/// Text of the completion: likewise.
const ANSWER: &str = "ANSWER-TEXT-do-not-export";

/// A collector accepting OTLP/HTTP protobuf exports and keeping every body.
#[derive(Clone, Default)]
struct Collector {
    bodies: Arc<Mutex<Vec<Bytes>>>,
}

async fn accept(
    State(c): State<Collector>,
    body: Bytes,
) -> (StatusCode, [(&'static str, &'static str); 1], Vec<u8>) {
    c.bodies.lock().expect("lock").push(body);
    // An empty `ExportTraceServiceResponse`.
    (
        StatusCode::OK,
        [("content-type", "application/x-protobuf")],
        Vec::new(),
    )
}

impl Collector {
    /// Starts the collector; returns it and its traces URL.
    async fn start() -> (Collector, String) {
        let collector = Collector::default();
        let app = Router::new()
            .route("/v1/traces", post(accept))
            .with_state(collector.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/v1/traces", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        (collector, url)
    }

    /// Every span received so far.
    fn spans(&self) -> Vec<Span> {
        self.bodies
            .lock()
            .expect("lock")
            .iter()
            .flat_map(|b| {
                ExportTraceServiceRequest::decode(b.as_ref())
                    .expect("protobuf")
                    .resource_spans
            })
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
            .collect()
    }

    /// Every byte received so far.
    fn bytes(&self) -> Vec<u8> {
        self.bodies
            .lock()
            .expect("lock")
            .iter()
            .flat_map(|b| b.to_vec())
            .collect()
    }

    /// The spans of `trace_id` once its root span (`name`) and `children` more arrived; polls
    /// with a deadline.
    async fn trace(&self, trace_id: &[u8], name: &str, children: usize) -> (Span, Vec<Span>) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let spans: Vec<Span> = self
                .spans()
                .into_iter()
                .filter(|s| s.trace_id == trace_id)
                .collect();
            let root = spans.iter().find(|s| s.name == name).cloned();
            if let Some(root) = root {
                let kids: Vec<Span> = spans
                    .iter()
                    .filter(|s| s.parent_span_id == root.span_id)
                    .cloned()
                    .collect();
                if kids.len() >= children {
                    return (root, kids);
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the trace was not exported in time: {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A span's attributes by key.
fn attributes(span: &Span) -> HashMap<String, Any> {
    span.attributes
        .iter()
        .filter_map(|kv| {
            let value = kv.value.as_ref()?.value.clone()?;
            Some((kv.key.clone(), value))
        })
        .collect()
}

fn text(attrs: &HashMap<String, Any>, key: &str) -> String {
    match attrs.get(key) {
        Some(Any::StringValue(s)) => s.clone(),
        other => panic!("{key}: {other:?}"),
    }
}

fn int(attrs: &HashMap<String, Any>, key: &str) -> i64 {
    match attrs.get(key) {
        Some(Any::IntValue(i)) => *i,
        other => panic!("{key}: {other:?}"),
    }
}

fn hex_id(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A client's trace context: a random trace id and parent span id, sampled.
fn client_trace() -> (String, String) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let parent = &uuid::Uuid::new_v4().simple().to_string()[..16];
    (id, parent.to_owned())
}

/// The trace id and span id of a `traceparent` header.
fn parse_traceparent(value: &str) -> (String, String) {
    let parts: Vec<&str> = value.split('-').collect();
    assert_eq!(parts.len(), 4, "{value}");
    assert_eq!(parts[0], "00");
    (parts[1].to_owned(), parts[2].to_owned())
}

async fn gateway(providers: &[(&str, &str)], collector: Option<&str>) -> TestGateway {
    gateway_with(providers, collector, false).await
}

async fn gateway_with(
    providers: &[(&str, &str)],
    collector: Option<&str>,
    include_content: bool,
) -> TestGateway {
    let list: Vec<(&str, &str, &str, &str)> = providers
        .iter()
        .map(|(slug, url)| (*slug, *url, "0.000001", "0.000002"))
        .collect();
    let endpoint = collector.map(str::to_owned);
    TestGateway::builder(catalog(&list))
        .config(move |c| {
            if let Some(endpoint) = endpoint {
                c.telemetry.enabled = true;
                c.telemetry.endpoint = endpoint;
                c.telemetry.batch_delay_ms = 20;
                c.telemetry.include_content = include_content;
            }
        })
        .build()
        .await
}

fn chat(stream: bool) -> Value {
    json!({
        "model": "test/model",
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": stream,
        "provider": {"sort": "price"},
    })
}

#[tokio::test]
async fn a_streamed_request_is_one_trace_under_the_clients_parent() {
    let (collector, url) = Collector::start().await;
    let mock = MockUpstream::start(vec![Reply::Sse {
        events: stream_events(&[ANSWER, "!"], (5, 2)),
        delay: Duration::ZERO,
        cut: false,
    }])
    .await;
    let gw = gateway(&[("alpha", &mock.url())], Some(&url)).await;
    let (trace_id, parent_id) = client_trace();
    let response = gw
        .post("/api/v1/chat/completions", chat(true))
        .header("traceparent", format!("00-{trace_id}-{parent_id}-01"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let generation_id = response.headers()["x-generation-id"]
        .to_str()
        .expect("id")
        .to_owned();
    let body = response.text().await.expect("body");
    assert!(body.contains(ANSWER), "{body}");

    let trace_bytes = hex::decode(&trace_id).expect("hex");
    let (root, children) = collector.trace(&trace_bytes, "chat test/model", 3).await;
    assert_eq!(hex_id(&root.parent_span_id), parent_id);
    assert_eq!(root.kind, 2, "server span");
    let attrs = attributes(&root);
    assert_eq!(text(&attrs, "gen_ai.operation.name"), "chat");
    assert_eq!(text(&attrs, "gen_ai.request.model"), "test/model");
    assert_eq!(text(&attrs, "gen_ai.response.model"), "test/model");
    assert_eq!(text(&attrs, "gen_ai.provider.name"), "alpha");
    assert_eq!(int(&attrs, "gen_ai.usage.input_tokens"), 5);
    assert_eq!(int(&attrs, "gen_ai.usage.output_tokens"), 2);
    assert_eq!(int(&attrs, "http.response.status_code"), 200);
    assert_eq!(text(&attrs, "switchyard.generation_id"), generation_id);
    // 5 × 0.000001 + 2 × 0.000002, exact.
    assert_eq!(text(&attrs, "switchyard.cost_usd"), "0.000009");
    assert_eq!(
        Money::parse_usd(&text(&attrs, "switchyard.cost_usd")).expect("usd"),
        Money::from_picos(9_000_000)
    );
    match attrs.get("gen_ai.response.finish_reasons") {
        Some(Any::ArrayValue(a)) => {
            let reasons: Vec<_> = a.values.iter().filter_map(|v| v.value.clone()).collect();
            assert_eq!(reasons, vec![Any::StringValue("stop".into())]);
        }
        other => panic!("finish reasons: {other:?}"),
    }
    assert_ne!(
        root.status.as_ref().map(|s| s.code),
        Some(SpanStatus::Error as i32)
    );

    let mut names: Vec<&str> = children.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["attempt", "hold", "route"]);
    let route = children.iter().find(|s| s.name == "route").expect("route");
    assert_eq!(int(&attributes(route), "switchyard.route.candidates"), 1);
    assert_eq!(int(&attributes(route), "switchyard.route.excluded"), 0);
    let attempt = children
        .iter()
        .find(|s| s.name == "attempt")
        .expect("attempt");
    assert_eq!(attempt.kind, 3, "client span");
    let a = attributes(attempt);
    assert_eq!(text(&a, "gen_ai.provider.name"), "alpha");
    assert_eq!(text(&a, "server.address"), "127.0.0.1");
    assert_eq!(int(&a, "http.response.status_code"), 200);
    // The attempt's span covers the upstream stream: it ends after the root's children began.
    assert!(attempt.end_time_unix_nano <= root.end_time_unix_nano);

    // The upstream was sent the attempt's own context, in the client's trace.
    let sent = mock.requests();
    let header = sent[0].headers["traceparent"].to_str().expect("header");
    let (sent_trace, sent_span) = parse_traceparent(header);
    assert_eq!(sent_trace, trace_id);
    assert_eq!(sent_span, hex_id(&attempt.span_id));

    let exported = String::from_utf8_lossy(&collector.bytes()).into_owned();
    assert!(!exported.contains(PROMPT), "the prompt was exported");
    assert!(!exported.contains(ANSWER), "the completion was exported");
}

#[tokio::test]
async fn a_failed_over_request_has_one_attempt_span_each() {
    let (collector, url) = Collector::start().await;
    let bad = MockUpstream::start(vec![Reply::Json(
        500,
        json!({"error": {"message": format!("boom: {PROMPT}")}}),
    )])
    .await;
    let good = MockUpstream::start(vec![Reply::Json(200, completion(ANSWER, 10, 4))]).await;
    let gw = gateway(&[("alpha", &bad.url()), ("beta", &good.url())], Some(&url)).await;
    let (trace_id, parent_id) = client_trace();
    let response = gw
        .post("/api/v1/chat/completions", chat(false))
        .header("traceparent", format!("00-{trace_id}-{parent_id}-01"))
        .header("tracestate", "vendor=value")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["provider"], "BETA");

    let trace_bytes = hex::decode(&trace_id).expect("hex");
    let (root, children) = collector.trace(&trace_bytes, "chat test/model", 4).await;
    assert_eq!(hex_id(&root.parent_span_id), parent_id);
    let attrs = attributes(&root);
    assert_eq!(text(&attrs, "gen_ai.provider.name"), "beta");
    assert_eq!(int(&attrs, "gen_ai.usage.input_tokens"), 10);
    assert_eq!(int(&attrs, "gen_ai.usage.output_tokens"), 4);
    // 10 × 0.000001 + 4 × 0.000002.
    assert_eq!(text(&attrs, "switchyard.cost_usd"), "0.000018");
    assert_eq!(root.trace_state, "vendor=value");

    let mut attempts: Vec<&Span> = children.iter().filter(|s| s.name == "attempt").collect();
    attempts.sort_by_key(|s| s.start_time_unix_nano);
    assert_eq!(attempts.len(), 2);
    let (first, second) = (attributes(attempts[0]), attributes(attempts[1]));
    assert_eq!(text(&first, "gen_ai.provider.name"), "alpha");
    assert_eq!(int(&first, "http.response.status_code"), 500);
    assert_eq!(text(&first, "error.type"), "provider_unavailable");
    assert_eq!(
        attempts[0].status.as_ref().map(|s| s.code),
        Some(SpanStatus::Error as i32)
    );
    assert_eq!(text(&second, "gen_ai.provider.name"), "beta");
    assert_eq!(int(&second, "http.response.status_code"), 200);
    assert_ne!(
        attempts[1].status.as_ref().map(|s| s.code),
        Some(SpanStatus::Error as i32)
    );

    // Each upstream got its own attempt's context, in the client's trace.
    for (mock, span) in [(&bad, attempts[0]), (&good, attempts[1])] {
        let sent = mock.requests();
        let (sent_trace, sent_span) =
            parse_traceparent(sent[0].headers["traceparent"].to_str().expect("header"));
        assert_eq!(sent_trace, trace_id);
        assert_eq!(sent_span, hex_id(&span.span_id));
    }

    let exported = String::from_utf8_lossy(&collector.bytes()).into_owned();
    assert!(!exported.contains(PROMPT), "the prompt was exported");
    assert!(!exported.contains(ANSWER), "the completion was exported");
}

#[tokio::test]
async fn a_refused_request_ends_its_span_with_the_error() {
    let (collector, url) = Collector::start().await;
    let mock = MockUpstream::start(vec![Reply::Json(200, completion("x", 1, 1))]).await;
    let gw = gateway(&[("alpha", &mock.url())], Some(&url)).await;
    let (trace_id, parent_id) = client_trace();
    let response = gw
        .post(
            "/api/v1/chat/completions",
            json!({"model": "nobody/none", "messages": [{"role": "user", "content": PROMPT}]}),
        )
        .header("traceparent", format!("00-{trace_id}-{parent_id}-01"))
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    assert!((400..500).contains(&status), "{status}");
    let trace_bytes = hex::decode(&trace_id).expect("hex");
    let (root, _) = collector.trace(&trace_bytes, "chat nobody/none", 0).await;
    let attrs = attributes(&root);
    assert_eq!(int(&attrs, "http.response.status_code"), i64::from(status));
    assert_eq!(
        root.status.as_ref().map(|s| s.code),
        Some(SpanStatus::Error as i32)
    );
    assert!(mock.requests().is_empty());
    let exported = String::from_utf8_lossy(&collector.bytes()).into_owned();
    assert!(!exported.contains(PROMPT), "the prompt was exported");
}

#[tokio::test]
async fn with_telemetry_off_no_trace_header_goes_upstream() {
    let mock = MockUpstream::start(vec![Reply::Json(200, completion("ok", 1, 1))]).await;
    let gw = gateway(&[("alpha", &mock.url())], None).await;
    assert!(gw.state.telemetry.is_none());
    let (trace_id, parent_id) = client_trace();
    let response = gw
        .post("/api/v1/chat/completions", chat(false))
        .header("traceparent", format!("00-{trace_id}-{parent_id}-01"))
        .header("tracestate", "vendor=value")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let sent = mock.requests();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].headers.get("traceparent").is_none());
    assert!(sent[0].headers.get("tracestate").is_none());
}

#[tokio::test]
async fn a_cancelled_stream_ends_its_spans() {
    let (collector, url) = Collector::start().await;
    let gate = Arc::new(Notify::new());
    let events = stream_events(&[ANSWER, "!"], (5, 2));
    let mock = MockUpstream::start(vec![Reply::Gated {
        before: events[..2].to_vec(),
        gate: Arc::clone(&gate),
        after: events[2..].to_vec(),
    }])
    .await;
    let gw = gateway(&[("alpha", &mock.url())], Some(&url)).await;
    let (trace_id, parent_id) = client_trace();
    let response = gw
        .post("/api/v1/chat/completions", chat(true))
        .header("traceparent", format!("00-{trace_id}-{parent_id}-01"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    // Read until the first content arrived, then go away.
    let mut body = response.bytes_stream();
    let mut seen = String::new();
    while !seen.contains(ANSWER) {
        let piece = body.next().await.expect("more").expect("bytes");
        seen.push_str(&String::from_utf8_lossy(&piece));
    }
    drop(body);

    let trace_bytes = hex::decode(&trace_id).expect("hex");
    let (root, children) = collector.trace(&trace_bytes, "chat test/model", 3).await;
    let attrs = attributes(&root);
    assert_eq!(int(&attrs, "http.response.status_code"), 499);
    assert_eq!(
        attrs.get("switchyard.cancelled"),
        Some(&Any::BoolValue(true))
    );
    let attempt = children
        .iter()
        .find(|s| s.name == "attempt")
        .expect("attempt");
    assert_eq!(
        attributes(attempt).get("switchyard.cancelled"),
        Some(&Any::BoolValue(true))
    );
    let exported = String::from_utf8_lossy(&collector.bytes()).into_owned();
    assert!(!exported.contains(PROMPT), "the prompt was exported");
    assert!(!exported.contains(ANSWER), "the completion was exported");
}

#[tokio::test]
async fn content_is_exported_only_when_configured_and_the_account_logs_prompts() {
    let (collector, url) = Collector::start().await;
    let mock = MockUpstream::start(vec![Reply::Json(200, completion(ANSWER, 10, 4))]).await;
    let gw = gateway_with(&[("alpha", &mock.url())], Some(&url), true).await;
    let send = |trace_id: String, parent_id: String| {
        gw.post("/api/v1/chat/completions", chat(false))
            .header("traceparent", format!("00-{trace_id}-{parent_id}-01"))
            .send()
    };

    // The exporter takes content, but the account does not log prompts: none is exported.
    let (quiet, parent) = client_trace();
    assert_eq!(
        send(quiet.clone(), parent).await.expect("send").status(),
        200
    );
    let (root, _) = collector
        .trace(&hex::decode(&quiet).expect("hex"), "chat test/model", 3)
        .await;
    assert!(!attributes(&root).contains_key("gen_ai.input.messages"));
    let exported = String::from_utf8_lossy(&collector.bytes()).into_owned();
    assert!(!exported.contains(PROMPT), "the prompt was exported");

    // The account logs prompts: its request's span carries the messages and the answer.
    gw.state
        .store
        .set_account_settings(ACCOUNT, &json!({"prompt_logging": true}))
        .await
        .expect("settings");
    gw.state.settings.invalidate(ACCOUNT).await;
    let (logged, parent) = client_trace();
    assert_eq!(
        send(logged.clone(), parent).await.expect("send").status(),
        200
    );
    let (root, _) = collector
        .trace(&hex::decode(&logged).expect("hex"), "chat test/model", 3)
        .await;
    let attrs = attributes(&root);
    assert!(text(&attrs, "gen_ai.input.messages").contains(PROMPT));
    assert!(text(&attrs, "gen_ai.output.messages").contains(ANSWER));
}
