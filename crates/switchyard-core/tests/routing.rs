//! Routing: table-driven tests of every provider preference and variant, and property tests over
//! random catalogues, policies and requests.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use proptest::prelude::*;
use serde_json::{json, Value};
use switchyard_core::catalog::Catalog;
use switchyard_core::catalog::ModelKind;
use switchyard_core::chat::ChatRequest;
use switchyard_core::money::Money;
use switchyard_core::routing::{
    plan, plan_request, weighted_choice, EndpointHealth, HealthSnapshot, Policy, Quantiles,
    RouteContext, RouteError, RoutePlan, RouteRequest,
};

// === catalogue builder ===

#[derive(Debug, Clone)]
struct ProviderSpec {
    slug: String,
    training: bool,
    retains: bool,
    zdr: bool,
    /// No data policy in the catalogue (assumed worst case).
    unknown: bool,
}

#[derive(Debug, Clone)]
struct EndpointSpec {
    provider: String,
    tag: Option<String>,
    /// USD per token.
    prompt: String,
    completion: String,
    request: Option<String>,
    image: Option<String>,
    quantization: String,
    context: u64,
    params: Vec<String>,
    tier: Option<String>,
}

#[derive(Debug, Clone)]
struct ModelSpec {
    id: String,
    modalities: Vec<String>,
    endpoints: Vec<EndpointSpec>,
}

fn provider(slug: &str, training: bool, retains: bool, zdr: bool) -> ProviderSpec {
    ProviderSpec {
        slug: slug.to_owned(),
        training,
        retains,
        zdr,
        unknown: false,
    }
}

fn endpoint(provider: &str, prompt: &str, completion: &str) -> EndpointSpec {
    EndpointSpec {
        provider: provider.to_owned(),
        tag: None,
        prompt: prompt.to_owned(),
        completion: completion.to_owned(),
        request: None,
        image: None,
        quantization: "unknown".to_owned(),
        context: 100_000,
        params: Vec::new(),
        tier: None,
    }
}

fn model(id: &str, endpoints: Vec<EndpointSpec>) -> ModelSpec {
    ModelSpec {
        id: id.to_owned(),
        modalities: vec!["text".to_owned()],
        endpoints,
    }
}

fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

fn build(providers: &[ProviderSpec], models: &[ModelSpec]) -> Catalog {
    let mut t = String::new();
    for p in providers {
        let _ = writeln!(
            t,
            "[[providers]]\nslug = {:?}\nname = {:?}\nkind = \"openai\"\nbase_url = \"http://localhost/v1\"",
            p.slug, p.slug
        );
        if !p.unknown {
            let _ = writeln!(
                t,
                "data_policy = {{ training = {}, retains_prompts = {}, zdr = {} }}",
                p.training, p.retains, p.zdr
            );
        }
    }
    for m in models {
        let _ = writeln!(
            t,
            "[[models]]\nid = {:?}\nname = {:?}\ninput_modalities = {}",
            m.id,
            m.id,
            toml_list(&m.modalities)
        );
        for e in &m.endpoints {
            let mut pricing = format!("prompt = {:?}, completion = {:?}", e.prompt, e.completion);
            if let Some(r) = &e.request {
                let _ = write!(pricing, ", request = {r:?}");
            }
            if let Some(i) = &e.image {
                let _ = write!(pricing, ", image = {i:?}");
            }
            let _ = writeln!(
                t,
                "[[models.endpoints]]\nprovider = {:?}\nupstream_model = \"m\"\npricing = {{ {pricing} }}\nquantization = {:?}\ncontext_length = {}\nsupported_parameters = {}",
                e.provider,
                e.quantization,
                e.context,
                toml_list(&e.params)
            );
            if let Some(tag) = &e.tag {
                let _ = writeln!(t, "tag = {tag:?}");
            }
            if let Some(tier) = &e.tier {
                let _ = writeln!(t, "service_tier = {tier:?}");
            }
        }
    }
    match Catalog::from_toml("test.toml", &t) {
        Ok(c) => c,
        Err(e) => panic!("invalid test catalogue: {e}\n{t}"),
    }
}

fn request(value: Value) -> ChatRequest {
    let mut value = value;
    if value.get("messages").is_none() {
        value["messages"] = json!([{"role": "user", "content": "hello"}]);
    }
    match ChatRequest::from_value(value.clone()) {
        Ok(r) => r,
        Err(e) => panic!("invalid test request {value}: {e}"),
    }
}

fn route(catalog: &Catalog, body: Value) -> Result<RoutePlan, RouteError> {
    plan(
        &request(body),
        catalog,
        &HealthSnapshot::default(),
        &Policy::default(),
        &RouteContext::default(),
    )
}

fn tags(plan: &RoutePlan) -> Vec<String> {
    plan.candidates.iter().map(|c| c.tag.clone()).collect()
}

fn reason_of(plan: &RoutePlan, tag: &str) -> Option<String> {
    plan.excluded
        .iter()
        .find(|e| e.tag == tag)
        .map(|e| e.reason.clone())
}

/// Five providers of one model at distinct prices, all private.
fn five() -> Catalog {
    let providers: Vec<ProviderSpec> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|s| provider(s, false, false, true))
        .collect();
    let endpoints = vec![
        endpoint("c", "0.000003", "0"),
        endpoint("a", "0.000001", "0"),
        endpoint("e", "0.000005", "0"),
        endpoint("b", "0.000002", "0"),
        endpoint("d", "0.000004", "0"),
    ];
    build(&providers, &[model("x/m", endpoints)])
}

// === table-driven tests ===

/// Expected (endpoint tag, exclusion reason) pairs.
type Reasons = Vec<(&'static str, &'static str)>;

#[test]
fn provider_lists_and_order() {
    let catalog = five();
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"only": ["b", "d"], "sort": "price"}), vec!["b", "d"]),
        (
            json!({"ignore": ["a", "b"], "sort": "price"}),
            vec!["c", "d", "e"],
        ),
        (json!({"order": ["d", "b"]}), vec!["d", "b", "a", "c", "e"]),
        (
            json!({"order": ["d", "b"], "allow_fallbacks": false}),
            vec!["d", "b"],
        ),
        (json!({"order": ["D"], "allow_fallbacks": false}), vec!["d"]),
        (json!({"sort": "price"}), vec!["a", "b", "c", "d", "e"]),
        (
            json!({"sort": "price", "allow_fallbacks": false}),
            vec!["a"],
        ),
        (
            json!({"sort": {"by": "price", "partition": "model"}}),
            vec!["a", "b", "c", "d", "e"],
        ),
        (
            json!({"only": ["a", "b", "c"], "ignore": ["b"], "sort": "price"}),
            vec!["a", "c"],
        ),
    ];
    for (prefs, expected) in cases {
        let plan = route(&catalog, json!({"model": "x/m", "provider": prefs.clone()}))
            .unwrap_or_else(|e| panic!("{prefs}: {e}"));
        assert_eq!(tags(&plan), expected, "{prefs}");
    }
    let plan = route(
        &catalog,
        json!({"model": "x/m", "provider": {"only": ["b"]}}),
    )
    .expect("routes");
    assert_eq!(reason_of(&plan, "a").as_deref(), Some("only"));
    let plan = route(
        &catalog,
        json!({"model": "x/m", "provider": {"ignore": ["b"]}}),
    )
    .expect("routes");
    assert_eq!(reason_of(&plan, "b").as_deref(), Some("ignore"));
    let plan = route(
        &catalog,
        json!({"model": "x/m", "provider": {"order": ["b"], "allow_fallbacks": false}}),
    )
    .expect("routes");
    assert_eq!(reason_of(&plan, "a").as_deref(), Some("order"));
}

