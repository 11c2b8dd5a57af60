//! Host routing (issue 13): with `ATHENA_WILDCARD_HOST_PATTERN=*.v3.example.test`,
//! a request for `Host: acme.v3.example.test` is a request on the tenant
//! host `acme`. One step of the server (`src/http/server.rs`), after the
//! route match and before the body is read:
//!
//! 1. **Service families.** Once the host has any binding in
//!    `athena_tenant_service_routes`, a family (`gateway`, `rest`,
//!    `storage`, `chat`: `ServiceKey::of_route`) is served there only if it
//!    has an active binding (else 404), whatever the headers.
//! 2. **The client.** Without `X-Athena-Client` and without a direct-URI
//!    header, a data-plane operation runs on the client of the host's
//!    active public route (`athena_public_routes`, route key = label), and
//!    only when the route allows it: the operation's right names the op
//!    (`fetch` for fetch/data/REST GET/count, `insert`, `update`, `delete`,
//!    `query` for raw SQL) — the same ops as `/public/{route_key}/{op}`.
//!    The client is set as `X-Athena-Client`, so everything after (keys,
//!    rights, the client's state) is checked exactly as for a caller naming
//!    it. Unknown label → 404; inactive route, an op it does not allow, or a
//!    data-plane operation of no op (RPC, storage, deferred reads) → 403.
//!    Never inferred from client names, only from routes; operations with
//!    no right (health, admin, public routes) are left alone.
//!
//! Lookups are cached for at most 2 s and dropped on every replica as soon
//! as the catalog notifies a route change (`src/db/notify.rs`).

use crate::api::operations::Operation;
use crate::auth::{access, rights::Right};
use crate::catalog::public_routes::{self, Op, PublicRoute, RouteCache};
use crate::catalog::service_routes::{self, ServiceKey, ServiceRoute};
use crate::db::Pool;
use crate::domain::DomainError;
use crate::http::{ApiError, Code};
use crate::outbound::OutboundPolicy;
use crate::ttl::TtlCache;
use http::{HeaderMap, HeaderValue, Uri};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// `ATHENA_WILDCARD_HOST_PATTERN`: `*.` then a host name suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WildcardPattern {
    /// `.v3.example.test` (lowercase, with the leading dot).
    suffix: String,
}

impl WildcardPattern {
    pub fn parse(raw: &str) -> Result<WildcardPattern, String> {
        let bad = || format!("{raw:?} is not a wildcard host pattern like `*.tenants.example.com`");
        let rest = raw.trim().strip_prefix("*.").ok_or_else(bad)?;
        let rest = rest.trim_end_matches('.').to_ascii_lowercase();
        let ok = !rest.is_empty()
            && rest.len() <= 240
            && rest.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !ok {
            return Err(bad());
        }
        Ok(WildcardPattern {
            suffix: format!(".{rest}"),
        })
    }

    /// The pattern as configured (`*.v3.example.test`).
    pub fn as_string(&self) -> String {
        format!("*{}", self.suffix)
    }

    /// The full host of a tenant label.
    pub fn host_for(&self, label: &str) -> String {
        format!("{label}{}", self.suffix)
    }

    /// The tenant label of a request host (`Host` value: port ignored, any
    /// case, a trailing root dot allowed): exactly one label before the
    /// suffix (at most 63 characters), or `None` when the host is not a
    /// tenant host.
    pub fn label(&self, host: &str) -> Option<String> {
        if host.starts_with('[') {
            return None; // an IPv6 literal
        }
        let name = host.split(':').next()?.trim_end_matches('.');
        let name = name.to_ascii_lowercase();
        let label = name.strip_suffix(self.suffix.as_str())?;
        // A DNS label is at most 63 octets: anything longer is no tenant host.
        (!label.is_empty() && label.len() <= 63 && !label.contains('.')).then(|| label.to_string())
    }
}

/// How long a replica trusts a routing lookup when a notification was
/// missed.
const TTL: Duration = Duration::from_secs(2);

/// The routing state shared by the admin routes, host routing and the
/// change feed.
pub struct HostRouting {
    pattern: Option<WildcardPattern>,
    catalog: Pool,
    /// Public routes by key (shared with `/public/{route_key}/{op}`).
    pub public: Arc<RouteCache>,
    /// Service bindings by route key.
    services: TtlCache<String, Arc<Vec<ServiceRoute>>>,
    /// Checks stored upstream URLs (`OutboundPolicy::check_stored_url`).
    pub outbound: Arc<OutboundPolicy>,
}

