//! Content rules: compiling filters, scanning a text, redacting matches, findings.

use regex::Regex;
use serde::Serialize;

use super::detectors::{
    Action, Builtin, BuiltinFilter, CustomFilter, Span, BUILTINS, MAX_LABEL_CHARS,
};

/// What a rule looks for.
#[derive(Debug, Clone)]
pub enum Detector {
    /// A built-in detector.
    Builtin(Builtin),
    /// An operator's regular expression, compiled.
    Custom(Regex),
}

impl Detector {
    /// The kind written to the audit record: the built-in slug, or `custom`.
    pub fn kind(&self) -> &'static str {
        match self {
            Detector::Builtin(b) => b.slug(),
            Detector::Custom(_) => "custom",
        }
    }

    /// Byte spans of the matches in `text` (empty matches of custom patterns are ignored).
    pub fn spans(&self, text: &str) -> Vec<Span> {
        match self {
            Detector::Builtin(b) => b.spans(text),
            Detector::Custom(r) => r
                .find_iter(text)
                .filter(|m| m.end() > m.start())
                .map(|m| (m.start(), m.end()))
                .collect(),
        }
    }

    /// Identity used to merge the same detector from several guardrails.
    pub(super) fn key(&self) -> String {
        match self {
            Detector::Builtin(b) => format!("builtin:{}", b.slug()),
            Detector::Custom(r) => format!("custom:{}", r.as_str()),
        }
    }
}

/// One compiled content rule.
#[derive(Debug, Clone)]
pub struct ContentRule {
    /// Name shown in errors and the audit record (the slug, or the label / pattern).
    pub name: String,
    /// What it looks for.
    pub detector: Detector,
    /// What to do.
    pub action: Action,
    /// Placeholder written over a redacted match.
    pub replacement: String,
    /// The guardrail the rule comes from (empty when not known).
    pub guardrail: String,
}

/// The former name of [`ContentRule`].
pub type Rule = ContentRule;

impl ContentRule {
    /// A built-in rule named by its slug, with the placeholder `[REDACTED:<slug>]`.
    pub fn builtin(kind: Builtin, action: Action) -> Self {
        ContentRule {
            name: kind.slug().to_owned(),
            detector: Detector::Builtin(kind),
            action,
            replacement: format!("[REDACTED:{}]", kind.slug()),
            guardrail: String::new(),
        }
    }

    /// A custom rule; an invalid pattern is an error naming the rule. The placeholder is
    /// `[REDACTED:<name>]`.
    pub fn custom(name: &str, pattern: &str, action: Action) -> Result<Self, String> {
        let regex = compile_pattern(pattern)
            .map_err(|e| format!("content rule {name:?}: invalid regular expression: {e}"))?;
        Ok(ContentRule {
            name: name.to_owned(),
            detector: Detector::Custom(regex),
            action,
            replacement: format!("[REDACTED:{name}]"),
            guardrail: String::new(),
        })
    }

    /// Byte spans of this rule's matches.
    pub fn spans(&self, text: &str) -> Vec<Span> {
        self.detector.spans(text)
    }
}

fn compile_pattern(pattern: &str) -> Result<Regex, String> {
    if pattern.is_empty() {
        return Err("the pattern is empty".to_owned());
    }
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| e.to_string())
}

/// Compiles a guardrail's content filters; an unknown slug or invalid pattern is an error that
/// names it.
pub fn compile(builtins: &[BuiltinFilter], custom: &[CustomFilter]) -> Result<Vec<Rule>, String> {
    let mut rules = Vec::new();
    for b in builtins {
        let Some(kind) = Builtin::from_slug(&b.slug) else {
            return Err(format!(
                "content_filter_builtins: {:?} is not a supported detector (supported: {})",
                b.slug,
                BUILTINS.join(", ")
            ));
        };
        let mut rule = ContentRule::builtin(kind, b.action);
        if let Some(label) = &b.label {
            rule.replacement.clone_from(label);
        }
        rules.push(rule);
    }
    for (i, c) in custom.iter().enumerate() {
        if let Some(label) = &c.label {
            if label.chars().count() > MAX_LABEL_CHARS {
                return Err(format!(
                    "content_filters[{i}].label is longer than {MAX_LABEL_CHARS} characters"
                ));
            }
        }
        let name = c.label.clone().unwrap_or_else(|| c.pattern.clone());
        let regex = compile_pattern(&c.pattern).map_err(|e| {
            format!("content_filters[{i}] ({name:?}): the pattern is not a valid regular expression: {e}")
        })?;
        rules.push(ContentRule {
            name,
            detector: Detector::Custom(regex),
            action: c.action,
            replacement: c.label.clone().unwrap_or_else(|| "[REDACTED]".to_owned()),
            guardrail: String::new(),
        });
    }
    Ok(rules)
}

