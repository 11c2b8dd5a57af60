//! `POST /admin/provision/providers/{neon,railway,render}` (issue 21, the
//! integrations half of `admin_provision`): thin handlers over
//! `crate::integrations::providers`.
//!
//! TODO(lead): the other 19 `admin_provision` operations live in the
//! bootstrap half (`handlers/admin/provision.rs`, branch `provision`); on
//! merge, move these three methods into that `impl AdminProvisionApi` (a
//! type has one impl of the trait) and delete this impl block.

use crate::api::{models, responses, traits::AdminProvisionApi};
use crate::handlers::Handlers;
use crate::http::payload::Json;
use crate::http::{ApiError, ApiResult, RequestCx};
use crate::integrations::providers::{Body, Caller, Provider};

/// Runs one admin provider request (the body's `client_name`).
pub(crate) async fn provision(
    h: &Handlers,
    provider: Provider,
    body: impl serde::Serialize,
) -> Result<serde_json::Value, ApiError> {
    let body = Body::new(serde_json::to_value(body).map_err(|_| ApiError::internal())?)?;
    let client = body
        .client_name()?
        .ok_or_else(|| ApiError::missing_parameter("field", "client_name"))?;
    h.integrations
        .provision(provider, &client, body, Caller::Admin)
        .await
}

impl AdminProvisionApi for Handlers {
    async fn post_admin_provision_providers_neon(
        &self,
        _cx: RequestCx,
        body: models::NeonProviderProvisionRequest,
    ) -> ApiResult<responses::PostAdminProvisionProvidersNeon> {
        let out = provision(self, Provider::Neon, body).await?;
        Ok(responses::PostAdminProvisionProvidersNeon::Ok(Json::new(
            out,
        )))
    }

    async fn post_admin_provision_providers_railway(
        &self,
        _cx: RequestCx,
        body: models::RailwayProviderProvisionRequest,
    ) -> ApiResult<responses::PostAdminProvisionProvidersRailway> {
        let out = provision(self, Provider::Railway, body).await?;
        Ok(responses::PostAdminProvisionProvidersRailway::Ok(
            Json::new(out),
        ))
    }

    async fn post_admin_provision_providers_render(
        &self,
        _cx: RequestCx,
        body: models::RenderProviderProvisionRequest,
    ) -> ApiResult<responses::PostAdminProvisionProvidersRender> {
        let out = provision(self, Provider::Render, body).await?;
        Ok(responses::PostAdminProvisionProvidersRender::Ok(Json::new(
            out,
        )))
    }
}
