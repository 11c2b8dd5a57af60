//! `admin_api_keys`: API keys, their rights, and global and per-client
//! enforcement (`/admin/api-keys`, `/admin/api-key-rights`, `/admin/rights`,
//! `/admin/api-key-config`, `/admin/api-key-clients`).

use crate::api::{models, params, responses, traits::AdminApiKeysApi};
use crate::catalog::api_keys::{self, ApiKey, KeyChanges, NewKey, Right};
use crate::catalog::clients;
use crate::handlers::Handlers;
use crate::http::payload::Json;
use crate::http::{ApiError, ApiResult, Code, RequestCx};
use serde_json::{json, Value};

impl AdminApiKeysApi for Handlers {
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
        let ip = crate::auth::ip_policy::new_policy(
            body.virgin_mode.unwrap_or(false),
            body.virgin_until_n_requests,
            body.max_whitelist_ips,
            &body.ip_whitelist,
            &body.ip_blacklist,
        )?;
        let (plaintext, public_id, secret) = crate::auth::keys::generate()
            .map_err(|e| crate::domain::DomainError::Internal(format!("no randomness: {e}")))?;
        let new = NewKey {
            name: body.name,
            description: body.description,
            client_name: body.client_name,
            expires_at: body.expires_at,
            rights: body.rights,
            ip,
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
