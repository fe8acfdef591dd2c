//! Moderation settings (an account's, or a guardrail's) and the pure parts of moderation: the
//! action for the categories a moderation provider marked, and reading its OpenAI-compatible
//! answer. The call itself is the server's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What to do about a category the moderation provider marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Audit only.
    Flag,
    /// Refuse the request (403 naming the categories).
    Block,
    /// Refuse it and count a strike against the end user.
    BlockAndStrike,
}

impl Action {
    /// The name in settings and audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Flag => "flag",
            Action::Block => "block",
            Action::BlockAndStrike => "block_and_strike",
        }
    }
}

/// What a failing moderation provider means for the request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Refuse the request (503).
    #[default]
    Closed,
    /// Let it go on, unmoderated.
    Open,
}

/// Strikes that block an end user automatically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrikePolicy {
    /// Strikes that block (at least 1).
    pub count: u32,
    /// Within this many seconds.
    pub window_secs: u64,
    /// Blocked for this many seconds.
    pub block_secs: u64,
}

fn yes() -> bool {
    true
}

fn default_timeout() -> u64 {
    5_000
}

/// An account's moderation settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModerationSettings {
    /// The catalogue provider serving `/moderations` (its `base_url` and key).
    pub provider: String,
    /// The moderation model sent upstream (`omni-moderation-latest`).
    pub model: String,
    /// A failing provider fails `closed` (default) or `open`.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// Also moderate non-streamed completions before they are answered (default true).
    #[serde(default = "yes")]
    pub completions: bool,
    /// Action by category name; a marked category not listed takes `default_action`.
    #[serde(default)]
    pub actions: BTreeMap<String, Action>,
    /// The action of marked categories not in `actions` (default `block`).
    #[serde(default = "default_action")]
    pub default_action: Action,
    /// Strikes that block an end user automatically.
    #[serde(default)]
    pub strikes: Option<StrikePolicy>,
    /// How long the provider may take, in milliseconds (default 5000).
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

fn default_action() -> Action {
    Action::Block
}

impl ModerationSettings {
    /// Checks the settings against the catalogue: every problem, named.
    pub fn validate(&self, catalog: &crate::catalog::Catalog) -> Result<(), String> {
        let mut problems = Vec::new();
        if catalog.provider(&self.provider).is_none() {
            problems.push(format!(
                "moderation.provider {:?} is not a provider of the catalogue",
                self.provider
            ));
        }
        if self.model.trim().is_empty() {
            problems.push("moderation.model must not be blank".to_owned());
        }
        if self.timeout_ms == 0 || self.timeout_ms > 60_000 {
            problems.push("moderation.timeout_ms must be between 1 and 60000".to_owned());
        }
        if let Some(s) = &self.strikes {
            if s.count == 0 || s.window_secs == 0 || s.block_secs == 0 {
                problems.push(
                    "moderation.strikes: count, window_secs and block_secs must be at least 1"
                        .to_owned(),
                );
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

/// The action for the categories marked: the strongest of their actions.
pub fn decide(settings: &ModerationSettings, marked: &[String]) -> Option<Action> {
    marked
        .iter()
        .map(|c| *settings.actions.get(c).unwrap_or(&settings.default_action))
        .max()
}

/// Reads an OpenAI-compatible moderation answer: the categories marked by any result (sorted)
/// and each category's highest score.
pub fn parse_answer(body: &Value) -> Option<(Vec<String>, BTreeMap<String, f64>)> {
    let results = body.get("results")?.as_array()?;
    let mut marked = std::collections::BTreeSet::new();
    let mut scores: BTreeMap<String, f64> = BTreeMap::new();
    for r in results {
        let categories = r.get("categories")?.as_object()?;
        for (name, hit) in categories {
            if hit.as_bool() == Some(true) {
                marked.insert(name.clone());
            }
        }
        if let Some(s) = r.get("category_scores").and_then(Value::as_object) {
            for (name, v) in s {
                if let Some(v) = v.as_f64().filter(|v| v.is_finite()) {
                    let e = scores.entry(name.clone()).or_insert(v);
                    *e = e.max(v);
                }
            }
        }
    }
    Some((marked.into_iter().collect(), scores))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(actions: &[(&str, Action)], default_action: Action) -> ModerationSettings {
        ModerationSettings {
            provider: "mod".into(),
            model: "omni-moderation-latest".into(),
            on_failure: OnFailure::Closed,
            completions: true,
            actions: actions.iter().map(|(c, a)| ((*c).to_owned(), *a)).collect(),
            default_action,
            strikes: None,
            timeout_ms: 1000,
        }
    }

    #[test]
    fn decisions_table() {
        let s = settings(
            &[
                ("harassment", Action::Flag),
                ("sexual/minors", Action::BlockAndStrike),
            ],
            Action::Block,
        );
        let cases: [(&[&str], Option<Action>); 5] = [
            (&[], None),
            (&["harassment"], Some(Action::Flag)),
            (&["violence"], Some(Action::Block)),
            (&["harassment", "violence"], Some(Action::Block)),
            (
                &["harassment", "sexual/minors"],
                Some(Action::BlockAndStrike),
            ),
        ];
        for (marked, want) in cases {
            let marked: Vec<String> = marked.iter().map(|c| (*c).to_owned()).collect();
            assert_eq!(decide(&s, &marked), want, "{marked:?}");
        }
    }

    #[test]
    fn answers_merge_over_results() {
        let body = json!({"id": "modr-1", "model": "m", "results": [
            {"flagged": false, "categories": {"violence": false, "harassment": false},
             "category_scores": {"violence": 0.1, "harassment": 0.2}},
            {"flagged": true, "categories": {"violence": true, "harassment": false},
             "category_scores": {"violence": 0.9, "harassment": 0.05}},
        ]});
        let (marked, scores) = parse_answer(&body).expect("parses");
        assert_eq!(marked, vec!["violence".to_owned()]);
        assert_eq!(scores["violence"], 0.9);
        assert_eq!(scores["harassment"], 0.2);
        assert!(parse_answer(&json!({"results": [{"flagged": true}]})).is_none());
        assert!(parse_answer(&json!({"error": "x"})).is_none());
    }

    #[test]
    fn settings_refuse_unknown_fields_and_read_defaults() {
        let s: ModerationSettings = serde_json::from_value(json!({
            "provider": "mod", "model": "omni-moderation-latest",
            "actions": {"violence": "flag"}
        }))
        .expect("settings");
        assert_eq!(s.on_failure, OnFailure::Closed);
        assert_eq!(s.default_action, Action::Block);
        assert!(s.completions);
        assert!(serde_json::from_value::<ModerationSettings>(json!({
            "provider": "mod", "model": "m", "treshold": 1
        }))
        .is_err());
    }
}
