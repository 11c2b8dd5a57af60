//! `admin_webhooks`: gateway webhooks (`/admin/webhooks*`, issue 15;
//! `src/catalog/webhooks.rs`, delivery in `src/events/`). The family also
//! holds `/admin/webhook-sinks*` (the same trait): those methods forward to
//! `webhook_sinks.rs`.

use crate::api::{models, params, responses, traits::AdminWebhooksApi};
use crate::catalog::webhooks::{self, Changes};
use crate::domain::DomainError;
use crate::handlers::Handlers;
use crate::http::payload::Json;
use crate::http::{ApiResult, RequestCx};
use serde_json::{json, Map, Value};

/// Default and largest page of the list routes.
const PAGE: i64 = 50;
const MAX_PAGE: i64 = 500;

impl AdminWebhooksApi for Handlers {
    async fn get_admin_webhooks(
        &self,
        _cx: RequestCx,
        params: params::GetAdminWebhooks,
    ) -> ApiResult<responses::GetAdminWebhooks> {
        let (limit, offset) = page(params.limit, params.offset)?;
        let client = params.client_name.as_deref().filter(|c| !c.is_empty());
        let (hooks, total) = webhooks::list(self.tenants.catalog(), client, limit, offset).await?;
        let list: Vec<Value> = hooks.iter().map(|h| h.to_json()).collect();
        let data = json!({"webhooks": list, "total": total, "limit": limit, "offset": offset});
        Ok(responses::GetAdminWebhooks::Ok(envelope(
            &format!("{} webhooks", list.len()),
            data,
        )))
    }

    async fn post_admin_webhooks(
        &self,
        _cx: RequestCx,
        body: models::PostAdminWebhooksRequest,
    ) -> ApiResult<responses::PostAdminWebhooks> {
        let changes = self.changes(&body.0).await?;
        let saved = webhooks::save(
            self.tenants.catalog(),
            self.config.secrets.as_ref(),
            &changes,
            changes.id,
        )
        .await?
        .ok_or_else(|| not_found(changes.id.unwrap_or_default()))?;
        // This replica at once; the others through the notification.
        self.events.invalidate();
        Ok(responses::PostAdminWebhooks::Ok(envelope(
            "Webhook saved",
            saved.to_json(),
        )))
    }

    async fn get_admin_webhooks_events(
        &self,
        _cx: RequestCx,
    ) -> ApiResult<responses::GetAdminWebhooksEvents> {
        Ok(responses::GetAdminWebhooksEvents::Ok(envelope(
            "Webhook events",
            crate::events::catalog(),
        )))
    }

    async fn get_admin_webhooks_by_id(
        &self,
        _cx: RequestCx,
        params: params::GetAdminWebhooksById,
    ) -> ApiResult<responses::GetAdminWebhooksById> {
        let hook = webhooks::get(self.tenants.catalog(), params.id)
            .await?
            .ok_or_else(|| not_found(params.id))?;
        Ok(responses::GetAdminWebhooksById::Ok(envelope(
            "Webhook",
            hook.to_json(),
        )))
    }

    async fn delete_admin_webhooks_by_id(
        &self,
        _cx: RequestCx,
        params: params::DeleteAdminWebhooksById,
    ) -> ApiResult<responses::DeleteAdminWebhooksById> {
        let hook = webhooks::delete(self.tenants.catalog(), params.id)
            .await?
            .ok_or_else(|| not_found(params.id))?;
        self.events.invalidate();
        Ok(responses::DeleteAdminWebhooksById::Ok(envelope(
            "Webhook deleted",
            hook.to_json(),
        )))
    }

    async fn patch_admin_webhooks_by_id(
        &self,
        _cx: RequestCx,
        params: params::PatchAdminWebhooksById,
        body: models::PatchAdminWebhooksByIdRequest,
    ) -> ApiResult<responses::PatchAdminWebhooksById> {
        let changes = self.changes(&body.0).await?;
        if changes.id.is_some_and(|id| id != params.id) {
            return Err(DomainError::invalid_field("id", "cannot be changed").into());
        }
        let saved = webhooks::save(
            self.tenants.catalog(),
            self.config.secrets.as_ref(),
            &changes,
            Some(params.id),
        )
        .await?
        .ok_or_else(|| not_found(params.id))?;
        self.events.invalidate();
        Ok(responses::PatchAdminWebhooksById::Ok(envelope(
            "Webhook updated",
            saved.to_json(),
        )))
    }

    async fn get_admin_webhooks_by_id_deliveries(
        &self,
        _cx: RequestCx,
        params: params::GetAdminWebhooksByIdDeliveries,
    ) -> ApiResult<responses::GetAdminWebhooksByIdDeliveries> {
        let (limit, offset) = page(params.limit, params.offset)?;
        let catalog = self.tenants.catalog();
        webhooks::get(catalog, params.id)
            .await?
            .ok_or_else(|| not_found(params.id))?;
        let (rows, total) = webhooks::deliveries(catalog, params.id, limit, offset).await?;
        let data = json!({"deliveries": rows, "total": total, "limit": limit, "offset": offset});
        Ok(responses::GetAdminWebhooksByIdDeliveries::Ok(envelope(
            "Webhook deliveries",
            data,
        )))
    }

