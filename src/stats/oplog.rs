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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot};

/// Rows per INSERT (at most; a batch is written at least every second).
pub const BATCH: usize = 2000;
/// Longest a logged request waits for its row to be written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
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
    pub counters: Arc<Counters>,
}

impl OpLog {
    /// A log that writes nothing (`ATHENA_OPERATION_LOG=off`).
    pub fn off() -> OpLog {
        OpLog {
            tx: None,
            counters: Arc::default(),
        }
    }

    /// The log and its writer task (supervised: restarted on a panic).
    pub fn start(pool: Pool, capacity: usize) -> OpLog {
        let (tx, rx) = mpsc::channel(capacity.max(16));
        let counters: Arc<Counters> = Arc::default();
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let c = counters.clone();
        crate::supervisor::supervise("operation log writer", Default::default(), move || {
            let (rx, pool, c) = (rx.clone(), pool.clone(), c.clone());
            async move { writer(rx, pool, c).await }
        });
        OpLog {
            tx: Some(tx),
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

async fn writer(rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Msg>>>, pool: Pool, c: Arc<Counters>) {
    let mut rx = rx.lock().await;
    let mut batch: Vec<Entry> = Vec::with_capacity(BATCH);
    let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
    let mut msgs: Vec<Msg> = Vec::with_capacity(BATCH);
    loop {
        let deadline = tokio::time::sleep(FLUSH_EVERY);
        tokio::pin!(deadline);
        // Collect until the batch is full, a flush is asked, or a second passed.
        loop {
            tokio::select! {
                n = rx.recv_many(&mut msgs, BATCH - batch.len()) => {
                    if n == 0 {
                        // Every sender dropped: write what is left and stop.
                        if !batch.is_empty() {
                            write_counted(&pool, &mut batch, &c).await;
                        }
                        futures_done(&mut waiting);
                        std::future::pending::<()>().await;
                    }
                    for m in msgs.drain(..) {
                        match m {
                            Msg::Entry(e) => batch.push(e),
                            Msg::Flush(done) => waiting.push(done),
                        }
                    }
                    if batch.len() >= BATCH || !waiting.is_empty() {
                        break;
                    }
                }
                () = &mut deadline => break,
            }
        }
        if !batch.is_empty() {
            write_counted(&pool, &mut batch, &c).await;
        }
        futures_done(&mut waiting);
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

/// One statement: the rows, then the statistics (upserted in key order, so
/// two replicas' batches lock the same rows in the same order; a deadlock
/// left anyway is retried once, [`write`]) of exactly those rows
/// added to the totals (`client_statistics`, `client_table_statistics`).
const INSERT: &str = "
WITH ins AS (
  INSERT INTO gateway_operation_log
    (request_id, client_name, table_name, operation, method, path, status_code,
     duration_ms, error, cached, cache_key, created_at)
  SELECT r, c, t, o, m, p, s, d, s >= 400, k, ck, a
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                $7::int[], $8::bigint[], $9::bool[], $10::text[], $11::timestamptz[])
         AS x(r, c, t, o, m, p, s, d, k, ck, a)
  RETURNING client_name, table_name, operation, status_code, cached, created_at
), per_client AS (
  INSERT INTO client_statistics AS cs
    (client_name, total_requests, successful_requests, failed_requests, total_cached_requests,
     total_operations, last_request_at, last_operation_at, updated_at)
  SELECT client_name, count(*), count(*) FILTER (WHERE status_code < 400),
         count(*) FILTER (WHERE status_code >= 400), count(*) FILTER (WHERE cached),
         count(*) FILTER (WHERE table_name IS NOT NULL), max(created_at),
         max(created_at) FILTER (WHERE table_name IS NOT NULL), now()
    FROM ins WHERE client_name IS NOT NULL GROUP BY client_name ORDER BY client_name
  ON CONFLICT (client_name) DO UPDATE SET
    total_requests = cs.total_requests + EXCLUDED.total_requests,
    successful_requests = cs.successful_requests + EXCLUDED.successful_requests,
    failed_requests = cs.failed_requests + EXCLUDED.failed_requests,
    total_cached_requests = cs.total_cached_requests + EXCLUDED.total_cached_requests,
    total_operations = cs.total_operations + EXCLUDED.total_operations,
    last_request_at = GREATEST(cs.last_request_at, EXCLUDED.last_request_at),
    last_operation_at = GREATEST(cs.last_operation_at, EXCLUDED.last_operation_at),
    updated_at = now()
)
INSERT INTO client_table_statistics AS ts
  (client_name, table_name, operation, total_operations, error_operations, last_operation_at, updated_at)
SELECT client_name, table_name, operation, count(*), count(*) FILTER (WHERE status_code >= 400),
       max(created_at), now()
  FROM ins WHERE client_name IS NOT NULL AND table_name IS NOT NULL
 GROUP BY client_name, table_name, operation
 ORDER BY client_name, table_name, operation
ON CONFLICT (client_name, table_name, operation) DO UPDATE SET
  total_operations = ts.total_operations + EXCLUDED.total_operations,
  error_operations = ts.error_operations + EXCLUDED.error_operations,
  last_operation_at = GREATEST(ts.last_operation_at, EXCLUDED.last_operation_at),
  updated_at = now()";

async fn write(pool: &Pool, batch: &[Entry]) -> Result<(), DomainError> {
    let text = |f: &dyn Fn(&Entry) -> Option<String>| batch.iter().map(f).collect::<Vec<_>>();
    let request_ids = text(&|e| Some(e.request_id.clone()));
    // Never the raw `X-Athena-Client`: the resolved tenant of an
    // authorized request, else NULL (no statistics row).
    let clients = text(&|e| match e.note.authorized {
        true => e.note.client.as_deref().map(str::to_string),
        false => None,
    });
    let tables = text(&|e| e.note.table.as_deref().map(str::to_string));
    let ops = text(&|e| Some(e.operation.to_string()));
    let methods = text(&|e| Some(e.method.to_string()));
    let paths = text(&|e| Some(e.path.to_string()));
    let keys = text(&|e| e.note.cache_key.clone());
    let statuses: Vec<i32> = batch.iter().map(|e| i32::from(e.status)).collect();
    let durations: Vec<i64> = batch.iter().map(|e| e.duration_ms).collect();
    let cached: Vec<bool> = batch.iter().map(|e| e.note.cached).collect();
    let at: Vec<SystemTime> = batch.iter().map(|e| e.at).collect();
    let mut conn = pool.get().await?;
    let mut retried = false;
    loop {
        let result = async {
            let tx = conn.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock_shared($1)", &[&STATS_LOCK])
                .await?;
            tx.execute(
                INSERT,
                &[
                    &request_ids,
                    &clients,
                    &tables,
                    &ops,
                    &methods,
                    &paths,
                    &statuses,
                    &durations,
                    &cached,
                    &keys,
                    &at,
                ],
            )
            .await?;
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
