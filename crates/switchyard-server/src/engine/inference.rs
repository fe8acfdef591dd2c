//! A request planned and held, and what the later stages do with it: render context, routing
//! metadata, settlement, health and session records, content logging; and the refusal of a
//! request that ended without an answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::response::Response;
use serde_json::{json, Value};
use switchyard_core::catalog::Catalog;
use switchyard_core::chat::ChatRequest;
use switchyard_core::routing::{Candidate, RoutePlan};
use switchyard_store::GenerationRecord;

use crate::engine::audit::{Ending, Trail};
use crate::engine::resolved::Resolved;
use crate::error::GatewayError;
use crate::formats::ClientFormat;
use crate::ledger::Hold;
use crate::recorder::{AuditEntry, NotRecorded, Pending};
use crate::settings::AccountSettings;
use crate::state::{Authenticated, SharedState};

/// A request planned and held: everything the later stages need.
pub struct Inference {
    /// The client's format.
    pub format: &'static dyn ClientFormat,
    /// The account's settings.
    pub settings: Arc<AccountSettings>,
    /// The end user and the rate limits the request was admitted under.
    pub admitted: crate::end_users::Admitted,
    /// The moderation that applies (the key's guardrail's, else the account's).
    pub moderation: Option<crate::moderation::ModerationSettings>,
    /// The hold; taken by settlement, released when dropped unsettled.
    pub hold: Option<Hold>,
    /// Shared state.
    pub state: SharedState,
    /// The key.
    pub key: Authenticated,
    /// The canonical request (after guardrail redaction).
    pub request: Box<ChatRequest>,
    /// The client's request as sent, for formats that echo it.
    pub original: Option<Value>,
    /// The legacy completions request's own parts, when it is one.
    pub legacy: Option<Box<switchyard_core::completions::CompletionsRequest>>,
    /// The embeddings request, when it is one (its texts screened as the request's messages).
    pub embeddings: Option<Box<switchyard_core::embeddings::EmbeddingsRequest>>,
    /// The catalogue snapshot the plan was made on.
    pub catalog: Arc<Catalog>,
    /// What the audit record needs.
    pub trail: Trail,
    /// When the pipeline started.
    pub started: Instant,
}

/// Audits a request that ended without an answer, and renders its error in the client's
/// format, with the request's generation id, once the record is committed (`before_answer`).
/// A refusal carries nothing a provider produced, so it is sent even when its record could not
/// be committed in time (counted in `switchyard_record_wait_failures_total`; the record may
/// still be written).
pub async fn refuse(
    state: &SharedState,
    format: &'static dyn ClientFormat,
    trail: &Trail,
    e: GatewayError,
) -> Response {
    if let Some(span) = &trail.span {
        // A provider's message may quote the prompt: its failure is named by its type.
        let message = match e.kind {
            crate::error::ErrorKind::Upstream(_) => {
                switchyard_core::error::error_type_for_status(e.status())
            }
            _ => e.message.as_str(),
        };
        span.refused(e.status(), message);
    }
    let pending = trail.write(
        &state.recorder,
        state.now_ms(),
        &Ending {
            status: e.status(),
            error: Some(&e.message),
            ..Ending::default()
        },
    );
    if let Err(why) = pending.wait().await {
        tracing::error!(generation_id = %trail.generation_id, error = %why,
            "a refusal was sent before its audit record was committed");
    }
    format.error_response(e.with_generation(&trail.generation_id))
}

/// What replaces a served answer whose records were not committed in time: the contract's
/// masked 500 (the cause is logged with the generation id).
pub fn withheld(generation_id: &str, why: NotRecorded) -> GatewayError {
    tracing::error!(%generation_id, error = %why,
        "an answer was withheld: its generation and audit records were not committed");
    GatewayError::of(crate::error::ErrorKind::Store, "Internal Server Error")
}

/// Estimates the completion tokens of text that was produced, when the provider did not say.
pub fn estimate_tokens(chars: usize) -> u64 {
    chars.div_ceil(4) as u64
}

