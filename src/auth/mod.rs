//! Credentials: where a key may arrive, the static admin key, and API
//! keys with rights (enforced per `/admin/api-key-config` and
//! `/admin/api-key-clients`).

pub mod access;
pub mod end_user;
pub mod ip_policy;
pub mod keys;
pub mod rights;
pub mod session;
pub mod store;

use crate::api::operations::OperationMeta;
use crate::catalog::api_keys::ApiKey;
use crate::http::ApiError;
use access::Access;
use http::HeaderMap;
use ip_policy::{Origin, TrustedProxies};
use rights::Right;
use std::net::SocketAddr;
use std::sync::Arc;
use store::{KeyError, KeyStore};

/// Header spellings that carry an API key (case-insensitive by `http`).
const KEY_HEADERS: [&str; 3] = ["x-athena-key", "apikey", "x-api-key"];

/// A key presented with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presented<'a> {
    pub key: &'a str,
    /// Only from `?api_key=`: never accepted as the static admin key
    /// (query strings end up in logs and browser history).
    pub from_query: bool,
}

/// The key presented with a request: `X-Athena-Key`, `apikey`, `x-api-key`
/// (`X-API-Key`) and `?api_key=` must agree when several are given (two
/// different keys are a 401, never one of them); `Authorization: Bearer`
/// counts only when none of those is present, since the SDK's chat and
/// auth profiles send an end-user bearer token beside `X-Athena-Key`.
pub fn presented_key<'a>(
    headers: &'a HeaderMap,
    query: &'a [(String, String)],
) -> Result<Option<Presented<'a>>, ApiError> {
    presented(headers, query, true)
}

/// `presented_key` without `Authorization: Bearer`, which the operation
/// reads as the end user's token (`access::Rule::end_user_bearer`).
pub fn presented_key_only<'a>(
    headers: &'a HeaderMap,
    query: &'a [(String, String)],
) -> Result<Option<Presented<'a>>, ApiError> {
    presented(headers, query, false)
}

fn presented<'a>(
    headers: &'a HeaderMap,
    query: &'a [(String, String)],
    bearer: bool,
) -> Result<Option<Presented<'a>>, ApiError> {
    let mut found: Option<Presented<'a>> = None;
    let offer = |found: &mut Option<Presented<'a>>,
                 key: &'a str,
                 from_query: bool|
     -> Result<(), ApiError> {
        let key = key.trim();
        if key.is_empty() {
            return Ok(());
        }
        match found {
            None => *found = Some(Presented { key, from_query }),
            Some(p) if constant_time_eq(p.key.as_bytes(), key.as_bytes()) => {
                // The same key from a header as well: not query-only.
                p.from_query &= from_query;
            }
            Some(_) => {
                return Err(ApiError::unauthorized(
                    "several different API keys were presented; send one key",
                ))
            }
        }
        Ok(())
    };
    for name in KEY_HEADERS {
        for v in headers.get_all(name) {
            match v.to_str() {
                Ok(v) => offer(&mut found, v, false)?,
                Err(_) => {
                    return Err(ApiError::unauthorized(format!(
                        "{name} is not visible ASCII"
                    )))
                }
            }
        }
    }
    for (k, v) in query {
        if k == "api_key" {
            offer(&mut found, v, true)?;
        }
    }
    if found.is_none() && bearer {
        if let Some(v) = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        {
            if let Some(token) = v
                .strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
            {
                offer(&mut found, token, false)?;
            }
        }
    }
    Ok(found)
}

/// Who is calling, as authorization established it: part of every
/// `RequestCx`, handed by the handler to the domain call.
#[derive(Debug, Clone)]
pub enum Actor {
    /// The static admin key.
    Admin,
    /// A verified API key under enforcement: its id, client binding and
    /// rights.
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

    /// The static admin key from a header (never from the query string).
    pub fn matches_presented(&self, presented: &Presented) -> bool {
        !presented.from_query && self.matches(presented.key)
    }

