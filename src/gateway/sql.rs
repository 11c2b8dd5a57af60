//! SQL building blocks shared by reads and writes: statements with bind
//! parameters, predicates from condition trees, value expressions cast to a
//! column's catalog type, and the one place tenant statements are run.

use super::filter::{check_type_name, json_text, Cond, Filter, FilterValue, Operator, MAX_DEPTH};
use crate::db::conn::Conn;
use crate::db::schema_cache::{Column, Table};
use crate::db::tenants::Tenant;
use crate::domain::identifier::Ident;
use crate::domain::DomainError;
use serde_json::Value;
use tokio_postgres::types::{ToSql, Type};

/// A bind parameter whose wire type is known up front, so a statement goes
/// out with `query_typed`: Parse, Bind and Execute in one round trip instead
/// of a separate prepare. Values are text (cast in SQL to the column's
/// type), text arrays, or integers for limits.
pub trait Param: ToSql + Sync + Send + 'static {
    const TYPE: Type;
}

impl Param for String {
    const TYPE: Type = Type::TEXT;
}

impl Param for Option<String> {
    const TYPE: Type = Type::TEXT;
}

impl Param for Vec<String> {
    const TYPE: Type = Type::TEXT_ARRAY;
}

impl Param for i64 {
    const TYPE: Type = Type::INT8;
}

/// SQL text plus its bind parameters and their types.
pub struct Statement {
    pub sql: String,
    pub params: Vec<Box<dyn ToSql + Sync + Send>>,
    pub(crate) types: Vec<Type>,
}

impl Default for Statement {
    fn default() -> Self {
        Statement::new()
    }
}

impl Statement {
    pub fn new() -> Statement {
        Statement {
            sql: String::new(),
            params: Vec::new(),
            types: Vec::new(),
        }
    }

    pub fn bind<T: Param>(&mut self, value: T) -> String {
        self.params.push(Box::new(value));
        self.types.push(T::TYPE);
        format!("${}", self.params.len())
    }

    /// The parameters with their types, as `query_typed` takes them.
    pub fn typed(&self) -> Vec<(&(dyn ToSql + Sync), Type)> {
        self.params
            .iter()
            .zip(&self.types)
            .map(|(p, t)| (p.as_ref() as &(dyn ToSql + Sync), t.clone()))
            .collect()
    }
}

/// The quoted identifier of a column resolved in the table.
pub fn column_ident(table: &Table, name: &str) -> Result<(Ident, Column), DomainError> {
    let col = table.column(name)?;
    Ok((Ident::parse("column", &col.name)?, col.clone()))
}

/// `*` or the quoted, resolved list.
pub fn projection(table: &Table, columns: Option<&[String]>) -> Result<String, DomainError> {
    match columns {
        None => Ok("*".into()),
        Some(cols) if cols.is_empty() || cols.iter().all(|c| c == "*") => Ok("*".into()),
        Some(cols) => {
            let mut out = Vec::with_capacity(cols.len());
            for c in cols {
                let ident = column_ident(table, c)?.0.to_string();
                // Named twice, returned once: rows are served as Postgres
                // writes them, and an object has one value per key.
                if !out.contains(&ident) {
                    out.push(ident);
                }
            }
            Ok(out.join(", "))
        }
    }
}

/// `a, b` / `["a","b"]` → names (empty entries dropped).
pub fn split_columns(s: &str) -> Vec<String> {
    s.split(',')
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect()
}

/// A JSON value as an expression of the column's type, bound as text:
/// null → NULL, scalars → their text, documents → their JSON text (JSON
/// arrays become SQL arrays for array columns).
pub fn value_expr(st: &mut Statement, col: &Column, v: &Value) -> String {
    let ty = &col.type_name;
    match v {
        Value::Array(_) if ty.ends_with("[]") => {
            let p = st.bind(v.to_string());
            format!("ARRAY(SELECT jsonb_array_elements_text({p}::text::jsonb))::{ty}")
        }
        _ => {
            let p = st.bind(json_text(v));
            format!("{p}::text::{ty}")
        }
    }
}

