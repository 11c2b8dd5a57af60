//! The gateway operation log (issue 19): one `gateway_operation_log` row
//! per data-plane request. The request path only fills a small record and
//! `try_send`s it into a bounded channel (never waits: a full channel drops
//! the record and counts it: `athena_operation_log_entries_total{outcome="dropped"}`
//! in `/metrics`, [`OpLog::series`]); one
//! writer task drains it and inserts up to [`BATCH`] rows per statement at
//! least every [`FLUSH_EVERY`], upserting the statistics tables in the same
//! transaction.
//!
//! What the handler knows and the server does not (the table a body names,
//! the read cache's key) is noted in a task-local cell the server opens
//! around data-plane requests only ([`scope`], [`note_table`]).

use crate::db::Pool;
use crate::domain::DomainError;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot};

/// Rows per `COPY` (at most).
pub const BATCH: usize = 2000;
/// The writer drains the queue on this tick (and at once on a flush). It
/// sleeps in between instead of waiting on the queue: a writer parked on
/// the queue was woken by every request's entry (a task wake-up, often a
/// thread's, per request), which cost the hot path more than the row.
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// Advisory lock key: batches take it shared, `refresh` exclusive, so a
/// rebuild never interleaves with an increment.
pub const STATS_LOCK: i64 = 0x4154_4845_5f53_5431; // "ATHE_ST1"

/// What a handler noted about its request.
#[derive(Default)]
pub struct Note {
    /// The tenant the request ran on, once resolved (`note_client`).
    pub client: Option<Box<str>>,
    /// The request passed its credential and admission checks
    /// (`note_authorized`). Only then is `client` logged: a refused request
    /// (401/403/429) never names, nor creates statistics for, a client.
    pub authorized: bool,
    pub table: Option<Box<str>>,
    pub cache_key: Option<String>,
    pub cached: bool,
}

tokio::task_local! {
    static NOTE: RefCell<Note>;
}

/// Runs `work` with a note cell open; returns its output and the note.
pub async fn scope<F: std::future::Future>(work: F) -> (F::Output, Note) {
    NOTE.scope(RefCell::new(Note::default()), async move {
        let out = work.await;
        let note = NOTE.with(|n| std::mem::take(&mut *n.borrow_mut()));
        (out, note)
    })
    .await
}

/// The table a data-plane request works on (no-op outside a logged request).
pub fn note_table(table: &str) {
    let _ = NOTE.try_with(|n| {
        let mut n = n.borrow_mut();
        if n.table.is_none() {
            n.table = Some(table.into());
        }
    });
}

/// The tenant a data-plane request resolved to (the first one: a pipeline
/// resolves its source's after the header's).
pub fn note_client(name: &str) {
    let _ = NOTE.try_with(|n| {
        let mut n = n.borrow_mut();
        if n.client.is_none() {
            n.client = Some(name.into());
        }
    });
}

/// The request passed (or, re-checked against a body client, not yet)
/// authorization and admission.
pub fn note_authorized(yes: bool) {
    let _ = NOTE.try_with(|n| n.borrow_mut().authorized = yes);
}

/// The read cache's answer for this request.
pub fn note_cache(key: Option<&str>, hit: bool) {
    let _ = NOTE.try_with(|n| {
        let mut n = n.borrow_mut();
        n.cache_key = key.map(str::to_string);
        n.cached = hit;
    });
}

/// The logged operation of a data-plane route (`method`, path template),
/// `None` for every other route (not logged).
pub fn operation_of(method: &str, template: &str) -> Option<&'static str> {
    Some(match (method, template) {
        (_, "/gateway/fetch" | "/gateway/data" | "/data") => "fetch",
        ("GET" | "HEAD", "/rest/v1/{table}") => "fetch",
        ("POST", "/rest/v1/{table}") => "insert",
        ("PATCH", "/rest/v1/{table}") => "update",
        ("DELETE", "/rest/v1/{table}") => "delete",
        (_, "/gateway/insert") => "insert",
        (_, "/gateway/update") => "update",
        (_, "/gateway/delete") => "delete",
        (_, "/gateway/query" | "/gateway/sql" | "/query/sql") => "sql",
        (_, "/query/count") => "count",
        (_, "/gateway/rpc" | "/rpc/{function_name}") => "rpc",
        (_, "/pipelines") => "pipeline",
        _ => return None,
    })
}