#[test]
fn base_slug_matches_every_endpoint_and_suffixed_slug_only_itself() {
    let mut turbo = endpoint("deepinfra", "0.000001", "0");
    turbo.tag = Some("deepinfra/turbo".to_owned());
    let catalog = build(
        &[
            provider("deepinfra", false, false, true),
            provider("other", false, false, true),
        ],
        &[model(
            "x/m",
            vec![
                endpoint("deepinfra", "0.000002", "0"),
                turbo,
                endpoint("other", "0.000003", "0"),
            ],
        )],
    );
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"only": ["deepinfra"], "sort": "price"}),
            vec!["deepinfra/turbo", "deepinfra"],
        ),
        (
            json!({"only": ["deepinfra/turbo"], "sort": "price"}),
            vec!["deepinfra/turbo"],
        ),
        (
            json!({"ignore": ["deepinfra"], "sort": "price"}),
            vec!["other"],
        ),
        (
            json!({"ignore": ["deepinfra/turbo"], "sort": "price"}),
            vec!["deepinfra", "other"],
        ),
        (
            json!({"order": ["deepinfra/turbo"], "allow_fallbacks": false}),
            vec!["deepinfra/turbo"],
        ),
    ];
    for (prefs, expected) in cases {
        let plan = route(&catalog, json!({"model": "x/m", "provider": prefs.clone()}))
            .unwrap_or_else(|e| panic!("{prefs}: {e}"));
        assert_eq!(tags(&plan), expected, "{prefs}");
    }
}

#[test]
fn privacy_filters() {
    let catalog = build(
        &[
            provider("trains", true, true, false),
            provider("retains", false, true, false),
            provider("private", false, false, false),
            provider("zdr", false, false, true),
            ProviderSpec {
                unknown: true,
                ..provider("mystery", false, false, false)
            },
        ],
        &[model(
            "x/m",
            vec![
                endpoint("trains", "0.000001", "0"),
                endpoint("retains", "0.000002", "0"),
                endpoint("private", "0.000003", "0"),
                endpoint("zdr", "0.000004", "0"),
                endpoint("mystery", "0.000005", "0"),
            ],
        )],
    );
    let deny_training = Policy {
        deny_training: true,
        ..Policy::default()
    };
    let zdr_only = Policy {
        zdr_only: true,
        ..Policy::default()
    };
    let cases: Vec<(Value, Policy, Vec<&str>, Reasons)> = vec![
        (
            json!({"data_collection": "deny"}),
            Policy::default(),
            vec!["private", "zdr"],
            vec![
                ("trains", "data_policy:training"),
                ("retains", "data_policy:training"),
                ("mystery", "data_policy:training"),
            ],
        ),
        (
            json!({"data_collection": "allow"}),
            Policy::default(),
            vec!["trains", "retains", "private", "zdr", "mystery"],
            vec![],
        ),
        (
            json!({"zdr": true}),
            Policy::default(),
            vec!["zdr"],
            vec![
                ("private", "data_policy:zdr"),
                ("mystery", "data_policy:zdr"),
            ],
        ),
        (
            json!({}),
            deny_training.clone(),
            vec!["retains", "private", "zdr"],
            vec![
                ("trains", "data_policy:training"),
                ("mystery", "data_policy:training"),
            ],
        ),
        // The request cannot loosen the account.
        (
            json!({"data_collection": "allow", "zdr": false}),
            zdr_only.clone(),
            vec!["zdr"],
            vec![("trains", "data_policy:zdr")],
        ),
        (
            json!({}),
            Policy {
                allowed_providers: Some(vec!["private".into(), "zdr".into()]),
                ignored_providers: vec!["zdr".into()],
                ..Policy::default()
            },
            vec!["private"],
            vec![("zdr", "account_policy"), ("trains", "account_policy")],
        ),
    ];
    for (prefs, policy, expected, reasons) in cases {
        let mut prefs_obj = prefs.clone();
        prefs_obj["sort"] = json!("price");
        let plan = plan(
            &request(json!({"model": "x/m", "provider": prefs_obj})),
            &catalog,
            &HealthSnapshot::default(),
            &policy,
            &RouteContext::default(),
        )
        .unwrap_or_else(|e| panic!("{prefs}: {e}"));
        assert_eq!(tags(&plan), expected, "{prefs} {policy:?}");
        for (tag, reason) in reasons {
            assert_eq!(
                reason_of(&plan, tag).as_deref(),
                Some(reason),
                "{prefs} {tag}"
            );
        }
    }
}

#[test]
fn capability_filters() {
    let mut small = endpoint("small", "0.000001", "0");
    small.context = 1000;
    let mut tools = endpoint("tools", "0.000002", "0");
    tools.params = vec!["tools".into(), "temperature".into()];
    let mut notools = endpoint("notools", "0.000003", "0");
    notools.params = vec!["temperature".into(), "max_tokens".into()];
    let mut fp8 = endpoint("fp8", "0.000004", "0");
    fp8.quantization = "fp8".into();
    let mut any = endpoint("any", "0.000005", "0");
    any.quantization = "bf16".into();
    let providers: Vec<ProviderSpec> = ["small", "tools", "notools", "fp8", "any"]
        .iter()
        .map(|s| provider(s, false, false, true))
        .collect();
    let catalog = build(
        &providers,
        &[model("x/m", vec![small, tools, notools, fp8, any])],
    );
    let tool = json!([{"type": "function", "function": {"name": "f"}}]);
    let cases: Vec<(Value, Vec<&str>, Reasons)> = vec![
        (
            json!({"max_tokens": 5000}),
            vec!["tools", "notools", "fp8", "any"],
            vec![("small", "context_length")],
        ),
        (
            json!({"tools": tool}),
            vec!["small", "tools", "fp8", "any"],
            vec![("notools", "tools")],
        ),
        (
            json!({"temperature": 0.5, "max_tokens": 10, "provider": {"require_parameters": true}}),
            vec!["small", "notools", "fp8", "any"],
            vec![("tools", "require_parameters")],
        ),
        // Without require_parameters, unsupported parameters are dropped, not filtered.
        (
            json!({"temperature": 0.5, "max_tokens": 10}),
            vec!["small", "tools", "notools", "fp8", "any"],
            vec![],
        ),
        (
            json!({"provider": {"quantizations": ["fp8", "bf16"]}}),
            vec!["fp8", "any"],
            vec![("small", "quantization")],
        ),
        (
            json!({"messages": [{"role": "user", "content": [
                {"type": "text", "text": "what is this"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}}
            ]}]}),
            vec![],
            vec![("tools", "modality"), ("any", "modality")],
        ),
    ];
    for (body, expected, reasons) in cases {
        let mut body_obj = body.clone();
        body_obj["model"] = json!("x/m");
        let mut prefs = body_obj.get("provider").cloned().unwrap_or(json!({}));
        prefs["sort"] = json!("price");
        body_obj["provider"] = prefs;
        let plan = match route(&catalog, body_obj) {
            Ok(plan) => plan,
            Err(RouteError::NoEndpoints { code, plan, .. }) => {
                assert_eq!(code, "constraint_filtered", "{body}");
                *plan
            }
            Err(e) => panic!("{body}: {e}"),
        };
        assert_eq!(tags(&plan), expected, "{body}");
        for (tag, reason) in reasons {
            assert_eq!(
                reason_of(&plan, tag).as_deref(),
                Some(reason),
                "{body} {tag}"
            );
        }
    }
}

