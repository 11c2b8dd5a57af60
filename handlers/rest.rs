use super::{strip_nulls_header, Handlers};
use crate::api::{models, params, responses, traits::RestApi};
use crate::domain::identifier::qualified_table;
use crate::domain::DomainError;
use crate::gateway::cond::parse_order;
use crate::gateway::embed;
use crate::gateway::filter::{split_list, Cond, Filter, FilterValue, Operator};
use crate::gateway::read::ReadQuery;
use crate::gateway::service::Target;
use crate::gateway::sql::split_columns;
use crate::gateway::write::{self, Conflict, ConflictAction, Write};
use crate::http::payload::{Json, NoBody};
use crate::http::{ApiResult, RequestCx};
use http::{header, HeaderValue};

/// Query parameters that are not column filters.
const RESERVED: [&str; 10] = [
    "select",
    "limit",
    "offset",
    "order",
    "or",
    "and",
    "api_key",
    "apikey",
    "on_conflict",
    "columns",
];

impl RestApi for Handlers {
    async fn get_rest_v1_by_table(
        &self,
        cx: RequestCx,
        params: params::GetRestV1ByTable,
    ) -> ApiResult<responses::GetRestV1ByTable> {
        let target = Target::client(&params.x_athena_client);
        let (schema, table) = qualified_table(&params.table, None)?;
        let filters = query_conditions(cx.query())?;
        let (mut limit, mut offset) = (params.limit, params.offset);
        if let Some(range) = &params.range {
            let (start, end) = parse_range(range)?;
            offset = Some(start);
            limit = Some(end - start + 1);
        }
        // `select` takes the PostgREST grammar, embeds included
        // (`*,author:users!owner_id(id,name)`).
        let (columns, embeds) = match params.select.as_deref().map(embed::parse).transpose()? {
            Some(s) => (Some(s.columns), s.embeds),
            None => (None, Vec::new()),
        };
        let query = ReadQuery {
            schema,
            table,
            columns,
            embeds,
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
        let rows = self.gateway.read_raw(&target, &query).await?;
        let start = offset.unwrap_or(0);
        let range = if rows.is_empty() {
            "*/*".to_string()
        } else {
            format!("{}-{}/*", start, start + rows.len() as i64 - 1)
        };
        // The rows are served as Postgres wrote them (`Json::with_raw_field`).
        let mut out = Json::new(models::GetRestV1ByTableResponse200 { data: Vec::new() })
            .with_raw_field("data", rows.into_string());
        if let Ok(v) = HeaderValue::from_str(&range) {
            out = out.with_header(header::CONTENT_RANGE, v);
        }
        Ok(responses::GetRestV1ByTable::Ok(out))
    }

    async fn post_rest_v1_by_table(
        &self,
        cx: RequestCx,
        params: params::PostRestV1ByTable,
        body: models::PostRestV1ByTableRequest,
    ) -> ApiResult<responses::PostRestV1ByTable> {
        let target = Target::client(&params.x_athena_client);
        let (schema, table) = qualified_table(&params.table, None)?;
        let prefer = Prefer::parse(params.prefer.as_deref());
        let rows = match body {
            models::PostRestV1ByTableRequest::Object(row) => vec![row],
            models::PostRestV1ByTableRequest::Array(rows) => rows,
        };
        let on_conflict = prefer.resolution.map(|action| Conflict {
            columns: query_value(&cx, "on_conflict")
                .map(split_columns)
                .unwrap_or_default(),
            action,
        });
        let q = write::InsertQuery {
            schema,
            table,
            rows,
            returning: query_value(&cx, "select").map(split_columns),
            on_conflict,
            default_to_null: prefer.missing_null,
            strip_nulls: strip_nulls_header(&cx).unwrap_or(false),
        };
        let write = Write::Insert(q);
        cx.require_rights(write.rights())?;
        let result = self.gateway.write_inline(&target, write, None).await?;
        if prefer.minimal {
            return Ok(responses::PostRestV1ByTable::NoContent(NoBody::default()));
        }
        Ok(responses::PostRestV1ByTable::Ok(affected(
            Json::new(models::PostRestV1ByTableResponse200 { data: result.rows }),
            result.affected,
        )))
    }

    async fn patch_rest_v1_by_table(
        &self,
        cx: RequestCx,
        params: params::PatchRestV1ByTable,
        body: models::PatchRestV1ByTableRequest,
    ) -> ApiResult<responses::PatchRestV1ByTable> {
        let target = Target::client(&params.x_athena_client);
        let (schema, table) = qualified_table(&params.table, None)?;
        let filters = required_filters(&cx, "PATCH")?;
        let prefer = Prefer::parse(params.prefer.as_deref());
        let q = write::UpdateQuery {
            schema,
            table,
            set: body.0,
            filters,
            returning: query_value(&cx, "select").map(split_columns),
            strip_nulls: strip_nulls_header(&cx).unwrap_or(false),
        };
        let result = self
            .gateway
            .write_inline(&target, Write::Update(q), None)
            .await?;
        if prefer.minimal {
            return Ok(responses::PatchRestV1ByTable::NoContent(NoBody::default()));
        }
        Ok(responses::PatchRestV1ByTable::Ok(affected(
            Json::new(models::PatchRestV1ByTableResponse200 { data: result.rows }),
            result.affected,
        )))
    }

    async fn delete_rest_v1_by_table(
        &self,
        cx: RequestCx,
        params: params::DeleteRestV1ByTable,
    ) -> ApiResult<responses::DeleteRestV1ByTable> {
        let target = Target::client(&params.x_athena_client);
        let (schema, table) = qualified_table(&params.table, None)?;
        let filters = required_filters(&cx, "DELETE")?;
        let prefer = Prefer::parse(params.prefer.as_deref());
        let q = write::DeleteQuery {
            schema,
            table,
            filters,
            returning: query_value(&cx, "select").map(split_columns),
            strip_nulls: strip_nulls_header(&cx).unwrap_or(false),
        };
        let result = self
            .gateway
            .write_inline(&target, Write::Delete(q), None)
            .await?;
        if prefer.minimal {
            return Ok(responses::DeleteRestV1ByTable::NoContent(NoBody::default()));
        }
        Ok(responses::DeleteRestV1ByTable::Ok(affected(
            Json::new(models::DeleteRestV1ByTableResponse200 { data: result.rows }),
            result.affected,
        )))
    }
}

fn affected<T>(out: Json<T>, n: i64) -> Json<T> {
    out.with_field("rows_affected", serde_json::json!(n))
        .with_field("affected_rows", serde_json::json!(n))
}

fn query_value<'a>(cx: &'a RequestCx, name: &str) -> Option<&'a str> {
    cx.query()
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Filters of a PATCH/DELETE: at least one, never the whole table.
fn required_filters(cx: &RequestCx, method: &str) -> Result<Vec<Cond>, DomainError> {
    let filters = query_conditions(cx.query())?;
    if filters.is_empty() {
        return Err(DomainError::Invalid(format!(
            "{method} /rest/v1/{{table}} needs at least one filter (e.g. ?id=eq.1); refusing to touch every row"
        )));
    }
    Ok(filters)
}

