//! Events out (issue 15): what the gateway publishes after a write, the
//! outbox that carries each event to its subscribers, and the workers that
//! deliver it.
//!
//! - **Publish.** A committed gateway or REST write (and later DDL and
//!   backup outcomes) calls [`Outbox::publish`] with an [`Event`]
//!   `{event_id, route_key, client_name, table_name, occurred_at, data}`.
//!   The enabled subscriptions (webhooks now, sinks later: a [`Source`] per
//!   kind) are matched from an in-process index, so a write nobody
//!   subscribed to costs no catalog statement. With a match, a job per
//!   subscriber is written into `athena_outbox` (migration 0009) before the
//!   write is answered — one `INSERT` for all the writes published at that
//!   moment (group commit, `Outbox::enqueue`). If that fails the write is
//!   answered 503 (it committed, but its events could not be queued) rather
//!   than a 2xx that would hide a lost event.
//! - **Index.** Loaded on first use, kept at most [`INDEX_TTL`], dropped on
//!   every replica when the catalog notifies `athena_events_changed`
//!   (triggers on the subscription tables, `src/db/notify.rs`) or the
//!   change feed is interrupted. A generation counter keeps an index loaded
//!   before an invalidation from being stored after it.
//! - **Deliver.** Workers claim jobs through the shared job/lease module
//!   (`src/jobs/`: `FOR UPDATE SKIP LOCKED`, a run token per claim, stale
//!   takeover), so replicas sharing the catalog deliver each job once, and
//!   a job whose worker died (kill -9) is taken over after `stale_after`.
//!   The job's `target_kind` picks its [`Deliverer`] (`webhook`:
//!   `webhooks::Webhooks`); it answers delivered, retry (jittered
//!   exponential backoff) or failed. A worker killed after the receiver got
//!   the request but before the outcome was recorded delivers it again
//!   after the takeover, with the same `webhook-id`: at least once, with a
//!   stable id receivers deduplicate on (the Standard Webhooks contract).
//! - **Give way.** While the server admits [`BUSY_PER_SEC`] requests a
//!   second or more, the workers rest between batches ([`give_way`]): a burst
//!   of writes is answered at nearly the rate it would be without
//!   subscribers, and its events drain right after it.

pub mod sink_billing;
pub mod sinks;
pub mod webhooks;

use crate::db::Pool;
use crate::domain::DomainError;
use crate::http::load::Load;
use crate::jobs::{Lease, Leases};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use uuid::Uuid;

/// A boxed future (the object-safe traits below).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How long a loaded subscription index is trusted without a notification
/// (bounds a notification lost with no feed interruption noticed).
pub const INDEX_TTL: Duration = Duration::from_secs(60);
/// How soon a failed index load is tried again (the previous index serves
/// meanwhile).
const RELOAD_RETRY: Duration = Duration::from_secs(5);
/// The shortest `ATHENA_EVENT_STALE_SECS`: three times the longest webhook
/// `timeout_ms` (10 s).
pub const MIN_STALE_SECS: u64 = 30;
/// How long a worker whose claim found nothing waits before claiming again
/// after a wake-up.
const IDLE_GAP: Duration = Duration::from_millis(50);
/// The longest pause of a worker whose claims keep finding nothing while
/// writes keep waking it (one busy target drained by another worker).
const MAX_IDLE_GAP: Duration = Duration::from_millis(800);
/// Most jobs one claim takes (all of one target), delivered together.
const BATCH: i64 = 256;
/// Attempts of one batch in flight at once (per target: one batch runs
/// per target at a time), so a receiver sees at most this many concurrent
/// requests from a worker, and a sink at most this many tenant writes.
pub const CONCURRENCY: usize = 32;
/// How often an idle worker looks at the outbox (other replicas publish
/// without waking this one).
const POLL: Duration = Duration::from_millis(250);
/// Completed outbox jobs are removed after this (their attempts stay in
/// the delivery log); failed ones are kept for inspection.
const KEEP_COMPLETED_DAYS: i32 = 7;
/// No job is tried more often than this, whatever its deliverer answers
/// (the most a webhook's `max_attempts` allows).
pub const MAX_ATTEMPTS: i32 = 10;
/// How often a worker prunes completed jobs.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Fairness: a claim skips the jobs of a target that already has a live
/// running job, so one slow receiver holds at most one worker and the other
/// targets' jobs go past it (best effort: two workers claiming at the same
/// instant may both take one of the same target).
const ONE_PER_TARGET: &str = "NOT EXISTS (SELECT 1 FROM athena_outbox r
     WHERE r.status = 'running' AND r.target_kind = c.target_kind AND r.target_id = c.target_id
       AND r.started_at >= now() - make_interval(secs => $3))";

/// One entry of the event catalog (`GET /admin/webhooks/events`).
#[derive(Debug, Clone, Copy)]
pub struct EventKind {
    pub route_key: &'static str,
    pub title: &'static str,
    pub description: &'static str,
}

const fn kind(
    route_key: &'static str,
    title: &'static str,
    description: &'static str,
) -> EventKind {
    EventKind {
        route_key,
        title,
        description,
    }
}

