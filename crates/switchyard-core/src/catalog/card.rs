//! What the models API says of a model besides its endpoints: the contract's closed
//! vocabularies (tokenizer families, instruct formats, modalities, request parameters,
//! reasoning efforts), the parameters each provider kind accepts, and the model card the
//! catalogue may declare (knowledge cutoff, voices, reasoning, per-request limits, default
//! sampling parameters).

use serde_json::{Map, Value};

use super::ProviderKind;

/// The tokenizer families of the contract (`ModelGroup`): a model's `architecture.tokenizer`
/// is one of these.
pub const TOKENIZERS: &[&str] = &[
    "Router", "Media", "Other", "GPT", "Claude", "Gemini", "Gemma", "Grok", "Cohere", "Nova",
    "Qwen", "Yi", "DeepSeek", "Mistral", "Llama2", "Llama3", "Llama4", "PaLM", "RWKV", "Qwen3",
];

/// The instruct formats of the contract (`InstructType`).
pub const INSTRUCT_TYPES: &[&str] = &[
    "none",
    "airoboros",
    "alpaca",
    "alpaca-modif",
    "chatml",
    "claude",
    "code-llama",
    "gemma",
    "llama2",
    "llama3",
    "mistral",
    "nemotron",
    "neural",
    "openchat",
    "phi3",
    "rwkv",
    "vicuna",
    "zephyr",
    "deepseek-r1",
    "deepseek-v3.1",
    "qwq",
    "qwen3",
];

/// The input modalities of the contract.
pub const INPUT_MODALITIES: &[&str] = &["text", "image", "file", "audio", "video"];

/// The output modalities of the contract.
pub const OUTPUT_MODALITIES: &[&str] = &[
    "text",
    "image",
    "embeddings",
    "audio",
    "video",
    "rerank",
    "speech",
    "transcription",
];

/// The use-case categories of the contract, by which `GET /models?category=` filters.
pub const CATEGORIES: &[&str] = &[
    "programming",
    "roleplay",
    "marketing",
    "marketing/seo",
    "technology",
    "science",
    "translation",
    "legal",
    "finance",
    "health",
    "trivia",
    "academia",
];

/// The reasoning efforts of the contract, strongest first.
pub const REASONING_EFFORTS: &[&str] =
    &["max", "xhigh", "high", "medium", "low", "minimal", "none"];

/// The request parameters the contract names in `supported_parameters` (`Parameter`). A
/// catalogue may list other names (capabilities its codecs read, such as
/// `mid_conversation_system_messages`); the models API shows only these.
pub const PARAMETERS: &[&str] = &[
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "top_a",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
    "max_tokens",
    "max_completion_tokens",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "prediction",
    "seed",
    "response_format",
    "structured_outputs",
    "stop",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "include_reasoning",
    "reasoning",
    "reasoning_effort",
    "web_search_options",
    "verbosity",
];

/// The sampling parameters a model card may give defaults for, with their ranges.
const DEFAULT_PARAMETERS: &[(&str, f64, f64)] = &[
    ("temperature", 0.0, 2.0),
    ("top_p", 0.0, 1.0),
    ("top_k", 1.0, 1e9),
    ("frequency_penalty", -2.0, 2.0),
    ("presence_penalty", -2.0, 2.0),
    ("repetition_penalty", 0.0, 2.0),
];

impl ProviderKind {
    /// The request parameters an endpoint of this kind takes when the catalogue lists none: what
    /// the kind's codec forwards (an OpenAI-compatible server gets every standard parameter;
    /// Anthropic's and Gemini's codecs translate the ones their APIs have).
    pub fn parameters(self) -> &'static [&'static str] {
        match self {
            ProviderKind::Openai => &[
                "frequency_penalty",
                "logit_bias",
                "logprobs",
                "max_tokens",
                "min_p",
                "parallel_tool_calls",
                "prediction",
                "presence_penalty",
                "reasoning",
                "repetition_penalty",
                "response_format",
                "seed",
                "stop",
                "temperature",
                "tool_choice",
                "tools",
                "top_a",
                "top_k",
                "top_logprobs",
                "top_p",
                "verbosity",
                "web_search_options",
            ],
            ProviderKind::Anthropic => &[
                "include_reasoning",
                "max_tokens",
                "reasoning",
                "stop",
                "temperature",
                "tool_choice",
                "tools",
                "top_k",
                "top_p",
            ],
            ProviderKind::Gemini => &[
                "frequency_penalty",
                "include_reasoning",
                "logprobs",
                "max_tokens",
                "presence_penalty",
                "reasoning",
                "response_format",
                "seed",
                "stop",
                "structured_outputs",
                "temperature",
                "tool_choice",
                "tools",
                "top_k",
                "top_logprobs",
                "top_p",
            ],
        }
    }
}

/// The tokenizer family of a model the catalogue gives none for, from its id: the author's
/// family (`openai/...` is `GPT`), refined by the slug where one author has several (Gemma
/// among Google's models, Llama 2, 3 and 4, Qwen 3); `Other` when the author is unknown.
pub fn default_tokenizer(id: &str) -> &'static str {
    let (author, slug) = id.split_once('/').unwrap_or(("", id));
    let slug = slug.to_ascii_lowercase();
    match author {
        "openai" => "GPT",
        "anthropic" => "Claude",
        "google" if slug.starts_with("gemma") => "Gemma",
        "google" => "Gemini",
        "meta-llama" if slug.contains("llama-2") => "Llama2",
        "meta-llama" if slug.contains("llama-4") => "Llama4",
        "meta-llama" => "Llama3",
        "mistralai" => "Mistral",
        "deepseek" => "DeepSeek",
        "qwen" if slug.starts_with("qwen3") || slug.starts_with("qwen-3") => "Qwen3",
        "qwen" => "Qwen",
        "x-ai" => "Grok",
        "cohere" => "Cohere",
        "amazon" => "Nova",
        "01-ai" => "Yi",
        _ => "Other",
    }
}