impl HostRouting {
    pub fn new(
        pattern: Option<WildcardPattern>,
        catalog: Pool,
        public: Arc<RouteCache>,
        outbound: Arc<OutboundPolicy>,
    ) -> HostRouting {
        HostRouting {
            pattern,
            catalog,
            public,
            services: TtlCache::new(TTL, 4096),
            outbound,
        }
    }

    pub fn pattern(&self) -> Option<&WildcardPattern> {
        self.pattern.as_ref()
    }

    /// A route changed somewhere (the change feed, or it was interrupted):
    /// drop every cached lookup.
    pub fn invalidate(&self) {
        self.public.clear();
        self.services.clear();
    }

    /// A route changed through this replica.
    pub fn forget(&self, route_key: &str) {
        self.public.forget(route_key);
        self.services.remove(route_key);
    }

    /// The service bindings of a tenant host, cached.
    pub async fn services(&self, label: &str) -> Result<Arc<Vec<ServiceRoute>>, DomainError> {
        if public_routes::check_route_key(label).is_err() {
            return Ok(Arc::default());
        }
        self.services
            .get_or_load(label.to_string(), async {
                Ok(Arc::new(
                    service_routes::for_route(&self.catalog, label).await?,
                ))
            })
            .await
    }

    /// The server's step: refuses what the tenant host does not serve and
    /// names the host's client in `X-Athena-Client` where it applies (see
    /// the module header). A request on no tenant host is left alone.
    pub async fn apply<B>(
        &self,
        operation: Operation,
        template: &str,
        request: &mut http::Request<B>,
    ) -> Result<(), ApiError> {
        let Some(pattern) = &self.pattern else {
            return Ok(());
        };
        let host = request_host(request.uri(), request.headers());
        let Some(label) = host.and_then(|h| pattern.label(h)) else {
            return Ok(());
        };
        let headers = request.headers_mut();
        if let Some(family) = ServiceKey::of_route(template) {
            let bindings = self.services(&label).await?;
            let served = bindings
                .iter()
                .any(|b| b.is_active && b.service_key == family.as_str());
            if !bindings.is_empty() && !served {
                return Err(ApiError::not_found(
                    Code::NotFound,
                    format!(
                        "the `{}` service is not served on tenant host `{label}` (no active binding in /admin/service-routes)",
                        family.as_str()
                    ),
                ));
            }
        }
        if crate::auth::header_client(headers).is_some()
            || crate::db::direct::HEADERS
                .iter()
                .any(|h| headers.contains_key(*h))
        {
            return Ok(());
        }
        let Some(right) = access::rule(operation).right() else {
            return Ok(());
        };
        let route = self.route(&label).await?;
        // Issue 14: the route's response shape (`src/http/rest_shape.rs`),
        // its refusals included; a header the caller sent wins.
        if route.as_deref().is_some_and(PublicRoute::postgrest_shape) {
            let shape = crate::http::rest_shape::HEADER;
            if !headers.contains_key(shape) {
                let v = HeaderValue::from_static(crate::http::rest_shape::POSTGREST);
                headers.insert(shape, v);
            }
        }
        let client = choose(&label, route.as_deref(), op_of(right))?;
        let value = HeaderValue::from_str(client)
            .map_err(|_| DomainError::Internal(format!("client name of route `{label}`")))?;
        headers.insert("x-athena-client", value);
        Ok(())
    }

    async fn route(&self, label: &str) -> Result<Option<Arc<PublicRoute>>, DomainError> {
        self.public.get(&self.catalog, label).await
    }

    /// `/debug/gateway`'s routing part: the pattern and, per client, its
    /// public routes (with their host) and service bindings.
    pub async fn report(&self) -> Result<Value, DomainError> {
        let routes = public_routes::list(&self.catalog).await?;
        let services = service_routes::list(&self.catalog, &Default::default()).await?;
        let mut clients: BTreeMap<String, (Vec<Value>, Vec<Value>)> = BTreeMap::new();
        for r in &routes {
            clients
                .entry(r.client_name.clone())
                .or_default()
                .0
                .push(json!({
                    "route_key": r.route_key,
                    "host": self.pattern.as_ref().map(|p| p.host_for(&r.route_key)),
                    "allowed_ops": r.allowed_ops,
                    "is_active": r.is_active,
                }));
        }
        for s in &services {
            clients
                .entry(s.client_name.clone())
                .or_default()
                .1
                .push(json!({
                    "route_key": s.route_key,
                    "service_key": s.service_key,
                    "is_active": s.is_active,
                    "upstream_url": s.upstream_url,
                }));
        }
        let clients: Vec<Value> = clients
            .into_iter()
            .map(|(client, (public, services))| {
                json!({"client_name": client, "public_routes": public, "service_routes": services})
            })
            .collect();
        Ok(json!({
            "wildcard_host_pattern": self.pattern.as_ref().map(WildcardPattern::as_string),
            "public_routes": routes.len(),
            "service_routes": services.len(),
            "clients": clients,
        }))
    }
}

