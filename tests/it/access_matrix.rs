//! The authorization matrix (`openapi/access-matrix.txt`): one line per
//! operation of the contract and of the SDK overlay, one column per kind of
//! caller. The first test
//! holds the file to the contract and to the access table
//! (`src/auth/access.rs`); the second sends every operation as every caller
//! kind to one in-process server with API keys enforced and checks each
//! cell: `deny` is a 401 or 403, `allow` anything else.

use crate::common;

use athena::api::operations::{OperationMeta, OPERATIONS};
use athena::auth::access::{self, Access};
use athena::auth::rights::Right;
use common::{allow_local_postgres, TestServer, ADMIN_KEY, CLIENT};
use std::collections::{BTreeMap, BTreeSet};

const MATRIX: &str = include_str!("../../openapi/access-matrix.txt");

/// The caller kinds, in the file's column order.
const CALLERS: [Caller; 5] = [
    Caller::Anonymous,
    Caller::Admin,
    Caller::Granted,
    Caller::Ungranted,
    Caller::Direct,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    Admin,
    Granted,
    Ungranted,
    Direct,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cell {
    Allow,
    Deny,
    /// `-`: the caller kind does not apply (`granted` without a right).
    None,
}

struct Row {
    line: usize,
    access: &'static str,
    cells: [Cell; 5],
}

/// The matrix by operation name; panics naming the line of a malformed one.
fn matrix() -> BTreeMap<&'static str, Row> {
    let mut rows = BTreeMap::new();
    for (i, text) in MATRIX.lines().enumerate() {
        let line = i + 1;
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [op, access, cells @ ..] = fields.as_slice() else {
            panic!("access-matrix.txt:{line}: expected an operation and its access");
        };
        assert_eq!(
            cells.len(),
            CALLERS.len(),
            "access-matrix.txt:{line} ({op}): expected {} cells",
            CALLERS.len()
        );
        let cells = std::array::from_fn(|i| match cells[i] {
            "allow" => Cell::Allow,
            "deny" => Cell::Deny,
            "-" => Cell::None,
            other => panic!("access-matrix.txt:{line} ({op}): `{other}` is not allow, deny or -"),
        });
        let row = Row {
            line,
            access,
            cells,
        };
        assert!(
            rows.insert(*op, row).is_none(),
            "access-matrix.txt:{line}: {op} has two lines"
        );
    }
    rows
}

/// How the access table's row is spelled in the file's `access` column.
fn spelled(access: Access) -> String {
    match access {
        Access::Open => "open".into(),
        Access::Admin => "admin".into(),
        Access::Public => "public".into(),
        Access::Right(right) => right.as_str().into(),
        Access::Keyed(right) => format!("keyed:{right}"),
        Access::Bound(right) => format!("bound:{right}"),
    }
}

