//! Database health for operators (issue 19): pressure snapshots (from the
//! operation log and this replica's pools), vacuum health and query
//! optimization recommendations (from the tenant's `pg_stat_*` views and
//! `pg_index`), and table row estimates (`pg_class.reltuples`).
//!
//! The collectors run in one background loop (`spawn_collector`, under the
//! supervisor) and on one replica at a time: each round takes
//! `pg_try_advisory_lock` on a catalog connection and skips the round when
//! another replica holds it. A tenant that cannot be reached is recorded
//! (`collection_error`), never retried in a tight loop.

use crate::db::tenants::Tenants;
use crate::db::Pool;
use crate::domain::identifier::Ident;
use crate::domain::DomainError;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// The collectors' advisory lock ("ATHE_HC1").
const COLLECT_LOCK: i64 = 0x4154_4845_5f48_4331;

type Ts = DateTime<Utc>;

// --- pressure ---

/// Snapshots every client with logged requests in `[start, end)`, for run
/// `run_id`. Returns how many were written.
pub async fn snapshot_window(
    pool: &Pool,
    run_id: i64,
    start: Ts,
    end: Ts,
) -> Result<u64, DomainError> {
    let conn = pool.get().await?;
    Ok(conn
        .execute(
            "INSERT INTO client_pressure_snapshots
               (run_id, client_name, window_start, window_end, requests, errors, request_rate,
                error_rate, p95_duration_ms, tables)
             SELECT $1, l.client_name, $2, $3, count(*), count(*) FILTER (WHERE l.status_code >= 400),
                    count(*)::float8 / GREATEST(extract(epoch FROM ($3::timestamptz - $2::timestamptz))::float8, 1),
                    (count(*) FILTER (WHERE l.status_code >= 400))::float8 / count(*),
                    percentile_cont(0.95) WITHIN GROUP (ORDER BY l.duration_ms),
                    (SELECT coalesce(jsonb_agg(t ORDER BY t.requests DESC), '[]'::jsonb)
                       FROM (SELECT g.table_name, count(*) AS requests,
                                    count(*) FILTER (WHERE g.status_code >= 400) AS errors,
                                    percentile_cont(0.95) WITHIN GROUP (ORDER BY g.duration_ms) AS p95_duration_ms
                               FROM gateway_operation_log g
                              WHERE g.client_name = l.client_name AND g.table_name IS NOT NULL
                                AND g.created_at >= $2 AND g.created_at < $3
                              GROUP BY g.table_name ORDER BY count(*) DESC LIMIT 20) t)
               FROM gateway_operation_log l
              WHERE l.created_at >= $2 AND l.created_at < $3 AND l.client_name IS NOT NULL
              GROUP BY l.client_name",
            &[&run_id, &start, &end],
        )
        .await?)
}

async fn new_run(
    pool: &Pool,
    kind: &str,
    status: &str,
    hours: Option<i32>,
) -> Result<i64, DomainError> {
    let conn = pool.get().await?;
    Ok(conn
        .query_one(
            "INSERT INTO client_pressure_runs (kind, status, hours_back) VALUES ($1, $2, $3) RETURNING id",
            &[&kind, &status, &hours],
        )
        .await?
        .get(0))
}

async fn finish_run(pool: &Pool, id: i64, outcome: Result<u64, &DomainError>) {
    let Ok(conn) = pool.get().await else { return };
    let (status, n, error) = match outcome {
        Ok(n) => ("completed", n as i32, None),
        Err(e) => ("failed", 0, Some(e.to_string())),
    };
    let _ = conn
        .execute(
            "UPDATE client_pressure_runs SET status = $2, snapshots = $3, error = $4, finished_at = now() WHERE id = $1",
            &[&id, &status, &n, &error],
        )
        .await;
}

/// One collection: the last `window` of the log, plus this replica's pool
/// waits and timeouts per client.
pub async fn collect_pressure(tenants: &Tenants, window: Duration) -> Result<u64, DomainError> {
    let pool = tenants.catalog();
    let run = new_run(pool, "collect", "running", None).await?;
    let end = Utc::now();
    let start = end - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::minutes(5));
    let outcome = snapshot_window(pool, run, start, end).await;
    if outcome.is_ok() {
        if let Ok(conn) = pool.get().await {
            for p in tenants.pool_reports().await {
                let _ = conn
                    .execute(
                        "UPDATE client_pressure_snapshots SET pool_waits = $3, pool_timeouts = $4
                          WHERE run_id = $1 AND client_name = $2",
                        &[
                            &run,
                            &p.client_name,
                            &(p.waits as i64),
                            &(p.timeouts as i64),
                        ],
                    )
                    .await;
            }
        }
    }
    finish_run(pool, run, outcome.as_ref().map(|n| *n)).await;
    outcome
}

/// Queues a backfill of `hours` hourly windows; the returned run is then
/// processed in the background (`process_backfills`).
pub async fn queue_backfill(pool: &Pool, hours: i32) -> Result<Value, DomainError> {
    let id = new_run(pool, "backfill", "queued", Some(hours)).await?;
    run_by_id(pool, id).await
}

