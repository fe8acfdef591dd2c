//! Data classifications: named sensitivity levels, each allowing a set of providers and data
//! policies. A request carries one (from its key, the account default or the
//! `X-Switchyard-Data-Classification` header, whichever is strictest... see
//! [`Classifications::resolve`]), and routing never leaves what it allows, fallbacks included.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalog::{Endpoint, Provider};

/// What one classification allows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Classification {
    /// Only these providers (slugs), when set.
    pub allowed_providers: Option<Vec<String>>,
    /// Providers that may train on prompts are refused.
    pub deny_training: bool,
    /// Only zero-data-retention providers.
    pub require_zdr: bool,
    /// Providers that retain prompts longer than this (or for an unknown time) are refused.
    pub max_retention_days: Option<u32>,
    /// Free endpoints (zero prompt and completion price) are refused.
    pub deny_free: bool,
    /// Only the operator's own provider accounts (BYOK) or zero-retention (self-hosted)
    /// providers.
    pub byok_or_zdr_only: bool,
    /// Rank used to pick the strictest of several classifications (higher is stricter).
    pub level: u32,
}

impl Classification {
    /// Why this classification refuses an endpoint of a provider, if it does.
    pub fn refuses(&self, provider: &Provider, endpoint: &Endpoint) -> Option<&'static str> {
        if self.deny_free && endpoint.pricing.is_free() {
            return Some("data_classification:free");
        }
        if self.byok_or_zdr_only && !(provider.byok || provider.data_policy.zdr) {
            return Some("data_classification:byok_or_zdr");
        }
        if let Some(allowed) = &self.allowed_providers {
            if !allowed
                .iter()
                .any(|a| a.eq_ignore_ascii_case(&provider.slug))
            {
                return Some("data_classification:provider");
            }
        }
        let policy = &provider.data_policy;
        if self.require_zdr && !policy.zdr {
            return Some("data_classification:zdr");
        }
        if self.deny_training && policy.training {
            return Some("data_classification:training");
        }
        if let Some(max) = self.max_retention_days {
            if policy.retains_prompts && policy.retention_days.is_none_or(|d| d > max) {
                return Some("data_classification:retention");
            }
        }
        None
    }
}

/// The operator's classifications by name, the four built-in ones included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classifications {
    by_name: BTreeMap<String, Classification>,
}

impl Default for Classifications {
    fn default() -> Self {
        Self::with(BTreeMap::new())
    }
}

impl Classifications {
    /// The built-ins (`public`, `internal`, `confidential`, `restricted`), overridden and extended
    /// by the operator's own. Names are case-insensitive.
    pub fn with(custom: BTreeMap<String, Classification>) -> Classifications {
        let mut by_name = BTreeMap::new();
        by_name.insert("public".to_owned(), Classification::default());
        by_name.insert(
            "internal".to_owned(),
            Classification {
                deny_training: true,
                level: 1,
                ..Classification::default()
            },
        );
        by_name.insert(
            "confidential".to_owned(),
            Classification {
                deny_training: true,
                deny_free: true,
                max_retention_days: Some(30),
                level: 2,
                ..Classification::default()
            },
        );
        by_name.insert(
            "restricted".to_owned(),
            Classification {
                deny_training: true,
                deny_free: true,
                byok_or_zdr_only: true,
                level: 3,
                ..Classification::default()
            },
        );
        for (name, c) in custom {
            by_name.insert(name.to_ascii_lowercase(), c);
        }
        Classifications { by_name }
    }

    /// A classification by name.
    pub fn get(&self, name: &str) -> Option<&Classification> {
        self.by_name.get(&name.to_ascii_lowercase())
    }

    /// Known names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.by_name.keys().map(String::as_str).collect()
    }

    /// The classification that applies: the strictest (highest level) of the assigned one (key
    /// or account) and the one the request asks for, so that a request can tighten but never
    /// loosen what its key was given. `Err` names an unknown classification.
    pub fn resolve<'a>(
        &'a self,
        assigned: Option<&'a str>,
        requested: Option<&'a str>,
    ) -> Result<Option<(&'a str, &'a Classification)>, String> {
        let mut best: Option<(&str, &Classification)> = None;
        for name in [assigned, requested].into_iter().flatten() {
            let Some(c) = self.get(name) else {
                return Err(format!(
                    "Unknown data classification {name:?}: known ones are {}",
                    self.names().join(", ")
                ));
            };
            if best.is_none_or(|(_, b)| c.level > b.level) {
                best = Some((name, c));
            }
        }
        Ok(best)
    }
}

