//! Schema discovery (issue 16): `/schema*`, `/registry/{id}`,
//! `/debug/schema`, and the management DDL audit store
//! (`src/audit/ddl.rs`) the `/management/*` writes go through.

use crate::common::{self, Reply, TestServer, ADMIN_KEY, CLIENT};
use athena::audit::ddl::{AuditEntry, AuditStore};
use athena::db::PoolSettings;
use athena::domain::DomainError;
use serde_json::{json, Value};
use std::time::Duration;

/// Tables, a view, a materialized view, indexes, constraints and a
/// function in `public`, a same-named table in `app`.
const FIXTURE: &str = r#"
    CREATE SCHEMA app;
    CREATE TABLE public.widgets (
        id bigserial PRIMARY KEY,
        sku text NOT NULL UNIQUE,
        price numeric(10,2) DEFAULT 0,
        tags text[],
        created_at timestamptz NOT NULL DEFAULT now());
    CREATE TABLE public.orders (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        widget_id bigint REFERENCES public.widgets (id),
        qty integer CHECK (qty > 0),
        UNIQUE (widget_id, qty));
    CREATE INDEX orders_qty_idx ON public.orders USING btree (qty);
    CREATE INDEX widgets_tags_gin ON public.widgets USING gin (tags);
    CREATE VIEW public.widget_names AS SELECT sku FROM public.widgets;
    CREATE MATERIALIZED VIEW public.widget_count AS SELECT count(*) AS n FROM public.widgets;
    CREATE FUNCTION public.widget_total(p_id bigint) RETURNS numeric LANGUAGE sql STABLE
        AS $$ SELECT price FROM public.widgets WHERE id = p_id $$;
    CREATE TABLE app.widgets (x integer NOT NULL);
"#;

async fn fixture() -> TestServer {
    let server = TestServer::start().await;
    server.tenant().await.batch_execute(FIXTURE).await.unwrap();
    server
}

async fn admin_get(server: &TestServer, path: &str) -> Reply {
    server
        .send(
            "GET",
            path,
            &[("x-athena-key", ADMIN_KEY), ("x-athena-client", CLIENT)],
            None,
        )
        .await
}

fn names<'a>(list: &'a Value, field: &str) -> Vec<&'a str> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|t| t[field].as_str().unwrap())
        .collect()
}

fn settings() -> PoolSettings {
    PoolSettings {
        max_size: 2,
        connect_timeout: Duration::from_secs(2),
        acquire_timeout: Duration::from_secs(2),
        statement_timeout: Duration::from_secs(5),
        tls: Default::default(),
    }
}

fn entry(statement: &str) -> AuditEntry {
    AuditEntry {
        client_name: CLIENT.into(),
        api_key_id: Some("0b6f3c1e-0000-4000-8000-000000000001".into()),
        request_id: "req-1".into(),
        operation: "management.tables.create".into(),
        object_schema: Some("public".into()),
        object_name: Some("widgets".into()),
        statement: statement.into(),
        function: None,
    }
}

// ---------------------------------------------------------------- audit store

