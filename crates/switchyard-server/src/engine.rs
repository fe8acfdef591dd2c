//! The request engine: plan, hold, attempt each candidate, answer (JSON or SSE), settle.
//!
//! Lifecycle of one chat request:
//! 1. `prepare`: parse and validate, plan the route, hold the most it can cost.
//! 2. `attempt`: send to each candidate in turn until one answers; retryable failures move on,
//!    a failure that is the request's own fault returns at once.
//! 3. Non-streamed: decode, render, settle in the background. Streamed: commit to SSE once a
//!    provider answered 2xx, forward chunks as they arrive, end with the usage chunk and
//!    `[DONE]`, or an error chunk if the provider breaks; settle what was produced.
//!
//! Invariant: no fallback after the first byte of content reached the client.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use rand::Rng;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use switchyard_core::audit;
use switchyard_core::catalog::{Catalog, Endpoint, Model, Provider};
use switchyard_core::chat::ChatRequest;
use switchyard_core::classification;
use switchyard_core::error::{UpstreamError, UpstreamErrorKind};
use switchyard_core::guard::{self, Screening};
use switchyard_core::money::Money;
use switchyard_core::pricing::{self, Usage};
use switchyard_core::routing::{self, Candidate, Policy, RouteContext, RouteError, RoutePlan};
use switchyard_formats::messages::{self as messages_api, StreamTranscoder};
use switchyard_providers::{codec_for, StreamEvent, Target};
use switchyard_store::{GenerationRecord, HoldRefused};
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::guardrails;
use crate::ledger::{Hold, HoldMode};
use crate::settings::AccountSettings;
use crate::state::{Authenticated, SharedState};

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
        }
    }
}

/// A new generation id: `gen-<unix seconds>-<20 random alphanumerics>`.
pub fn new_generation_id(now_ms: i64) -> String {
    let suffix: String = rand::thread_rng()
        .sample_iter(rand::distributions::Alphanumeric)
        .take(20)
        .map(char::from)
        .collect();
    format!("gen-{}-{suffix}", now_ms / 1000)
}

/// Releases a hold when dropped armed (the client went away, or a path forgot to settle).
struct HoldGuard {
    state: SharedState,
    hold: Hold,
    armed: bool,
}

impl HoldGuard {
    /// Settles the hold in the ledger (the recorder writes the same charge to the store); the
    /// hold id the store's settlement must release, when the hold is in the store.
    fn settle(&mut self, cost: Money, is_byok: bool, at_ms: i64) -> Option<String> {
        self.armed = false;
        self.state.ledger.settle(&self.hold, cost, is_byok, at_ms);
        (self.hold.mode == HoldMode::Database).then(|| self.hold.id.clone())
    }
}

impl Drop for HoldGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        self.state.ledger.release(&self.hold);
        if self.hold.mode == HoldMode::Memory {
            return;
        }
        let state = Arc::clone(&self.state);
        let id = std::mem::take(&mut self.hold.id);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let tasks = state.tasks.clone();
            tasks.spawn_on(
                async move {
                    if let Err(e) = state.store.release(&id).await {
                        tracing::error!(error = %e, generation_id = %id, "releasing a hold failed");
                    }
                },
                &handle,
            );
        }
    }
}

/// One attempt's outcome, for `previous_errors` and `openrouter_metadata`.
#[derive(Debug, Clone)]
struct AttemptRecord {
    provider: String,
    model: String,
    status: u16,
    error: Option<UpstreamError>,
}

/// Refuses the request when the key's guardrail budget for the current window is spent.
async fn check_guardrail_budget(
    state: &SharedState,
    g: &guardrails::Compiled,
    key: &Authenticated,
) -> Result<(), ApiError> {
    let (Some(limit), Some(interval)) =
        (g.guardrail.limit(), g.guardrail.reset_interval.as_deref())
    else {
        return Ok(());
    };
    // The key record may come from the cache: its spend is read fresh, from the ledger when it
    // keeps the key's spend in memory, else from the store.
    let now = state.now_ms();
    let (usage, byok) = match state.ledger.key_usage(&key.key.hash, now) {
        Some(u) => u,
        None => {
            let fresh = state.store.key(&key.key.hash, now).await?;
            let record = fresh.as_ref().unwrap_or(&key.key);
            (record.usage, record.byok_usage)
        }
    };
    let pick = |w: &switchyard_store::WindowUsage| match interval {
        "daily" => w.daily,
        "weekly" => w.weekly,
        _ => w.monthly,
    };
    let mut spent = pick(&usage);
    if g.guardrail.include_byok_in_budgets {
        spent = spent.saturating_add(pick(&byok));
    }
    if spent >= limit {
        return Err(ApiError::forbidden(format!(
            "Request blocked by guardrail {:?}: its {interval} budget of {limit} is spent ({spent} used)",
            g.guardrail.name
        ))
        .with_metadata("guardrail_id", json!(g.guardrail.id)));
    }
    Ok(())
}

/// Drops endpoints whose provider may train on prompts unless the account allows training for
/// that kind of endpoint (paid or free).
fn restrict_training(plan: &mut RoutePlan, catalog: &Catalog, settings: &AccountSettings) {
    if settings.allow_training_paid && settings.allow_training_free {
        return;
    }
    plan.exclude_where(|c| {
        let refused = resolve(catalog, c).is_some_and(|r| {
            let free = r.endpoint.pricing.prompt.amount.is_zero()
                && r.endpoint.pricing.completion.amount.is_zero();
            let allowed = if free {
                settings.allow_training_free
            } else {
                settings.allow_training_paid
            };
            r.provider.data_policy.training && !allowed
        });
        refused.then_some(routing::reasons::TRAINING)
    });
}

/// Header naming the data classification of a request's content.
pub const CLASSIFICATION_HEADER: &str = "x-switchyard-data-classification";

/// The API shape a client speaks: the request came in, and the answer goes out, in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenRouter / OpenAI chat completions.
    Chat,
    /// Anthropic Messages (`/api/v1/messages`).
    Messages,
}

impl Format {
    /// As the audit record names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Chat => "chat",
            Format::Messages => "messages",
        }
    }
}

/// Everything known about a request once it is planned and held.
struct Prepared {
    /// The guardrail applied and what its content rules found (no matched text), as the
    /// canonical JSON of its part of the audit record.
    guardrail: Option<Box<RawValue>>,
    format: Format,
    classification: Option<String>,
    settings: Arc<AccountSettings>,
    prompt_sha256: String,
    state: SharedState,
    key: Authenticated,
    request: Box<ChatRequest>,
    catalog: Arc<Catalog>,
    plan: RoutePlan,
    generation_id: String,
    attribution: Attribution,
    started: Instant,
    created: i64,
    created_ms: i64,
    hold: HoldGuard,
    attempts: Vec<AttemptRecord>,
}

/// A candidate resolved against the catalogue.
struct Resolved<'a> {
    model: &'a Model,
    endpoint: &'a Endpoint,
    provider: &'a Provider,
}

