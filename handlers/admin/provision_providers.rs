//! `POST /admin/provision/providers/{neon,railway,render}` (issue 21): the
//! request as `crate::integrations::providers` takes it. The trait methods
//! live with the rest of `admin_provision` in `handlers/admin/provision.rs`.

use crate::handlers::Handlers;
use crate::http::ApiError;
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
