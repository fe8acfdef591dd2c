//! Endpoint health: attempt outcomes, circuit breakers and performance statistics, plus the
//! sticky-session map.
//!
//! Time is always an argument (`now_ms`, Unix milliseconds); nothing here reads a clock. The
//! tracker is keyed by (model id, endpoint tag) and is cheap to share: one mutex around a map of
//! small per-endpoint records.
//!
//! Per endpoint it keeps:
//! - the recent outcomes (at most [`HealthConfig::max_recent`], none older than
//!   [`HealthConfig::error_window_ms`]) for the error rate and the breaker;
//! - performance samples of the last [`HealthConfig::stats_window_ms`] (at most
//!   [`HealthConfig::max_samples`]) for latency and throughput percentiles;
//! - per-minute success/failure counters for a day, for the uptime percentages.
//!
//! Circuit breaker: **closed** until [`HealthConfig::open_after_consecutive`] consecutive
//! failures, or an error rate above [`HealthConfig::open_error_rate`] with at least
//! [`HealthConfig::min_samples`] recent outcomes; then **open** for
//! [`HealthConfig::cool_down_ms`]; then **half-open**: [`HealthTracker::admit`] lets one probe
//! through (and refuses others until it reports or [`HealthConfig::probe_timeout_ms`] passes). A
//! success closes the circuit (and forgets the recent outcomes, so that old failures do not
//! re-open it); a failure re-opens it for another cool-down.
//!
//! Only failures attributable to the endpoint (5xx, 429, timeouts, invalid upstream responses)
//! should be recorded as failures; a client's own 4xx is not the endpoint's fault.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use serde::Serialize;

use crate::routing::{EndpointHealth, HealthSnapshot, Quantiles};

const MINUTE_MS: i64 = 60_000;
const DAY_MINUTES: usize = 24 * 60;

/// Tuning of the tracker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthConfig {
    /// Window of the error rate, milliseconds (5 minutes).
    pub error_window_ms: i64,
    /// At most this many recent outcomes count toward the error rate.
    pub max_recent: usize,
    /// Consecutive failures that open the circuit.
    pub open_after_consecutive: u32,
    /// Error rate above which the circuit opens (with enough samples).
    pub open_error_rate: f64,
    /// Fewest recent outcomes for the error rate to count.
    pub min_samples: usize,
    /// How long an open circuit stays open before a probe, milliseconds.
    pub cool_down_ms: i64,
    /// A probe that never reports frees the half-open slot after this long, milliseconds.
    pub probe_timeout_ms: i64,
    /// A failure within this window marks the endpoint degraded, milliseconds (30 s).
    pub degraded_window_ms: i64,
    /// Window of the latency and throughput statistics, milliseconds (30 minutes).
    pub stats_window_ms: i64,
    /// At most this many performance samples are kept per endpoint.
    pub max_samples: usize,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            error_window_ms: 5 * MINUTE_MS,
            max_recent: 50,
            open_after_consecutive: 5,
            open_error_rate: 0.5,
            min_samples: 5,
            cool_down_ms: 30_000,
            probe_timeout_ms: 60_000,
            degraded_window_ms: 30_000,
            stats_window_ms: 30 * MINUTE_MS,
            max_samples: 512,
        }
    }
}

/// One attempt's outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// The endpoint answered.
    Success {
        /// Time to first token, milliseconds, when measured.
        ttft_ms: Option<f64>,
        /// Completion tokens per second, when measured.
        tokens_per_second: Option<f64>,
    },
    /// The endpoint failed (5xx, 429, timeout, invalid response).
    Failure,
}

/// State of an endpoint's circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    /// Requests flow.
    Closed,
    /// Requests are refused until the cool-down ends.
    Open,
    /// The cool-down ended: one probe may go.
    HalfOpen,
}

/// Statistics of one endpoint, for the endpoints API.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EndpointStats {
    /// Time to first token over the last 30 minutes, milliseconds.
    pub latency_last_30m: Option<Quantiles>,
    /// Tokens per second over the last 30 minutes.
    pub throughput_last_30m: Option<Quantiles>,
    /// Percentage of successful attempts over the last 5 minutes.
    pub uptime_last_5m: Option<f64>,
    /// Percentage over the last 30 minutes.
    pub uptime_last_30m: Option<f64>,
    /// Percentage over the last day.
    pub uptime_last_1d: Option<f64>,
    /// Circuit breaker state.
    pub circuit: CircuitState,
}

