//! Presets: an account's named set of request settings (model or models, provider preferences,
//! a system prompt, parameters), applied under a request that names it.
//!
//! A request names a preset by `model: "@preset/slug"` (the preset's model serves),
//! `model: "author/model@preset/slug"` (that model serves, the preset's other settings apply) or
//! `preset: "slug"`. Applying merges the preset **under** the request: every field the request
//! sets wins, and the preset fills in the rest. `provider` and `reasoning` merge member by member
//! (a request's `provider.sort` keeps the preset's `provider.only`). Two spellings of one setting
//! count as one: a request setting `max_tokens` or `max_completion_tokens` takes neither from
//! the preset, and one setting `reasoning_effort` or `reasoning.effort` takes no effort from it.
//! The preset's system prompt goes first, before the request's own messages.
//!
//! Invariants (tested below): a field the request sets is never changed by a preset; the
//! request's messages are kept, in order, after the preset's system prompt; the result is
//! validated like any request.

use serde_json::{Map, Value};

use crate::chat::{ChatRequest, Content, Message, RequestError};

/// The prefix of a preset reference in `model`.
pub const MODEL_PREFIX: &str = "@preset/";

/// The longest slug.
pub const MAX_SLUG_LEN: usize = 64;

/// The request fields a preset holds; any other field of the request it is made from (messages,
/// `stream`, `user`, `session_id`, `metadata`, `trace`...) is not kept.
pub const CONFIG_FIELDS: &[&str] = &[
    "model",
    "models",
    "provider",
    "route",
    "plugins",
    "transforms",
    "reasoning",
    "reasoning_effort",
    "include_reasoning",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "temperature",
    "top_p",
    "top_k",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
    "min_p",
    "top_a",
    "seed",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "response_format",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "modalities",
    "service_tier",
    "verbosity",
    "web_search_options",
];

/// Fields whose objects merge member by member (the request's members win).
const MERGED_OBJECTS: &[&str] = &["provider", "reasoning"];

/// A preset's content: what a version stores.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Preset {
    /// Put before the request's messages as a system message.
    pub system_prompt: Option<String>,
    /// Request fields (a subset of [`CONFIG_FIELDS`]).
    pub config: Map<String, Value>,
}

/// Whether `slug` can name a preset: 1 to 64 lower-case ASCII letters, digits, `-`, `_` or `.`.
pub fn valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= MAX_SLUG_LEN
        && slug.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
}

fn slug_error(field: &str) -> RequestError {
    RequestError(format!(
        "{field}: a preset slug is 1 to {MAX_SLUG_LEN} lower-case letters, digits, '-', '_' or '.'"
    ))
}

/// Takes the preset reference out of the request: `preset` is removed, and a `model` of the
/// form `[model]@preset/slug` becomes its model part (none when empty). Returns the slug, or
/// `None` when the request names no preset. Naming two different presets is an error.
pub fn take_reference(request: &mut ChatRequest) -> Result<Option<String>, RequestError> {
    let from_field = match request.extra.remove("preset") {
        None | Some(Value::Null) => None,
        Some(Value::String(slug)) => {
            if !valid_slug(&slug) {
                return Err(slug_error("preset"));
            }
            Some(slug)
        }
        Some(other) => {
            return Err(RequestError(format!(
                "preset: must be a string, not {}",
                crate::error::json_type(&other)
            )))
        }
    };
    let from_model = match request.model.as_deref() {
        Some(model) => match model.split_once(MODEL_PREFIX) {
            Some((base, slug)) => {
                if !valid_slug(slug) {
                    return Err(slug_error("model"));
                }
                let (base, slug) = (base.trim().to_owned(), slug.to_owned());
                request.model = (!base.is_empty()).then_some(base);
                Some(slug)
            }
            None => None,
        },
        None => None,
    };
    match (from_field, from_model) {
        (Some(a), Some(b)) if a != b => Err(RequestError(
            "preset: the request names two different presets (in `preset` and in `model`)".into(),
        )),
        (a, b) => Ok(a.or(b)),
    }
}

