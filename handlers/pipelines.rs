//! `pipelines`: run and simulate pipelines, list templates
//! (`src/pipelines/`). The key was checked against `X-Athena-Client` for
//! `pipelines.execute`; a step naming another client is checked again for
//! that client (401/403, nothing runs), and each step needs its gateway
//! right on its client: read on the source, insert on the sink.

use crate::api::{models, params, responses, traits::PipelinesApi};
use crate::auth::rights::{FETCH, INSERT};
use crate::auth::Actor;
use crate::domain::DomainError;
use crate::handlers::Handlers;
use crate::http::payload::Json;
use crate::http::{ApiError, ApiResult, RequestCx};
use crate::pipelines::{self, Definition, Plan, RunRequest};
use serde_json::{json, Value};

impl PipelinesApi for Handlers {
    async fn post_pipelines(
        &self,
        cx: RequestCx,
        params: params::PostPipelines,
        body: models::PostPipelinesRequest,
    ) -> ApiResult<responses::PostPipelines> {
        let req = RunRequest::from_model(&body)?;
        let out = self
            .run_pipeline(&cx, &params.x_athena_client, req, false)
            .await?;
        let model: models::PostPipelinesResponse200 = serde_json::from_value(out.clone())
            .map_err(|e| DomainError::Internal(format!("pipeline answer: {e}")))?;
        let mut json = Json::new(model);
        for extra in [
            "status",
            "message",
            "pipeline",
            "data_truncated",
            "errors_truncated",
            "stopped",
            "steps",
        ] {
            if let Some(v) = out.get(extra) {
                json = json.with_field(extra, v.clone());
            }
        }
        Ok(responses::PostPipelines::Ok(json))
    }

    async fn post_pipelines_simulate(
        &self,
        cx: RequestCx,
        params: params::PostPipelinesSimulate,
        body: models::PostPipelinesSimulateRequest,
    ) -> ApiResult<responses::PostPipelinesSimulate> {
        let mut req = RunRequest::from_value(Value::Object(body.0))?;
        req.dry_run = Some(true);
        let out = self
            .run_pipeline(&cx, &params.x_athena_client, req, true)
            .await?;
        Ok(responses::PostPipelinesSimulate::Ok(Json::new(out)))
    }

    async fn get_pipelines_templates(
        &self,
        _cx: RequestCx,
        _params: params::GetPipelinesTemplates,
    ) -> ApiResult<responses::GetPipelinesTemplates> {
        let mut templates: Vec<Value> = (self.insights.pipeline_templates.iter())
            .map(|(name, def)| pipelines::template_json(name, def, true))
            .collect();
        for t in pipelines::list(self.tenants.catalog()).await? {
            if self.insights.pipeline_templates.contains_key(&t.name) {
                continue;
            }
            let def = pipelines::parse_definition(&t.definition).unwrap_or_default();
            templates.push(pipelines::template_json(&t.name, &def, false));
        }
        let model: models::GetPipelinesTemplatesResponse200 =
            serde_json::from_value(json!({ "templates": templates }))
                .map_err(|e| DomainError::Internal(format!("template list: {e}")))?;
        Ok(responses::GetPipelinesTemplates::Ok(
            Json::new(model)
                .with_field("status", json!("success"))
                .with_field("count", json!(templates.len())),
        ))
    }
}

impl Handlers {
    /// The template named `name`: boot YAML first, then the database.
    pub(crate) async fn pipeline_template(
        &self,
        name: &str,
    ) -> Result<Option<Definition>, DomainError> {
        if let Some(def) = self.insights.pipeline_templates.get(name) {
            return Ok(Some(def.clone()));
        }
        match pipelines::get(self.tenants.catalog(), name).await? {
            Some(t) => Ok(Some(pipelines::parse_definition(&t.definition)?)),
            None => Ok(None),
        }
    }

