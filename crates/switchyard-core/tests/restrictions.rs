#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property: for random catalogues, account policies, guardrails, data classifications and
//! failure sequences, every provider the gateway would attempt (fallbacks included) lies in the
//! allowed set.

use proptest::prelude::*;
use switchyard_core::catalog::Catalog;
use switchyard_core::chat::ChatRequest;
use switchyard_core::classification::Classifications;
use switchyard_core::guard::{self, Guardrail};
use switchyard_core::restrict::{self, Restriction};
use switchyard_core::routing::{self, HealthSnapshot, Policy, RouteContext};

#[derive(Debug, Clone)]
struct ProviderSpec {
    training: bool,
    retains: bool,
    days: Option<u32>,
    zdr: bool,
    byok: bool,
    free: bool,
}

fn provider_spec() -> impl Strategy<Value = ProviderSpec> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::option::of(0u32..90),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(training, retains, days, zdr, byok, free)| ProviderSpec {
            training,
            retains,
            days,
            zdr: zdr && !retains && !training,
            byok,
            free,
        })
}

fn catalog(specs: &[ProviderSpec]) -> Catalog {
    let mut text = String::new();
    for (i, p) in specs.iter().enumerate() {
        let days = p
            .days
            .map(|d| format!(", retention_days = {d}"))
            .unwrap_or_default();
        text.push_str(&format!(
            "[[providers]]\nslug = \"p{i}\"\nname = \"P{i}\"\nkind = \"openai\"\nbase_url = \"http://x\"\nbyok = {}\ndata_policy = {{ training = {}, retains_prompts = {}, zdr = {}{days} }}\n\n",
            p.byok, p.training, p.retains, p.zdr
        ));
    }
    for model in ["a/one", "b/two"] {
        text.push_str(&format!(
            "[[models]]\nid = \"{model}\"\nname = \"M\"\ncontext_length = 100000\n\n"
        ));
        for (i, p) in specs.iter().enumerate() {
            let price = if p.free { "0" } else { "0.000001" };
            text.push_str(&format!(
                "[[models.endpoints]]\nprovider = \"p{i}\"\nupstream_model = \"m\"\npricing = {{ prompt = \"{price}\", completion = \"{price}\" }}\n\n"
            ));
        }
    }
    Catalog::from_toml("prop", &text).expect("catalog")
}

#[derive(Debug, Clone)]
struct GuardSpec {
    allowed: Option<Vec<usize>>,
    ignored: Vec<usize>,
    zdr: bool,
    paid_training: Option<bool>,
    free_training: Option<bool>,
    model_only_a: bool,
}

fn guard_spec(n: usize) -> impl Strategy<Value = GuardSpec> {
    (
        prop::option::of(prop::collection::vec(0..n, 0..n)),
        prop::collection::vec(0..n, 0..n),
        any::<bool>(),
        prop::option::of(any::<bool>()),
        prop::option::of(any::<bool>()),
        any::<bool>(),
    )
        .prop_map(
            |(allowed, ignored, zdr, paid_training, free_training, model_only_a)| GuardSpec {
                allowed,
                ignored,
                zdr,
                paid_training,
                free_training,
                model_only_a,
            },
        )
}

fn guardrail(g: &GuardSpec) -> Guardrail {
    let slugs = |v: &[usize]| v.iter().map(|i| format!("p{i}")).collect::<Vec<_>>();
    Guardrail {
        name: "g".into(),
        allowed_providers: g.allowed.as_deref().map(slugs),
        ignored_providers: Some(slugs(&g.ignored)),
        enforce_zdr: Some(g.zdr),
        enable_paid_model_training: g.paid_training,
        enable_free_model_training: g.free_training,
        allowed_models: g.model_only_a.then(|| vec!["a/*".to_owned()]),
        ..Guardrail::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn attempted_providers_always_lie_in_the_allowed_set(
        (specs, gs) in prop::collection::vec(provider_spec(), 1..6)
            .prop_flat_map(|specs| { let n = specs.len(); (Just(specs), guard_spec(n)) }),
        class_pick in 0usize..5,
        failures in prop::collection::vec(any::<bool>(), 0..12),
        random in 0.0f64..1.0,
    ) {
        let catalog = catalog(&specs);
        let g = guardrail(&gs);
        let classes = Classifications::default();
        let class = ["public", "internal", "confidential", "restricted", ""][class_pick];
        let class = classes.get(class);
        let request = ChatRequest::from_value(serde_json::json!({
            "model": "a/one", "models": ["b/two"],
            "messages": [{"role": "user", "content": "hi"}],
        })).expect("request");
        let Ok(mut plan) = routing::plan(
            &request,
            &catalog,
            &HealthSnapshot::default(),
            &Policy::default(),
            &RouteContext { sticky_provider: None, random },
        ) else {
            return Ok(());
        };
        let effective = guard::Effective::layer(&g);
        let mut restrictions: Vec<&dyn Restriction> = Vec::new();
        if let Some(c) = class {
            restrictions.push(c);
        }
        restrictions.push(&effective);
        // An emptied plan is a refusal: nothing is attempted, which the loop below sees.
        let _ = restrict::narrow(&mut plan, &catalog, &restrictions);
        // Attempts walk the candidates in order until one succeeds.
        let mut attempted = Vec::new();
        for (i, c) in plan.candidates.iter().enumerate() {
            attempted.push(c.clone());
            if !failures.get(i).copied().unwrap_or(false) {
                break;
            }
        }
        for c in &attempted {
            let provider = catalog.provider(&c.provider).expect("provider");
            let endpoint = &catalog.model(&c.model).expect("model").endpoints[c.endpoint];
            if let Some(cl) = class {
                prop_assert_eq!(cl.refuses(provider, endpoint), None, "classification broken by {:?}", c);
            }
            prop_assert_eq!(g.refuses(&c.model, provider, endpoint), None, "guardrail broken by {:?}", c);
            prop_assert!(g.model_allowed(&c.model));
        }
        // Nothing allowed was lost: every excluded endpoint has a reason.
        prop_assert!(plan.excluded.iter().all(|x| !x.reason.is_empty()));
    }
}
