//! `admin_statistics`: client statistics from the operation log, pressure
//! snapshots, query optimization recommendations and table row estimates
//! (`src/stats/`). Routes whose contract schema is the `data` object of the
//! success envelope answer that object's fields at the top level (the
//! schema) and the same object in `data` beside `status` and `message`
//! (openapi/CHANGES.md, "Pipelines and statistics").

use crate::api::{models, params, responses, traits::AdminStatisticsApi};
use crate::domain::DomainError;
use crate::handlers::Handlers;
use crate::http::payload::Json;
use crate::http::{ApiError, ApiResult, RequestCx};
use crate::stats::{self, health};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::time::Duration;

/// The typed `data` object at the top level, and in the envelope's `data`.
fn enveloped<T: DeserializeOwned>(message: String, data: Value) -> Result<Json<T>, ApiError> {
    let typed: T = serde_json::from_value(data.clone())
        .map_err(|e| DomainError::Internal(format!("answer shape: {e}")))?;
    Ok(Json::new(typed)
        .with_field("status", json!("success"))
        .with_field("message", json!(message))
        .with_field("data", data))
}

fn typed<T: DeserializeOwned>(v: Value) -> Result<Json<T>, ApiError> {
    Ok(Json::new(serde_json::from_value(v).map_err(|e| {
        DomainError::Internal(format!("answer shape: {e}"))
    })?))
}

fn page(
    limit: Option<i64>,
    offset: Option<i64>,
    default: i64,
    max: i64,
) -> Result<(i64, i64), ApiError> {
    let limit = limit.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::invalid_parameter(
            "limit",
            format!("must be between 1 and {max}"),
        ));
    }
    let offset = offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::invalid_parameter("offset", "must be at least 0"));
    }
    Ok((limit, offset))
}

impl Handlers {
    /// What this replica logged so far is written before a read.
    async fn flushed_log(&self) {
        self.insights.oplog.flush(Duration::from_secs(2)).await;
    }

    /// 404 for a client the catalog does not know.
    async fn known_client(&self, client: &str) -> Result<(), ApiError> {
        match crate::catalog::clients::get(self.tenants.catalog(), client).await? {
            Some(_) => Ok(()),
            None => Err(DomainError::not_found("client", client).into()),
        }
    }
}

impl AdminStatisticsApi for Handlers {
    async fn get_admin_clients_statistics(
        &self,
        _cx: RequestCx,
    ) -> ApiResult<responses::GetAdminClientsStatistics> {
        self.flushed_log().await;
        let list = stats::list(self.tenants.catalog()).await?;
        let message = format!("{} clients", list.len());
        Ok(responses::GetAdminClientsStatistics::Ok(enveloped(
            message,
            json!({ "statistics": list }),
        )?))
    }

    async fn post_admin_clients_statistics_refresh(
        &self,
        _cx: RequestCx,
    ) -> ApiResult<responses::PostAdminClientsStatisticsRefresh> {
        self.flushed_log().await;
        stats::refresh(self.tenants.catalog()).await?;
        let list = stats::list(self.tenants.catalog()).await?;
        let message = format!(
            "Statistics rebuilt from the operation log: {} clients",
            list.len()
        );
        Ok(responses::PostAdminClientsStatisticsRefresh::Ok(enveloped(
            message,
            json!({ "statistics": list }),
        )?))
    }

    async fn get_admin_clients_by_client_name_statistics(
        &self,
        _cx: RequestCx,
        params: params::GetAdminClientsByClientNameStatistics,
    ) -> ApiResult<responses::GetAdminClientsByClientNameStatistics> {
        self.flushed_log().await;
        let (client, tables) = stats::detail(self.tenants.catalog(), &params.client_name)
            .await?
            .ok_or_else(|| {
                DomainError::not_found("client statistics", params.client_name.as_str())
            })?;
        Ok(responses::GetAdminClientsByClientNameStatistics::Ok(
            enveloped(
                format!("Statistics of {}", params.client_name),
                json!({ "statistics": client, "tables": tables }),
            )?,
        ))
    }

