//! The model catalogue: providers, models, endpoints and their prices and data policies.
//!
//! A catalogue is read from TOML into raw serde structures (`deny_unknown_fields`), then
//! [`Catalog::from_toml`] validates the whole document and reports every problem at once with its
//! location. A validated [`Catalog`] is immutable plain data; the server shares it behind an `Arc`
//! and swaps the whole snapshot on reload.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::money::Money;

/// Wire format a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenAI Chat Completions and every compatible server.
    Openai,
    /// Anthropic Messages API.
    Anthropic,
    /// Google AI Studio `generateContent`.
    Gemini,
}

impl ProviderKind {
    /// The kind's name as written in the catalogue.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
        }
    }
}

/// The quantizations OpenRouter names.
pub const QUANTIZATIONS: &[&str] = &[
    "int4", "int8", "fp4", "mxfp4", "nvfp4", "fp6", "fp8", "mxfp8", "fp16", "bf16", "fp32",
    "unknown",
];

/// What a model produces: a chat completion or an embedding vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Chat completions (the default).
    Chat,
    /// Embedding vectors (`/embeddings`).
    Embedding,
}

impl ModelKind {
    /// The kind's name as written in the catalogue.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Chat => "chat",
            ModelKind::Embedding => "embedding",
        }
    }
}

/// What an embedding model produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddingSpec {
    /// Length of the vectors the model produces natively.
    pub dimensions: u32,
    /// Whether the model takes the `dimensions` parameter (shorter vectors on request).
    pub supports_dimensions: bool,
}

/// A provider's data policy, resolved: anything the catalogue leaves unknown is assumed to be the
/// worst case (retains prompts and trains on them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataPolicy {
    /// The provider may train on prompts.
    pub training: bool,
    /// The provider retains prompts.
    pub retains_prompts: bool,
    /// How long prompts are retained, when known.
    pub retention_days: Option<u32>,
    /// Zero data retention.
    pub zdr: bool,
}

impl DataPolicy {
    /// The policy assumed when nothing is known.
    pub const UNKNOWN: DataPolicy = DataPolicy {
        training: true,
        retains_prompts: true,
        retention_days: None,
        zdr: false,
    };
}

/// A price per token (or per unit), kept both as the catalogue wrote it and as exact money.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    /// The decimal string as written, for the models API.
    pub text: String,
    /// The exact amount.
    pub amount: Money,
}

impl Price {
    /// A zero price.
    pub fn zero() -> Self {
        Price {
            text: "0".to_owned(),
            amount: Money::ZERO,
        }
    }
}

/// Every pricing key of the contract that the catalogue may set. Prompt and completion are
/// required; the rest are absent when the endpoint does not charge for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pricing {
    /// USD per prompt token.
    pub prompt: Price,
    /// USD per completion token.
    pub completion: Price,
    /// USD per request.
    pub request: Option<Price>,
    /// USD per input image.
    pub image: Option<Price>,
    /// USD per output image.
    pub image_output: Option<Price>,
    /// USD per input audio token.
    pub audio: Option<Price>,
    /// USD per output audio token.
    pub audio_output: Option<Price>,
    /// USD per cached input token read.
    pub input_cache_read: Option<Price>,
    /// USD per input token written to the cache (5-minute TTL).
    pub input_cache_write: Option<Price>,
    /// USD per internal reasoning token (when billed apart from completion).
    pub internal_reasoning: Option<Price>,
    /// USD per web search.
    pub web_search: Option<Price>,
}

