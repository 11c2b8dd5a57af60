//! REST family: `GET /rest/v1/{table}` (PostgREST-style) on the fixture
//! table; `POST|PATCH|DELETE /rest/v1/{table}` on `conformance_writes`, each
//! case with its own rows (the table is truncated at the start of every run).

use super::{envelope, expect_eq, expect_json, ids, rows, rows_are, Case, Ctx, TABLE};
use crate::fixtures::TAGS_TABLE;
use crate::http::Request;
use crate::rights;
use serde_json::{json, Value};

const OP: &str = "get_rest_v1_by_table";

fn get(ctx: &Ctx, table: &str) -> Request {
    ctx.request("get", &format!("/rest/v1/{table}"))
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    let mut cases = read_cases(ctx);
    cases.push(embed_case(ctx));
    cases.extend(write_cases(ctx));
    cases
}

/// `select` embedding the rows whose foreign key points at each item
/// (one-to-many: an array per row, `[]` when none).
fn embed_case(ctx: &Ctx) -> Case {
    Case::new(
        OP,
        "select embeds referencing rows as arrays",
        get(ctx, TABLE)
            .query("select", &format!("id,tags:{TAGS_TABLE}(label)"))
            .query("order", "id"),
        200,
    )
    .check_json(|b| {
        let labels: Vec<(i64, Vec<String>)> = rows(b)?
            .iter()
            .map(|r| {
                let mut l: Vec<String> = r["tags"]
                    .as_array()
                    .ok_or("`tags` is not an array")?
                    .iter()
                    .filter_map(|t| t["label"].as_str().map(str::to_string))
                    .collect();
                l.sort();
                Ok((r["id"].as_i64().unwrap_or_default(), l))
            })
            .collect::<Result<_, String>>()?;
        expect_eq(
            "tags",
            labels,
            vec![
                (1, vec!["blue".into(), "red".into()]),
                (2, vec!["green".into()]),
                (3, vec![]),
            ],
        )
    })
}

