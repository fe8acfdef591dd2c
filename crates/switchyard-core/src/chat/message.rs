//! The messages of a chat request: roles, text and multi-part content, tool calls, and the
//! tools a model may call.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::json_type;

/// A text or multi-part message content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Content parts.
    Parts(Vec<ContentPart>),
}

impl TryFrom<Value> for Content {
    type Error = String;

    fn try_from(value: Value) -> Result<Self, Self::Error> {
        match value {
            Value::String(text) => Ok(Content::Text(text)),
            Value::Array(items) => {
                let mut parts = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    let part = serde_json::from_value::<ContentPart>(item)
                        .map_err(|e| format!("part [{i}]: {e}"))?;
                    parts.push(part);
                }
                Ok(Content::Parts(parts))
            }
            other => Err(format!(
                "content must be a string or an array of content parts, not {}",
                json_type(&other)
            )),
        }
    }
}

impl From<Content> for Value {
    fn from(content: Content) -> Value {
        match content {
            Content::Text(text) => Value::String(text),
            Content::Parts(parts) => Value::Array(
                parts
                    .into_iter()
                    .filter_map(|p| serde_json::to_value(p).ok())
                    .collect(),
            ),
        }
    }
}

impl Content {
    /// All the text of the content, parts joined without separator.
    pub fn text(&self) -> String {
        match self {
            Content::Text(text) => text.clone(),
            Content::Parts(parts) => parts
                .iter()
                .filter_map(|p| match p {
                    ContentPart::Text { text, .. } => Some(text.as_str()),
                    _ => None,
                })
                .collect(),
        }
    }

    /// Characters of text and number of non-text parts, for token estimates.
    pub(crate) fn size(&self) -> (usize, usize) {
        match self {
            Content::Text(text) => (text.len(), 0),
            Content::Parts(parts) => parts.iter().fold((0, 0), |(chars, media), p| match p {
                ContentPart::Text { text, .. } => (chars + text.len(), media),
                _ => (chars, media + 1),
            }),
        }
    }
}

/// An image reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageUrl {
    /// `https://...` or `data:image/png;base64,...`.
    pub url: String,
    /// `auto`, `low` or `high`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One part of a multi-part content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    /// Text.
    Text {
        /// The text.
        text: String,
        /// Anthropic-style cache breakpoint.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    /// An image by URL or data URL.
    ImageUrl {
        /// The image.
        image_url: ImageUrl,
    },
    /// Base64 audio `{data, format}`.
    InputAudio {
        /// The audio.
        input_audio: Value,
    },
    /// A file `{filename?, file_data?, file_id?}`.
    File {
        /// The file.
        file: Value,
    },
    /// A video by URL.
    VideoUrl {
        /// The video.
        video_url: Value,
    },
}

impl ContentPart {
    /// The part's `type` as written on the wire.
    pub fn type_name(&self) -> &'static str {
        match self {
            ContentPart::Text { .. } => "text",
            ContentPart::ImageUrl { .. } => "image_url",
            ContentPart::InputAudio { .. } => "input_audio",
            ContentPart::File { .. } => "file",
            ContentPart::VideoUrl { .. } => "video_url",
        }
    }
}

/// A function call made by the assistant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Call id, echoed by the tool result.
    pub id: String,
    /// Always `function`.
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    /// The call.
    pub function: FunctionCall,
}

fn function_type() -> String {
    "function".to_owned()
}

/// Name and JSON-encoded arguments of a function call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// Function name.
    pub name: String,
    /// Arguments as a JSON string.
    #[serde(default)]
    pub arguments: String,
}

/// A chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum Message {
    /// System instructions.
    System {
        /// Content.
        content: Content,
        /// Participant name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// Developer instructions (newer name for system).
    Developer {
        /// Content.
        content: Content,
        /// Participant name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// A user turn.
    User {
        /// Content.
        content: Content,
        /// Participant name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// An assistant turn; as the last message, a prefill.
    Assistant {
        /// Content, absent when the turn only calls tools.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<Content>,
        /// Participant name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Tool calls.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tool_calls: Option<Vec<ToolCall>>,
        /// Reasoning text returned earlier.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reasoning: Option<String>,
        /// Structured reasoning (with signatures) returned earlier.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reasoning_details: Option<Vec<Value>>,
        /// Refusal text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refusal: Option<String>,
    },
    /// A tool result.
    Tool {
        /// The result.
        content: Content,
        /// The call it answers.
        tool_call_id: String,
    },
}

impl Message {
    /// The role as written on the wire.
    pub fn role(&self) -> &'static str {
        match self {
            Message::System { .. } => "system",
            Message::Developer { .. } => "developer",
            Message::User { .. } => "user",
            Message::Assistant { .. } => "assistant",
            Message::Tool { .. } => "tool",
        }
    }

    /// The message content, when it has one.
    pub fn content(&self) -> Option<&Content> {
        match self {
            Message::System { content, .. }
            | Message::Developer { content, .. }
            | Message::User { content, .. }
            | Message::Tool { content, .. } => Some(content),
            Message::Assistant { content, .. } => content.as_ref(),
        }
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// `function` (server tools such as `openrouter:web_search` are passed through).
    #[serde(rename = "type")]
    pub kind: String,
    /// The function definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionDefinition>,
    /// Anything else the tool carries (server-tool options, cache_control).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A function definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionDefinition {
    /// Name.
    pub name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    /// Strict schema adherence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}
