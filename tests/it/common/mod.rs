//! Test harness: every test gets its own catalog and tenant databases on the
//! PostgreSQL started by `scripts/dev-services` (via `make test`), and an
//! in-process server on an ephemeral port.

#![allow(dead_code)]

pub mod files;

use athena::config::{Config, S3Config};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_postgres::NoTls;

pub const ADMIN_KEY: &str = "test-admin-key";
/// The HS256 secret end-user JWTs of the tests are signed with.
pub const TEST_JWT_SECRET: &str = "athena-test-jwt-secret-of-32-bytes-or-more";
/// `ATHENA_SECRET_KEY` of test servers (storage credentials at rest).
pub const TEST_SECRET_KEY: &str =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
pub const CLIENT: &str = "tenant";

pub struct TestServer {
    pub addr: SocketAddr,
    pub tenant_url: String,
    pub catalog_url: String,
    dbs: Vec<String>,
    admin_url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    client: Client<HttpConnector, Full<Bytes>>,
    /// What this server was built from (`replica` starts another on it).
    config: Config,
}

pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts the standard error envelope and returns it.
    pub fn envelope(&self) -> Value {
        let v = self.json();
        assert_eq!(v["status"], "error", "{v}");
        assert!(v["message"].is_string() && v["error"].is_string(), "{v}");
        v
    }
}

fn admin_url() -> String {
    std::env::var("ATHENA_PG_ADMIN_URL").expect(
        "ATHENA_PG_ADMIN_URL is not set: run the tests through `make test`, which starts PostgreSQL",
    )
}

/// `postgres://…/postgres` → `postgres://…/<db>`.
pub fn with_db(url: &str, db: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("URL has a database part");
    format!("{base}/{db}")
}

pub async fn psql(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("connect to test postgres");
    tokio::spawn(conn);
    client
}

/// `host:port` of the test PostgreSQL (from `ATHENA_PG_ADMIN_URL`).
pub fn pg_host_port() -> (String, u16) {
    let cfg: tokio_postgres::Config = admin_url().parse().unwrap();
    let host = match &cfg.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        #[allow(unreachable_patterns)]
        other => panic!("ATHENA_PG_ADMIN_URL must use TCP: {other:?}"),
    };
    (host, cfg.get_ports().first().copied().unwrap_or(5432))
}

/// Adds `ATHENA_OUTBOUND_ALLOW` entries (comma-separated) to a config.
pub fn allow(c: &mut Config, entries: &str) {
    c.outbound_allow
        .extend(athena::outbound::parse_allow_list(entries).expect("valid allow list"));
}

