//! Tenant hostnames, service routes, pools and `/debug/gateway` (issue 13).
//! Every case works on a tenant label of its own (fresh per run) and reads
//! its effect back: the public-route list and a fetch through the tenant's
//! host (the run sets `ATHENA_WILDCARD_HOST_PATTERN=*.conformance.test`),
//! the service-route list, the pool and routing reports.

use super::{envelope, expect_eq, rows, Case, Ctx, TABLE};
use crate::http::Request;
use serde_json::{json, Value};

/// The run's wildcard host suffix (`scripts/conformance-run`).
const SUFFIX: &str = ".conformance.test";

fn label() -> String {
    format!("conf-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

fn put_host(ctx: &Ctx, tenant: &str, body: Value) -> Request {
    ctx.request("put", &format!("/admin/tenant-hostnames/{tenant}"))
        .json(body)
}

/// A fetch of the fixture table on a tenant host, naming no client.
fn fetch_on_host(ctx: &Ctx, tenant: &str) -> Request {
    let mut r = Request::new("post", "/gateway/fetch")
        .header("Host", &format!("{tenant}{SUFFIX}"))
        .json(json!({"table_name": TABLE}));
    if let Some(key) = &ctx.admin_key {
        r = r.header("X-Athena-Key", key);
    }
    r
}

fn public_routes(ctx: &Ctx) -> Request {
    ctx.request("get", "/admin/public-routes")
}

fn listed_route<'a>(b: &'a Value, key: &str) -> Result<Option<&'a Value>, String> {
    Ok(b["routes"]
        .as_array()
        .ok_or("no `routes` array")?
        .iter()
        .find(|r| r["route_key"] == key))
}

fn bindings(ctx: &Ctx, route_key: &str) -> Request {
    ctx.request("get", "/admin/service-routes")
        .query("route_key", route_key)
}

fn bind(ctx: &Ctx, route_key: &str, service: &str) -> Request {
    ctx.request("post", "/admin/service-routes").json(json!({
        "route_key": route_key,
        "service_key": service,
        "client_name": ctx.client,
        "upstream_url": "https://upstream.example.com/v1",
        "metadata": {"note": "conformance"},
    }))
}

/// The bindings in a `GET /admin/service-routes` body.
fn data_list(b: &Value) -> Result<&Vec<Value>, String> {
    b["data"]
        .as_array()
        .ok_or_else(|| "no `data` array".to_string())
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    let mut cases = hostname_cases(ctx);
    cases.extend(service_route_cases(ctx));
    cases.extend(runtime_cases(ctx));
    cases
}

fn hostname_cases(ctx: &Ctx) -> Vec<Case> {
    let (onboarded, refused) = (label(), label());
    vec![
        Case::new(
            "put_admin_tenant_hostnames_by_tenant",
            "onboard a tenant host",
            put_host(
                ctx,
                &onboarded.to_uppercase(),
                json!({"client_name": ctx.client, "allowed_ops": ["fetch"]}),
            ),
            200,
        )
        .check_json({
            let key = onboarded.clone();
            move |b| {
                expect_eq("tenant", &b["data"]["tenant"], &json!(key))?;
                expect_eq(
                    "hostname",
                    &b["data"]["hostname"],
                    &json!(format!("{key}{SUFFIX}")),
                )?;
                expect_eq(
                    "allowed_ops",
                    &b["data"]["http_route"]["allowed_ops"],
                    &json!(["fetch"]),
                )
            }
        })
        .then_json(public_routes(ctx), 200, {
            let (key, client) = (onboarded.clone(), ctx.client.clone());
            move |b| {
                let route = listed_route(b, &key)?.ok_or("the host's route is not listed")?;
                expect_eq("route client", &route["client_name"], &json!(client))
            }
        })
        .then_json(fetch_on_host(ctx, &onboarded), 200, |b| {
            let n = rows(b)?.len();
            if n == 0 {
                return Err("the fetch on the tenant host read no rows".into());
            }
            Ok(())
        }),
        Case::new(
            "put_admin_tenant_hostnames_by_tenant",
            "a label that is not one host label is 400",
            put_host(ctx, "a.b", json!({"client_name": ctx.client})),
            400,
        )
        .check(envelope)
        .then_json(public_routes(ctx), 200, |b| {
            expect_eq("route a.b listed", listed_route(b, "a.b")?.is_some(), false)
        }),
        Case::new(
            "put_admin_tenant_hostnames_by_tenant",
            "an unknown client is 404",
            put_host(
                ctx,
                &refused,
                json!({"client_name": "conformance_no_such_client"}),
            ),
            404,
        )
        .check(envelope)
        .then_json(public_routes(ctx), 200, {
            let key = refused.clone();
            move |b| {
                expect_eq(
                    "refused route listed",
                    listed_route(b, &key)?.is_some(),
                    false,
                )
            }
        })
        .then_status(fetch_on_host(ctx, &refused), 404),
    ]
}

