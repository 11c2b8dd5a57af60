//! RPC: calling a tenant's SQL function with named arguments, then shaping
//! its result like a table read (select, filters, order, limit/offset,
//! exact count). The function and its input arguments are resolved in
//! `pg_proc`; argument values are bound as text and cast to the declared
//! types; the result's columns come from Postgres' own description of the
//! call, so filters and order resolve against them like table columns.
//!
//! Signatures and result descriptions are cached per tenant database
//! (`FUNCTIONS`), so a steady call is one Bind/Execute round trip instead of
//! a catalog query, a describe and the call.

use super::filter::Cond;
use super::read::Order;
use super::sql::{self, db_error, JsonRows, Statement};
use crate::db::conn::Conn;
use crate::db::schema_cache::{Column, Table};
use crate::db::tenants::Tenant;
use crate::domain::identifier::Ident;
use crate::domain::DomainError;
use crate::ttl::TtlCache;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use tokio_postgres::error::SqlState;

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
    pub rows: JsonRows,
    /// With `count_exact`.
    pub count: Option<i64>,
    /// The function is `VOLATILE`, so it may have written.
    pub may_write: bool,
}

/// How long a cached signature is trusted. DDL on a tenant database is not
/// announced to the gateway, so this bounds how late a changed volatility
/// or a new overload is seen; a dropped or recreated function is noticed at
/// once by the error the call gets, and the call is retried afresh.
const SIGNATURE_TTL: Duration = Duration::from_secs(5);
/// Most functions cached, over all tenant databases.
const MAX_FUNCTIONS: usize = 4096;
const MAX_SHAPES: usize = 64;

/// One function of one tenant database: its overloads, and the result
/// columns of each call shape (`SELECT * FROM f(a => …)`) as described.
struct Function {
    overloads: Vec<Signature>,
    results: Mutex<HashMap<String, Arc<Table>>>,
}

/// Functions by tenant database (its URI: signatures belong to the
/// database, whichever client names it) and `"schema"."name"`.
static FUNCTIONS: LazyLock<TtlCache<(String, String), Arc<Function>>> =
    LazyLock::new(|| TtlCache::new(SIGNATURE_TTL, MAX_FUNCTIONS));

fn cached(database: &str, key: &str) -> Option<Arc<Function>> {
    FUNCTIONS.get(&(database.to_string(), key.to_string()))
}

fn remember(database: &str, key: &str, function: Arc<Function>) {
    FUNCTIONS.insert((database.to_string(), key.to_string()), function);
}

fn forget(database: &str, key: &str) {
    FUNCTIONS.remove(&(database.to_string(), key.to_string()));
}

