//! The rights of the API-key model, as the contract's users see them: the
//! right each data-plane operation needs (mirrors `for_operation` in the
//! server's `src/auth/rights.rs`; the rights catalog case checks that every
//! right named here is one the server lists).

pub const FETCH: &str = "gateway.fetch.execute";
pub const INSERT: &str = "gateway.insert.execute";
pub const UPDATE: &str = "gateway.update.execute";
pub const DELETE: &str = "gateway.delete.execute";
pub const QUERY: &str = "gateway.query.execute";
pub const RPC: &str = "gateway.rpc.execute";
pub const DEFERRED: &str = "gateway.deferred.read";

/// The data-plane rights a key may hold (the negative keys of the enforced
/// pass hold all of them but the ones an operation needs).
pub const DATA_PLANE: [&str; 7] = [FETCH, INSERT, UPDATE, DELETE, QUERY, RPC, DEFERRED];

/// The right an operation needs when API keys are enforced; `None` for
/// operations outside the API-key model (or whose right depends on the
/// request, like `/public/{route_key}/{op}`: its cases name their rights,
/// those of the gateway operation the route forwards to).
pub fn for_operation(op: &str) -> Option<&'static str> {
    Some(match op {
        "post_gateway_fetch"
        | "post_gateway_data"
        | "get_data"
        | "get_rest_v1_by_table"
        | "post_query_count" => FETCH,
        "put_gateway_insert" | "post_rest_v1_by_table" => INSERT,
        "post_gateway_update" | "patch_rest_v1_by_table" => UPDATE,
        "delete_gateway_delete" | "delete_rest_v1_by_table" => DELETE,
        "post_gateway_query"
        | "post_gateway_sql"
        | "post_query_sql"
        | "post_gateway_sql_d1_migrate" => QUERY,
        "post_gateway_rpc" | "get_rpc_by_function_name" | "post_rpc_by_function_name" => RPC,
        "get_gateway_deferred_by_request_id" | "post_gateway_deferred_by_request_id_requeue" => {
            DEFERRED
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mapped_right_is_a_data_plane_right() {
        for op in crate::tests::contract().operations {
            if let Some(r) = for_operation(&op.name) {
                assert!(DATA_PLANE.contains(&r), "{}", op.name);
                assert!(!op.admin, "{} is admin", op.name);
            }
        }
    }
}
