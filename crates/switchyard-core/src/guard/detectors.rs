//! Content detectors: each returns the byte spans of what it finds in a text.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// A byte range `[start, end)` of a text, on UTF-8 character boundaries.
pub type Span = (usize, usize);

/// What a content rule does with a match; ordered by strength (`Flag < Redact < Block`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Record it (audit) and let the request through.
    Flag,
    /// Replace the match before anything leaves the gateway.
    Redact,
    /// Refuse the request (403).
    Block,
}

/// A built-in detector, by the contract's slug (the wire shape of `content_filter_builtins`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuiltinFilter {
    /// `email`, `phone`, `ssn`, `credit-card`, `ip-address`, `secrets`, `regex-prompt-injection`.
    pub slug: String,
    /// What to do.
    pub action: Action,
    /// Replacement text for `redact` (default `[REDACTED:<slug>]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// An operator's regular expression (the wire shape of `content_filters`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomFilter {
    /// The pattern (Rust `regex` syntax: no look-around, no back-references).
    pub pattern: String,
    /// What to do.
    pub action: Action,
    /// Replacement text for `redact` (default `[REDACTED]`), and the rule's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// Built-in detector slugs.
pub const BUILTINS: &[&str] = &[
    "email",
    "phone",
    "ssn",
    "credit-card",
    "ip-address",
    "secrets",
    "regex-prompt-injection",
];

/// The longest custom label the contract accepts.
pub const MAX_LABEL_CHARS: usize = 100;

/// A built-in detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Builtin {
    /// E-mail addresses.
    Email,
    /// Phone numbers (international and US formats, nine digits or more).
    Phone,
    /// US social security numbers.
    Ssn,
    /// Luhn-valid card numbers.
    CreditCard,
    /// IPv4 and IPv6 addresses.
    IpAddress,
    /// API keys, bearer tokens, private keys.
    Secrets,
    /// Common prompt-injection phrasings.
    PromptInjection,
}

impl Builtin {
    /// Every built-in detector.
    pub const ALL: [Builtin; 7] = [
        Builtin::Email,
        Builtin::Phone,
        Builtin::Ssn,
        Builtin::CreditCard,
        Builtin::IpAddress,
        Builtin::Secrets,
        Builtin::PromptInjection,
    ];

    /// The contract's slug.
    pub fn slug(self) -> &'static str {
        match self {
            Builtin::Email => "email",
            Builtin::Phone => "phone",
            Builtin::Ssn => "ssn",
            Builtin::CreditCard => "credit-card",
            Builtin::IpAddress => "ip-address",
            Builtin::Secrets => "secrets",
            Builtin::PromptInjection => "regex-prompt-injection",
        }
    }

    /// The detector named by a slug.
    pub fn from_slug(slug: &str) -> Option<Builtin> {
        Builtin::ALL.into_iter().find(|b| b.slug() == slug)
    }

    /// Byte spans of this detector's matches in `text`, in order, not overlapping.
    pub fn spans(self, text: &str) -> Vec<Span> {
        match self {
            Builtin::Email => email(text),
            Builtin::Phone => phone(text),
            Builtin::Ssn => us_ssn(text),
            Builtin::CreditCard => card(text),
            Builtin::IpAddress => ip(text),
            Builtin::Secrets => secret(text),
            Builtin::PromptInjection => prompt_injection(text),
        }
    }
}

fn re(cell: &'static OnceLock<Option<Regex>>, pattern: &str) -> Option<&'static Regex> {
    cell.get_or_init(|| Regex::new(pattern).ok()).as_ref()
}

macro_rules! detector {
    ($name:ident, $pattern:expr) => {
        fn $name() -> Option<&'static Regex> {
            static CELL: OnceLock<Option<Regex>> = OnceLock::new();
            re(&CELL, $pattern)
        }
    };
}

