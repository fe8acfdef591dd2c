//! Prompt logging at rest: AES-256-GCM with a key from the environment, bound to the generation
//! id so that a ciphertext moved to another row does not decrypt.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Encrypts and decrypts logged prompts and completions.
#[derive(Clone)]
pub struct ContentCipher {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for ContentCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContentCipher(..)")
    }
}

impl ContentCipher {
    /// A cipher keyed by SHA-256 of the configured secret (any length).
    pub fn new(secret: &str) -> ContentCipher {
        let key = Sha256::digest(secret.as_bytes());
        ContentCipher {
            cipher: Aes256Gcm::new(&key),
        }
    }

    /// `(nonce, ciphertext)`, hex-encoded.
    pub fn encrypt(&self, generation_id: &str, plaintext: &[u8]) -> Option<(String, String)> {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: generation_id.as_bytes(),
                },
            )
            .ok()?;
        Some((hex::encode(nonce), hex::encode(sealed)))
    }

    /// The plaintext, or `None` when the key, the id or the bytes do not match.
    pub fn decrypt(&self, generation_id: &str, nonce: &str, ciphertext: &str) -> Option<Vec<u8>> {
        let nonce = hex::decode(nonce).ok()?;
        if nonce.len() != 12 {
            return None;
        }
        let sealed = hex::decode(ciphertext).ok()?;
        self.cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &sealed,
                    aad: generation_id.as_bytes(),
                },
            )
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let c = ContentCipher::new("secret");
        let (nonce, sealed) = c.encrypt("gen-1", b"hello prompt").expect("encrypt");
        assert!(!sealed.contains(&hex::encode(b"hello")));
        assert_eq!(
            c.decrypt("gen-1", &nonce, &sealed).as_deref(),
            Some(&b"hello prompt"[..])
        );
        assert_eq!(
            c.decrypt("gen-2", &nonce, &sealed),
            None,
            "bound to its generation"
        );
        assert_eq!(
            ContentCipher::new("other").decrypt("gen-1", &nonce, &sealed),
            None
        );
        assert_eq!(c.decrypt("gen-1", "zz", &sealed), None);
    }
}
