//! The routers (`openrouter/free`, `openrouter/auto`) and `~author/family-latest`: table tests
//! of each rule and property tests over random requests and draws.

use proptest::prelude::*;
use serde_json::{json, Value};
use switchyard_core::catalog::{Catalog, ModelKind};
use switchyard_core::chat::ChatRequest;
use switchyard_core::routing::{
    plan, plan_request, reasons, HealthSnapshot, Policy, RouteContext, RouteError, RoutePlan,
    RouteRequest,
};

/// (id, created, [(provider, prompt, completion, context, params)]).
type ModelRow<'a> = (
    &'a str,
    i64,
    &'a [(&'a str, &'a str, &'a str, u64, &'a [&'a str])],
);

const MODELS: &[ModelRow<'static>] = &[
    (
        "a/cheap",
        10,
        &[("p", "0.000001", "0.000002", 1000, &["temperature"])],
    ),
    (
        "a/pricey",
        20,
        &[(
            "q",
            "0.00001",
            "0.00002",
            100_000,
            &["temperature", "tools", "seed"],
        )],
    ),
    (
        "a/mid",
        30,
        &[
            (
                "p",
                "0.000003",
                "0.000003",
                100_000,
                &["temperature", "seed"],
            ),
            ("q", "0", "0", 100_000, &["temperature"]),
        ],
    ),
    (
        "b/freebie",
        40,
        &[("q", "0", "0", 100_000, &["seed", "temperature"])],
    ),
    ("fam/x", 50, &[("p", "0.000001", "0.000001", 100_000, &[])]),
    (
        "fam/x-1",
        100,
        &[("p", "0.000001", "0.000001", 100_000, &[])],
    ),
    (
        "fam/x-2",
        200,
        &[("p", "0.000001", "0.000001", 100_000, &[])],
    ),
    (
        "fam/x-2-mini",
        150,
        &[("p", "0.000001", "0.000001", 100_000, &[])],
    ),
    (
        "fam/xylophone",
        999,
        &[("p", "0.000001", "0.000001", 100_000, &[])],
    ),
    ("fam/y.1", 5, &[("p", "0.000001", "0.000001", 100_000, &[])]),
    ("fam/y.2", 5, &[("p", "0.000001", "0.000001", 100_000, &[])]),
];

fn catalog() -> Catalog {
    let mut text = String::new();
    for slug in ["p", "q"] {
        text.push_str(&format!(
            "[[providers]]\nslug = \"{slug}\"\nname = \"{slug}\"\nkind = \"openai\"\nbase_url = \"http://{slug}/v1\"\ndata_policy = {{ training = false, retains_prompts = false, zdr = true }}\n\n"
        ));
    }
    for (id, created, endpoints) in MODELS {
        text.push_str(&format!(
            "[[models]]\nid = \"{id}\"\nname = \"{id}\"\ncreated = {created}\ncontext_length = 100000\n\n"
        ));
        for (provider, prompt, completion, context, params) in *endpoints {
            let params: Vec<String> = params.iter().map(|p| format!("\"{p}\"")).collect();
            text.push_str(&format!(
                "[[models.endpoints]]\nprovider = \"{provider}\"\nupstream_model = \"{id}\"\ncontext_length = {context}\npricing = {{ prompt = \"{prompt}\", completion = \"{completion}\" }}\nsupported_parameters = [{}]\n\n",
                params.join(", ")
            ));
        }
    }
    text.push_str(
        "[[models]]\nid = \"e/embed\"\nname = \"Embed\"\nkind = \"embedding\"\ndimensions = 8\ncontext_length = 8192\n\n[[models.endpoints]]\nprovider = \"p\"\nupstream_model = \"embed\"\npricing = { prompt = \"0\" }\n",
    );
    match Catalog::from_toml("routers.toml", &text) {
        Ok(c) => c,
        Err(e) => panic!("invalid test catalogue: {e}"),
    }
}

fn request(mut value: Value) -> ChatRequest {
    if value.get("messages").is_none() {
        value["messages"] = json!([{"role": "user", "content": "hello"}]);
    }
    match ChatRequest::from_value(value.clone()) {
        Ok(r) => r,
        Err(e) => panic!("invalid test request {value}: {e}"),
    }
}

fn route_with(catalog: &Catalog, body: Value, random: f64) -> Result<RoutePlan, RouteError> {
    plan(
        &request(body),
        catalog,
        &HealthSnapshot::default(),
        &Policy::default(),
        &RouteContext {
            random,
            ..RouteContext::default()
        },
    )
}

