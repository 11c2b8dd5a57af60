//! Gateway family: `POST /gateway/fetch` against the fixture table, and the
//! writes (`PUT /gateway/insert`, `POST /gateway/update`,
//! `DELETE /gateway/delete`) against `conformance_writes`, each case with its
//! own rows (the table is truncated at the start of every run).

use super::{envelope, expect_eq, expect_json, ids, rows, rows_are, Case, Ctx, TABLE};
use crate::fixtures::TAGS_TABLE;
use crate::http::Request;
use crate::rights;
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
    let mut cases = fetch_cases(ctx);
    cases.extend(sdk_fetch_cases(ctx));
    cases.extend(write_cases(ctx));
    cases.extend(alias_cases(ctx));
    cases.push(embed_case(ctx));
    cases
}

/// A relation embedded through the foreign key `conformance_tags.item_id`
/// (many-to-one: an object per row).
fn embed_case(ctx: &Ctx) -> Case {
    Case::new(
        OP,
        "select embeds a related row through its foreign key",
        fetch(
            ctx,
            json!({"table_name": TAGS_TABLE, "select": "id,label,item:conformance_items(id,name)",
                   "conditions": [{"eq_column": "item_id", "eq_value": "1"}],
                   "sort_by": {"field": "id", "direction": "asc"}}),
        ),
        200,
    )
    .check_json(|b| {
        expect_json(
            "data",
            rows(b)?,
            &vec![
                json!({"id": 1, "label": "red", "item": {"id": 1, "name": "alpha"}}),
                json!({"id": 2, "label": "blue", "item": {"id": 1, "name": "alpha"}}),
            ],
        )
    })
}

/// `/gateway/data` and `/data`: fetch under older names.
fn alias_cases(ctx: &Ctx) -> Vec<Case> {
    vec![
        Case::new(
            "post_gateway_data",
            "legacy fetch body",
            ctx.request("post", "/gateway/data").json(json!({
                "table_name": TABLE, "columns": ["id", "name"],
                "conditions": [{"eq_column": "name", "eq_value": "gamma"}]
            })),
            200,
        )
        .check_json(|b| expect_json("data", rows(b)?, &vec![json!({"id": 3, "name": "gamma"})])),
        Case::new(
            "post_gateway_data",
            "an unknown column is 400",
            ctx.request("post", "/gateway/data").json(json!({
                "table_name": TABLE, "columns": ["id"],
                "conditions": [{"eq_column": "no_such_column", "eq_value": "x"}]
            })),
            400,
        )
        .check(envelope),
        Case::new(
            "post_gateway_data",
            "post-processing groups the rows",
            ctx.request("post", "/gateway/data").json(json!({
                "table_name": TABLE, "columns": ["name", "score"], "conditions": [],
                "group_by": "name", "aggregation_column": "score",
                "aggregation_strategy": "cumulative_sum"
            })),
            200,
        )
        .check_json(|b| {
            let groups = b["post_processing"]["groups"]
                .as_array()
                .ok_or("no post_processing.groups")?;
            expect_eq("groups", groups.len(), 3)?;
            expect_eq("first key", &groups[0]["key"], &json!("alpha"))
        }),
        Case::new(
            "get_data",
            "eq filter from the query string",
            ctx.request("get", "/data")
                .query("view", TABLE)
                .query("eq_column", "name")
                .query("eq_value", "alpha")
                .query("columns", "id"),
            200,
        )
        .check_json(|b| expect_eq("ids", ids(rows(b)?), vec![1])),
        Case::new(
            "get_data",
            "an unknown table is 404",
            ctx.request("get", "/data")
                .query("view", "conformance_missing")
                .query("eq_column", "a")
                .query("eq_value", "b"),
            404,
        )
        .check(envelope),
    ]
}

