//! The respond stage of a streamed request: commit to a stream once a provider answered 2xx,
//! forward its chunks as they arrive (rendered by the client's format), settle what was
//! produced, then end with the usage, or with the format's error event if the provider broke.
//! In `before_answer` mode the last event waits for the commit of the generation and audit
//! records; when they are not committed in time it is the error event instead.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use http_body_util::BodyExt;
use serde_json::Value;
use sha2::{Digest, Sha256};
use switchyard_core::error::{UpstreamError, UpstreamErrorKind};
use switchyard_core::pricing::Usage;
use switchyard_formats::openrouter::{Chunk, UsageOut};
use switchyard_providers::{codec_for, StreamEvent};
use tokio::sync::mpsc;

use crate::engine::attempt::{redact, transport_error, Answer};
use crate::engine::audit::anomaly;
use crate::engine::inference::{estimate_tokens, withheld, Inference};
use crate::engine::resolved::resolve;
use crate::engine::respond::with_generation_header;
use crate::error::GatewayError;

/// The most of a stream gathered for one write to the client.
const COALESCE_MAX: usize = 64 * 1024;

/// Attempts, then answers with a stream.
pub async fn stream(mut p: Inference) -> Result<Response, (Inference, GatewayError)> {
    let answer = match p.attempt().await {
        Ok(a) => a,
        Err(e) => return Err((p, e)),
    };
    let (tx, mut rx) = mpsc::channel::<Bytes>(64);
    let body = Body::from_stream(futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|o| o.map(Ok::<Bytes, std::convert::Infallible>))
    }));
    let response = match Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .header("x-accel-buffering", "no")
        .body(body)
    {
        Ok(r) => with_generation_header(r, &p.trail.generation_id),
        Err(e) => return Err((p, GatewayError::internal(&e))),
    };
    let tasks = p.state.tasks.clone();
    tasks.spawn(pump(p, answer, tx));
    Ok(response)
}

/// The most characters of output a stream bounded to `tokens` completion tokens may carry
/// before it is cut: four characters a token (as [`estimate_tokens`] counts), four times the
/// bound and 64 tokens more, a margin no honest tokenizer comes near.
pub fn output_chars_allowed(tokens: u64) -> usize {
    let tokens = tokens.saturating_mul(4).saturating_add(64);
    usize::try_from(tokens.saturating_mul(4)).unwrap_or(usize::MAX)
}

/// How a stream ended.
enum End {
    /// The provider finished.
    Done,
    /// The client went away.
    Cancelled,
    /// The provider failed.
    Failed(UpstreamError),
}

