//! Moderation before anything leaves: the request's text (and a non-streamed answer's
//! completion) sent to an OpenAI-compatible `/moderations` endpoint of a catalogue provider
//! (OpenAI's `omni-moderation-latest`, Llama Guard behind an OpenAI-compatible server), and
//! each category it marks mapped to an action: `block` (403 naming the categories), `flag`
//! (audited only), or `block_and_strike` (403, and a strike against the end user: `count`
//! strikes within `window_secs` block them for `block_secs`).
//!
//! Configured per account (`moderation` in the account settings). A provider that fails
//! (unreachable, an error status, an answer that does not parse, a timeout) fails closed (the
//! request is refused, 503) or open (it goes on), as `on_failure` says; the audit record says
//! which. The audit record keeps the categories, the scores and the action, never the text.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};
pub use switchyard_core::guard::moderation::{
    decide, parse_answer, Action, ModerationSettings, OnFailure, StrikePolicy,
};

use crate::error::{ErrorKind, GatewayError};
use crate::state::AppState;

/// Where in the request moderation ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The request's text, before routing.
    Request,
    /// A non-streamed answer's completion, before it is answered.
    Completion,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Request => "request",
            Stage::Completion => "completion",
        }
    }
}

/// One moderation's result as the audit record keeps it: no text. Fields in the byte order of
/// their names (canonical JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The strongest action of the marked categories (`none` when none was marked, or the
    /// provider failed).
    pub action: &'static str,
    /// Whether this moderation blocked the end user automatically (strikes).
    pub auto_blocked: bool,
    /// The categories the provider marked, sorted.
    pub categories: Vec<String>,
    /// `closed` or `open` when the provider failed (and the request was refused, or went on).
    pub failure: Option<&'static str>,
    /// The moderation model.
    pub model: String,
    /// The catalogue provider.
    pub provider: String,
    /// Each category's score as the provider gave it.
    pub scores: BTreeMap<String, f64>,
    /// `request` or `completion`.
    pub stage: &'static str,
    /// The end user's strikes within the window, this one included, when it counted one.
    pub strikes: Option<u64>,
}

impl Outcome {
    /// The action decided, when one was.
    pub fn decided(&self) -> Option<Action> {
        match self.action {
            "flag" => Some(Action::Flag),
            "block" => Some(Action::Block),
            "block_and_strike" => Some(Action::BlockAndStrike),
            _ => None,
        }
    }

    /// The refusal of a blocking outcome (403 naming the categories), or of a failure closed
    /// (503); `None` when the request goes on.
    pub fn refusal(&self) -> Option<GatewayError> {
        if self.failure == Some("closed") {
            return Some(GatewayError::of(
                ErrorKind::Unavailable,
                "Content moderation is unavailable, and this account refuses requests it cannot moderate; try again later",
            ));
        }
        match self.decided() {
            Some(Action::Block | Action::BlockAndStrike) => Some(
                GatewayError::of(
                    ErrorKind::GuardrailRefused,
                    format!(
                        "{} blocked by content moderation: {}",
                        if self.stage == "completion" {
                            "The answer was"
                        } else {
                            "Request"
                        },
                        self.categories.join(", ")
                    ),
                )
                .with_metadata("moderation_categories", json!(self.categories))
                .with_metadata("moderation_stage", json!(self.stage)),
            ),
            _ => None,
        }
    }
}

/// Sends `texts` to the configured moderation provider and decides. Never fails: a failing
/// provider is an outcome with `failure` set, as `on_failure` says.
pub async fn moderate(
    state: &AppState,
    settings: &ModerationSettings,
    texts: Vec<String>,
    stage: Stage,
) -> Outcome {
    let mut outcome = Outcome {
        action: "none",
        auto_blocked: false,
        categories: Vec::new(),
        failure: None,
        model: settings.model.clone(),
        provider: settings.provider.clone(),
        scores: BTreeMap::new(),
        stage: stage.as_str(),
        strikes: None,
    };
    if texts.iter().all(|t| t.trim().is_empty()) {
        return outcome;
    }
    match call(state, settings, texts).await {
        Ok((marked, scores)) => {
            outcome.action = decide(settings, &marked).map_or("none", Action::as_str);
            outcome.categories = marked;
            outcome.scores = scores;
        }
        Err(why) => {
            tracing::warn!(provider = %settings.provider, error = %why, "moderation failed");
            metrics::counter!("switchyard_moderation_failures_total",
                "provider" => settings.provider.clone())
            .increment(1);
            outcome.failure = Some(match settings.on_failure {
                OnFailure::Closed => "closed",
                OnFailure::Open => "open",
            });
        }
    }
    metrics::counter!("switchyard_moderation_total", "stage" => outcome.stage, "action" => outcome.action)
        .increment(1);
    outcome
}

