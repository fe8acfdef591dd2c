//! Shared state of a running gateway, and authentication.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A health snapshot with when it was taken (wall time, gateway clock).
type TimedSnapshot = (Option<(Instant, i64)>, Arc<HealthSnapshot>);

/// Age after which the routing health snapshot is recomputed.
const SNAPSHOT_TTL: Duration = Duration::from_millis(250);

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use switchyard_core::catalog::Catalog;
use switchyard_core::keys::{hash_key, is_well_formed};
use switchyard_store::{KeyRecord, Store};
use tokio_util::task::TaskTracker;

use switchyard_core::classification::Classifications;
use switchyard_core::health::{HealthConfig, HealthTracker, StickySessions};
use switchyard_core::routing::HealthSnapshot;

use crate::config::Config;
use crate::content::ContentCipher;
use crate::error::ApiError;
use crate::guardrails::GuardrailCache;
use crate::ledger::Ledger;
use crate::recorder::Recorder;
use crate::settings::SettingsCache;

/// Where time comes from: the system clock, or a fixed instant that tests move.
#[derive(Debug, Clone)]
pub enum Clock {
    /// Wall-clock time.
    System,
    /// A settable instant (Unix ms).
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// Unix milliseconds now.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Clock::Manual(t) => t.load(Ordering::SeqCst),
        }
    }
}

/// Everything a request handler needs.
pub struct AppState {
    /// Configuration.
    pub config: Config,
    catalog: RwLock<Arc<Catalog>>,
    /// Persistence.
    pub store: Store,
    /// The upstream HTTP clients (connection pool, TCP_NODELAY), one per serving worker, so a
    /// request's upstream connection lives on its own thread.
    clients: Vec<reqwest::Client>,
    /// Provider keys by environment variable name. Never logged.
    pub secrets: HashMap<String, String>,
    /// Background work (settlement) that shutdown waits for.
    pub tasks: TaskTracker,
    /// Time source.
    pub clock: Clock,
    /// Batched writer of settlements and audit records.
    pub recorder: Recorder,
    /// Key signing the audit chain's anchors, when configured.
    pub audit_key: Option<Vec<u8>>,
    /// Cipher for logged prompts, when a content key is configured.
    pub content_cipher: Option<ContentCipher>,
    /// Account settings, cached briefly.
    pub settings: SettingsCache,
    /// Guardrails by key, compiled and cached briefly.
    pub guardrails: GuardrailCache,
    /// Key records for inference, cached briefly (no database read per request).
    pub keys: KeyCache,
    /// Credit holds (in memory or in the store, by `store.holds`).
    pub ledger: Ledger,
    /// Data classifications: the built-ins and the operator's.
    pub classifications: Classifications,
    /// Per-endpoint outcomes, circuit breakers and performance.
    pub health: HealthTracker,
    /// Session id to the provider that served it (sticky routing).
    pub sessions: StickySessions,
    /// The last health snapshot and when it was taken.
    health_snapshot: RwLock<TimedSnapshot>,
    /// Upstream URLs already parsed (a provider's handful of endpoints, parsed once).
    upstream_urls: RwLock<HashMap<String, reqwest::Url>>,
}

/// More distinct upstream URLs than this (a catalogue of thousands of models on a provider
/// that puts the model in the path) and the parsed-URL cache starts over.
const UPSTREAM_URLS_MAX: usize = 4096;

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

/// Shared handle to the state.
pub type SharedState = Arc<AppState>;

