use super::{strip_nulls_header, Handlers};
use crate::api::{models, params, responses, traits::GatewayApi};
use crate::db::tenants::Tenant;
use crate::domain::identifier::qualified_table;
use crate::domain::DomainError;
use crate::gateway::filter::{Cond, Filter, FilterValue, Operator};
use crate::gateway::read::{self, ReadQuery};
use crate::gateway::sql::split_columns;
use crate::gateway::write::{self, Conflict, ConflictAction, WriteResult};
use crate::gateway::{cache, cond, deferred, postprocess};
use crate::http::payload::Json;
use crate::http::{ApiError, ApiResult, Code, RequestCx};
use serde_json::{json, Map, Value};
use std::sync::Arc;

impl Handlers {
    /// The tenant of a gateway call: the database named by a direct
    /// PostgreSQL URI header when one is set (`x-pg-uri` preferred, then
    /// `x-athena-jdbc-url`, `x-jdbc-url`; `X-Athena-Client` is then ignored),
    /// else the registered client. Direct-URI requests always run inline.
    pub(super) async fn gateway_tenant(
        &self,
        client: Option<&str>,
        direct: [&Option<String>; 3],
    ) -> ApiResult<Arc<Tenant>> {
        if let Some(tenant) = self.direct_tenant(direct).await {
            return tenant;
        }
        Ok(self.tenant(client).await?)
    }

    /// The direct-URI tenant, or `None` when no direct-URI header is set
    /// (see `src/db/direct.rs` for every check).
    pub(super) async fn direct_tenant(
        &self,
        direct: [&Option<String>; 3],
    ) -> Option<ApiResult<Arc<Tenant>>> {
        self.direct.route(direct.map(|h| h.as_deref())).await
    }
}

impl Handlers {
    /// Queues a gateway write instead of running it when deferral applies:
    /// the client has deferred writes enabled (or the request says
    /// `X-Athena-Defer: true`), the request came through its canonical
    /// route (public routes run inline) and names no direct PostgreSQL URI
    /// (those always run inline). Returns the answer once the job row is
    /// committed.
    async fn defer<T: serde::Serialize>(
        &self,
        cx: &RequestCx,
        tenant: &Tenant,
        direct: [&Option<String>; 3],
        operation: &str,
        body: &T,
        strip_nulls: Option<bool>,
    ) -> ApiResult<Option<Json<Map<String, Value>>>> {
        use crate::api::operations::Operation;
        if crate::db::direct::pick(direct.map(|h| h.as_deref())).is_some()
            || !matches!(
                cx.operation(),
                Operation::PutGatewayInsert
                    | Operation::PostGatewayUpdate
                    | Operation::DeleteGatewayDelete
            )
        {
            return Ok(None);
        }
        let requested = header_flag(cx, "x-athena-defer");
        if !requested && !self.deferred.enabled(&tenant.name).await? {
            return Ok(None);
        }
        let body = to_value(body)?;
        let table_name = body.get("table_name").cloned().unwrap_or(Value::Null);
        let payload = json!({"body": body, "strip_nulls": strip_nulls});
        let key = cx
            .headers()
            .get("idempotency-key")
            .map(|v| {
                v.to_str()
                    .map(str::trim)
                    .map_err(|_| DomainError::Invalid("Idempotency-Key must be ASCII".into()))
            })
            .transpose()?;
        let job = self
            .deferred
            .enqueue(&tenant.name, operation, &payload, key)
            .await?;
        let id = job.id.to_string();
        let data = json!({
            "request_id": id,
            "status": job.status,
            "operation": operation,
            "table_name": table_name,
            "deferred": true,
            "existing": job.existing,
        });
        let mut out = Map::new();
        out.insert("status".into(), json!("queued"));
        out.insert(
            "message".into(),
            json!(format!(
                "{} deferred: poll GET /gateway/deferred/{id}",
                match operation {
                    "insert" => "Insert",
                    "update" => "Update",
                    _ => "Delete",
                }
            )),
        );
        out.insert("data".into(), data);
        out.insert("request_id".into(), json!(id));
        out.insert("deferred".into(), json!(true));
        let json = Json::new(out);
        Ok(Some(match http::HeaderValue::from_str(&id) {
            Ok(v) => json.with_header(
                http::HeaderName::from_static("x-athena-deferred-request-id"),
                v,
            ),
            Err(_) => json,
        }))
    }
}

