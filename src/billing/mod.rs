//! Billing-provider ingestion (issue 15): provider connections of a client,
//! Stripe/Mollie webhooks projected into canonical billing documents, and
//! reconciles that refetch one provider resource. Tables: the tenant schema
//! `billing` (`migrations/tenant/0008_billing.sql`), migrated with the rest
//! of the tenant set on first use. Credentials are sealed with
//! `src/secrets.rs` (associated data: client, connection, field) and never
//! returned; provider calls go through `src/outbound.rs`.

pub mod catalog;
pub mod providers;

use crate::db::tenants::{Tenant, Tenants};
use crate::domain::DomainError;
use crate::http::{ApiError, Code};
use crate::outbound::OutboundPolicy;
use crate::secrets::Secrets;
use providers::{Document, Kind, Provider, ProviderApi};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use uuid::Uuid;

/// The billing service of the handlers.
pub struct Billing {
    pub tenants: Arc<Tenants>,
    pub secrets: Option<Secrets>,
    pub outbound: Arc<OutboundPolicy>,
    pub api: ProviderApi,
    /// `ATHENA_AUTH_URL` is configured (the grant sync could be sent).
    pub auth_configured: bool,
}

/// A connection row (credentials stay sealed in the row; `Billing::open`
/// reads them for the provider calls).
#[derive(Debug, Clone)]
pub struct Connection {
    pub id: Uuid,
    pub client_name: String,
    pub provider: Provider,
    pub provider_account_id: Option<String>,
    pub owner_kind: String,
    pub owner_id: Option<String>,
    pub mode: String,
    pub display_name: Option<String>,
    pub config: Value,
    pub scopes: Vec<String>,
    pub api_key_sealed: Option<Vec<u8>>,
    pub webhook_secret_sealed: Option<Vec<u8>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub deleted_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// What a connection can do, derived from its provider and credentials.
fn capabilities(c: &Connection) -> Value {
    let api = c.api_key_sealed.is_some();
    let verify = match c.provider {
        Provider::Stripe => c.webhook_secret_sealed.is_some(),
        Provider::Mollie => api,
    };
    json!({
        "webhookIngest": verify,
        "webhookVerification": match c.provider {
            Provider::Stripe => "stripe_signature",
            Provider::Mollie => "refetch",
        },
        "reconcile": api,
        "resourceKinds": Kind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
    })
}

/// The public route a provider posts the connection's webhooks to.
pub fn webhook_path(c: &Connection) -> String {
    format!(
        "/billing/providers/{}/clients/{}/connections/{}/webhook",
        c.provider.as_str(),
        c.client_name,
        c.id
    )
}

impl Connection {
    /// The connection as answered (camelCase; never a credential).
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "clientName": self.client_name,
            "provider": self.provider.as_str(),
            "providerAccountId": self.provider_account_id,
            "ownerKind": self.owner_kind,
            "ownerId": self.owner_id,
            "mode": self.mode,
            "displayName": self.display_name,
            "config": self.config,
            "scopes": self.scopes,
            "hasApiKey": self.api_key_sealed.is_some(),
            "hasWebhookSecret": self.webhook_secret_sealed.is_some(),
            "status": if self.deleted_at.is_some() { "deleted" } else { "active" },
            "capabilities": capabilities(self),
            "webhookPath": webhook_path(self),
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "deletedAt": self.deleted_at,
        })
    }

    /// `config.api_base_url` (or `apiBaseUrl`), else the provider's.
    pub fn api_base_url(&self) -> String {
        self.config
            .get("api_base_url")
            .or_else(|| self.config.get("apiBaseUrl"))
            .and_then(Value::as_str)
            .unwrap_or(self.provider.default_api_base_url())
            .to_string()
    }
}

/// The outcome of an ingest or reconcile.
pub struct Projected {
    pub document: Value,
    pub event_log_id: Option<Uuid>,
    pub replayed: bool,
    pub auth_grant_sync: Value,
    pub auth_sync_result: Value,
    /// The `billing.upsert` event of the row this changed (none for a
    /// replay or an older observation): published by the handler once
    /// the row is committed.
    pub event: Option<crate::events::Event>,
}

