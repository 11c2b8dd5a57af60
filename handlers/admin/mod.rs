//! The `/admin/*` families, one module per family (`openapi/families.yaml`):
//! `admin_<name>` is `impl Admin<Name>Api for Handlers` in `admin/<name>.rs`.
//! Families without a module yet are listed in `handlers/mod.rs` and answer
//! 501 through the traits' default methods.

mod api_keys;
mod backups;
mod billing;
mod client_configs;
mod clients;
mod errors;
mod ip_lists;
mod pipeline_templates;
mod provision;
mod provision_providers;
mod public_routes;
mod runtime;
mod service_routes;
mod statistics;
mod webhook_sinks;
mod webhooks;
