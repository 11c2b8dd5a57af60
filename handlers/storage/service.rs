//! `storage_service`: the SDK's service routes (`/storage/service/files*`,
//! SDK-only, `openapi/sdk-overlay.yaml`): a trusted service (the admin key
//! or `storage.service`, checked by the access table before the body)
//! acting for the organization it names — `organizationId` in the body or
//! `X-Organization-Id` — and, optionally, for a user (`X-User-Id`). The
//! same storage functions as the end-user routes, through the same access
//! rule (`EndUser::service`), answered as the SDK's `ManagedFile`.

use crate::api::{models, params, responses as r, traits::StorageServiceApi};
use crate::auth::end_user::{header, EndUser};
use crate::domain::DomainError;
use crate::handlers::Handlers;
use crate::http::{ApiResult, RequestCx};
use crate::storage::file_access::Visibility;
use crate::storage::files::{
    service_file, service_permission, GrantRequest, PermissionListRequest, RevokeRequest,
    ServiceUploadRequest,
};
use serde_json::json;

/// The service of the request, for the organization `organization` names
/// (the body's) or `X-Organization-Id`; the two must agree.
fn service(cx: &RequestCx, organization: Option<&str>) -> Result<EndUser, DomainError> {
    let header_org = header(cx.headers(), "x-organization-id");
    let organization = match (organization, header_org) {
        (Some(a), Some(b)) if a != b => {
            return Err(DomainError::invalid_field(
                "organizationId",
                "differs from X-Organization-Id",
            ))
        }
        (a, b) => a.or(b),
    };
    EndUser::service(cx.actor(), header(cx.headers(), "x-user-id"), organization)
}

impl StorageServiceApi for Handlers {
    async fn post_storage_service_files_list(
        &self,
        cx: RequestCx,
        params: params::PostStorageServiceFilesList,
        body: models::StorageServiceListRequest,
    ) -> ApiResult<r::PostStorageServiceFilesList> {
        let request: crate::storage::files::ServiceListRequest = super::request(&body)?;
        let who = service(&cx, request.organization_id.as_deref())?;
        let data = (self.storage)
            .service_file_list(&params.x_athena_client, &who, request)
            .await?;
        Ok(r::PostStorageServiceFilesList::Ok(super::answer(
            "Files", data,
        )?))
    }

    async fn get_storage_service_files_by_file_id(
        &self,
        cx: RequestCx,
        params: params::GetStorageServiceFilesByFileId,
    ) -> ApiResult<r::GetStorageServiceFilesByFileId> {
        let who = service(&cx, None)?;
        let file = (self.storage)
            .file_get(&params.x_athena_client, &who, &params.file_id.to_string())
            .await?;
        Ok(r::GetStorageServiceFilesByFileId::Ok(super::answer(
            "File",
            service_file(&file),
        )?))
    }

    async fn delete_storage_service_files_by_file_id(
        &self,
        cx: RequestCx,
        params: params::DeleteStorageServiceFilesByFileId,
    ) -> ApiResult<r::DeleteStorageServiceFilesByFileId> {
        let who = service(&cx, None)?;
        let file = (self.storage)
            .file_delete(&params.x_athena_client, &who, &params.file_id.to_string())
            .await?;
        Ok(r::DeleteStorageServiceFilesByFileId::Ok(super::answer(
            "File deleted",
            service_file(&file),
        )?))
    }

    async fn post_storage_service_files_by_file_id_visibility(
        &self,
        cx: RequestCx,
        params: params::PostStorageServiceFilesByFileIdVisibility,
        body: models::StorageServiceVisibilityRequest,
    ) -> ApiResult<r::PostStorageServiceFilesByFileIdVisibility> {
        let who = service(&cx, None)?;
        let visibility = Visibility::parse(&body.visibility.to_string()).ok_or_else(|| {
            DomainError::invalid_field("visibility", "private, organization or public")
        })?;
        let file = (self.storage)
            .file_visibility(
                &params.x_athena_client,
                &who,
                &params.file_id.to_string(),
                visibility,
            )
            .await?;
        Ok(r::PostStorageServiceFilesByFileIdVisibility::Ok(
            super::answer("Visibility set", service_file(&file))?,
        ))
    }

    async fn post_storage_service_files_by_file_id_move(
        &self,
        cx: RequestCx,
        params: params::PostStorageServiceFilesByFileIdMove,
        body: models::StorageServiceMoveRequest,
    ) -> ApiResult<r::PostStorageServiceFilesByFileIdMove> {
        let who = service(&cx, None)?;
        let request = crate::storage::files::UpdateRequest {
            storage_key: Some(body.destination_key.clone()),
            ..Default::default()
        };
        let file = (self.storage)
            .file_update(
                &params.x_athena_client,
                &who,
                &params.file_id.to_string(),
                request,
            )
            .await?;
        Ok(r::PostStorageServiceFilesByFileIdMove::Ok(super::answer(
            "File moved",
            service_file(&file),
        )?))
    }

