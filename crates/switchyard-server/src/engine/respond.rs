//! The respond stage of a non-streamed request: read and decode the provider's answer into the
//! canonical completion, render it in the client's format, and settle: before the answer
//! leaves in `before_answer` mode (its body waits for the records' commit), after it is on its
//! way in `batched` mode.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use sha2::Digest as _;
use switchyard_core::audit;
use switchyard_core::money::Money;
use switchyard_core::pricing::{self, Cost, Usage};
use switchyard_formats::openrouter::{Completion, UsageOut};
use switchyard_providers::codec_for;

use crate::engine::attempt::{read_limited, redact, Answer};
use crate::engine::audit::anomaly;
use crate::engine::inference::{estimate_tokens, withheld, Inference};
use crate::engine::resolved::{resolve, Resolved};
use crate::error::GatewayError;
use crate::formats::ClientFormat;
use crate::recorder::{Durability, Pending};

/// More tokens of one kind than any request reads or writes: a usage past it is out of range.
pub const MAX_PLAUSIBLE_TOKENS: u64 = 1_000_000_000;

impl Inference {
    /// What the request is charged for `usage` at `r`'s prices: the exact cost, never more than
    /// the hold. A usage that costs more than the hold, or is out of range (a count past
    /// [`MAX_PLAUSIBLE_TOKENS`], which is clamped to it; a cost that overflows), is charged the
    /// hold and recorded as the provider's anomaly: in the audit record and in
    /// `switchyard_upstream_anomalies_total`.
    pub fn charge(&mut self, usage: &mut Usage, r: &Resolved<'_>) -> Cost {
        let mut anomaly = None;
        for count in [
            &mut usage.prompt_tokens,
            &mut usage.completion_tokens,
            &mut usage.cached_tokens,
            &mut usage.cache_write_tokens,
            &mut usage.reasoning_tokens,
            &mut usage.audio_prompt_tokens,
            &mut usage.web_search_requests,
        ] {
            if *count > MAX_PLAUSIBLE_TOKENS {
                *count = MAX_PLAUSIBLE_TOKENS;
                anomaly = Some(anomaly::USAGE_OUT_OF_RANGE);
            }
        }
        let exact = pricing::cost(usage, &r.endpoint.pricing).filter(|_| anomaly.is_none());
        let held = self.hold.as_ref().map(|h| h.amount);
        let cost = match (exact, held) {
            (Some(cost), Some(held)) if cost.total > held => {
                anomaly = Some(anomaly::USAGE_EXCEEDS_HOLD);
                capped(cost, held)
            }
            (Some(cost), _) => cost,
            (None, held) => {
                anomaly = Some(anomaly::USAGE_OUT_OF_RANGE);
                let held = held.unwrap_or(Money::ZERO);
                Cost {
                    completion: held,
                    total: held,
                    ..Cost::default()
                }
            }
        };
        if let Some(anomaly) = anomaly {
            tracing::warn!(
                generation_id = %self.trail.generation_id,
                provider = %r.provider.slug,
                anomaly,
                "the provider's usage was charged at the hold"
            );
            self.note_anomaly(anomaly, &r.provider.slug);
        }
        cost
    }

    /// Records a provider's anomaly: the audit record keeps the first.
    pub fn note_anomaly(&mut self, anomaly: &'static str, provider: &str) {
        metrics::counter!("switchyard_upstream_anomalies_total",
            "provider" => provider.to_owned(), "anomaly" => anomaly)
        .increment(1);
        self.trail.anomaly.get_or_insert(anomaly);
    }
}

/// `cost` cut down to `held`, taken off the completion side first, then the per-request
/// charges, then the prompt side.
fn capped(cost: Cost, held: Money) -> Cost {
    let prompt = cost.prompt.min(held);
    let other = cost
        .other
        .min(held.checked_sub(prompt).unwrap_or(Money::ZERO));
    let completion = held
        .checked_sub(prompt)
        .and_then(|m| m.checked_sub(other))
        .unwrap_or(Money::ZERO);
    Cost {
        prompt,
        completion,
        other,
        total: held,
    }
}

