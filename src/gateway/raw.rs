//! Raw SQL on a tenant (`/gateway/query`, `/gateway/sql`, `/query/sql`,
//! `/query/count`). Only callers holding the raw-SQL right get here (when
//! API keys are enforced). Each request runs in its own transaction so
//! `SET LOCAL` (search_path, role) never leaks to the next user of the
//! pooled connection; reads can be forced read-only by Postgres itself.

use super::sql::db_error;
use crate::db::tenants::Tenant;
use crate::domain::identifier::Ident;
use crate::domain::DomainError;
use serde_json::{Map, Value};
use tokio_postgres::SimpleQueryMessage;

#[derive(Debug, Clone, Default)]
pub struct Options<'a> {
    /// `SET LOCAL search_path` to this schema (then `public`).
    pub schema: Option<&'a Ident>,
    /// `SET LOCAL ROLE`: run as this (non-superuser) role.
    pub role: Option<&'a Ident>,
    /// Postgres refuses any write (`BEGIN READ ONLY`).
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub rows: Vec<Map<String, Value>>,
    pub rows_affected: u64,
    pub statement_count: usize,
}

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

pub async fn execute(
    tenant: &Tenant,
    sql: &str,
    opts: Options<'_>,
) -> Result<Outcome, DomainError> {
    let sql = trimmed(sql);
    if sql.is_empty() {
        return Err(DomainError::Invalid("query is empty".into()));
    }
    let mut conn = tenant.pool.get().await?;
    let tx = conn
        .build_transaction()
        .read_only(opts.read_only)
        .start()
        .await?;
    if let Some(schema) = opts.schema {
        tx.batch_execute(&format!("SET LOCAL search_path TO {schema}, public"))
            .await
            .map_err(db_error)?;
    }
    if let Some(role) = opts.role {
        tx.batch_execute(&format!("SET LOCAL ROLE {role}"))
            .await
            .map_err(db_error)?;
    }
    // A failed prepare aborts the transaction; the savepoint keeps it usable
    // for the multi-statement fallback.
    tx.batch_execute("SAVEPOINT athena_prepare")
        .await
        .map_err(db_error)?;
    let outcome = match tx.prepare(sql).await {
        Ok(stmt) if stmt.columns().is_empty() => {
            let n = tx.execute(&stmt, &[]).await.map_err(db_error)?;
            Outcome {
                rows: Vec::new(),
                rows_affected: n,
                statement_count: 1,
            }
        }
        Ok(_) => single_with_rows(&tx, sql).await?,
        // Several statements cannot be prepared: run them as one simple
        // query (values then come back as text).
        Err(e)
            if e.as_db_error()
                .is_some_and(|d| d.message().contains("multiple commands")) =>
        {
            tx.batch_execute("ROLLBACK TO SAVEPOINT athena_prepare")
                .await
                .map_err(db_error)?;
            simple(&tx, sql).await?
        }
        Err(e) => return Err(db_error(e)),
    };
    tx.commit().await.map_err(db_error)?;
    Ok(outcome)
}

/// Lets Postgres build typed JSON: a read is wrapped as a subquery, a
/// data-modifying statement with RETURNING as a CTE. Anything that cannot
/// be wrapped (SHOW, EXPLAIN, WITH … INSERT) falls back to text values.
async fn single_with_rows(
    tx: &tokio_postgres::Transaction<'_>,
    sql: &str,
) -> Result<Outcome, DomainError> {
    // The newline keeps a trailing `-- comment` from swallowing the `)`.
    let wrapped = match keyword(sql).as_str() {
        "SELECT" | "VALUES" | "TABLE" | "WITH" => Some(format!(
            "SELECT coalesce(json_agg(q), '[]'::json)::text, count(*) FROM (\n{sql}\n) q"
        )),
        "INSERT" | "UPDATE" | "DELETE" | "MERGE" => Some(format!(
            "WITH q AS (\n{sql}\n) SELECT coalesce(json_agg(q), '[]'::json)::text, count(*) FROM q"
        )),
        _ => None,
    };
    if let Some(wrapped) = wrapped {
        // A savepoint so a failed wrap leaves the transaction usable.
        tx.batch_execute("SAVEPOINT athena_wrap")
            .await
            .map_err(db_error)?;
        match tx.query_one(wrapped.as_str(), &[]).await {
            Ok(row) => {
                let text: String = row.get(0);
                let count: i64 = row.get(1);
                let rows = serde_json::from_str(&text)
                    .map_err(|e| DomainError::Internal(format!("json_agg output: {e}")))?;
                let modifying = !matches!(
                    keyword(sql).as_str(),
                    "SELECT" | "VALUES" | "TABLE" | "WITH"
                );
                return Ok(Outcome {
                    rows,
                    rows_affected: if modifying { count as u64 } else { 0 },
                    statement_count: 1,
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
                    return Err(db_error(e));
                }
            }
        }
    }
    simple(tx, sql).await
}

async fn simple(tx: &tokio_postgres::Transaction<'_>, sql: &str) -> Result<Outcome, DomainError> {
    let messages = tx.simple_query(sql).await.map_err(db_error)?;
    let mut outcome = Outcome {
        rows: Vec::new(),
        rows_affected: 0,
        statement_count: 0,
    };
    let mut current: Vec<Map<String, Value>> = Vec::new();
    for m in messages {
        match m {
            SimpleQueryMessage::Row(row) => {
                let mut obj = Map::new();
                for (i, col) in row.columns().iter().enumerate() {
                    let v = row
                        .get(i)
                        .map(|s| Value::String(s.to_string()))
                        .unwrap_or(Value::Null);
                    obj.insert(col.name().to_string(), v);
                }
                current.push(obj);
            }
            SimpleQueryMessage::CommandComplete(n) => {
                outcome.statement_count += 1;
                if current.is_empty() {
                    outcome.rows_affected += n;
                } else {
                    // The rows of the last statement that returned any; a
                    // read's row count is not "affected".
                    outcome.rows = std::mem::take(&mut current);
                }
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
