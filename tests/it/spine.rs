//! The spine end to end against real PostgreSQL (and Redis/S3 when the
//! environment provides them, as `make test` does).

use crate::common;

use common::{TestServer, ADMIN_KEY, CLIENT};
use serde_json::json;

#[tokio::test]
async fn health_reports_each_dependency() {
    let s = TestServer::start().await;
    let r = s.get("/health").await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["dependencies"]["postgres"]["status"], "up", "{v}");
    for dep in ["redis", "s3"] {
        let expected = if std::env::var(if dep == "redis" {
            "REDIS_URL"
        } else {
            "S3_ENDPOINT"
        })
        .is_ok()
        {
            "up"
        } else {
            "not_configured"
        };
        assert_eq!(v["dependencies"][dep]["status"], expected, "{dep}: {v}");
    }
    assert_eq!(v["status"], "ok");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    s.stop().await;
}

#[tokio::test]
async fn health_is_truthful_when_a_dependency_is_down() {
    // A Redis URL where nothing listens.
    let s = TestServer::start_with(|c| c.redis_url = Some("redis://127.0.0.1:1/0".into())).await;
    let v = s.get("/health").await.json();
    assert_eq!(v["dependencies"]["redis"]["status"], "down", "{v}");
    assert_eq!(v["status"], "degraded");
    s.stop().await;
}

#[tokio::test]
async fn envelope_for_errors_before_any_handler() {
    let s = TestServer::start().await;

    let r = s.get("/definitely/not/a/route").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.envelope()["code"], "route_not_found");

    let r = s.send("DELETE", "/ping", &[], None).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.headers["allow"], "GET");
    r.envelope();

    let r = s
        .send_raw(
            "POST",
            "/gateway/fetch",
            &[("x-athena-client", CLIENT)],
            "{not json".into(),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.envelope()["code"], "invalid_json");

    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &[("x-athena-client", CLIENT)],
            Some(json!({"limit": "ten"})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.envelope()["error"].as_str().unwrap().contains("limit"),
        "the error names the field"
    );

    let big = "x".repeat(70 * 1024);
    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &[],
            Some(json!({ "table_name": big })),
        )
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.envelope()["code"], "payload_too_large");

    // A required header missing is a 400 naming it.
    let r = s.get("/rest/v1/items").await;
    assert_eq!(r.status, 400);
    assert!(r.envelope()["error"]
        .as_str()
        .unwrap()
        .contains("X-Athena-Client"));
    s.stop().await;
}

#[tokio::test]
async fn admin_surface_fails_closed() {
    let s = TestServer::start().await;
    let r = s.get("/admin/clients").await;
    assert_eq!(r.status, 401, "no key");
    r.envelope();
    let r = s
        .send("GET", "/admin/clients", &[("x-athena-key", "wrong")], None)
        .await;
    assert_eq!(r.status, 401, "wrong key");
    for header in ["x-athena-key", "apikey", "x-api-key"] {
        let r = s
            .send("GET", "/admin/clients", &[(header, ADMIN_KEY)], None)
            .await;
        assert_eq!(r.status, 200, "{header}");
    }
    let bearer = format!("Bearer {ADMIN_KEY}");
    let r = s
        .send("GET", "/admin/clients", &[("authorization", &bearer)], None)
        .await;
    assert_eq!(r.status, 200);
    // The static admin key is never taken from the query string.
    let r = s.get(&format!("/admin/clients?api_key={ADMIN_KEY}")).await;
    assert_eq!(r.status, 401);
    s.stop().await;

    let s = TestServer::start_with(|c| c.admin_key = None).await;
    let r = s
        .send("GET", "/admin/clients", &[("x-athena-key", "")], None)
        .await;
    assert_eq!(r.status, 401, "unset ATHENA_KEY_12 refuses everything");
    s.stop().await;
}

