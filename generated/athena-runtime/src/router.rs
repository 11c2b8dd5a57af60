//! Method + path → operation. A segment trie where literal segments beat
//! `{param}` siblings (`/storage/files/list` vs `/storage/files/{file_id}`).
//! A path that matches no template is a 404; a matching template without
//! the method is a 405 with `Allow`.

use std::collections::HashMap;

pub enum Match<T> {
    Found {
        value: T,
        template: &'static str,
        params: Vec<(String, String)>,
    },
    MethodNotAllowed {
        allow: Vec<&'static str>,
    },
    NotFound,
}

struct Node<T> {
    literals: HashMap<String, Node<T>>,
    /// A `{param}` child: the parameter name is per template, kept on the leaf.
    param: Option<Box<Node<T>>>,
    /// method → (value, template)
    leaf: Vec<(&'static str, T, &'static str)>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Node {
            literals: HashMap::new(),
            param: None,
            leaf: Vec::new(),
        }
    }
}

pub struct Router<T> {
    root: Node<T>,
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

fn is_param(segment: &str) -> bool {
    segment.starts_with('{') && segment.ends_with('}')
}

impl<T: Copy> Router<T> {
    pub fn new(routes: impl IntoIterator<Item = (&'static str, &'static str, T)>) -> Self {
        let mut root = Node::default();
        for (method, template, value) in routes {
            let mut node = &mut root;
            for segment in segments(template) {
                node = if is_param(segment) {
                    node.param.get_or_insert_with(Default::default)
                } else {
                    node.literals.entry(segment.to_string()).or_default()
                };
            }
            node.leaf.push((method, value, template));
        }
        Router { root }
    }

    pub fn route(&self, method: &str, path: &str) -> Match<T> {
        let parts: Vec<&str> = segments(path).collect();
        let Some(node) = Self::find(&self.root, &parts) else {
            return Match::NotFound;
        };
        // HEAD is answered by the GET route.
        let wanted = if method == "HEAD" { "GET" } else { method };
        match node.leaf.iter().find(|(m, _, _)| *m == wanted) {
            Some((_, value, template)) => {
                let params = segments(template)
                    .zip(parts.iter())
                    .filter(|(t, _)| is_param(t))
                    .map(|(t, v)| (t[1..t.len() - 1].to_string(), decode(v)))
                    .collect();
                Match::Found {
                    value: *value,
                    template,
                    params,
                }
            }
            None => {
                let mut allow: Vec<&'static str> = node.leaf.iter().map(|(m, _, _)| *m).collect();
                allow.sort_unstable();
                allow.dedup();
                Match::MethodNotAllowed { allow }
            }
        }
    }

    /// Literal first, then `{param}`; backtracks so a literal prefix that
    /// leads nowhere still lets the parameter route match.
    fn find<'a>(node: &'a Node<T>, parts: &[&str]) -> Option<&'a Node<T>> {
        let Some((first, rest)) = parts.split_first() else {
            return (!node.leaf.is_empty()).then_some(node);
        };
        if let Some(found) = node.literals.get(*first).and_then(|n| Self::find(n, rest)) {
            return Some(found);
        }
        node.param.as_deref().and_then(|n| Self::find(n, rest))
    }
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router<u8> {
        Router::new([
            ("GET", "/storage/files/{file_id}", 1),
            ("GET", "/storage/files/list", 2),
            ("POST", "/gateway/deferred/flush", 3),
            ("GET", "/gateway/deferred/{request_id}", 4),
            ("GET", "/", 5),
            ("DELETE", "/storage/files/{file_id}", 6),
        ])
    }

    #[test]
    fn literal_beats_param() {
        let r = router();
        assert!(matches!(
            r.route("GET", "/storage/files/list"),
            Match::Found { value: 2, .. }
        ));
        match r.route("GET", "/storage/files/a%20b") {
            Match::Found {
                value: 1,
                params,
                template,
            } => {
                assert_eq!(params, vec![("file_id".to_string(), "a b".to_string())]);
                assert_eq!(template, "/storage/files/{file_id}");
            }
            _ => panic!("param route"),
        }
        assert!(matches!(r.route("GET", "/"), Match::Found { value: 5, .. }));
    }

    #[test]
    fn wrong_method_lists_allow() {
        match router().route("PUT", "/storage/files/x") {
            Match::MethodNotAllowed { allow } => assert_eq!(allow, vec!["DELETE", "GET"]),
            _ => panic!("405 expected"),
        }
        assert!(matches!(
            router().route("GET", "/gateway/deferred/flush"),
            Match::MethodNotAllowed { .. }
        ));
    }

    #[test]
    fn unknown_is_not_found() {
        assert!(matches!(router().route("GET", "/nope"), Match::NotFound));
        assert!(matches!(
            router().route("GET", "/storage/files/a/b"),
            Match::NotFound
        ));
    }
}
