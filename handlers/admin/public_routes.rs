//! `admin_public_routes`: the public-route catalog (`/admin/public-routes`);
//! the routes themselves are served by `handlers/public.rs`.

use crate::api::{models, params, responses, traits::AdminPublicRoutesApi};
use crate::catalog::public_routes::{self, PublicRoute};
use crate::handlers::Handlers;
use crate::http::payload::Json;
use crate::http::{ApiError, ApiResult, Code, RequestCx};
use serde_json::{json, Map, Value};

impl AdminPublicRoutesApi for Handlers {
    async fn get_admin_public_routes(
        &self,
        _cx: RequestCx,
    ) -> ApiResult<responses::GetAdminPublicRoutes> {
        let routes = public_routes::list(self.tenants.catalog()).await?;
        let list: Vec<Value> = routes.iter().map(public_route_record).collect();
        let mut out = crate::domain::success(format!("{} public routes", list.len()));
        out.insert("routes".into(), Value::Array(list.clone()));
        out.insert("data".into(), Value::Array(list));
        Ok(responses::GetAdminPublicRoutes::Ok(Json::new(
            Value::Object(out),
        )))
    }

    async fn post_admin_public_routes(
        &self,
        _cx: RequestCx,
        body: models::PostAdminPublicRoutesRequest,
    ) -> ApiResult<responses::PostAdminPublicRoutes> {
        let route = public_routes::create(
            self.tenants.catalog(),
            &body.route_key,
            &body.client_name,
            &body.allowed_ops,
            body.rest_shape.map(|s| s.to_string()).as_deref(),
        )
        .await?;
        self.public_routes.forget(&route.route_key);
        Ok(responses::PostAdminPublicRoutes::Created(Json::new(
            one_public_route(&route),
        )))
    }

    async fn patch_admin_public_routes_by_route_key(
        &self,
        _cx: RequestCx,
        params: params::PatchAdminPublicRoutesByRouteKey,
        body: models::PatchAdminPublicRoutesByRouteKeyRequest,
    ) -> ApiResult<responses::PatchAdminPublicRoutesByRouteKey> {
        let changes = public_route_changes(&params.route_key, &body)?;
        let route = public_routes::update(self.tenants.catalog(), &params.route_key, &changes)
            .await?
            .ok_or_else(|| public_route_not_found(&params.route_key))?;
        self.public_routes.forget(&route.route_key);
        Ok(responses::PatchAdminPublicRoutesByRouteKey::Ok(Json::new(
            one_public_route(&route),
        )))
    }

    async fn delete_admin_public_routes_by_route_key(
        &self,
        _cx: RequestCx,
        params: params::DeleteAdminPublicRoutesByRouteKey,
    ) -> ApiResult<responses::DeleteAdminPublicRoutesByRouteKey> {
        let route = public_routes::delete(self.tenants.catalog(), &params.route_key)
            .await?
            .ok_or_else(|| public_route_not_found(&params.route_key))?;
        self.public_routes.forget(&route.route_key);
        Ok(responses::DeleteAdminPublicRoutesByRouteKey::Ok(Json::new(
            one_public_route(&route),
        )))
    }
}

/// A public route as the admin API shows it (the client is named here, and
/// only here).
fn public_route_record(r: &PublicRoute) -> Value {
    json!({
        "id": r.id,
        "route_key": r.route_key,
        "client_name": r.client_name,
        "allowed_ops": r.allowed_ops,
        "is_active": r.is_active,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "rest_shape": r.rest_shape,
    })
}

fn one_public_route(r: &PublicRoute) -> Value {
    let mut out = crate::domain::success(format!("public route `{}`", r.route_key));
    out.insert("route".into(), public_route_record(r));
    Value::Object(out)
}

fn public_route_not_found(key: &str) -> ApiError {
    ApiError::not_found(
        Code::NotFound,
        format!("public route `{key}` does not exist"),
    )
}

/// The PATCH body: `client_name`, `allowed_ops`, `is_active`,
/// `rest_shape` (`contract`|`postgrest`, issue 14); absent or
/// `null` leaves a field unchanged; `route_key` may only repeat the path
/// (no renames); anything else is a 400.
fn public_route_changes(
    route_key: &str,
    body: &Map<String, Value>,
) -> Result<public_routes::Changes, ApiError> {
    let mut c = public_routes::Changes::default();
    for (field, value) in body {
        if value.is_null() {
            continue;
        }
        let wrong = |what: &str| ApiError::invalid_parameter(field, format!("must be {what}"));
        match field.as_str() {
            "route_key" => {
                if value.as_str() != Some(route_key) {
                    return Err(ApiError::bad_request(
                        "route_key in the body must match the path (renames are not supported)",
                    ));
                }
            }
            "client_name" => {
                c.client_name = Some(value.as_str().ok_or_else(|| wrong("a string"))?.to_string())
            }
            "is_active" => c.is_active = Some(value.as_bool().ok_or_else(|| wrong("a boolean"))?),
            "rest_shape" => {
                let shape = value.as_str().ok_or_else(|| wrong("a string"))?;
                public_routes::check_rest_shape(shape)
                    .map_err(|_| wrong("`contract` or `postgrest`"))?;
                c.rest_shape = Some(shape.to_string());
            }
            "allowed_ops" => {
                let ops = value
                    .as_array()
                    .and_then(|a| {
                        a.iter()
                            .map(|v| v.as_str().map(str::to_string))
                            .collect::<Option<Vec<_>>>()
                    })
                    .ok_or_else(|| wrong("an array of strings"))?;
                c.allowed_ops = Some(ops);
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown field `{other}` (client_name, allowed_ops, is_active, rest_shape)"
                )))
            }
        }
    }
    Ok(c)
}