/// Every event the gateway publishes (or will: DDL and backups publish
/// through the same [`Outbox::publish`]). A subscription names one of these.
pub const EVENTS: &[EventKind] = &[
    kind("gateway.insert", "Gateway insert", "Rows inserted through PUT /gateway/insert or a public route's insert; data: {operation, rows, affected}."),
    kind("gateway.update", "Gateway update", "Rows updated through POST /gateway/update or a public route's update; data: {operation, rows, affected}."),
    kind("gateway.delete", "Gateway delete", "Rows deleted through DELETE /gateway/delete or a public route's delete; data: {operation, rows, affected}."),
    kind("gateway.upsert", "Gateway upsert", "Rows inserted or updated through PUT /gateway/insert with on_conflict; data: {operation, rows, affected}."),
    kind("rest.insert", "REST insert", "Rows inserted through POST /rest/v1/{table}; data: {operation, rows, affected}."),
    kind("rest.update", "REST update", "Rows updated through PATCH /rest/v1/{table}; data: {operation, rows, affected}."),
    kind("rest.delete", "REST delete", "Rows deleted through DELETE /rest/v1/{table}; data: {operation, rows, affected}."),
    kind("rest.upsert", "REST upsert", "Rows upserted through POST /rest/v1/{table} with Prefer: resolution=…; data: {operation, rows, affected}."),
    kind("management.tables.create", "Table created", "A table was created through POST /management/tables."),
    kind("management.tables.alter", "Table altered", "A table was changed through PATCH /management/tables/{table_name}."),
    kind("management.tables.drop", "Table dropped", "A table was dropped through DELETE /management/tables/{table_name}."),
    kind("management.columns.drop", "Column dropped", "A column was dropped through DELETE /management/tables/{table_name}/columns/{column_name}."),
    kind("management.indexes.create", "Index created", "An index was created through POST /management/indexes."),
    kind("management.indexes.drop", "Index dropped", "An index was dropped through DELETE /management/indexes/{index_name}."),
    kind("management.views.create", "View created", "A view was created through POST /management/views."),
    kind("management.views.drop", "View dropped", "A view was dropped through DELETE /management/views/{view_name}."),
    kind("billing.upsert", "Billing document upserted", "A payment, payment link, subscription or invoice row (table billing.billing_*) changed through a provider webhook or a reconcile; data: {operation, rows, affected, event_type}."),
    kind("backup.completed", "Backup completed", "A backup job of the client finished; data: the job."),
    kind("backup.failed", "Backup failed", "A backup job of the client failed; data: the job and its error."),
];

/// Whether `route_key` is in the event catalog.
pub fn known(route_key: &str) -> bool {
    EVENTS.iter().any(|e| e.route_key == route_key)
}

/// The catalog as `GET /admin/webhooks/events` lists it.
pub fn catalog() -> Value {
    let events: Vec<Value> = EVENTS
        .iter()
        .map(|e| json!({"route_key": e.route_key, "title": e.title, "description": e.description}))
        .collect();
    json!({ "events": events, "count": EVENTS.len() })
}

/// One published event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_id: Uuid,
    pub route_key: String,
    pub client_name: String,
    /// `table` in `public`, else `schema.table`; none for client-wide events.
    pub table_name: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub data: Value,
}

impl Event {
    /// A new event happening now, with a fresh id.
    pub fn now(
        route_key: impl Into<String>,
        client_name: impl Into<String>,
        table_name: Option<String>,
        data: Value,
    ) -> Event {
        Event {
            event_id: Uuid::new_v4(),
            route_key: route_key.into(),
            client_name: client_name.into(),
            table_name,
            occurred_at: Utc::now(),
            data,
        }
    }

    /// The event as stored and delivered (the webhook body).
    pub fn to_json(&self) -> Value {
        json!({
            "event_id": self.event_id,
            "route_key": self.route_key,
            "client_name": self.client_name,
            "table_name": self.table_name,
            "occurred_at": self.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": self.data,
        })
    }
}

/// `schema.table` as events name it: the bare table in `public`.
pub fn table_label(schema: &str, table: &str) -> String {
    if schema == "public" {
        table.to_string()
    } else {
        format!("{schema}.{table}")
    }
}

/// One enabled subscriber: which events of which client it wants.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    /// The outbox `target_kind` (`webhook`, `sink`).
    pub kind: &'static str,
    /// The subscriber's row id (as text: kinds key rows differently).
    pub id: String,
    pub client_name: String,
    pub route_key: String,
    /// Only events of this table (`table` or `schema.table`); none = all.
    pub table_name: Option<String>,
}

impl Subscription {
    fn wants(&self, table: Option<&str>) -> bool {
        match (&self.table_name, table) {
            (None, _) => true,
            (Some(want), Some(got)) => {
                want == got || want.strip_prefix("public.").is_some_and(|w| w == got)
            }
            (Some(_), None) => false,
        }
    }
}

/// Where the enabled subscriptions of one kind come from (a catalog table).
pub trait Source: Send + Sync + 'static {
    fn load<'a>(
        &'a self,
        catalog: &'a Pool,
    ) -> BoxFuture<'a, Result<Vec<Subscription>, DomainError>>;
}

/// A claimed outbox job.
#[derive(Debug, Clone)]
pub struct Job {
    pub lease: Lease,
    pub target_kind: String,
    pub target_id: String,
    /// The event as published ([`Event::to_json`]).
    pub event: Value,
}

/// One batch run by [`Outbox::run_next`].
#[derive(Debug)]
pub struct Ran {
    /// Each job's outcome, in claim order.
    pub deliveries: Vec<Delivery>,
    /// How long the batch's oldest event had waited when it was claimed.
    pub waited: Duration,
}

/// What one delivery attempt ended in.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// Done: the job completes with this result.
    Delivered(Value),
    /// Try again after the backoff.
    Retry(String),
    /// Give up: the job is `failed` with this error.
    Failed(String),
}

