//! Configuration: a TOML file (`deny_unknown_fields`) with `SWITCHYARD__SECTION__KEY` environment
//! overrides, validated all at once.

use std::collections::BTreeMap;

use std::net::SocketAddr;
use std::time::Duration;
use switchyard_core::classification::Classification;

use serde::Deserialize;

use crate::ledger::HoldMode;
use crate::recorder::Durability;

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// HTTP server.
    pub server: ServerConfig,
    /// Persistence.
    pub store: StoreConfig,
    /// Model catalogue.
    pub catalog: CatalogConfig,
    /// Audit trail.
    pub audit: AuditConfig,
    /// Prompt and completion logging (per-account opt-in).
    pub prompt_logging: PromptLoggingConfig,
    /// Data classifications beyond (or overriding) the built-in `public`, `internal`,
    /// `confidential` and `restricted`: `[data_classifications.NAME]`.
    pub data_classifications: std::collections::BTreeMap<String, Classification>,
    /// The operator console in the browser.
    pub console: ConsoleConfig,
    /// OpenTelemetry traces (off by default).
    pub telemetry: TelemetryConfig,
}

/// `[console]`: the web console, served by the gateway itself.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Serve the console (on by default; sign-in needs a management key).
    pub enabled: bool,
    /// Where it is served: `/` (the default) or a path such as `/console`.
    pub path: String,
    /// How long a sign-in lasts, in seconds (default 8 hours).
    pub session_ttl_secs: u64,
    /// Mark the session cookie `Secure` (send it over HTTPS only): set it when the gateway is
    /// reached through TLS.
    pub secure_cookie: bool,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            enabled: true,
            path: "/".to_owned(),
            session_ttl_secs: 8 * 3600,
            secure_cookie: false,
        }
    }
}

impl ConsoleConfig {
    /// The console's path with one trailing slash (`/`, `/console/`).
    pub fn base(&self) -> String {
        let trimmed = self.path.trim_end_matches('/');
        format!("{trimmed}/")
    }

    fn validate(&self, source: &str, problems: &mut Vec<String>) {
        let path = &self.path;
        let base = self.base();
        let reserved = ["/api/", "/health/", "/metrics/"];
        if !path.starts_with('/')
            || path.contains("//")
            || !path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b))
            || reserved.iter().any(|r| base.starts_with(r))
        {
            problems.push(format!(
                "{source}: console.path: {path:?} must be / or a path like /console (letters, digits, - _ . and /), outside /api, /health and /metrics"
            ));
        }
        if !(60..=30 * 86_400).contains(&self.session_ttl_secs) {
            problems.push(format!(
                "{source}: console.session_ttl_secs must be between 60 and 2592000 (30 days), got {}",
                self.session_ttl_secs
            ));
        }
    }
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Listen address.
    pub listen: String,
    /// Largest request body, in bytes.
    pub body_limit_bytes: usize,
    /// Time allowed for a provider to answer (non-streamed: the whole answer; streamed: the
    /// response headers), in seconds.
    pub upstream_timeout_secs: f64,
    /// Longest silence allowed of a streaming provider, counted from its last byte (keep-alives
    /// sent to the client meanwhile do not restart it), in seconds.
    pub stream_idle_timeout_secs: f64,
    /// Interval of `: OPENROUTER PROCESSING` comments while a stream waits, in seconds.
    pub keepalive_secs: f64,
    /// How long a shutdown waits for open requests, in seconds.
    pub shutdown_grace_secs: f64,
    /// Account that keys created by the CLI belong to.
    pub default_account: String,
    /// Serving threads, each a single-threaded runtime with its own connections (0: one per
    /// CPU).
    pub workers: usize,
    /// Address serving `/metrics` without authentication (for a scraper on a private network);
    /// when set, the main address no longer serves `/metrics`. Unset: `/metrics` is on the main
    /// address and needs a management key.
    pub metrics_address: Option<String>,
    /// Time allowed to receive a request's headers, in seconds, counted from the moment the
    /// connection waits for them (on a kept-alive connection, from the end of the previous
    /// response).
    pub header_read_timeout_secs: f64,
    /// Time allowed to receive a request's body once its headers arrived, in seconds; past it
    /// the request is answered 408 and the connection closed.
    pub body_read_timeout_secs: f64,
    /// How long a connection may stay open with no request in progress, in seconds.
    pub idle_timeout_secs: f64,
    /// Connections served at once; one more is answered 503 and closed.
    pub max_connections: usize,
    /// Origins allowed to call the API from a browser (CORS), such as
    /// `https://app.example.com`, or `*` for any; none by default (browsers are refused).
    pub cors_allowed_origins: Vec<String>,
    /// Largest upstream body read whole (a non-streamed answer, an error body), and largest
    /// single event of a stream, in bytes; past it the attempt fails with a 502.
    pub max_upstream_body_bytes: usize,
    /// A PEM file of root certificates trusted for providers' TLS besides the web PKI's (a
    /// private authority); unset: only the web PKI's.
    pub upstream_ca_file: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".to_owned(),
            body_limit_bytes: 10 * 1024 * 1024,
            upstream_timeout_secs: 120.0,
            stream_idle_timeout_secs: 120.0,
            keepalive_secs: 5.0,
            shutdown_grace_secs: 30.0,
            default_account: "default".to_owned(),
            workers: 0,
            metrics_address: None,
            header_read_timeout_secs: 30.0,
            body_read_timeout_secs: 60.0,
            idle_timeout_secs: 30.0,
            max_connections: 10_000,
            cors_allowed_origins: Vec::new(),
            max_upstream_body_bytes: 32 * 1024 * 1024,
            upstream_ca_file: None,
        }
    }
}

