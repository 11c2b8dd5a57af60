//! Audit trails kept outside the request path's own tables: the management
//! DDL log (`ddl`, issue 16).

pub mod ddl;
