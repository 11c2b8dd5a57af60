//! Typed extraction (`athena_runtime::extract`) for the server's request
//! context: the generated dispatch reads header and cookie parameters from
//! `RequestCx` and checks credentials through it before any parameter is
//! parsed.

use super::{ApiError, RequestCx};
pub use athena_runtime::extract::*;

/// One request as the generated dispatch receives it.
pub type Inputs = athena_runtime::extract::Inputs<RequestCx>;

impl RequestContext for RequestCx {
    type Cx = RequestCx;

    fn headers(&self) -> &http::HeaderMap {
        RequestCx::headers(self)
    }

    /// Checks the operation's credentials; see `RequestCx::authorize`.
    async fn authorize(&self) -> Result<RequestCx, ApiError> {
        RequestCx::authorize(self).await?;
        Ok(self.clone())
    }
}
