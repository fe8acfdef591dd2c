//! The one kind of cache the request path uses: a bounded map from a string key to a value that
//! lives for a fixed time, loaded once per key however many requests ask for it at the same time.
//!
//! Key records, account settings and compiled guardrails are each one [`TtlCache`]. A hit clones
//! the value (an `Arc` or a record) and allocates nothing else; a miss runs the loader once, and
//! concurrent misses for the same key wait for that one load.

use std::sync::Arc;
use std::time::Duration;

use switchyard_store::{StoreError, StoreResult};

/// A bounded time-to-live cache over [`moka::future::Cache`].
pub struct TtlCache<V: Clone + Send + Sync + 'static> {
    inner: moka::future::Cache<String, V>,
}

impl<V: Clone + Send + Sync + 'static> std::fmt::Debug for TtlCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TtlCache")
            .field("entries", &self.inner.entry_count())
            .finish_non_exhaustive()
    }
}

impl<V: Clone + Send + Sync + 'static> TtlCache<V> {
    /// A cache holding at most `capacity` entries, each for `ttl` after it was loaded.
    pub fn new(capacity: u64, ttl: Duration) -> TtlCache<V> {
        TtlCache {
            inner: moka::future::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
        }
    }

    /// The cached value, without loading it.
    pub async fn get(&self, key: &str) -> Option<V> {
        self.inner.get(key).await
    }

    /// The cached value, or the result of `load` (stored when it succeeds). Concurrent callers
    /// for the same key share one load; a failure is returned to each of them and not stored.
    pub async fn get_or_load<F>(&self, key: &str, load: F) -> StoreResult<V>
    where
        F: std::future::Future<Output = StoreResult<V>>,
    {
        self.try_get_or_load(key, load).await.map_err(shared_error)
    }

    /// Like [`TtlCache::get_or_load`] with any error type, shared between the waiting callers.
    pub async fn try_get_or_load<E, F>(&self, key: &str, load: F) -> Result<V, Arc<E>>
    where
        E: Send + Sync + 'static,
        F: std::future::Future<Output = Result<V, E>>,
    {
        self.inner.try_get_with_by_ref(key, load).await
    }

    /// Stores a value loaded elsewhere.
    pub async fn insert(&self, key: &str, value: V) {
        self.inner.insert(key.to_owned(), value).await;
    }

    /// Forgets one key (after it changed).
    pub async fn invalidate(&self, key: &str) {
        self.inner.invalidate(key).await;
    }

    /// Forgets every key (after a change that may concern any of them).
    pub fn clear(&self) {
        self.inner.invalidate_all();
    }
}

/// The loader's error: owned again when this caller is its only holder, else shared.
fn shared_error(error: Arc<StoreError>) -> StoreError {
    Arc::try_unwrap(error).unwrap_or_else(StoreError::Shared)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn loads_once_then_serves_until_invalidated() {
        let cache: TtlCache<Arc<String>> = TtlCache::new(10, Duration::from_secs(60));
        let loads = AtomicUsize::new(0);
        let load = || async {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok(Arc::new("value".to_owned()))
        };
        let (a, b) = tokio::join!(
            cache.get_or_load("k", load()),
            cache.get_or_load("k", load())
        );
        assert_eq!(a.ok(), b.ok());
        assert_eq!(
            loads.load(Ordering::SeqCst),
            1,
            "concurrent misses share one load"
        );
        assert!(cache.get("k").await.is_some());
        cache.invalidate("k").await;
        assert!(cache.get("k").await.is_none());
        cache.get_or_load("k", load()).await.ok();
        cache.clear();
        assert!(cache.get("k").await.is_none());
        assert_eq!(loads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_load_is_not_stored() {
        let cache: TtlCache<u32> = TtlCache::new(10, Duration::from_secs(60));
        let failed = cache
            .get_or_load("k", async { Err(StoreError::Corrupt("broken".into())) })
            .await;
        // The error is shared with whoever waited on the same load.
        let failed = failed.expect_err("failed");
        assert!(failed.to_string().contains("broken"), "{failed:?}");
        assert_eq!(cache.get_or_load("k", async { Ok(7) }).await.ok(), Some(7));
    }

    #[tokio::test]
    async fn entries_expire() {
        let cache: TtlCache<u32> = TtlCache::new(10, Duration::from_millis(20));
        cache.insert("k", 1).await;
        assert_eq!(cache.get("k").await, Some(1));
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(cache.get("k").await, None);
    }
}
