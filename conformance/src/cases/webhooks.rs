//! Family `admin_webhooks`, the webhook half (issue 15): every route's
//! status and envelope, and its effect read back through the API. Each case
//! creates a webhook of its own (unique name per build, so a second run
//! starts clean) on the conformance client. Webhooks point at
//! `https://hooks.invalid/…` (RFC 2606: never resolves), so nothing leaves
//! the machine; `test` then records a failed attempt, which is its effect.
//! They subscribe to a table no case writes, so no write of another case
//! adds attempts to the logs read here.

use super::{envelope, expect_eq, Case, Ctx};
use crate::http::Request;
use serde_json::{json, Value};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn unique(prefix: &str) -> String {
    format!(
        "conf_{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

fn body(ctx: &Ctx, name: &str) -> Value {
    json!({
        "name": name,
        "client_name": ctx.client,
        "route_key": "gateway.insert",
        // A table no case writes: the delivery logs the cases read hold
        // their own `test` attempts only.
        "table_name": "conformance_webhook_quiet",
        "url": format!("https://hooks.invalid/{name}"),
        "secret": SECRET,
        "headers": {"x-conformance": "1"},
        "enabled": true,
        "timeout_ms": 1000,
        "max_attempts": 3,
    })
}

fn create(ctx: &Ctx, name: &str) -> Request {
    ctx.request("post", "/admin/webhooks").json(body(ctx, name))
}

/// The webhook created by setup step 0.
const ID: &str = "{{0.data.id}}";

fn by_id(ctx: &Ctx, method: &str, suffix: &str) -> Request {
    ctx.request(method, &format!("/admin/webhooks/{ID}{suffix}"))
}

/// `data` is a webhook named `name`, without its secret.
fn is_hook(name: String) -> impl Fn(&Value) -> Result<(), String> + Send + Sync + 'static {
    move |b| {
        let d = &b["data"];
        expect_eq("data.name", &d["name"], &json!(name))?;
        expect_eq("data.has_secret", &d["has_secret"], &json!(true))?;
        expect_eq("no data.secret", d.get("secret").is_none(), true)?;
        expect_eq(
            "the secret is never answered",
            b.to_string().contains(SECRET.trim_start_matches("whsec_")),
            false,
        )?;
        d["id"]
            .as_i64()
            .map(|_| ())
            .ok_or_else(|| "data.id is not an integer".to_string())
    }
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    let (created, listed, got, patched, deleted, tested, logged, refused) = (
        unique("wh_new"),
        unique("wh_list"),
        unique("wh_get"),
        unique("wh_patch"),
        unique("wh_del"),
        unique("wh_test"),
        unique("wh_log"),
        unique("wh_bad"),
    );
    let list = |ctx: &Ctx| {
        ctx.request("get", "/admin/webhooks")
            .query("client_name", &ctx.client)
            .query("limit", "500")
    };
    let listed_name = |name: String| {
        move |b: &Value| {
            let hooks = b["data"]["webhooks"].as_array().ok_or("no data.webhooks")?;
            b["data"]["total"].as_i64().ok_or("no data.total")?;
            expect_eq(
                "listed",
                hooks.iter().any(|h| h["name"] == name.as_str()),
                true,
            )
        }
    };
    vec![
        Case::new(
            "get_admin_webhooks_events",
            "the event catalog",
            ctx.request("get", "/admin/webhooks/events"),
            200,
        )
        .check_json(|b| {
            let events = b["data"]["events"].as_array().ok_or("no data.events")?;
            for key in [
                "gateway.insert",
                "rest.insert",
                "management.tables.create",
                "backup.completed",
            ] {
                let e = events
                    .iter()
                    .find(|e| e["route_key"] == key)
                    .ok_or(format!("{key} not listed"))?;
                expect_eq(
                    "title",
                    e["title"].is_string() && e["description"].is_string(),
                    true,
                )?;
            }
            Ok(())
        }),
        Case::new(
            "post_admin_webhooks",
            "create a webhook",
            create(ctx, &created),
            200,
        )
        .check_json(is_hook(created.clone()))
        .then_json(
            ctx.request("get", "/admin/webhooks/{{r.data.id}}"),
            200,
            is_hook(created.clone()),
        ),
        Case::new(
            "post_admin_webhooks",
            "a metadata address is refused at save",
            ctx.request("post", "/admin/webhooks").json({
                let mut b = body(ctx, &refused);
                b["url"] = json!("http://169.254.169.254/latest/meta-data");
                b
            }),
            400,
        )
        .check(envelope)
        .then_json(list(ctx), 200, {
            let name = refused.clone();
            move |b| {
                let hooks = b["data"]["webhooks"].as_array().ok_or("no data.webhooks")?;
                expect_eq(
                    "not saved",
                    hooks.iter().any(|h| h["name"] == name.as_str()),
                    false,
                )
            }
        }),
        Case::new("get_admin_webhooks", "lists a webhook", list(ctx), 200)
            .after(create(ctx, &listed))
            .check_json(listed_name(listed.clone())),
        Case::new(
            "get_admin_webhooks_by_id",
            "read a webhook",
            by_id(ctx, "get", ""),
            200,
        )
        .after(create(ctx, &got))
        .check_json(is_hook(got.clone())),
        Case::new(
            "get_admin_webhooks_by_id",
            "an unknown id is 404",
            ctx.request("get", "/admin/webhooks/987654321987"),
            404,
        )
        .check(envelope),
        Case::new(
            "patch_admin_webhooks_by_id",
            "disable a webhook",
            by_id(ctx, "patch", "").json(json!({"enabled": false, "timeout_ms": 2500})),
            200,
        )
        .after(create(ctx, &patched))
        .check_json(|b| expect_eq("data.enabled", &b["data"]["enabled"], &json!(false)))
        .then_json(by_id(ctx, "get", ""), 200, |b| {
            expect_eq("data.enabled", &b["data"]["enabled"], &json!(false))?;
            expect_eq("data.timeout_ms", &b["data"]["timeout_ms"], &json!(2500))
        }),
        Case::new(
            "patch_admin_webhooks_by_id",
            "a timeout over 10 s is refused",
            by_id(ctx, "patch", "").json(json!({"timeout_ms": 10001})),
            400,
        )
        .after(create(ctx, &unique("wh_patch_bad")))
        .check(envelope)
        .then_json(by_id(ctx, "get", ""), 200, |b| {
            expect_eq("data.timeout_ms", &b["data"]["timeout_ms"], &json!(1000))
        }),
        Case::new(
            "delete_admin_webhooks_by_id",
            "delete a webhook",
            by_id(ctx, "delete", ""),
            200,
        )
        .after(create(ctx, &deleted))
        .check_json(is_hook(deleted.clone()))
        .then_status(by_id(ctx, "get", ""), 404),
        Case::new(
            "post_admin_webhooks_by_id_test",
            "a test delivery is attempted now and logged",
            by_id(ctx, "post", "/test").json(json!({"data": {"hello": "conformance"}})),
            200,
        )
        .after(create(ctx, &tested))
        .check_json(|b| {
            let d = &b["data"];
            expect_eq("data.delivered", &d["delivered"], &json!(false))?;
            expect_eq("data.attempt.test", &d["attempt"]["test"], &json!(true))?;
            expect_eq("data.attempt.attempt", &d["attempt"]["attempt"], &json!(1))?;
            expect_eq(
                "data.event.data",
                &d["event"]["data"],
                &json!({"hello": "conformance"}),
            )
        })
        .then_json(by_id(ctx, "get", "/deliveries"), 200, |b| {
            expect_eq("data.total", &b["data"]["total"], &json!(1))?;
            expect_eq(
                "the attempt",
                &b["data"]["deliveries"][0]["route_key"],
                &json!("gateway.insert"),
            )
        }),
        Case::new(
            "get_admin_webhooks_by_id_deliveries",
            "the delivery log",
            by_id(ctx, "get", "/deliveries").query("limit", "10"),
            200,
        )
        .after(create(ctx, &logged))
        .after(by_id(ctx, "post", "/test").json(json!({})))
        .check_json(|b| {
            expect_eq("data.total", &b["data"]["total"], &json!(1))?;
            let rows = b["data"]["deliveries"]
                .as_array()
                .ok_or("no data.deliveries")?;
            expect_eq("one row", rows.len(), 1)?;
            expect_eq("an error is logged", rows[0]["error"].is_string(), true)
        }),
        Case::new(
            "get_admin_webhooks_by_id_deliveries",
            "an unknown webhook is 404",
            ctx.request("get", "/admin/webhooks/987654321987/deliveries"),
            404,
        )
        .check(envelope),
    ]
}
