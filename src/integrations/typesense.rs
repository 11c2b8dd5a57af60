//! Typesense (issue 21): backend checks, collection lists, sync jobs that
//! copy one source table into a collection, and search through a job.
//!
//! Jobs come from configuration: `ATHENA_TYPESENSE_SYNC_JOBS` lists them
//! (a JSON array, or `@file`), and the server upserts them by `id` into
//! `typesense_sync_jobs` at start, the API key sealed with
//! `ATHENA_SECRET_KEY`. No route creates a job. Runs are rows of
//! `typesense_sync_runs`: at most one `running` per job (a unique partial
//! index; a second `run` is a 409); the run pages the source table by its
//! key column (keyset, values bound, identifiers quoted) and imports each
//! page as JSONL (`/collections/{c}/documents/import?action=upsert`),
//! updating the run row and its heartbeat after every page. `cancel` sets
//! `cancel_requested`, seen between pages; `kill` marks the run `killed`
//! and aborts its task in this process (another replica's run stops at its
//! next page when it sees the status).

use super::http::{upstream_message, Call, Failure};
use super::Integrations;
use crate::domain::identifier::Ident;
use crate::domain::DomainError;
use crate::http::{ApiError, Code};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running run whose heartbeat is older than this is taken as dead. The
/// heartbeat is written after every step (collection check, page read,
/// each import), and one step is bounded by the 30 s exchange timeout
/// (the collection check is two exchanges), so a live run always beats
/// well within the lease.
const LEASE: Duration = Duration::from_secs(150);
/// Failed import lines kept in `result_preview` (without their document).
const PREVIEW: usize = 20;
/// Largest JSONL body of one import call: a page is split to fit.
const MAX_IMPORT_BYTES: usize = 8 * 1024 * 1024;
/// Default per-call timeout of `backends/test`.
const TEST_TIMEOUT: Duration = Duration::from_secs(5);

/// One configured job (`ATHENA_TYPESENSE_SYNC_JOBS` entry).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    pub id: i64,
    pub source_client_name: String,
    #[serde(default = "public")]
    pub source_schema_name: String,
    pub source_table_name: String,
    pub key_column: String,
    pub collection_name: String,
    pub base_url: String,
    pub api_key: String,
    #[serde(default = "default_batch")]
    pub batch_size: i32,
}

fn public() -> String {
    "public".into()
}

fn default_batch() -> i32 {
    500
}

