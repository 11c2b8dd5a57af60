//! Deferred gateway writes: a durable queue in the catalog
//! (`athena_deferred_requests`, `migrations/0005_deferred.sql`) and the
//! background workers that drain it.
//!
//! - **Enqueue.** For a client with deferred writes enabled, `PUT
//!   /gateway/insert`, `POST /gateway/update` and `DELETE /gateway/delete`
//!   validate the request, store its typed body plus the header-derived
//!   options as one row (a single autocommitted `INSERT`), and only then
//!   answer with the request id. Direct-URI requests never come here.
//! - **Claim.** A worker takes the oldest runnable job with `UPDATE … WHERE
//!   id = (SELECT … FOR UPDATE SKIP LOCKED LIMIT 1)`, setting a fresh
//!   `run_token`; only the holder of the current token records the outcome.
//!   A job left `running` longer than the stale limit (its worker died) is
//!   claimed again.
//! - **Exactly once.** The tenant write runs in one tenant transaction with
//!   an insert into `athena_deferred_applied(job_id)` (created lazily in the
//!   tenant's `public` schema) that also stores the write's result. A job
//!   whose marker already exists is not executed again: its stored result
//!   is replayed. So a crash anywhere (before the tenant COMMIT: nothing
//!   happened; after it but before the catalog update: the replay finishes
//!   the job) never runs a write twice and never loses an acknowledged one.
//! - **Outcome.** `completed` with the body the inline route would have
//!   answered, or `failed` with the error envelope (and its HTTP status).
//!   A database that is unavailable is retried with backoff up to
//!   `MAX_ATTEMPTS` claims before the job fails.

use super::sql::{self, db_error};
use super::write::{self, Write, WriteResult};
use crate::catalog::clients;
use crate::db::tenants::{Tenant, Tenants};
use crate::db::Pool;
use crate::domain::DomainError;
use crate::jobs::{Lease, Leases};
use crate::ttl::TtlCache;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use uuid::Uuid;

/// How often an idle worker looks at the queue (other replicas enqueue
/// without waking this one).
const POLL: Duration = Duration::from_millis(250);
/// Claims of a job whose database is unavailable before it fails.
pub const MAX_ATTEMPTS: i32 = 5;
/// How long a client's deferred-writes flag is cached.
const FLAG_TTL: Duration = Duration::from_secs(5);

/// The canonical routes a job can come from.
pub const OPERATIONS: [&str; 3] = ["insert", "update", "delete"];

/// A job's write plus how its result becomes the answer the inline route
/// would have given.
pub struct Plan {
    pub write: Write,
    pub answer: Box<dyn FnOnce(WriteResult) -> Value + Send>,
}

/// What turns a stored job back into a write: the gateway handlers, which
/// build the same query from the same body as the inline route.
pub trait Executor: Send + Sync + 'static {
    fn plan(&self, operation: &str, payload: &Value) -> Result<Plan, DomainError>;
    /// After a write committed (e.g. invalidate cached reads of the table).
    fn written(&self, client: &str, schema: &str, table: &str) -> impl Future<Output = ()> + Send;
    /// After a write committed (or was found applied by a replay): publish
    /// its event (issue 15) under an id derived from the job, so a replay
    /// publishes nothing twice. An error retries the job (the write is not
    /// run again: its marker replays the result).
    fn committed(
        &self,
        job: Uuid,
        client: &str,
        write: &Write,
        result: &WriteResult,
    ) -> impl Future<Output = Result<(), DomainError>> + Send {
        let _ = (job, client, write, result);
        async { Ok(()) }
    }
}

/// The answer to an enqueue.
#[derive(Debug, Clone)]
pub struct Enqueued {
    pub id: Uuid,
    pub status: String,
    /// The `Idempotency-Key` had already queued this request.
    pub existing: bool,
}

/// What one run of a job ended in.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Completed {
        client: String,
        table: String,
    },
    Failed,
    Retry,
    /// The job was reclaimed by another worker meanwhile; nothing recorded.
    Lost,
}

struct Claimed {
    lease: Lease,
    client: String,
    operation: String,
    payload: Value,
}

