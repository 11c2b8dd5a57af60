//! `admin_runtime`: live runtime inspection of this replica
//! (`/admin/admission-events`, `/admin/pools`, and the vacuum health the
//! collector stores, `/admin/vacuum-health*`), one section per route.

use crate::admission::events::{self, Filter};
use crate::api::{models, params, responses, traits::AdminRuntimeApi};
use crate::domain::DomainError;
use crate::handlers::Handlers;
use crate::http::payload::Json;
use crate::http::{ApiError, ApiResult, RequestCx};
use serde_json::{json, Value};

impl AdminRuntimeApi for Handlers {
    // --- admission events ---

    async fn get_admin_admission_events(
        &self,
        _cx: RequestCx,
        params: params::GetAdminAdmissionEvents,
    ) -> ApiResult<responses::GetAdminAdmissionEvents> {
        let filter = admission_filter(params)?;
        // Every decision this replica answered before the read is written.
        self.admission
            .events()
            .flush(std::time::Duration::from_secs(1))
            .await;
        let rows = events::list(self.tenants.catalog(), &filter).await?;
        let events: Vec<models::AdmissionEventRecord> = rows
            .into_iter()
            .map(serde_json::from_value)
            .collect::<Result<_, _>>()
            .map_err(|e| DomainError::Internal(format!("admission event record: {e}")))?;
        let data = models::AdmissionEventsListData {
            decision: filter.decision,
            client: filter.client,
            limit: Some(filter.limit),
            offset: Some(filter.offset),
            events,
        };
        Ok(responses::GetAdminAdmissionEvents::Ok(Json::new(
            models::GetAdminAdmissionEventsResponse200 {
                status: "success".into(),
                message: Some(format!("{} admission events", data.events.len())),
                data,
            },
        )))
    }

    // --- daemons (issue 18) ---

    /// Every background worker loop of every replica, from the daemon
    /// registry (`src/backups/`): `alive` when heard from within three
    /// heartbeats, else `stale`.
    async fn get_admin_daemons(&self, _cx: RequestCx) -> ApiResult<responses::GetAdminDaemons> {
        let daemons = self.backups.daemons().await?;
        let alive = daemons.iter().filter(|d| d["status"] == "alive").count();
        let mut out = crate::domain::success(format!("{} daemons, {alive} alive", daemons.len()));
        out.insert(
            "data".into(),
            json!({ "daemons": daemons, "count": daemons.len(), "alive": alive }),
        );
        Ok(responses::GetAdminDaemons::Ok(Json::new(Value::Object(
            out,
        ))))
    }

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

    // --- vacuum health (issue 19, `src/stats/health.rs`) ---

    async fn get_admin_vacuum_health(
        &self,
        _cx: RequestCx,
    ) -> ApiResult<responses::GetAdminVacuumHealth> {
        let snapshots = crate::stats::health::vacuum_latest(self.tenants.catalog()).await?;
        let data = json!({ "snapshots": snapshots });
        let typed: models::VacuumHealthListResponse = serde_json::from_value(data.clone())
            .map_err(|e| DomainError::Internal(format!("vacuum health: {e}")))?;
        Ok(responses::GetAdminVacuumHealth::Ok(
            Json::new(typed)
                .with_field("status", json!("success"))
                .with_field(
                    "message",
                    json!(format!("{} vacuum health snapshots", snapshots.len())),
                )
                .with_field("data", data),
        ))
    }

    async fn get_admin_vacuum_health_by_client_name(
        &self,
        _cx: RequestCx,
        params: params::GetAdminVacuumHealthByClientName,
    ) -> ApiResult<responses::GetAdminVacuumHealthByClientName> {
        let (snapshot, tables) =
            crate::stats::health::vacuum_detail(self.tenants.catalog(), &params.client_name)
                .await?
                .ok_or_else(|| {
                    DomainError::not_found("vacuum health snapshot", params.client_name.as_str())
                })?;
        let data = json!({ "snapshot": snapshot, "tables": tables });
        let typed: models::VacuumHealthDetailResponse = serde_json::from_value(data.clone())
            .map_err(|e| DomainError::Internal(format!("vacuum health: {e}")))?;
        Ok(responses::GetAdminVacuumHealthByClientName::Ok(
            Json::new(typed)
                .with_field("status", json!("success"))
                .with_field(
                    "message",
                    json!(format!("Vacuum health of {}", params.client_name)),
                )
                .with_field("data", data),
        ))
    }
}

/// `decision`, `client` (empty = none), `limit` 1–500 (default 100),
/// `offset` ≥ 0.
fn admission_filter(p: params::GetAdminAdmissionEvents) -> Result<Filter, ApiError> {
    let limit = p.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid_parameter(
            "limit",
            "must be between 1 and 500",
        ));
    }
    let offset = p.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::invalid_parameter("offset", "must be at least 0"));
    }
    let some = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    Ok(Filter {
        decision: some(p.decision),
        client: some(p.client),
        limit,
        offset,
    })
}
