//! `bench-upstream`: an OpenAI-compatible server that answers as fast as it can (or after a fixed
//! delay), for measuring what a proxy in front of it adds. JSON for plain requests, SSE chunks
//! for `"stream": true`. Prints `address=IP:PORT` on its first line of standard output.

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
}

struct Canned {
    args: Args,
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

async fn answer(State(c): State<Arc<Canned>>, body: Bytes) -> Response {
    if c.args.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(c.args.delay_ms)).await;
    }
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
        json: Bytes::from_static(COMPLETION.as_bytes()),
        chunk: Bytes::from_static(CHUNK.as_bytes()),
        tail: Bytes::from_static(TAIL.as_bytes()),
    });
    let app = Router::new()
        .route("/v1/chat/completions", post(answer))
        .with_state(canned);
    axum::serve(listener, app).await
}