impl AppState {
    /// Builds the state. `secrets` maps the catalogue's `api_key_env` names to provider keys.
    pub fn new(
        config: Config,
        catalog: Catalog,
        store: Store,
        secrets: HashMap<String, String>,
        clock: Clock,
    ) -> Result<AppState, reqwest::Error> {
        let audit_key = secrets
            .get(&config.audit.key_env)
            .filter(|k| !k.is_empty())
            .map(|k| k.as_bytes().to_vec());
        let store = store.with_hold_lease(config.store.hold_lease());
        let store_for_recorder = store.clone();
        let classifications = Classifications::with(config.data_classifications.clone());
        let content_cipher = secrets
            .get(&config.prompt_logging.key_env)
            .filter(|k| !k.is_empty())
            .map(|k| ContentCipher::new(k));
        let clients = (0..crate::workers::count(config.server.workers))
            .map(|_| {
                reqwest::Client::builder()
                    .tcp_nodelay(true)
                    // A provider's redirect is an answer to report, not to follow with the prompt.
                    .redirect(reqwest::redirect::Policy::none())
                    .pool_idle_timeout(std::time::Duration::from_secs(90))
                    .connect_timeout(std::time::Duration::from_secs(10))
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ledger = Ledger::new(config.store.hold_mode());
        Ok(AppState {
            config,
            catalog: RwLock::new(Arc::new(catalog)),
            store,
            clients,
            secrets,
            tasks: TaskTracker::new(),
            recorder: Recorder::spawn(store_for_recorder, audit_key.clone(), clock.clone()),
            audit_key,
            content_cipher,
            settings: SettingsCache::default(),
            guardrails: GuardrailCache::default(),
            keys: KeyCache::default(),
            ledger,
            classifications,
            health: HealthTracker::new(HealthConfig::default()),
            sessions: StickySessions::default(),
            health_snapshot: RwLock::new((None, Arc::new(HealthSnapshot::default()))),
            upstream_urls: RwLock::new(HashMap::new()),
            clock,
        })
    }

    /// The serving workers' count.
    pub fn workers(&self) -> usize {
        self.clients.len()
    }

    /// The calling worker's upstream HTTP client.
    pub fn http(&self) -> &reqwest::Client {
        let clients = &self.clients;
        &clients[crate::workers::worker_index() % clients.len()]
    }

    /// An upstream URL, parsed once and then cloned from the cache; `None` when it does not
    /// parse (the HTTP client then reports it like any unreachable address).
    pub fn upstream_url(&self, url: &str) -> Option<reqwest::Url> {
        if let Some(parsed) = self.upstream_urls.read().ok()?.get(url) {
            return Some(parsed.clone());
        }
        let parsed = reqwest::Url::parse(url).ok()?;
        if let Ok(mut cache) = self.upstream_urls.write() {
            if cache.len() >= UPSTREAM_URLS_MAX {
                cache.clear();
            }
            cache.insert(url.to_owned(), parsed.clone());
        }
        Some(parsed)
    }

    /// The health snapshot routing uses: recomputed at most every 250 ms (percentiles sort
    /// samples), and at once after a failure was recorded.
    pub fn health_snapshot(&self) -> Arc<HealthSnapshot> {
        if let Ok(guard) = self.health_snapshot.read() {
            let now = self.now_ms();
            // Fresh in wall time and in the gateway's clock (which tests move by hand).
            if guard.0.is_some_and(|(at, ms)| {
                at.elapsed() < SNAPSHOT_TTL
                    && (now - ms).unsigned_abs() < SNAPSHOT_TTL.as_millis() as u64
            }) {
                return Arc::clone(&guard.1);
            }
        }
        let now = self.now_ms();
        let fresh = Arc::new(self.health.snapshot(now));
        if let Ok(mut guard) = self.health_snapshot.write() {
            *guard = (Some((Instant::now(), now)), Arc::clone(&fresh));
        }
        fresh
    }

    /// Records a failed attempt and makes the next request see it.
    pub fn record_failure(&self, model: &str, tag: &str) {
        self.health.record_failure(model, tag, self.now_ms());
        if let Ok(mut guard) = self.health_snapshot.write() {
            guard.0 = None;
        }
    }

    /// The current catalogue snapshot.
    pub fn catalog(&self) -> Arc<Catalog> {
        match self.catalog.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Replaces the catalogue snapshot.
    pub fn set_catalog(&self, catalog: Catalog) {
        let mut guard = match self.catalog.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::new(catalog);
    }

    /// Unix milliseconds now.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}

/// A request authenticated by an API key.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The key's record as of this request.
    pub key: KeyRecord,
}

fn presented_key(parts: &Parts) -> Option<&str> {
    if let Some(value) = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
    {
        let value = value.trim();
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .unwrap_or(value);
        return Some(token.trim());
    }
    parts
        .headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Key records by hash, reused for up to a second on the inference path. A key disabled,
/// deleted or changed through this process's API is forgotten at once; a change made by another
/// process (the CLI) applies within the second. Spend does not depend on it: holds are taken
/// against the ledger, which loads spend from the store itself.
#[derive(Debug, Default)]
pub struct KeyCache {
    entries: RwLock<HashMap<String, (Instant, KeyRecord)>>,
}

/// How long a cached key record is used.
const KEY_TTL: Duration = Duration::from_secs(1);

impl KeyCache {
    fn get(&self, hash: &str) -> Option<KeyRecord> {
        let map = self.entries.read().ok()?;
        let (at, record) = map.get(hash)?;
        (at.elapsed() < KEY_TTL).then(|| record.clone())
    }

    fn put(&self, record: &KeyRecord) {
        if let Ok(mut map) = self.entries.write() {
            if map.len() > 100_000 {
                map.retain(|_, (at, _)| at.elapsed() < KEY_TTL);
            }
            map.insert(record.hash.clone(), (Instant::now(), record.clone()));
        }
    }

    /// Forgets a key (after it changed).
    pub fn invalidate(&self, hash: &str) {
        if let Ok(mut map) = self.entries.write() {
            map.remove(hash);
        }
    }
}

/// An inference request authenticated through the key cache.
#[derive(Debug, Clone)]
pub struct InferenceAuth(pub Authenticated);

impl FromRequestParts<SharedState> for InferenceAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        authenticate(parts, state, true).await.map(InferenceAuth)
    }
}

impl FromRequestParts<SharedState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        authenticate(parts, state, false).await
    }
}

