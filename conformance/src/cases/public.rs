//! Public routes: `/admin/public-routes*` and `POST /public/{route_key}/{op}`.
//! Every case creates its own route (a fresh key per run) in setup steps.
//! Each change to a route is read back (the list, and a call through the
//! route), and every success answers a JSON body that is checked.

use super::{envelope, expect_eq, rows, rows_are, Case, Ctx, TABLE};
use crate::http::{Request, Response};
use crate::rights;
use serde_json::{json, Value};

const PUBLIC: &str = "post_public_by_route_key_by_op";

fn route_key() -> String {
    format!("conf-{}", uuid::Uuid::new_v4().simple())
}

fn create(ctx: &Ctx, key: &str, ops: &[&str]) -> Request {
    ctx.request("post", "/admin/public-routes")
        .json(json!({"route_key": key, "client_name": ctx.client, "allowed_ops": ops}))
}

fn public(ctx: &Ctx, key: &str, op: &str, body: Value) -> Request {
    ctx.request("post", &format!("/public/{key}/{op}"))
        .json(body)
}

/// A fetch of the fixture rows through a route.
fn fetch_through(ctx: &Ctx, key: &str) -> Request {
    public(
        ctx,
        key,
        "fetch",
        json!({"table_name": TABLE, "sort_by": "id"}),
    )
}

/// The route with this key in a `GET /admin/public-routes` body.
fn listed<'a>(b: &'a Value, key: &str) -> Result<Option<&'a Value>, String> {
    Ok(b["routes"]
        .as_array()
        .ok_or("no `routes` array")?
        .iter()
        .find(|r| r["route_key"] == key))
}

fn list(ctx: &Ctx) -> Request {
    ctx.request("get", "/admin/public-routes")
}

/// The fixture names in a fetch body.
fn fixture_names(b: &Value) -> Result<(), String> {
    let names: Vec<&str> = rows(b)?.iter().filter_map(|r| r["name"].as_str()).collect();
    expect_eq("rows", names, vec!["alpha", "beta", "gamma"])
}

/// No string anywhere in a public response is the client's name.
fn hides(client: String) -> impl Fn(&Response) -> Result<(), String> + Send + Sync + 'static {
    move |r| {
        fn names(v: &Value, client: &str) -> bool {
            match v {
                Value::String(s) => s == client || s.contains(&format!("`{client}`")),
                Value::Array(a) => a.iter().any(|v| names(v, client)),
                Value::Object(m) => m.values().any(|v| names(v, client)),
                _ => false,
            }
        }
        expect_eq("client named", names(&r.json()?, &client), false)
    }
}

pub fn admin_cases(ctx: &Ctx) -> Vec<Case> {
    let (created, listed_key, dup, patched, deleted, refused) = (
        route_key(),
        route_key(),
        route_key(),
        route_key(),
        route_key(),
        route_key(),
    );
    vec![
        Case::new(
            "post_admin_public_routes",
            "create a route",
            create(ctx, &created, &["fetch", "insert"]),
            201,
        )
        .check_json({
            let key = created.clone();
            move |b| {
                expect_eq("route_key", &b["route"]["route_key"], &json!(key))?;
                expect_eq("is_active", &b["route"]["is_active"], &json!(true))?;
                expect_eq(
                    "allowed_ops",
                    &b["route"]["allowed_ops"],
                    &json!(["fetch", "insert"]),
                )
            }
        })
        .then_json(list(ctx), 200, {
            let key = created.clone();
            move |b| {
                let route = listed(b, &key)?.ok_or("the created route is not listed")?;
                expect_eq(
                    "listed allowed_ops",
                    &route["allowed_ops"],
                    &json!(["fetch", "insert"]),
                )
            }
        })
        .then_json(fetch_through(ctx, &created), 200, fixture_names),
        Case::new(
            "post_admin_public_routes",
            "an unknown operation is refused",
            create(ctx, &refused, &["drop"]),
            400,
        )
        .check(envelope)
        .then_json(list(ctx), 200, {
            let key = refused.clone();
            move |b| expect_eq("refused route listed", listed(b, &key)?.is_some(), false)
        }),
        Case::new(
            "post_admin_public_routes",
            "a taken route key is 409",
            create(ctx, &dup, &["insert"]),
            409,
        )
        .after(create(ctx, &dup, &["fetch"]))
        .check(envelope)
        .then_json(list(ctx), 200, {
            let key = dup.clone();
            move |b| {
                let route = listed(b, &key)?.ok_or("the first route is not listed")?;
                expect_eq(
                    "first route's ops kept",
                    &route["allowed_ops"],
                    &json!(["fetch"]),
                )
            }
        }),
        Case::new("get_admin_public_routes", "lists routes", list(ctx), 200)
            .after(create(ctx, &listed_key, &["fetch"]))
            .check_json({
                let (key, client) = (listed_key.clone(), ctx.client.clone());
                move |b| {
                    let route = listed(b, &key)?.ok_or("the route is not listed")?;
                    expect_eq("client_name", &route["client_name"], &json!(client))
                }
            }),
        Case::new(
            "patch_admin_public_routes_by_route_key",
            "deactivate a route",
            ctx.request("patch", &format!("/admin/public-routes/{patched}"))
                .json(json!({"is_active": false})),
            200,
        )
        .after(create(ctx, &patched, &["fetch"]))
        .check_json(|b| expect_eq("is_active", &b["route"]["is_active"], &json!(false)))
        .then_json(list(ctx), 200, {
            let key = patched.clone();
            move |b| {
                let route = listed(b, &key)?.ok_or("the route is not listed")?;
                expect_eq("listed is_active", &route["is_active"], &json!(false))
            }
        })
        .then_status(fetch_through(ctx, &patched), 403),
        Case::new(
            "patch_admin_public_routes_by_route_key",
            "an unknown route is 404",
            ctx.request("patch", &format!("/admin/public-routes/{}", route_key()))
                .json(json!({"is_active": false})),
            404,
        )
        .check(envelope),
        Case::new(
            "delete_admin_public_routes_by_route_key",
            "delete a route",
            ctx.request("delete", &format!("/admin/public-routes/{deleted}")),
            200,
        )
        .after(create(ctx, &deleted, &["fetch"]))
        .check_json({
            let key = deleted.clone();
            move |b| expect_eq("route_key", &b["route"]["route_key"], &json!(key))
        })
        .then_json(list(ctx), 200, {
            let key = deleted.clone();
            move |b| expect_eq("deleted route listed", listed(b, &key)?.is_some(), false)
        })
        .then_status(fetch_through(ctx, &deleted), 404)
        .then_status(
            ctx.request("delete", &format!("/admin/public-routes/{deleted}")),
            404,
        ),
        Case::new(
            "delete_admin_public_routes_by_route_key",
            "an unknown route is 404",
            ctx.request("delete", &format!("/admin/public-routes/{}", route_key())),
            404,
        )
        .check(envelope),
    ]
}

