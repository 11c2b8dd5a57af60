//! Applies `migrations/*.sql` to the catalog at start: versioned, each in a
//! transaction, serialized across replicas by an advisory lock, and checked
//! against the recorded checksum so an edited migration is caught.

use super::Pool;
use crate::domain::DomainError;

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// Arbitrary constant: the advisory lock key for catalog migrations.
const LOCK_KEY: i64 = 0x4154_4845_4e41; // "ATHENA"

fn checksum(sql: &str) -> String {
    // FNV-1a 64: stable across builds and platforms, enough to detect edits.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in sql.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

pub async fn run(pool: &Pool) -> Result<usize, DomainError> {
    let mut conn = pool.get().await?;
    conn.batch_execute(
        "CREATE TABLE IF NOT EXISTS athena_schema_migrations (
             version bigint PRIMARY KEY,
             name text NOT NULL,
             checksum text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await?;
    conn.execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
        .await?;
    let result = apply(&mut conn).await;
    let _ = conn
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await;
    result
}

async fn apply(conn: &mut tokio_postgres::Client) -> Result<usize, DomainError> {
    let mut applied = 0;
    for migration in MIGRATIONS {
        let tx = conn.transaction().await?;
        // A migration is never cut by the request statement timeout of the
        // catalog pool (`ATHENA_STATEMENT_TIMEOUT_MS`): an index built over
        // a long operation log or outbox takes what it takes, and a start
        // that gave up half-way would give up again on every restart.
        tx.batch_execute("SET LOCAL statement_timeout = 0").await?;
        if apply_one(&tx, "athena_schema_migrations", migration).await? {
            tracing::info!(migration = migration.1, "applied catalog migration");
            applied += 1;
        }
        tx.commit().await?;
    }
    Ok(applied)
}

/// Applies one migration in `tx` unless `record` (the table of applied
/// versions) has it; a recorded one must have the same checksum. Whether
/// it was applied now.
async fn apply_one(
    tx: &tokio_postgres::Transaction<'_>,
    record: &'static str,
    (version, name, sql): &(i64, &str, &str),
) -> Result<bool, DomainError> {
    let sum = checksum(sql);
    let recorded: Option<String> = tx
        .query_opt(
            &format!("SELECT checksum FROM {record} WHERE version = $1"),
            &[version],
        )
        .await?
        .map(|r| r.get(0));
    match recorded {
        Some(recorded) if recorded != sum => Err(DomainError::Internal(format!(
            "migration {name} was changed after it was applied (checksum {recorded} → {sum})"
        ))),
        Some(_) => Ok(false),
        None => {
            tx.batch_execute(sql).await?;
            tx.execute(
                &format!("INSERT INTO {record} (version, name, checksum) VALUES ($1, $2, $3)"),
                &[version, name, &sum],
            )
            .await?;
            Ok(true)
        }
    }
}

/// The advisory-lock key serializing tenant migrations in one tenant
/// database ("ATHENAT").
const TENANT_LOCK_KEY: i64 = 0x0041_5448_454e_4154;

/// The schema of the gateway's tables in a tenant database (storage
/// catalogs today; chat, billing, provisioning later). Apps may keep their
/// own tables in it too (the SDK's `athena.users`), so only the gateway's
/// tables are hidden from the data plane (`is_gateway_table`).
pub const TENANT_SCHEMA: &str = "athena";

/// Every table the tenant migration set creates in `TENANT_SCHEMA` (a test
/// reads the migrations and checks this list).
pub const TENANT_TABLES: &[&str] = &[
    "schema_migrations",
    "s3_catalogs",
    "s3_credentials",
    "files",
    "file_permissions",
    "audit_log_files",
    "multipart_uploads",
];

/// Billing (issue 15): the provider connections, canonical documents and
/// handled provider webhooks live in their own tenant schema (the contract
/// names them `billing.billing_*`), created by the same migration set.
pub const BILLING_SCHEMA: &str = "billing";

/// Every table the tenant migration set creates in `BILLING_SCHEMA`.
pub const BILLING_TABLES: &[&str] = &[
    "billing_provider_connections",
    "billing_payments",
    "billing_subscriptions",
    "billing_invoices",
    "billing_payment_links",
    "billing_webhook_events",
];

/// Chat (issue 20): rooms, members, messages, reactions, attachments and
/// the chat outbox live in their own tenant schema, created by the same
/// migration set.
pub const CHAT_SCHEMA: &str = "athena_chat";

/// Every table the tenant migration set creates in `CHAT_SCHEMA`.
pub const CHAT_TABLES: &[&str] = &[
    "rooms",
    "members",
    "messages",
    "reactions",
    "attachments",
    "outbox",
];

/// The tenant schemas that belong to the gateway whole (chat, billing):
/// unlike the shared `athena`, every table in them is the gateway's, so the
/// data plane, discovery, RPC and management DDL refuse the schema itself.
pub const GATEWAY_SCHEMAS: &[&str] = &[CHAT_SCHEMA, BILLING_SCHEMA];

/// Whether `schema` is one of `GATEWAY_SCHEMAS` (any letter case: a
/// differently cased name is refused too rather than guessed about).
pub fn is_gateway_schema(schema: &str) -> bool {
    GATEWAY_SCHEMAS
        .iter()
        .any(|s| s.eq_ignore_ascii_case(schema))
}

/// Whether `schema.table` is one of the gateway's own tenant tables, which
/// the structured data plane (schema cache, embedding) never shows: its
/// tables in `athena`, and any table of a `GATEWAY_SCHEMAS` schema.
pub fn is_gateway_table(schema: &str, table: &str) -> bool {
    (schema == TENANT_SCHEMA && TENANT_TABLES.contains(&table)) || is_gateway_schema(schema)
}

/// The `GATEWAY_SCHEMAS` that exist and belong to another role than the
/// login: like `athena` (`crate::db::schema_owned_by_login`), one prepared
/// by another role (a raw-SQL role planting a trigger) is refused. An
/// absent one is fine: the migration creates it as the login.
async fn foreign_gateway_schemas(
    tx: &tokio_postgres::Transaction<'_>,
) -> Result<Vec<String>, DomainError> {
    let schemas: Vec<String> = GATEWAY_SCHEMAS.iter().map(|s| s.to_string()).collect();
    Ok(tx
        .query_one(
            "SELECT COALESCE(array_agg(n.nspname::text ORDER BY n.nspname), '{}')
               FROM pg_catalog.pg_namespace n
              WHERE n.nspname = ANY($1)
                AND n.nspowner <> (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)",
            &[&schemas],
        )
        .await?
        .get(0))
}

/// Forgets that a tenant database was migrated (its tables went missing):
/// the next use runs the set again.
pub fn forget_tenant(uri: &str) {
    tenant_done().remove(uri);
}

fn tenant_done() -> std::sync::MutexGuard<'static, std::collections::HashSet<String>> {
    use std::sync::{LazyLock, Mutex};
    static DONE: LazyLock<Mutex<std::collections::HashSet<String>>> =
        LazyLock::new(Default::default);
    DONE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Applies the tenant migration set (`migrations/tenant/`) to a tenant
/// database, once per process and database (later calls return at once).
/// Each migration runs in its own transaction under a transaction-scoped
/// advisory lock, so replicas and concurrent first requests queue instead
/// of colliding, and a cancelled request leaves no lock behind. Recorded in
/// `athena.schema_migrations` with its checksum, like the catalog's. The
/// schema must belong to the tenant's login: one prepared by another role
/// is refused.
pub async fn tenant(tenant: &crate::db::tenants::Tenant) -> Result<(), DomainError> {
    if tenant_done().contains(&tenant.uri) {
        return Ok(());
    }
    let mut conn = tenant.pool.get().await?;
    for migration in TENANT_MIGRATIONS {
        let tx = conn.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&TENANT_LOCK_KEY])
            .await?;
        tx.batch_execute(
            "CREATE SCHEMA IF NOT EXISTS athena;
             CREATE TABLE IF NOT EXISTS athena.schema_migrations (
                 version bigint PRIMARY KEY,
                 name text NOT NULL,
                 checksum text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
        if !crate::db::schema_owned_by_login(&tx, TENANT_SCHEMA).await? {
            return Err(DomainError::Internal(
                "schema athena in the tenant database is owned by another role".into(),
            ));
        }
        let foreign = foreign_gateway_schemas(&tx).await?;
        if !foreign.is_empty() {
            return Err(DomainError::Internal(format!(
                "schema {} in the tenant database is owned by another role",
                foreign.join(", ")
            )));
        }
        if apply_one(&tx, "athena.schema_migrations", migration).await? {
            tracing::info!(migration = migration.1, client = %tenant.name, "applied tenant migration");
        }
        tx.commit().await?;
    }
    // Recorded but gone (dropped by hand, a partial restore): refuse
    // rather than answer from half a schema; an operator drops
    // `athena.schema_migrations` (or the whole set) to have it recreated.
    let tables: Vec<String> = TENANT_TABLES.iter().map(|t| t.to_string()).collect();
    let missing: Vec<String> = conn
        .query_one(
            "SELECT COALESCE(array_agg(t), '{}') FROM unnest($1::text[]) t
              WHERE to_regclass('athena.' || quote_ident(t)) IS NULL",
            &[&tables],
        )
        .await?
        .get(0);
    if !missing.is_empty() {
        return Err(DomainError::Internal(format!(
            "tenant tables athena.{{{}}} are recorded as migrated but missing",
            missing.join(",")
        )));
    }
    tenant_done().insert(tenant.uri.clone());
    Ok(())
}

// --- provisioning (issue 21): the tenant set on any database, counted ---

/// What `apply_tenant_set` did: the migrations and SQL statements it ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TenantApplied {
    pub migrations: usize,
    pub statements: usize,
}

/// Applies the pending migrations of the tenant set to the database behind
/// `conn` in ONE transaction (under the tenant advisory lock, so it queues
/// behind `tenant` and other provisioners) and counts what ran: a database
/// already provisioned executes nothing. The same checksum rules as
/// `tenant`; a schema `athena` owned by another role is refused.
pub async fn apply_tenant_set(
    conn: &mut tokio_postgres::Client,
) -> Result<TenantApplied, DomainError> {
    let tx = conn.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&TENANT_LOCK_KEY])
        .await?;
    tx.batch_execute(
        "CREATE SCHEMA IF NOT EXISTS athena;
         CREATE TABLE IF NOT EXISTS athena.schema_migrations (
             version bigint PRIMARY KEY,
             name text NOT NULL,
             checksum text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await?;
    if !crate::db::schema_owned_by_login(&tx, TENANT_SCHEMA).await? {
        return Err(DomainError::Conflict(
            "schema athena in the target database is owned by another role".into(),
        ));
    }
    let foreign = foreign_gateway_schemas(&tx).await?;
    if !foreign.is_empty() {
        return Err(DomainError::Conflict(format!(
            "schema {} in the target database is owned by another role",
            foreign.join(", ")
        )));
    }
    let mut applied = TenantApplied::default();
    for migration in TENANT_MIGRATIONS {
        if apply_one(&tx, "athena.schema_migrations", migration).await? {
            applied.migrations += 1;
            applied.statements += count_statements(migration.2);
        }
    }
    // Recorded but gone (dropped by hand, a partial restore): like
    // `tenant`, refuse rather than report a provisioned schema that is not
    // there; the operator drops `athena.schema_migrations` to rerun it.
    let tables = tenant_tables_qualified();
    let missing: Vec<String> = tx
        .query_one(
            "SELECT COALESCE(array_agg(t), '{}') FROM unnest($1::text[]) t
              WHERE to_regclass(quote_ident(split_part(t, '.', 1)) || '.' || quote_ident(split_part(t, '.', 2))) IS NULL",
            &[&tables],
        )
        .await?
        .get(0);
    if !missing.is_empty() {
        return Err(DomainError::Conflict(format!(
            "tenant tables {} are recorded as migrated but missing; drop athena.schema_migrations \
             to have the set applied again",
            missing.join(", ")
        )));
    }
    tx.commit().await?;
    Ok(applied)
}

/// Every gateway table of the tenant set, schema-qualified
/// (`athena.files`, `billing.billing_payments`).
pub fn tenant_tables_qualified() -> Vec<String> {
    TENANT_TABLES
        .iter()
        .map(|t| format!("{TENANT_SCHEMA}.{t}"))
        .chain(
            BILLING_TABLES
                .iter()
                .map(|t| format!("{BILLING_SCHEMA}.{t}")),
        )
        .collect()
}

/// The SQL statements in a migration: `;`-separated, ignoring those inside
/// quotes, quoted identifiers, dollar-quoted bodies and comments, and
/// empty ones.
pub fn count_statements(sql: &str) -> usize {
    let b = sql.as_bytes();
    let (mut i, mut count, mut content) = (0, 0, false);
    while i < b.len() {
        match b[i] {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
                continue;
            }
            q @ (b'\'' | b'"') => {
                content = true;
                i += 1;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
            }
            b'$' => {
                content = true;
                let end = b[i + 1..]
                    .iter()
                    .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
                    .map(|p| i + 1 + p);
                if let Some(end) = end.filter(|e| b[*e] == b'$') {
                    let tag = &sql[i..=end];
                    match sql[end + 1..].find(tag) {
                        Some(close) => i = end + 1 + close + tag.len() - 1,
                        None => i = b.len(),
                    }
                }
            }
            b';' => {
                if content {
                    count += 1;
                }
                content = false;
            }
            c if !c.is_ascii_whitespace() => content = true,
            _ => {}
        }
        i += 1;
    }
    count + usize::from(content)
}

