//! `bench-proxy`: the thinnest proxy the gateway's HTTP stack can make (axum's server, reqwest's
//! client, the body passed through as it comes, nothing else). It shows what the stack alone costs,
//! so that the benchmark can tell the gateway's own work from the floor of the crates it is built
//! on. Served like the gateway: one single-threaded runtime per core, each with its own client,
//! connections handed to them in turn (`--work-stealing`: one multi-threaded runtime instead).
//! `POST /NAME/REST` goes to the URL of `--upstream NAME=URL` plus `/REST`; prints
//! `address=IP:PORT` on its first line of standard output.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::Router;
use clap::Parser;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Parser, Debug, Clone)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// An upstream, `NAME=URL` (e.g. `fast=http://127.0.0.1:8081`); repeatable.
    #[arg(long, required = true)]
    upstream: Vec<String>,
    /// Serving threads (0: one per CPU).
    #[arg(long, default_value_t = 0)]
    workers: usize,
    /// One multi-threaded (work-stealing) runtime instead of a runtime per worker.
    #[arg(long)]
    work_stealing: bool,
    /// hyper's own client instead of reqwest (what reqwest's layers cost).
    #[arg(long)]
    hyper_client: bool,
}

type HyperClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<Bytes>,
>;

struct Proxy {
    upstreams: HashMap<String, String>,
    http: reqwest::Client,
    hyper: Option<HyperClient>,
}

async fn forward(State(p): State<Arc<Proxy>>, request: Request) -> Response {
    let path = request.uri().path().trim_start_matches('/');
    let (name, rest) = path.split_once('/').unwrap_or((path, ""));
    let Some(base) = p.upstreams.get(name) else {
        return status(StatusCode::NOT_FOUND);
    };
    let url = format!("{base}/{rest}");
    let body = match axum::body::to_bytes(request.into_body(), 1 << 20).await {
        Ok(body) => body,
        Err(_) => return status(StatusCode::BAD_REQUEST),
    };
    if let Some(client) = &p.hyper {
        return forward_hyper(client, &url, body).await;
    }
    let answer = match p
        .http
        .post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
    {
        Ok(answer) => answer,
        Err(_) => return status(StatusCode::BAD_GATEWAY),
    };
    let mut response = Response::builder().status(answer.status().as_u16());
    if let Some(kind) = answer.headers().get(header::CONTENT_TYPE) {
        response = response.header(header::CONTENT_TYPE, kind.as_bytes());
    }
    let streamed = answer
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|kind| kind.as_bytes().starts_with(b"text/event-stream"));
    let body = if streamed {
        Body::from_stream(answer.bytes_stream())
    } else {
        match answer.bytes().await {
            Ok(bytes) => Body::from(bytes),
            Err(_) => return status(StatusCode::BAD_GATEWAY),
        }
    };
    response
        .body(body)
        .unwrap_or_else(|_| status(StatusCode::BAD_GATEWAY))
}

async fn forward_hyper(client: &HyperClient, url: &str, body: Bytes) -> Response {
    let request = axum::http::Request::post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .body(http_body_util::Full::new(body));
    let Ok(request) = request else {
        return status(StatusCode::BAD_GATEWAY);
    };
    match client.request(request).await {
        // The body is passed on frame by frame as it comes, streamed or not.
        Ok(answer) => answer.map(Body::new),
        Err(_) => status(StatusCode::BAD_GATEWAY),
    }
}

fn status(code: StatusCode) -> Response {
    let mut response = Response::new(Body::from(Bytes::new()));
    *response.status_mut() = code;
    response
}

struct Handed(tokio::sync::mpsc::UnboundedReceiver<(std::net::TcpStream, std::net::SocketAddr)>);

impl axum::serve::Listener for Handed {
    type Io = tokio::net::TcpStream;
    type Addr = std::net::SocketAddr;
    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Some((stream, addr)) = self.0.recv().await else {
                std::future::pending::<()>().await;
                continue;
            };
            if let Ok(stream) = tokio::net::TcpStream::from_std(stream) {
                return (stream, addr);
            }
        }
    }
    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
    }
}

fn app(upstreams: &HashMap<String, String>, hyper_client: bool) -> Result<Router, reqwest::Error> {
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let hyper = hyper_client.then(|| {
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_nodelay(true);
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(connector)
    });
    let proxy = Arc::new(Proxy {
        upstreams: upstreams.clone(),
        http,
        hyper,
    });
    Ok(Router::new().fallback(forward).with_state(proxy))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut upstreams = HashMap::new();
    for spec in &args.upstream {
        let (name, url) = spec
            .split_once('=')
            .ok_or_else(|| format!("--upstream {spec:?}: expected NAME=URL"))?;
        upstreams.insert(name.to_owned(), url.trim_end_matches('/').to_owned());
    }
    if args.work_stealing {
        return tokio::runtime::Runtime::new()?.block_on(async {
            let listener = tokio::net::TcpListener::bind(&args.listen).await?;
            println!("address={}", listener.local_addr()?);
            axum::serve(listener, app(&upstreams, args.hyper_client)?).await?;
            Ok(())
        });
    }
    let workers = match args.workers {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let mut senders = Vec::new();
    for _ in 0..workers {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        senders.push(tx);
        let app = app(&upstreams, args.hyper_client)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::spawn(move || {
            runtime.block_on(async move { axum::serve(Handed(rx), app).await })
        });
    }
    let listener = std::net::TcpListener::bind(&args.listen)?;
    println!("address={}", listener.local_addr()?);
    for (n, accepted) in listener.incoming().enumerate() {
        let Ok(stream) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        stream.set_nonblocking(true)?;
        let addr = stream.peer_addr()?;
        let _ = senders[n % senders.len()].send((stream, addr));
    }
    Ok(())
}
