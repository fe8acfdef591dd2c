//! Persistence for Switchyard: accounts, keys, the credit ledger and generation records, on SQLite
//! (embedded default) or PostgreSQL.
//!
//! One [`Store`] runs over sqlx's `Any` driver with one migration set for both dialects. Every
//! statement is portable SQL (`$n` placeholders, `BIGINT` amounts, 0/1 booleans), so both
//! databases run the same code, the same schema and the same contract tests.
//!
//! Invariants:
//! - Only this crate knows SQL.
//! - Amounts are integer pico-dollars ([`Money`]); keys are stored only as SHA-256 hashes.
//! - A hold is taken by one conditional `UPDATE` per row, so concurrent holds can never push a
//!   key past its limit or an account past its credits, on either database.
//! - Settling is idempotent by generation id: the hold row is deleted in the same transaction
//!   that charges the cost and writes the generation record.
//! - A hold row names the [`Store`] instance that took it and lapses unless that instance
//!   renews it: only lapsed holds and an instance's own are ever released in bulk.

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use switchyard_core::money::Money;
use switchyard_core::periods::Periods;

mod audit;
mod guardrails;
pub use audit::{AuditRow, ContentRow, Settlement};
pub use guardrails::{Assignment, GuardrailRow};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The URL names no supported database.
    #[error("unsupported store URL {0:?}: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    /// A stored value is corrupt.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// An amount overflowed.
    #[error("amount out of range")]
    Overflow,
    /// One failure seen by several callers that waited on the same read (a cache load).
    #[error("{0}")]
    Shared(std::sync::Arc<StoreError>),
}

/// Result of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// SQL dialect of the connected database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
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

/// An account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Credits ever added.
    pub credits: Money,
    /// Credits spent.
    pub usage: Money,
    /// Spent through BYOK endpoints (not charged to credits).
    pub byok_usage: Money,
    /// Credits held by requests in flight.
    pub held: Money,
}

impl Account {
    /// Credits left, not counting holds.
    pub fn balance(&self) -> Money {
        Money::from_picos(self.credits.picos().saturating_sub(self.usage.picos()))
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
    /// The key or account is gone.
    Missing,
}

/// One row of the activity report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityRow {
    /// Days since the Unix epoch (UTC).
    pub day: i64,
    /// Model id.
    pub model: String,
    /// Provider slug.
    pub provider_slug: String,
    /// Provider name.
    pub provider_name: String,
    /// Requests.
    pub requests: u64,
    /// Spend charged to credits.
    pub usage: Money,
    /// Spend on BYOK endpoints.
    pub byok_usage: Money,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Reasoning tokens.
    pub reasoning_tokens: u64,
    /// Cached prompt tokens.
    pub cached_tokens: u64,
}

/// A generation's metadata, written when it is settled.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GenerationRecord {
    /// `gen-...`.
    pub id: String,
    /// Account.
    pub account_id: String,
    /// Key hash.
    pub key_hash: String,
    /// Unix ms.
    pub created_at: i64,
    /// Serving model id.
    pub model: String,
    /// Serving provider slug.
    pub provider_slug: String,
    /// Serving provider display name.
    pub provider_name: String,
    /// Provider's id.
    pub upstream_id: Option<String>,
    /// Streamed.
    pub streamed: bool,
    /// Cancelled by the client.
    pub cancelled: bool,
    /// Contract finish reason.
    pub finish_reason: Option<String>,
    /// Provider finish reason.
    pub native_finish_reason: Option<String>,
    /// Prompt tokens.
    pub tokens_prompt: u64,
    /// Completion tokens.
    pub tokens_completion: u64,
    /// Reasoning tokens.
    pub tokens_reasoning: u64,
    /// Cached prompt tokens.
    pub tokens_cached: u64,
    /// Charged.
    pub cost: Money,
    /// Served with the operator's own provider key.
    pub is_byok: bool,
    /// Time to first byte, ms.
    pub latency_ms: Option<i64>,
    /// Total generation time, ms.
    pub generation_time_ms: Option<i64>,
    /// `HTTP-Referer`.
    pub http_referer: Option<String>,
    /// `X-OpenRouter-Title`.
    pub app_title: Option<String>,
    /// End user.
    pub end_user: Option<String>,
    /// Session.
    pub session_id: Option<String>,
    /// HTTP status given to the client.
    pub status: u16,
    /// Error message when it failed.
    pub error_message: Option<String>,
}

/// The store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    /// This gateway instance, the owner of the holds it takes (new at every connect).
    instance: std::sync::Arc<str>,
    /// How long a hold lasts unless renewed, in milliseconds.
    hold_lease_ms: i64,
}

