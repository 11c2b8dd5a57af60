//! The S3 catalog rows of one tenant database (`athena.s3_catalogs`,
//! `athena.s3_credentials`, created by `migrations/tenant/0001_*`). Secrets
//! arrive here already sealed (`src/secrets.rs`); nothing here returns them.

use crate::db::tenants::Tenant;
use crate::domain::DomainError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

/// A catalog as the contract's `S3CatalogItem` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Catalog {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub endpoint: String,
    pub region: String,
    pub bucket: Option<String>,
    pub provider: String,
    pub is_active: bool,
    pub active_credential_id: Option<Uuid>,
    pub active_access_key: Option<String>,
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An active credential with its catalog (`S3CredentialListItem`).
#[derive(Debug, Clone, Serialize)]
pub struct CredentialItem {
    pub id: Uuid,
    pub s3_id: Uuid,
    pub name: String,
    pub description: String,
    pub endpoint: String,
    pub region: String,
    pub bucket: Option<String>,
    pub provider: String,
    pub access_key: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The associated data a credential's secrets are sealed with
/// (`src/secrets.rs`): the client, the catalog, the credential and the
/// field, so a ciphertext opens only where it was written.
pub fn credential_context(client: &str, catalog: Uuid, credential: Uuid, field: &str) -> String {
    format!("athena:v1:s3_credentials:{client}:{catalog}:{credential}:{field}")
}

/// A new credential, its secrets sealed (`credential_context`).
pub struct SealedCredential {
    pub id: Uuid,
    pub access_key_id: String,
    pub secret: Vec<u8>,
    pub session_token: Option<Vec<u8>>,
}

/// The settings of a catalog row (everything but the credential).
pub struct Settings {
    pub name: String,
    pub description: String,
    pub endpoint: String,
    pub region: String,
    pub bucket: Option<String>,
    pub provider: String,
    pub metadata: Value,
    pub is_active: bool,
}

const SELECT: &str =
    "SELECT c.id, c.name, c.description, c.endpoint, c.region, c.bucket, c.provider,
        c.is_active, c.active_credential_id, k.access_key_id, c.metadata, c.created_at, c.updated_at
   FROM athena.s3_catalogs c
   LEFT JOIN athena.s3_credentials k ON k.id = c.active_credential_id AND k.is_active";

fn catalog(r: &tokio_postgres::Row) -> Catalog {
    Catalog {
        id: r.get(0),
        name: r.get(1),
        description: r.get(2),
        endpoint: r.get(3),
        region: r.get(4),
        bucket: r.get(5),
        provider: r.get(6),
        is_active: r.get(7),
        active_credential_id: r.get(8),
        active_access_key: r.get(9),
        metadata: r.get(10),
        created_at: r.get(11),
        updated_at: r.get(12),
    }
}

/// A unique violation on the live-name index: a 400 naming the field (the
/// contract documents no 409 here).
fn name_taken(tenant: &Tenant, e: tokio_postgres::Error, name: &str) -> DomainError {
    if e.as_db_error().is_some_and(|d| d.code().code() == "23505") {
        DomainError::invalid_field(
            "name",
            format!("an S3 catalog named `{name}` already exists"),
        )
    } else {
        pg(tenant, e)
    }
}

/// A database error of a catalog statement. The tables gone (dropped
/// through raw SQL, a restored dump): forget that the tenant was migrated,
/// so the next request creates them again, and answer 503 meanwhile.
fn pg(tenant: &Tenant, e: tokio_postgres::Error) -> DomainError {
    match e.as_db_error().map(|d| d.code().code()) {
        Some("42P01" | "3F000") => {
            crate::db::migrate::forget_tenant(&tenant.uri);
            DomainError::ServiceUnavailable(format!(
                "the S3 catalog tables of client `{}` are missing; retry to recreate them",
                tenant.name
            ))
        }
        _ => e.into(),
    }
}

pub async fn list(tenant: &Tenant) -> Result<Vec<Catalog>, DomainError> {
    let conn = tenant.pool.get().await?;
    let rows = conn
        .query(
            &format!(
                "{SELECT} WHERE c.client_name = $1 AND c.deleted_at IS NULL ORDER BY c.created_at, c.id"
            ),
            &[&tenant.name],
        )
        .await
        .map_err(|e| pg(tenant, e))?;
    Ok(rows.iter().map(catalog).collect())
}

/// A live catalog (`None` when unknown or deleted).
pub async fn get(tenant: &Tenant, id: Uuid) -> Result<Option<Catalog>, DomainError> {
    let conn = tenant.pool.get().await?;
    let row = conn
        .query_opt(
            &format!("{SELECT} WHERE c.id = $1 AND c.client_name = $2 AND c.deleted_at IS NULL"),
            &[&id, &tenant.name],
        )
        .await
        .map_err(|e| pg(tenant, e))?;
    Ok(row.as_ref().map(catalog))
}

/// Inserts a catalog and its first (active) credential in one transaction.
pub async fn create(
    tenant: &Tenant,
    id: Uuid,
    s: &Settings,
    credential: &SealedCredential,
) -> Result<Catalog, DomainError> {
    let mut conn = tenant.pool.get().await?;
    let tx = conn.transaction().await?;
    tx.execute(
        "INSERT INTO athena.s3_catalogs
             (id, name, description, endpoint, region, bucket, provider, metadata, is_active,
              client_name)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &id,
            &s.name,
            &s.description,
            &s.endpoint,
            &s.region,
            &s.bucket,
            &s.provider,
            &s.metadata,
            &s.is_active,
            &tenant.name,
        ],
    )
    .await
    .map_err(|e| name_taken(tenant, e, &s.name))?;
    add_credential(&tx, id, credential).await?;
    tx.commit().await?;
    get(tenant, id)
        .await?
        .ok_or_else(|| DomainError::Internal("a created catalog is missing".into()))
}

