//! Account settings: privacy defaults for routing and the prompt-logging opt-in, stored per
//! account and cached briefly in memory so that the request path rarely reads them.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchyard_store::{Store, StoreResult};

use crate::cache::TtlCache;

/// How long a cached settings document is used before it is read again.
const TTL: Duration = Duration::from_secs(2);

/// Most accounts whose settings are kept at once.
const CAPACITY: u64 = 10_000;

/// One account's settings. Requests can only tighten them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountSettings {
    /// Paid endpoints whose provider may train on prompts are allowed.
    pub allow_training_paid: bool,
    /// Free endpoints whose provider may train on prompts are allowed.
    pub allow_training_free: bool,
    /// Only zero-data-retention endpoints.
    pub zdr_only: bool,
    /// Only these providers (slugs), when set.
    pub allowed_providers: Option<Vec<String>>,
    /// Never these providers (slugs).
    pub ignored_providers: Vec<String>,
    /// Store prompts and completions, encrypted, for `/api/v1/generation/content`.
    pub prompt_logging: bool,
    /// Data classification applied to every request of the account (requests may tighten it).
    pub data_classification: Option<String>,
    /// Moderation of requests (and non-streamed completions) before anything leaves.
    pub moderation: Option<crate::moderation::ModerationSettings>,
}

impl AccountSettings {
    /// Reads a stored document; a missing or empty one is the defaults.
    pub fn from_json(value: &serde_json::Value) -> Result<AccountSettings, String> {
        if value.is_null() {
            return Ok(AccountSettings::default());
        }
        serde_json::from_value(value.clone()).map_err(|e| e.to_string())
    }
}

/// A change to an account's settings, as `switchyard account set` and the console's privacy
/// page give it: absent members stay; provider lists are comma-separated slugs (an empty
/// `allowed_providers` allows every provider); an empty classification clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsChange {
    /// Paid endpoints that train on prompts allowed.
    pub allow_training_paid: Option<bool>,
    /// Free endpoints that train on prompts allowed.
    pub allow_training_free: Option<bool>,
    /// Zero-data-retention endpoints only.
    pub zdr_only: Option<bool>,
    /// Only these providers (comma-separated slugs).
    pub allowed_providers: Option<String>,
    /// Never these providers (comma-separated slugs).
    pub ignored_providers: Option<String>,
    /// Log prompts and completions (encrypted).
    pub prompt_logging: Option<bool>,
    /// Data classification of every request.
    pub data_classification: Option<String>,
}

/// Comma-separated provider slugs, trimmed and lower-cased, blanks dropped.
pub fn slugs(list: &str) -> Vec<String> {
    list.split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

impl AccountSettings {
    /// Applies a change, refusing an unknown data classification (the known ones are the
    /// built-ins and the operator's).
    pub fn apply(
        &mut self,
        change: SettingsChange,
        known: &switchyard_core::classification::Classifications,
    ) -> Result<(), String> {
        if let Some(c) = change.data_classification {
            let c = c.trim().to_ascii_lowercase();
            if c.is_empty() {
                self.data_classification = None;
            } else if known.get(&c).is_none() {
                return Err(format!(
                    "data classification {c:?} is unknown: known ones are {}",
                    known.names().join(", ")
                ));
            } else {
                self.data_classification = Some(c);
            }
        }
        if let Some(v) = change.allow_training_paid {
            self.allow_training_paid = v;
        }
        if let Some(v) = change.allow_training_free {
            self.allow_training_free = v;
        }
        if let Some(v) = change.zdr_only {
            self.zdr_only = v;
        }
        if let Some(list) = change.allowed_providers {
            let list = slugs(&list);
            self.allowed_providers = (!list.is_empty()).then_some(list);
        }
        if let Some(list) = change.ignored_providers {
            self.ignored_providers = slugs(&list);
        }
        if let Some(v) = change.prompt_logging {
            self.prompt_logging = v;
        }
        Ok(())
    }
}

/// A short-lived cache of account settings.
#[derive(Debug)]
pub struct SettingsCache {
    entries: TtlCache<Arc<AccountSettings>>,
}

impl Default for SettingsCache {
    fn default() -> Self {
        SettingsCache {
            entries: TtlCache::new(CAPACITY, TTL),
        }
    }
}

impl SettingsCache {
    /// The account's settings, from the cache when fresh.
    pub async fn get(&self, store: &Store, account: &str) -> StoreResult<Arc<AccountSettings>> {
        self.entries
            .get_or_load(account, async {
                let doc = store.account_settings(account).await?;
                Ok(Arc::new(AccountSettings::from_json(&doc).unwrap_or_else(|e| {
                    tracing::error!(account, error = %e, "account settings are invalid; using the defaults");
                    AccountSettings::default()
                })))
            })
            .await
    }

    /// Forgets an account's cached settings (after a change made by this process).
    pub async fn invalidate(&self, account: &str) {
        self.entries.invalidate(account).await;
    }

    /// Forgets every account's settings (change notifications were interrupted).
    pub fn clear(&self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::classification::Classifications;

    #[test]
    fn changes_apply_or_name_the_unknown_classification() {
        let known = Classifications::with(Default::default());
        let mut s = AccountSettings::default();
        s.apply(
            SettingsChange {
                zdr_only: Some(true),
                allowed_providers: Some(" OpenAI, ,anthropic ".into()),
                ignored_providers: Some("x".into()),
                data_classification: Some("Confidential".into()),
                ..SettingsChange::default()
            },
            &known,
        )
        .expect("valid");
        assert!(s.zdr_only);
        assert_eq!(
            s.allowed_providers.as_deref(),
            Some(&["openai".to_owned(), "anthropic".to_owned()][..])
        );
        assert_eq!(s.ignored_providers, vec!["x".to_owned()]);
        assert_eq!(s.data_classification.as_deref(), Some("confidential"));
        let before = s.clone();
        let err = s
            .apply(
                SettingsChange {
                    data_classification: Some("secretish".into()),
                    zdr_only: Some(false),
                    ..SettingsChange::default()
                },
                &known,
            )
            .expect_err("unknown");
        assert!(err.contains("\"secretish\" is unknown"), "{err}");
        assert_eq!(s, before, "a refused change changes nothing");
        s.apply(
            SettingsChange {
                allowed_providers: Some(String::new()),
                data_classification: Some(String::new()),
                ..SettingsChange::default()
            },
            &known,
        )
        .expect("valid");
        assert_eq!(s.allowed_providers, None);
        assert_eq!(s.data_classification, None);
    }
}
