//! The credit ledger: holds against a key's limit and the account's credits, their leases, and
//! settlement (charging the cost and writing the generation record in one transaction).

use sqlx::Row;
use switchyard_core::money::Money;
use switchyard_core::periods::Periods;

use crate::audit::Settlement;
use crate::end_users::window_sql;
use crate::generations::{GENERATION_COLUMNS, GENERATION_COLUMN_COUNT};
use crate::{
    b, insert_chunks, placeholders, to_i64, Dialect, GenerationRecord, LimitReset, Store,
    StoreResult, UserHold,
};

/// Why a hold was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldRefused {
    /// The key's limit cannot cover it.
    KeyLimit {
        /// The hold asked for.
        needed: Money,
        /// What the limit still allows, holds deducted.
        remaining: Money,
    },
    /// The account's credits cannot cover it.
    Credits {
        /// The hold asked for.
        needed: Money,
        /// Credits left, holds deducted.
        remaining: Money,
    },
    /// The end user's limit cannot cover it.
    EndUserLimit {
        /// The hold asked for.
        needed: Money,
        /// What the end user's limit still allows, holds deducted.
        remaining: Money,
    },
    /// The key or account is gone.
    Missing,
}

impl Store {
    /// Holds `amount` against the key's limit and the account's credits, atomically. Nothing is
    /// held when either refuses.
    pub async fn hold(
        &self,
        hold_id: &str,
        key_hash: &str,
        account_id: &str,
        amount: Money,
        now_ms: i64,
    ) -> StoreResult<Result<(), HoldRefused>> {
        self.hold_for(hold_id, key_hash, account_id, None, amount, now_ms)
            .await
    }

