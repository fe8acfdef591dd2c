//! Pricing: the exact cost of a generation, and the most a request may cost.

use serde::{Deserialize, Serialize};

use crate::catalog::{Price, Pricing};
use crate::money::Money;

/// Token counts reported for one generation, in the provider's native tokenizer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens, including cached and cache-written ones.
    pub prompt_tokens: u64,
    /// Completion tokens, including reasoning tokens.
    pub completion_tokens: u64,
    /// Prompt tokens read from the provider's cache.
    pub cached_tokens: u64,
    /// Prompt tokens written to the provider's cache.
    pub cache_write_tokens: u64,
    /// Completion tokens spent on reasoning.
    pub reasoning_tokens: u64,
    /// Prompt audio tokens.
    pub audio_prompt_tokens: u64,
    /// Web searches performed.
    pub web_search_requests: u64,
}

impl Usage {
    /// Prompt plus completion tokens.
    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}

/// The cost of a generation, split as `cost_details` reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cost {
    /// Prompt side (plain, cached and cache-write tokens).
    pub prompt: Money,
    /// Completion side (completion and reasoning tokens).
    pub completion: Money,
    /// Per-request and per-search charges.
    pub other: Money,
    /// Everything.
    pub total: Money,
}

fn times(price: Option<&Price>, fallback: &Price, count: u64) -> Option<Money> {
    price.unwrap_or(fallback).amount.checked_mul(count)
}

/// Exact cost of a generation at an endpoint's prices. `None` only on overflow.
///
/// Cached tokens are billed at `input_cache_read` and cache-written tokens at
/// `input_cache_write` (each falling back to the prompt price); reasoning tokens at
/// `internal_reasoning` when the endpoint sets it, else as completion tokens.
pub fn cost(usage: &Usage, pricing: &Pricing) -> Option<Cost> {
    let cached = usage.cached_tokens.min(usage.prompt_tokens);
    let written = usage.cache_write_tokens.min(usage.prompt_tokens - cached);
    let plain = usage.prompt_tokens - cached - written;
    let prompt = pricing
        .prompt
        .amount
        .checked_mul(plain)?
        .checked_add(times(
            pricing.input_cache_read.as_ref(),
            &pricing.prompt,
            cached,
        )?)?
        .checked_add(times(
            pricing.input_cache_write.as_ref(),
            &pricing.prompt,
            written,
        )?)?;
    let completion = match &pricing.internal_reasoning {
        Some(reasoning_price) => {
            let reasoning = usage.reasoning_tokens.min(usage.completion_tokens);
            pricing
                .completion
                .amount
                .checked_mul(usage.completion_tokens - reasoning)?
                .checked_add(reasoning_price.amount.checked_mul(reasoning)?)?
        }
        None => pricing
            .completion
            .amount
            .checked_mul(usage.completion_tokens)?,
    };
    let mut other = Money::ZERO;
    if let Some(request) = &pricing.request {
        other = other.checked_add(request.amount)?;
    }
    if let Some(search) = &pricing.web_search {
        other = other.checked_add(search.amount.checked_mul(usage.web_search_requests)?)?;
    }
    let total = prompt.checked_add(completion)?.checked_add(other)?;
    Some(Cost {
        prompt,
        completion,
        other,
        total,
    })
}

/// The most a request can cost: every prompt token at the highest prompt-side price and every
/// allowed completion token at the highest completion-side price. Used to hold credits.
pub fn max_cost(
    prompt_tokens: u64,
    max_completion_tokens: u64,
    pricing: &Pricing,
) -> Option<Money> {
    let prompt_price = [&pricing.input_cache_write, &pricing.input_cache_read]
        .into_iter()
        .flatten()
        .map(|p| p.amount)
        .fold(pricing.prompt.amount, Money::max);
    let completion_price = pricing
        .internal_reasoning
        .as_ref()
        .map_or(pricing.completion.amount, |p| {
            p.amount.max(pricing.completion.amount)
        });
    let request = pricing.request.as_ref().map_or(Money::ZERO, |p| p.amount);
    prompt_price
        .checked_mul(prompt_tokens)?
        .checked_add(completion_price.checked_mul(max_completion_tokens)?)?
        .checked_add(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(text: &str) -> Price {
        Price {
            text: text.to_owned(),
            amount: Money::parse_usd(text).expect("price"),
        }
    }

    fn pricing() -> Pricing {
        Pricing {
            prompt: p("0.0000025"),
            completion: p("0.00001"),
            request: None,
            image: None,
            image_output: None,
            audio: None,
            audio_output: None,
            input_cache_read: Some(p("0.00000125")),
            input_cache_write: Some(p("0.000003125")),
            internal_reasoning: None,
            web_search: None,
        }
    }

    #[test]
    fn cost_table() {
        // (usage, expected total in USD)
        let cases = [
            (
                Usage {
                    prompt_tokens: 10,
                    completion_tokens: 4,
                    ..Usage::default()
                },
                "0.000065",
            ),
            (
                Usage {
                    prompt_tokens: 1_000_000,
                    ..Usage::default()
                },
                "2.5",
            ),
            (
                Usage {
                    prompt_tokens: 100,
                    cached_tokens: 40,
                    ..Usage::default()
                },
                "0.0002",
            ),
            (
                Usage {
                    prompt_tokens: 100,
                    cache_write_tokens: 100,
                    ..Usage::default()
                },
                "0.0003125",
            ),
            (
                Usage {
                    prompt_tokens: 10,
                    cached_tokens: 50,
                    ..Usage::default()
                },
                "0.0000125",
            ),
            (Usage::default(), "0"),
        ];
        for (usage, expected) in cases {
            let total = cost(&usage, &pricing()).expect("cost").total;
            assert_eq!(
                total,
                Money::parse_usd(expected).expect("money"),
                "{usage:?}"
            );
        }
    }

    #[test]
    fn reasoning_and_request_prices() {
        let mut pr = pricing();
        pr.internal_reasoning = Some(p("0.00002"));
        pr.request = Some(p("0.001"));
        let usage = Usage {
            completion_tokens: 10,
            reasoning_tokens: 4,
            ..Usage::default()
        };
        let c = cost(&usage, &pr).expect("cost");
        assert_eq!(c.completion, Money::parse_usd("0.00014").expect("m"));
        assert_eq!(c.other, Money::parse_usd("0.001").expect("m"));
        assert_eq!(c.total, Money::parse_usd("0.00114").expect("m"));
    }

    proptest! {
        #[test]
        fn hold_covers_any_usage_within_limits(
            prompt in 0u64..200_000, completion in 0u64..100_000,
            cached in 0u64..200_000, written in 0u64..200_000, reasoning in 0u64..100_000,
        ) {
            let mut pr = pricing();
            pr.internal_reasoning = Some(p("0.00003"));
            let usage = Usage {
                prompt_tokens: prompt, completion_tokens: completion, cached_tokens: cached,
                cache_write_tokens: written, reasoning_tokens: reasoning, ..Usage::default()
            };
            let actual = cost(&usage, &pr).expect("cost");
            prop_assert!(actual.total <= max_cost(prompt, completion, &pr).expect("max"));
            prop_assert_eq!(actual.total, actual.prompt.checked_add(actual.completion).expect("sum"));
        }
    }
}
