//! Data classifications: named sensitivity levels, each allowing a set of providers and data
//! policies. A request carries one (from its key, the account default or the
//! `X-Switchyard-Data-Classification` header, whichever is strictest... see
//! [`Classifications::resolve`]), and routing never leaves what it allows, fallbacks included.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, Provider};
use crate::routing::{Exclusion, RoutePlan};

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
    /// Rank used to pick the strictest of several classifications (higher is stricter).
    pub level: u32,
}

impl Classification {
    /// Why this classification refuses a provider, if it does.
    pub fn refuses(&self, provider: &Provider) -> Option<&'static str> {
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
                max_retention_days: Some(30),
                level: 2,
                ..Classification::default()
            },
        );
        by_name.insert(
            "restricted".to_owned(),
            Classification {
                deny_training: true,
                require_zdr: true,
                max_retention_days: Some(0),
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

/// Removes every candidate the classification refuses, recording each as an exclusion.
pub fn restrict(plan: &mut RoutePlan, catalog: &Catalog, classification: &Classification) {
    let mut kept = Vec::with_capacity(plan.candidates.len());
    for c in plan.candidates.drain(..) {
        let reason = match catalog.provider(&c.provider) {
            Some(p) => classification.refuses(p),
            None => Some("data_classification:provider"),
        };
        match reason {
            None => kept.push(c),
            Some(reason) => plan.excluded.push(Exclusion {
                model: c.model,
                provider: c.provider,
                tag: c.tag,
                reason: reason.to_owned(),
            }),
        }
    }
    plan.candidates = kept;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::DataPolicy;

    fn provider(
        slug: &str,
        training: bool,
        retains: bool,
        days: Option<u32>,
        zdr: bool,
    ) -> Provider {
        Provider {
            slug: slug.to_owned(),
            name: slug.to_owned(),
            kind: crate::catalog::ProviderKind::Openai,
            base_url: "http://x".to_owned(),
            api_key_env: None,
            byok: false,
            data_policy: DataPolicy {
                training,
                retains_prompts: retains,
                retention_days: days,
                zdr,
            },
            privacy_policy_url: None,
            terms_of_service_url: None,
            status_page_url: None,
            headquarters: None,
            datacenters: Vec::new(),
        }
    }

    #[test]
    fn built_in_levels_refuse_what_they_should() {
        let all = Classifications::default();
        let trains = provider("t", true, true, None, false);
        let keeps_30 = provider("k", false, true, Some(30), false);
        let keeps_long = provider("l", false, true, Some(90), false);
        let zdr = provider("z", false, false, None, true);
        let cases = [
            ("public", &trains, None),
            ("internal", &trains, Some("data_classification:training")),
            ("internal", &keeps_long, None),
            ("confidential", &keeps_30, None),
            (
                "confidential",
                &keeps_long,
                Some("data_classification:retention"),
            ),
            ("restricted", &keeps_30, Some("data_classification:zdr")),
            ("restricted", &zdr, None),
        ];
        for (name, p, want) in cases {
            let c = all.get(name).expect("built in");
            assert_eq!(c.refuses(p), want, "{name} {}", p.slug);
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
                allowed_providers: Some(vec!["azure".to_owned()]),
                level: 10,
                ..Classification::default()
            },
        );
        let all = Classifications::with(custom);
        let c = all.get("pci").expect("custom");
        assert_eq!(
            c.refuses(&provider("openai", false, false, None, true)),
            Some("data_classification:provider")
        );
        assert_eq!(
            c.refuses(&provider("Azure", false, false, None, true)),
            None
        );
    }
}