async fn authenticate(
    parts: &Parts,
    state: &SharedState,
    cached: bool,
) -> Result<Authenticated, ApiError> {
    let Some(key) = presented_key(parts) else {
        return Err(ApiError::unauthorized(
            "No auth credentials found: send your key as `Authorization: Bearer sk-or-v1-...`",
        ));
    };
    if !is_well_formed(key) {
        return Err(ApiError::unauthorized(
            "Invalid API key: keys look like sk-or-v1- followed by 64 hex characters",
        ));
    }
    let now = state.now_ms();
    let hash = hash_key(key);
    let record = match cached.then(|| state.keys.get(&hash)).flatten() {
        Some(record) => record,
        None => {
            let record = state
                .store
                .key(&hash, now)
                .await?
                .ok_or_else(|| ApiError::unauthorized("Invalid API key: no such key"))?;
            if cached {
                state.keys.put(&record);
            }
            record
        }
    };
    if record.disabled {
        return Err(ApiError::unauthorized("This API key is disabled"));
    }
    if record.is_expired(now) {
        return Err(ApiError::unauthorized("This API key has expired"));
    }
    Ok(Authenticated { key: record })
}

impl Authenticated {
    /// Refuses management keys (inference needs a standard key).
    pub fn require_standard(&self) -> Result<(), ApiError> {
        if self.key.is_management {
            Err(ApiError::forbidden(
                "Management keys cannot be used for inference: use a standard API key",
            ))
        } else {
            Ok(())
        }
    }

    /// Refuses standard keys (the management API needs a management key).
    pub fn require_management(&self) -> Result<(), ApiError> {
        if self.key.is_management {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "Only management keys can use this endpoint",
            ))
        }
    }
}
