//! Runtime view of the clients (tenants): for each routable client a lazily
//! created, bounded pool and a schema cache. Entries are dropped the moment
//! the catalog row changes (LISTEN `athena_clients_changed`, see
//! `src/db/notify.rs`) and re-checked after `RECHECK` in any case, so a
//! change made through any replica takes effect everywhere.

use super::schema_cache::SchemaCache;
use super::{pool, Pool, PoolSettings};
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
    checked_at: Instant,
}

impl Tenant {
    /// A tenant outside the catalog (a direct PostgreSQL URI, see
    /// `src/db/direct.rs`): `uri` must already be redacted.
    pub fn detached(name: String, uri: String, pool: Pool) -> Tenant {
        Tenant {
            name,
            uri,
            pool,
            schema: Arc::default(),
            checked_at: Instant::now(),
        }
    }
}

pub struct Tenants {
    catalog: Pool,
    settings: PoolSettings,
    entries: RwLock<HashMap<String, Arc<Tenant>>>,
}

impl Tenants {
    pub fn new(catalog: Pool, settings: PoolSettings) -> Self {
        Tenants {
            catalog,
            settings,
            entries: RwLock::new(HashMap::new()),
        }
    }

    pub fn catalog(&self) -> &Pool {
        &self.catalog
    }

    /// The routable tenant for `name`: registered, active and not frozen.
    pub async fn resolve(&self, name: &str) -> Result<Arc<Tenant>, DomainError> {
        if let Some(t) = self.entries.read().await.get(name) {
            if t.checked_at.elapsed() < RECHECK {
                return Ok(t.clone());
            }
        }
        let record = clients::get(&self.catalog, name).await?;
        let mut entries = self.entries.write().await;
        let Some(record) = record.filter(|r| r.is_active) else {
            entries.remove(name);
            return Err(DomainError::UnknownClient(name.to_string()));
        };
        if record.is_frozen {
            entries.remove(name);
            return Err(DomainError::FrozenClient(name.to_string()));
        }
        let uri = record.effective_uri().ok_or_else(|| {
            DomainError::Unavailable(format!("client {name} has no usable PostgreSQL URI"))
        })?;
        let tenant = match entries.get(name) {
            // Same URI: keep the pool and the schema cache.
            Some(old) if old.uri == uri => Arc::new(Tenant {
                name: name.to_string(),
                uri,
                pool: old.pool.clone(),
                schema: old.schema.clone(),
                checked_at: Instant::now(),
            }),
            _ => Arc::new(Tenant {
                name: name.to_string(),
                pool: pool(&uri, self.settings)?,
                uri,
                schema: Arc::default(),
                checked_at: Instant::now(),
            }),
        };
        entries.insert(name.to_string(), tenant.clone());
        Ok(tenant)
    }

    /// Forgets a client's pool and record (its catalog row changed).
    pub async fn evict(&self, name: &str) {
        self.entries.write().await.remove(name);
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
