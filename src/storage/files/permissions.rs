//! Sharing: a file's grants (`/storage/permissions/list|grant|revoke|check`).
//!
//! Who may do what:
//! - `list`: `share` or ownership sees every grant of the file (live ones,
//!   and revoked/expired ones with `include_revoked`); a reader without
//!   `share` sees only the grants naming them (their user or their
//!   organization). A file they may not read is a 404.
//! - `grant` / `revoke`: `share` or ownership; an `owner` grant (given or
//!   taken away) only by an owner, and a sharer grants only what they hold
//!   themselves (`read`, `share`, and `write`/`delete` if theirs): sharing
//!   never escalates.
//! - `check`: the caller's own permission on a file they may read
//!   (`{allowed, permission}`); a file they may not read is a 404.
//!
//! Concurrency: grant and revoke lock the file's row (`FOR UPDATE`) and
//! decide inside that transaction, so they are serialized with each other
//! and with a delete (which updates the row): a sharer whose `share` was
//! revoked cannot grant afterwards, and nothing is granted on a deleted
//! file. Nothing caches grants: every request reads them from the
//! database, so a revoke is seen by every request that starts after it
//! returned.

use super::*;
use tokio_postgres::GenericClient;

/// `POST /storage/permissions/list` (the SDK's `StoragePermissionListRequest`).
#[derive(Debug, Deserialize)]
pub struct PermissionListRequest {
    #[serde(alias = "fileId")]
    pub file_id: String,
    /// Revoked and expired grants too (`share` or ownership only).
    #[serde(default, alias = "includeRevoked")]
    pub include_revoked: bool,
}

/// `POST /storage/permissions/grant` (`StoragePermissionGrantRequest`).
#[derive(Debug, Deserialize)]
pub struct GrantRequest {
    #[serde(alias = "fileId")]
    pub file_id: String,
    #[serde(alias = "principalType")]
    pub principal_type: String,
    #[serde(alias = "principalId")]
    pub principal_id: String,
    #[serde(alias = "action")]
    pub permission: String,
    #[serde(alias = "expiresAt")]
    pub expires_at: Option<DateTime<Utc>>,
    pub metadata: Option<Map<String, Value>>,
}

/// `POST /storage/permissions/revoke` (`StoragePermissionRevokeRequest`).
#[derive(Debug, Deserialize)]
pub struct RevokeRequest {
    #[serde(alias = "fileId")]
    pub file_id: String,
    #[serde(alias = "principalType")]
    pub principal_type: String,
    #[serde(alias = "principalId")]
    pub principal_id: String,
    #[serde(alias = "action")]
    pub permission: String,
}

/// `POST /storage/permissions/check` (`StoragePermissionCheckRequest`).
#[derive(Debug, Deserialize)]
pub struct CheckRequest {
    #[serde(alias = "fileId")]
    pub file_id: String,
    #[serde(alias = "action")]
    pub permission: String,
}

const PRINCIPAL_TYPES: [&str; 4] = ["user", "organization", "team", "role"];

const GRANT_COLUMNS: &str = "id, file_id, principal_type, principal_id, permission, granted_by,
    expires_at, revoked_at, created_at, metadata";

/// `StorageFilePermissionRecord` (plus `live`).
fn grant_view(r: &tokio_postgres::Row) -> Value {
    let expires: Option<DateTime<Utc>> = r.get(6);
    let revoked: Option<DateTime<Utc>> = r.get(7);
    json!({
        "id": r.get::<_, Uuid>(0).to_string(),
        "file_id": r.get::<_, Uuid>(1).to_string(),
        "principal_type": r.get::<_, String>(2),
        "principal_id": r.get::<_, String>(3),
        "permission": r.get::<_, String>(4),
        "granted_by_user_id": r.get::<_, Option<String>>(5),
        "expires_at": expires,
        "revoked_at": revoked,
        "created_at": r.get::<_, DateTime<Utc>>(8),
        "metadata": r.get::<_, Value>(9),
        "live": revoked.is_none() && expires.is_none_or(|e| e > Utc::now()),
    })
}

fn permission(text: &str) -> Result<Permission, DomainError> {
    Permission::parse(text).ok_or_else(|| {
        DomainError::invalid_field("permission", "read, write, delete, share or owner")
    })
}

fn principal(kind: &str, id: &str) -> Result<(), DomainError> {
    if !PRINCIPAL_TYPES.contains(&kind) {
        return Err(DomainError::invalid_field(
            "principal_type",
            "user, organization, team or role",
        ));
    }
    if id.trim().is_empty() || id.len() > 256 || id.chars().any(char::is_control) {
        return Err(DomainError::invalid_field(
            "principal_id",
            "1-256 characters, no control characters",
        ));
    }
    Ok(())
}

