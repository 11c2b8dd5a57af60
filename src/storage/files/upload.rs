//! Creating a managed file: the upload URL (a row and its owner grant,
//! or a writer replacing it) and the confirmation that the bytes arrived.

use super::*;
use crate::storage::s3::Store;

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

/// `POST /storage/files/upload-urls`: many uploads, all or none.
#[derive(Debug, Deserialize)]
pub struct UploadsRequest {
    pub files: Vec<UploadRequest>,
}

/// Most uploads one `upload-urls` call prepares.
const MAX_UPLOADS: usize = 100;

/// An upload checked (input, catalog, bucket, who holds the key) and not
/// yet written: `commit_upload` writes it.
struct PlannedUpload {
    r: UploadRequest,
    s3_id: Uuid,
    bucket: String,
    store: Store,
    content_type: Option<String>,
    name: String,
    org: String,
    /// The live row at the key, which this user may write (replaced).
    existing: Option<FileRow>,
}

impl Storage {
    /// Creates (or, for a writer, replaces) the row of an object and
    /// presigns its upload: `{file, upload}`.
    pub async fn file_upload_url(
        &self,
        client: &str,
        user: &EndUser,
        r: UploadRequest,
    ) -> Result<Value, DomainError> {
        let tenant = self.files_tenant(client).await?;
        let planned = self.plan_upload(client, &tenant, user, r).await?;
        self.commit_upload(&tenant, user, planned).await
    }

    /// Many upload URLs, all or none: every file is checked (input, key
    /// holder, permissions) before any row is written; `{files: [{file,
    /// upload}]}` in the order asked.
    pub async fn file_upload_urls(
        &self,
        client: &str,
        user: &EndUser,
        r: UploadsRequest,
    ) -> Result<Value, DomainError> {
        if r.files.is_empty() || r.files.len() > MAX_UPLOADS {
            return Err(DomainError::invalid_field(
                "files",
                format!("1-{MAX_UPLOADS} files"),
            ));
        }
        let tenant = self.files_tenant(client).await?;
        let mut planned = Vec::with_capacity(r.files.len());
        for f in r.files {
            planned.push(self.plan_upload(client, &tenant, user, f).await?);
        }
        let mut seen = std::collections::HashSet::new();
        if !planned
            .iter()
            .all(|p| seen.insert((p.s3_id, p.bucket.as_str(), p.r.storage_key.as_str())))
        {
            return Err(DomainError::invalid_field(
                "files",
                "each storage key at most once",
            ));
        }
        let mut files = Vec::with_capacity(planned.len());
        for p in planned {
            files.push(self.commit_upload(&tenant, user, p).await?);
        }
        Ok(json!({ "count": files.len(), "files": files }))
    }

    /// Checks one upload without writing anything (refusals are audited).
    async fn plan_upload(
        &self,
        client: &str,
        tenant: &Tenant,
        user: &EndUser,
        r: UploadRequest,
    ) -> Result<PlannedUpload, DomainError> {
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
            crate::storage::objects::content_type(&r.content_type.clone().or(r.mime_type.clone()))?
                .map(str::to_string);
        let org = organization(user)?.to_string();
        let s3_id = Uuid::parse_str(r.s3_id.trim())
            .map_err(|_| DomainError::invalid_field("s3_id", "not a UUID"))?;
        let (store, catalog_bucket) = self.catalog_store(client, s3_id).await?;
        let bucket = target_bucket(r.bucket.clone(), catalog_bucket, user)?;
        crate::storage::endpoint::check_bucket(&bucket)?;
        let name = r.name.clone().unwrap_or_else(|| {
            r.storage_key
                .rsplit('/')
                .next()
                .unwrap_or(&r.storage_key)
                .to_string()
        });
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
        match &existing {
            Some(f) => {
                // One answer whether the key holds someone's unreadable file
                // or a file this user may only read.
                let grants = Self::grants(tenant, &[f.id]).await?;
                // A deleted file comes back by a new upload only for someone
                // who could restore it (`delete`, as `restore` needs).
                let revives = f.status == "soft_deleted"
                    && !Self::permits(f, &grants, user, Permission::Delete);
                if revives || !Self::permits(f, &grants, user, Permission::Write) {
                    Self::audit(tenant, "upload_url", "denied", user, Some(f), None).await;
                    return Err(DomainError::Forbidden(TAKEN.into()));
                }
                // Changing who may read it needs `share` (or ownership);
                // fields not sent are kept.
                let visibility = r.public.map(|p| if p { "public" } else { "private" });
                if visibility.is_some_and(|v| v != f.visibility)
                    && !Self::permits(f, &grants, user, Permission::Share)
                {
                    Self::audit(
                        tenant,
                        "upload_url",
                        "denied",
                        user,
                        Some(f),
                        Some("visibility"),
                    )
                    .await;
                    return Err(DomainError::Forbidden(
                        "changing who may read this file needs the share permission".into(),
                    ));
                }
            }
            None => {
                // An object (or an old version of one) already at the key is
                // not this user's to claim.
                if self.key_taken(&store, &bucket, &r.storage_key).await? {
                    Self::audit(
                        tenant,
                        "upload_url",
                        "denied",
                        user,
                        None,
                        Some("object exists"),
                    )
                    .await;
                    return Err(DomainError::Forbidden(TAKEN.into()));
                }
            }
        }
        Ok(PlannedUpload {
            r,
            s3_id,
            bucket,
            store,
            content_type,
            name,
            org,
            existing,
        })
    }

    /// Writes a planned upload (the row, and the owner grant of a new
    /// one) and presigns its PUT: `{file, upload}`.
    async fn commit_upload(
        &self,
        tenant: &Tenant,
        user: &EndUser,
        p: PlannedUpload,
    ) -> Result<Value, DomainError> {
        let PlannedUpload {
            r,
            s3_id,
            bucket,
            store,
            content_type,
            name,
            org,
            existing,
        } = p;
        let metadata = Value::Object(r.metadata.clone().unwrap_or_default());
        let file = match existing {
            Some(f) => {
                let visibility = r.public.map(|p| if p { "public" } else { "private" });
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
                          &content_type, &r.size_bytes, &r.resource_id, &org, &user.user(), &visibility, &metadata],
                    )
                    .await
                    .map_err(|e| match e.as_db_error().map(|d| d.code().code()) {
                        Some("23505") => DomainError::ServiceUnavailable("another upload created this file at the same moment; retry".into()),
                        _ => pg(e),
                    })?;
                // The uploader owns it (a service acting for nobody leaves
                // it to the organization's grants).
                if let Some(owner) = user.user() {
                    tx.execute(
                        "INSERT INTO athena.file_permissions (id, file_id, principal_type, principal_id, permission, granted_by)
                         VALUES ($1, $2, 'user', $3, 'owner', $3)",
                        &[&Uuid::new_v4(), &id, &owner],
                    )
                    .await
                    .map_err(pg)?;
                }
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
        Self::audit(tenant, "upload_url", "ok", user, Some(&file), None).await;
        let headers: Map<String, Value> = content_type
            .map(|ct| ("Content-Type".to_string(), Value::from(ct)))
            .into_iter()
            .collect();
        let mut upload = presigned(&file, "upload", url, DEFAULT_URL_TTL);
        upload["headers"] = Value::Object(headers);
        upload["method"] = json!("PUT");
        Ok(json!({ "file": file.view(), "upload": upload }))
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
        drop(conn);
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
}
