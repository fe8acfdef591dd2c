//! What routing reads (endpoint health, context) and what it returns (the plan, exclusions,
//! errors).

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::catalog::ModelKind;

/// Percentiles of a measured quantity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    /// Median.
    pub p50: f64,
    /// 75th percentile.
    pub p75: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Quantiles {
    /// A quantity measured once (every percentile equal).
    pub fn constant(value: f64) -> Self {
        Quantiles {
            p50: value,
            p75: value,
            p90: value,
            p99: value,
        }
    }

    pub(super) fn as_array(&self) -> [f64; 4] {
        [self.p50, self.p75, self.p90, self.p99]
    }
}

/// Health of one endpoint, as the routing sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EndpointHealth {
    /// The endpoint failed recently: it goes last.
    pub degraded: bool,
    /// The circuit breaker is open: do not send.
    pub circuit_open: bool,
    /// Time to first token over the last 30 minutes, milliseconds.
    pub latency_ms: Option<Quantiles>,
    /// Throughput over the last 30 minutes, tokens per second.
    pub throughput: Option<Quantiles>,
}

/// Health of every endpoint, keyed by (model id, endpoint tag).
#[derive(Debug, Clone, Default)]
pub struct HealthSnapshot {
    /// Per-endpoint health; absent means healthy and unmeasured.
    pub endpoints: HashMap<(String, String), EndpointHealth>,
}

impl HealthSnapshot {
    /// Health of one endpoint.
    pub fn get(&self, model: &str, tag: &str) -> EndpointHealth {
        self.endpoints
            .get(&(model.to_owned(), tag.to_owned()))
            .copied()
            .unwrap_or_default()
    }
}

/// What routing needs to know beyond the request body.
#[derive(Debug, Clone, Default)]
pub struct RouteContext {
    /// Provider that served this session before, for sticky routing (a provider slug or an
    /// endpoint tag).
    pub sticky_provider: Option<String>,
    /// A uniform draw in `[0, 1)` for the weighted random choice.
    pub random: f64,
}

/// One endpoint to try.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// Model id.
    pub model: String,
    /// Index of the endpoint in the model's endpoint list.
    pub endpoint: usize,
    /// Provider slug.
    pub provider: String,
    /// Endpoint tag.
    pub tag: String,
}

/// Why an endpoint was excluded (the contract's `excluded_by` vocabulary, extended).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exclusion {
    /// Model id.
    pub model: String,
    /// Provider slug.
    pub provider: String,
    /// Endpoint tag.
    pub tag: String,
    /// One of [`reasons`].
    pub reason: String,
}

/// Exclusion reasons.
pub mod reasons {
    /// Account allow-list or ignore-list.
    pub const ACCOUNT_POLICY: &str = "account_policy";
    /// Not in the request's `only`.
    pub const ONLY: &str = "only";
    /// In the request's `ignore`.
    pub const IGNORE: &str = "ignore";
    /// Not in `order` while `allow_fallbacks` is false.
    pub const ORDER: &str = "order";
    /// Dropped because `allow_fallbacks` is false and another endpoint was chosen.
    pub const ALLOW_FALLBACKS: &str = "allow_fallbacks";
    /// A service-tier endpoint the request did not opt into.
    pub const SERVICE_TIER: &str = "service_tier";
    /// Not zero-data-retention while ZDR is required.
    pub const ZDR: &str = "data_policy:zdr";
    /// Trains on (or, with `data_collection: deny`, retains) prompts.
    pub const TRAINING: &str = "data_policy:training";
    /// The author's distillation permission is not known.
    pub const DISTILLABLE: &str = "distillable_text";
    /// Quantization not allowed.
    pub const QUANTIZATION: &str = "quantization";
    /// `:free` asked and the endpoint charges.
    pub const NOT_FREE: &str = "not_free";
    /// Above `max_price`.
    pub const MAX_PRICE: &str = "max_price";
    /// Prompt plus requested completion does not fit.
    pub const CONTEXT_LENGTH: &str = "context_length";
    /// The model does not take one of the request's input modalities.
    pub const MODALITY: &str = "modality";
    /// The request has tools and the endpoint does not support them.
    pub const TOOLS: &str = "tools";
    /// `require_parameters` and the endpoint lacks a parameter the request sets.
    pub const REQUIRE_PARAMETERS: &str = "require_parameters";
    /// The circuit breaker is open.
    pub const CIRCUIT_OPEN: &str = "circuit_open";
    /// The catalogue no longer has the endpoint (reloaded while the request was planned).
    pub const UNKNOWN_ENDPOINT: &str = "unknown_endpoint";
    /// Embeddings: the model does not take `dimensions`, or not that many.
    pub const DIMENSIONS: &str = "dimensions";
    /// Legacy completions: the request needs the legacy API and the endpoint serves chat only.
    pub const LEGACY_COMPLETIONS: &str = "legacy_completions";
}