fn read_cases(ctx: &Ctx) -> Vec<Case> {
    vec![
        Case::new(
            OP,
            "or=(…) and not. filters",
            get(ctx, TABLE)
                .query("or", "(id.eq.1,id.eq.3,name.eq.beta)")
                .query("name", "not.eq.beta")
                .query("order", "id"),
            200,
        )
        .check_json(|b| expect_eq("ids", ids(rows(b)?), vec![1, 3])),
        Case::new(
            OP,
            "malformed or= is 400",
            get(ctx, TABLE).query("or", "(id.eq.1"),
            400,
        )
        .check(envelope),
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

const POST: &str = "post_rest_v1_by_table";
const PATCH: &str = "patch_rest_v1_by_table";
const DELETE: &str = "delete_rest_v1_by_table";

fn post(ctx: &Ctx, body: Value) -> Request {
    ctx.request("post", &format!("/rest/v1/{}", ctx.writes))
        .json(body)
}

fn write_cases(ctx: &Ctx) -> Vec<Case> {
    let patch = |filter: &str, value: &str, body: Value| {
        ctx.request("patch", &format!("/rest/v1/{}", ctx.writes))
            .query(filter, value)
            .json(body)
    };
    let delete = |filter: &str, value: &str| {
        ctx.request("delete", &format!("/rest/v1/{}", ctx.writes))
            .query(filter, value)
    };
    vec![
        Case::new(
            POST,
            "insert an object returns the rows",
            post(ctx, json!({"name": "rest-ins-1", "score": 5})).query("select", "name,score"),
            200,
        )
        .check_json(|b| {
            expect_json(
                "data",
                rows(b)?,
                &vec![json!({"name": "rest-ins-1", "score": 5})],
            )
        })
        .then_db(
            ctx.written("name, score", &["rest-ins-1"]),
            rows_are(json!([{"name": "rest-ins-1", "score": 5}])),
        ),
        Case::new(
            POST,
            "insert an array with return=minimal is 204",
            post(
                ctx,
                json!([{"name": "rest-ins-2a"}, {"name": "rest-ins-2b"}]),
            )
            .header("Prefer", "return=minimal"),
            204,
        )
        .check(|r| expect_eq("body", r.body.is_empty(), true))
        .then_db(
            ctx.written("name", &["rest-ins-2a", "rest-ins-2b"]),
            rows_are(json!([{"name": "rest-ins-2a"}, {"name": "rest-ins-2b"}])),
        ),
        Case::new(
            POST,
            "merge-duplicates upserts on the primary key",
            post(
                ctx,
                json!({"id": 900001, "name": "rest-ups-new", "score": 2}),
            )
            .header(
                "Prefer",
                "return=representation,resolution=merge-duplicates",
            )
            .query("select", "id,name,score"),
            200,
        )
        .after(post(
            ctx,
            json!({"id": 900001, "name": "rest-ups-old", "score": 1}),
        ))
        .rights(&[rights::INSERT, rights::UPDATE])
        .check_json(|b| {
            expect_json(
                "data",
                rows(b)?,
                &vec![json!({"id": 900001, "name": "rest-ups-new", "score": 2})],
            )
        })
        .then_db(
            format!(
                "SELECT id, name, score FROM {} WHERE id = 900001",
                ctx.writes
            ),
            rows_are(json!([{"id": 900001, "name": "rest-ups-new", "score": 2}])),
        ),
        Case::new(
            POST,
            "unknown column is 400",
            post(ctx, json!({"name": "rest-bad", "no_such_column": 1})),
            400,
        )
        .check(envelope)
        .then_db(ctx.written("name", &["rest-bad"]), rows_are(json!([]))),
        Case::new(
            PATCH,
            "patch by filter returns the updated rows",
            patch("name", "eq.rest-patch", json!({"score": 77})).query("select", "name,score"),
            200,
        )
        .after(post(ctx, json!({"name": "rest-patch", "score": 1})))
        .check_json(|b| {
            expect_json(
                "data",
                rows(b)?,
                &vec![json!({"name": "rest-patch", "score": 77})],
            )
        })
        .then_db(
            ctx.written("name, score", &["rest-patch"]),
            rows_are(json!([{"name": "rest-patch", "score": 77}])),
        ),
        Case::new(
            PATCH,
            "patch without filters is 400",
            ctx.request("patch", &format!("/rest/v1/{}", ctx.writes))
                .json(json!({"score": -2})),
            400,
        )
        .after(post(ctx, json!({"name": "rest-patch-keep", "score": 6})))
        .check(envelope)
        .then_db(
            ctx.written("name, score", &["rest-patch-keep"]),
            rows_are(json!([{"name": "rest-patch-keep", "score": 6}])),
        )
        .then_db(
            format!("SELECT name FROM {} WHERE score = -2", ctx.writes),
            rows_are(json!([])),
        ),
        Case::new(
            DELETE,
            "delete by filter returns the deleted rows",
            delete("name.eq", "rest-del"),
            200,
        )
        .after(post(ctx, json!({"name": "rest-del", "score": 9})))
        .check_json(|b| {
            let rows = rows(b)?;
            expect_eq("rows", rows.len(), 1)?;
            expect_eq(
                "name",
                rows[0].get("name").and_then(Value::as_str),
                Some("rest-del"),
            )
        })
        .then_db(ctx.written("name", &["rest-del"]), rows_are(json!([]))),
        Case::new(
            DELETE,
            "delete with return=minimal is 204",
            delete("name", "eq.rest-del-min").header("Prefer", "return=minimal"),
            204,
        )
        .after(post(ctx, json!({"name": "rest-del-min"})))
        .after(post(ctx, json!({"name": "rest-del-min-keep"})))
        .check(|r| expect_eq("body", r.body.is_empty(), true))
        .then_db(
            ctx.written("name", &["rest-del-min", "rest-del-min-keep"]),
            rows_are(json!([{"name": "rest-del-min-keep"}])),
        ),
        Case::new(
            DELETE,
            "delete without filters is 400",
            ctx.request("delete", &format!("/rest/v1/{}", ctx.writes)),
            400,
        )
        .after(post(ctx, json!({"name": "rest-del-nofilter-keep"})))
        .check(envelope)
        .then_db(
            ctx.written("name", &["rest-del-nofilter-keep"]),
            rows_are(json!([{"name": "rest-del-nofilter-keep"}])),
        ),
    ]
}