impl EndpointStats {
    const UNMEASURED: EndpointStats = EndpointStats {
        latency_last_30m: None,
        throughput_last_30m: None,
        uptime_last_5m: None,
        uptime_last_30m: None,
        uptime_last_1d: None,
        circuit: CircuitState::Closed,
    };
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at_ms: i64,
    ttft_ms: Option<f64>,
    tokens_per_second: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Minute number (`at_ms / 60 000`).
    minute: i64,
    ok: u32,
    failed: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Breaker {
    Closed,
    /// Open until the given time.
    Open {
        until_ms: i64,
    },
    /// A probe was admitted at the given time and has not reported.
    Probing {
        since_ms: i64,
    },
}

#[derive(Debug)]
struct EndpointState {
    /// (time, success) of the recent outcomes, oldest first.
    recent: VecDeque<(i64, bool)>,
    consecutive_failures: u32,
    last_failure_ms: Option<i64>,
    samples: VecDeque<Sample>,
    /// Ring of per-minute counters, indexed by minute modulo a day.
    minutes: Vec<Bucket>,
    breaker: Breaker,
}

impl EndpointState {
    fn new() -> Self {
        EndpointState {
            recent: VecDeque::new(),
            consecutive_failures: 0,
            last_failure_ms: None,
            samples: VecDeque::new(),
            minutes: vec![Bucket::default(); DAY_MINUTES],
            breaker: Breaker::Closed,
        }
    }

    fn prune(&mut self, config: &HealthConfig, now_ms: i64) {
        while self
            .recent
            .front()
            .is_some_and(|(at, _)| now_ms - at > config.error_window_ms)
            || self.recent.len() > config.max_recent
        {
            self.recent.pop_front();
        }
        while self
            .samples
            .front()
            .is_some_and(|s| now_ms - s.at_ms > config.stats_window_ms)
            || self.samples.len() > config.max_samples
        {
            self.samples.pop_front();
        }
    }

    fn circuit(&self, now_ms: i64) -> CircuitState {
        match self.breaker {
            Breaker::Closed => CircuitState::Closed,
            Breaker::Open { until_ms } if now_ms < until_ms => CircuitState::Open,
            Breaker::Open { .. } | Breaker::Probing { .. } => CircuitState::HalfOpen,
        }
    }

    /// Whether a request may go now (without claiming the probe slot).
    fn probe_free(&self, config: &HealthConfig, now_ms: i64) -> bool {
        match self.breaker {
            Breaker::Closed => true,
            Breaker::Open { until_ms } => now_ms >= until_ms,
            Breaker::Probing { since_ms } => now_ms - since_ms >= config.probe_timeout_ms,
        }
    }

    fn record(&mut self, config: &HealthConfig, now_ms: i64, outcome: Outcome) {
        let ok = matches!(outcome, Outcome::Success { .. });
        let minute = now_ms.div_euclid(MINUTE_MS);
        let slot = &mut self.minutes[minute.rem_euclid(DAY_MINUTES as i64) as usize];
        if slot.minute != minute {
            *slot = Bucket {
                minute,
                ok: 0,
                failed: 0,
            };
        }
        if ok {
            slot.ok = slot.ok.saturating_add(1);
        } else {
            slot.failed = slot.failed.saturating_add(1);
        }
        self.recent.push_back((now_ms, ok));
        match outcome {
            Outcome::Success {
                ttft_ms,
                tokens_per_second,
            } => {
                self.consecutive_failures = 0;
                let valid = |v: Option<f64>| v.filter(|v| v.is_finite() && *v >= 0.0);
                let sample = Sample {
                    at_ms: now_ms,
                    ttft_ms: valid(ttft_ms),
                    tokens_per_second: valid(tokens_per_second),
                };
                if sample.ttft_ms.is_some() || sample.tokens_per_second.is_some() {
                    self.samples.push_back(sample);
                }
                if self.breaker != Breaker::Closed {
                    self.breaker = Breaker::Closed;
                    // Start afresh: the failures that opened the circuit are history.
                    self.recent.clear();
                    self.recent.push_back((now_ms, true));
                }
            }
            Outcome::Failure => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.last_failure_ms = Some(now_ms);
            }
        }
        self.prune(config, now_ms);
        if !ok {
            let reopen = self.breaker != Breaker::Closed;
            let failed = self.recent.iter().filter(|(_, ok)| !ok).count();
            let rate_trips = self.recent.len() >= config.min_samples
                && failed as f64 > config.open_error_rate * self.recent.len() as f64;
            if reopen || self.consecutive_failures >= config.open_after_consecutive || rate_trips {
                self.breaker = Breaker::Open {
                    until_ms: now_ms.saturating_add(config.cool_down_ms),
                };
            }
        }
    }

