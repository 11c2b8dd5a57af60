//! Typed Rust client for the Athena RS gateway.
//!
//! Everything in [`generated`] (the [`Client`], one builder method per
//! operation, and every request/response type in [`types`]) is generated at
//! build time by progenitor from `openapi/openapi.yaml`, after the
//! normalization in `athena_codegen::client` (rules listed in the README).
//! Method names are the project's operation names: `post /gateway/fetch` →
//! [`Client::post_gateway_fetch`], `get /rest/v1/{table}` →
//! [`Client::get_rest_v1_by_table`].
//!
//! Hand-written on top:
//! - [`AthenaClientBuilder`]: base URL, `X-Athena-Client`, API key and admin
//!   key (`X-Athena-Key`), timeouts;
//! - [`ErrorEnvelope`] / [`ApiError`]: the gateway's standard error envelope
//!   and the status code, from any [`Error`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use athena_client::{types, ApiError, AthenaClientBuilder};
//!
//! let athena = AthenaClientBuilder::new("http://127.0.0.1:4052")
//!     .client_name("local")
//!     .api_key("my-key")
//!     .build()?;
//! let health = athena.get_health().send().await?;
//! println!("{:?}", health.into_inner().status);
//!
//! let body = types::PostGatewayFetchBody {
//!     table_name: Some("items".into()),
//!     limit: Some(10),
//!     ..Default::default()
//! };
//! match athena.post_gateway_fetch().body(body).send().await {
//!     Ok(rows) => println!("{} rows", rows.into_inner().data.len()),
//!     Err(e) => {
//!         let e = ApiError::from_progenitor(e).await;
//!         eprintln!("{:?} {:?}", e.status, e.envelope.map(|env| env.message));
//!     }
//! }
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

/// The progenitor output for the contract (generated in `build.rs`).
///
/// Lints are off here because the code is not hand-written: clippy flags
/// progenitor's output, most generated items have no docs, and rustdoc
/// flags the contract's prose copied into doc comments (today: bare URLs in
/// descriptions; `rustdoc::all` so new prose in the contract cannot break
/// `cargo doc -D warnings`).
#[allow(clippy::all, missing_docs, rustdoc::all)]
pub mod generated {
    include!(concat!(env!("OUT_DIR"), "/athena_client.rs"));
}

mod connect;
mod error;

include!(concat!(env!("OUT_DIR"), "/operation_names.rs"));

pub use connect::{
    AthenaClient, AthenaClientBuilder, BuildError, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT,
};
pub use error::{ApiError, ErrorEnvelope};
pub use generated::{builder, types, ByteStream, Client, ClientInfo, Error, ResponseValue};
pub use progenitor_client;
pub use reqwest;
