use super::Handlers;
use crate::api::{models, params, responses, traits::AdminApi};
use crate::catalog::api_keys::{self, ApiKey, KeyChanges, NewKey, Right};
use crate::catalog::clients::{self, Changes, Client};
use crate::catalog::public_routes::{self, PublicRoute};
use crate::config::redact;

use crate::http::payload::Json;
use crate::http::{ApiError, ApiResult, Code, RequestCx};
use serde_json::{json, Map, Value};

impl AdminApi for Handlers {
    async fn get_admin_clients(&self, _cx: RequestCx) -> ApiResult<responses::GetAdminClients> {
        let list = clients::list(self.tenants.catalog()).await?;
        let mut runtime = Vec::with_capacity(list.len());
        for c in &list {
            runtime.push(models::RuntimeAthenaClient {
                client_name: Some(c.client_name.clone()),
                config_uri_template: c.config_uri_template.clone(),
                description: c.description.clone(),
                is_active: Some(c.is_active),
                is_frozen: Some(c.is_frozen),
                pg_uri: c.pg_uri.as_deref().map(redact),
                pg_uri_env_var: c.pg_uri_env_var.clone(),
                pool_connected: Some(self.tenants.pool_connected(&c.client_name).await),
                source: Some(c.source.clone()),
            });
        }
        let clients = list.iter().map(record).collect();
        Ok(responses::GetAdminClients::Ok(Json::new(
            models::AdminClientsResponse { clients, runtime },
        )))
    }

    async fn post_admin_clients(
        &self,
        _cx: RequestCx,
        body: models::SaveAthenaClientRequest,
    ) -> ApiResult<responses::PostAdminClients> {
        let name = body
            .client_name
            .clone()
            .ok_or_else(|| ApiError::bad_request("client_name is required"))?;
        let saved = clients::save(self.tenants.catalog(), &name, &changes(body)).await?;
        self.tenants.evict(&name).await;
        Ok(responses::PostAdminClients::Created(Json::new(one(&saved))))
    }

    async fn patch_admin_clients_by_client_name(
        &self,
        _cx: RequestCx,
        params: params::PatchAdminClientsByClientName,
        body: models::SaveAthenaClientRequest,
    ) -> ApiResult<responses::PatchAdminClientsByClientName> {
        if body
            .client_name
            .as_deref()
            .is_some_and(|n| n != params.client_name)
        {
            return Err(ApiError::bad_request(
                "client_name in the body must match the path (renames are not supported)",
            ));
        }
        let updated = clients::update(self.tenants.catalog(), &params.client_name, &changes(body))
            .await?
            .ok_or_else(|| not_found(&params.client_name))?;
        self.tenants.evict(&params.client_name).await;
        Ok(responses::PatchAdminClientsByClientName::Ok(Json::new(
            one(&updated),
        )))
    }

    async fn delete_admin_clients_by_client_name(
        &self,
        _cx: RequestCx,
        params: params::DeleteAdminClientsByClientName,
    ) -> ApiResult<responses::DeleteAdminClientsByClientName> {
        let deleted = clients::delete(self.tenants.catalog(), &params.client_name)
            .await?
            .ok_or_else(|| not_found(&params.client_name))?;
        self.tenants.evict(&params.client_name).await;
        Ok(responses::DeleteAdminClientsByClientName::Ok(Json::new(
            one(&deleted),
        )))
    }

    async fn put_admin_clients_by_client_name_freeze(
        &self,
        _cx: RequestCx,
        params: params::PutAdminClientsByClientNameFreeze,
        body: models::FreezeAthenaClientRequest,
    ) -> ApiResult<responses::PutAdminClientsByClientNameFreeze> {
        let updated =
            clients::set_frozen(self.tenants.catalog(), &params.client_name, body.is_frozen)
                .await?
                .ok_or_else(|| not_found(&params.client_name))?;
        self.tenants.evict(&params.client_name).await;
        Ok(responses::PutAdminClientsByClientNameFreeze::Ok(Json::new(
            one(&updated),
        )))
    }

