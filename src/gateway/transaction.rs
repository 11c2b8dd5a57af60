//! Atomic multi-operation requests (`POST /gateway/transaction`, the SDK's
//! `athena.db.transaction(...)`; not in the contract): fetches, inserts,
//! updates and deletes run in order on one connection inside one
//! transaction, and commit together or not at all.
//!
//! Every statement is built (so every identifier, column and value is
//! checked) before `BEGIN`; a request that cannot be built never opens a
//! transaction. The first failing statement rolls everything back.

use super::read::{self, ReadQuery};
use super::sql::{self, Statement};
use super::write::{self, Write};
use crate::db::tenants::Tenant;
use crate::domain::DomainError;
use serde_json::{Map, Value};
use tokio_postgres::IsolationLevel;

/// Most operations one transaction may carry.
pub const MAX_OPERATIONS: usize = 100;

pub enum Op {
    Fetch {
        query: ReadQuery,
        count: bool,
        head: bool,
    },
    Write(Write),
}

impl Op {
    /// The table a write touches, for cache invalidation.
    pub fn written(&self) -> Option<(&str, &str)> {
        match self {
            Op::Fetch { .. } => None,
            Op::Write(w) => {
                let (schema, table) = w.target();
                Some((schema.as_str(), table.as_str()))
            }
        }
    }

    pub fn writes(&self) -> bool {
        matches!(self, Op::Write(_))
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub isolation: Option<IsolationLevel>,
    pub read_only: bool,
    pub deferrable: bool,
}

/// `read_committed` | `repeatable_read` | `serializable` (the SDK's
/// spellings; spaces and upper case accepted too).
pub fn isolation(name: &str) -> Result<IsolationLevel, DomainError> {
    match name.trim().to_ascii_lowercase().replace([' ', '-'], "_").as_str() {
        "read_committed" => Ok(IsolationLevel::ReadCommitted),
        "repeatable_read" => Ok(IsolationLevel::RepeatableRead),
        "serializable" => Ok(IsolationLevel::Serializable),
        "read_uncommitted" => Ok(IsolationLevel::ReadUncommitted),
        other => Err(DomainError::Invalid(format!(
            "options.isolation_level `{other}` is not one of read_committed, repeatable_read, serializable"
        ))),
    }
}

/// What one operation produced.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct OpResult {
    pub rows: Vec<Map<String, Value>>,
    /// Affected rows for writes, the exact count for fetches that asked.
    pub count: Option<i64>,
}

/// How the transaction ended.
pub enum Outcome {
    /// `replayed`: the idempotency key had already committed; these are the
    /// results stored then, and nothing ran now.
    Committed {
        results: Vec<OpResult>,
        replayed: bool,
    },
    /// Operation `failed` raised `error`; nothing was kept. `done` holds
    /// the results of the operations before it (rolled back too).
    RolledBack {
        done: Vec<OpResult>,
        failed: usize,
        error: DomainError,
    },
}

enum Planned {
    Rows {
        rows: Option<Statement>,
        count: Option<Statement>,
    },
    Write(Statement),
}

async fn plan(tenant: &Tenant, op: &Op, max_rows: i64) -> Result<Planned, DomainError> {
    Ok(match op {
        Op::Fetch { query, count, head } => {
            let (rows, count) = read::statements(tenant, query, max_rows, *count).await?;
            Planned::Rows {
                rows: (!head).then_some(rows),
                count,
            }
        }
        Op::Write(w) => Planned::Write(write::statement(tenant, w).await?),
    })
}

/// Longest accepted idempotency key.
pub const MAX_KEY_LEN: usize = 255;

/// The key as stored: the caller's idempotency key scoped to who sent it
/// (API key id, the admin key, or open access) and the client, so the same
/// key from another caller is another transaction. A JSON array, so no
/// choice of key can collide with another caller's scope.
pub fn scoped_key(caller: Option<&crate::auth::Actor>, client: &str, key: &str) -> String {
    use crate::auth::Actor;
    let who = match caller {
        Some(Actor::Key(k)) => format!("key:{}", k.id),
        Some(Actor::Admin) => "admin".to_string(),
        Some(Actor::Open) | None => "open".to_string(),
    };
    serde_json::to_string(&[who.as_str(), client, key]).unwrap_or_default()
}

