//! Issue 21, integrations: hosted providers (admin and management),
//! Typesense, Supabase SSL enforcement and `/health/cluster`, against the
//! local fakes of `crate::integrations_fake`, served by this process on
//! `ATHENA_CONFORMANCE_INTEGRATIONS_PORT` (exported and allow-listed by
//! `scripts/conformance-run`, which also points the server's
//! `ATHENA_TYPESENSE_SYNC_JOBS`, `ATHENA_SUPABASE_API_URL` and
//! `ATHENA_CLUSTER_MIRRORS` at it). Without the port (or the tenant
//! database URL the providers hand out) these cases are left to the
//! generic pass.
//!
//! Effects are read back: registered clients through `/admin/clients` and
//! `/gateway/fetch` on the new client, Typesense documents and Supabase
//! settings from the fake's state, mirrors from the report.

use super::{envelope, expect_eq, Case, Ctx};
use crate::http::Request;
use crate::integrations_fake::{self as fake, Fake};
use serde_json::{json, Value};

/// The Typesense jobs `scripts/conformance-run` configures (all over the
/// `conformance_items` fixture): 1 for `run`, 2 for `search`, 3 for
/// `kill` of a finished run, 4 for `collections/list`, 5 never runs (the
/// inactive `cancel`) (one job per case:
/// cases of a phase run concurrently and a job runs once at a time).
pub const JOBS: [(i64, &str); 5] = [
    (1, "conf_items_run"),
    (2, "conf_items_search"),
    (3, "conf_items_kill"),
    (4, "conf_items_list"),
    (5, "conf_items_idle"),
];

fn unique(prefix: &str) -> String {
    format!(
        "conf_{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// The fake (started once, inside the runtime): `None` when
/// `ATHENA_CONFORMANCE_INTEGRATIONS_PORT` is unset, `Some(Err(why))` when
/// it is set but the fake or the tenant URL is not usable (then a failing
/// case is emitted: the run must not pass without these cases).
fn started(ctx: &Ctx) -> Option<Result<Fake, String>> {
    use std::sync::OnceLock;
    static STARTED: OnceLock<Option<Result<Fake, String>>> = OnceLock::new();
    STARTED
        .get_or_init(|| {
            let port = std::env::var("ATHENA_CONFORMANCE_INTEGRATIONS_PORT").ok()?;
            Some((|| {
                let port: u16 = port.parse().map_err(|_| {
                    format!("ATHENA_CONFORMANCE_INTEGRATIONS_PORT={port:?} is not a port")
                })?;
                let tenant = ctx
                    .tenant_db_url
                    .clone()
                    .ok_or("no tenant database URL for the providers to hand out")?;
                let handle = tokio::runtime::Handle::try_current()
                    .map_err(|_| "no tokio runtime to serve the fakes".to_string())?;
                let listener = std::net::TcpListener::bind(("127.0.0.1", port))
                    .map_err(|e| format!("binding 127.0.0.1:{port} for the fakes: {e}"))?;
                listener.set_nonblocking(true).map_err(|e| e.to_string())?;
                let _guard = handle.enter();
                let listener =
                    tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
                Ok(Fake::serve(listener, with_password(&tenant)))
            })())
        })
        .clone()
}

/// The providers hand out the conformance tenant's URI with a password
/// (§1 wants one; the local PostgreSQL trusts the login).
fn with_password(url: &str) -> String {
    match url
        .split_once("://")
        .and_then(|(s, r)| Some((s, r.split_once('@')?)))
    {
        Some((scheme, (user, host))) => {
            let user = user.split(':').next().unwrap_or(user);
            format!("{scheme}://{user}:conformance-pw@{host}")
        }
        None => url.to_string(),
    }
}

fn success(b: &Value) -> Result<(), String> {
    expect_eq("status", &b["status"], &json!("success"))?;
    let text = b.to_string();
    for secret in [
        "conformance-pw",
        fake::NEON_KEY,
        fake::RAILWAY_TOKEN,
        fake::RENDER_KEY,
        fake::TS_KEY,
        fake::SUPABASE_TOKEN,
    ] {
        if text.contains(secret) {
            return Err("a credential came back".into());
        }
    }
    Ok(())
}

/// The provider answer for `client`, registered and provisioned.
fn provisioned(client: String) -> impl Fn(&Value) -> Result<(), String> + Send + Sync + 'static {
    move |b| {
        success(b)?;
        expect_eq("client_name", &b["client_name"], &json!(client))?;
        expect_eq("provisioned", &b["provisioned"], &json!(true))?;
        expect_eq("registered_catalog", &b["registered_catalog"], &json!(true))?;
        expect_eq("registered_runtime", &b["registered_runtime"], &json!(true))
    }
}

/// The fixture rows, read through the new client.
fn fetch_through(client: &str) -> Request {
    Request::new("post", "/gateway/fetch")
        .header("X-Athena-Client", client)
        .json(json!({"table_name": super::TABLE}))
}

fn three_rows(b: &Value) -> Result<(), String> {
    let n = b["data"].as_array().ok_or("no data")?.len();
    expect_eq("fixture rows through the provisioned client", n, 3)
}

fn listed(client: String) -> impl Fn(&Value) -> Result<(), String> + Send + Sync + 'static {
    move |b| {
        let found = b["clients"]
            .as_array()
            .ok_or("no clients")?
            .iter()
            .any(|c| c["client_name"] == client.as_str());
        expect_eq("the client is in the catalog", found, true)
    }
}

