//! Routing: which endpoints may serve a request, and in which order.
//!
//! [`plan`] is a pure function over the catalogue snapshot, the health snapshot, the account
//! policy and the request. It returns the ordered candidates (first choice, then fallbacks) and
//! the reason every other endpoint was excluded.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::catalog::{Catalog, Endpoint, Model};
use crate::chat::ChatRequest;

/// `data_collection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataCollection {
    /// Endpoints that retain or train are allowed.
    Allow,
    /// Only endpoints that neither retain nor train.
    Deny,
}

/// `sort` in its string or object form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SortPreference {
    /// `"price"`, `"throughput"`, `"latency"` or `"exacto"`.
    By(SortBy),
    /// `{by, partition}`.
    Object {
        /// Sort key.
        by: SortBy,
        /// `model` (default) or `none`.
        #[serde(default)]
        partition: Option<Partition>,
    },
}

impl SortPreference {
    /// The sort key.
    pub fn by(&self) -> SortBy {
        match self {
            SortPreference::By(by) | SortPreference::Object { by, .. } => *by,
        }
    }

    /// The partition (default `model`).
    pub fn partition(&self) -> Partition {
        match self {
            SortPreference::Object {
                partition: Some(p), ..
            } => *p,
            _ => Partition::Model,
        }
    }
}

/// Sort keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortBy {
    /// Cheapest first.
    Price,
    /// Fastest tokens per second first.
    Throughput,
    /// Lowest time to first token first.
    Latency,
    /// Tool-calling quality; treated as throughput here.
    Exacto,
}

/// Sort partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Partition {
    /// Primary model's endpoints first, then fallback models'.
    Model,
    /// All models' endpoints sorted together.
    None,
}

/// A performance preference: a number (the p50) or percentiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Percentiles {
    /// p50 value.
    Number(f64),
    /// Per-percentile thresholds.
    Object {
        /// p50.
        #[serde(default)]
        p50: Option<f64>,
        /// p75.
        #[serde(default)]
        p75: Option<f64>,
        /// p90.
        #[serde(default)]
        p90: Option<f64>,
        /// p99.
        #[serde(default)]
        p99: Option<f64>,
    },
}

/// `max_price`: prompt and completion in USD per million tokens, others per unit. Numbers or
/// decimal strings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxPrice {
    /// USD per million prompt tokens.
    #[serde(default)]
    pub prompt: Option<Value>,
    /// USD per million completion tokens.
    #[serde(default)]
    pub completion: Option<Value>,
    /// USD per request.
    #[serde(default)]
    pub request: Option<Value>,
    /// USD per image.
    #[serde(default)]
    pub image: Option<Value>,
    /// USD per audio unit.
    #[serde(default)]
    pub audio: Option<Value>,
}

/// The request's `provider` object. Unknown fields are refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderPreferences {
    /// Provider slugs tried first, in order.
    #[serde(default)]
    pub order: Option<Vec<String>>,
    /// Whether other providers may serve after `order` (default true).
    #[serde(default)]
    pub allow_fallbacks: Option<bool>,
    /// Only endpoints that support every parameter sent.
    #[serde(default)]
    pub require_parameters: Option<bool>,
    /// `allow` or `deny`.
    #[serde(default)]
    pub data_collection: Option<DataCollection>,
    /// Only zero-data-retention endpoints.
    #[serde(default)]
    pub zdr: Option<bool>,
    /// Only models whose author allows distillation.
    #[serde(default)]
    pub enforce_distillable_text: Option<bool>,
    /// Allow-list of provider slugs.
    #[serde(default)]
    pub only: Option<Vec<String>>,
    /// Deny-list of provider slugs.
    #[serde(default)]
    pub ignore: Option<Vec<String>>,
    /// Allowed quantizations.
    #[serde(default)]
    pub quantizations: Option<Vec<String>>,
    /// Strict ordering.
    #[serde(default)]
    pub sort: Option<SortPreference>,
    /// Price ceiling.
    #[serde(default)]
    pub max_price: Option<MaxPrice>,
    /// Soft throughput preference (tokens per second).
    #[serde(default)]
    pub preferred_min_throughput: Option<Percentiles>,
    /// Soft latency preference (seconds).
    #[serde(default)]
    pub preferred_max_latency: Option<Percentiles>,
    /// Provider-specific options.
    #[serde(default)]
    pub options: Option<Map<String, Value>>,
}

