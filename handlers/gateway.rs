use super::{strip_nulls_header, Handlers};
use crate::api::{models, params, responses, traits::GatewayApi};
use crate::domain::identifier::qualified_table;
use crate::domain::DomainError;
use crate::gateway::filter::{Filter, FilterValue, Operator};
use crate::gateway::read::{self, ReadQuery};
use crate::http::payload::Json;
use crate::http::{ApiError, ApiResult, RequestCx};

impl GatewayApi for Handlers {
    async fn post_gateway_fetch(
        &self,
        cx: RequestCx,
        params: params::PostGatewayFetch,
        body: models::PostGatewayFetchRequest,
    ) -> ApiResult<responses::PostGatewayFetch> {
        if params.x_pg_uri.is_some()
            || params.x_athena_jdbc_url.is_some()
            || params.x_jdbc_url.is_some()
        {
            return Err(ApiError::new(
                crate::http::Code::NotImplemented,
                "Not implemented",
                "direct PostgreSQL URI routing is not available yet; use X-Athena-Client",
            ));
        }
        let tenant = self.tenant(params.x_athena_client.as_deref()).await?;
        let query = fetch_query(&body, strip_nulls_header(&cx))?;
        let rows = read::run(&tenant, &query, self.config.max_rows).await?;
        let message = format!("Fetched {} rows", rows.len());
        Ok(responses::PostGatewayFetch::Ok(Json::new(
            models::PostGatewayFetchResponse200 {
                cache_key: None,
                data: rows,
                message: Some(message),
                post_processing: Default::default(),
                status: Some(models::PostGatewayFetchResponse200Status::Success),
            },
        )))
    }
}

/// The legacy fetch body: `table_name` (optionally qualified or with
/// `schema_name`), `columns`, `conditions` (`eq_column` = `eq_value`),
/// `limit`/`offset`.
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
    let columns = match &body.columns {
        None => None,
        Some(models::PostGatewayFetchRequestColumns::Array(cols)) => Some(cols.clone()),
        Some(models::PostGatewayFetchRequestColumns::String(s)) => Some(
            s.split(',')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect(),
        ),
    };
    let mut filters = Vec::new();
    for c in &body.conditions {
        let column = c
            .eq_column
            .clone()
            .ok_or_else(|| DomainError::Invalid("each condition needs eq_column".into()))?;
        let value = match &c.eq_value {
            Some(v) => FilterValue::Text(v.clone()),
            None => FilterValue::Null,
        };
        filters.push(Filter {
            column,
            op: Operator::Eq,
            value,
        });
    }
    if let Some(limit) = body.limit {
        if limit < 0 {
            return Err(DomainError::Invalid("limit must not be negative".into()));
        }
    }
    Ok(ReadQuery {
        schema,
        table,
        columns,
        filters,
        order: Vec::new(),
        limit: body.limit,
        offset: body.offset,
        strip_nulls: body.strip_nulls.or(strip_header).unwrap_or(false),
    })
}