pub fn public_cases(ctx: &Ctx) -> Vec<Case> {
    let (fetched, inserted, narrow, inactive, gone) = (
        route_key(),
        route_key(),
        route_key(),
        route_key(),
        route_key(),
    );
    let fetch = json!({"table_name": TABLE, "sort_by": "id"});
    let client = ctx.client.clone();
    vec![
        Case::new(
            PUBLIC,
            "fetch through a route",
            public(ctx, &fetched, "fetch", fetch.clone()),
            200,
        )
        .after(create(ctx, &fetched, &["fetch"]))
        .rights(&[rights::FETCH])
        .check({
            let hidden = hides(client.clone());
            move |r| {
                hidden(r)?;
                fixture_names(&r.json()?)
            }
        }),
        Case::new(
            PUBLIC,
            "insert through a route",
            public(
                ctx,
                &inserted,
                "insert",
                json!({"table_name": ctx.writes, "insert_body": {"name": "public-route", "score": 7}}),
            ),
            200,
        )
        .after(create(ctx, &inserted, &["insert"]))
        .rights(&[rights::INSERT])
        .check({
            let hidden = hides(client.clone());
            move |r| {
                hidden(r)?;
                expect_eq("inserted", &r.json()?["data"]["name"], &json!("public-route"))
            }
        })
        .then_db(
            ctx.written("name, score", &["public-route"]),
            rows_are(json!([{"name": "public-route", "score": 7}])),
        ),
        Case::new(
            PUBLIC,
            "an unknown route is 404",
            public(ctx, &gone, "fetch", fetch.clone()),
            404,
        )
        .rights(&[rights::FETCH])
        .check(envelope),
        Case::new(
            PUBLIC,
            "an operation the route does not allow is 403",
            public(
                ctx,
                &narrow,
                "delete",
                json!({"table_name": ctx.writes,
                       "conditions": [{"eq_column": "name", "eq_value": "public-narrow-keep"}]}),
            ),
            403,
        )
        .after(create(ctx, &narrow, &["fetch"]))
        .after(
            ctx.request("put", "/gateway/insert")
                .json(json!({"table_name": ctx.writes, "insert_body": {"name": "public-narrow-keep"}})),
        )
        .rights(&[rights::DELETE])
        .check(envelope)
        .then_db(
            ctx.written("name", &["public-narrow-keep"]),
            rows_are(json!([{"name": "public-narrow-keep"}])),
        ),
        Case::new(
            PUBLIC,
            "an inactive route is 403",
            public(ctx, &inactive, "fetch", fetch.clone()),
            403,
        )
        .after(create(ctx, &inactive, &["fetch"]))
        .after(
            ctx.request("patch", &format!("/admin/public-routes/{inactive}"))
                .json(json!({"is_active": false})),
        )
        .rights(&[rights::FETCH])
        .check(envelope),
        Case::new(
            PUBLIC,
            "an unknown operation is 400",
            public(ctx, &route_key(), "truncate", fetch),
            400,
        )
        // No operation, no right: the request is refused before any key check.
        .rights(&[])
        .check(envelope),
    ]
}