/// Whether `origin` is `*` or `http(s)://host[:port]` with nothing after it.
fn valid_origin(origin: &str) -> bool {
    if origin == "*" {
        return true;
    }
    let Some(rest) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    !rest.is_empty()
        && !rest.contains(['/', '?', '#', ' '])
        && axum::http::HeaderValue::from_str(origin).is_ok()
}

impl ServerConfig {
    /// Upstream timeout.
    pub fn upstream_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.upstream_timeout_secs)
    }

    /// Stream idle timeout.
    pub fn stream_idle_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.stream_idle_timeout_secs)
    }

    /// Keep-alive interval.
    pub fn keepalive(&self) -> Duration {
        Duration::from_secs_f64(self.keepalive_secs)
    }

    /// Shutdown grace.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs_f64(self.shutdown_grace_secs)
    }
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://switchyard.db` or `postgres://...`.
    pub url: String,
    /// Where credit holds are kept: `memory` (one gateway on the database; no database round
    /// trip per request) or `database` (several gateways share the database). Unset: `memory`
    /// for SQLite, `database` for PostgreSQL.
    pub holds: Option<HoldMode>,
    /// How long a database hold lasts unless its gateway renews it, in seconds. A running
    /// gateway renews its holds every third of this; a gateway that stopped (crashed) leaves
    /// holds that the others release once it has passed.
    pub hold_lease_secs: f64,
    /// With database holds, whether the gateway takes budget leases (slices of a key's limit
    /// and its account's credits, held against in memory, refilled and returned) rather than a
    /// database hold per request. Near exhaustion it holds per request either way. Leases lapse
    /// like holds (`hold_lease_secs`).
    pub leases: bool,
    /// Generation records (`/generation`) older than this many days are deleted, hourly; 0
    /// keeps them all. Spend, the activity report's daily totals and the audit chain (which
    /// has its own retention) are kept.
    pub generation_retention_days: u32,
    /// When an answer leaves relative to the commit of its generation and audit records:
    /// `before_answer` (the default: a crash never loses the record of an answer a client got)
    /// or `batched` (answers leave at once; a crash loses the records of the last few
    /// milliseconds).
    pub durability: Durability,
    /// How long an answer waits for its records' commit (`before_answer`), in seconds; past it
    /// a served answer is withheld (a 500, or a stream's error event) and a refusal is sent.
    pub record_timeout_secs: f64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: "sqlite://switchyard.db".to_owned(),
            holds: None,
            hold_lease_secs: 60.0,
            leases: true,
            generation_retention_days: 0,
            durability: Durability::BeforeAnswer,
            record_timeout_secs: 10.0,
        }
    }
}

