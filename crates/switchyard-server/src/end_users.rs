//! End users on the request path and the one service behind the end-users API and the CLI.
//!
//! A request names its end user with its `user` (chat, Responses, embeddings, legacy
//! completions; Messages' `metadata.user_id`) or the `X-Switchyard-User` header. The first
//! request of an end user creates their record; records are cached for a second
//! ([`EndUsers`]), and forgotten at once in this process when a block or a limit changes
//! through the API. Admission ([`admit`]) refuses, in this order: a request without an end
//! user on a key that requires one (400), a blocked end user (403, naming no detail), and a
//! request over a rate limit of the key or the end user (429 with `Retry-After`). The end
//! user's spending limit is checked with the request's hold ([`crate::ledger`]).
//!
//! Invariant: a request without an end user costs nothing more here than a look at its key's
//! policy (no store round trip, no lock unless its key has rate limits).

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use serde_json::json;
use switchyard_core::audit;
use switchyard_store::{Block, EndUser, EndUserLimits, KeyRecord, Store, StoreResult};

use crate::cache::TtlCache;
use crate::error::{ErrorKind, GatewayError};
use crate::ledger::UserLimit;
use crate::rate_limit::{RateLimiter, Scope, Subject};
use crate::recorder::{AuditEntry, Recorder};

/// The header naming a request's end user.
pub const USER_HEADER: &str = "x-switchyard-user";

/// Longest end-user id accepted.
pub const MAX_ID_CHARS: usize = 256;

/// How long a cached end-user record is used.
const TTL: Duration = Duration::from_secs(1);

/// Most end-user records cached at once.
const CAPACITY: u64 = 100_000;

/// Why a request was refused by the end-user controls, as its audit record's `refusal` says.
pub mod refusal {
    /// The key requires an end user and the request named none.
    pub const USER_REQUIRED: &str = "end_user_required";
    /// The end user is blocked.
    pub const BLOCKED: &str = "end_user_blocked";
    /// A rate limit of the key or the end user.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// The end user's spending limit.
    pub const SPEND_LIMIT: &str = "end_user_spend_limit";
}

/// Checks an end-user id: not blank, at most [`MAX_ID_CHARS`] characters, no control
/// characters. `what` names where it came from.
pub fn check_id(id: &str, what: &str) -> Result<(), GatewayError> {
    if id.trim().is_empty() {
        return Err(GatewayError::bad_request(format!(
            "{what}: must not be blank"
        )));
    }
    if id.chars().count() > MAX_ID_CHARS {
        return Err(GatewayError::bad_request(format!(
            "{what}: must be at most {MAX_ID_CHARS} characters"
        )));
    }
    if id.chars().any(char::is_control) {
        return Err(GatewayError::bad_request(format!(
            "{what}: must not contain control characters"
        )));
    }
    Ok(())
}

/// The request's end user: its `user` field or the `X-Switchyard-User` header (a request
/// naming two different ones is refused).
pub fn identify(headers: &HeaderMap, user: Option<&str>) -> Result<Option<String>, GatewayError> {
    let header = match headers.get(USER_HEADER) {
        None => None,
        Some(v) => Some(v.to_str().map_err(|_| {
            GatewayError::bad_request("X-Switchyard-User: must be visible ASCII text")
        })?),
    };
    if let Some(h) = header {
        check_id(h, "X-Switchyard-User")?;
    }
    if let Some(u) = user {
        check_id(u, "user")?;
    }
    match (user, header) {
        (Some(u), Some(h)) if u != h => Err(GatewayError::bad_request(
            "user and X-Switchyard-User name different end users: send one, or the same in both",
        )),
        (Some(u), _) => Ok(Some(u.to_owned())),
        (None, h) => Ok(h.map(str::to_owned)),
    }
}

/// End-user records cached briefly, and the rate limits' windows.
#[derive(Debug)]
pub struct EndUsers {
    cache: TtlCache<Arc<EndUser>>,
    /// Requests and tokens per minute of keys and end users.
    pub limiter: RateLimiter,
}

