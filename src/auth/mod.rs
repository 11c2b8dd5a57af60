//! Credentials: where a key may arrive, the static admin key, and API
//! keys with rights (enforced per `/admin/api-key-config` and
//! `/admin/api-key-clients`).

pub mod keys;
pub mod rights;
pub mod store;

use crate::api::operations::OperationMeta;
use crate::catalog::api_keys::ApiKey;
use crate::http::ApiError;
use http::HeaderMap;
use std::sync::Arc;
use store::{KeyError, KeyStore};

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

/// Who is calling, once the operation's credentials were checked.
#[derive(Debug, Clone)]
pub enum Principal {
    /// The static admin key.
    Admin,
    /// A verified API key.
    Key(Arc<ApiKey>),
    /// No key needed: enforcement is off for this client, or the operation
    /// is outside the API-key model.
    Open,
}

/// The static admin key (`ATHENA_KEY_12`); unset or empty refuses every
/// admin call.
pub struct AdminKey(Option<String>);

impl AdminKey {
    pub fn new(key: Option<String>) -> Self {
        AdminKey(key.filter(|k| !k.is_empty()))
    }

    pub fn matches(&self, presented: &str) -> bool {
        self.0
            .as_deref()
            .is_some_and(|k| constant_time_eq(k.as_bytes(), presented.as_bytes()))
    }

    pub fn require(&self, presented: Option<&str>) -> Result<(), ApiError> {
        if self.0.is_none() {
            return Err(ApiError::unauthorized(
                "the admin API is disabled: ATHENA_KEY_12 is not configured",
            ));
        }
        match presented {
            None => Err(ApiError::unauthorized("the static admin key is required")),
            Some(key) if self.matches(key) => Ok(()),
            Some(_) => Err(ApiError::unauthorized("invalid admin key")),
        }
    }
}

pub struct Auth {
    admin: AdminKey,
    keys: Arc<KeyStore>,
}

impl Auth {
    pub fn new(admin: AdminKey, keys: Arc<KeyStore>) -> Self {
        Auth { admin, keys }
    }

    pub fn keys(&self) -> &Arc<KeyStore> {
        &self.keys
    }

    /// The checks an operation needs: the admin key on the admin surface;
    /// on the data plane, when enforcement is on for the client, a valid key
    /// bound to that client (or to none) that holds the operation's right.
    pub async fn authorize(
        &self,
        meta: &OperationMeta,
        headers: &HeaderMap,
        query: &[(String, String)],
    ) -> Result<Principal, ApiError> {
        let presented = presented_key(headers, query);
        if meta.admin {
            self.admin.require(presented)?;
            return Ok(Principal::Admin);
        }
        let Some(right) = rights::for_operation(meta.name) else {
            return Ok(Principal::Open);
        };
        let client = headers
            .get("x-athena-client")
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        if !self.keys.enforced_for(client).await? {
            return Ok(Principal::Open);
        }
        let presented = presented
            .ok_or_else(|| ApiError::unauthorized("an API key is required (X-Athena-Key)"))?;
        // The admin key opens the data plane too (operators, the SDK's CLI).
        if self.admin.matches(presented) {
            return Ok(Principal::Admin);
        }
        let key = self.keys.verify(presented).await.map_err(|e| match e {
            KeyError::Invalid => ApiError::unauthorized("invalid API key"),
            KeyError::Inactive => ApiError::unauthorized("the API key is deactivated"),
            KeyError::Expired => ApiError::unauthorized("the API key has expired"),
            KeyError::Store(e) => e.into(),
        })?;
        let principal = Principal::Key(key);
        principal.require(right, client)?;
        Ok(principal)
    }
}

impl Principal {
    /// Checks a right (and the key's client binding) for this caller.
    pub fn require(&self, right: &str, client: Option<&str>) -> Result<(), ApiError> {
        let Principal::Key(key) = self else {
            return Ok(());
        };
        if let Some(bound) = &key.client_name {
            if client != Some(bound.as_str()) {
                return Err(ApiError::forbidden(format!(
                    "this API key is bound to client `{bound}`"
                )));
            }
        }
        if !rights::allows(&key.rights, right) {
            return Err(ApiError::forbidden(format!(
                "this API key lacks the right `{right}`"
            )));
        }
        Ok(())
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
        assert!(AdminKey::new(None).require(Some("x")).is_err());
        assert!(AdminKey::new(Some(String::new()))
            .require(Some(""))
            .is_err());
        let admin = AdminKey::new(Some("secret".into()));
        assert!(admin.require(Some("secret")).is_ok());
        assert!(admin.require(Some("secret2")).is_err());
        assert!(admin.require(Some("secre")).is_err());
        assert!(admin.require(None).is_err());
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
