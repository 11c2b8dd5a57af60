//! Public routes: admin CRUD, forwarding to the gateway operations a route
//! allows, the route's client never shown, and API keys checked for the
//! forwarded operation's right against the route's client.

use crate::common;

use common::{TestServer, ADMIN_KEY};
use serde_json::{json, Value};

const ADMIN: (&str, &str) = ("x-athena-key", ADMIN_KEY);
/// A client name that must never appear in a public response.
const HIDDEN: &str = "hidden_backend_7f3a";

/// The JSON body of a success, when the server sends one. The contract
/// declares these 2xx without content; until the generated response types
/// carry JSON for them (see openapi/CHANGES.md, "Public routes") the body
/// is empty and only the effects can be checked.
fn body(r: &common::Reply) -> Option<Value> {
    (!r.body.is_empty()).then(|| r.json())
}

async fn setup() -> TestServer {
    let s = TestServer::start().await;
    s.tenant()
        .await
        .batch_execute(
            "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL UNIQUE, qty int);
             INSERT INTO items (name, qty) VALUES ('a', 1), ('b', 2)",
        )
        .await
        .unwrap();
    let r = s
        .send(
            "POST",
            "/admin/clients",
            &[ADMIN],
            Some(json!({"client_name": HIDDEN, "pg_uri": s.tenant_url})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    s
}

async fn create_route(s: &TestServer, key: &str, ops: &[&str]) -> common::Reply {
    s.send(
        "POST",
        "/admin/public-routes",
        &[ADMIN],
        Some(json!({"route_key": key, "client_name": HIDDEN, "allowed_ops": ops})),
    )
    .await
}

async fn public(s: &TestServer, key: &str, op: &str, body: Value) -> common::Reply {
    public_with(s, key, op, &[], body).await
}

async fn public_with(
    s: &TestServer,
    key: &str,
    op: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> common::Reply {
    let r = s
        .send("POST", &format!("/public/{key}/{op}"), headers, Some(body))
        .await;
    assert!(
        !r.text().contains(HIDDEN),
        "public response names the client: {}",
        r.text()
    );
    r
}

/// Rows of `items` read directly through the canonical route.
async fn names(s: &TestServer) -> Vec<String> {
    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &[("x-athena-client", HIDDEN), ADMIN],
            Some(json!({"table_name": "items", "sort_by": "id"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn admin_operations_need_the_admin_key() {
    let s = setup().await;
    for (method, path, body) in [
        ("GET", "/admin/public-routes", None),
        (
            "POST",
            "/admin/public-routes",
            Some(json!({"route_key": "r", "client_name": HIDDEN, "allowed_ops": ["fetch"]})),
        ),
        ("PATCH", "/admin/public-routes/r", Some(json!({}))),
        ("DELETE", "/admin/public-routes/r", None),
    ] {
        let r = s.send(method, path, &[], body.clone()).await;
        assert_eq!(r.status, 401, "{method} {path}: {}", r.text());
        r.envelope();
        let r = s
            .send(method, path, &[("x-athena-key", "wrong")], body)
            .await;
        assert_eq!(r.status, 401, "{method} {path}: {}", r.text());
    }
    s.stop().await;
}

#[tokio::test]
async fn admin_crud() {
    let s = setup().await;
    let r = create_route(&s, "shop", &["fetch", "insert", "fetch"]).await;
    assert_eq!(r.status, 201, "{}", r.text());
    if let Some(v) = body(&r) {
        assert_eq!(v["route"]["route_key"], "shop");
        assert_eq!(v["route"]["client_name"], HIDDEN);
        assert_eq!(v["route"]["allowed_ops"], json!(["fetch", "insert"]));
        assert_eq!(v["route"]["is_active"], true);
    }
    // Duplicate key, bad key, bad op, empty ops, unknown client.
    assert_eq!(create_route(&s, "shop", &["fetch"]).await.status, 409);
    for (key, ops, client) in [
        ("Shop", vec!["fetch"], HIDDEN),
        ("-x", vec!["fetch"], HIDDEN),
        ("ok", vec!["drop"], HIDDEN),
        ("ok", vec![], HIDDEN),
        ("ok", vec!["fetch"], "no_such_client"),
        ("ok", vec!["fetch"], "bad name"),
    ] {
        let r = s
            .send(
                "POST",
                "/admin/public-routes",
                &[ADMIN],
                Some(json!({"route_key": key, "client_name": client, "allowed_ops": ops})),
            )
            .await;
        assert_eq!(r.status, 400, "{key} {ops:?} {client}: {}", r.text());
        r.envelope();
    }
    let r = s
        .send(
            "POST",
            "/admin/public-routes",
            &[ADMIN],
            Some(json!({"route_key": "x"})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());

    let r = s.send("GET", "/admin/public-routes", &[ADMIN], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    if let Some(v) = body(&r) {
        let routes = v["routes"].as_array().unwrap();
        assert_eq!(routes.len(), 1, "{v}");
        assert_eq!(routes[0]["route_key"], "shop");
    }
    assert_eq!(
        public(&s, "shop", "fetch", json!({"table_name": "items"}))
            .await
            .status,
        200
    );

    // PATCH: narrow the ops, then deactivate; each takes effect at once.
    let r = s
        .send(
            "PATCH",
            "/admin/public-routes/shop",
            &[ADMIN],
            Some(json!({"allowed_ops": ["insert"]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    if let Some(v) = body(&r) {
        assert_eq!(v["route"]["allowed_ops"], json!(["insert"]));
    }
    assert_eq!(
        public(&s, "shop", "fetch", json!({"table_name": "items"}))
            .await
            .status,
        403
    );
    let r = s
        .send(
            "PATCH",
            "/admin/public-routes/shop",
            &[ADMIN],
            Some(json!({"is_active": false, "route_key": "shop"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = public(
        &s,
        "shop",
        "insert",
        json!({"table_name": "items", "insert_body": {"name": "z"}}),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.envelope()["error"].as_str().unwrap().contains("inactive"));
    let r = s
        .send(
            "PATCH",
            "/admin/public-routes/shop",
            &[ADMIN],
            Some(json!({"is_active": true, "allowed_ops": ["fetch"]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        public(&s, "shop", "fetch", json!({"table_name": "items"}))
            .await
            .status,
        200
    );

    // PATCH errors: unknown route, renames, unknown fields, bad values.
    for (path, patch, status) in [
        (
            "/admin/public-routes/nope",
            json!({"is_active": false}),
            404,
        ),
        (
            "/admin/public-routes/shop",
            json!({"route_key": "other"}),
            400,
        ),
        ("/admin/public-routes/shop", json!({"colour": "red"}), 400),
        (
            "/admin/public-routes/shop",
            json!({"is_active": "yes"}),
            400,
        ),
        (
            "/admin/public-routes/shop",
            json!({"allowed_ops": ["drop"]}),
            400,
        ),
        (
            "/admin/public-routes/shop",
            json!({"client_name": "no_such_client"}),
            400,
        ),
    ] {
        let r = s.send("PATCH", path, &[ADMIN], Some(patch.clone())).await;
        assert_eq!(r.status, status, "{path} {patch}: {}", r.text());
        r.envelope();
    }

    // DELETE: gone at once, then 404.
    let r = s
        .send("DELETE", "/admin/public-routes/shop", &[ADMIN], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    if let Some(v) = body(&r) {
        assert_eq!(v["route"]["route_key"], "shop");
    }
    assert_eq!(
        public(&s, "shop", "fetch", json!({"table_name": "items"}))
            .await
            .status,
        404
    );
    let r = s
        .send("DELETE", "/admin/public-routes/shop", &[ADMIN], None)
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    r.envelope();
    s.stop().await;
}

#[tokio::test]
async fn forwards_to_the_gateway_operations() {
    let s = setup().await;
    let ops = ["fetch", "insert", "update", "delete"];
    assert_eq!(create_route(&s, "shop", &ops).await.status, 201);

    let r = public(
        &s,
        "shop",
        "fetch",
        json!({"table_name": "items", "conditions": [{"eq_column": "name", "eq_value": "b"}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    if let Some(v) = body(&r) {
        assert_eq!(v["data"][0]["qty"], 2, "{v}");
        assert_eq!(v["data"].as_array().unwrap().len(), 1, "{v}");
    }

    let r = public(
        &s,
        "shop",
        "insert",
        json!({"table_name": "items", "insert_body": {"name": "c", "qty": 3}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    if let Some(v) = body(&r) {
        assert_eq!(v["data"]["name"], "c", "{v}");
    }
    assert_eq!(names(&s).await, ["a", "b", "c"]);

    let r = public(
        &s,
        "shop",
        "update",
        json!({"table_name": "items", "conditions": [{"eq_column": "name", "eq_value": "c"}],
               "update_body": {"name": "c2"}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(names(&s).await, ["a", "b", "c2"]);

    let r = public(
        &s,
        "shop",
        "delete",
        json!({"table_name": "items", "conditions": [{"eq_column": "name", "eq_value": "a"}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(names(&s).await, ["b", "c2"]);

    // The SDK's camelCase twin is accepted as on the canonical route.
    let r = public(
        &s,
        "shop",
        "fetch",
        json!({"table_name": "items", "sortBy": "name.desc"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    if let Some(v) = body(&r) {
        assert_eq!(v["data"][0]["name"], "c2", "{v}");
    }
    s.stop().await;
}

#[tokio::test]
async fn errors_never_name_the_client() {
    let s = setup().await;
    assert_eq!(create_route(&s, "shop", &["fetch"]).await.status, 201);
    let fetch = json!({"table_name": "items"});
    for (key, op, body, status) in [
        ("nope", "fetch", fetch.clone(), 404),
        ("Bad.Key", "fetch", fetch.clone(), 404),
        (
            "shop",
            "insert",
            json!({"table_name": "items", "insert_body": {"name": "x"}}),
            403,
        ),
        ("shop", "query", json!({"query": "select 1"}), 403),
        ("shop", "drop", fetch.clone(), 400),
        ("shop", "fetch", json!({"table_name": 5}), 400),
        ("shop", "fetch", json!({"conditions": "nope"}), 400),
        ("shop", "fetch", json!(["not", "an", "object"]), 400),
        ("shop", "fetch", json!({"table_name": "no_such_table"}), 404),
    ] {
        let r = public(&s, key, op, body.clone()).await;
        assert_eq!(r.status, status, "{key}/{op} {body}: {}", r.text());
        r.envelope();
    }
    // A frozen or deleted client stops the route without being named.
    let freeze_path = format!("/admin/clients/{HIDDEN}/freeze");
    let freeze = |on: bool| {
        s.send(
            "PUT",
            &freeze_path,
            &[ADMIN],
            Some(json!({"is_frozen": on})),
        )
    };
    assert_eq!(freeze(true).await.status, 200);
    let r = public(&s, "shop", "fetch", fetch.clone()).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(freeze(false).await.status, 200);
    assert_eq!(public(&s, "shop", "fetch", fetch.clone()).await.status, 200);
    let r = s
        .send(
            "DELETE",
            &format!("/admin/clients/{HIDDEN}"),
            &[ADMIN],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = public(&s, "shop", "fetch", fetch).await;
    assert_eq!(r.status, 404, "{}", r.text());
    r.envelope();
    s.stop().await;
}

async fn create_key(s: &TestServer, body: Value) -> String {
    let r = s
        .send("POST", "/admin/api-keys", &[ADMIN], Some(body))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["api_key"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn keys_are_checked_for_the_forwarded_right_and_the_routes_client() {
    let s = setup().await;
    assert_eq!(
        create_route(&s, "shop", &["fetch", "insert"]).await.status,
        201
    );
    let fetch = json!({"table_name": "items"});
    let insert = |name: &str| json!({"table_name": "items", "insert_body": {"name": name}});
    let upsert = json!({"table_name": "items", "insert_body": {"name": "b", "qty": 9},
                        "on_conflict": "name"});

    // Enforcement off: no key needed.
    assert_eq!(public(&s, "shop", "fetch", fetch.clone()).await.status, 200);

    // On for the route's client only: what counts is the route's client,
    // not an X-Athena-Client header the caller adds.
    let r = s
        .send(
            "PUT",
            &format!("/admin/api-key-clients/{HIDDEN}"),
            &[ADMIN],
            Some(json!({"enforce_api_keys": true})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = public(&s, "shop", "fetch", fetch.clone()).await;
    assert_eq!(r.status, 401, "{}", r.text());
    r.envelope();
    let r = public_with(
        &s,
        "shop",
        "fetch",
        &[("x-athena-client", common::CLIENT)],
        fetch.clone(),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text());
    let r = public_with(
        &s,
        "shop",
        "fetch",
        &[("x-athena-key", "ath_nope.nope")],
        fetch.clone(),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text());

    let reader = create_key(
        &s,
        json!({"name": "reader", "rights": ["gateway.fetch.execute"]}),
    )
    .await;
    let writer = create_key(
        &s,
        json!({"name": "writer", "rights": ["gateway.insert.execute"]}),
    )
    .await;
    let upserter = create_key(
        &s,
        json!({"name": "upserter", "rights": ["gateway.insert.execute", "gateway.update.execute"]}),
    )
    .await;
    let bound_here = create_key(
        &s,
        json!({"name": "here", "client_name": HIDDEN, "rights": ["gateway.*"]}),
    )
    .await;
    let bound_elsewhere = create_key(
        &s,
        json!({"name": "elsewhere", "client_name": common::CLIENT, "rights": ["*"]}),
    )
    .await;
    let call = |key: String, op: &'static str, body: Value| {
        let s = &s;
        async move {
            let headers = [("x-athena-key", key.as_str())];
            public_with(s, "shop", op, &headers, body).await.status
        }
    };
    assert_eq!(call(reader.clone(), "fetch", fetch.clone()).await, 200);
    assert_eq!(call(reader.clone(), "insert", insert("r")).await, 403);
    assert_eq!(call(writer.clone(), "fetch", fetch.clone()).await, 403);
    assert_eq!(call(writer.clone(), "insert", insert("w")).await, 200);
    // An upsert writes existing rows too: insert alone is not enough.
    assert_eq!(call(writer.clone(), "insert", upsert.clone()).await, 403);
    assert_eq!(call(upserter.clone(), "insert", upsert.clone()).await, 200);
    assert_eq!(call(bound_here.clone(), "fetch", fetch.clone()).await, 200);
    assert_eq!(
        call(bound_elsewhere.clone(), "fetch", fetch.clone()).await,
        403
    );
    assert_eq!(
        call(ADMIN_KEY.to_string(), "fetch", fetch.clone()).await,
        200
    );
    assert_eq!(names(&s).await, ["a", "b", "w"]);

    // Deactivating the key stops it at once.
    let keys = s
        .send("GET", "/admin/api-keys", &[ADMIN], None)
        .await
        .json();
    let id = keys["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "reader")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s
        .send(
            "PATCH",
            &format!("/admin/api-keys/{id}"),
            &[ADMIN],
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(call(reader, "fetch", fetch).await, 401);
    s.stop().await;
}

/// Strict version of the body checks above: run it once the generated
/// response types carry JSON for 2xx the contract declares without content.
#[tokio::test]
async fn successes_carry_json_bodies() {
    let s = setup().await;
    let r = create_route(&s, "shop", &["fetch"]).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["route"]["client_name"], HIDDEN);
    let r = s.send("GET", "/admin/public-routes", &[ADMIN], None).await;
    assert_eq!(r.json()["routes"][0]["route_key"], "shop");
    let r = public(
        &s,
        "shop",
        "fetch",
        json!({"table_name": "items", "sort_by": "id"}),
    )
    .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"].as_array().unwrap().len(), 2, "{v}");
    s.stop().await;
}
