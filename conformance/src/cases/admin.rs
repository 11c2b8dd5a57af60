//! Admin family: the client catalog. Each case registers its own client in
//! a setup step, so cases are independent and a second run finds the same
//! state (saving a client is an upsert that also revives a deleted one).

use super::{envelope, expect_eq, Case, Ctx};
use crate::http::Request;
use serde_json::{json, Value};

/// Where registered clients point; catalog operations never connect to it
/// unless a request is routed, so a placeholder works without a tenant.
fn uri(ctx: &Ctx) -> String {
    ctx.tenant_db_url
        .clone()
        .unwrap_or_else(|| "postgres://conformance@127.0.0.1:1/none".into())
}

fn save(ctx: &Ctx, name: &str) -> Request {
    ctx.request("post", "/admin/clients")
        .json(json!({"client_name": name, "pg_uri": uri(ctx), "description": "conformance"}))
}

fn client_field<'a>(b: &'a Value, field: &str) -> Option<&'a Value> {
    b.get("client").and_then(|c| c.get(field))
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    vec![
        Case::new(
            "post_admin_clients",
            "save a client",
            save(ctx, "conf_saved"),
            201,
        )
        .check_json(|b| {
            expect_eq(
                "client_name",
                client_field(b, "client_name"),
                Some(&json!("conf_saved")),
            )?;
            expect_eq(
                "is_active",
                client_field(b, "is_active"),
                Some(&json!(true)),
            )
        }),
        Case::new(
            "post_admin_clients",
            "a client needs a URI",
            ctx.request("post", "/admin/clients")
                .json(json!({"client_name": "conf_nouri_x"})),
            400,
        )
        .check(envelope),
        Case::new(
            "get_admin_clients",
            "lists the saved client",
            ctx.request("get", "/admin/clients"),
            200,
        )
        .after(save(ctx, "conf_listed"))
        .check_json(|b| {
            let listed = b["clients"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["client_name"] == "conf_listed"));
            let runtime = b["runtime"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["client_name"] == "conf_listed"));
            expect_eq(
                "listed in clients and runtime",
                (listed, runtime),
                (true, true),
            )
        }),
        Case::new(
            "patch_admin_clients_by_client_name",
            "update the description",
            ctx.request("patch", "/admin/clients/conf_patched")
                .json(json!({"description": "patched"})),
            200,
        )
        .after(save(ctx, "conf_patched"))
        .check_json(|b| {
            expect_eq(
                "description",
                client_field(b, "description"),
                Some(&json!("patched")),
            )
        }),
        Case::new(
            "put_admin_clients_by_client_name_freeze",
            "freeze a client",
            ctx.request("put", "/admin/clients/conf_frozen/freeze")
                .json(json!({"is_frozen": true})),
            200,
        )
        .after(save(ctx, "conf_frozen"))
        .check_json(|b| {
            expect_eq(
                "is_frozen",
                client_field(b, "is_frozen"),
                Some(&json!(true)),
            )
        }),
        Case::new(
            "put_admin_clients_by_client_name_freeze",
            "freezing an unknown client is 404",
            ctx.request("put", "/admin/clients/conf_never_registered/freeze")
                .json(json!({"is_frozen": true})),
            404,
        )
        .check(envelope),
        Case::new(
            "delete_admin_clients_by_client_name",
            "delete a client",
            ctx.request("delete", "/admin/clients/conf_deleted"),
            200,
        )
        .after(save(ctx, "conf_deleted"))
        .check_json(|b| {
            let deleted = client_field(b, "deleted_at").is_some_and(Value::is_string);
            expect_eq("deleted_at set", deleted, true)
        }),
        Case::new(
            "delete_admin_clients_by_client_name",
            "deleting an unknown client is 404",
            ctx.request("delete", "/admin/clients/conf_never_registered"),
            404,
        )
        .check(envelope),
        Case::new(
            "get_clients",
            "lists client names",
            ctx.request("get", "/clients"),
            200,
        )
        .after(save(ctx, "conf_named"))
        .check_json(|b| {
            let found = b["clients"]
                .as_array()
                .is_some_and(|cs| cs.contains(&json!("conf_named")));
            expect_eq("conf_named listed", found, true)
        }),
        Case::new(
            "get_schema_clients",
            "lists client names",
            ctx.request("get", "/schema/clients"),
            200,
        )
        .after(save(ctx, "conf_named_schema"))
        .check_json(|b| {
            let found = b["clients"]
                .as_array()
                .is_some_and(|cs| cs.contains(&json!("conf_named_schema")));
            expect_eq("conf_named_schema listed", found, true)
        }),
    ]
}