impl StoreConfig {
    /// How long a database hold lasts unless renewed.
    pub fn hold_lease(&self) -> Duration {
        Duration::from_secs_f64(self.hold_lease_secs)
    }

    /// How long an answer waits for its records' commit.
    pub fn record_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.record_timeout_secs)
    }

    /// Where holds are kept, the default applied.
    pub fn hold_mode(&self) -> HoldMode {
        self.holds.unwrap_or(if self.url.starts_with("sqlite:") {
            HoldMode::Memory
        } else {
            HoldMode::Database
        })
    }
}

/// `[catalog]`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogConfig {
    /// Catalogue file; the bundled default catalogue when absent.
    pub path: Option<String>,
}

/// `[audit]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Environment variable holding the key that signs the chain head and prune checkpoints
    /// (HMAC-SHA-256). Without it the chain is still hash-linked, but its anchors are unsigned.
    pub key_env: String,
    /// Records older than this many days are pruned behind a signed checkpoint; 0 keeps all.
    pub retention_days: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            key_env: "SWITCHYARD_AUDIT_KEY".to_owned(),
            retention_days: 0,
        }
    }
}

/// `[prompt_logging]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromptLoggingConfig {
    /// Environment variable holding the key that encrypts logged content (AES-256-GCM). Without
    /// it nothing is logged, whatever the accounts ask.
    pub key_env: String,
    /// Logged content older than this many days is deleted; 0 keeps it.
    pub retention_days: u32,
}

impl Default for PromptLoggingConfig {
    fn default() -> Self {
        PromptLoggingConfig {
            key_env: "SWITCHYARD_CONTENT_KEY".to_owned(),
            retention_days: 30,
        }
    }
}

/// `[telemetry]`: OpenTelemetry traces over OTLP/HTTP (protobuf).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Export traces.
    pub enabled: bool,
    /// Where spans are sent: the collector's OTLP/HTTP traces URL; one given without a path
    /// gets `/v1/traces`.
    pub endpoint: String,
    /// Headers sent with every export (an authorization token, say).
    pub headers: BTreeMap<String, String>,
    /// Share of traces kept, from 0 to 1, for requests without a sampled parent; a client's
    /// `traceparent` decides for its own requests (parent-based sampling).
    pub sampling_ratio: f64,
    /// `service.name` of the spans.
    pub service_name: String,
    /// Put the prompt and the completion in the request's span, for accounts that log prompts
    /// (and only when a content key is configured). Off: no text of a request is ever exported.
    pub include_content: bool,
    /// Longest wait before queued spans are exported, in milliseconds.
    pub batch_delay_ms: u64,
    /// Spans queued at most; past it new spans are dropped (never waited for).
    pub max_queue_size: usize,
    /// Time allowed for one export, in seconds.
    pub export_timeout_secs: f64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            enabled: false,
            endpoint: "http://127.0.0.1:4318/v1/traces".to_owned(),
            headers: BTreeMap::new(),
            sampling_ratio: 1.0,
            service_name: "switchyard".to_owned(),
            include_content: false,
            batch_delay_ms: 5000,
            max_queue_size: 2048,
            export_timeout_secs: 10.0,
        }
    }
}

