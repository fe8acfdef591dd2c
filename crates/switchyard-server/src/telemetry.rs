//! OpenTelemetry traces (`[telemetry]`, off by default): one span per inference request with
//! the GenAI semantic-convention attributes, child spans for routing, the hold and each upstream
//! attempt, exported over OTLP/HTTP (protobuf) by a batch processor on its own thread.
//!
//! The client's W3C `traceparent` (and `tracestate`) is the parent of the request's span, and
//! each attempt sends its own span's `traceparent` upstream. With telemetry off nothing is made
//! and no trace header is sent upstream (a client's `traceparent` is never forwarded as is).
//!
//! Invariants:
//! - Off, the request path costs one `Option` test per hook: no span, no allocation.
//! - No prompt or completion text is put in a span unless the account logs prompts (and a
//!   content key is configured) *and* `telemetry.include_content` is set.
//! - Money is never a float here either: the cost is the exact decimal, as a string.
//! - Spans end where the request ends (settled, refused, a stream finished or cancelled), and
//!   whatever is dropped unended ends when dropped.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue, StringValue, Value};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider, Span,
};
use opentelemetry_sdk::Resource;
use switchyard_core::money::Money;

use crate::config::TelemetryConfig;

/// The tracer of a gateway with telemetry on.
pub struct Telemetry {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    propagator: TraceContextPropagator,
    include_content: bool,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("include_content", &self.include_content)
            .finish_non_exhaustive()
    }
}

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
#[error("telemetry: {0}")]
pub struct TelemetryError(String);

/// The OTLP/HTTP path of traces, added to an endpoint given without a path.
const TRACES_PATH: &str = "/v1/traces";

/// The URL spans are sent to: `endpoint` as given, or with `/v1/traces` when it has no path.
pub fn traces_url(endpoint: &str) -> Result<reqwest::Url, String> {
    let mut url = reqwest::Url::parse(endpoint).map_err(|e| format!("{endpoint:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{endpoint:?} is not an http(s) URL with a host"));
    }
    if url.path() == "/" {
        url.set_path(TRACES_PATH);
    }
    Ok(url)
}

impl Telemetry {
    /// Starts the exporter when `config.enabled`; `None` when telemetry is off. The batch
    /// processor runs on a thread of its own, so it does not depend on the serving workers'
    /// runtimes.
    pub fn start(config: &TelemetryConfig) -> Result<Option<Telemetry>, TelemetryError> {
        if !config.enabled {
            return Ok(None);
        }
        let url = traces_url(&config.endpoint).map_err(TelemetryError)?;
        let exporter = {
            use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(url.as_str())
                .with_headers(
                    config
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect::<HashMap<_, _>>(),
                )
                .with_timeout(Duration::from_secs_f64(config.export_timeout_secs))
                .build()
                .map_err(|e| TelemetryError(e.to_string()))?
        };
        let processor = BatchSpanProcessor::builder(exporter)
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_scheduled_delay(Duration::from_millis(config.batch_delay_ms))
                    .with_max_queue_size(config.max_queue_size)
                    .build(),
            )
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                config.sampling_ratio,
            ))))
            .with_resource(
                Resource::builder()
                    .with_service_name(config.service_name.clone())
                    .build(),
            )
            .build();
        let tracer = provider.tracer("switchyard");
        Ok(Some(Telemetry {
            provider,
            tracer,
            propagator: TraceContextPropagator::new(),
            include_content: config.include_content,
        }))
    }

    /// Exports what is queued and stops the exporter. Blocks: call it off the serving
    /// runtimes (`spawn_blocking`).
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "telemetry: the last spans could not be exported");
        }
    }

    /// The span of an inference request that just arrived, a child of the client's
    /// `traceparent` when it sent a valid one. `operation` is the GenAI operation name
    /// ([`operation_name`]).
    pub fn request(
        &self,
        headers: &HeaderMap,
        operation: &'static str,
        generation_id: &str,
    ) -> RequestSpan {
        let parent = self.propagator.extract(&HeaderExtractor(headers));
        let span = self.tracer.build_with_context(
            self.tracer
                .span_builder(operation)
                .with_kind(SpanKind::Server)
                .with_attributes([
                    KeyValue::new("gen_ai.operation.name", operation),
                    KeyValue::new("switchyard.generation_id", generation_id.to_owned()),
                ]),
            &parent,
        );
        RequestSpan {
            cx: parent.with_span(span),
            tracer: self.tracer.clone(),
            propagator: self.propagator.clone(),
            operation,
            include_content: self.include_content,
        }
    }
}

