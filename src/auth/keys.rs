//! The API key format `ath_{public_id}.{secret}` and the keyed hash stored
//! in place of the secret.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const PREFIX: &str = "ath_";
const PUBLIC_LEN: usize = 16;
const SECRET_BYTES: usize = 24;

/// The two halves of a presented key.
#[derive(Debug, PartialEq, Eq)]
pub struct Parts<'a> {
    pub public_id: &'a str,
    pub secret: &'a str,
}

pub fn parse(key: &str) -> Option<Parts<'_>> {
    let rest = key.strip_prefix(PREFIX)?;
    let (public_id, secret) = rest.split_once('.')?;
    let public_ok = public_id.len() == PUBLIC_LEN
        && public_id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let secret_ok = (8..=128).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    (public_ok && secret_ok).then_some(Parts { public_id, secret })
}

/// A new key: (full key shown once, public id, secret).
pub fn generate() -> Result<(String, String, String), getrandom::Error> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut public = [0u8; PUBLIC_LEN];
    getrandom::fill(&mut public)?;
    // 36 does not divide 256: the slight bias is irrelevant for an identifier.
    let public_id: String = public
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    let mut secret = [0u8; SECRET_BYTES];
    getrandom::fill(&mut secret)?;
    let secret = hex::encode(secret);
    Ok((format!("{PREFIX}{public_id}.{secret}"), public_id, secret))
}

/// HMAC-SHA256 of the secret under the server's pepper: a database leak
/// alone does not let anyone check guesses offline.
pub fn hash(pepper: &[u8], secret: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(pepper).expect("HMAC accepts any key length");
    mac.update(secret.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_hash_stably() {
        let (full, public_id, secret) = generate().unwrap();
        let parts = parse(&full).unwrap();
        assert_eq!(
            (parts.public_id, parts.secret),
            (public_id.as_str(), secret.as_str())
        );
        assert_eq!(hash(b"pepper", &secret), hash(b"pepper", &secret));
        assert_ne!(hash(b"pepper", &secret), hash(b"other", &secret));
        let (other, _, _) = generate().unwrap();
        assert_ne!(full, other);
    }

    #[test]
    fn malformed_keys_are_refused() {
        for bad in [
            "",
            "ath_",
            "abcd1234efgh5678.secretsecretsecret",
            "ath_ABCD1234EFGH5678.secretsecretsecret",
            "ath_abcd1234efgh567.secretsecretsecret",
            "ath_abcd1234efgh5678.short",
            "ath_abcd1234efgh5678.secret with spaces!",
            "ath_abcd1234efgh5678secretsecretsecret",
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
        assert!(parse("ath_abcd1234efgh5678.secretfragment").is_some());
    }
}
