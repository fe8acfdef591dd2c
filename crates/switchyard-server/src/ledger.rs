//! Credit holds: in memory for a single gateway over its database, or in the database itself.
//!
//! A request holds the most it can cost against its key's limit and its account's credits before
//! anything is sent, and settles its exact cost (or releases the hold) when it ends.
//!
//! - **Memory** (the default for SQLite): this process is the only gateway on the database, so it
//!   keeps every active key's and account's spend in memory, loaded once from the store, and
//!   checks and takes holds under one short lock: no database round trip on the request path.
//!   Settlements update the spend here at once and reach the store through the recorder, which
//!   writes them in batches. Only the settings that other processes change (an account's credits,
//!   from `switchyard credits add`; a key's limit, through the key cache) are re-read, within
//!   about a second; spend never is, so it cannot be counted twice or lost between a read and a
//!   write.
//! - **Database** (the default for PostgreSQL, where several gateways share one database): a hold
//!   is a conditional `UPDATE` in the store ([`Store::hold`]), so replicas never overspend
//!   together; with budget leases ([`lease`], on by default) the gateway takes slices of the
//!   budget in the store and its requests' holds against them in memory, and holds per request
//!   only when the budget is nearly spent.
//!
//! Invariant (both modes, property-tested below for memory): for every key and account,
//! spend + holds never exceeds the limit or the credits because of a hold, whatever the
//! concurrency; a settled cost is at most its hold.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::sync::Mutex;

use std::time::{Duration, Instant};
use tokio_util::task::TaskTracker;

use switchyard_core::money::Money;
use switchyard_core::periods::Periods;
use switchyard_store::{
    Account, HoldRefused, KeyRecord, LimitReset, Store, StoreResult, WindowUsage,
};

pub mod lease;

/// Where holds are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HoldMode {
    /// In this process (one gateway per database).
    Memory,
    /// In the database (several gateways on one database).
    Database,
}

/// How long an account's credits are trusted before they are read again.
const CREDITS_TTL: Duration = Duration::from_secs(1);

/// Entries unused for this long are forgotten (their spend is in the store by then).
const IDLE: Duration = Duration::from_secs(600);

/// Spend over the limit windows, as of the periods it was last rolled to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Windows {
    at: Periods,
    usage: WindowUsage,
}

impl Windows {
    fn roll(&mut self, p: Periods) {
        if p.day != self.at.day {
            self.usage.daily = Money::ZERO;
        }
        if p.week != self.at.week {
            self.usage.weekly = Money::ZERO;
        }
        if p.month != self.at.month {
            self.usage.monthly = Money::ZERO;
        }
        self.at = p;
    }

    fn add(&mut self, amount: Money, p: Periods) {
        self.roll(p);
        let u = &mut self.usage;
        u.total = u.total.saturating_add(amount);
        u.daily = u.daily.saturating_add(amount);
        u.weekly = u.weekly.saturating_add(amount);
        u.monthly = u.monthly.saturating_add(amount);
    }

    fn window(&self, reset: Option<LimitReset>) -> Money {
        match reset {
            None => self.usage.total,
            Some(LimitReset::Daily) => self.usage.daily,
            Some(LimitReset::Weekly) => self.usage.weekly,
            Some(LimitReset::Monthly) => self.usage.monthly,
        }
    }
}

/// One key's budget in memory.
#[derive(Debug, Clone)]
struct KeyBudget {
    limit: Option<Money>,
    limit_reset: Option<LimitReset>,
    include_byok: bool,
    /// `updated_at` of the record the limit settings came from.
    updated_at: i64,
    usage: Windows,
    byok: Windows,
    held: Money,
    used_at: Instant,
}

impl KeyBudget {
    fn from_record(k: &KeyRecord, now_ms: i64) -> KeyBudget {
        let at = Periods::at(now_ms);
        KeyBudget {
            limit: k.limit,
            limit_reset: k.limit_reset,
            include_byok: k.include_byok_in_limit,
            updated_at: k.updated_at,
            usage: Windows { at, usage: k.usage },
            byok: Windows {
                at,
                usage: k.byok_usage,
            },
            held: Money::ZERO,
            used_at: Instant::now(),
        }
    }

    /// Takes the limit settings of a newer record (a key changed through the API or the CLI).
    fn refresh(&mut self, k: &KeyRecord) {
        if k.updated_at >= self.updated_at {
            self.limit = k.limit;
            self.limit_reset = k.limit_reset;
            self.include_byok = k.include_byok_in_limit;
            self.updated_at = k.updated_at;
        }
    }