#[test]
fn the_matrix_has_one_line_per_operation_matching_the_access_table() {
    let rows = matrix();
    let mut problems = Vec::new();
    for meta in OPERATIONS.iter() {
        let Some(row) = rows.get(meta.name) else {
            problems.push(format!(
                "{} ({} {}) has no line in openapi/access-matrix.txt",
                meta.name, meta.method, meta.path
            ));
            continue;
        };
        let rule = access::rule(meta.operation);
        if row.access != spelled(rule.access) {
            problems.push(format!(
                "{} (line {}): the matrix says `{}`, src/auth/access.rs says `{}`",
                meta.name,
                row.line,
                row.access,
                spelled(rule.access)
            ));
        }
        let granted = row.cells[2];
        if (granted == Cell::None) != rule.right().is_none() {
            problems.push(format!(
                "{} (line {}): `granted` is `-` exactly when the operation has no right",
                meta.name, row.line
            ));
        }
    }
    // The SDK-only operations (openapi/sdk-overlay.yaml) are held to it too.
    let sdk_only: Vec<&str> = OPERATIONS
        .iter()
        .filter(|m| m.sdk_only)
        .map(|m| m.name)
        .collect();
    assert_eq!(sdk_only.len(), 30, "{sdk_only:?}");
    assert!(sdk_only.iter().all(|op| rows.contains_key(op)));
    let known: BTreeSet<&str> = OPERATIONS.iter().map(|m| m.name).collect();
    for (op, row) in &rows {
        if !known.contains(op) {
            problems.push(format!(
                "{op} (line {}) is not an operation of the contract or the SDK overlay",
                row.line
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A concrete path for a template: every `{param}` filled with a
/// placeholder (a 400 or 404 after authorization is still `allow`).
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|s| if s.starts_with('{') { "matrix" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

/// The tenant database as a direct URI with a username and a password (the
/// test PostgreSQL trusts local connections; the server is told to accept
/// that).
fn direct_uri(tenant_url: &str) -> String {
    let (scheme, rest) = tenant_url.split_once("://").expect("a URL");
    let (userinfo, host) = rest.split_once('@').expect("the test URL names a user");
    let user = userinfo.split(':').next().unwrap_or(userinfo);
    format!("{scheme}://{user}:matrix@{host}")
}

/// One API key per right for `granted` (exactly that right) and one for
/// `ungranted` (every other native right, never `*`).
struct Keys {
    granted: BTreeMap<&'static str, String>,
    ungranted: BTreeMap<&'static str, String>,
}

impl Keys {
    async fn create(s: &TestServer) -> Keys {
        let mut keys = Keys {
            granted: BTreeMap::new(),
            ungranted: BTreeMap::new(),
        };
        // Open, admin and public operations: a key with every right.
        let every: Vec<&str> = Right::ALL
            .iter()
            .filter(|r| **r != Right::All)
            .map(|r| r.as_str())
            .collect();
        keys.ungranted.insert("", s.api_key(&every, None).await);
        let needed = |right: &&Right| {
            OPERATIONS
                .iter()
                .any(|m| access::rule(m.operation).right() == Some(**right))
        };
        for right in Right::ALL.iter().filter(needed) {
            let others: Vec<&str> = every
                .iter()
                .copied()
                .filter(|r| *r != right.as_str())
                .collect();
            keys.granted
                .insert(right.as_str(), s.api_key(&[right.as_str()], None).await);
            keys.ungranted
                .insert(right.as_str(), s.api_key(&others, None).await);
        }
        keys
    }

    fn key(&self, caller: Caller, meta: &OperationMeta) -> Option<&str> {
        let right = access::rule(meta.operation)
            .right()
            .map_or("", |r| r.as_str());
        match caller {
            Caller::Admin => Some(ADMIN_KEY),
            Caller::Granted => Some(&self.granted[right]),
            Caller::Ungranted => Some(&self.ungranted[right]),
            Caller::Anonymous | Caller::Direct => None,
        }
    }
}

#[tokio::test]
async fn every_operation_answers_every_caller_kind_as_the_matrix_says() {
    let s = TestServer::start_with(|c| {
        c.direct_allow_trust_auth = true;
        allow_local_postgres(c);
    })
    .await;
    s.enforce_keys(true).await;
    let keys = Keys::create(&s).await;
    let direct = direct_uri(&s.tenant_url);
    let end_user = format!(
        "Bearer {}",
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &serde_json::json!({"sub": "matrix", "org_id": "matrix", "exp": chrono::Utc::now().timestamp() + 600}),
            &jsonwebtoken::EncodingKey::from_secret(common::TEST_JWT_SECRET.as_bytes()),
        )
        .unwrap()
    );
    let rows = matrix();
    let mut problems = Vec::new();
    // The admin key last: an admin call may change state (an empty body
    // is refused, but nothing the other callers see should depend on it).
    for (column, caller) in [
        (0, Caller::Anonymous),
        (4, Caller::Direct),
        (3, Caller::Ungranted),
        (2, Caller::Granted),
        (1, Caller::Admin),
    ] {
        assert_eq!(CALLERS[column], caller);
        for meta in OPERATIONS.iter() {
            let Some(row) = rows.get(meta.name) else {
                continue; // reported by the test above
            };
            let expected = row.cells[column];
            if expected == Cell::None {
                continue;
            }
            let mut headers = vec![("x-athena-client", CLIENT)];
            if let Some(key) = keys.key(caller, meta) {
                headers.push(("x-athena-key", key));
            }
            if caller == Caller::Direct {
                headers.push(("x-pg-uri", direct.as_str()));
            }
            // Managed files and chat act for an end user too (`src/auth/end_user.rs`):
            // authorization is about the key, so every caller brings one.
            if [
                "/storage/files",
                "/storage/multipart",
                "/storage/folders",
                "/storage/permissions",
                "/storage/audit",
                "/chat",
            ]
            .iter()
            .any(|p| meta.path.starts_with(p))
            {
                headers.push(("authorization", end_user.as_str()));
            }
            let body = match meta.method {
                "GET" | "HEAD" => None,
                _ => Some(serde_json::json!({})),
            };
            let path = concrete(meta.path);
            let reply = s.send(meta.method, &path, &headers, body).await;
            let denied = matches!(reply.status, 401 | 403);
            let answered = if denied { Cell::Deny } else { Cell::Allow };
            if answered != expected {
                problems.push(format!(
                    "{} ({} {}) as {caller:?}: expected {expected:?}, got {} {}",
                    meta.name,
                    meta.method,
                    path,
                    reply.status,
                    reply.text().chars().take(200).collect::<String>()
                ));
            }
        }
    }
    s.stop().await;
    assert!(
        problems.is_empty(),
        "{} cells of openapi/access-matrix.txt do not hold:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
