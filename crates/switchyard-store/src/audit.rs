//! Batched writes of settlements and audit records, and the audit chain's storage.

use sqlx::Row;
use switchyard_core::audit::{Anchor, StoredRecord};

use crate::{insert_chunks, placeholders, GenerationRecord, Store, StoreResult};

/// A generation to settle, with the hold it releases.
#[derive(Debug, Clone)]
pub struct Settlement {
    /// The record.
    pub record: GenerationRecord,
    /// The hold taken for it.
    pub hold_id: Option<String>,
    /// The lease its hold was taken against (a gateway holding in memory against a lease):
    /// settling consumes the cost from it.
    pub lease_id: Option<String>,
}

/// Logged content of a generation, already encrypted by the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentRow {
    /// Generation id.
    pub id: String,
    /// Owning account.
    pub account_id: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Hex nonce.
    pub nonce: String,
    /// Hex ciphertext.
    pub ciphertext: String,
}

/// One audit record, already chained by the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// Position in the chain.
    pub seq: i64,
    /// Unix milliseconds.
    pub created_at: i64,
    /// The request's generation id.
    pub generation_id: String,
    /// The account, when the request authenticated.
    pub account_id: Option<String>,
    /// Canonical JSON body.
    pub body: String,
    /// Hash of the previous record.
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

