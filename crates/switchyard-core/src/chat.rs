//! The canonical chat request: OpenRouter's chat-completions body, parsed and validated.
//!
//! The gateway parses every inbound format into a [`ChatRequest`]; provider codecs encode it for
//! their wire format. Parsing names the field at fault (`messages[2].content: ...`) so that a bad
//! request always gets a 400 that says what is wrong.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use crate::error::json_type;
use crate::preferences::ProviderPreferences;

mod compress;
mod fields;
mod heal;
mod message;
pub use compress::Compressed;
pub use fields::{EXTRA_FIELDS, MAX_CHOICES, PLUGINS, TRANSFORMS};
pub use heal::heal_json;
pub use message::{
    Content, ContentPart, FunctionCall, FunctionDefinition, ImageUrl, Message, Tool, ToolCall,
};

/// The most entries each client-supplied list may have; a longer list is a 400 naming the
/// field.
pub mod limits {
    /// `models` (fallback models). The contract sets no bound; a fallback list is a handful.
    pub const MODELS: usize = 128;
    /// `stop` sequences, as the contract says.
    pub const STOP: usize = 4;
    /// `tools`, as OpenAI's chat API allows.
    pub const TOOLS: usize = 128;
    /// Each of `provider.order`, `provider.only` and `provider.ignore`.
    pub const PROVIDERS: usize = 128;
    /// `provider.quantizations` (the contract knows ten levels).
    pub const QUANTIZATIONS: usize = 16;
}

/// Reasoning configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reasoning {
    /// `max`, `xhigh`, `high`, `medium`, `low`, `minimal` or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<String>,
    /// `auto`, `concise` or `detailed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Reasoning token budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Reason but do not return the reasoning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<bool>,
    /// Enable reasoning at the default effort.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// The reasoning efforts of the contract.
pub const REASONING_EFFORTS: &[&str] =
    &["max", "xhigh", "high", "medium", "low", "minimal", "none"];

/// Stop sequences: one string or up to four.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One sequence.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl Stop {
    /// The sequences as a list.
    pub fn sequences(&self) -> Vec<String> {
        match self {
            Stop::One(s) => vec![s.clone()],
            Stop::Many(v) => v.clone(),
        }
    }
}

/// A parsed and validated chat-completions request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// `author/slug[:variant]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Fallback models tried after `model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Stream the answer as SSE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Provider routing preferences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderPreferences>,
    /// Legacy `fallback` / `sort`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Sticky-routing session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// End-user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// `none`, `auto`, `required` or `{type:function, function:{name}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    /// Allow parallel tool calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// Output format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Value>,
    /// Reasoning configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Reasoning>,
    /// Shorthand for `reasoning.effort`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<String>,
    /// Legacy switch for returning reasoning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_reasoning: Option<bool>,
    /// Deprecated alias of `max_completion_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Largest completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    /// Sampling temperature, [0, 2].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling, (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Top-k sampling, ≥ 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    /// [-2, 2].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    /// [-2, 2].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    /// (0, 2].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repetition_penalty: Option<f64>,
    /// [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_p: Option<f64>,
    /// [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_a: Option<f64>,
    /// Deterministic sampling seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// Token id → bias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logit_bias: Option<Map<String, Value>>,
    /// Return log probabilities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<bool>,
    /// 0 to 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u64>,
    /// Predicted output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<Value>,
    /// Output modalities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modalities: Option<Vec<String>>,
    /// Service tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// Verbosity (`low`, `medium`, `high`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verbosity: Option<String>,
    /// Web search options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_search_options: Option<Value>,
    /// Audio output options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<Value>,
    /// Every other field (plugins, transforms, metadata, trace, usage, stream_options, debug,
    /// n, prompt_cache_key, cache_control...): those the gateway reads are checked and read in
    /// `chat/fields.rs`.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Fields of OpenRouter's request that are never sent upstream as-is.
