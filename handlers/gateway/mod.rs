//! The canonical data-plane routes (`/gateway/*`, `/data`): each converts
//! its body into a domain request (`crate::gateway::plan`), makes one call
//! to the gateway service, and converts the answer back.

mod d1;

use super::{fetch_answer, fetch_request, header_flag, strip_nulls_header, Handlers};
use crate::api::{models, params, responses, traits::GatewayApi};
use crate::domain::DomainError;
use crate::gateway::deferred::Enqueued;
use crate::gateway::plan;
use crate::gateway::service::{Deferral, Target, Written};
use crate::gateway::sql_text::{parse_in, Shape};
use crate::gateway::write::Write;
use crate::http::payload::Json;
use crate::http::{ApiResult, RequestCx};
use serde_json::{json, Map, Value};

impl GatewayApi for Handlers {
    async fn post_gateway_fetch(
        &self,
        cx: RequestCx,
        params: params::PostGatewayFetch,
        body: models::PostGatewayFetchRequest,
    ) -> ApiResult<responses::PostGatewayFetch> {
        let request = fetch_request(&self.gateway, &cx, &body)?;
        let fetched = self
            .gateway
            .fetch(&target!(params), cx.actor(), request)
            .await?;
        Ok(responses::PostGatewayFetch::Ok(fetch_answer(fetched)))
    }

    async fn put_gateway_insert(
        &self,
        cx: RequestCx,
        params: params::PutGatewayInsert,
        body: models::PutGatewayInsertRequest,
    ) -> ApiResult<responses::PutGatewayInsert> {
        let target = target!(params);
        let strip = strip_nulls_header(&cx);
        let (q, single) = plan::insert_plan(&body, strip)?;
        let write = Write::Insert(q);
        cx.require_rights(write.rights())?;
        // Never batched: upserts (two requests could hit one key in one
        // statement), direct URIs (nobody else's), or on request.
        let batchable = body.update_body.is_empty()
            && body.on_conflict.is_none()
            && !target.direct.is_set()
            && !header_flag(&cx, "x-athena-deadpool-enable");
        let window = (self.gateway).insert_window(params.x_athena_insert_window, batchable)?;
        let defer = deferral(&cx, "insert", &body, strip)?;
        let out = match self.gateway.write(&target, write, window, defer).await? {
            Written::Done(r) => Json::new(plan::insert_answer(
                r,
                single,
                &body.table_name,
                body.count.is_some(),
            )),
            Written::Queued { job, table_name } => queued_answer(&job, "insert", table_name),
        };
        Ok(responses::PutGatewayInsert::Ok(retype(
            out,
            models::PutGatewayInsertResponse200,
        )))
    }

    async fn post_gateway_update(
        &self,
        cx: RequestCx,
        params: params::PostGatewayUpdate,
        body: models::PostGatewayUpdateRequest,
    ) -> ApiResult<responses::PostGatewayUpdate> {
        let strip = strip_nulls_header(&cx);
        let write = Write::Update(plan::update_plan(&body, strip)?);
        let defer = deferral(&cx, "update", &body, strip)?;
        let out = match self
            .gateway
            .write(&target!(params), write, None, defer)
            .await?
        {
            Written::Done(r) => Json::new(plan::update_answer(r)),
            Written::Queued { job, table_name } => queued_answer(&job, "update", table_name),
        };
        Ok(responses::PostGatewayUpdate::Ok(retype(
            out,
            models::PostGatewayUpdateResponse200,
        )))
    }

    async fn delete_gateway_delete(
        &self,
        cx: RequestCx,
        params: params::DeleteGatewayDelete,
        body: models::DeleteGatewayDeleteRequest,
    ) -> ApiResult<responses::DeleteGatewayDelete> {
        let strip = strip_nulls_header(&cx);
        let write = Write::Delete(plan::delete_plan(&body, strip)?);
        let defer = deferral(&cx, "delete", &body, strip)?;
        let out = match self
            .gateway
            .write(&target!(params), write, None, defer)
            .await?
        {
            Written::Done(r) => Json::new(plan::delete_answer(
                r,
                &body.table_name,
                body.resource_id.as_ref(),
            )),
            Written::Queued { job, table_name } => queued_answer(&job, "delete", table_name),
        };
        Ok(responses::DeleteGatewayDelete::Ok(retype(
            out,
            models::DeleteGatewayDeleteResponse200,
        )))
    }

