//! `admin_billing`: billing provider connections of a client, their
//! handled webhooks, reconciles, and the static provider and grant catalogs
//! (`src/billing/`). Bodies are free-form in the contract; the shapes are
//! recorded in `openapi/CHANGES.md` ("Billing (issue 15)").

use crate::api::{models, params, responses, traits::AdminBillingApi};
use crate::billing::providers::{Kind, Provider};
use crate::billing::{catalog, Billing, Connection};
use crate::domain::DomainError;
use crate::handlers::Handlers;
use crate::http::payload::Json;
use crate::http::{ApiError, ApiResult, RequestCx};
use serde_json::{json, Map, Value};
use uuid::Uuid;

/// The success envelope around `data`.
fn envelope(
    message: impl Into<String>,
    data: Map<String, Value>,
) -> Json<models::ApiSuccessEnvelope> {
    Json::new(models::ApiSuccessEnvelope {
        data,
        message: message.into(),
        status: models::ApiSuccessEnvelopeStatus::Success,
    })
}

fn one(key: &str, value: Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(key.into(), value);
    m
}

/// The first of `names` present in `body` (camelCase first, snake_case
/// aliases after).
fn field<'a>(body: &'a Map<String, Value>, names: &[&str]) -> Option<&'a Value> {
    names
        .iter()
        .find_map(|n| body.get(*n))
        .filter(|v| !v.is_null())
}

fn text(body: &Map<String, Value>, names: &[&str], max: usize) -> Result<Option<String>, ApiError> {
    match field(body, names) {
        None => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) if s.len() <= max => Ok(Some(s.trim().to_string())),
        Some(Value::String(_)) => Err(ApiError::invalid_parameter(
            names[0],
            format!("must be at most {max} characters"),
        )),
        Some(_) => Err(ApiError::invalid_parameter(names[0], "must be a string")),
    }
}

const MODES: [&str; 2] = ["test", "live"];

/// Applies a create/patch body to `c`: every field given replaces the
/// stored one; credentials are sealed for the row.
fn apply(billing: &Billing, c: &mut Connection, body: &Map<String, Value>) -> Result<(), ApiError> {
    if let Some(v) = text(body, &["providerAccountId", "provider_account_id"], 255)? {
        c.provider_account_id = Some(v);
    }
    if let Some(v) = text(body, &["ownerKind", "owner_kind"], 64)? {
        c.owner_kind = v;
    }
    if let Some(v) = text(body, &["ownerId", "owner_id"], 255)? {
        c.owner_id = Some(v);
    }
    if let Some(v) = text(body, &["mode"], 16)? {
        if !MODES.contains(&v.as_str()) {
            return Err(ApiError::invalid_parameter(
                "mode",
                "must be `test` or `live`",
            ));
        }
        c.mode = v;
    }
    if let Some(v) = text(body, &["displayName", "display_name", "name"], 255)? {
        c.display_name = Some(v);
    }
    if let Some(config) = field(body, &["config"]) {
        let Value::Object(config) = config else {
            return Err(ApiError::invalid_parameter("config", "must be an object"));
        };
        for secret in [
            "api_key",
            "apiKey",
            "secret",
            "webhook_secret",
            "webhookSecret",
            "password",
        ] {
            if config.contains_key(secret) {
                return Err(ApiError::invalid_parameter(
                    "config",
                    format!("`{secret}` is a credential: send it in `credentials`, it is stored encrypted"),
                ));
            }
        }
        if let Some(url) = config
            .get("api_base_url")
            .or_else(|| config.get("apiBaseUrl"))
        {
            let url = url.as_str().ok_or_else(|| {
                ApiError::invalid_parameter("config.api_base_url", "must be a string")
            })?;
            billing
                .outbound
                .check_stored_url(url)
                .map_err(|why| ApiError::invalid_parameter("config.api_base_url", why))?;
            // Resource paths are appended to it.
            if url.contains(['?', '#']) {
                return Err(ApiError::invalid_parameter(
                    "config.api_base_url",
                    "must not carry a query or a fragment",
                ));
            }
        }
        c.config = Value::Object(config.clone());
    }
    if let Some(scopes) = field(body, &["scopes"]) {
        let scopes: Vec<String> = serde_json::from_value(scopes.clone())
            .map_err(|_| ApiError::invalid_parameter("scopes", "must be a list of strings"))?;
        if scopes.len() > 64 || scopes.iter().any(|s| s.is_empty() || s.len() > 128) {
            return Err(ApiError::invalid_parameter(
                "scopes",
                "at most 64 scopes of 1-128 characters",
            ));
        }
        c.scopes = scopes;
    }
    let credentials = match field(body, &["credentials"]) {
        None => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            return Err(ApiError::invalid_parameter(
                "credentials",
                "must be an object",
            ))
        }
    };
    if let Some(key) = text(
        &credentials,
        &["apiKey", "api_key", "secretKey", "secret_key"],
        1024,
    )? {
        c.api_key_sealed = Some(billing.seal(&c.client_name, c.id, "api_key", &key)?);
    }
    if let Some(secret) = text(&credentials, &["webhookSecret", "webhook_secret"], 1024)? {
        c.webhook_secret_sealed =
            Some(billing.seal(&c.client_name, c.id, "webhook_secret", &secret)?);
    }
    Ok(())
}

