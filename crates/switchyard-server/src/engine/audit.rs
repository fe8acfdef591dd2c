//! The audit record of a request, built once, typed, when the request ends, whatever the way it
//! ended: served, refused before anything was sent, failed, or cancelled.
//!
//! [`Trail`] gathers what the record needs as the request goes through the pipeline; the
//! record is written from it by [`Trail::write`]. Rows of one kind have one schema: a refusal
//! has the same fields as a served request, empty where nothing was known.
//!
//! Invariant: no prompt or completion text, ever: hashes, counts and the routing decision.

use axum::http::HeaderMap;
use rand::Rng;
use serde::Serialize;
use serde_json::value::RawValue;
use switchyard_core::audit;
use switchyard_core::error::UpstreamError;
use switchyard_core::routing::RoutePlan;
use switchyard_store::GenerationRecord;

use crate::engine::resolved::Resolved;
use crate::recorder::{AuditEntry, Pending, Recorder};

/// A new generation id: `gen-<unix seconds>-<20 random alphanumerics>`.
pub fn new_generation_id(now_ms: i64) -> String {
    let suffix: String = rand::thread_rng()
        .sample_iter(rand::distributions::Alphanumeric)
        .take(20)
        .map(char::from)
        .collect();
    format!("gen-{}-{suffix}", now_ms / 1000)
}

/// Request attribution read from headers.
#[derive(Debug, Clone, Default)]
pub struct Attribution {
    /// `HTTP-Referer`.
    pub http_referer: Option<String>,
    /// `X-OpenRouter-Title` (or legacy `X-Title`).
    pub app_title: Option<String>,
    /// `x-session-id`.
    pub session_id: Option<String>,
    /// `X-OpenRouter-Metadata: enabled`.
    pub metadata: bool,
    /// `User-Agent`.
    pub user_agent: Option<String>,
}

impl Attribution {
    /// Reads the attribution headers.
    pub fn from_headers(headers: &HeaderMap) -> Attribution {
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| v.chars().take(512).collect::<String>())
        };
        let metadata = [
            "x-openrouter-metadata",
            "x-openrouter-experimental-metadata",
        ]
        .iter()
        .any(|h| get(h).is_some_and(|v| v.eq_ignore_ascii_case("enabled")));
        Attribution {
            http_referer: get("http-referer").or_else(|| get("referer")),
            app_title: get("x-openrouter-title").or_else(|| get("x-title")),
            session_id: get("x-session-id"),
            metadata,
            user_agent: get("user-agent"),
        }
    }
}

/// What a serving provider did that it should not have, as the audit record's `anomaly` names
/// it.
pub mod anomaly {
    /// The usage it reported costs more than the request's hold: the hold was charged.
    pub const USAGE_EXCEEDS_HOLD: &str = "usage_exceeds_hold";
    /// The usage it reported is out of range (a count no request reaches, a cost that
    /// overflows): the hold was charged.
    pub const USAGE_OUT_OF_RANGE: &str = "usage_out_of_range";
    /// It streamed far more than the request's `max_tokens` (or the endpoint's cap): the stream
    /// was cut.
    pub const OUTPUT_EXCEEDS_MAX_TOKENS: &str = "output_exceeds_max_tokens";
}

/// One attempt's outcome, for `previous_errors`, `openrouter_metadata` and the audit record.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// Provider slug.
    pub provider: String,
    /// Catalogue model.
    pub model: String,
    /// The status the provider answered (or the gateway's, for a transport failure).
    pub status: u16,
    /// The failure, when the attempt failed.
    pub error: Option<UpstreamError>,
}