/// Runs every queued backfill (claimed one at a time, SKIP LOCKED).
pub async fn process_backfills(pool: &Pool) -> Result<(), DomainError> {
    loop {
        let claimed = {
            let conn = pool.get().await?;
            conn.query_opt(
                "UPDATE client_pressure_runs SET status = 'running'
                  WHERE id = (SELECT id FROM client_pressure_runs WHERE kind = 'backfill' AND status = 'queued'
                               ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
                  RETURNING id, hours_back",
                &[],
            )
            .await?
        };
        let Some(row) = claimed else { return Ok(()) };
        let (id, hours): (i64, Option<i32>) = (row.get(0), row.get(1));
        let now = Utc::now();
        let mut total = 0u64;
        let mut outcome = Ok(0);
        for h in (0..hours.unwrap_or(24).max(1)).rev() {
            let end = now - chrono::Duration::hours(i64::from(h));
            let start = end - chrono::Duration::hours(1);
            match snapshot_window(pool, id, start, end).await {
                Ok(n) => total += n,
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        let outcome = outcome.map(|_: u64| total);
        finish_run(pool, id, outcome.as_ref().map(|n| *n)).await;
    }
}

fn run_json(r: &tokio_postgres::Row) -> Value {
    json!({
        "id": r.get::<_, i64>(0),
        "kind": r.get::<_, String>(1),
        "status": r.get::<_, String>(2),
        "hours_back": r.get::<_, Option<i32>>(3),
        "snapshots": r.get::<_, i32>(4),
        "error": r.get::<_, Option<String>>(5),
        "requested_at": r.get::<_, Ts>(6),
        "finished_at": r.get::<_, Option<Ts>>(7),
    })
}

const RUN_COLUMNS: &str =
    "id, kind, status, hours_back, snapshots, error, requested_at, finished_at";

async fn run_by_id(pool: &Pool, id: i64) -> Result<Value, DomainError> {
    let conn = pool.get().await?;
    let sql = format!("SELECT {RUN_COLUMNS} FROM client_pressure_runs WHERE id = $1");
    Ok(run_json(&conn.query_one(&sql, &[&id]).await?))
}

pub async fn last_run(pool: &Pool) -> Result<Option<Value>, DomainError> {
    let conn = pool.get().await?;
    let sql = format!("SELECT {RUN_COLUMNS} FROM client_pressure_runs ORDER BY id DESC LIMIT 1");
    Ok(conn.query_opt(&sql, &[]).await?.as_ref().map(run_json))
}

const SNAPSHOT_COLUMNS: &str =
    "id, run_id, client_name, window_start, window_end, requests, errors,
  request_rate, error_rate, p95_duration_ms, pool_waits, pool_timeouts, tables, recorded_at";

fn snapshot_json(r: &tokio_postgres::Row) -> Value {
    json!({
        "id": r.get::<_, i64>(0),
        "run_id": r.get::<_, Option<i64>>(1),
        "client_name": r.get::<_, String>(2),
        "window_start": r.get::<_, Ts>(3),
        "window_end": r.get::<_, Ts>(4),
        "requests": r.get::<_, i64>(5),
        "errors": r.get::<_, i64>(6),
        "request_rate_per_second": r.get::<_, f64>(7),
        "error_rate": r.get::<_, f64>(8),
        "p95_duration_ms": r.get::<_, Option<f64>>(9),
        "pool_waits": r.get::<_, Option<i64>>(10),
        "pool_timeouts": r.get::<_, Option<i64>>(11),
        "tables": r.get::<_, Value>(12),
        "recorded_at": r.get::<_, Ts>(13),
    })
}

/// The latest snapshot of every client.
pub async fn latest_snapshots(pool: &Pool) -> Result<Vec<Value>, DomainError> {
    let conn = pool.get().await?;
    let sql = format!(
        "SELECT DISTINCT ON (client_name) {SNAPSHOT_COLUMNS} FROM client_pressure_snapshots
          ORDER BY client_name, window_end DESC, id DESC"
    );
    Ok(conn
        .query(&sql, &[])
        .await?
        .iter()
        .map(snapshot_json)
        .collect())
}

/// One client's snapshots, newest first (at most 48).
pub async fn client_history(pool: &Pool, client: &str) -> Result<Vec<Value>, DomainError> {
    let conn = pool.get().await?;
    let sql = format!(
        "SELECT {SNAPSHOT_COLUMNS} FROM client_pressure_snapshots WHERE client_name = $1
          ORDER BY window_end DESC, id DESC LIMIT 48"
    );
    Ok(conn
        .query(&sql, &[&client])
        .await?
        .iter()
        .map(snapshot_json)
        .collect())
}

// --- vacuum health ---

/// This process (`instance_id` of its snapshots).
fn instance() -> uuid::Uuid {
    static ID: std::sync::OnceLock<uuid::Uuid> = std::sync::OnceLock::new();
    *ID.get_or_init(uuid::Uuid::new_v4)
}

struct TableStat {
    schema: String,
    rel: String,
    live: i64,
    dead: i64,
    last_vacuum: Option<Ts>,
    last_autovacuum: Option<Ts>,
    xid_age: Option<i64>,
}

async fn read_vacuum(
    tenant: &crate::db::tenants::Tenant,
) -> Result<(i64, Vec<TableStat>), DomainError> {
    let conn = tenant.pool.get().await?;
    let freeze: i64 = conn
        .query_one(
            "SELECT current_setting('autovacuum_freeze_max_age')::bigint",
            &[],
        )
        .await?
        .get(0);
    let rows = conn
        .query(
            "SELECT s.schemaname::text, s.relname::text, s.n_live_tup, s.n_dead_tup, s.last_vacuum,
                    s.last_autovacuum, age(c.relfrozenxid)::bigint
               FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
              ORDER BY s.n_dead_tup DESC, s.schemaname, s.relname LIMIT 500",
            &[],
        )
        .await?;
    Ok((
        freeze,
        rows.iter()
            .map(|r| TableStat {
                schema: r.get(0),
                rel: r.get(1),
                live: r.get(2),
                dead: r.get(3),
                last_vacuum: r.get(4),
                last_autovacuum: r.get(5),
                xid_age: r.get(6),
            })
            .collect(),
    ))
}

/// One snapshot of `client` (its tables, or the error that kept them).
pub async fn collect_vacuum(tenants: &Tenants, client: &str) -> Result<i64, DomainError> {
    let read = match tenants.resolve(client).await {
        Ok(t) => read_vacuum(&t).await,
        Err(e) => Err(e),
    };
    let host = std::env::var("HOSTNAME").ok();
    let mut conn = tenants.catalog().get().await?;
    let tx = conn.transaction().await?;
    let id: i64 = match &read {
        Err(e) => {
            let error = e.to_string();
            tx.query_one(
                "INSERT INTO vacuum_health_snapshots (client_name, instance_id, host, collection_error)
                 VALUES ($1, $2, $3, $4) RETURNING id",
                &[&client, &instance(), &host, &error],
            )
            .await?
            .get(0)
        }
        Ok((freeze, tables)) => {
            let needs = |t: &TableStat| t.dead > 50 + t.live / 5;
            let bloat = |t: &TableStat| t.dead > 1000 && t.dead * 5 > t.live;
            let risk = |t: &TableStat| t.xid_age.is_some_and(|a| a * 4 > freeze * 3);
            let total: i64 = tables.iter().map(|t| t.dead).sum();
            let count =
                |f: &dyn Fn(&TableStat) -> bool| tables.iter().filter(|t| f(t)).count() as i32;
            let id: i64 = tx
                .query_one(
                    "INSERT INTO vacuum_health_snapshots (client_name, instance_id, host, total_dead_rows,
                       tables_needing_vacuum, tables_with_bloat, xid_freeze_risk, freeze_max_age)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                    &[&client, &instance(), &host, &total, &count(&needs), &count(&bloat), &count(&risk), freeze],
                )
                .await?
                .get(0);
            let stmt = tx
                .prepare(
                    "INSERT INTO vacuum_health_table_stats (snapshot_id, schemaname, relname, n_live_tup,
                       n_dead_tup, dead_pct, last_vacuum, last_autovacuum, xid_age, xid_age_pct_of_freeze_max)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .await?;
            for t in tables {
                let pct = match t.live + t.dead {
                    0 => None,
                    n => Some(100.0 * t.dead as f64 / n as f64),
                };
                let xpct = t
                    .xid_age
                    .filter(|_| *freeze > 0)
                    .map(|a| 100.0 * a as f64 / *freeze as f64);
                tx.execute(
                    &stmt,
                    &[
                        &id,
                        &t.schema,
                        &t.rel,
                        &t.live,
                        &t.dead,
                        &pct,
                        &t.last_vacuum,
                        &t.last_autovacuum,
                        &t.xid_age,
                        &xpct,
                    ],
                )
                .await?;
            }
            id
        }
    };
    tx.commit().await?;
    Ok(id)
}

const VACUUM_COLUMNS: &str = "id, client_name, instance_id, host, recorded_at, total_dead_rows,
  tables_needing_vacuum, tables_with_bloat, xid_freeze_risk, freeze_max_age, collection_error";

fn vacuum_json(r: &tokio_postgres::Row) -> Value {
    json!({
        "id": r.get::<_, i64>(0),
        "client_name": r.get::<_, String>(1),
        "instance_id": r.get::<_, Option<uuid::Uuid>>(2),
        "host": r.get::<_, Option<String>>(3),
        "recorded_at": r.get::<_, Ts>(4),
        "total_dead_rows": r.get::<_, i64>(5),
        "tables_needing_vacuum": r.get::<_, i32>(6),
        "tables_with_bloat": r.get::<_, i32>(7),
        "xid_freeze_risk": r.get::<_, i32>(8),
        "freeze_max_age": r.get::<_, Option<i64>>(9),
        "collection_error": r.get::<_, Option<String>>(10),
    })
}

pub async fn vacuum_latest(pool: &Pool) -> Result<Vec<Value>, DomainError> {
    let conn = pool.get().await?;
    let sql = format!(
        "SELECT DISTINCT ON (client_name) {VACUUM_COLUMNS} FROM vacuum_health_snapshots ORDER BY client_name, id DESC"
    );
    Ok(conn
        .query(&sql, &[])
        .await?
        .iter()
        .map(vacuum_json)
        .collect())
}

/// The latest snapshot of `client` and its tables; `None` without one.
pub async fn vacuum_detail(
    pool: &Pool,
    client: &str,
) -> Result<Option<(Value, Vec<Value>)>, DomainError> {
    let conn = pool.get().await?;
    let sql = format!(
        "SELECT {VACUUM_COLUMNS} FROM vacuum_health_snapshots WHERE client_name = $1 ORDER BY id DESC LIMIT 1"
    );
    let Some(row) = conn.query_opt(&sql, &[&client]).await? else {
        return Ok(None);
    };
    let id: i64 = row.get(0);
    let tables = conn
        .query(
            "SELECT id, snapshot_id, schemaname, relname, n_live_tup, n_dead_tup, dead_pct, last_vacuum,
                    last_autovacuum, xid_age, xid_age_pct_of_freeze_max
               FROM vacuum_health_table_stats WHERE snapshot_id = $1 ORDER BY n_dead_tup DESC, id",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| {
            json!({
                "id": r.get::<_, i64>(0),
                "snapshot_id": r.get::<_, i64>(1),
                "schemaname": r.get::<_, String>(2),
                "relname": r.get::<_, String>(3),
                "n_live_tup": r.get::<_, i64>(4),
                "n_dead_tup": r.get::<_, i64>(5),
                "dead_pct": r.get::<_, Option<f64>>(6),
                "last_vacuum": r.get::<_, Option<Ts>>(7),
                "last_autovacuum": r.get::<_, Option<Ts>>(8),
                "xid_age": r.get::<_, Option<i64>>(9),
                "xid_age_pct_of_freeze_max": r.get::<_, Option<f64>>(10),
            })
        })
        .collect();
    Ok(Some((vacuum_json(&row), tables)))
}

// --- the collector loop ---

/// Every `collect_every`: pressure, vacuum health of every client, queued
/// backfills and retention; one replica at a time. Zero: never.
pub fn spawn_collector(tenants: Arc<Tenants>, settings: super::Settings) {
    let every = settings.collect_every;
    if every.is_zero() {
        return;
    }
    crate::supervisor::supervise("health collector", Default::default(), move || {
        let (tenants, settings) = (tenants.clone(), settings.clone());
        async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = collect_round(&tenants, &settings).await {
                    tracing::warn!(error = %e, "health collection round failed");
                }
            }
        }
    });
}

