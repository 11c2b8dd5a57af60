//! Clone jobs (issue 21): copy a PostgreSQL database (a caller's URI,
//! security.md §1) into a new database on a registered client's server,
//! bootstrap Athena's schema in it and register it, as a phased job.
//!
//! - Jobs live in `clone_jobs`, one event per phase in `clone_job_events`.
//!   Workers claim them through the shared leases (`src/jobs/mod.rs`):
//!   the lease columns (`status` queued/running/completed/failed) are the
//!   queue's; `clone_status` and `phase` are the contract's.
//! - Phases: `validate_source` → `prepare_target` → `resolve_tools` →
//!   `dump_source`/`restore_target` (pg_dump's stdout is pg_restore's stdin:
//!   one kernel pipe, no temp file, flat memory) → `bootstrap_athena` →
//!   `register_client` → `verify_target` (tables and exact row counts) →
//!   `complete`.
//! - Tools run with argument vectors, a cleared environment and the
//!   password in `PGPASSWORD` only; the source host is the address the
//!   outbound policy checked. The source URI is sealed at rest and never
//!   shown; failures and events carry no URI.
//! - A retryable failure (source or target unreachable, a tool failing)
//!   is `failed_retryable` and runs again after a backoff until
//!   `max_attempts`, then `failed_terminal`; a refused input is terminal at
//!   once. Cancel kills the running tools; retry reopens a failed job.

use super::Provisioning;
use crate::db::conn::Conn;
use crate::domain::DomainError;
use crate::jobs::{Lease, Leases};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// A running clone's lease (`ATHENA_CLONE_LEASE_SECS`): renewed at every
/// phase and by a tick while a phase runs (the dump/restore stream
/// included), so a live clone is never taken over; a dead replica's clone
/// is taken over once its lease has run out.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);

/// How often an idle worker looks for jobs, and a running one for cancels.
const POLL: Duration = Duration::from_millis(500);

/// Most stderr kept from a failed tool.
const STDERR_CAP: usize = 2048;

/// The clone-job service: its leases and the workers' wake-up.
pub struct Clones {
    leases: Leases,
    /// How long a lease lasts without a renewal.
    lease: Duration,
    wake: tokio::sync::Notify,
    daemon_id: String,
}

impl Default for Clones {
    fn default() -> Self {
        Clones::new(DEFAULT_LEASE)
    }
}

impl Clones {
    pub fn new(lease: Duration) -> Clones {
        let lease = lease.max(Duration::from_secs(1));
        Clones {
            leases: Leases::new("clone_jobs", "id", lease),
            lease,
            wake: tokio::sync::Notify::new(),
            daemon_id: format!("athena:{}", std::process::id()),
        }
    }

    /// How often a running clone renews its lease: a third of it (two
    /// renewals may fail before it runs out), between 200 ms and 30 s.
    fn renew_every(&self) -> Duration {
        (self.lease / 3).clamp(Duration::from_millis(200), Duration::from_secs(30))
    }

    /// The job columns; `lease_expires_at` is the last renewal plus the lease.
    fn job_columns(&self) -> String {
        JOB_COLUMNS.replace("$99", &format!("{}", self.lease.as_secs_f64()))
    }
}

/// What a create request asks for (validated by `create`).
#[derive(Debug, Clone)]
pub struct NewJob {
    pub source_uri: String,
    /// `create_managed_instance`: the instance password, if given (sealed
    /// with the source URI, never in `spec`).
    pub target_password: Option<String>,
    /// `{"mode": "reuse_managed_instance", "existing_client_name",
    /// "database_name", "target_client_name", "description"}`.
    pub target: Value,
    pub provision_schema: bool,
    pub registration: Value,
    pub max_attempts: i32,
    pub requested_by: Option<String>,
}

/// A job row as the API shows it.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: Uuid,
    pub clone_status: String,
    pub phase: String,
    pub spec: Value,
    pub redacted_summary: Value,
    pub requested_by: Option<String>,
    pub attempts: i32,
    pub max_attempts: i32,
    pub cancel_requested: bool,
    pub failure_summary: Option<Value>,
    pub verification_summary: Option<Value>,
    pub worker_id: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub completed_at: Option<chrono::DateTime<chrono::Utc>>,
    pub lease_expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone)]
pub struct Event {
    pub event_id: Uuid,
    pub job_id: Uuid,
    pub phase: String,
    pub level: String,
    pub kind: String,
    pub message: String,
    pub details: Value,
    pub daemon_id: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// `started_at` (the lease column) is renewed while a clone runs: the
/// job's start shown is its current attempt's first phase event.
const JOB_COLUMNS: &str =
    "id, clone_status, phase, spec, redacted_summary, requested_by, attempts, \
    max_attempts, cancel_requested, failure_summary, verification_summary, worker_id, created_at, \
    updated_at, \
    COALESCE((SELECT max(e.created_at) FROM clone_job_events e \
               WHERE e.job_id = clone_jobs.id AND e.phase = 'validate_source' \
                 AND e.kind = 'phase_started'), started_at), \
    completed_at, \
    CASE WHEN status = 'running' THEN started_at + make_interval(secs => $99) END";

fn job_from(r: &tokio_postgres::Row) -> Job {
    Job {
        id: r.get(0),
        clone_status: r.get(1),
        phase: r.get(2),
        spec: r.get(3),
        redacted_summary: r.get(4),
        requested_by: r.get(5),
        attempts: r.get(6),
        max_attempts: r.get(7),
        cancel_requested: r.get(8),
        failure_summary: r.get(9),
        verification_summary: r.get(10),
        worker_id: r.get(11),
        created_at: r.get(12),
        updated_at: r.get(13),
        started_at: r.get(14),
        completed_at: r.get(15),
        lease_expires_at: r.get(16),
    }
}

fn seal_context(id: Uuid) -> String {
    format!("clone_jobs.source_uri:{id}")
}

/// Terminal states: cancel refuses them.
pub fn is_terminal(clone_status: &str) -> bool {
    matches!(clone_status, "completed" | "failed_terminal" | "cancelled")
}

impl Provisioning {
    fn secrets(&self) -> Result<&crate::secrets::Secrets, DomainError> {
        self.secrets.as_ref().ok_or_else(|| {
            DomainError::ServiceUnavailable(
                "clone jobs need ATHENA_SECRET_KEY (the source URI is stored sealed)".into(),
            )
        })
    }