/// What is known of a request for its audit record, gathered as it goes.
#[derive(Debug)]
pub struct Trail {
    /// Made when the request arrived; the `X-Generation-Id` of every answer to it.
    pub generation_id: String,
    /// When the request arrived (Unix ms).
    pub created_ms: i64,
    /// The client format (`chat`, `messages`, ...).
    pub format: &'static str,
    /// Attribution headers.
    pub attribution: Attribution,
    /// The key's account, once the key is known.
    pub account_id: Option<String>,
    /// The key's hash, once the key is known.
    pub key_hash: Option<String>,
    /// The model asked for.
    pub requested_model: Option<String>,
    /// The preset applied to the request (its id), when it named one.
    pub preset_id: Option<String>,
    /// End user.
    pub user: Option<String>,
    /// SHA-256 of the canonical messages, or of the raw body when it did not parse.
    pub prompt_sha256: String,
    /// The data classification applied.
    pub classification: Option<String>,
    /// The guardrail applied and what its content rules found (canonical JSON, no text).
    pub guardrail: Option<Box<RawValue>>,
    /// The routing decision (empty before routing).
    pub plan: RoutePlan,
    /// The attempts, in order.
    pub attempts: Vec<AttemptRecord>,
    /// What the serving provider did that it should not have (reported usage costing more
    /// than the hold, or out of range; output past the request's bound), when it did.
    pub anomaly: Option<&'static str>,
    /// What the moderation provider found, by stage (request, completion); never the text.
    pub moderation: Vec<crate::moderation::Outcome>,
    /// Why the end-user controls refused the request (`end_user_blocked`, `rate_limited`...).
    pub refusal: Option<&'static str>,
    /// The request's trace span, when telemetry is on (never part of the record).
    pub span: Option<Box<crate::telemetry::RequestSpan>>,
}

/// How a request ended, for its record.
#[derive(Debug, Default)]
pub struct Ending<'a> {
    /// The endpoint that served, when one did.
    pub served: Option<&'a Resolved<'a>>,
    /// The generation's record, when one was settled.
    pub generation: Option<&'a GenerationRecord>,
    /// The status the client got.
    pub status: u16,
    /// The error the client got, when it failed.
    pub error: Option<&'a str>,
    /// SHA-256 of the completion's text.
    pub completion_sha256: Option<&'a str>,
}

impl Trail {
    /// The trail of a request that just arrived.
    pub fn arrive(now_ms: i64, format: &'static str, attribution: Attribution) -> Trail {
        Trail {
            generation_id: new_generation_id(now_ms),
            created_ms: now_ms,
            format,
            attribution,
            account_id: None,
            key_hash: None,
            requested_model: None,
            preset_id: None,
            user: None,
            prompt_sha256: String::new(),
            classification: None,
            guardrail: None,
            plan: RoutePlan::default(),
            attempts: Vec::new(),
            anomaly: None,
            moderation: Vec::new(),
            refusal: None,
            span: None,
        }
    }

    /// Queues the record of the request's end; the answer waits for what this returns
    /// (nothing in `batched` mode).
    pub fn write(&self, recorder: &Recorder, now_ms: i64, ending: &Ending<'_>) -> Pending {
        recorder.record(
            None,
            AuditEntry {
                created_at: now_ms,
                generation_id: self.generation_id.clone(),
                account_id: self.account_id.clone(),
                body: self.record(ending),
            },
        )
    }

    /// The audit record: canonical JSON, written straight from borrowed fields.
    pub fn record(&self, ending: &Ending<'_>) -> String {
        let record = ending.generation;
        let body = AuditRecord {
            account_id: self.account_id.as_deref(),
            anomaly: self.anomaly,
            app: AuditApp {
                http_referer: self.attribution.http_referer.as_deref(),
                title: self.attribution.app_title.as_deref(),
            },
            cancelled: record.is_some_and(|r| r.cancelled),
            completion_sha256: ending.completion_sha256,
            cost: record.map(|r| r.cost.to_usd().to_string()),
            data_classification: self.classification.as_deref(),
            error: ending.error,
            format: self.format,
            generation_id: &self.generation_id,
            guardrails: self.guardrail.as_deref(),
            key_hash: self.key_hash.as_deref(),
            kind: "inference",
            moderation: &self.moderation,
            prompt_sha256: &self.prompt_sha256,
            refusal: self.refusal,
            requested_model: self.requested_model.as_deref(),
            requested_models: &self.plan.requested_models,
            routing: AuditRouting {
                attempts: self
                    .attempts
                    .iter()
                    .map(|a| AuditAttempt {
                        error: a.error.as_ref().map(|e| e.message.as_str()),
                        model: &a.model,
                        provider: &a.provider,
                        status: a.status,
                    })
                    .collect(),
                candidates: self
                    .plan
                    .candidates
                    .iter()
                    .map(|c| AuditEndpoint {
                        endpoint: &c.tag,
                        model: &c.model,
                        provider: &c.provider,
                        reason: None,
                    })
                    .collect(),
                excluded: self
                    .plan
                    .excluded
                    .iter()
                    .map(|x| AuditEndpoint {
                        endpoint: &x.tag,
                        model: &x.model,
                        provider: &x.provider,
                        reason: Some(&x.reason),
                    })
                    .collect(),
            },
            served: ending.served.map(|r| AuditServed {
                data_policy: AuditPolicy {
                    retains_prompts: r.provider.data_policy.retains_prompts,
                    retention_days: r.provider.data_policy.retention_days,
                    training: r.provider.data_policy.training,
                    zdr: r.provider.data_policy.zdr,
                },
                endpoint: &r.endpoint.tag,
                model: &r.model.id,
                provider: &r.provider.slug,
                upstream_model: &r.endpoint.upstream_model,
            }),
            session_id: self.attribution.session_id.as_deref(),
            status: ending.status,
            streamed: record.is_some_and(|r| r.streamed),
            time: self.created_ms,
            tokens: record.map(|r| AuditTokens {
                cached: r.tokens_cached,
                completion: r.tokens_completion,
                prompt: r.tokens_prompt,
                reasoning: r.tokens_reasoning,
            }),
            user: self.user.as_deref(),
        };
        serde_json::to_string(&body).unwrap_or_default()
    }
}