impl Pricing {
    /// The named optional keys, in the contract's order, for rendering.
    pub fn optional_keys(&self) -> [(&'static str, Option<&Price>); 9] {
        [
            ("request", self.request.as_ref()),
            ("image", self.image.as_ref()),
            ("image_output", self.image_output.as_ref()),
            ("audio", self.audio.as_ref()),
            ("audio_output", self.audio_output.as_ref()),
            ("input_cache_read", self.input_cache_read.as_ref()),
            ("input_cache_write", self.input_cache_write.as_ref()),
            ("internal_reasoning", self.internal_reasoning.as_ref()),
            ("web_search", self.web_search.as_ref()),
        ]
    }

    /// Whether every price is zero.
    pub fn is_free(&self) -> bool {
        self.prompt.amount.is_zero()
            && self.completion.amount.is_zero()
            && self.request.as_ref().is_none_or(|p| p.amount.is_zero())
    }
}

/// A provider of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// Stable slug, such as `openai` or `deepinfra`.
    pub slug: String,
    /// Display name, such as `DeepInfra`.
    pub name: String,
    /// Wire format.
    pub kind: ProviderKind,
    /// Prefix the wire paths are appended to (`https://api.openai.com/v1`).
    pub base_url: String,
    /// Name of the environment variable holding the provider key; `None` for keyless servers.
    pub api_key_env: Option<String>,
    /// The provider key belongs to the operator's own account (bring your own key).
    pub byok: bool,
    /// Resolved data policy.
    pub data_policy: DataPolicy,
    /// Links shown by the providers API.
    pub privacy_policy_url: Option<String>,
    /// Terms of service.
    pub terms_of_service_url: Option<String>,
    /// Status page.
    pub status_page_url: Option<String>,
    /// Headquarters country code.
    pub headquarters: Option<String>,
    /// Datacenter country codes.
    pub datacenters: Vec<String>,
}

/// One way of serving a model: a provider, its upstream model name and its prices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Provider slug.
    pub provider: String,
    /// Endpoint tag (`deepinfra` or `deepinfra/turbo`); defaults to the provider slug.
    pub tag: String,
    /// Model name sent upstream.
    pub upstream_model: String,
    /// Prices.
    pub pricing: Pricing,
    /// Quantization, one of [`QUANTIZATIONS`].
    pub quantization: String,
    /// Context window of this endpoint.
    pub context_length: u64,
    /// Largest completion this endpoint produces.
    pub max_completion_tokens: Option<u64>,
    /// Largest prompt this endpoint accepts.
    pub max_prompt_tokens: Option<u64>,
    /// Request parameters this endpoint accepts.
    pub supported_parameters: Vec<String>,
    /// Service tier (`flex`, `priority`...), when the endpoint is a tier endpoint.
    pub service_tier: Option<String>,
    /// Whether the endpoint caches prompts without being asked.
    pub supports_implicit_caching: bool,
    /// Whether the endpoint serves the legacy `/completions` API natively (a raw prompt, `suffix`,
    /// `echo`, several prompts); endpoints without it get legacy requests as chat requests.
    pub legacy_completions: bool,
}

impl Endpoint {
    /// Whether the endpoint accepts the named request parameter.
    pub fn supports(&self, parameter: &str) -> bool {
        self.supported_parameters.iter().any(|p| p == parameter)
    }
}

/// A model of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    /// `author/slug`.
    pub id: String,
    /// Other names clients may use for the model (`claude-sonnet-4-20250514`, `gpt-4o`); unique
    /// across the catalogue. Answers name the model by its id.
    pub aliases: Vec<String>,
    /// `Some` for embedding models, `None` for chat models.
    pub embedding: Option<EmbeddingSpec>,
    /// Permanent slug; defaults to the id.
    pub canonical_slug: String,
    /// Display name.
    pub name: String,
    /// Unix seconds when the model was added.
    pub created: i64,
    /// Description.
    pub description: String,
    /// Largest context among its endpoints (or as declared).
    pub context_length: u64,
    /// Input modalities (`text`, `image`, `file`, `audio`, `video`).
    pub input_modalities: Vec<String>,
    /// Output modalities.
    pub output_modalities: Vec<String>,
    /// Tokenizer family, one of the contract's [`card::TOKENIZERS`].
    pub tokenizer: String,
    /// Instruct format, if any.
    pub instruct_type: Option<String>,
    /// Hugging Face id, for open weights.
    pub hugging_face_id: Option<String>,
    /// What the models API shows of the model besides its endpoints.
    pub card: ModelCard,
    /// Endpoints, in catalogue order.
    pub endpoints: Vec<Endpoint>,
}

impl Model {
    /// Chat or embedding.
    pub fn kind(&self) -> ModelKind {
        if self.embedding.is_some() {
            ModelKind::Embedding
        } else {
            ModelKind::Chat
        }
    }