detector!(
    email_re,
    r"(?i)\b[a-z0-9._%+-]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\.[a-z]{2,}\b"
);
detector!(
    phone_re,
    r"(?:\+[0-9]{1,3}[ .-]?|\b1[ .-])?(?:\([0-9]{2,4}\)[ .-]?|\b[0-9]{2,4}[ .-])[0-9]{3,4}[ .-][0-9]{3,4}\b|\+[1-9][0-9]{7,14}\b"
);
detector!(ssn_re, r"\b([0-9]{3})-([0-9]{2})-([0-9]{4})\b");
detector!(digit_run_re, r"\b[0-9](?:[ -]?[0-9])*\b");
detector!(
    ipv4_re,
    r"\b[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\b"
);
detector!(
    ipv6_re,
    r"(?i)(?:[0-9a-f]{0,4}:){2,7}(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9a-f]{0,4})"
);
detector!(
    secret_re,
    concat!(
        r"sk-or-v1-[0-9a-f]{64}",
        r"|\bsk-(?:proj-|ant-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",
        r"|\b(?:AKIA|ASIA)[A-Z0-9]{16}\b",
        r"|\bgh[pousr]_[A-Za-z0-9]{36,}\b",
        r"|\bxox[abprs]-[A-Za-z0-9-]{10,}",
        r"|\bAIza[0-9A-Za-z_-]{35}",
        r"|\b(?i:bearer)\s+[A-Za-z0-9._~+/=-]{16,}",
        r"|-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----|[A-Za-z0-9+/=:\s-]*)"
    )
);
detector!(
    injection_re,
    r"(?i)\b(?:ignore|disregard|forget)\s+(?:all\s+|any\s+)?(?:the\s+|your\s+)?(?:previous|prior|above|earlier)\s+(?:instructions|prompts|rules)\b|\bsystem\s+prompt\s*:|\byou\s+are\s+now\s+(?:DAN|in\s+developer\s+mode)\b"
);

fn find(r: Option<&Regex>, text: &str) -> Vec<Span> {
    r.map(|r| r.find_iter(text).map(|m| (m.start(), m.end())).collect())
        .unwrap_or_default()
}

/// The character just before byte `at`, and the one before it.
fn before(text: &str, at: usize) -> (Option<char>, Option<char>) {
    let mut it = text[..at].chars().rev();
    (it.next(), it.next())
}

/// The character at byte `at`, and the one after it.
fn after(text: &str, at: usize) -> (Option<char>, Option<char>) {
    let mut it = text[at..].chars();
    (it.next(), it.next())
}

/// Whether a span continues a longer dotted or dashed number (`1.2.3.4.5`, `12-345-67-8901`).
fn continues_number(text: &str, (s, e): Span, separators: &[char]) -> bool {
    let digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
    let sep = |c: Option<char>| c.is_some_and(|c| separators.contains(&c));
    let (b1, b2) = before(text, s);
    let (a1, a2) = after(text, e);
    (sep(b1) && digit(b2)) || (sep(a1) && digit(a2))
}

/// E-mail addresses.
pub fn email(text: &str) -> Vec<Span> {
    find(email_re(), text)
}

/// Phone numbers: `+44 20 7946 0958`, `+14155550132`, `(415) 555-0132`, `415.555.0132`,
/// `1-415-555-0132`. Numbers of fewer than nine digits, or that continue a longer dotted or
/// dashed number (an IP address, a card), are not phone numbers.
pub fn phone(text: &str) -> Vec<Span> {
    find(phone_re(), text)
        .into_iter()
        .filter(|&(s, e)| {
            let digits = text[s..e].chars().filter(char::is_ascii_digit).count();
            (9..=15).contains(&digits) && !continues_number(text, (s, e), &['.', '-'])
        })
        .collect()
}

/// US social security numbers `AAA-GG-SSSS`, without the ranges never issued (area `000`,
/// `666`, `9xx`; group `00`; serial `0000`).
pub fn us_ssn(text: &str) -> Vec<Span> {
    let Some(r) = ssn_re() else {
        return Vec::new();
    };
    r.captures_iter(text)
        .filter(|c| valid_ssn(&c[1], &c[2], &c[3]))
        .filter_map(|c| c.get(0).map(|m| (m.start(), m.end())))
        .filter(|&span| !continues_number(text, span, &['-', '.']))
        .collect()
}

fn valid_ssn(area: &str, group: &str, serial: &str) -> bool {
    area != "000" && area != "666" && !area.starts_with('9') && group != "00" && serial != "0000"
}

