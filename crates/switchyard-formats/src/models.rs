//! The contract's model entry, as `GET /models` and `GET /embeddings/models` list models.
//!
//! Prices are those of the model's cheapest endpoint, written as the catalogue wrote them.

use serde_json::{json, Map, Value};
use switchyard_core::catalog::{Model, Pricing};

/// The `pricing` object: prompt and completion always, the other keys where the endpoint
/// charges them.
pub fn pricing_json(p: &Pricing) -> Value {
    let mut map = Map::new();
    map.insert("prompt".into(), json!(p.prompt.text));
    map.insert("completion".into(), json!(p.completion.text));
    for (name, price) in p.optional_keys() {
        if let Some(price) = price {
            map.insert(name.into(), json!(price.text));
        }
    }
    Value::Object(map)
}

/// One model of a models list.
pub fn model_entry(m: &Model) -> Value {
    let top = m.cheapest_endpoint();
    json!({
        "id": m.id,
        "canonical_slug": m.canonical_slug,
        "hugging_face_id": m.hugging_face_id,
        "name": m.name,
        "created": m.created,
        "description": m.description,
        "context_length": m.context_length,
        "architecture": {
            "modality": m.modality(),
            "input_modalities": m.input_modalities,
            "output_modalities": m.output_modalities,
            "tokenizer": m.tokenizer,
            "instruct_type": m.instruct_type,
        },
        "pricing": top.map_or(Value::Null, |e| pricing_json(&e.pricing)),
        "top_provider": {
            "context_length": top.map(|e| e.context_length),
            "max_completion_tokens": top.and_then(|e| e.max_completion_tokens),
            "is_moderated": false,
        },
        "per_request_limits": Value::Null,
        "supported_parameters": m.supported_parameters(),
        "default_parameters": Value::Null,
        "supported_voices": Value::Null,
        "knowledge_cutoff": Value::Null,
        "expiration_date": Value::Null,
        "links": {"details": format!("/api/v1/models/{}/endpoints", m.id)},
    })
}