/// The event of a committed billing row (`billing.upsert`, the route key
/// the `helpers/billing` sink blueprints follow).
fn row_event(client: &str, kind: Kind, row: Value, event_type: &str) -> crate::events::Event {
    crate::events::Event::now(
        crate::events::sink_billing::ROUTE_KEY,
        client,
        Some(kind.table().to_string()),
        json!({"operation": "upsert", "rows": [row], "affected": 1, "event_type": event_type}),
    )
}

impl Projected {
    pub fn into_data(self) -> Map<String, Value> {
        let mut data = Map::new();
        data.insert("document".into(), self.document);
        data.insert("auth_grant_sync".into(), self.auth_grant_sync);
        data.insert("auth_sync_result".into(), self.auth_sync_result);
        data.insert("eventLogId".into(), json!(self.event_log_id));
        data.insert("replayed".into(), json!(self.replayed));
        data
    }
}

/// The grant keys a document holds for its owner while it is in good
/// standing (`GET /admin/billing/grants` lists them).
fn grants_of(doc: &Document) -> Vec<&'static str> {
    let status = doc.status.as_deref().unwrap_or_default();
    match doc.kind {
        Kind::Payment if matches!(status, "paid" | "succeeded") => vec!["billing.payment.paid"],
        Kind::Subscription if matches!(status, "active" | "trialing") => {
            vec!["billing.subscription.active"]
        }
        Kind::Invoice if status == "paid" => vec!["billing.invoice.paid"],
        _ => vec![],
    }
}

fn upstream(detail: impl Into<String>) -> ApiError {
    ApiError::new(
        Code::UpstreamFailed,
        "Billing provider request failed",
        detail.into(),
    )
}

impl Billing {
    /// The tenant of `client`, its tables (billing's included) migrated.
    pub async fn tenant(&self, client: &str) -> Result<Arc<Tenant>, DomainError> {
        let tenant = self.tenants.resolve(client.trim()).await?;
        crate::db::migrate::tenant(&tenant).await.map_err(|e| {
            tracing::warn!(client = %tenant.name, error = ?e, "tenant billing tables unavailable");
            DomainError::ServiceUnavailable(format!(
                "the billing tables of client `{}` are unavailable (its database could not be prepared)",
                tenant.name
            ))
        })?;
        Ok(tenant)
    }

    pub fn secrets(&self) -> Result<&Secrets, DomainError> {
        self.secrets.as_ref().ok_or_else(|| {
            DomainError::ServiceUnavailable(
                "billing credentials cannot be stored: ATHENA_SECRET_KEY is not set".into(),
            )
        })
    }

    fn seal_context(client: &str, id: Uuid, field: &str) -> String {
        format!("billing_connection:{client}:{id}:{field}")
    }

    pub fn seal(
        &self,
        client: &str,
        id: Uuid,
        field: &str,
        plain: &str,
    ) -> Result<Vec<u8>, DomainError> {
        self.secrets()?
            .seal(&Self::seal_context(client, id, field), plain)
    }

    fn open(&self, c: &Connection, field: &str, sealed: Option<&[u8]>) -> Result<String, ApiError> {
        let sealed = sealed.ok_or_else(|| {
            ApiError::bad_request(format!("billing connection {} has no {field} stored", c.id))
        })?;
        Ok(self
            .secrets()?
            .open(&Self::seal_context(&c.client_name, c.id, field), sealed)?)
    }

    /// A connection of `client` that is not deleted, or 404.
    pub async fn live_connection(
        &self,
        client: &str,
        id: Uuid,
    ) -> Result<(Arc<Tenant>, Connection), ApiError> {
        let tenant = self.tenant(client).await?;
        let found = catalog::get(&tenant, client, id).await?;
        match found {
            Some(c) if c.deleted_at.is_none() => Ok((tenant, c)),
            _ => Err(DomainError::not_found("billing connection", id.to_string()).into()),
        }
    }

    fn auth_sync(&self, c: &Connection, doc: &Document) -> (Value, Value) {
        let grant = json!({
            "ownerKind": c.owner_kind,
            "ownerId": c.owner_id,
            "source": {"provider": c.provider.as_str(), "connectionId": c.id,
                       "kind": doc.kind.as_str(), "providerRef": doc.provider_ref},
            "grantKeys": grants_of(doc),
            "providerCustomerId": doc.customer_ref,
            "providerSubscriptionId": doc.subscription_ref,
        });
        let result = if self.auth_configured {
            json!({"status": "skipped", "reason": "inline Athena Auth sync is not enabled on this gateway; apply auth_grant_sync"})
        } else {
            json!({"status": "skipped", "reason": "ATHENA_AUTH_URL is not set"})
        };
        (grant, result)
    }

