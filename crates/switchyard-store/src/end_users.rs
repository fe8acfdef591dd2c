//! End users: the people behind an application's requests, per account. Each has first and last
//! seen times, a count of served requests, spend over the limit windows, optional overrides of
//! their key's limits, a block, and strikes counted by moderation.

use sqlx::any::AnyRow;
use sqlx::Row;
use switchyard_core::money::Money;
use switchyard_core::periods::Periods;

use crate::keys::count;
use crate::{b, money, to_i64, LimitReset, Store, StoreError, StoreResult, WindowUsage};

/// Who blocks an end user by hand.
pub const BLOCKED_BY_OPERATOR: &str = "operator";
/// Who blocks an end user after too many strikes.
pub const BLOCKED_BY_STRIKES: &str = "strikes";

/// An end user's block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Why (shown to the operator, never to the end user).
    pub reason: String,
    /// Since when, Unix ms.
    pub at: i64,
    /// Until when, Unix ms; `None` until unblocked.
    pub expires_at: Option<i64>,
    /// [`BLOCKED_BY_OPERATOR`] or [`BLOCKED_BY_STRIKES`].
    pub source: String,
}

impl Block {
    /// Whether the block is in force at `now_ms`.
    pub fn active(&self, now_ms: i64) -> bool {
        self.expires_at.is_none_or(|t| now_ms < t)
    }
}

/// A stored end user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndUser {
    /// The account the end user belongs to.
    pub account_id: String,
    /// The id the application gives them (the request's `user`).
    pub id: String,
    /// First request, Unix ms.
    pub first_seen: i64,
    /// Last served request, Unix ms.
    pub last_seen: i64,
    /// Requests served (settled generations).
    pub requests: u64,
    /// Spend over the windows as of the `now` the record was read at (BYOK included).
    pub usage: WindowUsage,
    /// Held by requests in flight (database holds only).
    pub held: Money,
    /// Own spending limit, overriding the key's default.
    pub limit: Option<Money>,
    /// Window of the own limit.
    pub limit_reset: Option<LimitReset>,
    /// Own requests per minute, overriding the key's default.
    pub rpm: Option<u64>,
    /// Own tokens per minute, overriding the key's default.
    pub tpm: Option<u64>,
    /// The block, when one was set (it may have expired: see [`EndUser::active_block`]).
    pub block: Option<Block>,
    /// Last change of the limits or the block, Unix ms.
    pub updated_at: i64,
}

impl EndUser {
    /// The block in force at `now_ms`, if any.
    pub fn active_block(&self, now_ms: i64) -> Option<&Block> {
        self.block.as_ref().filter(|b| b.active(now_ms))
    }

    /// Spend in the window of `reset` (all time for `None`).
    pub fn window(&self, reset: Option<LimitReset>) -> Money {
        match reset {
            None => self.usage.total,
            Some(LimitReset::Daily) => self.usage.daily,
            Some(LimitReset::Weekly) => self.usage.weekly,
            Some(LimitReset::Monthly) => self.usage.monthly,
        }
    }
}

/// Changes to an end user's own limits; `None` leaves one as it is, `Some(None)` returns it to
/// the key's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndUserLimits {
    /// Spending limit.
    pub limit: Option<Option<Money>>,
    /// Its window.
    pub limit_reset: Option<Option<LimitReset>>,
    /// Requests per minute.
    pub rpm: Option<Option<u64>>,
    /// Tokens per minute.
    pub tpm: Option<Option<u64>>,
}

/// The end-user part of a database hold: the end user, and the limit their spend is held
/// against (none: the hold is only counted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserHold {
    /// The end user's id (of the key's account).
    pub user: String,
    /// Their effective limit.
    pub limit: Option<Money>,
    /// Its window.
    pub reset: Option<LimitReset>,
}

/// A strike recorded against an end user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrikeRow {
    /// The request that earned it.
    pub generation_id: String,
    /// When, Unix ms.
    pub at: i64,
    /// The moderation categories that counted.
    pub categories: Vec<String>,
}

