//! Pure domain of the Switchyard gateway.
//!
//! Layout:
//! - [`money`]: exact amounts (integer pico-dollars).
//! - [`catalog`]: providers, models, endpoints, prices and data policies; TOML validation.
//! - [`chat`]: the canonical chat request, parsed and validated.
//! - [`embeddings`]: the canonical embeddings request and the vectors a provider returns.
//! - [`completions`]: the canonical legacy completions request, carried as a chat request.
//! - [`pricing`]: cost of a generation and the hold a request needs.
//! - [`preferences`]: the request's `provider` preferences.
//! - [`routing`]: which endpoints may serve a request, in which order.
//! - [`health`]: endpoint outcomes, circuit breakers, performance statistics, sticky sessions.
//! - [`error`]: upstream error classification and the contract's error types.
//! - [`keys`]: key format, hashing and masking.
//! - [`audit`]: the tamper-evident audit chain (canonical encoding, hashing, verification).
//! - [`classification`]: data classifications and the providers each allows.
//! - [`guard`]: guardrails: content detectors, redaction, model and provider rules.
//! - [`restrict`]: narrowing a route plan (training settings, classifications, guardrails).
//! - [`periods`]: UTC day, week and month windows for limits.
//!
//! Invariants:
//! - This crate does no I/O and reads no clock: time, health and randomness are arguments.
//! - Money is never a float: every amount is a [`money::Money`].

pub mod audit;
pub mod catalog;
pub mod chat;
pub mod classification;
pub mod completions;
pub mod embeddings;
pub mod error;
pub mod guard;
pub mod health;
pub mod keys;
pub mod money;
pub mod parse_error;
pub mod periods;
pub mod preferences;
pub mod preset;
pub mod pricing;
pub mod restrict;
pub mod routing;
