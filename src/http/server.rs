//! The hyper server: one service wrapper for the cross-cutting work
//! (request id, tracing span, metrics, connection and in-flight caps, body
//! limit, request deadline) around routing and the generated dispatch. Auth
//! is not done here: the dispatch asks the request context, per operation.

use super::deadline::{self, Deadline};
use super::extract::Inputs;
use super::metrics::Metrics;
use super::rest_shape;
use super::router::{Match, Router};
use super::{ApiError, Code, HttpResponse, UncheckedCx};
use crate::api::dispatch::dispatch;
use crate::api::operations::{Operation, OPERATIONS};
use crate::auth::Auth;
use crate::handlers::Handlers;
use crate::stats::oplog;
use bytes::Bytes;
use http::{header, HeaderValue, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::sync::LazyLock;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::Instrument;

mod streams;

pub use streams::ServerBody;

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body_bytes: usize,
    /// The streamed upload's own limit (`streams.rs`).
    pub max_upload_bytes: u64,
    pub request_timeout: Duration,
    pub header_read_timeout: Duration,
    pub shutdown_grace: Duration,
    /// Open connections at once (`ATHENA_MAX_CONNECTIONS`); one more is
    /// answered 503 and closed.
    pub max_connections: usize,
    /// Requests being handled at once (`ATHENA_MAX_IN_FLIGHT`, one permit
    /// each; one more is answered 503), read by the background work that
    /// gives way to requests.
    pub load: crate::http::load::Load,
}

/// Over-cap connections being answered 503 at once; beyond, they are
/// closed without an answer.
const MAX_REFUSING: usize = 64;
/// Time given to answer and close one over-cap connection.
const REFUSE_WITHIN: Duration = Duration::from_secs(1);

/// Routes that are not operations of the contract: the page `/docs`
/// redirects to, and compatibility aliases.
#[derive(Clone, Copy)]
enum Extra {
    DocsPage,
    /// `POST /gateway/transaction`, the SDK's atomic transactions
    /// (`handlers/transaction.rs`).
    Transaction,
}

pub struct App {
    handlers: Arc<Handlers>,
    router: Router<Operation>,
    extras: Router<Extra>,
    auth: Arc<Auth>,
    metrics: Arc<Metrics>,
    limits: Limits,
}

pub const DOCS_PAGE_PATH: &str = "/docs/index.html";

