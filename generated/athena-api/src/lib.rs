//! The Athena server API, generated from `openapi/openapi.yaml` by this
//! crate's `build.rs` (through `athena-codegen`): `models` (typify),
//! `params`, `responses`, `operations`, one trait per family (`traits`) and
//! `dispatch`. Nothing here is edited by hand; change the contract
//! (`openapi/openapi.yaml`, `openapi/families.yaml`, `openapi/sdk-overlay.yaml`)
//! or the generator (`openapi/codegen/src/server.rs`). The runtime it calls
//! is `athena-runtime`; the server reaches all of it through `src/api.rs`.

include!(concat!(env!("OUT_DIR"), "/athena_api.rs"));
