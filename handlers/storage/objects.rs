//! `storage_objects`: raw objects on a tenant's S3 store
//! (`POST /storage/objects…`, `src/storage/objects.rs`).

use super::storage_call;
use crate::api::{models, params, responses, traits::StorageObjectsApi};
use crate::auth::rights::Right;
use crate::handlers::Handlers;
use crate::http::{ApiResult, RequestCx};
use crate::storage::objects::{UpdateRequest, PRIVATE_ACLS};
use responses as r;

impl StorageObjectsApi for Handlers {
    async fn post_storage_objects(
        &self,
        cx: RequestCx,
        body: models::StorageListObjectsRequest,
    ) -> ApiResult<r::PostStorageObjects> {
        storage_call!(
            self,
            cx,
            body,
            list_objects,
            r::PostStorageObjects::Ok,
            "Objects listed"
        )
    }

    async fn post_storage_objects_head(
        &self,
        cx: RequestCx,
        body: models::StorageGetObjectRequest,
    ) -> ApiResult<r::PostStorageObjectsHead> {
        storage_call!(
            self,
            cx,
            body,
            head_object,
            r::PostStorageObjectsHead::Ok,
            "Object metadata"
        )
    }

    async fn post_storage_objects_update(
        &self,
        cx: RequestCx,
        _params: params::PostStorageObjectsUpdate,
        body: models::StorageUpdateObjectRequest,
    ) -> ApiResult<r::PostStorageObjectsUpdate> {
        let request: UpdateRequest = super::request(&body)?;
        // Granting anyone beyond the bucket owner is a storage-admin decision.
        if request
            .acl
            .as_deref()
            .is_some_and(|a| !PRIVATE_ACLS.contains(&a))
        {
            cx.require_right(Right::StorageAdmin)?;
        }
        let data = self
            .storage
            .update_object(super::client(&cx).as_deref(), request)
            .await
            .map_err(|e| super::documented(&cx, e))?;
        Ok(r::PostStorageObjectsUpdate::Ok(super::answer(
            "Object updated",
            data,
        )?))
    }

    async fn post_storage_objects_url(
        &self,
        cx: RequestCx,
        body: models::StorageGetObjectRequest,
    ) -> ApiResult<r::PostStorageObjectsUrl> {
        storage_call!(
            self,
            cx,
            body,
            object_url,
            r::PostStorageObjectsUrl::Ok,
            "Presigned download URL"
        )
    }

    async fn post_storage_objects_delete(
        &self,
        cx: RequestCx,
        body: models::StorageDeleteObjectRequest,
    ) -> ApiResult<r::PostStorageObjectsDelete> {
        storage_call!(
            self,
            cx,
            body,
            delete_object,
            r::PostStorageObjectsDelete::Ok,
            "Object deleted"
        )
    }

    async fn post_storage_objects_folder(
        &self,
        cx: RequestCx,
        body: models::StorageCreateFolderRequest,
    ) -> ApiResult<r::PostStorageObjectsFolder> {
        storage_call!(
            self,
            cx,
            body,
            create_folder,
            r::PostStorageObjectsFolder::Ok,
            "Folder created"
        )
    }

    async fn post_storage_objects_folder_delete(
        &self,
        cx: RequestCx,
        body: models::StorageDeleteFolderRequest,
    ) -> ApiResult<r::PostStorageObjectsFolderDelete> {
        storage_call!(
            self,
            cx,
            body,
            delete_folder,
            r::PostStorageObjectsFolderDelete::Ok,
            "Folder deleted"
        )
    }

    async fn post_storage_objects_folder_rename(
        &self,
        cx: RequestCx,
        body: models::StorageRenameFolderRequest,
    ) -> ApiResult<r::PostStorageObjectsFolderRename> {
        storage_call!(
            self,
            cx,
            body,
            rename_folder,
            r::PostStorageObjectsFolderRename::Ok,
            "Folder renamed"
        )
    }