/// One request, as the server saw it end.
pub struct Entry {
    pub request_id: String,
    pub operation: &'static str,
    pub method: &'static str,
    pub path: &'static str,
    pub status: u16,
    pub duration_ms: i64,
    pub note: Note,
    pub at: SystemTime,
}

enum Msg {
    Entry(Entry),
    Flush(oneshot::Sender<()>),
}

#[derive(Default)]
pub struct Counters {
    pub queued: AtomicU64,
    pub dropped: AtomicU64,
    pub written: AtomicU64,
    pub failed: AtomicU64,
}

/// The log's sending half (held by the handlers).
pub struct OpLog {
    tx: Option<mpsc::Sender<Msg>>,
    /// Wakes the writer before its tick (a flush).
    wake: Arc<tokio::sync::Notify>,
    pub counters: Arc<Counters>,
}

impl OpLog {
    /// A log that writes nothing (`ATHENA_OPERATION_LOG=off`).
    pub fn off() -> OpLog {
        OpLog {
            tx: None,
            wake: Arc::default(),
            counters: Arc::default(),
        }
    }

    /// The log and its writer task (supervised: restarted on a panic).
    pub fn start(pool: Pool, capacity: usize) -> OpLog {
        let (tx, rx) = mpsc::channel(capacity.max(16));
        let counters: Arc<Counters> = Arc::default();
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let c = counters.clone();
        let wake: Arc<tokio::sync::Notify> = Arc::default();
        let woken = wake.clone();
        crate::supervisor::supervise("operation log writer", Default::default(), move || {
            let (rx, pool, c, woken) = (rx.clone(), pool.clone(), c.clone(), woken.clone());
            async move { writer(rx, pool, c, woken).await }
        });
        OpLog {
            tx: Some(tx),
            wake,
            counters,
        }
    }

    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Never waits: a full channel drops the entry (counted).
    pub fn record(&self, entry: Entry) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(Msg::Entry(entry)) {
            Ok(()) => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Waits (at most `within`) until what was recorded before is written.
    pub async fn flush(&self, within: Duration) {
        let Some(tx) = &self.tx else { return };
        let (done, wait) = oneshot::channel();
        let _ = tokio::time::timeout(within, async {
            if tx.send(Msg::Flush(done)).await.is_ok() {
                self.wake.notify_one();
                let _ = wait.await;
            }
        })
        .await;
    }

    /// `/metrics` series: `(labels, value)`.
    pub fn series(&self) -> Vec<(String, f64)> {
        let c = &self.counters;
        [
            ("queued", &c.queued),
            ("dropped", &c.dropped),
            ("written", &c.written),
            ("failed", &c.failed),
        ]
        .into_iter()
        .map(|(k, v)| (format!("outcome=\"{k}\""), v.load(Ordering::Relaxed) as f64))
        .collect()
    }
}

async fn writer(
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Msg>>>,
    pool: Pool,
    c: Arc<Counters>,
    woken: Arc<tokio::sync::Notify>,
) {
    let mut rx = rx.lock().await;
    let mut batch: Vec<Entry> = Vec::with_capacity(BATCH);
    let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = woken.notified() => {}
        }
        // Everything queued now, a batch at a time; the flushes asked
        // meanwhile are answered once what was queued before them is in.
        loop {
            let mut ended = false;
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(Msg::Entry(e)) => batch.push(e),
                    Ok(Msg::Flush(done)) => waiting.push(done),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        ended = true;
                        break;
                    }
                }
            }
            let full = batch.len() >= BATCH;
            if !batch.is_empty() {
                write_counted(&pool, &mut batch, &c).await;
            }
            if !full {
                futures_done(&mut waiting);
            }
            if ended {
                // Every sender dropped: what was left is written; stop.
                futures_done(&mut waiting);
                std::future::pending::<()>().await;
            }
            if !full {
                break;
            }
        }
    }
}

