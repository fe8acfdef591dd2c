//! The query of `GET /models` and `/models/count`: every parameter of the contract is either
//! applied or refused with a 400 naming it (filters the catalogue has no data for, sorts by
//! popularity or benchmark scores, the RSS feed). Parameters outside the contract are ignored.

use serde::Deserialize;
use switchyard_core::catalog::card::{CATEGORIES, INPUT_MODALITIES, OUTPUT_MODALITIES};
use switchyard_core::catalog::{Catalog, Model};
use switchyard_core::health::EndpointStats;
use switchyard_core::money::Money;

use crate::error::ApiError;

/// Query of `GET /models`, every value as sent (each is parsed here, so that a bad one is a 400
/// naming its parameter).
#[derive(Debug, Default, Deserialize)]
pub struct ModelsQuery {
    offset: Option<String>,
    limit: Option<String>,
    category: Option<String>,
    supported_parameters: Option<String>,
    input_modalities: Option<String>,
    output_modalities: Option<String>,
    q: Option<String>,
    sort: Option<String>,
    context: Option<String>,
    min_price: Option<String>,
    max_price: Option<String>,
    min_output_price: Option<String>,
    max_output_price: Option<String>,
    arch: Option<String>,
    model_authors: Option<String>,
    providers: Option<String>,
    zdr: Option<String>,
    min_age_days: Option<String>,
    max_age_days: Option<String>,
    use_rss: Option<String>,
    use_rss_chat_links: Option<String>,
    distillable: Option<String>,
    region: Option<String>,
    min_intelligence_index: Option<String>,
    max_intelligence_index: Option<String>,
    min_coding_index: Option<String>,
    max_coding_index: Option<String>,
    min_agentic_index: Option<String>,
    max_agentic_index: Option<String>,
    min_tool_success_rate: Option<String>,
    max_tool_success_rate: Option<String>,
}

/// The sorts of the contract the gateway serves, with the older names it also takes.
const SORTS: &[&str] = &[
    "newest",
    "pricing-low-to-high",
    "pricing-high-to-low",
    "context-high-to-low",
    "throughput-high-to-low",
    "latency-low-to-high",
    "created",
    "name",
    "alphabetical",
    "context_length",
    "price",
];

/// The sorts of the contract that need data the gateway does not have (popularity, benchmark
/// scores).
const UNSUPPORTED_SORTS: &[&str] = &[
    "most-popular",
    "top-weekly",
    "intelligence-high-to-low",
    "coding-high-to-low",
    "agentic-high-to-low",
    "design-arena-elo-high-to-low",
];

fn csv(text: &Option<String>) -> Vec<String> {
    text.iter()
        .flat_map(|t| t.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A non-negative integer parameter.
fn integer(name: &str, text: &Option<String>) -> Result<Option<u64>, ApiError> {
    match text.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => t
            .parse::<u64>()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("{name} must be a non-negative integer"))),
    }
}

/// A price bound in USD per million tokens, as exact money (compared with a per-token price
/// times a million).
fn price_per_million(name: &str, text: &Option<String>) -> Result<Option<Money>, ApiError> {
    match text.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => match Money::parse_usd(t) {
            Ok(m) if m.picos() >= 0 => Ok(Some(m)),
            _ => Err(ApiError::bad_request(format!(
                "{name} must be a non-negative number of USD per million tokens"
            ))),
        },
    }
}

/// What a validated query asks for.
pub struct Selection {
    /// Models skipped.
    pub offset: usize,
    /// Most models returned; `None` for all.
    pub limit: Option<usize>,
    category: Option<String>,
    parameters: Vec<String>,
    inputs: Vec<String>,
    outputs: Vec<String>,
    needle: Option<String>,
    sort: Option<String>,
    context: Option<u64>,
    prompt_price: (Option<Money>, Option<Money>),
    completion_price: (Option<Money>, Option<Money>),
    families: Vec<String>,
    authors: Vec<String>,
    providers: Vec<String>,
    zdr: bool,
    age_days: (Option<u64>, Option<u64>),
}