/// Account-level privacy and provider settings; the request can only tighten them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Forbid endpoints that may train on prompts (the account did not allow training).
    pub deny_training: bool,
    /// Only zero-data-retention endpoints.
    pub zdr_only: bool,
    /// Allow-list of provider slugs; `None` allows all.
    pub allowed_providers: Option<Vec<String>>,
    /// Deny-list of provider slugs.
    pub ignored_providers: Vec<String>,
}

/// Health of one endpoint, as the routing sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EndpointHealth {
    /// The endpoint failed recently: it goes last.
    pub degraded: bool,
    /// The circuit breaker is open: do not send.
    pub circuit_open: bool,
    /// Median time to first token, milliseconds.
    pub latency_p50_ms: Option<f64>,
    /// Median throughput, tokens per second.
    pub throughput_p50: Option<f64>,
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
    /// Provider that served this session before, for sticky routing.
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

/// Why an endpoint was excluded (the contract's `excluded_by` vocabulary).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exclusion {
    /// Model id.
    pub model: String,
    /// Provider slug.
    pub provider: String,
    /// Endpoint tag.
    pub tag: String,
    /// `data_policy:zdr`, `data_policy:training`, `max_price`, `context_length`,
    /// `require_parameters`, `quantization`, `allowed_providers`, `ignored_providers`,
    /// `modality`, `circuit_open`...
    pub reason: String,
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
}

/// Splits `author/slug:variant` into the model id and the variant.
pub fn split_variant(model: &str) -> (&str, Option<&str>) {
    match model.rsplit_once(':') {
        Some((id, variant)) if !variant.contains('/') => (id, Some(variant)),
        _ => (model, None),
    }
}

fn matches_slug(filter: &str, endpoint: &Endpoint) -> bool {
    let filter = filter.to_ascii_lowercase();
    filter == endpoint.provider || filter == endpoint.tag
}

