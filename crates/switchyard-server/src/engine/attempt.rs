//! The attempt stage: send to each candidate in turn until one answers 2xx. A retryable
//! failure (connect, timeout, 5xx, 429, the provider's own fault) moves on to the next
//! candidate; a failure that is the request's own fault returns at once.
//!
//! Invariant: only the transport lives here; the codecs build and read the bodies.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Body;
use serde_json::{json, Value};
use switchyard_core::error::{UpstreamError, UpstreamErrorKind};
use switchyard_core::routing::Candidate;
use switchyard_providers::{codec_for, Target};

use crate::config::ServerConfig;
use crate::engine::audit::AttemptRecord;
use crate::engine::inference::Inference;
use crate::engine::resolved::{resolve, Resolved};
use crate::error::{ErrorKind, GatewayError};
use crate::upstream::UpstreamBody;

/// The upstream's answer headers, from the first candidate that answered 2xx.
pub struct Answer {
    /// The candidate that answered.
    pub candidate: Candidate,
    /// Its response, body unread.
    pub response: hyper::Response<UpstreamBody>,
    /// The endpoint was sent a legacy completions request in its own API.
    pub native_legacy: bool,
    /// The attempt's span (telemetry on): ends once its body is read.
    pub span: Option<crate::telemetry::Child>,
}

impl Inference {
    /// Tries the candidates in order until one answers 2xx.
    pub async fn attempt(&mut self) -> Result<Answer, GatewayError> {
        let candidates = self.trail.plan.candidates.clone();
        let mut last: Option<GatewayError> = None;
        for candidate in candidates {
            let catalog = std::sync::Arc::clone(&self.catalog);
            let Some(r) = resolve(&catalog, &candidate) else {
                continue;
            };
            // An endpoint whose circuit opened since the plan, or whose probe slot is taken,
            // is skipped.
            if !self
                .state
                .health
                .admit(&r.model.id, &r.endpoint.tag, self.state.now_ms())
            {
                last = Some(
                    GatewayError::of(
                        ErrorKind::Unavailable,
                        format!(
                            "{} is failing and temporarily not sent requests (circuit open); try again shortly",
                            r.provider.name
                        ),
                    )
                    .with_metadata("provider_name", json!(r.provider.name)),
                );
                continue;
            }
            // The attempt's span, whose `traceparent` goes upstream with the request.
            let mut traced = self
                .trail
                .span
                .as_ref()
                .map(|s| s.attempt(&r.provider.slug, &r.provider.base_url));
            let result = self
                .send(&r, traced.as_ref().map(|t| t.headers.as_slice()))
                .await;
            let outcome = match &result {
                Ok(_) => "ok",
                Err(e) => e.error_type(),
            };
            let mut span = traced.take().map(|t| t.span);
            metrics::counter!("switchyard_upstream_attempts_total",
                "provider" => r.provider.slug.clone(), "outcome" => outcome)
            .increment(1);
            match result {
                Ok(response) => {
                    let status = response.status().as_u16();
                    if let Some(span) = span.as_mut() {
                        crate::telemetry::upstream_status(span, status);
                    }
                    self.trail.attempts.push(AttemptRecord {
                        provider: r.provider.slug.clone(),
                        model: r.model.id.clone(),
                        status,
                        error: None,
                    });
                    let native_legacy = self.native_legacy(&r);
                    return Ok(Answer {
                        candidate,
                        response,
                        native_legacy,
                        span,
                    });
                }
                Err(err) => {
                    let err = redact(&self.state, err);
                    tracing::warn!(
                        generation_id = %self.trail.generation_id,
                        provider = %r.provider.slug,
                        kind = ?err.kind,
                        status = ?err.status,
                        "upstream attempt failed"
                    );
                    self.trail.attempts.push(AttemptRecord {
                        provider: r.provider.slug.clone(),
                        model: r.model.id.clone(),
                        status: err.status.unwrap_or(err.client_status()),
                        error: Some(err.clone()),
                    });
                    if let Some(mut span) = span {
                        if let Some(status) = err.status {
                            crate::telemetry::upstream_status(&mut span, status);
                        }
                        span.fail(err.error_type(), &format!("{:?}", err.kind));
                    }
                    if err.retryable() || err.kind == UpstreamErrorKind::ProviderAuth {
                        self.state.record_failure(&r.model.id, &r.endpoint.tag);
                    }
                    let e = GatewayError::upstream(&err, &r.provider.name);
                    if !err.retryable() {
                        return Err(self.with_previous_errors(e));
                    }
                    last = Some(e);
                }
            }
        }
        let e = last.unwrap_or_else(|| {
            GatewayError::of(
                ErrorKind::Upstream(502),
                "No provider could serve this request",
            )
        });
        Err(self.with_previous_errors(e))
    }

