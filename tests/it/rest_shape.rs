//! PostgREST's bare shape (issue 14, `src/http/rest_shape.rs`): with
//! `X-Athena-Rest-Shape: postgrest` (or a public route whose `rest_shape` is
//! `postgrest`) `/rest/v1` answers as PostgREST does — bare arrays/objects,
//! 201/204 for writes, PostgREST's error JSON — while the default stays the
//! contract's `{data: …}` envelope. Every write is read back from Postgres.

use crate::common;

use common::{Reply, TestServer, ADMIN_KEY, CLIENT};
use serde_json::{json, Value};

const ADMIN: (&str, &str) = ("x-athena-key", ADMIN_KEY);
const C: (&str, &str) = ("x-athena-client", CLIENT);
const BARE: (&str, &str) = ("x-athena-rest-shape", "postgrest");
const OBJECT: (&str, &str) = ("accept", "application/vnd.pgrst.object+json");
const REPR: (&str, &str) = ("prefer", "return=representation");

/// `teams` (1 red, 2 blue) and `players` (FK to teams, unique name).
async fn fixture(s: &TestServer) {
    s.tenant()
        .await
        .batch_execute(
            "CREATE TABLE teams (id int PRIMARY KEY, name text NOT NULL);
             CREATE TABLE players (id int PRIMARY KEY, name text NOT NULL UNIQUE,
                                   team_id int REFERENCES teams (id), score int);
             INSERT INTO teams VALUES (1, 'red'), (2, 'blue');
             INSERT INTO players VALUES (1, 'ann', 1, 10), (2, 'bob', 1, 20), (3, 'cid', 2, 30);",
        )
        .await
        .unwrap();
}

async fn req(
    s: &TestServer,
    method: &str,
    path: &str,
    h: &[(&str, &str)],
    body: Option<Value>,
) -> Reply {
    let mut all = vec![C];
    all.extend_from_slice(h);
    s.send(method, path, &all, body).await
}

fn header<'a>(r: &'a Reply, name: &str) -> Option<&'a str> {
    r.headers.get(name).map(|v| v.to_str().unwrap())
}

/// A PostgREST error body: exactly `code`, `details`, `hint`, `message`.
fn pgrst_error(r: &Reply, status: u16, code: &str) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    let v = r.json();
    let keys: Vec<&String> = v.as_object().expect("an object").keys().collect();
    assert_eq!(keys, ["code", "details", "hint", "message"], "{v}");
    assert_eq!(v["code"], code, "{v}");
    assert!(v["message"].is_string(), "{v}");
    assert!(header(r, "content-type")
        .unwrap()
        .starts_with("application/json"));
    v
}

