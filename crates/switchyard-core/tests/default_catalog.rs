#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The bundled catalogue: valid, complete, priced, and with the published data policies.

use std::collections::BTreeSet;

use switchyard_core::catalog::{Catalog, ProviderKind};
use switchyard_core::money::Money;

const TEXT: &str = include_str!("../../../catalog/default.toml");

fn catalog() -> Catalog {
    match Catalog::from_toml("catalog/default.toml", TEXT) {
        Ok(c) => c,
        Err(e) => panic!("the default catalogue is invalid:\n{e}"),
    }
}

#[test]
fn declares_the_ten_providers_with_their_kinds() {
    let c = catalog();
    let expected = [
        ("openai", ProviderKind::Openai),
        ("anthropic", ProviderKind::Anthropic),
        ("google-ai-studio", ProviderKind::Gemini),
        ("groq", ProviderKind::Openai),
        ("together", ProviderKind::Openai),
        ("deepinfra", ProviderKind::Openai),
        ("fireworks", ProviderKind::Openai),
        ("mistral", ProviderKind::Openai),
        ("deepseek", ProviderKind::Openai),
        ("ollama", ProviderKind::Openai),
    ];
    for (slug, kind) in expected {
        let p = c.provider(slug).unwrap_or_else(|| panic!("{slug} missing"));
        assert_eq!(p.kind, kind, "{slug}");
        assert!(p.base_url.starts_with("http"), "{slug}");
        assert!(
            !p.base_url.ends_with('/'),
            "{slug}: base_url is a prefix without a slash"
        );
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
}

#[test]
fn data_policies_follow_the_published_table() {
    let c = catalog();
    // (slug, training, retains, retention days, zdr)
    let table = [
        ("openai", false, true, Some(30), false),
        ("anthropic", false, true, Some(30), false),
        ("google-ai-studio", false, false, None, true),
        ("groq", false, false, None, true),
        ("together", false, false, None, true),
        ("deepinfra", false, false, None, true),
        ("fireworks", false, false, None, true),
        ("mistral", false, true, Some(30), false),
        ("deepseek", true, true, None, false),
        ("ollama", false, false, None, true),
    ];
    for (slug, training, retains, days, zdr) in table {
        let d = c.provider(slug).expect("provider").data_policy;
        assert_eq!(
            (d.training, d.retains_prompts, d.retention_days, d.zdr),
            (training, retains, days, zdr),
            "{slug}"
        );
    }
}

#[test]
fn every_model_is_served_and_priced() {
    let c = catalog();
    assert!(c.models().len() >= 15, "popular models are listed");
    let mut several_prices = false;
    for m in c.models() {
        assert!(!m.endpoints.is_empty(), "{} has no endpoint", m.id);
        assert!(m.id.contains('/'), "{} is author/slug", m.id);
        let mut prices = BTreeSet::new();
        for e in &m.endpoints {
            let provider = c.provider(&e.provider).expect("endpoint provider exists");
            assert!(e.pricing.prompt.amount >= Money::ZERO, "{}", m.id);
            assert!(e.pricing.completion.amount >= Money::ZERO, "{}", m.id);
            if provider.slug == "ollama" {
                assert!(e.pricing.prompt.amount.is_zero() && e.pricing.completion.amount.is_zero());
            } else {
                assert!(
                    !e.pricing.prompt.amount.is_zero(),
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
            prices.insert(e.pricing.prompt.amount);
        }
        several_prices |= prices.len() > 1;
    }
    assert!(
        several_prices,
        "some model has endpoints at distinct prices, for routing"
    );
}

#[test]
fn list_prices_are_exact() {
    let c = catalog();
    let gpt4o = &c.model("openai/gpt-4o").expect("gpt-4o").endpoints[0];
    assert_eq!(
        gpt4o.pricing.prompt.amount,
        Money::parse_usd("0.0000025").expect("usd")
    );
    assert_eq!(
        gpt4o.pricing.completion.amount,
        Money::parse_usd("0.00001").expect("usd")
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
        Money::parse_usd("0.00000375").expect("usd")
    );
}