    async fn get_gateway_deferred_by_request_id(
        &self,
        cx: RequestCx,
        params: params::GetGatewayDeferredByRequestId,
    ) -> ApiResult<responses::GetGatewayDeferredByRequestId> {
        let record = (self.gateway)
            .deferred_status(crate::auth::header_client(cx.headers()), &params.request_id)
            .await?;
        Ok(responses::GetGatewayDeferredByRequestId::Ok(Json::new(
            models::GetGatewayDeferredByRequestIdResponse200(plan::deferred_body(record, None)),
        )))
    }

    async fn post_gateway_deferred_by_request_id_requeue(
        &self,
        cx: RequestCx,
        params: params::PostGatewayDeferredByRequestIdRequeue,
    ) -> ApiResult<responses::PostGatewayDeferredByRequestIdRequeue> {
        let (record, requeued) = (self.gateway)
            .deferred_requeue(crate::auth::header_client(cx.headers()), &params.request_id)
            .await?;
        let body = plan::deferred_body(record, Some(requeued));
        Ok(responses::PostGatewayDeferredByRequestIdRequeue::Ok(
            Json::new(models::PostGatewayDeferredByRequestIdRequeueResponse200(
                body,
            )),
        ))
    }

    async fn post_gateway_deferred_flush(
        &self,
        _cx: RequestCx,
    ) -> ApiResult<responses::PostGatewayDeferredFlush> {
        let summary = self.gateway.deferred_flush().await?;
        let mut out = plan::success(format!(
            "Flushed {} deferred writes ({} succeeded, {} failed)",
            summary["processed"], summary["succeeded"], summary["failed"]
        ));
        if let Value::Object(fields) = &summary {
            out.extend(fields.clone());
        }
        out.insert("data".into(), summary);
        Ok(responses::PostGatewayDeferredFlush::Ok(Json::new(
            Value::Object(out),
        )))
    }

    async fn post_gateway_query(
        &self,
        cx: RequestCx,
        params: params::PostGatewayQuery,
        body: models::PostGatewayQueryRequest,
    ) -> ApiResult<responses::PostGatewayQuery> {
        let target = target!(params);
        let schema = body.schema_name.as_deref();
        let out = match cx.require_right(crate::auth::rights::RAW_SQL) {
            Ok(()) => {
                (self.gateway)
                    .raw(&target, &body.query, schema, &body.params)
                    .await?
            }
            // A caller with only the read right may run the SDK's own
            // lookup SELECTs, parsed with a real SQL parser into a
            // structured read; anything else needs the raw-SQL right.
            Err(refused) => {
                let query = parse_in(&body.query, Shape::Rows, schema).map_err(|_| refused)?;
                let rows = self.gateway.read(&target, &query, false).await?.rows;
                plan::structured_read_answer(rows)
            }
        };
        Ok(responses::PostGatewayQuery::Ok(Json::new(
            models::PostGatewayQueryResponse200(out),
        )))
    }

    async fn post_gateway_sql(
        &self,
        cx: RequestCx,
        params: params::PostGatewaySql,
        body: models::GatewaySqlExecutionRequest,
    ) -> ApiResult<responses::PostGatewaySql> {
        let target = super::sql_target(&cx, target!(params), &body.db_name).await?;
        let out = self.gateway.sql(&target, &body).await?;
        Ok(responses::PostGatewaySql::Ok(Json::new(
            models::PostGatewaySqlResponse200(out),
        )))
    }

    async fn post_gateway_data(
        &self,
        cx: RequestCx,
        params: params::PostGatewayData,
        body: models::PostGatewayDataRequest,
    ) -> ApiResult<responses::PostGatewayData> {
        // The legacy alias of fetch: same body, same answer.
        let body: models::PostGatewayFetchRequest =
            crate::http::extract::typed_json(plan::to_value(&body)?, &[])?;
        let request = fetch_request(&self.gateway, &cx, &body)?;
        let fetched = self
            .gateway
            .fetch(&target!(params), cx.actor(), request)
            .await?;
        Ok(responses::PostGatewayData::Ok(as_value(fetch_answer(
            fetched,
        ))?))
    }

    async fn get_data(
        &self,
        cx: RequestCx,
        params: params::GetData,
    ) -> ApiResult<responses::GetData> {
        let body = crate::http::extract::typed_json(get_data_body(&params), &[])?;
        let request = fetch_request(&self.gateway, &cx, &body)?;
        let target = Target {
            client: params.x_athena_client.clone(),
            ..Default::default()
        };
        let fetched = self.gateway.fetch(&target, cx.actor(), request).await?;
        Ok(responses::GetData::Ok(as_value(fetch_answer(fetched))?))
    }

