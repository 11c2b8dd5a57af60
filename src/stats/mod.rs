//! Client statistics and database health (issue 19): the operation log
//! (`oplog`), the statistics built from it, pressure snapshots, query
//! optimization recommendations, table row estimates and vacuum health
//! (`health`). Everything lives in the catalog (the logging store).

pub mod health;
pub mod oplog;

use crate::db::Pool;
use crate::domain::DomainError;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// `ATHENA_OPERATION_LOG` (default on), `ATHENA_OPERATION_LOG_CAPACITY`
/// (queued rows before new ones are dropped, default 8192),
/// `ATHENA_HEALTH_COLLECT_SECONDS` (pressure and vacuum collectors, default
/// 300; 0 turns them off), `ATHENA_OPLOG_RETENTION_HOURS` (operation log
/// rows older than this are deleted by the collector, default 168 = 7 days;
/// 0 keeps them forever), `ATHENA_HEALTH_RETENTION_HOURS` (pressure runs and
/// snapshots, vacuum health snapshots but each client's latest, default 720
/// = 30 days; 0 keeps them).
#[derive(Debug, Clone)]
pub struct Settings {
    pub operation_log: bool,
    pub operation_log_capacity: usize,
    pub collect_every: Duration,
    pub oplog_retention: Option<Duration>,
    pub health_retention: Option<Duration>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            operation_log: true,
            operation_log_capacity: 8192,
            collect_every: Duration::from_secs(300),
            oplog_retention: Some(Duration::from_secs(168 * 3600)),
            health_retention: Some(Duration::from_secs(720 * 3600)),
        }
    }
}

impl Settings {
    pub fn from_env() -> Result<Settings, String> {
        let d = Settings::default();
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.trim().is_empty());
        let operation_log = match var("ATHENA_OPERATION_LOG").map(|v| v.to_ascii_lowercase()) {
            None => true,
            Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => true,
            Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => false,
            Some(v) => return Err(format!("ATHENA_OPERATION_LOG={v:?} is not a boolean")),
        };
        let num = |n: &str, default: u64| -> Result<u64, String> {
            match var(n) {
                None => Ok(default),
                Some(v) => v
                    .parse()
                    .map_err(|_| format!("{n}={v:?} is not a valid number")),
            }
        };
        let hours = |n: &str, default: Option<Duration>| -> Result<Option<Duration>, String> {
            let default = default.map_or(0, |d| d.as_secs() / 3600);
            Ok(match num(n, default)? {
                0 => None,
                h => Some(Duration::from_secs(h.saturating_mul(3600))),
            })
        };
        Ok(Settings {
            oplog_retention: hours("ATHENA_OPLOG_RETENTION_HOURS", d.oplog_retention)?,
            health_retention: hours("ATHENA_HEALTH_RETENTION_HOURS", d.health_retention)?,
            operation_log,
            operation_log_capacity: num(
                "ATHENA_OPERATION_LOG_CAPACITY",
                d.operation_log_capacity as u64,
            )? as usize,
            collect_every: Duration::from_secs(num(
                "ATHENA_HEALTH_COLLECT_SECONDS",
                d.collect_every.as_secs(),
            )?),
        })
    }
}

/// The issue-19 pieces the handlers and the server hold (one field of
/// `Handlers`).
pub struct Insights {
    pub oplog: oplog::OpLog,
    /// `pipelines:` of the `ATHENA_CONFIG` file (read-only templates).
    pub pipeline_templates: BTreeMap<String, crate::pipelines::Definition>,
}

impl Insights {
    /// The log writer (unless turned off), the boot templates, and the
    /// health collector loop.
    pub fn start(
        config: &crate::config::Config,
        tenants: std::sync::Arc<crate::db::tenants::Tenants>,
    ) -> Result<Insights, String> {
        let pipeline_templates = crate::pipelines::yaml_templates(config.config_file.as_deref())?;
        let s = &config.stats;
        let oplog = match s.operation_log {
            true => oplog::OpLog::start(tenants.catalog().clone(), s.operation_log_capacity),
            false => oplog::OpLog::off(),
        };
        health::spawn_collector(tenants, s.clone());
        Ok(Insights {
            oplog,
            pipeline_templates,
        })
    }
}

const CLIENT_COLUMNS: &str = "client_name, total_requests, successful_requests, failed_requests,
  total_cached_requests, total_operations, last_request_at, last_operation_at, updated_at";