/// Delivers the jobs of one `target_kind`.
pub trait Deliverer: Send + Sync + 'static {
    fn kind(&self) -> &'static str;
    /// One attempt (`job.lease.attempts` counts this one); the deliverer
    /// decides between retry and failure by its own attempt limit.
    fn deliver<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Delivery>;
    /// One attempt of each job of a batch (all of one target), the
    /// outcomes in the jobs' order. Default: the attempts run together.
    fn deliver_batch<'a>(&'a self, jobs: &'a [Job]) -> BoxFuture<'a, Vec<Delivery>> {
        Box::pin(bounded(jobs.iter().map(|j| self.deliver(j))))
    }
}

/// Runs `attempts` together, at most [`CONCURRENCY`] at a time; the
/// outcomes in order.
pub async fn bounded<T>(
    attempts: impl Iterator<Item = impl std::future::Future<Output = T>>,
) -> Vec<T> {
    let gate = tokio::sync::Semaphore::new(CONCURRENCY);
    futures_util::future::join_all(attempts.map(|a| async {
        // Never closed: acquire only fails on a closed semaphore.
        let _permit = gate.acquire().await;
        a.await
    }))
    .await
}

/// Workers and retries (`ATHENA_EVENT_WORKERS`, `ATHENA_EVENT_STALE_SECS`,
/// `ATHENA_EVENT_BACKOFF_MS`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Delivery workers per process; 0 only queues.
    pub workers: usize,
    /// A job `running` longer than this (its worker died) is taken over.
    /// At least [`MIN_STALE_SECS`]: well past the longest attempt (a 10 s
    /// timeout plus the catalog calls around it), so a live attempt is
    /// never taken over and sent twice.
    pub stale_after: Duration,
    /// First retry delay; doubled per attempt, jittered to 50–100 %.
    pub backoff: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            workers: 4,
            stale_after: Duration::from_secs(60),
            backoff: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
        }
    }
}

impl Settings {
    /// The delay before claim `attempts + 1`: `backoff · 2^(attempts-1)`,
    /// capped, times a random factor in [0.5, 1).
    pub fn retry_delay(&self, attempts: i32) -> Duration {
        let exp = attempts.saturating_sub(1).clamp(0, 20) as u32;
        let full = self
            .backoff
            .saturating_mul(1u32 << exp)
            .min(self.backoff_max);
        let r = (Uuid::new_v4().as_u128() & 0xffff) as f64 / 65536.0;
        full.mul_f64(0.5 + r / 2.0)
    }
}

/// Counters of the publish path (`/metrics`: `athena_events_*`), so a test
/// can see that a write without a subscriber made no catalog statement.
#[derive(Debug, Default)]
pub struct Stats {
    /// Subscription index loads (one catalog query each).
    pub index_loads: AtomicU64,
    /// Publishes that wrote outbox jobs (one catalog statement each, or a
    /// share of one: concurrent publishes are written together).
    pub outbox_inserts: AtomicU64,
    /// Events published (matched or not).
    pub published: AtomicU64,
    /// Outbox jobs written.
    pub jobs_queued: AtomicU64,
}

/// Concurrent outbox `INSERT`s (each carrying every job waiting when it
/// started). One: the publishes arriving while a statement runs all go in
/// the next one. Two had each statement carry about half as many jobs (at
/// 16 connections mostly one), and the per-statement cost on both sides
/// (a round trip, a commit) was most of a publish's cost: single-row
/// inserts with one webhook and delivery off went from 69% to 73% of those
/// without.
const BATCHERS: usize = 1;
/// Most jobs in one outbox `INSERT`.
const MAX_BATCH: usize = 512;
/// Most event bytes in one outbox `INSERT` (a batch also ends here).
const MAX_BATCH_BYTES: usize = 8 << 20;
/// The largest event queued whole: past it, its rows keep only their small
/// scalar values (keys) and `data.truncated` is `true`.
pub const MAX_EVENT_BYTES: usize = 256 << 10;
/// A row value kept in a truncated event: a scalar of at most this size.
const TRUNCATED_VALUE_BYTES: usize = 64;

/// Replaces `\u0000` (which `jsonb` refuses) by `\u{FFFD}` in every string
/// of `v`, object keys included.
pub fn sanitize(v: Value) -> Value {
    fn clean(s: String) -> String {
        if s.contains('\0') {
            s.replace('\0', "\u{FFFD}")
        } else {
            s
        }
    }
    match v {
        Value::String(s) => Value::String(clean(s)),
        Value::Array(a) => Value::Array(a.into_iter().map(sanitize).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (clean(k), sanitize(v)))
                .collect(),
        ),
        v => v,
    }
}

/// The event as queued: sanitized, and past [`MAX_EVENT_BYTES`] its
/// `data.rows` reduced to each row's small scalar values (the keys), with
/// `data.truncated: true` (an empty `rows` when even that is too big).
fn queueable(event: &Event) -> (Value, usize) {
    let mut v = sanitize(event.to_json());
    let size = |v: &Value| serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX);
    let n = size(&v);
    if n <= MAX_EVENT_BYTES {
        return (v, n);
    }
    if let Some(data) = v.get_mut("data").and_then(Value::as_object_mut) {
        let rows = match data.remove("rows") {
            Some(Value::Array(rows)) => rows
                .into_iter()
                .map(|r| match r {
                    Value::Object(o) => Value::Object(
                        o.into_iter()
                            .filter(|(_, v)| {
                                !v.is_array() && !v.is_object() && size(v) <= TRUNCATED_VALUE_BYTES
                            })
                            .collect(),
                    ),
                    _ => Value::Null,
                })
                .collect(),
            _ => Vec::new(),
        };
        data.insert("rows".into(), Value::Array(rows));
        data.insert("truncated".into(), Value::Bool(true));
    }
    let n = size(&v);
    if n <= MAX_EVENT_BYTES {
        return (v, n);
    }
    let data = json!({
        "operation": v["data"]["operation"].clone(),
        "affected": v["data"]["affected"].clone(),
        "rows": [],
        "truncated": true,
    });
    v["data"] = data;
    let n = size(&v);
    (v, n)
}

