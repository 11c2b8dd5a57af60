//! `storage_folders`: folders of managed files (`src/storage/files/folders.rs`)
//! for the end user of the request.

use crate::api::{models, params, responses as r, traits::StorageFoldersApi};
use crate::handlers::Handlers;
use crate::http::{ApiResult, RequestCx};

impl StorageFoldersApi for Handlers {
    async fn post_storage_folders_delete(
        &self,
        cx: RequestCx,
        params: params::PostStorageFoldersDelete,
        body: models::StorageManagedFolderDeleteRequest,
    ) -> ApiResult<r::PostStorageFoldersDelete> {
        let user = self.end_user(&cx).await?;
        let data = (self.storage)
            .folder_delete(&params.x_athena_client, &user, super::request(&body)?)
            .await?;
        Ok(r::PostStorageFoldersDelete::Ok(super::answer_whole(
            "Folder deleted",
            data,
        )?))
    }

    async fn post_storage_folders_move(
        &self,
        cx: RequestCx,
        params: params::PostStorageFoldersMove,
        body: models::StorageManagedFolderMoveRequest,
    ) -> ApiResult<r::PostStorageFoldersMove> {
        let user = self.end_user(&cx).await?;
        let data = (self.storage)
            .folder_move(&params.x_athena_client, &user, super::request(&body)?)
            .await?;
        Ok(r::PostStorageFoldersMove::Ok(super::answer_whole(
            "Folder moved",
            data,
        )?))
    }

    async fn post_storage_folders_list(
        &self,
        cx: RequestCx,
        params: params::PostStorageFoldersList,
        body: models::PostStorageFoldersListRequest,
    ) -> ApiResult<r::PostStorageFoldersList> {
        let user = self.end_user(&cx).await?;
        let data = (self.storage)
            .folder_list(&params.x_athena_client, &user, super::request(&body)?)
            .await?;
        Ok(r::PostStorageFoldersList::Ok(super::answer_whole(
            "Folders", data,
        )?))
    }

    async fn post_storage_folders_tree(
        &self,
        cx: RequestCx,
        params: params::PostStorageFoldersTree,
        body: models::PostStorageFoldersTreeRequest,
    ) -> ApiResult<r::PostStorageFoldersTree> {
        let user = self.end_user(&cx).await?;
        let data = (self.storage)
            .folder_tree(&params.x_athena_client, &user, super::request(&body)?)
            .await?;
        Ok(r::PostStorageFoldersTree::Ok(super::answer_whole(
            "Folder tree",
            data,
        )?))
    }
}
