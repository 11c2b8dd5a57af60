//! The backup workers: claim a job (`src/jobs/`), run `pg_dump` into an S3
//! multipart upload or an S3 object into `pg_restore`, renew the lease and
//! read the cancel flag every second, record the outcome under the run
//! token, publish `backup.completed` / `backup.failed`. And the scheduler.
//!
//! Children run in their own process group (`process_group(0)`), so a
//! cancel, a timeout or a failure stops the whole group: SIGTERM, then
//! SIGKILL after `KILL_AFTER`. Every S3 exchange and pipe write also waits
//! on the stop signal, so a stalled store never delays a cancel.

use super::Backups;
use crate::domain::DomainError;
use crate::events::Event;
use crate::jobs::Lease;
use crate::storage::s3::Call;
use crate::supervisor::{supervise, Backoff};
use bytes::{Bytes, BytesMut};
use chrono::Utc;
use http::Method;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use uuid::Uuid;

/// Bytes of the dump held at once (one multipart part). S3 needs ≥ 5 MiB
/// for every part but the last.
pub const PART_SIZE: usize = 8 << 20;
/// SIGTERM → SIGKILL.
const KILL_AFTER: Duration = Duration::from_secs(5);
/// Lease renewal, progress write and cancel-flag read.
const TICK: Duration = Duration::from_secs(1);
/// Tool output kept for the error message.
const STDERR_CAP: usize = 16 << 10;
/// `pg_dump --lock-wait-timeout`: a table lock it cannot get fails the dump
/// instead of hanging it until the job's timeout.
const LOCK_WAIT_TIMEOUT: &str = "--lock-wait-timeout=60s";
/// How long completing a multipart upload may take once it was sent.
const COMPLETE_TIMEOUT: Duration = Duration::from_secs(300);

/// Why a running job is being stopped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    Cancelled,
    TimedOut,
    /// The lease went to another worker: record nothing.
    Lost,
}

#[derive(Debug)]
pub enum JobError {
    Stopped(Stop),
    Failed(String),
}

impl From<DomainError> for JobError {
    fn from(e: DomainError) -> Self {
        JobError::Failed(detail(&e))
    }
}

/// A domain error's message as a job shows it (no internal detail).
fn detail(e: &DomainError) -> String {
    match e {
        DomainError::Invalid(m)
        | DomainError::Forbidden(m)
        | DomainError::Unsupported(m)
        | DomainError::ServiceUnavailable(m) => m.clone(),
        DomainError::InvalidField { field, reason } => format!("{field}: {reason}"),
        DomainError::NotFound { kind, key } => format!("{kind} `{key}` not found"),
        DomainError::Unavailable(_) => {
            tracing::warn!(error = ?e, "backup job: database unavailable");
            "the database is unavailable (see the server log)".into()
        }
        other => {
            tracing::warn!(error = ?other, "backup job error");
            "an internal error (see the server log)".into()
        }
    }
}

/// Progress a running job shares with its ticker.
#[derive(Default)]
pub struct Progress {
    bytes: AtomicU64,
    stage: Mutex<String>,
}

impl Progress {
    fn stage(&self, s: &str) {
        *self.stage.lock().unwrap_or_else(|e| e.into_inner()) = s.to_string();
    }
    fn get(&self) -> (i64, String) {
        (
            self.bytes.load(Ordering::Relaxed) as i64,
            self.stage.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        )
    }
}

/// A claimed job.
struct Claimed {
    lease: Lease,
    job_id: i64,
    job_type: String,
    client: Option<String>,
    sealed: Option<Vec<u8>>,
    label: Option<String>,
    strategy: String,
    timeout: Option<i32>,
    bucket: Option<String>,
    key: Option<String>,
    upload_id: Option<String>,
    cancel: bool,
}

/// Where a tool connects: host (an address checked by the outbound policy
/// for direct URIs), the pinned `hostaddr` of a provider-registered client,
/// port, user, password, database, and whether it came from a direct URI.
pub struct PgTarget {
    host: String,
    /// The checked address to connect to (`hostaddr=` of the client's URI),
    /// so the tool never resolves `host` again (DNS rebinding).
    hostaddr: Option<String>,
    /// A caller-given URI: the tool may use none of the gateway's own
    /// credentials (TLS client certificate, Kerberos tickets).
    direct: bool,
    port: u16,
    user: Option<String>,
    password: Option<String>,
    dbname: String,
}

/// The checked address of a direct URI's host (security.md §1, §11).
pub(crate) async fn pinned(
    outbound: &crate::outbound::OutboundPolicy,
    config: &tokio_postgres::Config,
) -> Result<SocketAddr, DomainError> {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => {
            return Err(DomainError::invalid_field(
                "pg_uri",
                "one TCP host is required",
            ))
        }
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let addrs = tokio::time::timeout(Duration::from_secs(10), outbound.resolve(&host, port))
        .await
        .map_err(|_| {
            DomainError::ServiceUnavailable("pg_uri: resolving the host timed out".into())
        })?
        .map_err(|e| e.into_domain("pg_uri host"))?;
    addrs
        .first()
        .copied()
        .ok_or_else(|| DomainError::ServiceUnavailable("pg_uri: the host has no address".into()))
}

fn from_config(
    config: &tokio_postgres::Config,
    host: String,
    direct: bool,
) -> Result<PgTarget, DomainError> {
    Ok(PgTarget {
        host,
        hostaddr: config.get_hostaddrs().first().map(|a| a.to_string()),
        direct,
        port: config.get_ports().first().copied().unwrap_or(5432),
        user: config.get_user().map(String::from),
        password: config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        dbname: config
            .get_dbname()
            .map(String::from)
            .or_else(|| config.get_user().map(String::from))
            .ok_or_else(|| DomainError::invalid_field("pg_uri", "names no database"))?,
    })
}