fn service_route_cases(ctx: &Ctx) -> Vec<Case> {
    let (listed, created, refused, patched, deleted) =
        (label(), label(), label(), label(), label());
    vec![
        Case::new(
            "get_admin_service_routes",
            "lists a host's bindings",
            bindings(ctx, &listed),
            200,
        )
        .after(bind(ctx, &listed, "rest"))
        .check_json(|b| {
            let list = data_list(b)?;
            expect_eq("bindings", list.len(), 1)?;
            expect_eq("service_key", &list[0]["service_key"], &json!("rest"))
        }),
        Case::new(
            "post_admin_service_routes",
            "bind a family to a host",
            bind(ctx, &created, "gateway"),
            200,
        )
        .check_json(|b| {
            expect_eq("service_key", &b["data"]["service_key"], &json!("gateway"))?;
            expect_eq("is_active", &b["data"]["is_active"], &json!(true))
        })
        .then_json(bindings(ctx, &created), 200, {
            let client = ctx.client.clone();
            move |b| {
                let list = data_list(b)?;
                expect_eq("bindings", list.len(), 1)?;
                expect_eq("client_name", &list[0]["client_name"], &json!(client))?;
                expect_eq(
                    "upstream_url",
                    &list[0]["upstream_url"],
                    &json!("https://upstream.example.com/v1"),
                )
            }
        }),
        Case::new(
            "post_admin_service_routes",
            "an unknown service family is 400",
            ctx.request("post", "/admin/service-routes").json(json!({
                "route_key": refused, "service_key": "admin", "client_name": ctx.client,
            })),
            400,
        )
        .check(envelope)
        .then_json(bindings(ctx, &refused), 200, |b| {
            expect_eq("bindings", data_list(b)?.len(), 0)
        }),
        Case::new(
            "patch_admin_service_routes_by_route_key_by_service_key",
            "deactivate a binding",
            ctx.request("patch", &format!("/admin/service-routes/{patched}/storage"))
                .json(json!({"is_active": false, "upstream_url": ""})),
            200,
        )
        .after(bind(ctx, &patched, "storage"))
        .check_json(|b| expect_eq("is_active", &b["data"]["is_active"], &json!(false)))
        .then_json(bindings(ctx, &patched), 200, |b| {
            let list = data_list(b)?;
            expect_eq("bindings", list.len(), 1)?;
            expect_eq("listed is_active", &list[0]["is_active"], &json!(false))?;
            expect_eq(
                "listed upstream_url",
                &list[0]["upstream_url"],
                &Value::Null,
            )
        }),
        Case::new(
            "patch_admin_service_routes_by_route_key_by_service_key",
            "an unknown pair is 404",
            ctx.request("patch", &format!("/admin/service-routes/{}/chat", label()))
                .json(json!({"is_active": false})),
            404,
        )
        .check(envelope),
        Case::new(
            "delete_admin_service_routes_by_route_key_by_service_key",
            "delete a binding",
            ctx.request("delete", &format!("/admin/service-routes/{deleted}/chat")),
            200,
        )
        .after(bind(ctx, &deleted, "chat"))
        .check_json(|b| expect_eq("service_key", &b["data"]["service_key"], &json!("chat")))
        .then_json(bindings(ctx, &deleted), 200, |b| {
            expect_eq("bindings", data_list(b)?.len(), 0)
        })
        .then_status(
            ctx.request("delete", &format!("/admin/service-routes/{deleted}/chat")),
            404,
        ),
        Case::new(
            "delete_admin_service_routes_by_route_key_by_service_key",
            "an unknown pair is 404",
            ctx.request("delete", &format!("/admin/service-routes/{}/rest", label())),
            404,
        )
        .check(envelope),
    ]
}

