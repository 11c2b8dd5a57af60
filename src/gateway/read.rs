//! Reads: one SELECT per request, with Postgres building the JSON array
//! (`json_agg`) so rows are never converted type by type in Rust.

use super::filter::{Filter, FilterValue, Operator};
use crate::db::schema_cache::Table;
use crate::db::tenants::Tenant;
use crate::domain::identifier::Ident;
use crate::domain::DomainError;
use serde_json::{Map, Value};
use tokio_postgres::types::ToSql;

#[derive(Debug, Clone)]
pub struct Order {
    pub column: String,
    pub descending: bool,
    pub nulls_first: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct ReadQuery {
    pub schema: Ident,
    pub table: Ident,
    /// `None` selects every column.
    pub columns: Option<Vec<String>>,
    pub filters: Vec<Filter>,
    pub order: Vec<Order>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    pub strip_nulls: bool,
}

/// SQL text plus its bind parameters.
pub struct Statement {
    pub sql: String,
    pub params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Statement {
    fn bind(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }
}

/// Builds the statement; every column is resolved in `table` first.
pub fn build(q: &ReadQuery, table: &Table, max_rows: i64) -> Result<Statement, DomainError> {
    let mut st = Statement {
        sql: String::new(),
        params: Vec::new(),
    };
    let projection = match &q.columns {
        None => "*".to_string(),
        Some(cols) if cols.is_empty() || (cols.len() == 1 && cols[0] == "*") => "*".to_string(),
        Some(cols) => {
            let mut out = Vec::with_capacity(cols.len());
            for c in cols {
                let col = table.column(c)?;
                out.push(Ident::parse("column", &col.name)?.to_string());
            }
            out.join(", ")
        }
    };
    let mut predicates = Vec::new();
    for f in &q.filters {
        predicates.push(predicate(&mut st, f, table)?);
    }
    let mut inner = format!("SELECT {projection} FROM {}.{}", q.schema, q.table);
    if !predicates.is_empty() {
        inner.push_str(" WHERE ");
        inner.push_str(&predicates.join(" AND "));
    }
    if !q.order.is_empty() {
        let mut parts = Vec::new();
        for o in &q.order {
            let col = Ident::parse("column", &table.column(&o.column)?.name)?;
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
    let agg = if q.strip_nulls {
        "json_strip_nulls(coalesce(json_agg(t), '[]'::json))"
    } else {
        "coalesce(json_agg(t), '[]'::json)"
    };
    st.sql = format!("SELECT {agg}::text FROM ({inner}) t");
    Ok(st)
}

fn predicate(st: &mut Statement, f: &Filter, table: &Table) -> Result<String, DomainError> {
    let col = table.column(&f.column)?;
    let ident = Ident::parse("column", &col.name)?;
    let ty = &col.type_name;
    let cmp = |op: &str, st: &mut Statement, v: &str| {
        format!("{ident} {op} {}::text::{ty}", st.bind(v.to_string()))
    };
    Ok(match (f.op, &f.value) {
        (Operator::Eq, FilterValue::Null) => format!("{ident} IS NULL"),
        (Operator::Neq, FilterValue::Null) => format!("{ident} IS NOT NULL"),
        (Operator::Eq, FilterValue::Text(v)) => cmp("=", st, v),
        (Operator::Neq, FilterValue::Text(v)) => cmp("<>", st, v),
        (Operator::Gt, FilterValue::Text(v)) => cmp(">", st, v),
        (Operator::Gte, FilterValue::Text(v)) => cmp(">=", st, v),
        (Operator::Lt, FilterValue::Text(v)) => cmp("<", st, v),
        (Operator::Lte, FilterValue::Text(v)) => cmp("<=", st, v),
        (Operator::Like, FilterValue::Text(v)) => {
            format!("{ident}::text LIKE {}", st.bind(v.clone()))
        }
        (Operator::ILike, FilterValue::Text(v)) => {
            format!("{ident}::text ILIKE {}", st.bind(v.clone()))
        }
        (Operator::In, FilterValue::List(values)) => {
            // An array column compares element-wise only by its base type.
            let base = ty.strip_suffix("[]").unwrap_or(ty);
            format!(
                "{ident} = ANY({}::text[]::{base}[])",
                st.bind(values.clone())
            )
        }
        (Operator::Is, FilterValue::Text(v)) => {
            let keyword = match v.to_ascii_lowercase().as_str() {
                "null" => "NULL",
                "true" => "TRUE",
                "false" => "FALSE",
                "unknown" => "UNKNOWN",
                other => {
                    return Err(DomainError::Invalid(format!(
                        "`is` accepts null, true, false or unknown, not `{other}`"
                    )))
                }
            };
            format!("{ident} IS {keyword}")
        }
        (Operator::Is, FilterValue::Null) => format!("{ident} IS NULL"),
        (op, _) => {
            return Err(DomainError::Invalid(format!(
                "operator {op:?} does not take that value on `{}`",
                f.column
            )))
        }
    })
}

/// Runs the read on the tenant and returns the rows.
pub async fn run(
    tenant: &Tenant,
    q: &ReadQuery,
    max_rows: i64,
) -> Result<Vec<Map<String, Value>>, DomainError> {
    let table = tenant
        .schema
        .table(&tenant.pool, &q.schema, &q.table)
        .await?;
    let st = build(q, &table, max_rows)?;
    let conn = tenant.pool.get().await?;
    let params: Vec<&(dyn ToSql + Sync)> = st
        .params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let row = conn.query_one(st.sql.as_str(), &params).await?;
    let text: String = row.get(0);
    let rows: Vec<Map<String, Value>> = serde_json::from_str(&text)
        .map_err(|e| DomainError::Internal(format!("decoding json_agg output: {e}")))?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::schema_cache::Column;

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
        ReadQuery {
            schema: Ident::parse("schema", "public").unwrap(),
            table: Ident::parse("table", "t; drop").unwrap(),
            columns: Some(vec!["id".into(), "na\"me".into()]),
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
    fn builds_quoted_sql_with_binds() {
        let f = vec![
            Filter {
                column: "id".into(),
                op: Operator::Eq,
                value: FilterValue::Text("1; drop table x".into()),
            },
            Filter {
                column: "na\"me".into(),
                op: Operator::In,
                value: FilterValue::List(vec!["a".into(), "b".into()]),
            },
            Filter {
                column: "id".into(),
                op: Operator::Is,
                value: FilterValue::Text("null".into()),
            },
        ];
        let st = build(&query(f), &table(), 100).unwrap();
        assert_eq!(
            st.sql,
            "SELECT coalesce(json_agg(t), '[]'::json)::text FROM (SELECT \"id\", \"na\"\"me\" FROM \"public\".\"t; drop\" \
             WHERE \"id\" = $1::text::integer AND \"na\"\"me\" = ANY($2::text[]::text[]) AND \"id\" IS NULL \
             ORDER BY \"id\" DESC NULLS LAST LIMIT $3 OFFSET $4) t"
        );
        assert_eq!(st.params.len(), 4);
    }

    #[test]
    fn unknown_columns_and_bad_values_are_refused() {
        let bad_col = vec![Filter {
            column: "nope".into(),
            op: Operator::Eq,
            value: FilterValue::Text("1".into()),
        }];
        assert!(matches!(
            build(&query(bad_col), &table(), 100),
            Err(DomainError::UnknownColumn(_))
        ));
        let bad_is = vec![Filter {
            column: "id".into(),
            op: Operator::Is,
            value: FilterValue::Text("1 or 1=1".into()),
        }];
        assert!(matches!(
            build(&query(bad_is), &table(), 100),
            Err(DomainError::Invalid(_))
        ));
    }
}