    /// The caller as seen for `client`: the checked actor for the header's
    /// client, else the key checked again for that one.
    async fn actor_for(
        &self,
        cx: &RequestCx,
        header: &str,
        client: &str,
    ) -> Result<Actor, ApiError> {
        if client == header {
            return Ok(cx.actor().clone());
        }
        let actor = cx.data_plane_actor(client).await?;
        actor.require_all(
            &[crate::auth::rights::Right::PipelinesExecute],
            Some(client),
        )?;
        Ok(actor)
    }

    async fn run_pipeline(
        &self,
        cx: &RequestCx,
        header: &str,
        req: RunRequest,
        simulate: bool,
    ) -> Result<Value, ApiError> {
        let template = match req.pipeline.as_deref().map(str::trim) {
            Some(name) if !name.is_empty() => {
                Some(self.pipeline_template(name).await?.ok_or_else(|| {
                    DomainError::Invalid(format!("unknown pipeline template `{name}`"))
                })?)
            }
            _ => None,
        };
        let dry_run = simulate || req.dry_run.unwrap_or(false);
        let def = pipelines::resolve(template.as_ref(), &req)?;
        let plan: Plan = pipelines::validate(&def, !simulate)?;
        let source_client = plan
            .source_client
            .clone()
            .unwrap_or_else(|| header.to_string());
        let sink_client = plan
            .sink_client
            .clone()
            .unwrap_or_else(|| header.to_string());
        // Every right before anything runs.
        let source_actor = self.actor_for(cx, header, &source_client).await?;
        source_actor.require_all(&[FETCH], Some(&source_client))?;
        if !simulate {
            let sink_actor = self.actor_for(cx, header, &sink_client).await?;
            sink_actor.require_all(&[INSERT], Some(&sink_client))?;
        }
        let source = self.gateway.tenant(Some(&source_client)).await?;
        let sink = match dry_run {
            true => None,
            false => Some(self.gateway.tenant(Some(&sink_client)).await?),
        };
        crate::stats::oplog::note_table(plan.query.table.as_str());
        let out = pipelines::run(&self.gateway, &source, sink.as_deref(), &plan).await?;
        // The sink writes rows directly (not through `Gateway::apply_write`):
        // no write events are published for them, but the read cache of the
        // sink table is invalidated so reads see the new rows.
        if let (Some(sink), Some((schema, table))) = (sink.as_deref(), plan.sink.as_ref()) {
            if out.rows_inserted > 0 {
                self.gateway
                    .cache
                    .invalidate(&sink.name, Some((schema.as_str(), table.as_str())))
                    .await;
            }
        }
        let sink_table = plan.sink.as_ref().map(|(_, t)| t.as_str().to_string());
        if let Err(e) = pipelines::log_steps(
            self.tenants.catalog(),
            req.pipeline.as_deref(),
            &out,
            (&source_client, plan.query.table.as_str()),
            (&sink_client, sink_table.as_deref()),
            dry_run,
        )
        .await
        {
            tracing::warn!(error = %e, "pipeline step log not written");
        }
        let rows_inserted = out.rows_inserted as i64;
        Ok(json!({
            "status": "success",
            "message": match (dry_run, &out.stopped) {
                (true, _) => format!("Dry run: {} rows would be inserted", out.candidates),
                (false, None) => format!("{} rows inserted", out.rows_inserted),
                (false, Some(why)) => format!("{} rows inserted; {why}", out.rows_inserted),
            },
            "pipeline": req.pipeline,
            "pipeline_run_id": out.run_id.to_string(),
            "dry_run": dry_run,
            "source_client": source_client,
            "sink_client": sink_client,
            "rows_fetched": out.rows_fetched,
            "rows_inserted": rows_inserted,
            "would_insert": dry_run.then_some(out.candidates),
            "errors": out.errors,
            "errors_truncated": out.errors_truncated,
            "stopped": out.stopped,
            "data": out.data,
            "data_truncated": out.data_truncated,
            "steps": {
                "fetch_ms": out.timings_ms[0],
                "transform_ms": out.timings_ms[1],
                "sink_ms": out.timings_ms[2],
            },
        }))
    }
}
