//! API keys: `sk-or-v1-` and 64 hex characters, stored only as their SHA-256.

use sha2::{Digest, Sha256};

/// Prefix of every key.
pub const KEY_PREFIX: &str = "sk-or-v1-";

/// Builds a key from 32 random bytes.
pub fn key_from_bytes(bytes: &[u8; 32]) -> String {
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

/// Whether a string has the shape of a key.
pub fn is_well_formed(key: &str) -> bool {
    key.strip_prefix(KEY_PREFIX).is_some_and(|rest| {
        rest.len() == 64
            && rest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Lowercase hex SHA-256 of the key: its `hash`.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The masked label: `sk-or-v1-0e6...1c96`.
pub fn label(key: &str) -> String {
    let rest = key.strip_prefix(KEY_PREFIX).unwrap_or(key);
    let head: String = rest.chars().take(3).collect();
    let tail: String = rest
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{KEY_PREFIX}{head}...{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_hash_and_label() {
        let key = key_from_bytes(&[0xab; 32]);
        assert!(is_well_formed(&key));
        assert!(!is_well_formed("sk-or-v1-abc"));
        assert!(!is_well_formed(&key.to_uppercase()));
        assert_eq!(hash_key(&key).len(), 64);
        assert_eq!(label(&key), "sk-or-v1-aba...abab");
        assert_ne!(hash_key(&key), hash_key(&key_from_bytes(&[0xac; 32])));
    }
}
