//! Multipart uploads of managed files (`/storage/multipart/*`): the S3
//! multipart upload of a file's key, its `upload_id` bound to the file and
//! to the end user who created it (`athena.multipart_uploads`). The user
//! PUTs the parts to presigned URLs; Athena completes or aborts. The S3
//! calls are shared with the streamed `PUT …/upload` (`stream.rs`).

use super::*;
use crate::storage::s3::{error_code, s3_error, Store};
use crate::storage::xml;
use bytes::Bytes;

/// S3's limits on part numbers.
pub const MAX_PARTS: u32 = 10_000;

/// `POST /storage/multipart/create` (the SDK's `StorageMultipartCreateRequest`;
/// its encryption options are accepted and not used: the store's default
/// encryption applies).
#[derive(Debug, Deserialize)]
pub struct MultipartCreate {
    pub file_id: String,
    pub content_type: Option<String>,
}

/// `sign-part`.
#[derive(Debug, Deserialize)]
pub struct MultipartSignPart {
    pub file_id: String,
    pub upload_id: String,
    pub part_number: i64,
    pub expires_in: Option<u32>,
}

#[derive(Debug, Deserialize)]
pub struct CompletedPart {
    pub part_number: i64,
    pub etag: String,
}

/// `complete`.
#[derive(Debug, Deserialize)]
pub struct MultipartComplete {
    pub file_id: String,
    pub upload_id: String,
    pub parts: Vec<CompletedPart>,
}

/// `abort` and `list-parts`.
#[derive(Debug, Deserialize)]
pub struct MultipartRef {
    pub file_id: String,
    pub upload_id: String,
}

/// An upload id as the caller sent it: non-empty printable ASCII.
fn check_upload_id(id: &str) -> Result<(), DomainError> {
    if id.is_empty() || id.len() > 1024 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(DomainError::invalid_field(
            "upload_id",
            "the upload_id returned by create",
        ));
    }
    Ok(())
}

fn part_number(n: i64) -> Result<u32, DomainError> {
    u32::try_from(n)
        .ok()
        .filter(|n| (1..=MAX_PARTS).contains(n))
        .ok_or_else(|| DomainError::invalid_field("part_number", "1 to 10000"))
}

impl Storage {
    /// The S3 multipart upload of `key` (CreateMultipartUpload): its id.
    pub(super) async fn s3_multipart_create(
        &self,
        store: &Store,
        bucket: &str,
        key: &str,
        content_type: Option<&str>,
    ) -> Result<String, DomainError> {
        let mut call = Call::new(Method::POST, Some(bucket), Some(key)).query("uploads", "");
        if let Some(ct) = content_type {
            call = call.header("content-type", ct)?;
        }
        let reply = self.s3.send(store, call, key).await?;
        let created: xml::InitiateMultipartUploadResult = reply.xml()?;
        Ok(created.upload_id)
    }

    /// One part (UploadPart): its ETag.
    pub(super) async fn s3_multipart_part(
        &self,
        store: &Store,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: u32,
        body: Bytes,
    ) -> Result<String, DomainError> {
        let call = Call::new(Method::PUT, Some(bucket), Some(key))
            .query("partNumber", number.to_string())
            .query("uploadId", upload_id)
            .bytes(body);
        let reply = self.s3.send(store, call, key).await?;
        reply
            .header("etag")
            .map(str::to_string)
            .ok_or_else(|| DomainError::ServiceUnavailable("the S3 store sent no part ETag".into()))
    }

