//! Backups to S3, restores, schedules and the daemon registry (issue 18).
//!
//! - **Jobs** live in `athena_backup_jobs` (`migrations/0013_backups.sql`)
//!   and run on the shared claim/lease module (`src/jobs/mod.rs`): a worker
//!   of any replica claims the oldest queued job with `SKIP LOCKED`, renews
//!   its lease every second while the job runs (and reads the cancel flag
//!   then), and only the holder of the current run token records the
//!   outcome. A job whose replica died (no renewal for `stale_after`) is
//!   claimed again by another replica, which aborts the dead run's
//!   multipart upload and records the job `failed`: never `running` forever.
//! - **Backup** = `pg_dump --format=custom` (an argument vector, no shell;
//!   the password only in the child's `PGPASSWORD`) whose stdout is
//!   streamed into an S3 multipart upload, part by part (`PART_SIZE` in
//!   memory at most; nothing on local disk), through the storage S3 wire
//!   (`src/storage/s3.rs`, every connection through the outbound policy).
//!   Failure, cancel or timeout: the child's process group gets SIGTERM
//!   (SIGKILL 5 s later) and the upload is aborted. See `worker.rs`.
//! - **Restore** streams the object into `pg_restore --single-transaction
//!   --exit-on-error --no-owner`: a failure leaves the target unchanged.
//! - **Schedules** (`schedule.rs`): every replica's scheduler queues the
//!   latest due slot; the unique `(schedule_id, slot)` makes it one job.
//! - **Daemons**: every supervised loop of every replica is written to
//!   `athena_daemon_registry` by one heartbeat task per replica (`daemons`).
//!
//! Targets are a registered client (its configured URI, trusted) or a
//! direct `pg_uri` (security.md §1: parsed by `src/db/direct.rs`, password
//! required, host checked by the outbound policy and pinned to the checked
//! address), stored only sealed (`src/secrets.rs`) and shown redacted.

pub mod daemons;
pub mod schedule;
pub mod worker;

use crate::db::direct;
use crate::db::tenants::Tenants;
use crate::db::Pool;
use crate::domain::DomainError;
use crate::events::Outbox;
use crate::jobs::Leases;
use crate::outbound::OutboundPolicy;
use crate::secrets::Secrets;
use crate::storage::s3::{Call, Store, S3};
use chrono::{DateTime, Utc};
use http::Method;
use schedule::ScheduleInput;
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;

/// Configuration (`ATHENA_BACKUP_*`, README "Backups").
#[derive(Debug, Clone)]
pub struct Settings {
    /// `ATHENA_BACKUP_S3_BUCKET`; unset → the backup routes answer 503.
    pub bucket: Option<String>,
    /// `ATHENA_BACKUP_S3_PREFIX` (default `athena-backups`): every key.
    pub prefix: String,
    /// `ATHENA_BACKUP_WORKERS` (default 1; 0 = this replica runs no jobs).
    pub workers: usize,
    /// `ATHENA_BACKUP_STALE_AFTER_SECS` (default 60): a running job whose
    /// lease was not renewed this long belongs to a dead replica.
    pub stale_after: Duration,
    /// How often an idle worker looks for jobs.
    pub poll: Duration,
    /// `ATHENA_BACKUP_SCHEDULE_TICK_SECS` (default 30): scheduler period.
    pub schedule_tick: Duration,
    /// `ATHENA_DAEMON_HEARTBEAT_SECS` (default 10): how often the daemon
    /// registry is written; a loop not heard from for 3 periods is `stale`.
    pub heartbeat: Duration,
    /// Where `pg_dump`/`pg_restore` are (`PGBIN`, else `PATH`).
    pub pg_bin: Option<PathBuf>,
    /// Bytes of a multipart part (`worker::PART_SIZE`; tests with a fake
    /// store use smaller ones).
    pub part_size: usize,
    /// Longest wait between two retries of an upload's abort that failed
    /// (the store was down): the wait doubles from 1 s up to this.
    pub abort_retry_max: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bucket: None,
            prefix: "athena-backups".into(),
            workers: 1,
            stale_after: Duration::from_secs(60),
            poll: Duration::from_millis(500),
            schedule_tick: Duration::from_secs(30),
            heartbeat: Duration::from_secs(10),
            pg_bin: None,
            part_size: worker::PART_SIZE,
            abort_retry_max: Duration::from_secs(60),
        }
    }
}

impl Settings {
    pub fn from_env() -> Result<Settings, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let number = |name: &str, default: u64| -> Result<u64, String> {
            match var(name) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| format!("{name}={v:?} is not a whole number")),
            }
        };
        let d = Settings::default();
        let prefix = match var("ATHENA_BACKUP_S3_PREFIX") {
            Some(p) => normalize_prefix(&p).ok_or_else(|| {
                format!("ATHENA_BACKUP_S3_PREFIX={p:?}: printable, no `..` segment, at most 200 characters")
            })?,
            None => d.prefix,
        };
        Ok(Settings {
            bucket: var("ATHENA_BACKUP_S3_BUCKET").map(|b| b.trim().to_string()),
            prefix,
            workers: number("ATHENA_BACKUP_WORKERS", 1)? as usize,
            stale_after: Duration::from_secs(number("ATHENA_BACKUP_STALE_AFTER_SECS", 60)?.max(5)),
            schedule_tick: Duration::from_secs(
                number("ATHENA_BACKUP_SCHEDULE_TICK_SECS", 30)?.max(1),
            ),
            pg_bin: var("PGBIN").map(PathBuf::from),
            heartbeat: Duration::from_secs(number("ATHENA_DAEMON_HEARTBEAT_SECS", 10)?.max(1)),
            ..d
        })
    }
}

