//! The Redis read cache: hits, invalidation by writes, bypass, isolation
//! between callers, and falling through to Postgres when Redis is down.

use crate::common;

use common::{TestServer, ADMIN_KEY, CLIENT};
use serde_json::{json, Value};
use std::time::Duration;

async fn cached_server() -> TestServer {
    let s = TestServer::start_with(|c| c.cache_ttl = Duration::from_secs(60)).await;
    assert!(
        std::env::var("REDIS_URL").is_ok(),
        "run through make test (Redis)"
    );
    s.tenant()
        .await
        .batch_execute(
            "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'a')",
        )
        .await
        .unwrap();
    s
}

async fn fetch(s: &TestServer, extra: &[(&str, &str)]) -> (String, Value) {
    let mut h = vec![("x-athena-client", CLIENT)];
    h.extend_from_slice(extra);
    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &h,
            Some(json!({"table_name": "items"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    (
        r.headers["x-athena-cache-outcome"]
            .to_str()
            .unwrap()
            .to_string(),
        r.json(),
    )
}

#[tokio::test]
async fn reads_are_cached_and_writes_invalidate() {
    let s = cached_server().await;
    let (first, v) = fetch(&s, &[]).await;
    assert_eq!(first, "miss");
    assert!(v["cache_key"].is_string());
    let (second, v2) = fetch(&s, &[]).await;
    assert_eq!(second, "hit");
    assert_eq!(v["data"], v2["data"]);

    // A write through the gateway makes the cached read unreachable.
    let r = s
        .send(
            "PUT",
            "/gateway/insert",
            &[("x-athena-client", CLIENT)],
            Some(json!({"table_name": "items", "insert_body": {"id": 2, "name": "b"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (outcome, v) = fetch(&s, &[]).await;
    assert_eq!(outcome, "miss");
    assert_eq!(v["data"].as_array().unwrap().len(), 2);

    // So does raw SQL, which may touch any table.
    assert_eq!(fetch(&s, &[]).await.0, "hit");
    let body = json!({"query": "DELETE FROM items WHERE id = 2"});
    assert_eq!(
        s.send(
            "POST",
            "/gateway/query",
            &[("x-athena-client", CLIENT)],
            Some(body)
        )
        .await
        .status,
        200
    );
    let (outcome, v) = fetch(&s, &[]).await;
    assert_eq!(
        (outcome.as_str(), v["data"].as_array().unwrap().len()),
        ("miss", 1)
    );

    assert_eq!(
        fetch(&s, &[("cache-control", "no-cache")]).await.0,
        "bypass"
    );
    s.stop().await;
}

#[tokio::test]
async fn callers_never_share_entries() {
    let s = cached_server().await;
    let admin = [("x-athena-key", ADMIN_KEY)];
    let mut keys = Vec::new();
    for name in ["one", "two"] {
        let r = s
            .send(
                "POST",
                "/admin/api-keys",
                &admin,
                Some(json!({"name": name, "rights": ["gateway.fetch.execute"]})),
            )
            .await;
        keys.push(r.json()["api_key"].as_str().unwrap().to_string());
    }
    s.send(
        "PUT",
        "/admin/api-key-config",
        &admin,
        Some(json!({"enforce_api_keys": true})),
    )
    .await;
    assert_eq!(fetch(&s, &[("x-athena-key", &keys[0])]).await.0, "miss");
    assert_eq!(fetch(&s, &[("x-athena-key", &keys[0])]).await.0, "hit");
    assert_eq!(
        fetch(&s, &[("x-athena-key", &keys[1])]).await.0,
        "miss",
        "another key has its own entries"
    );
    // Authorization runs before the cache: no key, no cached data.
    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &[("x-athena-client", CLIENT)],
            Some(json!({"table_name": "items"})),
        )
        .await;
    assert_eq!(r.status, 401);
    s.stop().await;
}

#[tokio::test]
async fn redis_down_falls_through_to_postgres() {
    let s = TestServer::start_with(|c| {
        c.cache_ttl = Duration::from_secs(60);
        c.redis_url = Some("redis://127.0.0.1:1/0".into());
    })
    .await;
    s.tenant()
        .await
        .batch_execute("CREATE TABLE items (id int PRIMARY KEY)")
        .await
        .unwrap();
    let (outcome, v) = fetch(&s, &[]).await;
    assert_eq!(outcome, "error");
    assert_eq!(v["data"], json!([]));
    s.stop().await;
}
