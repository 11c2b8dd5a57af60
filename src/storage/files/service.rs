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

/// `POST /storage/service/files` (`UploadManagedFileInput`): the bytes
/// inline, base64.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceUploadRequest {
    pub body: String,
    pub bucket: String,
    pub connection_id: String,
    pub content_type: Option<String>,
    pub idempotency_key: Option<String>,
    pub key: String,
    pub organization_id: Option<String>,
}

/// The SDK's `FilePermission` from a grant as the end-user routes answer
/// it (`permission` is the SDK's `action`).
pub fn service_permission(grant: &Value) -> Value {
    json!({
        "id": grant["id"],
        "fileId": grant["file_id"],
        "action": grant["permission"],
        "principalId": grant["principal_id"],
        "principalType": grant["principal_type"],
        "grantedByUserId": grant["granted_by_user_id"],
        "expiresAt": grant["expires_at"],
        "revokedAt": grant["revoked_at"],
        "metadata": if grant["metadata"].is_object() { grant["metadata"].clone() } else { json!({}) },
    })
}

impl Storage {
    /// Stores inline bytes as a managed file of the service's organization
    /// (`upload-url`'s rules: the key's holder may be replaced only by a
    /// writer — a service is one — then the bytes, then available). The
    /// `idempotencyKey` is kept in the file's metadata; repeating an upload
    /// stores the same bytes at the same key again (the same end state).
    pub async fn service_file_upload(
        &self,
        client: &str,
        service: &EndUser,
        r: ServiceUploadRequest,
    ) -> Result<FileRow, DomainError> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(r.body.trim())
            .map_err(|_| DomainError::invalid_field("body", "base64 of the file's bytes"))?;
        organization(service)?;
        let mut metadata = Map::new();
        if let Some(k) = &r.idempotency_key {
            text("idempotencyKey", &Some(k.clone()), 256)?;
            metadata.insert("idempotency_key".into(), json!(k));
        }
        let planned = UploadRequest {
            s3_id: r.connection_id,
            bucket: Some(r.bucket),
            storage_key: r.key,
            name: None,
            original_name: None,
            resource_id: None,
            mime_type: None,
            content_type: r.content_type.clone(),
            size_bytes: Some(bytes.len() as i64),
            public: None,
            metadata: Some(metadata),
        };
        let created = self.file_upload_url(client, service, planned).await?;
        let id = created["file"]["id"]
            .as_str()
            .ok_or_else(|| DomainError::Internal("upload-url answered no file id".into()))?
            .to_string();
        let body: ByteStream = Box::pin(futures_util::stream::once(async move {
            Ok(bytes::Bytes::from(bytes))
        }));
        self.file_put_stream(client, service, &id, r.content_type.as_deref(), body)
            .await?;
        let tenant = self.files_tenant(client).await?;
        self.file_for(&tenant, &id, service, Permission::Read).await
    }

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
        // The body's `organizationId` is already the service's (the
        // handler built it from the body or the header, the two agreeing).
        let organization = &service.organization_id;
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
                    &format!("{}%", list::like_escape(&r.prefix)),
                    organization,
                    &SERVICE_LIST_LIMIT,
                ],
            )
            .await
            .map_err(pg)?;
        let files: Vec<Value> = rows.iter().map(|r| row(r).service_view()).collect();
        Ok(json!({ "files": files }))
    }
}
