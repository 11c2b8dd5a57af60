//! Deferred gateway writes (`/gateway/deferred/*`). The conformance client
//! has no deferred writes configured, so each case queues its own write with
//! `X-Athena-Defer: true` in a setup step and refers to the request id it
//! was given (`{{N.request_id}}`). Names are unique per case and per build
//! of the cases (the enforced pass builds them again, while writes of the
//! first pass may still be queued); the writes table is truncated at the
//! start of every run. A flush runs every queued write and waits for those
//! running, so the reads after one find each write completed (or failed).

use super::{envelope, expect_eq, rows_are, Case, Ctx};
use crate::http::Request;
use serde_json::{json, Value};

const GET: &str = "get_gateway_deferred_by_request_id";
const REQUEUE: &str = "post_gateway_deferred_by_request_id_requeue";
const FLUSH: &str = "post_gateway_deferred_flush";
const UNKNOWN: &str = "00000000-0000-0000-0000-000000000000";

fn insert(ctx: &Ctx, name: &str, deferred: bool) -> Request {
    let req = ctx
        .request("put", "/gateway/insert")
        .json(json!({"table_name": ctx.writes, "insert_body": {"name": name}}));
    if deferred {
        req.header("X-Athena-Defer", "true")
    } else {
        req
    }
}

fn state(b: &Value) -> Result<&str, String> {
    b.get("status")
        .and_then(Value::as_str)
        .ok_or_else(|| "no `status` string".to_string())
}

fn flush(ctx: &Ctx) -> Request {
    ctx.request("post", "/gateway/deferred/flush")
}

/// `GET /gateway/deferred/{id}` must report `want`.
fn status_is(
    ctx: &Ctx,
    id: &str,
    want: &'static str,
) -> (
    Request,
    impl Fn(&Value) -> Result<(), String> + Send + Sync + 'static,
) {
    (
        ctx.request("get", &format!("/gateway/deferred/{id}")),
        move |b: &Value| {
            expect_eq("state", state(b)?, want)
                .map_err(|e| format!("{e} ({})", b.get("error").unwrap_or(&Value::Null)))
        },
    )
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let name = |n: &str| format!("{n}-{}", &run[..12]);
    let (status_name, other_name, noop_name, dup_name, flush_name) = (
        name("gw-def-status"),
        name("gw-def-other"),
        name("gw-def-noop"),
        name("gw-def-dup"),
        name("gw-def-flush"),
    );
    let (status_read, status_check) = status_is(ctx, "{{0.request_id}}", "completed");
    let (noop_read, noop_check) = status_is(ctx, "{{0.request_id}}", "completed");
    let (requeued_read, requeued_check) = status_is(ctx, "{{1.request_id}}", "completed");
    let (flushed_read, flushed_check) = status_is(ctx, "{{0.request_id}}", "completed");
    let other = "conformance_deferred_other";
    let tenant = ctx
        .tenant_db_url
        .clone()
        .unwrap_or_else(|| "postgres://conformance@127.0.0.1:1/none".into());
    vec![
        Case::new(
            GET,
            "a deferred insert reports its state",
            ctx.request("get", "/gateway/deferred/{{0.request_id}}"),
            200,
        )
        .after(insert(ctx, &status_name, true))
        .check_json(|b| {
            let s = state(b)?;
            expect_eq(
                "state",
                ["queued", "running", "completed"].contains(&s),
                true,
            )?;
            expect_eq("operation", b.get("operation"), Some(&json!("insert")))?;
            expect_eq("request_id", b["request_id"].is_string(), true)
        })
        .then_status(flush(ctx), 200)
        .then_json(status_read, 200, status_check)
        .then_db(
            ctx.written("name", &[&status_name]),
            rows_are(json!([{"name": status_name}])),
        ),
        Case::new(
            GET,
            "an unknown request id is 404",
            ctx.request("get", &format!("/gateway/deferred/{UNKNOWN}")),
            404,
        )
        .check(envelope),
        Case::new(
            GET,
            "another client's request id is 404",
            ctx.request("get", "/gateway/deferred/{{1.request_id}}")
                .header("X-Athena-Client", other),
            404,
        )
        .after(
            ctx.request("post", "/admin/clients")
                .json(json!({"client_name": other, "pg_uri": tenant})),
        )
        .after(insert(ctx, &other_name, true))
        .check(envelope),
        Case::new(
            REQUEUE,
            "a request that has not failed is not requeued",
            ctx.request("post", "/gateway/deferred/{{0.request_id}}/requeue"),
            200,
        )
        .after(insert(ctx, &noop_name, true))
        .check_json(|b| {
            expect_eq("requeued", b.get("requeued"), Some(&json!(false)))?;
            expect_eq("request_id", b["request_id"].is_string(), true)
        })
        .then_status(flush(ctx), 200)
        .then_json(noop_read, 200, noop_check)
        .then_db(
            ctx.written("name", &[&noop_name]),
            rows_are(json!([{"name": noop_name}])),
        ),
        Case::new(
            REQUEUE,
            "a failed request is requeued",
            ctx.request("post", "/gateway/deferred/{{1.request_id}}/requeue"),
            200,
        )
        // The deferred insert fails (the name is taken), then the row that
        // took the name is deleted: once requeued, the insert succeeds.
        .after(insert(ctx, &dup_name, false))
        .after(insert(ctx, &dup_name, true))
        .after(flush(ctx))
        .after(ctx.request("delete", "/gateway/delete").json(json!({
            "table_name": ctx.writes,
            "conditions": [{"eq_column": "name", "eq_value": dup_name}]
        })))
        .check_json(|b| {
            expect_eq("requeued", b.get("requeued"), Some(&json!(true)))?;
            expect_eq("state", state(b)?, "queued")
        })
        .then_status(flush(ctx), 200)
        .then_json(requeued_read, 200, requeued_check)
        .then_db(
            ctx.written("name", &[&dup_name]),
            rows_are(json!([{"name": dup_name}])),
        ),
        Case::new(
            REQUEUE,
            "an unknown request id is 404",
            ctx.request("post", &format!("/gateway/deferred/{UNKNOWN}/requeue")),
            404,
        )
        .check(envelope),
        Case::new(
            FLUSH,
            "flush runs the queue and reports counts",
            ctx.request("post", "/gateway/deferred/flush"),
            200,
        )
        .after(insert(ctx, &flush_name, true))
        .check_json(|b| {
            for field in ["succeeded", "failed", "remaining"] {
                expect_eq(field, b[field].is_u64(), true)?;
            }
            expect_eq(
                "invalidated_tables",
                b["invalidated_tables"].is_array(),
                true,
            )
        })
        .then_json(flushed_read, 200, flushed_check)
        .then_db(
            ctx.written("name", &[&flush_name]),
            rows_are(json!([{"name": flush_name}])),
        ),
    ]
}
