//! Family `admin_webhooks`, the sink half, and the billing sink
//! provisioning of `admin_billing` (issue 15): every route's status and
//! envelope, and its effect read back through the API. Each case creates a
//! sink of its own (unique name per run) from the conformance client into
//! its own `conformance_items` table. The sinks follow a table no case
//! writes, so no delivery ever writes `conformance_items`; `test` is rolled
//! back, and its effect is the logged attempt.

use super::{envelope, expect_eq, Case, Ctx};
use crate::http::Request;
use serde_json::{json, Value};

fn unique(prefix: &str) -> String {
    format!(
        "conf_{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

fn body(ctx: &Ctx, name: &str) -> Value {
    json!({
        "name": name,
        "sourceClientName": ctx.client,
        "routeKey": "gateway.insert",
        "sourceTableName": "conformance_sink_quiet",
        "targetClientName": ctx.client,
        "targetSchema": "public",
        "targetTable": "conformance_items",
        "columnMap": {"name": "/row/name", "score": "/row/score", "note": "/event_id"},
        "enabled": true,
    })
}

fn create(ctx: &Ctx, name: &str) -> Request {
    ctx.request("post", "/admin/webhook-sinks")
        .json(body(ctx, name))
}

/// The sink created by setup step 0.
const ID: &str = "{{0.data.id}}";

fn by_id(ctx: &Ctx, method: &str, suffix: &str) -> Request {
    ctx.request(method, &format!("/admin/webhook-sinks/{ID}{suffix}"))
}

/// `data` is a sink named `name` into `conformance_items`.
fn is_sink(name: String) -> impl Fn(&Value) -> Result<(), String> + Send + Sync + 'static {
    move |b| {
        let d = &b["data"];
        expect_eq("data.name", &d["name"], &json!(name))?;
        expect_eq(
            "data.targetTable",
            &d["targetTable"],
            &json!("conformance_items"),
        )?;
        expect_eq(
            "data.columnMap.name",
            &d["columnMap"]["name"],
            &json!("/row/name"),
        )?;
        d["id"]
            .as_i64()
            .map(|_| ())
            .ok_or_else(|| "data.id is not an integer".to_string())
    }
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    let (created, listed, got, patched, deleted, tested, logged, refused) = (
        unique("sk_new"),
        unique("sk_list"),
        unique("sk_get"),
        unique("sk_patch"),
        unique("sk_del"),
        unique("sk_test"),
        unique("sk_log"),
        unique("sk_bad"),
    );
    let list = |ctx: &Ctx| {
        ctx.request("get", "/admin/webhook-sinks")
            .query("client_name", &ctx.client)
            .query("limit", "500")
    };
    let has = |name: String, want: bool| {
        move |b: &Value| {
            let sinks = b["data"]["sinks"].as_array().ok_or("no data.sinks")?;
            b["data"]["total"].as_i64().ok_or("no data.total")?;
            expect_eq(
                "listed",
                sinks.iter().any(|h| h["name"] == name.as_str()),
                want,
            )
        }
    };
    let provision = format!(
        "/admin/billing/clients/{}/webhook-sinks/provision",
        ctx.client
    );
    vec![
        Case::new(
            "get_admin_webhook_sinks_events",
            "the event catalog",
            ctx.request("get", "/admin/webhook-sinks/events"),
            200,
        )
        .check_json(|b| {
            let events = b["data"]["events"].as_array().ok_or("no data.events")?;
            expect_eq(
                "gateway.insert listed",
                events.iter().any(|e| e["route_key"] == "gateway.insert"),
                true,
            )
        }),
        Case::new(
            "post_admin_webhook_sinks",
            "create a sink",
            create(ctx, &created),
            200,
        )
        .check_json(is_sink(created.clone()))
        .then_json(
            ctx.request("get", "/admin/webhook-sinks/{{r.data.id}}"),
            200,
            is_sink(created.clone()),
        ),
        Case::new(
            "post_admin_webhook_sinks",
            "an unknown target column is refused at save",
            ctx.request("post", "/admin/webhook-sinks").json({
                let mut b = body(ctx, &refused);
                b["columnMap"] = json!({"no_such_column": "/row/name"});
                b
            }),
            400,
        )
        .check(envelope)
        .then_json(list(ctx), 200, has(refused.clone(), false)),
        Case::new("get_admin_webhook_sinks", "lists a sink", list(ctx), 200)
            .after(create(ctx, &listed))
            .check_json(has(listed.clone(), true)),
        Case::new(
            "get_admin_webhook_sinks_by_id",
            "read a sink",
            by_id(ctx, "get", ""),
            200,
        )
        .after(create(ctx, &got))
        .check_json(is_sink(got.clone())),
        Case::new(
            "get_admin_webhook_sinks_by_id",
            "an unknown id is 404",
            ctx.request("get", "/admin/webhook-sinks/987654321987"),
            404,
        )
        .check(envelope),
        Case::new(
            "patch_admin_webhook_sinks_by_id",
            "disable a sink and change its map",
            by_id(ctx, "patch", "").json(json!({
                "enabled": false,
                "column_map": {"name": "/row/name"},
            })),
            200,
        )
        .after(create(ctx, &patched))
        .check_json(|b| expect_eq("data.enabled", &b["data"]["enabled"], &json!(false)))
        .then_json(by_id(ctx, "get", ""), 200, |b| {
            expect_eq("data.enabled", &b["data"]["enabled"], &json!(false))?;
            expect_eq(
                "data.columnMap",
                &b["data"]["columnMap"],
                &json!({"name": "/row/name"}),
            )
        }),
        Case::new(
            "patch_admin_webhook_sinks_by_id",
            "a malformed pointer is refused",
            by_id(ctx, "patch", "").json(json!({"columnMap": {"name": "row/name"}})),
            400,
        )
        .after(create(ctx, &unique("sk_patch_bad")))
        .check(envelope)
        .then_json(by_id(ctx, "get", ""), 200, |b| {
            expect_eq(
                "data.columnMap.name",
                &b["data"]["columnMap"]["name"],
                &json!("/row/name"),
            )
        }),
        Case::new(
            "delete_admin_webhook_sinks_by_id",
            "delete a sink",
            by_id(ctx, "delete", ""),
            200,
        )
        .after(create(ctx, &deleted))
        .check_json(is_sink(deleted.clone()))
        .then_status(by_id(ctx, "get", ""), 404),
        Case::new(
            "post_admin_webhook_sinks_by_id_test",
            "a test projection is written, rolled back and logged",
            by_id(ctx, "post", "/test")
                .json(json!({"data": {"rows": [{"name": "conformance sink probe", "score": 5}]}})),
            200,
        )
        .after(create(ctx, &tested))
        .check_json(|b| {
            let d = &b["data"];
            expect_eq("data.ok", &d["ok"], &json!(true))?;
            expect_eq("data.rolled_back", &d["rolled_back"], &json!(true))?;
            expect_eq(
                "data.attempt.rows[0].name",
                &d["attempt"]["rows"][0]["name"],
                &json!("conformance sink probe"),
            )
        })
        .then_json(by_id(ctx, "get", "/deliveries"), 200, |b| {
            expect_eq("data.total", &b["data"]["total"], &json!(1))?;
            expect_eq(
                "the attempt is a test",
                &b["data"]["deliveries"][0]["test"],
                &json!(true),
            )
        }),
        Case::new(
            "get_admin_webhook_sinks_by_id_deliveries",
            "the delivery log",
            by_id(ctx, "get", "/deliveries").query("limit", "10"),
            200,
        )
        .after(create(ctx, &logged))
        .after(by_id(ctx, "post", "/test").json(json!({"data": {"rows": [{"name": "logged"}]}})))
        .check_json(|b| {
            expect_eq("data.total", &b["data"]["total"], &json!(1))?;
            let rows = b["data"]["deliveries"]
                .as_array()
                .ok_or("no data.deliveries")?;
            expect_eq("one row", rows.len(), 1)?;
            expect_eq("ok", &rows[0]["ok"], &json!(true))
        }),
        Case::new(
            "get_admin_webhook_sinks_by_id_deliveries",
            "an unknown sink is 404",
            ctx.request("get", "/admin/webhook-sinks/987654321987/deliveries"),
            404,
        )
        .check(envelope),
        Case::new(
            "get_admin_webhook_sinks_helpers_billing",
            "the billing blueprints",
            ctx.request("get", "/admin/webhook-sinks/helpers/billing")
                .query("client_name", &ctx.client)
                .query("targetSchema", "conformance_billing_mirror"),
            200,
        )
        .check_json(|b| {
            let helpers = b["data"]["helpers"].as_array().ok_or("no data.helpers")?;
            let kinds: Vec<&Value> = helpers.iter().map(|h| &h["kind"]).collect();
            expect_eq(
                "kinds",
                json!(kinds),
                json!(["payment", "subscription", "invoice"]),
            )?;
            expect_eq(
                "createBody.targetSchema",
                &helpers[0]["createBody"]["targetSchema"],
                &json!("conformance_billing_mirror"),
            )?;
            expect_eq("tableSql", b["data"]["tableSql"].is_string(), true)
        }),
        Case::new(
            "get_admin_webhook_sinks_helpers_billing",
            "the SDK's `instance` names the client",
            ctx.request("get", "/admin/webhook-sinks/helpers/billing")
                .query("instance", &ctx.client),
            200,
        )
        .check_json({
            let client = ctx.client.clone();
            move |b| {
                expect_eq(
                    "sourceClientName",
                    &b["data"]["sourceClientName"],
                    &json!(client),
                )
            }
        }),
        Case::new(
            "post_admin_billing_clients_by_client_name_webhook_sinks_provision",
            "provision the billing sinks (idempotent)",
            ctx.request("post", &provision)
                .json(json!({"targetSchema": "conformance_billing_mirror"})),
            200,
        )
        .check_json(|b| {
            let d = &b["data"];
            let n = d["created"].as_i64().unwrap_or(-1)
                + d["updated"].as_i64().unwrap_or(-1)
                + d["unchanged"].as_i64().unwrap_or(-1);
            expect_eq("three sinks", n, 3)
        })
        .then_json(
            ctx.request("post", &provision)
                .json(json!({"targetSchema": "conformance_billing_mirror"})),
            200,
            |b| {
                expect_eq(
                    "a second call changes nothing",
                    &b["data"]["unchanged"],
                    &json!(3),
                )
            },
        ),
    ]
}
