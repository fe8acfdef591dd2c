//! Routing: which endpoints may serve a request, and in which order.
//!
//! [`plan`] is a pure function over the catalogue snapshot, the health snapshot, the account
//! policy and the request. It returns the ordered candidates (first choice, then fallbacks) and
//! the reason every other endpoint was excluded.
//!
//! Semantics, in the order they apply:
//!
//! 1. **Models.** `model` first, then `models[]` (duplicates dropped). Each id may carry a variant:
//!    `:free` keeps only endpoints whose prompt and completion prices are zero, `:nitro` sorts by
//!    throughput (and admits `priority` tier endpoints), `:floor` sorts by price (and admits
//!    `flex` tier endpoints), `:exacto` sorts by the exacto key (throughput here). Any other
//!    variant is an error naming it. A name is a catalogue id or one of a model's aliases; the
//!    plan names models by id. An unknown name is [`RouteError::ModelNotFound`]. A chat request
//!    naming no model gets the catalogue's `default_model` ([`RouteError::NoModel`] without
//!    one). A model of the other kind (an embedding model for a chat request, or the reverse)
//!    is [`RouteError::WrongModelKind`], a client error: chat never reaches an embedding model.
//! 2. **Hard filters**, per endpoint; the first that fails is the exclusion reason:
//!    `account_policy` (account allow/ignore lists), `only`, `ignore`, `order` (with
//!    `allow_fallbacks: false`), `service_tier` (tier endpoints need an opt-in),
//!    `data_policy:zdr`, `data_policy:training` (request `data_collection: deny` drops endpoints
//!    that train **or** retain prompts; the account's `deny_training` drops those that train),
//!    `distillable_text`, `quantization`, `not_free`, `max_price`, `context_length`, `modality`,
//!    `tools`, `require_parameters`, `dimensions` (an embeddings request asks for a vector
//!    length the model cannot give), `legacy_completions` (a legacy completions request uses a
//!    field only an endpoint serving that API natively honours). The request can only tighten
//!    the account [`Policy`].
//! 3. **Circuit breaker.** Endpoints whose circuit is open are excluded (`circuit_open`), unless
//!    every endpoint that passed the hard filters (over all requested models) is open: then they
//!    are all kept, in the usual order, as probes. A request is never refused only because the
//!    gateway's own health bookkeeping is pessimistic.
//! 4. **Order**, per model (`partition: model`, the default: candidates of the first model, then
//!    of the second...) or over all models together (`partition: none`, or legacy
//!    `route: "sort"`):
//!    - `order`: the listed providers first, in list order, then the rest by price.
//!    - `sort` (or a sorting variant): strict order by the key (price ascending; throughput
//!      descending; latency ascending; unmeasured endpoints after measured ones), ties by price
//!      then catalogue order.
//!    - otherwise load balancing: one endpoint is drawn among the healthy ones with weight
//!      `1/price²` (price = prompt + completion per token) using [`RouteContext::random`]; if some
//!      healthy endpoints are free they are the cheapest and the draw is uniform among them. The
//!      rest follow by price.
//!
//!    In every mode degraded endpoints (recent failures) go after healthy ones, and endpoints
//!    that miss a soft preference (`preferred_min_throughput`, `preferred_max_latency`, or lack
//!    support for a sent `response_format`/`verbosity`) go after those that meet it; soft
//!    preferences never exclude. Unmeasured endpoints count as meeting performance preferences.
//!    The explicitly listed part of `order` is kept exactly as given.
//! 5. **Sticky.** Without `order` or `sort`, when [`RouteContext::sticky_provider`] matches a
//!    healthy candidate of the first model (or of the pool, with `partition: none`), it goes
//!    first.
//! 6. **`allow_fallbacks: false`.** With `order`: only the listed providers (others are excluded
//!    with reason `order`). Without `order`: only the first candidate of each model (the others
//!    are listed with reason `allow_fallbacks`); model fallback through `models[]` still applies.
//!
//! An empty result is [`RouteError::NoEndpoints`] whose code is `privacy_restricted` when a data
//! policy or ZDR filter removed an endpoint, `constraint_filtered` when another request
//! constraint did, and `no_endpoints` otherwise (only the account allow/ignore lists).

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::catalog::{Catalog, DataPolicy, Endpoint, Model, ModelKind, QUANTIZATIONS};
use crate::chat::ChatRequest;
use crate::money::Money;