impl std::fmt::Debug for JobConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobConfig")
            .field("id", &self.id)
            .field("collection_name", &self.collection_name)
            .field("api_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// A collection name: what Typesense accepts and a URL path may carry.
fn check_collection(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    ok.then_some(())
        .ok_or_else(|| format!("collection name {name:?}: letters, digits, `_`, `-`, `.`"))
}

impl JobConfig {
    pub fn parse_list(text: &str) -> Result<Vec<JobConfig>, String> {
        let jobs: Vec<JobConfig> =
            serde_json::from_str(text).map_err(|e| format!("not a JSON array of jobs: {e}"))?;
        let mut ids = std::collections::HashSet::new();
        for job in &jobs {
            if job.id < 1 || !ids.insert(job.id) {
                return Err(format!("job id {} must be positive and unique", job.id));
            }
            crate::catalog::clients::check_name(&job.source_client_name)
                .map_err(|e| format!("job {}: {e}", job.id))?;
            for (kind, name) in [
                ("schema", &job.source_schema_name),
                ("table", &job.source_table_name),
                ("column", &job.key_column),
            ] {
                Ident::parse(kind, name).map_err(|e| format!("job {}: {e}", job.id))?;
            }
            check_collection(&job.collection_name).map_err(|e| format!("job {}: {e}", job.id))?;
            if !(1..=10_000).contains(&job.batch_size) {
                return Err(format!("job {}: batch_size must be 1-10000", job.id));
            }
            if job.api_key.is_empty() {
                return Err(format!("job {}: api_key is empty", job.id));
            }
        }
        Ok(jobs)
    }
}

/// A job as stored (the API key opened only when used).
#[derive(Clone)]
pub struct Job {
    pub id: i64,
    pub source_client_name: String,
    pub source_schema_name: String,
    pub source_table_name: String,
    pub key_column: String,
    pub collection_name: String,
    pub base_url: String,
    sealed: Vec<u8>,
    pub batch_size: i32,
}

const JOB_COLUMNS: &str = "id, source_client_name, source_schema_name, source_table_name, \
    key_column, collection_name, base_url, api_key_sealed, batch_size";

fn job_row(r: &tokio_postgres::Row) -> Job {
    Job {
        id: r.get(0),
        source_client_name: r.get(1),
        source_schema_name: r.get(2),
        source_table_name: r.get(3),
        key_column: r.get(4),
        collection_name: r.get(5),
        base_url: r.get(6),
        sealed: r.get(7),
        batch_size: r.get(8),
    }
}

fn seal_context(id: i64) -> String {
    format!("typesense_sync_job:{id}")
}

/// Upserts the configured jobs (start-up).
/// Jobs no longer configured are deleted (with their runs), so a job removed
/// from `ATHENA_TYPESENSE_SYNC_JOBS` is no longer runnable.
pub async fn upsert_configured(service: &Integrations) -> Result<(), String> {
    let mut conn = service
        .tenants
        .catalog()
        .get()
        .await
        .map_err(|e| e.to_string())?;
    let tx = conn.transaction().await.map_err(|e| e.to_string())?;
    let configured: Vec<i64> = service
        .settings
        .typesense_jobs
        .iter()
        .map(|j| j.id)
        .collect();
    tx.execute(
        "DELETE FROM typesense_sync_jobs WHERE NOT (id = ANY($1))",
        &[&configured],
    )
    .await
    .map_err(|e| e.to_string())?;
    if service.settings.typesense_jobs.is_empty() {
        return tx.commit().await.map_err(|e| e.to_string());
    }
    let secrets = service
        .secrets
        .as_ref()
        .ok_or("ATHENA_SECRET_KEY is required to store the Typesense API keys")?;
    for job in &service.settings.typesense_jobs {
        service
            .http
            .check_base_url(&job.base_url)
            .map_err(|e| format!("job {}: base_url: {e}", job.id))?;
        let sealed = secrets
            .seal(&seal_context(job.id), &job.api_key)
            .map_err(|e| e.to_string())?;
        tx.execute(
            "INSERT INTO typesense_sync_jobs (id, source_client_name, source_schema_name,
                 source_table_name, key_column, collection_name, base_url, api_key_sealed, batch_size)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (id) DO UPDATE SET source_client_name = EXCLUDED.source_client_name,
                 source_schema_name = EXCLUDED.source_schema_name,
                 source_table_name = EXCLUDED.source_table_name, key_column = EXCLUDED.key_column,
                 collection_name = EXCLUDED.collection_name, base_url = EXCLUDED.base_url,
                 api_key_sealed = EXCLUDED.api_key_sealed, batch_size = EXCLUDED.batch_size,
                 updated_at = now()",
            &[
                &job.id,
                &job.source_client_name,
                &job.source_schema_name,
                &job.source_table_name,
                &job.key_column,
                &job.collection_name,
                &job.base_url,
                &sealed,
                &job.batch_size,
            ],
        )
        .await
        .map_err(|e| e.to_string())?;
    }
    tx.commit().await.map_err(|e| e.to_string())
}

/// Tasks of runs in this process, by run id (`kill` aborts them).
#[derive(Default)]
pub struct LocalRuns(Mutex<HashMap<i64, tokio::task::AbortHandle>>);