pub struct Queue {
    catalog: Pool,
    tenants: Arc<Tenants>,
    /// Clients enabled by configuration (`ATHENA_DEFERRED_CLIENTS`, YAML).
    listed: HashSet<String>,
    /// Claims and leases (`src/jobs/`).
    leases: Leases,
    wake: Notify,
    /// Per-client `deferred_writes.enabled` from the catalog.
    flags: TtlCache<String, bool>,
    /// How a failed job's error is stored: the body its route would have
    /// answered (the standard envelope plus `http_status`) and a one-line
    /// message. Given by the HTTP layer, which owns the envelope.
    render_failure: RenderFailure,
}

/// See `Queue::render_failure`.
pub type RenderFailure = fn(DomainError) -> (Value, String);

const RECORD: &str = "id, status, operation, attempts, requeue_count, result, error, \
    created_at, updated_at, started_at, finished_at, payload->'body'->>'table_name'";

fn record(r: &tokio_postgres::Row) -> Value {
    let ts = |i: usize| r.get::<_, Option<DateTime<Utc>>>(i);
    let id: Uuid = r.get(0);
    let mut m = Map::new();
    m.insert("request_id".into(), json!(id));
    m.insert("status".into(), json!(r.get::<_, String>(1)));
    m.insert("operation".into(), json!(r.get::<_, String>(2)));
    m.insert("table_name".into(), json!(r.get::<_, Option<String>>(11)));
    m.insert("attempts".into(), json!(r.get::<_, i32>(3)));
    m.insert("requeue_count".into(), json!(r.get::<_, i32>(4)));
    m.insert(
        "result".into(),
        r.get::<_, Option<Value>>(5).unwrap_or(Value::Null),
    );
    m.insert("error".into(), json!(r.get::<_, Option<String>>(6)));
    m.insert("created_at".into(), json!(ts(7)));
    m.insert("updated_at".into(), json!(ts(8)));
    m.insert("started_at".into(), json!(ts(9)));
    m.insert("finished_at".into(), json!(ts(10)));
    Value::Object(m)
}

/// Request ids are UUIDs; anything else is simply not found.
fn parse_id(id: &str) -> Option<Uuid> {
    Uuid::parse_str(id.trim()).ok()
}

fn transient(e: &DomainError) -> bool {
    matches!(e, DomainError::Unavailable(_))
}

impl Queue {
    pub fn new(
        catalog: Pool,
        tenants: Arc<Tenants>,
        listed: impl IntoIterator<Item = String>,
        stale_after: Duration,
        render_failure: RenderFailure,
    ) -> Queue {
        Queue {
            render_failure,
            catalog,
            tenants,
            listed: listed.into_iter().collect(),
            leases: Leases::new(
                "athena_deferred_requests",
                "j.client_name, j.operation, j.payload",
                stale_after,
            ),
            wake: Notify::new(),
            flags: TtlCache::new(FLAG_TTL, 4096),
        }
    }

    /// Whether the client's writes are deferred: listed in the configuration
    /// or `metadata.deferred_writes.enabled = true` in its catalog record
    /// (re-read at most every 5 s).
    pub async fn enabled(&self, client: &str) -> Result<bool, DomainError> {
        if self.listed.contains(client) {
            return Ok(true);
        }
        self.flags
            .get_or_load(client.to_string(), async {
                Ok(clients::get(&self.catalog, client)
                    .await?
                    .is_some_and(|c| metadata_enabled(&c.metadata)))
            })
            .await
    }