    /// Queues a clone job: inputs checked, the source URI sealed.
    pub async fn create_clone(&self, job: NewJob) -> Result<Job, DomainError> {
        let secrets = self.secrets()?;
        let parsed = crate::db::direct::parse(&job.source_uri)
            .map_err(|e| e.into_domain("source.source_uri"))
            .map_err(|e| match e {
                DomainError::Unauthorized(m) => DomainError::invalid_field("source.source_uri", m),
                e => e,
            })?;
        let target = &job.target;
        let create = target["mode"] == "create_managed_instance";
        let existing = target["existing_client_name"].as_str().unwrap_or_default();
        let database = target["database_name"].as_str().unwrap_or("postgres");
        let target_client = target[if create {
            "client_name"
        } else {
            "target_client_name"
        }]
        .as_str()
        .unwrap_or_default();
        super::strict_name("target.database_name", database)?;
        crate::catalog::clients::check_name(target_client)
            .map_err(|e| DomainError::invalid_field("target.client_name", e))?;
        if create {
            if let Some(c) = target["container_name"].as_str() {
                super::docker::check_container(c)?;
            }
            if let Some(i) = target["image"].as_str() {
                super::docker::check_image(i)?;
            }
            if let Some(u) = target["username"].as_str() {
                super::strict_name("target.username", u)?;
            }
            // A managed instance needs the Engine (503 without it).
            self.docker()?.ping().await?;
        } else if crate::catalog::clients::get(self.tenants.catalog(), existing)
            .await?
            .is_none()
        {
            return Err(DomainError::invalid_field(
                "target.existing_client_name",
                format!("client `{existing}` is not registered"),
            ));
        }
        if !(1..=10).contains(&job.max_attempts) {
            return Err(DomainError::invalid_field(
                "max_attempts",
                "must be between 1 and 10",
            ));
        }
        let id = Uuid::new_v4();
        let secret = json!({"source_uri": job.source_uri, "target_password": job.target_password});
        let sealed = secrets.seal(&seal_context(id), &secret.to_string())?;
        let spec = json!({
            "target": job.target,
            "provisioning": {"provision_schema": job.provision_schema},
            "registration": job.registration,
        });
        let summary = json!({
            "source": {"uri": parsed.redacted},
            "target": {
                "mode": target["mode"],
                "existing_client_name": existing,
                "container_name": target["container_name"],
                "database_name": database,
                "target_client_name": target_client,
            },
        });
        let conn = self.tenants.catalog().get().await?;
        let sql = format!(
            "INSERT INTO clone_jobs (id, source_uri_sealed, spec, redacted_summary, requested_by, max_attempts)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {}",
            self.clones.job_columns()
        );
        let row = conn
            .query_one(
                sql.as_str(),
                &[
                    &id,
                    &sealed,
                    &spec,
                    &summary,
                    &job.requested_by,
                    &job.max_attempts,
                ],
            )
            .await?;
        event(
            &conn,
            id,
            "validate_source",
            "info",
            "job_queued",
            "clone job queued",
            json!({}),
            None,
        )
        .await?;
        self.clones.wake.notify_one();
        Ok(job_from(&row))
    }

    pub async fn list_clones(&self) -> Result<Vec<Job>, DomainError> {
        let conn = self.tenants.catalog().get().await?;
        let sql = format!(
            "SELECT {} FROM clone_jobs ORDER BY created_at DESC LIMIT 500",
            self.clones.job_columns()
        );
        Ok(conn
            .query(sql.as_str(), &[])
            .await?
            .iter()
            .map(job_from)
            .collect())
    }

    pub async fn get_clone(&self, id: Uuid) -> Result<Option<(Job, Vec<Event>)>, DomainError> {
        let conn = self.tenants.catalog().get().await?;
        let sql = format!(
            "SELECT {} FROM clone_jobs WHERE id = $1",
            self.clones.job_columns()
        );
        let Some(job) = conn
            .query_opt(sql.as_str(), &[&id])
            .await?
            .map(|r| job_from(&r))
        else {
            return Ok(None);
        };
        let events = conn
            .query(
                "SELECT event_id, job_id, phase, level, kind, message, details, daemon_id, created_at
                   FROM clone_job_events WHERE job_id = $1 ORDER BY created_at, event_id",
                &[&id],
            )
            .await?
            .iter()
            .map(|r| Event {
                event_id: r.get(0),
                job_id: r.get(1),
                phase: r.get(2),
                level: r.get(3),
                kind: r.get(4),
                message: r.get(5),
                details: r.get(6),
                daemon_id: r.get(7),
                created_at: r.get(8),
            })
            .collect();
        Ok(Some((job, events)))
    }