/// Jobs are planned by the same code as the inline routes, from the stored
/// body (see `src/gateway/deferred.rs`).
impl deferred::Executor for Handlers {
    fn plan(&self, operation: &str, payload: &Value) -> Result<deferred::Plan, DomainError> {
        let body = payload.get("body").cloned().unwrap_or(Value::Null);
        let strip = payload.get("strip_nulls").and_then(Value::as_bool);
        let decode = |e: serde_json::Error| {
            DomainError::Internal(format!("stored {operation} request is unreadable: {e}"))
        };
        Ok(match operation {
            "insert" => {
                let body: models::PutGatewayInsertRequest =
                    serde_json::from_value(body).map_err(decode)?;
                let (q, single) = insert_plan(&body, strip)?;
                let (table, count) = (body.table_name.clone(), body.count.is_some());
                deferred::Plan {
                    write: write::Write::Insert(q),
                    answer: Box::new(move |r| {
                        Value::Object(insert_answer(r, single, &table, count))
                    }),
                }
            }
            "update" => {
                let body: models::PostGatewayUpdateRequest =
                    serde_json::from_value(body).map_err(decode)?;
                deferred::Plan {
                    write: write::Write::Update(update_plan(&body, strip)?),
                    answer: Box::new(|r| Value::Object(update_answer(r))),
                }
            }
            "delete" => {
                let body: models::DeleteGatewayDeleteRequest =
                    serde_json::from_value(body).map_err(decode)?;
                let q = delete_plan(&body, strip)?;
                let (table, id) = (body.table_name.clone(), body.resource_id.clone());
                deferred::Plan {
                    write: write::Write::Delete(q),
                    answer: Box::new(move |r| Value::Object(delete_answer(r, &table, id.as_ref()))),
                }
            }
            other => {
                return Err(DomainError::Internal(format!(
                    "unknown deferred operation `{other}`"
                )))
            }
        })
    }

    async fn written(&self, client: &str, schema: &str, table: &str) {
        self.cache.invalidate(client, Some((schema, table))).await;
    }
}

impl Handlers {
    /// The insert window for this request, if it is batched: the
    /// `X-Athena-Insert-Window` header (1–60000 ms; 0 turns it off) or the
    /// configured default. Never for upserts (two requests could hit the
    /// same key in one statement), direct-URI requests (they are nobody
    /// else's), or when `X-Athena-Deadpool-Enable` asks for the plain path.
    fn insert_window(
        &self,
        cx: &RequestCx,
        params: &params::PutGatewayInsert,
        body: &models::PutGatewayInsertRequest,
    ) -> Result<Option<std::time::Duration>, DomainError> {
        use crate::gateway::batch::MAX_WINDOW_MS;
        let ms = match params.x_athena_insert_window {
            Some(ms) if !(0..=MAX_WINDOW_MS).contains(&ms) => {
                return Err(DomainError::Invalid(format!(
                    "X-Athena-Insert-Window must be between 1 and {MAX_WINDOW_MS} milliseconds"
                )))
            }
            Some(ms) => ms as u64,
            None => self.config.insert_window.as_millis() as u64,
        };
        let direct = [
            &params.x_pg_uri,
            &params.x_athena_jdbc_url,
            &params.x_jdbc_url,
        ];
        let excluded = ms == 0
            || !body.update_body.is_empty()
            || body.on_conflict.is_some()
            || direct.iter().any(|h| h.is_some())
            || header_flag(cx, "x-athena-deadpool-enable");
        Ok((!excluded).then(|| std::time::Duration::from_millis(ms)))
    }

    /// A fetch answered as untyped JSON, for the routes that alias it.
    async fn fetch_as_value(
        &self,
        cx: RequestCx,
        params: params::PostGatewayFetch,
        body: models::PostGatewayFetchRequest,
    ) -> ApiResult<Json<Value>> {
        match self.post_gateway_fetch(cx, params, body).await? {
            responses::PostGatewayFetch::Ok(json) => json
                .into_value()
                .map_err(|e| DomainError::Internal(format!("fetch answer: {e}")).into()),
            other => {
                tracing::error!(?other, "fetch answered a documented error variant");
                Err(crate::http::ApiError::internal())
            }
        }
    }
}

impl GatewayApi for Handlers {
    async fn post_gateway_fetch(
        &self,
        cx: RequestCx,
        params: params::PostGatewayFetch,
        body: models::PostGatewayFetchRequest,
    ) -> ApiResult<responses::PostGatewayFetch> {
        let tenant = self
            .gateway_tenant(
                params.x_athena_client.as_deref(),
                [
                    &params.x_pg_uri,
                    &params.x_athena_jdbc_url,
                    &params.x_jdbc_url,
                ],
            )
            .await?;
        let query = fetch_query(&body, strip_nulls_header(&cx))?;
        let post = post_processing(&body);
        post.validate()?;
        let count = body.count.as_deref().is_some_and(|c| !c.is_empty());
        let head = body.head.unwrap_or(false);
        // Authorization already ran (dispatch), so the cache is only consulted
        // for a caller allowed to read, and keyed by who that caller is.
        let scope = cache::Scope {
            client: &tenant.name,
            actor: cx.actor(),
            schema: query.schema.as_str(),
            table: query.table.as_str(),
        };
        let normalized = json!({"body": to_value(&body)?, "strip_nulls": query.strip_nulls});
        // Entries are versioned by the base table only, so reads embedding
        // other tables are not cached (their writes would not invalidate).
        let bypass = no_cache(&cx) || !query.embeds.is_empty();
        let lookup = self.cache.lookup(&scope, &normalized, bypass).await;
        // Nothing to store in the cache and nothing to summarize: the rows
        // are served as Postgres wrote them (`Json::with_raw_field`).
        let mut raw_rows = None;
        let result: read::ReadResult = match &lookup.cached {
            Some(hit) => serde_json::from_value(hit.clone())
                .map_err(|e| DomainError::Internal(format!("cached read: {e}")))?,
            None if lookup.key.is_none() && post.is_empty() => {
                let (rows, count) =
                    read::run_with_count_raw(&tenant, &query, self.config.max_rows, count, head)
                        .await?;
                raw_rows = Some(rows);
                read::ReadResult {
                    rows: Vec::new(),
                    count,
                }
            }
            None => {
                let result =
                    read::run_with_count(&tenant, &query, self.config.max_rows, count, head)
                        .await?;
                if let Ok(v) = serde_json::to_value(&result) {
                    self.cache.store(&lookup, &v).await;
                }
                result
            }
        };
        let fetched = raw_rows.as_ref().map_or(result.rows.len(), |r| r.len());
        let message = format!("Fetched {fetched} rows");
        let post_processing = match post.is_empty() {
            true => Map::new(),
            false => match postprocess::summarize(&post, &result.rows)? {
                Value::Object(m) => m,
                _ => Map::new(),
            },
        };
        let mut out = Json::new(models::PostGatewayFetchResponse200 {
            cache_key: lookup.key.clone(),
            data: result.rows,
            message: Some(message),
            post_processing,
            status: Some(models::PostGatewayFetchResponse200Status::Success),
        });
        if let Some(n) = result.count {
            out = out.with_field("count", json!(n));
        }
        if let Some(rows) = raw_rows {
            out = out.with_raw_field("data", rows.into_string());
        }
        let out = cache_headers(out, lookup.outcome);
        Ok(responses::PostGatewayFetch::Ok(out))
    }

