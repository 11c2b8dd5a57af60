//! `storage_files`: managed files (`/storage/files…`, `src/storage/files.rs`)
//! for the end user of the request (`src/auth/end_user.rs`). One impl (the
//! trait's), in sections by topic like `src/storage/files/`.

use crate::api::{models, params, responses as r, traits::StorageFilesApi};
use crate::auth::end_user::EndUser;
use crate::domain::DomainError;
use crate::handlers::Handlers;
use crate::http::{ApiResult, RequestCx};
use crate::storage::file_access::Visibility;
use serde_json::json;

/// The visibility a request asks for: the SDK's `visibility`, or the
/// contract's `public` flag (true = public, false = private); one of them,
/// and the two agreeing when both are sent.
fn visibility(
    body: &models::StorageManagedFileVisibilityRequest,
) -> Result<Visibility, DomainError> {
    let named = body
        .visibility
        .as_ref()
        .and_then(|v| Visibility::parse(&v.to_string()));
    let flag = body.public.map(|p| {
        if p {
            Visibility::Public
        } else {
            Visibility::Private
        }
    });
    match (named, flag) {
        (Some(a), Some(b)) if a != b => Err(DomainError::invalid_field(
            "visibility",
            "disagrees with `public`",
        )),
        (Some(v), _) | (None, Some(v)) => Ok(v),
        (None, None) => Err(DomainError::invalid_field(
            "visibility",
            "`visibility` (private, organization, public) or `public` is required",
        )),
    }
}

impl Handlers {
    /// The end user of a managed-file request (`src/auth/end_user.rs`).
    pub(super) async fn end_user(&self, cx: &RequestCx) -> Result<EndUser, DomainError> {
        self.end_users.resolve(cx.headers(), cx.actor()).await
    }
}

impl StorageFilesApi for Handlers {
    async fn post_storage_files_upload_url(
        &self,
        cx: RequestCx,
        params: params::PostStorageFilesUploadUrl,
        body: models::StorageManagedFileUploadUrlRequest,
    ) -> ApiResult<r::PostStorageFilesUploadUrl> {
        let user = self.end_user(&cx).await?;
        let request = super::request(&body)?;
        let data = self
            .storage
            .file_upload_url(&params.x_athena_client, &user, request)
            .await?;
        Ok(r::PostStorageFilesUploadUrl::Created(super::answer_whole(
            "Upload URL created",
            data,
        )?))
    }

    async fn get_storage_files_by_file_id(
        &self,
        cx: RequestCx,
        params: params::GetStorageFilesByFileId,
    ) -> ApiResult<r::GetStorageFilesByFileId> {
        let user = self.end_user(&cx).await?;
        let file = (self.storage)
            .file_get(&params.x_athena_client, &user, &params.file_id)
            .await?;
        let data = json!({ "file": file.view() });
        Ok(r::GetStorageFilesByFileId::Ok(super::answer_whole(
            "File", data,
        )?))
    }

    async fn delete_storage_files_by_file_id(
        &self,
        cx: RequestCx,
        params: params::DeleteStorageFilesByFileId,
    ) -> ApiResult<r::DeleteStorageFilesByFileId> {
        let user = self.end_user(&cx).await?;
        let file = (self.storage)
            .file_delete(&params.x_athena_client, &user, &params.file_id)
            .await?;
        let data = json!({ "file": file.view() });
        Ok(r::DeleteStorageFilesByFileId::Ok(super::answer_whole(
            "File deleted",
            data,
        )?))
    }

    async fn post_storage_files_by_file_id_confirm_upload(
        &self,
        cx: RequestCx,
        params: params::PostStorageFilesByFileIdConfirmUpload,
        body: models::PostStorageFilesByFileIdConfirmUploadRequest,
    ) -> ApiResult<r::PostStorageFilesByFileIdConfirmUpload> {
        let user = self.end_user(&cx).await?;
        let request = super::request(&body)?;
        let data = (self.storage)
            .file_confirm(&params.x_athena_client, &user, &params.file_id, request)
            .await?;
        Ok(r::PostStorageFilesByFileIdConfirmUpload::Ok(
            super::answer_whole("Upload confirmed", data)?,
        ))
    }

    async fn get_storage_files_by_file_id_url(
        &self,
        cx: RequestCx,
        params: params::GetStorageFilesByFileIdUrl,
    ) -> ApiResult<r::GetStorageFilesByFileIdUrl> {
        let user = self.end_user(&cx).await?;
        let data = (self.storage)
            .file_url(
                &params.x_athena_client,
                &user,
                &params.file_id,
                params.purpose.as_deref(),
            )
            .await?;
        Ok(r::GetStorageFilesByFileIdUrl::Ok(super::answer_whole(
            "Download URL",
            data,
        )?))
    }

