//! Runtime view of the clients (tenants): for each routable client a lazily
//! created, bounded pool and a schema cache. Entries are dropped the moment
//! the catalog row changes (LISTEN `athena_clients_changed`, see
//! `src/db/notify.rs`) and re-checked after `RECHECK` in any case, so a
//! change made through any replica takes effect everywhere.

use super::schema_cache::SchemaCache;
use super::{pool_as, Login, Pool, PoolSettings};
use crate::catalog::client_configs::{self, ClientConfig};
use crate::catalog::clients;
use crate::domain::DomainError;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

/// Upper bound on staleness if a notification is ever missed.
const RECHECK: Duration = Duration::from_secs(5);

pub struct Tenant {
    pub name: String,
    pub uri: String,
    pub pool: Pool,
    pub schema: Arc<SchemaCache>,
    /// Schemas whose functions RPC may call (`metadata.rpc_schemas` of
    /// the client record, default `public`); system schemas never.
    pub rpc_schemas: Arc<[String]>,
    /// Connections for raw SQL: logged in as `ATHENA_RAW_SQL_ROLE` when
    /// set (so `RESET ROLE`/`set_config('role', …)` cannot leave it),
    /// kept apart from the statement-cached data-plane pool and reset with
    /// `DISCARD ALL` after every use (`src/gateway/raw.rs`).
    pub raw_pool: Pool,
    /// When the pool was created and its last connection error.
    pub stats: Arc<PoolStats>,
    /// The client's configuration override (`athena_client_configs`,
    /// default when none) and the pool settings it gave.
    pub config: Arc<ClientConfig>,
    pub settings: PoolSettings,
    checked_at: Instant,
}

// --- pool stats (issue 13, `GET /admin/pools`) ---

/// What bb8 does not keep about a pool: when it was created and the last
/// error of a connection it opened (the message only: never a URI).
#[derive(Debug)]
pub struct PoolStats {
    pub created_at: chrono::DateTime<chrono::Utc>,
    last_error: Arc<std::sync::Mutex<Option<String>>>,
}

impl Default for PoolStats {
    fn default() -> Self {
        PoolStats {
            created_at: chrono::Utc::now(),
            last_error: Arc::default(),
        }
    }
}

impl PoolStats {
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The sink that records the pool's connection errors here.
    fn sink(&self) -> Box<dyn bb8::ErrorSink<tokio_postgres::Error>> {
        Box::new(LastError(self.last_error.clone()))
    }
}

#[derive(Debug, Clone)]
struct LastError(Arc<std::sync::Mutex<Option<String>>>);

impl bb8::ErrorSink<tokio_postgres::Error> for LastError {
    fn sink(&self, error: tokio_postgres::Error) {
        let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("{at}: {error}"));
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<tokio_postgres::Error>> {
        Box::new(self.clone())
    }
}

/// One client pool as `GET /admin/pools` shows it.
#[derive(Debug, Clone)]
pub struct PoolReport {
    pub client_name: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub size: u32,
    pub idle: u32,
    pub max: u32,
    pub waits: u64,
    pub timeouts: u64,
    pub last_error: Option<String>,
}

// --- end pool stats ---

/// The schemas a client exposes to RPC: `metadata.rpc_schemas` (an array
/// of names) or `["public"]`. System schemas (`pg_*`,
/// `information_schema`) are dropped even when listed.
pub fn rpc_schemas(metadata: &serde_json::Value) -> Arc<[String]> {
    let listed: Option<Vec<String>> = metadata
        .get("rpc_schemas")
        .and_then(serde_json::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(serde_json::Value::as_str)
                .filter(|s| !is_system_schema(s) && !crate::db::migrate::is_gateway_schema(s))
                .map(str::to_string)
                .collect()
        });
    listed.unwrap_or_else(|| vec!["public".to_string()]).into()
}

/// Postgres' own schemas: `pg_catalog`, `pg_toast`, `pg_temp_N`, … (the
/// `pg_` prefix is reserved), `information_schema`, and the gateway's own
/// `athena_gateway` (`src/gateway/sql.rs` `OWN_SCHEMA`). The gateway's
/// tables in the shared schema `athena` are hidden one by one
/// (`crate::db::migrate::is_gateway_table`): apps keep their own tables
/// there (the SDK's `athena.users`).
pub fn is_system_schema(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.starts_with("pg_") || name == "information_schema" || name == "athena_gateway"
}

impl Tenant {
    /// A tenant outside the catalog (a direct PostgreSQL URI, see
    /// `src/db/direct.rs`): `uri` must already be redacted.
    pub fn detached(name: String, uri: String, pool: Pool) -> Tenant {
        Tenant {
            name,
            uri,
            raw_pool: pool.clone(),
            pool,
            schema: Arc::default(),
            rpc_schemas: rpc_schemas(&serde_json::Value::Null),
            stats: Arc::default(),
            config: Arc::default(),
            settings: PoolSettings::default(),
            checked_at: Instant::now(),
        }
    }
}

