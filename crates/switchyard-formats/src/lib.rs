//! The client-facing wire formats: what a client sends to the gateway and what it gets back.
//!
//! Each module is one format at the pipeline's edge. It parses the client's request into the
//! canonical chat request of `switchyard_core::chat`, and renders the canonical result (the
//! OpenAI-shaped completion, chunk by chunk when streamed, and errors) in the client's shapes.
//! The *outbound* formats, spoken to providers, are `switchyard-providers`' codecs.
//!
//! Invariants:
//! - Pure: no sockets, no clock, no randomness; the same input gives the same output.
//! - A request a format cannot express faithfully is refused with an error naming the field,
//!   never silently changed.

pub mod messages;
pub mod openrouter;
pub mod responses;