fn fetch_cases(ctx: &Ctx) -> Vec<Case> {
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

/// An SDK-shaped condition (athena-js sends both spellings).
fn cond(op: &str, column: &str, value: Value) -> Value {
    json!({"operator": op, "column": column, "eq_column": column, "value": value, "eq_value": value})
}

fn sdk_fetch_cases(ctx: &Ctx) -> Vec<Case> {
    let by = |name: &str, conditions: Value, want: Vec<i64>| {
        Case::new(
            OP,
            name,
            fetch(
                ctx,
                json!({"table_name": TABLE, "columns": "id", "conditions": conditions,
                       "sort_by": {"field": "id", "direction": "ascending"}}),
            ),
            200,
        )
        .check_json(move |b| expect_eq("ids", ids(rows(b)?), want.clone()))
    };
    vec![
        by(
            "SDK operators gt/lte combine",
            json!([
                cond("gt", "score", json!(10)),
                cond("lte", "score", json!(30))
            ]),
            vec![2, 3],
        ),
        by(
            "SDK operator in with a JSON list",
            json!([cond("in", "name", json!(["alpha", "gamma"]))]),
            vec![1, 3],
        ),
        by(
            "SDK operator is null",
            json!([cond("is", "note", Value::Null)]),
            vec![1],
        ),
        by(
            "SDK operators not and or (PostgREST strings)",
            json!([{"operator": "not", "value": "name.eq.beta"},
                   {"operator": "or", "value": "id.eq.1,id.eq.2,score.gte.30"}]),
            vec![1, 3],
        ),
        by(
            "SDK operator ilike",
            json!([cond("ilike", "name", json!("%AMM%"))]),
            vec![3],
        ),
        Case::new(
            OP,
            "count exact with head returns only the count",
            fetch(
                ctx,
                json!({"table_name": TABLE, "columns": "*", "count": "exact", "head": true,
                       "conditions": [cond("gte", "score", json!(20))]}),
            ),
            200,
        )
        .check_json(|b| {
            expect_eq("count", b.get("count").and_then(Value::as_i64), Some(2))?;
            expect_eq("rows", rows(b)?.len(), 0)
        }),
        Case::new(
            OP,
            "where object and orderBy {column, ascending}",
            fetch(
                ctx,
                json!({"table_name": TABLE, "columns": ["id"], "where": {"score": {"gte": 20}},
                       "orderBy": {"column": "id", "ascending": false}}),
            ),
            200,
        )
        .check_json(|b| expect_eq("ids", ids(rows(b)?), vec![3, 2])),
        Case::new(
            OP,
            "unknown operator is 400",
            fetch(
                ctx,
                json!({"table_name": TABLE, "conditions": [cond("drop", "id", json!(1))]}),
            ),
            400,
        )
        .check(envelope),
    ]
}

const INSERT: &str = "put_gateway_insert";
const UPDATE: &str = "post_gateway_update";
const DELETE: &str = "delete_gateway_delete";

fn insert(ctx: &Ctx, body: Value) -> Request {
    let mut body = body;
    body["table_name"] = json!(ctx.writes);
    ctx.request("put", "/gateway/insert").json(body)
}

fn affected(b: &Value, n: i64) -> Result<(), String> {
    expect_eq(
        "rows_affected",
        b.get("rows_affected").and_then(Value::as_i64),
        Some(n),
    )?;
    expect_eq(
        "affected_rows",
        b.get("affected_rows").and_then(Value::as_i64),
        Some(n),
    )
}

fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key)
}

