//! The SDK's service routes (`/storage/service/files*`): a trusted service
//! (admin key or `storage.service`) acting for an organization, through the
//! same access path as end users (`EndUser::service`, `file_access::decide`),
//! answered in the SDK's camelCase `ManagedFile` shape.

use super::*;

/// `POST /storage/service/files/list` (`ListManagedFilesInput`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceListRequest {
    pub connection_id: String,
    pub organization_id: Option<String>,
    #[serde(default)]
    pub prefix: String,
}

/// Most files one service listing answers (the SDK's request has no paging).
const SERVICE_LIST_LIMIT: i64 = 500;

impl FileRow {
    /// The SDK's `ManagedFile`.
    pub fn service_view(&self) -> Value {
        json!({
            "id": self.id,
            "bucket": self.bucket,
            "key": self.storage_key,
            "name": self.name,
            "connectionId": self.s3_id,
            "contentType": self.mime_type,
            "sizeBytes": self.size_bytes,
            "checksumSha256": self.checksum_sha256,
            "organizationId": self.organization_id,
            "createdByUserId": self.uploaded_by,
            "status": self.status,
            "visibility": self.visibility,
            "metadata": self.metadata,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "deletedAt": self.deleted_at,
        })
    }
}

/// `{file: ManagedFile}` from an answer of the end-user operations
/// (`{file: StorageManagedFile}`), re-read from its row.
pub fn service_file(file: &FileRow) -> Value {
    json!({ "file": file.service_view() })
}

impl Storage {
    /// A live file of the client the service may act on (its organization,
    /// when it names one): the one access path.
    pub async fn service_file_get(
        &self,
        client: &str,
        service: &EndUser,
        id: &str,
    ) -> Result<FileRow, DomainError> {
        let tenant = self.files_tenant(client).await?;
        self.file_for(&tenant, id, service, Permission::Read).await
    }

    /// The live files of a connection under `prefix`, of the organization
    /// when one is named, by key (at most `LIST_LIMIT`).
    pub async fn service_file_list(
        &self,
        client: &str,
        service: &EndUser,
        r: ServiceListRequest,
    ) -> Result<Value, DomainError> {
        let s3_id = Uuid::parse_str(r.connection_id.trim())
            .map_err(|_| DomainError::invalid_field("connectionId", "not a UUID"))?;
        if !r.prefix.is_empty() {
            check_object_key("prefix", &r.prefix)?;
        }
        let organization = match (&r.organization_id, &service.organization_id) {
            (Some(a), Some(b)) if a != b => {
                return Err(DomainError::invalid_field(
                    "organizationId",
                    "differs from X-Organization-Id",
                ))
            }
            (a, b) => a.clone().or_else(|| b.clone()),
        };
        let tenant = self.files_tenant(client).await?;
        // The connection must be the client's (else a 404).
        self.catalog_store(client, s3_id).await?;
        let conn = tenant.pool.get().await?;
        let rows = conn
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM athena.files
                      WHERE client_name = $1 AND s3_id = $2 AND storage_key LIKE $3
                        AND status NOT IN ('soft_deleted', 'purged')
                        AND ($4::text IS NULL OR organization_id = $4)
                      ORDER BY storage_key LIMIT $5"
                ),
                &[
                    &tenant.name,
                    &s3_id,
                    &like_prefix(&r.prefix),
                    &organization,
                    &SERVICE_LIST_LIMIT,
                ],
            )
            .await
            .map_err(pg)?;
        let files: Vec<Value> = rows.iter().map(|r| row(r).service_view()).collect();
        Ok(json!({ "files": files }))
    }
}