impl Inference {
    /// What the client's format may use to render the answer.
    pub fn render_context(&self) -> crate::formats::RenderContext<'_> {
        crate::formats::RenderContext {
            state: &self.state,
            original: self.original.as_ref(),
        }
    }

    /// Unix seconds when the request arrived.
    pub fn created(&self) -> i64 {
        self.trail.created_ms / 1000
    }

    /// `openrouter_metadata`: the routing decision as the client asked to see it, with a
    /// one-line summary, the request's provider preferences (`params`) and the stages that ran
    /// before routing (`pipeline`); the gateway has no data regions (`region` is null).
    pub fn metadata_json(&self, selected: Option<&Candidate>) -> Value {
        let plan = &self.trail.plan;
        let available: Vec<Value> = plan
            .candidates
            .iter()
            .map(|c| json!({"provider": c.provider, "endpoint": c.tag, "model": c.model, "selected": Some(c) == selected}))
            .collect();
        let excluded: Vec<Value> = plan
            .excluded
            .iter()
            .map(|x| json!({"provider": x.provider, "endpoint": x.tag, "model": x.model, "reason": x.reason}))
            .collect();
        let attempts: Vec<Value> = self
            .trail
            .attempts
            .iter()
            .map(|a| json!({"provider": a.provider, "model": a.model, "status": a.status}))
            .collect();
        let served = selected.map_or_else(
            || "no endpoint served".to_owned(),
            |c| format!("{} served by {}", c.model, c.provider),
        );
        let summary = format!(
            "{served} on attempt {} of {} candidates ({} endpoints excluded)",
            self.trail.attempts.len(),
            plan.candidates.len(),
            plan.excluded.len()
        );
        // The guardrail that screened the request, the one stage of the pipeline before routing.
        let pipeline: Vec<Value> = self
            .trail
            .guardrail
            .as_ref()
            .and_then(|g| serde_json::from_str::<Value>(g.get()).ok())
            .map(|g| json!({"type": "guardrail", "name": g["name"], "guardrail_id": g["id"]}))
            .into_iter()
            .collect();
        let params = serde_json::to_value(&self.request.provider)
            .ok()
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({}));
        json!({
            "requested": self.request.model,
            "strategy": plan.router.unwrap_or(if plan.requested_models.len() > 1 { "fallback" } else { "direct" }),
            "region": Value::Null,
            "summary": summary,
            "params": params,
            "pipeline": pipeline,
            "attempt": self.trail.attempts.len(),
            "is_byok": selected.and_then(|c| self.catalog.provider(&c.provider)).is_some_and(|p| p.byok),
            "endpoints": {
                "total": plan.candidates.len() + plan.excluded.len(),
                "available": available,
                "excluded": excluded,
            },
            "attempts": attempts,
            "generation_time": u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    }

    /// Settles the hold at the exact cost and queues the generation's settlement and its audit
    /// record, committed together by the recorder; the answer waits for what this returns
    /// before it completes (nothing in `batched` mode).
    pub fn settle(
        &mut self,
        record: GenerationRecord,
        served: &Resolved<'_>,
        completion_sha256: Option<String>,
    ) -> Pending {
        let (hold_id, lease_id) = match self.hold.take() {
            Some(h) => {
                let lease_id = h.lease_id();
                (
                    h.settle(record.cost, record.is_byok, record.created_at),
                    lease_id,
                )
            }
            None => (None, None),
        };
        // Tokens per minute count what was used, once it is known.
        self.admitted.record_tokens(
            &self.state.end_users.limiter,
            record
                .tokens_prompt
                .saturating_add(record.tokens_completion),
            self.state.now_ms(),
        );
        let provider = served.provider.slug.clone();
        metrics::counter!("switchyard_tokens_total", "provider" => provider.clone(), "kind" => "prompt")
            .increment(record.tokens_prompt);
        metrics::counter!("switchyard_tokens_total", "provider" => provider.clone(), "kind" => "completion")
            .increment(record.tokens_completion);
        metrics::counter!("switchyard_cost_picodollars_total", "provider" => provider)
            .increment(u64::try_from(record.cost.picos()).unwrap_or(0));
        if let Some(span) = &self.trail.span {
            span.served(&crate::telemetry::Served {
                model: &record.model,
                provider: &record.provider_slug,
                input_tokens: record.tokens_prompt,
                output_tokens: record.tokens_completion,
                finish_reason: record.finish_reason.as_deref(),
                cost: record.cost,
                status: record.status,
                failed: record.error_message.is_some(),
            });
        }
        let body = self.trail.record(&Ending {
            served: Some(served),
            generation: Some(&record),
            status: record.status,
            error: record.error_message.as_deref(),
            completion_sha256: completion_sha256.as_deref(),
        });
        let audit = AuditEntry {
            created_at: self.state.now_ms(),
            generation_id: self.trail.generation_id.clone(),
            account_id: self.trail.account_id.clone(),
            body,
        };
        self.state.recorder.settle(record, hold_id, lease_id, audit)
    }

    /// Records a served attempt's performance, and the session's provider for sticky routing.
    pub fn record_success(&self, r: &Resolved<'_>, ttft: Option<Duration>, completion_tokens: u64) {
        let now = self.state.now_ms();
        let total = self.started.elapsed();
        let ttft_ms = ttft.map(|d| d.as_secs_f64() * 1000.0);
        let generating = total.saturating_sub(ttft.unwrap_or_default()).as_secs_f64();
        let tps = (completion_tokens > 0 && generating > 0.0)
            .then(|| completion_tokens as f64 / generating);
        self.state
            .health
            .record_success(&r.model.id, &r.endpoint.tag, now, ttft_ms, tps);
        if let Some(session) = self.request.session_id.as_deref().or(self
            .trail
            .attribution
            .session_id
            .as_deref())
        {
            self.state.sessions.record(session, &r.provider.slug, now);
        }
    }

    /// Logs the prompt and the completion, encrypted, when the account opted in and a content
    /// key is configured.
    pub fn log_content(&self, output: Value) {
        if !self.settings.prompt_logging {
            return;
        }
        let Some(cipher) = &self.state.content_cipher else {
            return;
        };
        // The exporter was configured to take content, and the account logs prompts.
        if let Some(span) = self
            .trail
            .span
            .as_ref()
            .filter(|s| s.includes_content() && s.recording())
        {
            span.content(
                serde_json::to_string(&self.request.messages).unwrap_or_default(),
                output.to_string(),
            );
        }
        let document = json!({
            "input": {"messages": self.request.messages},
            "output": output,
        });
        let Ok(plain) = serde_json::to_vec(&document) else {
            return;
        };
        let id = &self.trail.generation_id;
        if let Some((nonce, ciphertext)) = cipher.encrypt(id, &plain) {
            self.state.recorder.content(switchyard_store::ContentRow {
                id: id.clone(),
                account_id: self.key.key.account_id.clone(),
                created_at: self.trail.created_ms,
                nonce,
                ciphertext,
            });
        }
    }

    /// The contract's `api_type` of the request: `embeddings`, or `completions` for every
    /// generating API (chat, Messages, Responses, legacy completions).
    pub fn api_type(&self) -> &'static str {
        if self.embeddings.is_some() {
            "embeddings"
        } else {
            "completions"
        }
    }

    /// Every attempt so far, as `provider_responses` lists them.
    pub fn provider_responses(&self) -> Vec<switchyard_store::ProviderResponse> {
        self.trail
            .attempts
            .iter()
            .map(|a| {
                let provider = self.catalog.provider(&a.provider);
                switchyard_store::ProviderResponse {
                    provider_name: provider.map_or_else(|| a.provider.clone(), |p| p.name.clone()),
                    status: Some(a.status),
                    model_permaslug: self
                        .catalog
                        .model(&a.model)
                        .map(|m| m.canonical_slug.clone()),
                    is_byok: provider.is_some_and(|p| p.byok),
                }
            })
            .collect()
    }

    /// The generation's record for the store, as served by `r`.
    pub fn record(
        &self,
        r: &Resolved<'_>,
        usage: &switchyard_core::pricing::Usage,
        cost: switchyard_core::money::Money,
    ) -> GenerationRecord {
        let a = &self.trail.attribution;
        GenerationRecord {
            id: self.trail.generation_id.clone(),
            account_id: self.key.key.account_id.clone(),
            key_hash: self.key.key.hash.clone(),
            created_at: self.created() * 1000,
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
            http_referer: a.http_referer.clone(),
            app_title: a.app_title.clone(),
            end_user: self.trail.user.clone(),
            session_id: a.session_id.clone(),
            status: 200,
            preset_id: self.trail.preset_id.clone(),
            router: router_name(&self.trail.plan),
            api_type: Some(self.api_type().to_owned()),
            user_agent: a.user_agent.clone(),
            provider_responses: self.provider_responses(),
            ..GenerationRecord::default()
        }
    }
}

