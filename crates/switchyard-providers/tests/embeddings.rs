#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Embeddings codecs: the upstream request of each kind, recorded-shape answers decoded, and
//! what a kind cannot express refused by name.

mod common;

use common::fixture;
use serde_json::{json, Value};
use switchyard_core::catalog::Catalog;
use switchyard_core::embeddings::{EmbeddingInput, EmbeddingsRequest, EncodingFormat};
use switchyard_core::error::UpstreamErrorKind;
use switchyard_providers::anthropic::AnthropicCodec;
use switchyard_providers::gemini::GeminiCodec;
use switchyard_providers::openai::OpenAiCodec;
use switchyard_providers::{Codec, Target};

/// A catalogue with one embedding model on one provider of `kind`.
fn catalog(kind: &str, base_url: &str, upstream_model: &str) -> Catalog {
    let text = format!(
        r#"
[[providers]]
slug = "p"
name = "P"
kind = "{kind}"
base_url = "{base_url}"

[[models]]
id = "a/e"
name = "E"
kind = "embedding"
dimensions = 1536
supports_dimensions = true
context_length = 8192

[[models.endpoints]]
provider = "p"
upstream_model = "{upstream_model}"
pricing = {{ prompt = "0.00000002" }}
"#
    );
    Catalog::from_toml("test", &text).expect("catalog")
}

fn request(input: EmbeddingInput) -> EmbeddingsRequest {
    EmbeddingsRequest {
        model: "a/e".to_owned(),
        models: Vec::new(),
        input,
        encoding_format: EncodingFormat::Base64,
        dimensions: None,
        input_type: None,
        user: None,
        provider: None,
    }
}

fn texts(items: &[&str]) -> EmbeddingInput {
    EmbeddingInput::Texts(items.iter().map(|s| (*s).to_owned()).collect())
}

/// URL, headers and JSON body of an encoded request.
type Encoded = (String, Vec<(String, String)>, Value);

/// The encoded request, or the codec's refusal.
fn encode(
    codec: &dyn Codec,
    catalog: &Catalog,
    request: &EmbeddingsRequest,
) -> Result<Encoded, String> {
    let target = Target {
        provider: catalog.provider("p").expect("provider"),
        endpoint: &catalog.model("a/e").expect("model").endpoints[0],
        api_key: Some("secret-key"),
    };
    codec
        .encode_embeddings(request, &target)
        .map(|up| {
            let body = serde_json::from_slice(&up.body).expect("JSON body");
            (up.url, up.headers, body)
        })
        .map_err(|e| e.0)
}

#[test]
fn openai_compatible_requests() {
    let catalog = catalog(
        "openai",
        "https://api.openai.com/v1",
        "text-embedding-3-small",
    );
    let mut with_options = request(texts(&["a"]));
    with_options.dimensions = Some(256);
    with_options.user = Some("u-1".into());
    // (request, expected body)
    let cases = [
        (
            request(texts(&["The quick brown fox"])),
            json!({"model": "text-embedding-3-small", "input": ["The quick brown fox"]}),
        ),
        (
            request(texts(&["a", "b"])),
            json!({"model": "text-embedding-3-small", "input": ["a", "b"]}),
        ),
        (
            request(EmbeddingInput::Tokens(vec![vec![1, 2], vec![3]])),
            json!({"model": "text-embedding-3-small", "input": [[1, 2], [3]]}),
        ),
        (
            with_options,
            json!({"model": "text-embedding-3-small", "input": ["a"], "dimensions": 256, "user": "u-1"}),
        ),
    ];
    for (request, expected) in cases {
        let (url, headers, body) = encode(&OpenAiCodec, &catalog, &request).expect("encodes");
        assert_eq!(url, "https://api.openai.com/v1/embeddings");
        assert!(headers.contains(&("authorization".into(), "Bearer secret-key".into())));
        // Vectors are always asked for as floats, whatever the client's encoding_format.
        assert_eq!(body, expected, "{request:?}");
    }
    let mut typed = request(texts(&["a"]));
    typed.input_type = Some("search_query".into());
    let err = encode(&OpenAiCodec, &catalog, &typed).expect_err("refused");
    assert!(err.contains("input_type") && err.contains('P'), "{err}");
}

