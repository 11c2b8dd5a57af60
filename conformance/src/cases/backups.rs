//! Families `admin_backups` and `GET /admin/daemons` (issue 18): backups of
//! the conformance client to the run's bucket (`ATHENA_BACKUP_S3_BUCKET`,
//! created and exported by `scripts/conformance-run`), jobs, restores,
//! schedules and the daemon registry; every effect read back through the
//! API. Backups are queued in the specific phase; the cases that need a
//! completed one (list, download, s3-open, restore, deletes) run in the
//! late phase and find it through `GET /admin/backups/jobs`
//! (`status=completed`, newest first): the download and restore read job
//! 0, the job delete job 1, the object delete job 2, so none takes
//! another's backup away. `scripts/conformance-run` makes (and awaits)
//! three completed backups before each run, so they exist whatever the
//! timing of the specific phase's own.

use super::{envelope, expect_eq, Case, Ctx};
use crate::http::Request;
use serde_json::{json, Value};

fn unique(prefix: &str) -> String {
    format!(
        "conf-{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

fn backup(ctx: &Ctx, label: &str) -> Request {
    ctx.request("post", "/admin/backups")
        .json(json!({ "client_name": ctx.client, "label": label }))
}

/// Completed backups of the conformance client, newest first (setup step 0).
fn completed(ctx: &Ctx) -> Request {
    ctx.request("get", "/admin/backups/jobs")
        .query("status", "completed")
        .query("job_type", "backup")
        .query("client_name", &ctx.client)
        .query("limit", "3")
}

fn schedule(ctx: &Ctx, label: &str) -> Request {
    ctx.request("post", "/admin/backups/schedules").json(json!({
        "client_name": ctx.client,
        "frequency": "weekly",
        "day_of_week": 1,
        "time_of_day": "03:30",
        "label": label,
        "enabled": false,
    }))
}

fn schedules(ctx: &Ctx) -> Request {
    ctx.request("get", "/admin/backups/schedules")
}

/// The listed schedule labelled `label`, if any.
fn labelled<'a>(b: &'a Value, label: &str) -> Option<&'a Value> {
    b["data"]["schedules"]
        .as_array()?
        .iter()
        .find(|s| s["label"] == label)
}

