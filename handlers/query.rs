use super::{sql_target, Handlers};
use crate::api::{models, params, responses, traits::QueryApi};
use crate::domain::identifier::qualified_table;
use crate::domain::DomainError;
use crate::gateway::read::ReadQuery;
use crate::gateway::service::Target;
use crate::gateway::sql_text::{self, Shape};
use crate::http::payload::Json;
use crate::http::{ApiResult, RequestCx};

impl QueryApi for Handlers {
    /// Same resolution as `/gateway/sql`: a direct PostgreSQL URI header
    /// wins over `X-Athena-Client` / `db_name` (PostgreSQL drivers only).
    async fn post_query_sql(
        &self,
        cx: RequestCx,
        params: params::PostQuerySql,
        body: models::GatewaySqlExecutionRequest,
    ) -> ApiResult<responses::PostQuerySql> {
        let target = sql_target(&cx, target!(params), &body.db_name).await?;
        let out = self.gateway.sql(&target, &body).await?;
        Ok(responses::PostQuerySql::Ok(Json::new(
            models::PostQuerySqlResponse200(out),
        )))
    }

    async fn post_query_count(
        &self,
        cx: RequestCx,
        _params: params::PostQueryCount,
        body: models::PostQueryCountRequest,
    ) -> ApiResult<responses::PostQueryCount> {
        let target = Target::client(cx.target_client(Some(&body.db_name)).await?);
        let started = std::time::Instant::now();
        let query = count_query(&body)?;
        let count = self.gateway.read(&target, &query, true).await?.count;
        Ok(responses::PostQueryCount::Ok(Json::new(
            models::PostQueryCountResponse200 {
                data: Some(models::PostQueryCountResponse200Data {
                    cache_key: None,
                    cache_lookup_outcome: Some("bypass".into()),
                    count: Some(count.unwrap_or_default()),
                    db_name: Some(body.db_name.clone()),
                    duration_ms: Some(started.elapsed().as_millis() as i64),
                }),
                message: Some("Count computed".into()),
                status: Some("success".into()),
            },
        )))
    }
}

/// The count's read: the query text parsed into a structured read (never
/// sent to Postgres), or a table name (the same read without filters).
fn count_query(body: &models::PostQueryCountRequest) -> Result<ReadQuery, DomainError> {
    let invalid = |why: &str| Err(DomainError::Invalid(why.into()));
    match (&body.query, &body.table_name) {
        (Some(_), Some(_)) => invalid("give either query or table_name, not both"),
        (None, None) => invalid("query or table_name is required"),
        (Some(_), None) if body.table_schema.is_some() => {
            invalid("table_schema goes with table_name; qualify the table in the query instead")
        }
        (Some(q), None) => sql_text::parse(q, Shape::Count),
        (None, Some(t)) => {
            let (schema, table) = qualified_table(t, body.table_schema.as_deref())?;
            Ok(ReadQuery::table(schema, table))
        }
    }
}