/// The host a request was sent to: the URI's authority (HTTP/2, absolute
/// form), else the `Host` header.
fn request_host<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Option<&'a str> {
    uri.authority()
        .map(|a| a.as_str())
        .or_else(|| headers.get(http::header::HOST)?.to_str().ok())
        .map(|h| h.rsplit('@').next().unwrap_or(h))
}

/// The public-route op a data-plane right stands for.
fn op_of(right: Right) -> Option<Op> {
    match right {
        Right::GatewayFetch => Some(Op::Fetch),
        Right::GatewayInsert => Some(Op::Insert),
        Right::GatewayUpdate => Some(Op::Update),
        Right::GatewayDelete => Some(Op::Delete),
        Right::GatewayQuery => Some(Op::Query),
        _ => None,
    }
}

/// The client a tenant host's route gives this operation, or why not.
fn choose<'a>(
    label: &str,
    route: Option<&'a PublicRoute>,
    op: Option<Op>,
) -> Result<&'a str, ApiError> {
    let route = route.ok_or_else(|| {
        ApiError::not_found(
            Code::NotFound,
            format!("no tenant is routed on host `{label}`"),
        )
    })?;
    if !route.is_active {
        return Err(ApiError::forbidden(format!(
            "the route of tenant host `{label}` is inactive"
        )));
    }
    let op = op.ok_or_else(|| {
        ApiError::forbidden(format!(
            "tenant host `{label}` routes only query, fetch, insert, update and delete operations; name the client with X-Athena-Client"
        ))
    })?;
    if !route.allows(op) {
        return Err(ApiError::forbidden(format!(
            "tenant host `{label}` does not allow `{}`",
            op.as_str()
        )));
    }
    Ok(route.client_name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let p = WildcardPattern::parse("*.V3.example.test").unwrap();
        assert_eq!(p.as_string(), "*.v3.example.test");
        assert_eq!(p.label("acme.v3.example.test"), Some("acme".into()));
        assert_eq!(p.label("ACME.V3.Example.Test:8443"), Some("acme".into()));
        assert_eq!(p.label("acme.v3.example.test."), Some("acme".into()));
        for other in [
            "v3.example.test",
            ".v3.example.test",
            "a.b.v3.example.test",
            "acme.v3.example.testx",
            "acmev3.example.test",
            "[::1]:80",
            "127.0.0.1",
            &format!("{}.v3.example.test", "x".repeat(64)),
        ] {
            assert_eq!(p.label(other), None, "{other}");
        }
        for bad in ["", "*", "*.", "v3.example.test", "*.a..b", "*.a b", "**.x"] {
            assert!(WildcardPattern::parse(bad).is_err(), "{bad:?}");
        }
    }

    fn route(ops: &[&str], active: bool) -> PublicRoute {
        PublicRoute {
            id: uuid::Uuid::nil(),
            route_key: "acme".into(),
            client_name: "acme_db".into(),
            allowed_ops: ops.iter().map(|s| s.to_string()).collect(),
            is_active: active,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            rest_shape: None,
        }
    }

    #[test]
    fn the_route_decides() {
        let r = route(&["fetch"], true);
        assert_eq!(
            choose("acme", Some(&r), Some(Op::Fetch)).unwrap(),
            "acme_db"
        );
        assert_eq!(
            choose("acme", Some(&r), Some(Op::Insert))
                .unwrap_err()
                .status(),
            403
        );
        assert_eq!(choose("acme", Some(&r), None).unwrap_err().status(), 403);
        assert_eq!(
            choose("acme", None, Some(Op::Fetch)).unwrap_err().status(),
            404
        );
        let off = route(&["fetch"], false);
        assert_eq!(
            choose("acme", Some(&off), Some(Op::Fetch))
                .unwrap_err()
                .status(),
            403
        );
    }

    #[test]
    fn rights_name_ops() {
        use crate::api::operations::Operation as O;
        let op = |o: O| access::rule(o).right().and_then(op_of);
        assert_eq!(op(O::PostGatewayFetch), Some(Op::Fetch));
        assert_eq!(op(O::GetRestV1ByTable), Some(Op::Fetch));
        assert_eq!(op(O::PostRestV1ByTable), Some(Op::Insert));
        assert_eq!(op(O::PostGatewayQuery), Some(Op::Query));
        assert_eq!(op(O::PostGatewayRpc), None);
        assert_eq!(access::rule(O::GetHealth).right(), None);
    }
}
