//! `debug`: diagnostics for operators (admin key). `/debug/s3` reports S3
//! catalog resolution and bucket readiness (`src/storage/debug.rs`);
//! `/debug/gateway` routing, auth store, Redis and the deferred queue.

use crate::api::{responses, traits::DebugApi};
use crate::handlers::Handlers;
use crate::http::payload::Json;
use crate::http::{ApiResult, RequestCx};

impl DebugApi for Handlers {
    /// `/debug/gateway`: routing per client (public routes, host bindings),
    /// the wildcard pattern, the auth store's and Redis' health, the
    /// deferred queue; no secret, no URI.
    async fn get_debug_gateway(&self, _cx: RequestCx) -> ApiResult<responses::GetDebugGateway> {
        use crate::services::{probe_postgres, probe_redis};
        let (routing, auth_store, redis, depth, enforced) = tokio::join!(
            self.routing.report(),
            probe_postgres(self.tenants.catalog()),
            probe_redis(self.redis.as_ref()),
            self.gateway.deferred.depth(),
            self.keys.enforced_for(None),
        );
        // A diagnostics route answers during an incident: a part that could
        // not be read says so instead of failing the whole report.
        let unavailable = serde_json::json!({"status": "unavailable"});
        let data = serde_json::json!({
            "routing": routing.unwrap_or_else(|_| unavailable.clone()),
            "auth_store": {"catalog": auth_store, "enforce_api_keys": enforced.ok()},
            "redis": redis,
            "deferred_queue": match depth {
                Ok((queued, running)) => serde_json::json!({"queued": queued, "running": running}),
                Err(_) => unavailable,
            },
            "pools": {
                "clients": self.tenants.pool_reports().await.len(),
                "direct_uri": self.gateway.direct.len(),
            },
        });
        let mut body = crate::domain::success("gateway diagnostics");
        body.insert("data".into(), data);
        Ok(responses::GetDebugGateway::Ok(Json::new(body.into())))
    }

    /// `/debug/schema` (issue 16): the tables our migrations create in the
    /// logging store against what it holds (`src/db/schema_report.rs`);
    /// the documented body, no envelope. A store that does not answer is 503.
    async fn get_debug_schema(&self, _cx: RequestCx) -> ApiResult<responses::GetDebugSchema> {
        let separate = self.audit.is_separate();
        let expected = crate::db::schema_report::expected_for_store(separate);
        let name = if separate { "logging" } else { "catalog" };
        let report = crate::db::schema_report::report(self.audit.pool(), name, &expected).await?;
        let body: crate::api::models::GetDebugSchemaResponse200 = serde_json::from_value(report)
            .map_err(|e| {
                crate::domain::DomainError::Internal(format!("debug/schema report: {e}"))
            })?;
        Ok(responses::GetDebugSchema::Ok(Json::new(body)))
    }

    async fn get_debug_s3(&self, cx: RequestCx) -> ApiResult<responses::GetDebugS3> {
        let client = crate::auth::header_client(cx.headers());
        let data = self
            .storage
            .debug_report(self.tenants.catalog(), client)
            .await?;
        let mut body = crate::domain::success("S3 catalog diagnostics");
        body.insert("data".into(), data);
        Ok(responses::GetDebugS3::Ok(Json::new(body.into())))
    }

    /// `/debug/billing` (SDK): the provider catalog and, for the client of
    /// `X-Athena-Client`, its connections (credential-free) and the last
    /// handled provider webhook.
    async fn get_debug_billing(
        &self,
        cx: RequestCx,
        _params: crate::api::params::GetDebugBilling,
    ) -> ApiResult<responses::GetDebugBilling> {
        use crate::billing::catalog;
        let mut data = serde_json::Map::new();
        data.insert("providers".into(), crate::billing::provider_catalog());
        if let Some(client) = crate::auth::header_client(cx.headers()) {
            let tenant = self.billing.tenant(client).await?;
            let connections = catalog::list(&tenant, client, &catalog::Filter::default()).await?;
            let (last, total) = catalog::list_events(&tenant, client, None, None, 1, 0).await?;
            data.insert("client_name".into(), client.into());
            data.insert(
                "connections".into(),
                connections
                    .iter()
                    .map(crate::billing::Connection::to_json)
                    .collect(),
            );
            data.insert("events_total".into(), total.into());
            data.insert(
                "last_event".into(),
                last.into_iter().next().unwrap_or(serde_json::Value::Null),
            );
        }
        Ok(responses::GetDebugBilling::Ok(Json::new(
            crate::api::models::ApiSuccessEnvelope {
                data,
                message: "billing diagnostics".into(),
                status: crate::api::models::ApiSuccessEnvelopeStatus::Success,
            },
        )))
    }
}
