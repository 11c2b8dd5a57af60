//! `storage_buckets`: buckets and their CORS and lifecycle rules on a
//! tenant's S3 store (`POST /storage/buckets/…`, `src/storage/buckets.rs`).

use super::storage_call;
use crate::api::{models, params, responses, traits::StorageBucketsApi};
use crate::handlers::Handlers;
use crate::http::{ApiResult, RequestCx};
use responses as r;

impl StorageBucketsApi for Handlers {
    async fn post_storage_buckets_list(
        &self,
        cx: RequestCx,
        body: models::StorageS3Connection,
    ) -> ApiResult<r::PostStorageBucketsList> {
        storage_call!(
            self,
            cx,
            body,
            list_buckets,
            r::PostStorageBucketsList::Ok,
            "Buckets listed"
        )
    }

    async fn post_storage_buckets_create(
        &self,
        cx: RequestCx,
        body: models::StorageS3Credentials,
    ) -> ApiResult<r::PostStorageBucketsCreate> {
        storage_call!(
            self,
            cx,
            body,
            create_bucket,
            r::PostStorageBucketsCreate::Ok,
            "Bucket created"
        )
    }

    async fn post_storage_buckets_delete(
        &self,
        cx: RequestCx,
        body: models::StorageS3Credentials,
    ) -> ApiResult<r::PostStorageBucketsDelete> {
        storage_call!(
            self,
            cx,
            body,
            delete_bucket,
            r::PostStorageBucketsDelete::Ok,
            "Bucket deleted"
        )
    }

    async fn post_storage_buckets_cors(
        &self,
        cx: RequestCx,
        body: models::StorageBucketCorsRequest,
    ) -> ApiResult<r::PostStorageBucketsCors> {
        storage_call!(
            self,
            cx,
            body,
            bucket_cors,
            r::PostStorageBucketsCors::Ok,
            "Bucket CORS rules"
        )
    }

    async fn post_storage_buckets_cors_set(
        &self,
        cx: RequestCx,
        body: models::StorageSetBucketCorsRequest,
    ) -> ApiResult<r::PostStorageBucketsCorsSet> {
        storage_call!(
            self,
            cx,
            body,
            set_bucket_cors,
            r::PostStorageBucketsCorsSet::Ok,
            "Bucket CORS rules set"
        )
    }

    async fn post_storage_buckets_cors_delete(
        &self,
        cx: RequestCx,
        body: models::StorageBucketCorsRequest,
    ) -> ApiResult<r::PostStorageBucketsCorsDelete> {
        storage_call!(
            self,
            cx,
            body,
            delete_bucket_cors,
            r::PostStorageBucketsCorsDelete::Ok,
            "Bucket CORS rules deleted"
        )
    }

    async fn post_storage_buckets_lifecycle(
        &self,
        cx: RequestCx,
        _params: params::PostStorageBucketsLifecycle,
        body: models::PostStorageBucketsLifecycleRequest,
    ) -> ApiResult<r::PostStorageBucketsLifecycle> {
        storage_call!(
            self,
            cx,
            body,
            bucket_lifecycle,
            r::PostStorageBucketsLifecycle::Ok,
            "Bucket lifecycle rules"
        )
    }

    async fn post_storage_buckets_lifecycle_set(
        &self,
        cx: RequestCx,
        _params: params::PostStorageBucketsLifecycleSet,
        body: models::PostStorageBucketsLifecycleSetRequest,
    ) -> ApiResult<r::PostStorageBucketsLifecycleSet> {
        storage_call!(
            self,
            cx,
            body,
            set_bucket_lifecycle,
            r::PostStorageBucketsLifecycleSet::Ok,
            "Bucket lifecycle rules set"
        )
    }

    async fn post_storage_buckets_lifecycle_delete(
        &self,
        cx: RequestCx,
        _params: params::PostStorageBucketsLifecycleDelete,
        body: models::PostStorageBucketsLifecycleDeleteRequest,
    ) -> ApiResult<r::PostStorageBucketsLifecycleDelete> {
        storage_call!(
            self,
            cx,
            body,
            delete_bucket_lifecycle,
            r::PostStorageBucketsLifecycleDelete::Ok,
            "Bucket lifecycle rules deleted"
        )
    }

    async fn post_storage_buckets_policy(
        &self,
        cx: RequestCx,
        _params: params::PostStorageBucketsPolicy,
        body: models::StorageS3Credentials,
    ) -> ApiResult<r::PostStorageBucketsPolicy> {
        storage_call!(
            self,
            cx,
            body,
            bucket_policy,
            r::PostStorageBucketsPolicy::Ok,
            "Bucket policy"
        )
    }

    async fn post_storage_buckets_policy_set(
        &self,
        cx: RequestCx,
        _params: params::PostStorageBucketsPolicySet,
        body: models::StorageSetBucketPolicyRequest,
    ) -> ApiResult<r::PostStorageBucketsPolicySet> {
        storage_call!(
            self,
            cx,
            body,
            set_bucket_policy,
            r::PostStorageBucketsPolicySet::Ok,
            "Bucket policy set"
        )
    }

    async fn post_storage_buckets_policy_delete(
        &self,
        cx: RequestCx,
        _params: params::PostStorageBucketsPolicyDelete,
        body: models::StorageS3Credentials,
    ) -> ApiResult<r::PostStorageBucketsPolicyDelete> {
        storage_call!(
            self,
            cx,
            body,
            delete_bucket_policy,
            r::PostStorageBucketsPolicyDelete::Ok,
            "Bucket policy deleted"
        )
    }

    async fn post_storage_buckets_public_access(
        &self,
        cx: RequestCx,
        _params: params::PostStorageBucketsPublicAccess,
        body: models::StorageS3Credentials,
    ) -> ApiResult<r::PostStorageBucketsPublicAccess> {
        storage_call!(
            self,
            cx,
            body,
            public_access,
            r::PostStorageBucketsPublicAccess::Ok,
            "Bucket public-access block"
        )
    }

    async fn post_storage_buckets_public_access_set(
        &self,
        cx: RequestCx,
        _params: params::PostStorageBucketsPublicAccessSet,
        body: models::StorageSetPublicAccessBlockRequest,
    ) -> ApiResult<r::PostStorageBucketsPublicAccessSet> {
        storage_call!(
            self,
            cx,
            body,
            set_public_access,
            r::PostStorageBucketsPublicAccessSet::Ok,
            "Bucket public-access block set"
        )
    }

    async fn post_storage_buckets_public_access_delete(
        &self,
        cx: RequestCx,
        _params: params::PostStorageBucketsPublicAccessDelete,
        body: models::StorageS3Credentials,
    ) -> ApiResult<r::PostStorageBucketsPublicAccessDelete> {
        storage_call!(
            self,
            cx,
            body,
            delete_public_access,
            r::PostStorageBucketsPublicAccessDelete::Ok,
            "Bucket public-access block deleted"
        )
    }
}
