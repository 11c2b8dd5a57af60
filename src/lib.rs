//! Athena: the Athena RS gateway API on PostgreSQL, Redis and S3, generated
//! from its OpenAPI contract.

pub mod admission;
pub mod api;
pub mod audit;
pub mod auth;
pub mod backups;
pub mod billing;
pub mod catalog;
pub mod chat;
pub mod config;
pub mod db;
pub mod domain;
pub mod events;
pub mod gateway;
#[path = "../handlers/mod.rs"]
pub mod handlers;
pub mod http;
pub mod integrations;
pub mod jobs;
pub mod management;
pub mod outbound;
pub mod pipelines;
pub mod provision;
pub mod runtime;
pub mod secrets;
pub mod services;
pub mod stats;
pub mod storage;
pub mod supervisor;
pub mod telemetry;
pub mod ttl;
