//! The versions of a managed file's object (S3 versioning: list, make
//! one current again, delete one) and its retention (S3 Object Lock).
//! A store without the feature answers `NotImplemented` (the documented
//! 501); a bucket without it, the store's 400.

use super::*;
use crate::storage::objects::Source;
use crate::storage::s3::{Reply, Store};
use crate::storage::xml;

/// One version (or delete marker) of an object.
pub(super) struct ObjectVersion {
    pub version_id: String,
    pub is_latest: bool,
    pub delete_marker: bool,
    pub size: Option<i64>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl ObjectVersion {
    fn view(&self) -> Value {
        json!({
            "version_id": self.version_id, "is_latest": self.is_latest,
            "delete_marker": self.delete_marker, "size": self.size,
            "etag": self.etag.as_deref().map(|e| e.trim_matches('"')),
            "last_modified": self.last_modified,
        })
    }
}

/// Most listing pages read for one key's versions.
const MAX_VERSION_PAGES: usize = 100;

/// `POST /storage/files/{file_id}/retention`: the SDK's
/// `StorageFileRetentionRequest`.
#[derive(Debug, Deserialize)]
pub struct RetentionRequest {
    pub mode: Option<String>,
    pub retain_until: Option<String>,
    /// The SDK's other name for `retain_until`.
    pub retain_until_date: Option<String>,
    pub version_id: Option<String>,
    pub bypass_governance: Option<bool>,
}

fn version_id(v: &str) -> Result<(), DomainError> {
    if v.is_empty() || v.len() > 1024 || v.chars().any(char::is_control) {
        return Err(DomainError::invalid_field(
            "version_id",
            "1-1024 characters",
        ));
    }
    Ok(())
}

/// `<Retention>` of GetObjectRetention.
#[derive(Debug, Default, Deserialize)]
struct Retention {
    #[serde(rename = "Mode")]
    mode: Option<String>,
    #[serde(rename = "RetainUntilDate")]
    retain_until: Option<String>,
}

impl Storage {
    /// Every version and delete marker of exactly `key`, in the store's
    /// order (newest first).
    pub(super) async fn key_versions(
        &self,
        store: &Store,
        bucket: &str,
        key: &str,
    ) -> Result<Vec<ObjectVersion>, DomainError> {
        let mut out = Vec::new();
        let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
        for _ in 0..MAX_VERSION_PAGES {
            let mut call = Call::new(Method::GET, Some(bucket), None)
                .query("versions", "")
                .query("prefix", key)
                .query("max-keys", "1000");
            if let Some(m) = &key_marker {
                call = call.query("key-marker", m.clone());
            }
            if let Some(m) = &version_marker {
                call = call.query("version-id-marker", m.clone());
            }
            let page: xml::VersionsPage = self.s3.send(store, call, bucket).await?.xml()?;
            for e in &page.entries {
                let (v, delete_marker) = match e {
                    xml::VersionEntry::Version(v) => (v, false),
                    xml::VersionEntry::DeleteMarker(v) => (v, true),
                    _ => continue,
                };
                if v.key == key {
                    out.push(ObjectVersion {
                        version_id: v.version_id.clone().unwrap_or_else(|| "null".into()),
                        is_latest: v.is_latest,
                        delete_marker,
                        size: v.size,
                        etag: v.etag.clone(),
                        last_modified: v.last_modified.clone(),
                    });
                }
            }
            key_marker = page.next_key_marker().map(str::to_string);
            version_marker = page.next_version_id_marker().map(str::to_string);
            // Done, past this key (the prefix also matches longer keys), or
            // a store that names no place to go on from.
            if !page.is_truncated() || key_marker.as_deref().is_none_or(|k| k != key) {
                break;
            }
        }
        Ok(out)
    }

    /// Whether anything is stored at `key`: an object, or any version or
    /// delete marker of one (a new file there could otherwise list and
    /// restore versions written before it). A store that cannot list
    /// versions: whether an object is there.
    pub(super) async fn key_taken(
        &self,
        store: &Store,
        bucket: &str,
        key: &str,
    ) -> Result<bool, DomainError> {
        match self.key_versions(store, bucket, key).await {
            Ok(versions) => Ok(!versions.is_empty()),
            Err(DomainError::Unsupported(_)) => {
                Ok(self.object_head(store, bucket, key).await?.is_some())
            }
            Err(e) => Err(e),
        }
    }

