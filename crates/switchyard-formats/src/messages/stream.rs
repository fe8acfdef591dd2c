//! The canonical chunk stream as Anthropic's server-sent events.

use serde_json::{json, Value};

use super::answer::{error_body, stop_details, stop_reason, usage_to_anthropic};

/// One server-sent event: `(event name, data)`.
pub type Event = (&'static str, Value);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Thinking,
    Text,
    Tool(u64),
}

/// Turns the canonical chunk stream into Anthropic's event stream.
///
/// `message_start` carries the input token counts, which an upstream usually reports with its
/// first chunk. The transcoder supports both ways of starting:
/// - Call [`StreamTranscoder::chunk`] for each canonical chunk without calling `start`: the
///   first call opens with `message_start`, carrying that chunk's `usage` (canonical shape:
///   `prompt_tokens`, `prompt_tokens_details.cached_tokens` and `.cache_write_tokens`) when it
///   has one. [`StreamTranscoder::start_with_usage`] does the same with usage known otherwise.
/// - Call [`StreamTranscoder::start`] first when something must be sent before the upstream
///   answers (a keep-alive): `message_start` then goes out with zero counts, and the real ones
///   arrive with `message_delta`.
///
/// Then [`StreamTranscoder::finish`] with the final usage (it opens with `message_start` too if
/// nothing was sent), or [`StreamTranscoder::error`].
#[derive(Debug)]
pub struct StreamTranscoder {
    id: String,
    model: String,
    request_id: Option<String>,
    started: bool,
    /// Canonical usage known before `message_start`.
    input_usage: Option<Value>,
    open: Option<Block>,
    index: usize,
    finish_reason: Option<String>,
    native_finish_reason: Option<String>,
}

impl StreamTranscoder {
    /// A transcoder for one message; `id` is the message id (the gateway's generation id), also
    /// used as the `request_id` of error events unless [`StreamTranscoder::with_request_id`]
    /// gives another.
    pub fn new(id: &str, model: &str) -> Self {
        StreamTranscoder {
            id: id.to_owned(),
            model: model.to_owned(),
            request_id: None,
            started: false,
            input_usage: None,
            open: None,
            index: 0,
            finish_reason: None,
            native_finish_reason: None,
        }
    }

    /// The `request_id` that error events carry.
    pub fn with_request_id(mut self, request_id: &str) -> Self {
        self.request_id = Some(request_id.to_owned());
        self
    }

    /// Whether `message_start` went out.
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// `message_start` now, with the input counts known so far (zero when none are). Call it
    /// once, and only if `message_start` must go out before the first chunk.
    pub fn start(&mut self) -> Event {
        self.started = true;
        let mut usage = usage_to_anthropic(self.input_usage.as_ref().unwrap_or(&Value::Null));
        if let Some(usage) = usage.as_object_mut() {
            usage.remove("cost");
        }
        (
            "message_start",
            json!({"type": "message_start", "message": {
                "id": self.id,
                "type": "message",
                "role": "assistant",
                "container": Value::Null,
                "model": self.model,
                "content": [],
                "stop_reason": Value::Null,
                "stop_details": Value::Null,
                "stop_sequence": Value::Null,
                "usage": usage,
            }}),
        )
    }

    /// `message_start` now, carrying the input counts of `usage` (canonical usage object).
    pub fn start_with_usage(&mut self, usage: &Value) -> Event {
        if usage.is_object() {
            self.input_usage = Some(usage.clone());
        }
        self.start()
    }

    fn switch_to(&mut self, block: Block, start: Value, out: &mut Vec<Event>) {
        if self.open == Some(block) {
            return;
        }
        self.close(out);
        out.push((
            "content_block_start",
            json!({"type": "content_block_start", "index": self.index, "content_block": start}),
        ));
        self.open = Some(block);
    }

    fn close(&mut self, out: &mut Vec<Event>) {
        if self.open.take().is_some() {
            out.push((
                "content_block_stop",
                json!({"type": "content_block_stop", "index": self.index}),
            ));
            self.index += 1;
        }
    }