pub const GATEWAY_FIELDS: &[&str] = &[
    "provider",
    "models",
    "route",
    "session_id",
    "plugins",
    "transforms",
    "trace",
    "usage",
    "debug",
    "preset",
    "stream_options",
    "metadata",
    "prompt_cache_options",
    "image_config",
];

/// Why a request body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RequestError(pub String);

fn range(
    problems: &mut Vec<String>,
    name: &str,
    value: Option<f64>,
    low: f64,
    high: f64,
    open_low: bool,
) {
    if let Some(v) = value {
        let below = if open_low { v <= low } else { v < low };
        if below || v > high || !v.is_finite() {
            let l = if open_low { "(" } else { "[" };
            problems.push(format!("{name} must be in {l}{low}, {high}], got {v}"));
        }
    }
}

impl ChatRequest {
    /// Parses and validates a JSON body.
    pub fn from_json(body: &[u8]) -> Result<ChatRequest, RequestError> {
        // Straight from the bytes when the body is valid; the slower path through a `Value`
        // names what is wrong when it is not.
        if let Ok(mut request) = serde_json::from_slice::<ChatRequest>(body) {
            request.validate()?;
            request.normalize();
            return Ok(request);
        }
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            RequestError(format!(
                "Invalid JSON in request body: {}",
                crate::parse_error::value_free(&e.to_string())
            ))
        })?;
        Self::from_value(value)
    }

    /// Parses and validates a JSON value.
    pub fn from_value(value: Value) -> Result<ChatRequest, RequestError> {
        if !value.is_object() {
            return Err(RequestError(format!(
                "Request body must be a JSON object, not {}",
                json_type(&value)
            )));
        }
        let mut request: ChatRequest = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            // The message names the path and the kinds, never the value: it may be a prompt.
            let inner = crate::parse_error::value_free(&e.into_inner().to_string());
            if path == "." {
                RequestError(format!("Invalid request: {inner}"))
            } else {
                RequestError(format!("Invalid request: {path}: {inner}"))
            }
        })?;
        request.validate()?;
        request.normalize();
        Ok(request)
    }

    /// Checks the request's values (ranges, lengths, that it has messages).
    pub fn validate(&self) -> Result<(), RequestError> {
        let mut problems = Vec::new();
        if self.messages.is_empty() {
            problems.push("messages must contain at least one message".to_owned());
        }
        if let Some(model) = &self.model {
            if model.trim().is_empty() {
                problems.push("model must not be empty".to_owned());
            }
        }
        range(
            &mut problems,
            "temperature",
            self.temperature,
            0.0,
            2.0,
            false,
        );
        range(&mut problems, "top_p", self.top_p, 0.0, 1.0, true);
        range(
            &mut problems,
            "frequency_penalty",
            self.frequency_penalty,
            -2.0,
            2.0,
            false,
        );
        range(
            &mut problems,
            "presence_penalty",
            self.presence_penalty,
            -2.0,
            2.0,
            false,
        );
        range(
            &mut problems,
            "repetition_penalty",
            self.repetition_penalty,
            0.0,
            2.0,
            true,
        );
        range(&mut problems, "min_p", self.min_p, 0.0, 1.0, false);
        range(&mut problems, "top_a", self.top_a, 0.0, 1.0, false);
        if self.top_k == Some(0) {
            problems.push("top_k must be at least 1".to_owned());
        }
        if self.top_logprobs.is_some_and(|n| n > 20) {
            problems.push("top_logprobs must be between 0 and 20".to_owned());
        }
        if matches!(self.max_tokens, Some(0)) || matches!(self.max_completion_tokens, Some(0)) {
            problems.push("max_tokens must be at least 1".to_owned());
        }
        for (field, len, max) in self.list_lengths() {
            if len > max {
                problems.push(format!("{field} takes at most {max} entries, got {len}"));
            }
        }
        if let Some(session) = &self.session_id {
            if session.len() > 256 {
                problems.push("session_id must be at most 256 characters".to_owned());
            }
        }
        let effort = self.reasoning.as_ref().and_then(|r| r.effort.as_deref());
        for e in [effort, self.reasoning_effort.as_deref()]
            .into_iter()
            .flatten()
        {
            if !REASONING_EFFORTS.contains(&e) {
                problems.push(format!(
                    "reasoning effort {} is not one of {}",
                    crate::parse_error::name(e),
                    REASONING_EFFORTS.join(", ")
                ));
            }
        }
        if let (Some(a), Some(b)) = (effort, self.reasoning_effort.as_deref()) {
            if a != b {
                problems.push(format!(
                    "reasoning_effort {} differs from reasoning.effort {}",
                    crate::parse_error::name(b),
                    crate::parse_error::name(a)
                ));
            }
        }
        if let Some(tools) = &self.tools {
            for (i, tool) in tools.iter().enumerate() {
                if tool.kind == "function" && tool.function.is_none() {
                    problems.push(format!("tools[{i}]: a function tool needs `function`"));
                }
            }
        }
        if let Some(choice) = &self.tool_choice {
            let valid = match choice {
                Value::String(s) => matches!(s.as_str(), "none" | "auto" | "required"),
                Value::Object(o) => o
                    .get("function")
                    .and_then(|f| f.get("name"))
                    .is_some_and(Value::is_string),
                _ => false,
            };
            if !valid {
                problems.push(
                    "tool_choice must be \"none\", \"auto\", \"required\" or {\"type\":\"function\",\"function\":{\"name\":...}}"
                        .to_owned(),
                );
            }
        }
        if let Some(format) = &self.response_format {
            let kind = format.get("type").and_then(Value::as_str);
            match kind {
                Some("text" | "json_object" | "grammar" | "python") => {}
                Some("json_schema") => {
                    if format.get("json_schema").and_then(|s| s.get("name")).is_none() {
                        problems.push("response_format.json_schema.name is required".to_owned());
                    }
                }
                _ => problems.push(
                    "response_format.type must be text, json_object, json_schema, grammar or python"
                        .to_owned(),
                ),
            }
        }
        self.check_fields(&mut problems);
        for (i, message) in self.messages.iter().enumerate() {
            if let Message::Assistant {
                content: None,
                tool_calls: None,
                ..
            } = message
            {
                if i + 1 != self.messages.len() {
                    problems.push(format!(
                        "messages[{i}]: an assistant message needs content or tool_calls"
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(RequestError(format!(
                "Invalid request: {}",
                problems.join("; ")
            )))
        }
    }

    /// Every client-supplied list with a size limit: (field, length, limit). The limits bound
    /// the work a request can cause (routing matches each provider list against every
    /// candidate endpoint).
    fn list_lengths(&self) -> Vec<(&'static str, usize, usize)> {
        let len = |list: &Option<Vec<String>>| list.as_ref().map_or(0, Vec::len);
        let stops = match &self.stop {
            Some(Stop::Many(stops)) => stops.len(),
            _ => 0,
        };
        let provider = self.provider.as_ref();
        vec![
            ("models", len(&self.models), limits::MODELS),
            ("stop", stops, limits::STOP),
            (
                "tools",
                self.tools.as_ref().map_or(0, Vec::len),
                limits::TOOLS,
            ),
            (
                "provider.order",
                provider.map_or(0, |p| len(&p.order)),
                limits::PROVIDERS,
            ),
            (
                "provider.only",
                provider.map_or(0, |p| len(&p.only)),
                limits::PROVIDERS,
            ),
            (
                "provider.ignore",
                provider.map_or(0, |p| len(&p.ignore)),
                limits::PROVIDERS,
            ),
            (
                "provider.quantizations",
                provider.map_or(0, |p| len(&p.quantizations)),
                limits::QUANTIZATIONS,
            ),
        ]
    }

    /// Whether the answer is streamed.
    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// The requested completion limit (`max_completion_tokens`, else `max_tokens`).
    pub fn max_output_tokens(&self) -> Option<u64> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    /// Rough prompt size in tokens (four characters a token, plus per-message overhead and a
    /// flat allowance per media part), used for context filtering and credit holds.
    pub fn estimated_prompt_tokens(&self) -> u64 {
        let (mut chars, mut media) = (0usize, 0usize);
        for m in &self.messages {
            if let Some(content) = m.content() {
                let (c, n) = content.size();
                chars += c;
                media += n;
            }
            if let Message::Assistant {
                tool_calls: Some(calls),
                ..
            } = m
            {
                chars += calls
                    .iter()
                    .map(|c| c.function.name.len() + c.function.arguments.len())
                    .sum::<usize>();
            }
        }
        if let Some(tools) = &self.tools {
            chars += tools
                .iter()
                .map(|t| serde_json::to_string(t).map_or(0, |s| s.len()))
                .sum::<usize>();
        }
        let tokens = chars.div_ceil(4) + 4 * self.messages.len() + 1000 * media;
        tokens as u64
    }

    /// Names of the standard parameters this request sets, for `require_parameters`.
    pub fn parameters_used(&self) -> Vec<&'static str> {
        let mut used = Vec::new();
        let mut add = |present: bool, name: &'static str| {
            if present {
                used.push(name);
            }
        };
        add(self.tools.is_some(), "tools");
        add(self.tool_choice.is_some(), "tool_choice");
        add(self.parallel_tool_calls.is_some(), "parallel_tool_calls");
        add(self.response_format.is_some(), "response_format");
        add(
            self.reasoning.is_some() || self.reasoning_effort.is_some(),
            "reasoning",
        );
        add(self.include_reasoning.is_some(), "include_reasoning");
        add(
            self.max_tokens.is_some() || self.max_completion_tokens.is_some(),
            "max_tokens",
        );
        add(self.stop.is_some(), "stop");
        add(self.temperature.is_some(), "temperature");
        add(self.top_p.is_some(), "top_p");
        add(self.top_k.is_some(), "top_k");
        add(self.frequency_penalty.is_some(), "frequency_penalty");
        add(self.presence_penalty.is_some(), "presence_penalty");
        add(self.repetition_penalty.is_some(), "repetition_penalty");
        add(self.min_p.is_some(), "min_p");
        add(self.top_a.is_some(), "top_a");
        add(self.seed.is_some(), "seed");
        add(self.logit_bias.is_some(), "logit_bias");
        add(self.logprobs.is_some(), "logprobs");
        add(self.top_logprobs.is_some(), "top_logprobs");
        add(self.prediction.is_some(), "prediction");
        add(self.verbosity.is_some(), "verbosity");
        add(self.web_search_options.is_some(), "web_search_options");
        used
    }

    /// Input modalities the messages use (`text`, `image`, `audio`, `file`, `video`).
    pub fn input_modalities(&self) -> Vec<&'static str> {
        let mut found = vec!["text"];
        for m in &self.messages {
            if let Some(Content::Parts(parts)) = m.content() {
                for p in parts {
                    let modality = match p {
                        ContentPart::Text { .. } => "text",
                        ContentPart::ImageUrl { .. } => "image",
                        ContentPart::InputAudio { .. } => "audio",
                        ContentPart::File { .. } => "file",
                        ContentPart::VideoUrl { .. } => "video",
                    };
                    if !found.contains(&modality) {
                        found.push(modality);
                    }
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<ChatRequest, String> {
        ChatRequest::from_value(value).map_err(|e| e.0)
    }

    #[test]
    fn accepts_every_role_and_part() {
        let request = parse(json!({
            "model": "openai/gpt-4o",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "developer", "content": [{"type": "text", "text": "dev"}]},
                {"role": "user", "content": [
                    {"type": "text", "text": "look", "cache_control": {"type": "ephemeral"}},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
                    {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
                    {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,AA"}},
                    {"type": "video_url", "video_url": {"url": "https://v"}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "content": "42", "tool_call_id": "c1"},
                {"role": "assistant", "content": "The answer is"}
            ],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "temperature": 0.5, "stop": "END", "seed": 7, "logprobs": true, "top_logprobs": 3,
            "reasoning": {"effort": "high"},
            "plugins": [{"id": "response-healing"}]
        }))
        .expect("valid");
        assert_eq!(request.messages.len(), 6);
        assert_eq!(
            request.input_modalities(),
            vec!["text", "image", "audio", "file", "video"]
        );
        assert!(request.extra.contains_key("plugins"));
        let used = request.parameters_used();
        for p in [
            "tools",
            "tool_choice",
            "temperature",
            "stop",
            "seed",
            "logprobs",
            "top_logprobs",
            "reasoning",
        ] {
            assert!(used.contains(&p), "{p}");
        }
        // Round trip keeps the message shapes.
        let back = serde_json::to_value(&request).expect("serialize");
        assert_eq!(
            back["messages"][3]["tool_calls"][0]["function"]["name"],
            "f"
        );
        assert_eq!(
            back["messages"][2]["content"][0]["cache_control"]["type"],
            "ephemeral"
        );
    }

    #[test]
    fn names_what_is_wrong() {
        let cases = [
            (json!([1]), "must be a JSON object"),
            (json!({"model": "a/b"}), "missing field `messages`"),
            (json!({"messages": []}), "at least one message"),
            (json!({"messages": "hi"}), "messages"),
            (
                json!({"messages": [{"role": "bot", "content": "x"}]}),
                "unknown variant `bot`",
            ),
            (
                json!({"messages": [{"role": "user"}]}),
                "missing field `content`",
            ),
            (
                json!({"messages": [{"role": "user", "content": 5}]}),
                "content must be a string or an array",
            ),
            (
                json!({"messages": [{"role": "user", "content": [{"type": "sound"}]}]}),
                "part [0]",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "temperature": 3}),
                "temperature must be in [0, 2]",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}),
                "temperature",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "top_p": 0}),
                "top_p",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "stop": ["a","b","c","d","e"]}),
                "stop takes at most 4 entries, got 5",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "models": vec!["a/b"; 129]}),
                "models takes at most 128 entries, got 129",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "tools": vec![json!({"type": "function", "function": {"name": "f"}}); 129]}),
                "tools takes at most 128 entries, got 129",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "provider": {"order": vec!["p"; 129]}}),
                "provider.order takes at most 128 entries, got 129",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "provider": {"only": vec!["p"; 129]}}),
                "provider.only takes at most 128 entries, got 129",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "provider": {"ignore": vec!["p"; 129]}}),
                "provider.ignore takes at most 128 entries, got 129",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "provider": {"quantizations": vec!["fp8"; 17]}}),
                "provider.quantizations takes at most 16 entries, got 17",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 21}),
                "top_logprobs",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "model": ""}),
                "model must not be empty",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "tool_choice": "sometimes"}),
                "tool_choice",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "reasoning": {"effort": "huge"}}),
                "reasoning effort",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "reasoning": {"effort": "low"}, "reasoning_effort": "high"}),
                "differs",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "yaml"}}),
                "response_format.type",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "max_tokens": -1}),
                "max_tokens",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "provider": {"sortt": "price"}}),
                "unknown field `sortt`",
            ),
        ];
        for (body, needle) in cases {
            let err = parse(body.clone()).expect_err(&body.to_string());
            assert!(err.contains(needle), "{body}: {err:?} lacks {needle:?}");
        }
    }

    #[test]
    fn malformed_json_is_named() {
        let err = ChatRequest::from_json(b"{\"messages\": [").expect_err("malformed");
        assert!(err.0.starts_with("Invalid JSON"), "{}", err.0);
    }

    #[test]
    fn estimates_grow_with_content() {
        let small = parse(json!({"messages": [{"role": "user", "content": "hi"}]})).expect("valid");
        let big = parse(json!({"messages": [{"role": "user", "content": "hi ".repeat(400)}]}))
            .expect("valid");
        assert!(big.estimated_prompt_tokens() > small.estimated_prompt_tokens() + 250);
    }
}
