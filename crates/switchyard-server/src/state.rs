//! Shared state of a running gateway, and authentication.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

/// A health snapshot with when it was taken (wall time, gateway clock).
type TimedSnapshot = (Option<(Instant, i64)>, Arc<HealthSnapshot>);

/// Age after which the routing health snapshot is recomputed.
const SNAPSHOT_TTL: Duration = Duration::from_millis(250);

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use hyper::Uri;
use switchyard_core::catalog::Catalog;
use switchyard_core::keys::{hash_key, is_well_formed};
use switchyard_store::{KeyRecord, Store};
use tokio_util::task::TaskTracker;

use switchyard_core::classification::Classifications;
use switchyard_core::health::{HealthConfig, HealthTracker, StickySessions};
use switchyard_core::routing::HealthSnapshot;

use crate::cache::TtlCache;
pub use crate::clock::Clock;
use crate::config::Config;
use crate::content::ContentCipher;
use crate::error::ApiError;
use crate::guardrails::GuardrailCache;
use crate::ledger::Ledger;
use crate::recorder::Recorder;
use crate::settings::SettingsCache;
use crate::upstream::{ClientError, UpstreamClient};

/// Everything a request handler needs.
pub struct AppState {
    /// Configuration.
    pub config: Config,
    catalog: RwLock<Arc<Catalog>>,
    /// Persistence.
    pub store: Store,
    /// The general HTTP clients (connection pool, TCP_NODELAY), one per serving worker, so a
    /// request's upstream connection lives on its own thread: for what is not an inference
    /// attempt (token counting).
    clients: Vec<reqwest::Client>,
    /// The inference attempts' clients, one per serving worker (`crate::upstream`).
    upstreams: Vec<UpstreamClient>,
    /// Provider keys (and the audit and content keys) by environment variable name. Never
    /// printed: read them with [`Secrets::expose`].
    pub secrets: Secrets,
    /// Background work (settlement) that shutdown waits for.
    pub tasks: TaskTracker,
    /// Time source.
    pub clock: Clock,
    /// Batched writer of settlements and audit records.
    pub recorder: Recorder,
    /// Refusals before a key is known, counted per source and minute.
    pub auth_failures: crate::auth_failures::AuthFailures,
    /// Key signing the audit chain's anchors, when configured.
    pub audit_key: Option<Vec<u8>>,
    /// Cipher for logged prompts, when a content key is configured.
    pub content_cipher: Option<ContentCipher>,
    /// Seals the reasoning Responses clients hand back (keyed like logged content, else by the
    /// audit key, else by a key of this process).
    pub sealer: Arc<crate::content::ReasoningSealer>,
    /// Account settings, cached briefly.
    pub settings: SettingsCache,
    /// Guardrails by key, compiled and cached briefly.
    pub guardrails: GuardrailCache,
    /// Presets by account and slug, cached briefly.
    pub presets: crate::presets::PresetCache,
    /// Key records for inference, cached briefly (no database read per request).
    pub keys: KeyCache,
    /// Credit holds (in memory or in the store, by `store.holds`).
    pub ledger: Ledger,
    /// End-user records, cached briefly, and the rate limits' windows.
    pub end_users: crate::end_users::EndUsers,
    /// Data classifications: the built-ins and the operator's.
    pub classifications: Classifications,
    /// Per-endpoint outcomes, circuit breakers and performance.
    pub health: HealthTracker,
    /// Session id to the provider that served it (sticky routing).
    pub sessions: StickySessions,
    /// The last health snapshot and when it was taken.
    health_snapshot: RwLock<TimedSnapshot>,
    /// Upstream URLs already parsed (a provider's handful of endpoints, parsed once).
    upstream_urls: RwLock<HashMap<String, Uri>>,
    /// Where `[server] metrics_address` was bound, once serving.
    metrics_bound: OnceLock<SocketAddr>,
    /// OpenTelemetry traces, when `[telemetry] enabled`.
    pub telemetry: Option<crate::telemetry::Telemetry>,
}

