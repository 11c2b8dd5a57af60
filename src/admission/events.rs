//! `gateway_admission_events`: the limiter's non-allowed decisions, written
//! off the request path by one batch writer (a bounded channel; rows go in
//! every 200 ms or by 100, in one transaction; a full channel drops the row
//! and counts it), and read by `GET /admin/admission-events`, which first
//! has the writer write what it holds (`flush`): a decision answered before
//! the read is in it.

use crate::db::Pool;
use crate::domain::DomainError;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Rows waiting to be written at most.
const QUEUE: usize = 4_096;
const BATCH: usize = 100;
const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// One decision (`AdmissionEventRecord` without the stored `id`,
/// `created_at` and `event_id`).
#[derive(Debug, Clone)]
pub struct Event {
    pub method: String,
    pub route: String,
    pub client_name: Option<String>,
    pub request_bytes: Option<i64>,
    pub defer_requested: bool,
    pub is_query_route: bool,
    pub decision: String,
    pub reason: Option<String>,
    pub deferred_request_id: Option<String>,
    pub retry_after_seconds: Option<i32>,
    pub window_seconds: Option<i32>,
    pub global_limit_per_window: Option<i64>,
    pub per_client_limit_per_window: Option<i64>,
    pub meta: Value,
}

enum Msg {
    Event(Box<Event>),
    /// Write what is queued, then answer.
    Flush(oneshot::Sender<()>),
}

pub struct EventWriter {
    tx: mpsc::Sender<Msg>,
    dropped: Arc<AtomicU64>,
}

impl EventWriter {
    /// Starts the writer task on the catalog.
    pub fn start(catalog: Pool) -> EventWriter {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(catalog, rx));
        EventWriter {
            tx,
            dropped: Arc::default(),
        }
    }

    /// Queues a row; never waits (a full queue drops it).
    pub fn record(&self, event: Event) {
        if self.tx.try_send(Msg::Event(Box::new(event))).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "admission events dropped (writer queue full)");
            }
        }
    }

    /// Waits (at most `within`) until every row queued before the call is
    /// written.
    pub async fn flush(&self, within: Duration) {
        let (ack, done) = oneshot::channel();
        let sent = tokio::time::timeout(within, self.tx.send(Msg::Flush(ack)));
        if let Ok(Ok(())) = sent.await {
            let _ = tokio::time::timeout(within, done).await;
        }
    }

    /// Rows dropped since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

async fn write_batches(catalog: Pool, mut rx: mpsc::Receiver<Msg>) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let mut acks = Vec::new();
        match rx.recv().await {
            None => return,
            Some(Msg::Event(e)) => batch.push(*e),
            Some(Msg::Flush(ack)) => acks.push(ack),
        }
        let deadline = tokio::time::Instant::now() + FLUSH_EVERY;
        while batch.len() < BATCH && acks.is_empty() {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(Msg::Event(e))) => batch.push(*e),
                Ok(Some(Msg::Flush(ack))) => acks.push(ack),
                Ok(None) | Err(_) => break,
            }
        }
        if !batch.is_empty() {
            if let Err(e) = insert(&catalog, &batch).await {
                tracing::warn!(error = %e, rows = batch.len(), "admission events not written");
            }
            batch.clear();
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

async fn insert(catalog: &Pool, batch: &[Event]) -> Result<(), DomainError> {
    let mut conn = catalog.get().await?;
    let tx = conn.transaction().await?;
    let stmt = tx
        .prepare(
            "INSERT INTO gateway_admission_events
                (event_id, method, route, client_name, request_bytes, defer_requested,
                 is_query_route, decision, reason, deferred_request_id, retry_after_seconds,
                 window_seconds, global_limit_per_window, per_client_limit_per_window, meta)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .await?;
    for e in batch {
        let event_id = uuid::Uuid::new_v4().to_string();
        tx.execute(
            &stmt,
            &[
                &event_id,
                &e.method,
                &e.route,
                &e.client_name,
                &e.request_bytes,
                &e.defer_requested,
                &e.is_query_route,
                &e.decision,
                &e.reason,
                &e.deferred_request_id,
                &e.retry_after_seconds,
                &e.window_seconds,
                &e.global_limit_per_window,
                &e.per_client_limit_per_window,
                &e.meta,
            ],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Filters of a listing; `limit` 1–500.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub decision: Option<String>,
    pub client: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// Events newest first, as `AdmissionEventRecord` objects.
pub async fn list(catalog: &Pool, f: &Filter) -> Result<Vec<Value>, DomainError> {
    let conn = catalog.get().await?;
    let rows = conn
        .query(
            "SELECT id, created_at, event_id, method, route, client_name, request_bytes,
                    defer_requested, is_query_route, decision, reason, deferred_request_id,
                    retry_after_seconds, window_seconds, global_limit_per_window,
                    per_client_limit_per_window, meta
               FROM gateway_admission_events
              WHERE ($1::text IS NULL OR decision = $1)
                AND ($2::text IS NULL OR client_name = $2)
              ORDER BY created_at DESC, id DESC
              LIMIT $3 OFFSET $4",
            &[&f.decision, &f.client, &f.limit, &f.offset],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            json!({
                "id": r.get::<_, i64>(0),
                "created_at": r.get::<_, chrono::DateTime<chrono::Utc>>(1),
                "event_id": r.get::<_, String>(2),
                "method": r.get::<_, String>(3),
                "route": r.get::<_, String>(4),
                "client_name": r.get::<_, Option<String>>(5),
                "request_bytes": r.get::<_, Option<i64>>(6),
                "defer_requested": r.get::<_, bool>(7),
                "is_query_route": r.get::<_, bool>(8),
                "decision": r.get::<_, String>(9),
                "reason": r.get::<_, Option<String>>(10),
                "deferred_request_id": r.get::<_, Option<String>>(11),
                "retry_after_seconds": r.get::<_, Option<i32>>(12),
                "window_seconds": r.get::<_, Option<i32>>(13),
                "global_limit_per_window": r.get::<_, Option<i64>>(14),
                "per_client_limit_per_window": r.get::<_, Option<i64>>(15),
                "meta": r.get::<_, Value>(16),
            })
        })
        .collect())
}
