//! Issue 21, TLS to tenant databases (`src/db/tls.rs`): each test starts
//! its OWN PostgreSQL with `ssl=on` and `hostssl`-only, SCRAM password
//! authentication (initdb into a temp dir, a free port), serving the
//! test-only certificate of `tests/fixtures/tls/` (CA `ca.crt`).

use crate::common::{self, allow, TestServer, ADMIN_KEY};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

// The providers' fakes (`conformance/src/integrations_fake.rs`).
use crate::integrations::fake;

const PASSWORD: &str = "tls-secret-pw";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

/// A private PostgreSQL with TLS on and plain TCP refused; stopped on drop.
struct TlsPostgres {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs a PostgreSQL binary, as `postgres` when the tests run as root
/// (initdb and postgres refuse root).
fn run_pg(bin: &Path, args: &[&str]) {
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    let out = cmd
        .args(args)
        .current_dir("/")
        .output()
        .expect("run a PostgreSQL binary");
    assert!(
        out.status.success(),
        "{} {args:?}: {}{}",
        bin.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TlsPostgres {
    fn start() -> TlsPostgres {
        let bin = PathBuf::from(
            std::env::var("PGBIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into()),
        );
        let dir =
            std::env::temp_dir().join(format!("athena-pg-tls-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = common::free_port();
        let data = dir.join("data");
        std::fs::write(dir.join("pw"), PASSWORD).unwrap();
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(ok.success());
        }
        run_pg(
            &bin.join("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                &format!("--pwfile={}", dir.join("pw").display()),
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        for f in ["server.crt", "server.key"] {
            std::fs::copy(fixture(f), data.join(f)).unwrap();
        }
        // TCP only over TLS (`hostssl`); the test itself sets up over the socket.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.0/8 scram-sha-256\n",
        )
        .unwrap();
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap();
        use std::io::Write;
        writeln!(
            conf,
            "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n\
             listen_addresses = '127.0.0.1,127.0.0.2'\nport = {port}\nunix_socket_directories = '{}'\n\
             fsync = off\nmax_connections = 40",
            dir.display()
        )
        .unwrap();
        drop(conf);
        if is_root() {
            Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(&dir)
                .status()
                .unwrap();
        }
        std::fs::set_permissions(
            data.join("server.key"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let pg = TlsPostgres { dir, port, bin };
        run_pg(
            &pg.bin.join("pg_ctl"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                pg.dir.join("log").to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        pg
    }

    /// A superuser session over the unix socket (trust).
    async fn local(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(
            &format!(
                "host={} port={} user=postgres dbname=postgres",
                self.dir.display(),
                self.port
            ),
            tokio_postgres::NoTls,
        )
        .await
        .expect("connect over the socket");
        tokio::spawn(conn);
        client
    }

    /// `postgres://postgres:pw@{host}:{port}/postgres` plus `query`.
    fn uri(&self, host: &str, query: &str) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@{host}:{}/postgres{query}",
            self.port
        )
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"));
            c
        } else {
            Command::new(self.bin.join("pg_ctl"))
        };
        let _ = cmd
            .args([
                "-D",
                self.dir.join("data").to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .current_dir("/")
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The TLS database's rows: `items` and a view telling whether the
/// reading session is encrypted.
async fn seed(pg: &TlsPostgres) {
    pg.local()
        .await
        .batch_execute(
            "CREATE TABLE items (id int PRIMARY KEY, label text);
             INSERT INTO items VALUES (1, 'over tls');
             CREATE VIEW my_ssl AS
               SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid();",
        )
        .await
        .unwrap();
}

async fn fetch(server: &TestServer, headers: &[(&str, &str)], table: &str) -> common::Reply {
    server
        .send(
            "POST",
            "/gateway/fetch",
            headers,
            Some(json!({"table_name": table})),
        )
        .await
}

fn no_secret(r: &common::Reply) {
    assert!(
        !r.text().contains(PASSWORD),
        "a password came back: {}",
        r.text()
    );
}

#[tokio::test]
async fn direct_uris_connect_by_libpq_sslmode() {
    let pg = TlsPostgres::start();
    seed(&pg).await;
    let allowed = format!("127.0.0.1:{0},127.0.0.2:{0}", pg.port);
    let ca = fixture("ca.crt");
    let server = TestServer::start_with(|c| {
        allow(c, &allowed);
        c.pg_ssl_root_cert = Some(ca);
    })
    .await;

    // require (+ SCRAM channel binding, as Neon URIs ask), verify-ca and
    // verify-full with the fixture CA configured: an encrypted session.
    for query in [
        "?sslmode=require",
        "?sslmode=require&channel_binding=require",
        "?sslmode=verify-ca",
        "?sslmode=verify-full",
        "?sslmode=prefer",
        "",
    ] {
        let uri = pg.uri("127.0.0.1", query);
        let r = fetch(&server, &[("x-pg-uri", uri.as_str())], "my_ssl").await;
        assert_eq!(r.status, 200, "{query}: {}", r.text());
        assert_eq!(
            r.json()["data"][0]["ssl"],
            Value::Bool(true),
            "{query}: {}",
            r.text()
        );
        let r = fetch(&server, &[("x-pg-uri", uri.as_str())], "items").await;
        assert_eq!(r.json()["data"][0]["label"], "over tls", "{query}");
    }

    // disable against a hostssl-only server: a clean 400 naming the fix.
    let uri = pg.uri("127.0.0.1", "?sslmode=disable");
    let r = fetch(&server, &[("x-pg-uri", uri.as_str())], "items").await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("TLS connections only"), "{}", r.text());
    no_secret(&r);

    // Without the CA: verify-full and verify-ca fail with a 503 envelope
    // (the certificate is not trusted), require still connects.
    let bare = TestServer::start_with(|c| allow(c, &allowed)).await;
    for mode in ["verify-full", "verify-ca"] {
        let uri = pg.uri("127.0.0.1", &format!("?sslmode={mode}"));
        let r = fetch(&bare, &[("x-pg-uri", uri.as_str())], "items").await;
        assert_eq!(r.status, 503, "{mode}: {}", r.text());
        let env = r.envelope();
        assert!(env["error"].is_string(), "{mode}: {}", r.text());
        assert!(
            r.text().to_lowercase().contains("certificate"),
            "{mode}: {}",
            r.text()
        );
        assert!(
            r.text().contains(&format!("sslmode={mode}")),
            "{mode}: {}",
            r.text()
        );
        if mode == "verify-ca" {
            // No host name check: the public roots are not trusted for it.
            assert!(r.text().contains("use sslmode=verify-full"), "{}", r.text());
        }
        no_secret(&r);
    }
    let uri = pg.uri("127.0.0.1", "?sslmode=require");
    let r = fetch(&bare, &[("x-pg-uri", uri.as_str())], "my_ssl").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"][0]["ssl"], Value::Bool(true));

    // verify-full checks the name, verify-ca does not: the certificate
    // names localhost and 127.0.0.1, not 127.0.0.2 (the same server).
    let uri = pg.uri("127.0.0.2", "?sslmode=verify-full");
    let r = fetch(&server, &[("x-pg-uri", uri.as_str())], "items").await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(
        r.text().to_lowercase().contains("certificate"),
        "{}",
        r.text()
    );
    let uri = pg.uri("127.0.0.2", "?sslmode=verify-ca");
    let r = fetch(&server, &[("x-pg-uri", uri.as_str())], "my_ssl").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"][0]["ssl"], Value::Bool(true));
    bare.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn a_neon_uri_with_sslmode_require_is_a_working_client() {
    let pg = TlsPostgres::start();
    seed(&pg).await;
    let fake = fake::Fake::start(String::new()).await;
    let allowed = format!("127.0.0.1:{},127.0.0.1:{}", pg.port, fake.port);
    let server = TestServer::start_with(|c| allow(c, &allowed)).await;
    // The fake hands out the URI with `?sslmode=require&channel_binding=require`.
    fake.set_uri(&pg.uri("127.0.0.1", ""));
    fake.state.lock().unwrap().require_tls = true;
    let r = server
        .send(
            "POST",
            "/admin/provision/providers/neon",
            &[("x-athena-key", ADMIN_KEY)],
            Some(json!({"client_name": "neon_tls", "api_key": fake::NEON_KEY,
                        "api_base_url": fake.base("/neon"), "project_id": "proj-1"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    no_secret(&r);
    assert_eq!(r.json()["provisioned"], true, "{}", r.text());
    let stored: String = common::psql(&server.catalog_url)
        .await
        .query_one(
            "SELECT pg_uri FROM athena_clients WHERE client_name = 'neon_tls'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(stored.contains("sslmode=require"), "the TLS mode is kept");
    // The tenant schema went in over TLS; the client reads over TLS.
    let r = fetch(&server, &[("x-athena-client", "neon_tls")], "items").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"][0]["label"], "over tls");
    let r = fetch(&server, &[("x-athena-client", "neon_tls")], "my_ssl").await;
    assert_eq!(
        r.json()["data"][0]["ssl"],
        Value::Bool(true),
        "{}",
        r.text()
    );
    let tables: i64 = pg
        .local()
        .await
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'athena'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(tables > 0, "the tenant schema was provisioned");
    server.stop().await;
}
