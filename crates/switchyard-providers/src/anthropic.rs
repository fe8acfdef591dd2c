//! Anthropic Messages API codec.