fn job_of(b: &Value) -> Result<&Value, String> {
    expect_eq("status", &b["status"], &json!("success"))?;
    let j = &b["data"]["job"];
    j["job_id"]
        .as_i64()
        .ok_or("data.job.job_id is not an integer")?;
    Ok(j)
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    let bucket = std::env::var("ATHENA_BACKUP_S3_BUCKET").unwrap_or_default();
    // A `..` key under the run's prefix (one encoded path segment).
    let prefix =
        std::env::var("ATHENA_BACKUP_S3_PREFIX").unwrap_or_else(|_| "athena-backups".into());
    let dotdot = format!("{prefix}/../x").replace('/', "%2F");
    let client = ctx.client.clone();
    let mut cases = Vec::new();

    // --- specific phase: configuration, queued jobs, schedules, daemons ---
    let b = bucket.clone();
    cases.push(
        Case::new(
            "get_admin_backups_config",
            "the configured bucket and prefix",
            ctx.request("get", "/admin/backups/config"),
            200,
        )
        .check_json(move |v| {
            expect_eq("data.bucket", &v["data"]["bucket"], &json!(b))?;
            v["data"]["prefix"]
                .as_str()
                .map(|_| ())
                .ok_or("no data.prefix".into())
        }),
    );
    let c = client.clone();
    cases.push(
        Case::new(
            "post_admin_backups",
            "queues a backup of the client (read back as a backup job)",
            backup(ctx, "conformance"),
            202,
        )
        .check_json(move |v| {
            expect_eq("data.client_name", &v["data"]["client_name"], &json!(c))?;
            v["data"]["job_id"]
                .as_i64()
                .map(|_| ())
                .ok_or("no data.job_id".into())
        })
        .then_json(
            ctx.request("get", "/admin/backups/jobs/{{r.data.job_id}}"),
            200,
            |v| {
                let j = job_of(v)?;
                expect_eq("job.job_type", &j["job_type"], &json!("backup"))?;
                expect_eq("job.label", &j["label"], &json!("conformance"))
            },
        ),
    );
    cases.push(
        Case::new(
            "post_admin_backups",
            "neither client_name nor pg_uri: 400",
            ctx.request("post", "/admin/backups")
                .json(json!({ "label": "x" })),
            400,
        )
        .check(envelope),
    );
    let c = client.clone();
    cases.push(
        Case::new(
            "get_admin_backups_jobs",
            "lists the backup jobs of the client, filtered",
            ctx.request("get", "/admin/backups/jobs")
                .query("client_name", &client)
                .query("job_type", "backup"),
            200,
        )
        .after(backup(ctx, "conformance-list"))
        .check_json(move |v| {
            let jobs = v["data"]["jobs"].as_array().ok_or("no data.jobs")?;
            if !jobs.iter().any(|j| j["label"] == "conformance-list") {
                return Err("the job queued by the setup is not listed".into());
            }
            for j in jobs {
                expect_eq("job.client_name", &j["client_name"], &json!(c))?;
                expect_eq("job.job_type", &j["job_type"], &json!("backup"))?;
            }
            Ok(())
        }),
    );
    cases.push(
        Case::new(
            "get_admin_backups_jobs_by_id",
            "a job with its logs",
            ctx.request("get", "/admin/backups/jobs/{{0.data.job_id}}"),
            200,
        )
        .after(backup(ctx, "conformance-get"))
        .check_json(|v| {
            let j = job_of(v)?;
            expect_eq("job.label", &j["label"], &json!("conformance-get"))?;
            let logs = v["data"]["logs"].as_array().ok_or("no data.logs")?;
            if logs.is_empty() {
                return Err("no log line".into());
            }
            Ok(())
        }),
    );
    cases.push(
        Case::new(
            "get_admin_backups_jobs_by_id",
            "unknown job: 404",
            ctx.request("get", "/admin/backups/jobs/987654321"),
            404,
        )
        .check(envelope),
    );
    cases.push(
        Case::new(
            "post_admin_backups_jobs_by_id_cancel",
            "cancels a pending or running job (the flag read back)",
            ctx.request("post", "/admin/backups/jobs/{{0.data.job_id}}/cancel"),
            200,
        )
        .after(backup(ctx, "conformance-cancel"))
        .then_json(
            ctx.request("get", "/admin/backups/jobs/{{0.data.job_id}}"),
            200,
            |v| {
                expect_eq(
                    "job.cancel_requested",
                    &job_of(v)?["cancel_requested"],
                    &json!(true),
                )
            },
        ),
    );
    let label = unique("sched-new");
    let l = label.clone();
    cases.push(
        Case::new(
            "post_admin_backups_schedules",
            "creates a schedule (listed after)",
            schedule(ctx, &label),
            200,
        )
        .check_json(|v| {
            v["data"]["schedule"]["id"]
                .as_i64()
                .map(|_| ())
                .ok_or("no data.schedule.id".into())
        })
        .then_json(schedules(ctx), 200, move |v| {
            let s = labelled(v, &l).ok_or("the schedule is not listed")?;
            expect_eq("frequency", &s["frequency"], &json!("weekly"))?;
            expect_eq("time_of_day", &s["time_of_day"], &json!("03:30"))
        }),
    );
    cases.push(
        Case::new(
            "post_admin_backups_schedules",
            "an unknown frequency: 400",
            ctx.request("post", "/admin/backups/schedules")
                .json(json!({ "client_name": client, "frequency": "yearly" })),
            400,
        )
        .check(envelope),
    );
    let label = unique("sched-list");
    let l = label.clone();
    cases.push(
        Case::new(
            "get_admin_backups_schedules",
            "lists schedules",
            schedules(ctx),
            200,
        )
        .after(schedule(ctx, &label))
        .check_json(move |v| {
            labelled(v, &l)
                .map(|_| ())
                .ok_or("the schedule is not listed".into())
        }),
    );
    let (label, renamed) = (unique("sched-patch"), unique("sched-patched"));
    let l = renamed.clone();
    cases.push(
        Case::new(
            "patch_admin_backups_schedules_by_id",
            "updates a schedule (read back)",
            ctx.request("patch", "/admin/backups/schedules/{{0.data.schedule.id}}")
                .json(json!({ "label": renamed, "frequency": "daily", "time_of_day": "04:15" })),
            200,
        )
        .after(schedule(ctx, &label))
        .then_json(schedules(ctx), 200, move |v| {
            let s = labelled(v, &l).ok_or("the renamed schedule is not listed")?;
            expect_eq("frequency", &s["frequency"], &json!("daily"))?;
            expect_eq("time_of_day", &s["time_of_day"], &json!("04:15"))?;
            expect_eq("enabled", &s["enabled"], &json!(false))
        }),
    );
    let label = unique("sched-del");
    let l = label.clone();
    cases.push(
        Case::new(
            "delete_admin_backups_schedules_by_id",
            "deletes a schedule (gone from the list)",
            ctx.request("delete", "/admin/backups/schedules/{{0.data.schedule.id}}"),
            200,
        )
        .after(schedule(ctx, &label))
        .then_json(schedules(ctx), 200, move |v| match labelled(v, &l) {
            Some(_) => Err("the deleted schedule is still listed".into()),
            None => Ok(()),
        })
        .then_status(
            ctx.request("delete", "/admin/backups/schedules/{{0.data.schedule.id}}"),
            404,
        ),
    );
    cases.push(
        Case::new(
            "get_admin_daemons",
            "the backup worker and scheduler of the server, alive",
            ctx.request("get", "/admin/daemons"),
            200,
        )
        .check_json(|v| {
            let daemons = v["data"]["daemons"].as_array().ok_or("no data.daemons")?;
            for kind in ["backup_worker", "backup_scheduler"] {
                if !daemons
                    .iter()
                    .any(|d| d["kind"] == kind && d["status"] == "alive")
                {
                    return Err(format!("no alive {kind}"));
                }
            }
            Ok(())
        }),
    );

    // --- late phase: completed backups ---
    let c = client.clone();
    cases.push(
        Case::new(
            "get_admin_backups",
            "completed backups of the client, paged by cursor",
            ctx.request("get", "/admin/backups")
                .query("client_name", &client)
                .query("limit", "1"),
            200,
        )
        .late()
        .check_json(move |v| {
            let list = v["data"]["backups"].as_array().ok_or("no data.backups")?;
            let b = list.first().ok_or("no completed backup")?;
            expect_eq("client_name", &b["client_name"], &json!(c))?;
            if b["size_bytes"].as_i64().unwrap_or(0) <= 0 {
                return Err("size_bytes is not positive".into());
            }
            v["data"]["next_cursor"]
                .as_str()
                .map(|_| ())
                .ok_or("no next_cursor".into())
        })
        .then_json(
            ctx.request("get", "/admin/backups")
                .query("client_name", &client)
                .query("limit", "1")
                .query("cursor", "{{r.data.next_cursor}}"),
            200,
            |v| {
                let list = v["data"]["backups"].as_array().ok_or("no data.backups")?;
                if list.is_empty() {
                    return Err("the second page is empty".into());
                }
                Ok(())
            },
        ),
    );
    cases.push(
        Case::new(
            "get_admin_backups",
            "a malformed cursor: 400",
            ctx.request("get", "/admin/backups")
                .query("cursor", "not-a-cursor"),
            400,
        )
        .late()
        .check(envelope),
    );
    cases.push(
        Case::new(
            "get_admin_backups_by_key_download",
            "the custom-format dump as an attachment",
            ctx.request("get", "/admin/backups/{{0.data.jobs.0.key_path}}/download"),
            200,
        )
        .late()
        .after(completed(ctx))
        .check(|r| {
            if !r.body.starts_with(b"PGDMP") {
                return Err("the body is not a pg_dump custom-format archive".into());
            }
            match r.header("content-disposition") {
                Some(d) if d.starts_with("attachment") => Ok(()),
                other => Err(format!("content-disposition {other:?}")),
            }
        }),
    );
    cases.push(
        Case::new(
            "get_admin_backups_by_key_download",
            "a key outside the prefix: 400",
            ctx.request("get", "/admin/backups/elsewhere%2Fx.dump/download"),
            400,
        )
        .late()
        .check(envelope),
    );
    cases.push(
        Case::new(
            "get_admin_backups_jobs_by_job_id_s3_open",
            "a presigned GET of the dump (fetched)",
            ctx.request(
                "get",
                "/admin/backups/jobs/{{0.data.jobs.0.job_id}}/s3-open",
            ),
            200,
        )
        .late()
        .after(completed(ctx))
        .check_json(|v| {
            let secs = v["data"]["expires_in"]
                .as_i64()
                .ok_or("no data.expires_in")?;
            if !(1..=900).contains(&secs) {
                return Err(format!("expires_in {secs} is not within 15 minutes"));
            }
            Ok(())
        })
        .then(Request::new("get", "{{r.data.url}}"), 200, |r| {
            if r.body.starts_with(b"PGDMP") {
                Ok(())
            } else {
                Err("the presigned URL did not serve the dump".into())
            }
        }),
    );
    // Restoring the client's dump into the client itself fails on its
    // existing tables: one transaction, so nothing changes (the fixture
    // table keeps its rows); the job is read back as a restore.
    cases.push(
        Case::new(
            "post_admin_backups_by_key_restore",
            "queues a restore of a backup (read back as a restore job)",
            ctx.request("post", "/admin/backups/{{0.data.jobs.0.key_path}}/restore")
                .json(json!({ "client_name": client })),
            202,
        )
        .late()
        .after(completed(ctx))
        .then_json(
            ctx.request("get", "/admin/backups/jobs/{{r.data.job_id}}"),
            200,
            |v| {
                let j = job_of(v)?;
                expect_eq("job.job_type", &j["job_type"], &json!("restore"))?;
                j["s3_key"]
                    .as_str()
                    .map(|_| ())
                    .ok_or("no job.s3_key".into())
            },
        ),
    );
    cases.push(
        Case::new(
            "post_admin_backups_by_key_restore",
            "a `..` key: 400",
            ctx.request("post", &format!("/admin/backups/{dotdot}/restore"))
                .json(json!({ "client_name": client })),
            400,
        )
        .late()
        .check(envelope),
    );
    cases.push(
        Case::new(
            "delete_admin_backups_jobs_by_id",
            "deletes a finished job (404 after)",
            ctx.request("delete", "/admin/backups/jobs/{{0.data.jobs.1.job_id}}"),
            200,
        )
        .late()
        .after(completed(ctx))
        .then_status(
            ctx.request("get", "/admin/backups/jobs/{{0.data.jobs.1.job_id}}"),
            404,
        ),
    );
    cases.push(
        Case::new(
            "delete_admin_backups_by_key",
            "deletes a backup object (404 after)",
            ctx.request("delete", "/admin/backups/{{0.data.jobs.2.key_path}}"),
            200,
        )
        .late()
        .after(completed(ctx))
        .check_json(|v| v["key"].as_str().map(|_| ()).ok_or("no key".into()))
        .then_status(
            ctx.request("delete", "/admin/backups/{{0.data.jobs.2.key_path}}"),
            404,
        ),
    );
    cases
}
