//! Introspected tables, columns and foreign keys of one tenant database.
//! Identifiers from requests are resolved here before they reach SQL; a miss
//! triggers one reload (rate-limited) so freshly created tables are found.

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

/// A foreign-key constraint: `schema.table(columns)` references
/// `ref_schema.ref_table(ref_columns)`, column lists paired by position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    pub name: String,
    pub schema: String,
    pub table: String,
    pub columns: Vec<String>,
    pub ref_schema: String,
    pub ref_table: String,
    pub ref_columns: Vec<String>,
    /// Whether the referencing columns are all part of the table's primary
    /// key: only such keys make a table a many-to-many junction
    /// (PostgREST's rule).
    pub in_primary_key: bool,
}

impl ForeignKey {
    /// Whether `schema.table` holds the referencing columns.
    pub fn is_from(&self, schema: &str, table: &str) -> bool {
        self.schema == schema && self.table == table
    }

    /// Whether `schema.table` is the referenced table.
    pub fn is_to(&self, schema: &str, table: &str) -> bool {
        self.ref_schema == schema && self.ref_table == table
    }
}

type TableKey = (String, String);

#[derive(Default)]
struct Snapshot {
    tables: HashMap<TableKey, Arc<Table>>,
    /// Every foreign key, listed under both of its tables (once for a
    /// self-reference).
    foreign_keys: HashMap<TableKey, Vec<Arc<ForeignKey>>>,
    loaded_at: Option<Instant>,
}

impl Snapshot {
    fn stale(&self) -> bool {
        self.loaded_at
            .is_none_or(|at| at.elapsed() >= MIN_RELOAD_INTERVAL)
    }
}

#[derive(Default)]
pub struct SchemaCache {
    snapshot: RwLock<Snapshot>,
    /// `GET /schema` reports by schema name, as Postgres built them, with
    /// when (see [`SchemaCache::report`]).
    reports: std::sync::Mutex<HashMap<String, (Instant, Arc<str>)>>,
}

/// How long a `GET /schema` report is served from memory when no DDL
/// through Athena dropped it: DDL made outside Athena (psql, migrations)
/// shows within this; `Cache-Control: no-cache` reads the catalog now.
pub const REPORT_TTL: Duration = Duration::from_secs(2);