const END_USER_COLUMNS: &str = "account_id, id, first_seen, last_seen, request_count, usage, \
     day_index, usage_daily, week_index, usage_weekly, month_index, usage_monthly, held, \
     limit_amount, limit_reset, rpm_limit, tpm_limit, blocked, block_reason, blocked_at, \
     block_expires_at, block_source, updated_at";

/// The SQL of an end user's spend in the window of `reset_column`'s value, for a hold's condition
/// (`$day`, `$week`, `$month` are the numbered parameters of the current periods).
pub(crate) fn window_sql(day: &str, week: &str, month: &str, reset: &str) -> String {
    format!(
        "(CASE {reset} \
            WHEN 'daily' THEN (CASE WHEN day_index = {day} THEN usage_daily ELSE 0 END) \
            WHEN 'weekly' THEN (CASE WHEN week_index = {week} THEN usage_weekly ELSE 0 END) \
            WHEN 'monthly' THEN (CASE WHEN month_index = {month} THEN usage_monthly ELSE 0 END) \
            ELSE usage END)"
    )
}

impl Store {
    fn end_user_from_row(row: &AnyRow, now_ms: i64) -> StoreResult<EndUser> {
        let p = Periods::at(now_ms);
        let window = |index_col: &str, col: &str, current: i64| -> StoreResult<Money> {
            let index: i64 = row.try_get(index_col)?;
            if index == current {
                money(row, col)
            } else {
                Ok(Money::ZERO)
            }
        };
        let reset = |col: &str| -> StoreResult<Option<LimitReset>> {
            row.try_get::<Option<String>, _>(col)?
                .map(|r| r.parse().map_err(StoreError::Corrupt))
                .transpose()
        };
        let blocked = row.try_get::<i64, _>("blocked")? != 0;
        let block = if blocked {
            Some(Block {
                reason: row
                    .try_get::<Option<String>, _>("block_reason")?
                    .unwrap_or_default(),
                at: row.try_get::<Option<i64>, _>("blocked_at")?.unwrap_or(0),
                expires_at: row.try_get("block_expires_at")?,
                source: row
                    .try_get::<Option<String>, _>("block_source")?
                    .unwrap_or_else(|| BLOCKED_BY_OPERATOR.to_owned()),
            })
        } else {
            None
        };
        Ok(EndUser {
            account_id: row.try_get("account_id")?,
            id: row.try_get("id")?,
            first_seen: row.try_get("first_seen")?,
            last_seen: row.try_get("last_seen")?,
            requests: u64::try_from(row.try_get::<i64, _>("request_count")?).unwrap_or(0),
            usage: WindowUsage {
                total: money(row, "usage")?,
                daily: window("day_index", "usage_daily", p.day)?,
                weekly: window("week_index", "usage_weekly", p.week)?,
                monthly: window("month_index", "usage_monthly", p.month)?,
            },
            held: money(row, "held")?,
            limit: row
                .try_get::<Option<i64>, _>("limit_amount")?
                .map(Money::from_picos),
            limit_reset: reset("limit_reset")?,
            rpm: count(row, "rpm_limit")?,
            tpm: count(row, "tpm_limit")?,
            block,
            updated_at: row.try_get("updated_at")?,
        })
    }

    /// The end user, created if this is the first time the account's requests name them.
    pub async fn end_user_seen(
        &self,
        account_id: &str,
        id: &str,
        now_ms: i64,
    ) -> StoreResult<EndUser> {
        // Read first: an end user is created once and read often (a write would take the
        // database's write lock for nothing).
        if let Some(known) = self.end_user(account_id, id, now_ms).await? {
            return Ok(known);
        }
        sqlx::query(
            "INSERT INTO end_users (account_id, id, first_seen, last_seen, updated_at) \
             VALUES ($1, $2, $3, $3, $3) ON CONFLICT (account_id, id) DO NOTHING",
        )
        .bind(account_id)
        .bind(id)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        self.end_user(account_id, id, now_ms)
            .await?
            .ok_or_else(|| StoreError::Corrupt("created end user not found".into()))
    }

