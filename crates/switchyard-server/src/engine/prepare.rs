//! The first stage: what the request may do and what it may cost. Account settings, the key's
//! guardrail (budget, then content rules), the data classification, the route plan narrowed by
//! every restriction, and the hold of the most the request can cost.

use axum::http::HeaderMap;
use opentelemetry::KeyValue;
use rand::Rng;
use serde_json::json;
use serde_json::value::RawValue;
use switchyard_core::audit;
use switchyard_core::chat::{Content, Message};
use switchyard_core::embeddings::EmbeddingInput;
use switchyard_core::error::error_type_for_status;
use switchyard_core::guard::{self, Screening};
use switchyard_core::money::Money;
use switchyard_core::pricing;
use switchyard_core::restrict::{self, Restriction, TrainingSettings};
use switchyard_core::routing::{self, Policy, RouteContext, RouteError, RoutePlan, RouteRequest};

use crate::engine::audit::Trail;
use crate::engine::inference::Inference;
use crate::engine::resolved::resolve;
use crate::error::GatewayError;
use crate::guardrails;
use crate::state::{Authenticated, SharedState};

/// Header naming the data classification of a request's content.
pub const CLASSIFICATION_HEADER: &str = "x-switchyard-data-classification";

/// Refuses the request when the key's guardrail budget for the current window is spent.
async fn check_guardrail_budget(
    state: &SharedState,
    g: &guardrails::Compiled,
    key: &Authenticated,
) -> Result<(), GatewayError> {
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
        return Err(GatewayError::guardrail(
            format!(
                "Request blocked by guardrail {:?}: its {interval} budget of {limit} is spent ({spent} used)",
                g.guardrail.name
            ),
            &g.guardrail.id,
        ));
    }
    Ok(())
}

/// The error for a plan that a restriction emptied.
fn emptied(code: &'static str, message: String, plan: &RoutePlan) -> GatewayError {
    GatewayError::route(RouteError::NoEndpoints {
        code,
        message,
        plan: Box::new(plan.clone()),
    })
}

/// Plans, narrows and holds. The trail keeps what is learnt on the way, also when the request
/// is refused.
pub async fn prepare(
    state: SharedState,
    format: &'static dyn crate::formats::ClientFormat,
    trail: Trail,
    key: Authenticated,
    headers: &HeaderMap,
    parsed: crate::formats::Parsed,
) -> Result<Inference, (Trail, GatewayError)> {
    let route_span = trail.span.as_ref().map(|s| s.child("route"));
    let routed = route(state, format, trail, key, headers, parsed).await;
    if let Some(mut span) = route_span {
        let trail = match &routed {
            Ok(p) => &p.trail,
            Err((trail, _)) => trail,
        };
        span.set(KeyValue::new(
            "switchyard.route.candidates",
            i64::try_from(trail.plan.candidates.len()).unwrap_or(i64::MAX),
        ));
        span.set(KeyValue::new(
            "switchyard.route.excluded",
            i64::try_from(trail.plan.excluded.len()).unwrap_or(i64::MAX),
        ));
        if let Some(router) = trail.plan.router {
            span.set(KeyValue::new("switchyard.route.router", router));
        }
        match &routed {
            Ok(_) => span.ok(),
            Err((_, e)) => span.fail(error_type_for_status(e.status()), &e.message),
        }
    }
    let mut p = routed?;
    let now = p.trail.created_ms;
    macro_rules! refuse {
        ($e:expr) => {
            return Err((p.trail, $e))
        };
    }
    // Hold the most any candidate could cost; at least one pico-dollar, so that an account
    // without credits is refused even for free models.
    let prompt_bound = p.request.estimated_prompt_tokens().saturating_mul(2);
    let mut amount = Money::from_picos(1);
    for c in &p.trail.plan.candidates {
        let Some(r) = resolve(&p.catalog, c) else {
            continue;
        };
        let max_out = p.completion_bound(&r);
        let Some(cost) = pricing::max_cost(prompt_bound, max_out, &r.endpoint.pricing) else {
            refuse!(GatewayError::bad_request(
                "This request's maximum cost is out of range"
            ));
        };
        amount = amount.max(cost);
    }
    let user = p.admitted.user_limit();
    let mut hold_span = p.trail.span.as_ref().map(|s| s.child("hold"));
    if let Some(span) = hold_span.as_mut() {
        span.set(KeyValue::new(
            "switchyard.hold_usd",
            amount.to_usd().to_string(),
        ));
    }
    let held = match p
        .state
        .ledger
        .hold_for(
            &p.trail.generation_id,
            &p.key.key,
            user.as_ref(),
            amount,
            now,
        )
        .await
    {
        Ok(Ok(hold)) => Ok(hold),
        Ok(Err(refused)) => {
            if matches!(refused, switchyard_store::HoldRefused::EndUserLimit { .. }) {
                p.trail.refusal = Some(crate::end_users::refusal::SPEND_LIMIT);
            }
            Err(GatewayError::hold_refused(refused))
        }
        Err(e) => Err(e.into()),
    };
    match held {
        Ok(hold) => {
            if let Some(span) = hold_span {
                span.ok();
            }
            p.hold = Some(hold);
        }
        Err(e) => {
            if let Some(span) = hold_span {
                span.fail(error_type_for_status(e.status()), &e.message);
            }
            refuse!(e)
        }
    }
    Ok(p)
}

