//! Deferred gateway writes (`/gateway/deferred/*`). The conformance client
//! has no deferred writes configured, so each case queues its own write with
//! `X-Athena-Defer: true` in a setup step and refers to the request id it
//! was given (`{{N.request_id}}`). Names are unique per case; the writes
//! table is truncated at the start of every run.

use super::{envelope, expect_eq, Case, Ctx};
use crate::fixtures::WRITES_TABLE;
use crate::http::Request;
use serde_json::{json, Value};

const GET: &str = "get_gateway_deferred_by_request_id";
const REQUEUE: &str = "post_gateway_deferred_by_request_id_requeue";
const FLUSH: &str = "post_gateway_deferred_flush";
const UNKNOWN: &str = "00000000-0000-0000-0000-000000000000";

fn insert(ctx: &Ctx, name: &str, deferred: bool) -> Request {
    let req = ctx
        .request("put", "/gateway/insert")
        .json(json!({"table_name": WRITES_TABLE, "insert_body": {"name": name}}));
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

pub fn cases(ctx: &Ctx) -> Vec<Case> {
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
        .after(insert(ctx, "gw-def-status", true))
        .check_json(|b| {
            let s = state(b)?;
            expect_eq(
                "state",
                ["queued", "running", "completed"].contains(&s),
                true,
            )?;
            expect_eq("operation", b.get("operation"), Some(&json!("insert")))?;
            expect_eq("request_id", b["request_id"].is_string(), true)
        }),
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
        .after(insert(ctx, "gw-def-other", true))
        .check(envelope),
        Case::new(
            REQUEUE,
            "a request that has not failed is not requeued",
            ctx.request("post", "/gateway/deferred/{{0.request_id}}/requeue"),
            200,
        )
        .after(insert(ctx, "gw-def-noop", true))
        .check_json(|b| {
            expect_eq("requeued", b.get("requeued"), Some(&json!(false)))?;
            expect_eq("request_id", b["request_id"].is_string(), true)
        }),
        Case::new(
            REQUEUE,
            "a failed request is requeued",
            ctx.request("post", "/gateway/deferred/{{1.request_id}}/requeue"),
            200,
        )
        .after(insert(ctx, "gw-def-dup", false))
        .after(insert(ctx, "gw-def-dup", true))
        .after(ctx.request("post", "/gateway/deferred/flush"))
        .check_json(|b| {
            expect_eq("requeued", b.get("requeued"), Some(&json!(true)))?;
            expect_eq("state", state(b)?, "queued")
        }),
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
        .after(insert(ctx, "gw-def-flush", true))
        .check_json(|b| {
            for field in ["succeeded", "failed", "remaining"] {
                expect_eq(field, b[field].is_u64(), true)?;
            }
            expect_eq(
                "invalidated_tables",
                b["invalidated_tables"].is_array(),
                true,
            )
        }),
    ]
}