impl ModelsQuery {
    /// Checks every parameter; a 400 names the first that is malformed or not served.
    pub fn selection(&self) -> Result<Selection, ApiError> {
        let unserved = [
            ("use_rss", &self.use_rss, "the RSS feed is not served"),
            (
                "use_rss_chat_links",
                &self.use_rss_chat_links,
                "the RSS feed is not served",
            ),
            (
                "distillable",
                &self.distillable,
                "the catalogue does not record which models allow distillation",
            ),
            (
                "region",
                &self.region,
                "the catalogue does not record data regions",
            ),
            (
                "min_intelligence_index",
                &self.min_intelligence_index,
                "benchmark indices are not recorded",
            ),
            (
                "max_intelligence_index",
                &self.max_intelligence_index,
                "benchmark indices are not recorded",
            ),
            (
                "min_coding_index",
                &self.min_coding_index,
                "benchmark indices are not recorded",
            ),
            (
                "max_coding_index",
                &self.max_coding_index,
                "benchmark indices are not recorded",
            ),
            (
                "min_agentic_index",
                &self.min_agentic_index,
                "benchmark indices are not recorded",
            ),
            (
                "max_agentic_index",
                &self.max_agentic_index,
                "benchmark indices are not recorded",
            ),
            (
                "min_tool_success_rate",
                &self.min_tool_success_rate,
                "tool success rates are not recorded",
            ),
            (
                "max_tool_success_rate",
                &self.max_tool_success_rate,
                "tool success rates are not recorded",
            ),
        ];
        let refused: Vec<&str> = unserved
            .iter()
            .filter(|(_, v, _)| v.as_deref().is_some_and(|v| !v.trim().is_empty()))
            .map(|(name, _, _)| *name)
            .collect();
        if let Some(first) = refused.first() {
            let why = unserved
                .iter()
                .find(|(n, _, _)| n == first)
                .map_or("", |(_, _, why)| *why);
            return Err(ApiError::bad_request(format!(
                "Query parameter {} is not supported by this gateway: {why}",
                refused.join(", ")
            )));
        }
        let offset = integer("offset", &self.offset)?.unwrap_or(0);
        let limit = match integer("limit", &self.limit)? {
            Some(0) => return Err(ApiError::bad_request("limit must be between 1 and 1000")),
            Some(n) if n > 1000 => {
                return Err(ApiError::bad_request("limit must be between 1 and 1000"))
            }
            other => other,
        };
        let category = match self.category.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(c) => {
                let c = c.to_ascii_lowercase();
                if !CATEGORIES.contains(&c.as_str()) {
                    return Err(ApiError::bad_request(format!(
                        "category must be one of {}",
                        CATEGORIES.join(", ")
                    )));
                }
                Some(c)
            }
        };
        let inputs = csv(&self.input_modalities);
        if inputs
            .iter()
            .any(|i| !INPUT_MODALITIES.contains(&i.as_str()))
        {
            return Err(ApiError::bad_request(format!(
                "input_modalities must be a comma-separated list of {}",
                INPUT_MODALITIES.join(", ")
            )));
        }
        let mut outputs = csv(&self.output_modalities);
        if outputs
            .iter()
            .any(|o| o != "all" && !OUTPUT_MODALITIES.contains(&o.as_str()))
        {
            return Err(ApiError::bad_request(format!(
                "output_modalities must be all or a comma-separated list of {}",
                OUTPUT_MODALITIES.join(", ")
            )));
        }
        if outputs.is_empty() {
            outputs.push("text".to_owned());
        }
        let sort = match self.sort.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) if SORTS.contains(&s) => Some(s.to_owned()),
            Some(s) if UNSUPPORTED_SORTS.contains(&s) => {
                return Err(ApiError::bad_request(format!(
                    "sort {s} is not supported by this gateway (it needs popularity or benchmark data); supported: {}",
                    SORTS[..6].join(", ")
                )))
            }
            Some(_) => {
                return Err(ApiError::bad_request(format!(
                    "sort must be one of {}",
                    SORTS[..6].join(", ")
                )))
            }
        };
        let zdr = match self.zdr.as_deref().map(str::trim) {
            None | Some("") | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(ApiError::bad_request("zdr must be true or false")),
        };
        let context = integer("context", &self.context)?;
        Ok(Selection {
            offset: usize::try_from(offset).unwrap_or(usize::MAX),
            limit: limit.map(|l| usize::try_from(l).unwrap_or(1000)),
            category,
            parameters: csv(&self.supported_parameters),
            inputs,
            outputs,
            needle: self
                .q
                .as_deref()
                .map(str::trim)
                .filter(|q| !q.is_empty())
                .map(str::to_lowercase),
            sort,
            context,
            prompt_price: (
                price_per_million("min_price", &self.min_price)?,
                price_per_million("max_price", &self.max_price)?,
            ),
            completion_price: (
                price_per_million("min_output_price", &self.min_output_price)?,
                price_per_million("max_output_price", &self.max_output_price)?,
            ),
            families: csv(&self.arch),
            authors: csv(&self.model_authors),
            providers: csv(&self.providers),
            zdr,
            age_days: (
                integer("min_age_days", &self.min_age_days)?,
                integer("max_age_days", &self.max_age_days)?,
            ),
        })
    }
}

