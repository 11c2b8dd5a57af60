//! Client records (tenants): a name and where its PostgreSQL URI comes from.
//! Deletes are soft (`deleted_at`); a deleted client no longer routes and
//! saving the name again revives it.

use crate::db::Pool;
use crate::domain::DomainError;
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    pub id: Uuid,
    pub client_name: String,
    pub description: Option<String>,
    pub pg_uri: Option<String>,
    pub pg_uri_env_var: Option<String>,
    pub config_uri_template: Option<String>,
    pub source: String,
    pub is_active: bool,
    pub is_frozen: bool,
    pub last_synced_from_config_at: Option<DateTime<Utc>>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Client {
    /// The URI to connect with: the stored one, else the named variable.
    pub fn effective_uri(&self) -> Option<String> {
        self.pg_uri
            .clone()
            .or_else(|| {
                self.pg_uri_env_var
                    .as_deref()
                    .and_then(|v| std::env::var(v).ok())
            })
            .filter(|u| !u.trim().is_empty())
    }
}

/// Fields a save or update may set; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub description: Option<String>,
    pub pg_uri: Option<String>,
    pub pg_uri_env_var: Option<String>,
    pub is_active: Option<bool>,
}

const COLUMNS: &str = "id, client_name, description, pg_uri, pg_uri_env_var, config_uri_template, source, \
    is_active, is_frozen, last_synced_from_config_at, last_seen_at, metadata, created_at, updated_at, deleted_at";

fn from_row(r: &tokio_postgres::Row) -> Client {
    Client {
        id: r.get(0),
        client_name: r.get(1),
        description: r.get(2),
        pg_uri: r.get(3),
        pg_uri_env_var: r.get(4),
        config_uri_template: r.get(5),
        source: r.get(6),
        is_active: r.get(7),
        is_frozen: r.get(8),
        last_synced_from_config_at: r.get(9),
        last_seen_at: r.get(10),
        metadata: r.get(11),
        created_at: r.get(12),
        updated_at: r.get(13),
        deleted_at: r.get(14),
    }
}

/// Client names: what `X-Athena-Client` and the path segment may carry.
pub fn check_name(name: &str) -> Result<(), DomainError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(DomainError::Invalid(
            "client_name must be 1-63 characters: letters, digits, `_`, `.`, `-`".into(),
        ))
    }
}

fn check_changes(c: &Changes) -> Result<(), DomainError> {
    if let Some(uri) = &c.pg_uri {
        uri.parse::<tokio_postgres::Config>().map_err(|_| {
            DomainError::Invalid("pg_uri is not a valid PostgreSQL connection URI".into())
        })?;
    }
    if let Some(var) = &c.pg_uri_env_var {
        let ok = !var.is_empty()
            && var
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_uppercase() || b == b'_')
            && var
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !ok {
            return Err(DomainError::Invalid(
                "pg_uri_env_var must be an environment variable name (A-Z, 0-9, _)".into(),
            ));
        }
    }
    Ok(())
}

pub async fn list(pool: &Pool) -> Result<Vec<Client>, DomainError> {
    let conn = pool.get().await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM athena_clients WHERE deleted_at IS NULL ORDER BY client_name"
    );
    Ok(conn
        .query(sql.as_str(), &[])
        .await?
        .iter()
        .map(from_row)
        .collect())
}

/// A live (not deleted) client.
pub async fn get(pool: &Pool, name: &str) -> Result<Option<Client>, DomainError> {
    let conn = pool.get().await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM athena_clients WHERE client_name = $1 AND deleted_at IS NULL"
    );
    Ok(conn
        .query_opt(sql.as_str(), &[&name])
        .await?
        .as_ref()
        .map(from_row))
}

/// Creates the client or updates it (reviving a deleted one). A new client
/// needs `pg_uri` or `pg_uri_env_var`.
pub async fn save(pool: &Pool, name: &str, c: &Changes) -> Result<Client, DomainError> {
    check_name(name)?;
    check_changes(c)?;
    let conn = pool.get().await?;
    let sql = format!(
        "INSERT INTO athena_clients (client_name, description, pg_uri, pg_uri_env_var, is_active, source)
         VALUES ($1, $2, $3, $4, COALESCE($5, true), 'catalog')
         ON CONFLICT (client_name) DO UPDATE SET
             description = COALESCE($2, athena_clients.description),
             pg_uri = CASE WHEN $3::text IS NOT NULL OR $4::text IS NOT NULL THEN $3 ELSE athena_clients.pg_uri END,
             pg_uri_env_var = CASE WHEN $3::text IS NOT NULL OR $4::text IS NOT NULL THEN $4 ELSE athena_clients.pg_uri_env_var END,
             -- a revived client starts active, like a new one
             is_active = COALESCE($5, athena_clients.deleted_at IS NOT NULL OR athena_clients.is_active),
             source = 'catalog',
             deleted_at = NULL,
             updated_at = now()
         RETURNING {COLUMNS}"
    );
    let row = conn
        .query_one(
            sql.as_str(),
            &[
                &name,
                &c.description,
                &c.pg_uri,
                &c.pg_uri_env_var,
                &c.is_active,
            ],
        )
        .await
        .map_err(|e| match e.code().map(|s| s.code()) {
            Some("23514") => DomainError::Invalid("a client needs pg_uri or pg_uri_env_var".into()),
            _ => DomainError::from(e),
        })?;
    Ok(from_row(&row))
}

