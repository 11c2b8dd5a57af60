//! Pipelines and statistics (issue 19): families `pipelines`,
//! `admin_pipeline_templates`, `admin_statistics` and the vacuum-health
//! routes of `admin_runtime`. Every case reads its effect back: the sink
//! table in the tenant database, the template through the API, the
//! operation log through statistics and drilldown, the applied index in the
//! tenant's catalog. Vacuum health needs the collector, which
//! `scripts/conformance-run` runs every second; those cases run late.

use super::{envelope, expect_eq, Case, Ctx, Phase};
use crate::http::Request;
use serde_json::{json, Value};

fn unique(prefix: &str) -> String {
    format!(
        "conf_{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A copy of `conformance_items` (name → label) into `sink`.
fn copy(ctx: &Ctx, sink: &str, dry_run: bool) -> Request {
    ctx.request("post", "/pipelines").json(json!({
        "dry_run": dry_run,
        "source": {"table_name": "conformance_items", "columns": ["name", "score"]},
        "transform": {"column_aliases": {"name": "label"}},
        "sink": {"table_name": sink},
    }))
}

fn definition() -> Value {
    json!({
        "source": {"table_name": "conformance_items", "columns": ["name", "score"], "limit": 2},
        "sink": {"table_name": "conformance_pipeline_dry"},
    })
}

fn put_template(ctx: &Ctx, name: &str) -> Request {
    ctx.request("put", &format!("/admin/pipeline-templates/{name}"))
        .json(json!({"definition": definition(), "metadata": {"owner": "conformance"}}))
}

fn template_is(name: String) -> impl Fn(&Value) -> Result<(), String> + Send + Sync + 'static {
    move |b| {
        expect_eq("data.name", &b["data"]["name"], &json!(name))?;
        expect_eq("data.definition", &b["data"]["definition"], &definition())
    }
}

fn fetch(ctx: &Ctx) -> Request {
    ctx.request("post", "/gateway/fetch")
        .json(json!({"table_name": "conformance_items", "columns": ["id"], "limit": 1}))
}

fn stats_has_client(
    client: String,
) -> impl Fn(&Value) -> Result<(), String> + Send + Sync + 'static {
    move |b| {
        let list = b["statistics"].as_array().ok_or("no statistics")?;
        let c = list
            .iter()
            .find(|c| c["client_name"] == client.as_str())
            .ok_or("the client is not listed")?;
        match c["total_requests"].as_i64() {
            Some(n) if n >= 1 => Ok(()),
            other => Err(format!("total_requests {other:?}")),
        }
    }
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    let c = ctx.client.clone();
    let (saved, got, deleted, listed, used) = (
        unique("pt_put"),
        unique("pt_get"),
        unique("pt_del"),
        unique("pt_list"),
        unique("pt_use"),
    );
    let stats = format!("/admin/clients/{c}/statistics");
    let qo = format!("/admin/clients/{c}/query-optimizations");
    vec![
        // --- pipelines ---
        Case::new("post_pipelines", "copy rows into the sink", copy(ctx, "conformance_pipeline_sink", false), 200)
            .rights(&["pipelines.execute", "gateway.fetch.execute", "gateway.insert.execute"])
            .check_json(|b| {
                expect_eq("rows_fetched", &b["rows_fetched"], &json!(3))?;
                expect_eq("rows_inserted", &b["rows_inserted"], &json!(3))
            })
            .then_db(
                "SELECT label, score FROM conformance_pipeline_sink ORDER BY label",
                |rows| {
                    expect_eq(
                        "sink rows",
                        rows,
                        &json!([{"label": "alpha", "score": 10}, {"label": "beta", "score": 20}, {"label": "gamma", "score": 30}]),
                    )
                },
            ),
        Case::new("post_pipelines", "a dry run writes nothing", copy(ctx, "conformance_pipeline_dry", true), 200)
            .check_json(|b| {
                expect_eq("would_insert", &b["would_insert"], &json!(3))?;
                expect_eq("rows_inserted", &b["rows_inserted"], &json!(0))
            })
            .then_db("SELECT count(*) AS n FROM conformance_pipeline_dry", |rows| {
                expect_eq("dry sink rows", &rows[0]["n"], &json!(0))
            }),
        Case::new(
            "post_pipelines",
            "an unknown template is 400",
            ctx.request("post", "/pipelines").json(json!({"pipeline": unique("missing")})),
            400,
        )
        .check(envelope),
        Case::new(
            "post_pipelines",
            "an unknown time granularity is 400",
            ctx.request("post", "/pipelines").json(json!({
                "source": {"table_name": "conformance_items"},
                "transform": {"group_by": "name", "time_granularity": "week"},
                "sink": {"table_name": "conformance_pipeline_dry"},
            })),
            400,
        )
        .check(envelope),
        Case::new(
            "post_pipelines_simulate",
            "fetch and transform, never a write",
            ctx.request("post", "/pipelines/simulate").json(json!({
                "source": {"table_name": "conformance_items", "columns": ["name", "score"]},
                "transform": {"group_by": "name", "aggregation_column": "score", "aggregation_strategy": "cumulative_sum"},
                "sink": {"table_name": "conformance_pipeline_dry"},
            })),
            200,
        )
        .check_json(|b| {
            expect_eq("would_insert", &b["would_insert"], &json!(3))?;
            expect_eq("data.2.score", &b["data"][2]["score"], &json!(60))
        })
        .then_db("SELECT count(*) AS n FROM conformance_pipeline_dry", |rows| {
            expect_eq("dry sink rows", &rows[0]["n"], &json!(0))
        }),
        Case::new(
            "post_pipelines_simulate",
            "no source is 400",
            ctx.request("post", "/pipelines/simulate").json(json!({"sink": {"table_name": "x"}})),
            400,
        )
        .check(envelope),
        Case::new("get_pipelines_templates", "lists a saved template", ctx.request("get", "/pipelines/templates"), 200)
            .after(put_template(ctx, &listed))
            .check_json({
                let listed = listed.clone();
                move |b| {
                    let t = b["templates"]
                        .as_array()
                        .ok_or("no templates")?
                        .iter()
                        .find(|t| t["name"] == listed.as_str())
                        .ok_or("not listed")?;
                    expect_eq("source", &t["source"], &json!("database"))?;
                    expect_eq("mutable", &t["mutable"], &json!(true))
                }
            }),
        // --- templates ---
        Case::new("put_admin_pipeline_templates_by_template_name", "save a template", put_template(ctx, &saved), 200)
            .check_json(template_is(saved.clone()))
            .then_json(
                ctx.request("get", &format!("/admin/pipeline-templates/{saved}")),
                200,
                template_is(saved.clone()),
            ),
        Case::new(
            "put_admin_pipeline_templates_by_template_name",
            "an invalid definition is 400",
            ctx.request("put", &format!("/admin/pipeline-templates/{}", unique("pt_bad")))
                .json(json!({"definition": {"source": {"table_name": "conformance_items"}, "transform": {"aggregation_strategy": "median"}, "sink": {"table_name": "x"}}})),
            400,
        )
        .check(envelope),
        Case::new(
            "get_admin_pipeline_templates_by_template_name",
            "read a template",
            ctx.request("get", &format!("/admin/pipeline-templates/{got}")),
            200,
        )
        .after(put_template(ctx, &got))
        .check_json(template_is(got.clone())),
        Case::new(
            "get_admin_pipeline_templates_by_template_name",
            "an unknown template is 404",
            ctx.request("get", &format!("/admin/pipeline-templates/{}", unique("none"))),
            404,
        )
        .check(envelope),
        Case::new("get_admin_pipeline_templates", "lists saved templates", ctx.request("get", "/admin/pipeline-templates"), 200)
            .after(put_template(ctx, &unique("pt_all")))
            .check_json(|b| {
                let n = b["data"]["templates"].as_array().ok_or("no data.templates")?.len();
                match n {
                    0 => Err("no templates listed".into()),
                    _ => Ok(()),
                }
            }),
        Case::new(
            "delete_admin_pipeline_templates_by_template_name",
            "delete a template",
            ctx.request("delete", &format!("/admin/pipeline-templates/{deleted}")),
            200,
        )
        .after(put_template(ctx, &deleted))
        .check_json(template_is(deleted.clone()))
        .then_status(ctx.request("get", &format!("/admin/pipeline-templates/{deleted}")), 404),
        Case::new(
            "post_pipelines",
            "run a saved template",
            ctx.request("post", "/pipelines").json(json!({"pipeline": used, "dry_run": true})),
            200,
        )
        .after(put_template(ctx, &used))
        .check_json(|b| {
            expect_eq("rows_fetched", &b["rows_fetched"], &json!(2))?;
            expect_eq("would_insert", &b["would_insert"], &json!(2))
        }),
        // --- statistics (the fetch in setup is logged) ---
        Case::new("get_admin_clients_statistics", "the client's logged calls", ctx.request("get", "/admin/clients/statistics"), 200)
            .after(fetch(ctx))
            .check_json(stats_has_client(c.clone())),
        Case::new(
            "post_admin_clients_statistics_refresh",
            "rebuilt from the log",
            ctx.request("post", "/admin/clients/statistics/refresh"),
            200,
        )
        .after(fetch(ctx))
        .check_json(stats_has_client(c.clone()))
        .then_json(ctx.request("get", "/admin/clients/statistics"), 200, stats_has_client(c.clone())),
        Case::new("get_admin_clients_by_client_name_statistics", "one client", ctx.request("get", &stats), 200)
            .after(fetch(ctx))
            .check_json({
                let c = c.clone();
                move |b| {
                    expect_eq("statistics.client_name", &b["statistics"]["client_name"], &json!(c))?;
                    let tables = b["tables"].as_array().ok_or("no tables")?;
                    match tables.iter().any(|t| t["table_name"] == "conformance_items" && t["operation"] == "fetch") {
                        true => Ok(()),
                        false => Err("conformance_items/fetch not in tables".into()),
                    }
                }
            }),
        Case::new(
            "get_admin_clients_by_client_name_statistics",
            "an unknown client is 404",
            ctx.request("get", &format!("/admin/clients/{}/statistics", unique("nobody"))),
            404,
        )
        .check(envelope),
        Case::new(
            "get_admin_clients_by_client_name_statistics_drilldown",
            "the log rows of a table operation",
            ctx.request("get", &format!("{stats}/drilldown"))
                .query("table_name", "conformance_items")
                .query("operation", "fetch")
                .query("status", "normal"),
            200,
        )
        .after(fetch(ctx))
        .check_json(|b| {
            let rows = b["rows"].as_array().ok_or("no rows")?;
            let row = rows.first().ok_or("no log rows")?;
            expect_eq("rows.0.table_name", &row["table_name"], &json!("conformance_items"))?;
            expect_eq("rows.0.status_code", &row["status_code"], &json!(200))
        }),
        Case::new(
            "get_admin_clients_by_client_name_statistics_drilldown",
            "a status outside the enum is 400",
            ctx.request("get", &format!("{stats}/drilldown"))
                .query("table_name", "conformance_items")
                .query("operation", "fetch")
                .query("status", "some"),
            400,
        )
        .check(envelope),
        // --- pressure ---
        Case::new(
            "post_admin_clients_pressure_backfill",
            "queue a backfill",
            ctx.request("post", "/admin/clients/pressure/backfill").json(json!({"hours_back": 2})),
            202,
        )
        .after(fetch(ctx))
        .check_json(|b| expect_eq("data.request.kind", &b["data"]["request"]["kind"], &json!("backfill")))
        .then_json(ctx.request("get", "/admin/clients/pressure"), 200, |b| {
            match b["data"]["last_run"]["id"].as_i64() {
                Some(_) => Ok(()),
                None => Err("no last_run".into()),
            }
        }),
        Case::new(
            "post_admin_clients_pressure_backfill",
            "hours_back over 720 is 400",
            ctx.request("post", "/admin/clients/pressure/backfill").json(json!({"hours_back": 721})),
            400,
        )
        .check(envelope),
        Case::new("get_admin_clients_pressure", "latest snapshots", ctx.request("get", "/admin/clients/pressure"), 200)
            .in_phase(Phase::Late)
            .check_json({
                let c = c.clone();
                move |b| {
                    let list = b["data"]["snapshots"].as_array().ok_or("no data.snapshots")?;
                    match list.iter().any(|s| s["client_name"] == c.as_str()) {
                        true => Ok(()),
                        false => Err("no snapshot of the client".into()),
                    }
                }
            }),
        Case::new(
            "get_admin_clients_by_client_name_pressure",
            "one client's pressure",
            ctx.request("get", &format!("/admin/clients/{c}/pressure")),
            200,
        )
        .in_phase(Phase::Late)
        .check_json({
            let c = c.clone();
            move |b| {
                expect_eq("data.snapshot.client_name", &b["data"]["snapshot"]["client_name"], &json!(c))?;
                match b["data"]["history"].as_array().map(Vec::len) {
                    Some(n) if n >= 1 => Ok(()),
                    _ => Err("no history".into()),
                }
            }
        }),
        Case::new(
            "get_admin_clients_by_client_name_pressure",
            "an unknown client is 404",
            ctx.request("get", &format!("/admin/clients/{}/pressure", unique("nobody"))),
            404,
        )
        .check(envelope),
        // --- query optimizations ---
        Case::new(
            "post_admin_clients_by_client_name_query_optimizations_refresh",
            "finds the unindexed foreign key",
            ctx.request("post", &format!("{qo}/refresh")),
            200,
        )
        .check_json(|b| {
            expect_eq("run.status", &b["run"]["status"], &json!("completed"))?;
            let recs = b["recommendations"].as_array().ok_or("no recommendations")?;
            match recs.iter().any(|r| r["kind"] == "unindexed_foreign_key" && r["table"] == "conformance_qo_child") {
                true => Ok(()),
                false => Err("conformance_qo_child(parent_id) not recommended".into()),
            }
        })
        .then_json(ctx.request("get", &format!("{qo}/runs")), 200, |b| {
            match b["runs"].as_array().map(Vec::len) {
                Some(n) if n >= 1 => Ok(()),
                _ => Err("the run is not listed".into()),
            }
        }),
        Case::new(
            "get_admin_clients_by_client_name_query_optimizations",
            "lists recommendations",
            ctx.request("get", &qo).query("status", "all"),
            200,
        )
        .after(ctx.request("post", &format!("{qo}/refresh")))
        .check_json(|b| match b["recommendations"].as_array().map(Vec::len) {
            Some(n) if n >= 1 => Ok(()),
            _ => Err("no recommendations".into()),
        }),
        Case::new(
            "get_admin_clients_by_client_name_query_optimizations",
            "a status outside the enum is 400",
            ctx.request("get", &qo).query("status", "pending"),
            400,
        )
        .check(envelope),
        Case::new(
            "get_admin_clients_by_client_name_query_optimizations_runs",
            "lists runs",
            ctx.request("get", &format!("{qo}/runs")),
            200,
        )
        .after(ctx.request("post", &format!("{qo}/refresh")))
        .check_json(|b| match b["runs"].as_array().map(Vec::len) {
            Some(n) if n >= 1 => Ok(()),
            _ => Err("no runs".into()),
        }),
        Case::new(
            "post_admin_clients_by_client_name_query_optimizations_by_recommendation_id_apply",
            "apply the first recommendation",
            ctx.request("post", &format!("{qo}/{{{{0.recommendations.0.id}}}}/apply"))
                .json(json!({"actor": "conformance"})),
            200,
        )
        .after(ctx.request("post", &format!("{qo}/refresh")))
        .check_json(|b| {
            expect_eq("result.applied", &b["result"]["applied"], &json!(true))?;
            expect_eq("result.recommendation.status", &b["result"]["recommendation"]["status"], &json!("applied"))
        })
        .then_json(ctx.request("get", &qo).query("status", "applied"), 200, |b| {
            match b["recommendations"].as_array().map(Vec::len) {
                Some(n) if n >= 1 => Ok(()),
                _ => Err("nothing applied".into()),
            }
        })
        .then_db(
            "SELECT count(*) AS n FROM pg_class WHERE relkind = 'i' AND relname LIKE 'athena\\_%'",
            |rows| match rows[0]["n"].as_i64() {
                Some(n) if n >= 1 => Ok(()),
                _ => Err("no index was created".into()),
            },
        ),
        Case::new(
            "post_admin_clients_by_client_name_query_optimizations_by_recommendation_id_apply",
            "another client's recommendation is 404",
            ctx.request("post", &format!("/admin/clients/{}/query-optimizations/{{{{0.recommendations.0.id}}}}/apply", unique("other"))),
            404,
        )
        .after(ctx.request("post", &format!("{qo}/refresh")))
        .check(envelope),
        // --- row estimates ---
        Case::new(
            "get_admin_clients_by_client_name_table_row_estimates",
            "pg_class estimates",
            ctx.request("get", &format!("/admin/clients/{c}/table-row-estimates"))
                .query("limit", "5")
                .header("Cache-Control", "no-cache"),
            200,
        )
        .check_json(|b| {
            expect_eq("snapshot.source", &b["snapshot"]["source"], &json!("pg_class.reltuples"))?;
            match b["snapshot"]["summary"]["table_count"].as_i64() {
                Some(n) if n >= 1 => Ok(()),
                _ => Err("no tables counted".into()),
            }
        }),
        Case::new(
            "get_admin_clients_by_client_name_table_row_estimates",
            "an unknown client is 404",
            ctx.request("get", &format!("/admin/clients/{}/table-row-estimates", unique("nobody"))),
            404,
        )
        .check(envelope),
        // --- vacuum health (the collector's snapshots) ---
        Case::new("get_admin_vacuum_health", "latest snapshot per client", ctx.request("get", "/admin/vacuum-health"), 200)
            .in_phase(Phase::Late)
            .check_json({
                let c = c.clone();
                move |b| {
                    let list = b["snapshots"].as_array().ok_or("no snapshots")?;
                    match list.iter().any(|s| s["client_name"] == c.as_str()) {
                        true => Ok(()),
                        false => Err("no snapshot of the client".into()),
                    }
                }
            }),
        Case::new(
            "get_admin_vacuum_health_by_client_name",
            "the dead tuples of conformance_vacuum",
            ctx.request("get", &format!("/admin/vacuum-health/{c}")),
            200,
        )
        .in_phase(Phase::Late)
        .check_json(|b| {
            let tables = b["tables"].as_array().ok_or("no tables")?;
            let t = tables
                .iter()
                .find(|t| t["relname"] == "conformance_vacuum")
                .ok_or("conformance_vacuum not in the snapshot")?;
            match t["n_dead_tup"].as_i64() {
                Some(n) if n >= 1500 => Ok(()),
                other => Err(format!("n_dead_tup {other:?}")),
            }
        }),
        Case::new(
            "get_admin_vacuum_health_by_client_name",
            "no snapshot is 404",
            ctx.request("get", &format!("/admin/vacuum-health/{}", unique("nobody"))),
            404,
        )
        .check(envelope),
    ]
}