#[test]
fn max_price_is_exact_and_accepts_numbers_and_strings() {
    let mut with_request = endpoint("r", "0.000001", "0.000002");
    with_request.request = Some("0.01".into());
    let mut with_image = endpoint("i", "0.000001", "0.000002");
    with_image.image = Some("0.005".into());
    let providers: Vec<ProviderSpec> = ["p", "q", "r", "i"]
        .iter()
        .map(|s| provider(s, false, false, true))
        .collect();
    let catalog = build(
        &providers,
        &[model(
            "x/m",
            vec![
                // $1 / $2 per million.
                endpoint("p", "0.000001", "0.000002"),
                // $3 / $15 per million.
                endpoint("q", "0.000003", "0.000015"),
                with_request,
                with_image,
            ],
        )],
    );
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"prompt": 1}), vec!["p", "r", "i"]),
        (json!({"prompt": "1"}), vec!["p", "r", "i"]),
        (json!({"prompt": 0.999999}), vec![]),
        (
            json!({"prompt": "3", "completion": 15}),
            vec!["p", "r", "i", "q"],
        ),
        (json!({"completion": "14.999999"}), vec!["p", "r", "i"]),
        (json!({"request": 0.009}), vec!["p", "q", "i"]),
        (json!({"request": "0.01"}), vec!["p", "q", "r", "i"]),
        (json!({"image": 0}), vec!["p", "q", "r"]),
        (json!({"prompt": 0.1, "completion": 0.2}), vec![]),
    ];
    for (max, expected) in cases {
        let body = json!({"model": "x/m", "provider": {"max_price": max.clone(), "sort": "price"}});
        match route(&catalog, body) {
            Ok(plan) => {
                let mut got = tags(&plan);
                let mut want: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
                got.sort();
                want.sort();
                assert_eq!(got, want, "{max}");
                assert!(
                    plan.excluded.iter().all(|e| e.reason == "max_price"),
                    "{max}"
                );
            }
            Err(RouteError::NoEndpoints { code, plan, .. }) => {
                assert!(expected.is_empty(), "{max}: unexpected empty");
                assert_eq!(code, "constraint_filtered");
                assert!(plan.excluded.iter().all(|e| e.reason == "max_price"));
            }
            Err(e) => panic!("{max}: {e}"),
        }
    }
    for bad in [
        json!({"prompt": "cheap"}),
        json!({"prompt": -1}),
        json!({"prompt": true}),
    ] {
        let err = route(
            &catalog,
            json!({"model": "x/m", "provider": {"max_price": bad.clone()}}),
        )
        .expect_err("invalid");
        assert!(
            matches!(&err, RouteError::InvalidPreference(m) if m.contains("max_price.prompt")),
            "{bad}: {err:?}"
        );
    }
}

#[test]
fn unknown_and_invalid_preferences_are_named() {
    let cases = [
        (json!({"provider": {"sortt": "price"}}), "sortt"),
        (json!({"provider": {"max_price": {"tokens": 1}}}), "tokens"),
        (json!({"provider": {"sort": "cheapest"}}), "cheapest"),
        (
            json!({"provider": {"sort": {"by": "price", "partitionn": "none"}}}),
            "partitionn",
        ),
        (json!({"provider": {"data_collection": "maybe"}}), "maybe"),
    ];
    for (body, needle) in cases {
        let mut body = body;
        body["messages"] = json!([{"role": "user", "content": "x"}]);
        let err = ChatRequest::from_value(body.clone()).expect_err("refused");
        assert!(err.0.contains(needle), "{body}: {} lacks {needle}", err.0);
        assert!(
            err.0.contains("provider"),
            "{body}: {} lacks the path",
            err.0
        );
    }
    let catalog = five();
    let cases = [
        (json!({"model": "x/m:turbo"}), ":turbo"),
        (
            json!({"model": "x/m", "provider": {"quantizations": ["fp7"]}}),
            "fp7",
        ),
        (json!({"model": "x/m", "route": "random"}), "random"),
        (
            json!({"model": "x/m", "provider": {"preferred_min_throughput": -3}}),
            "preferred_min_throughput",
        ),
    ];
    for (body, needle) in cases {
        match route(&catalog, body.clone()) {
            Err(RouteError::InvalidPreference(m)) => assert!(m.contains(needle), "{body}: {m}"),
            other => panic!("{body}: {other:?}"),
        }
    }
    assert_eq!(
        route(&catalog, json!({"model": "x/nothing"})),
        Err(RouteError::ModelNotFound {
            model: "x/nothing".into()
        })
    );
    assert_eq!(
        route(&catalog, json!({"model": "x/m", "models": ["y/nothing"]})),
        Err(RouteError::ModelNotFound {
            model: "y/nothing".into()
        })
    );
    assert_eq!(route(&catalog, json!({})), Err(RouteError::NoModel));
}

fn two_models() -> Catalog {
    let providers: Vec<ProviderSpec> = ["a", "b", "c", "free"]
        .iter()
        .map(|s| provider(s, false, false, true))
        .collect();
    build(
        &providers,
        &[
            model(
                "x/one",
                vec![
                    endpoint("a", "0.000004", "0"),
                    endpoint("b", "0.000002", "0"),
                    endpoint("free", "0", "0"),
                ],
            ),
            model(
                "x/two",
                vec![
                    endpoint("c", "0.000001", "0"),
                    endpoint("a", "0.000003", "0"),
                ],
            ),
        ],
    )
}

fn pairs(plan: &RoutePlan) -> Vec<(String, String)> {
    plan.candidates
        .iter()
        .map(|c| (c.model.clone(), c.tag.clone()))
        .collect()
}

fn p(model: &str, tag: &str) -> (String, String) {
    (model.to_owned(), tag.to_owned())
}

#[test]
fn model_fallbacks_partitions_and_variants() {
    let catalog = two_models();
    let cases: Vec<(Value, Vec<(String, String)>)> = vec![
        (
            json!({"model": "x/one", "models": ["x/two"], "provider": {"sort": "price"}}),
            vec![
                p("x/one", "free"),
                p("x/one", "b"),
                p("x/one", "a"),
                p("x/two", "c"),
                p("x/two", "a"),
            ],
        ),
        (
            json!({"models": ["x/two", "x/one"], "route": "fallback", "provider": {"sort": "price"}}),
            vec![
                p("x/two", "c"),
                p("x/two", "a"),
                p("x/one", "free"),
                p("x/one", "b"),
                p("x/one", "a"),
            ],
        ),
        (
            json!({"model": "x/one", "models": ["x/two"], "provider": {"sort": {"by": "price", "partition": "none"}}}),
            vec![
                p("x/one", "free"),
                p("x/two", "c"),
                p("x/one", "b"),
                p("x/two", "a"),
                p("x/one", "a"),
            ],
        ),
        (
            json!({"model": "x/one", "models": ["x/two"], "route": "sort", "provider": {"sort": "price"}}),
            vec![
                p("x/one", "free"),
                p("x/two", "c"),
                p("x/one", "b"),
                p("x/two", "a"),
                p("x/one", "a"),
            ],
        ),
        (
            json!({"model": "x/one:free", "models": ["x/two"], "provider": {"sort": "price"}}),
            vec![p("x/one", "free"), p("x/two", "c"), p("x/two", "a")],
        ),
        (
            json!({"model": "x/one:floor"}),
            vec![p("x/one", "free"), p("x/one", "b"), p("x/one", "a")],
        ),
        (
            json!({"model": "x/one", "models": ["x/two"], "provider": {"sort": "price", "allow_fallbacks": false}}),
            vec![p("x/one", "free"), p("x/two", "c")],
        ),
    ];
    for (body, expected) in cases {
        let plan = route(&catalog, body.clone()).unwrap_or_else(|e| panic!("{body}: {e}"));
        assert_eq!(pairs(&plan), expected, "{body}");
    }
    let plan = route(&catalog, json!({"model": "x/one:free"})).expect("routes");
    assert_eq!(reason_of(&plan, "a").as_deref(), Some("not_free"));
    assert_eq!(plan.requested_models, vec!["x/one:free".to_owned()]);
    let err = route(&catalog, json!({"model": "x/two:free"})).expect_err("nothing free");
    assert!(matches!(
        err,
        RouteError::NoEndpoints {
            code: "constraint_filtered",
            ..
        }
    ));
}