/// Counts a strike against the end user of a `block_and_strike` outcome and, when the
/// account's strike policy is reached, blocks them for its time (audited as the outcome's
/// `auto_blocked`). A store failure is logged: the request is refused anyway.
pub async fn strike(
    state: &AppState,
    settings: &ModerationSettings,
    outcome: &mut Outcome,
    account_id: &str,
    user: &str,
    generation_id: &str,
    now_ms: i64,
) {
    if outcome.decided() != Some(Action::BlockAndStrike) {
        return;
    }
    let window_ms = settings.strikes.as_ref().map_or(0, |p| {
        i64::try_from(p.window_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    });
    let row = switchyard_store::StrikeRow {
        generation_id: generation_id.to_owned(),
        at: now_ms,
        categories: outcome.categories.clone(),
    };
    let count = match state
        .store
        .add_strike(account_id, user, &row, now_ms.saturating_sub(window_ms))
        .await
    {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, %generation_id, "recording a strike failed");
            return;
        }
    };
    outcome.strikes = Some(count);
    let Some(policy) = &settings.strikes else {
        return;
    };
    if count < u64::from(policy.count) {
        return;
    }
    let block_ms = i64::try_from(policy.block_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let reason = format!(
        "{count} moderation strikes within {} s (last: {})",
        policy.window_secs,
        outcome.categories.join(", ")
    );
    match crate::end_users::block(
        &state.store,
        Some(&state.recorder),
        account_id,
        user,
        crate::end_users::NewBlock {
            reason: &reason,
            expires_at: Some(now_ms.saturating_add(block_ms)),
            source: switchyard_store::BLOCKED_BY_STRIKES,
        },
        now_ms,
    )
    .await
    {
        Ok(_) => {
            outcome.auto_blocked = true;
            state.end_users.forget(account_id, user).await;
            metrics::counter!("switchyard_end_user_auto_blocks_total").increment(1);
        }
        Err(e) => tracing::error!(error = %e, %generation_id, "blocking after strikes failed"),
    }
}

async fn call(
    state: &AppState,
    settings: &ModerationSettings,
    texts: Vec<String>,
) -> Result<(Vec<String>, BTreeMap<String, f64>), String> {
    let catalog = state.catalog();
    let provider = catalog
        .provider(&settings.provider)
        .ok_or_else(|| format!("provider {:?} is not in the catalogue", settings.provider))?;
    let url = format!("{}/moderations", provider.base_url.trim_end_matches('/'));
    let url = state
        .upstream_url(&url)
        .ok_or_else(|| "the moderation URL does not parse".to_owned())?;
    let mut request = state
        .http()
        .post(url.to_string())
        .timeout(Duration::from_millis(settings.timeout_ms))
        .json(&json!({"model": settings.model, "input": texts}));
    if let Some(key) = provider
        .api_key_env
        .as_deref()
        .and_then(|env| state.secrets.expose(env))
    {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.map_err(|e| {
        // The error names the URL at most, never the key.
        format!("request failed: {}", e.without_url())
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("the provider answered {status}"));
    }
    let body: Value = response
        .json()
        .await
        .map_err(|e| format!("the answer is not JSON: {}", e.without_url()))?;
    parse_answer(&body).ok_or_else(|| "the answer has no results with categories".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_categories_or_the_failure() {
        let mut o = Outcome {
            action: "block",
            auto_blocked: false,
            categories: vec!["hate".into(), "violence".into()],
            failure: None,
            model: "m".into(),
            provider: "p".into(),
            scores: BTreeMap::new(),
            stage: "request",
            strikes: None,
        };
        let e = o.refusal().expect("refused");
        assert_eq!(e.status(), 403);
        assert!(e.message.contains("hate, violence"), "{}", e.message);
        o.action = "flag";
        assert!(o.refusal().is_none());
        o.action = "none";
        o.failure = Some("open");
        assert!(o.refusal().is_none());
        o.failure = Some("closed");
        assert_eq!(o.refusal().map(|e| e.status()), Some(503));
    }
}
