//! The request fields the canonical request carries in `extra`, checked and read here: every
//! one is either implemented or refused with a 400 naming it, never accepted and dropped.
//!
//! - `n`: an integer from 1 to [`MAX_CHOICES`]; forwarded to OpenAI-compatible endpoints, a
//!   `CodecError` (400) from codecs whose providers cannot return several choices.
//! - `prompt_cache_key`: the sticky-routing session when `session_id` is absent, and forwarded
//!   to OpenAI-compatible endpoints.
//! - `cache_control`: `{type: "ephemeral", ttl?: "5m" | "1h"}`, forwarded to Anthropic.
//! - `transforms`: `[]` or `["middle-out"]`.
//! - `plugins`: `response-healing`, `file-parser` and `context-compression` (middle-out) are
//!   implemented; every other plugin is refused, saying what it would need.
//! - `debug`: `{echo_upstream_body: bool}`, streamed requests only.
//! - Server tools (`openrouter:web_search`, `web_search_preview`, ...) and
//!   `stop_server_tools_when` are refused: the gateway runs no tools.

use serde_json::Value;

use super::ChatRequest;

/// The most choices (`n`) a request may ask for, as OpenAI's chat API allows.
pub const MAX_CHOICES: u64 = 128;

/// The members of a chat request held in `extra` that the gateway knows: each is read, checked
/// or refused here or by the codecs. Any other member is refused by the chat format.
pub const EXTRA_FIELDS: &[&str] = &[
    "n",
    "prompt_cache_key",
    "prompt_cache_options",
    "cache_control",
    "transforms",
    "plugins",
    "debug",
    "metadata",
    "trace",
    "usage",
    "stream_options",
    "preset",
    "image_config",
    "stop_server_tools_when",
];

/// The plugins the gateway runs.
pub const PLUGINS: &[&str] = &["response-healing", "file-parser", "context-compression"];

/// The transforms the gateway applies.
pub const TRANSFORMS: &[&str] = &["middle-out"];

/// Why a plugin of the contract is refused.
fn refused_plugin(id: &str) -> Option<&'static str> {
    Some(match id {
        "web" | "web-fetch" => {
            "it needs a web search provider, and this gateway has none; send the search results in the messages instead"
        }
        "moderation" => "it needs a moderation service, and this gateway has none; use a guardrail instead",
        "auto-router" | "auto-beta-router" | "pareto-router" => {
            "it needs OpenRouter's model-choosing router, and this gateway has none; name the model, or list fallbacks in `models`"
        }
        "fusion" => "it needs several models run by the gateway, and this gateway sends a request to one",
        _ => return None,
    })
}

impl ChatRequest {
    /// The first member of `extra` that is not a field of the request the gateway knows.
    pub fn unknown_field(&self) -> Option<&str> {
        self.extra
            .keys()
            .map(String::as_str)
            .find(|k| !EXTRA_FIELDS.contains(k))
    }

    /// The number of choices asked for (`n`, 1 when absent).
    pub fn choices(&self) -> u64 {
        self.extra.get("n").and_then(Value::as_u64).unwrap_or(1)
    }

    /// Whether the reasoning text must be left out of the answer: `reasoning.exclude: true`, or
    /// the legacy `include_reasoning: false`. The model still reasons (and is billed for it).
    pub fn reasoning_excluded(&self) -> bool {
        self.reasoning.as_ref().and_then(|r| r.exclude) == Some(true)
            || self.include_reasoning == Some(false)
    }

    /// The `prompt_cache_key`, if any.
    pub fn prompt_cache_key(&self) -> Option<&str> {
        self.extra.get("prompt_cache_key").and_then(Value::as_str)
    }

    /// Whether a plugin is enabled (listed, and not with `enabled: false`).
    pub fn plugin(&self, id: &str) -> Option<&Value> {
        self.extra
            .get("plugins")
            .and_then(Value::as_array)?
            .iter()
            .find(|p| p.get("id").and_then(Value::as_str) == Some(id))
            .filter(|p| p.get("enabled").and_then(Value::as_bool) != Some(false))
    }

