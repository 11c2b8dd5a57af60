//! Events out and signed webhooks (issue 15, `src/events/`): a local
//! receiver on 127.0.0.1 (allow-listed for the outbound policy) records
//! what it is sent and answers from a script. Proves signed delivery and
//! retries under one `webhook-id`, the URL checks at save, secrets never
//! answered, the admin routes, the `test` route (slow and huge answers
//! bounded), delivery once across two replicas, a lease takeover, no
//! catalog statement for writes nobody subscribed to, and — with the real
//! binary — events queued at `kill -9` delivered after the restart.

use crate::common::{
    self, allow, free_port, psql, wait_ready, with_db, TestServer, ADMIN_KEY, CLIENT,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const C: (&str, &str) = ("X-Athena-Client", CLIENT);
const ADMIN: (&str, &str) = ("X-Athena-Key", ADMIN_KEY);
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Got {
    headers: http::HeaderMap,
    body: Bytes,
}

impl Got {
    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// The local receiver: answers the scripted statuses in turn (then 200),
/// after `delay`, with a body of `answer_bytes` bytes.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Got>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
    delay: Arc<Mutex<Duration>>,
    answer_bytes: Arc<Mutex<usize>>,
    /// When set, the body of every answer.
    answer: Arc<Mutex<Option<Bytes>>>,
}

impl Receiver {
    /// Starts it; its URL.
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let me = me.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let me = me.clone();
                            async move {
                                let headers = req.headers().clone();
                                let body = req.into_body().collect().await.unwrap().to_bytes();
                                me.got.lock().unwrap().push(Got { headers, body });
                                let status = me.script.lock().unwrap().pop_front().unwrap_or(200);
                                let delay = *me.delay.lock().unwrap();
                                tokio::time::sleep(delay).await;
                                let size = *me.answer_bytes.lock().unwrap();
                                let fixed = me.answer.lock().unwrap().clone();
                                let answer = if let Some(fixed) = fixed {
                                    fixed
                                } else if size == 0 {
                                    Bytes::from_static(b"{\"ok\":true}")
                                } else {
                                    Bytes::from(vec![b'x'; size])
                                };
                                Ok::<_, std::convert::Infallible>(
                                    hyper::Response::builder()
                                        .status(status)
                                        .body(Full::new(answer))
                                        .unwrap(),
                                )
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        format!("http://{addr}/hook")
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    fn script(&self, statuses: &[u16]) {
        self.script.lock().unwrap().extend(statuses);
    }

    /// Waits until it got at least `n` requests.
    async fn wait_for(&self, n: usize, within: Duration) -> Vec<Got> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.got();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver got {} of {n} requests",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// A server whose outbound policy lets it reach 127.0.0.1 (the receiver).
async fn server() -> TestServer {
    let s = TestServer::start_with(|c| allow(c, "127.0.0.1")).await;
    items(&s).await;
    s
}

async fn items(s: &TestServer) {
    s.tenant()
        .await
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS items (id serial PRIMARY KEY, name text, qty int);
             CREATE TABLE IF NOT EXISTS other (id serial PRIMARY KEY, name text)",
        )
        .await
        .unwrap();
}

async fn create(s: &TestServer, body: Value) -> Value {
    let r = s
        .send("POST", "/admin/webhooks", &[ADMIN], Some(body))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["status"], "success", "{v}");
    v["data"].clone()
}

fn hook(url: &str) -> Value {
    json!({
        "name": "items hook", "client_name": CLIENT, "route_key": "gateway.insert",
        "table_name": "items", "url": url, "secret": SECRET, "max_attempts": 5,
        "timeout_ms": 2000, "enabled": true,
    })
}

async fn insert(s: &TestServer, name: &str) {
    let r = s
        .send(
            "PUT",
            "/gateway/insert",
            &[C],
            Some(json!({"table_name": "items", "insert_body": {"name": name, "qty": 1}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Verifies a Standard Webhooks signature the way a receiver would.
fn verify(secret: &str, got: &Got) -> bool {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).unwrap();
    let signed = format!(
        "{}.{}.",
        got.header("webhook-id"),
        got.header("webhook-timestamp")
    );
    mac.update(signed.as_bytes());
    mac.update(&got.body);
    let want = format!("v1,{}", b64.encode(mac.finalize().into_bytes()));
    got.header("webhook-signature")
        .split(' ')
        .any(|s| s == want)
}

async fn metric(s: &TestServer, series: &str) -> f64 {
    let text = s.get("/metrics").await.text();
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{series} not in /metrics"))
}

async fn outbox_statuses(s: &TestServer) -> Vec<(String, i32)> {
    psql(&s.catalog_url)
        .await
        .query(
            "SELECT status, attempts FROM athena_outbox ORDER BY created_at",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test]
async fn insert_is_delivered_signed_and_retried_under_one_webhook_id() {
    let s = server().await;
    let rx = Receiver::default();
    rx.script(&[500, 500, 200]);
    let url = rx.start().await;
    let created = create(&s, hook(&url)).await;
    let id = created["id"].as_i64().unwrap();
    insert(&s, "a").await;

    let got = rx.wait_for(3, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 3);
    let event_id = got[0].header("webhook-id");
    assert!(!event_id.is_empty());
    for g in &got {
        assert_eq!(g.header("webhook-id"), event_id, "one id across retries");
        assert_eq!(g.header("content-type"), "application/json");
        assert!(verify(SECRET, g), "signature verifies: {:?}", g.headers);
        assert!(g.headers.get("x-athena-key").is_none());
        assert!(g.headers.get("x-athena-client").is_none());
        let e = g.json();
        assert_eq!(e["event_id"], event_id.as_str());
        assert_eq!(e["route_key"], "gateway.insert");
        assert_eq!(e["client_name"], CLIENT);
        assert_eq!(e["table_name"], "items");
        assert!(e["occurred_at"].is_string());
        assert_eq!(e["data"]["rows"][0]["name"], "a");
        assert_eq!(e["data"]["affected"], 1);
    }
    // A tampered body does not verify.
    let mut bad = got[2].clone();
    bad.body = Bytes::from(bad.body.iter().rev().copied().collect::<Vec<u8>>());
    assert!(!verify(SECRET, &bad));

    // The log: three attempts of one event, 500, 500, 200.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if outbox_statuses(&s).await == [("completed".to_string(), 3)] {
            break;
        }
        assert!(Instant::now() < deadline, "{:?}", outbox_statuses(&s).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = s
        .send(
            "GET",
            &format!("/admin/webhooks/{id}/deliveries"),
            &[ADMIN],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["data"]["total"], 3, "{v}");
    let rows = v["data"]["deliveries"].as_array().unwrap();
    let codes: Vec<i64> = rows
        .iter()
        .rev()
        .map(|d| d["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [500, 500, 200]);
    let attempts: Vec<i64> = rows
        .iter()
        .rev()
        .map(|d| d["attempt"].as_i64().unwrap())
        .collect();
    assert_eq!(attempts, [1, 2, 3]);
    for d in rows {
        assert_eq!(d["event_id"], event_id.as_str());
        assert!(d["duration_ms"].is_number());
    }
    assert!(rows[2]["error"].as_str().unwrap().contains("500"));
    assert!(rows[0]["error"].is_null());
    s.stop().await;
}

#[tokio::test]
async fn failing_receivers_end_failed_after_max_attempts() {
    let s = server().await;
    let rx = Receiver::default();
    rx.script(&[503, 503, 503, 503]);
    let url = rx.start().await;
    let mut body = hook(&url);
    body["max_attempts"] = json!(2);
    create(&s, body).await;
    insert(&s, "x").await;
    rx.wait_for(2, Duration::from_secs(20)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while outbox_statuses(&s).await != [("failed".to_string(), 2)] {
        assert!(Instant::now() < deadline, "{:?}", outbox_statuses(&s).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.got().len(), 2, "no attempt after max_attempts");
    s.stop().await;
}

#[tokio::test]
async fn urls_are_checked_at_save() {
    // Not allow-listed: loopback and metadata are refused.
    let s = TestServer::start().await;
    for url in [
        "http://169.254.169.254/latest/meta-data",
        "http://127.0.0.1:9/hook",
        "http://[::1]/hook",
        "http://2130706433/hook",
        "http://10.1.2.3/hook",
        "http://localhost/hook",
        "http://user:pw@example.com/hook",
        "ftp://example.com/hook",
        "not a url",
    ] {
        let r = s
            .send("POST", "/admin/webhooks", &[ADMIN], Some(hook(url)))
            .await;
        assert_eq!(r.status, 400, "{url}: {}", r.text());
        let e = r.envelope();
        assert!(e["error"].as_str().unwrap().starts_with("url"), "{e}");
    }
    let none: i64 = psql(&s.catalog_url)
        .await
        .query_one("SELECT count(*) FROM athena_webhooks", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(none, 0);
    // A public name is accepted; a PATCH to a refused address is not.
    let saved = create(&s, hook("https://example.com/hook")).await;
    let r = s
        .send(
            "PATCH",
            &format!("/admin/webhooks/{}", saved["id"]),
            &[ADMIN],
            Some(json!({"url": "http://169.254.169.254/"})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    s.stop().await;
}

#[tokio::test]
async fn the_policy_is_checked_again_at_connect() {
    // Saved while 127.0.0.1 was allowed; a replica whose allow list no
    // longer has it refuses to connect (nothing reaches the receiver).
    let s = server().await;
    let rx = Receiver::default();
    let url = rx.start().await;
    let saved = create(&s, hook(&url)).await;
    let strict = s.replica_with(|c| c.outbound_allow.clear()).await;
    let r = strict
        .send(
            "POST",
            &format!("/admin/webhooks/{}/test", saved["id"]),
            &[ADMIN],
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["data"]["delivered"], false, "{v}");
    assert!(
        v["data"]["attempt"]["error"]
            .as_str()
            .unwrap()
            .contains("ATHENA_OUTBOUND_ALLOW"),
        "{v}"
    );
    assert!(rx.got().is_empty(), "nothing reached the receiver");
    strict.stop().await;
    s.stop().await;
}

#[tokio::test]
async fn secrets_are_never_answered() {
    let s = server().await;
    let mut body = hook("https://example.com/hook");
    body["headers"] = json!({"Authorization": "Bearer hidden-token-value", "X-Team": "blue"});
    let saved = create(&s, body).await;
    let id = saved["id"].as_i64().unwrap();
    assert_eq!(saved["has_secret"], true);
    assert_eq!(saved["headers"]["authorization"], "***");
    assert_eq!(saved["headers"]["x-team"], "blue");
    let secret_b64 = SECRET.trim_start_matches("whsec_");
    let mut answers = vec![serde_json::to_string(&saved).unwrap()];
    for (method, path, b) in [
        ("GET", format!("/admin/webhooks/{id}"), None),
        ("GET", "/admin/webhooks".to_string(), None),
        (
            "PATCH",
            format!("/admin/webhooks/{id}"),
            Some(json!({"name": "renamed"})),
        ),
        ("GET", format!("/admin/webhooks/{id}/deliveries"), None),
    ] {
        let r = s.send(method, &path, &[ADMIN], b).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        answers.push(r.text());
    }
    for a in &answers {
        assert!(!a.contains(secret_b64), "secret in {a}");
        assert!(!a.contains("hidden-token-value"), "header secret in {a}");
    }
    // Sealed at rest.
    let sealed: Vec<u8> = psql(&s.catalog_url)
        .await
        .query_one("SELECT secret FROM athena_webhooks WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    assert!(!sealed
        .windows(secret_b64.len())
        .any(|w| w == secret_b64.as_bytes()));
    // The admin key is never stored as a header.
    let r = s
        .send(
            "PATCH",
            &format!("/admin/webhooks/{id}"),
            &[ADMIN],
            Some(json!({"headers": {"x-forward": ADMIN_KEY}})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    // `secret: null` removes it.
    let r = s
        .send(
            "PATCH",
            &format!("/admin/webhooks/{id}"),
            &[ADMIN],
            Some(json!({"secret": null})),
        )
        .await;
    assert_eq!(r.json()["data"]["has_secret"], false);
    s.stop().await;
}

#[tokio::test]
async fn admin_routes_create_list_update_and_delete() {
    let s = server().await;
    let r = s
        .send("GET", "/admin/webhooks/events", &[ADMIN], None)
        .await;
    assert_eq!(r.status, 200);
    let events = r.json()["data"]["events"].as_array().unwrap().clone();
    for key in [
        "gateway.insert",
        "gateway.upsert",
        "rest.insert",
        "management.tables.create",
        "backup.completed",
    ] {
        let e = events
            .iter()
            .find(|e| e["route_key"] == key)
            .unwrap_or_else(|| panic!("{key}"));
        assert!(e["title"].is_string() && e["description"].is_string());
    }
    // Defaults, required fields, bad values.
    let a = create(&s, json!({"name": "a", "client_name": CLIENT, "route_key": "gateway.insert", "url": "https://example.com/a"})).await;
    assert_eq!(a["enabled"], true);
    assert_eq!(a["timeout_ms"], 5000);
    assert_eq!(a["max_attempts"], 5);
    assert_eq!(a["table_name"], Value::Null);
    assert_eq!(a["has_secret"], false);
    for bad in [
        json!({"client_name": CLIENT, "route_key": "gateway.insert", "url": "https://example.com"}),
        json!({"name": "b", "client_name": "nobody", "route_key": "gateway.insert", "url": "https://example.com"}),
        json!({"name": "b", "client_name": CLIENT, "route_key": "gateway.nope", "url": "https://example.com"}),
        json!({"name": "b", "client_name": CLIENT, "route_key": "gateway.insert", "url": "https://example.com", "timeout_ms": 10001}),
        json!({"name": "b", "client_name": CLIENT, "route_key": "gateway.insert", "url": "https://example.com", "max_attempts": 11}),
        json!({"name": "b", "client_name": CLIENT, "route_key": "gateway.insert", "url": "https://example.com", "secret": "short"}),
    ] {
        let r = s
            .send("POST", "/admin/webhooks", &[ADMIN], Some(bad.clone()))
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        r.envelope();
    }
    let b = create(&s, json!({"name": "b", "client_name": CLIENT, "routeKey": "rest.insert", "url": "https://example.com/b", "timeoutMs": 10000, "maxAttempts": 10})).await;
    assert_eq!(b["route_key"], "rest.insert");
    assert_eq!(b["timeout_ms"], 10000);
    // POST upserts by id.
    let up = create(&s, json!({"id": b["id"], "name": "b2", "client_name": CLIENT, "route_key": "rest.update", "url": "https://example.com/b2"})).await;
    assert_eq!(up["id"], b["id"]);
    assert_eq!(up["name"], "b2");
    assert_eq!(up["timeout_ms"], 10000, "fields not given are kept");
    let r = s
        .send(
            "POST",
            "/admin/webhooks",
            &[ADMIN],
            Some(json!({"id": 999999, "name": "x"})),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    // List, filter, page.
    let r = s
        .send("GET", "/admin/webhooks?limit=1&offset=1", &[ADMIN], None)
        .await;
    let v = r.json();
    assert_eq!(v["data"]["total"], 2, "{v}");
    assert_eq!(v["data"]["webhooks"].as_array().unwrap().len(), 1);
    assert_eq!(v["data"]["webhooks"][0]["id"], b["id"]);
    let r = s
        .send("GET", "/admin/webhooks?client_name=nobody", &[ADMIN], None)
        .await;
    assert_eq!(r.json()["data"]["total"], 0);
    assert_eq!(r.json()["data"]["webhooks"], json!([]));
    let r = s
        .send("GET", "/admin/webhooks?limit=0", &[ADMIN], None)
        .await;
    assert_eq!(r.status, 400);
    // PATCH, read back.
    let r = s
        .send(
            "PATCH",
            &format!("/admin/webhooks/{}", a["id"]),
            &[ADMIN],
            Some(json!({"enabled": false, "table_name": "items"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s
        .send(
            "GET",
            &format!("/admin/webhooks/{}", a["id"]),
            &[ADMIN],
            None,
        )
        .await;
    assert_eq!(r.json()["data"]["enabled"], false);
    assert_eq!(r.json()["data"]["table_name"], "items");
    // Unknown ids, DELETE.
    for (m, p) in [
        ("GET", "/admin/webhooks/424242"),
        ("DELETE", "/admin/webhooks/424242"),
        ("GET", "/admin/webhooks/424242/deliveries"),
    ] {
        let r = s.send(m, p, &[ADMIN], None).await;
        assert_eq!(r.status, 404, "{m} {p}");
        r.envelope();
    }
    let r = s
        .send(
            "PATCH",
            "/admin/webhooks/424242",
            &[ADMIN],
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = s
        .send(
            "POST",
            "/admin/webhooks/424242/test",
            &[ADMIN],
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = s
        .send(
            "DELETE",
            &format!("/admin/webhooks/{}", a["id"]),
            &[ADMIN],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let r = s
        .send(
            "GET",
            &format!("/admin/webhooks/{}", a["id"]),
            &[ADMIN],
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    // Admin key required.
    let r = s.send("GET", "/admin/webhooks", &[], None).await;
    assert_eq!(r.status, 401);
    s.stop().await;
}

#[tokio::test]
async fn test_route_delivers_now_and_bounds_slow_and_huge_answers() {
    let s = server().await;
    let rx = Receiver::default();
    let url = rx.start().await;
    let saved = create(&s, hook(&url)).await;
    let path = format!("/admin/webhooks/{}/test", saved["id"]);
    let r = s.send("POST", &path, &[ADMIN], Some(json!({}))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["data"]["delivered"], true, "{v}");
    assert_eq!(v["data"]["attempt"]["status_code"], 200);
    assert_eq!(v["data"]["attempt"]["test"], true);
    assert_eq!(v["data"]["attempt"]["response"], "{\"ok\":true}");
    let got = rx.got();
    assert_eq!(got.len(), 1);
    assert!(verify(SECRET, &got[0]));
    assert_eq!(got[0].json()["data"]["test"], true);
    assert_eq!(
        got[0].header("webhook-id"),
        v["data"]["event"]["event_id"].as_str().unwrap()
    );

    // A huge answer: delivered, not kept.
    *rx.answer_bytes.lock().unwrap() = 4 << 20;
    let v = s
        .send("POST", &path, &[ADMIN], Some(json!({})))
        .await
        .json();
    assert_eq!(v["data"]["delivered"], true, "{v}");
    assert_eq!(v["data"]["attempt"]["response"], Value::Null);
    *rx.answer_bytes.lock().unwrap() = 0;

    // A slow receiver: cut at timeout_ms.
    let r = s
        .send(
            "PATCH",
            &format!("/admin/webhooks/{}", saved["id"]),
            &[ADMIN],
            Some(json!({"timeout_ms": 300})),
        )
        .await;
    assert_eq!(r.status, 200);
    *rx.delay.lock().unwrap() = Duration::from_secs(5);
    let started = Instant::now();
    let v = s
        .send(
            "POST",
            &path,
            &[ADMIN],
            Some(json!({"data": {"sample": 1}})),
        )
        .await
        .json();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(v["data"]["delivered"], false, "{v}");
    assert!(
        v["data"]["attempt"]["error"]
            .as_str()
            .unwrap()
            .contains("300 ms"),
        "{v}"
    );
    assert_eq!(v["data"]["event"]["data"]["sample"], 1);
    let r = s
        .send(
            "GET",
            &format!("/admin/webhooks/{}/deliveries", saved["id"]),
            &[ADMIN],
            None,
        )
        .await;
    assert_eq!(r.json()["data"]["total"], 3);
    s.stop().await;
}

#[tokio::test]
async fn rest_writes_and_filters_pick_their_webhooks() {
    let s = server().await;
    let rx = Receiver::default();
    let url = rx.start().await;
    let mut rest = hook(&url);
    rest["route_key"] = json!("rest.insert");
    rest["name"] = json!("rest");
    create(&s, rest).await;
    let mut upd = hook(&url);
    upd["route_key"] = json!("gateway.update");
    upd["table_name"] = json!("other");
    create(&s, upd).await;
    // Not matching: a gateway insert (no gateway.insert hook), an update
    // of `items` (the update hook wants `other`).
    insert(&s, "g").await;
    let r = s
        .send("POST", "/gateway/update", &[C], Some(json!({"table_name": "items", "update_body": {"qty": 2}, "conditions": [{"eq_column": "name", "eq_value": "g"}]})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Matching: a REST insert.
    let r = s
        .send(
            "POST",
            "/rest/v1/items",
            &[C, ("Prefer", "return=minimal")],
            Some(json!({"name": "r"})),
        )
        .await;
    assert!(matches!(r.status, 201 | 204), "{}", r.text());
    let got = rx.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].json()["route_key"], "rest.insert");
    assert_eq!(got[0].json()["data"]["rows"][0]["name"], "r");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(rx.got().len(), 1, "only the matching write was delivered");
    s.stop().await;
}

#[tokio::test]
async fn a_write_nobody_subscribed_to_makes_no_catalog_statement() {
    let s = server().await;
    const LOADS: &str = "athena_events_catalog_statements_total{statement=\"index_load\"}";
    const INSERTS: &str = "athena_events_catalog_statements_total{statement=\"outbox_insert\"}";
    insert(&s, "warm").await; // loads the (empty) index once
    let (loads, inserts) = (metric(&s, LOADS).await, metric(&s, INSERTS).await);
    assert_eq!(loads, 1.0);
    assert_eq!(inserts, 0.0);
    for i in 0..5 {
        insert(&s, &format!("n{i}")).await;
    }
    assert_eq!(metric(&s, LOADS).await, loads, "no index load per write");
    assert_eq!(metric(&s, INSERTS).await, 0.0, "no outbox insert");
    assert_eq!(metric(&s, "athena_events_published_total").await, 6.0);
    // A webhook on another table: the index is reloaded once, still no
    // outbox insert for `items`.
    let mut other = hook("https://example.com/hook");
    other["table_name"] = json!("other");
    create(&s, other).await;
    for i in 0..3 {
        insert(&s, &format!("m{i}")).await;
    }
    // Once for the local invalidation, once more if the change
    // notification arrived after the first of these writes.
    let after = metric(&s, LOADS).await;
    assert!(after == loads + 1.0 || after == loads + 2.0, "{after}");
    for i in 0..3 {
        insert(&s, &format!("l{i}")).await;
    }
    assert_eq!(metric(&s, LOADS).await, after, "no load per write");
    assert_eq!(metric(&s, INSERTS).await, 0.0);
    assert!(outbox_statuses(&s).await.is_empty());
    s.stop().await;
}

#[tokio::test]
async fn two_replicas_deliver_each_event_once() {
    let s = TestServer::start_with(|c| {
        allow(c, "127.0.0.1");
        c.events.workers = 2;
    })
    .await;
    items(&s).await;
    let other = s.replica_with(|_| {}).await;
    let rx = Receiver::default();
    let url = rx.start().await;
    create(&s, hook(&url)).await;
    // The other replica learns of the webhook through the notification.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..10 {
        let server = if i % 2 == 0 { &s } else { &other };
        insert(server, &format!("r{i}")).await;
    }
    let got = rx.wait_for(10, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got_after = rx.got();
    assert_eq!(got_after.len(), 10, "each event once: {}", got_after.len());
    let mut ids: Vec<String> = got.iter().map(|g| g.header("webhook-id")).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10);
    other.stop().await;
    s.stop().await;
}

#[tokio::test]
async fn a_job_whose_worker_vanished_is_taken_over() {
    // Simulates a worker killed mid-delivery: a job claimed (`running`,
    // a run token) long ago by a worker that is gone. The live worker takes
    // it over after the stale limit and delivers it; the vanished worker's
    // token can no longer record anything. (The real `kill -9` of a whole
    // process is `queued_events_survive_kill_9_and_are_delivered_once`.)
    let s = TestServer::start_with(|c| {
        allow(c, "127.0.0.1");
        c.events.workers = 0;
    })
    .await;
    items(&s).await;
    let rx = Receiver::default();
    let url = rx.start().await;
    create(&s, hook(&url)).await;
    insert(&s, "orphan").await;
    let catalog = psql(&s.catalog_url).await;
    let stale_token = uuid::Uuid::new_v4();
    let n = catalog
        .execute(
            "UPDATE athena_outbox SET status = 'running', run_token = $1, worker_id = 'gone:1',
                    attempts = 1, started_at = now() - interval '1 hour'",
            &[&stale_token],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let worker = s.replica_with(|c| c.events.workers = 1).await;
    let got = rx.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].json()["data"]["rows"][0]["name"], "orphan");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let row = catalog
            .query_one("SELECT status, attempts, run_token FROM athena_outbox", &[])
            .await
            .unwrap();
        let (status, attempts, token): (String, i32, Option<uuid::Uuid>) =
            (row.get(0), row.get(1), row.get(2));
        if status == "completed" {
            assert_eq!(attempts, 2, "the takeover is the second claim");
            assert_ne!(token, Some(stale_token));
            break;
        }
        assert!(Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.got().len(), 1);
    worker.stop().await;
    s.stop().await;
}

#[tokio::test]
async fn concurrent_writes_each_queue_their_event() {
    // Publishes at the same moment share outbox INSERTs (group commit);
    // every write still gets its own event, committed before its 200.
    let s = TestServer::start_with(|c| {
        allow(c, "127.0.0.1");
        c.events.workers = 0;
    })
    .await;
    items(&s).await;
    let rx = Receiver::default();
    let url = rx.start().await;
    create(&s, hook(&url)).await;
    let writes = (0..40).map(|i| {
        let s = &s;
        async move { insert(s, &format!("c{i}")).await }
    });
    futures_util::future::join_all(writes).await;
    // Workers off: every event is in the outbox when its write answered.
    let queued = outbox_statuses(&s).await;
    assert_eq!(queued.len(), 40, "{queued:?}");
    assert!(queued.iter().all(|(status, _)| status == "queued"));
    let worker = s.replica_with(|c| c.events.workers = 2).await;
    let got = rx.wait_for(40, Duration::from_secs(20)).await;
    let mut names: Vec<String> = got
        .iter()
        .map(|g| {
            g.json()["data"]["rows"][0]["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 40);
    worker.stop().await;
    s.stop().await;
}

#[tokio::test]
async fn deferred_writes_publish_once_under_their_request_id() {
    let s = server().await;
    let rx = Receiver::default();
    let url = rx.start().await;
    create(&s, hook(&url)).await;
    let r = s
        .send(
            "PUT",
            "/gateway/insert",
            &[C, ("X-Athena-Defer", "true")],
            Some(json!({"table_name": "items", "insert_body": {"name": "later"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let request_id = r.json()["request_id"].as_str().unwrap().to_string();
    let got = rx.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(got[0].header("webhook-id"), request_id);
    assert_eq!(got[0].json()["route_key"], "gateway.insert");
    assert_eq!(got[0].json()["data"]["rows"][0]["name"], "later");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.got().len(), 1);
    s.stop().await;
}

// ---- the real binary: kill -9 with events queued ----

fn athena(db: &str, port: u16, workers: &str, receiver_port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_athena"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .env("DATABASE_URL", db)
        .env("ATHENA_CLIENTS", format!("t={db}"))
        .env("ATHENA_KEY_12", ADMIN_KEY)
        .env("ATHENA_SECRET_KEY", common::TEST_SECRET_KEY)
        .env(
            "ATHENA_OUTBOUND_ALLOW",
            format!("127.0.0.1:{receiver_port}"),
        )
        .env("ATHENA_EVENT_WORKERS", workers)
        .env("ATHENA_EVENT_BACKOFF_MS", "100")
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn kill9(child: &mut Child) {
    let status = Command::new("kill")
        .arg("-KILL")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let _ = child.wait();
}

async fn call(port: u16, method: &str, path: &str, body: Value) -> (u16, Value) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let req = http::Request::builder()
        .method(method)
        .uri(format!("http://127.0.0.1:{port}{path}"))
        .header("X-Athena-Client", "t")
        .header("X-Athena-Key", ADMIN_KEY)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let res = client.request(req).await.expect("request");
    let status = res.status().as_u16();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn queued_events_survive_kill_9_and_are_delivered_once() {
    let admin = std::env::var("ATHENA_PG_ADMIN_URL").expect("run through make test");
    let name = format!("t_{}_hooks", uuid::Uuid::new_v4().simple());
    psql(&admin)
        .await
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap();
    let db = with_db(&admin, &name);
    psql(&db)
        .await
        .batch_execute("CREATE TABLE items (id serial PRIMARY KEY, name text, qty int)")
        .await
        .unwrap();
    let rx = Receiver::default();
    let url = rx.start().await;
    let rport: u16 = url::Url::parse(&url).unwrap().port().unwrap();

    // 1. No workers: the events are queued (committed before each 200);
    //    kill -9.
    let port = free_port();
    let mut first = athena(&db, port, "0", rport);
    wait_ready(port, &mut first).await;
    let mut body = hook(&url);
    body["client_name"] = json!("t");
    let (status, v) = call(port, "POST", "/admin/webhooks", body).await;
    assert_eq!(status, 200, "{v}");
    for n in 0..8 {
        let (status, v) = call(
            port,
            "PUT",
            "/gateway/insert",
            json!({"table_name": "items", "insert_body": {"name": format!("k{n}"), "qty": n}}),
        )
        .await;
        assert_eq!(status, 200, "{v}");
    }
    kill9(&mut first);
    assert!(rx.got().is_empty());

    // 2. A fresh process delivers each queued event once.
    let port = free_port();
    let mut second = athena(&db, port, "2", rport);
    wait_ready(port, &mut second).await;
    rx.wait_for(8, Duration::from_secs(20)).await;
    let catalog = psql(&db).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let done: i64 = catalog
            .query_one(
                "SELECT count(*) FROM athena_outbox WHERE status = 'completed'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if done == 8 {
            break;
        }
        assert!(Instant::now() < deadline, "{done} of 8 completed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = rx.got();
    assert_eq!(got.len(), 8, "each event delivered once");
    let mut names: Vec<String> = got
        .iter()
        .map(|g| {
            g.json()["data"]["rows"][0]["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    names.sort();
    assert_eq!(names, (0..8).map(|n| format!("k{n}")).collect::<Vec<_>>());
    assert!(got.iter().all(|g| verify(SECRET, g)));
    kill9(&mut second);
    drop(catalog);
    let _ = psql(&admin)
        .await
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await;
}

/// Statuses of `n` concurrent REST inserts, every fourth into `docs` (a
/// `json` column holding `\u0000`, which the outbox's `jsonb` refuses).
#[tokio::test]
async fn a_nul_in_one_event_fails_no_write_and_loses_no_event() {
    let s = server().await;
    s.tenant()
        .await
        .batch_execute("CREATE TABLE docs (id serial PRIMARY KEY, doc json)")
        .await
        .unwrap();
    for t in ["docs", "items"] {
        let mut h = hook("http://127.0.0.1:9/h");
        h["route_key"] = json!("rest.insert");
        h["table_name"] = json!(t);
        h["max_attempts"] = json!(1);
        create(&s, h).await;
    }
    let r = s
        .send(
            "POST",
            "/rest/v1/docs",
            &[C],
            Some(json!({"doc": {"a\u{0000}": "\u{0000}"}})),
        )
        .await;
    assert!(r.status < 300, "{} {}", r.status, r.text());
    let writes = (0..40).map(|i| {
        let s = &s;
        async move {
            let (path, body) = match i % 4 {
                0 => ("/rest/v1/docs", json!({"doc": {"a": "\u{0000}"}})),
                _ => ("/rest/v1/items", json!({"name": format!("n{i}")})),
            };
            let r = s.send("POST", path, &[C], Some(body)).await;
            (r.status, r.text())
        }
    });
    for (status, text) in futures_util::future::join_all(writes).await {
        assert!(status < 300, "{status} {text}");
        assert!(
            !text.contains("Invalid(") && !text.contains("ServiceUnavailable"),
            "{text}"
        );
    }
    let catalog = psql(&s.catalog_url).await;
    let jobs: i64 = catalog
        .query_one("SELECT count(*) FROM athena_outbox", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(jobs, 41, "one job per write");
    let doc: Value = catalog
        .query_one(
            "SELECT event->'data'->'rows'->0->'doc' FROM athena_outbox
              WHERE event->>'table_name' = 'docs' ORDER BY created_at LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(doc, json!({"a\u{FFFD}": "\u{FFFD}"}));
    s.stop().await;
}

#[tokio::test]
async fn an_oversized_event_is_queued_with_its_keys_only() {
    let s = TestServer::start_with(|c| {
        allow(c, "127.0.0.1");
        c.max_body_bytes = 1 << 20;
    })
    .await;
    items(&s).await;
    let mut h = hook("http://127.0.0.1:9/h");
    h["max_attempts"] = json!(1);
    create(&s, h).await;
    let big = "x".repeat(300 << 10);
    let r = s
        .send(
            "PUT",
            "/gateway/insert",
            &[C],
            Some(json!({"table_name": "items", "insert_body": {"name": big, "qty": 7}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let event: Value = psql(&s.catalog_url)
        .await
        .query_one("SELECT event FROM athena_outbox", &[])
        .await
        .unwrap()
        .get(0);
    let data = &event["data"];
    assert_eq!(data["truncated"], true, "{data}");
    assert_eq!(data["affected"], 1);
    assert_eq!(data["rows"][0]["qty"], 7);
    assert!(data["rows"][0]["id"].is_number(), "{data}");
    assert!(data["rows"][0].get("name").is_none());
    s.stop().await;
}

#[tokio::test]
async fn a_2xx_answer_holding_nul_completes_the_job_once() {
    let s = server().await;
    let rx = Receiver::default();
    *rx.answer.lock().unwrap() = Some(Bytes::from_static(b"ok\0\xff"));
    let url = rx.start().await;
    let mut h = hook(&url);
    h["max_attempts"] = json!(2);
    create(&s, h).await;
    insert(&s, "nul").await;
    rx.wait_for(1, Duration::from_secs(10)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while outbox_statuses(&s).await != vec![("completed".to_string(), 1)] {
        assert!(Instant::now() < deadline, "{:?}", outbox_statuses(&s).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(rx.got().len(), 1, "delivered once");
    let response: Option<String> = psql(&s.catalog_url)
        .await
        .query_one("SELECT response FROM gateway_webhook_deliveries", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(response.as_deref(), Some("ok\u{FFFD}"));
    s.stop().await;
}

#[tokio::test]
async fn a_slow_receiver_does_not_hold_back_other_webhooks() {
    let s = server().await;
    let slow = Receiver::default();
    *slow.delay.lock().unwrap() = Duration::from_secs(30);
    let fast = Receiver::default();
    let (slow_url, fast_url) = (slow.start().await, fast.start().await);
    for (url, table) in [(slow_url, "items"), (fast_url, "other")] {
        let mut h = hook(&url);
        h["table_name"] = json!(table);
        h["max_attempts"] = json!(1);
        h["timeout_ms"] = json!(5000);
        create(&s, h).await;
    }
    for i in 0..6 {
        insert(&s, &format!("slow{i}")).await;
    }
    slow.wait_for(1, Duration::from_secs(5)).await;
    let r = s
        .send(
            "PUT",
            "/gateway/insert",
            &[C],
            Some(json!({"table_name": "other", "insert_body": {"name": "fast"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Well before the slow receiver's attempts time out (5 s each).
    fast.wait_for(1, Duration::from_secs(3)).await;
    // The slow target holds one worker: whatever runs for it is one batch
    // (one claim, one run token), and the rest of its jobs wait for it.
    let running: Vec<(String, i64)> = psql(&s.catalog_url)
        .await
        .query(
            "SELECT target_id, count(DISTINCT run_token) FROM athena_outbox
              WHERE status = 'running' GROUP BY target_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(running.len(), 1, "only the slow target runs: {running:?}");
    assert_eq!(
        running[0].1, 1,
        "one batch for the slow target: {running:?}"
    );
    assert!(!slow.got().is_empty() && slow.got().len() <= 6);
    s.stop().await;
}

#[tokio::test]
async fn events_carry_the_written_rows_not_the_callers_select() {
    let s = server().await;
    s.tenant()
        .await
        .batch_execute(
            "CREATE TABLE authors (id int PRIMARY KEY, name text);
             CREATE TABLE books (id serial PRIMARY KEY, title text, author_id int REFERENCES authors(id));
             INSERT INTO authors VALUES (1, 'Ann')",
        )
        .await
        .unwrap();
    let rx = Receiver::default();
    let url = rx.start().await;
    let mut h = hook(&url);
    h["route_key"] = json!("rest.insert");
    h["table_name"] = json!("books");
    create(&s, h).await;
    // `id:title` would forge the row's id; the embed adds another table's data.
    let r = s
        .send(
            "POST",
            "/rest/v1/books?select=id:title,author:authors(name)",
            &[C, ("Prefer", "return=representation")],
            Some(json!({"title": "evt", "author_id": 1})),
        )
        .await;
    assert!(r.status < 300, "{} {}", r.status, r.text());
    let got = rx.wait_for(1, Duration::from_secs(10)).await;
    let rows = got[0].json()["data"]["rows"].clone();
    assert_eq!(rows, json!([{"id": 1, "title": "evt", "author_id": 1}]));
    s.stop().await;
}

/// Subscriptions the first time, then "the catalog is away".
struct Flaky(Arc<std::sync::atomic::AtomicUsize>);

impl athena::events::Source for Flaky {
    fn load<'a>(
        &'a self,
        _: &'a athena::db::Pool,
    ) -> athena::events::BoxFuture<
        'a,
        Result<Vec<athena::events::Subscription>, athena::domain::DomainError>,
    > {
        Box::pin(async move {
            match self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => Ok(vec![athena::events::Subscription {
                    kind: "webhook",
                    id: "1".into(),
                    client_name: CLIENT.into(),
                    route_key: "gateway.insert".into(),
                    table_name: None,
                }]),
                _ => Err(athena::domain::DomainError::Unavailable("away".into())),
            }
        })
    }
}

#[tokio::test]
async fn an_invalidated_index_stays_the_fallback_while_the_catalog_is_away() {
    let loads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let pool = athena::db::pool(
        "postgres://nobody@127.0.0.1:1/none",
        athena::db::PoolSettings {
            max_size: 1,
            connect_timeout: Duration::from_millis(200),
            acquire_timeout: Duration::from_millis(200),
            statement_timeout: Duration::from_millis(200),
            tls: Default::default(),
        },
    )
    .unwrap();
    let outbox = athena::events::Outbox::new(
        pool,
        athena::events::Settings::default(),
        vec![Box::new(Flaky(loads.clone()))],
    );
    let event = athena::events::Event::now("gateway.insert", CLIENT, None, json!({}));
    assert_eq!(outbox.matching(&event).await.unwrap().len(), 1);
    // The change feed broke: the index is out of date, the catalog away.
    outbox.invalidate();
    for _ in 0..3 {
        let subs = outbox.matching(&event).await.expect("the previous index");
        assert_eq!(subs.len(), 1);
    }
    assert_eq!(
        loads.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "one reload tried"
    );
}

/// `/gateway/transaction` publishes each committed write's event, as the
/// same write on its own route would; a rolled-back transaction and an
/// idempotent replay publish nothing.
#[tokio::test]
async fn committed_transactions_publish_their_writes() {
    let s = server().await;
    let rx = Receiver::default();
    let url = rx.start().await;
    create(&s, hook(&url)).await;
    let mut upd = hook(&url);
    upd["route_key"] = json!("gateway.update");
    upd["name"] = json!("updates");
    create(&s, upd).await;
    let op =
        |id: &str, kind: &str, payload: Value| json!({"id": id, "kind": kind, "payload": payload});
    let eq = json!([{"eq_column": "name", "eq_value": "tx1"}]);
    let body =
        |ops: Vec<Value>, key: Option<&str>| json!({"operations": ops, "idempotency_key": key});
    let committed = body(
        vec![
            op(
                "a",
                "insert",
                json!({"table_name": "items", "insert_body": {"name": "tx1", "qty": 1}}),
            ),
            op(
                "b",
                "update",
                json!({"table_name": "items", "update_body": {"qty": 5}, "conditions": eq}),
            ),
            op("c", "fetch", json!({"table_name": "items"})),
        ],
        Some("tx-key-1"),
    );
    let r = s
        .send(
            "POST",
            "/gateway/transaction",
            &[C],
            Some(committed.clone()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let got = rx.wait_for(2, Duration::from_secs(10)).await;
    let mut keys: Vec<String> = got
        .iter()
        .map(|g| g.json()["route_key"].as_str().unwrap().to_string())
        .collect();
    keys.sort();
    assert_eq!(keys, ["gateway.insert", "gateway.update"]);
    let update = got
        .iter()
        .find(|g| g.json()["route_key"] == "gateway.update")
        .unwrap()
        .json();
    assert_eq!(update["data"]["rows"][0]["qty"], 5, "{update}");
    assert_eq!(update["data"]["affected"], 1);

    // Replayed under its key: nothing runs, nothing is published.
    let r = s
        .send("POST", "/gateway/transaction", &[C], Some(committed))
        .await;
    assert_eq!(r.json()["data"]["replayed"], true, "{}", r.text());
    // Rolled back (the second operation fails): nothing is published.
    let failing = body(
        vec![
            op(
                "a",
                "insert",
                json!({"table_name": "items", "insert_body": {"name": "tx2", "qty": 1}}),
            ),
            op(
                "b",
                "insert",
                json!({"table_name": "items", "insert_body": {"id": "not a number"}}),
            ),
        ],
        None,
    );
    let r = s
        .send("POST", "/gateway/transaction", &[C], Some(failing))
        .await;
    assert_ne!(r.status, 200, "{}", r.text());
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(rx.got().len(), 2, "only the committed transaction's writes");
    assert_eq!(outbox_statuses(&s).await.len(), 2);
    s.stop().await;
}

/// A batch slower than the stale limit keeps its leases (renewed while its
/// attempts run): another replica's workers never take it over and send it
/// a second time while the first worker lives.
#[tokio::test]
async fn a_slow_batch_renews_its_leases_and_is_sent_once() {
    let stale = Duration::from_secs(2);
    let s = TestServer::start_with(|c| {
        allow(c, "127.0.0.1");
        c.events.stale_after = stale;
    })
    .await;
    items(&s).await;
    let other = s
        .replica_with(|c| {
            allow(c, "127.0.0.1");
            c.events.stale_after = stale;
        })
        .await;
    let rx = Receiver::default();
    *rx.delay.lock().unwrap() = Duration::from_secs(5);
    let url = rx.start().await;
    let mut h = hook(&url);
    h["timeout_ms"] = json!(9000);
    create(&s, h).await;
    insert(&s, "slow").await;
    rx.wait_for(1, Duration::from_secs(5)).await;
    // Past the 5 s answer and well past the 2 s stale limit.
    let catalog = psql(&s.catalog_url).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let row = catalog
            .query_one("SELECT status, attempts FROM athena_outbox", &[])
            .await
            .unwrap();
        let (status, attempts): (String, i32) = (row.get(0), row.get(1));
        if status == "completed" {
            assert_eq!(attempts, 1, "claimed once");
            break;
        }
        assert!(Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(rx.got().len(), 1, "sent once");
    other.stop().await;
    s.stop().await;
}