/// Runs the operations in order in one transaction. An error before
/// `BEGIN` (an operation that cannot be built) is returned as `Err` with
/// the index of the operation; nothing ran.
///
/// With an idempotency key (writing transactions only), a marker row in
/// the tenant's `athena_gateway.athena_transaction_applied` is inserted in the same
/// transaction and stores the results: a retry of a committed transaction
/// replays them instead of writing again, and a retry racing the first
/// attempt waits on the marker's unique index, then replays or runs.
pub async fn run(
    tenant: &Tenant,
    ops: &[Op],
    options: Options,
    idempotency_key: Option<&str>,
    max_rows: i64,
) -> Result<Outcome, (Option<usize>, DomainError)> {
    let mut planned = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        planned.push(plan(tenant, op, max_rows).await.map_err(|e| (Some(i), e))?);
    }
    let key = idempotency_key.filter(|_| !options.read_only && ops.iter().any(Op::writes));
    if key.is_some() {
        sql::create_own_table(
            tenant,
            "CREATE TABLE IF NOT EXISTS athena_gateway.athena_transaction_applied (
                 idempotency_key text PRIMARY KEY,
                 results         jsonb,
                 applied_at      timestamptz NOT NULL DEFAULT now())",
        )
        .await
        .map_err(|e| (None, e))?;
    }
    let mut conn = tenant.pool.get().await.map_err(|e| (None, e.into()))?;
    let mut builder = conn
        .build_transaction()
        .read_only(options.read_only)
        .deferrable(options.deferrable);
    if let Some(level) = options.isolation {
        builder = builder.isolation_level(level);
    }
    // Dropping an unfinished `Transaction` sends ROLLBACK before the
    // connection serves anyone else, so a timeout mid-way leaks nothing.
    let tx = builder
        .start()
        .await
        .map_err(|e| (None, sql::db_error(e)))?;
    if let Some(key) = key {
        if let Some(results) = claim(&tx, key).await.map_err(|e| (None, e))? {
            tx.rollback().await.map_err(|e| (None, sql::db_error(e)))?;
            return Ok(Outcome::Committed {
                results,
                replayed: true,
            });
        }
    }
    let mut done = Vec::with_capacity(planned.len());
    for (i, p) in planned.iter().enumerate() {
        match execute(&tx, p).await {
            Ok(r) => done.push(r),
            Err(error) => {
                tx.rollback().await.map_err(|e| (None, sql::db_error(e)))?;
                return Ok(Outcome::RolledBack {
                    done,
                    failed: i,
                    error,
                });
            }
        }
    }
    if let Some(key) = key {
        let stored = serde_json::to_value(&done)
            .map_err(|e| (None, DomainError::Internal(format!("storing results: {e}"))))?;
        tx.execute(
            "UPDATE athena_gateway.athena_transaction_applied SET results = $2 WHERE idempotency_key = $1",
            &[&key, &stored],
        )
        .await
        .map_err(|e| (None, sql::db_error(e)))?;
    }
    match tx.commit().await {
        Ok(()) => Ok(Outcome::Committed {
            results: done,
            replayed: false,
        }),
        // A deferred constraint or a serialization failure at COMMIT.
        Err(e) => Ok(Outcome::RolledBack {
            failed: done.len().saturating_sub(1),
            done,
            error: sql::db_error(e),
        }),
    }
}

/// Takes the key for this transaction, or returns the results stored by
/// the transaction that already committed under it.
async fn claim(
    tx: &tokio_postgres::Transaction<'_>,
    key: &str,
) -> Result<Option<Vec<OpResult>>, DomainError> {
    let fresh = tx
        .execute(
            "INSERT INTO athena_gateway.athena_transaction_applied (idempotency_key) VALUES ($1)
             ON CONFLICT (idempotency_key) DO NOTHING",
            &[&key],
        )
        .await
        .map_err(sql::db_error)?;
    if fresh == 1 {
        return Ok(None);
    }
    let stored: Option<Value> = tx
        .query_one(
            "SELECT results FROM athena_gateway.athena_transaction_applied WHERE idempotency_key = $1",
            &[&key],
        )
        .await
        .map_err(sql::db_error)?
        .get(0);
    let results = serde_json::from_value(stored.unwrap_or(Value::Array(Vec::new())))
        .map_err(|e| DomainError::Internal(format!("stored transaction results: {e}")))?;
    Ok(Some(results))
}

async fn execute(
    tx: &tokio_postgres::Transaction<'_>,
    p: &Planned,
) -> Result<OpResult, DomainError> {
    match p {
        Planned::Rows { rows, count } => {
            let mut out = OpResult::default();
            if let Some(st) = rows {
                out.rows = one(tx, st).await?.0;
            }
            if let Some(st) = count {
                out.count = Some(one(tx, st).await?.1);
            }
            Ok(out)
        }
        Planned::Write(st) => {
            let (rows, affected) = one(tx, st).await?;
            Ok(OpResult {
                rows,
                count: Some(affected),
            })
        }
    }
}

/// A statement whose single row is `(json rows, count)`, unprepared: a
/// transaction's connection keeps no statement cache.
async fn one(
    tx: &tokio_postgres::Transaction<'_>,
    st: &Statement,
) -> Result<(Vec<Map<String, Value>>, i64), DomainError> {
    let rows = tx
        .query_typed(&st.sql, &st.typed())
        .await
        .map_err(sql::db_error)?;
    let (text, count) = sql::json_columns(sql::single_row(&rows)?);
    let rows = serde_json::from_str(text)
        .map_err(|e| DomainError::Internal(format!("decoding json output: {e}")))?;
    Ok((rows, count))
}

#[cfg(test)]
mod tests {
    use super::scoped_key;
    use crate::auth::Actor;

    #[test]
    fn keys_are_scoped_to_caller_and_client() {
        let open = scoped_key(Some(&Actor::Open), "shop", "k");
        let admin = scoped_key(Some(&Actor::Admin), "shop", "k");
        assert_ne!(open, admin);
        assert_ne!(open, scoped_key(Some(&Actor::Open), "other", "k"));
        assert_eq!(open, scoped_key(None, "shop", "k"));
        // No key text can reach into another scope.
        assert_ne!(
            scoped_key(Some(&Actor::Open), "shop", "a\",\"b"),
            scoped_key(Some(&Actor::Open), "shop\",\"a", "b")
        );
    }
}