fn write_cases(ctx: &Ctx) -> Vec<Case> {
    let update = |body: Value| {
        let mut body = body;
        body["table_name"] = json!(ctx.writes);
        ctx.request("post", "/gateway/update").json(body)
    };
    let delete = |body: Value| {
        let mut body = body;
        body["table_name"] = json!(ctx.writes);
        ctx.request("delete", "/gateway/delete").json(body)
    };
    vec![
        Case::new(
            INSERT,
            "insert an object returns the row object",
            insert(
                ctx,
                json!({"insert_body": {"name": "gw-ins-1", "score": 7, "tags": ["a", "b"]}, "columns": "*"}),
            ),
            200,
        )
        .check_json(|b| {
            let data = b.get("data").ok_or("no data")?;
            expect_eq("name", field(data, "name"), Some(&json!("gw-ins-1")))?;
            expect_eq("score", field(data, "score"), Some(&json!(7)))?;
            expect_eq("tags", field(data, "tags"), Some(&json!(["a", "b"])))?;
            affected(b, 1)
        })
        .then_db(
            ctx.written("name, score, tags", &["gw-ins-1"]),
            rows_are(json!([{"name": "gw-ins-1", "score": 7, "tags": ["a", "b"]}])),
        ),
        Case::new(
            INSERT,
            "insert an array returns the rows",
            insert(
                ctx,
                json!({"insert_body": [{"name": "gw-ins-2a"}, {"name": "gw-ins-2b", "score": 2}],
                       "columns": ["name", "score"]}),
            ),
            200,
        )
        .check_json(|b| {
            expect_json(
                "data",
                rows(b)?,
                &vec![
                    json!({"name": "gw-ins-2a", "score": null}),
                    json!({"name": "gw-ins-2b", "score": 2}),
                ],
            )?;
            affected(b, 2)
        })
        .then_db(
            ctx.written("name, score", &["gw-ins-2a", "gw-ins-2b"]),
            rows_are(json!([{"name": "gw-ins-2a", "score": null}, {"name": "gw-ins-2b", "score": 2}])),
        ),
        Case::new(
            INSERT,
            "upsert with on_conflict and update_body updates the row",
            insert(
                ctx,
                json!({"insert_body": {"name": "gw-ups", "score": 1}, "on_conflict": "name",
                       "update_body": {"score": 2}, "columns": "name,score"}),
            ),
            200,
        )
        .after(insert(ctx, json!({"insert_body": {"name": "gw-ups", "score": 1}})))
        .rights(&[rights::INSERT, rights::UPDATE])
        .check_json(|b| {
            expect_json(
                "data",
                b.get("data"),
                Some(&json!({"name": "gw-ups", "score": 2})),
            )
        })
        .then_db(
            ctx.written("name, score", &["gw-ups"]),
            rows_are(json!([{"name": "gw-ups", "score": 2}])),
        ),
        Case::new(
            INSERT,
            "duplicate unique value is 409",
            insert(ctx, json!({"insert_body": {"name": "gw-dup"}})),
            409,
        )
        .after(insert(ctx, json!({"insert_body": {"name": "gw-dup"}})))
        .check(envelope)
        .then_db(ctx.written("name", &["gw-dup"]), rows_are(json!([{"name": "gw-dup"}]))),
        Case::new(
            INSERT,
            "unknown column is 400",
            insert(ctx, json!({"insert_body": {"name": "gw-bad", "no_such_column": 1}})),
            400,
        )
        .check(envelope)
        .then_db(ctx.written("name", &["gw-bad"]), rows_are(json!([]))),
        Case::new(
            UPDATE,
            "update by conditions returns the updated rows",
            update(json!({"conditions": [cond("eq", "name", json!("gw-upd"))],
                          "update_body": {"score": 42}, "columns": ["name", "score"]})),
            200,
        )
        .after(insert(ctx, json!({"insert_body": {"name": "gw-upd", "score": 1}})))
        .check_json(|b| {
            expect_json(
                "data",
                rows(b)?,
                &vec![json!({"name": "gw-upd", "score": 42})],
            )?;
            affected(b, 1)
        })
        .then_db(
            ctx.written("name, score", &["gw-upd"]),
            rows_are(json!([{"name": "gw-upd", "score": 42}])),
        ),
        Case::new(
            UPDATE,
            "update without any filter is refused",
            update(json!({"update_body": {"score": -1}})),
            400,
        )
        .after(insert(ctx, json!({"insert_body": {"name": "gw-upd-keep", "score": 5}})))
        .check(envelope)
        .then_db(
            ctx.written("name, score", &["gw-upd-keep"]),
            rows_are(json!([{"name": "gw-upd-keep", "score": 5}])),
        )
        .then_db(
            format!("SELECT name FROM {} WHERE score = -1", ctx.writes),
            rows_are(json!([])),
        ),
        Case::new(
            DELETE,
            "delete by conditions returns the deleted rows",
            delete(json!({"conditions": [cond("eq", "name", json!("gw-del"))]})),
            200,
        )
        .after(insert(ctx, json!({"insert_body": {"name": "gw-del", "score": 3}})))
        .check_json(|b| {
            let rows = rows(b)?;
            expect_eq("rows", rows.len(), 1)?;
            expect_eq("name", field(&rows[0], "name"), Some(&json!("gw-del")))?;
            affected(b, 1)
        })
        .then_db(ctx.written("name", &["gw-del"]), rows_are(json!([]))),
        Case::new(
            DELETE,
            "delete by resource_id of a missing row deletes nothing",
            delete(json!({"resource_id": "987654"})),
            200,
        )
        .after(insert(ctx, json!({"insert_body": {"name": "gw-del-missing-keep"}})))
        .check_json(|b| {
            expect_eq("rows", rows(b)?.len(), 0)?;
            affected(b, 0)
        })
        .then_db(
            ctx.written("name", &["gw-del-missing-keep"]),
            rows_are(json!([{"name": "gw-del-missing-keep"}])),
        ),
        Case::new(
            DELETE,
            "delete by resource_id deletes that row",
            delete(json!({"resource_id": "{{0.data.id}}"})),
            200,
        )
        .after(insert(ctx, json!({"insert_body": {"name": "gw-del-by-id"}, "columns": "*"})))
        .check_json(|b| affected(b, 1))
        .then_db(ctx.written("name", &["gw-del-by-id"]), rows_are(json!([]))),
        Case::new(
            DELETE,
            "delete without any filter is refused",
            delete(json!({"columns": "*"})),
            400,
        )
        .after(insert(ctx, json!({"insert_body": {"name": "gw-del-nofilter-keep"}})))
        .check(envelope)
        .then_db(
            ctx.written("name", &["gw-del-nofilter-keep"]),
            rows_are(json!([{"name": "gw-del-nofilter-keep"}])),
        ),
    ]
}
