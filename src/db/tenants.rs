//! Clients (tenants): a name and a PostgreSQL URI kept in the catalog, each
//! with its own lazily created, bounded pool and schema cache. Records are
//! re-read from the catalog after `RECHECK` so a change made through another
//! replica takes effect everywhere within seconds.

use super::schema_cache::SchemaCache;
use super::{pool, Pool, PoolSettings};
use crate::domain::DomainError;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

const RECHECK: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    pub name: String,
    pub pg_uri: String,
    pub is_active: bool,
    pub is_frozen: bool,
}

pub struct Tenant {
    pub record: ClientRecord,
    pub pool: Pool,
    pub schema: Arc<SchemaCache>,
    checked_at: Instant,
}

pub struct Tenants {
    catalog: Pool,
    settings: PoolSettings,
    entries: RwLock<HashMap<String, Arc<Tenant>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Config,
    Env,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Config => "config",
            Source::Env => "env",
        }
    }
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

    /// Seeds clients from the config file or environment. A seed updates a
    /// row it created before, never one registered at runtime.
    pub async fn seed(
        &self,
        clients: &[(String, String)],
        source: Source,
    ) -> Result<(), DomainError> {
        let conn = self.catalog.get().await?;
        for (name, uri) in clients {
            conn.execute(
                "INSERT INTO athena_clients (client_name, pg_uri, source) VALUES ($1, $2, $3)
                 ON CONFLICT (client_name) DO UPDATE
                    SET pg_uri = EXCLUDED.pg_uri, updated_at = now()
                  WHERE athena_clients.source = EXCLUDED.source",
                &[name, uri, &source.as_str()],
            )
            .await?;
        }
        Ok(())
    }

    pub async fn list(&self) -> Result<Vec<ClientRecord>, DomainError> {
        let conn = self.catalog.get().await?;
        let rows = conn
            .query("SELECT client_name, pg_uri, is_active, is_frozen FROM athena_clients ORDER BY client_name", &[])
            .await?;
        Ok(rows.iter().map(record).collect())
    }

    /// The routable tenant for `name`: registered, active and not frozen.
    pub async fn resolve(&self, name: &str) -> Result<Arc<Tenant>, DomainError> {
        if let Some(t) = self.entries.read().await.get(name) {
            if t.checked_at.elapsed() < RECHECK {
                return routable(t.clone());
            }
        }
        let fresh = self.load(name).await?;
        let mut entries = self.entries.write().await;
        let tenant = match (fresh, entries.get(name)) {
            (None, _) => {
                entries.remove(name);
                return Err(DomainError::UnknownClient(name.to_string()));
            }
            // Same URI: keep the pool and schema cache, refresh the record.
            (Some(rec), Some(old)) if old.record.pg_uri == rec.pg_uri => Arc::new(Tenant {
                record: rec,
                pool: old.pool.clone(),
                schema: old.schema.clone(),
                checked_at: Instant::now(),
            }),
            (Some(rec), _) => Arc::new(Tenant {
                pool: pool(&rec.pg_uri, self.settings)?,
                record: rec,
                schema: Arc::default(),
                checked_at: Instant::now(),
            }),
        };
        entries.insert(name.to_string(), tenant.clone());
        routable(tenant)
    }

    async fn load(&self, name: &str) -> Result<Option<ClientRecord>, DomainError> {
        let conn = self.catalog.get().await?;
        let row = conn
            .query_opt(
                "SELECT client_name, pg_uri, is_active, is_frozen FROM athena_clients WHERE client_name = $1",
                &[&name],
            )
            .await?;
        Ok(row.as_ref().map(record))
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

fn record(row: &tokio_postgres::Row) -> ClientRecord {
    ClientRecord {
        name: row.get(0),
        pg_uri: row.get(1),
        is_active: row.get(2),
        is_frozen: row.get(3),
    }
}

fn routable(t: Arc<Tenant>) -> Result<Arc<Tenant>, DomainError> {
    if !t.record.is_active {
        return Err(DomainError::UnknownClient(t.record.name.clone()));
    }
    if t.record.is_frozen {
        return Err(DomainError::FrozenClient(t.record.name.clone()));
    }
    Ok(t)
}
