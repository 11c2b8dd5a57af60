//! `/storage/*` families (`openapi/families.yaml`): one module each.

mod catalogs;
mod connections;