/// One match of one rule in one text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Rule name.
    pub rule: String,
    /// Detector kind (`email`, …, `custom`).
    pub kind: &'static str,
    /// The rule's action.
    pub action: Action,
    /// The guardrail the rule comes from.
    pub guardrail: String,
    /// Where the match is.
    pub span: Span,
    /// What redaction writes over it.
    pub replacement: String,
}

/// Every match of a set of rules in one text, in rule order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// The matches.
    pub hits: Vec<Hit>,
}

impl Findings {
    /// Nothing matched.
    pub fn is_empty(&self) -> bool {
        self.hits.is_empty()
    }

    /// The first match of a block rule.
    pub fn blocking(&self) -> Option<&Hit> {
        self.hits.iter().find(|h| h.action == Action::Block)
    }

    /// Only the matches of redact rules (what [`redact`] should replace).
    pub fn redactions(&self) -> Findings {
        Findings {
            hits: self
                .hits
                .iter()
                .filter(|h| h.action == Action::Redact)
                .cloned()
                .collect(),
        }
    }

    /// The audit summary: one [`Finding`] per rule with its count, no matched text.
    pub fn summary(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        for h in &self.hits {
            add_finding(&mut out, h, 1);
        }
        out
    }
}

/// Every match of every rule in `text`.
pub fn scan(text: &str, rules: &[ContentRule]) -> Findings {
    let mut hits = Vec::new();
    for rule in rules {
        for span in rule.spans(text) {
            hits.push(Hit {
                rule: rule.name.clone(),
                kind: rule.detector.kind(),
                action: rule.action,
                guardrail: rule.guardrail.clone(),
                span,
                replacement: rule.replacement.clone(),
            });
        }
    }
    Findings { hits }
}

/// Replaces every span in `findings` with its placeholder. Overlapping spans merge into one (the placeholder of the span starting first, the longest on a tie). Spans
/// outside the text or off character boundaries are ignored.
pub fn redact(text: &str, findings: &Findings) -> String {
    let mut spans: Vec<(usize, usize, &str)> = findings
        .hits
        .iter()
        .filter(|h| {
            let (s, e) = h.span;
            s < e && text.get(s..e).is_some()
        })
        .map(|h| (h.span.0, h.span.1, h.replacement.as_str()))
        .collect();
    spans.sort_by_key(|&(s, e, _)| (s, std::cmp::Reverse(e)));
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let mut i = 0;
    while i < spans.len() {
        let (start, mut end, label) = spans[i];
        i += 1;
        while i < spans.len() && spans[i].0 < end {
            end = end.max(spans[i].1);
            i += 1;
        }
        out.push_str(&text[at..start]);
        out.push_str(label);
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

/// One rule that matched, for the audit record: never the matched text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Rule name.
    pub rule: String,
    /// Detector kind (`email`, …, `custom`).
    pub kind: String,
    /// Its action.
    pub action: Action,
    /// Matches found.
    pub count: usize,
    /// The guardrail the rule comes from.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub guardrail: String,
}

fn add_finding(findings: &mut Vec<Finding>, hit: &Hit, count: usize) {
    if count == 0 {
        return;
    }
    match findings
        .iter_mut()
        .find(|f| f.rule == hit.rule && f.guardrail == hit.guardrail)
    {
        Some(f) => f.count += count,
        None => findings.push(Finding {
            rule: hit.rule.clone(),
            kind: hit.kind.to_owned(),
            action: hit.action,
            count,
            guardrail: hit.guardrail.clone(),
        }),
    }
}

/// Redaction rounds at most: a later round only runs when replacing matches made a new one
/// appear (a phone number that looked like part of a longer number, say).
const REDACTION_ROUNDS: usize = 4;

/// Scans a text: adds what matched to `findings` and returns the text with every redact match
/// replaced (`None` when nothing was replaced).
pub fn scan_text(text: &str, rules: &[Rule], findings: &mut Vec<Finding>) -> Option<String> {
    let first = scan(text, rules);
    for h in &first.hits {
        add_finding(findings, h, 1);
    }
    let redactions = first.redactions();
    if redactions.is_empty() {
        return None;
    }
    let mut out = redact(text, &redactions);
    if first.blocking().is_some() {
        return Some(out);
    }
    let redact_rules: Vec<ContentRule> = rules
        .iter()
        .filter(|r| r.action == Action::Redact)
        .cloned()
        .collect();
    for _ in 1..REDACTION_ROUNDS {
        let again = scan(&out, &redact_rules);
        if again.is_empty() {
            break;
        }
        for h in &again.hits {
            add_finding(findings, h, 1);
        }
        out = redact(&out, &again);
    }
    Some(out)
}
