//! API keys: records, creation, lookup, updates; a key's limit and its spend windows.

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;
use switchyard_core::money::Money;
use switchyard_core::periods::Periods;

use crate::{b, money, Store, StoreError, StoreResult};

/// A non-negative count column (a rate limit), `None` when NULL.
pub(crate) fn count(row: &AnyRow, column: &str) -> StoreResult<Option<u64>> {
    row.try_get::<Option<i64>, _>(column)?
        .map(|v| u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{column} is negative"))))
        .transpose()
}

/// When a key's limit resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitReset {
    /// Every UTC day.
    Daily,
    /// Every week, from Monday 00:00 UTC.
    Weekly,
    /// Every calendar month, UTC.
    Monthly,
}

impl LimitReset {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitReset::Daily => "daily",
            LimitReset::Weekly => "weekly",
            LimitReset::Monthly => "monthly",
        }
    }
}

impl FromStr for LimitReset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "daily" => Ok(LimitReset::Daily),
            "weekly" => Ok(LimitReset::Weekly),
            "monthly" => Ok(LimitReset::Monthly),
            other => Err(format!(
                "limit_reset {other:?} is not one of daily, weekly, monthly"
            )),
        }
    }
}

/// Spend of a key over its windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowUsage {
    /// All time.
    pub total: Money,
    /// This UTC day.
    pub daily: Money,
    /// This week (from Monday).
    pub weekly: Money,
    /// This month.
    pub monthly: Money,
}

/// A stored key (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// SHA-256 hex of the key.
    pub hash: String,
    /// Owning account.
    pub account_id: String,
    /// Name.
    pub name: String,
    /// Masked key.
    pub label: String,
    /// Management key (admin APIs only, no inference).
    pub is_management: bool,
    /// Disabled keys are refused.
    pub disabled: bool,
    /// Spending limit.
    pub limit: Option<Money>,
    /// Limit window.
    pub limit_reset: Option<LimitReset>,
    /// Whether BYOK spend counts against the limit.
    pub include_byok_in_limit: bool,
    /// Spend, as of the `now` the record was read at.
    pub usage: WindowUsage,
    /// BYOK spend.
    pub byok_usage: WindowUsage,
    /// Held by requests in flight.
    pub held: Money,
    /// Creator.
    pub creator_user_id: Option<String>,
    /// Expiry, Unix ms.
    pub expires_at: Option<i64>,
    /// Last inference, Unix ms.
    pub last_used_at: Option<i64>,
    /// Created, Unix ms.
    pub created_at: i64,
    /// Updated, Unix ms.
    pub updated_at: i64,
    /// The key's policy for the end users of its requests.
    pub end_users: KeyUserPolicy,
}

/// A key's policy for end users: whether its requests must name one, each end user's default
/// spending limit (overridable per end user), and rate limits of the key and of each end user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyUserPolicy {
    /// A request without an end user is refused (400).
    pub require_user: bool,
    /// Each end user's spending limit through this key, unless the end user has their own.
    pub user_limit: Option<Money>,
    /// The window of that limit.
    pub user_limit_reset: Option<LimitReset>,
    /// Requests per minute of the key.
    pub rpm: Option<u64>,
    /// Tokens (prompt and completion, as used) per minute of the key.
    pub tpm: Option<u64>,
    /// Requests per minute of each end user through this key, unless the end user has their own.
    pub user_rpm: Option<u64>,
    /// Tokens per minute of each end user through this key, unless the end user has their own.
    pub user_tpm: Option<u64>,
}

impl KeyRecord {
    /// Spend counted against the limit in the current window.
    pub fn limit_usage(&self) -> Money {
        let pick = |w: &WindowUsage| match self.limit_reset {
            None => w.total,
            Some(LimitReset::Daily) => w.daily,
            Some(LimitReset::Weekly) => w.weekly,
            Some(LimitReset::Monthly) => w.monthly,
        };
        let mut used = pick(&self.usage);
        if self.include_byok_in_limit {
            used = used.saturating_add(pick(&self.byok_usage));
        }
        used
    }

    /// What is left of the limit (not counting holds), `None` without limit.
    pub fn limit_remaining(&self) -> Option<Money> {
        self.limit
            .map(|l| Money::from_picos(l.picos().saturating_sub(self.limit_usage().picos()).max(0)))
    }

    /// Whether the key is expired at `now_ms`.
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expires_at.is_some_and(|t| t <= now_ms)
    }
}

