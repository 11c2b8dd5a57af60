//! Direct PostgreSQL URIs (`x-pg-uri`, `x-athena-jdbc-url`, `x-jdbc-url`),
//! security.md §1: routing, the API-key bypass only with full credentials,
//! refused hosts and parameters, error statuses, the pool cap, and the
//! password never reaching a response or the log.
//!
//! The test PostgreSQL (scripts/dev-services) uses `trust` authentication,
//! so tests that need a successful connection set
//! `direct_allow_trust_auth`; password checking itself is exercised against
//! a minimal fake server that asks for a password and refuses it.

mod common;

use athena::db::direct::{self, DirectPools};
use athena::db::PoolSettings;
use bytes::Bytes;
use common::{free_port, psql, TestServer, ADMIN_KEY};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ADMIN: (&str, &str) = ("x-athena-key", ADMIN_KEY);

fn admin_url() -> String {
    std::env::var("ATHENA_PG_ADMIN_URL").expect("run through make test")
}

/// `host:port` of the test PostgreSQL (from `ATHENA_PG_ADMIN_URL`).
fn pg_host_port() -> (String, u16) {
    let cfg: tokio_postgres::Config = admin_url().parse().unwrap();
    let host = match &cfg.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        #[allow(unreachable_patterns)]
        other => panic!("ATHENA_PG_ADMIN_URL must use TCP: {other:?}"),
    };
    (host, cfg.get_ports().first().copied().unwrap_or(5432))
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
    let s = TestServer::start_with(|c| c.direct_allow_trust_auth = true).await;
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
    let s = TestServer::start().await;
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let sink = sink.clone();
            tokio::spawn(async move {
                let len = sock.read_i32().await.ok()? as usize;
                let mut startup = vec![0; len - 4];
                sock.read_exact(&mut startup).await.ok()?;
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
    (port, seen)
}

#[tokio::test]
async fn wrong_password_is_401_unreachable_and_hung_are_503_within_the_timeout() {
    let s = TestServer::start_with(|c| c.pool_connect_timeout = Duration::from_secs(1)).await;

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
    };
    let pools = DirectPools::new(settings, 2, true);
    let (host, port) = pg_host_port();
    let target = |app: &str| {
        direct::parse(&format!(
            "postgres://postgres:any@{host}:{port}/postgres?application_name={app}"
        ))
        .unwrap()
    };
    let (a, b, c) = (target("a"), target("b"), target("c"));
    pools.resolve(&a).await.unwrap();
    pools.resolve(&b).await.unwrap();
    pools.resolve(&a).await.unwrap(); // a is now more recent than b
    let tenant = pools.resolve(&c).await.unwrap();
    assert_eq!(pools.len(), 2);
    assert!(pools.contains(&a) && pools.contains(&c) && !pools.contains(&b));
    assert!(tenant.pool.state().connections <= direct::POOL_MAX_SIZE);
    assert!(!tenant.uri.contains("any"), "{}", tenant.uri);
    pools.resolve(&b).await.unwrap();
    assert_eq!(pools.len(), 2);
    assert!(!pools.contains(&a));

    // Disabled: cap 0.
    let off = DirectPools::new(settings, 0, true);
    assert_eq!(off.resolve(&a).await.err().unwrap().status(), 403);
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
