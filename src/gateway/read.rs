//! Reads: one SELECT per request, with Postgres building the JSON array
//! (`json_agg`) so rows are never converted type by type in Rust. Embedded
//! relations (`super::embed`) are correlated subqueries in the same SELECT.

use super::embed::{self, Aliases, Embed, Field, Resolved, BASE_ALIAS};
use super::filter::Cond;
use super::sql::{self, Statement};
use crate::db::schema_cache::Table;
use crate::db::tenants::Tenant;
use crate::domain::identifier::Ident;
use crate::domain::DomainError;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub column: String,
    pub descending: bool,
    pub nulls_first: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct ReadQuery {
    pub schema: Ident,
    pub table: Ident,
    /// `None` selects every column; fields may carry an alias and a cast
    /// (`myId:id::text`).
    pub columns: Option<Vec<Field>>,
    /// Related rows embedded in each row; with embeds, an empty `columns`
    /// returns no base column.
    pub embeds: Vec<Embed>,
    /// Combined with AND.
    pub filters: Vec<Cond>,
    pub order: Vec<Order>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    pub strip_nulls: bool,
}

impl ReadQuery {
    /// Every row and column of a table: no filter, order or paging.
    pub fn table(schema: Ident, table: Ident) -> ReadQuery {
        ReadQuery {
            schema,
            table,
            columns: None,
            embeds: Vec::new(),
            filters: Vec::new(),
            order: Vec::new(),
            limit: None,
            offset: None,
            strip_nulls: false,
        }
    }
}

/// Builds the statement; every column is resolved in `table` first.
pub fn build(q: &ReadQuery, table: &Table, max_rows: i64) -> Result<Statement, DomainError> {
    build_embedded(q, table, &[], max_rows)
}

/// `FROM` and `WHERE` shared by the rows and the count: the base table
/// (aliased once anything is embedded), the filters and the `EXISTS` of
/// `!inner` embeds.
fn from_where(
    st: &mut Statement,
    q: &ReadQuery,
    table: &Table,
    embeds: &[Resolved],
    aliases: &mut Aliases,
) -> Result<String, DomainError> {
    let mut sql = format!(" FROM {}.{}", q.schema, q.table);
    if !embeds.is_empty() {
        sql.push_str(&format!(" AS {BASE_ALIAS}"));
    }
    let mut conds: Vec<String> = sql::where_clause(st, &q.filters, table)?
        .into_iter()
        .collect();
    conds.extend(embed::inner_filters(st, BASE_ALIAS, embeds, aliases)?);
    if !conds.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conds.join(" AND "));
    }
    Ok(sql)
}

/// The base projection: `*` or the resolved columns (aliases and casts
/// rendered), next to the embeds' subqueries, through the one select-list
/// renderer. Without embeds the columns stay unqualified; a plain list
/// (no alias, cast or embed) takes the short path.
fn base_projection(
    st: &mut Statement,
    q: &ReadQuery,
    table: &Table,
    embeds: &[Resolved],
    aliases: &mut Aliases,
    max_rows: i64,
) -> Result<String, DomainError> {
    let fields = q.columns.as_deref().unwrap_or_default();
    if embeds.is_empty() && fields.iter().all(Field::is_plain) {
        return plain_projection(table, q.columns.as_deref());
    }
    let columns = if q.columns.is_none() {
        embed::Columns::star()
    } else {
        embed::columns(table, fields)?
    };
    let alias = if embeds.is_empty() { "" } else { BASE_ALIAS };
    embed::select_list(st, alias, &columns, embeds, aliases, max_rows)
}

/// `*` or the quoted, resolved names (named twice, returned once: an
/// object has one value per key).
fn plain_projection(table: &Table, fields: Option<&[Field]>) -> Result<String, DomainError> {
    let fields = match fields {
        Some(f) if !f.is_empty() && !f.iter().any(Field::is_star) => f,
        _ => return Ok("*".into()),
    };
    let mut out = String::new();
    let mut seen: Vec<&str> = Vec::with_capacity(fields.len());
    for f in fields {
        let col = table.column(&f.column)?;
        if seen.contains(&col.name.as_str()) {
            continue;
        }
        seen.push(&col.name);
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(&Ident::parse("column", &col.name)?.to_string());
    }
    Ok(out)
}

