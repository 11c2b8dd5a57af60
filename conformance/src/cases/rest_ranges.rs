//! PostgREST counts and ranges on `/rest/v1/{table}` (issue 14):
//! `Prefer: count=exact` puts the total in `Content-Range`, a partial page
//! is a 206, a range past the end a 416 (`*/N`); `Range: a-b` pages like
//! limit/offset; a counted DELETE answers `*/N`. Reads use the fixture
//! table (alpha 1, beta 2, gamma 3); the DELETE has rows of its own.

use super::{envelope, expect_eq, ids, rows, rows_are, Case, Ctx, TABLE};
use crate::http::{Request, Response};
use serde_json::json;

const OP: &str = "get_rest_v1_by_table";
const DELETE: &str = "delete_rest_v1_by_table";

fn counted(ctx: &Ctx) -> Request {
    ctx.request("get", &format!("/rest/v1/{TABLE}"))
        .query("order", "id")
        .header("Prefer", "count=exact")
}

/// `Content-Range` equals `want`.
fn content_range(r: &Response, want: &str) -> Result<(), String> {
    expect_eq("Content-Range", r.header("content-range"), Some(want))
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    vec![
        Case::new(
            OP,
            "count=exact with Range 0-1 is a 206 with 0-1/3",
            counted(ctx)
                .header("Range", "0-1")
                .header("Range-Unit", "items"),
            206,
        )
        .check(|r| {
            content_range(r, "0-1/3")?;
            expect_eq("ids", ids(rows(&r.json()?)?), vec![1, 2])
        }),
        Case::new(
            OP,
            "count=exact with an open Range 1- is a 206 with 1-2/3",
            counted(ctx).header("Range", "items=1-"),
            206,
        )
        .check(|r| {
            content_range(r, "1-2/3")?;
            expect_eq("ids", ids(rows(&r.json()?)?), vec![2, 3])
        }),
        Case::new(
            OP,
            "count=exact counts only the filtered rows (200, 0-0/1)",
            counted(ctx).query("name", "eq.beta"),
            200,
        )
        .check(|r| {
            content_range(r, "0-0/1")?;
            expect_eq("ids", ids(rows(&r.json()?)?), vec![2])
        }),
        Case::new(
            OP,
            "count=exact with nothing matching is */0",
            counted(ctx).query("name", "eq.no-such-row"),
            200,
        )
        .check(|r| {
            content_range(r, "*/0")?;
            expect_eq("rows", rows(&r.json()?)?.len(), 0)
        }),
        Case::new(
            OP,
            "count=exact with a Range past the end is a 416 with */3",
            counted(ctx).header("Range", "10-20"),
            416,
        )
        .check(|r| {
            envelope(r)?;
            content_range(r, "*/3")
        }),
        Case::new(
            OP,
            "without a count the total is *",
            ctx.request("get", &format!("/rest/v1/{TABLE}"))
                .query("order", "id")
                .header("Range", "0-1"),
            200,
        )
        .check(|r| {
            content_range(r, "0-1/*")?;
            expect_eq("ids", ids(rows(&r.json()?)?), vec![1, 2])
        }),
        Case::new(
            DELETE,
            "a counted delete answers Content-Range */1",
            ctx.request("delete", &format!("/rest/v1/{}", ctx.writes))
                .query("name", "eq.rest-range-del")
                .header("Prefer", "count=exact"),
            200,
        )
        .after(
            ctx.request("post", &format!("/rest/v1/{}", ctx.writes))
                .json(json!({"name": "rest-range-del"})),
        )
        .after(
            ctx.request("post", &format!("/rest/v1/{}", ctx.writes))
                .json(json!({"name": "rest-range-keep"})),
        )
        .check(|r| content_range(r, "*/1"))
        .then_db(
            ctx.written("name", &["rest-range-del", "rest-range-keep"]),
            rows_are(json!([{"name": "rest-range-keep"}])),
        ),
    ]
}
