//! The admission limiter: data-plane requests (operations whose access
//! rule is a data-plane right, `Access::Right`/`Access::Keyed` in
//! `src/auth/access.rs`; never admin, health or docs) count against a
//! global and a per-client limit per fixed window.
//!
//! - **Limits.** `ATHENA_ADMISSION_WINDOW_SECS`, `ATHENA_ADMISSION_GLOBAL_LIMIT`
//!   and `ATHENA_ADMISSION_CLIENT_LIMIT` (0 = unlimited, the default); a
//!   client's override (`admission` in `athena_client_configs`) sets its own
//!   window and limit, or exempts it (`enabled: false`). When no limit
//!   applies, nothing is counted and Redis is not asked.
//! - **Counting.** Redis counters shared by every replica: `INCRBY` +
//!   `EXPIRE` of the global and the client key of the current window in one
//!   pipelined round trip, shared by the requests that arrive together
//!   (`counter.rs`). Redis unavailable or slower than the timeout:
//!   an in-process count against limit ÷ `ATHENA_EXPECTED_REPLICAS`, and
//!   Redis is left alone for a second; never an error.
//! - **Over the limit.** A canonical gateway write (`PUT /gateway/insert`,
//!   `POST /gateway/update`, `DELETE /gateway/delete`) of a client with
//!   deferred writes enabled is queued instead (202 with
//!   `deferred_request_id`, decision `defer_requested`; a direct-URI request
//!   never); anything else is 429 `rate_limited` with `Retry-After` (seconds
//!   to the end of the window), decision `rejected`.
//! - **Events.** Every decision other than allow is a `gateway_admission_events`
//!   row, written by a bounded batch writer (`events.rs`): a full queue
//!   drops the row and counts it, never slows a request.

mod counter;
pub mod events;

use crate::api::operations::Operation;
use crate::auth::access::{self, Access};
use crate::auth::rights;
use crate::catalog::client_configs::ClientConfig;
use crate::db::tenants::Tenants;
use crate::domain::DomainError;
use crate::gateway::deferred::Queue;
use events::{Event, EventWriter};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The process-wide defaults (`ATHENA_ADMISSION_*`).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub window_secs: u32,
    /// 0 = unlimited.
    pub global_limit: u64,
    /// 0 = unlimited.
    pub client_limit: u64,
    /// The local fallback's share of a limit (`ATHENA_EXPECTED_REPLICAS`).
    pub expected_replicas: u32,
    /// How long a Redis count may take before the local count decides
    /// (`ATHENA_ADMISSION_REDIS_TIMEOUT_MS`).
    pub redis_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            window_secs: 60,
            global_limit: 0,
            client_limit: 0,
            expected_replicas: 1,
            redis_timeout: Duration::from_millis(100),
        }
    }
}

impl Settings {
    /// The settings, or what is wrong with them.
    pub fn checked(self) -> Result<Settings, String> {
        if !(1..=86_400).contains(&self.window_secs) {
            return Err("ATHENA_ADMISSION_WINDOW_SECS must be between 1 and 86400".into());
        }
        if self.expected_replicas == 0 {
            return Err("ATHENA_EXPECTED_REPLICAS must be at least 1".into());
        }
        if self.redis_timeout.is_zero() {
            return Err("ATHENA_ADMISSION_REDIS_TIMEOUT_MS must be at least 1".into());
        }
        Ok(self)
    }
}

/// What the limiter is told about a request.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    pub method: &'static str,
    /// The route template (`/gateway/insert`).
    pub route: &'static str,
    /// `X-Athena-Client`.
    pub client: Option<&'a str>,
    /// Routed by a direct PostgreSQL URI: never deferred.
    pub direct: bool,
    /// A canonical gateway write, which the deferred queue can take.
    pub deferrable: bool,
    /// `X-Athena-Defer: true`.
    pub defer_requested: bool,
    pub is_query_route: bool,
    pub request_bytes: usize,
    /// Counted against the global limit too (false when `authorize`
    /// already counted the request there and its handler only now learned
    /// the client: a body `db_name`).
    pub count_global: bool,
}