/// What routing needs to know of a request, whatever its API: chat, embeddings or legacy
/// completions each build one ([`RouteRequest::chat`],
/// `EmbeddingsRequest::route_request`, `CompletionsRequest::route_request`).
#[derive(Debug, Clone, PartialEq)]
pub struct RouteRequest<'a> {
    /// The kind of model that can serve the request.
    pub kind: ModelKind,
    /// `model`; when absent and `models` is empty, the catalogue's default model (chat only).
    pub model: Option<&'a str>,
    /// Fallback models.
    pub models: &'a [String],
    /// The `provider` preferences.
    pub provider: Option<&'a ProviderPreferences>,
    /// Legacy `route` (`fallback` or `sort`).
    pub route: Option<&'a str>,
    /// Requested service tier.
    pub service_tier: Option<&'a str>,
    /// Standard parameters the request sets, for `require_parameters`.
    pub parameters: Vec<&'static str>,
    /// Prompt size estimate that must fit one endpoint's context, in tokens.
    pub prompt_tokens: u64,
    /// Largest completion asked for.
    pub max_output_tokens: Option<u64>,
    /// Input modalities used.
    pub modalities: Vec<&'static str>,
    /// The request declares tools.
    pub tools: bool,
    /// Embeddings: the vector length asked for (`dimensions`).
    pub dimensions: Option<u32>,
    /// Legacy completions: the field that only an endpoint serving the legacy API natively can
    /// honour (`suffix`, `echo`, several prompts...), when the request uses one.
    pub legacy_completions: Option<&'static str>,
}

impl<'a> RouteRequest<'a> {
    /// The routing view of a chat request.
    pub fn chat(request: &'a ChatRequest) -> Self {
        RouteRequest {
            kind: ModelKind::Chat,
            model: request.model.as_deref(),
            models: request.models.as_deref().unwrap_or(&[]),
            provider: request.provider.as_ref(),
            route: request.route.as_deref(),
            service_tier: request.service_tier.as_deref(),
            parameters: request.parameters_used(),
            prompt_tokens: request.estimated_prompt_tokens(),
            max_output_tokens: request.max_output_tokens(),
            modalities: request.input_modalities(),
            tools: request.tools.as_ref().is_some_and(|t| !t.is_empty()),
            dimensions: None,
            legacy_completions: None,
        }
    }
}

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum SortPreference {
    /// `"price"`, `"throughput"`, `"latency"` or `"exacto"`.
    By(SortBy),
    /// `{by, partition}`.
    Object {
        /// Sort key.
        by: SortBy,
        /// `model` (default) or `none`.
        #[serde(skip_serializing_if = "Option::is_none")]
        partition: Option<Partition>,
    },
}

impl<'de> Deserialize<'de> for SortPreference {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Object {
            by: SortBy,
            #[serde(default)]
            partition: Option<Partition>,
        }
        let value = Value::deserialize(deserializer)?;
        match value {
            Value::String(_) => serde_json::from_value::<SortBy>(value)
                .map(SortPreference::By)
                .map_err(de::Error::custom),
            Value::Object(_) => serde_json::from_value::<Object>(value)
                .map(|o| SortPreference::Object {
                    by: o.by,
                    partition: o.partition,
                })
                .map_err(de::Error::custom),
            other => Err(de::Error::custom(format!(
                "sort must be \"price\", \"throughput\", \"latency\", \"exacto\" or {{\"by\", \"partition\"}}, not {}",
                crate::chat::json_type(&other)
            ))),
        }
    }
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

impl Percentiles {
    /// The thresholds as `[p50, p75, p90, p99]`.
    fn thresholds(&self) -> [Option<f64>; 4] {
        match self {
            Percentiles::Number(n) => [Some(*n), None, None, None],
            Percentiles::Object { p50, p75, p90, p99 } => [*p50, *p75, *p90, *p99],
        }
    }
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