/// The statement with `embeds` (resolved from `q.embeds`) as subqueries.
pub fn build_embedded(
    q: &ReadQuery,
    table: &Table,
    embeds: &[Resolved],
    max_rows: i64,
) -> Result<Statement, DomainError> {
    let (mut st, inner) = build_inner(q, table, embeds, max_rows)?;
    let agg = if q.strip_nulls {
        "json_strip_nulls(coalesce(json_agg(t.*), '[]'::json))"
    } else {
        "coalesce(json_agg(t.*), '[]'::json)"
    };
    st.sql = format!("SELECT {agg}::text FROM ({inner}) t");
    Ok(st)
}

/// The read as ONE ROW PER RESULT ROW (`row_to_json(t.*)::text`), for a
/// reader that streams a big read through a portal (pipelines): the same
/// projection, filters and order as `build_embedded`; no row cap beyond
/// `q.limit`.
pub async fn each_row_statement(tenant: &Tenant, q: &ReadQuery) -> Result<Statement, DomainError> {
    let (table, embeds) = resolve(tenant, q).await?;
    let (mut st, inner) = build_inner(q, &table, &embeds, i64::MAX)?;
    st.sql = format!("SELECT row_to_json(t.*)::text FROM ({inner}) t");
    Ok(st)
}

/// The inner `SELECT … FROM … WHERE … ORDER BY … LIMIT … OFFSET …`.
fn build_inner(
    q: &ReadQuery,
    table: &Table,
    embeds: &[Resolved],
    max_rows: i64,
) -> Result<(Statement, String), DomainError> {
    let mut st = Statement::new();
    let mut aliases = Aliases::default();
    let projection = base_projection(&mut st, q, table, embeds, &mut aliases, max_rows)?;
    let from_where = from_where(&mut st, q, table, embeds, &mut aliases)?;
    let mut inner = format!("SELECT {projection}{from_where}");
    if !q.order.is_empty() {
        let mut parts = Vec::new();
        for o in &q.order {
            let ident = sql::column_ident(table, &o.column)?.0;
            // Qualified, so an embed key equal to the column's name (an
            // output column, which a bare ORDER BY name prefers) is not
            // what gets sorted.
            let col = if embeds.is_empty() {
                ident.to_string()
            } else {
                format!("{BASE_ALIAS}.{ident}")
            };
            let dir = if o.descending { "DESC" } else { "ASC" };
            let nulls = match o.nulls_first {
                Some(true) => " NULLS FIRST",
                Some(false) => " NULLS LAST",
                None => "",
            };
            parts.push(format!("{col} {dir}{nulls}"));
        }
        inner.push_str(" ORDER BY ");
        inner.push_str(&parts.join(", "));
    }
    if let Some(limit) = q.limit {
        if limit < 0 {
            return Err(DomainError::Invalid("limit must not be negative".into()));
        }
    }
    let limit = q.limit.unwrap_or(max_rows).clamp(0, max_rows);
    let limit_param = st.bind(limit);
    inner.push_str(&format!(" LIMIT {limit_param}"));
    if let Some(offset) = q.offset {
        if offset < 0 {
            return Err(DomainError::Invalid("offset must not be negative".into()));
        }
        let p = st.bind(offset);
        inner.push_str(&format!(" OFFSET {p}"));
    }
    Ok((st, inner))
}

/// `count(*)` of the rows the filters match (no paging): `count: "exact"`.
/// `!inner` embeds filter base rows, so they count here too.
pub fn build_count(
    q: &ReadQuery,
    table: &Table,
    embeds: &[Resolved],
) -> Result<Statement, DomainError> {
    let mut st = Statement::new();
    let from_where = from_where(&mut st, q, table, embeds, &mut Aliases::default())?;
    st.sql = format!("SELECT '[]', count(*){from_where}");
    Ok(st)
}