impl Inference {
    /// The most completion tokens `r` may produce for this request: its `max_tokens`, else the
    /// endpoint's cap, else the room left in the context window; for every completion a legacy
    /// request asks for; none for embeddings. The hold is taken for this, and a stream that
    /// produces far more is cut.
    pub fn completion_bound(&self, r: &Resolved<'_>) -> u64 {
        if self.embeddings.is_some() {
            return 0;
        }
        let room = r
            .endpoint
            .context_length
            .saturating_sub(self.request.estimated_prompt_tokens());
        let mut max_out = self
            .request
            .max_output_tokens()
            .unwrap_or_else(|| r.endpoint.max_completion_tokens.unwrap_or(room));
        if let Some(cap) = r.endpoint.max_completion_tokens {
            max_out = max_out.min(cap);
        }
        // A legacy request may ask for several completions of each prompt.
        // A chat request may ask for several choices (`n`).
        let generations = self
            .legacy
            .as_ref()
            .map_or_else(|| self.request.choices(), |l| l.generations());
        max_out.saturating_mul(generations)
    }
}

/// The requested name that designated a router (`openrouter/auto`, `openrouter/free`, a
/// `~author/family-latest` name), for the generation record.
fn router_name(plan: &RoutePlan) -> Option<String> {
    plan.router?;
    plan.requested_models
        .iter()
        .find(|m| {
            m.as_str() == switchyard_core::routing::AUTO
                || m.as_str() == switchyard_core::routing::FREE
                || m.starts_with('~')
        })
        .cloned()
}