    async fn post_storage_files_list(
        &self,
        cx: RequestCx,
        params: params::PostStorageFilesList,
        body: models::StorageManagedFileListRequest,
    ) -> ApiResult<r::PostStorageFilesList> {
        let user = self.end_user(&cx).await?;
        let request = super::request(&body)?;
        let data = (self.storage)
            .file_list(&params.x_athena_client, &user, request)
            .await?;
        Ok(r::PostStorageFilesList::Ok(super::answer_whole(
            "Files", data,
        )?))
    }

    async fn post_storage_files_by_file_id_visibility(
        &self,
        cx: RequestCx,
        params: params::PostStorageFilesByFileIdVisibility,
        body: models::StorageManagedFileVisibilityRequest,
    ) -> ApiResult<r::PostStorageFilesByFileIdVisibility> {
        let user = self.end_user(&cx).await?;
        let file = (self.storage)
            .file_visibility(
                &params.x_athena_client,
                &user,
                &params.file_id,
                visibility(&body)?,
            )
            .await?;
        let data = json!({ "file": file.view() });
        Ok(r::PostStorageFilesByFileIdVisibility::Ok(
            super::answer_whole("Visibility set", data)?,
        ))
    }

    async fn patch_storage_files_by_file_id_visibility(
        &self,
        cx: RequestCx,
        params: params::PatchStorageFilesByFileIdVisibility,
        body: models::StorageManagedFileVisibilityRequest,
    ) -> ApiResult<r::PatchStorageFilesByFileIdVisibility> {
        let user = self.end_user(&cx).await?;
        let file = (self.storage)
            .file_visibility(
                &params.x_athena_client,
                &user,
                &params.file_id,
                visibility(&body)?,
            )
            .await?;
        let data = json!({ "file": file.view() });
        Ok(r::PatchStorageFilesByFileIdVisibility::Ok(
            super::answer_whole("Visibility set", data)?,
        ))
    }

    // --- lifecycle: update, copy, restore, purge, versions, retention, public URL, batches ---

    async fn patch_storage_files_by_file_id(
        &self,
        cx: RequestCx,
        params: params::PatchStorageFilesByFileId,
        body: models::StorageManagedFileUpdateRequest,
    ) -> ApiResult<r::PatchStorageFilesByFileId> {
        let user = self.end_user(&cx).await?;
        let request = super::request(&body)?;
        let file = (self.storage)
            .file_update(&params.x_athena_client, &user, &params.file_id, request)
            .await?;
        let data = json!({ "file": file.view() });
        Ok(r::PatchStorageFilesByFileId::Ok(super::answer_whole(
            "File updated",
            data,
        )?))
    }

    async fn post_storage_files_by_file_id_copy(
        &self,
        cx: RequestCx,
        params: params::PostStorageFilesByFileIdCopy,
        body: models::PostStorageFilesByFileIdCopyRequest,
    ) -> ApiResult<r::PostStorageFilesByFileIdCopy> {
        let user = self.end_user(&cx).await?;
        let request = super::request(&body)?;
        let data = (self.storage)
            .file_copy(&params.x_athena_client, &user, &params.file_id, request)
            .await?;
        Ok(r::PostStorageFilesByFileIdCopy::Ok(super::answer_whole(
            "File copied",
            data,
        )?))
    }

    async fn post_storage_files_by_file_id_restore(
        &self,
        cx: RequestCx,
        params: params::PostStorageFilesByFileIdRestore,
    ) -> ApiResult<r::PostStorageFilesByFileIdRestore> {
        let user = self.end_user(&cx).await?;
        let file = (self.storage)
            .file_restore(&params.x_athena_client, &user, &params.file_id)
            .await?;
        let data = json!({ "file": file.view() });
        Ok(r::PostStorageFilesByFileIdRestore::Ok(super::answer_whole(
            "File restored",
            data,
        )?))
    }

    async fn delete_storage_files_by_file_id_purge(
        &self,
        cx: RequestCx,
        params: params::DeleteStorageFilesByFileIdPurge,
    ) -> ApiResult<r::DeleteStorageFilesByFileIdPurge> {
        let user = self.end_user(&cx).await?;
        let file = (self.storage)
            .file_purge(&params.x_athena_client, &user, &params.file_id)
            .await?;
        let data = json!({ "file": file.view() });
        Ok(r::DeleteStorageFilesByFileIdPurge::Ok(super::answer_whole(
            "File purged",
            data,
        )?))
    }