impl LocalRuns {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, tokio::task::AbortHandle>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn not_found(kind: &'static str, id: i64) -> ApiError {
    ApiError::from(DomainError::not_found(kind, id.to_string()))
}

/// A Typesense call that gave no usable answer.
fn typesense_failure(f: Failure) -> ApiError {
    match f {
        Failure::Refused(why) | Failure::BadUrl(why) => {
            ApiError::invalid_parameter("base_url", why)
        }
        Failure::Unreachable(why) => ApiError::unavailable(
            Code::ServiceUnavailable,
            format!("Typesense is unreachable: {why}"),
        ),
        Failure::BadCredential(why) => ApiError::invalid_parameter("api_key", why),
    }
}

/// A non-2xx Typesense answer: 4xx → 400 with its message, else 502.
fn typesense_status(answer: &super::http::Answer) -> ApiError {
    let message = upstream_message(answer);
    if (400..500).contains(&answer.status) {
        ApiError::new(
            Code::BadRequest,
            "Typesense refused the request",
            format!("Typesense answered {}: {message}", answer.status),
        )
    } else {
        ApiError::new(
            Code::UpstreamFailed,
            "Typesense request failed",
            format!("Typesense answered {}: {message}", answer.status),
        )
    }
}

fn timeout_of(timeout_ms: Option<i32>) -> Result<Duration, ApiError> {
    match timeout_ms {
        None => Ok(TEST_TIMEOUT),
        Some(ms @ 1..=30_000) => Ok(Duration::from_millis(ms as u64)),
        Some(_) => Err(ApiError::invalid_parameter(
            "timeout_ms",
            "must be between 1 and 30000",
        )),
    }
}

/// A run's row as the contract's `TypesenseSyncRunResult`.
struct RunRow {
    id: i64,
    status: String,
    source_rows: i64,
    imported_count: i64,
    failed_count: i64,
    error: Option<String>,
}

impl Integrations {
    fn api_key(&self, job: &Job) -> Result<String, ApiError> {
        let secrets = self.secrets.as_ref().ok_or_else(|| {
            ApiError::unavailable(
                Code::ServiceUnavailable,
                "ATHENA_SECRET_KEY is not configured: the job's API key cannot be opened",
            )
        })?;
        secrets
            .open(&seal_context(job.id), &job.sealed)
            .map_err(ApiError::from)
    }

    /// `POST /typesense/backends/test`: `GET /health`; always 200 once the
    /// URL is acceptable, with `reachable`, `latency_ms` and `error`.
    pub async fn typesense_test(
        &self,
        base_url: &str,
        api_key: &str,
        timeout_ms: Option<i32>,
    ) -> Result<Value, ApiError> {
        let timeout = timeout_of(timeout_ms)?;
        let base = self
            .http
            .check_base_url(base_url)
            .map_err(typesense_failure)?;
        let started = Instant::now();
        let call = Call::get(format!("{base}/health"))
            .header("x-typesense-api-key", api_key)
            .timeout(timeout);
        let (reachable, error, status) = match self.http.send(call).await {
            Ok(a) if a.ok() => (
                a.json.get("ok").and_then(Value::as_bool).unwrap_or(true),
                None,
                Some(a.status),
            ),
            Ok(a) => (false, Some(upstream_message(&a)), Some(a.status)),
            Err(Failure::Refused(why)) | Err(Failure::BadUrl(why)) => {
                return Err(ApiError::invalid_parameter("base_url", why))
            }
            Err(Failure::Unreachable(why)) => (false, Some(why), None),
            Err(Failure::BadCredential(why)) => {
                return Err(ApiError::invalid_parameter("api_key", why))
            }
        };
        Ok(json!({
            "status": "success",
            "message": if reachable { "Typesense backend is reachable" } else { "Typesense backend is not reachable" },
            "reachable": reachable,
            "latency_ms": started.elapsed().as_millis() as u64,
            "status_code": status,
            "error": error,
        }))
    }