impl App {
    pub fn new(
        handlers: Arc<Handlers>,
        auth: Arc<Auth>,
        metrics: Arc<Metrics>,
        limits: Limits,
    ) -> Self {
        let router = Router::new(OPERATIONS.iter().map(|m| (m.method, m.path, m.operation)));
        let extras = Router::new([
            ("GET", DOCS_PAGE_PATH, Extra::DocsPage),
            ("POST", "/gateway/transaction", Extra::Transaction),
        ]);
        App {
            handlers,
            router,
            extras,
            auth,
            metrics,
            limits,
        }
    }

    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: Option<SocketAddr>,
    ) -> http::Response<ServerBody> {
        let started = Instant::now();
        let request_id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_string)
            .unwrap_or_else(new_request_id);
        let method: &'static str = static_method(req.method());
        let is_head = req.method() == http::Method::HEAD;
        // The deadline covers reading the body too: a slow upload is cut.
        let deadline =
            Deadline::new(tokio::time::Instant::from_std(started) + self.limits.request_timeout);
        let permit = self.limits.load.try_acquire();
        // Issue 19: a data-plane request's operation log entry (filled
        // below, sent after the answer; never waits).
        let mut logged: Option<(&'static str, oplog::Note)> = None;

        let (route, operation, response) = match self
            .router
            .route(req.method().as_str(), sdk_alias(req.uri().path()))
        {
            _ if permit.is_err() => (
                "unmatched",
                "overloaded",
                ApiError::unavailable(
                    Code::ServiceUnavailable,
                    format!(
                        "the server is handling its limit of {} requests; retry shortly",
                        self.limits.load.max()
                    ),
                )
                .into_http()
                .map(ServerBody::Full),
            ),
            Match::Found {
                value,
                template,
                params,
            } => {
                let name = value.meta().name;
                let mut req = req;
                // Tenant hosts (issue 13): before the body is read.
                let routed = self.handlers.routing.apply(value, template, &mut req).await;
                // Issue 14: PostgREST's bare shape, one layer over the
                // answer (`rest_shape.rs`; rest and public routes only).
                let shape = rest_shape::wanted(value, req.headers(), &params);
                let response = match (routed, shape) {
                    (_, Some(Err(refused))) | (Err(refused), None) => {
                        refused.into_http().map(ServerBody::Full)
                    }
                    (Err(refused), Some(Ok(layer))) => layer
                        .answer(&self.handlers, refused.into_http())
                        .await
                        .map(ServerBody::Full),
                    // A body streamed in or out (`streams.rs`): no
                    // whole-body read, its own limits.
                    (Ok(()), _) if streams::streamed(value) => {
                        let work =
                            self.clone()
                                .streamed(value, req, params, peer, request_id.clone());
                        traced(work, method, template, name, &request_id).await
                    }
                    (Ok(()), shape) => {
                        let log_op = match self.handlers.insights.oplog.enabled() {
                            true => oplog::operation_of(method, template),
                            false => None,
                        };
                        let work = self.clone().run(
                            value,
                            req,
                            params,
                            peer,
                            request_id.clone(),
                            deadline,
                        );
                        let work = traced(work, method, template, name, &request_id);
                        let response = match log_op {
                            Some(op) => {
                                let (response, note) = oplog::scope(work).await;
                                logged = Some((op, note));
                                response
                            }
                            None => work.await,
                        };
                        let response = match shape {
                            Some(Ok(layer)) => layer.answer(&self.handlers, response).await,
                            _ => response,
                        };
                        response.map(ServerBody::Full)
                    }
                };
                (template, name, response)
            }
            Match::MethodNotAllowed { allow } => (
                "unmatched",
                "unmatched",
                ApiError::method_not_allowed(allow.join(", "))
                    .into_http()
                    .map(ServerBody::Full),
            ),
            Match::NotFound => match self
                .extras
                .route(req.method().as_str(), sdk_alias(req.uri().path()))
            {
                Match::Found {
                    value: Extra::DocsPage,
                    template,
                    ..
                } => (
                    template,
                    "docs_page",
                    self.handlers.docs_page().map(ServerBody::Full),
                ),
                Match::Found {
                    value: Extra::Transaction,
                    template,
                    ..
                } => {
                    let name = "post_gateway_transaction";
                    let work = self.clone().transaction(req, peer, deadline);
                    let response = traced(work, method, template, name, &request_id).await;
                    (template, name, response.map(ServerBody::Full))
                }
                Match::MethodNotAllowed { allow } => (
                    "unmatched",
                    "unmatched",
                    ApiError::method_not_allowed(allow.join(", "))
                        .into_http()
                        .map(ServerBody::Full),
                ),
                _ => (
                    "unmatched",
                    "unmatched",
                    ApiError::not_found(
                        Code::RouteNotFound,
                        format!("no route for {} {}", req.method(), req.uri().path()),
                    )
                    .into_http()
                    .map(ServerBody::Full),
                ),
            },
        };

        let mut response = response;
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-request-id", v);
        }
        if is_head {
            *response.body_mut() = ServerBody::Full(Full::new(Bytes::new()));
        }
        self.metrics.observe(
            method,
            route,
            operation,
            response.status().as_u16(),
            started.elapsed(),
        );
        if let Some((op, note)) = logged {
            self.handlers.insights.oplog.record(oplog::Entry {
                request_id,
                operation: op,
                method,
                path: route,
                status: response.status().as_u16(),
                duration_ms: started.elapsed().as_millis() as i64,
                note,
                at: std::time::SystemTime::now(),
            });
        }
        drop(permit);
        response
    }

    async fn run(
        self: Arc<Self>,
        operation: Operation,
        req: Request<Incoming>,
        path_params: Vec<(String, String)>,
        peer: Option<SocketAddr>,
        request_id: String,
        deadline: Arc<Deadline>,
    ) -> HttpResponse {
        let (parts, body) = req.into_parts();
        let declared = declared_length(&parts.headers);
        let query = query_pairs(&parts.uri);
        if let Err(refused) = self
            .auth
            .refuse_before_body(operation, &parts.headers, &query)
        {
            return refused.into_http();
        }
        let handlers = self.handlers.clone();
        let auth = self.auth.clone();
        self.within_deadline(deadline, declared, body, move |body| {
            let cx = UncheckedCx::new(
                request_id,
                operation,
                parts.headers,
                query.clone(),
                peer,
                auth,
                body.clone(),
            );
            // The admission limiter's deferrals answer 202 (`UncheckedCx::settle`).
            let settle = cx.clone();
            let inputs = Inputs {
                cx,
                path_params,
                query,
                body,
            };
            async move { settle.settle(dispatch(handlers, operation, inputs).await) }
        })
        .await
    }

    /// `POST /gateway/transaction`: same body limit and deadline as every
    /// operation; credentials are checked per operation kind inside.
    async fn transaction(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: Option<SocketAddr>,
        deadline: Arc<Deadline>,
    ) -> HttpResponse {
        let (parts, body) = req.into_parts();
        let origin = self.auth.origin(peer, &parts.headers);
        let declared = declared_length(&parts.headers);
        let query = query_pairs(&parts.uri);
        let app = self.clone();
        self.within_deadline(deadline, declared, body, move |body| async move {
            app.handlers
                .gateway_transaction(&app.auth, &origin, &parts.headers, &query, body)
                .await
        })
        .await
    }

    /// The request body, refused with 413 past the configured limit.
    async fn read_body(
        &self,
        declared: Option<u64>,
        body: Incoming,
    ) -> Result<Bytes, HttpResponse> {
        let too_large = || {
            ApiError::new(
                Code::PayloadTooLarge,
                "Payload too large",
                format!(
                    "request bodies are limited to {} bytes",
                    self.limits.max_body_bytes
                ),
            )
            .into_http()
        };
        if declared.is_some_and(|n| n > self.limits.max_body_bytes as u64) {
            return Err(too_large());
        }
        match Limited::new(body, self.limits.max_body_bytes)
            .collect()
            .await
        {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
            Err(e) => Err(
                ApiError::bad_request(format!("could not read the request body: {e}")).into_http(),
            ),
        }
    }

    /// Reads the body, then runs the handler, both under the request
    /// deadline (`src/http/deadline.rs`); errors become the envelope. A body
    /// not received in time is a 408 and the connection is closed (the rest
    /// of the upload is never read); a handler past the deadline is a 504.
    async fn within_deadline<F, W>(
        &self,
        deadline: Arc<Deadline>,
        declared: Option<u64>,
        body: Incoming,
        handler: F,
    ) -> HttpResponse
    where
        F: FnOnce(Bytes) -> W,
        W: std::future::Future<Output = Result<HttpResponse, ApiError>>,
    {
        let body_read = AtomicBool::new(false);
        let work = async {
            let body = match self.read_body(declared, body).await {
                Ok(body) => body,
                Err(response) => return Ok(response),
            };
            body_read.store(true, Ordering::Relaxed);
            handler(body).await
        };
        match deadline::run(deadline, work).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                if error.status().is_server_error() {
                    tracing::warn!(code = error.code.as_str(), detail = %error.detail, "request failed");
                }
                error.into_http()
            }
            Err(deadline::Expired) if !body_read.load(Ordering::Relaxed) => {
                let mut response = ApiError::new(
                    Code::RequestTimeout,
                    "Request timeout",
                    format!(
                        "the request body was not received within {} ms",
                        self.limits.request_timeout.as_millis()
                    ),
                )
                .into_http();
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                response
            }
            Err(deadline::Expired) => ApiError::new(
                Code::Timeout,
                "Request timed out",
                format!(
                    "the request did not complete within {} ms",
                    self.limits.request_timeout.as_millis()
                ),
            )
            .into_http(),
        }
    }
}

