//! Raw SQL routes: typed JSON rows, counts, statement batches, read-only
//! counting, schema-local search_path, and a non-superuser role.

use crate::common;

use common::{TestServer, CLIENT};
use serde_json::{json, Value};

async fn fixture(s: &TestServer) {
    s.tenant()
        .await
        .batch_execute(
            "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric, tags jsonb);
             INSERT INTO items VALUES (1, 'a', 1.50, '{\"x\": 1}'), (2, 'b', 2, NULL);
             CREATE SCHEMA app; CREATE TABLE app.items (id int); INSERT INTO app.items VALUES (42);",
        )
        .await
        .unwrap();
}

async fn sql(s: &TestServer, query: &str, extra: Value) -> (u16, Value) {
    let mut body = json!({"query": query, "driver": "postgresql", "db_name": CLIENT});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    let r = s
        .send(
            "POST",
            "/query/sql",
            &[("x-athena-client", CLIENT)],
            Some(body),
        )
        .await;
    (r.status, r.json())
}

#[tokio::test]
async fn raw_sql_returns_typed_rows_and_counts() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let (status, v) = sql(
        &s,
        "SELECT id, name, price, tags FROM items ORDER BY id;",
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "success");
    assert_eq!(
        v["data"],
        json!([{"id": 1, "name": "a", "price": 1.50, "tags": {"x": 1}}, {"id": 2, "name": "b", "price": 2, "tags": null}])
    );
    assert_eq!(v["meta"]["returned_row_count"], 2);

    // The SDK's UUID-style lookup shape.
    let (_, v) = sql(
        &s,
        "SELECT * FROM \"items\" WHERE \"id\"::text = '2';",
        json!({}),
    )
    .await;
    assert_eq!(v["data"][0]["name"], "b");

    let (_, v) = sql(
        &s,
        "INSERT INTO items (id, name) VALUES (3, 'c') RETURNING id",
        json!({}),
    )
    .await;
    assert_eq!(
        (v["data"].clone(), v["meta"]["rows_affected"].clone()),
        (json!([{"id": 3}]), json!(1))
    );
    let (_, v) = sql(&s, "UPDATE items SET name = 'z' WHERE id > 1", json!({})).await;
    assert_eq!(
        (v["data"].clone(), v["meta"]["rows_affected"].clone()),
        (json!([]), json!(2))
    );

    // One statement per request: a batch is refused and nothing of it runs.
    let (status, v) = sql(
        &s,
        "UPDATE items SET name = 'y' WHERE id = 1; SELECT name FROM items WHERE id = 1",
        json!({}),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("one SQL statement"),
        "{v}"
    );
    assert_eq!(
        s.scalar("SELECT count(*) FROM items WHERE name = 'y'")
            .await,
        0
    );

    let (_, v) = sql(&s, "SHOW statement_timeout", json!({})).await;
    assert_eq!(v["data"][0]["statement_timeout"], "5s");

    let (_, v) = sql(&s, "SELECT id FROM items", json!({"schema_name": "app"})).await;
    assert_eq!(
        v["data"],
        json!([{"id": 42}]),
        "schema_name sets a schema-local search_path"
    );
    let (_, v) = sql(&s, "SELECT count(*) AS n FROM items", json!({})).await;
    assert_eq!(
        v["data"][0]["n"], 3,
        "search_path did not leak to the pooled connection"
    );

    for (bad, want) in [
        ("SELEC 1", 400),
        ("SELECT * FROM missing_table", 400),
        ("", 400),
        ("SELECT 1/0", 400),
    ] {
        let (status, v) = sql(&s, bad, json!({})).await;
        assert_eq!(status, want, "{bad}: {v}");
        assert_eq!(v["status"], "error");
    }
    let (status, _) = sql(&s, "SELECT 1", json!({"driver": "d1"})).await;
    assert_eq!(status, 400, "D1 drivers are not available");
    s.stop().await;
}