    /// Whether the middle of an over-long conversation is to be compressed to fit the context:
    /// `transforms: ["middle-out"]` or the `context-compression` plugin.
    pub fn middle_out(&self) -> bool {
        let transform = self
            .extra
            .get("transforms")
            .and_then(Value::as_array)
            .is_some_and(|t| t.iter().any(|t| t == "middle-out"));
        transform || self.plugin("context-compression").is_some()
    }

    /// Whether the stream starts with a chunk echoing the body sent upstream.
    pub fn echo_upstream_body(&self) -> bool {
        self.extra
            .get("debug")
            .and_then(|d| d.get("echo_upstream_body"))
            .and_then(Value::as_bool)
            == Some(true)
    }

    /// Gives the fields whose meaning is another field's their effect: `include_reasoning: true`
    /// alone turns reasoning on (as `reasoning: {enabled: true}`), and `prompt_cache_key` is
    /// the sticky-routing session when the request names none.
    pub(super) fn normalize(&mut self) {
        if self.include_reasoning == Some(true)
            && self.reasoning.is_none()
            && self.reasoning_effort.is_none()
        {
            self.reasoning = Some(super::Reasoning {
                enabled: Some(true),
                ..super::Reasoning::default()
            });
        }
        if self.session_id.is_none() {
            if let Some(key) = self.prompt_cache_key() {
                self.session_id = Some(key.to_owned());
            }
        }
    }

    /// Checks the fields held in `extra` and the tools, adding one problem per fault.
    pub(super) fn check_fields(&self, problems: &mut Vec<String>) {
        let extra = &self.extra;
        if let Some(n) = extra.get("n").filter(|v| !v.is_null()) {
            if !n.as_u64().is_some_and(|n| (1..=MAX_CHOICES).contains(&n)) {
                problems.push(format!("n must be an integer from 1 to {MAX_CHOICES}"));
            }
        }
        if let Some(key) = extra.get("prompt_cache_key").filter(|v| !v.is_null()) {
            match key.as_str() {
                Some(k) if k.len() <= 256 => {}
                Some(_) => problems.push("prompt_cache_key must be at most 256 characters".into()),
                None => problems.push("prompt_cache_key must be a string".into()),
            }
        }
        if let Some(cache) = extra.get("cache_control").filter(|v| !v.is_null()) {
            check_cache_control(cache, problems);
        }
        if let Some(transforms) = extra.get("transforms").filter(|v| !v.is_null()) {
            check_transforms(transforms, problems);
        }
        if let Some(plugins) = extra.get("plugins").filter(|v| !v.is_null()) {
            check_plugins(plugins, problems);
        }
        if let Some(debug) = extra.get("debug").filter(|v| !v.is_null()) {
            check_debug(debug, self.is_stream(), problems);
        }
        if let Some(metadata) = extra.get("metadata").filter(|v| !v.is_null()) {
            check_metadata(metadata, problems);
        }
        if extra
            .get("stop_server_tools_when")
            .is_some_and(|v| !v.is_null())
        {
            problems.push(
                "stop_server_tools_when: not supported: this gateway runs no server tools".into(),
            );
        }
        if self.plugin("response-healing").is_some() && self.is_stream() {
            problems.push(
                "plugins: response-healing repairs a whole answer, so it works only without `stream`"
                    .into(),
            );
        }
        for (i, tool) in self.tools.iter().flatten().enumerate() {
            if tool.kind != "function" {
                problems.push(format!(
                    "tools[{i}].type: {} is not supported: this gateway runs no server tools, only function tools the client runs",
                    crate::parse_error::name(&tool.kind)
                ));
            }
        }
    }
}