impl Preset {
    /// The preset a request describes: the text of its leading system (or developer) messages
    /// is the system prompt, and the fields of [`CONFIG_FIELDS`] it sets are the configuration.
    pub fn from_request(request: &ChatRequest) -> Result<Preset, RequestError> {
        let mut texts = Vec::new();
        for message in &request.messages {
            match message {
                Message::System { content, .. } | Message::Developer { content, .. } => {
                    texts.push(content.text());
                }
                _ => break,
            }
        }
        let system_prompt = (!texts.is_empty()).then(|| texts.join("\n\n"));
        let mut shell = request.clone();
        shell.messages = Vec::new();
        let value = serde_json::to_value(&shell)
            .map_err(|e| RequestError(format!("Invalid request: {e}")))?;
        let mut config = Map::new();
        if let Value::Object(fields) = value {
            for (key, value) in fields {
                if CONFIG_FIELDS.contains(&key.as_str()) && !value.is_null() {
                    config.insert(key, without_nulls(value));
                }
            }
        }
        Ok(Preset {
            system_prompt,
            config,
        })
    }

    /// Applies the preset under `request` (see the module's documentation). On error the
    /// request is unchanged.
    pub fn apply(&self, request: &mut ChatRequest) -> Result<(), RequestError> {
        let messages = std::mem::take(&mut request.messages);
        let merged = self.merged(request);
        let mut merged = match merged {
            Ok(merged) => merged,
            Err(e) => {
                request.messages = messages;
                return Err(e);
            }
        };
        let prompt = self.system_prompt.as_deref().filter(|p| !p.is_empty());
        merged.messages = Vec::with_capacity(messages.len() + usize::from(prompt.is_some()));
        if let Some(prompt) = prompt {
            merged.messages.push(Message::System {
                content: Content::Text(prompt.to_owned()),
                name: None,
            });
        }
        merged.messages.extend(messages);
        if let Err(e) = merged.validate() {
            // The request's own messages go back where they were.
            let skip = usize::from(prompt.is_some());
            request.messages = merged.messages.split_off(skip);
            return Err(RequestError(format!("With the preset applied: {}", e.0)));
        }
        *request = merged;
        Ok(())
    }

    /// The request (without its messages) with the preset's fields filled in.
    fn merged(&self, request: &ChatRequest) -> Result<ChatRequest, RequestError> {
        let mut value = serde_json::to_value(request)
            .map_err(|e| RequestError(format!("Invalid request: {e}")))?;
        let Value::Object(fields) = &mut value else {
            return Err(RequestError("Invalid request: not an object".into()));
        };
        let sets = |fields: &Map<String, Value>, name: &str| {
            fields.get(name).is_some_and(|v| !v.is_null())
        };
        let sets_max = sets(fields, "max_tokens") || sets(fields, "max_completion_tokens");
        let sets_effort = sets(fields, "reasoning_effort")
            || fields
                .get("reasoning")
                .and_then(|r| r.get("effort"))
                .is_some_and(|v| !v.is_null());
        for (key, theirs) in &self.config {
            let key = key.as_str();
            if !CONFIG_FIELDS.contains(&key)
                || (sets_max && matches!(key, "max_tokens" | "max_completion_tokens"))
                || (sets_effort && key == "reasoning_effort")
            {
                continue;
            }
            match fields.get_mut(key) {
                None | Some(Value::Null) => {
                    let mut theirs = theirs.clone();
                    if key == "reasoning" && sets_effort {
                        if let Value::Object(r) = &mut theirs {
                            r.remove("effort");
                        }
                    }
                    fields.insert(key.to_owned(), theirs);
                }
                Some(Value::Object(mine)) if MERGED_OBJECTS.contains(&key) => {
                    if let Value::Object(theirs) = theirs {
                        for (member, v) in theirs {
                            if key == "reasoning" && member == "effort" && sets_effort {
                                continue;
                            }
                            if mine.get(member).is_none_or(Value::is_null) {
                                mine.insert(member.clone(), v.clone());
                            }
                        }
                    }
                }
                Some(_) => {}
            }
        }
        serde_path_to_error::deserialize::<_, ChatRequest>(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = crate::parse_error::value_free(&e.into_inner().to_string());
            RequestError(format!("With the preset applied: {path}: {inner}"))
        })
    }
}