    /// `POST /typesense/collections/list`: `GET /collections`.
    pub async fn typesense_collections(
        &self,
        base_url: &str,
        api_key: &str,
        timeout_ms: Option<i32>,
    ) -> Result<Value, ApiError> {
        let timeout = timeout_of(timeout_ms)?;
        let base = self
            .http
            .check_base_url(base_url)
            .map_err(typesense_failure)?;
        let answer = self
            .http
            .send(
                Call::get(format!("{base}/collections"))
                    .header("x-typesense-api-key", api_key)
                    .timeout(timeout),
            )
            .await
            .map_err(typesense_failure)?;
        if !answer.ok() {
            return Err(typesense_status(&answer));
        }
        let collections: Vec<Value> = answer
            .json
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|c| {
                        json!({
                            "name": c.get("name"),
                            "num_documents": c.get("num_documents"),
                            "fields": c.get("fields"),
                            "created_at": c.get("created_at"),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(json!({
            "status": "success",
            "message": format!("{} collections", collections.len()),
            "collections": collections,
        }))
    }

    async fn job(&self, id: i64) -> Result<Option<Job>, ApiError> {
        let conn = self.tenants.catalog().get().await.map_err(db)?;
        let sql = format!("SELECT {JOB_COLUMNS} FROM typesense_sync_jobs WHERE id = $1");
        Ok(conn
            .query_opt(&sql, &[&id])
            .await
            .map_err(db)?
            .map(|r| job_row(&r)))
    }

    async fn job_by_source(
        &self,
        client: &str,
        schema: &str,
        table: &str,
    ) -> Result<Option<Job>, ApiError> {
        let conn = self.tenants.catalog().get().await.map_err(db)?;
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM typesense_sync_jobs
              WHERE source_client_name = $1 AND source_schema_name = $2 AND source_table_name = $3
              ORDER BY id LIMIT 1"
        );
        Ok(conn
            .query_opt(&sql, &[&client, &schema, &table])
            .await
            .map_err(db)?
            .map(|r| job_row(&r)))
    }

    /// `POST /typesense/sync-jobs/{id}/run`: the run, to its end.
    pub async fn typesense_run(self: &Arc<Self>, job_id: i64) -> Result<Value, ApiError> {
        let job = self
            .job(job_id)
            .await?
            .ok_or_else(|| not_found("sync job", job_id))?;
        let api_key = self.api_key(&job)?;
        let base = self
            .http
            .check_base_url(&job.base_url)
            .map_err(typesense_failure)?;
        let run_id = self.start_run(job_id).await?;
        let started = Instant::now();
        let service = self.clone();
        let job2 = job.clone();
        // The run is its own task: it ends (and records its end) even when
        // the request that started it goes away; `kill` aborts it.
        let task = tokio::spawn(async move {
            let out = service.sync(&job2, run_id, &base, &api_key).await;
            if let Err(e) = &out {
                if let Err(again) = service.finish(run_id, "failed", Some(&e.detail)).await {
                    tracing::warn!(run_id, error = %again.detail, "recording a failed Typesense run");
                }
            }
            service.runs.lock().remove(&run_id);
            out
        });
        self.runs.lock().insert(run_id, task.abort_handle());
        let outcome = task.await;
        self.runs.lock().remove(&run_id);
        let (preview, failure) = match outcome {
            Ok(Ok(preview)) => (preview, None),
            Ok(Err(e)) => (Vec::new(), Some(e)),
            // A panic in the run: recorded as failed, answered 500.
            Err(e) if e.is_panic() => {
                tracing::error!(run_id, "the Typesense run task panicked");
                self.finish(run_id, "failed", Some("the run failed unexpectedly"))
                    .await?;
                (Vec::new(), Some(ApiError::internal()))
            }
            // Killed (aborted): the kill already wrote the row.
            Err(_) => (Vec::new(), None),
        };
        let row = self
            .run_row(run_id)
            .await?
            .ok_or_else(|| not_found("sync run", run_id))?;
        if let Some(e) = failure {
            return Err(e);
        }
        let result = json!({
            "job_id": job_id,
            "run_id": run_id,
            "status": row.status,
            "collection_name": job.collection_name,
            "source_rows": row.source_rows,
            "imported_count": row.imported_count,
            "failed_count": row.failed_count,
            "duration_ms": started.elapsed().as_millis() as i64,
            "retry_attempt_count": 0,
            "rollback_attempted": false,
            "rollback_status": "not_needed",
            "progress_total_kind": "exact",
            "manifest_total_rows": row.source_rows,
            "manifest_processed_rows": row.source_rows,
            "resumed": false,
            "result_preview": preview,
            "error": row.error,
        });
        Ok(json!({
            "status": "success",
            "message": format!("Typesense sync run {run_id} {}", row.status),
            "data": result,
        }))
    }

    /// Inserts the running row: 409 when the job already runs (a dead
    /// run, past its lease, is marked failed first).
    async fn start_run(&self, job_id: i64) -> Result<i64, ApiError> {
        let conn = self.tenants.catalog().get().await.map_err(db)?;
        let lease = LEASE.as_secs_f64();
        conn.execute(
            "UPDATE typesense_sync_runs
                SET status = 'failed', error = 'the run stopped reporting (lease expired)',
                    finished_at = now()
              WHERE job_id = $1 AND status = 'running'
                AND heartbeat_at < now() - make_interval(secs => $2)",
            &[&job_id, &lease],
        )
        .await
        .map_err(db)?;
        match conn
            .query_one(
                "INSERT INTO typesense_sync_runs (job_id, status) VALUES ($1, 'running') RETURNING id",
                &[&job_id],
            )
            .await
        {
            Ok(row) => Ok(row.get(0)),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
                Err(ApiError::from(DomainError::Conflict(format!(
                    "sync job {job_id} is already running"
                ))))
            }
            Err(e) => Err(db(e)),
        }
    }

    async fn run_row(&self, run_id: i64) -> Result<Option<RunRow>, ApiError> {
        let conn = self.tenants.catalog().get().await.map_err(db)?;
        Ok(conn
            .query_opt(
                "SELECT id, status, source_rows, imported_count, failed_count, error
                   FROM typesense_sync_runs WHERE id = $1",
                &[&run_id],
            )
            .await
            .map_err(db)?
            .map(|r| RunRow {
                id: r.get(0),
                status: r.get(1),
                source_rows: r.get(2),
                imported_count: r.get(3),
                failed_count: r.get(4),
                error: r.get(5),
            }))
    }

    /// Marks a run alive (after each step of the sync).
    async fn heartbeat(&self, run_id: i64) -> Result<(), ApiError> {
        let conn = self.tenants.catalog().get().await.map_err(db)?;
        conn.execute(
            "UPDATE typesense_sync_runs SET heartbeat_at = now()
              WHERE id = $1 AND status = 'running'",
            &[&run_id],
        )
        .await
        .map_err(db)?;
        Ok(())
    }

    /// The key column must exist and carry a single-column unique (or
    /// primary-key) index without predicate: keyset paging on a
    /// non-unique key would skip rows. 400 naming the column otherwise.
    async fn check_key(
        &self,
        tenant: &crate::db::tenants::Tenant,
        job: &Job,
    ) -> Result<(), ApiError> {
        let conn = tenant
            .pool
            .get()
            .await
            .map_err(|e| ApiError::from(DomainError::from(e)))?;
        let row = conn
            .query_opt(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                                 WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid
                                   AND i.indpred IS NULL AND i.indnkeyatts = 1
                                   AND i.indkey[0] = a.attnum)
                   FROM pg_catalog.pg_class c
                   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                   JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid
                  WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = $3
                    AND a.attnum > 0 AND NOT a.attisdropped",
                &[
                    &job.source_schema_name,
                    &job.source_table_name,
                    &job.key_column,
                ],
            )
            .await
            .map_err(|e| ApiError::from(DomainError::from(e)))?;
        let source = format!("{}.{}", job.source_schema_name, job.source_table_name);
        match row.map(|r| r.get::<_, bool>(0)) {
            Some(true) => Ok(()),
            Some(false) => Err(ApiError::invalid_parameter(
                "key_column",
                format!(
                    "`{}` of {source} has no unique or primary-key index (the sync pages by it)",
                    job.key_column
                ),
            )),
            None => Err(ApiError::invalid_parameter(
                "key_column",
                format!("`{}` is not a column of {source}", job.key_column),
            )),
        }
    }

