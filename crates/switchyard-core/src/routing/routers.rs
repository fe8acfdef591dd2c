//! Model names that stand for a choice among the catalogue's models: the routers
//! `openrouter/free` and `openrouter/auto`, and `~author/family-latest`.
//!
//! - `openrouter/free`: every model of the request's kind, free endpoints only (the `:free`
//!   filter, reason `not_free`), load balanced as one pool: the draw is uniform among the free
//!   healthy endpoints that pass the request's filters.
//! - `openrouter/auto`: every model of the request's kind; an endpoint must support every
//!   parameter the request sets (as with `require_parameters`, reason `require_parameters`)
//!   and fit its prompt and `max_tokens` (reason `context_length`), like every filter of the
//!   request; the rest are ordered by price, cheapest first (prompt plus completion price per
//!   token; a tie goes to the endpoint listed earlier in its model, then to catalogue order), the
//!   others following as fallbacks. A `provider.sort`
//!   of the request orders instead.
//! - `~author/family-latest`: a catalogue alias when the catalogue declares that name;
//!   otherwise the newest model (largest `created`, ties to the greatest id) whose id is
//!   `author/family` or begins with `author/family-` or `author/family.`.
//!
//! A router takes no variant suffix. The plan says which router chose ([`RoutePlan::router`]).
//!
//! [`RoutePlan::router`]: super::RoutePlan::router

use super::filters::Variant;
use super::types::RouteError;
use crate::catalog::{Catalog, Model, ModelKind};

/// The router choosing the cheapest capable endpoint.
pub const AUTO: &str = "openrouter/auto";
/// The router choosing among free endpoints.
pub const FREE: &str = "openrouter/free";

/// The plan's `router` for each kind of name: the contract's `openrouter_metadata.strategy`.
pub mod strategy {
    /// `openrouter/auto`.
    pub const AUTO: &str = "auto";
    /// `openrouter/free`.
    pub const FREE: &str = "free";
    /// `~author/family-latest`.
    pub const LATEST: &str = "latest";
}

/// What a requested name designates: the models, each with its variant, and the router that
/// chose them (`None` for a plain model id or alias).
pub(super) struct Resolution<'c> {
    pub models: Vec<(&'c Model, Option<Variant>)>,
    pub router: Option<&'static str>,
}

/// Resolves one requested name (with any variant suffix) for a request of `kind`.
pub(super) fn resolve<'c>(
    name: &str,
    catalog: &'c Catalog,
    kind: ModelKind,
) -> Result<Resolution<'c>, RouteError> {
    let (base, variant) = super::filters::split_variant(name);
    let pool = match base {
        AUTO => Some((Variant::Auto, strategy::AUTO)),
        FREE => Some((Variant::Free, strategy::FREE)),
        _ => None,
    };
    if let Some((forced, router)) = pool {
        if variant.is_some() {
            return Err(RouteError::InvalidPreference(format!(
                "{base} takes no model variant"
            )));
        }
        let models = catalog
            .models()
            .iter()
            .filter(|m| m.kind() == kind)
            .map(|m| (m, Some(forced)))
            .collect();
        return Ok(Resolution {
            models,
            router: Some(router),
        });
    }
    let variant = match variant {
        None => None,
        Some(v) => Some(Variant::parse(v).ok_or_else(|| {
            RouteError::InvalidPreference(format!(
                "{name}: unknown model variant `:{v}` (known: {})",
                super::VARIANTS
                    .iter()
                    .map(|v| format!(":{v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?),
    };
    let (model, router) = match catalog.model(base) {
        Some(model) => (model, None),
        None => match latest(catalog, base) {
            Some(model) => (model, Some(strategy::LATEST)),
            None => {
                return Err(RouteError::ModelNotFound {
                    model: name.to_owned(),
                })
            }
        },
    };
    if model.kind() != kind {
        return Err(RouteError::WrongModelKind {
            model: model.id.clone(),
            kind: model.kind(),
        });
    }
    Ok(Resolution {
        models: vec![(model, variant)],
        router,
    })
}

/// The newest member of the family `~author/family-latest` names (see the module's
/// documentation); `None` when the name is not of that form or no model is in the family.
pub fn latest<'c>(catalog: &'c Catalog, name: &str) -> Option<&'c Model> {
    let family = name.strip_prefix('~')?.strip_suffix("-latest")?;
    if !family.contains('/') || family.ends_with('/') {
        return None;
    }
    catalog
        .models()
        .iter()
        .filter(|m| {
            m.id == family
                || m.id
                    .strip_prefix(family)
                    .is_some_and(|rest| rest.starts_with('-') || rest.starts_with('.'))
        })
        .max_by(|a, b| a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id)))
}
