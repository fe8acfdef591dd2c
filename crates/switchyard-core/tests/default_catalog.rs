#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The bundled catalogue: valid, complete, priced, and with the published data policies.

use std::collections::BTreeSet;

use switchyard_core::catalog::{
    Catalog, DataPolicy, EmbeddingSpec, Endpoint, ModelKind, ProviderKind,
};
use switchyard_core::money::Money;

const TEXT: &str = include_str!("../../../catalog/default.toml");

fn catalog() -> Catalog {
    match Catalog::from_toml("catalog/default.toml", TEXT) {
        Ok(c) => c,
        Err(e) => panic!("the default catalogue is invalid:\n{e}"),
    }
}

/// The rows of the published provider table ("Privacy, Logging, and Data Collection") for the
/// providers the catalogue declares, by display name: (name, data retention, training).
const PUBLISHED: &[(&str, &str, &str)] = &[
    ("OpenAI", "Retained for 30 days", "Does not train"),
    ("Anthropic", "Retained for 30 days", "Does not train"),
    ("Google AI Studio", "Zero retention", "Does not train"),
    ("Groq", "Zero retention", "Does not train"),
    ("Mistral", "Retained for 30 days", "Does not train"),
    ("Together", "Zero retention", "Does not train"),
    ("Fireworks", "Zero retention", "Does not train"),
    ("DeepInfra", "Zero retention", "Does not train"),
    (
        "DeepSeek",
        "Prompts are retained for unknown period",
        "May train",
    ),
];

/// The policy a row of the table means.
fn published_policy(retention: &str, training: &str) -> DataPolicy {
    let training = training != "Does not train";
    match retention {
        "Zero retention" => DataPolicy {
            training,
            retains_prompts: false,
            retention_days: None,
            zdr: !training,
        },
        "Retained for 30 days" => DataPolicy {
            training,
            retains_prompts: true,
            retention_days: Some(30),
            zdr: false,
        },
        _ => DataPolicy {
            training,
            retains_prompts: true,
            retention_days: None,
            zdr: false,
        },
    }
}

fn prices(e: &Endpoint) -> Vec<(&'static str, Money)> {
    let mut all = vec![
        ("prompt", e.pricing.prompt.amount),
        ("completion", e.pricing.completion.amount),
    ];
    all.extend(
        e.pricing
            .optional_keys()
            .into_iter()
            .filter_map(|(k, p)| p.map(|p| (k, p.amount))),
    );
    all
}

#[test]
fn parses_without_problems() {
    if let Err(e) = Catalog::from_toml("catalog/default.toml", TEXT) {
        panic!("{} problem(s):\n{e}", e.0.len());
    }
}

#[test]
fn declares_the_ten_providers_with_their_kinds() {
    let c = catalog();
    let expected = [
        ("openai", ProviderKind::Openai, "https://api.openai.com/v1"),
        (
            "anthropic",
            ProviderKind::Anthropic,
            "https://api.anthropic.com/v1",
        ),
        (
            "google-ai-studio",
            ProviderKind::Gemini,
            "https://generativelanguage.googleapis.com/v1beta",
        ),
        (
            "groq",
            ProviderKind::Openai,
            "https://api.groq.com/openai/v1",
        ),
        (
            "together",
            ProviderKind::Openai,
            "https://api.together.xyz/v1",
        ),
        (
            "deepinfra",
            ProviderKind::Openai,
            "https://api.deepinfra.com/v1/openai",
        ),
        (
            "fireworks",
            ProviderKind::Openai,
            "https://api.fireworks.ai/inference/v1",
        ),
        ("mistral", ProviderKind::Openai, "https://api.mistral.ai/v1"),
        (
            "deepseek",
            ProviderKind::Openai,
            "https://api.deepseek.com/v1",
        ),
        ("ollama", ProviderKind::Openai, "http://127.0.0.1:11434/v1"),
    ];
    for (slug, kind, base_url) in expected {
        let p = c.provider(slug).unwrap_or_else(|| panic!("{slug} missing"));
        assert_eq!(p.kind, kind, "{slug}");
        assert_eq!(p.base_url, base_url, "{slug}");
        if slug == "ollama" {
            assert!(p.api_key_env.is_none(), "a local server needs no key");
        } else {
            assert!(
                p.api_key_env
                    .as_deref()
                    .is_some_and(|e| e.ends_with("_API_KEY")),
                "{slug}"
            );
        }
    }
    assert_eq!(c.providers().len(), expected.len());
    assert_eq!(
        c.provider("google-ai-studio")
            .and_then(|p| p.api_key_env.as_deref()),
        Some("GEMINI_API_KEY")
    );
}

