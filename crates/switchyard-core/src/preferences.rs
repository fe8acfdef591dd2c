//! The request's `provider` preferences: how it narrows and orders the endpoints that may serve
//! it. [`crate::routing`] applies them.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::json_type;

/// `data_collection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataCollection {
    /// Endpoints that retain or train are allowed.
    Allow,
    /// Only endpoints that neither retain nor train.
    Deny,
}

/// `sort` in its string or object form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum SortPreference {
    /// `"price"`, `"throughput"`, `"latency"` or `"exacto"`.
    By(SortBy),
    /// `{by, partition}`.
    Object {
        /// Sort key.
        by: SortBy,
        /// `model` (default) or `none`.
        #[serde(skip_serializing_if = "Option::is_none")]
        partition: Option<Partition>,
    },
}

impl<'de> Deserialize<'de> for SortPreference {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Object {
            by: SortBy,
            #[serde(default)]
            partition: Option<Partition>,
        }
        let value = Value::deserialize(deserializer)?;
        match value {
            Value::String(_) => serde_json::from_value::<SortBy>(value)
                .map(SortPreference::By)
                .map_err(de::Error::custom),
            Value::Object(_) => serde_json::from_value::<Object>(value)
                .map(|o| SortPreference::Object {
                    by: o.by,
                    partition: o.partition,
                })
                .map_err(de::Error::custom),
            other => Err(de::Error::custom(format!(
                "sort must be \"price\", \"throughput\", \"latency\", \"exacto\" or {{\"by\", \"partition\"}}, not {}",
                json_type(&other)
            ))),
        }
    }
}

impl SortPreference {
    /// The sort key.
    pub fn by(&self) -> SortBy {
        match self {
            SortPreference::By(by) | SortPreference::Object { by, .. } => *by,
        }
    }

    /// The partition (default `model`).
    pub fn partition(&self) -> Partition {
        match self {
            SortPreference::Object {
                partition: Some(p), ..
            } => *p,
            _ => Partition::Model,
        }
    }
}

/// Sort keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortBy {
    /// Cheapest first.
    Price,
    /// Fastest tokens per second first.
    Throughput,
    /// Lowest time to first token first.
    Latency,
    /// Tool-calling quality; treated as throughput here.
    Exacto,
}

/// Sort partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Partition {
    /// Primary model's endpoints first, then fallback models'.
    Model,
    /// All models' endpoints sorted together.
    None,
}

/// A performance preference: a number (the p50) or percentiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Percentiles {
    /// p50 value.
    Number(f64),
    /// Per-percentile thresholds.
    Object {
        /// p50.
        #[serde(default)]
        p50: Option<f64>,
        /// p75.
        #[serde(default)]
        p75: Option<f64>,
        /// p90.
        #[serde(default)]
        p90: Option<f64>,
        /// p99.
        #[serde(default)]
        p99: Option<f64>,
    },
}

impl Percentiles {
    /// The thresholds as `[p50, p75, p90, p99]`.
    pub(crate) fn thresholds(&self) -> [Option<f64>; 4] {
        match self {
            Percentiles::Number(n) => [Some(*n), None, None, None],
            Percentiles::Object { p50, p75, p90, p99 } => [*p50, *p75, *p90, *p99],
        }
    }
}

/// `max_price`: prompt and completion in USD per million tokens, others per unit. Numbers or
/// decimal strings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxPrice {
    /// USD per million prompt tokens.
    #[serde(default)]
    pub prompt: Option<Value>,
    /// USD per million completion tokens.
    #[serde(default)]
    pub completion: Option<Value>,
    /// USD per request.
    #[serde(default)]
    pub request: Option<Value>,
    /// USD per image.
    #[serde(default)]
    pub image: Option<Value>,
    /// USD per audio unit.
    #[serde(default)]
    pub audio: Option<Value>,
}

/// The request's `provider` object. Unknown fields are refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderPreferences {
    /// Provider slugs tried first, in order.
    #[serde(default)]
    pub order: Option<Vec<String>>,
    /// Whether other providers may serve after `order` (default true).
    #[serde(default)]
    pub allow_fallbacks: Option<bool>,
    /// Only endpoints that support every parameter sent.
    #[serde(default)]
    pub require_parameters: Option<bool>,
    /// `allow` or `deny`.
    #[serde(default)]
    pub data_collection: Option<DataCollection>,
    /// Only zero-data-retention endpoints.
    #[serde(default)]
    pub zdr: Option<bool>,
    /// Only models whose author allows distillation.
    #[serde(default)]
    pub enforce_distillable_text: Option<bool>,
    /// Allow-list of provider slugs.
    #[serde(default)]
    pub only: Option<Vec<String>>,
    /// Deny-list of provider slugs.
    #[serde(default)]
    pub ignore: Option<Vec<String>>,
    /// Allowed quantizations.
    #[serde(default)]
    pub quantizations: Option<Vec<String>>,
    /// Strict ordering.
    #[serde(default)]
    pub sort: Option<SortPreference>,
    /// Price ceiling.
    #[serde(default)]
    pub max_price: Option<MaxPrice>,
    /// Soft throughput preference (tokens per second).
    #[serde(default)]
    pub preferred_min_throughput: Option<Percentiles>,
    /// Soft latency preference (seconds).
    #[serde(default)]
    pub preferred_max_latency: Option<Percentiles>,
    /// Provider-specific options.
    #[serde(default)]
    pub options: Option<Map<String, Value>>,
}
