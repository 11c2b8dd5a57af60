//! Raw SQL on a tenant (`/gateway/query`, `/gateway/sql`, `/query/sql`).
//! Only callers holding the raw-SQL right get here (when API keys are
//! enforced). The boundary holds by construction: one statement per
//! request through the extended protocol, on connections that log in as
//! `ATHENA_RAW_SQL_ROLE` when it is set (a role cannot `RESET ROLE` or
//! `set_config('role', …)` its way above its login), each request in its
//! own transaction, and the session reset (`DISCARD ALL`) before the
//! connection is reused.

use super::sql;
use crate::db::tenants::Tenant;
use crate::domain::identifier::Ident;
use crate::domain::DomainError;
use serde_json::{Map, Value};
use tokio_postgres::SimpleQueryMessage;

#[derive(Debug, Clone, Default)]
pub struct Options<'a> {
    /// `SET LOCAL search_path` to this schema (then `public`).
    pub schema: Option<&'a Ident>,
    /// Most rows answered (`ATHENA_MAX_ROWS`); more are cut and
    /// `truncated` says so. 0 = the default cap.
    pub max_rows: i64,
    /// Values of `$1…$n`, bound in text form (Postgres converts each to
    /// its parameter's type).
    pub params: &'a [Value],
}

/// A parameter sent in text format: Postgres parses it as the type it
/// inferred for the placeholder, exactly as a typed literal would be.
#[derive(Debug)]
struct TextParam(Option<String>);

impl TextParam {
    fn of(v: &Value) -> TextParam {
        TextParam(match v {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        })
    }
}

impl tokio_postgres::types::ToSql for TextParam {
    fn to_sql(
        &self,
        _ty: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match &self.0 {
            None => Ok(tokio_postgres::types::IsNull::Yes),
            Some(s) => {
                out.extend_from_slice(s.as_bytes());
                Ok(tokio_postgres::types::IsNull::No)
            }
        }
    }

    fn accepts(_ty: &tokio_postgres::types::Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &tokio_postgres::types::Type) -> tokio_postgres::types::Format {
        tokio_postgres::types::Format::Text
    }

    tokio_postgres::types::to_sql_checked!();
}

/// A value that does not convert to its parameter's type names the
/// parameter (Postgres' context says `… parameter $n = '…'`).
fn param_error(e: tokio_postgres::Error) -> DomainError {
    if let Some(db) = e.as_db_error() {
        if let Some(context) = db.where_().filter(|w| w.contains("parameter $")) {
            return DomainError::Invalid(format!("{} ({context})", db.message()));
        }
    }
    db_error(e)
}

