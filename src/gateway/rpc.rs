//! RPC: calling a tenant's SQL function with named arguments, then shaping
//! its result like a table read (select, filters, order, limit/offset,
//! exact count). The function and its input arguments are resolved in
//! `pg_proc`; argument values are bound as text and cast to the declared
//! types; the result's columns come from Postgres' own description of the
//! call, so filters and order resolve against them like table columns.

use super::filter::Cond;
use super::read::Order;
use super::sql::{self, db_error, Statement};
use crate::db::schema_cache::{Column, Table};
use crate::db::tenants::Tenant;
use crate::domain::identifier::Ident;
use crate::domain::DomainError;
use serde_json::{Map, Value};

#[derive(Debug, Clone)]
pub struct Call {
    pub schema: Ident,
    pub function: Ident,
    pub args: Map<String, Value>,
    pub select: Option<Vec<String>>,
    pub filters: Vec<Cond>,
    pub order: Vec<Order>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    pub count_exact: bool,
}

/// `schema.function` or `function` (+ an explicit schema, default public).
pub fn function_name(name: &str, schema: Option<&str>) -> Result<(Ident, Ident), DomainError> {
    match (name.split_once('.'), schema) {
        (Some((s, f)), None) | (Some((s, f)), Some("public")) => {
            Ok((Ident::parse("schema", s)?, Ident::parse("function", f)?))
        }
        (Some(_), Some(_)) => Err(DomainError::Invalid(
            "give the schema once: `schema.function` or `schema`".into(),
        )),
        (None, s) => Ok((
            Ident::parse("schema", s.unwrap_or("public"))?,
            Ident::parse("function", name)?,
        )),
    }
}

struct Signature {
    /// Input argument (name, type) pairs.
    inputs: Vec<(String, String)>,
    /// `VOLATILE`: the function may write.
    volatile: bool,
}

/// What a call returned.
pub struct Output {
    pub rows: Vec<Map<String, Value>>,
    /// With `count_exact`.
    pub count: Option<i64>,
    /// The function is `VOLATILE`, so it may have written.
    pub may_write: bool,
}

/// Every overload's input arguments.
async fn signatures(
    conn: &tokio_postgres::Client,
    call: &Call,
) -> Result<Vec<Signature>, DomainError> {
    let rows = conn
        .query(
            "SELECT COALESCE(p.proargnames, '{}'), COALESCE(p.proargmodes::text[], '{}'),
                    ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) AS t),
                    p.provolatile = 'v' 
               FROM pg_catalog.pg_proc p
               JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = $1 AND p.proname = $2 AND p.prokind IN ('f', 'p')",
            &[&call.schema.as_str(), &call.function.as_str()],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let names: Vec<String> = r.get(0);
            let modes: Vec<String> = r.get(1);
            let types: Vec<String> = r.get(2);
            // proargnames covers all arguments (OUT too); proargtypes only inputs.
            let input_names: Vec<String> = if modes.is_empty() {
                names.into_iter().take(types.len()).collect()
            } else {
                names
                    .into_iter()
                    .zip(modes)
                    .filter(|(_, m)| matches!(m.as_str(), "i" | "b" | "v"))
                    .map(|(n, _)| n)
                    .collect()
            };
            Signature {
                inputs: input_names.into_iter().zip(types).collect(),
                volatile: r.get(3),
            }
        })
        .collect())
}

