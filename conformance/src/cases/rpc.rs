//! RPC routes against the fixture function `conformance_above(min_score)`.

use super::{envelope, expect_eq, expect_json, Case, Ctx};
use serde_json::{json, Value};

fn data(b: &Value) -> Result<&Vec<Value>, String> {
    b.get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| "no data array".to_string())
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    vec![
        Case::new(
            "post_gateway_rpc",
            "function rows with select, filter and count",
            ctx.request("post", "/gateway/rpc").json(json!({
                "function": "conformance_above", "args": {"min_score": 5}, "select": "name",
                "filters": [{"column": "score", "operator": "gte", "value": 20}], "count": "exact"
            })),
            200,
        )
        .check_json(|b| {
            expect_json(
                "data",
                data(b)?,
                &vec![json!({"name": "beta"}), json!({"name": "gamma"})],
            )?;
            expect_eq("count", &b["count"], &json!(2))
        }),
        Case::new(
            "post_gateway_rpc",
            "an unknown function is 404",
            ctx.request("post", "/gateway/rpc")
                .json(json!({"function": "conformance_missing"})),
            404,
        )
        .check(envelope),
        Case::new(
            "get_rpc_by_function_name",
            "arguments and filters from the query string",
            ctx.request("get", "/rpc/conformance_above")
                .query("min_score", "15")
                .query("name", "eq.gamma"),
            200,
        )
        .check_json(|b| {
            expect_eq(
                "ids",
                data(b)?.iter().map(|r| r["id"].clone()).collect::<Vec<_>>(),
                vec![json!(3)],
            )
        }),
        Case::new(
            "post_rpc_by_function_name",
            "bare argument object",
            ctx.request("post", "/rpc/conformance_above")
                .json(json!({"min_score": 25})),
            200,
        )
        .check_json(|b| expect_eq("rows", data(b)?.len(), 1)),
        Case::new(
            "get_rpc_by_function_name",
            "an unknown function is 404",
            ctx.request("get", "/rpc/conformance_missing"),
            404,
        )
        .check(envelope),
        Case::new(
            "get_rpc_by_function_name",
            "a filter with an unknown operator is 400",
            ctx.request("get", "/rpc/conformance_above")
                .query("min_score", "1")
                .query("name", "regex.x"),
            400,
        )
        .check(envelope),
        Case::new(
            "post_rpc_by_function_name",
            "an argument of the wrong type is 400",
            ctx.request("post", "/rpc/conformance_above")
                .json(json!({"min_score": "not a number"})),
            400,
        )
        .check(envelope),
        Case::new(
            "post_rpc_by_function_name",
            "an unknown argument is 400 or 404",
            ctx.request("post", "/rpc/conformance_above")
                .json(json!({"no_such_argument": 1})),
            400,
        )
        .any_of(&[400, 404])
        .check(envelope),
    ]
}
