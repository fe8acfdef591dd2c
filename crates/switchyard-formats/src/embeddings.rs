//! OpenRouter's (and OpenAI's) embeddings API, `POST /api/v1/embeddings`, and the list of
//! embedding models, `GET /api/v1/embeddings/models`.
//!
//! [`parse`] reads a client's body into the canonical
//! [`EmbeddingsRequest`](switchyard_core::embeddings::EmbeddingsRequest); [`EmbeddingsAnswer`]
//! writes the vectors a provider returned as the contract's `list` object.
//!
//! Input forms: a string, a list of strings, a token array, a list of token arrays, and
//! OpenRouter's multimodal form (`[{content: [parts]}]`). A multimodal item made of one text
//! part is that text; any other part (`image_url`, `input_audio`, `input_video`, `input_file`)
//! is refused, naming it, as is an item of several parts: the gateway embeds text. Unknown
//! fields are refused, naming them.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value};
use switchyard_core::catalog::{Catalog, Model, ModelKind};
use switchyard_core::chat::json_type;
use switchyard_core::embeddings::{
    to_base64, EmbeddingInput, Embeddings, EmbeddingsRequest, EncodingFormat,
};
use switchyard_core::pricing::{Cost, Usage};
use switchyard_core::routing::ProviderPreferences;

use crate::models::model_entry;

/// A body that is not a valid embeddings request (a 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EmbeddingsError(pub String);

fn invalid<T>(message: impl Into<String>) -> Result<T, EmbeddingsError> {
    Err(EmbeddingsError(format!(
        "Invalid request: {}",
        message.into()
    )))
}

/// The request fields the gateway takes.
pub const FIELDS: &[&str] = &[
    "model",
    "models",
    "input",
    "encoding_format",
    "dimensions",
    "input_type",
    "user",
    "provider",
];

/// Most items one request may embed (OpenAI's limit).
pub const MAX_INPUTS: usize = 2048;

/// Parses and validates a JSON body.
pub fn parse(body: &[u8]) -> Result<EmbeddingsRequest, EmbeddingsError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| EmbeddingsError(format!("Invalid JSON in request body: {e}")))?;
    parse_value(&value)
}

/// Parses and validates a JSON value.
pub fn parse_value(value: &Value) -> Result<EmbeddingsRequest, EmbeddingsError> {
    let Some(body) = value.as_object() else {
        return Err(EmbeddingsError(format!(
            "Request body must be a JSON object, not {}",
            json_type(value)
        )));
    };
    if let Some(unknown) = body.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return invalid(format!(
            "unknown field `{unknown}` (accepted: {})",
            FIELDS.join(", ")
        ));
    }
    let present = |name: &str| body.get(name).filter(|v| !v.is_null());
    let model = match present("model") {
        Some(Value::String(m)) if !m.trim().is_empty() => m.clone(),
        Some(Value::String(_)) => return invalid("model must not be empty"),
        Some(other) => return invalid(format!("model must be a string, not {}", json_type(other))),
        None => return invalid("model: field required"),
    };
    let models = match present("models") {
        None => Vec::new(),
        Some(Value::Array(list)) => {
            let mut models = Vec::with_capacity(list.len());
            for (i, m) in list.iter().enumerate() {
                match m.as_str() {
                    Some(s) => models.push(s.to_owned()),
                    None => return invalid(format!("models[{i}] must be a model id string")),
                }
            }
            models
        }
        Some(other) => {
            return invalid(format!(
                "models must be an array of model ids, not {}",
                json_type(other)
            ))
        }
    };
    let input = match present("input") {
        Some(input) => parse_input(input)?,
        None => return invalid("input: field required"),
    };
    if input.len() > MAX_INPUTS {
        return invalid(format!(
            "input takes at most {MAX_INPUTS} items, got {}",
            input.len()
        ));
    }
    let encoding_format = match present("encoding_format").map(Value::as_str) {
        None | Some(Some("float")) => EncodingFormat::Float,
        Some(Some("base64")) => EncodingFormat::Base64,
        Some(_) => return invalid("encoding_format must be \"float\" or \"base64\""),
    };
    let dimensions = match present("dimensions") {
        None => None,
        Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) if n >= 1 => Some(n),
            _ => return invalid("dimensions must be a positive integer"),
        },
    };
    let text = |name: &str| -> Result<Option<String>, EmbeddingsError> {
        match present(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => invalid(format!("{name} must be a string, not {}", json_type(other))),
        }
    };
    let input_type = text("input_type")?;
    let user = text("user")?;
    let provider = match present("provider") {
        None => None,
        Some(p) => Some(
            serde_json::from_value::<ProviderPreferences>(p.clone()).map_err(|e| {
                EmbeddingsError(format!(
                    "Invalid request: provider: {}",
                    switchyard_core::parse_error::value_free(&e.to_string())
                ))
            })?,
        ),
    };
    Ok(EmbeddingsRequest {
        model,
        models,
        input,
        encoding_format,
        dimensions,
        input_type,
        user,
        provider,
    })
}