impl crate::restrict::Restriction for Classification {
    fn refuses(
        &self,
        _model: &str,
        provider: &Provider,
        endpoint: &Endpoint,
    ) -> Option<&'static str> {
        Classification::refuses(self, provider, endpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::routing::RoutePlan;

    /// Providers: `t` trains, `k` keeps 30 days, `l` keeps 90, `z` is ZDR, `b` is BYOK and
    /// retains, `f` is ZDR but its endpoint is free.
    fn catalog() -> Catalog {
        let mut text = String::new();
        for (slug, policy, byok) in [
            ("t", "training = true, retains_prompts = true", false),
            (
                "k",
                "training = false, retains_prompts = true, retention_days = 30",
                false,
            ),
            (
                "l",
                "training = false, retains_prompts = true, retention_days = 90",
                false,
            ),
            (
                "z",
                "training = false, retains_prompts = false, zdr = true",
                false,
            ),
            (
                "b",
                "training = false, retains_prompts = true, retention_days = 30",
                true,
            ),
            (
                "f",
                "training = false, retains_prompts = false, zdr = true",
                false,
            ),
        ] {
            text.push_str(&format!(
                "[[providers]]\nslug = \"{slug}\"\nname = \"{slug}\"\nkind = \"openai\"\nbase_url = \"http://x\"\nbyok = {byok}\ndata_policy = {{ {policy} }}\n\n"
            ));
        }
        text.push_str("[[models]]\nid = \"a/m\"\nname = \"M\"\ncontext_length = 1000\n\n");
        for slug in ["t", "k", "l", "z", "b", "f"] {
            let price = if slug == "f" { "0" } else { "0.000001" };
            text.push_str(&format!(
                "[[models.endpoints]]\nprovider = \"{slug}\"\nupstream_model = \"m\"\npricing = {{ prompt = \"{price}\", completion = \"{price}\" }}\n\n"
            ));
        }
        Catalog::from_toml("test", &text).expect("catalog")
    }

    fn refusal(c: &Classification, catalog: &Catalog, slug: &str) -> Option<&'static str> {
        let model = catalog.model("a/m").expect("model");
        let endpoint = model
            .endpoints
            .iter()
            .find(|e| e.provider == slug)
            .expect("endpoint");
        c.refuses(catalog.provider(slug).expect("provider"), endpoint)
    }

    #[test]
    fn built_in_levels_follow_the_classification_matrix() {
        let all = Classifications::default();
        let catalog = catalog();
        let cases = [
            ("public", "t", None),
            ("public", "f", None),
            ("internal", "t", Some("data_classification:training")),
            ("internal", "l", None),
            ("confidential", "k", None),
            ("confidential", "l", Some("data_classification:retention")),
            ("confidential", "f", Some("data_classification:free")),
            ("restricted", "k", Some("data_classification:byok_or_zdr")),
            ("restricted", "z", None),
            ("restricted", "b", None),
            ("restricted", "f", Some("data_classification:free")),
        ];
        for (name, slug, want) in cases {
            let c = all.get(name).expect("built in");
            assert_eq!(refusal(c, &catalog, slug), want, "{name} {slug}");
        }
    }

    #[test]
    fn resolve_takes_the_strictest_and_names_unknowns() {
        let all = Classifications::default();
        let pick = |a, r| all.resolve(a, r).map(|o| o.map(|(n, _)| n));
        assert_eq!(
            pick(Some("restricted"), Some("public")),
            Ok(Some("restricted"))
        );
        assert_eq!(
            pick(Some("internal"), Some("Confidential")),
            Ok(Some("Confidential"))
        );
        assert_eq!(pick(None, None), Ok(None));
        let err = pick(None, Some("secret")).expect_err("unknown");
        assert!(
            err.contains("\"secret\"") && err.contains("restricted"),
            "{err}"
        );
    }

    #[test]
    fn custom_classifications_extend_and_override() {
        let mut custom = BTreeMap::new();
        custom.insert(
            "PCI".to_owned(),
            Classification {
                allowed_providers: Some(vec!["Z".to_owned()]),
                level: 10,
                ..Classification::default()
            },
        );
        let all = Classifications::with(custom);
        let c = all.get("pci").expect("custom");
        let catalog = catalog();
        assert_eq!(
            refusal(c, &catalog, "k"),
            Some("data_classification:provider")
        );
        assert_eq!(refusal(c, &catalog, "z"), None);
    }

    #[test]
    fn restrict_moves_refused_candidates_to_exclusions() {
        let catalog = catalog();
        let mut plan = RoutePlan::default();
        for (i, slug) in ["t", "z", "k"].iter().enumerate() {
            plan.candidates.push(crate::routing::Candidate {
                model: "a/m".to_owned(),
                endpoint: ["t", "k", "l", "z", "b", "f"]
                    .iter()
                    .position(|s| s == slug)
                    .expect("index"),
                provider: (*slug).to_owned(),
                tag: format!("{slug}-{i}"),
            });
        }
        let all = Classifications::default();
        let internal = all.get("internal").expect("internal");
        crate::restrict::narrow(&mut plan, &catalog, &[internal]).expect("some remain");
        let kept: Vec<&str> = plan
            .candidates
            .iter()
            .map(|c| c.provider.as_str())
            .collect();
        assert_eq!(kept, ["z", "k"]);
        assert_eq!(plan.excluded.len(), 1);
        assert_eq!(plan.excluded[0].reason, "data_classification:training");
    }
}
