//! Presets on the request path: the preset a request names (`model: "@preset/slug"`,
//! `model: "m@preset/slug"` or `preset: "slug"`), read through a short cache and merged under
//! the canonical request before it is routed ([`switchyard_core::preset`] has the rules).
//!
//! A save through the presets API forgets the cached entry in this process; another gateway on
//! the same database sees the new version within [`TTL`].

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use switchyard_core::preset::{take_reference, Preset};
use switchyard_store::{PresetWithVersion, Store, StoreError, StoreResult};

use crate::cache::TtlCache;
use crate::error::GatewayError;
use crate::formats::Parsed;

/// How long a cached preset is used before it is read again.
pub const TTL: Duration = Duration::from_secs(2);

/// Most presets kept at once.
const CAPACITY: u64 = 10_000;

/// A preset's designated version, as requests apply it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedPreset {
    /// The preset's id (recorded with the generation).
    pub id: String,
    /// The slug.
    pub slug: String,
    /// The designated version's number.
    pub version: i64,
    /// `active` unless changed.
    pub status: String,
    /// What it sets.
    pub preset: Preset,
}

impl LoadedPreset {
    /// The designated version of a stored preset.
    pub fn from_row(row: &PresetWithVersion) -> StoreResult<LoadedPreset> {
        let (version, system_prompt, config) = match &row.version {
            Some(v) => {
                let config: Value = serde_json::from_str(&v.config)
                    .map_err(|e| StoreError::Corrupt(format!("preset config: {e}")))?;
                let Value::Object(config) = config else {
                    return Err(StoreError::Corrupt("preset config is not an object".into()));
                };
                (v.version, v.system_prompt.clone(), config)
            }
            None => (0, None, serde_json::Map::new()),
        };
        Ok(LoadedPreset {
            id: row.preset.id.clone(),
            slug: row.preset.slug.clone(),
            version,
            status: row.preset.status.clone(),
            preset: Preset {
                system_prompt,
                config,
            },
        })
    }
}

/// A short-lived cache of presets by account and slug (absent presets included).
#[derive(Debug)]
pub struct PresetCache {
    entries: TtlCache<Option<Arc<LoadedPreset>>>,
}

impl Default for PresetCache {
    fn default() -> Self {
        PresetCache {
            entries: TtlCache::new(CAPACITY, TTL),
        }
    }
}

fn cache_key(account: &str, slug: &str) -> String {
    // A slug has no newline (`valid_slug`), so the key is unambiguous.
    format!("{account}\n{slug}")
}

impl PresetCache {
    /// The account's preset `slug`, from the cache when fresh.
    pub async fn get(
        &self,
        store: &Store,
        account: &str,
        slug: &str,
    ) -> StoreResult<Option<Arc<LoadedPreset>>> {
        self.entries
            .get_or_load(&cache_key(account, slug), async {
                match store.preset(account, slug).await? {
                    None => Ok(None),
                    Some(row) => Ok(Some(Arc::new(LoadedPreset::from_row(&row)?))),
                }
            })
            .await
    }

    /// Forgets a preset (after this process saved a version of it).
    pub async fn invalidate(&self, account: &str, slug: &str) {
        self.entries.invalidate(&cache_key(account, slug)).await;
    }

    /// Forgets every preset (change notifications were interrupted).
    pub fn clear(&self) {
        self.entries.clear();
    }
}

/// Applies the preset the request names, if any, to the parsed request; returns the preset
/// applied. Presets serve chat, Messages and Responses requests; embeddings and legacy
/// completions naming one are refused.
pub async fn apply(
    state: &crate::state::AppState,
    account: &str,
    parsed: &mut Parsed,
) -> Result<Option<Arc<LoadedPreset>>, GatewayError> {
    if parsed.embeddings.is_some() || parsed.legacy.is_some() {
        let names_one = parsed.request.extra.contains_key("preset")
            || parsed
                .request
                .model
                .as_deref()
                .is_some_and(|m| m.contains(switchyard_core::preset::MODEL_PREFIX));
        return if names_one {
            Err(GatewayError::bad_request(
                "preset: presets apply to chat completions, messages and responses requests",
            ))
        } else {
            Ok(None)
        };
    }
    let slug = take_reference(&mut parsed.request).map_err(|e| GatewayError::bad_request(e.0))?;
    let Some(slug) = slug else {
        return Ok(None);
    };
    let loaded = state
        .presets
        .get(&state.store, account, &slug)
        .await?
        .ok_or_else(|| GatewayError::bad_request(format!("Preset {slug} not found")))?;
    if loaded.status != "active" {
        return Err(GatewayError::bad_request(format!(
            "Preset {slug} is {}",
            loaded.status
        )));
    }
    loaded
        .preset
        .apply(&mut parsed.request)
        .map_err(|e| GatewayError::bad_request(format!("Preset {slug}: {}", e.0)))?;
    Ok(Some(loaded))
}