/// Makes `credential` the catalog's only active one (rotation).
async fn add_credential(
    tx: &tokio_postgres::Transaction<'_>,
    catalog: Uuid,
    c: &SealedCredential,
) -> Result<(), DomainError> {
    tx.execute(
        "UPDATE athena.s3_credentials SET is_active = false, deactivated_at = now()
          WHERE catalog_id = $1 AND is_active",
        &[&catalog],
    )
    .await?;
    tx.execute(
        "INSERT INTO athena.s3_credentials
             (id, catalog_id, access_key_id, secret_ciphertext, session_token_ciphertext)
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &c.id,
            &catalog,
            &c.access_key_id,
            &c.secret,
            &c.session_token,
        ],
    )
    .await?;
    tx.execute(
        "UPDATE athena.s3_catalogs SET active_credential_id = $2, updated_at = clock_timestamp() WHERE id = $1",
        &[&catalog, &c.id],
    )
    .await?;
    Ok(())
}

/// What an update found.
pub enum Updated {
    Done(Box<Catalog>),
    /// Unknown or deleted.
    Missing,
    /// Changed since `seen`: read it again.
    Changed,
}

/// Replaces a live catalog's settings and, with `credential`, rotates it,
/// if the row is still as it was at `seen` (its `updated_at`).
pub async fn update(
    tenant: &Tenant,
    id: Uuid,
    seen: DateTime<Utc>,
    s: &Settings,
    credential: Option<&SealedCredential>,
) -> Result<Updated, DomainError> {
    let mut conn = tenant.pool.get().await?;
    let tx = conn.transaction().await?;
    let n = tx
        .execute(
            "UPDATE athena.s3_catalogs
                SET name = $2, description = $3, endpoint = $4, region = $5, bucket = $6,
                    provider = $7, metadata = $8, is_active = $9, updated_at = clock_timestamp()
              WHERE id = $1 AND deleted_at IS NULL AND updated_at = $10 AND client_name = $11",
            &[
                &id,
                &s.name,
                &s.description,
                &s.endpoint,
                &s.region,
                &s.bucket,
                &s.provider,
                &s.metadata,
                &s.is_active,
                &seen,
                &tenant.name,
            ],
        )
        .await
        .map_err(|e| name_taken(tenant, e, &s.name))?;
    if n == 0 {
        let live: Option<bool> = tx
            .query_opt(
                "SELECT deleted_at IS NULL FROM athena.s3_catalogs WHERE id = $1 AND client_name = $2",
                &[&id, &tenant.name],
            )
            .await
        .map_err(|e| pg(tenant, e))?
            .map(|r| r.get(0));
        return Ok(match live {
            Some(true) => Updated::Changed,
            _ => Updated::Missing,
        });
    }
    if let Some(c) = credential {
        add_credential(&tx, id, c).await?;
    }
    tx.commit().await?;
    Ok(match get(tenant, id).await? {
        Some(c) => Updated::Done(Box::new(c)),
        None => Updated::Missing,
    })
}

