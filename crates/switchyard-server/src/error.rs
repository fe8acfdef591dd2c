//! The one error between the pipeline (and the management API) and HTTP.
//!
//! A [`GatewayError`] has a [`ErrorKind`]; [`ErrorKind::status`] is the one table from kind to
//! HTTP status and the contract's `error_type`. Each client format renders the error in its own
//! envelope ([`crate::formats`]); the OpenRouter envelope `{"error": {"code", "message",
//! "metadata"}}` is the default ([`IntoResponse`]).
//!
//! Invariants:
//! - Status codes are decided here, by kind, and nowhere else.
//! - An internal or store failure never shows its cause to the client: it is logged.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use switchyard_core::error::{error_type_for_status, UpstreamError};
use switchyard_core::routing::RouteError;
use switchyard_store::HoldRefused;

/// What kind of failure an error is; decides its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or asks for something the gateway does not do.
    BadRequest,
    /// No key, or a key that is unknown, disabled or expired.
    Unauthorized,
    /// The key may not do this (a management key for inference, a standard key for management).
    Forbidden,
    /// No such resource or route.
    NotFound,
    /// The method is not served on this path.
    MethodNotAllowed,
    /// The request did not arrive in time.
    RequestTimeout,
    /// A conflicting change (an existing name, say).
    Conflict,
    /// The request body is larger than the configured limit.
    PayloadTooLarge,
    /// The request body is not JSON.
    UnsupportedMediaType,
    /// The hold was refused: the key's limit or the account's credits cannot cover the request.
    HoldRefused,
    /// A guardrail refused the request (budget, content, or every endpoint).
    GuardrailRefused,
    /// No endpoint of the requested models may serve the request; the error lists the
    /// exclusions with their reasons.
    NoRoute,
    /// The model asked for is not in the catalogue.
    ModelNotFound,
    /// Too many requests.
    RateLimited,
    /// Every provider tried failed; the status is the last failure's, as the client sees it.
    Upstream(u16),
    /// Temporarily unavailable (an endpoint whose circuit is open, a missing content key).
    Unavailable,
    /// The store failed.
    Store,
    /// A bug or an impossible state.
    Internal,
}

impl ErrorKind {
    /// The HTTP status of this kind of error.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::BadRequest | ErrorKind::ModelNotFound => 400,
            ErrorKind::Unauthorized => 401,
            ErrorKind::HoldRefused => 402,
            ErrorKind::Forbidden | ErrorKind::GuardrailRefused => 403,
            ErrorKind::NotFound | ErrorKind::NoRoute => 404,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::RequestTimeout => 408,
            ErrorKind::Conflict => 409,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::UnsupportedMediaType => 415,
            ErrorKind::RateLimited => 429,
            ErrorKind::Upstream(status) => status,
            ErrorKind::Unavailable => 503,
            ErrorKind::Store | ErrorKind::Internal => 500,
        }
    }

    /// The kind of an error answer with this status (for answers made outside the gateway's
    /// handlers, such as the router's own 405).
    pub fn for_status(status: u16) -> ErrorKind {
        match status {
            400 | 422 => ErrorKind::BadRequest,
            401 => ErrorKind::Unauthorized,
            402 => ErrorKind::HoldRefused,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            405 => ErrorKind::MethodNotAllowed,
            408 => ErrorKind::RequestTimeout,
            409 => ErrorKind::Conflict,
            413 => ErrorKind::PayloadTooLarge,
            415 => ErrorKind::UnsupportedMediaType,
            429 => ErrorKind::RateLimited,
            502 | 504 => ErrorKind::Upstream(status),
            503 => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        }
    }
}

/// An error answer: its kind, a message for the client, and the contract's extra members.
#[derive(Debug, Clone)]
pub struct GatewayError {
    /// What failed.
    pub kind: ErrorKind,
    /// Human message.
    pub message: String,
    /// `error.metadata`.
    pub metadata: Option<Map<String, Value>>,
    /// Extra members of `error` (such as `availability`).
    pub extra: Map<String, Value>,
    /// `Retry-After` seconds.
    pub retry_after: Option<u64>,
    /// Generation id, for the `X-Generation-Id` header.
    pub generation_id: Option<String>,
}

/// The name the management handlers know the error by.
pub type ApiError = GatewayError;

