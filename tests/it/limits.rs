//! Limits (issue 9 item 10): the body is read inside the request deadline,
//! connections and in-flight requests are capped, insert windows never
//! outlive the request deadline, one-to-many embeds are capped, `/metrics`
//! hides tenant names from anonymous callers, transaction idempotency keys
//! are scoped to the caller, and the catalog listener survives losing its
//! connection.

use crate::common;

use common::{psql, Reply, TestServer, ADMIN_KEY, CLIENT};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ADMIN: (&str, &str) = ("x-athena-key", ADMIN_KEY);

/// A raw HTTP/1.1 answer read until the server closed the connection.
struct Raw {
    status: u16,
    head: String,
    body: Value,
}

fn parse_raw(bytes: &[u8]) -> Raw {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete answer: {text:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head:?}"));
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("body {body:?}: {e}"));
    Raw {
        status,
        head: head.to_ascii_lowercase(),
        body,
    }
}

/// Reads until the server closes (a reset after the answer counts too).
async fn read_until_closed(stream: &mut (impl AsyncReadExt + Unpin), within: Duration) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let closed = tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the server did not close the connection within {within:?}; read so far: {:?}",
        String::from_utf8_lossy(&buf)
    );
    buf
}

fn assert_envelope(v: &Value, code: &str) {
    assert_eq!(v["status"], "error", "{v}");
    assert_eq!(v["code"], code, "{v}");
    assert!(v["message"].is_string() && v["error"].is_string(), "{v}");
}

// ---------------------------------------------------------------- a. body

#[tokio::test]
async fn a_body_trickled_slowly_is_cut_at_the_request_deadline() {
    let s = TestServer::start_with(|c| c.request_timeout = Duration::from_millis(800)).await;
    let stream = TcpStream::connect(s.addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    wr.write_all(
        b"POST /gateway/fetch HTTP/1.1\r\nhost: athena\r\nx-athena-client: tenant\r\n\
          content-type: application/json\r\ncontent-length: 1000\r\n\r\n{",
    )
    .await
    .unwrap();
    let started = Instant::now();
    // One byte every 100 ms: the whole body would take 100 s.
    let trickle = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if wr.write_all(b" ").await.is_err() {
                return;
            }
        }
    });
    let answer = read_until_closed(&mut rd, Duration::from_secs(5)).await;
    let elapsed = started.elapsed();
    trickle.abort();
    let raw = parse_raw(&answer);
    assert_eq!(raw.status, 408, "{}", raw.head);
    assert_envelope(&raw.body, "request_timeout");
    assert!(raw.head.contains("connection: close"), "{}", raw.head);
    assert!(
        elapsed < Duration::from_millis(3_000),
        "cut after {elapsed:?}, the deadline is 800 ms"
    );
    // The server still serves everyone else.
    assert_eq!(s.get("/ping").await.status, 200);
    s.stop().await;
}

/// The admin surface answers 401 without the admin key before the body
/// is read: a caller without the key cannot make the server wait for (or
/// buffer) an upload.
#[tokio::test]
async fn admin_routes_refuse_a_missing_key_before_reading_the_body() {
    let s = TestServer::start_with(|c| c.request_timeout = Duration::from_secs(10)).await;
    for head in [
        "POST /admin/api-keys HTTP/1.1\r\nhost: athena\r\n",
        "PUT /admin/client-configs/tenant HTTP/1.1\r\nhost: athena\r\nx-athena-key: wrong\r\n",
    ] {
        let stream = TcpStream::connect(s.addr).await.unwrap();
        let (mut rd, mut wr) = stream.into_split();
        let request =
            format!("{head}content-type: application/json\r\ncontent-length: 1000000\r\n\r\n{{");
        wr.write_all(request.as_bytes()).await.unwrap();
        let started = Instant::now();
        // The body never comes; the answer must not wait for it.
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
            let n = tokio::time::timeout(Duration::from_secs(3), rd.read(&mut buf))
                .await
                .expect("no answer while the body is pending")
                .unwrap();
            assert!(n > 0, "closed without an answer");
            got.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&got).into_owned();
        assert!(text.starts_with("HTTP/1.1 401"), "{head}: {text}");
        assert!(started.elapsed() < Duration::from_secs(3));
        drop(wr);
    }
    s.stop().await;
}

// ------------------------------------------------------------ b. the caps

