//! Budget leases: a slice of a key's limit and of its account's credits taken by one gateway
//! instance, which takes its requests' holds against it in memory.
//!
//! A lease's amount is counted in the key's and the account's `held`, like a hold, so the
//! conditional `UPDATE`s that grant leases and holds see it: outstanding leases, holds and
//! recorded spend together never exceed a limit or the credits, whichever gateways take them.
//! The amount shrinks as settlements naming the lease are committed (each consumes its cost,
//! in the settlement's transaction), when its owner returns what it did not use, and to nothing
//! when any gateway reclaims it after its owner stopped renewing it.

use sqlx::Row;
use switchyard_core::money::Money;
use switchyard_core::periods::Periods;

use crate::{HoldRefused, Store, StoreResult};

/// A lease as stored (tests and diagnostics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    /// Id.
    pub id: String,
    /// The gateway instance that holds it.
    pub owner: String,
    /// The key it is taken from.
    pub key_hash: String,
    /// The account it is taken from.
    pub account_id: String,
    /// What is left of it: granted, less consumed by settlements, less returned.
    pub amount: Money,
    /// When it lapses unless renewed (Unix milliseconds).
    pub expires_at: i64,
}

/// What a granted slice left the lease at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granted {
    /// The slice just taken.
    pub slice: Money,
    /// The lease's amount in the store after it (settlements not yet committed included).
    pub lease_amount: Money,
}