/// Adds the generation id header to an answer.
pub fn with_generation_header(mut response: Response, id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert("x-generation-id", value);
    }
    response
}

/// Decodes, renders and settles a non-streamed answer.
pub async fn complete(
    mut p: Inference,
    answer: Answer,
) -> Result<Response, (Inference, GatewayError)> {
    let catalog = Arc::clone(&p.catalog);
    let Some(r) = resolve(&catalog, &answer.candidate) else {
        let e = GatewayError::internal(&"the served endpoint left the catalogue snapshot");
        return Err((p, e));
    };
    let Some(codec) = codec_for(r.provider.kind) else {
        let e = GatewayError::internal(&"the served provider kind has no codec");
        return Err((p, e));
    };
    let latency = p.started.elapsed();
    let body = read_limited(answer.response, &p.state.config.server)
        .await
        .and_then(|b| {
            if answer.native_legacy {
                codec.decode_completions(&b)
            } else {
                codec.decode(&b)
            }
        });
    if let Some(span) = answer.span {
        match &body {
            Ok(_) => span.ok(),
            Err(err) => span.fail(err.error_type(), &format!("{:?}", err.kind)),
        }
    }
    let mut completion = match body {
        Ok(c) => c,
        Err(err) => {
            let err = redact(&p.state, err);
            p.state.record_failure(&r.model.id, &r.endpoint.tag);
            let e = p.with_previous_errors(GatewayError::upstream(&err, &r.provider.name));
            return Err((p, e));
        }
    };
    p.shape_answer(&mut completion.choices);
    let mut usage = completion.usage.unwrap_or_else(|| {
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
    let cost = p.charge(&mut usage, &r);
    p.record_success(&r, Some(latency), usage.completion_tokens);
    // The answer is moderated before it leaves: a refusal replaces it, and what the provider
    // produced is billed all the same.
    let refused = moderate_completion(&mut p, &completion.choices).await;
    let metadata = p
        .trail
        .attribution
        .metadata
        .then(|| p.metadata_json(Some(&answer.candidate)));
    let out = Completion {
        id: &p.trail.generation_id,
        object: "chat.completion",
        created: p.created(),
        model: &r.model.id,
        provider: &r.provider.name,
        system_fingerprint: completion.system_fingerprint.as_ref(),
        service_tier: completion.service_tier.as_ref(),
        choices: &completion.choices,
        usage: UsageOut::new(&usage, &cost, r.provider.byok),
        openrouter_metadata: metadata.as_ref(),
    };
    let response = if let Some(e) = &refused {
        p.format
            .error_response(e.clone().with_generation(&p.trail.generation_id))
    } else {
        let body = match p.format.render(p.render_context(), &out) {
            Ok(body) => body,
            Err(e) => return Err((p, e)),
        };
        (
            StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    };
    let response = with_generation_header(response, &p.trail.generation_id);
    let candidate = answer.candidate;
    let settle = move |mut p: Inference| {
        let r = resolve(&catalog, &candidate)?;
        let first = completion.choices.first();
        let text_of = |field: &str| {
            first
                .and_then(|c| c.get(field))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let mut record = p.record(&r, &usage, cost.total);
        if let Some(e) = &refused {
            record.status = e.status();
            record.error_message = Some(e.message.clone());
        }
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
        Some(p.settle(record, &r, Some(completion_sha256)))
    };
    if p.state.recorder.durability() == Durability::Batched {
        // The settlement and the audit record are built after the answer is on its way: the
        // hold is kept until then, and shutdown waits for the task.
        let tasks = p.state.tasks.clone();
        tasks.spawn(async move {
            drop(settle(p));
        });
        return Ok(response);
    }
    let (format, generation_id) = (p.format, p.trail.generation_id.clone());
    let pending = settle(p).unwrap_or_else(Pending::none);
    Ok(answer_once_recorded(pending, format, &generation_id, response).await)
}

/// Moderates a non-streamed answer's text when the account moderates completions; the
/// refusal that replaces the answer, if any. The outcome joins the audit record.
async fn moderate_completion(p: &mut Inference, choices: &[Value]) -> Option<GatewayError> {
    let settings = p.moderation.clone().filter(|m| m.completions)?;
    let texts: Vec<String> = choices
        .iter()
        .filter_map(|c| c.get("message").or_else(|| c.get("text")))
        .filter_map(|m| match m {
            Value::String(text) => Some(text.clone()),
            m => m.get("content").and_then(Value::as_str).map(str::to_owned),
        })
        .collect();
    let mut outcome = crate::moderation::moderate(
        &p.state,
        &settings,
        texts,
        crate::moderation::Stage::Completion,
    )
    .await;
    if let Some(user) = p.trail.user.clone() {
        let now = p.state.now_ms();
        crate::moderation::strike(
            &p.state,
            &settings,
            &mut outcome,
            &p.key.key.account_id,
            &user,
            &p.trail.generation_id,
            now,
        )
        .await;
    }
    let refused = outcome.refusal();
    p.trail.moderation.push(outcome);
    refused
}

/// `response` once its records are committed, or the contract's 500 in its place when they
/// were not in time.
pub async fn answer_once_recorded(
    pending: Pending,
    format: &'static dyn ClientFormat,
    generation_id: &str,
    response: Response,
) -> Response {
    match pending.wait().await {
        Ok(()) => response,
        Err(why) => {
            format.error_response(withheld(generation_id, why).with_generation(generation_id))
        }
    }
}

/// Decodes, renders and settles an embeddings answer.
pub async fn embeddings(
    mut p: Inference,
    answer: Answer,
) -> Result<Response, (Inference, GatewayError)> {
    let catalog = Arc::clone(&p.catalog);
    let (Some(r), Some(request)) = (resolve(&catalog, &answer.candidate), p.embeddings.take())
    else {
        let e = GatewayError::internal(&"an embeddings answer without its request or endpoint");
        return Err((p, e));
    };
    let Some(codec) = codec_for(r.provider.kind) else {
        let e = GatewayError::internal(&"the served provider kind has no codec");
        return Err((p, e));
    };
    let latency = p.started.elapsed();
    let decoded = read_limited(answer.response, &p.state.config.server)
        .await
        .and_then(|b| codec.decode_embeddings(&request, &b));
    if let Some(span) = answer.span {
        match &decoded {
            Ok(_) => span.ok(),
            Err(err) => span.fail(err.error_type(), &format!("{:?}", err.kind)),
        }
    }
    let vectors = match decoded {
        Ok(v) => v,
        Err(err) => {
            let err = redact(&p.state, err);
            p.state.record_failure(&r.model.id, &r.endpoint.tag);
            let e = p.with_previous_errors(GatewayError::upstream(&err, &r.provider.name));
            p.embeddings = Some(request);
            return Err((p, e));
        }
    };
    let mut vectors = vectors;
    let cost = p.charge(&mut vectors.usage, &r);
    p.record_success(&r, Some(latency), 0);
    let out = switchyard_formats::embeddings::EmbeddingsAnswer {
        id: &p.trail.generation_id,
        model: &r.model.id,
        embeddings: &vectors,
        encoding_format: request.encoding_format,
        cost: &cost,
        is_byok: r.provider.byok,
    };
    let body = match serde_json::to_vec(&out) {
        Ok(body) => body,
        Err(e) => return Err((p, GatewayError::internal(&e))),
    };
    let response = (
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    let response = with_generation_header(response, &p.trail.generation_id);
    let mut record = p.record(&r, &vectors.usage, cost.total);
    record.latency_ms = i64::try_from(latency.as_millis()).ok();
    // The vectors are the answer: their hash stands for the completion's.
    let mut hash = sha2::Sha256::new();
    for v in &vectors.vectors {
        for x in v {
            sha2::Digest::update(&mut hash, x.to_le_bytes());
        }
    }
    let completion_sha256 = hex::encode(sha2::Digest::finalize(hash));
    let pending = p.settle(record, &r, Some(completion_sha256));
    let generation_id = p.trail.generation_id.clone();
    Ok(answer_once_recorded(pending, p.format, &generation_id, response).await)
}