    /// Ends a run still `running` (a kill is never overwritten).
    async fn finish(&self, run_id: i64, status: &str, error: Option<&str>) -> Result<(), ApiError> {
        let conn = self.tenants.catalog().get().await.map_err(db)?;
        conn.execute(
            "UPDATE typesense_sync_runs SET status = $2, error = $3, finished_at = now(),
                    heartbeat_at = now()
              WHERE id = $1 AND status = 'running'",
            &[&run_id, &status, &error],
        )
        .await
        .map_err(db)?;
        Ok(())
    }

    /// Creates the collection (auto schema) when Typesense does not know it.
    async fn ensure_collection(
        &self,
        base: &str,
        api_key: &str,
        name: &str,
    ) -> Result<(), ApiError> {
        let answer = self
            .http
            .send(
                Call::get(format!("{base}/collections/{name}"))
                    .header("x-typesense-api-key", api_key),
            )
            .await
            .map_err(typesense_failure)?;
        match answer.status {
            200..=299 => Ok(()),
            404 => {
                let created = self
                    .http
                    .send(
                        Call::new(http::Method::POST, format!("{base}/collections"))
                            .header("x-typesense-api-key", api_key)
                            .json(
                                &json!({"name": name, "fields": [{"name": ".*", "type": "auto"}]}),
                            ),
                    )
                    .await
                    .map_err(typesense_failure)?;
                if created.ok() || created.status == 409 {
                    Ok(())
                } else {
                    Err(typesense_status(&created))
                }
            }
            _ => Err(typesense_status(&answer)),
        }
    }