/// How long a hold lasts unless its owner renews it, by default.
pub const DEFAULT_HOLD_LEASE: std::time::Duration = std::time::Duration::from_secs(60);

fn b(v: bool) -> i64 {
    i64::from(v)
}

fn money(row: &AnyRow, column: &str) -> StoreResult<Money> {
    Ok(Money::from_picos(row.try_get::<i64, _>(column)?))
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

const GENERATION_COLUMNS: &str = "id, account_id, key_hash, created_at, model, provider_slug, provider_name, \
     upstream_id, streamed, cancelled, finish_reason, native_finish_reason, tokens_prompt, tokens_completion, \
     tokens_reasoning, tokens_cached, cost, is_byok, latency_ms, generation_time_ms, http_referer, app_title, \
     end_user, session_id, status, error_message";

/// Most rows per multi-row `INSERT`: well within SQLite's and PostgreSQL's limits on bound
/// parameters (32,766 and 65,535) at 26 columns.
const MAX_ROWS_PER_INSERT: usize = 256;

/// Splits `items` for multi-row inserts into chunks of power-of-two sizes (256, 128, ..., 1), so
/// that a few prepared statements serve every batch size.
pub(crate) fn insert_chunks<T>(mut items: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if items.is_empty() {
            return None;
        }
        let n = items.len().min(MAX_ROWS_PER_INSERT);
        let size = 1usize << n.ilog2();
        let (chunk, rest) = items.split_at(size);
        items = rest;
        Some(chunk)
    })
}

/// The `VALUES` list of a multi-row insert of `rows` rows of `columns` parameters: `(?, ?), (?, ?)`
/// on SQLite (positional: SQLite resolves numbered names with a linear scan each, quadratic over
/// a large statement), `($1, $2), ($3, $4)` on PostgreSQL.
pub(crate) fn placeholders(dialect: Dialect, rows: usize, columns: usize) -> String {
    let mut out = String::with_capacity(rows * columns * 5);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..columns {
            if c > 0 {
                out.push_str(", ");
            }
            match dialect {
                Dialect::Sqlite => out.push('?'),
                Dialect::Postgres => {
                    out.push('$');
                    out.push_str(&(r * columns + c + 1).to_string());
                }
            }
        }
        out.push(')');
    }
    out
}

fn lease_ms(lease: std::time::Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)
}

const KEY_COLUMNS: &str = "hash, account_id, name, label, is_management, disabled, limit_amount, limit_reset, \
     include_byok_in_limit, usage, byok_usage, day_index, usage_daily, byok_usage_daily, week_index, \
     usage_weekly, byok_usage_weekly, month_index, usage_monthly, byok_usage_monthly, held, \
     creator_user_id, expires_at, last_used_at, created_at, updated_at";

