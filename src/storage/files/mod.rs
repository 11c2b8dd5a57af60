//! Managed files (`/storage/files…`, issue 12): objects on a catalog's
//! store that belong to someone (`athena.files`), with grants
//! (`athena.file_permissions`) decided by `file_access::decide`, and an
//! audit row for every operation (`athena.audit_log_files`).
//!
//! This module holds the model and the one access path every operation
//! goes through (`file_for`, `grants` + `permits`, `audit`); each group of
//! operations has a submodule.

use super::file_access::{self, FileFacts, Grant, Permission, Visibility};
use super::objects::{check_object_key, DEFAULT_URL_TTL};
use super::s3::Call;
use super::service::Storage;
use crate::auth::end_user::{EndUser, Source};
use crate::db::tenants::Tenant;
use crate::domain::DomainError;
use chrono::{DateTime, Utc};
use http::Method;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

mod audit;
mod batch;
mod folders;
mod lifecycle;
mod list;
mod multipart;
mod permissions;
mod service;
mod stream;
mod upload;
mod url_cache;
mod versions;

pub use audit::AuditRequest;
pub use batch::{FileIdsRequest, UpdateManyRequest, VisibilityManyRequest};
pub use folders::{FolderDeleteRequest, FolderMoveRequest, FolderRequest};
pub use lifecycle::{CopyRequest, UpdateRequest};
pub use list::ListRequest;
pub use multipart::{MultipartComplete, MultipartCreate, MultipartRef, MultipartSignPart};
pub use permissions::{CheckRequest, GrantRequest, PermissionListRequest, RevokeRequest};
pub use service::{service_file, service_permission, ServiceListRequest, ServiceUploadRequest};
pub use stream::{ByteStream, Proxied, ProxyGrant, PART_SIZE};
pub use upload::{ConfirmRequest, UploadRequest, UploadsRequest};
pub use versions::RetentionRequest;

/// A row of `athena.files`.
#[derive(Debug, Clone)]
pub struct FileRow {
    pub id: Uuid,
    pub s3_id: Uuid,
    pub bucket: String,
    pub storage_key: String,
    pub name: String,
    pub original_name: Option<String>,
    pub mime_type: Option<String>,
    pub size_bytes: Option<i64>,
    pub checksum_sha256: Option<String>,
    pub resource_id: Option<String>,
    pub organization_id: String,
    pub uploaded_by: Option<String>,
    pub visibility: String,
    pub status: String,
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// The refusal of a key this user may not write (one text for every case).
const TAKEN: &str = "this storage key is not available to this user";

const COLUMNS: &str = "id, s3_id, bucket, storage_key, name, original_name, mime_type, size_bytes,
    checksum_sha256, resource_id, organization_id, uploaded_by_user_id, visibility, status,
    metadata, created_at, updated_at, deleted_at";

fn row(r: &tokio_postgres::Row) -> FileRow {
    FileRow {
        id: r.get(0),
        s3_id: r.get(1),
        bucket: r.get(2),
        storage_key: r.get(3),
        name: r.get(4),
        original_name: r.get(5),
        mime_type: r.get(6),
        size_bytes: r.get(7),
        checksum_sha256: r.get(8),
        resource_id: r.get(9),
        organization_id: r.get(10),
        uploaded_by: r.get(11),
        visibility: r.get(12),
        status: r.get(13),
        metadata: r.get(14),
        created_at: r.get(15),
        updated_at: r.get(16),
        deleted_at: r.get(17),
    }
}

impl FileRow {
    /// The contract's `StorageManagedFile`, plus the SDK's `visibility`
    /// (`is_public` and `visibility` both answered).
    pub fn view(&self) -> Value {
        let extension = self
            .name
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .filter(|e| !e.is_empty() && e.len() <= 16);
        let prefix = self
            .storage_key
            .rsplit_once('/')
            .map(|(p, _)| format!("{p}/"));
        json!({
            "id": self.id.to_string(),
            "name": self.name,
            "original_name": self.original_name,
            "url": Value::Null,
            "bucket": self.bucket,
            "s3_id": self.s3_id,
            "prefix_path": prefix,
            "size_bytes": self.size_bytes,
            "mime_type": self.mime_type,
            "resource_id": self.resource_id,
            "organization_id": self.organization_id,
            "metadata": self.metadata,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "storage_key": self.storage_key,
            "uploaded_by_user_id": self.uploaded_by,
            "extension": extension,
            "is_public": self.visibility == "public",
            "visibility": self.visibility,
            "status": self.status,
            "deleted_at": self.deleted_at,
        })
    }

