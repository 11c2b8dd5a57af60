//! `storage_multipart`: multipart uploads of managed files
//! (`src/storage/files/multipart.rs`) for the end user of the request.

use crate::api::{models, params, responses as r, traits::StorageMultipartApi};
use crate::handlers::Handlers;
use crate::http::{ApiResult, RequestCx};

impl StorageMultipartApi for Handlers {
    async fn post_storage_multipart_create(
        &self,
        cx: RequestCx,
        params: params::PostStorageMultipartCreate,
        body: models::PostStorageMultipartCreateRequest,
    ) -> ApiResult<r::PostStorageMultipartCreate> {
        let user = self.end_user(&cx).await?;
        let data = (self.storage)
            .multipart_create(&params.x_athena_client, &user, super::request(&body)?)
            .await?;
        Ok(r::PostStorageMultipartCreate::Ok(super::answer_whole(
            "Multipart upload created",
            data,
        )?))
    }

    async fn post_storage_multipart_sign_part(
        &self,
        cx: RequestCx,
        params: params::PostStorageMultipartSignPart,
        body: models::PostStorageMultipartSignPartRequest,
    ) -> ApiResult<r::PostStorageMultipartSignPart> {
        let user = self.end_user(&cx).await?;
        let data = (self.storage)
            .multipart_sign_part(&params.x_athena_client, &user, super::request(&body)?)
            .await?;
        Ok(r::PostStorageMultipartSignPart::Ok(super::answer_whole(
            "Part URL signed",
            data,
        )?))
    }

    async fn post_storage_multipart_complete(
        &self,
        cx: RequestCx,
        params: params::PostStorageMultipartComplete,
        body: models::PostStorageMultipartCompleteRequest,
    ) -> ApiResult<r::PostStorageMultipartComplete> {
        let user = self.end_user(&cx).await?;
        let data = (self.storage)
            .multipart_complete(&params.x_athena_client, &user, super::request(&body)?)
            .await?;
        Ok(r::PostStorageMultipartComplete::Ok(super::answer_whole(
            "Multipart upload completed",
            data,
        )?))
    }

    async fn post_storage_multipart_abort(
        &self,
        cx: RequestCx,
        params: params::PostStorageMultipartAbort,
        body: models::PostStorageMultipartAbortRequest,
    ) -> ApiResult<r::PostStorageMultipartAbort> {
        let user = self.end_user(&cx).await?;
        let data = (self.storage)
            .multipart_abort(&params.x_athena_client, &user, super::request(&body)?)
            .await?;
        Ok(r::PostStorageMultipartAbort::Ok(super::answer_whole(
            "Multipart upload aborted",
            data,
        )?))
    }

    async fn post_storage_multipart_list_parts(
        &self,
        cx: RequestCx,
        params: params::PostStorageMultipartListParts,
        body: models::PostStorageMultipartListPartsRequest,
    ) -> ApiResult<r::PostStorageMultipartListParts> {
        let user = self.end_user(&cx).await?;
        let data = (self.storage)
            .multipart_list_parts(&params.x_athena_client, &user, super::request(&body)?)
            .await?;
        Ok(r::PostStorageMultipartListParts::Ok(super::answer_whole(
            "Multipart upload parts",
            data,
        )?))
    }
}