#[test]
fn data_policies_follow_the_published_table() {
    let c = catalog();
    for p in c.providers() {
        let expected = if p.slug == "ollama" {
            // A server on the operator's machine: nothing leaves it.
            DataPolicy {
                training: false,
                retains_prompts: false,
                retention_days: None,
                zdr: true,
            }
        } else if let Some(&(_, retention, training)) =
            PUBLISHED.iter().find(|(name, _, _)| *name == p.name)
        {
            published_policy(retention, training)
        } else {
            // Not in the table: unknown means it retains and trains.
            DataPolicy::UNKNOWN
        };
        assert_eq!(p.data_policy, expected, "{} ({})", p.slug, p.name);
    }
    // Every row above is used by a declared provider: a renamed provider would otherwise slip
    // into the conservative branch unnoticed.
    for (name, _, _) in PUBLISHED {
        assert!(
            c.providers().iter().any(|p| p.name == *name),
            "{name} is declared"
        );
    }
    let deepseek = c.provider("deepseek").expect("deepseek").data_policy;
    assert!(deepseek.training && deepseek.retains_prompts && !deepseek.zdr);
}

#[test]
fn a_provider_missing_from_the_table_trains_and_retains() {
    let extra = format!(
        "{TEXT}\n[[providers]]\nslug = \"unlisted\"\nname = \"Unlisted\"\nkind = \"openai\"\nbase_url = \"https://api.unlisted.example/v1\"\napi_key_env = \"UNLISTED_API_KEY\"\n"
    );
    let c = Catalog::from_toml("extended.toml", &extra).expect("valid");
    let d = c.provider("unlisted").expect("unlisted").data_policy;
    assert_eq!(d, DataPolicy::UNKNOWN);
    assert!(d.training && d.retains_prompts && !d.zdr);
}

#[test]
fn every_model_is_served_and_priced() {
    let c = catalog();
    assert!(c.models().len() >= 18, "popular models are listed");
    for m in c.models() {
        assert!(!m.endpoints.is_empty(), "{} has no endpoint", m.id);
        assert!(m.id.contains('/'), "{} is author/slug", m.id);
        assert!(m.context_length > 0, "{}", m.id);
        for e in &m.endpoints {
            let provider = c.provider(&e.provider).expect("endpoint provider exists");
            for (key, amount) in prices(e) {
                assert!(amount >= Money::ZERO, "{} on {}: {key}", m.id, e.provider);
            }
            if m.kind() == ModelKind::Embedding {
                // Priced per input token; no chat parameters (the models API lists none).
                assert!(!e.pricing.prompt.amount.is_zero(), "{} is priced", m.id);
                assert!(e.pricing.completion.amount.is_zero(), "{}", m.id);
                assert!(e.supported_parameters.is_empty(), "{}", m.id);
                continue;
            }
            if provider.slug == "ollama" {
                assert!(e.pricing.is_free(), "{} on ollama is free", m.id);
                for (key, amount) in prices(e) {
                    assert!(amount.is_zero(), "{} on ollama: {key}", m.id);
                }
            } else {
                assert!(
                    !e.pricing.prompt.amount.is_zero() && !e.pricing.completion.amount.is_zero(),
                    "{} on {} is priced",
                    m.id,
                    provider.slug
                );
            }
            assert!(
                !e.supported_parameters.is_empty(),
                "{} on {}",
                m.id,
                provider.slug
            );
        }
    }
}

#[test]
fn the_requested_models_are_listed() {
    let c = catalog();
    for id in [
        "openai/gpt-4o",
        "openai/gpt-4o-mini",
        "openai/gpt-4.1",
        "openai/gpt-4.1-mini",
        "openai/o3-mini",
        "anthropic/claude-3.5-haiku",
        "anthropic/claude-sonnet-4",
        "anthropic/claude-opus-4",
        "google/gemini-2.5-flash",
        "google/gemini-2.5-pro",
        "meta-llama/llama-3.3-70b-instruct",
        "meta-llama/llama-3.1-8b-instruct",
        "mistralai/mistral-large",
        "mistralai/mistral-small",
        "deepseek/deepseek-chat",
        "deepseek/deepseek-r1",
        "qwen/qwen-2.5-72b-instruct",
    ] {
        assert!(c.model(id).is_some(), "{id} missing");
    }
    let local = c
        .model("meta-llama/llama-3.1-8b-instruct")
        .expect("llama 8b")
        .endpoints
        .iter()
        .find(|e| e.provider == "ollama")
        .expect("a local endpoint");
    assert_eq!(local.upstream_model, "llama3.1:8b");
}

