//! Per-request context handed to every trait method: identity of the
//! request, raw headers, peer address, who is calling (the `Actor`
//! authorization established) and the credential checks.
//!
//! A request arrives as an `UncheckedCx`; the dispatch authorizes it
//! before any parameter is parsed, and only that yields a `RequestCx`, so
//! no handler can run without an actor.

use super::ApiError;
use crate::api::operations::Operation;
use crate::auth::ip_policy::Origin;
use crate::auth::rights::Right;
use crate::auth::{Actor, Auth};
use http::HeaderMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// A request whose credentials were not checked yet: what the dispatch
/// and the extractors read before `authorize`.
#[derive(Clone)]
pub struct UncheckedCx(Arc<Inner>);

/// A request and its authorized caller.
#[derive(Clone)]
pub struct RequestCx {
    request: Arc<Inner>,
    actor: Actor,
}

struct Inner {
    request_id: String,
    operation: Operation,
    headers: HeaderMap,
    query: Vec<(String, String)>,
    peer: Option<SocketAddr>,
    /// The client address (IP policy), resolved once here.
    origin: Origin,
    auth: Arc<Auth>,
    body: bytes::Bytes,
    /// The admission limiter's decision (`UncheckedCx::admit`).
    admitted: std::sync::OnceLock<crate::admission::Admitted>,
}

impl UncheckedCx {
    pub fn new(
        request_id: String,
        operation: Operation,
        headers: HeaderMap,
        query: Vec<(String, String)>,
        peer: Option<SocketAddr>,
        auth: Arc<Auth>,
        body: bytes::Bytes,
    ) -> Self {
        let origin = auth.origin(peer, &headers);
        UncheckedCx(Arc::new(Inner {
            request_id,
            operation,
            headers,
            query,
            peer,
            origin,
            auth,
            body,
            admitted: std::sync::OnceLock::new(),
        }))
    }

    pub fn operation(&self) -> Operation {
        self.0.operation
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.0.headers
    }

    /// The operation's credential checks (its row in
    /// `crate::auth::access`, see `Auth::authorize`): the request with its
    /// actor, or the refusal.
    pub async fn authorize(&self) -> Result<RequestCx, ApiError> {
        let actor = self
            .0
            .auth
            .authorize(
                self.0.operation.meta(),
                &self.0.headers,
                &self.0.query,
                &self.0.origin,
            )
            .await?;
        self.admit().await?;
        crate::stats::oplog::note_authorized(true);
        Ok(RequestCx {
            request: self.0.clone(),
            actor,
        })
    }

    // --- admission (src/admission/) ---

    /// The admission limiter, after authorization and before the handler:
    /// 429 over the limit, or the request goes on (to be deferred when the
    /// limiter decided so: `RequestCx::admission_defers`, `settle`).
    async fn admit(&self) -> Result<(), ApiError> {
        let Some(admission) = self.0.auth.admission() else {
            return Ok(());
        };
        let Some(subject) =
            crate::admission::subject(self.0.operation, &self.0.headers, self.0.body.len())
        else {
            return Ok(());
        };
        // Boxed: the limiter's lookups would otherwise sit inline in every
        // dispatch future.
        let admitted = Box::pin(admission.admit(&subject)).await?;
        let _ = self.0.admitted.set(admitted);
        Ok(())
    }

    /// After the handler: a write the limiter deferred answers 202 (its
    /// queued answer carries `deferred_request_id`) and its event is
    /// recorded with that id.
    pub fn settle(
        &self,
        mut response: Result<crate::http::HttpResponse, ApiError>,
    ) -> Result<crate::http::HttpResponse, ApiError> {
        let (Some(crate::admission::Admitted::Defer(event)), Some(admission)) =
            (self.0.admitted.get(), self.0.auth.admission())
        else {
            return response;
        };
        let id = match &mut response {
            Ok(r) => {
                let id = r
                    .headers()
                    .get("x-athena-deferred-request-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                if id.is_some() && r.status() == http::StatusCode::OK {
                    *r.status_mut() = http::StatusCode::ACCEPTED;
                }
                id
            }
            Err(_) => None,
        };
        admission.deferred((**event).clone(), id);
        response
    }
}

impl RequestCx {
    pub fn request_id(&self) -> &str {
        &self.request.request_id
    }

    pub fn operation(&self) -> Operation {
        self.request.operation
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.request.headers
    }