fn measured(throughput: f64, latency_ms: f64) -> EndpointHealth {
    EndpointHealth {
        throughput: Some(Quantiles::constant(throughput)),
        latency_ms: Some(Quantiles::constant(latency_ms)),
        ..EndpointHealth::default()
    }
}

fn health(entries: &[(&str, &str, EndpointHealth)]) -> HealthSnapshot {
    HealthSnapshot {
        endpoints: entries
            .iter()
            .map(|(m, t, h)| (((*m).to_owned(), (*t).to_owned()), *h))
            .collect(),
    }
}

#[test]
fn performance_sorts_and_soft_preferences() {
    let catalog = five();
    let snapshot = health(&[
        ("x/m", "a", measured(10.0, 900.0)),
        ("x/m", "b", measured(50.0, 300.0)),
        ("x/m", "c", measured(30.0, 100.0)),
        ("x/m", "d", measured(80.0, 2500.0)),
        // e unmeasured.
    ]);
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"provider": {"sort": "throughput"}}),
            vec!["d", "b", "c", "a", "e"],
        ),
        (json!({"model": "x/m:nitro"}), vec!["d", "b", "c", "a", "e"]),
        (
            json!({"provider": {"sort": "latency"}}),
            vec!["c", "b", "a", "d", "e"],
        ),
        // Soft: misses go after the others, never removed.
        (
            json!({"provider": {"sort": "price", "preferred_min_throughput": 40}}),
            vec!["b", "d", "e", "a", "c"],
        ),
        (
            json!({"provider": {"sort": "price", "preferred_max_latency": {"p50": 1, "p90": 2}}}),
            vec!["a", "b", "c", "e", "d"],
        ),
    ];
    for (body, expected) in cases {
        let mut body = body;
        if body.get("model").is_none() {
            body["model"] = json!("x/m");
        }
        let plan = plan(
            &request(body.clone()),
            &catalog,
            &snapshot,
            &Policy::default(),
            &RouteContext::default(),
        )
        .unwrap_or_else(|e| panic!("{body}: {e}"));
        assert_eq!(tags(&plan), expected, "{body}");
        assert!(plan.excluded.is_empty(), "{body}");
    }
}

#[test]
fn health_orders_excludes_and_probes() {
    let catalog = five();
    let degraded = EndpointHealth {
        degraded: true,
        ..EndpointHealth::default()
    };
    let open = EndpointHealth {
        circuit_open: true,
        degraded: true,
        ..EndpointHealth::default()
    };
    let run = |snapshot: &HealthSnapshot, prefs: Value, ctx: RouteContext| {
        plan(
            &request(json!({"model": "x/m", "provider": prefs})),
            &catalog,
            snapshot,
            &Policy::default(),
            &ctx,
        )
    };
    // Degraded last, circuit-open excluded.
    let snapshot = health(&[("x/m", "a", degraded), ("x/m", "b", open)]);
    let plan = run(&snapshot, json!({"sort": "price"}), RouteContext::default()).expect("routes");
    assert_eq!(tags(&plan), vec!["c", "d", "e", "a"]);
    assert_eq!(reason_of(&plan, "b").as_deref(), Some("circuit_open"));
    // Default order: degraded still last whatever the draw.
    for r in [0.0, 0.3, 0.6, 0.99] {
        let ctx = RouteContext {
            random: r,
            ..RouteContext::default()
        };
        let plan = run(&snapshot, json!({}), ctx).expect("routes");
        assert_eq!(plan.candidates.last().map(|c| c.tag.as_str()), Some("a"));
        assert!(!tags(&plan).contains(&"b".to_owned()));
    }
    // Every circuit open: all are tried anyway, cheapest first.
    let all_open = health(&[
        ("x/m", "a", open),
        ("x/m", "b", open),
        ("x/m", "c", open),
        ("x/m", "d", open),
        ("x/m", "e", open),
    ]);
    let plan = run(&all_open, json!({}), RouteContext::default()).expect("probes");
    assert_eq!(tags(&plan), vec!["a", "b", "c", "d", "e"]);
    // Sticky provider first when healthy; ignored when degraded or with `order`.
    let sticky = |s: &str| RouteContext {
        sticky_provider: Some(s.to_owned()),
        random: 0.0,
    };
    let plan = run(&snapshot, json!({}), sticky("d")).expect("routes");
    assert_eq!(tags(&plan)[0], "d");
    let plan = run(&snapshot, json!({}), sticky("a")).expect("routes");
    assert_ne!(tags(&plan)[0], "a");
    let plan = run(&snapshot, json!({"order": ["e"]}), sticky("d")).expect("routes");
    assert_eq!(tags(&plan)[0], "e");
    let plan = run(&snapshot, json!({"sort": "price"}), sticky("d")).expect("routes");
    assert_eq!(tags(&plan)[0], "c");
}

#[test]
fn default_order_draws_by_inverse_square_price_then_falls_back_by_price() {
    let catalog = five();
    // Prices 1..5 per million: the cumulative weights 1, 1/4, 1/9, 1/16, 1/25 decide the draw.
    let weights: Vec<f64> = (1..=5).map(|n| 1.0 / f64::from(n * n)).collect();
    let total: f64 = weights.iter().sum();
    let first_share = weights[0] / total;
    let cases = [
        (0.0, "a"),
        (first_share - 1e-9, "a"),
        (first_share + 1e-9, "b"),
        (0.999_999, "e"),
    ];
    for (random, first) in cases {
        let plan = plan(
            &request(json!({"model": "x/m"})),
            &catalog,
            &HealthSnapshot::default(),
            &Policy::default(),
            &RouteContext {
                random,
                sticky_provider: None,
            },
        )
        .expect("routes");
        let t = tags(&plan);
        assert_eq!(t[0], first, "{random}");
        let rest: Vec<&String> = t[1..].iter().collect();
        let mut sorted = rest.clone();
        sorted.sort();
        assert_eq!(rest, sorted, "fallbacks by price after {random}");
    }
    // Free endpoints are the cheapest: uniform among them, never a paid one first.
    let catalog = build(
        &[
            provider("f1", false, false, true),
            provider("f2", false, false, true),
            provider("paid", false, false, true),
        ],
        &[model(
            "x/m",
            vec![
                endpoint("paid", "0.0000001", "0"),
                endpoint("f1", "0", "0"),
                endpoint("f2", "0", "0"),
            ],
        )],
    );
    for (random, first) in [(0.1, "f1"), (0.49, "f1"), (0.51, "f2"), (0.99, "f2")] {
        let plan = plan(
            &request(json!({"model": "x/m"})),
            &catalog,
            &HealthSnapshot::default(),
            &Policy::default(),
            &RouteContext {
                random,
                sticky_provider: None,
            },
        )
        .expect("routes");
        assert_eq!(tags(&plan)[0], first, "{random}");
        assert_eq!(tags(&plan)[2], "paid");
    }
}