async fn names(s: &TestServer) -> Vec<String> {
    s.tenant()
        .await
        .query("SELECT name FROM players ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn reads_bare_and_default() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let path = "/rest/v1/players?select=id,name&order=id";

    // Default: the contract's envelope, unchanged.
    let r = req(&s, "GET", path, &[], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 3);
    assert_eq!(header(&r, "content-range"), Some("0-2/*"));
    assert!(header(&r, "preference-applied").is_none());

    // Bare: the array itself, same status and Content-Range.
    let r = req(&s, "GET", path, &[BARE], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!([{"id": 1, "name": "ann"}, {"id": 2, "name": "bob"}, {"id": 3, "name": "cid"}])
    );
    assert_eq!(header(&r, "content-range"), Some("0-2/*"));
    assert_eq!(
        header(&r, "content-type"),
        Some("application/json; charset=utf-8")
    );
    // Any case; the column order is Postgres' own (bytes passed on as written).
    let r = req(
        &s,
        "GET",
        path,
        &[("X-Athena-Rest-Shape", "PostgREST")],
        None,
    )
    .await;
    assert!(
        r.text().starts_with(r#"[{"id":1,"name":"ann"}"#),
        "{}",
        r.text()
    );

    // Counted page: 206, Content-Range, Preference-Applied.
    let count = ("prefer", "count=exact");
    let r = req(
        &s,
        "GET",
        "/rest/v1/players?order=id&limit=2",
        &[BARE, count],
        None,
    )
    .await;
    assert_eq!(r.status, 206, "{}", r.text());
    assert_eq!(header(&r, "content-range"), Some("0-1/3"));
    assert_eq!(header(&r, "preference-applied"), Some("count=exact"));
    assert_eq!(r.json().as_array().unwrap().len(), 2);
    let r = req(
        &s,
        "GET",
        "/rest/v1/players?order=id&limit=2",
        &[count],
        None,
    )
    .await;
    assert_eq!(r.status, 206, "{}", r.text());
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 2);

    // Embeds and filters pass through the same grammar.
    let r = req(
        &s,
        "GET",
        "/rest/v1/players?select=name,teams(name)&score=gte.20&order=id",
        &[BARE],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!([{"name": "bob", "teams": {"name": "red"}}, {"name": "cid", "teams": {"name": "blue"}}])
    );

    // Singular: the object, PostgREST's media type; 406 PGRST116 otherwise.
    let r = req(
        &s,
        "GET",
        "/rest/v1/players?id=eq.2&select=name",
        &[BARE, OBJECT],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"name": "bob"}));
    assert_eq!(
        header(&r, "content-type"),
        Some("application/vnd.pgrst.object+json; charset=utf-8")
    );
    let r = req(
        &s,
        "GET",
        "/rest/v1/players?id=eq.2&select=name",
        &[OBJECT],
        None,
    )
    .await;
    assert_eq!(r.json()["data"], json!({"name": "bob"}));
    let r = req(&s, "GET", "/rest/v1/players?id=gt.0", &[BARE, OBJECT], None).await;
    let e = pgrst_error(&r, 406, "PGRST116");
    assert_eq!(e["details"], "The result contains 3 rows");
    assert_eq!(
        header(&r, "proxy-status"),
        Some("PostgREST; error=PGRST116")
    );
    let r = req(&s, "GET", "/rest/v1/players?id=gt.0", &[OBJECT], None).await;
    assert_eq!(r.status, 406);
    assert_eq!(r.envelope()["code"], "not_acceptable");

    // Range past the end: 416 PGRST103, Content-Range `*/3`.
    let r = req(
        &s,
        "GET",
        "/rest/v1/players?offset=10",
        &[BARE, count],
        None,
    )
    .await;
    pgrst_error(&r, 416, "PGRST103");
    assert_eq!(header(&r, "content-range"), Some("*/3"));

    // Bad query (PGRST100), unknown table (404), unknown column (42703).
    let r = req(&s, "GET", "/rest/v1/players?id=zz.1", &[BARE], None).await;
    pgrst_error(&r, 400, "PGRST100");
    let r = req(&s, "GET", "/rest/v1/nope", &[BARE], None).await;
    assert_eq!(r.status, 404, "{}", r.text());
    let code = pgrst_error(&r, 404, r.json()["code"].as_str().unwrap())["code"].clone();
    assert!(code == "PGRST205" || code == "42P01", "{code}");
    let r = req(&s, "GET", "/rest/v1/nope", &[], None).await;
    assert_eq!(r.status, 404);
    r.envelope();
    let r = req(&s, "GET", "/rest/v1/players?select=nope", &[BARE], None).await;
    pgrst_error(&r, 400, "42703");

    // Missing client: a 400 with a hint on passing the header.
    let r = s.send("GET", "/rest/v1/players", &[BARE], None).await;
    let e = pgrst_error(&r, 400, "PGRST100");
    assert!(
        e["hint"].as_str().unwrap().contains("X-Athena-Client"),
        "{e}"
    );

    // Another shape: 400 in the contract's envelope, on every method.
    for m in ["GET", "POST", "PATCH", "DELETE"] {
        let r = req(
            &s,
            m,
            "/rest/v1/players?id=eq.1",
            &[("x-athena-rest-shape", "contract")],
            Some(json!({"name": "x"})),
        )
        .await;
        assert_eq!(r.status, 400, "{m}: {}", r.text());
        assert!(r.envelope()["error"]
            .as_str()
            .unwrap()
            .contains("postgrest"));
    }
    assert_eq!(names(&s).await, ["ann", "bob", "cid"]);
    s.stop().await;
}

