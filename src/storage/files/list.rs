//! Listing managed files: the readable files under a prefix.

use super::*;

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
