//! Routing: which endpoints may serve a request, and in which order.
//!
//! [`plan`] is a pure function over the catalogue snapshot, the health snapshot, the account
//! policy and the request. It returns the ordered candidates (first choice, then fallbacks) and
//! the reason every other endpoint was excluded.
//!
//! Semantics, in the order they apply:
//!
//! 1. **Models.** `model` first, then `models[]` (duplicates dropped). Each id may carry a variant:
//!    `:free` keeps only endpoints whose prompt and completion prices are zero, `:nitro` sorts by
//!    throughput (and admits `priority` tier endpoints), `:floor` sorts by price (and admits
//!    `flex` tier endpoints), `:exacto` sorts by the exacto key (throughput here). Any other
//!    variant is an error naming it. A name is a catalogue id or one of a model's aliases; the
//!    plan names models by id. An unknown name is [`RouteError::ModelNotFound`]. A chat request
//!    naming no model gets the catalogue's `default_model` ([`RouteError::NoModel`] without
//!    one). A model of the other kind (an embedding model for a chat request, or the reverse)
//!    is [`RouteError::WrongModelKind`], a client error: chat never reaches an embedding model.
//!    The routers `openrouter/free` and `openrouter/auto` stand for every model of the request's
//!    kind (ordered together, as one requested model), and `~author/family-latest` for the
//!    family's newest model; `routing/routers.rs` has their rules, and the plan names the
//!    router ([`RoutePlan::router`]).
//! 2. **Hard filters**, per endpoint; the first that fails is the exclusion reason:
//!    `account_policy` (account allow/ignore lists), `only`, `ignore`, `order` (with
//!    `allow_fallbacks: false`), `service_tier` (tier endpoints need an opt-in),
//!    `data_policy:zdr`, `data_policy:training` (request `data_collection: deny` drops endpoints
//!    that train **or** retain prompts; the account's `deny_training` drops those that train),
//!    `distillable_text`, `quantization`, `not_free`, `max_price`, `context_length`, `modality`,
//!    `tools`, `require_parameters`, `dimensions` (an embeddings request asks for a vector
//!    length the model cannot give), `legacy_completions` (a legacy completions request uses a
//!    field only an endpoint serving that API natively honours). The request can only tighten
//!    the account [`Policy`].
//! 3. **Circuit breaker.** Endpoints whose circuit is open are excluded (`circuit_open`), unless
//!    every endpoint that passed the hard filters (over all requested models) is open: then they
//!    are all kept, in the usual order, as probes. A request is never refused only because the
//!    gateway's own health bookkeeping is pessimistic.
//! 4. **Order**, per model (`partition: model`, the default: candidates of the first model, then
//!    of the second...) or over all models together (`partition: none`, or legacy
//!    `route: "sort"`):
//!    - `order`: the listed providers first, in list order, then the rest by price.
//!    - `sort` (or a sorting variant): strict order by the key (price ascending; throughput
//!      descending; latency ascending; unmeasured endpoints after measured ones), ties by price
//!      then catalogue order.
//!    - otherwise load balancing: one endpoint is drawn among the healthy ones with weight
//!      `1/price²` (price = prompt + completion per token) using [`RouteContext::random`]; if some
//!      healthy endpoints are free they are the cheapest and the draw is uniform among them. The
//!      rest follow by price.
//!
//!    In every mode degraded endpoints (recent failures) go after healthy ones, and endpoints
//!    that miss a soft preference (`preferred_min_throughput`, `preferred_max_latency`, or lack
//!    support for a sent `response_format`/`verbosity`) go after those that meet it; soft
//!    preferences never exclude. Unmeasured endpoints count as meeting performance preferences.
//!    The explicitly listed part of `order` is kept exactly as given.
//! 5. **Sticky.** Without `order` or `sort`, when [`RouteContext::sticky_provider`] matches a
//!    healthy candidate of the first model (or of the pool, with `partition: none`), it goes
//!    first.
//! 6. **`allow_fallbacks: false`.** With `order`: only the listed providers (others are excluded
//!    with reason `order`). Without `order`: only the first candidate of each model (the others
//!    are listed with reason `allow_fallbacks`); model fallback through `models[]` still applies.
//!
//! An empty result is [`RouteError::NoEndpoints`] whose code is `privacy_restricted` when a data
//! policy or ZDR filter removed an endpoint, `constraint_filtered` when another request
//! constraint did, and `no_endpoints` otherwise (only the account allow/ignore lists).

mod filters;
mod order;
mod request;
mod routers;
mod types;

use std::collections::HashSet;

use crate::catalog::{Catalog, DataPolicy, Endpoint, Model, ModelKind};
use crate::chat::ChatRequest;

use filters::{Rules, Variant};
use order::{apply_sticky, sort_by_order, sort_default, sort_strict, Entry};
use types::no_endpoints;

pub use crate::preferences::{
    DataCollection, MaxPrice, Partition, Percentiles, ProviderPreferences, SortBy, SortPreference,
};
pub use filters::{matches_slug, split_variant, VARIANTS};
pub use order::weighted_choice;
pub use request::{Policy, RouteRequest};
pub use routers::{latest, strategy, AUTO, FREE};
pub use types::{
    reasons, Candidate, EndpointHealth, Exclusion, HealthSnapshot, Quantiles, RouteContext,
    RouteError, RoutePlan,
};

