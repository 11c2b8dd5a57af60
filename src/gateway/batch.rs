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
//!
//! A window never outlives its callers' request deadlines
//! (`src/http/deadline.rs`): it is flushed before the earliest deadline of
//! the requests in it (leaving them half their remaining time, at most 1 s,
//! to run the statement). A request that was cut or whose caller went away
//! before the statement started is left out (its row is not written); one
//! whose statement started gets its answer, even past its deadline.

use super::sql::{self, json_rows, Statement};
use super::write::{self, InsertQuery, Write, WriteResult};
use crate::db::tenants::Tenant;
use crate::domain::DomainError;
use crate::http::deadline::{self, Deadline, Shield};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

/// Requests per window before it is flushed early.
const MAX_REQUESTS: usize = 200;
/// Bind parameters per statement (Postgres' limit is 65 535).
const MAX_PARAMS: usize = 30_000;
/// The contract's range for the header, in milliseconds.
pub const MAX_WINDOW_MS: i64 = 60_000;
/// Most time kept between a window's flush and a request's deadline.
const MAX_RESERVE: Duration = Duration::from_secs(1);

type Reply = oneshot::Sender<Result<WriteResult, DomainError>>;

struct Item {
    query: InsertQuery,
    values: usize,
    reply: Reply,
    /// The caller's request deadline (none outside a request).
    deadline: Option<Arc<Deadline>>,
}

impl Item {
    /// Whether the item may still be written: its caller waits and its
    /// request was not cut. The shield keeps the request waiting for the
    /// statement from now on.
    fn admit(&self) -> Option<Option<Shield>> {
        if self.reply.is_closed() {
            return None;
        }
        match &self.deadline {
            None => Some(None),
            Some(d) => d.shield().map(Some),
        }
    }
}

/// One open window: requests join until it elapses or fills. Requests
/// join it only under the registry's lock, and its flusher takes the items
/// after removing it from the registry.
struct Window {
    state: Mutex<WindowState>,
    /// Wakes the flusher: the window filled or its flush time moved.
    wake: Notify,
}

struct WindowState {
    items: Vec<Item>,
    /// When the window is flushed: its end, or earlier for a request whose
    /// deadline comes first.
    flush_at: Instant,
    full: bool,
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
        let now = Instant::now();
        let deadline = deadline::current();
        // The latest this request's window may be flushed.
        let due = match &deadline {
            Some(d) => {
                let left = d.at().saturating_duration_since(now);
                (now + window).min(d.at() - (left / 2).min(MAX_RESERVE))
            }
            None => now + window,
        };
        let item = Item {
            query,
            values,
            reply,
            deadline,
        };
        let opened = {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            match open.get(&key).cloned() {
                Some(w) if w.has_room(values) => {
                    w.push(item, due);
                    if !w.has_room(1) {
                        // Full: later requests open the next window.
                        open.remove(&key);
                        w.state().full = true;
                        w.wake.notify_one();
                    }
                    None
                }
                _ => {
                    let w = Arc::new(Window {
                        state: Mutex::new(WindowState {
                            items: Vec::new(),
                            flush_at: due,
                            full: false,
                        }),
                        wake: Notify::new(),
                    });
                    w.push(item, due);
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
                loop {
                    let (flush_at, full) = {
                        let s = w.state();
                        (s.flush_at, s.full)
                    };
                    if full {
                        break;
                    }
                    tokio::select! {
                        () = tokio::time::sleep_until(flush_at) => break,
                        () = w.wake.notified() => {}
                    }
                }
                registry.close(&key, &w);
                let items = std::mem::take(&mut w.state().items);
                flush(&tenant, items).await;
            });
        }
        // A request is left out only once its caller is gone or was cut
        // (and then nobody reads this).
        answer.await.map_err(|_| {
            DomainError::Timeout("the request deadline passed before the insert window ran".into())
        })?
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
    fn state(&self) -> std::sync::MutexGuard<'_, WindowState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn has_room(&self, values: usize) -> bool {
        let s = self.state();
        let used: usize = s.items.iter().map(|i| i.values).sum();
        s.items.len() < MAX_REQUESTS && used + values <= MAX_PARAMS
    }

    /// Adds a request that must be flushed by `due`.
    fn push(&self, item: Item, due: Instant) {
        let mut s = self.state();
        s.items.push(item);
        if due < s.flush_at {
            s.flush_at = due;
            drop(s);
            self.wake.notify_one();
        }
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
        if item.reply.is_closed() || item.deadline.as_ref().is_some_and(|d| d.expired()) {
            continue;
        }
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
    // Whoever was cut or left while the statement was built is left out
    // now; everyone else holds a shield until the statement ran. The
    // statement is built again without them only if someone left.
    let mut shields = Vec::with_capacity(batched.len());
    let mut admitted = Vec::with_capacity(batched.len());
    for item in batched {
        if let Some(shield) = item.admit() {
            shields.push(shield);
            admitted.push(item);
        }
    }
    if admitted.is_empty() {
        return;
    }
    if admitted.len() != ctes.len() {
        drop(shields);
        return Box::pin(flush(tenant, admitted)).await;
    }
    st.sql = format!(
        "WITH {} {} ORDER BY 3",
        ctes.join(", "),
        selects.join(" UNION ALL ")
    );
    match run(tenant, &st, admitted.len()).await {
        Ok(results) => {
            for ((item, result), shield) in admitted.into_iter().zip(results).zip(shields) {
                // Answer before the shield goes: the request then returns
                // this answer rather than its timeout.
                let _ = item.reply.send(Ok(result));
                if let Some(shield) = shield {
                    shield.settle();
                }
            }
        }
        Err(e) => {
            // Nothing was written: the deadlines apply again until each
            // request's own statement starts.
            drop(shields);
            tracing::debug!(error = ?e, requests = admitted.len(), "insert window failed as a whole; retrying each request alone");
            alone(tenant, admitted).await;
        }
    }
}

/// Runs each request as its own statement and answers it; requests cut or
/// abandoned by then are not written.
async fn alone(tenant: &Tenant, items: Vec<Item>) {
    for item in items {
        let Some(shield) = item.admit() else {
            continue;
        };
        let result = write::run(tenant, &Write::Insert(item.query)).await;
        let _ = item.reply.send(result);
        if let Some(shield) = shield {
            shield.settle();
        }
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
            Ok(WriteResult {
                rows,
                affected,
                written: None,
            })
        })
        .collect()
}