    fn delta(&self, delta: Value) -> Event {
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": self.index, "delta": delta}),
        )
    }

    /// Events for one canonical chunk (`{choices: [{delta, finish_reason}], usage?}`), opening
    /// with `message_start` when it has not gone out yet.
    pub fn chunk(&mut self, chunk: &Value) -> Vec<Event> {
        let mut out = Vec::new();
        if !self.started {
            out.push(self.start_with_usage(chunk.get("usage").unwrap_or(&Value::Null)));
        }
        let Some(choice) = chunk.get("choices").and_then(|c| c.get(0)) else {
            return out;
        };
        let delta = choice.get("delta").cloned().unwrap_or(Value::Null);
        let details = delta.get("reasoning_details").and_then(Value::as_array);
        let reasoning = delta.get("reasoning").and_then(Value::as_str);
        if reasoning.is_some_and(|r| !r.is_empty()) || details.is_some_and(|d| !d.is_empty()) {
            self.switch_to(
                Block::Thinking,
                json!({"type": "thinking", "thinking": "", "signature": ""}),
                &mut out,
            );
            if let Some(r) = reasoning.filter(|r| !r.is_empty()) {
                out.push(self.delta(json!({"type": "thinking_delta", "thinking": r})));
            } else if let Some(text) = details
                .into_iter()
                .flatten()
                .filter_map(|d| d.get("text").and_then(Value::as_str))
                .find(|t| !t.is_empty())
            {
                out.push(self.delta(json!({"type": "thinking_delta", "thinking": text})));
            }
            for sig in details
                .into_iter()
                .flatten()
                .filter_map(|d| d.get("signature").and_then(Value::as_str))
                .filter(|s| !s.is_empty())
            {
                out.push(self.delta(json!({"type": "signature_delta", "signature": sig})));
            }
        }
        if let Some(text) = delta.get("content").and_then(Value::as_str) {
            if !text.is_empty() {
                self.switch_to(
                    Block::Text,
                    json!({"type": "text", "text": "", "citations": Value::Null}),
                    &mut out,
                );
                out.push(self.delta(json!({"type": "text_delta", "text": text})));
            }
        }
        for call in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
            let function = call.get("function");
            if self.open != Some(Block::Tool(index)) {
                let id = call
                    .get("id")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("toolu_{}_{index}", self.id), str::to_owned);
                let name = function
                    .and_then(|f| f.get("name"))
                    .cloned()
                    .unwrap_or(json!(""));
                self.switch_to(
                    Block::Tool(index),
                    json!({"type": "tool_use", "id": id, "caller": {"type": "direct"}, "name": name, "input": {}}),
                    &mut out,
                );
            }
            if let Some(args) = function
                .and_then(|f| f.get("arguments"))
                .and_then(Value::as_str)
            {
                if !args.is_empty() {
                    out.push(self.delta(json!({"type": "input_json_delta", "partial_json": args})));
                }
            }
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_owned());
            self.native_finish_reason = choice
                .get("native_finish_reason")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        out
    }

    /// The closing events, with the final canonical usage object.
    pub fn finish(&mut self, usage: &Value) -> Vec<Event> {
        let mut out = Vec::new();
        if !self.started {
            out.push(self.start_with_usage(usage));
        }
        self.close(&mut out);
        let reason = stop_reason(
            self.finish_reason.as_deref(),
            self.native_finish_reason.as_deref(),
        );
        out.push((
            "message_delta",
            json!({
                "type": "message_delta",
                "delta": {
                    "container": Value::Null,
                    "stop_reason": reason,
                    "stop_details": stop_details(reason),
                    "stop_sequence": Value::Null,
                },
                "usage": usage_to_anthropic(usage),
            }),
        ));
        out.push(("message_stop", json!({"type": "message_stop"})));
        out
    }

    /// An error after the stream started, in Anthropic's envelope with the `request_id`.
    pub fn error(&mut self, status: u16, message: &str) -> Vec<Event> {
        let request_id = self.request_id.as_deref().unwrap_or(&self.id);
        vec![("error", error_body(status, message, Some(request_id)))]
    }
}

/// Frames one event as SSE bytes.
pub fn frame(event: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.0.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    if serde_json::to_writer(&mut out, &event.1).is_err() {
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
    out
}
