//! Incremental Server-Sent Events framing (the `text/event-stream` format), shared by every codec.
//!
//! A hand-written parser rather than a crate: codecs are pure and synchronous, and the SSE
//! crates are built around async streams. This is the event-stream grammar only.

/// One SSE event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// `event:` field, if any.
    pub event: Option<String>,
    /// `data:` lines joined with `\n`.
    pub data: String,
}

/// Splits a byte stream into events; comments (`: ...`) and `id:`/`retry:` are dropped.
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: Vec<u8>,
    /// Bytes at the start of `buffer` already searched for a line end (an unfinished line is not
    /// searched again on every feed: a long line fed in small pieces stays linear).
    scanned: usize,
    event: Option<String>,
    data: Option<String>,
}

impl SseParser {
    /// A new parser.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; returns the events they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut start = 0;
        let mut from = self.scanned.min(self.buffer.len());
        while let Some(pos) = self.buffer[from..].iter().position(|&b| b == b'\n') {
            let end = from + pos;
            let mut line = &self.buffer[start..end];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let line = String::from_utf8_lossy(line).into_owned();
            start = end + 1;
            from = start;
            self.line(&line, &mut events);
        }
        self.buffer.drain(..start);
        self.scanned = self.buffer.len();
        events
    }

    /// The stream ended: flushes a last event not followed by a blank line.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        self.scanned = 0;
        if !self.buffer.is_empty() {
            let rest = String::from_utf8_lossy(&std::mem::take(&mut self.buffer)).into_owned();
            self.line(rest.trim_end_matches('\r'), &mut events);
        }
        self.line("", &mut events);
        events
    }

    fn line(&mut self, line: &str, events: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                events.push(SseEvent {
                    event: self.event.take(),
                    data,
                });
            }
            self.event = None;
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "event" => self.event = Some(value.to_owned()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_anywhere() {
        let stream = b": keep-alive\n\nevent: ping\ndata: {\"a\":1}\r\n\r\ndata: x\ndata: y\n\ndata: [DONE]\n\n";
        for split in 0..stream.len() {
            let mut parser = SseParser::new();
            let mut events = parser.feed(&stream[..split]);
            events.extend(parser.feed(&stream[split..]));
            events.extend(parser.finish());
            assert_eq!(
                events,
                vec![
                    SseEvent {
                        event: Some("ping".into()),
                        data: "{\"a\":1}".into()
                    },
                    SseEvent {
                        event: None,
                        data: "x\ny".into()
                    },
                    SseEvent {
                        event: None,
                        data: "[DONE]".into()
                    },
                ],
                "split at {split}"
            );
        }
    }

    #[test]
    fn a_line_fed_byte_by_byte_is_one_event() {
        let mut parser = SseParser::new();
        let line = format!("data: {}\n\n", "x".repeat(10_000));
        let mut events = Vec::new();
        for b in line.as_bytes() {
            events.extend(parser.feed(std::slice::from_ref(b)));
        }
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data.len(), 10_000);
    }

    #[test]
    fn finish_flushes_unterminated_event() {
        let mut parser = SseParser::new();
        assert!(parser.feed(b"data: last").is_empty());
        assert_eq!(
            parser.finish(),
            vec![SseEvent {
                event: None,
                data: "last".into()
            }]
        );
    }
}