    async fn get_admin_api_keys(&self, _cx: RequestCx) -> ApiResult<responses::GetAdminApiKeys> {
        let keys = api_keys::list_keys(self.tenants.catalog()).await?;
        Ok(responses::GetAdminApiKeys::Ok(Json::new(
            models::GetAdminApiKeysResponse200 {
                api_keys: keys.iter().map(key_record).collect(),
            },
        )))
    }

    async fn post_admin_api_keys(
        &self,
        _cx: RequestCx,
        body: models::CreateApiKeyRequest,
    ) -> ApiResult<responses::PostAdminApiKeys> {
        // Stored but not yet enforced (the IP-policy issue builds them):
        // refused rather than silently ignoring a security setting.
        let unenforced = [
            ("ip_whitelist", !body.ip_whitelist.is_empty()),
            ("ip_blacklist", !body.ip_blacklist.is_empty()),
            ("virgin_mode", body.virgin_mode == Some(true)),
            (
                "virgin_until_n_requests",
                body.virgin_until_n_requests.is_some(),
            ),
            ("max_whitelist_ips", body.max_whitelist_ips.is_some()),
        ];
        if let Some((field, _)) = unenforced.iter().find(|(_, set)| *set) {
            return Err(ApiError::bad_request(format!(
                "{field} is not enforced by this gateway yet; refusing to store a security \
                 setting that would be ignored"
            )));
        }
        let (plaintext, public_id, secret) = crate::auth::keys::generate()
            .map_err(|e| crate::domain::DomainError::Internal(format!("no randomness: {e}")))?;
        let new = NewKey {
            name: body.name,
            description: body.description,
            client_name: body.client_name,
            expires_at: body.expires_at,
            rights: body.rights,
            virgin_mode: body.virgin_mode.unwrap_or(false),
            virgin_until_n_requests: to_i32(
                "virgin_until_n_requests",
                body.virgin_until_n_requests,
            )?,
            max_whitelist_ips: to_i32("max_whitelist_ips", body.max_whitelist_ips)?,
            ip_whitelist: body.ip_whitelist,
            ip_blacklist: body.ip_blacklist,
        };
        if let Some(client) = &new.client_name {
            clients::check_name(client)?;
        }
        let hash = self.auth_keys().hash(&secret);
        let key = api_keys::create_key(self.tenants.catalog(), &new, &public_id, &hash).await?;
        // The plaintext key is returned here and never again.
        Ok(responses::PostAdminApiKeys::Created(Json::new(
            models::CreateApiKeyResponse {
                api_key: Some(plaintext),
                record: Some(key_record(&key)),
            },
        )))
    }

    async fn patch_admin_api_keys_by_id(
        &self,
        cx: RequestCx,
        params: params::PatchAdminApiKeysById,
        body: models::UpdateApiKeyRequest,
    ) -> ApiResult<responses::PatchAdminApiKeysById> {
        if let Some(client) = &body.client_name {
            clients::check_name(client)?;
        }
        // An absent `rights` leaves the grants alone; `[]` clears them (the
        // typed model cannot tell the two apart, the raw body can).
        let rights = cx.body_has_field("rights").then_some(body.rights);
        let changes = KeyChanges {
            name: body.name,
            description: body.description,
            client_name: body.client_name,
            expires_at: body.expires_at,
            is_active: body.is_active,
            rights,
        };
        let key = api_keys::update_key(self.tenants.catalog(), params.id, &changes)
            .await?
            .ok_or_else(|| ApiError::not_found(Code::NotFound, "API key not found"))?;
        // This replica stops accepting a revoked key before answering; the
        // others follow on the catalog notification.
        self.auth_keys().invalidate().await;
        Ok(responses::PatchAdminApiKeysById::Ok(Json::new(
            models::PatchAdminApiKeysByIdResponse200 {
                record: Some(key_record(&key)),
            },
        )))
    }

