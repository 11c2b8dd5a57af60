//! Backups to S3 (issue 18) on the test PostgreSQL and SeaweedFS: backup →
//! list → download → restore into a fresh database with equal row counts
//! per table; a `pg_uri` target never echoed; cancel stops `pg_dump` (no
//! process left) and aborts the upload; a store failing mid-upload fails
//! the job and aborts the upload; `kill -9` of the replica running a
//! backup leaves a job another replica fails (never `running`); two
//! replicas queue a schedule's slot once; the daemon registry.
//!
//! Failures of the store are a local fake S3 (`FakeS3`, allow-listed on
//! 127.0.0.1) that records what it was sent.

use crate::common::{self, allow, psql, wait_ready, TestServer, ADMIN_KEY, CLIENT};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const H: [(&str, &str); 1] = [("x-athena-key", ADMIN_KEY)];

/// One bucket for every backup test (each bucket is a SeaweedFS
/// collection with volumes of its own; the tests share one and keep apart
/// by prefix, `tweak`).
const BUCKET: &str = "athena-it-backups";

fn bucket_name(_tag: &str) -> String {
    BUCKET.to_string()
}

/// Creates `bucket` on the test store through the storage API.
async fn create_bucket(s: &TestServer, bucket: &str) {
    let body = json!({
        "endpoint": std::env::var("S3_ENDPOINT").expect("S3_ENDPOINT (the test SeaweedFS)"),
        "region": "us-east-1",
        "access_key_id": std::env::var("S3_ACCESS_KEY_ID").unwrap_or_default(),
        "secret_key": std::env::var("S3_SECRET_ACCESS_KEY").unwrap_or_default(),
        "bucket": bucket,
    });
    let r = s
        .send(
            "POST",
            "/storage/buckets/create",
            &[("x-athena-key", ADMIN_KEY), ("x-athena-client", CLIENT)],
            Some(body),
        )
        .await;
    // Created now, or by an earlier test.
    assert!(
        r.status == 200 || r.text().contains("already exists"),
        "{}",
        r.text()
    );
}