/// Every overload's input arguments, from the catalog.
async fn signatures(conn: &mut Conn, call: &Call) -> Result<Vec<Signature>, DomainError> {
    let statement = conn
        .prepare_cached(
            "SELECT COALESCE(p.proargnames, '{}'), COALESCE(p.proargmodes::text[], '{}'),
                    ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) AS t),
                    p.provolatile = 'v'
               FROM pg_catalog.pg_proc p
               JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = $1 AND p.proname = $2 AND p.prokind IN ('f', 'p')",
            &[],
        )
        .await?;
    let rows = conn
        .query(
            &statement,
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

/// Loads the function's overloads and caches them (a missing function is
/// not cached: it may be created any moment).
async fn load(
    conn: &mut Conn,
    tenant: &Tenant,
    call: &Call,
    key: &str,
) -> Result<Arc<Function>, DomainError> {
    let overloads = signatures(conn, call).await?;
    if overloads.is_empty() {
        return Err(DomainError::not_found(
            "function",
            format!("{}.{}", call.schema.as_str(), call.function.as_str()),
        ));
    }
    let function = Arc::new(Function {
        overloads,
        results: Mutex::default(),
    });
    remember(&tenant.uri, key, function.clone());
    Ok(function)
}

/// Why an attempt failed: `Stale` errors are what a cached signature or
/// description of a function that changed since would cause.
enum Failure {
    Stale(DomainError),
    Final(DomainError),
}

impl From<DomainError> for Failure {
    fn from(e: DomainError) -> Self {
        match e {
            e @ DomainError::UnknownColumn(_) => Failure::Stale(e),
            e => Failure::Final(e),
        }
    }
}

impl Failure {
    fn postgres(e: tokio_postgres::Error) -> Failure {
        let stale = [
            SqlState::UNDEFINED_FUNCTION,
            SqlState::UNDEFINED_COLUMN,
            SqlState::FEATURE_NOT_SUPPORTED,
        ];
        if e.code().is_some_and(|c| stale.contains(c)) {
            Failure::Stale(db_error(e))
        } else {
            Failure::Final(db_error(e))
        }
    }

    fn into_error(self) -> DomainError {
        match self {
            Failure::Stale(e) | Failure::Final(e) => e,
        }
    }
}

/// Runs the call: (rows, exact count when asked). A call that fails the way
/// a stale cache entry would (the function was dropped, recreated or
/// changed) is retried once with the function looked up afresh: the
/// failed statement was rolled back, so its writes are not applied twice.
pub async fn call(tenant: &Tenant, call: &Call, max_rows: i64) -> Result<Output, DomainError> {
    let schema = call.schema.as_str();
    if crate::db::tenants::is_system_schema(schema)
        || !tenant.rpc_schemas.iter().any(|s| s == schema)
    {
        return Err(DomainError::Forbidden(format!(
            "functions of schema `{schema}` are not exposed to RPC (exposed: {})",
            tenant.rpc_schemas.join(", ")
        )));
    }
    let mut conn = tenant.pool.get().await?;
    let key = format!("{}.{}", call.schema, call.function);
    if let Some(function) = cached(&tenant.uri, &key) {
        match attempt(&mut conn, &function, call, max_rows).await {
            Err(Failure::Stale(_)) => {
                forget(&tenant.uri, &key);
                // Statements prepared against the old function go too.
                conn.forget_statements();
            }
            other => return other.map_err(Failure::into_error),
        }
    }
    let function = load(&mut conn, tenant, call, &key).await?;
    attempt(&mut conn, &function, call, max_rows)
        .await
        .map_err(Failure::into_error)
}

async fn attempt(
    conn: &mut Conn,
    function: &Function,
    call: &Call,
    max_rows: i64,
) -> Result<Output, Failure> {
    let signature = function
        .overloads
        .iter()
        .find(|s| {
            call.args
                .keys()
                .all(|k| s.inputs.iter().any(|(n, _)| n == k))
        })
        .ok_or_else(|| {
            let unknown: Vec<&str> = call.args.keys().map(String::as_str).collect();
            // Stale when cached: the function may have been recreated with
            // these arguments.
            Failure::Stale(DomainError::Invalid(format!(
                "no overload of the function takes the arguments {unknown:?}"
            )))
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
    let table = describe(conn, function, &base, &st).await?;

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
        return Err(Failure::Final(DomainError::Invalid(
            "limit and offset must not be negative".into(),
        )));
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
    let rows = sql::try_cached(conn, &st)
        .await
        .map_err(Failure::postgres)?;
    let row = rows.first().ok_or_else(|| {
        Failure::Final(DomainError::Internal(
            "RPC statement returned no row".into(),
        ))
    })?;
    let count: Option<i64> = row.get(1);
    Ok(Output {
        rows: JsonRows::from_text(row.get(0)).map_err(Failure::Final)?,
        count,
        may_write: signature.volatile,
    })
}

/// The result columns of `base`, described once per call shape.
async fn describe(
    conn: &mut Conn,
    function: &Function,
    base: &str,
    st: &Statement,
) -> Result<Arc<Table>, Failure> {
    let results = || function.results.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(table) = results().get(base) {
        return Ok(table.clone());
    }
    // Not kept on the connection: the description is what is cached.
    let described = conn
        .prepare_typed(base, &st.types)
        .await
        .map_err(Failure::postgres)?;
    let table = Arc::new(Table {
        columns: described
            .columns()
            .iter()
            .map(|c| {
                Ok(Column {
                    name: c.name().to_string(),
                    type_name: type_name(c.type_())?,
                })
            })
            .collect::<Result<_, DomainError>>()
            .map_err(Failure::Final)?,
    });
    let mut results = results();
    if results.len() >= MAX_SHAPES {
        results.clear();
    }
    results.insert(base.to_string(), table.clone());
    Ok(table)
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
