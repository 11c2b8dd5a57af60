//! `admin_runtime`: live runtime inspection of this replica.

use crate::api::{responses, traits::AdminRuntimeApi};
use crate::handlers::Handlers;
use crate::http::payload::Json;
use crate::http::{ApiResult, RequestCx};
use serde_json::{json, Value};

impl AdminRuntimeApi for Handlers {
    // --- pools ---

    /// Per-client pools of this replica (created lazily, on first use) and
    /// the direct-URI pool count; never a URI or a password.
    async fn get_admin_pools(&self, _cx: RequestCx) -> ApiResult<responses::GetAdminPools> {
        let pools: Vec<Value> = (self.tenants.pool_reports().await)
            .into_iter()
            .map(|p| {
                json!({
                    "client_name": p.client_name,
                    "created_at": p.created_at,
                    "size": p.size,
                    "idle": p.idle,
                    "active": p.size.saturating_sub(p.idle),
                    "max": p.max,
                    "waits": p.waits,
                    "timeouts": p.timeouts,
                    "last_error": p.last_error,
                })
            })
            .collect();
        let direct = self.gateway.direct.len();
        let mut out = crate::domain::success(format!("{} client pools", pools.len()));
        out.insert(
            "data".into(),
            json!({
                "pools": pools,
                "direct_uri_pools": direct,
                "direct_uri_pool_cap": self.config.direct_pool_cap,
            }),
        );
        Ok(responses::GetAdminPools::Ok(Json::new(Value::Object(out))))
    }
}