/// One round, when this replica leads it. Leadership is a
/// TRANSACTION-scoped advisory lock (`pg_try_advisory_xact_lock`) held by
/// a transaction open on one catalog connection for the whole round: it
/// ends with the transaction (commit, rollback, a dropped future's
/// rollback, or the connection closing), so it can never stay behind on a
/// pooled connection nor be lost while the round runs. Under the lock the
/// leader also skips the round when a collection started less than 90% of
/// an interval ago (another replica's tick): one collection per interval
/// however many replicas tick.
pub async fn collect_round(
    tenants: &Tenants,
    settings: &super::Settings,
) -> Result<bool, DomainError> {
    let pool = tenants.catalog();
    let mut lead = pool.get().await?;
    let tx = lead.transaction().await?;
    let got: bool = tx
        .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&COLLECT_LOCK])
        .await?
        .get(0);
    if !got {
        return Ok(false);
    }
    let window = settings.collect_every;
    let recent: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM client_pressure_runs WHERE kind = 'collect'
                             AND requested_at > clock_timestamp() - $1::float8 * interval '1 second')",
            &[&(window.as_secs_f64() * 0.9)],
        )
        .await?
        .get(0);
    if recent {
        tx.rollback().await?;
        return Ok(false);
    }
    collect_pressure(tenants, window).await?;
    process_backfills(pool).await?;
    for client in crate::catalog::clients::list(pool).await? {
        if client.is_frozen {
            continue;
        }
        // Never stops the round: the error is the snapshot.
        if let Err(e) = collect_vacuum(tenants, &client.client_name).await {
            tracing::warn!(client = %client.client_name, error = %e, "vacuum health not stored");
        }
    }
    retention(pool, settings).await?;
    tx.commit().await?;
    Ok(true)
}

