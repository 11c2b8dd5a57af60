//! API keys, their grants, runtime-defined rights, and enforcement
//! settings, as stored in the catalog.

use crate::auth::rights::{Right as NativeRight, NATIVE};
use crate::db::Pool;
use crate::domain::DomainError;
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub id: Uuid,
    pub public_id: String,
    pub secret_hash: Vec<u8>,
    pub name: String,
    pub description: Option<String>,
    pub client_name: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub is_active: bool,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub rights: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct NewKey {
    pub name: String,
    pub description: Option<String>,
    pub client_name: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub rights: Vec<String>,
    /// Its IP settings (`catalog::ip_policy`), stored in the same
    /// transaction.
    pub ip: super::ip_policy::NewPolicy,
}

/// `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct KeyChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub client_name: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub is_active: Option<bool>,
    pub rights: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Right {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClientEnforcement {
    pub client_name: String,
    pub enforce_api_keys: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GlobalEnforcement {
    pub enforce_api_keys: bool,
    pub updated_at: DateTime<Utc>,
}

const KEY_SELECT: &str = "SELECT k.id, k.public_id, k.secret_hash, k.name, k.description, k.client_name, k.expires_at,
        k.is_active, u.last_used_at, k.created_at, k.updated_at,
        COALESCE(array_agg(g.right_name ORDER BY g.right_name) FILTER (WHERE g.right_name IS NOT NULL), '{}')
   FROM athena_api_keys k
   LEFT JOIN athena_api_key_usage u ON u.api_key_id = k.id
   LEFT JOIN athena_api_key_grants g ON g.api_key_id = k.id";
const KEY_GROUP: &str = "GROUP BY k.id, u.last_used_at";

fn key_row(r: &tokio_postgres::Row) -> ApiKey {
    ApiKey {
        id: r.get(0),
        public_id: r.get(1),
        secret_hash: r.get(2),
        name: r.get(3),
        description: r.get(4),
        client_name: r.get(5),
        expires_at: r.get(6),
        is_active: r.get(7),
        last_used_at: r.get(8),
        created_at: r.get(9),
        updated_at: r.get(10),
        rights: r.get(11),
    }
}

fn right_row(r: &tokio_postgres::Row) -> Right {
    Right {
        id: r.get(0),
        name: r.get(1),
        description: r.get(2),
        created_at: r.get(3),
        updated_at: r.get(4),
    }
}

/// The pepper for key hashes: created once, shared by every replica.
pub async fn pepper(pool: &Pool) -> Result<Vec<u8>, DomainError> {
    let conn = pool.get().await?;
    let mut fresh = [0u8; 32];
    getrandom::fill(&mut fresh)
        .map_err(|e| DomainError::Internal(format!("no randomness: {e}")))?;
    conn.execute(
        "INSERT INTO athena_secrets (name, value) VALUES ('api_key_pepper', $1) ON CONFLICT (name) DO NOTHING",
        &[&fresh.as_slice()],
    )
    .await?;
    let row = conn
        .query_one(
            "SELECT value FROM athena_secrets WHERE name = 'api_key_pepper'",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

pub async fn list_keys(pool: &Pool) -> Result<Vec<ApiKey>, DomainError> {
    let conn = pool.get().await?;
    let sql = format!("{KEY_SELECT} {KEY_GROUP} ORDER BY k.created_at, k.id");
    Ok(conn
        .query(sql.as_str(), &[])
        .await?
        .iter()
        .map(key_row)
        .collect())
}

pub async fn key_by_public_id(pool: &Pool, public_id: &str) -> Result<Option<ApiKey>, DomainError> {
    let conn = pool.get().await?;
    let sql = format!("{KEY_SELECT} WHERE k.public_id = $1 {KEY_GROUP}");
    Ok(conn
        .query_opt(sql.as_str(), &[&public_id])
        .await?
        .as_ref()
        .map(key_row))
}

async fn key_by_id(
    conn: &impl tokio_postgres::GenericClient,
    id: Uuid,
) -> Result<Option<ApiKey>, DomainError> {
    let sql = format!("{KEY_SELECT} WHERE k.id = $1 {KEY_GROUP}");
    Ok(conn
        .query_opt(sql.as_str(), &[&id])
        .await?
        .as_ref()
        .map(key_row))
}

/// Every right name must be native or defined at runtime.
async fn check_rights(
    conn: &impl tokio_postgres::GenericClient,
    rights: &[String],
) -> Result<(), DomainError> {
    let dynamic: Vec<String> = conn
        .query("SELECT name FROM athena_api_key_rights", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for right in rights {
        let native = NativeRight::parse(right).is_some();
        let wildcard = right
            .strip_suffix(".*")
            .is_some_and(|p| NATIVE.iter().any(|(n, _)| n.starts_with(p)));
        if !(native || wildcard || dynamic.contains(right)) {
            return Err(DomainError::Invalid(format!(
                "unknown right `{right}` (see GET /admin/rights/catalog)"
            )));
        }
    }
    Ok(())
}

async fn replace_grants(
    tx: &tokio_postgres::Transaction<'_>,
    id: Uuid,
    rights: &[String],
) -> Result<(), DomainError> {
    tx.execute(
        "DELETE FROM athena_api_key_grants WHERE api_key_id = $1",
        &[&id],
    )
    .await?;
    tx.execute(
        "INSERT INTO athena_api_key_grants (api_key_id, right_name) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
        &[&id, &rights],
    )
    .await?;
    Ok(())
}

pub async fn create_key(
    pool: &Pool,
    new: &NewKey,
    public_id: &str,
    secret_hash: &[u8],
) -> Result<ApiKey, DomainError> {
    if new.name.trim().is_empty() {
        return Err(DomainError::Invalid("name must not be empty".into()));
    }
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    check_rights(&tx, &new.rights).await?;
    let row = tx
        .query_one(
            "INSERT INTO athena_api_keys (public_id, secret_hash, name, description, client_name, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[
                &public_id,
                &secret_hash,
                &new.name,
                &new.description,
                &new.client_name,
                &new.expires_at,
            ],
        )
        .await?;
    let id: Uuid = row.get(0);
    replace_grants(&tx, id, &new.rights).await?;
    super::ip_policy::store_new(&tx, id, &new.ip).await?;
    let key = key_by_id(&tx, id)
        .await?
        .ok_or_else(|| DomainError::Internal("created key vanished".into()))?;
    tx.commit().await?;
    Ok(key)
}

pub async fn update_key(
    pool: &Pool,
    id: Uuid,
    c: &KeyChanges,
) -> Result<Option<ApiKey>, DomainError> {
    if c.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(DomainError::Invalid("name must not be empty".into()));
    }
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let updated = tx
        .execute(
            "UPDATE athena_api_keys SET
                 name = COALESCE($2, name),
                 description = COALESCE($3, description),
                 client_name = COALESCE($4, client_name),
                 expires_at = COALESCE($5, expires_at),
                 is_active = COALESCE($6, is_active),
                 updated_at = now()
             WHERE id = $1",
            &[
                &id,
                &c.name,
                &c.description,
                &c.client_name,
                &c.expires_at,
                &c.is_active,
            ],
        )
        .await?;
    if updated == 0 {
        return Ok(None);
    }
    if let Some(rights) = &c.rights {
        check_rights(&tx, rights).await?;
        replace_grants(&tx, id, rights).await?;
    }
    let key = key_by_id(&tx, id).await?;
    tx.commit().await?;
    Ok(key)
}

pub async fn delete_key(pool: &Pool, id: Uuid) -> Result<bool, DomainError> {
    let conn = pool.get().await?;
    Ok(conn
        .execute("DELETE FROM athena_api_keys WHERE id = $1", &[&id])
        .await?
        > 0)
}

pub async fn record_use(pool: &Pool, id: Uuid) -> Result<(), DomainError> {
    let conn = pool.get().await?;
    conn.execute(
        "INSERT INTO athena_api_key_usage (api_key_id, last_used_at) VALUES ($1, now())
         ON CONFLICT (api_key_id) DO UPDATE SET last_used_at = now()",
        &[&id],
    )
    .await?;
    Ok(())
}

pub async fn list_rights(pool: &Pool) -> Result<Vec<Right>, DomainError> {
    let conn = pool.get().await?;
    let rows = conn
        .query("SELECT id, name, description, created_at, updated_at FROM athena_api_key_rights ORDER BY name", &[])
        .await?;
    Ok(rows.iter().map(right_row).collect())
}

fn check_right_name(name: &str) -> Result<(), DomainError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'*')
        });
    if ok {
        Ok(())
    } else {
        Err(DomainError::Invalid(
            "right names are dot-separated lowercase segments (a-z, 0-9, _)".into(),
        ))
    }
}

