//! Failed authentication, aggregated. An inference request refused before its key is known
//! (401: no key, a malformed, unknown, disabled or expired key) is counted per source address
//! and minute instead of writing one audit record each: a flood of bogus keys must not flood
//! the audit chain. One record per (source, minute) holds the count, the first request's
//! generation id as a sample and what the refusals said; it is written when the minute ends
//! ([`AuthFailures::close_ended`], called every few seconds) or at shutdown
//! ([`AuthFailures::close_all`], before the recorder's last flush).
//!
//! Invariants:
//! - Memory is bounded: at most [`MAX_SOURCES`] sources are told apart in a minute (the rest
//!   are counted together under the source `null`), at most [`MAX_MESSAGES`] distinct messages
//!   are kept per source, and every stored string is cut to [`MAX_CHARS`] characters.
//! - Nothing the client sent is stored but its address: no header, no key, no body.
//! - Every refusal counted is in exactly one record: the counts of a minute's records add up to
//!   the refusals of that minute.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;

use serde_json::{json, Value};
use switchyard_core::audit;

use crate::recorder::Recorder;

/// Sources told apart in one minute; refusals from more are counted under the source `null`.
pub const MAX_SOURCES: usize = 10_000;

/// Distinct messages kept per source and minute; others count under the last kept.
pub const MAX_MESSAGES: usize = 8;

/// Longest stored string, in characters.
pub const MAX_CHARS: usize = 256;

/// The audit record's `kind`.
pub const KIND: &str = "auth_failures";

const MINUTE_MS: i64 = 60_000;

/// The refusals of one source in one minute.
#[derive(Debug)]
struct Tally {
    count: u64,
    first_ms: i64,
    last_ms: i64,
    sample: String,
    formats: BTreeMap<&'static str, u64>,
    messages: BTreeMap<String, u64>,
}

/// The open minute's tallies.
#[derive(Debug, Default)]
struct Minute {
    /// Start of the minute (Unix ms); 0 before the first refusal.
    start_ms: i64,
    tallies: HashMap<Option<IpAddr>, Tally>,
}

/// Refusals before a key is known, counted per source and minute.
#[derive(Debug, Default)]
pub struct AuthFailures {
    open: Mutex<Minute>,
}

/// `text` cut to [`MAX_CHARS`] characters.
fn bounded(text: &str) -> String {
    text.chars().take(MAX_CHARS).collect()
}

impl AuthFailures {
    /// Counts one refusal from `source` at `now_ms`, answered under `generation_id` in
    /// `format` with `message`. A refusal in a later minute than the open one first writes the
    /// open minute's records.
    pub fn record(
        &self,
        recorder: &Recorder,
        source: Option<IpAddr>,
        now_ms: i64,
        generation_id: &str,
        format: &'static str,
        message: &str,
    ) {
        metrics::counter!("switchyard_auth_failures_total", "format" => format).increment(1);
        let minute = now_ms.div_euclid(MINUTE_MS) * MINUTE_MS;
        let ended = {
            let mut open = self.lock();
            let ended = if minute > open.start_ms {
                let ended = std::mem::take(&mut open.tallies);
                let start = std::mem::replace(&mut open.start_ms, minute);
                Some((start, ended))
            } else {
                // A clock that stepped back: counted in the open minute.
                None
            };
            let known = open.tallies.contains_key(&source);
            let source = if known || open.tallies.len() < MAX_SOURCES {
                source
            } else {
                None
            };
            let tally = open.tallies.entry(source).or_insert_with(|| Tally {
                count: 0,
                first_ms: now_ms,
                last_ms: now_ms,
                sample: bounded(generation_id),
                formats: BTreeMap::new(),
                messages: BTreeMap::new(),
            });
            tally.count += 1;
            tally.last_ms = tally.last_ms.max(now_ms);
            *tally.formats.entry(format).or_insert(0) += 1;
            let message = bounded(message);
            if tally.messages.len() < MAX_MESSAGES || tally.messages.contains_key(&message) {
                *tally.messages.entry(message).or_insert(0) += 1;
            } else if let Some(mut last) = tally.messages.last_entry() {
                *last.get_mut() += 1;
            }
            ended
        };
        if let Some((start, tallies)) = ended {
            write(recorder, start, tallies);
        }
    }

    /// Writes the records of the open minute if it ended before `now_ms`.
    pub fn close_ended(&self, recorder: &Recorder, now_ms: i64) {
        let minute = now_ms.div_euclid(MINUTE_MS) * MINUTE_MS;
        let ended = {
            let mut open = self.lock();
            (minute > open.start_ms && !open.tallies.is_empty())
                .then(|| (open.start_ms, std::mem::take(&mut open.tallies)))
        };
        if let Some((start, tallies)) = ended {
            write(recorder, start, tallies);
        }
    }

