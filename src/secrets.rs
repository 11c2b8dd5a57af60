//! Secrets at rest (storage credentials today; webhook and provider secrets
//! later): AES-256-GCM (crate `aes-gcm`) under `ATHENA_SECRET_KEY`, a fresh
//! random 96-bit nonce per value, and associated data naming what the value
//! belongs to (e.g. `s3_credentials:<id>:secret`), so a ciphertext copied
//! onto another row does not decrypt. Stored as `nonce || ciphertext+tag`.
//! Secrets are written, never returned by any route.

use crate::domain::DomainError;
use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Nonce};

const NONCE_LEN: usize = 12;

#[derive(Clone)]
pub struct Secrets {
    cipher: Aes256Gcm,
    /// HMAC-SHA256(key, "athena-derive"): the root of `derive`, so the
    /// sealing key itself is kept only inside the cipher.
    derive_root: [u8; 32],
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

impl Secrets {
    /// `ATHENA_SECRET_KEY`: 32 bytes as 64 hex digits or standard base64.
    pub fn from_key_text(text: &str) -> Result<Secrets, String> {
        let text = text.trim();
        let key = if text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|e| e.to_string())?
        } else {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| {
                    "ATHENA_SECRET_KEY must be 32 bytes as 64 hex digits or base64".to_string()
                })?
        };
        if key.len() != 32 {
            return Err(format!(
                "ATHENA_SECRET_KEY must be 32 bytes (got {}); generate one with `openssl rand -hex 32`",
                key.len()
            ));
        }
        let cipher = Aes256Gcm::new_from_slice(&key).map_err(|e| e.to_string())?;
        let derive_root = hmac_sha256(&key, b"athena-derive");
        Ok(Secrets {
            cipher,
            derive_root,
        })
    }

    /// A key for one `purpose` (e.g. `proxy-url` signatures), derived from
    /// `ATHENA_SECRET_KEY`: knowing it reveals neither the sealing key nor
    /// another purpose's key.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        hmac_sha256(&self.derive_root, purpose.as_bytes())
    }

    /// Encrypts `plain` for the row and field named by `context`.
    pub fn seal(&self, context: &str, plain: &str) -> Result<Vec<u8>, DomainError> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| DomainError::Internal("encrypting a secret failed".into()))?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts a value sealed for `context` (another key, another row or
    /// a tampered value fail).
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<String, DomainError> {
        if sealed.len() < NONCE_LEN + 16 {
            return Err(DomainError::Internal("a stored secret is truncated".into()));
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| {
                DomainError::Internal(
                    "a stored secret does not decrypt (ATHENA_SECRET_KEY changed, or the value was moved or altered)"
                        .into(),
                )
            })?;
        String::from_utf8(plain)
            .map_err(|_| DomainError::Internal("a stored secret is not UTF-8".into()))
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac =
        <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Secrets {
        Secrets::from_key_text(&"ab".repeat(32)).unwrap()
    }

    #[test]
    fn round_trip_with_fresh_nonces() {
        let s = key();
        let a = s.seal("row:1:secret", "hunter2").unwrap();
        let b = s.seal("row:1:secret", "hunter2").unwrap();
        assert_ne!(a, b, "a fresh nonce per value");
        assert!(!a.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(s.open("row:1:secret", &a).unwrap(), "hunter2");
    }

    #[test]
    fn another_row_another_key_or_a_flipped_bit_fail() {
        let s = key();
        let sealed = s.seal("row:1:secret", "hunter2").unwrap();
        assert!(s.open("row:2:secret", &sealed).is_err());
        let other = Secrets::from_key_text(&"cd".repeat(32)).unwrap();
        assert!(other.open("row:1:secret", &sealed).is_err());
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(s.open("row:1:secret", &bad).is_err());
        assert!(s.open("row:1:secret", &sealed[..10]).is_err());
    }

    #[test]
    fn key_formats() {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert!(Secrets::from_key_text(&b64).is_ok());
        assert!(Secrets::from_key_text("short").is_err());
        assert!(Secrets::from_key_text(&"ab".repeat(16)).is_err());
    }

    #[test]
    fn derived_keys_differ_by_purpose_and_key() {
        let s = key();
        assert_eq!(s.derive("proxy-url"), key().derive("proxy-url"));
        assert_ne!(s.derive("proxy-url"), s.derive("other"));
        let other = Secrets::from_key_text(&"cd".repeat(32)).unwrap();
        assert_ne!(s.derive("proxy-url"), other.derive("proxy-url"));
    }
}