    /// `POST /billing/providers/{provider}/clients/{client}/connections/{id}/webhook`.
    pub async fn ingest(
        &self,
        provider: &str,
        client: &str,
        id: Uuid,
        headers: &http::HeaderMap,
        raw: &[u8],
    ) -> Result<Projected, ApiError> {
        let named = Provider::parse(provider).ok_or_else(|| {
            ApiError::invalid_parameter("provider", "must be `stripe` or `mollie`")
        })?;
        let (tenant, conn) = self.live_connection(client, id).await?;
        if conn.provider != named {
            return Err(ApiError::bad_request(format!(
                "billing connection {id} belongs to provider `{}`, not `{}`",
                conn.provider.as_str(),
                named.as_str()
            )));
        }
        let body: Value = serde_json::from_slice(raw)
            .map_err(|_| ApiError::bad_request("the webhook body is not JSON"))?;
        let (event_id, event_type, doc) = match conn.provider {
            Provider::Stripe => {
                let secret = self
                    .open(
                        &conn,
                        "webhook_secret",
                        conn.webhook_secret_sealed.as_deref(),
                    )
                    .map_err(|_| {
                        ApiError::unauthorized(
                            "the connection has no webhook secret to verify Stripe-Signature with",
                        )
                    })?;
                let header = headers
                    .get("stripe-signature")
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| {
                        ApiError::unauthorized("the Stripe-Signature header is missing")
                    })?;
                providers::verify_stripe(header, raw, &secret, chrono::Utc::now().timestamp())
                    .map_err(ApiError::unauthorized)?;
                let event_id = body.get("id").and_then(Value::as_str).ok_or_else(|| {
                    ApiError::new(
                        Code::Unprocessable,
                        "Billing event not projected",
                        "the Stripe event has no `id`",
                    )
                })?;
                let event_type = body
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown");
                let object = body.pointer("/data/object").ok_or_else(|| {
                    ApiError::new(
                        Code::Unprocessable,
                        "Billing event not projected",
                        "the Stripe event has no `data.object`",
                    )
                })?;
                (
                    event_id.to_string(),
                    event_type.to_string(),
                    providers::project_stripe(object)?,
                )
            }
            Provider::Mollie => {
                // Mollie signs nothing: it posts a resource id, and the
                // resource is read back from its API with the stored key.
                let rid = body
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ApiError::bad_request("the Mollie webhook carries no `id`"))?;
                let kind = providers::mollie_kind_of(rid).ok_or_else(|| {
                    ApiError::new(
                        Code::Unprocessable,
                        "Billing event not projected",
                        "the Mollie id names no projected resource kind",
                    )
                })?;
                if kind == Kind::Subscription {
                    return Err(ApiError::new(Code::Unprocessable, "Billing event not projected", "Mollie subscription ids need a customer: reconcile them with providerCustomerRef"));
                }
                let key = self.open(&conn, "api_key", conn.api_key_sealed.as_deref())?;
                let object = self
                    .api
                    .fetch(conn.provider, &conn.api_base_url(), &key, kind, rid, None)
                    .await?;
                let doc = providers::project_mollie(&object)?;
                if doc.provider_ref != rid {
                    return Err(upstream("the Mollie API answered another resource"));
                }
                let status = doc.status.clone().unwrap_or_default();
                (
                    format!("{rid}:{status}"),
                    format!("{}.{status}", kind.as_str()),
                    doc,
                )
            }
        };
        // Stripe events say when they happened; a refetch is current.
        let observed_at = body
            .get("created")
            .and_then(Value::as_i64)
            .filter(|_| conn.provider == Provider::Stripe)
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .unwrap_or_else(chrono::Utc::now);
        let document = doc.to_json(conn.provider);
        let (grant, result) = self.auth_sync(&conn, &doc);
        let handled = catalog::Handled {
            event_id: &event_id,
            event_type: &event_type,
            payload: &body,
            observed_at,
        };
        let (event_log_id, replayed, changed) =
            catalog::record_event(&tenant, &conn, &handled, &doc, &document).await?;
        Ok(Projected {
            document,
            event_log_id: Some(event_log_id),
            replayed,
            auth_grant_sync: grant,
            auth_sync_result: result,
            event: changed.map(|row| row_event(client, doc.kind, row, &event_type)),
        })
    }

    /// `POST …/connections/{id}/reconcile`: refetch one resource, upsert it.
    pub async fn reconcile(
        &self,
        client: &str,
        id: Uuid,
        kind: Kind,
        provider_ref: &str,
        customer_ref: Option<&str>,
    ) -> Result<Projected, ApiError> {
        let (tenant, conn) = self.live_connection(client, id).await?;
        let key = self.open(&conn, "api_key", conn.api_key_sealed.as_deref())?;
        let object = self
            .api
            .fetch(
                conn.provider,
                &conn.api_base_url(),
                &key,
                kind,
                provider_ref,
                customer_ref,
            )
            .await?;
        let doc = match conn.provider {
            Provider::Stripe => providers::project_stripe(&object),
            Provider::Mollie => providers::project_mollie(&object),
        }
        .map_err(|e| {
            upstream(format!(
                "the provider answered an unusable resource: {}",
                e.detail
            ))
        })?;
        if doc.kind != kind || doc.provider_ref != provider_ref {
            return Err(upstream("the provider answered another resource"));
        }
        let document = doc.to_json(conn.provider);
        let mut tx_conn = tenant.pool.get().await.map_err(DomainError::from)?;
        let tx = tx_conn.transaction().await.map_err(DomainError::from)?;
        let changed =
            catalog::upsert_document(&tx, &conn, &doc, &document, chrono::Utc::now()).await?;
        tx.commit().await.map_err(DomainError::from)?;
        let (grant, result) = self.auth_sync(&conn, &doc);
        Ok(Projected {
            document,
            event_log_id: None,
            replayed: false,
            auth_grant_sync: grant,
            auth_sync_result: result,
            event: changed.map(|row| row_event(client, kind, row, "reconcile")),
        })
    }
}

