//! Tenant hostnames, host routing, service routes, pools and
//! `/debug/gateway` (issue 13): `PUT /admin/tenant-hostnames/{tenant}` then a
//! fetch with `Host: {tenant}.v3.example.test` reads the tenant's rows; the
//! route's `allowed_ops`, `X-Athena-Client` and direct-URI headers win as
//! documented; service bindings gate families; a change on one replica
//! reaches another within 1 s.

use crate::common;

use common::{TestServer, ADMIN_KEY};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const ADMIN: (&str, &str) = ("x-athena-key", ADMIN_KEY);
const PATTERN: &str = "*.v3.example.test";
const CLIENT: &str = "acme_db";

fn wildcard(c: &mut athena::config::Config) {
    c.wildcard_host = Some(athena::gateway::host_routing::WildcardPattern::parse(PATTERN).unwrap());
}

/// The client's URI carries a password the answers must never show (the
/// local server does not check it).
const PASSWORD: &str = "pool-secret-7c1e";

async fn setup() -> TestServer {
    let s = TestServer::start_with(wildcard).await;
    let mut uri = url::Url::parse(&s.tenant_url).unwrap();
    uri.set_password(Some(PASSWORD)).unwrap();
    s.tenant()
        .await
        .batch_execute(
            "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL);
             INSERT INTO items (name) VALUES ('a'), ('b')",
        )
        .await
        .unwrap();
    let r = s
        .send(
            "POST",
            "/admin/clients",
            &[ADMIN],
            Some(json!({"client_name": CLIENT, "pg_uri": uri.as_str()})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    s
}

async fn put_host(s: &TestServer, tenant: &str, body: Value) -> common::Reply {
    s.send(
        "PUT",
        &format!("/admin/tenant-hostnames/{tenant}"),
        &[ADMIN],
        Some(body),
    )
    .await
}

/// A fetch of `items` on a host, with extra headers.
async fn fetch_on(s: &TestServer, host: &str, headers: &[(&str, &str)]) -> common::Reply {
    let mut all = vec![("host", host)];
    all.extend_from_slice(headers);
    s.send(
        "POST",
        "/gateway/fetch",
        &all,
        Some(json!({"table_name": "items", "sort_by": "id"})),
    )
    .await
}

fn names(r: &common::Reply) -> Vec<String> {
    r.json()["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no rows: {}", r.text()))
        .iter()
        .map(|row| row["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_tenant_hostname_routes_its_host_to_the_client() {
    let s = setup().await;
    let r = put_host(
        &s,
        "Acme",
        json!({"client_name": CLIENT, "allowed_ops": ["fetch"], "enable_postgres_binding": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let data = &r.json()["data"];
    assert_eq!(data["tenant"], "acme");
    assert_eq!(data["hostname"], "acme.v3.example.test");
    assert_eq!(data["http_route"]["allowed_ops"], json!(["fetch"]));
    assert_eq!(
        data["postgres_binding"]["public_host"],
        "acme.v3.example.test"
    );
    assert_eq!(data["postgres_binding"]["public_port"], 5432);

    // Read back: the public route and the client's metadata.
    let routes = s.send("GET", "/admin/public-routes", &[ADMIN], None).await;
    let route = routes.json()["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route_key"] == "acme")
        .cloned()
        .expect("route listed");
    assert_eq!(route["client_name"], CLIENT);
    let meta: String = common::psql(&s.catalog_url)
        .await
        .query_one(
            "SELECT metadata->>'public_host' FROM athena_clients WHERE client_name = $1",
            &[&CLIENT],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(meta, "acme.v3.example.test");

    // Port ignored, any case.
    let r = fetch_on(&s, "ACME.v3.Example.test:4052", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(names(&r), ["a", "b"]);

    // An op the route does not allow, and one no route op stands for.
    let r = s
        .send(
            "PUT",
            "/gateway/insert",
            &[("host", "acme.v3.example.test")],
            Some(json!({"table_name": "items", "insert_body": {"name": "c"}})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(s.scalar("SELECT count(*) FROM items").await, 2);
    let r = s
        .send(
            "POST",
            "/gateway/rpc",
            &[("host", "acme.v3.example.test")],
            Some(json!({"function": "now"})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());

    // Unknown label: 404; a host outside the pattern: no inference (the
    // usual missing-client answer).
    let r = fetch_on(&s, "nobody.v3.example.test", &[]).await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = fetch_on(&s, "acme.other.test", &[]).await;
    assert_eq!(r.status, 400, "{}", r.text());
    // Operations with no right are left alone on a tenant host.
    let r = s
        .send(
            "GET",
            "/health",
            &[("host", "nobody.v3.example.test")],
            None,
        )
        .await;
    assert_ne!(r.status, 404, "{}", r.text());
    s.stop().await;
}

#[tokio::test]
async fn the_header_wins_and_direct_uris_are_never_inferred() {
    let s = setup().await;
    let r = put_host(
        &s,
        "acme",
        json!({"client_name": CLIENT, "allowed_ops": ["insert"]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // fetch is not allowed on the host, but X-Athena-Client names the client.
    let r = fetch_on(&s, "acme.v3.example.test", &[("x-athena-client", CLIENT)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(names(&r), ["a", "b"]);
    let r = fetch_on(&s, "acme.v3.example.test", &[]).await;
    assert_eq!(r.status, 403, "{}", r.text());
    // A direct URI: the host is not looked at for the client (neither the
    // refusal of `fetch` nor an unknown label's 404).
    for host in ["acme.v3.example.test", "nobody.v3.example.test"] {
        let r = fetch_on(&s, host, &[("x-pg-uri", "postgres://u@db.invalid/x")]).await;
        assert!(
            !r.text().contains("tenant host") && !r.text().contains("no tenant is routed"),
            "{host}: {} {}",
            r.status,
            r.text()
        );
        assert_ne!(r.status, 200, "{}", r.text());
    }
    s.stop().await;
}

#[tokio::test]
async fn bad_labels_and_unknown_clients_are_refused() {
    let s = setup().await;
    for bad in ["a.b", "-x", "a%20b", &"x".repeat(64)] {
        let r = put_host(&s, bad, json!({"client_name": CLIENT})).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    let r = put_host(&s, "ghost", json!({"client_name": "no_such_client"})).await;
    assert_eq!(r.status, 404, "{}", r.text());
    // Without client_name the label names the client.
    let r = put_host(&s, "ghost", json!({})).await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = s
        .send(
            "PUT",
            &format!("/admin/clients/{CLIENT}/freeze"),
            &[ADMIN],
            Some(json!({"is_frozen": true})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = put_host(&s, "acme", json!({"client_name": CLIENT})).await;
    assert_eq!(r.status, 404, "{}", r.text());
    let routes = s.send("GET", "/admin/public-routes", &[ADMIN], None).await;
    assert_eq!(routes.json()["routes"], json!([]), "{}", routes.text());
    s.stop().await;
}

/// A tenant host that routes to one client is never moved to another by
/// a hostname PUT: 400, the route unchanged.
#[tokio::test]
async fn a_host_of_another_client_is_not_taken_over() {
    let mut s = setup().await;
    let other_db = s.extra_db().await;
    let r = s
        .send(
            "POST",
            "/admin/clients",
            &[ADMIN],
            Some(json!({"client_name": "other", "pg_uri": other_db})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = put_host(&s, "acme", json!({"client_name": CLIENT})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = put_host(&s, "acme", json!({"client_name": "other"})).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("another client"), "{}", r.text());
    let routes = s.send("GET", "/admin/public-routes", &[ADMIN], None).await;
    let list = routes.json()["routes"].clone();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["client_name"], CLIENT, "{list}");
    // The host still reads the first client's rows.
    let r = fetch_on(&s, "acme.v3.example.test", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"].as_array().map(Vec::len), Some(2));
    s.stop().await;
}

#[tokio::test]
async fn service_bindings_gate_families_on_a_host() {
    let s = setup().await;
    let r = put_host(&s, "acme", json!({"client_name": CLIENT})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // No binding yet: every family is served.
    assert_eq!(rest_on(&s).await.status, 200);
    let bind = |service: &str, active: bool| {
        json!({"route_key": "acme", "service_key": service, "client_name": CLIENT,
               "is_active": active, "upstream_url": "https://upstream.example.com/x"})
    };
    let r = s
        .send(
            "POST",
            "/admin/service-routes",
            &[ADMIN],
            Some(bind("gateway", true)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["service_key"], "gateway");
    // Bound: gateway served; rest not bound → 404, even naming the client.
    let r = fetch_on(&s, "acme.v3.example.test", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = rest_on(&s).await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.text().contains("`rest` service"), "{}", r.text());
    // Other hosts are not affected.
    let r = s
        .send(
            "GET",
            "/rest/v1/items",
            &[("x-athena-client", CLIENT)],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // An inactive binding does not serve.
    let r = s
        .send(
            "POST",
            "/admin/service-routes",
            &[ADMIN],
            Some(bind("rest", false)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(rest_on(&s).await.status, 404);
    let r = s
        .send(
            "PATCH",
            "/admin/service-routes/acme/rest",
            &[ADMIN],
            Some(json!({"is_active": true, "upstream_url": ""})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["upstream_url"], Value::Null);
    assert_eq!(rest_on(&s).await.status, 200);
    // Listed with filters; unknown pairs 404; bad input 400.
    let r = s
        .send(
            "GET",
            "/admin/service-routes?route_key=acme&service_key=rest",
            &[ADMIN],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 1);
    for (m, p) in [
        ("PATCH", "/admin/service-routes/acme/chat"),
        ("DELETE", "/admin/service-routes/nope/rest"),
    ] {
        let r = s
            .send(m, p, &[ADMIN], Some(json!({"is_active": false})))
            .await;
        assert_eq!(r.status, 404, "{m} {p}: {}", r.text());
    }
    for body in [
        json!({"route_key": "acme", "service_key": "admin", "client_name": CLIENT}),
        json!({"route_key": "a.b", "service_key": "rest", "client_name": CLIENT}),
        json!({"route_key": "acme", "service_key": "rest", "client_name": "nobody"}),
        json!({"route_key": "acme", "service_key": "rest", "client_name": CLIENT, "upstream_url": "ftp://x.example.com"}),
        json!({"route_key": "acme", "service_key": "rest", "client_name": CLIENT, "upstream_url": "http://169.254.169.254/"}),
        json!({"route_key": "acme", "service_key": "rest", "client_name": CLIENT, "upstream_url": "https://u:p@x.example.com/"}),
    ] {
        let r = s
            .send(
                "POST",
                "/admin/service-routes",
                &[ADMIN],
                Some(body.clone()),
            )
            .await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
    }
    let r = s
        .send("DELETE", "/admin/service-routes/acme/rest", &[ADMIN], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(rest_on(&s).await.status, 404);
    s.stop().await;
}

/// `GET /rest/v1/items` on the tenant host.
async fn rest_on(s: &TestServer) -> common::Reply {
    s.send(
        "GET",
        "/rest/v1/items?select=name",
        &[("host", "acme.v3.example.test")],
        None,
    )
    .await
}

/// Polls `check` until it holds or `within` passes; the time it took.
async fn within(within: Duration, mut check: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if check().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test]
async fn a_route_change_on_one_replica_reaches_another_within_a_second() {
    let a = setup().await;
    let b = a.replica_with(wildcard).await;
    let r = put_host(
        &a,
        "acme",
        json!({"client_name": CLIENT, "allowed_ops": ["fetch"]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // B learns the route (and caches it).
    let took = within(Duration::from_secs(1), async || {
        fetch_on(&b, "acme.v3.example.test", &[]).await.status == 200
    })
    .await;
    assert!(took.is_some(), "B never routed the host");
    // Deactivated on A: B refuses within 1 s (its 2 s cache is dropped).
    let r = a
        .send(
            "PATCH",
            "/admin/public-routes/acme",
            &[ADMIN],
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let took = within(Duration::from_secs(1), async || {
        fetch_on(&b, "acme.v3.example.test", &[]).await.status == 403
    })
    .await;
    assert!(took.is_some(), "B still routes the inactive host after 1 s");
    // A service binding added on A gates B within 1 s.
    let r = put_host(&a, "acme", json!({"client_name": CLIENT})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = a
        .send(
            "POST",
            "/admin/service-routes",
            &[ADMIN],
            Some(json!({"route_key": "acme", "service_key": "rest", "client_name": CLIENT})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let took = within(Duration::from_secs(1), async || {
        fetch_on(&b, "acme.v3.example.test", &[]).await.status == 404
    })
    .await;
    assert!(
        took.is_some(),
        "B still serves the unbound gateway family after 1 s"
    );
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn pools_and_debug_gateway_show_state_without_secrets() {
    let s = setup().await;
    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &[("x-athena-client", CLIENT)],
            Some(json!({"table_name": "items"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.send("GET", "/admin/pools", &[ADMIN], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let pools = r.json()["data"]["pools"].clone();
    let pool = pools
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["client_name"] == CLIENT)
        .cloned()
        .unwrap_or_else(|| panic!("{CLIENT} not listed: {}", r.text()));
    for field in [
        "created_at",
        "size",
        "idle",
        "active",
        "max",
        "waits",
        "timeouts",
    ] {
        assert!(!pool[field].is_null(), "{field}: {pool}");
    }
    assert!(pool["size"].as_u64().unwrap() >= 1, "{pool}");
    assert!(
        r.json()["data"]["direct_uri_pools"].is_u64(),
        "{}",
        r.text()
    );
    assert!(!r.text().contains(PASSWORD), "password in /admin/pools");
    assert!(!r.text().contains("postgres://"), "URI in /admin/pools");
    assert_eq!(s.send("GET", "/admin/pools", &[], None).await.status, 401);

    let r = put_host(&s, "acme", json!({"client_name": CLIENT})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.send("GET", "/debug/gateway", &[ADMIN], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let d = r.json()["data"].clone();
    assert_eq!(d["routing"]["wildcard_host_pattern"], PATTERN);
    let client = d["routing"]["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_name"] == CLIENT)
        .cloned()
        .expect("client routing listed");
    assert_eq!(client["public_routes"][0]["host"], "acme.v3.example.test");
    assert!(d["deferred_queue"]["queued"].is_u64(), "{d}");
    assert!(d["redis"]["status"].is_string(), "{d}");
    assert_eq!(d["auth_store"]["catalog"]["status"], "up");
    assert!(!r.text().contains(PASSWORD), "password in /debug/gateway");
    assert_eq!(s.send("GET", "/debug/gateway", &[], None).await.status, 401);
    s.stop().await;
}

#[tokio::test]
async fn a_pool_that_cannot_connect_reports_its_last_error_without_secrets() {
    let s = TestServer::start_with(|c| {
        c.pool_acquire_timeout = Duration::from_millis(500);
        c.pool_connect_timeout = Duration::from_millis(300);
    })
    .await;
    // Nothing listens on port 1: every connection is refused.
    let uri = format!("postgres://nobody:{PASSWORD}@127.0.0.1:1/nowhere");
    let r = s
        .send(
            "POST",
            "/admin/clients",
            &[ADMIN],
            Some(json!({"client_name": "down_db", "pg_uri": uri})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &[("x-athena-client", "down_db")],
            Some(json!({"table_name": "items"})),
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    let pool = within(Duration::from_secs(2), async || {
        let r = s.send("GET", "/admin/pools", &[ADMIN], None).await;
        assert!(!r.text().contains(PASSWORD), "password in /admin/pools");
        r.json()["data"]["pools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["client_name"] == "down_db" && p["last_error"].is_string())
    })
    .await;
    assert!(
        pool.is_some(),
        "no last_error recorded for the unreachable pool"
    );
    let r = s.send("GET", "/admin/pools", &[ADMIN], None).await;
    let down = r.json()["data"]["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["client_name"] == "down_db")
        .cloned()
        .unwrap();
    assert!(down["timeouts"].as_u64().unwrap() >= 1, "{down}");
    assert!(
        !r.text().contains("127.0.0.1:1/"),
        "URI in /admin/pools: {}",
        r.text()
    );
    s.stop().await;
}