impl Store {
    /// Takes a slice for lease `lease_id` of this instance (creating it, or adding to it): `want`,
    /// or less when a `share`-th of what the key's limit or the account's credits leave (holds
    /// and other leases deducted) is smaller, but never less than `min`. Refused (nothing taken)
    /// when not even `min` fits: the caller then holds per request.
    ///
    /// The slice is taken by the same conditional `UPDATE`s as a hold, so it is exact under any
    /// concurrency; what is left is only read beforehand to size it.
    #[allow(clippy::too_many_arguments)]
    pub async fn grant_lease(
        &self,
        lease_id: &str,
        key_hash: &str,
        account_id: &str,
        want: Money,
        min: Money,
        share: i64,
        now_ms: i64,
    ) -> StoreResult<Result<Granted, HoldRefused>> {
        let (Some(key), Some(account)) = (
            self.key(key_hash, now_ms).await?,
            self.account(account_id).await?,
        ) else {
            return Ok(Err(HoldRefused::Missing));
        };
        let key_left = key
            .limit_remaining()
            .map(|r| r.picos().saturating_sub(key.held.picos()).max(0));
        let credits_left = account
            .balance()
            .picos()
            .saturating_sub(account.held.picos())
            .max(0);
        let left = key_left.map_or(credits_left, |k| k.min(credits_left));
        let slice = want.picos().min(left / share.max(1));
        if slice < min.picos() || slice <= 0 {
            let remaining = Money::from_picos(left);
            return Ok(Err(match key_left {
                Some(k) if k <= credits_left => HoldRefused::KeyLimit {
                    needed: min,
                    remaining,
                },
                _ => HoldRefused::Credits {
                    needed: min,
                    remaining,
                },
            }));
        }
        let slice = Money::from_picos(slice);
        // The hold's own conditional statements take the slice (or refuse it if another gateway
        // took budget since it was read); its hold row is not kept: the lease row replaces it.
        let mut tx = self.pool.begin().await?;
        // The lease's row first (when it exists): rows are locked leases, keys, accounts, in
        // that order everywhere, so a grant and a settlement batch never deadlock.
        sqlx::query("UPDATE leases SET expires_at = $1 WHERE id = $2")
            .bind(now_ms.saturating_add(self.hold_lease_ms))
            .bind(lease_id)
            .execute(&mut *tx)
            .await?;
        if !Self::take_budget(&mut tx, key_hash, account_id, slice, now_ms).await? {
            tx.rollback().await?;
            return Ok(Err(HoldRefused::KeyLimit {
                needed: slice,
                remaining: Money::ZERO,
            }));
        }
        let amount: i64 = sqlx::query_scalar(
            "INSERT INTO leases (id, owner, key_hash, account_id, amount, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (id) DO UPDATE SET amount = leases.amount + excluded.amount, \
             expires_at = excluded.expires_at RETURNING amount",
        )
        .bind(lease_id)
        .bind(&*self.instance)
        .bind(key_hash)
        .bind(account_id)
        .bind(slice.picos())
        .bind(now_ms)
        .bind(now_ms.saturating_add(self.hold_lease_ms))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(Granted {
            slice,
            lease_amount: Money::from_picos(amount),
        }))
    }

    /// Gives `amount` of lease `lease_id` back to its key and account (never more than the
    /// lease has left); with `close`, deletes the lease once nothing is left of it. Returns how
    /// much was given back.
    pub async fn return_lease(
        &self,
        lease_id: &str,
        amount: Money,
        close: bool,
    ) -> StoreResult<Money> {
        let mut tx = self.pool.begin().await?;
        // The write comes first, so that SQLite takes its write lock at once (a read that
        // turned into a write would fail as busy instead of waiting).
        let mut give = amount.picos().max(0);
        let mut row = sqlx::query(
            "UPDATE leases SET amount = amount - $1 WHERE id = $2 AND amount >= $1 \
             RETURNING key_hash, account_id",
        )
        .bind(give)
        .bind(lease_id)
        .fetch_optional(&mut *tx)
        .await?;
        if row.is_none() {
            // Less is left than asked: give back what is left, if a settlement committed in
            // between has not changed it.
            let left: Option<i64> = sqlx::query_scalar("SELECT amount FROM leases WHERE id = $1")
                .bind(lease_id)
                .fetch_optional(&mut *tx)
                .await?;
            give = left.unwrap_or(0).max(0);
            row = sqlx::query(
                "UPDATE leases SET amount = amount - $1 WHERE id = $2 AND amount = $1 \
                 RETURNING key_hash, account_id",
            )
            .bind(give)
            .bind(lease_id)
            .fetch_optional(&mut *tx)
            .await?;
        }
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(Money::ZERO);
        };
        let key_hash: String = row.try_get("key_hash")?;
        let account_id: String = row.try_get("account_id")?;
        Self::unhold(&mut tx, &key_hash, &account_id, give).await?;
        if close {
            sqlx::query("DELETE FROM leases WHERE id = $1 AND amount = 0")
                .bind(lease_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Money::from_picos(give))
    }

    /// Restarts the expiry of this instance's leases that have anything left; returns how many.
    /// A lease left at nothing is not renewed: it lapses and is deleted by a later reclaim.
    pub async fn renew_leases(&self, now_ms: i64) -> StoreResult<u64> {
        let done = sqlx::query("UPDATE leases SET expires_at = $1 WHERE owner = $2 AND amount > 0")
            .bind(now_ms.saturating_add(self.hold_lease_ms))
            .bind(&*self.instance)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Deletes this instance's leases that have nothing left (their last settlements were
    /// committed after they were given back); returns how many. Nothing is held against an
    /// empty lease, so this is safe whenever: a later slice for the same lease makes its row
    /// again.
    pub async fn close_empty_leases(&self) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM leases WHERE owner = $1 AND amount = 0")
            .bind(&*self.instance)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Deletes every lease of this instance, giving what is left of each back to its key and
    /// account: the instance is stopping, nothing is held against them any more and every
    /// settlement naming them is committed. Whatever this instance's own accounting says, no
    /// budget stays behind (a slice whose grant's answer was lost with its connection
    /// included). Returns how much was given back in total.
    pub async fn return_own_leases(&self) -> StoreResult<Money> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM leases WHERE owner = $1")
            .bind(&*self.instance)
            .fetch_all(&self.pool)
            .await?;
        self.delete_leases(ids, None).await
    }

    /// Deletes every lease that lapsed by `now_ms` (its owner stopped renewing it: it crashed
    /// or lost the database for longer than the lease), giving what was left of it back to its
    /// key and account. Returns how much was given back in total.
    pub async fn reclaim_leases(&self, now_ms: i64) -> StoreResult<Money> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM leases WHERE expires_at <= $1")
            .bind(now_ms)
            .fetch_all(&self.pool)
            .await?;
        self.delete_leases(ids, Some(now_ms)).await
    }

    /// Deletes leases (those lapsed by `lapsed_by`, when given), each in its own transaction
    /// with what was left of it given back; returns the total given back.
    async fn delete_leases(&self, ids: Vec<String>, lapsed_by: Option<i64>) -> StoreResult<Money> {
        let mut total = 0i64;
        for id in ids {
            let mut tx = self.pool.begin().await?;
            let row = sqlx::query(
                "DELETE FROM leases WHERE id = $1 AND expires_at <= $2 \
                 RETURNING key_hash, account_id, amount",
            )
            .bind(&id)
            .bind(lapsed_by.unwrap_or(i64::MAX))
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = row {
                let key_hash: String = row.try_get("key_hash")?;
                let account_id: String = row.try_get("account_id")?;
                let amount: i64 = row.try_get("amount")?;
                Self::unhold(&mut tx, &key_hash, &account_id, amount).await?;
                total = total.saturating_add(amount);
            }
            tx.commit().await?;
        }
        Ok(Money::from_picos(total))
    }

    /// Every lease, oldest first (tests and diagnostics).
    pub async fn leases(&self) -> StoreResult<Vec<LeaseRow>> {
        let rows = sqlx::query(
            "SELECT id, owner, key_hash, account_id, amount, expires_at FROM leases \
             ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LeaseRow {
                    id: r.try_get("id")?,
                    owner: r.try_get("owner")?,
                    key_hash: r.try_get("key_hash")?,
                    account_id: r.try_get("account_id")?,
                    amount: Money::from_picos(r.try_get("amount")?),
                    expires_at: r.try_get("expires_at")?,
                })
            })
            .collect()
    }

    /// Consumes, inside a settlement batch's transaction, what each lease's settlements cost
    /// (`(lease, key, account) -> cost`), and returns what each key's and each account's `held`
    /// must shrink by: the caller folds that into the statements that charge the same costs, so
    /// spend plus holds and leases stays where the leases had put it. A lease already reclaimed
    /// (or, which the gateway's accounting rules out, left with less than its cost) is not
    /// touched: the charges alone are recorded. Leases are locked first, in order.
    #[allow(clippy::type_complexity)]
    pub(crate) async fn consume_leases<'a>(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        leases: &std::collections::BTreeMap<(&'a str, &'a str, &'a str), i64>,
    ) -> StoreResult<(
        std::collections::BTreeMap<&'a str, i64>,
        std::collections::BTreeMap<&'a str, i64>,
    )> {
        let mut keys: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
        let mut accounts: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
        for (&(lease_id, key_hash, account_id), &cost) in leases {
            if cost <= 0 {
                continue;
            }
            let consumed = sqlx::query(
                "UPDATE leases SET amount = amount - $1 WHERE id = $2 AND amount >= $1",
            )
            .bind(cost)
            .bind(lease_id)
            .execute(&mut **tx)
            .await?
            .rows_affected()
                == 1;
            if !consumed {
                tracing::warn!(
                    lease_id,
                    "a settlement's lease was gone: its charge is recorded alone"
                );
                continue;
            }
            *keys.entry(key_hash).or_default() += cost;
            *accounts.entry(account_id).or_default() += cost;
        }
        Ok((keys, accounts))
    }

    /// Adds `amount` to the key's and the account's `held` if the key's current limit window and
    /// the account's credits cover it, with the conditions of [`Store::hold`]; false (nothing
    /// changed once the caller rolls back) when either refuses.
    async fn take_budget(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        key_hash: &str,
        account_id: &str,
        amount: Money,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let p = Periods::at(now_ms);
        let key_ok = sqlx::query(
            "UPDATE api_keys SET held = held + $1 WHERE hash = $2 AND (limit_amount IS NULL OR \
             (CASE limit_reset \
                WHEN 'daily' THEN (CASE WHEN day_index = $3 THEN usage_daily + include_byok_in_limit * byok_usage_daily ELSE 0 END) \
                WHEN 'weekly' THEN (CASE WHEN week_index = $4 THEN usage_weekly + include_byok_in_limit * byok_usage_weekly ELSE 0 END) \
                WHEN 'monthly' THEN (CASE WHEN month_index = $5 THEN usage_monthly + include_byok_in_limit * byok_usage_monthly ELSE 0 END) \
                ELSE usage + include_byok_in_limit * byok_usage END) + held + $1 <= limit_amount)",
        )
        .bind(amount.picos())
        .bind(key_hash)
        .bind(p.day)
        .bind(p.week)
        .bind(p.month)
        .execute(&mut **tx)
        .await?
        .rows_affected()
            == 1;
        if !key_ok {
            return Ok(false);
        }
        let account_ok = sqlx::query(
            "UPDATE accounts SET held = held + $1 WHERE id = $2 AND credits - usage - held - $1 >= 0",
        )
        .bind(amount.picos())
        .bind(account_id)
        .execute(&mut **tx)
        .await?
        .rows_affected()
            == 1;
        Ok(account_ok)
    }

    async fn unhold(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        key_hash: &str,
        account_id: &str,
        amount: i64,
    ) -> StoreResult<()> {
        if amount == 0 {
            return Ok(());
        }
        sqlx::query("UPDATE api_keys SET held = held - $1 WHERE hash = $2")
            .bind(amount)
            .bind(key_hash)
            .execute(&mut **tx)
            .await?;
        sqlx::query("UPDATE accounts SET held = held - $1 WHERE id = $2")
            .bind(amount)
            .bind(account_id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}