    fn facts(&self) -> FileFacts<'_> {
        FileFacts {
            organization_id: &self.organization_id,
            uploaded_by: self.uploaded_by.as_deref(),
            visibility: Visibility::parse(&self.visibility).unwrap_or(Visibility::Private),
        }
    }
}

/// Grant rows as owned values (`Grant` borrows them).
struct GrantRow {
    file_id: Uuid,
    principal_type: String,
    principal_id: String,
    permission: String,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

fn pg(e: tokio_postgres::Error) -> DomainError {
    e.into()
}

/// A file id from the path (404 for anything that is not one: no file
/// is called that).
fn file_id(text: &str) -> Result<Uuid, DomainError> {
    Uuid::parse_str(text.trim()).map_err(|_| DomainError::not_found("file", text))
}

fn organization(user: &EndUser) -> Result<&str, DomainError> {
    user.organization_id.as_deref().ok_or_else(|| {
        DomainError::Invalid(
            "managed files belong to an organization: the end user has none (X-Organization-Id or the token's org_id)".into(),
        )
    })
}

fn text(field: &str, value: &Option<String>, max: usize) -> Result<(), DomainError> {
    match value {
        Some(v) if v.len() > max || v.chars().any(char::is_control) => {
            Err(DomainError::invalid_field(
                field,
                format!("at most {max} characters, no control characters"),
            ))
        }
        _ => Ok(()),
    }
}

/// The bucket a file is written to: end users write to their catalog's
/// bucket only; a trusted service may name another.
fn target_bucket(
    asked: Option<String>,
    catalog_bucket: Option<String>,
    user: &EndUser,
) -> Result<String, DomainError> {
    let asked = asked.filter(|b| !b.is_empty());
    // Only a trusted caller (a service, or trusted headers) names a bucket
    // other than the catalog's.
    let trusted = matches!(user.source, Source::TrustedHeaders | Source::Service);
    let bucket = match (asked, catalog_bucket) {
        (Some(b), _) if trusted => b,
        (Some(b), Some(c)) if b != c => {
            return Err(DomainError::invalid_field(
                "bucket",
                "end users write to their catalog's bucket only",
            ))
        }
        (_, Some(c)) => c,
        _ => {
            return Err(DomainError::invalid_field(
                "bucket",
                "the catalog names no bucket (a trusted service may name one)",
            ))
        }
    };
    crate::storage::endpoint::check_bucket(&bucket)?;
    Ok(bucket)
}

/// One audit row written through `c`; inside a transaction it is kept if
/// that commits.
async fn audit_on<C: tokio_postgres::GenericClient>(
    c: &C,
    tenant: &Tenant,
    operation: &str,
    status: &str,
    user: &EndUser,
    file: Option<&FileRow>,
    error: Option<&str>,
) -> Result<(), DomainError> {
    c.execute(
        "INSERT INTO athena.audit_log_files
           (client_name, file_id, operation, status, actor_user_id, organization_id, storage_key,
            error, actor_source)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &tenant.name,
            &file.map(|f| f.id),
            &operation,
            &status,
            &user.user(),
            &user.organization_id,
            &file.map(|f| f.storage_key.as_str()),
            &error,
            &user.source.as_str(),
        ],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

impl Storage {
    async fn files_tenant(&self, client: &str) -> Result<std::sync::Arc<Tenant>, DomainError> {
        self.tenant(client).await
    }

    /// The live grants of `files`, read in one query.
    async fn grants(tenant: &Tenant, files: &[Uuid]) -> Result<Vec<GrantRow>, DomainError> {
        let conn = tenant.pool.get().await?;
        let rows = conn
            .query(
                "SELECT file_id, principal_type, principal_id, permission, expires_at, revoked_at
                   FROM athena.file_permissions WHERE file_id = ANY($1) AND revoked_at IS NULL",
                &[&files],
            )
            .await
            .map_err(pg)?;
        Ok(rows
            .iter()
            .map(|r| GrantRow {
                file_id: r.get(0),
                principal_type: r.get(1),
                principal_id: r.get(2),
                permission: r.get(3),
                expires_at: r.get(4),
                revoked_at: r.get(5),
            })
            .collect())
    }

    /// Of `ids`, the live files of client `client` that `user` may read:
    /// the rule of `file_get` (soft-deleted and purged files are absent),
    /// for any number of files in two queries on `c` (the caller's
    /// connection or transaction: no second pool connection is taken).
    pub async fn readable_files<C: tokio_postgres::GenericClient>(
        c: &C,
        client: &str,
        user: &EndUser,
        ids: &[Uuid],
    ) -> Result<std::collections::HashSet<Uuid>, DomainError> {
        if ids.is_empty() {
            return Ok(Default::default());
        }
        let files: Vec<FileRow> = c
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM athena.files
                      WHERE id = ANY($1) AND client_name = $2
                        AND status NOT IN ('purged', 'soft_deleted')"
                ),
                &[&ids, &client],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(row)
            .collect();
        let grants: Vec<GrantRow> = c
            .query(
                "SELECT file_id, principal_type, principal_id, permission, expires_at, revoked_at
                   FROM athena.file_permissions WHERE file_id = ANY($1) AND revoked_at IS NULL",
                &[&ids],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(|r| GrantRow {
                file_id: r.get(0),
                principal_type: r.get(1),
                principal_id: r.get(2),
                permission: r.get(3),
                expires_at: r.get(4),
                revoked_at: r.get(5),
            })
            .collect();
        Ok(files
            .iter()
            .filter(|f| Self::permits(f, &grants, user, Permission::Read))
            .map(|f| f.id)
            .collect())
    }

    /// Whether `user` may do `wanted` to `file`, given grant rows read by
    /// `grants` (the rows of other files are skipped): the one rule.
    fn permits(file: &FileRow, rows: &[GrantRow], user: &EndUser, wanted: Permission) -> bool {
        let grants: Vec<Grant> = rows
            .iter()
            .filter(|g| g.file_id == file.id)
            .filter_map(|g| {
                Some(Grant {
                    principal_type: &g.principal_type,
                    principal_id: &g.principal_id,
                    permission: Permission::parse(&g.permission)?,
                    expires_at: g.expires_at,
                    revoked_at: g.revoked_at,
                })
            })
            .collect();
        file_access::decide(&file.facts(), &grants, user, wanted, Utc::now())
    }

    /// A live file `user` may do `wanted` to: unknown, another client's, or
    /// not even readable → 404; readable but not `wanted` → 403.
    async fn file_for(
        &self,
        tenant: &Tenant,
        id: &str,
        user: &EndUser,
        wanted: Permission,
    ) -> Result<FileRow, DomainError> {
        self.file_in(tenant, id, user, wanted, false, None).await
    }

    /// `file_for` for operation `op`, a refusal (403) written to the audit
    /// trail; with `deleted_too`, soft-deleted files are found as well
    /// (restore, purge: the same 404/403 answers; purged files never are).
    async fn file_op(
        &self,
        tenant: &Tenant,
        id: &str,
        user: &EndUser,
        wanted: Permission,
        deleted_too: bool,
        op: &str,
    ) -> Result<FileRow, DomainError> {
        self.file_in(tenant, id, user, wanted, deleted_too, Some(op))
            .await
    }

    async fn file_in(
        &self,
        tenant: &Tenant,
        id: &str,
        user: &EndUser,
        wanted: Permission,
        deleted_too: bool,
        op: Option<&str>,
    ) -> Result<FileRow, DomainError> {
        let id = file_id(id)?;
        // One connection at a time (a second taken while holding the first
        // starves the pool under concurrent reads).
        let found = tenant
            .pool
            .get()
            .await?
            .query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM athena.files
                      WHERE id = $1 AND client_name = $2 AND status <> 'purged'
                        AND ($3 OR status <> 'soft_deleted')"
                ),
                &[&id, &tenant.name, &deleted_too],
            )
            .await
            .map_err(pg)?
            .as_ref()
            .map(row)
            .ok_or_else(|| DomainError::not_found("file", id.to_string()))?;
        let grants = Self::grants(tenant, &[found.id]).await?;
        match (Self::judged(&found, &grants, user, wanted), op) {
            (Err(e @ DomainError::Forbidden(_)), Some(op)) => {
                Self::audit(
                    tenant,
                    op,
                    "denied",
                    user,
                    Some(&found),
                    Some(wanted.as_str()),
                )
                .await;
                Err(e)
            }
            (Err(e), _) => Err(e),
            (Ok(()), _) => Ok(found),
        }
    }

