//! Gateway family: `POST /gateway/fetch` against the fixture table.

use super::{envelope, expect_eq, expect_json, ids, rows, Case, Ctx, TABLE};
use crate::http::Request;
use serde_json::{json, Value};

const OP: &str = "post_gateway_fetch";

fn fetch(ctx: &Ctx, body: Value) -> Request {
    ctx.request("post", "/gateway/fetch").json(body)
}

fn names(rows: &[Value]) -> Vec<String> {
    let mut n: Vec<String> = rows
        .iter()
        .filter_map(|r| r.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    n.sort();
    n
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    vec![
        Case::new(
            OP,
            "fetch by id returns exactly that row",
            fetch(
                ctx,
                json!({"table_name": TABLE, "columns": ["id", "name"],
                       "conditions": [{"eq_column": "id", "eq_value": "2"}]}),
            ),
            200,
        )
        .check_json(|b| {
            expect_eq(
                "status",
                b.get("status").and_then(Value::as_str),
                Some("success"),
            )?;
            expect_json("data", rows(b)?, &vec![json!({"id": 2, "name": "beta"})])?;
            expect_eq(
                "message",
                b.get("message").and_then(Value::as_str),
                Some("Fetched 1 rows"),
            )
        }),
        Case::new(
            OP,
            "fetch * returns every fixture row",
            fetch(ctx, json!({"table_name": TABLE, "columns": "*"})),
            200,
        )
        .check_json(|b| {
            let rows = rows(b)?;
            expect_eq(
                "names",
                names(rows),
                vec!["alpha".into(), "beta".into(), "gamma".into()],
            )?;
            let alpha = rows
                .iter()
                .find(|r| r["name"] == "alpha")
                .ok_or("no alpha row")?;
            expect_json(
                "alpha",
                alpha,
                &json!({"id": 1, "name": "alpha", "score": 10, "note": null}),
            )
        }),
        Case::new(
            OP,
            "fetch honours limit",
            fetch(
                ctx,
                json!({"table_name": TABLE, "columns": ["id"], "limit": 2}),
            ),
            200,
        )
        .check_json(|b| {
            expect_eq("rows", rows(b)?.len(), 2)?;
            expect_eq(
                "message",
                b.get("message").and_then(Value::as_str),
                Some("Fetched 2 rows"),
            )
        }),
        Case::new(
            OP,
            "fetch by a non-key column",
            fetch(
                ctx,
                json!({"table_name": TABLE, "columns": ["id", "score"],
                       "conditions": [{"eq_column": "name", "eq_value": "gamma"}]}),
            ),
            200,
        )
        .check_json(|b| expect_json("data", rows(b)?, &vec![json!({"id": 3, "score": 30})])),
        Case::new(
            OP,
            "fetch with no match returns no rows",
            fetch(
                ctx,
                json!({"table_name": TABLE, "columns": "*",
                       "conditions": [{"eq_column": "id", "eq_value": "999"}]}),
            ),
            200,
        )
        .check_json(|b| expect_eq("ids", ids(rows(b)?), vec![])),
        Case::new(
            OP,
            "unknown client is 404",
            fetch(ctx, json!({"table_name": TABLE, "columns": "*"}))
                .header("X-Athena-Client", "conformance-no-such-client"),
            404,
        )
        .check(envelope),
        Case::new(
            OP,
            "missing X-Athena-Client is 400",
            fetch(ctx, json!({"table_name": TABLE, "columns": "*"}))
                .without_header("X-Athena-Client"),
            400,
        )
        .check(envelope),
        Case::new(
            OP,
            "unknown table is an error",
            fetch(
                ctx,
                json!({"table_name": "conformance_no_such_table", "columns": "*"}),
            ),
            404,
        )
        .any_of(&[400, 404])
        .check(envelope),
    ]
}
