//! The one place that turns method + path into stable Rust names.
//!
//! The contract has no operationIds, so every generated name (server trait
//! methods, client methods, metrics labels, conformance output) comes from
//! here. Renaming anything breaks downstream users of the generated client:
//! the rule is fixed and covered by tests below.

/// `post /gateway/fetch` → `post_gateway_fetch`; `get /rest/v1/{table}` →
/// `get_rest_v1_by_table`; `get /` → `get_root`.
pub fn operation_name(method: &str, path: &str) -> String {
    let mut name = method.to_ascii_lowercase();
    let mut any_segment = false;
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        any_segment = true;
        name.push('_');
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(param) => {
                name.push_str("by_");
                name.push_str(&snake_case(param));
            }
            None => name.push_str(&snake_case(segment)),
        }
    }
    if !any_segment {
        name.push_str("_root");
    }
    name
}

/// The API area of an operation: its first tag, else one derived from the
/// first path segment. It is the family of every operation outside the split
/// areas (`crate::families`), and what `GET /router/registry` reports as
/// `family`.
pub fn area(tag: Option<&str>, path: &str) -> String {
    if let Some(tag) = tag {
        return snake_case(tag);
    }
    let first = path.split('/').find(|s| !s.is_empty()).unwrap_or("");
    match first {
        "" | "ping" | "health" | "metrics" => "health".to_string(),
        "router" | "registry" | "openapi.yaml" | "openapi-wss.yaml" | "docs" => {
            "registry".to_string()
        }
        other => snake_case(other),
    }
}

/// `snake_case` for identifiers: splits on any non-alphanumeric character
/// and on lower→upper camel boundaries.
pub fn snake_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let mut prev_lower_or_digit = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase() && prev_lower_or_digit && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower_or_digit = c.is_ascii_lowercase() || c.is_ascii_digit();
        } else {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
            prev_lower_or_digit = false;
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// `post_gateway_fetch` → `PostGatewayFetch`.
pub fn pascal_case(s: &str) -> String {
    snake_case(s)
        .split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut cs = p.chars();
            match cs.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + cs.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// A Rust field name for a parameter or property; keywords get a suffix.
pub fn field_name(s: &str) -> String {
    let mut name = snake_case(s);
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "p_");
    }
    const KEYWORDS: &[&str] = &[
        "as", "async", "await", "box", "break", "const", "continue", "crate", "dyn", "else",
        "enum", "extern", "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod",
        "move", "mut", "pub", "ref", "return", "self", "static", "struct", "super", "trait",
        "true", "type", "unsafe", "use", "where", "while", "yield",
    ];
    if KEYWORDS.contains(&name.as_str()) {
        name.push('_');
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names() {
        let cases = [
            ("post", "/gateway/fetch", "post_gateway_fetch"),
            ("get", "/rest/v1/{table}", "get_rest_v1_by_table"),
            ("get", "/", "get_root"),
            ("get", "/openapi-wss.yaml", "get_openapi_wss_yaml"),
            (
                "patch",
                "/admin/api-keys/{id}",
                "patch_admin_api_keys_by_id",
            ),
            (
                "put",
                "/admin/clients/{client_name}/freeze",
                "put_admin_clients_by_client_name_freeze",
            ),
            (
                "get",
                "/storage/files/{fileId}",
                "get_storage_files_by_file_id",
            ),
            (
                "DELETE",
                "/gateway/deferred/{request_id}",
                "delete_gateway_deferred_by_request_id",
            ),
        ];
        for (method, path, expected) in cases {
            assert_eq!(operation_name(method, path), expected, "{method} {path}");
        }
    }

    #[test]
    fn areas() {
        assert_eq!(area(Some("Gateway"), "/rpc/{function_name}"), "gateway");
        assert_eq!(area(None, "/rest/v1/{table}"), "rest");
        assert_eq!(area(None, "/"), "health");
        assert_eq!(area(None, "/openapi.yaml"), "registry");
        assert_eq!(area(None, "/admin/backups"), "admin");
        assert_eq!(area(Some("Admin"), "/admin/api-keys"), "admin");
    }

    #[test]
    fn case_helpers() {
        assert_eq!(snake_case("X-Athena-Client"), "x_athena_client");
        assert_eq!(snake_case("sortBy"), "sort_by");
        assert_eq!(snake_case("api-key-rights"), "api_key_rights");
        assert_eq!(pascal_case("post_gateway_fetch"), "PostGatewayFetch");
        assert_eq!(field_name("type"), "type_");
        assert_eq!(field_name("Range"), "range");
    }
}