/// The value with the null members of its object removed, as the request wrote it (typed
/// shapes such as `provider` write unset members as null). Only the top level: a null deeper
/// (a JSON schema's `default: null`) is the client's.
fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(fields) => {
            Value::Object(fields.into_iter().filter(|(_, v)| !v.is_null()).collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(value: Value) -> ChatRequest {
        ChatRequest::from_value(value).expect("valid request")
    }

    fn preset(value: Value, prompt: Option<&str>) -> Preset {
        Preset {
            system_prompt: prompt.map(str::to_owned),
            config: value.as_object().cloned().expect("object"),
        }
    }

    #[test]
    fn slugs() {
        for good in ["a", "my-preset", "v1.2_x", &"a".repeat(64)] {
            assert!(valid_slug(good), "{good}");
        }
        for bad in ["", "A", "a b", "a/b", "é", &"a".repeat(65)] {
            assert!(!valid_slug(bad), "{bad}");
        }
    }

    #[test]
    fn references_in_model_and_field() {
        let cases = [
            (json!({"model": "@preset/p"}), Some("p"), None),
            (json!({"model": "a/b@preset/p"}), Some("p"), Some("a/b")),
            (
                json!({"model": "a/b", "preset": "p"}),
                Some("p"),
                Some("a/b"),
            ),
            (
                json!({"model": "@preset/p", "preset": "p"}),
                Some("p"),
                None,
            ),
            (json!({"model": "a/b"}), None, Some("a/b")),
            (json!({}), None, None),
        ];
        for (fields, slug, model) in cases {
            let mut body = fields.clone();
            body["messages"] = json!([{"role": "user", "content": "hi"}]);
            let mut r = request(body);
            assert_eq!(
                take_reference(&mut r).expect("valid").as_deref(),
                slug,
                "{fields}"
            );
            assert_eq!(r.model.as_deref(), model, "{fields}");
            assert!(!r.extra.contains_key("preset"), "{fields}");
        }
    }

    #[test]
    fn bad_references_name_the_field() {
        let cases = [
            (json!({"model": "@preset/"}), "model:"),
            (json!({"model": "@preset/Bad Slug"}), "model:"),
            (json!({"preset": 3}), "preset: must be a string"),
            (json!({"preset": "a/b"}), "preset:"),
            (
                json!({"model": "@preset/a", "preset": "b"}),
                "two different presets",
            ),
        ];
        for (fields, expected) in cases {
            let mut body = fields.clone();
            body["messages"] = json!([{"role": "user", "content": "hi"}]);
            let mut r = request(body);
            let e = take_reference(&mut r).expect_err("refused");
            assert!(e.0.contains(expected), "{fields}: {}", e.0);
        }
    }

    #[test]
    fn from_request_keeps_config_fields_and_the_leading_system_text() {
        let r = request(json!({
            "model": "a/b",
            "messages": [
                {"role": "system", "content": "One."},
                {"role": "developer", "content": "Two."},
                {"role": "user", "content": "hi"},
                {"role": "system", "content": "Not leading."}
            ],
            "temperature": 0.7,
            "stream": true,
            "user": "u1",
            "provider": {"only": ["x"]},
            "metadata": {"k": "v"},
            "plugins": [{"id": "context-compression"}]
        }));
        let p = Preset::from_request(&r).expect("preset");
        assert_eq!(p.system_prompt.as_deref(), Some("One.\n\nTwo."));
        assert_eq!(
            Value::Object(p.config),
            json!({"model": "a/b", "temperature": 0.7, "provider": {"only": ["x"]}, "plugins": [{"id": "context-compression"}]})
        );
        let bare = request(json!({"messages": [{"role": "user", "content": "hi"}]}));
        assert_eq!(
            Preset::from_request(&bare).expect("preset"),
            Preset::default()
        );
    }

    #[test]
    fn request_fields_win_and_the_preset_fills_the_rest() {
        let p = preset(
            json!({
                "model": "a/b",
                "temperature": 0.2,
                "top_p": 0.5,
                "max_tokens": 100,
                "provider": {"only": ["x"], "sort": "price"},
                "reasoning": {"effort": "high", "exclude": true}
            }),
            Some("Be brief."),
        );
        let mut r = request(json!({
            "messages": [{"role": "system", "content": "Mine."}, {"role": "user", "content": "hi"}],
            "temperature": 1.0,
            "max_completion_tokens": 7,
            "provider": {"sort": "throughput"},
            "reasoning_effort": "low"
        }));
        p.apply(&mut r).expect("applied");
        assert_eq!(r.model.as_deref(), Some("a/b"));
        assert_eq!(r.temperature, Some(1.0));
        assert_eq!(r.top_p, Some(0.5));
        assert_eq!((r.max_tokens, r.max_completion_tokens), (None, Some(7)));
        let provider = serde_json::to_value(r.provider.as_ref().expect("provider")).expect("json");
        assert_eq!(provider["only"], json!(["x"]));
        assert_eq!(provider["sort"], json!("throughput"));
        assert_eq!(r.reasoning_effort.as_deref(), Some("low"));
        let reasoning = r.reasoning.as_ref().expect("reasoning");
        assert_eq!(
            (reasoning.effort.as_deref(), reasoning.exclude),
            (None, Some(true))
        );
        let texts: Vec<String> = r
            .messages
            .iter()
            .filter_map(|m| m.content().map(Content::text))
            .collect();
        assert_eq!(texts, ["Be brief.", "Mine.", "hi"]);
    }

    #[test]
    fn an_invalid_merge_is_refused_and_leaves_the_request_as_it_was() {
        // A stored preset the request cannot take (a field of the wrong type).
        let p = preset(json!({"temperature": "hot"}), Some("Be brief."));
        let mut r = request(json!({"messages": [{"role": "user", "content": "hi"}]}));
        let before = r.clone();
        let e = p.apply(&mut r).expect_err("refused");
        assert!(e.0.contains("temperature"), "{}", e.0);
        assert_eq!(r, before);
        let p = preset(json!({"temperature": 9.0}), Some("Be brief."));
        let e = p.apply(&mut r).expect_err("refused");
        assert!(e.0.contains("temperature"), "{}", e.0);
        assert_eq!(r, before);
    }

    proptest::proptest! {
        /// Whatever the preset and the request set, the request's own values survive and the
        /// preset's fill only what the request left unset.
        #[test]
        fn the_request_always_wins(
            mine in proptest::option::of(0.0f64..=2.0),
            theirs in proptest::option::of(0.0f64..=2.0),
            my_seed in proptest::option::of(-5i64..5),
            their_seed in proptest::option::of(-5i64..5),
            prompt in proptest::option::of("[a-z ]{1,12}"),
        ) {
            let mut body = json!({"messages": [{"role": "user", "content": "hi"}]});
            if let Some(t) = mine { body["temperature"] = json!(t); }
            if let Some(s) = my_seed { body["seed"] = json!(s); }
            let mut config = json!({});
            if let Some(t) = theirs { config["temperature"] = json!(t); }
            if let Some(s) = their_seed { config["seed"] = json!(s); }
            let p = preset(config, prompt.as_deref());
            let mut r = request(body);
            p.apply(&mut r).expect("applied");
            proptest::prop_assert_eq!(r.temperature, mine.or(theirs));
            proptest::prop_assert_eq!(r.seed, my_seed.or(their_seed));
            proptest::prop_assert_eq!(r.messages.len(), 1 + usize::from(prompt.is_some()));
            let last = r.messages.last().and_then(|m| m.content().map(Content::text));
            proptest::prop_assert_eq!(last.as_deref(), Some("hi"));
        }
    }
}
