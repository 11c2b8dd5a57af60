//! The single doorway to the code generated from `openapi/openapi.yaml`:
//! the crate `athena-api` (`generated/athena-api`, written by its
//! `build.rs`): models, params, responses, operations, traits, dispatch.
//! Nothing there is edited by hand; change the contract or the generator.
//! Its own crate, so editing a handler does not recompile it.

pub use athena_api::*;

/// Every operation method receives the server's request context.
impl traits::ApiContext for crate::handlers::Handlers {
    type Cx = crate::http::RequestCx;
}

#[cfg(test)]
mod tests {
    use super::operations::{LITERAL_PARAM_PAIRS, OPERATIONS};
    use crate::http::router::{Match, Router};

    fn router() -> Router<usize> {
        Router::new(
            OPERATIONS
                .iter()
                .enumerate()
                .map(|(i, m)| (m.method, m.path, i)),
        )
    }

    /// A concrete path for a template, with every `{param}` filled.
    fn concrete(template: &str) -> String {
        template
            .split('/')
            .map(|s| if s.starts_with('{') { "x-value" } else { s })
            .collect::<Vec<_>>()
            .join("/")
    }

    #[test]
    fn every_operation_is_routed_to_itself() {
        let r = router();
        // The contract's operations, then the SDK overlay's.
        assert_eq!(OPERATIONS.iter().filter(|m| !m.sdk_only).count(), 290);
        assert_eq!(OPERATIONS.iter().filter(|m| m.sdk_only).count(), 30);
        assert!(OPERATIONS[..290].iter().all(|m| !m.sdk_only));
        for (i, m) in OPERATIONS.iter().enumerate() {
            let path = m
                .path
                .split('/')
                .map(|s| if s.starts_with('{') { "x-value" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            match r.route(m.method, if path.is_empty() { "/" } else { &path }) {
                Match::Found { value, .. } => {
                    // A literal sibling may legitimately win for the filler
                    // value; then the template must differ only there.
                    if value != i {
                        assert_ne!(OPERATIONS[value].path, m.path, "{} {}", m.method, m.path);
                    }
                }
                _ => panic!("{} {} is not routed", m.method, m.path),
            }
        }
    }

    #[test]
    fn literal_segments_beat_param_siblings() {
        let r = router();
        assert!(!LITERAL_PARAM_PAIRS.is_empty());
        for (literal, param) in LITERAL_PARAM_PAIRS {
            let path = concrete(literal);
            let methods: Vec<&str> = OPERATIONS
                .iter()
                .filter(|m| m.path == *literal)
                .map(|m| m.method)
                .collect();
            for method in methods {
                match r.route(method, &path) {
                    Match::Found { template, .. } => {
                        assert_eq!(
                            template, *literal,
                            "{method} {path} must not be captured by {param}"
                        )
                    }
                    _ => panic!("{method} {path} is not routed"),
                }
            }
        }
    }

    #[test]
    fn contract_1_3_0_operations_are_all_routed() {
        let text = include_str!("../openapi/openapi-1.3.0.yaml");
        let old: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
        let r = router();
        let mut count = 0;
        for (path, item) in old["paths"].as_mapping().unwrap() {
            let path = path.as_str().unwrap();
            for method in ["get", "put", "post", "delete", "patch"] {
                if item.get(method).is_some() {
                    count += 1;
                    let concrete = concrete(path);
                    let m = method.to_uppercase();
                    assert!(
                        matches!(
                            r.route(&m, if concrete.is_empty() { "/" } else { &concrete }),
                            Match::Found { .. }
                        ),
                        "1.3.0 operation {m} {path} is not routed"
                    );
                }
            }
        }
        assert_eq!(count, 65);
    }
}
