//! Per-request context handed to every trait method: identity of the
//! request, raw headers, peer address, and the credential checks.

use super::ApiError;
use crate::api::operations::Operation;
use crate::auth::{Auth, Principal};
use http::HeaderMap;
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Clone)]
pub struct RequestCx(Arc<Inner>);

struct Inner {
    request_id: String,
    operation: Operation,
    headers: HeaderMap,
    query: Vec<(String, String)>,
    peer: Option<SocketAddr>,
    auth: Arc<Auth>,
    principal: std::sync::OnceLock<Principal>,
    body: bytes::Bytes,
}

impl RequestCx {
    pub fn new(
        request_id: String,
        operation: Operation,
        headers: HeaderMap,
        query: Vec<(String, String)>,
        peer: Option<SocketAddr>,
        auth: Arc<Auth>,
        body: bytes::Bytes,
    ) -> Self {
        RequestCx(Arc::new(Inner {
            request_id,
            operation,
            headers,
            query,
            peer,
            auth,
            principal: std::sync::OnceLock::new(),
            body,
        }))
    }

    pub fn request_id(&self) -> &str {
        &self.0.request_id
    }

    pub fn operation(&self) -> Operation {
        self.0.operation
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.0.headers
    }

    pub fn query(&self) -> &[(String, String)] {
        &self.0.query
    }

    pub fn peer(&self) -> Option<SocketAddr> {
        self.0.peer
    }

    /// Whether the JSON body has this top-level field at all (typed models
    /// merge absent with empty/null; partial updates need the difference).
    pub fn body_has_field(&self, name: &str) -> bool {
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&self.0.body)
            .is_ok_and(|m| m.contains_key(name))
    }

    /// The presented API key, from any accepted spelling.
    pub fn credential(&self) -> Option<&str> {
        crate::auth::presented_key(&self.0.headers, &self.0.query)
    }

    /// The operation's credential checks (see `Auth::authorize`). Runs in
    /// the dispatch before any parameter is parsed.
    pub async fn authorize(&self) -> Result<(), ApiError> {
        let principal = self
            .0
            .auth
            .authorize(self.0.operation.meta(), &self.0.headers, &self.0.query)
            .await?;
        let _ = self.0.principal.set(principal);
        Ok(())
    }

    /// Who is calling (`Open` before `authorize`).
    pub fn principal(&self) -> &Principal {
        self.0.principal.get().unwrap_or(&Principal::Open)
    }

    /// An additional right for this request (e.g. update for an upsert).
    pub fn require_right(&self, right: &str) -> Result<(), ApiError> {
        let client = self
            .0
            .headers
            .get("x-athena-client")
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        self.principal().require(right, client)
    }
}