    /// The sync loop: pages by key, imports, records progress; stops at a
    /// cancel or a kill seen in the row. Rows whose key is NULL are skipped
    /// (they have no document id). Returns the failed import lines (at most
    /// [`PREVIEW`], without their document).
    async fn sync(
        &self,
        job: &Job,
        run_id: i64,
        base: &str,
        api_key: &str,
    ) -> Result<Vec<Value>, ApiError> {
        let tenant = self
            .tenants
            .resolve(&job.source_client_name)
            .await
            .map_err(ApiError::from)?;
        self.check_key(&tenant, job).await?;
        self.ensure_collection(base, api_key, &job.collection_name)
            .await?;
        self.heartbeat(run_id).await?;
        let schema = Ident::parse("schema", &job.source_schema_name).map_err(ApiError::from)?;
        let table = Ident::parse("table", &job.source_table_name).map_err(ApiError::from)?;
        let key = Ident::parse("column", &job.key_column).map_err(ApiError::from)?;
        // The last key travels as text and is turned back into the key
        // column's own type by the table's row type (no type name pasted).
        let sql = format!(
            "SELECT to_jsonb(t) AS doc, t.{key}::text AS k FROM {schema}.{table} t
              WHERE t.{key} IS NOT NULL
                AND ($1::text IS NULL
                 OR t.{key} > (jsonb_populate_record(NULL::{schema}.{table},
                                 jsonb_build_object($2::text, $1::text))).{key})
              ORDER BY t.{key} LIMIT $3"
        );
        let url = format!(
            "{base}/collections/{}/documents/import?action=upsert",
            job.collection_name
        );
        let mut last: Option<String> = None;
        let mut preview = Vec::new();
        let limit = i64::from(job.batch_size);
        loop {
            let rows = {
                let conn = tenant
                    .pool
                    .get()
                    .await
                    .map_err(|e| ApiError::from(DomainError::from(e)))?;
                conn.query(&sql, &[&last, &job.key_column, &limit])
                    .await
                    .map_err(|e| ApiError::from(DomainError::from(e)))?
            };
            if rows.is_empty() {
                break;
            }
            self.heartbeat(run_id).await?;
            // The page as JSONL bodies of at most MAX_IMPORT_BYTES each.
            let mut bodies: Vec<Vec<u8>> = vec![Vec::new()];
            for row in &rows {
                let mut doc: Value = row.get(0);
                let k: Option<String> = row.get(1);
                if let (Some(obj), Some(k)) = (doc.as_object_mut(), &k) {
                    obj.insert("id".into(), json!(k));
                }
                let mut line = serde_json::to_vec(&doc).map_err(|_| ApiError::internal())?;
                line.push(b'\n');
                let current = bodies.last_mut().expect("one body");
                if !current.is_empty() && current.len() + line.len() > MAX_IMPORT_BYTES {
                    bodies.push(line);
                } else {
                    current.extend_from_slice(&line);
                }
            }
            last = rows.last().and_then(|r| r.get::<_, Option<String>>(1));
            let (mut ok, mut failed) = (0i64, 0i64);
            for body in bodies {
                let answer = self
                    .http
                    .send(
                        Call::new(http::Method::POST, url.clone())
                            .header("x-typesense-api-key", api_key)
                            .raw("text/plain", Bytes::from(body)),
                    )
                    .await
                    .map_err(typesense_failure)?;
                if !answer.ok() {
                    return Err(typesense_status(&answer));
                }
                for line in String::from_utf8_lossy(&answer.bytes).lines() {
                    let v: Value = serde_json::from_str(line).unwrap_or(Value::Null);
                    if v.get("success").and_then(Value::as_bool) == Some(true) {
                        ok += 1;
                        continue;
                    }
                    failed += 1;
                    if preview.len() < PREVIEW {
                        preview.push(failed_line(&v));
                    }
                }
                self.heartbeat(run_id).await?;
            }
            let conn = self.tenants.catalog().get().await.map_err(db)?;
            let state = conn
                .query_opt(
                    "UPDATE typesense_sync_runs
                        SET source_rows = source_rows + $2, imported_count = imported_count + $3,
                            failed_count = failed_count + $4, last_key = $5, heartbeat_at = now()
                      WHERE id = $1
                  RETURNING status, cancel_requested",
                    &[&run_id, &(rows.len() as i64), &ok, &failed, &last],
                )
                .await
                .map_err(db)?;
            match state {
                Some(r) if r.get::<_, String>(0) == "running" && !r.get::<_, bool>(1) => {}
                Some(r) if r.get::<_, String>(0) == "running" => {
                    self.finish(run_id, "cancelled", None).await?;
                    return Ok(preview);
                }
                _ => return Ok(preview),
            }
            if rows.len() < job.batch_size as usize {
                break;
            }
        }
        self.finish(run_id, "succeeded", None).await?;
        Ok(preview)
    }

