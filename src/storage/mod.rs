//! Storage: where a tenant's files live (S3 catalogs and their credentials,
//! kept in the tenant database under `athena.*`), and, on top of that, the
//! S3 layer (buckets, objects) and the managed-files layer. The service
//! (`service.rs`) is what the `storage_*` handlers call.

pub mod buckets;
pub mod catalog;
pub mod debug;
pub mod endpoint;
pub mod file_access;
pub mod files;
pub mod objects;
pub mod providers;
pub mod s3;
pub mod service;
pub mod xml;
