//! Local databases (issue 21): databases on a registered client's own
//! PostgreSQL server. `CREATE DATABASE` with strictly validated, quoted
//! names, then the tenant schema, then the client registration; a failed
//! later step drops the new database again.

use super::{Provisioned, Registration};
use crate::db::tenants::Tenants;
use crate::domain::DomainError;
use serde_json::{json, Value};

/// A `CREATE DATABASE` request (admin or management).
#[derive(Debug, Clone, Default)]
pub struct Create {
    pub database_name: String,
    pub owner: Option<String>,
    pub template: Option<String>,
    pub encoding: Option<String>,
    pub lc_collate: Option<String>,
    pub lc_ctype: Option<String>,
    pub tablespace: Option<String>,
    pub provision_schema: bool,
    pub register_catalog: bool,
    pub register_runtime: bool,
    pub register_name: Option<String>,
    pub description: Option<String>,
}

/// An Athena-managed database of a server.
#[derive(Debug, Clone)]
pub struct Managed {
    pub database_name: String,
    pub client_name: Option<String>,
    pub is_active: Option<bool>,
    pub is_frozen: Option<bool>,
    pub source: Option<String>,
}

/// The server's databases (`pg_database`, templates left out) and those
/// Athena created on it.
pub async fn list(
    tenants: &Tenants,
    server_client: &str,
) -> Result<(Vec<String>, Vec<Managed>), DomainError> {
    let tenant = server(tenants, server_client).await?;
    let conn = tenant.pool.get().await?;
    let all: Vec<String> = conn
        .query(
            "SELECT datname FROM pg_catalog.pg_database WHERE NOT datistemplate ORDER BY datname",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    drop(conn);
    let catalog = tenants.catalog().get().await?;
    let managed = catalog
        .query(
            "SELECT d.database_name, d.client_name, c.is_active, c.is_frozen, c.source
               FROM athena_provisioned_databases d
               LEFT JOIN athena_clients c ON c.client_name = d.client_name AND c.deleted_at IS NULL
              WHERE d.server_client = $1 AND d.kind = 'local'
              ORDER BY d.database_name",
            &[&server_client],
        )
        .await?
        .iter()
        .filter(|r| all.contains(&r.get::<_, String>(0)))
        .map(|r| Managed {
            database_name: r.get(0),
            client_name: r.get(1),
            is_active: r.get(2),
            is_frozen: r.get(3),
            source: r.get(4),
        })
        .collect();
    Ok((all, managed))
}

async fn server(
    tenants: &Tenants,
    client: &str,
) -> Result<std::sync::Arc<crate::db::tenants::Tenant>, DomainError> {
    tenants.resolve(client).await.map_err(|e| match e {
        DomainError::NotFound { .. } => DomainError::invalid_field(
            "client_name",
            format!("client `{client}` is not registered"),
        ),
        e => e,
    })
}

/// Encoding and locale values: letters, digits, `_`, `-`, `.`, `@`.
fn setting(field: &str, raw: &str) -> Result<String, DomainError> {
    let ok = !raw.is_empty()
        && raw.len() <= 63
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'@'));
    if ok {
        Ok(format!("'{raw}'"))
    } else {
        Err(DomainError::invalid_field(
            field,
            "must be 1-63 characters: letters, digits, `_`, `-`, `.`, `@`",
        ))
    }
}

/// The `CREATE DATABASE` statement: every name strict and quoted, every
/// setting from a closed grammar.
pub fn create_statement(c: &Create) -> Result<String, DomainError> {
    let mut sql = format!(
        "CREATE DATABASE {}",
        super::strict_name("database_name", &c.database_name)?
    );
    if let Some(o) = &c.owner {
        sql += &format!(" OWNER {}", super::strict_name("owner", o)?);
    }
    if let Some(t) = &c.template {
        sql += &format!(" TEMPLATE {}", super::strict_name("template", t)?);
    }
    if let Some(e) = &c.encoding {
        sql += &format!(" ENCODING {}", setting("encoding", e)?);
    }
    if let Some(l) = &c.lc_collate {
        sql += &format!(" LC_COLLATE {}", setting("lc_collate", l)?);
    }
    if let Some(l) = &c.lc_ctype {
        sql += &format!(" LC_CTYPE {}", setting("lc_ctype", l)?);
    }
    if let Some(t) = &c.tablespace {
        sql += &format!(" TABLESPACE {}", super::strict_name("tablespace", t)?);
    }
    Ok(sql)
}