pub async fn create_right(
    pool: &Pool,
    name: &str,
    description: Option<&str>,
) -> Result<Right, DomainError> {
    check_right_name(name)?;
    let conn = pool.get().await?;
    let row = conn
        .query_one(
            "INSERT INTO athena_api_key_rights (name, description) VALUES ($1, $2)
             RETURNING id, name, description, created_at, updated_at",
            &[&name, &description],
        )
        .await?;
    Ok(right_row(&row))
}

/// Renames or redescribes a runtime right; grants follow the rename.
pub async fn update_right(
    pool: &Pool,
    id: Uuid,
    name: &str,
    description: Option<&str>,
) -> Result<Option<Right>, DomainError> {
    check_right_name(name)?;
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let Some(old) = tx
        .query_opt(
            "SELECT name FROM athena_api_key_rights WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await?
    else {
        return Ok(None);
    };
    let old: String = old.get(0);
    let row = tx
        .query_one(
            "UPDATE athena_api_key_rights SET name = $2, description = COALESCE($3, description), updated_at = now()
             WHERE id = $1 RETURNING id, name, description, created_at, updated_at",
            &[&id, &name, &description],
        )
        .await?;
    tx.execute(
        "UPDATE athena_api_key_grants SET right_name = $2 WHERE right_name = $1",
        &[&old, &name],
    )
    .await?;
    tx.commit().await?;
    Ok(Some(right_row(&row)))
}

/// Deletes a runtime right and every grant of it.
pub async fn delete_right(pool: &Pool, id: Uuid) -> Result<bool, DomainError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let Some(row) = tx
        .query_opt(
            "DELETE FROM athena_api_key_rights WHERE id = $1 RETURNING name",
            &[&id],
        )
        .await?
    else {
        return Ok(false);
    };
    let name: String = row.get(0);
    tx.execute(
        "DELETE FROM athena_api_key_grants WHERE right_name = $1",
        &[&name],
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

pub async fn global_enforcement(pool: &Pool) -> Result<GlobalEnforcement, DomainError> {
    let conn = pool.get().await?;
    let row = conn
        .query_one(
            "SELECT enforce_api_keys, updated_at FROM athena_api_key_config",
            &[],
        )
        .await?;
    Ok(GlobalEnforcement {
        enforce_api_keys: row.get(0),
        updated_at: row.get(1),
    })
}

pub async fn set_global_enforcement(
    pool: &Pool,
    enforce: bool,
) -> Result<GlobalEnforcement, DomainError> {
    let conn = pool.get().await?;
    let row = conn
        .query_one(
            "UPDATE athena_api_key_config SET enforce_api_keys = $1, updated_at = now() RETURNING enforce_api_keys, updated_at",
            &[&enforce],
        )
        .await?;
    Ok(GlobalEnforcement {
        enforce_api_keys: row.get(0),
        updated_at: row.get(1),
    })
}

fn client_row(r: &tokio_postgres::Row) -> ClientEnforcement {
    ClientEnforcement {
        client_name: r.get(0),
        enforce_api_keys: r.get(1),
        created_at: r.get(2),
        updated_at: r.get(3),
    }
}

pub async fn client_enforcements(pool: &Pool) -> Result<Vec<ClientEnforcement>, DomainError> {
    let conn = pool.get().await?;
    let rows = conn
        .query("SELECT client_name, enforce_api_keys, created_at, updated_at FROM athena_api_key_clients ORDER BY client_name", &[])
        .await?;
    Ok(rows.iter().map(client_row).collect())
}

pub async fn set_client_enforcement(
    pool: &Pool,
    client: &str,
    enforce: bool,
) -> Result<ClientEnforcement, DomainError> {
    crate::catalog::clients::check_name(client)?;
    let conn = pool.get().await?;
    let row = conn
        .query_one(
            "INSERT INTO athena_api_key_clients (client_name, enforce_api_keys) VALUES ($1, $2)
             ON CONFLICT (client_name) DO UPDATE SET enforce_api_keys = EXCLUDED.enforce_api_keys, updated_at = now()
             RETURNING client_name, enforce_api_keys, created_at, updated_at",
            &[&client, &enforce],
        )
        .await?;
    Ok(client_row(&row))
}

pub async fn delete_client_enforcement(pool: &Pool, client: &str) -> Result<bool, DomainError> {
    let conn = pool.get().await?;
    Ok(conn
        .execute(
            "DELETE FROM athena_api_key_clients WHERE client_name = $1",
            &[&client],
        )
        .await?
        > 0)
}
