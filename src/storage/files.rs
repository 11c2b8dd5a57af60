//! Managed files (`/storage/files…`, issue 12): objects on a catalog's
//! store that belong to someone (`athena.files`), with grants
//! (`athena.file_permissions`) decided by `file_access::decide`, and an
//! audit row for every operation (`athena.audit_log_files`). Built so far:
//! upload URL, confirm, get, download URL, delete.

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

/// `POST /storage/files/upload-url` (`StorageManagedFileUploadUrlRequest`).
#[derive(Debug, Deserialize)]
pub struct UploadRequest {
    #[serde(alias = "s3Id")]
    pub s3_id: String,
    pub bucket: Option<String>,
    pub storage_key: String,
    pub name: Option<String>,
    pub original_name: Option<String>,
    pub resource_id: Option<String>,
    pub mime_type: Option<String>,
    pub content_type: Option<String>,
    pub size_bytes: Option<i64>,
    pub public: Option<bool>,
    pub metadata: Option<Map<String, Value>>,
}

/// `POST /storage/files/{file_id}/confirm-upload`: what the uploader
/// expects the object to be.
#[derive(Debug, Default, Deserialize)]
pub struct ConfirmRequest {
    pub size_bytes: Option<i64>,
    pub checksum_sha256: Option<String>,
}

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
        let id = file_id(id)?;
        let conn = tenant.pool.get().await?;
        let found = conn
            .query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM athena.files
                      WHERE id = $1 AND client_name = $2 AND status NOT IN ('soft_deleted', 'purged')"
                ),
                &[&id, &tenant.name],
            )
            .await
            .map_err(pg)?
            .as_ref()
            .map(row)
            .ok_or_else(|| DomainError::not_found("file", id.to_string()))?;
        let grants = Self::grants(tenant, &[found.id]).await?;
        if !Self::permits(&found, &grants, user, Permission::Read) {
            return Err(DomainError::not_found("file", id.to_string()));
        }
        if !Self::permits(&found, &grants, user, wanted) {
            return Err(DomainError::Forbidden(format!(
                "the end user may not {} this file",
                wanted.as_str()
            )));
        }
        Ok(found)
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
        let result = conn
            .execute(
                "INSERT INTO athena.audit_log_files
                   (client_name, file_id, operation, status, actor_user_id, organization_id, storage_key, error)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &tenant.name,
                    &file.map(|f| f.id),
                    &operation,
                    &status,
                    &user.user_id,
                    &user.organization_id,
                    &file.map(|f| f.storage_key.as_str()),
                    &error,
                ],
            )
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, operation, "storage audit row not written");
        }
    }

    /// Creates (or, for a writer, replaces) the row of an object and
    /// presigns its upload: `{file, upload}`.
    pub async fn file_upload_url(
        &self,
        client: &str,
        user: &EndUser,
        r: UploadRequest,
    ) -> Result<Value, DomainError> {
        check_object_key("storage_key", &r.storage_key)?;
        for (field, value, max) in [
            ("name", &r.name, 512),
            ("original_name", &r.original_name, 512),
            ("resource_id", &r.resource_id, 256),
            ("mime_type", &r.mime_type, 255),
        ] {
            text(field, value, max)?;
        }
        if r.size_bytes.is_some_and(|n| n < 0) {
            return Err(DomainError::invalid_field("size_bytes", "0 or more"));
        }
        // Checked before anything is written: it is signed into the URL.
        let content_type =
            super::objects::content_type(&r.content_type.clone().or(r.mime_type.clone()))?
                .map(str::to_string);
        let org = organization(user)?.to_string();
        let s3_id = Uuid::parse_str(r.s3_id.trim())
            .map_err(|_| DomainError::invalid_field("s3_id", "not a UUID"))?;
        let (store, catalog_bucket) = self.catalog_store(client, s3_id).await?;
        // End users write to the catalog's bucket only; a trusted service
        // may name another.
        let asked = r.bucket.clone().filter(|b| !b.is_empty());
        let bucket = match (asked, catalog_bucket, user.source) {
            (Some(b), _, Source::TrustedHeaders) => b,
            (Some(b), Some(c), Source::Jwt) if b != c => {
                return Err(DomainError::invalid_field(
                    "bucket",
                    "end users write to their catalog's bucket only",
                ))
            }
            (_, Some(c), _) => c,
            _ => {
                return Err(DomainError::invalid_field(
                    "bucket",
                    "the catalog names no bucket (a trusted service may name one)",
                ))
            }
        };
        super::endpoint::check_bucket(&bucket)?;
        let tenant = self.files_tenant(client).await?;
        let name = r.name.clone().unwrap_or_else(|| {
            r.storage_key
                .rsplit('/')
                .next()
                .unwrap_or(&r.storage_key)
                .to_string()
        });
        let metadata = Value::Object(r.metadata.clone().unwrap_or_default());
        // An existing live row: its writer may replace it.
        let existing = {
            let conn = tenant.pool.get().await?;
            conn.query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM athena.files
                      WHERE client_name = $1 AND s3_id = $2 AND bucket = $3 AND storage_key = $4
                        AND status <> 'purged'"
                ),
                &[&tenant.name, &s3_id, &bucket, &r.storage_key],
            )
            .await
            .map_err(pg)?
            .as_ref()
            .map(row)
        };
        let file = match existing {
            Some(f) => {
                // One answer whether the key holds someone's unreadable file
                // or a file this user may only read.
                let grants = Self::grants(&tenant, &[f.id]).await?;
                if !Self::permits(&f, &grants, user, Permission::Write) {
                    Self::audit(&tenant, "upload_url", "denied", user, Some(&f), None).await;
                    return Err(DomainError::Forbidden(TAKEN.into()));
                }
                // Changing who may read it needs `share` (or ownership);
                // fields not sent are kept.
                let visibility = r.public.map(|p| if p { "public" } else { "private" });
                if visibility.is_some_and(|v| v != f.visibility)
                    && !Self::permits(&f, &grants, user, Permission::Share)
                {
                    Self::audit(
                        &tenant,
                        "upload_url",
                        "denied",
                        user,
                        Some(&f),
                        Some("visibility"),
                    )
                    .await;
                    return Err(DomainError::Forbidden(
                        "changing who may read this file needs the share permission".into(),
                    ));
                }
                let conn = tenant.pool.get().await?;
                let updated = conn
                    .query_opt(
                        &format!(
                            "UPDATE athena.files SET name = COALESCE($2, name),
                                 original_name = COALESCE($3, original_name), mime_type = COALESCE($4, mime_type),
                                 size_bytes = $5, resource_id = COALESCE($6, resource_id),
                                 visibility = COALESCE($7, visibility), metadata = COALESCE($8, metadata),
                                 checksum_sha256 = NULL, status = 'pending', deleted_at = NULL, updated_at = now()
                              WHERE id = $1 AND status <> 'purged' RETURNING {COLUMNS}"
                        ),
                        &[
                            &f.id,
                            &r.name,
                            &r.original_name,
                            &content_type,
                            &r.size_bytes,
                            &r.resource_id,
                            &visibility,
                            &r.metadata.clone().map(Value::Object),
                        ],
                    )
                    .await
                    .map_err(pg)?
                    .ok_or_else(|| DomainError::ServiceUnavailable("the file changed meanwhile; retry".into()))?;
                row(&updated)
            }
            None => {
                // An object already at the key is not this user's to claim.
                if self
                    .object_head(&store, &bucket, &r.storage_key)
                    .await?
                    .is_some()
                {
                    Self::audit(
                        &tenant,
                        "upload_url",
                        "denied",
                        user,
                        None,
                        Some("object exists"),
                    )
                    .await;
                    return Err(DomainError::Forbidden(TAKEN.into()));
                }
                let visibility = if r.public == Some(true) {
                    "public"
                } else {
                    "private"
                };
                let mut conn = tenant.pool.get().await?;
                let tx = conn.transaction().await.map_err(pg)?;
                let id = Uuid::new_v4();
                let inserted = tx
                    .query_one(
                        &format!(
                            "INSERT INTO athena.files (id, client_name, s3_id, bucket, storage_key, name,
                                 original_name, mime_type, size_bytes, resource_id, organization_id,
                                 uploaded_by_user_id, visibility, metadata)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                             RETURNING {COLUMNS}"
                        ),
                        &[&id, &tenant.name, &s3_id, &bucket, &r.storage_key, &name, &r.original_name,
                          &content_type, &r.size_bytes, &r.resource_id, &org, &user.user_id, &visibility, &metadata],
                    )
                    .await
                    .map_err(|e| match e.as_db_error().map(|d| d.code().code()) {
                        Some("23505") => DomainError::ServiceUnavailable("another upload created this file at the same moment; retry".into()),
                        _ => pg(e),
                    })?;
                tx.execute(
                    "INSERT INTO athena.file_permissions (id, file_id, principal_type, principal_id, permission, granted_by)
                     VALUES ($1, $2, 'user', $3, 'owner', $3)",
                    &[&Uuid::new_v4(), &id, &user.user_id],
                )
                .await
                .map_err(pg)?;
                tx.commit().await.map_err(pg)?;
                row(&inserted)
            }
        };
        let signed: Vec<(http::header::HeaderName, String)> = content_type
            .iter()
            .map(|ct| (http::header::CONTENT_TYPE, ct.clone()))
            .collect();
        let url = store.presign(
            &Method::PUT,
            &bucket,
            &file.storage_key,
            DEFAULT_URL_TTL,
            &signed,
        )?;
        Self::audit(&tenant, "upload_url", "ok", user, Some(&file), None).await;
        let headers: Map<String, Value> = content_type
            .map(|ct| ("Content-Type".to_string(), Value::from(ct)))
            .into_iter()
            .collect();
        let mut upload = presigned(&file, "upload", url, DEFAULT_URL_TTL);
        upload["headers"] = Value::Object(headers);
        upload["method"] = json!("PUT");
        Ok(json!({ "file": file.view(), "upload": upload }))
    }

    pub async fn file_get(
        &self,
        client: &str,
        user: &EndUser,
        id: &str,
    ) -> Result<Value, DomainError> {
        let tenant = self.files_tenant(client).await?;
        let file = self.file_for(&tenant, id, user, Permission::Read).await?;
        Ok(json!({ "file": file.view() }))
    }

    /// HEADs the object and marks the file available (or failed when it
    /// is missing or not what the uploader said).
    pub async fn file_confirm(
        &self,
        client: &str,
        user: &EndUser,
        id: &str,
        r: ConfirmRequest,
    ) -> Result<Value, DomainError> {
        if let Some(c) = &r.checksum_sha256 {
            let ok = c.len() == 44
                && c.ends_with('=')
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
            if !ok {
                return Err(DomainError::invalid_field(
                    "checksum_sha256",
                    "the base64 of a SHA-256 digest (44 characters)",
                ));
            }
        }
        let tenant = self.files_tenant(client).await?;
        let file = self.file_for(&tenant, id, user, Permission::Write).await?;
        let (store, _) = self.catalog_store(client, file.s3_id).await?;
        let reply = self
            .object_head(&store, &file.bucket, &file.storage_key)
            .await?;
        let size = reply
            .as_ref()
            .and_then(|r| r.header("content-length"))
            .and_then(|s| s.parse::<i64>().ok());
        let checksum = reply
            .as_ref()
            .and_then(|r| r.header("x-amz-checksum-sha256"))
            .map(str::to_string);
        let problem = if reply.is_none() {
            Some("the object was not uploaded".to_string())
        } else if let Some(expected) = file
            .size_bytes
            .or(r.size_bytes)
            .filter(|e| Some(*e) != size)
        {
            Some(format!(
                "the object has {} bytes, {expected} were expected",
                size.unwrap_or(-1)
            ))
        } else {
            r.checksum_sha256
                .as_deref()
                .filter(|c| Some(*c) != checksum.as_deref())
                .map(|expected| format!("the object's SHA-256 is not {expected}"))
        };
        let status = if problem.is_some() {
            "failed"
        } else {
            "available"
        };
        let conn = tenant.pool.get().await?;
        let updated = conn
            .query_opt(
                &format!(
                    "UPDATE athena.files SET status = $2, size_bytes = COALESCE($3, size_bytes),
                         checksum_sha256 = COALESCE($4, checksum_sha256), updated_at = now()
                      WHERE id = $1 AND status NOT IN ('soft_deleted', 'purged') RETURNING {COLUMNS}"
                ),
                &[&file.id, &status, &size, &checksum],
            )
            .await
            .map_err(pg)?
            .ok_or_else(|| DomainError::not_found("file", file.id.to_string()))?;
        let file = row(&updated);
        Self::audit(
            &tenant,
            "confirm_upload",
            status,
            user,
            Some(&file),
            problem.as_deref(),
        )
        .await;
        match problem {
            Some(why) => Err(DomainError::Invalid(format!("upload not confirmed: {why}"))),
            None => Ok(json!({ "file": file.view() })),
        }
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
        if file.status != "available" {
            return Err(DomainError::Invalid(format!(
                "the file is {}, not available (confirm the upload first)",
                file.status
            )));
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
        Ok(presigned(&file, purpose, url, DEFAULT_URL_TTL))
    }

    /// Deletes the object and soft-deletes the row.
    pub async fn file_delete(
        &self,
        client: &str,
        user: &EndUser,
        id: &str,
    ) -> Result<Value, DomainError> {
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
        let file = row(&updated);
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
        Ok(json!({ "file": file.view() }))
    }
}

