use super::Handlers;
use crate::api::{models, params, responses, traits::QueryApi};
use crate::db::tenants::Tenant;
use crate::domain::identifier::{qualified_table, Ident};
use crate::domain::DomainError;
use crate::gateway::raw::{self, Options};
use crate::http::payload::Json;
use crate::http::{ApiError, ApiResult, RequestCx};
use serde_json::{json, Map, Value};

impl QueryApi for Handlers {
    async fn post_query_sql(
        &self,
        _cx: RequestCx,
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
            let result =
                run_raw_on(&tenant, &body.query, body.schema_name.as_deref(), None).await?;
            return Ok(responses::PostQuerySql::Ok(Json::new(
                models::PostQuerySqlResponse200(result),
            )));
        }
        let client = params.x_athena_client.as_deref().unwrap_or(&body.db_name);
        let result = self.run_sql_request(client, &body).await?;
        Ok(responses::PostQuerySql::Ok(Json::new(
            models::PostQuerySqlResponse200(result),
        )))
    }

    async fn post_query_count(
        &self,
        _cx: RequestCx,
        params: params::PostQueryCount,
        body: models::PostQueryCountRequest,
    ) -> ApiResult<responses::PostQueryCount> {
        let client = params.x_athena_client.as_deref().unwrap_or(&body.db_name);
        let tenant = self.tenant(Some(client)).await?;
        let started = std::time::Instant::now();
        let sql = match (&body.query, &body.table_name) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "give either query or table_name, not both",
                ))
            }
            (None, None) => return Err(ApiError::bad_request("query or table_name is required")),
            (Some(q), None) => q.clone(),
            (None, Some(t)) => {
                let (schema, table) = qualified_table(t, body.table_schema.as_deref())?;
                // Resolve first: an unknown table is a 404, not a SQL error.
                tenant.schema.table(&tenant.pool, &schema, &table).await?;
                format!("SELECT count(*) FROM {schema}.{table}")
            }
        };
        // Postgres itself refuses any write in a read-only transaction.
        let out = raw::execute(
            &tenant,
            &sql,
            Options {
                read_only: true,
                ..Default::default()
            },
        )
        .await
        .map_err(read_only_refusal)?;
        let count = single_count(&out.rows).ok_or_else(|| {
            ApiError::bad_request("the query must return one row with one integer column (a COUNT)")
        })?;
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
            .run_raw(client, &body.query, body.schema_name.as_deref())
            .await?)
    }

    /// Raw SQL on a registered client, as `ATHENA_RAW_SQL_ROLE` when set.
    pub(super) async fn run_raw(
        &self,
        client: &str,
        sql: &str,
        schema: Option<&str>,
    ) -> Result<Map<String, Value>, DomainError> {
        let tenant = self.tenant(Some(client)).await?;
        let role = self
            .config
            .raw_sql_role
            .as_deref()
            .map(|r| Ident::parse("role", r))
            .transpose()?;
        let out = run_raw_on(&tenant, sql, schema, role.as_ref()).await;
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
    role: Option<&Ident>,
) -> Result<Map<String, Value>, DomainError> {
    let schema = schema.map(|s| Ident::parse("schema", s)).transpose()?;
    let out = raw::execute(
        tenant,
        sql,
        Options {
            schema: schema.as_ref(),
            role,
            read_only: false,
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
            "statement_count": out.statement_count,
        },
    });
    Ok(body.as_object().cloned().unwrap_or_default())
}

/// A write attempted through a read-only route is the caller's mistake.
fn read_only_refusal(e: DomainError) -> ApiError {
    match e {
        DomainError::Forbidden(_) => ApiError::bad_request("only read queries are allowed here"),
        other => other.into(),
    }
}

fn single_count(rows: &[Map<String, Value>]) -> Option<i64> {
    match rows {
        [row] if row.len() == 1 => match row.values().next()? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}
