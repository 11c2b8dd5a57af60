//! The management DDL audit log (issue 16): nothing changes a tenant's
//! schema through `/management/*` without a row here first.
//!
//! The store is the catalog database unless `ATHENA_LOGGING_DATABASE_URL`
//! names another one (`AuditStore::open`); its tables come from catalog
//! migration `0011_ddl_audit_log.sql`, applied to a separate store at start
//! too. The protocol a management handler follows:
//!
//! 1. `begin(&entry)` inserts the row as `pending` (and, for function DDL,
//!    its `function_ddl_audit_log` row with the replaced definition). A
//!    store that is down, or lacks the tables, is a 503
//!    `service_unavailable`: the handler returns it and runs no DDL.
//! 2. The DDL runs (`entry.statement` is the exact SQL text sent).
//! 3. `finish(id, Ok(()))` or `finish(id, Err(message))` marks the row
//!    `success` or `error`. A failure to record the outcome is logged, not
//!    returned: the DDL already happened and the answer must say what it did.
//!
//! A process that dies between 1 and 3 leaves a `pending` row;
//! `recover_pending` (run at start) marks every such row `error`.

use crate::auth::Actor;
use crate::db::Pool;
use crate::domain::DomainError;

/// The statements that create the store's tables (the catalog migration).
pub const SCHEMA: &str = include_str!("../../migrations/0011_ddl_audit_log.sql");

/// The message a crash-recovered row carries.
pub const INTERRUPTED: &str = "interrupted: the gateway stopped before the statement finished";

/// How old a `pending` row must be for `recover_pending` to close it.
pub const RECOVERY_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// A `database_audit_log` row `begin` opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditId(pub i64);

/// What `begin` records, before the statement runs.
#[derive(Debug, Clone, Default)]
pub struct AuditEntry {
    /// The `X-Athena-Client` the DDL runs against.
    pub client_name: String,
    /// The API key (`api_keys.id`), `None` for the admin key.
    pub api_key_id: Option<String>,
    /// The request's `X-Request-Id`.
    pub request_id: String,
    /// What was asked, by event name: `management.tables.create`,
    /// `management.functions.replace` …
    pub operation: String,
    pub object_schema: Option<String>,
    pub object_name: Option<String>,
    /// The exact SQL text that runs.
    pub statement: String,
    /// Function DDL only: `Some(previous)` also writes the
    /// `function_ddl_audit_log` row, `previous` being the definition the
    /// statement replaces or drops (`None`: a new function).
    pub function: Option<Option<String>>,
}

impl AuditEntry {
    /// The key id to record for `actor` (`None` for the admin key and
    /// keyless callers).
    pub fn key_id(actor: &Actor) -> Option<String> {
        match actor {
            Actor::Key(key) => Some(key.id.to_string()),
            Actor::Admin | Actor::Open => None,
        }
    }
}

/// A stored row, as `recent` reads it back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub client_name: String,
    pub api_key_id: Option<String>,
    pub request_id: String,
    pub operation: String,
    pub object_schema: Option<String>,
    pub object_name: Option<String>,
    pub statement: String,
    pub status: String,
    pub error: Option<String>,
    /// From `function_ddl_audit_log`, `None` for other DDL or a new
    /// function.
    pub previous_definition: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The logging store.
pub struct AuditStore {
    pool: Pool,
    /// On `ATHENA_LOGGING_DATABASE_URL`, not the catalog.
    separate: bool,
}

/// Why an audit write failed, as the caller sees it: always a 503 (the
/// detail goes to the log).
fn unavailable(context: &str, e: impl std::fmt::Display) -> DomainError {
    tracing::error!(error = %e, "DDL audit log: {context}");
    DomainError::ServiceUnavailable(
        "the DDL audit log is unavailable; no schema change was made".into(),
    )
}

impl AuditStore {
    /// A store on `pool` (tests; `open` in the server).
    pub fn new(pool: Pool) -> AuditStore {
        AuditStore {
            pool,
            separate: false,
        }
    }

    /// The store's pool (`GET /debug/schema` inspects it).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Whether the store is a database of its own
    /// (`ATHENA_LOGGING_DATABASE_URL`) rather than the catalog.
    pub fn is_separate(&self) -> bool {
        self.separate
    }