    async fn post_storage_objects_upload_url(
        &self,
        cx: RequestCx,
        body: models::StoragePresignUploadRequest,
    ) -> ApiResult<r::PostStorageObjectsUploadUrl> {
        storage_call!(
            self,
            cx,
            body,
            upload_url,
            r::PostStorageObjectsUploadUrl::Ok,
            "Presigned upload URL"
        )
    }

    async fn post_storage_objects_exists(
        &self,
        cx: RequestCx,
        _params: params::PostStorageObjectsExists,
        body: models::PostStorageObjectsExistsRequest,
    ) -> ApiResult<r::PostStorageObjectsExists> {
        storage_call!(
            self,
            cx,
            body,
            object_exists,
            r::PostStorageObjectsExists::Ok,
            "Object existence"
        )
    }

    async fn post_storage_objects_validate(
        &self,
        cx: RequestCx,
        _params: params::PostStorageObjectsValidate,
        body: models::PostStorageObjectsValidateRequest,
    ) -> ApiResult<r::PostStorageObjectsValidate> {
        storage_call!(
            self,
            cx,
            body,
            validate_object,
            r::PostStorageObjectsValidate::Ok,
            "Object validated"
        )
    }

    async fn post_storage_objects_public_url(
        &self,
        cx: RequestCx,
        _params: params::PostStorageObjectsPublicUrl,
        body: models::PostStorageObjectsPublicUrlRequest,
    ) -> ApiResult<r::PostStorageObjectsPublicUrl> {
        storage_call!(
            self,
            cx,
            body,
            public_url,
            r::PostStorageObjectsPublicUrl::Ok,
            "Public URL"
        )
    }

    async fn post_storage_objects_copy(
        &self,
        cx: RequestCx,
        _params: params::PostStorageObjectsCopy,
        body: models::PostStorageObjectsCopyRequest,
    ) -> ApiResult<r::PostStorageObjectsCopy> {
        storage_call!(
            self,
            cx,
            body,
            copy_object,
            r::PostStorageObjectsCopy::Ok,
            "Object copied"
        )
    }

    async fn post_storage_objects_versions(
        &self,
        cx: RequestCx,
        _params: params::PostStorageObjectsVersions,
        body: models::PostStorageObjectsVersionsRequest,
    ) -> ApiResult<r::PostStorageObjectsVersions> {
        storage_call!(
            self,
            cx,
            body,
            list_versions,
            r::PostStorageObjectsVersions::Ok,
            "Object versions"
        )
    }

    async fn post_storage_objects_versions_restore(
        &self,
        cx: RequestCx,
        _params: params::PostStorageObjectsVersionsRestore,
        body: models::PostStorageObjectsVersionsRestoreRequest,
    ) -> ApiResult<r::PostStorageObjectsVersionsRestore> {
        storage_call!(
            self,
            cx,
            body,
            restore_version,
            r::PostStorageObjectsVersionsRestore::Ok,
            "Version restored"
        )
    }

    async fn post_storage_objects_versions_delete(
        &self,
        cx: RequestCx,
        _params: params::PostStorageObjectsVersionsDelete,
        body: models::PostStorageObjectsVersionsDeleteRequest,
    ) -> ApiResult<r::PostStorageObjectsVersionsDelete> {
        storage_call!(
            self,
            cx,
            body,
            delete_version,
            r::PostStorageObjectsVersionsDelete::Ok,
            "Version deleted"
        )
    }

    async fn post_storage_objects_post_policy(
        &self,
        cx: RequestCx,
        _params: params::PostStorageObjectsPostPolicy,
        body: models::StoragePostPolicyRequest,
    ) -> ApiResult<r::PostStorageObjectsPostPolicy> {
        storage_call!(
            self,
            cx,
            body,
            post_policy,
            r::PostStorageObjectsPostPolicy::Ok,
            "POST policy"
        )
    }
}