    /// Rolls both spends to the periods of `p`.
    fn roll(&mut self, p: Periods) {
        self.usage.roll(p);
        self.byok.roll(p);
    }

    /// Spend counted against the limit now, holds included.
    fn committed(&mut self, p: Periods) -> Money {
        self.roll(p);
        let mut used = self.usage.window(self.limit_reset);
        if self.include_byok {
            used = used.saturating_add(self.byok.window(self.limit_reset));
        }
        used.saturating_add(self.held)
    }
}

/// One account's balance in memory.
#[derive(Debug, Clone)]
struct AccountBudget {
    credits: Money,
    usage: Money,
    held: Money,
    credits_read: Instant,
    refreshing: bool,
    used_at: Instant,
}

impl AccountBudget {
    fn from_account(a: &Account) -> AccountBudget {
        AccountBudget {
            credits: a.credits,
            usage: a.usage,
            held: Money::ZERO,
            credits_read: Instant::now(),
            refreshing: false,
            used_at: Instant::now(),
        }
    }

    fn left(&self) -> i64 {
        self.credits
            .picos()
            .saturating_sub(self.usage.picos())
            .saturating_sub(self.held.picos())
    }
}

/// One end user's spend in memory (all their spend, BYOK included).
#[derive(Debug, Clone)]
struct UserBudget {
    usage: Windows,
    held: Money,
    used_at: Instant,
}

/// The end user a hold is also taken against, and their effective limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserLimit {
    /// The end user (of the key's account).
    pub user: String,
    /// Their spending limit: their own, else their key's default; `None` counts without limit.
    pub limit: Option<Money>,
    /// Its window.
    pub reset: Option<LimitReset>,
    /// Their spend as the store had it when last read (used on first use in this process).
    pub usage: WindowUsage,
}

/// The ledger's name of an end user: their account and id.
fn user_key(account_id: &str, user: &str) -> String {
    format!("{account_id}\u{0}{user}")
}

#[derive(Debug, Default)]
struct Budgets {
    keys: HashMap<String, KeyBudget>,
    accounts: HashMap<String, AccountBudget>,
    users: HashMap<String, UserBudget>,
}

impl Budgets {
    /// Checks both budgets and takes the hold from both, or from neither.
    #[cfg(test)]
    fn hold(
        &mut self,
        key_hash: &str,
        account_id: &str,
        amount: Money,
        now_ms: i64,
    ) -> Result<(), HoldRefused> {
        self.hold_for(key_hash, account_id, None, amount, now_ms)
    }

    /// Checks the key's, the end user's (when `user` names one: its ledger name, limit and
    /// window) and the account's budgets, and takes the hold from all, or from none.
    fn hold_for(
        &mut self,
        key_hash: &str,
        account_id: &str,
        user: Option<(&str, Option<Money>, Option<LimitReset>)>,
        amount: Money,
        now_ms: i64,
    ) -> Result<(), HoldRefused> {
        let p = Periods::at(now_ms);
        let (Some(key), Some(account)) = (
            self.keys.get_mut(key_hash),
            self.accounts.get_mut(account_id),
        ) else {
            return Err(HoldRefused::Missing);
        };
        let now = Instant::now();
        key.used_at = now;
        account.used_at = now;
        let user = match user {
            None => None,
            Some((name, limit, reset)) => {
                let Some(u) = self.users.get_mut(name) else {
                    return Err(HoldRefused::Missing);
                };
                u.used_at = now;
                u.usage.roll(p);
                if let Some(limit) = limit {
                    let committed = u.usage.window(reset).saturating_add(u.held);
                    if committed.picos().saturating_add(amount.picos()) > limit.picos() {
                        return Err(HoldRefused::EndUserLimit {
                            needed: amount,
                            remaining: Money::from_picos(
                                limit.picos().saturating_sub(committed.picos()).max(0),
                            ),
                        });
                    }
                }
                Some(u)
            }
        };
        if let Some(limit) = key.limit {
            let committed = key.committed(p);
            if committed.picos().saturating_add(amount.picos()) > limit.picos() {
                return Err(HoldRefused::KeyLimit {
                    needed: amount,
                    remaining: Money::from_picos(
                        limit.picos().saturating_sub(committed.picos()).max(0),
                    ),
                });
            }
        }
        let left = account.left();
        if left.saturating_sub(amount.picos()) < 0 {
            return Err(HoldRefused::Credits {
                needed: amount,
                remaining: Money::from_picos(left.max(0)),
            });
        }
        key.held = key.held.saturating_add(amount);
        account.held = account.held.saturating_add(amount);
        if let Some(u) = user {
            u.held = u.held.saturating_add(amount);
        }
        Ok(())
    }

