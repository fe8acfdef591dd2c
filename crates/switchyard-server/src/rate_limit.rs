//! Rate limits of keys and end users: requests per minute and tokens per minute, over an exact
//! sliding window of the last 60 seconds, in this process.
//!
//! - Requests: a request is admitted when fewer than the limit were admitted in the window;
//!   admission records it. Sixty requests at once against a limit of ten admit exactly ten.
//! - Tokens: the tokens a request actually used (prompt and completion, as settled) are
//!   recorded when it settles; a request is refused while the tokens of the window have
//!   reached the limit. A request in flight is not counted until it settles, so the last one
//!   admitted may take the window past the limit; the next is refused until enough of the
//!   window has passed.
//!
//! One request checks every limit that applies (the key's and its end user's) under one lock
//! and is admitted by all of them or by none. A refusal says which limit and when a request
//! would next be admitted (`Retry-After`).
//!
//! Invariant (tested below): in any window of 60 seconds, no subject admits more requests than
//! its limit. Several gateways on one database each keep their own windows: the bound across
//! them is the limit times the number of gateways.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// The window every limit is counted over.
pub const WINDOW_MS: i64 = 60_000;

/// Subjects kept before idle ones are dropped.
const SWEEP_AT: usize = 100_000;

/// What a limit applies to, for messages and metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The API key.
    Key,
    /// The end user.
    EndUser,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Scope::Key => "key",
            Scope::EndUser => "end_user",
        }
    }
}

/// The limits that apply to one subject (a key, an end user) for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Whose limits: the limiter's name of the key or end user.
    pub id: String,
    /// What it is.
    pub scope: Scope,
    /// Requests per minute.
    pub rpm: Option<u64>,
    /// Tokens per minute.
    pub tpm: Option<u64>,
}

/// A refusal: the limit that refused and when to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The limit's name: `key_requests_per_minute`, `end_user_tokens_per_minute`, ...
    pub limit: String,
    /// Its value.
    pub value: u64,
    /// Milliseconds until a request would be admitted (at least 1).
    pub retry_after_ms: i64,
}

impl Refused {
    /// `Retry-After` in whole seconds, rounded up.
    pub fn retry_after_secs(&self) -> u64 {
        u64::try_from(self.retry_after_ms.max(1)).map_or(1, |ms| ms.div_ceil(1000))
    }
}

#[derive(Debug, Default)]
struct Window {
    /// Admission times, oldest first.
    requests: VecDeque<i64>,
    /// Settled token counts with their times, oldest first.
    tokens: VecDeque<(i64, u64)>,
    /// The sum of `tokens`.
    token_sum: u64,
}

impl Window {
    fn prune(&mut self, now_ms: i64) {
        let start = now_ms - WINDOW_MS;
        while self.requests.front().is_some_and(|&t| t <= start) {
            self.requests.pop_front();
        }
        while let Some(&(t, n)) = self.tokens.front() {
            if t > start {
                break;
            }
            self.token_sum = self.token_sum.saturating_sub(n);
            self.tokens.pop_front();
        }
    }

    fn is_empty(&self) -> bool {
        self.requests.is_empty() && self.tokens.is_empty()
    }

    /// Why a request is refused now, if it is.
    fn check(&self, s: &Subject, now_ms: i64) -> Option<Refused> {
        if let Some(rpm) = s.rpm {
            if self.requests.len() as u64 >= rpm {
                // The oldest admission leaves the window first; none admitted for a limit of 0.
                let retry = self
                    .requests
                    .front()
                    .map_or(WINDOW_MS, |&t| t + WINDOW_MS - now_ms);
                return Some(Refused {
                    limit: format!("{}_requests_per_minute", s.scope.name()),
                    value: rpm,
                    retry_after_ms: retry.max(1),
                });
            }
        }
        if let Some(tpm) = s.tpm {
            if self.token_sum >= tpm {
                // When enough settled tokens have left the window to go under the limit.
                let mut sum = self.token_sum;
                let mut retry = WINDOW_MS;
                for &(t, n) in &self.tokens {
                    sum = sum.saturating_sub(n);
                    if sum < tpm {
                        retry = t + WINDOW_MS - now_ms;
                        break;
                    }
                }
                return Some(Refused {
                    limit: format!("{}_tokens_per_minute", s.scope.name()),
                    value: tpm,
                    retry_after_ms: retry.max(1),
                });
            }
        }
        None
    }
}

/// The windows of every subject seen recently.
#[derive(Debug, Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<String, Window>>,
}

impl RateLimiter {
    fn windows(&self) -> std::sync::MutexGuard<'_, HashMap<String, Window>> {
        // Every operation under the lock leaves the windows consistent.
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admits a request under every subject's limits, or refuses it naming the first limit
    /// reached; nothing is recorded when it is refused.
    pub fn admit(&self, subjects: &[Subject], now_ms: i64) -> Result<(), Refused> {
        let limited: Vec<&Subject> = subjects
            .iter()
            .filter(|s| s.rpm.is_some() || s.tpm.is_some())
            .collect();
        if limited.is_empty() {
            return Ok(());
        }
        let mut windows = self.windows();
        if windows.len() > SWEEP_AT {
            windows.retain(|_, w| {
                w.prune(now_ms);
                !w.is_empty()
            });
        }
        for s in &limited {
            let w = windows.entry(s.id.clone()).or_default();
            w.prune(now_ms);
            if let Some(refused) = w.check(s, now_ms) {
                return Err(refused);
            }
        }
        for s in limited.iter().filter(|s| s.rpm.is_some()) {
            windows
                .entry(s.id.clone())
                .or_default()
                .requests
                .push_back(now_ms);
        }
        Ok(())
    }