#[test]
fn tier_endpoints_need_an_opt_in() {
    let mut priority = endpoint("openai", "0.000005", "0");
    priority.tag = Some("openai/priority".into());
    priority.tier = Some("priority".into());
    let mut flex = endpoint("openai", "0.000001", "0");
    flex.tag = Some("openai/flex".into());
    flex.tier = Some("flex".into());
    let catalog = build(
        &[provider("openai", false, true, false)],
        &[model(
            "x/m",
            vec![endpoint("openai", "0.000002", "0"), priority, flex],
        )],
    );
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"model": "x/m", "provider": {"sort": "price"}}),
            vec!["openai"],
        ),
        (
            json!({"model": "x/m:nitro"}),
            vec!["openai", "openai/priority"],
        ),
        (json!({"model": "x/m:floor"}), vec!["openai/flex", "openai"]),
        (
            json!({"model": "x/m", "service_tier": "flex", "provider": {"sort": "price"}}),
            vec!["openai/flex", "openai"],
        ),
        (
            json!({"model": "x/m", "provider": {"order": ["openai/priority"]}}),
            vec!["openai/priority", "openai"],
        ),
    ];
    for (body, expected) in cases {
        let plan = route(&catalog, body.clone()).unwrap_or_else(|e| panic!("{body}: {e}"));
        assert_eq!(tags(&plan), expected, "{body}");
    }
    let plan = route(&catalog, json!({"model": "x/m"})).expect("routes");
    assert_eq!(
        reason_of(&plan, "openai/flex").as_deref(),
        Some("service_tier")
    );
}

#[test]
fn empty_results_carry_the_right_code() {
    let catalog = build(
        &[provider("trains", true, true, false)],
        &[model("x/m", vec![endpoint("trains", "0.000001", "0")])],
    );
    let cases: Vec<(Value, Policy, &str, &str)> = vec![
        (
            json!({"data_collection": "deny"}),
            Policy::default(),
            "privacy_restricted",
            "data_policy:training",
        ),
        (
            json!({"zdr": true}),
            Policy::default(),
            "privacy_restricted",
            "data_policy:zdr",
        ),
        (
            json!({"max_price": {"prompt": 0}}),
            Policy::default(),
            "constraint_filtered",
            "max_price",
        ),
        (
            json!({"only": []}),
            Policy::default(),
            "constraint_filtered",
            "only",
        ),
        (
            json!({"enforce_distillable_text": true}),
            Policy::default(),
            "constraint_filtered",
            "distillable_text",
        ),
        (
            json!({}),
            Policy {
                ignored_providers: vec!["trains".into()],
                ..Policy::default()
            },
            "no_endpoints",
            "account_policy",
        ),
        (
            json!({}),
            Policy {
                deny_training: true,
                ..Policy::default()
            },
            "privacy_restricted",
            "data_policy:training",
        ),
    ];
    for (prefs, policy, code, reason) in cases {
        let err = plan(
            &request(json!({"model": "x/m", "provider": prefs.clone()})),
            &catalog,
            &HealthSnapshot::default(),
            &policy,
            &RouteContext::default(),
        )
        .expect_err("empty");
        match err {
            RouteError::NoEndpoints {
                code: c,
                plan,
                message,
            } => {
                assert_eq!(c, code, "{prefs}");
                assert_eq!(plan.excluded.len(), 1, "{prefs}");
                assert_eq!(plan.excluded[0].reason, reason, "{prefs}");
                assert!(message.contains("x/m"), "{message}");
            }
            other => panic!("{prefs}: {other:?}"),
        }
    }
}

// === aliases, the default model, model kinds ===

/// Two chat models (one with aliases, its `p` endpoint serving the legacy completions API) and
/// two embedding models; `top` is written before the tables.
fn kinds(top: &str) -> Catalog {
    let text = format!(
        r#"{top}
[[providers]]
slug = "p"
name = "P"
kind = "openai"
base_url = "http://p/v1"
data_policy = {{ training = false, retains_prompts = false, zdr = true }}

[[providers]]
slug = "q"
name = "Q"
kind = "openai"
base_url = "http://q/v1"
data_policy = {{ training = false, retains_prompts = false, zdr = true }}

[[models]]
id = "x/chat"
name = "Chat"
aliases = ["chat", "chat-2025-01-01"]
context_length = 1000

[[models.endpoints]]
provider = "p"
upstream_model = "chat"
pricing = {{ prompt = "0.000001", completion = "0.000001" }}
legacy_completions = true

[[models.endpoints]]
provider = "q"
upstream_model = "chat"
pricing = {{ prompt = "0.000002", completion = "0.000002" }}

[[models]]
id = "x/other"
name = "Other"
context_length = 1000

[[models.endpoints]]
provider = "q"
upstream_model = "other"
pricing = {{ prompt = "0.000001", completion = "0.000001" }}

[[models]]
id = "x/embed"
name = "Embed"
kind = "embedding"
dimensions = 1536
supports_dimensions = true
aliases = ["embed"]
context_length = 8192

[[models.endpoints]]
provider = "p"
upstream_model = "embed"
pricing = {{ prompt = "0.00000001" }}

[[models.endpoints]]
provider = "q"
upstream_model = "embed"
pricing = {{ prompt = "0.00000002" }}

[[models]]
id = "x/fixed"
name = "Fixed"
kind = "embedding"
dimensions = 1024
context_length = 8192

[[models.endpoints]]
provider = "p"
upstream_model = "fixed"
pricing = {{ prompt = "0.00000001" }}
"#
    );
    match Catalog::from_toml("kinds.toml", &text) {
        Ok(c) => c,
        Err(e) => panic!("invalid test catalogue: {e}"),
    }
}

/// The routing view of an embeddings request for `model` (empty: none).
fn embedding_route<'a>(
    model: &'a str,
    models: &'a [String],
    dimensions: Option<u32>,
) -> RouteRequest<'a> {
    RouteRequest {
        kind: ModelKind::Embedding,
        model: Some(model).filter(|m| !m.is_empty()),
        models,
        provider: None,
        route: None,
        service_tier: None,
        parameters: Vec::new(),
        prompt_tokens: 10,
        max_output_tokens: None,
        modalities: vec!["text"],
        tools: false,
        dimensions,
        legacy_completions: None,
    }
}

fn plan_for(catalog: &Catalog, request: &RouteRequest<'_>) -> Result<RoutePlan, RouteError> {
    plan_request(
        request,
        catalog,
        &HealthSnapshot::default(),
        &Policy::default(),
        &RouteContext::default(),
    )
}

#[test]
fn aliases_reach_their_model_and_plans_name_it_by_id() {
    let catalog = kinds("");
    let cases: Vec<(Value, Vec<(&str, &str)>)> = vec![
        (
            json!({"model": "chat"}),
            vec![("x/chat", "p"), ("x/chat", "q")],
        ),
        (
            json!({"model": "chat-2025-01-01"}),
            vec![("x/chat", "p"), ("x/chat", "q")],
        ),
        (
            json!({"model": "chat:floor"}),
            vec![("x/chat", "p"), ("x/chat", "q")],
        ),
        (
            json!({"model": "x/other", "models": ["chat"]}),
            vec![("x/other", "q"), ("x/chat", "p"), ("x/chat", "q")],
        ),
        // An alias and the id of one model: its endpoints once.
        (
            json!({"model": "chat", "models": ["x/chat", "x/other"]}),
            vec![("x/chat", "p"), ("x/chat", "q"), ("x/other", "q")],
        ),
    ];
    for (body, expected) in cases {
        let mut body = body;
        body["provider"] = json!({"sort": "price"});
        let plan = route(&catalog, body.clone()).unwrap_or_else(|e| panic!("{body}: {e}"));
        let expected: Vec<(String, String)> = expected.into_iter().map(|(m, t)| p(m, t)).collect();
        assert_eq!(pairs(&plan), expected, "{body}");
        assert_eq!(
            plan.requested_models.first().map(String::as_str),
            body["model"].as_str(),
            "the plan keeps the names as asked"
        );
    }
    match route(&catalog, json!({"model": "Chat"})) {
        Err(RouteError::ModelNotFound { model }) => assert_eq!(model, "Chat"),
        other => panic!("aliases are exact: {other:?}"),
    }
    let models = vec!["embed".to_owned()];
    let plan = plan_for(&catalog, &embedding_route("", &models, None)).expect("routes");
    assert_eq!(pairs(&plan), [p("x/embed", "p"), p("x/embed", "q")]);
}

