//! `typesense` and `api` (Supabase SSL enforcement) families, issue 21:
//! thin handlers over `crate::integrations`. Both families need the static
//! admin key (fail-closed in the spine, `athena_codegen::spec::is_admin_path`):
//! they take credentials and URLs.

use crate::api::{models, params, responses, traits::ApiApi, traits::TypesenseApi};
use crate::handlers::Handlers;
use crate::http::payload::Json;
use crate::http::{ApiError, ApiResult, RequestCx};
use serde_json::Value;

/// A service answer as the operation's typed model.
pub(crate) fn typed<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| {
        tracing::error!(error = %e, "an integration answer does not fit its model");
        ApiError::internal()
    })
}

impl TypesenseApi for Handlers {
    async fn post_typesense_backends_test(
        &self,
        _cx: RequestCx,
        body: models::TypesenseConnection,
    ) -> ApiResult<responses::PostTypesenseBackendsTest> {
        let out = self
            .integrations
            .typesense_test(&body.base_url, &body.api_key, body.timeout_ms)
            .await?;
        Ok(responses::PostTypesenseBackendsTest::Ok(Json::new(out)))
    }

    async fn post_typesense_collections_list(
        &self,
        _cx: RequestCx,
        body: models::TypesenseConnection,
    ) -> ApiResult<responses::PostTypesenseCollectionsList> {
        let out = self
            .integrations
            .typesense_collections(&body.base_url, &body.api_key, body.timeout_ms)
            .await?;
        Ok(responses::PostTypesenseCollectionsList::Ok(Json::new(out)))
    }

    async fn post_typesense_sync_jobs_by_job_id_run(
        &self,
        _cx: RequestCx,
        params: params::PostTypesenseSyncJobsByJobIdRun,
    ) -> ApiResult<responses::PostTypesenseSyncJobsByJobIdRun> {
        let out = self.integrations.typesense_run(params.job_id).await?;
        Ok(responses::PostTypesenseSyncJobsByJobIdRun::Ok(Json::new(
            typed(out)?,
        )))
    }

    async fn post_typesense_sync_jobs_by_job_id_cancel(
        &self,
        _cx: RequestCx,
        params: params::PostTypesenseSyncJobsByJobIdCancel,
    ) -> ApiResult<responses::PostTypesenseSyncJobsByJobIdCancel> {
        let out = self.integrations.typesense_cancel(params.job_id).await?;
        Ok(responses::PostTypesenseSyncJobsByJobIdCancel::Ok(
            Json::new(out),
        ))
    }

    async fn post_typesense_sync_runs_by_run_id_kill(
        &self,
        _cx: RequestCx,
        params: params::PostTypesenseSyncRunsByRunIdKill,
    ) -> ApiResult<responses::PostTypesenseSyncRunsByRunIdKill> {
        let out = self.integrations.typesense_kill(params.run_id).await?;
        Ok(responses::PostTypesenseSyncRunsByRunIdKill::Ok(Json::new(
            out,
        )))
    }

    async fn post_typesense_search(
        &self,
        _cx: RequestCx,
        body: models::TypesenseSearchRequest,
    ) -> ApiResult<responses::PostTypesenseSearch> {
        let out = self.integrations.typesense_search(&body).await?;
        Ok(responses::PostTypesenseSearch::Ok(Json::new(out)))
    }
}

impl ApiApi for Handlers {
    async fn post_api_v2_supabase_ssl_enforcement(
        &self,
        _cx: RequestCx,
        body: models::PostApiV2SupabaseSslEnforcementRequest,
    ) -> ApiResult<responses::PostApiV2SupabaseSslEnforcement> {
        let out = self
            .integrations
            .supabase_ssl(
                body.enabled,
                body.access_token.as_deref(),
                body.project_ref.as_deref(),
            )
            .await?;
        Ok(responses::PostApiV2SupabaseSslEnforcement::Ok(Json::new(
            typed(out)?,
        )))
    }
}
