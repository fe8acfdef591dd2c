//! The catalogue's read operations: models (list, count, one, the caller's), endpoints,
//! providers, embedding models.

use serde_json::Value;

use super::{Checker, Op, World};

const MODELS: Op = Op("GET", "/models");
const COUNT: Op = Op("GET", "/models/count");
const MODEL: Op = Op("GET", "/model/{author}/{slug}");
const ENDPOINTS: Op = Op("GET", "/models/{author}/{slug}/endpoints");
const USER: Op = Op("GET", "/models/user");
const ZDR: Op = Op("GET", "/endpoints/zdr");
const PROVIDERS: Op = Op("GET", "/providers");
const EMBEDDING_MODELS: Op = Op("GET", "/embeddings/models");

pub async fn check(c: &mut Checker, w: &World) {
    let gw = &w.gw;
    let get = |path: &str| gw.http.get(gw.url(&format!("/api/v1{path}")));

    // The list, and every filter and sort the gateway serves.
    let all = c.call(MODELS, get("/models"), 200, "all").await;
    let ids: Vec<&str> = all.body["data"]
        .as_array()
        .map(|d| d.iter().filter_map(|m| m["id"].as_str()).collect())
        .unwrap_or_default();
    c.expect(
        ids.contains(&"test/model") && !ids.contains(&"test/embed"),
        format!("the default list is the text models: {ids:?}"),
    );
    let model = all.body["data"]
        .as_array()
        .and_then(|d| d.iter().find(|m| m["id"] == "test/model"))
        .cloned()
        .unwrap_or(Value::Null);
    c.expect(
        model["architecture"]["tokenizer"] == "Other"
            && model["knowledge_cutoff"] == "2024-10"
            && model["reasoning"]["supported_efforts"][0] == "high"
            && model["per_request_limits"]["prompt_tokens"] == 6000
            && model["default_parameters"]["temperature"] == 0.7,
        format!("the model card comes from the catalogue: {model}"),
    );
    // An endpoint that lists no parameters takes what its kind's codec forwards.
    let stream = all.body["data"]
        .as_array()
        .and_then(|d| d.iter().find(|m| m["id"] == "test/stream"))
        .cloned()
        .unwrap_or(Value::Null);
    c.expect(
        stream["supported_parameters"]
            .as_array()
            .is_some_and(|p| p.len() > 5 && p.contains(&"temperature".into())),
        format!("supported_parameters derived from the provider kind: {stream}"),
    );
    // (query, models it selects, the first one when the order is decided)
    let cases: &[(&str, u64, Option<&str>)] = &[
        ("?output_modalities=all", 9, None),
        ("?output_modalities=embeddings", 1, Some("test/embed")),
        ("?category=programming", 1, Some("test/model")),
        ("?supported_parameters=tools,temperature", 8, None),
        ("?supported_parameters=top_a", 7, None),
        ("?input_modalities=image", 7, None),
        ("?q=stream", 1, Some("test/stream")),
        ("?context=8000", 8, None),
        ("?context=8001", 0, None),
        (
            "?min_price=0.5&max_price=2&min_output_price=1&max_output_price=3",
            7,
            None,
        ),
        ("?max_price=0.5", 1, Some("test/fallback")),
        ("?arch=other", 8, None),
        ("?arch=gpt", 0, None),
        ("?model_authors=test", 8, None),
        ("?model_authors=nobody", 0, None),
        ("?providers=OpenAI,groq", 3, None),
        ("?zdr=true", 8, None),
        ("?min_age_days=1&max_age_days=100000", 8, None),
        ("?max_age_days=1", 0, None),
        ("?sort=newest", 8, Some("test/model")),
        ("?sort=pricing-low-to-high", 8, Some("test/fallback")),
        ("?sort=pricing-high-to-low", 8, None),
        ("?sort=context-high-to-low", 8, None),
        ("?sort=throughput-high-to-low", 8, None),
        ("?sort=latency-low-to-high", 8, None),
        ("?offset=1&limit=2", 8, None),
    ];
    for (query, total, first) in cases {
        let a = c
            .call(MODELS, get(&format!("/models{query}")), 200, query)
            .await;
        c.expect(
            a.body["total_count"] == *total,
            format!("{query} selects {total}: {}", a.body["total_count"]),
        );
        if let Some(first) = first {
            c.expect(
                a.body["data"][0]["id"] == *first,
                format!("{query} lists {first} first: {}", a.body["data"][0]["id"]),
            );
        }
    }
    // Following `links.next` ends, and keeps the selection.
    let mut next = Some("/api/v1/models?limit=3&model_authors=test".to_owned());
    let mut pages = 0;
    while let Some(path) = next.take() {
        let page = c
            .call(MODELS, gw.http.get(gw.url(&path)), 200, "pages")
            .await;
        next = page.body["links"]["next"].as_str().map(str::to_owned);
        c.expect(
            next.as_deref()
                .is_none_or(|n| n.starts_with("/api/v1/models?model_authors=test&offset=")),
            format!("links.next keeps the filters: {next:?}"),
        );
        pages += 1;
        if pages > 10 {
            c.expect(false, "links.next does not end");
            break;
        }
    }
    c.expect(pages == 3, format!("8 models in pages of 3: {pages} pages"));
    for (query, needle) in [
        ("?limit=0", "limit"),
        ("?limit=1001", "limit"),
        ("?offset=-1", "offset"),
        ("?sort=most-popular", "most-popular"),
        ("?sort=intelligence-high-to-low", "intelligence-high-to-low"),
        ("?sort=sideways", "sort"),
        ("?category=cooking", "category"),
        ("?use_rss=true", "use_rss"),
        ("?distillable=true", "distillable"),
        ("?region=eu", "region"),
        ("?min_coding_index=50", "min_coding_index"),
        ("?output_modalities=smell", "output_modalities"),
        ("?max_price=cheap", "max_price"),
        ("?zdr=maybe", "zdr"),
    ] {
        let a = c
            .call(MODELS, get(&format!("/models{query}")), 400, query)
            .await;
        let message = a.body["error"]["message"].as_str().unwrap_or("");
        c.expect(
            message.contains(needle),
            format!("{query}: the 400 names {needle}: {message}"),
        );
    }

    let n = c.call(COUNT, get("/models/count"), 200, "count").await;
    c.expect(
        n.body["data"]["count"] == all.body["total_count"],
        format!("count {} = total_count {}", n.body, all.body["total_count"]),
    );
    c.call(
        COUNT,
        get("/models/count?output_modalities=all"),
        200,
        "all",
    )
    .await;
    c.call(COUNT, get("/models/count?sort=top-weekly"), 400, "sort")
        .await;

    let one = c.call(MODEL, get("/model/test/model"), 200, "one").await;
    c.expect(
        one.body["data"]["id"] == "test/model",
        "the model by author/slug",
    );
    c.call(MODEL, get("/model/test/model:free"), 200, "a variant")
        .await;
    c.call(MODEL, get("/model/test/nothing"), 404, "unknown")
        .await;
    // The openai SDK's `models.retrieve`: the id with its slash encoded, or not.
    for path in ["/models/test%2Fmodel", "/models/test/model"] {
        let r = get(path).bearer_auth(&gw.key).send().await.expect("send");
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        c.expect(
            status == 200 && body["id"] == "test/model" && body["object"] == "model",
            format!("GET {path}: {status} {body}"),
        );
        c.component("Model", &body, path);
    }

    let e = c
        .call(
            ENDPOINTS,
            get("/models/test/model/endpoints"),
            200,
            "endpoints",
        )
        .await;
    c.expect(
        e.body["data"]["endpoints"][0]["supports_tool_choice"]["function"] == true,
        format!("supports_tool_choice: {}", e.body),
    );
    c.call(
        ENDPOINTS,
        get("/models/test/broken/endpoints"),
        200,
        "a name off the enum",
    )
    .await;
    c.call(
        ENDPOINTS,
        get("/models/test/nothing/endpoints"),
        404,
        "unknown",
    )
    .await;

    let mine = c
        .call(USER, get("/models/user").bearer_auth(&gw.key), 200, "user")
        .await;
    c.expect(
        mine.body["total_count"] == all.body["total_count"],
        "an unrestricted key may use every model",
    );
    c.call(
        USER,
        get("/models/user?limit=1").bearer_auth(&gw.key),
        200,
        "a page",
    )
    .await;
    c.call(USER, get("/models/user"), 401, "no key").await;
    c.call(
        USER,
        get("/models/user").bearer_auth(&w.admin),
        403,
        "management",
    )
    .await;

    let zdr = c.call(ZDR, get("/endpoints/zdr"), 200, "zdr").await;
    c.expect(
        zdr.body["data"].as_array().is_some_and(|d| d.len() == 10),
        format!("every endpoint of the test catalogue is ZDR: {}", zdr.body),
    );
    c.call(PROVIDERS, get("/providers"), 200, "providers").await;
    c.call(EMBEDDING_MODELS, get("/embeddings/models"), 200, "list")
        .await;
    c.call(
        EMBEDDING_MODELS,
        get("/embeddings/models?limit=0"),
        400,
        "limit 0",
    )
    .await;
}