fn resolve<'a>(catalog: &'a Catalog, c: &Candidate) -> Option<Resolved<'a>> {
    let model = catalog.model(&c.model)?;
    let endpoint = model.endpoints.get(c.endpoint)?;
    let provider = catalog.provider(&endpoint.provider)?;
    Some(Resolved {
        model,
        endpoint,
        provider,
    })
}

fn route_error(err: RouteError) -> ApiError {
    match err {
        RouteError::NoModel | RouteError::InvalidPreference(_) => {
            ApiError::bad_request(err.to_string())
        }
        RouteError::ModelNotFound { model } => {
            let mut e = ApiError::bad_request(format!("{model} is not a valid model ID"));
            e.extra.insert(
                "availability".into(),
                json!({"code": "model_not_found", "retryable": false, "requested_models": [model]}),
            );
            e
        }
        RouteError::NoEndpoints {
            code,
            message,
            plan,
        } => {
            let mut e = ApiError::not_found(message);
            let excluded: Vec<Value> = plan
                .excluded
                .iter()
                .map(|x| json!({"reason": x.reason, "provider": x.provider, "endpoint": x.tag, "model": x.model}))
                .collect();
            let mut reasons: Vec<&str> = plan.excluded.iter().map(|x| x.reason.as_str()).collect();
            reasons.sort_unstable();
            reasons.dedup();
            e.extra.insert(
                "availability".into(),
                json!({
                    "code": code,
                    "retryable": false,
                    "requested_models": plan.requested_models,
                    "affected_providers": plan.excluded.iter().map(|x| x.provider.clone()).collect::<std::collections::BTreeSet<_>>(),
                    "excluded_by": reasons,
                    "excluded": excluded,
                }),
            );
            e
        }
    }
}

/// The 402 (or 401) a refused hold answers.
fn hold_refused(refused: HoldRefused) -> ApiError {
    let (message, needed, remaining) = match refused {
        HoldRefused::KeyLimit { needed, remaining } => (
            format!(
                "This request may cost up to {needed} but this key's limit has {remaining} left: raise the key's limit or request fewer max_tokens"
            ),
            needed,
            remaining,
        ),
        HoldRefused::Credits { needed, remaining } => (
            format!(
                "Insufficient credits: this request may cost up to {needed} and the account has {remaining} left. Add credits or request fewer max_tokens"
            ),
            needed,
            remaining,
        ),
        HoldRefused::Missing => return ApiError::unauthorized("Invalid API key: no such key"),
    };
    ApiError::new(402, message)
        .with_metadata("needed", needed.to_json_number())
        .with_metadata("remaining", remaining.to_json_number())
}

