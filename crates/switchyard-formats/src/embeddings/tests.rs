use serde_json::{json, Value};
use switchyard_core::catalog::Catalog;
use switchyard_core::money::Money;
use switchyard_core::pricing::{Cost, Usage};

use super::*;

fn texts(items: &[&str]) -> EmbeddingInput {
    EmbeddingInput::Texts(items.iter().map(|s| (*s).to_owned()).collect())
}

#[test]
fn reads_every_input_form() {
    let cases = [
        (
            json!("The quick brown fox"),
            texts(&["The quick brown fox"]),
        ),
        (json!(["a", "b"]), texts(&["a", "b"])),
        (
            json!([1, 2, 3]),
            EmbeddingInput::Tokens(vec![vec![1, 2, 3]]),
        ),
        (
            json!([[1, 2], [4294967295u64]]),
            EmbeddingInput::Tokens(vec![vec![1, 2], vec![4_294_967_295]]),
        ),
        (
            json!([{"content": [{"type": "text", "text": "a photo of a cat"}]}, "plain"]),
            texts(&["a photo of a cat", "plain"]),
        ),
    ];
    for (input, expected) in cases {
        let request =
            parse_value(&json!({"model": "openai/text-embedding-3-small", "input": input}))
                .unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(request.input, expected, "{input}");
        assert_eq!(request.encoding_format, EncodingFormat::Float);
    }
}

#[test]
fn reads_every_field() {
    let request = parse(
        br#"{"model": "embed", "models": ["openai/text-embedding-3-large"], "input": "x",
            "encoding_format": "base64", "dimensions": 256, "input_type": "search_query",
            "user": "u-1", "provider": {"order": ["openai"], "allow_fallbacks": false}}"#,
    )
    .expect("valid");
    assert_eq!(request.model, "embed");
    assert_eq!(request.models, ["openai/text-embedding-3-large"]);
    assert_eq!(request.encoding_format, EncodingFormat::Base64);
    assert_eq!(request.dimensions, Some(256));
    assert_eq!(request.input_type.as_deref(), Some("search_query"));
    assert_eq!(request.user.as_deref(), Some("u-1"));
    let provider = request.provider.expect("provider");
    assert_eq!(provider.order, Some(vec!["openai".to_owned()]));
    assert_eq!(provider.allow_fallbacks, Some(false));
    // Null is absent.
    let request =
        parse(br#"{"model": "m", "input": "x", "dimensions": null, "encoding_format": null}"#)
            .expect("valid");
    assert_eq!(
        (request.dimensions, request.encoding_format),
        (None, EncodingFormat::Float)
    );
}

