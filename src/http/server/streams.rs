//! The operations whose bytes are streams, served here instead of by
//! the generated dispatch (which reads the whole body into memory, under
//! `ATHENA_MAX_BODY_BYTES`, and answers a buffered body):
//!
//! - `PUT /storage/files/{file_id}/upload`: the request body is handed to
//!   the storage layer as it arrives (`ByteStream`), up to
//!   `ATHENA_MAX_UPLOAD_BYTES` (413 past it), each chunk awaited at most
//!   the request timeout (a stalled upload is cut); no total deadline.
//! - `GET /storage/files/{file_id}/proxy`: the answer's body is the S3
//!   object's body, passed on frame by frame.
//! - `GET /admin/backups/{key}/download`: the dump, passed on likewise.
//!
//! All authorize exactly as the dispatch does (`UncheckedCx::authorize`,
//! the operation's row in `src/auth/access.rs`) and read their parameters
//! with the generated extractors, before any byte moves; the handlers are
//! in `handlers/storage/streams.rs`. The one exception is the access
//! table's `signed_url`: a proxy request carrying a proxy-url `token` is
//! verified by that token instead of a key and an actor.

use super::{declared_length, query_pairs, App};
use crate::api::operations::Operation;
use crate::api::params;
use crate::http::{ApiError, Code, UncheckedCx};
use crate::storage::files::{ByteStream, Proxied};
use athena_runtime::extract::Fields;
use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every answer's body: buffered, or streamed from S3.
pub enum ServerBody {
    Full(Full<Bytes>),
    Stream(BoxBody<Bytes, BoxError>),
}

impl hyper::body::Body for ServerBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ServerBody::Full(b) => std::pin::Pin::new(b)
                .poll_frame(cx)
                .map(|frame| frame.map(|r| r.map_err(|never| match never {}))),
            ServerBody::Stream(b) => std::pin::Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ServerBody::Full(b) => b.is_end_stream(),
            ServerBody::Stream(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            ServerBody::Full(b) => b.size_hint(),
            ServerBody::Stream(b) => b.size_hint(),
        }
    }
}

/// Whether `operation` is served here.
pub(super) fn streamed(operation: Operation) -> bool {
    matches!(
        operation,
        Operation::PutStorageFilesByFileIdUpload
            | Operation::GetStorageFilesByFileIdProxy
            | Operation::GetAdminBackupsByKeyDownload
    )
}

