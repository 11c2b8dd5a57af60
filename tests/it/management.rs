//! Management DDL (`/management/*`, issue 16): the flow from capabilities
//! to a dropped table with the audit log of each step, the rights matrix as
//! data, hostile names, functions, extensions, views, lock timeouts and an
//! audit store that is gone.

use crate::common::{psql, TestServer, ADMIN_KEY, CLIENT};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Every management right (a key holding them all, bound to the client).
const ALL_RIGHTS: &[&str] = &[
    "management.read",
    "management.tables.write",
    "management.tables.drop",
    "management.columns.drop",
    "management.indexes.write",
    "management.indexes.drop",
    "management.views.write",
    "management.views.drop",
    "management.functions.read",
    "management.functions.write",
    "management.functions.drop",
    "management.extensions.write",
    "gateway.fetch.execute",
    "gateway.insert.execute",
];

async fn owner_key(s: &TestServer) -> String {
    s.api_key(ALL_RIGHTS, Some(CLIENT)).await
}

async fn call(
    s: &TestServer,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> crate::common::Reply {
    s.send(
        method,
        path,
        &[("x-athena-client", CLIENT), ("apikey", key)],
        body,
    )
    .await
}

/// The audit rows of the test client, oldest first: (operation, statement, status).
async fn audit_rows(s: &TestServer) -> Vec<(String, String, String)> {
    psql(&s.catalog_url)
        .await
        .query(
            "SELECT operation, statement, status FROM database_audit_log
              WHERE client_name = $1 ORDER BY id",
            &[&CLIENT],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

async fn relations(s: &TestServer) -> i64 {
    s.scalar("SELECT count(*) FROM pg_class").await
}

#[tokio::test]
async fn flow_capabilities_create_alter_index_insert_fetch_drop_with_audit() {
    let s = TestServer::start().await;
    let key = owner_key(&s).await;

    let r = call(&s, &key, "GET", "/management/capabilities", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let caps = &r.json()["data"];
    assert_eq!(caps["backend"], "postgresql");
    assert_eq!(caps["retention_mutation_supported"], false);
    assert!(caps["allowed_index_methods"]
        .as_array()
        .unwrap()
        .contains(&json!("gin")));
    assert!(caps["required_rights"].as_array().unwrap().contains(
        &json!({"operation": "drop_column", "required_right": "management.columns.drop"})
    ));

    let r = call(
        &s,
        &key,
        "POST",
        "/management/tables",
        Some(json!({
            "table_name": "widgets",
            "columns": [
                {"name": "id", "data_type": "bigserial", "nullable": false},
                {"name": "name", "data_type": "varchar(80)", "nullable": false, "default_expression": "'it''s'"},
                {"name": "tags", "data_type": "text[]"},
                {"name": "created_at", "data_type": "timestamptz", "default_expression": "now()"}
            ]
        })),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let cols = r.json()["data"]["columns"].clone();
    assert_eq!(cols.as_array().unwrap().len(), 4, "{cols}");
    assert_eq!(cols[1]["data_type"], "character varying(80)");
    s.tenant()
        .await
        .batch_execute("ALTER TABLE widgets ADD PRIMARY KEY (id)")
        .await
        .unwrap();

    // Exists → 409 (if_not_exists ignored, as documented).
    let r = call(
        &s,
        &key,
        "POST",
        "/management/tables",
        Some(json!({"table_name": "widgets", "if_not_exists": true, "columns": []})),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.text());

    let r = call(
        &s,
        &key,
        "PATCH",
        "/management/tables/widgets",
        Some(json!({"operations": [
            {"type": "add_column", "column": {"name": "price", "data_type": "numeric(10,2)", "default_expression": "0"}},
            {"type": "set_not_null", "column_name": "price"}
        ]})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.scalar("SELECT count(*) FROM information_schema.columns WHERE table_name = 'widgets' AND column_name = 'price' AND is_nullable = 'NO'")
            .await,
        1
    );

    // All or nothing: the second operation fails, the first is undone.
    let r = call(
        &s,
        &key,
        "PATCH",
        "/management/tables/widgets",
        Some(json!({"operations": [
            {"type": "add_column", "column": {"name": "ghost", "data_type": "text"}},
            {"type": "drop_default", "column_name": "no_such_column"}
        ]})),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(
        s.scalar("SELECT count(*) FROM information_schema.columns WHERE table_name = 'widgets' AND column_name = 'ghost'")
            .await,
        0
    );
    let r = call(
        &s,
        &key,
        "PATCH",
        "/management/tables/nope",
        Some(json!({"operations": [{"type": "drop_not_null", "column_name": "x"}]})),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());

    let r = call(
        &s,
        &key,
        "POST",
        "/management/indexes",
        Some(json!({"table_name": "widgets", "columns": ["name", "price"]})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["data"]["index_name"], "widgets_name_price_idx");
    assert_eq!(
        s.scalar("SELECT count(*) FROM pg_indexes WHERE indexname = 'widgets_name_price_idx'")
            .await,
        1
    );
    let r = call(
        &s,
        &key,
        "POST",
        "/management/indexes",
        Some(json!({"table_name": "widgets", "columns": ["name", "price"]})),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.text());
    let r = call(
        &s,
        &key,
        "POST",
        "/management/indexes",
        Some(json!({"table_name": "nope", "columns": ["a"]})),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());

    // The data plane sees the new column.
    let r = call(
        &s,
        &key,
        "PUT",
        "/gateway/insert",
        Some(json!({"table_name": "widgets", "insert_body": {"name": "w1", "price": 9.5}})),
    )
    .await;
    assert!(r.status < 300, "{} {}", r.status, r.text());
    let r = call(
        &s,
        &key,
        "POST",
        "/gateway/fetch",
        Some(json!({"table_name": "widgets", "columns": ["name", "price"]})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let rows = r.json()["data"].clone();
    assert_eq!(rows[0]["name"], "w1", "{rows}");
    assert!(rows[0].get("price").is_some(), "{rows}");

    // Column drop: the primary key is reserved, unknown is 404.
    let r = call(
        &s,
        &key,
        "DELETE",
        "/management/tables/widgets/columns/id",
        Some(json!({})),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = call(
        &s,
        &key,
        "DELETE",
        "/management/tables/widgets/columns/nope",
        Some(json!({})),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = call(
        &s,
        &key,
        "DELETE",
        "/management/tables/widgets/columns/price",
        Some(json!({})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.scalar("SELECT count(*) FROM information_schema.columns WHERE table_name = 'widgets' AND column_name = 'price'")
            .await,
        0
    );
    let r = call(
        &s,
        &key,
        "POST",
        "/gateway/fetch",
        Some(json!({"table_name": "widgets"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["data"][0].get("price").is_none(), "{}", r.text());

    // A dependent view: RESTRICT refuses (400), CASCADE drops.
    s.tenant()
        .await
        .batch_execute("CREATE VIEW widget_names AS SELECT name FROM widgets")
        .await
        .unwrap();
    let r = call(
        &s,
        &key,
        "DELETE",
        "/management/tables/widgets",
        Some(json!({})),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = call(
        &s,
        &key,
        "DELETE",
        "/management/tables/widgets",
        Some(json!({"cascade": true})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.scalar("SELECT count(*) FROM pg_class WHERE relname = 'widgets'")
            .await,
        0
    );
    let r = call(
        &s,
        &key,
        "DELETE",
        "/management/tables/widgets",
        Some(json!({})),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());

    // The audit log lists each step with the statement that ran.
    let rows = audit_rows(&s).await;
    let ok: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| r.2 == "success")
        .map(|r| (r.0.as_str(), r.1.as_str()))
        .collect();
    assert_eq!(
        ok,
        vec![
            (
                "management.tables.create",
                "CREATE TABLE \"public\".\"widgets\" (\"id\" bigserial NOT NULL, \"name\" character varying(80) NOT NULL DEFAULT 'it''s', \"tags\" text[], \"created_at\" timestamp with time zone DEFAULT now())"
            ),
            (
                "management.tables.alter",
                "ALTER TABLE \"public\".\"widgets\" ADD COLUMN \"price\" numeric(10,2) DEFAULT 0;\nALTER TABLE \"public\".\"widgets\" ALTER COLUMN \"price\" SET NOT NULL"
            ),
            (
                "management.indexes.create",
                "CREATE INDEX \"widgets_name_price_idx\" ON \"public\".\"widgets\" USING btree (\"name\", \"price\")"
            ),
            (
                "management.columns.drop",
                "ALTER TABLE \"public\".\"widgets\" DROP COLUMN \"price\" RESTRICT"
            ),
            (
                "management.tables.drop",
                "DROP TABLE \"public\".\"widgets\" CASCADE"
            ),
        ],
        "{rows:#?}"
    );
    // Failures are recorded as errors, never left pending.
    assert!(rows.iter().all(|r| r.2 != "pending"), "{rows:#?}");
    assert!(rows
        .iter()
        .any(|r| r.2 == "error" && r.1.starts_with("CREATE TABLE")));
}

/// One management route as the matrix sends it.
struct Route {
    method: &'static str,
    path: &'static str,
    right: &'static str,
    body: Option<Value>,
}

/// Each route with a body that changes nothing once authorized (a name
/// the grammar refuses, an unknown object).
fn routes() -> Vec<Route> {
    let bad = json!({"table_name": "a;b", "columns": ["x"], "view_name": "a;b", "query": "SELECT 1",
                     "ddl": "DROP TABLE x", "function_name": "a;b", "arg_types": [],
                     "extension_name": "not_allowlisted", "operations": []});
    let r = |method, path, right| Route {
        method,
        path,
        right,
        body: (method != "GET").then(|| bad.clone()),
    };
    vec![
        r("GET", "/management/capabilities", "management.read"),
        r("POST", "/management/tables", "management.tables.write"),
        r(
            "PATCH",
            "/management/tables/matrix_t",
            "management.tables.write",
        ),
        r(
            "DELETE",
            "/management/tables/matrix_t",
            "management.tables.drop",
        ),
        r(
            "DELETE",
            "/management/tables/matrix_t/columns/c",
            "management.columns.drop",
        ),
        r("POST", "/management/indexes", "management.indexes.write"),
        r(
            "DELETE",
            "/management/indexes/matrix_i",
            "management.indexes.drop",
        ),
        r("POST", "/management/views", "management.views.write"),
        r(
            "DELETE",
            "/management/views/matrix_v",
            "management.views.drop",
        ),
        r("GET", "/management/functions", "management.functions.read"),
        r("PUT", "/management/functions", "management.functions.write"),
        r(
            "DELETE",
            "/management/functions",
            "management.functions.drop",
        ),
        r(
            "POST",
            "/management/extensions/install",
            "management.extensions.write",
        ),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    NoKey,
    AdminKey,
    Unbound,
    BoundWithoutRight,
    WithRight,
    OtherClient,
}

/// The matrix: what each caller kind gets on every management route, with
/// keys enforced and not (a management route is always keyed).
const MATRIX: &[(Who, &[u16])] = &[
    (Who::NoKey, &[401]),
    (Who::AdminKey, &[403]),
    (Who::Unbound, &[403]),
    (Who::BoundWithoutRight, &[403]),
    (Who::OtherClient, &[403]),
    // Authorized: the (harmless) body decides: 200 for reads, 400/404.
    (Who::WithRight, &[200, 400, 404]),
];

#[tokio::test]
async fn rights_matrix_every_route_every_caller() {
    let s = TestServer::start().await;
    let r = s
        .send(
            "POST",
            "/admin/clients",
            &[("x-athena-key", ADMIN_KEY)],
            Some(json!({"client_name": "other", "pg_uri": s.tenant_url})),
        )
        .await;
    assert!(r.status < 300, "{}", r.text());
    let before = relations(&s).await;
    let mut problems = Vec::new();
    for enforced in [false, true] {
        s.enforce_keys(enforced).await;
        for route in routes() {
            let others: Vec<&str> = ALL_RIGHTS
                .iter()
                .copied()
                .filter(|r| *r != route.right)
                .collect();
            for (who, expected) in MATRIX {
                let key = match who {
                    Who::NoKey => None,
                    Who::AdminKey => Some(ADMIN_KEY.to_string()),
                    Who::Unbound => Some(s.api_key(&[route.right], None).await),
                    Who::BoundWithoutRight => Some(s.api_key(&others, Some(CLIENT)).await),
                    Who::WithRight => Some(s.api_key(&[route.right], Some(CLIENT)).await),
                    Who::OtherClient => Some(s.api_key(&[route.right], Some("other")).await),
                };
                let mut headers = vec![("x-athena-client", CLIENT)];
                if let Some(k) = key.as_deref() {
                    headers.push(("apikey", k));
                }
                let reply = s
                    .send(route.method, route.path, &headers, route.body.clone())
                    .await;
                if !expected.contains(&reply.status) {
                    problems.push(format!(
                        "enforced={enforced} {} {} as {who:?}: expected {expected:?}, got {} {}",
                        route.method,
                        route.path,
                        reply.status,
                        reply.text().chars().take(160).collect::<String>()
                    ));
                }
                if matches!(reply.status, 401 | 403) {
                    assert!(
                        reply.json()["error"].is_string() || reply.json()["status"].is_string()
                    );
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(relations(&s).await, before, "nothing changed pg_class");
}

#[tokio::test]
async fn hostile_names_are_400_and_change_nothing() {
    let s = TestServer::start().await;
    let key = owner_key(&s).await;
    s.tenant()
        .await
        .batch_execute("CREATE TABLE target (id int PRIMARY KEY, c text)")
        .await
        .unwrap();
    let before = relations(&s).await;
    let long = "a".repeat(64);
    let hostile = [
        "x\"; DROP TABLE target; --",
        "a;b",
        "a--b",
        "naïve",
        "表",
        long.as_str(),
        "",
        "a b",
        "a.b",
    ];
    for name in hostile {
        let col = json!([{"name": name, "data_type": "text"}]);
        let bodies: Vec<(&str, String, Value)> = vec![
            (
                "POST",
                "/management/tables".into(),
                json!({"table_name": name, "columns": []}),
            ),
            (
                "POST",
                "/management/tables".into(),
                json!({"table_name": "ok_t", "columns": col}),
            ),
            (
                "POST",
                "/management/tables".into(),
                // An empty schema_name is the default (public): a bad table name.
                json!({"schema_name": name, "table_name": if name.is_empty() { "a;b" } else { "ok_t" }}),
            ),
            (
                "PATCH",
                "/management/tables/target".into(),
                json!({"operations": [{"type": "rename_column", "from": "c", "to": name}]}),
            ),
            (
                "PATCH",
                "/management/tables/target".into(),
                json!({"operations": [{"type": "add_column", "column": {"name": name, "data_type": "text"}}]}),
            ),
            (
                "POST",
                "/management/indexes".into(),
                json!({"table_name": "target", "columns": [name]}),
            ),
            (
                "POST",
                "/management/indexes".into(),
                // An empty index_name is the default name: a bad one instead.
                json!({"table_name": "target", "columns": ["c"], "index_name": if name.is_empty() { "a;b" } else { name }}),
            ),
            (
                "POST",
                "/management/views".into(),
                json!({"view_name": name, "query": "SELECT 1"}),
            ),
            (
                "DELETE",
                "/management/functions".into(),
                json!({"function_name": name, "arg_types": []}),
            ),
        ];
        for (method, path, body) in bodies {
            let r = call(&s, &key, method, &path, Some(body.clone())).await;
            assert_eq!(r.status, 400, "{method} {path} {body}: {}", r.text());
            assert!(r.json()["error"].is_string(), "{}", r.text());
        }
        // In the path (percent-encoded).
        let enc: String = name.bytes().map(|b| format!("%{b:02X}")).collect();
        if !enc.is_empty() {
            for (method, path) in [
                ("DELETE", format!("/management/tables/{enc}")),
                ("PATCH", format!("/management/tables/{enc}")),
                ("DELETE", format!("/management/tables/target/columns/{enc}")),
                ("DELETE", format!("/management/indexes/{enc}")),
                ("DELETE", format!("/management/views/{enc}")),
            ] {
                let body = json!({"operations": [{"type": "drop_not_null", "column_name": "c"}]});
                let r = call(&s, &key, method, &path, Some(body)).await;
                assert_eq!(r.status, 400, "{method} {path}: {}", r.text());
            }
        }
    }
    // Types, defaults and system schemas.
    for (ty, default) in [
        ("text; DROP TABLE target", None),
        ("varchar(0)", None),
        ("numeric(5,9)", None),
        ("regclass", None),
        ("text", Some("1; DROP TABLE target")),
        ("text", Some("pg_sleep(5)")),
        ("text", Some("'a' || current_user")),
    ] {
        let r = call(
            &s,
            &key,
            "POST",
            "/management/tables",
            Some(json!({"table_name": "t2", "columns": [{"name": "c", "data_type": ty, "default_expression": default}]})),
        )
        .await;
        assert_eq!(r.status, 400, "{ty} {default:?}: {}", r.text());
    }
    for schema in [
        "pg_catalog",
        "information_schema",
        "pg_toast",
        "athena_gateway",
    ] {
        let r = call(
            &s,
            &key,
            "POST",
            "/management/tables",
            Some(json!({"schema_name": schema, "table_name": "t3"})),
        )
        .await;
        assert_eq!(r.status, 400, "{schema}: {}", r.text());
    }
    assert_eq!(relations(&s).await, before, "pg_class unchanged");
    assert!(
        audit_rows(&s).await.is_empty(),
        "nothing reached the audit log"
    );
}

#[tokio::test]
async fn functions_put_get_delete_read_back_from_pg_proc() {
    let s = TestServer::start().await;
    let key = owner_key(&s).await;
    let ddl = "CREATE OR REPLACE FUNCTION public.add_one(x integer) RETURNS integer LANGUAGE sql IMMUTABLE AS $$ SELECT x + 1; $$;";
    let r = call(
        &s,
        &key,
        "PUT",
        "/management/functions",
        Some(json!({"ddl": ddl})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["replaced"], false);
    assert_eq!(s.scalar("SELECT public.add_one(41)::bigint").await, 42);
    let v2 = ddl.replace("x + 1", "x + 2");
    let r = call(
        &s,
        &key,
        "PUT",
        "/management/functions",
        Some(json!({"ddl": v2})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["replaced"], true);
    assert_eq!(s.scalar("SELECT public.add_one(40)::bigint").await, 42);

    // The function audit row keeps what was replaced.
    let previous: Option<String> = psql(&s.catalog_url)
        .await
        .query_one(
            "SELECT previous_definition FROM function_ddl_audit_log ORDER BY id DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(previous.unwrap().contains("x + 1"));

    let r = call(
        &s,
        &key,
        "GET",
        "/management/functions?name_like=add_&include_definition=true",
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let fs = r.json()["data"]["functions"].clone();
    assert_eq!(fs.as_array().unwrap().len(), 1, "{fs}");
    assert_eq!(fs[0]["name"], "add_one");
    assert_eq!(fs[0]["language"], "sql");
    assert_eq!(fs[0]["volatility"], "immutable");
    assert_eq!(fs[0]["arguments"], "x integer");
    assert!(fs[0]["definition"].as_str().unwrap().contains("x + 2"));
    let r = call(
        &s,
        &key,
        "GET",
        "/management/functions?include_system=true&name_like=int4pl",
        None,
    )
    .await;
    assert!(!r.json()["data"]["functions"].as_array().unwrap().is_empty());

    for bad in [
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$; DROP TABLE x",
        "CREATE FUNCTION f() RETURNS int LANGUAGE c AS 'x', 'y'",
        "CREATE FUNCTION f() RETURNS int LANGUAGE internal AS 'int4in'",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql SECURITY DEFINER AS $$ SELECT 1 $$",
        "CREATE FUNCTION pg_catalog.f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$",
        "DROP TABLE x",
    ] {
        let r = call(
            &s,
            &key,
            "PUT",
            "/management/functions",
            Some(json!({"ddl": bad})),
        )
        .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }

    // Postgres refuses the body: its SQLSTATE decides (42703 → 404).
    let r = call(
        &s,
        &key,
        "PUT",
        "/management/functions",
        Some(json!({"ddl": "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT nope $$"})),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(audit_rows(&s).await.last().unwrap().2, "error");

    let r = call(
        &s,
        &key,
        "DELETE",
        "/management/functions",
        Some(json!({"function_name": "add_one", "arg_types": ["text"]})),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = call(
        &s,
        &key,
        "DELETE",
        "/management/functions",
        Some(json!({"function_name": "add_one", "arg_types": ["no_such_type"]})),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = call(
        &s,
        &key,
        "DELETE",
        "/management/functions",
        Some(json!({"function_name": "add_one", "arg_types": ["int"]})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.scalar("SELECT count(*) FROM pg_proc WHERE proname = 'add_one'")
            .await,
        0
    );
    let rows = audit_rows(&s).await;
    assert_eq!(
        rows.last().unwrap().1,
        "DROP FUNCTION \"public\".\"add_one\"(integer) RESTRICT"
    );
}

#[tokio::test]
async fn extensions_install_from_the_allowlist_only() {
    let s = TestServer::start_with(|c| {
        c.management.extension_allowlist = vec!["pgcrypto".into(), "not_a_real_ext".into()];
    })
    .await;
    let key = owner_key(&s).await;
    let install = |name: &'static str, if_not_exists: bool| {
        let s = &s;
        let key = key.clone();
        async move {
            call(
                s,
                &key,
                "POST",
                "/management/extensions/install",
                Some(json!({"extension_name": name, "if_not_exists": if_not_exists})),
            )
            .await
        }
    };
    // Not allowlisted (citext is in the default list, not in this one).
    assert_eq!(install("citext", false).await.status, 400);
    // Allowlisted but not available on the server.
    assert_eq!(install("not_a_real_ext", false).await.status, 400);
    let r = install("pgcrypto", true).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.scalar("SELECT count(*) FROM pg_extension WHERE extname = 'pgcrypto'")
            .await,
        1
    );
    assert_eq!(install("pgcrypto", true).await.status, 200);
    assert_eq!(install("pgcrypto", false).await.status, 409);
    let rows = audit_rows(&s).await;
    assert_eq!(rows[0].1, "CREATE EXTENSION IF NOT EXISTS \"pgcrypto\"");
}

#[tokio::test]
async fn views_create_replace_drop_read_back_from_pg_views() {
    let s = TestServer::start().await;
    let key = owner_key(&s).await;
    s.tenant()
        .await
        .batch_execute(
            "CREATE TABLE items (id int, name text); INSERT INTO items VALUES (1, 'a;b')",
        )
        .await
        .unwrap();
    let r = call(
        &s,
        &key,
        "POST",
        "/management/views",
        Some(
            json!({"view_name": "item_names", "query": "SELECT name FROM items WHERE name <> ';'"}),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.scalar("SELECT count(*) FROM pg_views WHERE viewname = 'item_names'")
            .await,
        1
    );
    let r = call(
        &s,
        &key,
        "POST",
        "/management/views",
        Some(json!({"view_name": "item_names", "query": "SELECT name FROM items"})),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.text());
    let r = call(
        &s,
        &key,
        "POST",
        "/management/views",
        Some(json!({"view_name": "item_names", "query": "SELECT name, id FROM items", "or_replace": true})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = call(
        &s,
        &key,
        "POST",
        "/management/views",
        Some(
            json!({"view_name": "item_mv", "query": "SELECT id FROM items", "materialized": true}),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.scalar("SELECT count(*) FROM pg_matviews WHERE matviewname = 'item_mv'")
            .await,
        1
    );
    for bad in [
        "SELECT 1; DROP TABLE items",
        "DELETE FROM items",
        "WITH d AS (DELETE FROM items RETURNING *) SELECT * FROM d",
    ] {
        let r = call(
            &s,
            &key,
            "POST",
            "/management/views",
            Some(json!({"view_name": "v_bad", "query": bad})),
        )
        .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    let r = call(&s, &key, "POST", "/management/views", None).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(s.scalar("SELECT count(*) FROM items").await, 1);

    let r = call(&s, &key, "DELETE", "/management/views/item_names", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.scalar("SELECT count(*) FROM pg_views WHERE viewname = 'item_names'")
            .await,
        0
    );
    let r = call(&s, &key, "DELETE", "/management/views/item_names", None).await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = call(
        &s,
        &key,
        "DELETE",
        "/management/views/item_mv",
        Some(json!({"materialized": true})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn a_locked_table_is_503_with_retry_after_within_the_lock_timeout() {
    let s = TestServer::start().await;
    let key = owner_key(&s).await;
    let mut holder = psql(&s.tenant_url).await;
    holder
        .batch_execute("CREATE TABLE busy (id int)")
        .await
        .unwrap();
    let tx = holder.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let started = Instant::now();
    let r = call(
        &s,
        &key,
        "PATCH",
        "/management/tables/busy",
        Some(json!({"operations": [{"type": "add_column", "column": {"name": "c", "data_type": "text"}}]})),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.headers.contains_key("retry-after"), "{:?}", r.headers);
    assert!(
        took >= Duration::from_millis(2_500) && took < Duration::from_secs(6),
        "{took:?}"
    );
    tx.rollback().await.unwrap();
    assert_eq!(
        s.scalar("SELECT count(*) FROM information_schema.columns WHERE table_name = 'busy' AND column_name = 'c'")
            .await,
        0
    );
    let rows = audit_rows(&s).await;
    assert_eq!(rows.last().unwrap().2, "error", "{rows:?}");
}

#[tokio::test]
async fn audit_store_without_its_table_is_503_and_no_ddl_runs() {
    let s = TestServer::start().await;
    let key = owner_key(&s).await;
    psql(&s.catalog_url)
        .await
        .batch_execute("DROP TABLE function_ddl_audit_log; DROP TABLE database_audit_log")
        .await
        .unwrap();
    let before = relations(&s).await;
    let r = call(
        &s,
        &key,
        "POST",
        "/management/tables",
        Some(json!({"table_name": "unaudited", "columns": [{"name": "id", "data_type": "int"}]})),
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(relations(&s).await, before, "no DDL ran");
}

#[tokio::test]
async fn another_replica_sees_the_new_column_at_once() {
    let s = TestServer::start().await;
    let b = s.replica_with(|_| {}).await;
    let key = owner_key(&s).await;
    s.tenant()
        .await
        .batch_execute("CREATE TABLE gadgets (id int); INSERT INTO gadgets VALUES (1)")
        .await
        .unwrap();
    let fetch = |columns: Value| {
        let (b, key) = (&b, key.clone());
        async move {
            call(
                b,
                &key,
                "POST",
                "/gateway/fetch",
                Some(json!({"table_name": "gadgets", "columns": columns})),
            )
            .await
        }
    };
    // Replica b knows the table without the column (its cache is loaded).
    assert_eq!(fetch(json!(["id"])).await.status, 200);
    assert_eq!(fetch(json!(["color"])).await.status, 400);
    let r = call(
        &s,
        &key,
        "PATCH",
        "/management/tables/gadgets",
        Some(json!({"operations": [{"type": "add_column", "column": {"name": "color", "data_type": "text", "default_expression": "'red'"}}]})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The DDL was made on s: b learns it from the catalog feed.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let r = fetch(json!(["color"])).await;
        if r.status == 200 {
            assert_eq!(r.json()["data"][0]["color"], "red", "{}", r.text());
            break;
        }
        assert!(Instant::now() < deadline, "b still refuses: {}", r.text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A management change publishes its operation on the events bus: a
/// webhook subscribed to `management.tables.create` gets an outbox job
/// carrying the executed statement (`src/management/mod.rs` `publish`).
#[tokio::test]
async fn a_change_publishes_its_management_event() {
    let s = TestServer::start_with(|c| crate::common::allow(c, "127.0.0.1:9")).await;
    let key = owner_key(&s).await;
    let r = s
        .send(
            "POST",
            "/admin/webhooks",
            &[("x-athena-key", ADMIN_KEY)],
            Some(json!({
                "name": "ddl", "client_name": CLIENT, "route_key": "management.tables.create",
                // Nobody listens: the job is what this test reads.
                "url": "http://127.0.0.1:9/ddl", "max_attempts": 1
            })),
        )
        .await;
    assert!(r.status == 200 || r.status == 201, "{}", r.text());
    let r = call(
        &s,
        &key,
        "POST",
        "/management/tables",
        Some(json!({"table_name": "evented", "columns": [{"name": "id", "data_type": "integer"}]})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let events: Vec<Value> = psql(&s.catalog_url)
        .await
        .query(
            "SELECT event FROM athena_outbox WHERE event->>'route_key' = 'management.tables.create'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["client_name"], CLIENT);
    assert_eq!(events[0]["table_name"], "evented");
    assert!(events[0]["data"]["statement"]
        .as_str()
        .unwrap()
        .contains("CREATE TABLE"));
    s.stop().await;
}

/// DDL never runs as a superuser unless the operator allows it: by default
/// a superuser tenant login is refused (403, audit `error`, nothing
/// created); with `ATHENA_MANAGEMENT_ROLE` the DDL runs as that role
/// (`SET LOCAL ROLE`) and the new table belongs to it.
#[tokio::test]
async fn ddl_refuses_superusers_and_runs_as_the_configured_role() {
    let body = json!({"table_name": "owned", "columns": [{"name": "id", "data_type": "bigint"}]});
    let s = TestServer::start_with(|c| c.management.allow_superuser = false).await;
    let key = owner_key(&s).await;
    let before = relations(&s).await;
    let r = call(&s, &key, "POST", "/management/tables", Some(body.clone())).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("superuser"), "{}", r.text());
    assert_eq!(relations(&s).await, before, "nothing was created");
    let audit = audit_rows(&s).await;
    assert_eq!(
        audit.last().map(|a| a.2.as_str()),
        Some("error"),
        "{audit:?}"
    );
    s.stop().await;

    // A role of this test only (roles are cluster-wide), allowed to create
    // in the tenant's public schema.
    let role = format!("ddl_{}", uuid::Uuid::new_v4().simple());
    let s = TestServer::start_with(|c| {
        c.management.allow_superuser = false;
        c.management.role = Some(role.clone());
    })
    .await;
    let tenant = s.tenant().await;
    tenant
        .batch_execute(&format!(
            "CREATE ROLE \"{role}\" NOLOGIN; GRANT USAGE, CREATE ON SCHEMA public TO \"{role}\""
        ))
        .await
        .unwrap();
    let key = owner_key(&s).await;
    let r = call(&s, &key, "POST", "/management/tables", Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let owner: String = tenant
        .query_one(
            "SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE relname = 'owned'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(owner, role);
    // The role cannot reach what it was not granted: a table of the login's.
    tenant
        .batch_execute("CREATE TABLE admins_only (id int)")
        .await
        .unwrap();
    let r = call(
        &s,
        &key,
        "DELETE",
        "/management/tables/admins_only",
        Some(json!({})),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(
        s.scalar("SELECT count(*) FROM pg_class WHERE relname = 'admins_only'")
            .await,
        1
    );
    tenant
        .batch_execute(&format!(
            "DROP TABLE owned; REVOKE ALL ON SCHEMA public FROM \"{role}\"; DROP ROLE \"{role}\""
        ))
        .await
        .unwrap();
    s.stop().await;
}

/// A view is checked by what Postgres resolved it to read (its rewrite
/// rule's dependencies), so the data plane never exposes the gateway's own
/// tables or the system catalogs through a view — whatever the spelling
/// (schema-qualified, unqualified through the implicit `pg_catalog`, in a
/// subquery or a CTE). Refused views are not created; a view over the
/// tenant's own tables still is.
#[tokio::test]
async fn views_never_read_gateway_or_system_relations() {
    let s = TestServer::start().await;
    let key = owner_key(&s).await;
    s.tenant()
        .await
        .batch_execute(
            "CREATE TABLE notes (id int, body text); INSERT INTO notes VALUES (1, 'mine');
             CREATE SCHEMA IF NOT EXISTS athena_chat;
             CREATE TABLE athena_chat.messages (id int, body_text text);
             INSERT INTO athena_chat.messages VALUES (1, 'private')",
        )
        .await
        .unwrap();
    for (i, bad) in [
        "SELECT body_text FROM athena_chat.messages",
        "SELECT * FROM notes WHERE id IN (SELECT id FROM athena_chat.messages)",
        "WITH m AS (SELECT body_text FROM athena_chat.\"messages\") SELECT * FROM m",
        "SELECT name, setting FROM pg_settings",
        "SELECT rolname FROM pg_catalog.pg_roles",
        "SELECT table_name FROM information_schema.tables",
    ]
    .iter()
    .enumerate()
    {
        let name = format!("v_leak_{i}");
        let r = call(
            &s,
            &key,
            "POST",
            "/management/views",
            Some(json!({"view_name": name, "query": bad})),
        )
        .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert!(r.text().contains("may not read"), "{bad}: {}", r.text());
        assert_eq!(
            s.scalar(&format!(
                "SELECT count(*) FROM pg_class WHERE relname = '{name}'"
            ))
            .await,
            0,
            "{bad}"
        );
    }
    let r = call(
        &s,
        &key,
        "POST",
        "/management/views",
        Some(
            json!({"view_name": "v_notes", "query": "SELECT body, now() AS at FROM notes",
                    "materialized": true}),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.scalar("SELECT count(*) FROM v_notes WHERE body = 'mine'")
            .await,
        1
    );
}