#[test]
fn openai_compatible_answers() {
    let two = request(texts(&["first", "second"]));
    let one = request(texts(&["x"]));
    // (request, fixture, vectors, prompt tokens, estimated)
    type Case<'a> = (&'a EmbeddingsRequest, &'a str, Vec<Vec<f32>>, u64, bool);
    let cases: [Case<'_>; 3] = [
        (
            &two,
            "embeddings_float.json",
            // Placed by `index`, not by position.
            vec![
                vec![-0.006929283, -0.005336422, 0.024047505],
                vec![0.0023064255, -0.009327292, 0.015797347],
            ],
            8,
            false,
        ),
        (
            &one,
            "embeddings_base64.json",
            vec![vec![1.0, -2.0, 0.5]],
            3,
            false,
        ),
        (
            &two,
            "embeddings_no_usage.json",
            vec![vec![0.25, 0.5], vec![0.75, 1.0]],
            // "first" and "second": two tokens each, estimated.
            4,
            true,
        ),
    ];
    for (request, name, vectors, tokens, estimated) in cases {
        let e = OpenAiCodec
            .decode_embeddings(request, &fixture("openai", name))
            .unwrap_or_else(|err| panic!("{name}: {err:?}"));
        assert_eq!(e.vectors, vectors, "{name}");
        assert_eq!(e.usage.prompt_tokens, tokens, "{name}");
        assert_eq!(e.usage.completion_tokens, 0, "{name}");
        assert_eq!(e.usage_estimated, estimated, "{name}");
    }
}

#[test]
fn malformed_answers_are_invalid_responses() {
    let two = request(texts(&["a", "b"]));
    let cases: [(&[u8], &str); 7] = [
        (b"not json", "invalid JSON"),
        (b"{}", "no `data`"),
        (
            br#"{"data": [{"index": 0, "embedding": [1]}]}"#,
            "1 embeddings for 2 inputs",
        ),
        (
            br#"{"data": [{"index": 0, "embedding": [1]}, {"index": 0, "embedding": [2]}]}"#,
            "index 0",
        ),
        (
            br#"{"data": [{"index": 0, "embedding": [1]}, {"index": 5, "embedding": [2]}]}"#,
            "index 5",
        ),
        (
            br#"{"data": [{"index": 0, "embedding": [1]}, {"index": 1, "embedding": ["x"]}]}"#,
            "embedding 1",
        ),
        (
            br#"{"data": [{"index": 0, "embedding": [1]}, {"index": 1, "embedding": [1e300]}]}"#,
            "embedding 1",
        ),
    ];
    for (body, words) in cases {
        let err = OpenAiCodec
            .decode_embeddings(&two, body)
            .expect_err("invalid");
        assert_eq!(err.kind, UpstreamErrorKind::InvalidResponse, "{words}");
        assert!(err.message.contains(words), "{words}: {}", err.message);
    }
    // An error body inside a 2xx, and the usual error classification.
    let body = fixture("openai", "embeddings_error_dimensions.json");
    let err = OpenAiCodec
        .decode_embeddings(&two, &body)
        .expect_err("error");
    assert!(err
        .message
        .contains("does not support specifying dimensions"));
    let err = OpenAiCodec.decode_error(400, &body);
    assert_eq!(err.kind, UpstreamErrorKind::InvalidRequest);
}

