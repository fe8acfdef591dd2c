//! Narrowing a route plan after routing: the account's training settings, the request's data
//! classification and the key's guardrail are all one thing, a reason to exclude an endpoint.
//!
//! [`routing::plan`](crate::routing::plan) applies the request's own preferences and the account
//! policy it knows; [`narrow`] then applies the remaining [`Restriction`]s in the order given,
//! each through [`RoutePlan::exclude_where`], so every endpoint removed carries the reason of the
//! first restriction that refused it. When a restriction removes the last candidate, [`narrow`]
//! says which one did, so that the caller can answer with that restriction's own error.
//!
//! Invariants:
//! - A restriction only removes candidates: it never adds or reorders one.
//! - Every removed candidate is in `plan.excluded` with a reason.

use crate::catalog::{Catalog, Endpoint, Provider};
use crate::routing::RoutePlan;

/// A rule that refuses some endpoints, each with a reason.
pub trait Restriction {
    /// Why the endpoint of `provider` serving `model` is refused, if it is.
    fn refuses(
        &self,
        model: &str,
        provider: &Provider,
        endpoint: &Endpoint,
    ) -> Option<&'static str>;
}

/// The account's training settings: endpoints whose provider may train on prompts are refused
/// unless training is allowed for their kind (paid or free).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainingSettings {
    /// Training allowed on paid endpoints.
    pub allow_paid: bool,
    /// Training allowed on free endpoints.
    pub allow_free: bool,
}

impl Restriction for TrainingSettings {
    fn refuses(
        &self,
        _model: &str,
        provider: &Provider,
        endpoint: &Endpoint,
    ) -> Option<&'static str> {
        let allowed = if endpoint.pricing.is_free() {
            self.allow_free
        } else {
            self.allow_paid
        };
        (provider.data_policy.training && !allowed).then_some(crate::routing::reasons::TRAINING)
    }
}

/// Which restriction left the plan without a candidate: its index in the list given to
/// [`narrow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Emptied(pub usize);

/// Applies `restrictions` in order. Stops at the first one that leaves no candidate and returns
/// its index; the plan then lists every exclusion made so far.
pub fn narrow(
    plan: &mut RoutePlan,
    catalog: &Catalog,
    restrictions: &[&dyn Restriction],
) -> Result<(), Emptied> {
    for (index, restriction) in restrictions.iter().enumerate() {
        if plan.candidates.is_empty() {
            return Err(Emptied(index));
        }
        plan.exclude_where(|c| {
            let endpoint = catalog
                .model(&c.model)
                .and_then(|m| m.endpoints.get(c.endpoint));
            match (catalog.provider(&c.provider), endpoint) {
                (Some(p), Some(e)) => restriction.refuses(&c.model, p, e),
                // A candidate the catalogue no longer knows (a reload between planning and
                // narrowing) cannot be judged, so it is not served.
                _ => Some(crate::routing::reasons::UNKNOWN_ENDPOINT),
            }
        });
        if plan.candidates.is_empty() {
            return Err(Emptied(index));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::{Candidate, RoutePlan};

    fn catalog() -> Catalog {
        let text = r#"
[[providers]]
slug = "trains"
name = "Trains"
kind = "openai"
base_url = "http://127.0.0.1:1/v1"
data_policy = { training = true, retains_prompts = true }

[[providers]]
slug = "clean"
name = "Clean"
kind = "openai"
base_url = "http://127.0.0.1:1/v1"
data_policy = { training = false, retains_prompts = false, zdr = true }

[[models]]
id = "a/paid"
name = "Paid"
context_length = 1000

[[models.endpoints]]
provider = "trains"
upstream_model = "m"
pricing = { prompt = "0.000001", completion = "0.000002" }

[[models.endpoints]]
provider = "clean"
upstream_model = "m"
pricing = { prompt = "0.000001", completion = "0.000002" }

[[models]]
id = "a/free"
name = "Free"
context_length = 1000

[[models.endpoints]]
provider = "trains"
upstream_model = "m"
pricing = { prompt = "0", completion = "0" }
"#;
        Catalog::from_toml("test", text).expect("catalogue")
    }

    fn plan(catalog: &Catalog) -> RoutePlan {
        let mut candidates = Vec::new();
        for model in catalog.models() {
            for (i, e) in model.endpoints.iter().enumerate() {
                candidates.push(Candidate {
                    model: model.id.clone(),
                    provider: e.provider.clone(),
                    tag: e.tag.clone(),
                    endpoint: i,
                });
            }
        }
        RoutePlan {
            candidates,
            ..RoutePlan::default()
        }
    }

    fn kept(plan: &RoutePlan) -> Vec<String> {
        plan.candidates
            .iter()
            .map(|c| format!("{}@{}", c.model, c.provider))
            .collect()
    }

    #[test]
    fn training_settings_judge_paid_and_free_apart() {
        let catalog = catalog();
        let cases: &[(bool, bool, &[&str])] = &[
            (
                true,
                true,
                &["a/paid@trains", "a/paid@clean", "a/free@trains"],
            ),
            (false, true, &["a/paid@clean", "a/free@trains"]),
            (true, false, &["a/paid@trains", "a/paid@clean"]),
            (false, false, &["a/paid@clean"]),
        ];
        for (allow_paid, allow_free, want) in cases {
            let mut p = plan(&catalog);
            let settings = TrainingSettings {
                allow_paid: *allow_paid,
                allow_free: *allow_free,
            };
            assert_eq!(narrow(&mut p, &catalog, &[&settings]), Ok(()));
            assert_eq!(kept(&p), *want, "paid {allow_paid} free {allow_free}");
            for x in &p.excluded {
                assert_eq!(x.reason, crate::routing::reasons::TRAINING);
            }
        }
    }

    /// Refuses one provider by slug.
    struct NotProvider(&'static str);

    impl Restriction for NotProvider {
        fn refuses(&self, _: &str, provider: &Provider, _: &Endpoint) -> Option<&'static str> {
            (provider.slug == self.0).then_some("test:provider")
        }
    }

    #[test]
    fn narrow_names_the_restriction_that_emptied_the_plan() {
        let catalog = catalog();
        let no_training = TrainingSettings {
            allow_paid: false,
            allow_free: false,
        };
        let mut p = plan(&catalog);
        let result = narrow(
            &mut p,
            &catalog,
            &[&NotProvider("nobody"), &no_training, &NotProvider("clean")],
        );
        assert_eq!(result, Err(Emptied(2)));
        assert!(p.candidates.is_empty());
        let reasons: Vec<&str> = p.excluded.iter().map(|x| x.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                crate::routing::reasons::TRAINING,
                crate::routing::reasons::TRAINING,
                "test:provider"
            ]
        );
    }

    #[test]
    fn an_empty_plan_is_reported_at_the_first_restriction() {
        let catalog = catalog();
        let mut p = RoutePlan::default();
        assert_eq!(
            narrow(&mut p, &catalog, &[&NotProvider("x")]),
            Err(Emptied(0))
        );
        assert_eq!(narrow(&mut p, &catalog, &[]), Ok(()));
    }

    #[test]
    fn restrictions_only_remove_and_keep_order() {
        let catalog = catalog();
        let mut p = plan(&catalog);
        let before = kept(&p);
        narrow(&mut p, &catalog, &[&NotProvider("trains")]).expect("clean remains");
        let after = kept(&p);
        let expected: Vec<String> = before
            .into_iter()
            .filter(|c| !c.ends_with("@trains"))
            .collect();
        assert_eq!(after, expected);
    }
}