    async fn put_gateway_insert(
        &self,
        cx: RequestCx,
        params: params::PutGatewayInsert,
        body: models::PutGatewayInsertRequest,
    ) -> ApiResult<responses::PutGatewayInsert> {
        let direct = [
            &params.x_pg_uri,
            &params.x_athena_jdbc_url,
            &params.x_jdbc_url,
        ];
        let tenant = self
            .gateway_tenant(params.x_athena_client.as_deref(), direct)
            .await?;
        let strip = strip_nulls_header(&cx);
        let (q, single) = insert_plan(&body, strip)?;
        let write = write::Write::Insert(q);
        super::authorize_write(&cx, &write)?;
        if let Some(queued) = self
            .defer(&cx, &tenant, direct, "insert", &body, strip)
            .await?
        {
            return Ok(responses::PutGatewayInsert::Ok(retype(
                queued,
                models::PutGatewayInsertResponse200,
            )));
        }
        let window = self.insert_window(&cx, &params, &body)?;
        let result = self.apply_write(&tenant, write, window).await?;
        let out = insert_answer(result, single, &body.table_name, body.count.is_some());
        Ok(responses::PutGatewayInsert::Ok(Json::new(
            models::PutGatewayInsertResponse200(out),
        )))
    }

    async fn post_gateway_update(
        &self,
        cx: RequestCx,
        params: params::PostGatewayUpdate,
        body: models::PostGatewayUpdateRequest,
    ) -> ApiResult<responses::PostGatewayUpdate> {
        let direct = [
            &params.x_pg_uri,
            &params.x_athena_jdbc_url,
            &params.x_jdbc_url,
        ];
        let tenant = self
            .gateway_tenant(params.x_athena_client.as_deref(), direct)
            .await?;
        let strip = strip_nulls_header(&cx);
        let q = update_plan(&body, strip)?;
        if let Some(queued) = self
            .defer(&cx, &tenant, direct, "update", &body, strip)
            .await?
        {
            return Ok(responses::PostGatewayUpdate::Ok(retype(
                queued,
                models::PostGatewayUpdateResponse200,
            )));
        }
        let result = self
            .apply_write(&tenant, write::Write::Update(q), None)
            .await?;
        Ok(responses::PostGatewayUpdate::Ok(Json::new(
            models::PostGatewayUpdateResponse200(update_answer(result)),
        )))
    }

    async fn delete_gateway_delete(
        &self,
        cx: RequestCx,
        params: params::DeleteGatewayDelete,
        body: models::DeleteGatewayDeleteRequest,
    ) -> ApiResult<responses::DeleteGatewayDelete> {
        let direct = [
            &params.x_pg_uri,
            &params.x_athena_jdbc_url,
            &params.x_jdbc_url,
        ];
        let tenant = self
            .gateway_tenant(params.x_athena_client.as_deref(), direct)
            .await?;
        let strip = strip_nulls_header(&cx);
        let q = delete_plan(&body, strip)?;
        if let Some(queued) = self
            .defer(&cx, &tenant, direct, "delete", &body, strip)
            .await?
        {
            return Ok(responses::DeleteGatewayDelete::Ok(retype(
                queued,
                models::DeleteGatewayDeleteResponse200,
            )));
        }
        let result = self
            .apply_write(&tenant, write::Write::Delete(q), None)
            .await?;
        let out = delete_answer(result, &body.table_name, body.resource_id.as_ref());
        Ok(responses::DeleteGatewayDelete::Ok(Json::new(
            models::DeleteGatewayDeleteResponse200(out),
        )))
    }

