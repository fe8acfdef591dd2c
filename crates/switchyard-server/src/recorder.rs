//! The recorder: one writer task that takes settlements and audit records off the request path
//! and writes them in batches, each batch in one transaction (a group commit).
//!
//! Invariants:
//! - Requests never write to the database after their hold: they enqueue. With
//!   `store.durability = "before_answer"` (the default) a request's answer waits until the batch
//!   holding its settlement and audit record has committed ([`Pending::wait`], bounded by
//!   `store.record_timeout_secs`); with `"batched"` it does not wait, and a crash loses what was
//!   queued in the last [`LINGER`] plus one batch's write.
//! - A request's settlement and audit record travel as one item, so they are committed in the
//!   same transaction: one never exists without the other.
//! - The recorder is the only writer of the audit chain, so sequence numbers and `prev_hash`
//!   links are assigned in one place, in the order records are written.
//! - [`Recorder::flush`] returns once everything enqueued before it is committed; a clean
//!   shutdown flushes after the last request finished, so nothing acknowledged is lost.
//! - A failed batch is retried (settlement is idempotent); the chain state only advances when a
//!   batch commits. A batch given up on tells its waiters so, and they do not wait longer.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use switchyard_core::audit::{self, Anchor, GENESIS};
use switchyard_store::{AuditRow, ContentRow, GenerationRecord, Settlement, Store};
use tokio::sync::{mpsc, oneshot, Notify};

use crate::clock::Clock;

/// Most items written in one transaction.
const MAX_BATCH: usize = 512;

/// Pause after writing a batch smaller than [`MAX_BATCH`], so that the next one gathers more:
/// a transaction costs about the same for one record as for dozens (the pages it rewrites), and
/// every batch wakes SQLite's thread and the runtime's workers several times over. A settlement
/// that nobody waits for reaches the store at most this much (plus a batch's write) later
/// (limits are held in memory meanwhile). 50 ms cut the gateway's CPU per request by a sixth to
/// a quarter at 1,000 req/s, but the longer bursts of writing added 0.1 ms to the p50 and
/// 0.4 ms to the p90 there: latency wins. A record an answer waits for ends the pause at once.
pub const LINGER: Duration = Duration::from_millis(5);

/// When an answer may leave, relative to the commit of its records (`store.durability`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// A request's answer (a JSON body; a stream's last event) leaves once its settlement and
    /// audit record are committed: a crash never loses the record of an answer a client got.
    #[default]
    BeforeAnswer,
    /// Answers leave at once; their records are committed within [`LINGER`] plus one batch's
    /// write, and a crash (SIGKILL, power loss) loses that window.
    Batched,
}

/// One audit record to write.
#[derive(Debug)]
pub struct AuditEntry {
    /// Unix ms.
    pub created_at: i64,
    /// The request's generation id.
    pub generation_id: String,
    /// The key's account, when known.
    pub account_id: Option<String>,
    /// Canonical JSON (see `audit::canonical_json`); never prompt or completion text.
    pub body: String,
}

enum Item {
    /// A request's audit record, with its generation's settlement when it was served; `done`
    /// hears whether their batch committed.
    Record {
        settlement: Option<Box<Settlement>>,
        audit: Box<AuditEntry>,
        done: Option<oneshot::Sender<bool>>,
    },
    Content(ContentRow),
    Flush(oneshot::Sender<()>),
}

/// Items waiting to be written, by kind; and the signal that ends the writer's pause.
#[derive(Debug, Default)]
struct Depths {
    settlements: AtomicI64,
    audit: AtomicI64,
    content: AtomicI64,
    /// Notified by a flush, a record an answer waits for, or when a full batch is waiting.
    /// Other items alone do not wake the writer while it pauses: that is the point of the
    /// pause.
    wake: Notify,
}