impl From<AuditRow> for StoredRecord {
    fn from(r: AuditRow) -> Self {
        StoredRecord {
            seq: r.seq,
            body: r.body,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

fn audit_row(r: &sqlx::any::AnyRow) -> StoreResult<AuditRow> {
    Ok(AuditRow {
        seq: r.try_get("seq")?,
        created_at: r.try_get("created_at")?,
        generation_id: r.try_get("generation_id")?,
        account_id: r.try_get("account_id")?,
        body: r.try_get("body")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

impl Store {
    /// Writes settlements, audit records and the new chain head in one transaction. Settling is
    /// idempotent, so a batch retried after a failure charges nothing twice.
    pub async fn write_batch(
        &self,
        settlements: &[Settlement],
        contents: &[ContentRow],
        audit: &[AuditRow],
        head: Option<&Anchor>,
        now_ms: i64,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        Self::settle_in(&mut tx, self.dialect, settlements).await?;
        for c in contents {
            sqlx::query(
                "INSERT INTO generation_content (id, account_id, created_at, nonce, ciphertext) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
            )
            .bind(&c.id)
            .bind(&c.account_id)
            .bind(c.created_at)
            .bind(&c.nonce)
            .bind(&c.ciphertext)
            .execute(&mut *tx)
            .await?;
        }
        for chunk in insert_chunks(audit) {
            let sql = format!(
                "INSERT INTO audit_log (seq, created_at, generation_id, account_id, body, prev_hash, hash) VALUES {}",
                placeholders(self.dialect, chunk.len(), 7)
            );
            let mut q = sqlx::query(&sql);
            for r in chunk {
                q = q
                    .bind(r.seq)
                    .bind(r.created_at)
                    .bind(&r.generation_id)
                    .bind(r.account_id.as_deref())
                    .bind(&r.body)
                    .bind(&r.prev_hash)
                    .bind(&r.hash);
            }
            q.execute(&mut *tx).await?;
        }
        if let Some(h) = head {
            Self::put_anchor(&mut tx, "head", h, now_ms).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn put_anchor(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        kind: &str,
        a: &Anchor,
        now_ms: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit_anchors (kind, seq, hash, signature, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (kind) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, \
             signature = excluded.signature, updated_at = excluded.updated_at",
        )
        .bind(kind)
        .bind(a.seq)
        .bind(&a.hash)
        .bind(&a.signature)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// The signed anchor of a kind (`head` or `checkpoint`).
    pub async fn audit_anchor(&self, kind: &str) -> StoreResult<Option<Anchor>> {
        let row = sqlx::query("SELECT seq, hash, signature FROM audit_anchors WHERE kind = $1")
            .bind(kind)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| -> StoreResult<Anchor> {
            Ok(Anchor {
                seq: r.try_get("seq")?,
                hash: r.try_get("hash")?,
                signature: r.try_get("signature")?,
            })
        })
        .transpose()
    }

    /// The last record of the chain (`seq`, `hash`), where a writer continues from.
    pub async fn audit_last(&self) -> StoreResult<Option<(i64, String)>> {
        let row = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| -> StoreResult<(i64, String)> { Ok((r.try_get("seq")?, r.try_get("hash")?)) })
            .transpose()
    }

    /// Up to `limit` records from `after_seq` (exclusive), in chain order.
    pub async fn audit_page(&self, after_seq: i64, limit: i64) -> StoreResult<Vec<AuditRow>> {
        let rows = sqlx::query(
            "SELECT seq, created_at, generation_id, account_id, body, prev_hash, hash FROM audit_log \
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_row).collect()
    }

    /// The records of one generation (its request's record, and any written about it later,
    /// such as a viewing of its logged content), in chain order.
    pub async fn audit_for_generation(&self, generation_id: &str) -> StoreResult<Vec<AuditRow>> {
        let rows = sqlx::query(
            "SELECT seq, created_at, generation_id, account_id, body, prev_hash, hash FROM audit_log \
             WHERE generation_id = $1 ORDER BY seq LIMIT 100",
        )
        .bind(generation_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_row).collect()
    }

    /// The record at `seq`, if it is stored.
    pub async fn audit_record(&self, seq: i64) -> StoreResult<Option<AuditRow>> {
        let row = sqlx::query(
            "SELECT seq, created_at, generation_id, account_id, body, prev_hash, hash FROM audit_log \
             WHERE seq = $1",
        )
        .bind(seq)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(audit_row).transpose()
    }

    /// Records created in `[since_ms, until_ms)`, in chain order, up to `limit` after `after_seq`.
    pub async fn audit_range(
        &self,
        since_ms: i64,
        until_ms: i64,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<AuditRow>> {
        let rows = sqlx::query(
            "SELECT seq, created_at, generation_id, account_id, body, prev_hash, hash FROM audit_log \
             WHERE created_at >= $1 AND created_at < $2 AND seq > $3 ORDER BY seq LIMIT $4",
        )
        .bind(since_ms)
        .bind(until_ms)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_row).collect()
    }

    /// Prunes every record created before `before_ms`, behind a checkpoint naming the last
    /// pruned record, in one transaction. `sign` signs the checkpoint `(seq, hash)`. Returns
    /// how many records were removed.
    pub async fn audit_prune(
        &self,
        before_ms: i64,
        sign: impl Fn(i64, &str) -> String,
        now_ms: i64,
    ) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        // Records are appended in time order, so the prefix before `before_ms` is contiguous.
        let last = sqlx::query(
            "SELECT seq, hash FROM audit_log WHERE created_at < $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(before_ms)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(last) = last else {
            tx.rollback().await?;
            return Ok(0);
        };
        let seq: i64 = last.try_get("seq")?;
        let hash: String = last.try_get("hash")?;
        let removed = sqlx::query("DELETE FROM audit_log WHERE seq <= $1")
            .bind(seq)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let signature = sign(seq, &hash);
        Self::put_anchor(
            &mut tx,
            "checkpoint",
            &Anchor {
                seq,
                hash,
                signature,
            },
            now_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(removed)
    }

    /// Logged content of a generation, if any.
    pub async fn content(&self, id: &str) -> StoreResult<Option<ContentRow>> {
        let row = sqlx::query(
            "SELECT id, account_id, created_at, nonce, ciphertext FROM generation_content WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| -> StoreResult<ContentRow> {
            Ok(ContentRow {
                id: r.try_get("id")?,
                account_id: r.try_get("account_id")?,
                created_at: r.try_get("created_at")?,
                nonce: r.try_get("nonce")?,
                ciphertext: r.try_get("ciphertext")?,
            })
        })
        .transpose()
    }

    /// Deletes logged content created before `before_ms`; returns how many rows.
    pub async fn prune_content(&self, before_ms: i64) -> StoreResult<u64> {
        Ok(
            sqlx::query("DELETE FROM generation_content WHERE created_at < $1")
                .bind(before_ms)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }
}