#[tokio::test]
async fn audit_store_begin_finish_and_recover() {
    let server = TestServer::start().await;
    let store = AuditStore::new(athena::db::pool(&server.catalog_url, settings()).unwrap());

    // begin → pending, with every field as given; finish → success.
    let sql = r#"CREATE TABLE "public"."widgets" ("id" bigint)"#;
    let id = store.begin(&entry(sql)).await.expect("begin");
    let rows = store.recent(CLIENT, 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (row.id, row.status.as_str(), row.statement.as_str()),
        (id.0, "pending", sql)
    );
    assert_eq!(row.operation, "management.tables.create");
    assert_eq!(row.object_schema.as_deref(), Some("public"));
    assert_eq!(row.object_name.as_deref(), Some("widgets"));
    assert_eq!(row.request_id, "req-1");
    assert!(row.api_key_id.is_some() && row.finished_at.is_none());
    store.finish(id, Ok(())).await;
    let row = &store.recent(CLIENT, 10).await.unwrap()[0];
    assert_eq!(row.status, "success");
    assert!(row.error.is_none() && row.finished_at.is_some());
    // A finished row is not finished again.
    store.finish(id, Err("late")).await;
    assert_eq!(store.recent(CLIENT, 10).await.unwrap()[0].status, "success");

    // An error keeps its message.
    let failed = store.begin(&entry("DROP TABLE x")).await.unwrap();
    store
        .finish(failed, Err("relation \"x\" does not exist"))
        .await;
    let row = &store.recent(CLIENT, 1).await.unwrap()[0];
    assert_eq!(
        (row.status.as_str(), row.error.as_deref()),
        ("error", Some("relation \"x\" does not exist"))
    );

    // Function DDL: the replaced definition is kept in its own table.
    let mut f =
        entry("CREATE OR REPLACE FUNCTION public.f() RETURNS int LANGUAGE sql AS $$ SELECT 2 $$");
    f.operation = "management.functions.replace".into();
    f.function = Some(Some("CREATE FUNCTION public.f() ... SELECT 1".into()));
    let fid = store.begin(&f).await.unwrap();
    store.finish(fid, Ok(())).await;
    let row = &store.recent(CLIENT, 1).await.unwrap()[0];
    assert_eq!(
        row.previous_definition.as_deref(),
        Some("CREATE FUNCTION public.f() ... SELECT 1")
    );
    let catalog = common::psql(&server.catalog_url).await;
    let (status, prev): (String, Option<String>) = catalog
        .query_one(
            "SELECT status, previous_definition FROM function_ddl_audit_log WHERE audit_id = $1",
            &[&fid.0],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(status, "success");
    assert!(prev.is_some());

    // A crash leaves a pending row: recovery marks it error (the grace
    // keeps a fresh row of a live replica open).
    let crashed = store
        .begin(&entry("ALTER TABLE t ADD COLUMN c text"))
        .await
        .unwrap();
    assert_eq!(
        store.recover_pending().await.unwrap(),
        0,
        "a fresh row is spared"
    );
    assert_eq!(
        store
            .recover_pending_older_than(Duration::ZERO)
            .await
            .unwrap(),
        1
    );
    let row = &store.recent(CLIENT, 1).await.unwrap()[0];
    assert_eq!(row.id, crashed.0);
    assert_eq!(row.status, "error");
    assert_eq!(row.error.as_deref(), Some(athena::audit::ddl::INTERRUPTED));
    assert!(row.finished_at.is_some());
    server.stop().await;
}

#[tokio::test]
async fn audit_store_down_or_missing_tables_is_503() {
    // Nothing listens on this port: begin refuses (503), nothing runs.
    let port = common::free_port();
    let down = AuditStore::new(
        athena::db::pool(
            &format!("postgres://athena@127.0.0.1:{port}/nowhere"),
            settings(),
        )
        .unwrap(),
    );
    match down.begin(&entry("CREATE TABLE t ()")).await {
        Err(DomainError::ServiceUnavailable(m)) => assert!(m.contains("audit"), "{m}"),
        other => panic!("expected 503 service_unavailable, got {other:?}"),
    }

    // A reachable database without the tables: the same 503.
    let mut server = TestServer::start().await;
    let empty = server.extra_db().await;
    let store = AuditStore::new(athena::db::pool(&empty, settings()).unwrap());
    assert!(matches!(
        store.begin(&entry("CREATE TABLE t ()")).await,
        Err(DomainError::ServiceUnavailable(_))
    ));
    // A separate logging store gets its tables at start (`open`).
    let store = AuditStore::open(
        &athena::db::pool(&server.catalog_url, settings()).unwrap(),
        Some(&empty),
        settings(),
    )
    .await
    .unwrap();
    let id = store.begin(&entry("CREATE TABLE t ()")).await.unwrap();
    store.finish(id, Ok(())).await;
    let n: i64 = common::psql(&empty)
        .await
        .query_one(
            "SELECT count(*) FROM database_audit_log WHERE status = 'success'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    server.stop().await;
}

/// The server wires the store in: `ATHENA_LOGGING_DATABASE_URL` names it.
#[tokio::test]
async fn server_uses_the_logging_store() {
    let probe = TestServer::start().await;
    let mut probe = probe;
    let logging = probe.extra_db().await;
    let logging_for_config = logging.clone();
    let server =
        TestServer::start_with(move |c| c.logging_database_url = Some(logging_for_config)).await;
    // The separate store has the tables; the catalog has them too (the
    // migration), unused.
    let n: i64 = common::psql(&logging)
        .await
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename IN ('database_audit_log', 'function_ddl_audit_log')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    let _ = ADMIN_KEY;
    server.stop().await;
    probe.stop().await;
}

// ------------------------------------------------------------ discovery routes

#[tokio::test]
async fn tables_and_columns() {
    let server = fixture().await;

    let r = admin_get(&server, "/schema/tables").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body.as_object().unwrap().len(), 1, "no envelope: {body}");
    let tables = body["tables"].as_array().unwrap();
    let find = |schema: &str, name: &str| {
        tables
            .iter()
            .find(|t| t["table_schema"] == schema && t["table_name"] == name)
            .unwrap_or_else(|| panic!("{schema}.{name} missing: {body}"))
    };
    assert_eq!(find("public", "widgets")["table_type"], "BASE TABLE");
    assert_eq!(find("public", "orders")["table_type"], "BASE TABLE");
    assert_eq!(find("public", "widget_names")["table_type"], "VIEW");
    assert_eq!(
        find("public", "widget_count")["table_type"],
        "MATERIALIZED VIEW"
    );
    assert_eq!(find("app", "widgets")["table_type"], "BASE TABLE");
    // System schemas and the gateway's own tables never show.
    for t in tables {
        let schema = t["table_schema"].as_str().unwrap();
        assert!(
            !schema.starts_with("pg_")
                && schema != "information_schema"
                && schema != "athena_gateway",
            "{t}"
        );
        assert!(
            !(schema == "athena" && t["table_name"] == "files"),
            "gateway table shown: {t}"
        );
    }

    // Columns in ordinal order, information_schema spelling.
    let r = admin_get(&server, "/schema/columns?table_name=widgets").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let columns = &r.json()["columns"];
    assert_eq!(
        names(columns, "column_name"),
        ["id", "sku", "price", "tags", "created_at"]
    );
    assert_eq!(
        names(columns, "data_type"),
        [
            "bigint",
            "text",
            "numeric",
            "text[]",
            "timestamp with time zone"
        ]
    );
    assert_eq!(
        names(columns, "is_nullable"),
        ["NO", "NO", "YES", "YES", "NO"]
    );
    assert!(columns[0]["column_default"]
        .as_str()
        .unwrap()
        .starts_with("nextval("));
    assert_eq!(columns[1]["column_default"], Value::Null);
    assert_eq!(columns[4]["column_default"], "now()");

    // `s.t` and `table_schema` pick the other schema's table.
    for path in [
        "/schema/columns?table_name=app.widgets",
        "/schema/columns?table_name=widgets&table_schema=app",
    ] {
        let r = admin_get(&server, path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(
            r.json(),
            json!({"columns": [{"column_name": "x", "data_type": "integer", "column_default": null, "is_nullable": "NO"}]}),
            "{path}"
        );
    }
    // A view has columns too.
    let r = admin_get(&server, "/schema/columns?table_name=widget_names").await;
    assert_eq!(names(&r.json()["columns"], "column_name"), ["sku"]);

    // Unknown table, or one in another schema: 400.
    for path in [
        "/schema/columns?table_name=nope",
        "/schema/columns?table_name=orders&table_schema=app",
        "/schema/columns?table_name=files&table_schema=athena",
    ] {
        let r = admin_get(&server, path).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        r.envelope();
    }
    server.stop().await;
}

#[tokio::test]
async fn constraints_and_the_full_schema() {
    let server = fixture().await;

    let r = admin_get(&server, "/schema/constraints?table_name=orders").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"constraints": [
            {"constraint_name": "orders_pkey", "constraint_type": "PRIMARY KEY", "columns": ["id"]},
            {"constraint_name": "orders_widget_id_qty_key", "constraint_type": "UNIQUE", "columns": ["widget_id", "qty"]},
        ]})
    );
    let r = admin_get(&server, "/schema/constraints?table_name=app.widgets").await;
    assert_eq!(r.json(), json!({"constraints": []}));
    let r = admin_get(&server, "/schema/constraints?table_name=widget_ghost").await;
    assert_eq!(r.status, 400, "{}", r.text());

    // GET /schema: the envelope around everything public holds.
    let r = admin_get(&server, "/schema").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["status"], "success", "{body}");
    let data = &body["data"];
    assert_eq!(data["schema"], "public");
    assert_eq!(
        names(&data["tables"], "table_name"),
        ["orders", "widget_count", "widget_names", "widgets"]
    );
    let widget_columns: Vec<&str> = data["columns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["table_name"] == "widgets")
        .map(|c| c["column_name"].as_str().unwrap())
        .collect();
    assert_eq!(widget_columns, ["id", "sku", "price", "tags", "created_at"]);
    let constraint = |name: &str| {
        data["constraints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["constraint_name"] == name)
            .unwrap_or_else(|| panic!("{name}: {data}"))
            .clone()
    };
    assert_eq!(
        constraint("orders_widget_id_fkey")["constraint_type"],
        "FOREIGN KEY"
    );
    assert_eq!(constraint("orders_qty_check")["constraint_type"], "CHECK");
    assert_eq!(constraint("widgets_sku_key")["columns"], json!(["sku"]));
    let index = |name: &str| {
        data["indexes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["index_name"] == name)
            .unwrap_or_else(|| panic!("{name}: {data}"))
            .clone()
    };
    assert_eq!(index("orders_qty_idx")["method"], "btree");
    assert_eq!(index("orders_qty_idx")["columns"], json!(["qty"]));
    assert_eq!(index("widgets_tags_gin")["method"], "gin");
    assert_eq!(index("widgets_pkey")["is_primary"], true);
    assert_eq!(index("widgets_sku_key")["is_unique"], true);
    assert_eq!(
        data["views"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (
                v["view_name"].as_str().unwrap(),
                v["materialized"].as_bool().unwrap()
            ))
            .collect::<Vec<_>>(),
        [("widget_count", true), ("widget_names", false)]
    );
    assert_eq!(
        data["functions"],
        json!([{"schema": "public", "name": "widget_total", "arguments": "p_id bigint",
                "returns": "numeric", "language": "sql", "volatility": "stable"}])
    );

    // Another schema; a system or unknown one is 400.
    let r = admin_get(&server, "/schema?schema=app").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        names(&r.json()["data"]["tables"], "table_name"),
        ["widgets"]
    );
    assert_eq!(r.json()["data"]["functions"], json!([]));
    for schema in [
        "pg_catalog",
        "information_schema",
        "athena_gateway",
        "nope",
        "a%22b",
    ] {
        let r = admin_get(&server, &format!("/schema?schema={schema}")).await;
        assert_eq!(r.status, 400, "{schema}: {}", r.text());
        r.envelope();
    }
    server.stop().await;
}

#[tokio::test]
async fn migrations_with_and_without_the_supabase_table() {
    let server = TestServer::start().await;
    let r = admin_get(&server, "/schema/migrations").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["migrations"], json!([]));
    assert!(
        body["message"].as_str().unwrap().contains("does not exist"),
        "{body}"
    );

    server
        .tenant()
        .await
        .batch_execute(
            "CREATE SCHEMA supabase_migrations;
             CREATE TABLE supabase_migrations.schema_migrations (version text PRIMARY KEY, statements text[], name text);
             INSERT INTO supabase_migrations.schema_migrations VALUES
                 ('20240102000000', '{}', 'second'), ('20240101000000', '{}', 'init');",
        )
        .await
        .unwrap();
    let r = admin_get(&server, "/schema/migrations").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"migrations": [
            {"version": "20240101000000", "name": "init"},
            {"version": "20240102000000", "name": "second"},
        ]})
    );
    server.stop().await;
}