impl Default for EndUsers {
    fn default() -> Self {
        EndUsers {
            cache: TtlCache::new(CAPACITY, TTL),
            limiter: RateLimiter::default(),
        }
    }
}

fn cache_key(account_id: &str, id: &str) -> String {
    format!("{account_id}\u{0}{id}")
}

impl EndUsers {
    /// The end user's record, created on first sight; from the cache when fresh.
    pub async fn seen(
        &self,
        store: &Store,
        account_id: &str,
        id: &str,
        now_ms: i64,
    ) -> StoreResult<Arc<EndUser>> {
        self.cache
            .get_or_load(&cache_key(account_id, id), async {
                Ok(Arc::new(store.end_user_seen(account_id, id, now_ms).await?))
            })
            .await
    }

    /// Forgets a cached record (its block or limits changed).
    pub async fn forget(&self, account_id: &str, id: &str) {
        self.cache.invalidate(&cache_key(account_id, id)).await;
    }
}

/// What admission found: the end user, and the rate-limit subjects their request counts
/// against.
#[derive(Debug, Clone, Default)]
pub struct Admitted {
    /// The end user, when the request named one.
    pub user: Option<Arc<EndUser>>,
    /// The key's and the end user's limits.
    subjects: Vec<Subject>,
    /// The end user's spending limit and its window (their own, else the key's default).
    limit: Option<(
        switchyard_core::money::Money,
        Option<switchyard_store::LimitReset>,
    )>,
}

impl Admitted {
    /// What the hold is also taken against: the end user and their effective limit.
    pub fn user_limit(&self) -> Option<UserLimit> {
        self.user.as_ref().map(|u| UserLimit {
            user: u.id.clone(),
            limit: self.limit.map(|(l, _)| l),
            reset: self.limit.and_then(|(_, r)| r),
            usage: u.usage,
        })
    }

    /// Counts the tokens the request used against the token limits that apply to it.
    pub fn record_tokens(&self, limiter: &RateLimiter, tokens: u64, now_ms: i64) {
        if self.subjects.iter().any(|s| s.tpm.is_some()) {
            limiter.record_tokens(&self.subjects, tokens, now_ms);
        }
    }
}

/// Admits a request of `key` for `user`: the key's requirement of an end user, the end user's
/// block, and the rate limits of both. The refusal's `&str` is the audit record's `refusal`.
pub async fn admit(
    end_users: &EndUsers,
    store: &Store,
    key: &KeyRecord,
    user: Option<&str>,
    now_ms: i64,
) -> Result<Admitted, (&'static str, GatewayError)> {
    let policy = &key.end_users;
    let mut admitted = Admitted::default();
    match user {
        None if policy.require_user => {
            return Err((
                refusal::USER_REQUIRED,
                GatewayError::bad_request(
                    "This key requires an end user: set user (metadata.user_id for Messages) or the X-Switchyard-User header",
                ),
            ));
        }
        None => {}
        Some(id) => {
            let record = end_users
                .seen(store, &key.account_id, id, now_ms)
                .await
                .map_err(|e| ("", GatewayError::from(e)))?;
            if record.active_block(now_ms).is_some() {
                return Err((refusal::BLOCKED, blocked()));
            }
            admitted.limit = match (record.limit, policy.user_limit) {
                (Some(own), _) => Some((own, record.limit_reset)),
                (None, Some(default)) => Some((default, policy.user_limit_reset)),
                (None, None) => None,
            };
            let (rpm, tpm) = (
                record.rpm.or(policy.user_rpm),
                record.tpm.or(policy.user_tpm),
            );
            if rpm.is_some() || tpm.is_some() {
                admitted.subjects.push(Subject {
                    id: format!("u:{}", cache_key(&key.account_id, id)),
                    scope: Scope::EndUser,
                    rpm,
                    tpm,
                });
            }
            admitted.user = Some(record);
        }
    }
    if policy.rpm.is_some() || policy.tpm.is_some() {
        admitted.subjects.push(Subject {
            id: format!("k:{}", key.hash),
            scope: Scope::Key,
            rpm: policy.rpm,
            tpm: policy.tpm,
        });
    }
    if let Err(refused) = end_users.limiter.admit(&admitted.subjects, now_ms) {
        metrics::counter!("switchyard_rate_limited_total", "limit" => refused.limit.clone())
            .increment(1);
        let what = if refused.limit.contains("tokens") {
            "tokens"
        } else {
            "requests"
        };
        let whose = if refused.limit.starts_with("key") {
            "this key"
        } else {
            "this end user"
        };
        let mut e = GatewayError::of(
            ErrorKind::RateLimited,
            format!(
                "Rate limit exceeded: {whose} may use {} {what} per minute; retry after {} s",
                refused.value,
                refused.retry_after_secs()
            ),
        )
        .with_metadata("limit", json!(refused.limit))
        .with_metadata("limit_value", json!(refused.value))
        .with_metadata("retry_after_seconds", json!(refused.retry_after_secs()));
        e.retry_after = Some(refused.retry_after_secs());
        return Err((refusal::RATE_LIMITED, e));
    }
    Ok(admitted)
}

