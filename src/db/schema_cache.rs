//! Introspected tables and columns of one tenant database. Identifiers from
//! requests are resolved here before they reach SQL; a miss triggers one
//! reload (rate-limited) so freshly created tables are found.

use super::Pool;
use crate::domain::identifier::Ident;
use crate::domain::DomainError;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

const MIN_RELOAD_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    /// `format_type()` of the column: a catalog-produced, already quoted
    /// type name that is safe to use in a cast.
    pub type_name: String,
}

#[derive(Debug, Default)]
pub struct Table {
    /// Columns in attribute order.
    pub columns: Vec<Column>,
}

impl Table {
    pub fn column(&self, name: &str) -> Result<&Column, DomainError> {
        self.columns
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| DomainError::UnknownColumn(name.to_string()))
    }
}

#[derive(Default)]
struct Snapshot {
    tables: HashMap<(String, String), Arc<Table>>,
    loaded_at: Option<Instant>,
}

#[derive(Default)]
pub struct SchemaCache {
    snapshot: RwLock<Snapshot>,
}

impl SchemaCache {
    /// The table, reloading the catalog once if it is not known yet.
    pub async fn table(
        &self,
        pool: &Pool,
        schema: &Ident,
        table: &Ident,
    ) -> Result<Arc<Table>, DomainError> {
        let key = (schema.as_str().to_string(), table.as_str().to_string());
        {
            let snap = self.snapshot.read().await;
            if let Some(t) = snap.tables.get(&key) {
                return Ok(t.clone());
            }
        }
        let mut snap = self.snapshot.write().await;
        let stale = snap
            .loaded_at
            .is_none_or(|at| at.elapsed() >= MIN_RELOAD_INTERVAL);
        if stale && !snap.tables.contains_key(&key) {
            *snap = load(pool).await?;
        }
        snap.tables
            .get(&key)
            .cloned()
            .ok_or_else(|| DomainError::UnknownTable(format!("{}.{}", key.0, key.1)))
    }

    /// Forgets everything (after DDL through the gateway).
    pub async fn invalidate(&self) {
        *self.snapshot.write().await = Snapshot::default();
    }
}

async fn load(pool: &Pool) -> Result<Snapshot, DomainError> {
    let conn = pool.get().await?;
    let rows = conn
        .query(
            "SELECT n.nspname::text, c.relname::text, a.attname::text,
                    pg_catalog.format_type(a.atttypid, a.atttypmod)
               FROM pg_catalog.pg_attribute a
               JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f')
                AND a.attnum > 0 AND NOT a.attisdropped
                AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                AND n.nspname NOT LIKE 'pg\\_toast%'
              ORDER BY 1, 2, a.attnum",
            &[],
        )
        .await?;
    let mut tables: HashMap<(String, String), Table> = HashMap::new();
    for row in rows {
        let key = (row.get::<_, String>(0), row.get::<_, String>(1));
        tables.entry(key).or_default().columns.push(Column {
            name: row.get(2),
            type_name: row.get(3),
        });
    }
    Ok(Snapshot {
        tables: tables.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
        loaded_at: Some(Instant::now()),
    })
}
