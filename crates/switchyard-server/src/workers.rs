//! Serving threads: one single-threaded runtime per core, each owning the connections handed to
//! it, like nginx's worker processes.
//!
//! The listener's task accepts and hands each connection to the next worker in turn. A
//! connection, its requests, their upstream calls (through the worker's own HTTP client and
//! connection pool) and the settlement tasks they spawn all stay on that worker's thread: no
//! task is woken across threads on the request path, where a work-stealing runtime hands tasks
//! between its threads several times a request (see docs/performance.md for what that cost).
//!
//! Each connection is served by hyper's HTTP/1 and HTTP/2 server (`hyper_util`'s automatic
//! builder, with tokio's timer) under the limits of [`ConnectionLimits`]: the time allowed for a
//! request's headers and for its body, how long a connection may sit idle between requests, and
//! how many connections may be open at once (one more is answered `503` and closed).
//!
//! Invariants:
//! - A worker's runtime runs until [`Workers::exit`] (or until the [`Workers`] value is
//!   dropped): connections it opened to the store or to providers stay driven while the rest of
//!   shutdown (settlement, the recorder's last flush, closing the store) still uses them.
//! - [`worker_index`] is the calling thread's worker, 0 off the workers.
//! - No connection stays open without a deadline: waiting for headers, for a body or for the
//!   next request each has one; only a request in progress (its handler and its response, a
//!   stream included) has none here.
//! - At most `max_connections` connections are served at once; past it a connection is refused
//!   with the contract's error envelope, never left waiting in the backlog.

use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::Router;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::ServerConfig;

thread_local! {
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// The calling thread's worker index (0 on any other thread).
pub fn worker_index() -> usize {
    WORKER.with(Cell::get)
}

/// The number of workers for a configured count (0: one per CPU).
pub fn count(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The deadlines and the cap every connection is served under.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnectionLimits {
    /// Time allowed to receive a request's headers, from the moment the connection waits for
    /// them (hyper's header timer: on a kept-alive connection it runs from the end of the
    /// previous response).
    pub header_read_timeout: Duration,
    /// Time allowed to receive a request's body, from the moment its headers arrived.
    pub body_read_timeout: Duration,
    /// How long a connection may stay open with no request in progress.
    pub idle_timeout: Duration,
    /// Connections served at once, over all workers.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits::from_config(&ServerConfig::default())
    }
}

impl ConnectionLimits {
    /// The limits of a `[server]` section.
    pub fn from_config(server: &ServerConfig) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs_f64(server.header_read_timeout_secs),
            body_read_timeout: Duration::from_secs_f64(server.body_read_timeout_secs),
            idle_timeout: Duration::from_secs_f64(server.idle_timeout_secs),
            max_connections: server.max_connections,
        }
    }
}

/// Connections refused (answered `503`) at once at most; past this a refused connection is
/// closed without an answer, so that a flood past the cap costs no more than its accepts.
const MAX_REFUSING: usize = 256;

/// The longest a refused connection is given to send its request head.
const REFUSAL_HEAD_TIMEOUT: Duration = Duration::from_secs(2);

/// A connection handed to a worker, with its place under the cap.
struct Handed {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    open: Slot,
}