    /// Writes the records of the open minute now (at shutdown, before the recorder's last
    /// flush).
    pub fn close_all(&self, recorder: &Recorder) {
        let (start, tallies) = {
            let mut open = self.lock();
            (open.start_ms, std::mem::take(&mut open.tallies))
        };
        write(recorder, start, tallies);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Minute> {
        // A panic while counting leaves counts that are still counts.
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Queues one record per source of a minute, in the order of their first refusal.
fn write(recorder: &Recorder, minute_ms: i64, tallies: HashMap<Option<IpAddr>, Tally>) {
    let mut tallies: Vec<(Option<IpAddr>, Tally)> = tallies.into_iter().collect();
    tallies.sort_by(|a, b| (a.1.first_ms, &a.1.sample).cmp(&(b.1.first_ms, &b.1.sample)));
    for (source, tally) in tallies {
        let body = record(minute_ms, source, &tally);
        recorder.audit(tally.first_ms, &tally.sample, None, body);
    }
}

/// One (source, minute)'s audit record, canonical JSON.
fn record(minute_ms: i64, source: Option<IpAddr>, tally: &Tally) -> String {
    let body = json!({
        "count": tally.count,
        "first_time": tally.first_ms,
        "formats": tally.formats,
        "kind": KIND,
        "last_time": tally.last_ms,
        "messages": tally.messages,
        "minute": minute_ms,
        "sample_generation_id": tally.sample,
        "source": source.map_or(Value::Null, |ip| json!(ip.to_string())),
        "status": 401,
    });
    audit::canonical_json(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records written to a recorder nobody reads are lost; these tests read the tallies
    /// through [`record`] instead.
    fn tallies(failures: &AuthFailures) -> Vec<Value> {
        let open = failures.lock();
        let mut out: Vec<Value> = open
            .tallies
            .iter()
            .map(|(source, t)| {
                serde_json::from_str(&record(open.start_ms, *source, t)).expect("json")
            })
            .collect();
        out.sort_by_key(|v| v["first_time"].as_i64());
        out
    }

    fn recorder() -> Recorder {
        Recorder::detached()
    }

    #[test]
    fn refusals_are_counted_per_source_and_minute_with_bounded_fields() {
        let failures = AuthFailures::default();
        let recorder = recorder();
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let long = "x".repeat(10_000);
        for i in 0..5 {
            failures.record(
                &recorder,
                Some(a),
                60_000 + i,
                &format!("gen-a{i}"),
                "chat",
                &long,
            );
        }
        failures.record(&recorder, Some(b), 60_010, "gen-b", "messages", "no key");
        let open = tallies(&failures);
        assert_eq!(open.len(), 2);
        assert_eq!(open[0]["count"], 5);
        assert_eq!(open[0]["sample_generation_id"], "gen-a0");
        assert_eq!(open[0]["source"], "10.0.0.1");
        assert_eq!(open[0]["minute"], 60_000);
        let (message, n) = open[0]["messages"]
            .as_object()
            .and_then(|m| m.iter().next())
            .expect("a message");
        assert_eq!(message.chars().count(), MAX_CHARS);
        assert_eq!(n, 5);
        assert_eq!(open[1]["formats"], json!({"messages": 1}));
        // The next minute starts afresh.
        failures.record(&recorder, Some(a), 120_000, "gen-next", "chat", "no key");
        let open = tallies(&failures);
        assert_eq!(open.len(), 1);
        assert_eq!(open[0]["count"], 1);
        assert_eq!(open[0]["sample_generation_id"], "gen-next");
    }

    #[test]
    fn sources_and_messages_past_their_caps_are_counted_together() {
        let failures = AuthFailures::default();
        let recorder = recorder();
        let sources = MAX_SOURCES + 50;
        for i in 0..sources {
            let ip = IpAddr::from(u32::try_from(i).expect("small").to_be_bytes());
            failures.record(&recorder, Some(ip), 0, "gen", "chat", "no key");
        }
        for i in 0..MAX_MESSAGES + 3 {
            failures.record(&recorder, None, 0, "gen", "chat", &format!("m{i}"));
        }
        let open = tallies(&failures);
        assert_eq!(open.len(), MAX_SOURCES + 1);
        let total: u64 = open.iter().filter_map(|v| v["count"].as_u64()).sum();
        assert_eq!(total, (sources + MAX_MESSAGES + 3) as u64);
        let other = open
            .iter()
            .find(|v| v["source"].is_null())
            .expect("the other sources");
        assert_eq!(other["count"], (50 + MAX_MESSAGES + 3) as u64);
        let messages = other["messages"].as_object().expect("messages");
        assert_eq!(messages.len(), MAX_MESSAGES);
        let counted: u64 = messages.values().filter_map(Value::as_u64).sum();
        assert_eq!(counted, (50 + MAX_MESSAGES + 3) as u64);
    }

    #[test]
    fn a_record_is_canonical_json() {
        let failures = AuthFailures::default();
        failures.record(
            &recorder(),
            Some("::1".parse().expect("ip")),
            5,
            "gen-1",
            "responses",
            "Invalid API key: no such key",
        );
        let open = failures.lock();
        for (source, tally) in &open.tallies {
            let text = record(open.start_ms, *source, tally);
            let value: Value = serde_json::from_str(&text).expect("json");
            assert_eq!(text, audit::canonical_json(&value));
        }
    }
}
