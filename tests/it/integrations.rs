//! Issue 21, integrations: hosted providers (Neon, Railway, Render, admin
//! and management), Typesense sync and search, Supabase SSL enforcement and
//! `/health/cluster`, every external service a local fake
//! (`conformance/src/integrations_fake.rs`) on an allow-listed port.

use crate::common::{self, allow, allow_local_postgres, psql, TestServer, ADMIN_KEY, CLIENT};
use athena::integrations::typesense::JobConfig;
use serde_json::{json, Value};
use std::time::Duration;

#[path = "../../conformance/src/integrations_fake.rs"]
pub(crate) mod fake;

use fake::Fake;

const ADMIN: [(&str, &str); 1] = [("x-athena-key", ADMIN_KEY)];

/// `postgres://user@host/db` → `postgres://user:pw@host/db` (the test
/// PostgreSQL trusts local logins; §1 wants a password in the URI).
fn with_password(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (user, host) = rest.split_once('@').unwrap();
    let user = user.split(':').next().unwrap();
    format!("{scheme}://{user}:fake-secret-pw@{host}")
}

async fn start(tweak: impl FnOnce(&mut athena::config::Config, &Fake)) -> (TestServer, Fake) {
    let fake = Fake::start(String::new()).await;
    let f = fake.clone();
    let server = TestServer::start_with(move |c| {
        allow(c, &format!("127.0.0.1:{}", f.port));
        allow_local_postgres(c);
        tweak(c, &f);
    })
    .await;
    (server, fake)
}

/// A fresh database with one row in `items`, handed out by the fakes.
async fn provider_db(server: &mut TestServer, fake: &Fake, label: &str) -> String {
    let url = server.extra_db().await;
    psql(&url)
        .await
        .batch_execute(&format!(
            "CREATE TABLE items (id int PRIMARY KEY, label text);
             INSERT INTO items VALUES (1, '{label}')"
        ))
        .await
        .unwrap();
    let uri = with_password(&url);
    fake.set_uri(&uri);
    uri
}