/// Lets direct URIs reach the test PostgreSQL (its `host:port` only), as
/// `make serve` does for its own services.
pub fn allow_local_postgres(c: &mut Config) {
    let (host, port) = pg_host_port();
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    allow(c, &format!("{host}:{port}"));
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let admin_url = admin_url();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (catalog_db, tenant_db) = (format!("t_{id}_catalog"), format!("t_{id}_tenant"));
        let admin = psql(&admin_url).await;
        for db in [&catalog_db, &tenant_db] {
            admin
                .batch_execute(&format!("CREATE DATABASE \"{db}\""))
                .await
                .expect("create test database");
        }
        let tenant_url = with_db(&admin_url, &tenant_db);
        let s3 = std::env::var("S3_ENDPOINT").ok().map(|endpoint| S3Config {
            endpoint,
            region: std::env::var("S3_REGION").unwrap_or_else(|_| "us-east-1".into()),
            access_key: std::env::var("S3_ACCESS_KEY_ID").unwrap_or_default(),
            secret_key: std::env::var("S3_SECRET_ACCESS_KEY").unwrap_or_default(),
        });
        let catalog_url = with_db(&admin_url, &catalog_db);
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            admin_key: Some(ADMIN_KEY.into()),
            database_url: catalog_url.clone(),
            redis_url: std::env::var("REDIS_URL").ok(),
            s3,
            otlp_endpoint: None,
            config_file: None,
            seed_clients: vec![(CLIENT.into(), tenant_url.clone())],
            max_body_bytes: 64 * 1024,
            max_upload_bytes: 2 << 30,
            request_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(5),
            pool_max_size: 4,
            pool_connect_timeout: Duration::from_secs(5),
            pool_acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
            max_rows: 100,
            insert_window: Duration::ZERO,
            raw_sql_role: None,
            raw_sql_password: None,
            cache_ttl: Duration::ZERO,
            direct_pool_cap: 32,
            // The test PostgreSQL (scripts/dev-services) uses trust auth.
            direct_allow_trust_auth: false,
            deferred_workers: 1,
            deferred_clients: Vec::new(),
            deferred_stale_after: Duration::from_secs(60),
            d1: None,
            // Nothing outside public unicast: tests that reach the local
            // PostgreSQL or a fake server on 127.0.0.1 through a direct URI
            // or D1 allow-list it (`allow_local_postgres`, `allow`).
            outbound_allow: Vec::new(),
            direct_auth_failures: 5,
            direct_connect_failures: 20,
            direct_failure_window: Duration::from_secs(60),
            max_connections: 1024,
            max_in_flight: 512,
            secrets: Some(
                athena::secrets::Secrets::from_key_text(TEST_SECRET_KEY).expect("test key"),
            ),
            // SeaweedFS (scripts/dev-services) serves plain http.
            storage_allow_http: true,
            auth_jwt: athena::auth::end_user::JwtSettings::new(
                Some(TEST_JWT_SECRET),
                None,
                None,
                None,
            )
            .expect("test JWT settings"),
            auth_url: None,
            wildcard_host: None,
            // The socket peer is the client (IP policy).
            trusted_proxies: Default::default(),
            // A loaded test machine can take longer than the default 100 ms
            // for a Redis trip; the fallback tests kill Redis (refused at
            // once), so a slow answer is never mistaken for a dead Redis.
            admission: athena::admission::Settings {
                redis_timeout: Duration::from_secs(2),
                ..Default::default()
            },
            // Quick retries, so webhook tests see several attempts soon.
            events: athena::events::Settings {
                backoff: Duration::from_millis(100),
                ..Default::default()
            },
            logging_database_url: None,
            // The test tenants log in as the (superuser) admin.
            management: athena::management::Settings {
                allow_superuser: true,
                ..Default::default()
            },
            // Issue 19: the operation log on; collectors only when a test asks.
            stats: athena::stats::Settings {
                collect_every: Duration::ZERO,
                ..Default::default()
            },
            // Issue 21: no Docker, the real PATH, no installs, one clone worker.
            provision: Default::default(),
            // Issue 18: tests that back up set a bucket (`tests/it/backups.rs`).
            backups: athena::backups::Settings {
                pg_bin: std::env::var("PGBIN").ok().map(Into::into),
                ..Default::default()
            },
            // Issue 21: tests set mirrors / Typesense jobs on their fakes.
            integrations: Default::default(),
            // Issue 21: TLS tests set the fixture CA (`tests/it/pg_tls.rs`).
            pg_ssl_root_cert: None,
        };
        tweak(&mut config);
        Self::serve(config, tenant_url, vec![catalog_db, tenant_db], admin_url).await
    }

    /// A second replica: another server on the same catalog, tenant, Redis
    /// and S3 (its own caches and listener), `tweak`ed; its databases are
    /// this server's to drop.
    pub async fn replica_with(&self, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = self.config.clone();
        tweak(&mut config);
        Self::serve(
            config,
            self.tenant_url.clone(),
            Vec::new(),
            self.admin_url.clone(),
        )
        .await
    }

    async fn serve(
        config: Config,
        tenant_url: String,
        dbs: Vec<String>,
        admin_url: String,
    ) -> TestServer {
        let catalog_url = config.database_url.clone();
        let app = athena::runtime::build(config.clone())
            .await
            .expect("server builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(athena::http::server::serve(listener, app, async {
            let _ = rx.await;
        }));
        TestServer {
            addr,
            tenant_url,
            catalog_url,
            dbs,
            admin_url,
            shutdown: Some(tx),
            task: Some(task),
            client: Client::builder(hyper_util::rt::TokioExecutor::new()).build_http(),
            config,
        }
    }

    /// Creates one more empty database (dropped with the server).
    pub async fn extra_db(&mut self) -> String {
        let name = format!("t_{}_extra", uuid::Uuid::new_v4().simple());
        psql(&self.admin_url)
            .await
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap();
        self.dbs.push(name.clone());
        with_db(&self.admin_url, &name)
    }

    pub async fn tenant(&self) -> tokio_postgres::Client {
        psql(&self.tenant_url).await
    }

    /// Turns global API-key enforcement on or off and checks the answer.
    pub async fn enforce_keys(&self, on: bool) {
        let r = self
            .send(
                "PUT",
                "/admin/api-key-config",
                &[("x-athena-key", ADMIN_KEY)],
                Some(serde_json::json!({"enforce_api_keys": on})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["global"]["enforce_api_keys"], on);
    }

    /// A new API key (its plaintext) with these rights, bound to `client`
    /// when given.
    pub async fn api_key(&self, rights: &[&str], client: Option<&str>) -> String {
        let mut body = serde_json::json!({"name": "test key", "rights": rights});
        if let Some(c) = client {
            body["client_name"] = serde_json::json!(c);
        }
        let r = self
            .send(
                "POST",
                "/admin/api-keys",
                &[("x-athena-key", ADMIN_KEY)],
                Some(body),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["api_key"].as_str().unwrap().to_string()
    }

    /// Rows matching `sql` (`SELECT count(*) FROM …`) in the tenant, read
    /// directly from Postgres (the effect a test checks).
    pub async fn scalar(&self, sql: &str) -> i64 {
        self.tenant()
            .await
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0)
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Reply {
        let bytes = body
            .map(|b| Bytes::from(serde_json::to_vec(&b).unwrap()))
            .unwrap_or_default();
        self.send_raw(method, path, headers, bytes).await
    }

    /// Issue 19: `send` for a slow request (waits up to `within`).
    pub async fn send_within(
        &self,
        within: Duration,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: serde_json::Value,
    ) -> Reply {
        let uri = format!("http://{}{}", self.addr, path);
        let req = request(method, &uri, headers, Bytes::from(body.to_string()));
        answer_within(within, self.client.request(req)).await
    }

    pub async fn send_raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Reply {
        let uri = format!("http://{}{}", self.addr, path);
        let req = request(method, &uri, headers, body);
        answer(self.client.request(req)).await
    }

    /// One request on a fresh connection whose socket is bound to `from`
    /// (any 127.0.0.0/8 address reaches the server on loopback), so the
    /// server sees that peer address.
    pub async fn send_from(
        &self,
        from: std::net::IpAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Reply {
        let body = body
            .map(|b| Bytes::from(serde_json::to_vec(&b).unwrap()))
            .unwrap_or_default();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(SocketAddr::new(from, 0))
            .expect("bind the client socket");
        let stream = socket.connect(self.addr).await.expect("connect");
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .expect("handshake");
        tokio::spawn(conn);
        let host = self.addr.to_string();
        let mut all = vec![("host", host.as_str())];
        all.extend_from_slice(headers);
        answer(sender.send_request(request(method, path, &all, body))).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, &[], None).await
    }

    /// Stops the server and drops its databases.
    /// Issue 19: a graceful shutdown only (the databases stay, to be read
    /// back; `stop` drops them).
    pub async fn shut_down(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        let admin = psql(&self.admin_url).await;
        for db in &self.dbs {
            let _ = admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
                .await;
        }
    }
}

/// A test request: JSON content type when there is a body.
fn request(
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> http::Request<Full<Bytes>> {
    let mut req = http::Request::builder().method(method).uri(uri);
    if !body.is_empty() {
        req = req.header("content-type", "application/json");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(Full::new(body)).unwrap()
}

/// The whole answer of a request, within 20 s.
async fn answer<E: std::fmt::Debug>(
    sent: impl std::future::Future<Output = Result<http::Response<hyper::body::Incoming>, E>>,
) -> Reply {
    answer_within(Duration::from_secs(20), sent).await
}

async fn answer_within<E: std::fmt::Debug>(
    within: Duration,
    sent: impl std::future::Future<Output = Result<http::Response<hyper::body::Incoming>, E>>,
) -> Reply {
    let res = tokio::time::timeout(within, sent)
        .await
        .expect("request timed out")
        .expect("request failed");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body,
    }
}

/// A free loopback port for a server started by a test.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until a spawned server accepts connections (panics if it exits).
pub async fn wait_ready(port: u16, child: &mut std::process::Child) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("server exited early: {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("server did not start listening");
}