#[test]
fn a_request_naming_no_model_gets_the_default_model() {
    let cases: Vec<(&str, Result<&str, ()>)> = vec![
        ("", Err(())),
        ("default_model = \"x/other\"", Ok("x/other")),
        ("default_model = \"chat-2025-01-01\"", Ok("x/chat")),
    ];
    for (top, expected) in cases {
        let catalog = kinds(top);
        match (route(&catalog, json!({})), expected) {
            (Ok(plan), Ok(id)) => {
                assert!(!plan.candidates.is_empty(), "{top}");
                assert!(plan.candidates.iter().all(|c| c.model == id), "{top}");
                assert_eq!(plan.requested_models, [id], "{top}");
            }
            (Err(RouteError::NoModel), Err(())) => {}
            (other, _) => panic!("{top}: {other:?}"),
        }
        // A request that names a model ignores the default.
        let plan = route(&catalog, json!({"model": "x/chat"})).expect("routes");
        assert!(plan.candidates.iter().all(|c| c.model == "x/chat"), "{top}");
        // The default is a chat model: an embeddings request must name its model.
        assert!(
            matches!(
                plan_for(&catalog, &embedding_route("", &[], None)),
                Err(RouteError::NoModel)
            ),
            "{top}"
        );
    }
}

#[test]
fn chat_and_embedding_models_never_mix() {
    let catalog = kinds("");
    // (model, fallback models, kind of the request, the model named by the error, its kind)
    let cases: Vec<(&str, Vec<&str>, ModelKind, &str, ModelKind)> = vec![
        (
            "x/embed",
            vec![],
            ModelKind::Chat,
            "x/embed",
            ModelKind::Embedding,
        ),
        (
            "embed",
            vec![],
            ModelKind::Chat,
            "x/embed",
            ModelKind::Embedding,
        ),
        (
            "x/chat",
            vec!["x/fixed"],
            ModelKind::Chat,
            "x/fixed",
            ModelKind::Embedding,
        ),
        (
            "x/chat",
            vec![],
            ModelKind::Embedding,
            "x/chat",
            ModelKind::Chat,
        ),
        (
            "x/embed",
            vec!["chat"],
            ModelKind::Embedding,
            "x/chat",
            ModelKind::Chat,
        ),
    ];
    for (model, fallbacks, kind, named, named_kind) in cases {
        let fallbacks: Vec<String> = fallbacks.into_iter().map(str::to_owned).collect();
        let result = match kind {
            ModelKind::Chat => route(&catalog, json!({"model": model, "models": fallbacks})),
            ModelKind::Embedding => plan_for(&catalog, &embedding_route(model, &fallbacks, None)),
        };
        let text = result.as_ref().err().map(ToString::to_string);
        match result {
            Err(RouteError::WrongModelKind { model, kind }) => {
                let text = text.unwrap_or_default();
                assert_eq!((model.as_str(), kind), (named, named_kind));
                let words = match named_kind {
                    ModelKind::Embedding => "is an embedding model",
                    ModelKind::Chat => "is a chat model, not an embedding model",
                };
                assert!(text.starts_with(named) && text.contains(words), "{text}");
            }
            other => panic!("{model} {fallbacks:?} as {kind:?}: {other:?}"),
        }
    }
}