async fn fetch_label(server: &TestServer, client: &str) -> Value {
    let r = server
        .send(
            "POST",
            "/gateway/fetch",
            &[("x-athena-client", client)],
            Some(json!({"table_name": "items"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["data"][0]["label"].clone()
}

fn no_secret(r: &common::Reply) {
    let t = r.text();
    assert!(!t.contains("fake-secret-pw"), "a password came back: {t}");
    for key in [
        fake::NEON_KEY,
        fake::RAILWAY_TOKEN,
        fake::RENDER_KEY,
        fake::TS_KEY,
    ] {
        assert!(!t.contains(key), "a token came back: {t}");
    }
}

#[tokio::test]
async fn neon_fake_gives_a_working_client() {
    let (mut server, fake) = start(|_, _| {}).await;
    provider_db(&mut server, &fake, "from neon").await;
    let body = json!({"client_name": "neon_client", "api_key": fake::NEON_KEY,
                      "api_base_url": fake.base("/neon"), "project_id": "proj-1"});
    // No admin key: the spine refuses.
    let r = server
        .send(
            "POST",
            "/admin/provision/providers/neon",
            &[],
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    let r = server
        .send(
            "POST",
            "/admin/provision/providers/neon",
            &ADMIN,
            Some(body),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    no_secret(&r);
    let v = r.json();
    assert_eq!(v["client_name"], "neon_client");
    assert_eq!(v["provider"], "neon");
    assert_eq!(v["provisioned"], true);
    assert_eq!(v["registered_catalog"], true);
    assert_eq!(v["registered_runtime"], true);
    // The read-write endpoint, the default branch, the unprotected role.
    assert_eq!(v["details"]["branch_id"], "br-main");
    assert_eq!(v["details"]["endpoint_id"], "ep-rw");
    assert_eq!(v["details"]["role_name"], "app_owner");
    // Effect: registered, migrated, and the data plane works on it.
    let clients = server.send("GET", "/admin/clients", &ADMIN, None).await;
    assert!(
        clients.json()["clients"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["client_name"] == "neon_client"),
        "{}",
        clients.text()
    );
    assert_eq!(fetch_label(&server, "neon_client").await, "from neon");
    // A new project and a database that is not there yet: both created.
    let r = server
        .send(
            "POST",
            "/admin/provision/providers/neon",
            &ADMIN,
            Some(json!({"client_name": "neon_new", "api_key": fake::NEON_KEY,
                        "api_base_url": fake.base("/neon"), "create_project_if_missing": true,
                        "project_name": "fresh", "database_name": "appdb"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["details"]["project_id"], "proj-created");
    assert_eq!(r.json()["details"]["database_name"], "appdb");
    let seen = fake.state.lock().unwrap().seen.clone();
    assert!(
        seen.contains(&"POST /neon/projects".to_string()),
        "{seen:?}"
    );
    assert!(
        seen.contains(&"POST /neon/projects/proj-created/branches/br-main/databases".to_string()),
        "{seen:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn neon_errors_map_to_400_and_503() {
    let (mut server, fake) = start(|_, _| {}).await;
    provider_db(&mut server, &fake, "x").await;
    let closed = common::free_port();
    let base = fake.base("/neon");
    let cases = [
        (
            json!({"client_name": "n1", "api_base_url": base, "project_id": "p"}),
            400,
            "api_key",
        ),
        (
            json!({"client_name": "n1", "api_key": "wrong", "api_base_url": base, "project_id": "p"}),
            400,
            "invalid API key",
        ),
        (
            json!({"client_name": "n1", "api_key": fake::NEON_KEY, "api_base_url": base, "project_id": "missing"}),
            400,
            "does not exist",
        ),
        (
            json!({"client_name": "n1", "api_key": fake::NEON_KEY, "api_base_url": base}),
            400,
            "project_id",
        ),
        (
            json!({"client_name": "n1", "api_key": fake::NEON_KEY, "api_base_url": base, "project_id": "down"}),
            503,
            "maintenance",
        ),
        (
            json!({"client_name": "n1", "api_key": fake::NEON_KEY, "api_base_url": format!("http://127.0.0.1:{closed}"), "project_id": "p"}),
            400,
            "api_base_url",
        ),
        (
            json!({"client_name": "n1", "api_key": fake::NEON_KEY, "api_base_url": "http://169.254.169.254", "project_id": "p"}),
            400,
            "api_base_url",
        ),
        (
            json!({"client_name": "n1", "api_key": fake::NEON_KEY, "api_base_url": "ftp://x", "project_id": "p"}),
            400,
            "api_base_url",
        ),
        (
            json!({"client_name": "n1", "api_key": "neon\r\nX-Injected: 1", "api_base_url": base, "project_id": "p"}),
            400,
            "api_key",
        ),
        (
            json!({"client_name": "n1", "api_key": fake::NEON_KEY, "api_base_url": base, "project_id": "proj-1", "database_name": "bad-name"}),
            400,
            "database_name",
        ),
        (
            json!({"client_name": "bad name", "connection_uri": "postgres://u:p@127.0.0.1/db"}),
            400,
            "client_name",
        ),
        (
            json!({"client_name": "n1", "connection_uri": "postgres://u:p@/db?host=/tmp"}),
            400,
            "connection_uri",
        ),
        (
            json!({"client_name": "n1", "connection_uri": "postgres://u@127.0.0.1:5432/db"}),
            400,
            "password",
        ),
        (
            json!({"client_name": "n1", "connection_uri": "postgres://u:p@10.0.0.1:5432/db"}),
            400,
            "connection_uri",
        ),
    ];
    for (body, status, needle) in cases {
        let r = server
            .send(
                "POST",
                "/admin/provision/providers/neon",
                &ADMIN,
                Some(body.clone()),
            )
            .await;
        assert_eq!(r.status, status, "{body}: {}", r.text());
        let e = r.envelope();
        assert!(e["error"].as_str().unwrap().contains(needle), "{body}: {e}");
    }
    // An allow-listed port where nothing listens: unavailable.
    let s2 = TestServer::start_with(|c| allow(c, &format!("127.0.0.1:{closed}"))).await;
    let r = s2
        .send(
            "POST",
            "/admin/provision/providers/neon",
            &ADMIN,
            Some(json!({"client_name": "n1", "api_key": "k",
                        "api_base_url": format!("http://127.0.0.1:{closed}"), "project_id": "p"})),
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    // Nothing was registered by the failures.
    let clients = server.send("GET", "/admin/clients", &ADMIN, None).await;
    assert!(!clients.text().contains("\"n1\""));
    s2.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn railway_render_and_direct_uris() {
    let (mut server, fake) = start(|_, _| {}).await;
    let uri = provider_db(&mut server, &fake, "hosted").await;
    let send = |path: &'static str, body: Value| {
        let server = &server;
        async move {
            let r = server.send("POST", path, &ADMIN, Some(body)).await;
            no_secret(&r);
            r
        }
    };
    // Railway: the project's `Postgres` service, its public URL.
    let r = send(
        "/admin/provision/providers/railway",
        json!({"client_name": "rail", "api_key": fake::RAILWAY_TOKEN,
               "graphql_url": fake.base("/railway/graphql"), "project_id": "rp-1",
               "service_name": "Postgres"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["details"]["service_id"], "svc-pg");
    assert_eq!(fetch_label(&server, "rail").await, "hosted");
    // A service that is not there, without create: 400; with create: made.
    let r = send(
        "/admin/provision/providers/railway",
        json!({"client_name": "rail2", "api_key": fake::RAILWAY_TOKEN,
               "graphql_url": fake.base("/railway/graphql"), "project_id": "rp-1",
               "service_name": "other"}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = send(
        "/admin/provision/providers/railway",
        json!({"client_name": "rail2", "api_key": fake::RAILWAY_TOKEN,
               "graphql_url": fake.base("/railway/graphql"), "create_project_if_missing": true,
               "project_name": "new", "service_name": "other", "create_service_if_missing": true,
               "register_runtime": false}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["details"]["project_id"], "rp-created");
    assert_eq!(r.json()["details"]["service_id"], "svc-created");
    assert_eq!(r.json()["registered_runtime"], false);
    // A plugin (legacy Railway databases), created when missing.
    let r = send(
        "/admin/provision/providers/railway",
        json!({"client_name": "rail_plugin", "api_key": fake::RAILWAY_TOKEN,
               "graphql_url": fake.base("/railway/graphql"), "project_id": "rp-1",
               "create_plugin_if_missing": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["details"]["plugin_id"], "plg-created");
    // GraphQL errors are the provider refusing: 400 with its message.
    let r = send(
        "/admin/provision/providers/railway",
        json!({"client_name": "rail3", "api_key": "wrong",
               "graphql_url": fake.base("/railway/graphql"), "project_id": "rp-1"}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("Not Authorized"));
    // Render: by id, then created (owner required).
    let r = send(
        "/admin/provision/providers/render",
        json!({"client_name": "rnd", "api_key": fake::RENDER_KEY,
               "api_base_url": fake.base("/render"), "service_id": "dpg-1"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(fetch_label(&server, "rnd").await, "hosted");
    let r = send(
        "/admin/provision/providers/render",
        json!({"client_name": "rnd2", "api_key": fake::RENDER_KEY,
               "api_base_url": fake.base("/render"), "service_name": "fresh",
               "create_service_if_missing": true}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = send(
        "/admin/provision/providers/render",
        json!({"client_name": "rnd2", "api_key": fake::RENDER_KEY,
               "api_base_url": fake.base("/render"), "service_name": "fresh", "owner_id": "tea-1",
               "create_service_if_missing": true, "plan": "basic_256mb", "disk_size_gb": 1}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["details"]["service_id"], "dpg-created");
    // A connection_uri skips the provider (no api_key needed).
    let r = send(
        "/admin/provision/providers/render",
        json!({"client_name": "direct", "connection_uri": uri, "provision_schema": false}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["provisioned"], false);
    assert_eq!(fetch_label(&server, "direct").await, "hosted");
    server.stop().await;
}

#[tokio::test]
async fn management_variant_provisions_the_callers_client() {
    let (mut server, fake) = start(|_, _| {}).await;
    provider_db(&mut server, &fake, "managed").await;
    let key = server
        .api_key(&["management.provision.write"], Some(CLIENT))
        .await;
    let body = json!({"api_key": fake::NEON_KEY, "api_base_url": fake.base("/neon"),
                      "project_id": "proj-2"});
    // The admin key is not a client-bound key.
    let r = server
        .send(
            "POST",
            "/management/provision/providers/neon",
            &[("x-athena-key", ADMIN_KEY), ("x-athena-client", CLIENT)],
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let headers = [("apikey", key.as_str()), ("x-athena-client", CLIENT)];
    let mut other = body.clone();
    other["client_name"] = json!("someone_else");
    let r = server
        .send(
            "POST",
            "/management/provision/providers/neon",
            &headers,
            Some(other),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = server
        .send(
            "POST",
            "/management/provision/providers/neon",
            &headers,
            Some(body),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["client_name"], CLIENT);
    // The caller's client now routes to the provider's database.
    assert_eq!(fetch_label(&server, CLIENT).await, "managed");
    server.stop().await;
}

/// Review fix 1: the operator's provider token never leaves for a host a
/// request names, and management keys never use it at all.
#[tokio::test]
async fn environment_tokens_only_reach_the_configured_api() {
    // NEON_API_KEY set, no ATHENA_NEON_API_URL: the token belongs to the
    // default (real) Neon API only.
    let (mut server, fake) = start(|c, _| {
        c.integrations.neon_api_key = Some(fake::NEON_KEY.into());
    })
    .await;
    provider_db(&mut server, &fake, "env").await;
    let key = server
        .api_key(&["management.provision.write"], Some(CLIENT))
        .await;
    let mgmt = [("apikey", key.as_str()), ("x-athena-client", CLIENT)];
    let attacker = json!({"api_base_url": fake.base("/neon"), "project_id": "proj-1"});
    let r = server
        .send(
            "POST",
            "/management/provision/providers/neon",
            &mgmt,
            Some(attacker.clone()),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.envelope()["error"].as_str().unwrap().contains("api_key"));
    // Management without a base URL either: never the operator's token.
    let r = server
        .send(
            "POST",
            "/management/provision/providers/neon",
            &mgmt,
            Some(json!({"project_id": "proj-1"})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    // Admin naming a base URL without its own api_key: refused too.
    let mut admin_body = attacker.clone();
    admin_body["client_name"] = json!("env_admin");
    let r = server
        .send(
            "POST",
            "/admin/provision/providers/neon",
            &ADMIN,
            Some(admin_body),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.envelope()["error"].as_str().unwrap().contains("api_key"));
    // Nothing reached the fake (the token was never sent anywhere).
    let seen = fake.state.lock().unwrap().seen.clone();
    assert!(seen.iter().all(|s| !s.contains("/neon")), "{seen:?}");
    server.stop().await;

    // With ATHENA_NEON_API_URL configured, the admin may rely on the
    // environment token toward that URL.
    let (mut server, fake) = start(|c, f| {
        c.integrations.neon_api_key = Some(fake::NEON_KEY.into());
        c.integrations.neon_api_url = Some(f.base("/neon"));
    })
    .await;
    provider_db(&mut server, &fake, "env ok").await;
    let r = server
        .send(
            "POST",
            "/admin/provision/providers/neon",
            &ADMIN,
            Some(json!({"client_name": "env_ok", "project_id": "proj-1"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(fetch_label(&server, "env_ok").await, "env ok");
    server.stop().await;
}

/// Review fixes 2 and 3: the stored URI is pinned to the checked address
/// (`hostaddr`), and a URI demanding TLS is refused, not downgraded.
#[tokio::test]
async fn provider_uris_are_pinned_and_tls_is_not_downgraded() {
    let (mut server, fake) = start(|_, _| {}).await;
    let uri = provider_db(&mut server, &fake, "pinned").await;
    let (host, port) = common::pg_host_port();
    assert_eq!(host, "127.0.0.1", "the test expects a loopback PostgreSQL");
    let by_name = uri.replace(&format!("@{host}:{port}"), &format!("@localhost:{port}"));
    assert!(by_name.contains("@localhost:"), "{by_name}");
    let r = server
        .send(
            "POST",
            "/admin/provision/providers/render",
            &ADMIN,
            Some(json!({"client_name": "pinned", "connection_uri": by_name})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let catalog = psql(&server.catalog_url).await;
    let stored: String = catalog
        .query_one(
            "SELECT pg_uri FROM athena_clients WHERE client_name = 'pinned'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(stored.contains("@localhost:"), "host kept");
    assert!(
        stored.ends_with("hostaddr=127.0.0.1"),
        "the stored URI connects to the checked address"
    );
    assert_eq!(fetch_label(&server, "pinned").await, "pinned");

    // TLS demanded by the provider (real Neon URIs) from this plaintext
    // test server: never downgraded, the connection fails (503), nothing
    // is stored. (`tests/it/pg_tls.rs` proves the same URIs work against
    // a server with TLS.)
    fake.state.lock().unwrap().require_tls = true;
    let r = server
        .send(
            "POST",
            "/admin/provision/providers/neon",
            &ADMIN,
            Some(json!({"client_name": "tls_neon", "api_key": fake::NEON_KEY,
                        "api_base_url": fake.base("/neon"), "project_id": "proj-1"})),
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("does not support TLS"), "{}", r.text());
    for mode in ["require", "verify-ca", "verify-full"] {
        let r = server
            .send(
                "POST",
                "/admin/provision/providers/render",
                &ADMIN,
                Some(json!({"client_name": "tls_direct",
                            "connection_uri": format!("{uri}?sslmode={mode}")})),
            )
            .await;
        assert_eq!(r.status, 503, "{mode}: {}", r.text());
    }
    // The optional forms fall back to plaintext (libpq's `prefer`).
    let r = server
        .send(
            "POST",
            "/admin/provision/providers/render",
            &ADMIN,
            Some(json!({"client_name": "tls_prefer",
                        "connection_uri": format!("{uri}?sslmode=prefer&channel_binding=prefer")})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let names: i64 = catalog
        .query_one(
            "SELECT count(*) FROM athena_clients WHERE client_name IN ('tls_neon', 'tls_direct')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(names, 0);
    server.stop().await;
}

/// Review fix 4: a management key cannot revive a deactivated or deleted
/// client, and never changes its state.
#[tokio::test]
async fn management_providers_leave_client_state_alone() {
    let (mut server, fake) = start(|_, _| {}).await;
    let uri = provider_db(&mut server, &fake, "revived?").await;
    let key = server
        .api_key(&["management.provision.write"], Some(CLIENT))
        .await;
    let mgmt = [("apikey", key.as_str()), ("x-athena-client", CLIENT)];
    let catalog = psql(&server.catalog_url).await;
    let state = || async {
        let row = psql(&server.catalog_url)
            .await
            .query_one(
                "SELECT is_active, deleted_at IS NOT NULL, pg_uri FROM athena_clients
                  WHERE client_name = $1",
                &[&CLIENT],
            )
            .await
            .unwrap();
        (
            row.get::<_, bool>(0),
            row.get::<_, bool>(1),
            row.get::<_, String>(2),
        )
    };
    let before = state().await;
    catalog
        .execute(
            "UPDATE athena_clients SET is_active = false WHERE client_name = $1",
            &[&CLIENT],
        )
        .await
        .unwrap();
    let body = json!({"connection_uri": uri});
    let r = server
        .send(
            "POST",
            "/management/provision/providers/render",
            &mgmt,
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(state().await, (false, false, before.2.clone()));
    catalog
        .execute(
            "UPDATE athena_clients SET deleted_at = now() WHERE client_name = $1",
            &[&CLIENT],
        )
        .await
        .unwrap();
    let r = server
        .send(
            "POST",
            "/management/provision/providers/render",
            &mgmt,
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(state().await, (false, true, before.2.clone()));
    // A live, active client: only its URI changes.
    catalog
        .execute(
            "UPDATE athena_clients SET deleted_at = NULL, is_active = true WHERE client_name = $1",
            &[&CLIENT],
        )
        .await
        .unwrap();
    let r = server
        .send(
            "POST",
            "/management/provision/providers/render",
            &mgmt,
            Some(body),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let after = state().await;
    assert_eq!((after.0, after.1), (true, false));
    assert_ne!(after.2, before.2);
    server.stop().await;
}

/// Review fix 8: a provider slower than the deadline is a 503 with
/// Retry-After; the retry finds the resource by name and registers it.
#[tokio::test]
async fn slow_provider_creation_is_finished_by_the_retry() {
    let (mut server, fake) = start(|c, _| {
        c.integrations.provider_deadline = Some(Duration::from_secs(1));
    })
    .await;
    provider_db(&mut server, &fake, "slow").await;
    fake.state.lock().unwrap().render_hold = true;
    let body = json!({"client_name": "rnd_slow", "api_key": fake::RENDER_KEY,
                      "api_base_url": fake.base("/render"), "service_name": "slow-db",
                      "owner_id": "tea-1", "create_service_if_missing": true});
    let r = server
        .send(
            "POST",
            "/admin/provision/providers/render",
            &ADMIN,
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.headers.get("retry-after").is_some());
    assert!(r.text().contains("still being created"), "{}", r.text());
    fake.state.lock().unwrap().render_hold = false;
    let r = server
        .send(
            "POST",
            "/admin/provision/providers/render",
            &ADMIN,
            Some(body),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["details"]["service_id"], "dpg-created");
    assert_eq!(fetch_label(&server, "rnd_slow").await, "slow");
    let created = fake
        .state
        .lock()
        .unwrap()
        .seen
        .iter()
        .filter(|s| *s == "POST /render/postgres")
        .count();
    assert_eq!(created, 1, "the retry created nothing new");
    // Neon: a retry of a project creation finds the project by name.
    for _ in 0..2 {
        let r = server
            .send(
                "POST",
                "/admin/provision/providers/neon",
                &ADMIN,
                Some(
                    json!({"client_name": "neon_again", "api_key": fake::NEON_KEY,
                            "api_base_url": fake.base("/neon"),
                            "create_project_if_missing": true, "project_name": "again"}),
                ),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let created = fake
        .state
        .lock()
        .unwrap()
        .seen
        .iter()
        .filter(|s| *s == "POST /neon/projects")
        .count();
    assert_eq!(created, 1);
    server.stop().await;
}

fn job(id: i64, fake: &Fake, table: &str, collection: &str, batch: i32) -> JobConfig {
    serde_json::from_value(json!({
        "id": id, "source_client_name": CLIENT, "source_table_name": table,
        "key_column": "id", "collection_name": collection, "base_url": fake.base("/ts"),
        "api_key": fake::TS_KEY, "batch_size": batch,
    }))
    .unwrap()
}

async fn running_run(server: &TestServer, job_id: i64) -> i64 {
    let catalog = psql(&server.catalog_url).await;
    for _ in 0..100 {
        if let Some(row) = catalog
            .query_opt(
                "SELECT id FROM typesense_sync_runs WHERE job_id = $1 AND status = 'running'",
                &[&job_id],
            )
            .await
            .unwrap()
        {
            return row.get(0);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {job_id} never ran");
}

#[tokio::test]
async fn typesense_sync_then_search() {
    let (server, fake) = start(|c, f| {
        c.integrations.typesense_jobs = vec![
            job(1, f, "docs", "docs", 2),
            job(2, f, "docs", "slow_docs", 1),
        ];
    })
    .await;
    server
        .tenant()
        .await
        .batch_execute(
            "CREATE TABLE docs (id int PRIMARY KEY, title text);
             INSERT INTO docs SELECT g, 'doc ' || g FROM generate_series(1, 4) g;
             INSERT INTO docs VALUES (10, 'A banana split')",
        )
        .await
        .unwrap();
    let post = |path: String, body: Option<Value>| {
        let server = &server;
        async move { server.send("POST", &path, &ADMIN, body).await }
    };
    // The key is stored sealed.
    let catalog = psql(&server.catalog_url).await;
    let sealed: Vec<u8> = catalog
        .query_one(
            "SELECT api_key_sealed FROM typesense_sync_jobs WHERE id = 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!String::from_utf8_lossy(&sealed).contains(fake::TS_KEY));
    // backends/test: 200 either way; a refused URL is a 400.
    let conn = json!({"base_url": fake.base("/ts"), "api_key": fake::TS_KEY});
    let r = post("/typesense/backends/test".into(), Some(conn.clone())).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["reachable"], true);
    let r = post(
        "/typesense/backends/test".into(),
        Some(json!({"base_url": fake.base("/ts"), "api_key": "wrong"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["reachable"], false);
    assert!(r.json()["error"].as_str().unwrap().contains("Forbidden"));
    let r = post(
        "/typesense/backends/test".into(),
        Some(json!({"base_url": format!("http://127.0.0.1:{}", common::free_port()), "api_key": "k"})),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = server
        .send("POST", "/typesense/backends/test", &[], Some(conn.clone()))
        .await;
    assert_eq!(r.status, 401, "no admin key: {}", r.text());
    // run → the documents are in Typesense, the run recorded.
    let r = post("/typesense/sync-jobs/1/run".into(), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let data = &r.json()["data"];
    assert_eq!(data["status"], "succeeded", "{data}");
    assert_eq!(data["source_rows"], 5);
    assert_eq!(data["imported_count"], 5);
    assert_eq!(data["failed_count"], 0);
    assert_eq!(fake.documents("docs").len(), 5);
    let recorded: i64 = catalog
        .query_one(
            "SELECT imported_count FROM typesense_sync_runs WHERE job_id = 1 AND status = 'succeeded'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded, 5);
    // collections/list shows it.
    let r = post("/typesense/collections/list".into(), Some(conn)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["collections"][0]["name"], "docs");
    assert_eq!(r.json()["collections"][0]["num_documents"], 5);
    // search finds the row, by job and by source.
    let r = post(
        "/typesense/search".into(),
        Some(json!({"job_id": 1, "q": "banana", "query_by": ["title"]})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["found"], 1);
    assert_eq!(
        r.json()["data"]["hits"][0]["document"]["title"],
        "A banana split"
    );
    assert_eq!(r.json()["data"]["hits"][0]["document"]["id"], "10");
    let r = post(
        "/typesense/search".into(),
        Some(
            json!({"source_client_name": CLIENT, "source_table_name": "docs",
                    "q": "doc", "query_by": ["title"], "per_page": 10, "page": 1}),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["found"], 4);
    for (body, status) in [
        (json!({"job_id": 99, "q": "x", "query_by": ["title"]}), 404),
        (json!({"q": "x", "query_by": ["title"]}), 400),
        (json!({"job_id": 1, "q": "x"}), 400),
        (
            json!({"job_id": 1, "q": "x", "query_by": ["title"], "per_page": 0}),
            400,
        ),
    ] {
        let r = post("/typesense/search".into(), Some(body.clone())).await;
        assert_eq!(r.status, status, "{body}: {}", r.text());
        r.envelope();
    }
    // Unknown job / run, inactive cancel / kill.
    assert_eq!(
        post("/typesense/sync-jobs/99/run".into(), None)
            .await
            .status,
        404
    );
    assert_eq!(
        post("/typesense/sync-jobs/99/cancel".into(), None)
            .await
            .status,
        404
    );
    assert_eq!(
        post("/typesense/sync-jobs/1/cancel".into(), None)
            .await
            .status,
        400
    );
    assert_eq!(
        post("/typesense/sync-runs/999999/kill".into(), None)
            .await
            .status,
        404
    );
    let finished: i64 = catalog
        .query_one("SELECT max(id) FROM typesense_sync_runs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        post(format!("/typesense/sync-runs/{finished}/kill"), None)
            .await
            .status,
        400
    );

    // A running job: a second run is a 409; cancel stops it between pages.
    let first = tokio::spawn({
        let url = format!("http://{}/typesense/sync-jobs/2/run", server.addr);
        async move { raw_post(&url).await }
    });
    let run_id = running_run(&server, 2).await;
    let r = post("/typesense/sync-jobs/2/run".into(), None).await;
    assert_eq!(r.status, 409, "{}", r.text());
    let r = post("/typesense/sync-jobs/2/cancel".into(), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["run_id"], run_id);
    let (status, body) = first.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "cancelled", "{body}");
    assert!(body["data"]["source_rows"].as_i64().unwrap() < 5, "{body}");

    // kill aborts a run at once; the job can run again afterwards.
    let second = tokio::spawn({
        let url = format!("http://{}/typesense/sync-jobs/2/run", server.addr);
        async move { raw_post(&url).await }
    });
    let run_id = running_run(&server, 2).await;
    let r = post(format!("/typesense/sync-runs/{run_id}/kill"), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (status, body) = second.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "killed", "{body}");
    let status: String = catalog
        .query_one(
            "SELECT status FROM typesense_sync_runs WHERE id = $1",
            &[&run_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "killed");
    let r = post("/typesense/sync-jobs/2/run".into(), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["status"], "succeeded");
    assert_eq!(fake.documents("slow_docs").len(), 5);
    server.stop().await;
}

/// Review fixes 5, 9 and 10: the key column must be unique (NULL keys are
/// skipped, no endless loop), failed import lines come back without their
/// document (at most 20), pages are split by bytes, and jobs no longer
/// configured are gone at start.
#[tokio::test]
async fn typesense_keys_previews_and_removed_jobs() {
    let (server, fake) = start(|c, f| {
        c.integrations.typesense_jobs = vec![
            job(1, f, "nokey", "nokey", 2),
            job(2, f, "nulls", "nulls", 2),
            job(3, f, "rejects", "rejects", 100),
            job(4, f, "big", "big", 10),
            job(5, f, "nosuch", "nosuch", 10),
        ];
    })
    .await;
    server
        .tenant()
        .await
        .batch_execute(
            "CREATE TABLE nokey (id int, title text);
             INSERT INTO nokey VALUES (1, 'a'), (1, 'b'), (2, 'c');
             CREATE TABLE nulls (id int UNIQUE, title text);
             INSERT INTO nulls VALUES (NULL, 'n1'), (1, 'a'), (NULL, 'n2'), (2, 'b'), (3, 'c');
             CREATE TABLE rejects (id int PRIMARY KEY, reject bool, secret text);
             INSERT INTO rejects SELECT g, true, 'row-secret-' || g FROM generate_series(1, 25) g;
             CREATE TABLE big (id int PRIMARY KEY, blob text);
             INSERT INTO big SELECT g, repeat('x', 5000000) FROM generate_series(1, 2) g;",
        )
        .await
        .unwrap();
    let run = |id: i64| {
        let server = &server;
        async move {
            server
                .send(
                    "POST",
                    &format!("/typesense/sync-jobs/{id}/run"),
                    &ADMIN,
                    None,
                )
                .await
        }
    };
    // A non-unique key, a missing column: 400 naming it, nothing imported.
    for id in [1, 5] {
        let r = run(id).await;
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(
            r.envelope()["error"]
                .as_str()
                .unwrap()
                .contains("key_column"),
            "{}",
            r.text()
        );
    }
    assert!(fake.documents("nokey").is_empty());
    // NULL keys are skipped; the run ends.
    let r = tokio::time::timeout(Duration::from_secs(20), run(2))
        .await
        .expect("the run ends");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["source_rows"], 3);
    assert_eq!(fake.documents("nulls").len(), 3);
    // Failed lines: counted, at most 20 in the preview, no document.
    let r = run(3).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let data = &r.json()["data"];
    assert_eq!(data["failed_count"], 25, "{data}");
    let preview = data["result_preview"].as_array().unwrap();
    assert_eq!(preview.len(), 20);
    assert!(preview.iter().all(|l| l.get("document").is_none()));
    assert!(!r.text().contains("row-secret-"), "a document came back");
    // Two 5 MB rows in one page: two import calls (8 MiB per body).
    let r = run(4).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["imported_count"], 2);
    let imports = fake
        .state
        .lock()
        .unwrap()
        .seen
        .iter()
        .filter(|s| *s == "POST /ts/collections/big/documents/import")
        .count();
    assert_eq!(imports, 2);
    // A replica started without job 3..5 removes them: they no longer run.
    let replica = server
        .replica_with(|c| c.integrations.typesense_jobs.truncate(2))
        .await;
    let r = replica
        .send("POST", "/typesense/sync-jobs/3/run", &ADMIN, None)
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = replica
        .send("POST", "/typesense/sync-jobs/2/run", &ADMIN, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    replica.stop().await;
    server.stop().await;
}

/// Review fix 7: `/health/cluster` is cached (one probe round per 5 s),
/// reads at most 64 KiB per mirror and never echoes userinfo.
#[tokio::test]
async fn cluster_health_is_no_amplifier() {
    let (server, fake) = start(|c, f| {
        c.integrations.cluster_mirrors = vec![
            f.base("/mirror"),
            f.base("/mirror-big"),
            format!("http://probe:mirror-secret@127.0.0.1:{}/mirror", f.port),
        ];
    })
    .await;
    let (a, b) = tokio::join!(server.get("/health/cluster"), server.get("/health/cluster"));
    let c = server.get("/health/cluster").await;
    for r in [&a, &b, &c] {
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(!r.text().contains("mirror-secret"), "{}", r.text());
    }
    let v = c.json();
    assert_eq!(v["mirrors"][0]["status"], "online", "{v}");
    assert_eq!(v["mirrors"][1]["status"], "offline", "{v}");
    assert!(
        v["mirrors"][1]["message"]
            .as_str()
            .unwrap()
            .contains("larger"),
        "{v}"
    );
    assert_eq!(
        v["mirrors"][2]["url"],
        format!("http://127.0.0.1:{}/mirror", fake.port)
    );
    let probes = fake
        .state
        .lock()
        .unwrap()
        .seen
        .iter()
        .filter(|s| *s == "GET /mirror/")
        .count();
    assert_eq!(probes, 1, "three requests, one probe round");
    server.stop().await;
}

/// A POST with the admin key on its own connection (for concurrent runs).
async fn raw_post(url: &str) -> (u16, Value) {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let req = http::Request::post(url)
        .header("x-athena-key", ADMIN_KEY)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn supabase_ssl_enforcement() {
    let (server, fake) = start(|c, f| {
        c.integrations.supabase_api_url = Some(f.base("/supabase"));
    })
    .await;
    let path = "/api/v2/supabase/ssl_enforcement";
    let r = server
        .send(
            "POST",
            path,
            &ADMIN,
            Some(json!({"enabled": true, "access_token": fake::SUPABASE_TOKEN, "project_ref": "abcdefghijklmnop"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["currentConfig"]["database"], true);
    assert_eq!(r.json()["data"]["appliedSuccessfully"], true);
    assert!(!r.text().contains(fake::SUPABASE_TOKEN));
    assert_eq!(fake.ssl("abcdefghijklmnop"), Some(true));
    for (body, status, code) in [
        (
            json!({"enabled": true, "project_ref": "abc"}),
            400,
            "bad_request",
        ),
        (
            json!({"enabled": true, "access_token": "t"}),
            400,
            "bad_request",
        ),
        (
            json!({"enabled": true, "access_token": "t", "project_ref": "../x"}),
            400,
            "invalid_parameter",
        ),
        (
            json!({"enabled": false, "access_token": "wrong", "project_ref": "abc"}),
            500,
            "supabase_api_error",
        ),
        (
            json!({"enabled": false, "access_token": fake::SUPABASE_TOKEN, "project_ref": "broken"}),
            500,
            "supabase_api_error",
        ),
    ] {
        let r = server.send("POST", path, &ADMIN, Some(body.clone())).await;
        assert_eq!(r.status, status, "{body}: {}", r.text());
        assert_eq!(r.envelope()["code"], code, "{body}");
    }
    assert_eq!(fake.ssl("abc"), None);
    let r = server
        .send("POST", path, &[], Some(json!({"enabled": true})))
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    server.stop().await;
}

#[tokio::test]
async fn cluster_health_reports_every_mirror() {
    let closed = common::free_port();
    let (server, fake) = start(move |c, f| {
        allow(c, &format!("127.0.0.1:{closed}"));
        c.integrations.cluster_mirrors = vec![
            f.base("/mirror"),
            format!("http://127.0.0.1:{closed}"),
            // Not allow-listed: refused, reported offline.
            "http://10.255.255.1".into(),
        ];
    })
    .await;
    let started = std::time::Instant::now();
    let r = server.get("/health/cluster").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(started.elapsed() < Duration::from_secs(6));
    let v = r.json();
    let mirrors = v["mirrors"].as_array().unwrap();
    assert_eq!(mirrors.len(), 3, "{v}");
    assert_eq!(mirrors[0]["status"], "online", "{v}");
    assert_eq!(mirrors[0]["cargo_toml_version"], "9.9.9");
    assert!(mirrors[0]["latency_ms"].as_f64().is_some());
    assert!(mirrors[0]["download_bytes_per_sec"].as_f64().unwrap() > 0.0);
    assert_eq!(mirrors[1]["status"], "offline");
    assert_eq!(mirrors[2]["status"], "offline");
    assert!(
        mirrors[2]["message"].as_str().unwrap().contains("private"),
        "{v}"
    );
    assert!(fake
        .state
        .lock()
        .unwrap()
        .seen
        .contains(&"GET /mirror/".to_string()));
    server.stop().await;
}
