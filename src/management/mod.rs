//! Management DDL (`/management/*`, issue 16): schema changes a client's
//! bound API key may make on its own database, each through the same path
//! (`Management::apply`):
//!
//! 1. the statement is built from the closed grammar (`ddl`) or, for
//!    caller SQL (function DDL, view queries), parsed and checked there;
//! 2. the audit log records it as `pending` with its exact text
//!    (`crate::audit::ddl`); a store that is down or lacks its tables is a
//!    503 and no DDL runs;
//! 3. the statement runs on the tenant's pool (its own, non-superuser
//!    role) in one transaction with `SET LOCAL lock_timeout` and
//!    `statement_timeout`, each statement sent alone over the extended
//!    protocol (Postgres refuses several statements there);
//! 4. the audit row becomes `success` or `error`; Postgres' SQLSTATE picks
//!    the answer (`sqlstate_error`), never a 500;
//! 5. after success the tenant's introspection cache is dropped on this
//!    replica and, through the catalog's `athena_schema_changed` feed
//!    (`src/db/notify.rs`), on every other one.

pub mod ddl;

use crate::audit::ddl::{AuditEntry, AuditStore};
use crate::db::tenants::Tenant;
use crate::db::Pool;
use crate::domain::DomainError;
use crate::http::{ApiError, Code};
use std::time::Duration;

/// The extensions `POST /management/extensions/install` accepts when
/// `ATHENA_EXTENSION_ALLOWLIST` is unset.
pub const DEFAULT_EXTENSIONS: &[&str] = &[
    "pgcrypto",
    "uuid-ossp",
    "citext",
    "pg_trgm",
    "hstore",
    "btree_gin",
    "btree_gist",
];

/// The catalog channel other replicas follow to drop a client's
/// introspection cache after DDL (`src/db/notify.rs`).
pub const SCHEMA_CHANGED_CHANNEL: &str = "athena_schema_changed";

/// Management DDL settings (`ATHENA_MANAGEMENT_*`, `ATHENA_EXTENSION_ALLOWLIST`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// `SET LOCAL lock_timeout` of every DDL transaction
    /// (`ATHENA_MANAGEMENT_LOCK_TIMEOUT_MS`, default 3 s): DDL waiting
    /// behind a long transaction gives up (503 + `Retry-After`) instead of
    /// queueing every later query of the table behind it.
    pub lock_timeout: Duration,
    /// `SET LOCAL statement_timeout` (`ATHENA_MANAGEMENT_STATEMENT_TIMEOUT_MS`,
    /// default 60 s): an index build on a big table may take a while.
    pub statement_timeout: Duration,
    /// Installable extensions (`ATHENA_EXTENSION_ALLOWLIST`, comma-separated).
    pub extension_allowlist: Vec<String>,
    /// The role DDL runs as (`ATHENA_MANAGEMENT_ROLE`): `SET LOCAL ROLE`
    /// in each DDL transaction, so a tenant login with more rights (a
    /// superuser) changes the schema only with that role's. `None`: the
    /// tenant's own login.
    pub role: Option<String>,
    /// Whether DDL may run as a superuser
    /// (`ATHENA_MANAGEMENT_ALLOW_SUPERUSER=1`; default no). A superuser
    /// could turn a function body or an extension into code on the
    /// database server, so by default the effective role is checked in
    /// each DDL transaction and a superuser is refused (403) — set
    /// `ATHENA_MANAGEMENT_ROLE`, or use a non-superuser tenant login.
    /// Local development and the test suites opt in.
    pub allow_superuser: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            lock_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(60),
            extension_allowlist: DEFAULT_EXTENSIONS.iter().map(|e| e.to_string()).collect(),
            role: None,
            allow_superuser: false,
        }
    }
}

