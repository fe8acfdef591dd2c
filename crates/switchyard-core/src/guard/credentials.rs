//! Credentials in text the gateway did not write (an upstream's error body echoing the request's
//! headers): found and replaced before the text reaches a client or the audit chain.

use std::sync::OnceLock;

use regex::Regex;

use super::detectors::{secret, Action, Span};
use super::rules::{redact, Findings, Hit};

/// What [`redact_credentials`] writes over a credential.
pub const CREDENTIAL_PLACEHOLDER: &str = "[REDACTED]";

/// Known secrets shorter than this are not looked for (they would match ordinary words).
pub const MIN_SECRET_CHARS: usize = 8;

/// A text ending in this many first characters of a known secret, or more, loses them.
const MIN_SECRET_TAIL: usize = 6;

/// Anything named like a credential, and its value.
fn credential_field_re() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r#"(?i)\b(?:x-api-key|x-goog-api-key|api[-_]?key|access[-_]?token|(?:proxy-)?authorization)(?:\\?["'])?\s*[:=]\s*(?:\\?["'])?((?:(?:bearer|basic|token)\s+)?[^\s"'\\,;}\]]+)"#).ok())
        .as_ref()
}

/// `text` with every credential in it replaced by [`CREDENTIAL_PLACEHOLDER`]: each of `known`
/// (the gateway's own secrets; those shorter than [`MIN_SECRET_CHARS`] are not looked for),
/// everything the [`secret`] detector finds (`sk-…`, `Bearer …`, `AIza…` and the rest), and the
/// value of anything named like a credential (`x-api-key: …`, `"authorization": "…"`,
/// `api_key=…`). A text that ends in the first characters of a known secret (an excerpt cut
/// inside it) loses them too.
pub fn redact_credentials(text: &str, known: &[&str]) -> String {
    let mut spans: Vec<Span> = secret(text);
    if let Some(r) = credential_field_re() {
        spans.extend(
            r.captures_iter(text)
                .filter_map(|c| c.get(1))
                .map(|m| (m.start(), m.end())),
        );
    }
    for secret in known
        .iter()
        .filter(|s| s.chars().count() >= MIN_SECRET_CHARS)
    {
        spans.extend(text.match_indices(secret).map(|(at, s)| (at, at + s.len())));
        // The longest prefix of the secret the text ends with, if long enough.
        let tail = secret
            .char_indices()
            .map(|(i, _)| i)
            .skip(MIN_SECRET_TAIL)
            .filter(|&i| text.ends_with(&secret[..i]))
            .last();
        if let Some(len) = tail {
            spans.push((text.len() - len, text.len()));
        }
    }
    if spans.is_empty() {
        return text.to_owned();
    }
    let findings = Findings {
        hits: spans
            .into_iter()
            .map(|span| Hit {
                rule: String::new(),
                kind: "secrets",
                action: Action::Redact,
                guardrail: String::new(),
                span,
                replacement: CREDENTIAL_PLACEHOLDER.to_owned(),
            })
            .collect(),
    };
    redact(text, &findings)
}
