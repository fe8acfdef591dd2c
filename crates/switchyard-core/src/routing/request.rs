//! The routing view of a request, and the account policy it is planned under.

use serde::{Deserialize, Serialize};

use crate::catalog::ModelKind;
use crate::chat::ChatRequest;
use crate::preferences::ProviderPreferences;

/// What routing needs to know of a request, whatever its API: chat, embeddings or legacy
/// completions each build one ([`RouteRequest::chat`],
/// `EmbeddingsRequest::route_request`, `CompletionsRequest::route_request`).
#[derive(Debug, Clone, PartialEq)]
pub struct RouteRequest<'a> {
    /// The kind of model that can serve the request.
    pub kind: ModelKind,
    /// `model`; when absent and `models` is empty, the catalogue's default model (chat only).
    pub model: Option<&'a str>,
    /// Fallback models.
    pub models: &'a [String],
    /// The `provider` preferences.
    pub provider: Option<&'a ProviderPreferences>,
    /// Legacy `route` (`fallback` or `sort`).
    pub route: Option<&'a str>,
    /// Requested service tier.
    pub service_tier: Option<&'a str>,
    /// Standard parameters the request sets, for `require_parameters`.
    pub parameters: Vec<&'static str>,
    /// Prompt size estimate that must fit one endpoint's context, in tokens.
    pub prompt_tokens: u64,
    /// Largest completion asked for.
    pub max_output_tokens: Option<u64>,
    /// Input modalities used.
    pub modalities: Vec<&'static str>,
    /// The request declares tools.
    pub tools: bool,
    /// Embeddings: the vector length asked for (`dimensions`).
    pub dimensions: Option<u32>,
    /// Legacy completions: the field that only an endpoint serving the legacy API natively can
    /// honour (`suffix`, `echo`, several prompts...), when the request uses one.
    pub legacy_completions: Option<&'static str>,
}

impl<'a> RouteRequest<'a> {
    /// The routing view of a chat request.
    pub fn chat(request: &'a ChatRequest) -> Self {
        RouteRequest {
            kind: ModelKind::Chat,
            model: request.model.as_deref(),
            models: request.models.as_deref().unwrap_or(&[]),
            provider: request.provider.as_ref(),
            route: request.route.as_deref(),
            service_tier: request.service_tier.as_deref(),
            parameters: request.parameters_used(),
            prompt_tokens: request.estimated_prompt_tokens(),
            max_output_tokens: request.max_output_tokens(),
            modalities: request.input_modalities(),
            tools: request.tools.as_ref().is_some_and(|t| !t.is_empty()),
            dimensions: None,
            legacy_completions: None,
        }
    }
}

/// Account-level privacy and provider settings; the request can only tighten them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Forbid endpoints that may train on prompts (the account did not allow training).
    pub deny_training: bool,
    /// Only zero-data-retention endpoints.
    pub zdr_only: bool,
    /// Allow-list of provider slugs; `None` allows all.
    pub allowed_providers: Option<Vec<String>>,
    /// Deny-list of provider slugs.
    pub ignored_providers: Vec<String>,
}
