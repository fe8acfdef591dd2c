#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Integration tests: the real router on 127.0.0.1:0 against in-process mock upstreams.

mod api;
mod audit;
mod byok;
mod chat;
mod classification;
mod content;
mod contract;
mod durability;
mod fields;
mod formats;
mod guardrails;
mod hardening;
mod harness;
mod kinds;
mod messages;
mod metrics;
mod mock;
mod presets;
mod privilege;
mod routers;
mod routing;
mod stages;
mod telemetry;
