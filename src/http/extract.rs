//! Typed extraction (`athena_runtime::extract`) for the server's request
//! context: the generated dispatch reads header and cookie parameters from
//! the unchecked request and authorizes it, before any parameter is parsed,
//! into the `RequestCx` every handler receives.

use super::{ApiError, RequestCx, UncheckedCx};
pub use athena_runtime::extract::*;

/// One request as the generated dispatch receives it.
pub type Inputs = athena_runtime::extract::Inputs<UncheckedCx>;

impl RequestContext for UncheckedCx {
    type Cx = RequestCx;

    fn headers(&self) -> &http::HeaderMap {
        UncheckedCx::headers(self)
    }

    /// Checks the operation's credentials; see `UncheckedCx::authorize`.
    async fn authorize(&self) -> Result<RequestCx, ApiError> {
        UncheckedCx::authorize(self).await
    }
}