    async fn delete_admin_api_keys_by_id(
        &self,
        _cx: RequestCx,
        params: params::DeleteAdminApiKeysById,
    ) -> ApiResult<responses::DeleteAdminApiKeysById> {
        if !api_keys::delete_key(self.tenants.catalog(), params.id).await? {
            return Err(ApiError::not_found(Code::NotFound, "API key not found"));
        }
        self.auth_keys().invalidate().await;
        Ok(responses::DeleteAdminApiKeysById::Ok(Json::new(
            models::DeleteAdminApiKeysByIdResponse200 {
                id: Some(params.id),
            },
        )))
    }

    async fn get_admin_api_key_rights(
        &self,
        _cx: RequestCx,
    ) -> ApiResult<responses::GetAdminApiKeyRights> {
        let rights = api_keys::list_rights(self.tenants.catalog()).await?;
        Ok(responses::GetAdminApiKeyRights::Ok(Json::new(
            models::GetAdminApiKeyRightsResponse200 {
                rights: rights.iter().map(right_record).collect(),
            },
        )))
    }

    async fn post_admin_api_key_rights(
        &self,
        _cx: RequestCx,
        body: models::ApiKeyRightRequest,
    ) -> ApiResult<responses::PostAdminApiKeyRights> {
        let right = api_keys::create_right(
            self.tenants.catalog(),
            &body.name,
            body.description.as_deref(),
        )
        .await?;
        Ok(responses::PostAdminApiKeyRights::Created(Json::new(
            models::PostAdminApiKeyRightsResponse201 {
                right: Some(right_record(&right)),
            },
        )))
    }

    async fn patch_admin_api_key_rights_by_id(
        &self,
        _cx: RequestCx,
        params: params::PatchAdminApiKeyRightsById,
        body: models::ApiKeyRightRequest,
    ) -> ApiResult<responses::PatchAdminApiKeyRightsById> {
        let right = api_keys::update_right(
            self.tenants.catalog(),
            params.id,
            &body.name,
            body.description.as_deref(),
        )
        .await?
        .ok_or_else(|| ApiError::not_found(Code::NotFound, "right not found"))?;
        self.auth_keys().invalidate().await;
        Ok(responses::PatchAdminApiKeyRightsById::Ok(Json::new(
            models::PatchAdminApiKeyRightsByIdResponse200 {
                right: Some(right_record(&right)),
            },
        )))
    }

    async fn delete_admin_api_key_rights_by_id(
        &self,
        _cx: RequestCx,
        params: params::DeleteAdminApiKeyRightsById,
    ) -> ApiResult<responses::DeleteAdminApiKeyRightsById> {
        if !api_keys::delete_right(self.tenants.catalog(), params.id).await? {
            return Err(ApiError::not_found(Code::NotFound, "right not found"));
        }
        self.auth_keys().invalidate().await;
        Ok(responses::DeleteAdminApiKeyRightsById::Ok(Json::new(
            models::DeleteAdminApiKeyRightsByIdResponse200 {
                id: Some(params.id),
            },
        )))
    }

    async fn get_admin_rights_catalog(
        &self,
        _cx: RequestCx,
    ) -> ApiResult<responses::GetAdminRightsCatalog> {
        let dynamic = api_keys::list_rights(self.tenants.catalog()).await?;
        let native: Vec<Value> = crate::auth::rights::NATIVE
            .iter()
            .map(|(name, description)| json!({"name": name, "description": description}))
            .collect();
        let dynamic_json: Vec<Value> = dynamic
            .iter()
            .map(|r| serde_json::to_value(right_record(r)).unwrap_or(Value::Null))
            .collect();
        let data = json!({
            "nativeRights": native,
            "dynamicApiKeyRights": dynamic_json,
            "counts": {"native": native.len(), "dynamic": dynamic_json.len()},
            "apiKeyRightsStatus": "available",
        });
        Ok(responses::GetAdminRightsCatalog::Ok(Json::new(
            models::ApiSuccessEnvelope {
                status: models::ApiSuccessEnvelopeStatus::Success,
                message: "Athena rights catalog".into(),
                data: data.as_object().cloned().unwrap_or_default(),
            },
        )))
    }