    /// CompleteMultipartUpload of `(part number, ETag)` in ascending order.
    pub(super) async fn s3_multipart_complete(
        &self,
        store: &Store,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> Result<Option<String>, DomainError> {
        let call = Call::new(Method::POST, Some(bucket), Some(key))
            .query("uploadId", upload_id)
            .document("application/xml", xml::complete_multipart(parts))?;
        let reply = self.s3.send(store, call, key).await?;
        // S3 may answer 200 and put the failure in the body.
        if error_code(&reply.body).is_some() {
            let failed = crate::storage::s3::Reply {
                status: 400,
                headers: reply.headers.clone(),
                body: reply.body.clone(),
            };
            return Err(s3_error(&failed, key));
        }
        let done: xml::CompleteMultipartUploadResult = reply.xml().unwrap_or_default();
        Ok(done.etag)
    }

    /// AbortMultipartUpload (the parts are freed).
    pub(super) async fn s3_multipart_abort(
        &self,
        store: &Store,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), DomainError> {
        let call = Call::new(Method::DELETE, Some(bucket), Some(key)).query("uploadId", upload_id);
        self.s3.send(store, call, key).await.map(|_| ())
    }

    /// The open upload `upload_id` of `file_id`, for `user`: unknown (or
    /// another file's, or another client's) → 404; another user's → 403;
    /// then the file with `wanted` (the file rule: 404 / 403).
    async fn upload_for(
        &self,
        tenant: &Tenant,
        user: &EndUser,
        file_id: &str,
        upload_id: &str,
        wanted: Permission,
    ) -> Result<(FileRow, Uuid, String), DomainError> {
        check_upload_id(upload_id)?;
        let id = super::file_id(file_id)?;
        let found = {
            let conn = tenant.pool.get().await?;
            conn.query_opt(
                "SELECT m.id, m.file_id, m.actor_user_id, m.status
                   FROM athena.multipart_uploads m JOIN athena.files f ON f.id = m.file_id
                  WHERE m.upload_id = $1 AND f.client_name = $2",
                &[&upload_id, &tenant.name],
            )
            .await
            .map_err(pg)?
        };
        let Some(found) = found else {
            return Err(DomainError::not_found("upload", upload_id));
        };
        let (row_id, row_file, actor, status): (Uuid, Uuid, String, String) =
            (found.get(0), found.get(1), found.get(2), found.get(3));
        if actor != user.user_id {
            return Err(DomainError::Forbidden(
                "this multipart upload belongs to another user".into(),
            ));
        }
        if row_file != id {
            return Err(DomainError::not_found("upload", upload_id));
        }
        let file = self.file_for(tenant, &id.to_string(), user, wanted).await?;
        Ok((file, row_id, status))
    }

    async fn mark_upload(tenant: &Tenant, row_id: Uuid, status: &str) -> Result<(), DomainError> {
        let conn = tenant.pool.get().await?;
        conn.execute(
            "UPDATE athena.multipart_uploads SET status = $2, updated_at = now() WHERE id = $1",
            &[&row_id, &status],
        )
        .await
        .map_err(pg)?;
        Ok(())
    }

    /// `create`: a multipart upload of a file the user may write.
    pub async fn multipart_create(
        &self,
        client: &str,
        user: &EndUser,
        r: MultipartCreate,
    ) -> Result<Value, DomainError> {
        let content_type = crate::storage::objects::content_type(&r.content_type)?;
        let tenant = self.files_tenant(client).await?;
        let file = self
            .file_for(&tenant, &r.file_id, user, Permission::Write)
            .await?;
        let content_type = content_type.or(file.mime_type.as_deref());
        let (store, _) = self.catalog_store(client, file.s3_id).await?;
        let upload_id = match self
            .s3_multipart_create(&store, &file.bucket, &file.storage_key, content_type)
            .await
        {
            Ok(id) => id,
            Err(e) => {
                Self::audit(
                    &tenant,
                    "multipart_create",
                    "failed",
                    user,
                    Some(&file),
                    Some("the store refused the upload"),
                )
                .await;
                return Err(e);
            }
        };
        let conn = tenant.pool.get().await?;
        conn.execute(
            "INSERT INTO athena.multipart_uploads (id, file_id, upload_id, actor_user_id)
             VALUES ($1, $2, $3, $4)",
            &[&Uuid::new_v4(), &file.id, &upload_id, &user.user_id],
        )
        .await
        .map_err(pg)?;
        drop(conn);
        Self::audit(&tenant, "multipart_create", "ok", user, Some(&file), None).await;
        Ok(json!({
            "upload_id": upload_id,
            "file_id": file.id.to_string(),
            "bucket": file.bucket,
            "storage_key": file.storage_key,
            "part_size_bytes": super::stream::PART_SIZE,
            "max_parts": MAX_PARTS,
            "file": file.view(),
        }))
    }

    /// `sign-part`: a presigned UploadPart URL.
    pub async fn multipart_sign_part(
        &self,
        client: &str,
        user: &EndUser,
        r: MultipartSignPart,
    ) -> Result<Value, DomainError> {
        let number = part_number(r.part_number)?;
        let ttl = r.expires_in.unwrap_or(DEFAULT_URL_TTL);
        // Short-lived: a writer whose grant is revoked keeps a part URL
        // only this long.
        if !(1..=3600).contains(&ttl) {
            return Err(DomainError::invalid_field(
                "expires_in",
                "1 to 3600 seconds",
            ));
        }
        let tenant = self.files_tenant(client).await?;
        let (file, _, status) = self
            .upload_for(&tenant, user, &r.file_id, &r.upload_id, Permission::Write)
            .await?;
        if status != "open" {
            return Err(DomainError::Invalid(format!("the upload is {status}")));
        }
        let (store, _) = self.catalog_store(client, file.s3_id).await?;
        let url = store.presign_query(
            &Method::PUT,
            &file.bucket,
            &file.storage_key,
            &[
                ("partNumber", number.to_string()),
                ("uploadId", r.upload_id.clone()),
            ],
            ttl,
            &[],
        )?;
        let expires = Utc::now() + chrono::Duration::seconds(i64::from(ttl));
        Ok(json!({
            "url": url,
            "method": "PUT",
            "headers": {},
            "file_id": file.id.to_string(),
            "upload_id": r.upload_id,
            "part_number": number,
            "expires_in": ttl,
            "expires_at": expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }))
    }

    /// `complete`: the parts joined; the file available with its size.
    pub async fn multipart_complete(
        &self,
        client: &str,
        user: &EndUser,
        r: MultipartComplete,
    ) -> Result<Value, DomainError> {
        if r.parts.is_empty() || r.parts.len() > MAX_PARTS as usize {
            return Err(DomainError::invalid_field("parts", "1 to 10000 parts"));
        }
        let mut parts = Vec::with_capacity(r.parts.len());
        for p in &r.parts {
            let etag = p.etag.trim();
            if etag.is_empty() || etag.len() > 256 || !etag.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(DomainError::invalid_field(
                    "parts",
                    "each part needs the ETag its PUT answered",
                ));
            }
            let etag = if etag.starts_with('"') {
                etag.to_string()
            } else {
                format!("\"{etag}\"")
            };
            parts.push((part_number(p.part_number)?, etag));
        }
        parts.sort_by_key(|(n, _)| *n);
        if parts.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(DomainError::invalid_field("parts", "each part_number once"));
        }
        let tenant = self.files_tenant(client).await?;
        let (file, row_id, status) = self
            .upload_for(&tenant, user, &r.file_id, &r.upload_id, Permission::Write)
            .await?;
        if status != "open" {
            return Err(DomainError::Invalid(format!("the upload is {status}")));
        }
        let (store, _) = self.catalog_store(client, file.s3_id).await?;
        if let Err(e) = self
            .s3_multipart_complete(
                &store,
                &file.bucket,
                &file.storage_key,
                &r.upload_id,
                &parts,
            )
            .await
        {
            Self::audit(
                &tenant,
                "multipart_complete",
                "failed",
                user,
                Some(&file),
                Some("the store refused the parts"),
            )
            .await;
            return Err(e);
        }
        Self::mark_upload(&tenant, row_id, "completed").await?;
        let file = self.mark_available(&tenant, &store, &file, None).await?;
        Self::audit(&tenant, "multipart_complete", "ok", user, Some(&file), None).await;
        Ok(json!({
            "upload_id": r.upload_id,
            "file_id": file.id.to_string(),
            "parts": parts.len(),
            "file": file.view(),
        }))
    }

    /// Marks `file` available with the size its object has now (HEAD), or
    /// `size` when the caller counted it.
    pub(super) async fn mark_available(
        &self,
        tenant: &Tenant,
        store: &Store,
        file: &FileRow,
        size: Option<i64>,
    ) -> Result<FileRow, DomainError> {
        let size = match size {
            Some(n) => Some(n),
            None => self
                .object_head(store, &file.bucket, &file.storage_key)
                .await?
                .as_ref()
                .and_then(|r| r.header("content-length"))
                .and_then(|s| s.parse::<i64>().ok()),
        };
        let conn = tenant.pool.get().await?;
        let updated = conn
            .query_opt(
                &format!(
                    "UPDATE athena.files SET status = 'available', size_bytes = $2,
                         checksum_sha256 = NULL, updated_at = now()
                      WHERE id = $1 AND status NOT IN ('soft_deleted', 'purged')
                        AND bucket = $3 AND storage_key = $4 RETURNING {COLUMNS}"
                ),
                &[&file.id, &size, &file.bucket, &file.storage_key],
            )
            .await
            .map_err(pg)?
            // Moved or deleted while the bytes were on their way: the row
            // no longer names this object.
            .ok_or_else(|| DomainError::not_found("file", file.id.to_string()))?;
        Ok(row(&updated))
    }

    /// `abort`: the S3 upload aborted (its parts freed), the row aborted.
    pub async fn multipart_abort(
        &self,
        client: &str,
        user: &EndUser,
        r: MultipartRef,
    ) -> Result<Value, DomainError> {
        let tenant = self.files_tenant(client).await?;
        let (file, row_id, status) = self
            .upload_for(&tenant, user, &r.file_id, &r.upload_id, Permission::Write)
            .await?;
        if status == "completed" {
            return Err(DomainError::Invalid("the upload is completed".into()));
        }
        let (store, _) = self.catalog_store(client, file.s3_id).await?;
        match self
            .s3_multipart_abort(&store, &file.bucket, &file.storage_key, &r.upload_id)
            .await
        {
            // Already gone on the store: the row still says so.
            Ok(()) | Err(DomainError::NotFound { .. }) => {}
            Err(e) => {
                Self::audit(
                    &tenant,
                    "multipart_abort",
                    "failed",
                    user,
                    Some(&file),
                    Some("the store did not abort"),
                )
                .await;
                return Err(e);
            }
        }
        Self::mark_upload(&tenant, row_id, "aborted").await?;
        Self::audit(&tenant, "multipart_abort", "ok", user, Some(&file), None).await;
        Ok(json!({
            "aborted": true,
            "upload_id": r.upload_id,
            "file_id": file.id.to_string(),
        }))
    }

    /// `list-parts`: the parts the store holds (ListParts, every page).
    pub async fn multipart_list_parts(
        &self,
        client: &str,
        user: &EndUser,
        r: MultipartRef,
    ) -> Result<Value, DomainError> {
        let tenant = self.files_tenant(client).await?;
        // Whatever the row says, the store answers: an aborted or
        // completed upload is a 404 (`NoSuchUpload`) there.
        let (file, _, _) = self
            .upload_for(&tenant, user, &r.file_id, &r.upload_id, Permission::Write)
            .await?;
        let (store, _) = self.catalog_store(client, file.s3_id).await?;
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut call = Call::new(Method::GET, Some(&file.bucket), Some(&file.storage_key))
                .query("uploadId", r.upload_id.clone());
            if let Some(m) = &marker {
                call = call.query("part-number-marker", m.clone());
            }
            let page: xml::ListPartsResult =
                self.s3.send(&store, call, &file.storage_key).await?.xml()?;
            parts.extend(page.parts.into_iter().map(|p| {
                json!({
                    "part_number": p.part_number,
                    "etag": p.etag,
                    "size_bytes": p.size,
                    "last_modified": p.last_modified,
                })
            }));
            match page.next_part_number_marker {
                Some(m) if page.is_truncated && marker.as_deref() != Some(&m) => marker = Some(m),
                _ => break,
            }
        }
        Ok(json!({
            "upload_id": r.upload_id,
            "file_id": file.id.to_string(),
            "count": parts.len(),
            "parts": parts,
        }))
    }
}
