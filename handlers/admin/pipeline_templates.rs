//! `admin_pipeline_templates`: database-backed pipeline templates
//! (`pipeline_templates`, `src/pipelines/`). Boot YAML templates are
//! read-only: their names are refused (409).

use crate::api::{models, params, responses, traits::AdminPipelineTemplatesApi};
use crate::domain::{success, DomainError};
use crate::handlers::Handlers;
use crate::http::payload::Json;
use crate::http::{ApiResult, RequestCx};
use crate::pipelines;
use serde_json::{json, Value};

fn one(message: &str, data: Value) -> Json<Value> {
    let mut out = success(message);
    out.insert("data".into(), data);
    Json::new(Value::Object(out))
}

fn check_name(name: &str) -> Result<(), DomainError> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    match ok {
        true => Ok(()),
        false => Err(DomainError::invalid_field(
            "template_name",
            "1–200 characters of letters, digits, `_`, `-` and `.`",
        )),
    }
}

impl AdminPipelineTemplatesApi for Handlers {
    async fn get_admin_pipeline_templates(
        &self,
        _cx: RequestCx,
    ) -> ApiResult<responses::GetAdminPipelineTemplates> {
        let list: Vec<Value> = pipelines::list(self.tenants.catalog())
            .await?
            .iter()
            .map(|t| t.to_json())
            .collect();
        let message = format!("{} pipeline templates", list.len());
        Ok(responses::GetAdminPipelineTemplates::Ok(one(
            &message,
            json!({ "templates": list, "count": list.len() }),
        )))
    }

    async fn get_admin_pipeline_templates_by_template_name(
        &self,
        _cx: RequestCx,
        params: params::GetAdminPipelineTemplatesByTemplateName,
    ) -> ApiResult<responses::GetAdminPipelineTemplatesByTemplateName> {
        let t = pipelines::get(self.tenants.catalog(), &params.template_name)
            .await?
            .ok_or_else(|| {
                DomainError::not_found("pipeline template", params.template_name.as_str())
            })?;
        Ok(responses::GetAdminPipelineTemplatesByTemplateName::Ok(one(
            "Pipeline template",
            t.to_json(),
        )))
    }

    async fn put_admin_pipeline_templates_by_template_name(
        &self,
        _cx: RequestCx,
        params: params::PutAdminPipelineTemplatesByTemplateName,
        body: models::PutAdminPipelineTemplatesByTemplateNameRequest,
    ) -> ApiResult<responses::PutAdminPipelineTemplatesByTemplateName> {
        let name = params.template_name.as_str();
        check_name(name)?;
        if self.insights.pipeline_templates.contains_key(name) {
            return Err(DomainError::Conflict(format!(
                "`{name}` is a boot YAML pipeline (read-only); choose another name"
            ))
            .into());
        }
        let def = pipelines::parse_definition(&Value::Object(body.definition))?;
        pipelines::validate(&def, true)?;
        let saved = pipelines::put(
            self.tenants.catalog(),
            name,
            &def,
            &Value::Object(body.metadata),
        )
        .await?;
        Ok(responses::PutAdminPipelineTemplatesByTemplateName::Ok(one(
            "Pipeline template saved",
            saved.to_json(),
        )))
    }

    async fn delete_admin_pipeline_templates_by_template_name(
        &self,
        _cx: RequestCx,
        params: params::DeleteAdminPipelineTemplatesByTemplateName,
    ) -> ApiResult<responses::DeleteAdminPipelineTemplatesByTemplateName> {
        let t = pipelines::delete(self.tenants.catalog(), &params.template_name)
            .await?
            .ok_or_else(|| {
                DomainError::not_found("pipeline template", params.template_name.as_str())
            })?;
        Ok(responses::DeleteAdminPipelineTemplatesByTemplateName::Ok(
            one("Pipeline template deleted", t.to_json()),
        ))
    }
}