/// Computes the route for a chat request.
pub fn plan(
    request: &ChatRequest,
    catalog: &Catalog,
    health: &HealthSnapshot,
    policy: &Policy,
    context: &RouteContext,
) -> Result<RoutePlan, RouteError> {
    plan_request(
        &RouteRequest::chat(request),
        catalog,
        health,
        policy,
        context,
    )
}

/// Computes the route for a request of any API. Model names are catalogue ids or aliases; the
/// plan names models by id. A chat request naming no model gets the catalogue's default model.
pub fn plan_request(
    request: &RouteRequest<'_>,
    catalog: &Catalog,
    health: &HealthSnapshot,
    policy: &Policy,
    context: &RouteContext,
) -> Result<RoutePlan, RouteError> {
    // Duplicates dropped in one pass (a set of what was seen, not a scan of the list so far).
    let mut requested: Vec<String> = Vec::new();
    let mut seen_ids: HashSet<&str> = HashSet::new();
    for m in request
        .model
        .into_iter()
        .chain(request.models.iter().map(String::as_str))
    {
        let m = m.trim();
        if !m.is_empty() && seen_ids.insert(m) {
            requested.push(m.to_owned());
        }
    }
    if requested.is_empty() {
        match catalog.default_model() {
            Some(model) if request.kind == ModelKind::Chat => requested.push(model.id.clone()),
            _ => return Err(RouteError::NoModel),
        }
    }
    let rules = Rules::new(request, policy)?;
    // Each requested name's models, with the position of the name: a router's models are
    // ordered together, as one requested model.
    let mut models: Vec<(&Model, Option<Variant>, usize)> = Vec::new();
    let mut router = None;
    for (pos, name) in requested.iter().enumerate() {
        let resolution = routers::resolve(name, catalog, request.kind)?;
        router = router.or(resolution.router);
        models.extend(resolution.models.into_iter().map(|(m, v)| (m, v, pos)));
    }

    let mut plan = RoutePlan {
        requested_models: requested.clone(),
        router,
        ..RoutePlan::default()
    };
    let exclusion = |model: &Model, endpoint: &Endpoint, reason: &str| Exclusion {
        model: model.id.clone(),
        provider: endpoint.provider.clone(),
        tag: endpoint.tag.clone(),
        reason: reason.to_owned(),
    };

    // Hard filters.
    let mut seen: HashSet<(&str, usize)> = HashSet::new();
    let mut entries: Vec<Entry<'_>> = Vec::new();
    for &(model, variant, model_pos) in &models {
        for (index, endpoint) in model.endpoints.iter().enumerate() {
            if !seen.insert((model.id.as_str(), index)) {
                continue;
            }
            let data_policy = catalog
                .provider(&endpoint.provider)
                .map_or(DataPolicy::UNKNOWN, |p| p.data_policy);
            if let Some(reason) = rules.reject(model, endpoint, data_policy, variant) {
                plan.excluded.push(exclusion(model, endpoint, reason));
                continue;
            }
            let endpoint_health = health.get(&model.id, &endpoint.tag);
            entries.push(Entry {
                candidate: Candidate {
                    model: model.id.clone(),
                    endpoint: index,
                    provider: endpoint.provider.clone(),
                    tag: endpoint.tag.clone(),
                },
                endpoint,
                model,
                price: endpoint
                    .pricing
                    .prompt
                    .amount
                    .saturating_add(endpoint.pricing.completion.amount),
                misses: rules.misses_preference(endpoint, &endpoint_health),
                health: endpoint_health,
                model_pos,
                variant,
            });
        }
    }

    // Circuit breaker: open circuits are skipped unless nothing else is left (probes).
    if entries.iter().any(|e| !e.health.circuit_open) {
        entries.retain(|e| {
            if e.health.circuit_open {
                plan.excluded
                    .push(exclusion(e.model, e.endpoint, reasons::CIRCUIT_OPEN));
                false
            } else {
                true
            }
        });
    }

    // Ordering, per model or over the pool.
    let groups: Vec<Vec<Entry<'_>>> = match rules.partition {
        Partition::Model => {
            let mut groups: Vec<Vec<Entry<'_>>> = vec![Vec::new(); requested.len()];
            for e in entries {
                let pos = e.model_pos;
                groups[pos].push(e);
            }
            groups
        }
        Partition::None => vec![entries],
    };
    let mut first_group = true;
    for mut group in groups {
        if group.is_empty() {
            continue;
        }
        let variant_sort = group
            .iter()
            .min_by_key(|e| e.model_pos)
            .and_then(|e| e.variant)
            .and_then(Variant::sort);
        if let Some(order) = &rules.order {
            sort_by_order(&mut group, order);
        } else if let Some(by) = rules.sort.or(variant_sort) {
            sort_strict(&mut group, by);
        } else {
            sort_default(&mut group, context.random);
            if first_group {
                if let Some(sticky) = &context.sticky_provider {
                    apply_sticky(&mut group, sticky);
                }
            }
        }
        first_group = false;
        if !rules.allow_fallbacks && rules.order.is_none() {
            // Only the primary choice of each model.
            let mut firsts: HashSet<usize> = HashSet::new();
            group.retain(|e| {
                if firsts.insert(e.model_pos) {
                    true
                } else {
                    plan.excluded
                        .push(exclusion(e.model, e.endpoint, reasons::ALLOW_FALLBACKS));
                    false
                }
            });
        }
        plan.candidates
            .extend(group.into_iter().map(|e| e.candidate));
    }

    if plan.candidates.is_empty() {
        return Err(no_endpoints(plan, request.legacy_completions));
    }
    Ok(plan)
}
