//! Raw SQL routes: `/gateway/query`, `/gateway/sql`, `/query/sql`,
//! `/query/count`, read against the fixture table.

use super::{envelope, expect_eq, expect_json, rows, Case, Ctx, TABLE};
use serde_json::json;

fn sql_body(ctx: &Ctx, query: &str) -> serde_json::Value {
    json!({"query": query, "driver": "postgresql", "db_name": ctx.client})
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    let select_beta = format!("SELECT id, name FROM {TABLE} WHERE name = 'beta'");
    vec![
        Case::new(
            "post_gateway_query",
            "rows come back as a typed array",
            ctx.request("post", "/gateway/query").json(json!({"query": select_beta})),
            200,
        )
        .check_json(|b| {
            expect_json("data", rows(b)?, &vec![json!({"id": 2, "name": "beta"})])?;
            expect_eq("returned_row_count", &b["meta"]["returned_row_count"], &json!(1))
        }),
        Case::new(
            "post_gateway_query",
            "invalid SQL is a 400",
            ctx.request("post", "/gateway/query").json(json!({"query": "SELEC 1"})),
            400,
        )
        .check(envelope),
        Case::new("post_gateway_sql", "postgresql driver", ctx.request("post", "/gateway/sql").json(sql_body(ctx, "SELECT 1 AS one")), 200)
            .check_json(|b| expect_json("data", rows(b)?, &vec![json!({"one": 1})])),
        Case::new(
            "post_gateway_sql",
            "D1 drivers are refused",
            ctx.request("post", "/gateway/sql").json(json!({"query": "SELECT 1", "driver": "d1", "db_name": ctx.client})),
            400,
        )
        .check(envelope),
        Case::new(
            "post_query_sql",
            "a statement batch is refused (one statement per request)",
            ctx.request("post", "/query/sql").json(sql_body(ctx, &format!("SELECT 1; SELECT count(*) AS n FROM {TABLE}"))),
            400,
        )
        .check(envelope),
        Case::new(
            "post_query_sql",
            "D1 drivers are refused",
            ctx.request("post", "/query/sql").json(json!({"query": "SELECT 1", "driver": "d1", "db_name": ctx.client})),
            400,
        )
        .check(envelope),
        Case::new(
            "post_query_sql",
            "an unknown client is 404",
            ctx.request("post", "/query/sql")
                .header("x-athena-client", "conformance_no_such_client")
                .json(json!({"query": "SELECT 1", "driver": "postgresql", "db_name": "conformance_no_such_client"})),
            404,
        )
        .check(envelope),
        Case::new(
            "post_query_count",
            "count a table",
            ctx.request("post", "/query/count").json(json!({"driver": "postgresql", "db_name": ctx.client, "table_name": TABLE})),
            200,
        )
        .check_json(|b| expect_eq("count", &b["data"]["count"], &json!(3))),
        Case::new(
            "post_query_count",
            "writes are refused",
            ctx.request("post", "/query/count")
                .json(json!({"driver": "postgresql", "db_name": ctx.client, "query": format!("DELETE FROM {TABLE} RETURNING 1")})),
            400,
        )
        .check(envelope),
    ]
}