fn provider_cases(ctx: &Ctx, f: &Fake) -> Vec<Case> {
    let mut out = Vec::new();
    let bodies = [
        (
            "neon",
            json!({"api_key": fake::NEON_KEY, "api_base_url": f.base("/neon"), "project_id": "proj-conf"}),
        ),
        (
            "railway",
            json!({"api_key": fake::RAILWAY_TOKEN, "graphql_url": f.base("/railway/graphql"),
                   "project_id": "rp-conf", "service_name": "Postgres"}),
        ),
        (
            "render",
            json!({"api_key": fake::RENDER_KEY, "api_base_url": f.base("/render"), "service_id": "dpg-conf"}),
        ),
    ];
    for (provider, body) in bodies {
        let client = unique(provider);
        let mut admin_body = body.clone();
        admin_body["client_name"] = json!(client);
        let path = format!("/admin/provision/providers/{provider}");
        out.push(
            Case::new(
                &format!("post_admin_provision_providers_{provider}"),
                "the fake provider's database is provisioned, registered and serves reads",
                ctx.request("post", &path).json(admin_body.clone()),
                200,
            )
            .check_json(provisioned(client.clone()))
            .then_json(
                ctx.request("get", "/admin/clients"),
                200,
                listed(client.clone()),
            )
            .then_json(fetch_through(&client), 200, three_rows),
        );
        let refused_client = unique(&format!("{provider}_refused"));
        let mut refused = admin_body.clone();
        refused["api_key"] = json!("wrong-key");
        refused["client_name"] = json!(refused_client);
        out.push(
            Case::new(
                &format!("post_admin_provision_providers_{provider}"),
                "the provider refusing the key is a 400 and nothing is registered",
                ctx.request("post", &path).json(refused),
                400,
            )
            .check(envelope)
            .then_status(fetch_through(&refused_client), 404),
        );
        // Management: the caller's own client, by a key bound to it.
        let key = ctx.request("post", "/admin/api-keys").json(json!({
            "name": "conf-provision", "rights": ["management.provision.write"],
            "client_name": ctx.client,
        }));
        let m = |b: Value| {
            Request::new(
                "post",
                &format!("/management/provision/providers/{provider}"),
            )
            .header("X-Athena-Client", &ctx.client)
            .header("apikey", "{{0.api_key}}")
            .json(b)
        };
        out.push(
            Case::new(
                &format!("post_management_provision_providers_{provider}"),
                "a bound key provisions its own client; reads keep working",
                m(body.clone()),
                200,
            )
            .after(key.clone())
            .check_json(provisioned(ctx.client.clone()))
            .then_json(fetch_through(&ctx.client), 200, three_rows),
        );
        let mut other = body.clone();
        other["client_name"] = json!("someone_else");
        out.push(
            Case::new(
                &format!("post_management_provision_providers_{provider}"),
                "another client's name is refused",
                m(other),
                400,
            )
            .after(key)
            .check(envelope)
            .then_status(fetch_through("someone_else"), 404),
        );
    }
    out
}