impl Depths {
    /// The counters an item adds to (or takes from): `(settlements, audit, content)`.
    fn count(&self, item: &Item, sign: i64) {
        match item {
            Item::Record { settlement, .. } => {
                if settlement.is_some() {
                    self.settlements.fetch_add(sign, Ordering::Relaxed);
                }
                self.audit.fetch_add(sign, Ordering::Relaxed);
            }
            Item::Content(_) => {
                self.content.fetch_add(sign, Ordering::Relaxed);
            }
            Item::Flush(_) => {}
        }
    }
}

/// Handle to the writer task.
#[derive(Debug, Clone)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Item>,
    depth: Arc<Depths>,
    durability: Durability,
    /// How long an answer waits for its records' commit.
    wait: Duration,
}

impl std::fmt::Debug for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Item::Record { audit, .. } => write!(f, "Record({})", audit.generation_id),
            Item::Content(c) => write!(f, "Content({})", c.id),
            Item::Flush(_) => write!(f, "Flush"),
        }
    }
}

/// Why an answer's records were not known to be committed in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotRecorded {
    /// The wait reached `store.record_timeout_secs`; the writer may still commit them.
    #[error("the records were not committed within store.record_timeout_secs")]
    Timeout,
    /// The writer gave up on their batch after repeated failures, or has stopped.
    #[error("the records could not be written")]
    Failed,
}

impl NotRecorded {
    fn label(self) -> &'static str {
        match self {
            NotRecorded::Timeout => "timeout",
            NotRecorded::Failed => "failed",
        }
    }
}

/// What an answer waits for before it leaves: the commit of its records, in `before_answer`
/// mode; nothing in `batched` mode.
#[must_use = "an answer waits for its records in before_answer mode"]
#[derive(Debug)]
pub struct Pending(Option<(oneshot::Receiver<bool>, Duration)>);

impl Pending {
    /// Nothing to wait for.
    pub fn none() -> Pending {
        Pending(None)
    }

    /// Waits, at most `store.record_timeout_secs`, until the records are committed. A failure
    /// is counted in `switchyard_record_wait_failures_total{reason}`; the wait itself in
    /// `switchyard_record_wait_seconds`.
    pub async fn wait(self) -> Result<(), NotRecorded> {
        let Some((done, limit)) = self.0 else {
            return Ok(());
        };
        let began = Instant::now();
        let outcome = match tokio::time::timeout(limit, done).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false) | Err(_)) => Err(NotRecorded::Failed),
            Err(_) => Err(NotRecorded::Timeout),
        };
        metrics::histogram!("switchyard_record_wait_seconds").record(began.elapsed().as_secs_f64());
        if let Err(e) = outcome {
            metrics::counter!("switchyard_record_wait_failures_total", "reason" => e.label())
                .increment(1);
        }
        outcome
    }
}

impl Recorder {
    /// Starts the writer task on the current runtime. In `before_answer` mode an answer waits
    /// at most `wait` for its records.
    pub fn spawn(
        store: Store,
        audit_key: Option<Vec<u8>>,
        clock: Clock,
        durability: Durability,
        wait: Duration,
    ) -> Recorder {
        let (tx, rx) = mpsc::unbounded_channel();
        let depth = Arc::new(Depths::default());
        let writer = Writer {
            store,
            key: audit_key,
            clock,
            depth: Arc::clone(&depth),
            chain: None,
        };
        tokio::spawn(writer.run(rx));
        Recorder {
            tx,
            depth,
            durability,
            wait,
        }
    }

    /// A handle whose records go nowhere, for unit tests of code that queues records.
    #[cfg(test)]
    pub(crate) fn detached() -> Recorder {
        let (tx, rx) = mpsc::unbounded_channel();
        // Kept open, so that sends succeed; what is sent is never read.
        std::mem::forget(rx);
        Recorder {
            tx,
            depth: Arc::new(Depths::default()),
            durability: Durability::Batched,
            wait: Duration::ZERO,
        }
    }