/// Every discovery route: no key 401, a key without `schema.read` 403, a
/// key with it (unbound or bound to the client) 200, bound to another
/// client 403; the admin key 200.
#[tokio::test]
async fn rights() {
    let server = fixture().await;
    let with = server.api_key(&["schema.read"], None).await;
    let bound = server.api_key(&["schema.read"], Some(CLIENT)).await;
    let without = server
        .api_key(&["gateway.fetch.execute", "management.read"], None)
        .await;
    // Another client for a key bound elsewhere.
    let r = server
        .send(
            "POST",
            "/admin/clients",
            &[("x-athena-key", ADMIN_KEY)],
            Some(json!({"client_name": "other", "pg_uri": server.tenant_url})),
        )
        .await;
    assert!(r.status == 200 || r.status == 201, "{}", r.text());
    let elsewhere = server.api_key(&["schema.read"], Some("other")).await;
    let paths = [
        "/schema",
        "/schema/tables",
        "/schema/columns?table_name=widgets",
        "/schema/constraints?table_name=widgets",
        "/schema/migrations",
        "/registry/client:tenant",
    ];
    for path in paths {
        let get = |key: Option<String>| {
            let server = &server;
            async move {
                let mut headers = vec![("x-athena-client", CLIENT)];
                if let Some(k) = key.as_deref() {
                    headers.push(("x-api-key", k));
                }
                server.send("GET", path, &headers, None).await
            }
        };
        assert_eq!(get(None).await.status, 401, "{path} without a key");
        assert_eq!(
            get(Some(without.clone())).await.status,
            403,
            "{path} without the right"
        );
        assert_eq!(
            get(Some(elsewhere.clone())).await.status,
            403,
            "{path} bound to another client"
        );
        for key in [&with, &bound] {
            let r = get(Some(key.clone())).await;
            assert_eq!(r.status, 200, "{path} with schema.read: {}", r.text());
        }
        let r = admin_get(&server, path).await;
        assert_eq!(r.status, 200, "{path} with the admin key: {}", r.text());
    }
    // /debug/schema: the admin key only.
    let r = server
        .send("GET", "/debug/schema", &[("x-api-key", &with)], None)
        .await;
    assert!(r.status == 401 || r.status == 403, "{}", r.text());
    server.stop().await;
}