/// Deletes what is older than the retention settings, in bounded batches:
/// the operation log (its statistics follow, `super::purge_oplog`),
/// pressure snapshots and finished runs, and vacuum health snapshots (each
/// client's latest is kept: the detail route shows it).
pub async fn retention(pool: &Pool, settings: &super::Settings) -> Result<(), DomainError> {
    let cutoff =
        |d: Duration| Utc::now() - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    if let Some(keep) = settings.oplog_retention {
        let n = super::purge_oplog(pool, cutoff(keep)).await?;
        if n > 0 {
            tracing::info!(rows = n, "operation log retention");
        }
    }
    let Some(keep) = settings.health_retention else {
        return Ok(());
    };
    let before = cutoff(keep);
    let conn = pool.get().await?;
    for sql in [
        "DELETE FROM client_pressure_snapshots WHERE id IN
           (SELECT id FROM client_pressure_snapshots WHERE recorded_at < $1 ORDER BY id LIMIT $2)",
        "DELETE FROM client_pressure_runs WHERE id IN
           (SELECT id FROM client_pressure_runs WHERE requested_at < $1 AND status IN ('completed', 'failed')
             ORDER BY id LIMIT $2)",
        "DELETE FROM vacuum_health_snapshots WHERE id IN
           (SELECT id FROM vacuum_health_snapshots v WHERE recorded_at < $1
               AND id <> (SELECT max(l.id) FROM vacuum_health_snapshots l WHERE l.client_name = v.client_name)
             ORDER BY id LIMIT $2)",
    ] {
        while conn.execute(sql, &[&before, &super::RETENTION_BATCH]).await? as i64
            >= super::RETENTION_BATCH
        {}
    }
    Ok(())
}

// --- query optimizations ---

struct Rec {
    kind: &'static str,
    schema: String,
    table: String,
    columns: Vec<String>,
    sql: Option<String>,
    rationale: String,
}

fn index_name(table: &str, columns: &[String]) -> String {
    let name = format!("athena_{}_{}_idx", table, columns.join("_"));
    if name.len() <= 63 {
        return name;
    }
    // Cut to fit, with a hash of the whole name so two long names that
    // share their first 54 bytes stay two indexes (FNV-1a, stable).
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let mut cut = name;
    while cut.len() > 54 {
        cut.pop();
    }
    format!("{cut}_{:08x}", hash as u32)
}

