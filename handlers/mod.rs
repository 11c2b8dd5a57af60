//! Hand-written implementations of the generated family traits
//! (`openapi/families.yaml`), one module per family: `gateway` in
//! `gateway.rs`, `admin_api_keys` in `admin/api_keys.rs`, `storage_files` in
//! `storage/files.rs`. Handlers stay thin: parse, authorize, one domain call,
//! convert. Every family has its module (a trait's default methods would
//! answer 501 `not_implemented`).

/// The target of a route declaring `X-Athena-Client` and the direct-URI
/// headers (`x-pg-uri`, `x-athena-jdbc-url`, `x-jdbc-url`).
macro_rules! target {
    ($params:expr) => {
        crate::gateway::service::Target {
            client: $params.x_athena_client.clone(),
            direct: crate::gateway::service::DirectUri {
                pg_uri: $params.x_pg_uri.clone(),
                athena_jdbc_url: $params.x_athena_jdbc_url.clone(),
                jdbc_url: $params.x_jdbc_url.clone(),
            },
            origin: crate::gateway::service::Origin::Gateway,
        }
    };
}

mod admin;
mod billing;
mod chat;
mod clients;
mod debug;
mod gateway;
mod health;
mod integrations;
mod management;
mod pipelines;
mod public;
mod query;
mod registry;
mod rest;
mod rpc;
mod schema;
mod storage;
mod transaction;

use crate::api::models;
use crate::config::Config;
use crate::db::tenants::Tenants;
use crate::domain::DomainError;
use crate::gateway::service::{FetchRequest, Fetched, Gateway, Target};
use crate::gateway::{cache, plan};
use crate::http::metrics::Metrics;
use crate::http::payload::Json;
use crate::http::RequestCx;
use crate::services::S3;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

/// Everything the handlers work with, built once in `main`: a bundle of
/// services (the gateway data plane today; storage, webhooks … later) and
/// the process-wide pieces the control plane reads.
pub struct Handlers {
    pub config: Arc<Config>,
    pub tenants: Arc<Tenants>,
    /// The data plane (`src/gateway/service.rs`).
    pub gateway: Arc<Gateway>,
    /// Storage catalogs, buckets and objects (`src/storage/service.rs`).
    pub storage: Arc<crate::storage::service::Storage>,
    /// The end users of requests (`src/auth/end_user.rs`).
    pub end_users: Arc<crate::auth::end_user::EndUsers>,
    pub redis: Option<deadpool_redis::Pool>,
    pub s3: Option<S3>,
    pub keys: Arc<crate::auth::store::KeyStore>,
    /// The admission limiter (`src/admission/`), for its event log.
    pub admission: Arc<crate::admission::Admission>,
    /// Public-route lookups (`src/catalog/public_routes.rs`).
    pub public_routes: Arc<crate::catalog::public_routes::RouteCache>,
    /// Tenant hosts and service routes (`src/gateway/host_routing.rs`).
    pub routing: Arc<crate::gateway::host_routing::HostRouting>,
    /// Billing provider connections and ingestion (`src/billing/`).
    pub billing: Arc<crate::billing::Billing>,
    pub metrics: Arc<Metrics>,
    pub started: Instant,
    /// Events out: the outbox (`src/events/`) and webhook delivery.
    pub events: Arc<crate::events::Outbox>,
    pub webhooks: Arc<crate::events::webhooks::Webhooks>,
    /// The one outbound policy (`src/outbound.rs`), for URLs checked at save.
    pub outbound: Arc<crate::outbound::OutboundPolicy>,
    /// The management DDL audit log (`src/audit/ddl.rs`, issue 16).
    pub audit: Arc<crate::audit::ddl::AuditStore>,
    /// Durable chat (`src/chat/`, issue 20).
    pub chat: Arc<crate::chat::Chat>,
    /// Issue 19: the operation log, pipeline templates of the boot YAML
    /// (`src/stats/`, `src/pipelines/`).
    pub insights: Arc<crate::stats::Insights>,
    /// Provisioning: tenant schema, local databases, clones (`src/provision/`, issue 21).
    pub provision: Arc<crate::provision::Provisioning>,
    /// Backups to S3, restores, schedules, daemons (`src/backups/`, issue 18).
    pub backups: Arc<crate::backups::Backups>,
    /// Providers, Typesense, Supabase, cluster mirrors (issue 21).
    pub integrations: Arc<crate::integrations::Integrations>,
}