    async fn get_admin_api_key_config(
        &self,
        _cx: RequestCx,
    ) -> ApiResult<responses::GetAdminApiKeyConfig> {
        Ok(responses::GetAdminApiKeyConfig::Ok(Json::new(
            self.key_config().await?,
        )))
    }

    async fn put_admin_api_key_config(
        &self,
        _cx: RequestCx,
        body: models::ApiKeyConfigRequest,
    ) -> ApiResult<responses::PutAdminApiKeyConfig> {
        api_keys::set_global_enforcement(self.tenants.catalog(), body.enforce_api_keys).await?;
        self.auth_keys().invalidate().await;
        Ok(responses::PutAdminApiKeyConfig::Ok(Json::new(
            self.key_config().await?,
        )))
    }

    async fn get_admin_api_key_clients(
        &self,
        _cx: RequestCx,
    ) -> ApiResult<responses::GetAdminApiKeyClients> {
        let clients = api_keys::client_enforcements(self.tenants.catalog()).await?;
        Ok(responses::GetAdminApiKeyClients::Ok(Json::new(
            models::ApiKeyClientListResponse {
                clients: clients.iter().map(client_enforcement).collect(),
            },
        )))
    }

    async fn put_admin_api_key_clients_by_client_name(
        &self,
        _cx: RequestCx,
        params: params::PutAdminApiKeyClientsByClientName,
        body: models::ApiKeyClientConfigRequest,
    ) -> ApiResult<responses::PutAdminApiKeyClientsByClientName> {
        let c = api_keys::set_client_enforcement(
            self.tenants.catalog(),
            &params.client_name,
            body.enforce_api_keys,
        )
        .await?;
        self.auth_keys().invalidate().await;
        Ok(responses::PutAdminApiKeyClientsByClientName::Ok(Json::new(
            models::PutAdminApiKeyClientsByClientNameResponse200 {
                client: Some(client_enforcement(&c)),
            },
        )))
    }

    async fn delete_admin_api_key_clients_by_client_name(
        &self,
        _cx: RequestCx,
        params: params::DeleteAdminApiKeyClientsByClientName,
    ) -> ApiResult<responses::DeleteAdminApiKeyClientsByClientName> {
        if !api_keys::delete_client_enforcement(self.tenants.catalog(), &params.client_name).await?
        {
            return Err(ApiError::not_found(
                Code::NotFound,
                "no enforcement override for that client",
            ));
        }
        self.auth_keys().invalidate().await;
        Ok(responses::DeleteAdminApiKeyClientsByClientName::Ok(
            Json::new(models::DeleteAdminApiKeyClientsByClientNameResponse200 {
                client_name: Some(params.client_name),
            }),
        ))
    }

