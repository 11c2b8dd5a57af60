//! Provisioning (issue 21): bootstrapping Athena's tenant schema in a
//! database and registering it as a client.
//!
//! - [`provision_and_register`] is THE shared step every way of getting a
//!   database ends with (a caller's URI, a local database, a Docker
//!   instance, a clone, a hosted provider): validate the URI (security.md
//!   §1), apply the tenant migration set, register the client.
//! - `local`: databases created on a client's own server.
//! - `deps`: the local tools (`pg_dump`, `pg_restore`, `psql`, `docker`).
//! - `clones`: phased clone jobs (pg_dump → pg_restore, streamed).
//!
//! Passwords and URIs with passwords never reach logs, job rows or
//! responses: only `crate::config::redact`ed forms do.

pub mod clones;
pub mod deps;
pub mod docker;
pub mod instances;
pub mod local;
pub mod pipeline;

use crate::catalog::clients::{self, Changes};
use crate::db::direct::{self, DirectPools};
use crate::db::migrate::{self, TenantApplied};
use crate::db::tenants::Tenants;
use crate::domain::DomainError;
use std::sync::Arc;

/// Provisioning settings (`src/config.rs`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// `DOCKER_HOST`: `unix:///path` or `tcp://host:port`; unset: the
    /// default socket `/var/run/docker.sock` when it exists.
    pub docker_host: Option<String>,
    /// `ATHENA_PROVISION_PATH`: where `pg_dump`, `pg_restore`, `psql`,
    /// `docker` and package managers are looked up (default `PATH`).
    pub tool_path: Option<String>,
    /// `ATHENA_ALLOW_DEPENDENCY_INSTALL=1`: `POST …/dependencies/install`
    /// may run the package manager.
    pub allow_dependency_install: bool,
    /// `ATHENA_CLONE_WORKERS` (default 1; 0: no clone worker here).
    pub clone_workers: usize,
    /// `ATHENA_PROVISION_PUBLIC_BIND=1`: a Docker instance's `host` may be
    /// a non-loopback address (default: loopback only).
    pub public_bind: bool,
    /// `ATHENA_CLONE_LEASE_SECS` (default 120): a running clone's lease,
    /// renewed every third of it; a dead replica's clone is taken over
    /// after it runs out (`clones.rs`).
    pub clone_lease: std::time::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            docker_host: None,
            tool_path: None,
            allow_dependency_install: false,
            clone_workers: 1,
            public_bind: false,
            clone_lease: clones::DEFAULT_LEASE,
        }
    }
}

/// The provisioning services, one field of `Handlers`.
pub struct Provisioning {
    pub tenants: Arc<Tenants>,
    pub direct: Arc<DirectPools>,
    pub secrets: Option<crate::secrets::Secrets>,
    /// Where a `tcp://` Docker host may be reached.
    pub outbound: Arc<crate::outbound::OutboundPolicy>,
    pub clones: Arc<clones::Clones>,
    pub settings: Settings,
}

/// How a provisioned database is registered as a client.
#[derive(Debug, Clone)]
pub struct Registration {
    pub client_name: String,
    pub description: Option<String>,
    /// Write the catalog row (`athena_clients`).
    pub catalog: bool,
    /// Route to it at once: the runtime view (`Tenants`) is reloaded and a
    /// connection opened through it.
    pub runtime: bool,
}

/// What [`provision_and_register`] did.
#[derive(Debug, Clone, Default)]
pub struct Provisioned {
    /// SQL statements of the migrations applied now (0 on a rerun).
    pub statements_executed: usize,
    pub migrations_applied: usize,
    /// The gateway's tables of the tenant set, schema-qualified.
    pub tables: Vec<String>,
    /// The client registered, when one was.
    pub registered: Option<String>,
    pub registered_catalog: bool,
    pub registered_runtime: bool,
}

/// Validates a caller-supplied PostgreSQL URI (`uri`, `source_uri`,
/// `connection_uri`) as security.md §1 asks and opens it through the
/// outbound policy: username and non-empty password required (401),
/// refused hosts/parameters (400), loopback/private addresses only when
/// `ATHENA_OUTBOUND_ALLOW` lists them (403), unreachable → 503. `field`
/// names the input in errors.
pub async fn open_direct(
    direct: &DirectPools,
    field: &str,
    uri: &str,
) -> Result<Arc<crate::db::tenants::Tenant>, DomainError> {
    let target = direct::parse(uri).map_err(|e| e.into_domain(field))?;
    direct
        .resolve(&target, crate::outbound::caller())
        .await
        .map_err(|e| match e {
            // "Wrong credentials" for a provisioning target is a bad input,
            // not the caller's own authentication failing.
            DomainError::Unauthorized(m) => DomainError::invalid_field(field, m),
            e => e,
        })
}