impl Handlers {
    /// `PATCH …/connections/{id}` (SDK) and `…/reconcile` (contract).
    async fn billing_patch(
        &self,
        client: &str,
        id: Uuid,
        body: Map<String, Value>,
    ) -> Result<Json<models::ApiSuccessEnvelope>, ApiError> {
        if body.contains_key("provider") {
            return Err(ApiError::invalid_parameter(
                "provider",
                "cannot change: create another connection",
            ));
        }
        let (tenant, mut c) = self.billing.live_connection(client, id).await?;
        apply(&self.billing, &mut c, &body)?;
        let updated = catalog::update(&tenant, &c)
            .await?
            .ok_or_else(|| DomainError::not_found("billing connection", id.to_string()))?;
        Ok(envelope(
            "Billing connection updated",
            one("connection", updated.to_json()),
        ))
    }

    /// `DELETE …/connections/{id}` (SDK) and `…/reconcile` (contract).
    async fn billing_delete(
        &self,
        client: &str,
        id: Uuid,
    ) -> Result<Json<models::ApiSuccessEnvelope>, ApiError> {
        let tenant = self.billing.tenant(client).await?;
        let deleted = catalog::soft_delete(&tenant, client, id)
            .await?
            .ok_or_else(|| DomainError::not_found("billing connection", id.to_string()))?;
        Ok(envelope(
            "Billing connection deleted",
            one("connection", deleted.to_json()),
        ))
    }
}

impl AdminBillingApi for Handlers {
    /// The sink blueprints provisioned (`admin/webhook_sinks.rs`).
    async fn post_admin_billing_clients_by_client_name_webhook_sinks_provision(
        &self,
        _cx: RequestCx,
        params: crate::api::params::PostAdminBillingClientsByClientNameWebhookSinksProvision,
        body: Option<models::PostAdminBillingClientsByClientNameWebhookSinksProvisionRequest>,
    ) -> crate::http::ApiResult<
        crate::api::responses::PostAdminBillingClientsByClientNameWebhookSinksProvision,
    > {
        self.sinks_billing_provision(params, body).await
    }

    async fn get_admin_billing_grants(
        &self,
        _cx: RequestCx,
    ) -> ApiResult<responses::GetAdminBillingGrants> {
        let data = match crate::billing::grant_catalog() {
            Value::Object(data) => data,
            other => one("grants", other),
        };
        Ok(responses::GetAdminBillingGrants::Ok(envelope(
            "Billing grant catalog",
            data,
        )))
    }

    async fn get_admin_billing_providers(
        &self,
        _cx: RequestCx,
    ) -> ApiResult<responses::GetAdminBillingProviders> {
        let providers = crate::billing::provider_catalog();
        let mut data = one("providers", providers);
        data.insert(
            "integration".into(),
            json!({
                "connectionsRoute": "/admin/billing/clients/{client_name}/connections",
                "webhookRoute": "/billing/providers/{provider}/clients/{client_name}/connections/{connection_id}/webhook",
                "grantsRoute": "/admin/billing/grants",
            }),
        );
        Ok(responses::GetAdminBillingProviders::Ok(envelope(
            "Billing providers",
            data,
        )))
    }

