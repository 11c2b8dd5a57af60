//! RPC through `/gateway/rpc` and `/rpc/{fn}` (GET and POST), and the raw
//! SQL aliases under `/gateway`.

use crate::common;

use common::{TestServer, CLIENT};
use serde_json::{json, Value};

async fn fixture(s: &TestServer) {
    s.tenant()
        .await
        .batch_execute(
            "CREATE TABLE items (id int PRIMARY KEY, name text, score int);
             INSERT INTO items VALUES (1, 'a', 10), (2, 'b', 20), (3, 'c', 30);
             CREATE FUNCTION items_above(min_score int) RETURNS SETOF items LANGUAGE sql STABLE
               AS $$ SELECT * FROM items WHERE score > min_score ORDER BY id $$;
             CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT a + b $$;
             CREATE SCHEMA app;
             CREATE FUNCTION app.greet(who text) RETURNS TABLE (greeting text) LANGUAGE sql
               AS $$ SELECT 'hello ' || who $$;
             CREATE TABLE calls (n int);
             CREATE FUNCTION bump() RETURNS int LANGUAGE sql AS $$ INSERT INTO calls VALUES (1) RETURNING n $$;",
        )
        .await
        .unwrap();
    // RPC reaches only the schemas a client exposes: these tests call `app`
    // too (set before the client's first request reads its record).
    common::psql(&s.catalog_url)
        .await
        .execute(
            "UPDATE athena_clients SET metadata = metadata || '{\"rpc_schemas\": [\"public\", \"app\"]}'::jsonb \
             WHERE client_name = $1",
            &[&CLIENT],
        )
        .await
        .unwrap();
}

const H: [(&str, &str); 1] = [("x-athena-client", CLIENT)];

async fn gateway_rpc(s: &TestServer, body: Value) -> (u16, Value) {
    let r = s.send("POST", "/gateway/rpc", &H, Some(body)).await;
    (r.status, r.json())
}

#[tokio::test]
async fn gateway_rpc_shapes_function_results() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let (status, v) = gateway_rpc(
        &s,
        json!({"function": "items_above", "args": {"min_score": 15}}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["data"],
        json!([{"id": 2, "name": "b", "score": 20}, {"id": 3, "name": "c", "score": 30}])
    );
    assert!(
        v.get("status").is_none(),
        "RPC answers {{data, count}} without the envelope"
    );

    let (_, v) = gateway_rpc(
        &s,
        json!({
            "function": "items_above", "args": {"min_score": 0}, "select": "name",
            "filters": [{"column": "score", "operator": "gte", "value": 20}],
            "order": {"column": "id", "ascending": false}, "limit": 1, "count": "exact"
        }),
    )
    .await;
    assert_eq!(v["data"], json!([{"name": "c"}]));
    assert_eq!(v["count"], 2, "count ignores the page");

    let (_, v) = gateway_rpc(&s, json!({"function": "add", "args": {"a": 2, "b": 3}})).await;
    assert_eq!(v["data"], json!([{"add": 5}]));
    let (_, v) = gateway_rpc(&s, json!({"function": "app.greet", "args": {"who": "x"}})).await;
    assert_eq!(v["data"], json!([{"greeting": "hello x"}]));
    let (_, v) = gateway_rpc(
        &s,
        json!({"function": "greet", "schema": "app", "args": {"who": "y"}}),
    )
    .await;
    assert_eq!(v["data"][0]["greeting"], "hello y");

    // A volatile function runs once even with a count.
    let (_, v) = gateway_rpc(&s, json!({"function": "bump", "count": "exact"})).await;
    assert_eq!(v["count"], 1);
    let calls = s.scalar("SELECT count(*) FROM calls").await;
    assert_eq!(calls, 1);

    for (body, want) in [
        (json!({"function": "nope"}), 404),
        (json!({"function": "add", "args": {"zzz": 1}}), 400),
        (
            json!({"function": "add", "args": {"a": "not a number", "b": 1}}),
            400,
        ),
        (
            json!({"function": "items_above; DROP TABLE items", "args": {}}),
            404,
        ),
        (
            json!({"function": "items_above", "args": {"min_score": 1}, "filters": [{"column": "nope", "operator": "eq", "value": 1}]}),
            400,
        ),
        (
            json!({"function": "items_above", "args": {"min_score": 1}, "select": "id; drop table items"}),
            400,
        ),
        (json!({"args": {}}), 400),
    ] {
        let (status, v) = gateway_rpc(&s, body.clone()).await;
        assert_eq!(status, want, "{body}: {v}");
        assert_eq!(v["status"], "error");
    }
    let count = s.scalar("SELECT count(*) FROM items").await;
    assert_eq!(count, 3);
    s.stop().await;
}

#[tokio::test]
async fn rpc_routes_take_args_and_filters() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let r = s
        .send(
            "GET",
            "/rpc/items_above?min_score=15&name=eq.c&select=id",
            &H,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"], json!([{"id": 3}]));
    let r = s
        .send(
            "GET",
            "/rpc/items_above?min_score=0&order=id.desc&limit=2&count=exact",
            &H,
            None,
        )
        .await;
    let v = r.json();
    assert_eq!(
        (v["data"][0]["id"].clone(), v["count"].clone()),
        (json!(3), json!(3))
    );
    let r = s.send("GET", "/rpc/app.greet?who=z", &H, None).await;
    assert_eq!(r.json()["data"][0]["greeting"], "hello z");

    // POST: bare argument object, or the wrapper.
    let r = s
        .send("POST", "/rpc/add", &H, Some(json!({"a": 1, "b": 1})))
        .await;
    assert_eq!(r.json()["data"], json!([{"add": 2}]));
    let r = s
        .send(
            "POST",
            "/rpc/items_above",
            &H,
            Some(json!({"args": {"min_score": 25}, "select": "name"})),
        )
        .await;
    assert_eq!(r.json()["data"], json!([{"name": "c"}]));

    let r = s.send("GET", "/rpc/items_above?limit=x", &H, None).await;
    assert_eq!(r.status, 400);
    let r = s
        .send("GET", "/rpc/items_above?min_score=1", &[], None)
        .await;
    assert_eq!(r.status, 400, "X-Athena-Client is required");
    s.stop().await;
}