    /// Ends a hold. The entries count as used now: a settlement may still be on its way to the
    /// store, so they must not be forgotten (and reloaded without it) yet.
    #[cfg(test)]
    fn release(&mut self, key_hash: &str, account_id: &str, amount: Money) {
        self.release_for(key_hash, account_id, None, amount);
    }

    /// [`Budgets::release`], also of the end user's part of the hold.
    fn release_for(&mut self, key_hash: &str, account_id: &str, user: Option<&str>, amount: Money) {
        let now = Instant::now();
        if let Some(u) = user.and_then(|u| self.users.get_mut(u)) {
            u.held = Money::from_picos(u.held.picos().saturating_sub(amount.picos()).max(0));
            u.used_at = now;
        }
        if let Some(key) = self.keys.get_mut(key_hash) {
            key.held = Money::from_picos(key.held.picos().saturating_sub(amount.picos()).max(0));
            key.used_at = now;
        }
        if let Some(account) = self.accounts.get_mut(account_id) {
            account.held =
                Money::from_picos(account.held.picos().saturating_sub(amount.picos()).max(0));
            account.used_at = now;
        }
    }

    /// Turns a hold into spend: the hold is released and the exact cost charged, the way the
    /// store's settlement charges it (BYOK spend apart, not taken from credits).
    #[allow(clippy::too_many_arguments)]
    fn settle(
        &mut self,
        key_hash: &str,
        account_id: &str,
        user: Option<&str>,
        held: Money,
        cost: Money,
        is_byok: bool,
        at_ms: i64,
    ) {
        self.release_for(key_hash, account_id, user, held);
        if cost.is_zero() {
            return;
        }
        let p = Periods::at(at_ms);
        if let Some(u) = user.and_then(|u| self.users.get_mut(u)) {
            u.usage.add(cost, p);
        }
        if let Some(key) = self.keys.get_mut(key_hash) {
            if is_byok {
                &mut key.byok
            } else {
                &mut key.usage
            }
            .add(cost, p);
        }
        if !is_byok {
            if let Some(account) = self.accounts.get_mut(account_id) {
                account.usage = account.usage.saturating_add(cost);
            }
        }
    }

    /// Forgets what has not been used for a while and holds nothing.
    fn sweep(&mut self) {
        self.keys
            .retain(|_, k| !k.held.is_zero() || k.used_at.elapsed() < IDLE);
        self.accounts
            .retain(|_, a| !a.held.is_zero() || a.used_at.elapsed() < IDLE);
        self.users
            .retain(|_, u| !u.held.is_zero() || u.used_at.elapsed() < IDLE);
    }
}

/// A hold taken for one request, owned by whoever runs the request. Settling it charges the
/// exact cost; dropping it unsettled (the client went away, the request failed, a path forgot
/// to settle) releases it: in memory at once, in the store through a tracked background task.
#[derive(Debug)]
pub struct Hold {
    /// The hold's id (the generation id).
    pub id: String,
    /// The key it is held against.
    pub key_hash: String,
    /// The account it is held against.
    pub account_id: String,
    /// The amount held.
    pub amount: Money,
    /// Where it is kept.
    pub mode: HoldMode,
    /// The end user it is also held against (the ledger's name), when the request has one.
    user: Option<String>,
    ledger: Ledger,
    armed: bool,
    /// The budget lease it is held against, in memory (database mode).
    lease: Option<Arc<str>>,
}

impl Hold {
    /// Charges `cost` (in memory at once; the recorder writes the same charge to the store) and
    /// ends the hold. Returns the id of the store's hold that the settlement must release, when
    /// the hold is in the store.
    pub fn settle(mut self, cost: Money, is_byok: bool, at_ms: i64) -> Option<String> {
        self.armed = false;
        self.ledger.inner.open.fetch_sub(1, Ordering::Relaxed);
        if let Some(lease) = self.lease.take() {
            let cost = Money::from_picos(cost.picos().min(self.amount.picos()));
            self.ledger
                .lease_settled(&self.key_hash, &lease, self.amount, cost);
            return None;
        }
        if self.mode == HoldMode::Memory {
            self.ledger.budgets().settle(
                &self.key_hash,
                &self.account_id,
                self.user.as_deref(),
                self.amount,
                cost,
                is_byok,
                at_ms,
            );
            return None;
        }
        Some(std::mem::take(&mut self.id))
    }
}