/// Forwards one upstream stream to the client, then settles.
async fn pump(mut p: Inference, mut answer: Answer, tx: mpsc::Sender<Bytes>) {
    let catalog = Arc::clone(&p.catalog);
    let Some(r) = resolve(&catalog, &answer.candidate) else {
        return;
    };
    let Some(codec) = codec_for(r.provider.kind) else {
        return;
    };
    let config = p.state.config.server.clone();
    let mut decoder = if answer.native_legacy {
        match codec.completions_stream_decoder() {
            Ok(d) => d,
            // Encoding succeeded for this codec, so it has a decoder; a codec that had none
            // would have refused the request before it was sent.
            Err(_) => codec.stream_decoder(),
        }
    } else {
        codec.stream_decoder()
    };
    let mut upstream = answer.response.into_body().into_data_stream();
    let mut usage: Option<Usage> = None;
    let mut upstream_id: Option<String> = None;
    let mut finish: Option<(Option<String>, Option<String>)> = None;
    let mut produced_chars = 0usize;
    let mut completion_hash = Sha256::new();
    let mut logged: Option<String> =
        (p.settings.prompt_logging && p.state.content_cipher.is_some()).then(String::new);
    let mut first_byte: Option<Duration> = None;
    let generation_id = p.trail.generation_id.clone();
    let head = Chunk::head(&generation_id, p.created(), &r.model.id, &r.provider.name);
    let mut renderer = p.format.streamer(p.render_context(), &head);
    // Past this many characters of output the provider is not honouring the request's bound.
    let bound = p.completion_bound(&r);
    let max_chars = output_chars_allowed(bound);
    if let Some(echo) = p.echo_chunk(&r, &head).and_then(|c| renderer.debug(&c)) {
        if tx.send(Bytes::from(echo)).await.is_err() {
            return;
        }
    }
    let active = metrics::gauge!("switchyard_active_streams");
    active.increment(1.0);

    let mut keepalive = tokio::time::interval(config.keepalive());
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick fires at once: the client sees a comment before the first token.
    // The frames made from one upstream read go to the client in one write, as soon as the read
    // is decoded; the last of them leave with the stream's final frames.
    let mut pending: Vec<u8> = Vec::new();
    // A piece of the upstream body that was already there when the last was decoded.
    let mut ready = None;
    // The provider's silence is counted from its last byte: keep-alives sent to the client
    // meanwhile do not restart it.
    let idle = config.stream_idle_timeout();
    let mut idle_deadline = tokio::time::Instant::now() + idle;
    // Bytes received since the decoder last completed an event.
    let mut unframed = 0usize;
    let end = 'outer: loop {
        let next = if let Some(piece) = ready.take() {
            Ok(piece)
        } else {
            tokio::select! {
                biased;
                () = tx.closed() => break End::Cancelled,
                _ = keepalive.tick() => {
                    if tx.send(Bytes::from(renderer.keepalive())).await.is_err() {
                        break End::Cancelled;
                    }
                    continue;
                }
                next = tokio::time::timeout_at(idle_deadline, upstream.next()) => next,
            }
        };
        if matches!(next, Ok(Some(_))) {
            idle_deadline = tokio::time::Instant::now() + idle;
        }
        let eof = matches!(next, Ok(None));
        let events = match next {
            Err(_) => {
                break End::Failed(UpstreamError::new(
                    UpstreamErrorKind::Timeout,
                    Some(504),
                    format!(
                        "{} stopped sending for {}s",
                        r.provider.name, config.stream_idle_timeout_secs
                    ),
                ))
            }
            Ok(None) => decoder.finish(),
            Ok(Some(Err(e))) => break End::Failed(transport_error(&*e, &r.provider.name)),
            Ok(Some(Ok(bytes))) => {
                // What the decoder holds is bounded: bytes that completed no event yet.
                unframed = unframed.saturating_add(bytes.len());
                if unframed > config.max_upstream_body_bytes {
                    break End::Failed(UpstreamError::new(
                        UpstreamErrorKind::InvalidResponse,
                        Some(502),
                        format!(
                            "{} sent a stream event larger than {} bytes (server.max_upstream_body_bytes)",
                            r.provider.name, config.max_upstream_body_bytes
                        ),
                    ));
                }
                let events = decoder.feed(&bytes);
                if !events.is_empty() {
                    unframed = 0;
                }
                events
            }
        };
        for event in events {
            match event {
                StreamEvent::Chunk {
                    upstream_id: id,
                    mut choices,
                    usage: u,
                } => {
                    p.shape_chunk(&mut choices);
                    if upstream_id.is_none() {
                        upstream_id = id;
                    }
                    if let Some(u) = u {
                        renderer.usage_seen(&u);
                        usage = Some(u);
                    }
                    if choices.is_empty() {
                        continue;
                    }
                    for c in &choices {
                        if let Some(delta) = c.get("delta") {
                            for field in ["content", "reasoning", "refusal"] {
                                produced_chars +=
                                    delta.get(field).and_then(Value::as_str).map_or(0, str::len);
                            }
                            if let Some(text) = delta.get("content").and_then(Value::as_str) {
                                completion_hash.update(text.as_bytes());
                                if let Some(log) = logged.as_mut() {
                                    log.push_str(text);
                                }
                            }
                            if let Some(calls) = delta.get("tool_calls") {
                                produced_chars += calls.to_string().len();
                            }
                        }
                        if let Some(reason) = c.get("finish_reason").and_then(Value::as_str) {
                            let native = c
                                .get("native_finish_reason")
                                .and_then(Value::as_str)
                                .map(str::to_owned);
                            finish = Some((Some(reason.to_owned()), native));
                        }
                    }
                    first_byte.get_or_insert_with(|| p.started.elapsed());
                    if produced_chars > max_chars {
                        p.note_anomaly(anomaly::OUTPUT_EXCEEDS_MAX_TOKENS, &r.provider.slug);
                        break 'outer End::Failed(UpstreamError::new(
                            UpstreamErrorKind::InvalidResponse,
                            Some(502),
                            format!(
                                "{} kept generating past the request's limit of {bound} tokens; the stream was cut",
                                r.provider.name
                            ),
                        ));
                    }
                    if let Some(bytes) = renderer.chunk(&Chunk {
                        choices: &choices,
                        ..head
                    }) {
                        pending.extend_from_slice(&bytes);
                    }
                    keepalive.reset();
                }
                StreamEvent::Error(e) => break 'outer End::Failed(e),
                StreamEvent::Done => break 'outer End::Done,
            }
        }
        // The HTTP client hands the body over one chunk at a time, even when one read brought
        // several (a provider writing its events in a burst): once its task has run, whatever
        // it already holds joins this write, so a burst leaves in one write, not one each.
        // Nothing waits for bytes that have not arrived.
        if !eof && !pending.is_empty() && pending.len() < COALESCE_MAX {
            tokio::task::yield_now().await;
            if let Some(piece) = upstream.next().now_or_never() {
                ready = Some(piece);
                continue;
            }
        }
        if !pending.is_empty()
            && tx
                .send(Bytes::from(std::mem::take(&mut pending)))
                .await
                .is_err()
        {
            break End::Cancelled;
        }
        if eof {
            // Some servers close without `[DONE]`: that is a normal end once a finish reason came.
            break if finish.is_some() {
                End::Done
            } else {
                End::Failed(UpstreamError::new(
                    UpstreamErrorKind::Connection,
                    Some(502),
                    format!("{} closed the stream before finishing", r.provider.name),
                ))
            };
        }
    };
    drop(upstream);
    active.decrement(1.0);
    // The attempt's span covers the upstream stream.
    if let Some(mut span) = answer.span.take() {
        match &end {
            End::Done => span.ok(),
            End::Cancelled => {
                span.set(opentelemetry::KeyValue::new("switchyard.cancelled", true));
                span.ok();
            }
            End::Failed(err) => span.fail(err.error_type(), &format!("{:?}", err.kind)),
        }
    }

    // Billed for what was produced: the provider's count, else an estimate from the text
    // forwarded; a stream that produced nothing and reported nothing costs nothing.
    let mut usage = match usage {
        Some(u) => u,
        None if first_byte.is_some() => Usage {
            prompt_tokens: p.request.estimated_prompt_tokens(),
            completion_tokens: estimate_tokens(produced_chars),
            ..Usage::default()
        },
        None => Usage::default(),
    };
    let cost = p.charge(&mut usage, &r);
    let mut record = p.record(&r, &usage, cost.total);
    record.streamed = true;
    record.upstream_id = upstream_id;
    record.latency_ms = first_byte.and_then(|d| i64::try_from(d.as_millis()).ok());
    if let Some((reason, native)) = finish {
        record.finish_reason = reason;
        record.native_finish_reason = native;
    }
    match &end {
        End::Done => p.record_success(&r, first_byte, usage.completion_tokens),
        End::Failed(_) => p.state.record_failure(&r.model.id, &r.endpoint.tag),
        End::Cancelled => {}
    }
    // The stream's last event: the usage and the end, or the failure.
    let last = match end {
        End::Done => {
            let mut last = serde_json::to_value(head).unwrap_or(Value::Null);
            last["usage"] = serde_json::to_value(UsageOut::new(&usage, &cost, r.provider.byok))
                .unwrap_or(Value::Null);
            if p.trail.attribution.metadata {
                last["openrouter_metadata"] = p.metadata_json(Some(&answer.candidate));
            }
            Some(Ok(last))
        }
        End::Cancelled => {
            record.cancelled = true;
            record.status = 499;
            None
        }
        End::Failed(err) => {
            let err = redact(&p.state, err);
            tracing::warn!(generation_id = %generation_id, provider = %r.provider.slug, kind = ?err.kind, "stream failed after it started");
            record.finish_reason = Some("error".to_owned());
            record.status = err.client_status();
            record.error_message = Some(err.message.clone());
            Some(Err(GatewayError::upstream(&err, &r.provider.name)))
        }
    };
    let completion_sha256 = hex::encode(completion_hash.finalize());
    if let Some(text) = logged {
        p.log_content(serde_json::json!({"role": "assistant", "content": text}));
    }
    let recorded = p.settle(record, &r, Some(completion_sha256));
    // The client's stream ends with the last event, which waits for the records' commit
    // (`before_answer`); a client that went away is not waited for.
    let Some(last) = last else {
        return;
    };
    let last = match recorded.wait().await {
        Ok(()) => last,
        Err(why) => Err(withheld(&generation_id, why)),
    };
    match last {
        Ok(last) => pending.extend_from_slice(&renderer.done(&last)),
        Err(e) => pending.extend_from_slice(&renderer.failed(&head, &e)),
    }
    let _ = tx.send(Bytes::from(pending)).await;
}
