//! Reads the Athena contract (`openapi/openapi.yaml`) and derives everything
//! generated from it: operation names, families (`openapi/families.yaml`),
//! JSON Schema versions of its schemas, and the server's models, parameters,
//! responses, traits and dispatch. The server API's build
//! (`generated/athena-api/build.rs`), the generated client's build and the
//! conformance suite all go through this crate, so they agree by construction.

pub mod client;
pub mod families;
pub mod models;
pub mod naming;
pub mod overlay;
pub mod schema;
pub mod server;
pub mod spec;

pub use spec::Contract;