/// A key to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    /// SHA-256 hex of the key.
    pub hash: String,
    /// Masked key.
    pub label: String,
    /// Owning account.
    pub account_id: String,
    /// Name.
    pub name: String,
    /// Management key.
    pub is_management: bool,
    /// Limit.
    pub limit: Option<Money>,
    /// Limit window.
    pub limit_reset: Option<LimitReset>,
    /// BYOK spend counts against the limit.
    pub include_byok_in_limit: bool,
    /// Expiry.
    pub expires_at: Option<i64>,
    /// Creator.
    pub creator_user_id: Option<String>,
}

/// Changes to a key; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyUpdate {
    /// New name.
    pub name: Option<String>,
    /// Disable or enable.
    pub disabled: Option<bool>,
    /// New limit (`Some(None)` removes it).
    pub limit: Option<Option<Money>>,
    /// New window (`Some(None)` removes it).
    pub limit_reset: Option<Option<LimitReset>>,
    /// BYOK in limit.
    pub include_byok_in_limit: Option<bool>,
    /// New expiry (`Some(None)` removes it).
    pub expires_at: Option<Option<i64>>,
}

const KEY_COLUMNS: &str = "hash, account_id, name, label, is_management, disabled, limit_amount, limit_reset, \
     include_byok_in_limit, usage, byok_usage, day_index, usage_daily, byok_usage_daily, week_index, \
     usage_weekly, byok_usage_weekly, month_index, usage_monthly, byok_usage_monthly, held, \
     creator_user_id, expires_at, last_used_at, created_at, updated_at, require_user, user_limit_amount, \
     user_limit_reset, rpm_limit, tpm_limit, user_rpm_limit, user_tpm_limit";

impl Store {
    /// Stores a new key.
    pub async fn create_key(&self, key: &NewKey, now_ms: i64) -> StoreResult<KeyRecord> {
        sqlx::query(
            "INSERT INTO api_keys (hash, account_id, name, label, is_management, limit_amount, limit_reset, \
             include_byok_in_limit, creator_user_id, expires_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
        )
        .bind(&key.hash)
        .bind(&key.account_id)
        .bind(&key.name)
        .bind(&key.label)
        .bind(b(key.is_management))
        .bind(key.limit.map(Money::picos))
        .bind(key.limit_reset.map(LimitReset::as_str))
        .bind(b(key.include_byok_in_limit))
        .bind(key.creator_user_id.as_deref())
        .bind(key.expires_at)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        self.key(&key.hash, now_ms)
            .await?
            .ok_or_else(|| StoreError::Corrupt("created key not found".into()))
    }

    fn key_from_row(row: &AnyRow, now_ms: i64) -> StoreResult<KeyRecord> {
        let p = Periods::at(now_ms);
        let window = |index_col: &str, col: &str, current: i64| -> StoreResult<Money> {
            let index: i64 = row.try_get(index_col)?;
            if index == current {
                money(row, col)
            } else {
                Ok(Money::ZERO)
            }
        };
        let reset: Option<String> = row.try_get("limit_reset")?;
        Ok(KeyRecord {
            hash: row.try_get("hash")?,
            account_id: row.try_get("account_id")?,
            name: row.try_get("name")?,
            label: row.try_get("label")?,
            is_management: row.try_get::<i64, _>("is_management")? != 0,
            disabled: row.try_get::<i64, _>("disabled")? != 0,
            limit: row
                .try_get::<Option<i64>, _>("limit_amount")?
                .map(Money::from_picos),
            limit_reset: reset
                .map(|r| r.parse().map_err(StoreError::Corrupt))
                .transpose()?,
            include_byok_in_limit: row.try_get::<i64, _>("include_byok_in_limit")? != 0,
            usage: WindowUsage {
                total: money(row, "usage")?,
                daily: window("day_index", "usage_daily", p.day)?,
                weekly: window("week_index", "usage_weekly", p.week)?,
                monthly: window("month_index", "usage_monthly", p.month)?,
            },
            byok_usage: WindowUsage {
                total: money(row, "byok_usage")?,
                daily: window("day_index", "byok_usage_daily", p.day)?,
                weekly: window("week_index", "byok_usage_weekly", p.week)?,
                monthly: window("month_index", "byok_usage_monthly", p.month)?,
            },
            held: money(row, "held")?,
            creator_user_id: row.try_get("creator_user_id")?,
            expires_at: row.try_get("expires_at")?,
            last_used_at: row.try_get("last_used_at")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            end_users: KeyUserPolicy {
                require_user: row.try_get::<i64, _>("require_user")? != 0,
                user_limit: row
                    .try_get::<Option<i64>, _>("user_limit_amount")?
                    .map(Money::from_picos),
                user_limit_reset: row
                    .try_get::<Option<String>, _>("user_limit_reset")?
                    .map(|r| r.parse().map_err(StoreError::Corrupt))
                    .transpose()?,
                rpm: count(row, "rpm_limit")?,
                tpm: count(row, "tpm_limit")?,
                user_rpm: count(row, "user_rpm_limit")?,
                user_tpm: count(row, "user_tpm_limit")?,
            },
        })
    }