/// `Prefer: return=minimal|representation, resolution=merge-duplicates|ignore-duplicates, missing=default|null`.
#[derive(Debug, Default, PartialEq)]
struct Prefer {
    minimal: bool,
    resolution: Option<ConflictAction>,
    missing_null: bool,
}

impl Prefer {
    fn parse(h: Option<&str>) -> Prefer {
        let mut p = Prefer::default();
        for token in h.unwrap_or_default().split([',', ';']) {
            match token.trim().to_ascii_lowercase().as_str() {
                "return=minimal" | "return=headers-only" => p.minimal = true,
                "return=representation" => p.minimal = false,
                "resolution=merge-duplicates" => p.resolution = Some(ConflictAction::Merge),
                "resolution=ignore-duplicates" => p.resolution = Some(ConflictAction::Nothing),
                "missing=null" => p.missing_null = true,
                _ => {}
            }
        }
        p
    }
}

/// Every filter of a query string: column filters (both forms), `or=(…)`, `and=(…)`.
fn query_conditions(query: &[(String, String)]) -> Result<Vec<Cond>, DomainError> {
    let mut out = Vec::new();
    for (key, value) in query {
        match key.as_str() {
            "or" => out.push(Cond::from_postgrest_list(value, true)?),
            "and" => out.push(Cond::from_postgrest_list(value, false)?),
            k if RESERVED.contains(&k) => {}
            _ => out.push(parse_filter(key, value)?),
        }
    }
    Ok(out)
}

/// Both the PostgREST form (`col=eq.5`, `col=not.eq.5`) and the contract's (`col.eq=5`).
fn parse_filter(key: &str, value: &str) -> Result<Cond, DomainError> {
    if let Some((column, op)) = key.rsplit_once('.') {
        if let Ok(op) = Operator::parse(op) {
            let (column, negate) = match column.strip_suffix(".not") {
                Some(c) => (c, true),
                None => (column, false),
            };
            let value = match op {
                Operator::In => FilterValue::List(split_list(
                    value
                        .strip_prefix('(')
                        .and_then(|v| v.strip_suffix(')'))
                        .unwrap_or(value),
                )),
                Operator::Like | Operator::ILike => FilterValue::Text(value.replace('*', "%")),
                _ => FilterValue::Text(value.to_string()),
            };
            let f: Cond = Filter::new(column, op, value).into();
            return Ok(if negate { Cond::Not(Box::new(f)) } else { f });
        }
    }
    Cond::from_postgrest(key, value)
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
            parse_filter("name.in", "a,b").unwrap(),
            Filter::new(
                "name",
                Operator::In,
                FilterValue::List(vec!["a".into(), "b".into()])
            )
            .into()
        );
        assert!(parse_filter("id", "5").is_err());
        assert!(matches!(
            parse_filter("id", "not.eq.5").unwrap(),
            Cond::Not(_)
        ));
        assert!(matches!(
            parse_filter("id.not.eq", "5").unwrap(),
            Cond::Not(_)
        ));
    }

    #[test]
    fn query_strings() {
        let q = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        let c = query_conditions(&q(&[
            ("or", "(id.eq.1,name.eq.b)"),
            ("select", "id"),
            ("score", "gte.2"),
        ]))
        .unwrap();
        assert_eq!(c.len(), 2);
        assert!(matches!(&c[0], Cond::Or(items) if items.len() == 2));
        assert!(query_conditions(&q(&[("or", "(id.eq.1")])).is_err());
        assert!(query_conditions(&q(&[("select", "id"), ("limit", "1")]))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn prefer_header() {
        let p = Prefer::parse(Some("return=minimal, resolution=merge-duplicates"));
        assert!(p.minimal);
        assert_eq!(p.resolution, Some(ConflictAction::Merge));
        assert_eq!(Prefer::parse(None), Prefer::default());
        assert!(!Prefer::parse(Some("return=representation")).minimal);
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("items=0-24").unwrap(), (0, 24));
        assert!(parse_range("items=5-1").is_err());
        assert!(parse_order("id.sideways").is_err());
    }
}
