//! `admin_errors`: the envelope's own error registry (`GET /admin/errors/catalog`),
//! read from `athena_runtime::Code` — the codes every error answer carries.

use crate::api::{models, responses, traits::AdminErrorsApi};
use crate::handlers::Handlers;
use crate::http::{ApiResult, RequestCx};
use athena_runtime::payload::Json;
use athena_runtime::Code;
use serde_json::{json, Value};

/// The registry: every code with its number, HTTP status, domain and docs
/// URL, and the domains in the order they first appear.
pub fn catalog() -> serde_json::Map<String, Value> {
    let errors: Vec<Value> = Code::ALL
        .iter()
        .map(|c| {
            json!({
                "code": c.as_str(),
                "error_number": c.number(),
                "http_status": c.status().as_u16(),
                "domain": c.domain(),
                "docs_url": c.docs_url(),
            })
        })
        .collect();
    let mut domains: Vec<&str> = Vec::new();
    for c in Code::ALL {
        if !domains.contains(&c.domain()) {
            domains.push(c.domain());
        }
    }
    let data = json!({ "errors": errors, "domains": domains, "count": Code::ALL.len() });
    data.as_object().cloned().unwrap_or_default()
}

impl AdminErrorsApi for Handlers {
    async fn get_admin_errors_catalog(
        &self,
        _cx: RequestCx,
    ) -> ApiResult<responses::GetAdminErrorsCatalog> {
        Ok(responses::GetAdminErrorsCatalog::Ok(Json::new(
            models::ApiSuccessEnvelope {
                status: models::ApiSuccessEnvelopeStatus::Success,
                message: "Athena error catalog".into(),
                data: catalog(),
            },
        )))
    }
}
