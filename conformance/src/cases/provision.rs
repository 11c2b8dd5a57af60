//! Provisioning (issue 21): the tenant schema bootstrap, local databases
//! (admin and management), dependencies, Docker instances and clone jobs.
//! Every case works on names of its own (`confprov_…`: the second run on
//! the same databases starts clean; `scripts/conformance-run` drops these
//! databases at the end) and reads its effect back through the API
//! (`/admin/provision/status`, `/admin/clients`, the instance) or the
//! cluster catalog (`pg_database`).
//!
//! Docker: `scripts/conformance-run` points the server's `DOCKER_HOST` at
//! a unix socket (`ATHENA_CONFORMANCE_DOCKER_SOCK`) where this process
//! serves a fake Engine API; its "postgres" containers publish the test
//! PostgreSQL's port, so a spun-up instance is provisioned and registered
//! for real. Clones: the run starts the server without clone workers
//! (`ATHENA_CLONE_WORKERS=0`), so queued jobs stay queued and cancel/retry
//! answer deterministically; the worker's phases are covered by
//! `tests/it/provision.rs`.

use super::{envelope, expect_eq, Case, Ctx};
use crate::http::Request;
use serde_json::{json, Value};

fn unique(prefix: &str) -> String {
    format!(
        "confprov_{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// The test PostgreSQL's port (from `--tenant-db-url`).
fn pg_port(ctx: &Ctx) -> Option<u16> {
    let url = ctx.tenant_db_url.as_deref()?;
    let cfg: tokio_postgres::Config = url.parse().ok()?;
    cfg.get_ports().first().copied()
}

fn status_req(ctx: &Ctx, client: &str) -> Request {
    ctx.request("get", "/admin/provision/status")
        .query("client_name", client)
}

fn provisioned(b: &Value) -> Result<(), String> {
    expect_eq("provisioned", &b["provisioned"], &json!(true))?;
    expect_eq("missing_tables", &b["missing_tables"], &json!([]))
}

fn db_exists(
    name: &str,
    want: bool,
) -> (String, impl Fn(&Value) -> Result<(), String> + Send + Sync) {
    (
        format!("SELECT datname FROM pg_database WHERE datname = '{name}'"),
        move |rows: &Value| {
            expect_eq(
                "rows in pg_database",
                rows.as_array().map_or(0, Vec::len),
                usize::from(want),
            )
        },
    )
}

fn client_listed(name: String, want: bool) -> impl Fn(&Value) -> Result<(), String> + Send + Sync {
    move |b| {
        let listed = b["clients"]
            .as_array()
            .ok_or("no clients")?
            .iter()
            .any(|c| c["client_name"] == name.as_str());
        expect_eq("client in /admin/clients", listed, want)
    }
}

fn local_db(ctx: &Ctx, name: &str, register: bool) -> Request {
    ctx.request("post", "/admin/provision/local/databases")
        .json(json!({
            "client_name": ctx.client, "database_name": name,
            "provision_schema": register, "register_catalog": register, "register_runtime": register,
        }))
}

fn bound_key(ctx: &Ctx) -> Request {
    ctx.request("post", "/admin/api-keys").json(json!({
        "name": "conf-provision",
        "rights": ["management.provision.write"],
        "client_name": ctx.client,
    }))
}

fn m(ctx: &Ctx, method: &str, path: &str) -> Request {
    Request::new(method, path)
        .header("X-Athena-Client", &ctx.client)
        .header("apikey", "{{0.api_key}}")
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    let mut out = vec![
        Case::new(
            "post_admin_provision",
            "the client's database gets the tenant schema; status shows every table",
            ctx.request("post", "/admin/provision")
                .json(json!({"client_name": ctx.client})),
            200,
        )
        .check_json(|b| {
            if !b["statements_executed"].is_i64() || !b["tables"].is_array() {
                return Err(format!("no statements_executed/tables: {b}"));
            }
            Ok(())
        })
        .then_json(status_req(ctx, &ctx.client), 200, provisioned)
        // A rerun executes nothing.
        .then_json(
            ctx.request("post", "/admin/provision")
                .json(json!({"client_name": ctx.client})),
            200,
            |b| expect_eq("statements_executed", &b["statements_executed"], &json!(0)),
        ),
        Case::new(
            "post_admin_provision",
            "both uri and client_name: 400",
            ctx.request("post", "/admin/provision")
                .json(json!({"client_name": ctx.client, "uri": "postgres://u:p@example.com/db"})),
            400,
        )
        .check(envelope),
        Case::new(
            "get_admin_provision_status",
            "the status of a provisioned client",
            status_req(ctx, &ctx.client),
            200,
        )
        .after(
            ctx.request("post", "/admin/provision")
                .json(json!({"client_name": ctx.client})),
        )
        .check_json(|b| {
            provisioned(b)?;
            let present = b["present_tables"].as_array().ok_or("no present_tables")?;
            if !present.contains(&json!("athena.files")) {
                return Err(format!("athena.files not present: {b}"));
            }
            Ok(())
        }),
        Case::new(
            "get_admin_provision_status",
            "an unknown client is unavailable (503)",
            status_req(ctx, "confprov_nobody"),
            503,
        )
        .check(envelope),
        Case::new(
            "get_admin_provision_dependencies",
            "the tools of this host, truthfully",
            ctx.request("get", "/admin/provision/dependencies"),
            200,
        )
        .check_json(|b| {
            let missing = b["missing"].as_array().ok_or("no missing")?;
            // This host runs the conformance suite with psql (scripts/conformance-run).
            if missing.contains(&json!("psql")) {
                return Err(format!("psql reported missing: {b}"));
            }
            expect_eq(
                "can_attempt_install",
                &b["can_attempt_install"],
                &json!(false),
            )
        }),
        Case::new(
            "post_admin_provision_dependencies_install",
            "installs are off without ATHENA_ALLOW_DEPENDENCY_INSTALL: 503",
            ctx.request("post", "/admin/provision/dependencies/install")
                .json(json!({"install_docker": false})),
            503,
        )
        .check(envelope),
    ];

    // Local databases.
    let created = unique("local");
    let (sql, check) = db_exists(&created, true);
    out.push(
        Case::new(
            "post_admin_provision_local_databases",
            "CREATE DATABASE, provisioned, registered",
            local_db(ctx, &created, true),
            201,
        )
        .then_db(sql, check)
        .then_json(
            ctx.request("get", "/admin/clients"),
            200,
            client_listed(created.clone(), true),
        )
        .then_json(status_req(ctx, &created), 200, provisioned),
    );
    let twice = unique("twice");
    out.push(
        Case::new(
            "post_admin_provision_local_databases",
            "an existing database: 409",
            local_db(ctx, &twice, false),
            409,
        )
        .after(local_db(ctx, &twice, false))
        .check(envelope),
    );
    let bad = unique("bad");
    let (sql, check) = db_exists(&bad, false);
    out.push(
        Case::new(
            "post_admin_provision_local_databases",
            "an owner outside the identifier grammar: 400, nothing created",
            ctx.request("post", "/admin/provision/local/databases")
                .json(json!({"client_name": ctx.client, "database_name": bad, "owner": "x\"; DROP ROLE postgres; --"})),
            400,
        )
        .check(envelope)
        .then_db(sql, check),
    );
    let listed = unique("listed");
    out.push(
        Case::new(
            "get_admin_provision_local_databases",
            "pg_database and the Athena-managed databases of the server",
            ctx.request("get", "/admin/provision/local/databases")
                .query("client_name", &ctx.client),
            200,
        )
        .after(local_db(ctx, &listed, true))
        .check_json(move |b| {
            let all = b["all_databases"].as_array().ok_or("no all_databases")?;
            if !all.contains(&json!(listed)) {
                return Err(format!("{listed} not in all_databases"));
            }
            let managed = b["athena_managed_databases"]
                .as_array()
                .ok_or("no athena_managed_databases")?;
            if !managed
                .iter()
                .any(|m| m["database_name"] == listed.as_str())
            {
                return Err(format!("{listed} not Athena-managed"));
            }
            Ok(())
        }),
    );
    let mgmt = unique("mgmt");
    let (sql, check) = db_exists(&mgmt, true);
    out.push(
        Case::new(
            "post_management_provision_local_databases",
            "a bound key creates a database on its own client's server",
            m(ctx, "post", "/management/provision/local/databases")
                .json(json!({"database_name": mgmt})),
            201,
        )
        .after(bound_key(ctx))
        .rights(&["management.provision.write"])
        .check_json({
            let client = ctx.client.clone();
            move |b| expect_eq("client_name", &b["client_name"], &json!(client))
        })
        .then_db(sql, check),
    );
    let refused = unique("refused");
    let (sql, check) = db_exists(&refused, false);
    out.push(
        Case::new(
            "post_management_provision_local_databases",
            "the admin key is not a bound key: 403, nothing created",
            ctx.request("post", "/management/provision/local/databases")
                .json(json!({"database_name": refused})),
            403,
        )
        .check(envelope)
        .then_db(sql, check),
    );
    let mlisted = unique("mlisted");
    out.push(
        Case::new(
            "get_management_provision_local_databases",
            "a bound key lists its own server's databases",
            m(ctx, "get", "/management/provision/local/databases"),
            200,
        )
        .after(bound_key(ctx))
        .after(local_db(ctx, &mlisted, false))
        .rights(&["management.provision.write"])
        .check_json(move |b| {
            let all = b["all_databases"].as_array().ok_or("no all_databases")?;
            expect_eq("listed", all.contains(&json!(mlisted)), true)
        }),
    );

    // The local pipeline.
    let piped = unique("piped");
    let (sql, check) = db_exists(&piped, true);
    out.push(
        Case::new(
            "post_admin_provision_local_pipeline",
            "local_database mode: created, provisioned, registered as one job",
            ctx.request("post", "/admin/provision/local/pipeline")
                .json(json!({
                    "client_name": piped, "mode": "local_database",
                    "options": {"server_client": ctx.client},
                })),
            200,
        )
        .check_json(|b| {
            expect_eq("status", &b["status"], &json!("completed"))?;
            expect_eq("steps", b["steps"].as_array().map_or(0, Vec::len), 3)
        })
        .then_db(sql, check)
        .then_json(status_req(ctx, &piped), 200, provisioned),
    );
    out.push(
        Case::new(
            "post_admin_provision_local_pipeline",
            "an unknown mode: 400",
            ctx.request("post", "/admin/provision/local/pipeline")
                .json(json!({"client_name": unique("x"), "mode": "ftp"})),
            400,
        )
        .check(envelope),
    );

    out.extend(clone_cases(ctx));
    if let (Some(port), Some(_)) = (pg_port(ctx), fake_docker()) {
        out.extend(instance_cases(ctx, port));
    }
    out
}

fn clone_body(ctx: &Ctx) -> Value {
    json!({
        "source": {"source_uri": "postgres://conf:conf-secret-pw@127.0.0.1:1/src"},
        "target": {
            "mode": "reuse_managed_instance",
            "existing_client_name": ctx.client,
            "database_name": unique("clone"),
            "target_client_name": unique("cloned"),
        },
    })
}

fn clone_path(suffix: &str) -> String {
    format!("/admin/provision/clones/{{{{0.summary.job_id}}}}{suffix}")
}

fn no_secret(b: &Value) -> Result<(), String> {
    if b.to_string().contains("conf-secret-pw") {
        return Err("the source password came back".into());
    }
    Ok(())
}

fn clone_cases(ctx: &Ctx) -> Vec<Case> {
    let create = || {
        ctx.request("post", "/admin/provision/clones")
            .json(clone_body(ctx))
    };
    vec![
        Case::new(
            "post_admin_provision_clones",
            "a clone job is queued; the source is shown redacted",
            create(),
            201,
        )
        .check_json(|b| {
            no_secret(b)?;
            expect_eq("status", &b["summary"]["status"], &json!("queued"))
        })
        .then_json(
            ctx.request("get", "/admin/provision/clones/{{r.summary.job_id}}"),
            200,
            |b| {
                no_secret(b)?;
                expect_eq(
                    "events",
                    b["events"].as_array().map_or(0, Vec::len) >= 1,
                    true,
                )
            },
        ),
        Case::new(
            "post_admin_provision_clones",
            "a source URI without a password: 400",
            ctx.request("post", "/admin/provision/clones").json(json!({
                "source": {"source_uri": "postgres://conf@127.0.0.1:1/src"},
                "target": clone_body(ctx)["target"].clone(),
            })),
            400,
        )
        .check(envelope),
        Case::new(
            "get_admin_provision_clones",
            "the job list holds a new job",
            ctx.request("get", "/admin/provision/clones"),
            200,
        )
        .after(create())
        .check_json(|b| {
            let jobs = b["jobs"].as_array().ok_or("no jobs")?;
            expect_eq("jobs listed", !jobs.is_empty(), true)
        }),
        Case::new(
            "get_admin_provision_clones_by_job_id",
            "one job with its events",
            ctx.request("get", &clone_path("")),
            200,
        )
        .after(create())
        .check_json(|b| {
            no_secret(b)?;
            expect_eq(
                "events[0].kind",
                &b["events"][0]["kind"],
                &json!("job_queued"),
            )
        }),
        Case::new(
            "get_admin_provision_clones_by_job_id",
            "an unknown job: 404",
            ctx.request(
                "get",
                "/admin/provision/clones/00000000-0000-4000-8000-000000000000",
            ),
            404,
        )
        .check(envelope),
        Case::new(
            "post_admin_provision_clones_by_job_id_cancel",
            "a queued job is cancelled at once",
            ctx.request("post", &clone_path("/cancel")),
            200,
        )
        .after(create())
        .check_json(|b| expect_eq("status", &b["summary"]["status"], &json!("cancelled")))
        .then_json(ctx.request("get", &clone_path("")), 200, |b| {
            expect_eq(
                "status",
                &b["job"]["summary"]["status"],
                &json!("cancelled"),
            )
        })
        // Terminal now.
        .then_status(ctx.request("post", &clone_path("/cancel")), 409),
        Case::new(
            "post_admin_provision_clones_by_job_id_retry",
            "retry only from failed_*: a queued job is 409",
            ctx.request("post", &clone_path("/retry")),
            409,
        )
        .after(create())
        .check(envelope)
        .then_json(ctx.request("get", &clone_path("")), 200, |b| {
            expect_eq("status", &b["job"]["summary"]["status"], &json!("queued"))
        }),
    ]
}

fn instance_cases(ctx: &Ctx, pg_port: u16) -> Vec<Case> {
    // Setup: the container's database (step 0), then the instance (step 1).
    let spin = |container: &str, db: &str, client: &str| {
        ctx.request("post", "/admin/provision/instances")
            .json(json!({
                "client_name": client, "container_name": container, "db_name": db,
                "host_port": pg_port, "startup_timeout_secs": 10,
            }))
    };
    let inst = |suffix: &str, container: &str| {
        ctx.request(
            "post",
            &format!("/admin/provision/instances/{container}{suffix}"),
        )
    };
    let mut out = Vec::new();
    let (db, client, container) = (unique("inst"), unique("inst"), unique("c"));
    out.push(
        Case::new(
            "post_admin_provision_instances",
            "a labelled container is started, provisioned and registered",
            spin(&container, &db, &client),
            200,
        )
        .after(local_db(ctx, &db, false))
        .check_json(|b| {
            expect_eq("registered_catalog", &b["registered_catalog"], &json!(true))?;
            expect_eq("registered_runtime", &b["registered_runtime"], &json!(true))
        })
        .then_json(status_req(ctx, &client), 200, provisioned)
        .then_json(
            ctx.request("get", "/admin/clients"),
            200,
            client_listed(client.clone(), true),
        )
        // The container exists now: 409 without reuse_existing.
        .then_status(spin(&container, &db, &unique("again")), 409),
    );
    let (db, client, container) = (unique("inst"), unique("inst"), unique("c"));
    let name = container.clone();
    out.push(
        Case::new(
            "get_admin_provision_instances",
            "the managed containers and the runtime status",
            ctx.request("get", "/admin/provision/instances"),
            200,
        )
        .after(local_db(ctx, &db, false))
        .after(spin(&container, &db, &client))
        .check_json(move |b| {
            expect_eq(
                "instance_runtime_available",
                &b["instance_runtime_available"],
                &json!(true),
            )?;
            let found = b["instances"]
                .as_array()
                .ok_or("no instances")?
                .iter()
                .any(|i| i["container_name"] == name.as_str());
            expect_eq("listed", found, true)
        }),
    );
    let (db, client, container) = (unique("inst"), unique("inst"), unique("c"));
    out.push(
        Case::new(
            "get_admin_provision_instances_by_container_name",
            "one managed container",
            ctx.request("get", &format!("/admin/provision/instances/{container}")),
            200,
        )
        .after(local_db(ctx, &db, false))
        .after(spin(&container, &db, &client))
        .check_json(move |b| expect_eq("host_port", &b["host_port"], &json!(pg_port))),
    );
    out.push(
        Case::new(
            "get_admin_provision_instances_by_container_name",
            "an unknown container: 404",
            ctx.request(
                "get",
                &format!("/admin/provision/instances/{}", unique("none")),
            ),
            404,
        )
        .check(envelope),
    );
    let (db, client, container) = (unique("inst"), unique("inst"), unique("c"));
    out.push(
        Case::new(
            "post_admin_provision_instances_by_container_name_stop",
            "stopped; the instance shows it",
            inst("/stop", &container).json(json!({})),
            200,
        )
        .after(local_db(ctx, &db, false))
        .after(spin(&container, &db, &client))
        .then_json(
            ctx.request("get", &format!("/admin/provision/instances/{container}")),
            200,
            |b| expect_eq("running", &b["running"], &json!(false)),
        ),
    );
    let (db, client, container) = (unique("inst"), unique("inst"), unique("c"));
    out.push(
        Case::new(
            "post_admin_provision_instances_by_container_name_start",
            "started again and the runtime reconnected",
            inst("/start", &container).json(json!({"sync_runtime": true})),
            200,
        )
        .after(local_db(ctx, &db, false))
        .after(spin(&container, &db, &client))
        .after(inst("/stop", &container).json(json!({})))
        .check_json(|b| expect_eq("runtime_synced", &b["runtime_synced"], &json!(true)))
        .then_json(
            ctx.request("get", &format!("/admin/provision/instances/{container}")),
            200,
            |b| expect_eq("running", &b["running"], &json!(true)),
        ),
    );
    let (db, client, container) = (unique("inst"), unique("inst"), unique("c"));
    out.push(
        Case::new(
            "post_admin_provision_instances_by_container_name_bindings",
            "the public route is stored with the instance",
            inst("/bindings", &container)
                .json(json!({"route_key": "conf_route", "public_host": "db.conformance.test", "public_port": 15432})),
            200,
        )
        .after(local_db(ctx, &db, false))
        .after(spin(&container, &db, &client))
        .then_json(
            ctx.request("get", &format!("/admin/provision/instances/{container}")),
            200,
            |b| expect_eq("bindings[0].route_key", &b["bindings"][0]["route_key"], &json!("conf_route")),
        ),
    );
    let (db, client, container) = (unique("inst"), unique("inst"), unique("c"));
    out.push(
        Case::new(
            "delete_admin_provision_instances_by_container_name",
            "the container and its client are removed",
            ctx.request("delete", &format!("/admin/provision/instances/{container}"))
                .json(json!({"client_name": client})),
            200,
        )
        .after(local_db(ctx, &db, false))
        .after(spin(&container, &db, &client))
        .then_status(
            ctx.request("get", &format!("/admin/provision/instances/{container}")),
            404,
        )
        .then_json(
            ctx.request("get", "/admin/clients"),
            200,
            client_listed(client.clone(), false),
        ),
    );
    out
}

/// Serves the fake Docker Engine API on `ATHENA_CONFORMANCE_DOCKER_SOCK`
/// (once per process, inside the runtime).
fn fake_docker() -> Option<()> {
    use std::sync::{Arc, Mutex, OnceLock};
    static STARTED: OnceLock<Option<()>> = OnceLock::new();
    *STARTED.get_or_init(|| {
        let path = std::env::var("ATHENA_CONFORMANCE_DOCKER_SOCK").ok()?;
        let handle = tokio::runtime::Handle::try_current().ok()?;
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).ok()?;
        listener.set_nonblocking(true).ok()?;
        let _guard = handle.enter();
        let listener = tokio::net::UnixListener::from_std(listener).ok()?;
        let state: Arc<Mutex<std::collections::BTreeMap<String, Value>>> = Arc::default();
        handle.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let state = state.clone();
                            async move {
                                use http_body_util::BodyExt;
                                let method = req.method().to_string();
                                let uri = req.uri().clone();
                                let body = req
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|c| c.to_bytes())
                                    .unwrap_or_default();
                                let (status, out) = engine(&state, &method, &uri, &body);
                                Ok::<_, std::convert::Infallible>(
                                    hyper::Response::builder()
                                        .status(status)
                                        .header("content-type", "application/json")
                                        .body(http_body_util::Full::new(bytes::Bytes::from(
                                            if out.is_null() {
                                                String::new()
                                            } else {
                                                out.to_string()
                                            },
                                        )))
                                        .expect("response"),
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
        Some(())
    })
}

/// The fake Engine: containers in memory.
fn engine(
    state: &std::sync::Mutex<std::collections::BTreeMap<String, Value>>,
    method: &str,
    uri: &hyper::Uri,
    body: &[u8],
) -> (u16, Value) {
    let mut containers = state.lock().unwrap_or_else(|e| e.into_inner());
    let no_such = (404, json!({"message": "No such container"}));
    let parts: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        ("GET", ["_ping"]) => (200, Value::Null),
        ("GET", ["containers", "json"]) => (
            200,
            Value::Array(
                containers
                    .iter()
                    .map(|(name, c)| {
                        json!({
                            "Id": c["Id"], "Names": [format!("/{name}")], "Image": c["Config"]["Image"],
                            "State": if c["State"]["Running"] == true { "running" } else { "exited" },
                            "Status": c["State"]["Status"], "Labels": c["Config"]["Labels"],
                            "Ports": [{"PrivatePort": 5432, "PublicPort": c["HostConfig"]["PortBindings"]["5432/tcp"][0]["HostPort"].as_str().and_then(|p| p.parse::<u16>().ok()), "Type": "tcp"}],
                        })
                    })
                    .collect(),
            ),
        ),
        ("POST", ["containers", "create"]) => {
            let name = uri
                .query()
                .and_then(|q| q.strip_prefix("name="))
                .unwrap_or_default()
                .to_string();
            if containers.contains_key(&name) {
                return (409, json!({"message": "name in use"}));
            }
            let spec: Value = serde_json::from_slice(body).unwrap_or_default();
            let id = uuid::Uuid::new_v4().simple().to_string();
            containers.insert(
                name,
                json!({
                    "Id": id,
                    "Config": {"Image": spec["Image"], "Labels": spec["Labels"]},
                    "HostConfig": spec["HostConfig"],
                    "NetworkSettings": {"Ports": {}},
                    "State": {"Running": false, "Status": "created"},
                }),
            );
            (201, json!({"Id": id}))
        }
        ("GET", ["containers", name, "json"]) => match containers.get(*name) {
            Some(c) => (200, c.clone()),
            None => no_such,
        },
        ("POST", ["containers", name, action @ ("start" | "stop")]) => match containers.get_mut(*name) {
            Some(c) => {
                let running = *action == "start";
                c["State"] = json!({"Running": running, "Status": if running { "running" } else { "exited" }});
                (204, Value::Null)
            }
            None => no_such,
        },
        ("DELETE", ["containers", name]) => match containers.remove(*name) {
            Some(_) => (204, Value::Null),
            None => no_such,
        },
        _ => (404, json!({"message": "page not found"})),
    }
}
