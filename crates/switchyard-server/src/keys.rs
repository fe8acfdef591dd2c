//! Creating and changing API keys: the one service behind both the keys API and the CLI, so a
//! key made either way passes the same checks.

use switchyard_core::keys::{hash_key, key_from_bytes, label};
use switchyard_core::money::Money;
use switchyard_store::{KeyRecord, KeyUpdate, LimitReset, NewKey, Store, StoreError};

use crate::error::ApiError;

/// Parameters of a new key.
#[derive(Debug, Clone, Default)]
pub struct KeySpec {
    /// Name (required, not blank).
    pub name: String,
    /// Spending limit in USD (not negative).
    pub limit: Option<Money>,
    /// Window the limit applies to.
    pub limit_reset: Option<LimitReset>,
    /// BYOK spend counts against the limit.
    pub include_byok_in_limit: bool,
    /// Management key (management APIs only, no inference).
    pub management: bool,
    /// Expiry (Unix ms, in the future).
    pub expires_at: Option<i64>,
    /// Creator.
    pub creator_user_id: Option<String>,
}

/// Why a key could not be created or changed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A parameter is not acceptable: which (its name in the API, `name`, `limit`,
    /// `expires_at`), and why.
    #[error("{message}")]
    Invalid {
        /// The parameter.
        field: &'static str,
        /// Why, naming the parameter.
        message: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Invalid { message, .. } => ApiError::bad_request(message),
            KeyError::Store(e) => ApiError::from(e),
        }
    }
}

fn check_name(name: &str) -> Result<(), KeyError> {
    if name.trim().is_empty() {
        Err(KeyError::Invalid {
            field: "name",
            message: "name is required and must be a non-empty string".to_owned(),
        })
    } else {
        Ok(())
    }
}

fn check_limit(limit: Option<Money>) -> Result<(), KeyError> {
    if limit.is_some_and(|l| l.picos() < 0) {
        Err(KeyError::Invalid {
            field: "limit",
            message: "limit must not be negative".to_owned(),
        })
    } else {
        Ok(())
    }
}

/// Refuses an expiry that is not in the future. The keys API applies it to what clients send;
/// an operator may expire a key at once (or create one already expired, to test a client).
pub fn check_future_expiry(expires_at: Option<i64>, now_ms: i64) -> Result<(), KeyError> {
    if expires_at.is_some_and(|t| t <= now_ms) {
        Err(KeyError::Invalid {
            field: "expires_at",
            message: "expires_at must be in the future".to_owned(),
        })
    } else {
        Ok(())
    }
}

/// Checks a new key's parameters: a name that is not blank, a limit that is not negative.
pub fn validate(spec: &KeySpec) -> Result<(), KeyError> {
    check_name(&spec.name)?;
    check_limit(spec.limit)
}

/// Checks a change to a key, as [`validate`] checks a new one.
pub fn validate_update(update: &KeyUpdate) -> Result<(), KeyError> {
    if let Some(name) = &update.name {
        check_name(name)?;
    }
    if let Some(limit) = update.limit {
        check_limit(limit)?;
    }
    Ok(())
}

/// Creates a key of the account from 32 random bytes, after [`validate`]. Returns the key's
/// plaintext (shown once, never stored) and its record.
pub async fn create(
    store: &Store,
    account_id: &str,
    spec: &KeySpec,
    now_ms: i64,
) -> Result<(String, KeyRecord), KeyError> {
    validate(spec)?;
    let bytes: [u8; 32] = rand::random();
    let key = key_from_bytes(&bytes);
    let record = store
        .create_key(
            &NewKey {
                hash: hash_key(&key),
                label: label(&key),
                account_id: account_id.to_owned(),
                name: spec.name.clone(),
                is_management: spec.management,
                limit: spec.limit,
                limit_reset: spec.limit_reset,
                include_byok_in_limit: spec.include_byok_in_limit,
                expires_at: spec.expires_at,
                creator_user_id: spec.creator_user_id.clone(),
            },
            now_ms,
        )
        .await?;
    Ok((key, record))
}

/// Changes a key, after [`validate_update`]; `None` when no key has this hash.
pub async fn update(
    store: &Store,
    hash: &str,
    update: &KeyUpdate,
    now_ms: i64,
) -> Result<Option<KeyRecord>, KeyError> {
    validate_update(update)?;
    Ok(store.update_key(hash, update, now_ms).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_table() {
        let now = 1_000;
        let base = KeySpec {
            name: "ci".into(),
            ..KeySpec::default()
        };
        let cases: [(KeySpec, Option<&str>); 6] = [
            (base.clone(), None),
            (
                KeySpec {
                    name: "  ".into(),
                    ..base.clone()
                },
                Some("name"),
            ),
            (
                KeySpec {
                    limit: Some(Money::from_picos(-1)),
                    ..base.clone()
                },
                Some("limit"),
            ),
            (
                KeySpec {
                    limit: Some(Money::ZERO),
                    ..base.clone()
                },
                None,
            ),
            (
                KeySpec {
                    expires_at: Some(now),
                    ..base.clone()
                },
                Some("expires_at"),
            ),
            (
                KeySpec {
                    expires_at: Some(now + 1),
                    ..base.clone()
                },
                None,
            ),
        ];
        for (spec, needle) in cases {
            let result = validate(&spec).and_then(|()| check_future_expiry(spec.expires_at, now));
            match (result, needle) {
                (Ok(()), None) => {}
                (Err(e), Some(needle)) => assert!(e.to_string().contains(needle), "{spec:?}: {e}"),
                (result, _) => panic!("{spec:?}: {result:?}"),
            }
        }
        let blank = KeyUpdate {
            name: Some(String::new()),
            ..KeyUpdate::default()
        };
        assert!(validate_update(&blank).is_err());
        assert!(validate_update(&KeyUpdate::default()).is_ok());
    }
}