    /// The request body as received (billing verifies provider
    /// signatures over these bytes; routes whose contract declares no body,
    /// e.g. `POST /management/views`, read their documented JSON from it).
    pub fn body(&self) -> &bytes::Bytes {
        &self.request.body
    }

    pub fn query(&self) -> &[(String, String)] {
        &self.request.query
    }

    pub fn peer(&self) -> Option<SocketAddr> {
        self.request.peer
    }

    /// The client address the IP policy judged (the peer, or what a
    /// trusted proxy forwarded); `None` when unknown.
    pub fn client_ip(&self) -> Option<std::net::IpAddr> {
        self.request.origin.ip()
    }

    /// Whether the JSON body has this top-level field at all (typed models
    /// merge absent with empty/null; partial updates need the difference).
    pub fn body_has_field(&self, name: &str) -> bool {
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&self.request.body)
            .is_ok_and(|m| m.contains_key(name))
    }

    /// The presented API key, from any accepted spelling (several
    /// different keys are a 401).
    pub fn credential(&self) -> Result<Option<crate::auth::Presented<'_>>, ApiError> {
        crate::auth::presented_key(&self.request.headers, &self.request.query)
    }

    /// The admission limiter decided to queue this write (over the limit,
    /// deferred writes enabled): the handler defers it.
    pub fn admission_defers(&self) -> bool {
        matches!(
            self.request.admitted.get(),
            Some(crate::admission::Admitted::Defer(_))
        )
    }

    /// Who is calling, as `authorize` established it.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// An additional right for this request.
    pub fn require_right(&self, right: Right) -> Result<(), ApiError> {
        self.require_rights(&[right])
    }

    /// Every one of `rights` (e.g. a planned write's: an upsert needs
    /// update as well as insert).
    pub fn require_rights(&self, rights: &[Right]) -> Result<(), ApiError> {
        let client = crate::auth::header_client(&self.request.headers);
        self.actor.require_all(rights, client)
    }

    /// Whether the static admin key came in a key header (never the query
    /// string; several different keys are not the admin key).
    pub fn presents_admin_key(&self) -> bool {
        self.credential()
            .ok()
            .flatten()
            .is_some_and(|key| self.request.auth.admin().matches_presented(&key))
    }

    /// The data-plane key check against `client`, for routes that resolve
    /// their client themselves (`crate::auth::data_plane_actor`).
    pub async fn data_plane_actor(&self, client: &str) -> Result<Actor, ApiError> {
        crate::auth::data_plane_actor(
            self.request.auth.admin(),
            self.request.auth.keys(),
            Some(client),
            self.credential()?,
            &self.request.origin,
        )
        .await
    }

    /// The limiter for a request whose client only its handler knows (a
    /// public route's, a body `db_name`): `operation` counted against
    /// `client`, and against the global limit unless `authorize` already
    /// did. Never deferred (429 over the limit).
    pub async fn admit_client(
        &self,
        operation: Operation,
        client: &str,
        count_global: bool,
    ) -> Result<(), ApiError> {
        let Some(admission) = self.request.auth.admission() else {
            return Ok(());
        };
        let Some(mut subject) =
            crate::admission::subject(operation, &self.request.headers, self.request.body.len())
        else {
            return Ok(());
        };
        subject.client = Some(client);
        subject.deferrable = false;
        subject.count_global = count_global;
        Box::pin(admission.admit(&subject)).await?;
        Ok(())
    }

    /// The client a request runs on when the route also names it in the
    /// body (`db_name`): `X-Athena-Client` when present (that is what
    /// `authorize` checked), else `body_client`, which is then authorized
    /// exactly as the header would have been. Authorization and execution
    /// always name the same tenant.
    pub async fn target_client<'a>(
        &'a self,
        body_client: Option<&'a str>,
    ) -> Result<&'a str, ApiError> {
        if let Some(client) = crate::auth::header_client(&self.request.headers) {
            return Ok(client);
        }
        let client = body_client
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| ApiError::missing_parameter("header", "X-Athena-Client"))?;
        // Logged under a client only once authorized for it (`oplog`).
        crate::stats::oplog::note_authorized(false);
        self.request
            .auth
            .authorize_for(
                self.request.operation.meta(),
                &self.request.headers,
                &self.request.query,
                Some(client),
                &self.request.origin,
            )
            .await?;
        // `authorize` counted the request globally, not knowing its client.
        self.admit_client(self.request.operation, client, false)
            .await?;
        crate::stats::oplog::note_authorized(true);
        Ok(client)
    }
}
