//! Direct PostgreSQL URIs (`x-pg-uri`, `x-athena-jdbc-url`, `x-jdbc-url`),
//! security.md §1: routing, the API-key bypass only with full credentials,
//! refused hosts and parameters, error statuses, the pool cap, and the
//! password never reaching a response or the log.
//!
//! The test PostgreSQL (scripts/dev-services) uses `trust` authentication,
//! so tests that need a successful connection set
//! `direct_allow_trust_auth`; password checking itself is exercised against
//! a minimal fake server that asks for a password and refuses it.
//!
//! Everything here runs on 127.0.0.1, which the outbound policy
//! (`src/outbound.rs`, security.md §11) refuses by default: tests that
//! connect allow-list exactly what they reach (`allow_local_postgres`,
//! `allow`), and the policy tests prove loopback, private and metadata
//! targets are refused without opening a connection, and that failed
//! authentications are throttled.

use crate::common;

use athena::db::direct::{self, DirectOptions, DirectPools, FailureLimits};
use athena::db::PoolSettings;
use athena::outbound::{parse_allow_list, OutboundPolicy};
use bytes::Bytes;
use common::{allow, allow_local_postgres, free_port, pg_host_port, psql, TestServer, ADMIN_KEY};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ADMIN: (&str, &str) = ("x-athena-key", ADMIN_KEY);

fn admin_url() -> String {
    std::env::var("ATHENA_PG_ADMIN_URL").expect("run through make test")
}

/// An IPv6 host in brackets, as in a URI or an allow-list entry.
fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A login role with a password, owning nothing, with read/insert rights on
/// `items` in the test tenant database.
struct Role {
    name: String,
    password: String,
    db: String,
}

impl Role {
    async fn create(s: &TestServer) -> Role {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("t_{id}_direct");
        // Characters that need percent-encoding in a URI.
        let password = format!("Pw+{id}/@:?x");
        psql(&admin_url())
            .await
            .batch_execute(&format!(
                "CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}'"
            ))
            .await
            .unwrap();
        s.tenant()
            .await
            .batch_execute(&format!(
                "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL);
                 INSERT INTO items (name) VALUES ('alpha'), ('beta');
                 GRANT SELECT, INSERT ON items TO \"{name}\";
                 GRANT USAGE ON SEQUENCE items_id_seq TO \"{name}\";"
            ))
            .await
            .unwrap();
        let db = s.tenant_url.rsplit_once('/').unwrap().1.to_string();
        Role { name, password, db }
    }

    fn pg_uri(&self) -> String {
        let (host, port) = pg_host_port();
        format!(
            "postgres://{}:{}@{host}:{port}/{}",
            self.name,
            enc(&self.password),
            self.db
        )
    }

    fn jdbc_url(&self) -> String {
        let (host, port) = pg_host_port();
        format!(
            "jdbc:postgresql://{host}:{port}/{}?user={}&password={}&ApplicationName=jdbc-test",
            self.db,
            self.name,
            enc(&self.password)
        )
    }

    fn without_password(&self) -> String {
        let (host, port) = pg_host_port();
        format!("postgres://{}@{host}:{port}/{}", self.name, self.db)
    }

    async fn drop(self) {
        let _ = psql(&admin_url())
            .await
            .batch_execute(&format!("DROP ROLE IF EXISTS \"{}\"", self.name))
            .await;
    }
}