    /// The server's store: the catalog pool, or a pool on `logging_url`
    /// (`ATHENA_LOGGING_DATABASE_URL`) whose tables are created now when it
    /// answers (a store down at start is not fatal: every DDL answers 503
    /// until it is back). Pending rows left by a crash become `error`.
    pub async fn open(
        catalog: &Pool,
        logging_url: Option<&str>,
        settings: crate::db::PoolSettings,
    ) -> Result<AuditStore, String> {
        let store = match logging_url {
            None => AuditStore::new(catalog.clone()),
            Some(url) => {
                let pool = crate::db::pool(url, settings)
                    .map_err(|e| format!("ATHENA_LOGGING_DATABASE_URL: {e}"))?;
                let store = AuditStore {
                    pool,
                    separate: true,
                };
                if let Err(e) = store.ensure_schema().await {
                    tracing::warn!(error = %e, "DDL audit store: tables not created");
                }
                store
            }
        };
        match store.recover_pending().await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                rows = n,
                "DDL audit log: pending rows of a crash marked error"
            ),
            Err(e) => tracing::warn!(error = %e, "DDL audit log: pending rows not recovered"),
        }
        Ok(store)
    }

    /// Creates the tables (idempotent): a separate logging store.
    pub async fn ensure_schema(&self) -> Result<(), DomainError> {
        let conn = self.pool.get().await?;
        conn.batch_execute(SCHEMA).await?;
        Ok(())
    }

    /// Records `entry` as `pending`, in one transaction with its function
    /// row. Any failure (store down, tables missing) is 503
    /// `service_unavailable`: the caller must not run the DDL.
    pub async fn begin(&self, entry: &AuditEntry) -> Result<AuditId, DomainError> {
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| unavailable("store unreachable", e))?;
        let tx = conn
            .transaction()
            .await
            .map_err(|e| unavailable("begin", e))?;
        let id: i64 = tx
            .query_one(
                "INSERT INTO database_audit_log
                     (client_name, api_key_id, request_id, operation, object_schema, object_name, statement)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                &[
                    &entry.client_name,
                    &entry.api_key_id,
                    &entry.request_id,
                    &entry.operation,
                    &entry.object_schema,
                    &entry.object_name,
                    &entry.statement,
                ],
            )
            .await
            .map_err(|e| unavailable("recording a pending statement", e))?
            .get(0);
        if let Some(previous) = &entry.function {
            tx.execute(
                "INSERT INTO function_ddl_audit_log
                     (audit_id, client_name, api_key_id, request_id, operation, object_schema,
                      object_name, statement, previous_definition)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    &id,
                    &entry.client_name,
                    &entry.api_key_id,
                    &entry.request_id,
                    &entry.operation,
                    &entry.object_schema,
                    &entry.object_name,
                    &entry.statement,
                    previous,
                ],
            )
            .await
            .map_err(|e| unavailable("recording a pending function statement", e))?;
        }
        tx.commit()
            .await
            .map_err(|e| unavailable("commit of a pending row", e))?;
        Ok(AuditId(id))
    }

    /// Marks `id` `success` (`Ok`) or `error` with the message (`Err`).
    /// Logged, never returned: the DDL's own outcome is the answer.
    pub async fn finish(&self, id: AuditId, outcome: Result<(), &str>) {
        if let Err(e) = self.try_finish(id, outcome).await {
            tracing::error!(audit_id = id.0, error = %e, "DDL audit log: outcome not recorded");
        }
    }

    async fn try_finish(&self, id: AuditId, outcome: Result<(), &str>) -> Result<(), DomainError> {
        let (status, error) = match outcome {
            Ok(()) => ("success", None),
            Err(message) => ("error", Some(message)),
        };
        let conn = self.pool.get().await?;
        // One statement: both rows or neither.
        conn.execute(
            "WITH f AS (
                 UPDATE function_ddl_audit_log SET status = $2, error = $3, finished_at = now()
                  WHERE audit_id = $1 AND status = 'pending')
             UPDATE database_audit_log SET status = $2, error = $3, finished_at = now()
              WHERE id = $1 AND status = 'pending'",
            &[&id.0, &status, &error],
        )
        .await?;
        Ok(())
    }

    /// Marks every `pending` row older than `RECOVERY_GRACE` `error`
    /// (`INTERRUPTED`): run at start. The grace keeps a replica starting
    /// while another runs DDL from closing that replica's open row; the DDL
    /// timeouts (`lock_timeout`, `statement_timeout`) end a statement far
    /// sooner. How many rows were marked.
    pub async fn recover_pending(&self) -> Result<u64, DomainError> {
        self.recover_pending_older_than(RECOVERY_GRACE).await
    }

    /// `recover_pending` with another grace (tests: zero).
    pub async fn recover_pending_older_than(
        &self,
        grace: std::time::Duration,
    ) -> Result<u64, DomainError> {
        let conn = self.pool.get().await?;
        let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        let n = conn
            .execute(
                "WITH f AS (
                     UPDATE function_ddl_audit_log SET status = 'error', error = $1, finished_at = now()
                      WHERE status = 'pending' AND created_at <= now() - make_interval(secs => $2::bigint / 1000.0))
                 UPDATE database_audit_log SET status = 'error', error = $1, finished_at = now()
                  WHERE status = 'pending' AND created_at <= now() - make_interval(secs => $2::bigint / 1000.0)",
                &[&INTERRUPTED, &grace_ms],
            )
            .await?;
        Ok(n)
    }

    /// The latest `limit` rows for `client_name`, newest first (tests, the
    /// management routes' read back).
    pub async fn recent(
        &self,
        client_name: &str,
        limit: i64,
    ) -> Result<Vec<AuditRow>, DomainError> {
        let conn = self.pool.get().await?;
        let rows = conn
            .query(
                "SELECT a.id, a.client_name, a.api_key_id, a.request_id, a.operation, a.object_schema,
                        a.object_name, a.statement, a.status, a.error, f.previous_definition,
                        a.created_at, a.finished_at
                   FROM database_audit_log a
                   LEFT JOIN function_ddl_audit_log f ON f.audit_id = a.id
                  WHERE a.client_name = $1
                  ORDER BY a.id DESC
                  LIMIT $2",
                &[&client_name, &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| AuditRow {
                id: r.get(0),
                client_name: r.get(1),
                api_key_id: r.get(2),
                request_id: r.get(3),
                operation: r.get(4),
                object_schema: r.get(5),
                object_name: r.get(6),
                statement: r.get(7),
                status: r.get(8),
                error: r.get(9),
                previous_definition: r.get(10),
                created_at: r.get(11),
                finished_at: r.get(12),
            })
            .collect())
    }
}
