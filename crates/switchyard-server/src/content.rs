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

/// Seals the reasoning a Responses answer hands back as `encrypted_content`, so that the next
/// turn can return it to the provider (thinking signatures included) while no client can read
/// it: AES-256-GCM, bound to its purpose, as `base64(nonce || ciphertext)`.
pub struct ReasoningSealer {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for ReasoningSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReasoningSealer(..)")
    }
}

/// What sealed reasoning is bound to: a blob sealed for something else does not open.
const REASONING_AAD: &[u8] = b"switchyard reasoning v1";

impl ReasoningSealer {
    /// A sealer keyed by SHA-256 of `secret`; with none, by a random key of this process (sealed
    /// reasoning then does not survive a restart or reach another replica).
    pub fn new(secret: Option<&str>) -> ReasoningSealer {
        let key = match secret {
            Some(s) => Sha256::new_with_prefix(b"reasoning:")
                .chain_update(s.as_bytes())
                .finalize(),
            None => {
                let mut random = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut random);
                Sha256::digest(random)
            }
        };
        ReasoningSealer {
            cipher: Aes256Gcm::new(&key),
        }
    }
}

impl switchyard_formats::responses::Sealer for ReasoningSealer {
    fn seal(&self, plain: &[u8]) -> String {
        use base64::Engine as _;
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: REASONING_AAD,
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        base64::engine::general_purpose::STANDARD.encode(out)
    }

    fn open(&self, sealed: &str) -> Option<Vec<u8>> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed.trim())
            .ok()?;
        if bytes.len() < 12 {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: REASONING_AAD,
                },
            )
            .ok()
    }
}

#[cfg(test)]
mod sealer_tests {
    use super::*;
    use switchyard_formats::responses::Sealer;

    #[test]
    fn sealed_reasoning_opens_only_with_its_key_and_hides_the_text() {
        let a = ReasoningSealer::new(Some("k1"));
        let b = ReasoningSealer::new(Some("k2"));
        let plain = br#"[{"type":"reasoning.text","text":"secret thought","signature":"sig"}]"#;
        let sealed = a.seal(plain);
        assert!(!sealed.contains("secret"));
        assert_eq!(a.open(&sealed).as_deref(), Some(&plain[..]));
        assert_eq!(b.open(&sealed), None);
        assert_eq!(a.open("not base64!"), None);
        assert_eq!(a.open(""), None);
        let mut tampered = sealed.into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(a.open(&String::from_utf8(tampered).expect("ascii")), None);
    }
}