#[test]
fn refuses_what_it_cannot_serve_by_name() {
    let ok = |extra: Value| {
        let mut body = json!({"model": "m", "input": "x"});
        for (k, v) in extra.as_object().into_iter().flatten() {
            body[k] = v.clone();
        }
        body
    };
    let cases = [
        (json!([]), "must be a JSON object"),
        (json!({"input": "x"}), "model: field required"),
        (
            json!({"model": "", "input": "x"}),
            "model must not be empty",
        ),
        (json!({"model": 5, "input": "x"}), "model must be a string"),
        (json!({"model": "m"}), "input: field required"),
        (
            ok(json!({"input": ""})),
            "input must not be an empty string",
        ),
        (ok(json!({"input": []})), "input must not be an empty array"),
        (
            ok(json!({"input": ["a", ""]})),
            "input[1] must not be an empty string",
        ),
        (
            ok(json!({"input": ["a", 1]})),
            "input[1] must be a string or a multimodal item",
        ),
        (ok(json!({"input": [1, -2]})), "input[1] must be a token id"),
        (
            ok(json!({"input": [1, 2.5]})),
            "input[1] must be a token id",
        ),
        (
            ok(json!({"input": [[1], []]})),
            "input[1] must not be an empty token array",
        ),
        (
            ok(json!({"input": [[1], "a"]})),
            "input[1] must be a token array",
        ),
        (ok(json!({"input": 5})), "input must be a string, an array"),
        (
            ok(json!({"input": [true]})),
            "input[0] must be a string, a token id",
        ),
        (
            ok(
                json!({"input": [{"content": [{"type": "image_url", "image_url": {"url": "https://x/cat.png"}}]}]}),
            ),
            "input[0].content[0]: image_url parts cannot be embedded",
        ),
        (
            ok(
                json!({"input": [{"content": [{"type": "input_audio", "input_audio": {"data": "AAAA"}}]}]}),
            ),
            "input_audio parts cannot be embedded",
        ),
        (
            ok(
                json!({"input": [{"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]}),
            ),
            "2 parts make one multimodal embedding",
        ),
        (
            ok(json!({"input": [{"content": []}]})),
            "input[0].content must hold one part",
        ),
        (
            ok(json!({"input": [{"text": "a"}]})),
            "input[0]: unknown field `text`",
        ),
        (
            ok(json!({"input": [{"content": [{"type": "sound"}]}]})),
            "\"sound\" is not a content part type",
        ),
        (
            ok(json!({"encoding_format": "int8"})),
            "encoding_format must be",
        ),
        (
            ok(json!({"dimensions": 0})),
            "dimensions must be a positive integer",
        ),
        (
            ok(json!({"dimensions": "256"})),
            "dimensions must be a positive integer",
        ),
        (ok(json!({"input_type": 1})), "input_type must be a string"),
        (ok(json!({"models": "a/b"})), "models must be an array"),
        (
            ok(json!({"models": [1]})),
            "models[0] must be a model id string",
        ),
        (
            ok(json!({"provider": {"sortt": "price"}})),
            "provider: unknown field `sortt`",
        ),
        (ok(json!({"stream": true})), "unknown field `stream`"),
        (ok(json!({"temperature": 0})), "unknown field `temperature`"),
    ];
    for (body, needle) in cases {
        let err = parse_value(&body).expect_err(&body.to_string());
        assert!(
            err.0.contains(needle),
            "{body}: {:?} lacks {needle:?}",
            err.0
        );
    }
    let too_many = json!({"model": "m", "input": vec!["x"; MAX_INPUTS + 1]});
    let err = parse_value(&too_many).expect_err("too many");
    assert!(err.0.contains("at most 2048 items"), "{}", err.0);
    let err = parse(b"{\"model\": ").expect_err("malformed");
    assert!(err.0.starts_with("Invalid JSON"), "{}", err.0);
}

fn cost(picos: i64) -> Cost {
    Cost {
        prompt: Money::from_picos(picos),
        completion: Money::ZERO,
        other: Money::ZERO,
        total: Money::from_picos(picos),
    }
}

#[test]
fn answers_in_floats_or_base64() {
    let embeddings = Embeddings {
        vectors: vec![vec![0.0023064255, -0.009327292], vec![1.0, -2.0]],
        usage: Usage {
            prompt_tokens: 8,
            ..Usage::default()
        },
        usage_estimated: false,
    };
    let cost = cost(160_000);
    let render = |encoding_format, is_byok| {
        let answer = EmbeddingsAnswer {
            id: "gen-1",
            model: "openai/text-embedding-3-small",
            embeddings: &embeddings,
            encoding_format,
            cost: &cost,
            is_byok,
        };
        serde_json::from_slice::<Value>(&serde_json::to_vec(&answer).expect("serializes"))
            .expect("json")
    };
    let usage = json!({
        "prompt_tokens": 8, "total_tokens": 8, "cost": 0.00000016, "is_byok": false,
        "cost_details": {"upstream_inference_cost": null, "upstream_inference_prompt_cost": 0.00000016,
                         "upstream_inference_completions_cost": 0},
    });
    assert_eq!(
        render(EncodingFormat::Float, false),
        json!({
            "id": "gen-1", "object": "list", "model": "openai/text-embedding-3-small",
            "data": [
                {"object": "embedding", "index": 0, "embedding": [0.0023064255, -0.009327292]},
                {"object": "embedding", "index": 1, "embedding": [1.0, -2.0]},
            ],
            "usage": usage,
        })
    );
    let base64 = render(EncodingFormat::Base64, true);
    assert_eq!(base64["data"][1]["embedding"], "AACAPwAAAMA=");
    assert_eq!(
        switchyard_core::embeddings::from_base64(
            base64["data"][0]["embedding"].as_str().expect("string")
        ),
        Some(vec![0.0023064255, -0.009327292])
    );
    assert_eq!(base64["usage"]["is_byok"], true);
    assert_eq!(
        base64["usage"]["cost_details"]["upstream_inference_cost"],
        0.00000016
    );
    // The float form keeps the f32 exactly: it reads back to the same values.
    let floats = render(EncodingFormat::Float, false);
    let back: Vec<f32> = floats["data"][0]["embedding"]
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_f64().expect("number") as f32)
        .collect();
    assert_eq!(back, embeddings.vectors[0]);
}

#[test]
fn lists_the_embedding_models() {
    let catalog = Catalog::from_toml(
        "default.toml",
        include_str!("../../../../catalog/default.toml"),
    )
    .expect("catalogue");
    let all = models_list(&catalog, 0, None);
    let ids: Vec<&str> = all["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "openai/text-embedding-3-small",
            "openai/text-embedding-3-large",
            "openai/text-embedding-ada-002",
            "google/gemini-embedding-001",
            "mistralai/mistral-embed",
        ]
    );
    assert_eq!(all["total_count"], 5);
    assert_eq!(all["links"]["next"], Value::Null);
    let small = &all["data"][0];
    // Every member the contract's model requires.
    for key in [
        "id",
        "canonical_slug",
        "name",
        "created",
        "pricing",
        "context_length",
        "architecture",
        "top_provider",
        "per_request_limits",
        "supported_parameters",
        "default_parameters",
        "supported_voices",
        "links",
    ] {
        assert!(small.get(key).is_some(), "{key}");
    }
    assert_eq!(
        small["pricing"],
        json!({"prompt": "0.00000002", "completion": "0"})
    );
    assert_eq!(
        small["architecture"]["output_modalities"],
        json!(["embeddings"])
    );
    assert_eq!(small["architecture"]["modality"], "text->embeddings");
    assert_eq!(small["architecture"]["tokenizer"], "GPT");
    assert_eq!(small["supported_parameters"], json!([]));
    assert_eq!(small["context_length"], 8192);

    let page = models_list(&catalog, 1, Some(2));
    let ids: Vec<&str> = page["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "openai/text-embedding-3-large",
            "openai/text-embedding-ada-002"
        ]
    );
    assert_eq!(
        page["links"]["next"],
        "/api/v1/embeddings/models?offset=3&limit=2"
    );
    assert_eq!(page["total_count"], 5);
}