#[tokio::test]
async fn count_is_read_only() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let h = [("x-athena-client", CLIENT)];
    let body = |extra: Value| {
        let mut b = json!({"driver": "postgresql", "db_name": CLIENT});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().cloned().unwrap());
        Some(b)
    };
    let r = s
        .send(
            "POST",
            "/query/count",
            &h,
            body(json!({"table_name": "items"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["count"], 2);
    let r = s
        .send(
            "POST",
            "/query/count",
            &h,
            body(json!({"query": "SELECT count(*) FROM items WHERE id > 1"})),
        )
        .await;
    assert_eq!(r.json()["data"]["count"], 1);
    let r = s
        .send(
            "POST",
            "/query/count",
            &h,
            body(json!({"table_name": "items", "table_schema": "app"})),
        )
        .await;
    assert_eq!(r.json()["data"]["count"], 1);

    for (extra, want) in [
        (json!({"query": "DELETE FROM items RETURNING 1"}), 400),
        (
            json!({"query": "WITH d AS (DELETE FROM items RETURNING 1) SELECT count(*) FROM d"}),
            400,
        ),
        (json!({"query": "SELECT id FROM items"}), 400),
        (json!({"table_name": "missing"}), 404),
        (json!({"query": "SELECT 1", "table_name": "items"}), 400),
        (json!({}), 400),
    ] {
        let r = s
            .send("POST", "/query/count", &h, body(extra.clone()))
            .await;
        assert_eq!(r.status, want, "{extra}: {}", r.text());
        r.envelope();
    }
    let remaining = s.scalar("SELECT count(*) FROM items").await;
    assert_eq!(remaining, 2, "nothing was deleted");
    s.stop().await;
}

#[tokio::test]
async fn raw_sql_runs_as_the_configured_role() {
    let s = TestServer::start_with(|c| c.raw_sql_role = Some("athena_raw_reader".into())).await;
    fixture(&s).await;
    let db = s.tenant().await;
    db.batch_execute(
        "DO $$ BEGIN CREATE ROLE athena_raw_reader LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         ALTER ROLE athena_raw_reader LOGIN NOSUPERUSER;
         GRANT USAGE ON SCHEMA public TO athena_raw_reader;
         GRANT SELECT (id) ON items TO athena_raw_reader;",
    )
    .await
    .unwrap();
    let (status, v) = sql(&s, "SELECT id FROM items ORDER BY id", json!({})).await;
    assert_eq!(
        (status, v["data"].clone()),
        (200, json!([{"id": 1}, {"id": 2}]))
    );
    let (status, v) = sql(&s, "SELECT name FROM items", json!({})).await;
    assert_eq!(status, 403, "{v}");
    let (status, _) = sql(&s, "DELETE FROM items", json!({})).await;
    assert_eq!(status, 403);
    s.stop().await;
}

/// The attacks that once escaped `SET LOCAL ROLE` and the read-only
/// transaction, and the session state that once survived on the pooled
/// connection: each is refused or reset now.
#[tokio::test]
async fn raw_sql_cannot_exceed_its_login_or_leave_state_behind() {
    // The raw pool is small (2 connections here) and hands out the most
    // recently used connection first, so each request below reuses the
    // session of the one before.
    let s = TestServer::start_with(|c| c.raw_sql_role = Some("athena_raw_boundary".into())).await;
    fixture(&s).await;
    let db = s.tenant().await;
    db.batch_execute(
        "DO $$ BEGIN CREATE ROLE athena_raw_boundary LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         ALTER ROLE athena_raw_boundary LOGIN NOSUPERUSER;
         GRANT USAGE ON SCHEMA public TO athena_raw_boundary;
         GRANT SELECT, UPDATE ON items TO athena_raw_boundary;
         CREATE TABLE secrets (s text); INSERT INTO secrets VALUES ('top');",
    )
    .await
    .unwrap();
    let (status, v) = sql(
        &s,
        "SELECT current_user AS u, session_user AS su",
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["data"],
        json!([{"u": "athena_raw_boundary", "su": "athena_raw_boundary"}])
    );
    for (attack, want) in [
        ("RESET ROLE; SELECT s FROM secrets", 400),
        ("COMMIT; DELETE FROM items", 400),
        ("SELECT s FROM secrets", 403),
        ("SELECT set_config('role', 'postgres', false)", 403),
        (
            "SELECT query_to_xml('SELECT s FROM secrets', true, true, '')",
            403,
        ),
        ("SET ROLE postgres", 403),
        ("SET SESSION AUTHORIZATION postgres", 403),
    ] {
        let (status, v) = sql(&s, attack, json!({})).await;
        assert_eq!(status, want, "{attack}: {v}");
        assert_eq!(v["status"], "error");
    }
    assert_eq!(
        s.scalar("SELECT count(*) FROM items").await,
        2,
        "nothing deleted"
    );

    // Session state never reaches the next request.
    for leave in [
        "SET search_path TO nowhere",
        "SET statement_timeout TO 1",
        "PREPARE leak AS SELECT 1",
        "SELECT pg_advisory_lock(4242)",
        "LISTEN leak",
    ] {
        let (status, v) = sql(&s, leave, json!({})).await;
        assert_eq!(status, 200, "{leave}: {v}");
        let (_, v) = sql(&s, "SHOW search_path", json!({})).await;
        assert_eq!(v["data"][0]["search_path"], "\"$user\", public", "{leave}");
        let (_, v) = sql(&s, "SHOW statement_timeout", json!({})).await;
        assert_eq!(v["data"][0]["statement_timeout"], "5s", "{leave}");
        let (_, v) = sql(
            &s,
            "SELECT (SELECT count(*) FROM pg_prepared_statements WHERE from_sql) AS p, \
                    (SELECT count(*) FROM pg_listening_channels()) AS l",
            json!({}),
        )
        .await;
        assert_eq!(v["data"], json!([{"p": 0, "l": 0}]), "{leave}");
        assert_eq!(
            s.scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242")
                .await,
            0,
            "{leave}"
        );
    }
    // A caller error in raw SQL is the caller's (400), never a 500.
    let (status, v) = sql(&s, "EXECUTE missing_statement", json!({})).await;
    assert_eq!(status, 400, "{v}");
    s.stop().await;
}

#[tokio::test]
async fn raw_sql_results_are_capped() {
    let s = TestServer::start_with(|c| c.max_rows = 5).await;
    fixture(&s).await;
    let (status, v) = sql(&s, "SELECT g FROM generate_series(1, 50) g", json!({})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"].as_array().unwrap().len(), 5);
    assert_eq!(v["meta"]["truncated"], true);
    let (_, v) = sql(
        &s,
        "INSERT INTO items SELECT g, 'n' FROM generate_series(10, 30) g RETURNING id",
        json!({}),
    )
    .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 5, "{v}");
    assert_eq!(v["meta"]["rows_affected"], 21, "the count stays exact");
    assert_eq!(s.scalar("SELECT count(*) FROM items").await, 23);
    s.stop().await;
}
