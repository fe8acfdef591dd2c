//! Budget leases: database holds without a database statement per request.
//!
//! With database holds (several gateways on one database), this gateway takes a slice of a
//! key's remaining limit and of its account's remaining credits from the store
//! ([`Store::grant_lease`]: one conditional grant, exact under any concurrency) and takes its
//! requests' holds against that slice in memory. A settlement names the lease and consumes its
//! cost from it in the store, in the settlement's own transaction; a hold released in memory
//! frees its part of the slice for the next request. Before a slice runs out it is refilled in
//! the background; what is unused goes back to the store when the key goes idle, when its limit
//! changes and when the gateway stops. The slice a key asks for follows its rate (enough for
//! about [`HORIZON`] of its traffic) and is never more than a [`SHARE`]-th of what the key and
//! the account have left, so other gateways get theirs; when not even [`MIN_REQUESTS`] holds of
//! the request at hand fit in that share (the budget is nearly spent), the request takes a
//! per-request database hold instead ([`Store::hold`]), so small limits stay exact.
//!
//! A lease lapses unless its gateway renews it (every sweep, with the hold lease): the lease of
//! a gateway that died is reclaimed by the others once lapsed.
//!
//! Invariants (the store's rows hold the truth; property-tested below): what this process holds
//! against a lease never exceeds what it was granted less what it settled, which is at most
//! what the store's lease row has left (settlements reach the row after they reach this book);
//! so the sum of outstanding leases, per-request holds and recorded spend never exceeds a key's
//! limit or an account's credits, whichever gateways take them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchyard_core::money::Money;
use switchyard_store::{KeyRecord, StoreResult};

use super::Ledger;

/// A slice is at most this fraction of what the key's limit and the account's credits leave.
pub const SHARE: i64 = 4;
/// A slice covers at least this many holds of the request asking; below it, per-request holds.
pub const MIN_REQUESTS: i64 = 2;
/// The first slice of a key: this many holds of the request asking.
const FIRST_REQUESTS: i64 = 8;
/// A slice aims to last this long at the key's rate.
pub const HORIZON: Duration = Duration::from_secs(2);
/// A lease unused this long is returned.
const IDLE: Duration = Duration::from_secs(5);
/// After a refused grant, requests of the key hold per request for this long before a slice
/// is asked for again.
const REFUSED_PAUSE: Duration = Duration::from_millis(500);

/// The next slice to ask for: enough for [`HORIZON`] at the rate seen since the last grant
/// (`used` held over `elapsed`), moving at most halfway down or four times up from `size`, and
/// never under [`FIRST_REQUESTS`] holds of `amount`.
pub fn next_size(size: i64, used: i64, elapsed: Duration, amount: i64) -> i64 {
    let floor = amount.saturating_mul(FIRST_REQUESTS).max(1);
    let elapsed_ms = i128::try_from(elapsed.as_millis())
        .unwrap_or(i128::MAX)
        .max(1);
    let horizon_ms = i128::try_from(HORIZON.as_millis()).unwrap_or(i128::MAX);
    let at_rate = i128::from(used.max(0)) * horizon_ms / elapsed_ms;
    let at_rate = i64::try_from(at_rate).unwrap_or(i64::MAX);
    let size = size.max(floor);
    at_rate.clamp(size / 2, size.saturating_mul(4)).max(floor)
}

