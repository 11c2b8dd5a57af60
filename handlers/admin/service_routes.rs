//! `admin_service_routes`: tenant hostname onboarding
//! (`PUT /admin/tenant-hostnames/{tenant}`) and the tenant service routes
//! (`/admin/service-routes*`); host routing itself is
//! `src/gateway/host_routing.rs`.

use crate::api::{models, params, responses, traits::AdminServiceRoutesApi};
use crate::catalog::service_routes::{self, ServiceRoute};
use crate::catalog::tenant_hostnames::{self, Onboarded, Onboarding};
use crate::catalog::{clients, public_routes::PublicRoute};
use crate::domain::DomainError;
use crate::handlers::Handlers;
use crate::http::payload::Json;
use crate::http::{ApiError, ApiResult, Code, RequestCx};
use serde_json::{json, Value};

impl AdminServiceRoutesApi for Handlers {
    async fn get_admin_service_routes(
        &self,
        _cx: RequestCx,
        params: params::GetAdminServiceRoutes,
    ) -> ApiResult<responses::GetAdminServiceRoutes> {
        let filter = service_routes::Filter {
            route_key: params.route_key,
            service_key: params.service_key,
            client_name: params.client_name,
        };
        let routes = service_routes::list(self.tenants.catalog(), &filter).await?;
        let list: Vec<Value> = routes.iter().map(ServiceRoute::to_json).collect();
        let mut out = crate::domain::success(format!("{} service routes", list.len()));
        out.insert("data".into(), Value::Array(list));
        Ok(responses::GetAdminServiceRoutes::Ok(Json::new(
            Value::Object(out),
        )))
    }

    async fn post_admin_service_routes(
        &self,
        _cx: RequestCx,
        body: models::TenantServiceRouteRequest,
    ) -> ApiResult<responses::PostAdminServiceRoutes> {
        let upsert = service_routes::Upsert {
            route_key: body.route_key,
            service_key: body.service_key.to_string(),
            client_name: body.client_name,
            upstream_url: self.upstream_url(body.upstream_url)?,
            is_active: body.is_active,
            metadata: Some(body.metadata),
        };
        let route = service_routes::upsert(self.tenants.catalog(), &upsert).await?;
        self.routing.forget(&route.route_key);
        Ok(responses::PostAdminServiceRoutes::Ok(one(&route)))
    }

    async fn delete_admin_service_routes_by_route_key_by_service_key(
        &self,
        _cx: RequestCx,
        params: params::DeleteAdminServiceRoutesByRouteKeyByServiceKey,
    ) -> ApiResult<responses::DeleteAdminServiceRoutesByRouteKeyByServiceKey> {
        let (key, service) = (&params.route_key, &params.service_key);
        let route = service_routes::delete(self.tenants.catalog(), key, service)
            .await?
            .ok_or_else(|| not_found(key, service))?;
        self.routing.forget(&route.route_key);
        Ok(responses::DeleteAdminServiceRoutesByRouteKeyByServiceKey::Ok(one(&route)))
    }

    async fn patch_admin_service_routes_by_route_key_by_service_key(
        &self,
        _cx: RequestCx,
        params: params::PatchAdminServiceRoutesByRouteKeyByServiceKey,
        body: models::TenantServiceRoutePatch,
    ) -> ApiResult<responses::PatchAdminServiceRoutesByRouteKeyByServiceKey> {
        let (key, service) = (&params.route_key, &params.service_key);
        let changes = service_routes::Changes {
            client_name: body.client_name,
            // `""` clears the URL; absent (or null) keeps it.
            upstream_url: match body.upstream_url {
                None => None,
                Some(u) if u.trim().is_empty() => Some(None),
                Some(u) => Some(self.upstream_url(Some(u))?),
            },
            is_active: body.is_active,
            metadata: (!body.metadata.is_empty()).then_some(body.metadata),
        };
        let route = service_routes::update(self.tenants.catalog(), key, service, &changes)
            .await?
            .ok_or_else(|| not_found(key, service))?;
        self.routing.forget(&route.route_key);
        Ok(responses::PatchAdminServiceRoutesByRouteKeyByServiceKey::Ok(one(&route)))
    }

    async fn put_admin_tenant_hostnames_by_tenant(
        &self,
        _cx: RequestCx,
        params: params::PutAdminTenantHostnamesByTenant,
        body: models::PutAdminTenantHostnamesByTenantRequest,
    ) -> ApiResult<responses::PutAdminTenantHostnamesByTenant> {
        let onboarding = self.onboarding(&params.tenant, body)?;
        let done = tenant_hostnames::put(self.tenants.catalog(), &onboarding).await?;
        self.routing.forget(&onboarding.tenant);
        let data = self.onboarded(&onboarding, &done);
        let mut out = crate::domain::success(format!("tenant host `{}`", onboarding.tenant));
        out.insert("data".into(), data);
        Ok(responses::PutAdminTenantHostnamesByTenant::Ok(Json::new(
            Value::Object(out),
        )))
    }
}