// --- end provisioning ---

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_ordered_and_unique() {
        let versions: Vec<i64> = super::MIGRATIONS.iter().map(|(v, _, _)| *v).collect();
        let mut sorted = versions.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(versions, sorted);
        assert!(!versions.is_empty());
        let tenant: Vec<i64> = super::TENANT_MIGRATIONS
            .iter()
            .map(|(v, _, _)| *v)
            .collect();
        let mut sorted = tenant.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(tenant, sorted);
    }

    #[test]
    fn statements_are_counted_outside_quotes_and_bodies() {
        use super::count_statements as n;
        assert_eq!(n("SELECT 1; SELECT 2;"), 2);
        assert_eq!(n("SELECT ';'; -- a; b\n SELECT 2"), 2);
        assert_eq!(n("DO $$ BEGIN PERFORM 1; END $$; /* ; */ SELECT 1;"), 2);
        assert_eq!(n("DO $f$ BEGIN PERFORM 1; END $f$"), 1);
        assert_eq!(n("  ;  "), 0);
        for (_, _, sql) in super::TENANT_MIGRATIONS {
            assert!(n(sql) > 0);
        }
    }

    #[test]
    fn every_gateway_tenant_table_is_listed() {
        for (_, name, sql) in super::TENANT_MIGRATIONS {
            for part in sql.split("CREATE TABLE ").skip(1) {
                let table = part
                    .trim_start_matches("IF NOT EXISTS ")
                    .split(|c: char| c.is_whitespace() || c == '(')
                    .next()
                    .unwrap_or_default();
                if let Some(billing) = table.strip_prefix("billing.") {
                    assert!(
                        super::BILLING_TABLES.contains(&billing),
                        "{name}: billing.{billing} is missing from BILLING_TABLES"
                    );
                    continue;
                }
                if let Some(chat) = table.strip_prefix("athena_chat.") {
                    assert!(
                        super::CHAT_TABLES.contains(&chat),
                        "{name}: athena_chat.{chat} is missing from CHAT_TABLES"
                    );
                    continue;
                }
                let table = table.strip_prefix("athena.").unwrap_or_else(|| {
                    panic!("{name}: tenant tables live in schema athena, not `{table}`")
                });
                assert!(
                    super::TENANT_TABLES.contains(&table),
                    "{name}: athena.{table} is missing from TENANT_TABLES"
                );
            }
        }
    }
}