/// SHA-256 of the canonical JSON of a request's messages.
pub fn prompt_sha256(request: &switchyard_core::chat::ChatRequest) -> String {
    let messages = serde_json::to_value(&request.messages).unwrap_or(serde_json::Value::Null);
    audit::sha256_hex(audit::canonical_json(&messages).as_bytes())
}

/// An inference audit record. Its fields, and those of the parts below, are declared in the
/// byte order of their names, and embedded JSON is canonical already: serialized as is, the
/// record is canonical JSON (a test holds this).
#[derive(Serialize)]
struct AuditRecord<'a> {
    account_id: Option<&'a str>,
    anomaly: Option<&'static str>,
    app: AuditApp<'a>,
    cancelled: bool,
    completion_sha256: Option<&'a str>,
    cost: Option<String>,
    data_classification: Option<&'a str>,
    error: Option<&'a str>,
    format: &'static str,
    generation_id: &'a str,
    #[serde(serialize_with = "zero_or_one")]
    guardrails: Option<&'a RawValue>,
    key_hash: Option<&'a str>,
    kind: &'static str,
    moderation: &'a [crate::moderation::Outcome],
    prompt_sha256: &'a str,
    refusal: Option<&'static str>,
    requested_model: Option<&'a str>,
    requested_models: &'a [String],
    routing: AuditRouting<'a>,
    served: Option<AuditServed<'a>>,
    session_id: Option<&'a str>,
    status: u16,
    streamed: bool,
    time: i64,
    tokens: Option<AuditTokens>,
    user: Option<&'a str>,
}

/// `guardrails` is a list: empty, or the key's one guardrail.
fn zero_or_one<S: serde::Serializer>(
    value: &Option<&RawValue>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(value.iter())
}

#[derive(Serialize)]
struct AuditApp<'a> {
    http_referer: Option<&'a str>,
    title: Option<&'a str>,
}

#[derive(Serialize)]
struct AuditRouting<'a> {
    attempts: Vec<AuditAttempt<'a>>,
    candidates: Vec<AuditEndpoint<'a>>,
    excluded: Vec<AuditEndpoint<'a>>,
}

#[derive(Serialize)]
struct AuditAttempt<'a> {
    error: Option<&'a str>,
    model: &'a str,
    provider: &'a str,
    status: u16,
}

/// A candidate (no reason) or an excluded endpoint (with its reason).
#[derive(Serialize)]
struct AuditEndpoint<'a> {
    endpoint: &'a str,
    model: &'a str,
    provider: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

#[derive(Serialize)]
struct AuditServed<'a> {
    data_policy: AuditPolicy,
    endpoint: &'a str,
    model: &'a str,
    provider: &'a str,
    upstream_model: &'a str,
}

#[derive(Serialize)]
struct AuditPolicy {
    retains_prompts: bool,
    retention_days: Option<u32>,
    training: bool,
    zdr: bool,
}

