//! The gateway service: everything the data-plane routes do, behind one
//! type. Handlers (`handlers/gateway.rs`, `rest.rs`, `query.rs`, `rpc.rs`,
//! `public.rs`, `transaction.rs`) convert the generated request models into
//! the domain requests here (`super::plan`), make one call, and convert the
//! result back; the deferred worker runs stored jobs through the same
//! service (`deferred::Executor`). Nothing here knows HTTP.

use super::batch::InsertWindows;
use super::cache::{self, ReadCache};
use super::d1::D1Client;
use super::deferred::{self, Enqueued, Queue};
use super::read::{self, ReadQuery};
use super::rpc::{self, Call};
use super::sql::JsonRows;
use super::write::{self, Write, WriteResult};
use super::{plan, postprocess, raw};
use crate::api::models;
use crate::auth::Actor;
use crate::config::Config;
use crate::db::direct::DirectPools;
use crate::db::tenants::{Tenant, Tenants};
use crate::domain::identifier::Ident;
use crate::domain::DomainError;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

pub struct Gateway {
    pub config: Arc<Config>,
    pub tenants: Arc<Tenants>,
    /// Pools for direct PostgreSQL URIs (`x-pg-uri`, …).
    pub direct: Arc<DirectPools>,
    pub cache: ReadCache,
    /// The deferred-write queue (`src/gateway/deferred.rs`).
    pub deferred: Arc<Queue>,
    /// Insert windows (`X-Athena-Insert-Window`, `src/gateway/batch.rs`).
    pub insert_windows: Arc<InsertWindows>,
    /// Cloudflare D1 REST client (`config.d1`), for D1 migrations.
    pub d1: Option<Arc<D1Client>>,
    /// Events out (`src/events/`): committed writes publish here.
    pub events: Arc<crate::events::Outbox>,
}

/// The direct PostgreSQL URI headers of a request, in preference order
/// (`x-pg-uri`, `x-athena-jdbc-url`, `x-jdbc-url`).
#[derive(Debug, Clone, Default)]
pub struct DirectUri {
    pub pg_uri: Option<String>,
    pub athena_jdbc_url: Option<String>,
    pub jdbc_url: Option<String>,
}

impl DirectUri {
    pub fn values(&self) -> [Option<&str>; 3] {
        [
            self.pg_uri.as_deref(),
            self.athena_jdbc_url.as_deref(),
            self.jdbc_url.as_deref(),
        ]
    }

    /// Whether a direct URI names the database (then `X-Athena-Client` is
    /// ignored and the call always runs inline).
    pub fn is_set(&self) -> bool {
        crate::db::direct::pick(self.values()).is_some()
    }
}

/// Where a call runs: the database of a direct URI when one is set, else
/// the registered client.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub client: Option<String>,
    pub direct: DirectUri,
    /// Which family's events a write publishes (`gateway.*`, `rest.*`).
    pub origin: Origin,
}

/// The route family a write came through: its events' `route_key` prefix.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Origin {
    /// `/gateway/*`, `/data`, public routes.
    #[default]
    Gateway,
    /// `/rest/v1/*`.
    Rest,
}

impl Target {
    pub fn client(name: impl Into<String>) -> Target {
        Target {
            client: Some(name.into()),
            ..Target::default()
        }
    }

    /// A registered client's target for `/rest/v1` (its writes publish
    /// `rest.*` events).
    pub fn rest(name: impl Into<String>) -> Target {
        Target {
            origin: Origin::Rest,
            ..Target::client(name)
        }
    }
}

/// A planned read with what the caller asked around it.
pub struct FetchRequest {
    pub query: ReadQuery,
    pub post: postprocess::Spec,
    pub count: bool,
    pub head: bool,
    /// `Cache-Control: no-cache`.
    pub no_cache: bool,
    /// The request as the cache keys it (the normalized body); built only
    /// when the cache is on (`ReadCache::enabled`).
    pub cache_body: Option<Value>,
}

pub struct Fetched {
    /// Decoded rows (a cache hit, or rows post-processing needed).
    pub rows: Vec<Map<String, Value>>,
    /// Rows as Postgres wrote them, when nothing needed them decoded.
    pub raw_rows: Option<JsonRows>,
    pub count: Option<i64>,
    /// The post-processing summary (empty without post-processing).
    pub summary: Map<String, Value>,
    pub cache_key: Option<String>,
    pub outcome: cache::Outcome,
}