    /// The 404/403 answer of the access rule for one file.
    fn judged(
        file: &FileRow,
        grants: &[GrantRow],
        user: &EndUser,
        wanted: Permission,
    ) -> Result<(), DomainError> {
        if !Self::permits(file, grants, user, Permission::Read) {
            return Err(DomainError::not_found("file", file.id.to_string()));
        }
        if !Self::permits(file, grants, user, wanted) {
            return Err(DomainError::Forbidden(format!(
                "the end user may not {} this file",
                wanted.as_str()
            )));
        }
        Ok(())
    }

    /// One audit row (failures to write it are logged, never fatal).
    async fn audit(
        tenant: &Tenant,
        operation: &str,
        status: &str,
        user: &EndUser,
        file: Option<&FileRow>,
        error: Option<&str>,
    ) {
        let Ok(conn) = tenant.pool.get().await else {
            return;
        };
        let result = audit_on(&**conn, tenant, operation, status, user, file, error).await;
        if let Err(e) = result {
            tracing::warn!(error = %e, operation, "storage audit row not written");
        }
    }

    pub async fn file_get(
        &self,
        client: &str,
        user: &EndUser,
        id: &str,
    ) -> Result<FileRow, DomainError> {
        let tenant = self.files_tenant(client).await?;
        self.file_for(&tenant, id, user, Permission::Read).await
    }