/// A prefix without surrounding slashes, printable, no `..` segment.
pub fn normalize_prefix(p: &str) -> Option<String> {
    let p = p.trim().trim_matches('/');
    let ok = !p.is_empty()
        && p.len() <= 200
        && p.chars().all(|c| c.is_ascii_graphic())
        && !p.split('/').any(|s| s.is_empty() || s == "." || s == "..");
    ok.then(|| p.to_string())
}

/// Labels go to S3 metadata: printable ASCII, at most 200 characters.
pub fn check_label(label: &str) -> Result<(), DomainError> {
    if label.len() > 200 || !label.chars().all(|c| c == ' ' || c.is_ascii_graphic()) {
        return Err(DomainError::invalid_field(
            "label",
            "printable ASCII, at most 200 characters",
        ));
    }
    Ok(())
}

/// Where a job's database is: a registered client, or a direct URI.
#[derive(Clone)]
pub enum Target {
    Client(String),
    /// The URI text (kept sealed in the row) and its printable form.
    Direct {
        uri: String,
        redacted: String,
    },
}

/// Never the URI itself: it may hold a password.
impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Client(c) => f.debug_tuple("Client").field(c).finish(),
            Target::Direct { redacted, .. } => f
                .debug_struct("Direct")
                .field("uri", &"<redacted>")
                .field("redacted", redacted)
                .finish(),
        }
    }
}

/// `timeout_seconds` when a request (or a schedule) gives none: the
/// contract's default for backups and restores.
pub const DEFAULT_TIMEOUT_SECS: i32 = 3600;

/// The job columns every view reads.
const JOB: &str = "job_id, job_type, status, client_name, target_redacted, label, \
    recovery_strategy, timeout_seconds, s3_bucket, s3_key, size_bytes, bytes_written, \
    progress_stage, cancel_requested, schedule_id, slot, execution_daemon_id, attempts, \
    error, created_at, first_started_at, finished_at, updated_at, result";