fn create_index_sql(schema: &str, table: &str, columns: &[String]) -> Result<String, DomainError> {
    let s = Ident::parse("schema", schema)?;
    let t = Ident::parse("table", table)?;
    let n = Ident::parse("index", &index_name(table, columns))?;
    let cols = columns
        .iter()
        .map(|c| Ident::parse("column", c).map(|c| c.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(format!(
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS {n} ON {s}.{t} ({})",
        cols.join(", ")
    ))
}

async fn analyze(tenant: &crate::db::tenants::Tenant) -> Result<Vec<Rec>, DomainError> {
    let conn = tenant.pool.get().await?;
    let mut out = Vec::new();
    // Seq-scan-heavy tables: the first column that leads no index (a
    // `*_id` column first), to index.
    let heavy = conn
        .query(
            "SELECT s.schemaname::text, s.relname::text, s.seq_scan, s.seq_tup_read, coalesce(s.idx_scan, 0),
                    (SELECT a.attname::text FROM pg_attribute a
                      WHERE a.attrelid = s.relid AND a.attnum > 0 AND NOT a.attisdropped
                        AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = s.relid AND i.indkey[0] = a.attnum)
                        AND EXISTS (SELECT 1 FROM pg_opclass o JOIN pg_am m ON m.oid = o.opcmethod
                                     WHERE m.amname = 'btree' AND o.opcdefault AND o.opcintype = a.atttypid)
                      ORDER BY (a.attname LIKE '%\\_id' ESCAPE '\\') DESC, a.attnum LIMIT 1)
               FROM pg_stat_user_tables s
              WHERE s.seq_scan >= 50 AND s.seq_tup_read >= 10000 AND s.seq_scan > coalesce(s.idx_scan, 0)
              ORDER BY s.seq_tup_read DESC LIMIT 50",
            &[],
        )
        .await?;
    for r in heavy {
        let (schema, table): (String, String) = (r.get(0), r.get(1));
        let Some(column) = r.get::<_, Option<String>>(5) else {
            continue;
        };
        let columns = vec![column];
        out.push(Rec {
            kind: "missing_index",
            sql: Some(create_index_sql(&schema, &table, &columns)?),
            rationale: format!(
                "{} sequential scans read {} rows ({} index scans); no index leads with {}",
                r.get::<_, i64>(2),
                r.get::<_, i64>(3),
                r.get::<_, i64>(4),
                columns[0]
            ),
            schema,
            table,
            columns,
        });
    }
    // Foreign keys whose columns lead no index.
    let fks = conn
        .query(
            "SELECT n.nspname::text, c.relname::text,
                    ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(n, o)
                            JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.o),
                    k.conname::text
               FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE k.contype = 'f' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                AND n.nspname NOT LIKE 'pg\\_%' ESCAPE '\\'
                AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = k.conrelid
                                  AND (i.indkey::int2[])[0:cardinality(k.conkey) - 1] = k.conkey)",
            &[],
        )
        .await?;
    for r in fks {
        let (schema, table, columns, name): (String, String, Vec<String>, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        out.push(Rec {
            kind: "unindexed_foreign_key",
            sql: Some(create_index_sql(&schema, &table, &columns)?),
            rationale: format!("foreign key {name} has no index leading with its columns: joins and deletes on the referenced table scan {table}"),
            schema,
            table,
            columns,
        });
    }
    // Unused and duplicate indexes (never unique or primary).
    let idx = conn
        .query(
            "SELECT s.schemaname::text, s.relname::text, s.indexrelname::text, s.idx_scan,
                    ARRAY(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY u(n, o)
                            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = u.n ORDER BY u.o),
                    (SELECT min(d.indexrelid::regclass::text) FROM pg_index d
                      WHERE d.indrelid = i.indrelid AND d.indexrelid < i.indexrelid AND d.indisvalid AND d.indisready
                        AND d.indkey::text = i.indkey::text AND d.indclass::text = i.indclass::text
                        AND d.indcollation::text = i.indcollation::text AND d.indoption::text = i.indoption::text AND d.indnkeyatts = i.indnkeyatts
                        AND coalesce(pg_get_expr(d.indexprs, d.indrelid), '') = coalesce(pg_get_expr(i.indexprs, i.indrelid), '')
                        AND coalesce(pg_get_expr(d.indpred, d.indrelid), '') = coalesce(pg_get_expr(i.indpred, i.indrelid), ''))
               FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
              WHERE NOT i.indisunique AND NOT i.indisprimary",
            &[],
        )
        .await?;
    for r in idx {
        let (schema, table, index, scans, columns, twin): (
            String,
            String,
            String,
            i64,
            Vec<String>,
            Option<String>,
        ) = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5));
        if let Some(twin) = twin {
            out.push(Rec {
                kind: "duplicate_index",
                sql: Some(drop_index_sql(&schema, &index)?),
                rationale: format!("index {index} duplicates {twin} (same columns, operator classes, expressions and predicate)"),
                schema,
                table,
                columns,
            });
        } else if scans == 0 {
            out.push(Rec {
                kind: "unused_index",
                sql: None,
                rationale: format!("index {index} has not been scanned since statistics were last reset; review before dropping"),
                schema,
                table,
                columns,
            });
        }
    }
    Ok(out)
}

const REC_COLUMNS: &str =
    "id, run_id, client_name, kind, schema_name, table_name, columns, sql, rationale,
  status, applied_by, applied_at, apply_error, created_at, updated_at";

fn rec_json(r: &tokio_postgres::Row) -> Value {
    json!({
        "id": r.get::<_, i64>(0),
        "run_id": r.get::<_, i64>(1),
        "client_name": r.get::<_, String>(2),
        "kind": r.get::<_, String>(3),
        "schema": r.get::<_, String>(4),
        "table": r.get::<_, String>(5),
        "columns": r.get::<_, Vec<String>>(6),
        "sql": r.get::<_, Option<String>>(7),
        "rationale": r.get::<_, String>(8),
        "status": r.get::<_, String>(9),
        "applied_by": r.get::<_, Option<String>>(10),
        "applied_at": r.get::<_, Option<Ts>>(11),
        "apply_error": r.get::<_, Option<String>>(12),
        "created_at": r.get::<_, Ts>(13),
        "updated_at": r.get::<_, Ts>(14),
    })
}

const OPT_RUN_COLUMNS: &str =
    "id, client_name, status, recommendations, error, started_at, finished_at";

fn opt_run_json(r: &tokio_postgres::Row) -> Value {
    json!({
        "id": r.get::<_, i64>(0),
        "client_name": r.get::<_, String>(1),
        "status": r.get::<_, String>(2),
        "recommendations": r.get::<_, i32>(3),
        "error": r.get::<_, Option<String>>(4),
        "started_at": r.get::<_, Ts>(5),
        "finished_at": r.get::<_, Option<Ts>>(6),
    })
}

/// A refresh: analyze the tenant, record a run and its recommendations
/// (one per finding; a finding seen before keeps its id and status).
pub async fn refresh_optimizations(
    tenants: &Tenants,
    client: &str,
) -> Result<(Value, Vec<Value>), DomainError> {
    let tenant = tenants.resolve(client).await?;
    let found = analyze(&tenant).await;
    let mut conn = tenants.catalog().get().await?;
    let tx = conn.transaction().await?;
    let (status, error) = match &found {
        Ok(_) => ("completed", None),
        Err(e) => ("failed", Some(e.to_string())),
    };
    let n = found.as_ref().map_or(0, |f| f.len() as i32);
    let run: i64 = tx
        .query_one(
            "INSERT INTO query_optimization_runs (client_name, status, recommendations, error, finished_at)
             VALUES ($1, $2, $3, $4, now()) RETURNING id",
            &[&client, &status, &n, &error],
        )
        .await?
        .get(0);
    let mut recs = Vec::new();
    if let Ok(found) = &found {
        let sql = format!(
            "INSERT INTO query_optimization_recommendations
               (run_id, client_name, kind, schema_name, table_name, columns, sql, rationale, fingerprint)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (client_name, fingerprint) DO UPDATE SET run_id = EXCLUDED.run_id,
               sql = EXCLUDED.sql, rationale = EXCLUDED.rationale, updated_at = now(),
               -- Found again after it was applied: the fix is gone (the
               -- index dropped); open again. Dismissed stays dismissed.
               status = CASE WHEN query_optimization_recommendations.status = 'applied'
                             THEN 'open' ELSE query_optimization_recommendations.status END
             RETURNING {REC_COLUMNS}"
        );
        let stmt = tx.prepare(&sql).await?;
        for f in found {
            let fingerprint = format!(
                "{}:{}.{}:{}",
                f.kind,
                f.schema,
                f.table,
                f.columns.join(",")
            );
            let row = tx
                .query_one(
                    &stmt,
                    &[
                        &run,
                        &client,
                        &f.kind,
                        &f.schema,
                        &f.table,
                        &f.columns,
                        &f.sql,
                        &f.rationale,
                        &fingerprint,
                    ],
                )
                .await?;
            recs.push(rec_json(&row));
        }
    }
    let sql = format!("SELECT {OPT_RUN_COLUMNS} FROM query_optimization_runs WHERE id = $1");
    let run = opt_run_json(&tx.query_one(&sql, &[&run]).await?);
    tx.commit().await?;
    found?;
    Ok((run, recs))
}