/// The WHERE expression for a list of conditions (AND); `None` when empty.
pub fn where_clause(
    st: &mut Statement,
    conds: &[Cond],
    table: &Table,
) -> Result<Option<String>, DomainError> {
    if conds.is_empty() {
        return Ok(None);
    }
    let mut parts = Vec::with_capacity(conds.len());
    for c in conds {
        parts.push(cond_sql(st, c, table, 0)?);
    }
    Ok(Some(parts.join(" AND ")))
}

fn cond_sql(
    st: &mut Statement,
    c: &Cond,
    table: &Table,
    depth: usize,
) -> Result<String, DomainError> {
    if depth > MAX_DEPTH {
        return Err(DomainError::Invalid(
            "conditions are nested too deeply".into(),
        ));
    }
    Ok(match c {
        Cond::Filter(f) => predicate(st, f, table)?,
        Cond::Not(inner) => format!("NOT ({})", cond_sql(st, inner, table, depth + 1)?),
        Cond::And(items) | Cond::Or(items) => {
            if items.is_empty() {
                return Err(DomainError::Invalid("empty and/or group".into()));
            }
            let joiner = if matches!(c, Cond::And(_)) {
                " AND "
            } else {
                " OR "
            };
            let mut parts = Vec::with_capacity(items.len());
            for i in items {
                parts.push(cond_sql(st, i, table, depth + 1)?);
            }
            format!("({})", parts.join(joiner))
        }
    })
}

/// One column predicate. The column is resolved in the table; the value is
/// a bind parameter cast to `value_cast`, else `column_cast`, else the
/// column's catalog type.
pub fn predicate(st: &mut Statement, f: &Filter, table: &Table) -> Result<String, DomainError> {
    let (ident, col) = column_ident(table, &f.column)?;
    let column_cast = f.column_cast.as_deref().map(check_type_name).transpose()?;
    let value_cast = f.value_cast.as_deref().map(check_type_name).transpose()?;
    let lhs = match &column_cast {
        Some(t) => format!("{ident}::{t}"),
        None => ident.to_string(),
    };
    let ty: &str = value_cast
        .as_deref()
        .or(column_cast.as_deref())
        .unwrap_or(&col.type_name);
    let cmp = |op: &str, st: &mut Statement, v: &str| {
        format!("{lhs} {op} {}::text::{ty}", st.bind(v.to_string()))
    };
    Ok(match (f.op, &f.value) {
        (Operator::Eq | Operator::Is, FilterValue::Null) => format!("{lhs} IS NULL"),
        (Operator::Neq, FilterValue::Null) => format!("{lhs} IS NOT NULL"),
        (Operator::Eq, FilterValue::Text(v)) => cmp("=", st, v),
        (Operator::Neq, FilterValue::Text(v)) => cmp("<>", st, v),
        (Operator::Gt, FilterValue::Text(v)) => cmp(">", st, v),
        (Operator::Gte, FilterValue::Text(v)) => cmp(">=", st, v),
        (Operator::Lt, FilterValue::Text(v)) => cmp("<", st, v),
        (Operator::Lte, FilterValue::Text(v)) => cmp("<=", st, v),
        (Operator::Like, FilterValue::Text(v)) => {
            format!("{lhs}::text LIKE {}", st.bind(v.clone()))
        }
        (Operator::ILike, FilterValue::Text(v)) => {
            format!("{lhs}::text ILIKE {}", st.bind(v.clone()))
        }
        (Operator::In, FilterValue::List(values)) => {
            // An array column compares element-wise only by its base type.
            let base = ty.strip_suffix("[]").unwrap_or(ty);
            format!("{lhs} = ANY({}::text[]::{base}[])", st.bind(values.clone()))
        }
        (Operator::In, FilterValue::Text(v)) => {
            let base = ty.strip_suffix("[]").unwrap_or(ty);
            format!(
                "{lhs} = ANY({}::text[]::{base}[])",
                st.bind(vec![v.clone()])
            )
        }
        (Operator::Is, FilterValue::Text(v)) => {
            let keyword = match v.to_ascii_lowercase().as_str() {
                "null" => "NULL",
                "true" => "TRUE",
                "false" => "FALSE",
                "unknown" => "UNKNOWN",
                "not_null" | "not null" => "NOT NULL",
                other => {
                    return Err(DomainError::Invalid(format!(
                        "`is` accepts null, true, false or unknown, not `{}`",
                        other.chars().take(40).collect::<String>()
                    )))
                }
            };
            format!("{lhs} IS {keyword}")
        }
        (Operator::Contains | Operator::ContainedBy, value) => {
            let op = if f.op == Operator::Contains {
                "@>"
            } else {
                "<@"
            };
            containment(st, &lhs, ty, op, value)?
        }
        (op, _) => {
            return Err(DomainError::Invalid(format!(
                "operator {op:?} does not take that value on `{}`",
                f.column
            )))
        }
    })
}