/// `work`, or a 504 past `limit`.
/// What every streamed operation does before any byte moves: authorize as
/// the dispatch does (`UncheckedCx::authorize`), then read the operation's
/// parameters with its generated extractor (`extract`, e.g.
/// `params::GetStorageFilesByFileIdProxy::extract`).
#[allow(clippy::too_many_arguments)]
async fn authorized<P>(
    app: &App,
    operation: Operation,
    headers: http::HeaderMap,
    query: &[(String, String)],
    path_params: &[(String, String)],
    peer: Option<SocketAddr>,
    request_id: String,
    extract: impl FnOnce(&Fields<'_>) -> Result<P, ApiError>,
) -> Result<(crate::http::RequestCx, P), ApiError> {
    let unchecked = UncheckedCx::new(
        request_id,
        operation,
        headers,
        query.to_vec(),
        peer,
        app.auth.clone(),
        Bytes::new(),
    );
    let cx = unchecked.authorize().await?;
    let params = extract(&Fields {
        path_params,
        query,
        headers: cx.headers(),
        body: &Bytes::new(),
    })?;
    Ok((cx, params))
}

async fn within<T>(
    limit: Duration,
    work: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    tokio::time::timeout(limit, work).await.map_err(|_| {
        ApiError::new(
            Code::Timeout,
            "Request timed out",
            format!(
                "the request did not complete within {} ms",
                limit.as_millis()
            ),
        )
    })?
}

fn header(parts: &http::request::Parts, name: http::header::HeaderName) -> Option<String> {
    parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn too_large(max: u64) -> ApiError {
    ApiError::new(
        Code::PayloadTooLarge,
        "Payload too large",
        format!("uploads are limited to {max} bytes (ATHENA_MAX_UPLOAD_BYTES)"),
    )
}

/// The request body as a stream of chunks: at most `max` bytes (past it
/// `over` is set and the stream fails), each chunk within `idle`.
/// The slowest an upload may average once its first `idle` window has
/// passed: a body trickling a byte at a time would otherwise hold its
/// in-flight slot (and a connection) for as long as it likes.
const MIN_UPLOAD_RATE: u64 = 16 * 1024;

fn body_stream(body: Incoming, max: u64, idle: Duration, over: Arc<AtomicBool>) -> ByteStream {
    use crate::domain::DomainError;
    let started = std::time::Instant::now();
    Box::pin(futures_util::stream::unfold(
        Some((body, 0u64)),
        move |state| {
            let over = over.clone();
            async move {
                let (mut body, seen) = state?;
                loop {
                    let frame = match tokio::time::timeout(idle, body.frame()).await {
                        Err(_) => {
                            let e = DomainError::Invalid(format!(
                                "the upload stalled: no bytes for {} ms",
                                idle.as_millis()
                            ));
                            return Some((Err(e), None));
                        }
                        Ok(None) => return None,
                        Ok(Some(Err(e))) => {
                            let e = DomainError::Invalid(format!(
                                "could not read the request body: {e}"
                            ));
                            return Some((Err(e), None));
                        }
                        Ok(Some(Ok(frame))) => frame,
                    };
                    // Trailers carry no bytes.
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    let seen = seen + data.len() as u64;
                    let late = started.elapsed().saturating_sub(idle);
                    if seen < MIN_UPLOAD_RATE.saturating_mul(late.as_secs()) {
                        let e = DomainError::Invalid(format!(
                            "the upload is too slow: under {} KiB/s on average",
                            MIN_UPLOAD_RATE / 1024
                        ));
                        return Some((Err(e), None));
                    }
                    if seen > max {
                        over.store(true, Ordering::Relaxed);
                        let e = DomainError::Invalid("the upload is too large".into());
                        return Some((Err(e), None));
                    }
                    return Some((Ok(data), Some((body, seen))));
                }
            }
        },
    ))
}

/// The S3 body passed on frame by frame, each within `idle` (a stalled
/// store ends the answer, which the caller sees as a cut transfer).
fn passed_on(body: Incoming, idle: Duration) -> BoxBody<Bytes, BoxError> {
    let frames = futures_util::stream::unfold(Some(body), move |state| async move {
        let mut body = state?;
        match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => Some((
                Err::<Frame<Bytes>, BoxError>("the S3 store stalled".into()),
                None,
            )),
            Ok(None) => None,
            Ok(Some(Err(e))) => Some((Err(Box::new(e) as BoxError), None)),
            Ok(Some(Ok(frame))) => Some((Ok(frame), Some(body))),
        }
    });
    BoxBody::new(StreamBody::new(frames))
}

impl App {
    /// Serves a `streamed` operation.
    pub(super) async fn streamed(
        self: Arc<Self>,
        operation: Operation,
        req: Request<Incoming>,
        path_params: Vec<(String, String)>,
        peer: Option<SocketAddr>,
        request_id: String,
    ) -> Response<ServerBody> {
        let result = match operation {
            Operation::PutStorageFilesByFileIdUpload => {
                self.upload(operation, req, path_params, peer, request_id)
                    .await
            }
            Operation::GetAdminBackupsByKeyDownload => {
                self.backup_download(operation, req, path_params, peer, request_id)
                    .await
            }
            _ => {
                self.proxy(operation, req, path_params, peer, request_id)
                    .await
            }
        };
        result.unwrap_or_else(|(error, close)| {
            if error.status().is_server_error() {
                tracing::warn!(code = error.code.as_str(), detail = %error.detail, "request failed");
            }
            let mut response = error.into_http();
            if close {
                // The rest of the upload is never read.
                response
                    .headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            response.map(ServerBody::Full)
        })
    }

    /// `PUT /storage/files/{file_id}/upload`.
    async fn upload(
        &self,
        operation: Operation,
        req: Request<Incoming>,
        path_params: Vec<(String, String)>,
        peer: Option<SocketAddr>,
        request_id: String,
    ) -> Result<Response<ServerBody>, (ApiError, bool)> {
        let (parts, body) = req.into_parts();
        let max = self.limits.max_upload_bytes;
        if declared_length(&parts.headers).is_some_and(|n| n > max) {
            return Err((too_large(max), true));
        }
        let query = query_pairs(&parts.uri);
        let content_type = header(&parts, CONTENT_TYPE);
        let idle = self.limits.request_timeout;
        // Credentials and parameters before any byte is read.
        let checked = authorized(
            self,
            operation,
            parts.headers,
            &query,
            &path_params,
            peer,
            request_id,
            params::PutStorageFilesByFileIdUpload::extract,
        );
        let (cx, params) = within(idle, checked).await.map_err(|e| (e, true))?;
        let over = Arc::new(AtomicBool::new(false));
        let stream = body_stream(body, max, idle, over.clone());
        match self
            .handlers
            .upload_file_stream(cx, params, content_type, stream)
            .await
        {
            Ok(response) => Ok(response.map(ServerBody::Full)),
            Err(_) if over.load(Ordering::Relaxed) => Err((too_large(max), true)),
            Err(e) => Err((e, true)),
        }
    }

    /// `GET /admin/backups/{key}/download` (issue 18): the dump streamed
    /// from S3 as an attachment, never held whole in memory.
    async fn backup_download(
        &self,
        operation: Operation,
        req: Request<Incoming>,
        path_params: Vec<(String, String)>,
        peer: Option<SocketAddr>,
        request_id: String,
    ) -> Result<Response<ServerBody>, (ApiError, bool)> {
        let (parts, _) = req.into_parts();
        let query = query_pairs(&parts.uri);
        let limit = self.limits.request_timeout;
        let work = async {
            let (cx, params) = authorized(
                self,
                operation,
                parts.headers,
                &query,
                &path_params,
                peer,
                request_id,
                params::GetAdminBackupsByKeyDownload::extract,
            )
            .await?;
            self.handlers.backup_download(cx, params).await
        };
        let (name, length, body) = within(limit, work).await.map_err(|e| (e, false))?;
        let mut response = Response::new(ServerBody::Stream(passed_on(body, limit)));
        let headers = response.headers_mut();
        // The contract's type; the bytes are pg_dump's custom format.
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/gzip"));
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            headers.insert(http::header::CONTENT_DISPOSITION, v);
        }
        if let Some(v) = length.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert(http::header::CONTENT_LENGTH, v);
        }
        Ok(response)
    }

    /// `GET /storage/files/{file_id}/proxy`.
    async fn proxy(
        &self,
        operation: Operation,
        req: Request<Incoming>,
        path_params: Vec<(String, String)>,
        peer: Option<SocketAddr>,
        request_id: String,
    ) -> Result<Response<ServerBody>, (ApiError, bool)> {
        let (parts, _) = req.into_parts();
        let query = query_pairs(&parts.uri);
        let range = header(&parts, RANGE);
        let limit = self.limits.request_timeout;
        let signed = crate::auth::access::rule(operation).signed_url
            && query.iter().any(|(k, _)| k == "token");
        let proxied = if signed {
            let file_id = path_params
                .iter()
                .find(|(k, _)| k == "file_id")
                .map(|(_, v)| v.as_str())
                .unwrap_or_default();
            within(
                limit,
                self.handlers
                    .proxy_file_signed(file_id, &query, range.as_deref()),
            )
            .await
        } else {
            let work = async {
                let (cx, params) = authorized(
                    self,
                    operation,
                    parts.headers,
                    &query,
                    &path_params,
                    peer,
                    request_id,
                    params::GetStorageFilesByFileIdProxy::extract,
                )
                .await?;
                self.handlers.proxy_file(cx, params, range.as_deref()).await
            };
            within(limit, work).await
        }
        .map_err(|e| (e, false))?;
        Ok(match proxied {
            Proxied::Unsatisfiable { size } => {
                let mut response = ApiError::new(
                    Code::BadRequest,
                    "Range not satisfiable",
                    "the requested range starts past the end of the file",
                )
                .into_http();
                *response.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
                if let Some(v) =
                    size.and_then(|n| HeaderValue::from_str(&format!("bytes */{n}")).ok())
                {
                    response.headers_mut().insert(CONTENT_RANGE, v);
                }
                response.map(ServerBody::Full)
            }
            Proxied::Bytes {
                status,
                headers,
                body,
            } => {
                let mut response = Response::new(ServerBody::Stream(passed_on(body, limit)));
                *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                *response.headers_mut() = headers;
                response
            }
        })
    }
}