pub async fn list_recommendations(
    pool: &Pool,
    client: &str,
    status: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<Value>, DomainError> {
    let conn = pool.get().await?;
    let sql = format!(
        "SELECT {REC_COLUMNS} FROM query_optimization_recommendations
          WHERE client_name = $1 AND ($2::text IS NULL OR status = $2)
          ORDER BY id LIMIT $3 OFFSET $4"
    );
    Ok(conn
        .query(&sql, &[&client, &status, &limit, &offset])
        .await?
        .iter()
        .map(rec_json)
        .collect())
}

pub async fn list_runs(
    pool: &Pool,
    client: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<Value>, DomainError> {
    let conn = pool.get().await?;
    let sql = format!(
        "SELECT {OPT_RUN_COLUMNS} FROM query_optimization_runs WHERE client_name = $1
          ORDER BY id DESC LIMIT $2 OFFSET $3"
    );
    Ok(conn
        .query(&sql, &[&client, &limit, &offset])
        .await?
        .iter()
        .map(opt_run_json)
        .collect())
}

/// Runs the stored statement of recommendation `id` of `client` (only SQL
/// this module generated and stored; never request text) and records the
/// outcome. `None`: no such recommendation for this client.
pub async fn apply(
    tenants: &Tenants,
    client: &str,
    id: i64,
    actor: &str,
) -> Result<Option<Value>, DomainError> {
    let pool = tenants.catalog();
    let sql = format!("SELECT {REC_COLUMNS} FROM query_optimization_recommendations WHERE id = $1 AND client_name = $2");
    let row = {
        let conn = pool.get().await?;
        conn.query_opt(&sql, &[&id, &client]).await?
    };
    let Some(row) = row else { return Ok(None) };
    let rec = rec_json(&row);
    if rec["status"] == "applied" {
        return Ok(Some(
            json!({"recommendation": rec, "applied": true, "already_applied": true}),
        ));
    }
    let Some(statement) = row.get::<_, Option<String>>(7) else {
        return Err(DomainError::Invalid(format!(
            "recommendation {id} ({}) is advisory: it has no statement to apply",
            rec["kind"].as_str().unwrap_or("")
        )));
    };
    let tenant = tenants.resolve(client).await?;
    if rec["kind"] == "duplicate_index" {
        return drop_duplicate(tenants, &tenant, client, id, actor, &row, &statement)
            .await
            .map(Some);
    }
    let schema: String = row.get(4);
    let table: String = row.get(5);
    let columns: Vec<String> = row.get(6);
    let creates = statement.starts_with("CREATE INDEX CONCURRENTLY");
    let index = index_name(&table, &columns);
    // In its own task: a request cut at its deadline does not cancel a
    // long index build half way (the next `apply` then finds the index
    // built and valid, and records it applied).
    let executed = statement.clone();
    let build = tokio::spawn(async move {
        let conn = tenant.pool.get().await.map_err(|e| e.to_string())?;
        // An index build takes as long as the table needs: no statement
        // timeout for it (the pool's is restored after).
        conn.batch_execute("SET statement_timeout = 0")
            .await
            .map_err(|e| e.to_string())?;
        let outcome = create_or_run(&conn, &statement, creates, &schema, &index).await;
        let _ = conn.batch_execute("RESET statement_timeout").await;
        outcome
    });
    let outcome: Result<(), String> = match build.await {
        Ok(outcome) => outcome,
        Err(e) => Err(format!("the statement's task failed: {e}")),
    };
    let conn = pool.get().await?;
    let update = format!(
        "UPDATE query_optimization_recommendations SET
           status = CASE WHEN $3::text IS NULL THEN 'applied' ELSE status END,
           applied_by = CASE WHEN $3::text IS NULL THEN $4 ELSE applied_by END,
           applied_at = CASE WHEN $3::text IS NULL THEN now() ELSE applied_at END,
           apply_error = $3, updated_at = now()
         WHERE id = $1 AND client_name = $2 RETURNING {REC_COLUMNS}"
    );
    let error = outcome.err();
    let row = conn
        .query_one(&update, &[&id, &client, &error, &actor])
        .await?;
    Ok(Some(json!({
        "recommendation": rec_json(&row),
        "applied": error.is_none(),
        "executed_sql": executed,
        "error": error,
    })))
}

/// The duplicate indexes of `schema.table` as they are NOW, each with the
/// statement that drops it: non-unique, non-primary indexes with the same
/// keys, operator classes, expressions and predicate as another index of
/// the table that is valid, ready and live (the one kept).
const DUPLICATES_NOW: &str = "
SELECT n.nspname::text, c.relname::text, min(k.relname::text)
  FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_index d ON d.indrelid = i.indrelid AND d.indexrelid <> i.indexrelid
   AND d.indisvalid AND d.indisready AND d.indislive
   AND d.indkey::text = i.indkey::text AND d.indclass::text = i.indclass::text
                        AND d.indcollation::text = i.indcollation::text AND d.indoption::text = i.indoption::text AND d.indnkeyatts = i.indnkeyatts
   AND coalesce(pg_get_expr(d.indexprs, d.indrelid), '') = coalesce(pg_get_expr(i.indexprs, i.indrelid), '')
   AND coalesce(pg_get_expr(d.indpred, d.indrelid), '') = coalesce(pg_get_expr(i.indpred, i.indrelid), '')
  JOIN pg_catalog.pg_class k ON k.oid = d.indexrelid
 WHERE i.indrelid = $1::text::regclass AND NOT i.indisunique AND NOT i.indisprimary
 GROUP BY 1, 2";

fn drop_index_sql(schema: &str, index: &str) -> Result<String, DomainError> {
    let s = Ident::parse("schema", schema)?;
    let n = Ident::parse("index", index)?;
    Ok(format!("DROP INDEX IF EXISTS {s}.{n}"))
}

/// Applies a `duplicate_index` recommendation: in ONE tenant transaction,
/// lock the table (SHARE UPDATE EXCLUSIVE: no concurrent index build or
/// drop, reads and writes go on), re-read the catalog, and drop the index
/// only if it still exists AND still duplicates another index that is valid
/// (never the last one of its kind); then `DROP INDEX` in that same
/// transaction (a plain drop: CONCURRENTLY cannot run inside one; its
/// ACCESS EXCLUSIVE lock is brief and bounded by `lock_timeout`). If the
/// situation changed: nothing dropped, 200 with `applied: false`, the
/// recommendation stays open with the reason in `apply_error`.
async fn drop_duplicate(
    tenants: &Tenants,
    tenant: &crate::db::tenants::Tenant,
    client: &str,
    id: i64,
    actor: &str,
    row: &tokio_postgres::Row,
    statement: &str,
) -> Result<Value, DomainError> {
    let schema: String = row.get(4);
    let table: String = row.get(5);
    // Stored before this check existed: the same index, dropped CONCURRENTLY.
    let wanted = statement.replacen(
        "DROP INDEX CONCURRENTLY IF EXISTS",
        "DROP INDEX IF EXISTS",
        1,
    );
    let qualified = format!(
        "{}.{}",
        Ident::parse("schema", &schema)?,
        Ident::parse("table", &table)?
    );
    let pg = |e: tokio_postgres::Error| {
        e.as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_else(|| e.to_string())
    };
    let mut conn = tenant.pool.get().await?;
    let checked: Result<Result<String, String>, String> = async {
        let tx = conn.transaction().await.map_err(pg)?;
        tx.batch_execute("SET LOCAL lock_timeout = '10s'").await.map_err(pg)?;
        if let Err(e) = tx
            .batch_execute(&format!("LOCK TABLE {qualified} IN SHARE UPDATE EXCLUSIVE MODE"))
            .await
        {
            if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) {
                return Ok(Err(format!("table {schema}.{table} no longer exists")));
            }
            return Err(pg(e));
        }
        let now = tx.query(DUPLICATES_NOW, &[&qualified]).await.map_err(pg)?;
        let mut found = None;
        for r in &now {
            let (s, index, kept): (String, String, String) = (r.get(0), r.get(1), r.get(2));
            if drop_index_sql(&s, &index).map_err(|e| e.to_string())? == wanted {
                found = Some((index, kept));
            }
        }
        let Some((index, kept)) = found else {
            return Ok(Err(format!(
                "the index no longer exists or no longer duplicates a valid index of {schema}.{table}: nothing dropped; refresh the recommendations"
            )));
        };
        tx.batch_execute(&wanted).await.map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(Ok(format!("{index} dropped; {kept} kept")))
    }
    .await;
    let catalog = tenants.catalog().get().await?;
    let update = format!(
        "UPDATE query_optimization_recommendations SET
           status = CASE WHEN $3::text IS NULL THEN 'applied' ELSE status END,
           applied_by = CASE WHEN $3::text IS NULL THEN $4 ELSE applied_by END,
           applied_at = CASE WHEN $3::text IS NULL THEN now() ELSE applied_at END,
           apply_error = $3, updated_at = now()
         WHERE id = $1 AND client_name = $2 RETURNING {REC_COLUMNS}"
    );
    // Stale (the duplicate or the index it duplicates changed meanwhile):
    // like a failed statement, a 200 with `applied: false` and the reason
    // (the contract's answer for an apply that did not apply).
    let error = match &checked {
        Ok(Ok(_)) => None,
        Ok(Err(why)) => Some(format!("stale: {why}")),
        Err(e) => Some(e.clone()),
    };
    let row = catalog
        .query_one(&update, &[&id, &client, &error, &actor])
        .await?;
    Ok(json!({
        "recommendation": rec_json(&row),
        "applied": error.is_none(),
        "executed_sql": wanted,
        "error": error,
    }))
}

/// Runs a stored statement. An index build first drops an INVALID index of
/// the same name (left by a build cancelled earlier: `IF NOT EXISTS` would
/// skip it and report success), and succeeds only when the new index is
/// valid.
async fn create_or_run(
    conn: &crate::db::conn::Conn,
    statement: &str,
    creates: bool,
    schema: &str,
    index: &str,
) -> Result<(), String> {
    let pg = |e: tokio_postgres::Error| {
        e.as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_else(|| e.to_string())
    };
    const VALID: &str = "SELECT i.indisvalid FROM pg_catalog.pg_index i
                   JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
                   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = $1 AND c.relname = $2";
    let is_valid = |r: Option<tokio_postgres::Row>| r.map(|r| r.get::<_, bool>(0));
    let before = conn
        .query_opt(VALID, &[&schema, &index])
        .await
        .map_err(pg)?;
    if creates && is_valid(before) == Some(false) {
        let s = Ident::parse("schema", schema).map_err(|e| e.to_string())?;
        let n = Ident::parse("index", index).map_err(|e| e.to_string())?;
        conn.batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {s}.{n}"))
            .await
            .map_err(pg)?;
    }
    // CONCURRENTLY runs outside a transaction block: one simple query.
    conn.batch_execute(statement).await.map_err(pg)?;
    let after = conn
        .query_opt(VALID, &[&schema, &index])
        .await
        .map_err(pg)?;
    if creates && is_valid(after) != Some(true) {
        return Err(format!(
            "index {index} was not built valid (a cancelled or failed build); apply again"
        ));
    }
    Ok(())
}

// --- table row estimates ---

pub struct EstimateQuery<'a> {
    pub schema: Option<&'a str>,
    pub limit: i64,
    pub include_system: bool,
}

