//! Operations on many files at once (`delete-many`, `update-many`,
//! `visibility-many`), all or nothing: every file is checked first (one
//! unknown or unreadable → 404, one not permitted → 403, nothing done),
//! then the rows change in one transaction.

use super::lifecycle::{visibility, Changes, UpdateRequest};
use super::*;

/// Most files one batch names.
const MAX_BATCH: usize = 100;

/// `POST /storage/files/delete-many`: the SDK's
/// `DeleteManyStorageFilesRequest`.
#[derive(Debug, Deserialize)]
pub struct FileIdsRequest {
    pub file_ids: Vec<String>,
}

/// `POST /storage/files/update-many`: the SDK's
/// `UpdateManyStorageFilesRequest` (the fields of an update, applied to
/// every file; moves are one file at a time).
#[derive(Debug, Deserialize)]
pub struct UpdateManyRequest {
    pub file_ids: Vec<String>,
    #[serde(flatten)]
    pub update: UpdateRequest,
}

/// `POST /storage/files/visibility-many`: the SDK's
/// `SetManyStorageFileVisibilityRequest`.
#[derive(Debug, Deserialize)]
pub struct VisibilityManyRequest {
    pub file_ids: Vec<String>,
    pub public: Option<bool>,
    pub visibility: Option<String>,
}

fn many(files: &[FileRow]) -> Value {
    let views: Vec<Value> = files.iter().map(FileRow::view).collect();
    json!({ "count": views.len(), "files": views })
}

