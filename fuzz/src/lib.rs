//! Fuzz targets: each function takes arbitrary bytes and must neither panic nor loop, whatever
//! the bytes. `src/bin/*` hands them to AFL (`fuzz/run`); `tests/replay.rs` runs them over the
//! committed corpus (`corpus/<target>/`) as a plain test.
//!
//! Invariants checked beyond "no panic":
//! - The SSE parser yields the same events whether the bytes come at once or in pieces.
//! - A chat request that parses can be encoded for every provider kind or is refused with a
//!   `CodecError`, never a panic; so can a legacy completions or embeddings request, and a
//!   `count_tokens` request for the Anthropic API.

use std::sync::OnceLock;

use serde_json::Value;
use switchyard_core::catalog::{Catalog, ProviderKind};
use switchyard_core::chat::ChatRequest;
use switchyard_formats::responses::Sealer;
use switchyard_providers::anthropic::AnthropicCodec;
use switchyard_providers::sse::SseParser;
use switchyard_providers::{codec_for, Codec, Target};

/// A fuzz target: takes any bytes, panics only on a bug.
pub type FuzzTarget = fn(&[u8]);

/// Every target, by the name of its binary and corpus directory.
pub const TARGETS: &[(&str, FuzzTarget)] = &[
    ("chat_request", chat_request),
    ("messages_request", messages_request),
    ("count_tokens_request", count_tokens_request),
    ("responses_request", responses_request),
    ("completions_request", completions_request),
    ("embeddings_request", embeddings_request),
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

/// Calls `f` with each provider kind's codec and the one endpoint of its catalogue.
fn for_each_target(mut f: impl FnMut(&dyn Codec, &Target<'_>)) {
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
        f(codec, &target);
    }
}

/// What the pipeline does with a canonical chat request that parsed: measure it, and encode it
/// for every provider kind.
fn use_chat(request: &ChatRequest) {
    let _ = request.estimated_prompt_tokens();
    let _ = request.parameters_used();
    let _ = request.input_modalities();
    for_each_target(|codec, target| {
        let _ = codec.encode(request, target);
    });
}

/// `ChatRequest::from_json`; a request that parses is also measured and encoded for every
/// provider kind.
pub fn chat_request(data: &[u8]) {
    if let Ok(request) = ChatRequest::from_json(data) {
        use_chat(&request);
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

/// `switchyard_formats::messages::count_tokens_request` (`/messages/count_tokens`), then the
/// canonical parse; a request that parses is estimated, and encoded for an Anthropic
/// endpoint's `count_tokens`.
pub fn count_tokens_request(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(chat) = switchyard_formats::messages::count_tokens_request(&value) else {
        return;
    };
    let Ok(request) = ChatRequest::from_value(chat) else {
        return;
    };
    let _ = switchyard_formats::messages::estimate_input_tokens(&request);
    for (kind, catalog) in catalogs() {
        if *kind != ProviderKind::Anthropic {
            continue;
        }
        let (Some(provider), Some(endpoint)) = (
            catalog.provider("p"),
            catalog.model("a/m").and_then(|m| m.endpoints.first()),
        ) else {
            continue;
        };
        let target = Target {
            provider,
            endpoint,
            api_key: Some("k"),
        };
        let _ = AnthropicCodec.encode_count_tokens(&request, &target);
    }
}

/// Seals by hex-encoding behind a prefix, so that the fuzzer can send reasoning back in
/// `encrypted_content` (the server's sealer is AES-GCM, which random bytes never open).
struct HexSealer;

impl Sealer for HexSealer {
    fn seal(&self, plain: &[u8]) -> String {
        let hex: String = plain.iter().map(|b| format!("{b:02x}")).collect();
        format!("sealed:{hex}")
    }

    fn open(&self, sealed: &str) -> Option<Vec<u8>> {
        let hex = sealed.strip_prefix("sealed:")?;
        if hex.len() % 2 != 0 {
            return None;
        }
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect()
    }
}

/// `switchyard_formats::responses::request_to_chat` (the Responses API), then the canonical
/// parse; a request that parses is measured and encoded for every provider kind.
pub fn responses_request(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(chat) = switchyard_formats::responses::request_to_chat(&value, &HexSealer) else {
        return;
    };
    if let Ok(request) = ChatRequest::from_value(chat) {
        use_chat(&request);
    }
}

/// `switchyard_formats::completions::parse` (legacy `/completions`); a request that parses is
/// routed, screened and encoded as the pipeline does: as a chat request for every provider
/// kind, and for the legacy API where the codec has it.
pub fn completions_request(data: &[u8]) {
    let Ok(mut request) = switchyard_formats::completions::parse(data) else {
        return;
    };
    let _ = request.prompts();
    let _ = request.needs_legacy_api();
    let _ = request.generations();
    let _ = request.route_request();
    request.for_each_text(|text| text.make_ascii_uppercase());
    use_chat(&request.chat);
    for_each_target(|codec, target| {
        let _ = codec.encode_completions(&request, target);
    });
}

/// `switchyard_formats::embeddings::parse`; a request that parses is routed, screened,
/// estimated and encoded for every provider kind.
pub fn embeddings_request(data: &[u8]) {
    let Ok(mut request) = switchyard_formats::embeddings::parse(data) else {
        return;
    };
    let _ = request.input.token_estimates();
    let _ = request.estimated_prompt_tokens();
    let _ = request.route_request();
    request.for_each_text(|text| text.make_ascii_uppercase());
    for_each_target(|codec, target| {
        let _ = codec.encode_embeddings(&request, target);
    });
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
