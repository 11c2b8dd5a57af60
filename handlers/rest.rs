use super::{strip_nulls_header, Handlers};
use crate::api::{models, params, responses, traits::RestApi};
use crate::domain::identifier::qualified_table;
use crate::domain::DomainError;
use crate::gateway::filter::{Filter, FilterValue, Operator};
use crate::gateway::read::{self, Order, ReadQuery};
use crate::http::payload::Json;
use crate::http::{ApiResult, RequestCx};
use http::{header, HeaderValue};

/// Query parameters that are not filters.
const RESERVED: [&str; 6] = ["select", "limit", "offset", "order", "or", "api_key"];

impl RestApi for Handlers {
    async fn get_rest_v1_by_table(
        &self,
        cx: RequestCx,
        params: params::GetRestV1ByTable,
    ) -> ApiResult<responses::GetRestV1ByTable> {
        let tenant = self.tenant(Some(&params.x_athena_client)).await?;
        if params.or.is_some() {
            return Err(DomainError::Invalid("`or` filters are not supported yet".into()).into());
        }
        let (schema, table) = qualified_table(&params.table, None)?;
        let mut filters = Vec::new();
        for (key, value) in cx.query() {
            if RESERVED.contains(&key.as_str()) {
                continue;
            }
            filters.push(parse_filter(key, value)?);
        }
        let (mut limit, mut offset) = (params.limit, params.offset);
        if let Some(range) = &params.range {
            let (start, end) = parse_range(range)?;
            offset = Some(start);
            limit = Some(end - start + 1);
        }
        let query = ReadQuery {
            schema,
            table,
            columns: params
                .select
                .as_deref()
                .map(|s| s.split(',').map(|c| c.trim().to_string()).collect()),
            filters,
            order: params
                .order
                .as_deref()
                .map(parse_order)
                .transpose()?
                .unwrap_or_default(),
            limit,
            offset,
            strip_nulls: strip_nulls_header(&cx).unwrap_or(false),
        };
        let rows = read::run(&tenant, &query, self.config.max_rows).await?;
        let start = offset.unwrap_or(0);
        let range = if rows.is_empty() {
            "*/*".to_string()
        } else {
            format!("{}-{}/*", start, start + rows.len() as i64 - 1)
        };
        let mut out = Json::new(models::GetRestV1ByTableResponse200 { data: rows });
        if let Ok(v) = HeaderValue::from_str(&range) {
            out = out.with_header(header::CONTENT_RANGE, v);
        }
        Ok(responses::GetRestV1ByTable::Ok(out))
    }
}

/// Both the PostgREST form (`col=eq.5`) and the contract's (`col.eq=5`).
fn parse_filter(key: &str, value: &str) -> Result<Filter, DomainError> {
    if let Some((column, op)) = key.rsplit_once('.') {
        if let Ok(op) = Operator::parse(op) {
            let value = match op {
                Operator::In => FilterValue::List(value.split(',').map(str::to_string).collect()),
                Operator::Like | Operator::ILike => FilterValue::Text(value.replace('*', "%")),
                _ => FilterValue::Text(value.to_string()),
            };
            return Ok(Filter {
                column: column.to_string(),
                op,
                value,
            });
        }
    }
    Filter::from_postgrest(key, value)
}

/// `col.desc.nullslast,other` → orders.
fn parse_order(s: &str) -> Result<Vec<Order>, DomainError> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|part| {
            let mut pieces = part.trim().split('.');
            let column = pieces.next().unwrap_or_default().to_string();
            let mut order = Order {
                column,
                descending: false,
                nulls_first: None,
            };
            for modifier in pieces {
                match modifier {
                    "asc" => order.descending = false,
                    "desc" => order.descending = true,
                    "nullsfirst" => order.nulls_first = Some(true),
                    "nullslast" => order.nulls_first = Some(false),
                    other => {
                        return Err(DomainError::Invalid(format!(
                            "unknown order modifier `{other}`"
                        )))
                    }
                }
            }
            Ok(order)
        })
        .collect()
}

/// `items=0-24` (or `0-24`) → (0, 24).
fn parse_range(s: &str) -> Result<(i64, i64), DomainError> {
    let spec = s.trim().strip_prefix("items=").unwrap_or(s.trim());
    let bad = || DomainError::Invalid(format!("Range `{s}` must look like items=start-end"));
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let (a, b): (i64, i64) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if a < 0 || b < a {
        return Err(bad());
    }
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_filter_forms() {
        let a = parse_filter("id", "eq.5").unwrap();
        let b = parse_filter("id.eq", "5").unwrap();
        assert_eq!(a, b);
        assert_eq!(
            parse_filter("name.in", "a,b").unwrap().value,
            FilterValue::List(vec!["a".into(), "b".into()])
        );
        assert!(parse_filter("id", "5").is_err());
    }

    #[test]
    fn order_and_range() {
        let o = parse_order("id.desc.nullslast,name").unwrap();
        assert_eq!(
            (o[0].descending, o[0].nulls_first, o[1].descending),
            (true, Some(false), false)
        );
        assert!(parse_order("id.sideways").is_err());
        assert_eq!(parse_range("items=0-24").unwrap(), (0, 24));
        assert!(parse_range("items=5-1").is_err());
    }
}