impl Hold {
    /// The budget lease the hold is taken against (its settlement consumes its cost from it).
    pub fn lease_id(&self) -> Option<String> {
        self.lease.as_deref().map(str::to_owned)
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let ledger = &self.ledger;
        ledger.inner.open.fetch_sub(1, Ordering::Relaxed);
        if let Some(lease) = self.lease.take() {
            ledger.lease_released(&self.key_hash, &lease, self.amount);
            return;
        }
        if self.mode == HoldMode::Memory {
            ledger.budgets().release_for(
                &self.key_hash,
                &self.account_id,
                self.user.as_deref(),
                self.amount,
            );
            return;
        }
        let store = ledger.inner.store.clone();
        let id = std::mem::take(&mut self.id);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            ledger.inner.tasks.spawn_on(
                async move {
                    if let Err(e) = store.release(&id).await {
                        tracing::error!(error = %e, generation_id = %id, "releasing a hold failed");
                    }
                },
                &handle,
            );
        } else {
            // No runtime (the process is ending): the hold stays in the store and is released
            // at the next start as a stale hold.
            tracing::warn!(generation_id = %id, "a database hold could not be released");
        }
    }
}

/// The holds of this gateway; a cheap handle to shared state.
#[derive(Debug, Clone)]
pub struct Ledger {
    inner: std::sync::Arc<LedgerInner>,
}

#[derive(Debug)]
struct LedgerInner {
    mode: HoldMode,
    budgets: Mutex<Budgets>,
    open: AtomicI64,
    store: Store,
    tasks: TaskTracker,
    leases: Option<lease::Leases>,
}

impl Ledger {
    /// A ledger keeping holds as `mode` says, over `store`; releases of database holds run on
    /// `tasks`, which shutdown waits for.
    pub fn new(mode: HoldMode, store: Store, tasks: TaskTracker) -> Ledger {
        Ledger::with_leases(mode, store, tasks, false)
    }

    /// [`Ledger::new`], with budget leases in database mode when `leases` is set.
    pub fn with_leases(mode: HoldMode, store: Store, tasks: TaskTracker, leases: bool) -> Ledger {
        Ledger {
            inner: std::sync::Arc::new(LedgerInner {
                mode,
                budgets: Mutex::new(Budgets::default()),
                open: AtomicI64::new(0),
                store,
                tasks,
                leases: (leases && mode == HoldMode::Database).then(lease::Leases::default),
            }),
        }
    }

    /// Where holds are kept.
    pub fn mode(&self) -> HoldMode {
        self.inner.mode
    }

    /// Holds taken by this process and not yet settled or released.
    pub fn open_holds(&self) -> i64 {
        self.inner.open.load(Ordering::Relaxed)
    }

    fn budgets(&self) -> std::sync::MutexGuard<'_, Budgets> {
        // Every operation under the lock leaves the budgets consistent, so a panic elsewhere
        // cannot have left them half-changed.
        self.inner
            .budgets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Holds `amount` for request `id` against the key's limit and its account's credits.
    pub async fn hold(
        &self,
        id: &str,
        key: &KeyRecord,
        amount: Money,
        now_ms: i64,
    ) -> StoreResult<Result<Hold, HoldRefused>> {
        self.hold_for(id, key, None, amount, now_ms).await
    }