impl Fetched {
    pub fn len(&self) -> usize {
        self.raw_rows
            .as_ref()
            .map_or(self.rows.len(), JsonRows::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A write's body kept for the deferred queue: the job is planned again
/// from it by the same code (`Executor::plan`).
pub struct Deferral {
    /// `insert`, `update` or `delete`.
    pub operation: &'static str,
    pub body: Value,
    pub strip_nulls: Option<bool>,
    /// `X-Athena-Defer: true` (else only clients with deferral enabled).
    pub requested: bool,
    pub idempotency_key: Option<String>,
}

pub enum Written {
    Done(WriteResult),
    Queued { job: Enqueued, table_name: Value },
}

impl Gateway {
    /// The registered client `client` (400 without one).
    pub async fn tenant(&self, client: Option<&str>) -> Result<Arc<Tenant>, DomainError> {
        match client.map(str::trim).filter(|c| !c.is_empty()) {
            Some(name) => self.tenants.resolve(name).await,
            None => Err(DomainError::MissingClient),
        }
    }

    /// The tenant of a target (see `src/db/direct.rs` for every direct-URI
    /// check).
    pub async fn target(&self, target: &Target) -> Result<Arc<Tenant>, DomainError> {
        match self.direct.route(target.direct.values()).await {
            Some(tenant) => tenant,
            None => self.tenant(target.client.as_deref()).await,
        }
    }

    /// A read, through the read cache when it applies. Authorization
    /// already ran, so the cache is only consulted for a caller allowed to
    /// read, and keyed by who that caller is.
    pub async fn fetch(
        &self,
        target: &Target,
        caller: &Actor,
        req: FetchRequest,
    ) -> Result<Fetched, DomainError> {
        let tenant = self.target(target).await?;
        req.post.validate()?;
        let query = &req.query;
        crate::stats::oplog::note_table(query.table.as_str());
        let scope = cache::Scope {
            client: &tenant.name,
            actor: caller,
            schema: query.schema.as_str(),
            table: query.table.as_str(),
        };
        // Entries are versioned by the base table only, so reads embedding
        // other tables are not cached (their writes would not invalidate);
        // no key body means the cache is off.
        let lookup = match &req.cache_body {
            Some(body) if !req.no_cache && query.embeds.is_empty() => {
                self.cache.lookup(&scope, body, false).await
            }
            _ => self.cache.lookup(&scope, &Value::Null, true).await,
        };
        let max = self.config.max_rows;
        let (rows, raw_rows, count) = match &lookup.cached {
            Some(hit) => {
                let r: read::ReadResult = serde_json::from_value(hit.clone())
                    .map_err(|e| DomainError::Internal(format!("cached read: {e}")))?;
                (r.rows, None, r.count)
            }
            // Nothing to store and nothing to summarize: the rows stay
            // Postgres' text.
            None if lookup.key.is_none() && req.post.is_empty() => {
                let (rows, count) =
                    read::run_with_count_raw(&tenant, query, max, req.count, req.head).await?;
                (Vec::new(), Some(rows), count)
            }
            None => {
                let r = read::run_with_count(&tenant, query, max, req.count, req.head).await?;
                if let Ok(v) = serde_json::to_value(&r) {
                    self.cache.store(&lookup, &v).await;
                }
                (r.rows, None, r.count)
            }
        };
        crate::stats::oplog::note_cache(
            lookup.key.as_deref(),
            lookup.outcome == cache::Outcome::Hit,
        );
        let summary = match req.post.is_empty() {
            true => Map::new(),
            false => match postprocess::summarize(&req.post, &rows)? {
                Value::Object(m) => m,
                _ => Map::new(),
            },
        };
        Ok(Fetched {
            rows,
            raw_rows,
            count,
            summary,
            cache_key: lookup.key,
            outcome: lookup.outcome,
        })
    }

    /// A planned write: queued when `defer` is given and deferral applies
    /// (the client has it enabled or the request asked, and no direct URI
    /// names the database), else run inline.
    pub async fn write(
        &self,
        target: &Target,
        write: Write,
        window: Option<Duration>,
        defer: Option<Deferral>,
    ) -> Result<Written, DomainError> {
        crate::stats::oplog::note_table(write.target().1.as_str());
        let tenant = self.target(target).await?;
        if let Some(d) = defer.filter(|_| !target.direct.is_set()) {
            // The client's override (`deferred_writes.enabled`) decides
            // first; else the configured list and the client metadata.
            let enabled = match tenant.config.deferred_writes() {
                Some(on) => on,
                None => self.deferred.enabled(&tenant.name).await?,
            };
            if d.requested || enabled {
                let table_name = d.body.get("table_name").cloned().unwrap_or(Value::Null);
                let payload = json!({"body": d.body, "strip_nulls": d.strip_nulls});
                let job = self
                    .deferred
                    .enqueue(
                        &tenant.name,
                        d.operation,
                        &payload,
                        d.idempotency_key.as_deref(),
                    )
                    .await?;
                return Ok(Written::Queued { job, table_name });
            }
        }
        let event = WriteEvent::of(target, &write);
        let result = self.apply_write(&tenant, write, window).await?;
        self.publish(&tenant.name, event, &result, None).await?;
        Ok(Written::Done(result))
    }

    /// A planned write, run inline (REST, public routes; inserts in
    /// `window` when given).
    pub async fn write_inline(
        &self,
        target: &Target,
        write: Write,
        window: Option<Duration>,
    ) -> Result<WriteResult, DomainError> {
        crate::stats::oplog::note_table(write.target().1.as_str());
        let tenant = self.target(target).await?;
        let event = WriteEvent::of(target, &write);
        let result = self.apply_write(&tenant, write, window).await?;
        self.publish(&tenant.name, event, &result, None).await?;
        Ok(result)
    }

    /// Publishes a committed write's event (`src/events/`): from the
    /// subscription index, so nothing is queried when nobody subscribed;
    /// with subscribers, their outbox jobs are committed before the write
    /// is answered. Writes through a direct URI (no registered client)
    /// publish nothing; nor does a write that changed no row.
    /// `id`: the event id (a deferred job's own, so its replay publishes
    /// the same event); else a fresh one.
    async fn publish(
        &self,
        client: &str,
        event: Option<WriteEvent>,
        result: &WriteResult,
        id: Option<uuid::Uuid>,
    ) -> Result<(), DomainError> {
        // The table's own rows, never a `?select=` rendering of them.
        self.publish_rows(client, event, result.table_rows(), result.affected, id)
            .await
    }

    /// Publishes the events of a committed `/gateway/transaction`: one per
    /// write operation that changed rows, in operation order, as the same
    /// write on its own route would (`gateway.insert`, …, its rows).
    pub async fn publish_transaction(
        &self,
        target: &Target,
        client: &str,
        ops: &[super::transaction::Op],
        results: &[super::transaction::OpResult],
    ) -> Result<(), DomainError> {
        for (op, result) in ops.iter().zip(results) {
            if let super::transaction::Op::Write(write) = op {
                let affected = result.count.unwrap_or(result.rows.len() as i64);
                self.publish_rows(
                    client,
                    WriteEvent::of(target, write),
                    &result.rows,
                    affected,
                    None,
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn publish_rows(
        &self,
        client: &str,
        event: Option<WriteEvent>,
        rows: &[Map<String, Value>],
        affected: i64,
        id: Option<uuid::Uuid>,
    ) -> Result<(), DomainError> {
        let Some(e) = event else { return Ok(()) };
        if affected == 0 {
            return Ok(());
        }
        let mut event = crate::events::Event::now(
            e.route_key,
            client,
            Some(e.table),
            json!({"operation": e.operation, "rows": rows, "affected": affected}),
        );
        if let Some(id) = id {
            event.event_id = id;
        }
        self.events
            .publish(&event)
            .await
            .map(|_| ())
            .map_err(|err| {
                tracing::error!(event = %event.event_id, route_key = %event.route_key, error = %err,
                "a committed write's event could not be queued");
                // The cause is logged above, not shown (no internals).
                DomainError::ServiceUnavailable(
                    "the write was committed, but its event could not be queued".to_string(),
                )
            })
    }

    /// Runs a write inline (inserts in an insert window when one applies)
    /// and retires the cached reads of its table. Either way a write whose
    /// statement started is answered, even past the request deadline.
    pub async fn apply_write(
        &self,
        tenant: &Arc<Tenant>,
        write: Write,
        insert_window: Option<Duration>,
    ) -> Result<WriteResult, DomainError> {
        let (schema, table) = write.target();
        let (schema, table) = (schema.clone(), table.clone());
        // The client's `insert_window.max_ms` caps the window (0: none).
        let insert_window = match tenant.config.insert_window_max() {
            Some(max) => insert_window.map(|w| w.min(max)).filter(|w| !w.is_zero()),
            None => insert_window,
        };
        let result = match (write, insert_window) {
            (Write::Insert(q), Some(window)) => {
                self.insert_windows
                    .insert(tenant.clone(), q, window)
                    .await?
            }
            (write, _) => {
                // Once the statement starts, the caller gets its answer even
                // past the request deadline (`src/http/deadline.rs`): a 504
                // never hides a committed write.
                let shield = match crate::http::deadline::current() {
                    Some(d) => Some(d.shield().ok_or_else(|| {
                        DomainError::Timeout("the request deadline passed".into())
                    })?),
                    None => None,
                };
                let result = write::run(tenant, &write).await;
                if let Some(shield) = shield {
                    shield.settle();
                }
                result?
            }
        };
        self.cache
            .invalidate(&tenant.name, Some((schema.as_str(), table.as_str())))
            .await;
        Ok(result)
    }

    /// The insert window of an insert: `requested_ms` (the
    /// `X-Athena-Insert-Window` header, 1–60000 ms; 0 turns it off) or the
    /// configured default; none when `batchable` is false (upserts,
    /// direct-URI requests, `X-Athena-Deadpool-Enable`).
    pub fn insert_window(
        &self,
        requested_ms: Option<i64>,
        batchable: bool,
    ) -> Result<Option<Duration>, DomainError> {
        use super::batch::MAX_WINDOW_MS;
        let ms = match requested_ms {
            Some(ms) if !(0..=MAX_WINDOW_MS).contains(&ms) => {
                return Err(DomainError::Invalid(format!(
                    "X-Athena-Insert-Window must be between 1 and {MAX_WINDOW_MS} milliseconds"
                )))
            }
            Some(ms) => ms as u64,
            None => self.config.insert_window.as_millis() as u64,
        };
        Ok((batchable && ms > 0).then(|| Duration::from_millis(ms)))
    }

    /// Raw SQL on the target's raw-SQL connections (logged in as
    /// `ATHENA_RAW_SQL_ROLE` when set), answered in the SDK's shape.
    pub async fn raw(
        &self,
        target: &Target,
        sql: &str,
        schema: Option<&str>,
        params: &[Value],
    ) -> Result<Map<String, Value>, DomainError> {
        let tenant = self.target(target).await?;
        let schema = schema.map(|s| Ident::parse("schema", s)).transpose()?;
        let max_rows = self.config.max_rows;
        let out = raw::execute(
            &tenant,
            sql,
            raw::Options {
                schema: schema.as_ref(),
                max_rows,
                params,
            },
        )
        .await;
        // Raw SQL may have written any table of the client.
        if !target.direct.is_set() {
            self.cache.invalidate(&tenant.name, None).await;
        }
        Ok(plan::raw_answer(out?, max_rows))
    }

    /// `/query/sql` and `/gateway/sql`: raw SQL with a driver field.
    pub async fn sql(
        &self,
        target: &Target,
        body: &models::GatewaySqlExecutionRequest,
    ) -> Result<Map<String, Value>, DomainError> {
        plan::require_postgres_driver(body.driver)?;
        self.raw(target, &body.query, body.schema_name.as_deref(), &[])
            .await
    }

    /// A structured read without cache or post-processing (the SDK's
    /// lookup SELECTs on `/gateway/query`, `/query/count`).
    pub async fn read(
        &self,
        target: &Target,
        query: &ReadQuery,
        count: bool,
    ) -> Result<read::ReadResult, DomainError> {
        crate::stats::oplog::note_table(query.table.as_str());
        let tenant = self.target(target).await?;
        read::run_with_count(&tenant, query, self.config.max_rows, count, count).await
    }

    /// A read without cache, count or post-processing whose rows stay
    /// Postgres' text (REST `GET`).
    pub async fn read_raw(
        &self,
        target: &Target,
        query: &ReadQuery,
    ) -> Result<JsonRows, DomainError> {
        crate::stats::oplog::note_table(query.table.as_str());
        let tenant = self.target(target).await?;
        let max = self.config.max_rows;
        Ok(read::run_with_count_raw(&tenant, query, max, false, false)
            .await?
            .0)
    }

    /// `read_raw` with the count a `/rest/v1` `Prefer: count=` asks for.
    pub async fn read_counted(
        &self,
        target: &Target,
        query: &ReadQuery,
        count: Option<read::CountMode>,
    ) -> Result<(JsonRows, Option<i64>), DomainError> {
        crate::stats::oplog::note_table(query.table.as_str());
        let tenant = self.target(target).await?;
        read::run_counted_raw(&tenant, query, self.config.max_rows, count).await
    }

    /// A `/rest/v1` write (issue 14): `?select=` rendered by the read
    /// renderer over the written rows, singular writes committed only when
    /// they wrote exactly one row (`write::run_rest`). Answered even past
    /// the request deadline once it started; the cached reads of the table
    /// are retired unless it was rolled back.
    pub async fn write_rest(
        &self,
        target: &Target,
        write: Write,
        select: Option<&ReadQuery>,
        singular: bool,
    ) -> Result<WriteResult, DomainError> {
        crate::stats::oplog::note_table(write.target().1.as_str());
        let tenant = self.target(target).await?;
        let shield = match crate::http::deadline::current() {
            Some(d) => Some(
                d.shield()
                    .ok_or_else(|| DomainError::Timeout("the request deadline passed".into()))?,
            ),
            None => None,
        };
        let how = write::RestWrite {
            select,
            singular,
            max_rows: self.config.max_rows,
        };
        let result = write::run_rest(&tenant, &write, how).await;
        if let Some(shield) = shield {
            shield.settle();
        }
        let result = result?;
        if !singular || result.affected == 1 {
            let (schema, table) = write.target();
            self.cache
                .invalidate(&tenant.name, Some((schema.as_str(), table.as_str())))
                .await;
            self.publish(&tenant.name, WriteEvent::of(target, &write), &result, None)
                .await?;
        }
        Ok(result)
    }

    /// A function call; the rows stay Postgres' text.
    pub async fn rpc(
        &self,
        client: &str,
        call: &Call,
    ) -> Result<(JsonRows, Option<i64>), DomainError> {
        let tenant = self.tenant(Some(client)).await?;
        let out = rpc::call(&tenant, call, self.config.max_rows).await?;
        if out.may_write {
            // A volatile function may have written any table of the client.
            self.cache.invalidate(&tenant.name, None).await;
        }
        Ok((out.rows, out.count))
    }

    /// A deferred request of `client` (404 when unknown or another
    /// client's).
    pub async fn deferred_status(
        &self,
        client: Option<&str>,
        id: &str,
    ) -> Result<Value, DomainError> {
        let tenant = self.tenant(client).await?;
        self.deferred
            .status(&tenant.name, id)
            .await?
            .ok_or_else(|| deferred_not_found(id))
    }

    /// Requeues a failed deferred request; `false` when its state does not
    /// allow it.
    pub async fn deferred_requeue(
        &self,
        client: Option<&str>,
        id: &str,
    ) -> Result<(Value, bool), DomainError> {
        let tenant = self.tenant(client).await?;
        self.deferred
            .requeue(&tenant.name, id)
            .await?
            .ok_or_else(|| deferred_not_found(id))
    }

    /// Drains the deferred queue within the request timeout; the summary.
    pub async fn deferred_flush(&self) -> Result<Value, DomainError> {
        let budget = self
            .config
            .request_timeout
            .saturating_sub(Duration::from_secs(2))
            .clamp(Duration::from_millis(500), Duration::from_secs(25));
        self.deferred.flush(self, budget).await
    }
}

impl Gateway {
    /// Runs converted D1 batches in order on the D1 database `db_name` of
    /// `client` (only a database mapped to that client, checked before
    /// anything is sent). One outcome per statement. D1 not configured, or
    /// a batch failing (earlier batches stay applied), is a 503 naming how
    /// many statements were applied.
    pub async fn d1_run(
        &self,
        client: &str,
        db_name: &str,
        batches: &[Vec<String>],
    ) -> Result<Vec<super::d1::Outcome>, DomainError> {
        let Some(d1) = self.d1.as_ref() else {
            return Err(DomainError::ServiceUnavailable(
                "Cloudflare D1 is not configured: set ATHENA_D1_ACCOUNT_ID and ATHENA_D1_API_TOKEN (and ATHENA_D1_API_URL / ATHENA_D1_DATABASES as needed)".into(),
            ));
        };
        let database = d1.database_id(client, db_name)?.to_string();
        let mut outcomes = Vec::new();
        for (i, batch) in batches.iter().enumerate() {
            let sql: String = batch.iter().map(|s| format!("{s};\n")).collect();
            match d1.query(&database, &sql).await {
                // One result per statement; anything else leaves them unknown.
                Ok(results) if results.len() == batch.len() => outcomes.extend(results),
                Ok(_) => outcomes.extend((0..batch.len()).map(|_| super::d1::Outcome::default())),
                Err(e) => {
                    return Err(DomainError::ServiceUnavailable(format!(
                        "D1 execution failed: batch {i} failed: {}; {} earlier converted statement(s) were applied",
                        e.0,
                        outcomes.len()
                    )))
                }
            }
        }
        Ok(outcomes)
    }
}

fn deferred_not_found(id: &str) -> DomainError {
    DomainError::not_found("deferred request", id.chars().take(64).collect::<String>())
}

/// Jobs are planned by the same code as the inline routes, from the stored
/// body (see `src/gateway/deferred.rs`).
impl deferred::Executor for Gateway {
    fn plan(&self, operation: &str, payload: &Value) -> Result<deferred::Plan, DomainError> {
        let body = payload.get("body").cloned().unwrap_or(Value::Null);
        let strip = payload.get("strip_nulls").and_then(Value::as_bool);
        let decode = |e: serde_json::Error| {
            DomainError::Internal(format!("stored {operation} request is unreadable: {e}"))
        };
        Ok(match operation {
            "insert" => {
                let body: models::PutGatewayInsertRequest =
                    serde_json::from_value(body).map_err(decode)?;
                let (q, single) = plan::insert_plan(&body, strip)?;
                let (table, count) = (body.table_name.clone(), body.count.is_some());
                deferred::Plan {
                    write: Write::Insert(q),
                    answer: Box::new(move |r| {
                        Value::Object(plan::insert_answer(r, single, &table, count))
                    }),
                }
            }
            "update" => {
                let body: models::PostGatewayUpdateRequest =
                    serde_json::from_value(body).map_err(decode)?;
                deferred::Plan {
                    write: Write::Update(plan::update_plan(&body, strip)?),
                    answer: Box::new(|r| Value::Object(plan::update_answer(r))),
                }
            }
            "delete" => {
                let body: models::DeleteGatewayDeleteRequest =
                    serde_json::from_value(body).map_err(decode)?;
                let q = plan::delete_plan(&body, strip)?;
                let (table, id) = (body.table_name.clone(), body.resource_id.clone());
                deferred::Plan {
                    write: Write::Delete(q),
                    answer: Box::new(move |r| {
                        Value::Object(plan::delete_answer(r, &table, id.as_ref()))
                    }),
                }
            }
            other => {
                return Err(DomainError::Internal(format!(
                    "unknown deferred operation `{other}`"
                )))
            }
        })
    }

    async fn written(&self, client: &str, schema: &str, table: &str) {
        self.cache.invalidate(client, Some((schema, table))).await;
    }

    async fn committed(
        &self,
        job: uuid::Uuid,
        client: &str,
        write: &Write,
        result: &WriteResult,
    ) -> Result<(), DomainError> {
        let event = WriteEvent::of(&Target::client(client), write);
        self.publish(client, event, result, Some(job)).await
    }
}

/// What a write's event will say, taken before the write is consumed.
struct WriteEvent {
    route_key: String,
    operation: &'static str,
    table: String,
}

impl WriteEvent {
    /// `None` for direct-URI writes (no registered client to publish for).
    fn of(target: &Target, write: &Write) -> Option<WriteEvent> {
        if target.direct.is_set() {
            return None;
        }
        let operation = match write {
            Write::Insert(q) if q.on_conflict.is_some() => "upsert",
            Write::Insert(_) => "insert",
            Write::Update(_) => "update",
            Write::Delete(_) => "delete",
        };
        let family = match target.origin {
            Origin::Gateway => "gateway",
            Origin::Rest => "rest",
        };
        let (schema, table) = write.target();
        Some(WriteEvent {
            route_key: format!("{family}.{operation}"),
            operation,
            table: crate::events::table_label(schema.as_str(), table.as_str()),
        })
    }
}