fn route(catalog: &Catalog, body: Value) -> Result<RoutePlan, RouteError> {
    route_with(catalog, body, 0.0)
}

fn pairs(plan: &RoutePlan) -> Vec<(String, String)> {
    plan.candidates
        .iter()
        .map(|c| (c.model.clone(), c.provider.clone()))
        .collect()
}

fn pair(model: &str, provider: &str) -> (String, String) {
    (model.to_owned(), provider.to_owned())
}

fn is_free(catalog: &Catalog, model: &str, endpoint: usize) -> bool {
    catalog
        .model(model)
        .is_some_and(|m| m.endpoints[endpoint].pricing.is_free())
}

#[test]
fn free_keeps_only_free_endpoints_of_chat_models() {
    let c = catalog();
    let plan = route(&c, json!({"model": "openrouter/free"})).expect("plan");
    let mut got = pairs(&plan);
    got.sort();
    assert_eq!(got, vec![pair("a/mid", "q"), pair("b/freebie", "q")]);
    assert_eq!(plan.router, Some("free"));
    assert_eq!(plan.requested_models, vec!["openrouter/free".to_owned()]);
    // Every other chat endpoint is excluded as not free; the embedding model is not considered.
    let chat_endpoints: usize = MODELS.iter().map(|(_, _, e)| e.len()).sum();
    assert_eq!(plan.excluded.len(), chat_endpoints - 2);
    assert!(plan.excluded.iter().all(|x| x.reason == reasons::NOT_FREE));
    assert!(plan.excluded.iter().all(|x| x.model != "e/embed"));
    // The draw is among the free endpoints of every model, uniformly: both come first.
    let firsts: std::collections::HashSet<String> = [0.0, 0.3, 0.6, 0.99]
        .into_iter()
        .map(|r| route_with(&c, json!({"model": "openrouter/free"}), r).expect("plan"))
        .map(|p| p.candidates[0].model.clone())
        .collect();
    assert_eq!(firsts.len(), 2, "{firsts:?}");
    // The request's filters still apply: `seed` with `require_parameters` leaves b/freebie.
    let plan = route(
        &c,
        json!({"model": "openrouter/free", "seed": 1, "provider": {"require_parameters": true}}),
    )
    .expect("plan");
    assert_eq!(pairs(&plan), vec![pair("b/freebie", "q")]);
    assert!(plan.excluded.iter().any(|x| x.model == "a/mid"
        && x.provider == "q"
        && x.reason == reasons::REQUIRE_PARAMETERS));
}

#[test]
fn auto_orders_capable_endpoints_cheapest_first() {
    let c = catalog();
    let plan = route(&c, json!({"model": "openrouter/auto"})).expect("plan");
    assert_eq!(plan.router, Some("auto"));
    let got = pairs(&plan);
    // Free first, then by price; a tie goes to the endpoint listed earlier in its model
    // (b/freebie's first before a/mid's second), then to catalogue order.
    assert_eq!(got[0], pair("b/freebie", "q"));
    assert_eq!(got[1], pair("a/mid", "q"));
    assert_eq!(got.last(), Some(&pair("a/pricey", "q")));
    // A parameter the request sets must be supported (endpoints declaring no list count as
    // supporting everything, as everywhere).
    let plan = route(
        &c,
        json!({"model": "openrouter/auto", "tools": [
        {"type": "function", "function": {"name": "f"}}
    ], "seed": 3}),
    )
    .expect("plan");
    let got = pairs(&plan);
    assert_eq!(got[0], pair("fam/x", "p"), "{got:?}");
    assert!(!got.contains(&pair("a/mid", "q")) && !got.contains(&pair("b/freebie", "q")));
    assert!(plan.excluded.iter().any(|x| x.model == "b/freebie"
        && (x.reason == reasons::TOOLS || x.reason == reasons::REQUIRE_PARAMETERS)));
    // The prompt and max_tokens must fit: a/cheap's 1000-token context is left out.
    let plan = route(&c, json!({"model": "openrouter/auto", "max_tokens": 5000})).expect("plan");
    assert!(plan
        .excluded
        .iter()
        .any(|x| x.model == "a/cheap" && x.reason == reasons::CONTEXT_LENGTH));
    // Nothing capable: the usual no-endpoints error naming the router.
    let e = route(
        &c,
        json!({"model": "openrouter/auto", "provider": {"only": ["nobody"]}}),
    )
    .expect_err("nothing");
    assert!(e.to_string().contains("openrouter/auto"), "{e}");
}

