//! The streamed answer (`alt=sse`): each chunk's first candidate as a contract chunk.

use serde_json::{json, Value};

use super::decode::{self, logprobs, parse_usage, Decoded};
use crate::sse::SseParser;
use crate::{StreamDecoder, StreamEvent};

#[derive(Default)]
pub(super) struct GeminiStream {
    parser: SseParser,
    decoded: Decoded,
    started: bool,
    finished: bool,
}

impl GeminiStream {
    fn events(&mut self, events: Vec<crate::sse::SseEvent>) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        for event in events {
            let data = event.data.trim();
            if data.is_empty() {
                continue;
            }
            let value = match crate::stream_json(data, "Gemini sent an invalid stream chunk") {
                Ok(v) => v,
                Err(e) => {
                    out.push(e);
                    continue;
                }
            };
            if let Some(error) = value.get("error") {
                let status = error
                    .get("code")
                    .and_then(Value::as_u64)
                    .and_then(|c| u16::try_from(c).ok())
                    .filter(|s| (400..600).contains(s))
                    .unwrap_or(502);
                out.push(StreamEvent::Error(decode::error(status, data.as_bytes())));
                continue;
            }
            let (mut delta, finish) = self.decoded.candidate(&value);
            if !self.started {
                self.started = true;
                delta["role"] = json!("assistant");
            }
            let mut choice = json!({"index": 0, "delta": delta, "finish_reason": Value::Null, "native_finish_reason": Value::Null});
            if let Some(lp) = logprobs(&value) {
                choice["logprobs"] = lp;
            }
            if let Some((reason, native)) = finish {
                self.finished = true;
                choice["finish_reason"] = json!(reason);
                choice["native_finish_reason"] = json!(native);
            }
            out.push(StreamEvent::Chunk {
                upstream_id: value
                    .get("responseId")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                choices: vec![choice],
                usage: value.get("usageMetadata").map(parse_usage),
            });
        }
        out
    }
}

impl StreamDecoder for GeminiStream {
    fn feed(&mut self, bytes: &[u8]) -> Vec<StreamEvent> {
        let events = self.parser.feed(bytes);
        self.events(events)
    }

    fn finish(&mut self) -> Vec<StreamEvent> {
        let events = self.parser.finish();
        let mut out = self.events(events);
        // Gemini ends a stream by closing it; a stream that never finished is left to the
        // engine, which reports it as cut.
        if self.finished {
            out.push(StreamEvent::Done);
        }
        out
    }
}
