//! What every part of the Responses format shares: the [`Sealer`] that carries reasoning
//! between requests, and the error a request that cannot be served raises.

/// Seals reasoning into an opaque string a client hands back unchanged, and opens it again.
///
/// The server implements it with authenticated encryption under a gateway key, so a client can
/// neither read nor forge the reasoning details it carries between requests.
pub trait Sealer: Send + Sync {
    /// Seals `plain` into a printable token.
    fn seal(&self, plain: &[u8]) -> String;
    /// Opens a token made by [`Sealer::seal`]; `None` when it was not, or was altered.
    fn open(&self, sealed: &str) -> Option<Vec<u8>>;
}

/// A request that is not a valid (stateless) Responses API request; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ResponsesError(pub String);

pub(super) fn err<T>(message: impl Into<String>) -> Result<T, ResponsesError> {
    Err(ResponsesError(message.into()))
}

pub(super) const STATELESS: &str =
    "this gateway keeps no conversation state; send the whole conversation in input";
