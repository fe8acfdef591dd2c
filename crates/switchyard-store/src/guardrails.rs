//! Guardrails and their key assignments. The guardrail itself is the contract's JSON object;
//! the gateway validates it before it is stored.

use sqlx::Row;

use crate::{Store, StoreResult};

/// A stored guardrail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardrailRow {
    /// Id.
    pub id: String,
    /// The guardrail's JSON.
    pub body: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// A key's assignment to a guardrail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The guardrail.
    pub guardrail_id: String,
    /// The key.
    pub key_hash: String,
    /// The key's name.
    pub key_name: String,
    /// The key's label.
    pub key_label: String,
    /// Unix ms.
    pub assigned_at: i64,
}

fn row(r: &sqlx::any::AnyRow) -> StoreResult<GuardrailRow> {
    Ok(GuardrailRow {
        id: r.try_get("id")?,
        body: r.try_get("body")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl Store {
    /// Stores a new guardrail.
    pub async fn create_guardrail(
        &self,
        account: &str,
        id: &str,
        body: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO guardrails (id, account_id, body, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(id)
        .bind(account)
        .bind(body)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        self.notify(crate::Change::Guardrails(account.to_owned()))
            .await;
        Ok(())
    }

    /// The account's guardrails, oldest first.
    pub async fn list_guardrails(&self, account: &str) -> StoreResult<Vec<GuardrailRow>> {
        let rows = sqlx::query(
            "SELECT id, body, created_at, updated_at FROM guardrails WHERE account_id = $1 ORDER BY created_at, id",
        )
        .bind(account)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row).collect()
    }

    /// One of the account's guardrails.
    pub async fn guardrail(&self, account: &str, id: &str) -> StoreResult<Option<GuardrailRow>> {
        let r = sqlx::query(
            "SELECT id, body, created_at, updated_at FROM guardrails WHERE account_id = $1 AND id = $2",
        )
        .bind(account)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        r.as_ref().map(row).transpose()
    }

    /// Replaces a guardrail's body; `false` when it does not exist.
    pub async fn update_guardrail(
        &self,
        account: &str,
        id: &str,
        body: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let updated = sqlx::query(
            "UPDATE guardrails SET body = $1, updated_at = $2 WHERE account_id = $3 AND id = $4",
        )
        .bind(body)
        .bind(now_ms)
        .bind(account)
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        self.notify(crate::Change::Guardrails(account.to_owned()))
            .await;
        Ok(updated)
    }

    /// Deletes a guardrail and its assignments; `false` when it does not exist.
    pub async fn delete_guardrail(&self, account: &str, id: &str) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM guardrail_keys WHERE account_id = $1 AND guardrail_id = $2")
            .bind(account)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM guardrails WHERE account_id = $1 AND id = $2")
            .bind(account)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        tx.commit().await?;
        self.notify(crate::Change::Guardrails(account.to_owned()))
            .await;
        Ok(done)
    }

    /// Assigns the guardrail to the account's keys among `hashes` (replacing any earlier
    /// assignment of those keys); returns how many were assigned.
    pub async fn assign_guardrail(
        &self,
        account: &str,
        id: &str,
        hashes: &[String],
        now_ms: i64,
    ) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        let mut count = 0;
        for hash in hashes {
            let owned: Option<String> =
                sqlx::query_scalar("SELECT hash FROM api_keys WHERE hash = $1 AND account_id = $2")
                    .bind(hash)
                    .bind(account)
                    .fetch_optional(&mut *tx)
                    .await?;
            if owned.is_none() {
                continue;
            }
            sqlx::query(
                "INSERT INTO guardrail_keys (key_hash, guardrail_id, account_id, assigned_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (key_hash) DO UPDATE SET guardrail_id = excluded.guardrail_id, assigned_at = excluded.assigned_at",
            )
            .bind(hash)
            .bind(id)
            .bind(account)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            count += 1;
        }
        tx.commit().await?;
        self.notify(crate::Change::Guardrails(account.to_owned()))
            .await;
        Ok(count)
    }

    /// Removes the guardrail from the keys among `hashes`; returns how many were removed.
    pub async fn unassign_guardrail(
        &self,
        account: &str,
        id: &str,
        hashes: &[String],
    ) -> StoreResult<u64> {
        let mut count = 0;
        for hash in hashes {
            count += sqlx::query(
                "DELETE FROM guardrail_keys WHERE key_hash = $1 AND guardrail_id = $2 AND account_id = $3",
            )
            .bind(hash)
            .bind(id)
            .bind(account)
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        self.notify(crate::Change::Guardrails(account.to_owned()))
            .await;
        Ok(count)
    }

    /// Key assignments of the account, of one guardrail or all.
    pub async fn guardrail_assignments(
        &self,
        account: &str,
        id: Option<&str>,
    ) -> StoreResult<Vec<Assignment>> {
        let rows = sqlx::query(
            "SELECT g.guardrail_id, g.key_hash, k.name, k.label, g.assigned_at FROM guardrail_keys g \
             JOIN api_keys k ON k.hash = g.key_hash WHERE g.account_id = $1 AND ($2 = '' OR g.guardrail_id = $2) \
             ORDER BY g.assigned_at, g.key_hash",
        )
        .bind(account)
        .bind(id.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Assignment {
                    guardrail_id: r.try_get(0)?,
                    key_hash: r.try_get(1)?,
                    key_name: r.try_get(2)?,
                    key_label: r.try_get(3)?,
                    assigned_at: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// The guardrail assigned to a key, if any.
    pub async fn guardrail_for_key(&self, key_hash: &str) -> StoreResult<Option<GuardrailRow>> {
        let r = sqlx::query(
            "SELECT g.id, g.body, g.created_at, g.updated_at FROM guardrail_keys a \
             JOIN guardrails g ON g.id = a.guardrail_id WHERE a.key_hash = $1",
        )
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await?;
        r.as_ref().map(row).transpose()
    }
}
