//! IP policy of API keys (issue 13): global lists over per-key rules,
//! forwarding headers only from trusted proxies, virgin lock-in under
//! concurrency, propagation to another replica, and bad input. Client
//! sockets are bound to 127.0.0.2–30 (`send_from`), so the server sees
//! those peers.

use crate::common;

use athena::auth::ip_policy::{ForwardHeader, TrustedProxies};
use common::{TestServer, ADMIN_KEY, CLIENT};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

const ADMIN: (&str, &str) = ("x-athena-key", ADMIN_KEY);

fn ip(n: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, n])
}

async fn setup() -> TestServer {
    let s = TestServer::start().await;
    s.tenant()
        .await
        .batch_execute("CREATE TABLE items (id int PRIMARY KEY)")
        .await
        .unwrap();
    s.enforce_keys(true).await;
    s
}

/// A fetch key with `extra` settings: (plaintext, id).
async fn key(s: &TestServer, extra: Value) -> (String, String) {
    let mut body = json!({"name": "ip", "rights": ["gateway.fetch.execute"]});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap());
    let r = s
        .send("POST", "/admin/api-keys", &[ADMIN], Some(body))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    (
        v["api_key"].as_str().unwrap().to_string(),
        v["record"]["id"].as_str().unwrap().to_string(),
    )
}

async fn fetch_from(s: &TestServer, from: u8, key: &str, extra: &[(&str, &str)]) -> u16 {
    let mut headers = vec![("x-athena-client", CLIENT), ("x-athena-key", key)];
    headers.extend_from_slice(extra);
    let r = s
        .send_from(
            ip(from),
            "POST",
            "/gateway/fetch",
            &headers,
            Some(json!({"table_name": "items"})),
        )
        .await;
    if r.status == 403 {
        let code = r.envelope()["code"].as_str().unwrap().to_string();
        assert_eq!(code, "ip_not_allowed", "{}", r.text());
    }
    r.status
}

async fn admin(s: &TestServer, method: &str, path: &str, body: Option<Value>) -> Value {
    let r = s.send(method, path, &[ADMIN], body).await;
    assert_eq!(r.status, 200, "{method} {path}: {}", r.text());
    r.json()
}

async fn policy(s: &TestServer, id: &str) -> Value {
    admin(s, "GET", &format!("/admin/api-keys/{id}/ip-policy"), None).await["data"].clone()
}