    /// PostgreSQL → Cloudflare D1 migration: preview (`dryRun`, the
    /// default; no tenant, no D1) or convert and run on the D1 database of
    /// `dbName` through the D1 REST API (`src/gateway/d1.rs`).
    async fn post_gateway_sql_d1_migrate(
        &self,
        _cx: RequestCx,
        params: params::PostGatewaySqlD1Migrate,
        body: models::D1MigrationRequest,
    ) -> ApiResult<responses::PostGatewaySqlD1Migrate> {
        d1::migrate(&self.gateway, params, body).await
    }

    async fn post_gateway_rpc(
        &self,
        _cx: RequestCx,
        params: params::PostGatewayRpc,
        body: models::GatewayRpcRequest,
    ) -> ApiResult<responses::PostGatewayRpc> {
        let call = plan::rpc_call(&body)?;
        let (rows, count) = self.gateway.rpc(&params.x_athena_client, &call).await?;
        Ok(responses::PostGatewayRpc::Ok(
            Json::new(models::PostGatewayRpcResponse200 {
                count,
                data: Vec::new(),
            })
            .with_raw_field("data", rows.into_string()),
        ))
    }
}

/// `GET /data`'s query parameters as the fetch body (post-processing
/// included, exactly as on `POST /gateway/data`).
fn get_data_body(params: &params::GetData) -> Value {
    let mut body = json!({
        "table_name": params.view,
        "conditions": [{"eq_column": params.eq_column, "eq_value": params.eq_value}],
    });
    let fields = body.as_object_mut().expect("object literal");
    let mut put = |name: &str, v: Value| {
        if !v.is_null() {
            fields.insert(name.into(), v);
        }
    };
    put("columns", json!(params.columns));
    put("limit", json!(params.limit));
    put("offset", json!(params.offset));
    put("current_page", json!(params.current_page));
    put("page_size", json!(params.page_size));
    put("strip_nulls", json!(params.strip_nulls));
    put("group_by", json!(params.group_by));
    put("time_granularity", json!(params.time_granularity));
    put("aggregation_column", json!(params.aggregation_column));
    put("aggregation_strategy", json!(params.aggregation_strategy));
    put("aggregation_dedup", json!(params.aggregation_dedup));
    if let Some(col) = &params.sort_by {
        let direction = params.sort_direction.as_deref().unwrap_or("asc");
        put("sort_by", json!({"field": col, "direction": direction}));
    }
    body
}

/// The body a canonical write route keeps for the deferred queue (only the
/// canonical routes defer; aliases and public routes run inline).
fn deferral<T: serde::Serialize>(
    cx: &RequestCx,
    operation: &'static str,
    body: &T,
    strip_nulls: Option<bool>,
) -> Result<Option<Deferral>, DomainError> {
    let idempotency_key = cx
        .headers()
        .get("idempotency-key")
        .map(|v| {
            v.to_str()
                .map(|k| k.trim().to_string())
                .map_err(|_| DomainError::Invalid("Idempotency-Key must be ASCII".into()))
        })
        .transpose()?;
    Ok(Some(Deferral {
        operation,
        body: plan::to_value(body)?,
        strip_nulls,
        // Asked for, or the admission limiter's decision (over the limit).
        requested: header_flag(cx, "x-athena-defer") || cx.admission_defers(),
        idempotency_key,
    }))
}

/// A queued write's answer, with its request id as a header too.
fn queued_answer(job: &Enqueued, operation: &str, table_name: Value) -> Json<Map<String, Value>> {
    let json = Json::new(plan::queued_answer(job, operation, table_name));
    match http::HeaderValue::from_str(&job.id.to_string()) {
        Ok(v) => json.with_header(
            http::HeaderName::from_static("x-athena-deferred-request-id"),
            v,
        ),
        Err(_) => json,
    }
}

/// An answer map as the route's documented body type.
fn retype<T>(j: Json<Map<String, Value>>, f: impl FnOnce(Map<String, Value>) -> T) -> Json<T> {
    Json {
        body: f(j.body),
        extra: j.extra,
        headers: j.headers,
    }
}

/// A fetch answer as untyped JSON, for the routes that alias it.
fn as_value<T: serde::Serialize>(j: Json<T>) -> Result<Json<Value>, DomainError> {
    j.into_value()
        .map_err(|e| DomainError::Internal(format!("fetch answer: {e}")))
}