    async fn get_admin_public_routes(
        &self,
        _cx: RequestCx,
    ) -> ApiResult<responses::GetAdminPublicRoutes> {
        let routes = public_routes::list(self.tenants.catalog()).await?;
        let list: Vec<Value> = routes.iter().map(public_route_record).collect();
        Ok(responses::GetAdminPublicRoutes::Ok(Json::new(
            json!({"status": "success", "routes": list.clone(), "data": list}),
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
        )
        .await?;
        self.forget_public_route(&route.route_key);
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
        self.forget_public_route(&route.route_key);
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
        self.forget_public_route(&route.route_key);
        Ok(responses::DeleteAdminPublicRoutesByRouteKey::Ok(Json::new(
            one_public_route(&route),
        )))
    }
}

fn changes(body: models::SaveAthenaClientRequest) -> Changes {
    Changes {
        description: body.description,
        pg_uri: body.pg_uri,
        pg_uri_env_var: body.pg_uri_env_var,
        is_active: body.is_active,
    }
}

fn not_found(name: &str) -> ApiError {
    ApiError::not_found(
        Code::ClientNotFound,
        format!("client `{name}` is not registered"),
    )
}

fn one(c: &Client) -> models::AdminClientResponse {
    models::AdminClientResponse {
        client: Some(record(c)),
    }
}

/// The catalog row as the contract shows it; the URI's password is never echoed.
pub(super) fn record(c: &Client) -> models::AthenaClientRecord {
    models::AthenaClientRecord {
        client_name: Some(c.client_name.clone()),
        config_uri_template: c.config_uri_template.clone(),
        created_at: Some(c.created_at),
        deleted_at: c.deleted_at,
        description: c.description.clone(),
        id: Some(c.id),
        is_active: Some(c.is_active),
        is_frozen: Some(c.is_frozen),
        last_seen_at: c.last_seen_at,
        last_synced_from_config_at: c.last_synced_from_config_at,
        metadata: c.metadata.as_object().cloned().unwrap_or_default(),
        pg_uri: c.pg_uri.as_deref().map(redact),
        pg_uri_env_var: c.pg_uri_env_var.clone(),
        source: Some(c.source.clone()),
        updated_at: Some(c.updated_at),
    }
}

impl Handlers {
    fn auth_keys(&self) -> &crate::auth::store::KeyStore {
        &self.keys
    }

    async fn key_config(&self) -> Result<models::ApiKeyConfigResponse, crate::domain::DomainError> {
        let global = api_keys::global_enforcement(self.tenants.catalog()).await?;
        let clients = api_keys::client_enforcements(self.tenants.catalog()).await?;
        Ok(models::ApiKeyConfigResponse {
            global: Some(models::ApiKeyGlobalConfig {
                enforce_api_keys: Some(global.enforce_api_keys),
                updated_at: Some(global.updated_at),
            }),
            clients: clients.iter().map(client_enforcement).collect(),
        })
    }
}

fn to_i32(field: &str, v: Option<u64>) -> Result<i32, ApiError> {
    match v {
        None => Ok(0),
        Some(n) => i32::try_from(n).map_err(|_| ApiError::invalid_parameter(field, "too large")),
    }
}

fn key_record(k: &ApiKey) -> models::ApiKeyRecord {
    models::ApiKeyRecord {
        client_name: k.client_name.clone(),
        created_at: Some(k.created_at),
        description: k.description.clone(),
        expires_at: k.expires_at,
        id: Some(k.id),
        is_active: Some(k.is_active),
        last_used_at: k.last_used_at,
        name: Some(k.name.clone()),
        public_id: Some(k.public_id.clone()),
        rights: k.rights.clone(),
        updated_at: Some(k.updated_at),
    }
}

fn right_record(r: &Right) -> models::ApiKeyRightRecord {
    models::ApiKeyRightRecord {
        created_at: Some(r.created_at),
        description: r.description.clone(),
        id: Some(r.id),
        name: Some(r.name.clone()),
        updated_at: Some(r.updated_at),
    }
}

fn client_enforcement(c: &api_keys::ClientEnforcement) -> models::ApiKeyClientConfig {
    models::ApiKeyClientConfig {
        client_name: Some(c.client_name.clone()),
        created_at: Some(c.created_at),
        enforce_api_keys: Some(c.enforce_api_keys),
        updated_at: Some(c.updated_at),
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
    })
}

fn one_public_route(r: &PublicRoute) -> Value {
    json!({"status": "success", "route": public_route_record(r)})
}

fn public_route_not_found(key: &str) -> ApiError {
    ApiError::not_found(
        Code::NotFound,
        format!("public route `{key}` does not exist"),
    )
}

/// The PATCH body: `client_name`, `allowed_ops`, `is_active`; absent or
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
                    "unknown field `{other}` (client_name, allowed_ops, is_active)"
                )))
            }
        }
    }
    Ok(c)
}