impl Settings {
    /// From the environment; a malformed value is a start-up error.
    pub fn from_env() -> Result<Settings, String> {
        let mut s = Settings::default();
        let millis = |name: &str, default: Duration| -> Result<Duration, String> {
            match std::env::var(name).ok().filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(0) | Err(_) => {
                        Err(format!("{name} must be a positive number of milliseconds"))
                    }
                    Ok(n) => Ok(Duration::from_millis(n)),
                },
            }
        };
        s.lock_timeout = millis("ATHENA_MANAGEMENT_LOCK_TIMEOUT_MS", s.lock_timeout)?;
        s.statement_timeout = millis(
            "ATHENA_MANAGEMENT_STATEMENT_TIMEOUT_MS",
            s.statement_timeout,
        )?;
        if let Some(role) = std::env::var("ATHENA_MANAGEMENT_ROLE")
            .ok()
            .filter(|v| !v.trim().is_empty())
        {
            let role = role.trim().to_string();
            crate::db::discovery::name("ATHENA_MANAGEMENT_ROLE", &role)
                .map_err(|_| "ATHENA_MANAGEMENT_ROLE must be a role name (^[A-Za-z_][A-Za-z0-9_$]*$, at most 63 bytes)".to_string())?;
            s.role = Some(role);
        }
        s.allow_superuser = matches!(
            std::env::var("ATHENA_MANAGEMENT_ALLOW_SUPERUSER")
                .ok()
                .as_deref()
                .map(str::trim),
            Some("1" | "true" | "yes")
        );
        if let Some(list) = std::env::var("ATHENA_EXTENSION_ALLOWLIST")
            .ok()
            .filter(|v| !v.trim().is_empty())
        {
            s.extension_allowlist = list
                .split(',')
                .map(|e| e.trim().to_string())
                .filter(|e| !e.is_empty())
                .collect();
        }
        Ok(s)
    }
}

/// One management write: what the audit log records and what runs.
#[derive(Debug, Clone)]
pub struct Change {
    /// The event name: `management.tables.create`, …
    pub operation: &'static str,
    pub schema: Option<String>,
    pub object: Option<String>,
    /// Run in order in one transaction, each alone (extended protocol).
    pub statements: Vec<String>,
    /// Function DDL: `Some(previous definition)` (see `AuditEntry::function`).
    pub function: Option<Option<String>>,
    /// View DDL: the view (`"schema"."name"`, quoted) whose reads are
    /// checked before the commit (`refused_view_reads`).
    pub view: Option<String>,
}

impl Change {
    pub fn new(operation: &'static str, schema: &str, object: &str, statement: String) -> Change {
        Change {
            operation,
            schema: Some(schema.to_string()),
            object: Some(object.to_string()),
            statements: vec![statement],
            function: None,
            view: None,
        }
    }

    /// The exact SQL text that runs, as the audit log records it.
    pub fn statement(&self) -> String {
        self.statements.join(";\n")
    }
}

/// Who asked (for the audit row).
pub struct Caller<'a> {
    pub client: &'a str,
    pub api_key_id: Option<String>,
    pub request_id: &'a str,
}

/// The management service: the audit store and the catalog (for the
/// cross-replica invalidation feed).
pub struct Management<'a> {
    pub audit: &'a AuditStore,
    /// The events bus (`src/events/`): a change publishes its operation.
    pub events: &'a crate::events::Outbox,
    pub catalog: &'a Pool,
    pub settings: &'a Settings,
}

