use super::Handlers;
use crate::api::{models, params, responses, traits::QueryApi};
use crate::db::tenants::Tenant;
use crate::domain::identifier::{qualified_table, Ident};
use crate::domain::DomainError;
use crate::gateway::raw::{self, Options};
use crate::gateway::read::{self, ReadQuery};
use crate::gateway::sql_text::{self, Shape};
use crate::http::payload::Json;
use crate::http::{ApiError, ApiResult, RequestCx};
use serde_json::{json, Map, Value};

impl QueryApi for Handlers {
    async fn post_query_sql(
        &self,
        cx: RequestCx,
        params: params::PostQuerySql,
        body: models::GatewaySqlExecutionRequest,
    ) -> ApiResult<responses::PostQuerySql> {
        // Same resolution as the gateway routes: a direct PostgreSQL URI
        // header wins over `X-Athena-Client` (PostgreSQL driver only).
        let direct = [
            &params.x_pg_uri,
            &params.x_athena_jdbc_url,
            &params.x_jdbc_url,
        ];
        if crate::db::direct::pick(direct.map(|h| h.as_deref())).is_some() {
            require_postgres_driver(&body)?;
        }
        if let Some(tenant) = self.direct_tenant(direct).await {
            let tenant = tenant?;
            let result = run_raw_on(
                &tenant,
                &body.query,
                body.schema_name.as_deref(),
                self.config.max_rows,
                &[],
            )
            .await?;
            return Ok(responses::PostQuerySql::Ok(Json::new(
                models::PostQuerySqlResponse200(result),
            )));
        }
        let client = cx.target_client(Some(&body.db_name)).await?;
        let result = self.run_sql_request(client, &body).await?;
        Ok(responses::PostQuerySql::Ok(Json::new(
            models::PostQuerySqlResponse200(result),
        )))
    }

    async fn post_query_count(
        &self,
        cx: RequestCx,
        _params: params::PostQueryCount,
        body: models::PostQueryCountRequest,
    ) -> ApiResult<responses::PostQueryCount> {
        let client = cx.target_client(Some(&body.db_name)).await?;
        let tenant = self.tenant(Some(client)).await?;
        let started = std::time::Instant::now();
        // The query text is parsed into a structured read (never sent to
        // Postgres); a table name is the same read without filters.
        let query = match (&body.query, &body.table_name) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "give either query or table_name, not both",
                ))
            }
            (None, None) => return Err(ApiError::bad_request("query or table_name is required")),
            (Some(_), None) if body.table_schema.is_some() => {
                return Err(ApiError::bad_request(
                    "table_schema goes with table_name; qualify the table in the query instead",
                ))
            }
            (Some(q), None) => sql_text::parse(q, Shape::Count)?,
            (None, Some(t)) => {
                let (schema, table) = qualified_table(t, body.table_schema.as_deref())?;
                ReadQuery::table(schema, table)
            }
        };
        let count = read::run_with_count(&tenant, &query, self.config.max_rows, true, true)
            .await?
            .count
            .unwrap_or_default();
        Ok(responses::PostQueryCount::Ok(Json::new(
            models::PostQueryCountResponse200 {
                data: Some(models::PostQueryCountResponse200Data {
                    cache_key: None,
                    cache_lookup_outcome: Some("bypass".into()),
                    count: Some(count),
                    db_name: Some(body.db_name.clone()),
                    duration_ms: Some(started.elapsed().as_millis() as i64),
                }),
                message: Some("Count computed".into()),
                status: Some("success".into()),
            },
        )))
    }
}

impl Handlers {
    /// `/query/sql` and `/gateway/sql` on a registered client.
    pub(super) async fn run_sql_request(
        &self,
        client: &str,
        body: &models::GatewaySqlExecutionRequest,
    ) -> Result<Map<String, Value>, ApiError> {
        require_postgres_driver(body)?;
        Ok(self
            .run_raw(client, &body.query, body.schema_name.as_deref(), &[])
            .await?)
    }

    /// Raw SQL on a registered client, on its raw-SQL connections (logged
    /// in as `ATHENA_RAW_SQL_ROLE` when set).
    pub(super) async fn run_raw(
        &self,
        client: &str,
        sql: &str,
        schema: Option<&str>,
        params: &[Value],
    ) -> Result<Map<String, Value>, DomainError> {
        let tenant = self.tenant(Some(client)).await?;
        let out = run_raw_on(&tenant, sql, schema, self.config.max_rows, params).await;
        // Raw SQL may have written any table of the client.
        self.cache.invalidate(&tenant.name, None).await;
        out
    }
}

/// The SQL drivers this gateway runs: the PostgreSQL ones.
pub(super) fn require_postgres_driver(
    body: &models::GatewaySqlExecutionRequest,
) -> Result<(), ApiError> {
    use models::GatewaySqlExecutionRequestDriver as Driver;
    match body.driver {
        Driver::Athena | Driver::Postgresql | Driver::Supabase => Ok(()),
        Driver::D1 | Driver::CloudflareD1 | Driver::AthenaD1 => {
            Err(ApiError::bad_request(format!(
                "driver `{}` is not available on this gateway (PostgreSQL drivers only)",
                body.driver
            )))
        }
    }
}

/// Raw SQL on a tenant, in the shape the SDK reads: `data` is the row
/// array, `meta` the counts.
pub(super) async fn run_raw_on(
    tenant: &Tenant,
    sql: &str,
    schema: Option<&str>,
    max_rows: i64,
    params: &[Value],
) -> Result<Map<String, Value>, DomainError> {
    let schema = schema.map(|s| Ident::parse("schema", s)).transpose()?;
    let out = raw::execute(
        tenant,
        sql,
        Options {
            schema: schema.as_ref(),
            max_rows,
            params,
        },
    )
    .await?;
    let body = json!({
        "status": "success",
        "message": "Query executed",
        "data": out.rows,
        "meta": {
            "backend": "postgresql",
            "returned_row_count": out.rows.len(),
            "rows_affected": out.rows_affected,
            // One statement per request (`src/gateway/raw.rs`).
            "statement_count": 1,
            "truncated": out.truncated,
            "max_rows": max_rows,
        },
    });
    Ok(body.as_object().cloned().unwrap_or_default())
}
