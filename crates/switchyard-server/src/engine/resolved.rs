//! A route candidate resolved against the catalogue snapshot it was planned on.

use switchyard_core::catalog::{Catalog, Endpoint, Model, Provider};
use switchyard_core::routing::Candidate;

/// A candidate resolved against the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct Resolved<'a> {
    /// The model.
    pub model: &'a Model,
    /// The endpoint.
    pub endpoint: &'a Endpoint,
    /// Its provider.
    pub provider: &'a Provider,
}

/// Resolves a candidate; `None` when the catalogue no longer has it.
pub fn resolve<'a>(catalog: &'a Catalog, c: &Candidate) -> Option<Resolved<'a>> {
    let model = catalog.model(&c.model)?;
    let endpoint = model.endpoints.get(c.endpoint)?;
    let provider = catalog.provider(&endpoint.provider)?;
    Some(Resolved {
        model,
        endpoint,
        provider,
    })
}