    fn degraded(&self, config: &HealthConfig, now_ms: i64) -> bool {
        let recent_failure = self
            .last_failure_ms
            .is_some_and(|at| now_ms - at <= config.degraded_window_ms);
        recent_failure || self.breaker != Breaker::Closed
    }

    fn uptime(&self, now_ms: i64, minutes: i64) -> Option<f64> {
        let current = now_ms.div_euclid(MINUTE_MS);
        let (mut ok, mut failed) = (0u64, 0u64);
        for b in &self.minutes {
            if b.minute > current - minutes && b.minute <= current {
                ok += u64::from(b.ok);
                failed += u64::from(b.failed);
            }
        }
        let total = ok + failed;
        (total > 0).then(|| ok as f64 * 100.0 / total as f64)
    }

    fn quantiles(
        &self,
        config: &HealthConfig,
        now_ms: i64,
        pick: fn(&Sample) -> Option<f64>,
    ) -> Option<Quantiles> {
        let mut values: Vec<f64> = self
            .samples
            .iter()
            .filter(|s| now_ms - s.at_ms <= config.stats_window_ms)
            .filter_map(pick)
            .collect();
        quantiles(&mut values)
    }

    fn stats(&self, config: &HealthConfig, now_ms: i64) -> EndpointStats {
        EndpointStats {
            latency_last_30m: self.quantiles(config, now_ms, |s| s.ttft_ms),
            throughput_last_30m: self.quantiles(config, now_ms, |s| s.tokens_per_second),
            uptime_last_5m: self.uptime(now_ms, 5),
            uptime_last_30m: self.uptime(now_ms, 30),
            uptime_last_1d: self.uptime(now_ms, DAY_MINUTES as i64),
            circuit: self.circuit(now_ms),
        }
    }
}

/// Nearest-rank percentiles of the values (sorted in place); `None` when empty.
pub fn quantiles(values: &mut [f64]) -> Option<Quantiles> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = |p: f64| {
        let n = values.len();
        let r = ((p / 100.0) * n as f64).ceil() as usize;
        values[r.clamp(1, n) - 1]
    };
    Some(Quantiles {
        p50: rank(50.0),
        p75: rank(75.0),
        p90: rank(90.0),
        p99: rank(99.0),
    })
}

/// Health of every endpoint, shared by the request paths.
#[derive(Debug, Default)]
pub struct HealthTracker {
    config: HealthConfig,
    endpoints: Mutex<HashMap<(String, String), EndpointState>>,
}

impl HealthTracker {
    /// A tracker with the given tuning.
    pub fn new(config: HealthConfig) -> Self {
        HealthTracker {
            config,
            endpoints: Mutex::new(HashMap::new()),
        }
    }

