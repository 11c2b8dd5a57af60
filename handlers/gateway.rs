use super::{strip_nulls_header, Handlers};
use crate::api::{models, params, responses, traits::GatewayApi};
use crate::db::tenants::Tenant;
use crate::domain::identifier::qualified_table;
use crate::domain::DomainError;
use crate::gateway::filter::{Cond, Filter, FilterValue, Operator};
use crate::gateway::read::{self, ReadQuery};
use crate::gateway::sql::split_columns;
use crate::gateway::write::{self, Conflict, ConflictAction, WriteResult};
use crate::gateway::{cache, cond};
use crate::http::payload::Json;
use crate::http::{ApiResult, RequestCx};
use serde_json::{json, Map, Value};
use std::sync::Arc;

impl Handlers {
    /// The tenant of a gateway call: the database named by a direct
    /// PostgreSQL URI header when one is set (`x-pg-uri` preferred, then
    /// `x-athena-jdbc-url`, `x-jdbc-url`; `X-Athena-Client` is then ignored),
    /// else the registered client. Direct-URI requests always run inline.
    async fn gateway_tenant(
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
    async fn direct_tenant(&self, direct: [&Option<String>; 3]) -> Option<ApiResult<Arc<Tenant>>> {
        self.direct.route(direct.map(|h| h.as_deref())).await
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
        let count = body.count.as_deref().is_some_and(|c| !c.is_empty());
        let head = body.head.unwrap_or(false);
        // Authorization already ran (dispatch), so the cache is only consulted
        // for a caller allowed to read, and keyed by who that caller is.
        let scope = cache::Scope {
            client: &tenant.name,
            principal: cx.principal(),
            schema: query.schema.as_str(),
            table: query.table.as_str(),
        };
        let normalized = json!({"body": to_value(&body)?, "strip_nulls": query.strip_nulls});
        let lookup = self.cache.lookup(&scope, &normalized, no_cache(&cx)).await;
        let result = match &lookup.cached {
            Some(hit) => serde_json::from_value(hit.clone())
                .map_err(|e| DomainError::Internal(format!("cached read: {e}")))?,
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
        let message = format!("Fetched {} rows", result.rows.len());
        let mut out = Json::new(models::PostGatewayFetchResponse200 {
            cache_key: lookup.key.clone(),
            data: result.rows,
            message: Some(message),
            post_processing: Default::default(),
            status: Some(models::PostGatewayFetchResponse200Status::Success),
        });
        if let Some(n) = result.count {
            out = out.with_field("count", json!(n));
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
        let (schema, table) = qualified_table(&body.table_name, body.schema_name.as_deref())?;
        let (rows, single) = match body.insert_body {
            models::PutGatewayInsertRequestInsertBody::Object(row) => (vec![row], true),
            models::PutGatewayInsertRequestInsertBody::Array(rows) => (rows, false),
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
        let q = write::InsertQuery {
            schema,
            table,
            rows,
            returning: insert_columns(&body.columns),
            on_conflict,
            default_to_null: body.default_to_null.unwrap_or(false),
            strip_nulls: strip_nulls_header(&cx).unwrap_or(false),
        };
        let result = write::insert(&tenant, &q).await?;
        self.cache
            .invalidate(&tenant.name, Some((q.schema.as_str(), q.table.as_str())))
            .await;
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
        let mut body_out = Map::new();
        body_out.insert("status".into(), json!("success"));
        body_out.insert("message".into(), json!(format!("Inserted {affected} rows")));
        body_out.insert("data".into(), data);
        let mut out = mutation_fields(
            Json::new(models::PutGatewayInsertResponse200(body_out)),
            affected,
        )
        .with_field("table_name", json!(body.table_name));
        if body.count.is_some() {
            out = out.with_field("count", json!(affected));
        }
        Ok(responses::PutGatewayInsert::Ok(out))
    }

    async fn post_gateway_update(
        &self,
        cx: RequestCx,
        params: params::PostGatewayUpdate,
        body: models::PostGatewayUpdateRequest,
    ) -> ApiResult<responses::PostGatewayUpdate> {
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
        let q = write::UpdateQuery {
            schema,
            table,
            set,
            filters,
            returning: columns_of(&to_value(&body.columns)?),
            strip_nulls: body
                .strip_nulls
                .or(strip_nulls_header(&cx))
                .unwrap_or(false),
        };
        let result = write::update(&tenant, &q).await?;
        self.cache
            .invalidate(&tenant.name, Some((q.schema.as_str(), q.table.as_str())))
            .await;
        let out = rows_body(result, "Updated");
        Ok(responses::PostGatewayUpdate::Ok(mutation_fields(
            Json::new(models::PostGatewayUpdateResponse200(out.0)),
            out.1,
        )))
    }

    async fn delete_gateway_delete(
        &self,
        cx: RequestCx,
        params: params::DeleteGatewayDelete,
        body: models::DeleteGatewayDeleteRequest,
    ) -> ApiResult<responses::DeleteGatewayDelete> {
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
        let (schema, table) = qualified_table(&body.table_name, body.schema_name.as_deref())?;
        let filters = mutation_filters(&to_value(&body.conditions)?, body.resource_id.as_ref())?;
        let q = write::DeleteQuery {
            schema,
            table,
            filters,
            returning: columns_of(&to_value(&body.columns)?),
            strip_nulls: strip_nulls_header(&cx).unwrap_or(false),
        };
        let result = write::delete(&tenant, &q).await?;
        self.cache
            .invalidate(&tenant.name, Some((q.schema.as_str(), q.table.as_str())))
            .await;
        let out = rows_body(result, "Deleted");
        let mut json_out = mutation_fields(
            Json::new(models::DeleteGatewayDeleteResponse200(out.0)),
            out.1,
        )
        .with_field("table_name", json!(body.table_name));
        if let Some(id) = body.resource_id.as_ref().filter(|v| !v.is_null()) {
            json_out = json_out.with_field("resource_id", id.clone());
        }
        Ok(responses::DeleteGatewayDelete::Ok(json_out))
    }

    async fn post_gateway_query(
        &self,
        _cx: RequestCx,
        params: params::PostGatewayQuery,
        body: models::PostGatewayQueryRequest,
    ) -> ApiResult<responses::PostGatewayQuery> {
        let direct = [
            &params.x_pg_uri,
            &params.x_athena_jdbc_url,
            &params.x_jdbc_url,
        ];
        if let Some(tenant) = self.direct_tenant(direct).await {
            let tenant = tenant?;
            let result =
                super::query::run_raw_on(&tenant, &body.query, body.schema_name.as_deref(), None)
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
            .run_raw(client, &body.query, body.schema_name.as_deref())
            .await?;
        Ok(responses::PostGatewayQuery::Ok(Json::new(
            models::PostGatewayQueryResponse200(result),
        )))
    }

    async fn post_gateway_sql(
        &self,
        _cx: RequestCx,
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
            let result =
                super::query::run_raw_on(&tenant, &body.query, body.schema_name.as_deref(), None)
                    .await?;
            return Ok(responses::PostGatewaySql::Ok(Json::new(
                models::PostGatewaySqlResponse200(result),
            )));
        }
        let client = params.x_athena_client.as_deref().unwrap_or(&body.db_name);
        let result = self.run_sql_request(client, &body).await?;
        Ok(responses::PostGatewaySql::Ok(Json::new(
            models::PostGatewaySqlResponse200(result),
        )))
    }

    async fn post_gateway_rpc(
        &self,
        _cx: RequestCx,
        params: params::PostGatewayRpc,
        body: models::GatewayRpcRequest,
    ) -> ApiResult<responses::PostGatewayRpc> {
        let call = super::rpc::rpc_call(&body)?;
        let (data, count) = self.call_rpc(&params.x_athena_client, &call).await?;
        Ok(responses::PostGatewayRpc::Ok(Json::new(
            models::PostGatewayRpcResponse200 { count, data },
        )))
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

/// The affected-row count under both spellings the SDK looks for (§0.8).
fn mutation_fields<T>(out: Json<T>, affected: i64) -> Json<T> {
    out.with_field("rows_affected", json!(affected))
        .with_field("affected_rows", json!(affected))
}

/// The fetch body: `table_name` (optionally qualified or with
/// `schema_name`), `columns`/`select`, `conditions` (legacy `eq_column`/
/// `eq_value` and the SDK's operators), `where`, `where_filters`,
/// `sort_by`/`orderBy`, `limit`/`offset`/`current_page`/`page_size`.
fn fetch_query(
    body: &models::PostGatewayFetchRequest,
    strip_header: Option<bool>,
) -> Result<ReadQuery, DomainError> {
    let table = body
        .table_name
        .as_deref()
        .or(body.view_name.as_deref())
        .ok_or_else(|| DomainError::Invalid("table_name is required".into()))?;
    let (schema, table) = qualified_table(table, body.schema_name.as_deref())?;
    let columns = match (&body.columns, &body.select) {
        (Some(models::PostGatewayFetchRequestColumns::Array(cols)), _) => Some(cols.clone()),
        (Some(models::PostGatewayFetchRequestColumns::String(s)), _) => Some(split_columns(s)),
        (None, Some(models::PostGatewayFetchRequestSelect::String(s))) => Some(split_columns(s)),
        (None, Some(models::PostGatewayFetchRequestSelect::Object(m))) => {
            let mut cols = Vec::new();
            for (k, v) in m {
                match v {
                    Value::Bool(true) => cols.push(k.clone()),
                    Value::Bool(false) => {}
                    _ => {
                        return Err(DomainError::Invalid(format!(
                            "select: nested relation `{k}` is not supported"
                        )))
                    }
                }
            }
            Some(cols)
        }
        (None, None) => None,
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
        filters,
        order,
        limit,
        offset,
        strip_nulls: body.strip_nulls.or(strip_header).unwrap_or(false),
    })
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