    /// An end user of the account, their spend as of `now_ms`.
    pub async fn end_user(
        &self,
        account_id: &str,
        id: &str,
        now_ms: i64,
    ) -> StoreResult<Option<EndUser>> {
        let row = sqlx::query(&format!(
            "SELECT {END_USER_COLUMNS} FROM end_users WHERE account_id = $1 AND id = $2"
        ))
        .bind(account_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Self::end_user_from_row(&r, now_ms)).transpose()
    }

    /// The account's end users, last seen first: at most `limit` from `offset`; only those
    /// blocked at `now_ms` when `blocked_only`.
    pub async fn list_end_users(
        &self,
        account_id: &str,
        now_ms: i64,
        blocked_only: bool,
        offset: usize,
        limit: usize,
    ) -> StoreResult<Vec<EndUser>> {
        let rows = sqlx::query(&format!(
            "SELECT {END_USER_COLUMNS} FROM end_users WHERE account_id = $1 \
             AND ($2 = 0 OR (blocked = 1 AND (block_expires_at IS NULL OR block_expires_at > $3))) \
             ORDER BY last_seen DESC, id LIMIT $4 OFFSET $5"
        ))
        .bind(account_id)
        .bind(b(blocked_only))
        .bind(now_ms)
        .bind(to_i64(limit as u64))
        .bind(to_i64(offset as u64))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Self::end_user_from_row(r, now_ms))
            .collect()
    }

    /// Changes an end user's own limits; returns them after, or `None` if unknown.
    pub async fn set_end_user_limits(
        &self,
        account_id: &str,
        id: &str,
        limits: &EndUserLimits,
        now_ms: i64,
    ) -> StoreResult<Option<EndUser>> {
        let mut tx = self.pool.begin().await?;
        let set = |column: &'static str| {
            format!("UPDATE end_users SET {column} = $1 WHERE account_id = $2 AND id = $3")
        };
        if let Some(limit) = limits.limit {
            sqlx::query(&set("limit_amount"))
                .bind(limit.map(Money::picos))
                .bind(account_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(reset) = limits.limit_reset {
            sqlx::query(&set("limit_reset"))
                .bind(reset.map(LimitReset::as_str))
                .bind(account_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        for (column, value) in [("rpm_limit", limits.rpm), ("tpm_limit", limits.tpm)] {
            if let Some(v) = value {
                sqlx::query(&set(column))
                    .bind(v.map(to_i64))
                    .bind(account_id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        sqlx::query(&set("updated_at"))
            .bind(now_ms)
            .bind(account_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.end_user(account_id, id, now_ms).await
    }

    /// Blocks an end user (replacing any block); returns them after, or `None` if unknown.
    pub async fn block_end_user(
        &self,
        account_id: &str,
        id: &str,
        block: &Block,
        now_ms: i64,
    ) -> StoreResult<Option<EndUser>> {
        sqlx::query(
            "UPDATE end_users SET blocked = 1, block_reason = $1, blocked_at = $2, \
             block_expires_at = $3, block_source = $4, updated_at = $5 \
             WHERE account_id = $6 AND id = $7",
        )
        .bind(&block.reason)
        .bind(block.at)
        .bind(block.expires_at)
        .bind(&block.source)
        .bind(now_ms)
        .bind(account_id)
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.end_user(account_id, id, now_ms).await
    }

    /// Lifts an end user's block; returns them after, or `None` if unknown.
    pub async fn unblock_end_user(
        &self,
        account_id: &str,
        id: &str,
        now_ms: i64,
    ) -> StoreResult<Option<EndUser>> {
        sqlx::query(
            "UPDATE end_users SET blocked = 0, block_reason = NULL, blocked_at = NULL, \
             block_expires_at = NULL, block_source = NULL, updated_at = $1 \
             WHERE account_id = $2 AND id = $3",
        )
        .bind(now_ms)
        .bind(account_id)
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.end_user(account_id, id, now_ms).await
    }

    /// Records a strike against an end user and returns how many they have had since
    /// `since_ms` (this one included).
    pub async fn add_strike(
        &self,
        account_id: &str,
        id: &str,
        strike: &StrikeRow,
        since_ms: i64,
    ) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO end_user_strikes (account_id, end_user, generation_id, at, categories) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(account_id)
        .bind(id)
        .bind(&strike.generation_id)
        .bind(strike.at)
        .bind(strike.categories.join(","))
        .execute(&mut *tx)
        .await?;
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM end_user_strikes WHERE account_id = $1 AND end_user = $2 AND at >= $3",
        )
        .bind(account_id)
        .bind(id)
        .bind(since_ms)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// An end user's strikes since `since_ms`, oldest first.
    pub async fn strikes(
        &self,
        account_id: &str,
        id: &str,
        since_ms: i64,
    ) -> StoreResult<Vec<StrikeRow>> {
        let rows = sqlx::query(
            "SELECT generation_id, at, categories FROM end_user_strikes \
             WHERE account_id = $1 AND end_user = $2 AND at >= $3 ORDER BY at, generation_id",
        )
        .bind(account_id)
        .bind(id)
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let categories: String = r.try_get("categories")?;
                Ok(StrikeRow {
                    generation_id: r.try_get("generation_id")?,
                    at: r.try_get("at")?,
                    categories: categories
                        .split(',')
                        .filter(|c| !c.is_empty())
                        .map(str::to_owned)
                        .collect(),
                })
            })
            .collect()
    }

    /// Charges settled generations to their end users: spend over the windows (per period,
    /// oldest first, as keys are charged), the count of served requests and the last time seen.
    /// `charges` are (account, end user, created at, cost) of newly settled generations.
    pub(crate) async fn charge_end_users(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        charges: &[(&str, &str, i64, i64)],
    ) -> StoreResult<()> {
        use std::collections::BTreeMap;
        let mut windows: BTreeMap<(&str, &str, i64, i64, i64), i64> = BTreeMap::new();
        let mut seen: BTreeMap<(&str, &str), (i64, i64)> = BTreeMap::new();
        for &(account, user, at, cost) in charges {
            let s = seen.entry((account, user)).or_insert((0, at));
            s.0 += 1;
            s.1 = s.1.max(at);
            if cost != 0 {
                let p = Periods::at(at);
                let w = windows
                    .entry((account, user, p.month, p.week, p.day))
                    .or_default();
                *w = w.saturating_add(cost);
            }
        }
        for ((account, user, month, week, day), cost) in windows {
            sqlx::query(
                "UPDATE end_users SET usage = usage + $1, \
                 usage_daily = (CASE WHEN day_index = $2 THEN usage_daily ELSE 0 END) + $1, day_index = $2, \
                 usage_weekly = (CASE WHEN week_index = $3 THEN usage_weekly ELSE 0 END) + $1, week_index = $3, \
                 usage_monthly = (CASE WHEN month_index = $4 THEN usage_monthly ELSE 0 END) + $1, month_index = $4 \
                 WHERE account_id = $5 AND id = $6",
            )
            .bind(cost)
            .bind(day)
            .bind(week)
            .bind(month)
            .bind(account)
            .bind(user)
            .execute(&mut **tx)
            .await?;
        }
        for ((account, user), (n, at)) in seen {
            sqlx::query(
                "UPDATE end_users SET request_count = request_count + $1, \
                 last_seen = (CASE WHEN last_seen < $2 THEN $2 ELSE last_seen END) \
                 WHERE account_id = $3 AND id = $4",
            )
            .bind(n)
            .bind(at)
            .bind(account)
            .bind(user)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }
}
