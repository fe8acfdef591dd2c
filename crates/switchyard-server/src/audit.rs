//! Audit trail operations over the store: verify the chain, export a time range as JSON Lines,
//! prune by retention behind a signed checkpoint.

use std::io::Write;

use switchyard_core::audit::{self, Broken, StoredRecord, Verified};
use switchyard_store::{Store, StoreError};

/// Records read per page.
const PAGE: i64 = 1000;

/// A verification that could not run, or that found the chain broken.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The chain is broken.
    #[error(transparent)]
    Broken(#[from] Broken),
    /// Writing the export failed.
    #[error("writing the export failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Verifies the whole stored chain, from the prune checkpoint (if any) to the signed head.
pub async fn verify(store: &Store, key: Option<&[u8]>) -> Result<Verified, AuditError> {
    let checkpoint = store.audit_anchor("checkpoint").await?;
    let head = store.audit_anchor("head").await?;
    // Pages are read in seq order and verified as one sequence.
    let mut records: Vec<StoredRecord> = Vec::new();
    let mut after = checkpoint.as_ref().map_or(0, |c| c.seq);
    // A gap at the start (records deleted right after the checkpoint) must still be seen:
    // read from the lowest stored seq, not from the checkpoint.
    let first = store.audit_page(i64::MIN, 1).await?;
    if let Some(r) = first.first() {
        after = after.min(r.seq - 1);
    }
    loop {
        let page = store.audit_page(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        records.extend(page.into_iter().map(StoredRecord::from));
    }
    Ok(audit::verify(
        records,
        checkpoint.as_ref(),
        head.as_ref(),
        key,
    )?)
}

/// Writes the records created in `[since_ms, until_ms)` as JSON Lines; returns how many.
/// Each line holds the record's `seq`, `hash`, `prev_hash` and its body fields. With
/// `account`, only that account's records are written (the console's export); the links to
/// the records left out are still in each line's `prev_hash`.
pub async fn export<W: Write + ?Sized>(
    store: &Store,
    since_ms: i64,
    until_ms: i64,
    account: Option<&str>,
    out: &mut W,
) -> Result<u64, AuditError> {
    let mut after = i64::MIN;
    let mut count = 0;
    loop {
        let page = store.audit_range(since_ms, until_ms, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for r in page {
            if account.is_some_and(|a| r.account_id.as_deref() != Some(a)) {
                continue;
            }
            let body: serde_json::Value =
                serde_json::from_str(&r.body).unwrap_or(serde_json::Value::Null);
            let line = serde_json::json!({
                "seq": r.seq,
                "created_at": r.created_at,
                "hash": r.hash,
                "prev_hash": r.prev_hash,
                "record": body,
            });
            serde_json::to_writer(&mut *out, &line).map_err(std::io::Error::from)?;
            out.write_all(b"\n")?;
            count += 1;
        }
    }
    out.flush()?;
    Ok(count)
}

/// Prunes records older than `retention_days` behind a checkpoint signed with `key`.
pub async fn prune(
    store: &Store,
    retention_days: u32,
    key: Option<&[u8]>,
    now_ms: i64,
) -> Result<u64, AuditError> {
    if retention_days == 0 {
        return Ok(0);
    }
    let before = now_ms - i64::from(retention_days) * 86_400_000;
    Ok(store
        .audit_prune(
            before,
            |seq, hash| {
                key.map_or_else(String::new, |k| {
                    audit::sign(k, &audit::anchor_message("checkpoint", seq, hash))
                })
            },
            now_ms,
        )
        .await?)
}