impl Storage {
    /// The live files `ids` names (each once, in the order given), every
    /// one readable and permitting each of `wanted`: else 404 (the first
    /// unknown or unreadable) or 403 (each refusal audited), nothing done.
    async fn files_op(
        &self,
        tenant: &Tenant,
        ids: &[String],
        user: &EndUser,
        wanted: &[Permission],
        op: &str,
    ) -> Result<Vec<FileRow>, DomainError> {
        if ids.is_empty() || ids.len() > MAX_BATCH {
            return Err(DomainError::invalid_field(
                "file_ids",
                format!("1-{MAX_BATCH} file ids"),
            ));
        }
        let mut order: Vec<Uuid> = Vec::with_capacity(ids.len());
        for id in ids {
            let id = file_id(id)?;
            if !order.contains(&id) {
                order.push(id);
            }
        }
        let conn = tenant.pool.get().await?;
        let rows = conn
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM athena.files
                      WHERE id = ANY($1) AND client_name = $2 AND status NOT IN ('soft_deleted', 'purged')"
                ),
                &[&order, &tenant.name],
            )
            .await
            .map_err(pg)?;
        drop(conn);
        let found: Vec<FileRow> = rows.iter().map(row).collect();
        let grants = Self::grants(tenant, &order).await?;
        let mut files = Vec::with_capacity(order.len());
        for id in &order {
            let file = found
                .iter()
                .find(|f| f.id == *id)
                .filter(|f| Self::permits(f, &grants, user, Permission::Read))
                .ok_or_else(|| DomainError::not_found("file", id.to_string()))?;
            files.push(file.clone());
        }
        let mut refused = None;
        for file in &files {
            for w in wanted {
                if let Err(e) = Self::judged(file, &grants, user, *w) {
                    Self::audit(tenant, op, "denied", user, Some(file), Some(w.as_str())).await;
                    refused.get_or_insert(e);
                }
            }
        }
        match refused {
            Some(e) => Err(e),
            None => Ok(files),
        }
    }

    /// Soft-deletes every row (one transaction), then deletes the objects
    /// (`delete` on each file).
    pub async fn files_delete_many(
        &self,
        client: &str,
        user: &EndUser,
        r: FileIdsRequest,
    ) -> Result<Value, DomainError> {
        let tenant = self.files_tenant(client).await?;
        let files = self
            .files_op(&tenant, &r.file_ids, user, &[Permission::Delete], "delete")
            .await?;
        let ids: Vec<Uuid> = files.iter().map(|f| f.id).collect();
        let deleted: Vec<FileRow> = {
            let mut conn = tenant.pool.get().await?;
            let tx = conn.transaction().await.map_err(pg)?;
            let rows = tx
                .query(
                    &format!(
                        "UPDATE athena.files SET status = 'soft_deleted', deleted_at = now(), updated_at = now()
                          WHERE id = ANY($1) AND status NOT IN ('soft_deleted', 'purged') RETURNING {COLUMNS}"
                    ),
                    &[&ids],
                )
                .await
                .map_err(pg)?;
            if rows.len() != ids.len() {
                return Err(DomainError::Invalid(
                    "some of the files changed meanwhile; nothing was deleted (retry)".into(),
                ));
            }
            tx.commit().await.map_err(pg)?;
            let rows: Vec<FileRow> = rows.iter().map(row).collect();
            ids.iter()
                .filter_map(|id| rows.iter().find(|f| f.id == *id).cloned())
                .collect()
        };
        let mut failed = None;
        for file in &deleted {
            self.forget_urls(client, file.id).await;
            let (store, _) = self.catalog_store(client, file.s3_id).await?;
            let call = Call::new(Method::DELETE, Some(&file.bucket), Some(&file.storage_key));
            match self.s3.send(&store, call, &file.storage_key).await {
                Ok(_) => Self::audit(&tenant, "delete", "ok", user, Some(file), None).await,
                Err(e) => {
                    Self::audit(
                        &tenant,
                        "delete",
                        "failed",
                        user,
                        Some(file),
                        Some("the object was not deleted"),
                    )
                    .await;
                    failed.get_or_insert(e);
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(many(&deleted)),
        }
    }

    /// The same update on every file (`write` on each; `share` too when
    /// it sets the visibility), in one transaction.
    pub async fn files_update_many(
        &self,
        client: &str,
        user: &EndUser,
        r: UpdateManyRequest,
    ) -> Result<Value, DomainError> {
        for (field, sent) in [
            ("storage_key", r.update.storage_key.is_some()),
            ("bucket", r.update.bucket.is_some()),
        ] {
            if sent {
                return Err(DomainError::invalid_field(
                    field,
                    "files move one at a time (PATCH /storage/files/{file_id}) or by folder",
                ));
            }
        }
        let changes = Changes::of(&r.update)?;
        let tenant = self.files_tenant(client).await?;
        let mut wanted = vec![Permission::Write];
        if changes.visibility.is_some() {
            wanted.push(Permission::Share);
        }
        let files = self
            .files_op(&tenant, &r.file_ids, user, &wanted, "update")
            .await?;
        let updated = self
            .write_all(&tenant, &files, &changes, user, &wanted)
            .await?;
        for f in &updated {
            self.forget_urls(client, f.id).await;
            Self::audit(&tenant, "update", "ok", user, Some(f), None).await;
        }
        Ok(many(&updated))
    }

    /// Sets who may read every file (`share` or ownership on each).
    pub async fn files_visibility_many(
        &self,
        client: &str,
        user: &EndUser,
        r: VisibilityManyRequest,
    ) -> Result<Value, DomainError> {
        let visibility = visibility(&r.visibility, r.public)?.ok_or_else(|| {
            DomainError::invalid_field("visibility", "`visibility` or `public` is required")
        })?;
        let tenant = self.files_tenant(client).await?;
        let files = self
            .files_op(
                &tenant,
                &r.file_ids,
                user,
                &[Permission::Share],
                "visibility",
            )
            .await?;
        let changes = Changes {
            visibility: Some(visibility),
            ..Changes::default()
        };
        let updated = self
            .write_all(&tenant, &files, &changes, user, &[Permission::Share])
            .await?;
        for f in &updated {
            self.forget_urls(client, f.id).await;
            Self::audit(&tenant, "visibility", "ok", user, Some(f), Some(visibility)).await;
        }
        Ok(many(&updated))
    }

    /// `changes` written to every file in one transaction (a file deleted
    /// meanwhile: nothing written, 404).
    /// Writes `changes` to every file in one transaction, the rows locked
    /// and `wanted` decided again under the locks first (a grant revoked
    /// since `files_op` checked is seen: nothing changes, 403).
    async fn write_all(
        &self,
        tenant: &Tenant,
        files: &[FileRow],
        changes: &Changes,
        user: &EndUser,
        wanted: &[Permission],
    ) -> Result<Vec<FileRow>, DomainError> {
        let mut conn = tenant.pool.get().await?;
        let tx = conn.transaction().await.map_err(pg)?;
        let mut ids: Vec<Uuid> = files.iter().map(|f| f.id).collect();
        ids.sort_unstable();
        let locked: Vec<FileRow> = tx
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM athena.files
                      WHERE id = ANY($1) AND status NOT IN ('soft_deleted', 'purged')
                      ORDER BY id FOR UPDATE"
                ),
                &[&ids],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(row)
            .collect();
        let grants = permissions::live_grants(&tx, &ids).await?;
        for f in files {
            let now = locked
                .iter()
                .find(|l| l.id == f.id)
                .ok_or_else(|| DomainError::not_found("file", f.id.to_string()))?;
            if wanted
                .iter()
                .any(|w| !Self::permits(now, &grants, user, *w))
            {
                return Err(DomainError::Forbidden(
                    "a permission changed meanwhile; nothing was changed".into(),
                ));
            }
        }
        let mut out = Vec::with_capacity(files.len());
        for f in files {
            let updated = changes
                .write(&tx, f.id, None)
                .await?
                .ok_or_else(|| DomainError::not_found("file", f.id.to_string()))?;
            out.push(updated);
        }
        tx.commit().await.map_err(pg)?;
        Ok(out)
    }
}