impl GatewayError {
    /// An error of a kind with a message.
    pub fn of(kind: ErrorKind, message: impl Into<String>) -> Self {
        GatewayError {
            kind,
            message: message.into(),
            metadata: None,
            extra: Map::new(),
            retry_after: None,
            generation_id: None,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::of(ErrorKind::BadRequest, message)
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::of(ErrorKind::Unauthorized, message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::of(ErrorKind::Forbidden, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::of(ErrorKind::NotFound, message)
    }

    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::of(ErrorKind::Conflict, message)
    }

    /// A guardrail refused the request.
    pub fn guardrail(message: impl Into<String>, guardrail_id: &str) -> Self {
        Self::of(ErrorKind::GuardrailRefused, message)
            .with_metadata("guardrail_id", json!(guardrail_id))
    }

    /// 500 with a masked message; the cause is logged, never shown.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::of(ErrorKind::Internal, "Internal Server Error")
    }

    /// Adds a metadata member.
    pub fn with_metadata(mut self, key: &str, value: Value) -> Self {
        self.metadata
            .get_or_insert_with(Map::new)
            .insert(key.to_owned(), value);
        self
    }

    /// Sets the generation id header.
    pub fn with_generation(mut self, id: &str) -> Self {
        self.generation_id = Some(id.to_owned());
        self
    }

    /// From an upstream failure of the named provider.
    pub fn upstream(err: &UpstreamError, provider_name: &str) -> Self {
        let mut e = Self::of(
            ErrorKind::Upstream(err.client_status()),
            err.message.clone(),
        )
        .with_metadata("provider_name", json!(provider_name))
        .with_metadata("error_type", json!(err.error_type()))
        .with_metadata("raw", err.raw.as_ref().map_or(Value::Null, |r| json!(r)));
        if let Some(code) = &err.provider_code {
            e = e.with_metadata("provider_code", json!(code));
        }
        e
    }

    /// A refused hold (402), or a key that vanished meanwhile (401).
    pub fn hold_refused(refused: HoldRefused) -> Self {
        let (message, needed, remaining) = match refused {
            HoldRefused::KeyLimit { needed, remaining } => (
                format!(
                    "This request may cost up to {needed} but this key's limit has {remaining} left: raise the key's limit or request fewer max_tokens"
                ),
                needed,
                remaining,
            ),
            HoldRefused::Credits { needed, remaining } => (
                format!(
                    "Insufficient credits: this request may cost up to {needed} and the account has {remaining} left. Add credits or request fewer max_tokens"
                ),
                needed,
                remaining,
            ),
            HoldRefused::EndUserLimit { needed, remaining } => (
                format!(
                    "This request may cost up to {needed} but this end user's limit has {remaining} left"
                ),
                needed,
                remaining,
            ),
            HoldRefused::Missing => return Self::unauthorized("Invalid API key: no such key"),
        };
        Self::of(ErrorKind::HoldRefused, message)
            .with_metadata("needed", needed.to_json_number())
            .with_metadata("remaining", remaining.to_json_number())
    }

    /// A routing failure: a bad preference, an unknown model, or no endpoint left (with every
    /// exclusion and its reason in `error.availability`).
    pub fn route(err: RouteError) -> Self {
        match err {
            RouteError::NoModel
            | RouteError::InvalidPreference(_)
            | RouteError::WrongModelKind { .. } => Self::bad_request(err.to_string()),
            RouteError::ModelNotFound { model } => {
                let mut e = Self::of(
                    ErrorKind::ModelNotFound,
                    format!("{model} is not a valid model ID"),
                );
                e.extra.insert(
                    "availability".into(),
                    json!({"code": "model_not_found", "retryable": false, "requested_models": [model]}),
                );
                e
            }
            RouteError::NoEndpoints {
                code,
                message,
                plan,
            } => {
                let mut e = Self::of(ErrorKind::NoRoute, message);
                let excluded: Vec<Value> = plan
                    .excluded
                    .iter()
                    .map(|x| json!({"reason": x.reason, "provider": x.provider, "endpoint": x.tag, "model": x.model}))
                    .collect();
                let mut reasons: Vec<&str> =
                    plan.excluded.iter().map(|x| x.reason.as_str()).collect();
                reasons.sort_unstable();
                reasons.dedup();
                let providers: std::collections::BTreeSet<&str> =
                    plan.excluded.iter().map(|x| x.provider.as_str()).collect();
                e.extra.insert(
                    "availability".into(),
                    json!({
                        "code": code,
                        "retryable": false,
                        "requested_models": plan.requested_models,
                        "affected_providers": providers,
                        "excluded_by": reasons,
                        "excluded": excluded,
                    }),
                );
                e
            }
        }
    }

    /// The OpenRouter envelope body.
    pub fn body(&self) -> Value {
        let mut error = Map::new();
        error.insert("code".into(), json!(self.status()));
        error.insert("message".into(), json!(self.message));
        let mut metadata = self.metadata.clone().unwrap_or_default();
        metadata
            .entry("error_type")
            .or_insert_with(|| json!(error_type_for_status(self.status())));
        error.insert("metadata".into(), Value::Object(metadata));
        for (k, v) in &self.extra {
            error.insert(k.clone(), v.clone());
        }
        json!({ "error": error })
    }

    /// The error as a response with `body` in the client's envelope, its status and headers.
    pub fn respond(self, body: Value) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after {
            headers.insert("retry-after", HeaderValue::from(seconds));
        }
        if let Some(id) = self
            .generation_id
            .as_deref()
            .and_then(|id| HeaderValue::from_str(id).ok())
        {
            headers.insert("x-generation-id", id);
        }
        response
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let body = self.body();
        self.respond(body)
    }
}