impl TelemetryConfig {
    fn validate(&self, source: &str, problems: &mut Vec<String>) {
        if let Err(e) = crate::telemetry::traces_url(&self.endpoint) {
            problems.push(format!("{source}: telemetry.endpoint: {e}"));
        }
        let ratio = self.sampling_ratio;
        if !(ratio.is_finite() && (0.0..=1.0).contains(&ratio)) {
            problems.push(format!(
                "{source}: telemetry.sampling_ratio must be between 0 and 1, got {ratio}"
            ));
        }
        if self.service_name.trim().is_empty() {
            problems.push(format!(
                "{source}: telemetry.service_name must not be empty"
            ));
        }
        for (name, value) in &self.headers {
            if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err()
                || axum::http::HeaderValue::from_str(value).is_err()
            {
                // The value may be a secret: only the name is shown.
                problems.push(format!(
                    "{source}: telemetry.headers: {name:?} is not a valid header name, or its value is not a valid header value"
                ));
            }
        }
        if !(1..=3_600_000).contains(&self.batch_delay_ms) {
            problems.push(format!(
                "{source}: telemetry.batch_delay_ms must be between 1 and 3600000, got {}",
                self.batch_delay_ms
            ));
        }
        if !(1..=1_000_000).contains(&self.max_queue_size) {
            problems.push(format!(
                "{source}: telemetry.max_queue_size must be between 1 and 1000000, got {}",
                self.max_queue_size
            ));
        }
        let timeout = self.export_timeout_secs;
        if !(timeout.is_finite() && timeout > 0.0 && timeout <= 600.0) {
            problems.push(format!(
                "{source}: telemetry.export_timeout_secs must be a positive number of seconds up to 600, got {timeout}"
            ));
        }
    }
}

/// Every problem of an invalid configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration:\n  {}", .0.join("\n  "))]
pub struct ConfigError(pub Vec<String>);

const ENV_PREFIX: &str = "SWITCHYARD__";

