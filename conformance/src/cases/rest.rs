//! REST family: `GET /rest/v1/{table}` (PostgREST-style) on the fixture table.

use super::{envelope, expect_eq, expect_json, ids, rows, Case, Ctx, TABLE};
use crate::http::Request;
use serde_json::{json, Value};

const OP: &str = "get_rest_v1_by_table";

fn get(ctx: &Ctx, table: &str) -> Request {
    ctx.request("get", &format!("/rest/v1/{table}"))
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    vec![
        Case::new(
            OP,
            "filter id=eq.2",
            get(ctx, TABLE).query("id", "eq.2"),
            200,
        )
        .check_json(|b| {
            let rows = rows(b)?;
            expect_eq("ids", ids(rows), vec![2])?;
            expect_eq(
                "name",
                rows[0].get("name").and_then(Value::as_str),
                Some("beta"),
            )
        }),
        Case::new(
            OP,
            "filter name.eq=gamma",
            get(ctx, TABLE).query("name.eq", "gamma"),
            200,
        )
        .check_json(|b| expect_eq("ids", ids(rows(b)?), vec![3])),
        Case::new(
            OP,
            "order and limit",
            get(ctx, TABLE)
                .query("order", "id.desc")
                .query("limit", "2"),
            200,
        )
        .check(|r| {
            let b = r.json()?;
            expect_eq("ids", ids(rows(&b)?), vec![3, 2])?;
            match r.header("content-range") {
                Some(v) if !v.is_empty() => Ok(()),
                _ => Err("no Content-Range header".into()),
            }
        }),
        Case::new(
            OP,
            "select and offset",
            get(ctx, TABLE)
                .query("select", "id,name")
                .query("order", "id.asc")
                .query("offset", "1"),
            200,
        )
        .check_json(|b| {
            expect_json(
                "data",
                rows(b)?,
                &vec![
                    json!({"id": 2, "name": "beta"}),
                    json!({"id": 3, "name": "gamma"}),
                ],
            )
        }),
        Case::new(
            OP,
            "missing X-Athena-Client is 400",
            get(ctx, TABLE).without_header("X-Athena-Client"),
            400,
        )
        .check(envelope),
        Case::new(
            OP,
            "unknown client is 404",
            get(ctx, TABLE).header("X-Athena-Client", "conformance-no-such-client"),
            404,
        )
        .check(envelope),
        Case::new(
            OP,
            "unknown table is an error",
            get(ctx, "conformance_no_such_table"),
            404,
        )
        .any_of(&[400, 404])
        .check(envelope),
    ]
}