    fn as_array(&self) -> [f64; 4] {
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

/// Splits `author/slug:variant` into the model id and the variant.
pub fn split_variant(model: &str) -> (&str, Option<&str>) {
    match model.rsplit_once(':') {
        Some((id, variant)) if !variant.contains('/') => (id, Some(variant)),
        _ => (model, None),
    }
}

/// Model variants routing understands.
pub const VARIANTS: &[&str] = &["free", "nitro", "floor", "exacto"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Free,
    Nitro,
    Floor,
    Exacto,
}

impl Variant {
    fn parse(text: &str) -> Option<Variant> {
        match text {
            "free" => Some(Variant::Free),
            "nitro" => Some(Variant::Nitro),
            "floor" => Some(Variant::Floor),
            "exacto" => Some(Variant::Exacto),
            _ => None,
        }
    }

    fn sort(self) -> Option<SortBy> {
        match self {
            Variant::Free => None,
            Variant::Nitro => Some(SortBy::Throughput),
            Variant::Floor => Some(SortBy::Price),
            Variant::Exacto => Some(SortBy::Exacto),
        }
    }
}

/// Whether a provider filter (`deepinfra`, `deepinfra/turbo`) designates an endpoint: a base
/// slug matches every endpoint of the provider, a suffixed slug only the endpoint with that tag.
pub fn matches_slug(filter: &str, endpoint: &Endpoint) -> bool {
    let filter = filter.trim();
    filter.eq_ignore_ascii_case(&endpoint.provider) || filter.eq_ignore_ascii_case(&endpoint.tag)
}

/// `max_price`, resolved to exact money.
#[derive(Debug, Default)]
struct PriceLimits {
    /// USD per million tokens.
    prompt: Option<Money>,
    /// USD per million tokens.
    completion: Option<Money>,
    request: Option<Money>,
    image: Option<Money>,
    audio: Option<Money>,
}

fn parse_limit(field: &str, value: Option<&Value>) -> Result<Option<Money>, RouteError> {
    let invalid = |detail: String| {
        RouteError::InvalidPreference(format!("provider.max_price.{field} {detail}"))
    };
    let money = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => Money::from_json_number(n).map_err(|e| invalid(e.to_string()))?,
        Some(Value::String(s)) => Money::parse_usd(s).map_err(|e| invalid(e.to_string()))?,
        Some(other) => {
            return Err(invalid(format!(
                "must be a number or a decimal string, not {}",
                crate::chat::json_type(other)
            )))
        }
    };
    if money.picos() < 0 {
        return Err(invalid("must not be negative".to_owned()));
    }
    Ok(Some(money))
}

impl PriceLimits {
    fn parse(max: Option<&MaxPrice>) -> Result<PriceLimits, RouteError> {
        let Some(max) = max else {
            return Ok(PriceLimits::default());
        };
        Ok(PriceLimits {
            prompt: parse_limit("prompt", max.prompt.as_ref())?,
            completion: parse_limit("completion", max.completion.as_ref())?,
            request: parse_limit("request", max.request.as_ref())?,
            image: parse_limit("image", max.image.as_ref())?,
            audio: parse_limit("audio", max.audio.as_ref())?,
        })
    }