impl SchemaCache {
    /// A cache holding exactly these tables and foreign keys, never
    /// reloaded (for tests that resolve without a database: its pool is
    /// never used).
    #[cfg(test)]
    pub fn preloaded(tables: Vec<(&str, &str, Table)>, fks: Vec<ForeignKey>) -> SchemaCache {
        let mut snap = Snapshot {
            loaded_at: Some(Instant::now() + Duration::from_secs(3600)),
            ..Snapshot::default()
        };
        for (s, t, table) in tables {
            snap.tables.insert((s.into(), t.into()), Arc::new(table));
        }
        for fk in fks {
            let fk = Arc::new(fk);
            let from = (fk.schema.clone(), fk.table.clone());
            let to = (fk.ref_schema.clone(), fk.ref_table.clone());
            snap.foreign_keys
                .entry(from.clone())
                .or_default()
                .push(fk.clone());
            if to != from {
                snap.foreign_keys.entry(to).or_default().push(fk);
            }
        }
        SchemaCache {
            snapshot: RwLock::new(snap),
            reports: Default::default(),
        }
    }

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
        if snap.stale() && !snap.tables.contains_key(&key) {
            *snap = load(pool).await?;
        }
        snap.tables
            .get(&key)
            .cloned()
            .ok_or_else(|| DomainError::not_found("table", format!("{}.{}", key.0, key.1)))
    }

    /// The foreign keys on either side of the table (resolving the table
    /// first, so an unknown table is reported as such).
    pub async fn foreign_keys(
        &self,
        pool: &Pool,
        schema: &Ident,
        table: &Ident,
    ) -> Result<Vec<Arc<ForeignKey>>, DomainError> {
        self.table(pool, schema, table).await?;
        let key = (schema.as_str().to_string(), table.as_str().to_string());
        Ok(self
            .snapshot
            .read()
            .await
            .foreign_keys
            .get(&key)
            .cloned()
            .unwrap_or_default())
    }

    /// Reloads the catalog unless it was loaded moments ago: for misses a
    /// table lookup cannot see, such as a foreign key added to a known table.
    /// Returns whether a reload happened.
    pub async fn refresh(&self, pool: &Pool) -> Result<bool, DomainError> {
        let mut snap = self.snapshot.write().await;
        if !snap.stale() {
            return Ok(false);
        }
        *snap = load(pool).await?;
        Ok(true)
    }

    /// Forgets everything (after DDL through the gateway).
    pub async fn invalidate(&self) {
        *self.snapshot.write().await = Snapshot::default();
        self.reports_held().clear();
    }

    /// The `GET /schema` report of `schema`: the one held when it is younger
    /// than [`REPORT_TTL`] and `fresh` is not asked (`true` in the answer:
    /// served from memory), else `build()`'s (then held). Management DDL
    /// and other replicas' DDL (`athena_schema_changed`) drop it through
    /// [`SchemaCache::invalidate`]. The report is one catalog query, but on
    /// hundreds of tables Postgres' deparsers (`pg_get_expr` of defaults,
    /// `format_type`) make it tens of milliseconds: a tool polling it
    /// should not pay that each time.
    pub async fn report<F>(
        &self,
        schema: &str,
        fresh: bool,
        build: F,
    ) -> Result<Option<(Arc<str>, bool)>, DomainError>
    where
        F: std::future::Future<Output = Result<Option<String>, DomainError>>,
    {
        if !fresh {
            if let Some((at, text)) = self.reports_held().get(schema) {
                if at.elapsed() < REPORT_TTL {
                    return Ok(Some((text.clone(), true)));
                }
            }
        }
        let started = Instant::now();
        let Some(text) = build.await? else {
            self.reports_held().remove(schema);
            return Ok(None);
        };
        let text: Arc<str> = text.into();
        let mut held = self.reports_held();
        // Bounded: at most a few schemas per tenant are ever asked for.
        if held.len() >= 64 {
            held.clear();
        }
        held.insert(schema.to_string(), (started, text.clone()));
        Ok(Some((text, false)))
    }

    fn reports_held(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Arc<str>)>> {
        self.reports.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Tables the data plane never sees (`tenants::is_system_schema`,
/// `migrate::is_gateway_table`).
fn hidden(schema: &str, table: &str) -> bool {
    crate::db::tenants::is_system_schema(schema)
        || crate::db::migrate::is_gateway_table(schema, table)
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
        // What the data plane never sees: system schemas, the gateway's
        // own schema and its tables in `athena`.
        if hidden(&key.0, &key.1) {
            continue;
        }
        tables.entry(key).or_default().columns.push(Column {
            name: row.get(2),
            type_name: row.get(3),
        });
    }
    // Column names in constraint order, so multi-column keys pair up by
    // position. Clones of a partitioned table's constraint on its partitions
    // (conparentid <> 0) are left out: the parent's constraint is the edge.
    let rows = conn
        .query(
            "SELECT con.conname::text,
                    ns.nspname::text, cl.relname::text,
                    ARRAY(SELECT a.attname::text
                            FROM unnest(con.conkey) WITH ORDINALITY AS k(num, ord)
                            JOIN pg_catalog.pg_attribute a
                              ON a.attrelid = con.conrelid AND a.attnum = k.num
                           ORDER BY k.ord),
                    fns.nspname::text, fcl.relname::text,
                    ARRAY(SELECT a.attname::text
                            FROM unnest(con.confkey) WITH ORDINALITY AS k(num, ord)
                            JOIN pg_catalog.pg_attribute a
                              ON a.attrelid = con.confrelid AND a.attnum = k.num
                           ORDER BY k.ord),
                    COALESCE((SELECT pk.conkey @> con.conkey
                                FROM pg_catalog.pg_constraint pk
                               WHERE pk.conrelid = con.conrelid AND pk.contype = 'p'), false)
               FROM pg_catalog.pg_constraint con
               JOIN pg_catalog.pg_class cl ON cl.oid = con.conrelid
               JOIN pg_catalog.pg_namespace ns ON ns.oid = cl.relnamespace
               JOIN pg_catalog.pg_class fcl ON fcl.oid = con.confrelid
               JOIN pg_catalog.pg_namespace fns ON fns.oid = fcl.relnamespace
              WHERE con.contype = 'f' AND con.conparentid = 0
              ORDER BY 2, 3, 1",
            &[],
        )
        .await?;
    let mut foreign_keys: HashMap<TableKey, Vec<Arc<ForeignKey>>> = HashMap::new();
    for row in rows {
        let (from_schema, from_table): (String, String) = (row.get(1), row.get(2));
        let (to_schema, to_table): (String, String) = (row.get(4), row.get(5));
        if hidden(&from_schema, &from_table) || hidden(&to_schema, &to_table) {
            continue;
        }
        let fk = Arc::new(ForeignKey {
            name: row.get(0),
            schema: row.get(1),
            table: row.get(2),
            columns: row.get(3),
            ref_schema: row.get(4),
            ref_table: row.get(5),
            ref_columns: row.get(6),
            in_primary_key: row.get(7),
        });
        let from = (fk.schema.clone(), fk.table.clone());
        let to = (fk.ref_schema.clone(), fk.ref_table.clone());
        if from != to {
            foreign_keys.entry(to).or_default().push(fk.clone());
        }
        foreign_keys.entry(from).or_default().push(fk);
    }
    Ok(Snapshot {
        tables: tables.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
        foreign_keys,
        loaded_at: Some(Instant::now()),
    })
}