const HUGE_ROWS: i64 = 10_000_000;

/// The snapshot of `pg_class.reltuples` for the tenant.
pub async fn row_estimates(
    tenant: &crate::db::tenants::Tenant,
    q: &EstimateQuery<'_>,
) -> Result<Value, DomainError> {
    let conn = tenant.pool.get().await?;
    let rows = conn
        .query(
            "SELECT n.nspname::text, c.relname::text, GREATEST(c.reltuples, 0)::bigint
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'p', 'm')
                AND ($1::text IS NULL OR n.nspname = $1)
                AND ($2 OR (n.nspname NOT IN ('pg_catalog', 'information_schema')
                            AND n.nspname NOT LIKE 'pg\\_toast%' ESCAPE '\\'
                            AND n.nspname NOT LIKE 'pg\\_temp\\_%' ESCAPE '\\'))
              ORDER BY 3 DESC, 1, 2",
            &[&q.schema, &q.include_system],
        )
        .await?;
    let entry = |s: &str, t: &str, n: i64| json!({"schema_name": s, "table_name": t, "qualified_table_name": format!("{s}.{t}"), "estimated_rows": n});
    let all: Vec<(String, String, i64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let total: i64 = all.iter().map(|t| t.2).sum();
    let max = all.first();
    let mut rollups: std::collections::BTreeMap<&str, (i64, i64)> = Default::default();
    for (s, _, n) in &all {
        let e = rollups.entry(s.as_str()).or_default();
        e.0 += 1;
        e.1 += n;
    }
    let bounds: [(&str, i64, Option<i64>); 5] = [
        ("empty", 0, Some(0)),
        ("1-9999", 1, Some(9_999)),
        ("10k-999k", 10_000, Some(999_999)),
        ("1m-9.99m", 1_000_000, Some(9_999_999)),
        ("10m+", HUGE_ROWS, None),
    ];
    let buckets: Vec<Value> = bounds
        .iter()
        .map(|(label, min, max)| {
            let count = all
                .iter()
                .filter(|t| t.2 >= *min && max.is_none_or(|m| t.2 <= m))
                .count();
            json!({"label": label, "min_rows": min, "max_rows": max, "table_count": count})
        })
        .collect();
    let share = |n: i64| (total > 0).then(|| 100.0 * n as f64 / total as f64);
    let mut advisories = Vec::new();
    let huge: Vec<&(String, String, i64)> = all.iter().filter(|t| t.2 >= HUGE_ROWS).collect();
    if !huge.is_empty() {
        let n: i64 = huge.iter().map(|t| t.2).sum();
        advisories.push(json!({
            "code": "huge_tables", "severity": "warn", "title": "Very large tables",
            "message": format!("{} tables hold at least {HUGE_ROWS} estimated rows", huge.len()),
            "affected_tables": huge.iter().map(|t| entry(&t.0, &t.1, t.2)).collect::<Vec<_>>(),
            "affected_estimated_rows": n, "share_of_estimated_total_pct": share(n),
            "config_key": null, "config_default_seconds": null,
        }));
    }
    let logs: Vec<&(String, String, i64)> = all
        .iter()
        .filter(|t| {
            t.2 > 0
                && matches!(
                    t.1.as_str(),
                    "gateway_operation_log"
                        | "pipeline_step_log"
                        | "athena_ddl_audit_log"
                        | "athena_outbox"
                )
        })
        .collect();
    if !logs.is_empty() {
        let n: i64 = logs.iter().map(|t| t.2).sum();
        advisories.push(json!({
            "code": "athena_log_tables", "severity": "info", "title": "Athena log tables",
            "message": "Athena-managed log tables grow with traffic; prune them on a schedule",
            "affected_tables": logs.iter().map(|t| entry(&t.0, &t.1, t.2)).collect::<Vec<_>>(),
            "affected_estimated_rows": n, "share_of_estimated_total_pct": share(n),
            "config_key": null, "config_default_seconds": null,
        }));
    }
    Ok(json!({
        "collected_at": Utc::now(),
        "source": "pg_class.reltuples",
        "summary": {
            "table_count": all.len(),
            "nonzero_table_count": all.iter().filter(|t| t.2 > 0).count(),
            "estimated_total_rows": total,
            "max_estimated_rows": max.map_or(0, |t| t.2),
            "max_table_name": max.map(|t| t.1.clone()),
            "max_qualified_table_name": max.map(|t| format!("{}.{}", t.0, t.1)),
        },
        "schema_rollups": rollups.iter().map(|(s, (c, n))| json!({"schema_name": s, "table_count": c, "estimated_rows": n})).collect::<Vec<_>>(),
        "buckets": buckets,
        "advisories": advisories,
        "top_tables": all.iter().take(q.limit as usize).map(|t| entry(&t.0, &t.1, t.2)).collect::<Vec<_>>(),
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_index_names_stay_distinct_and_fit() {
        let cols = |c: &str| vec![c.to_string()];
        let t = "a_table_with_a_rather_long_name_for_an_index";
        let a = super::index_name(t, &cols("first_long_column_name_x"));
        let b = super::index_name(t, &cols("first_long_column_name_y"));
        assert!(a.len() <= 63 && b.len() <= 63, "{a} {b}");
        assert_ne!(a, b);
        assert_eq!(super::index_name("t", &cols("c")), "athena_t_c_idx");
    }
}