    /// Whether the endpoint costs more than a limit. Exact: per-token prices times a million
    /// against the per-million limits, in pico-dollars.
    fn exceeded_by(&self, endpoint: &Endpoint) -> bool {
        let per_million = |price: Money, limit: Option<Money>| {
            limit.is_some_and(|limit| price.checked_mul(1_000_000).is_none_or(|p| p > limit))
        };
        let per_unit = |price: Option<&crate::catalog::Price>, limit: Option<Money>| {
            limit.is_some_and(|limit| price.is_some_and(|p| p.amount > limit))
        };
        let p = &endpoint.pricing;
        per_million(p.prompt.amount, self.prompt)
            || per_million(p.completion.amount, self.completion)
            || per_unit(p.request.as_ref(), self.request)
            || per_unit(p.image.as_ref(), self.image)
            || per_unit(p.audio.as_ref(), self.audio)
    }
}

fn thresholds(field: &str, value: Option<&Percentiles>) -> Result<[Option<f64>; 4], RouteError> {
    let Some(value) = value else {
        return Ok([None; 4]);
    };
    let t = value.thresholds();
    for v in t.iter().flatten() {
        if !v.is_finite() || *v < 0.0 {
            return Err(RouteError::InvalidPreference(format!(
                "provider.{field} must be a non-negative number, got {v}"
            )));
        }
    }
    Ok(t)
}

/// The request's preferences and the account policy, validated and combined.
struct Rules {
    order: Option<Vec<String>>,
    allow_fallbacks: bool,
    require_parameters: bool,
    deny_collection: bool,
    deny_training: bool,
    zdr: bool,
    distillable: bool,
    only: Option<Vec<String>>,
    ignore: Vec<String>,
    account_allowed: Option<Vec<String>>,
    account_ignored: Vec<String>,
    quantizations: Option<Vec<String>>,
    sort: Option<SortBy>,
    partition: Partition,
    max_price: PriceLimits,
    min_throughput: [Option<f64>; 4],
    max_latency_ms: [Option<f64>; 4],
    service_tier: Option<&'static str>,
    estimate: u64,
    prompt_estimate: u64,
    modalities: Vec<&'static str>,
    parameters: Vec<&'static str>,
    soft_parameters: Vec<&'static str>,
    tools: bool,
    dimensions: Option<u32>,
    legacy_completions: Option<&'static str>,
}

/// Parameters that are only ever a soft preference (the contract's list, minus `tools`, which is
/// a hard filter here).
const SOFT_PARAMETERS: &[&str] = &["response_format", "verbosity"];

impl Rules {
    fn new(request: &RouteRequest<'_>, policy: &Policy) -> Result<Rules, RouteError> {
        let prefs = request.provider.cloned().unwrap_or_default();
        let quantizations = match prefs.quantizations {
            Some(list) if !list.is_empty() => {
                let list: Vec<String> = list.iter().map(|q| q.trim().to_lowercase()).collect();
                if let Some(bad) = list.iter().find(|q| !QUANTIZATIONS.contains(&q.as_str())) {
                    return Err(RouteError::InvalidPreference(format!(
                        "provider.quantizations: {bad:?} is not one of {}",
                        QUANTIZATIONS.join(", ")
                    )));
                }
                Some(list)
            }
            _ => None,
        };
        let route_partition = match request.route {
            None | Some("fallback") => None,
            Some("sort") => Some(Partition::None),
            Some(other) => {
                return Err(RouteError::InvalidPreference(format!(
                    "route {other:?} is not \"fallback\" or \"sort\""
                )))
            }
        };
        let partition = match &prefs.sort {
            Some(SortPreference::Object {
                partition: Some(p), ..
            }) => *p,
            _ => route_partition.unwrap_or(Partition::Model),
        };
        let service_tier = match request.service_tier {
            Some("priority" | "fast") => Some("priority"),
            Some("flex") => Some("flex"),
            _ => None,
        };
        let parameters = request.parameters.clone();
        let soft_parameters = parameters
            .iter()
            .copied()
            .filter(|p| SOFT_PARAMETERS.contains(p))
            .collect();
        let prompt_estimate = request.prompt_tokens;
        Ok(Rules {
            order: prefs.order.filter(|o| !o.is_empty()),
            allow_fallbacks: prefs.allow_fallbacks.unwrap_or(true),
            require_parameters: prefs.require_parameters.unwrap_or(false),
            deny_collection: prefs.data_collection == Some(DataCollection::Deny),
            deny_training: policy.deny_training,
            zdr: prefs.zdr.unwrap_or(false) || policy.zdr_only,
            distillable: prefs.enforce_distillable_text.unwrap_or(false),
            only: prefs.only,
            ignore: prefs.ignore.unwrap_or_default(),
            account_allowed: policy.allowed_providers.clone(),
            account_ignored: policy.ignored_providers.clone(),
            quantizations,
            sort: prefs.sort.as_ref().map(SortPreference::by),
            partition,
            max_price: PriceLimits::parse(prefs.max_price.as_ref())?,
            min_throughput: thresholds(
                "preferred_min_throughput",
                prefs.preferred_min_throughput.as_ref(),
            )?,
            max_latency_ms: thresholds(
                "preferred_max_latency",
                prefs.preferred_max_latency.as_ref(),
            )?
            .map(|t| t.map(|s| s * 1000.0)),
            service_tier,
            estimate: prompt_estimate.saturating_add(request.max_output_tokens.unwrap_or(0)),
            prompt_estimate,
            modalities: request.modalities.clone(),
            parameters,
            soft_parameters,
            tools: request.tools,
            dimensions: request.dimensions,
            legacy_completions: request.legacy_completions,
        })
    }