impl Management<'_> {
    /// Audit, run, finish, invalidate (module docs). The error is the
    /// answer to send.
    pub async fn apply(
        &self,
        tenant: &Tenant,
        caller: &Caller<'_>,
        change: &Change,
    ) -> Result<(), ApiError> {
        let entry = AuditEntry {
            client_name: caller.client.to_string(),
            api_key_id: caller.api_key_id.clone(),
            request_id: caller.request_id.to_string(),
            operation: change.operation.to_string(),
            object_schema: change.schema.clone(),
            object_name: change.object.clone(),
            statement: change.statement(),
            function: change.function.clone(),
        };
        let id = self.audit.begin(&entry).await?;
        let outcome = self.run(tenant, change).await;
        match &outcome {
            Ok(()) => self.audit.finish(id, Ok(())).await,
            Err(e) => self.audit.finish(id, Err(&e.detail)).await,
        }
        outcome?;
        self.invalidate(tenant).await;
        self.publish(caller, change).await;
        Ok(())
    }

    /// The change as an event (`management.tables.create`, … — the catalog
    /// in `src/events/mod.rs`) for the webhooks and sinks subscribed to it.
    /// The DDL is committed: a failure to queue is logged, not answered.
    async fn publish(&self, caller: &Caller<'_>, change: &Change) {
        if !crate::events::known(change.operation) {
            return;
        }
        let table = change
            .object
            .as_ref()
            .map(|o| match change.schema.as_deref() {
                None | Some("public") => o.clone(),
                Some(s) => format!("{s}.{o}"),
            });
        let event = crate::events::Event::now(
            change.operation,
            caller.client,
            table,
            serde_json::json!({
                "operation": change.operation,
                "schema": change.schema,
                "object": change.object,
                "statement": change.statement(),
            }),
        );
        if let Err(e) = self.events.publish(&event).await {
            tracing::warn!(operation = change.operation, error = %e, "management event not queued");
        }
    }

    /// The statements in one transaction, with the DDL timeouts.
    async fn run(&self, tenant: &Tenant, change: &Change) -> Result<(), ApiError> {
        let statements = &change.statements;
        let mut conn = tenant.pool.get().await.map_err(DomainError::from)?;
        let pg = |e: tokio_postgres::Error| sqlstate_error(&e);
        let result = async {
            let tx = conn.transaction().await.map_err(pg)?;
            // Our own constants and a checked role name: the simple
            // protocol is fine here.
            let mut setup = format!(
                "SET LOCAL lock_timeout = '{}ms'; SET LOCAL statement_timeout = '{}ms'",
                self.settings.lock_timeout.as_millis(),
                self.settings.statement_timeout.as_millis()
            );
            if let Some(role) = &self.settings.role {
                setup.push_str(&format!(
                    "; SET LOCAL ROLE \"{}\"",
                    role.replace('"', "\"\"")
                ));
            }
            tx.batch_execute(&setup).await.map_err(pg)?;
            if !self.settings.allow_superuser {
                let superuser: bool = tx
                    .query_one(
                        "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user",
                        &[],
                    )
                    .await
                    .map_err(pg)?
                    .get(0);
                if superuser {
                    return Err(ApiError::forbidden(
                        "management DDL does not run as a superuser: give the client a \
                         non-superuser login, or set ATHENA_MANAGEMENT_ROLE to the role DDL \
                         should run as",
                    ));
                }
            }
            for statement in statements {
                // `execute` = Parse/Bind/Execute: exactly one statement.
                tx.execute(statement.as_str(), &[]).await.map_err(pg)?;
            }
            if let Some(view) = &change.view {
                let refused = refused_view_reads(&tx, view).await.map_err(pg)?;
                if !refused.is_empty() {
                    // Dropped with the transaction: nothing was created.
                    return Err(DomainError::invalid_field(
                        "query",
                        format!(
                            "a view may not read the gateway's or the system's relations ({})",
                            refused.join(", ")
                        ),
                    )
                    .into());
                }
            }
            tx.commit().await.map_err(pg)
        }
        .await;
        // What the pool's cached statements describe may have changed.
        conn.forget_statements();
        result
    }

    /// Drops the tenant's introspection cache here and tells the other
    /// replicas (best effort: their caches also expire on a miss).
    async fn invalidate(&self, tenant: &Tenant) {
        tenant.schema.invalidate().await;
        let notified = async {
            let conn = self.catalog.get().await.map_err(DomainError::from)?;
            conn.execute(
                "SELECT pg_notify($1, $2)",
                &[&SCHEMA_CHANGED_CHANNEL, &tenant.name],
            )
            .await?;
            Ok::<_, DomainError>(())
        }
        .await;
        if let Err(e) = notified {
            tracing::warn!(error = %e, client = %tenant.name, "schema change not announced to other replicas");
        }
    }
}