    /// The author part of the id.
    pub fn author(&self) -> &str {
        self.id.split_once('/').map_or("", |(a, _)| a)
    }

    /// Union of the endpoints' supported parameters, sorted.
    pub fn supported_parameters(&self) -> Vec<String> {
        let set: BTreeSet<&str> = self
            .endpoints
            .iter()
            .flat_map(|e| e.supported_parameters.iter().map(String::as_str))
            .collect();
        set.into_iter().map(str::to_owned).collect()
    }

    /// `text+image->text`, as OpenRouter writes modality.
    pub fn modality(&self) -> String {
        format!(
            "{}->{}",
            self.input_modalities.join("+"),
            self.output_modalities.join("+")
        )
    }

    /// The cheapest endpoint, whose prices the models API shows.
    pub fn cheapest_endpoint(&self) -> Option<&Endpoint> {
        self.endpoints.iter().min_by_key(|e| {
            (
                e.pricing
                    .prompt
                    .amount
                    .saturating_add(e.pricing.completion.amount),
                e.pricing.prompt.amount,
            )
        })
    }
}

/// A validated, immutable catalogue.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    providers: Vec<Provider>,
    models: Vec<Model>,
    provider_index: HashMap<String, usize>,
    /// Model ids and aliases, each to its model.
    model_index: HashMap<String, usize>,
    /// Index of the model used when a chat request names none.
    default_model: Option<usize>,
}

/// One problem found in a catalogue, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: `models[3] (openai/gpt-4o).endpoints[0].pricing.prompt`.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Every problem of an invalid catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render_problems(.0))]
pub struct CatalogError(pub Vec<Problem>);

fn render_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

pub mod card;
mod toml;

pub use card::ModelCard;