/// Luhn checksum over the digits of `text` (13 to 19 of them).
pub fn luhn(text: &str) -> bool {
    let digits: Vec<u32> = text.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() < 13 || digits.len() > 19 {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Card numbers: 13 to 19 digits, written together or in groups of 3 to 6 separated by single
/// spaces or dashes, whose Luhn checksum holds. Inside a longer run of grouped digits the
/// leftmost longest valid run of whole groups is taken (`ref 12 4111 1111 1111 1111` finds the
/// card); an unbroken run of digits is a card only as a whole.
pub fn card(text: &str) -> Vec<Span> {
    let mut out = Vec::new();
    for (s, e) in find(digit_run_re(), text) {
        // Groups of digits, as byte spans.
        let mut groups: Vec<Span> = Vec::new();
        let mut start = s;
        for (i, c) in text[s..e].char_indices() {
            if c == ' ' || c == '-' {
                groups.push((start, s + i));
                start = s + i + 1;
            }
        }
        groups.push((start, e));
        let len = |g: &Span| g.1 - g.0;
        if groups.len() == 1 {
            if luhn(&text[s..e]) {
                out.push((s, e));
            }
            continue;
        }
        let mut i = 0;
        while i < groups.len() {
            let mut found = None;
            let mut digits = 0;
            for j in i..groups.len() {
                if !(3..=6).contains(&len(&groups[j])) {
                    break;
                }
                digits += len(&groups[j]);
                if digits > 19 {
                    break;
                }
                if j > i && digits >= 13 && luhn(&text[groups[i].0..groups[j].1]) {
                    found = Some(j);
                }
            }
            match found {
                Some(j) => {
                    out.push((groups[i].0, groups[j].1));
                    i = j + 1;
                }
                None => i += 1,
            }
        }
    }
    out
}

/// IPv4 addresses (every octet at most 255, no leading zeros, not part of a longer dotted
/// number) and IPv6 addresses (every form `std::net::Ipv6Addr` accepts: full, compressed,
/// IPv4-embedded; at least one digit, so that `a::b` is not an address).
pub fn ip(text: &str) -> Vec<Span> {
    let mut out: Vec<Span> = find(ipv4_re(), text)
        .into_iter()
        .filter(|&(s, e)| {
            text[s..e].parse::<Ipv4Addr>().is_ok() && !continues_number(text, (s, e), &['.'])
        })
        .collect();
    let mut v6 = Vec::new();
    let v6_char = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == ':');
    for (s, e) in find(ipv6_re(), text) {
        let (b1, _) = before(text, s);
        let (a1, a2) = after(text, e);
        let dotted_tail = a1 == Some('.') && a2.is_some_and(|c| c.is_ascii_digit());
        if v6_char(b1) || v6_char(a1) || dotted_tail {
            continue;
        }
        // A digit is required: `a::b` is a valid address but far more often a path.
        let candidate = &text[s..e];
        if candidate.parse::<Ipv6Addr>().is_ok() && candidate.chars().any(|c| c.is_ascii_digit()) {
            v6.push((s, e));
        }
    }
    // An IPv4-embedded IPv6 address is one address. The IPv6 matches are disjoint and in
    // order, so the one that could contain a span is the last starting at or before it.
    out.retain(|&(s, e)| {
        let before = v6.partition_point(|&(s6, _)| s6 <= s);
        !(before > 0 && e <= v6[before - 1].1)
    });
    out.extend(v6);
    out.sort_unstable();
    out
}

/// Secrets: OpenRouter keys (`sk-or-v1-` and 64 hex digits), OpenAI and Anthropic style keys
/// (`sk-…`, `sk-proj-…`, `sk-ant-…`), AWS access key ids (`AKIA`/`ASIA` and 16 upper-case
/// letters or digits), GitHub and Slack tokens, Google API keys, `Bearer <token>` values, and
/// PEM private-key blocks (to the end of the base64 body when the END line is missing).
pub fn secret(text: &str) -> Vec<Span> {
    find(secret_re(), text)
}

/// Common prompt-injection phrasings ("ignore all previous instructions", …).
pub fn prompt_injection(text: &str) -> Vec<Span> {
    find(injection_re(), text)
}

/// Byte spans of a built-in detector's matches, by slug (none for an unknown slug).
pub fn detect(slug: &str, text: &str) -> Vec<Span> {
    Builtin::from_slug(slug)
        .map(|b| b.spans(text))
        .unwrap_or_default()
}