fn runtime_cases(ctx: &Ctx) -> Vec<Case> {
    let routed = label();
    // The pool probe runs on a client of its own: cases that change the
    // conformance client (a tenant hostname's metadata) drop its pool on
    // the server, concurrently with this read.
    let (pool_client, register) = match &ctx.tenant_db_url {
        Some(uri) => {
            let name = format!(
                "conf_pool_{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            );
            let register = ctx
                .request("post", "/admin/clients")
                .json(json!({"client_name": name, "pg_uri": uri, "description": "conformance"}));
            (name, Some(register))
        }
        None => (ctx.client.clone(), None),
    };
    let mut pools = Case::new(
        "get_admin_pools",
        "lists the pool of a client that served a request",
        ctx.request("get", "/admin/pools"),
        200,
    );
    if let Some(register) = register {
        pools = pools.after(register);
    }
    vec![
        pools
            .after(
                ctx.request("post", "/gateway/fetch")
                    .header("X-Athena-Client", &pool_client)
                    .json(json!({"table_name": TABLE})),
            )
            .check_json({
                let client = pool_client.clone();
                move |b| {
                    let pools = b["data"]["pools"]
                        .as_array()
                        .ok_or("no `data.pools` array")?;
                    let pool = pools
                        .iter()
                        .find(|p| p["client_name"] == client.as_str())
                        .ok_or("the client's pool is not listed")?;
                    for field in ["size", "idle", "active", "max", "waits", "timeouts"] {
                        if !pool[field].is_u64() {
                            return Err(format!("`{field}` is not a count: {pool}"));
                        }
                    }
                    if !b["data"]["direct_uri_pools"].is_u64() {
                        return Err("no `direct_uri_pools` count".into());
                    }
                    Ok(())
                }
            }),
        Case::new(
            "get_debug_gateway",
            "reports a tenant host's routing",
            ctx.request("get", "/debug/gateway"),
            200,
        )
        .after(put_host(ctx, &routed, json!({"client_name": ctx.client})))
        .check_json({
            let (key, client) = (routed.clone(), ctx.client.clone());
            move |b| {
                let d = &b["data"];
                expect_eq(
                    "wildcard pattern",
                    &d["routing"]["wildcard_host_pattern"],
                    &json!(format!("*{SUFFIX}")),
                )?;
                let entry = d["routing"]["clients"]
                    .as_array()
                    .ok_or("no `routing.clients`")?
                    .iter()
                    .find(|c| c["client_name"] == client.as_str())
                    .ok_or("the client's routing is not listed")?;
                let hosts: Vec<&Value> = entry["public_routes"]
                    .as_array()
                    .ok_or("no `public_routes`")?
                    .iter()
                    .map(|r| &r["host"])
                    .collect();
                if !hosts.contains(&&json!(format!("{key}{SUFFIX}"))) {
                    return Err(format!("the tenant host is not reported: {hosts:?}"));
                }
                if !d["deferred_queue"]["queued"].is_u64() {
                    return Err("no deferred queue depth".into());
                }
                Ok(())
            }
        }),
    ]
}
