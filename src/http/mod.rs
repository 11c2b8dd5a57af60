//! The HTTP side of the server: the runtime the generated code stands on
//! (errors and the envelope, typed extraction, payloads, routing: crate
//! `athena-runtime`, re-exported here), the request context, the mapping of
//! domain errors, metrics and the hyper server.

mod context;
pub mod deadline;
mod error;
pub mod extract;
pub mod load;
pub mod metrics;
/// PostgREST's bare shape on `/rest/v1` and public routes (issue 14).
pub mod rest_shape;
pub mod server;

pub use athena_runtime::{payload, router};
pub use athena_runtime::{ApiError, ApiResult, Code, ErrorEnvelope, HttpResponse};
pub use context::{RequestCx, UncheckedCx};
pub use error::stored_failure;
