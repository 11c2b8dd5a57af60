//! The admission limiter: the request over a client's limit is 429 with
//! `Retry-After` and an event row; a deferred client's write over it is
//! queued (202) and applied later; replicas share the counts through
//! Redis; with Redis killed the local count takes over and nothing fails.

use crate::common;

use common::{free_port, TestServer, ADMIN_KEY, CLIENT};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const ADMIN: (&str, &str) = ("X-Athena-Key", ADMIN_KEY);
const C: (&str, &str) = ("X-Athena-Client", CLIENT);

async fn items(s: &TestServer) {
    s.tenant()
        .await
        .batch_execute("CREATE TABLE items (id serial PRIMARY KEY, name text UNIQUE)")
        .await
        .unwrap();
}

/// A per-client limit of `limit` per hour (one window for the whole test).
async fn limit_client(s: &TestServer, limit: u64, deferred: bool) {
    let config = json!({
        "admission": {"window_seconds": 3600, "per_client_limit_per_window": limit},
        "deferred_writes": {"enabled": deferred}
    });
    let r = s
        .send(
            "PUT",
            &format!("/admin/client-configs/{CLIENT}"),
            &[ADMIN],
            Some(json!({"config": config})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

async fn read(s: &TestServer) -> common::Reply {
    s.send(
        "POST",
        "/gateway/fetch",
        &[C],
        Some(json!({"table_name": "items", "columns": ["id"]})),
    )
    .await
}

/// Polls the admission events until `check` accepts them (at most 3 s).
async fn events(s: &TestServer, query: &str, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let r = s
            .send(
                "GET",
                &format!("/admin/admission-events?{query}"),
                &[ADMIN],
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        let list = v["data"]["events"].as_array().cloned().unwrap_or_default();
        if check(&list) {
            return list;
        }
        assert!(Instant::now() < deadline, "events never matched: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn over_the_client_limit_is_429_with_retry_after_and_an_event() {
    let s = TestServer::start().await;
    items(&s).await;
    limit_client(&s, 3, false).await;
    for _ in 0..3 {
        let r = read(&s).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let r = read(&s).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.envelope()["code"], "rate_limited", "{}", r.text());
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    // Admin and health routes are never counted.
    for _ in 0..5 {
        assert_eq!(s.get("/health").await.status, 200);
        let r = s.send("GET", "/admin/client-configs", &[ADMIN], None).await;
        assert_eq!(r.status, 200);
    }
    let list = events(&s, &format!("client={CLIENT}&decision=rejected"), |l| {
        !l.is_empty()
    })
    .await;
    let e = &list[0];
    assert_eq!(e["route"], "/gateway/fetch", "{e}");
    assert_eq!(e["method"], "POST", "{e}");
    assert_eq!(e["client_name"], CLIENT, "{e}");
    assert_eq!(e["per_client_limit_per_window"], 3, "{e}");
    assert_eq!(e["window_seconds"], 3600, "{e}");
    assert_eq!(e["is_query_route"], true, "{e}");
    assert!(e["retry_after_seconds"].as_i64().unwrap() >= 1, "{e}");
    assert!(e["event_id"].is_string() && e["id"].is_i64(), "{e}");
    // The filters apply.
    let r = s
        .send(
            "GET",
            "/admin/admission-events?decision=defer_requested",
            &[ADMIN],
            None,
        )
        .await;
    assert_eq!(r.json()["data"]["events"], json!([]));
    assert_eq!(r.json()["data"]["decision"], "defer_requested");
    for bad in ["limit=0", "limit=501", "offset=-1", "limit=x"] {
        let r = s
            .send(
                "GET",
                &format!("/admin/admission-events?{bad}"),
                &[ADMIN],
                None,
            )
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    // Removing the override lifts the limit (the defaults are unlimited).
    let r = s
        .send(
            "DELETE",
            &format!("/admin/client-configs/{CLIENT}"),
            &[ADMIN],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(read(&s).await.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn a_deferred_clients_write_over_the_limit_is_queued_and_applied() {
    let s = TestServer::start().await;
    items(&s).await;
    limit_client(&s, 1, true).await;
    let insert = |name: &str| {
        s.send(
            "PUT",
            "/gateway/insert",
            &[C],
            Some(json!({"table_name": "items", "insert_body": {"name": name}})),
        )
    };
    // Within the limit: the client's writes are deferred as always (200).
    let r = insert("a").await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Over it: 202 with the queued request's id.
    let r = insert("b").await;
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["deferred_request_id"]
        .as_str()
        .expect("deferred_request_id")
        .to_string();
    // A read over the limit is refused.
    assert_eq!(read(&s).await.status, 429);
    // The write happens (read back from the tenant database: the status
    // route is rate limited too).
    let deadline = Instant::now() + Duration::from_secs(10);
    while s
        .scalar("SELECT count(*) FROM items WHERE name = 'b'")
        .await
        != 1
    {
        assert!(Instant::now() < deadline, "the deferred insert never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let list = events(&s, "decision=defer_requested", |l| !l.is_empty()).await;
    assert_eq!(list[0]["deferred_request_id"], id.as_str(), "{:?}", list);
    assert_eq!(list[0]["defer_requested"], true);
    assert_eq!(list[0]["route"], "/gateway/insert");
    s.stop().await;
}

#[tokio::test]
async fn two_replicas_share_the_limit() {
    assert!(
        std::env::var("REDIS_URL").is_ok(),
        "REDIS_URL is unset: run through make test (scripts/dev-services)"
    );
    let a = TestServer::start().await;
    items(&a).await;
    limit_client(&a, 4, false).await;
    let b = a.replica_with(|_| {}).await;
    for s in [&a, &b, &a, &b] {
        let r = read(s).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(read(&b).await.status, 429);
    assert_eq!(read(&a).await.status, 429);
    b.stop().await;
    a.stop().await;
}

/// A Redis of this test's own (never the shared one), killed mid-test.
struct OwnRedis {
    child: std::process::Child,
    port: u16,
}

impl OwnRedis {
    async fn start() -> OwnRedis {
        // scripts/dev-services installs it (`make test` runs that first).
        let on_path = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("redis-server"))
                .find(|p| p.exists())
        });
        let bin = on_path
            .or_else(|| {
                ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
                    .into_iter()
                    .map(std::path::PathBuf::from)
                    .find(|p| p.exists())
            })
            .expect("redis-server not found: run through make test (scripts/dev-services)");
        let port = free_port();
        let child = std::process::Command::new(bin)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start redis-server");
        let mut own = OwnRedis { child, port };
        common::wait_ready(port, &mut own.child).await;
        own
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test]
async fn redis_killed_the_limit_holds_locally_and_nothing_fails() {
    let mut redis = OwnRedis::start().await;
    let url = format!("redis://127.0.0.1:{}", redis.port);
    // Two replicas on that Redis, each expecting two of them.
    let s = TestServer::start_with(|c| {
        c.redis_url = Some(url);
        c.admission.expected_replicas = 2;
    })
    .await;
    let b = s.replica_with(|_| {}).await;
    items(&s).await;
    limit_client(&s, 10, false).await;
    for server in [&s, &b, &s] {
        assert_eq!(read(server).await.status, 200);
    }
    redis.kill();
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(read(&s).await.status);
        statuses.push(read(&b).await.status);
    }
    assert!(
        statuses.iter().all(|&st| st == 200 || st == 429),
        "{statuses:?}"
    );
    assert!(statuses.contains(&429), "{statuses:?}");
    // Each replica counts locally to limit ÷ ATHENA_EXPECTED_REPLICAS = 5.
    assert!(
        statuses.iter().filter(|&&st| st == 200).count() <= 10,
        "{statuses:?}"
    );
    let list = events(&s, "decision=rejected", |l| !l.is_empty()).await;
    assert_eq!(list[0]["meta"]["backend"], "local", "{:?}", list[0]);
    b.stop().await;
    s.stop().await;
}

#[tokio::test]
async fn the_global_limit_counts_every_client_and_transactions() {
    let s = TestServer::start_with(|c| {
        c.admission.window_secs = 3600;
        c.admission.global_limit = 3;
    })
    .await;
    items(&s).await;
    assert_eq!(read(&s).await.status, 200);
    let tx = json!({"operations": [{"id": "r", "kind": "fetch", "payload": {"table_name": "items", "columns": ["id"]}}]});
    let r = s
        .send("POST", "/gateway/transaction", &[C], Some(tx.clone()))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // An unknown client counts globally (and is refused by its handler).
    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &[("X-Athena-Client", "nobody")],
            Some(json!({"table_name": "items", "columns": ["id"]})),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = s.send("POST", "/gateway/transaction", &[C], Some(tx)).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(read(&s).await.status, 429);
    assert_eq!(s.get("/health").await.status, 200);
    let list = events(&s, "decision=rejected", |l| l.len() >= 2).await;
    assert_eq!(list[1]["route"], "/gateway/transaction", "{list:?}");
    assert_eq!(list[0]["meta"]["limited_by"], "global", "{list:?}");
    s.stop().await;
}

#[tokio::test]
async fn concurrent_requests_get_exactly_the_limit() {
    if std::env::var("REDIS_URL").is_err() {
        eprintln!("skipped: no REDIS_URL");
        return;
    }
    let s = TestServer::start().await;
    items(&s).await;
    limit_client(&s, 10, false).await;
    let b = s.replica_with(|_| {}).await;
    let replies =
        futures_util::future::join_all((0..30).map(|i| read(if i % 2 == 0 { &s } else { &b })))
            .await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let limited = replies.iter().filter(|r| r.status == 429).count();
    assert_eq!((ok, limited), (10, 20));
    b.stop().await;
    s.stop().await;
}

/// A public route counts as the gateway operation it forwards to, against
/// the route's client; a body `db_name` counts against that client.
#[tokio::test]
async fn public_routes_and_body_clients_count_against_their_client() {
    let s = TestServer::start().await;
    items(&s).await;
    limit_client(&s, 2, false).await;
    let r = s
        .send(
            "POST",
            "/admin/public-routes",
            &[ADMIN],
            Some(json!({"route_key": "open", "client_name": CLIENT, "allowed_ops": ["fetch"]})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let public = || {
        s.send(
            "POST",
            "/public/open/fetch",
            &[],
            Some(json!({"table_name": "items", "columns": ["id"]})),
        )
    };
    assert_eq!(public().await.status, 200);
    assert_eq!(public().await.status, 200);
    let r = public().await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.headers.contains_key("retry-after"));
    assert!(!r.text().contains(CLIENT), "{}", r.text());
    // The same client's budget, spent: a body `db_name` is refused too.
    let r = s
        .send(
            "POST",
            "/gateway/sql",
            &[],
            Some(json!({"query": "SELECT 1", "driver": "postgresql", "db_name": CLIENT})),
        )
        .await;
    assert_eq!(r.status, 429, "{}", r.text());
    // And a header request.
    assert_eq!(read(&s).await.status, 429);
    let list = events(&s, &format!("client={CLIENT}"), |l| l.len() >= 3).await;
    assert!(
        list.iter().any(|e| e["route"] == "/gateway/fetch"),
        "{list:?}"
    );
    s.stop().await;
}

/// A large limit is drawn from Redis in leases of 64 tokens: 100 requests
/// cost two Redis trips (the shared counter stands at 128), all admitted.
#[tokio::test]
async fn a_large_limit_is_drawn_from_redis_in_leases() {
    let s = TestServer::start().await;
    items(&s).await;
    limit_client(&s, 1_000_000, false).await;
    for _ in 0..100 {
        let r = read(&s).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let url = std::env::var("REDIS_URL").expect("REDIS_URL (make test)");
    let client = deadpool_redis::redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = deadpool_redis::redis::cmd("KEYS")
        .arg(format!("athena:*:adm:c:{CLIENT}:3600:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    // Every test server has its own catalog, so its own namespace: find ours
    // by its count (other tests' keys hold small counts or other clients).
    let mut counts = Vec::new();
    for k in &keys {
        let n: u64 = deadpool_redis::redis::cmd("GET")
            .arg(k)
            .query_async(&mut conn)
            .await
            .unwrap();
        counts.push(n);
    }
    assert!(counts.contains(&128), "{keys:?} {counts:?}");
    s.stop().await;
}