/// The limiter's view of a request to `operation`: `None` for what it
/// never counts (admin, health, docs: anything outside the data-plane
/// rights). Public routes are counted by their handler, as the gateway
/// operation they forward to, against the route's client
/// (`RequestCx::admit_client`).
pub fn subject(
    operation: Operation,
    headers: &http::HeaderMap,
    request_bytes: usize,
) -> Option<Subject<'_>> {
    let rule = access::rule(operation);
    let right = match rule.access {
        Access::Right(r) | Access::Keyed(r) | Access::Bound(r) => r,
        _ => return None,
    };
    let meta = operation.meta();
    let direct = rule.direct_uri
        && ["x-pg-uri", "x-athena-jdbc-url", "x-jdbc-url"]
            .iter()
            .any(|h| headers.contains_key(*h));
    let flag = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true") || v.trim() == "1")
    };
    Some(Subject {
        method: meta.method,
        route: meta.path,
        client: crate::auth::header_client(headers),
        direct,
        deferrable: matches!(
            operation,
            Operation::PutGatewayInsert
                | Operation::PostGatewayUpdate
                | Operation::DeleteGatewayDelete
        ),
        defer_requested: flag("x-athena-defer"),
        is_query_route: right == rights::FETCH || right == rights::RAW_SQL,
        request_bytes,
        count_global: true,
    })
}

/// The limiter's answer for a request it let through.
#[derive(Debug, Clone)]
pub enum Admitted {
    Allow,
    /// Over the limit: the write is queued; the event is recorded once the
    /// handler has its request id (`Admission::deferred`).
    Defer(Box<Event>),
}