#[test]
fn embedding_dimensions_and_the_legacy_api_filter_endpoints() {
    let catalog = kinds("");
    // (model, dimensions asked for, expected candidates, expected exclusions)
    let cases: Vec<(&str, Option<u32>, Vec<&str>, Reasons)> = vec![
        ("x/embed", None, vec!["p", "q"], vec![]),
        ("x/embed", Some(256), vec!["p", "q"], vec![]),
        ("x/embed", Some(1536), vec!["p", "q"], vec![]),
        (
            "x/embed",
            Some(1537),
            vec![],
            vec![("p", "dimensions"), ("q", "dimensions")],
        ),
        ("x/fixed", None, vec!["p"], vec![]),
        // A model that does not take `dimensions` refuses it, even at its native length.
        ("x/fixed", Some(1024), vec![], vec![("p", "dimensions")]),
    ];
    for (model, dimensions, expected, reasons) in cases {
        let mut request = embedding_route(model, &[], dimensions);
        let prefs = switchyard_core::routing::ProviderPreferences {
            sort: serde_json::from_value(json!("price")).ok(),
            ..Default::default()
        };
        request.provider = Some(&prefs);
        let plan = match plan_for(&catalog, &request) {
            Ok(plan) => plan,
            Err(RouteError::NoEndpoints { code, plan, .. }) => {
                assert_eq!(code, "constraint_filtered", "{model} {dimensions:?}");
                *plan
            }
            Err(e) => panic!("{model} {dimensions:?}: {e}"),
        };
        assert_eq!(tags(&plan), expected, "{model} {dimensions:?}");
        for (tag, reason) in reasons {
            assert_eq!(
                reason_of(&plan, tag).as_deref(),
                Some(reason),
                "{model} {tag}"
            );
        }
    }

    // A legacy completions request that needs the legacy API: only endpoints serving it.
    let chat = request(json!({"model": "x/chat", "models": ["x/other"]}));
    let mut legacy = RouteRequest::chat(&chat);
    legacy.legacy_completions = Some("suffix");
    let plan = plan_for(&catalog, &legacy).expect("routes");
    assert_eq!(pairs(&plan), [p("x/chat", "p")]);
    assert_eq!(reason_of(&plan, "q").as_deref(), Some("legacy_completions"));
    assert_eq!(plan.excluded.len(), 2, "x/chat and x/other on q");
    let only_other = request(json!({"model": "x/other"}));
    let mut legacy = RouteRequest::chat(&only_other);
    legacy.legacy_completions = Some("echo");
    match plan_for(&catalog, &legacy) {
        Err(RouteError::NoEndpoints { code, message, .. }) => {
            assert_eq!(code, "constraint_filtered");
            assert!(
                message.contains("excluded by: legacy_completions")
                    && message
                        .contains("`echo` needs an endpoint serving the legacy completions API"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Without that need, every endpoint serves.
    let plan = route(&catalog, json!({"model": "x/chat"})).expect("routes");
    assert_eq!(plan.candidates.len(), 2);
}

// === property tests ===

const SLUGS: &[&str] = &["p0", "p1", "p2", "p3", "p4", "p5"];
const QUANTS: &[&str] = &["fp8", "bf16", "int4", "unknown"];
const PARAMS: &[&str] = &[
    "tools",
    "temperature",
    "top_k",
    "response_format",
    "max_tokens",
];

fn provider_strategy(slug: &'static str) -> impl Strategy<Value = ProviderSpec> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.1),
    )
        .prop_map(move |(training, retains, zdr, unknown)| {
            let zdr = zdr && !training && !retains;
            ProviderSpec {
                unknown,
                ..provider(slug, training, retains, zdr)
            }
        })
}

fn endpoint_strategy() -> impl Strategy<Value = EndpointSpec> {
    (
        0..SLUGS.len(),
        0u32..40,
        0u32..40,
        0..QUANTS.len(),
        prop::sample::select(vec![2_000u64, 8_000, 32_000, 128_000]),
        prop::collection::vec(any::<bool>(), PARAMS.len()),
        any::<bool>(),
    )
        .prop_map(|(p, prompt, completion, q, context, params, all_params)| {
            let mut e = endpoint(
                SLUGS[p],
                &format!("0.000000{prompt}"),
                &format!("0.000000{completion}"),
            );
            e.quantization = QUANTS[q].to_owned();
            e.context = context;
            e.params = if all_params {
                Vec::new()
            } else {
                PARAMS
                    .iter()
                    .zip(params)
                    .filter(|(_, on)| *on)
                    .map(|(n, _)| (*n).to_owned())
                    .collect()
            };
            e
        })
}

fn catalog_strategy() -> impl Strategy<Value = (Vec<ProviderSpec>, Vec<ModelSpec>)> {
    let providers: Vec<_> = SLUGS.iter().map(|s| provider_strategy(s)).collect();
    let models = prop::collection::vec(
        (
            prop::collection::vec(endpoint_strategy(), 1..6),
            any::<bool>(),
        ),
        1..4,
    );
    (providers, models).prop_map(|(providers, models)| {
        let models = models
            .into_iter()
            .enumerate()
            .map(|(i, (endpoints, image))| {
                // Tags must be unique within a model: keep the first endpoint per provider.
                let mut seen = HashSet::new();
                let endpoints: Vec<EndpointSpec> = endpoints
                    .into_iter()
                    .filter(|e| seen.insert(e.provider.clone()))
                    .collect();
                let mut m = model(&format!("x/m{i}"), endpoints);
                if image {
                    m.modalities.push("image".to_owned());
                }
                m
            })
            .collect();
        (providers, models)
    })
}

fn slugs_strategy() -> impl Strategy<Value = Option<Vec<String>>> {
    prop::option::weighted(
        0.2,
        prop::collection::vec(prop::sample::select(SLUGS.to_vec()), 1..5)
            .prop_map(|v| v.into_iter().map(str::to_owned).collect()),
    )
}

#[derive(Debug, Clone)]
struct Scenario {
    prefs: Value,
    body: Value,
    policy: Policy,
    health: Vec<(usize, usize, EndpointHealth)>,
    random: f64,
}

fn scenario_strategy() -> impl Strategy<Value = Scenario> {
    let prefs = (
        slugs_strategy(),
        slugs_strategy(),
        slugs_strategy(),
        prop::option::of(any::<bool>()),
        prop::option::weighted(0.3, any::<bool>()),
        prop::option::weighted(0.3, prop::sample::select(vec!["allow", "deny"])),
        prop::option::weighted(0.2, any::<bool>()),
        prop::option::weighted(
            0.2,
            prop::collection::vec(prop::sample::select(QUANTS.to_vec()), 1..3),
        ),
        prop::option::of(prop::sample::select(vec!["price", "throughput", "latency"])),
        prop::option::weighted(0.2, (0u32..40, 0u32..40)),
    )
        .prop_map(
            |(order, only, ignore, fallbacks, require, collection, zdr, quants, sort, price)| {
                let mut p = json!({});
                if let Some(v) = order {
                    p["order"] = json!(v);
                }
                if let Some(v) = only {
                    p["only"] = json!(v);
                }
                if let Some(v) = ignore {
                    p["ignore"] = json!(v);
                }
                if let Some(v) = fallbacks {
                    p["allow_fallbacks"] = json!(v);
                }
                if let Some(v) = require {
                    p["require_parameters"] = json!(v);
                }
                if let Some(v) = collection {
                    p["data_collection"] = json!(v);
                }
                if let Some(v) = zdr {
                    p["zdr"] = json!(v);
                }
                if let Some(v) = quants {
                    p["quantizations"] = json!(v);
                }
                if let Some(v) = sort {
                    p["sort"] = json!(v);
                }
                if let Some((prompt, completion)) = price {
                    // Per million: the catalogue's per-token price times a million.
                    p["max_price"] = json!({"prompt": format!("0.{prompt:02}"), "completion": f64::from(completion) / 100.0});
                }
                p
            },
        );
    let body = (
        0usize..3,
        prop::option::of(prop::sample::select(vec![500u64, 1_000, 5_000, 50_000])),
        prop::bool::weighted(0.2),
        any::<bool>(),
        prop::bool::weighted(0.15),
        prop::option::of(prop::sample::select(vec!["", ":free", ":floor", ":nitro"])),
    )
        .prop_map(|(models, max_tokens, tools, temperature, image, variant)| {
            let mut b = json!({"model": format!("x/m0{}", variant.unwrap_or(""))});
            if models > 0 {
                b["models"] = json!((1..=models).map(|i| format!("x/m{i}")).collect::<Vec<_>>());
            }
            if let Some(n) = max_tokens {
                b["max_tokens"] = json!(n);
            }
            if tools {
                b["tools"] = json!([{"type": "function", "function": {"name": "f"}}]);
            }
            if temperature {
                b["temperature"] = json!(0.3);
            }
            if image {
                b["messages"] = json!([{"role": "user", "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}}
                ]}]);
            }
            b
        });
    let policy = (
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.1),
        prop::option::weighted(
            0.2,
            prop::collection::vec(prop::sample::select(SLUGS.to_vec()), 1..5),
        ),
        slugs_strategy(),
    )
        .prop_map(|(deny_training, zdr_only, allowed, ignored)| Policy {
            deny_training,
            zdr_only,
            allowed_providers: allowed.map(|v| v.into_iter().map(str::to_owned).collect()),
            ignored_providers: ignored.unwrap_or_default(),
        });
    let health = prop::collection::vec(
        (
            0usize..4,
            0usize..6,
            any::<bool>(),
            prop::bool::weighted(0.2),
            prop::option::of(1.0f64..200.0),
        ),
        0..8,
    )
    .prop_map(|v| {
        v.into_iter()
            .map(|(m, e, degraded, circuit_open, tps)| {
                (
                    m,
                    e,
                    EndpointHealth {
                        degraded,
                        circuit_open,
                        throughput: tps.map(Quantiles::constant),
                        latency_ms: tps.map(|t| Quantiles::constant(10_000.0 / t)),
                    },
                )
            })
            .collect()
    });
    (prefs, body, policy, health, 0.0f64..1.0).prop_map(|(prefs, body, policy, health, random)| {
        Scenario {
            prefs,
            body,
            policy,
            health,
            random,
        }
    })
}

fn slug_listed(list: &[String], provider: &str) -> bool {
    list.iter().any(|s| s.eq_ignore_ascii_case(provider))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn no_candidate_violates_a_hard_filter(
        (providers, models) in catalog_strategy(),
        scenario in scenario_strategy(),
    ) {
        let catalog = build(&providers, &models);
        let mut body = scenario.body.clone();
        let requested: Vec<String> = std::iter::once(body["model"].as_str().unwrap_or("").to_owned())
            .chain(body.get("models").and_then(Value::as_array).into_iter().flatten()
                .filter_map(Value::as_str).map(str::to_owned))
            .collect();
        // Drop fallback models the catalogue lacks.
        let present: Vec<String> = requested.iter()
            .filter(|m| catalog.model(m.split(':').next().unwrap_or("")).is_some())
            .cloned().collect();
        prop_assume!(present.first() == requested.first());
        body["models"] = json!(present[1..].to_vec());
        body["provider"] = scenario.prefs.clone();
        let req = request(body.clone());
        let mut snapshot = HealthSnapshot::default();
        for (m, e, h) in &scenario.health {
            if let Some(model) = models.get(*m) {
                if let Some(ep) = model.endpoints.get(*e) {
                    snapshot.endpoints.insert((model.id.clone(), ep.provider.clone()), *h);
                }
            }
        }
        let ctx = RouteContext { random: scenario.random, sticky_provider: None };
        let result = plan(&req, &catalog, &snapshot, &scenario.policy, &ctx);
        let route = match result {
            Ok(route) => route,
            Err(RouteError::NoEndpoints { plan, code, .. }) => {
                prop_assert!(plan.candidates.is_empty());
                let privacy = plan.excluded.iter().any(|e| e.reason.starts_with("data_policy:"));
                prop_assert_eq!(privacy, code == "privacy_restricted");
                *plan
            }
            Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
        };
        let prefs = &scenario.prefs;
        let strs = |v: &Value| -> Option<Vec<String>> {
            v.as_array().map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        };
        let order = strs(&prefs["order"]).filter(|o| !o.is_empty());
        let only = strs(&prefs["only"]);
        let ignore = strs(&prefs["ignore"]).unwrap_or_default();
        let quants = strs(&prefs["quantizations"]);
        let deny = prefs["data_collection"] == json!("deny");
        let zdr = prefs["zdr"] == json!(true) || scenario.policy.zdr_only;
        let require = prefs["require_parameters"] == json!(true);
        let no_fallbacks = prefs["allow_fallbacks"] == json!(false);
        let used = req.parameters_used();
        let estimate = req.estimated_prompt_tokens() + req.max_output_tokens().unwrap_or(0);
        let free = body["model"].as_str().is_some_and(|m| m.ends_with(":free"));
        let mut seen = HashSet::new();
        for c in &route.candidates {
            prop_assert!(seen.insert((c.model.clone(), c.endpoint)), "duplicate candidate");
            let model = catalog.model(&c.model).expect("candidate model exists");
            let e = &model.endpoints[c.endpoint];
            let dp = catalog.provider(&e.provider).expect("provider").data_policy;
            prop_assert!(only.as_ref().is_none_or(|o| slug_listed(o, &e.provider)));
            prop_assert!(!slug_listed(&ignore, &e.provider));
            prop_assert!(scenario.policy.allowed_providers.as_ref().is_none_or(|o| slug_listed(o, &e.provider)));
            prop_assert!(!slug_listed(&scenario.policy.ignored_providers, &e.provider));
            prop_assert!(!zdr || dp.zdr, "zdr violated");
            prop_assert!(!deny || (!dp.training && !dp.retains_prompts), "data_collection violated");
            prop_assert!(!scenario.policy.deny_training || !dp.training);
            prop_assert!(quants.as_ref().is_none_or(|q| q.contains(&e.quantization)));
            prop_assert!(estimate <= e.context_length);
            let supports = |p: &str| e.supported_parameters.is_empty() || e.supports(p);
            prop_assert!(req.tools.is_none() || supports("tools"));
            prop_assert!(!require || used.iter().all(|p| supports(p)));
            prop_assert!(req.input_modalities().iter().all(|m| model.input_modalities.iter().any(|x| x == m)));
            if let Some(limit) = prefs.pointer("/max_price/prompt").and_then(Value::as_str) {
                let limit = Money::parse_usd(limit).expect("limit");
                prop_assert!(e.pricing.prompt.amount.checked_mul(1_000_000).expect("fits") <= limit);
            }
            if free && c.model == "x/m0" {
                prop_assert!(e.pricing.prompt.amount.is_zero() && e.pricing.completion.amount.is_zero());
            }
            if no_fallbacks {
                if let Some(order) = &order {
                    prop_assert!(slug_listed(order, &e.provider), "outside order");
                }
            }
        }
        if no_fallbacks && order.is_none() {
            let mut per_model: HashMap<&str, usize> = HashMap::new();
            for c in &route.candidates {
                *per_model.entry(c.model.as_str()).or_default() += 1;
            }
            prop_assert!(per_model.values().all(|n| *n == 1));
        }
        // Circuit-open endpoints appear only when every candidate is one.
        let open = |c: &switchyard_core::routing::Candidate| snapshot.get(&c.model, &c.tag).circuit_open;
        let n_open = route.candidates.iter().filter(|c| open(c)).count();
        prop_assert!(n_open == 0 || n_open == route.candidates.len());
        // Every endpoint of every requested model is either a candidate or excluded.
        let mut accounted: HashSet<(String, String)> = route.candidates.iter()
            .map(|c| (c.model.clone(), c.tag.clone())).collect();
        accounted.extend(route.excluded.iter().map(|e| (e.model.clone(), e.tag.clone())));
        for id in &present {
            let model = catalog.model(id.split(':').next().unwrap_or("")).expect("model");
            for e in &model.endpoints {
                prop_assert!(accounted.contains(&(model.id.clone(), e.tag.clone())), "{} {} unaccounted", model.id, e.tag);
            }
        }
    }

    #[test]
    fn weighted_choice_follows_inverse_square_prices(
        prices in prop::collection::vec(1i64..2_000, 1..6),
    ) {
        let prices: Vec<Money> = prices.into_iter().map(|p| Money::from_picos(p * 1_000)).collect();
        let n = 20_000;
        let mut counts = vec![0usize; prices.len()];
        for i in 0..n {
            // A stratified grid of draws: deterministic, and exact up to 1/n per bucket.
            let r = (i as f64 + 0.5) / n as f64;
            let chosen = weighted_choice(&prices, r).expect("non-empty");
            counts[chosen] += 1;
        }
        let weights: Vec<f64> = prices.iter().map(|p| 1.0 / (p.picos() as f64).powi(2)).collect();
        let total: f64 = weights.iter().sum();
        for (i, w) in weights.iter().enumerate() {
            let expected = w / total;
            let got = counts[i] as f64 / n as f64;
            prop_assert!((got - expected).abs() < 0.002, "{i}: {got} vs {expected} ({prices:?})");
        }
    }

    #[test]
    fn default_choice_frequencies_through_plan(
        cents in prop::collection::vec(1u32..50, 2..5),
    ) {
        let providers: Vec<ProviderSpec> = SLUGS.iter().map(|s| provider(s, false, false, true)).collect();
        let endpoints: Vec<EndpointSpec> = cents.iter().enumerate()
            .map(|(i, c)| endpoint(SLUGS[i], &format!("0.0000{c:02}"), "0"))
            .collect();
        let catalog = build(&providers, &[model("x/m", endpoints)]);
        let req = request(json!({"model": "x/m"}));
        let n = 4_000;
        let mut counts: HashMap<String, usize> = HashMap::new();
        for i in 0..n {
            let ctx = RouteContext { random: (i as f64 + 0.5) / n as f64, sticky_provider: None };
            let route = plan(&req, &catalog, &HealthSnapshot::default(), &Policy::default(), &ctx).expect("routes");
            *counts.entry(route.candidates[0].tag.clone()).or_default() += 1;
        }
        let weights: Vec<f64> = cents.iter().map(|c| 1.0 / f64::from(c * c)).collect();
        let total: f64 = weights.iter().sum();
        for (i, w) in weights.iter().enumerate() {
            let got = counts.get(SLUGS[i]).copied().unwrap_or(0) as f64 / n as f64;
            prop_assert!((got - w / total).abs() < 0.005, "{}: {got} vs {}", SLUGS[i], w / total);
        }
    }
}
