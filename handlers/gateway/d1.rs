//! `POST /gateway/sql/d1/migrate`'s answers: the conversion
//! (`src/gateway/d1.rs`) and the D1 run (`Gateway::d1_run`) rendered as the
//! contract documents them.

use crate::api::{models, params, responses};
use crate::domain::DomainError;
use crate::gateway::d1::Plan;
use crate::gateway::service::Gateway;
use crate::http::payload::Json;
use crate::http::{ApiError, ApiResult, Code, ErrorEnvelope};
use responses::PostGatewaySqlD1Migrate as R;
use serde_json::Value;

/// 400 empty script or execution without `X-Athena-Client`, 422
/// unsupported constructs in strict mode, 503 D1 not configured or a batch
/// failed (earlier batches stay applied).
pub(super) async fn migrate(
    gateway: &Gateway,
    params: params::PostGatewaySqlD1Migrate,
    body: models::D1MigrationRequest,
) -> ApiResult<R> {
    let plan = Plan::from_request(&body);
    let bad = |e: ApiError| R::BadRequest(with_envelope(plan.preview("error"), &e.envelope()));
    if plan.is_empty() {
        return Ok(bad(ApiError::missing_parameter("body field", "schemaSql")));
    }
    if plan.errors() > 0 {
        let e = ErrorEnvelope {
            status: "error".into(),
            message: "Migration cannot be converted to D1".into(),
            error: plan.untranslatable(),
            code: Some(Code::D1Unsupported.as_str().into()),
            error_number: Some(Code::D1Unsupported.number()),
            docs_url: Some(Code::D1Unsupported.docs_url()),
        };
        return Ok(R::UnprocessableEntity(with_envelope(
            plan.preview("error"),
            &e,
        )));
    }
    if body.dry_run {
        return Ok(R::Ok(Json::new(
            models::PostGatewaySqlD1MigrateResponse200 {
                subtype_0: Some(plan.preview("preview")),
                ..Default::default()
            },
        )));
    }
    let Some(client) = params
        .x_athena_client
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    else {
        return Ok(bad(DomainError::MissingClient.into()));
    };
    let batch_size = body.batch_size.map(|n| n.get());
    match gateway
        .d1_run(client, &body.db_name, &plan.batches(batch_size))
        .await
    {
        Ok(outcomes) => Ok(R::Ok(Json::new(
            models::PostGatewaySqlD1MigrateResponse200 {
                subtype_1: Some(plan.executed(batch_size, &outcomes)),
                ..Default::default()
            },
        ))),
        Err(e @ DomainError::InvalidField { .. }) => Ok(bad(e.into())),
        Err(e @ DomainError::ServiceUnavailable(_)) => Ok(R::ServiceUnavailable(Json::new(
            ApiError::from(e).envelope(),
        ))),
        Err(e) => Err(e.into()),
    }
}

/// A preview body that is also the standard error envelope: the contract
/// documents the preview schema for 400/422, the project rule the envelope
/// (`status: "error"` satisfies both).
fn with_envelope(
    preview: models::D1MigrationPreviewResponse,
    e: &ErrorEnvelope,
) -> Json<models::D1MigrationPreviewResponse> {
    let mut preview = preview;
    preview.status = "error".into();
    let mut json = Json::new(preview)
        .with_field("message", Value::String(e.message.clone()))
        .with_field("error", Value::String(e.error.clone()));
    if let Some(code) = &e.code {
        json = json.with_field("code", Value::String(code.clone()));
    }
    if let Some(n) = e.error_number {
        json = json.with_field("error_number", Value::from(n));
    }
    if let Some(url) = &e.docs_url {
        json = json.with_field("docs_url", Value::String(url.clone()));
    }
    json
}