    pub fn require(&self, presented: Option<&Presented>) -> Result<(), ApiError> {
        if self.0.is_none() {
            return Err(ApiError::unauthorized(
                "the admin API is disabled: ATHENA_KEY_12 is not configured",
            ));
        }
        match presented {
            None => Err(ApiError::unauthorized("the static admin key is required")),
            Some(p) if p.from_query => Err(ApiError::unauthorized(
                "the admin key is not accepted in the query string; send it as X-Athena-Key",
            )),
            Some(p) if self.matches(p.key) => Ok(()),
            Some(_) => Err(ApiError::unauthorized("invalid admin key")),
        }
    }
}

pub struct Auth {
    admin: AdminKey,
    keys: Arc<KeyStore>,
    /// Peers whose forwarding headers name the client (`ATHENA_TRUSTED_PROXIES`).
    proxies: TrustedProxies,
    /// The admission limiter, run after authorization (`src/admission/`).
    admission: Option<Arc<crate::admission::Admission>>,
}

impl Auth {
    pub fn new(admin: AdminKey, keys: Arc<KeyStore>, proxies: TrustedProxies) -> Self {
        Auth {
            admin,
            keys,
            proxies,
            admission: None,
        }
    }

    pub fn with_admission(mut self, admission: Arc<crate::admission::Admission>) -> Self {
        self.admission = Some(admission);
        self
    }

    pub fn admission(&self) -> Option<&Arc<crate::admission::Admission>> {
        self.admission.as_ref()
    }

    /// Where a request comes from (its client address, resolved once per
    /// request from the socket peer and, behind a trusted proxy, its
    /// forwarding headers), for the IP policy.
    pub fn origin(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Origin {
        Origin::new(self.proxies.client_ip(peer, headers))
    }

    pub fn keys(&self) -> &Arc<KeyStore> {
        &self.keys
    }

    pub fn admin(&self) -> &AdminKey {
        &self.admin
    }

    /// The refusal that needs no body: an admin operation without the
    /// admin key is a 401 before a byte of the body is read (a caller
    /// without the key cannot make the server buffer an upload).
    pub fn refuse_before_body(
        &self,
        operation: crate::api::operations::Operation,
        headers: &HeaderMap,
        query: &[(String, String)],
    ) -> Result<(), ApiError> {
        if !matches!(access::rule(operation).access, Access::Admin) {
            return Ok(());
        }
        self.admin.require(presented_key(headers, query)?.as_ref())
    }

    /// The checks an operation needs (its row in `access::rule`): the admin
    /// key on the admin surface; on the data plane, when enforcement is on
    /// for the client, a valid key bound to that client (or to none) that
    /// holds the operation's right.
    pub async fn authorize(
        &self,
        meta: &OperationMeta,
        headers: &HeaderMap,
        query: &[(String, String)],
        origin: &Origin,
    ) -> Result<Actor, ApiError> {
        self.authorize_for(meta, headers, query, None, origin).await
    }

    /// `authorize` against `target`, the client the request will run on
    /// when it is named outside `X-Athena-Client` (a body `db_name`): the
    /// key check and the execution then name the same tenant.
    pub async fn authorize_for(
        &self,
        meta: &OperationMeta,
        headers: &HeaderMap,
        query: &[(String, String)],
        target: Option<&str>,
        origin: &Origin,
    ) -> Result<Actor, ApiError> {
        let rule = access::rule(meta.operation);
        let presented = match rule.end_user_bearer {
            true => presented_key_only(headers, query)?,
            false => presented_key(headers, query)?,
        };
        let right = match rule.access {
            Access::Admin => {
                self.admin.require(presented.as_ref())?;
                return Ok(Actor::Admin);
            }
            // Outside the API-key model: no key is looked at, so a probe
            // with a stale key still works. Public routes check the key in
            // their handler, against the route's client.
            Access::Open | Access::Public => return Ok(Actor::Open),
            Access::Keyed(right) => {
                let client = target.or_else(|| header_client(headers));
                return keyed_actor(&self.admin, &self.keys, right, client, presented, origin)
                    .await;
            }
            Access::Bound(right) => {
                let client = target.or_else(|| header_client(headers));
                return bound_actor(&self.admin, &self.keys, right, client, presented, origin)
                    .await;
            }
            Access::Right(right) => right,
        };
        if rule.direct_uri && direct_uri_with_credentials(headers) {
            // security.md §1 / the SDK's documented bypass: the URI's own
            // username and password are the credential, checked by that
            // database (`src/db/direct.rs`); the request is routed there and
            // nowhere else, so no API key is needed.
            return Ok(Actor::Open);
        }
        let client = target.or_else(|| header_client(headers));
        let actor = data_plane_actor(&self.admin, &self.keys, client, presented, origin).await?;
        // Routes that may name their client in the body (`db_name`) bind
        // the key to it in the handler (`RequestCx::target_client`, which
        // authorizes again against that client); here only the right.
        let checked = match client {
            None if rule.body_client => actor.require_right(right),
            _ => actor.require(right, client),
        };
        if let Err(refused) = checked {
            // A reader may run the SDK's lookup SELECTs as SQL; the handler
            // enforces that by checking the raw-SQL right again.
            let reader = rule.sql_lookups && actor.require(rights::FETCH, client).is_ok();
            if !reader {
                return Err(refused);
            }
        }
        Ok(actor)
    }
}

/// The client named by `X-Athena-Client`.
pub fn header_client(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("x-athena-client")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|c| !c.is_empty())
}