/// Creates a new client, never touching an existing row: `None` when the
/// name is taken (a deleted client's name too — only an explicit save
/// revives it). Provisioning registers through this, so it never re-points
/// a client someone else owns.
pub async fn create(pool: &Pool, name: &str, c: &Changes) -> Result<Option<Client>, DomainError> {
    check_name(name)?;
    check_changes(c)?;
    let conn = pool.get().await?;
    let sql = format!(
        "INSERT INTO athena_clients (client_name, description, pg_uri, pg_uri_env_var, is_active, source)
         VALUES ($1, $2, $3, $4, COALESCE($5, true), 'catalog')
         ON CONFLICT (client_name) DO NOTHING
         RETURNING {COLUMNS}"
    );
    let row = conn
        .query_opt(
            sql.as_str(),
            &[
                &name,
                &c.description,
                &c.pg_uri,
                &c.pg_uri_env_var,
                &c.is_active,
            ],
        )
        .await
        .map_err(|e| match e.code().map(|s| s.code()) {
            Some("23514") => DomainError::Invalid("a client needs pg_uri or pg_uri_env_var".into()),
            _ => DomainError::from(e),
        })?;
    Ok(row.as_ref().map(from_row))
}

/// Undoes a [`create`]: removes exactly that row (same id, unchanged since),
/// so the name is free again; a row someone changed meanwhile stays.
pub async fn discard_created(pool: &Pool, created: &Client) -> Result<bool, DomainError> {
    let conn = pool.get().await?;
    let n = conn
        .execute(
            "DELETE FROM athena_clients WHERE id = $1 AND updated_at = $2 AND deleted_at IS NULL",
            &[&created.id, &created.updated_at],
        )
        .await?;
    Ok(n == 1)
}

/// Updates a live client; `None` when there is none.
pub async fn update(pool: &Pool, name: &str, c: &Changes) -> Result<Option<Client>, DomainError> {
    check_changes(c)?;
    let conn = pool.get().await?;
    let sql = format!(
        "UPDATE athena_clients SET
             description = COALESCE($2, description),
             pg_uri = CASE WHEN $3::text IS NOT NULL OR $4::text IS NOT NULL THEN $3 ELSE pg_uri END,
             pg_uri_env_var = CASE WHEN $3::text IS NOT NULL OR $4::text IS NOT NULL THEN $4 ELSE pg_uri_env_var END,
             is_active = COALESCE($5, is_active),
             updated_at = now()
         WHERE client_name = $1 AND deleted_at IS NULL
         RETURNING {COLUMNS}"
    );
    let row = conn
        .query_opt(
            sql.as_str(),
            &[
                &name,
                &c.description,
                &c.pg_uri,
                &c.pg_uri_env_var,
                &c.is_active,
            ],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

pub async fn set_frozen(
    pool: &Pool,
    name: &str,
    frozen: bool,
) -> Result<Option<Client>, DomainError> {
    let conn = pool.get().await?;
    let sql = format!(
        "UPDATE athena_clients SET is_frozen = $2, updated_at = now()
         WHERE client_name = $1 AND deleted_at IS NULL RETURNING {COLUMNS}"
    );
    Ok(conn
        .query_opt(sql.as_str(), &[&name, &frozen])
        .await?
        .as_ref()
        .map(from_row))
}

/// Soft-deletes a live client, returning its last state.
pub async fn delete(pool: &Pool, name: &str) -> Result<Option<Client>, DomainError> {
    let conn = pool.get().await?;
    let sql = format!(
        "UPDATE athena_clients SET deleted_at = now(), is_active = false, updated_at = now()
         WHERE client_name = $1 AND deleted_at IS NULL RETURNING {COLUMNS}"
    );
    Ok(conn
        .query_opt(sql.as_str(), &[&name])
        .await?
        .as_ref()
        .map(from_row))
}

/// Seeds clients from the config file or environment. A seed updates a row
/// it created before, never one registered at runtime.
pub async fn seed(
    pool: &Pool,
    clients: &[(String, String)],
    source: &str,
) -> Result<(), DomainError> {
    let conn = pool.get().await?;
    for (name, uri) in clients {
        check_name(name)?;
        conn.execute(
            "INSERT INTO athena_clients (client_name, pg_uri, source, last_synced_from_config_at)
             VALUES ($1, $2, $3, now())
             ON CONFLICT (client_name) DO UPDATE
                SET pg_uri = EXCLUDED.pg_uri, updated_at = now(), deleted_at = NULL,
                    last_synced_from_config_at = now()
              WHERE athena_clients.source = EXCLUDED.source",
            &[name, uri, &source],
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_names() {
        for ok in ["app", "my_app-2", "a.b", "_x"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", "a b", "a;b", "ä", &"x".repeat(64)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn changes_are_validated() {
        let bad_uri = Changes {
            pg_uri: Some("not a uri ::".into()),
            ..Default::default()
        };
        assert!(check_changes(&bad_uri).is_err());
        let bad_var = Changes {
            pg_uri_env_var: Some("lower; rm".into()),
            ..Default::default()
        };
        assert!(check_changes(&bad_var).is_err());
        let ok = Changes {
            pg_uri: Some("postgres://u:p@h/db".into()),
            pg_uri_env_var: None,
            ..Default::default()
        };
        assert!(check_changes(&ok).is_ok());
    }
}
