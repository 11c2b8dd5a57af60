//! Claims and leases for background jobs kept in a catalog table, shared by
//! every worker (deferred writes today; the webhook outbox, backups and
//! schedules later). A job table has the columns `id uuid`, `status text`
//! (`queued`, `running`, `completed`, `failed`), `run_token uuid`,
//! `worker_id text`, `attempts int`, `run_after`, `started_at`,
//! `finished_at`, `created_at`, `updated_at` (timestamptz), `result jsonb`
//! and `error text` (see `migrations/0005_deferred.sql`).
//!
//! A claim takes the oldest runnable job with `FOR UPDATE SKIP LOCKED` (so
//! workers on every replica share the table without blocking each other)
//! and gives it a fresh run token; a job whose worker went silent for
//! `stale_after` is claimed again. Every outcome is written only while the
//! token still matches: a worker that lost its lease to a takeover changes
//! nothing (the outcome is `false`, "lost").

use crate::db::conn::Conn;
use crate::domain::DomainError;
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

/// One claimed run of a job.
#[derive(Debug, Clone, Copy)]
pub struct Lease {
    pub id: Uuid,
    pub token: Uuid,
    /// Runs so far, this one included.
    pub attempts: i32,
}

/// The leases of one job table, for this process's workers.
pub struct Leases {
    worker_id: String,
    stale_after: Duration,
    claim: String,
    /// Grouped leases only ([`Leases::grouped`]): claims several queued
    /// jobs of one group at once, and takes over one stale job.
    claim_group: Option<String>,
    claim_stale: String,
    complete: String,
    complete_many: String,
    retry: String,
    fail: String,
    renew: String,
}

impl Leases {
    /// `table` is a trusted constant (the SQL names it); `returning` the
    /// job's own columns a claim returns after `id, attempts`.
    pub fn new(table: &'static str, returning: &'static str, stale_after: Duration) -> Leases {
        Leases::filtered(table, returning, stale_after, "TRUE")
    }

    /// [`Leases::new`] whose claims take only queued jobs passing `filter`
    /// (a trusted SQL condition on the candidate row `c`; `$3` is the stale
    /// time in seconds), e.g. one running job per target.
    pub fn filtered(
        table: &'static str,
        returning: &'static str,
        stale_after: Duration,
        filter: &'static str,
    ) -> Leases {
        Leases {
            worker_id: format!("{}:{}", std::process::id(), Uuid::new_v4().simple()),
            stale_after,
            claim_group: None,
            claim_stale: format!(
                "UPDATE {table} j
                    SET status = 'running', run_token = $1, worker_id = $2,
                        attempts = j.attempts + 1, started_at = now(), updated_at = now(),
                        finished_at = NULL
                  WHERE j.id = (
                        SELECT id FROM {table} c
                         WHERE status = 'running' AND started_at < now() - make_interval(secs => $3)
                         ORDER BY started_at
                         FOR UPDATE SKIP LOCKED
                         LIMIT 1)
              RETURNING j.id, j.attempts, {returning}"
            ),
            complete_many: format!(
                "UPDATE {table} t
                    SET status = 'completed', result = u.result, error = NULL,
                        finished_at = now(), updated_at = now()
                   FROM unnest($1::uuid[], $2::uuid[], $3::jsonb[]) AS u(id, token, result)
                  WHERE t.id = u.id AND t.run_token = u.token"
            ),
            claim: format!(
                "UPDATE {table} j
                    SET status = 'running', run_token = $1, worker_id = $2,
                        attempts = j.attempts + 1, started_at = now(), updated_at = now(),
                        finished_at = NULL
                  WHERE j.id = (
                        SELECT id FROM {table} c
                         WHERE (status = 'queued' AND ($4 OR run_after <= now()) AND ({filter}))
                            OR (status = 'running' AND started_at < now() - make_interval(secs => $3))
                         ORDER BY created_at
                         FOR UPDATE SKIP LOCKED
                         LIMIT 1)
              RETURNING j.id, j.attempts, {returning}"
            ),
            complete: format!(
                "UPDATE {table}
                    SET status = 'completed', result = $3, error = NULL,
                        finished_at = now(), updated_at = now()
                  WHERE id = $1 AND run_token = $2"
            ),
            retry: format!(
                "UPDATE {table}
                    SET status = 'queued', error = $3, run_token = NULL,
                        run_after = now() + make_interval(secs => $4), updated_at = now()
                  WHERE id = $1 AND run_token = $2"
            ),
            fail: format!(
                "UPDATE {table}
                    SET status = 'failed', result = $3, error = $4,
                        finished_at = now(), updated_at = now()
                  WHERE id = $1 AND run_token = $2"
            ),
            renew: format!(
                "UPDATE {table} SET started_at = now(), updated_at = now()
                  WHERE run_token = $1 AND status = 'running'"
            ),
        }
    }

