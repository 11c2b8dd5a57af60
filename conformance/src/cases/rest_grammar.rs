//! The PostgREST query grammar on `GET /rest/v1/{table}` (issue 14): select
//! aliases and casts (also inside embeds), embedded-resource parameters
//! (`rel.col=`, `rel.order=`, `rel.limit=`, `!inner` narrowing the parents
//! and their count) and `not.or=(…)`. Reads of the fixture tables (items
//! alpha 1/10, beta 2/20, gamma 3/30; tags red and blue on 1, green on 2):
//! each case checks status, schema and the rows it reads.

use super::{envelope, expect_eq, rows, Case, Ctx, TABLE};
use crate::fixtures::TAGS_TABLE;
use crate::http::Request;
use serde_json::json;

const OP: &str = "get_rest_v1_by_table";

fn get(ctx: &Ctx) -> Request {
    ctx.request("get", &format!("/rest/v1/{TABLE}"))
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    vec![
        Case::new(
            OP,
            "select aliases and casts name the keys (alias:col, col::text)",
            get(ctx)
                .query("select", "itemId:id,name,score::text")
                .query("id", "eq.2"),
            200,
        )
        .check_json(|b| {
            expect_eq(
                "rows",
                rows(b)?.clone(),
                vec![json!({"itemId": 2, "name": "beta", "score": "20"})],
            )
        }),
        Case::new(
            OP,
            "aliases and casts inside an aliased embed, with rel.order and rel.limit",
            get(ctx)
                .query(
                    "select",
                    &format!("id,t:{TAGS_TABLE}(tag:label,tagId:id::text)"),
                )
                .query("t.order", "label.desc")
                .query("t.limit", "1")
                .query("id", "eq.1"),
            200,
        )
        .check_json(|b| {
            expect_eq(
                "rows",
                rows(b)?.clone(),
                vec![json!({"id": 1, "t": [{"tag": "red", "tagId": "1"}]})],
            )
        }),
        Case::new(
            OP,
            "an embedded filter without !inner narrows only the embedded rows",
            get(ctx)
                .query("select", &format!("id,{TAGS_TABLE}(label)"))
                .query(&format!("{TAGS_TABLE}.label"), "eq.red")
                .query("order", "id"),
            200,
        )
        .check_json(move |b| {
            expect_eq(
                "rows",
                rows(b)?.clone(),
                vec![
                    json!({"id": 1, TAGS_TABLE: [{"label": "red"}]}),
                    json!({"id": 2, TAGS_TABLE: []}),
                    json!({"id": 3, TAGS_TABLE: []}),
                ],
            )
        }),
        Case::new(
            OP,
            "an embedded filter with !inner narrows the parents and their exact count",
            get(ctx)
                .query("select", &format!("id,{TAGS_TABLE}!inner(label)"))
                .query(&format!("{TAGS_TABLE}.label"), "eq.green")
                .header("Prefer", "count=exact"),
            200,
        )
        .check(|r| {
            expect_eq("Content-Range", r.header("content-range"), Some("0-0/1"))?;
            expect_eq(
                "rows",
                rows(&r.json()?)?.clone(),
                vec![json!({"id": 2, TAGS_TABLE: [{"label": "green"}]})],
            )
        }),
        Case::new(
            OP,
            "not.or=(…) negates a logic tree",
            get(ctx)
                .query("select", "id")
                .query("not.or", "( id.eq.1 , and(id.gt.1, name.eq.\"beta\") )")
                .query("order", "id"),
            200,
        )
        .check_json(|b| expect_eq("rows", rows(b)?.clone(), vec![json!({"id": 3})])),
        Case::new(
            OP,
            "an embedded filter on no embed of the select is 400",
            get(ctx)
                .query("select", "id")
                .query(&format!("{TAGS_TABLE}.label"), "eq.red"),
            400,
        )
        .check(envelope),
        Case::new(
            OP,
            "a cast outside the type grammar is 400",
            get(ctx).query("select", "id::int;select"),
            400,
        )
        .check(envelope),
    ]
}