fn addrs(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["addr"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn global_lists_take_precedence_over_per_key_rules() {
    let s = setup().await;
    let (k, id) = key(&s, json!({"ip_whitelist": ["127.0.0.2"]})).await;
    assert_eq!(addrs(&policy(&s, &id).await["whitelist"]), ["127.0.0.2/32"]);
    assert_eq!(fetch_from(&s, 2, &k, &[]).await, 200);
    assert_eq!(fetch_from(&s, 3, &k, &[]).await, 403);

    // The global blacklist beats the key's whitelist.
    admin(
        &s,
        "POST",
        "/admin/ip-global-blacklist",
        Some(json!({"addr": "127.0.0.2"})),
    )
    .await;
    assert_eq!(fetch_from(&s, 2, &k, &[]).await, 403);
    // The transaction route is judged the same way.
    let r = s
        .send_from(
            ip(2),
            "POST",
            "/gateway/transaction",
            &[("x-athena-client", CLIENT), ("x-athena-key", k.as_str())],
            Some(json!({"operations": [{"kind": "fetch", "payload": {"table_name": "items"}}]})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    admin(
        &s,
        "DELETE",
        "/admin/ip-global-blacklist?addr=127.0.0.2",
        None,
    )
    .await;
    assert_eq!(fetch_from(&s, 2, &k, &[]).await, 200);
    // A rule scoped to another client does not apply.
    admin(
        &s,
        "POST",
        "/admin/ip-global-blacklist",
        Some(json!({"addr": "127.0.0.0/24", "client_name": "other"})),
    )
    .await;
    assert_eq!(fetch_from(&s, 2, &k, &[]).await, 200);

    // The global whitelist beats the key's whitelist and blacklist.
    admin(
        &s,
        "POST",
        "/admin/ip-global-whitelist",
        Some(json!({"addr": "127.0.0.3/32", "label": "office"})),
    )
    .await;
    assert_eq!(fetch_from(&s, 3, &k, &[]).await, 200);
    admin(
        &s,
        "POST",
        &format!("/admin/api-keys/{id}/ip-blacklist"),
        Some(json!({"addrs": ["127.0.0.3"]})),
    )
    .await;
    assert_eq!(fetch_from(&s, 3, &k, &[]).await, 200);
    let listed = admin(&s, "GET", "/admin/ip-global-whitelist", None).await;
    assert_eq!(listed["data"]["records"][0]["label"], "office");
    admin(
        &s,
        "DELETE",
        "/admin/ip-global-whitelist?addr=127.0.0.3",
        None,
    )
    .await;
    assert_eq!(fetch_from(&s, 3, &k, &[]).await, 403);
    // Removing the key's blacklist entry leaves the whitelist deciding.
    admin(
        &s,
        "DELETE",
        &format!("/admin/api-keys/{id}/ip-blacklist"),
        Some(json!({"addrs": ["127.0.0.3"]})),
    )
    .await;
    assert!(policy(&s, &id).await["blacklist"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(fetch_from(&s, 3, &k, &[]).await, 403);
    s.stop().await;
}

#[tokio::test]
async fn admin_key_skips_ip_rules() {
    let s = setup().await;
    let (k, _) = key(&s, json!({})).await;
    admin(
        &s,
        "POST",
        "/admin/ip-global-blacklist",
        Some(json!({"addr": "127.0.0.7"})),
    )
    .await;
    assert_eq!(fetch_from(&s, 7, &k, &[]).await, 403);
    assert_eq!(fetch_from(&s, 8, &k, &[]).await, 200);
    assert_eq!(fetch_from(&s, 7, ADMIN_KEY, &[]).await, 200);
    let r = s
        .send_from(ip(7), "GET", "/admin/ip-global-blacklist", &[ADMIN], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    s.stop().await;
}

#[tokio::test]
async fn public_routes_are_judged_against_the_routes_client() {
    let s = setup().await;
    let (k, _) = key(&s, json!({})).await;
    let r = s
        .send(
            "POST",
            "/admin/public-routes",
            &[ADMIN],
            Some(json!({"route_key": "shop", "client_name": CLIENT, "allowed_ops": ["fetch"]})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let public = |from: u8| {
        let k = k.clone();
        let s = &s;
        async move {
            s.send_from(
                ip(from),
                "POST",
                "/public/shop/fetch",
                &[("x-athena-key", k.as_str())],
                Some(json!({"table_name": "items"})),
            )
            .await
        }
    };
    assert_eq!(public(12).await.status, 200);
    // A global rule for the route's client applies, though the request
    // names no client.
    admin(
        &s,
        "POST",
        "/admin/ip-global-blacklist",
        Some(json!({"addr": "127.0.0.12", "client_name": CLIENT})),
    )
    .await;
    let r = public(12).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.envelope()["code"], "ip_not_allowed");
    assert_eq!(public(13).await.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn forwarding_headers_count_only_from_trusted_proxies() {
    let s = setup().await;
    let (k, _) = key(&s, json!({"ip_whitelist": ["203.0.113.9"]})).await;
    let spoof = [("x-forwarded-for", "203.0.113.9")];
    // Not a trusted proxy: the header is ignored.
    assert_eq!(fetch_from(&s, 4, &k, &spoof).await, 403);
    let behind_proxy = s
        .replica_with(|c| c.trusted_proxies = TrustedProxies::parse("127.0.0.4/32").unwrap())
        .await;
    assert_eq!(fetch_from(&behind_proxy, 4, &k, &spoof).await, 200);
    // Only the configured header (X-Forwarded-For by default) is read: a
    // `Forwarded` or `X-Real-IP` the client slipped past the proxy beside
    // the proxy's own X-Forwarded-For does not choose the address.
    for (name, value) in [
        ("forwarded", "for=203.0.113.9"),
        ("x-real-ip", "203.0.113.9"),
    ] {
        let mixed = [(name, value), ("x-forwarded-for", "198.51.100.1")];
        assert_eq!(
            fetch_from(&behind_proxy, 4, &k, &mixed).await,
            403,
            "{name}"
        );
        assert_eq!(
            fetch_from(&behind_proxy, 4, &k, &[(name, value)]).await,
            403,
            "{name}"
        );
    }
    let rfc_proxy = s
        .replica_with(|c| {
            c.trusted_proxies = TrustedProxies::parse("127.0.0.4/32")
                .unwrap()
                .reading(ForwardHeader::Forwarded)
        })
        .await;
    assert_eq!(
        fetch_from(&rfc_proxy, 4, &k, &[("forwarded", "for=203.0.113.9")]).await,
        200
    );
    assert_eq!(fetch_from(&rfc_proxy, 4, &k, &spoof).await, 403);
    rfc_proxy.stop().await;
    // A spoofed leftmost hop behind the proxy is not the client.
    assert_eq!(
        fetch_from(
            &behind_proxy,
            4,
            &k,
            &[("x-forwarded-for", "203.0.113.9, 198.51.100.1")]
        )
        .await,
        403
    );
    // Another peer's header is still ignored.
    assert_eq!(fetch_from(&behind_proxy, 5, &k, &spoof).await, 403);
    behind_proxy.stop().await;
    s.stop().await;
}

#[tokio::test]
async fn lock_in_holds_the_cap_under_concurrent_first_requests() {
    let s = setup().await;
    let (k, id) = key(&s, json!({"virgin_mode": true, "max_whitelist_ips": 2})).await;
    let calls = (0..200u32).map(|i| {
        let from = 11 + (i % 20) as u8;
        let k = k.clone();
        let s = &s;
        async move { (from, fetch_from(s, from, &k, &[]).await) }
    });
    let results = futures_util::future::join_all(calls).await;
    let mut by_ip: HashMap<u8, (u32, u32)> = HashMap::new();
    for (from, status) in results {
        let e = by_ip.entry(from).or_default();
        match status {
            200 => e.0 += 1,
            403 => e.1 += 1,
            other => panic!("status {other} from 127.0.0.{from}"),
        }
    }
    let admitted: Vec<u8> = by_ip
        .iter()
        .filter(|(_, (ok, _))| *ok > 0)
        .map(|(ip, _)| *ip)
        .collect();
    assert_eq!(admitted.len(), 2, "{by_ip:?}");
    let p = policy(&s, &id).await;
    assert_eq!(p["policy"]["virgin_resolved"], true, "{p}");
    let mut want: Vec<String> = admitted.iter().map(|n| format!("127.0.0.{n}/32")).collect();
    want.sort();
    assert_eq!(addrs(&p["whitelist"]), want);
    let seen = admin(&s, "GET", &format!("/admin/api-keys/{id}/ip-seen"), None).await;
    let records = seen["data"]["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{seen}");
    assert!(records.iter().all(|r| r["locked_in"] == true));
    let hits: i64 = records
        .iter()
        .map(|r| r["hit_count"].as_i64().unwrap())
        .sum();
    let oks: u32 = by_ip.values().map(|(ok, _)| ok).sum();
    // Every admitted request before the lock-in was counted.
    assert!(hits >= 2 && hits <= i64::from(oks), "{hits} {oks}");
    s.stop().await;
}

#[tokio::test]
async fn virgin_key_learns_locks_and_learns_again_after_reset() {
    let s = setup().await;
    let (k, id) = key(&s, json!({"virgin_mode": true, "max_whitelist_ips": 2})).await;
    let p = policy(&s, &id).await;
    assert_eq!(p["policy"]["virgin_mode"], true);
    assert_eq!(p["policy"]["virgin_resolved"], false);
    assert_eq!(p["policy"]["api_key_id"], id.as_str());
    assert_eq!(fetch_from(&s, 2, &k, &[]).await, 200);
    assert_eq!(fetch_from(&s, 2, &k, &[]).await, 200);
    assert_eq!(policy(&s, &id).await["policy"]["virgin_resolved"], false);
    assert_eq!(fetch_from(&s, 3, &k, &[]).await, 200);
    let p = policy(&s, &id).await;
    assert_eq!(p["policy"]["virgin_resolved"], true, "{p}");
    assert!(p["policy"]["virgin_resolved_at"].is_string());
    assert_eq!(p["policy"]["virgin_request_count"], 3);
    assert_eq!(addrs(&p["whitelist"]), ["127.0.0.2/32", "127.0.0.3/32"]);
    assert_eq!(fetch_from(&s, 4, &k, &[]).await, 403);
    assert_eq!(fetch_from(&s, 2, &k, &[]).await, 200);
    let seen = admin(&s, "GET", &format!("/admin/api-keys/{id}/ip-seen"), None).await;
    let records = seen["data"]["records"].as_array().unwrap();
    // Newest first: .3 was seen last.
    assert_eq!(records[0]["addr"], "127.0.0.3");
    assert_eq!(records[1]["hit_count"], 2);
    let page = admin(
        &s,
        "GET",
        &format!("/admin/api-keys/{id}/ip-seen?limit=1&offset=1"),
        None,
    )
    .await;
    assert_eq!(page["data"]["records"][0]["addr"], "127.0.0.2");

    let p = admin(
        &s,
        "POST",
        &format!("/admin/api-keys/{id}/virgin/reset"),
        Some(json!({"clear_seen": true})),
    )
    .await;
    assert_eq!(p["data"]["policy"]["virgin_resolved"], false);
    assert_eq!(p["data"]["policy"]["virgin_request_count"], 0);
    let seen = admin(&s, "GET", &format!("/admin/api-keys/{id}/ip-seen"), None).await;
    assert!(seen["data"]["records"].as_array().unwrap().is_empty());
    assert!(policy(&s, &id).await["whitelist"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(fetch_from(&s, 4, &k, &[]).await, 200);
    let seen = admin(&s, "GET", &format!("/admin/api-keys/{id}/ip-seen"), None).await;
    assert_eq!(seen["data"]["records"][0]["addr"], "127.0.0.4");

    // Promote locks in what was seen so far.
    let p = admin(
        &s,
        "POST",
        &format!("/admin/api-keys/{id}/virgin/promote"),
        None,
    )
    .await;
    assert_eq!(p["data"]["policy"]["virgin_resolved"], true);
    assert_eq!(addrs(&p["data"]["whitelist"]), ["127.0.0.4/32"]);
    assert_eq!(fetch_from(&s, 5, &k, &[]).await, 403);
    assert_eq!(fetch_from(&s, 4, &k, &[]).await, 200);

    // The request threshold: locked after 3 requests, whatever the cap.
    let (k2, id2) = key(
        &s,
        json!({"virgin_mode": true, "virgin_until_n_requests": 3}),
    )
    .await;
    for _ in 0..3 {
        assert_eq!(fetch_from(&s, 6, &k2, &[]).await, 200);
    }
    assert_eq!(
        addrs(&policy(&s, &id2).await["whitelist"]),
        ["127.0.0.6/32"]
    );
    assert_eq!(fetch_from(&s, 7, &k2, &[]).await, 403);
    s.stop().await;
}

#[tokio::test]
async fn a_blacklist_added_on_one_replica_blocks_on_another_within_a_second() {
    let a = setup().await;
    let b = a.replica_with(|_| {}).await;
    let (k, id) = key(&a, json!({})).await;
    // B has the key and the (empty) rules cached.
    assert_eq!(fetch_from(&b, 9, &k, &[]).await, 200);
    assert_eq!(fetch_from(&b, 9, &k, &[]).await, 200);
    admin(
        &a,
        "POST",
        &format!("/admin/api-keys/{id}/ip-blacklist"),
        Some(json!({"addrs": ["127.0.0.9"]})),
    )
    .await;
    let started = Instant::now();
    while fetch_from(&b, 9, &k, &[]).await != 403 {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "B still admits 127.0.0.9"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // And a global rule likewise.
    assert_eq!(fetch_from(&b, 10, &k, &[]).await, 200);
    admin(
        &a,
        "POST",
        "/admin/ip-global-blacklist",
        Some(json!({"addr": "127.0.0.10"})),
    )
    .await;
    let started = Instant::now();
    while fetch_from(&b, 10, &k, &[]).await != 403 {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "B still admits 127.0.0.10"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn bad_input_is_a_400_and_stores_nothing() {
    let s = setup().await;
    let (_, id) = key(&s, json!({"max_whitelist_ips": 2})).await;
    let path = format!("/admin/api-keys/{id}/ip-whitelist");
    let send = |method: &'static str, path: String, body: Option<Value>| {
        let s = &s;
        async move { s.send(method, &path, &[ADMIN], body).await }
    };
    let r = send(
        "POST",
        path.clone(),
        Some(json!({"addrs": ["10.0.0.1", "10.0.0.300"]})),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.envelope()["error"].as_str().unwrap().contains("addrs[1]"));
    assert!(policy(&s, &id).await["whitelist"]
        .as_array()
        .unwrap()
        .is_empty());
    let r = send("POST", path.clone(), Some(json!({"addrs": ["10.0.0.1/8"]}))).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let many: Vec<String> = (0..1001)
        .map(|i| format!("10.{}.{}.1", i / 256, i % 256))
        .collect();
    let r = send("POST", path.clone(), Some(json!({"addrs": many}))).await;
    assert_eq!(r.status, 400, "{}", r.text());
    r.envelope();
    // Over the cap.
    let r = send(
        "POST",
        path.clone(),
        Some(json!({"addrs": ["10.0.0.1", "10.0.0.2", "10.0.0.3"]})),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.envelope()["code"], "ip_whitelist_cap_exceeded");
    assert!(policy(&s, &id).await["whitelist"]
        .as_array()
        .unwrap()
        .is_empty());
    // Idempotent adds count once against the cap.
    for _ in 0..2 {
        let r = send(
            "POST",
            path.clone(),
            Some(json!({"addrs": ["10.0.0.1", "10.0.0.0/24"]})),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let r = send("POST", path.clone(), Some(json!({"addrs": ["10.0.0.9"]}))).await;
    assert_eq!(r.envelope()["code"], "ip_whitelist_cap_exceeded");
    // Ids.
    let r = send("GET", "/admin/api-keys/not-a-uuid/ip-policy".into(), None).await;
    assert_eq!(r.status, 400, "{}", r.text());
    r.envelope();
    let unknown = uuid::Uuid::new_v4();
    for (method, path, body) in [
        ("GET", format!("/admin/api-keys/{unknown}/ip-policy"), None),
        ("GET", format!("/admin/api-keys/{unknown}/ip-seen"), None),
        (
            "POST",
            format!("/admin/api-keys/{unknown}/ip-blacklist"),
            Some(json!({"addrs": ["10.0.0.1"]})),
        ),
        (
            "POST",
            format!("/admin/api-keys/{unknown}/virgin/promote"),
            None,
        ),
    ] {
        let r = send(method, path.clone(), body).await;
        assert_eq!(r.status, 404, "{method} {path}: {}", r.text());
        r.envelope();
    }
    // Not a virgin key.
    let r = send(
        "POST",
        format!("/admin/api-keys/{id}/virgin/reset"),
        Some(json!({})),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    // Global lists.
    let r = send(
        "POST",
        "/admin/ip-global-whitelist".into(),
        Some(json!({"addr": "nope"})),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = send(
        "POST",
        "/admin/ip-global-blacklist".into(),
        Some(json!({"addr": "10.0.0.1", "client_name": "Bad Name"})),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = send(
        "DELETE",
        "/admin/ip-global-blacklist?addr=10.9.9.9".into(),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "absent is fine: {}", r.text());
    assert_eq!(r.json()["data"]["deleted"], 0);
    // Key creation.
    for bad in [
        json!({"virgin_mode": true, "virgin_until_n_requests": 0, "max_whitelist_ips": 0}),
        json!({"ip_whitelist": ["10.0.0.1", "junk"]}),
        json!({"ip_whitelist": ["10.0.0.1", "10.0.0.2"], "max_whitelist_ips": 1}),
    ] {
        let mut body = json!({"name": "bad"});
        body.as_object_mut()
            .unwrap()
            .extend(bad.as_object().cloned().unwrap());
        let r = send("POST", "/admin/api-keys".into(), Some(body)).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        r.envelope();
    }
    let keys = admin(&s, "GET", "/admin/api-keys", None).await;
    assert_eq!(
        keys["api_keys"].as_array().unwrap().len(),
        1,
        "nothing stored"
    );
    // Without a token the routes are closed.
    let r = s
        .send("GET", &format!("/admin/api-keys/{id}/ip-policy"), &[], None)
        .await;
    assert_eq!(r.status, 401);
    s.stop().await;
}