/// `dbname='…'` as a conninfo string: the database name can never be read
/// as other connection keywords or a URI.
fn conninfo_dbname(name: &str) -> String {
    format!(
        "dbname='{}'",
        name.replace('\\', "\\\\").replace('\'', "\\'")
    )
}

/// A tool's command: an argument vector, the environment's `PG*`
/// variables removed, the password (if any) only in `PGPASSWORD`, its own
/// process group.
fn command(program: std::path::PathBuf, t: &PgTarget, extra: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.arg(format!("--host={}", t.host))
        .arg(format!("--port={}", t.port))
        .arg("--no-password");
    if let Some(u) = &t.user {
        c.arg(format!("--username={u}"));
    }
    c.arg(format!("--dbname={}", conninfo_dbname(&t.dbname)));
    c.args(extra);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PG") {
            c.env_remove(k);
        }
    }
    c.env("PGPASSFILE", "/dev/null")
        .env("PGCONNECT_TIMEOUT", "10")
        .env("PGAPPNAME", "athena-backup");
    if let Some(a) = &t.hostaddr {
        c.env("PGHOSTADDR", a);
    }
    if t.direct {
        // Like `src/db/direct.rs` (TLS off): and none of the gateway's own
        // client certificate, key or Kerberos credentials.
        c.env("PGSSLMODE", "disable")
            .env("PGGSSENCMODE", "disable")
            .env("PGSSLCERT", "/dev/null")
            .env("PGSSLKEY", "/dev/null")
            .env("KRB5CCNAME", "FILE:/dev/null")
            .env("KRB5_CLIENT_KTNAME", "/dev/null");
    }
    if let Some(p) = &t.password {
        c.env("PGPASSWORD", p);
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    die_with_parent(&mut c);
    c
}

/// The tool gets SIGKILL when the gateway dies (even by `kill -9`), so no
/// dump runs on unwatched. Linux: `PR_SET_PDEATHSIG` fires when the thread
/// that spawned it exits; the runtime's worker threads live as long as the
/// gateway.
#[cfg(target_os = "linux")]
fn die_with_parent(c: &mut Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs between fork and exec and calls only
    // async-signal-safe functions (prctl, getppid), allocating nothing.
    unsafe {
        c.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The gateway died before the prctl: do not run at all.
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_: &mut Command) {}

/// Waits until a stop is signalled.
async fn stopped(rx: &mut watch::Receiver<Option<Stop>>) -> Stop {
    match rx.wait_for(|s| s.is_some()).await {
        Ok(s) => s.unwrap_or(Stop::Lost),
        // The runner is gone: nothing will record this run.
        Err(_) => Stop::Lost,
    }
}

/// `work`, unless a stop comes first.
async fn unless_stopped<T>(
    rx: &mut watch::Receiver<Option<Stop>>,
    work: impl std::future::Future<Output = Result<T, JobError>>,
) -> Result<T, JobError> {
    tokio::select! {
        biased;
        s = stopped(rx) => Err(JobError::Stopped(s)),
        r = work => r,
    }
}

/// `work`, unless the lease is lost: a cancel or a timeout no longer stops
/// a step past the point of no return (the upload's completion sent, the
/// restore's input closed), so the real outcome is recorded.
async fn unless_lost<T>(
    rx: &mut watch::Receiver<Option<Stop>>,
    work: impl std::future::Future<Output = Result<T, JobError>>,
) -> Result<T, JobError> {
    tokio::select! {
        biased;
        _ = rx.wait_for(|s| *s == Some(Stop::Lost)) => Err(JobError::Stopped(Stop::Lost)),
        r = work => r,
    }
}

/// Signals a stop to the job: a lost lease is final (nothing overrides it),
/// a timeout never overrides an earlier stop.
fn signal(tx: &watch::Sender<Option<Stop>>, stop: Stop) {
    tx.send_if_modified(|s| match (*s, stop) {
        (Some(Stop::Lost), _) => false,
        (Some(_), Stop::TimedOut) => false,
        (cur, new) if cur == Some(new) => false,
        _ => {
            *s = Some(stop);
            true
        }
    });
}

/// SIGTERM to the child's process group, SIGKILL after `KILL_AFTER`;
/// returns once the child is reaped. The group is signalled only while its
/// leader is unreaped (its pgid cannot have been reused yet).
pub async fn terminate(child: &mut Child) {
    let Some(pid) = child.id() else {
        return; // already reaped
    };
    let group = -(pid as i32);
    // SAFETY: kill(2) with a negative pid signals that process group; no
    // memory is involved.
    unsafe { libc::kill(group, libc::SIGTERM) };
    if tokio::time::timeout(KILL_AFTER, child.wait())
        .await
        .is_err()
    {
        // Still unreaped: the whole group (a tool's helpers too) goes.
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = child.wait().await;
    }
}

/// The tool's stderr, capped, read in the background.
fn collect_stderr(child: &mut Child) -> tokio::task::JoinHandle<String> {
    let stderr = child.stderr.take();
    tokio::spawn(async move {
        let Some(mut stderr) = stderr else {
            return String::new();
        };
        let mut kept = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            if kept.len() < STDERR_CAP {
                kept.extend_from_slice(&buf[..n.min(STDERR_CAP - kept.len())]);
            }
        }
        String::from_utf8_lossy(&kept).into_owned()
    })
}

