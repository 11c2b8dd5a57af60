//! The catalog database: the control-plane records Athena keeps for itself
//! (clients today; keys, webhooks and jobs as their issues land).

pub mod api_keys;
pub mod client_configs;
pub mod clients;
pub mod ip_policy;
pub mod public_routes;
pub mod registry;
pub mod service_routes;
pub mod tenant_hostnames;
pub mod webhook_sinks;
pub mod webhooks;