#[test]
fn latest_is_the_newest_of_the_family() {
    let c = catalog();
    let plan = route(&c, json!({"model": "~fam/x-latest"})).expect("plan");
    assert_eq!(pairs(&plan), vec![pair("fam/x-2", "p")]);
    assert_eq!(plan.router, Some("latest"));
    // Same `created`: the greatest id.
    let plan = route(&c, json!({"model": "~fam/y-latest"})).expect("plan");
    assert_eq!(pairs(&plan), vec![pair("fam/y.2", "p")]);
    // A variant applies to the model chosen.
    let e = route(&c, json!({"model": "~fam/x-latest:free"})).expect_err("not free");
    assert!(matches!(e, RouteError::NoEndpoints { .. }), "{e}");
    for unknown in [
        "~fam/z-latest",
        "~fam/x",
        "fam/x-latest",
        "~/x-latest",
        "~fam/-latest",
    ] {
        let e = route(&c, json!({"model": unknown})).expect_err("unknown");
        assert!(
            matches!(e, RouteError::ModelNotFound { .. }),
            "{unknown}: {e}"
        );
    }
    assert_eq!(
        switchyard_core::routing::latest(&c, "~fam/x-2-latest").map(|m| m.id.as_str()),
        Some("fam/x-2")
    );
}

#[test]
fn routers_take_no_variant_and_serve_only_their_kind() {
    let c = catalog();
    for name in ["openrouter/free:nitro", "openrouter/auto:free"] {
        let e = route(&c, json!({"model": name})).expect_err("variant");
        assert!(matches!(e, RouteError::InvalidPreference(_)), "{name}: {e}");
    }
    let embeddings = RouteRequest {
        kind: ModelKind::Embedding,
        model: Some("openrouter/free"),
        models: &[],
        provider: None,
        route: None,
        service_tier: None,
        parameters: Vec::new(),
        prompt_tokens: 10,
        max_output_tokens: None,
        modalities: vec!["text"],
        tools: false,
        dimensions: None,
        legacy_completions: None,
    };
    let plan = plan_request(
        &embeddings,
        &c,
        &HealthSnapshot::default(),
        &Policy::default(),
        &RouteContext::default(),
    )
    .expect("plan");
    assert_eq!(pairs(&plan), vec![pair("e/embed", "p")]);
    // A router among fallbacks is one requested model: its pool follows the first model.
    let plan = route(
        &c,
        json!({"model": "a/cheap", "models": ["openrouter/free"]}),
    )
    .expect("plan");
    assert_eq!(plan.candidates[0].model, "a/cheap");
    assert_eq!(plan.candidates.len(), 3);
    assert_eq!(plan.router, Some("free"));
}

proptest! {
    /// Whatever the request sets and whatever the draw, `openrouter/free` plans only free
    /// endpoints and `openrouter/auto` only endpoints supporting every parameter set, cheapest
    /// first; neither ever reaches an embedding model.
    #[test]
    fn routers_keep_their_rules(
        temperature in proptest::option::of(0.0f64..=2.0),
        seed in proptest::option::of(0i64..10),
        max_tokens in proptest::option::of(1u64..200_000),
        tools in any::<bool>(),
        random in 0.0f64..1.0,
    ) {
        let c = catalog();
        let mut body = json!({});
        if let Some(t) = temperature { body["temperature"] = json!(t); }
        if let Some(s) = seed { body["seed"] = json!(s); }
        if let Some(m) = max_tokens { body["max_tokens"] = json!(m); }
        if tools { body["tools"] = json!([{"type": "function", "function": {"name": "f"}}]); }
        let mut free = body.clone();
        free["model"] = json!("openrouter/free");
        if let Ok(plan) = route_with(&c, free, random) {
            for cand in &plan.candidates {
                prop_assert!(is_free(&c, &cand.model, cand.endpoint), "{cand:?}");
                prop_assert_ne!(cand.model.as_str(), "e/embed");
            }
        }
        let mut auto = body.clone();
        auto["model"] = json!("openrouter/auto");
        let parameters = request(auto.clone()).parameters_used();
        if let Ok(plan) = route_with(&c, auto, random) {
            let mut last = None;
            for cand in &plan.candidates {
                let model = c.model(&cand.model).expect("model");
                prop_assert!(model.kind() == ModelKind::Chat);
                let e = &model.endpoints[cand.endpoint];
                prop_assert!(parameters.iter().all(|p| e.supported_parameters.is_empty() || e.supports(p)),
                    "{cand:?} lacks one of {parameters:?}");
                let price = e.pricing.prompt.amount.saturating_add(e.pricing.completion.amount);
                prop_assert!(last.is_none_or(|l| l <= price), "not cheapest first");
                last = Some(price);
            }
        }
    }
}