#[test]
fn some_models_have_several_endpoints_at_distinct_prices() {
    let c = catalog();
    let several: Vec<&str> = c
        .models()
        .iter()
        .filter(|m| {
            let distinct: BTreeSet<(Money, Money)> = m
                .endpoints
                .iter()
                .map(|e| (e.pricing.prompt.amount, e.pricing.completion.amount))
                .collect();
            distinct.len() > 1
        })
        .map(|m| m.id.as_str())
        .collect();
    for id in [
        "meta-llama/llama-3.3-70b-instruct",
        "meta-llama/llama-3.1-8b-instruct",
        "deepseek/deepseek-chat",
    ] {
        assert!(
            several.contains(&id),
            "{id} has endpoints at distinct prices"
        );
    }
    let llama = c
        .model("meta-llama/llama-3.3-70b-instruct")
        .expect("llama 70b");
    let hosts: BTreeSet<&str> = llama
        .endpoints
        .iter()
        .map(|e| e.provider.as_str())
        .collect();
    for host in ["groq", "together", "deepinfra", "fireworks"] {
        assert!(hosts.contains(host), "llama 3.3 70b on {host}");
    }
}

#[test]
fn list_prices_are_exact() {
    let c = catalog();
    let usd = |s: &str| Money::parse_usd(s).expect("usd");
    let gpt4o = &c.model("openai/gpt-4o").expect("gpt-4o").endpoints[0];
    assert_eq!(gpt4o.pricing.prompt.amount, usd("0.0000025"));
    assert_eq!(gpt4o.pricing.completion.amount, usd("0.00001"));
    assert_eq!(
        gpt4o
            .pricing
            .input_cache_read
            .as_ref()
            .expect("cached input")
            .amount,
        usd("0.00000125")
    );
    let sonnet = &c
        .model("anthropic/claude-sonnet-4")
        .expect("sonnet")
        .endpoints[0];
    assert_eq!(
        sonnet
            .pricing
            .input_cache_write
            .as_ref()
            .expect("cache write")
            .amount,
        usd("0.00000375")
    );
    assert_eq!(
        sonnet
            .pricing
            .input_cache_read
            .as_ref()
            .expect("cache read")
            .amount,
        usd("0.0000003")
    );
}

#[test]
fn cache_prices_are_listed_where_published() {
    let c = catalog();
    // Embedding models have no prompt cache.
    for m in c.models().iter().filter(|m| m.kind() == ModelKind::Chat) {
        for e in &m.endpoints {
            let p = &e.pricing;
            if matches!(
                e.provider.as_str(),
                "openai" | "anthropic" | "google-ai-studio" | "deepseek"
            ) {
                let read = p.input_cache_read.as_ref().unwrap_or_else(|| {
                    panic!("{} on {} lists its cache read price", m.id, e.provider)
                });
                assert!(
                    read.amount < p.prompt.amount,
                    "{} on {}: a cache hit is cheaper",
                    m.id,
                    e.provider
                );
            }
            if e.provider == "anthropic" {
                let write = p.input_cache_write.as_ref().expect("cache write");
                assert!(write.amount > p.prompt.amount, "{}", m.id);
            }
        }
    }
}

#[test]
fn openai_endpoints_take_max_completion_tokens() {
    // OpenAI's reasoning models refuse `max_tokens`; the codec sends the limit as
    // `max_completion_tokens` only for endpoints that list it.
    let c = catalog();
    for m in c.models().iter().filter(|m| m.kind() == ModelKind::Chat) {
        for e in m.endpoints.iter().filter(|e| e.provider == "openai") {
            assert!(e.supports("max_completion_tokens"), "{}", m.id);
        }
    }
    let o3 = &c.model("openai/o3-mini").expect("o3-mini").endpoints[0];
    assert!(o3.supports("reasoning") && !o3.supports("temperature"));
}

#[test]
fn vision_models_take_images_and_quantizations_are_known() {
    let c = catalog();
    for id in [
        "openai/gpt-4o",
        "anthropic/claude-sonnet-4",
        "google/gemini-2.5-flash",
        "mistralai/mistral-small",
    ] {
        let m = c.model(id).expect("model");
        assert!(m.input_modalities.iter().any(|x| x == "image"), "{id}");
    }
    let llama = c
        .model("meta-llama/llama-3.1-8b-instruct")
        .expect("llama 8b");
    let quantizations: BTreeSet<&str> = llama
        .endpoints
        .iter()
        .map(|e| e.quantization.as_str())
        .collect();
    assert!(quantizations.contains("fp8") && quantizations.contains("int4"));
}