/// Computes the route for a request.
pub fn plan(
    request: &ChatRequest,
    catalog: &Catalog,
    health: &HealthSnapshot,
    policy: &Policy,
    context: &RouteContext,
) -> Result<RoutePlan, RouteError> {
    let mut requested: Vec<String> = Vec::new();
    if let Some(model) = &request.model {
        requested.push(model.clone());
    }
    for m in request.models.iter().flatten() {
        if !requested.contains(m) {
            requested.push(m.clone());
        }
    }
    if requested.is_empty() {
        return Err(RouteError::NoModel);
    }
    let preferences = request.provider.clone().unwrap_or_default();
    let mut plan = RoutePlan {
        requested_models: requested.clone(),
        ..RoutePlan::default()
    };
    let mut models: Vec<&Model> = Vec::new();
    for id in &requested {
        let (base, _variant) = split_variant(id);
        match catalog.model(base) {
            Some(model) => models.push(model),
            None if models.is_empty() && id == &requested[0] => {
                return Err(RouteError::ModelNotFound { model: id.clone() })
            }
            None => {}
        }
    }
    let estimate = request.estimated_prompt_tokens() + request.max_output_tokens().unwrap_or(0);
    let zdr = preferences.zdr.unwrap_or(false) || policy.zdr_only;
    let deny_collection = preferences.data_collection == Some(DataCollection::Deny);
    for model in models {
        let mut healthy = Vec::new();
        let mut degraded = Vec::new();
        for (index, endpoint) in model.endpoints.iter().enumerate() {
            let exclude = |reason: &str| Exclusion {
                model: model.id.clone(),
                provider: endpoint.provider.clone(),
                tag: endpoint.tag.clone(),
                reason: reason.to_owned(),
            };
            let provider = catalog.provider(&endpoint.provider);
            let data_policy = provider
                .map(|p| p.data_policy)
                .unwrap_or(crate::catalog::DataPolicy::UNKNOWN);
            let reason = if let Some(only) = &preferences.only {
                (!only.iter().any(|s| matches_slug(s, endpoint))).then_some("allowed_providers")
            } else {
                None
            }
            .or_else(|| {
                policy
                    .allowed_providers
                    .as_ref()
                    .is_some_and(|a| !a.iter().any(|s| matches_slug(s, endpoint)))
                    .then_some("allowed_providers")
            })
            .or_else(|| {
                preferences
                    .ignore
                    .iter()
                    .flatten()
                    .chain(policy.ignored_providers.iter())
                    .any(|s| matches_slug(s, endpoint))
                    .then_some("ignored_providers")
            })
            .or_else(|| (zdr && !data_policy.zdr).then_some("data_policy:zdr"))
            .or_else(|| {
                ((deny_collection && (data_policy.training || data_policy.retains_prompts))
                    || (policy.deny_training && data_policy.training))
                    .then_some("data_policy:training")
            })
            .or_else(|| (estimate > endpoint.context_length).then_some("context_length"))
            .or_else(|| {
                health
                    .get(&model.id, &endpoint.tag)
                    .circuit_open
                    .then_some("circuit_open")
            });
            match reason {
                Some(r) => plan.excluded.push(exclude(r)),
                None => {
                    let candidate = Candidate {
                        model: model.id.clone(),
                        endpoint: index,
                        provider: endpoint.provider.clone(),
                        tag: endpoint.tag.clone(),
                    };
                    if health.get(&model.id, &endpoint.tag).degraded {
                        degraded.push(candidate);
                    } else {
                        healthy.push(candidate);
                    }
                }
            }
        }
        let price = |c: &Candidate| {
            let e = &model.endpoints[c.endpoint];
            e.pricing
                .prompt
                .amount
                .saturating_add(e.pricing.completion.amount)
        };
        healthy.sort_by_key(price);
        degraded.sort_by_key(price);
        if let Some(order) = &preferences.order {
            let rank = |c: &Candidate| {
                order
                    .iter()
                    .position(|s| matches_slug(s, &model.endpoints[c.endpoint]))
                    .unwrap_or(usize::MAX)
            };
            healthy.sort_by_key(rank);
            if preferences.allow_fallbacks == Some(false) {
                healthy.retain(|c| rank(c) != usize::MAX);
                degraded.retain(|c| rank(c) != usize::MAX);
            }
        }
        if let Some(sticky) = &context.sticky_provider {
            if let Some(pos) = healthy.iter().position(|c| &c.provider == sticky) {
                let c = healthy.remove(pos);
                healthy.insert(0, c);
            }
        }
        plan.candidates.extend(healthy);
        plan.candidates.extend(degraded);
    }
    if plan.candidates.is_empty() {
        let privacy = !plan.excluded.is_empty()
            && plan
                .excluded
                .iter()
                .all(|e| e.reason.starts_with("data_policy"));
        let (code, message) = if plan.excluded.is_empty() {
            (
                "no_endpoints",
                format!("No endpoints found for {}", requested.join(", ")),
            )
        } else if privacy {
            (
                "privacy_restricted",
                format!(
                    "No endpoints found matching your data policy for {}",
                    requested.join(", ")
                ),
            )
        } else {
            (
                "constraint_filtered",
                format!(
                    "No endpoints found that satisfy the request's constraints for {}",
                    requested.join(", ")
                ),
            )
        };
        return Err(RouteError::NoEndpoints {
            code,
            message,
            plan: Box::new(plan),
        });
    }
    Ok(plan)
}