fn client_record(r: &tokio_postgres::Row) -> Value {
    json!({
        "client_name": r.get::<_, String>(0),
        "total_requests": r.get::<_, i64>(1),
        "successful_requests": r.get::<_, i64>(2),
        "failed_requests": r.get::<_, i64>(3),
        "total_cached_requests": r.get::<_, i64>(4),
        "total_operations": r.get::<_, i64>(5),
        "last_request_at": r.get::<_, Option<chrono::DateTime<chrono::Utc>>>(6),
        "last_operation_at": r.get::<_, Option<chrono::DateTime<chrono::Utc>>>(7),
        "updated_at": r.get::<_, chrono::DateTime<chrono::Utc>>(8),
    })
}

/// Every client's totals, by name.
pub async fn list(pool: &Pool) -> Result<Vec<Value>, DomainError> {
    let conn = pool.get().await?;
    let sql = format!("SELECT {CLIENT_COLUMNS} FROM client_statistics ORDER BY client_name");
    Ok(conn
        .query(&sql, &[])
        .await?
        .iter()
        .map(client_record)
        .collect())
}

/// One client's totals and per-table rows; `None` when it has none.
pub async fn detail(pool: &Pool, client: &str) -> Result<Option<(Value, Vec<Value>)>, DomainError> {
    let conn = pool.get().await?;
    let sql = format!("SELECT {CLIENT_COLUMNS} FROM client_statistics WHERE client_name = $1");
    let Some(row) = conn.query_opt(&sql, &[&client]).await? else {
        return Ok(None);
    };
    let tables = conn
        .query(
            "SELECT client_name, table_name, operation, total_operations, error_operations,
                    last_operation_at, updated_at
               FROM client_table_statistics WHERE client_name = $1
              ORDER BY table_name, operation",
            &[&client],
        )
        .await?
        .iter()
        .map(|r| {
            json!({
                "client_name": r.get::<_, String>(0),
                "table_name": r.get::<_, String>(1),
                "operation": r.get::<_, String>(2),
                "total_operations": r.get::<_, i64>(3),
                "error_operations": r.get::<_, i64>(4),
                "last_operation_at": r.get::<_, Option<chrono::DateTime<chrono::Utc>>>(5),
                "updated_at": r.get::<_, chrono::DateTime<chrono::Utc>>(6),
            })
        })
        .collect();
    Ok(Some((client_record(&row), tables)))
}

