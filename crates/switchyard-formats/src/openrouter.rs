//! OpenRouter's chat completions: the answer, its stream chunks and its `usage` object.
//!
//! These are also the canonical result of the pipeline: every provider's answer is decoded into
//! OpenAI-shaped choices, and every other client format renders from these shapes. They are
//! written straight from borrowed fields (no intermediate JSON values) on the hot path.

use serde::Serialize;
use serde_json::Value;
use switchyard_core::pricing::{Cost, Usage};

/// The comment sent while a stream waits for its first token, and between tokens.
pub const KEEPALIVE: &[u8] = b": OPENROUTER PROCESSING\n\n";

/// The stream's last frame.
pub const DONE: &[u8] = b"data: [DONE]\n\n";

/// One chunk of a stream as the client receives it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Chunk<'a> {
    /// The generation id.
    pub id: &'a str,
    /// `chat.completion.chunk`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: i64,
    /// The catalogue model that served.
    pub model: &'a str,
    /// The provider's display name.
    pub provider: &'a str,
    /// Choice deltas.
    pub choices: &'a [Value],
}

impl<'a> Chunk<'a> {
    /// The head every chunk of one stream shares, without choices.
    pub fn head(id: &'a str, created: i64, model: &'a str, provider: &'a str) -> Self {
        Chunk {
            id,
            object: "chat.completion.chunk",
            created,
            model,
            provider,
            choices: &[],
        }
    }
}

/// A non-streamed chat completion as the client receives it.
#[derive(Debug, Serialize)]
pub struct Completion<'a> {
    /// The generation id.
    pub id: &'a str,
    /// `chat.completion`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: i64,
    /// The catalogue model that served.
    pub model: &'a str,
    /// The provider's display name.
    pub provider: &'a str,
    /// Passed through from the provider.
    pub system_fingerprint: Option<&'a Value>,
    /// Passed through from the provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<&'a Value>,
    /// The choices.
    pub choices: &'a [Value],
    /// Counts and cost.
    pub usage: UsageOut,
    /// The routing decision, when the client asked for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openrouter_metadata: Option<&'a Value>,
}

/// The contract's `usage` object: counts, and the cost in USD credits.
#[derive(Debug, Clone, Serialize)]
pub struct UsageOut {
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens (reasoning included).
    pub completion_tokens: u64,
    /// Both.
    pub total_tokens: u64,
    /// Cost in credits (USD), an exact decimal written as a JSON number.
    pub cost: Value,
    /// Served with the operator's own provider key.
    pub is_byok: bool,
    /// Prompt token details.
    pub prompt_tokens_details: PromptDetails,
    /// Completion token details.
    pub completion_tokens_details: CompletionDetails,
    /// Cost details.
    pub cost_details: CostDetails,
}

/// `usage.prompt_tokens_details`.
#[derive(Debug, Clone, Serialize)]
pub struct PromptDetails {
    /// Read from the provider's cache.
    pub cached_tokens: u64,
    /// Written to the provider's cache.
    pub cache_write_tokens: u64,
    /// Audio input.
    pub audio_tokens: u64,
}

/// `usage.completion_tokens_details`.
#[derive(Debug, Clone, Serialize)]
pub struct CompletionDetails {
    /// Reasoning tokens.
    pub reasoning_tokens: u64,
}

/// `usage.cost_details`.
#[derive(Debug, Clone, Serialize)]
pub struct CostDetails {
    /// What the provider charged the operator (BYOK only).
    pub upstream_inference_cost: Value,
    /// The prompt's part.
    pub upstream_inference_prompt_cost: Value,
    /// The completion's part.
    pub upstream_inference_completions_cost: Value,
}

impl UsageOut {
    /// The usage object of a generation.
    pub fn new(usage: &Usage, cost: &Cost, is_byok: bool) -> UsageOut {
        UsageOut {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: usage.total_tokens(),
            cost: cost.total.to_json_number(),
            is_byok,
            prompt_tokens_details: PromptDetails {
                cached_tokens: usage.cached_tokens,
                cache_write_tokens: usage.cache_write_tokens,
                audio_tokens: usage.audio_prompt_tokens,
            },
            completion_tokens_details: CompletionDetails {
                reasoning_tokens: usage.reasoning_tokens,
            },
            cost_details: CostDetails {
                upstream_inference_cost: if is_byok {
                    cost.total.to_json_number()
                } else {
                    Value::Null
                },
                upstream_inference_prompt_cost: cost.prompt.to_json_number(),
                upstream_inference_completions_cost: cost.completion.to_json_number(),
            },
        }
    }
}

/// One server-sent event carrying `value` as its data.
pub fn sse<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"data: ");
    if serde_json::to_writer(&mut out, value).is_err() {
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchyard_core::money::Money;

    #[test]
    fn usage_reports_counts_and_exact_cost() {
        let usage = Usage {
            prompt_tokens: 10,
            completion_tokens: 5,
            reasoning_tokens: 2,
            cached_tokens: 3,
            ..Usage::default()
        };
        let cost = Cost {
            prompt: Money::from_picos(1_000_000),
            completion: Money::from_picos(2_500_000),
            total: Money::from_picos(3_500_000),
            ..Cost::default()
        };
        let paid = serde_json::to_value(UsageOut::new(&usage, &cost, false)).expect("json");
        assert_eq!(paid["total_tokens"], 15);
        assert_eq!(paid["cost"], json!(0.0000035));
        assert_eq!(paid["cost_details"]["upstream_inference_cost"], Value::Null);
        assert_eq!(paid["prompt_tokens_details"]["cached_tokens"], 3);
        assert_eq!(paid["completion_tokens_details"]["reasoning_tokens"], 2);
        let byok = serde_json::to_value(UsageOut::new(&usage, &cost, true)).expect("json");
        assert_eq!(
            byok["cost_details"]["upstream_inference_cost"],
            json!(0.0000035)
        );
    }

    #[test]
    fn an_event_is_one_data_line() {
        let head = Chunk::head("gen-1", 7, "a/b", "P");
        let text = String::from_utf8(sse(&head)).expect("utf-8");
        assert!(text.starts_with("data: {\"id\":\"gen-1\",\"object\":\"chat.completion.chunk\""));
        assert!(text.ends_with("}\n\n"));
    }
}