/// Creates the database on `server_client`'s server, provisions and
/// registers it; the JSON answer (no URI in it).
pub async fn create(
    tenants: &Tenants,
    server_client: &str,
    c: &Create,
) -> Result<Value, DomainError> {
    let sql = create_statement(c)?;
    let registration = (c.register_catalog || c.register_runtime).then(|| Registration {
        client_name: c
            .register_name
            .clone()
            .unwrap_or_else(|| c.database_name.clone()),
        description: c.description.clone(),
        catalog: c.register_catalog,
        runtime: c.register_runtime,
    });
    if let Some(r) = &registration {
        super::check_registration(r)?;
        if crate::catalog::clients::get(tenants.catalog(), &r.client_name)
            .await?
            .is_some()
        {
            return Err(DomainError::Conflict(format!(
                "client `{}` is already registered",
                r.client_name
            )));
        }
    }
    let tenant = server(tenants, server_client).await?;
    let server_uri = tenant.uri.clone();
    let uri = super::with_database(&server_uri, &c.database_name)?;
    let conn = tenant.pool.get().await?;
    conn.batch_execute(&sql).await.map_err(|e| {
        match e.code().map(|s| s.code()) {
            Some("42P04") => {
                DomainError::Conflict(format!("database `{}` already exists", c.database_name))
            }
            // Unknown owner, template, tablespace, encoding, locale.
            Some("42704" | "22023" | "0A000" | "3D000" | "55006") => {
                DomainError::Invalid(format!("CREATE DATABASE refused: {}", db_message(&e)))
            }
            Some("42501") => DomainError::Forbidden(format!(
                "the client's login may not create databases: {}",
                db_message(&e)
            )),
            _ => DomainError::from(e),
        }
    })?;
    drop(conn);
    tracing::info!(client = server_client, database = %c.database_name, "local database created");
    match finish(tenants, server_client, &uri, c, registration.as_ref()).await {
        Ok(out) => Ok(json!({
            "client_name": server_client,
            "database_name": c.database_name,
            "created": true,
            "provisioned": c.provision_schema,
            "statements_executed": out.statements_executed,
            "tables": if c.provision_schema { out.tables } else { Vec::new() },
            "registered_catalog": out.registered_catalog,
            "registered_runtime": out.registered_runtime,
            "registered_client": out.registered,
        })),
        Err(e) => {
            // Undo: the database. Registration is the last step and
            // removes its own row when it fails, so no catalog row of this
            // call is left (and a row someone else saved is never touched).
            let drop_sql = format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                super::strict_name("database_name", &c.database_name)?
            );
            match tenant.pool.get().await {
                Ok(conn) => {
                    if let Err(d) = conn.batch_execute(&drop_sql).await {
                        tracing::warn!(database = %c.database_name, error = %d, "dropping a half-provisioned database failed");
                    }
                }
                Err(d) => {
                    tracing::warn!(database = %c.database_name, error = %d, "dropping a half-provisioned database failed")
                }
            }
            Err(e)
        }
    }
}

async fn finish(
    tenants: &Tenants,
    server_client: &str,
    uri: &str,
    c: &Create,
    registration: Option<&Registration>,
) -> Result<Provisioned, DomainError> {
    let mut out = Provisioned::default();
    if c.provision_schema {
        let applied = super::provision_trusted(tenants, uri).await?;
        out = super::provisioned(applied);
    }
    let catalog = tenants.catalog().get().await?;
    catalog
        .execute(
            "INSERT INTO athena_provisioned_databases (server_client, database_name, client_name, kind)
             VALUES ($1, $2, $3, 'local')
             ON CONFLICT (server_client, database_name) DO UPDATE SET client_name = EXCLUDED.client_name",
            &[
                &server_client,
                &c.database_name,
                &registration.map(|r| r.client_name.clone()),
            ],
        )
        .await?;
    drop(catalog);
    if let Some(r) = registration {
        super::register(tenants, uri, r, &mut out).await?;
    }
    Ok(out)
}

fn db_message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| "refused".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_statement_quotes_and_refuses() {
        let c = Create {
            database_name: "shop".into(),
            owner: Some("app_owner".into()),
            template: Some("template0".into()),
            encoding: Some("UTF8".into()),
            lc_collate: Some("C.UTF-8".into()),
            ..Create::default()
        };
        assert_eq!(
            create_statement(&c).unwrap(),
            "CREATE DATABASE \"shop\" OWNER \"app_owner\" TEMPLATE \"template0\" ENCODING 'UTF8' LC_COLLATE 'C.UTF-8'"
        );
        let bad = Create {
            database_name: "shop".into(),
            encoding: Some("UTF8' OWNER x --".into()),
            ..Create::default()
        };
        assert!(create_statement(&bad).is_err());
    }
}