    /// [`Leases::filtered`] whose jobs belong to groups (`group`: trusted
    /// column names, e.g. a delivery target): [`Leases::claim_group`] takes
    /// up to `limit` queued jobs of the group of the oldest runnable job at
    /// once, so a worker drains a busy group with one claim per batch
    /// instead of one per job.
    pub fn grouped(
        table: &'static str,
        returning: &'static str,
        stale_after: Duration,
        filter: &'static str,
        group: &[&'static str],
    ) -> Leases {
        let mut leases = Leases::filtered(table, returning, stale_after, filter);
        let cols = group.join(", ");
        let same = group
            .iter()
            .map(|g| format!("c.{g} = f.{g}"))
            .collect::<Vec<_>>()
            .join(" AND ");
        leases.claim_group = Some(format!(
            "WITH f AS (
                 SELECT {cols} FROM {table} c
                  WHERE c.status = 'queued' AND ($4 OR c.run_after <= now()) AND ({filter})
                  ORDER BY c.created_at
                  LIMIT 1)
             UPDATE {table} j
                SET status = 'running', run_token = $1, worker_id = $2,
                    attempts = j.attempts + 1, started_at = now(), updated_at = now(),
                    finished_at = NULL
              WHERE j.id IN (
                    SELECT c.id FROM {table} c, f
                     WHERE c.status = 'queued' AND ($4 OR c.run_after <= now()) AND {same}
                     ORDER BY c.created_at
                     LIMIT $5
                     FOR UPDATE OF c SKIP LOCKED)
          RETURNING j.id, j.attempts, {returning}"
        ));
        leases
    }

    /// Grouped leases: up to `limit` queued jobs of one group (see
    /// [`Leases::grouped`]), all under one run token; none queued → one job
    /// whose worker went silent (taken over alone). Empty: nothing to run.
    pub async fn claim_group(
        &self,
        conn: &Conn,
        limit: i64,
    ) -> Result<Vec<(Lease, tokio_postgres::Row)>, DomainError> {
        let token = Uuid::new_v4();
        let stale = self.stale_after.as_secs_f64();
        let lease = |r: tokio_postgres::Row| {
            (
                Lease {
                    id: r.get(0),
                    token,
                    attempts: r.get(1),
                },
                r,
            )
        };
        if let Some(sql) = &self.claim_group {
            let rows = conn
                .query(sql, &[&token, &self.worker_id, &stale, &false, &limit])
                .await?;
            if !rows.is_empty() {
                return Ok(rows.into_iter().map(lease).collect());
            }
        }
        let row = conn
            .query_opt(&self.claim_stale, &[&token, &self.worker_id, &stale])
            .await?;
        Ok(row.into_iter().map(lease).collect())
    }

    /// Renews every lease of one run (one claim's `token`): a live worker's
    /// jobs stay its own however long the run takes (a stale lease is
    /// `stale_after` without renewal). How many are still held.
    pub async fn renew(&self, conn: &Conn, token: Uuid) -> Result<u64, DomainError> {
        Ok(conn.execute(&self.renew, &[&token]).await?)
    }

    /// Completes several jobs in one statement: how many leases still
    /// held (the others were taken over meanwhile and stay untouched).
    pub async fn complete_many(
        &self,
        conn: &Conn,
        done: &[(Lease, Value)],
    ) -> Result<u64, DomainError> {
        if done.is_empty() {
            return Ok(0);
        }
        let ids: Vec<Uuid> = done.iter().map(|(l, _)| l.id).collect();
        let tokens: Vec<Uuid> = done.iter().map(|(l, _)| l.token).collect();
        let results: Vec<&Value> = done.iter().map(|(_, r)| r).collect();
        Ok(conn
            .execute(&self.complete_many, &[&ids, &tokens, &results])
            .await?)
    }

    /// Claims the next job: the oldest queued one whose retry time has come
    /// (any queued one with `force`), or one whose worker went silent. The
    /// row holds `id, attempts`, then the `returning` columns.
    pub async fn claim(
        &self,
        conn: &Conn,
        force: bool,
    ) -> Result<Option<(Lease, tokio_postgres::Row)>, DomainError> {
        let token = Uuid::new_v4();
        let stale = self.stale_after.as_secs_f64();
        let row = conn
            .query_opt(&self.claim, &[&token, &self.worker_id, &stale, &force])
            .await?;
        Ok(row.map(|r| {
            let lease = Lease {
                id: r.get(0),
                token,
                attempts: r.get(1),
            };
            (lease, r)
        }))
    }

    /// The job succeeded with `result`; `false` when the lease was lost.
    pub async fn complete(
        &self,
        conn: &Conn,
        l: &Lease,
        result: &Value,
    ) -> Result<bool, DomainError> {
        Ok(conn
            .execute(&self.complete, &[&l.id, &l.token, result])
            .await?
            == 1)
    }

    /// The job failed transiently: queued again after an exponential
    /// backoff (2^attempts seconds, at most 64).
    pub async fn retry(&self, conn: &Conn, l: &Lease, error: &str) -> Result<bool, DomainError> {
        let backoff = f64::from(1u32 << l.attempts.clamp(0, 6));
        Ok(conn
            .execute(&self.retry, &[&l.id, &l.token, &error, &backoff])
            .await?
            == 1)
    }

    /// The job failed transiently: queued again after `delay` (the
    /// caller's own backoff, e.g. the outbox's jittered one).
    pub async fn retry_in(
        &self,
        conn: &Conn,
        l: &Lease,
        error: &str,
        delay: Duration,
    ) -> Result<bool, DomainError> {
        let secs = delay.as_secs_f64();
        Ok(conn
            .execute(&self.retry, &[&l.id, &l.token, &error, &secs])
            .await?
            == 1)
    }

    /// The job failed for good with `result` and a one-line `error`.
    pub async fn fail(
        &self,
        conn: &Conn,
        l: &Lease,
        result: &Value,
        error: &str,
    ) -> Result<bool, DomainError> {
        Ok(conn
            .execute(&self.fail, &[&l.id, &l.token, result, &error])
            .await?
            == 1)
    }
}