/// The routing decision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RoutePlan {
    /// Endpoints to try, in order.
    pub candidates: Vec<Candidate>,
    /// Endpoints left out, each with its reason.
    pub excluded: Vec<Exclusion>,
    /// Models requested, in order.
    pub requested_models: Vec<String>,
    /// The router that chose the models, when a requested name was one ([`super::strategy`]:
    /// `auto`, `free` or `latest`).
    pub router: Option<&'static str>,
}

impl RoutePlan {
    /// Moves every candidate for which `refuses` gives a reason to the exclusions, with it.
    pub fn exclude_where(&mut self, mut refuses: impl FnMut(&Candidate) -> Option<&'static str>) {
        let mut kept = Vec::with_capacity(self.candidates.len());
        for c in self.candidates.drain(..) {
            match refuses(&c) {
                None => kept.push(c),
                Some(reason) => self.excluded.push(Exclusion {
                    model: c.model,
                    provider: c.provider,
                    tag: c.tag,
                    reason: reason.to_owned(),
                }),
            }
        }
        self.candidates = kept;
    }
}

/// Why no endpoint can serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The request names no model and there is no default.
    #[error("No model given: set `model` in the request")]
    NoModel,
    /// A requested model is not in the catalogue.
    #[error("{model} is not a valid model ID")]
    ModelNotFound {
        /// The id asked for.
        model: String,
    },
    /// Every endpoint was filtered out.
    #[error("{message}")]
    NoEndpoints {
        /// `no_endpoints`, `privacy_restricted` or `constraint_filtered`.
        code: &'static str,
        /// Human message.
        message: String,
        /// What removed what.
        plan: Box<RoutePlan>,
    },
    /// A preference value is invalid.
    #[error("{0}")]
    InvalidPreference(String),
    /// A requested model is of the other kind (an embedding model asked for a chat completion,
    /// or a chat model asked for embeddings).
    #[error("{}", wrong_kind_message(.model, *.kind))]
    WrongModelKind {
        /// The model id.
        model: String,
        /// What the model is.
        kind: ModelKind,
    },
}

fn wrong_kind_message(model: &str, kind: ModelKind) -> String {
    match kind {
        ModelKind::Embedding => {
            format!("{model} is an embedding model: send it to /embeddings")
        }
        ModelKind::Chat => format!("{model} is a chat model, not an embedding model"),
    }
}

pub(super) fn no_endpoints(plan: RoutePlan, legacy_field: Option<&str>) -> RouteError {
    let mut reasons_seen: Vec<&str> = plan.excluded.iter().map(|e| e.reason.as_str()).collect();
    reasons_seen.sort_unstable();
    reasons_seen.dedup();
    let models = plan.requested_models.join(", ");
    let by = reasons_seen.join(", ");
    let (code, message) = if reasons_seen.iter().any(|r| r.starts_with("data_policy:")) {
        (
            "privacy_restricted",
            format!(
                "No endpoints found matching your data policy for {models} (excluded by: {by})"
            ),
        )
    } else if reasons_seen.iter().any(|r| *r != reasons::ACCOUNT_POLICY) {
        (
            "constraint_filtered",
            format!(
                "No endpoints found that satisfy the request's constraints for {models} (excluded by: {by})"
            ),
        )
    } else if reasons_seen.is_empty() {
        ("no_endpoints", format!("No endpoints found for {models}"))
    } else {
        (
            "no_endpoints",
            format!("No endpoints found for {models} allowed by the account's provider settings"),
        )
    };
    let message = match legacy_field {
        Some(field) if reasons_seen.contains(&reasons::LEGACY_COMPLETIONS) => {
            format!("{message}: `{field}` needs an endpoint serving the legacy completions API")
        }
        _ => message,
    };
    RouteError::NoEndpoints {
        code,
        message,
        plan: Box::new(plan),
    }
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} via {}", self.model, self.tag)
    }
}