/// Runs the call: (rows, exact count when asked).
pub async fn call(tenant: &Tenant, call: &Call, max_rows: i64) -> Result<Output, DomainError> {
    let mut conn = tenant.pool.get().await?;
    let overloads = signatures(&conn, call).await?;
    if overloads.is_empty() {
        return Err(DomainError::UnknownFunction(format!(
            "{}.{}",
            call.schema.as_str(),
            call.function.as_str()
        )));
    }
    let signature = overloads
        .iter()
        .find(|s| {
            call.args
                .keys()
                .all(|k| s.inputs.iter().any(|(n, _)| n == k))
        })
        .ok_or_else(|| {
            let unknown: Vec<&str> = call.args.keys().map(String::as_str).collect();
            DomainError::Invalid(format!(
                "no overload of the function takes the arguments {unknown:?}"
            ))
        })?;

    let mut st = Statement::new();
    let mut args = Vec::with_capacity(call.args.len());
    for (name, value) in &call.args {
        let ty = &signature
            .inputs
            .iter()
            .find(|(n, _)| n == name)
            .expect("checked above")
            .1;
        let ident = Ident::parse("argument", name)?;
        let p = st.bind(super::filter::json_text(value));
        args.push(format!("{ident} => {p}::text::{ty}"));
    }
    let base = format!(
        "SELECT * FROM {}.{}({})",
        call.schema,
        call.function,
        args.join(", ")
    );

    // The result's columns, as Postgres describes them, for select/filters/order.
    // Cached per connection like every statement: repeated calls describe
    // the function's result once.
    let described = conn
        .prepare_cached(&base, &st.types)
        .await
        .map_err(db_error)?;
    let table = Table {
        columns: described
            .columns()
            .iter()
            .map(|c| {
                Ok(Column {
                    name: c.name().to_string(),
                    type_name: type_name(c.type_())?,
                })
            })
            .collect::<Result<_, DomainError>>()?,
    };

    let projection = sql::projection(&table, call.select.as_deref())?;
    let mut filtered = format!("SELECT * FROM ({base}) q0");
    if let Some(w) = sql::where_clause(&mut st, &call.filters, &table)? {
        filtered.push_str(" WHERE ");
        filtered.push_str(&w);
    }
    let mut page = format!("SELECT {projection} FROM base");
    if !call.order.is_empty() {
        let mut parts = Vec::new();
        for o in &call.order {
            let col = sql::column_ident(&table, &o.column)?.0;
            parts.push(format!(
                "{col} {}",
                if o.descending { "DESC" } else { "ASC" }
            ));
        }
        page.push_str(" ORDER BY ");
        page.push_str(&parts.join(", "));
    }
    if call.limit.is_some_and(|l| l < 0) || call.offset.is_some_and(|o| o < 0) {
        return Err(DomainError::Invalid(
            "limit and offset must not be negative".into(),
        ));
    }
    let limit = st.bind(call.limit.unwrap_or(max_rows).clamp(0, max_rows));
    page.push_str(&format!(" LIMIT {limit}"));
    if let Some(offset) = call.offset {
        let p = st.bind(offset);
        page.push_str(&format!(" OFFSET {p}"));
    }
    // The CTE runs the function once even when the count needs it too.
    let count = if call.count_exact {
        "(SELECT count(*) FROM base)"
    } else {
        "NULL::bigint"
    };
    st.sql = format!(
        "WITH base AS MATERIALIZED ({filtered}) SELECT (SELECT coalesce(json_agg(t), '[]'::json) FROM ({page}) t)::text, {count}"
    );
    // The function is described by a separate prepare above, so this shape
    // is often new; the cache still pays off for repeated calls.
    let rows = sql::run_cached(&mut conn, &st).await?;
    let row = rows
        .first()
        .ok_or_else(|| DomainError::Internal("RPC statement returned no row".into()))?;
    let text: String = row.get(0);
    let count: Option<i64> = row.get(1);
    let rows = serde_json::from_str(&text)
        .map_err(|e| DomainError::Internal(format!("json_agg output: {e}")))?;
    Ok(Output {
        rows,
        count,
        may_write: signature.volatile,
    })
}

/// `"schema"."type"` for a described column: a cast target that needs no
/// search_path (array types keep their internal `_name`).
fn type_name(ty: &tokio_postgres::types::Type) -> Result<String, DomainError> {
    Ok(format!(
        "{}.{}",
        Ident::parse("schema", ty.schema())?,
        Ident::parse("type", ty.name())?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names() {
        let (s, f) = function_name("app.total", None).unwrap();
        assert_eq!((s.as_str(), f.as_str()), ("app", "total"));
        let (s, f) = function_name("total", Some("app")).unwrap();
        assert_eq!((s.as_str(), f.as_str()), ("app", "total"));
        let (s, _) = function_name("total", None).unwrap();
        assert_eq!(s.as_str(), "public");
        assert!(function_name("a.b", Some("c")).is_err());
    }
}