/// One key's lease in this process.
#[derive(Debug)]
struct KeyLease {
    /// The lease row's id (a new one whenever the lease was closed).
    id: Arc<str>,
    account_id: String,
    /// What may still be held against the lease: granted, less settled here, less returned.
    granted: i64,
    /// Held by requests in flight.
    reserved: i64,
    /// The next slice to ask for (0 until the first grant).
    size: i64,
    /// When the last slice was granted, and what was held since.
    since: Instant,
    used: i64,
    used_at: Instant,
    /// A background refill is on its way.
    refilling: bool,
    /// A grant was refused: hold per request until then.
    paused_until: Option<Instant>,
    /// One grant at a time per key.
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl KeyLease {
    fn new(account_id: &str, now: Instant) -> KeyLease {
        KeyLease {
            id: new_id(),
            account_id: account_id.to_owned(),
            granted: 0,
            reserved: 0,
            size: 0,
            since: now,
            used: 0,
            used_at: now,
            refilling: false,
            paused_until: None,
            gate: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    fn available(&self) -> i64 {
        self.granted.saturating_sub(self.reserved)
    }
}

fn new_id() -> Arc<str> {
    uuid::Uuid::new_v4().simple().to_string().into()
}

/// What taking a hold from the book came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Take {
    /// Held against this lease; `refill` asks the caller to start a background refill.
    Held { lease: Arc<str>, refill: bool },
    /// The lease cannot cover it: ask for a slice (`paused`: not now, hold per request).
    Short { paused: bool },
}

/// Unused lease to give back to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unused {
    pub key_hash: String,
    pub lease: Arc<str>,
    pub amount: i64,
    /// Nothing is held against it any more: the row can go once empty, and is forgotten here.
    pub close: bool,
}

/// The leases of this process, by key: pure bookkeeping, no I/O.
#[derive(Debug, Default)]
pub struct Book {
    keys: HashMap<String, KeyLease>,
}

impl Book {
    /// Holds `amount` against the key's lease, if it covers it.
    pub fn take(&mut self, key_hash: &str, account_id: &str, amount: i64, now: Instant) -> Take {
        let lease = self
            .keys
            .entry(key_hash.to_owned())
            .or_insert_with(|| KeyLease::new(account_id, now));
        lease.used_at = now;
        if lease.available() < amount {
            let paused = lease.paused_until.is_some_and(|t| now < t);
            return Take::Short { paused };
        }
        lease.reserved = lease.reserved.saturating_add(amount);
        lease.used = lease.used.saturating_add(amount);
        let refill = !lease.refilling && lease.available() < lease.size / 2;
        if refill {
            lease.refilling = true;
        }
        Take::Held {
            lease: lease.id.clone(),
            refill,
        }
    }

    /// What to ask the store for on the key's behalf: the lease id, the slice wanted and the
    /// least slice worth having, for a request holding `amount`.
    pub fn want(
        &mut self,
        key_hash: &str,
        amount: i64,
        now: Instant,
    ) -> Option<(Arc<str>, i64, i64)> {
        let lease = self.keys.get_mut(key_hash)?;
        let size = if lease.size == 0 {
            amount.saturating_mul(FIRST_REQUESTS)
        } else {
            next_size(
                lease.size,
                lease.used,
                now.duration_since(lease.since),
                amount,
            )
        };
        lease.size = size;
        lease.since = now;
        lease.used = 0;
        let min = amount.saturating_mul(MIN_REQUESTS).max(1);
        Some((lease.id.clone(), size.max(min), min))
    }

    /// A slice was granted: `lease_amount` is the store row's amount after it, which bounds
    /// what may be held here (it is less than expected only if the row had been reclaimed).
    /// False when the lease was given back meanwhile (the key changed): the slice must go back
    /// too.
    pub fn granted(&mut self, key_hash: &str, lease: &str, slice: i64, lease_amount: i64) -> bool {
        match self.keys.get_mut(key_hash).filter(|l| &*l.id == lease) {
            Some(l) => {
                l.granted = l.granted.saturating_add(slice).min(lease_amount);
                l.paused_until = None;
                true
            }
            None => false,
        }
    }

    /// A grant was refused: hold per request for a while.
    pub fn refused(&mut self, key_hash: &str, now: Instant) {
        if let Some(l) = self.keys.get_mut(key_hash) {
            l.paused_until = Some(now + REFUSED_PAUSE);
        }
    }

    /// A background refill ended.
    pub fn refilled(&mut self, key_hash: &str) {
        if let Some(l) = self.keys.get_mut(key_hash) {
            l.refilling = false;
        }
    }

    /// A hold against `lease` settled at `cost` (at most `held`): the cost leaves the lease
    /// (the settlement consumes it from the row), the rest is free again.
    pub fn settle(&mut self, key_hash: &str, lease: &str, held: i64, cost: i64) {
        if let Some(l) = self.keys.get_mut(key_hash).filter(|l| &*l.id == lease) {
            l.reserved = l.reserved.saturating_sub(held).max(0);
            l.granted = l
                .granted
                .saturating_sub(cost.clamp(0, held))
                .max(l.reserved);
        }
    }

    /// A hold against `lease` ended without a charge.
    pub fn release(&mut self, key_hash: &str, lease: &str, held: i64) {
        if let Some(l) = self.keys.get_mut(key_hash).filter(|l| &*l.id == lease) {
            l.reserved = l.reserved.saturating_sub(held).max(0);
        }
    }