/// The GenAI operation name of a client format's requests: `embeddings`, `text_completion`
/// for the legacy completions API, `chat` for the rest.
pub fn operation_name(format: &str) -> &'static str {
    match format {
        "embeddings" => "embeddings",
        "completions" => "text_completion",
        _ => "chat",
    }
}

/// Reads trace headers from the client's request.
struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(axum::http::HeaderName::as_str).collect()
    }
}

/// Collects the trace headers of an upstream request.
#[derive(Default)]
struct HeaderInjector(Vec<(String, String)>);

impl Injector for HeaderInjector {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_owned(), value));
    }
}

/// An error status with its description.
fn error_status(message: impl Into<String>) -> Status {
    Status::error(message.into())
}

/// The root span of one inference request.
pub struct RequestSpan {
    cx: Context,
    tracer: SdkTracer,
    propagator: TraceContextPropagator,
    operation: &'static str,
    include_content: bool,
}

impl std::fmt::Debug for RequestSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestSpan")
            .field("span", self.cx.span().span_context())
            .finish_non_exhaustive()
    }
}

/// What a served request's span records when it ends.
#[derive(Debug, Default)]
pub struct Served<'a> {
    /// The model that answered (the catalogue's id).
    pub model: &'a str,
    /// The provider that answered (its slug).
    pub provider: &'a str,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// The finish reason, when one came.
    pub finish_reason: Option<&'a str>,
    /// What the request was charged.
    pub cost: Money,
    /// The status the client got (499: the client went away).
    pub status: u16,
    /// The answer failed after it started (the client got the error event).
    pub failed: bool,
}

impl RequestSpan {
    /// Whether the span is sampled (attributes are only worth computing then).
    pub fn recording(&self) -> bool {
        self.cx.span().is_recording()
    }

    /// The model the request asked for, known once it is parsed: named in the span's name.
    pub fn requested(&self, model: Option<&str>) {
        let span = self.cx.span();
        if let Some(model) = model.filter(|_| span.is_recording()) {
            span.update_name(format!("{} {model}", self.operation));
            span.set_attribute(KeyValue::new("gen_ai.request.model", model.to_owned()));
        }
    }

    /// A child span (`route`, `hold`).
    pub fn child(&self, name: &'static str) -> Child {
        Child(self.tracer.start_with_context(name, &self.cx))
    }

    /// The span of one upstream attempt on `provider` at `url`, and the trace headers to send
    /// with it.
    pub fn attempt(&self, provider: &str, url: &str) -> Attempt {
        let mut attributes = vec![KeyValue::new("gen_ai.provider.name", provider.to_owned())];
        if let Ok(url) = reqwest::Url::parse(url) {
            if let Some(host) = url.host_str() {
                attributes.push(KeyValue::new("server.address", host.to_owned()));
            }
            if let Some(port) = url.port_or_known_default() {
                attributes.push(KeyValue::new("server.port", i64::from(port)));
            }
        }
        let span = self.tracer.build_with_context(
            self.tracer
                .span_builder("attempt")
                .with_kind(SpanKind::Client)
                .with_attributes(attributes),
            &self.cx,
        );
        let mut headers = HeaderInjector::default();
        let cx = Context::new().with_remote_span_context(span.span_context().clone());
        self.propagator.inject_context(&cx, &mut headers);
        Attempt {
            span: Child(span),
            headers: headers.0,
        }
    }