/// One outbox job to write.
struct JobRow {
    event_id: Uuid,
    kind: &'static str,
    id: String,
    event: Value,
    /// The event's encoded size (batches are bounded by bytes too).
    bytes: usize,
}

/// The jobs of one publish, and where to answer when they are committed
/// (the number written, or why not).
struct Pending {
    rows: Vec<JobRow>,
    done: tokio::sync::oneshot::Sender<Result<u64, String>>,
}

/// Writes jobs in one statement (a replayed event's jobs are kept once).
async fn insert_jobs(catalog: &Pool, rows: &[&JobRow]) -> Result<u64, DomainError> {
    let event_ids: Vec<Uuid> = rows.iter().map(|r| r.event_id).collect();
    let kinds: Vec<&str> = rows.iter().map(|r| r.kind).collect();
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let events: Vec<&Value> = rows.iter().map(|r| &r.event).collect();
    let mut conn = catalog.get().await?;
    // Prepared once per connection: this runs on the write path of every
    // subscribed write, and an unprepared statement is a Parse round trip
    // and a fresh plan each time.
    let insert = conn.prepare_cached(INSERT_JOBS, &[]).await?;
    Ok(conn
        .execute(&insert, &[&event_ids, &kinds, &ids, &events])
        .await?)
}

const INSERT_JOBS: &str = "INSERT INTO athena_outbox (event_id, target_kind, target_id, event)
     SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[])
     ON CONFLICT (event_id, target_kind, target_id) DO NOTHING";

/// What a publish whose jobs could not be written is told (the cause is
/// logged; it is not the caller's business).
const NOT_QUEUED: &str = "the event outbox refused the jobs";

/// Takes every waiting publish (up to [`MAX_BATCH`] jobs and
/// [`MAX_BATCH_BYTES`]), writes them in one statement and answers each;
/// when that statement fails, each publish's jobs are written on their own,
/// so one bad publish fails alone. Ends when the outbox is dropped.
async fn batcher(
    catalog: Pool,
    queue: Arc<tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<Pending>>>,
) {
    let weight = |p: &Pending| p.rows.iter().map(|r| r.bytes).sum::<usize>();
    loop {
        let batch = {
            let mut rx = queue.lock().await;
            let Some(first) = rx.recv().await else { return };
            let mut jobs = first.rows.len();
            let mut bytes = weight(&first);
            let mut batch = vec![first];
            while jobs < MAX_BATCH && bytes < MAX_BATCH_BYTES {
                match rx.try_recv() {
                    Ok(p) => {
                        jobs += p.rows.len();
                        bytes += weight(&p);
                        batch.push(p);
                    }
                    Err(_) => break,
                }
            }
            batch
        };
        let outcome = if batch.len() == 1 {
            Err(())
        } else {
            let rows: Vec<&JobRow> = batch.iter().flat_map(|p| p.rows.iter()).collect();
            insert_jobs(&catalog, &rows).await.map_err(|e| {
                tracing::warn!(error = %e, jobs = rows.len(), publishes = batch.len(),
                    "writing a batch of outbox jobs failed; writing each publish alone");
            })
        };
        match outcome {
            // Each publish is answered with its own jobs (a replay's jobs
            // that were already there count too: they are queued either way).
            Ok(_) => {
                for p in batch {
                    let n = p.rows.len() as u64;
                    let _ = p.done.send(Ok(n));
                }
            }
            // Each publish alone, [`CONCURRENCY`] at a time (a catalog
            // that is down fails them all within one acquire timeout, not
            // one timeout after another).
            Err(()) => {
                let outcomes = bounded(batch.iter().map(|p| insert_alone(&catalog, &p.rows))).await;
                for (p, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = p.done.send(outcome);
                }
            }
        }
    }
}

/// Writes one publish's jobs; the clean error it is answered with.
async fn insert_alone(catalog: &Pool, rows: &[JobRow]) -> Result<u64, String> {
    let refs: Vec<&JobRow> = rows.iter().collect();
    match insert_jobs(catalog, &refs).await {
        Ok(_) => Ok(rows.len() as u64),
        Err(e) => {
            tracing::error!(error = %e, jobs = rows.len(), "writing outbox jobs failed");
            Err(NOT_QUEUED.to_string())
        }
    }
}

struct Index {
    loaded: Instant,
    /// The invalidation generation it was loaded in.
    generation: u64,
    by_key: HashMap<(String, String), Vec<Subscription>>,
}

/// The subscription index and what reloads it (shared with the background
/// refresh).
struct Indexing {
    catalog: Pool,
    sources: Vec<Box<dyn Source>>,
    current: RwLock<Option<Arc<Index>>>,
    /// Bumped by every invalidation (see the module notes).
    generation: AtomicU64,
    /// One index load at a time.
    loading: Arc<tokio::sync::Mutex<()>>,
}

impl Indexing {
    fn held(&self) -> Option<Arc<Index>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Loads the index from every source; stored unless an invalidation
    /// came meanwhile.
    async fn load(&self) -> Result<Arc<Index>, DomainError> {
        let generation = self.generation.load(Ordering::SeqCst);
        let mut by_key: HashMap<(String, String), Vec<Subscription>> = HashMap::new();
        for source in &self.sources {
            for s in source.load(&self.catalog).await? {
                by_key
                    .entry((s.client_name.clone(), s.route_key.clone()))
                    .or_default()
                    .push(s);
            }
        }
        let index = Arc::new(Index {
            loaded: Instant::now(),
            generation,
            by_key,
        });
        if self.generation.load(Ordering::SeqCst) == generation {
            *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(index.clone());
        }
        Ok(index)
    }

