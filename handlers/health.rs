use super::Handlers;
use crate::api::{models, responses, traits::HealthApi};
use crate::http::payload::{Binary, Json};
use crate::http::{ApiResult, RequestCx};
use crate::services::{probe_postgres, probe_redis, probe_s3};
use serde_json::json;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn online(up: bool) -> String {
    if up { "online" } else { "offline" }.to_string()
}

impl HealthApi for Handlers {
    async fn get_root(&self, _cx: RequestCx) -> ApiResult<responses::GetRoot> {
        let postgres = probe_postgres(self.tenants.catalog()).await;
        let mut routes: Vec<models::GetRootResponse200RoutesItem> = Vec::new();
        for meta in crate::api::operations::OPERATIONS.iter() {
            match routes
                .iter_mut()
                .find(|r| r.path.as_deref() == Some(meta.path))
            {
                Some(r) => r.methods.push(meta.method.to_string()),
                None => routes.push(models::GetRootResponse200RoutesItem {
                    methods: vec![meta.method.to_string()],
                    path: Some(meta.path.to_string()),
                    summary: Some(meta.summary.to_string()),
                }),
            }
        }
        Ok(responses::GetRoot::Ok(Json::new(
            models::GetRootResponse200 {
                athena_api: Some("online".into()),
                athena_deadpool: Some(online(postgres.status == "up")),
                athena_scylladb: Some(models::GetRootResponse200AthenaScylladb::Offline),
                cargo_toml_version: Some(VERSION.into()),
                message: Some("athena is online".into()),
                routes,
                version: Some(VERSION.into()),
            },
        )))
    }

    async fn get_ping(&self, _cx: RequestCx) -> ApiResult<responses::GetPing> {
        Ok(responses::GetPing::Ok(Binary::new(
            "text/plain; charset=utf-8",
            "pong",
        )))
    }

    async fn get_health(&self, _cx: RequestCx) -> ApiResult<responses::GetHealth> {
        let (postgres, redis, s3) = tokio::join!(
            probe_postgres(self.tenants.catalog()),
            probe_redis(self.redis.as_ref()),
            probe_s3(self.s3.as_ref()),
        );
        let healthy = [&postgres, &redis, &s3].iter().all(|p| p.status != "down");
        let body = models::GetHealthResponse200 {
            athena_api: Some("online".into()),
            athena_deadpool: Some(online(postgres.status == "up")),
            athena_scylladb: Some("offline".into()),
            cargo_toml_version: Some(VERSION.into()),
            gateway_auth_store: Some(online(postgres.status == "up")),
            gateway_benchmark_client: None,
            message: Some(
                if healthy {
                    "athena is online"
                } else {
                    "athena is degraded"
                }
                .into(),
            ),
            provisioning: Some(models::GetHealthResponse200Provisioning {
                local_docker: Some(models::GetHealthResponse200ProvisioningLocalDocker {
                    available: Some(false),
                    detail: Some("this build provisions no local Docker databases".into()),
                    hint: None,
                    status: Some("unsupported".into()),
                }),
            }),
            status: Some(if healthy { "ok" } else { "degraded" }.into()),
            version: Some(VERSION.into()),
        };
        // `dependencies` goes beyond the contract's schema: the truthful
        // per-dependency report operators need.
        Ok(responses::GetHealth::Ok(Json::new(body).with_field(
            "dependencies",
            json!({ "postgres": postgres, "redis": redis, "s3": s3 }),
        )))
    }

    /// Tenant names are the operator's business: the per-client pool series
    /// are listed only to callers presenting the static admin key (in a key
    /// header); everyone else sees the catalog pool and the tenant pools'
    /// totals.
    async fn get_metrics(&self, cx: RequestCx) -> ApiResult<responses::GetMetrics> {
        let admin = cx.presents_admin_key();
        let pools = self.tenants.pool_states().await;
        let (mut all_idle, mut all_active) = (0.0, 0.0);
        let mut series = Vec::new();
        for (client, total, idle) in pools {
            let active = total.saturating_sub(idle);
            all_idle += f64::from(idle);
            all_active += f64::from(active);
            if admin {
                let client = client.replace(['"', '\\', '\n'], "_");
                series.push((
                    format!("client=\"{client}\",state=\"idle\""),
                    f64::from(idle),
                ));
                series.push((
                    format!("client=\"{client}\",state=\"active\""),
                    f64::from(active),
                ));
            }
        }
        let tenants = vec![
            ("state=\"idle\"".to_string(), all_idle),
            ("state=\"active\"".to_string(), all_active),
        ];
        let catalog = self.tenants.catalog().state();
        series.push((
            "client=\"catalog\",state=\"idle\"".into(),
            f64::from(catalog.idle_connections),
        ));
        series.push((
            "client=\"catalog\",state=\"active\"".into(),
            f64::from(catalog.connections.saturating_sub(catalog.idle_connections)),
        ));
        let uptime = vec![(String::new(), self.started.elapsed().as_secs_f64())];
        // Events out: the publish path's catalog statements (issue 15).
        let stats = &self.events.stats;
        let load =
            |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed) as f64;
        let event_statements = vec![
            (
                "statement=\"index_load\"".to_string(),
                load(&stats.index_loads),
            ),
            (
                "statement=\"outbox_insert\"".to_string(),
                load(&stats.outbox_inserts),
            ),
        ];
        let events_published = vec![(String::new(), load(&stats.published))];
        let text = self.metrics.render(
            VERSION,
            &[
                (
                    "athena_db_pool_connections",
                    "Pooled PostgreSQL connections by client and state (tenant clients only with the admin key).",
                    series,
                ),
                (
                    "athena_db_tenant_pool_connections",
                    "Pooled PostgreSQL connections of all tenant pools together, by state.",
                    tenants,
                ),
                (
                    "athena_events_catalog_statements_total",
                    "Catalog statements of the event publish path (subscription index loads, outbox inserts) since start.",
                    event_statements,
                ),
                (
                    "athena_events_published_total",
                    "Events published by committed writes since start (with or without subscribers).",
                    events_published,
                ),
                (
                    "athena_operation_log_entries_total",
                    "Operation log entries since start by outcome (queued, dropped: the bounded queue was full, written, failed).",
                    self.insights.oplog.series(),
                ),
                (
                    "athena_process_uptime_seconds",
                    "Seconds since the server started.",
                    uptime,
                ),
            ],
        );
        Ok(responses::GetMetrics::Ok(Binary::new(
            "text/plain; version=0.0.4; charset=utf-8",
            text,
        )))
    }

    /// Issue 21: the mirrors of `ATHENA_CLUSTER_MIRRORS`, probed at once;
    /// a down mirror is reported, never an error.
    async fn get_health_cluster(&self, _cx: RequestCx) -> ApiResult<responses::GetHealthCluster> {
        let out = self.integrations.cluster_health().await;
        Ok(responses::GetHealthCluster::Ok(Json::new(
            super::integrations::typed(out)?,
        )))
    }
}