    /// Cancel: a queued (or retry-waiting) job is cancelled at once; a
    /// running one is asked to stop (its worker kills the tools). A
    /// terminal job is a 409.
    pub async fn cancel_clone(&self, id: Uuid) -> Result<Job, DomainError> {
        let mut conn = self.tenants.catalog().get().await?;
        let tx = conn.transaction().await?;
        let Some(row) = tx
            .query_opt(
                "SELECT status, clone_status FROM clone_jobs WHERE id = $1 FOR UPDATE",
                &[&id],
            )
            .await?
        else {
            return Err(DomainError::not_found("clone job", id.to_string()));
        };
        let (status, clone_status): (String, String) = (row.get(0), row.get(1));
        if is_terminal(&clone_status) {
            return Err(DomainError::Conflict(format!(
                "clone job {id} is {clone_status}: nothing to cancel"
            )));
        }
        if status == "running" {
            tx.execute(
                "UPDATE clone_jobs SET cancel_requested = true, clone_status = 'cancel_requested',
                        updated_at = now() WHERE id = $1",
                &[&id],
            )
            .await?;
        } else {
            // Not held by a worker: cancelled now, and never claimed again
            // (the lease status leaves `queued`).
            tx.execute(
                "UPDATE clone_jobs SET cancel_requested = true, clone_status = 'cancelled',
                        status = 'failed', run_token = NULL, finished_at = now(),
                        completed_at = now(), updated_at = now() WHERE id = $1",
                &[&id],
            )
            .await?;
        }
        let phase: String = tx
            .query_one("SELECT phase FROM clone_jobs WHERE id = $1", &[&id])
            .await?
            .get(0);
        event_tx(
            &tx,
            id,
            &phase,
            "warn",
            "cancel_requested",
            "cancel requested",
            json!({}),
            None,
        )
        .await?;
        tx.commit().await?;
        drop(conn);
        self.get_clone(id)
            .await?
            .map(|(j, _)| j)
            .ok_or_else(|| DomainError::not_found("clone job", id.to_string()))
    }