    /// Adds every failed attempt to the error's metadata when there was more than one.
    pub fn with_previous_errors(&self, e: GatewayError) -> GatewayError {
        let previous: Vec<Value> = self
            .trail
            .attempts
            .iter()
            .filter(|a| a.error.is_some())
            .map(|a| {
                json!({
                    "provider": a.provider,
                    "model": a.model,
                    "status": a.status,
                    "code": a.error.as_ref().map(|e| e.client_status()),
                    "message": a.error.as_ref().map(|e| e.message.clone()),
                })
            })
            .collect();
        if previous.len() > 1 {
            e.with_metadata("previous_errors", Value::Array(previous))
        } else {
            e
        }
    }

    /// The chat request for `r`, or the legacy completions request for an endpoint that serves
    /// that API.
    fn encode_chat(
        &self,
        codec: &dyn switchyard_providers::Codec,
        r: &Resolved<'_>,
        target: &Target<'_>,
    ) -> Result<switchyard_providers::UpstreamRequest, switchyard_providers::CodecError> {
        match self.legacy.as_deref().filter(|_| self.native_legacy(r)) {
            // The endpoint serves the legacy API: the prompt goes as is (after redaction).
            Some(legacy) => {
                let mut legacy = legacy.clone();
                legacy.chat = (*self.request).clone();
                codec.encode_completions(&legacy, target)
            }
            None => codec.encode(&self.request, target),
        }
    }

    /// Whether `r` is sent this request in the legacy completions API.
    pub fn native_legacy(&self, r: &Resolved<'_>) -> bool {
        self.legacy.is_some() && r.endpoint.legacy_completions
    }

    /// One upstream request; any non-2xx answer becomes an [`UpstreamError`].
    async fn send(
        &self,
        r: &Resolved<'_>,
        trace: Option<&[(String, String)]>,
    ) -> Result<hyper::Response<UpstreamBody>, UpstreamError> {
        let codec = codec_for(r.provider.kind).ok_or_else(|| {
            UpstreamError::new(
                UpstreamErrorKind::Server,
                None,
                format!(
                    "Provider kind {} is not supported by this build",
                    r.provider.kind.as_str()
                ),
            )
        })?;
        let api_key = match &r.provider.api_key_env {
            Some(env) => Some(self.state.secrets.expose(env).ok_or_else(|| {
                UpstreamError::new(
                    UpstreamErrorKind::ProviderAuth,
                    None,
                    format!(
                        "{} has no provider key configured (set {env})",
                        r.provider.name
                    ),
                )
            })?),
            None => None,
        };
        let target = Target {
            provider: r.provider,
            endpoint: r.endpoint,
            api_key,
        };
        let encoded = if let Some(embeddings) = self.embeddings.as_deref() {
            codec.encode_embeddings(embeddings, &target)
        } else {
            self.encode_chat(codec, r, &target)
        };

        let upstream = encoded
            .map_err(|e| UpstreamError::new(UpstreamErrorKind::InvalidRequest, Some(400), e.0))?;
        let Some(uri) = self.state.upstream_url(&upstream.url) else {
            return Err(unreachable(&r.provider.name));
        };
        let sent = Instant::now();
        // Only the attempt's own trace context goes upstream, never the client's headers.
        let mut headers = upstream.headers;
        headers.extend(trace.unwrap_or_default().iter().cloned());
        let request = self.state.upstream().post(uri, &headers, upstream.body);
        let timeout = self.state.config.server.upstream_timeout();
        let response = tokio::time::timeout(timeout, request)
            .await
            .map_err(|_| {
                UpstreamError::new(
                    UpstreamErrorKind::Timeout,
                    None,
                    format!(
                        "{} did not answer within {}s",
                        r.provider.name,
                        timeout.as_secs_f64()
                    ),
                )
            })?
            .map_err(|e| transport_error(&*e, &r.provider.name))?;
        metrics::histogram!("switchyard_upstream_duration_seconds", "provider" => r.provider.slug.clone())
            .record(sent.elapsed().as_secs_f64());
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        // An error body past the limit is the provider's failure; one that could not be read
        // leaves the status to speak.
        let body = match read_limited(response, &self.state.config.server).await {
            Ok(body) => body,
            Err(e) if e.kind == UpstreamErrorKind::InvalidResponse => return Err(e),
            Err(_) => Bytes::new(),
        };
        Err(decode_error(&self.state, codec, status, &body))
    }
}

