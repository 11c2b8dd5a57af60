//! The runtime the generated server API (`athena-api`) stands on, written by
//! hand: the error envelope (`ApiError`, `Code`, `ErrorEnvelope`), typed
//! extraction (`extract::Inputs`, `Fields`, `FromParam`), the response
//! payloads (`payload::Json`, `Binary`, `NoBody`) and the path router.
//! It knows nothing of the server: the request context is the server's
//! (`extract::RequestContext`), and so is the mapping of domain errors onto
//! `ApiError` (`src/http/error.rs`). The server re-exports all of it under
//! `crate::http`.

mod error;
pub mod extract;
pub mod payload;
pub mod router;

pub use error::{ApiError, ApiResult, Code, ErrorEnvelope};

pub type HttpResponse = http::Response<http_body_util::Full<bytes::Bytes>>;