#[test]
fn gemini_requests() {
    let catalog = catalog(
        "gemini",
        "https://generativelanguage.googleapis.com/v1beta",
        "gemini-embedding-001",
    );
    let mut full = request(texts(&["a", "b"]));
    full.dimensions = Some(768);
    full.input_type = Some("search_document".into());
    full.user = Some("u-1".into());
    let mut native_task = request(texts(&["q"]));
    native_task.input_type = Some("retrieval_query".into());
    let cases = [
        (
            request(texts(&["hello"])),
            json!({"requests": [
                {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "hello"}]}},
            ]}),
        ),
        (
            full,
            json!({"requests": [
                {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]},
                 "taskType": "RETRIEVAL_DOCUMENT", "outputDimensionality": 768},
                {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b"}]},
                 "taskType": "RETRIEVAL_DOCUMENT", "outputDimensionality": 768},
            ]}),
        ),
        (
            native_task,
            json!({"requests": [
                {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "q"}]},
                 "taskType": "RETRIEVAL_QUERY"},
            ]}),
        ),
    ];
    for (request, expected) in cases {
        let (url, headers, body) = encode(&GeminiCodec, &catalog, &request).expect("encodes");
        assert_eq!(
            url,
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-embedding-001:batchEmbedContents"
        );
        assert!(headers.contains(&("x-goog-api-key".into(), "secret-key".into())));
        assert_eq!(body, expected, "{request:?}");
    }

    let mut unknown_task = request(texts(&["a"]));
    unknown_task.input_type = Some("poetry".into());
    let too_many = request(EmbeddingInput::Texts(vec!["x".to_owned(); 101]));
    // (request, words of the refusal)
    let refused = [
        (
            request(EmbeddingInput::Tokens(vec![vec![1, 2]])),
            "token arrays cannot be embedded by gemini",
        ),
        (
            unknown_task,
            "input_type \"poetry\" has no gemini task type",
        ),
        (too_many, "at most 100 inputs"),
    ];
    for (request, words) in refused {
        let err = encode(&GeminiCodec, &catalog, &request).expect_err("refused");
        assert!(err.contains(words), "{words}: {err}");
    }
}

#[test]
fn gemini_answers_estimate_usage() {
    let two = request(texts(&["first text", "second"]));
    let e = GeminiCodec
        .decode_embeddings(&two, &fixture("gemini", "embeddings.json"))
        .expect("decodes");
    assert_eq!(
        e.vectors,
        vec![
            vec![0.013168523, -0.008711934, -0.046782676],
            vec![-0.019563943, 0.0034412292, 0.028217722],
        ]
    );
    // Ten characters are three tokens, six are two.
    assert_eq!((e.usage.prompt_tokens, e.usage_estimated), (5, true));
    let reported = br#"{"embeddings": [{"values": [1]}, {"values": [2]}], "usageMetadata": {"promptTokenCount": 9}}"#;
    let e = GeminiCodec
        .decode_embeddings(&two, reported)
        .expect("decodes");
    assert_eq!((e.usage.prompt_tokens, e.usage_estimated), (9, false));

    let err = GeminiCodec
        .decode_embeddings(&two, br#"{"embeddings": [{"values": [1]}]}"#)
        .expect_err("short");
    assert!(
        err.message.contains("1 embeddings for 2 inputs"),
        "{}",
        err.message
    );
    let err = GeminiCodec
        .decode_embeddings(&two, &fixture("gemini", "error_invalid.json"))
        .expect_err("error body");
    assert_eq!(err.kind, UpstreamErrorKind::InvalidRequest);
}

#[test]
fn kinds_without_the_api_refuse_by_name() {
    // The catalogue refuses an embedding model on an anthropic provider; a chat model's
    // endpoint stands in for the target.
    let anthropic = common::catalog("anthropic", "https://api.anthropic.com/v1", "x");
    let target = Target {
        provider: anthropic.provider("p").expect("provider"),
        endpoint: &anthropic.model("a/m").expect("model").endpoints[0],
        api_key: None,
    };
    let err = AnthropicCodec
        .encode_embeddings(&request(texts(&["a"])), &target)
        .expect_err("refused");
    assert_eq!(err.0, "provider kind anthropic does not serve embeddings");
    let err = AnthropicCodec
        .decode_embeddings(&request(texts(&["a"])), b"{}")
        .expect_err("refused");
    assert!(err.message.contains("anthropic does not serve embeddings"));
}