    /// Retry: only a `failed_retryable` or `failed_terminal` job (else
    /// 409); it is queued now with one more attempt allowed if needed.
    pub async fn retry_clone(&self, id: Uuid) -> Result<Job, DomainError> {
        let mut conn = self.tenants.catalog().get().await?;
        let tx = conn.transaction().await?;
        let Some(row) = tx
            .query_opt(
                "SELECT clone_status, phase FROM clone_jobs WHERE id = $1 FOR UPDATE",
                &[&id],
            )
            .await?
        else {
            return Err(DomainError::not_found("clone job", id.to_string()));
        };
        let (clone_status, phase): (String, String) = (row.get(0), row.get(1));
        if !matches!(
            clone_status.as_str(),
            "failed_retryable" | "failed_terminal"
        ) {
            return Err(DomainError::Conflict(format!(
                "clone job {id} is {clone_status}: only a failed job can be retried"
            )));
        }
        // A runner still holding the lease (it is recording the failure)
        // keeps it: requeueing now would start a second runner.
        let n = tx
            .execute(
                "UPDATE clone_jobs SET status = 'queued', clone_status = 'queued', run_token = NULL,
                    run_after = now(), cancel_requested = false, finished_at = NULL,
                    completed_at = NULL, max_attempts = GREATEST(max_attempts, attempts + 1),
                    updated_at = now()
              WHERE id = $1 AND status <> 'running'",
                &[&id],
            )
            .await?;
        if n == 0 {
            return Err(DomainError::Conflict(format!(
                "clone job {id} is still held by a runner; retry once it has stopped"
            )));
        }
        event_tx(
            &tx,
            id,
            &phase,
            "info",
            "retry_requested",
            "retry requested",
            json!({}),
            None,
        )
        .await?;
        tx.commit().await?;
        drop(conn);
        self.clones.wake.notify_one();
        self.get_clone(id)
            .await?
            .map(|(j, _)| j)
            .ok_or_else(|| DomainError::not_found("clone job", id.to_string()))
    }
}

#[allow(clippy::too_many_arguments)]
async fn event(
    conn: &Conn,
    job: Uuid,
    phase: &str,
    level: &str,
    kind: &str,
    message: &str,
    details: Value,
    daemon: Option<&str>,
) -> Result<(), DomainError> {
    conn.execute(
        "INSERT INTO clone_job_events (job_id, phase, level, kind, message, details, daemon_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[&job, &phase, &level, &kind, &message, &details, &daemon],
    )
    .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn event_tx(
    tx: &tokio_postgres::Transaction<'_>,
    job: Uuid,
    phase: &str,
    level: &str,
    kind: &str,
    message: &str,
    details: Value,
    daemon: Option<&str>,
) -> Result<(), DomainError> {
    tx.execute(
        "INSERT INTO clone_job_events (job_id, phase, level, kind, message, details, daemon_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[&job, &phase, &level, &kind, &message, &details, &daemon],
    )
    .await?;
    Ok(())
}

// --- the worker ---

/// Starts the clone workers under the supervisor.
pub fn spawn_workers(p: Arc<Provisioning>) {
    for _ in 0..p.settings.clone_workers {
        let p = p.clone();
        crate::supervisor::supervise(
            "clone worker",
            crate::supervisor::Backoff::default(),
            move || worker(p.clone()),
        );
    }
}

async fn worker(p: Arc<Provisioning>) {
    loop {
        let claimed = match p.tenants.catalog().get().await {
            Ok(conn) => p.clones.leases.claim(&conn, false).await,
            Err(e) => Err(e.into()),
        };
        match claimed {
            Ok(Some((lease, _))) => run(&p, lease).await,
            Ok(None) => {
                let _ = tokio::time::timeout(POLL, p.clones.wake.notified()).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "clone job queue unavailable; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Why a run stopped.
enum Stop {
    Retryable(String),
    Terminal(String),
    Cancelled,
    /// The lease was taken over (this replica was thought dead): stop
    /// touching the job and what it made; the new owner carries on.
    Lost,
}

impl From<DomainError> for Stop {
    fn from(e: DomainError) -> Stop {
        match e {
            DomainError::Unavailable(_) | DomainError::Timeout(_) => {
                Stop::Retryable("a database could not be reached".into())
            }
            DomainError::ServiceUnavailable(m) => Stop::Retryable(m),
            DomainError::Internal(_) => Stop::Retryable("an unexpected error".into()),
            DomainError::Invalid(m)
            | DomainError::Conflict(m)
            | DomainError::Forbidden(m)
            | DomainError::Unauthorized(m) => Stop::Terminal(m),
            DomainError::InvalidField { field, reason } => {
                Stop::Terminal(format!("{field}: {reason}"))
            }
            e => Stop::Terminal(format!("{e:?}").chars().take(200).collect()),
        }
    }
}

/// One run's context.
struct Run<'a> {
    p: &'a Provisioning,
    lease: Lease,
    daemon: String,
    /// Set by the renewal tick when the lease was found taken over.
    lost: Arc<std::sync::atomic::AtomicBool>,
}

impl Run<'_> {
    async fn conn(&self) -> Result<bb8::PooledConnection<'_, crate::db::conn::Manager>, Stop> {
        Ok(self
            .p
            .tenants
            .catalog()
            .get()
            .await
            .map_err(DomainError::from)?)
    }

    /// Enters a phase: the contract's status and phase, an event; a
    /// requested cancel stops here.
    async fn phase(&self, phase: &str, status: &str, message: &str) -> Result<(), Stop> {
        let conn = self.conn().await?;
        // Entering a phase renews the lease (`started_at`).
        let cancel: bool = conn
            .query_opt(
                "UPDATE clone_jobs SET phase = $3,
                        clone_status = CASE WHEN cancel_requested THEN clone_status ELSE $4 END,
                        started_at = now(), updated_at = now()
                  WHERE id = $1 AND run_token = $2 AND status = 'running'
              RETURNING cancel_requested",
                &[&self.lease.id, &self.lease.token, &phase, &status],
            )
            .await
            .map_err(DomainError::from)?
            .ok_or(Stop::Lost)?
            .get(0);
        if cancel {
            return Err(Stop::Cancelled);
        }
        self.event(phase, "info", "phase_started", message, json!({}))
            .await
    }

    async fn event(
        &self,
        phase: &str,
        level: &str,
        kind: &str,
        message: &str,
        details: Value,
    ) -> Result<(), Stop> {
        let conn = self.conn().await?;
        event(
            &conn,
            self.lease.id,
            phase,
            level,
            kind,
            message,
            details,
            Some(&self.daemon),
        )
        .await?;
        Ok(())
    }

    fn lost(&self) -> bool {
        self.lost.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn cancel_requested(&self) -> bool {
        match self.conn().await {
            Ok(conn) => conn
                .query_opt(
                    "SELECT cancel_requested FROM clone_jobs WHERE id = $1",
                    &[&self.lease.id],
                )
                .await
                .ok()
                .flatten()
                .is_some_and(|r| r.get::<_, bool>(0)),
            Err(_) => false,
        }
    }
}

/// Where the target database was made, to undo on failure.
struct Made {
    /// Reuse: the database created on this client's server.
    server_client: Option<String>,
    database: String,
    /// Create: the container started for the job (removed on failure
    /// unless it existed before).
    container: Option<String>,
    registered: Option<crate::catalog::clients::Client>,
}

/// Renews the lease every `every` while the run lasts (aborted with it);
/// a renewal that finds the lease gone sets `lost`.
async fn renew(
    catalog: crate::db::Pool,
    lease: Lease,
    every: Duration,
    lost: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut held_since = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(every).await;
        let renewed = match catalog.get().await {
            Ok(conn) => conn
                .execute(
                    "UPDATE clone_jobs SET started_at = now()
                      WHERE id = $1 AND run_token = $2 AND status = 'running'",
                    &[&lease.id, &lease.token],
                )
                .await
                .map_err(DomainError::from),
            Err(e) => Err(e.into()),
        };
        match renewed {
            Ok(0) => {
                tracing::warn!(job = %lease.id, "clone lease taken over; this run stops");
                lost.store(true, std::sync::atomic::Ordering::SeqCst);
                return;
            }
            Ok(_) => held_since = tokio::time::Instant::now(),
            // The catalog is away: the next tick tries again (the lease,
            // three periods, outlives one missed renewal). After two, the
            // lease may expire before the catalog answers again and another
            // replica take the job: this run stops (its tools killed) rather
            // than race the new owner.
            Err(e) => {
                tracing::warn!(job = %lease.id, error = %e, "renewing a clone lease failed");
                if held_since.elapsed() >= every * 2 {
                    tracing::warn!(job = %lease.id, "clone lease not renewed for two periods; this run stops");
                    lost.store(true, std::sync::atomic::Ordering::SeqCst);
                    return;
                }
            }
        }
    }
}

/// Aborts the renewal task when the run ends, however it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn run(p: &Provisioning, lease: Lease) {
    let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let _renewal = AbortOnDrop(tokio::spawn(renew(
        p.tenants.catalog().clone(),
        lease,
        p.clones.renew_every(),
        lost.clone(),
    )));
    let r = Run {
        p,
        lease,
        daemon: p.clones.daemon_id.clone(),
        lost,
    };
    let mut made: Option<Made> = None;
    let outcome = steps(&r, &mut made).await;
    if matches!(outcome, Err(Stop::Lost)) || r.lost() {
        // Another replica owns the job now: nothing is recorded or undone.
        tracing::warn!(job = %lease.id, "clone run stopped: its lease was taken over");
        return;
    }
    let Ok(conn) = p.tenants.catalog().get().await else {
        // The lease goes stale and the job is taken over.
        return;
    };
    let id = lease.id;
    let result = match outcome {
        Ok(verification) => {
            let _ = conn
                .execute(
                    "UPDATE clone_jobs SET clone_status = 'completed', phase = 'complete',
                            verification_summary = $3, completed_at = now(), updated_at = now()
                      WHERE id = $1 AND run_token = $2",
                    &[&id, &lease.token, &verification],
                )
                .await;
            let _ = event(
                &conn,
                id,
                "complete",
                "info",
                "job_completed",
                "clone completed",
                verification.clone(),
                Some(&r.daemon),
            )
            .await;
            p.clones.leases.complete(&conn, &lease, &verification).await
        }
        Err(stop) => {
            // Undo only what this run still owns: a lease taken over while
            // the run failed (the catalog answered late) belongs to the new
            // owner, whose database, client or container this must not drop.
            let held = conn
                .query_opt(
                    "SELECT 1 FROM clone_jobs WHERE id = $1 AND run_token = $2 AND status = 'running'",
                    &[&id, &lease.token],
                )
                .await;
            if !matches!(held, Ok(Some(_))) {
                tracing::warn!(job = %id, "clone run failed after its lease was lost: nothing undone or recorded");
                return;
            }
            undo(p, made).await;
            let max: i32 = conn
                .query_one("SELECT max_attempts FROM clone_jobs WHERE id = $1", &[&id])
                .await
                .map(|r| r.get(0))
                .unwrap_or(1);
            let (status, kind, message, retry) = match &stop {
                Stop::Cancelled => ("cancelled", "job_cancelled", "cancelled".to_string(), false),
                Stop::Retryable(m) if lease.attempts < max => {
                    ("failed_retryable", "attempt_failed", m.clone(), true)
                }
                Stop::Retryable(m) | Stop::Terminal(m) => {
                    ("failed_terminal", "job_failed", m.clone(), false)
                }
                Stop::Lost => return,
            };
            let summary = json!({
                "message": message,
                "attempt": lease.attempts,
                "retryable": matches!(stop, Stop::Retryable(_)),
            });
            let _ = conn
                .execute(
                    "UPDATE clone_jobs SET clone_status = $3, failure_summary = $4,
                            completed_at = CASE WHEN $3 = 'failed_retryable' THEN NULL ELSE now() END,
                            updated_at = now()
                      WHERE id = $1 AND run_token = $2",
                    &[
                        &id,
                        &lease.token,
                        &status,
                        &(!matches!(stop, Stop::Cancelled)).then_some(summary.clone()),
                    ],
                )
                .await;
            let phase: String = conn
                .query_one("SELECT phase FROM clone_jobs WHERE id = $1", &[&id])
                .await
                .map(|r| r.get(0))
                .unwrap_or_else(|_| "validate_source".into());
            let level = if matches!(stop, Stop::Cancelled) {
                "warn"
            } else {
                "error"
            };
            let _ = event(
                &conn,
                id,
                &phase,
                level,
                kind,
                &message,
                summary.clone(),
                Some(&r.daemon),
            )
            .await;
            if retry {
                p.clones.leases.retry(&conn, &lease, &message).await
            } else {
                p.clones
                    .leases
                    .fail(&conn, &lease, &summary, &message)
                    .await
            }
        }
    };
    if let Err(e) = result {
        tracing::warn!(job = %id, error = %e, "recording a clone job outcome failed");
    }
}

/// Drops what a failed run created: the catalog client, the database.
async fn undo(p: &Provisioning, made: Option<Made>) {
    let Some(made) = made else { return };
    if let Some(client) = &made.registered {
        let _ = crate::catalog::clients::discard_created(p.tenants.catalog(), client).await;
        p.tenants.evict(&client.client_name).await;
    }
    if let Some(container) = &made.container {
        if let Ok(engine) = p.docker() {
            if let Err(e) = engine.remove(container).await {
                tracing::warn!(container = %container, error = ?e, "removing a failed clone's container failed");
            }
        }
        if let Ok(conn) = p.tenants.catalog().get().await {
            let _ = conn
                .execute(
                    "DELETE FROM athena_provision_instances WHERE container_name = $1",
                    &[container],
                )
                .await;
        }
        return;
    }
    let Some(server_client) = made.server_client else {
        return;
    };
    if let Ok(server) = p.tenants.resolve(&server_client).await {
        if let (Ok(conn), Ok(name)) = (
            server.pool.get().await,
            super::strict_name("database_name", &made.database),
        ) {
            if let Err(e) = conn
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
            {
                tracing::warn!(database = %made.database, error = %e, "dropping a failed clone target failed");
            }
        }
    }
    if let Ok(conn) = p.tenants.catalog().get().await {
        let _ = conn
            .execute(
                "DELETE FROM athena_provisioned_databases
                  WHERE server_client = $1 AND database_name = $2 AND kind = 'clone'",
                &[&server_client, &made.database],
            )
            .await;
    }
}

/// A tool's connection: one libpq conninfo string built here, value by
/// value, passed as `--dbname` (so no value — a database name holding `=`
/// or a URI — is ever expanded by libpq), and the password, which goes to
/// `PGPASSWORD` only.
struct PgArgs {
    conninfo: String,
    password: Option<String>,
    /// The operator's CA bundle (`ATHENA_PG_SSL_ROOT_CERT`) as
    /// `PGSSLROOTCERT`, for `verify-ca`/`verify-full` (never a URI's path).
    root_cert: Option<std::path::PathBuf>,
}

impl PgArgs {
    fn args(&self) -> Vec<String> {
        vec!["--dbname".into(), self.conninfo.clone()]
    }
}

/// One libpq conninfo value, single-quoted with `\` and `'` escaped.
fn conninfo_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('\'');
    for c in v.chars() {
        if c == '\\' || c == '\'' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// A conninfo string from (keyword, value) pairs; keywords are ours.
fn conninfo(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", conninfo_value(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The source's connection: the pinned address the outbound policy
/// checked (`hostaddr`; `host` is the URI's name, for `verify-full`), the
/// URI's TLS mode and channel binding (`src/db/tls.rs`; security.md §1),
/// the database name kept literal.
fn source_args(
    parsed: &crate::db::direct::DirectTarget,
    addr: std::net::SocketAddr,
    tls: crate::db::tls::PgTls,
) -> PgArgs {
    let c = &parsed.config;
    let host = match c.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => addr.ip().to_string(),
    };
    let mut pairs = vec![
        ("host", host),
        ("hostaddr", addr.ip().to_string()),
        ("port", addr.port().to_string()),
        ("user", c.get_user().unwrap_or_default().to_string()),
        ("dbname", c.get_dbname().unwrap_or("postgres").to_string()),
        ("sslmode", parsed.ssl.as_str().to_string()),
    ];
    if c.get_channel_binding() == tokio_postgres::config::ChannelBinding::Require {
        pairs.push(("channel_binding", "require".to_string()));
    }
    PgArgs {
        conninfo: conninfo(&pairs),
        password: c
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        root_cert: tls.bundle().map(std::path::Path::to_path_buf),
    }
}

/// Connection of a trusted (catalog) URI: its hosts (TCP or socket
/// directories), ports, user, database, TLS mode and options, rebuilt as a
/// conninfo string; the password moves to `PGPASSWORD`.
fn trusted_args(uri: &str, tls: crate::db::tls::PgTls) -> Result<PgArgs, Stop> {
    use tokio_postgres::config::Host;
    let (cfg, ssl) = crate::db::tls::config_from_uri(uri)
        .map_err(|_| Stop::Terminal("the target client's URI is not valid".into()))?;
    let hosts: Vec<String> = cfg
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(h) => h.clone(),
            #[cfg(unix)]
            Host::Unix(p) => p.to_string_lossy().into_owned(),
        })
        .collect();
    if hosts.is_empty() {
        return Err(Stop::Terminal("the target client's URI has no host".into()));
    }
    let join = |v: Vec<String>| v.join(",");
    let mut pairs = vec![("host", join(hosts))];
    if !cfg.get_hostaddrs().is_empty() {
        pairs.push((
            "hostaddr",
            join(cfg.get_hostaddrs().iter().map(|a| a.to_string()).collect()),
        ));
    }
    if !cfg.get_ports().is_empty() {
        pairs.push((
            "port",
            join(cfg.get_ports().iter().map(|p| p.to_string()).collect()),
        ));
    }
    pairs.push(("user", cfg.get_user().unwrap_or("postgres").to_string()));
    pairs.push(("dbname", cfg.get_dbname().unwrap_or("postgres").to_string()));
    pairs.push(("sslmode", ssl.as_str().to_string()));
    if cfg.get_channel_binding() == tokio_postgres::config::ChannelBinding::Require {
        pairs.push(("channel_binding", "require".to_string()));
    }
    if let Some(o) = cfg.get_options() {
        pairs.push(("options", o.to_string()));
    }
    Ok(PgArgs {
        conninfo: conninfo(&pairs),
        password: cfg
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        root_cert: tls.bundle().map(std::path::Path::to_path_buf),
    })
}

async fn steps(r: &Run<'_>, made: &mut Option<Made>) -> Result<Value, Stop> {
    let p = r.p;
    let conn = r.conn().await?;
    let row = conn
        .query_one(
            "SELECT source_uri_sealed, spec FROM clone_jobs WHERE id = $1",
            &[&r.lease.id],
        )
        .await
        .map_err(DomainError::from)?;
    drop(conn);
    let (sealed, spec): (Vec<u8>, Value) = (row.get(0), row.get(1));
    let secret: Value = p
        .secrets()?
        .open(&seal_context(r.lease.id), &sealed)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| {
            Stop::Terminal("the sealed source URI cannot be opened with this key".into())
        })?;
    let source_uri = secret["source_uri"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let target = &spec["target"];
    let create = target["mode"] == "create_managed_instance";
    let existing = target["existing_client_name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let database = target["database_name"]
        .as_str()
        .unwrap_or("postgres")
        .to_string();
    let target_client = target[if create {
        "client_name"
    } else {
        "target_client_name"
    }]
    .as_str()
    .unwrap_or_default()
    .to_string();

    // validate_source: the URI per security.md §1, reachable, its version
    // and tables.
    r.phase("validate_source", "preparing", "validating the source")
        .await?;
    let parsed = crate::db::direct::parse(&source_uri)
        .map_err(|e| Stop::from(e.into_domain("source_uri")))?;
    let source = super::open_direct(&p.direct, "source_uri", &source_uri).await?;
    let addr = p
        .direct
        .pinned_address(&parsed)
        .ok_or_else(|| Stop::Retryable("the source address is not pinned".into()))?;
    let sconn = source.pool.get().await.map_err(DomainError::from)?;
    let source_major: i32 = sconn
        .query_one(
            "SELECT current_setting('server_version_num')::int / 10000",
            &[],
        )
        .await
        .map_err(DomainError::from)?
        .get(0);
    let tables = user_tables(&sconn).await?;
    drop(sconn);
    let source_args = source_args(&parsed, addr, p.tenants.default_settings().tls);
    r.event(
        "validate_source",
        "info",
        "source_validated",
        "source reachable",
        json!({"server_major": source_major, "tables": tables.len()}),
    )
    .await?;

    // prepare_target: CREATE DATABASE on the existing client's server
    // (reuse), or a managed Docker instance (create).
    r.phase(
        "prepare_target",
        "preparing",
        "preparing the target database",
    )
    .await?;
    let target_uri = if create {
        let existed = match target["container_name"].as_str() {
            Some(c) => p.docker()?.inspect(c).await?.is_some(),
            None => false,
        };
        let spin = super::instances::SpinUp {
            client_name: target_client.clone(),
            container_name: target["container_name"].as_str().map(str::to_string),
            db_name: Some(database.clone()),
            host: target["host"].as_str().map(str::to_string),
            host_port: target["host_port"]
                .as_i64()
                .map(|p| p.clamp(0, 70000) as i32),
            image: target["image"].as_str().map(str::to_string),
            password: secret["target_password"].as_str().map(str::to_string),
            username: target["username"].as_str().map(str::to_string),
            provision_schema: false,
            register_catalog: false,
            register_runtime: false,
            reuse_existing: target["reuse_existing_container"]
                .as_bool()
                .unwrap_or(false),
            startup_timeout_secs: target["startup_timeout_secs"].as_i64(),
        };
        let (v, uri) = p.spin_up_with_uri(&spin).await?;
        // A reused instance's database may hold someone's data: restore
        // only into an empty one.
        if v["reused"] == true {
            let pool = crate::db::pool(
                &uri,
                crate::db::PoolSettings {
                    max_size: 1,
                    ..p.tenants.default_settings()
                },
            )?;
            let c = pool.get().await.map_err(DomainError::from)?;
            if !user_tables(&c).await?.is_empty() {
                return Err(Stop::Terminal(format!(
                    "database `{database}` in the reused instance is not empty: give a new \
                     database_name or an empty instance"
                )));
            }
        }
        *made = Some(Made {
            server_client: None,
            database: database.clone(),
            container: (!existed)
                .then(|| v["container_name"].as_str().unwrap_or_default().to_string()),
            registered: None,
        });
        r.event(
            "prepare_target",
            "info",
            "instance_ready",
            "managed instance ready",
            json!({"container_name": v["container_name"], "reused": v["reused"], "host_port": v["host_port"]}),
        )
        .await?;
        uri
    } else {
        let server = p.tenants.resolve(&existing).await?;
        let name = super::strict_name("database_name", &database)?;
        let server_conn = server.pool.get().await.map_err(DomainError::from)?;
        server_conn
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .map_err(|e| match e.code().map(|s| s.code()) {
                Some("42P04") => {
                    Stop::Terminal(format!("the target database `{database}` already exists"))
                }
                _ => Stop::from(DomainError::from(e)),
            })?;
        drop(server_conn);
        *made = Some(Made {
            server_client: Some(existing.clone()),
            database: database.clone(),
            container: None,
            registered: None,
        });
        let conn = r.conn().await?;
        conn.execute(
            "INSERT INTO athena_provisioned_databases (server_client, database_name, client_name, kind)
             VALUES ($1, $2, $3, 'clone')
             ON CONFLICT (server_client, database_name) DO UPDATE SET client_name = EXCLUDED.client_name, kind = 'clone'",
            &[&existing, &database, &target_client],
        )
        .await
        .map_err(DomainError::from)?;
        super::with_database(&server.uri, &database)?
    };

    // resolve_tools: pg_dump and pg_restore at least the source's major.
    r.phase(
        "resolve_tools",
        "running",
        "resolving pg_dump and pg_restore",
    )
    .await?;
    let path = super::deps::search_path(&p.settings);
    let mut tools = Vec::new();
    for tool in ["pg_dump", "pg_restore"] {
        let bin = super::deps::find(&path, tool)
            .ok_or_else(|| Stop::Terminal(format!("{tool} is not installed on this host")))?;
        let version = super::deps::version(&bin).await.unwrap_or_default();
        let major = super::deps::major(&version).unwrap_or(0);
        if (major as i32) < source_major {
            return Err(Stop::Terminal(format!(
                "{tool} {major} is older than the source server ({source_major})"
            )));
        }
        tools.push((bin, version));
    }
    r.event(
        "resolve_tools",
        "info",
        "tools_resolved",
        "tools resolved",
        json!({"pg_dump": tools[0].1, "pg_restore": tools[1].1}),
    )
    .await?;

    // dump_source → restore_target: one stream.
    r.phase("dump_source", "running", "pg_dump started").await?;
    let target_args = trusted_args(&target_uri, p.tenants.default_settings().tls)?;
    stream(
        r,
        &tools[0].0,
        &source_args,
        &tools[1].0,
        &target_args,
        &path,
    )
    .await?;
    r.phase("restore_target", "running", "pg_restore finished")
        .await?;

    // bootstrap_athena
    if spec["provisioning"]["provision_schema"]
        .as_bool()
        .unwrap_or(true)
    {
        r.phase("bootstrap_athena", "running", "applying the tenant schema")
            .await?;
        let applied = super::provision_trusted(&p.tenants, &target_uri).await?;
        r.event(
            "bootstrap_athena",
            "info",
            "schema_applied",
            "tenant schema applied",
            json!({"statements_executed": applied.statements}),
        )
        .await?;
    }

    // register_client
    let reg = &spec["registration"];
    let catalog = reg["register_catalog"].as_bool().unwrap_or(true);
    let runtime = reg["register_runtime"].as_bool().unwrap_or(true);
    if catalog || runtime {
        r.phase("register_client", "running", "registering the client")
            .await?;
        let registration = super::Registration {
            client_name: reg["register_name"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| target_client.clone()),
            description: reg["description"]
                .as_str()
                .or(target["description"].as_str())
                .map(str::to_string),
            catalog,
            runtime,
        };
        if catalog
            && crate::catalog::clients::get(p.tenants.catalog(), &registration.client_name)
                .await?
                .is_some()
        {
            return Err(Stop::Terminal(format!(
                "client `{}` is already registered",
                registration.client_name
            )));
        }
        let mut out = super::Provisioned::default();
        let created = super::register(&p.tenants, &target_uri, &registration, &mut out).await?;
        // Only the row this run inserted is undone later.
        if let Some(m) = made.as_mut() {
            m.registered = created;
        }
    }

    // verify_target: the same tables, the same row counts.
    r.phase("verify_target", "verifying", "comparing row counts")
        .await?;
    let source_counts = {
        let c = source.pool.get().await.map_err(DomainError::from)?;
        counts(&c, &tables).await?
    };
    let target_pool = crate::db::pool(
        &target_uri,
        crate::db::PoolSettings {
            max_size: 1,
            ..p.tenants.default_settings()
        },
    )?;
    let target_counts = {
        let c = target_pool.get().await.map_err(DomainError::from)?;
        counts(&c, &tables).await?
    };
    let mut mismatches = Vec::new();
    let mut per_table = Map::new();
    for ((table, s), t) in tables.iter().zip(&source_counts).zip(&target_counts) {
        let key = format!("{}.{}", table.0, table.1);
        if s != t {
            mismatches.push(json!({"table": key, "source_rows": s, "target_rows": t}));
        }
        per_table.insert(key, json!({"source_rows": s, "target_rows": t}));
    }
    let summary = json!({
        "tables_source": tables.len(),
        "tables_target": target_counts.iter().filter(|c| c.is_some()).count(),
        "rows_source": source_counts.iter().flatten().sum::<i64>(),
        "rows_target": target_counts.iter().flatten().sum::<i64>(),
        "tables": per_table,
        "mismatches": mismatches,
    });
    if !mismatches.is_empty() {
        r.event(
            "verify_target",
            "error",
            "verification_failed",
            "row counts differ",
            summary.clone(),
        )
        .await?;
        return Err(Stop::Terminal(
            "the target's row counts differ from the source's".into(),
        ));
    }
    r.phase("complete", "verifying", "verified").await?;
    Ok(summary)
}

/// The source's user tables (schema, name), gateway-free system schemas
/// left out.
async fn user_tables(conn: &Conn) -> Result<Vec<(String, String)>, Stop> {
    Ok(conn
        .query(
            "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
                AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                AND n.nspname NOT LIKE 'pg\\_%'
              ORDER BY 1, 2",
            &[],
        )
        .await
        .map_err(DomainError::from)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// Exact row counts (`None`: the table is missing).
async fn counts(conn: &Conn, tables: &[(String, String)]) -> Result<Vec<Option<i64>>, Stop> {
    let mut out = Vec::with_capacity(tables.len());
    for (schema, table) in tables {
        let s = crate::domain::identifier::Ident::parse("schema", schema)?;
        let t = crate::domain::identifier::Ident::parse("table", table)?;
        let exists = conn
            .query_one(
                "SELECT to_regclass(quote_ident($1) || '.' || quote_ident($2)) IS NOT NULL",
                &[schema, table],
            )
            .await
            .map_err(DomainError::from)?
            .get::<_, bool>(0);
        if !exists {
            out.push(None);
            continue;
        }
        let n: i64 = conn
            .query_one(&format!("SELECT count(*) FROM {s}.{t}"), &[])
            .await
            .map_err(DomainError::from)?
            .get(0);
        out.push(Some(n));
    }
    Ok(out)
}

/// pg_dump (custom format) piped into pg_restore, both killed on cancel.
async fn stream(
    r: &Run<'_>,
    pg_dump: &std::path::Path,
    source: &PgArgs,
    pg_restore: &std::path::Path,
    target: &PgArgs,
    path: &str,
) -> Result<(), Stop> {
    use std::process::Stdio;
    let env = |cmd: &mut tokio::process::Command, a: &PgArgs| {
        cmd.env_clear()
            .env("PATH", path)
            // Nothing from this host's libpq files.
            .env("PGPASSFILE", "/dev/null")
            .env("PGSERVICEFILE", "/dev/null")
            // No client certificate of this host's (~/.postgresql) shown
            // to a caller-chosen database.
            .env("PGSSLCERT", "/dev/null")
            .env("PGSSLKEY", "/dev/null")
            .env("PGCONNECT_TIMEOUT", "10")
            .kill_on_drop(true);
        if let Some(pw) = &a.password {
            cmd.env("PGPASSWORD", pw);
        }
        if let Some(ca) = &a.root_cert {
            cmd.env("PGSSLROOTCERT", ca);
        }
    };
    let mut dump = tokio::process::Command::new(pg_dump);
    dump.args(["--format=custom", "--no-owner", "--no-privileges"])
        .args(source.args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    env(&mut dump, source);
    let mut dump = dump
        .spawn()
        .map_err(|e| Stop::Retryable(format!("pg_dump could not start: {e}")))?;
    let pipe: Stdio = dump
        .stdout
        .take()
        .ok_or_else(|| Stop::Retryable("pg_dump has no stdout".into()))?
        .try_into()
        .map_err(|_| Stop::Retryable("pg_dump's stdout cannot be piped".into()))?;
    let mut restore = tokio::process::Command::new(pg_restore);
    restore
        .args(["--no-owner", "--no-privileges", "--exit-on-error"])
        .args(target.args())
        .stdin(pipe)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    env(&mut restore, target);
    let mut restore = match restore.spawn() {
        Ok(c) => c,
        Err(e) => {
            let _ = dump.kill().await;
            return Err(Stop::Retryable(format!("pg_restore could not start: {e}")));
        }
    };
    r.event(
        "restore_target",
        "info",
        "phase_started",
        "pg_restore started, reading pg_dump's output",
        json!({"pg_dump_pid": dump.id(), "pg_restore_pid": restore.id()}),
    )
    .await?;
    let dump_err = tokio::spawn(read_capped(dump.stderr.take()));
    let restore_err = tokio::spawn(read_capped(restore.stderr.take()));
    let (mut dump_status, mut restore_status) = (None, None);
    while dump_status.is_none() || restore_status.is_none() {
        tokio::select! {
            s = dump.wait(), if dump_status.is_none() => dump_status = Some(s),
            s = restore.wait(), if restore_status.is_none() => restore_status = Some(s),
            _ = tokio::time::sleep(POLL) => {
                // The renewal tick keeps the lease while the stream runs;
                // a lease taken over stops the tools (the new owner redoes).
                if r.lost() {
                    let _ = dump.kill().await;
                    let _ = restore.kill().await;
                    return Err(Stop::Lost);
                }
                if r.cancel_requested().await {
                    let _ = dump.kill().await;
                    let _ = restore.kill().await;
                    r.event("dump_source", "warn", "processes_killed",
                        "pg_dump and pg_restore killed on cancel", json!({})).await?;
                    return Err(Stop::Cancelled);
                }
            }
        }
    }
    let dump_err = dump_err.await.unwrap_or_default();
    let restore_err = restore_err.await.unwrap_or_default();
    let ok = |s: &Option<std::io::Result<std::process::ExitStatus>>| {
        s.as_ref()
            .is_some_and(|s| s.as_ref().is_ok_and(|s| s.success()))
    };
    if !ok(&dump_status) {
        return Err(Stop::Retryable(format!(
            "pg_dump failed: {}",
            dump_err.trim()
        )));
    }
    if !ok(&restore_status) {
        return Err(Stop::Retryable(format!(
            "pg_restore failed: {}",
            restore_err.trim()
        )));
    }
    Ok(())
}

/// A tool's stderr, its last `STDERR_CAP` bytes (it never holds a password:
/// passwords travel in the environment).
async fn read_capped<R: tokio::io::AsyncRead + Unpin>(stream: Option<R>) -> String {
    use tokio::io::AsyncReadExt;
    let Some(mut stream) = stream else {
        return String::new();
    };
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > STDERR_CAP {
            kept.drain(..kept.len() - STDERR_CAP);
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}
