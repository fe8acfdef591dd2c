//! Persistence for Switchyard: accounts, keys, the credit ledger, generation records, guardrails
//! and presets, on SQLite
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
//! - A lease (a slice of a key's limit and its account's credits taken by one instance) is
//!   counted in both rows' `held` like a hold; a settlement naming it consumes its cost from it
//!   in the settlement's transaction, so spend plus holds plus leases never exceeds a limit.

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use switchyard_core::money::Money;

mod audit;
mod guardrails;
mod presets;
pub use audit::{AuditRow, ContentRow, Settlement};
pub use guardrails::{Assignment, GuardrailRow};
pub use presets::{NewPresetVersion, PresetRow, PresetVersionRow, PresetWithVersion};
mod generations;
mod keys;
mod lease;
mod ledger;
mod notify;
pub use generations::{
    ActivityRow, GenerationQuery, GenerationRecord, ProviderResponse, UsageByKeyAndUser,
};
pub use keys::{KeyRecord, KeyUpdate, KeyUserPolicy, LimitReset, NewKey, WindowUsage};
pub use lease::{Granted, LeaseRow};
mod end_users;
pub use end_users::{
    Block, EndUser, EndUserLimits, StrikeRow, UserHold, BLOCKED_BY_OPERATOR, BLOCKED_BY_STRIKES,
};
pub use ledger::HoldRefused;
pub use notify::{Change, Heard, Listener, CHANNEL};

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
    /// A write lost a race with another (a unique constraint failed); nothing of it was stored.
    #[error("conflict: {0}")]
    Conflict(String),
    /// One failure seen by several callers that waited on the same read (a cache load).
    #[error("{0}")]
    Shared(std::sync::Arc<StoreError>),
}

impl StoreError {
    /// The database could not be reached or went away (restarting, the network, every
    /// connection busy past the pool's wait): worth retrying shortly, unlike a failed statement.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_),
            ) => true,
            // Connection exceptions and operator intervention (a shutdown, a restart).
            StoreError::Database(sqlx::Error::Database(e)) => e
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
            StoreError::Shared(e) => e.is_unavailable(),
            _ => false,
        }
    }
}

/// How long a statement waits for a connection from the pool before the store is reported
/// unavailable (a database restarting or out of reach).
const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

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

/// The store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    /// This gateway instance, the owner of the holds it takes (new at every connect).
    instance: std::sync::Arc<str>,
    /// How long a hold lasts unless renewed, in milliseconds.
    hold_lease_ms: i64,
    /// The PostgreSQL URL, for change listeners (`None` on SQLite).
    url: Option<std::sync::Arc<str>>,
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

/// Most rows per multi-row `INSERT`: well within SQLite's and PostgreSQL's limits on bound
/// parameters (32,766 and 65,535) at 31 columns.
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
            .acquire_timeout(ACQUIRE_TIMEOUT)
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
            url: (dialect == Dialect::Postgres).then(|| url.as_str().into()),
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
        self.notify(notify::Change::Credits(id.to_owned())).await;
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
        self.notify(notify::Change::Settings(id.to_owned())).await;
        Ok(())
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
    fn only_an_unreachable_database_is_unavailable() {
        let cases = [
            (StoreError::Database(sqlx::Error::PoolTimedOut), true),
            (StoreError::Database(sqlx::Error::PoolClosed), true),
            (
                StoreError::Database(sqlx::Error::Io(std::io::Error::from(
                    std::io::ErrorKind::ConnectionReset,
                ))),
                true,
            ),
            (
                StoreError::Shared(std::sync::Arc::new(StoreError::Database(
                    sqlx::Error::PoolTimedOut,
                ))),
                true,
            ),
            (StoreError::Database(sqlx::Error::RowNotFound), false),
            (StoreError::Corrupt("x".into()), false),
            (StoreError::Conflict("x".into()), false),
        ];
        for (e, want) in cases {
            assert_eq!(e.is_unavailable(), want, "{e:?}");
        }
    }

    #[test]
    fn placeholders_per_dialect() {
        assert_eq!(placeholders(Dialect::Sqlite, 2, 2), "(?, ?), (?, ?)");
        assert_eq!(placeholders(Dialect::Postgres, 2, 2), "($1, $2), ($3, $4)");
    }
}