/// The data-plane key check, for a client known to the caller (routes that
/// resolve their client themselves, e.g. `/public/{route_key}/{op}`): a
/// presented key must be valid, active and unexpired (401) whether or not
/// enforcement is on, as PostgREST and Supabase treat a bad token; when
/// enforcement is on for `client`, a key (or the admin key) is required.
/// Rights and the key's client binding are then checked with
/// `Actor::require` (only when enforcement is on). The IP policy applies
/// to every request that presents an API key (`verify`).
pub async fn data_plane_actor(
    admin: &AdminKey,
    keys: &KeyStore,
    client: Option<&str>,
    presented: Option<Presented<'_>>,
    origin: &Origin,
) -> Result<Actor, ApiError> {
    let enforced = keys.enforced_for(client).await?;
    let Some(presented) = presented else {
        return match enforced {
            true => Err(ApiError::unauthorized(
                "an API key is required (X-Athena-Key)",
            )),
            false => Ok(Actor::Open),
        };
    };
    // The admin key opens the data plane too (operators, the SDK's CLI).
    if admin.matches_presented(&presented) {
        return Ok(Actor::Admin);
    }
    let key = verify(keys, presented.key, client, origin).await?;
    Ok(match enforced {
        true => Actor::Key(key),
        false => Actor::Open,
    })
}

/// An always-keyed operation's caller (`Access::Keyed`): the admin key, or
/// a valid API key holding `right` and bound to `client` or none, whether
/// or not enforcement is on.
async fn keyed_actor(
    admin: &AdminKey,
    keys: &KeyStore,
    right: Right,
    client: Option<&str>,
    presented: Option<Presented<'_>>,
    origin: &Origin,
) -> Result<Actor, ApiError> {
    let presented = presented.ok_or_else(|| {
        ApiError::unauthorized(format!(
            "an API key holding `{right}` (or the admin key) is required (X-Athena-Key)"
        ))
    })?;
    if admin.matches_presented(&presented) {
        return Ok(Actor::Admin);
    }
    let actor = Actor::Key(verify(keys, presented.key, client, origin).await?);
    actor.require(right, client)?;
    Ok(actor)
}

/// A management caller (`Access::Bound`, issue 16): an API key bound to
/// `client` and holding `right`, whether or not enforcement is on. No key
/// is a 401; the admin key, an unbound key, a key bound to another client
/// or lacking the right are 403; no `X-Athena-Client` is a 400.
async fn bound_actor(
    admin: &AdminKey,
    keys: &KeyStore,
    right: Right,
    client: Option<&str>,
    presented: Option<Presented<'_>>,
    origin: &Origin,
) -> Result<Actor, ApiError> {
    let presented = presented.ok_or_else(|| {
        ApiError::unauthorized(format!(
            "an API key bound to the X-Athena-Client client and holding `{right}` is required"
        ))
    })?;
    if admin.matches_presented(&presented) {
        return Err(ApiError::forbidden(format!(
            "management routes need an API key bound to the client and holding `{right}`; \
             the admin key is not bound to a client"
        )));
    }
    let client = client.ok_or_else(|| ApiError::missing_parameter("header", "X-Athena-Client"))?;
    let key = verify(keys, presented.key, Some(client), origin).await?;
    match key.client_name.as_deref() {
        None => {
            return Err(ApiError::forbidden(format!(
            "management routes need an API key bound to client `{client}`; this key is not bound"
        )))
        }
        Some(bound) if bound != client => {
            return Err(ApiError::forbidden(format!(
                "this API key is bound to client `{bound}`"
            )))
        }
        Some(_) => {}
    }
    let actor = Actor::Key(key);
    actor.require(right, Some(client))?;
    Ok(actor)
}

