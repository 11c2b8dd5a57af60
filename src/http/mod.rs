//! The HTTP runtime the generated code stands on: errors and the envelope,
//! typed extraction, payloads, routing, metrics and the hyper server.

mod context;
pub mod deadline;
mod error;
pub mod extract;
pub mod metrics;
pub mod payload;
pub mod router;
pub mod server;

pub use context::{RequestCx, UncheckedCx};
pub use error::{stored_failure, ApiError, ApiResult, Code, ErrorEnvelope};

pub type HttpResponse = http::Response<http_body_util::Full<bytes::Bytes>>;