/// A token id: a non-negative integer that fits 32 bits.
fn token(value: &Value, at: &str) -> Result<u32, EmbeddingsError> {
    match value.as_u64().and_then(|n| u32::try_from(n).ok()) {
        Some(t) => Ok(t),
        None => invalid(format!("{at} must be a token id (a non-negative integer)")),
    }
}

fn tokens(list: &[Value], at: &str) -> Result<Vec<u32>, EmbeddingsError> {
    if list.is_empty() {
        return invalid(format!("{at} must not be an empty token array"));
    }
    list.iter()
        .enumerate()
        .map(|(i, t)| token(t, &format!("{at}[{i}]")))
        .collect()
}

fn parse_input(input: &Value) -> Result<EmbeddingInput, EmbeddingsError> {
    let items = match input {
        Value::String(s) if s.is_empty() => return invalid("input must not be an empty string"),
        Value::String(s) => return Ok(EmbeddingInput::Texts(vec![s.clone()])),
        Value::Array(items) if items.is_empty() => {
            return invalid("input must not be an empty array")
        }
        Value::Array(items) => items,
        other => {
            return invalid(format!(
            "input must be a string, an array of strings or token ids, or multimodal items, not {}",
            json_type(other)
        ))
        }
    };
    match &items[0] {
        Value::Number(_) => Ok(EmbeddingInput::Tokens(vec![tokens(items, "input")?])),
        Value::Array(_) => {
            let mut all = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let at = format!("input[{i}]");
                match item {
                    Value::Array(list) => all.push(tokens(list, &at)?),
                    _ => return invalid(format!("{at} must be a token array like the others")),
                }
            }
            Ok(EmbeddingInput::Tokens(all))
        }
        Value::String(_) | Value::Object(_) => {
            let mut texts = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let at = format!("input[{i}]");
                match item {
                    Value::String(s) if s.is_empty() => {
                        return invalid(format!("{at} must not be an empty string"))
                    }
                    Value::String(s) => texts.push(s.clone()),
                    Value::Object(o) => texts.push(multimodal_text(o, &at)?),
                    other => {
                        return invalid(format!(
                            "{at} must be a string or a multimodal item, not {}",
                            json_type(other)
                        ))
                    }
                }
            }
            Ok(EmbeddingInput::Texts(texts))
        }
        other => invalid(format!(
            "input[0] must be a string, a token id, a token array or a multimodal item, not {}",
            json_type(other)
        )),
    }
}

/// The text of a multimodal item (`{content: [{type: "text", text}]}`): exactly one text part.
fn multimodal_text(item: &Map<String, Value>, at: &str) -> Result<String, EmbeddingsError> {
    if let Some(unknown) = item.keys().find(|k| k.as_str() != "content") {
        return invalid(format!(
            "{at}: unknown field `{unknown}` (accepted: content)"
        ));
    }
    let Some(parts) = item.get("content").and_then(Value::as_array) else {
        return invalid(format!("{at}.content: field required (an array of parts)"));
    };
    for (j, part) in parts.iter().enumerate() {
        match part.get("type").and_then(Value::as_str) {
            Some("text") => {}
            Some(kind @ ("image_url" | "input_audio" | "input_video" | "input_file")) => {
                return invalid(format!(
                    "{at}.content[{j}]: {kind} parts cannot be embedded: this gateway embeds text only"
                ))
            }
            Some(other) => {
                return invalid(format!(
                    "{at}.content[{j}].type: {} is not a content part type",
                    switchyard_core::parse_error::name(other)
                ))
            }
            None => return invalid(format!("{at}.content[{j}].type: field required")),
        }
    }
    match parts.as_slice() {
        [part] => match part.get("text").and_then(Value::as_str) {
            Some(text) if !text.is_empty() => Ok(text.to_owned()),
            _ => invalid(format!("{at}.content[0].text must be a non-empty string")),
        },
        [] => invalid(format!("{at}.content must hold one part")),
        _ => invalid(format!(
            "{at}.content: {} parts make one multimodal embedding, which this gateway cannot produce; send one text part for each input",
            parts.len()
        )),
    }
}

