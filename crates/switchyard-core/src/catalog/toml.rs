//! The catalogue's TOML document: raw serde shapes (`deny_unknown_fields`) and the validation
//! that turns them into a [`Catalog`], reporting every problem with its location.

use std::collections::{BTreeSet, HashMap};

use serde::Deserialize;

use super::card;
use super::{
    Catalog, CatalogError, DataPolicy, EmbeddingSpec, Endpoint, Model, ModelKind, Price, Pricing,
    Problem, Provider, ProviderKind, QUANTIZATIONS,
};
use crate::money::Money;

mod card_fields;
use card_fields::{model_card, RawDefaultParameters, RawPerRequestLimits, RawReasoning};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    #[serde(default)]
    default_model: Option<String>,
    #[serde(default)]
    providers: Vec<RawProvider>,
    #[serde(default)]
    models: Vec<RawModel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    slug: String,
    name: String,
    kind: ProviderKind,
    base_url: String,
    #[serde(default)]
    api_key_env: Option<String>,
    #[serde(default)]
    byok: bool,
    #[serde(default)]
    data_policy: Option<RawDataPolicy>,
    #[serde(default)]
    privacy_policy_url: Option<String>,
    #[serde(default)]
    terms_of_service_url: Option<String>,
    #[serde(default)]
    status_page_url: Option<String>,
    #[serde(default)]
    headquarters: Option<String>,
    #[serde(default)]
    datacenters: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDataPolicy {
    training: Option<bool>,
    retains_prompts: Option<bool>,
    retention_days: Option<u32>,
    #[serde(default)]
    zdr: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    id: String,
    name: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    kind: Option<ModelKind>,
    #[serde(default)]
    dimensions: Option<u32>,
    #[serde(default)]
    supports_dimensions: Option<bool>,
    #[serde(default)]
    canonical_slug: Option<String>,
    #[serde(default)]
    created: i64,
    #[serde(default)]
    description: String,
    #[serde(default)]
    context_length: Option<u64>,
    #[serde(default = "default_modalities")]
    input_modalities: Vec<String>,
    #[serde(default)]
    output_modalities: Option<Vec<String>>,
    #[serde(default)]
    tokenizer: Option<String>,
    #[serde(default)]
    instruct_type: Option<String>,
    #[serde(default)]
    hugging_face_id: Option<String>,
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    knowledge_cutoff: Option<String>,
    #[serde(default)]
    expiration_date: Option<String>,
    #[serde(default)]
    supported_voices: Option<Vec<String>>,
    #[serde(default)]
    reasoning: Option<RawReasoning>,
    #[serde(default)]
    per_request_limits: Option<RawPerRequestLimits>,
    #[serde(default)]
    default_parameters: Option<RawDefaultParameters>,
    #[serde(default)]
    endpoints: Vec<RawEndpoint>,
}

fn default_modalities() -> Vec<String> {
    vec!["text".to_owned()]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    provider: String,
    upstream_model: String,
    #[serde(default)]
    tag: Option<String>,
    pricing: RawPricing,
    #[serde(default)]
    quantization: Option<String>,
    #[serde(default)]
    context_length: Option<u64>,
    #[serde(default)]
    max_completion_tokens: Option<u64>,
    #[serde(default)]
    max_prompt_tokens: Option<u64>,
    #[serde(default)]
    supported_parameters: Vec<String>,
    #[serde(default)]
    service_tier: Option<String>,
    #[serde(default)]
    supports_implicit_caching: bool,
    #[serde(default)]
    legacy_completions: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPricing {
    prompt: String,
    /// Required for chat models; embedding models have no completion tokens.
    completion: Option<String>,
    request: Option<String>,
    image: Option<String>,
    image_output: Option<String>,
    audio: Option<String>,
    audio_output: Option<String>,
    input_cache_read: Option<String>,
    input_cache_write: Option<String>,
    internal_reasoning: Option<String>,
    web_search: Option<String>,
}

/// Collects problems while validating.
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            location: location.into(),
            message: message.into(),
        });
    }
}