/// A per-token price as USD per million tokens.
fn per_million(m: Money) -> Money {
    Money::from_picos(m.picos().saturating_mul(1_000_000))
}

/// Whether `value` lies within the optional bounds.
fn within(value: Money, (low, high): (Option<Money>, Option<Money>)) -> bool {
    low.is_none_or(|l| value >= l) && high.is_none_or(|h| value <= h)
}

impl Selection {
    /// Whether a model passes every filter; `now_ms` dates the age filters.
    pub fn admits(&self, catalog: &Catalog, m: &Model, now_ms: i64) -> bool {
        let supported = catalog.model_parameters(m);
        let cheapest = m.cheapest_endpoint();
        let age_days = (now_ms / 1000).saturating_sub(m.created).max(0) / 86_400;
        let age_days = u64::try_from(age_days).unwrap_or(0);
        self.category
            .as_ref()
            .is_none_or(|c| m.card.categories.iter().any(|x| x == c))
            && self
                .parameters
                .iter()
                .all(|p| supported.contains(&p.as_str()))
            && self
                .inputs
                .iter()
                .all(|i| m.input_modalities.iter().any(|x| x == i))
            && self
                .outputs
                .iter()
                .any(|o| o == "all" || m.output_modalities.iter().any(|x| x == o))
            && self.needle.as_ref().is_none_or(|n| {
                m.id.to_lowercase().contains(n)
                    || m.name.to_lowercase().contains(n)
                    || m.description.to_lowercase().contains(n)
            })
            && self.context.is_none_or(|c| m.context_length >= c)
            && cheapest.is_some_and(|e| {
                within(per_million(e.pricing.prompt.amount), self.prompt_price)
                    && within(
                        per_million(e.pricing.completion.amount),
                        self.completion_price,
                    )
            })
            && (self.families.is_empty()
                || self.families.contains(&m.tokenizer.to_ascii_lowercase()))
            && (self.authors.is_empty() || self.authors.iter().any(|a| a == m.author()))
            && (self.providers.is_empty()
                || m.endpoints.iter().any(|e| {
                    catalog.provider(&e.provider).is_some_and(|p| {
                        self.providers
                            .iter()
                            .any(|x| x == &p.slug || *x == p.name.to_ascii_lowercase())
                    })
                }))
            && (!self.zdr
                || m.endpoints.iter().any(|e| {
                    catalog
                        .provider(&e.provider)
                        .is_some_and(|p| p.data_policy.zdr)
                }))
            && self.age_days.0.is_none_or(|d| age_days >= d)
            && self.age_days.1.is_none_or(|d| age_days <= d)
    }

    /// Orders the selected models; `stats` gives an endpoint's measured performance.
    pub fn order(&self, models: &mut [&Model], stats: impl Fn(&Model) -> Vec<EndpointStats>) {
        let average = |m: &Model| {
            m.cheapest_endpoint().map_or(Money::ZERO, |e| {
                e.pricing
                    .prompt
                    .amount
                    .saturating_add(e.pricing.completion.amount)
            })
        };
        // The best median of any endpoint, in thousandths, so that the key is an integer.
        let best = |m: &Model, throughput: bool| -> Option<i64> {
            stats(m)
                .iter()
                .filter_map(|s| {
                    if throughput {
                        s.throughput_last_30m.map(|q| q.p50)
                    } else {
                        s.latency_last_30m.map(|q| q.p50)
                    }
                })
                .map(|v| (v * 1000.0) as i64)
                .reduce(|a, b| if throughput { a.max(b) } else { a.min(b) })
        };
        match self.sort.as_deref() {
            Some("newest" | "created") => models.sort_by_key(|m| std::cmp::Reverse(m.created)),
            Some("name" | "alphabetical") => models.sort_by(|a, b| a.name.cmp(&b.name)),
            Some("context-high-to-low" | "context_length") => {
                models.sort_by_key(|m| std::cmp::Reverse(m.context_length));
            }
            Some("pricing-low-to-high" | "price") => models.sort_by_key(|m| average(m)),
            Some("pricing-high-to-low") => models.sort_by_key(|m| std::cmp::Reverse(average(m))),
            // Models without a measurement go last.
            Some("throughput-high-to-low") => {
                models.sort_by_key(|m| best(m, true).map_or(i64::MAX, |t| -t));
            }
            Some("latency-low-to-high") => {
                models.sort_by_key(|m| best(m, false).unwrap_or(i64::MAX));
            }
            _ => {}
        }
    }
}