    /// When answers leave relative to their records.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    fn send(&self, item: Item) {
        let urgent = matches!(item, Item::Record { done: Some(_), .. });
        self.depth.count(&item, 1);
        match self.tx.send(item) {
            Err(mpsc::error::SendError(item)) => {
                self.depth.count(&item, -1);
                // Dropping the item drops its `done`: a waiter hears the failure at once.
                tracing::error!("the recorder has stopped; a record was dropped");
            }
            Ok(()) => {
                let full = [
                    &self.depth.settlements,
                    &self.depth.audit,
                    &self.depth.content,
                ]
                .iter()
                .any(|d| d.load(Ordering::Relaxed) == MAX_BATCH as i64);
                if urgent || full {
                    self.depth.wake.notify_one();
                }
            }
        }
    }

    /// Queues a request's audit record and, when it was served, its generation's settlement,
    /// to be committed together. In `before_answer` mode the result is what the answer waits
    /// for; in `batched` mode it waits for nothing.
    pub fn record(&self, settlement: Option<Settlement>, audit: AuditEntry) -> Pending {
        let (done, pending) = match self.durability {
            Durability::BeforeAnswer => {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Pending(Some((rx, self.wait))))
            }
            Durability::Batched => (None, Pending::none()),
        };
        self.send(Item::Record {
            settlement: settlement.map(Box::new),
            audit: Box::new(audit),
            done,
        });
        pending
    }

    /// Queues a generation's settlement with its audit record; see [`Recorder::record`].
    pub fn settle(
        &self,
        record: GenerationRecord,
        hold_id: Option<String>,
        lease_id: Option<String>,
        audit: AuditEntry,
    ) -> Pending {
        self.record(
            Some(Settlement {
                record,
                hold_id,
                lease_id,
            }),
            audit,
        )
    }

    /// Queues logged content (already encrypted).
    pub fn content(&self, row: ContentRow) {
        self.send(Item::Content(row));
    }

    /// Queues an audit record that no answer waits for (the aggregated records of failed
    /// authentication): its body is canonical JSON (see `audit::canonical_json`) and must
    /// never hold prompt or completion text.
    pub fn audit(
        &self,
        created_at: i64,
        generation_id: &str,
        account_id: Option<&str>,
        body: String,
    ) {
        self.send(Item::Record {
            settlement: None,
            audit: Box::new(AuditEntry {
                created_at,
                generation_id: generation_id.to_owned(),
                account_id: account_id.map(str::to_owned),
                body,
            }),
            done: None,
        });
    }

    /// Waits until everything queued before this call is committed.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        self.send(Item::Flush(done));
        self.depth.wake.notify_one();
        let _ = wait.await;
    }

    /// Items waiting to be written: settlements (the ledger's queue), audit records and
    /// logged content.
    pub fn depths(&self) -> (i64, i64, i64) {
        (
            self.depth.settlements.load(Ordering::Relaxed),
            self.depth.audit.load(Ordering::Relaxed),
            self.depth.content.load(Ordering::Relaxed),
        )
    }
}

struct Writer {
    store: Store,
    key: Option<Vec<u8>>,
    clock: Clock,
    depth: Arc<Depths>,
    /// `(last seq, last hash)`, read from the store on first use.
    chain: Option<(i64, String)>,
}