    /// Replaces a key's end-user policy; returns the key after, or `None` if it does not exist.
    pub async fn set_key_user_policy(
        &self,
        hash: &str,
        policy: &KeyUserPolicy,
        now_ms: i64,
    ) -> StoreResult<Option<KeyRecord>> {
        let n = |v: Option<u64>| v.map(crate::to_i64);
        sqlx::query(
            "UPDATE api_keys SET require_user = $1, user_limit_amount = $2, user_limit_reset = $3, \
             rpm_limit = $4, tpm_limit = $5, user_rpm_limit = $6, user_tpm_limit = $7, updated_at = $8 \
             WHERE hash = $9",
        )
        .bind(b(policy.require_user))
        .bind(policy.user_limit.map(Money::picos))
        .bind(policy.user_limit_reset.map(LimitReset::as_str))
        .bind(n(policy.rpm))
        .bind(n(policy.tpm))
        .bind(n(policy.user_rpm))
        .bind(n(policy.user_tpm))
        .bind(now_ms)
        .bind(hash)
        .execute(&self.pool)
        .await?;
        self.key(hash, now_ms).await
    }

    /// A key by hash, its window usage as of `now_ms`.
    pub async fn key(&self, hash: &str, now_ms: i64) -> StoreResult<Option<KeyRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE hash = $1"
        ))
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Self::key_from_row(&r, now_ms)).transpose()
    }

    /// The account's keys, newest first.
    pub async fn list_keys(&self, account_id: &str, now_ms: i64) -> StoreResult<Vec<KeyRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE account_id = $1 ORDER BY created_at DESC, hash"
        ))
        .bind(account_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Self::key_from_row(r, now_ms)).collect()
    }

    /// Applies changes to a key; returns it after, or `None` if it does not exist.
    pub async fn update_key(
        &self,
        hash: &str,
        update: &KeyUpdate,
        now_ms: i64,
    ) -> StoreResult<Option<KeyRecord>> {
        let mut tx = self.pool.begin().await?;
        if let Some(name) = &update.name {
            sqlx::query("UPDATE api_keys SET name = $1 WHERE hash = $2")
                .bind(name)
                .bind(hash)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(disabled) = update.disabled {
            sqlx::query("UPDATE api_keys SET disabled = $1 WHERE hash = $2")
                .bind(b(disabled))
                .bind(hash)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(limit) = update.limit {
            sqlx::query("UPDATE api_keys SET limit_amount = $1 WHERE hash = $2")
                .bind(limit.map(Money::picos))
                .bind(hash)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(reset) = update.limit_reset {
            sqlx::query("UPDATE api_keys SET limit_reset = $1 WHERE hash = $2")
                .bind(reset.map(LimitReset::as_str))
                .bind(hash)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(include) = update.include_byok_in_limit {
            sqlx::query("UPDATE api_keys SET include_byok_in_limit = $1 WHERE hash = $2")
                .bind(b(include))
                .bind(hash)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(expires) = update.expires_at {
            sqlx::query("UPDATE api_keys SET expires_at = $1 WHERE hash = $2")
                .bind(expires)
                .bind(hash)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("UPDATE api_keys SET updated_at = $1 WHERE hash = $2")
            .bind(now_ms)
            .bind(hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.notify(crate::Change::Key(hash.to_owned())).await;
        self.key(hash, now_ms).await
    }

    /// Deletes a key; returns whether it existed.
    pub async fn delete_key(&self, hash: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM api_keys WHERE hash = $1")
            .bind(hash)
            .execute(&self.pool)
            .await?;
        self.notify(crate::Change::Key(hash.to_owned())).await;
        Ok(done.rows_affected() > 0)
    }
}