    /// Stores a job; the row is committed when this returns.
    pub async fn enqueue(
        &self,
        client: &str,
        operation: &str,
        payload: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<Enqueued, DomainError> {
        if let Some(key) = idempotency_key {
            if key.is_empty() || key.len() > 255 {
                return Err(DomainError::Invalid(
                    "Idempotency-Key must be 1-255 characters".into(),
                ));
            }
        }
        let conn = self.catalog.get().await?;
        let inserted = conn
            .query_opt(
                "INSERT INTO athena_deferred_requests (client_name, operation, payload, idempotency_key)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (client_name, idempotency_key) WHERE idempotency_key IS NOT NULL
                 DO NOTHING
                 RETURNING id, status",
                &[&client, &operation, payload, &idempotency_key],
            )
            .await?;
        let (row, existing) = match inserted {
            Some(row) => (row, false),
            None => (
                conn.query_one(
                    "SELECT id, status FROM athena_deferred_requests
                      WHERE client_name = $1 AND idempotency_key = $2",
                    &[&client, &idempotency_key],
                )
                .await?,
                true,
            ),
        };
        if !existing {
            self.wake.notify_one();
        }
        Ok(Enqueued {
            id: row.get(0),
            status: row.get(1),
            existing,
        })
    }

    /// The job's record, for its own client only (another client's id is
    /// indistinguishable from an unknown one).
    pub async fn status(&self, client: &str, id: &str) -> Result<Option<Value>, DomainError> {
        let Some(id) = parse_id(id) else {
            return Ok(None);
        };
        let conn = self.catalog.get().await?;
        let sql = format!(
            "SELECT {RECORD} FROM athena_deferred_requests WHERE id = $1 AND client_name = $2"
        );
        Ok(conn
            .query_opt(&sql, &[&id, &client])
            .await?
            .map(|r| record(&r)))
    }

    /// Puts a failed job back in the queue, once: a queued, running or
    /// completed job is left as it is (`false`). Never runs a write twice.
    pub async fn requeue(
        &self,
        client: &str,
        id: &str,
    ) -> Result<Option<(Value, bool)>, DomainError> {
        let Some(id) = parse_id(id) else {
            return Ok(None);
        };
        let conn = self.catalog.get().await?;
        let sql = format!(
            "UPDATE athena_deferred_requests
                SET status = 'queued', attempts = 0, requeue_count = requeue_count + 1,
                    result = NULL, error = NULL, run_token = NULL, worker_id = NULL,
                    started_at = NULL, finished_at = NULL, run_after = now(), updated_at = now()
              WHERE id = $1 AND client_name = $2 AND status = 'failed'
          RETURNING {RECORD}"
        );
        if let Some(row) = conn.query_opt(&sql, &[&id, &client]).await? {
            self.wake.notify_one();
            return Ok(Some((record(&row), true)));
        }
        Ok(self
            .status(client, &id.to_string())
            .await?
            .map(|r| (r, false)))
    }

    /// Claims the next job: the oldest queued one whose retry time has come
    /// (any queued one with `force`), or one whose worker went silent.
    async fn claim(&self, force: bool) -> Result<Option<Claimed>, DomainError> {
        let conn = self.catalog.get().await?;
        Ok(self
            .leases
            .claim(&conn, force)
            .await?
            .map(|(lease, r)| Claimed {
                lease,
                client: r.get(2),
                operation: r.get(3),
                payload: r.get(4),
            }))
    }

    /// Claims and runs one job; `None` when there is nothing to run.
    pub async fn run_next<E: Executor>(
        &self,
        exec: &E,
        force: bool,
    ) -> Result<Option<Outcome>, DomainError> {
        let Some(job) = self.claim(force).await? else {
            return Ok(None);
        };
        let conn = self.catalog.get().await?;
        let lease = &job.lease;
        let (kept, outcome) = match self.execute(exec, &job).await {
            Ok((answer, client, table)) => (
                self.leases.complete(&conn, lease, &answer).await?,
                Outcome::Completed { client, table },
            ),
            Err(e) if transient(&e) && lease.attempts < MAX_ATTEMPTS => {
                tracing::warn!(job = %lease.id, attempts = lease.attempts, error = %e, "deferred write will be retried");
                let kept = self.leases.retry(&conn, lease, &e.to_string()).await?;
                (kept, Outcome::Retry)
            }
            Err(e) => {
                let (result, message) = (self.render_failure)(e);
                let kept = self.leases.fail(&conn, lease, &result, &message).await?;
                (kept, Outcome::Failed)
            }
        };
        Ok(Some(if kept { outcome } else { Outcome::Lost }))
    }

    async fn execute<E: Executor>(
        &self,
        exec: &E,
        job: &Claimed,
    ) -> Result<(Value, String, String), DomainError> {
        let tenant = self.tenants.resolve(&job.client).await?;
        let plan = exec.plan(&job.operation, &job.payload)?;
        let (schema, table) = plan.write.target();
        let (schema, table) = (schema.as_str().to_string(), table.as_str().to_string());
        let result = self.apply_once(&tenant, job.lease.id, &plan.write).await?;
        exec.written(&tenant.name, &schema, &table).await;
        if let Err(e) = exec
            .committed(job.lease.id, &tenant.name, &plan.write, &result)
            .await
        {
            // The write is applied: retried while attempts remain (the
            // marker replays it), never reported as a failed write.
            if job.lease.attempts < MAX_ATTEMPTS {
                return Err(DomainError::Unavailable(format!(
                    "the write is applied but its event could not be queued: {e}"
                )));
            }
            tracing::error!(job = %job.lease.id, error = %e, "a deferred write's event could not be queued");
        }
        Ok((
            (plan.answer)(result),
            job.client.clone(),
            format!("{schema}.{table}"),
        ))
    }

    /// Creates the tenant's marker table (once per process and tenant,
    /// `sql::create_own_table`).
    async fn ensure_marker(&self, tenant: &Tenant) -> Result<(), DomainError> {
        sql::create_own_table(
            tenant,
            "CREATE TABLE IF NOT EXISTS athena_gateway.athena_deferred_applied (
                 job_id     uuid PRIMARY KEY,
                 result     jsonb,
                 applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await
    }

    /// Runs the write and records its marker in one tenant transaction; a
    /// job already applied returns its stored result instead.
    async fn apply_once(
        &self,
        tenant: &Tenant,
        id: Uuid,
        w: &Write,
    ) -> Result<WriteResult, DomainError> {
        self.ensure_marker(tenant).await?;
        let st = write::statement(tenant, w).await?;
        let mut conn = tenant.pool.get().await?;
        let tx = conn.transaction().await.map_err(db_error)?;
        // Blocks while another run of the same job holds its (uncommitted)
        // marker, then sees it: the two runs cannot both write.
        let fresh = tx
            .execute(
                "INSERT INTO athena_gateway.athena_deferred_applied (job_id) VALUES ($1)
                 ON CONFLICT (job_id) DO NOTHING",
                &[&id],
            )
            .await
            .map_err(db_error)?;
        if fresh == 0 {
            let stored: Option<Value> = tx
                .query_one(
                    "SELECT result FROM athena_gateway.athena_deferred_applied WHERE job_id = $1",
                    &[&id],
                )
                .await
                .map_err(db_error)?
                .get(0);
            tracing::info!(job = %id, "deferred write already applied; replaying its result");
            return decode(stored.unwrap_or(Value::Null));
        }
        let rows = tx
            .query_typed(st.sql.as_str(), &st.typed())
            .await
            .map_err(db_error)?;
        let (text, affected) = sql::json_columns(sql::single_row(&rows)?);
        let value: Value = serde_json::from_str(text)
            .map_err(|e| DomainError::Internal(format!("decoding json output: {e}")))?;
        let stored = json!({"rows": value, "affected": affected});
        tx.execute(
            "UPDATE athena_gateway.athena_deferred_applied SET result = $2 WHERE job_id = $1",
            &[&id, &stored],
        )
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        decode(stored)
    }

    /// Runs queued jobs (retry delays ignored) until none is left or the
    /// deadline passes, then waits for jobs other workers are running.
    /// Returns the summary `POST /gateway/deferred/flush` answers.
    pub async fn flush<E: Executor>(
        &self,
        exec: &E,
        budget: Duration,
    ) -> Result<Value, DomainError> {
        let deadline = Instant::now() + budget;
        let (mut completed, mut failed, mut retried) = (0u64, 0u64, 0u64);
        let mut tables: Vec<Value> = Vec::new();
        while Instant::now() < deadline {
            match self.run_next(exec, true).await? {
                Some(Outcome::Completed { client, table }) => {
                    completed += 1;
                    let entry = json!({"client_name": client, "table": table});
                    if !tables.contains(&entry) {
                        tables.push(entry);
                    }
                }
                Some(Outcome::Failed) => failed += 1,
                Some(Outcome::Retry) => retried += 1,
                Some(Outcome::Lost) => {}
                None => {
                    // Nothing claimable. Done only when nothing is running
                    // AND nothing is queued: a job a worker is claiming
                    // this instant is skipped (locked) by our claim yet
                    // still reads `queued` until that claim commits, so
                    // "no running" alone would return before it ran.
                    if self.count("running").await? == 0 && self.count("queued").await? == 0 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        let (queued, running) = (self.count("queued").await?, self.count("running").await?);
        let summary = json!({
            "processed": completed + failed,
            "succeeded": completed,
            "failed": failed,
            "retried": retried,
            "remaining": queued + running,
            "queued": queued,
            "running": running,
            "invalidated_tables": tables,
        });
        Ok(summary)
    }

    /// The queue's depth: (queued, running) jobs (`/debug/gateway`).
    pub async fn depth(&self) -> Result<(u64, u64), DomainError> {
        Ok((self.count("queued").await?, self.count("running").await?))
    }

    async fn count(&self, status: &str) -> Result<u64, DomainError> {
        let conn = self.catalog.get().await?;
        let n: i64 = conn
            .query_one(
                "SELECT count(*) FROM athena_deferred_requests WHERE status = $1",
                &[&status],
            )
            .await?
            .get(0);
        Ok(n.max(0) as u64)
    }
}

fn metadata_enabled(metadata: &Value) -> bool {
    match metadata.pointer("/deferred_writes/enabled") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn decode(stored: Value) -> Result<WriteResult, DomainError> {
    let affected = stored.get("affected").and_then(Value::as_i64).unwrap_or(0);
    let rows = match stored.get("rows") {
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| DomainError::Internal(format!("decoding stored rows: {e}")))?,
        None => Vec::new(),
    };
    Ok(WriteResult {
        rows,
        affected,
        written: None,
    })
}

/// Starts `n` workers draining the queue in the background, each under a
/// supervisor (`src/supervisor.rs`): a worker that fails or panics (a job
/// it held is taken over once stale) is restarted with backoff.
pub fn spawn_workers<E: Executor>(queue: Arc<Queue>, exec: Arc<E>, n: usize) {
    for i in 0..n {
        let (queue, exec) = (queue.clone(), exec.clone());
        crate::supervisor::supervise(
            "deferred write worker",
            crate::supervisor::Backoff::default(),
            move || worker(i, queue.clone(), exec.clone()),
        );
    }
}

/// One worker: runs jobs as they come, waiting for a wake-up (or the poll
/// interval) when the queue is empty.
async fn worker<E: Executor>(i: usize, queue: Arc<Queue>, exec: Arc<E>) {
    tracing::debug!(worker = i, "deferred write worker started");
    loop {
        match queue.run_next(&*exec, false).await {
            Ok(Some(_)) => continue,
            Ok(None) => {
                let _ = tokio::time::timeout(POLL, queue.wake.notified()).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "deferred write queue unavailable; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_flag() {
        assert!(metadata_enabled(
            &json!({"deferred_writes": {"enabled": true}})
        ));
        assert!(metadata_enabled(
            &json!({"deferred_writes": {"enabled": "true"}})
        ));
        assert!(!metadata_enabled(
            &json!({"deferred_writes": {"enabled": false}})
        ));
        assert!(!metadata_enabled(&json!({})));
        assert!(!metadata_enabled(&Value::Null));
    }

    #[test]
    fn ids_are_uuids() {
        assert!(parse_id("not-a-uuid").is_none());
        assert!(parse_id(" 6f1c1f5e-8d0b-4a57-9d43-0c8e1d5f7a11 ").is_some());
    }

    #[test]
    fn stored_results_round_trip() {
        let r = decode(json!({"rows": [{"id": 1}], "affected": 1})).unwrap();
        assert_eq!(r.affected, 1);
        assert_eq!(r.rows[0]["id"], 1);
        assert_eq!(decode(Value::Null).unwrap().affected, 0);
    }
}