/// A place under a count's cap, given back when dropped.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    /// A place under `max`, or `None` when all are taken.
    fn take(count: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(Arc::clone(count)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The serving threads.
pub struct Workers {
    inboxes: Vec<mpsc::UnboundedSender<Handed>>,
    served: Vec<oneshot::Receiver<()>>,
    stop: watch::Sender<bool>,
    exit: watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    next: usize,
    limits: ConnectionLimits,
    open: Arc<AtomicUsize>,
    refusing: Arc<AtomicUsize>,
}

impl Workers {
    /// Starts `n` workers serving `app` under `limits`.
    pub fn start(n: usize, app: Router, limits: ConnectionLimits) -> std::io::Result<Workers> {
        let (stop, stop_rx) = watch::channel(false);
        let (exit, exit_rx) = watch::channel(false);
        let mut workers = Workers {
            inboxes: Vec::with_capacity(n),
            served: Vec::with_capacity(n),
            stop,
            exit,
            threads: Vec::with_capacity(n),
            next: 0,
            limits,
            open: Arc::new(AtomicUsize::new(0)),
            refusing: Arc::new(AtomicUsize::new(0)),
        };
        for index in 0..n.max(1) {
            let (inbox, connections) = mpsc::unbounded_channel();
            let (served_tx, served_rx) = oneshot::channel();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (app, stop_rx, mut exit_rx) = (app.clone(), stop_rx.clone(), exit_rx.clone());
            let thread = std::thread::Builder::new()
                .name(format!("switchyard-worker-{index}"))
                .spawn(move || {
                    WORKER.with(|w| w.set(index));
                    runtime.block_on(async move {
                        serve_worker(connections, app, limits, stop_rx).await;
                        let _ = served_tx.send(());
                        let _ = exit_rx.wait_for(|exit| *exit).await;
                    });
                })?;
            workers.inboxes.push(inbox);
            workers.served.push(served_rx);
            workers.threads.push(thread);
        }
        Ok(workers)
    }

    /// Connections being served.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Gives an accepted connection to the next worker, or, past `max_connections`, answers it
    /// `503` and closes it (on the calling runtime).
    pub fn hand(&mut self, stream: TcpStream, addr: SocketAddr) {
        let Some(open) = Slot::take(&self.open, self.limits.max_connections) else {
            self.refuse(stream, addr);
            return;
        };
        let worker = self.next % self.inboxes.len();
        self.next = self.next.wrapping_add(1);
        match stream.into_std() {
            Ok(stream) => {
                let handed = Handed {
                    stream,
                    peer: addr,
                    open,
                };
                if self.inboxes[worker].send(handed).is_err() {
                    tracing::error!(worker, "a worker is gone; the connection is dropped");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not hand over a connection"),
        }
    }

    /// Answers a connection past the cap with `503` and the contract's error envelope, then
    /// closes it; past [`MAX_REFUSING`] refusals at once, closes it without an answer.
    fn refuse(&self, stream: TcpStream, addr: SocketAddr) {
        metrics::counter!("switchyard_connections_refused_total").increment(1);
        let Some(slot) = Slot::take(&self.refusing, MAX_REFUSING) else {
            tracing::warn!(%addr, "connection limit reached; connection closed");
            return;
        };
        tracing::warn!(
            %addr,
            max_connections = self.limits.max_connections,
            "connection limit reached; answering 503"
        );
        let head_timeout = self.limits.header_read_timeout.min(REFUSAL_HEAD_TIMEOUT);
        tokio::spawn(async move {
            let _slot = slot;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(head_timeout)
                .keep_alive(false);
            let service = hyper::service::service_fn(|_request: Request<Incoming>| async {
                Ok::<_, Infallible>(overloaded())
            });
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            // The head timeout bounds the wait for the request; this bounds the answer.
            let _ = tokio::time::timeout(head_timeout * 2, connection).await;
        });
    }

    /// Stops the workers' servers (open requests and streams go on) and waits up to `grace`
    /// for them to finish; `false` when some were still open.
    pub async fn stop(&mut self, grace: Duration) -> bool {
        let _ = self.stop.send(true);
        let served = futures::future::join_all(self.served.drain(..));
        tokio::time::timeout(grace, served).await.is_ok()
    }

    /// Ends the workers' runtimes (whatever is still open on them is dropped) and joins them.
    pub async fn exit(mut self) {
        let _ = self.exit.send(true);
        let threads = std::mem::take(&mut self.threads);
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    }
}

/// The answer to a connection past the cap.
fn overloaded() -> Response<Body> {
    let body = serde_json::json!({"error": {
        "code": 503,
        "message": "The gateway is at its connection limit (server.max_connections); retry shortly",
    }});
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// One worker's server: serves what its inbox brings until `stop`, then lets the open
/// connections finish their requests and close.
async fn serve_worker(
    mut inbox: mpsc::UnboundedReceiver<Handed>,
    app: Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let connections = TaskTracker::new();
    let (closing, closing_rx) = watch::channel(false);
    loop {
        tokio::select! {
            // A stop, or the listener's side gone.
            _ = stop.wait_for(|stop| *stop) => break,
            Some(handed) = inbox.recv() => {
                connections.spawn(serve_connection(
                    handed,
                    Arc::clone(&builder),
                    app.clone(),
                    limits,
                    closing_rx.clone(),
                ));
            }
        }
    }
    let _ = closing.send(true);
    connections.close();
    connections.wait().await;
}

/// Serves one connection until it closes, its idle deadline passes or the worker stops.
async fn serve_connection(
    handed: Handed,
    builder: Arc<auto::Builder<TokioExecutor>>,
    app: Router,
    limits: ConnectionLimits,
    mut closing: watch::Receiver<bool>,
) {
    let Handed { stream, peer, open } = handed;
    let _open = open;
    let stream = match TcpStream::from_std(stream) {
        Ok(stream) => stream,
        Err(e) => {
            tracing::warn!(error = %e, "could not adopt a connection");
            return;
        }
    };
    let activity = Arc::new(Activity::default());
    let service = {
        let activity = Arc::clone(&activity);
        hyper::service::service_fn(move |request: Request<Incoming>| {
            let in_flight = InFlight::start(&activity);
            let timed_out = Arc::new(AtomicBool::new(false));
            let mut request = request.map(|body| {
                Body::new(TimedBody::new(
                    body,
                    limits.body_read_timeout,
                    Arc::clone(&timed_out),
                ))
            });
            // Handlers may ask where the request came from (`ConnectInfo`).
            request.extensions_mut().insert(ConnectInfo(peer));
            let response = app.clone().oneshot(request);
            async move {
                let Ok(mut response) = response.await;
                if timed_out.load(Ordering::Acquire) {
                    // The rest of the body is still on its way: the connection cannot be reused.
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                Ok::<_, Infallible>(response.map(|body| {
                    Body::new(Tracked {
                        inner: body,
                        _in_flight: in_flight,
                    })
                }))
            }
        })
    };
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let idle = idle_expired(&activity, limits.idle_timeout);
    tokio::pin!(idle);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            () = &mut idle, if !shutting_down => {
                connection.as_mut().graceful_shutdown();
                shutting_down = true;
            }
            _ = closing.wait_for(|closing| *closing), if !shutting_down => {
                connection.as_mut().graceful_shutdown();
                shutting_down = true;
            }
        }
    }
}

/// Requests in progress on a connection.
#[derive(Default)]
struct Activity {
    in_flight: AtomicUsize,
    changed: Notify,
}

/// A request in progress: from its headers to the end of its response's body.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>) -> InFlight {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.changed.notify_one();
        InFlight(Arc::clone(activity))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_one();
    }
}

/// Resolves once the connection has had no request in progress for `timeout`.
async fn idle_expired(activity: &Activity, timeout: Duration) {
    loop {
        if activity.in_flight.load(Ordering::Acquire) > 0 {
            activity.changed.notified().await;
            continue;
        }
        // A change (stored as a permit if it came before this wait) restarts the count.
        if tokio::time::timeout(timeout, activity.changed.notified())
            .await
            .is_err()
            && activity.in_flight.load(Ordering::Acquire) == 0
        {
            return;
        }
    }
}

/// A response body that marks its request finished when dropped (sent, or abandoned).
struct Tracked {
    inner: Body,
    _in_flight: InFlight,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The request body did not arrive within `server.body_read_timeout_secs`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within server.body_read_timeout_secs")]
pub struct BodyReadTimeout;

/// A request body with a deadline: past it, reading fails with [`BodyReadTimeout`]. The timer
/// is only set when the body is waited for.
struct TimedBody {
    inner: Incoming,
    deadline: tokio::time::Instant,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    timed_out: Arc<AtomicBool>,
}

impl TimedBody {
    fn new(inner: Incoming, limit: Duration, timed_out: Arc<AtomicBool>) -> TimedBody {
        TimedBody {
            inner,
            deadline: tokio::time::Instant::now() + limit,
            sleep: None,
            timed_out,
        }
    }
}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_ready() {
            this.timed_out.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(Box::new(BodyReadTimeout))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The pause after the `n`th consecutive failed accept: 5 ms doubling to at most one second,
/// so that a lasting failure (out of file descriptors) is neither spun on nor waited out long
/// after it clears.
pub fn accept_backoff(failures: u32) -> Duration {
    const FIRST: Duration = Duration::from_millis(5);
    const MAX: Duration = Duration::from_secs(1);
    FIRST
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn accept_failures_back_off_exponentially_up_to_a_second() {
        let cases = [
            (1, 5),
            (2, 10),
            (3, 20),
            (4, 40),
            (8, 640),
            (9, 1000),
            (40, 1000),
            (u32::MAX, 1000),
        ];
        for (failures, millis) in cases {
            assert_eq!(
                accept_backoff(failures),
                Duration::from_millis(millis),
                "after {failures} failures"
            );
        }
    }

    #[test]
    fn a_slot_is_given_back_when_dropped() {
        let count = Arc::new(AtomicUsize::new(0));
        let first = Slot::take(&count, 2).expect("first");
        let second = Slot::take(&count, 2).expect("second");
        assert!(Slot::take(&count, 2).is_none(), "past the cap");
        drop(first);
        let third = Slot::take(&count, 2).expect("a place was given back");
        drop((second, third));
        assert_eq!(count.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn connections_go_to_the_workers_in_turn_and_exit_ends_them() {
        let app = Router::new().route(
            "/",
            axum::routing::get(|| async { worker_index().to_string() }),
        );
        let mut workers = Workers::start(2, app, ConnectionLimits::default()).expect("start");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        // No pooled connections: every request is a connection of its own.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("client");
        let mut served = Vec::new();
        for _ in 0..4 {
            let request = tokio::spawn(client.get(&url).send());
            let (stream, addr) = listener.accept().await.expect("accept");
            workers.hand(stream, addr);
            let response = request.await.expect("join").expect("send");
            let body = response.text().await.expect("body");
            served.push(body);
        }
        assert_eq!(served, ["0", "1", "0", "1"]);
        assert!(
            workers.stop(Duration::from_secs(10)).await,
            "idle connections close"
        );
        workers.exit().await;
    }
}
