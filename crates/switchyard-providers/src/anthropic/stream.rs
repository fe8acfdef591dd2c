//! The Messages stream: Anthropic's server-sent events as contract chunks.

use serde_json::{json, Value};
use switchyard_core::pricing::Usage;

use super::decode::{
    error, normalize_stop_reason, parse_usage, status_for_error_type, REASONING_FORMAT,
};
use crate::sse::{SseEvent, SseParser};
use crate::{StreamDecoder, StreamEvent};

/// What an open content block is, by Anthropic block index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Thinking,
    /// A tool call, with its index among the message's tool calls.
    Tool(usize),
    Other,
}

#[derive(Default)]
pub(super) struct AnthropicStream {
    parser: SseParser,
    id: Option<String>,
    /// Open blocks by index (the latest start of an index wins).
    blocks: std::collections::HashMap<u64, Block>,
    tool_calls: usize,
    reasoning_index: usize,
    /// Usage from `message_start`, completed by `message_delta`.
    usage: Value,
}

impl AnthropicStream {
    fn block(&self, index: u64) -> Block {
        self.blocks.get(&index).copied().unwrap_or(Block::Other)
    }

    fn chunk(
        &self,
        delta: Value,
        finish: Option<(&str, &str)>,
        usage: Option<Usage>,
    ) -> StreamEvent {
        let mut choice = json!({"index": 0, "delta": delta, "finish_reason": Value::Null, "native_finish_reason": Value::Null});
        if let Some((reason, native)) = finish {
            choice["finish_reason"] = json!(reason);
            choice["native_finish_reason"] = json!(native);
        }
        StreamEvent::Chunk {
            upstream_id: self.id.clone(),
            choices: vec![choice],
            usage,
        }
    }

    fn event(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) {
        let data = event.data.trim();
        if data.is_empty() {
            return;
        }
        let value = match crate::stream_json(data, "Anthropic sent an invalid stream event") {
            Ok(v) => v,
            Err(e) => {
                out.push(e);
                return;
            }
        };
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .or(event.event.as_deref())
            .unwrap_or("");
        match kind {
            "message_start" => {
                let message = value.get("message");
                self.id = message
                    .and_then(|m| m.get("id"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                self.usage = message
                    .and_then(|m| m.get("usage"))
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                let usage = Some(parse_usage(&self.usage));
                out.push(self.chunk(json!({"role": "assistant", "content": ""}), None, usage));
            }
            "content_block_start" => {
                let index = value.get("index").and_then(Value::as_u64).unwrap_or(0);
                let block = value.get("content_block").cloned().unwrap_or(Value::Null);
                match block.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        self.blocks.insert(index, Block::Text);
                        if let Some(t) = block
                            .get("text")
                            .and_then(Value::as_str)
                            .filter(|t| !t.is_empty())
                        {
                            out.push(self.chunk(json!({"content": t}), None, None));
                        }
                    }
                    Some("thinking") => {
                        self.blocks.insert(index, Block::Thinking);
                    }
                    Some("redacted_thinking") => {
                        self.blocks.insert(index, Block::Other);
                        let detail = json!({"type": "reasoning.encrypted", "data": block.get("data").cloned().unwrap_or(Value::Null),
                                            "format": REASONING_FORMAT, "index": self.reasoning_index});
                        self.reasoning_index += 1;
                        out.push(self.chunk(json!({"reasoning_details": [detail]}), None, None));
                    }
                    Some("tool_use") => {
                        let call = self.tool_calls;
                        self.tool_calls += 1;
                        self.blocks.insert(index, Block::Tool(call));
                        out.push(self.chunk(
                            json!({"tool_calls": [{
                                "index": call,
                                "id": block.get("id").cloned().unwrap_or(Value::Null),
                                "type": "function",
                                "function": {"name": block.get("name").cloned().unwrap_or(Value::Null), "arguments": ""},
                            }]}),
                            None,
                            None,
                        ));
                    }
                    _ => {
                        self.blocks.insert(index, Block::Other);
                    }
                }
            }
            "content_block_delta" => {
                let index = value.get("index").and_then(Value::as_u64).unwrap_or(0);
                let delta = value.get("delta").cloned().unwrap_or(Value::Null);
                let s = |k: &str| {
                    delta
                        .get(k)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned()
                };
                match (delta.get("type").and_then(Value::as_str), self.block(index)) {
                    (Some("text_delta"), _) => {
                        out.push(self.chunk(json!({"content": s("text")}), None, None));
                    }
                    (Some("thinking_delta"), _) => {
                        let text = s("thinking");
                        let detail = json!({"type": "reasoning.text", "text": text, "format": REASONING_FORMAT, "index": self.reasoning_index});
                        out.push(self.chunk(
                            json!({"reasoning": text, "reasoning_details": [detail]}),
                            None,
                            None,
                        ));
                    }
                    (Some("signature_delta"), _) => {
                        let detail = json!({"type": "reasoning.text", "text": "", "signature": s("signature"),
                                            "format": REASONING_FORMAT, "index": self.reasoning_index});
                        out.push(self.chunk(json!({"reasoning_details": [detail]}), None, None));
                    }
                    (Some("input_json_delta"), Block::Tool(call)) => {
                        out.push(self.chunk(
                            json!({"tool_calls": [{"index": call, "function": {"arguments": s("partial_json")}}]}),
                            None,
                            None,
                        ));
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                let index = value.get("index").and_then(Value::as_u64).unwrap_or(0);
                if self.block(index) == Block::Thinking {
                    self.reasoning_index += 1;
                }
            }
            "message_delta" => {
                if let Some(u) = value.get("usage").and_then(Value::as_object) {
                    if let Some(map) = self.usage.as_object_mut() {
                        for (k, v) in u {
                            map.insert(k.clone(), v.clone());
                        }
                    } else {
                        self.usage = Value::Object(u.clone());
                    }
                }
                let usage = Some(parse_usage(&self.usage));
                match value.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    Some(native) => {
                        let reason = normalize_stop_reason(native);
                        out.push(self.chunk(json!({}), Some((reason, native)), usage));
                    }
                    None => out.push(StreamEvent::Chunk {
                        upstream_id: self.id.clone(),
                        choices: Vec::new(),
                        usage,
                    }),
                }
            }
            "message_stop" => out.push(StreamEvent::Done),
            "error" => {
                let status = value
                    .pointer("/error/type")
                    .and_then(Value::as_str)
                    .map_or(500, status_for_error_type);
                out.push(StreamEvent::Error(error(status, data.as_bytes())));
            }
            // `ping` and event types added later are ignored.
            _ => {}
        }
    }
}

impl StreamDecoder for AnthropicStream {
    fn feed(&mut self, bytes: &[u8]) -> Vec<StreamEvent> {
        let events = self.parser.feed(bytes);
        let mut out = Vec::new();
        for e in &events {
            self.event(e, &mut out);
        }
        out
    }

    fn finish(&mut self) -> Vec<StreamEvent> {
        let events = self.parser.finish();
        let mut out = Vec::new();
        for e in &events {
            self.event(e, &mut out);
        }
        out
    }
}