    async fn get_storage_files_by_file_id_public_url(
        &self,
        cx: RequestCx,
        params: params::GetStorageFilesByFileIdPublicUrl,
    ) -> ApiResult<r::GetStorageFilesByFileIdPublicUrl> {
        let user = self.end_user(&cx).await?;
        let data = (self.storage)
            .file_public_url(&params.x_athena_client, &user, &params.file_id)
            .await?;
        Ok(r::GetStorageFilesByFileIdPublicUrl::Ok(
            super::answer_whole("Public URL", data)?,
        ))
    }

    async fn get_storage_files_by_file_id_versions(
        &self,
        cx: RequestCx,
        params: params::GetStorageFilesByFileIdVersions,
    ) -> ApiResult<r::GetStorageFilesByFileIdVersions> {
        let user = self.end_user(&cx).await?;
        let data = (self.storage)
            .file_versions(&params.x_athena_client, &user, &params.file_id)
            .await
            .map_err(|e| super::documented(&cx, e))?;
        Ok(r::GetStorageFilesByFileIdVersions::Ok(super::answer_whole(
            "File versions",
            data,
        )?))
    }

    async fn post_storage_files_by_file_id_versions_by_version_id_restore(
        &self,
        cx: RequestCx,
        params: params::PostStorageFilesByFileIdVersionsByVersionIdRestore,
    ) -> ApiResult<r::PostStorageFilesByFileIdVersionsByVersionIdRestore> {
        let user = self.end_user(&cx).await?;
        let data = (self.storage)
            .file_version_restore(
                &params.x_athena_client,
                &user,
                &params.file_id,
                &params.version_id,
            )
            .await
            .map_err(|e| super::documented(&cx, e))?;
        Ok(r::PostStorageFilesByFileIdVersionsByVersionIdRestore::Ok(
            super::answer_whole("Version restored", data)?,
        ))
    }

    async fn delete_storage_files_by_file_id_versions_by_version_id(
        &self,
        cx: RequestCx,
        params: params::DeleteStorageFilesByFileIdVersionsByVersionId,
    ) -> ApiResult<r::DeleteStorageFilesByFileIdVersionsByVersionId> {
        let user = self.end_user(&cx).await?;
        let data = (self.storage)
            .file_version_delete(
                &params.x_athena_client,
                &user,
                &params.file_id,
                &params.version_id,
            )
            .await
            .map_err(|e| super::documented(&cx, e))?;
        Ok(r::DeleteStorageFilesByFileIdVersionsByVersionId::Ok(
            super::answer_whole("Version deleted", data)?,
        ))
    }

    async fn post_storage_files_by_file_id_retention(
        &self,
        cx: RequestCx,
        params: params::PostStorageFilesByFileIdRetention,
        body: models::PostStorageFilesByFileIdRetentionRequest,
    ) -> ApiResult<r::PostStorageFilesByFileIdRetention> {
        let user = self.end_user(&cx).await?;
        let request = super::request(&body)?;
        let data = (self.storage)
            .file_retention_set(&params.x_athena_client, &user, &params.file_id, request)
            .await
            .map_err(|e| super::documented(&cx, e))?;
        Ok(r::PostStorageFilesByFileIdRetention::Ok(
            super::answer_whole("Retention set", data)?,
        ))
    }

    async fn get_storage_files_by_file_id_retention(
        &self,
        cx: RequestCx,
        params: params::GetStorageFilesByFileIdRetention,
    ) -> ApiResult<r::GetStorageFilesByFileIdRetention> {
        let user = self.end_user(&cx).await?;
        let data = (self.storage)
            .file_retention_get(
                &params.x_athena_client,
                &user,
                &params.file_id,
                params.version_id.as_deref(),
            )
            .await
            .map_err(|e| super::documented(&cx, e))?;
        Ok(r::GetStorageFilesByFileIdRetention::Ok(
            super::answer_whole("Retention", data)?,
        ))
    }

    async fn post_storage_files_delete_many(
        &self,
        cx: RequestCx,
        params: params::PostStorageFilesDeleteMany,
        body: models::PostStorageFilesDeleteManyRequest,
    ) -> ApiResult<r::PostStorageFilesDeleteMany> {
        let user = self.end_user(&cx).await?;
        let request = super::request(&body)?;
        let data = (self.storage)
            .files_delete_many(&params.x_athena_client, &user, request)
            .await?;
        Ok(r::PostStorageFilesDeleteMany::Ok(super::answer_whole(
            "Files deleted",
            data,
        )?))
    }

