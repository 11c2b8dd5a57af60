//! A managed file's life after its upload: update (and move), copy,
//! restore after a delete, purge, and its public URL.

use super::*;
use crate::storage::objects::Source;
use crate::storage::s3::Store;

/// `PATCH /storage/files/{file_id}`: the SDK's `UpdateStorageFileRequest`
/// (the contract's `storage_key` and `bucket`, all optional). Fields not
/// sent are kept; `metadata` replaces the file's.
#[derive(Debug, Default, Deserialize)]
pub struct UpdateRequest {
    pub storage_key: Option<String>,
    pub bucket: Option<String>,
    pub name: Option<String>,
    /// The SDK's other name for `name`.
    pub file_name: Option<String>,
    pub original_name: Option<String>,
    pub mime_type: Option<String>,
    pub content_type: Option<String>,
    pub resource_id: Option<String>,
    pub metadata: Option<Map<String, Value>>,
    pub visibility: Option<String>,
    pub public: Option<bool>,
    /// Set by confirm-upload, delete and restore only (400 when sent).
    pub status: Option<String>,
    pub size_bytes: Option<i64>,
    pub checksum_sha256: Option<String>,
}

/// `POST /storage/files/{file_id}/copy`: the SDK's `CopyStorageFileRequest`.
#[derive(Debug, Deserialize)]
pub struct CopyRequest {
    pub storage_key: String,
    pub bucket: Option<String>,
    pub name: Option<String>,
    pub file_name: Option<String>,
    pub metadata: Option<Map<String, Value>>,
    pub visibility: Option<String>,
    pub public: Option<bool>,
}

/// `private | organization | public`, or the contract's `public` flag.
pub(super) fn visibility(
    visibility: &Option<String>,
    public: Option<bool>,
) -> Result<Option<&'static str>, DomainError> {
    match (visibility.as_deref().map(str::trim), public) {
        (Some("private"), _) => Ok(Some("private")),
        (Some("organization"), _) => Ok(Some("organization")),
        (Some("public"), _) => Ok(Some("public")),
        (Some(_), _) => Err(DomainError::invalid_field(
            "visibility",
            "private, organization or public",
        )),
        (None, Some(true)) => Ok(Some("public")),
        (None, Some(false)) => Ok(Some("private")),
        (None, None) => Ok(None),
    }
}

/// The row fields an update changes (`None`: kept).
#[derive(Debug, Default)]
pub(super) struct Changes {
    pub name: Option<String>,
    pub original_name: Option<String>,
    pub mime_type: Option<String>,
    pub resource_id: Option<String>,
    pub metadata: Option<Value>,
    pub visibility: Option<&'static str>,
}

impl Changes {
    pub(super) fn of(r: &UpdateRequest) -> Result<Changes, DomainError> {
        for (field, sent) in [
            ("status", r.status.is_some()),
            ("size_bytes", r.size_bytes.is_some()),
            ("checksum_sha256", r.checksum_sha256.is_some()),
        ] {
            if sent {
                return Err(DomainError::invalid_field(
                    field,
                    "set by confirm-upload, delete and restore, not by an update",
                ));
            }
        }
        let name = r.name.clone().or_else(|| r.file_name.clone());
        for (field, value, max) in [
            ("name", &name, 512),
            ("original_name", &r.original_name, 512),
            ("resource_id", &r.resource_id, 256),
        ] {
            text(field, value, max)?;
        }
        if name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err(DomainError::invalid_field("name", "not empty"));
        }
        let mime_type =
            crate::storage::objects::content_type(&r.mime_type.clone().or(r.content_type.clone()))?
                .map(str::to_string);
        Ok(Changes {
            name,
            original_name: r.original_name.clone(),
            mime_type,
            resource_id: r.resource_id.clone(),
            metadata: r.metadata.clone().map(Value::Object),
            visibility: visibility(&r.visibility, r.public)?,
        })
    }

    /// Whether applying these changes to `file` changes who may read it
    /// (that needs `share` or ownership).
    pub(super) fn rescopes(&self, file: &FileRow) -> bool {
        self.visibility.is_some_and(|v| v != file.visibility)
    }

    /// Writes the changes (and a new place, for a move) to a live row.
    pub(super) async fn write(
        &self,
        conn: &impl tokio_postgres::GenericClient,
        id: Uuid,
        place: Option<(&str, &str)>,
    ) -> Result<Option<FileRow>, DomainError> {
        let (bucket, key) = place.unzip();
        let updated = conn
            .query_opt(
                &format!(
                    "UPDATE athena.files SET name = COALESCE($2, name),
                         original_name = COALESCE($3, original_name), mime_type = COALESCE($4, mime_type),
                         resource_id = COALESCE($5, resource_id), metadata = COALESCE($6, metadata),
                         visibility = COALESCE($7, visibility), bucket = COALESCE($8, bucket),
                         storage_key = COALESCE($9, storage_key), updated_at = now()
                      WHERE id = $1 AND status NOT IN ('soft_deleted', 'purged') RETURNING {COLUMNS}"
                ),
                &[
                    &id,
                    &self.name,
                    &self.original_name,
                    &self.mime_type,
                    &self.resource_id,
                    &self.metadata,
                    &self.visibility,
                    &bucket,
                    &key,
                ],
            )
            .await
            .map_err(|e| match e.as_db_error().map(|d| d.code().code()) {
                Some("23505") => DomainError::Forbidden(TAKEN.into()),
                _ => pg(e),
            })?;
        Ok(updated.as_ref().map(row))
    }
}

