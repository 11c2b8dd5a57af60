//! Webhook sinks (`/admin/webhook-sinks*` and
//! `POST /admin/billing/clients/{client_name}/webhook-sinks/provision`,
//! issue 15). The routes belong to the `admin_webhooks` and `admin_billing`
//! traits, whose impls are one block each; those methods call the inherent
//! methods here. Catalog access in `src/catalog/webhook_sinks.rs`, the
//! projection and delivery in `src/events/sinks.rs`, the billing
//! blueprints in `src/events/sink_billing.rs`.

use super::webhooks::{envelope, page};
use crate::api::{models, params, responses};
use crate::catalog::webhook_sinks::{self, Changes, Sink};
use crate::domain::DomainError;
use crate::events::sink_billing::{self, Scope};
use crate::events::sinks::{self, Sinks};
use crate::handlers::Handlers;
use crate::http::ApiResult;
use serde_json::{json, Map, Value};

fn not_found(id: i64) -> DomainError {
    DomainError::not_found("webhook sink", id.to_string())
}

impl Handlers {
    fn sinks(&self) -> Sinks {
        Sinks::new(self.tenants.catalog().clone(), self.gateway.clone())
    }

    /// Applies `changes` to the sink `id` (or a new one), checks the target
    /// against its schema and stores it; `None` for an unknown id.
    async fn save_sink(
        &self,
        changes: &Changes,
        id: Option<i64>,
    ) -> Result<Option<(Sink, bool)>, DomainError> {
        let catalog = self.tenants.catalog();
        let old = match id {
            Some(id) => match webhook_sinks::get(catalog, id).await? {
                Some(old) => Some(old),
                None => return Ok(None),
            },
            None => None,
        };
        let sink = changes.merged(old.as_ref())?;
        sinks::check_target(&self.gateway, &sink).await?;
        let saved = webhook_sinks::store(catalog, &sink).await?;
        // This replica at once; the others through the notification.
        self.events.invalidate();
        Ok(saved)
    }

    pub(super) async fn sinks_list(
        &self,
        params: params::GetAdminWebhookSinks,
    ) -> ApiResult<responses::GetAdminWebhookSinks> {
        let (limit, offset) = page(params.limit, params.offset)?;
        let client = params.client_name.as_deref().filter(|c| !c.is_empty());
        let (rows, total) =
            webhook_sinks::list(self.tenants.catalog(), client, limit, offset).await?;
        let list: Vec<Value> = rows.iter().map(Sink::to_json).collect();
        let data = json!({"sinks": list, "webhook_sinks": list, "total": total,
            "limit": limit, "offset": offset});
        Ok(responses::GetAdminWebhookSinks::Ok(envelope(
            &format!("{} webhook sinks", list.len()),
            data,
        )))
    }

    pub(super) async fn sinks_post(
        &self,
        body: models::PostAdminWebhookSinksRequest,
    ) -> ApiResult<responses::PostAdminWebhookSinks> {
        let changes = Changes::parse(&body.0)?;
        let (saved, _) = self
            .save_sink(&changes, changes.id)
            .await?
            .ok_or_else(|| not_found(changes.id.unwrap_or_default()))?;
        Ok(responses::PostAdminWebhookSinks::Ok(envelope(
            "Webhook sink saved",
            saved.to_json(),
        )))
    }

    pub(super) async fn sinks_events(&self) -> ApiResult<responses::GetAdminWebhookSinksEvents> {
        Ok(responses::GetAdminWebhookSinksEvents::Ok(envelope(
            "Webhook sink events",
            crate::events::catalog(),
        )))
    }

    pub(super) async fn sinks_get(
        &self,
        params: params::GetAdminWebhookSinksById,
    ) -> ApiResult<responses::GetAdminWebhookSinksById> {
        let sink = webhook_sinks::get(self.tenants.catalog(), params.id)
            .await?
            .ok_or_else(|| not_found(params.id))?;
        Ok(responses::GetAdminWebhookSinksById::Ok(envelope(
            "Webhook sink",
            sink.to_json(),
        )))
    }

    pub(super) async fn sinks_patch(
        &self,
        params: params::PatchAdminWebhookSinksById,
        body: models::PatchAdminWebhookSinksByIdRequest,
    ) -> ApiResult<responses::PatchAdminWebhookSinksById> {
        let changes = Changes::parse(&body.0)?;
        if changes.id.is_some_and(|id| id != params.id) {
            return Err(DomainError::invalid_field("id", "cannot be changed").into());
        }
        let (saved, _) = self
            .save_sink(&changes, Some(params.id))
            .await?
            .ok_or_else(|| not_found(params.id))?;
        Ok(responses::PatchAdminWebhookSinksById::Ok(envelope(
            "Webhook sink updated",
            saved.to_json(),
        )))
    }

    pub(super) async fn sinks_delete(
        &self,
        params: params::DeleteAdminWebhookSinksById,
    ) -> ApiResult<responses::DeleteAdminWebhookSinksById> {
        let sink = webhook_sinks::delete(self.tenants.catalog(), params.id)
            .await?
            .ok_or_else(|| not_found(params.id))?;
        self.events.invalidate();
        Ok(responses::DeleteAdminWebhookSinksById::Ok(envelope(
            "Webhook sink deleted",
            sink.to_json(),
        )))
    }

