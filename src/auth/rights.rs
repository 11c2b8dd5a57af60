//! Rights: the native catalog compiled into Athena. Which operation needs
//! which right is decided in one table, `super::access`.

/// Declares `Right`, its catalog name and description, `Right::ALL` and
/// `NATIVE` from one list, so none of them can miss a right.
macro_rules! native_rights {
    ($($variant:ident = $name:literal, $description:literal;)*) => {
        /// A native right, as stored in the catalog and in API keys
        /// (`as_str`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Right {
            $(#[doc = $description] $variant,)*
        }

        impl Right {
            /// Every native right, in catalog order.
            pub const ALL: &'static [Right] = &[$(Right::$variant),*];

            /// The name stored in the catalog and in keys.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Right::$variant => $name,)*
                }
            }

            /// What the right allows (`GET /admin/rights/catalog`).
            pub const fn description(self) -> &'static str {
                match self {
                    $(Right::$variant => $description,)*
                }
            }
        }

        /// Native rights, with what they allow: `(name, description)`.
        pub const NATIVE: &[(&str, &str)] = &[$(($name, $description)),*];
    };
}

native_rights! {
    GatewayFetch = "gateway.fetch.execute", "Read rows (fetch, data, REST GET, count)";
    GatewayInsert = "gateway.insert.execute", "Insert rows (insert, REST POST); upserts also need update";
    GatewayUpdate = "gateway.update.execute", "Update rows (update, REST PATCH)";
    GatewayDelete = "gateway.delete.execute", "Delete rows (delete, REST DELETE)";
    GatewayQuery = "gateway.query.execute", "Run raw SQL (query, sql, query/sql, D1 migrate)";
    GatewayRpc = "gateway.rpc.execute", "Call database functions (rpc)";
    GatewayDeferredRead = "gateway.deferred.read", "Read and requeue deferred requests";
    StorageProxy = "gateway.storage_proxy", "Use the tenant's S3 stores: objects, buckets, presigned URLs, CORS and lifecycle";
    StorageAdmin = "storage.admin", "Make objects public (public ACLs), change bucket policy and public-access blocks, manage storage connections";
    StorageFiles = "storage.files", "Managed files for an end user (/storage/files*; the end user's grants decide); hand end users keys with this right, never gateway.storage_proxy";
    StorageService = "storage.service", "Act for end users on managed files (trusted X-User-Id / X-Organization-Id, /storage/service/files*)";
    ChatUse = "chat.use", "Durable chat for an end user (/chat/*; the end user's room membership and organization decide)";
    PipelinesExecute = "pipelines.execute", "Run and simulate pipelines";
    SchemaRead = "schema.read", "Read the tenant's schema (/schema, /schema/tables|columns|constraints|migrations) and registry entries (/registry/{id})";
    ManagementRead = "management.read", "Read management capabilities and functions";
    ManagementTablesWrite = "management.tables.write", "Create and alter tables";
    ManagementTablesDrop = "management.tables.drop", "Drop tables";
    ManagementColumnsDrop = "management.columns.drop", "Drop columns";
    ManagementIndexesWrite = "management.indexes.write", "Create indexes";
    ManagementIndexesDrop = "management.indexes.drop", "Drop indexes";
    ManagementViewsWrite = "management.views.write", "Create views";
    ManagementViewsDrop = "management.views.drop", "Drop views";
    ManagementFunctionsRead = "management.functions.read", "Read functions";
    ManagementFunctionsWrite = "management.functions.write", "Create or replace functions";
    ManagementFunctionsDrop = "management.functions.drop", "Drop functions";
    ManagementExtensionsWrite = "management.extensions.write", "Install extensions";
    ManagementProvisionWrite = "management.provision.write", "Provision databases";
    All = "*", "Every right";
}

impl Right {
    /// The native right named `name` (exact catalog name; no wildcards).
    pub fn parse(name: &str) -> Option<Right> {
        Right::ALL.iter().copied().find(|r| r.as_str() == name)
    }
}

impl std::fmt::Display for Right {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reading rows; also lets a caller run the SDK's own lookup SELECTs
/// through `/gateway/query` (`src/gateway/sql_text.rs`).
pub const FETCH: Right = Right::GatewayFetch;
/// Raw SQL.
pub const RAW_SQL: Right = Right::GatewayQuery;
/// Writing rows (`src/gateway/write.rs` `Write::rights`).
pub const INSERT: Right = Right::GatewayInsert;
pub const UPDATE: Right = Right::GatewayUpdate;
pub const DELETE: Right = Right::GatewayDelete;

/// Whether `granted` (a key's rights) includes `right`: exact names, `*`,
/// or a trailing wildcard segment (`gateway.*`).
pub fn allows(granted: &[String], right: Right) -> bool {
    let right = right.as_str();
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

    #[test]
    fn names_round_trip_and_match_the_catalog() {
        assert_eq!(Right::ALL.len(), NATIVE.len());
        for (right, (name, description)) in Right::ALL.iter().zip(NATIVE) {
            assert_eq!(right.as_str(), *name);
            assert_eq!(right.description(), *description);
            assert_eq!(Right::parse(name), Some(*right));
        }
        assert_eq!(Right::parse("gateway.*"), None);
        assert_eq!(Right::parse("gateway.fetch"), None);
    }

    #[test]
    fn wildcards() {
        let g = vec!["gateway.*".to_string()];
        assert!(allows(&g, Right::GatewayFetch));
        assert!(!allows(&g, Right::ManagementRead));
        assert!(allows(&["*".to_string()], Right::ManagementRead));
        assert!(!allows(&[], Right::GatewayFetch));
        // A prefix must end at a segment boundary.
        assert!(!allows(&["gate.*".to_string()], Right::GatewayFetch));
        assert!(allows(
            &["management.tables.*".to_string()],
            Right::ManagementTablesDrop
        ));
    }
}
