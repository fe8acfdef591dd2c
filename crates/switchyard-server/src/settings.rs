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