/// The answer to a blocked end user's request: it names no reason, no expiry, no internal
/// detail.
pub fn blocked() -> GatewayError {
    GatewayError::forbidden("This end user may not use this service")
}

/// Why an end-user change could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EndUserError {
    /// A parameter is not acceptable (the message names it).
    #[error("{0}")]
    Invalid(String),
    /// No such end user.
    #[error("no end user {0:?}")]
    Unknown(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] switchyard_store::StoreError),
}

impl From<EndUserError> for GatewayError {
    fn from(e: EndUserError) -> Self {
        match e {
            EndUserError::Invalid(m) => GatewayError::bad_request(m),
            EndUserError::Unknown(id) => GatewayError::not_found(format!("No end user {id:?}")),
            EndUserError::Store(e) => GatewayError::from(e),
        }
    }
}

fn check(id: &str) -> Result<(), EndUserError> {
    check_id(id, "id").map_err(|e| EndUserError::Invalid(e.message))
}

/// Writes an operator's change of an end user to the audit chain.
fn audit_change(
    recorder: &Recorder,
    account_id: &str,
    id: &str,
    action: &str,
    detail: serde_json::Value,
    now_ms: i64,
) {
    let body = audit::canonical_json(&json!({
        "account_id": account_id,
        "action": action,
        "detail": detail,
        "kind": "end_user_change",
        "time": now_ms,
        "user": id,
    }));
    drop(recorder.record(
        None,
        AuditEntry {
            created_at: now_ms,
            generation_id: crate::engine::new_generation_id(now_ms),
            account_id: Some(account_id.to_owned()),
            body,
        },
    ));
}

/// A block to set: why, until when (`None`: until unblocked), by whom
/// ([`switchyard_store::BLOCKED_BY_OPERATOR`] or [`switchyard_store::BLOCKED_BY_STRIKES`]).
#[derive(Debug, Clone, Copy)]
pub struct NewBlock<'a> {
    /// Why (for the operator, never shown to the end user).
    pub reason: &'a str,
    /// Until when, Unix ms.
    pub expires_at: Option<i64>,
    /// Who blocks.
    pub source: &'a str,
}