async fn enforce(s: &TestServer) {
    let r = s
        .send(
            "PUT",
            "/admin/api-key-config",
            &[ADMIN],
            Some(json!({"enforce_api_keys": true})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data array: {v}"))
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

fn fetch_items() -> Option<Value> {
    Some(json!({"table_name": "items"}))
}

#[tokio::test]
async fn routes_by_uri_without_api_key_under_enforcement() {
    let s = TestServer::start_with(|c| {
        c.direct_allow_trust_auth = true;
        allow_local_postgres(c);
    })
    .await;
    let role = Role::create(&s).await;
    enforce(&s).await;
    let uri = role.pg_uri();
    let mut bodies = Vec::new();

    // Enforcement is on: a plain client request needs a key.
    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &[("x-athena-client", common::CLIENT)],
            fetch_items(),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());

    // x-pg-uri with full credentials: no key needed; X-Athena-Client ignored.
    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &[("x-pg-uri", &uri), ("x-athena-client", "no-such-client")],
            fetch_items(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(names(&r.json()), ["alpha", "beta"]);
    bodies.push(r.text());

    // JDBC forms, both headers.
    for header in ["x-athena-jdbc-url", "x-jdbc-url"] {
        let r = s
            .send(
                "POST",
                "/gateway/fetch",
                &[(header, &role.jdbc_url())],
                fetch_items(),
            )
            .await;
        assert_eq!(r.status, 200, "{header}: {}", r.text());
        assert_eq!(names(&r.json()), ["alpha", "beta"]);
        bodies.push(r.text());
    }

    // Writes and raw SQL run as the URI's role, on its database.
    let r = s
        .send(
            "PUT",
            "/gateway/insert",
            &[("x-pg-uri", &uri)],
            Some(json!({"table_name": "items", "insert_body": {"name": "gamma"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["name"], "gamma");
    bodies.push(r.text());
    let r = s
        .send(
            "POST",
            "/gateway/query",
            &[("x-jdbc-url", &role.jdbc_url())],
            Some(json!({"query": "SELECT current_user AS who, count(*)::int AS n FROM items"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"][0]["who"], role.name.as_str());
    assert_eq!(r.json()["data"][0]["n"], 3);
    bodies.push(r.text());
    let r = s
        .send(
            "POST",
            "/gateway/sql",
            &[("x-pg-uri", &uri)],
            Some(json!({"query": "SELECT 1 AS one", "db_name": "ignored", "driver": "postgresql"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"][0]["one"], 1);
    // `/query/sql` routes the same way (athena-mcp's `{query, driver, db_name}`).
    let r = s
        .send(
            "POST",
            "/query/sql",
            &[("x-pg-uri", &uri)],
            Some(json!({"query": "SELECT current_user AS who", "db_name": "ignored", "driver": "postgresql"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"][0]["who"], role.name.as_str());
    // The role's own privileges bound it (no DELETE grant).
    let r = s
        .send(
            "DELETE",
            "/gateway/delete",
            &[("x-pg-uri", &uri)],
            Some(json!({"table_name": "items", "resource_id": 1})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    bodies.push(r.text());

    // No password: no bypass (401 for the missing key) ...
    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &[("x-pg-uri", &role.without_password())],
            fetch_items(),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    // ... and refused even with a key that opens the data plane.
    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &[("x-pg-uri", &role.without_password()), ADMIN],
            fetch_items(),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.envelope()["error"]
        .as_str()
        .unwrap()
        .contains("username and a password"));

    // The preferred header decides: an incomplete x-pg-uri is not rescued
    // by a complete x-jdbc-url.
    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &[
                ("x-pg-uri", &role.without_password()),
                ("x-jdbc-url", &role.jdbc_url()),
            ],
            fetch_items(),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());

    // Refused hosts and parameters: no bypass, and a 400 naming the part.
    let (host, port) = pg_host_port();
    for (bad, needle) in [
        (
            format!(
                "postgres://{}:{}@%2Fvar%2Frun%2Fpostgresql/{}",
                role.name,
                enc(&role.password),
                role.db
            ),
            "unix-socket",
        ),
        (format!("{uri}?host=/var/run/postgresql"), "`host`"),
        (format!("{uri}?passfile=/etc/passwd"), "`passfile`"),
        (format!("{uri}?options=-csearch_path%3Dx"), "`options`"),
        (format!("{uri}?sslkey=/root/k"), "`sslkey`"),
        (
            format!(
                "jdbc:postgresql://{host}:{port}/{}?user={}&password={}&socketFactory=x.Y",
                role.db,
                role.name,
                enc(&role.password)
            ),
            "`socketFactory`",
        ),
    ] {
        let r = s
            .send(
                "POST",
                "/gateway/fetch",
                &[("x-pg-uri", &bad)],
                fetch_items(),
            )
            .await;
        assert_eq!(r.status, 401, "no bypass for {needle}: {}", r.text());
        let r = s
            .send(
                "POST",
                "/gateway/fetch",
                &[("x-pg-uri", &bad), ADMIN],
                fetch_items(),
            )
            .await;
        assert_eq!(r.status, 400, "{needle}: {}", r.text());
        let e = r.envelope();
        assert_eq!(e["code"], "invalid_parameter", "{e}");
        assert!(e["error"].as_str().unwrap().contains(needle), "{e}");
        assert!(e["error"].as_str().unwrap().contains("x-pg-uri"), "{e}");
        bodies.push(r.text());
    }

    for body in &bodies {
        assert!(!body.contains(&role.password), "password echoed: {body}");
        assert!(
            !body.contains(&enc(&role.password)),
            "password echoed: {body}"
        );
    }
    s.stop().await;
    role.drop().await;
}

#[tokio::test]
async fn a_database_that_does_not_check_the_password_is_refused_by_default() {
    let s = TestServer::start_with(allow_local_postgres).await;
    let role = Role::create(&s).await;
    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &[("x-pg-uri", &role.pg_uri())],
            fetch_items(),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.envelope()["error"]
        .as_str()
        .unwrap()
        .contains("without checking the password"));
    s.stop().await;
    role.drop().await;
}

/// A fake PostgreSQL that asks for a cleartext password, records it, and
/// refuses it with SQLSTATE 28P01.
async fn refusing_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    let (port, seen, _) = counted_refusing_server().await;
    (port, seen)
}

/// `refusing_server`, also counting the connections it accepted.
async fn counted_refusing_server() -> (u16, Arc<Mutex<Vec<String>>>, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let accepts = Arc::new(AtomicUsize::new(0));
    let sink = seen.clone();
    let counter = accepts.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut len = sock.read_i32().await.ok()? as usize;
                let mut startup = vec![0; len - 4];
                sock.read_exact(&mut startup).await.ok()?;
                // An SSLRequest (sslmode=prefer, libpq's default): no TLS
                // here, as a PostgreSQL with ssl=off answers.
                if startup == 80877103i32.to_be_bytes() {
                    sock.write_all(b"N").await.ok()?;
                    len = sock.read_i32().await.ok()? as usize;
                    startup = vec![0; len - 4];
                    sock.read_exact(&mut startup).await.ok()?;
                }
                // AuthenticationCleartextPassword
                sock.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).await.ok()?;
                if sock.read_u8().await.ok()? != b'p' {
                    return None;
                }
                let len = sock.read_i32().await.ok()? as usize;
                let mut pw = vec![0; len - 4];
                sock.read_exact(&mut pw).await.ok()?;
                pw.pop(); // NUL
                sink.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&pw).into_owned());
                let mut fields = Vec::new();
                for (t, v) in [
                    (b'S', "FATAL"),
                    (b'V', "FATAL"),
                    (b'C', "28P01"),
                    (b'M', "password authentication failed for user \"u\""),
                ] {
                    fields.push(t);
                    fields.extend_from_slice(v.as_bytes());
                    fields.push(0);
                }
                fields.push(0);
                let mut msg = vec![b'E'];
                msg.extend_from_slice(&((fields.len() + 4) as i32).to_be_bytes());
                msg.extend_from_slice(&fields);
                sock.write_all(&msg).await.ok()?;
                Some(())
            });
        }
    });
    (port, seen, accepts)
}

/// A TCP listener on 127.0.0.1 that only counts the connections it accepts.
async fn counting_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepts = Arc::new(AtomicUsize::new(0));
    let counter = accepts.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(sock);
        }
    });
    (port, accepts)
}

#[tokio::test]
async fn wrong_password_is_401_unreachable_and_hung_are_503_within_the_timeout() {
    let s = TestServer::start_with(|c| {
        c.pool_connect_timeout = Duration::from_secs(1);
        // The fake servers below: every port of 127.0.0.1.
        allow(c, "127.0.0.1");
    })
    .await;

    // Wrong password: 401, never 500; the URI's password is what was sent.
    let (port, seen) = refusing_server().await;
    let uri = format!("postgres://u:{}@127.0.0.1:{port}/d", enc("s3cret+/@"));
    for _ in 0..2 {
        let r = s
            .send(
                "POST",
                "/gateway/fetch",
                &[("x-pg-uri", &uri)],
                fetch_items(),
            )
            .await;
        assert_eq!(r.status, 401, "{}", r.text());
        assert_eq!(r.envelope()["code"], "unauthorized");
        assert!(!r.text().contains("s3cret"));
    }
    let jdbc = format!(
        "jdbc:postgresql://127.0.0.1:{port}/d?user=u&password={}",
        enc("j+dbc")
    );
    let r = s
        .send(
            "POST",
            "/gateway/query",
            &[("x-jdbc-url", &jdbc)],
            Some(json!({"query": "SELECT 1"})),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(
        *seen.lock().unwrap(),
        ["s3cret+/@", "s3cret+/@", "j+dbc"],
        "a failed verification is not cached; JDBC decodes like pgjdbc"
    );

    // Nothing listening: 503 with Retry-After.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &[(
                "x-pg-uri",
                &format!("postgres://u:p@127.0.0.1:{closed_port}/d"),
            )],
            fetch_items(),
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(r.envelope()["code"], "database_unavailable");

    // Accepts and never answers: bounded by the (capped) connect timeout.
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hung_port = hung.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = hung.accept().await {
            keep.lock().unwrap().push(sock);
        }
    });
    let started = Instant::now();
    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &[(
                "x-pg-uri",
                &format!("postgres://u:p@127.0.0.1:{hung_port}/d?connect_timeout=600"),
            )],
            fetch_items(),
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    s.stop().await;
}

#[tokio::test]
async fn pool_cap_evicts_the_least_recently_used() {
    let settings = PoolSettings {
        max_size: 4,
        connect_timeout: Duration::from_secs(5),
        acquire_timeout: Duration::from_secs(5),
        statement_timeout: Duration::from_secs(5),
        tls: Default::default(),
    };
    let (host, port) = pg_host_port();
    let policy = Arc::new(OutboundPolicy::new(
        parse_allow_list(&format!("{host}:{port}")).unwrap(),
    ));
    let options = |cap| DirectOptions {
        cap,
        allow_trust: true,
        outbound: policy.clone(),
        limits: FailureLimits {
            per_target: 5,
            per_caller: 20,
            window: Duration::from_secs(60),
        },
    };
    let pools = DirectPools::new(settings, options(2));
    let target = |app: &str| {
        direct::parse(&format!(
            "postgres://postgres:any@{host}:{port}/postgres?application_name={app}"
        ))
        .unwrap()
    };
    let (a, b, c) = (target("a"), target("b"), target("c"));
    pools.resolve(&a, None).await.unwrap();
    pools.resolve(&b, None).await.unwrap();
    pools.resolve(&a, None).await.unwrap(); // a is now more recent than b
    let tenant = pools.resolve(&c, None).await.unwrap();
    assert_eq!(pools.len(), 2);
    assert!(pools.contains(&a) && pools.contains(&c) && !pools.contains(&b));
    assert!(tenant.pool.state().connections <= direct::POOL_MAX_SIZE);
    assert!(!tenant.uri.contains("any"), "{}", tenant.uri);
    pools.resolve(&b, None).await.unwrap();
    assert_eq!(pools.len(), 2);
    assert!(!pools.contains(&a));
    // The pool connects to the address checked when it was created.
    let pinned = pools.pinned_address(&b).unwrap();
    assert_eq!(pinned.port(), port);
    if let Some(ip) = athena::outbound::ip_literal(&host) {
        assert_eq!(athena::outbound::canonical(ip), pinned.ip());
    }
    assert!(pinned.ip().is_loopback(), "{pinned}");

    // Disabled: cap 0.
    let off = DirectPools::new(settings, options(0));
    assert!(matches!(
        off.resolve(&a, None).await.err().unwrap(),
        athena::domain::DomainError::Forbidden(_)
    ));
}

// --- the real binary: PGPASSWORD in its environment, and its log ---

async fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("http://127.0.0.1:{port}{path}"))
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = tokio::time::timeout(
        Duration::from_secs(20),
        client.request(req.body(Full::new(Bytes::from(body.to_string()))).unwrap()),
    )
    .await
    .expect("request timed out")
    .expect("request");
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn process_ignores_pgpassword_and_never_logs_the_password() {
    let s = TestServer::start().await;
    let role = Role::create(&s).await;
    let (host, pg_port) = pg_host_port();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_athena"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "debug")
        .env("DATABASE_URL", &s.catalog_url)
        .env("PORT", port.to_string())
        .env("ATHENA_DIRECT_ALLOW_TRUST_AUTH", "true")
        // The test PostgreSQL and the fake one below (127.0.0.1, any port).
        .env(
            "ATHENA_OUTBOUND_ALLOW",
            format!("{}:{pg_port},127.0.0.1", bracket(&host)),
        )
        // Everything libpq would use to fill a missing password or host.
        .env("PGPASSWORD", &role.password)
        .env("PGUSER", &role.name)
        .env("PGHOST", &host)
        .env("PGPORT", pg_port.to_string())
        .env("PGDATABASE", &role.db)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "server did not start");
        assert!(child.try_wait().unwrap().is_none(), "server exited early");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fetch = r#"{"table_name":"items"}"#;
    let mut bodies = Vec::new();
    for uri in [
        role.without_password(),
        format!("postgres://{}:@{host}:{pg_port}/{}", role.name, role.db),
        format!("postgres://{host}:{pg_port}/{}", role.db),
        format!(
            "jdbc:postgresql://{host}:{pg_port}/{}?user={}",
            role.db, role.name
        ),
    ] {
        let (status, body) =
            request(port, "POST", "/gateway/fetch", &[("x-pg-uri", &uri)], fetch).await;
        assert_eq!(status, 401, "{uri}: {body}");
        bodies.push(body);
    }
    // With the password in the URI it works (trust allowed in this test).
    let (status, body) = request(
        port,
        "POST",
        "/gateway/fetch",
        &[("x-pg-uri", &role.pg_uri())],
        fetch,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    bodies.push(body);
    // A wrong password to a server that checks it.
    let (fake, _) = refusing_server().await;
    let wrong = format!(
        "postgres://{}:{}@127.0.0.1:{fake}/d",
        role.name,
        enc(&role.password)
    );
    let (status, body) = request(
        port,
        "POST",
        "/gateway/fetch",
        &[("x-pg-uri", &wrong)],
        fetch,
    )
    .await;
    assert_eq!(status, 401, "{body}");
    bodies.push(body);
    // A refused parameter.
    let (status, body) = request(
        port,
        "POST",
        "/gateway/fetch",
        &[
            ("x-pg-uri", &format!("{}?passfile=/x", role.pg_uri())),
            ("x-athena-client", "x"),
        ],
        fetch,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    bodies.push(body);

    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("direct PostgreSQL pool created"), "{log}");
    for text in bodies.iter().map(String::as_str).chain([log.as_ref()]) {
        assert!(!text.contains(&role.password), "password leaked: {text}");
        assert!(
            !text.contains(&enc(&role.password)),
            "password leaked: {text}"
        );
    }
    s.stop().await;
    role.drop().await;
}

// --- the outbound policy (security.md §11, issue 9 item 7) ---

async fn fetch_with(s: &TestServer, uri: &str) -> common::Reply {
    s.send(
        "POST",
        "/gateway/fetch",
        &[("x-pg-uri", uri)],
        fetch_items(),
    )
    .await
}

#[tokio::test]
async fn loopback_private_and_metadata_targets_are_refused_without_a_connection() {
    // No allow list: the gateway's own PostgreSQL is not reachable either.
    let s = TestServer::start_with(|c| c.direct_allow_trust_auth = true).await;
    let role = Role::create(&s).await;
    let r = fetch_with(&s, &role.pg_uri()).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let e = r.envelope();
    assert_eq!(e["code"], "forbidden", "{e}");
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("ATHENA_OUTBOUND_ALLOW"),
        "{e}"
    );

    let (port, accepts) = counting_listener().await;
    let started = Instant::now();
    for host in [
        "127.0.0.1",
        "127.0.0.2",
        "localhost",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::127.0.0.1]",
        "[64:ff9b::7f00:1]",
        "[2002:7f00:1::1]",
        "0.0.0.0",
        "[::]",
        "2130706433",
        "0177.0.0.1",
        "0x7f.0.0.1",
        "0x7f000001",
        "127.1",
        "169.254.169.254",
        "[::ffff:169.254.169.254]",
        "[fd00:ec2::254]",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.0.1",
        "100.64.0.1",
        "169.254.1.1",
        "[fe80::1]",
        "[fc00::1]",
        "224.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
    ] {
        for uri in [
            format!("postgres://u:p@{host}:{port}/d"),
            format!("jdbc:postgresql://{host}:{port}/d?user=u&password=p"),
        ] {
            let r = fetch_with(&s, &uri).await;
            assert_eq!(r.status, 403, "{uri}: {}", r.text());
            let e = r.envelope();
            assert_eq!(e["code"], "forbidden", "{uri}: {e}");
            assert!(!r.text().contains(":p@"), "{}", r.text());
        }
    }
    // Refused before any connection: no accept, and no wait on the
    // unroutable private addresses.
    assert_eq!(accepts.load(Ordering::SeqCst), 0);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    s.stop().await;
    role.drop().await;

    // An entry opens exactly its address and port: the local PostgreSQL,
    // not the listener next to it.
    let s = TestServer::start_with(|c| {
        c.direct_allow_trust_auth = true;
        allow_local_postgres(c);
    })
    .await;
    let role = Role::create(&s).await;
    let r = fetch_with(&s, &role.pg_uri()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (pg_host, _) = pg_host_port();
    let r = fetch_with(
        &s,
        &format!("postgres://u:p@{}:{port}/d", bracket(&pg_host)),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(accepts.load(Ordering::SeqCst), 0);
    s.stop().await;
    role.drop().await;
}

#[tokio::test]
async fn failed_authentications_are_throttled_per_caller_and_target() {
    // Defaults: 5 failed authentications per caller and target per 60 s.
    let s = TestServer::start_with(|c| allow(c, "127.0.0.1")).await;
    let (port, seen, accepts) = counted_refusing_server().await;
    for i in 0..5 {
        let r = fetch_with(&s, &format!("postgres://u:guess{i}@127.0.0.1:{port}/d")).await;
        assert_eq!(r.status, 401, "attempt {i}: {}", r.text());
    }
    assert_eq!(accepts.load(Ordering::SeqCst), 5);
    // The sixth guess (any password, any user, either form) is 429 and
    // never reaches the database.
    for uri in [
        format!("postgres://u:guess5@127.0.0.1:{port}/d"),
        format!("postgres://admin:other@127.0.0.1:{port}/postgres"),
        format!("jdbc:postgresql://127.0.0.1:{port}/d?user=u&password=x"),
        format!("postgres://u:p@[::ffff:127.0.0.1]:{port}/d"),
    ] {
        let r = fetch_with(&s, &uri).await;
        assert_eq!(r.status, 429, "{uri}: {}", r.text());
        let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        let e = r.envelope();
        assert_eq!(e["code"], "rate_limited", "{e}");
        assert!(!r.text().contains("guess"), "{}", r.text());
    }
    assert_eq!(accepts.load(Ordering::SeqCst), 5, "no further attempt");
    assert_eq!(seen.lock().unwrap().len(), 5);

    // Another target has its own count.
    let (other, _, other_accepts) = counted_refusing_server().await;
    let r = fetch_with(&s, &format!("postgres://u:p@127.0.0.1:{other}/d")).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(other_accepts.load(Ordering::SeqCst), 1);
    s.stop().await;
}

#[tokio::test]
async fn failed_connections_are_throttled_per_caller() {
    // A port scan through the gateway: 3 failures of any kind, then 429.
    let s = TestServer::start_with(|c| {
        allow(c, "127.0.0.1");
        c.direct_connect_failures = 3;
        c.pool_connect_timeout = Duration::from_secs(1);
    })
    .await;
    for _ in 0..3 {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let r = fetch_with(&s, &format!("postgres://u:p@127.0.0.1:{port}/d")).await;
        assert_eq!(r.status, 503, "{}", r.text());
    }
    let (port, accepts) = counting_listener().await;
    let r = fetch_with(&s, &format!("postgres://u:p@127.0.0.1:{port}/d")).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.headers.contains_key("retry-after"));
    assert!(r.envelope()["error"]
        .as_str()
        .unwrap()
        .contains("from this caller"));
    assert_eq!(accepts.load(Ordering::SeqCst), 0);
    s.stop().await;
}

#[tokio::test]
async fn a_host_name_entry_opens_that_name_and_port_only() {
    let (_, pg_port) = pg_host_port();
    let (host, _) = pg_host_port();
    if athena::outbound::ip_literal(&host).is_none_or(|ip| !ip.is_loopback()) {
        return; // the name entry below only makes sense for a local server
    }
    let s = TestServer::start_with(|c| {
        c.direct_allow_trust_auth = true;
        allow(c, &format!("LocalHost:{pg_port}"));
    })
    .await;
    let role = Role::create(&s).await;
    let by_name = format!(
        "postgres://{}:{}@localhost:{pg_port}/{}",
        role.name,
        enc(&role.password),
        role.db
    );
    let r = fetch_with(&s, &by_name).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The same server by address is not listed.
    let r = fetch_with(&s, &role.pg_uri()).await;
    assert_eq!(r.status, 403, "{}", r.text());
    s.stop().await;
    role.drop().await;
}