impl Handlers {
    /// A stored upstream URL, checked by the outbound policy (400 naming
    /// the field).
    fn upstream_url(&self, url: Option<String>) -> Result<Option<String>, ApiError> {
        url.filter(|u| !u.trim().is_empty())
            .map(|u| {
                (self.routing.outbound)
                    .check_stored_url(&u)
                    .map_err(|reason| ApiError::invalid_parameter("upstream_url", reason))
            })
            .transpose()
    }

    /// The PUT body with its defaults: the client is the tenant's name
    /// unless given; the HTTP route and catalog persistence are on, the
    /// PostgreSQL binding off; `public_host` defaults to the tenant's host
    /// under the wildcard pattern, `public_port` to 5432.
    fn onboarding(
        &self,
        tenant: &str,
        body: models::PutAdminTenantHostnamesByTenantRequest,
    ) -> Result<Onboarding, DomainError> {
        let tenant = tenant_hostnames::normalize_tenant(tenant)?;
        let client_name = body.client_name.unwrap_or_else(|| tenant.clone());
        clients::check_name(&client_name).map_err(|_| DomainError::InvalidField {
            field: "client_name".into(),
            reason: "must be 1-63 characters: letters, digits, `_`, `.`, `-`".into(),
        })?;
        let postgres_binding = match body.enable_postgres_binding.unwrap_or(false) {
            false => None,
            true => {
                let host = match (&body.public_host, self.routing.pattern()) {
                    (Some(h), _) => tenant_hostnames::check_public_host(h)?,
                    (None, Some(p)) => p.host_for(&tenant),
                    (None, None) => {
                        return Err(DomainError::InvalidField {
                            field: "public_host".into(),
                            reason: "is required when no ATHENA_WILDCARD_HOST_PATTERN is set"
                                .into(),
                        })
                    }
                };
                let port = body.public_port.unwrap_or(5432);
                let port = u16::try_from(port).ok().filter(|p| *p > 0).ok_or_else(|| {
                    DomainError::InvalidField {
                        field: "public_port".into(),
                        reason: "must be between 1 and 65535".into(),
                    }
                })?;
                Some((host, port))
            }
        };
        Ok(Onboarding {
            client_name,
            allowed_ops: (!body.allowed_ops.is_empty()).then_some(body.allowed_ops),
            enable_http_route: body.enable_http_route.unwrap_or(true),
            persist_in_catalog: body.persist_in_catalog.unwrap_or(true),
            postgres_binding,
            route_metadata: body.route_metadata,
            tenant,
        })
    }

    /// The PUT's answer: what is now routed and stored.
    fn onboarded(&self, o: &Onboarding, done: &Onboarded) -> Value {
        let pattern = self.routing.pattern();
        json!({
            "tenant": o.tenant,
            "client_name": o.client_name,
            "hostname": pattern.map(|p| p.host_for(&o.tenant)),
            "wildcard_host_pattern": pattern.map(|p| p.as_string()),
            "http_route": done.route.as_ref().map(route_json),
            "postgres_binding": o.postgres_binding.as_ref().map(|(host, port)| json!({
                "public_host": host,
                "public_port": port,
                "persisted": o.persist_in_catalog,
            })),
            "persisted_in_catalog": o.persist_in_catalog,
            "route_metadata": o.route_metadata,
            "client_metadata": o.persist_in_catalog.then(|| done.metadata.clone()),
        })
    }
}

fn route_json(r: &PublicRoute) -> Value {
    json!({
        "route_key": r.route_key,
        "client_name": r.client_name,
        "allowed_ops": r.allowed_ops,
        "is_active": r.is_active,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
    })
}

fn one(r: &ServiceRoute) -> Json<Value> {
    let mut out = crate::domain::success(format!(
        "service route `{}`/`{}`",
        r.route_key, r.service_key
    ));
    out.insert("data".into(), r.to_json());
    Json::new(Value::Object(out))
}

fn not_found(route_key: &str, service_key: &str) -> ApiError {
    let (k, s): (String, String) = (
        route_key.chars().take(64).collect(),
        service_key.chars().take(64).collect(),
    );
    ApiError::not_found(
        Code::NotFound,
        format!("service route `{k}`/`{s}` does not exist"),
    )
}