    /// The tuning.
    pub fn config(&self) -> &HealthConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<(String, String), EndpointState>> {
        // A panic while holding the lock leaves consistent-enough statistics: keep going.
        self.endpoints
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records one attempt's outcome.
    pub fn record(&self, model: &str, tag: &str, now_ms: i64, outcome: Outcome) {
        let mut map = self.lock();
        map.entry((model.to_owned(), tag.to_owned()))
            .or_insert_with(EndpointState::new)
            .record(&self.config, now_ms, outcome);
    }

    /// Records a success with its time to first token (ms) and throughput (tokens/s).
    pub fn record_success(
        &self,
        model: &str,
        tag: &str,
        now_ms: i64,
        ttft_ms: Option<f64>,
        tokens_per_second: Option<f64>,
    ) {
        self.record(
            model,
            tag,
            now_ms,
            Outcome::Success {
                ttft_ms,
                tokens_per_second,
            },
        );
    }

    /// Records a failure attributable to the endpoint.
    pub fn record_failure(&self, model: &str, tag: &str, now_ms: i64) {
        self.record(model, tag, now_ms, Outcome::Failure);
    }

    /// Whether a request may be sent to the endpoint now. Closed: yes. Open: no. Half-open: the
    /// first caller gets the probe slot (yes), later callers no, until the probe reports or
    /// times out.
    pub fn admit(&self, model: &str, tag: &str, now_ms: i64) -> bool {
        let mut map = self.lock();
        let Some(state) = map.get_mut(&(model.to_owned(), tag.to_owned())) else {
            return true;
        };
        if state.breaker == Breaker::Closed {
            return true;
        }
        if state.probe_free(&self.config, now_ms) {
            state.breaker = Breaker::Probing { since_ms: now_ms };
            true
        } else {
            false
        }
    }

    /// The circuit state of one endpoint.
    pub fn circuit(&self, model: &str, tag: &str, now_ms: i64) -> CircuitState {
        self.lock()
            .get(&(model.to_owned(), tag.to_owned()))
            .map_or(CircuitState::Closed, |s| s.circuit(now_ms))
    }

    /// Statistics of one endpoint (all `None` when never measured).
    pub fn stats(&self, model: &str, tag: &str, now_ms: i64) -> EndpointStats {
        self.lock()
            .get(&(model.to_owned(), tag.to_owned()))
            .map_or(EndpointStats::UNMEASURED, |s| s.stats(&self.config, now_ms))
    }

    /// What routing needs: degraded endpoints (a failure in the last 30 s, or a circuit not
    /// closed), open circuits (open, or half-open with the probe already taken), and the
    /// latency and throughput percentiles.
    pub fn snapshot(&self, now_ms: i64) -> HealthSnapshot {
        let map = self.lock();
        let endpoints = map
            .iter()
            .map(|(key, state)| {
                let health = EndpointHealth {
                    degraded: state.degraded(&self.config, now_ms),
                    circuit_open: !state.probe_free(&self.config, now_ms),
                    latency_ms: state.quantiles(&self.config, now_ms, |s| s.ttft_ms),
                    throughput: state.quantiles(&self.config, now_ms, |s| s.tokens_per_second),
                };
                (key.clone(), health)
            })
            .collect();
        HealthSnapshot { endpoints }
    }

    /// Drops old outcomes and samples, and endpoints with nothing recorded for a day.
    pub fn prune(&self, now_ms: i64) {
        let config = self.config;
        let mut map = self.lock();
        for state in map.values_mut() {
            state.prune(&config, now_ms);
        }
        let day_ago = now_ms.div_euclid(MINUTE_MS) - DAY_MINUTES as i64;
        map.retain(|_, s| {
            s.breaker != Breaker::Closed || s.minutes.iter().any(|b| b.minute > day_ago)
        });
    }
}

/// Sticky routing: the provider that last served a session, forgotten after an idle period.
#[derive(Debug)]
pub struct StickySessions {
    idle_ms: i64,
    capacity: usize,
    sessions: Mutex<HashMap<String, (String, i64)>>,
}

impl Default for StickySessions {
    fn default() -> Self {
        StickySessions::new(10 * MINUTE_MS, 100_000)
    }
}

impl StickySessions {
    /// A map whose entries expire after `idle_ms` without use, holding at most `capacity`
    /// sessions (the least recently used are dropped first).
    pub fn new(idle_ms: i64, capacity: usize) -> Self {
        StickySessions {
            idle_ms,
            capacity: capacity.max(1),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, (String, i64)>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The provider that served the session, if it was used within the idle period. A hit
    /// refreshes the idle timer.
    pub fn get(&self, session: &str, now_ms: i64) -> Option<String> {
        let mut map = self.lock();
        match map.get_mut(session) {
            Some((provider, last)) if now_ms - *last < self.idle_ms => {
                *last = now_ms;
                Some(provider.clone())
            }
            Some(_) => {
                map.remove(session);
                None
            }
            None => None,
        }
    }

    /// Remembers the provider that served the session.
    pub fn record(&self, session: &str, provider: &str, now_ms: i64) {
        let mut map = self.lock();
        if map.len() >= self.capacity && !map.contains_key(session) {
            let idle = self.idle_ms;
            map.retain(|_, (_, last)| now_ms - *last < idle);
            if map.len() >= self.capacity {
                if let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, (_, last))| *last)
                    .map(|(k, _)| k.clone())
                {
                    map.remove(&oldest);
                }
            }
        }
        map.insert(session.to_owned(), (provider.to_owned(), now_ms));
    }

    /// Forgets a session.
    pub fn forget(&self, session: &str) {
        self.lock().remove(session);
    }

