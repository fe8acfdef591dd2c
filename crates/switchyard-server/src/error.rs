//! The gateway's error, rendered in one place as OpenRouter's envelope
//! `{"error": {"code", "message", "metadata"?}}`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use switchyard_core::error::{error_type_for_status, UpstreamError};

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
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

impl ApiError {
    /// An error with a status and message.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            metadata: None,
            extra: Map::new(),
            retry_after: None,
            generation_id: None,
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }

    /// 500 with a masked message; the cause is logged, never shown.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(500, "Internal Server Error")
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
        let mut e = Self::new(err.client_status(), err.message.clone())
            .with_metadata("provider_name", json!(provider_name))
            .with_metadata("error_type", json!(err.error_type()))
            .with_metadata("raw", err.raw.as_ref().map_or(Value::Null, |r| json!(r)));
        if let Some(code) = &err.provider_code {
            e = e.with_metadata("provider_code", json!(code));
        }
        e
    }

    /// The envelope body.
    pub fn body(&self) -> Value {
        let mut error = Map::new();
        error.insert("code".into(), json!(self.status));
        error.insert("message".into(), json!(self.message));
        let mut metadata = self.metadata.clone().unwrap_or_default();
        metadata
            .entry("error_type")
            .or_insert_with(|| json!(error_type_for_status(self.status)));
        error.insert("metadata".into(), Value::Object(metadata));
        for (k, v) in &self.extra {
            error.insert(k.clone(), v.clone());
        }
        json!({ "error": error })
    }
}

impl ApiError {
    /// The same error in Anthropic's envelope, for `/api/v1/messages`.
    pub fn into_messages_response(self) -> Response {
        let body = switchyard_formats::messages::error_body(self.status, &self.message);
        self.respond(body)
    }

    fn respond(self, body: Value) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        self.respond(body)
    }
}

impl From<switchyard_store::StoreError> for ApiError {
    fn from(err: switchyard_store::StoreError) -> Self {
        ApiError::internal(&err)
    }
}