    async fn post_storage_service_files_by_file_id_restore(
        &self,
        cx: RequestCx,
        params: params::PostStorageServiceFilesByFileIdRestore,
    ) -> ApiResult<r::PostStorageServiceFilesByFileIdRestore> {
        let who = service(&cx, None)?;
        let file = (self.storage)
            .file_restore(&params.x_athena_client, &who, &params.file_id.to_string())
            .await?;
        Ok(r::PostStorageServiceFilesByFileIdRestore::Ok(
            super::answer("File restored", service_file(&file))?,
        ))
    }

    async fn delete_storage_service_files_by_file_id_purge(
        &self,
        cx: RequestCx,
        params: params::DeleteStorageServiceFilesByFileIdPurge,
    ) -> ApiResult<r::DeleteStorageServiceFilesByFileIdPurge> {
        let who = service(&cx, None)?;
        let file = (self.storage)
            .file_purge(&params.x_athena_client, &who, &params.file_id.to_string())
            .await?;
        Ok(r::DeleteStorageServiceFilesByFileIdPurge::Ok(
            super::answer("File purged", serde_json::json!({ "fileId": file.id }))?,
        ))
    }

    async fn post_storage_service_files(
        &self,
        cx: RequestCx,
        params: params::PostStorageServiceFiles,
        body: models::StorageServiceUploadRequest,
    ) -> ApiResult<r::PostStorageServiceFiles> {
        let request: ServiceUploadRequest = super::request(&body)?;
        let who = service(&cx, request.organization_id.as_deref())?;
        let file = (self.storage)
            .service_file_upload(&params.x_athena_client, &who, request)
            .await?;
        Ok(r::PostStorageServiceFiles::Ok(super::answer(
            "File uploaded",
            service_file(&file),
        )?))
    }

    async fn get_storage_service_files_by_file_id_permissions(
        &self,
        cx: RequestCx,
        params: params::GetStorageServiceFilesByFileIdPermissions,
    ) -> ApiResult<r::GetStorageServiceFilesByFileIdPermissions> {
        let who = service(&cx, None)?;
        let request = PermissionListRequest {
            file_id: params.file_id.to_string(),
            include_revoked: false,
        };
        let listed = (self.storage)
            .permissions_list(&params.x_athena_client, &who, request)
            .await?;
        let permissions: Vec<_> = listed["permissions"]
            .as_array()
            .map(|all| all.iter().map(service_permission).collect())
            .unwrap_or_default();
        Ok(r::GetStorageServiceFilesByFileIdPermissions::Ok(
            super::answer("Permissions", json!({ "permissions": permissions }))?,
        ))
    }

    async fn post_storage_service_files_by_file_id_permissions_grant(
        &self,
        cx: RequestCx,
        params: params::PostStorageServiceFilesByFileIdPermissionsGrant,
        body: models::StorageServicePermissionRequest,
    ) -> ApiResult<r::PostStorageServiceFilesByFileIdPermissionsGrant> {
        let who = service(&cx, None)?;
        let request = GrantRequest {
            file_id: params.file_id.to_string(),
            principal_type: body.principal_type.to_string(),
            principal_id: body.principal_id.clone(),
            permission: body.action.to_string(),
            expires_at: body.expires_at,
            metadata: None,
        };
        let granted = (self.storage)
            .permission_grant(&params.x_athena_client, &who, request)
            .await?;
        Ok(r::PostStorageServiceFilesByFileIdPermissionsGrant::Ok(
            super::answer(
                "Permission granted",
                json!({ "permission": service_permission(&granted["permission"]) }),
            )?,
        ))
    }

    async fn post_storage_service_files_by_file_id_permissions_revoke(
        &self,
        cx: RequestCx,
        params: params::PostStorageServiceFilesByFileIdPermissionsRevoke,
        body: models::StorageServicePermissionRequest,
    ) -> ApiResult<r::PostStorageServiceFilesByFileIdPermissionsRevoke> {
        let who = service(&cx, None)?;
        let request = RevokeRequest {
            file_id: params.file_id.to_string(),
            principal_type: body.principal_type.to_string(),
            principal_id: body.principal_id.clone(),
            permission: body.action.to_string(),
        };
        (self.storage)
            .permission_revoke(&params.x_athena_client, &who, request)
            .await?;
        Ok(r::PostStorageServiceFilesByFileIdPermissionsRevoke::Ok(
            super::answer("Permission revoked", json!({ "fileId": params.file_id }))?,
        ))
    }
}