/// `GET /admin/billing/providers`: the static provider catalog.
pub fn provider_catalog() -> Value {
    let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    json!([
        {
            "provider": "stripe",
            "name": "Stripe",
            "status": "implemented",
            "credentialKinds": ["api_key", "webhook_secret"],
            "configFields": [
                {"name": "api_base_url", "type": "string", "required": false,
                 "default": Provider::Stripe.default_api_base_url()}
            ],
            "defaultApiBaseUrl": Provider::Stripe.default_api_base_url(),
            "webhookSignatureHeader": "Stripe-Signature",
            "webhookVerification": "HMAC-SHA256 over `<t>.<body>` with the webhook secret, 5-minute tolerance",
            "webhookEnvelope": "event",
            "webhookEventTypes": [
                "payment_intent.*", "charge.*", "payment_link.*",
                "customer.subscription.*", "invoice.*"
            ],
            "resourceKinds": kinds,
        },
        {
            "provider": "mollie",
            "name": "Mollie",
            "status": "implemented",
            "credentialKinds": ["api_key"],
            "configFields": [
                {"name": "api_base_url", "type": "string", "required": false,
                 "default": Provider::Mollie.default_api_base_url()}
            ],
            "defaultApiBaseUrl": Provider::Mollie.default_api_base_url(),
            "webhookSignatureHeader": null,
            "webhookVerification": "the posted id is read back from the Mollie API with the stored key",
            "webhookEnvelope": "resource_id",
            "webhookEventTypes": ["payment", "payment-link", "invoice"],
            "resourceKinds": kinds,
        }
    ])
}

/// `GET /admin/billing/grants`: the static grant catalog.
pub fn grant_catalog() -> Value {
    json!({
        "grants": [
            {"key": "billing.payment.paid", "resourceKind": "payment",
             "description": "a payment of the owner is paid (Stripe `succeeded`, Mollie `paid`)"},
            {"key": "billing.subscription.active", "resourceKind": "subscription",
             "description": "a subscription of the owner is active or trialing"},
            {"key": "billing.invoice.paid", "resourceKind": "invoice",
             "description": "an invoice of the owner is paid"},
        ],
        "reconcileKinds": Kind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        "sourceKinds": ["stripe", "mollie"],
        "authSync": {
            "env": "ATHENA_AUTH_URL",
            "payload": "data.auth_grant_sync of the webhook and reconcile answers",
        },
        "webhookRoute": "/billing/providers/{provider}/clients/{client_name}/connections/{connection_id}/webhook",
    })
}
