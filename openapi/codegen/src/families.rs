//! API families: which generated trait (`<Family>Api`) and which handler
//! module each operation belongs to, so that no family outgrows one file.
//!
//! The areas in `split` of `openapi/families.yaml` (`/admin/*`, `/storage/*`)
//! are split by their second path segment (`/admin/backups/...` →
//! `admin_backups`), with the file's `prefixes` grouping the exceptions
//! (`/admin/api-key-rights` → `admin_api_keys`). Every other operation's
//! family is its area (`naming::area`: first tag, else first path segment).
//! The rule is documented at the top of the YAML file.
//!
//! Families group operations and nothing else: operation names, the
//! generated client and conformance names never depend on them. The file is
//! compiled in, so editing it rebuilds this crate and reruns every build
//! script that uses it.

use crate::naming::{area, snake_case};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The project's family overlay.
pub const FAMILIES: &str = include_str!("../../families.yaml");

/// Above this many operations a family no longer fits a readable handler
/// file; `tests::project_families_fit_in_a_file` enforces it.
pub const MAX_OPERATIONS: usize = 40;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    split: Vec<String>,
    #[serde(default)]
    families: BTreeMap<String, Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    why: String,
    prefixes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Families {
    /// First path segments whose operations are split by the second.
    split: Vec<String>,
    /// `(path prefix, family)`, longest prefix first.
    prefixes: Vec<(String, String)>,
}

impl Families {
    /// The project's overlay (`openapi/families.yaml`).
    pub fn project() -> Result<Families, String> {
        Self::parse(FAMILIES)
    }

    pub fn parse(text: &str) -> Result<Families, String> {
        let at = "openapi/families.yaml";
        let file: File =
            serde_yaml::from_str(text).map_err(|e| format!("{at} does not parse: {e}"))?;
        for area in &file.split {
            if !is_identifier(area) {
                return Err(format!(
                    "{at}: split area `{area}` is not a snake_case name"
                ));
            }
        }
        let mut prefixes: Vec<(String, String)> = Vec::new();
        for (family, entry) in &file.families {
            if !is_identifier(family) {
                return Err(format!("{at}: family `{family}` is not a snake_case name"));
            }
            if entry.why.trim().is_empty() {
                return Err(format!("{at}: family `{family}` has no `why`"));
            }
            for prefix in &entry.prefixes {
                if !prefix.starts_with('/') || (prefix.len() > 1 && prefix.ends_with('/')) {
                    return Err(format!(
                        "{at}: `{prefix}` ({family}) must start with `/` and not end with one"
                    ));
                }
                if let Some((_, other)) = prefixes.iter().find(|(p, _)| p == prefix) {
                    return Err(format!(
                        "{at}: `{prefix}` is listed for both {other} and {family}"
                    ));
                }
                prefixes.push((prefix.clone(), family.clone()));
            }
        }
        prefixes.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Ok(Families {
            split: file.split,
            prefixes,
        })
    }

    /// The family of the operation at `path` whose first tag is `tag`.
    pub fn family(&self, tag: Option<&str>, path: &str) -> String {
        if let Some((_, family)) = self.prefixes.iter().find(|(p, _)| matches(p, path)) {
            return family.clone();
        }
        let mut segments = path.split('/').filter(|s| !s.is_empty());
        if let (Some(first), Some(second)) = (segments.next(), segments.next()) {
            if self.split.iter().any(|s| s == first) && !second.starts_with('{') {
                return format!("{}_{}", snake_case(first), snake_case(second));
            }
        }
        area(tag, path)
    }

    /// Every `(prefix, family)` of the overlay, longest prefix first.
    pub fn prefixes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.prefixes.iter().map(|(p, f)| (p.as_str(), f.as_str()))
    }
}

/// Whether `prefix` is `path` or a run of its leading whole segments.
fn matches(prefix: &str, path: &str) -> bool {
    path == prefix || (path.starts_with(prefix) && path[prefix.len()..].starts_with('/'))
}