    /// Whether a tier endpoint was opted into.
    fn admits_tier(&self, tier: &str, endpoint: &Endpoint, variant: Option<Variant>) -> bool {
        let explicit = |list: &Option<Vec<String>>| {
            list.iter()
                .flatten()
                .any(|s| s.trim().eq_ignore_ascii_case(&endpoint.tag) && endpoint.tag.contains('/'))
        };
        (tier == "priority" && variant == Some(Variant::Nitro))
            || (tier == "flex" && variant == Some(Variant::Floor))
            || self.service_tier == Some(tier)
            || explicit(&self.order)
            || explicit(&self.only)
    }

    /// The first hard filter the endpoint fails.
    fn reject(
        &self,
        model: &Model,
        endpoint: &Endpoint,
        data_policy: DataPolicy,
        variant: Option<Variant>,
    ) -> Option<&'static str> {
        let listed = |list: &[String]| list.iter().any(|s| matches_slug(s, endpoint));
        let supports = |p: &str| endpoint.supported_parameters.is_empty() || endpoint.supports(p);
        if self.account_allowed.as_deref().is_some_and(|a| !listed(a))
            || listed(&self.account_ignored)
        {
            return Some(reasons::ACCOUNT_POLICY);
        }
        if self.only.as_deref().is_some_and(|o| !listed(o)) {
            return Some(reasons::ONLY);
        }
        if listed(&self.ignore) {
            return Some(reasons::IGNORE);
        }
        if !self.allow_fallbacks && self.order.as_deref().is_some_and(|o| !listed(o)) {
            return Some(reasons::ORDER);
        }
        if let Some(tier) = endpoint.service_tier.as_deref() {
            if !self.admits_tier(tier, endpoint, variant) {
                return Some(reasons::SERVICE_TIER);
            }
        }
        if self.zdr && !data_policy.zdr {
            return Some(reasons::ZDR);
        }
        if (self.deny_collection && (data_policy.training || data_policy.retains_prompts))
            || (self.deny_training && data_policy.training)
        {
            return Some(reasons::TRAINING);
        }
        if self.distillable {
            // The catalogue records no author permission for distillation: none is assumed.
            return Some(reasons::DISTILLABLE);
        }
        if self.quantizations.as_ref().is_some_and(|q| {
            !q.iter()
                .any(|q| q.eq_ignore_ascii_case(&endpoint.quantization))
        }) {
            return Some(reasons::QUANTIZATION);
        }
        if variant == Some(Variant::Free) && !endpoint.pricing.is_free() {
            return Some(reasons::NOT_FREE);
        }
        if self.max_price.exceeded_by(endpoint) {
            return Some(reasons::MAX_PRICE);
        }
        if self.estimate > endpoint.context_length
            || endpoint
                .max_prompt_tokens
                .is_some_and(|max| self.prompt_estimate > max)
        {
            return Some(reasons::CONTEXT_LENGTH);
        }
        if !self
            .modalities
            .iter()
            .all(|m| model.input_modalities.iter().any(|x| x == m))
        {
            return Some(reasons::MODALITY);
        }
        if self.tools && !supports("tools") {
            return Some(reasons::TOOLS);
        }
        if self.require_parameters && !self.parameters.iter().all(|p| supports(p)) {
            return Some(reasons::REQUIRE_PARAMETERS);
        }
        if let (Some(asked), Some(spec)) = (self.dimensions, model.embedding) {
            if !spec.supports_dimensions || asked > spec.dimensions {
                return Some(reasons::DIMENSIONS);
            }
        }
        if self.legacy_completions.is_some() && !endpoint.legacy_completions {
            return Some(reasons::LEGACY_COMPLETIONS);
        }
        None
    }