    /// Records the tokens a settled request used against the subjects that limit tokens.
    pub fn record_tokens(&self, subjects: &[Subject], tokens: u64, now_ms: i64) {
        if tokens == 0 {
            return;
        }
        let mut windows = self.windows();
        for s in subjects.iter().filter(|s| s.tpm.is_some()) {
            let w = windows.entry(s.id.clone()).or_default();
            w.prune(now_ms);
            w.tokens.push_back((now_ms, tokens));
            w.token_sum = w.token_sum.saturating_add(tokens);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn subject(id: &str, scope: Scope, rpm: Option<u64>, tpm: Option<u64>) -> Subject {
        Subject {
            id: id.into(),
            scope,
            rpm,
            tpm,
        }
    }

    #[test]
    fn sixty_at_once_against_ten_per_minute_admit_ten() {
        let l = RateLimiter::default();
        let key = [subject("k", Scope::Key, Some(10), None)];
        let admitted = (0..60).filter(|_| l.admit(&key, 1_000).is_ok()).count();
        assert_eq!(admitted, 10);
        let refused = l.admit(&key, 1_500).expect_err("over");
        assert_eq!(refused.limit, "key_requests_per_minute");
        assert_eq!(refused.retry_after_ms, 59_500);
        assert_eq!(refused.retry_after_secs(), 60);
        // The window slides: at 61 s the first ten have left it.
        assert!(l.admit(&key, 1_000 + WINDOW_MS - 1).is_err());
        assert!(l.admit(&key, 1_000 + WINDOW_MS).is_ok());
    }

    #[test]
    fn limits_table() {
        struct Case {
            name: &'static str,
            subjects: Vec<Subject>,
            tokens: Vec<(i64, u64)>,
            at: i64,
            want: Option<(&'static str, i64)>,
        }
        let cases = [
            Case {
                name: "no limits",
                subjects: vec![subject("k", Scope::Key, None, None)],
                tokens: vec![],
                at: 0,
                want: None,
            },
            Case {
                name: "a limit of zero refuses everything",
                subjects: vec![subject("k", Scope::Key, Some(0), None)],
                tokens: vec![],
                at: 0,
                want: Some(("key_requests_per_minute", WINDOW_MS)),
            },
            Case {
                name: "tokens under the limit",
                subjects: vec![subject("u", Scope::EndUser, None, Some(100))],
                tokens: vec![(0, 99)],
                at: 10,
                want: None,
            },
            Case {
                name: "tokens at the limit refuse until the oldest leave",
                subjects: vec![subject("u", Scope::EndUser, None, Some(100))],
                tokens: vec![(0, 60), (5_000, 60)],
                at: 10_000,
                want: Some(("end_user_tokens_per_minute", 50_000)),
            },
            Case {
                name: "tokens that left the window do not count",
                subjects: vec![subject("u", Scope::EndUser, None, Some(100))],
                tokens: vec![(0, 500)],
                at: WINDOW_MS,
                want: None,
            },
            Case {
                name: "the end user's limit refuses while the key's admits",
                subjects: vec![
                    subject("k", Scope::Key, None, Some(1_000)),
                    subject("u", Scope::EndUser, None, Some(10)),
                ],
                tokens: vec![(0, 10)],
                at: 1,
                want: Some(("end_user_tokens_per_minute", WINDOW_MS - 1)),
            },
        ];
        for c in cases {
            let l = RateLimiter::default();
            for &(t, n) in &c.tokens {
                l.record_tokens(&c.subjects, n, t);
            }
            let got = l
                .admit(&c.subjects, c.at)
                .err()
                .map(|r| (r.limit, r.retry_after_ms));
            assert_eq!(got, c.want.map(|(l, r)| (l.to_owned(), r)), "{}", c.name);
        }
    }

    #[test]
    fn a_refusal_by_one_subject_records_nothing_for_the_others() {
        let l = RateLimiter::default();
        let key = subject("k", Scope::Key, Some(5), None);
        let user = subject("u", Scope::EndUser, Some(1), None);
        assert!(l.admit(&[key.clone(), user.clone()], 0).is_ok());
        for _ in 0..10 {
            assert!(l.admit(&[key.clone(), user.clone()], 0).is_err());
        }
        // The key has admitted one request only: four more of another end user pass.
        let other = subject("v", Scope::EndUser, None, None);
        let admitted = (0..10)
            .filter(|_| l.admit(&[key.clone(), other.clone()], 0).is_ok())
            .count();
        assert_eq!(admitted, 4);
    }

    proptest! {
        /// Whatever the arrival times and users, no end user and no key admits more than its
        /// limit in any window of 60 seconds.
        #[test]
        fn never_more_than_the_limit_in_any_window(
            key_rpm in 0u64..20,
            user_rpm in 0u64..8,
            arrivals in prop::collection::vec((0i64..3, 0i64..2_000), 1..200),
        ) {
            let l = RateLimiter::default();
            let mut now = 0;
            let mut admitted: Vec<(i64, i64)> = Vec::new();
            for (user, gap) in arrivals {
                now += gap;
                let subjects = [
                    subject("k", Scope::Key, Some(key_rpm), None),
                    subject(&format!("u{user}"), Scope::EndUser, Some(user_rpm), None),
                ];
                if l.admit(&subjects, now).is_ok() {
                    admitted.push((user, now));
                }
            }
            for &(_, t) in &admitted {
                let in_window = |u: Option<i64>| admitted
                    .iter()
                    .filter(|(au, at)| *at > t - WINDOW_MS && *at <= t && u.is_none_or(|u| u == *au))
                    .count() as u64;
                prop_assert!(in_window(None) <= key_rpm);
                for u in 0..3 {
                    prop_assert!(in_window(Some(u)) <= user_rpm);
                }
            }
        }
    }
}