#[tokio::test]
async fn system_routes() {
    let s = TestServer::start().await;
    let r = s.get("/ping").await;
    assert_eq!((r.status, r.text().as_str()), (200, "pong"));

    let r = s.get("/").await;
    let v = r.json();
    assert_eq!(v["message"], "athena is online");
    assert!(v["routes"].as_array().unwrap().len() > 200);

    let r = s.get("/openapi.yaml").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "application/yaml");
    assert_eq!(r.text(), include_str!("../../openapi/openapi.yaml"));

    let r = s.get("/openapi-wss.yaml").await;
    let doc: serde_yaml::Value = serde_yaml::from_slice(&r.body).unwrap();
    assert!(doc["paths"]
        .as_mapping()
        .unwrap()
        .keys()
        .all(|k| k.as_str().unwrap().starts_with("/wss")));

    let r = s.get("/docs").await;
    assert_eq!(r.status, 308);
    let location = r.headers["location"].to_str().unwrap();
    assert_eq!(location, format!("http://{}/docs/index.html", s.addr));
    let page = s.get("/docs/index.html").await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("post_gateway_fetch") && !page.text().contains("https://cdn"));

    let r = s.get("/router/registry").await;
    assert_eq!(r.json().as_array().unwrap().len(), 290);
    // `family` there is the area, unchanged by the split of the handler
    // families (`openapi/families.yaml`).
    let families: std::collections::BTreeMap<String, String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let field = |k: &str| e[k].as_str().unwrap().to_string();
            (field("operation"), field("family"))
        })
        .collect();
    for (operation, area) in [
        ("post_admin_api_keys", "admin"),
        ("get_admin_backups", "admin"),
        ("get_storage_files_by_file_id", "storage"),
        ("post_gateway_fetch", "gateway"),
        ("get_ping", "health"),
    ] {
        assert_eq!(families[operation], area, "{operation}");
    }

    // The API registry names tenants: admin surface (tests/it/registry.rs).
    let r = s.get("/registry").await;
    assert_eq!(r.status, 401);

    let r = s
        .send("GET", "/ping", &[("x-request-id", "abc-123")], None)
        .await;
    assert_eq!(r.headers["x-request-id"], "abc-123");
    let r = s.get("/ping").await;
    assert_eq!(r.headers["x-request-id"].len(), 36, "a UUID is generated");

    // The SDK's unified base URL puts database routes under /db.
    let r = s.get("/db/health").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ok");
    assert_eq!(s.get("/db/ping").await.text(), "pong");

    let metrics = s.get("/metrics").await.text();
    assert!(
        metrics.contains("route=\"/ping\",operation=\"get_ping\""),
        "{metrics}"
    );
    assert!(
        !metrics.contains("/definitely"),
        "raw paths never become labels"
    );
    s.stop().await;
}

async fn items_fixture(s: &TestServer) {
    let db = s.tenant().await;
    db.batch_execute(
        "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, score int, note text);
         INSERT INTO items (name, score, note) VALUES ('alpha', 10, NULL), ('beta', 20, 'b'), ('gamma', 30, 'g');
         CREATE SCHEMA app;
         CREATE TABLE app.\"we\"\"ird; table\" (\"select\" int, \"naïve col\" text);
         INSERT INTO app.\"we\"\"ird; table\" VALUES (1, 'one'), (2, 'two');",
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn gateway_fetch_reads_rows_from_the_tenant() {
    let s = TestServer::start().await;
    items_fixture(&s).await;
    let h = [("x-athena-client", CLIENT)];

    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &h,
            Some(json!({
                "table_name": "items", "columns": ["id", "name"],
                "conditions": [{"eq_column": "name", "eq_value": "beta"}]
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"], json!([{"id": 2, "name": "beta"}]));
    assert_eq!(v["message"], "Fetched 1 rows");

    // Numeric column compared through the column's own type; limit/offset.
    let r = s.send("POST", "/gateway/fetch", &h, Some(json!({
        "table_name": "public.items", "columns": "*", "conditions": [{"eq_column": "score", "eq_value": "30"}]
    }))).await;
    assert_eq!(r.json()["data"][0]["name"], "gamma");
    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &h,
            Some(json!({"table_name": "items", "limit": 1, "offset": 1})),
        )
        .await;
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 1);

    // Empty result still has `data: []`; X-Strip-Nulls drops null fields.
    let r = s.send("POST", "/gateway/fetch", &h, Some(json!({"table_name": "items", "conditions": [{"eq_column": "name", "eq_value": "zeta"}]}))).await;
    assert_eq!(r.json()["data"], json!([]));
    let strip = [("x-athena-client", CLIENT), ("x-strip-nulls", "true")];
    let r = s.send("POST", "/gateway/fetch", &strip, Some(json!({"table_name": "items", "conditions": [{"eq_column": "name", "eq_value": "alpha"}]}))).await;
    assert!(r.json()["data"][0].get("note").is_none());

    // Schema-qualified, with hostile-but-real identifiers, via schema_name.
    let r = s.send("POST", "/gateway/fetch", &h, Some(json!({
        "schema_name": "app", "table_name": "we\"ird; table", "columns": ["select", "naïve col"],
        "conditions": [{"eq_column": "select", "eq_value": "2"}]
    }))).await;
    assert_eq!(
        r.json()["data"],
        json!([{"select": 2, "naïve col": "two"}]),
        "{}",
        r.text()
    );
    s.stop().await;
}

#[tokio::test]
async fn gateway_fetch_errors() {
    let s = TestServer::start().await;
    items_fixture(&s).await;
    let body = json!({"table_name": "items"});

    let r = s
        .send("POST", "/gateway/fetch", &[], Some(body.clone()))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.envelope()["code"], "missing_client_header");

    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &[("x-athena-client", "nobody")],
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.envelope()["code"], "client_not_found");

    let h = [("x-athena-client", CLIENT)];
    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &h,
            Some(json!({"table_name": "missing"})),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.envelope()["code"], "table_not_found");
    s.stop().await;
}