/// `@>`/`<@`: arrays compare as arrays of the column's type, json as jsonb,
/// anything else (ranges, …) through the column's own type.
fn containment(
    st: &mut Statement,
    lhs: &str,
    ty: &str,
    op: &str,
    value: &FilterValue,
) -> Result<String, DomainError> {
    let is_array = ty.ends_with("[]");
    let is_json = ty == "json" || ty == "jsonb";
    Ok(match value {
        FilterValue::Null => {
            return Err(DomainError::Invalid(
                "containment needs a value, not null".into(),
            ))
        }
        FilterValue::Json(Value::Array(items)) if is_array => {
            let texts: Vec<String> = items
                .iter()
                .map(|i| {
                    json_text(i).ok_or_else(|| {
                        DomainError::Invalid("array containment cannot contain null".into())
                    })
                })
                .collect::<Result<_, _>>()?;
            format!("{lhs} {op} {}::text[]::{ty}", st.bind(texts))
        }
        FilterValue::List(items) if is_array => {
            format!("{lhs} {op} {}::text[]::{ty}", st.bind(items.clone()))
        }
        FilterValue::Json(v) if is_json => {
            format!("{lhs}::jsonb {op} {}::text::jsonb", st.bind(v.to_string()))
        }
        FilterValue::Text(t) if is_json => {
            format!("{lhs}::jsonb {op} {}::text::jsonb", st.bind(t.clone()))
        }
        FilterValue::Json(v) => format!("{lhs} {op} {}::text::{ty}", st.bind(v.to_string())),
        FilterValue::Text(t) => format!("{lhs} {op} {}::text::{ty}", st.bind(t.clone())),
        FilterValue::List(items) => {
            format!("{lhs} {op} {}::text[]::{ty}", st.bind(items.clone()))
        }
    })
}

/// Tenant errors: data and syntax classes (bad casts, unknown types, ON
/// CONFLICT without a matching constraint, …) are the caller's input, so
/// 400 — never 500; the rest maps as everywhere else.
pub fn db_error(e: tokio_postgres::Error) -> DomainError {
    if let Some(db) = e.as_db_error() {
        let state = db.code().code();
        // Data, syntax, "feature not supported" (a cast to a type without
        // input, e.g. `pg_node_tree`) and program-limit errors are the
        // request's.
        if state.starts_with("22")
            || (state.starts_with("42") && state != "42501")
            || state == "0A000"
            || state.starts_with("54")
        {
            return DomainError::Invalid(db.message().to_string());
        }
    }
    DomainError::from(e)
}

/// Runs a statement whose single row is `(json text, row count)`.
pub async fn query_json(tenant: &Tenant, st: &Statement) -> Result<(Value, i64), DomainError> {
    let mut conn = tenant.pool.get().await?;
    let rows = run_cached(&mut conn, st).await?;
    let (text, count) = json_columns(single_row(&rows)?);
    let value = serde_json::from_str(text)
        .map_err(|e| DomainError::Internal(format!("decoding json output: {e}")))?;
    Ok((value, count))
}

/// Like `query_json` for a statement whose first column is a `json_agg`
/// array of rows: the rows stay Postgres' text (see `JsonRows`).
pub async fn query_rows(tenant: &Tenant, st: &Statement) -> Result<(JsonRows, i64), DomainError> {
    let mut conn = tenant.pool.get().await?;
    let rows = run_cached(&mut conn, st).await?;
    let (text, count) = json_columns(single_row(&rows)?);
    Ok((JsonRows::from_text(text)?, count))
}