/// The live grants of `files` read through `c` (a transaction or a
/// connection).
pub(super) async fn live_grants<C: GenericClient>(
    c: &C,
    files: &[Uuid],
) -> Result<Vec<GrantRow>, DomainError> {
    let rows = c
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

/// What `user` needs to grant (`revoke` false) or revoke `p`.
fn needed(p: Permission, revoke: bool) -> Vec<Permission> {
    match p {
        Permission::Owner => vec![Permission::Owner],
        Permission::Write | Permission::Delete if !revoke => vec![Permission::Share, p],
        _ => vec![Permission::Share],
    }
}

/// The live file `id`, its row locked until `tx` ends, if `user` may read
/// it (else 404) and do each of `wanted` (else 403; the refusal is
/// audited and `tx` committed with nothing else in it).
pub(super) async fn locked_file<'a>(
    tx: tokio_postgres::Transaction<'a>,
    tenant: &Tenant,
    id: &str,
    user: &EndUser,
    wanted: &[Permission],
    operation: &str,
) -> Result<(tokio_postgres::Transaction<'a>, FileRow), DomainError> {
    let id = file_id(id)?;
    let found = tx
        .query_opt(
            &format!(
                "SELECT {COLUMNS} FROM athena.files
                  WHERE id = $1 AND client_name = $2 AND status NOT IN ('soft_deleted', 'purged')
                  FOR UPDATE"
            ),
            &[&id, &tenant.name],
        )
        .await
        .map_err(pg)?
        .as_ref()
        .map(row)
        .ok_or_else(|| DomainError::not_found("file", id.to_string()))?;
    let grants = live_grants(&tx, &[found.id]).await?;
    if !Storage::permits(&found, &grants, user, Permission::Read) {
        return Err(DomainError::not_found("file", id.to_string()));
    }
    if let Some(missing) = wanted
        .iter()
        .find(|w| !Storage::permits(&found, &grants, user, **w))
    {
        audit_on(
            &tx,
            tenant,
            operation,
            "denied",
            user,
            Some(&found),
            Some(missing.as_str()),
        )
        .await?;
        tx.commit().await.map_err(pg)?;
        return Err(DomainError::Forbidden(match missing {
            Permission::Owner => "only an owner gives or takes ownership of this file".into(),
            Permission::Share => "the end user may not share this file".into(),
            other => format!(
                "the end user may not grant {}: a sharer grants only what they hold",
                other.as_str()
            ),
        }));
    }
    Ok((tx, found))
}

