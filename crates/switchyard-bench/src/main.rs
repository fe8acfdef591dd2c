//! `bench-upstream`: an OpenAI-compatible server that answers as fast as it can (or after a fixed
//! delay), for measuring what a proxy in front of it adds. JSON for plain requests, SSE chunks
//! for `"stream": true`. Prints `address=IP:PORT` on its first line of standard output. Faults
//! on demand, for soak runs: every Nth request answered 503, every Nth stream cut midway.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use clap::Parser;

#[derive(Parser, Debug, Clone)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Delay before answering, in milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Content chunks in a streamed answer.
    #[arg(long, default_value_t = 5)]
    chunks: usize,
    /// Pause between streamed chunks, in milliseconds.
    #[arg(long, default_value_t = 0)]
    chunk_interval_ms: u64,
    /// Faults: every Nth request is answered 503 (0: never).
    #[arg(long, default_value_t = 0)]
    fail_every: u64,
    /// Faults: every Nth stream is cut (the connection dropped) after half its chunks (0: never).
    #[arg(long, default_value_t = 0)]
    cut_every: u64,
}

struct Canned {
    args: Args,
    /// Requests answered so far, for the faults.
    served: std::sync::atomic::AtomicU64,
    json: Bytes,
    chunk: Bytes,
    tail: Bytes,
}

const COMPLETION: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the benchmark upstream."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":8,"total_tokens":20}}"#;
const CHUNK: &str = "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"word \"},\"finish_reason\":null}]}\n\n";
const TAIL: &str = "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":8,\"total_tokens\":20}}\n\ndata: [DONE]\n\n";

fn wants_stream(body: &[u8]) -> bool {
    // A byte search: the upstream must cost less than what is measured in front of it.
    body.windows(13).any(|w| w == b"\"stream\":true")
        || body.windows(14).any(|w| w == b"\"stream\": true")
}

/// Whether the `n`th request (from 1) is one of every `every` (0: none).
fn nth(n: u64, every: u64) -> bool {
    every > 0 && n.is_multiple_of(every)
}

async fn answer(State(c): State<Arc<Canned>>, body: Bytes) -> Response {
    let n = c.served.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    if c.args.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(c.args.delay_ms)).await;
    }
    if nth(n, c.args.fail_every) {
        return Response::builder()
            .status(503)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                r#"{"error":{"message":"injected fault","type":"server_error"}}"#,
            ))
            .unwrap_or_default();
    }
    let cut_at = nth(n, c.args.cut_every).then_some(c.args.chunks / 2);
    if !wants_stream(&body) {
        return Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(c.json.clone()))
            .unwrap_or_default();
    }
    let c2 = Arc::clone(&c);
    let stream = futures::stream::unfold(0usize, move |i| {
        let c = Arc::clone(&c2);
        async move {
            if i > c.args.chunks {
                return None;
            }
            if cut_at == Some(i) {
                // An error ends the body without its end: the connection is dropped mid-stream.
                return Some((
                    Err(std::io::Error::other("injected cut")),
                    c.args.chunks + 1,
                ));
            }
            if i == c.args.chunks {
                return Some((Ok::<Bytes, std::io::Error>(c.tail.clone()), i + 1));
            }
            if i > 0 && c.args.chunk_interval_ms > 0 {
                tokio::time::sleep(Duration::from_millis(c.args.chunk_interval_ms)).await;
            }
            Some((Ok(c.chunk.clone()), i + 1))
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!("address={}", listener.local_addr()?);
    let canned = Arc::new(Canned {
        args,
        served: std::sync::atomic::AtomicU64::new(0),
        json: Bytes::from_static(COMPLETION.as_bytes()),
        chunk: Bytes::from_static(CHUNK.as_bytes()),
        tail: Bytes::from_static(TAIL.as_bytes()),
    });
    let app = Router::new()
        .route("/v1/chat/completions", post(answer))
        .with_state(canned);
    axum::serve(listener, app).await
}