fn tweak(c: &mut athena::config::Config, bucket: &str) {
    allow(c, "127.0.0.1");
    c.backups.bucket = Some(bucket.to_string());
    c.backups.prefix = format!(
        "it-backups/{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    c.backups.poll = Duration::from_millis(100);
}

/// Polls the job until `done` holds (panics after `secs`).
async fn wait_job(s: &TestServer, id: i64, secs: u64, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let r = s
            .send("GET", &format!("/admin/backups/jobs/{id}"), &H, None)
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        if done(&v["data"]["job"]) {
            return v["data"].clone();
        }
        assert!(Instant::now() < deadline, "job {id} never got there: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn terminal(j: &Value) -> bool {
    matches!(
        j["status"].as_str(),
        Some("completed" | "failed" | "cancelled")
    )
}

async fn post_backup(s: &TestServer, body: Value) -> i64 {
    let r = s.send("POST", "/admin/backups", &H, Some(body)).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let v = r.json();
    assert_eq!(v["data"]["status"], "pending", "{v}");
    v["data"]["job_id"].as_i64().unwrap()
}

/// Row counts of every table of `public`, by name.
async fn counts(url: &str) -> Vec<(String, i64)> {
    let c = psql(url).await;
    let tables: Vec<String> = c
        .query(
            "SELECT table_name::text FROM information_schema.tables
              WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = Vec::new();
    for t in tables {
        let n: i64 = c
            .query_one(&format!("SELECT count(*) FROM public.\"{t}\""), &[])
            .await
            .unwrap()
            .get(0);
        out.push((t, n));
    }
    out
}

async fn fetch(url: &str) -> (u16, Bytes) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let res = client
        .request(
            http::Request::get(url)
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.into_body().collect().await.unwrap().to_bytes())
}

/// `pg_dump` processes whose command line names `db`.
fn pg_dumps_of(db: &str) -> usize {
    let out = Command::new("pgrep")
        .arg("-f")
        .arg(format!("pg_dump.*{db}"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

fn db_name(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_string()
}

#[tokio::test]
async fn backup_list_download_restore_round_trip() {
    let bucket = bucket_name("rt");
    // The fresh database the backup is restored into, a client of its own.
    let admin = std::env::var("ATHENA_PG_ADMIN_URL").unwrap();
    let fresh = format!("t_{}_restored", uuid::Uuid::new_v4().simple());
    psql(&admin)
        .await
        .batch_execute(&format!("CREATE DATABASE \"{fresh}\""))
        .await
        .unwrap();
    let fresh_url = common::with_db(&admin, &fresh);
    let f = fresh_url.clone();
    let s = TestServer::start_with(|c| {
        tweak(c, &bucket);
        c.seed_clients.push(("restored".into(), f));
    })
    .await;
    create_bucket(&s, &bucket).await;
    s.tenant()
        .await
        .batch_execute(
            "CREATE TABLE bk_items (id serial PRIMARY KEY, name text, doc jsonb, at timestamptz DEFAULT now());
             INSERT INTO bk_items (name, doc) SELECT 'n' || g, jsonb_build_object('g', g) FROM generate_series(1, 2500) g;
             CREATE TABLE bk_tags (item int REFERENCES bk_items (id), tag text);
             INSERT INTO bk_tags SELECT g, 't' || (g % 7) FROM generate_series(1, 777) g;
             CREATE TABLE bk_empty (x int);",
        )
        .await
        .unwrap();

    let r = s.send("GET", "/admin/backups/config", &H, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["bucket"], bucket.as_str());
    let prefix = r.json()["data"]["prefix"].as_str().unwrap().to_string();
    assert!(prefix.starts_with("it-backups/"), "{prefix}");

    // Backup: queued, run, progress and logs readable.
    let id = post_backup(&s, json!({"client_name": CLIENT, "label": "round trip"})).await;
    let done = wait_job(&s, id, 60, terminal).await;
    let job = &done["job"];
    assert_eq!(job["status"], "completed", "{done}");
    assert_eq!(job["progress_stage"], "completed");
    // No timeout_seconds given: the contract's default, never "no deadline".
    assert_eq!(job["timeout_seconds"], 3600, "{job}");
    assert!(job["bytes_written"].as_i64().unwrap() > 0, "{job}");
    assert!(done["logs"].as_array().unwrap().len() >= 3, "{done}");
    let key = job["s3_key"].as_str().unwrap().to_string();
    assert!(
        key.starts_with(&format!("{prefix}/{CLIENT}/")) && key.ends_with(&format!("-{id}.dump")),
        "{key}"
    );

    // Listed, with a cursor.
    let r = s
        .send(
            "GET",
            &format!("/admin/backups?client_name={CLIENT}&limit=10"),
            &H,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let list = r.json();
    let item = &list["data"]["backups"][0];
    assert_eq!(item["job_id"], id);
    assert_eq!(item["s3_key"], key.as_str());
    assert_eq!(item["label"], "round trip");
    let size = item["size_bytes"].as_i64().unwrap();
    assert!(size > 0);
    for bad in ["nope", "2026-01-01T00:00:00Z|x", "|1"] {
        let r = s
            .send("GET", &format!("/admin/backups?cursor={bad}"), &H, None)
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    assert_eq!(
        s.send("GET", "/admin/backups?limit=11", &H, None)
            .await
            .status,
        400
    );

    // Download: the custom-format dump, whole, as an attachment.
    let path = athena::backups::key_path(&key);
    let r = s
        .send("GET", &format!("/admin/backups/{path}/download"), &H, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body.starts_with(b"PGDMP"), "not a custom-format dump");
    assert_eq!(r.body.len() as i64, size);
    assert!(r.headers["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));

    // s3-open: a presigned GET of the same bytes.
    let r = s
        .send(
            "GET",
            &format!("/admin/backups/jobs/{id}/s3-open"),
            &H,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let url = r.json()["data"]["url"].as_str().unwrap().to_string();
    assert!(r.json()["data"]["expires_in"].as_i64().unwrap() <= 900);
    let (status, bytes) = fetch(&url).await;
    assert_eq!(status, 200);
    assert_eq!(bytes.len() as i64, size);

    // Restore into the fresh database: equal row counts per table.
    let r = s
        .send(
            "POST",
            &format!("/admin/backups/{path}/restore"),
            &H,
            Some(json!({"client_name": "restored"})),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let rid = r.json()["data"]["job_id"].as_i64().unwrap();
    assert_eq!(r.json()["data"]["key"], key.as_str());
    let done = wait_job(&s, rid, 60, terminal).await;
    assert_eq!(done["job"]["status"], "completed", "{done}");
    assert_eq!(done["job"]["timeout_seconds"], 3600, "{done}");
    let want = counts(&s.tenant_url).await;
    assert!(
        want.iter().any(|(t, n)| t == "bk_items" && *n == 2500),
        "{want:?}"
    );
    assert_eq!(counts(&fresh_url).await, want);

    // A failing restore leaves the target unchanged (one transaction): the
    // tables exist now, so the restore fails on the first CREATE.
    let r = s
        .send(
            "POST",
            &format!("/admin/backups/{path}/restore"),
            &H,
            Some(json!({"client_name": "restored"})),
        )
        .await;
    let rid2 = r.json()["data"]["job_id"].as_i64().unwrap();
    let done = wait_job(&s, rid2, 60, terminal).await;
    assert_eq!(done["job"]["status"], "failed", "{done}");
    assert!(
        done["job"]["error_message"]
            .as_str()
            .unwrap()
            .contains("pg_restore"),
        "{done}"
    );
    assert_eq!(counts(&fresh_url).await, want);

    // Keys: outside the prefix, `..` → 400; unknown → 404 on delete.
    for bad in [
        "elsewhere/x.dump".to_string(),
        format!("{prefix}/../x"),
        format!("{prefix}//x"),
        "it-backups/other/tenant/x.dump".to_string(),
    ] {
        let p = athena::backups::key_path(&bad);
        let r = s
            .send("GET", &format!("/admin/backups/{p}/download"), &H, None)
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        let r = s
            .send("DELETE", &format!("/admin/backups/{p}"), &H, None)
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }

    // Jobs list filters.
    let r = s
        .send(
            "GET",
            "/admin/backups/jobs?job_type=restore&status=failed",
            &H,
            None,
        )
        .await;
    let jobs = r.json()["data"]["jobs"].clone();
    assert_eq!(jobs.as_array().unwrap().len(), 1, "{jobs}");
    assert_eq!(jobs[0]["job_id"], rid2);

    // Delete the object, then it is gone (404); delete the jobs.
    let r = s
        .send("DELETE", &format!("/admin/backups/{path}"), &H, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["key"], key.as_str());
    let r = s
        .send("DELETE", &format!("/admin/backups/{path}"), &H, None)
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = s
        .send("GET", &format!("/admin/backups/{path}/download"), &H, None)
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    // Its job is no longer listed as a backup, s3-open answers 404; the
    // job itself stays readable, its logs say why.
    let r = s
        .send(
            "GET",
            &format!("/admin/backups?client_name={CLIENT}&limit=10"),
            &H,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        !r.json()["data"]["backups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["job_id"] == id),
        "{}",
        r.text()
    );
    let r = s
        .send(
            "GET",
            &format!("/admin/backups/jobs/{id}/s3-open"),
            &H,
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let done = wait_job(&s, id, 5, terminal).await;
    assert_eq!(done["job"]["status"], "completed", "{done}");
    assert!(done["job"]["s3_key"].is_null(), "{done}");
    assert!(
        done["logs"].as_array().unwrap().iter().any(|l| l["message"]
            .as_str()
            .unwrap_or("")
            .contains("object deleted")),
        "{done}"
    );
    let r = s
        .send("DELETE", &format!("/admin/backups/jobs/{id}"), &H, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.send("GET", &format!("/admin/backups/jobs/{id}"), &H, None)
            .await
            .status,
        404
    );

    // Daemons: this replica's worker and scheduler, alive.
    let r = s.send("GET", "/admin/daemons", &H, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let kinds: Vec<String> = r.json()["data"]["daemons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["status"] == "alive")
        .map(|d| d["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(
        kinds.contains(&"backup_worker".into()) && kinds.contains(&"backup_scheduler".into()),
        "{kinds:?}"
    );

    s.stop().await;
    let _ = psql(&admin)
        .await
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{fresh}\" WITH (FORCE)"))
        .await;
}

#[tokio::test]
async fn direct_uri_targets_are_never_echoed_and_bad_input_is_refused() {
    let bucket = bucket_name("uri");
    let s = TestServer::start_with(|c| tweak(c, &bucket)).await;
    create_bucket(&s, &bucket).await;
    let (host, port) = common::pg_host_port();
    let db = db_name(&s.tenant_url);
    let uri = format!("postgres://postgres:sup3r-s3cret@{host}:{port}/{db}");
    let r = s
        .send("POST", "/admin/backups", &H, Some(json!({"pg_uri": uri})))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert!(!r.text().contains("sup3r-s3cret"));
    let id = r.json()["data"]["job_id"].as_i64().unwrap();
    let done = wait_job(&s, id, 60, terminal).await;
    assert_eq!(done["job"]["status"], "completed", "{done}");
    assert!(!done.to_string().contains("sup3r-s3cret"), "{done}");
    let shown = done["job"]["target"].as_str().unwrap();
    assert!(
        shown.starts_with(&format!("postgres://postgres:***@{host}:{port}/")),
        "{shown}"
    );
    let r = s.send("GET", "/admin/backups/jobs", &H, None).await;
    assert!(!r.text().contains("sup3r-s3cret"));
    // The catalog keeps it sealed only.
    let c = psql(&s.catalog_url).await;
    let row = c
        .query_one("SELECT target_sealed, coalesce(result::text, ''), coalesce(error, '') FROM athena_backup_jobs WHERE job_id = $1", &[&id])
        .await
        .unwrap();
    let sealed: Vec<u8> = row.get(0);
    assert!(!String::from_utf8_lossy(&sealed).contains("sup3r-s3cret"));
    assert!(!row.get::<_, String>(1).contains("sup3r-s3cret"));

    // Bad input.
    for body in [
        json!({}),
        json!({"client_name": CLIENT, "pg_uri": uri}),
        json!({"client_name": "no-such-client"}),
        json!({"pg_uri": format!("postgres://postgres@{host}:{port}/{db}")}),
        json!({"client_name": CLIENT, "timeout_seconds": 0}),
    ] {
        let r = s
            .send("POST", "/admin/backups", &H, Some(body.clone()))
            .await;
        assert!(r.status == 400 || r.status == 401, "{body}: {}", r.text());
        r.envelope();
    }
    // Not an admin: 401.
    let r = s
        .send(
            "POST",
            "/admin/backups",
            &[],
            Some(json!({"client_name": CLIENT})),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = s.send("GET", "/admin/daemons", &[], None).await;
    assert_eq!(r.status, 401);
    let r = s
        .send("GET", "/admin/backups/jobs/1/s3-open", &[], None)
        .await;
    assert_eq!(r.status, 401);
    // Cancel or delete in the wrong state: 400; unknown: 404.
    assert_eq!(
        s.send(
            "POST",
            &format!("/admin/backups/jobs/{id}/cancel"),
            &H,
            None
        )
        .await
        .status,
        400
    );
    assert_eq!(
        s.send("POST", "/admin/backups/jobs/999999/cancel", &H, None)
            .await
            .status,
        404
    );
    s.stop().await;
}

#[tokio::test]
async fn without_a_bucket_backups_answer_503() {
    let s = TestServer::start().await;
    for (m, p, b) in [
        (
            "POST",
            "/admin/backups",
            Some(json!({"client_name": CLIENT})),
        ),
        ("GET", "/admin/backups", None),
        ("GET", "/admin/backups/config", None),
        (
            "GET",
            "/admin/backups/athena-backups%2Fx%2Fy.dump/download",
            None,
        ),
    ] {
        let r = s.send(m, p, &H, b).await;
        assert_eq!(r.status, 503, "{p}: {}", r.text());
        r.envelope();
    }
    s.stop().await;
}

// ---- a fake S3 that fails or stalls part uploads ----

#[derive(Clone, Copy, PartialEq)]
enum Parts {
    /// The connection is dropped (the store went away mid-upload).
    Drop,
    /// Never answered.
    Stall,
}

struct FakeS3 {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeS3 {
    async fn start(parts: Parts) -> FakeS3 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let log = log.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let log = log.clone();
                            async move {
                                let line = format!("{} {}", req.method(), req.uri());
                                log.lock().unwrap().push(line);
                                let query = req.uri().query().unwrap_or_default().to_string();
                                let method = req.method().clone();
                                let _ = req.into_body().collect().await;
                                let body = if method == http::Method::POST
                                    && query.starts_with("uploads")
                                {
                                    "<InitiateMultipartUploadResult><UploadId>up-1</UploadId></InitiateMultipartUploadResult>".to_string()
                                } else if method == http::Method::PUT
                                    && query.contains("partNumber")
                                {
                                    match parts {
                                        Parts::Drop => return Err("dropped".to_string()),
                                        Parts::Stall => {
                                            tokio::time::sleep(Duration::from_secs(3600)).await;
                                            String::new()
                                        }
                                    }
                                } else {
                                    String::new()
                                };
                                let status = if method == http::Method::DELETE {
                                    204
                                } else if method == http::Method::HEAD {
                                    // No upload is ever completed here.
                                    404
                                } else {
                                    200
                                };
                                Ok::<_, String>(
                                    http::Response::builder()
                                        .status(status)
                                        .header("etag", "\"e\"")
                                        .body(Full::new(Bytes::from(body)))
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
        FakeS3 { port, seen, task }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn aborted(&self) -> bool {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("DELETE") && l.contains("uploadId=up-1"))
    }
}

fn fake_config(c: &mut athena::config::Config, fake: &FakeS3) {
    tweak(c, "fake-bucket");
    c.s3 = Some(athena::config::S3Config {
        endpoint: fake.endpoint(),
        region: "us-east-1".into(),
        access_key: "ak".into(),
        secret_key: "sk".into(),
    });
    c.backups.part_size = 64 << 10;
}

/// ~3 MB of incompressible rows: `pg_dump` outlives a stalled first part.
async fn big_table(s: &TestServer) {
    s.tenant()
        .await
        .batch_execute(
            "CREATE TABLE bk_big AS SELECT g, md5(random()::text) || md5(random()::text) AS a,
                    md5(random()::text) || md5(random()::text) AS b
               FROM generate_series(1, 40000) g",
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_store_failing_mid_upload_fails_the_job_and_aborts_the_upload() {
    let fake = FakeS3::start(Parts::Drop).await;
    let s = TestServer::start_with(|c| fake_config(c, &fake)).await;
    big_table(&s).await;
    let id = post_backup(&s, json!({"client_name": CLIENT})).await;
    let done = wait_job(&s, id, 60, terminal).await;
    assert_eq!(done["job"]["status"], "failed", "{done}");
    assert!(
        done["job"]["error_message"]
            .as_str()
            .unwrap()
            .contains("S3"),
        "{done}"
    );
    assert!(fake.aborted(), "{:?}", fake.seen.lock().unwrap());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(pg_dumps_of(&db_name(&s.tenant_url)), 0);
    s.stop().await;
    fake.task.abort();
}

#[tokio::test]
async fn cancel_stops_pg_dump_and_aborts_the_upload() {
    let fake = FakeS3::start(Parts::Stall).await;
    let s = TestServer::start_with(|c| fake_config(c, &fake)).await;
    big_table(&s).await;
    let db = db_name(&s.tenant_url);
    let id = post_backup(&s, json!({"client_name": CLIENT})).await;
    // Running, its first part stalled, pg_dump blocked on the pipe.
    wait_job(&s, id, 30, |j| {
        j["status"] == "running" && j["bytes_written"].as_i64().unwrap_or(0) > 0
    })
    .await;
    assert!(pg_dumps_of(&db) >= 1, "pg_dump should be running");
    let r = s
        .send(
            "POST",
            &format!("/admin/backups/jobs/{id}/cancel"),
            &H,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let started = Instant::now();
    let done = wait_job(&s, id, 15, terminal).await;
    assert_eq!(done["job"]["status"], "cancelled", "{done}");
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_eq!(pg_dumps_of(&db), 0, "a pg_dump was left behind");
    assert!(fake.aborted(), "{:?}", fake.seen.lock().unwrap());
    // Terminal: deletable now, not cancellable again.
    assert_eq!(
        s.send(
            "POST",
            &format!("/admin/backups/jobs/{id}/cancel"),
            &H,
            None
        )
        .await
        .status,
        400
    );
    assert_eq!(
        s.send("DELETE", &format!("/admin/backups/jobs/{id}"), &H, None)
            .await
            .status,
        200
    );
    s.stop().await;
    fake.task.abort();
}

#[tokio::test]
async fn a_timeout_fails_the_job() {
    let fake = FakeS3::start(Parts::Stall).await;
    let s = TestServer::start_with(|c| fake_config(c, &fake)).await;
    big_table(&s).await;
    let id = post_backup(&s, json!({"client_name": CLIENT, "timeout_seconds": 2})).await;
    let done = wait_job(&s, id, 20, terminal).await;
    assert_eq!(done["job"]["status"], "failed", "{done}");
    assert!(
        done["job"]["error_message"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{done}"
    );
    assert_eq!(pg_dumps_of(&db_name(&s.tenant_url)), 0);
    s.stop().await;
    fake.task.abort();
}

// ---- the real binary, killed mid-backup ----

fn athena_binary(s: &TestServer, fake: &FakeS3, port: u16) -> Child {
    athena_binary_with(s, &fake.endpoint(), port, &[])
}

fn athena_binary_with(s: &TestServer, s3: &str, port: u16, env: &[(&str, &str)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_athena"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PGBIN", std::env::var("PGBIN").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .env("DATABASE_URL", &s.catalog_url)
        .env("ATHENA_CLIENTS", format!("{CLIENT}={}", s.tenant_url))
        .env("ATHENA_KEY_12", ADMIN_KEY)
        .env("ATHENA_OUTBOUND_ALLOW", "127.0.0.1")
        .env("ATHENA_STORAGE_ALLOW_HTTP", "1")
        .env("S3_ENDPOINT", s3)
        .env("S3_ACCESS_KEY_ID", "ak")
        .env("S3_SECRET_ACCESS_KEY", "sk")
        .env("ATHENA_BACKUP_S3_BUCKET", "fake-bucket")
        .env("PORT", port.to_string())
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn kill_9_mid_backup_leaves_a_job_another_replica_fails() {
    let fake = FakeS3::start(Parts::Stall).await;
    // This replica runs no jobs until the other one is killed.
    let s = TestServer::start_with(|c| {
        fake_config(c, &fake);
        c.backups.workers = 0;
    })
    .await;
    big_table(&s).await;
    let port = common::free_port();
    let mut child = athena_binary(&s, &fake, port);
    wait_ready(port, &mut child).await;
    // Queued through this replica; the binary's worker claims it.
    let id = post_backup(&s, json!({"client_name": CLIENT})).await;
    wait_job(&s, id, 30, |j| {
        j["status"] == "running" && j["bytes_written"].as_i64().unwrap_or(0) > 0
    })
    .await;
    let status = Command::new("kill")
        .arg("-KILL")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let _ = child.wait();
    // Another replica takes the stale lease over and fails the job.
    let r = s
        .replica_with(|c| {
            c.backups.workers = 1;
            c.backups.stale_after = Duration::from_secs(3);
        })
        .await;
    let done = wait_job(&s, id, 30, terminal).await;
    assert_eq!(done["job"]["status"], "failed", "{done}");
    assert!(
        done["job"]["error_message"]
            .as_str()
            .unwrap()
            .contains("stopped"),
        "{done}"
    );
    assert!(fake.aborted(), "{:?}", fake.seen.lock().unwrap());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(pg_dumps_of(&db_name(&s.tenant_url)), 0);
    r.stop().await;
    s.stop().await;
    fake.task.abort();
}

// ---- schedules ----

#[tokio::test]
async fn two_replicas_queue_a_schedule_slot_once() {
    let setup = |c: &mut athena::config::Config| {
        tweak(c, "unused-bucket");
        c.backups.workers = 0;
        c.backups.schedule_tick = Duration::from_millis(200);
    };
    let s = TestServer::start_with(setup).await;
    let r2 = s.replica_with(setup).await;
    // Bad bodies.
    for body in [
        json!({"frequency": "daily"}),
        json!({"client_name": CLIENT, "frequency": "yearly"}),
        json!({"client_name": CLIENT, "frequency": "daily", "time_of_day": "25:00"}),
        json!({"client_name": CLIENT, "frequency": "weekly", "day_of_week": 9}),
        json!({"client_name": "nobody", "frequency": "daily"}),
        json!({"client_name": CLIENT, "frequency": "daily", "cron": "* * * * *"}),
    ] {
        let r = s
            .send("POST", "/admin/backups/schedules", &H, Some(body.clone()))
            .await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
    }
    // Due this very minute (not in the last seconds of it).
    let mut now = chrono::Utc::now();
    if chrono::Timelike::second(&now) >= 50 {
        tokio::time::sleep(Duration::from_secs(11)).await;
        now = chrono::Utc::now();
    }
    let hhmm = now.format("%H:%M").to_string();
    let r = s
        .send(
            "POST",
            "/admin/backups/schedules",
            &H,
            Some(json!({"client_name": CLIENT, "frequency": "daily", "time_of_day": hhmm, "label": "nightly", "execution_daemon_id": "any"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let schedule = r.json()["data"]["schedule"].clone();
    let sid = schedule["id"].as_i64().unwrap();
    assert_eq!(schedule["time_of_day"], hhmm.as_str());
    // Both schedulers tick several times.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let c = psql(&s.catalog_url).await;
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM athena_backup_jobs WHERE schedule_id = $1",
            &[&sid],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1, "one job per slot");
    let r = s
        .send("GET", "/admin/backups/jobs?status=pending", &H, None)
        .await;
    let jobs = r.json()["data"]["jobs"].clone();
    assert_eq!(jobs[0]["schedule_id"], sid, "{jobs}");
    assert_eq!(jobs[0]["label"], "nightly");
    // PATCH, list, DELETE.
    let r = s
        .send(
            "PATCH",
            &format!("/admin/backups/schedules/{sid}"),
            &H,
            Some(json!({"enabled": false, "frequency": "weekly", "day_of_week": 3})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.send("GET", "/admin/backups/schedules", &H, None).await;
    let listed = r.json()["data"]["schedules"][0].clone();
    assert_eq!(
        (
            listed["enabled"].clone(),
            listed["frequency"].clone(),
            listed["day_of_week"].clone()
        ),
        (json!(false), json!("weekly"), json!(3))
    );
    assert_eq!(
        s.send(
            "PATCH",
            "/admin/backups/schedules/999999",
            &H,
            Some(json!({"enabled": true}))
        )
        .await
        .status,
        404
    );
    assert_eq!(
        s.send(
            "DELETE",
            &format!("/admin/backups/schedules/{sid}"),
            &H,
            None
        )
        .await
        .status,
        200
    );
    assert_eq!(
        s.send(
            "DELETE",
            &format!("/admin/backups/schedules/{sid}"),
            &H,
            None
        )
        .await
        .status,
        404
    );
    // Both replicas' daemons are in the registry.
    let r = s.send("GET", "/admin/daemons", &H, None).await;
    let schedulers = r.json()["data"]["daemons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == "backup_scheduler" && d["status"] == "alive")
        .count();
    assert_eq!(schedulers, 2);
    r2.stop().await;
    s.stop().await;
}

// ---- a real SeaweedFS of the test's own, stopped mid-upload ----

/// The `weed` binary: `WEED`, else the one `scripts/dev-services up`
/// installs in this checkout (`.dev/venv/bin/weed`), else `weed` on `PATH`.
fn weed_binary() -> std::path::PathBuf {
    if let Some(w) = std::env::var_os("WEED").filter(|w| !w.is_empty()) {
        return w.into();
    }
    let dev = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".dev/venv/bin/weed");
    if dev.exists() {
        return dev;
    }
    "weed".into()
}

/// Five ports whose gRPC twins (+10000, SeaweedFS's rule) are free too.
fn weed_ports() -> [u16; 5] {
    let mut ports = [0u16; 5];
    let mut seed = uuid::Uuid::new_v4().as_u128();
    let mut i = 0;
    while i < 5 {
        let p = 20_000 + (seed % 25_000) as u16;
        seed = seed / 25_000 + 7919 * (i as u128 + 1);
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if !ports[..i].contains(&p) && free(p) && free(p + 10_000) {
            ports[i] = p;
            i += 1;
        }
        if seed == 0 {
            seed = uuid::Uuid::new_v4().as_u128();
        }
    }
    ports
}

/// A SeaweedFS (`weed mini`, as `scripts/dev-services` runs it) on ports
/// and a data directory of its own, anonymous S3 (no identities); killed
/// and its directory deleted on drop.
struct Weed {
    dir: std::path::PathBuf,
    ports: [u16; 5],
    child: Option<Child>,
}

impl Weed {
    async fn start() -> Weed {
        let dir = std::env::temp_dir().join(format!(
            "athena-it-weed-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        ));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::create_dir_all(dir.join("log")).unwrap();
        // One volume per collection (see scripts/dev-services).
        std::fs::write(
            dir.join("master.toml"),
            "[master.volume_growth]\ncopy_1 = 1\ncopy_2 = 2\ncopy_3 = 3\ncopy_other = 1\n",
        )
        .unwrap();
        let mut w = Weed {
            dir,
            ports: weed_ports(),
            child: None,
        };
        w.spawn();
        w.wait_up().await;
        w
    }

    /// Starts `weed` on this directory and these ports.
    fn spawn(&mut self) {
        use std::os::unix::process::CommandExt;
        let [s3, master, volume, filer, admin] = self.ports;
        let d = self.dir.display();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("weed.log"))
            .unwrap();
        let child = Command::new(weed_binary())
            .current_dir(&self.dir)
            .arg(format!("-logdir={d}/log"))
            .arg("mini")
            .arg(format!("-dir={d}/data"))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-master.telemetry=false",
            ])
            .args([
                "-webdav=false",
                "-admin.ui=false",
                "-master.volumeSizeLimitMB=64",
            ])
            .args(["-volume.max=0", "-s3.port.iceberg=0", "-s3.port.lance=0"])
            .args([
                format!("-master.port={master}"),
                format!("-master.port.grpc={}", master + 10_000),
                format!("-volume.port={volume}"),
                format!("-volume.port.grpc={}", volume + 10_000),
                format!("-filer.port={filer}"),
                format!("-filer.port.grpc={}", filer + 10_000),
                format!("-s3.port={s3}"),
                format!("-s3.port.grpc={}", s3 + 10_000),
                format!("-admin.port={admin}"),
                format!("-admin.port.grpc={}", admin + 10_000),
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "starting {} failed ({e}): run `scripts/dev-services up` or set WEED",
                    weed_binary().display()
                )
            });
        self.child = Some(child);
    }

    /// Until S3 answers (30 s at most).
    async fn wait_up(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(st)) = self.child.as_mut().unwrap().try_wait() {
                panic!("weed exited ({st}): see {}/weed.log", self.dir.display());
            }
            if let Ok(Ok(r)) = tokio::time::timeout(
                Duration::from_secs(2),
                raw("GET", &format!("{}/", self.endpoint())),
            )
            .await
            {
                if r.0 == 200 {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "weed never answered");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// SIGKILL to its process group.
    fn kill_9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", c.id())])
                .status();
            let _ = c.wait();
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports[0])
    }
}

impl Drop for Weed {
    fn drop(&mut self) {
        self.kill_9();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An unsigned request (the test store is anonymous): status and body.
async fn raw(method: &str, url: &str) -> Result<(u16, String), String> {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let res = client
        .request(
            http::Request::builder()
                .method(method)
                .uri(url)
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// ~75 MB of incompressible rows (random bytes): a dump of ~9 parts of
/// 8 MiB that takes several seconds.
async fn huge_table(s: &TestServer) {
    let r = "md5(random()::text)";
    s.tenant()
        .await
        .batch_execute(&format!(
            "CREATE TABLE bk_huge AS SELECT g, decode({r} || {r} || {r} || {r} || {r} || {r} || {r} || {r}, 'hex') AS r
               FROM generate_series(1, 500000) g"
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn seaweedfs_killed_mid_upload_fails_the_job_and_the_abort_is_retried_until_it_lands() {
    let mut weed = Weed::start().await;
    let bucket = "athena-it-outage";
    let made = raw("PUT", &format!("{}/{bucket}", weed.endpoint()))
        .await
        .unwrap();
    assert_eq!(made.0, 200, "{made:?}");
    let endpoint = weed.endpoint();
    let s = TestServer::start_with(|c| {
        tweak(c, bucket);
        c.s3 = Some(athena::config::S3Config {
            endpoint,
            region: "us-east-1".into(),
            access_key: "ak".into(),
            secret_key: "sk".into(),
        });
        c.backups.abort_retry_max = Duration::from_secs(2);
    })
    .await;
    huge_table(&s).await;
    let id = post_backup(&s, json!({"client_name": CLIENT})).await;
    // At least the first 8 MiB part is in the store: the dump's reader
    // goes past a part only once that part is uploaded.
    let running = wait_job(&s, id, 60, |j| {
        terminal(j) || j["bytes_written"].as_i64().unwrap_or(0) > (8 << 20)
    })
    .await;
    assert_eq!(running["job"]["status"], "running", "{running}");
    let c = psql(&s.catalog_url).await;
    let row = c
        .query_one(
            "SELECT s3_key, upload_id FROM athena_backup_jobs WHERE job_id = $1",
            &[&id],
        )
        .await
        .unwrap();
    let (key, upload): (String, String) = (row.get(0), row.get(1));
    let listed = raw(
        "GET",
        &format!("{}/{bucket}?uploads&prefix={key}", weed.endpoint()),
    )
    .await
    .unwrap();
    assert!(listed.1.contains(&upload), "the upload is open: {listed:?}");
    weed.kill_9();
    let killed = Instant::now();
    // Failed with a message, within a bounded time, never stuck running.
    let done = wait_job(&s, id, 30, terminal).await;
    assert_eq!(done["job"]["status"], "failed", "{done}");
    let msg = done["job"]["error_message"].as_str().unwrap_or_default();
    assert!(msg.contains("S3"), "{done}");
    assert!(killed.elapsed() < Duration::from_secs(30));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(pg_dumps_of(&db_name(&s.tenant_url)), 0, "pg_dump left");
    // The abort could not reach the store: it is kept to be retried.
    let pending: i64 = c
        .query_one(
            "SELECT count(*) FROM athena_backup_pending_aborts
              WHERE job_id = $1 AND upload_id = $2 AND s3_key = $3",
            &[&id, &upload, &key],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(pending, 1, "{done}");
    // The store comes back on the same data and ports: the upload it kept
    // is aborted by a retry.
    weed.spawn();
    weed.wait_up().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = raw(
            "GET",
            &format!("{}/{bucket}?uploads&prefix={key}", weed.endpoint()),
        )
        .await
        .unwrap();
        assert_eq!(listed.0, 200, "{listed:?}");
        assert!(
            listed.1.contains("ListMultipartUploadsResult"),
            "{listed:?}"
        );
        let left: i64 = c
            .query_one("SELECT count(*) FROM athena_backup_pending_aborts", &[])
            .await
            .unwrap()
            .get(0);
        if !listed.1.contains("<Upload>") && left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the upload was never aborted: {listed:?}, {left} pending"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // No object either, and the job's log says what happened.
    let head = raw("HEAD", &format!("{}/{bucket}/{key}", weed.endpoint()))
        .await
        .unwrap();
    assert_eq!(head.0, 404, "{head:?}");
    let logs = wait_job(&s, id, 5, terminal).await["logs"].to_string();
    assert!(logs.contains("aborted (retried)"), "{logs}");
    s.stop().await;
}

// ---- the daemon registry ----

/// `GET /admin/daemons` rows of the process `pid`, by kind: status list.
async fn daemons_of(s: &TestServer, pid: u32) -> Vec<Value> {
    let r = s.send("GET", "/admin/daemons", &H, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["data"]["daemons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["pid"] == pid)
        .cloned()
        .collect()
}

/// Every supervised loop of a replica, heartbeated centrally: the loops
/// of this (in-process) server and of a real second replica are listed with
/// their pid and host, alive; the replica killed, its rows turn stale while
/// this server's stay alive.
#[tokio::test]
async fn every_loop_of_every_replica_heartbeats_and_a_stopped_replica_turns_stale() {
    let s = TestServer::start_with(|c| {
        tweak(c, "unused-bucket");
        c.backups.heartbeat = Duration::from_secs(1);
    })
    .await;
    let port = common::free_port();
    let mut child = athena_binary_with(
        &s,
        "http://127.0.0.1:9",
        port,
        &[("ATHENA_DAEMON_HEARTBEAT_SECS", "1")],
    );
    wait_ready(port, &mut child).await;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    // The loops every server runs (more are listed when configured).
    let kinds = [
        "catalog_change_listener",
        "event_delivery_worker",
        "deferred_write_worker",
        "clone_worker",
        "backup_worker",
        "backup_scheduler",
        "daemon_heartbeat",
    ];
    let (me, other) = (std::process::id(), child.id());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (mine, theirs) = (daemons_of(&s, me).await, daemons_of(&s, other).await);
        let alive = |rows: &[Value], kind: &str| {
            rows.iter().any(|d| {
                d["kind"] == kind
                    && d["status"] == "alive"
                    && d["running"] == true
                    && d["host"] == host.as_str()
            })
        };
        if kinds.iter().all(|k| alive(&mine, k) && alive(&theirs, k)) {
            // One row per loop: ids distinct, the replica's own.
            let ids: std::collections::HashSet<&str> = theirs
                .iter()
                .map(|d| d["daemon_id"].as_str().unwrap())
                .collect();
            assert_eq!(ids.len(), theirs.len(), "{theirs:?}");
            assert!(
                ids.iter().all(|i| i.contains(&format!(":{other}:"))),
                "{ids:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every loop is alive: {mine:?} / {theirs:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let status = Command::new("kill")
        .args(["-KILL", &other.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let _ = child.wait();
    let killed = Instant::now();
    // Stale after 3 missed heartbeats; this server's loops stay alive.
    loop {
        let theirs = daemons_of(&s, other).await;
        assert!(!theirs.is_empty());
        if theirs.iter().all(|d| d["status"] == "stale") {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "a killed replica's loops still alive: {theirs:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mine = daemons_of(&s, me).await;
    assert!(mine.iter().all(|d| d["status"] == "alive"), "{mine:?}");
    s.stop().await;
}