/// What a read returns: rows unless `head`, the count when asked.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ReadResult {
    pub rows: Vec<Map<String, Value>>,
    pub count: Option<i64>,
}

/// Runs the read on the tenant and returns the rows.
pub async fn run(
    tenant: &Tenant,
    q: &ReadQuery,
    max_rows: i64,
) -> Result<Vec<Map<String, Value>>, DomainError> {
    Ok(run_with_count(tenant, q, max_rows, false, false)
        .await?
        .rows)
}

/// The table a read names and its embeds, resolved against the schema
/// cache (once per request: every statement of the read is built from it).
async fn resolve(
    tenant: &Tenant,
    q: &ReadQuery,
) -> Result<(std::sync::Arc<Table>, Vec<embed::Resolved>), DomainError> {
    let table = tenant
        .schema
        .table(&tenant.pool, &q.schema, &q.table)
        .await?;
    let embeds = if q.embeds.is_empty() {
        Vec::new()
    } else {
        let select = embed::Select {
            columns: q.columns.clone().unwrap_or_else(|| vec![Field::plain("*")]),
            embeds: q.embeds.clone(),
        };
        embed::resolve(tenant, &q.schema, &q.table, &select).await?
    };
    Ok((table, embeds))
}

/// The rows statement and, when `count`, the count statement, both built
/// (and so validated) before anything runs. Transactions run them on their
/// own connection.
pub async fn statements(
    tenant: &Tenant,
    q: &ReadQuery,
    max_rows: i64,
    count: bool,
) -> Result<(Statement, Option<Statement>), DomainError> {
    let (table, embeds) = resolve(tenant, q).await?;
    let rows_st = build_embedded(q, &table, &embeds, max_rows)?;
    let count_st = if count {
        Some(build_count(q, &table, &embeds)?)
    } else {
        None
    };
    Ok((rows_st, count_st))
}

/// Rows (skipped when `head`) and, when `count`, the exact match count.
pub async fn run_with_count(
    tenant: &Tenant,
    q: &ReadQuery,
    max_rows: i64,
    count: bool,
    head: bool,
) -> Result<ReadResult, DomainError> {
    let (rows_st, count_st) = statements(tenant, q, max_rows, count).await?;
    let mut out = ReadResult::default();
    if !head {
        let (value, _) = sql::query_json(tenant, &rows_st).await?;
        out.rows = serde_json::from_value(value)
            .map_err(|e| DomainError::Internal(format!("decoding json_agg output: {e}")))?;
    }
    if let Some(st) = count_st {
        out.count = Some(sql::query_json(tenant, &st).await?.1);
    }
    Ok(out)
}

/// `run_with_count` with the rows as Postgres wrote them (`sql::JsonRows`),
/// for answers that serve them as they are instead of parsing every row
/// into values and serializing it again.
pub async fn run_with_count_raw(
    tenant: &Tenant,
    q: &ReadQuery,
    max_rows: i64,
    count: bool,
    head: bool,
) -> Result<(sql::JsonRows, Option<i64>), DomainError> {
    let (rows_st, count_st) = statements(tenant, q, max_rows, count).await?;
    let rows = match head {
        true => sql::JsonRows::default(),
        false => sql::query_rows(tenant, &rows_st).await?.0,
    };
    let count = match count_st {
        Some(st) => Some(sql::query_json(tenant, &st).await?.1),
        None => None,
    };
    Ok((rows, count))
}

// --- Counts for `/rest/v1` (issue 14: `Prefer: count=exact|planned|estimated`) ---

/// How a `/rest/v1` read counts the rows its filters match (PostgREST's
/// `Prefer: count=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountMode {
    /// `count(*)`: one extra statement, the same `FROM`/`WHERE`.
    Exact,
    /// The planner's row estimate (`EXPLAIN` of the count's `FROM`/`WHERE`).
    Planned,
    /// Exact up to `max_rows`, the planner's estimate beyond (PostgREST's
    /// rule): the count is bounded (`LIMIT max_rows + 1`), so it never scans
    /// more than a page's worth past the limit; `EXPLAIN` only when above.
    Estimated,
}