    /// A load failed: the previous index stays in use, refreshed in the
    /// background (no write waits) [`RELOAD_RETRY`] from now.
    fn keep_stale(&self, old: &Index, e: &DomainError) -> Arc<Index> {
        tracing::warn!(error = %e, "event subscriptions not reloaded; using the previous index");
        let kept = Arc::new(Index {
            loaded: Instant::now()
                .checked_sub(INDEX_TTL - RELOAD_RETRY)
                .unwrap_or(old.loaded),
            generation: self.generation.load(Ordering::SeqCst),
            by_key: old.by_key.clone(),
        });
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(kept.clone());
        kept
    }
}

pub struct Outbox {
    catalog: Pool,
    settings: Settings,
    leases: Leases,
    index: Arc<Indexing>,
    wake: Notify,
    /// The group-commit writers' queue (see `enqueue`).
    batcher: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<Pending>>,
    pub stats: Stats,
}

impl Outbox {
    pub fn new(catalog: Pool, settings: Settings, sources: Vec<Box<dyn Source>>) -> Outbox {
        Outbox {
            leases: Leases::grouped(
                "athena_outbox",
                "j.target_kind, j.target_id, j.event",
                settings.stale_after,
                ONE_PER_TARGET,
                &["target_kind", "target_id"],
            ),
            index: Arc::new(Indexing {
                catalog: catalog.clone(),
                sources,
                current: RwLock::new(None),
                generation: AtomicU64::new(0),
                loading: Arc::new(tokio::sync::Mutex::new(())),
            }),
            catalog,
            settings,
            wake: Notify::new(),
            batcher: std::sync::OnceLock::new(),
            stats: Stats::default(),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Marks the subscription index out of date (a subscription changed
    /// somewhere); it is kept, as the fallback while the catalog is away.
    pub fn invalidate(&self) {
        self.index.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The index to match with. A current one is used as is; one past
    /// [`INDEX_TTL`] is still used while one background task reloads it
    /// (no write waits); after an invalidation the writes wait for the one
    /// reload (so a subscription just created sees the next write), falling
    /// back to the previous index if the catalog cannot answer. Only the
    /// very first load has no fallback.
    async fn current_index(&self) -> Result<Arc<Index>, DomainError> {
        let ix = &self.index;
        let generation = ix.generation.load(Ordering::SeqCst);
        let held = ix.held();
        if let Some(index) = held.as_ref().filter(|i| i.generation == generation) {
            if index.loaded.elapsed() >= INDEX_TTL {
                if let Ok(one) = ix.loading.clone().try_lock_owned() {
                    self.stats.index_loads.fetch_add(1, Ordering::Relaxed);
                    let ix = ix.clone();
                    tokio::spawn(async move {
                        let _one = one;
                        if let Err(e) = ix.load().await {
                            if let Some(old) = ix.held() {
                                ix.keep_stale(&old, &e);
                            }
                        }
                    });
                }
            }
            return Ok(index.clone());
        }
        let _one = ix.loading.lock().await;
        let generation = ix.generation.load(Ordering::SeqCst);
        let held = ix.held();
        if let Some(index) = held.as_ref().filter(|i| i.generation == generation) {
            return Ok(index.clone());
        }
        self.stats.index_loads.fetch_add(1, Ordering::Relaxed);
        match ix.load().await {
            Ok(index) => Ok(index),
            Err(e) => match held {
                Some(old) => Ok(ix.keep_stale(&old, &e)),
                None => Err(e),
            },
        }
    }

    /// The enabled subscriptions an event goes to (from the index).
    pub async fn matching(&self, event: &Event) -> Result<Vec<Subscription>, DomainError> {
        let index = self.current_index().await?;
        Ok(index
            .by_key
            .get(&(event.client_name.clone(), event.route_key.clone()))
            .map(|subs| {
                subs.iter()
                    .filter(|s| s.wants(event.table_name.as_deref()))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Publishes an event: one outbox job per matching subscription,
    /// committed when this returns. The number of jobs queued.
    pub async fn publish(&self, event: &Event) -> Result<usize, DomainError> {
        self.stats.published.fetch_add(1, Ordering::Relaxed);
        let subs = self.matching(event).await?;
        if subs.is_empty() {
            return Ok(0);
        }
        self.enqueue(event, &subs).await
    }

    /// Writes the jobs of `event` for `subs` (one statement).
    ///
    /// Group commit: the jobs of writes published at the same moment go to
    /// the catalog in one `INSERT` (one commit), by [`BATCHERS`] tasks that
    /// each take whatever is waiting while the previous statement runs; a
    /// caller returns when the statement holding its jobs committed.
    pub async fn enqueue(
        &self,
        event: &Event,
        subs: &[Subscription],
    ) -> Result<usize, DomainError> {
        self.stats.outbox_inserts.fetch_add(1, Ordering::Relaxed);
        let (event_json, bytes) = queueable(event);
        let rows: Vec<JobRow> = subs
            .iter()
            .map(|s| JobRow {
                event_id: event.event_id,
                kind: s.kind,
                id: s.id.clone(),
                event: event_json.clone(),
                bytes,
            })
            .collect();
        let (done, committed) = tokio::sync::oneshot::channel();
        let sent = self.batches().send(Pending { rows, done });
        let outcome = match sent {
            Ok(()) => committed
                .await
                .unwrap_or_else(|_| Err("the outbox writer stopped before answering".to_string())),
            // No batcher (it ended): write these jobs alone.
            Err(tokio::sync::mpsc::error::SendError(p)) => {
                insert_alone(&self.catalog, &p.rows).await
            }
        };
        let n = outcome.map_err(DomainError::ServiceUnavailable)?;
        self.stats.jobs_queued.fetch_add(n, Ordering::Relaxed);
        // One idle worker is enough (it takes a whole batch); a busy one
        // claims again as soon as it is done. Waking every worker per
        // write had them all query the outbox per write.
        self.wake.notify_one();
        Ok(subs.len())
    }

    /// The batchers' queue, started on first use (inside the runtime).
    fn batches(&self) -> tokio::sync::mpsc::UnboundedSender<Pending> {
        self.batcher
            .get_or_init(|| {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                let rx = Arc::new(tokio::sync::Mutex::new(rx));
                for _ in 0..BATCHERS {
                    tokio::spawn(batcher(self.catalog.clone(), rx.clone()));
                }
                tx
            })
            .clone()
    }

    /// Claims and runs the next batch: up to [`BATCH`] queued jobs of one
    /// target (the target of the oldest runnable job, so fairness holds per
    /// batch: a target with a live running job is skipped), delivered
    /// together by the target's deliverer; the delivered ones complete in
    /// one statement. `None` when there is nothing to run.
    pub async fn run_next(
        &self,
        deliverers: &HashMap<&'static str, Arc<dyn Deliverer>>,
    ) -> Result<Option<Ran>, DomainError> {
        let claimed = {
            let conn = self.catalog.get().await?;
            self.leases.claim_group(&conn, BATCH).await?
        };
        if claimed.is_empty() {
            return Ok(None);
        }
        let jobs: Vec<Job> = claimed
            .into_iter()
            .map(|(lease, row)| Job {
                lease,
                target_kind: row.get(2),
                target_id: row.get(3),
                event: row.get(4),
            })
            .collect();
        // How long the batch's oldest event waited (`occurred_at`).
        let waited = jobs
            .iter()
            .filter_map(|j| {
                j.event
                    .get("occurred_at")?
                    .as_str()?
                    .parse::<DateTime<Utc>>()
                    .ok()
            })
            .min()
            .and_then(|t| (Utc::now() - t).to_std().ok())
            .unwrap_or_default();
        // One target per batch: one deliverer.
        let kind = jobs[0].target_kind.clone();
        let token = jobs[0].lease.token;
        let delivering = async {
            match deliverers.get(kind.as_str()) {
                Some(d) => {
                    // Taken over past the limit (its workers kept dying
                    // mid-attempt): not tried again.
                    let (spent, live): (Vec<&Job>, Vec<&Job>) =
                        jobs.iter().partition(|j| j.lease.attempts > MAX_ATTEMPTS);
                    let live: Vec<Job> = live.into_iter().cloned().collect();
                    let mut tried = d.deliver_batch(&live).await.into_iter();
                    jobs.iter()
                        .map(|j| match spent.iter().any(|s| s.lease.id == j.lease.id) {
                            true => {
                                Delivery::Failed(format!("gave up after {MAX_ATTEMPTS} attempts"))
                            }
                            false => tried
                                .next()
                                .unwrap_or_else(|| Delivery::Retry("not attempted".into())),
                        })
                        .collect::<Vec<_>>()
                }
                None => jobs
                    .iter()
                    .map(|_| {
                        Delivery::Failed(format!(
                            "no deliverer for target kind `{kind}` in this build"
                        ))
                    })
                    .collect(),
            }
        };
        let deliveries = self.renewing(token, delivering).await;
        let conn = self.catalog.get().await?;
        let mut done = Vec::new();
        let mut out = Vec::with_capacity(jobs.len());
        for (job, delivery) in jobs.iter().zip(deliveries) {
            let lease = job.lease;
            let delivery = match delivery {
                Delivery::Retry(error) if lease.attempts >= MAX_ATTEMPTS => Delivery::Failed(error),
                d => d,
            };
            let kept = match &delivery {
                Delivery::Delivered(result) => {
                    done.push((lease, result.clone()));
                    true
                }
                Delivery::Retry(error) => {
                    let delay = self.settings.retry_delay(lease.attempts);
                    self.leases.retry_in(&conn, &lease, error, delay).await?
                }
                Delivery::Failed(error) => {
                    let result = json!({ "error": error });
                    self.leases.fail(&conn, &lease, &result, error).await?
                }
            };
            if !kept {
                tracing::info!(job = %lease.id, "outbox job was taken over meanwhile; outcome not recorded");
            }
            out.push(delivery);
        }
        let kept = self.leases.complete_many(&conn, &done).await?;
        if kept < done.len() as u64 {
            tracing::info!(
                lost = done.len() as u64 - kept,
                "delivered outbox jobs were taken over meanwhile; their completion not recorded"
            );
        }
        Ok(Some(Ran {
            deliveries: out,
            waited,
        }))
    }

    /// Runs `work` (a claimed batch's attempts) while renewing the batch's
    /// leases every third of `stale_after`, so a batch that takes long (a
    /// slow receiver, [`BATCH`] jobs [`CONCURRENCY`] at a time) is never
    /// taken over and sent twice while its worker lives. A failed renewal
    /// is logged; the attempts go on.
    async fn renewing<T>(
        &self,
        token: uuid::Uuid,
        work: impl std::future::Future<Output = T>,
    ) -> T {
        let every = (self.settings.stale_after / 3).max(Duration::from_secs(1));
        // Polled beside `work` (never instead of it): a slow catalog delays
        // the renewal, not the attempts in flight.
        let renew = async {
            loop {
                tokio::time::sleep(every).await;
                let renewed = async {
                    let conn = self.catalog.get().await?;
                    self.leases.renew(&conn, token).await
                }
                .await;
                match renewed {
                    Ok(0) => tracing::warn!(
                        "outbox batch taken over meanwhile (its leases are gone); its outcomes will not be recorded"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "outbox leases not renewed"),
                }
            }
        };
        tokio::pin!(work);
        tokio::pin!(renew);
        tokio::select! {
            out = &mut work => out,
            _ = &mut renew => unreachable!("the renewal loop never ends"),
        }
    }

    /// Removes completed jobs older than [`KEEP_COMPLETED_DAYS`]; how many.
    pub async fn prune(&self) -> Result<u64, DomainError> {
        let conn = self.catalog.get().await?;
        Ok(conn
            .execute(
                "DELETE FROM athena_outbox
                  WHERE status = 'completed' AND finished_at < now() - make_interval(days => $1::int)",
                &[&KEEP_COMPLETED_DAYS],
            )
            .await?)
    }

    /// Jobs by status (`/debug`, tests).
    pub async fn depth(&self) -> Result<(u64, u64), DomainError> {
        let conn = self.catalog.get().await?;
        let row = conn
            .query_one(
                "SELECT count(*) FILTER (WHERE status = 'queued'),
                        count(*) FILTER (WHERE status = 'running')
                   FROM athena_outbox",
                &[],
            )
            .await?;
        Ok((row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64))
    }
}

/// Starts the delivery workers, each under a supervisor
/// (`src/supervisor.rs`): a worker that fails or panics is restarted; a
/// job it held is taken over once stale.
///
/// `load`: the server's in-flight requests; while it is busy the workers
/// give way to it ([`give_way`]).
pub fn spawn_workers(outbox: Arc<Outbox>, deliverers: Vec<Arc<dyn Deliverer>>, load: Option<Load>) {
    let map: Arc<HashMap<&'static str, Arc<dyn Deliverer>>> =
        Arc::new(deliverers.into_iter().map(|d| (d.kind(), d)).collect());
    for i in 0..outbox.settings.workers {
        let (outbox, map, load) = (outbox.clone(), map.clone(), load.clone());
        crate::supervisor::supervise(
            "event delivery worker",
            crate::supervisor::Backoff::default(),
            move || worker(i, outbox.clone(), map.clone(), load.clone()),
        );
    }
}

/// The workers give way only while the outbox is this close to current:
/// once a batch's oldest event waited longer, they deliver at full speed
/// whatever the load (under a load that never ends, deliveries lag behind
/// by about this much, not more and more).
const MAX_LAG: Duration = Duration::from_secs(30);
/// A server admitting requests at this rate or more is busy: the delivery
/// workers give way to it.
const BUSY_PER_SEC: u64 = 1000;
/// While the server is busy, the workers together spend about one part in
/// `1 + GIVE_WAY` of the time delivering: each rests after a batch this
/// many times the batch's own time, times the number of workers.
const GIVE_WAY: u32 = 19;
/// The longest rest after one batch (deliveries go on under any load: at
/// least a batch per worker per `MAX_REST`).
const MAX_REST: Duration = Duration::from_secs(2);
/// How often a resting worker looks whether the server went quiet.
const REST_SLICE: Duration = Duration::from_millis(25);

/// Busy: `admitted` requests in `within` are at least [`BUSY_PER_SEC`].
fn busy(admitted: u64, within: Duration) -> bool {
    admitted as f64 >= BUSY_PER_SEC as f64 * within.as_secs_f64().max(0.001)
}

/// After a batch (`ran`) that took `took`, during which the server admitted
/// `admitted` requests: unless its oldest event waited [`MAX_LAG`], while
/// the server is busy, rest (up to
/// `took * GIVE_WAY * workers`, at most [`MAX_REST`]); back at once when
/// it is not. Events are delivered after their write was answered anyway,
/// so under a burst of writes the outbox grows and drains once the burst
/// ends, instead of every delivery competing with the writes for the same
/// cores (and, through the receiver and the catalog, for Postgres); the
/// jobs wait in the outbox, durable.
async fn give_way(load: Option<&Load>, ran: &Ran, admitted: u64, took: Duration, workers: usize) {
    let Some(load) = load else { return };
    if ran.waited >= MAX_LAG || !busy(admitted, took) {
        return;
    }
    let rest = took
        .saturating_mul(GIVE_WAY.saturating_mul(workers.max(1) as u32))
        .min(MAX_REST);
    let until = Instant::now() + rest;
    loop {
        let now = Instant::now();
        if now >= until {
            return;
        }
        let slice = REST_SLICE.min(until - now);
        let before = load.admitted();
        tokio::time::sleep(slice).await;
        if !busy(load.admitted() - before, slice) {
            return;
        }
    }
}

async fn worker(
    i: usize,
    outbox: Arc<Outbox>,
    deliverers: Arc<HashMap<&'static str, Arc<dyn Deliverer>>>,
    load: Option<Load>,
) {
    tracing::debug!(worker = i, "event delivery worker started");
    let mut pruned = Instant::now();
    let mut idle_gap = IDLE_GAP;
    loop {
        if i == 0 && pruned.elapsed() >= PRUNE_EVERY {
            pruned = Instant::now();
            if let Err(e) = outbox.prune().await {
                tracing::warn!(error = %e, "pruning the event outbox failed");
            }
        }
        // Registered before the claim, so a publish between an empty claim
        // and the wait still wakes this worker.
        let woken = outbox.wake.notified();
        let (started, admitted) = (Instant::now(), load.as_ref().map_or(0, Load::admitted));
        match outbox.run_next(&deliverers).await {
            Ok(Some(ran)) => {
                idle_gap = IDLE_GAP;
                let admitted = load.as_ref().map_or(0, Load::admitted) - admitted;
                let took = started.elapsed();
                give_way(load.as_ref(), &ran, admitted, took, outbox.settings.workers).await;
                continue;
            }
            Ok(None) => {
                if tokio::time::timeout(POLL, woken).await.is_err() {
                    // Quiet for a whole poll: the next wake claims at once.
                    idle_gap = IDLE_GAP;
                    continue;
                }
                // Nothing claimable, yet writes keep waking: their jobs
                // may all be of a target another worker is draining, and
                // a claim per write would scan that backlog per write. A
                // gap that doubles while claims stay empty (up to
                // MAX_IDLE_GAP) bounds the idle claims; a batch takes all
                // the jobs queued meanwhile, and a claim that finds work
                // resets it.
                tokio::time::sleep(idle_gap).await;
                idle_gap = (idle_gap * 2).min(MAX_IDLE_GAP);
            }
            Err(e) => {
                tracing::warn!(error = %e, "event outbox unavailable; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server admitting requests at `per_sec` until `stop` is set.
    fn burst(load: &Load, per_sec: u64, stop: Arc<std::sync::atomic::AtomicBool>) {
        let load = load.clone();
        tokio::spawn(async move {
            // The timer ticks by the millisecond: a tick's share each.
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..per_sec / 1000 {
                    drop(load.try_acquire());
                }
                tick.tick().await;
            }
        });
    }

    #[tokio::test]
    async fn workers_give_way_while_the_server_is_busy_and_only_then() {
        let load = Load::new(16);
        let fresh = Ran {
            deliveries: Vec::new(),
            waited: Duration::ZERO,
        };
        // Quiet: no rest at all.
        let t = Instant::now();
        give_way(Some(&load), &fresh, 0, Duration::from_millis(10), 4).await;
        assert!(t.elapsed() < Duration::from_millis(5), "{:?}", t.elapsed());
        // Busy (~4,000 requests/s): rests 10 ms × 19 × 1 worker.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        burst(&load, 4000, stop.clone());
        let t = Instant::now();
        give_way(Some(&load), &fresh, 40, Duration::from_millis(10), 1).await;
        let rested = t.elapsed();
        assert!(
            rested >= Duration::from_millis(150) && rested < Duration::from_millis(700),
            "{rested:?}"
        );
        // The rest is capped, however slow the batch was.
        let t = Instant::now();
        give_way(Some(&load), &fresh, 4000, Duration::from_secs(1), 4).await;
        let rested = t.elapsed();
        assert!(
            rested >= MAX_REST - REST_SLICE && rested < MAX_REST + Duration::from_millis(700),
            "{rested:?}"
        );
        // The burst ends mid-rest: back within a slice or two.
        let ending = tokio::spawn({
            let stop = stop.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                stop.store(true, Ordering::Relaxed);
            }
        });
        let t = Instant::now();
        give_way(Some(&load), &fresh, 4000, Duration::from_secs(1), 4).await;
        let rested = t.elapsed();
        ending.await.unwrap();
        assert!(rested < Duration::from_millis(700), "{rested:?}");
        // No load signal (a worker outside a server): never rests.
        let t = Instant::now();
        give_way(None, &fresh, 1_000_000, Duration::from_secs(1), 4).await;
        assert!(t.elapsed() < Duration::from_millis(5));
        // Busy, but the outbox already lags MAX_LAG behind: no rest.
        let behind = Ran {
            deliveries: Vec::new(),
            waited: MAX_LAG,
        };
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        burst(&load, 4000, stop.clone());
        tokio::time::sleep(Duration::from_millis(30)).await;
        let t = Instant::now();
        give_way(Some(&load), &behind, 4000, Duration::from_secs(1), 4).await;
        stop.store(true, Ordering::Relaxed);
        assert!(t.elapsed() < Duration::from_millis(5));
    }

    #[test]
    fn the_catalog_is_unique_and_known() {
        let mut keys: Vec<_> = EVENTS.iter().map(|e| e.route_key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), EVENTS.len());
        assert!(known("gateway.insert") && known("backup.completed"));
        assert!(!known("gateway.*") && !known(""));
    }

    #[test]
    fn table_filters() {
        let s = |t: Option<&str>| Subscription {
            kind: "webhook",
            id: "1".into(),
            client_name: "c".into(),
            route_key: "gateway.insert".into(),
            table_name: t.map(str::to_string),
        };
        assert!(s(None).wants(Some("items")) && s(None).wants(None));
        assert!(s(Some("items")).wants(Some("items")));
        assert!(s(Some("public.items")).wants(Some("items")));
        assert!(!s(Some("items")).wants(Some("other")));
        assert!(!s(Some("items")).wants(Some("app.items")));
        assert!(!s(Some("items")).wants(None));
    }

    #[test]
    fn backoff_doubles_jittered_and_capped() {
        let s = Settings {
            backoff: Duration::from_millis(100),
            backoff_max: Duration::from_millis(1000),
            ..Settings::default()
        };
        for _ in 0..50 {
            let d1 = s.retry_delay(1);
            assert!(d1 >= Duration::from_millis(50) && d1 < Duration::from_millis(100));
            let d3 = s.retry_delay(3);
            assert!(d3 >= Duration::from_millis(200) && d3 < Duration::from_millis(400));
            assert!(s.retry_delay(30) < Duration::from_millis(1000));
        }
    }
}
