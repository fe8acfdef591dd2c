//! Fuzz targets: each function takes arbitrary bytes and must neither panic nor loop, whatever
//! the bytes. `src/bin/*` hands them to AFL (`fuzz/run`); `tests/replay.rs` runs them over the
//! committed corpus (`corpus/<target>/`) as a plain test.
//!
//! Invariants checked beyond "no panic":
//! - The SSE parser yields the same events whether the bytes come at once or in pieces.
//! - A chat request that parses can be encoded for every provider kind or is refused with a
//!   `CodecError`, never a panic.

use std::sync::OnceLock;

use serde_json::Value;
use switchyard_core::catalog::{Catalog, ProviderKind};
use switchyard_core::chat::ChatRequest;
use switchyard_providers::sse::SseParser;
use switchyard_providers::{codec_for, Target};

/// A fuzz target: takes any bytes, panics only on a bug.
pub type FuzzTarget = fn(&[u8]);

/// Every target, by the name of its binary and corpus directory.
pub const TARGETS: &[(&str, FuzzTarget)] = &[
    ("chat_request", chat_request),
    ("messages_request", messages_request),
    ("sse", sse),
    ("codec_openai", codec_openai),
    ("codec_anthropic", codec_anthropic),
    ("codec_gemini", codec_gemini),
];

const KINDS: [(ProviderKind, &str); 3] = [
    (ProviderKind::Openai, "openai"),
    (ProviderKind::Anthropic, "anthropic"),
    (ProviderKind::Gemini, "gemini"),
];

/// One catalogue per provider kind, each with one model on one endpoint.
fn catalogs() -> &'static [(ProviderKind, Catalog)] {
    static CATALOGS: OnceLock<Vec<(ProviderKind, Catalog)>> = OnceLock::new();
    CATALOGS.get_or_init(|| {
        KINDS
            .iter()
            .filter_map(|(kind, name)| {
                let text = format!(
                    "[[providers]]\nslug = \"p\"\nname = \"P\"\nkind = \"{name}\"\nbase_url = \"https://upstream.example/v1\"\napi_key_env = \"P_KEY\"\n\n\
                     [[models]]\nid = \"a/m\"\nname = \"M\"\ncontext_length = 200000\ninput_modalities = [\"text\", \"image\", \"file\", \"audio\"]\n\n\
                     [[models.endpoints]]\nprovider = \"p\"\nupstream_model = \"m\"\nmax_completion_tokens = 8192\npricing = {{ prompt = \"0.000003\", completion = \"0.000015\" }}\n"
                );
                Catalog::from_toml("fuzz", &text).ok().map(|c| (*kind, c))
            })
            .collect()
    })
}

/// `ChatRequest::from_json`; a request that parses is also measured and encoded for every
/// provider kind.
pub fn chat_request(data: &[u8]) {
    let Ok(request) = ChatRequest::from_json(data) else {
        return;
    };
    let _ = request.estimated_prompt_tokens();
    let _ = request.parameters_used();
    let _ = request.input_modalities();
    for (kind, catalog) in catalogs() {
        let (Some(codec), Some(provider), Some(model)) = (
            codec_for(*kind),
            catalog.provider("p"),
            catalog.model("a/m"),
        ) else {
            continue;
        };
        let Some(endpoint) = model.endpoints.first() else {
            continue;
        };
        let target = Target {
            provider,
            endpoint,
            api_key: Some("k"),
        };
        let _ = codec.encode(&request, &target);
    }
}

/// `switchyard_formats::messages::request_to_chat`, then the canonical parse of what it gives.
pub fn messages_request(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Ok(chat) = switchyard_formats::messages::request_to_chat(&value) {
        let _ = ChatRequest::from_value(chat);
    }
}

/// The SSE parser, fed the bytes at once and in pieces (the first byte sets the piece size):
/// both must give the same events.
pub fn sse(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let piece = usize::from(first % 17) + 1;
    let mut whole = SseParser::new();
    let mut expected = whole.feed(rest);
    expected.extend(whole.finish());
    let mut pieces = SseParser::new();
    let mut got = Vec::new();
    for chunk in rest.chunks(piece) {
        got.extend(pieces.feed(chunk));
    }
    got.extend(pieces.finish());
    assert_eq!(got, expected, "events depend on how the bytes were split");
}

/// One codec's decoders: the first byte picks `decode`, `decode_error` (with a status from the
/// second byte) or the stream decoder (fed in pieces whose size the second byte sets).
fn codec(kind: ProviderKind, data: &[u8]) {
    let Some(codec) = codec_for(kind) else {
        return;
    };
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => {
            let _ = codec.decode(rest);
        }
        1 => {
            let Some((&status, body)) = rest.split_first() else {
                return;
            };
            let _ = codec.decode_error(400 + u16::from(status) % 200, body);
        }
        _ => {
            let Some((&size, body)) = rest.split_first() else {
                return;
            };
            let mut decoder = codec.stream_decoder();
            for chunk in body.chunks(usize::from(size % 64) + 1) {
                let _ = decoder.feed(chunk);
            }
            let _ = decoder.finish();
        }
    }
}

/// The OpenAI-compatible codec's decoders.
pub fn codec_openai(data: &[u8]) {
    codec(ProviderKind::Openai, data);
}

/// The Anthropic codec's decoders.
pub fn codec_anthropic(data: &[u8]) {
    codec(ProviderKind::Anthropic, data);
}

/// The Gemini codec's decoders.
pub fn codec_gemini(data: &[u8]) {
    codec(ProviderKind::Gemini, data);
}