    async fn get_admin_billing_clients_by_client_name_webhook_events(
        &self,
        _cx: RequestCx,
        params: params::GetAdminBillingClientsByClientNameWebhookEvents,
    ) -> ApiResult<responses::GetAdminBillingClientsByClientNameWebhookEvents> {
        let limit = params.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(ApiError::invalid_parameter("limit", "must be 1-200"));
        }
        let offset = params.offset.unwrap_or(0);
        if offset < 0 {
            return Err(ApiError::invalid_parameter("offset", "must be 0 or more"));
        }
        let provider = match params.provider.as_deref() {
            None => None,
            Some(p) => Some(
                Provider::parse(p)
                    .ok_or_else(|| {
                        ApiError::invalid_parameter("provider", "must be `stripe` or `mollie`")
                    })?
                    .as_str(),
            ),
        };
        let tenant = self.billing.tenant(&params.client_name).await?;
        let (events, total) = catalog::list_events(
            &tenant,
            &params.client_name,
            params.connection_id,
            provider,
            limit,
            offset,
        )
        .await?;
        let mut data = one("events", Value::Array(events));
        data.insert("total".into(), json!(total));
        data.insert("limit".into(), json!(limit));
        data.insert("offset".into(), json!(offset));
        Ok(
            responses::GetAdminBillingClientsByClientNameWebhookEvents::Ok(envelope(
                "Billing webhook events",
                data,
            )),
        )
    }

    async fn get_admin_billing_clients_by_client_name_connections(
        &self,
        _cx: RequestCx,
        params: params::GetAdminBillingClientsByClientNameConnections,
    ) -> ApiResult<responses::GetAdminBillingClientsByClientNameConnections> {
        let provider = match params.provider.as_deref() {
            None => None,
            Some(p) => Some(
                Provider::parse(p)
                    .ok_or_else(|| {
                        ApiError::invalid_parameter("provider", "must be `stripe` or `mollie`")
                    })?
                    .as_str()
                    .to_string(),
            ),
        };
        let filter = catalog::Filter {
            owner_kind: params.owner_kind,
            owner_id: params.owner_id,
            provider,
            mode: params.mode,
            include_deleted: params.include_deleted.unwrap_or(false),
        };
        let tenant = self.billing.tenant(&params.client_name).await?;
        let rows = catalog::list(&tenant, &params.client_name, &filter).await?;
        let total = rows.len();
        let mut data = one(
            "connections",
            Value::Array(rows.iter().map(Connection::to_json).collect()),
        );
        data.insert("total".into(), json!(total));
        Ok(
            responses::GetAdminBillingClientsByClientNameConnections::Ok(envelope(
                format!("{total} billing connections"),
                data,
            )),
        )
    }

    async fn post_admin_billing_clients_by_client_name_connections(
        &self,
        _cx: RequestCx,
        params: params::PostAdminBillingClientsByClientNameConnections,
        body: models::PostAdminBillingClientsByClientNameConnectionsRequest,
    ) -> ApiResult<responses::PostAdminBillingClientsByClientNameConnections> {
        let body = body.0;
        let provider = text(&body, &["provider"], 32)?
            .ok_or_else(|| ApiError::missing_parameter("body field", "provider"))?;
        let provider = Provider::parse(&provider).ok_or_else(|| {
            ApiError::invalid_parameter("provider", "must be `stripe` or `mollie`")
        })?;
        let client = params.client_name.trim().to_string();
        let tenant = self.billing.tenant(&client).await?;
        let now = chrono::Utc::now();
        let mut c = Connection {
            id: Uuid::new_v4(),
            client_name: client,
            provider,
            provider_account_id: None,
            owner_kind: "client".into(),
            owner_id: None,
            mode: "test".into(),
            display_name: None,
            config: json!({}),
            scopes: Vec::new(),
            api_key_sealed: None,
            webhook_secret_sealed: None,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        apply(&self.billing, &mut c, &body)?;
        let created = catalog::insert(&tenant, &c).await?;
        Ok(
            responses::PostAdminBillingClientsByClientNameConnections::Ok(envelope(
                "Billing connection created",
                one("connection", created.to_json()),
            )),
        )
    }

    async fn get_admin_billing_clients_by_client_name_connections_by_connection_id(
        &self,
        _cx: RequestCx,
        params: params::GetAdminBillingClientsByClientNameConnectionsByConnectionId,
    ) -> ApiResult<responses::GetAdminBillingClientsByClientNameConnectionsByConnectionId> {
        let (_, c) = self
            .billing
            .live_connection(&params.client_name, params.connection_id)
            .await?;
        Ok(
            responses::GetAdminBillingClientsByClientNameConnectionsByConnectionId::Ok(envelope(
                "Billing connection",
                one("connection", c.to_json()),
            )),
        )
    }

    async fn post_admin_billing_clients_by_client_name_connections_by_connection_id_reconcile(
        &self,
        _cx: RequestCx,
        params: params::PostAdminBillingClientsByClientNameConnectionsByConnectionIdReconcile,
        body: models::PostAdminBillingClientsByClientNameConnectionsByConnectionIdReconcileRequest,
    ) -> ApiResult<responses::PostAdminBillingClientsByClientNameConnectionsByConnectionIdReconcile>
    {
        let Value::Object(body) =
            serde_json::to_value(&body).map_err(|e| DomainError::Internal(e.to_string()))?
        else {
            return Err(ApiError::bad_request("the body must be an object"));
        };
        let kind = text(&body, &["resourceKind", "resource_kind"], 32)?
            .ok_or_else(|| ApiError::missing_parameter("body field", "resourceKind"))?;
        let kind = Kind::parse(&kind).ok_or_else(|| {
            ApiError::invalid_parameter(
                "resourceKind",
                "must be payment, payment_link, subscription or invoice",
            )
        })?;
        let reference = text(&body, &["providerRef", "resourceId"], 255)?
            .ok_or_else(|| ApiError::missing_parameter("body field", "providerRef"))?;
        let customer = text(&body, &["providerCustomerRef", "customerId"], 255)?;
        let projected = self
            .billing
            .reconcile(
                &params.client_name,
                params.connection_id,
                kind,
                &reference,
                customer.as_deref(),
            )
            .await?;
        let projected = self.publish_billing(projected).await;
        Ok(
            responses::PostAdminBillingClientsByClientNameConnectionsByConnectionIdReconcile::Ok(
                envelope("Billing document reconciled", projected.into_data()),
            ),
        )
    }

    async fn patch_admin_billing_clients_by_client_name_connections_by_connection_id_reconcile(
        &self,
        _cx: RequestCx,
        params: params::PatchAdminBillingClientsByClientNameConnectionsByConnectionIdReconcile,
        body: models::PatchAdminBillingClientsByClientNameConnectionsByConnectionIdReconcileRequest,
    ) -> ApiResult<responses::PatchAdminBillingClientsByClientNameConnectionsByConnectionIdReconcile>
    {
        let out = self
            .billing_patch(&params.client_name, params.connection_id, body.0)
            .await?;
        Ok(
            responses::PatchAdminBillingClientsByClientNameConnectionsByConnectionIdReconcile::Ok(
                out,
            ),
        )
    }

    async fn delete_admin_billing_clients_by_client_name_connections_by_connection_id_reconcile(
        &self,
        _cx: RequestCx,
        params: params::DeleteAdminBillingClientsByClientNameConnectionsByConnectionIdReconcile,
    ) -> ApiResult<responses::DeleteAdminBillingClientsByClientNameConnectionsByConnectionIdReconcile>
    {
        let out = self
            .billing_delete(&params.client_name, params.connection_id)
            .await?;
        Ok(
            responses::DeleteAdminBillingClientsByClientNameConnectionsByConnectionIdReconcile::Ok(
                out,
            ),
        )
    }

    async fn patch_admin_billing_clients_by_client_name_connections_by_connection_id(
        &self,
        _cx: RequestCx,
        params: params::PatchAdminBillingClientsByClientNameConnectionsByConnectionId,
        body: models::PatchAdminBillingClientsByClientNameConnectionsByConnectionIdRequest,
    ) -> ApiResult<responses::PatchAdminBillingClientsByClientNameConnectionsByConnectionId> {
        let out = self
            .billing_patch(&params.client_name, params.connection_id, body.0)
            .await?;
        Ok(responses::PatchAdminBillingClientsByClientNameConnectionsByConnectionId::Ok(out))
    }

    async fn delete_admin_billing_clients_by_client_name_connections_by_connection_id(
        &self,
        _cx: RequestCx,
        params: params::DeleteAdminBillingClientsByClientNameConnectionsByConnectionId,
    ) -> ApiResult<responses::DeleteAdminBillingClientsByClientNameConnectionsByConnectionId> {
        let out = self
            .billing_delete(&params.client_name, params.connection_id)
            .await?;
        Ok(responses::DeleteAdminBillingClientsByClientNameConnectionsByConnectionId::Ok(out))
    }
}