fn futures_done(waiting: &mut Vec<oneshot::Sender<()>>) {
    for w in waiting.drain(..) {
        let _ = w.send(());
    }
}

async fn write_counted(pool: &Pool, batch: &mut Vec<Entry>, c: &Counters) {
    let n = batch.len() as u64;
    match write(pool, batch).await {
        Ok(()) => {
            c.written.fetch_add(n, Ordering::Relaxed);
        }
        Err(e) => {
            c.failed.fetch_add(n, Ordering::Relaxed);
            tracing::warn!(error = %e, rows = n, "operation log batch not written");
        }
    }
    batch.clear();
}

/// The rows go in with one binary `COPY` (the multi-insert path: far less
/// Postgres CPU per row than an `INSERT … SELECT unnest`); the statistics of
/// exactly those rows are aggregated here in memory and added to the totals
/// with one small upsert per table (`client_statistics`,
/// `client_table_statistics`), in key order (two replicas' batches lock the
/// same rows in the same order; a deadlock left anyway is retried once).
/// All in one transaction under the shared statistics lock, so `refresh`
/// (exclusive) never interleaves with an increment.
const COPY: &str = "COPY gateway_operation_log
  (request_id, client_name, table_name, operation, method, path, status_code,
   duration_ms, error, cached, cache_key, created_at) FROM STDIN BINARY";

const CLIENT_UPSERT: &str = "
INSERT INTO client_statistics AS cs
  (client_name, total_requests, successful_requests, failed_requests, total_cached_requests,
   total_operations, last_request_at, last_operation_at, updated_at)
SELECT c, n, ok, failed, cached, ops, last_at, last_op_at, now()
  FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[],
              $7::timestamptz[], $8::timestamptz[]) AS x(c, n, ok, failed, cached, ops, last_at, last_op_at)
ON CONFLICT (client_name) DO UPDATE SET
  total_requests = cs.total_requests + EXCLUDED.total_requests,
  successful_requests = cs.successful_requests + EXCLUDED.successful_requests,
  failed_requests = cs.failed_requests + EXCLUDED.failed_requests,
  total_cached_requests = cs.total_cached_requests + EXCLUDED.total_cached_requests,
  total_operations = cs.total_operations + EXCLUDED.total_operations,
  last_request_at = GREATEST(cs.last_request_at, EXCLUDED.last_request_at),
  last_operation_at = GREATEST(cs.last_operation_at, EXCLUDED.last_operation_at),
  updated_at = now()";

const TABLE_UPSERT: &str = "
INSERT INTO client_table_statistics AS ts
  (client_name, table_name, operation, total_operations, error_operations, last_operation_at, updated_at)
SELECT c, t, o, n, errors, last_at, now()
  FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::timestamptz[])
       AS x(c, t, o, n, errors, last_at)
ON CONFLICT (client_name, table_name, operation) DO UPDATE SET
  total_operations = ts.total_operations + EXCLUDED.total_operations,
  error_operations = ts.error_operations + EXCLUDED.error_operations,
  last_operation_at = GREATEST(ts.last_operation_at, EXCLUDED.last_operation_at),
  updated_at = now()";

/// A batch's additions to one client's totals.
#[derive(Default)]
struct ClientSum {
    n: i64,
    ok: i64,
    failed: i64,
    cached: i64,
    ops: i64,
    last_at: Option<SystemTime>,
    last_op_at: Option<SystemTime>,
}

/// A batch's additions to one (client, table, operation).
#[derive(Default)]
struct TableSum {
    n: i64,
    errors: i64,
    last_at: Option<SystemTime>,
}

/// The client an entry is counted for: never the raw `X-Athena-Client`, the
/// resolved tenant of an authorized request, else none (no statistics row).
fn client_of(e: &Entry) -> Option<&str> {
    match e.note.authorized {
        true => e.note.client.as_deref(),
        false => None,
    }
}

/// Per (client, table, operation), in key order.
type TableSums<'a> = BTreeMap<(&'a str, &'a str, &'static str), TableSum>;

