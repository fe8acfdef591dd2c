//! OpenAI's legacy completions API, `POST {base_url}/completions`, for endpoints that declare
//! `legacy_completions = true` (a raw prompt instead of a conversation).
//!
//! Decisions:
//! - The prompts are the user messages of the canonical request's chat form (after any
//!   redaction), one string, or a list when there are several.
//! - Sampling parameters the endpoint does not list are left out, as for chat; `logprobs` is the
//!   legacy count of top tokens, not chat's switch.
//! - Chat-only fields (tools, structured output, reasoning...) cannot be expressed and are
//!   refused, naming them.
//! - Answers decode into the canonical chat shapes: `text` becomes the assistant message's (or
//!   the delta's) `content`; a choice's legacy `logprobs` object (`tokens`, `token_logprobs`,
//!   `top_logprobs`, `text_offset`) is kept as it came.

use serde_json::{json, Map, Value};
use switchyard_core::completions::CompletionsRequest;

use super::supports;
use crate::{CodecError, Target, UpstreamRequest};

/// The upstream request.
pub(super) fn encode(
    request: &CompletionsRequest,
    target: &Target<'_>,
) -> Result<UpstreamRequest, CodecError> {
    let chat = &request.chat;
    let chat_only = [
        ("tools", chat.tools.is_some()),
        ("tool_choice", chat.tool_choice.is_some()),
        ("parallel_tool_calls", chat.parallel_tool_calls.is_some()),
        ("response_format", chat.response_format.is_some()),
        (
            "reasoning",
            chat.reasoning.is_some() || chat.reasoning_effort.is_some(),
        ),
        ("prediction", chat.prediction.is_some()),
        ("modalities", chat.modalities.is_some()),
        ("audio", chat.audio.is_some()),
        ("web_search_options", chat.web_search_options.is_some()),
        ("verbosity", chat.verbosity.is_some()),
    ];
    if let Some((field, _)) = chat_only.iter().find(|(_, set)| *set) {
        return Err(CodecError(format!(
            "{field} cannot be sent to the legacy completions API of {}",
            target.provider.name
        )));
    }
    let Some(prompts) = request.prompts() else {
        return Err(CodecError(
            "a legacy completions request holds one user text message for each prompt".to_owned(),
        ));
    };
    let mut body = Map::new();
    body.insert("model".into(), json!(target.endpoint.upstream_model));
    body.insert(
        "prompt".into(),
        match prompts.as_slice() {
            [one] => json!(one),
            many => json!(many),
        },
    );
    if let Some(suffix) = request.suffix.as_deref().filter(|s| !s.is_empty()) {
        body.insert("suffix".into(), json!(suffix));
    }
    if request.echo {
        body.insert("echo".into(), json!(true));
    }
    if let Some(n) = request.n {
        body.insert("n".into(), json!(n));
    }
    if let Some(best_of) = request.best_of {
        body.insert("best_of".into(), json!(best_of));
    }
    if let Some(logprobs) = request.logprobs {
        if supports(target, "logprobs") {
            body.insert("logprobs".into(), json!(logprobs));
        }
    }
    if let Some(max) = chat.max_output_tokens() {
        body.insert("max_tokens".into(), json!(max));
    }
    let mut sampling = |name: &str, value: Option<Value>| {
        if let Some(value) = value {
            if supports(target, name) {
                body.insert(name.into(), value);
            }
        }
    };
    sampling("stop", chat.stop.as_ref().map(|s| json!(s)));
    sampling("temperature", chat.temperature.map(|v| json!(v)));
    sampling("top_p", chat.top_p.map(|v| json!(v)));
    sampling("top_k", chat.top_k.map(|v| json!(v)));
    sampling(
        "frequency_penalty",
        chat.frequency_penalty.map(|v| json!(v)),
    );
    sampling("presence_penalty", chat.presence_penalty.map(|v| json!(v)));
    sampling(
        "repetition_penalty",
        chat.repetition_penalty.map(|v| json!(v)),
    );
    sampling("min_p", chat.min_p.map(|v| json!(v)));
    sampling("top_a", chat.top_a.map(|v| json!(v)));
    sampling("seed", chat.seed.map(|v| json!(v)));
    sampling("logit_bias", chat.logit_bias.as_ref().map(|v| json!(v)));
    sampling("user", chat.user.as_ref().map(|v| json!(v)));
    if chat.is_stream() {
        body.insert("stream".into(), json!(true));
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if let Some(key) = target.api_key {
        headers.push(("authorization".to_owned(), format!("Bearer {key}")));
    }
    Ok(UpstreamRequest {
        url: format!("{}/completions", target.provider.base_url),
        headers,
        body: serde_json::to_vec(&Value::Object(body)).map_err(|e| CodecError(e.to_string()))?,
    })
}

/// Turns a legacy choice (`{text, index, logprobs, finish_reason}`) into the chat shape in
/// place: `text` becomes `field.content` (`field` is `message` or `delta`).
pub(super) fn text_to_chat(choice: &mut Map<String, Value>, field: &str) {
    let text = choice.remove("text").unwrap_or(Value::Null);
    let mut message = Map::new();
    if field == "message" {
        message.insert("role".into(), json!("assistant"));
    }
    message.insert(
        "content".into(),
        if text.is_string() { text } else { json!("") },
    );
    choice.insert(field.into(), Value::Object(message));
}