/// What a just-created view reads, as Postgres resolved it (the rewrite
/// rules' dependencies, followed through the views it reads: no parse
/// trick, search-path lookup or implicit `pg_catalog` escapes this), that
/// the data plane must not expose through it: relations of system schemas
/// (`pg_catalog`, `information_schema`, …) and the gateway's own tenant
/// tables and schemas (`athena_chat`, `billing`, the storage tables…);
/// functions of gateway schemas; functions outside `pg_catalog` written in
/// a language that runs queries (`sql`, `plpgsql`, … — any but
/// `c`/`internal`: their bodies read what they like); and the built-ins that read data or files by name
/// (`query_to_xml` and the other `*_to_xml*`, `dblink*`, `pg_read_*`,
/// `pg_ls_*`, `pg_stat_get_*`, `pg_stat_file`, `lo_*`). `schema.name` of
/// each, sorted. An unknown view is an error (fails closed).
async fn refused_view_reads(
    tx: &tokio_postgres::Transaction<'_>,
    view: &str,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = tx
        .query(
            "WITH RECURSIVE v(relid) AS (
                 SELECT $1::text::regclass::oid
                 UNION
                 SELECT d.refobjid
                   FROM v
                   JOIN pg_catalog.pg_rewrite r ON r.ev_class = v.relid
                   JOIN pg_catalog.pg_depend d
                     ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid
                    AND d.refclassid = 'pg_catalog.pg_class'::regclass
             ),
             rules AS (
                 SELECT r.oid FROM v JOIN pg_catalog.pg_rewrite r ON r.ev_class = v.relid
             )
             SELECT n.nspname::text, c.relname::text, NULL::text
               FROM v
               JOIN pg_catalog.pg_class c ON c.oid = v.relid
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE v.relid <> $1::text::regclass::oid
             UNION
             SELECT n.nspname::text, p.proname::text, l.lanname::text
               FROM rules
               JOIN pg_catalog.pg_depend d
                 ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = rules.oid
                AND d.refclassid = 'pg_catalog.pg_proc'::regclass
               JOIN pg_catalog.pg_proc p ON p.oid = d.refobjid
               JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
               JOIN pg_catalog.pg_language l ON l.oid = p.prolang",
            &[&view],
        )
        .await?;
    let mut refused: Vec<String> = rows
        .iter()
        .filter(|r| {
            let (schema, name, language): (&str, &str, Option<&str>) =
                (r.get(0), r.get(1), r.get(2));
            match language {
                None => {
                    crate::db::tenants::is_system_schema(schema)
                        || crate::db::migrate::is_gateway_table(schema, name)
                }
                Some(language) => {
                    crate::db::migrate::is_gateway_schema(schema)
                        || (schema != "pg_catalog" && !matches!(language, "c" | "internal"))
                        || (schema == "pg_catalog" && reads_by_name(name))
                }
            }
        })
        .map(|r| format!("{}.{}", r.get::<_, &str>(0), r.get::<_, &str>(1)))
        .collect();
    refused.sort();
    refused.dedup();
    Ok(refused)
}

/// Built-in functions that read a relation, a query, a file or another
/// database named by their arguments (so a view's dependencies do not
/// show what they read).
fn reads_by_name(function: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "query_to_",
        "cursor_to_",
        "table_to_",
        "schema_to_",
        "database_to_",
        "dblink",
        "pg_read_",
        "pg_ls_",
        "pg_stat_get_",
        "pg_stat_file",
        "lo_",
    ];
    PREFIXES.iter().any(|p| function.starts_with(p))
}

/// Postgres' answer to DDL as the API's: 42P07/42710/42701/42723 → 409;
/// 42P01/42703/42883/42704 → 404; 42501 → 403; 55P03 (lock timeout),
/// 57014 (statement timeout), 40P01 and lost connections → 503 with
/// `Retry-After`; every other data or syntax error (42601, 22023, 2BP01,
/// …) → 400. Never a 500. The message is Postgres' primary message.
pub fn sqlstate_error(e: &tokio_postgres::Error) -> ApiError {
    let Some(db) = e.as_db_error() else {
        tracing::warn!(error = %e, "management DDL: connection failed");
        let mut err = ApiError::unavailable(
            Code::DatabaseUnavailable,
            "the database is unavailable; retry shortly",
        );
        err.retry_after = Some(1);
        return err;
    };
    let message = db.message().to_string();
    let state = db.code().code();
    match state {
        "42P07" | "42710" | "42701" | "42723" | "42P06" => {
            ApiError::new(Code::Conflict, "Conflict", message)
        }
        "42P01" => ApiError::not_found(Code::TableNotFound, message),
        "42703" => ApiError::not_found(Code::NotFound, message),
        "42883" => ApiError::not_found(Code::FunctionNotFound, message),
        "42704" | "3F000" => ApiError::not_found(Code::NotFound, message),
        "42501" => ApiError::forbidden(message),
        "55P03" | "57014" | "40P01" | "40001" => {
            let mut err = ApiError::unavailable(
                Code::ServiceUnavailable,
                format!("{message}: the object is busy; retry shortly"),
            );
            err.retry_after = Some(1);
            err
        }
        s if s.starts_with("08") || s.starts_with("53") || s.starts_with("57") => {
            tracing::warn!(sqlstate = s, error = %message, "management DDL: database unavailable");
            let mut err = ApiError::unavailable(
                Code::DatabaseUnavailable,
                "the database is unavailable; retry shortly",
            );
            err.retry_after = Some(1);
            err
        }
        _ => ApiError::bad_request(message),
    }
}