    /// Whether the endpoint misses a soft preference.
    fn misses_preference(&self, endpoint: &Endpoint, health: &EndpointHealth) -> bool {
        let below = |measured: Option<Quantiles>, minimum: &[Option<f64>; 4]| {
            measured.is_some_and(|q| {
                q.as_array()
                    .iter()
                    .zip(minimum)
                    .any(|(m, t)| t.is_some_and(|t| *m < t))
            })
        };
        let above = |measured: Option<Quantiles>, maximum: &[Option<f64>; 4]| {
            measured.is_some_and(|q| {
                q.as_array()
                    .iter()
                    .zip(maximum)
                    .any(|(m, t)| t.is_some_and(|t| *m > t))
            })
        };
        let lacks_soft = !endpoint.supported_parameters.is_empty()
            && self.soft_parameters.iter().any(|p| !endpoint.supports(p));
        below(health.throughput, &self.min_throughput)
            || above(health.latency_ms, &self.max_latency_ms)
            || lacks_soft
    }
}

/// An endpoint that passed the hard filters, with what ordering needs.
#[derive(Debug, Clone)]
struct Entry<'a> {
    candidate: Candidate,
    endpoint: &'a Endpoint,
    model: &'a Model,
    /// Prompt plus completion price per token.
    price: Money,
    health: EndpointHealth,
    misses: bool,
    /// Position of the model among the requested ones.
    model_pos: usize,
    /// The model's variant.
    variant: Option<Variant>,
}

impl Entry<'_> {
    fn healthy(&self) -> bool {
        !self.health.degraded && !self.health.circuit_open
    }
}