/// A tool's failure as one message: its last stderr lines, the password
/// (if it ever appears) masked.
fn tool_error(tool: &str, status: std::process::ExitStatus, stderr: &str, t: &PgTarget) -> String {
    let mut text: String = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .rev()
        .take(3)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join(" | ");
    if let Some(p) = t.password.as_deref().filter(|p| !p.is_empty()) {
        text = text.replace(p, "***");
    }
    if text.len() > 1000 {
        let mut cut = 1000;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    format!("{tool} exited with {status}: {text}")
}

/// `pg_dump`'s failure on an object whose owner role no longer exists
/// (`role with OID 16384 does not exist`): the case
/// `repair_missing_role_oids` retries.
fn is_missing_role_error(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("role with oid") && m.contains("does not exist")
}

fn missing_tool(tool: &str, e: std::io::Error) -> JobError {
    JobError::Failed(format!(
        "{tool} could not be started ({e}); install the PostgreSQL client tools (PGBIN or PATH)"
    ))
}

impl Backups {
    fn tool(&self, name: &str) -> std::path::PathBuf {
        match &self.settings.pg_bin {
            Some(dir) => dir.join(name),
            None => name.into(),
        }
    }

    async fn pg_target(&self, job: &Claimed) -> Result<PgTarget, JobError> {
        match (&job.sealed, &job.client) {
            (Some(sealed), _) => {
                let uri = self.open_target(job.lease.id, sealed)?;
                let parsed = crate::db::direct::parse(&uri).map_err(|e| e.into_domain("pg_uri"))?;
                let addr = pinned(&self.outbound, &parsed.config).await?;
                let mut target = from_config(&parsed.config, addr.ip().to_string(), true)?;
                // The host is the checked address itself.
                target.hostaddr = None;
                Ok(target)
            }
            (None, Some(client)) => {
                let tenant = self.tenants.resolve(client).await?;
                let config: tokio_postgres::Config = tenant.uri.parse().map_err(|_| {
                    JobError::Failed(format!("the URI of client `{client}` cannot be read"))
                })?;
                let host = match config.get_hosts().first() {
                    Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
                    #[cfg(unix)]
                    Some(tokio_postgres::config::Host::Unix(p)) => p.to_string_lossy().into_owned(),
                    _ => "localhost".into(),
                };
                Ok(from_config(&config, host, false)?)
            }
            (None, None) => Err(JobError::Failed("the job names no database".into())),
        }
    }

    /// Claims and runs one job; `false` when there was none.
    pub async fn run_next(&self, daemon: &str) -> Result<bool, DomainError> {
        let conn = self.catalog.get().await?;
        let Some((lease, r)) = self.leases.claim(&conn, false).await? else {
            return Ok(false);
        };
        let job = Claimed {
            lease,
            job_id: r.get(2),
            job_type: r.get(3),
            client: r.get(4),
            sealed: r.get(5),
            label: r.get(7),
            strategy: r.get(8),
            timeout: r.get(9),
            bucket: r.get(10),
            key: r.get(11),
            upload_id: r.get(12),
            cancel: r.get(13),
        };
        drop(conn);
        self.run(job, daemon).await?;
        Ok(true)
    }

    async fn log(&self, id: Uuid, level: &str, message: &str) {
        let Ok(conn) = self.catalog.get().await else {
            return;
        };
        if let Err(e) = conn
            .execute(
                "INSERT INTO athena_backup_job_logs (job, level, message) VALUES ($1, $2, $3)",
                &[&id, &level, &message],
            )
            .await
        {
            tracing::warn!(error = %e, "backup job log");
        }
    }

    async fn run(&self, job: Claimed, daemon: &str) -> Result<(), DomainError> {
        let id = job.lease.id;
        let conn = self.catalog.get().await?;
        if job.lease.attempts > 1 {
            // The replica that ran it stopped renewing its lease: its
            // partial upload is aborted, the job failed (never left running),
            // or cancelled when a cancel was asked for meanwhile.
            if let (Some(bucket), Some(key), Some(upload)) = (&job.bucket, &job.key, &job.upload_id)
            {
                // Its upload may have completed just before it stopped: then
                // the backup is there and the job completed.
                match self.uploaded_size(bucket, key).await {
                    Ok(Some(size)) => {
                        drop(conn);
                        self.log(
                            id,
                            "warn",
                            "the replica running this job stopped after its upload completed",
                        )
                        .await;
                        let result = json!({
                            "s3_bucket": bucket,
                            "s3_key": key,
                            "size_bytes": size,
                            "recovery_strategy": job.strategy,
                        });
                        return self.finish_completed(&job, result).await;
                    }
                    Ok(None) => self.abort_upload(job.job_id, bucket, key, upload).await,
                    Err(e) => {
                        let msg = format!(
                            "the replica running this job stopped before it finished (its lease \
                             expired), and whether its upload completed could not be checked \
                             ({}): look for the object at `{key}`",
                            detail(&e)
                        );
                        // Aborted (now or, the store being down, by a retry)
                        // unless it completed: aborting a completed upload
                        // finds no upload and leaves the object.
                        self.abort_upload(job.job_id, bucket, key, upload).await;
                        return self.finish_failed(&job, &msg).await;
                    }
                }
            }
            if job.cancel {
                conn.execute(
                    "UPDATE athena_backup_jobs
                        SET status = 'cancelled', progress_stage = 'cancelled', upload_id = NULL,
                            error = 'cancelled', finished_at = now(), updated_at = now()
                      WHERE id = $1 AND run_token = $2",
                    &[&id, &job.lease.token],
                )
                .await?;
                return Ok(());
            }
            let msg =
                "the replica running this job stopped before it finished (its lease expired); \
                       any partial upload was aborted";
            return self.finish_failed(&job, msg).await;
        }
        if job.cancel {
            conn.execute(
                "UPDATE athena_backup_jobs SET status = 'cancelled', progress_stage = 'cancelled',
                        finished_at = now(), updated_at = now()
                  WHERE id = $1 AND run_token = $2",
                &[&id, &job.lease.token],
            )
            .await?;
            return Ok(());
        }
        conn.execute(
            "UPDATE athena_backup_jobs
                SET first_started_at = now(), execution_daemon_id = $3, progress_stage = 'starting'
              WHERE id = $1 AND run_token = $2",
            &[&id, &job.lease.token, &daemon],
        )
        .await?;
        drop(conn);
        self.log(id, "info", &format!("{} started on {daemon}", job.job_type))
            .await;

        let progress = Arc::new(Progress::default());
        progress.stage("starting");
        let (stop_tx, stop_rx) = watch::channel(None);
        let work = async {
            let mut rx = stop_rx;
            match job.job_type.as_str() {
                "restore" => self.restore(&job, &mut rx, &progress).await,
                _ => self.backup(&job, &mut rx, &progress).await,
            }
        };
        tokio::pin!(work);
        let timeout = job.timeout.unwrap_or(super::DEFAULT_TIMEOUT_SECS);
        let deadline = Instant::now() + Duration::from_secs(timeout.max(1) as u64);
        let mut tick = tokio::time::interval(TICK);
        // Past half the stale time without a renewal, another replica may
        // soon take the job over: stop it here first.
        let mut renewed = Instant::now();
        let outcome = loop {
            tokio::select! {
                r = &mut work => break r,
                _ = tick.tick() => {
                    match self.touch(&job.lease, &progress).await {
                        Ok(Some(cancel)) => {
                            renewed = Instant::now();
                            if cancel {
                                signal(&stop_tx, Stop::Cancelled);
                            }
                        }
                        Ok(None) => signal(&stop_tx, Stop::Lost),
                        Err(e) => {
                            tracing::warn!(error = %e, "backup job: renewing the lease failed");
                            if renewed.elapsed() >= self.settings.stale_after / 2 {
                                tracing::warn!(
                                    job_id = job.job_id,
                                    "backup job: lease not renewed for half the stale time; stopping"
                                );
                                signal(&stop_tx, Stop::Lost);
                            }
                        }
                    }
                    if Instant::now() >= deadline {
                        signal(&stop_tx, Stop::TimedOut);
                    }
                }
            }
        };
        let _ = self.touch(&job.lease, &progress).await;
        match outcome {
            Ok(result) => self.finish_completed(&job, result).await,
            Err(JobError::Stopped(Stop::Lost)) => {
                tracing::warn!(
                    job_id = job.job_id,
                    "backup job: lease lost to another worker"
                );
                Ok(())
            }
            Err(JobError::Stopped(Stop::Cancelled)) => {
                let conn = self.catalog.get().await?;
                conn.execute(
                    "UPDATE athena_backup_jobs
                        SET status = 'cancelled', progress_stage = 'cancelled', error = 'cancelled',
                            finished_at = now(), updated_at = now()
                      WHERE id = $1 AND run_token = $2",
                    &[&id, &job.lease.token],
                )
                .await?;
                self.log(
                    id,
                    "warn",
                    "cancelled; the tool was stopped and the upload aborted",
                )
                .await;
                Ok(())
            }
            Err(JobError::Stopped(Stop::TimedOut)) => {
                let msg = format!("timed out after {timeout} s (timeout_seconds)");
                self.finish_failed(&job, &msg).await
            }
            Err(JobError::Failed(msg)) => self.finish_failed(&job, &msg).await,
        }
    }

    /// Renews the lease (`started_at`, the clock of `src/jobs` claims) and
    /// writes the progress; `Some(cancel requested)`, `None` when the lease
    /// is lost.
    async fn touch(&self, lease: &Lease, p: &Progress) -> Result<Option<bool>, DomainError> {
        let (bytes, stage) = p.get();
        let conn = self.catalog.get().await?;
        Ok(conn
            .query_opt(
                "UPDATE athena_backup_jobs
                    SET started_at = now(), updated_at = now(), bytes_written = $3,
                        progress_stage = $4
                  WHERE id = $1 AND run_token = $2 AND status = 'running'
              RETURNING cancel_requested",
                &[&lease.id, &lease.token, &bytes, &stage],
            )
            .await?
            .map(|r| r.get(0)))
    }

    async fn finish_completed(&self, job: &Claimed, result: Value) -> Result<(), DomainError> {
        let conn = self.catalog.get().await?;
        let size = result["size_bytes"].as_i64();
        let key = result["s3_key"].as_str().map(String::from);
        conn.execute(
            "UPDATE athena_backup_jobs
                SET progress_stage = 'completed', size_bytes = COALESCE($3, size_bytes),
                    s3_key = COALESCE($4, s3_key), upload_id = NULL
              WHERE id = $1 AND run_token = $2",
            &[&job.lease.id, &job.lease.token, &size, &key],
        )
        .await?;
        if !self.leases.complete(&conn, &job.lease, &result).await? {
            return Ok(());
        }
        drop(conn);
        self.log(job.lease.id, "info", &format!("{} completed", job.job_type))
            .await;
        self.publish(job, "backup.completed").await;
        Ok(())
    }

    async fn finish_failed(&self, job: &Claimed, msg: &str) -> Result<(), DomainError> {
        let conn = self.catalog.get().await?;
        conn.execute(
            "UPDATE athena_backup_jobs SET progress_stage = 'failed', upload_id = NULL
              WHERE id = $1 AND run_token = $2",
            &[&job.lease.id, &job.lease.token],
        )
        .await?;
        if !self
            .leases
            .fail(&conn, &job.lease, &json!({ "error_message": msg }), msg)
            .await?
        {
            return Ok(());
        }
        drop(conn);
        self.log(job.lease.id, "error", msg).await;
        self.publish(job, "backup.failed").await;
        Ok(())
    }

    /// `backup.completed` / `backup.failed` for a client's backup job.
    async fn publish(&self, job: &Claimed, route_key: &str) {
        let (Some(client), "backup") = (&job.client, job.job_type.as_str()) else {
            return;
        };
        let data = match self.job(job.job_id).await {
            Ok(Some((j, _))) => j,
            _ => json!({ "job_id": job.job_id }),
        };
        if let Err(e) = self
            .events
            .publish(&Event::now(route_key, client.clone(), None, data))
            .await
        {
            tracing::warn!(error = %e, route_key, "publishing a backup event failed");
        }
    }

    // --- S3 multipart ---

    /// `HEAD` of a backup's key: `Some(size)` when the object exists.
    async fn uploaded_size(&self, bucket: &str, key: &str) -> Result<Option<i64>, DomainError> {
        let (store, _) = self.configured()?;
        let call = Call::new(Method::HEAD, Some(bucket), Some(key));
        let head = tokio::time::timeout(Duration::from_secs(30), self.s3.exchange(store, call))
            .await
            .map_err(|_| DomainError::ServiceUnavailable("the S3 store timed out".into()))??;
        match head.status {
            404 => Ok(None),
            200..=299 => Ok(Some(
                head.header("content-length")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or_default(),
            )),
            _ => Err(crate::storage::s3::s3_error(&head, key)),
        }
    }

    /// Aborts a multipart upload. When the store cannot be reached (or
    /// refuses), the abort is kept in `athena_backup_pending_aborts` and
    /// retried by the workers ([`Backups::retry_aborts`]) until it succeeds,
    /// so a store that was down never keeps the parts forever.
    async fn abort_upload(&self, job_id: i64, bucket: &str, key: &str, upload: &str) {
        let Err(e) = self.try_abort(bucket, key, upload).await else {
            return;
        };
        tracing::warn!(job_id, error = %e, "aborting a backup upload failed; retrying later");
        let recorded = async {
            let conn = self.catalog.get().await?;
            conn.execute(
                "INSERT INTO athena_backup_pending_aborts
                        (bucket, s3_key, upload_id, job_id, last_error, next_attempt_at)
                 VALUES ($1, $2, $3, $4, $5, now() + interval '1 second')
                 ON CONFLICT (bucket, s3_key, upload_id) DO NOTHING",
                &[&bucket, &key, &upload, &job_id, &e],
            )
            .await?;
            Ok::<_, DomainError>(())
        };
        if let Err(err) = recorded.await {
            tracing::error!(job_id, error = %err, "recording a pending upload abort failed");
        }
        self.log_job(
            job_id,
            "warn",
            &format!("aborting the S3 upload failed ({e}); it is retried until the store answers"),
        )
        .await;
    }

    /// One abort request: `Ok` once the upload is aborted or gone.
    async fn try_abort(&self, bucket: &str, key: &str, upload: &str) -> Result<(), String> {
        let (store, _) = self.configured().map_err(|e| detail(&e))?;
        let call = Call::new(Method::DELETE, Some(bucket), Some(key)).query("uploadId", upload);
        match tokio::time::timeout(Duration::from_secs(10), self.s3.exchange(store, call)).await {
            Ok(Ok(r)) if (200..300).contains(&r.status) || r.status == 404 => Ok(()),
            Ok(Ok(r)) => Err(format!("the store answered {}", r.status)),
            Ok(Err(e)) => Err(detail(&e)),
            Err(_) => Err("the store timed out".into()),
        }
    }

    /// Retries the pending aborts that are due (each claimed for a minute,
    /// so replicas never send the same one at once); a success deletes the
    /// row, a failure doubles its wait up to `abort_retry_max`. The number
    /// aborted now.
    pub async fn retry_aborts(&self) -> Result<usize, DomainError> {
        let conn = self.catalog.get().await?;
        let due = conn
            .query(
                "UPDATE athena_backup_pending_aborts
                    SET next_attempt_at = now() + interval '60 seconds'
                  WHERE id IN (SELECT id FROM athena_backup_pending_aborts
                                WHERE next_attempt_at <= now()
                                ORDER BY next_attempt_at LIMIT 16
                                  FOR UPDATE SKIP LOCKED)
              RETURNING id, bucket, s3_key, upload_id, attempts, job_id",
                &[],
            )
            .await?;
        drop(conn);
        let mut aborted = 0;
        for r in due {
            let (id, bucket, key, upload): (i64, String, String, String) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            let (attempts, job_id): (i32, Option<i64>) = (r.get(4), r.get(5));
            let outcome = self.try_abort(&bucket, &key, &upload).await;
            let conn = self.catalog.get().await?;
            match outcome {
                Ok(()) => {
                    conn.execute(
                        "DELETE FROM athena_backup_pending_aborts WHERE id = $1",
                        &[&id],
                    )
                    .await?;
                    drop(conn);
                    aborted += 1;
                    if let Some(job_id) = job_id {
                        self.log_job(job_id, "info", "the S3 upload was aborted (retried)")
                            .await;
                    }
                }
                Err(e) => {
                    let wait = Duration::from_secs(1u64 << (attempts + 1).clamp(0, 16) as u32)
                        .min(self.settings.abort_retry_max)
                        .as_secs_f64();
                    conn.execute(
                        "UPDATE athena_backup_pending_aborts
                            SET attempts = attempts + 1, last_error = $2,
                                next_attempt_at = now() + make_interval(secs => $3)
                          WHERE id = $1",
                        &[&id, &e, &wait],
                    )
                    .await?;
                }
            }
        }
        Ok(aborted)
    }

    /// A log line of the job numbered `job_id`.
    async fn log_job(&self, job_id: i64, level: &str, message: &str) {
        let Ok(conn) = self.catalog.get().await else {
            return;
        };
        if let Err(e) = conn
            .execute(
                "INSERT INTO athena_backup_job_logs (job, level, message)
                 SELECT id, $2, $3 FROM athena_backup_jobs WHERE job_id = $1",
                &[&job_id, &level, &message],
            )
            .await
        {
            tracing::warn!(error = %e, "backup job log");
        }
    }

    async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload: &str,
        number: u32,
        bytes: Bytes,
    ) -> Result<String, JobError> {
        let (store, _) = self.configured()?;
        // A store's transient failure (5xx, SlowDown, a dropped
        // connection) is retried twice, like any S3 client does.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let call = Call::new(Method::PUT, Some(bucket), Some(key))
                .query("partNumber", number.to_string())
                .query("uploadId", upload)
                .bytes(bytes.clone());
            match self.s3.send(store, call, key).await {
                Ok(reply) => return Ok(reply.header("etag").unwrap_or_default().to_string()),
                Err(DomainError::ServiceUnavailable(_)) if attempt < 3 => {
                    tokio::time::sleep(Duration::from_millis(500 * attempt)).await;
                }
                Err(e) => {
                    return Err(JobError::Failed(format!(
                        "uploading part {number} to S3 failed: {}",
                        detail(&e)
                    )))
                }
            }
        }
    }

    /// The dump: `pg_dump` → multipart upload. `Ok` with the job result.
    async fn backup(
        &self,
        job: &Claimed,
        stop: &mut watch::Receiver<Option<Stop>>,
        progress: &Progress,
    ) -> Result<Value, JobError> {
        let (store, configured_bucket) = self.configured()?;
        let bucket = job
            .bucket
            .clone()
            .unwrap_or_else(|| configured_bucket.to_string());
        progress.stage("connecting");
        let target = unless_stopped(stop, self.pg_target(job)).await?;
        let owner = job.client.clone().unwrap_or_else(|| "direct".to_string());
        let key = format!(
            "{}/{}/{}-{}.dump",
            self.settings.prefix,
            owner,
            Utc::now().format("%Y%m%dT%H%M%SZ"),
            job.job_id
        );
        let mut attempt = 0;
        loop {
            attempt += 1;
            let repair = attempt > 1;
            // Start the upload and record it, so a takeover can abort it.
            progress.stage("uploading");
            let mut call = Call::new(Method::POST, Some(&bucket), Some(&key))
                .query("uploads", "")
                .header("content-type", "application/octet-stream")?
                .header_named("x-amz-meta-job-id", &job.job_id.to_string())?
                .header_named("x-amz-meta-client", &owner)?;
            if let Some(l) = job.label.as_deref().filter(|l| !l.is_empty()) {
                call = call.header_named("x-amz-meta-label", l)?;
            }
            let created = unless_stopped(stop, async {
                self.s3.send(store, call, &key).await.map_err(|e| {
                    JobError::Failed(format!("starting the S3 upload failed: {}", detail(&e)))
                })
            })
            .await?;
            let upload = created
                .xml::<crate::storage::xml::InitiateMultipartUploadResult>()?
                .upload_id;
            {
                let conn = self.catalog.get().await.map_err(DomainError::from)?;
                conn.execute(
                    "UPDATE athena_backup_jobs SET s3_bucket = $3, s3_key = $4, upload_id = $5
                      WHERE id = $1 AND run_token = $2",
                    &[&job.lease.id, &job.lease.token, &bucket, &key, &upload],
                )
                .await
                .map_err(DomainError::from)?;
            }
            let mut extra = vec!["--format=custom", LOCK_WAIT_TIMEOUT];
            if repair {
                extra.extend(["--no-owner", "--no-privileges"]);
            }
            let mut child = match command(self.tool("pg_dump"), &target, &extra).spawn() {
                Ok(child) => child,
                Err(e) => {
                    self.abort_upload(job.job_id, &bucket, &key, &upload).await;
                    return Err(missing_tool("pg_dump", e));
                }
            };
            progress.stage("dumping");
            let result = self
                .pump_dump(&mut child, &target, &bucket, &key, &upload, stop, progress)
                .await;
            match result {
                Ok(size) => {
                    return Ok(json!({
                        "s3_bucket": bucket,
                        "s3_key": key,
                        "size_bytes": size,
                        "recovery_strategy": job.strategy,
                        "repaired": repair,
                    }))
                }
                Err(e) => {
                    terminate(&mut child).await;
                    self.abort_upload(job.job_id, &bucket, &key, &upload).await;
                    match e {
                        JobError::Failed(msg)
                            if !repair
                                && job.strategy == "repair_missing_role_oids"
                                && is_missing_role_error(&msg) =>
                        {
                            self.log(
                                job.lease.id,
                                "warn",
                                &format!("{msg}; retrying once with --no-owner --no-privileges"),
                            )
                            .await;
                            progress.bytes.store(0, Ordering::Relaxed);
                        }
                        e => return Err(e),
                    }
                }
            }
        }
    }

    /// Streams the dump's stdout into parts; `Ok(size)` once the tool
    /// exited 0 and the upload is complete.
    #[allow(clippy::too_many_arguments)]
    async fn pump_dump(
        &self,
        child: &mut Child,
        target: &PgTarget,
        bucket: &str,
        key: &str,
        upload: &str,
        stop: &mut watch::Receiver<Option<Stop>>,
        progress: &Progress,
    ) -> Result<u64, JobError> {
        let stderr = collect_stderr(child);
        let mut stdout = child
            .stdout
            .take()
            .ok_or_else(|| JobError::Failed("pg_dump has no stdout".into()))?;
        let part_size = self.settings.part_size;
        let mut parts: Vec<(u32, String)> = Vec::new();
        let mut part = BytesMut::with_capacity(part_size);
        let mut total: u64 = 0;
        loop {
            let n = unless_stopped(stop, async {
                stdout
                    .read_buf(&mut part)
                    .await
                    .map_err(|e| JobError::Failed(format!("reading pg_dump's output: {e}")))
            })
            .await?;
            total += n as u64;
            progress.bytes.store(total, Ordering::Relaxed);
            let end = n == 0;
            if part.len() >= part_size || (end && (!part.is_empty() || parts.is_empty())) {
                let number = parts.len() as u32 + 1;
                let bytes =
                    std::mem::replace(&mut part, BytesMut::with_capacity(part_size)).freeze();
                let etag =
                    unless_stopped(stop, self.upload_part(bucket, key, upload, number, bytes))
                        .await?;
                parts.push((number, etag));
            }
            if end {
                break;
            }
        }
        let status = unless_stopped(stop, async {
            child
                .wait()
                .await
                .map_err(|e| JobError::Failed(format!("waiting for pg_dump: {e}")))
        })
        .await?;
        let stderr = stderr.await.unwrap_or_default();
        if !status.success() {
            return Err(JobError::Failed(tool_error(
                "pg_dump", status, &stderr, target,
            )));
        }
        progress.stage("completing");
        let (store, _) = self.configured()?;
        let call = Call::new(Method::POST, Some(bucket), Some(key))
            .query("uploadId", upload)
            .document(
                "application/xml",
                crate::storage::xml::complete_multipart(&parts),
            )?;
        // Past this point a cancel or a timeout no longer drops the request
        // (the store may complete it anyway): its answer is the outcome.
        let reply = unless_lost(stop, async {
            match tokio::time::timeout(COMPLETE_TIMEOUT, self.s3.send(store, call, key)).await {
                Err(_) => Err(JobError::Failed(
                    "completing the S3 upload timed out".into(),
                )),
                Ok(r) => r.map_err(|e| {
                    JobError::Failed(format!("completing the S3 upload failed: {}", detail(&e)))
                }),
            }
        })
        .await?;
        if let Some(code) = crate::storage::s3::error_code(&reply.body) {
            return Err(JobError::Failed(format!(
                "completing the S3 upload failed ({code})"
            )));
        }
        Ok(total)
    }

    /// The restore: the object → `pg_restore` (one transaction).
    async fn restore(
        &self,
        job: &Claimed,
        stop: &mut watch::Receiver<Option<Stop>>,
        progress: &Progress,
    ) -> Result<Value, JobError> {
        let (store, configured_bucket) = self.configured()?;
        let bucket = job
            .bucket
            .clone()
            .unwrap_or_else(|| configured_bucket.to_string());
        let key = job
            .key
            .clone()
            .ok_or_else(|| JobError::Failed("the restore names no key".into()))?;
        progress.stage("connecting");
        let target = unless_stopped(stop, self.pg_target(job)).await?;
        progress.stage("downloading");
        let answer = unless_stopped(stop, async {
            self.s3
                .open(store, Call::new(Method::GET, Some(&bucket), Some(&key)))
                .await
                .map_err(JobError::from)
        })
        .await?;
        if !answer.status().is_success() {
            let e = crate::storage::s3::S3::open_error(answer, &key).await;
            return Err(JobError::Failed(format!(
                "reading the backup failed: {}",
                detail(&e)
            )));
        }
        let mut body = answer.into_body();
        let mut cmd = command(
            self.tool("pg_restore"),
            &target,
            &["--single-transaction", "--exit-on-error", "--no-owner"],
        );
        cmd.stdin(Stdio::piped()).stdout(Stdio::null());
        let mut child = cmd.spawn().map_err(|e| missing_tool("pg_restore", e))?;
        progress.stage("restoring");
        let stderr = collect_stderr(&mut child);
        let mut stdin = child.stdin.take();
        let pumped: Result<u64, JobError> = async {
            let mut total = 0u64;
            let Some(input) = stdin.as_mut() else {
                return Err(JobError::Failed("pg_restore has no stdin".into()));
            };
            loop {
                let frame = unless_stopped(stop, async {
                    match tokio::time::timeout(Duration::from_secs(60), body.frame()).await {
                        Err(_) => Err(JobError::Failed("the S3 store stalled".into())),
                        Ok(None) => Ok(None),
                        Ok(Some(Err(e))) => {
                            Err(JobError::Failed(format!("reading the backup: {e}")))
                        }
                        Ok(Some(Ok(f))) => Ok(Some(f)),
                    }
                })
                .await?;
                let Some(frame) = frame else { break };
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                total += data.len() as u64;
                progress.bytes.store(total, Ordering::Relaxed);
                // A tool that exited early (bad archive) closes its stdin.
                unless_stopped(stop, async {
                    input
                        .write_all(&data)
                        .await
                        .map_err(|_| JobError::Failed(String::new()))
                })
                .await?;
            }
            Ok(total)
        }
        .await;
        drop(stdin);
        let result = match pumped {
            Err(JobError::Stopped(s)) => Err(JobError::Stopped(s)),
            Err(JobError::Failed(m)) if !m.is_empty() => Err(JobError::Failed(m)),
            other => {
                // The input is closed: pg_restore commits or rolls back on
                // its own; a cancel or a timeout waits for it and records
                // what happened. Only a lost lease stops it (the job may be
                // failed by another replica: it must not commit).
                let status = unless_lost(stop, async {
                    child
                        .wait()
                        .await
                        .map_err(|e| JobError::Failed(format!("waiting for pg_restore: {e}")))
                })
                .await;
                match status {
                    Err(e) => Err(e),
                    Ok(status) if !status.success() => {
                        let stderr = stderr.await.unwrap_or_default();
                        Err(JobError::Failed(tool_error(
                            "pg_restore",
                            status,
                            &stderr,
                            &target,
                        )))
                    }
                    Ok(_) => other
                        .map(|n| json!({ "s3_bucket": bucket, "s3_key": key, "size_bytes": n })),
                }
            }
        };
        if result.is_err() {
            terminate(&mut child).await;
        }
        result
    }
}

