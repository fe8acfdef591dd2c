//! Guardrails and their layering into one effective policy.

use serde::{Deserialize, Serialize};

use super::detectors::{BuiltinFilter, CustomFilter};
use super::rules::{compile, ContentRule, Rule};
use super::screen::{screen, Screening};
use crate::catalog::{Endpoint, Provider};
use crate::chat::ChatRequest;
use crate::money::Money;

/// `*` matches any run of characters; otherwise exact; case-insensitive.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            pi += 1;
            mark = ti;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// `limit_usd` on the wire is a JSON number; inside it is exact [`Money`].
mod usd_number {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::money::Money;

    pub fn serialize<S: Serializer>(value: &Option<Money>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            None => s.serialize_none(),
            Some(m) => m.to_json_number().serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Money>, D::Error> {
        Option::<serde_json::Number>::deserialize(d)?
            .map(|n| {
                Money::from_json_number(&n).map_err(|e| D::Error::custom(format!("limit_usd {e}")))
            })
            .transpose()
    }
}

/// A guardrail, with the contract's fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Guardrail {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Budget in USD for each assigned key, per `reset_interval` (a JSON number on the wire).
    #[serde(with = "usd_number")]
    pub limit_usd: Option<Money>,
    /// `daily`, `weekly` or `monthly`.
    pub reset_interval: Option<String>,
    /// BYOK spend counts toward the budget.
    pub include_byok_in_budgets: bool,
    /// Only these models (wildcards such as `anthropic/*`).
    pub allowed_models: Option<Vec<String>>,
    /// Never these models.
    pub ignored_models: Option<Vec<String>>,
    /// Only these providers.
    pub allowed_providers: Option<Vec<String>>,
    /// Never these providers.
    pub ignored_providers: Option<Vec<String>>,
    /// Legacy switch: the value of every `enforce_zdr_*` field left unset.
    pub enforce_zdr: Option<bool>,
    /// ZDR for Anthropic's own endpoints.
    pub enforce_zdr_anthropic: Option<bool>,
    /// ZDR for OpenAI's own endpoints.
    pub enforce_zdr_openai: Option<bool>,
    /// ZDR for Google's own endpoints.
    pub enforce_zdr_google: Option<bool>,
    /// ZDR for xAI's endpoints.
    pub enforce_zdr_xai: Option<bool>,
    /// ZDR for every other provider.
    pub enforce_zdr_other: Option<bool>,
    /// Paid endpoints that train on prompts are allowed.
    pub enable_paid_model_training: Option<bool>,
    /// Free endpoints that train on prompts are allowed.
    pub enable_free_model_training: Option<bool>,
    /// Free endpoints that publish prompts are allowed (no catalogued endpoint publishes).
    pub enable_free_model_publication: Option<bool>,
    /// Built-in content filters.
    pub content_filter_builtins: Option<Vec<BuiltinFilter>>,
    /// Custom content filters.
    pub content_filters: Option<Vec<CustomFilter>>,
    /// Moderation of the requests of its keys (a Switchyard extension; replaces the account's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moderation: Option<super::moderation::ModerationSettings>,
    /// Creation time (ISO-8601).
    pub created_at: Option<String>,
    /// Last update (ISO-8601).
    pub updated_at: Option<String>,
    /// Workspace (always null here).
    pub workspace_id: Option<String>,
}

/// The provider groups ZDR is enforced per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ZdrGroup {
    /// Anthropic's own endpoints.
    Anthropic,
    /// OpenAI's own endpoints.
    OpenAi,
    /// Google's own endpoints (AI Studio, Vertex).
    Google,
    /// xAI.
    Xai,
    /// Everyone else.
    Other,
}