/// Runs a `CREATE TABLE IF NOT EXISTS` for one of the gateway's own
/// tenant tables (exactly-once markers), once per process, tenant database
/// and table: later calls return at once. The schema and table DDL run in
/// one transaction under a transaction-scoped advisory lock, so first
/// requests racing (in this process or another replica) queue instead of
/// colliding in the catalog (concurrent `REVOKE` on one schema fails with
/// "tuple concurrently updated"; concurrent `CREATE ... IF NOT EXISTS`
/// with a unique violation).
pub async fn create_own_table(tenant: &Tenant, ddl: &'static str) -> Result<(), DomainError> {
    static CREATED: std::sync::LazyLock<
        std::sync::Mutex<std::collections::HashSet<(String, &'static str)>>,
    > = std::sync::LazyLock::new(Default::default);
    let key = (tenant.uri.clone(), ddl);
    let created = || CREATED.lock().unwrap_or_else(|e| e.into_inner());
    if created().contains(&key) {
        return Ok(());
    }
    let mut conn = tenant.pool.get().await?;
    let tx = conn.transaction().await.map_err(db_error)?;
    tx.batch_execute(&format!(
        "SELECT pg_advisory_xact_lock({OWN_SCHEMA_LOCK});
         CREATE SCHEMA IF NOT EXISTS athena_gateway;
         REVOKE ALL ON SCHEMA athena_gateway FROM PUBLIC;
         {ddl}"
    ))
    .await
    .map_err(db_error)?;
    let owned = crate::db::schema_owned_by_login(&tx, OWN_SCHEMA).await?;
    if !owned {
        return Err(DomainError::Internal(
            "schema athena_gateway in the tenant database is owned by another role".into(),
        ));
    }
    tx.commit().await.map_err(db_error)?;
    created().insert(key);
    Ok(())
}

/// The gateway's own schema in a tenant database (idempotency and
/// deferred-write markers). The data plane cannot name it (the schema cache
/// and caller SQL parsing skip it, RPC refuses it), nobody but its owner may
/// use it, and it is only used when the data-plane login owns it: a schema
/// of that name prepared by another role (e.g. a raw-SQL role planting a
/// trigger) is refused.
pub const OWN_SCHEMA: &str = "athena_gateway";

/// The advisory-lock key serializing `OWN_SCHEMA` DDL in a tenant
/// database ("athena_gw" as an integer).
const OWN_SCHEMA_LOCK: i64 = 0x6174_6865_6e61_6777;

/// The one row a gateway statement answers with.
pub fn single_row(rows: &[tokio_postgres::Row]) -> Result<&tokio_postgres::Row, DomainError> {
    rows.first()
        .ok_or_else(|| DomainError::Internal("statement returned no row".into()))
}

/// The `(json text, count)` columns gateway statements answer with; a
/// statement without the count column (a plain read) counts 0.
pub fn json_columns(row: &tokio_postgres::Row) -> (&str, i64) {
    let count = if row.len() > 1 { row.get(1) } else { 0 };
    (row.get(0), count)
}

/// Runs a statement through the connection's prepared-statement cache. A
/// statement whose result shape changed under it (DDL: "cached plan must
/// not change result type") is prepared afresh once.
pub async fn run_cached(
    conn: &mut Conn,
    st: &Statement,
) -> Result<Vec<tokio_postgres::Row>, DomainError> {
    try_cached(conn, st).await.map_err(db_error)
}

/// `run_cached` with Postgres' own error, for callers that react to the
/// SQLSTATE (e.g. RPC dropping a stale signature).
pub async fn try_cached(
    conn: &mut Conn,
    st: &Statement,
) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    let params: Vec<&(dyn ToSql + Sync)> = st
        .params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let prepared = conn.prepare_cached(&st.sql, &st.types).await?;
    match conn.query(&prepared, &params).await {
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::FEATURE_NOT_SUPPORTED) => {
            conn.forget_statements();
            let prepared = conn.prepare_cached(&st.sql, &st.types).await?;
            conn.query(&prepared, &params).await
        }
        other => other,
    }
}