fn is_identifier(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase()) && snake_case(name) == name
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::pascal_case;
    use crate::spec::Contract;
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    fn contract() -> Contract {
        Contract::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.yaml"))
            .expect("the project contract loads")
    }

    fn family_of(c: &Contract, name: &str) -> String {
        c.operations
            .iter()
            .find(|o| o.name == name)
            .unwrap_or_else(|| panic!("no operation {name}"))
            .family
            .clone()
    }

    fn fixture() -> Families {
        Families::parse(
            r#"
split: [admin, storage]
families:
  admin_api_keys:
    why: one store
    prefixes: [/admin/api-key-rights, /admin/rights]
  admin_ip_lists:
    why: one policy
    prefixes: ["/admin/api-keys/{id}/ip-seen"]
"#,
        )
        .unwrap()
    }

    #[test]
    fn split_areas_go_by_their_second_segment() {
        let f = fixture();
        assert_eq!(f.family(None, "/admin/backups"), "admin_backups");
        assert_eq!(
            f.family(None, "/admin/backups/{key}/restore"),
            "admin_backups"
        );
        assert_eq!(f.family(None, "/admin/api-keys/{id}"), "admin_api_keys");
        assert_eq!(f.family(None, "/storage/files/{file_id}"), "storage_files");
        assert_eq!(
            f.family(None, "/admin/webhook-sinks"),
            "admin_webhook_sinks"
        );
        // Tags do not keep a split area together.
        assert_eq!(f.family(Some("Admin"), "/admin/clients"), "admin_clients");
        // No second segment, or a parameter there: the area.
        assert_eq!(f.family(None, "/admin"), "admin");
        assert_eq!(f.family(None, "/storage/{id}"), "storage");
    }

    #[test]
    fn prefixes_win_on_whole_segments_longest_first() {
        let f = fixture();
        assert_eq!(f.family(None, "/admin/api-key-rights"), "admin_api_keys");
        assert_eq!(
            f.family(None, "/admin/api-key-rights/{id}"),
            "admin_api_keys"
        );
        assert_eq!(
            f.family(Some("Admin"), "/admin/rights/catalog"),
            "admin_api_keys"
        );
        assert_eq!(f.family(None, "/admin/rightsx"), "admin_rightsx");
        assert_eq!(
            f.family(None, "/admin/api-keys/{id}/ip-seen"),
            "admin_ip_lists"
        );
        assert_eq!(
            f.family(None, "/admin/api-keys/{id}/ip-seenx"),
            "admin_api_keys"
        );
    }

    #[test]
    fn other_areas_keep_their_tag_or_first_segment() {
        let f = fixture();
        assert_eq!(f.family(Some("Gateway"), "/data"), "gateway");
        assert_eq!(f.family(None, "/gateway/fetch"), "gateway");
        assert_eq!(f.family(None, "/rest/v1/{table}"), "rest");
        assert_eq!(f.family(Some("Chat"), "/chat/rooms"), "chat");
        assert_eq!(f.family(None, "/"), "health");
        assert_eq!(f.family(None, "/openapi.yaml"), "registry");
    }

    #[test]
    fn bad_overlays_fail_clearly() {
        let bad = [
            ("split: [Admin]\n", "not a snake_case name"),
            (
                "split: []\nfamilies:\n  AdminX:\n    why: w\n    prefixes: [/a]\n",
                "not a snake_case name",
            ),
            (
                "split: []\nfamilies:\n  a:\n    why: ' '\n    prefixes: [/a]\n",
                "has no `why`",
            ),
            (
                "split: []\nfamilies:\n  a:\n    why: w\n    prefixes: [a/b]\n",
                "must start with `/`",
            ),
            (
                "split: []\nfamilies:\n  a:\n    why: w\n    prefixes: [/a]\n  b:\n    why: w\n    prefixes: [/a]\n",
                "listed for both",
            ),
            ("split: []\nfamily: {}\n", "does not parse"),
        ];
        for (yaml, want) in bad {
            let e = Families::parse(yaml).unwrap_err();
            assert!(e.contains(want), "{yaml:?}: {e}");
        }
    }

    /// Every overlay entry still names at least one operation (of the
    /// contract or of the SDK overlay): a renamed route cannot leave a stale
    /// exception behind.
    #[test]
    fn project_overlay_entries_all_match() {
        let c = crate::overlay::server_contract(&contract()).unwrap();
        let f = Families::project().unwrap();
        for (prefix, family) in f.prefixes() {
            let hits: Vec<_> = c
                .operations
                .iter()
                .filter(|o| matches(prefix, &o.path))
                .collect();
            assert!(!hits.is_empty(), "{prefix} ({family}) matches no operation");
            assert!(hits.iter().all(|o| o.family == family), "{prefix}");
        }
    }

    #[test]
    fn project_families_fit_in_a_file() {
        let c = crate::overlay::server_contract(&contract()).unwrap();
        let mut sizes: BTreeMap<&str, usize> = BTreeMap::new();
        for op in c.operations.iter().filter(|o| !o.sdk_only) {
            *sizes.entry(op.family.as_str()).or_default() += 1;
        }
        assert_eq!(sizes.values().sum::<usize>(), 290);
        for op in c.operations.iter().filter(|o| o.sdk_only) {
            *sizes.entry(op.family.as_str()).or_default() += 1;
        }
        for (family, n) in &sizes {
            assert!(*n <= MAX_OPERATIONS, "{family} has {n} operations");
        }
        // Distinct families give distinct trait names.
        let traits: BTreeSet<String> = sizes.keys().map(|f| pascal_case(f)).collect();
        assert_eq!(traits.len(), sizes.len());
    }

    #[test]
    fn project_families() {
        let c = contract();
        let cases = [
            // Tagged `Admin` in the contract: split all the same.
            ("post_admin_api_keys", "admin_api_keys"),
            ("get_admin_api_keys", "admin_api_keys"),
            ("patch_admin_api_key_rights_by_id", "admin_api_keys"),
            ("get_admin_rights_catalog", "admin_api_keys"),
            ("put_admin_api_key_config", "admin_api_keys"),
            (
                "delete_admin_api_key_clients_by_client_name",
                "admin_api_keys",
            ),
            ("put_admin_clients_by_client_name_freeze", "admin_clients"),
            ("get_admin_clients", "admin_clients"),
            ("get_admin_clients_statistics", "admin_statistics"),
            (
                "get_admin_clients_by_client_name_pressure",
                "admin_statistics",
            ),
            ("get_admin_api_keys_by_id_ip_policy", "admin_ip_lists"),
            ("post_admin_api_keys_by_id_virgin_promote", "admin_ip_lists"),
            ("delete_admin_ip_global_blacklist", "admin_ip_lists"),
            (
                "patch_admin_public_routes_by_route_key",
                "admin_public_routes",
            ),
            (
                "put_admin_tenant_hostnames_by_tenant",
                "admin_service_routes",
            ),
            ("get_admin_webhook_sinks", "admin_webhooks"),
            ("post_admin_backups_by_key_restore", "admin_backups"),
            ("get_admin_daemons", "admin_runtime"),
            ("get_admin_errors_catalog", "admin_errors"),
            ("post_storage_objects", "storage_objects"),
            ("get_storage_files_by_file_id", "storage_files"),
            ("get_storage_credentials", "storage_catalogs"),
            ("post_storage_audit_list", "storage_permissions"),
            // Outside the split areas nothing moves.
            ("post_gateway_fetch", "gateway"),
            ("get_rest_v1_by_table", "rest"),
            ("get_clients", "clients"),
            ("get_root", "health"),
            ("get_router_registry", "registry"),
        ];
        for (name, family) in cases {
            assert_eq!(family_of(&c, name), family, "{name}");
        }
        // The area (reported by `GET /router/registry`) is the pre-split family.
        let key = c
            .operations
            .iter()
            .find(|o| o.name == "post_admin_api_keys")
            .unwrap();
        assert_eq!(key.area, "admin");
    }
}