/// Why the state could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// An upstream HTTP client could not be made.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// reqwest's client could not be built.
    #[error("building the upstream HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// The trace exporter could not start.
    #[error(transparent)]
    Telemetry(#[from] crate::telemetry::TelemetryError),
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
    ) -> Result<AppState, StateError> {
        let secrets = Secrets::from(secrets);
        let audit_key = secrets
            .expose(&config.audit.key_env)
            .filter(|k| !k.is_empty())
            .map(|k| k.as_bytes().to_vec());
        let store = store.with_hold_lease(config.store.hold_lease());
        let store_for_recorder = store.clone();
        let (durability, record_timeout) = (config.store.durability, config.store.record_timeout());
        let classifications = Classifications::with(config.data_classifications.clone());
        let sealer = Arc::new(crate::content::ReasoningSealer::new(
            secrets
                .expose(&config.prompt_logging.key_env)
                .or_else(|| secrets.expose(&config.audit.key_env))
                .filter(|k| !k.is_empty()),
        ));
        let content_cipher = secrets
            .expose(&config.prompt_logging.key_env)
            .filter(|k| !k.is_empty())
            .map(ContentCipher::new);
        let roots = match &config.server.upstream_ca_file {
            Some(path) => crate::upstream::read_roots(path)?,
            None => Vec::new(),
        };
        let workers = crate::workers::count(config.server.workers);
        let clients = (0..workers)
            .map(|_| {
                let mut builder = reqwest::Client::builder()
                    .tcp_nodelay(true)
                    // A provider's redirect is an answer to report, not to follow with the prompt.
                    .redirect(reqwest::redirect::Policy::none())
                    .pool_idle_timeout(crate::upstream::POOL_IDLE_TIMEOUT)
                    .connect_timeout(crate::upstream::CONNECT_TIMEOUT);
                for cert in &roots {
                    builder = builder
                        .add_root_certificate(reqwest::Certificate::from_der(cert.as_ref())?);
                }
                builder.build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Behind a proxy named by the environment, attempts go through reqwest, which honours it.
        let proxied = crate::upstream::proxy_in_env(|name| std::env::var(name).ok());
        if proxied {
            tracing::info!("a proxy is set in the environment: provider requests go through it");
        }
        let upstreams = clients
            .iter()
            .map(|client| {
                if proxied {
                    Ok(UpstreamClient::Proxied(client.clone()))
                } else {
                    UpstreamClient::direct(&roots)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let telemetry = crate::telemetry::Telemetry::start(&config.telemetry)?;
        let tasks = TaskTracker::new();
        let ledger = Ledger::with_leases(
            config.store.hold_mode(),
            store.clone(),
            tasks.clone(),
            config.store.leases,
        );
        Ok(AppState {
            config,
            catalog: RwLock::new(Arc::new(catalog)),
            store,
            clients,
            upstreams,
            secrets,
            tasks,
            recorder: Recorder::spawn(
                store_for_recorder,
                audit_key.clone(),
                clock.clone(),
                durability,
                record_timeout,
            ),
            auth_failures: crate::auth_failures::AuthFailures::default(),
            audit_key,
            content_cipher,
            sealer,
            settings: SettingsCache::default(),
            guardrails: GuardrailCache::default(),
            presets: crate::presets::PresetCache::default(),
            keys: KeyCache::default(),
            ledger,
            end_users: crate::end_users::EndUsers::default(),
            classifications,
            health: HealthTracker::new(HealthConfig::default()),
            sessions: StickySessions::default(),
            health_snapshot: RwLock::new((None, Arc::new(HealthSnapshot::default()))),
            upstream_urls: RwLock::new(HashMap::new()),
            metrics_bound: OnceLock::new(),
            telemetry,
            clock,
        })
    }

    /// The address `/metrics` is served on without authentication, once bound (`None` when
    /// `[server] metrics_address` is not set).
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics_bound.get().copied()
    }

    /// Records where the metrics listener was bound.
    pub(crate) fn set_metrics_address(&self, address: SocketAddr) {
        let _ = self.metrics_bound.set(address);
    }

    /// The serving workers' count.
    pub fn workers(&self) -> usize {
        self.clients.len()
    }

    /// The calling worker's general HTTP client (reqwest), for what is not an inference
    /// attempt.
    pub fn http(&self) -> &reqwest::Client {
        let clients = &self.clients;
        &clients[crate::workers::worker_index() % clients.len()]
    }

    /// The calling worker's client for inference attempts.
    pub fn upstream(&self) -> &UpstreamClient {
        let upstreams = &self.upstreams;
        &upstreams[crate::workers::worker_index() % upstreams.len()]
    }

    /// An upstream URL, parsed once and then cloned from the cache; `None` when it does not
    /// parse (the attempt then fails like one to an unreachable address). It is read as a
    /// WHATWG URL first (as reqwest read it: international names, spaces escaped), then as
    /// hyper's `Uri`.
    pub fn upstream_url(&self, url: &str) -> Option<Uri> {
        if let Some(parsed) = self.upstream_urls.read().ok()?.get(url) {
            return Some(parsed.clone());
        }
        let parsed: Uri = reqwest::Url::parse(url).ok()?.as_str().parse().ok()?;
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

/// A secret read from the environment (a provider key, the audit or content key). Its `Debug`
/// and `Display` print `[redacted]`; [`Secret::expose`] is the one way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret's text, for the one place that sends or uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Self {
        Secret(text)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Secrets by the name of the environment variable they came from.
#[derive(Debug, Default, Clone)]
pub struct Secrets(HashMap<String, Secret>);

impl Secrets {
    /// The secret named by `env`, exposed for use.
    pub fn expose(&self, env: &str) -> Option<&str> {
        self.0.get(env).map(Secret::expose)
    }

    /// Whether a secret named `env` is set.
    pub fn contains(&self, env: &str) -> bool {
        self.0.contains_key(env)
    }

    /// Every secret's value, exposed for redaction (never for display).
    pub fn values(&self) -> Vec<&str> {
        self.0
            .values()
            .map(Secret::expose)
            .filter(|s| !s.is_empty())
            .collect()
    }
}

impl From<HashMap<String, String>> for Secrets {
    fn from(map: HashMap<String, String>) -> Self {
        Secrets(map.into_iter().map(|(k, v)| (k, Secret(v))).collect())
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
/// against the ledger, which loads spend from the store itself. An unknown key is not cached, so
/// a key created by the CLI works at once.
#[derive(Debug)]
pub struct KeyCache {
    entries: TtlCache<Arc<KeyRecord>>,
}

/// How long a cached key record is used.
const KEY_TTL: Duration = Duration::from_secs(1);

/// Most key records kept at once.
const KEY_CAPACITY: u64 = 100_000;

impl Default for KeyCache {
    fn default() -> Self {
        KeyCache {
            entries: TtlCache::new(KEY_CAPACITY, KEY_TTL),
        }
    }
}

/// Why a key record could not be loaded.
#[derive(Debug)]
enum KeyLoad {
    /// No key has this hash.
    Unknown,
    /// The store failed.
    Store(switchyard_store::StoreError),
}

impl KeyCache {
    /// The key record with this hash, loaded once for every request that asks meanwhile.
    async fn get_or_load(
        &self,
        store: &Store,
        hash: &str,
        now_ms: i64,
    ) -> Result<Arc<KeyRecord>, ApiError> {
        self.entries
            .try_get_or_load(hash, async {
                match store.key(hash, now_ms).await {
                    Ok(Some(record)) => Ok(Arc::new(record)),
                    Ok(None) => Err(KeyLoad::Unknown),
                    Err(e) => Err(KeyLoad::Store(e)),
                }
            })
            .await
            .map_err(|e| match &*e {
                KeyLoad::Unknown => ApiError::unauthorized("Invalid API key: no such key"),
                KeyLoad::Store(e) => ApiError::store_failure(e),
            })
    }

    /// Forgets a key (after it changed).
    pub async fn invalidate(&self, hash: &str) {
        self.entries.invalidate(hash).await;
    }

    /// Forgets every key (change notifications were interrupted).
    pub fn clear(&self) {
        self.entries.clear();
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
    verify_key(state, key, cached).await
}

/// Checks a presented key as every API does: its form, its record (through the key cache when
/// `cached`), not disabled, not expired. The console's sign-in calls it too.
pub async fn verify_key(
    state: &SharedState,
    key: &str,
    cached: bool,
) -> Result<Authenticated, ApiError> {
    if !is_well_formed(key) {
        return Err(ApiError::unauthorized(
            "Invalid API key: keys look like sk-or-v1- followed by 64 hex characters",
        ));
    }
    let now = state.now_ms();
    let hash = hash_key(key);
    let record = if cached {
        KeyRecord::clone(&*state.keys.get_or_load(&state.store, &hash, now).await?)
    } else {
        state
            .store
            .key(&hash, now)
            .await?
            .ok_or_else(|| ApiError::unauthorized("Invalid API key: no such key"))?
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