/// The batch's statistics, in key order.
fn aggregate(batch: &[Entry]) -> (BTreeMap<&str, ClientSum>, TableSums<'_>) {
    let later = |a: Option<SystemTime>, b: SystemTime| Some(a.map_or(b, |a| a.max(b)));
    let mut clients: BTreeMap<&str, ClientSum> = BTreeMap::new();
    let mut tables: TableSums = BTreeMap::new();
    for e in batch {
        let Some(client) = client_of(e) else { continue };
        let failed = e.status >= 400;
        let c = clients.entry(client).or_default();
        c.n += 1;
        c.ok += i64::from(!failed);
        c.failed += i64::from(failed);
        c.cached += i64::from(e.note.cached);
        c.last_at = later(c.last_at, e.at);
        if let Some(table) = e.note.table.as_deref() {
            c.ops += 1;
            c.last_op_at = later(c.last_op_at, e.at);
            let t = tables.entry((client, table, e.operation)).or_default();
            t.n += 1;
            t.errors += i64::from(failed);
            t.last_at = later(t.last_at, e.at);
        }
    }
    (clients, tables)
}

async fn write(pool: &Pool, batch: &[Entry]) -> Result<(), DomainError> {
    use tokio_postgres::binary_copy::BinaryCopyInWriter;
    use tokio_postgres::types::Type;
    let (clients, tables) = aggregate(batch);
    let c_names: Vec<&str> = clients.keys().copied().collect();
    let col = |f: fn(&ClientSum) -> i64| clients.values().map(f).collect::<Vec<i64>>();
    let (c_n, c_ok, c_failed, c_cached, c_ops) = (
        col(|c| c.n),
        col(|c| c.ok),
        col(|c| c.failed),
        col(|c| c.cached),
        col(|c| c.ops),
    );
    let c_last: Vec<Option<SystemTime>> = clients.values().map(|c| c.last_at).collect();
    let c_last_op: Vec<Option<SystemTime>> = clients.values().map(|c| c.last_op_at).collect();
    let t_clients: Vec<&str> = tables.keys().map(|k| k.0).collect();
    let t_tables: Vec<&str> = tables.keys().map(|k| k.1).collect();
    let t_ops: Vec<&str> = tables.keys().map(|k| k.2).collect();
    let t_n: Vec<i64> = tables.values().map(|t| t.n).collect();
    let t_errors: Vec<i64> = tables.values().map(|t| t.errors).collect();
    let t_last: Vec<Option<SystemTime>> = tables.values().map(|t| t.last_at).collect();
    let types = [
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::INT4,
        Type::INT8,
        Type::BOOL,
        Type::BOOL,
        Type::TEXT,
        Type::TIMESTAMPTZ,
    ];
    let mut conn = pool.get().await?;
    let mut retried = false;
    loop {
        let result = async {
            let tx = conn.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock_shared($1)", &[&STATS_LOCK])
                .await?;
            let sink = tx.copy_in(COPY).await?;
            let mut rows = std::pin::pin!(BinaryCopyInWriter::new(sink, &types));
            for e in batch {
                let status = i32::from(e.status);
                rows.as_mut()
                    .write(&[
                        &e.request_id,
                        &client_of(e),
                        &e.note.table.as_deref(),
                        &e.operation,
                        &e.method,
                        &e.path,
                        &status,
                        &e.duration_ms,
                        &(e.status >= 400),
                        &e.note.cached,
                        &e.note.cache_key,
                        &e.at,
                    ])
                    .await?;
            }
            rows.finish().await?;
            if !c_names.is_empty() {
                tx.execute(
                    CLIENT_UPSERT,
                    &[
                        &c_names, &c_n, &c_ok, &c_failed, &c_cached, &c_ops, &c_last, &c_last_op,
                    ],
                )
                .await?;
            }
            if !t_clients.is_empty() {
                tx.execute(
                    TABLE_UPSERT,
                    &[&t_clients, &t_tables, &t_ops, &t_n, &t_errors, &t_last],
                )
                .await?;
            }
            tx.commit().await
        }
        .await;
        match result {
            Err(e)
                if !retried
                    && e.code()
                        == Some(&tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED) =>
            {
                retried = true;
            }
            r => return r.map_err(Into::into),
        }
    }
}