    async fn get_admin_clients_by_client_name_statistics_drilldown(
        &self,
        _cx: RequestCx,
        params: params::GetAdminClientsByClientNameStatisticsDrilldown,
    ) -> ApiResult<responses::GetAdminClientsByClientNameStatisticsDrilldown> {
        let (limit, offset) = page(params.limit, params.offset, 100, 500)?;
        let status = params.status.as_deref().unwrap_or("all");
        if !matches!(status, "all" | "errors" | "normal") {
            return Err(ApiError::invalid_parameter(
                "status",
                "must be all, errors or normal",
            ));
        }
        for (name, v) in [
            ("table_name", &params.table_name),
            ("operation", &params.operation),
        ] {
            if v.trim().is_empty() {
                return Err(ApiError::missing_parameter("query", name));
            }
        }
        self.flushed_log().await;
        let rows = stats::drilldown(
            self.tenants.catalog(),
            &stats::Drill {
                client: &params.client_name,
                table: &params.table_name,
                operation: &params.operation,
                status,
                limit,
                offset,
            },
        )
        .await?;
        Ok(
            responses::GetAdminClientsByClientNameStatisticsDrilldown::Ok(enveloped(
                format!("{} operation log rows", rows.len()),
                json!({
                    "client_name": params.client_name, "table_name": params.table_name,
                    "operation": params.operation, "status": status, "limit": limit,
                    "offset": offset, "rows": rows,
                }),
            )?),
        )
    }

    async fn get_admin_clients_pressure(
        &self,
        _cx: RequestCx,
    ) -> ApiResult<responses::GetAdminClientsPressure> {
        let pool = self.tenants.catalog();
        let snapshots = health::latest_snapshots(pool).await?;
        let last_run = health::last_run(pool).await?;
        Ok(responses::GetAdminClientsPressure::Ok(typed(json!({
            "status": "success",
            "message": format!("{} client pressure snapshots", snapshots.len()),
            "data": { "snapshots": snapshots, "last_run": last_run },
        }))?))
    }

    async fn post_admin_clients_pressure_backfill(
        &self,
        _cx: RequestCx,
        body: Option<models::PostAdminClientsPressureBackfillRequest>,
    ) -> ApiResult<responses::PostAdminClientsPressureBackfill> {
        let hours = body.map_or(24, |b| b.hours_back.get());
        if !(1..=720).contains(&hours) {
            return Err(ApiError::invalid_parameter(
                "hours_back",
                "must be between 1 and 720",
            ));
        }
        self.flushed_log().await;
        let pool = self.tenants.catalog().clone();
        let request = health::queue_backfill(&pool, hours as i32).await?;
        // Processed in the background (the collector also picks up queued
        // requests a stopped replica left).
        tokio::spawn(async move {
            if let Err(e) = health::process_backfills(&pool).await {
                tracing::warn!(error = %e, "pressure backfill failed");
            }
        });
        Ok(responses::PostAdminClientsPressureBackfill::Accepted(
            typed(json!({
                "status": "success",
                "message": format!("Backfill of {hours} hours queued"),
                "data": { "request": request },
            }))?,
        ))
    }

    async fn get_admin_clients_by_client_name_pressure(
        &self,
        _cx: RequestCx,
        params: params::GetAdminClientsByClientNamePressure,
    ) -> ApiResult<responses::GetAdminClientsByClientNamePressure> {
        let pool = self.tenants.catalog();
        let history = health::client_history(pool, &params.client_name).await?;
        let Some(latest) = history.first().cloned() else {
            return Err(
                DomainError::not_found("client pressure", params.client_name.as_str()).into(),
            );
        };
        let tables = latest["tables"].clone();
        Ok(responses::GetAdminClientsByClientNamePressure::Ok(typed(
            json!({
                "status": "success",
                "message": format!("Pressure of {}", params.client_name),
                "data": {
                    "snapshot": latest,
                    "tables": tables,
                    "history": history,
                    "last_run": health::last_run(pool).await?,
                },
            }),
        )?))
    }