/// How a model reasons, as the models API's `reasoning` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReasoningSpec {
    /// Reasoning cannot be turned off.
    pub mandatory: bool,
    /// Reasoning is on when the request does not say.
    pub default_enabled: Option<bool>,
    /// The effort used when the request names none, one of [`REASONING_EFFORTS`].
    pub default_effort: Option<String>,
    /// The efforts the model distinguishes.
    pub supported_efforts: Option<Vec<String>>,
    /// Whether `reasoning.max_tokens` (a token budget) is honoured.
    pub supports_max_tokens: Option<bool>,
}

/// The most one request may use of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerRequestLimits {
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
}

/// What the catalogue declares of a model for the models API; every part is optional.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModelCard {
    /// The use cases the model is listed under, each one of [`CATEGORIES`].
    pub categories: Vec<String>,
    /// The date the model's training data ends (`2024-10`, `2024-10-01`).
    pub knowledge_cutoff: Option<String>,
    /// The date the model is retired (`2026-06-30`).
    pub expiration_date: Option<String>,
    /// The voices of a speech model.
    pub supported_voices: Option<Vec<String>>,
    /// How the model reasons.
    pub reasoning: Option<ReasoningSpec>,
    /// The most one request may use.
    pub per_request_limits: Option<PerRequestLimits>,
    /// Sampling defaults the model is served with (`temperature`, `top_p`, `top_k`,
    /// `frequency_penalty`, `presence_penalty`, `repetition_penalty`), as JSON numbers.
    pub default_parameters: Option<Map<String, Value>>,
}

/// The problem with a date of a model card, if any: `YYYY-MM` or `YYYY-MM-DD`.
pub(super) fn date_problem(text: &str) -> Option<String> {
    let parts: Vec<&str> = text.split('-').collect();
    let numeric = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit());
    let ok = match parts.as_slice() {
        [y, m] => numeric(y, 4) && numeric(m, 2),
        [y, m, d] => numeric(y, 4) && numeric(m, 2) && numeric(d, 2),
        _ => false,
    } && parts
        .get(1)
        .and_then(|m| m.parse::<u8>().ok())
        .is_some_and(|m| (1..=12).contains(&m))
        && parts
            .get(2)
            .is_none_or(|d| d.parse::<u8>().is_ok_and(|d| (1..=31).contains(&d)));
    (!ok).then(|| format!("{text:?} is not a date (YYYY-MM or YYYY-MM-DD)"))
}

/// The default sampling parameters as JSON numbers, or the problem with one of them.
pub(super) fn default_parameters(
    values: &[(&str, Option<f64>)],
) -> Result<Map<String, Value>, String> {
    let mut map = Map::new();
    for (name, value) in values {
        let Some(v) = value else { continue };
        let Some(&(_, low, high)) = DEFAULT_PARAMETERS.iter().find(|(n, _, _)| n == name) else {
            return Err(format!("{name} is not a sampling parameter with a default"));
        };
        if !v.is_finite() || *v < low || *v > high {
            return Err(format!("{name} must be between {low} and {high}"));
        }
        let number = if *name == "top_k" {
            if v.fract() != 0.0 {
                return Err("top_k must be an integer".to_owned());
            }
            serde_json::Number::from(*v as u64)
        } else {
            serde_json::Number::from_f64(*v)
                .ok_or_else(|| format!("{name} must be a finite number"))?
        };
        map.insert((*name).to_owned(), Value::Number(number));
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizers_come_from_the_author_and_are_in_the_contract() {
        for (id, family) in [
            ("openai/gpt-4o", "GPT"),
            ("anthropic/claude-sonnet-4", "Claude"),
            ("google/gemini-2.5-pro", "Gemini"),
            ("google/gemma-3-27b-it", "Gemma"),
            ("meta-llama/llama-3.3-70b-instruct", "Llama3"),
            ("meta-llama/llama-4-maverick", "Llama4"),
            ("qwen/qwen-2.5-72b-instruct", "Qwen"),
            ("qwen/qwen3-235b-a22b", "Qwen3"),
            ("someone/model", "Other"),
        ] {
            assert_eq!(default_tokenizer(id), family, "{id}");
            assert!(TOKENIZERS.contains(&family));
        }
    }

    #[test]
    fn every_kind_takes_only_contract_parameters() {
        for kind in [
            ProviderKind::Openai,
            ProviderKind::Anthropic,
            ProviderKind::Gemini,
        ] {
            assert!(!kind.parameters().is_empty());
            for p in kind.parameters() {
                assert!(PARAMETERS.contains(p), "{p} of {kind:?}");
            }
        }
    }

    #[test]
    fn dates_and_defaults_are_checked() {
        assert_eq!(date_problem("2024-10"), None);
        assert_eq!(date_problem("2024-10-31"), None);
        for bad in ["2024", "2024-13", "24-10", "2024-10-32", "october"] {
            assert!(date_problem(bad).is_some(), "{bad}");
        }
        let ok = default_parameters(&[("temperature", Some(0.7)), ("top_k", Some(40.0))])
            .expect("valid");
        assert_eq!(
            Value::Object(ok).to_string(),
            r#"{"temperature":0.7,"top_k":40}"#
        );
        for bad in [("temperature", 3.0), ("top_k", 0.5), ("top_p", -1.0)] {
            assert!(
                default_parameters(&[(bad.0, Some(bad.1))]).is_err(),
                "{bad:?}"
            );
        }
    }
}