/// Errors of caller SQL are the caller's: whatever Postgres refuses
/// (unknown prepared statement, invalid transaction state, a raised
/// exception, …) is a 400/403/409, never a 500; only the server's own
/// failures (internal errors, system errors, configuration files) and
/// unavailability stay what `DomainError::from` makes them.
fn db_error(e: tokio_postgres::Error) -> DomainError {
    let callers = e
        .as_db_error()
        .filter(|d| !matches!(&d.code().code()[..2], "XX" | "58" | "F0"))
        .map(|d| d.message().to_string());
    match (sql::db_error(e), callers) {
        (DomainError::Internal(_), Some(message)) => DomainError::Invalid(message),
        (other, _) => other,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub rows: Vec<Map<String, Value>>,
    pub rows_affected: u64,
    /// More rows than `max_rows` were produced; `rows` holds the first.
    pub truncated: bool,
}

/// The cap when the caller gives none.
const DEFAULT_MAX_ROWS: i64 = 1000;

/// The statement without trailing semicolons and whitespace.
fn trimmed(sql: &str) -> &str {
    sql.trim()
        .trim_end_matches(|c: char| c == ';' || c.is_whitespace())
}

/// First keyword, upper-cased (`select`, `with`, `insert`, …).
fn keyword(sql: &str) -> String {
    sql.trim_start_matches(|c: char| c.is_whitespace() || c == '(')
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase()
}

/// Runs one statement of caller SQL on the tenant's raw-SQL connections
/// (`Tenant::raw_pool`: logged in as `ATHENA_RAW_SQL_ROLE` when set) in a
/// transaction of its own, then resets the connection's session with
/// `DISCARD ALL` before it goes back to the pool. Only the extended
/// protocol carries caller text, and Postgres' parser refuses several
/// commands in one prepared statement, so `COMMIT; …`, `RESET ROLE; …`
/// and other multi-statement texts never run (400).
pub async fn execute(
    tenant: &Tenant,
    sql: &str,
    opts: Options<'_>,
) -> Result<Outcome, DomainError> {
    let sql = trimmed(sql);
    if sql.is_empty() {
        return Err(DomainError::Invalid("query is empty".into()));
    }
    let mut conn = tenant.raw_pool.get().await?;
    // Tainted until the session is reset: if this future is dropped
    // mid-statement (client gone, deadline), the pool discards the
    // connection instead of handing out its session state.
    conn.taint();
    let outcome = in_transaction(&mut conn, sql, &opts).await;
    // Whatever the statement did to the session (SET, PREPARE, advisory
    // locks, LISTEN, temp tables), the next user does not see it.
    conn.reset_session().await;
    outcome
}

async fn in_transaction(
    conn: &mut crate::db::conn::Conn,
    sql: &str,
    opts: &Options<'_>,
) -> Result<Outcome, DomainError> {
    let max_rows = if opts.max_rows > 0 {
        opts.max_rows
    } else {
        DEFAULT_MAX_ROWS
    };
    let tx = conn.transaction().await?;
    if let Some(schema) = opts.schema {
        tx.batch_execute(&format!("SET LOCAL search_path TO {schema}, public"))
            .await
            .map_err(db_error)?;
    }
    let params: Vec<TextParam> = opts.params.iter().map(TextParam::of).collect();
    let binds: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
        .iter()
        .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect();
    let outcome = match tx.prepare(sql).await {
        Ok(stmt) if stmt.params().len() != binds.len() => {
            return Err(DomainError::Invalid(format!(
                "the query has {} parameter(s) ($1…) but params has {} value(s)",
                stmt.params().len(),
                binds.len()
            )));
        }
        Ok(stmt) if stmt.columns().is_empty() => {
            let n = tx.execute(&stmt, &binds).await.map_err(param_error)?;
            Outcome {
                rows: Vec::new(),
                rows_affected: n,
                truncated: false,
            }
        }
        Ok(_) => single_with_rows(&tx, sql, max_rows, &binds).await?,
        Err(e)
            if e.as_db_error()
                .is_some_and(|d| d.message().contains("multiple commands")) =>
        {
            return Err(DomainError::Invalid(
                "one SQL statement per request: send each statement on its own".into(),
            ));
        }
        Err(e) => return Err(db_error(e)),
    };
    tx.commit().await.map_err(db_error)?;
    Ok(outcome)
}

/// Lets Postgres build typed JSON: a read is wrapped as a subquery, a
/// data-modifying statement with RETURNING as a CTE. Anything that cannot
/// be wrapped (SHOW, EXPLAIN, WITH … INSERT) falls back to text values.
/// The statement was prepared alone first, so it is exactly one statement.
async fn single_with_rows(
    tx: &tokio_postgres::Transaction<'_>,
    sql: &str,
    max_rows: i64,
    binds: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Outcome, DomainError> {
    // The newline keeps a trailing `-- comment` from swallowing the `)`.
    let keyword = keyword(sql);
    let modifying = matches!(keyword.as_str(), "INSERT" | "UPDATE" | "DELETE" | "MERGE");
    let wrapped = match keyword.as_str() {
        "SELECT" | "VALUES" | "TABLE" | "WITH" => Some(format!(
            "SELECT coalesce(json_agg(q), '[]'::json)::text, count(*) \
             FROM (SELECT * FROM (\n{sql}\n) q0 LIMIT {}) q",
            max_rows + 1
        )),
        _ if modifying => Some(format!(
            "WITH q AS (\n{sql}\n) SELECT coalesce((SELECT json_agg(r) \
             FROM (SELECT * FROM q LIMIT {}) r), '[]'::json)::text, (SELECT count(*) FROM q)",
            max_rows + 1
        )),
        _ => None,
    };
    if let Some(wrapped) = wrapped {
        // A savepoint so a failed wrap leaves the transaction usable.
        tx.batch_execute("SAVEPOINT athena_wrap")
            .await
            .map_err(db_error)?;
        match tx.query_one(wrapped.as_str(), binds).await {
            Ok(row) => {
                let text: String = row.get(0);
                let count: i64 = row.get(1);
                let mut rows: Vec<Map<String, Value>> = serde_json::from_str(&text)
                    .map_err(|e| DomainError::Internal(format!("json_agg output: {e}")))?;
                let truncated = rows.len() as i64 > max_rows;
                rows.truncate(max_rows as usize);
                return Ok(Outcome {
                    rows,
                    rows_affected: if modifying { count as u64 } else { 0 },
                    truncated,
                });
            }
            Err(e) => {
                let state = e.code().map(|c| c.code().to_string());
                tx.batch_execute("ROLLBACK TO SAVEPOINT athena_wrap")
                    .await
                    .map_err(db_error)?;
                // Only "cannot be wrapped" errors fall through; real errors
                // (unknown table, bad cast) are the caller's.
                if !matches!(state.as_deref(), Some("42601" | "0A000" | "42P10")) {
                    return Err(param_error(e));
                }
            }
        }
    }
    if !binds.is_empty() {
        // The simple protocol carries no parameters.
        return Err(DomainError::Invalid(
            "params are supported for queries and writes, not for this kind of statement".into(),
        ));
    }
    simple(tx, sql, max_rows).await
}

/// One statement (checked by the prepare before) whose rows cannot be
/// wrapped: its values come back as text. Rows are read as a stream and
/// reading stops past the cap, so a huge result never sits in memory.
async fn simple(
    tx: &tokio_postgres::Transaction<'_>,
    sql: &str,
    max_rows: i64,
) -> Result<Outcome, DomainError> {
    use futures_util::StreamExt;
    let stream = tx.client().simple_query_raw(sql).await.map_err(db_error)?;
    let mut stream = std::pin::pin!(stream);
    let mut outcome = Outcome {
        rows: Vec::new(),
        rows_affected: 0,
        truncated: false,
    };
    while let Some(message) = stream.next().await {
        match message.map_err(db_error)? {
            SimpleQueryMessage::Row(_) if outcome.rows.len() as i64 >= max_rows => {
                outcome.truncated = true;
                // The rest of the answer is discarded by the connection;
                // the transaction is committed or rolled back after it.
                break;
            }
            SimpleQueryMessage::Row(row) => {
                let mut obj = Map::new();
                for (i, col) in row.columns().iter().enumerate() {
                    let v = row
                        .get(i)
                        .map(|s| Value::String(s.to_string()))
                        .unwrap_or(Value::Null);
                    obj.insert(col.name().to_string(), v);
                }
                outcome.rows.push(obj);
            }
            // A read's row count is not "affected".
            SimpleQueryMessage::CommandComplete(n) if outcome.rows.is_empty() => {
                outcome.rows_affected = n;
            }
            _ => {}
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_shape() {
        assert_eq!(trimmed("  select 1 ;; \n"), "select 1");
        assert_eq!(keyword("  (select 1)"), "SELECT");
        assert_eq!(keyword("insert into t values (1)"), "INSERT");
        assert_eq!(keyword("\n\tWITH x AS (select 1) select * from x"), "WITH");
    }
}