    /// `POST /typesense/sync-jobs/{id}/cancel`: 404 unknown job, 400 when
    /// nothing runs.
    pub async fn typesense_cancel(&self, job_id: i64) -> Result<Value, ApiError> {
        self.job(job_id)
            .await?
            .ok_or_else(|| not_found("sync job", job_id))?;
        let conn = self.tenants.catalog().get().await.map_err(db)?;
        let run = conn
            .query_opt(
                "UPDATE typesense_sync_runs SET cancel_requested = true
                  WHERE job_id = $1 AND status = 'running' RETURNING id",
                &[&job_id],
            )
            .await
            .map_err(db)?;
        let run_id: i64 = run
            .map(|r| r.get(0))
            .ok_or_else(|| ApiError::bad_request(format!("sync job {job_id} is not running")))?;
        Ok(json!({
            "status": "success",
            "message": format!("cancellation of run {run_id} requested"),
            "data": {"job_id": job_id, "run_id": run_id, "cancel_requested": true},
        }))
    }

    /// `POST /typesense/sync-runs/{id}/kill`: 404 unknown run, 400 when it
    /// is not running.
    pub async fn typesense_kill(&self, run_id: i64) -> Result<Value, ApiError> {
        let row = self
            .run_row(run_id)
            .await?
            .ok_or_else(|| not_found("sync run", run_id))?;
        let conn = self.tenants.catalog().get().await.map_err(db)?;
        let killed = conn
            .execute(
                "UPDATE typesense_sync_runs
                    SET status = 'killed', error = 'killed by an operator', finished_at = now()
                  WHERE id = $1 AND status = 'running'",
                &[&row.id],
            )
            .await
            .map_err(db)?;
        if killed == 0 {
            return Err(ApiError::bad_request(format!(
                "sync run {run_id} is not running (it is {})",
                row.status
            )));
        }
        if let Some(task) = self.runs.lock().remove(&run_id) {
            task.abort();
        }
        Ok(json!({
            "status": "success",
            "message": format!("sync run {run_id} killed"),
            "data": {"run_id": run_id, "status": "killed"},
        }))
    }