    /// Takes the key's unused lease out of the book, to be given back; the lease is forgotten
    /// (its next grant makes a new one) when nothing is held against it any more.
    pub fn unused(&mut self, key_hash: &str) -> Option<Unused> {
        let l = self.keys.get_mut(key_hash)?;
        let amount = l.available();
        let close = l.reserved == 0;
        l.granted = l.reserved;
        let lease = l.id.clone();
        if close {
            let l = self.keys.remove(key_hash)?;
            if l.size == 0 && amount == 0 {
                // Never granted: no row to close.
                return None;
            }
        }
        Some(Unused {
            key_hash: key_hash.to_owned(),
            lease,
            amount,
            close,
        })
    }

    /// The unused leases of keys not used for [`IDLE`] (all with `everything`).
    pub fn idle(&mut self, now: Instant, everything: bool) -> Vec<Unused> {
        let keys: Vec<String> = self
            .keys
            .iter()
            .filter(|(_, l)| everything || now.duration_since(l.used_at) >= IDLE)
            .filter(|(_, l)| !l.refilling)
            .map(|(k, _)| k.clone())
            .collect();
        keys.iter().filter_map(|k| self.unused(k)).collect()
    }

    /// The key's lease: its account and what may be held against it (tests, metrics).
    pub fn available(&self, key_hash: &str) -> Option<i64> {
        self.keys.get(key_hash).map(KeyLease::available)
    }

    fn gate(&self, key_hash: &str) -> Option<Arc<tokio::sync::Mutex<()>>> {
        self.keys.get(key_hash).map(|l| l.gate.clone())
    }

    fn account(&self, key_hash: &str) -> Option<String> {
        self.keys.get(key_hash).map(|l| l.account_id.clone())
    }
}

/// The lease book of a ledger.
#[derive(Debug, Default)]
pub struct Leases {
    book: Mutex<Book>,
}

impl Leases {
    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        // Every operation leaves the book consistent, so a panic elsewhere cannot have left it
        // half-changed.
        self.book
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Ledger {
    fn leases(&self) -> Option<&Leases> {
        self.inner.leases.as_ref()
    }

    /// Holds `amount` for a request of `key` against the key's lease, taking or refilling a
    /// slice first if needed. `None`: no lease covers it (near exhaustion): the caller holds
    /// per request in the store.
    pub(super) async fn lease_hold(
        &self,
        key: &KeyRecord,
        amount: Money,
        now_ms: i64,
    ) -> StoreResult<Option<Arc<str>>> {
        let Some(leases) = self.leases() else {
            return Ok(None);
        };
        let amount = amount.picos();
        // Held against the lease if it covers the request (starting a refill when the book
        // asks for one: it marked the lease refilling and only that task unmarks it).
        let take = |ledger: &Ledger| -> Result<Arc<str>, bool> {
            let take = leases
                .book()
                .take(&key.hash, &key.account_id, amount, Instant::now());
            match take {
                Take::Held { lease, refill } => {
                    if refill {
                        ledger.refill_soon(&key.hash, amount, now_ms);
                    }
                    Ok(lease)
                }
                Take::Short { paused } => Err(paused),
            }
        };
        match take(self) {
            Ok(lease) => return Ok(Some(lease)),
            Err(true) => return Ok(None),
            Err(false) => {}
        }
        let Some(gate) = leases.book().gate(&key.hash) else {
            return Ok(None);
        };
        let _one_grant = gate.lock().await;
        // Another request may have refilled it while this one waited.
        if let Ok(lease) = take(self) {
            return Ok(Some(lease));
        }
        if !self
            .grant(&key.hash, &key.account_id, amount, now_ms)
            .await?
        {
            // Nearly spent: what this gateway leases but does not use goes back, so the
            // per-request hold sees it.
            let unused = leases.book().unused(&key.hash);
            self.give_back(unused).await?;
            return Ok(None);
        }
        Ok(take(self).ok())
    }

    /// Asks the store for a slice of the key's lease; false when refused.
    async fn grant(
        &self,
        key_hash: &str,
        account_id: &str,
        amount: i64,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let Some(leases) = self.leases() else {
            return Ok(false);
        };
        let Some((lease, want, min)) = leases.book().want(key_hash, amount, Instant::now()) else {
            return Ok(false);
        };
        let granted = self
            .inner
            .store
            .grant_lease(
                &lease,
                key_hash,
                account_id,
                Money::from_picos(want),
                Money::from_picos(min),
                SHARE,
                now_ms,
            )
            .await?;
        match granted {
            Ok(g) => {
                let kept = leases.book().granted(
                    key_hash,
                    &lease,
                    g.slice.picos(),
                    g.lease_amount.picos(),
                );
                if !kept {
                    self.inner.store.return_lease(&lease, g.slice, true).await?;
                }
                Ok(kept)
            }
            Err(_) => {
                leases.book().refused(key_hash, Instant::now());
                Ok(false)
            }
        }
    }

    /// Starts a background refill of the key's lease (the book marked it refilling).
    fn refill_soon(&self, key_hash: &str, amount: i64, now_ms: i64) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            if let Some(l) = self.leases() {
                l.book().refilled(key_hash);
            }
            return;
        };
        let ledger = self.clone();
        let key_hash = key_hash.to_owned();
        self.inner.tasks.spawn_on(
            async move {
                let Some(leases) = ledger.leases() else {
                    return;
                };
                let (gate, account) = {
                    let book = leases.book();
                    (book.gate(&key_hash), book.account(&key_hash))
                };
                if let (Some(gate), Some(account)) = (gate, account) {
                    let _one_grant = gate.lock().await;
                    if let Err(e) = ledger.grant(&key_hash, &account, amount, now_ms).await {
                        tracing::warn!(error = %e, "refilling a budget lease failed");
                    }
                }
                leases.book().refilled(&key_hash);
            },
            &handle,
        );
    }

