//! `admin_client_configs`: per-client configuration overrides
//! (`/admin/client-configs*`, `src/catalog/client_configs.rs`). A change
//! reaches every replica's pools, limiter and write paths within a second
//! (the table's trigger notifies `athena_clients_changed`).

use crate::api::{models, params, responses, traits::AdminClientConfigsApi};
use crate::catalog::client_configs::{self, ClientConfig};
use crate::domain::{success, DomainError};
use crate::handlers::Handlers;
use crate::http::payload::Json;
use crate::http::{ApiError, ApiResult, Code, RequestCx};
use serde_json::{json, Value};

impl AdminClientConfigsApi for Handlers {
    async fn get_admin_client_configs(
        &self,
        _cx: RequestCx,
    ) -> ApiResult<responses::GetAdminClientConfigs> {
        let rows = client_configs::list(self.tenants.catalog()).await?;
        let list: Vec<Value> = rows.iter().map(|s| s.to_json()).collect();
        let mut out = success(format!("{} client configs", list.len()));
        out.insert(
            "data".into(),
            json!({ "configs": list, "count": list.len() }),
        );
        Ok(responses::GetAdminClientConfigs::Ok(Json::new(
            Value::Object(out),
        )))
    }

    async fn get_admin_client_configs_by_client_name(
        &self,
        _cx: RequestCx,
        params: params::GetAdminClientConfigsByClientName,
    ) -> ApiResult<responses::GetAdminClientConfigsByClientName> {
        let name = &params.client_name;
        let stored = client_configs::get(self.tenants.catalog(), name)
            .await?
            .ok_or_else(|| no_override(name))?;
        // Beside the override, what acts: it over the defaults.
        let defaults = client_configs::Defaults {
            pool: self.tenants.default_settings(),
            admission: self.config.admission.clone(),
            insert_window: self.config.insert_window,
            deferred_writes: self.gateway.deferred.enabled(name).await?,
        };
        let mut data = stored.to_json();
        data["effective"] = stored.config.effective(&defaults);
        Ok(responses::GetAdminClientConfigsByClientName::Ok(one(
            "Client config",
            data,
        )))
    }

    async fn put_admin_client_configs_by_client_name(
        &self,
        _cx: RequestCx,
        params: params::PutAdminClientConfigsByClientName,
        body: models::PutAdminClientConfigsByClientNameRequest,
    ) -> ApiResult<responses::PutAdminClientConfigsByClientName> {
        let config = ClientConfig::parse(&Value::Object(body.config))?;
        let metadata = Value::Object(body.metadata);
        let stored = client_configs::put(
            self.tenants.catalog(),
            &params.client_name,
            &config,
            &metadata,
        )
        .await?
        .ok_or_else(|| DomainError::not_found("client", params.client_name.as_str()))?;
        // This replica at once; the others through the notification.
        self.tenants.evict(&params.client_name).await;
        Ok(responses::PutAdminClientConfigsByClientName::Ok(one(
            "Client config saved",
            stored.to_json(),
        )))
    }

    async fn delete_admin_client_configs_by_client_name(
        &self,
        _cx: RequestCx,
        params: params::DeleteAdminClientConfigsByClientName,
    ) -> ApiResult<responses::DeleteAdminClientConfigsByClientName> {
        // Idempotent (the contract declares no 404): `removed` says whether
        // there was an override.
        let removed = client_configs::delete(self.tenants.catalog(), &params.client_name).await?;
        self.tenants.evict(&params.client_name).await;
        Ok(responses::DeleteAdminClientConfigsByClientName::Ok(one(
            "Client config removed; the client uses the defaults",
            json!({ "client_name": params.client_name, "removed": removed }),
        )))
    }

    async fn post_admin_client_configs_seed_from_config(
        &self,
        _cx: RequestCx,
    ) -> ApiResult<responses::PostAdminClientConfigsSeedFromConfig> {
        let entries = match &self.config.config_file {
            Some(path) => crate::runtime::client_config_entries(path)
                .map_err(|e| ApiError::new(Code::BadRequest, "Bad request", e))?,
            None => Vec::new(),
        };
        let seeded = client_configs::seed(self.tenants.catalog(), &entries).await?;
        for name in &seeded.seeded {
            self.tenants.evict(name).await;
        }
        Ok(responses::PostAdminClientConfigsSeedFromConfig::Ok(one(
            &format!(
                "{} client configs seeded, {} skipped",
                seeded.seeded.len(),
                seeded.skipped.len()
            ),
            json!(seeded),
        )))
    }
}

fn no_override(client: &str) -> ApiError {
    ApiError::not_found(
        Code::NotFound,
        format!("client `{client}` has no configuration override"),
    )
}

/// The success envelope around `data`.
fn one(message: &str, data: Value) -> Json<Value> {
    let mut out = success(message);
    out.insert("data".into(), data);
    Json::new(Value::Object(out))
}