    /// Ends the span of a request served (or whose stream failed or was cancelled after it
    /// started).
    pub fn served(&self, served: &Served<'_>) {
        let span = self.cx.span();
        if span.is_recording() {
            span.set_attributes([
                KeyValue::new("gen_ai.response.model", served.model.to_owned()),
                KeyValue::new("gen_ai.provider.name", served.provider.to_owned()),
                KeyValue::new(
                    "gen_ai.usage.input_tokens",
                    i64::try_from(served.input_tokens).unwrap_or(i64::MAX),
                ),
                KeyValue::new(
                    "gen_ai.usage.output_tokens",
                    i64::try_from(served.output_tokens).unwrap_or(i64::MAX),
                ),
                KeyValue::new("switchyard.cost_usd", served.cost.to_usd().to_string()),
                KeyValue::new("http.response.status_code", i64::from(served.status)),
            ]);
            if let Some(reason) = served.finish_reason {
                span.set_attribute(KeyValue::new(
                    "gen_ai.response.finish_reasons",
                    Value::Array(vec![StringValue::from(reason.to_owned())].into()),
                ));
            }
            if served.status == 499 {
                span.set_attribute(KeyValue::new("switchyard.cancelled", true));
            }
            if served.failed {
                let error_type = switchyard_core::error::error_type_for_status(served.status);
                span.set_attribute(KeyValue::new("error.type", error_type));
                span.set_status(error_status(error_type));
            }
        }
        span.end();
    }

    /// Ends the span of a request refused or failed before an answer started. `message` is
    /// the gateway's own description (never a provider's text, which may quote the prompt).
    pub fn refused(&self, status: u16, message: &str) {
        let span = self.cx.span();
        if span.is_recording() {
            span.set_attributes([
                KeyValue::new("http.response.status_code", i64::from(status)),
                KeyValue::new(
                    "error.type",
                    switchyard_core::error::error_type_for_status(status),
                ),
            ]);
            span.set_status(error_status(message));
        }
        span.end();
    }

    /// Whether this exporter takes content (the account's prompt logging decides the rest).
    pub fn includes_content(&self) -> bool {
        self.include_content
    }

    /// The request's messages and the answer, as JSON text (`gen_ai.input.messages`,
    /// `gen_ai.output.messages`): only called when content may be exported.
    pub fn content(&self, input: String, output: String) {
        let span = self.cx.span();
        if span.is_recording() {
            span.set_attributes([
                KeyValue::new("gen_ai.input.messages", input),
                KeyValue::new("gen_ai.output.messages", output),
            ]);
        }
    }
}

/// A child span; ends when dropped, or by [`Child::ok`] / [`Child::fail`].
pub struct Child(Span);

impl Child {
    /// Sets an attribute.
    pub fn set(&mut self, attribute: KeyValue) {
        if self.0.is_recording() {
            self.0.set_attribute(attribute);
        }
    }

    /// Ends the span.
    pub fn ok(mut self) {
        self.0.end();
    }

    /// Ends the span as failed: `error_type` is the contract's error type, `message` a
    /// description the gateway wrote (never a provider's text, which may quote the prompt).
    pub fn fail(mut self, error_type: &'static str, message: &str) {
        if self.0.is_recording() {
            self.0
                .set_attributes([KeyValue::new("error.type", error_type)]);
            self.0.set_status(error_status(message.to_owned()));
        }
        self.0.end();
    }
}

/// An upstream attempt's span and the trace headers its request carries.
pub struct Attempt {
    /// The span.
    pub span: Child,
    /// `traceparent` (and `tracestate`) of the span, for the upstream request.
    pub headers: Vec<(String, String)>,
}

/// The upstream's HTTP status, on an attempt's span.
pub fn upstream_status(span: &mut Child, status: u16) {
    span.set(KeyValue::new(
        "http.response.status_code",
        i64::from(status),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_url_adds_the_path_only_when_missing() {
        for (endpoint, expected) in [
            (
                "http://collector:4318",
                Ok("http://collector:4318/v1/traces"),
            ),
            (
                "http://collector:4318/",
                Ok("http://collector:4318/v1/traces"),
            ),
            (
                "https://otel.example/custom/path",
                Ok("https://otel.example/custom/path"),
            ),
            ("ftp://collector", Err(())),
            ("collector:4318", Err(())),
            ("not a url", Err(())),
        ] {
            let got = traces_url(endpoint).map(|u| u.to_string()).map_err(|_| ());
            assert_eq!(got, expected.map(str::to_owned), "{endpoint}");
        }
    }

    #[test]
    fn operation_names() {
        for (format, op) in [
            ("chat", "chat"),
            ("messages", "chat"),
            ("responses", "chat"),
            ("completions", "text_completion"),
            ("embeddings", "embeddings"),
        ] {
            assert_eq!(operation_name(format), op);
        }
    }
}
