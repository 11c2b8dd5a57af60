//! Public routes: `/admin/public-routes*` and `POST /public/{route_key}/{op}`.
//! Every case creates its own route (a fresh key per run) in setup steps.
//!
//! The contract declares these 2xx responses without content; a body, when
//! the server sends one, is checked (shape and effect), an empty one is not.

use super::{envelope, expect_eq, rows, Case, Ctx, TABLE};
use crate::fixtures::WRITES_TABLE;
use crate::http::{Request, Response};
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

/// Checks a success body when there is one.
fn when_body(
    f: impl Fn(&Value) -> Result<(), String> + Send + Sync + 'static,
) -> impl Fn(&Response) -> Result<(), String> + Send + Sync + 'static {
    move |r| {
        if r.body.is_empty() {
            return Ok(());
        }
        f(&r.json()?)
    }
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
        if r.body.is_empty() {
            return Ok(());
        }
        expect_eq("client named", names(&r.json()?, &client), false)
    }
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    let mut cases = admin_cases(ctx);
    cases.extend(public_cases(ctx));
    cases
}

fn admin_cases(ctx: &Ctx) -> Vec<Case> {
    let (created, listed, dup, patched, deleted) = (
        route_key(),
        route_key(),
        route_key(),
        route_key(),
        route_key(),
    );
    let want_created = created.clone();
    let want_listed = listed.clone();
    vec![
        Case::new(
            "post_admin_public_routes",
            "create a route",
            create(ctx, &created, &["fetch", "insert"]),
            201,
        )
        .check(when_body(move |b| {
            expect_eq("route_key", &b["route"]["route_key"], &json!(want_created))?;
            expect_eq(
                "allowed_ops",
                &b["route"]["allowed_ops"],
                &json!(["fetch", "insert"]),
            )
        })),
        Case::new(
            "post_admin_public_routes",
            "an unknown operation is refused",
            create(ctx, &route_key(), &["drop"]),
            400,
        )
        .check(envelope),
        Case::new(
            "post_admin_public_routes",
            "a taken route key is 409",
            create(ctx, &dup, &["fetch"]),
            409,
        )
        .after(create(ctx, &dup, &["fetch"]))
        .check(envelope),
        Case::new(
            "get_admin_public_routes",
            "lists routes",
            ctx.request("get", "/admin/public-routes"),
            200,
        )
        .after(create(ctx, &listed, &["fetch"]))
        .check(when_body(move |b| {
            let found = b["routes"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["route_key"] == want_listed.as_str()));
            expect_eq("route listed", found, true)
        })),
        Case::new(
            "patch_admin_public_routes_by_route_key",
            "deactivate a route",
            ctx.request("patch", &format!("/admin/public-routes/{patched}"))
                .json(json!({"is_active": false})),
            200,
        )
        .after(create(ctx, &patched, &["fetch"]))
        .check(when_body(|b| {
            expect_eq("is_active", &b["route"]["is_active"], &json!(false))
        })),
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
        .after(create(ctx, &deleted, &["fetch"])),
        Case::new(
            "delete_admin_public_routes_by_route_key",
            "an unknown route is 404",
            ctx.request("delete", &format!("/admin/public-routes/{}", route_key())),
            404,
        )
        .check(envelope),
    ]
}

fn public_cases(ctx: &Ctx) -> Vec<Case> {
    let (fetched, inserted, narrow, inactive, gone) = (
        route_key(),
        route_key(),
        route_key(),
        route_key(),
        route_key(),
    );
    let fetch = json!({"table_name": TABLE, "sort_by": "id"});
    let client = ctx.client.clone();
    let hidden = hides(client.clone());
    vec![
        Case::new(
            PUBLIC,
            "fetch through a route",
            public(ctx, &fetched, "fetch", fetch.clone()),
            200,
        )
        .after(create(ctx, &fetched, &["fetch"]))
        .check(move |r| {
            hidden(r)?;
            when_body(|b| {
                let names: Vec<&str> = rows(b)?.iter().filter_map(|r| r["name"].as_str()).collect();
                expect_eq("rows", names, vec!["alpha", "beta", "gamma"])
            })(r)
        }),
        Case::new(
            PUBLIC,
            "insert through a route",
            public(
                ctx,
                &inserted,
                "insert",
                json!({"table_name": WRITES_TABLE, "insert_body": {"name": "public-route", "score": 7}}),
            ),
            200,
        )
        .after(create(ctx, &inserted, &["insert"]))
        .check({
            let hidden = hides(client.clone());
            move |r| {
                hidden(r)?;
                when_body(|b| expect_eq("inserted", &b["data"]["name"], &json!("public-route")))(r)
            }
        }),
        Case::new(
            PUBLIC,
            "an unknown route is 404",
            public(ctx, &gone, "fetch", fetch.clone()),
            404,
        )
        .check(envelope),
        Case::new(
            PUBLIC,
            "an operation the route does not allow is 403",
            public(
                ctx,
                &narrow,
                "delete",
                json!({"table_name": WRITES_TABLE, "conditions": [{"eq_column": "id", "eq_value": 1}]}),
            ),
            403,
        )
        .after(create(ctx, &narrow, &["fetch"]))
        .check(envelope),
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
        .check(envelope),
        Case::new(
            PUBLIC,
            "an unknown operation is 400",
            public(ctx, &route_key(), "truncate", fetch),
            400,
        )
        .check(envelope),
    ]
}
