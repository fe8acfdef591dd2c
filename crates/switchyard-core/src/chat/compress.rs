//! Middle-out compression (`transforms: ["middle-out"]`, the `context-compression` plugin): a
//! conversation longer than the model's context loses messages from its middle, where models
//! attend least, until it fits; the opening (system prompt and first request) and the latest
//! turn stay. A message that alone is too long has the middle of its text cut.
//!
//! Messages go in turns: a message with the tool results that follow it. A turn is removed
//! whole, so no tool result is left without the call it answers.

use super::{ChatRequest, Content, ContentPart, Message};

/// What compression removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compressed {
    /// Messages removed.
    pub messages: usize,
    /// Characters cut from the middle of messages left.
    pub chars: usize,
}

/// The marker left where the middle of a text was cut.
const CUT: &str = "\n[…]\n";

impl ChatRequest {
    /// Compresses the conversation until its estimated prompt fits in `budget` tokens.
    pub fn compress_middle(&mut self, budget: u64) -> Compressed {
        let mut done = Compressed::default();
        while self.estimated_prompt_tokens() > budget {
            let Some((start, end)) = self.middle_turn() else {
                break;
            };
            self.messages.drain(start..end);
            done.messages += end - start;
        }
        if self.estimated_prompt_tokens() > budget {
            let over = self.estimated_prompt_tokens() - budget;
            // Four characters a token, as the estimate counts.
            let chars = usize::try_from(over.saturating_mul(4)).unwrap_or(usize::MAX);
            done.chars = self.cut_longest_text(chars);
        }
        done
    }

    /// The turn in the middle of those that may go: neither the leading system messages, nor
    /// the first turn after them, nor the last.
    fn middle_turn(&self) -> Option<(usize, usize)> {
        let mut turns = Vec::new();
        let mut i = 0;
        while i < self.messages.len() {
            let start = i;
            i += 1;
            while i < self.messages.len() && matches!(self.messages[i], Message::Tool { .. }) {
                i += 1;
            }
            turns.push((start, i));
        }
        let leading = turns
            .iter()
            .take_while(|(s, _)| {
                matches!(
                    self.messages[*s],
                    Message::System { .. } | Message::Developer { .. }
                )
            })
            .count();
        // The first turn after the system prompt, and the last, are kept.
        let removable = turns.get(leading + 1..turns.len().saturating_sub(1))?;
        removable.get(removable.len() / 2).copied()
    }

    /// Cuts about `chars` characters from the middle of the longest text, returning how many.
    fn cut_longest_text(&mut self, chars: usize) -> usize {
        let mut longest: Option<&mut String> = None;
        for message in &mut self.messages {
            let content = match message {
                Message::System { content, .. }
                | Message::Developer { content, .. }
                | Message::User { content, .. }
                | Message::Tool { content, .. } => Some(content),
                Message::Assistant { content, .. } => content.as_mut(),
            };
            let texts: Vec<&mut String> = match content {
                Some(Content::Text(text)) => vec![text],
                Some(Content::Parts(parts)) => parts
                    .iter_mut()
                    .filter_map(|p| match p {
                        ContentPart::Text { text, .. } => Some(text),
                        _ => None,
                    })
                    .collect(),
                None => Vec::new(),
            };
            for text in texts {
                if longest.as_ref().is_none_or(|l| text.len() > l.len()) {
                    longest = Some(text);
                }
            }
        }
        let Some(text) = longest else {
            return 0;
        };
        let cut = (chars + CUT.len()).min(text.len());
        if cut < CUT.len() * 2 {
            return 0;
        }
        let mut start = (text.len() - cut) / 2;
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = start + cut;
        while !text.is_char_boundary(end) {
            end += 1;
        }
        text.replace_range(start..end, CUT);
        end - start
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::Compressed;
    use crate::chat::{ChatRequest, Message};

    fn request(messages: Value) -> ChatRequest {
        ChatRequest::from_value(json!({"messages": messages})).expect("valid")
    }

    fn texts(r: &ChatRequest) -> Vec<String> {
        r.messages
            .iter()
            .map(|m| m.content().map(|c| c.text()).unwrap_or_default())
            .collect()
    }

    #[test]
    fn removes_the_middle_and_keeps_both_ends() {
        let long = "w".repeat(4000);
        let mut messages = vec![json!({"role": "system", "content": "rules"})];
        for i in 0..10 {
            let role = if i % 2 == 0 { "user" } else { "assistant" };
            messages.push(json!({"role": role, "content": format!("{i}{long}")}));
        }
        let mut r = request(Value::Array(messages));
        let before = r.estimated_prompt_tokens();
        let done = r.compress_middle(before / 2);
        assert!(r.estimated_prompt_tokens() <= before / 2);
        assert!(done.messages >= 5, "{done:?}");
        let t = texts(&r);
        assert_eq!(t[0], "rules");
        assert!(t[1].starts_with('0'), "the first request stays");
        assert!(t[t.len() - 1].starts_with('9'), "the last turn stays");
        // A prompt that fits is left alone.
        let mut small = request(json!([{"role": "user", "content": "hi"}]));
        assert_eq!(small.compress_middle(1000), Compressed::default());
    }

    #[test]
    fn a_tool_result_goes_with_its_call() {
        let long = "w".repeat(4000);
        let mut r = request(json!([
            {"role": "user", "content": "start"},
            {"role": "assistant", "content": long, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "content": long, "tool_call_id": "c1"},
            {"role": "assistant", "content": long},
            {"role": "user", "content": "end"}
        ]));
        r.compress_middle(1100);
        let orphan = r.messages.iter().enumerate().any(|(i, m)| {
            matches!(m, Message::Tool { .. })
                && !matches!(
                    r.messages.get(i.wrapping_sub(1)),
                    Some(Message::Assistant {
                        tool_calls: Some(_),
                        ..
                    }) | Some(Message::Tool { .. })
                )
        });
        assert!(!orphan, "{:?}", texts(&r));
        assert_eq!(texts(&r).first().map(String::as_str), Some("start"));
        assert_eq!(texts(&r).last().map(String::as_str), Some("end"));
    }

    #[test]
    fn one_long_message_loses_the_middle_of_its_text() {
        let text = format!("BEGIN{}END", "é".repeat(20_000));
        let mut r = request(json!([{"role": "user", "content": text}]));
        let done = r.compress_middle(1000);
        assert!(done.chars > 0);
        assert!(
            r.estimated_prompt_tokens() <= 1000,
            "{}",
            r.estimated_prompt_tokens()
        );
        let t = texts(&r);
        assert!(t[0].starts_with("BEGIN") && t[0].ends_with("END") && t[0].contains("[…]"));
    }
}
