//! Insert windows (`X-Athena-Insert-Window`, `ATHENA_INSERT_WINDOW_MS`):
//! inserts for the same client that arrive within a window are written by
//! one statement on one connection, instead of one round trip and one
//! commit each.
//!
//! Each request keeps its own `INSERT … RETURNING` as a data-modifying CTE
//! of the shared statement, so every caller gets exactly its own rows back
//! (no reliance on `RETURNING` order) and the statement commits or fails as
//! a whole. When it fails (one request's unique violation, a bad value),
//! every request of the window is retried on its own, so each caller gets
//! its own outcome and nobody's row is lost because of a neighbour's.

use super::sql::{self, json_rows, Statement};
use super::write::{self, InsertQuery, Write, WriteResult};
use crate::db::tenants::Tenant;
use crate::domain::DomainError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, Notify};

/// Requests per window before it is flushed early.
const MAX_REQUESTS: usize = 200;
/// Bind parameters per statement (Postgres' limit is 65 535).
const MAX_PARAMS: usize = 30_000;
/// The contract's range for the header, in milliseconds.
pub const MAX_WINDOW_MS: i64 = 60_000;

type Reply = oneshot::Sender<Result<WriteResult, DomainError>>;

struct Item {
    query: InsertQuery,
    values: usize,
    reply: Reply,
}

/// One open window: requests join until it elapses or fills. Requests
/// join it only under the registry's lock, and its flusher takes the items
/// after removing it from the registry.
struct Window {
    items: Mutex<Vec<Item>>,
    full: Notify,
}

#[derive(Default)]
pub struct InsertWindows {
    /// Open windows by client and window length (callers asking for a
    /// different length never wait on someone else's longer window).
    open: Mutex<HashMap<(String, u64), Arc<Window>>>,
}

impl InsertWindows {
    /// Writes `query` in the client's current window (opening one when none
    /// is open) and waits for its own result. The tenant must be a catalog
    /// client: requests on direct URIs are never pooled with anyone's.
    pub async fn insert(
        self: &Arc<Self>,
        tenant: Arc<Tenant>,
        query: InsertQuery,
        window: Duration,
    ) -> Result<WriteResult, DomainError> {
        let values: usize = query.rows.iter().map(|r| r.len().max(1)).sum();
        let (reply, answer) = oneshot::channel();
        let key = (tenant.name.clone(), window.as_millis() as u64);
        let item = Item {
            query,
            values,
            reply,
        };
        let opened = {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            match open.get(&key).cloned() {
                Some(w) if w.has_room(values) => {
                    w.push(item);
                    if !w.has_room(1) {
                        // Full: later requests open the next window.
                        open.remove(&key);
                        w.full.notify_one();
                    }
                    None
                }
                _ => {
                    let w = Arc::new(Window {
                        items: Mutex::new(Vec::new()),
                        full: Notify::new(),
                    });
                    w.push(item);
                    open.insert(key.clone(), w.clone());
                    Some(w)
                }
            }
        };
        if let Some(w) = opened {
            // The request that opened the window flushes it, in its own task
            // so a caller going away does not strand the others.
            let registry = self.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(window) => {}
                    _ = w.full.notified() => {}
                }
                registry.close(&key, &w);
                let items = std::mem::take(&mut *w.items.lock().unwrap_or_else(|e| e.into_inner()));
                flush(&tenant, items).await;
            });
        }
        answer
            .await
            .map_err(|_| DomainError::Internal("insert window closed without an answer".into()))?
    }

    /// Stops new requests joining `w` (unless a full window already made
    /// way for the next one).
    fn close(&self, key: &(String, u64), w: &Arc<Window>) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.get(key).is_some_and(|current| Arc::ptr_eq(current, w)) {
            open.remove(key);
        }
    }
}

impl Window {
    fn has_room(&self, values: usize) -> bool {
        let items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        let used: usize = items.iter().map(|i| i.values).sum();
        items.len() < MAX_REQUESTS && used + values <= MAX_PARAMS
    }

    fn push(&self, item: Item) {
        self.items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(item);
    }
}

/// Runs a window's inserts: together when there are several, each on its
/// own when there is one or the shared statement fails.
async fn flush(tenant: &Tenant, items: Vec<Item>) {
    if items.len() == 1 {
        alone(tenant, items).await;
        return;
    }
    // Requests whose own statement cannot be built (unknown column, …) are
    // answered at once and left out.
    let mut st = Statement::new();
    let mut ctes = Vec::with_capacity(items.len());
    let mut selects = Vec::with_capacity(items.len());
    let mut batched = Vec::with_capacity(items.len());
    for item in items {
        match cte(tenant, &mut st, &item.query).await {
            Ok(dml) => {
                let i = batched.len();
                ctes.push(format!("w{i} AS ({dml})"));
                // Same columns as a lone insert, plus the request's index.
                selects.push(format!(
                    "SELECT {}, count(*), {i} FROM w{i}",
                    json_rows(&format!("w{i}.*"), item.query.strip_nulls)
                ));
                batched.push(item);
            }
            Err(e) => {
                let _ = item.reply.send(Err(e));
            }
        }
    }
    if batched.is_empty() {
        return;
    }
    st.sql = format!(
        "WITH {} {} ORDER BY 3",
        ctes.join(", "),
        selects.join(" UNION ALL ")
    );
    match run(tenant, &st, batched.len()).await {
        Ok(results) => {
            for (item, result) in batched.into_iter().zip(results) {
                let _ = item.reply.send(Ok(result));
            }
        }
        Err(e) => {
            tracing::debug!(error = ?e, requests = batched.len(), "insert window failed as a whole; retrying each request alone");
            alone(tenant, batched).await;
        }
    }
}

/// Runs each request as its own statement and answers it.
async fn alone(tenant: &Tenant, items: Vec<Item>) {
    for Item { query, reply, .. } in items {
        let _ = reply.send(write::run(tenant, &Write::Insert(query)).await);
    }
}

/// One request's `INSERT … RETURNING`, values bound into the shared
/// statement. Windows only carry plain inserts (no `ON CONFLICT`), so no
/// primary key is needed.
async fn cte(tenant: &Tenant, st: &mut Statement, q: &InsertQuery) -> Result<String, DomainError> {
    let table = write::table_of(tenant, &q.schema, &q.table).await?;
    write::insert_dml(st, q, &table, &[])
}

/// The shared statement, unprepared: its shape depends on who joined the
/// window, so caching it would only push the hot statements out of each
/// connection's cache.
async fn run(tenant: &Tenant, st: &Statement, n: usize) -> Result<Vec<WriteResult>, DomainError> {
    let conn = tenant.pool.get().await?;
    let rows = conn
        .query_typed(&st.sql, &st.typed())
        .await
        .map_err(sql::db_error)?;
    if rows.len() != n {
        return Err(DomainError::Internal(format!(
            "insert window returned {} results for {n} requests",
            rows.len()
        )));
    }
    rows.iter()
        .map(|row| {
            let (text, affected) = sql::json_columns(row);
            let rows = serde_json::from_str(text)
                .map_err(|e| DomainError::Internal(format!("decoding RETURNING rows: {e}")))?;
            Ok(WriteResult { rows, affected })
        })
        .collect()
}