#[tokio::test]
async fn writes_bare_and_default() {
    let s = TestServer::start().await;
    fixture(&s).await;

    // POST, no Prefer: PostgREST's 201 with no body (Athena's default: 200 + rows).
    let row = json!({"id": 4, "name": "dan", "team_id": 2});
    let r = req(&s, "POST", "/rest/v1/players", &[BARE], Some(row)).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(r.body.is_empty(), "{}", r.text());
    assert!(header(&r, "content-type").is_none());
    assert_eq!(names(&s).await, ["ann", "bob", "cid", "dan"]);
    let r = req(
        &s,
        "POST",
        "/rest/v1/players",
        &[],
        Some(json!({"id": 5, "name": "eve"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"][0]["name"], "eve");
    assert!(r.json().get("rows_affected").is_some());

    // return=representation: 201 with the rows, no rows_affected.
    let rows = json!([{"id": 6, "name": "fay"}, {"id": 7, "name": "gus"}]);
    let r = req(
        &s,
        "POST",
        "/rest/v1/players?select=id,name",
        &[BARE, REPR],
        Some(rows),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json(),
        json!([{"id": 6, "name": "fay"}, {"id": 7, "name": "gus"}])
    );
    assert_eq!(
        header(&r, "preference-applied"),
        Some("return=representation")
    );
    // Singular insert: the object.
    let r = req(
        &s,
        "POST",
        "/rest/v1/players",
        &[BARE, REPR, OBJECT],
        Some(json!({"id": 8, "name": "hal"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["name"], "hal");
    assert_eq!(
        names(&s).await,
        ["ann", "bob", "cid", "dan", "eve", "fay", "gus", "hal"]
    );

    // Upsert: 201, the preferences echoed.
    let prefer = (
        "prefer",
        "resolution=merge-duplicates, return=representation",
    );
    let r = req(
        &s,
        "POST",
        "/rest/v1/players",
        &[BARE, prefer],
        Some(json!({"id": 8, "name": "hank"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()[0]["name"], "hank");
    assert_eq!(
        header(&r, "preference-applied"),
        Some("resolution=merge-duplicates, return=representation")
    );
    assert_eq!(
        s.scalar("SELECT count(*) FROM players WHERE name = 'hank'")
            .await,
        1
    );

    // Unique violation: 409 23505; FK violation: 409 23503; not-null: 400 23502.
    let r = req(
        &s,
        "POST",
        "/rest/v1/players",
        &[BARE],
        Some(json!({"id": 9, "name": "ann"})),
    )
    .await;
    pgrst_error(&r, 409, "23505");
    let r = req(
        &s,
        "POST",
        "/rest/v1/players",
        &[],
        Some(json!({"id": 9, "name": "ann"})),
    )
    .await;
    assert_eq!(r.status, 409);
    r.envelope();
    let r = req(
        &s,
        "POST",
        "/rest/v1/players",
        &[BARE],
        Some(json!({"id": 9, "name": "ivy", "team_id": 99})),
    )
    .await;
    pgrst_error(&r, 409, "23503");
    let r = req(
        &s,
        "POST",
        "/rest/v1/players",
        &[],
        Some(json!({"id": 9, "name": "ivy", "team_id": 99})),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = req(
        &s,
        "POST",
        "/rest/v1/players",
        &[BARE],
        Some(json!({"id": 9})),
    )
    .await;
    pgrst_error(&r, 400, "23502");
    assert_eq!(
        s.scalar("SELECT count(*) FROM players WHERE id = 9").await,
        0
    );

    // PATCH: 204 without representation, 200 with the rows.
    let r = req(
        &s,
        "PATCH",
        "/rest/v1/players?id=eq.1",
        &[BARE],
        Some(json!({"score": 11})),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.body.is_empty());
    assert_eq!(
        s.scalar("SELECT score::bigint FROM players WHERE id = 1")
            .await,
        11
    );
    let r = req(
        &s,
        "PATCH",
        "/rest/v1/players?id=eq.1&select=id,score",
        &[BARE, REPR],
        Some(json!({"score": 12})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!([{"id": 1, "score": 12}]));
    assert_eq!(
        s.scalar("SELECT score::bigint FROM players WHERE id = 1")
            .await,
        12
    );
    let r = req(
        &s,
        "PATCH",
        "/rest/v1/players?id=eq.1",
        &[BARE, REPR, OBJECT],
        Some(json!({"score": 13})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["score"], 13);
    // Default: the envelope with rows_affected.
    let r = req(
        &s,
        "PATCH",
        "/rest/v1/players?id=eq.1",
        &[],
        Some(json!({"score": 14})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"][0]["score"], 14);
    assert_eq!(r.json()["rows_affected"], 1);
    // Singular PATCH of several rows: 406, nothing changed.
    let r = req(
        &s,
        "PATCH",
        "/rest/v1/players?team_id=eq.1",
        &[BARE, OBJECT],
        Some(json!({"score": 0})),
    )
    .await;
    pgrst_error(&r, 406, "PGRST116");
    assert_eq!(
        s.scalar("SELECT count(*) FROM players WHERE score = 0")
            .await,
        0
    );

    // DELETE: 204, or 200 with the rows; Content-Range with count=exact.
    let r = req(
        &s,
        "DELETE",
        "/rest/v1/players?id=eq.7",
        &[BARE, ("prefer", "count=exact")],
        None,
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(header(&r, "content-range"), Some("*/1"));
    assert_eq!(header(&r, "preference-applied"), Some("count=exact"));
    let r = req(
        &s,
        "DELETE",
        "/rest/v1/players?id=eq.6&select=name",
        &[BARE, REPR],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!([{"name": "fay"}]));
    let r = req(&s, "DELETE", "/rest/v1/players?id=eq.5", &[], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"][0]["name"], "eve");
    assert_eq!(
        s.scalar("SELECT count(*) FROM players WHERE id IN (5, 6, 7)")
            .await,
        0
    );
    // No filter: PostgREST-shaped 400.
    let r = req(&s, "DELETE", "/rest/v1/players", &[BARE], None).await;
    pgrst_error(&r, 400, "PGRST100");
    assert_eq!(s.scalar("SELECT count(*) FROM players").await, 5);
    // The layer reads `Prefer` as the handler does: any case, `;` too
    // (review: the rows were dropped from a 201).
    for (i, prefer) in ["RETURN=REPRESENTATION", "return=representation;count=exact"]
        .into_iter()
        .enumerate()
    {
        let id = 20 + i as i64;
        let r = req(
            &s,
            "POST",
            "/rest/v1/players",
            &[BARE, ("prefer", prefer)],
            Some(json!({"id": id, "name": format!("p{id}")})),
        )
        .await;
        assert_eq!(r.status, 201, "{prefer}: {}", r.text());
        assert_eq!(r.json()[0]["id"], id, "{prefer}");
    }
    assert_eq!(
        s.scalar("SELECT count(*) FROM players WHERE id IN (20, 21)")
            .await,
        2
    );
    s.stop().await;
}

#[tokio::test]
async fn keys_and_rights_in_the_bare_shape() {
    let s = TestServer::start().await;
    fixture(&s).await;
    s.enforce_keys(true).await;
    let r = req(&s, "GET", "/rest/v1/players", &[BARE], None).await;
    pgrst_error(&r, 401, "PGRST301");
    let key = s.api_key(&["gateway.fetch.execute"], Some(CLIENT)).await;
    let bearer = format!("Bearer {key}");
    let auth = ("authorization", bearer.as_str());
    let r = req(
        &s,
        "GET",
        "/rest/v1/players?select=id&id=eq.1",
        &[BARE, auth],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!([{"id": 1}]));
    let r = req(
        &s,
        "GET",
        "/rest/v1/players?select=id&id=eq.1",
        &[BARE, ("apikey", key.as_str())],
        None,
    )
    .await;
    assert_eq!(r.json(), json!([{"id": 1}]));
    let r = req(
        &s,
        "DELETE",
        "/rest/v1/players?id=eq.1",
        &[BARE, auth],
        None,
    )
    .await;
    pgrst_error(&r, 403, "42501");
    assert_eq!(
        s.scalar("SELECT count(*) FROM players WHERE id = 1").await,
        1
    );
    s.stop().await;
}

const BACKEND: &str = "shape_backend";

async fn route(s: &TestServer, key: &str, shape: Option<&str>) -> Reply {
    let mut body =
        json!({"route_key": key, "client_name": BACKEND, "allowed_ops": ["fetch", "insert"]});
    if let Some(shape) = shape {
        body["rest_shape"] = json!(shape);
    }
    s.send("POST", "/admin/public-routes", &[ADMIN], Some(body))
        .await
}

async fn listed_shape(s: &TestServer, key: &str) -> Value {
    let r = s.send("GET", "/admin/public-routes", &[ADMIN], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route_key"] == key)
        .expect("route listed")["rest_shape"]
        .clone()
}

#[tokio::test]
async fn the_public_route_setting() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let r = s
        .send(
            "POST",
            "/admin/clients",
            &[ADMIN],
            Some(json!({"client_name": BACKEND, "pg_uri": s.tenant_url})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());

    assert_eq!(route(&s, "bare", Some("postgrest")).await.status, 201);
    assert_eq!(route(&s, "plain", None).await.status, 201);
    assert_eq!(route(&s, "odd", Some("xml")).await.status, 400);
    assert_eq!(listed_shape(&s, "bare").await, "postgrest");
    assert_eq!(listed_shape(&s, "plain").await, Value::Null);

    let fetch = json!({"table_name": "players", "columns": ["id"], "sort_by": "id", "limit": 2});
    // The route's setting: the bare rows.
    let r = s
        .send("POST", "/public/bare/fetch", &[], Some(fetch.clone()))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!([{"id": 1}, {"id": 2}]));
    // Default route: the contract's answer; the header asks for the bare one.
    let r = s
        .send("POST", "/public/plain/fetch", &[], Some(fetch.clone()))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"], json!([{"id": 1}, {"id": 2}]));
    let r = s
        .send("POST", "/public/plain/fetch", &[BARE], Some(fetch.clone()))
        .await;
    assert_eq!(r.json(), json!([{"id": 1}, {"id": 2}]));
    // Errors in PostgREST's JSON, the client still hidden.
    let r = s
        .send(
            "POST",
            "/public/bare/delete",
            &[],
            Some(json!({"table_name": "players"})),
        )
        .await;
    let e = pgrst_error(&r, 403, "42501");
    assert!(!e.to_string().contains(BACKEND), "{e}");
    let r = s
        .send(
            "POST",
            "/public/bare/insert",
            &[],
            Some(json!({"table_name": "players", "insert_body": {"id": 20, "name": "zed"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["name"], "zed", "{}", r.text());
    assert_eq!(
        s.scalar("SELECT count(*) FROM players WHERE id = 20").await,
        1
    );

    // Switched back through the admin API: the envelope again.
    let r = s
        .send(
            "PATCH",
            "/admin/public-routes/bare",
            &[ADMIN],
            Some(json!({"rest_shape": "contract"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(listed_shape(&s, "bare").await, "contract");
    let r = s.send("POST", "/public/bare/fetch", &[], Some(fetch)).await;
    assert_eq!(r.json()["data"], json!([{"id": 1}, {"id": 2}]));
    let r = s
        .send(
            "PATCH",
            "/admin/public-routes/bare",
            &[ADMIN],
            Some(json!({"rest_shape": "bare"})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(listed_shape(&s, "bare").await, "contract");
    s.stop().await;
}

#[tokio::test]
async fn a_tenant_host_serves_rest_in_its_routes_shape() {
    let s = TestServer::start_with(|c| {
        c.wildcard_host = Some(
            athena::gateway::host_routing::WildcardPattern::parse("*.v3.example.test").unwrap(),
        );
    })
    .await;
    fixture(&s).await;
    let r = s
        .send(
            "POST",
            "/admin/clients",
            &[ADMIN],
            Some(json!({"client_name": BACKEND, "pg_uri": s.tenant_url})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = s
        .send(
            "PUT",
            "/admin/tenant-hostnames/acme",
            &[ADMIN],
            Some(json!({"client_name": BACKEND, "allowed_ops": ["fetch"]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let host = ("host", "acme.v3.example.test");
    let path = "/rest/v1/players?select=id&id=eq.3";
    let r = s.send("GET", path, &[host], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"], json!([{"id": 3}]));
    let r = s
        .send(
            "PATCH",
            "/admin/public-routes/acme",
            &[ADMIN],
            Some(json!({"rest_shape": "postgrest"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.send("GET", path, &[host], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!([{"id": 3}]));
    // An op the route does not allow: PostgREST's 403.
    let r = s.send("DELETE", path, &[host], None).await;
    pgrst_error(&r, 403, "42501");
    assert_eq!(
        s.scalar("SELECT count(*) FROM players WHERE id = 3").await,
        1
    );
    s.stop().await;
}