fn typesense_cases(ctx: &Ctx, f: &Fake) -> Vec<Case> {
    let conn = json!({"base_url": f.base("/ts"), "api_key": fake::TS_KEY});
    let run = |job: i64| ctx.request("post", &format!("/typesense/sync-jobs/{job}/run"));
    let docs = |f: &Fake, c: &str| f.documents(c);
    let (f1, f2) = (f.clone(), f.clone());
    vec![
        Case::new(
            "post_typesense_backends_test",
            "a reachable backend",
            ctx.request("post", "/typesense/backends/test")
                .json(conn.clone()),
            200,
        )
        .check_json(|b| expect_eq("reachable", &b["reachable"], &json!(true))),
        Case::new(
            "post_typesense_backends_test",
            "a wrong key: still 200, not reachable, the error named",
            ctx.request("post", "/typesense/backends/test")
                .json(json!({"base_url": f.base("/ts"), "api_key": "wrong"})),
            200,
        )
        .check_json(|b| {
            expect_eq("reachable", &b["reachable"], &json!(false))?;
            expect_eq("error given", b["error"].is_string(), true)
        }),
        Case::new(
            "post_typesense_backends_test",
            "a loopback URL that is not allow-listed is refused",
            ctx.request("post", "/typesense/backends/test")
                .json(json!({"base_url": "http://127.0.0.1:1", "api_key": "k"})),
            400,
        )
        .check(envelope),
        Case::new(
            "post_typesense_sync_jobs_by_job_id_run",
            "the fixture rows are imported into the collection",
            run(1),
            200,
        )
        .check_json(move |b| {
            expect_eq("data.status", &b["data"]["status"], &json!("succeeded"))?;
            expect_eq("data.source_rows", &b["data"]["source_rows"], &json!(3))?;
            expect_eq(
                "data.imported_count",
                &b["data"]["imported_count"],
                &json!(3),
            )?;
            expect_eq("documents in the fake", docs(&f1, JOBS[0].1).len(), 3)
        }),
        Case::new(
            "post_typesense_sync_jobs_by_job_id_run",
            "an unknown job is a 404",
            run(987_654),
            404,
        )
        .check(envelope),
        Case::new(
            "post_typesense_collections_list",
            "the synced collection is listed with its documents",
            ctx.request("post", "/typesense/collections/list")
                .json(conn),
            200,
        )
        .after(run(4))
        .check_json(|b| {
            let found = b["collections"]
                .as_array()
                .ok_or("no collections")?
                .iter()
                .any(|c| c["name"] == JOBS[3].1 && c["num_documents"] == 3);
            expect_eq("the collection of job 4 with 3 documents", found, true)
        }),
        Case::new(
            "post_typesense_search",
            "after a sync, search finds the row",
            ctx.request("post", "/typesense/search")
                .json(json!({"job_id": JOBS[1].0, "q": "beta", "query_by": ["name"]})),
            200,
        )
        .after(run(2))
        .check_json(move |b| {
            expect_eq("found", &b["data"]["found"], &json!(1))?;
            expect_eq(
                "hit",
                &b["data"]["hits"][0]["document"]["name"],
                &json!("beta"),
            )?;
            expect_eq("the fake holds the rows", docs(&f2, JOBS[1].1).len(), 3)
        }),
        Case::new(
            "post_typesense_search",
            "an unknown job is a 404",
            ctx.request("post", "/typesense/search")
                .json(json!({"job_id": 987_654, "q": "x", "query_by": ["name"]})),
            404,
        )
        .check(envelope),
        Case::new(
            "post_typesense_search",
            "neither a job nor a source is a 400",
            ctx.request("post", "/typesense/search")
                .json(json!({"q": "x", "query_by": ["name"]})),
            400,
        )
        .check(envelope),
        Case::new(
            "post_typesense_sync_jobs_by_job_id_cancel",
            "a job that is not running cannot be cancelled",
            ctx.request(
                "post",
                &format!("/typesense/sync-jobs/{}/cancel", JOBS[4].0),
            ),
            400,
        )
        .check(envelope),
        Case::new(
            "post_typesense_sync_jobs_by_job_id_cancel",
            "an unknown job is a 404",
            ctx.request("post", "/typesense/sync-jobs/987654/cancel"),
            404,
        )
        .check(envelope),
        Case::new(
            "post_typesense_sync_runs_by_run_id_kill",
            "a finished run cannot be killed (and stays succeeded)",
            ctx.request("post", "/typesense/sync-runs/{{0.data.run_id}}/kill"),
            400,
        )
        .after(run(3))
        .check(envelope),
        Case::new(
            "post_typesense_sync_runs_by_run_id_kill",
            "an unknown run is a 404",
            ctx.request("post", "/typesense/sync-runs/987654321/kill"),
            404,
        )
        .check(envelope),
    ]
}