    async fn get_admin_clients_by_client_name_query_optimizations(
        &self,
        _cx: RequestCx,
        params: params::GetAdminClientsByClientNameQueryOptimizations,
    ) -> ApiResult<responses::GetAdminClientsByClientNameQueryOptimizations> {
        let (limit, offset) = page(params.limit, params.offset, 100, 500)?;
        let status = params.status.as_deref().unwrap_or("all");
        if !matches!(status, "all" | "open" | "applied" | "dismissed") {
            return Err(ApiError::invalid_parameter(
                "status",
                "must be all, open, applied or dismissed",
            ));
        }
        let filter = (status != "all").then_some(status);
        let recs = health::list_recommendations(
            self.tenants.catalog(),
            &params.client_name,
            filter,
            limit,
            offset,
        )
        .await?;
        Ok(
            responses::GetAdminClientsByClientNameQueryOptimizations::Ok(enveloped(
                format!("{} recommendations", recs.len()),
                json!({
                    "client_name": params.client_name, "status": status, "limit": limit,
                    "offset": offset, "recommendations": recs,
                }),
            )?),
        )
    }

    async fn post_admin_clients_by_client_name_query_optimizations_refresh(
        &self,
        _cx: RequestCx,
        params: params::PostAdminClientsByClientNameQueryOptimizationsRefresh,
    ) -> ApiResult<responses::PostAdminClientsByClientNameQueryOptimizationsRefresh> {
        self.known_client(&params.client_name).await?;
        let (run, recs) = health::refresh_optimizations(&self.tenants, &params.client_name).await?;
        Ok(
            responses::PostAdminClientsByClientNameQueryOptimizationsRefresh::Ok(enveloped(
                format!("{} recommendations", recs.len()),
                json!({ "client_name": params.client_name, "run": run, "recommendations": recs }),
            )?),
        )
    }

    async fn get_admin_clients_by_client_name_query_optimizations_runs(
        &self,
        _cx: RequestCx,
        params: params::GetAdminClientsByClientNameQueryOptimizationsRuns,
    ) -> ApiResult<responses::GetAdminClientsByClientNameQueryOptimizationsRuns> {
        let (limit, offset) = page(params.limit, params.offset, 100, 500)?;
        let runs =
            health::list_runs(self.tenants.catalog(), &params.client_name, limit, offset).await?;
        Ok(
            responses::GetAdminClientsByClientNameQueryOptimizationsRuns::Ok(enveloped(
                format!("{} runs", runs.len()),
                json!({ "client_name": params.client_name, "limit": limit, "offset": offset, "runs": runs }),
            )?),
        )
    }