/// The shared "provision + register a client from a URI" step (issue 21).
///
/// 1. `uri` is validated and opened per security.md §1 ([`open_direct`]):
///    the caller's URI never connects anywhere the outbound policy refuses,
///    and nothing comes from the gateway's environment.
/// 2. The tenant migration set (`migrations/tenant/`) is applied in ONE
///    transaction ([`migrate::apply_tenant_set`]); a database already
///    provisioned executes 0 statements.
/// 3. With `registration`: the catalog row is saved (`pg_uri` = `uri`,
///    stored as given: the catalog's `pg_uri` is the gateway's own trusted
///    configuration from then on) and/or the runtime view is reloaded and a
///    connection opened through it, so `X-Athena-Client: <name>` routes at
///    once on every replica (the catalog change notifies them).
///
/// Errors: 400 (bad URI / name), 401-as-400 (refused credentials), 403
/// (outbound policy), 409 (schema owned by another role), 503 (unreachable).
pub async fn provision_and_register(
    tenants: &Tenants,
    direct: &DirectPools,
    uri: &str,
    registration: Option<&Registration>,
) -> Result<Provisioned, DomainError> {
    if let Some(r) = registration {
        check_registration(r)?;
    }
    let target = open_direct(direct, "uri", uri).await?;
    let mut conn = target.pool.get().await?;
    let applied = migrate::apply_tenant_set(&mut conn).await?;
    drop(conn);
    let mut out = provisioned(applied);
    if let Some(r) = registration {
        register(tenants, uri, r, &mut out).await?;
    }
    Ok(out)
}

/// Bootstraps a database the gateway already trusts (a registered client's
/// URI, a database it just created on such a server): no outbound check.
pub async fn provision_trusted(tenants: &Tenants, uri: &str) -> Result<TenantApplied, DomainError> {
    // One connection, not a pool: a failed connect (TLS, credentials)
    // surfaces as itself rather than as a pool checkout timeout.
    let settings = tenants.default_settings();
    let (mut config, mode) = crate::db::tls::config_from_uri(uri)?;
    settings.configure(&mut config);
    let client =
        settings.tls.connect(&config, mode).await.map_err(
            |e| match crate::db::tls::tls_failure(&e, mode) {
                Some(why) => DomainError::ServiceUnavailable(why),
                None => DomainError::Unavailable(e.to_string()),
            },
        )?;
    let mut conn: crate::db::conn::Conn = client.into();
    migrate::apply_tenant_set(&mut conn).await
}

/// The registration part of [`provision_and_register`], for databases
/// provisioned by a trusted path. The catalog row is CREATED, never
/// upserted: a taken name (a deleted client's too) is a 409, so no
/// provisioning call re-points an existing client. Returns the row this
/// call inserted (the only one a caller's undo may remove); a failed
/// runtime step removes it again before returning the error.
pub async fn register(
    tenants: &Tenants,
    uri: &str,
    r: &Registration,
    out: &mut Provisioned,
) -> Result<Option<clients::Client>, DomainError> {
    check_registration(r)?;
    let mut created = None;
    if r.catalog {
        let row = clients::create(
            tenants.catalog(),
            &r.client_name,
            &Changes {
                description: r.description.clone(),
                pg_uri: Some(uri.to_string()),
                ..Changes::default()
            },
        )
        .await?
        .ok_or_else(|| {
            DomainError::Conflict(format!(
                "client `{}` is already registered (or deleted and not yet purged)",
                r.client_name
            ))
        })?;
        created = Some(row);
        out.registered_catalog = true;
    }
    tenants.evict(&r.client_name).await;
    if r.runtime {
        let check = async {
            let tenant = tenants.resolve(&r.client_name).await?;
            drop(tenant.pool.get().await?);
            Ok::<(), DomainError>(())
        };
        if let Err(e) = check.await {
            if let Some(row) = &created {
                let _ = clients::discard_created(tenants.catalog(), row).await;
                tenants.evict(&r.client_name).await;
            }
            out.registered_catalog = false;
            return Err(e);
        }
        out.registered_runtime = true;
    }
    out.registered = Some(r.client_name.clone());
    Ok(created)
}