/// A provider's error answer, decoded by its codec after every credential was removed from the
/// whole body (see [`redact`]), so that a key the codec's excerpt would cut in two goes too.
pub fn decode_error(
    state: &crate::state::AppState,
    codec: &dyn switchyard_providers::Codec,
    status: u16,
    body: &[u8],
) -> UpstreamError {
    let known = state.secrets.values();
    let body = switchyard_core::guard::redact_credentials(&String::from_utf8_lossy(body), &known);
    codec.decode_error(status, body.as_bytes())
}

/// An upstream failure as the client and the audit record may see it: every provider key the
/// gateway holds, and anything shaped like a credential, removed from its message and raw body.
/// Every failure of an attempt, a non-streamed answer and a stream goes through here.
pub fn redact(state: &crate::state::AppState, err: UpstreamError) -> UpstreamError {
    err.redact_credentials(&state.secrets.values())
}

/// Classifies a transport failure (from either HTTP client): a timeout anywhere among its
/// causes is a timeout, anything else a connection failure.
pub fn transport_error(err: &(dyn std::error::Error + 'static), provider: &str) -> UpstreamError {
    if crate::upstream::is_timeout(err) {
        UpstreamError::new(
            UpstreamErrorKind::Timeout,
            None,
            format!("{provider} timed out"),
        )
    } else {
        unreachable(provider)
    }
}

/// A provider that could not be reached (refused, reset, TLS refused, no such host).
fn unreachable(provider: &str) -> UpstreamError {
    UpstreamError::new(
        UpstreamErrorKind::Connection,
        None,
        format!("Could not reach {provider}: connection failed"),
    )
}

/// The failure of an upstream body past `server.max_upstream_body_bytes`.
pub fn too_large(limit: usize) -> UpstreamError {
    UpstreamError::new(
        UpstreamErrorKind::InvalidResponse,
        Some(502),
        format!(
            "The provider's answer is larger than {limit} bytes (server.max_upstream_body_bytes)"
        ),
    )
}

/// Reads a whole upstream body (error bodies, non-streamed answers) within the upstream
/// timeout and at most `server.max_upstream_body_bytes` of it: a larger body is refused (as
/// soon as its `Content-Length` says so, else once that much arrived) with [`too_large`].
pub async fn read_limited<B>(
    response: hyper::Response<B>,
    config: &ServerConfig,
) -> Result<Bytes, UpstreamError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<crate::upstream::BoxError>,
{
    let limit = config.max_upstream_body_bytes;
    let mut body = response.into_body();
    if body
        .size_hint()
        .exact()
        .is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX))
    {
        return Err(too_large(limit));
    }
    let read = async {
        let mut read = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                let e: crate::upstream::BoxError = e.into();
                transport_error(&*e, "the provider")
            })?;
            let Ok(chunk) = frame.into_data() else {
                continue;
            };
            if read.len().saturating_add(chunk.len()) > limit {
                return Err(too_large(limit));
            }
            read.extend_from_slice(&chunk);
        }
        Ok(read.freeze())
    };
    match tokio::time::timeout(config.upstream_timeout(), read).await {
        Err(_) => Err(UpstreamError::new(
            UpstreamErrorKind::Timeout,
            None,
            "The provider stopped sending its answer",
        )),
        Ok(result) => result,
    }
}
