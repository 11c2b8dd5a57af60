//! Families `admin_client_configs` and the admission events of
//! `admin_runtime`: per-client configuration overrides and the limiter's
//! event log. Each case registers a client of its own (unique per build, so
//! a second run starts clean and no limit ever touches the conformance
//! client) and reads every change back through the API; the events case
//! exceeds a tiny per-client limit of a deferred-writes client (a 202, so a
//! setup step) and then finds its event.

use super::{envelope, expect_eq, Case, Ctx};
use crate::http::Request;
use serde_json::{json, Value};

fn uri(ctx: &Ctx) -> String {
    ctx.tenant_db_url
        .clone()
        .unwrap_or_else(|| "postgres://conformance@127.0.0.1:1/none".into())
}

fn unique(prefix: &str) -> String {
    format!(
        "conf_{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

fn save(ctx: &Ctx, name: &str) -> Request {
    ctx.request("post", "/admin/clients")
        .json(json!({"client_name": name, "pg_uri": uri(ctx), "description": "conformance"}))
}

fn path(name: &str) -> String {
    format!("/admin/client-configs/{name}")
}

fn put(ctx: &Ctx, name: &str, config: Value) -> Request {
    ctx.request("put", &path(name))
        .json(json!({"config": config, "metadata": {"by": "conformance"}}))
}

fn get(ctx: &Ctx, name: &str) -> Request {
    ctx.request("get", &path(name))
}

/// The override's `data.config` must be `want`.
fn config_is(want: Value) -> impl Fn(&Value) -> Result<(), String> + Send + Sync + 'static {
    move |b| expect_eq("data.config", &b["data"]["config"], &want)
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    let config = json!({
        "admission": {"window_seconds": 60, "per_client_limit_per_window": 1000},
        "resilience": {"pool_max": 2, "statement_timeout_ms": 5000},
        "features": {"beta": true}
    });
    let (put_ok, put_bad, got, missing, listed, deleted, events) = (
        unique("cc_put"),
        unique("cc_bad"),
        unique("cc_get"),
        unique("cc_none"),
        unique("cc_list"),
        unique("cc_del"),
        unique("adm"),
    );
    vec![
        Case::new(
            "put_admin_client_configs_by_client_name",
            "store an override",
            put(ctx, &put_ok, config.clone()),
            200,
        )
        .after(save(ctx, &put_ok))
        .check_json(config_is(config.clone()))
        .then_json(get(ctx, &put_ok), 200, config_is(config.clone())),
        Case::new(
            "put_admin_client_configs_by_client_name",
            "an out-of-range value is refused naming its path",
            put(ctx, &put_bad, json!({"resilience": {"pool_max": 0}})),
            400,
        )
        .after(save(ctx, &put_bad))
        .check(|r| {
            envelope(r)?;
            let text = String::from_utf8_lossy(&r.body).to_string();
            expect_eq(
                "names config.resilience.pool_max",
                text.contains("config.resilience.pool_max"),
                true,
            )
        })
        .then_status(get(ctx, &put_bad), 404),
        Case::new(
            "put_admin_client_configs_by_client_name",
            "an unknown client is 404",
            put(ctx, &unique("cc_ghost"), json!({})),
            404,
        )
        .check(envelope)
        .then_json(ctx.request("get", "/admin/client-configs"), 200, |b| {
            let list = b["data"]["configs"].as_array().ok_or("no data.configs")?;
            expect_eq(
                "no ghost listed",
                list.iter().any(|c| {
                    c["client_name"]
                        .as_str()
                        .is_some_and(|n| n.starts_with("conf_cc_ghost"))
                }),
                false,
            )
        }),
        Case::new(
            "get_admin_client_configs_by_client_name",
            "read an override",
            get(ctx, &got),
            200,
        )
        .after(save(ctx, &got))
        .after(put(ctx, &got, config.clone()))
        .check_json(config_is(config.clone())),
        Case::new(
            "get_admin_client_configs_by_client_name",
            "no override is 404",
            get(ctx, &missing),
            404,
        )
        .after(save(ctx, &missing))
        .check(envelope),
        Case::new(
            "get_admin_client_configs",
            "lists an override",
            ctx.request("get", "/admin/client-configs"),
            200,
        )
        .after(save(ctx, &listed))
        .after(put(ctx, &listed, json!({"features": {"x": true}})))
        .check_json({
            let name = listed.clone();
            move |b| {
                let list = b["data"]["configs"].as_array().ok_or("no data.configs")?;
                let entry = list
                    .iter()
                    .find(|c| c["client_name"] == name.as_str())
                    .ok_or("the override is not listed")?;
                expect_eq(
                    "config",
                    &entry["config"],
                    &json!({"features": {"x": true}}),
                )
            }
        }),
        Case::new(
            "delete_admin_client_configs_by_client_name",
            "remove an override",
            ctx.request("delete", &path(&deleted)),
            200,
        )
        .after(save(ctx, &deleted))
        .after(put(ctx, &deleted, config.clone()))
        .check_json(|b| expect_eq("data.removed", &b["data"]["removed"], &json!(true)))
        .then_status(get(ctx, &deleted), 404),
        Case::new(
            "post_admin_client_configs_seed_from_config",
            "seeds from the configuration file",
            ctx.request("post", "/admin/client-configs/seed-from-config"),
            200,
        )
        .check_json(|b| {
            // The conformance server has no ATHENA_CONFIG: nothing to seed.
            expect_eq("data.seeded", &b["data"]["seeded"], &json!([]))?;
            expect_eq("data.skipped", &b["data"]["skipped"], &json!([]))
        })
        .then_json(ctx.request("get", "/admin/client-configs"), 200, |b| {
            b["data"]["configs"]
                .as_array()
                .map(|_| ())
                .ok_or_else(|| "no data.configs".to_string())
        }),
        events_case(ctx, &events),
    ]
}

/// A client limited to one request per hour with deferred writes: its
/// second insert is deferred by the limiter (202), which is an event.
fn events_case(ctx: &Ctx, name: &str) -> Case {
    let insert = |n: &str| {
        ctx.request("put", "/gateway/insert")
            .header("X-Athena-Client", name)
            .json(json!({"table_name": ctx.writes, "insert_body": {"name": n}}))
    };
    let want = name.to_string();
    Case::new(
        "get_admin_admission_events",
        "a deferral over the client limit is an event",
        ctx.request("get", "/admin/admission-events")
            .query("client", name)
            .query("decision", "defer_requested")
            .query("limit", "10"),
        200,
    )
    .after(save(ctx, name))
    .after(put(
        ctx,
        name,
        json!({
            "admission": {"window_seconds": 3600, "per_client_limit_per_window": 1},
            "deferred_writes": {"enabled": true}
        }),
    ))
    .after(insert(&format!("{name}-1")))
    .after(insert(&format!("{name}-2")))
    .check_json(move |b| {
        let events = b["data"]["events"].as_array().ok_or("no data.events")?;
        let e = events.first().ok_or("no event for the deferral")?;
        expect_eq("client_name", &e["client_name"], &json!(want))?;
        expect_eq("decision", &e["decision"], &json!("defer_requested"))?;
        expect_eq("route", &e["route"], &json!("/gateway/insert"))?;
        expect_eq(
            "deferred_request_id set",
            e["deferred_request_id"].is_string(),
            true,
        )
    })
    .then_status(
        ctx.request("get", "/admin/admission-events")
            .query("limit", "0"),
        400,
    )
}
