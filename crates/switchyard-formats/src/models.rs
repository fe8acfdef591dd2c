//! The contract's model entry (`Model`, as `GET /models`, `/models/user`, `/model/{author}/{slug}`
//! and `/embeddings/models` show models) and public endpoint (`PublicEndpoint`, as
//! `/models/{author}/{slug}/endpoints` and `/endpoints/zdr` show endpoints).
//!
//! An endpoint also has the members OpenRouter's SDKs require beyond the document
//! (`supports_tool_choice` per value, `native_tools`, `supports_diarization`).
//!
//! A model's prices are those of its cheapest endpoint, written as the catalogue wrote them.
//! Its `supported_parameters` are the contract's request parameters its endpoints take
//! ([`Catalog::model_parameters`]): never empty for a chat model, since an endpoint that lists
//! none takes what its provider kind's codec forwards.

use serde_json::{json, Map, Value};
use switchyard_core::catalog::{Catalog, Endpoint, Model, Pricing};
use switchyard_core::health::{CircuitState, EndpointStats};

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

/// The `architecture` object.
pub fn architecture_json(m: &Model) -> Value {
    json!({
        "modality": m.modality(),
        "input_modalities": m.input_modalities,
        "output_modalities": m.output_modalities,
        "tokenizer": m.tokenizer,
        "instruct_type": m.instruct_type,
    })
}

/// One model of a models list.
pub fn model_entry(catalog: &Catalog, m: &Model) -> Value {
    let top = m.cheapest_endpoint();
    let card = &m.card;
    let mut entry = json!({
        "id": m.id,
        "canonical_slug": m.canonical_slug,
        "hugging_face_id": m.hugging_face_id,
        "name": m.name,
        "created": m.created,
        "description": m.description,
        "context_length": m.context_length,
        "architecture": architecture_json(m),
        "pricing": top.map_or(Value::Null, |e| pricing_json(&e.pricing)),
        "top_provider": {
            "context_length": top.map(|e| e.context_length),
            "max_completion_tokens": top.and_then(|e| e.max_completion_tokens),
            "is_moderated": false,
        },
        "per_request_limits": card.per_request_limits.map(|l| json!({
            "prompt_tokens": l.prompt_tokens,
            "completion_tokens": l.completion_tokens,
        })),
        "supported_parameters": catalog.model_parameters(m),
        "default_parameters": card.default_parameters,
        "supported_voices": card.supported_voices,
        "knowledge_cutoff": card.knowledge_cutoff,
        "expiration_date": card.expiration_date,
        "links": {"details": format!("/api/v1/models/{}/endpoints", m.id)},
    });
    // The contract's `reasoning` is an object when present, never null.
    if let Some(r) = &card.reasoning {
        let mut reasoning = Map::new();
        reasoning.insert("mandatory".into(), json!(r.mandatory));
        for (name, value) in [
            ("default_enabled", r.default_enabled.map(Value::Bool)),
            (
                "default_effort",
                r.default_effort.as_ref().map(|e| json!(e)),
            ),
            (
                "supported_efforts",
                r.supported_efforts.as_ref().map(|e| json!(e)),
            ),
            (
                "supports_max_tokens",
                r.supports_max_tokens.map(Value::Bool),
            ),
        ] {
            if let Some(value) = value {
                reasoning.insert(name.into(), value);
            }
        }
        entry["reasoning"] = Value::Object(reasoning);
    }
    entry
}

/// One endpoint of a model, as the endpoints lists show it, with its measured performance.
/// `provider_name` is the provider's display name from the catalogue.
pub fn endpoint_entry(
    catalog: &Catalog,
    m: &Model,
    e: &Endpoint,
    provider_name: &str,
    stats: &EndpointStats,
) -> Value {
    let parameters = catalog.endpoint_parameters(m, e);
    let tool_choice = parameters.contains(&"tool_choice");
    json!({
        "name": format!("{provider_name} | {}", m.id),
        "model_id": m.id,
        "model_name": m.name,
        "provider_name": provider_name,
        "tag": e.tag,
        "context_length": e.context_length,
        "max_completion_tokens": e.max_completion_tokens,
        "max_prompt_tokens": e.max_prompt_tokens,
        "quantization": e.quantization,
        "pricing": pricing_json(&e.pricing),
        // 0 when serving, -1 while the circuit breaker keeps requests away.
        "status": if stats.circuit == CircuitState::Open { -1 } else { 0 },
        "service_tier": e.service_tier,
        // Which `tool_choice` values the endpoint takes: every one when it takes the parameter
        // (each codec translates all four), none otherwise.
        "supports_tool_choice": {
            "auto": tool_choice, "none": tool_choice, "required": tool_choice, "function": tool_choice,
        },
        // No server tool runs natively at a provider: the gateway sends only client tools.
        "native_tools": {},
        "supports_diarization": false,
        "supported_parameters": parameters,
        "supports_implicit_caching": e.supports_implicit_caching,
        "uptime_last_5m": stats.uptime_last_5m,
        "uptime_last_30m": stats.uptime_last_30m,
        "uptime_last_1d": stats.uptime_last_1d,
        "latency_last_30m": stats.latency_last_30m,
        "throughput_last_30m": stats.throughput_last_30m,
    })
}