fn valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

fn valid_model_id(id: &str) -> bool {
    match id.split_once('/') {
        Some((author, slug)) => {
            valid_slug(author)
                && !slug.is_empty()
                && !slug.contains('/')
                && !slug.contains(':')
                && slug
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        }
        None => false,
    }
}

fn price(problems: &mut Problems, location: String, text: &str) -> Price {
    match Money::parse_usd(text) {
        Ok(amount) if amount.picos() >= 0 => Price {
            text: text.trim().to_owned(),
            amount,
        },
        Ok(_) => {
            problems.add(location, format!("price {text:?} is negative"));
            Price::zero()
        }
        Err(err) => {
            problems.add(location, format!("price {text:?} {err}"));
            Price::zero()
        }
    }
}

fn optional_price(
    problems: &mut Problems,
    location: String,
    text: Option<&String>,
) -> Option<Price> {
    text.map(|t| price(problems, location, t))
}

/// Whether a name can be an alias: letters, digits, `-`, `_`, `.` and `/`; no `:`, which
/// introduces a variant.
fn valid_alias(alias: &str) -> bool {
    !alias.is_empty()
        && alias.len() <= 128
        && alias
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

/// Checks the kind-specific fields of a model; the embedding shape of an embedding model.
fn model_kind(
    problems: &mut Problems,
    at: &str,
    kind: ModelKind,
    m: &RawModel,
) -> Option<EmbeddingSpec> {
    match kind {
        ModelKind::Chat => {
            for (field, set) in [
                ("dimensions", m.dimensions.is_some()),
                ("supports_dimensions", m.supports_dimensions.is_some()),
            ] {
                if set {
                    problems.add(
                        format!("{at}.{field}"),
                        "only embedding models (kind = \"embedding\") have dimensions",
                    );
                }
            }
            None
        }
        ModelKind::Embedding => {
            let dimensions = match m.dimensions {
                Some(0) | None => {
                    problems.add(
                        format!("{at}.dimensions"),
                        "an embedding model needs its native vector length (a positive integer)",
                    );
                    0
                }
                Some(n) => n,
            };
            Some(EmbeddingSpec {
                dimensions,
                supports_dimensions: m.supports_dimensions.unwrap_or(false),
            })
        }
    }
}

/// Checks the fields an embedding model's endpoint cannot have.
fn embedding_endpoint(problems: &mut Problems, at: &str, e: &RawEndpoint) {
    if !e.supported_parameters.is_empty() {
        problems.add(
            format!("{at}.supported_parameters"),
            "an embedding endpoint takes no chat parameters (the model's supports_dimensions says whether `dimensions` is taken)",
        );
    }
    if e.legacy_completions {
        problems.add(
            format!("{at}.legacy_completions"),
            "an embedding model does not serve completions",
        );
    }
    if e.max_completion_tokens.is_some() {
        problems.add(
            format!("{at}.max_completion_tokens"),
            "an embedding model produces no completion tokens",
        );
    }
}

/// Adds every model's aliases to the index of ids, reporting those that are malformed, name a
/// model id, or are declared twice.
fn index_aliases(
    source: &str,
    models: &[Model],
    index: &mut HashMap<String, usize>,
    problems: &mut Problems,
) {
    let ids: HashMap<&str, usize> = models
        .iter()
        .enumerate()
        .map(|(i, m)| (m.id.as_str(), i))
        .collect();
    let mut owner: HashMap<&str, usize> = HashMap::new();
    for (i, m) in models.iter().enumerate() {
        for (j, alias) in m.aliases.iter().enumerate() {
            let at = format!("{source}: models[{i}] ({}).aliases[{j}]", m.id);
            if !valid_alias(alias) {
                problems.add(
                    at,
                    format!("{alias:?} is not an alias: letters, digits, '-', '_', '.' or '/' (no ':', which introduces a variant)"),
                );
                continue;
            }
            if let Some(&other) = ids.get(alias.as_str()) {
                problems.add(
                    at,
                    format!("{alias:?} is the id of model {}", models[other].id),
                );
                continue;
            }
            if let Some(&other) = owner.get(alias.as_str()) {
                problems.add(
                    at,
                    format!("{alias:?} is already an alias of {}", models[other].id),
                );
                continue;
            }
            owner.insert(alias, i);
            index.insert(alias.clone(), i);
        }
    }
}

impl Catalog {
    /// Parses and validates a catalogue document. `source` names the file in problem locations.
    pub fn from_toml(source: &str, text: &str) -> Result<Catalog, CatalogError> {
        let raw: RawCatalog = ::toml::from_str(text).map_err(|err| {
            CatalogError(vec![Problem {
                location: source.to_owned(),
                message: err.to_string().trim_end().replace('\n', "\n  "),
            }])
        })?;
        let mut problems = Problems(Vec::new());
        let catalog = Self::validate(source, raw, &mut problems);
        if problems.0.is_empty() {
            Ok(catalog)
        } else {
            Err(CatalogError(problems.0))
        }
    }

    fn validate(source: &str, raw: RawCatalog, problems: &mut Problems) -> Catalog {
        let mut providers = Vec::with_capacity(raw.providers.len());
        let mut provider_index = HashMap::new();
        for (i, p) in raw.providers.into_iter().enumerate() {
            let at = format!("{source}: providers[{i}] ({})", p.slug);
            if !valid_slug(&p.slug) {
                problems.add(
                    format!("{at}.slug"),
                    "slug must be lowercase letters, digits, '-', '_' or '.'",
                );
            }
            if provider_index
                .insert(p.slug.clone(), providers.len())
                .is_some()
            {
                problems.add(
                    format!("{at}.slug"),
                    format!("duplicate provider slug {:?}", p.slug),
                );
            }
            if p.name.trim().is_empty() {
                problems.add(format!("{at}.name"), "name is empty");
            }
            if !(p.base_url.starts_with("http://") || p.base_url.starts_with("https://")) {
                problems.add(
                    format!("{at}.base_url"),
                    format!("{:?} is not an http(s) URL", p.base_url),
                );
            }
            if let Some(env) = &p.api_key_env {
                if env.is_empty() || !env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    problems.add(
                        format!("{at}.api_key_env"),
                        format!("{env:?} is not an environment variable name (the key itself never goes in the catalogue)"),
                    );
                }
            }
            let data_policy = match p.data_policy {
                None => DataPolicy::UNKNOWN,
                Some(d) => {
                    let policy = DataPolicy {
                        training: d.training.unwrap_or(true),
                        retains_prompts: d.retains_prompts.unwrap_or(true),
                        retention_days: d.retention_days,
                        zdr: d.zdr,
                    };
                    if policy.zdr && (policy.retains_prompts || policy.training) {
                        problems.add(
                            format!("{at}.data_policy"),
                            "zdr = true contradicts retains_prompts or training (both must be false)",
                        );
                    }
                    policy
                }
            };
            providers.push(Provider {
                slug: p.slug,
                name: p.name,
                kind: p.kind,
                base_url: p.base_url.trim_end_matches('/').to_owned(),
                api_key_env: p.api_key_env,
                byok: p.byok,
                data_policy,
                privacy_policy_url: p.privacy_policy_url,
                terms_of_service_url: p.terms_of_service_url,
                status_page_url: p.status_page_url,
                headquarters: p.headquarters,
                datacenters: p.datacenters,
            });
        }

        let mut models = Vec::with_capacity(raw.models.len());
        let mut model_index = HashMap::new();
        for (i, mut m) in raw.models.into_iter().enumerate() {
            let at = format!("{source}: models[{i}] ({})", m.id);
            if !valid_model_id(&m.id) {
                problems.add(
                    format!("{at}.id"),
                    "id must be author/slug (lowercase author, no ':' in the slug)",
                );
            }
            if model_index.insert(m.id.clone(), models.len()).is_some() {
                problems.add(format!("{at}.id"), format!("duplicate model id {:?}", m.id));
            }
            if m.endpoints.is_empty() {
                problems.add(
                    format!("{at}.endpoints"),
                    "a model needs at least one endpoint",
                );
            }
            if m.context_length == Some(0) {
                problems.add(format!("{at}.context_length"), "must be positive");
            }
            let kind = m.kind.unwrap_or(ModelKind::Chat);
            let embedding = model_kind(problems, &at, kind, &m);
            let output_modalities = m.output_modalities.clone().unwrap_or_else(|| {
                vec![match kind {
                    ModelKind::Chat => "text".to_owned(),
                    ModelKind::Embedding => "embeddings".to_owned(),
                }]
            });
            let embeds = output_modalities.iter().any(|o| o == "embeddings");
            if embeds != (kind == ModelKind::Embedding) || (embeds && output_modalities.len() > 1) {
                problems.add(
                    format!("{at}.output_modalities"),
                    match kind {
                        ModelKind::Chat => {
                            "a chat model does not output \"embeddings\" (set kind = \"embedding\")"
                        }
                        ModelKind::Embedding => "an embedding model outputs [\"embeddings\"] only",
                    },
                );
            }
            let card = model_card(problems, &at, &mut m, &output_modalities);
            let mut endpoints = Vec::with_capacity(m.endpoints.len());
            let mut tags = BTreeSet::new();
            for (j, e) in m.endpoints.into_iter().enumerate() {
                let at = format!("{at}.endpoints[{j}]");
                if kind == ModelKind::Embedding {
                    embedding_endpoint(problems, &at, &e);
                }
                match provider_index.get(&e.provider).map(|&p| providers[p].kind) {
                    None => problems.add(
                        format!("{at}.provider"),
                        format!("no provider with slug {:?}", e.provider),
                    ),
                    Some(ProviderKind::Anthropic) if kind == ModelKind::Embedding => problems.add(
                        format!("{at}.provider"),
                        "an anthropic provider serves no embeddings",
                    ),
                    Some(provider_kind)
                        if e.legacy_completions && provider_kind != ProviderKind::Openai =>
                    {
                        problems.add(
                            format!("{at}.legacy_completions"),
                            format!(
                                "only openai providers serve the legacy completions API, not {}",
                                provider_kind.as_str()
                            ),
                        );
                    }
                    Some(_) => {}
                }
                let tag = e.tag.unwrap_or_else(|| e.provider.clone());
                if tag != e.provider && !tag.starts_with(&format!("{}/", e.provider)) {
                    problems.add(
                        format!("{at}.tag"),
                        format!(
                            "tag {tag:?} must be the provider slug or start with \"{}/\"",
                            e.provider
                        ),
                    );
                }
                if !tags.insert(tag.clone()) {
                    problems.add(
                        format!("{at}.tag"),
                        format!("two endpoints share the tag {tag:?}"),
                    );
                }
                if e.upstream_model.trim().is_empty() {
                    problems.add(format!("{at}.upstream_model"), "upstream_model is empty");
                }
                let quantization = e.quantization.unwrap_or_else(|| "unknown".to_owned());
                if !QUANTIZATIONS.contains(&quantization.as_str()) {
                    problems.add(
                        format!("{at}.quantization"),
                        format!(
                            "{quantization:?} is not one of {}",
                            QUANTIZATIONS.join(", ")
                        ),
                    );
                }
                let context_length = match e.context_length.or(m.context_length) {
                    Some(0) | None => {
                        problems.add(
                            format!("{at}.context_length"),
                            "context_length is required (on the model or the endpoint) and must be positive",
                        );
                        0
                    }
                    Some(n) => n,
                };
                if e.max_completion_tokens == Some(0) {
                    problems.add(format!("{at}.max_completion_tokens"), "must be positive");
                }
                let pr = &e.pricing;
                let pat = format!("{at}.pricing");
                let completion = match (kind, &pr.completion) {
                    (ModelKind::Chat, Some(text)) => {
                        price(problems, format!("{pat}.completion"), text)
                    }
                    (ModelKind::Chat, None) => {
                        problems.add(
                            format!("{pat}.completion"),
                            "a chat model's endpoint needs a completion price",
                        );
                        Price::zero()
                    }
                    (ModelKind::Embedding, Some(text)) => {
                        let p = price(problems, format!("{pat}.completion"), text);
                        if !p.amount.is_zero() {
                            problems.add(
                                format!("{pat}.completion"),
                                "an embedding model produces no completion tokens: leave the completion price out",
                            );
                        }
                        p
                    }
                    (ModelKind::Embedding, None) => Price::zero(),
                };
                let pricing = Pricing {
                    prompt: price(problems, format!("{pat}.prompt"), &pr.prompt),
                    completion,
                    request: optional_price(
                        problems,
                        format!("{pat}.request"),
                        pr.request.as_ref(),
                    ),
                    image: optional_price(problems, format!("{pat}.image"), pr.image.as_ref()),
                    image_output: optional_price(
                        problems,
                        format!("{pat}.image_output"),
                        pr.image_output.as_ref(),
                    ),
                    audio: optional_price(problems, format!("{pat}.audio"), pr.audio.as_ref()),
                    audio_output: optional_price(
                        problems,
                        format!("{pat}.audio_output"),
                        pr.audio_output.as_ref(),
                    ),
                    input_cache_read: optional_price(
                        problems,
                        format!("{pat}.input_cache_read"),
                        pr.input_cache_read.as_ref(),
                    ),
                    input_cache_write: optional_price(
                        problems,
                        format!("{pat}.input_cache_write"),
                        pr.input_cache_write.as_ref(),
                    ),
                    internal_reasoning: optional_price(
                        problems,
                        format!("{pat}.internal_reasoning"),
                        pr.internal_reasoning.as_ref(),
                    ),
                    web_search: optional_price(
                        problems,
                        format!("{pat}.web_search"),
                        pr.web_search.as_ref(),
                    ),
                };
                endpoints.push(Endpoint {
                    provider: e.provider,
                    tag,
                    upstream_model: e.upstream_model,
                    pricing,
                    quantization,
                    context_length,
                    max_completion_tokens: e.max_completion_tokens,
                    max_prompt_tokens: e.max_prompt_tokens,
                    supported_parameters: e.supported_parameters,
                    service_tier: e.service_tier,
                    supports_implicit_caching: e.supports_implicit_caching,
                    legacy_completions: e.legacy_completions,
                });
            }
            let context_length = m
                .context_length
                .or_else(|| endpoints.iter().map(|e| e.context_length).max())
                .unwrap_or(0);
            let tokenizer = m
                .tokenizer
                .unwrap_or_else(|| card::default_tokenizer(&m.id).to_owned());
            models.push(Model {
                canonical_slug: m.canonical_slug.unwrap_or_else(|| m.id.clone()),
                id: m.id,
                aliases: m.aliases,
                embedding,
                name: m.name,
                created: m.created,
                description: m.description,
                context_length,
                input_modalities: m.input_modalities,
                output_modalities,
                tokenizer,
                instruct_type: m.instruct_type,
                hugging_face_id: m.hugging_face_id,
                card,
                endpoints,
            });
        }
        index_aliases(source, &models, &mut model_index, problems);
        let default_model = raw.default_model.and_then(|name| {
            let at = format!("{source}: default_model");
            match model_index.get(name.trim()) {
                None => {
                    problems.add(at, format!("no model has the id or alias {name:?}"));
                    None
                }
                Some(&i) if models[i].kind() != ModelKind::Chat => {
                    problems.add(
                        at,
                        format!("{name:?} is an embedding model; the default model answers chat requests"),
                    );
                    None
                }
                Some(&i) => Some(i),
            }
        });
        Catalog {
            providers,
            models,
            provider_index,
            model_index,
            default_model,
        }
    }
}