/// `metadata`: at most 16 string pairs, keys of at most 64 characters, values of at most 512.
fn check_metadata(metadata: &Value, problems: &mut Vec<String>) {
    let Some(pairs) = metadata.as_object() else {
        problems.push("metadata must be an object of strings".into());
        return;
    };
    if pairs.len() > 16 {
        problems.push("metadata takes at most 16 pairs".into());
    }
    for (key, value) in pairs {
        let at = crate::parse_error::field("metadata", key);
        if key.chars().count() > 64 {
            problems.push("metadata keys are at most 64 characters".into());
        } else if value.as_str().is_none_or(|v| v.chars().count() > 512) {
            problems.push(format!("{at} must be a string of at most 512 characters"));
        }
    }
}

fn check_cache_control(cache: &Value, problems: &mut Vec<String>) {
    let Some(object) = cache.as_object() else {
        problems.push("cache_control must be an object such as {\"type\": \"ephemeral\"}".into());
        return;
    };
    if object.get("type").and_then(Value::as_str) != Some("ephemeral") {
        problems.push("cache_control.type must be \"ephemeral\"".into());
    }
    if let Some(ttl) = object.get("ttl").filter(|t| !t.is_null()) {
        if !matches!(ttl.as_str(), Some("5m" | "1h")) {
            problems.push("cache_control.ttl must be \"5m\" or \"1h\"".into());
        }
    }
    for key in object.keys() {
        if key != "type" && key != "ttl" {
            problems.push(format!(
                "{}: unknown field",
                crate::parse_error::field("cache_control", key)
            ));
        }
    }
}

fn check_transforms(transforms: &Value, problems: &mut Vec<String>) {
    let Some(list) = transforms.as_array() else {
        problems.push("transforms must be an array of strings".into());
        return;
    };
    for (i, t) in list.iter().enumerate() {
        if !t.as_str().is_some_and(|t| TRANSFORMS.contains(&t)) {
            problems.push(format!(
                "transforms[{i}]: unknown transform; the one transform is \"middle-out\""
            ));
        }
    }
}

fn check_plugins(plugins: &Value, problems: &mut Vec<String>) {
    let Some(list) = plugins.as_array() else {
        problems.push("plugins must be an array of objects with an `id`".into());
        return;
    };
    for (i, plugin) in list.iter().enumerate() {
        let Some(id) = plugin.get("id").and_then(Value::as_str) else {
            problems.push(format!("plugins[{i}].id: required, a string"));
            continue;
        };
        if let Some(enabled) = plugin.get("enabled") {
            if !enabled.is_boolean() {
                problems.push(format!("plugins[{i}].enabled must be a boolean"));
            }
        }
        // A plugin turned off asks for nothing.
        if plugin.get("enabled").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let name = crate::parse_error::name(id);
        if let Some(why) = refused_plugin(id) {
            problems.push(format!(
                "plugins[{i}]: the {name} plugin is not supported: {why}"
            ));
            continue;
        }
        if !PLUGINS.contains(&id) {
            problems.push(format!(
                "plugins[{i}]: unknown plugin {name}; this gateway runs {}",
                PLUGINS.join(", ")
            ));
            continue;
        }
        match id {
            "context-compression" => {
                if let Some(engine) = plugin.get("engine").filter(|e| !e.is_null()) {
                    if engine != "middle-out" {
                        problems.push(format!(
                            "plugins[{i}].engine: the one context-compression engine is \"middle-out\""
                        ));
                    }
                }
            }
            "file-parser" => {
                // The PDF text layer is read by the gateway; OCR engines are services it lacks.
                let engine = plugin.pointer("/pdf/engine").filter(|e| !e.is_null());
                if let Some(engine) = engine {
                    if !matches!(engine.as_str(), Some("pdf-text" | "native")) {
                        problems.push(format!(
                            "plugins[{i}].pdf.engine: only \"pdf-text\" (the PDF's own text, read by the gateway) or \"native\" (the file sent to the model) are supported; OCR engines need a service this gateway does not have"
                        ));
                    }
                }
            }
            _ => {}
        }
    }
}