/// The answer to an embeddings request: the contract's `list` object.
///
/// Serialize it (`serde_json::to_vec`) to get the body; vectors are written straight from the
/// decoded `f32`s, as numbers or as base64 of their little-endian bytes.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddingsAnswer<'a> {
    /// The generation id (`gen-...`).
    pub id: &'a str,
    /// The catalogue id of the model that served (never the alias asked for).
    pub model: &'a str,
    /// The vectors.
    pub embeddings: &'a Embeddings,
    /// How the client asked for vectors.
    pub encoding_format: EncodingFormat,
    /// The exact cost of the usage at the endpoint's prices.
    pub cost: &'a Cost,
    /// Whether the provider key is the operator's own.
    pub is_byok: bool,
}

impl Serialize for EmbeddingsAnswer<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(5))?;
        map.serialize_entry("id", self.id)?;
        map.serialize_entry("object", "list")?;
        map.serialize_entry("model", self.model)?;
        map.serialize_entry(
            "data",
            &Data {
                vectors: &self.embeddings.vectors,
                base64: self.encoding_format == EncodingFormat::Base64,
            },
        )?;
        map.serialize_entry(
            "usage",
            &usage_json(&self.embeddings.usage, self.cost, self.is_byok),
        )?;
        map.end()
    }
}

struct Data<'a> {
    vectors: &'a [Vec<f32>],
    base64: bool,
}

impl Serialize for Data<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.vectors.len()))?;
        for (index, vector) in self.vectors.iter().enumerate() {
            seq.serialize_element(&Item {
                index,
                vector,
                base64: self.base64,
            })?;
        }
        seq.end()
    }
}

struct Item<'a> {
    index: usize,
    vector: &'a [f32],
    base64: bool,
}

impl Serialize for Item<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("object", "embedding")?;
        map.serialize_entry("index", &self.index)?;
        if self.base64 {
            map.serialize_entry("embedding", &to_base64(self.vector))?;
        } else {
            map.serialize_entry("embedding", self.vector)?;
        }
        map.end()
    }
}

/// The contract's `usage` of an embeddings answer: input tokens only.
pub fn usage_json(usage: &Usage, cost: &Cost, is_byok: bool) -> Value {
    json!({
        "prompt_tokens": usage.prompt_tokens,
        "total_tokens": usage.prompt_tokens,
        "cost": cost.total.to_json_number(),
        "is_byok": is_byok,
        "cost_details": {
            "upstream_inference_cost": if is_byok { cost.total.to_json_number() } else { Value::Null },
            "upstream_inference_prompt_cost": cost.prompt.to_json_number(),
            "upstream_inference_completions_cost": cost.completion.to_json_number(),
        },
    })
}

/// `GET /embeddings/models`: the catalogue's embedding models, as `/models` lists models,
/// from `offset`, at most `limit` of them (all when `None`).
pub fn models_list(catalog: &Catalog, offset: usize, limit: Option<usize>) -> Value {
    let models: Vec<&Model> = catalog
        .models()
        .iter()
        .filter(|m| m.kind() == ModelKind::Embedding)
        .collect();
    let total = models.len();
    let page: Vec<Value> = models
        .into_iter()
        .skip(offset)
        .take(limit.unwrap_or(usize::MAX))
        .map(|m| model_entry(catalog, m))
        .collect();
    let next = limit.and_then(|l| {
        (offset.saturating_add(l) < total).then(|| {
            format!(
                "/api/v1/embeddings/models?offset={}&limit={l}",
                offset.saturating_add(l)
            )
        })
    });
    json!({"data": page, "links": {"next": next}, "total_count": total})
}

#[cfg(test)]
mod tests;
