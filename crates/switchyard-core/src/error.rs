//! Error classification shared by the codecs and the engine.

use serde::Serialize;
use serde_json::Value;

/// What went wrong upstream, in the contract's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamErrorKind {
    /// The request is invalid for this provider (its fault, not the provider's).
    InvalidRequest,
    /// The prompt does not fit the context window.
    ContextLengthExceeded,
    /// The provider refused the content.
    ContentPolicy,
    /// The provider rejected the gateway's provider key.
    ProviderAuth,
    /// The provider rate-limited the gateway.
    RateLimited,
    /// The provider is overloaded (Anthropic 529, HTTP 503).
    Overloaded,
    /// A 5xx from the provider.
    Server,
    /// The provider did not answer in time.
    Timeout,
    /// The connection failed or broke.
    Connection,
    /// The provider answered something that is not its protocol.
    InvalidResponse,
    /// The request body is too large for the provider.
    PayloadTooLarge,
    /// Not found upstream (unknown upstream model).
    NotFound,
}

/// An error from one upstream attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct UpstreamError {
    /// Classification.
    pub kind: UpstreamErrorKind,
    /// HTTP status the provider sent, if any.
    pub status: Option<u16>,
    /// Human message.
    pub message: String,
    /// The provider's raw error body (truncated), for `metadata.raw`.
    pub raw: Option<String>,
    /// The provider's own error code, when it has one.
    pub provider_code: Option<String>,
}

impl UpstreamError {
    /// A new error without raw body.
    pub fn new(kind: UpstreamErrorKind, status: Option<u16>, message: impl Into<String>) -> Self {
        UpstreamError {
            kind,
            status,
            message: message.into(),
            raw: None,
            provider_code: None,
        }
    }

    /// This error with every credential removed from its message, raw body and code (see
    /// [`crate::guard::redact_credentials`]; `known` are the gateway's own secrets): a provider
    /// that echoes the request's headers must not hand the gateway's key to a client or to the
    /// audit record.
    #[must_use]
    pub fn redact_credentials(mut self, known: &[&str]) -> Self {
        self.message = crate::guard::redact_credentials(&self.message, known);
        self.raw = self
            .raw
            .map(|raw| crate::guard::redact_credentials(&raw, known));
        self.provider_code = self
            .provider_code
            .map(|code| crate::guard::redact_credentials(&code, known));
        self
    }

    /// Classifies a provider's HTTP status (for providers without finer codes).
    pub fn kind_for_status(status: u16) -> UpstreamErrorKind {
        match status {
            400 | 422 => UpstreamErrorKind::InvalidRequest,
            401 | 403 => UpstreamErrorKind::ProviderAuth,
            404 => UpstreamErrorKind::NotFound,
            408 | 504 => UpstreamErrorKind::Timeout,
            413 => UpstreamErrorKind::PayloadTooLarge,
            429 => UpstreamErrorKind::RateLimited,
            503 | 529 => UpstreamErrorKind::Overloaded,
            _ => UpstreamErrorKind::Server,
        }
    }

    /// Whether another endpoint may be tried: connect errors, timeouts, 5xx, 429, 529, and
    /// failures that are the provider's (bad key, unknown upstream model, garbage answers).
    /// A request's own fault is returned at once.
    pub fn retryable(&self) -> bool {
        !matches!(
            self.kind,
            UpstreamErrorKind::InvalidRequest
                | UpstreamErrorKind::ContextLengthExceeded
                | UpstreamErrorKind::ContentPolicy
                | UpstreamErrorKind::PayloadTooLarge
        )
    }

    /// The HTTP status the client gets for this error.
    pub fn client_status(&self) -> u16 {
        match self.kind {
            UpstreamErrorKind::InvalidRequest | UpstreamErrorKind::ContextLengthExceeded => 400,
            UpstreamErrorKind::ContentPolicy => 403,
            UpstreamErrorKind::PayloadTooLarge => 413,
            UpstreamErrorKind::RateLimited => 429,
            UpstreamErrorKind::Overloaded => 503,
            // The contract's status for a provider that did not answer in time.
            UpstreamErrorKind::Timeout => 408,
            UpstreamErrorKind::ProviderAuth
            | UpstreamErrorKind::Server
            | UpstreamErrorKind::Connection
            | UpstreamErrorKind::InvalidResponse
            | UpstreamErrorKind::NotFound => 502,
        }
    }

    /// The contract's `error_type`.
    pub fn error_type(&self) -> &'static str {
        match self.kind {
            UpstreamErrorKind::InvalidRequest => "invalid_request",
            UpstreamErrorKind::ContextLengthExceeded => "context_length_exceeded",
            UpstreamErrorKind::ContentPolicy => "content_policy_violation",
            UpstreamErrorKind::PayloadTooLarge => "payload_too_large",
            UpstreamErrorKind::RateLimited => "rate_limit_exceeded",
            UpstreamErrorKind::Overloaded => "provider_overloaded",
            UpstreamErrorKind::Timeout => "timeout",
            UpstreamErrorKind::ProviderAuth
            | UpstreamErrorKind::Server
            | UpstreamErrorKind::Connection
            | UpstreamErrorKind::InvalidResponse
            | UpstreamErrorKind::NotFound => "provider_unavailable",
        }
    }
}

/// The contract's `error_type` for a gateway status.
pub fn error_type_for_status(status: u16) -> &'static str {
    match status {
        400 => "invalid_request",
        401 => "authentication",
        402 => "payment_required",
        403 => "permission_denied",
        404 => "not_found",
        408 | 504 => "timeout",
        412 => "precondition_failed",
        413 => "payload_too_large",
        415 | 422 => "unprocessable",
        429 => "rate_limit_exceeded",
        502 => "provider_unavailable",
        503 => "provider_overloaded",
        _ => "server",
    }
}

/// The name of a JSON value's type, for error messages.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table() {
        // (upstream status, kind, retryable, client status)
        let cases = [
            (400, UpstreamErrorKind::InvalidRequest, false, 400),
            (401, UpstreamErrorKind::ProviderAuth, true, 502),
            (404, UpstreamErrorKind::NotFound, true, 502),
            (408, UpstreamErrorKind::Timeout, true, 408),
            (413, UpstreamErrorKind::PayloadTooLarge, false, 413),
            (429, UpstreamErrorKind::RateLimited, true, 429),
            (500, UpstreamErrorKind::Server, true, 502),
            (503, UpstreamErrorKind::Overloaded, true, 503),
            (529, UpstreamErrorKind::Overloaded, true, 503),
        ];
        for (status, kind, retryable, client) in cases {
            let err = UpstreamError::new(UpstreamError::kind_for_status(status), Some(status), "x");
            assert_eq!(err.kind, kind, "{status}");
            assert_eq!(err.retryable(), retryable, "{status}");
            assert_eq!(err.client_status(), client, "{status}");
        }
    }
}
