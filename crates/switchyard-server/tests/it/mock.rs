//! A scriptable OpenAI-compatible upstream on 127.0.0.1:0. It records every request and answers
//! from a queue of scripted replies (the last one repeats).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use axum::Router;
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Notify};

/// One scripted reply.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A JSON body with a status.
    Json(u16, Value),
    /// SSE events (`data:` payloads, or whole frames when they start with `event:`), each
    /// sent after `delay`; `cut` closes the connection
    /// abruptly instead of ending normally.
    Sse {
        events: Vec<String>,
        delay: Duration,
        cut: bool,
    },
    /// SSE events: `before` in one burst, then, once `gate` is notified, `after`.
    Gated {
        before: Vec<String>,
        gate: Arc<Notify>,
        after: Vec<String>,
    },
    /// Never answers.
    Hang,
    /// An error with this status whose message and body repeat the request's headers (and a
    /// few other credentials), as some providers' do.
    Echo(u16),
    /// A stream: one chunk, then an error event repeating the request's headers.
    EchoSse,
    /// A body with this status sent in pieces, without a `Content-Length`.
    Unsized(u16, String),
    /// A redirect with this status to this location.
    Redirect(u16, String),
}

/// What [`Reply::Echo`] and [`Reply::EchoSse`] say: the request's headers, and credentials
/// that are not the gateway's.
fn echo(headers: &HeaderMap) -> Value {
    let sent: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(name, value)| (name.to_string(), json!(value.to_str().unwrap_or_default())))
        .collect();
    let listed: Vec<String> = sent.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    json!({"error": {
        "message": format!(
            "Invalid request. You sent {}; also tried sk-proj-abcdefghijklmnopqrstuvwx0123 and x-api-key: other-credential-9",
            listed.join(", ")
        ),
        "type": "invalid_request_error",
        "headers": sent,
    }})
}

/// An event as an SSE frame: one that names its type is sent as is (Anthropic's framing).
fn frame(e: &str) -> Bytes {
    Bytes::from(if e.starts_with("event:") {
        format!("{e}\n\n")
    } else {
        format!("data: {e}\n\n")
    })
}