fn check_registration(r: &Registration) -> Result<(), DomainError> {
    clients::check_name(&r.client_name)?;
    if r.runtime && !r.catalog {
        // The runtime view is the catalog's (src/db/tenants.rs): there is
        // no runtime-only client.
        return Err(DomainError::Invalid(
            "register_runtime needs register_catalog: the runtime registry is read from the catalog"
                .into(),
        ));
    }
    Ok(())
}

fn provisioned(applied: TenantApplied) -> Provisioned {
    Provisioned {
        statements_executed: applied.statements,
        migrations_applied: applied.migrations,
        tables: migrate::tenant_tables_qualified(),
        ..Provisioned::default()
    }
}

/// `POST /admin/provision` with `client_name`: the registered client's own
/// database (its catalog URI).
pub async fn provision_client(tenants: &Tenants, client: &str) -> Result<Provisioned, DomainError> {
    let tenant = tenants.resolve(client).await.map_err(|e| match e {
        DomainError::NotFound { .. } => DomainError::invalid_field(
            "client_name",
            format!("client `{client}` is not registered"),
        ),
        e => e,
    })?;
    let mut conn = tenant.pool.get().await?;
    let applied = migrate::apply_tenant_set(&mut conn).await?;
    // The storage/billing services cache "migrated": a new set re-checks.
    migrate::forget_tenant(&tenant.uri);
    Ok(provisioned(applied))
}

/// `GET /admin/provision/status`: which gateway tables the client's
/// database has.
#[derive(Debug, Clone)]
pub struct Status {
    pub present: Vec<String>,
    pub missing: Vec<String>,
}

pub async fn status(tenants: &Tenants, client: &str) -> Result<Status, DomainError> {
    let tenant = tenants.resolve(client).await.map_err(|e| match e {
        DomainError::NotFound { .. } => {
            DomainError::ServiceUnavailable(format!("client `{client}` is not registered"))
        }
        e => e,
    })?;
    let conn = tenant.pool.get().await?;
    let tables = migrate::tenant_tables_qualified();
    let present: Vec<String> = conn
        .query_one(
            "SELECT COALESCE(array_agg(t ORDER BY o), '{}') FROM unnest($1::text[]) WITH ORDINALITY u(t, o)
              WHERE to_regclass(quote_ident(split_part(t, '.', 1)) || '.' || quote_ident(split_part(t, '.', 2))) IS NOT NULL",
            &[&tables],
        )
        .await?
        .get(0);
    let missing = tables
        .into_iter()
        .filter(|t| !present.contains(t))
        .collect();
    Ok(Status { present, missing })
}

/// `uri` with its database replaced by `database` (a `postgres://` URL).
pub fn with_database(uri: &str, database: &str) -> Result<String, DomainError> {
    let mut url = url::Url::parse(uri).map_err(|_| {
        DomainError::Invalid("the client's PostgreSQL URI is not a postgres:// URL".into())
    })?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(DomainError::Invalid(
            "the client's PostgreSQL URI is not a postgres:// URL".into(),
        ));
    }
    // Callers pass strict names (`strict_name`): nothing to encode.
    if !database
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(DomainError::invalid_field(
            "database_name",
            "not a strict name",
        ));
    }
    url.set_path(&format!("/{database}"));
    Ok(url.to_string())
}

/// Strict names: database, owner, template, tablespace (letters, digits,
/// `_`, `-`; a letter or `_` first; at most 63 bytes). Written quoted.
pub fn strict_name(
    field: &str,
    raw: &str,
) -> Result<crate::domain::identifier::Ident, DomainError> {
    let ok = !raw.is_empty()
        && raw.len() <= 63
        && raw
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        return Err(DomainError::invalid_field(
            field,
            "must be 1-63 characters: letters, digits, `_`, `-`, starting with a letter or `_`",
        ));
    }
    crate::domain::identifier::Ident::parse(field, raw)
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_is_replaced_in_the_uri() {
        assert_eq!(
            super::with_database("postgres://u:p@h:5432/old?sslmode=disable", "new_db").unwrap(),
            "postgres://u:p@h:5432/new_db?sslmode=disable"
        );
        assert!(super::with_database("host=h dbname=x", "y").is_err());
    }

    #[test]
    fn strict_names() {
        assert!(super::strict_name("database_name", "shop_1").is_ok());
        assert!(super::strict_name("database_name", "a-b").is_ok());
        for bad in ["", "1x", "a\"b", "a b", "a;drop", &"x".repeat(64)] {
            assert!(super::strict_name("database_name", bad).is_err(), "{bad}");
        }
    }
}
