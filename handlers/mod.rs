//! Hand-written implementations of the generated family traits
//! (`openapi/families.yaml`), one module per family: `gateway` in
//! `gateway.rs`, `admin_api_keys` in `admin/api_keys.rs`, `storage_files` in
//! `storage/files.rs`. Handlers stay thin: parse, authorize, one domain call,
//! convert. Families without a module yet are listed at the end of this file
//! and answer 501 `not_implemented` through the traits' default methods.

mod admin;
mod clients;
mod gateway;
mod health;
mod public;
mod query;
mod registry;
mod rest;
mod rpc;
mod schema;
mod transaction;

use crate::api::traits::*;
use crate::config::Config;
use crate::db::tenants::{Tenant, Tenants};
use crate::domain::DomainError;
use crate::http::metrics::Metrics;
use crate::http::RequestCx;
use crate::services::S3;
use std::sync::Arc;
use std::time::Instant;

/// Everything the handlers work with, built once in `main`.
pub struct Handlers {
    pub config: Arc<Config>,
    pub tenants: Arc<Tenants>,
    /// Pools for direct PostgreSQL URIs (`x-pg-uri`, …).
    pub direct: Arc<crate::db::direct::DirectPools>,
    pub redis: Option<deadpool_redis::Pool>,
    pub s3: Option<S3>,
    pub keys: Arc<crate::auth::store::KeyStore>,
    pub cache: crate::gateway::cache::ReadCache,
    pub public_routes: public::RouteCache,
    /// The deferred-write queue (`src/gateway/deferred.rs`).
    pub deferred: Arc<crate::gateway::deferred::Queue>,
    pub metrics: Arc<Metrics>,
    pub started: Instant,
    /// Cloudflare D1 REST client (`config.d1`), for D1 migrations.
    pub d1: Option<Arc<crate::gateway::d1::D1Client>>,
    /// Insert windows (`X-Athena-Insert-Window`, `src/gateway/batch.rs`).
    pub insert_windows: Arc<crate::gateway::batch::InsertWindows>,
}

impl Handlers {
    /// The tenant named by `X-Athena-Client`.
    async fn tenant(&self, client: Option<&str>) -> Result<Arc<Tenant>, DomainError> {
        match client.map(str::trim).filter(|c| !c.is_empty()) {
            Some(name) => self.tenants.resolve(name).await,
            None => Err(DomainError::MissingClient),
        }
    }
}

impl Handlers {
    /// Runs a write inline (inserts in an insert window when one applies)
    /// and retires the cached reads of its table: the one path every
    /// writing route (gateway and REST) takes. Either way a write whose
    /// statement started is answered, even past the request deadline.
    async fn apply_write(
        &self,
        tenant: &Arc<Tenant>,
        write: crate::gateway::write::Write,
        insert_window: Option<std::time::Duration>,
    ) -> Result<crate::gateway::write::WriteResult, DomainError> {
        use crate::gateway::write::{self, Write};
        let (schema, table) = write.target();
        let (schema, table) = (schema.clone(), table.clone());
        let result = match (write, insert_window) {
            (Write::Insert(q), Some(window)) => {
                self.insert_windows
                    .insert(tenant.clone(), q, window)
                    .await?
            }
            (write, _) => {
                // Once the statement starts, the caller gets its answer even
                // past the request deadline (`src/http/deadline.rs`): a 504
                // never hides a committed write.
                let shield = match crate::http::deadline::current() {
                    Some(d) => Some(d.shield().ok_or_else(|| {
                        DomainError::Timeout("the request deadline passed".into())
                    })?),
                    None => None,
                };
                let result = write::run(tenant, &write).await;
                if let Some(shield) = shield {
                    shield.settle();
                }
                result?
            }
        };
        self.cache
            .invalidate(&tenant.name, Some((schema.as_str(), table.as_str())))
            .await;
        Ok(result)
    }
}

/// Every right a planned write needs (an upsert needs update as well as
/// insert), checked before it is queued, batched or run.
fn authorize_write(
    cx: &RequestCx,
    write: &crate::gateway::write::Write,
) -> Result<(), crate::http::ApiError> {
    cx.require_rights(write.rights())
}

/// Whether the caller asked for null fields to be dropped (`X-Strip-Nulls`).
fn strip_nulls_header(cx: &RequestCx) -> Option<bool> {
    header_bool(cx.headers(), "x-strip-nulls")
}

/// A boolean header (`true`/`1`, any case; anything else is false), or
/// `None` when absent or not visible ASCII.
fn header_bool(headers: &http::HeaderMap, name: &str) -> Option<bool> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().eq_ignore_ascii_case("true") || v.trim() == "1")
}

// Families whose issues have not landed: every operation answers 501. A
// family that gets a module moves from here to its `impl` there.
impl ApiApi for Handlers {}
impl BillingApi for Handlers {}
impl ChatApi for Handlers {}
impl DebugApi for Handlers {}
impl ManagementApi for Handlers {}
impl PipelinesApi for Handlers {}
impl TypesenseApi for Handlers {}
impl WssApi for Handlers {}

// `/admin/*` families without a module under `admin/` yet.
impl AdminBackupsApi for Handlers {}
impl AdminBillingApi for Handlers {}
impl AdminClientConfigsApi for Handlers {}
impl AdminErrorsApi for Handlers {}
impl AdminIpListsApi for Handlers {}
impl AdminPipelineTemplatesApi for Handlers {}
impl AdminProvisionApi for Handlers {}
impl AdminRuntimeApi for Handlers {}
impl AdminServiceRoutesApi for Handlers {}
impl AdminStatisticsApi for Handlers {}
impl AdminWebhooksApi for Handlers {}

// `/storage/*` families (they will live under `storage/`).
impl StorageBucketsApi for Handlers {}
impl StorageCatalogsApi for Handlers {}
impl StorageFilesApi for Handlers {}
impl StorageFoldersApi for Handlers {}
impl StorageMultipartApi for Handlers {}
impl StorageObjectsApi for Handlers {}
impl StoragePermissionsApi for Handlers {}