    async fn get_gateway_deferred_by_request_id(
        &self,
        cx: RequestCx,
        params: params::GetGatewayDeferredByRequestId,
    ) -> ApiResult<responses::GetGatewayDeferredByRequestId> {
        let tenant = self.tenant(client_header(&cx)).await?;
        let record = self
            .deferred
            .status(&tenant.name, &params.request_id)
            .await?
            .ok_or_else(|| deferred_not_found(&params.request_id))?;
        Ok(responses::GetGatewayDeferredByRequestId::Ok(Json::new(
            models::GetGatewayDeferredByRequestIdResponse200(deferred_body(record, None)),
        )))
    }

    async fn post_gateway_deferred_by_request_id_requeue(
        &self,
        cx: RequestCx,
        params: params::PostGatewayDeferredByRequestIdRequeue,
    ) -> ApiResult<responses::PostGatewayDeferredByRequestIdRequeue> {
        let tenant = self.tenant(client_header(&cx)).await?;
        let (record, requeued) = self
            .deferred
            .requeue(&tenant.name, &params.request_id)
            .await?
            .ok_or_else(|| deferred_not_found(&params.request_id))?;
        Ok(responses::PostGatewayDeferredByRequestIdRequeue::Ok(
            Json::new(models::PostGatewayDeferredByRequestIdRequeueResponse200(
                deferred_body(record, Some(requeued)),
            )),
        ))
    }

