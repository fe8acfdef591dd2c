//! The model card's part of the catalogue's TOML document: its raw shapes and the checks
//! against the contract's closed vocabularies.

use serde::Deserialize;

use super::{Problems, RawModel};
use crate::catalog::card::{
    self, ModelCard, PerRequestLimits, ReasoningSpec, CATEGORIES, INPUT_MODALITIES, INSTRUCT_TYPES,
    OUTPUT_MODALITIES, REASONING_EFFORTS, TOKENIZERS,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReasoning {
    #[serde(default)]
    mandatory: bool,
    default_enabled: Option<bool>,
    default_effort: Option<String>,
    supported_efforts: Option<Vec<String>>,
    supports_max_tokens: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPerRequestLimits {
    prompt_tokens: u64,
    completion_tokens: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDefaultParameters {
    temperature: Option<f64>,
    top_p: Option<f64>,
    top_k: Option<f64>,
    frequency_penalty: Option<f64>,
    presence_penalty: Option<f64>,
    repetition_penalty: Option<f64>,
}

/// Checks a name against one of the contract's closed vocabularies.
fn one_of(problems: &mut Problems, location: String, value: &str, allowed: &[&str]) {
    if !allowed.contains(&value) {
        problems.add(
            location,
            format!("{value:?} is not one of {}", allowed.join(", ")),
        );
    }
}

/// Checks what a model declares for the models API (tokenizer, instruct format, modalities,
/// dates, reasoning, limits, sampling defaults) and returns its card.
pub(super) fn model_card(
    problems: &mut Problems,
    at: &str,
    m: &mut RawModel,
    output_modalities: &[String],
) -> ModelCard {
    if let Some(t) = &m.tokenizer {
        one_of(problems, format!("{at}.tokenizer"), t, TOKENIZERS);
    }
    if let Some(t) = &m.instruct_type {
        one_of(problems, format!("{at}.instruct_type"), t, INSTRUCT_TYPES);
    }
    for (i, x) in m.input_modalities.iter().enumerate() {
        one_of(
            problems,
            format!("{at}.input_modalities[{i}]"),
            x,
            INPUT_MODALITIES,
        );
    }
    for (i, x) in output_modalities.iter().enumerate() {
        one_of(
            problems,
            format!("{at}.output_modalities[{i}]"),
            x,
            OUTPUT_MODALITIES,
        );
    }
    for (i, c) in m.categories.iter().enumerate() {
        one_of(problems, format!("{at}.categories[{i}]"), c, CATEGORIES);
    }
    for (field, date) in [
        ("knowledge_cutoff", &m.knowledge_cutoff),
        ("expiration_date", &m.expiration_date),
    ] {
        if let Some(problem) = date.as_deref().and_then(card::date_problem) {
            problems.add(format!("{at}.{field}"), problem);
        }
    }
    let reasoning = m.reasoning.take().map(|r| {
        if let Some(e) = &r.default_effort {
            one_of(
                problems,
                format!("{at}.reasoning.default_effort"),
                e,
                REASONING_EFFORTS,
            );
        }
        for (i, e) in r.supported_efforts.iter().flatten().enumerate() {
            one_of(
                problems,
                format!("{at}.reasoning.supported_efforts[{i}]"),
                e,
                REASONING_EFFORTS,
            );
        }
        ReasoningSpec {
            mandatory: r.mandatory,
            default_enabled: r.default_enabled,
            default_effort: r.default_effort,
            supported_efforts: r.supported_efforts,
            supports_max_tokens: r.supports_max_tokens,
        }
    });
    let per_request_limits = m.per_request_limits.take().map(|l| {
        if l.prompt_tokens == 0 || l.completion_tokens == 0 {
            problems.add(
                format!("{at}.per_request_limits"),
                "prompt_tokens and completion_tokens must be positive",
            );
        }
        PerRequestLimits {
            prompt_tokens: l.prompt_tokens,
            completion_tokens: l.completion_tokens,
        }
    });
    let default_parameters = m.default_parameters.take().and_then(|d| {
        let values = [
            ("temperature", d.temperature),
            ("top_p", d.top_p),
            ("top_k", d.top_k),
            ("frequency_penalty", d.frequency_penalty),
            ("presence_penalty", d.presence_penalty),
            ("repetition_penalty", d.repetition_penalty),
        ];
        card::default_parameters(&values)
            .map_err(|e| problems.add(format!("{at}.default_parameters"), e))
            .ok()
    });
    ModelCard {
        categories: std::mem::take(&mut m.categories),
        knowledge_cutoff: m.knowledge_cutoff.take(),
        expiration_date: m.expiration_date.take(),
        supported_voices: m.supported_voices.take(),
        reasoning,
        per_request_limits,
        default_parameters,
    }
}
