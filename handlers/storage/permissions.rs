//! `storage_permissions`: a managed file's grants and its audit trail
//! (`src/storage/files/permissions.rs`, `src/storage/files/audit.rs`) for
//! the end user of the request.

use crate::api::{models, params, responses as r, traits::StoragePermissionsApi};
use crate::handlers::Handlers;
use crate::http::{ApiResult, RequestCx};

impl StoragePermissionsApi for Handlers {
    async fn post_storage_permissions_list(
        &self,
        cx: RequestCx,
        params: params::PostStoragePermissionsList,
        body: models::PostStoragePermissionsListRequest,
    ) -> ApiResult<r::PostStoragePermissionsList> {
        let user = self.end_user(&cx).await?;
        let data = (self.storage)
            .permissions_list(&params.x_athena_client, &user, super::request(&body)?)
            .await?;
        Ok(r::PostStoragePermissionsList::Ok(super::answer_whole(
            "Permissions",
            data,
        )?))
    }

    async fn post_storage_permissions_grant(
        &self,
        cx: RequestCx,
        params: params::PostStoragePermissionsGrant,
        body: models::PostStoragePermissionsGrantRequest,
    ) -> ApiResult<r::PostStoragePermissionsGrant> {
        let user = self.end_user(&cx).await?;
        let data = (self.storage)
            .permission_grant(&params.x_athena_client, &user, super::request(&body)?)
            .await?;
        Ok(r::PostStoragePermissionsGrant::Ok(super::answer_whole(
            "Permission granted",
            data,
        )?))
    }

    async fn post_storage_permissions_revoke(
        &self,
        cx: RequestCx,
        params: params::PostStoragePermissionsRevoke,
        body: models::PostStoragePermissionsRevokeRequest,
    ) -> ApiResult<r::PostStoragePermissionsRevoke> {
        let user = self.end_user(&cx).await?;
        let data = (self.storage)
            .permission_revoke(&params.x_athena_client, &user, super::request(&body)?)
            .await?;
        Ok(r::PostStoragePermissionsRevoke::Ok(super::answer_whole(
            "Permission revoked",
            data,
        )?))
    }

    async fn post_storage_permissions_check(
        &self,
        cx: RequestCx,
        params: params::PostStoragePermissionsCheck,
        body: models::PostStoragePermissionsCheckRequest,
    ) -> ApiResult<r::PostStoragePermissionsCheck> {
        let user = self.end_user(&cx).await?;
        let data = (self.storage)
            .permission_check(&params.x_athena_client, &user, super::request(&body)?)
            .await?;
        Ok(r::PostStoragePermissionsCheck::Ok(super::answer_whole(
            "Permission checked",
            data,
        )?))
    }

    async fn post_storage_audit_list(
        &self,
        cx: RequestCx,
        params: params::PostStorageAuditList,
        body: models::PostStorageAuditListRequest,
    ) -> ApiResult<r::PostStorageAuditList> {
        let user = self.end_user(&cx).await?;
        let data = (self.storage)
            .audit_list(&params.x_athena_client, &user, super::request(&body)?)
            .await?;
        Ok(r::PostStorageAuditList::Ok(super::answer_whole(
            "Audit events",
            data,
        )?))
    }
}