    /// A file whose bytes may be handed out: `available`, or `pending`
    /// with its object uploaded — the SDK's single-PUT upload never calls
    /// confirm-upload, so the first read confirms it as confirm-upload
    /// would (the object is there, the size declared at upload matches).
    /// Anything else: 400.
    async fn bytes_ready(
        &self,
        tenant: &Tenant,
        client: &str,
        user: &EndUser,
        file: FileRow,
    ) -> Result<FileRow, DomainError> {
        if file.status == "available" {
            return Ok(file);
        }
        if file.status == "pending" {
            let (store, _) = self.catalog_store(client, file.s3_id).await?;
            let size = self
                .object_head(&store, &file.bucket, &file.storage_key)
                .await?
                .map(|head| {
                    head.header("content-length")
                        .and_then(|s| s.parse::<i64>().ok())
                });
            if let Some(size) = size {
                if file.size_bytes.is_none() || file.size_bytes == size {
                    let file = self.mark_available(tenant, &store, &file, size).await?;
                    Self::audit(
                        tenant,
                        "confirm_upload",
                        "available",
                        user,
                        Some(&file),
                        Some("on first read"),
                    )
                    .await;
                    return Ok(file);
                }
            }
        }
        Err(DomainError::Invalid(format!(
            "the file is {}, not available (upload its bytes, or confirm the upload)",
            file.status
        )))
    }

    /// A presigned GET for a readable, available file (`purpose` read,
    /// download or stream is recorded in the answer).
    pub async fn file_url(
        &self,
        client: &str,
        user: &EndUser,
        id: &str,
        purpose: Option<&str>,
    ) -> Result<Value, DomainError> {
        let purpose = purpose.unwrap_or("read");
        if !matches!(purpose, "read" | "download" | "stream") {
            return Err(DomainError::invalid_field(
                "purpose",
                "read, download or stream",
            ));
        }
        let tenant = self.files_tenant(client).await?;
        let file = self.file_for(&tenant, id, user, Permission::Read).await?;
        let file = self.bytes_ready(&tenant, client, user, file).await?;
        // Authorized above: only now may a cached answer be used, and only
        // one for the object the row names now (a drop that did not reach
        // Redis never serves a URL of a key the file has left).
        if let Some(hit) = self.cached_url(client, file.id, purpose).await.filter(|h| {
            h["bucket"] == file.bucket.as_str() && h["storage_key"] == file.storage_key.as_str()
        }) {
            Self::audit(&tenant, "url", "ok", user, Some(&file), Some("cached")).await;
            return Ok(hit);
        }
        let (store, _) = self.catalog_store(client, file.s3_id).await?;
        let url = store.presign(
            &Method::GET,
            &file.bucket,
            &file.storage_key,
            DEFAULT_URL_TTL,
            &[],
        )?;
        Self::audit(&tenant, "url", "ok", user, Some(&file), None).await;
        let answer = presigned(&file, purpose, url, DEFAULT_URL_TTL);
        self.cache_url(client, file.id, purpose, &answer, DEFAULT_URL_TTL)
            .await;
        Ok(answer)
    }

