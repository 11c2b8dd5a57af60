//! Deferred gateway writes: queued in the catalog, answered with a request
//! id once committed, executed exactly once by the workers, readable and
//! requeueable by the same client only, flushed by the admin; and, with the
//! real binary, surviving `kill -9` without loss or duplicates.

use crate::common;

use bytes::Bytes;
use common::{free_port, psql, wait_ready, with_db, TestServer, ADMIN_KEY, CLIENT};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const C: (&str, &str) = ("X-Athena-Client", CLIENT);
const ADMIN: (&str, &str) = ("X-Athena-Key", ADMIN_KEY);

async fn items(s: &TestServer) {
    s.tenant()
        .await
        .batch_execute("CREATE TABLE items (id serial PRIMARY KEY, name text UNIQUE, qty int)")
        .await
        .unwrap();
}

async fn names(s: &TestServer) -> Vec<String> {
    s.tenant()
        .await
        .query("SELECT name FROM items ORDER BY name", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Enqueues and returns the request id (asserting the deferred answer).
async fn deferred(s: &TestServer, method: &str, path: &str, body: Value) -> String {
    let r = s.send(method, path, &[C], Some(body)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["status"], "queued", "{v}");
    assert_eq!(v["deferred"], true, "{v}");
    let id = v["request_id"].as_str().expect("request_id").to_string();
    assert_eq!(v["data"]["request_id"], id.as_str());
    assert_eq!(
        r.headers["x-athena-deferred-request-id"].to_str().unwrap(),
        id
    );
    id
}

/// Polls the status until it leaves queued/running.
async fn settle(s: &TestServer, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = s
            .send("GET", &format!("/gateway/deferred/{id}"), &[C], None)
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        let state = v["status"].as_str().unwrap().to_string();
        if state != "queued" && state != "running" {
            return v;
        }
        assert!(Instant::now() < deadline, "job {id} stuck: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn enabled(c: &mut athena::config::Config) {
    c.deferred_clients = vec![CLIENT.into()];
}

#[tokio::test]
async fn insert_update_delete_are_queued_then_applied() {
    let s = TestServer::start_with(enabled).await;
    items(&s).await;

    let id = deferred(
        &s,
        "PUT",
        "/gateway/insert",
        json!({"table_name": "items", "insert_body": {"name": "a", "qty": 1}}),
    )
    .await;
    let v = settle(&s, &id).await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(v["operation"], "insert");
    assert_eq!(v["table_name"], "items");
    assert_eq!(v["data"]["status"], "completed");
    // The result is what the inline route would have answered.
    assert_eq!(v["result"]["status"], "success", "{v}");
    assert_eq!(v["result"]["data"]["name"], "a");
    assert_eq!(v["result"]["rows_affected"], 1);
    assert_eq!(names(&s).await, ["a"]);

    let id = deferred(
        &s,
        "POST",
        "/gateway/update",
        json!({"table_name": "items", "conditions": [{"eq_column": "name", "eq_value": "a"}],
               "update_body": {"name": "b"}}),
    )
    .await;
    let v = settle(&s, &id).await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(v["result"]["data"][0]["name"], "b");
    assert_eq!(names(&s).await, ["b"]);

    let id = deferred(
        &s,
        "DELETE",
        "/gateway/delete",
        json!({"table_name": "items", "conditions": [{"eq_column": "name", "eq_value": "b"}]}),
    )
    .await;
    let v = settle(&s, &id).await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(v["result"]["rows_affected"], 1);
    assert!(names(&s).await.is_empty());

    // Invalid requests are refused at once, never queued.
    let r = s
        .send(
            "POST",
            "/gateway/update",
            &[C],
            Some(json!({"table_name": "items", "update_body": {"name": "x"}})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    // Reads are never deferred.
    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &[C],
            Some(json!({"table_name": "items"})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "success");
    s.stop().await;
}

#[tokio::test]
async fn direct_uri_writes_run_inline() {
    let s = TestServer::start_with(|c| {
        enabled(c);
        c.direct_allow_trust_auth = true;
        common::allow_local_postgres(c);
    })
    .await;
    items(&s).await;
    // The test PostgreSQL trusts local logins: any password will do.
    let (scheme, rest) = s.tenant_url.split_once("://").unwrap();
    let (user, host) = rest.split_once('@').unwrap();
    let user = user.split(':').next().unwrap();
    let uri = format!("{scheme}://{user}:x@{host}");
    let r = s
        .send(
            "PUT",
            "/gateway/insert",
            &[C, ("x-pg-uri", &uri)],
            Some(json!({"table_name": "items", "insert_body": {"name": "direct"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "success");
    assert!(r.headers.get("x-athena-deferred-request-id").is_none());
    assert_eq!(names(&s).await, ["direct"]);
    s.stop().await;
}

#[tokio::test]
async fn request_ids_are_scoped_to_their_client() {
    let mut s = TestServer::start_with(enabled).await;
    items(&s).await;
    let other_db = s.extra_db().await;
    let r = s
        .send(
            "POST",
            "/admin/clients",
            &[ADMIN],
            Some(json!({"client_name": "other", "pg_uri": other_db})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = deferred(
        &s,
        "PUT",
        "/gateway/insert",
        json!({"table_name": "items", "insert_body": {"name": "mine"}}),
    )
    .await;
    settle(&s, &id).await;
    let other = ("X-Athena-Client", "other");
    for (method, path) in [
        ("GET", format!("/gateway/deferred/{id}")),
        ("POST", format!("/gateway/deferred/{id}/requeue")),
    ] {
        let r = s.send(method, &path, &[other], None).await;
        assert_eq!(r.status, 404, "{}", r.text());
        assert!(!r.text().contains("mine"));
    }
    for bad in ["nope", "00000000-0000-0000-0000-000000000000"] {
        let r = s
            .send("GET", &format!("/gateway/deferred/{bad}"), &[C], None)
            .await;
        assert_eq!(r.status, 404, "{}", r.text());
        r.envelope();
    }
    // No client at all: the same answer as every gateway route.
    let r = s
        .send("GET", &format!("/gateway/deferred/{id}"), &[], None)
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    s.stop().await;
}

#[tokio::test]
async fn a_failed_job_is_requeued_once_and_runs_once() {
    let s = TestServer::start_with(enabled).await;
    items(&s).await;
    let tenant = s.tenant().await;
    tenant
        .batch_execute("INSERT INTO items (name, qty) VALUES ('dup', 0)")
        .await
        .unwrap();
    let id = deferred(
        &s,
        "PUT",
        "/gateway/insert",
        json!({"table_name": "items", "insert_body": {"name": "dup", "qty": 7}}),
    )
    .await;
    let v = settle(&s, &id).await;
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["result"]["http_status"], 409, "{v}");
    assert_eq!(v["result"]["code"], "conflict");
    assert!(v["error"].is_string());

    // Fix the data, then requeue twice at once: one requeue, one run.
    tenant
        .batch_execute("DELETE FROM items WHERE name = 'dup'")
        .await
        .unwrap();
    let path = format!("/gateway/deferred/{id}/requeue");
    let (a, b) = tokio::join!(
        s.send("POST", &path, &[C], None),
        s.send("POST", &path, &[C], None)
    );
    assert_eq!((a.status, b.status), (200, 200));
    let requeued: Vec<bool> = [a.json(), b.json()]
        .iter()
        .map(|v| v["requeued"].as_bool().unwrap())
        .collect();
    assert_eq!(requeued.iter().filter(|r| **r).count(), 1, "{requeued:?}");
    let v = settle(&s, &id).await;
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(v["requeue_count"], 1);
    // A completed job is never run again.
    let r = s.send("POST", &path, &[C], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["requeued"], false);
    assert_eq!(r.json()["status"], "completed");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let rows = tenant
        .query("SELECT qty FROM items WHERE name = 'dup'", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i32>(0), 7);
    s.stop().await;
}

#[tokio::test]
async fn a_job_applied_before_a_crash_is_not_applied_again() {
    let s = TestServer::start_with(enabled).await;
    items(&s).await;
    let id = deferred(
        &s,
        "PUT",
        "/gateway/insert",
        json!({"table_name": "items", "insert_body": {"name": "once"}}),
    )
    .await;
    let first = settle(&s, &id).await;
    assert_eq!(first["status"], "completed");
    // As if the worker died after the tenant COMMIT but before recording
    // the outcome: the job is running with a dead worker's token.
    psql(&s.catalog_url)
        .await
        .execute(
            "UPDATE athena_deferred_requests SET status = 'running', result = NULL,
                    run_token = gen_random_uuid(), started_at = now() - interval '1 hour'
              WHERE id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap();
    let again = settle(&s, &id).await;
    assert_eq!(again["status"], "completed", "{again}");
    assert_eq!(again["attempts"], 2);
    assert_eq!(again["result"]["data"], first["result"]["data"]);
    assert_eq!(names(&s).await, ["once"]);
    s.stop().await;
}

#[tokio::test]
async fn flush_drains_the_queue_and_is_admin_only() {
    let s = TestServer::start_with(|c| {
        enabled(c);
        c.deferred_workers = 0;
    })
    .await;
    items(&s).await;
    // Nothing queued: a benign success with zero counts.
    let r = s
        .send("POST", "/gateway/deferred/flush", &[ADMIN], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["processed"], 0);

    let mut ids = Vec::new();
    for n in ["f1", "f2", "f3"] {
        ids.push(
            deferred(
                &s,
                "PUT",
                "/gateway/insert",
                json!({"table_name": "items", "insert_body": {"name": n}}),
            )
            .await,
        );
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    for id in &ids {
        let r = s
            .send("GET", &format!("/gateway/deferred/{id}"), &[C], None)
            .await;
        assert_eq!(r.json()["status"], "queued");
    }
    let r = s.send("POST", "/gateway/deferred/flush", &[C], None).await;
    assert_eq!(r.status, 401, "{}", r.text());
    let r = s
        .send("POST", "/gateway/deferred/flush", &[ADMIN], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["succeeded"], 3, "{v}");
    assert_eq!(v["failed"], 0);
    assert_eq!(v["remaining"], 0);
    assert_eq!(v["data"]["invalidated_tables"][0]["table"], "public.items");
    assert_eq!(names(&s).await, ["f1", "f2", "f3"]);
    s.stop().await;
}

#[tokio::test]
async fn other_switches_and_idempotency_keys() {
    let s = TestServer::start().await;
    items(&s).await;
    // Not enabled: inline.
    let body = json!({"table_name": "items", "insert_body": {"name": "inline"}});
    let r = s.send("PUT", "/gateway/insert", &[C], Some(body)).await;
    assert_eq!(r.json()["status"], "success");
    // Requested per request.
    let r = s
        .send(
            "PUT",
            "/gateway/insert",
            &[C, ("X-Athena-Defer", "true")],
            Some(json!({"table_name": "items", "insert_body": {"name": "asked"}})),
        )
        .await;
    assert_eq!(r.json()["status"], "queued", "{}", r.text());
    let id = r.json()["request_id"].as_str().unwrap().to_string();
    assert_eq!(settle(&s, &id).await["status"], "completed");

    // Enabled in the client's catalog metadata (visible on GET /admin/clients).
    psql(&s.catalog_url)
        .await
        .execute(
            "UPDATE athena_clients SET metadata = '{\"deferred_writes\": {\"enabled\": true}}'
              WHERE client_name = $1",
            &[&CLIENT],
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5200)).await;
    let key = ("Idempotency-Key", "k-1");
    let body = json!({"table_name": "items", "insert_body": {"name": "keyed"}});
    let a = s
        .send("PUT", "/gateway/insert", &[C, key], Some(body.clone()))
        .await;
    let b = s
        .send("PUT", "/gateway/insert", &[C, key], Some(body))
        .await;
    let (a, b) = (a.json(), b.json());
    assert_eq!(a["status"], "queued", "{a}");
    assert_eq!(a["request_id"], b["request_id"]);
    assert_eq!(b["data"]["existing"], true);
    settle(&s, a["request_id"].as_str().unwrap()).await;
    assert_eq!(names(&s).await, ["asked", "inline", "keyed"]);
    s.stop().await;
}

// ---- the real binary: kill -9 with acknowledged jobs ----

fn athena(db: &str, port: u16, workers: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_athena"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .env("DATABASE_URL", db)
        .env("ATHENA_CLIENTS", format!("t={db}"))
        .env("ATHENA_DEFERRED_CLIENTS", "t")
        .env("ATHENA_DEFERRED_WORKERS", workers)
        .env("ATHENA_DEFERRED_STALE_SECS", "1")
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

async fn call(port: u16, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let req = http::Request::builder()
        .method(method)
        .uri(format!("http://127.0.0.1:{port}{path}"))
        .header("X-Athena-Client", "t")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            body.map(|b| b.to_string()).unwrap_or_default(),
        )))
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
async fn acknowledged_jobs_survive_kill_9_and_run_exactly_once() {
    let admin = std::env::var("ATHENA_PG_ADMIN_URL").expect("run through make test");
    let name = format!("t_{}_defer", uuid::Uuid::new_v4().simple());
    psql(&admin)
        .await
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap();
    let db = with_db(&admin, &name);
    // One database is both catalog and tenant; each insert takes a while so
    // that the second process is killed in the middle of its work.
    psql(&db)
        .await
        .batch_execute(
            "CREATE TABLE events (id serial PRIMARY KEY, n int NOT NULL);
             CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN PERFORM pg_sleep(0.15); RETURN NEW; END $$;
             CREATE TRIGGER slow BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION slow();",
        )
        .await
        .unwrap();

    // 1. Workers off: every job is acknowledged and stays queued; kill -9.
    let port = free_port();
    let mut first = athena(&db, port, "0");
    wait_ready(port, &mut first).await;
    let mut ids = Vec::new();
    for n in 0..12 {
        let (status, v) = call(
            port,
            "PUT",
            "/gateway/insert",
            Some(json!({"table_name": "events", "insert_body": {"n": n}})),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["status"], "queued", "{v}");
        ids.push(v["request_id"].as_str().unwrap().to_string());
    }
    kill9(&mut first);

    // 2. Workers on: killed again while jobs are running.
    let port = free_port();
    let mut second = athena(&db, port, "2");
    wait_ready(port, &mut second).await;
    let catalog = psql(&db).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let done: i64 = catalog
            .query_one(
                "SELECT count(*) FROM athena_deferred_requests WHERE status = 'completed'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if done >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "the workers made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill9(&mut second);

    // 3. A fresh process finishes everything, reclaiming the stale jobs.
    let port = free_port();
    let mut third = athena(&db, port, "1");
    wait_ready(port, &mut third).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    for id in &ids {
        loop {
            let (status, v) = call(port, "GET", &format!("/gateway/deferred/{id}"), None).await;
            assert_eq!(status, 200, "{v}");
            if v["status"] == "completed" {
                break;
            }
            assert_ne!(v["status"], "failed", "{v}");
            assert!(Instant::now() < deadline, "job {id} not finished: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let rows = catalog
        .query("SELECT n, count(*) FROM events GROUP BY n ORDER BY n", &[])
        .await
        .unwrap();
    let got: Vec<(i32, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let want: Vec<(i32, i64)> = (0..12).map(|n| (n, 1)).collect();
    assert_eq!(got, want, "every acknowledged insert applied exactly once");
    let markers: i64 = catalog
        .query_one(
            "SELECT count(*) FROM athena_gateway.athena_deferred_applied",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(markers, 12);
    kill9(&mut third);
    drop(catalog);
    let _ = psql(&admin)
        .await
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await;
}