/// Spawns this replica's backup workers and its scheduler, each under the
/// supervisor (listed in the daemon registry by `daemons`).
pub fn spawn(backups: Arc<Backups>) {
    for _ in 0..backups.settings.workers {
        let b = backups.clone();
        supervise("backup worker", Backoff::default(), move || {
            worker(b.clone())
        });
    }
    let b = backups.clone();
    supervise("backup scheduler", Backoff::default(), move || {
        scheduler(b.clone())
    });
}

/// How often a worker looks for pending upload aborts that are due.
const ABORT_CHECK: Duration = Duration::from_secs(1);

async fn worker(b: Arc<Backups>) {
    let daemon = crate::supervisor::daemon_id().unwrap_or_else(|| "backup_worker".into());
    let mut aborts_checked: Option<Instant> = None;
    loop {
        if aborts_checked.is_none_or(|t| t.elapsed() >= ABORT_CHECK) {
            aborts_checked = Some(Instant::now());
            match b.retry_aborts().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(aborted = n, "pending backup upload aborts done"),
                Err(e) => tracing::warn!(error = %e, "retrying pending backup upload aborts"),
            }
        }
        let woken = b.wake.notified();
        match b.run_next(&daemon).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "backup worker"),
        }
        let _ = tokio::time::timeout(b.settings.poll.min(ABORT_CHECK), woken).await;
    }
}