pub struct Tenants {
    catalog: Pool,
    settings: PoolSettings,
    /// The login raw SQL uses (`ATHENA_RAW_SQL_ROLE`); `None` = the URI's.
    raw_login: Option<Login>,
    entries: RwLock<HashMap<String, Arc<Tenant>>>,
}

impl Tenants {
    pub fn new(catalog: Pool, settings: PoolSettings, raw_login: Option<Login>) -> Self {
        Tenants {
            catalog,
            settings,
            raw_login,
            entries: RwLock::new(HashMap::new()),
        }
    }

    pub fn catalog(&self) -> &Pool {
        &self.catalog
    }

    /// The pool settings of a client without an override.
    pub fn default_settings(&self) -> PoolSettings {
        self.settings
    }

    /// The routable tenant for `name`: registered, active and not frozen.
    pub async fn resolve(&self, name: &str) -> Result<Arc<Tenant>, DomainError> {
        if let Some(t) = self.entries.read().await.get(name) {
            if t.checked_at.elapsed() < RECHECK {
                crate::stats::oplog::note_client(&t.name);
                return Ok(t.clone());
            }
        }
        let record = clients::get(&self.catalog, name).await?;
        // The override is re-read with the record (a change to either
        // notifies `athena_clients_changed`); its pool settings rebuild the pool.
        let config = Arc::new(match &record {
            Some(_) => client_configs::get(&self.catalog, name)
                .await?
                .map(|s| s.config)
                .unwrap_or_default(),
            None => ClientConfig::default(),
        });
        let settings = config.pool_settings(self.settings);
        let mut entries = self.entries.write().await;
        let Some(record) = record.filter(|r| r.is_active) else {
            entries.remove(name);
            return Err(DomainError::not_found("client", name));
        };
        if record.is_frozen {
            entries.remove(name);
            return Err(DomainError::FrozenClient(name.to_string()));
        }
        let uri = record.effective_uri().ok_or_else(|| {
            DomainError::Unavailable(format!("client {name} has no usable PostgreSQL URI"))
        })?;
        let stats = Arc::new(PoolStats::default());
        let tenant = match entries.get(name) {
            // Same URI and settings: keep the pool and the schema cache.
            Some(old) if old.uri == uri && old.settings == settings => Arc::new(Tenant {
                name: name.to_string(),
                uri,
                pool: old.pool.clone(),
                raw_pool: old.raw_pool.clone(),
                schema: old.schema.clone(),
                rpc_schemas: rpc_schemas(&record.metadata),
                stats: old.stats.clone(),
                config,
                settings,
                checked_at: Instant::now(),
            }),
            _ => Arc::new(Tenant {
                name: name.to_string(),
                pool: super::pool_observed(&uri, settings, None, stats.sink())?,
                stats,
                raw_pool: pool_as(
                    &uri,
                    PoolSettings {
                        max_size: (settings.max_size / 4).max(2),
                        ..settings
                    },
                    self.raw_login.as_ref(),
                )?,
                uri,
                schema: Arc::default(),
                rpc_schemas: rpc_schemas(&record.metadata),
                config,
                settings,
                checked_at: Instant::now(),
            }),
        };
        entries.insert(name.to_string(), tenant.clone());
        crate::stats::oplog::note_client(&tenant.name);
        Ok(tenant)
    }

    /// Forgets a client's pool and record (its catalog row changed).
    pub async fn evict(&self, name: &str) {
        self.entries.write().await.remove(name);
    }

    /// Drops a loaded client's introspection cache (DDL through
    /// `/management/*`, on this replica or another).
    pub async fn invalidate_schema(&self, name: &str) {
        let tenant = self.entries.read().await.get(name).cloned();
        if let Some(tenant) = tenant {
            tenant.schema.invalidate().await;
        }
    }

    /// Forgets every client (the change feed was interrupted).
    pub async fn evict_all(&self) {
        self.entries.write().await.clear();
    }

    /// Whether a client currently has an open pooled connection.
    pub async fn pool_connected(&self, name: &str) -> bool {
        self.entries
            .read()
            .await
            .get(name)
            .is_some_and(|t| t.pool.state().connections > 0)
    }

    /// Every client pool of this replica (`GET /admin/pools`), by name.
    pub async fn pool_reports(&self) -> Vec<PoolReport> {
        let entries = self.entries.read().await;
        let mut out: Vec<PoolReport> = entries
            .iter()
            .map(|(name, t)| {
                let s = t.pool.state();
                PoolReport {
                    client_name: name.clone(),
                    created_at: t.stats.created_at,
                    size: s.connections,
                    idle: s.idle_connections,
                    max: t.pool.config().max_size,
                    waits: s.statistics.get_waited,
                    timeouts: s.statistics.get_timed_out,
                    last_error: t.stats.last_error(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.client_name.cmp(&b.client_name));
        out
    }

    /// Pool sizes per client, for `/metrics`.
    pub async fn pool_states(&self) -> Vec<(String, u32, u32)> {
        let entries = self.entries.read().await;
        entries
            .iter()
            .map(|(name, t)| {
                let s = t.pool.state();
                (name.clone(), s.connections, s.idle_connections)
            })
            .collect()
    }
}