/// Hostile identifiers and values are refused or bound, never executed.
#[tokio::test]
async fn hostile_identifiers_and_values_are_never_executed() {
    let s = TestServer::start().await;
    items_fixture(&s).await;
    let h = [("x-athena-client", CLIENT)];
    let hostile_tables = [
        "items; DROP TABLE items",
        "items\" ; DROP TABLE items; --",
        "pg_catalog.pg_authid",
        &"i".repeat(64),
    ];
    for t in hostile_tables {
        let r = s
            .send("POST", "/gateway/fetch", &h, Some(json!({"table_name": t})))
            .await;
        assert!(matches!(r.status, 400 | 404), "{t}: {}", r.status);
        r.envelope();
    }
    let hostile_columns = [
        "id; DROP TABLE items",
        "id\" FROM items; DROP TABLE items; --",
        "*, pg_sleep(5)",
    ];
    for c in hostile_columns {
        let r = s
            .send(
                "POST",
                "/gateway/fetch",
                &h,
                Some(json!({"table_name": "items", "columns": [c]})),
            )
            .await;
        assert_eq!(r.status, 400, "{c}");
        assert_eq!(r.envelope()["code"], "column_not_found");
    }
    let hostile_values = ["1; DROP TABLE items", "' OR '1'='1", "beta' --"];
    for v in hostile_values {
        let r = s.send("POST", "/gateway/fetch", &h, Some(json!({"table_name": "items", "conditions": [{"eq_column": "name", "eq_value": v}]}))).await;
        assert_eq!(r.status, 200, "{v}");
        assert_eq!(r.json()["data"], json!([]), "{v} matched nothing");
    }
    let r = s
        .get("/rest/v1/items?name=eq.x%27%3B%20DROP%20TABLE%20items%3B--")
        .await;
    assert_eq!(r.status, 400, "no client header");
    let count = s.scalar("SELECT count(*) FROM items").await;
    assert_eq!(count, 3, "the table is intact");
    s.stop().await;
}

#[tokio::test]
async fn rest_reads_with_postgrest_and_contract_filters() {
    let s = TestServer::start().await;
    items_fixture(&s).await;
    let h = [("x-athena-client", CLIENT)];

    let r = s.send("GET", "/rest/v1/items?id=eq.2", &h, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"][0]["name"], "beta");
    assert_eq!(r.headers["content-range"], "0-0/*");

    let r = s
        .send(
            "GET",
            "/rest/v1/items?score.gte=20&order=score.desc&select=name",
            &h,
            None,
        )
        .await;
    assert_eq!(
        r.json()["data"],
        json!([{"name": "gamma"}, {"name": "beta"}])
    );

    let r = s
        .send(
            "GET",
            "/rest/v1/items?name=in.(alpha,gamma)&order=id",
            &h,
            None,
        )
        .await;
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 2);

    let r = s.send("GET", "/rest/v1/items?note=is.null", &h, None).await;
    assert_eq!(r.json()["data"][0]["name"], "alpha");

    let r = s
        .send("GET", "/rest/v1/items?order=id&limit=2&offset=1", &h, None)
        .await;
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 2);

    let range = [("x-athena-client", CLIENT), ("range", "items=0-0")];
    let r = s.send("GET", "/rest/v1/items?order=id", &range, None).await;
    assert_eq!(
        r.json()["data"],
        json!([{"id": 1, "name": "alpha", "score": 10, "note": null}])
    );

    let r = s
        .send("GET", "/rest/v1/items?name=like.*amm*", &h, None)
        .await;
    assert_eq!(r.json()["data"][0]["name"], "gamma");

    let r = s.send("GET", "/rest/v1/items?bogus=eq.1", &h, None).await;
    assert_eq!(r.status, 400);
    r.envelope();
    let r = s.send("GET", "/rest/v1/items?id=drop.1", &h, None).await;
    assert_eq!(r.status, 400);
    let r = s.send("GET", "/rest/v1/items?limit=abc", &h, None).await;
    assert_eq!(r.status, 400);
    s.stop().await;
}

/// The harness's `send_from` reaches the server from another loopback
/// address (the IP-policy tests rely on it).
#[tokio::test]
async fn requests_from_other_loopback_addresses_arrive() {
    let server = TestServer::start().await;
    let r = server
        .send_from("127.0.0.7".parse().unwrap(), "GET", "/ping", &[], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let replica = server.replica_with(|_| {}).await;
    assert_eq!(replica.get("/ping").await.status, 200);
    replica.stop().await;
    server.stop().await;
}
