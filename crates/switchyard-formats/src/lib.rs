//! The client-facing wire formats: what a client sends to the gateway and what it gets back.
//!
//! Each module is one format at the pipeline's edge:
//! - [`messages`]: Anthropic's Messages API.
//! - [`embeddings`]: `/embeddings` (into the canonical embeddings request, not chat) and
//!   `/embeddings/models`.
//! - [`completions`]: the legacy `/completions` API, carried as chat.
//! - [`models`]: the model entry of the models lists.
//!
//! A chat-shaped format parses the client's request into the canonical chat request of
//! `switchyard_core::chat`, and renders the canonical result (the OpenAI-shaped completion,
//! chunk by chunk when streamed, and errors) in the client's shapes; embeddings have their own
//! canonical request and result in `switchyard_core::embeddings`.
//! The *outbound* formats, spoken to providers, are `switchyard-providers`' codecs.
//!
//! Invariants:
//! - Pure: no sockets, no clock, no randomness; the same input gives the same output.
//! - A request a format cannot express faithfully is refused with an error naming the field,
//!   never silently changed.

pub mod completions;
pub mod embeddings;
pub mod messages;
pub mod models;
pub mod openrouter;
pub mod responses;