    async fn post_admin_webhooks_by_id_test(
        &self,
        _cx: RequestCx,
        params: params::PostAdminWebhooksByIdTest,
        body: models::PostAdminWebhooksByIdTestRequest,
    ) -> ApiResult<responses::PostAdminWebhooksByIdTest> {
        let data = match body.0.get("data") {
            None | Some(Value::Null) => None,
            Some(v @ Value::Object(_)) => Some(v.clone()),
            Some(_) => return Err(DomainError::invalid_field("data", "must be an object").into()),
        };
        let outcome = self
            .webhooks
            .test(params.id, data)
            .await?
            .ok_or_else(|| not_found(params.id))?;
        let message = match outcome["delivered"].as_bool() {
            Some(true) => "Test event delivered",
            _ => "Test event not delivered",
        };
        Ok(responses::PostAdminWebhooksByIdTest::Ok(envelope(
            message, outcome,
        )))
    }

    // --- Webhook sinks (`/admin/webhook-sinks*`): implemented in
    // `webhook_sinks.rs` (one impl block per trait, so these forward). ---

    async fn get_admin_webhook_sinks(
        &self,
        _cx: RequestCx,
        params: params::GetAdminWebhookSinks,
    ) -> ApiResult<responses::GetAdminWebhookSinks> {
        self.sinks_list(params).await
    }

    async fn post_admin_webhook_sinks(
        &self,
        _cx: RequestCx,
        body: models::PostAdminWebhookSinksRequest,
    ) -> ApiResult<responses::PostAdminWebhookSinks> {
        self.sinks_post(body).await
    }

    async fn get_admin_webhook_sinks_events(
        &self,
        _cx: RequestCx,
    ) -> ApiResult<responses::GetAdminWebhookSinksEvents> {
        self.sinks_events().await
    }

    async fn get_admin_webhook_sinks_helpers_billing(
        &self,
        _cx: RequestCx,
        params: params::GetAdminWebhookSinksHelpersBilling,
    ) -> ApiResult<responses::GetAdminWebhookSinksHelpersBilling> {
        self.sinks_billing_helpers(params).await
    }

    async fn get_admin_webhook_sinks_by_id(
        &self,
        _cx: RequestCx,
        params: params::GetAdminWebhookSinksById,
    ) -> ApiResult<responses::GetAdminWebhookSinksById> {
        self.sinks_get(params).await
    }

    async fn patch_admin_webhook_sinks_by_id(
        &self,
        _cx: RequestCx,
        params: params::PatchAdminWebhookSinksById,
        body: models::PatchAdminWebhookSinksByIdRequest,
    ) -> ApiResult<responses::PatchAdminWebhookSinksById> {
        self.sinks_patch(params, body).await
    }

    async fn delete_admin_webhook_sinks_by_id(
        &self,
        _cx: RequestCx,
        params: params::DeleteAdminWebhookSinksById,
    ) -> ApiResult<responses::DeleteAdminWebhookSinksById> {
        self.sinks_delete(params).await
    }

    async fn get_admin_webhook_sinks_by_id_deliveries(
        &self,
        _cx: RequestCx,
        params: params::GetAdminWebhookSinksByIdDeliveries,
    ) -> ApiResult<responses::GetAdminWebhookSinksByIdDeliveries> {
        self.sinks_deliveries(params).await
    }

    async fn post_admin_webhook_sinks_by_id_test(
        &self,
        _cx: RequestCx,
        params: params::PostAdminWebhookSinksByIdTest,
        body: models::PostAdminWebhookSinksByIdTestRequest,
    ) -> ApiResult<responses::PostAdminWebhookSinksByIdTest> {
        self.sinks_test(params, body).await
    }
}

impl Handlers {
    /// A webhook body, its URL checked against the outbound policy.
    async fn changes(&self, body: &Map<String, Value>) -> Result<Changes, DomainError> {
        let mut changes = Changes::parse(body, self.config.admin_key.as_deref())?;
        if let Some(url) = &changes.url {
            changes.url = Some(webhooks::check_url(&self.outbound, url).await?);
        }
        Ok(changes)
    }
}

pub(super) fn page(limit: Option<i64>, offset: Option<i64>) -> Result<(i64, i64), DomainError> {
    let limit = match limit {
        None => PAGE,
        Some(n) if (1..=MAX_PAGE).contains(&n) => n,
        Some(_) => {
            return Err(DomainError::invalid_field(
                "limit",
                format!("must be from 1 to {MAX_PAGE}"),
            ))
        }
    };
    let offset = match offset {
        None => 0,
        Some(n) if n >= 0 => n,
        Some(_) => return Err(DomainError::invalid_field("offset", "must not be negative")),
    };
    Ok((limit, offset))
}

fn not_found(id: i64) -> DomainError {
    DomainError::not_found("webhook", id.to_string())
}

/// The standard success envelope around `data` (an object).
pub(super) fn envelope(message: &str, data: Value) -> Json<models::ApiSuccessEnvelope> {
    let data = match data {
        Value::Object(m) => m,
        other => Map::from_iter([("value".to_string(), other)]),
    };
    Json::new(models::ApiSuccessEnvelope {
        status: models::ApiSuccessEnvelopeStatus::Success,
        message: message.into(),
        data,
    })
}