fn check_debug(debug: &Value, stream: bool, problems: &mut Vec<String>) {
    let Some(object) = debug.as_object() else {
        problems.push("debug must be an object such as {\"echo_upstream_body\": true}".into());
        return;
    };
    for (key, value) in object {
        if key != "echo_upstream_body" {
            problems.push(format!(
                "{}: unknown field",
                crate::parse_error::field("debug", key)
            ));
        } else if !value.is_boolean() {
            problems.push("debug.echo_upstream_body must be a boolean".into());
        } else if value == true && !stream {
            problems.push(
                "debug.echo_upstream_body works only on streamed requests (`stream: true`)".into(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::chat::ChatRequest;

    fn with(fields: Value) -> Result<ChatRequest, String> {
        let mut body = json!({"messages": [{"role": "user", "content": "x"}]});
        if let (Some(b), Some(f)) = (body.as_object_mut(), fields.as_object()) {
            b.extend(f.clone());
        }
        ChatRequest::from_value(body).map_err(|e| e.0)
    }

    #[test]
    fn refuses_each_field_it_cannot_serve_naming_it() {
        let cases = [
            (json!({"n": 0}), "n must be an integer from 1 to 128"),
            (json!({"n": 129}), "n must be"),
            (json!({"n": "2"}), "n must be"),
            (json!({"prompt_cache_key": 5}), "prompt_cache_key must be a string"),
            (json!({"prompt_cache_key": "k".repeat(257)}), "prompt_cache_key must be at most"),
            (json!({"cache_control": "ephemeral"}), "cache_control must be an object"),
            (json!({"cache_control": {"type": "persistent"}}), "cache_control.type"),
            (json!({"cache_control": {"type": "ephemeral", "ttl": "2h"}}), "cache_control.ttl"),
            (json!({"cache_control": {"type": "ephemeral", "scope": "x"}}), "cache_control.scope: unknown field"),
            (json!({"transforms": "middle-out"}), "transforms must be an array"),
            (json!({"transforms": ["shrink"]}), "transforms[0]: unknown transform"),
            (json!({"plugins": {"id": "web"}}), "plugins must be an array"),
            (json!({"plugins": [{}]}), "plugins[0].id: required"),
            (json!({"plugins": [{"id": "web"}]}), "plugins[0]: the \"web\" plugin is not supported: it needs a web search provider"),
            (json!({"plugins": [{"id": "web-fetch"}]}), "web search provider"),
            (json!({"plugins": [{"id": "moderation"}]}), "moderation service"),
            (json!({"plugins": [{"id": "auto-router"}]}), "\"auto-router\" plugin is not supported"),
            (json!({"plugins": [{"id": "pareto-router"}]}), "\"pareto-router\" plugin is not supported"),
            (json!({"plugins": [{"id": "fusion"}]}), "\"fusion\" plugin is not supported"),
            (json!({"plugins": [{"id": "telepathy"}]}), "plugins[0]: unknown plugin \"telepathy\""),
            (json!({"plugins": [{"id": "response-healing", "enabled": "yes"}]}), "plugins[0].enabled must be a boolean"),
            (json!({"plugins": [{"id": "response-healing"}], "stream": true}), "works only without `stream`"),
            (json!({"plugins": [{"id": "context-compression", "engine": "summarize"}]}), "plugins[0].engine"),
            (json!({"plugins": [{"id": "file-parser", "pdf": {"engine": "mistral-ocr"}}]}), "plugins[0].pdf.engine"),
            (json!({"debug": {"echo_upstream_body": true}}), "debug.echo_upstream_body works only on streamed requests"),
            (json!({"debug": {"echo_upstream_body": 1}, "stream": true}), "debug.echo_upstream_body must be a boolean"),
            (json!({"debug": {"verbose": true}, "stream": true}), "debug.verbose: unknown field"),
            (json!({"debug": true}), "debug must be an object"),
            (json!({"stop_server_tools_when": [{"type": "step_count_is", "step_count": 1}]}), "stop_server_tools_when: not supported"),
            (json!({"tools": [{"type": "openrouter:web_search"}]}), "tools[0].type: \"openrouter:web_search\" is not supported: this gateway runs no server tools"),
            (json!({"tools": [{"type": "function", "function": {"name": "f"}}, {"type": "web_search_preview"}]}), "tools[1].type: \"web_search_preview\""),
            (json!({"tools": [{"type": "openrouter:datetime", "parameters": {"timezone": "UTC"}}]}), "tools[0].type"),
            (json!({"metadata": {"a": 1}}), "metadata.a must be a string"),
            (json!({"metadata": []}), "metadata must be an object"),
        ];
        for (fields, needle) in cases {
            let err = with(fields.clone()).expect_err(&fields.to_string());
            assert!(err.contains(needle), "{fields}: {err:?} lacks {needle:?}");
        }
    }

    #[test]
    fn accepts_what_it_serves() {
        for fields in [
            json!({"n": 1}),
            json!({"n": 128}),
            json!({"transforms": []}),
            json!({"transforms": ["middle-out"]}),
            json!({"plugins": []}),
            json!({"plugins": [{"id": "response-healing"}, {"id": "file-parser", "pdf": {"engine": "pdf-text"}}, {"id": "context-compression", "engine": "middle-out"}]}),
            // Turned off, a plugin the gateway cannot run asks for nothing.
            json!({"plugins": [{"id": "web", "enabled": false}]}),
            json!({"debug": {"echo_upstream_body": true}, "stream": true}),
            json!({"debug": {"echo_upstream_body": false}}),
            json!({"cache_control": {"type": "ephemeral", "ttl": "1h"}}),
            json!({"prompt_cache_key": "conversation-1"}),
            json!({"metadata": {"user": "u-1"}, "trace": {"trace_id": "t"}}),
        ] {
            with(fields.clone()).unwrap_or_else(|e| panic!("{fields}: {e}"));
        }
    }

    #[test]
    fn reads_what_the_fields_ask_for() {
        let plain = with(json!({})).expect("valid");
        assert_eq!(plain.choices(), 1);
        assert_eq!(plain.unknown_field(), None);
        assert_eq!(
            with(json!({"store": true})).expect("valid").unknown_field(),
            Some("store")
        );
        assert!(!plain.reasoning_excluded() && !plain.middle_out() && !plain.echo_upstream_body());
        assert_eq!(with(json!({"n": 3})).expect("valid").choices(), 3);
        assert!(with(json!({"reasoning": {"exclude": true}}))
            .expect("valid")
            .reasoning_excluded());
        let legacy = with(json!({"include_reasoning": false})).expect("valid");
        assert!(legacy.reasoning_excluded());
        assert!(legacy.reasoning.is_none());
        // `include_reasoning: true` alone turns reasoning on, as `reasoning: {}` does.
        let on = with(json!({"include_reasoning": true})).expect("valid");
        assert_eq!(on.reasoning.and_then(|r| r.enabled), Some(true));
        assert!(with(json!({"transforms": ["middle-out"]}))
            .expect("valid")
            .middle_out());
        assert!(with(json!({"plugins": [{"id": "context-compression"}]}))
            .expect("valid")
            .middle_out());
        assert!(
            !with(json!({"plugins": [{"id": "context-compression", "enabled": false}]}))
                .expect("valid")
                .middle_out()
        );
        // The cache key is the sticky session, unless the request names one.
        let keyed = with(json!({"prompt_cache_key": "c"})).expect("valid");
        assert_eq!(keyed.session_id.as_deref(), Some("c"));
        let both = with(json!({"prompt_cache_key": "c", "session_id": "s"})).expect("valid");
        assert_eq!(both.session_id.as_deref(), Some("s"));
        assert!(with(json!({"plugins": [{"id": "response-healing"}]}))
            .expect("valid")
            .plugin("response-healing")
            .is_some());
        assert!(
            with(json!({"debug": {"echo_upstream_body": true}, "stream": true}))
                .expect("valid")
                .echo_upstream_body()
        );
    }
}
