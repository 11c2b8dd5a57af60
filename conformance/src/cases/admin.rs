//! The `/admin` area, families `admin_clients` and `admin_api_keys`: the
//! client catalog and API keys. Each case creates what it works on in setup
//! steps (`Case::after`), referring to what they returned with `{{N.field}}`
//! placeholders, so cases are independent and a second run finds the same
//! state. Every change is read back through the API and,
//! where it has one, its effect on the data plane is proven (a frozen client
//! answers 403, a revoked key 401, …). The cases whose proof needs API keys
//! enforced run in the enforced pass (`Phase::Enforced`).

use super::{envelope, expect_eq, Case, Ctx, Phase, TABLE};
use crate::http::Request;
use crate::rights;
use serde_json::{json, Value};

/// Where registered clients point: the tenant database, so a registered
/// client routes (a placeholder without one: catalog operations never
/// connect unless a request is routed).
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
        .json(json!({"name": name, "rights": [rights::FETCH]}))
}

fn new_right(ctx: &Ctx, name: &str) -> Request {
    ctx.request("post", "/admin/api-key-rights")
        .json(json!({"name": name}))
}

/// A read of the fixture table as `client`, with `key` (the admin key when
/// `None`; no key at all with `Some("")`).
fn fetch_as(ctx: &Ctx, client: &str, key: Option<&str>) -> Request {
    let req = ctx
        .request("post", "/gateway/fetch")
        .header("X-Athena-Client", client)
        .json(json!({"table_name": TABLE, "columns": ["id"], "limit": 1}));
    match key {
        None => req,
        Some("") => req.without_header("X-Athena-Key"),
        Some(k) => req.header("X-Athena-Key", k),
    }
}

fn unique(prefix: &str) -> String {
    format!("conf.{prefix}.{}", uuid::Uuid::new_v4().simple())
}

/// The entry named `name` of a list `field` in a body.
fn entry<'a>(
    b: &'a Value,
    field: &str,
    key: &str,
    name: &str,
) -> Result<Option<&'a Value>, String> {
    Ok(b[field]
        .as_array()
        .ok_or_else(|| format!("no `{field}` array"))?
        .iter()
        .find(|e| e[key] == name))
}

/// Checks a list body has (`true`) or lacks an entry.
fn lists(
    field: &'static str,
    key: &'static str,
    name: String,
    present: bool,
) -> impl Fn(&Value) -> Result<(), String> + Send + Sync + 'static {
    move |b| {
        expect_eq(
            &format!("{name} listed in `{field}`"),
            entry(b, field, key, &name)?.is_some(),
            present,
        )
    }
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    let mut cases = client_cases(ctx);
    cases.extend(api_key_cases(ctx));
    cases.push(error_catalog_case(ctx));
    cases
}

/// `GET /admin/errors/catalog`: the registry is whole and self-consistent
/// (the run also checks that every code it was answered is listed:
/// `error_codes_are_catalogued` in main.rs).
fn error_catalog_case(ctx: &Ctx) -> Case {
    Case::new(
        "get_admin_errors_catalog",
        "every code with its number, status, domain and docs URL",
        ctx.request("get", "/admin/errors/catalog"),
        200,
    )
    .check_json(|b| {
        let d = &b["data"];
        let errors = d["errors"].as_array().ok_or("no data.errors array")?;
        let domains: Vec<&str> = d["domains"]
            .as_array()
            .ok_or("no data.domains array")?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for e in errors {
            let number = e["error_number"]
                .as_i64()
                .ok_or("an entry without error_number")?;
            expect_eq(
                "http_status = error_number / 10",
                &e["http_status"],
                &json!(number / 10),
            )?;
            let domain = e["domain"].as_str().ok_or("an entry without domain")?;
            expect_eq("domain listed", domains.contains(&domain), true)?;
            let docs = e["docs_url"].as_str().ok_or("an entry without docs_url")?;
            expect_eq(
                "docs_url names the number",
                docs.ends_with(&number.to_string()),
                true,
            )?;
        }
        let codes: Vec<&str> = errors.iter().filter_map(|e| e["code"].as_str()).collect();
        for must in [
            "not_found",
            "unauthorized",
            "forbidden",
            "bad_request",
            "route_not_found",
        ] {
            expect_eq(&format!("{must} listed"), codes.contains(&must), true)?;
        }
        Ok(())
    })
}

