//! `admin_clients`: the client catalog (`/admin/clients`, one client, freeze).

use crate::api::{models, params, responses, traits::AdminClientsApi};
use crate::catalog::clients::{self, Changes, Client};
use crate::config::redact;
use crate::handlers::Handlers;
use crate::http::payload::Json;
use crate::http::{ApiError, ApiResult, Code, RequestCx};

impl AdminClientsApi for Handlers {
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
fn record(c: &Client) -> models::AthenaClientRecord {
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