/// A fetch body as the gateway's read request (`X-Strip-Nulls`,
/// `Cache-Control: no-cache` read from the request).
fn fetch_request(
    gateway: &Gateway,
    cx: &RequestCx,
    body: &models::PostGatewayFetchRequest,
) -> Result<FetchRequest, DomainError> {
    let query = plan::fetch_query(body, strip_nulls_header(cx))?;
    let cache_body = match gateway.cache.enabled() {
        true => Some(json!({"body": plan::to_value(body)?, "strip_nulls": query.strip_nulls})),
        false => None,
    };
    Ok(FetchRequest {
        query,
        post: plan::post_processing(body),
        count: body.count.as_deref().is_some_and(|c| !c.is_empty()),
        head: body.head.unwrap_or(false),
        no_cache: no_cache(cx),
        cache_body,
    })
}

/// The fetch answer (`/gateway/fetch` and its aliases): rows served as
/// Postgres wrote them when nothing needed them decoded, cache headers.
fn fetch_answer(f: Fetched) -> Json<models::PostGatewayFetchResponse200> {
    use http::{HeaderName, HeaderValue};
    let hit = f.outcome == cache::Outcome::Hit;
    let mut out = Json::new(models::PostGatewayFetchResponse200 {
        message: Some(format!("Fetched {} rows", f.len())),
        cache_key: f.cache_key,
        data: f.rows,
        post_processing: f.summary,
        status: Some(models::PostGatewayFetchResponse200Status::Success),
    });
    if let Some(n) = f.count {
        out = out.with_field("count", json!(n));
    }
    if let Some(rows) = f.raw_rows {
        out = out.with_raw_field("data", rows.into_string());
    }
    out.with_header(
        HeaderName::from_static("x-athena-cached"),
        HeaderValue::from_static(if hit { "true" } else { "false" }),
    )
    .with_header(
        HeaderName::from_static("x-athena-cache-outcome"),
        HeaderValue::from_static(f.outcome.as_str()),
    )
    .with_header(
        HeaderName::from_static("x-athena-cache-source"),
        HeaderValue::from_static(if hit { "redis" } else { "postgres" }),
    )
}

/// Where `/gateway/sql` and `/query/sql` run: a direct URI when one is
/// set, else `X-Athena-Client` or the body's `db_name` (authorized as the
/// header would have been, `RequestCx::target_client`).
async fn sql_target(
    cx: &RequestCx,
    target: Target,
    db_name: &str,
) -> Result<Target, crate::http::ApiError> {
    if target.direct.is_set() {
        return Ok(target);
    }
    Ok(Target::client(cx.target_client(Some(db_name)).await?))
}

/// `Cache-Control: no-cache` (or `no-store`) skips the read cache.
fn no_cache(cx: &RequestCx) -> bool {
    cx.headers()
        .get_all(http::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|d| matches!(d.trim(), "no-cache" | "no-store"))
        })
}

/// Whether the caller asked for null fields to be dropped (`X-Strip-Nulls`).
fn strip_nulls_header(cx: &RequestCx) -> Option<bool> {
    header_bool(cx.headers(), "x-strip-nulls")
}

/// A boolean request header; absent is false.
fn header_flag(cx: &RequestCx, name: &str) -> bool {
    header_bool(cx.headers(), name).unwrap_or(false)
}

/// A boolean header (`true`/`1`, any case; anything else is false), or
/// `None` when absent or not visible ASCII.
fn header_bool(headers: &http::HeaderMap, name: &str) -> Option<bool> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().eq_ignore_ascii_case("true") || v.trim() == "1")
}