#[tokio::test]
async fn gateway_query_and_sql_aliases() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let r = s
        .send(
            "POST",
            "/gateway/query",
            &H,
            Some(json!({"query": "SELECT id FROM items WHERE id = 2"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        (v["data"].clone(), v["message"].clone()),
        (json!([{"id": 2}]), json!("Query executed"))
    );
    let r = s
        .send(
            "POST",
            "/gateway/sql",
            &H,
            Some(json!({"query": "SELECT 1 AS one", "driver": "postgresql", "db_name": CLIENT})),
        )
        .await;
    assert_eq!(r.json()["data"], json!([{"one": 1}]));
    let r = s
        .send(
            "POST",
            "/gateway/query",
            &[],
            Some(json!({"query": "SELECT 1"})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.envelope()["code"], "missing_client_header");
    let r = s
        .send(
            "POST",
            "/gateway/query",
            &[
                ("x-athena-client", CLIENT),
                ("x-pg-uri", "postgres://u@127.0.0.1:1/d"),
            ],
            Some(json!({"query": "SELECT 1"})),
        )
        .await;
    assert_eq!(
        r.status, 401,
        "a direct URI without a password gets no bypass"
    );
    s.stop().await;
}

/// Signatures and result descriptions are cached per tenant database; a
/// function dropped and recreated between two calls must still be called
/// as it is now, whatever changed.
#[tokio::test]
async fn recreated_functions_are_called_as_they_are_now() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let db = s.tenant().await;
    let call = |body: Value| gateway_rpc(&s, body);

    // Different arguments and result columns.
    let (status, v) = call(json!({"function": "items_above", "args": {"min_score": 25}})).await;
    assert_eq!(
        (status, v["data"].clone()),
        (200, json!([{"id": 3, "name": "c", "score": 30}]))
    );
    db.batch_execute(
        "DROP FUNCTION items_above(int);
         CREATE FUNCTION items_above(label text) RETURNS TABLE (tag text) LANGUAGE sql STABLE
           AS $$ SELECT label || '!' $$;",
    )
    .await
    .unwrap();
    let (status, v) = call(json!({"function": "items_above", "args": {"label": "x"}})).await;
    assert_eq!(
        (status, v["data"].clone()),
        (200, json!([{"tag": "x!"}])),
        "{v}"
    );
    let (status, _) = call(json!({"function": "items_above", "args": {"min_score": 25}})).await;
    assert_eq!(status, 400, "the old argument is gone");

    // Same arguments, other result columns: select, filters and order
    // resolve against the new ones.
    let (_, v) =
        call(json!({"function": "app.greet", "args": {"who": "a"}, "select": "greeting"})).await;
    assert_eq!(v["data"], json!([{"greeting": "hello a"}]));
    db.batch_execute(
        "DROP FUNCTION app.greet(text);
         CREATE FUNCTION app.greet(who text) RETURNS TABLE (word text, n int) LANGUAGE sql
           AS $$ SELECT 'hi ' || who, 1 $$;",
    )
    .await
    .unwrap();
    let (status, v) = call(json!({
        "function": "app.greet", "args": {"who": "b"}, "select": "word",
        "filters": [{"column": "n", "operator": "eq", "value": 1}],
        "order": {"column": "n", "ascending": true}
    }))
    .await;
    assert_eq!(
        (status, v["data"].clone()),
        (200, json!([{"word": "hi b"}])),
        "{v}"
    );
    let (status, v) = call(json!({"function": "app.greet", "args": {"who": "c"}})).await;
    assert_eq!(
        (status, v["data"].clone()),
        (200, json!([{"n": 1, "word": "hi c"}]))
    );

    // Same signature, other argument type; then dropped; then created again.
    let (_, v) = call(json!({"function": "add", "args": {"a": 2, "b": 3}})).await;
    assert_eq!(v["data"], json!([{"add": 5}]));
    db.batch_execute(
        "DROP FUNCTION add(int, int);
         CREATE FUNCTION add(a text, b text) RETURNS text LANGUAGE sql AS $$ SELECT a || b $$;",
    )
    .await
    .unwrap();
    let (_, v) = call(json!({"function": "add", "args": {"a": 2, "b": 3}})).await;
    assert_eq!(v["data"], json!([{"add": "23"}]));
    db.batch_execute("DROP FUNCTION add(text, text)")
        .await
        .unwrap();
    let (status, _) = call(json!({"function": "add", "args": {"a": 2, "b": 3}})).await;
    assert_eq!(status, 404);
    db.batch_execute(
        "CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql AS $$ SELECT a * b $$",
    )
    .await
    .unwrap();
    let r = s.send("GET", "/rpc/add?a=2&b=3", &H, None).await;
    assert_eq!(
        (r.status, r.json()["data"].clone()),
        (200, json!([{"add": 6}]))
    );
    s.stop().await;
}