    async fn post_admin_clients_by_client_name_query_optimizations_by_recommendation_id_apply(
        &self,
        _cx: RequestCx,
        params: params::PostAdminClientsByClientNameQueryOptimizationsByRecommendationIdApply,
        body: Option<models::ApplyQueryOptimizationRequest>,
    ) -> ApiResult<responses::PostAdminClientsByClientNameQueryOptimizationsByRecommendationIdApply>
    {
        let actor = body
            .and_then(|b| b.actor)
            .map(|a| a.trim().chars().take(200).collect::<String>())
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "admin".into());
        let result = health::apply(
            &self.tenants,
            &params.client_name,
            params.recommendation_id,
            &actor,
        )
        .await?
        .ok_or_else(|| {
            DomainError::not_found("recommendation", params.recommendation_id.to_string())
        })?;
        let message = match result["applied"].as_bool() {
            Some(true) => "Recommendation applied",
            _ => "Recommendation not applied",
        };
        Ok(
            responses::PostAdminClientsByClientNameQueryOptimizationsByRecommendationIdApply::Ok(
                enveloped(
                    message.into(),
                    json!({ "client_name": params.client_name, "result": result }),
                )?,
            ),
        )
    }

    async fn get_admin_clients_by_client_name_table_row_estimates(
        &self,
        cx: RequestCx,
        params: params::GetAdminClientsByClientNameTableRowEstimates,
    ) -> ApiResult<responses::GetAdminClientsByClientNameTableRowEstimates> {
        let limit = params.limit.unwrap_or(12);
        if !(1..=100).contains(&limit) {
            return Err(ApiError::invalid_parameter(
                "limit",
                "must be between 1 and 100",
            ));
        }
        let include_system = params.include_system_schemas.unwrap_or(false);
        let schema = params
            .schema
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        if let Some(s) = schema {
            crate::domain::identifier::Ident::parse("schema", s)?;
        }
        let client = params.client_name.as_str();
        let tenant = match self.tenants.resolve(client).await {
            Ok(t) => t,
            Err(e @ DomainError::NotFound { .. }) => return Err(e.into()),
            Err(e) => {
                return Err(DomainError::ServiceUnavailable(format!(
                    "client {client} has no active pool: {e}"
                ))
                .into())
            }
        };
        let key = format!(
            "athena:row-estimates:{client}:{}:{limit}:{include_system}",
            schema.unwrap_or("")
        );
        let bypass = super::super::no_cache(&cx);
        let cached = match (&self.redis, bypass) {
            (Some(redis), false) => redis_get(redis, &key).await,
            _ => None,
        };
        let (snapshot, outcome) = match cached {
            Some(v) => (v, "hit"),
            None => {
                let q = health::EstimateQuery {
                    schema,
                    limit,
                    include_system,
                };
                let snapshot = health::row_estimates(&tenant, &q)
                    .await
                    .map_err(|e| match e {
                        DomainError::Invalid(_) => e,
                        other => {
                            DomainError::ServiceUnavailable(format!("client {client}: {other}"))
                        }
                    })?;
                if let Some(redis) = &self.redis {
                    redis_set(redis, &key, &snapshot).await;
                }
                (snapshot, if bypass { "bypass" } else { "miss" })
            }
        };
        let data = json!({
            "client_name": client, "schema": schema, "limit": limit,
            "include_system_schemas": include_system, "snapshot": snapshot,
        });
        let out: Json<models::TableRowEstimatesResponse> =
            enveloped(format!("Row estimates of {client}"), data)?;
        Ok(responses::GetAdminClientsByClientNameTableRowEstimates::Ok(
            out.with_header(
                http::HeaderName::from_static("x-athena-cache-outcome"),
                http::HeaderValue::from_static(outcome),
            ),
        ))
    }
}

/// Row estimates stay cached this long.
const ESTIMATE_TTL_SECS: u64 = 60;

async fn redis_get(redis: &deadpool_redis::Pool, key: &str) -> Option<Value> {
    let mut conn = tokio::time::timeout(Duration::from_millis(500), redis.get())
        .await
        .ok()?
        .ok()?;
    let text: Option<String> = tokio::time::timeout(
        Duration::from_millis(500),
        deadpool_redis::redis::cmd("GET")
            .arg(key)
            .query_async(&mut conn),
    )
    .await
    .ok()?
    .ok()?;
    serde_json::from_str(&text?).ok()
}

async fn redis_set(redis: &deadpool_redis::Pool, key: &str, v: &Value) {
    let Ok(Ok(mut conn)) = tokio::time::timeout(Duration::from_millis(500), redis.get()).await
    else {
        return;
    };
    let _: Result<Result<(), _>, _> = tokio::time::timeout(
        Duration::from_millis(500),
        deadpool_redis::redis::cmd("SET")
            .arg(key)
            .arg(v.to_string())
            .arg("EX")
            .arg(ESTIMATE_TTL_SECS)
            .query_async(&mut conn),
    )
    .await;
}