    /// Makes the newest version of a deleted object current again; its
    /// HEAD, or `None` when no version is left.
    pub(super) async fn restore_prior_version(
        &self,
        store: &Store,
        file: &FileRow,
    ) -> Result<Option<Reply>, DomainError> {
        let versions = match self
            .key_versions(store, &file.bucket, &file.storage_key)
            .await
        {
            Ok(v) => v,
            Err(DomainError::Unsupported(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(prior) = versions.iter().find(|v| !v.delete_marker) else {
            return Ok(None);
        };
        let head = self.version_head(store, file, &prior.version_id).await?;
        self.copy(
            store,
            Source {
                bucket: &file.bucket,
                key: &file.storage_key,
                version: Some(&prior.version_id),
            },
            &file.bucket,
            &file.storage_key,
            Some(&head),
        )
        .await?;
        self.object_head(store, &file.bucket, &file.storage_key)
            .await
    }

    /// Deletes every version and delete marker of a file's object (a
    /// store that lists no versions: the object itself), then checks that
    /// none is left.
    pub(super) async fn delete_all_versions(
        &self,
        store: &Store,
        file: &FileRow,
    ) -> Result<(), DomainError> {
        let (bucket, key) = (file.bucket.as_str(), file.storage_key.as_str());
        let versions = match self.key_versions(store, bucket, key).await {
            Ok(v) => v,
            Err(DomainError::Unsupported(_)) => {
                let call = Call::new(Method::DELETE, Some(bucket), Some(key));
                self.s3.send(store, call, key).await?;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        // Oldest first: a version the store refuses to delete (Object
        // Lock) stops the loop before the current one goes, so what readers
        // get is never changed by a purge that fails half way.
        for v in versions.iter().rev() {
            let call = Call::new(Method::DELETE, Some(bucket), Some(key))
                .query("versionId", v.version_id.clone());
            self.s3.send(store, call, key).await?;
        }
        let left = self.key_versions(store, bucket, key).await?.len();
        if left > 0 || self.object_head(store, bucket, key).await?.is_some() {
            return Err(DomainError::ServiceUnavailable(format!(
                "{left} versions of `{key}` are still stored; retry"
            )));
        }
        Ok(())
    }

    /// HEAD of one version (404 when there is no such version).
    async fn version_head(
        &self,
        store: &Store,
        file: &FileRow,
        version: &str,
    ) -> Result<Reply, DomainError> {
        let what = format!("{}/{}", file.bucket, file.storage_key);
        let head = Call::new(Method::HEAD, Some(&file.bucket), Some(&file.storage_key))
            .query("versionId", version.to_string());
        let head = self.s3.exchange(store, head).await?;
        match head.status {
            200..=299 => Ok(head),
            404 => Err(DomainError::not_found("object version", version)),
            // A delete marker's HEAD.
            405 => Err(DomainError::invalid_field(
                "version_id",
                "a delete marker, not a version with bytes",
            )),
            _ => Err(crate::storage::s3::s3_error(&head, &what)),
        }
    }

    /// The versions of a readable file's object.
    pub async fn file_versions(
        &self,
        client: &str,
        user: &EndUser,
        id: &str,
    ) -> Result<Value, DomainError> {
        let tenant = self.files_tenant(client).await?;
        let file = self
            .file_op(&tenant, id, user, Permission::Read, false, "versions")
            .await?;
        let (store, _) = self.catalog_store(client, file.s3_id).await?;
        let versions = self
            .key_versions(&store, &file.bucket, &file.storage_key)
            .await?;
        Self::audit(&tenant, "versions", "ok", user, Some(&file), None).await;
        let list: Vec<Value> = versions.iter().map(ObjectVersion::view).collect();
        Ok(json!({
            "file_id": file.id.to_string(), "bucket": file.bucket, "storage_key": file.storage_key,
            "count": list.len(), "versions": list,
        }))
    }

    /// Makes an old version current again (`write`): it is copied over
    /// the key, a new version; the row takes its size.
    pub async fn file_version_restore(
        &self,
        client: &str,
        user: &EndUser,
        id: &str,
        version: &str,
    ) -> Result<Value, DomainError> {
        version_id(version)?;
        let tenant = self.files_tenant(client).await?;
        let file = self
            .file_op(
                &tenant,
                id,
                user,
                Permission::Write,
                false,
                "version_restore",
            )
            .await?;
        let (store, _) = self.catalog_store(client, file.s3_id).await?;
        let head = self.version_head(&store, &file, version).await?;
        let reply = self
            .copy(
                &store,
                Source {
                    bucket: &file.bucket,
                    key: &file.storage_key,
                    version: Some(version),
                },
                &file.bucket,
                &file.storage_key,
                Some(&head),
            )
            .await?;
        let size = head
            .header("content-length")
            .and_then(|s| s.parse::<i64>().ok());
        let conn = tenant.pool.get().await?;
        let updated = conn
            .query_opt(
                &format!(
                    "UPDATE athena.files SET size_bytes = COALESCE($2, size_bytes), checksum_sha256 = NULL,
                         status = 'available', updated_at = now()
                      WHERE id = $1 AND status NOT IN ('soft_deleted', 'purged') RETURNING {COLUMNS}"
                ),
                &[&file.id, &size],
            )
            .await
            .map_err(pg)?
            .ok_or_else(|| DomainError::not_found("file", file.id.to_string()))?;
        drop(conn);
        let file = row(&updated);
        Self::audit(
            &tenant,
            "version_restore",
            "ok",
            user,
            Some(&file),
            Some(version),
        )
        .await;
        Ok(json!({
            "file": file.view(), "restored_version_id": version,
            "version_id": reply.header("x-amz-version-id"),
        }))
    }

    /// Deletes one version (`delete`). When no current object is left
    /// afterwards, the row is soft-deleted (restorable from an older
    /// version, if one remains).
    pub async fn file_version_delete(
        &self,
        client: &str,
        user: &EndUser,
        id: &str,
        version: &str,
    ) -> Result<Value, DomainError> {
        version_id(version)?;
        let tenant = self.files_tenant(client).await?;
        let file = self
            .file_op(
                &tenant,
                id,
                user,
                Permission::Delete,
                false,
                "version_delete",
            )
            .await?;
        let (store, _) = self.catalog_store(client, file.s3_id).await?;
        // An unknown version is a 404 (S3 answers 204 for it); a delete
        // marker may be deleted (that brings the object back).
        match self.version_head(&store, &file, version).await {
            Ok(_) | Err(DomainError::InvalidField { .. }) => {}
            Err(e) => return Err(e),
        }
        let call = Call::new(Method::DELETE, Some(&file.bucket), Some(&file.storage_key))
            .query("versionId", version.to_string());
        self.s3.send(&store, call, &file.storage_key).await?;
        let current = self
            .object_head(&store, &file.bucket, &file.storage_key)
            .await?;
        let conn = tenant.pool.get().await?;
        let updated = if current.is_none() {
            conn.query_opt(
                &format!(
                    "UPDATE athena.files SET status = 'soft_deleted', deleted_at = now(), updated_at = now()
                      WHERE id = $1 AND status NOT IN ('soft_deleted', 'purged') RETURNING {COLUMNS}"
                ),
                &[&file.id],
            )
            .await
        } else {
            conn.query_opt(
                &format!(
                    "UPDATE athena.files SET updated_at = now()
                      WHERE id = $1 AND status NOT IN ('soft_deleted', 'purged') RETURNING {COLUMNS}"
                ),
                &[&file.id],
            )
            .await
        }
        .map_err(pg)?;
        drop(conn);
        let file = updated.as_ref().map(row).unwrap_or(file);
        Self::audit(
            &tenant,
            "version_delete",
            "ok",
            user,
            Some(&file),
            Some(version),
        )
        .await;
        Ok(json!({ "file": file.view(), "version_id": version, "deleted": true }))
    }

    /// Sets a file's Object Lock retention (owners only: a lock keeps
    /// even delete grantees out, and COMPLIANCE cannot be lifted).
    pub async fn file_retention_set(
        &self,
        client: &str,
        user: &EndUser,
        id: &str,
        r: RetentionRequest,
    ) -> Result<Value, DomainError> {
        let mode = match r.mode.as_deref().map(|m| m.trim().to_ascii_uppercase()) {
            Some(m) if m == "GOVERNANCE" || m == "COMPLIANCE" => m,
            _ => {
                return Err(DomainError::invalid_field(
                    "mode",
                    "GOVERNANCE or COMPLIANCE",
                ))
            }
        };
        let until = r
            .retain_until
            .as_deref()
            .or(r.retain_until_date.as_deref())
            .and_then(|t| DateTime::parse_from_rfc3339(t.trim()).ok())
            .map(|t| t.with_timezone(&Utc))
            .filter(|t| *t > Utc::now())
            .ok_or_else(|| {
                DomainError::invalid_field("retain_until", "an RFC 3339 time in the future")
            })?;
        if let Some(v) = &r.version_id {
            version_id(v)?;
        }
        let tenant = self.files_tenant(client).await?;
        let file = self
            .file_op(&tenant, id, user, Permission::Owner, false, "retention")
            .await?;
        let (store, _) = self.catalog_store(client, file.s3_id).await?;
        let until_text = until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let body = format!(
            "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>{mode}</Mode><RetainUntilDate>{until_text}</RetainUntilDate></Retention>"
        );
        let mut call = Call::new(Method::PUT, Some(&file.bucket), Some(&file.storage_key))
            .query("retention", "")
            .document("application/xml", body)?;
        if let Some(v) = &r.version_id {
            call = call.query("versionId", v.clone());
        }
        if r.bypass_governance == Some(true) {
            call = call.header("x-amz-bypass-governance-retention", "true")?;
        }
        let reply = self.s3.exchange(&store, call).await?;
        if !(200..300).contains(&reply.status) {
            let e = no_lock(&reply, &file);
            Self::audit(
                &tenant,
                "retention",
                "failed",
                user,
                Some(&file),
                Some(&e.to_string()),
            )
            .await;
            return Err(e);
        }
        Self::audit(&tenant, "retention", "ok", user, Some(&file), Some(&mode)).await;
        Ok(json!({
            "file_id": file.id.to_string(), "bucket": file.bucket, "storage_key": file.storage_key,
            "version_id": r.version_id, "mode": mode, "retain_until": until_text,
        }))
    }

    /// A readable file's Object Lock retention (`mode` and
    /// `retain_until` null when it has none).
    pub async fn file_retention_get(
        &self,
        client: &str,
        user: &EndUser,
        id: &str,
        version: Option<&str>,
    ) -> Result<Value, DomainError> {
        if let Some(v) = version {
            version_id(v)?;
        }
        let tenant = self.files_tenant(client).await?;
        let file = self
            .file_op(&tenant, id, user, Permission::Read, false, "retention_get")
            .await?;
        let (store, _) = self.catalog_store(client, file.s3_id).await?;
        let mut call = Call::new(Method::GET, Some(&file.bucket), Some(&file.storage_key))
            .query("retention", "");
        if let Some(v) = version {
            call = call.query("versionId", v.to_string());
        }
        let reply = self.s3.exchange(&store, call).await?;
        let retention = match reply.status {
            200..=299 => reply.xml::<Retention>()?,
            // No lock on the object, or none on its bucket: no retention.
            _ if matches!(
                crate::storage::s3::error_code(&reply.body).as_deref(),
                Some(
                    "NoSuchObjectLockConfiguration"
                        | "ObjectLockConfigurationNotFoundError"
                        | "InvalidRequest"
                )
            ) =>
            {
                Retention::default()
            }
            _ => return Err(no_lock(&reply, &file)),
        };
        Self::audit(&tenant, "retention_get", "ok", user, Some(&file), None).await;
        Ok(json!({
            "file_id": file.id.to_string(), "bucket": file.bucket, "storage_key": file.storage_key,
            "version_id": version, "mode": retention.mode, "retain_until": retention.retain_until,
        }))
    }
}

/// A refused retention call: a bucket without Object Lock is named as
/// such (400); anything else is the store's error.
fn no_lock(reply: &Reply, file: &FileRow) -> DomainError {
    match crate::storage::s3::error_code(&reply.body).as_deref() {
        Some("InvalidRequest" | "InvalidBucketState" | "ObjectLockConfigurationNotFoundError") => {
            DomainError::Invalid(format!(
                "bucket `{}` has no Object Lock (a bucket is created with it enabled); retention cannot be set",
                file.bucket
            ))
        }
        _ => crate::storage::s3::s3_error(reply, &format!("{}/{}", file.bucket, file.storage_key)),
    }
}