/// Parses, plans and holds. Errors are ready to send.
async fn prepare(
    state: SharedState,
    key: Authenticated,
    headers: &HeaderMap,
    mut request: Box<ChatRequest>,
    format: Format,
    prompt_sha256: String,
) -> Result<Prepared, ApiError> {
    let now = state.now_ms();
    let generation_id = new_generation_id(now);
    let mut attribution = Attribution::from_headers(headers);
    if request.session_id.is_some() {
        attribution.session_id.clone_from(&request.session_id);
    }
    let settings = state
        .settings
        .get(&state.store, &key.key.account_id)
        .await
        .map_err(|e| ApiError::from(e).with_generation(&generation_id))?;
    // The key's guardrail: budget, then content filters (which may redact the request).
    let guard = state
        .guardrails
        .for_key(&state.store, &key.key.hash)
        .await
        .map_err(|e| ApiError::from(e).with_generation(&generation_id))?;
    let mut findings = Vec::new();
    if let Some(g) = &guard {
        check_guardrail_budget(&state, g, &key)
            .await
            .map_err(|e| e.with_generation(&generation_id))?;
        match guard::screen(&mut request, &g.rules) {
            Screening::Blocked { rule, .. } => {
                return Err(ApiError::forbidden(format!(
                    "Request blocked by guardrail {:?}: the content matched rule {rule:?}",
                    g.guardrail.name
                ))
                .with_metadata("guardrail_id", json!(g.guardrail.id))
                .with_metadata("rule", json!(rule))
                .with_generation(&generation_id));
            }
            Screening::Allowed { findings: f, .. } => findings = f,
        }
    }
    let catalog = state.catalog();
    let session = request
        .session_id
        .clone()
        .or_else(|| attribution.session_id.clone());
    let context = RouteContext {
        sticky_provider: session.as_deref().and_then(|s| state.sessions.get(s, now)),
        random: rand::thread_rng().gen::<f64>(),
    };
    let health = state.health_snapshot();
    let requested_class = headers
        .get(CLASSIFICATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let classification = state
        .classifications
        .resolve(settings.data_classification.as_deref(), requested_class)
        .map_err(|m| ApiError::bad_request(m).with_generation(&generation_id))?;
    // Training is judged here, paid and free apart; the rest of the account policy in routing.
    let policy = Policy {
        deny_training: false,
        zdr_only: settings.zdr_only,
        allowed_providers: settings.allowed_providers.clone(),
        ignored_providers: settings.ignored_providers.clone(),
    };
    let mut plan = routing::plan(&request, &catalog, &health, &policy, &context)
        .map_err(|e| route_error(e).with_generation(&generation_id))?;
    restrict_training(&mut plan, &catalog, &settings);
    if plan.candidates.is_empty() {
        return Err(route_error(RouteError::NoEndpoints {
            code: "privacy_restricted",
            message: "No endpoint of the requested models satisfies this account's data policy (training is not allowed): see availability.excluded".to_owned(),
            plan: Box::new(plan),
        })
        .with_generation(&generation_id));
    }
    if let Some((name, c)) = classification {
        classification::restrict(&mut plan, &catalog, c);
        if plan.candidates.is_empty() {
            let message = format!(
                "No endpoint of the requested models is allowed for data classified {name:?}: see availability.excluded"
            );
            return Err(route_error(RouteError::NoEndpoints {
                code: "privacy_restricted",
                message,
                plan: Box::new(plan),
            })
            .with_generation(&generation_id));
        }
    }
    let classification = classification.map(|(name, _)| name.to_ascii_lowercase());
    if let Some(g) = &guard {
        guard::restrict(&mut plan, &catalog, &g.guardrail);
        if plan.candidates.is_empty() {
            let mut e = route_error(RouteError::NoEndpoints {
                code: "guardrail_restricted",
                message: format!(
                    "Request blocked by guardrail {:?}: no endpoint of the requested models is allowed (see availability.excluded)",
                    g.guardrail.name
                ),
                plan: Box::new(plan),
            });
            e.status = 403;
            return Err(e
                .with_metadata("guardrail_id", json!(g.guardrail.id))
                .with_generation(&generation_id));
        }
    }
    let guardrail_record = guard
        .as_ref()
        .map(|g| json!({"id": g.guardrail.id, "name": g.guardrail.name, "findings": findings}))
        .and_then(|v| RawValue::from_string(audit::canonical_json(&v)).ok());

    // Hold the most any candidate could cost; at least one pico-dollar, so that an account
    // without credits is refused even for free models.
    let prompt_bound = request.estimated_prompt_tokens().saturating_mul(2);
    let mut hold = Money::from_picos(1);
    for c in &plan.candidates {
        let Some(r) = resolve(&catalog, c) else {
            continue;
        };
        let room = r
            .endpoint
            .context_length
            .saturating_sub(request.estimated_prompt_tokens());
        let mut max_out = request
            .max_output_tokens()
            .unwrap_or_else(|| r.endpoint.max_completion_tokens.unwrap_or(room));
        if let Some(cap) = r.endpoint.max_completion_tokens {
            max_out = max_out.min(cap);
        }
        let cost = pricing::max_cost(prompt_bound, max_out, &r.endpoint.pricing)
            .ok_or_else(|| ApiError::bad_request("This request's maximum cost is out of range"))?;
        hold = hold.max(cost);
    }
    let held = state
        .ledger
        .hold(&state.store, &generation_id, &key.key, hold, now)
        .await
        .map_err(|e| ApiError::from(e).with_generation(&generation_id))?;
    let hold = held.map_err(|refused| hold_refused(refused).with_generation(&generation_id))?;
    Ok(Prepared {
        guardrail: guardrail_record,
        format,
        classification,
        settings,
        prompt_sha256,
        hold: HoldGuard {
            state: Arc::clone(&state),
            hold,
            armed: true,
        },
        state,
        key,
        request,
        catalog,
        plan,
        generation_id,
        attribution,
        started: Instant::now(),
        created: now / 1000,
        created_ms: now,
        attempts: Vec::new(),
    })
}

/// The upstream's answer headers, from the first candidate that answered 2xx.
struct Answer {
    candidate: Candidate,
    response: reqwest::Response,
}

impl Prepared {
    /// Tries the candidates in order until one answers 2xx.
    async fn attempt(&mut self) -> Result<Answer, ApiError> {
        let candidates = self.plan.candidates.clone();
        let mut last: Option<ApiError> = None;
        for candidate in candidates {
            let catalog = Arc::clone(&self.catalog);
            let Some(r) = resolve(&catalog, &candidate) else {
                continue;
            };
            // An endpoint whose circuit opened since the plan, or whose probe slot is taken,
            // is skipped.
            if !self
                .state
                .health
                .admit(&r.model.id, &r.endpoint.tag, self.state.now_ms())
            {
                last = Some(
                    ApiError::new(
                        503,
                        format!(
                            "{} is failing and temporarily not sent requests (circuit open); try again shortly",
                            r.provider.name
                        ),
                    )
                    .with_metadata("provider_name", json!(r.provider.name)),
                );
                continue;
            }
            let result = self.send(&r).await;
            let outcome = match &result {
                Ok(_) => "ok",
                Err(e) => e.error_type(),
            };
            metrics::counter!("switchyard_upstream_attempts_total",
                "provider" => r.provider.slug.clone(), "outcome" => outcome)
            .increment(1);
            match result {
                Ok(response) => {
                    self.attempts.push(AttemptRecord {
                        provider: r.provider.slug.clone(),
                        model: r.model.id.clone(),
                        status: response.status().as_u16(),
                        error: None,
                    });
                    return Ok(Answer {
                        candidate,
                        response,
                    });
                }
                Err(err) => {
                    tracing::warn!(
                        generation_id = %self.generation_id,
                        provider = %r.provider.slug,
                        kind = ?err.kind,
                        status = ?err.status,
                        "upstream attempt failed"
                    );
                    self.attempts.push(AttemptRecord {
                        provider: r.provider.slug.clone(),
                        model: r.model.id.clone(),
                        status: err.status.unwrap_or(err.client_status()),
                        error: Some(err.clone()),
                    });
                    if err.retryable() || err.kind == UpstreamErrorKind::ProviderAuth {
                        self.state.record_failure(&r.model.id, &r.endpoint.tag);
                    }
                    let api = ApiError::upstream(&err, &r.provider.name);
                    if !err.retryable() {
                        return Err(self.finish_error(api));
                    }
                    last = Some(api);
                }
            }
        }
        let e = last.unwrap_or_else(|| ApiError::new(502, "No provider could serve this request"));
        Err(self.finish_error(e))
    }

    fn finish_error(&self, mut e: ApiError) -> ApiError {
        let previous: Vec<Value> = self
            .attempts
            .iter()
            .filter(|a| a.error.is_some())
            .map(|a| {
                json!({
                    "provider": a.provider,
                    "model": a.model,
                    "status": a.status,
                    "code": a.error.as_ref().map(|e| e.client_status()),
                    "message": a.error.as_ref().map(|e| e.message.clone()),
                })
            })
            .collect();
        if previous.len() > 1 {
            e = e.with_metadata("previous_errors", Value::Array(previous));
        }
        e.with_generation(&self.generation_id)
    }

    /// One upstream request; any non-2xx answer becomes an [`UpstreamError`].
    async fn send(&self, r: &Resolved<'_>) -> Result<reqwest::Response, UpstreamError> {
        let codec = codec_for(r.provider.kind).ok_or_else(|| {
            UpstreamError::new(
                UpstreamErrorKind::Server,
                None,
                format!(
                    "Provider kind {} is not supported by this build",
                    r.provider.kind.as_str()
                ),
            )
        })?;
        let api_key = match &r.provider.api_key_env {
            Some(env) => Some(self.state.secrets.get(env).map(String::as_str).ok_or_else(
                || {
                    UpstreamError::new(
                        UpstreamErrorKind::ProviderAuth,
                        None,
                        format!(
                            "{} has no provider key configured (set {env})",
                            r.provider.name
                        ),
                    )
                },
            )?),
            None => None,
        };
        let target = Target {
            provider: r.provider,
            endpoint: r.endpoint,
            api_key,
        };
        let upstream = codec
            .encode(&self.request, &target)
            .map_err(|e| UpstreamError::new(UpstreamErrorKind::InvalidRequest, Some(400), e.0))?;
        let sent = Instant::now();
        let mut builder = match self.state.upstream_url(&upstream.url) {
            Some(url) => self.state.http().post(url),
            None => self.state.http().post(&upstream.url),
        }
        .body(upstream.body);
        for (name, value) in &upstream.headers {
            builder = builder.header(name, value);
        }
        let timeout = self.state.config.server.upstream_timeout();
        let response = tokio::time::timeout(timeout, builder.send())
            .await
            .map_err(|_| {
                UpstreamError::new(
                    UpstreamErrorKind::Timeout,
                    None,
                    format!(
                        "{} did not answer within {}s",
                        r.provider.name,
                        timeout.as_secs_f64()
                    ),
                )
            })?
            .map_err(|e| transport_error(&e, &r.provider.name))?;
        metrics::histogram!("switchyard_upstream_duration_seconds", "provider" => r.provider.slug.clone())
            .record(sent.elapsed().as_secs_f64());
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let body = read_limited(response, timeout).await.unwrap_or_default();
        Err(codec.decode_error(status, &body))
    }

    fn usage_json(&self, usage: &Usage, cost: &pricing::Cost, is_byok: bool) -> Value {
        serde_json::to_value(UsageOut::new(usage, cost, is_byok)).unwrap_or(Value::Null)
    }

    fn metadata_json(&self, selected: Option<&Candidate>) -> Value {
        let available: Vec<Value> = self
            .plan
            .candidates
            .iter()
            .map(|c| json!({"provider": c.provider, "endpoint": c.tag, "model": c.model, "selected": Some(c) == selected}))
            .collect();
        let excluded: Vec<Value> = self
            .plan
            .excluded
            .iter()
            .map(|x| json!({"provider": x.provider, "endpoint": x.tag, "model": x.model, "reason": x.reason}))
            .collect();
        let attempts: Vec<Value> = self
            .attempts
            .iter()
            .map(|a| json!({"provider": a.provider, "model": a.model, "status": a.status}))
            .collect();
        json!({
            "requested": self.request.model,
            "strategy": if self.plan.requested_models.len() > 1 { "fallback" } else { "direct" },
            "attempt": self.attempts.len(),
            "is_byok": selected.and_then(|c| self.catalog.provider(&c.provider)).is_some_and(|p| p.byok),
            "endpoints": {
                "total": self.plan.candidates.len() + self.plan.excluded.len(),
                "available": available,
                "excluded": excluded,
            },
            "attempts": attempts,
            "generation_time": u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    }

    /// Queues the generation's settlement (exact cost, hold released) and its audit record;
    /// the recorder writes both off the request path.
    fn settle(
        &mut self,
        record: GenerationRecord,
        served: &Resolved<'_>,
        completion_sha256: Option<String>,
    ) {
        let hold_id = self
            .hold
            .settle(record.cost, record.is_byok, record.created_at);
        let provider = served.provider.slug.clone();
        metrics::counter!("switchyard_tokens_total", "provider" => provider.clone(), "kind" => "prompt")
            .increment(record.tokens_prompt);
        metrics::counter!("switchyard_tokens_total", "provider" => provider.clone(), "kind" => "completion")
            .increment(record.tokens_completion);
        metrics::counter!("switchyard_cost_picodollars_total", "provider" => provider)
            .increment(u64::try_from(record.cost.picos()).unwrap_or(0));
        let error = record.error_message.clone();
        let body = self.audit_body(
            Some(served),
            Some(&record),
            record.status,
            error.as_deref(),
            completion_sha256,
        );
        self.state.recorder.settle(record, hold_id);
        self.state.recorder.audit(
            self.state.now_ms(),
            &self.generation_id,
            Some(&self.key.key.account_id),
            body,
        );
    }

    /// Records a served attempt's performance, and the session's provider for sticky routing.
    fn record_success(&self, r: &Resolved<'_>, ttft: Option<Duration>, completion_tokens: u64) {
        let now = self.state.now_ms();
        let total = self.started.elapsed();
        let ttft_ms = ttft.map(|d| d.as_secs_f64() * 1000.0);
        let generating = total.saturating_sub(ttft.unwrap_or_default()).as_secs_f64();
        let tps = (completion_tokens > 0 && generating > 0.0)
            .then(|| completion_tokens as f64 / generating);
        self.state
            .health
            .record_success(&r.model.id, &r.endpoint.tag, now, ttft_ms, tps);
        if let Some(session) = self
            .request
            .session_id
            .as_deref()
            .or(self.attribution.session_id.as_deref())
        {
            self.state.sessions.record(session, &r.provider.slug, now);
        }
    }

    /// Logs the prompt and the completion, encrypted, when the account opted in and a content
    /// key is configured.
    fn log_content(&self, output: Value) {
        if !self.settings.prompt_logging {
            return;
        }
        let Some(cipher) = &self.state.content_cipher else {
            return;
        };
        let document = json!({
            "input": {"messages": self.request.messages},
            "output": output,
        });
        let Ok(plain) = serde_json::to_vec(&document) else {
            return;
        };
        if let Some((nonce, ciphertext)) = cipher.encrypt(&self.generation_id, &plain) {
            self.state.recorder.content(switchyard_store::ContentRow {
                id: self.generation_id.clone(),
                account_id: self.key.key.account_id.clone(),
                created_at: self.created_ms,
                nonce,
                ciphertext,
            });
        }
    }

    /// Audits a request that ended without being served (the hold guard releases its hold).
    fn audit_failure(&self, e: &ApiError) {
        let body = self.audit_body(None, None, e.status, Some(&e.message), None);
        self.state.recorder.audit(
            self.state.now_ms(),
            &self.generation_id,
            Some(&self.key.key.account_id),
            body,
        );
    }

    /// The audit record: metadata, routing decision and hashes; never prompt or completion text.
    /// Canonical JSON, written straight from borrowed fields.
    fn audit_body(
        &self,
        served: Option<&Resolved<'_>>,
        record: Option<&GenerationRecord>,
        status: u16,
        error: Option<&str>,
        completion_sha256: Option<String>,
    ) -> String {
        let body = AuditRecord {
            account_id: &self.key.key.account_id,
            app: AuditApp {
                http_referer: self.attribution.http_referer.as_deref(),
                title: self.attribution.app_title.as_deref(),
            },
            cancelled: record.is_some_and(|r| r.cancelled),
            completion_sha256: completion_sha256.as_deref(),
            cost: record.map(|r| r.cost.to_usd().to_string()),
            data_classification: self.classification.as_deref(),
            error,
            format: self.format.as_str(),
            generation_id: &self.generation_id,
            guardrails: self.guardrail.as_deref(),
            key_hash: &self.key.key.hash,
            kind: "inference",
            prompt_sha256: &self.prompt_sha256,
            requested_model: self.request.model.as_deref(),
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
            served: served.map(|r| AuditServed {
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
            status,
            streamed: record.is_some_and(|r| r.streamed),
            time: self.created_ms,
            tokens: record.map(|r| AuditTokens {
                cached: r.tokens_cached,
                completion: r.tokens_completion,
                prompt: r.tokens_prompt,
                reasoning: r.tokens_reasoning,
            }),
            user: self.request.user.as_deref(),
        };
        serde_json::to_string(&body).unwrap_or_default()
    }

    fn record(&self, r: &Resolved<'_>, usage: &Usage, cost: Money) -> GenerationRecord {
        GenerationRecord {
            id: self.generation_id.clone(),
            account_id: self.key.key.account_id.clone(),
            key_hash: self.key.key.hash.clone(),
            created_at: self.created * 1000,
            model: r.model.id.clone(),
            provider_slug: r.provider.slug.clone(),
            provider_name: r.provider.name.clone(),
            tokens_prompt: usage.prompt_tokens,
            tokens_completion: usage.completion_tokens,
            tokens_reasoning: usage.reasoning_tokens,
            tokens_cached: usage.cached_tokens,
            cost,
            is_byok: r.provider.byok,
            generation_time_ms: i64::try_from(self.started.elapsed().as_millis()).ok(),
            http_referer: self.attribution.http_referer.clone(),
            app_title: self.attribution.app_title.clone(),
            end_user: self.request.user.clone(),
            session_id: self.attribution.session_id.clone(),
            status: 200,
            ..GenerationRecord::default()
        }
    }
}

/// One chunk of a stream as the client receives it.
#[derive(Clone, Copy, Serialize)]
struct ChunkOut<'a> {
    id: &'a str,
    object: &'static str,
    created: i64,
    model: &'a str,
    provider: &'a str,
    choices: &'a [Value],
}

/// A non-streamed chat completion as the client receives it.
#[derive(Serialize)]
struct CompletionOut<'a> {
    id: &'a str,
    object: &'static str,
    created: i64,
    model: &'a str,
    provider: &'a str,
    system_fingerprint: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_tier: Option<&'a Value>,
    choices: &'a [Value],
    usage: UsageOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    openrouter_metadata: Option<&'a Value>,
}

/// The contract's `usage` object: counts, and the cost in USD credits.
#[derive(Serialize)]
struct UsageOut {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    cost: Value,
    is_byok: bool,
    prompt_tokens_details: PromptDetails,
    completion_tokens_details: CompletionDetails,
    cost_details: CostDetails,
}

#[derive(Serialize)]
struct PromptDetails {
    cached_tokens: u64,
    cache_write_tokens: u64,
    audio_tokens: u64,
}

#[derive(Serialize)]
struct CompletionDetails {
    reasoning_tokens: u64,
}

#[derive(Serialize)]
struct CostDetails {
    upstream_inference_cost: Value,
    upstream_inference_prompt_cost: Value,
    upstream_inference_completions_cost: Value,
}

impl UsageOut {
    fn new(usage: &Usage, cost: &pricing::Cost, is_byok: bool) -> UsageOut {
        UsageOut {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: usage.total_tokens(),
            cost: cost.total.to_json_number(),
            is_byok,
            prompt_tokens_details: PromptDetails {
                cached_tokens: usage.cached_tokens,
                cache_write_tokens: usage.cache_write_tokens,
                audio_tokens: usage.audio_prompt_tokens,
            },
            completion_tokens_details: CompletionDetails {
                reasoning_tokens: usage.reasoning_tokens,
            },
            cost_details: CostDetails {
                upstream_inference_cost: if is_byok {
                    cost.total.to_json_number()
                } else {
                    Value::Null
                },
                upstream_inference_prompt_cost: cost.prompt.to_json_number(),
                upstream_inference_completions_cost: cost.completion.to_json_number(),
            },
        }
    }
}

/// An inference audit record. Its fields, and those of the parts below, are declared in the
/// byte order of their names, and embedded JSON is canonical already: serialized as is, the
/// record is canonical JSON (a test holds this).
#[derive(Serialize)]
struct AuditRecord<'a> {
    account_id: &'a str,
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
    key_hash: &'a str,
    kind: &'static str,
    prompt_sha256: &'a str,
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

fn transport_error(err: &reqwest::Error, provider: &str) -> UpstreamError {
    if err.is_timeout() {
        UpstreamError::new(
            UpstreamErrorKind::Timeout,
            None,
            format!("{provider} timed out"),
        )
    } else {
        UpstreamError::new(
            UpstreamErrorKind::Connection,
            None,
            format!("Could not reach {provider}: connection failed"),
        )
    }
}

/// Reads a whole upstream body (error bodies, non-streamed answers) within the timeout.
async fn read_limited(
    response: reqwest::Response,
    timeout: Duration,
) -> Result<Bytes, UpstreamError> {
    match tokio::time::timeout(timeout, response.bytes()).await {
        Err(_) => Err(UpstreamError::new(
            UpstreamErrorKind::Timeout,
            None,
            "The provider stopped sending its answer",
        )),
        Ok(Err(e)) => Err(transport_error(&e, "the provider")),
        Ok(Ok(bytes)) => Ok(bytes),
    }
}

/// Estimates the completion tokens of text that was produced, when the provider did not say.
fn estimate_tokens(chars: usize) -> u64 {
    chars.div_ceil(4) as u64
}

fn with_generation_header(mut response: Response, id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert("x-generation-id", value);
    }
    response
}

/// `POST /api/v1/chat/completions`.
pub async fn chat_completions(
    state: SharedState,
    key: Authenticated,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if let Err(e) = key.require_standard() {
        audit_refusal(&state, Some(&key), &headers, None, &body, &e, Format::Chat);
        return Err(e);
    }
    let request = match ChatRequest::from_json(&body) {
        Ok(r) => Box::new(r),
        Err(e) => {
            let e = ApiError::bad_request(e.0);
            audit_refusal(&state, Some(&key), &headers, None, &body, &e, Format::Chat);
            return Err(e);
        }
    };
    run(state, key, headers, request, Format::Chat).await
}

/// SHA-256 of the canonical JSON of a request's messages.
pub fn prompt_sha256(request: &ChatRequest) -> String {
    let messages = serde_json::to_value(&request.messages).unwrap_or(Value::Null);
    audit::sha256_hex(audit::canonical_json(&messages).as_bytes())
}

/// What an audit record of a refusal keeps of the request.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts {
    /// Requested model.
    pub model: Option<String>,
    /// End user.
    pub user: Option<String>,
    /// Session id.
    pub session_id: Option<String>,
    /// SHA-256 of the canonical messages.
    pub prompt_sha256: String,
}

impl RequestFacts {
    /// The facts of a parsed request.
    pub fn of(request: &ChatRequest) -> RequestFacts {
        RequestFacts {
            model: request.model.clone(),
            user: request.user.clone(),
            session_id: request.session_id.clone(),
            prompt_sha256: prompt_sha256(request),
        }
    }
}

/// Audits a request refused before it was planned and held: bad key, bad body, no route,
/// no credits. `request` is the parsed request when parsing got that far; otherwise the raw
/// body's hash stands for the prompt.
pub fn audit_refusal(
    state: &SharedState,
    key: Option<&Authenticated>,
    headers: &HeaderMap,
    request: Option<&RequestFacts>,
    body: &[u8],
    e: &ApiError,
    format: Format,
) {
    let now = state.now_ms();
    let generation_id = e
        .generation_id
        .clone()
        .unwrap_or_else(|| new_generation_id(now));
    let attribution = Attribution::from_headers(headers);
    let body = json!({
        "kind": "inference",
        "time": now,
        "generation_id": generation_id,
        "account_id": key.map(|k| k.key.account_id.clone()),
        "key_hash": key.map(|k| k.key.hash.clone()),
        "user": request.and_then(|r| r.user.clone()),
        "session_id": request.and_then(|r| r.session_id.clone()).or(attribution.session_id),
        "app": {"http_referer": attribution.http_referer, "title": attribution.app_title},
        "format": format.as_str(),
        "requested_model": request.and_then(|r| r.model.clone()),
        "served": Value::Null,
        "guardrails": [],
        "data_classification": headers.get(CLASSIFICATION_HEADER).and_then(|v| v.to_str().ok()),
        "routing": e.metadata.as_ref().and_then(|m| m.get("excluded_by")).cloned(),
        "prompt_sha256": match request {
            Some(r) => r.prompt_sha256.clone(),
            None => audit::sha256_hex(body),
        },
        "completion_sha256": Value::Null,
        "status": e.status,
        "error": e.message,
    });
    state.recorder.audit(
        now,
        &generation_id,
        key.map(|k| k.key.account_id.as_str()),
        audit::canonical_json(&body),
    );
}

/// Runs a parsed request to its answer, in the client's format.
pub async fn run(
    state: SharedState,
    key: Authenticated,
    headers: HeaderMap,
    request: Box<ChatRequest>,
    format: Format,
) -> Result<Response, ApiError> {
    let facts = RequestFacts::of(&request);
    let (audit_state, audit_key) = (Arc::clone(&state), key.clone());
    let prompt = facts.prompt_sha256.clone();
    // The stages are boxed: each is a large state machine, and nested inline they would make
    // this future (moved by every layer of the server) several times larger.
    let mut prepared = match Box::pin(prepare(state, key, &headers, request, format, prompt)).await
    {
        Ok(p) => p,
        Err(e) => {
            audit_refusal(
                &audit_state,
                Some(&audit_key),
                &headers,
                Some(&facts),
                &[],
                &e,
                format,
            );
            return Err(e);
        }
    };
    if prepared.request.is_stream() {
        Box::pin(stream(prepared)).await
    } else {
        let answer = match Box::pin(prepared.attempt()).await {
            Ok(a) => a,
            Err(e) => {
                prepared.audit_failure(&e);
                return Err(e);
            }
        };
        Box::pin(complete(prepared, answer)).await
    }
}

async fn complete(mut p: Prepared, answer: Answer) -> Result<Response, ApiError> {
    let catalog = Arc::clone(&p.catalog);
    let r = resolve(&catalog, &answer.candidate)
        .ok_or_else(|| ApiError::new(500, "Internal Server Error"))?;
    let codec =
        codec_for(r.provider.kind).ok_or_else(|| ApiError::new(500, "Internal Server Error"))?;
    let latency = p.started.elapsed();
    let body = read_limited(answer.response, p.state.config.server.upstream_timeout())
        .await
        .and_then(|b| codec.decode(&b));
    let completion = match body {
        Ok(c) => c,
        Err(err) => {
            // Nothing reached the client: the hold guard releases the hold.
            p.state.record_failure(&r.model.id, &r.endpoint.tag);
            let e = p.finish_error(ApiError::upstream(&err, &r.provider.name));
            p.audit_failure(&e);
            return Err(e);
        }
    };
    let usage = completion.usage.unwrap_or_else(|| {
        let chars: usize = completion
            .choices
            .iter()
            .filter_map(|c| c.get("message"))
            .map(|m| serde_json::to_string(m).map_or(0, |s| s.len()))
            .sum();
        Usage {
            prompt_tokens: p.request.estimated_prompt_tokens(),
            completion_tokens: estimate_tokens(chars),
            ..Usage::default()
        }
    });
    let cost = pricing::cost(&usage, &r.endpoint.pricing).unwrap_or_default();
    p.record_success(&r, Some(latency), usage.completion_tokens);
    let metadata = p
        .attribution
        .metadata
        .then(|| p.metadata_json(Some(&answer.candidate)));
    let out = CompletionOut {
        id: &p.generation_id,
        object: "chat.completion",
        created: p.created,
        model: &r.model.id,
        provider: &r.provider.name,
        system_fingerprint: completion.system_fingerprint.as_ref(),
        service_tier: completion.service_tier.as_ref(),
        choices: &completion.choices,
        usage: UsageOut::new(&usage, &cost, r.provider.byok),
        openrouter_metadata: metadata.as_ref(),
    };
    let response = match p.format {
        Format::Chat => match serde_json::to_vec(&out) {
            Ok(body) => (
                StatusCode::OK,
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response(),
            Err(e) => return Err(ApiError::internal(&e)),
        },
        Format::Messages => {
            let value = serde_json::to_value(&out).map_err(|e| ApiError::internal(&e))?;
            (
                StatusCode::OK,
                axum::Json(messages_api::response_from_chat(&value)),
            )
                .into_response()
        }
    };
    let response = with_generation_header(response, &p.generation_id);
    // The settlement and the audit record are built after the answer is on its way: the hold
    // guard keeps the hold until then, and shutdown waits for the task.
    let tasks = p.state.tasks.clone();
    let candidate = answer.candidate;
    tasks.spawn(async move {
        let Some(r) = resolve(&catalog, &candidate) else {
            return;
        };
        let first = completion.choices.first();
        let text_of = |field: &str| {
            first
                .and_then(|c| c.get(field))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let mut record = p.record(&r, &usage, cost.total);
        record.upstream_id = completion.upstream_id.clone();
        record.latency_ms = i64::try_from(latency.as_millis()).ok();
        record.finish_reason = text_of("finish_reason");
        record.native_finish_reason = text_of("native_finish_reason");
        let message = first.and_then(|c| c.get("message"));
        p.log_content(message.cloned().unwrap_or(Value::Null));
        let completion_text = message
            .and_then(|m| m.get("content"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let completion_sha256 = audit::sha256_hex(completion_text.as_bytes());
        p.settle(record, &r, Some(completion_sha256));
    });
    Ok(response)
}

const KEEPALIVE: &[u8] = b": OPENROUTER PROCESSING\n\n";

/// The most of a stream gathered for one write to the client.
const COALESCE_MAX: usize = 64 * 1024;

/// Frames the canonical stream in the client's format.
enum Framer {
    /// OpenRouter SSE: chunk objects, a usage chunk, `[DONE]`.
    Chat,
    /// Anthropic's typed events; `started` once `message_start` went out.
    Messages {
        transcoder: Box<StreamTranscoder>,
        started: bool,
    },
}

impl Framer {
    fn new(format: Format, id: &str, model: &str) -> Self {
        match format {
            Format::Chat => Framer::Chat,
            Format::Messages => Framer::Messages {
                transcoder: Box::new(StreamTranscoder::new(id, model)),
                started: false,
            },
        }
    }

    fn events(events: &[messages_api::Event]) -> Bytes {
        let mut out = Vec::with_capacity(256 * events.len());
        for e in events {
            out.extend_from_slice(&messages_api::frame(e));
        }
        Bytes::from(out)
    }

    /// Sent while waiting; Anthropic clients get `message_start` first, then pings.
    fn keepalive(&mut self) -> Bytes {
        match self {
            Framer::Chat => Bytes::from_static(KEEPALIVE),
            Framer::Messages {
                transcoder,
                started,
            } => {
                if *started {
                    Self::events(&[("ping", json!({"type": "ping"}))])
                } else {
                    *started = true;
                    Self::events(&[transcoder.start()])
                }
            }
        }
    }

    fn chunk(&mut self, chunk: &ChunkOut<'_>) -> Option<Bytes> {
        match self {
            Framer::Chat => Some(sse(chunk)),
            Framer::Messages {
                transcoder,
                started,
            } => {
                let mut events = Vec::new();
                if !std::mem::replace(started, true) {
                    events.push(transcoder.start());
                }
                let chunk = serde_json::to_value(chunk).unwrap_or(Value::Null);
                events.extend(transcoder.chunk(&chunk));
                (!events.is_empty()).then(|| Self::events(&events))
            }
        }
    }

    /// The end of a successful stream; `last` is the usage chunk.
    fn done(&mut self, last: &Value) -> Bytes {
        match self {
            Framer::Chat => {
                let mut out = sse(last).to_vec();
                out.extend_from_slice(b"data: [DONE]\n\n");
                Bytes::from(out)
            }
            Framer::Messages {
                transcoder,
                started,
            } => {
                let mut events = Vec::new();
                if !std::mem::replace(started, true) {
                    events.push(transcoder.start());
                }
                events.extend(transcoder.finish(last.get("usage").unwrap_or(&Value::Null)));
                Self::events(&events)
            }
        }
    }

    /// A failure after the stream started; `chunk` is the contract's error chunk.
    fn failed(&mut self, chunk: &Value, err: &UpstreamError) -> Bytes {
        match self {
            Framer::Chat => sse(chunk),
            Framer::Messages { transcoder, .. } => {
                Self::events(&transcoder.error(err.client_status(), &err.message))
            }
        }
    }
}

async fn stream(mut p: Prepared) -> Result<Response, ApiError> {
    let answer = match p.attempt().await {
        Ok(a) => a,
        Err(e) => {
            p.audit_failure(&e);
            return Err(e);
        }
    };
    let (tx, mut rx) = mpsc::channel::<Bytes>(64);
    let generation_id = p.generation_id.clone();
    let tasks = p.state.tasks.clone();
    tasks.spawn(pump(p, answer, tx));
    let body = Body::from_stream(futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|o| o.map(Ok::<Bytes, std::convert::Infallible>))
    }));
    let response = Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .header("x-accel-buffering", "no")
        .body(body)
        .map_err(|e| ApiError::internal(&e))?;
    Ok(with_generation_header(response, &generation_id))
}

fn sse<T: Serialize + ?Sized>(value: &T) -> Bytes {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"data: ");
    if serde_json::to_writer(&mut out, value).is_err() {
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// How a stream ended.
enum End {
    /// The provider finished.
    Done,
    /// The client went away.
    Cancelled,
    /// The provider failed.
    Failed(UpstreamError),
}

/// Forwards one upstream stream to the client, then settles.
async fn pump(mut p: Prepared, answer: Answer, tx: mpsc::Sender<Bytes>) {
    let catalog = Arc::clone(&p.catalog);
    let Some(r) = resolve(&catalog, &answer.candidate) else {
        return;
    };
    let Some(codec) = codec_for(r.provider.kind) else {
        return;
    };
    let config = p.state.config.server.clone();
    let mut decoder = codec.stream_decoder();
    let mut upstream = answer.response.bytes_stream();
    let mut usage: Option<Usage> = None;
    let mut upstream_id: Option<String> = None;
    let mut finish: Option<(Option<String>, Option<String>)> = None;
    let mut produced_chars = 0usize;
    let mut completion_hash = Sha256::new();
    let mut logged: Option<String> =
        (p.settings.prompt_logging && p.state.content_cipher.is_some()).then(String::new);
    let mut first_byte: Option<Duration> = None;
    let mut framer = Framer::new(p.format, &p.generation_id, &r.model.id);
    let active = metrics::gauge!("switchyard_active_streams");
    active.increment(1.0);
    let generation_id = p.generation_id.clone();
    let head = ChunkOut {
        id: &generation_id,
        object: "chat.completion.chunk",
        created: p.created,
        model: &r.model.id,
        provider: &r.provider.name,
        choices: &[],
    };

    let mut keepalive = tokio::time::interval(config.keepalive());
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick fires at once: the client sees a comment before the first token.
    // The frames made from one upstream read go to the client in one write, as soon as the read
    // is decoded; the last of them leave with the stream's final frames.
    let mut pending: Vec<u8> = Vec::new();
    // A piece of the upstream body that was already there when the last was decoded.
    let mut ready = None;
    let end = 'outer: loop {
        let next = if let Some(piece) = ready.take() {
            Ok(piece)
        } else {
            tokio::select! {
                biased;
                () = tx.closed() => break End::Cancelled,
                _ = keepalive.tick() => {
                    if tx.send(framer.keepalive()).await.is_err() {
                        break End::Cancelled;
                    }
                    continue;
                }
                next = tokio::time::timeout(config.stream_idle_timeout(), upstream.next()) => next,
            }
        };
        let eof = matches!(next, Ok(None));
        let events = match next {
            Err(_) => {
                break End::Failed(UpstreamError::new(
                    UpstreamErrorKind::Timeout,
                    Some(504),
                    format!(
                        "{} stopped sending for {}s",
                        r.provider.name, config.stream_idle_timeout_secs
                    ),
                ))
            }
            Ok(None) => decoder.finish(),
            Ok(Some(Err(e))) => break End::Failed(transport_error(&e, &r.provider.name)),
            Ok(Some(Ok(bytes))) => decoder.feed(&bytes),
        };
        for event in events {
            match event {
                StreamEvent::Chunk {
                    upstream_id: id,
                    choices,
                    usage: u,
                } => {
                    if upstream_id.is_none() {
                        upstream_id = id;
                    }
                    if u.is_some() {
                        usage = u;
                    }
                    if choices.is_empty() {
                        continue;
                    }
                    for c in &choices {
                        if let Some(delta) = c.get("delta") {
                            for field in ["content", "reasoning", "refusal"] {
                                produced_chars +=
                                    delta.get(field).and_then(Value::as_str).map_or(0, str::len);
                            }
                            if let Some(text) = delta.get("content").and_then(Value::as_str) {
                                completion_hash.update(text.as_bytes());
                                if let Some(log) = logged.as_mut() {
                                    log.push_str(text);
                                }
                            }
                            if let Some(calls) = delta.get("tool_calls") {
                                produced_chars += calls.to_string().len();
                            }
                        }
                        if let Some(reason) = c.get("finish_reason").and_then(Value::as_str) {
                            let native = c
                                .get("native_finish_reason")
                                .and_then(Value::as_str)
                                .map(str::to_owned);
                            finish = Some((Some(reason.to_owned()), native));
                        }
                    }
                    first_byte.get_or_insert_with(|| p.started.elapsed());
                    if let Some(bytes) = framer.chunk(&ChunkOut {
                        choices: &choices,
                        ..head
                    }) {
                        pending.extend_from_slice(&bytes);
                    }
                    keepalive.reset();
                }
                StreamEvent::Error(e) => break 'outer End::Failed(e),
                StreamEvent::Done => break 'outer End::Done,
            }
        }
        // The HTTP client hands the body over one chunk at a time, even when one read brought
        // several (a provider writing its events in a burst): once its task has run, whatever
        // it already holds joins this write, so a burst leaves in one write, not one each.
        // Nothing waits for bytes that have not arrived.
        if !eof && !pending.is_empty() && pending.len() < COALESCE_MAX {
            tokio::task::yield_now().await;
            if let Some(piece) = upstream.next().now_or_never() {
                ready = Some(piece);
                continue;
            }
        }
        if !pending.is_empty()
            && tx
                .send(Bytes::from(std::mem::take(&mut pending)))
                .await
                .is_err()
        {
            break End::Cancelled;
        }
        if eof {
            // Some servers close without `[DONE]`: that is a normal end once a finish reason came.
            break if finish.is_some() {
                End::Done
            } else {
                End::Failed(UpstreamError::new(
                    UpstreamErrorKind::Connection,
                    Some(502),
                    format!("{} closed the stream before finishing", r.provider.name),
                ))
            };
        }
    };
    drop(upstream);
    active.decrement(1.0);

    // Billed for what was produced: the provider's count, else an estimate from the text
    // forwarded; a stream that produced nothing and reported nothing costs nothing.
    let usage = match usage {
        Some(u) => u,
        None if first_byte.is_some() => Usage {
            prompt_tokens: p.request.estimated_prompt_tokens(),
            completion_tokens: estimate_tokens(produced_chars),
            ..Usage::default()
        },
        None => Usage::default(),
    };
    let cost = pricing::cost(&usage, &r.endpoint.pricing).unwrap_or_default();
    let mut record = p.record(&r, &usage, cost.total);
    record.streamed = true;
    record.upstream_id = upstream_id;
    record.latency_ms = first_byte.and_then(|d| i64::try_from(d.as_millis()).ok());
    if let Some((reason, native)) = finish {
        record.finish_reason = reason;
        record.native_finish_reason = native;
    }
    match &end {
        End::Done => p.record_success(&r, first_byte, usage.completion_tokens),
        End::Failed(_) => p.state.record_failure(&r.model.id, &r.endpoint.tag),
        End::Cancelled => {}
    }
    match end {
        End::Done => {
            let mut last = serde_json::to_value(head).unwrap_or(Value::Null);
            last["usage"] = p.usage_json(&usage, &cost, r.provider.byok);
            if p.attribution.metadata {
                last["openrouter_metadata"] = p.metadata_json(Some(&answer.candidate));
            }
            pending.extend_from_slice(&framer.done(&last));
            let _ = tx.send(Bytes::from(pending)).await;
        }
        End::Cancelled => {
            record.cancelled = true;
            record.status = 499;
        }
        End::Failed(err) => {
            tracing::warn!(generation_id = %p.generation_id, provider = %r.provider.slug, kind = ?err.kind, "stream failed after it started");
            let choices = [json!({
                "index": 0,
                "delta": {"content": ""},
                "finish_reason": "error",
                "native_finish_reason": Value::Null,
            })];
            let mut chunk = serde_json::to_value(ChunkOut {
                choices: &choices,
                ..head
            })
            .unwrap_or(Value::Null);
            chunk["error"] = json!({
                "code": err.client_status(),
                "message": err.message,
                "metadata": {"error_type": err.error_type(), "provider_name": r.provider.name},
            });
            pending.extend_from_slice(&framer.failed(&chunk, &err));
            let _ = tx.send(Bytes::from(pending)).await;
            record.finish_reason = Some("error".to_owned());
            record.status = err.client_status();
            record.error_message = Some(err.message.clone());
        }
    }
    // The client's stream ends with the last event; settling happens after.
    drop(tx);
    let completion_sha256 = hex::encode(completion_hash.finalize());
    if let Some(text) = logged {
        p.log_content(json!({"role": "assistant", "content": text}));
    }
    p.settle(record, &r, Some(completion_sha256));
}
#[cfg(test)]
mod audit_record_tests {
    use super::*;

    fn record<'a>(guardrail: Option<&'a RawValue>, models: &'a [String]) -> AuditRecord<'a> {
        AuditRecord {
            account_id: "acct",
            app: AuditApp {
                http_referer: Some("https://app.example"),
                title: Some("App \"quoted\" é"),
            },
            cancelled: true,
            completion_sha256: Some("c0ffee"),
            cost: Some("0.000123".to_owned()),
            data_classification: Some("confidential"),
            error: Some("upstream said\nno"),
            format: Format::Messages.as_str(),
            generation_id: "gen-1",
            guardrails: guardrail,
            key_hash: "abc",
            kind: "inference",
            prompt_sha256: "f00d",
            requested_model: Some("a/b"),
            requested_models: models,
            routing: AuditRouting {
                attempts: vec![AuditAttempt {
                    error: Some("timeout"),
                    model: "a/b",
                    provider: "p",
                    status: 504,
                }],
                candidates: vec![AuditEndpoint {
                    endpoint: "default",
                    model: "a/b",
                    provider: "p",
                    reason: None,
                }],
                excluded: vec![AuditEndpoint {
                    endpoint: "default",
                    model: "a/b",
                    provider: "q",
                    reason: Some("data_policy"),
                }],
            },
            served: Some(AuditServed {
                data_policy: AuditPolicy {
                    retains_prompts: true,
                    retention_days: Some(30),
                    training: false,
                    zdr: false,
                },
                endpoint: "default",
                model: "a/b",
                provider: "p",
                upstream_model: "b-2024",
            }),
            session_id: Some("s"),
            status: 200,
            streamed: true,
            time: 1_700_000_000_000,
            tokens: Some(AuditTokens {
                cached: 1,
                completion: 2,
                prompt: 3,
                reasoning: 4,
            }),
            user: Some("u"),
        }
    }

    #[test]
    fn an_audit_record_serializes_as_canonical_json() {
        let guardrail =
            json!({"name": "g", "id": "gr-1", "findings": [{"rule": "email", "count": 2}]});
        let raw = RawValue::from_string(audit::canonical_json(&guardrail)).expect("raw");
        let models = vec!["a/b".to_owned(), "c/d".to_owned()];
        for guardrail in [Some(raw.as_ref()), None] {
            let text = serde_json::to_string(&record(guardrail, &models)).expect("json");
            let value: Value = serde_json::from_str(&text).expect("valid json");
            assert_eq!(text, audit::canonical_json(&value));
        }
        let text = serde_json::to_string(&record(None, &models)).expect("json");
        let value: Value = serde_json::from_str(&text).expect("valid json");
        assert_eq!(value["guardrails"], json!([]));
        assert!(value["routing"]["candidates"][0].get("reason").is_none());
        assert_eq!(value["served"]["data_policy"]["retention_days"], 30);
    }
}