    pub(super) async fn sinks_deliveries(
        &self,
        params: params::GetAdminWebhookSinksByIdDeliveries,
    ) -> ApiResult<responses::GetAdminWebhookSinksByIdDeliveries> {
        let (limit, offset) = page(params.limit, params.offset)?;
        let catalog = self.tenants.catalog();
        webhook_sinks::get(catalog, params.id)
            .await?
            .ok_or_else(|| not_found(params.id))?;
        let (rows, total) = webhook_sinks::deliveries(catalog, params.id, limit, offset).await?;
        let data = json!({"deliveries": rows, "total": total, "limit": limit, "offset": offset});
        Ok(responses::GetAdminWebhookSinksByIdDeliveries::Ok(envelope(
            "Webhook sink deliveries",
            data,
        )))
    }

    pub(super) async fn sinks_test(
        &self,
        params: params::PostAdminWebhookSinksByIdTest,
        body: models::PostAdminWebhookSinksByIdTestRequest,
    ) -> ApiResult<responses::PostAdminWebhookSinksByIdTest> {
        let data = match body.0.get("data") {
            None | Some(Value::Null) => None,
            Some(v @ Value::Object(_)) => Some(v.clone()),
            Some(_) => return Err(DomainError::invalid_field("data", "must be an object").into()),
        };
        let outcome = self
            .sinks()
            .test(params.id, data)
            .await?
            .ok_or_else(|| not_found(params.id))?;
        let message = match outcome["ok"].as_bool() {
            Some(true) => "Test projection written and rolled back",
            _ => "Test projection failed",
        };
        Ok(responses::PostAdminWebhookSinksByIdTest::Ok(envelope(
            message, outcome,
        )))
    }

    pub(super) async fn sinks_billing_helpers(
        &self,
        params: params::GetAdminWebhookSinksHelpersBilling,
    ) -> ApiResult<responses::GetAdminWebhookSinksHelpersBilling> {
        let source = params
            .client_name
            .clone()
            .or(params.instance.clone())
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                DomainError::invalid_field("client_name", "is required (or `instance`)")
            })?;
        let get = |k: &str| match k {
            "target_client_name" => params.target_client_name.clone(),
            "targetSchema" => params.target_schema_query.clone(),
            "target_schema" => params.target_schema.clone(),
            "athenaBaseUrl" => params.athena_base_url_query.clone(),
            "athena_base_url" => params.athena_base_url.clone(),
            _ => None,
        };
        let scope = Scope::from_fields(&source, &get)?;
        Ok(responses::GetAdminWebhookSinksHelpersBilling::Ok(envelope(
            "Billing webhook sink helpers",
            sink_billing::helpers(&scope),
        )))
    }

    /// Creates the target tables (`CREATE … IF NOT EXISTS`) and upserts
    /// the three billing sinks by name; a second call changes nothing.
    pub(crate) async fn sinks_billing_provision(
        &self,
        params: params::PostAdminBillingClientsByClientNameWebhookSinksProvision,
        body: Option<models::PostAdminBillingClientsByClientNameWebhookSinksProvisionRequest>,
    ) -> ApiResult<responses::PostAdminBillingClientsByClientNameWebhookSinksProvision> {
        let body = body.map(|b| b.0).unwrap_or_default();
        let source = params.client_name.trim().to_string();
        let catalog = self.tenants.catalog();
        if crate::catalog::clients::get(catalog, &source)
            .await?
            .is_none()
        {
            return Err(DomainError::not_found("client", source).into());
        }
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
        let scope = Scope::from_fields(&source, &text)?;
        let create_tables = match body
            .get("createTables")
            .or_else(|| body.get("create_tables"))
        {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(DomainError::invalid_field("createTables", "must be a boolean").into())
            }
        };
        if create_tables {
            let tenant = self
                .gateway
                .tenant(Some(&scope.target_client))
                .await
                .map_err(|e| match e {
                    DomainError::NotFound { .. } => DomainError::invalid_field(
                        "targetClientName",
                        format!("`{}` is not a registered client", scope.target_client),
                    ),
                    other => other,
                })?;
            sink_billing::create_tables(&tenant, &scope).await?;
        }
        let (mut created, mut updated, mut unchanged) = (0, 0, 0);
        let mut saved = Vec::new();
        for b in sink_billing::BLUEPRINTS {
            let create = b.create_body(&scope);
            let changes = Changes::parse(create.as_object().expect("an object"))?;
            let old = webhook_sinks::by_name(catalog, &source, b.name).await?;
            let (sink, changed) = self
                .save_sink(&changes, old.as_ref().map(|o| o.id))
                .await?
                .ok_or_else(|| {
                    DomainError::Conflict(format!("sink `{}` changed meanwhile", b.name))
                })?;
            match (old.is_some(), changed) {
                (false, _) => created += 1,
                (true, true) => updated += 1,
                (true, false) => unchanged += 1,
            }
            saved.push(sink.to_json());
        }
        let mut data = match sink_billing::helpers(&scope) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        data.insert("sinks".into(), json!(saved));
        data.insert("created".into(), json!(created));
        data.insert("updated".into(), json!(updated));
        data.insert("unchanged".into(), json!(unchanged));
        data.insert("tablesCreated".into(), json!(create_tables));
        Ok(
            responses::PostAdminBillingClientsByClientNameWebhookSinksProvision::Ok(envelope(
                "Billing webhook sinks provisioned",
                Value::Object(data),
            )),
        )
    }
}
