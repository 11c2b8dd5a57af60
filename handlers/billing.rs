//! `billing`: the provider webhook route. No API key: the connection's
//! provider authenticates it (Stripe: `Stripe-Signature` over the raw body;
//! Mollie: the posted id is read back from its API with the stored key).
//! See `src/billing/`.

use crate::api::{models, params, responses, traits::BillingApi};
use crate::handlers::Handlers;
use crate::http::payload::Json;
use crate::http::{ApiResult, RequestCx};

impl BillingApi for Handlers {
    async fn post_billing_providers_by_provider_clients_by_client_name_connections_by_connection_id_webhook(
        &self,
        cx: RequestCx,
        params: params::PostBillingProvidersByProviderClientsByClientNameConnectionsByConnectionIdWebhook,
        _body: models::PostBillingProvidersByProviderClientsByClientNameConnectionsByConnectionIdWebhookRequest,
    ) -> ApiResult<
        responses::PostBillingProvidersByProviderClientsByClientNameConnectionsByConnectionIdWebhook,
    >{
        // The signature covers the bytes as sent, not the parsed body.
        let projected = self
            .billing
            .ingest(
                &params.provider,
                &params.client_name,
                params.connection_id,
                cx.headers(),
                cx.body(),
            )
            .await?;
        let projected = self.publish_billing(projected).await;
        let message = if projected.replayed {
            "Billing webhook already handled"
        } else {
            "Billing webhook processed"
        };
        Ok(
            responses::PostBillingProvidersByProviderClientsByClientNameConnectionsByConnectionIdWebhook::Ok(
                Json::new(models::ApiSuccessEnvelope {
                    data: projected.into_data(),
                    message: message.into(),
                    status: models::ApiSuccessEnvelopeStatus::Success,
                }),
            ),
        )
    }
}

impl Handlers {
    /// Publishes the `billing.upsert` event of a committed billing row
    /// (webhook ingest and reconcile), so sinks and webhooks on the billing
    /// tables fire. The row is committed already: a catalog that cannot
    /// queue the event is logged, and the provider's delivery still
    /// answered as handled (a retry would be a replay and change nothing).
    pub(super) async fn publish_billing(
        &self,
        mut projected: crate::billing::Projected,
    ) -> crate::billing::Projected {
        if let Some(event) = projected.event.take() {
            if let Err(e) = self.events.publish(&event).await {
                tracing::error!(event = %event.event_id, client = %event.client_name, error = %e,
                    "a committed billing row's event could not be queued");
            }
        }
        projected
    }
}
