//! The integration tests: one binary, one module per area, so the server
//! crate is linked once for all of them (`cargo test --test it`; one area:
//! `cargo test --test it hardening::`). Each test starts its own server on
//! its own catalog and tenant databases (`common`).

mod common;

mod access_matrix;
mod admission;
mod api_keys;
mod backups;
mod billing;
mod cache;
mod chat;
mod client;
mod client_configs;
mod clients;
mod d1_migrate;
mod deferred;
mod direct_uri;
mod embedding;
mod end_user_sessions;
mod gateway_crud;
mod hardening;
mod host_routing;
mod insert_window;
mod integrations;
mod ip_policy;
mod limits;
mod management;
mod pg_tls;
mod pipelines;
mod post_processing;
mod process;
mod provision;
mod public_routes;
mod raw_sql;
mod registry;
mod rest_grammar;
mod rest_ranges;
mod rest_shape;
mod rest_writes;
mod rpc;
mod schema_discovery;
mod spine;
mod statistics;
mod storage_catalogs;
mod storage_connections;
mod storage_files;
mod storage_files_lifecycle;
mod storage_files_sharing;
mod storage_files_streams;
mod storage_objects;
mod storage_service;
mod transaction;
mod webhook_sinks;
mod webhooks;