#[test]
fn embedding_models_at_list_prices() {
    let c = catalog();
    // (id, provider, USD per million input tokens, native dimensions, takes `dimensions`,
    // tokenizer as the models API names it)
    let expected = [
        (
            "openai/text-embedding-3-small",
            "openai",
            "0.02",
            1536,
            true,
            "GPT",
        ),
        (
            "openai/text-embedding-3-large",
            "openai",
            "0.13",
            3072,
            true,
            "GPT",
        ),
        (
            "openai/text-embedding-ada-002",
            "openai",
            "0.10",
            1536,
            false,
            "GPT",
        ),
        (
            "google/gemini-embedding-001",
            "google-ai-studio",
            "0.15",
            3072,
            true,
            "Gemini",
        ),
        (
            "mistralai/mistral-embed",
            "mistral",
            "0.10",
            1024,
            false,
            "Mistral",
        ),
    ];
    for (id, provider, per_million, dimensions, supports_dimensions, tokenizer) in expected {
        let m = c.model(id).unwrap_or_else(|| panic!("{id} missing"));
        assert_eq!(m.tokenizer, tokenizer, "{id}");
        assert_eq!(m.kind(), ModelKind::Embedding, "{id}");
        assert_eq!(
            m.embedding,
            Some(EmbeddingSpec {
                dimensions,
                supports_dimensions
            }),
            "{id}"
        );
        assert_eq!(m.output_modalities, ["embeddings"], "{id}");
        assert_eq!(m.endpoints.len(), 1, "{id}");
        let e = &m.endpoints[0];
        assert_eq!(e.provider, provider, "{id}");
        let million = Money::parse_usd(per_million).expect("usd");
        assert_eq!(
            e.pricing.prompt.amount.checked_mul(1_000_000),
            Some(million),
            "{id}"
        );
    }
    let embedding: Vec<&str> = c
        .models()
        .iter()
        .filter(|m| m.kind() == ModelKind::Embedding)
        .map(|m| m.id.as_str())
        .collect();
    assert_eq!(embedding.len(), expected.len(), "{embedding:?}");
    assert!(c.default_model().is_none(), "requests name their model");
}

#[test]
fn aliases_name_the_models_clients_ask_for() {
    let c = catalog();
    let cases = [
        ("claude-sonnet-4-20250514", "anthropic/claude-sonnet-4"),
        ("claude-sonnet-4-0", "anthropic/claude-sonnet-4"),
        ("claude-opus-4-20250514", "anthropic/claude-opus-4"),
        ("claude-opus-4-0", "anthropic/claude-opus-4"),
        ("claude-3-5-haiku-20241022", "anthropic/claude-3.5-haiku"),
        ("claude-3-5-haiku-latest", "anthropic/claude-3.5-haiku"),
        ("gpt-4o", "openai/gpt-4o"),
        ("gpt-4o-mini", "openai/gpt-4o-mini"),
        ("gpt-4.1", "openai/gpt-4.1"),
        ("gpt-4.1-mini", "openai/gpt-4.1-mini"),
        ("o3-mini", "openai/o3-mini"),
        ("gemini-2.5-flash", "google/gemini-2.5-flash"),
        ("gemini-2.5-pro", "google/gemini-2.5-pro"),
        ("mistral-large-latest", "mistralai/mistral-large"),
        ("mistral-small-latest", "mistralai/mistral-small"),
        ("deepseek-chat", "deepseek/deepseek-chat"),
        ("deepseek-reasoner", "deepseek/deepseek-r1"),
        ("text-embedding-3-small", "openai/text-embedding-3-small"),
        ("text-embedding-3-large", "openai/text-embedding-3-large"),
        ("text-embedding-ada-002", "openai/text-embedding-ada-002"),
        ("gemini-embedding-001", "google/gemini-embedding-001"),
        ("mistral-embed", "mistralai/mistral-embed"),
    ];
    for (alias, id) in cases {
        assert_eq!(c.model(alias).map(|m| m.id.as_str()), Some(id), "{alias}");
    }
    // Names of models the catalogue does not list are not pointed at another model.
    for absent in [
        "claude-sonnet-4-5",
        "claude-sonnet-4-5-20250929",
        "claude-opus-4-1",
        "gpt-5",
        "gpt-5-codex",
        "gpt-5.1-codex",
    ] {
        assert!(c.model(absent).is_none(), "{absent}");
    }
    // An alias is the name one of the model's endpoints sends upstream, give or take a date
    // (`-20250514`), `-0` or `-latest`.
    fn stem(name: &str) -> &str {
        let name = name.trim_end_matches("-latest").trim_end_matches("-0");
        match name.rsplit_once('-') {
            Some((stem, date)) if date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) => {
                stem
            }
            _ => name,
        }
    }
    for m in c.models() {
        for alias in &m.aliases {
            assert!(
                m.endpoints
                    .iter()
                    .any(|e| stem(&e.upstream_model) == stem(alias)),
                "{alias} is not a name of {}",
                m.id
            );
        }
    }
}

#[test]
fn no_default_endpoint_claims_the_legacy_completions_api() {
    // Providers' legacy `/completions` support is not part of the published catalogue data;
    // operators declare it per endpoint.
    let c = catalog();
    for m in c.models() {
        for e in &m.endpoints {
            assert!(!e.legacy_completions, "{} on {}", m.id, e.provider);
        }
    }
}
