//! The per-endpoint hard filters and soft preferences: the request's preferences and the
//! account policy, validated and combined into [`Rules`].

use serde_json::Value;

use super::request::{Policy, RouteRequest};
use super::types::{reasons, EndpointHealth, Quantiles, RouteError};
use crate::catalog::{DataPolicy, Endpoint, Model, QUANTIZATIONS};
use crate::error::json_type;
use crate::money::Money;
use crate::preferences::{
    DataCollection, MaxPrice, Partition, Percentiles, SortBy, SortPreference,
};

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
pub(super) enum Variant {
    Free,
    Nitro,
    Floor,
    Exacto,
    /// Not a suffix: the models `openrouter/auto` stands for (every parameter the request sets
    /// supported, cheapest first).
    Auto,
}

impl Variant {
    pub(super) fn parse(text: &str) -> Option<Variant> {
        match text {
            "free" => Some(Variant::Free),
            "nitro" => Some(Variant::Nitro),
            "floor" => Some(Variant::Floor),
            "exacto" => Some(Variant::Exacto),
            _ => None,
        }
    }

    pub(super) fn sort(self) -> Option<SortBy> {
        match self {
            Variant::Free => None,
            Variant::Nitro => Some(SortBy::Throughput),
            Variant::Floor => Some(SortBy::Price),
            Variant::Exacto => Some(SortBy::Exacto),
            Variant::Auto => Some(SortBy::Price),
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
                json_type(other)
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
pub(super) struct Rules {
    pub(super) order: Option<Vec<String>>,
    pub(super) allow_fallbacks: bool,
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
    pub(super) sort: Option<SortBy>,
    pub(super) partition: Partition,
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
    pub(super) fn new(request: &RouteRequest<'_>, policy: &Policy) -> Result<Rules, RouteError> {
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
    pub(super) fn reject(
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
        if (self.require_parameters || variant == Some(Variant::Auto))
            && !self.parameters.iter().all(|p| supports(p))
        {
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
    pub(super) fn misses_preference(&self, endpoint: &Endpoint, health: &EndpointHealth) -> bool {
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