/// A key as one URL path segment (`/admin/backups/{key}/…`).
pub fn key_path(key: &str) -> String {
    percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The API's name of a status (`queued` is `pending`).
fn shown_status(s: &str) -> &str {
    match s {
        "queued" => "pending",
        s => s,
    }
}

fn job_json(r: &tokio_postgres::Row) -> Value {
    let ts = |i: usize| r.get::<_, Option<DateTime<Utc>>>(i);
    let status: String = r.get(2);
    let key: Option<String> = r.get(9);
    json!({
        "job_id": r.get::<_, i64>(0),
        "id": r.get::<_, i64>(0),
        "job_type": r.get::<_, String>(1),
        "status": shown_status(&status),
        "client_name": r.get::<_, Option<String>>(3),
        "target": r.get::<_, Option<String>>(4),
        "label": r.get::<_, Option<String>>(5),
        "recovery_strategy": r.get::<_, String>(6),
        "timeout_seconds": r.get::<_, Option<i32>>(7),
        "s3_bucket": r.get::<_, Option<String>>(8),
        "key_path": key.as_deref().map(key_path),
        "s3_key": key,
        "size_bytes": r.get::<_, Option<i64>>(10),
        "bytes_written": r.get::<_, i64>(11),
        "progress_stage": r.get::<_, String>(12),
        "cancel_requested": r.get::<_, bool>(13),
        "schedule_id": r.get::<_, Option<i64>>(14),
        "slot": ts(15),
        "execution_daemon_id": r.get::<_, Option<String>>(16),
        "attempts": r.get::<_, i32>(17),
        "error_message": r.get::<_, Option<String>>(18),
        "created_at": ts(19),
        "started_at": ts(20),
        "finished_at": ts(21),
        "completed_at": if status == "completed" { ts(21) } else { None },
        "updated_at": ts(22),
        "result": r.get::<_, Option<Value>>(23),
    })
}

const SCHEDULE: &str = "id, client_name, frequency, time_of_day, day_of_week, day_of_month, \
    label, enabled, execution_daemon_id, last_slot, created_at, updated_at";

fn schedule_json(r: &tokio_postgres::Row) -> Value {
    json!({
        "id": r.get::<_, i64>(0),
        "client_name": r.get::<_, String>(1),
        "frequency": r.get::<_, String>(2),
        "time_of_day": r.get::<_, String>(3),
        "day_of_week": r.get::<_, Option<i32>>(4),
        "day_of_month": r.get::<_, Option<i32>>(5),
        "label": r.get::<_, Option<String>>(6),
        "enabled": r.get::<_, bool>(7),
        "execution_daemon_id": r.get::<_, Option<String>>(8),
        "last_slot": r.get::<_, Option<DateTime<Utc>>>(9),
        "created_at": r.get::<_, DateTime<Utc>>(10),
        "updated_at": r.get::<_, DateTime<Utc>>(11),
    })
}

fn schedule_input(r: &tokio_postgres::Row) -> Result<ScheduleInput, DomainError> {
    let v = schedule_json(r);
    let mut m = v.as_object().cloned().unwrap_or_default();
    for k in ["id", "last_slot", "created_at", "updated_at"] {
        m.remove(k);
    }
    ScheduleInput::merge(&m, None)
}

/// A completed backup of `GET /admin/backups`.
pub struct BackupItem {
    pub job_id: i64,
    pub client_name: Option<String>,
    pub label: Option<String>,
    pub s3_bucket: Option<String>,
    pub s3_key: Option<String>,
    pub size_bytes: Option<i64>,
    pub completed_at: Option<DateTime<Utc>>,
    pub execution_daemon_id: Option<String>,
}

/// The backups service: one per process.
pub struct Backups {
    pub settings: Settings,
    catalog: Pool,
    tenants: Arc<Tenants>,
    secrets: Option<Secrets>,
    outbound: Arc<OutboundPolicy>,
    s3: S3,
    /// The server's S3 store (`S3_ENDPOINT`…), or why there is none.
    store: Result<Store, String>,
    events: Arc<Outbox>,
    leases: Leases,
    wake: Notify,
}

impl Backups {
    #[allow(clippy::too_many_arguments)]
    pub async fn new(
        settings: Settings,
        tenants: Arc<Tenants>,
        s3: Option<&crate::config::S3Config>,
        allow_http: bool,
        secrets: Option<Secrets>,
        outbound: Arc<OutboundPolicy>,
        events: Arc<Outbox>,
    ) -> Backups {
        let store = match s3 {
            None => Err("no S3 store is configured (S3_ENDPOINT)".to_string()),
            Some(c) => {
                match crate::storage::endpoint::parse(&c.endpoint, allow_http, &outbound).await {
                    Ok(endpoint) => Ok(Store {
                        endpoint,
                        region: c.region.clone(),
                        access_key: c.access_key.clone(),
                        secret_key: c.secret_key.clone(),
                        session_token: None,
                    }),
                    Err(e) => {
                        tracing::warn!(error = %e, "backups: the S3 endpoint is not usable");
                        Err("the S3 endpoint (S3_ENDPOINT) is not usable for backups".to_string())
                    }
                }
            }
        };
        Backups {
            leases: Leases::new(
                "athena_backup_jobs",
                "j.job_id, j.job_type, j.client_name, j.target_sealed, j.target_redacted, \
                 j.label, j.recovery_strategy, j.timeout_seconds, j.s3_bucket, j.s3_key, \
                 j.upload_id, j.cancel_requested",
                settings.stale_after,
            ),
            catalog: tenants.catalog().clone(),
            settings,
            tenants,
            secrets,
            s3: S3::new(&outbound),
            outbound,
            store,
            events,
            wake: Notify::new(),
        }
    }

    /// The store and bucket, or 503.
    pub fn configured(&self) -> Result<(&Store, &str), DomainError> {
        let bucket = self.settings.bucket.as_deref().ok_or_else(|| {
            DomainError::ServiceUnavailable(
                "backups are not configured: set ATHENA_BACKUP_S3_BUCKET (and S3_ENDPOINT)".into(),
            )
        })?;
        let store = self
            .store
            .as_ref()
            .map_err(|e| DomainError::ServiceUnavailable(format!("backups: {e}")))?;
        Ok((store, bucket))
    }

    /// `GET /admin/backups/config`.
    pub fn config_json(&self) -> Result<Value, DomainError> {
        let (store, bucket) = self.configured()?;
        Ok(json!({
            "status": "success",
            "data": {
                "bucket": bucket,
                "region": store.region,
                "prefix": self.settings.prefix,
                "endpoint": store.endpoint.url(),
            },
            "bucket": bucket,
            "region": store.region,
            "prefix": self.settings.prefix,
            "endpoint": store.endpoint.url(),
        }))
    }

    /// A `{key}` of the API: decoded once by the router; under the prefix,
    /// no `.`/`..`/empty segment, printable, else 400.
    pub fn check_key(&self, key: &str) -> Result<String, DomainError> {
        let bad = |why: &str| DomainError::invalid_field("key", why);
        if key.is_empty() || key.len() > 1024 || !key.chars().all(|c| c.is_ascii_graphic()) {
            return Err(bad("must be 1-1024 printable ASCII characters"));
        }
        if key
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(bad("must not hold empty, `.` or `..` segments"));
        }
        if !key.starts_with(&format!("{}/", self.settings.prefix)) {
            return Err(bad("is not under the configured backup prefix"));
        }
        Ok(key.to_string())
    }

    /// The target of a create or restore body: exactly one of
    /// `client_name` and `pg_uri`.
    pub async fn target(
        &self,
        client_name: Option<&str>,
        pg_uri: Option<&str>,
    ) -> Result<Target, DomainError> {
        let client = client_name.map(str::trim).filter(|c| !c.is_empty());
        let uri = pg_uri.map(str::trim).filter(|u| !u.is_empty());
        match (client, uri) {
            (Some(_), Some(_)) => Err(DomainError::Invalid(
                "give `client_name` or `pg_uri`, not both".into(),
            )),
            (None, None) => Err(DomainError::Invalid(
                "`client_name` or `pg_uri` is required".into(),
            )),
            (Some(c), None) => {
                if crate::catalog::clients::get(&self.catalog, c)
                    .await?
                    .is_none()
                {
                    return Err(DomainError::invalid_field(
                        "client_name",
                        format!("no client named `{c}`"),
                    ));
                }
                Ok(Target::Client(c.to_string()))
            }
            (None, Some(u)) => {
                let parsed = direct::parse(u).map_err(|e| e.into_domain("pg_uri"))?;
                if self.secrets.is_none() {
                    return Err(DomainError::ServiceUnavailable(
                        "a `pg_uri` target is kept encrypted: set ATHENA_SECRET_KEY".into(),
                    ));
                }
                // The direct-URI outbound rule, now (403) and again at run time.
                worker::pinned(&self.outbound, &parsed.config).await?;
                Ok(Target::Direct {
                    uri: u.to_string(),
                    redacted: parsed.redacted.clone(),
                })
            }
        }
    }

    fn seal(
        &self,
        id: Uuid,
        target: &Target,
    ) -> Result<(Option<Vec<u8>>, Option<String>), DomainError> {
        match target {
            Target::Client(_) => Ok((None, None)),
            Target::Direct { uri, redacted } => {
                let secrets = self.secrets.as_ref().ok_or_else(|| {
                    DomainError::ServiceUnavailable("ATHENA_SECRET_KEY is not set".into())
                })?;
                Ok((
                    Some(secrets.seal(&seal_context(id), uri)?),
                    Some(redacted.clone()),
                ))
            }
        }
    }

    pub(crate) fn open_target(&self, id: Uuid, sealed: &[u8]) -> Result<String, DomainError> {
        let secrets = self.secrets.as_ref().ok_or_else(|| {
            DomainError::ServiceUnavailable("ATHENA_SECRET_KEY is not set".into())
        })?;
        secrets.open(&seal_context(id), sealed)
    }

    /// Queues a backup (`POST /admin/backups`): `(job_id, client_name, status)`.
    pub async fn create_backup(
        &self,
        target: Target,
        label: Option<String>,
        recovery_strategy: &str,
        timeout_seconds: Option<i32>,
    ) -> Result<Value, DomainError> {
        let (_, bucket) = self.configured()?;
        if let Some(l) = &label {
            check_label(l)?;
        }
        check_timeout(timeout_seconds)?;
        let timeout_seconds = Some(timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECS));
        let id = Uuid::new_v4();
        let (sealed, redacted) = self.seal(id, &target)?;
        let client = match &target {
            Target::Client(c) => Some(c.clone()),
            Target::Direct { .. } => None,
        };
        let conn = self.catalog.get().await?;
        let row = conn
            .query_one(
                &format!(
                    "WITH j AS (INSERT INTO athena_backup_jobs
                        (id, job_type, client_name, target_sealed, target_redacted, label,
                         recovery_strategy, timeout_seconds, s3_bucket)
                     VALUES ($1, 'backup', $2, $3, $4, $5, $6, $7, $8) RETURNING *),
                     l AS (INSERT INTO athena_backup_job_logs (job, message)
                           VALUES ($1, 'backup queued'))
                     SELECT {JOB} FROM j"
                ),
                &[
                    &id,
                    &client,
                    &sealed,
                    &redacted,
                    &label,
                    &recovery_strategy,
                    &timeout_seconds,
                    &bucket,
                ],
            )
            .await?;
        self.wake.notify_waiters();
        Ok(job_json(&row))
    }

    /// Queues a restore of `key` into `target` (`POST /admin/backups/{key}/restore`).
    pub async fn create_restore(
        &self,
        key: &str,
        target: Target,
        timeout_seconds: Option<i32>,
    ) -> Result<Value, DomainError> {
        let (store, bucket) = self.configured()?;
        let key = self.check_key(key)?;
        check_timeout(timeout_seconds)?;
        let timeout_seconds = Some(timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECS));
        // The backup must exist (400 naming the key otherwise).
        let head = self
            .s3
            .exchange(store, Call::new(Method::HEAD, Some(bucket), Some(&key)))
            .await?;
        if head.status == 404 {
            return Err(DomainError::invalid_field("key", "no backup at this key"));
        }
        if !(200..300).contains(&head.status) {
            return Err(crate::storage::s3::s3_error(&head, &key));
        }
        let id = Uuid::new_v4();
        let (sealed, redacted) = self.seal(id, &target)?;
        let client = match &target {
            Target::Client(c) => Some(c.clone()),
            Target::Direct { .. } => None,
        };
        let conn = self.catalog.get().await?;
        let row = conn
            .query_one(
                &format!(
                    "WITH j AS (INSERT INTO athena_backup_jobs
                        (id, job_type, client_name, target_sealed, target_redacted,
                         timeout_seconds, s3_bucket, s3_key)
                     VALUES ($1, 'restore', $2, $3, $4, $5, $6, $7) RETURNING *),
                     l AS (INSERT INTO athena_backup_job_logs (job, message)
                           VALUES ($1, 'restore queued'))
                     SELECT {JOB} FROM j"
                ),
                &[
                    &id,
                    &client,
                    &sealed,
                    &redacted,
                    &timeout_seconds,
                    &bucket,
                    &key,
                ],
            )
            .await?;
        self.wake.notify_waiters();
        Ok(job_json(&row))
    }

    /// Completed backups, newest first: `(items, next_cursor)`.
    pub async fn list_backups(
        &self,
        client: Option<&str>,
        limit: Option<i64>,
        cursor: Option<&str>,
    ) -> Result<(Vec<BackupItem>, Option<String>), DomainError> {
        self.configured()?;
        let limit = match limit {
            None => 10,
            Some(n) if (1..=10).contains(&n) => n,
            Some(_) => return Err(DomainError::invalid_field("limit", "must be 1 to 10")),
        };
        let after = cursor
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(parse_cursor)
            .transpose()?;
        let (at, id) = match after {
            Some((at, id)) => (Some(at), Some(id)),
            None => (None, None),
        };
        let client = client.map(str::trim).filter(|c| !c.is_empty());
        let conn = self.catalog.get().await?;
        let rows = conn
            .query(
                "SELECT job_id, client_name, label, s3_bucket, s3_key, size_bytes, finished_at,
                        execution_daemon_id
                   FROM athena_backup_jobs
                  WHERE status = 'completed' AND job_type = 'backup' AND s3_key IS NOT NULL
                    AND ($1::text IS NULL OR client_name = $1)
                    AND ($2::timestamptz IS NULL OR (finished_at, job_id) < ($2, $3::bigint))
                  ORDER BY finished_at DESC, job_id DESC
                  LIMIT $4",
                &[&client, &at, &id, &(limit + 1)],
            )
            .await?;
        let mut items: Vec<BackupItem> = rows
            .iter()
            .map(|r| BackupItem {
                job_id: r.get(0),
                client_name: r.get(1),
                label: r.get(2),
                s3_bucket: r.get(3),
                s3_key: r.get(4),
                size_bytes: r.get(5),
                completed_at: r.get(6),
                execution_daemon_id: r.get(7),
            })
            .collect();
        let next = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items.last().and_then(|l| {
                l.completed_at.map(|at| {
                    format!(
                        "{}|{}",
                        at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                        l.job_id
                    )
                })
            })
        } else {
            None
        };
        Ok((items, next))
    }

    /// `GET /admin/backups/jobs`.
    pub async fn list_jobs(
        &self,
        client: Option<&str>,
        status: Option<&str>,
        job_type: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Vec<Value>, DomainError> {
        let limit = match limit {
            None => 50,
            Some(n) if (1..=500).contains(&n) => n,
            Some(_) => return Err(DomainError::invalid_field("limit", "must be 1 to 500")),
        };
        let status = status
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| match s {
                "pending" => "queued",
                s => s,
            });
        let client = client.map(str::trim).filter(|c| !c.is_empty());
        let job_type = job_type.map(str::trim).filter(|c| !c.is_empty());
        let conn = self.catalog.get().await?;
        let rows = conn
            .query(
                &format!(
                    "SELECT {JOB} FROM athena_backup_jobs
                      WHERE ($1::text IS NULL OR client_name = $1)
                        AND ($2::text IS NULL OR status = $2)
                        AND ($3::text IS NULL OR job_type = $3)
                      ORDER BY job_id DESC LIMIT $4"
                ),
                &[&client, &status, &job_type, &limit],
            )
            .await?;
        Ok(rows.iter().map(job_json).collect())
    }

    /// `{job, logs}`, or `None`.
    pub async fn job(&self, job_id: i64) -> Result<Option<(Value, Vec<Value>)>, DomainError> {
        let conn = self.catalog.get().await?;
        let Some(row) = conn
            .query_opt(
                &format!("SELECT {JOB}, id FROM athena_backup_jobs WHERE job_id = $1"),
                &[&job_id],
            )
            .await?
        else {
            return Ok(None);
        };
        let id: Uuid = row.get(24);
        let logs = conn
            .query(
                "SELECT level, message, created_at FROM athena_backup_job_logs
                  WHERE job = $1 ORDER BY id LIMIT 500",
                &[&id],
            )
            .await?
            .iter()
            .map(|l| {
                json!({
                    "level": l.get::<_, String>(0),
                    "message": l.get::<_, String>(1),
                    "created_at": l.get::<_, DateTime<Utc>>(2),
                })
            })
            .collect();
        Ok(Some((job_json(&row), logs)))
    }

    /// Deletes a terminal job (400 for a pending or running one).
    pub async fn delete_job(&self, job_id: i64) -> Result<Option<Value>, DomainError> {
        let conn = self.catalog.get().await?;
        if let Some(row) = conn
            .query_opt(
                &format!(
                    "DELETE FROM athena_backup_jobs
                      WHERE job_id = $1 AND status IN ('completed', 'failed', 'cancelled')
                  RETURNING {JOB}"
                ),
                &[&job_id],
            )
            .await?
        {
            return Ok(Some(job_json(&row)));
        }
        match self.job(job_id).await? {
            None => Ok(None),
            Some((job, _)) => Err(DomainError::Invalid(format!(
                "job {job_id} is {}: only completed, failed or cancelled jobs can be deleted; cancel it first",
                job["status"].as_str().unwrap_or("active")
            ))),
        }
    }

    /// Cancels a pending or running job (400 otherwise): a pending one at
    /// once, a running one by its worker within a second.
    pub async fn cancel(&self, job_id: i64) -> Result<Option<Value>, DomainError> {
        let mut conn = self.catalog.get().await?;
        let tx = conn.transaction().await?;
        let Some(row) = tx
            .query_opt(
                "SELECT id, status FROM athena_backup_jobs WHERE job_id = $1 FOR UPDATE",
                &[&job_id],
            )
            .await?
        else {
            return Ok(None);
        };
        let (id, status): (Uuid, String) = (row.get(0), row.get(1));
        let sql = match status.as_str() {
            "queued" => {
                "UPDATE athena_backup_jobs
                    SET status = 'cancelled', cancel_requested = true, progress_stage = 'cancelled',
                        run_token = NULL, finished_at = now(), updated_at = now(),
                        error = 'cancelled before it started'
                  WHERE id = $1"
            }
            "running" => {
                "UPDATE athena_backup_jobs SET cancel_requested = true, updated_at = now()
                  WHERE id = $1"
            }
            other => {
                return Err(DomainError::Invalid(format!(
                    "job {job_id} is {}: only pending or running jobs can be cancelled",
                    shown_status(other)
                )))
            }
        };
        tx.execute(sql, &[&id]).await?;
        tx.execute(
            "INSERT INTO athena_backup_job_logs (job, message) VALUES ($1, 'cancel requested')",
            &[&id],
        )
        .await?;
        tx.commit().await?;
        Ok(self.job(job_id).await?.map(|(j, _)| j))
    }

    /// A presigned GET (≤ 15 min) of a completed backup job's object.
    pub async fn presign(&self, job_id: i64, expires_in: u32) -> Result<Value, DomainError> {
        let (store, _) = self.configured()?;
        let conn = self.catalog.get().await?;
        let row = conn
            .query_opt(
                "SELECT status, job_type, s3_bucket, s3_key FROM athena_backup_jobs WHERE job_id = $1",
                &[&job_id],
            )
            .await?
            .ok_or_else(|| DomainError::not_found("backup job", job_id.to_string()))?;
        let (status, job_type): (String, String) = (row.get(0), row.get(1));
        let (bucket, key): (Option<String>, Option<String>) = (row.get(2), row.get(3));
        if status != "completed" || job_type != "backup" {
            return Err(DomainError::Invalid(format!(
                "job {job_id} is not a completed backup"
            )));
        }
        // A completed backup without a key: its object was deleted.
        let (Some(bucket), Some(key)) = (bucket, key) else {
            return Err(DomainError::not_found(
                "backup object of job",
                job_id.to_string(),
            ));
        };
        let expires = expires_in.clamp(1, 900);
        let url = store.presign(&Method::GET, &bucket, &key, expires, &[])?;
        let expires_at = Utc::now() + chrono::Duration::seconds(i64::from(expires));
        Ok(json!({
            "status": "success",
            "data": {
                "job_id": job_id,
                "url": url,
                "s3_bucket": bucket,
                "s3_key": key,
                "expires_in": expires,
                "expires_at": expires_at,
            }
        }))
    }

    /// Deletes the object at `key` (404 when absent).
    pub async fn delete_key(&self, key: &str) -> Result<String, DomainError> {
        let (store, bucket) = self.configured()?;
        let key = self.check_key(key)?;
        let head = self
            .s3
            .exchange(store, Call::new(Method::HEAD, Some(bucket), Some(&key)))
            .await?;
        if head.status == 404 {
            return Err(DomainError::not_found("backup", key));
        }
        self.s3
            .send(
                store,
                Call::new(Method::DELETE, Some(bucket), Some(&key)),
                &key,
            )
            .await?;
        // The completed backup jobs of this object no longer name it: the
        // list drops them, `s3-open` answers 404 (the job row and its logs
        // stay).
        let conn = self.catalog.get().await?;
        conn.execute(
            "WITH j AS (UPDATE athena_backup_jobs SET s3_key = NULL, updated_at = now()
                         WHERE job_type = 'backup' AND status = 'completed'
                           AND s3_bucket = $1 AND s3_key = $2
                     RETURNING id)
             INSERT INTO athena_backup_job_logs (job, message)
             SELECT id, 'backup object deleted: ' || $2 FROM j",
            &[&bucket, &key],
        )
        .await?;
        Ok(key)
    }

    /// The object at `key`, opened for streaming: `(content length, body)`.
    pub async fn open_download(
        &self,
        key: &str,
    ) -> Result<(Option<String>, hyper::body::Incoming), DomainError> {
        let (store, bucket) = self.configured()?;
        let key = self.check_key(key)?;
        let answer = self
            .s3
            .open(store, Call::new(Method::GET, Some(bucket), Some(&key)))
            .await?;
        if !answer.status().is_success() {
            return Err(S3::open_error(answer, &key).await);
        }
        let length = answer
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        Ok((length, answer.into_body()))
    }

    // --- schedules ---

    pub async fn schedules(&self) -> Result<Vec<Value>, DomainError> {
        let conn = self.catalog.get().await?;
        Ok(conn
            .query(
                &format!("SELECT {SCHEDULE} FROM athena_backup_schedules ORDER BY id"),
                &[],
            )
            .await?
            .iter()
            .map(schedule_json)
            .collect())
    }

    async fn known_client(&self, name: &str) -> Result<(), DomainError> {
        if crate::catalog::clients::get(&self.catalog, name)
            .await?
            .is_none()
        {
            return Err(DomainError::invalid_field(
                "client_name",
                format!("no client named `{name}`"),
            ));
        }
        Ok(())
    }

    pub async fn create_schedule(&self, body: &Map<String, Value>) -> Result<Value, DomainError> {
        let s = ScheduleInput::merge(body, None)?;
        self.known_client(&s.client_name).await?;
        let conn = self.catalog.get().await?;
        let row = conn
            .query_one(
                &format!(
                    "INSERT INTO athena_backup_schedules
                        (client_name, frequency, time_of_day, day_of_week, day_of_month, label,
                         enabled, execution_daemon_id)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {SCHEDULE}"
                ),
                &[
                    &s.client_name,
                    &s.timing.frequency,
                    &s.time_of_day,
                    &s.timing.day_of_week,
                    &s.timing.day_of_month,
                    &s.label,
                    &s.enabled,
                    &s.execution_daemon_id,
                ],
            )
            .await?;
        Ok(schedule_json(&row))
    }

    pub async fn update_schedule(
        &self,
        id: i64,
        body: &Map<String, Value>,
    ) -> Result<Option<Value>, DomainError> {
        let mut conn = self.catalog.get().await?;
        let tx = conn.transaction().await?;
        let Some(row) = tx
            .query_opt(
                &format!("SELECT {SCHEDULE} FROM athena_backup_schedules WHERE id = $1 FOR UPDATE"),
                &[&id],
            )
            .await?
        else {
            return Ok(None);
        };
        let old = schedule_input(&row)?;
        let s = ScheduleInput::merge(body, Some(&old))?;
        if s.client_name != old.client_name {
            self.known_client(&s.client_name).await?;
        }
        let row = tx
            .query_one(
                &format!(
                    "UPDATE athena_backup_schedules
                        SET client_name = $2, frequency = $3, time_of_day = $4, day_of_week = $5,
                            day_of_month = $6, label = $7, enabled = $8, execution_daemon_id = $9,
                            updated_at = now()
                      WHERE id = $1 RETURNING {SCHEDULE}"
                ),
                &[
                    &id,
                    &s.client_name,
                    &s.timing.frequency,
                    &s.time_of_day,
                    &s.timing.day_of_week,
                    &s.timing.day_of_month,
                    &s.label,
                    &s.enabled,
                    &s.execution_daemon_id,
                ],
            )
            .await?;
        tx.commit().await?;
        Ok(Some(schedule_json(&row)))
    }

    pub async fn delete_schedule(&self, id: i64) -> Result<Option<Value>, DomainError> {
        let conn = self.catalog.get().await?;
        Ok(conn
            .query_opt(
                &format!("DELETE FROM athena_backup_schedules WHERE id = $1 RETURNING {SCHEDULE}"),
                &[&id],
            )
            .await?
            .map(|r| schedule_json(&r)))
    }

    /// Queues the latest due slot of every enabled schedule (once per slot
    /// across replicas); the number of jobs this call queued.
    pub async fn run_schedules(&self, now: DateTime<Utc>) -> Result<usize, DomainError> {
        if self.configured().is_err() {
            return Ok(0);
        }
        let bucket = self.settings.bucket.clone();
        let conn = self.catalog.get().await?;
        let rows = conn
            .query(
                &format!("SELECT {SCHEDULE} FROM athena_backup_schedules WHERE enabled"),
                &[],
            )
            .await?;
        let mut queued = 0;
        for row in rows {
            let id: i64 = row.get(0);
            let created: DateTime<Utc> = row.get(10);
            let last: Option<DateTime<Utc>> = row.get(9);
            let Ok(s) = schedule_input(&row) else {
                continue;
            };
            let slot = s.timing.latest_slot(now);
            // A schedule fires from its creation minute on, each slot once.
            let created_minute = created
                - chrono::Duration::seconds(i64::from(chrono::Timelike::second(&created)))
                - chrono::Duration::nanoseconds(i64::from(chrono::Timelike::nanosecond(&created)));
            if slot < created_minute || last.is_some_and(|l| l >= slot) {
                continue;
            }
            let n = conn
                .execute(
                    "WITH j AS (
                        INSERT INTO athena_backup_jobs
                            (job_type, client_name, label, s3_bucket, schedule_id, slot, execution_daemon_id,
                             timeout_seconds)
                        VALUES ('backup', $2, $3, $4, $1, $5, $6, $7)
                        ON CONFLICT (schedule_id, slot) DO NOTHING
                        RETURNING id),
                     l AS (INSERT INTO athena_backup_job_logs (job, message)
                           SELECT id, 'backup queued by schedule ' || $1::text FROM j),
                     s AS (UPDATE athena_backup_schedules SET last_slot = $5
                            WHERE id = $1 AND (last_slot IS NULL OR last_slot < $5))
                     SELECT 1 FROM j",
                    &[
                        &id,
                        &s.client_name,
                        &s.label,
                        &bucket,
                        &slot,
                        &s.execution_daemon_id,
                        &DEFAULT_TIMEOUT_SECS,
                    ],
                )
                .await?;
            queued += n as usize;
        }
        if queued > 0 {
            self.wake.notify_waiters();
        }
        Ok(queued)
    }

    // --- daemons ---

    /// `GET /admin/daemons`: alive when its loop runs and was heard from
    /// within 3 heartbeats.
    pub async fn daemons(&self) -> Result<Vec<Value>, DomainError> {
        let stale = (self.settings.heartbeat * 3).as_secs_f64();
        let conn = self.catalog.get().await?;
        Ok(conn
            .query(
                "SELECT daemon_id, kind, host, pid, version, started_at, last_heartbeat_at,
                        running AND last_heartbeat_at >= now() - make_interval(secs => $1), running
                   FROM athena_daemon_registry ORDER BY kind, daemon_id",
                &[&stale],
            )
            .await?
            .iter()
            .map(|r| {
                json!({
                    "daemon_id": r.get::<_, String>(0),
                    "kind": r.get::<_, String>(1),
                    "host": r.get::<_, String>(2),
                    "pid": r.get::<_, i32>(3),
                    "version": r.get::<_, String>(4),
                    "started_at": r.get::<_, DateTime<Utc>>(5),
                    "last_heartbeat_at": r.get::<_, DateTime<Utc>>(6),
                    "status": if r.get::<_, bool>(7) { "alive" } else { "stale" },
                    "running": r.get::<_, bool>(8),
                })
            })
            .collect())
    }
}