/// Hostile or missing parameters: 400 with the envelope, never a 500.
#[tokio::test]
async fn hostile_parameters_are_400() {
    let server = fixture().await;
    let long = "a".repeat(64);
    let hostile = [
        "a%22b",
        "x%3Bdrop%20table%20widgets",
        "--",
        "na%C3%AFve",
        long.as_str(),
        "a.b.c",
        "pg_catalog.pg_class",
        "information_schema.tables",
        "%00",
        "",
        "1abc",
        "widgets'--",
    ];
    for name in hostile {
        for path in [
            format!("/schema/columns?table_name={name}"),
            format!("/schema/constraints?table_name={name}"),
            format!("/schema/columns?table_name=widgets&table_schema={name}"),
            format!("/schema?schema={name}"),
        ] {
            // An empty table_schema means "not given": the widgets of public.
            if name.is_empty() && path.contains("table_schema") {
                continue;
            }
            let r = admin_get(&server, &path).await;
            assert_eq!(r.status, 400, "{path}: {}", r.text());
            r.envelope();
        }
    }
    // `s.t` together with `table_schema`.
    let r = admin_get(
        &server,
        "/schema/columns?table_name=public.widgets&table_schema=public",
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    // The fixture is unchanged.
    assert_eq!(
        server
            .scalar("SELECT count(*) FROM pg_class WHERE relname = 'widgets'")
            .await,
        2
    );
    // Missing or unknown X-Athena-Client: 400.
    for path in [
        "/schema",
        "/schema/tables",
        "/schema/columns?table_name=widgets",
        "/schema/migrations",
    ] {
        let r = server
            .send("GET", path, &[("x-athena-key", ADMIN_KEY)], None)
            .await;
        assert_eq!(r.status, 400, "{path} without a client: {}", r.text());
        r.envelope();
        let r = server
            .send(
                "GET",
                path,
                &[
                    ("x-athena-key", ADMIN_KEY),
                    ("x-athena-client", "no_such_client"),
                ],
                None,
            )
            .await;
        assert_eq!(r.status, 400, "{path} unknown client: {}", r.text());
        r.envelope();
    }
    server.stop().await;
}

/// One catalog query per route: 500 tables answer at once.
#[tokio::test]
async fn many_tables_one_query() {
    let server = TestServer::start().await;
    server
        .tenant()
        .await
        .batch_execute(
            "DO $$ BEGIN FOR i IN 1..500 LOOP
                 EXECUTE format('CREATE TABLE public.t%s (id bigint PRIMARY KEY, v text UNIQUE, w int)', i);
             END LOOP; END $$;",
        )
        .await
        .unwrap();
    // Warm the pool, then time.
    assert_eq!(admin_get(&server, "/schema/tables").await.status, 200);
    for path in ["/schema/tables", "/schema"] {
        let started = std::time::Instant::now();
        let r = admin_get(&server, path).await;
        let took = started.elapsed();
        assert_eq!(r.status, 200, "{}", r.text());
        let tables = if path == "/schema" {
            r.json()["data"]["tables"].as_array().unwrap().len()
        } else {
            r.json()["tables"].as_array().unwrap().len()
        };
        assert_eq!(tables, 500);
        eprintln!("{path} with 500 tables: {took:?}");
        // Generous for a loaded debug build; a per-table loop is far slower.
        assert!(took < Duration::from_secs(2), "{path} took {took:?}");
    }
    server.stop().await;
}

// ------------------------------------------------------------------ registry

#[tokio::test]
async fn registry_entry_by_id() {
    let server = TestServer::start().await;
    let all = server
        .send("GET", "/registry", &[("x-athena-key", ADMIN_KEY)], None)
        .await
        .json();
    let client = all
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["api_registry_id"] == "client:tenant")
        .unwrap()
        .clone();
    let r = admin_get(&server, "/registry/client:tenant").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!([client]));
    for id in ["client:nobody", "nothing", "public_route:none", "x%22%3B--"] {
        let r = admin_get(&server, &format!("/registry/{id}")).await;
        assert_eq!(r.status, 200, "{id}: {}", r.text());
        assert_eq!(r.json(), json!([]), "{id}");
    }
    // A curated row, then changed: `no-cache` (and any call) sees the change.
    let catalog = common::psql(&server.catalog_url).await;
    catalog
        .execute(
            "INSERT INTO athena_api_registry (api_registry_id, name, base_url) VALUES ('billing', 'Billing', 'https://billing.example')",
            &[],
        )
        .await
        .unwrap();
    let r = admin_get(&server, "/registry/billing").await;
    let entry = &r.json()[0];
    assert_eq!(
        (&entry["kind"], &entry["name"], &entry["base_url"]),
        (
            &json!("api"),
            &json!("Billing"),
            &json!("https://billing.example")
        )
    );
    catalog
        .execute(
            "UPDATE athena_api_registry SET name = 'Billing v2' WHERE api_registry_id = 'billing'",
            &[],
        )
        .await
        .unwrap();
    let r = server
        .send(
            "GET",
            "/registry/billing",
            &[("x-athena-key", ADMIN_KEY), ("cache-control", "no-cache")],
            None,
        )
        .await;
    assert_eq!(r.json()[0]["name"], "Billing v2");
    // A deleted client leaves.
    let r = server
        .send(
            "DELETE",
            "/admin/clients/tenant",
            &[("x-athena-key", ADMIN_KEY)],
            None,
        )
        .await;
    assert!(r.status < 300, "{}", r.text());
    let r = admin_get(&server, "/registry/client:tenant").await;
    assert_eq!(r.json(), json!([]));
    server.stop().await;
}