/// The writer's pause after a small batch, so that the next gathers more: [`LINGER`], or until
/// a flush is asked for or a full batch is waiting.
async fn pause(depth: &Depths) {
    tokio::select! {
        () = tokio::time::sleep(LINGER) => {}
        () = depth.wake.notified() => {}
    }
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Item>) {
        let mut items = Vec::with_capacity(MAX_BATCH);
        loop {
            items.clear();
            if rx.recv_many(&mut items, MAX_BATCH).await == 0 {
                return;
            }
            let n = items.len();
            let mut flushes = Vec::new();
            let mut waiters = Vec::new();
            let mut settlements = Vec::new();
            let mut contents = Vec::new();
            let mut audits = Vec::new();
            for item in items.drain(..) {
                match item {
                    Item::Record {
                        settlement,
                        audit,
                        done,
                    } => {
                        settlements.extend(settlement.map(|s| *s));
                        audits.push(*audit);
                        waiters.extend(done);
                    }
                    Item::Content(c) => contents.push(c),
                    Item::Flush(done) => flushes.push(done),
                }
            }
            let committed = self.write(&settlements, &contents, &audits).await;
            let d = &self.depth;
            d.settlements
                .fetch_sub(settlements.len() as i64, Ordering::Relaxed);
            d.audit.fetch_sub(audits.len() as i64, Ordering::Relaxed);
            d.content
                .fetch_sub(contents.len() as i64, Ordering::Relaxed);
            for done in waiters {
                let _ = done.send(committed);
            }
            let flushed = !flushes.is_empty();
            for done in flushes {
                let _ = done.send(());
            }
            if n < MAX_BATCH && !flushed {
                pause(&self.depth).await;
            }
        }
    }

    async fn chain_state(&mut self) -> Option<(i64, String)> {
        if self.chain.is_none() {
            let last = match self.store.audit_last().await {
                Ok(Some(last)) => Some(last),
                Ok(None) => match self.store.audit_anchor("checkpoint").await {
                    Ok(Some(c)) => Some((c.seq, c.hash)),
                    Ok(None) => Some((0, GENESIS.to_owned())),
                    Err(e) => {
                        tracing::error!(error = %e, "reading the audit checkpoint failed");
                        None
                    }
                },
                Err(e) => {
                    tracing::error!(error = %e, "reading the audit chain head failed");
                    None
                }
            };
            self.chain = last;
        }
        self.chain.clone()
    }

    async fn write(
        &mut self,
        settlements: &[Settlement],
        contents: &[ContentRow],
        audits: &[AuditEntry],
    ) -> bool {
        if settlements.is_empty() && contents.is_empty() && audits.is_empty() {
            return true;
        }
        let mut delay = Duration::from_millis(50);
        for attempt in 1..=8 {
            let mut rows = Vec::with_capacity(audits.len());
            let mut head = None;
            if !audits.is_empty() {
                let Some((mut seq, mut prev)) = self.chain_state().await else {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    continue;
                };
                for entry in audits {
                    seq += 1;
                    let hash = audit::record_hash(&prev, seq, &entry.body);
                    rows.push(AuditRow {
                        seq,
                        created_at: entry.created_at,
                        generation_id: entry.generation_id.clone(),
                        account_id: entry.account_id.clone(),
                        body: entry.body.clone(),
                        prev_hash: prev,
                        hash: hash.clone(),
                    });
                    prev = hash;
                }
                let signature = self.key.as_deref().map_or_else(String::new, |k| {
                    audit::sign(k, &audit::anchor_message("head", seq, &prev))
                });
                head = Some(Anchor {
                    seq,
                    hash: prev,
                    signature,
                });
            }
            match self
                .store
                .write_batch(
                    settlements,
                    contents,
                    &rows,
                    head.as_ref(),
                    self.clock.now_ms(),
                )
                .await
            {
                Ok(()) => {
                    if let Some(h) = head {
                        self.chain = Some((h.seq, h.hash));
                    }
                    return true;
                }
                Err(e) => {
                    // The chain may have moved (another writer) or the database may be away:
                    // re-read the chain state and retry.
                    tracing::error!(error = %e, attempt, "writing a batch of records failed");
                    self.chain = None;
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        tracing::error!(
            settlements = settlements.len(),
            audit_records = audits.len(),
            "giving up on a batch of records after repeated failures"
        );
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recorder handle whose queue nobody reads.
    fn recorder(durability: Durability) -> (Recorder, mpsc::UnboundedReceiver<Item>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let depth = Arc::new(Depths::default());
        let wait = Duration::from_secs(1);
        (
            Recorder {
                tx,
                depth,
                durability,
                wait,
            },
            rx,
        )
    }

    fn audit(recorder: &Recorder) {
        recorder.audit(0, "gen", None, "{}".to_owned());
    }

    fn entry() -> AuditEntry {
        AuditEntry {
            created_at: 0,
            generation_id: "gen".to_owned(),
            account_id: None,
            body: "{}".to_owned(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_pause_lasts_its_length_unless_a_flush_a_waiter_or_a_full_batch_ends_it() {
        let (recorder, _rx) = recorder(Durability::BeforeAnswer);
        // Items alone: the whole pause.
        audit(&recorder);
        let began = tokio::time::Instant::now();
        pause(&recorder.depth).await;
        assert_eq!(began.elapsed(), LINGER);

        // A flush ends it at once.
        let flush = tokio::spawn({
            let recorder = recorder.clone();
            async move { recorder.flush().await }
        });
        tokio::task::yield_now().await;
        let began = tokio::time::Instant::now();
        pause(&recorder.depth).await;
        assert_eq!(began.elapsed(), Duration::ZERO);
        flush.abort();

        // So does a record an answer waits for.
        let _pending = recorder.record(None, entry());
        let began = tokio::time::Instant::now();
        pause(&recorder.depth).await;
        assert_eq!(began.elapsed(), Duration::ZERO);

        // So does a full batch waiting.
        for _ in 0..MAX_BATCH {
            audit(&recorder);
        }
        let began = tokio::time::Instant::now();
        pause(&recorder.depth).await;
        assert_eq!(began.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_batched_record_neither_waits_nor_wakes_the_writer() {
        let (recorder, mut rx) = recorder(Durability::Batched);
        let pending = recorder.record(None, entry());
        assert!(pending.0.is_none());
        assert_eq!(pending.wait().await, Ok(()));
        let began = tokio::time::Instant::now();
        pause(&recorder.depth).await;
        assert_eq!(began.elapsed(), LINGER);
        assert!(matches!(
            rx.recv().await,
            Some(Item::Record { done: None, .. })
        ));
        assert_eq!(recorder.depths(), (0, 1, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_ends_with_the_commit_the_writers_failure_or_the_timeout() {
        let limit = Duration::from_secs(3);
        let pending = || {
            let (tx, rx) = oneshot::channel();
            (tx, Pending(Some((rx, limit))))
        };
        let (tx, p) = pending();
        let _ = tx.send(true);
        assert_eq!(p.wait().await, Ok(()));

        let (tx, p) = pending();
        let _ = tx.send(false);
        assert_eq!(p.wait().await, Err(NotRecorded::Failed));

        // The writer stopped (the item and its sender were dropped).
        let (tx, p) = pending();
        drop(tx);
        assert_eq!(p.wait().await, Err(NotRecorded::Failed));

        // Nothing heard: the wait is bounded.
        let (_tx, p) = pending();
        let began = tokio::time::Instant::now();
        assert_eq!(p.wait().await, Err(NotRecorded::Timeout));
        assert_eq!(began.elapsed(), limit);
    }

    #[tokio::test]
    async fn a_settlement_and_its_audit_record_are_committed_before_the_wait_ends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("r.db").display());
        let store = Store::connect(&url).await.expect("store");
        store.ensure_account("a", "A", 0).await.expect("account");
        let recorder = Recorder::spawn(
            store.clone(),
            None,
            Clock::System,
            Durability::BeforeAnswer,
            Duration::from_secs(30),
        );
        let record = GenerationRecord {
            id: "gen-1".to_owned(),
            account_id: "a".to_owned(),
            status: 200,
            ..GenerationRecord::default()
        };
        let mut audit = entry();
        audit.generation_id = "gen-1".to_owned();
        audit.account_id = Some("a".to_owned());
        recorder
            .settle(record, None, None, audit)
            .wait()
            .await
            .expect("committed");
        // No flush: the wait itself is the commit.
        assert!(store.generation("gen-1").await.expect("read").is_some());
        let (last, _) = store.audit_last().await.expect("read").expect("a record");
        assert_eq!(last, 1);
        assert_eq!(recorder.depths(), (0, 0, 0));
    }
}