async fn scheduler(b: Arc<Backups>) {
    loop {
        match b.run_schedules(Utc::now()).await {
            Ok(n) if n > 0 => tracing::info!(jobs = n, "backup schedules queued jobs"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "backup scheduler"),
        }
        tokio::time::sleep(b.settings.schedule_tick).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_stay_one_conninfo_value() {
        assert_eq!(conninfo_dbname("db"), "dbname='db'");
        assert_eq!(conninfo_dbname("a' host=evil"), "dbname='a\\' host=evil'");
        assert_eq!(conninfo_dbname("a\\"), "dbname='a\\\\'");
    }

    fn target(uri: &str, host: &str, direct: bool) -> PgTarget {
        let config: tokio_postgres::Config = uri.parse().unwrap();
        from_config(&config, host.into(), direct).unwrap()
    }

    fn env_of(c: &Command) -> std::collections::HashMap<String, Option<String>> {
        c.as_std()
            .get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.map(|v| v.to_string_lossy().into_owned()),
                )
            })
            .collect()
    }

    #[test]
    fn a_pinned_client_uri_connects_to_its_checked_address() {
        let t = target(
            "postgres://u:p@db.example/app?hostaddr=192.0.2.7",
            "db.example",
            false,
        );
        let env = env_of(&command("pg_dump".into(), &t, &[]));
        assert_eq!(env["PGHOSTADDR"].as_deref(), Some("192.0.2.7"));
        assert_eq!(env["PGPASSWORD"].as_deref(), Some("p"));
        // Not a direct URI: the client's own TLS settings are left alone.
        assert!(!env.contains_key("PGSSLMODE"));
        let t = target("postgres://u@db.example/app", "db.example", false);
        assert!(!env_of(&command("pg_restore".into(), &t, &[])).contains_key("PGHOSTADDR"));
    }

    #[test]
    fn a_direct_uri_uses_none_of_the_gateways_credentials() {
        let t = target("postgres://u:s3cret@192.0.2.7/app", "192.0.2.7", true);
        let env = env_of(&command("pg_dump".into(), &t, &[]));
        for (k, v) in [
            ("PGSSLMODE", "disable"),
            ("PGGSSENCMODE", "disable"),
            ("PGSSLCERT", "/dev/null"),
            ("PGSSLKEY", "/dev/null"),
            ("PGPASSFILE", "/dev/null"),
        ] {
            assert_eq!(env[k].as_deref(), Some(v), "{k}");
        }
        let args: Vec<String> = command("pg_dump".into(), &t, &["--format=custom"])
            .as_std()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(args.contains(&"--host=192.0.2.7".to_string()), "{args:?}");
        assert!(!args.iter().any(|a| a.contains("s3cret")), "{args:?}");
        assert_eq!(env["PGPASSWORD"].as_deref(), Some("s3cret"));
    }

    #[test]
    fn only_the_missing_role_error_is_repaired() {
        assert!(is_missing_role_error(
            "pg_dump exited with exit status: 1: pg_dump: error: role with OID 16390 does not exist"
        ));
        assert!(!is_missing_role_error(
            "pg_dump exited with exit status: 1: connection to server failed"
        ));
        assert!(!is_missing_role_error(
            "pg_dump: error: could not obtain lock on relation \"t\""
        ));
    }

    #[test]
    fn a_lost_lease_is_final() {
        let (tx, rx) = watch::channel(None);
        signal(&tx, Stop::TimedOut);
        assert_eq!(*rx.borrow(), Some(Stop::TimedOut));
        signal(&tx, Stop::Cancelled);
        assert_eq!(*rx.borrow(), Some(Stop::Cancelled));
        signal(&tx, Stop::TimedOut);
        assert_eq!(*rx.borrow(), Some(Stop::Cancelled));
        signal(&tx, Stop::Lost);
        signal(&tx, Stop::Cancelled);
        assert_eq!(*rx.borrow(), Some(Stop::Lost));
    }

    #[tokio::test]
    async fn terminate_stops_the_group_and_a_lost_lease_stops_a_finish_line_wait() {
        let mut c = Command::new("sh");
        c.args(["-c", "sleep 600 & sleep 600; wait"])
            .process_group(0)
            .kill_on_drop(true);
        die_with_parent(&mut c);
        let mut child = c.spawn().unwrap();
        let started = Instant::now();
        terminate(&mut child).await;
        assert!(child.id().is_none(), "reaped");
        // SIGTERM was enough: no wait for the SIGKILL.
        assert!(started.elapsed() < KILL_AFTER, "{:?}", started.elapsed());

        // A cancel does not stop a finish-line step; a lost lease does.
        let (tx, mut rx) = watch::channel(None);
        signal(&tx, Stop::Cancelled);
        let r = unless_lost(&mut rx, async { Ok::<_, JobError>(7) }).await;
        assert!(matches!(r, Ok(7)));
        signal(&tx, Stop::Lost);
        let r = unless_lost(&mut rx, std::future::pending::<Result<(), JobError>>()).await;
        assert!(matches!(r, Err(JobError::Stopped(Stop::Lost))));
    }
}