// ------------------------------------------------------------- /debug/schema

#[tokio::test]
async fn debug_schema_reports_the_logging_store() {
    let server = TestServer::start().await;
    let get = || server.send("GET", "/debug/schema", &[("x-athena-key", ADMIN_KEY)], None);
    let r = get().await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["logging_client"], "catalog");
    assert!(body["generated_at"].is_string());
    let summary = &body["summary"];
    assert_eq!(summary["health"], "healthy", "{body}");
    assert_eq!(summary["health_reasons"], json!([]));
    assert_eq!(
        summary["expected_table_count"],
        summary["found_table_count"]
    );
    for count in [
        "required_missing_table_count",
        "optional_missing_table_count",
        "required_missing_column_count",
        "optional_missing_column_count",
        "relation_type_mismatch_count",
    ] {
        assert_eq!(summary[count], 0, "{count}");
    }
    let expected = body["expected_tables"].as_array().unwrap();
    let audit = expected
        .iter()
        .find(|t| t["table_name"] == "database_audit_log")
        .expect("the audit table is expected");
    for field in [
        "table_schema",
        "expected_relation_type",
        "required",
        "purpose",
        "expected_columns",
        "found",
        "found_relation_type",
        "relation_type_matches",
        "found_columns",
        "missing_columns",
        "unexpected_columns",
    ] {
        assert!(!audit[field].is_null(), "{field}: {audit}");
    }
    assert_eq!(audit["found"], true);
    assert!(!audit["purpose"].as_str().unwrap().is_empty());
    assert!(expected.iter().any(|t| t["table_name"] == "athena_clients"));
    assert!(body["observed_tables"].as_array().unwrap().len() >= expected.len());
    assert_eq!(body["still_needed"]["required_missing_tables"], json!([]));
    assert_eq!(body["missing_required_tables"], json!([]));

    // A missing column and a missing table: unhealthy, each named.
    let catalog = common::psql(&server.catalog_url).await;
    catalog
        .batch_execute(
            "ALTER TABLE function_ddl_audit_log DROP COLUMN previous_definition;
             DROP TABLE athena_api_registry;",
        )
        .await
        .unwrap();
    let body = get().await.json();
    assert_eq!(body["summary"]["health"], "unhealthy", "{body}");
    assert_eq!(
        body["still_needed"]["required_missing_columns"],
        json!(["public.function_ddl_audit_log.previous_definition"])
    );
    assert_eq!(
        body["still_needed"]["required_missing_tables"],
        json!(["public.athena_api_registry"])
    );
    assert_eq!(
        body["missing_required_tables"],
        json!(["public.athena_api_registry"])
    );
    let codes: Vec<&str> = names(&body["summary"]["health_reasons"], "code");
    assert_eq!(
        codes,
        ["required_tables_missing", "required_columns_missing"]
    );

    // Without the admin key: refused.
    let r = server.send("GET", "/debug/schema", &[], None).await;
    assert_eq!(r.status, 401, "{}", r.text());
    server.stop().await;
}

