//! Serving threads: one single-threaded runtime per core, each owning the connections handed to
//! it, like nginx's worker processes.
//!
//! The listener's task accepts and hands each connection to the next worker in turn. A
//! connection, its requests, their upstream calls (through the worker's own HTTP client and
//! connection pool) and the settlement tasks they spawn all stay on that worker's thread: no
//! task is woken across threads on the request path, where a work-stealing runtime hands tasks
//! between its threads several times a request (see docs/performance.md for what that cost).
//!
//! Invariants:
//! - A worker's runtime runs until [`Workers::exit`] (or until the [`Workers`] value is
//!   dropped): connections it opened to the store or to providers stay driven while the rest of
//!   shutdown (settlement, the recorder's last flush, closing the store) still uses them.
//! - [`worker_index`] is the calling thread's worker, 0 off the workers.

use std::cell::Cell;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};

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

/// The serving threads.
pub struct Workers {
    inboxes: Vec<mpsc::UnboundedSender<(std::net::TcpStream, SocketAddr)>>,
    served: Vec<oneshot::Receiver<()>>,
    stop: watch::Sender<bool>,
    exit: watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    next: usize,
}

/// Hands a worker its connections, as axum's listener.
struct Inbox(mpsc::UnboundedReceiver<(std::net::TcpStream, SocketAddr)>);

impl axum::serve::Listener for Inbox {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let Some((stream, addr)) = self.0.recv().await else {
                // The listener is gone: nothing more will come (shutdown ends the server).
                std::future::pending::<()>().await;
                continue;
            };
            match TcpStream::from_std(stream) {
                Ok(stream) => return (stream, addr),
                Err(e) => tracing::warn!(error = %e, "could not adopt a connection"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(SocketAddr::from(([0, 0, 0, 0], 0)))
    }
}

impl Workers {
    /// Starts `n` workers serving `app`.
    pub fn start(n: usize, app: Router) -> std::io::Result<Workers> {
        let (stop, stop_rx) = watch::channel(false);
        let (exit, exit_rx) = watch::channel(false);
        let mut workers = Workers {
            inboxes: Vec::with_capacity(n),
            served: Vec::with_capacity(n),
            stop,
            exit,
            threads: Vec::with_capacity(n),
            next: 0,
        };
        for index in 0..n.max(1) {
            let (inbox, connections) = mpsc::unbounded_channel();
            let (served_tx, served_rx) = oneshot::channel();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (app, mut stop_rx, mut exit_rx) = (app.clone(), stop_rx.clone(), exit_rx.clone());
            let thread = std::thread::Builder::new()
                .name(format!("switchyard-worker-{index}"))
                .spawn(move || {
                    WORKER.with(|w| w.set(index));
                    runtime.block_on(async move {
                        let server = axum::serve(Inbox(connections), app).with_graceful_shutdown(
                            async move {
                                // A stop, or the listener's side gone.
                                let _ = stop_rx.wait_for(|stop| *stop).await;
                            },
                        );
                        if let Err(e) = server.await {
                            tracing::error!(error = %e, worker = index, "worker stopped");
                        }
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

    /// Gives an accepted connection to the next worker.
    pub fn hand(&mut self, stream: TcpStream, addr: SocketAddr) {
        let worker = self.next % self.inboxes.len();
        self.next = self.next.wrapping_add(1);
        match stream.into_std() {
            Ok(stream) => {
                if self.inboxes[worker].send((stream, addr)).is_err() {
                    tracing::error!(worker, "a worker is gone; the connection is dropped");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not hand over a connection"),
        }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[tokio::test]
    async fn connections_go_to_the_workers_in_turn_and_exit_ends_them() {
        let app = Router::new().route(
            "/",
            axum::routing::get(|| async { worker_index().to_string() }),
        );
        let mut workers = Workers::start(2, app).expect("start");
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