fn supabase_cases(ctx: &Ctx, f: &Fake) -> Vec<Case> {
    let project = format!("conf{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let f1 = f.clone();
    let p1 = project.clone();
    let path = "/api/v2/supabase/ssl_enforcement";
    vec![
        Case::new(
            "post_api_v2_supabase_ssl_enforcement",
            "enforcement is switched on at the (fake) Supabase API",
            ctx.request("post", path).json(json!({"enabled": true,
                "access_token": fake::SUPABASE_TOKEN, "project_ref": project})),
            200,
        )
        .check_json(move |b| {
            success(b)?;
            expect_eq(
                "currentConfig.database",
                &b["data"]["currentConfig"]["database"],
                &json!(true),
            )?;
            expect_eq("the fake's setting", f1.ssl(&p1), Some(true))
        }),
        Case::new(
            "post_api_v2_supabase_ssl_enforcement",
            "no access token is a 400",
            ctx.request("post", path)
                .json(json!({"enabled": true, "project_ref": "abc"})),
            400,
        )
        .check(envelope),
        Case::new(
            "post_api_v2_supabase_ssl_enforcement",
            "an upstream failure is the documented 500 supabase_api_error",
            ctx.request("post", path).json(json!({"enabled": false,
                "access_token": fake::SUPABASE_TOKEN, "project_ref": "broken"})),
            500,
        )
        .check_json(|b| expect_eq("code", &b["code"], &json!("supabase_api_error"))),
    ]
}

fn cluster_cases(f: &Fake) -> Vec<Case> {
    let mirror = f.base("/mirror");
    vec![Case::new(
        "get_health_cluster",
        "the fake mirror is online, the unreachable one offline",
        Request::new("get", "/health/cluster"),
        200,
    )
    .check_json(move |b| {
        let mirrors = b["mirrors"].as_array().ok_or("no mirrors")?;
        let find = |url: &str| mirrors.iter().find(|m| m["url"] == url).cloned();
        let up = find(&mirror).ok_or("the fake mirror is not reported")?;
        expect_eq("fake mirror status", &up["status"], &json!("online"))?;
        expect_eq("its version", &up["cargo_toml_version"], &json!("9.9.9"))?;
        let down = mirrors.iter().filter(|m| m["status"] == "offline").count();
        expect_eq("offline mirrors", down, 1)
    })]
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    let f = match started(ctx) {
        None => return Vec::new(),
        Some(Ok(f)) => f,
        Some(Err(why)) => {
            return vec![Case::new(
                "get_health_cluster",
                "the integrations fakes could not start although \
                 ATHENA_CONFORMANCE_INTEGRATIONS_PORT is set",
                Request::new("get", "/health/cluster"),
                200,
            )
            .check(move |_| Err(format!("integrations fakes: {why}")))]
        }
    };
    let mut out = provider_cases(ctx, &f);
    out.extend(typesense_cases(ctx, &f));
    out.extend(supabase_cases(ctx, &f));
    out.extend(cluster_cases(&f));
    out
}