    /// [`Ledger::hold`], also against the request's end user's limit when it has one.
    pub async fn hold_for(
        &self,
        id: &str,
        key: &KeyRecord,
        user: Option<&UserLimit>,
        amount: Money,
        now_ms: i64,
    ) -> StoreResult<Result<Hold, HoldRefused>> {
        let store = &self.inner.store;
        let user_name = user.map(|u| user_key(&key.account_id, &u.user));
        let hold = Hold {
            id: id.to_owned(),
            key_hash: key.hash.clone(),
            account_id: key.account_id.clone(),
            amount,
            mode: self.inner.mode,
            user: user_name.clone(),
            ledger: self.clone(),
            // Armed once granted (in `taken`): a refused hold has nothing to release.
            armed: false,
            lease: None,
        };
        if self.inner.mode == HoldMode::Database {
            let user_hold = user.map(|u| switchyard_store::UserHold {
                user: u.user.clone(),
                limit: u.limit,
                reset: u.reset,
            });
            // A lease covers the key and the account; a request also held against its end
            // user's spending limit takes an exact per-request hold in the store instead.
            if user_hold.is_none() {
                if let Some(lease) = self.lease_hold(key, amount, now_ms).await? {
                    let mut hold = hold;
                    hold.lease = Some(lease);
                    return Ok(self.taken(Ok(()), hold));
                }
            }
            let held = store
                .hold_for(
                    id,
                    &key.hash,
                    &key.account_id,
                    user_hold.as_ref(),
                    amount,
                    now_ms,
                )
                .await?;
            return Ok(self.taken(held, hold));
        }
        // An end user's spend is known from their record the first time they are seen here.
        if let (Some(u), Some(name)) = (user, &user_name) {
            let mut b = self.budgets();
            b.users.entry(name.clone()).or_insert_with(|| UserBudget {
                usage: Windows {
                    at: Periods::at(now_ms),
                    usage: u.usage,
                },
                held: Money::ZERO,
                used_at: Instant::now(),
            });
        }
        let user_args = user
            .zip(user_name.as_deref())
            .map(|(u, name)| (name, u.limit, u.reset));
        let (key_known, account_state) = {
            let mut b = self.budgets();
            let key_known = match b.keys.get_mut(&key.hash) {
                Some(k) => {
                    k.refresh(key);
                    true
                }
                None => false,
            };
            let account_state = b.accounts.get_mut(&key.account_id).map(|a| {
                let stale = !a.refreshing && a.credits_read.elapsed() >= CREDITS_TTL;
                if stale {
                    a.refreshing = true;
                }
                stale
            });
            // The usual case: both known and fresh, the hold is taken under this one lock.
            if key_known && account_state == Some(false) {
                let held = b.hold_for(&key.hash, &key.account_id, user_args, amount, now_ms);
                drop(b);
                return Ok(self.taken(held, hold));
            }
            (key_known, account_state)
        };
        // First use of a key or an account: its spend as the store has it. No settlement of it
        // can be waiting in the recorder, since entries are only forgotten long after their last
        // use.
        if !key_known {
            let Some(fresh) = store.key(&key.hash, now_ms).await? else {
                return Ok(Err(HoldRefused::Missing));
            };
            let mut b = self.budgets();
            if b.keys.len() > 10_000 {
                b.sweep();
            }
            b.keys
                .entry(key.hash.clone())
                .or_insert_with(|| KeyBudget::from_record(&fresh, now_ms));
        }
        match account_state {
            None => {
                let Some(account) = store.account(&key.account_id).await? else {
                    return Ok(Err(HoldRefused::Missing));
                };
                let mut b = self.budgets();
                b.accounts
                    .entry(key.account_id.clone())
                    .or_insert_with(|| AccountBudget::from_account(&account));
            }
            // Credits change from outside (the CLI): re-read them, and only them.
            Some(true) => {
                let read = store.account(&key.account_id).await;
                let mut b = self.budgets();
                if let Some(a) = b.accounts.get_mut(&key.account_id) {
                    a.refreshing = false;
                    if let Ok(Some(account)) = &read {
                        a.credits = account.credits;
                        a.credits_read = Instant::now();
                    }
                }
                read?;
            }
            Some(false) => {}
        }
        let held = self
            .budgets()
            .hold_for(&key.hash, &key.account_id, user_args, amount, now_ms);
        Ok(self.taken(held, hold))
    }

    /// Counts a granted hold as open.
    fn taken(&self, held: Result<(), HoldRefused>, mut hold: Hold) -> Result<Hold, HoldRefused> {
        held.map(|()| {
            self.inner.open.fetch_add(1, Ordering::Relaxed);
            hold.armed = true;
            hold
        })
    }

    /// A key's spend over its windows in memory (standard, BYOK), when it is known here.
    pub fn key_usage(&self, key_hash: &str, now_ms: i64) -> Option<(WindowUsage, WindowUsage)> {
        let mut b = self.budgets();
        let key = b.keys.get_mut(key_hash)?;
        key.roll(Periods::at(now_ms));
        Some((key.usage.usage, key.byok.usage))
    }