impl Storage {
    /// Whether `bucket`/`key` of catalog `s3_id` is free for `user` to
    /// write a new file to: no live row, no object (else 403, one text).
    async fn key_free(
        &self,
        tenant: &Tenant,
        store: &Store,
        s3_id: Uuid,
        bucket: &str,
        key: &str,
    ) -> Result<(), DomainError> {
        let conn = tenant.pool.get().await?;
        let held = conn
            .query_opt(
                "SELECT 1 FROM athena.files
                  WHERE client_name = $1 AND s3_id = $2 AND bucket = $3 AND storage_key = $4
                    AND status <> 'purged'",
                &[&tenant.name, &s3_id, &bucket, &key],
            )
            .await
            .map_err(pg)?
            .is_some();
        if held || self.key_taken(store, bucket, key).await? {
            return Err(DomainError::Forbidden(TAKEN.into()));
        }
        Ok(())
    }

    /// Renames, re-describes or moves a file (`write`; a visibility change
    /// needs `share`). A move (of an available file, to a free key) copies
    /// the object to the new key, points the row at it, then deletes the
    /// old key's versions.
    pub async fn file_update(
        &self,
        client: &str,
        user: &EndUser,
        id: &str,
        r: UpdateRequest,
    ) -> Result<FileRow, DomainError> {
        let mut changes = Changes::of(&r)?;
        if let Some(k) = &r.storage_key {
            check_object_key("storage_key", k)?;
        }
        let tenant = self.files_tenant(client).await?;
        let file = self
            .file_op(&tenant, id, user, Permission::Write, false, "update")
            .await?;
        if changes.rescopes(&file) {
            self.file_op(&tenant, id, user, Permission::Share, false, "update")
                .await?;
        }
        // A move deletes the old key with all its versions: `delete` too.
        let moves = r
            .storage_key
            .as_deref()
            .is_some_and(|k| k != file.storage_key)
            || r.bucket
                .as_deref()
                .is_some_and(|b| !b.is_empty() && b != file.bucket);
        if moves {
            self.file_op(&tenant, id, user, Permission::Delete, false, "update")
                .await?;
        }
        let (store, catalog_bucket) = self.catalog_store(client, file.s3_id).await?;
        let bucket = match r.bucket.as_deref().filter(|b| !b.is_empty()) {
            Some(b) if b != file.bucket => {
                target_bucket(Some(b.to_string()), catalog_bucket, user)?
            }
            _ => file.bucket.clone(),
        };
        let key = r
            .storage_key
            .clone()
            .unwrap_or_else(|| file.storage_key.clone());
        let moved = bucket != file.bucket || key != file.storage_key;
        if !moved {
            // Decided again and written under the row lock (a `share` or
            // `write` revoked since the check above is seen).
            let mut wanted = vec![Permission::Write];
            if changes.rescopes(&file) {
                wanted.push(Permission::Share);
            }
            let mut conn = tenant.pool.get().await?;
            let tx = conn.transaction().await.map_err(pg)?;
            let (tx, _) =
                super::permissions::locked_file(tx, &tenant, id, user, &wanted, "update").await?;
            let updated = changes
                .write(&tx, file.id, None)
                .await?
                .ok_or_else(|| DomainError::not_found("file", file.id.to_string()))?;
            tx.commit().await.map_err(pg)?;
            drop(conn);
            self.forget_urls(client, updated.id).await;
            Self::audit(&tenant, "update", "ok", user, Some(&updated), None).await;
            return Ok(updated);
        }
        let file = self.bytes_ready(&tenant, client, user, file).await?;
        // A name that was the old key's last segment follows the key.
        let last = |k: &str| k.rsplit('/').next().unwrap_or(k).to_string();
        if changes.name.is_none() && file.name == last(&file.storage_key) {
            changes.name = Some(last(&key));
        }
        if let Err(e) = self
            .key_free(&tenant, &store, file.s3_id, &bucket, &key)
            .await
        {
            Self::audit(
                &tenant,
                "update",
                "denied",
                user,
                Some(&file),
                Some("target key taken"),
            )
            .await;
            return Err(e);
        }
        self.copy(
            &store,
            Source::latest(&file.bucket, &file.storage_key),
            &bucket,
            &key,
            None,
        )
        .await?;
        let conn = tenant.pool.get().await?;
        let written = changes.write(&**conn, file.id, Some((&bucket, &key))).await;
        drop(conn);
        let updated = match written {
            Ok(Some(f)) => f,
            other => {
                // The row did not move (deleted meanwhile, or the key was
                // claimed): the copy must not stay behind.
                let call = Call::new(Method::DELETE, Some(&bucket), Some(&key));
                if let Err(e) = self.s3.send(&store, call, &key).await {
                    tracing::warn!(error = %e, "a moved file's copy was not removed");
                }
                Self::audit(
                    &tenant,
                    "update",
                    "failed",
                    user,
                    Some(&file),
                    Some("the row did not move"),
                )
                .await;
                return Err(other
                    .err()
                    .unwrap_or_else(|| DomainError::not_found("file", file.id.to_string())));
            }
        };
        // The old key goes with all its versions: nothing in Athena reaches
        // them any more (versions and purge follow the file's key).
        if let Err(e) = self.delete_all_versions(&store, &file).await {
            Self::audit(
                &tenant,
                "update",
                "failed",
                user,
                Some(&updated),
                Some("moved; the old object was not deleted"),
            )
            .await;
            return Err(e);
        }
        Self::audit(
            &tenant,
            "update",
            "ok",
            user,
            Some(&updated),
            Some(&format!("moved from {}/{}", file.bucket, file.storage_key)),
        )
        .await;
        self.forget_urls(client, updated.id).await;
        Ok(updated)
    }