/// A JSON array of row objects as Postgres wrote it (`json_agg`), served
/// as it is: parsing every row into values only to serialize them again
/// cost more than the query on wide pages. One pass drops the whitespace
/// between tokens (so the body stays as compact as a serialized one),
/// counts the rows and checks the array holds only objects.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonRows {
    text: String,
    len: usize,
}

impl Default for JsonRows {
    fn default() -> Self {
        JsonRows {
            text: "[]".into(),
            len: 0,
        }
    }
}

impl JsonRows {
    pub fn from_text(text: &str) -> Result<JsonRows, DomainError> {
        let bad = |why: &str| DomainError::Internal(format!("json rows from Postgres: {why}"));
        let mut out = Vec::with_capacity(text.len());
        let (mut depth, mut len) = (0usize, 0usize);
        let (mut in_string, mut escaped, mut element_next) = (false, false, false);
        for &b in text.as_bytes() {
            if in_string {
                out.push(b);
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
                continue;
            }
            if matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                continue;
            }
            if depth == 0 && (b != b'[' || !out.is_empty()) {
                return Err(bad("not one array"));
            }
            if element_next && b != b']' {
                // The first token of a top-level element must open an object.
                if b != b'{' {
                    return Err(bad("an element is not an object"));
                }
                len += 1;
                element_next = false;
            }
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    element_next = depth == 1;
                }
                b']' | b'}' => {
                    element_next = false;
                    depth -= 1;
                }
                b',' if depth == 1 => element_next = true,
                _ => {}
            }
            out.push(b);
        }
        if depth != 0 || in_string || out.is_empty() {
            return Err(bad("truncated"));
        }
        let text = String::from_utf8(out).map_err(|_| bad("not UTF-8"))?;
        Ok(JsonRows { text, len })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn into_string(self) -> String {
        self.text
    }

    /// The rows as values, for callers that look inside them.
    pub fn to_rows(&self) -> Result<Vec<serde_json::Map<String, Value>>, DomainError> {
        serde_json::from_str(&self.text)
            .map_err(|e| DomainError::Internal(format!("decoding json rows: {e}")))
    }
}

/// The JSON aggregate of a relation alias `t`.
pub fn json_rows(alias: &str, strip_nulls: bool) -> String {
    if strip_nulls {
        format!("json_strip_nulls(coalesce(json_agg({alias}), '[]'::json))::text")
    } else {
        format!("coalesce(json_agg({alias}), '[]'::json)::text")
    }
}

#[cfg(test)]
mod tests {
    use super::JsonRows;

    #[test]
    fn json_rows_are_compacted_and_counted() {
        // json_agg's own layout, with whitespace inside strings and a jsonb value.
        let text = "[{\"id\":1,\"name\":\"a b\\\" ]}, \"}, \n {\"id\":2,\"doc\": {\"k\": [1, 2]}}]";
        let rows = JsonRows::from_text(text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows.as_str(),
            "[{\"id\":1,\"name\":\"a b\\\" ]}, \"},{\"id\":2,\"doc\":{\"k\":[1,2]}}]"
        );
        let parsed = rows.to_rows().unwrap();
        assert_eq!(parsed[0]["name"], "a b\" ]}, ");
        let empty = JsonRows::from_text("[]").unwrap();
        assert_eq!((empty.len(), empty.as_str()), (0, "[]"));
        assert_eq!(JsonRows::from_text(" [ {} ] ").unwrap().len(), 1);
        assert_eq!(
            JsonRows::from_text("[{\"é\":\"ü\"}]").unwrap().as_str(),
            "[{\"é\":\"ü\"}]"
        );
    }

    #[test]
    fn json_rows_refuse_anything_but_an_array_of_objects() {
        for bad in [
            "",
            "{}",
            "[1]",
            "[{}, 2]",
            "[{}] []",
            "[{}",
            "[{\"a\":\"]}",
            "]",
        ] {
            assert!(JsonRows::from_text(bad).is_err(), "{bad:?}");
        }
    }
}