impl Catalog {
    /// Every provider, in catalogue order.
    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }

    /// Every model, in catalogue order.
    pub fn models(&self) -> &[Model] {
        &self.models
    }

    /// A provider by slug.
    pub fn provider(&self, slug: &str) -> Option<&Provider> {
        self.provider_index.get(slug).map(|&i| &self.providers[i])
    }

    /// A model by id or alias (without variant suffix).
    pub fn model(&self, name: &str) -> Option<&Model> {
        self.model_index.get(name).map(|&i| &self.models[i])
    }

    /// The model that serves chat requests naming no model, when the catalogue sets one.
    pub fn default_model(&self) -> Option<&Model> {
        self.default_model.map(|i| &self.models[i])
    }

    /// The contract's request parameters an endpoint of `model` takes, in the contract's order:
    /// those the catalogue lists, or, when it lists none, those its provider kind's codec
    /// forwards ([`ProviderKind::parameters`]); none for an embedding model. Names that are not
    /// request parameters of the contract (capabilities the codecs read) are left out.
    pub fn endpoint_parameters(&self, model: &Model, endpoint: &Endpoint) -> Vec<&'static str> {
        if model.kind() == ModelKind::Embedding {
            return Vec::new();
        }
        let kind = self.provider(&endpoint.provider).map(|p| p.kind);
        card::PARAMETERS
            .iter()
            .copied()
            .filter(|p| {
                if endpoint.supported_parameters.is_empty() {
                    kind.is_some_and(|k| k.parameters().contains(p))
                } else {
                    endpoint.supports(p)
                }
            })
            .collect()
    }

    /// The union of [`Catalog::endpoint_parameters`] over a model's endpoints, in the
    /// contract's order.
    pub fn model_parameters(&self, model: &Model) -> Vec<&'static str> {
        let each: Vec<Vec<&'static str>> = model
            .endpoints
            .iter()
            .map(|e| self.endpoint_parameters(model, e))
            .collect();
        card::PARAMETERS
            .iter()
            .copied()
            .filter(|p| each.iter().any(|e| e.contains(p)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[providers]]
slug = "openai"
name = "OpenAI"
kind = "openai"
base_url = "https://api.openai.com/v1/"
api_key_env = "OPENAI_API_KEY"
data_policy = { training = false, retains_prompts = true, retention_days = 30 }

[[providers]]
slug = "mystery"
name = "Mystery"
kind = "openai"
base_url = "http://localhost:1234/v1"

[[models]]
id = "openai/gpt-4o"
name = "OpenAI: GPT-4o"
context_length = 128000
input_modalities = ["text", "image"]

[[models.endpoints]]
provider = "openai"
upstream_model = "gpt-4o"
pricing = { prompt = "0.0000025", completion = "0.00001", input_cache_read = "0.00000125" }
max_completion_tokens = 16384
supported_parameters = ["temperature", "tools"]

[[models.endpoints]]
provider = "mystery"
upstream_model = "gpt-4o"
pricing = { prompt = "0.000002", completion = "0.000008" }
"#;

    #[test]
    fn reads_a_valid_catalogue() {
        let catalog = Catalog::from_toml("catalog.toml", GOOD).expect("valid");
        let model = catalog.model("openai/gpt-4o").expect("model");
        assert_eq!(model.endpoints.len(), 2);
        assert_eq!(
            model.endpoints[0].pricing.prompt.amount,
            Money::from_picos(2_500_000)
        );
        assert_eq!(model.endpoints[0].quantization, "unknown");
        assert_eq!(model.endpoints[1].context_length, 128_000);
        assert_eq!(model.modality(), "text+image->text");
        assert_eq!(
            model.cheapest_endpoint().map(|e| e.provider.as_str()),
            Some("mystery")
        );
        let openai = catalog.provider("openai").expect("provider");
        assert_eq!(openai.base_url, "https://api.openai.com/v1");
        assert!(!openai.data_policy.training);
        assert_eq!(
            catalog.provider("mystery").map(|p| p.data_policy),
            Some(DataPolicy::UNKNOWN)
        );
    }

    #[test]
    fn lists_every_problem_with_its_location() {
        let bad = r#"
[[providers]]
slug = "Open AI"
name = ""
kind = "openai"
base_url = "ftp://x"
api_key_env = "sk-live-123"
data_policy = { zdr = true }

[[models]]
id = "gpt4"
name = "x"

[[models.endpoints]]
provider = "nobody"
upstream_model = ""
quantization = "fp3"
pricing = { prompt = "cheap", completion = "0.0000000000000001" }
"#;
        let err = Catalog::from_toml("c.toml", bad).expect_err("invalid");
        let text = err.to_string();
        for needle in [
            "providers[0] (Open AI).slug",
            "providers[0] (Open AI).name",
            "providers[0] (Open AI).base_url",
            "providers[0] (Open AI).api_key_env",
            "providers[0] (Open AI).data_policy",
            "models[0] (gpt4).id",
            "models[0] (gpt4).endpoints[0].provider",
            "models[0] (gpt4).endpoints[0].upstream_model",
            "models[0] (gpt4).endpoints[0].quantization",
            "models[0] (gpt4).endpoints[0].context_length",
            "models[0] (gpt4).endpoints[0].pricing.prompt",
            "models[0] (gpt4).endpoints[0].pricing.completion",
        ] {
            assert!(text.contains(needle), "missing {needle} in:\n{text}");
        }
        assert_eq!(err.0.len(), 12, "{text}");
    }

    #[test]
    fn syntax_errors_name_the_file_and_line() {
        let err = Catalog::from_toml("c.toml", "[[providers]]\nslug = ").expect_err("invalid");
        assert!(err.to_string().starts_with("c.toml: "), "{err}");
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    /// A provider, a chat model and an embedding model, with aliases.
    const KINDS: &str = r#"
[[providers]]
slug = "p"
name = "P"
kind = "openai"
base_url = "http://p/v1"

[[models]]
id = "a/chat"
name = "Chat"
aliases = ["chat", "chat-2025"]
context_length = 1000

[[models.endpoints]]
provider = "p"
upstream_model = "chat"
pricing = { prompt = "0.000001", completion = "0.000002" }
legacy_completions = true

[[models]]
id = "a/embed"
name = "Embed"
kind = "embedding"
dimensions = 1536
supports_dimensions = true
aliases = ["embed"]
context_length = 8192

[[models.endpoints]]
provider = "p"
upstream_model = "embed"
pricing = { prompt = "0.00000002" }
"#;

    #[test]
    fn aliases_kinds_and_the_default_model() {
        let catalog = Catalog::from_toml("c.toml", KINDS).expect("valid");
        for (name, id) in [
            ("a/chat", "a/chat"),
            ("chat", "a/chat"),
            ("chat-2025", "a/chat"),
            ("embed", "a/embed"),
        ] {
            assert_eq!(
                catalog.model(name).map(|m| m.id.as_str()),
                Some(id),
                "{name}"
            );
        }
        assert!(catalog.model("Chat").is_none(), "names are exact");
        assert!(catalog.default_model().is_none());
        let chat = catalog.model("a/chat").expect("chat");
        assert_eq!(chat.kind(), ModelKind::Chat);
        assert_eq!(chat.output_modalities, ["text"]);
        assert!(chat.endpoints[0].legacy_completions);
        let embed = catalog.model("a/embed").expect("embed");
        assert_eq!(embed.kind(), ModelKind::Embedding);
        assert_eq!(
            embed.embedding,
            Some(EmbeddingSpec {
                dimensions: 1536,
                supports_dimensions: true
            })
        );
        assert_eq!(embed.modality(), "text->embeddings");
        assert!(embed.endpoints[0].pricing.completion.amount.is_zero());
        assert!(!embed.endpoints[0].legacy_completions);

        // `default_model` is a top-level key: it comes before the first table.
        for name in ["a/chat", "chat-2025"] {
            let text = format!("default_model = {name:?}\n{KINDS}");
            let catalog = Catalog::from_toml("c.toml", &text).expect("valid");
            assert_eq!(
                catalog.default_model().map(|m| m.id.as_str()),
                Some("a/chat")
            );
        }
    }

    /// A model table with one endpoint on `p`: `model` holds the model's keys, `endpoint` the
    /// endpoint's.
    fn model_table(model: &str, endpoint: &str) -> String {
        format!("\n[[models]]\nname = \"X\"\ncontext_length = 10\n{model}\n[[models.endpoints]]\nprovider = \"p\"\nupstream_model = \"x\"\n{endpoint}\n")
    }

    #[test]
    fn alias_kind_and_default_model_problems_are_listed() {
        // (text prepended before the tables, text appended after them, expected location,
        // expected words of the message)
        // (text before the tables, a model added after them as (model keys, endpoint keys),
        // expected location, expected words of the message)
        type Case<'a> = (&'a str, Option<(&'a str, &'a str)>, &'a str, &'a str);
        let cases: Vec<Case<'_>> = vec![
            (
                "",
                Some((
                "id = \"b/x\"\naliases = [\"chat\"]",
                "pricing = { prompt = \"0\", completion = \"0\" }",
            )),
                "models[2] (b/x).aliases[0]",
                "already an alias of a/chat",
            ),
            (
                "",
                Some((
                "id = \"b/x\"\naliases = [\"a/embed\"]",
                "pricing = { prompt = \"0\", completion = \"0\" }",
            )),
                "models[2] (b/x).aliases[0]",
                "is the id of model a/embed",
            ),
            (
                "",
                Some((
                "id = \"b/x\"\naliases = [\"llama3:8b\"]",
                "pricing = { prompt = \"0\", completion = \"0\" }",
            )),
                "models[2] (b/x).aliases[0]",
                "no ':'",
            ),
            (
                "",
                Some((
                "id = \"b/x\"\naliases = [\"\"]",
                "pricing = { prompt = \"0\", completion = \"0\" }",
            )),
                "models[2] (b/x).aliases[0]",
                "is not an alias",
            ),
            (
                "default_model = \"nobody\"\n",
                None,
                "c.toml: default_model",
                "no model has the id or alias \"nobody\"",
            ),
            (
                "default_model = \"embed\"\n",
                None,
                "c.toml: default_model",
                "is an embedding model",
            ),
            (
                "",
                Some((
                "id = \"b/e\"\nkind = \"embedding\"",
                "pricing = { prompt = \"0\" }",
            )),
                "models[2] (b/e).dimensions",
                "native vector length",
            ),
            (
                "",
                Some((
                "id = \"b/c\"\ndimensions = 5",
                "pricing = { prompt = \"0\", completion = \"0\" }",
            )),
                "models[2] (b/c).dimensions",
                "only embedding models",
            ),
            (
                "",
                Some((
                "id = \"b/c\"",
                "pricing = { prompt = \"0\" }",
            )),
                "models[2] (b/c).endpoints[0].pricing.completion",
                "needs a completion price",
            ),
            (
                "",
                Some((
                "id = \"b/e\"\nkind = \"embedding\"\ndimensions = 4",
                "pricing = { prompt = \"0\", completion = \"0.1\" }",
            )),
                "models[2] (b/e).endpoints[0].pricing.completion",
                "no completion tokens",
            ),
            (
                "",
                Some((
                "id = \"b/e\"\nkind = \"embedding\"\ndimensions = 4",
                "pricing = { prompt = \"0\" }\nlegacy_completions = true",
            )),
                "models[2] (b/e).endpoints[0].legacy_completions",
                "does not serve completions",
            ),
            (
                "",
                Some((
                "id = \"b/e\"\nkind = \"embedding\"\ndimensions = 4",
                "pricing = { prompt = \"0\" }\nsupported_parameters = [\"temperature\"]",
            )),
                "models[2] (b/e).endpoints[0].supported_parameters",
                "no chat parameters",
            ),
            (
                "",
                Some((
                "id = \"b/e\"\nkind = \"embedding\"\ndimensions = 4",
                "pricing = { prompt = \"0\" }\nmax_completion_tokens = 5",
            )),
                "models[2] (b/e).endpoints[0].max_completion_tokens",
                "no completion tokens",
            ),
            (
                "",
                Some((
                "id = \"b/e\"\nkind = \"embedding\"\ndimensions = 4\noutput_modalities = [\"text\"]",
                "pricing = { prompt = \"0\" }",
            )),
                "models[2] (b/e).output_modalities",
                "outputs [\"embeddings\"] only",
            ),
            (
                "",
                Some((
                "id = \"b/c\"\noutput_modalities = [\"embeddings\"]",
                "pricing = { prompt = \"0\", completion = \"0\" }",
            )),
                "models[2] (b/c).output_modalities",
                "a chat model does not output",
            ),
            (
                "",
                Some((
                    "id = \"b/e\"\nkind = \"embedding\"\ndimensions = 4",
                    "pricing = { prompt = \"0\" }\n[[providers]]\nslug = \"an\"\nname = \"An\"\nkind = \"anthropic\"\nbase_url = \"http://an\"\n[[models.endpoints]]\nprovider = \"an\"\nupstream_model = \"e\"\npricing = { prompt = \"0\" }",
                )),
                "models[2] (b/e).endpoints[1].provider",
                "an anthropic provider serves no embeddings",
            ),
            (
                "",
                Some((
                    "id = \"b/c\"",
                    "pricing = { prompt = \"0\", completion = \"0\" }\n[[providers]]\nslug = \"g\"\nname = \"G\"\nkind = \"gemini\"\nbase_url = \"http://g\"\n[[models.endpoints]]\nprovider = \"g\"\nupstream_model = \"c\"\npricing = { prompt = \"0\", completion = \"0\" }\nlegacy_completions = true",
                )),
                "models[2] (b/c).endpoints[1].legacy_completions",
                "only openai providers serve the legacy completions API, not gemini",
            ),
            (
                "",
                Some((
                "id = \"b/c\"\nkind = \"vision\"",
                "pricing = { prompt = \"0\", completion = \"0\" }",
            )),
                "c.toml",
                "unknown variant `vision`",
            ),
        ];
        for (before, added, location, words) in cases {
            let after = added.map_or_else(String::new, |(m, e)| model_table(m, e));
            let text = format!("{before}{KINDS}{after}");
            let err = Catalog::from_toml("c.toml", &text).expect_err(location);
            assert!(
                err.0
                    .iter()
                    .any(|p| p.location.ends_with(location) && p.message.contains(words)),
                "{location}: {words:?} not in:\n{err}"
            );
            assert_eq!(err.0.len(), 1, "{err}");
        }
    }

    #[test]
    fn model_cards_are_read_and_checked_against_the_contract() {
        let card = "id = \"b/c\"\ntokenizer = \"Llama3\"\ninstruct_type = \"llama3\"\ncategories = [\"programming\"]\nknowledge_cutoff = \"2024-10\"\nsupported_voices = [\"alloy\"]\nreasoning = { mandatory = true, default_effort = \"high\", supported_efforts = [\"high\", \"low\"] }\nper_request_limits = { prompt_tokens = 10, completion_tokens = 5 }\ndefault_parameters = { temperature = 0.5, top_k = 20 }";
        let text = format!(
            "{KINDS}{}",
            model_table(card, "pricing = { prompt = \"0\", completion = \"0\" }")
        );
        let catalog = Catalog::from_toml("c.toml", &text).expect("valid");
        let m = catalog.model("b/c").expect("model");
        assert_eq!(m.tokenizer, "Llama3");
        assert_eq!(m.card.categories, ["programming"]);
        assert_eq!(m.card.knowledge_cutoff.as_deref(), Some("2024-10"));
        let reasoning = m.card.reasoning.as_ref().expect("reasoning");
        assert!(reasoning.mandatory);
        assert_eq!(reasoning.default_effort.as_deref(), Some("high"));
        assert_eq!(
            m.card
                .per_request_limits
                .map(|l| (l.prompt_tokens, l.completion_tokens)),
            Some((10, 5))
        );
        assert_eq!(
            serde_json::Value::Object(m.card.default_parameters.clone().expect("defaults"))
                .to_string(),
            r#"{"temperature":0.5,"top_k":20}"#
        );
        // The tokenizer defaults to the author's family.
        assert_eq!(
            catalog.model("a/chat").map(|m| m.tokenizer.as_str()),
            Some("Other")
        );
        // An endpoint listing no parameters takes its kind's; one listing some takes those the
        // contract names; an embedding model none.
        let chat = catalog.model("a/chat").expect("chat");
        assert!(catalog.model_parameters(chat).contains(&"temperature"));
        assert!(catalog
            .model_parameters(catalog.model("a/embed").expect("embed"))
            .is_empty());

        for (keys, location, words) in [
            ("tokenizer = \"openai\"", "tokenizer", "is not one of"),
            ("instruct_type = \"chat\"", "instruct_type", "is not one of"),
            (
                "categories = [\"cooking\"]",
                "categories[0]",
                "is not one of",
            ),
            (
                "input_modalities = [\"smell\"]",
                "input_modalities[0]",
                "is not one of",
            ),
            (
                "knowledge_cutoff = \"October\"",
                "knowledge_cutoff",
                "is not a date",
            ),
            (
                "expiration_date = \"2026-13-01\"",
                "expiration_date",
                "is not a date",
            ),
            (
                "reasoning = { default_effort = \"huge\" }",
                "reasoning.default_effort",
                "is not one of",
            ),
            (
                "reasoning = { supported_efforts = [\"low\", \"huge\"] }",
                "reasoning.supported_efforts[1]",
                "is not one of",
            ),
            (
                "per_request_limits = { prompt_tokens = 0, completion_tokens = 5 }",
                "per_request_limits",
                "positive",
            ),
            (
                "default_parameters = { temperature = 9.0 }",
                "default_parameters",
                "temperature must be between",
            ),
        ] {
            let text = format!(
                "{KINDS}{}",
                model_table(
                    &format!("id = \"b/c\"\n{keys}"),
                    "pricing = { prompt = \"0\", completion = \"0\" }"
                )
            );
            let err = Catalog::from_toml("c.toml", &text).expect_err(location);
            assert!(
                err.0
                    .iter()
                    .any(|p| p.location.ends_with(&format!("(b/c).{location}"))
                        && p.message.contains(words)),
                "{location}: {words:?} not in:\n{err}"
            );
            assert_eq!(err.0.len(), 1, "{err}");
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = Catalog::from_toml(
            "c.toml",
            "[[providers]]\nslug='a'\nname='A'\nkind='openai'\nbase_url='http://a'\napi_key='x'\n",
        )
        .expect_err("invalid");
        assert!(err.to_string().contains("unknown field `api_key`"), "{err}");
    }
}