/// Rebuilds both statistics tables from `gateway_operation_log` in one
/// transaction, holding the statistics lock exclusively (no batch adds to
/// them meanwhile): the same numbers the increments gave.
pub async fn refresh(pool: &Pool) -> Result<(), DomainError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&oplog::STATS_LOCK])
        .await?;
    tx.batch_execute(
        "DELETE FROM client_statistics;
         DELETE FROM client_table_statistics;
         INSERT INTO client_statistics
           (client_name, total_requests, successful_requests, failed_requests, total_cached_requests,
            total_operations, last_request_at, last_operation_at, updated_at)
         SELECT client_name, count(*), count(*) FILTER (WHERE status_code < 400),
                count(*) FILTER (WHERE status_code >= 400), count(*) FILTER (WHERE cached),
                count(*) FILTER (WHERE table_name IS NOT NULL), max(created_at),
                max(created_at) FILTER (WHERE table_name IS NOT NULL), now()
           FROM gateway_operation_log WHERE client_name IS NOT NULL GROUP BY client_name;
         INSERT INTO client_table_statistics
           (client_name, table_name, operation, total_operations, error_operations, last_operation_at, updated_at)
         SELECT client_name, table_name, operation, count(*), count(*) FILTER (WHERE status_code >= 400),
                max(created_at), now()
           FROM gateway_operation_log WHERE client_name IS NOT NULL AND table_name IS NOT NULL
          GROUP BY client_name, table_name, operation;",
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Rows deleted per retention statement (one short transaction each).
pub const RETENTION_BATCH: i64 = 5000;

/// Deletes the operation log rows older than `cutoff`, oldest first, in
/// batches of [`RETENTION_BATCH`] (one transaction each, holding the
/// statistics lock shared like a log batch). The statistics describe the
/// RETAINED log: each batch subtracts exactly what it deleted from
/// `client_statistics` / `client_table_statistics` (a row reaching zero goes),
/// so they keep matching what `refresh` recomputes. Returns the rows deleted.
pub async fn purge_oplog(
    pool: &Pool,
    cutoff: chrono::DateTime<chrono::Utc>,
) -> Result<u64, DomainError> {
    let mut total = 0u64;
    let mut conn = pool.get().await?;
    loop {
        let tx = conn.transaction().await?;
        tx.execute(
            "SELECT pg_advisory_xact_lock_shared($1)",
            &[&oplog::STATS_LOCK],
        )
        .await?;
        let n: i64 = tx
            .query_one(PURGE, &[&cutoff, &RETENTION_BATCH])
            .await?
            .get(0);
        if n > 0 {
            tx.batch_execute(
                "DELETE FROM client_table_statistics WHERE total_operations <= 0;
                 DELETE FROM client_statistics WHERE total_requests <= 0;
                 UPDATE client_statistics SET last_operation_at = NULL
                  WHERE total_operations <= 0 AND last_operation_at IS NOT NULL;",
            )
            .await?;
        }
        tx.commit().await?;
        total += n as u64;
        if n < RETENTION_BATCH {
            return Ok(total);
        }
    }
}

/// One retention batch: the oldest rows (by id: the log is appended in time
/// order; the created_at bound is checked per row, the BRIN index narrows
/// the scan) and their counts taken off the statistics, in key order.
const PURGE: &str = "
WITH del AS (
  DELETE FROM gateway_operation_log
   WHERE id IN (SELECT id FROM gateway_operation_log WHERE created_at < $1 ORDER BY id LIMIT $2)
  RETURNING client_name, table_name, operation, status_code, cached
), per_client AS (
  UPDATE client_statistics cs SET
    total_requests = cs.total_requests - x.n,
    successful_requests = cs.successful_requests - x.ok,
    failed_requests = cs.failed_requests - x.failed,
    total_cached_requests = cs.total_cached_requests - x.cached,
    total_operations = cs.total_operations - x.ops,
    updated_at = now()
  FROM (SELECT client_name, count(*) AS n, count(*) FILTER (WHERE status_code < 400) AS ok,
               count(*) FILTER (WHERE status_code >= 400) AS failed, count(*) FILTER (WHERE cached) AS cached,
               count(*) FILTER (WHERE table_name IS NOT NULL) AS ops
          FROM del WHERE client_name IS NOT NULL GROUP BY client_name ORDER BY client_name) x
  WHERE cs.client_name = x.client_name
), per_table AS (
  UPDATE client_table_statistics ts SET
    total_operations = ts.total_operations - x.n,
    error_operations = ts.error_operations - x.errors,
    updated_at = now()
  FROM (SELECT client_name, table_name, operation, count(*) AS n,
               count(*) FILTER (WHERE status_code >= 400) AS errors
          FROM del WHERE client_name IS NOT NULL AND table_name IS NOT NULL
         GROUP BY client_name, table_name, operation ORDER BY 1, 2, 3) x
  WHERE ts.client_name = x.client_name AND ts.table_name = x.table_name AND ts.operation = x.operation
)
SELECT count(*) FROM del";

/// Drilldown filter (`status`: all | errors | normal).
pub struct Drill<'a> {
    pub client: &'a str,
    pub table: &'a str,
    pub operation: &'a str,
    pub status: &'a str,
    pub limit: i64,
    pub offset: i64,
}

/// Log rows of one client's table operation, newest first.
pub async fn drilldown(pool: &Pool, d: &Drill<'_>) -> Result<Vec<Value>, DomainError> {
    let conn = pool.get().await?;
    let filter = match d.status {
        "errors" => "AND (error OR status_code >= 400)",
        "normal" => "AND NOT (error OR status_code >= 400)",
        _ => "",
    };
    let sql = format!(
        "SELECT request_id, client_name, table_name, operation, method, path, status_code,
                duration_ms, error, cache_key, created_at, cached
           FROM gateway_operation_log
          WHERE client_name = $1 AND table_name = $2 AND operation = $3 {filter}
          ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5"
    );
    let rows = conn
        .query(
            &sql,
            &[&d.client, &d.table, &d.operation, &d.limit, &d.offset],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let duration: i64 = r.get(7);
            json!({
                "request_id": r.get::<_, String>(0),
                "client_name": r.get::<_, Option<String>>(1),
                "table_name": r.get::<_, Option<String>>(2),
                "operation": r.get::<_, String>(3),
                "method": r.get::<_, Option<String>>(4),
                "path": r.get::<_, Option<String>>(5),
                "status_code": r.get::<_, i32>(6),
                "duration_ms": duration,
                "operation_time_ms": duration as f64,
                "error": r.get::<_, bool>(8),
                "cache_key": r.get::<_, Option<String>>(9),
                "created_at": r.get::<_, chrono::DateTime<chrono::Utc>>(10),
                "message": Value::Null,
                "details": {"cached": r.get::<_, bool>(11)},
            })
        })
        .collect())
}
