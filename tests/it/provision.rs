//! Provisioning (issue 21): the tenant schema bootstrapped and counted,
//! databases created on a client's server, provisioned, registered and
//! routed at once; the dependency report and the opt-in installer; clone
//! jobs (pg_dump → pg_restore streamed) with cancel and retry.

use crate::common;

use common::{allow_local_postgres, psql, with_db, TestServer, ADMIN_KEY, CLIENT};
use serde_json::{json, Value};

const KEY: (&str, &str) = ("x-athena-key", ADMIN_KEY);

fn admin_url() -> String {
    std::env::var("ATHENA_PG_ADMIN_URL").unwrap()
}

/// Drops databases a test created through the API (the server drops only
/// its own).
async fn drop_dbs(names: &[&str]) {
    let admin = psql(&admin_url()).await;
    for n in names {
        let _ = admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{n}\" WITH (FORCE)"))
            .await;
    }
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

async fn db_exists(name: &str) -> bool {
    psql(&admin_url())
        .await
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .unwrap()
        .is_some()
}

async fn status(s: &TestServer, client: &str) -> Value {
    let r = s
        .send(
            "GET",
            &format!("/admin/provision/status?client_name={client}"),
            &[KEY],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

#[tokio::test]
async fn provision_by_client_counts_statements_and_reruns_execute_nothing() {
    let s = TestServer::start().await;
    let first = s
        .send(
            "POST",
            "/admin/provision",
            &[KEY],
            Some(json!({"client_name": CLIENT})),
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.text());
    let v = first.json();
    assert_eq!(v["client"], CLIENT);
    assert!(v["statements_executed"].as_i64().unwrap() > 0, "{v}");
    assert!(v["tables"]
        .as_array()
        .unwrap()
        .contains(&json!("athena.files")));
    // The effect: the tables exist in the tenant database.
    assert_eq!(
        s.scalar(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'athena' AND tablename = 'files'"
        )
        .await,
        1
    );
    let again = s
        .send(
            "POST",
            "/admin/provision",
            &[KEY],
            Some(json!({"client_name": CLIENT})),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["statements_executed"], 0);
    let st = status(&s, CLIENT).await;
    assert_eq!(st["provisioned"], true, "{st}");
    assert_eq!(st["missing_tables"], json!([]));

    // A table dropped by hand shows up as missing.
    s.tenant()
        .await
        .batch_execute("DROP TABLE athena.multipart_uploads")
        .await
        .unwrap();
    let st = status(&s, CLIENT).await;
    assert_eq!(st["provisioned"], false);
    assert_eq!(st["missing_tables"], json!(["athena.multipart_uploads"]));

    // Exactly one target.
    for body in [
        json!({}),
        json!({"client_name": CLIENT, "uri": "postgres://u:p@example.com/db"}),
    ] {
        let r = s.send("POST", "/admin/provision", &[KEY], Some(body)).await;
        assert_eq!(r.status, 400, "{}", r.text());
        r.envelope();
    }
    // Unknown clients: 400 on provision, 503 (documented) on status.
    let r = s
        .send(
            "POST",
            "/admin/provision",
            &[KEY],
            Some(json!({"client_name": "nope"})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = s
        .send(
            "GET",
            "/admin/provision/status?client_name=nope",
            &[KEY],
            None,
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    // The admin key is required.
    let r = s
        .send(
            "POST",
            "/admin/provision",
            &[],
            Some(json!({"client_name": CLIENT})),
        )
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn provision_by_uri_validates_registers_and_routes() {
    let mut s = TestServer::start_with(|c| {
        allow_local_postgres(c);
        // The test PostgreSQL uses trust auth.
        c.direct_allow_trust_auth = true;
    })
    .await;
    let db = s.extra_db().await;
    psql(&db)
        .await
        .batch_execute("CREATE TABLE things (id int PRIMARY KEY, label text); INSERT INTO things VALUES (1, 'x')")
        .await
        .unwrap();
    let uri = db.replacen("postgres@", "postgres:s3cretpw@", 1);
    let r = s
        .send(
            "POST",
            "/admin/provision",
            &[KEY],
            Some(json!({"uri": uri, "register": true, "register_name": "adopted"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.text().contains("s3cretpw"), "{}", r.text());
    let v = r.json();
    assert_eq!(v["registered"], "adopted");
    assert!(v["statements_executed"].as_i64().unwrap() > 0);
    // Registered in the catalog, routed at once.
    let clients = s.send("GET", "/admin/clients", &[KEY], None).await.json();
    assert!(clients["clients"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["client_name"] == "adopted"));
    let f = s
        .send(
            "POST",
            "/gateway/fetch",
            &[("x-athena-client", "adopted")],
            Some(json!({"table_name": "things"})),
        )
        .await;
    assert_eq!(f.status, 200, "{}", f.text());
    assert_eq!(f.json()["data"][0]["label"], "x");
    assert_eq!(status(&s, "adopted").await["provisioned"], true);
    // A rerun on the same URI executes nothing.
    let r = s
        .send(
            "POST",
            "/admin/provision",
            &[KEY],
            Some(json!({"uri": uri})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["statements_executed"], 0);

    // security.md §1: no password → 400 here (a bad target), a refused
    // parameter → 400, a host outside the allow-list → 400, never a 500.
    for bad in [
        db.clone(),
        format!("{uri}?passfile=/etc/passwd"),
        "postgres://u:p@10.255.255.1:5432/db".to_string(),
    ] {
        let r = s
            .send(
                "POST",
                "/admin/provision",
                &[KEY],
                Some(json!({"uri": bad})),
            )
            .await;
        assert!(
            r.status == 400 || r.status == 401,
            "{bad}: {} {}",
            r.status,
            r.text()
        );
        r.envelope();
    }
}

#[tokio::test]
async fn local_database_is_created_provisioned_registered_and_routed() {
    let s = TestServer::start().await;
    let name = unique("localdb");
    let r = s
        .send(
            "POST",
            "/admin/provision/local/databases",
            &[KEY],
            Some(json!({"client_name": CLIENT, "database_name": name, "encoding": "UTF8", "template": "template0"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    assert_eq!(v["registered_client"], name.as_str(), "{v}");
    assert_eq!(v["registered_catalog"], true);
    assert_eq!(v["registered_runtime"], true);
    assert!(v["statements_executed"].as_i64().unwrap() > 0);
    assert!(!r.text().contains("postgres://"), "{}", r.text());
    assert!(db_exists(&name).await);

    // Listed: in pg_database and as Athena-managed.
    let l = s
        .send(
            "GET",
            &format!("/admin/provision/local/databases?client_name={CLIENT}"),
            &[KEY],
            None,
        )
        .await;
    assert_eq!(l.status, 200, "{}", l.text());
    let l = l.json();
    assert!(l["all_databases"]
        .as_array()
        .unwrap()
        .contains(&json!(name)));
    assert_eq!(
        l["athena_managed_databases"][0]["database_name"],
        name.as_str()
    );
    assert_eq!(
        l["athena_managed_databases"][0]["client_name"],
        name.as_str()
    );

    // Provisioned, registered → /gateway/fetch works.
    assert_eq!(status(&s, &name).await["provisioned"], true);
    psql(&with_db(&admin_url(), &name))
        .await
        .batch_execute("CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes VALUES (7, 'hello')")
        .await
        .unwrap();
    let f = s
        .send(
            "POST",
            "/gateway/fetch",
            &[("x-athena-client", name.as_str())],
            Some(json!({"table_name": "notes"})),
        )
        .await;
    assert_eq!(f.status, 200, "{}", f.text());
    assert_eq!(f.json()["data"][0]["body"], "hello");

    // Exists → 409 (a new registration name, the same database).
    let r = s
        .send(
            "POST",
            "/admin/provision/local/databases",
            &[KEY],
            Some(json!({"client_name": CLIENT, "database_name": name, "register_name": unique("other")})),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    r.envelope();

    // Bad names and settings: 400, nothing created.
    let evil = "x\"; DROP DATABASE postgres; --";
    for body in [
        json!({"client_name": CLIENT, "database_name": evil}),
        json!({"client_name": CLIENT, "database_name": unique("ok"), "owner": "a b"}),
        json!({"client_name": CLIENT, "database_name": unique("ok"), "encoding": "UTF8' TEMPLATE x"}),
        json!({"client_name": null, "database_name": unique("ok")}),
    ] {
        let r = s
            .send(
                "POST",
                "/admin/provision/local/databases",
                &[KEY],
                Some(body),
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.text());
        r.envelope();
    }

    // A failed later step drops the new database: an unknown owner is
    // refused by CREATE itself; a registration that cannot connect (a
    // name the catalog refuses) is checked before anything is created.
    let doomed = unique("doomed");
    let r = s
        .send(
            "POST",
            "/admin/provision/local/databases",
            &[KEY],
            Some(json!({"client_name": CLIENT, "database_name": doomed, "register_name": "bad name!"})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(!db_exists(&doomed).await);
    drop_dbs(&[&name]).await;
}

#[tokio::test]
async fn a_failed_provisioning_step_drops_the_new_database() {
    let s = TestServer::start().await;
    // The schema `athena` in template1-derived databases would be fine;
    // make the bootstrap fail: a template whose `athena` schema belongs to
    // another role.
    let template = unique("tpl");
    let admin = psql(&admin_url()).await;
    admin
        .batch_execute(&format!("CREATE DATABASE \"{template}\""))
        .await
        .unwrap();
    let tpl = psql(&with_db(&admin_url(), &template)).await;
    tpl.batch_execute(
        "DO $$ BEGIN CREATE ROLE athena_provision_other NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         CREATE SCHEMA athena AUTHORIZATION athena_provision_other;",
    )
    .await
    .unwrap();
    drop(tpl);
    let name = unique("failing");
    let r = s
        .send(
            "POST",
            "/admin/provision/local/databases",
            &[KEY],
            Some(json!({"client_name": CLIENT, "database_name": name, "template": template})),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(
        !db_exists(&name).await,
        "the half-provisioned database was dropped"
    );
    // …and no client was left registered.
    let clients = s.send("GET", "/admin/clients", &[KEY], None).await.json();
    assert!(!clients["clients"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["client_name"] == name.as_str()));
    drop_dbs(&[&template]).await;
}

#[tokio::test]
async fn management_local_databases_need_a_bound_key_on_its_own_client() {
    let s = TestServer::start().await;
    let key = s
        .api_key(&["management.provision.write"], Some(CLIENT))
        .await;
    let name = unique("mgmt");
    let r = s
        .send(
            "POST",
            "/management/provision/local/databases",
            &[("x-athena-client", CLIENT), ("apikey", key.as_str())],
            Some(json!({"client_name": "ignored", "database_name": name})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["client_name"], CLIENT);
    assert!(db_exists(&name).await);
    let l = s
        .send(
            "GET",
            "/management/provision/local/databases",
            &[("x-athena-client", CLIENT), ("apikey", key.as_str())],
            None,
        )
        .await;
    assert_eq!(l.status, 200, "{}", l.text());
    assert!(l.json()["all_databases"]
        .as_array()
        .unwrap()
        .contains(&json!(name)));

    // Another client's key, an unbound key, a key without the right, the
    // admin key: refused, nothing created.
    let other = s
        .api_key(&["management.provision.write"], Some("someone_else"))
        .await;
    let unbound = s.api_key(&["management.provision.write"], None).await;
    let no_right = s.api_key(&["management.read"], Some(CLIENT)).await;
    let refused = unique("refused");
    for headers in [
        vec![("x-athena-client", CLIENT), ("apikey", other.as_str())],
        vec![("x-athena-client", CLIENT), ("apikey", unbound.as_str())],
        vec![("x-athena-client", CLIENT), ("apikey", no_right.as_str())],
        vec![("x-athena-client", CLIENT), KEY],
    ] {
        let r = s
            .send(
                "POST",
                "/management/provision/local/databases",
                &headers,
                Some(json!({"database_name": refused})),
            )
            .await;
        assert!(
            r.status == 401 || r.status == 403,
            "{} {}",
            r.status,
            r.text()
        );
    }
    assert!(!db_exists(&refused).await);
    drop_dbs(&[&name]).await;
}

#[tokio::test]
async fn dependencies_are_reported_truthfully_and_installs_are_opt_in() {
    let s = TestServer::start().await;
    let r = s
        .send("GET", "/admin/provision/dependencies", &[KEY], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let has = |tool: &str| common_path_has(tool);
    for tool in ["pg_dump", "pg_restore", "psql", "docker"] {
        let missing = v["missing"].as_array().unwrap().contains(&json!(tool));
        assert_eq!(missing, !has(tool), "{tool}: {v}");
    }
    assert_eq!(v["can_attempt_install"], false);
    let r = s
        .send(
            "POST",
            "/admin/provision/dependencies/install",
            &[KEY],
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    r.envelope();

    // Opted in, with a fake package manager on the tool path: it runs
    // with the fixed argument vector and its outcome is reported.
    let dir = std::env::temp_dir().join(unique("fakepm"));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("calls.log");
    let script = format!(
        "#!/bin/sh\necho \"$@\" >> {}\necho installed\n",
        log.display()
    );
    let pm = dir.join("apt-get");
    std::fs::write(&pm, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pm, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/bin:/usr/bin", dir.display());
    let s2 = TestServer::start_with(|c| {
        c.provision.allow_dependency_install = true;
        c.provision.tool_path = Some(path);
    })
    .await;
    let r = s2
        .send(
            "POST",
            "/admin/provision/dependencies/install",
            &[KEY],
            Some(json!({"install_docker": false, "use_sudo": false})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["overall_status"], "succeeded", "{v}");
    assert_eq!(v["steps"][0]["key"], "install_postgres");
    assert_eq!(v["steps"][0]["status"], "succeeded");
    assert_eq!(v["before"]["package_manager"], "apt-get");
    let calls = std::fs::read_to_string(&log).unwrap();
    assert_eq!(calls.trim(), "install -y postgresql-client");
    let _ = std::fs::remove_dir_all(&dir);
}

fn common_path_has(tool: &str) -> bool {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .any(|d| std::path::Path::new(d).join(tool).is_file())
}

// --- clones ---

/// A server whose clone sources may be the test PostgreSQL (trust auth).
async fn clone_server(tweak: impl FnOnce(&mut athena::config::Config)) -> TestServer {
    TestServer::start_with(|c| {
        allow_local_postgres(c);
        c.direct_allow_trust_auth = true;
        tweak(c);
    })
    .await
}

/// A source database with rows in two schemas.
async fn clone_source(s: &mut TestServer) -> String {
    let db = s.extra_db().await;
    psql(&db)
        .await
        .batch_execute(
            "CREATE TABLE items (id int PRIMARY KEY, label text);
             INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 1500) g;
             CREATE SCHEMA shop;
             CREATE TABLE shop.orders (id bigserial PRIMARY KEY, item int REFERENCES items, qty int);
             INSERT INTO shop.orders (item, qty) SELECT g % 100 + 1, g FROM generate_series(1, 321) g;",
        )
        .await
        .unwrap();
    db.replacen("postgres@", "postgres:cl0nepw@", 1)
}

async fn create_clone(s: &TestServer, body: Value) -> Value {
    let r = s
        .send("POST", "/admin/provision/clones", &[KEY], Some(body))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(!r.text().contains("cl0nepw"), "{}", r.text());
    r.json()
}

async fn job(s: &TestServer, id: &str) -> Value {
    let r = s
        .send(
            "GET",
            &format!("/admin/provision/clones/{id}"),
            &[KEY],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.text().contains("cl0nepw"), "{}", r.text());
    r.json()
}

/// Polls the job until `done(status)` (60 s at most).
async fn wait_job(s: &TestServer, id: &str, done: impl Fn(&str) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let v = job(s, id).await;
        let status = v["job"]["summary"]["status"].as_str().unwrap().to_string();
        if done(&status) {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "job stuck: {v}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

fn reuse_target(database: &str, client: &str) -> Value {
    json!({
        "mode": "reuse_managed_instance",
        "existing_client_name": CLIENT,
        "database_name": database,
        "target_client_name": client,
    })
}

#[tokio::test]
async fn clone_into_a_managed_instance_copies_every_row_and_registers() {
    let mut s = clone_server(|_| {}).await;
    let source = clone_source(&mut s).await;
    let (database, client) = (unique("clone"), unique("cloned"));
    let created = create_clone(
        &s,
        json!({"source": {"source_uri": source}, "target": reuse_target(&database, &client), "requested_by": "test"}),
    )
    .await;
    assert_eq!(created["summary"]["status"], "queued");
    assert!(created["source"]["uri"].as_str().unwrap().contains(":***@"));
    let id = created["summary"]["job_id"].as_str().unwrap().to_string();

    let v = wait_job(&s, &id, |st| {
        matches!(st, "completed" | "failed_terminal" | "failed_retryable")
    })
    .await;
    assert_eq!(v["job"]["summary"]["status"], "completed", "{v}");
    assert_eq!(v["job"]["summary"]["phase"], "complete");
    let verification = &v["job"]["summary"]["verification_summary"];
    assert_eq!(verification["rows_source"], 1821, "{verification}");
    assert_eq!(verification["rows_target"], 1821);
    assert_eq!(verification["mismatches"], json!([]));
    // An event per phase.
    let phases: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["phase"].as_str().unwrap())
        .collect();
    for phase in [
        "validate_source",
        "prepare_target",
        "resolve_tools",
        "dump_source",
        "restore_target",
        "bootstrap_athena",
        "register_client",
        "verify_target",
        "complete",
    ] {
        assert!(phases.contains(&phase), "{phase}: {phases:?}");
    }

    // The effect, read directly: equal row counts in the new database.
    let target = psql(&with_db(&admin_url(), &database)).await;
    for (sql, n) in [
        ("SELECT count(*) FROM items", 1500i64),
        ("SELECT count(*) FROM shop.orders", 321),
    ] {
        assert_eq!(
            target.query_one(sql, &[]).await.unwrap().get::<_, i64>(0),
            n
        );
    }
    drop(target);
    // Registered, provisioned, routed.
    assert_eq!(status(&s, &client).await["provisioned"], true);
    let f = s
        .send(
            "POST",
            "/gateway/fetch",
            &[("x-athena-client", client.as_str())],
            Some(
                json!({"table_name": "items", "conditions": [{"eq_column": "id", "eq_value": 7}]}),
            ),
        )
        .await;
    assert_eq!(f.status, 200, "{}", f.text());
    assert_eq!(f.json()["data"][0]["label"], "item 7");
    // Listed; a completed job can be neither cancelled nor retried.
    let l = s.send("GET", "/admin/provision/clones", &[KEY], None).await;
    assert_eq!(l.status, 200);
    assert_eq!(l.json()["jobs"][0]["job_id"], id.as_str());
    for action in ["cancel", "retry"] {
        let r = s
            .send(
                "POST",
                &format!("/admin/provision/clones/{id}/{action}"),
                &[KEY],
                None,
            )
            .await;
        assert_eq!(r.status, 409, "{action}: {}", r.text());
        r.envelope();
    }
    drop_dbs(&[&database]).await;
}

#[tokio::test]
async fn clone_requests_are_validated() {
    let mut s = clone_server(|_| {}).await;
    let source = clone_source(&mut s).await;
    let no_password = source.replacen("postgres:cl0nepw@", "postgres@", 1);
    for body in [
        json!({"source": {"source_uri": no_password}, "target": reuse_target("okdb", "okclient")}),
        json!({"source": {"source_uri": format!("{source}?sslkey=/etc/passwd")}, "target": reuse_target("okdb", "okclient")}),
        json!({"source": {"source_uri": source}, "target": reuse_target("bad name", "okclient")}),
        json!({"source": {"source_uri": source}, "target": {"mode": "reuse_managed_instance", "existing_client_name": "nobody", "database_name": "x", "target_client_name": "y"}}),
        json!({"source": {"source_uri": source}, "target": reuse_target("okdb", "okclient"), "max_attempts": 0}),
        json!({"target": reuse_target("okdb", "okclient")}),
        // A database name libpq would expand as a connection string.
        json!({"source": {"source_uri": format!("{}/host%3D10.0.0.5%20user%3Dpostgres", source.rsplit_once('/').unwrap().0)}, "target": reuse_target("okdb", "okclient")}),
        json!({"source": {"source_uri": format!("{}/postgresql:%2F%2F10.0.0.5%2Fpostgres", source.rsplit_once('/').unwrap().0)}, "target": reuse_target("okdb", "okclient")}),
    ] {
        let r = s
            .send("POST", "/admin/provision/clones", &[KEY], Some(body))
            .await;
        assert_eq!(r.status, 400, "{}", r.text());
        r.envelope();
    }
    let r = s
        .send(
            "GET",
            &format!("/admin/provision/clones/{}", uuid::Uuid::new_v4()),
            &[KEY],
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(
        psql(&s.catalog_url)
            .await
            .query_one("SELECT count(*) FROM clone_jobs", &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        0
    );
}

#[tokio::test]
async fn a_failed_clone_is_retried_only_from_a_failed_state() {
    let mut s = clone_server(|_| {}).await;
    let source = clone_source(&mut s).await;
    let (database, client) = (unique("exists"), unique("retried"));
    // The target exists: a terminal failure, and the existing database is
    // left alone.
    psql(&admin_url())
        .await
        .batch_execute(&format!("CREATE DATABASE \"{database}\""))
        .await
        .unwrap();
    let created = create_clone(
        &s,
        json!({"source": {"source_uri": source}, "target": reuse_target(&database, &client)}),
    )
    .await;
    let id = created["summary"]["job_id"].as_str().unwrap().to_string();
    let v = wait_job(&s, &id, |st| st.starts_with("failed") || st == "completed").await;
    assert_eq!(v["job"]["summary"]["status"], "failed_terminal", "{v}");
    assert_eq!(v["job"]["summary"]["phase"], "prepare_target");
    assert!(db_exists(&database).await);
    assert!(v["job"]["summary"]["failure_summary"]["message"]
        .as_str()
        .unwrap()
        .contains("already exists"));

    // The operator removes it; retry → queued → completed.
    drop_dbs(&[&database]).await;
    let r = s
        .send(
            "POST",
            &format!("/admin/provision/clones/{id}/retry"),
            &[KEY],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["summary"]["status"], "queued");
    let v = wait_job(&s, &id, |st| st.starts_with("failed") || st == "completed").await;
    assert_eq!(v["job"]["summary"]["status"], "completed", "{v}");
    assert_eq!(v["job"]["summary"]["attempt_count"], 2);
    assert_eq!(
        psql(&with_db(&admin_url(), &database))
            .await
            .query_one("SELECT count(*) FROM items", &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        1500
    );
    drop_dbs(&[&database]).await;
}

#[tokio::test]
async fn an_unreachable_source_is_retried_then_fails_for_good() {
    let port = common::free_port();
    let s = clone_server(|c| common::allow(c, &format!("127.0.0.1:{port}"))).await;
    let created = create_clone(
        &s,
        json!({
            "source": {"source_uri": format!("postgres://u:cl0nepw@127.0.0.1:{port}/db")},
            "target": reuse_target(&unique("never"), &unique("never")),
            "max_attempts": 2,
        }),
    )
    .await;
    let id = created["summary"]["job_id"].as_str().unwrap().to_string();
    let v = wait_job(&s, &id, |st| {
        st == "failed_retryable" || st == "failed_terminal"
    })
    .await;
    assert_eq!(v["job"]["summary"]["status"], "failed_retryable", "{v}");
    assert_eq!(v["job"]["summary"]["failure_summary"]["retryable"], true);
    let v = wait_job(&s, &id, |st| st == "failed_terminal").await;
    assert_eq!(v["job"]["summary"]["attempt_count"], 2);
    let kinds: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"attempt_failed") && kinds.contains(&"job_failed"),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn cancel_kills_the_running_tools() {
    // Fake tools: pg_dump records its pid and hangs; pg_restore drains.
    let dir = std::env::temp_dir().join(unique("faketools"));
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile = dir.join("pg_dump.pid");
    use std::os::unix::fs::PermissionsExt;
    for (tool, body) in [
        (
            "pg_dump",
            format!("echo $$ > {}\nexec /bin/sleep 120", pidfile.display()),
        ),
        ("pg_restore", "exec /bin/cat > /dev/null".to_string()),
    ] {
        let script = format!(
            "#!/bin/sh\nif [ \"$1\" = --version ]; then echo '{tool} (PostgreSQL) 99.0'; exit 0; fi\n{body}\n"
        );
        let p = dir.join(tool);
        std::fs::write(&p, script).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let tool_path = dir.display().to_string();
    let mut s = clone_server(|c| c.provision.tool_path = Some(tool_path)).await;
    let source = clone_source(&mut s).await;
    let database = unique("cancelled");
    let created = create_clone(
        &s,
        json!({"source": {"source_uri": source}, "target": reuse_target(&database, &unique("c"))}),
    )
    .await;
    let id = created["summary"]["job_id"].as_str().unwrap().to_string();
    // Running: the dump has started.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !pidfile.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            job(&s, &id).await
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let pid = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .to_string();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    let r = s
        .send(
            "POST",
            &format!("/admin/provision/clones/{id}/cancel"),
            &[KEY],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["summary"]["cancel_requested"] == true);
    let v = wait_job(&s, &id, |st| st == "cancelled").await;
    assert_eq!(v["job"]["summary"]["status"], "cancelled");
    // The child is gone, the half-made target dropped.
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "pg_dump {pid} survived"
    );
    assert!(!db_exists(&database).await);
    // Terminal now: cancel and retry are 409.
    for action in ["cancel", "retry"] {
        let r = s
            .send(
                "POST",
                &format!("/admin/provision/clones/{id}/{action}"),
                &[KEY],
                None,
            )
            .await;
        assert_eq!(r.status, 409, "{action}: {}", r.text());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Tools whose pg_dump waits `delay` seconds, then runs the real one
/// (`PGBIN`); pg_restore is the real one.
fn slow_tools(delay: u32) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let real = std::env::var("PGBIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    let dir = std::env::temp_dir().join(unique("slowtools"));
    std::fs::create_dir_all(&dir).unwrap();
    for (tool, wait) in [
        ("pg_dump", format!("/bin/sleep {delay}\n")),
        ("pg_restore", String::new()),
    ] {
        let script = format!(
            "#!/bin/sh\nif [ \"$1\" = --version ]; then exec {real}/{tool} --version; fi\n\
             {wait}exec {real}/{tool} \"$@\"\n"
        );
        let p = dir.join(tool);
        std::fs::write(&p, script).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

/// (attempts, worker_id, runs started) of a clone job.
async fn lease_state(s: &TestServer, id: &str) -> (i32, Option<String>, i64) {
    let uid = uuid::Uuid::parse_str(id).unwrap();
    let row = psql(&s.catalog_url)
        .await
        .query_one(
            "SELECT attempts, worker_id,
                    (SELECT count(*) FROM clone_job_events
                      WHERE job_id = $1 AND phase = 'validate_source' AND kind = 'phase_started')
               FROM clone_jobs WHERE id = $1",
            &[&uid],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

/// A clone whose dump outlasts its 1 s lease four times over is renewed
/// while the stream runs: the other replica (its own worker, same catalog)
/// never takes it over; one attempt, one run, equal row counts.
#[tokio::test]
async fn a_slow_clone_keeps_its_lease_while_the_stream_runs() {
    let dir = slow_tools(4);
    let tool_path = dir.display().to_string();
    let mut s = clone_server(|c| {
        c.provision.tool_path = Some(tool_path);
        c.provision.clone_lease = std::time::Duration::from_secs(1);
    })
    .await;
    let replica = s.replica_with(|_| {}).await;
    let source = clone_source(&mut s).await;
    let database = unique("slowclone");
    let created = create_clone(
        &s,
        json!({"source": {"source_uri": source}, "target": reuse_target(&database, &unique("c"))}),
    )
    .await;
    let id = created["summary"]["job_id"].as_str().unwrap().to_string();
    let v = wait_job(&s, &id, |st| {
        matches!(
            st,
            "completed" | "failed_terminal" | "failed_retryable" | "cancelled"
        )
    })
    .await;
    assert_eq!(v["job"]["summary"]["status"], "completed", "{v}");
    let (attempts, _, runs) = lease_state(&s, &id).await;
    assert_eq!((attempts, runs), (1, 1), "taken over while alive: {v}");
    let verification = &v["job"]["summary"]["verification_summary"];
    assert_eq!(verification["rows_source"], 1821, "{verification}");
    assert_eq!(verification["rows_target"], 1821);
    replica.stop().await;
    drop_dbs(&[&database]).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A replica that claimed a clone and died (its lease no longer renewed)
/// loses it once the lease has run out, not before: a live replica takes
/// it over and completes it as the next attempt.
#[tokio::test]
async fn a_dead_replicas_clone_is_taken_over_after_its_lease() {
    let lease = std::time::Duration::from_secs(2);
    let mut s = clone_server(|c| {
        c.provision.clone_workers = 0;
        c.provision.clone_lease = lease;
    })
    .await;
    let source = clone_source(&mut s).await;
    let database = unique("takeover");
    let created = create_clone(
        &s,
        json!({"source": {"source_uri": source}, "target": reuse_target(&database, &unique("c"))}),
    )
    .await;
    let id = created["summary"]["job_id"].as_str().unwrap().to_string();
    let uid = uuid::Uuid::parse_str(&id).unwrap();
    // Claimed by a replica that then died: running, its token, renewed just now.
    let claimed = psql(&s.catalog_url)
        .await
        .execute(
            "UPDATE clone_jobs SET status = 'running', run_token = gen_random_uuid(),
                    worker_id = 'dead-replica', attempts = 1, started_at = now()
              WHERE id = $1 AND status = 'queued'",
            &[&uid],
        )
        .await
        .unwrap();
    assert_eq!(claimed, 1);
    let since = std::time::Instant::now();
    let live = s.replica_with(|c| c.provision.clone_workers = 1).await;
    // Within the lease, the live replica leaves it alone.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(
        lease_state(&s, &id).await,
        (1, Some("dead-replica".to_string()), 0)
    );
    let v = wait_job(&s, &id, |st| {
        matches!(
            st,
            "completed" | "failed_terminal" | "failed_retryable" | "cancelled"
        )
    })
    .await;
    assert_eq!(v["job"]["summary"]["status"], "completed", "{v}");
    assert!(since.elapsed() >= lease - std::time::Duration::from_millis(300));
    let (attempts, worker, runs) = lease_state(&s, &id).await;
    assert_eq!((attempts, runs), (2, 1), "{v}");
    assert_ne!(worker.as_deref(), Some("dead-replica"));
    assert_eq!(
        v["job"]["summary"]["verification_summary"]["rows_target"],
        1821
    );
    live.stop().await;
    drop_dbs(&[&database]).await;
}

/// The tools get one conninfo string built value by value (the source's
/// pinned address, the database name literal), never `--host` beside a
/// `--dbname` libpq could expand; the password only in `PGPASSWORD`.
#[tokio::test]
async fn clone_tools_get_one_quoted_conninfo_string() {
    let dir = std::env::temp_dir().join(unique("argtools"));
    std::fs::create_dir_all(&dir).unwrap();
    use std::os::unix::fs::PermissionsExt;
    for tool in ["pg_dump", "pg_restore"] {
        let out = dir.join(format!("{tool}.args"));
        let script = format!(
            "#!/bin/sh\nif [ \"$1\" = --version ]; then echo '{tool} (PostgreSQL) 99.0'; exit 0; fi\n\
             for a in \"$@\"; do echo \"$a\" >> {out}; done\necho \"PW=$PGPASSWORD\" >> {out}\n\
             exec /bin/cat > /dev/null\n",
            out = out.display()
        );
        let p = dir.join(tool);
        std::fs::write(&p, script).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let tool_path = dir.display().to_string();
    let mut s = clone_server(|c| c.provision.tool_path = Some(tool_path)).await;
    let source = clone_source(&mut s).await;
    let source_db = source.rsplit_once('/').unwrap().1.to_string();
    let database = unique("argclone");
    let created = create_clone(
        &s,
        json!({"source": {"source_uri": source}, "target": reuse_target(&database, &unique("c"))}),
    )
    .await;
    let id = created["summary"]["job_id"].as_str().unwrap().to_string();
    wait_job(&s, &id, |st| {
        matches!(
            st,
            "completed" | "failed_terminal" | "failed_retryable" | "cancelled"
        )
    })
    .await;
    let dump = std::fs::read_to_string(dir.join("pg_dump.args")).unwrap();
    let restore = std::fs::read_to_string(dir.join("pg_restore.args")).unwrap();
    let dump: Vec<&str> = dump.lines().collect();
    let restore: Vec<&str> = restore.lines().collect();
    for args in [&dump, &restore] {
        assert!(
            !args
                .iter()
                .any(|a| a.starts_with("--host") || a.starts_with("--port")),
            "{args:?}"
        );
        assert_eq!(args.iter().filter(|a| **a == "--dbname").count(), 1);
        assert!(!args
            .iter()
            .any(|a| a.contains("cl0nepw") && !a.starts_with("PW=")));
    }
    let at = dump.iter().position(|a| *a == "--dbname").unwrap();
    let port = source
        .rsplit_once(':')
        .unwrap()
        .1
        .split('/')
        .next()
        .unwrap();
    assert_eq!(
        dump[at + 1],
        format!(
            "host='127.0.0.1' hostaddr='127.0.0.1' port='{port}' user='postgres' \
             dbname='{source_db}' sslmode='prefer'"
        ),
    );
    assert_eq!(*dump.last().unwrap(), "PW=cl0nepw");
    let at = restore.iter().position(|a| *a == "--dbname").unwrap();
    assert!(
        restore[at + 1].contains(&format!("dbname='{database}'")),
        "{restore:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    drop_dbs(&[&database]).await;
}

/// Registration creates the client, never re-points one: a live name, a
/// deleted one, the default `provisioned` taken by an earlier call — all
/// 409 with the existing row untouched.
#[tokio::test]
async fn provisioning_never_re_points_an_existing_client() {
    let mut s = TestServer::start_with(|c| {
        allow_local_postgres(c);
        c.direct_allow_trust_auth = true;
    })
    .await;
    let db = s.extra_db().await;
    let uri = db.replacen("postgres@", "postgres:s3cretpw@", 1);
    let catalog = psql(&s.catalog_url).await;
    let uri_of = |name: &'static str| {
        let catalog = &catalog;
        async move {
            catalog
                .query_opt(
                    "SELECT pg_uri, deleted_at IS NOT NULL FROM athena_clients WHERE client_name = $1",
                    &[&name],
                )
                .await
                .unwrap()
                .map(|r| (r.get::<_, Option<String>>(0), r.get::<_, bool>(1)))
        }
    };
    let before = uri_of(CLIENT).await;
    let r = s
        .send(
            "POST",
            "/admin/provision",
            &[KEY],
            Some(json!({"uri": uri, "register": true, "register_name": CLIENT})),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    r.envelope();
    assert_eq!(uri_of(CLIENT).await, before);

    // The default name: the first call takes it, the second is refused.
    let r = s
        .send(
            "POST",
            "/admin/provision",
            &[KEY],
            Some(json!({"uri": uri, "register": true})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["registered"], "provisioned");
    let other = s
        .extra_db()
        .await
        .replacen("postgres@", "postgres:s3cretpw@", 1);
    let first = uri_of("provisioned").await;
    let r = s
        .send(
            "POST",
            "/admin/provision",
            &[KEY],
            Some(json!({"uri": other, "register": true})),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(uri_of("provisioned").await, first);

    // A deleted client's name is taken too: never revived by provisioning.
    catalog
        .execute(
            "UPDATE athena_clients SET deleted_at = now(), is_active = false WHERE client_name = 'provisioned'",
            &[],
        )
        .await
        .unwrap();
    let r = s
        .send(
            "POST",
            "/admin/provision",
            &[KEY],
            Some(json!({"uri": other, "register": true, "register_name": "provisioned"})),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    let (kept_uri, deleted) = uri_of("provisioned").await.unwrap();
    assert!(deleted);
    assert_eq!(Some(kept_uri), first.map(|f| f.0));

    // A local database registered under a taken name: 409, nothing created.
    let name = unique("taken");
    let r = s
        .send(
            "POST",
            "/admin/provision/local/databases",
            &[KEY],
            Some(json!({"client_name": CLIENT, "database_name": name, "register_catalog": true, "register_name": CLIENT})),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(!db_exists(&name).await);
    assert_eq!(uri_of(CLIENT).await, before);
}

/// The management variant stays inside the caller's client: stock
/// templates only, no owner/tablespace, no other registration name, only
/// Athena-managed databases listed, and an audit row per create.
#[tokio::test]
async fn management_local_databases_stay_inside_the_callers_client() {
    let mut s = TestServer::start().await;
    let key = s
        .api_key(&["management.provision.write"], Some(CLIENT))
        .await;
    let other_db = s.extra_db().await;
    let other_name = other_db.rsplit_once('/').unwrap().1.to_string();
    let headers = [("x-athena-client", CLIENT), ("apikey", key.as_str())];
    let refused = unique("mrefused");
    for (body, status) in [
        (
            json!({"database_name": refused, "template": other_name}),
            400,
        ),
        (json!({"database_name": refused, "owner": "postgres"}), 400),
        (
            json!({"database_name": refused, "tablespace": "pg_default"}),
            400,
        ),
        (
            json!({"database_name": refused, "register_catalog": true, "register_name": "someone_else"}),
            403,
        ),
        // The caller's own name is live: creating it again is a 409.
        (
            json!({"database_name": refused, "register_catalog": true, "register_name": CLIENT}),
            409,
        ),
    ] {
        let r = s
            .send(
                "POST",
                "/management/provision/local/databases",
                &headers,
                Some(body.clone()),
            )
            .await;
        assert_eq!(r.status, status, "{body}: {}", r.text());
        r.envelope();
    }
    assert!(!db_exists(&refused).await);

    let name = unique("mgmtok");
    let r = s
        .send(
            "POST",
            "/management/provision/local/databases",
            &headers,
            Some(json!({"database_name": name, "template": "template0"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(db_exists(&name).await);
    let audit: Vec<(String, String, String)> = psql(&s.catalog_url)
        .await
        .query(
            "SELECT operation, statement, status FROM database_audit_log WHERE client_name = $1 ORDER BY id",
            &[&CLIENT],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert!(
        audit.iter().any(
            |(op, stmt, st)| op == "management.provision.local_databases.create"
                && stmt.contains(&name)
                && st == "success"
        ),
        "{audit:?}"
    );
    let l = s
        .send(
            "GET",
            "/management/provision/local/databases",
            &headers,
            None,
        )
        .await;
    assert_eq!(l.status, 200, "{}", l.text());
    let all = l.json()["all_databases"].as_array().unwrap().clone();
    assert!(all.contains(&json!(name)), "{all:?}");
    assert!(!all.contains(&json!(other_name)), "{all:?}");
    assert!(!all.contains(&json!("postgres")), "{all:?}");
    drop_dbs(&[&name]).await;
}

/// A rerun on a database whose recorded tables were dropped by hand is
/// refused (409) rather than reported as provisioned; status lists them.
#[tokio::test]
async fn a_rerun_reports_recorded_but_missing_tables() {
    let mut s = TestServer::start_with(|c| {
        allow_local_postgres(c);
        c.direct_allow_trust_auth = true;
    })
    .await;
    let db = s.extra_db().await;
    let uri = db.replacen("postgres@", "postgres:s3cretpw@", 1);
    let r = s
        .send(
            "POST",
            "/admin/provision",
            &[KEY],
            Some(json!({"uri": uri, "register": true, "register_name": "halfgone"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let tables: Vec<String> = r.json()["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    let victim = tables
        .iter()
        .find(|t| t.starts_with("athena.") && *t != "athena.schema_migrations")
        .unwrap()
        .clone();
    psql(&db)
        .await
        .batch_execute(&format!("DROP TABLE {victim} CASCADE"))
        .await
        .unwrap();
    let r = s
        .send(
            "POST",
            "/admin/provision",
            &[KEY],
            Some(json!({"uri": uri})),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains(&victim), "{}", r.text());
    let st = status(&s, "halfgone").await;
    assert_eq!(st["provisioned"], false);
    assert!(st["missing_tables"]
        .as_array()
        .unwrap()
        .contains(&json!(victim)));
}

/// A failed job whose runner still holds the lease is not requeued.
#[tokio::test]
async fn retry_does_not_start_a_second_runner() {
    let port = common::free_port();
    let s = clone_server(|c| common::allow(c, &format!("127.0.0.1:{port}"))).await;
    let created = create_clone(
        &s,
        json!({
            "source": {"source_uri": format!("postgres://u:cl0nepw@127.0.0.1:{port}/db")},
            "target": reuse_target(&unique("never"), &unique("never")),
            "max_attempts": 1,
        }),
    )
    .await;
    let id = created["summary"]["job_id"].as_str().unwrap().to_string();
    wait_job(&s, &id, |st| st == "failed_terminal").await;
    let catalog = psql(&s.catalog_url).await;
    let uid = uuid::Uuid::parse_str(&id).unwrap();
    catalog
        .execute(
            "UPDATE clone_jobs SET status = 'running' WHERE id = $1",
            &[&uid],
        )
        .await
        .unwrap();
    let r = s
        .send(
            "POST",
            &format!("/admin/provision/clones/{id}/retry"),
            &[KEY],
            None,
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    let st: String = catalog
        .query_one("SELECT clone_status FROM clone_jobs WHERE id = $1", &[&uid])
        .await
        .unwrap()
        .get(0);
    assert_eq!(st, "failed_terminal");
}

// --- Docker instances, on a fake Engine API ---

/// A fake Docker Engine API on a unix socket: containers in memory; a
/// "started postgres" is the test PostgreSQL, reached through the port the
/// container publishes.
#[derive(Clone, Default)]
struct FakeDocker {
    containers: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, Value>>>,
    calls: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl FakeDocker {
    async fn start(&self) -> std::path::PathBuf {
        use http_body_util::{BodyExt, Full};
        let path = std::env::temp_dir().join(format!("{}.sock", unique("docker")));
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
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
                                let method = req.method().to_string();
                                let uri = req.uri().clone();
                                let body = req.into_body().collect().await.unwrap().to_bytes();
                                let (status, out) = me.answer(&method, &uri, &body);
                                Ok::<_, std::convert::Infallible>(
                                    hyper::Response::builder()
                                        .status(status)
                                        .header("content-type", "application/json")
                                        .body(Full::new(bytes::Bytes::from(if out.is_null() {
                                            String::new()
                                        } else {
                                            out.to_string()
                                        })))
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
        path
    }

    fn answer(&self, method: &str, uri: &hyper::Uri, body: &[u8]) -> (u16, Value) {
        let path = uri.path();
        self.calls.lock().unwrap().push(format!("{method} {path}"));
        let mut containers = self.containers.lock().unwrap();
        let no_such = (404, json!({"message": "No such container"}));
        match (
            method,
            path.trim_start_matches('/')
                .split('/')
                .collect::<Vec<_>>()
                .as_slice(),
        ) {
            ("GET", ["_ping"]) => (200, Value::Null),
            ("GET", ["containers", "json"]) => {
                let list: Vec<Value> = containers
                    .iter()
                    .filter(|(_, c)| c["Config"]["Labels"]["athena.managed"] == "true")
                    .map(|(name, c)| {
                        let port: Option<i64> = c["HostConfig"]["PortBindings"]["5432/tcp"][0]["HostPort"]
                            .as_str()
                            .and_then(|p| p.parse().ok());
                        json!({
                            "Id": c["Id"], "Names": [format!("/{name}")], "Image": c["Config"]["Image"],
                            "State": if c["State"]["Running"] == true { "running" } else { "exited" },
                            "Status": c["State"]["Status"], "Labels": c["Config"]["Labels"],
                            "Ports": [{"PrivatePort": 5432, "PublicPort": port, "Type": "tcp"}],
                        })
                    })
                    .collect();
                (200, json!(list))
            }
            ("POST", ["containers", "create"]) => {
                let name = uri
                    .query()
                    .and_then(|q| q.strip_prefix("name="))
                    .unwrap_or_default()
                    .to_string();
                if containers.contains_key(&name) {
                    return (
                        409,
                        json!({"message": "Conflict. The container name is already in use"}),
                    );
                }
                let spec: Value = serde_json::from_slice(body).unwrap();
                let id = uuid::Uuid::new_v4().simple().to_string();
                containers.insert(
                    name,
                    json!({
                        "Id": id,
                        "Config": {"Image": spec["Image"], "Labels": spec["Labels"], "Env": spec["Env"]},
                        "HostConfig": spec["HostConfig"],
                        "NetworkSettings": {"Ports": {}},
                        "State": {"Running": false, "Status": "created"},
                    }),
                );
                (201, json!({"Id": id, "Warnings": []}))
            }
            ("GET", ["containers", name, "json"]) => match containers.get(*name) {
                Some(c) => (200, c.clone()),
                None => no_such,
            },
            ("POST", ["containers", name, action @ ("start" | "stop")]) => {
                match containers.get_mut(*name) {
                    Some(c) => {
                        let running = *action == "start";
                        c["State"] = json!({"Running": running, "Status": if running { "running" } else { "exited" }});
                        c["NetworkSettings"]["Ports"] = if running {
                            json!({"5432/tcp": c["HostConfig"]["PortBindings"]["5432/tcp"].clone()})
                        } else {
                            json!({})
                        };
                        (204, Value::Null)
                    }
                    None => no_such,
                }
            }
            ("DELETE", ["containers", name]) => match containers.remove(*name) {
                Some(_) => (204, Value::Null),
                None => no_such,
            },
            _ => (404, json!({"message": "page not found"})),
        }
    }
}

#[tokio::test]
async fn instances_without_docker_list_truthfully_and_refuse_the_rest() {
    let s = TestServer::start_with(|c| {
        c.provision.docker_host = Some("unix:///nonexistent/docker.sock".into());
    })
    .await;
    let r = s
        .send("GET", "/admin/provision/instances", &[KEY], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["instance_runtime_available"], false);
    assert_eq!(v["count"], 0);
    assert!(v["instance_runtime_error"].is_string());
    assert!(v["dependencies"]["missing"].is_array());
    for (method, path, body) in [
        (
            "POST",
            "/admin/provision/instances",
            Some(json!({"client_name": "x"})),
        ),
        ("GET", "/admin/provision/instances/athena-pg-x", None),
        ("POST", "/admin/provision/instances/athena-pg-x/start", None),
        ("POST", "/admin/provision/instances/athena-pg-x/stop", None),
        ("DELETE", "/admin/provision/instances/athena-pg-x", None),
        (
            "POST",
            "/admin/provision/instances/athena-pg-x/bindings",
            Some(json!({"route_key": "r1"})),
        ),
    ] {
        let r = s.send(method, path, &[KEY], body).await;
        assert_eq!(r.status, 503, "{method} {path}: {}", r.text());
        r.envelope();
    }
}

#[tokio::test]
async fn a_docker_instance_is_spun_up_provisioned_registered_and_managed() {
    let fake = FakeDocker::default();
    let socket = fake.start().await;
    let sock = socket.display().to_string();
    let s =
        TestServer::start_with(|c| c.provision.docker_host = Some(format!("unix://{sock}"))).await;
    // The "container's" database, on the test PostgreSQL.
    let db = unique("inst");
    psql(&admin_url())
        .await
        .batch_execute(&format!("CREATE DATABASE \"{db}\""))
        .await
        .unwrap();
    let (_, pg_port) = common::pg_host_port();
    let client = unique("dock");
    let body = json!({"client_name": client, "container_name": "athena-pg-test", "db_name": db, "host_port": pg_port, "image": "postgres:16", "startup_timeout_secs": 10});
    let r = s
        .send(
            "POST",
            "/admin/provision/instances",
            &[KEY],
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["container_name"], "athena-pg-test");
    assert_eq!(v["registered_catalog"], true);
    assert_eq!(v["registered_runtime"], true);
    assert!(v["statements_executed"].as_i64().unwrap() > 0);
    assert!(!r.text().contains("POSTGRES_PASSWORD"));
    // The Engine saw a labelled container with a random password.
    let created = fake.containers.lock().unwrap()["athena-pg-test"].clone();
    assert_eq!(created["Config"]["Labels"]["athena.managed"], "true");
    assert_eq!(
        created["HostConfig"]["PortBindings"]["5432/tcp"][0]["HostIp"],
        "127.0.0.1"
    );
    let env = created["Config"]["Env"].to_string();
    let password = env
        .split("POSTGRES_PASSWORD=")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(password.len(), 48);
    assert!(!r.text().contains(&password));
    // Provisioned and routed.
    assert_eq!(status(&s, &client).await["provisioned"], true);
    psql(&with_db(&admin_url(), &db))
        .await
        .batch_execute(
            "CREATE TABLE pets (id int PRIMARY KEY, name text); INSERT INTO pets VALUES (1, 'rex')",
        )
        .await
        .unwrap();
    let f = s
        .send(
            "POST",
            "/gateway/fetch",
            &[("x-athena-client", client.as_str())],
            Some(json!({"table_name": "pets"})),
        )
        .await;
    assert_eq!(f.status, 200, "{}", f.text());
    assert_eq!(f.json()["data"][0]["name"], "rex");

    // Exists: 409 without reuse, reused with it (the same password).
    let r = s
        .send(
            "POST",
            "/admin/provision/instances",
            &[KEY],
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    let mut reuse = body.clone();
    reuse["reuse_existing"] = json!(true);
    // Another client may not take the instance over; its record stays.
    reuse["client_name"] = json!(unique("again"));
    let sealed_before: Vec<u8> = psql(&s.catalog_url)
        .await
        .query_one(
            "SELECT password_sealed FROM athena_provision_instances WHERE container_name = 'athena-pg-test'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let r = s
        .send(
            "POST",
            "/admin/provision/instances",
            &[KEY],
            Some(reuse.clone()),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    let (sealed_after, owner): (Vec<u8>, String) = {
        let row = psql(&s.catalog_url)
            .await
            .query_one(
                "SELECT password_sealed, client_name FROM athena_provision_instances WHERE container_name = 'athena-pg-test'",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(sealed_after, sealed_before);
    assert_eq!(owner, client);
    reuse["client_name"] = json!(client);
    reuse["register_catalog"] = json!(false);
    reuse["register_runtime"] = json!(false);
    // Its own client reuses it (already registered: no second registration).
    let r = s
        .send("POST", "/admin/provision/instances", &[KEY], Some(reuse))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["reused"], true);
    assert_eq!(r.json()["statements_executed"], 0);

    // Listed, inspected.
    let l = s
        .send("GET", "/admin/provision/instances", &[KEY], None)
        .await
        .json();
    assert_eq!(l["instance_runtime_available"], true);
    assert_eq!(l["count"], 1);
    assert_eq!(l["instances"][0]["container_name"], "athena-pg-test");
    assert_eq!(l["instances"][0]["running"], true);
    let one = s
        .send(
            "GET",
            "/admin/provision/instances/athena-pg-test",
            &[KEY],
            None,
        )
        .await;
    assert_eq!(one.status, 200, "{}", one.text());
    assert_eq!(one.json()["host_port"], pg_port);
    let r = s
        .send("GET", "/admin/provision/instances/nope", &[KEY], None)
        .await;
    assert_eq!(r.status, 404);

    // Stop and start (runtime synced), bindings stored.
    let r = s
        .send(
            "POST",
            "/admin/provision/instances/athena-pg-test/stop",
            &[KEY],
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        fake.containers.lock().unwrap()["athena-pg-test"]["State"]["Running"],
        false
    );
    let r = s
        .send(
            "POST",
            "/admin/provision/instances/athena-pg-test/start",
            &[KEY],
            Some(json!({"sync_runtime": true})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["runtime_synced"], true, "{}", r.text());
    let r = s
        .send(
            "POST",
            "/admin/provision/instances/athena-pg-test/bindings",
            &[KEY],
            Some(json!({"route_key": "pg_public", "public_host": "db.example.com", "public_port": 15432})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let one = s
        .send(
            "GET",
            "/admin/provision/instances/athena-pg-test",
            &[KEY],
            None,
        )
        .await
        .json();
    assert_eq!(one["bindings"][0]["route_key"], "pg_public");
    assert_eq!(one["bindings"][0]["public_port"], 15432);

    // Bad input.
    for (path, b) in [
        (
            "/admin/provision/instances",
            json!({"client_name": "ok1", "image": "Evil;rm"}),
        ),
        (
            "/admin/provision/instances",
            json!({"client_name": "ok1", "container_name": "../x"}),
        ),
        (
            "/admin/provision/instances/athena-pg-test/bindings",
            json!({"route_key": "bad key"}),
        ),
    ] {
        let r = s.send("POST", path, &[KEY], Some(b)).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text());
    }

    // Delete: container gone, client removed.
    let r = s
        .send(
            "DELETE",
            "/admin/provision/instances/athena-pg-test",
            &[KEY],
            Some(json!({"client_name": client})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["removed_catalog_client"], true);
    assert!(fake.containers.lock().unwrap().is_empty());
    let clients = s.send("GET", "/admin/clients", &[KEY], None).await.json();
    assert!(!clients["clients"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["client_name"] == client.as_str()));
    drop_dbs(&[&db]).await;
    let _ = std::fs::remove_file(&socket);
}

/// Docker instances bind to loopback unless the operator opts in.
#[tokio::test]
async fn a_docker_instance_binds_to_loopback_only() {
    let fake = FakeDocker::default();
    let socket = fake.start().await;
    let sock = socket.display().to_string();
    let s =
        TestServer::start_with(|c| c.provision.docker_host = Some(format!("unix://{sock}"))).await;
    for host in ["0.0.0.0", "10.1.2.3", "::"] {
        let r = s
            .send(
                "POST",
                "/admin/provision/instances",
                &[KEY],
                Some(json!({"client_name": unique("pub"), "host": host})),
            )
            .await;
        assert_eq!(r.status, 400, "{host}: {}", r.text());
        r.envelope();
    }
    assert!(fake.containers.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_local_pipeline_runs_its_steps_as_one_job() {
    let s = TestServer::start().await;
    let client = unique("piped");
    let r = s
        .send(
            "POST",
            "/admin/provision/local/pipeline",
            &[KEY],
            Some(json!({"client_name": client, "mode": "local_database", "options": {"server_client": CLIENT}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["status"], "completed");
    assert_eq!(v["steps"].as_array().unwrap().len(), 3);
    assert!(v["job_id"].is_string());
    assert!(db_exists(&client).await);
    assert_eq!(status(&s, &client).await["provisioned"], true);
    let recorded: String = psql(&s.catalog_url)
        .await
        .query_one(
            "SELECT status FROM athena_provision_pipelines WHERE client_name = $1",
            &[&client],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded, "completed");
    // Existing target → 409; bad bodies → 400.
    let r = s
        .send(
            "POST",
            "/admin/provision/local/pipeline",
            &[KEY],
            Some(json!({"client_name": client, "mode": "local_database", "options": {"server_client": CLIENT}})),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    for body in [
        json!({"client_name": "x1", "mode": "ftp"}),
        json!({"mode": "local_database"}),
        json!({"client_name": "x2", "mode": "local_database", "options": {}}),
    ] {
        let r = s
            .send(
                "POST",
                "/admin/provision/local/pipeline",
                &[KEY],
                Some(body),
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.text());
        r.envelope();
    }
    drop_dbs(&[&client]).await;
}

#[tokio::test]
async fn clone_into_a_new_managed_instance() {
    let fake = FakeDocker::default();
    let socket = fake.start().await;
    let sock = socket.display().to_string();
    let mut s = clone_server(|c| c.provision.docker_host = Some(format!("unix://{sock}"))).await;
    let source = clone_source(&mut s).await;
    // The instance's database (the fake "container" publishes the test
    // PostgreSQL's port).
    let db = unique("instclone");
    psql(&admin_url())
        .await
        .batch_execute(&format!("CREATE DATABASE \"{db}\""))
        .await
        .unwrap();
    let (_, pg_port) = common::pg_host_port();
    let client = unique("fromclone");
    let created = create_clone(
        &s,
        json!({
            "source": {"source_uri": source},
            "target": {
                "mode": "create_managed_instance", "client_name": client,
                "container_name": "athena-clone-target", "database_name": db,
                "host_port": pg_port, "password": "t4rgetpw", "startup_timeout_secs": 10,
            },
        }),
    )
    .await;
    assert!(!created.to_string().contains("t4rgetpw"));
    let id = created["summary"]["job_id"].as_str().unwrap().to_string();
    let v = wait_job(&s, &id, |st| {
        matches!(st, "completed" | "failed_terminal" | "failed_retryable")
    })
    .await;
    assert_eq!(v["job"]["summary"]["status"], "completed", "{v}");
    assert!(!v.to_string().contains("t4rgetpw"));
    assert_eq!(
        v["job"]["summary"]["verification_summary"]["rows_target"],
        1821
    );
    let c = fake.containers.lock().unwrap()["athena-clone-target"].clone();
    assert_eq!(c["Config"]["Labels"]["athena.managed"], "true");
    assert!(c["Config"]["Env"]
        .to_string()
        .contains("POSTGRES_PASSWORD=t4rgetpw"));
    let f = s
        .send(
            "POST",
            "/gateway/fetch",
            &[("x-athena-client", client.as_str())],
            Some(
                json!({"table_name": "items", "conditions": [{"eq_column": "id", "eq_value": 9}]}),
            ),
        )
        .await;
    assert_eq!(f.status, 200, "{}", f.text());
    assert_eq!(f.json()["data"][0]["label"], "item 9");
    drop_dbs(&[&db]).await;
    let _ = std::fs::remove_file(&socket);
}