    /// Deletes the object and soft-deletes the row.
    pub async fn file_delete(
        &self,
        client: &str,
        user: &EndUser,
        id: &str,
    ) -> Result<FileRow, DomainError> {
        let tenant = self.files_tenant(client).await?;
        let file = self.file_for(&tenant, id, user, Permission::Delete).await?;
        let (store, _) = self.catalog_store(client, file.s3_id).await?;
        // The row first (a racing confirm cannot bring it back), then the
        // object; a store failure leaves a soft-deleted row to retry from.
        let conn = tenant.pool.get().await?;
        let updated = conn
            .query_opt(
                &format!(
                    "UPDATE athena.files SET status = 'soft_deleted', deleted_at = now(), updated_at = now()
                      WHERE id = $1 AND status NOT IN ('soft_deleted', 'purged') RETURNING {COLUMNS}"
                ),
                &[&file.id],
            )
            .await
            .map_err(pg)?
            .ok_or_else(|| DomainError::not_found("file", file.id.to_string()))?;
        // One pooled connection at a time (the audit takes its own).
        drop(conn);
        let file = row(&updated);
        self.forget_urls(client, file.id).await;
        let call = Call::new(Method::DELETE, Some(&file.bucket), Some(&file.storage_key));
        if let Err(e) = self.s3.send(&store, call, &file.storage_key).await {
            Self::audit(
                &tenant,
                "delete",
                "failed",
                user,
                Some(&file),
                Some("the object was not deleted"),
            )
            .await;
            return Err(e);
        }
        Self::audit(&tenant, "delete", "ok", user, Some(&file), None).await;
        Ok(file)
    }
}

impl Storage {
    /// Sets who may read a file (`share` or ownership needed).
    pub async fn file_visibility(
        &self,
        client: &str,
        user: &EndUser,
        id: &str,
        visibility: Visibility,
    ) -> Result<FileRow, DomainError> {
        let tenant = self.files_tenant(client).await?;
        let visibility = visibility.as_str();
        // Decided and written under the file's row lock, like grant and
        // revoke: a `share` revoked before this commits is seen here.
        let mut conn = tenant.pool.get().await?;
        let tx = conn.transaction().await.map_err(pg)?;
        let (tx, file) =
            permissions::locked_file(tx, &tenant, id, user, &[Permission::Share], "visibility")
                .await?;
        let updated = tx
            .query_opt(
                &format!(
                    "UPDATE athena.files SET visibility = $2, updated_at = now()
                      WHERE id = $1 AND status NOT IN ('soft_deleted', 'purged') RETURNING {COLUMNS}"
                ),
                &[&file.id, &visibility],
            )
            .await
            .map_err(pg)?
            .ok_or_else(|| DomainError::not_found("file", file.id.to_string()))?;
        tx.commit().await.map_err(pg)?;
        // One pooled connection at a time (the audit takes its own).
        drop(conn);
        let file = row(&updated);
        self.forget_urls(client, file.id).await;
        Self::audit(
            &tenant,
            "visibility",
            "ok",
            user,
            Some(&file),
            Some(visibility),
        )
        .await;
        Ok(file)
    }
}

/// `StorageManagedFilePresignedUrl`.
fn presigned(file: &FileRow, purpose: &str, url: String, ttl: u32) -> Value {
    let expires = Utc::now() + chrono::Duration::seconds(i64::from(ttl));
    json!({
        "file_id": file.id.to_string(),
        "bucket": file.bucket,
        "storage_key": file.storage_key,
        "purpose": purpose,
        "url": url,
        "expires_at": expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "expires_at_epoch_seconds": expires.timestamp(),
        "expires_in": ttl,
        "cache_hit": false,
        "cache_layer": "none",
    })
}
