//! Credentials: where a key may arrive, and the static admin key.

use crate::http::ApiError;
use http::HeaderMap;

/// Header spellings that carry an API key (case-insensitive by `http`).
const KEY_HEADERS: [&str; 3] = ["x-athena-key", "apikey", "x-api-key"];

/// The key presented with a request: `X-Athena-Key`, `apikey`, `x-api-key`
/// (`X-API-Key`), `Authorization: Bearer …`, or `?api_key=`.
pub fn presented_key<'a>(headers: &'a HeaderMap, query: &'a [(String, String)]) -> Option<&'a str> {
    for name in KEY_HEADERS {
        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
            let v = v.trim();
            if !v.is_empty() {
                return Some(v);
            }
        }
    }
    if let Some(v) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(token) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
        {
            let token = token.trim();
            if !token.is_empty() {
                return Some(token);
            }
        }
    }
    query
        .iter()
        .find(|(k, _)| k == "api_key")
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

pub struct Auth {
    admin_key: Option<String>,
}

impl Auth {
    /// `admin_key` is `ATHENA_KEY_12`; unset or empty refuses every admin call.
    pub fn new(admin_key: Option<String>) -> Self {
        Auth {
            admin_key: admin_key.filter(|k| !k.is_empty()),
        }
    }

    pub fn require_admin(&self, presented: Option<&str>) -> Result<(), ApiError> {
        let Some(expected) = &self.admin_key else {
            return Err(ApiError::unauthorized(
                "the admin API is disabled: ATHENA_KEY_12 is not configured",
            ));
        };
        match presented {
            None => Err(ApiError::unauthorized("the static admin key is required")),
            Some(key) if constant_time_eq(key.as_bytes(), expected.as_bytes()) => Ok(()),
            Some(_) => Err(ApiError::unauthorized("invalid admin key")),
        }
    }
}

/// Compares without an early exit on the first differing byte.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // The length is not secret; the contents are.
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xff);
        diff |= x ^ y;
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn key_spellings() {
        for (name, value) in [
            ("x-athena-key", "k"),
            ("apikey", "k"),
            ("x-api-key", "k"),
            ("X-API-Key", "k"),
            ("authorization", "Bearer k"),
        ] {
            let mut h = HeaderMap::new();
            h.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static(value),
            );
            assert_eq!(presented_key(&h, &[]), Some("k"), "{name}");
        }
        let q = vec![("api_key".to_string(), "k".to_string())];
        assert_eq!(presented_key(&HeaderMap::new(), &q), Some("k"));
        assert_eq!(presented_key(&HeaderMap::new(), &[]), None);
    }

    #[test]
    fn admin_key_fails_closed() {
        assert!(Auth::new(None).require_admin(Some("x")).is_err());
        assert!(Auth::new(Some(String::new()))
            .require_admin(Some(""))
            .is_err());
        let auth = Auth::new(Some("secret".into()));
        assert!(auth.require_admin(Some("secret")).is_ok());
        assert!(auth.require_admin(Some("secret2")).is_err());
        assert!(auth.require_admin(Some("secre")).is_err());
        assert!(auth.require_admin(None).is_err());
    }

    #[test]
    fn constant_time_eq_matches_eq() {
        for (a, b) in [("", ""), ("a", "a"), ("a", "b"), ("ab", "a"), ("", "a")] {
            assert_eq!(
                constant_time_eq(a.as_bytes(), b.as_bytes()),
                a == b,
                "{a:?} {b:?}"
            );
        }
    }
}