impl Store {
    /// Connects, creating an SQLite file if needed, and runs the migrations.
    pub async fn connect(url: &str) -> StoreResult<Store> {
        sqlx::any::install_default_drivers();
        let (dialect, url, max) = if let Some(rest) = url.strip_prefix("sqlite:") {
            let mut url = format!("sqlite:{rest}");
            if !url.contains('?') && !rest.contains(":memory:") {
                url.push_str("?mode=rwc");
            }
            (
                Dialect::Sqlite,
                url,
                if rest.contains(":memory:") { 1 } else { 8 },
            )
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Dialect::Postgres, url.to_owned(), 16)
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 10000")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        let store = Store {
            pool,
            dialect,
            instance: uuid::Uuid::new_v4().simple().to_string().into(),
            hold_lease_ms: lease_ms(DEFAULT_HOLD_LEASE),
        };
        // One migration set: the schema uses only what both dialects read the same way.
        sqlx::migrate!("./migrations").run(&store.pool).await?;
        Ok(store)
    }

    /// The same store with holds lasting `lease` unless renewed ([`Store::renew_holds`]).
    #[must_use]
    pub fn with_hold_lease(mut self, lease: std::time::Duration) -> Store {
        self.hold_lease_ms = lease_ms(lease);
        self
    }

    /// This instance's id: the owner recorded on the holds it takes. Each [`Store::connect`]
    /// is a new instance.
    pub fn instance_id(&self) -> &str {
        &self.instance
    }

    /// The connected dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    // === accounts ===

    /// Creates the account if it does not exist.
    pub async fn ensure_account(&self, id: &str, name: &str, now_ms: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(name)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An account.
    pub async fn account(&self, id: &str) -> StoreResult<Option<Account>> {
        let row = sqlx::query(
            "SELECT id, name, credits, usage, byok_usage, held FROM accounts WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(Account {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                credits: money(&r, "credits")?,
                usage: money(&r, "usage")?,
                byok_usage: money(&r, "byok_usage")?,
                held: money(&r, "held")?,
            })
        })
        .transpose()
    }

    /// Adds credits (a negative amount removes them); returns the account after.
    pub async fn add_credits(&self, id: &str, amount: Money) -> StoreResult<Option<Account>> {
        sqlx::query("UPDATE accounts SET credits = credits + $1 WHERE id = $2")
            .bind(amount.picos())
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.account(id).await
    }

    /// The account's settings document (JSON).
    pub async fn account_settings(&self, id: &str) -> StoreResult<serde_json::Value> {
        let text: Option<String> =
            sqlx::query_scalar("SELECT settings FROM accounts WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        match text {
            None => Ok(serde_json::Value::Null),
            Some(t) => serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(e.to_string())),
        }
    }

    /// Replaces the account's settings document.
    pub async fn set_account_settings(
        &self,
        id: &str,
        settings: &serde_json::Value,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE accounts SET settings = $1 WHERE id = $2")
            .bind(settings.to_string())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // === keys ===

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
        })
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
        self.key(hash, now_ms).await
    }

    /// Deletes a key; returns whether it existed.
    pub async fn delete_key(&self, hash: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM api_keys WHERE hash = $1")
            .bind(hash)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    // === ledger ===

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
            "INSERT INTO holds (id, key_hash, account_id, amount, created_at, owner, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(hold_id)
        .bind(key_hash)
        .bind(account_id)
        .bind(amount.picos())
        .bind(now_ms)
        .bind(&*self.instance)
        .bind(now_ms.saturating_add(self.hold_lease_ms))
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
        let row =
            sqlx::query("DELETE FROM holds WHERE id = $1 RETURNING key_hash, account_id, amount")
                .bind(hold_id)
                .fetch_optional(&mut **tx)
                .await?;
        let Some(row) = row else { return Ok(false) };
        let key_hash: String = row.try_get("key_hash")?;
        let account_id: String = row.try_get("account_id")?;
        let amount: i64 = row.try_get("amount")?;
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
                placeholders(dialect, chunk.len(), 26)
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
                    .bind(r.error_message.as_deref());
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
        let mut settled = 0;
        for s in settlements {
            let r = &s.record;
            // Each inserted record is charged once, even if the batch holds its id twice.
            if !inserted.remove(&r.id) {
                continue;
            }
            settled += 1;
            let used = last_used.entry(r.key_hash.as_str()).or_insert(r.created_at);
            *used = (*used).max(r.created_at);
            if let Some(hold_id) = &s.hold_id {
                Self::take_hold(tx, hold_id).await?;
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
            let sql = format!(
                "UPDATE api_keys SET {usage} = {usage} + $1, \
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
                .execute(&mut **tx)
                .await?;
        }
        for (key_hash, at) in last_used {
            sqlx::query(
                "UPDATE api_keys SET last_used_at = $1 WHERE hash = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
            )
            .bind(at)
            .bind(key_hash)
            .execute(&mut **tx)
            .await?;
        }
        for ((account_id, is_byok), cost) in accounts {
            let usage = if is_byok { "byok_usage" } else { "usage" };
            sqlx::query(&format!(
                "UPDATE accounts SET {usage} = {usage} + $1 WHERE id = $2"
            ))
            .bind(cost)
            .bind(account_id)
            .execute(&mut **tx)
            .await?;
        }
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

    // === generations ===

    /// Activity of an account in `[since_ms, until_ms)`, per UTC day, model and provider,
    /// optionally for one key; newest day first.
    pub async fn activity(
        &self,
        account_id: &str,
        since_ms: i64,
        until_ms: i64,
        key_hash: Option<&str>,
    ) -> StoreResult<Vec<ActivityRow>> {
        let rows = sqlx::query(
            "SELECT CAST(created_at / 86400000 AS BIGINT) AS day, model, provider_slug, provider_name, \
             CAST(COUNT(*) AS BIGINT) AS requests, \
             CAST(SUM(CASE WHEN is_byok = 0 THEN cost ELSE 0 END) AS BIGINT) AS usage, \
             CAST(SUM(CASE WHEN is_byok = 1 THEN cost ELSE 0 END) AS BIGINT) AS byok_usage, \
             CAST(SUM(tokens_prompt) AS BIGINT) AS prompt_tokens, \
             CAST(SUM(tokens_completion) AS BIGINT) AS completion_tokens, \
             CAST(SUM(tokens_reasoning) AS BIGINT) AS reasoning_tokens, \
             CAST(SUM(tokens_cached) AS BIGINT) AS cached_tokens \
             FROM generations WHERE account_id = $1 AND created_at >= $2 AND created_at < $3 \
             AND ($4 = '' OR key_hash = $4) \
             GROUP BY CAST(created_at / 86400000 AS BIGINT), model, provider_slug, provider_name \
             ORDER BY day DESC, model, provider_slug",
        )
        .bind(account_id)
        .bind(since_ms)
        .bind(until_ms)
        .bind(key_hash.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let count = |c: &str| -> StoreResult<u64> {
                    Ok(u64::try_from(r.try_get::<i64, _>(c)?).unwrap_or(0))
                };
                Ok(ActivityRow {
                    day: r.try_get("day")?,
                    model: r.try_get("model")?,
                    provider_slug: r.try_get("provider_slug")?,
                    provider_name: r.try_get("provider_name")?,
                    requests: count("requests")?,
                    usage: money(r, "usage")?,
                    byok_usage: money(r, "byok_usage")?,
                    prompt_tokens: count("prompt_tokens")?,
                    completion_tokens: count("completion_tokens")?,
                    reasoning_tokens: count("reasoning_tokens")?,
                    cached_tokens: count("cached_tokens")?,
                })
            })
            .collect()
    }

    /// Number of generations of an account and the sum of their non-BYOK costs (what the
    /// account's `usage` must equal).
    pub async fn generation_totals(&self, account_id: &str) -> StoreResult<(i64, Money)> {
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n, CAST(COALESCE(SUM(CASE WHEN is_byok = 0 THEN cost ELSE 0 END), 0) AS BIGINT) AS total \
             FROM generations WHERE account_id = $1",
        )
        .bind(account_id)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("n")?, money(&row, "total")?))
    }

    /// A generation record.
    pub async fn generation(&self, id: &str) -> StoreResult<Option<GenerationRecord>> {
        let row = sqlx::query("SELECT * FROM generations WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(r) = row else { return Ok(None) };
        let u = |col: &str| -> StoreResult<u64> {
            Ok(u64::try_from(r.try_get::<i64, _>(col)?).unwrap_or(0))
        };
        Ok(Some(GenerationRecord {
            id: r.try_get("id")?,
            account_id: r.try_get("account_id")?,
            key_hash: r.try_get("key_hash")?,
            created_at: r.try_get("created_at")?,
            model: r.try_get("model")?,
            provider_slug: r.try_get("provider_slug")?,
            provider_name: r.try_get("provider_name")?,
            upstream_id: r.try_get("upstream_id")?,
            streamed: r.try_get::<i64, _>("streamed")? != 0,
            cancelled: r.try_get::<i64, _>("cancelled")? != 0,
            finish_reason: r.try_get("finish_reason")?,
            native_finish_reason: r.try_get("native_finish_reason")?,
            tokens_prompt: u("tokens_prompt")?,
            tokens_completion: u("tokens_completion")?,
            tokens_reasoning: u("tokens_reasoning")?,
            tokens_cached: u("tokens_cached")?,
            cost: money(&r, "cost")?,
            is_byok: r.try_get::<i64, _>("is_byok")? != 0,
            latency_ms: r.try_get("latency_ms")?,
            generation_time_ms: r.try_get("generation_time_ms")?,
            http_referer: r.try_get("http_referer")?,
            app_title: r.try_get("app_title")?,
            end_user: r.try_get("end_user")?,
            session_id: r.try_get("session_id")?,
            status: u16::try_from(r.try_get::<i64, _>("status")?).unwrap_or(0),
            error_message: r.try_get("error_message")?,
        }))
    }
}

impl Store {
    /// Runs one statement as-is (administration and tests: schema creation).
    pub async fn raw_execute(&self, sql: &str) -> StoreResult<()> {
        sqlx::query(sql).execute(&self.pool).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_powers_of_two_and_cover_everything() {
        for n in [0usize, 1, 2, 3, 255, 256, 257, 700, 1000] {
            let items: Vec<usize> = (0..n).collect();
            let chunks: Vec<&[usize]> = insert_chunks(&items).collect();
            assert!(
                chunks
                    .iter()
                    .all(|c| c.len().is_power_of_two() && c.len() <= 256),
                "{n}"
            );
            assert_eq!(chunks.concat(), items, "{n}");
        }
    }

    #[test]
    fn placeholders_per_dialect() {
        assert_eq!(placeholders(Dialect::Sqlite, 2, 2), "(?, ?), (?, ?)");
        assert_eq!(placeholders(Dialect::Postgres, 2, 2), "($1, $2), ($3, $4)");
    }
}
