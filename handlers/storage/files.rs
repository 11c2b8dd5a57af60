//! `storage_files`: managed files (`/storage/files…`, `src/storage/files.rs`)
//! for the end user of the request (`src/auth/end_user.rs`). One impl (the
//! trait's), in sections by topic like `src/storage/files/`.

use crate::api::{models, params, responses as r, traits::StorageFilesApi};
use crate::auth::end_user::{self, EndUser};
use crate::domain::DomainError;
use crate::handlers::Handlers;
use crate::http::{ApiResult, RequestCx};

impl Handlers {
    pub(super) fn end_user(&self, cx: &RequestCx) -> Result<EndUser, DomainError> {
        end_user::resolve(cx.headers(), cx.actor(), self.storage.jwt.as_ref())
    }
}

impl StorageFilesApi for Handlers {
    async fn post_storage_files_upload_url(
        &self,
        cx: RequestCx,
        params: params::PostStorageFilesUploadUrl,
        body: models::StorageManagedFileUploadUrlRequest,
    ) -> ApiResult<r::PostStorageFilesUploadUrl> {
        let user = self.end_user(&cx)?;
        let request = super::request(&body)?;
        let data = self
            .storage
            .file_upload_url(&params.x_athena_client, &user, request)
            .await?;
        Ok(r::PostStorageFilesUploadUrl::Created(super::answer(
            "Upload URL created",
            data,
        )?))
    }

    async fn get_storage_files_by_file_id(
        &self,
        cx: RequestCx,
        params: params::GetStorageFilesByFileId,
    ) -> ApiResult<r::GetStorageFilesByFileId> {
        let user = self.end_user(&cx)?;
        let data = (self.storage)
            .file_get(&params.x_athena_client, &user, &params.file_id)
            .await?;
        Ok(r::GetStorageFilesByFileId::Ok(super::answer("File", data)?))
    }

    async fn delete_storage_files_by_file_id(
        &self,
        cx: RequestCx,
        params: params::DeleteStorageFilesByFileId,
    ) -> ApiResult<r::DeleteStorageFilesByFileId> {
        let user = self.end_user(&cx)?;
        let data = (self.storage)
            .file_delete(&params.x_athena_client, &user, &params.file_id)
            .await?;
        Ok(r::DeleteStorageFilesByFileId::Ok(super::answer(
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
        let user = self.end_user(&cx)?;
        let request = super::request(&body)?;
        let data = (self.storage)
            .file_confirm(&params.x_athena_client, &user, &params.file_id, request)
            .await?;
        Ok(r::PostStorageFilesByFileIdConfirmUpload::Ok(super::answer(
            "Upload confirmed",
            data,
        )?))
    }

    async fn get_storage_files_by_file_id_url(
        &self,
        cx: RequestCx,
        params: params::GetStorageFilesByFileIdUrl,
    ) -> ApiResult<r::GetStorageFilesByFileIdUrl> {
        let user = self.end_user(&cx)?;
        let data = (self.storage)
            .file_url(
                &params.x_athena_client,
                &user,
                &params.file_id,
                params.purpose.as_deref(),
            )
            .await?;
        Ok(r::GetStorageFilesByFileIdUrl::Ok(super::answer(
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
        let user = self.end_user(&cx)?;
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
        let user = self.end_user(&cx)?;
        let data = (self.storage)
            .file_visibility(&params.x_athena_client, &user, &params.file_id, body.public)
            .await?;
        Ok(r::PostStorageFilesByFileIdVisibility::Ok(super::answer(
            "Visibility set",
            data,
        )?))
    }

    async fn patch_storage_files_by_file_id_visibility(
        &self,
        cx: RequestCx,
        params: params::PatchStorageFilesByFileIdVisibility,
        body: models::StorageManagedFileVisibilityRequest,
    ) -> ApiResult<r::PatchStorageFilesByFileIdVisibility> {
        let user = self.end_user(&cx)?;
        let data = (self.storage)
            .file_visibility(&params.x_athena_client, &user, &params.file_id, body.public)
            .await?;
        Ok(r::PatchStorageFilesByFileIdVisibility::Ok(super::answer(
            "Visibility set",
            data,
        )?))
    }

    // --- lifecycle: update, copy, restore, purge, versions, retention, public URL, batches ---

    // --- streams: PUT upload, proxy, proxy URL ---

    // --- search ---

    async fn post_storage_files_search(
        &self,
        cx: RequestCx,
        params: params::PostStorageFilesSearch,
        body: models::PostStorageFilesSearchRequest,
    ) -> ApiResult<r::PostStorageFilesSearch> {
        let user = self.end_user(&cx)?;
        let request = super::request(&body)?;
        let data = (self.storage)
            .file_search(&params.x_athena_client, &user, request, 100, "search")
            .await?;
        Ok(r::PostStorageFilesSearch::Ok(super::answer_whole(
            "Files", data,
        )?))
    }
}
