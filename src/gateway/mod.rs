//! The gateway data plane: reads and writes on tenant databases built from a
//! closed set of operators, with every identifier resolved against the
//! tenant's schema cache and quoted, and every value a bind parameter.

pub mod batch;
pub mod cache;
pub mod cond;
pub mod d1;
pub mod deferred;
pub mod embed;
pub mod filter;
pub mod host_routing;
pub mod plan;
pub mod postprocess;
pub mod raw;
pub mod read;
pub mod rpc;
pub mod service;
pub mod sql;
pub mod sql_text;
pub mod transaction;
pub mod write;