    /// Drops expired sessions.
    pub fn prune(&self, now_ms: i64) {
        let idle = self.idle_ms;
        self.lock().retain(|_, (_, last)| now_ms - *last < idle);
    }

    /// Number of sessions held (expired ones included until pruned).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &str = "x/m";
    const T: &str = "p";

    fn ok(tracker: &HealthTracker, at: i64) {
        tracker.record_success(M, T, at, Some(100.0), Some(50.0));
    }

    fn fail(tracker: &HealthTracker, at: i64) {
        tracker.record_failure(M, T, at);
    }

    #[test]
    fn breaker_transitions() {
        // (script of outcomes as (time, success)), then the expected circuit at a time.
        type Case = (&'static str, Vec<(i64, bool)>, i64, CircuitState);
        let cases: Vec<Case> = vec![
            ("no data", vec![], 0, CircuitState::Closed),
            (
                "four failures stay closed",
                (0..4).map(|i| (i * 10, false)).collect(),
                50,
                CircuitState::Closed,
            ),
            (
                "five consecutive failures open",
                (0..5).map(|i| (i * 10, false)).collect(),
                100,
                CircuitState::Open,
            ),
            (
                "open until the cool-down ends",
                (0..5).map(|i| (i * 10, false)).collect(),
                40 + 30_000,
                CircuitState::HalfOpen,
            ),
            (
                "a success in between resets the consecutive count",
                vec![
                    (0, false),
                    (1, false),
                    (2, true),
                    (3, true),
                    (4, true),
                    (5, true),
                    (6, false),
                    (7, false),
                ],
                10,
                CircuitState::Closed,
            ),
            (
                "error rate above half with five samples opens",
                vec![(0, true), (1, false), (2, true), (3, false), (4, false)],
                10,
                CircuitState::Open,
            ),
            (
                "old failures leave the five-minute window",
                vec![
                    (0, false),
                    (1, false),
                    (2, false),
                    (400_000, true),
                    (400_001, true),
                    (400_002, false),
                ],
                400_010,
                CircuitState::Closed,
            ),
        ];
        for (name, script, at, expected) in cases {
            let tracker = HealthTracker::default();
            for (t, success) in &script {
                if *success {
                    ok(&tracker, *t);
                } else {
                    fail(&tracker, *t);
                }
            }
            assert_eq!(tracker.circuit(M, T, at), expected, "{name}");
        }
    }

    #[test]
    fn half_open_admits_one_probe_and_its_outcome_decides() {
        let tracker = HealthTracker::default();
        for i in 0..5 {
            fail(&tracker, i);
        }
        assert!(!tracker.admit(M, T, 1_000));
        assert!(tracker.snapshot(1_000).get(M, T).circuit_open);
        let t = 4 + 30_000;
        // Half-open: routing may use it (last), one probe is admitted.
        let h = tracker.snapshot(t).get(M, T);
        assert!(!h.circuit_open && h.degraded);
        assert!(tracker.admit(M, T, t));
        assert!(!tracker.admit(M, T, t + 1));
        assert!(tracker.snapshot(t + 1).get(M, T).circuit_open);
        // The probe fails: open again for a full cool-down.
        fail(&tracker, t + 100);
        assert_eq!(tracker.circuit(M, T, t + 200), CircuitState::Open);
        assert!(!tracker.admit(M, T, t + 100 + 29_999));
        let t2 = t + 100 + 30_000;
        assert!(tracker.admit(M, T, t2));
        // The probe succeeds: closed, and one failure does not re-open it.
        ok(&tracker, t2 + 10);
        assert_eq!(tracker.circuit(M, T, t2 + 10), CircuitState::Closed);
        fail(&tracker, t2 + 20);
        assert_eq!(tracker.circuit(M, T, t2 + 20), CircuitState::Closed);
        assert!(tracker.admit(M, T, t2 + 30));
    }

    #[test]
    fn a_probe_that_never_reports_frees_the_slot() {
        let tracker = HealthTracker::default();
        for i in 0..5 {
            fail(&tracker, i);
        }
        let t = 30_004;
        assert!(tracker.admit(M, T, t));
        assert!(!tracker.admit(M, T, t + 59_999));
        assert!(tracker.admit(M, T, t + 60_000));
    }

    #[test]
    fn degraded_for_thirty_seconds_after_a_failure() {
        let tracker = HealthTracker::default();
        ok(&tracker, 0);
        assert!(!tracker.snapshot(0).get(M, T).degraded);
        fail(&tracker, 1_000);
        for (at, degraded) in [(1_000, true), (31_000, true), (31_001, false)] {
            assert_eq!(tracker.snapshot(at).get(M, T).degraded, degraded, "{at}");
        }
        // Unknown endpoints are healthy and unmeasured.
        assert_eq!(
            tracker.snapshot(0).get(M, "other"),
            EndpointHealth::default()
        );
    }

    #[test]
    fn statistics_windows() {
        let tracker = HealthTracker::default();
        assert_eq!(tracker.stats(M, T, 0), EndpointStats::UNMEASURED);
        let start = 10 * 24 * 60 * MINUTE_MS;
        // An hour ago: 4 failures. In the last 30 minutes: 9 successes with latencies 100..900.
        for i in 0..4 {
            fail(&tracker, start - 60 * MINUTE_MS + i);
        }
        for i in 1..=9 {
            let at = start - 20 * MINUTE_MS + i64::from(i) * 1_000;
            tracker.record_success(M, T, at, Some(f64::from(i) * 100.0), Some(f64::from(i)));
        }
        fail(&tracker, start - MINUTE_MS);
        let s = tracker.stats(M, T, start);
        let latency = s.latency_last_30m.expect("measured");
        assert_eq!(
            (latency.p50, latency.p90, latency.p99),
            (500.0, 900.0, 900.0)
        );
        assert_eq!(s.throughput_last_30m.map(|q| q.p50), Some(5.0));
        assert_eq!(s.uptime_last_5m, Some(0.0));
        assert_eq!(s.uptime_last_30m, Some(90.0));
        assert_eq!(s.uptime_last_1d, Some(9.0 * 100.0 / 14.0));
        // Routing sees the same percentiles.
        let h = tracker.snapshot(start).get(M, T);
        assert_eq!(h.latency_ms.map(|q| q.p50), Some(500.0));
        // A day later everything has aged out.
        let later = start + 25 * 60 * MINUTE_MS;
        let s = tracker.stats(M, T, later);
        assert_eq!(s.latency_last_30m, None);
        assert_eq!(s.uptime_last_1d, None);
        tracker.prune(later);
        assert!(tracker.snapshot(later).endpoints.is_empty());
    }

    #[test]
    fn quantiles_use_nearest_rank() {
        assert_eq!(quantiles(&mut []), None);
        let q = quantiles(&mut [3.0]).expect("one");
        assert_eq!(q, Quantiles::constant(3.0));
        let mut values: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let q = quantiles(&mut values).expect("many");
        assert_eq!((q.p50, q.p75, q.p90, q.p99), (50.0, 75.0, 90.0, 99.0));
    }

    #[test]
    fn sticky_sessions_expire_after_idle_time() {
        let sessions = StickySessions::new(10 * MINUTE_MS, 2);
        assert_eq!(sessions.get("s", 0), None);
        sessions.record("s", "openai", 0);
        assert_eq!(sessions.get("s", 9 * MINUTE_MS).as_deref(), Some("openai"));
        // The hit refreshed the timer.
        assert_eq!(sessions.get("s", 18 * MINUTE_MS).as_deref(), Some("openai"));
        assert_eq!(sessions.get("s", 28 * MINUTE_MS + 1), None);
        // Capacity: the least recently used goes.
        sessions.record("a", "x", 0);
        sessions.record("b", "y", 1);
        sessions.record("c", "z", 2);
        assert_eq!(sessions.len(), 2);
        assert_eq!(sessions.get("a", 3), None);
        assert_eq!(sessions.get("c", 3).as_deref(), Some("z"));
        sessions.forget("c");
        sessions.prune(20 * MINUTE_MS);
        assert!(sessions.is_empty());
    }

    #[test]
    fn the_tracker_is_shared_between_threads() {
        let tracker = std::sync::Arc::new(HealthTracker::default());
        let handles: Vec<_> = (0..4)
            .map(|n| {
                let t = std::sync::Arc::clone(&tracker);
                std::thread::spawn(move || {
                    for i in 0..100 {
                        t.record_success(M, T, i64::from(n) * 1_000 + i, Some(1.0), None);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread");
        }
        assert_eq!(tracker.stats(M, T, 5_000).uptime_last_5m, Some(100.0));
    }
}