#[tokio::test]
async fn requests_beyond_the_in_flight_cap_are_503_with_retry_after() {
    let s = TestServer::start_with(|c| {
        c.max_in_flight = 2;
        c.request_timeout = Duration::from_secs(5);
    })
    .await;
    // Two requests whose bodies never come hold both slots.
    let mut holders = Vec::new();
    for _ in 0..2 {
        let mut t = TcpStream::connect(s.addr).await.unwrap();
        t.write_all(
            b"POST /gateway/fetch HTTP/1.1\r\nhost: athena\r\nx-athena-client: tenant\r\n\
              content-type: application/json\r\ncontent-length: 100\r\n\r\n{",
        )
        .await
        .unwrap();
        holders.push(t);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = s.get("/ping").await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.headers["retry-after"], "1");
    assert_envelope(&r.json(), "service_unavailable");
    // The slots come back when those requests end.
    drop(holders);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let r = s.get("/ping").await;
        if r.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "slots never came back: {}",
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_are_answered_503_and_closed() {
    let s = TestServer::start_with(|c| c.max_connections = 2).await;
    let first = TcpStream::connect(s.addr).await.unwrap();
    let second = TcpStream::connect(s.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = TcpStream::connect(s.addr).await.unwrap();
    third
        .write_all(b"GET /ping HTTP/1.1\r\nhost: athena\r\n\r\n")
        .await
        .unwrap();
    let raw = parse_raw(&read_until_closed(&mut third, Duration::from_secs(3)).await);
    assert_eq!(raw.status, 503, "{}", raw.head);
    assert!(raw.head.contains("retry-after: 1"), "{}", raw.head);
    assert!(raw.head.contains("connection: close"), "{}", raw.head);
    assert_envelope(&raw.body, "service_unavailable");
    // A freed slot is usable again.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut t = TcpStream::connect(s.addr).await.unwrap();
        t.write_all(b"GET /ping HTTP/1.1\r\nhost: athena\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let answer = read_until_closed(&mut t, Duration::from_secs(3)).await;
        if String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "the slot never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(second);
    s.stop().await;
}

// ------------------------------------------------------- c. insert windows

async fn events(s: &TestServer) {
    s.tenant()
        .await
        .batch_execute("CREATE TABLE events (id serial PRIMARY KEY, name text NOT NULL)")
        .await
        .unwrap();
}

async fn count_named(s: &TestServer, name: &str) -> i64 {
    s.scalar(&format!(
        "SELECT count(*) FROM events WHERE name = '{name}'"
    ))
    .await
}

async fn windowed_insert(s: &TestServer, name: &str, window_ms: &str) -> Reply {
    s.send(
        "PUT",
        "/gateway/insert",
        &[
            ("x-athena-client", CLIENT),
            ("x-athena-insert-window", window_ms),
        ],
        Some(json!({"table_name": "events", "insert_body": {"name": name}})),
    )
    .await
}

#[tokio::test]
async fn an_insert_window_never_outlives_the_request_deadline() {
    let s =
        Arc::new(TestServer::start_with(|c| c.request_timeout = Duration::from_millis(600)).await);
    events(&s).await;
    // Alone and with company: the window (3 s) is longer than the deadline.
    let mut set = tokio::task::JoinSet::new();
    for i in 0..3 {
        let s = s.clone();
        set.spawn(async move {
            let name = format!("w{i}");
            let started = Instant::now();
            let r = windowed_insert(&s, &name, "3000").await;
            (name, r.status, r.text(), started.elapsed())
        });
    }
    let mut replies = Vec::new();
    while let Some(done) = set.join_next().await {
        replies.push(done.unwrap());
    }
    // Past the window: whatever the window was going to write is written.
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    for (name, status, text, elapsed) in replies {
        let rows = count_named(&s, &name).await;
        match status {
            200 => assert_eq!(rows, 1, "{name}: 200 but the row is missing"),
            _ => assert_eq!(
                rows, 0,
                "{name}: answered {status} ({text}) but its row was committed"
            ),
        }
        assert_eq!(status, 200, "{name}: {text}");
        assert!(
            elapsed < Duration::from_millis(2_500),
            "{name}: {elapsed:?}"
        );
    }
    let s = Arc::into_inner(s).unwrap();
    s.stop().await;
}

#[tokio::test]
async fn a_window_statement_that_started_is_answered_past_the_deadline() {
    let s = TestServer::start_with(|c| c.request_timeout = Duration::from_millis(600)).await;
    events(&s).await;
    // Hold the table so the window's statement waits past the deadline.
    let mut locker = s.tenant().await;
    let tx = locker.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let s = Arc::new(s);
    let request = {
        let s = s.clone();
        tokio::spawn(async move { windowed_insert(&s, "late", "3000").await })
    };
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    tx.commit().await.unwrap();
    let r = request.await.unwrap();
    assert_eq!(
        r.status,
        200,
        "the statement ran, so its caller is answered: {}",
        r.text()
    );
    assert_eq!(r.json()["data"]["name"], "late", "{}", r.text());
    assert_eq!(count_named(&s, "late").await, 1);
    let s = Arc::into_inner(s).unwrap();
    s.stop().await;
}

#[tokio::test]
async fn an_inline_write_that_started_is_answered_past_the_deadline() {
    let s = TestServer::start_with(|c| c.request_timeout = Duration::from_millis(600)).await;
    events(&s).await;
    let mut locker = s.tenant().await;
    let tx = locker.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let s = Arc::new(s);
    let request = {
        let s = s.clone();
        tokio::spawn(async move {
            s.send(
                "PUT",
                "/gateway/insert",
                &[("x-athena-client", CLIENT)],
                Some(json!({"table_name": "events", "insert_body": {"name": "inline"}})),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    tx.commit().await.unwrap();
    let r = request.await.unwrap();
    assert_eq!(
        r.status,
        200,
        "the statement ran, so its caller is answered: {}",
        r.text()
    );
    assert_eq!(count_named(&s, "inline").await, 1);
    let s = Arc::into_inner(s).unwrap();
    s.stop().await;
}

#[tokio::test]
async fn a_caller_gone_before_its_window_runs_writes_nothing() {
    let s = TestServer::start().await;
    events(&s).await;
    let body = json!({"table_name": "events", "insert_body": {"name": "gone"}}).to_string();
    let mut t = TcpStream::connect(s.addr).await.unwrap();
    t.write_all(
        format!(
            "PUT /gateway/insert HTTP/1.1\r\nhost: athena\r\nx-athena-client: {CLIENT}\r\n\
             x-athena-insert-window: 1500\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(t);
    // A caller that stays, in a window of its own length, still gets its row.
    let kept = windowed_insert(&s, "kept", "1500").await;
    assert_eq!(kept.status, 200, "{}", kept.text());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        count_named(&s, "gone").await,
        0,
        "a departed caller's row was written"
    );
    assert_eq!(count_named(&s, "kept").await, 1);
    s.stop().await;
}

// ----------------------------------------------------------- d. embeds

#[tokio::test]
async fn one_to_many_embeds_are_capped_at_max_rows() {
    let s = TestServer::start_with(|c| c.max_rows = 5).await;
    s.tenant()
        .await
        .batch_execute(
            "CREATE TABLE users (id int PRIMARY KEY, name text);
             CREATE TABLE posts (id serial PRIMARY KEY, user_id int REFERENCES users (id), body text);
             INSERT INTO users VALUES (1, 'ada'), (2, 'bob');
             INSERT INTO posts (user_id, body) SELECT 1, 'p' || g FROM generate_series(1, 50) g;
             INSERT INTO posts (user_id, body) VALUES (2, 'only');",
        )
        .await
        .unwrap();
    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &[("x-athena-client", CLIENT)],
            Some(json!({"table_name": "users", "columns": "id,posts(id,body)"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let rows = r.json()["data"].as_array().unwrap().clone();
    let posts = |id: i64| {
        rows.iter()
            .find(|u| u["id"] == id)
            .unwrap_or_else(|| panic!("user {id} missing: {rows:?}"))["posts"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(posts(1), 5, "50 related rows, cap 5");
    assert_eq!(posts(2), 1);
    s.stop().await;
}

// ----------------------------------------------------------- e. metrics

#[tokio::test]
async fn metrics_list_tenant_names_only_to_the_admin() {
    let s = TestServer::start().await;
    s.tenant()
        .await
        .batch_execute("CREATE TABLE items (id int)")
        .await
        .unwrap();
    // Open the tenant's pool.
    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &[("x-athena-client", CLIENT)],
            Some(json!({"table_name": "items"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let named = format!("client=\"{CLIENT}\"");
    for headers in [vec![], vec![("x-athena-key", "not-the-admin-key")]] {
        let r = s.send("GET", "/metrics", &headers, None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let text = r.text();
        assert!(
            !text.contains(&named),
            "anonymous /metrics names the tenant:\n{text}"
        );
        assert!(
            text.contains("athena_db_tenant_pool_connections{state=\"idle\"}"),
            "{text}"
        );
        assert!(text.contains("client=\"catalog\""), "{text}");
    }
    let r = s.send("GET", "/metrics", &[ADMIN], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains(&named), "{}", r.text());
    s.stop().await;
}

// --------------------------------------------- f. transaction idempotency

#[tokio::test]
async fn idempotency_keys_are_scoped_to_the_caller() {
    let s = TestServer::start().await;
    s.tenant()
        .await
        .batch_execute("CREATE TABLE orders (id serial PRIMARY KEY, owner text NOT NULL)")
        .await
        .unwrap();
    s.enforce_keys(true).await;
    let mut keys = Vec::new();
    for name in ["alice", "mallory"] {
        let r = s
            .send(
                "POST",
                "/admin/api-keys",
                &[ADMIN],
                Some(json!({"name": name, "rights": ["gateway.insert.execute", "gateway.fetch.execute"]})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        keys.push(r.json()["api_key"].as_str().unwrap().to_string());
    }
    let transaction = |key: &str, owner: &str| {
        let headers = vec![
            ("x-athena-client".to_string(), CLIENT.to_string()),
            ("x-athena-key".to_string(), key.to_string()),
        ];
        let body = json!({"idempotency_key": "order-1", "operations": [
            {"id": "i", "kind": "insert", "payload": {"table_name": "orders", "insert_body": {"owner": owner}}}
        ]});
        (headers, body)
    };
    let send = |(headers, body): (Vec<(String, String)>, Value)| {
        let s = &s;
        async move {
            let h: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            s.send("POST", "/gateway/transaction", &h, Some(body)).await
        }
    };
    let first = send(transaction(&keys[0], "alice")).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.json()["data"]["replayed"], false);
    // Another caller with the same key: its own transaction, not alice's results.
    let other = send(transaction(&keys[1], "mallory")).await;
    assert_eq!(other.status, 200, "{}", other.text());
    let v = other.json();
    assert_eq!(v["data"]["replayed"], false, "{v}");
    assert_eq!(v["results"][0]["data"]["owner"], "mallory", "{v}");
    assert!(!other.text().contains("alice"), "{v}");
    // The same caller retrying is replayed.
    let retry = send(transaction(&keys[0], "alice")).await;
    assert_eq!(retry.status, 200, "{}", retry.text());
    assert_eq!(retry.json()["data"]["replayed"], true, "{}", retry.text());
    assert_eq!(
        s.scalar("SELECT count(*) FROM orders WHERE owner = 'alice'")
            .await,
        1
    );
    assert_eq!(
        s.scalar("SELECT count(*) FROM orders WHERE owner = 'mallory'")
            .await,
        1
    );
    s.stop().await;
}

// ----------------------------------------------- g. background supervisors

async fn listener_pid(s: &TestServer) -> Option<i32> {
    let catalog = psql(&s.catalog_url).await;
    catalog
        .query_opt(
            "SELECT pid FROM pg_stat_activity
              WHERE datname = current_database() AND application_name = $1
                AND query ILIKE 'LISTEN%'",
            &[&athena::db::notify::APPLICATION_NAME],
        )
        .await
        .unwrap()
        .map(|r| r.get(0))
}

#[tokio::test]
async fn the_catalog_listener_resumes_after_its_connection_is_killed() {
    let s = TestServer::start().await;
    s.tenant()
        .await
        .batch_execute("CREATE TABLE items (id int)")
        .await
        .unwrap();
    let fetch = || async {
        s.send(
            "POST",
            "/gateway/fetch",
            &[("x-athena-client", CLIENT)],
            Some(json!({"table_name": "items"})),
        )
        .await
        .status
    };
    let old = listener_pid(&s).await.expect("the listener is connected");
    let catalog = psql(&s.catalog_url).await;
    catalog
        .execute("SELECT pg_terminate_backend($1)", &[&old])
        .await
        .unwrap();
    // It comes back on a new connection.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match listener_pid(&s).await {
            Some(pid) if pid != old => break,
            _ => {}
        }
        assert!(Instant::now() < deadline, "the listener did not reconnect");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Enforcement is off and cached as such (for 30 s without a notification).
    assert_eq!(fetch().await, 200);
    // A change made straight in the catalog reaches this replica through
    // the resumed feed, well before the cache would expire.
    catalog
        .execute(
            "UPDATE athena_api_key_config SET enforce_api_keys = true",
            &[],
        )
        .await
        .unwrap();
    let changed = Instant::now();
    loop {
        let status = fetch().await;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            changed.elapsed() < Duration::from_secs(10),
            "the change was not delivered after the listener restarted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.stop().await;
}
