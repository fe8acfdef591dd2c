//! What the request's own fields ask of the answer, applied between decoding and rendering:
//! reasoning left out (`reasoning.exclude`, `include_reasoning: false`), JSON healed (the
//! `response-healing` plugin), the body sent upstream echoed (`debug.echo_upstream_body`); and
//! before routing, what they ask of the prompt (`file-parser`, middle-out).

use serde_json::{json, Value};
use switchyard_core::catalog::Catalog;
use switchyard_core::chat::{heal_json, ChatRequest};
use switchyard_formats::openrouter::Chunk;
use switchyard_providers::{codec_for, Target};

use crate::engine::inference::Inference;
use crate::engine::resolved::Resolved;
use crate::error::GatewayError;

/// The fields of a message or delta that carry reasoning.
const REASONING: &[&str] = &["reasoning", "reasoning_details", "reasoning_content"];

/// Applies what the request asks of its prompt before it is screened and routed: files read
/// into text (`file-parser`). Middle-out waits for [`fit_context`], after screening.
pub fn before_screening(request: &mut ChatRequest) -> Result<(), GatewayError> {
    if let Some(plugin) = request.plugin("file-parser") {
        let native = plugin.pointer("/pdf/engine").and_then(Value::as_str) == Some("native");
        if !native {
            crate::files::read_pdfs(request).map_err(GatewayError::bad_request)?;
        }
    }
    Ok(())
}

/// Writes the request's observability annotations (`metadata`, `trace`) to the log with its
/// generation id, where an operator's log pipeline finds them; the gateway has no other
/// destination for them. They are the client's labels, never the prompt.
pub fn annotate(request: &ChatRequest, generation_id: &str) {
    let metadata = request.extra.get("metadata").filter(|v| !v.is_null());
    let trace = request.extra.get("trace").filter(|v| !v.is_null());
    if metadata.is_some() || trace.is_some() {
        let null = Value::Null;
        let (metadata, trace) = (metadata.unwrap_or(&null), trace.unwrap_or(&null));
        tracing::info!(generation_id, %metadata, %trace, "request annotations");
    }
}

/// Middle-out: compresses the conversation to fit the context of the requested model (the
/// smallest context among the models it names, so that a fallback fits too), leaving room for
/// the completion asked for.
pub fn fit_context(request: &mut ChatRequest, catalog: &Catalog) {
    if !request.middle_out() {
        return;
    }
    let named = request.model.iter().chain(request.models.iter().flatten());
    let mut contexts: Vec<u64> = named
        .filter_map(|m| catalog.model(m))
        .map(|m| m.context_length)
        .collect();
    if request.model.is_none() {
        contexts.extend(catalog.default_model().map(|m| m.context_length));
    }
    let Some(context) = contexts.into_iter().min() else {
        return;
    };
    let budget = context.saturating_sub(request.max_output_tokens().unwrap_or(0));
    let done = request.compress_middle(budget);
    if done.messages > 0 || done.chars > 0 {
        tracing::debug!(
            messages = done.messages,
            chars = done.chars,
            "middle-out compressed the prompt"
        );
    }
}

impl Inference {
    /// Shapes the choices of a non-streamed answer as the request asked.
    pub fn shape_answer(&self, choices: &mut [Value]) {
        let exclude = self.request.reasoning_excluded();
        let heal = self.request.plugin("response-healing").is_some() && self.wants_json();
        for choice in choices {
            let Some(message) = choice.get_mut("message").and_then(Value::as_object_mut) else {
                continue;
            };
            if exclude {
                for field in REASONING {
                    message.remove(*field);
                }
            }
            if heal {
                let healed = message
                    .get("content")
                    .and_then(Value::as_str)
                    .and_then(heal_json);
                if let Some(healed) = healed {
                    message.insert("content".into(), Value::String(healed));
                }
            }
        }
    }

    /// Shapes the choices of a stream chunk as the request asked.
    pub fn shape_chunk(&self, choices: &mut [Value]) {
        if !self.request.reasoning_excluded() {
            return;
        }
        for choice in choices {
            if let Some(delta) = choice.get_mut("delta").and_then(Value::as_object_mut) {
                for field in REASONING {
                    delta.remove(*field);
                }
            }
        }
    }

    /// Whether the answer is asked to be JSON (`response_format` `json_object` or
    /// `json_schema`).
    fn wants_json(&self) -> bool {
        let kind = self
            .request
            .response_format
            .as_ref()
            .and_then(|f| f.get("type"))
            .and_then(Value::as_str);
        matches!(kind, Some("json_object" | "json_schema"))
    }

    /// The chunk that starts a stream with the body sent upstream, when the request asked for
    /// it (`debug.echo_upstream_body`): the body as encoded for `r` (encoding is pure; the
    /// provider key travels in headers, which are not echoed), rendered by the client's format.
    pub fn echo_chunk(&self, r: &Resolved<'_>, head: &Chunk<'_>) -> Option<Value> {
        if !self.request.echo_upstream_body() || self.legacy.is_some() {
            return None;
        }
        let codec = codec_for(r.provider.kind)?;
        let target = Target {
            provider: r.provider,
            endpoint: r.endpoint,
            api_key: None,
        };
        let upstream = codec.encode(&self.request, &target).ok()?;
        let body: Value = serde_json::from_slice(&upstream.body).ok()?;
        let mut chunk = serde_json::to_value(head).ok()?;
        chunk["debug"] = json!({ "echo_upstream_body": body });
        Some(chunk)
    }
}
