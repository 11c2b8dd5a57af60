//! Rights: the native catalog compiled into Athena and the right each
//! data-plane operation needs. One table for every alias of a route, so
//! `/gateway/fetch`, `/gateway/data`, `/data` and `/rest/v1/{table}` can
//! never disagree.

/// Native rights, with what they allow.
pub const NATIVE: &[(&str, &str)] = &[
    (
        "gateway.fetch.execute",
        "Read rows (fetch, data, REST GET, count)",
    ),
    (
        "gateway.insert.execute",
        "Insert rows (insert, REST POST); upserts also need update",
    ),
    ("gateway.update.execute", "Update rows (update, REST PATCH)"),
    (
        "gateway.delete.execute",
        "Delete rows (delete, REST DELETE)",
    ),
    (
        "gateway.query.execute",
        "Run raw SQL (query, sql, query/sql, D1 migrate)",
    ),
    ("gateway.rpc.execute", "Call database functions (rpc)"),
    (
        "gateway.deferred.read",
        "Read and requeue deferred requests",
    ),
    ("pipelines.execute", "Run and simulate pipelines"),
    (
        "management.read",
        "Read management capabilities and functions",
    ),
    ("management.tables.write", "Create and alter tables"),
    ("management.tables.drop", "Drop tables"),
    ("management.columns.drop", "Drop columns"),
    ("management.indexes.write", "Create indexes"),
    ("management.indexes.drop", "Drop indexes"),
    ("management.views.write", "Create views"),
    ("management.views.drop", "Drop views"),
    ("management.functions.read", "Read functions"),
    ("management.functions.write", "Create or replace functions"),
    ("management.functions.drop", "Drop functions"),
    ("management.extensions.write", "Install extensions"),
    ("management.provision.write", "Provision databases"),
    ("*", "Every right"),
];

/// Reading rows; also lets a caller run the SDK's own lookup SELECTs
/// through `/gateway/query` (`src/gateway/sql_text.rs`).
pub const FETCH: &str = "gateway.fetch.execute";
/// Raw SQL.
pub const RAW_SQL: &str = "gateway.query.execute";
/// Writing rows (`src/gateway/write.rs` `Write::rights`).
pub const INSERT: &str = "gateway.insert.execute";
pub const UPDATE: &str = "gateway.update.execute";
pub const DELETE: &str = "gateway.delete.execute";

/// The right an operation needs when API keys are enforced; `None` for
/// operations outside the API-key model (health, registry, admin surface).
pub fn for_operation(name: &str) -> Option<&'static str> {
    Some(match name {
        "post_gateway_fetch"
        | "post_gateway_data"
        | "get_data"
        | "get_rest_v1_by_table"
        | "post_query_count" => FETCH,
        // An upsert also needs UPDATE: checked by the handler from the
        // planned write (`Write::rights`).
        "put_gateway_insert" | "post_rest_v1_by_table" => INSERT,
        "post_gateway_update" | "patch_rest_v1_by_table" => UPDATE,
        "delete_gateway_delete" | "delete_rest_v1_by_table" => DELETE,
        "post_gateway_query"
        | "post_gateway_sql"
        | "post_query_sql"
        | "post_gateway_sql_d1_migrate" => "gateway.query.execute",
        "post_gateway_rpc" | "get_rpc_by_function_name" | "post_rpc_by_function_name" => {
            "gateway.rpc.execute"
        }
        "get_gateway_deferred_by_request_id" | "post_gateway_deferred_by_request_id_requeue" => {
            "gateway.deferred.read"
        }
        "post_pipelines" | "post_pipelines_simulate" | "get_pipelines_templates" => {
            "pipelines.execute"
        }
        "get_management_capabilities" | "get_management_provision_local_databases" => {
            "management.read"
        }
        "get_management_functions" => "management.functions.read",
        "put_management_functions" => "management.functions.write",
        "delete_management_functions" => "management.functions.drop",
        "post_management_tables" | "patch_management_tables_by_table_name" => {
            "management.tables.write"
        }
        "delete_management_tables_by_table_name" => "management.tables.drop",
        "delete_management_tables_by_table_name_columns_by_column_name" => {
            "management.columns.drop"
        }
        "post_management_indexes" => "management.indexes.write",
        "delete_management_indexes_by_index_name" => "management.indexes.drop",
        "post_management_views" => "management.views.write",
        "delete_management_views_by_view_name" => "management.views.drop",
        "post_management_extensions_install" => "management.extensions.write",
        "post_management_provision_providers_neon"
        | "post_management_provision_providers_railway"
        | "post_management_provision_providers_render"
        | "post_management_provision_local_databases" => "management.provision.write",
        _ => return None,
    })
}

/// Whether `granted` (a key's rights) includes `right`: exact names, `*`,
/// or a trailing wildcard segment (`gateway.*`).
pub fn allows(granted: &[String], right: &str) -> bool {
    granted.iter().any(|g| {
        g == right
            || g == "*"
            || g.strip_suffix(".*").is_some_and(|prefix| {
                right.starts_with(prefix) && right[prefix.len()..].starts_with('.')
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::operations::OPERATIONS;

    #[test]
    fn every_mapped_operation_exists_and_every_right_is_native() {
        let names: Vec<&str> = OPERATIONS.iter().map(|o| o.name).collect();
        let native: Vec<&str> = NATIVE.iter().map(|(n, _)| *n).collect();
        let mut mapped = 0;
        for op in &names {
            if let Some(right) = for_operation(op) {
                mapped += 1;
                assert!(native.contains(&right), "{op} needs unknown right {right}");
            }
        }
        // Guards against a typo silently unmapping an operation.
        assert_eq!(mapped, 41);
    }

    #[test]
    fn every_data_plane_operation_is_mapped() {
        for op in OPERATIONS.iter() {
            let data_plane = [
                "/gateway/",
                "/rest/",
                "/rpc/",
                "/query/",
                "/data",
                "/management/",
                "/pipelines",
            ]
            .iter()
            .any(|p| op.path.starts_with(p));
            let exempt = op.admin || op.path.starts_with("/public/");
            if data_plane && !exempt {
                assert!(
                    for_operation(op.name).is_some(),
                    "{} {} has no right",
                    op.method,
                    op.path
                );
            }
        }
    }

    #[test]
    fn wildcards() {
        let g = vec!["gateway.*".to_string()];
        assert!(allows(&g, "gateway.fetch.execute"));
        assert!(!allows(&g, "gatewayx.fetch"));
        assert!(!allows(&g, "management.read"));
        assert!(allows(&["*".to_string()], "management.read"));
        assert!(!allows(&[], "gateway.fetch.execute"));
    }
}