fn seal_context(id: Uuid) -> String {
    format!("athena_backup_jobs.target:{id}")
}

fn check_timeout(t: Option<i32>) -> Result<(), DomainError> {
    match t {
        Some(n) if !(1..=86_400 * 7).contains(&n) => Err(DomainError::invalid_field(
            "timeout_seconds",
            "must be 1 to 604800",
        )),
        _ => Ok(()),
    }
}

/// `<completed_at RFC 3339>|<job_id>`.
pub fn parse_cursor(c: &str) -> Result<(DateTime<Utc>, i64), DomainError> {
    let bad = || {
        DomainError::invalid_field(
            "cursor",
            "must be `<completed_at>|<job_id>` as returned in `next_cursor`",
        )
    };
    let (at, id) = c.split_once('|').ok_or_else(bad)?;
    let at = DateTime::parse_from_rfc3339(at.trim())
        .map_err(|_| bad())?
        .with_timezone(&Utc);
    let id: i64 = id.trim().parse().map_err(|_| bad())?;
    Ok((at, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_direct_target_debugs_without_its_uri() {
        let t = Target::Direct {
            uri: "postgres://u:s3cret@db.example/app".into(),
            redacted: "postgres://u:***@db.example/app".into(),
        };
        let shown = format!("{t:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("***@db.example"), "{shown}");
        assert_eq!(format!("{:?}", Target::Client("c".into())), "Client(\"c\")");
    }

    #[test]
    fn prefixes_and_cursors() {
        assert_eq!(normalize_prefix("/a/b/").as_deref(), Some("a/b"));
        for bad in ["", "a/../b", "a//b", "a b"] {
            assert!(normalize_prefix(bad).is_none(), "{bad}");
        }
        let (at, id) = parse_cursor("2026-01-02T03:04:05.000006Z|42").unwrap();
        assert_eq!((at.timestamp(), id), (1767323045, 42));
        for bad in ["x", "2026-01-02T03:04:05Z", "2026-01-02T03:04:05Z|x", "|1"] {
            assert!(parse_cursor(bad).is_err(), "{bad}");
        }
        assert_eq!(key_path("p/c/x.dump"), "p%2Fc%2Fx%2Edump");
    }
}