/// Soft-deletes a live catalog and deactivates its credentials; whether
/// it existed.
pub async fn delete(tenant: &Tenant, id: Uuid) -> Result<bool, DomainError> {
    let mut conn = tenant.pool.get().await?;
    let tx = conn.transaction().await?;
    let n = tx
        .execute(
            "UPDATE athena.s3_catalogs
                SET deleted_at = now(), is_active = false, active_credential_id = NULL,
                    updated_at = now()
              WHERE id = $1 AND client_name = $2 AND deleted_at IS NULL",
            &[&id, &tenant.name],
        )
        .await
        .map_err(|e| pg(tenant, e))?;
    if n == 0 {
        return Ok(false);
    }
    tx.execute(
        "UPDATE athena.s3_credentials SET is_active = false, deactivated_at = now()
          WHERE catalog_id = $1 AND is_active",
        &[&id],
    )
    .await
    .map_err(|e| pg(tenant, e))?;
    tx.commit().await?;
    Ok(true)
}

/// The active credentials of live catalogs.
pub async fn credentials(tenant: &Tenant) -> Result<Vec<CredentialItem>, DomainError> {
    let conn = tenant.pool.get().await?;
    let rows = conn
        .query(
            "SELECT k.id, c.id, c.name, c.description, c.endpoint, c.region, c.bucket, c.provider,
                    k.access_key_id, k.created_at, c.updated_at
               FROM athena.s3_credentials k
               JOIN athena.s3_catalogs c ON c.id = k.catalog_id
              WHERE k.is_active AND c.client_name = $1 AND c.deleted_at IS NULL
              ORDER BY c.created_at, c.id",
            &[&tenant.name],
        )
        .await
        .map_err(|e| pg(tenant, e))?;
    Ok(rows
        .iter()
        .map(|r| CredentialItem {
            id: r.get(0),
            s3_id: r.get(1),
            name: r.get(2),
            description: r.get(3),
            endpoint: r.get(4),
            region: r.get(5),
            bucket: r.get(6),
            provider: r.get(7),
            access_key: r.get(8),
            created_at: r.get(9),
            updated_at: r.get(10),
        })
        .collect())
}

/// A live, active catalog with its active credential, sealed.
pub struct ActiveCredential {
    pub catalog: Catalog,
    pub credential_id: Uuid,
    pub access_key_id: String,
    pub secret: Vec<u8>,
    pub session_token: Option<Vec<u8>>,
}

/// The catalog `id` of this client with its active credential (`None`
/// when unknown, deleted, deactivated or without a credential).
pub async fn active_credential(
    tenant: &Tenant,
    id: Uuid,
) -> Result<Option<ActiveCredential>, DomainError> {
    let conn = tenant.pool.get().await?;
    let row = conn
        .query_opt(
            &format!(
                "SELECT s.*, k.secret_ciphertext, k.session_token_ciphertext FROM ({SELECT}
                  WHERE c.id = $1 AND c.client_name = $2 AND c.deleted_at IS NULL AND c.is_active) s
                  JOIN athena.s3_credentials k ON k.id = s.active_credential_id AND k.is_active"
            ),
            &[&id, &tenant.name],
        )
        .await
        .map_err(|e| pg(tenant, e))?;
    Ok(row.and_then(|r| {
        let catalog = catalog(&r);
        Some(ActiveCredential {
            credential_id: catalog.active_credential_id?,
            access_key_id: catalog.active_access_key.clone()?,
            secret: r.get(13),
            session_token: r.get(14),
            catalog,
        })
    }))
}