impl From<switchyard_store::StoreError> for GatewayError {
    fn from(err: switchyard_store::StoreError) -> Self {
        if let switchyard_store::StoreError::Conflict(message) = &err {
            return Self::of(ErrorKind::Conflict, message.clone());
        }
        Self::store_failure(&err)
    }
}

impl GatewayError {
    /// A store failure as the client sees it: 503 when the database is restarting or out of
    /// reach (retryable), the masked 500 otherwise; the cause is logged, never shown.
    pub fn store_failure(err: &switchyard_store::StoreError) -> Self {
        tracing::error!(error = %err, "store failure");
        if err.is_unavailable() {
            return Self::of(
                ErrorKind::Unavailable,
                "The store is unavailable; try again shortly",
            );
        }
        Self::of(ErrorKind::Store, "Internal Server Error")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_status_and_round_trips_through_it() {
        let cases = [
            (ErrorKind::BadRequest, 400),
            (ErrorKind::ModelNotFound, 400),
            (ErrorKind::Unauthorized, 401),
            (ErrorKind::HoldRefused, 402),
            (ErrorKind::Forbidden, 403),
            (ErrorKind::GuardrailRefused, 403),
            (ErrorKind::NotFound, 404),
            (ErrorKind::NoRoute, 404),
            (ErrorKind::MethodNotAllowed, 405),
            (ErrorKind::RequestTimeout, 408),
            (ErrorKind::Conflict, 409),
            (ErrorKind::PayloadTooLarge, 413),
            (ErrorKind::UnsupportedMediaType, 415),
            (ErrorKind::RateLimited, 429),
            (ErrorKind::Upstream(502), 502),
            (ErrorKind::Upstream(429), 429),
            (ErrorKind::Unavailable, 503),
            (ErrorKind::Store, 500),
            (ErrorKind::Internal, 500),
        ];
        for (kind, status) in cases {
            assert_eq!(kind.status(), status, "{kind:?}");
            assert_eq!(
                ErrorKind::for_status(status).status(),
                status,
                "{status} maps back to a kind of the same status"
            );
        }
    }

    #[test]
    fn the_envelope_names_the_status_and_error_type() {
        let e = GatewayError::hold_refused(HoldRefused::Credits {
            needed: switchyard_core::money::Money::from_picos(5),
            remaining: switchyard_core::money::Money::from_picos(1),
        })
        .with_generation("gen-1");
        let body = e.body();
        assert_eq!(body["error"]["code"], 402);
        assert!(body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Insufficient credits")));
        assert!(body["error"]["metadata"]["error_type"].is_string());
        let response = e.into_response();
        assert_eq!(response.status(), 402);
        assert_eq!(response.headers()["x-generation-id"], "gen-1");
    }

    #[test]
    fn a_store_failure_hides_its_cause() {
        let e = GatewayError::from(switchyard_store::StoreError::Corrupt(
            "secret detail".into(),
        ));
        assert_eq!(e.status(), 500);
        assert!(!e.body().to_string().contains("secret detail"));
    }
}
