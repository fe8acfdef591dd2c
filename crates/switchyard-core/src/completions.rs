//! The canonical legacy completions request (`/completions`: a raw prompt, no conversation).
//!
//! A legacy request is carried as a chat request, one user message for each prompt, so that
//! routing, guardrails, credit holds and every chat-only endpoint treat it as they treat chat;
//! the fields chat has no place for are kept beside it. An endpoint whose catalogue entry says
//! `legacy_completions = true` gets the request in the legacy format instead
//! (`Codec::encode_completions` in `switchyard-providers`), prompts taken from those messages
//! (after any redaction).
//!
//! A request that uses a field only the legacy API can honour (`suffix`, `echo`, several
//! prompts, `n` or `best_of` above one) is routed to such endpoints only.

use serde::{Deserialize, Serialize};

use crate::chat::{ChatRequest, Content, Message};
use crate::routing::RouteRequest;

/// A parsed and validated legacy completions request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionsRequest {
    /// The request as chat: one user message with text content for each prompt, in order, and
    /// every parameter chat shares (`max_tokens`, `stop`, sampling, `logprobs` as
    /// `logprobs: true` and `top_logprobs`, routing fields).
    pub chat: ChatRequest,
    /// Text that follows the completion (fill in the middle).
    pub suffix: Option<String>,
    /// Return the prompt before the completion.
    pub echo: bool,
    /// Completions for each prompt.
    pub n: Option<u64>,
    /// Completions generated for each prompt server-side, the `n` best returned.
    pub best_of: Option<u64>,
    /// Log probabilities of the `logprobs` most likely tokens at each position (0 to 5).
    pub logprobs: Option<u8>,
}

impl CompletionsRequest {
    /// The prompts, in order: the text of each user message of [`CompletionsRequest::chat`].
    /// `None` when a message is not a user message with text content (never, for a request
    /// parsed from the wire).
    pub fn prompts(&self) -> Option<Vec<&str>> {
        self.chat
            .messages
            .iter()
            .map(|m| match m {
                Message::User {
                    content: Content::Text(text),
                    ..
                } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The first field only an endpoint serving the legacy API natively can honour, when the
    /// request uses one: `suffix`, `echo`, `prompt` (several prompts), `n` or `best_of`.
    pub fn needs_legacy_api(&self) -> Option<&'static str> {
        if self.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
            Some("suffix")
        } else if self.echo {
            Some("echo")
        } else if self.chat.messages.len() > 1 {
            Some("prompt")
        } else if self.n.is_some_and(|n| n > 1) {
            Some("n")
        } else if self.best_of.is_some_and(|n| n > 1) {
            Some("best_of")
        } else {
            None
        }
    }

    /// The routing view: the chat request's, restricted to endpoints serving the legacy API
    /// when [`CompletionsRequest::needs_legacy_api`] names a field.
    pub fn route_request(&self) -> RouteRequest<'_> {
        RouteRequest {
            legacy_completions: self.needs_legacy_api(),
            ..RouteRequest::chat(&self.chat)
        }
    }

    /// How many completions the request can produce (prompts times the larger of `n` and
    /// `best_of`): a credit hold covers `max_tokens` for each.
    pub fn generations(&self) -> u64 {
        let per_prompt = self.n.unwrap_or(1).max(self.best_of.unwrap_or(1)).max(1);
        (self.chat.messages.len().max(1) as u64).saturating_mul(per_prompt)
    }

    /// Calls `f` on every text sent upstream (the prompts and the suffix), for guardrail
    /// screening and redaction.
    pub fn for_each_text(&mut self, mut f: impl FnMut(&mut String)) {
        crate::guard::for_each_text(&mut self.chat, &mut f);
        if let Some(suffix) = &mut self.suffix {
            f(suffix);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(prompts: &[&str]) -> CompletionsRequest {
        let messages: Vec<_> = prompts
            .iter()
            .map(|p| json!({"role": "user", "content": p}))
            .collect();
        CompletionsRequest {
            chat: ChatRequest::from_value(json!({"model": "a/b", "messages": messages}))
                .expect("chat"),
            suffix: None,
            echo: false,
            n: None,
            best_of: None,
            logprobs: None,
        }
    }

    #[test]
    fn legacy_only_fields_are_named() {
        type Edit = fn(&mut CompletionsRequest);
        let cases: [(&[&str], Edit, Option<&str>, u64); 8] = [
            (&["a"], |_| {}, None, 1),
            (&["a"], |r| r.suffix = Some(String::new()), None, 1),
            (&["a"], |r| r.suffix = Some("}".into()), Some("suffix"), 1),
            (&["a"], |r| r.echo = true, Some("echo"), 1),
            (&["a", "b"], |_| {}, Some("prompt"), 2),
            (&["a"], |r| r.n = Some(1), None, 1),
            (&["a", "b"], |r| r.n = Some(3), Some("prompt"), 6),
            (
                &["a"],
                |r| {
                    r.n = Some(2);
                    r.best_of = Some(5);
                },
                Some("n"),
                5,
            ),
        ];
        for (prompts, edit, field, generations) in cases {
            let mut r = request(prompts);
            edit(&mut r);
            assert_eq!(r.needs_legacy_api(), field, "{r:?}");
            assert_eq!(r.route_request().legacy_completions, field);
            assert_eq!(r.generations(), generations, "{r:?}");
            assert_eq!(r.prompts(), Some(prompts.to_vec()));
        }
        let mut r = request(&["a"]);
        r.best_of = Some(2);
        assert_eq!(r.needs_legacy_api(), Some("best_of"));
    }

    #[test]
    fn screening_visits_prompts_and_suffix() {
        let mut r = request(&["one", "two"]);
        r.suffix = Some("three".into());
        let mut seen = Vec::new();
        r.for_each_text(|t| {
            seen.push(t.clone());
            t.make_ascii_uppercase();
        });
        assert_eq!(seen, ["one", "two", "three"]);
        assert_eq!(r.prompts(), Some(vec!["ONE", "TWO"]));
        assert_eq!(r.suffix.as_deref(), Some("THREE"));
    }
}