#[derive(Serialize)]
struct AuditTokens {
    cached: u64,
    completion: u64,
    prompt: u64,
    reasoning: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use switchyard_core::routing::{Candidate, Exclusion};

    fn trail(guardrail: Option<Box<RawValue>>) -> Trail {
        let mut t = Trail::arrive(
            1_700_000_000_000,
            "messages",
            Attribution {
                http_referer: Some("https://app.example".into()),
                app_title: Some("App \"quoted\" é".into()),
                session_id: Some("s".into()),
                metadata: false,
                user_agent: Some("client/1.0".into()),
            },
        );
        t.account_id = Some("acct".into());
        t.key_hash = Some("abc".into());
        t.requested_model = Some("a/b".into());
        t.user = Some("u".into());
        t.prompt_sha256 = "f00d".into();
        t.classification = Some("confidential".into());
        t.guardrail = guardrail;
        t.plan = RoutePlan {
            candidates: vec![Candidate {
                model: "a/b".into(),
                endpoint: 0,
                provider: "p".into(),
                tag: "default".into(),
            }],
            excluded: vec![Exclusion {
                model: "a/b".into(),
                provider: "q".into(),
                tag: "default".into(),
                reason: "data_policy".into(),
            }],
            requested_models: vec!["a/b".into(), "c/d".into()],
            router: None,
        };
        t.attempts = vec![AttemptRecord {
            provider: "p".into(),
            model: "a/b".into(),
            status: 504,
            error: Some(UpstreamError::new(
                switchyard_core::error::UpstreamErrorKind::Timeout,
                None,
                "timeout",
            )),
        }];
        t
    }

    #[test]
    fn an_audit_record_serializes_as_canonical_json() {
        let guardrail =
            json!({"name": "g", "id": "gr-1", "findings": [{"rule": "email", "count": 2}]});
        let generation = GenerationRecord {
            cancelled: true,
            streamed: true,
            tokens_prompt: 3,
            tokens_completion: 2,
            ..GenerationRecord::default()
        };
        for with_guardrail in [true, false] {
            let raw = with_guardrail
                .then(|| RawValue::from_string(audit::canonical_json(&guardrail)).expect("raw"));
            let mut t = trail(raw);
            t.anomaly = with_guardrail.then_some("usage_exceeds_hold");
            t.refusal = with_guardrail.then_some("end_user_blocked");
            if with_guardrail {
                t.moderation = vec![crate::moderation::Outcome {
                    action: "block_and_strike",
                    auto_blocked: true,
                    categories: vec!["sexual/minors".into(), "violence".into()],
                    failure: None,
                    model: "omni-moderation-latest".into(),
                    provider: "openai".into(),
                    scores: [("violence".to_owned(), 0.912_5), ("hate".to_owned(), 1e-7)]
                        .into_iter()
                        .collect(),
                    stage: "request",
                    strikes: Some(3),
                }];
            }
            for ending in [
                Ending {
                    generation: Some(&generation),
                    status: 200,
                    completion_sha256: Some("c0ffee"),
                    ..Ending::default()
                },
                Ending {
                    status: 400,
                    error: Some("upstream said\nno"),
                    ..Ending::default()
                },
            ] {
                let text = t.record(&ending);
                let value: Value = serde_json::from_str(&text).expect("valid json");
                assert_eq!(text, audit::canonical_json(&value));
            }
        }
    }

    #[test]
    fn a_refusal_has_the_same_fields_as_a_served_request() {
        let served = trail(None).record(&Ending {
            status: 200,
            ..Ending::default()
        });
        let refused = Trail::arrive(1, "chat", Attribution::default()).record(&Ending {
            status: 401,
            error: Some("no key"),
            ..Ending::default()
        });
        let keys = |text: &str| -> Vec<String> {
            let v: Value = serde_json::from_str(text).expect("json");
            v.as_object().expect("object").keys().cloned().collect()
        };
        assert_eq!(keys(&served), keys(&refused));
        let v: Value = serde_json::from_str(&refused).expect("json");
        assert_eq!(
            v["routing"],
            json!({"attempts": [], "candidates": [], "excluded": []})
        );
        assert_eq!(v["guardrails"], json!([]));
        assert_eq!(v["key_hash"], Value::Null);
    }
}
