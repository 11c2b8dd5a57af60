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
        if direct_uri_with_credentials(meta.name, headers) {
            // security.md §1 / the SDK's documented bypass: the URI's own
            // username and password are the credential, checked by that
            // database (`src/db/direct.rs`); the request is routed there and
            // nowhere else, so no API key is needed.
            return Ok(Principal::Open);
        }
        let client = headers
            .get("x-athena-client")
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        let principal = data_plane_principal(&self.admin, &self.keys, client, presented).await?;
        if let Err(refused) = principal.require(right, client) {
            // The SDK sends plain lookups as SQL to `/gateway/query`; a
            // reader may run exactly those (`src/gateway/sdk_select.rs`),
            // which the handler enforces by checking the raw-SQL right again.
            let reader = meta.name == "post_gateway_query"
                && principal.require(rights::FETCH, client).is_ok();
            if !reader {
                return Err(refused);
            }
        }
        Ok(principal)
    }
}

/// The data-plane key check, for a client known to the caller (routes that
/// resolve their client themselves, e.g. `/public/{route_key}/{op}`): when
/// enforcement is on for `client`, a valid, active, unexpired key (or the
/// admin key) must be presented (401). Rights and the key's client binding
/// are then checked with `Principal::require`.
pub async fn data_plane_principal(
    admin: &AdminKey,
    keys: &KeyStore,
    client: Option<&str>,
    presented: Option<&str>,
) -> Result<Principal, ApiError> {
    if !keys.enforced_for(client).await? {
        return Ok(Principal::Open);
    }
    let presented =
        presented.ok_or_else(|| ApiError::unauthorized("an API key is required (X-Athena-Key)"))?;
    // The admin key opens the data plane too (operators, the SDK's CLI).
    if admin.matches(presented) {
        return Ok(Principal::Admin);
    }
    let key = keys.verify(presented).await.map_err(|e| match e {
        KeyError::Invalid => ApiError::unauthorized("invalid API key"),
        KeyError::Inactive => ApiError::unauthorized("the API key is deactivated"),
        KeyError::Expired => ApiError::unauthorized("the API key has expired"),
        KeyError::Store(e) => e.into(),
    })?;
    Ok(Principal::Key(key))
}

/// Whether the operation routes by direct PostgreSQL URI and the preferred
/// direct-URI header is a valid URI carrying a username and a non-empty
/// password. Anything less (no password, a refused parameter, an operation
/// that does not route by the header) gets no bypass.
fn direct_uri_with_credentials(operation: &str, headers: &HeaderMap) -> bool {
    use crate::db::direct;
    if !direct::ROUTED_OPERATIONS.contains(&operation) {
        return false;
    }
    let mut values = [None; 3];
    for (slot, name) in values.iter_mut().zip(direct::HEADERS) {
        match headers.get(name).map(|v| v.to_str()) {
            None => {}
            Some(Ok(v)) => *slot = Some(v),
            // Not visible ASCII: the handler refuses it; no bypass.
            Some(Err(_)) => return false,
        }
    }
    direct::pick(values).is_some_and(|(_, uri)| direct::carries_credentials(uri))
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
    fn direct_uri_bypass_needs_full_credentials_on_a_routed_operation() {
        let with = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        let full = "postgres://u:p@db/x";
        let jdbc = "jdbc:postgresql://db/x?user=u&password=p";
        for (op, headers, bypass) in [
            ("post_gateway_fetch", with(&[("x-pg-uri", full)]), true),
            ("post_gateway_query", with(&[("x-jdbc-url", jdbc)]), true),
            (
                "put_gateway_insert",
                with(&[("x-athena-jdbc-url", jdbc)]),
                true,
            ),
            ("post_gateway_fetch", with(&[]), false),
            (
                "post_gateway_fetch",
                with(&[("x-pg-uri", "postgres://u@db/x")]),
                false,
            ),
            (
                "post_gateway_fetch",
                with(&[("x-pg-uri", "postgres://u:@db/x")]),
                false,
            ),
            (
                "post_gateway_fetch",
                with(&[("x-pg-uri", "postgres://db/x")]),
                false,
            ),
            (
                "post_gateway_fetch",
                with(&[("x-pg-uri", "postgres://u:p@db/x?passfile=/x")]),
                false,
            ),
            (
                "post_gateway_fetch",
                with(&[("x-pg-uri", "postgres://u:p@%2Ftmp/x")]),
                false,
            ),
            // The preferred header decides, even when a later one is complete.
            (
                "post_gateway_fetch",
                with(&[("x-pg-uri", "postgres://u@db/x"), ("x-jdbc-url", jdbc)]),
                false,
            ),
            // `/gateway/data` routes by the header like fetch.
            ("post_gateway_data", with(&[("x-pg-uri", full)]), true),
            // `/query/sql` routes by the header like `/gateway/sql`.
            ("post_query_sql", with(&[("x-pg-uri", full)]), true),
            // Operations that do not route by the header get no bypass.
            ("post_query_count", with(&[("x-pg-uri", full)]), false),
            ("get_rest_v1_by_table", with(&[("x-pg-uri", full)]), false),
        ] {
            assert_eq!(
                direct_uri_with_credentials(op, &headers),
                bypass,
                "{op} {headers:?}"
            );
        }
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
