use super::{strip_nulls_header, Handlers};
use crate::api::{models, params, responses, traits::RestApi};
use crate::domain::identifier::qualified_table;
use crate::domain::DomainError;
use crate::gateway::cond::parse_order;
use crate::gateway::embed;
use crate::gateway::filter::{split_list, Cond, Filter, FilterValue, Operator};
use crate::gateway::read::CountMode;
use crate::gateway::read::ReadQuery;
use crate::gateway::service::Target;
use crate::gateway::sql::split_columns;
use crate::gateway::write::{self, Conflict, ConflictAction, Write};
use crate::http::payload::{Json, NoBody};
use crate::http::rest_shape::wants_object;
use crate::http::{ApiError, Code};
use crate::http::{ApiResult, RequestCx};
use http::{header, HeaderMap, HeaderValue};

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
        let target = Target::rest(&params.x_athena_client);
        let (schema, table) = qualified_table(&params.table, None)?;
        let (filters, embedded) = query_parts(cx.query())?;
        let (limit, offset) = paging(&cx, params.limit, params.offset, params.range.as_deref())?;
        let count = count_mode(cx.headers());
        let singular = wants_object(cx.headers());
        // `select` takes the PostgREST grammar, embeds included
        // (`*,author:users!owner_id(id,name)`).
        let (columns, mut embeds) = match params.select.as_deref().map(embed::parse).transpose()? {
            Some(s) => (Some(s.columns), s.embeds),
            None => (None, Vec::new()),
        };
        // `rel.col=…`, `rel.order=`, `rel.limit=` … on the embeds they name.
        embed::attach(&mut embeds, embedded)?;
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
        let (rows, total) = self.gateway.read_counted(&target, &query, count).await?;
        let start = offset.unwrap_or(0);
        let (partial, range) = range_answer(start, rows.len() as i64, total)?;
        let range = HeaderValue::from_str(&range).unwrap_or(HeaderValue::from_static("*/*"));
        if singular {
            // One object in `data` (the contract's envelope), 406 otherwise.
            let mut one = rows.to_rows()?;
            if one.len() != 1 {
                return Err(not_one(one.len() as i64));
            }
            let out = Json::new(models::GetRestV1ByTableResponse200 { data: Vec::new() })
                .with_field("data", serde_json::Value::Object(one.remove(0)))
                .with_header(header::CONTENT_RANGE, range);
            return Ok(responses::GetRestV1ByTable::Ok(out));
        }
        // The rows are served as Postgres wrote them (`Json::with_raw_field`).
        let rows = rows.into_string();
        Ok(if partial {
            responses::GetRestV1ByTable::PartialContent(
                Json::new(models::GetRestV1ByTableResponse206 { data: Vec::new() })
                    .with_raw_field("data", rows)
                    .with_header(header::CONTENT_RANGE, range),
            )
        } else {
            responses::GetRestV1ByTable::Ok(
                Json::new(models::GetRestV1ByTableResponse200 { data: Vec::new() })
                    .with_raw_field("data", rows)
                    .with_header(header::CONTENT_RANGE, range),
            )
        })
    }

    async fn post_rest_v1_by_table(
        &self,
        cx: RequestCx,
        params: params::PostRestV1ByTable,
        body: models::PostRestV1ByTableRequest,
    ) -> ApiResult<responses::PostRestV1ByTable> {
        let target = Target::rest(&params.x_athena_client);
        let (schema, table) = qualified_table(&params.table, None)?;
        let prefer = Prefer::from_headers(cx.headers());
        let rows = match body {
            models::PostRestV1ByTableRequest::Object(row) => vec![row],
            models::PostRestV1ByTableRequest::Array(rows) => rows,
        };
        let on_conflict = prefer.resolution.clone().map(|action| Conflict {
            columns: query_value(&cx, "on_conflict")
                .map(column_list)
                .unwrap_or_default(),
            action,
        });
        let columns = query_value(&cx, "columns").map(column_list);
        if columns.as_ref().is_some_and(Vec::is_empty) {
            return Err(DomainError::Invalid("columns= names no column".into()).into());
        }
        let strip_nulls = strip_nulls_header(&cx).unwrap_or(false);
        let select = written_select(&cx, &prefer, &schema, &table, strip_nulls)?;
        let q = write::InsertQuery {
            schema,
            table,
            rows,
            // Every column: `?select=` picks from them through the read renderer.
            returning: None,
            on_conflict,
            // PostgREST: a key some rows lack is NULL unless `missing=default`.
            default_to_null: !prefer.missing_default(),
            strip_nulls,
            columns,
        };
        let write = Write::Insert(q);
        cx.require_rights(write.rights())?;
        require_select_rights(&cx, &select)?;
        let singular = wants_object(cx.headers());
        let result = self
            .gateway
            .write_rest(&target, write, select.as_ref(), singular)
            .await?;
        let range = write_range(&cx, result.affected, singular)?;
        let applied = prefer.applied(true, count_mode(cx.headers()));
        if prefer.minimal {
            return Ok(responses::PostRestV1ByTable::NoContent(with_applied(
                NoBody::default().with_header(header::CONTENT_RANGE, range),
                applied,
                NoBody::with_header,
            )));
        }
        let out = written(
            Json::new(models::PostRestV1ByTableResponse200 { data: Vec::new() }),
            result.rows,
            singular,
        );
        Ok(responses::PostRestV1ByTable::Ok(with_applied(
            affected(out, result.affected).with_header(header::CONTENT_RANGE, range),
            applied,
            Json::with_header,
        )))
    }

    async fn patch_rest_v1_by_table(
        &self,
        cx: RequestCx,
        params: params::PatchRestV1ByTable,
        body: models::PatchRestV1ByTableRequest,
    ) -> ApiResult<responses::PatchRestV1ByTable> {
        let target = Target::rest(&params.x_athena_client);
        let (schema, table) = qualified_table(&params.table, None)?;
        let filters = required_filters(&cx, "PATCH")?;
        let prefer = Prefer::from_headers(cx.headers());
        let strip_nulls = strip_nulls_header(&cx).unwrap_or(false);
        let select = written_select(&cx, &prefer, &schema, &table, strip_nulls)?;
        let q = write::UpdateQuery {
            schema,
            table,
            set: body.0,
            filters,
            // Every column: `?select=` picks from them through the read renderer.
            returning: None,
            strip_nulls,
        };
        require_select_rights(&cx, &select)?;
        let singular = wants_object(cx.headers());
        let result = self
            .gateway
            .write_rest(&target, Write::Update(q), select.as_ref(), singular)
            .await?;
        let range = write_range(&cx, result.affected, singular)?;
        let applied = prefer.applied(false, count_mode(cx.headers()));
        if prefer.minimal {
            return Ok(responses::PatchRestV1ByTable::NoContent(with_applied(
                NoBody::default().with_header(header::CONTENT_RANGE, range),
                applied,
                NoBody::with_header,
            )));
        }
        let out = written(
            Json::new(models::PatchRestV1ByTableResponse200 { data: Vec::new() }),
            result.rows,
            singular,
        );
        Ok(responses::PatchRestV1ByTable::Ok(with_applied(
            affected(out, result.affected).with_header(header::CONTENT_RANGE, range),
            applied,
            Json::with_header,
        )))
    }

    async fn delete_rest_v1_by_table(
        &self,
        cx: RequestCx,
        params: params::DeleteRestV1ByTable,
    ) -> ApiResult<responses::DeleteRestV1ByTable> {
        let target = Target::rest(&params.x_athena_client);
        let (schema, table) = qualified_table(&params.table, None)?;
        let filters = required_filters(&cx, "DELETE")?;
        let prefer = Prefer::from_headers(cx.headers());
        let strip_nulls = strip_nulls_header(&cx).unwrap_or(false);
        let select = written_select(&cx, &prefer, &schema, &table, strip_nulls)?;
        let q = write::DeleteQuery {
            schema,
            table,
            filters,
            // Every column: `?select=` picks from them through the read renderer.
            returning: None,
            strip_nulls,
        };
        require_select_rights(&cx, &select)?;
        let singular = wants_object(cx.headers());
        let result = self
            .gateway
            .write_rest(&target, Write::Delete(q), select.as_ref(), singular)
            .await?;
        let range = write_range(&cx, result.affected, singular)?;
        let applied = prefer.applied(false, count_mode(cx.headers()));
        if prefer.minimal {
            return Ok(responses::DeleteRestV1ByTable::NoContent(with_applied(
                NoBody::default().with_header(header::CONTENT_RANGE, range),
                applied,
                NoBody::with_header,
            )));
        }
        let out = written(
            Json::new(models::DeleteRestV1ByTableResponse200 { data: Vec::new() }),
            result.rows,
            singular,
        );
        Ok(responses::DeleteRestV1ByTable::Ok(with_applied(
            affected(out, result.affected).with_header(header::CONTENT_RANGE, range),
            applied,
            Json::with_header,
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
    // PostgREST limits a PATCH/DELETE with `limit`+`order`; Athena does not
    // (yet): refused, never ignored (an ignored `limit=1` would touch every
    // matching row).
    if let Some((k, _)) = cx
        .query()
        .iter()
        .find(|(k, _)| matches!(k.as_str(), "limit" | "offset" | "order"))
    {
        return Err(DomainError::Invalid(format!(
            "`{k}` is not supported on {method} /rest/v1/{{table}}: the filters choose the rows"
        )));
    }
    let filters = query_conditions(cx.query())?;
    if filters.is_empty() {
        return Err(DomainError::Invalid(format!(
            "{method} /rest/v1/{{table}} needs at least one filter (e.g. ?id=eq.1); refusing to touch every row"
        )));
    }
    Ok(filters)
}

// --- Writes as PostgREST does them (issue 14, writes): Prefer, ?select=, ?columns= ---

/// `Prefer: return=minimal|headers-only|representation,
/// resolution=merge-duplicates|ignore-duplicates, missing=default|null`
/// (every `Prefer` header; the first value of each kind wins, as PostgREST
/// reads them; unknown tokens are ignored).
#[derive(Debug, Default, PartialEq)]
struct Prefer {
    minimal: bool,
    /// The `return=` given (echoed in `Preference-Applied`).
    ret: Option<&'static str>,
    resolution: Option<ConflictAction>,
    /// The `missing=` given: `default` or `null`.
    missing: Option<&'static str>,
}

impl Prefer {
    fn from_headers(headers: &HeaderMap) -> Prefer {
        let all: Vec<&str> = headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        Prefer::parse(Some(&all.join(",")))
    }

    fn parse(h: Option<&str>) -> Prefer {
        let mut p = Prefer::default();
        for token in h.unwrap_or_default().split([',', ';']) {
            match token.trim().to_ascii_lowercase().as_str() {
                "return=minimal" if p.ret.is_none() => p.ret = Some("minimal"),
                "return=headers-only" if p.ret.is_none() => p.ret = Some("headers-only"),
                "return=representation" if p.ret.is_none() => p.ret = Some("representation"),
                "resolution=merge-duplicates" if p.resolution.is_none() => {
                    p.resolution = Some(ConflictAction::Merge)
                }
                "resolution=ignore-duplicates" if p.resolution.is_none() => {
                    p.resolution = Some(ConflictAction::Nothing)
                }
                "missing=default" if p.missing.is_none() => p.missing = Some("default"),
                "missing=null" if p.missing.is_none() => p.missing = Some("null"),
                _ => {}
            }
        }
        p.minimal = matches!(p.ret, Some("minimal" | "headers-only"));
        p
    }

    /// `Prefer: missing=default`: keys a row lacks take the column DEFAULT.
    fn missing_default(&self) -> bool {
        self.missing == Some("default")
    }

    /// `Preference-Applied` (PostgREST's order: resolution, missing,
    /// return, count; only what was asked and applies: `resolution=` and
    /// `missing=` on inserts).
    fn applied(&self, insert: bool, count: Option<CountMode>) -> Option<HeaderValue> {
        let mut parts = Vec::new();
        if insert {
            match self.resolution {
                Some(ConflictAction::Merge) => parts.push("resolution=merge-duplicates"),
                Some(ConflictAction::Nothing) => parts.push("resolution=ignore-duplicates"),
                _ => {}
            }
            match self.missing {
                Some("default") => parts.push("missing=default"),
                Some("null") => parts.push("missing=null"),
                _ => {}
            }
        }
        match self.ret {
            Some("minimal") => parts.push("return=minimal"),
            Some("headers-only") => parts.push("return=headers-only"),
            Some("representation") => parts.push("return=representation"),
            _ => {}
        }
        match count {
            Some(CountMode::Exact) => parts.push("count=exact"),
            Some(CountMode::Planned) => parts.push("count=planned"),
            Some(CountMode::Estimated) => parts.push("count=estimated"),
            None => {}
        }
        match parts.is_empty() {
            true => None,
            false => HeaderValue::from_str(&parts.join(", ")).ok(),
        }
    }
}

/// Sets `Preference-Applied` when there is one.
fn with_applied<T>(
    out: T,
    applied: Option<HeaderValue>,
    set: fn(T, http::HeaderName, HeaderValue) -> T,
) -> T {
    match applied {
        Some(v) => set(out, http::HeaderName::from_static("preference-applied"), v),
        None => out,
    }
}

/// Embeds in a write's `?select=` read other tables: they need the read
/// right as well (the written table's own columns need only the write's).
fn require_select_rights(cx: &RequestCx, select: &Option<ReadQuery>) -> Result<(), ApiError> {
    if select.as_ref().is_some_and(|s| !s.embeds.is_empty()) {
        cx.require_rights(&[crate::auth::rights::FETCH])?;
    }
    Ok(())
}

/// `a,b` or postgrest-js' `"a","b"`: the names, unquoted.
fn column_list(s: &str) -> Vec<String> {
    split_columns(s)
        .into_iter()
        .map(
            |c| match c.strip_prefix('"').and_then(|c| c.strip_suffix('"')) {
                Some(inner) => inner.to_string(),
                None => c,
            },
        )
        .collect()
}

/// A write's `?select=` as a read of the written rows (the GET's grammar,
/// embeds included), unless nothing is answered (`return=minimal`).
fn written_select(
    cx: &RequestCx,
    prefer: &Prefer,
    schema: &crate::domain::identifier::Ident,
    table: &crate::domain::identifier::Ident,
    strip_nulls: bool,
) -> Result<Option<ReadQuery>, DomainError> {
    let Some(select) = query_value(cx, "select").filter(|_| !prefer.minimal) else {
        return Ok(None);
    };
    let s = embed::parse(select)?;
    Ok(Some(ReadQuery {
        columns: Some(s.columns),
        embeds: s.embeds,
        strip_nulls,
        ..ReadQuery::table(schema.clone(), table.clone())
    }))
}

/// Every filter of a query string: column filters (both forms), `or=(…)`,
/// `and=(…)`, `not.or=(…)`, `not.and=(…)`. Embedded-resource parameters
/// (`rel.col=…`) need a read that embeds `rel`: refused here.
fn query_conditions(query: &[(String, String)]) -> Result<Vec<Cond>, DomainError> {
    let (conds, embedded) = query_parts(query)?;
    if let Some(p) = embedded.first() {
        return Err(DomainError::Invalid(format!(
            "a parameter on the embedded resource `{}`: embedded-resource parameters only apply to a GET whose select embeds it",
            p.path.join(".")
        )));
    }
    Ok(conds)
}

/// The query string's base conditions and its embedded-resource
/// parameters (`rel.col=eq.x`, `rel.order=`, `rel.limit=`, `rel.or=(…)`),
/// parsed once.
fn query_parts(query: &[(String, String)]) -> Result<(Vec<Cond>, Vec<embed::Param>), DomainError> {
    let mut out = Vec::new();
    let mut embedded = Vec::new();
    for (key, value) in query {
        if let Some(c) = Cond::from_postgrest_logic(key, value) {
            out.push(c?);
            continue;
        }
        if RESERVED.contains(&key.as_str()) {
            continue;
        }
        // The contract's `col.op=v` form wins when its last segment is an
        // operator; any other dotted key is a path into the embeds.
        let contract_form = key
            .rsplit_once('.')
            .is_some_and(|(_, op)| Operator::parse(op).is_ok());
        if !contract_form {
            if let Some(p) = embed::Param::from_query(key, value)? {
                embedded.push(p);
                continue;
            }
        }
        out.push(parse_filter(key, value)?);
    }
    Ok((out, embedded))
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

/// `items=0-24` (or `0-24`) → (0, Some(24)); `5-` → (5, None).
fn parse_range(s: &str) -> Result<(i64, Option<i64>), DomainError> {
    let spec = s.trim().strip_prefix("items=").unwrap_or(s.trim());
    let bad = || DomainError::Invalid(format!("Range `{s}` must look like items=start-end"));
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let a: i64 = a.trim().parse().map_err(|_| bad())?;
    let b: Option<i64> = match b.trim() {
        "" => None,
        b => Some(b.parse().map_err(|_| bad())?),
    };
    if a < 0 || b.is_some_and(|b| b < a) {
        return Err(bad());
    }
    Ok((a, b))
}

// --- Counts, ranges and singular responses (issue 14) ---

/// `Prefer: count=exact|planned|estimated` (any other value: no count).
fn count_mode(headers: &HeaderMap) -> Option<CountMode> {
    let mut mode = None;
    for token in headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
    {
        match token.trim().to_ascii_lowercase().as_str() {
            "count=exact" => mode = Some(CountMode::Exact),
            "count=planned" => mode = Some(CountMode::Planned),
            "count=estimated" => mode = Some(CountMode::Estimated),
            _ => {}
        }
    }
    mode
}

/// 406 with the standard envelope: the singular answer needs one row.
fn not_one(n: i64) -> ApiError {
    ApiError::new(
        Code::NotAcceptable,
        "Not acceptable",
        format!(
            "Accept: application/vnd.pgrst.object+json needs exactly one row; the request matched {n}"
        ),
    )
}

/// `limit`/`offset` and the `Range` header (`0-4`, `items=0-4`, `5-`;
/// `Range-Unit: items` or none) together: the header's window inside the
/// query's, as PostgREST intersects them. A negative `limit`/`offset` is a
/// 400 (PostgREST refuses them as well).
fn paging(
    cx: &RequestCx,
    limit: Option<i64>,
    offset: Option<i64>,
    range: Option<&str>,
) -> Result<(Option<i64>, Option<i64>), DomainError> {
    if offset.is_some_and(|o| o < 0) {
        return Err(DomainError::Invalid("offset must not be negative".into()));
    }
    if limit.is_some_and(|l| l < 0) {
        return Err(DomainError::Invalid("limit must not be negative".into()));
    }
    let Some(range) = range else {
        return Ok((limit, offset));
    };
    if let Some(unit) = cx.headers().get("range-unit").and_then(|v| v.to_str().ok()) {
        if !unit.trim().eq_ignore_ascii_case("items") {
            return Err(DomainError::Invalid(format!(
                "Range-Unit `{unit}` is not supported (only `items`)"
            )));
        }
    }
    let (start, end) = parse_range(range)?;
    let q_start = offset.unwrap_or(0);
    let q_end = limit.map(|l| q_start + l - 1);
    let lo = start.max(q_start);
    let hi = match (end, q_end) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let limit = hi.map(|h| (h - lo + 1).max(0));
    Ok((limit, Some(lo).filter(|o| *o > 0)))
}

/// Whether a read is partial (206) and its `Content-Range` (PostgREST's
/// rule): `a-b/N` (`*/N` with no rows; `/*` without a count); partial when
/// a count shows the rows are not all of them; 416 (`*/N`) when the range
/// starts past the end.
fn range_answer(start: i64, len: i64, total: Option<i64>) -> Result<(bool, String), ApiError> {
    let total_text = total.map_or("*".to_string(), |n| n.to_string());
    if let Some(n) = total {
        if start > n {
            let mut e = ApiError::new(
                Code::RangeNotSatisfiable,
                "Range not satisfiable",
                format!("the range starts at row {start}, past the {n} rows that match"),
            );
            e.content_range = Some(format!("*/{n}"));
            return Err(e);
        }
    }
    let range = if len == 0 {
        format!("*/{total_text}")
    } else {
        format!("{}-{}/{total_text}", start, start + len - 1)
    };
    Ok((total.is_some_and(|n| len < n), range))
}

/// `Content-Range` of a PATCH/DELETE: `*/N` (rows touched) with
/// `Prefer: count=exact`, `*/*` otherwise; 406 when a singular write
/// touched other than one row (it was rolled back).
fn write_range(cx: &RequestCx, n: i64, singular: bool) -> Result<HeaderValue, ApiError> {
    if singular && n != 1 {
        return Err(not_one(n));
    }
    let text = match count_mode(cx.headers()) {
        Some(_) => format!("*/{n}"),
        None => "*/*".to_string(),
    };
    Ok(HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("*/*")))
}

/// The written rows in `data`: an array, or the one object when singular.
fn written<T>(
    out: Json<T>,
    mut rows: Vec<serde_json::Map<String, serde_json::Value>>,
    singular: bool,
) -> Json<T> {
    let data = match (singular, rows.len()) {
        (true, 1) => serde_json::Value::Object(rows.remove(0)),
        _ => serde_json::Value::Array(rows.into_iter().map(serde_json::Value::Object).collect()),
    };
    out.with_field("data", data)
}

#[cfg(test)]
#[path = "rest_grammar_golden.rs"]
mod grammar_golden;

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
        // The first value of a kind wins; the applied ones in PostgREST's order.
        let p = Prefer::parse(Some(
            "count=exact, return=representation, missing=default, return=minimal, resolution=ignore-duplicates, missing=null",
        ));
        assert!(!p.minimal);
        assert!(p.missing_default());
        assert_eq!(
            p.applied(true, Some(CountMode::Exact)).unwrap(),
            "resolution=ignore-duplicates, missing=default, return=representation, count=exact"
        );
        assert_eq!(p.applied(false, None).unwrap(), "return=representation");
        assert_eq!(
            Prefer::parse(Some("handling=lenient")).applied(true, None),
            None
        );
        assert!(Prefer::parse(Some("return=headers-only")).minimal);
    }

    #[test]
    fn column_lists() {
        assert_eq!(column_list("a, b"), vec!["a", "b"]);
        assert_eq!(column_list("\"a\",\"b c\""), vec!["a", "b c"]);
        assert_eq!(column_list("\"\""), vec![""]);
        assert!(column_list("").is_empty());
    }

    #[test]
    fn range_answers() {
        assert_eq!(
            range_answer(0, 5, Some(100)).unwrap(),
            (true, "0-4/100".into())
        );
        assert_eq!(
            range_answer(0, 3, Some(3)).unwrap(),
            (false, "0-2/3".into())
        );
        assert_eq!(range_answer(0, 0, Some(0)).unwrap(), (false, "*/0".into()));
        assert_eq!(range_answer(0, 5, None).unwrap(), (false, "0-4/*".into()));
        assert_eq!(
            range_answer(100, 0, Some(100)).unwrap(),
            (true, "*/100".into())
        );
        let e = range_answer(101, 0, Some(100)).unwrap_err();
        assert_eq!(e.code, Code::RangeNotSatisfiable);
        assert_eq!(e.content_range.as_deref(), Some("*/100"));
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("items=0-24").unwrap(), (0, Some(24)));
        assert_eq!(parse_range("5-").unwrap(), (5, None));
        assert!(parse_range("-5").is_err());
        assert!(parse_range("items=5-1").is_err());
        assert!(parse_order("id.sideways").is_err());
    }
}