/// `SELECT count(*)` over at most `bound` matching rows.
fn build_bounded_count(
    q: &ReadQuery,
    table: &Table,
    embeds: &[Resolved],
    bound: i64,
) -> Result<Statement, DomainError> {
    let mut st = Statement::new();
    let from_where = from_where(&mut st, q, table, embeds, &mut Aliases::default())?;
    let p = st.bind(bound);
    st.sql = format!("SELECT '[]', count(*) FROM (SELECT 1{from_where} LIMIT {p}) athena_c");
    Ok(st)
}

/// `EXPLAIN` of the rows the filters match; its top node's `rows=` is the
/// planner's estimate.
fn build_explain(
    q: &ReadQuery,
    table: &Table,
    embeds: &[Resolved],
) -> Result<Statement, DomainError> {
    let mut st = Statement::new();
    let from_where = from_where(&mut st, q, table, embeds, &mut Aliases::default())?;
    st.sql = format!("EXPLAIN SELECT 1{from_where}");
    Ok(st)
}

/// The `rows=N` of the first line of a text `EXPLAIN`.
fn plan_rows(first_line: &str) -> Option<i64> {
    let rest = &first_line[first_line.find(" rows=")? + 6..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

async fn planned(tenant: &Tenant, st: &Statement) -> Result<i64, DomainError> {
    let mut conn = tenant.pool.get().await?;
    let rows = sql::run_cached(&mut conn, st).await?;
    let line: &str = rows
        .first()
        .ok_or_else(|| DomainError::Internal("EXPLAIN returned no plan".into()))?
        .get(0);
    plan_rows(line).ok_or_else(|| DomainError::Internal("EXPLAIN without a row estimate".into()))
}

/// The rows as Postgres wrote them and, with `count`, the count the mode
/// asks for; every statement is built (so validated) before any runs.
pub async fn run_counted_raw(
    tenant: &Tenant,
    q: &ReadQuery,
    max_rows: i64,
    count: Option<CountMode>,
) -> Result<(sql::JsonRows, Option<i64>), DomainError> {
    let (table, embeds) = resolve(tenant, q).await?;
    let rows_st = build_embedded(q, &table, &embeds, max_rows)?;
    let exact = match count {
        Some(CountMode::Exact) => Some(build_count(q, &table, &embeds)?),
        _ => None,
    };
    let (bounded, explain) = match count {
        Some(CountMode::Planned) | Some(CountMode::Estimated) => {
            let bounded = match count {
                Some(CountMode::Estimated) => Some(build_bounded_count(
                    q,
                    &table,
                    &embeds,
                    max_rows.saturating_add(1),
                )?),
                _ => None,
            };
            (bounded, Some(build_explain(q, &table, &embeds)?))
        }
        _ => (None, None),
    };
    let rows = sql::query_rows(tenant, &rows_st).await?.0;
    let total = match (exact, bounded, explain) {
        (Some(st), _, _) => Some(sql::query_json(tenant, &st).await?.1),
        (None, Some(st), Some(explain)) => {
            let n = sql::query_json(tenant, &st).await?.1;
            if n <= max_rows {
                Some(n)
            } else {
                Some(planned(tenant, &explain).await?.max(n))
            }
        }
        (None, None, Some(explain)) => Some(planned(tenant, &explain).await?),
        _ => None,
    };
    Ok((rows, total))
}

// --- The rows a `/rest/v1` write returned, rendered as a read (issue 14, writes) ---
// Kept apart from `build_embedded` (and touching nothing of it): the same
// projection and embeds (`base_projection`, the `!inner`
// filters), over a CTE of written rows instead of the table, with no
// filter, order or paging of its own (every written row is answered).

/// `SELECT <json of the select list + embeds> FROM <cte> [AS base]`: the
/// read renderer over the rows of `cte` (the caller's `WITH cte AS (… RETURNING *)`),
/// resolved like a read of `q`'s table. Its parameters are bound first; the
/// caller binds the write's after them.
pub async fn over_written(
    tenant: &Tenant,
    q: &ReadQuery,
    cte: &str,
    max_rows: i64,
) -> Result<Statement, DomainError> {
    let (table, embeds) = resolve(tenant, q).await?;
    build_over_written(q, &table, &embeds, cte, max_rows)
}

/// `over_written` with the table and embeds resolved.
pub fn build_over_written(
    q: &ReadQuery,
    table: &Table,
    embeds: &[Resolved],
    cte: &str,
    max_rows: i64,
) -> Result<Statement, DomainError> {
    let mut st = Statement::new();
    let mut aliases = Aliases::default();
    let projection = base_projection(&mut st, q, table, embeds, &mut aliases, max_rows)?;
    let mut from = format!(" FROM {cte}");
    if !embeds.is_empty() {
        from.push_str(&format!(" AS {BASE_ALIAS}"));
    }
    let inner = embed::inner_filters(&mut st, BASE_ALIAS, embeds, &mut aliases)?;
    if !inner.is_empty() {
        from.push_str(" WHERE ");
        from.push_str(&inner.join(" AND "));
    }
    st.sql = format!(
        "SELECT {} FROM (SELECT {projection}{from}) t",
        sql::json_rows("t.*", q.strip_nulls)
    );
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::schema_cache::Column;
    use crate::gateway::filter::{Filter, FilterValue, Operator};

    fn table() -> Table {
        Table {
            columns: vec![
                Column {
                    name: "id".into(),
                    type_name: "integer".into(),
                },
                Column {
                    name: "na\"me".into(),
                    type_name: "text".into(),
                },
            ],
        }
    }

    fn query(filters: Vec<Filter>) -> ReadQuery {
        let filters = filters.into_iter().map(Cond::from).collect();
        ReadQuery {
            schema: Ident::parse("schema", "public").unwrap(),
            table: Ident::parse("table", "t; drop").unwrap(),
            columns: Some(vec!["id".into(), "na\"me".into()]),
            embeds: vec![],
            filters,
            order: vec![Order {
                column: "id".into(),
                descending: true,
                nulls_first: Some(false),
            }],
            limit: Some(5000),
            offset: Some(2),
            strip_nulls: false,
        }
    }

    #[test]
    fn explain_row_estimates() {
        assert_eq!(
            plan_rows("Seq Scan on t  (cost=0.00..1.05 rows=57 width=4)"),
            Some(57)
        );
        assert_eq!(plan_rows("Result  (cost=0.00..0.01 width=4)"), None);
    }

    #[test]
    fn builds_quoted_sql_with_binds() {
        let f = vec![
            Filter::new(
                "id",
                Operator::Eq,
                FilterValue::Text("1; drop table x".into()),
            ),
            Filter::new(
                "na\"me",
                Operator::In,
                FilterValue::List(vec!["a".into(), "b".into()]),
            ),
            Filter::new("id", Operator::Is, FilterValue::Text("null".into())),
        ];
        let st = build(&query(f), &table(), 100).unwrap();
        assert_eq!(
            st.sql,
            "SELECT coalesce(json_agg(t.*), '[]'::json)::text FROM (SELECT \"id\", \"na\"\"me\" FROM \"public\".\"t; drop\" \
             WHERE \"id\" = $1::text::integer AND \"na\"\"me\" = ANY($2::text[]::text[]) AND \"id\" IS NULL \
             ORDER BY \"id\" DESC NULLS LAST LIMIT $3 OFFSET $4) t"
        );
        assert_eq!(st.params.len(), 4);
    }

    #[test]
    fn unknown_columns_and_bad_values_are_refused() {
        let bad_col = vec![Filter::new(
            "nope",
            Operator::Eq,
            FilterValue::Text("1".into()),
        )];
        assert!(matches!(
            build(&query(bad_col), &table(), 100),
            Err(DomainError::UnknownColumn(_))
        ));
        let bad_is = vec![Filter::new(
            "id",
            Operator::Is,
            FilterValue::Text("1 or 1=1".into()),
        )];
        assert!(matches!(
            build(&query(bad_is), &table(), 100),
            Err(DomainError::Invalid(_))
        ));
    }
}