    /// `POST /typesense/search`: the job (`job_id`, or the source triple),
    /// then `GET /collections/{c}/documents/search` with the forwarded
    /// parameters.
    pub async fn typesense_search(
        &self,
        req: &crate::api::models::TypesenseSearchRequest,
    ) -> Result<Value, ApiError> {
        let job = match (req.job_id, &req.source_client_name, &req.source_table_name) {
            (Some(id), _, _) => self
                .job(id)
                .await?
                .ok_or_else(|| not_found("sync job", id))?,
            (None, Some(client), Some(table)) => {
                let schema = req.source_schema_name.as_deref().unwrap_or("public");
                self.job_by_source(client, schema, table)
                    .await?
                    .ok_or_else(|| {
                        ApiError::from(DomainError::not_found(
                            "sync job",
                            format!("{client}/{schema}.{table}"),
                        ))
                    })?
            }
            _ => {
                return Err(ApiError::bad_request(
                    "job_id or source_client_name and source_table_name are required",
                ))
            }
        };
        let query_by = req
            .query_by
            .as_ref()
            .filter(|q| !q.is_empty())
            .ok_or_else(|| ApiError::bad_request("query_by (the fields to search) is required"))?;
        let query = {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.append_pair("q", &req.q);
            q.append_pair("query_by", &query_by.join(","));
            if let Some(f) = &req.filter_by {
                q.append_pair("filter_by", f);
            }
            if let Some(s) = &req.sort_by {
                q.append_pair("sort_by", s);
            }
            for (name, value, max) in [("page", req.page, 100_000), ("per_page", req.per_page, 250)]
            {
                if let Some(v) = value {
                    if !(1..=max).contains(&v) {
                        return Err(ApiError::invalid_parameter(
                            name,
                            format!("must be between 1 and {max}"),
                        ));
                    }
                    q.append_pair(name, &v.to_string());
                }
            }
            q.finish()
        };
        let api_key = self.api_key(&job)?;
        let base = self
            .http
            .check_base_url(&job.base_url)
            .map_err(typesense_failure)?;
        let answer = self
            .http
            .send(
                Call::get(format!(
                    "{base}/collections/{}/documents/search?{}",
                    job.collection_name, query
                ))
                .header("x-typesense-api-key", &api_key),
            )
            .await
            .map_err(typesense_failure)?;
        if !answer.ok() {
            return Err(typesense_status(&answer));
        }
        let mut data = match answer.json {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        data.insert("job_id".into(), json!(job.id));
        data.insert("collection_name".into(), json!(job.collection_name));
        Ok(json!({
            "status": "success",
            "message": "Typesense search completed",
            "data": data,
        }))
    }
}

/// One failed import line for `result_preview`: `success`, `code` and a
/// short `error`, never the document Typesense echoes back.
fn failed_line(v: &Value) -> Value {
    let error = v.get("error").and_then(Value::as_str).map(|e| {
        e.chars()
            .filter(|c| !c.is_control())
            .take(300)
            .collect::<String>()
    });
    json!({"success": false, "code": v.get("code").and_then(Value::as_i64), "error": error})
}

fn db(e: impl Into<DomainError>) -> ApiError {
    ApiError::from(e.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_outlasts_the_longest_step() {
        // The longest step between two heartbeats: the collection check
        // (GET, then POST), or one import exchange.
        assert!(LEASE > super::super::http::TOTAL_TIMEOUT * 2 + Duration::from_secs(30));
    }

    #[test]
    fn job_config_is_checked() {
        let ok = r#"[{"id":1,"source_client_name":"c","source_table_name":"items",
            "key_column":"id","collection_name":"items","base_url":"http://127.0.0.1:1","api_key":"k"}]"#;
        let jobs = JobConfig::parse_list(ok).unwrap();
        assert_eq!(jobs[0].source_schema_name, "public");
        assert_eq!(jobs[0].batch_size, 500);
        assert!(!format!("{:?}", jobs[0]).contains("\"k\""));
        for bad in [
            ok.replace("\"id\":1", "\"id\":0"),
            ok.replace("items\",\"base", "it/ems\",\"base"),
            ok.replace("\"api_key\":\"k\"", "\"api_key\":\"\""),
            ok.replace("\"c\"", "\"bad client\""),
            "{}".to_string(),
        ] {
            assert!(JobConfig::parse_list(&bad).is_err(), "{bad}");
        }
    }
}