impl Config {
    /// Reads a configuration: the TOML text (if any), then the environment overrides
    /// (`SWITCHYARD__SERVER__LISTEN=0.0.0.0:8080`), then validation. `source` names the file.
    pub fn load(
        source: &str,
        text: Option<&str>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table = match text {
            Some(text) => toml::from_str(text).map_err(|e| {
                ConfigError(vec![format!("{source}: {}", e.to_string().trim_end())])
            })?,
            None => toml::Table::new(),
        };
        let mut problems = Vec::new();
        let overrides: BTreeMap<String, String> = env
            .into_iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(ENV_PREFIX)
                    .map(|k| (k.to_ascii_lowercase(), v))
            })
            .collect();
        for (key, value) in overrides {
            let Some((section, field)) = key.split_once("__") else {
                problems.push(format!(
                    "{ENV_PREFIX}{}: expected {ENV_PREFIX}SECTION__KEY",
                    key.to_ascii_uppercase()
                ));
                continue;
            };
            // The value is read as TOML when it parses (numbers, booleans), else as a string.
            let parsed = format!("v = {value}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or(toml::Value::String(value));
            let entry = table
                .entry(section.to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => {
                    t.insert(field.to_owned(), parsed);
                }
                _ => problems.push(format!("{source}: `{section}` must be a table")),
            }
        }
        let config: Config = match toml::Value::Table(table).try_into() {
            Ok(c) => c,
            Err(e) => {
                problems.push(format!("{source}: {}", e.to_string().trim_end()));
                return Err(ConfigError(problems));
            }
        };
        config.validate(source, &mut problems);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError(problems))
        }
    }

    fn validate(&self, source: &str, problems: &mut Vec<String>) {
        self.console.validate(source, problems);
        if self.server.listen.parse::<SocketAddr>().is_err() {
            problems.push(format!(
                "{source}: server.listen: {:?} is not an address like 127.0.0.1:8080",
                self.server.listen
            ));
        }
        if let Some(address) = &self.server.metrics_address {
            if address.parse::<SocketAddr>().is_err() {
                problems.push(format!(
                    "{source}: server.metrics_address: {address:?} is not an address like 127.0.0.1:9090"
                ));
            } else if *address == self.server.listen {
                problems.push(format!(
                    "{source}: server.metrics_address must differ from server.listen"
                ));
            }
        }
        if self.server.body_limit_bytes == 0 {
            problems.push(format!(
                "{source}: server.body_limit_bytes must be positive"
            ));
        }
        if self
            .server
            .upstream_ca_file
            .as_deref()
            .is_some_and(|p| p.trim().is_empty())
        {
            problems.push(format!(
                "{source}: server.upstream_ca_file must name a PEM file (or be left out)"
            ));
        }
        if self.server.max_upstream_body_bytes < 1024 {
            problems.push(format!(
                "{source}: server.max_upstream_body_bytes must be at least 1024, got {}",
                self.server.max_upstream_body_bytes
            ));
        }
        for (name, value) in [
            ("upstream_timeout_secs", self.server.upstream_timeout_secs),
            (
                "stream_idle_timeout_secs",
                self.server.stream_idle_timeout_secs,
            ),
            ("keepalive_secs", self.server.keepalive_secs),
            ("shutdown_grace_secs", self.server.shutdown_grace_secs),
            (
                "header_read_timeout_secs",
                self.server.header_read_timeout_secs,
            ),
            ("body_read_timeout_secs", self.server.body_read_timeout_secs),
            ("idle_timeout_secs", self.server.idle_timeout_secs),
        ] {
            if !(value.is_finite() && value > 0.0 && value < 86_400.0) {
                problems.push(format!(
                    "{source}: server.{name} must be a positive number of seconds below 86400, got {value}"
                ));
            }
        }
        if self.server.workers > 1024 {
            problems.push(format!(
                "{source}: server.workers must be between 0 (one per CPU) and 1024, got {}",
                self.server.workers
            ));
        }
        if !(1..=1_000_000).contains(&self.server.max_connections) {
            problems.push(format!(
                "{source}: server.max_connections must be between 1 and 1000000, got {}",
                self.server.max_connections
            ));
        }
        for origin in &self.server.cors_allowed_origins {
            if !valid_origin(origin) {
                problems.push(format!(
                    "{source}: server.cors_allowed_origins: {origin:?} is not an origin (scheme://host[:port], no path) or \"*\""
                ));
            }
        }
        if self.server.default_account.trim().is_empty() {
            problems.push(format!(
                "{source}: server.default_account must not be empty"
            ));
        }
        let lease = self.store.hold_lease_secs;
        if !(lease.is_finite() && (1.0..86_400.0).contains(&lease)) {
            problems.push(format!(
                "{source}: store.hold_lease_secs must be a number of seconds from 1 to below 86400, got {lease}"
            ));
        }
        let wait = self.store.record_timeout_secs;
        if !(wait.is_finite() && wait > 0.0 && wait <= 600.0) {
            problems.push(format!(
                "{source}: store.record_timeout_secs must be a positive number of seconds up to 600, got {wait}"
            ));
        }
        let url = &self.store.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            problems.push(format!(
                "{source}: store.url: {url:?} must start with sqlite: or postgres://"
            ));
        }
        self.telemetry.validate(source, problems);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_and_overrides() {
        let config = Config::load(
            "c.toml",
            Some("[server]\nlisten = \"0.0.0.0:9000\"\n"),
            env(&[
                ("SWITCHYARD__STORE__URL", "postgres://db/x"),
                ("SWITCHYARD__SERVER__KEEPALIVE_SECS", "2.5"),
                ("OTHER", "x"),
            ]),
        )
        .expect("valid");
        assert_eq!(config.server.listen, "0.0.0.0:9000");
        assert_eq!(config.store.url, "postgres://db/x");
        assert_eq!(config.server.keepalive_secs, 2.5);
        assert_eq!(config.catalog.path, None);
        assert_eq!(config.store.hold_mode(), HoldMode::Database);
        assert_eq!(Config::default().store.hold_mode(), HoldMode::Memory);
        let config = Config::load("c", None, env(&[("SWITCHYARD__STORE__HOLDS", "database")]))
            .expect("valid");
        assert_eq!(config.store.hold_mode(), HoldMode::Database);
        assert_eq!(Config::default().store.durability, Durability::BeforeAnswer);
        let config = Config::load(
            "c",
            Some("[store]\ndurability = \"batched\"\nrecord_timeout_secs = 2.5\n"),
            env(&[]),
        )
        .expect("valid");
        assert_eq!(config.store.durability, Durability::Batched);
        assert_eq!(config.store.record_timeout(), Duration::from_millis(2500));
        assert_eq!(
            Config::load("c", None, env(&[])).expect("valid"),
            Config::default()
        );
    }

    #[test]
    fn lists_every_problem() {
        let err = Config::load(
            "c.toml",
            Some("[server]\nlisten = \"nowhere\"\nkeepalive_secs = -1\nmetrics_address = \"metrics\"\ncors_allowed_origins = [\"https://ok.example\", \"ftp://no\", \"https://a.example/path\"]\n[store]\nurl = \"mysql://x\"\n"),
            env(&[
                ("SWITCHYARD__BAD", "1"),
                ("SWITCHYARD__SERVER__WORKERS", "5000"),
                ("SWITCHYARD__SERVER__HEADER_READ_TIMEOUT_SECS", "0"),
                ("SWITCHYARD__SERVER__BODY_READ_TIMEOUT_SECS", "-2"),
                ("SWITCHYARD__SERVER__IDLE_TIMEOUT_SECS", "nan"),
                ("SWITCHYARD__SERVER__MAX_CONNECTIONS", "0"),
                ("SWITCHYARD__STORE__HOLD_LEASE_SECS", "0.5"),
                ("SWITCHYARD__SERVER__MAX_UPSTREAM_BODY_BYTES", "10"),
                ("SWITCHYARD__STORE__RECORD_TIMEOUT_SECS", "0"),
                ("SWITCHYARD__TELEMETRY__ENDPOINT", "collector:4318"),
                ("SWITCHYARD__TELEMETRY__SAMPLING_RATIO", "1.5"),
                ("SWITCHYARD__TELEMETRY__BATCH_DELAY_MS", "0"),
            ]),
        )
        .expect_err("invalid");
        let text = err.to_string();
        for needle in [
            "server.listen",
            "server.keepalive_secs",
            "server.workers must be between 0 (one per CPU) and 1024, got 5000",
            "server.header_read_timeout_secs must be a positive number of seconds",
            "server.body_read_timeout_secs must be a positive number of seconds",
            "server.idle_timeout_secs must be a positive number of seconds",
            "server.max_connections must be between 1 and 1000000, got 0",
            "store.hold_lease_secs must be a number of seconds from 1 to below 86400, got 0.5",
            "server.max_upstream_body_bytes must be at least 1024, got 10",
            "store.record_timeout_secs must be a positive number of seconds up to 600, got 0",
            "store.url",
            "server.metrics_address",
            "server.cors_allowed_origins: \"ftp://no\"",
            "server.cors_allowed_origins: \"https://a.example/path\"",
            "SWITCHYARD__BAD",
            "telemetry.endpoint: \"collector:4318\" is not an http(s) URL with a host",
            "telemetry.sampling_ratio must be between 0 and 1, got 1.5",
            "telemetry.batch_delay_ms must be between 1 and 3600000, got 0",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
        let err = Config::load(
            "c.toml",
            Some("[console]\npath = \"/api/console\"\nsession_ttl_secs = 5\n"),
            env(&[]),
        )
        .expect_err("invalid");
        for needle in ["console.path", "console.session_ttl_secs"] {
            assert!(
                err.to_string().contains(needle),
                "{needle} missing from {err}"
            );
        }
        for (path, base) in [("/", "/"), ("/console", "/console/"), ("/ops/", "/ops/")] {
            let config = Config::load(
                "c.toml",
                Some(&format!("[console]\npath = \"{path}\"\n")),
                env(&[]),
            )
            .expect("valid");
            assert_eq!(config.console.base(), base);
        }
        let err =
            Config::load("c.toml", Some("[server]\nport = 1\n"), env(&[])).expect_err("invalid");
        assert!(err.to_string().contains("unknown field `port`"), "{err}");
        let err = Config::load("c.toml", Some("[store]\nholds = \"disk\"\n"), env(&[]))
            .expect_err("invalid");
        assert!(err.to_string().contains("unknown variant `disk`"), "{err}");
        let err = Config::load(
            "c.toml",
            Some("[store]\ndurability = \"eventual\"\n"),
            env(&[]),
        )
        .expect_err("invalid");
        assert!(
            err.to_string().contains("unknown variant `eventual`"),
            "{err}"
        );
    }
}
