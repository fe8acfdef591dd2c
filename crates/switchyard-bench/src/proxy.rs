//! `bench-proxy`: the thinnest proxy the gateway's HTTP stack can make (axum's server, reqwest's
//! client, the body passed through as it comes, nothing else). It shows what the stack alone costs,
//! so that the benchmark can tell the gateway's own work from the floor of the crates it is built
//! on. Served by the gateway's own serving workers (`switchyard_server::workers`: one
//! single-threaded runtime per core, connections handed to them in turn), each with its own
//! client, as in the gateway (`--work-stealing`: one multi-threaded runtime instead).
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
use switchyard_server::workers;

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
    /// One client per serving worker, picked by the worker's index (as the gateway does).
    clients: Vec<(reqwest::Client, Option<HyperClient>)>,
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
    let (http, hyper) = &p.clients[workers::worker_index() % p.clients.len()];
    if let Some(client) = hyper {
        return forward_hyper(client, &url, body).await;
    }
    let answer = match http
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

fn app(
    upstreams: &HashMap<String, String>,
    clients: usize,
    hyper_client: bool,
) -> Result<Router, reqwest::Error> {
    let clients = (0..clients.max(1))
        .map(|_| {
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
            Ok((http, hyper))
        })
        .collect::<Result<Vec<_>, reqwest::Error>>()?;
    let proxy = Arc::new(Proxy {
        upstreams: upstreams.clone(),
        clients,
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
            axum::serve(listener, app(&upstreams, 1, args.hyper_client)?).await?;
            Ok(())
        });
    }
    let n = workers::count(args.workers);
    let app = app(&upstreams, n, args.hyper_client)?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let listener = tokio::net::TcpListener::bind(&args.listen).await?;
            println!("address={}", listener.local_addr()?);
            let mut workers =
                workers::Workers::start(n, app, workers::ConnectionLimits::default())?;
            loop {
                let Ok((stream, addr)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                workers.hand(stream, addr);
            }
        })
}
