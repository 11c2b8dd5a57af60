//! Admin family: the client catalog and API keys. Each case creates what it
//! works on in setup steps (`Case::after`), referring to what they returned
//! with `{{N.field}}` placeholders, so cases are independent and a second
//! run finds the same state.

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

fn new_key(ctx: &Ctx, name: &str) -> Request {
    ctx.request("post", "/admin/api-keys")
        .json(json!({"name": name, "rights": ["gateway.fetch.execute"]}))
}

fn new_right(ctx: &Ctx, name: &str) -> Request {
    ctx.request("post", "/admin/api-key-rights")
        .json(json!({"name": name}))
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    let mut cases = client_cases(ctx);
    cases.extend(api_key_cases(ctx));
    cases
}

fn api_key_cases(ctx: &Ctx) -> Vec<Case> {
    let unique = |prefix: &str| format!("conf.{prefix}.{}", uuid::Uuid::new_v4().simple());
    vec![
        Case::new(
            "post_admin_api_keys",
            "create a key",
            new_key(ctx, "conformance"),
            201,
        )
        .check_json(|b| {
            let key = b["api_key"].as_str().unwrap_or_default();
            expect_eq(
                "key format",
                key.starts_with("ath_") && key.contains('.'),
                true,
            )?;
            expect_eq(
                "rights",
                &b["record"]["rights"],
                &json!(["gateway.fetch.execute"]),
            )
        }),
        Case::new(
            "post_admin_api_keys",
            "an unknown right is refused",
            ctx.request("post", "/admin/api-keys")
                .json(json!({"name": "x", "rights": ["no.such.right"]})),
            400,
        )
        .check(envelope),
        Case::new(
            "get_admin_api_keys",
            "lists keys without secrets",
            ctx.request("get", "/admin/api-keys"),
            200,
        )
        .after(new_key(ctx, "conformance-listed"))
        .check_json(|b| {
            let keys = b["api_keys"].as_array().ok_or("no api_keys array")?;
            let listed = keys.iter().any(|k| k["name"] == "conformance-listed");
            let leaks = keys
                .iter()
                .any(|k| k.get("api_key").is_some() || k.get("secret_hash").is_some());
            expect_eq("listed, no secrets", (listed, leaks), (true, false))
        }),
        Case::new(
            "patch_admin_api_keys_by_id",
            "deactivate a key",
            ctx.request("patch", "/admin/api-keys/{{0.record.id}}")
                .json(json!({"is_active": false})),
            200,
        )
        .after(new_key(ctx, "conformance-patched"))
        .check_json(|b| expect_eq("is_active", &b["record"]["is_active"], &json!(false))),
        Case::new(
            "patch_admin_api_keys_by_id",
            "an unknown key is 404",
            ctx.request(
                "patch",
                "/admin/api-keys/00000000-0000-0000-0000-000000000000",
            )
            .json(json!({})),
            404,
        )
        .check(envelope),
        Case::new(
            "delete_admin_api_keys_by_id",
            "delete a key",
            ctx.request("delete", "/admin/api-keys/{{0.record.id}}"),
            200,
        )
        .after(new_key(ctx, "conformance-deleted"))
        .check_json(|b| expect_eq("id present", b["id"].is_string(), true)),
        Case::new(
            "delete_admin_api_keys_by_id",
            "an unknown key is 404",
            ctx.request(
                "delete",
                "/admin/api-keys/00000000-0000-0000-0000-000000000000",
            ),
            404,
        )
        .check(envelope),
        Case::new(
            "get_admin_api_key_rights",
            "lists runtime rights",
            ctx.request("get", "/admin/api-key-rights"),
            200,
        )
        .check_json(|b| expect_eq("rights array", b["rights"].is_array(), true)),
        Case::new(
            "post_admin_api_key_rights",
            "create a right",
            new_right(ctx, &unique("created")),
            201,
        )
        .check_json(|b| {
            expect_eq(
                "right name",
                b["right"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("conf.created.")),
                true,
            )
        }),
        Case::new(
            "patch_admin_api_key_rights_by_id",
            "rename a right",
            ctx.request("patch", "/admin/api-key-rights/{{0.right.id}}")
                .json(json!({"name": unique("renamed")})),
            200,
        )
        .after(new_right(ctx, &unique("torename")))
        .check_json(|b| {
            expect_eq(
                "renamed",
                b["right"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("conf.renamed.")),
                true,
            )
        }),
        Case::new(
            "delete_admin_api_key_rights_by_id",
            "delete a right",
            ctx.request("delete", "/admin/api-key-rights/{{0.right.id}}"),
            200,
        )
        .after(new_right(ctx, &unique("deleted"))),
        Case::new(
            "get_admin_rights_catalog",
            "native and runtime rights",
            ctx.request("get", "/admin/rights/catalog"),
            200,
        )
        .check_json(|b| {
            let native = b["data"]["nativeRights"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["name"] == "gateway.fetch.execute"));
            expect_eq("native rights listed", native, true)
        }),
        Case::new(
            "get_admin_api_key_config",
            "global and per-client settings",
            ctx.request("get", "/admin/api-key-config"),
            200,
        )
        .check_json(|b| {
            expect_eq(
                "global setting",
                b["global"]["enforce_api_keys"].is_boolean(),
                true,
            )
        }),
        // Enforcement stays off (the suite runs without client keys); setting
        // the current value exercises the route without changing the state.
        Case::new(
            "put_admin_api_key_config",
            "set global enforcement",
            ctx.request("put", "/admin/api-key-config")
                .json(json!({"enforce_api_keys": false})),
            200,
        )
        .check_json(|b| {
            expect_eq(
                "enforce_api_keys",
                &b["global"]["enforce_api_keys"],
                &json!(false),
            )
        }),
        Case::new(
            "get_admin_api_key_clients",
            "per-client overrides",
            ctx.request("get", "/admin/api-key-clients"),
            200,
        )
        .after(
            ctx.request("put", "/admin/api-key-clients/conf_enforced")
                .json(json!({"enforce_api_keys": false})),
        )
        .check_json(|b| {
            let found = b["clients"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["client_name"] == "conf_enforced"));
            expect_eq("override listed", found, true)
        }),
        Case::new(
            "put_admin_api_key_clients_by_client_name",
            "set a per-client override",
            ctx.request("put", "/admin/api-key-clients/conf_override")
                .json(json!({"enforce_api_keys": false})),
            200,
        )
        .check_json(|b| {
            expect_eq(
                "client",
                &b["client"]["client_name"],
                &json!("conf_override"),
            )
        }),
        Case::new(
            "delete_admin_api_key_clients_by_client_name",
            "remove a per-client override",
            ctx.request("delete", "/admin/api-key-clients/conf_removed"),
            200,
        )
        .after(
            ctx.request("put", "/admin/api-key-clients/conf_removed")
                .json(json!({"enforce_api_keys": false})),
        )
        .check_json(|b| expect_eq("client_name", &b["client_name"], &json!("conf_removed"))),
        Case::new(
            "delete_admin_api_key_clients_by_client_name",
            "no override is 404",
            ctx.request("delete", "/admin/api-key-clients/conf_never_set"),
            404,
        )
        .check(envelope),
    ]
}

fn client_cases(ctx: &Ctx) -> Vec<Case> {
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
