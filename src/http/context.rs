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

    /// The presented API key, from any accepted spelling (several
    /// different keys are a 401).
    pub fn credential(&self) -> Result<Option<crate::auth::Presented<'_>>, ApiError> {
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

    /// An additional right for this request.
    pub fn require_right(&self, right: &str) -> Result<(), ApiError> {
        self.require_rights(&[right])
    }

    /// Every one of `rights` (e.g. a planned write's: an upsert needs
    /// update as well as insert).
    pub fn require_rights(&self, rights: &[&str]) -> Result<(), ApiError> {
        let client = crate::auth::header_client(&self.0.headers);
        self.principal().require_all(rights, client)
    }

    /// Whether the static admin key came in a key header (never the query
    /// string; several different keys are not the admin key).
    pub fn presents_admin_key(&self) -> bool {
        self.credential()
            .ok()
            .flatten()
            .is_some_and(|key| self.0.auth.admin().matches_presented(&key))
    }

    /// The data-plane key check against `client`, for routes that resolve
    /// their client themselves (`crate::auth::data_plane_principal`).
    pub async fn data_plane_principal(&self, client: &str) -> Result<Principal, ApiError> {
        crate::auth::data_plane_principal(
            self.0.auth.admin(),
            self.0.auth.keys(),
            Some(client),
            self.credential()?,
        )
        .await
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
        if let Some(client) = crate::auth::header_client(&self.0.headers) {
            return Ok(client);
        }
        let client = body_client
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| ApiError::missing_parameter("header", "X-Athena-Client"))?;
        self.0
            .auth
            .authorize_for(
                self.0.operation.meta(),
                &self.0.headers,
                &self.0.query,
                Some(client),
            )
            .await?;
        Ok(client)
    }
}