#[tokio::test]
async fn debug_schema_with_an_unreachable_store_is_503() {
    let port = common::free_port();
    let server = TestServer::start_with(move |c| {
        c.logging_database_url = Some(format!("postgres://athena@127.0.0.1:{port}/nowhere"));
        c.pool_acquire_timeout = Duration::from_secs(1);
        c.pool_connect_timeout = Duration::from_secs(1);
    })
    .await;
    let r = server
        .send("GET", "/debug/schema", &[("x-athena-key", ADMIN_KEY)], None)
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    r.envelope();
    server.stop().await;
}

/// `GET /schema` is held briefly per tenant: a repeat is a hit, DDL
/// through `/management/*` drops it (the next one is a miss and shows the
/// table), `Cache-Control: no-cache` reads the catalog now (DDL made
/// outside Athena), and after `REPORT_TTL` it is read again anyway.
#[tokio::test]
async fn the_schema_report_is_held_briefly_and_dropped_by_ddl() {
    let server = fixture().await;
    let tables = |r: &Reply| -> Vec<String> {
        names(&r.json()["data"]["tables"], "table_name")
            .into_iter()
            .map(str::to_string)
            .collect()
    };
    let cache = |r: &Reply| {
        r.headers["x-athena-schema-cache"]
            .to_str()
            .unwrap()
            .to_string()
    };
    let r = admin_get(&server, "/schema").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(cache(&r), "miss");
    let first = tables(&r);
    let r = admin_get(&server, "/schema").await;
    assert_eq!(cache(&r), "hit");
    assert_eq!(tables(&r), first);

    // Outside Athena: `no-cache` sees it at once.
    server
        .tenant()
        .await
        .batch_execute("CREATE TABLE made_in_psql (id int)")
        .await
        .unwrap();
    let r = server
        .send(
            "GET",
            "/schema",
            &[
                ("x-athena-key", ADMIN_KEY),
                ("x-athena-client", CLIENT),
                ("cache-control", "no-cache"),
            ],
            None,
        )
        .await;
    assert_eq!(cache(&r), "miss");
    assert!(tables(&r).contains(&"made_in_psql".to_string()));

    // Through Athena: the DDL drops the held report.
    let key = server
        .api_key(&["management.tables.write"], Some(CLIENT))
        .await;
    let r = server
        .send(
            "POST",
            "/management/tables",
            &[("x-athena-client", CLIENT), ("apikey", &key)],
            Some(json!({"table_name": "made_by_api", "columns": [{"name": "id", "data_type": "bigint"}]})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = admin_get(&server, "/schema").await;
    assert_eq!(cache(&r), "miss");
    assert!(tables(&r).contains(&"made_by_api".to_string()));

    // And past the TTL it is read again.
    tokio::time::sleep(athena::db::schema_cache::REPORT_TTL).await;
    let r = admin_get(&server, "/schema").await;
    assert_eq!(cache(&r), "miss");
    server.stop().await;
}