    async fn post_gateway_deferred_flush(
        &self,
        _cx: RequestCx,
    ) -> ApiResult<responses::PostGatewayDeferredFlush> {
        // Stay inside the request timeout (504 after it).
        let budget = self
            .config
            .request_timeout
            .saturating_sub(std::time::Duration::from_secs(2))
            .clamp(
                std::time::Duration::from_millis(500),
                std::time::Duration::from_secs(25),
            );
        let summary = self.deferred.flush(self, budget).await?;
        let mut out = Map::new();
        out.insert("status".into(), json!("success"));
        out.insert(
            "message".into(),
            json!(format!(
                "Flushed {} deferred writes ({} succeeded, {} failed)",
                summary["processed"], summary["succeeded"], summary["failed"]
            )),
        );
        if let Value::Object(fields) = &summary {
            for (k, v) in fields {
                out.insert(k.clone(), v.clone());
            }
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
        let direct = [
            &params.x_pg_uri,
            &params.x_athena_jdbc_url,
            &params.x_jdbc_url,
        ];
        // A caller with only the read right may run the SDK's own lookup
        // SELECTs, as structured reads; anything else needs raw SQL.
        if let Err(refused) = cx.require_right(crate::auth::rights::RAW_SQL) {
            // Parsed with a real SQL parser into a structured read; text
            // outside that grammar still needs the raw-SQL right.
            use crate::gateway::sql_text::{parse_in, Shape};
            let query = parse_in(&body.query, Shape::Rows, body.schema_name.as_deref())
                .map_err(|_| refused)?;
            let tenant = self
                .gateway_tenant(params.x_athena_client.as_deref(), direct)
                .await?;
            let rows = read::run(&tenant, &query, self.config.max_rows).await?;
            let out = json!({
                "status": "success",
                "message": "Query executed",
                "data": rows,
                "meta": {
                    "backend": "postgresql",
                    "returned_row_count": rows.len(),
                    "rows_affected": 0,
                    "statement_count": 1,
                    "structured_read": true,
                },
            });
            return Ok(responses::PostGatewayQuery::Ok(Json::new(
                models::PostGatewayQueryResponse200(out.as_object().cloned().unwrap_or_default()),
            )));
        }
        if let Some(tenant) = self.direct_tenant(direct).await {
            let tenant = tenant?;
            let result = super::query::run_raw_on(
                &tenant,
                &body.query,
                body.schema_name.as_deref(),
                self.config.max_rows,
                &body.params,
            )
            .await?;
            return Ok(responses::PostGatewayQuery::Ok(Json::new(
                models::PostGatewayQueryResponse200(result),
            )));
        }
        let client = params
            .x_athena_client
            .as_deref()
            .ok_or(DomainError::MissingClient)?;
        let result = self
            .run_raw(
                client,
                &body.query,
                body.schema_name.as_deref(),
                &body.params,
            )
            .await?;
        Ok(responses::PostGatewayQuery::Ok(Json::new(
            models::PostGatewayQueryResponse200(result),
        )))
    }

    async fn post_gateway_sql(
        &self,
        cx: RequestCx,
        params: params::PostGatewaySql,
        body: models::GatewaySqlExecutionRequest,
    ) -> ApiResult<responses::PostGatewaySql> {
        let direct = [
            &params.x_pg_uri,
            &params.x_athena_jdbc_url,
            &params.x_jdbc_url,
        ];
        if crate::db::direct::pick(direct.map(|h| h.as_deref())).is_some() {
            super::query::require_postgres_driver(&body)?;
        }
        if let Some(tenant) = self.direct_tenant(direct).await {
            let tenant = tenant?;
            let result = super::query::run_raw_on(
                &tenant,
                &body.query,
                body.schema_name.as_deref(),
                self.config.max_rows,
                &[],
            )
            .await?;
            return Ok(responses::PostGatewaySql::Ok(Json::new(
                models::PostGatewaySqlResponse200(result),
            )));
        }
        let client = cx.target_client(Some(&body.db_name)).await?;
        let result = self.run_sql_request(client, &body).await?;
        Ok(responses::PostGatewaySql::Ok(Json::new(
            models::PostGatewaySqlResponse200(result),
        )))
    }

    async fn post_gateway_data(
        &self,
        cx: RequestCx,
        params: params::PostGatewayData,
        body: models::PostGatewayDataRequest,
    ) -> ApiResult<responses::PostGatewayData> {
        // The legacy alias of fetch: same body, same answer.
        let body = crate::http::extract::typed_json(to_value(&body)?, &[])?;
        let params = params::PostGatewayFetch {
            x_user_id: params.x_user_id,
            x_athena_client: params.x_athena_client,
            x_pg_uri: params.x_pg_uri,
            x_athena_jdbc_url: params.x_athena_jdbc_url,
            x_jdbc_url: params.x_jdbc_url,
            x_strip_nulls: params.x_strip_nulls,
            x_supabase_url: params.x_supabase_url,
            x_supabase_key: params.x_supabase_key,
        };
        let fetched = self.fetch_as_value(cx, params, body).await?;
        Ok(responses::PostGatewayData::Ok(fetched))
    }

    async fn get_data(
        &self,
        cx: RequestCx,
        params: params::GetData,
    ) -> ApiResult<responses::GetData> {
        let mut body = json!({
            "table_name": params.view,
            "conditions": [{"eq_column": params.eq_column, "eq_value": params.eq_value}],
        });
        let fields = body.as_object_mut().expect("object literal");
        if let Some(c) = &params.columns {
            fields.insert("columns".into(), json!(c));
        }
        for (name, v) in [
            ("limit", params.limit),
            ("offset", params.offset),
            ("current_page", params.current_page),
            ("page_size", params.page_size),
        ] {
            if let Some(v) = v {
                fields.insert(name.into(), json!(v));
            }
        }
        if let Some(strip) = params.strip_nulls {
            fields.insert("strip_nulls".into(), json!(strip));
        }
        // Post-processing, exactly as on `POST /gateway/data`.
        for (name, v) in [
            ("group_by", &params.group_by),
            ("time_granularity", &params.time_granularity),
            ("aggregation_column", &params.aggregation_column),
            ("aggregation_strategy", &params.aggregation_strategy),
        ] {
            if let Some(v) = v {
                fields.insert(name.into(), json!(v));
            }
        }
        if let Some(dedup) = params.aggregation_dedup {
            fields.insert("aggregation_dedup".into(), json!(dedup));
        }
        if let Some(col) = &params.sort_by {
            let direction = params.sort_direction.as_deref().unwrap_or("asc");
            fields.insert(
                "sort_by".into(),
                json!({"field": col, "direction": direction}),
            );
        }
        let body = crate::http::extract::typed_json(body, &[])?;
        let params = params::PostGatewayFetch {
            x_user_id: params.x_user_id,
            x_athena_client: params.x_athena_client,
            x_pg_uri: None,
            x_athena_jdbc_url: None,
            x_jdbc_url: None,
            x_strip_nulls: params.x_strip_nulls,
            x_supabase_url: params.x_supabase_url,
            x_supabase_key: params.x_supabase_key,
        };
        let fetched = self.fetch_as_value(cx, params, body).await?;
        Ok(responses::GetData::Ok(fetched))
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
        d1_migrate(self, params, body).await
    }

    async fn post_gateway_rpc(
        &self,
        _cx: RequestCx,
        params: params::PostGatewayRpc,
        body: models::GatewayRpcRequest,
    ) -> ApiResult<responses::PostGatewayRpc> {
        let call = super::rpc::rpc_call(&body)?;
        let (rows, count) = self.call_rpc(&params.x_athena_client, &call).await?;
        Ok(responses::PostGatewayRpc::Ok(
            Json::new(models::PostGatewayRpcResponse200 {
                count,
                data: Vec::new(),
            })
            .with_raw_field("data", rows.into_string()),
        ))
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, DomainError> {
    serde_json::to_value(v).map_err(|e| DomainError::Internal(format!("re-encoding body: {e}")))
}

/// `columns` as a RETURNING/SELECT list: `"a,b"`, `["a","b"]`, `"*"`.
fn columns_of(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(split_columns(s)),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        ),
        _ => None,
    }
}

fn insert_columns(c: &Option<models::PutGatewayInsertRequestColumns>) -> Option<Vec<String>> {
    match c.as_ref()? {
        models::PutGatewayInsertRequestColumns::String(s) => Some(split_columns(s)),
        models::PutGatewayInsertRequestColumns::Array(cols) => Some(cols.clone()),
    }
}

/// `conditions` plus `resource_id` (→ `id = $n`).
fn mutation_filters(
    conditions: &Value,
    resource_id: Option<&Value>,
) -> Result<Vec<Cond>, DomainError> {
    let mut filters = cond::conditions(conditions)?;
    if let Some(id) = resource_id.filter(|v| !v.is_null()) {
        if id.is_object() || id.is_array() {
            return Err(DomainError::Invalid(
                "resource_id must be a string or a number".into(),
            ));
        }
        filters.push(
            Filter::new(
                "id",
                Operator::Eq,
                FilterValue::from_json(Operator::Eq, id)?,
            )
            .into(),
        );
    }
    Ok(filters)
}

/// The insert query of a body (`X-Strip-Nulls` given) and whether
/// `insert_body` was one object (answered as an object).
pub(super) fn insert_plan(
    body: &models::PutGatewayInsertRequest,
    strip_header: Option<bool>,
) -> Result<(write::InsertQuery, bool), DomainError> {
    let (schema, table) = qualified_table(&body.table_name, body.schema_name.as_deref())?;
    let (rows, single) = match &body.insert_body {
        models::PutGatewayInsertRequestInsertBody::Object(row) => (vec![row.clone()], true),
        models::PutGatewayInsertRequestInsertBody::Array(rows) => (rows.clone(), false),
    };
    let on_conflict = match (&body.on_conflict, body.update_body.is_empty()) {
        (None, true) => None,
        (target, no_update) => Some(Conflict {
            columns: match target {
                None => Vec::new(),
                Some(models::PutGatewayInsertRequestOnConflict::String(s)) => split_columns(s),
                Some(models::PutGatewayInsertRequestOnConflict::Array(cols)) => cols.clone(),
            },
            action: if no_update {
                ConflictAction::Merge
            } else {
                ConflictAction::Set(body.update_body.clone())
            },
        }),
    };
    if rows.is_empty() {
        return Err(DomainError::Invalid("insert_body has no rows".into()));
    }
    let q = write::InsertQuery {
        schema,
        table,
        rows,
        returning: insert_columns(&body.columns),
        on_conflict,
        default_to_null: body.default_to_null.unwrap_or(false),
        strip_nulls: strip_header.unwrap_or(false),
    };
    Ok((q, single))
}

pub(super) fn insert_answer(
    result: WriteResult,
    single: bool,
    table_name: &str,
    count: bool,
) -> Map<String, Value> {
    let affected = result.affected;
    let data = if single {
        result
            .rows
            .into_iter()
            .next()
            .map(Value::Object)
            .unwrap_or(Value::Null)
    } else {
        Value::Array(result.rows.into_iter().map(Value::Object).collect())
    };
    let mut out = Map::new();
    out.insert("status".into(), json!("success"));
    out.insert("message".into(), json!(format!("Inserted {affected} rows")));
    out.insert("data".into(), data);
    affected_fields(&mut out, affected);
    out.insert("table_name".into(), json!(table_name));
    if count {
        out.insert("count".into(), json!(affected));
    }
    out
}

pub(super) fn update_plan(
    body: &models::PostGatewayUpdateRequest,
    strip_header: Option<bool>,
) -> Result<write::UpdateQuery, DomainError> {
    let table_name = body
        .table_name
        .as_deref()
        .or(body.view_name.as_deref())
        .ok_or_else(|| DomainError::Invalid("table_name is required".into()))?;
    let (schema, table) = qualified_table(table_name, body.schema_name.as_deref())?;
    let filters = mutation_filters(&to_value(&body.conditions)?, body.resource_id.as_ref())?;
    // `update_body`, else the `set`/`data` spellings (SDK doc §7).
    let set = [&body.update_body, &body.set, &body.data]
        .into_iter()
        .find(|m| !m.is_empty())
        .cloned()
        .unwrap_or_default();
    // Checked here too (not only when the statement is built against the
    // table) so that a deferred update is refused before it is queued.
    if filters.is_empty() {
        return Err(DomainError::Invalid(
            "an update needs a filter (conditions or resource_id); refusing to update every row"
                .into(),
        ));
    }
    if set.is_empty() {
        return Err(DomainError::Invalid(
            "update payload required: update_body has no columns".into(),
        ));
    }
    Ok(write::UpdateQuery {
        schema,
        table,
        set,
        filters,
        returning: columns_of(&to_value(&body.columns)?),
        strip_nulls: body.strip_nulls.or(strip_header).unwrap_or(false),
    })
}

pub(super) fn update_answer(result: WriteResult) -> Map<String, Value> {
    let (mut out, affected) = rows_body(result, "Updated");
    affected_fields(&mut out, affected);
    out
}

pub(super) fn delete_plan(
    body: &models::DeleteGatewayDeleteRequest,
    strip_header: Option<bool>,
) -> Result<write::DeleteQuery, DomainError> {
    let (schema, table) = qualified_table(&body.table_name, body.schema_name.as_deref())?;
    let filters = mutation_filters(&to_value(&body.conditions)?, body.resource_id.as_ref())?;
    if filters.is_empty() {
        return Err(DomainError::Invalid(
            "a delete needs a filter (conditions or resource_id); refusing to delete every row"
                .into(),
        ));
    }
    Ok(write::DeleteQuery {
        schema,
        table,
        filters,
        returning: columns_of(&to_value(&body.columns)?),
        strip_nulls: strip_header.unwrap_or(false),
    })
}

pub(super) fn delete_answer(
    result: WriteResult,
    table_name: &str,
    resource_id: Option<&Value>,
) -> Map<String, Value> {
    let (mut out, affected) = rows_body(result, "Deleted");
    affected_fields(&mut out, affected);
    out.insert("table_name".into(), json!(table_name));
    if let Some(id) = resource_id.filter(|v| !v.is_null()) {
        out.insert("resource_id".into(), id.clone());
    }
    out
}

/// The affected-row count under both spellings the SDK looks for (§0.8).
fn affected_fields(out: &mut Map<String, Value>, affected: i64) {
    out.insert("rows_affected".into(), json!(affected));
    out.insert("affected_rows".into(), json!(affected));
}

/// `X-Athena-Client` of a route that does not declare it.
fn client_header(cx: &RequestCx) -> Option<&str> {
    cx.headers()
        .get("x-athena-client")
        .and_then(|v| v.to_str().ok())
}

fn header_flag(cx: &RequestCx, name: &str) -> bool {
    super::header_bool(cx.headers(), name).unwrap_or(false)
}

/// The deferred answer as the route's documented body type.
fn retype<T>(j: Json<Map<String, Value>>, f: impl FnOnce(Map<String, Value>) -> T) -> Json<T> {
    Json {
        body: f(j.body),
        extra: j.extra,
        headers: j.headers,
    }
}

fn deferred_not_found(id: &str) -> ApiError {
    let shown: String = id.chars().take(64).collect();
    ApiError::not_found(
        Code::NotFound,
        format!("deferred request `{shown}` was not found"),
    )
}

/// A deferred request's record as `GET` and requeue answer it: the record's
/// fields at the top level (`status` is the job's state) and again as `data`.
fn deferred_body(record: Value, requeued: Option<bool>) -> Map<String, Value> {
    let mut out = match record {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    if let Some(requeued) = requeued {
        out.insert("requeued".into(), json!(requeued));
        let state = out
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        out.insert(
            "message".into(),
            json!(if requeued {
                "Deferred request requeued".to_string()
            } else {
                format!("Deferred request is {state}; not requeued")
            }),
        );
    }
    let data = Value::Object(out.clone());
    out.insert("data".into(), data);
    out
}

/// `{status, message, data: rows}` and the affected-row count.
fn rows_body(result: WriteResult, verb: &str) -> (Map<String, Value>, i64) {
    let mut out = Map::new();
    out.insert("status".into(), json!("success"));
    out.insert(
        "message".into(),
        json!(format!("{verb} {} rows", result.affected)),
    );
    out.insert(
        "data".into(),
        Value::Array(result.rows.into_iter().map(Value::Object).collect()),
    );
    (out, result.affected)
}

/// The fetch body: `table_name` (optionally qualified or with
/// `schema_name`), `columns`/`select`, `conditions` (legacy `eq_column`/
/// `eq_value` and the SDK's operators), `where`, `where_filters`,
/// `sort_by`/`orderBy`, `limit`/`offset`/`current_page`/`page_size`.
pub(super) fn fetch_query(
    body: &models::PostGatewayFetchRequest,
    strip_header: Option<bool>,
) -> Result<ReadQuery, DomainError> {
    let table = body
        .table_name
        .as_deref()
        .or(body.view_name.as_deref())
        .ok_or_else(|| DomainError::Invalid("table_name is required".into()))?;
    let (schema, table) = qualified_table(table, body.schema_name.as_deref())?;
    // `columns` wins over `select`; both strings take the PostgREST embed
    // grammar (`id,u:users(id,name)`), the object is the canonical nested
    // select (`{"id": true, "users": {"select": {…}}}`).
    let select = match (&body.columns, &body.select) {
        (Some(models::PostGatewayFetchRequestColumns::Array(cols)), _) => {
            Some(crate::gateway::embed::Select {
                columns: cols.clone(),
                embeds: Vec::new(),
            })
        }
        (Some(models::PostGatewayFetchRequestColumns::String(s)), _)
        | (None, Some(models::PostGatewayFetchRequestSelect::String(s))) => {
            Some(crate::gateway::embed::parse(s)?)
        }
        (None, Some(models::PostGatewayFetchRequestSelect::Object(m))) => {
            Some(crate::gateway::embed::from_object(m)?)
        }
        (None, None) => None,
    };
    let (columns, embeds) = match select {
        Some(s) => (Some(s.columns), s.embeds),
        None => (None, Vec::new()),
    };
    let mut filters = cond::conditions(&to_value(&body.conditions)?)?;
    filters.extend(cond::where_object(&body.where_)?);
    filters.extend(cond::where_filters(&to_value(&body.where_filters)?)?);
    let mut order = Vec::new();
    if let Some(s) = &body.sort_by {
        order.extend(cond::order(s)?);
    }
    if let Some(o) = &body.order_by {
        order.extend(cond::order(o)?);
    }
    for (name, v) in [
        ("limit", body.limit),
        ("offset", body.offset),
        ("page_size", body.page_size),
    ] {
        if v.is_some_and(|v| v < 0) {
            return Err(DomainError::Invalid(format!("{name} must not be negative")));
        }
    }
    let (mut limit, mut offset) = (body.limit, body.offset);
    if let Some(size) = body.page_size.filter(|s| *s > 0) {
        limit = limit.or(Some(size));
        if offset.is_none() {
            let page = body.current_page.unwrap_or(1).max(1);
            offset = Some((page - 1).saturating_mul(size));
        }
    }
    Ok(ReadQuery {
        schema,
        table,
        columns,
        embeds,
        filters,
        order,
        limit,
        offset,
        strip_nulls: body.strip_nulls.or(strip_header).unwrap_or(false),
    })
}

/// The fetch's post-processing request (`src/gateway/postprocess.rs`).
fn post_processing(body: &models::PostGatewayFetchRequest) -> postprocess::Spec {
    use models::PostGatewayFetchRequestTimeGranularity as G;
    postprocess::Spec {
        group_by: body.group_by.clone(),
        time_granularity: body.time_granularity.map(|g| match g {
            G::Day => postprocess::Granularity::Day,
            G::Hour => postprocess::Granularity::Hour,
            G::Minute => postprocess::Granularity::Minute,
        }),
        aggregation_column: body.aggregation_column.clone(),
        cumulative_sum: body.aggregation_strategy.is_some(),
        dedup: body.aggregation_dedup.unwrap_or(false),
    }
}

/// `Cache-Control: no-cache` skips the read cache.
fn no_cache(cx: &RequestCx) -> bool {
    cx.headers()
        .get_all(http::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|d| matches!(d.trim(), "no-cache" | "no-store"))
        })
}