/// Blocks an end user of the account (recording them if never seen), with a reason and an
/// optional expiry; the change is audited when `recorder` is given (the gateway; the CLI writes
/// its own record).
pub async fn block(
    store: &Store,
    recorder: Option<&Recorder>,
    account_id: &str,
    id: &str,
    block: NewBlock<'_>,
    now_ms: i64,
) -> Result<EndUser, EndUserError> {
    let NewBlock {
        reason,
        expires_at,
        source,
    } = block;
    check(id)?;
    if reason.trim().is_empty() {
        return Err(EndUserError::Invalid(
            "reason is required and must be a non-empty string".into(),
        ));
    }
    if reason.chars().count() > 1000 {
        return Err(EndUserError::Invalid(
            "reason must be at most 1000 characters".into(),
        ));
    }
    if expires_at.is_some_and(|t| t <= now_ms) {
        return Err(EndUserError::Invalid(
            "expires_at must be in the future".into(),
        ));
    }
    store.end_user_seen(account_id, id, now_ms).await?;
    let block = Block {
        reason: reason.to_owned(),
        at: now_ms,
        expires_at,
        source: source.to_owned(),
    };
    let user = store
        .block_end_user(account_id, id, &block, now_ms)
        .await?
        .ok_or_else(|| EndUserError::Unknown(id.to_owned()))?;
    if let Some(r) = recorder {
        audit_change(
            r,
            account_id,
            id,
            "block",
            json!({"expires_at": expires_at, "reason": reason, "source": source}),
            now_ms,
        );
    }
    Ok(user)
}

/// Lifts an end user's block.
pub async fn unblock(
    store: &Store,
    recorder: Option<&Recorder>,
    account_id: &str,
    id: &str,
    now_ms: i64,
) -> Result<EndUser, EndUserError> {
    check(id)?;
    let user = store
        .unblock_end_user(account_id, id, now_ms)
        .await?
        .ok_or_else(|| EndUserError::Unknown(id.to_owned()))?;
    if let Some(r) = recorder {
        audit_change(r, account_id, id, "unblock", json!({}), now_ms);
    }
    Ok(user)
}

/// Changes an end user's own limits (recording them if never seen).
pub async fn set_limits(
    store: &Store,
    account_id: &str,
    id: &str,
    limits: &EndUserLimits,
    now_ms: i64,
) -> Result<EndUser, EndUserError> {
    check(id)?;
    if limits.limit.flatten().is_some_and(|l| l.picos() < 0) {
        return Err(EndUserError::Invalid("limit must not be negative".into()));
    }
    store.end_user_seen(account_id, id, now_ms).await?;
    store
        .set_end_user_limits(account_id, id, limits, now_ms)
        .await?
        .ok_or_else(|| EndUserError::Unknown(id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identification_table() {
        let headers = |v: Option<&str>| {
            let mut h = HeaderMap::new();
            if let Some(v) = v {
                h.insert(USER_HEADER, v.parse().expect("header"));
            }
            h
        };
        let long = "x".repeat(MAX_ID_CHARS + 1);
        // (user field, header, the end user or a part of the error)
        type Case<'a> = (
            Option<&'a str>,
            Option<&'a str>,
            Result<Option<&'a str>, &'a str>,
        );
        let cases: [Case<'_>; 7] = [
            (None, None, Ok(None)),
            (Some("alice"), None, Ok(Some("alice"))),
            (None, Some("bob"), Ok(Some("bob"))),
            (Some("carol"), Some("carol"), Ok(Some("carol"))),
            (Some("carol"), Some("dave"), Err("different end users")),
            (Some("  "), None, Err("user: must not be blank")),
            (Some(long.as_str()), None, Err("at most 256")),
        ];
        for (field, header, want) in cases {
            let got = identify(&headers(header), field);
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got.as_deref(), want, "{field:?} {header:?}"),
                (Err(e), Err(needle)) => {
                    assert_eq!(e.status(), 400);
                    assert!(e.message.contains(needle), "{}", e.message);
                }
                (got, _) => panic!("{field:?} {header:?}: {got:?}"),
            }
        }
        assert!(check_id("a\u{7}b", "user").is_err());
    }

    #[test]
    fn a_blocked_answer_names_no_detail() {
        let e = blocked();
        assert_eq!(e.status(), 403);
        assert!(e.metadata.is_none());
    }
}
