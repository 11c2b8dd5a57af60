//! The rights of the API-key model, as the contract's users see them. The
//! right each operation needs is read from the authorization matrix
//! (`openapi/access-matrix.txt`, its `access` column), which the server's
//! `tests/access_matrix.rs` holds to the server's access table, so the two
//! cannot drift; the rights catalog case checks that every data-plane right
//! is one the server lists.

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

/// The authorization matrix: `operation access anonymous admin …` lines.
const MATRIX: &str = include_str!("../../openapi/access-matrix.txt");

/// The right an operation needs when API keys are enforced; `None` for
/// operations outside the API-key model (or whose right depends on the
/// request, like `/public/{route_key}/{op}`: its cases name their rights,
/// those of the gateway operation the route forwards to).
pub fn for_operation(op: &str) -> Option<&'static str> {
    MATRIX
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .find_map(|line| {
            let mut fields = line.split_whitespace();
            (fields.next() == Some(op)).then(|| fields.next()).flatten()
        })
        .filter(|access| !matches!(*access, "open" | "unassigned" | "admin" | "public"))
        // Keyed (storage): the same right, whether or not enforced; bound
        // (management): a key bound to the client with the right.
        .map(|access| {
            access
                .strip_prefix("keyed:")
                .or_else(|| access.strip_prefix("bound:"))
                .unwrap_or(access)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_a_line_and_no_admin_operation_a_right() {
        for op in crate::tests::contract().operations {
            assert!(
                MATRIX
                    .lines()
                    .any(|l| l.split_whitespace().next() == Some(op.name.as_str())),
                "{} has no line in openapi/access-matrix.txt",
                op.name
            );
            // The storage routes the contract marks admin are keyed: the
            // admin key still opens them (openapi/CHANGES.md).
            if for_operation(&op.name).is_some() && !op.path.starts_with("/storage/") {
                assert!(!op.admin, "{} is admin", op.name);
            }
        }
    }

    /// The enforced pass hands out and withholds `DATA_PLANE` rights; the
    /// operations needing others (management, pipelines, schema discovery,
    /// chat's `chat.use`) have no data-plane case.
    #[test]
    fn data_plane_operations_need_data_plane_rights() {
        for op in crate::tests::contract().operations {
            if let Some(r) = for_operation(&op.name) {
                let elsewhere = op.path.starts_with("/management/")
                    || op.path.starts_with("/pipelines")
                    || op.path.starts_with("/storage/")
                    || op.path.starts_with("/schema")
                    || op.path.starts_with("/registry/")
                    || op.path.starts_with("/chat/");
                assert!(DATA_PLANE.contains(&r) || elsewhere, "{}: {r}", op.name);
            }
        }
        assert_eq!(for_operation("post_gateway_fetch"), Some(FETCH));
        assert_eq!(for_operation("post_public_by_route_key_by_op"), None);
        assert_eq!(for_operation("get_admin_api_keys"), None);
    }
}