fn cache_headers<T>(out: Json<T>, outcome: cache::Outcome) -> Json<T> {
    use http::HeaderValue;
    out.with_header(
        http::HeaderName::from_static("x-athena-cached"),
        HeaderValue::from_static(if outcome == cache::Outcome::Hit {
            "true"
        } else {
            "false"
        }),
    )
    .with_header(
        http::HeaderName::from_static("x-athena-cache-outcome"),
        HeaderValue::from_static(outcome.as_str()),
    )
    .with_header(
        http::HeaderName::from_static("x-athena-cache-source"),
        HeaderValue::from_static(if outcome == cache::Outcome::Hit {
            "redis"
        } else {
            "postgres"
        }),
    )
}

/// `POST /gateway/sql/d1/migrate`: 400 empty script or execution without
/// `X-Athena-Client`, 422 unsupported constructs in strict mode, 503 D1 not
/// configured or a batch failed (earlier batches stay applied).
async fn d1_migrate(
    h: &Handlers,
    params: params::PostGatewaySqlD1Migrate,
    body: models::D1MigrationRequest,
) -> ApiResult<responses::PostGatewaySqlD1Migrate> {
    use crate::gateway::d1::{with_envelope, Plan};
    use responses::PostGatewaySqlD1Migrate as R;
    let plan = Plan::from_request(&body);
    let bad = |e: ApiError| R::BadRequest(with_envelope(plan.preview("error"), &e.envelope()));
    if plan.is_empty() {
        return Ok(bad(ApiError::missing_parameter("body field", "schemaSql")));
    }
    if plan.errors() > 0 {
        let e = plan.untranslatable();
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
    let unavailable = |detail: String| {
        R::ServiceUnavailable(Json::new(
            ApiError::new(Code::ServiceUnavailable, "D1 execution failed", detail).envelope(),
        ))
    };
    let Some(d1) = h.d1.as_ref() else {
        return Ok(unavailable(
            "Cloudflare D1 is not configured: set ATHENA_D1_ACCOUNT_ID and ATHENA_D1_API_TOKEN (and ATHENA_D1_API_URL / ATHENA_D1_DATABASES as needed)".into(),
        ));
    };
    // Only a database mapped to the calling client, before anything is sent.
    let database = match d1.database_id(client, &body.db_name) {
        Ok(id) => id.to_string(),
        Err(e) if e.code == Code::InvalidParameter => return Ok(bad(e)),
        Err(e) => return Err(e),
    };
    let batch_size = body.batch_size.map(|n| n.get());
    let mut outcomes = Vec::new();
    let mut done = 0usize;
    for (i, batch) in plan.batches(batch_size).iter().enumerate() {
        let sql: String = batch.iter().map(|s| format!("{s};\n")).collect();
        match d1.query(&database, &sql).await {
            Ok(results) => {
                let mut results = results;
                // One result per statement; anything else leaves them unknown.
                if results.len() != batch.len() {
                    results = vec![Default::default(); batch.len()];
                }
                outcomes.extend(results);
                done += batch.len();
            }
            Err(e) => {
                return Ok(unavailable(format!(
                    "batch {i} failed: {}; {done} earlier converted statement(s) were applied",
                    e.0
                )));
            }
        }
    }
    Ok(R::Ok(Json::new(
        models::PostGatewaySqlD1MigrateResponse200 {
            subtype_1: Some(plan.executed(batch_size, &outcomes)),
            ..Default::default()
        },
    )))
}