impl ZdrGroup {
    /// The group of a provider slug.
    pub fn of(provider_slug: &str) -> ZdrGroup {
        match provider_slug.to_ascii_lowercase().as_str() {
            "anthropic" => ZdrGroup::Anthropic,
            "openai" => ZdrGroup::OpenAi,
            "google-ai-studio" | "google-vertex" | "google" => ZdrGroup::Google,
            "xai" => ZdrGroup::Xai,
            _ => ZdrGroup::Other,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl Guardrail {
    /// Checks the fields a client can get wrong and compiles the content rules; the message
    /// names the field or rule.
    pub fn validate(&self) -> Result<Vec<Rule>, String> {
        if self.name.trim().is_empty() {
            return Err("name is required".to_owned());
        }
        if self.limit_usd.is_some_and(|l| l < Money::ZERO) {
            return Err("limit_usd must be a non-negative number".to_owned());
        }
        if let Some(r) = self.reset_interval.as_deref() {
            if !["daily", "weekly", "monthly"].contains(&r) {
                return Err(format!(
                    "reset_interval {r:?} is not one of daily, weekly, monthly"
                ));
            }
        }
        if self.limit_usd.is_some() != self.reset_interval.is_some() {
            return Err("limit_usd and reset_interval must be set together".to_owned());
        }
        self.rules()
    }

    /// The content rules, compiled and tagged with this guardrail's name.
    pub fn rules(&self) -> Result<Vec<Rule>, String> {
        let mut rules = compile(
            self.content_filter_builtins.as_deref().unwrap_or(&[]),
            self.content_filters.as_deref().unwrap_or(&[]),
        )
        .map_err(|e| format!("guardrail {:?}: {e}", self.name))?;
        for r in &mut rules {
            r.guardrail.clone_from(&self.name);
        }
        Ok(rules)
    }

    /// The budget as exact money.
    pub fn limit(&self) -> Option<Money> {
        self.limit_usd
    }

    /// Whether ZDR is enforced for a provider group (the group's switch, else the legacy one).
    pub fn zdr_enforced(&self, group: ZdrGroup) -> bool {
        let specific = match group {
            ZdrGroup::Anthropic => self.enforce_zdr_anthropic,
            ZdrGroup::OpenAi => self.enforce_zdr_openai,
            ZdrGroup::Google => self.enforce_zdr_google,
            ZdrGroup::Xai => self.enforce_zdr_xai,
            ZdrGroup::Other => self.enforce_zdr_other,
        };
        specific.or(self.enforce_zdr).unwrap_or(false)
    }

    /// Whether a model may be used.
    pub fn model_allowed(&self, model: &str) -> bool {
        Effective::layer(self).model_allowed(model)
    }

    /// Whether a provider may be used.
    pub fn provider_allowed(&self, slug: &str) -> bool {
        Effective::layer(self).provider_allowed(slug)
    }

    /// Why an endpoint is refused, if it is (`guardrail:*` reasons).
    pub fn refuses(
        &self,
        model: &str,
        provider: &Provider,
        endpoint: &Endpoint,
    ) -> Option<&'static str> {
        Effective::layer(self).refuses(model, provider, endpoint)
    }
}

/// One budget to check: spend in the current window must stay below `limit`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Budget {
    /// The guardrail that sets it.
    pub guardrail: String,
    /// `daily`, `weekly` or `monthly`.
    pub interval: String,
    /// The limit.
    pub limit: Money,
    /// BYOK spend counts.
    pub include_byok: bool,
}

/// Several guardrails layered into one policy. Built by [`combine`]; order-independent.
#[derive(Debug, Clone, Default)]
pub struct Effective {
    /// Names of the layers, sorted.
    pub guardrails: Vec<String>,
    /// Each layer's allow-list of models: a model must match one pattern of every list.
    allowed_models: Vec<Vec<String>>,
    /// Union of the ignore-lists of models.
    ignored_models: Vec<String>,
    /// Each layer's allow-list of providers.
    allowed_providers: Vec<Vec<String>>,
    /// Union of the ignore-lists of providers.
    ignored_providers: Vec<String>,
    /// ZDR per [`ZdrGroup`], ORed over the layers.
    zdr: [bool; 5],
    /// Paid endpoints that train: `Some(false)` when any layer forbids it.
    pub paid_training: Option<bool>,
    /// Free endpoints that train: `Some(false)` when any layer forbids it.
    pub free_training: Option<bool>,
    /// Free endpoints that publish prompts: `Some(false)` when any layer forbids it.
    pub free_publication: Option<bool>,
    /// Every budget, each checked on its own; sorted.
    pub budgets: Vec<Budget>,
    /// Content rules: one per detector, the strongest action of any layer; sorted.
    pub rules: Vec<ContentRule>,
}

/// The stricter of two optional permissions: `false` wins, then `true`, then unset.
fn stricter(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), _) | (_, Some(true)) => Some(true),
        _ => None,
    }
}

fn sorted_union(mut a: Vec<String>, b: &[String]) -> Vec<String> {
    a.extend(b.iter().map(|s| s.to_lowercase()));
    a.sort();
    a.dedup();
    a
}

fn normalized(list: &[String]) -> Vec<String> {
    sorted_union(Vec::new(), list)
}

impl Effective {
    /// The policy part of one guardrail (no content rules).
    pub fn layer(g: &Guardrail) -> Effective {
        let mut zdr = [false; 5];
        for group in [
            ZdrGroup::Anthropic,
            ZdrGroup::OpenAi,
            ZdrGroup::Google,
            ZdrGroup::Xai,
            ZdrGroup::Other,
        ] {
            zdr[group.index()] = g.zdr_enforced(group);
        }
        let budgets = match (g.limit_usd, &g.reset_interval) {
            (Some(limit), Some(interval)) => vec![Budget {
                guardrail: g.name.clone(),
                interval: interval.clone(),
                limit,
                include_byok: g.include_byok_in_budgets,
            }],
            _ => Vec::new(),
        };
        Effective {
            guardrails: vec![g.name.clone()],
            allowed_models: g
                .allowed_models
                .as_deref()
                .map(normalized)
                .into_iter()
                .collect(),
            ignored_models: normalized(g.ignored_models.as_deref().unwrap_or(&[])),
            allowed_providers: g
                .allowed_providers
                .as_deref()
                .map(normalized)
                .into_iter()
                .collect(),
            ignored_providers: normalized(g.ignored_providers.as_deref().unwrap_or(&[])),
            zdr,
            paid_training: g.enable_paid_model_training,
            free_training: g.enable_free_model_training,
            free_publication: g.enable_free_model_publication,
            budgets,
            rules: Vec::new(),
        }
    }