/// `POST /storage/files/list` (`StorageManagedFileListRequest`).
#[derive(Debug, Deserialize)]
pub struct ListRequest {
    #[serde(alias = "s3Id")]
    pub s3_id: String,
    pub prefix: String,
}

/// Most files one listing answers (the contract's request has no paging).
const LIST_LIMIT: i64 = 500;

impl Storage {
    /// Sets who may read a file (`share` or ownership needed).
    pub async fn file_visibility(
        &self,
        client: &str,
        user: &EndUser,
        id: &str,
        public: bool,
    ) -> Result<Value, DomainError> {
        let tenant = self.files_tenant(client).await?;
        let file = self.file_for(&tenant, id, user, Permission::Share).await?;
        let visibility = if public { "public" } else { "private" };
        let conn = tenant.pool.get().await?;
        let updated = conn
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
        let file = row(&updated);
        Self::audit(
            &tenant,
            "visibility",
            "ok",
            user,
            Some(&file),
            Some(visibility),
        )
        .await;
        Ok(json!({ "file": file.view() }))
    }

    /// The files under a prefix of a catalog that the user may read, by
    /// key. The SQL narrows the rows to those the read rule could allow
    /// (index-friendly); `file_access::decide` has the last word on each.
    pub async fn file_list(
        &self,
        client: &str,
        user: &EndUser,
        r: ListRequest,
    ) -> Result<Value, DomainError> {
        let s3_id = Uuid::parse_str(r.s3_id.trim())
            .map_err(|_| DomainError::invalid_field("s3_id", "not a UUID"))?;
        if !r.prefix.is_empty() {
            check_object_key("prefix", &r.prefix)?;
        }
        let tenant = self.files_tenant(client).await?;
        // The catalog must be the client's (else the same 404 as a file).
        self.catalog_store(client, s3_id).await?;
        let pattern = format!(
            "{}%",
            r.prefix
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let conn = tenant.pool.get().await?;
        let rows = conn
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM athena.files f
                      WHERE client_name = $1 AND s3_id = $2 AND storage_key LIKE $3
                        AND status NOT IN ('soft_deleted', 'purged')
                        AND (uploaded_by_user_id = $4 OR visibility = 'public'
                             OR (visibility = 'organization' AND organization_id = $5)
                             OR EXISTS (SELECT 1 FROM athena.file_permissions g
                                         WHERE g.file_id = f.id AND g.revoked_at IS NULL
                                           AND (g.expires_at IS NULL OR g.expires_at > now())
                                           AND ((g.principal_type = 'user' AND g.principal_id = $4)
                                             OR (g.principal_type = 'organization' AND g.principal_id = $5))))
                      ORDER BY storage_key LIMIT $6"
                ),
                &[&tenant.name, &s3_id, &pattern, &user.user_id, &user.organization_id, &LIST_LIMIT],
            )
            .await
            .map_err(pg)?;
        let candidates: Vec<FileRow> = rows.iter().map(row).collect();
        let ids: Vec<Uuid> = candidates.iter().map(|f| f.id).collect();
        let grants = Self::grants(&tenant, &ids).await?;
        let files: Vec<Value> = candidates
            .iter()
            .filter(|f| Self::permits(f, &grants, user, Permission::Read))
            .map(FileRow::view)
            .collect();
        Ok(json!({ "count": files.len(), "files": files }))
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
