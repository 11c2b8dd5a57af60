//! `POST /api/v2/supabase/ssl_enforcement` (issue 21): `PUT
//! {ATHENA_SUPABASE_API_URL}/v1/projects/{ref}/ssl-enforcement` with the
//! body's (or `SUPABASE_ACCESS_TOKEN`'s) token. Missing token or ref → 400;
//! any upstream failure → the documented 500, code `supabase_api_error`.

use super::http::{upstream_message, Call, Failure};
use super::Integrations;
use crate::http::{ApiError, Code};
use serde_json::{json, Value};

fn api_error(detail: impl Into<String>) -> ApiError {
    ApiError::new(Code::SupabaseApiError, "Supabase API error", detail)
}

/// A project ref: letters, digits, `-`, `_` (1-64).
fn check_ref(r: &str) -> Result<(), ApiError> {
    let ok = !r.is_empty()
        && r.len() <= 64
        && r.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    ok.then_some(()).ok_or_else(|| {
        ApiError::invalid_parameter(
            "project_ref",
            "must be a project ref (letters, digits, `-`, `_`)",
        )
    })
}

impl Integrations {
    pub async fn supabase_ssl(
        &self,
        enabled: bool,
        access_token: Option<&str>,
        project_ref: Option<&str>,
    ) -> Result<Value, ApiError> {
        let s = &self.settings;
        let token = access_token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .or_else(|| s.supabase_access_token.clone())
            .ok_or_else(|| {
                ApiError::bad_request("access_token is required (or set SUPABASE_ACCESS_TOKEN)")
            })?;
        let project = project_ref
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .or_else(|| s.supabase_project_ref.clone())
            .ok_or_else(|| ApiError::bad_request("project_ref is required (or set PROJECT_REF)"))?;
        check_ref(&project)?;
        let raw = s
            .supabase_api_url
            .clone()
            .unwrap_or_else(|| super::SUPABASE_API_URL.to_string());
        let base = self
            .http
            .check_base_url(&raw)
            .map_err(|f| api_error(format!("ATHENA_SUPABASE_API_URL: {f}")))?;
        let call = Call::new(
            http::Method::PUT,
            format!("{base}/v1/projects/{project}/ssl-enforcement"),
        )
        .bearer(&token)
        .json(&json!({"requestedConfig": {"database": enabled}}));
        let answer = self.http.send(call).await.map_err(|f| match f {
            Failure::Unreachable(why) => {
                api_error(format!("the Supabase API is unreachable: {why}"))
            }
            other => api_error(format!("the Supabase API: {other}")),
        })?;
        if !answer.ok() {
            return Err(api_error(format!(
                "the Supabase API answered {}: {}",
                answer.status,
                upstream_message(&answer)
            )));
        }
        let database = answer
            .json
            .pointer("/currentConfig/database")
            .and_then(Value::as_bool)
            .ok_or_else(|| api_error("the Supabase API answer has no currentConfig.database"))?;
        let applied = answer
            .json
            .get("appliedSuccessfully")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(json!({
            "status": "success",
            "message": format!("SSL enforcement {} for project {project}", if database { "enabled" } else { "disabled" }),
            "data": {"currentConfig": {"database": database}, "appliedSuccessfully": applied},
        }))
    }
}
