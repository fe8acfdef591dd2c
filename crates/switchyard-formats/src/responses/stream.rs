//! The canonical chunk stream as Responses server-sent events, with strictly increasing
//! sequence numbers and every output item closed before the next opens.

use std::sync::Arc;

use serde_json::{json, Value};
use switchyard_core::error::error_type_for_status;

use super::answer::{
    call_item, call_prefix, error_code, item_id, meaningful, outcome, reasoning_output,
    response_object, text_part, usage_from_chat, CallItem, ResponseContext,
};
use super::tools::{self, Declared, InputStream, ToolKinds};
use super::types::Sealer;

/// One server-sent event: `(event type, data)`.
pub type Event = (&'static str, Value);

/// Frames one event as SSE bytes: `event: <type>\ndata: <json>\n\n`.
pub fn frame(event: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.0.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    if serde_json::to_writer(&mut out, &event.1).is_err() {
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartKind {
    Text,
    Refusal,
}

/// The output item being streamed.
#[derive(Debug)]
enum Open {
    Reasoning {
        id: String,
        text: String,
        /// Details merged by their `index`, as the provider split them into deltas.
        details: Vec<Value>,
        summary_open: bool,
    },
    Message {
        id: String,
        /// Finished content parts.
        parts: Vec<Value>,
        /// The part being streamed.
        current: Option<(PartKind, String)>,
    },
    Call {
        id: String,
        /// The chat tool call index.
        index: u64,
        call_id: String,
        /// The name the chat model called.
        name: String,
        /// The chat call's JSON arguments so far.
        arguments: String,
        /// What the client declared the tool as, known from the name the call opened with (every
        /// canonical stream names a call in its first fragment).
        tool: Option<Declared>,
        /// For a custom tool: its input as streamed so far.
        custom: Option<CustomInput>,
    },
}

/// A custom tool call's input while its arguments stream.
#[derive(Debug, Default)]
struct CustomInput {
    stream: InputStream,
    /// The text sent in `response.custom_tool_call_input.delta` events.
    sent: String,
}

/// A tool call already closed, to which later argument fragments still belong.
#[derive(Debug)]
struct FinishedCall {
    /// The chat tool call index.
    chat_index: u64,
    /// Its position in the output.
    position: usize,
    arguments: String,
}

/// Merges a streamed reasoning detail into `details`: fragments with the same `index` and
/// `type` are one detail (text and summary concatenated, signature and data taken when given).
pub(super) fn merge_detail(details: &mut Vec<Value>, detail: &Value) {
    let index = detail.get("index").and_then(Value::as_u64);
    let kind = detail.get("type").and_then(Value::as_str);
    let existing = index.and_then(|i| {
        details.iter_mut().find(|d| {
            d.get("index").and_then(Value::as_u64) == Some(i)
                && d.get("type").and_then(Value::as_str) == kind
        })
    });
    let Some(existing) = existing else {
        details.push(detail.clone());
        return;
    };
    let Some(fields) = detail.as_object() else {
        return;
    };
    for (key, value) in fields {
        match (key.as_str(), value.as_str()) {
            ("text" | "summary", Some(piece)) => {
                let joined = format!(
                    "{}{piece}",
                    existing.get(key).and_then(Value::as_str).unwrap_or("")
                );
                existing[key.as_str()] = json!(joined);
            }
            (_, Some("")) => {}
            _ if value.is_null() => {}
            _ => existing[key.as_str()] = value.clone(),
        }
    }
}

/// Turns the canonical chunk stream into the Responses event stream.
///
/// Call [`StreamTranscoder::start`] once, [`StreamTranscoder::chunk`] for each chat chunk, then
/// [`StreamTranscoder::finish`] with the final canonical usage, or [`StreamTranscoder::error`]
/// when the answer failed. Once ended, the transcoder emits nothing more.
pub struct StreamTranscoder {
    ctx: ResponseContext,
    model: String,
    sealer: Arc<dyn Sealer>,
    sequence: u64,
    /// Finished output items, in order.
    output: Vec<Value>,
    open: Option<Open>,
    /// Calls already finished.
    finished_calls: Vec<FinishedCall>,
    /// The client's tools, to render each call as the item the client expects.
    kinds: ToolKinds,
    finish_reason: Option<String>,
    /// An error reported inside the chunk stream: `(status, message)`.
    failure: Option<(u16, String)>,
    ended: bool,
}

impl std::fmt::Debug for StreamTranscoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamTranscoder")
            .field("id", &self.ctx.id)
            .field("sequence", &self.sequence)
            // The open item holds generated text: only whether there is one is shown.
            .field("item_open", &self.open.is_some())
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl StreamTranscoder {
    /// A transcoder for one response; `model` is the model named until a chunk names the one
    /// that serves.
    pub fn new(ctx: ResponseContext, model: &str, sealer: Arc<dyn Sealer>) -> Self {
        StreamTranscoder {
            kinds: ToolKinds::of(&ctx.request),
            ctx,
            model: model.to_owned(),
            sealer,
            sequence: 0,
            output: Vec::new(),
            open: None,
            finished_calls: Vec::new(),
            finish_reason: None,
            failure: None,
            ended: false,
        }
    }

    fn event(&mut self, kind: &'static str, mut data: Value) -> Event {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        (kind, data)
    }

    fn snapshot(
        &self,
        status: &str,
        output: Vec<Value>,
        usage: Option<Value>,
        completed_at: Option<u64>,
    ) -> Value {
        response_object(&self.ctx, &self.model, status, output, usage, completed_at)
    }

    /// `response.created` and `response.in_progress`.
    pub fn start(&mut self) -> Vec<Event> {
        let response = self.snapshot("in_progress", Vec::new(), None, None);
        vec![
            self.event("response.created", json!({"response": response})),
            self.event("response.in_progress", json!({"response": response})),
        ]
    }

    fn output_index(&self) -> usize {
        self.output.len()
    }

    fn add_item(&mut self, item: Value, out: &mut Vec<Event>) {
        let index = self.output_index();
        out.push(self.event(
            "response.output_item.added",
            json!({"output_index": index, "item": item}),
        ));
    }

    fn open_reasoning(&mut self, out: &mut Vec<Event>) {
        if matches!(self.open, Some(Open::Reasoning { .. })) {
            return;
        }
        self.close("completed", out);
        let id = item_id("rs", &self.ctx, self.output_index());
        self.add_item(json!({"type": "reasoning", "id": id, "summary": []}), out);
        self.open = Some(Open::Reasoning {
            id,
            text: String::new(),
            details: Vec::new(),
            summary_open: false,
        });
    }

    fn open_part(&mut self, kind: PartKind, out: &mut Vec<Event>) {
        if !matches!(self.open, Some(Open::Message { .. })) {
            self.close("completed", out);
            let id = item_id("msg", &self.ctx, self.output_index());
            self.add_item(
                json!({"type": "message", "id": id, "status": "in_progress", "role": "assistant", "content": []}),
                out,
            );
            self.open = Some(Open::Message {
                id,
                parts: Vec::new(),
                current: None,
            });
        }
        let index = self.output_index();
        let Some(Open::Message { id, parts, current }) = self.open.take() else {
            return;
        };
        let mut parts = parts;
        let current = match current {
            Some((k, text)) if k == kind => Some((k, text)),
            other => {
                if let Some((k, text)) = other {
                    parts.push(self.close_part(&id, index, parts.len(), k, &text, out));
                }
                let part = match kind {
                    PartKind::Text => text_part(""),
                    PartKind::Refusal => json!({"type": "refusal", "refusal": ""}),
                };
                out.push(self.event(
                    "response.content_part.added",
                    json!({"item_id": id, "output_index": index, "content_index": parts.len(), "part": part}),
                ));
                Some((kind, String::new()))
            }
        };
        self.open = Some(Open::Message { id, parts, current });
    }

    /// The done events of a content part; returns the finished part.
    fn close_part(
        &mut self,
        id: &str,
        index: usize,
        content_index: usize,
        kind: PartKind,
        text: &str,
        out: &mut Vec<Event>,
    ) -> Value {
        let part = match kind {
            PartKind::Text => {
                out.push(self.event(
                    "response.output_text.done",
                    json!({"item_id": id, "output_index": index, "content_index": content_index, "text": text, "logprobs": []}),
                ));
                text_part(text)
            }
            PartKind::Refusal => {
                out.push(self.event(
                    "response.refusal.done",
                    json!({"item_id": id, "output_index": index, "content_index": content_index, "refusal": text}),
                ));
                json!({"type": "refusal", "refusal": text})
            }
        };
        out.push(self.event(
            "response.content_part.done",
            json!({"item_id": id, "output_index": index, "content_index": content_index, "part": part}),
        ));
        part
    }

    /// Closes the open item with its done events; `status` is the item's final status.
    fn close(&mut self, status: &str, out: &mut Vec<Event>) {
        let index = self.output_index();
        let item = match self.open.take() {
            None => return,
            Some(Open::Reasoning {
                id,
                text,
                details,
                summary_open,
            }) => {
                if summary_open {
                    out.push(self.event(
                        "response.reasoning_summary_text.done",
                        json!({"item_id": id, "output_index": index, "summary_index": 0, "text": text}),
                    ));
                    out.push(self.event(
                        "response.reasoning_summary_part.done",
                        json!({"item_id": id, "output_index": index, "summary_index": 0,
                               "part": {"type": "summary_text", "text": text}}),
                    ));
                }
                reasoning_output(id, &text, &details, self.sealer.as_ref())
            }
            Some(Open::Message {
                id,
                mut parts,
                current,
            }) => {
                if let Some((kind, text)) = current {
                    parts.push(self.close_part(&id, index, parts.len(), kind, &text, out));
                }
                json!({"type": "message", "id": id, "status": status, "role": "assistant", "content": parts})
            }
            Some(Open::Call {
                id,
                index: chat_index,
                call_id,
                name,
                arguments,
                tool,
                custom,
            }) => {
                let item = call_item(CallItem {
                    id: &id,
                    call_id: &call_id,
                    name: &name,
                    tool: tool.as_ref(),
                    arguments: &arguments,
                    status,
                });
                if let Some(custom) = custom {
                    let input = item["input"].as_str().unwrap_or_default();
                    // What the stream could not decode (the arguments strayed from the declared
                    // shape) is sent before the done event, which carries the whole input.
                    if let Some(rest) = input
                        .strip_prefix(custom.sent.as_str())
                        .filter(|r| !r.is_empty())
                    {
                        out.push(self.event(
                            "response.custom_tool_call_input.delta",
                            json!({"item_id": id, "output_index": index, "delta": rest}),
                        ));
                    }
                    out.push(self.event(
                        "response.custom_tool_call_input.done",
                        json!({"item_id": id, "output_index": index, "input": input}),
                    ));
                } else {
                    out.push(self.event(
                        "response.function_call_arguments.done",
                        json!({"item_id": id, "output_index": index, "name": item["name"], "arguments": arguments}),
                    ));
                }
                self.finished_calls.push(FinishedCall {
                    chat_index,
                    position: index,
                    arguments,
                });
                item
            }
        };
        out.push(self.event(
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        ));
        self.output.push(item);
    }

    /// The open item as it stands, without events, for a failed response's output.
    fn abandon(&mut self) {
        let item = match self.open.take() {
            None => return,
            Some(Open::Reasoning {
                id, text, details, ..
            }) => {
                let mut item = reasoning_output(id, &text, &details, self.sealer.as_ref());
                item["status"] = json!("incomplete");
                item
            }
            Some(Open::Message {
                id,
                mut parts,
                current,
            }) => {
                if let Some((kind, text)) = current {
                    parts.push(match kind {
                        PartKind::Text => text_part(&text),
                        PartKind::Refusal => json!({"type": "refusal", "refusal": text}),
                    });
                }
                json!({"type": "message", "id": id, "status": "incomplete", "role": "assistant", "content": parts})
            }
            Some(Open::Call {
                id,
                call_id,
                name,
                arguments,
                tool,
                custom,
                ..
            }) => {
                let mut item = call_item(CallItem {
                    id: &id,
                    call_id: &call_id,
                    name: &name,
                    tool: tool.as_ref(),
                    arguments: &arguments,
                    status: "incomplete",
                });
                // Cut arguments do not parse: the input is what was streamed of it.
                if let Some(custom) = custom.filter(|c| !c.sent.is_empty()) {
                    if tools::declared_input(&arguments).is_none() {
                        item["input"] = json!(custom.sent);
                    }
                }
                item
            }
        };
        self.output.push(item);
    }

    /// Events for one canonical chunk (`{model?, choices: [{index, delta, finish_reason}]}`);
    /// only the choice with index 0 is rendered.
    pub fn chunk(&mut self, chunk: &Value) -> Vec<Event> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        if let Some(model) = chunk
            .get("model")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
        {
            self.model = model.to_owned();
        }
        let choices = chunk.get("choices").and_then(Value::as_array);
        let Some(choice) = choices.and_then(|c| {
            c.iter()
                .find(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0)
        }) else {
            return out;
        };
        let delta = choice.get("delta").unwrap_or(&Value::Null);

        let details: Vec<&Value> = delta
            .get("reasoning_details")
            .and_then(Value::as_array)
            .map(|d| d.iter().filter(|d| meaningful(d)).collect())
            .unwrap_or_default();
        let text = match delta.get("reasoning").and_then(Value::as_str) {
            Some(r) if !r.is_empty() => r.to_owned(),
            _ => details
                .iter()
                .filter_map(|d| {
                    d.get("text")
                        .or_else(|| d.get("summary"))
                        .and_then(Value::as_str)
                })
                .collect(),
        };
        if !text.is_empty() || !details.is_empty() {
            self.open_reasoning(&mut out);
            self.reasoning_delta(&text, &details, &mut out);
        }
        if let Some(text) = delta
            .get("content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            self.text_delta(PartKind::Text, text, &mut out);
        }
        if let Some(refusal) = delta
            .get("refusal")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            self.text_delta(PartKind::Refusal, refusal, &mut out);
        }
        for call in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.call_delta(call, &mut out);
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_owned());
            if reason == "error" {
                let error = choice.get("error").or_else(|| chunk.get("error"));
                let message = error
                    .and_then(|e| e.get("message"))
                    .and_then(Value::as_str)
                    .unwrap_or("The provider failed while answering");
                let status = error
                    .and_then(|e| e.get("code"))
                    .and_then(Value::as_u64)
                    .and_then(|c| u16::try_from(c).ok())
                    .unwrap_or(502);
                self.failure = Some((status, message.to_owned()));
            }
        }
        out
    }

    fn reasoning_delta(&mut self, text: &str, details: &[&Value], out: &mut Vec<Event>) {
        let index = self.output_index();
        let Some(Open::Reasoning {
            id,
            text: mut all,
            details: mut merged,
            summary_open,
        }) = self.open.take()
        else {
            return;
        };
        let mut summary_open = summary_open;
        if !text.is_empty() {
            if !summary_open {
                out.push(self.event(
                    "response.reasoning_summary_part.added",
                    json!({"item_id": id, "output_index": index, "summary_index": 0,
                           "part": {"type": "summary_text", "text": ""}}),
                ));
                summary_open = true;
            }
            out.push(self.event(
                "response.reasoning_summary_text.delta",
                json!({"item_id": id, "output_index": index, "summary_index": 0, "delta": text}),
            ));
            all.push_str(text);
        }
        for d in details {
            merge_detail(&mut merged, d);
        }
        self.open = Some(Open::Reasoning {
            id,
            text: all,
            details: merged,
            summary_open,
        });
    }

    fn text_delta(&mut self, kind: PartKind, piece: &str, out: &mut Vec<Event>) {
        self.open_part(kind, out);
        let index = self.output_index();
        let Some(Open::Message {
            id,
            parts,
            current: Some((_, text)),
        }) = &mut self.open
        else {
            return;
        };
        text.push_str(piece);
        let (id, content_index) = (id.clone(), parts.len());
        let event = match kind {
            PartKind::Text => self.event(
                "response.output_text.delta",
                json!({"item_id": id, "output_index": index, "content_index": content_index, "delta": piece, "logprobs": []}),
            ),
            PartKind::Refusal => self.event(
                "response.refusal.delta",
                json!({"item_id": id, "output_index": index, "content_index": content_index, "delta": piece}),
            ),
        };
        out.push(event);
    }

    fn call_delta(&mut self, call: &Value, out: &mut Vec<Event>) {
        let chat_index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
        let function = call.get("function");
        let arguments = function
            .and_then(|f| f.get("arguments"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let name = function
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if let Some(done) = self
            .finished_calls
            .iter_mut()
            .find(|c| c.chat_index == chat_index)
        {
            // Arguments for a call already closed (another item came in between): they still
            // belong to it, and the final response carries them whole.
            done.arguments.push_str(arguments);
            if let Some(item) = self.output.get_mut(done.position) {
                if item["type"] == "custom_tool_call" {
                    item["input"] = json!(tools::custom_input(&done.arguments));
                } else {
                    item["arguments"] = json!(done.arguments);
                }
            }
            return;
        }
        let same = matches!(&self.open, Some(Open::Call { index, .. }) if *index == chat_index);
        if !same {
            self.close("completed", out);
            let position = self.output_index();
            let tool = self.kinds.get(name).cloned();
            let id = item_id(call_prefix(tool.as_ref()), &self.ctx, position);
            let call_id = call
                .get("id")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .map_or_else(
                    || format!("call_{}_{chat_index}", self.ctx.id),
                    str::to_owned,
                );
            let item = call_item(CallItem {
                id: &id,
                call_id: &call_id,
                name,
                tool: tool.as_ref(),
                arguments: "",
                status: "in_progress",
            });
            self.add_item(item, out);
            let custom = tool
                .as_ref()
                .is_some_and(|t| t.custom)
                .then(CustomInput::default);
            self.open = Some(Open::Call {
                id,
                index: chat_index,
                call_id,
                name: name.to_owned(),
                arguments: String::new(),
                tool,
                custom,
            });
        }
        let index = self.output_index();
        let Some(Open::Call {
            id,
            name: open_name,
            arguments: all,
            custom,
            ..
        }) = &mut self.open
        else {
            return;
        };
        if open_name.is_empty() && !name.is_empty() {
            *open_name = name.to_owned();
        }
        if arguments.is_empty() {
            return;
        }
        all.push_str(arguments);
        let id = id.clone();
        let event = match custom {
            Some(custom) => {
                let piece = custom.stream.advance(all);
                custom.sent.push_str(&piece);
                ("response.custom_tool_call_input.delta", piece)
            }
            None => (
                "response.function_call_arguments.delta",
                arguments.to_owned(),
            ),
        };
        if !event.1.is_empty() {
            out.push(self.event(
                event.0,
                json!({"item_id": id, "output_index": index, "delta": event.1}),
            ));
        }
    }

    /// The closing events: the open item's done events, then `response.completed` (or
    /// `response.incomplete` when the answer was cut short) with the final canonical usage.
    /// `completed_at` is the Unix time the answer ended.
    pub fn finish(&mut self, usage: &Value, completed_at: u64) -> Vec<Event> {
        if self.ended {
            return Vec::new();
        }
        if let Some((status, message)) = self.failure.take() {
            return self.error(status, &message);
        }
        let (status, incomplete) = outcome(self.finish_reason.as_deref());
        let item_status = if status == "completed" {
            "completed"
        } else {
            "incomplete"
        };
        let mut out = Vec::new();
        self.close(item_status, &mut out);
        self.ended = true;
        let mut response = self.snapshot(
            status,
            self.output.clone(),
            Some(usage_from_chat(usage)),
            Some(completed_at),
        );
        response["incomplete_details"] = incomplete;
        let kind = if status == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        out.push(self.event(kind, json!({"response": response})));
        out
    }

    /// A failure after the stream started: an `error` event, then `response.failed` whose
    /// output holds what was produced (an unfinished item with status `incomplete`).
    pub fn error(&mut self, status: u16, message: &str) -> Vec<Event> {
        if self.ended {
            return Vec::new();
        }
        self.ended = true;
        self.abandon();
        let code = error_code(status);
        let mut out = vec![self.event(
            "error",
            json!({"code": code, "message": message, "param": Value::Null}),
        )];
        let mut response = self.snapshot("failed", self.output.clone(), None, None);
        response["error"] = json!({"code": code, "message": message});
        response["error_type"] = json!(error_type_for_status(status));
        out.push(self.event("response.failed", json!({"response": response})));
        out
    }
}