fn sse_response(rx: mpsc::Receiver<Result<Bytes, std::io::Error>>) -> Response {
    let mut rx = rx;
    let body = Body::from_stream(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(body)
        .expect("response")
}

/// A recorded request.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub path: String,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Default)]
struct Inner {
    replies: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Recorded>>,
    stream_dropped: Notify,
    /// Connections accepted (TLS ones once their handshake succeeded).
    connections: AtomicUsize,
}

#[derive(Clone)]
pub struct MockUpstream {
    inner: Arc<Inner>,
    pub addr: SocketAddr,
    tls: bool,
}

/// A usual completion body.
pub fn completion(content: &str, prompt_tokens: u64, completion_tokens: u64) -> Value {
    json!({
        "id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": "upstream-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}
    })
}

/// Usual stream events: role, the pieces, finish, usage, [DONE].
pub fn stream_events(pieces: &[&str], usage: (u64, u64)) -> Vec<String> {
    let mut events = vec![json!({"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]}).to_string()];
    for p in pieces {
        events.push(json!({"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": null}]}).to_string());
    }
    events.push(json!({"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}).to_string());
    events.push(json!({"id": "c", "object": "chat.completion.chunk", "choices": [], "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1}}).to_string());
    events.push("[DONE]".to_owned());
    events
}

/// The headers of the last recorded request.
fn headers_of(inner: &Inner) -> HeaderMap {
    inner
        .requests
        .lock()
        .expect("lock")
        .last()
        .map(|r| r.headers.clone())
        .unwrap_or_default()
}

struct DropSignal(Arc<Inner>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        self.0.stream_dropped.notify_one();
    }
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    uri: axum::http::Uri,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body_json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    inner.requests.lock().expect("lock").push(Recorded {
        path: uri.to_string(),
        version,
        headers,
        body: body_json,
    });
    let reply = {
        let mut replies = inner.replies.lock().expect("lock");
        if replies.len() > 1 {
            replies.pop_front()
        } else {
            replies.front().cloned()
        }
    };
    match reply.unwrap_or(Reply::Json(500, json!({"error": {"message": "no script"}}))) {
        Reply::Json(status, body) => (
            StatusCode::from_u16(status).expect("status"),
            axum::Json(body),
        )
            .into_response(),
        Reply::Redirect(status, location) => Response::builder()
            .status(status)
            .header("location", location)
            .body(Body::empty())
            .expect("response"),
        Reply::Hang => {
            std::future::pending::<()>().await;
            unreachable!()
        }
        Reply::Echo(status) => (
            StatusCode::from_u16(status).expect("status"),
            axum::Json(echo(&headers_of(&inner))),
        )
            .into_response(),
        Reply::Unsized(status, body) => {
            let pieces: Vec<Result<Bytes, std::io::Error>> = body
                .into_bytes()
                .chunks(4096)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::from_stream(futures::stream::iter(pieces)))
                .expect("response")
        }
        Reply::EchoSse => {
            let error = echo(&headers_of(&inner)).to_string();
            let first = stream_events(&["Hel"], (1, 1)).swap_remove(1);
            let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
            tokio::spawn(async move {
                for e in [first, error] {
                    if tx.send(Ok(frame(&e))).await.is_err() {
                        return;
                    }
                }
            });
            sse_response(rx)
        }
        Reply::Sse { events, delay, cut } => {
            let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(1);
            let signal = DropSignal(Arc::clone(&inner));
            tokio::spawn(async move {
                let _signal = signal;
                for e in events {
                    tokio::time::sleep(delay).await;
                    if tx.send(Ok(frame(&e))).await.is_err() {
                        return;
                    }
                }
                if cut {
                    let _ = tx.send(Err(std::io::Error::other("cut"))).await;
                }
            });
            sse_response(rx)
        }
        Reply::Gated {
            before,
            gate,
            after,
        } => {
            let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
            let signal = DropSignal(Arc::clone(&inner));
            tokio::spawn(async move {
                // Like a paced stream, a gated one says when its client went away (the signal
                // drops with this task), also while it waits at the gate.
                let _signal = signal;
                for e in &before {
                    if tx.send(Ok(frame(e))).await.is_err() {
                        return;
                    }
                }
                tokio::select! {
                    () = gate.notified() => {}
                    () = tx.closed() => return,
                }
                for e in &after {
                    if tx.send(Ok(frame(e))).await.is_err() {
                        return;
                    }
                }
            });
            sse_response(rx)
        }
    }
}

impl MockUpstream {
    pub async fn start(replies: Vec<Reply>) -> MockUpstream {
        let (inner, app) = Self::app(replies);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let counted = Arc::clone(&inner);
        let listener = listener.tap_io(move |_| {
            counted.connections.fetch_add(1, Ordering::AcqRel);
        });
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        MockUpstream {
            inner,
            addr,
            tls: false,
        }
    }

    /// The same upstream over TLS with this certificate chain and key (PEM), speaking HTTP/2
    /// to clients that offer it (ALPN) and HTTP/1.1 to the others.
    pub async fn start_tls(replies: Vec<Reply>, chain_pem: &str, key_pem: &str) -> MockUpstream {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let (inner, app) = Self::app(replies);
        let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("chain");
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key");
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("certificate");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let counted = Arc::clone(&inner);
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, app, counted) =
                    (acceptor.clone(), app.clone(), Arc::clone(&counted));
                tokio::spawn(async move {
                    // A client that refuses the certificate ends here.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    counted.connections.fetch_add(1, Ordering::AcqRel);
                    let service = hyper::service::service_fn(
                        move |request: axum::http::Request<hyper::body::Incoming>| {
                            tower::ServiceExt::oneshot(app.clone(), request.map(Body::new))
                        },
                    );
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
                });
            }
        });
        MockUpstream {
            inner,
            addr,
            tls: true,
        }
    }

    fn app(replies: Vec<Reply>) -> (Arc<Inner>, Router) {
        let inner = Arc::new(Inner {
            replies: Mutex::new(replies.into()),
            ..Inner::default()
        });
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&inner));
        (inner, app)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.inner.connections.load(Ordering::Acquire)
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}/v1", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.requests.lock().expect("lock").clone()
    }

    /// Waits until a streamed reply's connection is dropped.
    pub async fn stream_dropped(&self) {
        self.inner.stream_dropped.notified().await;
    }
}
