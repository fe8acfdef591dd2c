//! Applying content rules to every text a request would send upstream.

use serde_json::Value;

use super::detectors::Action;
use super::rules::{scan_text, Finding, Rule};
use crate::chat::{ChatRequest, Content, ContentPart, Message};

/// The outcome of applying content filters to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screening {
    /// A block rule matched.
    Blocked {
        /// The guardrail the rule comes from (empty when not known).
        guardrail: String,
        /// The rule.
        rule: String,
        /// Everything found.
        findings: Vec<Finding>,
    },
    /// The request may go (possibly redacted).
    Allowed {
        /// Everything found (flags and redactions).
        findings: Vec<Finding>,
        /// Whether anything was replaced.
        redacted: bool,
    },
}

fn visit_content(content: &mut Content, f: &mut dyn FnMut(&mut String)) {
    match content {
        Content::Text(t) => f(t),
        Content::Parts(parts) => {
            for p in parts {
                if let ContentPart::Text { text, .. } = p {
                    f(text);
                }
            }
        }
    }
}

/// Every string leaf of a JSON value (object keys excluded).
fn visit_json(value: &mut Value, f: &mut dyn FnMut(&mut String)) {
    match value {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter_mut().for_each(|v| visit_json(v, f)),
        Value::Object(map) => map.values_mut().for_each(|v| visit_json(v, f)),
        _ => {}
    }
}

/// The readable text of a reasoning detail (`text`, `summary`), not its signature or
/// encrypted data.
fn visit_reasoning_detail(value: &mut Value, f: &mut dyn FnMut(&mut String)) {
    if let Value::Object(map) = value {
        for (k, v) in map.iter_mut() {
            if k == "text" || k == "summary" {
                visit_json(v, f);
            }
        }
    }
}

/// Calls `f` on every text the request would send upstream: the content of every message of
/// every role (strings and text parts; system and developer prompts included), assistant
/// refusals, reasoning text and tool-call arguments, tool results, tool definitions
/// (descriptions and parameter schemas) and the predicted output.
///
/// Not visited: identifiers (model, tool and participant names, `user`, `session_id`), stop
/// sequences, binary parts (images, audio, files) and gateway-only fields.
pub fn for_each_text(request: &mut ChatRequest, mut f: impl FnMut(&mut String)) {
    let f: &mut dyn FnMut(&mut String) = &mut f;
    for message in &mut request.messages {
        match message {
            Message::System { content, .. }
            | Message::Developer { content, .. }
            | Message::User { content, .. }
            | Message::Tool { content, .. } => visit_content(content, f),
            Message::Assistant {
                content,
                tool_calls,
                reasoning,
                reasoning_details,
                refusal,
                ..
            } => {
                if let Some(c) = content {
                    visit_content(c, f);
                }
                for call in tool_calls.iter_mut().flatten() {
                    f(&mut call.function.arguments);
                }
                if let Some(r) = reasoning {
                    f(r);
                }
                for d in reasoning_details.iter_mut().flatten() {
                    visit_reasoning_detail(d, f);
                }
                if let Some(r) = refusal {
                    f(r);
                }
            }
        }
    }
    for tool in request.tools.iter_mut().flatten() {
        if let Some(function) = &mut tool.function {
            if let Some(d) = &mut function.description {
                f(d);
            }
            if let Some(p) = &mut function.parameters {
                visit_json(p, f);
            }
        }
    }
    if let Some(p) = &mut request.prediction {
        visit_json(p, f);
    }
}

/// Applies content rules to every text the request would send upstream ([`for_each_text`]),
/// redacting in place. A block match anywhere blocks the request (block wins over redact).
pub fn screen(request: &mut ChatRequest, rules: &[Rule]) -> Screening {
    if rules.is_empty() {
        return Screening::Allowed {
            findings: Vec::new(),
            redacted: false,
        };
    }
    let mut findings = Vec::new();
    let mut redacted = false;
    for_each_text(request, |text| {
        if let Some(new) = scan_text(text, rules, &mut findings) {
            *text = new;
            redacted = true;
        }
    });
    let blocked = findings
        .iter()
        .find(|f| f.action == Action::Block)
        .map(|f| (f.guardrail.clone(), f.rule.clone()));
    match blocked {
        Some((guardrail, rule)) => Screening::Blocked {
            guardrail,
            rule,
            findings,
        },
        None => Screening::Allowed { findings, redacted },
    }
}