    /// Copies a readable, available file to a free key: a new file owned
    /// by the caller (in the caller's organization), the object copied by
    /// the store. The row is written first (it reserves the key), then
    /// the object, then the row is marked available (or failed).
    pub async fn file_copy(
        &self,
        client: &str,
        user: &EndUser,
        id: &str,
        r: CopyRequest,
    ) -> Result<Value, DomainError> {
        check_object_key("storage_key", &r.storage_key)?;
        let name = r.name.clone().or_else(|| r.file_name.clone());
        text("name", &name, 512)?;
        let visibility = visibility(&r.visibility, r.public)?.unwrap_or("private");
        let org = organization(user)?.to_string();
        let tenant = self.files_tenant(client).await?;
        let source = self
            .file_op(&tenant, id, user, Permission::Read, false, "copy")
            .await?;
        let source = self.bytes_ready(&tenant, client, user, source).await?;
        let (store, catalog_bucket) = self.catalog_store(client, source.s3_id).await?;
        let bucket = target_bucket(r.bucket.clone(), catalog_bucket, user)?;
        if bucket == source.bucket && r.storage_key == source.storage_key {
            return Err(DomainError::invalid_field(
                "storage_key",
                "the copy needs a key of its own",
            ));
        }
        if let Err(e) = self
            .key_free(&tenant, &store, source.s3_id, &bucket, &r.storage_key)
            .await
        {
            Self::audit(
                &tenant,
                "copy",
                "denied",
                user,
                Some(&source),
                Some("target key taken"),
            )
            .await;
            return Err(e);
        }
        let name = name.unwrap_or_else(|| {
            r.storage_key
                .rsplit('/')
                .next()
                .unwrap_or(&r.storage_key)
                .to_string()
        });
        let metadata = r
            .metadata
            .clone()
            .map(Value::Object)
            .unwrap_or_else(|| source.metadata.clone());
        let new_id = Uuid::new_v4();
        {
            let mut conn = tenant.pool.get().await?;
            let tx = conn.transaction().await.map_err(pg)?;
            tx.execute(
                "INSERT INTO athena.files (id, client_name, s3_id, bucket, storage_key, name,
                     original_name, mime_type, size_bytes, checksum_sha256, resource_id, organization_id,
                     uploaded_by_user_id, visibility, metadata)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                &[&new_id, &tenant.name, &source.s3_id, &bucket, &r.storage_key, &name,
                  &source.original_name, &source.mime_type, &source.size_bytes, &source.checksum_sha256,
                  &source.resource_id, &org, &user.user(), &visibility, &metadata],
            )
            .await
            .map_err(|e| match e.as_db_error().map(|d| d.code().code()) {
                Some("23505") => DomainError::Forbidden(TAKEN.into()),
                _ => pg(e),
            })?;
            if let Some(owner) = user.user() {
                tx.execute(
                    "INSERT INTO athena.file_permissions (id, file_id, principal_type, principal_id, permission, granted_by)
                     VALUES ($1, $2, 'user', $3, 'owner', $3)",
                    &[&Uuid::new_v4(), &new_id, &owner],
                )
                .await
                .map_err(pg)?;
            }
            tx.commit().await.map_err(pg)?;
        }
        let copied = self
            .copy(
                &store,
                Source::latest(&source.bucket, &source.storage_key),
                &bucket,
                &r.storage_key,
                None,
            )
            .await;
        let status = if copied.is_ok() {
            "available"
        } else {
            "failed"
        };
        let conn = tenant.pool.get().await?;
        let updated = conn
            .query_one(
                &format!(
                    "UPDATE athena.files SET status = $2, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
                ),
                &[&new_id, &status],
            )
            .await
            .map_err(pg)?;
        drop(conn);
        let copy = row(&updated);
        if let Err(e) = copied {
            Self::audit(
                &tenant,
                "copy",
                "failed",
                user,
                Some(&copy),
                Some("the object was not copied"),
            )
            .await;
            return Err(e);
        }
        Self::audit(
            &tenant,
            "copy",
            "ok",
            user,
            Some(&copy),
            Some(&format!("copied from {}", source.id)),
        )
        .await;
        Ok(json!({ "file": copy.view() }))
    }

    /// Brings a soft-deleted file back (the owner, or a `delete` grantee:
    /// who could delete it may undo that). Its object must still exist, or
    /// a prior version of it (copied back as the current one); else 400.
    /// The row stays locked while the object comes back, so a purge
    /// racing it waits and then removes what was restored.
    pub async fn file_restore(
        &self,
        client: &str,
        user: &EndUser,
        id: &str,
    ) -> Result<FileRow, DomainError> {
        let tenant = self.files_tenant(client).await?;
        let file = self
            .file_op(&tenant, id, user, Permission::Delete, true, "restore")
            .await?;
        if file.status != "soft_deleted" {
            return Err(DomainError::Invalid(format!(
                "the file is {}, not deleted: nothing to restore",
                file.status
            )));
        }
        let (store, _) = self.catalog_store(client, file.s3_id).await?;
        let mut conn = tenant.pool.get().await?;
        let tx = conn.transaction().await.map_err(pg)?;
        tx.query_opt(
            "SELECT 1 FROM athena.files WHERE id = $1 AND status = 'soft_deleted' FOR UPDATE",
            &[&file.id],
        )
        .await
        .map_err(pg)?
        .ok_or_else(|| DomainError::Invalid("the file changed meanwhile; retry".into()))?;
        let head = match self
            .object_head(&store, &file.bucket, &file.storage_key)
            .await?
        {
            Some(head) => head,
            None => match self.restore_prior_version(&store, &file).await? {
                Some(head) => head,
                None => {
                    drop(tx);
                    drop(conn);
                    Self::audit(
                        &tenant,
                        "restore",
                        "failed",
                        user,
                        Some(&file),
                        Some("no object and no prior version"),
                    )
                    .await;
                    return Err(DomainError::Invalid(
                        "the file's object is gone and no prior version of it exists: it cannot be restored"
                            .into(),
                    ));
                }
            },
        };
        let size = head
            .header("content-length")
            .and_then(|s| s.parse::<i64>().ok());
        let updated = tx
            .query_one(
                &format!(
                    "UPDATE athena.files SET status = 'available', deleted_at = NULL,
                         size_bytes = COALESCE($2, size_bytes), updated_at = now()
                      WHERE id = $1 RETURNING {COLUMNS}"
                ),
                &[&file.id, &size],
            )
            .await
            .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        drop(conn);
        let file = row(&updated);
        Self::audit(&tenant, "restore", "ok", user, Some(&file), None).await;
        Ok(file)
    }

    /// Deletes every version of a file's object and marks the row purged
    /// (live or soft-deleted files; `delete` needed). The row first: from
    /// then on nothing can restore or read it through Athena.
    pub async fn file_purge(
        &self,
        client: &str,
        user: &EndUser,
        id: &str,
    ) -> Result<FileRow, DomainError> {
        let tenant = self.files_tenant(client).await?;
        let file = self
            .file_op(&tenant, id, user, Permission::Delete, true, "purge")
            .await?;
        let (store, _) = self.catalog_store(client, file.s3_id).await?;
        let conn = tenant.pool.get().await?;
        let updated = conn
            .query_opt(
                &format!(
                    "UPDATE athena.files SET status = 'purged', deleted_at = COALESCE(deleted_at, now()),
                         updated_at = now()
                      WHERE id = $1 AND status <> 'purged' RETURNING {COLUMNS}"
                ),
                &[&file.id],
            )
            .await
            .map_err(pg)?
            .ok_or_else(|| DomainError::not_found("file", file.id.to_string()))?;
        let purged = row(&updated);
        drop(conn);
        if let Err(e) = self.delete_all_versions(&store, &purged).await {
            // The store refused (an object under retention refuses its
            // deletes; versions go oldest first, so the current one is
            // still there): the row goes back to what it was, and a later
            // purge or restore decides from the versions left.
            tenant
                .pool
                .get()
                .await?
                .execute(
                    "UPDATE athena.files SET status = $2, deleted_at = $3, updated_at = now()
                      WHERE id = $1 AND status = 'purged'",
                    &[&file.id, &file.status, &file.deleted_at],
                )
                .await
                .map_err(pg)?;
            Self::audit(
                &tenant,
                "purge",
                "failed",
                user,
                Some(&file),
                Some(&e.to_string()),
            )
            .await;
            return Err(e);
        }
        let file = purged;
        self.forget_urls(client, file.id).await;
        Self::audit(&tenant, "purge", "ok", user, Some(&file), None).await;
        Ok(file)
    }

    /// The URL a public reader uses for a public, available file: under
    /// the catalog's configured public base URL (`publicBaseUrl` of its
    /// connection settings: a CDN or public bucket the deployment set up),
    /// else a presigned GET as short-lived as `url`'s (the bucket stays
    /// private; a file made private again stops being served soon).
    /// Not public → 403.
    pub async fn file_public_url(
        &self,
        client: &str,
        user: &EndUser,
        id: &str,
    ) -> Result<Value, DomainError> {
        let tenant = self.files_tenant(client).await?;
        let file = self
            .file_op(&tenant, id, user, Permission::Read, false, "public_url")
            .await?;
        if file.visibility != "public" {
            Self::audit(
                &tenant,
                "public_url",
                "denied",
                user,
                Some(&file),
                Some("not public"),
            )
            .await;
            return Err(DomainError::Forbidden(
                "the file is not public (set its visibility first)".into(),
            ));
        }
        let file = self.bytes_ready(&tenant, client, user, file).await?;
        let catalog = self.catalog(client, file.s3_id).await?;
        let answer = match public_base(&catalog.metadata) {
            Some(base) => json!({
                "file_id": file.id.to_string(), "bucket": file.bucket,
                "storage_key": file.storage_key, "purpose": "public", "public": true,
                "url": format!("{base}/{}", s3::signing::uri_encode(&file.storage_key, false)),
                "source": "public_base_url", "expires_at": null, "expires_in": null,
            }),
            None => {
                let (store, _) = self.catalog_store(client, file.s3_id).await?;
                let url = store.presign(
                    &Method::GET,
                    &file.bucket,
                    &file.storage_key,
                    DEFAULT_URL_TTL,
                    &[],
                )?;
                let mut answer = presigned(&file, "public", url, DEFAULT_URL_TTL);
                answer["public"] = json!(true);
                answer["source"] = json!("presigned");
                answer
            }
        };
        Self::audit(&tenant, "public_url", "ok", user, Some(&file), None).await;
        Ok(answer)
    }
}

/// The public base URL of a catalog's connection settings
/// (`metadata.athena_connection.publicBaseUrl`), checked again (the row is
/// the tenant's data): an http(s) URL without query, fragment or user
/// info, without its trailing `/`.
fn public_base(metadata: &Value) -> Option<String> {
    let text = metadata
        .get("athena_connection")?
        .get("publicBaseUrl")?
        .as_str()?
        .trim();
    let url = url::Url::parse(text).ok()?;
    let fits = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none()
        && text.len() <= 512
        && !text.chars().any(char::is_control);
    fits.then(|| url.as_str().trim_end_matches('/').to_string())
}