    async fn post_storage_files_update_many(
        &self,
        cx: RequestCx,
        params: params::PostStorageFilesUpdateMany,
        body: models::PostStorageFilesUpdateManyRequest,
    ) -> ApiResult<r::PostStorageFilesUpdateMany> {
        let user = self.end_user(&cx).await?;
        let request = super::request(&body)?;
        let data = (self.storage)
            .files_update_many(&params.x_athena_client, &user, request)
            .await?;
        Ok(r::PostStorageFilesUpdateMany::Ok(super::answer_whole(
            "Files updated",
            data,
        )?))
    }

    async fn post_storage_files_visibility_many(
        &self,
        cx: RequestCx,
        params: params::PostStorageFilesVisibilityMany,
        body: models::PostStorageFilesVisibilityManyRequest,
    ) -> ApiResult<r::PostStorageFilesVisibilityMany> {
        let user = self.end_user(&cx).await?;
        let request = super::request(&body)?;
        let data = (self.storage)
            .files_visibility_many(&params.x_athena_client, &user, request)
            .await?;
        Ok(r::PostStorageFilesVisibilityMany::Ok(super::answer_whole(
            "Visibility set",
            data,
        )?))
    }

    async fn post_storage_files_upload_urls(
        &self,
        cx: RequestCx,
        params: params::PostStorageFilesUploadUrls,
        body: models::StorageManagedFileBatchUploadUrlRequest,
    ) -> ApiResult<r::PostStorageFilesUploadUrls> {
        let user = self.end_user(&cx).await?;
        let request = super::request(&body)?;
        let data = (self.storage)
            .file_upload_urls(&params.x_athena_client, &user, request)
            .await?;
        Ok(r::PostStorageFilesUploadUrls::Created(super::answer_whole(
            "Upload URLs created",
            data,
        )?))
    }

    // --- streams: PUT upload, proxy, proxy URL ---

    /// The upload of a body already in memory: the server streams this
    /// operation instead (`src/http/server/streams.rs` →
    /// `Handlers::upload_file_stream`); both store the bytes the same way.
    async fn put_storage_files_by_file_id_upload(
        &self,
        cx: RequestCx,
        params: params::PutStorageFilesByFileIdUpload,
        body: bytes::Bytes,
    ) -> ApiResult<r::PutStorageFilesByFileIdUpload> {
        let content_type = cx
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body: crate::storage::files::ByteStream =
            Box::pin(futures_util::stream::once(async move { Ok(body) }));
        let user = self.end_user(&cx).await?;
        let data = (self.storage)
            .file_put_stream(
                &params.x_athena_client,
                &user,
                &params.file_id,
                content_type.as_deref(),
                body,
            )
            .await?;
        Ok(r::PutStorageFilesByFileIdUpload::Ok(super::answer_whole(
            "File uploaded",
            data,
        )?))
    }

    /// Never reached: the server streams this operation
    /// (`src/http/server/streams.rs` → `Handlers::proxy_file`) so that no
    /// object is held in memory whole.
    async fn get_storage_files_by_file_id_proxy(
        &self,
        _cx: RequestCx,
        _params: params::GetStorageFilesByFileIdProxy,
    ) -> ApiResult<r::GetStorageFilesByFileIdProxy> {
        Err(DomainError::Internal(
            "GET /storage/files/{file_id}/proxy is served by the streaming route".into(),
        )
        .into())
    }

    async fn get_storage_files_by_file_id_proxy_url(
        &self,
        cx: RequestCx,
        params: params::GetStorageFilesByFileIdProxyUrl,
    ) -> ApiResult<r::GetStorageFilesByFileIdProxyUrl> {
        let user = self.end_user(&cx).await?;
        // An absolute URL when the request names its host (the scheme a
        // proxy in front reports, else http).
        let host = cx
            .headers()
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .filter(|h| {
                !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
            });
        let scheme = match cx
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
        {
            Some("https") => "https",
            _ => "http",
        };
        let base = host.map(|h| format!("{scheme}://{h}"));
        let data = (self.storage)
            .file_proxy_url(
                &params.x_athena_client,
                &user,
                &params.file_id,
                params.purpose.as_deref(),
                params.expires_in,
                base.as_deref(),
            )
            .await?;
        Ok(r::GetStorageFilesByFileIdProxyUrl::Ok(super::answer_whole(
            "Proxy URL",
            data,
        )?))
    }

    // --- search ---

    async fn post_storage_files_search(
        &self,
        cx: RequestCx,
        params: params::PostStorageFilesSearch,
        body: models::PostStorageFilesSearchRequest,
    ) -> ApiResult<r::PostStorageFilesSearch> {
        let user = self.end_user(&cx).await?;
        let request = super::request(&body)?;
        let data = (self.storage)
            .file_search(&params.x_athena_client, &user, request, 100, "search")
            .await?;
        Ok(r::PostStorageFilesSearch::Ok(super::answer_whole(
            "Files", data,
        )?))
    }
}