    /// Adds a layer (policy only); the result does not depend on the order of layers.
    fn merge(mut self, other: Effective) -> Effective {
        self.guardrails.extend(other.guardrails);
        self.guardrails.sort();
        self.allowed_models.extend(other.allowed_models);
        self.allowed_models.sort();
        self.allowed_models.dedup();
        self.ignored_models = sorted_union(self.ignored_models, &other.ignored_models);
        self.allowed_providers.extend(other.allowed_providers);
        self.allowed_providers.sort();
        self.allowed_providers.dedup();
        self.ignored_providers = sorted_union(self.ignored_providers, &other.ignored_providers);
        for (a, b) in self.zdr.iter_mut().zip(other.zdr) {
            *a |= b;
        }
        self.paid_training = stricter(self.paid_training, other.paid_training);
        self.free_training = stricter(self.free_training, other.free_training);
        self.free_publication = stricter(self.free_publication, other.free_publication);
        self.budgets.extend(other.budgets);
        self.budgets.sort();
        self.budgets.dedup();
        self
    }

    /// Whether a model may be used: it matches every layer's allow-list and no ignore-list.
    pub fn model_allowed(&self, model: &str) -> bool {
        self.allowed_models
            .iter()
            .all(|list| list.iter().any(|p| wildcard_match(p, model)))
            && !self.ignored_models.iter().any(|p| wildcard_match(p, model))
    }

    /// Whether a provider may be used: it matches every layer's allow-list and no ignore-list.
    pub fn provider_allowed(&self, slug: &str) -> bool {
        self.allowed_providers
            .iter()
            .all(|list| list.iter().any(|p| wildcard_match(p, slug)))
            && !self
                .ignored_providers
                .iter()
                .any(|p| wildcard_match(p, slug))
    }

    /// Whether only ZDR endpoints of this provider may be used.
    pub fn zdr_required(&self, provider_slug: &str) -> bool {
        self.zdr[ZdrGroup::of(provider_slug).index()]
    }

    /// Whether endpoints that train on prompts may be used (free or paid ones). Unset in every
    /// layer means allowed: the account settings decide.
    pub fn training_allowed(&self, free: bool) -> bool {
        let switch = if free {
            self.free_training
        } else {
            self.paid_training
        };
        switch != Some(false)
    }

    /// The first budget that `spent` (the spend in a budget's window) has reached.
    pub fn exhausted_budget(&self, mut spent: impl FnMut(&Budget) -> Money) -> Option<&Budget> {
        self.budgets.iter().find(|b| spent(b) >= b.limit)
    }

    /// Why an endpoint is refused, if it is (`guardrail:model`, `guardrail:provider`,
    /// `guardrail:zdr`, `guardrail:training`).
    pub fn refuses(
        &self,
        model: &str,
        provider: &Provider,
        endpoint: &Endpoint,
    ) -> Option<&'static str> {
        if !self.model_allowed(model) {
            return Some("guardrail:model");
        }
        if !self.provider_allowed(&provider.slug) {
            return Some("guardrail:provider");
        }
        if self.zdr_required(&provider.slug) && !provider.data_policy.zdr {
            return Some("guardrail:zdr");
        }
        if provider.data_policy.training && !self.training_allowed(endpoint.pricing.is_free()) {
            return Some("guardrail:training");
        }
        None
    }

    /// Applies the merged content rules to a request ([`screen`]).
    pub fn screen(&self, request: &mut ChatRequest) -> Screening {
        screen(request, &self.rules)
    }
}

/// Layers guardrails into one policy: allow-lists intersect, ignore-lists union, ZDR ORs per
/// provider group, a `false` training or publication switch in any layer wins, every budget
/// is kept, and content rules union with one rule per detector at its strongest action
/// (block over redact over flag). The result does not depend on the order of `layers`.
/// An invalid content rule is an error naming the guardrail and the rule.
pub fn combine(layers: &[Guardrail]) -> Result<Effective, String> {
    let mut effective = Effective::default();
    let mut rules: Vec<ContentRule> = Vec::new();
    for g in layers {
        effective = effective.merge(Effective::layer(g));
        rules.extend(g.rules()?);
    }
    // One rule per detector: the strongest action; on a tie, the smallest (guardrail, name).
    rules.sort_by(|a, b| {
        (
            a.detector.key(),
            std::cmp::Reverse(a.action),
            &a.guardrail,
            &a.name,
        )
            .cmp(&(
                b.detector.key(),
                std::cmp::Reverse(b.action),
                &b.guardrail,
                &b.name,
            ))
    });
    rules.dedup_by(|later, first| later.detector.key() == first.detector.key());
    effective.rules = rules;
    Ok(effective)
}

impl crate::restrict::Restriction for Effective {
    fn refuses(
        &self,
        model: &str,
        provider: &Provider,
        endpoint: &Endpoint,
    ) -> Option<&'static str> {
        Effective::refuses(self, model, provider, endpoint)
    }
}