/// Settings, guardrail, classification, and the route plan narrowed by every restriction: all
/// that decides where the request may go, without holding anything.
pub async fn route(
    state: SharedState,
    format: &'static dyn crate::formats::ClientFormat,
    mut trail: Trail,
    key: Authenticated,
    headers: &HeaderMap,
    parsed: crate::formats::Parsed,
) -> Result<Inference, (Trail, GatewayError)> {
    let crate::formats::Parsed {
        request,
        original,
        mut legacy,
        mut embeddings,
    } = parsed;
    let mut request = Box::new(request);
    macro_rules! refuse {
        ($e:expr) => {
            return Err((trail, $e))
        };
    }
    let now = trail.created_ms;
    // The end user: named, not blocked, within the rate limits of their key and their own.
    let end_user = match crate::end_users::identify(headers, request.user.as_deref()) {
        Ok(u) => u,
        Err(e) => refuse!(e),
    };
    trail.user.clone_from(&end_user);
    let admitted = match crate::end_users::admit(
        &state.end_users,
        &state.store,
        &key.key,
        end_user.as_deref(),
        now,
    )
    .await
    {
        Ok(a) => a,
        Err((why, e)) => {
            trail.refusal = (!why.is_empty()).then_some(why);
            refuse!(e)
        }
    };
    crate::engine::fields::annotate(&request, &trail.generation_id);
    // Files read into text are screened like the rest of the prompt.
    if let Err(e) = crate::engine::fields::before_screening(&mut request) {
        refuse!(e);
    }
    if request.session_id.is_some() {
        trail.attribution.session_id.clone_from(&request.session_id);
    }
    let settings = match state.settings.get(&state.store, &key.key.account_id).await {
        Ok(s) => s,
        Err(e) => refuse!(e.into()),
    };
    // The key's guardrail: budget, then content filters (which may redact the request).
    let guard = match state.guardrails.for_key(&state.store, &key.key.hash).await {
        Ok(g) => g,
        Err(e) => refuse!(e.into()),
    };
    if let Some(g) = &guard {
        if let Err(e) = check_guardrail_budget(&state, g, &key).await {
            refuse!(e);
        }
        // A legacy request's suffix is screened with the prompt, as one more user message.
        let suffix = legacy.as_mut().and_then(|l| l.suffix.take());
        let suffix_at = suffix.map(|text| {
            request.messages.push(Message::User {
                content: Content::Text(text),
                name: None,
            });
            request.messages.len() - 1
        });
        let screening = guard::screen(&mut request, &g.rules);
        if let (Some(at), Some(l)) = (suffix_at, legacy.as_mut()) {
            if let Message::User {
                content: Content::Text(text),
                ..
            } = request.messages.remove(at)
            {
                l.suffix = Some(text);
            }
        }
        if let Some(e) = embeddings.as_mut() {
            if matches!(e.input, EmbeddingInput::Tokens(_)) && !g.rules.is_empty() {
                refuse!(GatewayError::bad_request(
                    "input: token arrays cannot be screened by this key's guardrail content rules; send text"
                ));
            }
            // The texts as screened (and possibly redacted) are the ones embedded.
            let mut texts = request.messages.iter().map(|m| match m {
                Message::User {
                    content: Content::Text(text),
                    ..
                } => text.clone(),
                _ => String::new(),
            });
            e.for_each_text(|t| {
                if let Some(screened) = texts.next() {
                    *t = screened;
                }
            });
        }
        match screening {
            Screening::Blocked { rule, .. } => {
                refuse!(GatewayError::guardrail(
                    format!(
                        "Request blocked by guardrail {:?}: the content matched rule {rule:?}",
                        g.guardrail.name
                    ),
                    &g.guardrail.id,
                )
                .with_metadata("rule", json!(rule)));
            }
            Screening::Allowed { findings, .. } => {
                trail.guardrail = RawValue::from_string(audit::canonical_json(
                    &json!({"id": g.guardrail.id, "name": g.guardrail.name, "findings": findings}),
                ))
                .ok();
            }
        }
    }
    // Moderation of the request's text (as the guardrail left it), before anything leaves: the
    // key's guardrail's settings, else the account's.
    let moderation = guard
        .as_ref()
        .and_then(|g| g.guardrail.moderation.clone())
        .or_else(|| settings.moderation.clone());
    if let Some(m) = &moderation {
        let mut texts = Vec::new();
        switchyard_core::guard::for_each_text(&mut request, |t| texts.push(t.clone()));
        if let Some(suffix) = legacy.as_ref().and_then(|l| l.suffix.as_ref()) {
            texts.push(suffix.clone());
        }
        if embeddings
            .as_ref()
            .is_some_and(|e| matches!(e.input, EmbeddingInput::Tokens(_)))
        {
            refuse!(GatewayError::bad_request(
                "input: token arrays cannot be moderated; send text"
            ));
        }
        let mut outcome =
            crate::moderation::moderate(&state, m, texts, crate::moderation::Stage::Request).await;
        if let Some(user) = end_user.as_deref() {
            crate::moderation::strike(
                &state,
                m,
                &mut outcome,
                &key.key.account_id,
                user,
                &trail.generation_id,
                now,
            )
            .await;
        }
        let refused = outcome.refusal();
        trail.moderation.push(outcome);
        if let Some(e) = refused {
            refuse!(e);
        }
    }
    let catalog = state.catalog();
    crate::engine::fields::fit_context(&mut request, &catalog);
    let session = request
        .session_id
        .clone()
        .or_else(|| trail.attribution.session_id.clone());
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
    let classification = match state
        .classifications
        .resolve(settings.data_classification.as_deref(), requested_class)
    {
        Ok(c) => c,
        Err(m) => {
            // The record names what was asked for, so that a refusal can be traced.
            trail.classification = requested_class.map(|c| c.chars().take(64).collect());
            refuse!(GatewayError::bad_request(m))
        }
    };
    trail.classification = classification.map(|(name, _)| name.to_ascii_lowercase());
    // Training is judged after routing, paid and free apart; the rest of the account policy
    // in routing.
    let policy = Policy {
        deny_training: false,
        zdr_only: settings.zdr_only,
        allowed_providers: settings.allowed_providers.clone(),
        ignored_providers: settings.ignored_providers.clone(),
    };
    let route_request = match (&legacy, &embeddings) {
        (_, Some(e)) => e.route_request(),
        (Some(l), None) => RouteRequest {
            legacy_completions: l.needs_legacy_api(),
            ..RouteRequest::chat(&request)
        },
        (None, None) => RouteRequest::chat(&request),
    };
    match routing::plan_request(&route_request, &catalog, &health, &policy, &context) {
        Ok(plan) => trail.plan = plan,
        Err(RouteError::NoEndpoints {
            code,
            message,
            plan,
        }) => {
            trail.plan = (*plan).clone();
            refuse!(GatewayError::route(RouteError::NoEndpoints {
                code,
                message,
                plan
            }));
        }
        Err(e) => refuse!(GatewayError::route(e)),
    }
    // Every restriction the request did not choose narrows the plan in one place.
    let training = TrainingSettings {
        allow_paid: settings.allow_training_paid,
        allow_free: settings.allow_training_free,
    };
    let effective = guard
        .as_ref()
        .map(|g| guard::Effective::layer(&g.guardrail));
    let narrowed = {
        let mut restrictions: Vec<&dyn Restriction> = vec![&training];
        if let Some((_, c)) = classification {
            restrictions.push(c);
        }
        if let Some(e) = &effective {
            restrictions.push(e);
        }
        restrict::narrow(&mut trail.plan, &catalog, &restrictions)
    };
    if let Err(restrict::Emptied(i)) = narrowed {
        let e = match (i, classification) {
            (0, _) => emptied(
                "privacy_restricted",
                "No endpoint of the requested models satisfies this account's data policy (training is not allowed): see availability.excluded".to_owned(),
                &trail.plan,
            ),
            (1, Some((name, _))) => emptied(
                "privacy_restricted",
                format!("No endpoint of the requested models is allowed for data classified {name:?}: see availability.excluded"),
                &trail.plan,
            ),
            _ => {
                let g = guard.as_ref().map(|g| &g.guardrail);
                let mut e = emptied(
                    "guardrail_restricted",
                    format!(
                        "Request blocked by guardrail {:?}: no endpoint of the requested models is allowed (see availability.excluded)",
                        g.map_or("", |g| g.name.as_str())
                    ),
                    &trail.plan,
                );
                e.kind = crate::error::ErrorKind::GuardrailRefused;
                e.with_metadata("guardrail_id", json!(g.map_or("", |g| g.id.as_str())))
            }
        };
        refuse!(e);
    }

    Ok(Inference {
        format,
        settings,
        admitted,
        moderation,
        hold: None,
        state,
        key,
        request,
        original,
        legacy,
        embeddings,
        catalog,
        trail,
        started: std::time::Instant::now(),
    })
}