    async fn give_back(&self, unused: Option<Unused>) -> StoreResult<()> {
        let Some(u) = unused else { return Ok(()) };
        if u.amount > 0 || u.close {
            self.inner
                .store
                .return_lease(&u.lease, Money::from_picos(u.amount), u.close)
                .await?;
        }
        Ok(())
    }

    /// A hold against `lease` settled at `cost`.
    pub(super) fn lease_settled(&self, key_hash: &str, lease: &str, held: Money, cost: Money) {
        if let Some(l) = self.leases() {
            l.book().settle(key_hash, lease, held.picos(), cost.picos());
        }
    }

    /// A hold against `lease` ended without a charge.
    pub(super) fn lease_released(&self, key_hash: &str, lease: &str, held: Money) {
        if let Some(l) = self.leases() {
            l.book().release(key_hash, lease, held.picos());
        }
    }

    /// Gives back the unused part of a key's lease (its limit changed, or it was disabled or
    /// deleted, here or on another gateway), in the background.
    pub fn return_lease_soon(&self, key_hash: &str) {
        let Some(unused) = self.leases().and_then(|l| l.book().unused(key_hash)) else {
            return;
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let ledger = self.clone();
        self.inner.tasks.spawn_on(
            async move {
                if let Err(e) = ledger.give_back(Some(unused)).await {
                    tracing::warn!(error = %e, "returning a budget lease failed");
                }
            },
            &handle,
        );
    }

    /// An account's credits changed on another process: in memory mode they are read again
    /// at its next request; with leases, what its keys' leases hold unused goes back (the
    /// credits may have been lowered under them).
    pub fn account_changed(&self, account_id: &str) {
        if let Some(a) = self.budgets().accounts.get_mut(account_id) {
            if let Some(stale) = Instant::now().checked_sub(super::CREDITS_TTL) {
                a.credits_read = stale;
            }
        }
        let keys: Vec<String> = self.leases().map_or_else(Vec::new, |l| {
            l.book()
                .keys
                .iter()
                .filter(|(_, lease)| lease.account_id == account_id)
                .map(|(k, _)| k.clone())
                .collect()
        });
        for key in keys {
            self.return_lease_soon(&key);
        }
    }

    /// The periodic upkeep of leases: gives back those of idle keys, renews this gateway's,
    /// and reclaims those whose gateway stopped renewing them. Returns what was reclaimed.
    pub async fn maintain_leases(&self, now_ms: i64) -> StoreResult<Money> {
        let Some(leases) = self.leases() else {
            return Ok(Money::ZERO);
        };
        let idle = leases.book().idle(Instant::now(), false);
        for u in idle {
            // One failure does not keep the others: what could not be given back stays with
            // the lease until this gateway stops (or lapses if it dies).
            if let Err(e) = self.give_back(Some(u)).await {
                tracing::warn!(error = %e, "giving back an idle budget lease failed");
            }
        }
        self.inner.store.close_empty_leases().await?;
        self.inner.store.renew_leases(now_ms).await?;
        self.inner.store.reclaim_leases(now_ms).await
    }

    /// Gives every lease back (the gateway is stopping: requests have ended and their
    /// settlements are committed), whatever the book says: a slice whose grant's answer was lost
    /// with its connection goes back too.
    pub async fn return_leases(&self) -> StoreResult<()> {
        let Some(leases) = self.leases() else {
            return Ok(());
        };
        drop(leases.book().idle(Instant::now(), true));
        self.inner.store.return_own_leases().await?;
        Ok(())
    }

    /// What may still be held against a key's lease in this process.
    pub fn lease_available(&self, key_hash: &str) -> Option<Money> {
        self.leases()
            .and_then(|l| l.book().available(key_hash))
            .map(Money::from_picos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn slices_follow_the_rate_within_bounds() {
        let s = Duration::from_secs;
        // (size, used, elapsed, amount) -> next
        let cases = [
            // Two seconds of traffic at the rate seen.
            (1000, 1000, s(2), 10, 1000),
            (1000, 1500, s(2), 10, 1500),
            // Quick use grows it, at most four times.
            (1000, 1000, Duration::from_millis(10), 10, 4000),
            // Slow use shrinks it, at most by half.
            (1000, 10, s(60), 10, 500),
            // Never under eight holds of the request.
            (100, 0, s(60), 100, 800),
            (0, 0, s(1), 0, 1),
        ];
        for (size, used, elapsed, amount, want) in cases {
            assert_eq!(
                next_size(size, used, elapsed, amount),
                want,
                "{size} {used} {elapsed:?} {amount}"
            );
        }
    }

    #[test]
    fn a_lease_covers_holds_until_spent_and_gives_back_what_is_unused() {
        let now = Instant::now();
        let mut b = Book::default();
        assert_eq!(b.take("k", "a", 10, now), Take::Short { paused: false });
        let (id, want, min) = b.want("k", 10, now).expect("entry");
        assert_eq!((want, min), (80, 20));
        assert!(b.granted("k", &id, 80, 80));
        let Take::Held { lease, refill } = b.take("k", "a", 30, now) else {
            panic!("held")
        };
        assert_eq!((&*lease, refill), (&*id, false));
        // Below half of the slice: refill, once.
        assert!(matches!(
            b.take("k", "a", 30, now),
            Take::Held { refill: true, .. }
        ));
        assert_eq!(b.take("k", "a", 30, now), Take::Short { paused: false });
        b.settle("k", &id, 30, 10);
        // 80 granted, 10 spent, 30 held.
        assert_eq!(b.available("k"), Some(40));
        let u = b.unused("k").expect("unused");
        assert_eq!((u.amount, u.close), (40, false));
        assert_eq!(b.available("k"), Some(0));
        b.settle("k", &id, 30, 30);
        let u = b.unused("k").expect("closed");
        assert_eq!((u.amount, u.close), (0, true));
        assert_eq!(b.available("k"), None);
        b.refused("x", now);
        b.take("x", "a", 1, now);
        b.refused("x", now);
        assert_eq!(b.take("x", "a", 1, now), Take::Short { paused: true });
    }

    /// One gateway's view in the interleaving test: its book and its open holds.
    #[derive(Default)]
    struct Replica {
        book: Book,
        open: Vec<(Arc<str>, i64)>,
        /// Settled here, not yet committed: (lease, cost).
        pending: Vec<(Arc<str>, i64)>,
    }

    /// The store's rows, as the store's statements change them.
    #[derive(Default)]
    struct Rows {
        spend: i64,
        held: i64,
        leases: HashMap<Arc<str>, i64>,
    }

    #[derive(Debug, Clone)]
    enum Op {
        Hold(usize, i64),
        Settle(usize, usize, i64),
        Release(usize, usize),
        Commit(usize),
        Return(usize),
        Reclaim(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0usize..3, 1i64..50).prop_map(|(r, a)| Op::Hold(r, a)),
            2 => (0usize..3, 0usize..8, 0i64..=100).prop_map(|(r, i, p)| Op::Settle(r, i, p)),
            1 => (0usize..3, 0usize..8).prop_map(|(r, i)| Op::Release(r, i)),
            2 => (0usize..3).prop_map(Op::Commit),
            1 => (0usize..3).prop_map(Op::Return),
            1 => (0usize..3).prop_map(Op::Reclaim),
        ]
    }

    proptest! {
        /// Three gateways over one store's rows, every interleaving of holds, grants, settlements,
        /// commits, returns and reclaims: spend plus held never exceeds the limit, and what a
        /// book lets its requests hold never exceeds what the store's lease row has left.
        #[test]
        fn replicas_never_overspend(limit in 1i64..2000, ops in prop::collection::vec(op(), 1..120)) {
            let now = Instant::now();
            let mut rows = Rows::default();
            let mut replicas: Vec<Replica> = (0..3).map(|_| Replica::default()).collect();
            for op in ops {
                match op {
                    Op::Hold(r, amount) => {
                        let rep = &mut replicas[r];
                        match rep.book.take("k", "a", amount, now) {
                            Take::Held { lease, .. } => rep.open.push((lease, amount)),
                            Take::Short { .. } => {
                                // A grant, as Store::grant_lease makes it.
                                let (id, want, min) = rep.book.want("k", amount, now).expect("entry");
                                let left = limit - rows.spend - rows.held;
                                let slice = want.min(left / SHARE);
                                if slice >= min && slice > 0 {
                                    rows.held += slice;
                                    let row = rows.leases.entry(id.clone()).or_default();
                                    *row += slice;
                                    if !rep.book.granted("k", &id, slice, *row) {
                                        *row -= slice;
                                        rows.held -= slice;
                                    }
                                    if let Take::Held { lease, .. } = rep.book.take("k", "a", amount, now) {
                                        rep.open.push((lease, amount));
                                    }
                                } else if let Some(u) = rep.book.unused("k") {
                                    let row = rows.leases.entry(u.lease.clone()).or_default();
                                    let give = u.amount.min(*row);
                                    *row -= give;
                                    rows.held -= give;
                                }
                            }
                        }
                    }
                    Op::Settle(r, i, pct) if !replicas[r].open.is_empty() => {
                        let rep = &mut replicas[r];
                        let n = rep.open.len();
                        let (lease, held) = rep.open.remove(i % n);
                        let cost = held * pct / 100;
                        rep.book.settle("k", &lease, held, cost);
                        rep.pending.push((lease, cost));
                    }
                    Op::Release(r, i) if !replicas[r].open.is_empty() => {
                        let rep = &mut replicas[r];
                        let n = rep.open.len();
                        let (lease, held) = rep.open.remove(i % n);
                        rep.book.release("k", &lease, held);
                    }
                    Op::Commit(r) => {
                        // The recorder's batch: the charge, and the lease consumed if it has it.
                        for (lease, cost) in replicas[r].pending.drain(..) {
                            rows.spend += cost;
                            if let Some(row) = rows.leases.get_mut(&lease).filter(|row| **row >= cost) {
                                *row -= cost;
                                rows.held -= cost;
                            }
                        }
                    }
                    Op::Return(r) => {
                        for u in replicas[r].book.idle(now, true) {
                            if let Some(row) = rows.leases.get_mut(&u.lease) {
                                let give = u.amount.min(*row);
                                *row -= give;
                                rows.held -= give;
                            }
                        }
                    }
                    Op::Reclaim(r) => {
                        // Another gateway reclaims this one's leases only once it stopped: it
                        // then holds and settles nothing more.
                        let rep = &mut replicas[r];
                        if rep.open.is_empty() && rep.pending.is_empty() {
                            for u in rep.book.idle(now, true) {
                                if let Some(row) = rows.leases.remove(&u.lease) {
                                    rows.held -= row;
                                }
                            }
                        }
                    }
                    _ => {}
                }
                prop_assert!(rows.spend + rows.held <= limit, "spend {} held {}", rows.spend, rows.held);
                prop_assert!(rows.held >= 0);
                for rep in &replicas {
                    if let Some(l) = rep.book.keys.get("k") {
                        // What the book lets its requests hold, plus settled costs on their way
                        // to the row, is what the store's row keeps for this gateway.
                        let pending: i64 = rep.pending.iter()
                            .filter(|(lease, _)| *lease == l.id)
                            .map(|(_, c)| c)
                            .sum();
                        let row = rows.leases.get(&l.id).copied().unwrap_or(0);
                        prop_assert!(l.granted + pending <= row, "granted {} pending {} row {}", l.granted, pending, row);
                        prop_assert!(l.reserved <= l.granted);
                    }
                }
            }
        }
    }
}