fn api_key_cases(ctx: &Ctx) -> Vec<Case> {
    let (created, refused, listed, patched, deleted) = (
        unique("key.created"),
        unique("key.refused"),
        unique("key.listed"),
        unique("key.patched"),
        unique("key.deleted"),
    );
    let (right_created, right_old, right_new, right_deleted) = (
        unique("created"),
        unique("torename"),
        unique("renamed"),
        unique("deleted"),
    );
    let keys = || ctx.request("get", "/admin/api-keys");
    let rights_list = || ctx.request("get", "/admin/api-key-rights");
    vec![
        // Creating, deactivating and deleting a key are proven on the data
        // plane, where a key only matters with enforcement on.
        Case::new(
            "post_admin_api_keys",
            "create a key",
            new_key(ctx, &created),
            201,
        )
        .in_phase(Phase::Enforced)
        .check_json(|b| {
            let key = b["api_key"].as_str().unwrap_or_default();
            expect_eq(
                "key format",
                key.starts_with("ath_") && key.contains('.'),
                true,
            )?;
            expect_eq("rights", &b["record"]["rights"], &json!([rights::FETCH]))
        })
        .then_json(keys(), 200, {
            let name = created.clone();
            move |b| {
                let k = entry(b, "api_keys", "name", &name)?.ok_or("the key is not listed")?;
                expect_eq("listed rights", &k["rights"], &json!([rights::FETCH]))?;
                expect_eq("listed is_active", &k["is_active"], &json!(true))
            }
        })
        .then_status(fetch_as(ctx, &ctx.client, Some("{{r.api_key}}")), 200)
        .then_status(
            ctx.request("post", "/gateway/rpc")
                .header("X-Athena-Key", "{{r.api_key}}")
                .json(json!({"function": "conformance_above", "args": {"min_score": 1}})),
            403,
        ),
        Case::new(
            "post_admin_api_keys",
            "an unknown right is refused",
            ctx.request("post", "/admin/api-keys")
                .json(json!({"name": refused, "rights": ["no.such.right"]})),
            400,
        )
        .check(envelope)
        .then_json(
            keys(),
            200,
            lists("api_keys", "name", refused.clone(), false),
        ),
        Case::new(
            "get_admin_api_keys",
            "lists keys without secrets",
            keys(),
            200,
        )
        .after(new_key(ctx, &listed))
        .check_json({
            let name = listed.clone();
            move |b| {
                let keys = b["api_keys"].as_array().ok_or("no api_keys array")?;
                let listed = keys.iter().any(|k| k["name"] == name.as_str());
                let leaks = keys
                    .iter()
                    .any(|k| k.get("api_key").is_some() || k.get("secret_hash").is_some());
                expect_eq("listed, no secrets", (listed, leaks), (true, false))
            }
        }),
        Case::new(
            "patch_admin_api_keys_by_id",
            "deactivate a key",
            ctx.request("patch", "/admin/api-keys/{{0.record.id}}")
                .json(json!({"is_active": false})),
            200,
        )
        .in_phase(Phase::Enforced)
        .after(new_key(ctx, &patched))
        .after(fetch_as(ctx, &ctx.client, Some("{{0.api_key}}")))
        .check_json(|b| expect_eq("is_active", &b["record"]["is_active"], &json!(false)))
        .then_json(keys(), 200, {
            let name = patched.clone();
            move |b| {
                let k = entry(b, "api_keys", "name", &name)?.ok_or("the key is not listed")?;
                expect_eq("listed is_active", &k["is_active"], &json!(false))
            }
        })
        .then_status(fetch_as(ctx, &ctx.client, Some("{{0.api_key}}")), 401),
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
        .in_phase(Phase::Enforced)
        .after(new_key(ctx, &deleted))
        .after(fetch_as(ctx, &ctx.client, Some("{{0.api_key}}")))
        .check_json(|b| expect_eq("id present", b["id"].is_string(), true))
        .then_json(
            keys(),
            200,
            lists("api_keys", "name", deleted.clone(), false),
        )
        .then_status(
            ctx.request("patch", "/admin/api-keys/{{0.record.id}}")
                .json(json!({"is_active": true})),
            404,
        )
        .then_status(fetch_as(ctx, &ctx.client, Some("{{0.api_key}}")), 401),
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
            rights_list(),
            200,
        )
        .check_json(|b| expect_eq("rights array", b["rights"].is_array(), true)),
        Case::new(
            "post_admin_api_key_rights",
            "create a right",
            new_right(ctx, &right_created),
            201,
        )
        .check_json({
            let name = right_created.clone();
            move |b| expect_eq("right name", &b["right"]["name"], &json!(name))
        })
        .then_json(
            rights_list(),
            200,
            lists("rights", "name", right_created.clone(), true),
        )
        .then_json(ctx.request("get", "/admin/rights/catalog"), 200, {
            let name = right_created.clone();
            move |b| {
                let dynamic = b["data"]["dynamicApiKeyRights"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|r| r["name"] == name.as_str()));
                expect_eq("in the catalog's dynamic rights", dynamic, true)
            }
        })
        // A key may now hold it.
        .then_status(
            ctx.request("post", "/admin/api-keys")
                .json(json!({"name": unique("key.with-runtime-right"), "rights": [right_created]})),
            201,
        ),
        Case::new(
            "patch_admin_api_key_rights_by_id",
            "rename a right",
            ctx.request("patch", "/admin/api-key-rights/{{0.right.id}}")
                .json(json!({"name": right_new})),
            200,
        )
        .after(new_right(ctx, &right_old))
        .check_json({
            let name = right_new.clone();
            move |b| expect_eq("renamed", &b["right"]["name"], &json!(name))
        })
        .then_json(
            rights_list(),
            200,
            lists("rights", "name", right_new.clone(), true),
        )
        .then_json(
            rights_list(),
            200,
            lists("rights", "name", right_old.clone(), false),
        ),
        Case::new(
            "delete_admin_api_key_rights_by_id",
            "delete a right",
            ctx.request("delete", "/admin/api-key-rights/{{0.right.id}}"),
            200,
        )
        .after(new_right(ctx, &right_deleted))
        .then_json(
            rights_list(),
            200,
            lists("rights", "name", right_deleted.clone(), false),
        )
        .then_status(
            ctx.request("patch", "/admin/api-key-rights/{{0.right.id}}")
                .json(json!({"name": unique("revived")})),
            404,
        )
        // No key can be given it any more.
        .then_status(
            ctx.request("post", "/admin/api-keys")
                .json(json!({"name": unique("key.with-deleted-right"), "rights": [right_deleted]})),
            400,
        ),
        Case::new(
            "get_admin_rights_catalog",
            "native and runtime rights",
            ctx.request("get", "/admin/rights/catalog"),
            200,
        )
        .check_json(|b| {
            let native: Vec<&str> = b["data"]["nativeRights"]
                .as_array()
                .ok_or("no data.nativeRights array")?
                .iter()
                .filter_map(|r| r["name"].as_str())
                .collect();
            // Every right the enforced pass hands out is a native one.
            let missing: Vec<&str> = rights::DATA_PLANE
                .iter()
                .copied()
                .filter(|r| !native.contains(r))
                .collect();
            expect_eq(
                "data-plane rights missing from the catalog",
                missing,
                vec![],
            )
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
        // `PUT /admin/api-key-config` flips enforcement around the enforced
        // pass (`cases::enforced`).
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
        .check_json(lists(
            "clients",
            "client_name",
            "conf_enforced".into(),
            true,
        )),
        // The override is written opposite first, so the case flips it; a
        // keyless read as that client is then refused (global enforcement
        // is off in this phase), while the suite's own client still reads.
        Case::new(
            "put_admin_api_key_clients_by_client_name",
            "turn enforcement on for one client",
            ctx.request("put", "/admin/api-key-clients/conf_override")
                .json(json!({"enforce_api_keys": true})),
            200,
        )
        .after(save(ctx, "conf_override"))
        .after(
            ctx.request("put", "/admin/api-key-clients/conf_override")
                .json(json!({"enforce_api_keys": false})),
        )
        .after(fetch_as(ctx, "conf_override", Some("")))
        .check_json(|b| {
            expect_eq(
                "client",
                &b["client"]["client_name"],
                &json!("conf_override"),
            )?;
            expect_eq(
                "enforce_api_keys",
                &b["client"]["enforce_api_keys"],
                &json!(true),
            )
        })
        .then_json(ctx.request("get", "/admin/api-key-clients"), 200, |b| {
            let c = entry(b, "clients", "client_name", "conf_override")?
                .ok_or("the override is not listed")?;
            expect_eq(
                "listed enforce_api_keys",
                &c["enforce_api_keys"],
                &json!(true),
            )
        })
        .then_status(fetch_as(ctx, "conf_override", Some("")), 401)
        .then_status(fetch_as(ctx, &ctx.client, Some("")), 200),
        // Removing an override that enforced keys: the client follows the
        // global setting (off here) again.
        Case::new(
            "delete_admin_api_key_clients_by_client_name",
            "remove a per-client override",
            ctx.request("delete", "/admin/api-key-clients/conf_removed"),
            200,
        )
        .after(save(ctx, "conf_removed"))
        .after(
            ctx.request("put", "/admin/api-key-clients/conf_removed")
                .json(json!({"enforce_api_keys": true})),
        )
        .check_json(|b| expect_eq("client_name", &b["client_name"], &json!("conf_removed")))
        .then_json(
            ctx.request("get", "/admin/api-key-clients"),
            200,
            lists("clients", "client_name", "conf_removed".into(), false),
        )
        .then_status(fetch_as(ctx, "conf_removed", Some("")), 200)
        .then_status(
            ctx.request("delete", "/admin/api-key-clients/conf_removed"),
            404,
        ),
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
    let admin_clients = || ctx.request("get", "/admin/clients");
    let description = format!("patched {}", uuid::Uuid::new_v4().simple());
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
        })
        .then_json(
            admin_clients(),
            200,
            lists("clients", "client_name", "conf_saved".into(), true),
        )
        .then_json(ctx.request("get", "/clients"), 200, |b| {
            let names = b["clients"].as_array().ok_or("no clients array")?;
            expect_eq(
                "conf_saved in /clients",
                names.contains(&json!("conf_saved")),
                true,
            )
        })
        // The client routes to its database.
        .then_json(fetch_as(ctx, "conf_saved", None), 200, |b| {
            expect_eq("rows", super::rows(b)?.len(), 1)
        }),
        Case::new(
            "post_admin_clients",
            "a client needs a URI",
            ctx.request("post", "/admin/clients")
                .json(json!({"client_name": "conf_nouri_x"})),
            400,
        )
        .check(envelope)
        .then_json(
            admin_clients(),
            200,
            lists("clients", "client_name", "conf_nouri_x".into(), false),
        ),
        Case::new(
            "get_admin_clients",
            "lists the saved client",
            admin_clients(),
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
        // A description of its own per run: the patch always changes it.
        Case::new(
            "patch_admin_clients_by_client_name",
            "update the description",
            ctx.request("patch", "/admin/clients/conf_patched")
                .json(json!({"description": description})),
            200,
        )
        .after(save(ctx, "conf_patched"))
        .check_json({
            let want = description.clone();
            move |b| {
                expect_eq(
                    "description",
                    client_field(b, "description"),
                    Some(&json!(want)),
                )
            }
        })
        .then_json(admin_clients(), 200, {
            let want = description.clone();
            move |b| {
                let c = entry(b, "clients", "client_name", "conf_patched")?
                    .ok_or("the client is not listed")?;
                expect_eq("listed description", &c["description"], &json!(want))
            }
        }),
        // Unfrozen first, so the case flips the flag; a frozen client
        // answers 403 on the data plane.
        Case::new(
            "put_admin_clients_by_client_name_freeze",
            "freeze a client",
            ctx.request("put", "/admin/clients/conf_frozen/freeze")
                .json(json!({"is_frozen": true})),
            200,
        )
        .after(save(ctx, "conf_frozen"))
        .after(
            ctx.request("put", "/admin/clients/conf_frozen/freeze")
                .json(json!({"is_frozen": false})),
        )
        .after(fetch_as(ctx, "conf_frozen", None))
        .check_json(|b| {
            expect_eq(
                "is_frozen",
                client_field(b, "is_frozen"),
                Some(&json!(true)),
            )
        })
        .then_json(admin_clients(), 200, |b| {
            let c = entry(b, "clients", "client_name", "conf_frozen")?
                .ok_or("the client is not listed")?;
            expect_eq("listed is_frozen", &c["is_frozen"], &json!(true))
        })
        .then_status(fetch_as(ctx, "conf_frozen", None), 403),
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
        .after(fetch_as(ctx, "conf_deleted", None))
        .check_json(|b| {
            let deleted = client_field(b, "deleted_at").is_some_and(Value::is_string);
            expect_eq("deleted_at set", deleted, true)
        })
        .then_json(
            admin_clients(),
            200,
            lists("clients", "client_name", "conf_deleted".into(), false),
        )
        .then_json(ctx.request("get", "/clients"), 200, |b| {
            let names = b["clients"].as_array().ok_or("no clients array")?;
            expect_eq(
                "conf_deleted in /clients",
                names.contains(&json!("conf_deleted")),
                false,
            )
        })
        .then_status(fetch_as(ctx, "conf_deleted", None), 404)
        .then_status(ctx.request("delete", "/admin/clients/conf_deleted"), 404),
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
