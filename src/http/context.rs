//! Per-request context handed to every trait method: identity of the
//! request, raw headers, peer address, and the credential checks.

use super::ApiError;
use crate::api::operations::Operation;
use crate::auth::Auth;
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
}

impl RequestCx {
    pub fn new(
        request_id: String,
        operation: Operation,
        headers: HeaderMap,
        query: Vec<(String, String)>,
        peer: Option<SocketAddr>,
        auth: Arc<Auth>,
    ) -> Self {
        RequestCx(Arc::new(Inner {
            request_id,
            operation,
            headers,
            query,
            peer,
            auth,
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

    /// The presented API key, from any accepted spelling.
    pub fn credential(&self) -> Option<&str> {
        crate::auth::presented_key(&self.0.headers, &self.0.query)
    }

    /// The checks the contract declares for the operation: the static admin
    /// key for the admin surface. Runs before parameters are parsed.
    pub async fn authorize(&self) -> Result<(), ApiError> {
        if self.0.operation.meta().admin {
            self.0.auth.require_admin(self.credential())?;
        }
        Ok(())
    }
}