impl Storage {
    /// A file's grants: all of them for `share` or an owner, else the ones
    /// naming the caller.
    pub async fn permissions_list(
        &self,
        client: &str,
        user: &EndUser,
        r: PermissionListRequest,
    ) -> Result<Value, DomainError> {
        let tenant = self.files_tenant(client).await?;
        let file = self
            .file_for(&tenant, &r.file_id, user, Permission::Read)
            .await?;
        let grants = Self::grants(&tenant, &[file.id]).await?;
        let all = Self::permits(&file, &grants, user, Permission::Share);
        let rows = tenant
            .pool
            .get()
            .await?
            .query(
                &format!(
                    "SELECT {GRANT_COLUMNS} FROM athena.file_permissions
                      WHERE file_id = $1
                        AND ($2 OR (principal_type = 'user' AND principal_id = $3)
                                OR (principal_type = 'organization' AND principal_id = $4))
                        AND ($5 OR (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())))
                      ORDER BY created_at, id LIMIT 1000"
                ),
                &[&file.id, &all, &user.user_id, &user.organization_id, &(all && r.include_revoked)],
            )
            .await
            .map_err(pg)?;
        let permissions: Vec<Value> = rows.iter().map(grant_view).collect();
        Self::audit(&tenant, "permissions_list", "ok", user, Some(&file), None).await;
        Ok(json!({
            "file_id": file.id.to_string(),
            "count": permissions.len(),
            "permissions": permissions,
        }))
    }

    /// Grants `permission` to a principal (a live identical grant is
    /// updated: its expiry and metadata), `share` or ownership needed,
    /// ownership to grant `owner`.
    pub async fn permission_grant(
        &self,
        client: &str,
        user: &EndUser,
        r: GrantRequest,
    ) -> Result<Value, DomainError> {
        let wanted = permission(&r.permission)?;
        principal(&r.principal_type, &r.principal_id)?;
        if r.expires_at.is_some_and(|e| e <= Utc::now()) {
            return Err(DomainError::invalid_field(
                "expires_at",
                "must be in the future",
            ));
        }
        let metadata = r.metadata.clone().map(Value::Object);
        let tenant = self.files_tenant(client).await?;
        let mut conn = tenant.pool.get().await?;
        let tx = conn.transaction().await.map_err(pg)?;
        // A grant to oneself (or one's own organization) would let a
        // sharer extend or widen their own access: owners only.
        let to_self = match r.principal_type.as_str() {
            "user" => r.principal_id == user.user_id,
            "organization" => user.organization_id.as_deref() == Some(r.principal_id.as_str()),
            _ => false,
        };
        let needs = if to_self {
            vec![Permission::Owner]
        } else {
            needed(wanted, false)
        };
        let (tx, file) =
            locked_file(tx, &tenant, &r.file_id, user, &needs, "permission_grant").await?;
        let updated = tx
            .query_opt(
                &format!(
                    "UPDATE athena.file_permissions SET expires_at = $5, metadata = COALESCE($6, metadata),
                            granted_by = $7
                      WHERE id = (SELECT id FROM athena.file_permissions
                                   WHERE file_id = $1 AND principal_type = $2 AND principal_id = $3
                                     AND permission = $4 AND revoked_at IS NULL
                                     AND (expires_at IS NULL OR expires_at > now())
                                   ORDER BY created_at LIMIT 1)
                      RETURNING {GRANT_COLUMNS}"
                ),
                &[&file.id, &r.principal_type, &r.principal_id, &r.permission, &r.expires_at, &metadata, &user.user()],
            )
            .await
            .map_err(pg)?;
        let granted = match updated {
            Some(g) => g,
            None => tx
                .query_one(
                    &format!(
                        "INSERT INTO athena.file_permissions
                           (id, file_id, principal_type, principal_id, permission, granted_by, expires_at, metadata)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, COALESCE($8, '{{}}'::jsonb))
                         RETURNING {GRANT_COLUMNS}"
                    ),
                    &[&Uuid::new_v4(), &file.id, &r.principal_type, &r.principal_id, &r.permission,
                      &user.user(), &r.expires_at, &metadata],
                )
                .await
                .map_err(pg)?,
        };
        let detail = format!("{} {}:{}", r.permission, r.principal_type, r.principal_id);
        audit_on(
            &tx,
            &tenant,
            "permission_grant",
            "ok",
            user,
            Some(&file),
            Some(&detail),
        )
        .await?;
        tx.commit().await.map_err(pg)?;
        Ok(json!({ "permission": grant_view(&granted) }))
    }

    /// Revokes the live grants of `permission` to a principal (`revoked_at`
    /// set; the rows stay as history). Effective for every request that
    /// starts after this returns.
    pub async fn permission_revoke(
        &self,
        client: &str,
        user: &EndUser,
        r: RevokeRequest,
    ) -> Result<Value, DomainError> {
        let wanted = permission(&r.permission)?;
        principal(&r.principal_type, &r.principal_id)?;
        let tenant = self.files_tenant(client).await?;
        let mut conn = tenant.pool.get().await?;
        let tx = conn.transaction().await.map_err(pg)?;
        let needs = needed(wanted, true);
        let (tx, file) =
            locked_file(tx, &tenant, &r.file_id, user, &needs, "permission_revoke").await?;
        let rows = tx
            .query(
                &format!(
                    "UPDATE athena.file_permissions SET revoked_at = now()
                      WHERE file_id = $1 AND principal_type = $2 AND principal_id = $3
                        AND permission = $4 AND revoked_at IS NULL
                      RETURNING {GRANT_COLUMNS}"
                ),
                &[&file.id, &r.principal_type, &r.principal_id, &r.permission],
            )
            .await
            .map_err(pg)?;
        let detail = format!("{} {}:{}", r.permission, r.principal_type, r.principal_id);
        audit_on(
            &tx,
            &tenant,
            "permission_revoke",
            "ok",
            user,
            Some(&file),
            Some(&detail),
        )
        .await?;
        tx.commit().await.map_err(pg)?;
        let revoked: Vec<Value> = rows.iter().map(grant_view).collect();
        Ok(json!({
            "file_id": file.id.to_string(),
            "revoked": revoked.len(),
            "permissions": revoked,
        }))
    }

    /// Whether the caller may do `permission` to a file they may read.
    pub async fn permission_check(
        &self,
        client: &str,
        user: &EndUser,
        r: CheckRequest,
    ) -> Result<Value, DomainError> {
        let wanted = permission(&r.permission)?;
        let tenant = self.files_tenant(client).await?;
        let file = self
            .file_for(&tenant, &r.file_id, user, Permission::Read)
            .await?;
        let grants = Self::grants(&tenant, &[file.id]).await?;
        let allowed = Self::permits(&file, &grants, user, wanted);
        Self::audit(
            &tenant,
            "permission_check",
            "ok",
            user,
            Some(&file),
            Some(wanted.as_str()),
        )
        .await;
        Ok(json!({
            "file_id": file.id.to_string(),
            "allowed": allowed,
            "permission": wanted.as_str(),
        }))
    }
}
