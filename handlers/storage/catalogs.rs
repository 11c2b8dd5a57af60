//! `storage_catalogs`: the S3 catalogs and credentials of a client
//! (`/storage/catalogs`, `/storage/credentials`; admin surface), kept in
//! the client's database (`src/storage/`).

use crate::api::{models, params, responses, traits::StorageCatalogsApi};
use crate::handlers::Handlers;
use crate::http::payload::Json;
use crate::http::{ApiResult, RequestCx};
use crate::storage::catalog::{Catalog, CredentialItem};
use crate::storage::service::{CatalogPatch, NewCatalog};

impl StorageCatalogsApi for Handlers {
    async fn get_storage_credentials(
        &self,
        _cx: RequestCx,
        params: params::GetStorageCredentials,
    ) -> ApiResult<responses::GetStorageCredentials> {
        let items = self.storage.credentials(&params.x_athena_client).await?;
        Ok(responses::GetStorageCredentials::Ok(Json::new(
            models::S3CredentialsListResponse {
                data: items.into_iter().map(credential_item).collect(),
            },
        )))
    }

    async fn get_storage_catalogs(
        &self,
        _cx: RequestCx,
        params: params::GetStorageCatalogs,
    ) -> ApiResult<responses::GetStorageCatalogs> {
        let catalogs = self.storage.catalogs(&params.x_athena_client).await?;
        Ok(responses::GetStorageCatalogs::Ok(Json::new(
            models::S3CatalogListResponse {
                data: catalogs.into_iter().map(catalog_item).collect(),
            },
        )))
    }

    async fn post_storage_catalogs(
        &self,
        _cx: RequestCx,
        params: params::PostStorageCatalogs,
        body: models::CreateS3CatalogRequest,
    ) -> ApiResult<responses::PostStorageCatalogs> {
        let new = NewCatalog {
            name: body.name,
            description: body.description,
            endpoint: body.endpoint,
            region: body.region,
            bucket: body.bucket,
            provider: body.provider,
            access_key_id: body.access_key_id,
            secret_key: body.secret_key,
            session_token: body.session_token,
            metadata: body.metadata,
        };
        let created = self
            .storage
            .create_catalog(&params.x_athena_client, new)
            .await?;
        Ok(responses::PostStorageCatalogs::Ok(Json::new(catalog_item(
            created,
        ))))
    }

    async fn patch_storage_catalogs_by_id(
        &self,
        _cx: RequestCx,
        params: params::PatchStorageCatalogsById,
        body: models::UpdateS3CatalogRequest,
    ) -> ApiResult<responses::PatchStorageCatalogsById> {
        let patch = CatalogPatch {
            name: body.name,
            description: body.description,
            endpoint: body.endpoint,
            region: body.region,
            bucket: body.bucket,
            provider: body.provider,
            access_key_id: body.access_key_id,
            secret_key: body.secret_key,
            session_token: body.session_token,
            is_active: body.is_active,
            metadata: body.metadata,
        };
        let updated = self
            .storage
            .update_catalog(&params.x_athena_client, params.id, patch)
            .await?;
        Ok(responses::PatchStorageCatalogsById::Ok(Json::new(
            catalog_item(updated),
        )))
    }

    async fn delete_storage_catalogs_by_id(
        &self,
        _cx: RequestCx,
        params: params::DeleteStorageCatalogsById,
    ) -> ApiResult<responses::DeleteStorageCatalogsById> {
        (self.storage)
            .delete_catalog(&params.x_athena_client, params.id)
            .await?;
        Ok(responses::DeleteStorageCatalogsById::Ok(Json::new(
            models::DeleteS3CatalogResponse {
                id: params.id,
                deleted: true,
            },
        )))
    }
}

fn catalog_item(c: Catalog) -> models::S3CatalogItem {
    models::S3CatalogItem {
        id: c.id,
        name: c.name,
        description: c.description,
        endpoint: c.endpoint,
        region: c.region,
        bucket: c.bucket,
        provider: c.provider,
        is_active: c.is_active,
        active_credential_id: c.active_credential_id,
        active_access_key: c.active_access_key,
        created_at: c.created_at,
        updated_at: c.updated_at,
    }
}

fn credential_item(c: CredentialItem) -> models::S3CredentialListItem {
    models::S3CredentialListItem {
        id: c.id,
        s3_id: c.s3_id,
        name: c.name,
        description: c.description,
        endpoint: c.endpoint,
        region: c.region,
        bucket: c.bucket,
        provider: c.provider,
        access_key: c.access_key,
        created_at: c.created_at,
        updated_at: c.updated_at,
    }
}
