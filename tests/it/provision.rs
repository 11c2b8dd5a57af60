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
    format!("{prefix}_{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
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
        s.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'athena' AND tablename = 'files'")
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
        .send("GET", "/admin/provision/status?client_name=nope", &[KEY], None)
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    // The admin key is required.
    let r = s
        .send("POST", "/admin/provision", &[], Some(json!({"client_name": CLIENT})))
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
        .send("POST", "/admin/provision", &[KEY], Some(json!({"uri": uri})))
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
            .send("POST", "/admin/provision", &[KEY], Some(json!({"uri": bad})))
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
    assert!(l["all_databases"].as_array().unwrap().contains(&json!(name)));
    assert_eq!(l["athena_managed_databases"][0]["database_name"], name.as_str());
    assert_eq!(l["athena_managed_databases"][0]["client_name"], name.as_str());

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
            .send("POST", "/admin/provision/local/databases", &[KEY], Some(body))
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
    assert!(!db_exists(&name).await, "the half-provisioned database was dropped");
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
        assert!(r.status == 401 || r.status == 403, "{} {}", r.status, r.text());
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