/// Which limit a request counted against.
#[derive(Debug, Clone, Copy)]
struct Limit {
    window_secs: u32,
    limit: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Backend {
    Redis,
    Local,
}

pub struct Admission {
    settings: Settings,
    /// The Redis counters (`counter.rs`); `None` without Redis.
    counter: Option<counter::Counter>,
    /// Keys are namespaced by catalog: replicas of one catalog share them.
    namespace: String,
    tenants: Arc<Tenants>,
    deferred: Arc<Queue>,
    events: EventWriter,
    local: Mutex<HashMap<String, (u64, u64)>>,
    /// Tokens drawn from Redis and not used yet, by counter key (its window
    /// is in the key): `(next, last)` (`lease_size`).
    leases: Mutex<HashMap<String, (u64, u64)>>,
    /// Redis failed: counted locally until then.
    redis_down_until: Mutex<Option<Instant>>,
}

/// Most tokens one Redis trip draws (`Admission::lease_size`).
const MAX_LEASE: u64 = 64;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Admission {
    pub fn new(
        settings: Settings,
        redis: Option<deadpool_redis::Pool>,
        namespace: String,
        tenants: Arc<Tenants>,
        deferred: Arc<Queue>,
    ) -> Admission {
        let events = EventWriter::start(tenants.catalog().clone());
        let counter = redis.map(|r| counter::Counter::start(r, settings.redis_timeout));
        Admission {
            settings,
            counter,
            namespace,
            tenants,
            deferred,
            events,
            local: Mutex::new(HashMap::new()),
            leases: Mutex::new(HashMap::new()),
            redis_down_until: Mutex::new(None),
        }
    }

    pub fn events(&self) -> &EventWriter {
        &self.events
    }

    /// The client's override, for a routable client only: an unknown,
    /// inactive or frozen one is refused by its handler anyway, and is not
    /// counted per client (so made-up names cannot mint counters).
    async fn client_config(&self, client: Option<&str>) -> Option<Arc<ClientConfig>> {
        Box::pin(self.tenants.resolve(client?))
            .await
            .ok()
            .map(|t| t.config.clone())
    }

    /// Counts the request and decides: let through, defer, or refuse (429
    /// `rate_limited` with the seconds to the end of the window).
    pub async fn admit(&self, s: &Subject<'_>) -> Result<Admitted, DomainError> {
        let config = self.client_config(s.client).await;
        let client_name = s.client.filter(|_| config.is_some());
        let config = config.unwrap_or_default();
        let admission = config.admission.clone().unwrap_or_default();
        if admission.enabled == Some(false) {
            return Ok(Admitted::Allow);
        }
        let global = Limit {
            window_secs: self.settings.window_secs,
            limit: self.settings.global_limit,
        };
        let client = Limit {
            window_secs: admission
                .window_seconds
                .unwrap_or(self.settings.window_secs),
            limit: admission
                .per_client_limit_per_window
                .unwrap_or(self.settings.client_limit),
        };
        let now = now_secs();
        let mut keys: Vec<(String, Limit, &'static str)> = Vec::new();
        if global.limit > 0 && s.count_global {
            let idx = now / u64::from(global.window_secs);
            keys.push((
                format!(
                    "athena:{}:adm:g:{}:{idx}",
                    self.namespace, global.window_secs
                ),
                global,
                "global",
            ));
        }
        if let Some(name) = client_name.filter(|_| client.limit > 0) {
            let idx = now / u64::from(client.window_secs);
            keys.push((
                format!(
                    "athena:{}:adm:c:{name}:{}:{idx}",
                    self.namespace, client.window_secs
                ),
                client,
                "client",
            ));
        }
        if keys.is_empty() {
            return Ok(Admitted::Allow);
        }
        let (counts, backend) = self.count(&keys).await;
        let replicas = u64::from(self.settings.expected_replicas);
        let over = keys.iter().zip(&counts).find(|((_, l, _), n)| {
            let limit = match backend {
                Backend::Redis => l.limit,
                Backend::Local => (l.limit / replicas).max(1),
            };
            **n > limit
        });
        let Some(((_, limit, scope), count)) = over else {
            return Ok(Admitted::Allow);
        };
        let window = u64::from(limit.window_secs);
        let retry_after = (window - now % window).max(1) as u32;
        let mut event = Event {
            method: s.method.to_string(),
            route: s.route.to_string(),
            client_name: s.client.map(str::to_string),
            request_bytes: Some(s.request_bytes as i64),
            defer_requested: s.defer_requested,
            is_query_route: s.is_query_route,
            decision: "rejected".into(),
            reason: Some(format!(
                "over the {scope} limit of {} per {window}s",
                limit.limit
            )),
            deferred_request_id: None,
            retry_after_seconds: Some(retry_after as i32),
            window_seconds: Some(limit.window_secs as i32),
            global_limit_per_window: Some(global.limit as i64),
            per_client_limit_per_window: Some(client.limit as i64),
            meta: serde_json::json!({
                "limited_by": scope,
                "count": count,
                "backend": match backend { Backend::Redis => "redis", Backend::Local => "local" },
            }),
        };
        if s.deferrable && !s.direct {
            if let Some(name) = client_name {
                let deferred = match config.deferred_writes() {
                    Some(on) => on,
                    None => self.deferred.enabled(name).await.unwrap_or(false),
                };
                if deferred {
                    event.decision = "defer_requested".into();
                    event.defer_requested = true;
                    event.retry_after_seconds = None;
                    return Ok(Admitted::Defer(Box::new(event)));
                }
            }
        }
        let detail = format!(
            "rate limited: over the {scope} limit of {} requests per {window} s; retry in {retry_after} s",
            limit.limit
        );
        self.events.record(event);
        Err(DomainError::RateLimited {
            detail,
            retry_after,
        })
    }

    /// Records a deferral once the handler answered: with the queued
    /// request's id, or without one when the write was refused before it
    /// was queued.
    pub fn deferred(&self, mut event: Event, request_id: Option<String>) {
        if request_id.is_none() {
            event.reason = Some(format!(
                "{}; the write was refused before it was queued",
                event.reason.unwrap_or_default()
            ));
        }
        event.deferred_request_id = request_id;
        self.events.record(event);
    }

    /// The counts of `keys` after this request: Redis, else local.
    async fn count(&self, keys: &[(String, Limit, &'static str)]) -> (Vec<u64>, Backend) {
        if let Some(counter) = self.counter.as_ref().filter(|_| self.redis_usable()) {
            // Tokens already drawn by this replica (a lease) first.
            let mut counts = vec![0; keys.len()];
            let mut draw = Vec::new();
            {
                let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
                for (i, (key, limit, _)) in keys.iter().enumerate() {
                    match leases.get_mut(key) {
                        Some((next, last)) if *next <= *last => {
                            counts[i] = *next;
                            *next += 1;
                        }
                        _ => draw.push((i, self.lease_size(limit))),
                    }
                }
            }
            if draw.is_empty() {
                return (counts, Backend::Redis);
            }
            let bump = draw
                .iter()
                .map(|&(i, amount)| {
                    let (key, limit, _) = &keys[i];
                    (key.clone(), u64::from(limit.window_secs) + 1, amount)
                })
                .collect();
            let counted =
                tokio::time::timeout(self.settings.redis_timeout, counter.bump(bump)).await;
            match counted {
                Ok(Ok(firsts)) if firsts.len() == draw.len() => {
                    let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
                    if leases.len() > 10_000 {
                        // Old windows' keys; bounded whatever happens.
                        leases.clear();
                    }
                    for (&(i, amount), first) in draw.iter().zip(firsts) {
                        counts[i] = first;
                        if amount > 1 {
                            leases.insert(keys[i].0.clone(), (first + 1, first + amount - 1));
                        }
                    }
                    return (counts, Backend::Redis);
                }
                Ok(Ok(_)) => self.redis_failed("unexpected pipeline answer"),
                Ok(Err(e)) => self.redis_failed(&e),
                Err(_) => self.redis_failed("timed out"),
            }
        }
        (self.count_locally(keys), Backend::Local)
    }

    /// Tokens one Redis trip draws for a key under `limit`: up to
    /// `MAX_LEASE` when the limit is large (a replica then serves that many
    /// requests from one `INCRBY`), 1 — every request counted in Redis,
    /// exact — when it is small. Never admits past the limit (a token past
    /// it is refused like a count past it); a replica may leave up to a
    /// lease of tokens unused when the window ends.
    fn lease_size(&self, limit: &Limit) -> u64 {
        let replicas = u64::from(self.settings.expected_replicas).max(1);
        (limit.limit / (replicas * 64 * MAX_LEASE)).clamp(1, MAX_LEASE)
    }

    fn redis_usable(&self) -> bool {
        let mut down = self
            .redis_down_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match *down {
            Some(until) if Instant::now() < until => false,
            Some(_) => {
                *down = None;
                true
            }
            None => true,
        }
    }

    fn redis_failed(&self, why: &str) {
        let mut down = self
            .redis_down_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if down.is_none() {
            tracing::warn!(
                error = why,
                "admission: Redis unavailable, counting locally"
            );
        }
        *down = Some(Instant::now() + Duration::from_secs(1));
    }

    fn count_locally(&self, keys: &[(String, Limit, &'static str)]) -> Vec<u64> {
        let now = now_secs();
        let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        if local.len() > 10_000 {
            local.retain(|_, (expires, _)| *expires > now);
            if local.len() > 100_000 {
                // Bounded whatever happens: a fresh count for everyone.
                local.clear();
            }
        }
        keys.iter()
            .map(|(key, limit, _)| {
                let window = u64::from(limit.window_secs);
                let ends = (now / window + 1) * window;
                let entry = local.entry(key.clone()).or_insert((ends, 0));
                entry.1 += 1;
                entry.1
            })
            .collect()
    }
}