    /// Takes a key's new limit settings at once (the key was changed through the API).
    pub fn update_key(&self, key: &KeyRecord) {
        self.return_lease_soon(&key.hash);
        if let Some(k) = self.budgets().keys.get_mut(&key.hash) {
            k.updated_at = i64::MIN;
            k.refresh(key);
        }
    }

    /// Forgets a key (deleted). Its spend is in the store.
    pub fn forget_key(&self, key_hash: &str) {
        self.return_lease_soon(key_hash);
        let mut b = self.budgets();
        if b.keys.get(key_hash).is_some_and(|k| k.held.is_zero()) {
            b.keys.remove(key_hash);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DAY: i64 = switchyard_core::periods::DAY_MS;
    const T0: i64 = 20_780 * DAY; // a Monday

    fn usd(picos: i64) -> Money {
        Money::from_picos(picos)
    }

    fn budgets(limit: Option<i64>, reset: Option<LimitReset>, credits: i64) -> Budgets {
        let mut b = Budgets::default();
        let at = Periods::at(T0);
        b.keys.insert(
            "k".into(),
            KeyBudget {
                limit: limit.map(usd),
                limit_reset: reset,
                include_byok: false,
                updated_at: 0,
                usage: Windows {
                    at,
                    usage: WindowUsage::default(),
                },
                byok: Windows {
                    at,
                    usage: WindowUsage::default(),
                },
                held: Money::ZERO,
                used_at: Instant::now(),
            },
        );
        b.accounts.insert(
            "a".into(),
            AccountBudget {
                credits: usd(credits),
                usage: Money::ZERO,
                held: Money::ZERO,
                credits_read: Instant::now(),
                refreshing: false,
                used_at: Instant::now(),
            },
        );
        b
    }

    #[test]
    fn holds_table() {
        struct Case {
            name: &'static str,
            limit: Option<i64>,
            credits: i64,
            holds: Vec<i64>,
            want: Vec<Result<(), HoldRefused>>,
        }
        let cases = [
            Case {
                name: "no limit, enough credits",
                limit: None,
                credits: 100,
                holds: vec![60, 40],
                want: vec![Ok(()), Ok(())],
            },
            Case {
                name: "credits run out",
                limit: None,
                credits: 100,
                holds: vec![60, 41],
                want: vec![
                    Ok(()),
                    Err(HoldRefused::Credits {
                        needed: usd(41),
                        remaining: usd(40),
                    }),
                ],
            },
            Case {
                name: "key limit before credits",
                limit: Some(50),
                credits: 100,
                holds: vec![30, 30],
                want: vec![
                    Ok(()),
                    Err(HoldRefused::KeyLimit {
                        needed: usd(30),
                        remaining: usd(20),
                    }),
                ],
            },
            Case {
                name: "exactly the limit",
                limit: Some(50),
                credits: 50,
                holds: vec![50, 1],
                want: vec![
                    Ok(()),
                    Err(HoldRefused::KeyLimit {
                        needed: usd(1),
                        remaining: usd(0),
                    }),
                ],
            },
        ];
        for c in cases {
            let mut b = budgets(c.limit, None, c.credits);
            for (amount, want) in c.holds.iter().zip(&c.want) {
                assert_eq!(&b.hold("k", "a", usd(*amount), T0), want, "{}", c.name);
            }
        }
    }

    #[test]
    fn a_refused_hold_takes_nothing_and_unknown_budgets_are_missing() {
        let mut b = budgets(Some(50), None, 10);
        assert!(matches!(
            b.hold("k", "a", usd(20), T0),
            Err(HoldRefused::Credits { .. })
        ));
        assert_eq!((b.keys["k"].held, b.accounts["a"].held), (usd(0), usd(0)));
        assert_eq!(b.hold("x", "a", usd(1), T0), Err(HoldRefused::Missing));
        assert_eq!(b.hold("k", "x", usd(1), T0), Err(HoldRefused::Missing));
    }

    #[test]
    fn settlement_charges_the_cost_and_frees_the_rest() {
        let mut b = budgets(Some(100), None, 100);
        assert_eq!(b.hold("k", "a", usd(80), T0), Ok(()));
        b.settle("k", "a", None, usd(80), usd(30), false, T0);
        assert_eq!(b.accounts["a"].usage, usd(30));
        assert_eq!(b.accounts["a"].held, usd(0));
        assert_eq!(b.keys["k"].usage.usage.total, usd(30));
        // 70 left on both.
        assert_eq!(b.hold("k", "a", usd(70), T0), Ok(()));
        b.release("k", "a", usd(70));
        // BYOK spend is not taken from credits and, by default, not from the limit.
        assert_eq!(b.hold("k", "a", usd(70), T0), Ok(()));
        b.settle("k", "a", None, usd(70), usd(50), true, T0);
        assert_eq!(b.accounts["a"].usage, usd(30));
        assert_eq!(b.keys["k"].byok.usage.total, usd(50));
        assert_eq!(b.hold("k", "a", usd(70), T0), Ok(()));
    }

    #[test]
    fn daily_limits_reset_at_midnight_utc() {
        let mut b = budgets(Some(50), Some(LimitReset::Daily), 1000);
        assert_eq!(b.hold("k", "a", usd(50), T0), Ok(()));
        b.settle("k", "a", None, usd(50), usd(50), false, T0);
        assert!(matches!(
            b.hold("k", "a", usd(1), T0 + DAY - 1),
            Err(HoldRefused::KeyLimit { .. })
        ));
        assert_eq!(b.hold("k", "a", usd(50), T0 + DAY), Ok(()));
        // The all-time spend keeps counting.
        assert_eq!(b.keys["k"].usage.usage.total, usd(50));
    }

    #[test]
    fn newer_key_records_change_the_limit_older_ones_do_not() {
        let mut k = budgets(Some(10), None, 0).keys.remove("k").expect("key");
        let mut record = KeyRecord {
            hash: "k".into(),
            account_id: "a".into(),
            name: String::new(),
            label: String::new(),
            is_management: false,
            disabled: false,
            limit: Some(usd(99)),
            limit_reset: None,
            include_byok_in_limit: false,
            usage: WindowUsage::default(),
            byok_usage: WindowUsage::default(),
            held: Money::ZERO,
            creator_user_id: None,
            expires_at: None,
            last_used_at: None,
            created_at: 0,
            updated_at: 5,
            end_users: switchyard_store::KeyUserPolicy::default(),
        };
        k.refresh(&record);
        assert_eq!(k.limit, Some(usd(99)));
        record.limit = Some(usd(1));
        record.updated_at = 4;
        k.refresh(&record);
        assert_eq!(k.limit, Some(usd(99)));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Hold(i64),
        Settle(usize, i64),
        Release(usize),
        NextDay,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (1i64..400).prop_map(Op::Hold),
            (0usize..8, 0i64..=100).prop_map(|(i, pct)| Op::Settle(i, pct)),
            (0usize..8).prop_map(Op::Release),
            Just(Op::NextDay),
        ]
    }

    #[derive(Debug, Clone)]
    enum UserOp {
        Hold(usize, i64),
        Settle(usize, i64),
        Release(usize),
        NextDay,
    }

    fn user_op() -> impl Strategy<Value = UserOp> {
        prop_oneof![
            (0usize..4, 1i64..300).prop_map(|(u, a)| UserOp::Hold(u, a)),
            (0usize..16, 0i64..=100).prop_map(|(i, pct)| UserOp::Settle(i, pct)),
            (0usize..16).prop_map(UserOp::Release),
            Just(UserOp::NextDay),
        ]
    }

    #[test]
    fn an_end_user_over_their_limit_is_refused_while_another_is_held() {
        let mut b = budgets(Some(1_000), None, 1_000);
        for u in ["u1", "u2"] {
            b.users.insert(
                u.into(),
                UserBudget {
                    usage: Windows {
                        at: Periods::at(T0),
                        usage: WindowUsage::default(),
                    },
                    held: Money::ZERO,
                    used_at: Instant::now(),
                },
            );
        }
        let u1 = Some(("u1", Some(usd(50)), None));
        assert_eq!(b.hold_for("k", "a", u1, usd(40), T0), Ok(()));
        b.settle("k", "a", Some("u1"), usd(40), usd(40), false, T0);
        assert_eq!(
            b.hold_for("k", "a", u1, usd(20), T0),
            Err(HoldRefused::EndUserLimit {
                needed: usd(20),
                remaining: usd(10)
            })
        );
        assert_eq!(b.keys["k"].held, usd(0), "a refused hold takes nothing");
        assert_eq!(
            b.hold_for("k", "a", Some(("u2", Some(usd(50)), None)), usd(20), T0),
            Ok(())
        );
        // Without a limit the end user's holds are only counted.
        assert_eq!(
            b.hold_for("k", "a", Some(("u1", None, None)), usd(500), T0),
            Ok(())
        );
        assert_eq!(b.users["u1"].held, usd(500));
        assert_eq!(
            b.hold_for("k", "a", Some(("x", None, None)), usd(1), T0),
            Err(HoldRefused::Missing)
        );
    }

    proptest! {
        /// Whatever the interleaving of holds, settlements and releases of several end users of
        /// one key, no end user's spend plus holds goes past their limit in the window, and the
        /// key's does not go past its own.
        #[test]
        fn no_end_user_and_no_key_overspends(
            key_limit in 1i64..3000,
            user_limits in prop::collection::vec(prop::option::of(1i64..800), 4),
            ops in prop::collection::vec(user_op(), 1..120),
        ) {
            let mut b = budgets(Some(key_limit), Some(LimitReset::Daily), i64::MAX / 4);
            let names = ["u0", "u1", "u2", "u3"];
            for n in names {
                b.users.insert(n.into(), UserBudget {
                    usage: Windows { at: Periods::at(T0), usage: WindowUsage::default() },
                    held: Money::ZERO,
                    used_at: Instant::now(),
                });
            }
            let mut now = T0;
            let mut open: Vec<(usize, i64)> = Vec::new();
            let mut spent_today = [0i64; 4];
            for op in ops {
                match op {
                    UserOp::Hold(u, amount) => {
                        let limit = user_limits[u].map(usd);
                        let args = Some((names[u], limit, Some(LimitReset::Daily)));
                        if b.hold_for("k", "a", args, usd(amount), now).is_ok() {
                            open.push((u, amount));
                        }
                    }
                    UserOp::Settle(i, pct) if !open.is_empty() => {
                        let (u, held) = open.remove(i % open.len());
                        let cost = held * pct / 100;
                        b.settle("k", "a", Some(names[u]), usd(held), usd(cost), false, now);
                        spent_today[u] += cost;
                    }
                    UserOp::Release(i) if !open.is_empty() => {
                        let (u, held) = open.remove(i % open.len());
                        b.release_for("k", "a", Some(names[u]), usd(held));
                    }
                    UserOp::NextDay => {
                        now += DAY;
                        spent_today = [0; 4];
                    }
                    _ => {}
                }
                let mut key_total = 0;
                for u in 0..4 {
                    let held: i64 = open.iter().filter(|(o, _)| *o == u).map(|(_, a)| a).sum();
                    if let Some(limit) = user_limits[u] {
                        prop_assert!(spent_today[u] + held <= limit, "user {} over its limit", u);
                    }
                    prop_assert_eq!(b.users[names[u]].held.picos(), held);
                    key_total += spent_today[u] + held;
                }
                prop_assert!(key_total <= key_limit, "the key is over its limit");
            }
        }

        /// Whatever the order of holds, settlements and releases, spend plus holds never goes
        /// past the key's window limit or the account's credits, and nothing stays held once
        /// every hold has ended.
        #[test]
        fn never_overspends(limit in 1i64..2000, credits in 0i64..3000, ops in prop::collection::vec(op(), 1..80)) {
            let mut b = budgets(Some(limit), Some(LimitReset::Daily), credits);
            let mut now = T0;
            let mut open: Vec<i64> = Vec::new();
            let mut spent_today = 0i64;
            let mut spent = 0i64;
            for op in ops {
                match op {
                    Op::Hold(amount) if b.hold("k", "a", usd(amount), now).is_ok() => {
                        open.push(amount);
                    }
                    Op::Settle(i, pct) if !open.is_empty() => {
                        let held = open.remove(i % open.len());
                        let cost = held * pct / 100;
                        b.settle("k", "a", None, usd(held), usd(cost), false, now);
                        spent += cost;
                        spent_today += cost;
                    }
                    Op::Release(i) if !open.is_empty() => {
                        let held = open.remove(i % open.len());
                        b.release("k", "a", usd(held));
                    }
                    Op::NextDay => {
                        now += DAY;
                        spent_today = 0;
                    }
                    _ => {}
                }
                let held: i64 = open.iter().sum();
                prop_assert!(spent_today + held <= limit);
                prop_assert!(spent + held <= credits);
                prop_assert_eq!(b.keys["k"].held.picos(), held);
                prop_assert_eq!(b.accounts["a"].held.picos(), held);
                prop_assert_eq!(b.accounts["a"].usage.picos(), spent);
            }
        }
    }
}
