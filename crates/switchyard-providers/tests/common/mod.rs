//! Helpers shared by the codec fixture tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use serde_json::{json, Value};
use switchyard_core::catalog::Catalog;
use switchyard_core::chat::ChatRequest;
use switchyard_core::error::UpstreamError;
use switchyard_providers::{Codec, Completion, StreamEvent, Target};

pub fn fixture(dir: &str, name: &str) -> Vec<u8> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", dir, name]
        .iter()
        .collect();
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A catalogue with one model on one provider of `kind`.
pub fn catalog(kind: &str, base_url: &str, upstream_model: &str) -> Catalog {
    let text = format!(
        r#"
[[providers]]
slug = "p"
name = "P"
kind = "{kind}"
base_url = "{base_url}"
api_key_env = "P_KEY"

[[models]]
id = "a/m"
name = "M"
context_length = 200000
input_modalities = ["text", "image", "file", "audio"]

[[models.endpoints]]
provider = "p"
upstream_model = "{upstream_model}"
max_completion_tokens = 8192
pricing = {{ prompt = "0.000003", completion = "0.000015" }}
"#
    );
    Catalog::from_toml("test", &text).expect("catalog")
}

/// Encodes a request fixture; returns (url, headers without the key, JSON body).
pub fn encode(codec: &dyn Codec, catalog: &Catalog, request: &[u8]) -> Value {
    let request = ChatRequest::from_json(request).expect("request fixture parses");
    let target = Target {
        provider: catalog.provider("p").expect("provider"),
        endpoint: &catalog.model("a/m").expect("model").endpoints[0],
        api_key: Some("secret-key"),
    };
    let upstream = codec.encode(&request, &target).expect("encodes");
    let headers: Vec<Value> = upstream
        .headers
        .iter()
        .map(|(k, v)| json!([k, if v == "secret-key" { "<key>" } else { v }]))
        .collect();
    json!({
        "url": upstream.url,
        "headers": headers,
        "body": serde_json::from_slice::<Value>(&upstream.body).expect("JSON body"),
    })
}

pub fn encode_error(codec: &dyn Codec, catalog: &Catalog, request: Value) -> String {
    let request = ChatRequest::from_value(request).expect("request parses");
    let target = Target {
        provider: catalog.provider("p").expect("provider"),
        endpoint: &catalog.model("a/m").expect("model").endpoints[0],
        api_key: None,
    };
    codec.encode(&request, &target).expect_err("refused").0
}

pub fn completion_json(c: &Completion) -> Value {
    json!({
        "upstream_id": c.upstream_id,
        "choices": c.choices,
        "usage": c.usage,
    })
}

pub fn error_json(e: &UpstreamError) -> Value {
    json!({
        "kind": format!("{:?}", e.kind),
        "status": e.status,
        "client_status": e.client_status(),
        "retryable": e.retryable(),
        "message": e.message,
        "provider_code": e.provider_code,
    })
}

/// Decodes a stream fed in small pieces (so events split across reads).
pub fn stream_json(codec: &dyn Codec, bytes: &[u8], piece: usize) -> Value {
    let mut decoder = codec.stream_decoder();
    let mut events = Vec::new();
    for chunk in bytes.chunks(piece) {
        events.extend(decoder.feed(chunk));
    }
    events.extend(decoder.finish());
    Value::Array(
        events
            .iter()
            .map(|e| match e {
                StreamEvent::Chunk {
                    upstream_id,
                    choices,
                    usage,
                } => json!({"chunk": {"id": upstream_id, "choices": choices, "usage": usage}}),
                StreamEvent::Error(err) => json!({"error": error_json(err)}),
                StreamEvent::Done => json!("done"),
            })
            .collect(),
    )
}