/// The declared `Content-Length`, if any.
fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// A fresh request id in the UUID v4 layout: keyed SipHash (random keys
/// per process) of a counter, so ids stay unpredictable and unique without
/// a `getrandom` system call per request.
fn new_request_id() -> String {
    static KEYS: LazyLock<RandomState> = LazyLock::new(RandomState::new);
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&KEYS.hash_one((n, 0u8)).to_le_bytes());
    bytes[8..].copy_from_slice(&KEYS.hash_one((n, 1u8)).to_le_bytes());
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// Runs a routed request inside its span `"{METHOD} {route}"`, recording
/// the status it answered.
async fn traced<B>(
    work: impl std::future::Future<Output = http::Response<B>>,
    method: &'static str,
    template: &'static str,
    operation: &'static str,
    request_id: &str,
) -> http::Response<B> {
    let span = tracing::info_span!(
        "request",
        otel.name = %format!("{method} {template}"),
        http.request.method = method,
        http.route = template,
        operation = operation,
        request_id = %request_id,
        http.response.status_code = tracing::field::Empty,
    );
    let response = work.instrument(span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    response
}

/// The decoded query string, in order.
fn query_pairs(uri: &http::Uri) -> Vec<(String, String)> {
    uri.query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

/// The official SDK, given one base URL, sends every database call under
/// `/db` (`/db/gateway/fetch`, `/db/rpc/…`, `/db/health`); no contract path
/// starts with `/db`, so the prefix is simply dropped.
///
/// Its storage module, given a storage URL ending in `/storage`, strips that
/// prefix from the contract's routes but not from its canonical ones
/// (`providers`, `connections`: athena-js 5.2.0 `callManifestRoute`), which
/// so arrive as `/storage/storage/…`; no contract path starts with that, so
/// one `/storage` is dropped.
fn sdk_alias(path: &str) -> &str {
    if let Some(rest) = path.strip_prefix("/storage/storage/") {
        // `rest` is a suffix of `path`: keep its leading `/storage/`.
        return &path[path.len() - rest.len() - "/storage/".len()..];
    }
    match path.strip_prefix("/db") {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    }
}

fn static_method(m: &http::Method) -> &'static str {
    match *m {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Accepts connections until `shutdown` resolves, then stops accepting and
/// drains in-flight requests for up to the configured grace period.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(app.limits.header_read_timeout)
        .keep_alive(true);
    let connections = Arc::new(Semaphore::new(app.limits.max_connections));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let Ok(slot) = connections.clone().try_acquire_owned() else {
                    // Over the cap: answer 503 and close, off the accept loop.
                    if let Ok(refusal) = refusing.clone().try_acquire_owned() {
                        let max = app.limits.max_connections;
                        tokio::spawn(async move {
                            refuse(stream, max).await;
                            drop(refusal);
                        });
                    }
                    continue;
                };
                let app = app.clone();
                let service = tower::service_fn(move |req: Request<Incoming>| {
                    let app = app.clone();
                    // The peer is the caller of any outbound work the request
                    // starts (per-caller limits, `src/outbound.rs`). Boxed: the
                    // request future is large, and is then moved by pointer.
                    let work = crate::outbound::with_caller(
                        Some(peer),
                        Box::pin(app.handle(req, Some(peer))),
                    );
                    async move { Ok::<_, Infallible>(work.await) }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), hyper_util::service::TowerToHyperService::new(service));
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection closed with error");
                    }
                    drop(slot);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: draining in-flight requests");
    let draining = std::time::Instant::now();
    if tokio::time::timeout(app.limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("grace period elapsed with connections still open");
    }
    // Issue 19: the operation log's queued rows are written before exit,
    // within what is left of the grace period.
    let left = app.limits.shutdown_grace.saturating_sub(draining.elapsed());
    app.handlers.insights.oplog.flush(left).await;
}

/// Answers a connection over `ATHENA_MAX_CONNECTIONS`: 503 with
/// `Retry-After` and the standard envelope, then closes it (after draining
/// what the client sent, so the answer is not lost to a reset).
async fn refuse(mut stream: TcpStream, max: usize) {
    let error = ApiError::unavailable(
        Code::ServiceUnavailable,
        format!("the server is at its limit of {max} connections; retry shortly"),
    );
    let body = serde_json::to_vec(&error.envelope()).unwrap_or_default();
    let mut answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: {}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        error.retry_after.unwrap_or(1),
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    let _ = tokio::time::timeout(REFUSE_WITHIN, async {
        stream.write_all(&answer).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut drained = 0;
        while drained < 64 * 1024 {
            match stream.read(&mut sink).await? {
                0 => break,
                n => drained += n,
            }
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
    tracing::debug!("refused a connection over the connection cap");
}

#[cfg(test)]
mod tests {
    use super::sdk_alias;

    #[test]
    fn request_ids_are_distinct_v4_uuids() {
        let ids: std::collections::HashSet<String> =
            (0..1000).map(|_| super::new_request_id()).collect();
        assert_eq!(ids.len(), 1000);
        for id in ids.iter().take(10) {
            assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
        }
    }

    #[test]
    fn db_prefix_is_an_alias() {
        assert_eq!(sdk_alias("/db/gateway/fetch"), "/gateway/fetch");
        assert_eq!(sdk_alias("/db"), "/");
        assert_eq!(sdk_alias("/dbx/y"), "/dbx/y");
        assert_eq!(sdk_alias("/gateway/fetch"), "/gateway/fetch");
        assert_eq!(
            sdk_alias("/storage/storage/providers"),
            "/storage/providers"
        );
        assert_eq!(
            sdk_alias("/storage/storage/connections/x"),
            "/storage/connections/x"
        );
        assert_eq!(sdk_alias("/storage/objects"), "/storage/objects");
        assert_eq!(sdk_alias("/storage/storage"), "/storage/storage");
    }
}