/// Orders by a measurement, measured ones first.
fn measured_order(a: Option<f64>, b: Option<f64>, descending: bool) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Some(a), Some(b)) if descending => b.total_cmp(&a),
        (Some(a), Some(b)) => a.total_cmp(&b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

fn tie_break(a: &Entry<'_>, b: &Entry<'_>) -> std::cmp::Ordering {
    a.price
        .cmp(&b.price)
        .then(a.model_pos.cmp(&b.model_pos))
        .then(a.candidate.endpoint.cmp(&b.candidate.endpoint))
}

/// Health class: healthy, missing a soft preference, degraded, circuit open.
fn class(e: &Entry<'_>) -> (bool, bool, bool) {
    (e.health.circuit_open, e.health.degraded, e.misses)
}

fn sort_strict(entries: &mut [Entry<'_>], by: SortBy) {
    entries.sort_by(|a, b| {
        class(a)
            .cmp(&class(b))
            .then_with(|| match by {
                SortBy::Price => std::cmp::Ordering::Equal,
                SortBy::Throughput | SortBy::Exacto => measured_order(
                    a.health.throughput.map(|q| q.p50),
                    b.health.throughput.map(|q| q.p50),
                    true,
                ),
                SortBy::Latency => measured_order(
                    a.health.latency_ms.map(|q| q.p50),
                    b.health.latency_ms.map(|q| q.p50),
                    false,
                ),
            })
            .then_with(|| tie_break(a, b))
    });
}

fn sort_by_order(entries: &mut Vec<Entry<'_>>, order: &[String]) {
    // Each entry's rank is found once, not once per comparison.
    let rank = |e: &Entry<'_>| {
        order
            .iter()
            .position(|s| matches_slug(s, e.endpoint))
            .unwrap_or(usize::MAX)
    };
    let mut ranked: Vec<(usize, Entry<'_>)> = entries.drain(..).map(|e| (rank(&e), e)).collect();
    ranked.sort_by(|(ra, a), (rb, b)| {
        ra.cmp(rb).then_with(|| {
            if *ra == usize::MAX {
                class(a).cmp(&class(b)).then_with(|| tie_break(a, b))
            } else {
                (a.health.circuit_open, a.health.degraded)
                    .cmp(&(b.health.circuit_open, b.health.degraded))
                    .then_with(|| tie_break(a, b))
            }
        })
    });
    entries.extend(ranked.into_iter().map(|(_, e)| e));
}

/// Index drawn with weight `1/price²` among `prices`; free endpoints (price zero) are the
/// cheapest possible, so when any is present the draw is uniform among the free ones. `random`
/// is a uniform number in `[0, 1)`.
pub fn weighted_choice(prices: &[Money], random: f64) -> Option<usize> {
    if prices.is_empty() {
        return None;
    }
    let random = if random.is_finite() {
        random.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let weights: Vec<f64> = if prices.iter().any(|p| p.picos() <= 0) {
        prices
            .iter()
            .map(|p| if p.picos() <= 0 { 1.0 } else { 0.0 })
            .collect()
    } else {
        // Relative to the cheapest, so that the weights stay in (0, 1] whatever the scale.
        let min = prices.iter().map(|p| p.picos()).min().unwrap_or(1) as f64;
        prices
            .iter()
            .map(|p| {
                let r = min / p.picos() as f64;
                r * r
            })
            .collect()
    };
    let total: f64 = weights.iter().sum();
    let target = random * total;
    let mut cumulative = 0.0;
    let mut last = 0;
    for (i, w) in weights.iter().enumerate() {
        if *w <= 0.0 {
            continue;
        }
        cumulative += w;
        last = i;
        if target < cumulative {
            return Some(i);
        }
    }
    Some(last)
}

/// Load-balanced order: a weighted draw among the healthy endpoints that meet the soft
/// preferences (or, if none does, among the healthy ones), then the rest by class and price.
fn sort_default(entries: &mut Vec<Entry<'_>>, random: f64) {
    entries.sort_by(|a, b| class(a).cmp(&class(b)).then_with(|| tie_break(a, b)));
    let pool_len = {
        let best = entries.first().map(class);
        entries
            .iter()
            .take_while(|e| e.healthy() && Some(class(e)) == best)
            .count()
    };
    if pool_len > 1 {
        let prices: Vec<Money> = entries[..pool_len].iter().map(|e| e.price).collect();
        if let Some(i) = weighted_choice(&prices, random) {
            let chosen = entries.remove(i);
            entries.insert(0, chosen);
        }
    }
}

/// Moves the sticky provider's first healthy endpoint to the front.
fn apply_sticky(entries: &mut Vec<Entry<'_>>, sticky: &str) {
    if let Some(pos) = entries
        .iter()
        .position(|e| e.healthy() && matches_slug(sticky, e.endpoint))
    {
        let e = entries.remove(pos);
        entries.insert(0, e);
    }
}

/// Computes the route for a chat request.
pub fn plan(
    request: &ChatRequest,
    catalog: &Catalog,
    health: &HealthSnapshot,
    policy: &Policy,
    context: &RouteContext,
) -> Result<RoutePlan, RouteError> {
    plan_request(
        &RouteRequest::chat(request),
        catalog,
        health,
        policy,
        context,
    )
}

/// Computes the route for a request of any API. Model names are catalogue ids or aliases; the
/// plan names models by id. A chat request naming no model gets the catalogue's default model.
pub fn plan_request(
    request: &RouteRequest<'_>,
    catalog: &Catalog,
    health: &HealthSnapshot,
    policy: &Policy,
    context: &RouteContext,
) -> Result<RoutePlan, RouteError> {
    // Duplicates dropped in one pass (a set of what was seen, not a scan of the list so far).
    let mut requested: Vec<String> = Vec::new();
    let mut seen_ids: HashSet<&str> = HashSet::new();
    for m in request
        .model
        .into_iter()
        .chain(request.models.iter().map(String::as_str))
    {
        let m = m.trim();
        if !m.is_empty() && seen_ids.insert(m) {
            requested.push(m.to_owned());
        }
    }
    if requested.is_empty() {
        match catalog.default_model() {
            Some(model) if request.kind == ModelKind::Chat => requested.push(model.id.clone()),
            _ => return Err(RouteError::NoModel),
        }
    }
    let rules = Rules::new(request, policy)?;
    let mut models: Vec<(&Model, Option<Variant>)> = Vec::new();
    for id in &requested {
        let (base, variant) = split_variant(id);
        let variant = match variant {
            None => None,
            Some(v) => Some(Variant::parse(v).ok_or_else(|| {
                RouteError::InvalidPreference(format!(
                    "{id}: unknown model variant `:{v}` (known: {})",
                    VARIANTS
                        .iter()
                        .map(|v| format!(":{v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?),
        };
        let model = catalog
            .model(base)
            .ok_or_else(|| RouteError::ModelNotFound { model: id.clone() })?;
        if model.kind() != request.kind {
            return Err(RouteError::WrongModelKind {
                model: model.id.clone(),
                kind: model.kind(),
            });
        }
        models.push((model, variant));
    }

    let mut plan = RoutePlan {
        requested_models: requested.clone(),
        ..RoutePlan::default()
    };
    let exclusion = |model: &Model, endpoint: &Endpoint, reason: &str| Exclusion {
        model: model.id.clone(),
        provider: endpoint.provider.clone(),
        tag: endpoint.tag.clone(),
        reason: reason.to_owned(),
    };

    // Hard filters.
    let mut seen: HashSet<(&str, usize)> = HashSet::new();
    let mut entries: Vec<Entry<'_>> = Vec::new();
    for (model_pos, (model, variant)) in models.iter().enumerate() {
        for (index, endpoint) in model.endpoints.iter().enumerate() {
            if !seen.insert((model.id.as_str(), index)) {
                continue;
            }
            let data_policy = catalog
                .provider(&endpoint.provider)
                .map_or(DataPolicy::UNKNOWN, |p| p.data_policy);
            if let Some(reason) = rules.reject(model, endpoint, data_policy, *variant) {
                plan.excluded.push(exclusion(model, endpoint, reason));
                continue;
            }
            let endpoint_health = health.get(&model.id, &endpoint.tag);
            entries.push(Entry {
                candidate: Candidate {
                    model: model.id.clone(),
                    endpoint: index,
                    provider: endpoint.provider.clone(),
                    tag: endpoint.tag.clone(),
                },
                endpoint,
                model,
                price: endpoint
                    .pricing
                    .prompt
                    .amount
                    .saturating_add(endpoint.pricing.completion.amount),
                misses: rules.misses_preference(endpoint, &endpoint_health),
                health: endpoint_health,
                model_pos,
                variant: *variant,
            });
        }
    }

    // Circuit breaker: open circuits are skipped unless nothing else is left (probes).
    if entries.iter().any(|e| !e.health.circuit_open) {
        entries.retain(|e| {
            if e.health.circuit_open {
                plan.excluded
                    .push(exclusion(e.model, e.endpoint, reasons::CIRCUIT_OPEN));
                false
            } else {
                true
            }
        });
    }

    // Ordering, per model or over the pool.
    let groups: Vec<Vec<Entry<'_>>> = match rules.partition {
        Partition::Model => {
            let mut groups: Vec<Vec<Entry<'_>>> = vec![Vec::new(); models.len()];
            for e in entries {
                let pos = e.model_pos;
                groups[pos].push(e);
            }
            groups
        }
        Partition::None => vec![entries],
    };
    let mut first_group = true;
    for mut group in groups {
        if group.is_empty() {
            continue;
        }
        let variant_sort = group
            .iter()
            .min_by_key(|e| e.model_pos)
            .and_then(|e| e.variant)
            .and_then(Variant::sort);
        if let Some(order) = &rules.order {
            sort_by_order(&mut group, order);
        } else if let Some(by) = rules.sort.or(variant_sort) {
            sort_strict(&mut group, by);
        } else {
            sort_default(&mut group, context.random);
            if first_group {
                if let Some(sticky) = &context.sticky_provider {
                    apply_sticky(&mut group, sticky);
                }
            }
        }
        first_group = false;
        if !rules.allow_fallbacks && rules.order.is_none() {
            // Only the primary choice of each model.
            let mut firsts: HashSet<usize> = HashSet::new();
            group.retain(|e| {
                if firsts.insert(e.model_pos) {
                    true
                } else {
                    plan.excluded
                        .push(exclusion(e.model, e.endpoint, reasons::ALLOW_FALLBACKS));
                    false
                }
            });
        }
        plan.candidates
            .extend(group.into_iter().map(|e| e.candidate));
    }

    if plan.candidates.is_empty() {
        return Err(no_endpoints(plan, request.legacy_completions));
    }
    Ok(plan)
}

fn no_endpoints(plan: RoutePlan, legacy_field: Option<&str>) -> RouteError {
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