    /// [`Store::hold`], also against an end user's limit (the end user of the key's account
    /// must exist): nothing is held when the key, the end user or the account refuses.
    pub async fn hold_for(
        &self,
        hold_id: &str,
        key_hash: &str,
        account_id: &str,
        user: Option<&UserHold>,
        amount: Money,
        now_ms: i64,
    ) -> StoreResult<Result<(), HoldRefused>> {
        let p = Periods::at(now_ms);
        let mut tx = self.pool.begin().await?;
        // The current-window spend is computed from the row itself, so the condition is checked
        // against the latest committed row under its write lock.
        let key_ok = sqlx::query(
            "UPDATE api_keys SET held = held + $1, last_used_at = $2 WHERE hash = $3 AND (limit_amount IS NULL OR \
             (CASE limit_reset \
                WHEN 'daily' THEN (CASE WHEN day_index = $4 THEN usage_daily + include_byok_in_limit * byok_usage_daily ELSE 0 END) \
                WHEN 'weekly' THEN (CASE WHEN week_index = $5 THEN usage_weekly + include_byok_in_limit * byok_usage_weekly ELSE 0 END) \
                WHEN 'monthly' THEN (CASE WHEN month_index = $6 THEN usage_monthly + include_byok_in_limit * byok_usage_monthly ELSE 0 END) \
                ELSE usage + include_byok_in_limit * byok_usage END) + held + $1 <= limit_amount)",
        )
        .bind(amount.picos())
        .bind(now_ms)
        .bind(key_hash)
        .bind(p.day)
        .bind(p.week)
        .bind(p.month)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !key_ok {
            tx.rollback().await?;
            return Ok(Err(match self.key(key_hash, now_ms).await? {
                None => HoldRefused::Missing,
                Some(k) => HoldRefused::KeyLimit {
                    needed: amount,
                    remaining: Money::from_picos(
                        k.limit_remaining()
                            .map_or(0, |r| r.picos().saturating_sub(k.held.picos()).max(0)),
                    ),
                },
            }));
        }
        if let Some(u) = user {
            let spent = window_sql("$5", "$6", "$7", "$4");
            let user_ok = sqlx::query(&format!(
                "UPDATE end_users SET held = held + $1 WHERE account_id = $2 AND id = $3 \
                 AND ($8 = 0 OR {spent} + held + $1 <= $9)"
            ))
            .bind(amount.picos())
            .bind(account_id)
            .bind(&u.user)
            .bind(u.reset.map_or("", LimitReset::as_str))
            .bind(p.day)
            .bind(p.week)
            .bind(p.month)
            .bind(i64::from(u.limit.is_some()))
            .bind(u.limit.map_or(0, Money::picos))
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !user_ok {
                tx.rollback().await?;
                return Ok(Err(
                    match (self.end_user(account_id, &u.user, now_ms).await?, u.limit) {
                        (Some(e), Some(limit)) => HoldRefused::EndUserLimit {
                            needed: amount,
                            remaining: Money::from_picos(
                                limit
                                    .picos()
                                    .saturating_sub(e.window(u.reset).picos())
                                    .saturating_sub(e.held.picos())
                                    .max(0),
                            ),
                        },
                        _ => HoldRefused::Missing,
                    },
                ));
            }
        }
        let account_ok = sqlx::query(
            "UPDATE accounts SET held = held + $1 WHERE id = $2 AND credits - usage - held - $1 >= 0",
        )
        .bind(amount.picos())
        .bind(account_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !account_ok {
            tx.rollback().await?;
            return Ok(Err(match self.account(account_id).await? {
                None => HoldRefused::Missing,
                Some(a) => HoldRefused::Credits {
                    needed: amount,
                    remaining: Money::from_picos(
                        a.balance().picos().saturating_sub(a.held.picos()).max(0),
                    ),
                },
            }));
        }
        sqlx::query(
            "INSERT INTO holds (id, key_hash, account_id, amount, created_at, owner, expires_at, end_user) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(hold_id)
        .bind(key_hash)
        .bind(account_id)
        .bind(amount.picos())
        .bind(now_ms)
        .bind(&*self.instance)
        .bind(now_ms.saturating_add(self.hold_lease_ms))
        .bind(user.map(|u| u.user.as_str()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Releases a hold without charging (the request produced nothing). Idempotent.
    pub async fn release(&self, hold_id: &str) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let released = Self::take_hold(&mut tx, hold_id).await?;
        tx.commit().await?;
        Ok(released)
    }

    async fn take_hold(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        hold_id: &str,
    ) -> StoreResult<bool> {
        let row = sqlx::query(
            "DELETE FROM holds WHERE id = $1 RETURNING key_hash, account_id, amount, end_user",
        )
        .bind(hold_id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(row) = row else { return Ok(false) };
        let key_hash: String = row.try_get("key_hash")?;
        let account_id: String = row.try_get("account_id")?;
        let amount: i64 = row.try_get("amount")?;
        let end_user: Option<String> = row.try_get("end_user")?;
        if let Some(user) = end_user {
            sqlx::query("UPDATE end_users SET held = held - $1 WHERE account_id = $2 AND id = $3")
                .bind(amount)
                .bind(&account_id)
                .bind(&user)
                .execute(&mut **tx)
                .await?;
        }
        sqlx::query("UPDATE api_keys SET held = held - $1 WHERE hash = $2")
            .bind(amount)
            .bind(&key_hash)
            .execute(&mut **tx)
            .await?;
        sqlx::query("UPDATE accounts SET held = held - $1 WHERE id = $2")
            .bind(amount)
            .bind(&account_id)
            .execute(&mut **tx)
            .await?;
        Ok(true)
    }

    /// Settles a generation: releases its hold (if still held), charges its exact cost to the key
    /// windows and the account (BYOK spend is counted apart and not taken from credits), and
    /// writes its record, in one transaction. Settling the same id twice charges once.
    pub async fn settle(
        &self,
        record: &GenerationRecord,
        hold_id: Option<&str>,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let settled = Self::settle_in(
            &mut tx,
            self.dialect,
            &[Settlement {
                record: record.clone(),
                hold_id: hold_id.map(str::to_owned),
                lease_id: None,
            }],
        )
        .await?;
        tx.commit().await?;
        Ok(settled == 1)
    }

    /// [`Store::settle`] of many generations inside a caller's transaction (batched writes):
    /// the records in multi-row inserts, and one charge per key window and per account for the
    /// whole batch. Returns how many were newly settled.
    pub(crate) async fn settle_in(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        dialect: Dialect,
        settlements: &[Settlement],
    ) -> StoreResult<usize> {
        let mut inserted = std::collections::HashSet::new();
        for chunk in insert_chunks(settlements) {
            let sql = format!(
                "INSERT INTO generations ({GENERATION_COLUMNS}) VALUES {} ON CONFLICT (id) DO NOTHING RETURNING id",
                placeholders(dialect, chunk.len(), GENERATION_COLUMN_COUNT)
            );
            let mut q = sqlx::query(&sql);
            for s in chunk {
                let r = &s.record;
                q = q
                    .bind(&r.id)
                    .bind(&r.account_id)
                    .bind(&r.key_hash)
                    .bind(r.created_at)
                    .bind(&r.model)
                    .bind(&r.provider_slug)
                    .bind(&r.provider_name)
                    .bind(r.upstream_id.as_deref())
                    .bind(b(r.streamed))
                    .bind(b(r.cancelled))
                    .bind(r.finish_reason.as_deref())
                    .bind(r.native_finish_reason.as_deref())
                    .bind(to_i64(r.tokens_prompt))
                    .bind(to_i64(r.tokens_completion))
                    .bind(to_i64(r.tokens_reasoning))
                    .bind(to_i64(r.tokens_cached))
                    .bind(r.cost.picos())
                    .bind(b(r.is_byok))
                    .bind(r.latency_ms)
                    .bind(r.generation_time_ms)
                    .bind(r.http_referer.as_deref())
                    .bind(r.app_title.as_deref())
                    .bind(r.end_user.as_deref())
                    .bind(r.session_id.as_deref())
                    .bind(i64::from(r.status))
                    .bind(r.error_message.as_deref())
                    .bind(r.preset_id.as_deref())
                    .bind(r.router.as_deref())
                    .bind(r.api_type.as_deref())
                    .bind(r.user_agent.as_deref())
                    .bind(r.provider_responses_json());
            }
            for row in q.fetch_all(&mut **tx).await? {
                inserted.insert(row.try_get::<String, _>("id")?);
            }
        }
        // What each key window and each account is charged, summed over the batch. A key's
        // charges are applied per period, oldest first, so a batch across midnight resets the
        // window the way settling one by one would.
        let mut keys: std::collections::BTreeMap<(&str, bool, i64, i64, i64), i64> =
            std::collections::BTreeMap::new();
        let mut accounts: std::collections::BTreeMap<(&str, bool), i64> =
            std::collections::BTreeMap::new();
        let mut last_used: std::collections::BTreeMap<&str, i64> =
            std::collections::BTreeMap::new();
        // What each lease gives up, summed over the batch (one statement per lease), consumed
        // before anything else is locked: rows are locked leases, then keys, then accounts,
        // each in order, everywhere, so concurrent batches and grants never deadlock.
        let mut leases: std::collections::BTreeMap<(&str, &str, &str), i64> =
            std::collections::BTreeMap::new();
        let mut consumed = std::collections::HashSet::new();
        for s in settlements {
            let r = &s.record;
            if let Some(lease_id) = &s.lease_id {
                if inserted.contains(&r.id) && consumed.insert(r.id.as_str()) {
                    let c = leases
                        .entry((
                            lease_id.as_str(),
                            r.key_hash.as_str(),
                            r.account_id.as_str(),
                        ))
                        .or_default();
                    *c = c.saturating_add(r.cost.picos());
                }
            }
        }
        // What leases gave up leaves the keys' and accounts' `held` in the statements below
        // that charge it.
        let (mut key_unholds, mut account_unholds) = Self::consume_leases(tx, &leases).await?;
        let mut activity = crate::generations::DailyActivity::default();
        let mut settled = 0;
        let mut end_users: Vec<(&str, &str, i64, i64)> = Vec::new();
        for s in settlements {
            let r = &s.record;
            // Each inserted record is charged once, even if the batch holds its id twice.
            if !inserted.remove(&r.id) {
                continue;
            }
            settled += 1;
            activity.add(r);
            let used = last_used.entry(r.key_hash.as_str()).or_insert(r.created_at);
            *used = (*used).max(r.created_at);
            if let Some(hold_id) = &s.hold_id {
                Self::take_hold(tx, hold_id).await?;
            }
            if let Some(user) = &r.end_user {
                end_users.push((&r.account_id, user, r.created_at, r.cost.picos()));
            }
            if r.cost.is_zero() {
                continue;
            }
            let p = Periods::at(r.created_at);
            let k = keys
                .entry((r.key_hash.as_str(), r.is_byok, p.month, p.week, p.day))
                .or_default();
            *k = k.saturating_add(r.cost.picos());
            let a = accounts
                .entry((r.account_id.as_str(), r.is_byok))
                .or_default();
            *a = a.saturating_add(r.cost.picos());
        }
        let mut charged_keys = std::collections::BTreeSet::new();
        for ((key_hash, is_byok, month, week, day), cost) in keys {
            let (usage, daily, weekly, monthly) = if is_byok {
                (
                    "byok_usage",
                    "byok_usage_daily",
                    "byok_usage_weekly",
                    "byok_usage_monthly",
                )
            } else {
                ("usage", "usage_daily", "usage_weekly", "usage_monthly")
            };
            // Windows that have rolled over restart from zero (both BYOK and standard columns of
            // a window share its index, so the other column of a rolled window is reset too).
            let (o_daily, o_weekly, o_monthly) = if is_byok {
                ("usage_daily", "usage_weekly", "usage_monthly")
            } else {
                (
                    "byok_usage_daily",
                    "byok_usage_weekly",
                    "byok_usage_monthly",
                )
            };
            // The key's lease consumption (first statement of the key only) and its last use
            // (the latest of the batch, a maximum, so repeating it is harmless) go with it.
            let unhold = key_unholds.remove(key_hash).unwrap_or(0);
            let used = last_used.get(key_hash).copied().unwrap_or(i64::MIN);
            let sql = format!(
                "UPDATE api_keys SET {usage} = {usage} + $1, held = held - $6, \
                 last_used_at = (CASE WHEN last_used_at IS NULL OR last_used_at < $7 THEN $7 ELSE last_used_at END), \
                 {daily} = (CASE WHEN day_index = $2 THEN {daily} ELSE 0 END) + $1, \
                 {o_daily} = (CASE WHEN day_index = $2 THEN {o_daily} ELSE 0 END), day_index = $2, \
                 {weekly} = (CASE WHEN week_index = $3 THEN {weekly} ELSE 0 END) + $1, \
                 {o_weekly} = (CASE WHEN week_index = $3 THEN {o_weekly} ELSE 0 END), week_index = $3, \
                 {monthly} = (CASE WHEN month_index = $4 THEN {monthly} ELSE 0 END) + $1, \
                 {o_monthly} = (CASE WHEN month_index = $4 THEN {o_monthly} ELSE 0 END), month_index = $4 \
                 WHERE hash = $5"
            );
            sqlx::query(&sql)
                .bind(cost)
                .bind(day)
                .bind(week)
                .bind(month)
                .bind(key_hash)
                .bind(unhold)
                .bind(used)
                .execute(&mut **tx)
                .await?;
            charged_keys.insert(key_hash);
        }
        // Keys charged nothing (free requests): their last use alone; and any lease consumption
        // not folded above.
        for (key_hash, amount) in key_unholds {
            sqlx::query("UPDATE api_keys SET held = held - $1 WHERE hash = $2")
                .bind(amount)
                .bind(key_hash)
                .execute(&mut **tx)
                .await?;
        }
        for (key_hash, at) in last_used
            .into_iter()
            .filter(|(k, _)| !charged_keys.contains(k))
        {
            sqlx::query(
                "UPDATE api_keys SET last_used_at = $1 WHERE hash = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
            )
            .bind(at)
            .bind(key_hash)
            .execute(&mut **tx)
            .await?;
        }
        if !end_users.is_empty() {
            Self::charge_end_users(tx, &end_users).await?;
        }
        for ((account_id, is_byok), cost) in accounts {
            let usage = if is_byok { "byok_usage" } else { "usage" };
            let unhold = account_unholds.remove(account_id).unwrap_or(0);
            sqlx::query(&format!(
                "UPDATE accounts SET {usage} = {usage} + $1, held = held - $3 WHERE id = $2"
            ))
            .bind(cost)
            .bind(account_id)
            .bind(unhold)
            .execute(&mut **tx)
            .await?;
        }
        for (account_id, amount) in account_unholds {
            sqlx::query("UPDATE accounts SET held = held - $1 WHERE id = $2")
                .bind(amount)
                .bind(account_id)
                .execute(&mut **tx)
                .await?;
        }
        activity.write(tx, dialect).await?;
        Ok(settled)
    }

    /// At start: releases this instance's own holds and every hold whose lease ran out by
    /// `now_ms` (its gateway stopped renewing it: it crashed or was stopped), never a live hold
    /// of another gateway running on the same database. Returns how many were released.
    pub async fn release_stale_holds(&self, now_ms: i64) -> StoreResult<u64> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM holds WHERE expires_at <= $1 OR owner = $2")
                .bind(now_ms)
                .bind(&*self.instance)
                .fetch_all(&self.pool)
                .await?;
        self.release_all(ids).await
    }

    /// The periodic sweep: renews this instance's holds (their lease restarts at `now_ms`),
    /// then releases every hold whose lease ran out, whoever took it. Returns how many were
    /// released.
    pub async fn sweep_holds(&self, now_ms: i64) -> StoreResult<u64> {
        self.renew_holds(now_ms).await?;
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM holds WHERE expires_at <= $1")
            .bind(now_ms)
            .fetch_all(&self.pool)
            .await?;
        self.release_all(ids).await
    }

    /// Restarts the lease of every hold this instance holds; returns how many.
    pub async fn renew_holds(&self, now_ms: i64) -> StoreResult<u64> {
        let done = sqlx::query("UPDATE holds SET expires_at = $1 WHERE owner = $2")
            .bind(now_ms.saturating_add(self.hold_lease_ms))
            .bind(&*self.instance)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn release_all(&self, ids: Vec<String>) -> StoreResult<u64> {
        let mut released = 0;
        for id in ids {
            if self.release(&id).await? {
                released += 1;
            }
        }
        Ok(released)
    }

    /// Number of holds outstanding.
    pub async fn hold_count(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM holds")
            .fetch_one(&self.pool)
            .await?)
    }
}
