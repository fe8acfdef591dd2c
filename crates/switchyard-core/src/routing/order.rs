//! Ordering the endpoints that passed the filters: `order`, strict sorts, load balancing and
//! sticky sessions.

use super::filters::{matches_slug, Variant};
use super::types::{Candidate, EndpointHealth};
use crate::catalog::{Endpoint, Model};
use crate::money::Money;
use crate::preferences::SortBy;

/// An endpoint that passed the hard filters, with what ordering needs.
#[derive(Debug, Clone)]
pub(super) struct Entry<'a> {
    pub(super) candidate: Candidate,
    pub(super) endpoint: &'a Endpoint,
    pub(super) model: &'a Model,
    /// Prompt plus completion price per token.
    pub(super) price: Money,
    pub(super) health: EndpointHealth,
    pub(super) misses: bool,
    /// Position of the model among the requested ones.
    pub(super) model_pos: usize,
    /// The model's variant.
    pub(super) variant: Option<Variant>,
}

impl Entry<'_> {
    pub(super) fn healthy(&self) -> bool {
        !self.health.degraded && !self.health.circuit_open
    }
}

/// Orders by a measurement, measured ones first.
fn measured_order(a: Option<f64>, b: Option<f64>, descending: bool) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Some(a), Some(b)) if descending => b.total_cmp(&a),
        (Some(a), Some(b)) => a.total_cmp(&b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

fn tie_break(a: &Entry<'_>, b: &Entry<'_>) -> std::cmp::Ordering {
    a.price
        .cmp(&b.price)
        .then(a.model_pos.cmp(&b.model_pos))
        .then(a.candidate.endpoint.cmp(&b.candidate.endpoint))
}

/// Health class: healthy, missing a soft preference, degraded, circuit open.
fn class(e: &Entry<'_>) -> (bool, bool, bool) {
    (e.health.circuit_open, e.health.degraded, e.misses)
}

pub(super) fn sort_strict(entries: &mut [Entry<'_>], by: SortBy) {
    entries.sort_by(|a, b| {
        class(a)
            .cmp(&class(b))
            .then_with(|| match by {
                SortBy::Price => std::cmp::Ordering::Equal,
                SortBy::Throughput | SortBy::Exacto => measured_order(
                    a.health.throughput.map(|q| q.p50),
                    b.health.throughput.map(|q| q.p50),
                    true,
                ),
                SortBy::Latency => measured_order(
                    a.health.latency_ms.map(|q| q.p50),
                    b.health.latency_ms.map(|q| q.p50),
                    false,
                ),
            })
            .then_with(|| tie_break(a, b))
    });
}

pub(super) fn sort_by_order(entries: &mut Vec<Entry<'_>>, order: &[String]) {
    // Each entry's rank is found once, not once per comparison.
    let rank = |e: &Entry<'_>| {
        order
            .iter()
            .position(|s| matches_slug(s, e.endpoint))
            .unwrap_or(usize::MAX)
    };
    let mut ranked: Vec<(usize, Entry<'_>)> = entries.drain(..).map(|e| (rank(&e), e)).collect();
    ranked.sort_by(|(ra, a), (rb, b)| {
        ra.cmp(rb).then_with(|| {
            if *ra == usize::MAX {
                class(a).cmp(&class(b)).then_with(|| tie_break(a, b))
            } else {
                (a.health.circuit_open, a.health.degraded)
                    .cmp(&(b.health.circuit_open, b.health.degraded))
                    .then_with(|| tie_break(a, b))
            }
        })
    });
    entries.extend(ranked.into_iter().map(|(_, e)| e));
}

/// Index drawn with weight `1/price²` among `prices`; free endpoints (price zero) are the
/// cheapest possible, so when any is present the draw is uniform among the free ones. `random`
/// is a uniform number in `[0, 1)`.
pub fn weighted_choice(prices: &[Money], random: f64) -> Option<usize> {
    if prices.is_empty() {
        return None;
    }
    let random = if random.is_finite() {
        random.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let weights: Vec<f64> = if prices.iter().any(|p| p.picos() <= 0) {
        prices
            .iter()
            .map(|p| if p.picos() <= 0 { 1.0 } else { 0.0 })
            .collect()
    } else {
        // Relative to the cheapest, so that the weights stay in (0, 1] whatever the scale.
        let min = prices.iter().map(|p| p.picos()).min().unwrap_or(1) as f64;
        prices
            .iter()
            .map(|p| {
                let r = min / p.picos() as f64;
                r * r
            })
            .collect()
    };
    let total: f64 = weights.iter().sum();
    let target = random * total;
    let mut cumulative = 0.0;
    let mut last = 0;
    for (i, w) in weights.iter().enumerate() {
        if *w <= 0.0 {
            continue;
        }
        cumulative += w;
        last = i;
        if target < cumulative {
            return Some(i);
        }
    }
    Some(last)
}

/// Load-balanced order: a weighted draw among the healthy endpoints that meet the soft
/// preferences (or, if none does, among the healthy ones), then the rest by class and price.
pub(super) fn sort_default(entries: &mut Vec<Entry<'_>>, random: f64) {
    entries.sort_by(|a, b| class(a).cmp(&class(b)).then_with(|| tie_break(a, b)));
    let pool_len = {
        let best = entries.first().map(class);
        entries
            .iter()
            .take_while(|e| e.healthy() && Some(class(e)) == best)
            .count()
    };
    if pool_len > 1 {
        let prices: Vec<Money> = entries[..pool_len].iter().map(|e| e.price).collect();
        if let Some(i) = weighted_choice(&prices, random) {
            let chosen = entries.remove(i);
            entries.insert(0, chosen);
        }
    }
}

/// Moves the sticky provider's first healthy endpoint to the front.
pub(super) fn apply_sticky(entries: &mut Vec<Entry<'_>>, sticky: &str) {
    if let Some(pos) = entries
        .iter()
        .position(|e| e.healthy() && matches_slug(sticky, e.endpoint))
    {
        let e = entries.remove(pos);
        entries.insert(0, e);
    }
}