/// The one place an API key is accepted: valid, active, unexpired (401),
/// then the IP policy for a request for `client` (the key's own client
/// when the request names none) from `origin` (403,
/// `ip_policy::PolicyCache::check`). The admin key never gets here.
async fn verify(
    keys: &KeyStore,
    presented: &str,
    client: Option<&str>,
    origin: &Origin,
) -> Result<Arc<ApiKey>, ApiError> {
    let key = keys.verify(presented).await.map_err(|e| match e {
        KeyError::Invalid => ApiError::unauthorized("invalid API key"),
        KeyError::Inactive => ApiError::unauthorized("the API key is deactivated"),
        KeyError::Expired => ApiError::unauthorized("the API key has expired"),
        KeyError::Store(e) => e.into(),
    })?;
    let client = client.or(key.client_name.as_deref());
    keys.ip_policy().check(key.id, client, origin).await?;
    Ok(key)
}

/// Whether the preferred direct-URI header is a valid URI carrying a
/// username and a non-empty password; only operations whose row says they
/// route by it (`Rule::direct_uri`) ask. Anything less (no password, a
/// refused parameter) gets no bypass.
fn direct_uri_with_credentials(headers: &HeaderMap) -> bool {
    use crate::db::direct;
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

impl Actor {
    /// Checks a right (and the key's client binding) for this caller.
    pub fn require(&self, right: Right, client: Option<&str>) -> Result<(), ApiError> {
        let Actor::Key(key) = self else {
            return Ok(());
        };
        match (&key.client_name, client) {
            (Some(bound), None) => {
                return Err(ApiError::bad_request(format!(
                    "X-Athena-Client is required: this API key is bound to client `{bound}`"
                )))
            }
            (Some(bound), Some(client)) if client != bound => {
                return Err(ApiError::forbidden(format!(
                    "this API key is bound to client `{bound}`"
                )))
            }
            _ => {}
        }
        self.require_right(right)
    }

    /// Every one of `rights` (a planned write's, `Write::rights`), with
    /// the client binding.
    pub fn require_all(&self, rights: &[Right], client: Option<&str>) -> Result<(), ApiError> {
        rights
            .iter()
            .try_for_each(|right| self.require(*right, client))
    }

    /// The right alone, for a caller whose client binding is checked
    /// elsewhere.
    pub fn require_right(&self, right: Right) -> Result<(), ApiError> {
        let Actor::Key(key) = self else {
            return Ok(());
        };
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
            let p = presented_key(&h, &[]).unwrap().unwrap();
            assert_eq!((p.key, p.from_query), ("k", false), "{name}");
        }
        let q = vec![("api_key".to_string(), "k".to_string())];
        let empty = HeaderMap::new();
        let p = presented_key(&empty, &q).unwrap().unwrap();
        assert_eq!((p.key, p.from_query), ("k", true));
        assert_eq!(presented_key(&HeaderMap::new(), &[]).unwrap(), None);
    }

    #[test]
    fn several_keys_must_agree() {
        let mut h = HeaderMap::new();
        h.insert("x-athena-key", HeaderValue::from_static("k"));
        h.insert("apikey", HeaderValue::from_static("k"));
        let q = vec![("api_key".to_string(), "k".to_string())];
        // The same key twice (the SDK's CLI sends X-Athena-Key and apikey).
        let p = presented_key(&h, &q).unwrap().unwrap();
        assert_eq!((p.key, p.from_query), ("k", false));
        h.insert("x-api-key", HeaderValue::from_static("other"));
        assert_eq!(
            presented_key(&h, &[]).unwrap_err().code.status(),
            http::StatusCode::UNAUTHORIZED
        );
        let mut h = HeaderMap::new();
        h.insert("x-athena-key", HeaderValue::from_static("k"));
        let q = vec![("api_key".to_string(), "other".to_string())];
        assert!(presented_key(&h, &q).is_err());
        // Two values of one header.
        let mut h = HeaderMap::new();
        h.append("apikey", HeaderValue::from_static("a"));
        h.append("apikey", HeaderValue::from_static("b"));
        assert!(presented_key(&h, &[]).is_err());
        // A bearer beside a key header is the end user's token, not a key.
        let mut h = HeaderMap::new();
        h.insert("x-athena-key", HeaderValue::from_static("k"));
        h.insert("authorization", HeaderValue::from_static("Bearer user-jwt"));
        assert_eq!(presented_key(&h, &[]).unwrap().unwrap().key, "k");
        // Chat (`Rule::end_user_bearer`): a bearer alone is never a key.
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer user-jwt"));
        assert_eq!(presented_key(&h, &[]).unwrap().unwrap().key, "user-jwt");
        assert_eq!(presented_key_only(&h, &[]).unwrap(), None);
        h.insert("x-athena-key", HeaderValue::from_static("k"));
        assert_eq!(presented_key_only(&h, &[]).unwrap().unwrap().key, "k");
    }

    #[test]
    fn direct_uri_bypass_needs_full_credentials_on_a_routed_operation() {
        use crate::api::operations::Operation as O;
        let bypass_on =
            |op: O, h: &HeaderMap| access::rule(op).direct_uri && direct_uri_with_credentials(h);
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
            (O::PostGatewayFetch, with(&[("x-pg-uri", full)]), true),
            (O::PostGatewayQuery, with(&[("x-jdbc-url", jdbc)]), true),
            (
                O::PutGatewayInsert,
                with(&[("x-athena-jdbc-url", jdbc)]),
                true,
            ),
            (O::PostGatewayFetch, with(&[]), false),
            (
                O::PostGatewayFetch,
                with(&[("x-pg-uri", "postgres://u@db/x")]),
                false,
            ),
            (
                O::PostGatewayFetch,
                with(&[("x-pg-uri", "postgres://u:@db/x")]),
                false,
            ),
            (
                O::PostGatewayFetch,
                with(&[("x-pg-uri", "postgres://db/x")]),
                false,
            ),
            (
                O::PostGatewayFetch,
                with(&[("x-pg-uri", "postgres://u:p@db/x?passfile=/x")]),
                false,
            ),
            (
                O::PostGatewayFetch,
                with(&[("x-pg-uri", "postgres://u:p@%2Ftmp/x")]),
                false,
            ),
            // The preferred header decides, even when a later one is complete.
            (
                O::PostGatewayFetch,
                with(&[("x-pg-uri", "postgres://u@db/x"), ("x-jdbc-url", jdbc)]),
                false,
            ),
            // `/gateway/data` routes by the header like fetch.
            (O::PostGatewayData, with(&[("x-pg-uri", full)]), true),
            // `/query/sql` routes by the header like `/gateway/sql`.
            (O::PostQuerySql, with(&[("x-pg-uri", full)]), true),
            // Operations that do not route by the header get no bypass.
            (O::PostQueryCount, with(&[("x-pg-uri", full)]), false),
            (O::GetRestV1ByTable, with(&[("x-pg-uri", full)]), false),
        ] {
            assert_eq!(bypass_on(op, &headers), bypass, "{op:?} {headers:?}");
        }
    }

    #[test]
    fn admin_key_fails_closed() {
        let h = |key| Presented {
            key,
            from_query: false,
        };
        assert!(AdminKey::new(None).require(Some(&h("x"))).is_err());
        assert!(AdminKey::new(Some(String::new()))
            .require(Some(&h("")))
            .is_err());
        let admin = AdminKey::new(Some("secret".into()));
        assert!(admin.require(Some(&h("secret"))).is_ok());
        assert!(admin.require(Some(&h("secret2"))).is_err());
        assert!(admin.require(Some(&h("secre"))).is_err());
        assert!(admin.require(None).is_err());
        let query = Presented {
            key: "secret",
            from_query: true,
        };
        assert!(admin.require(Some(&query)).is_err());
        assert!(!admin.matches_presented(&query));
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
