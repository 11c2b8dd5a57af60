//! Writes on `/rest/v1/{table}` as PostgREST does them (issue 14, writes):
//! `?select=` with embeds on POST/PATCH/DELETE, `?columns=`,
//! `Prefer: missing=default`, an empty bulk insert, upserts with
//! `on_conflict=`, a singular insert refused (406, nothing written). Rows go
//! to `conformance_rw` (a foreign key to `conformance_rw_parents`: ann 1,
//! bob 2; `score` DEFAULT 7; unique `(code, batch)`), named after the pass'
//! writes table so passes running side by side never share a row. Every
//! case reads its effect back with a GET.

use super::{envelope, expect_eq, expect_json, rows, rows_are, Case, Ctx};
use crate::fixtures::REST_WRITES_TABLE as RW;
use crate::http::{Request, Response};
use serde_json::{json, Value};

const POST: &str = "post_rest_v1_by_table";
const PATCH: &str = "patch_rest_v1_by_table";
const DELETE: &str = "delete_rest_v1_by_table";
const INSERT: &str = "gateway.insert.execute";
const UPDATE: &str = "gateway.update.execute";
const FETCH: &str = "gateway.fetch.execute";
const REMOVE: &str = "gateway.delete.execute";

fn path() -> String {
    format!("/rest/v1/{RW}")
}

/// The GET reading back the rows named `names` (`name`, `parent_id`,
/// `score`, ordered by name).
fn read_back(ctx: &Ctx, names: &[&str]) -> Request {
    ctx.request("get", &path())
        .query("select", "name,parent_id,score")
        .query("name", &format!("in.({})", names.join(",")))
        .query("order", "name")
}

/// Its rows are exactly `want`.
fn rows_read_back(want: Value) -> impl Fn(&Response) -> Result<(), String> + Send + Sync {
    let check = rows_are(want);
    move |r| check(&Value::Array(rows(&r.json()?)?.clone()))
}

fn header(r: &Response, name: &str, want: &str) -> Result<(), String> {
    expect_eq(name, r.header(name), Some(want))
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    // Row names of this pass.
    let n = |s: &str| format!("{}-rw-{s}", ctx.writes);
    let (sel, c1, c2, m1, m2, up, bad, one_a, one_b, pat, del, empty) = (
        n("sel"),
        n("c1"),
        n("c2"),
        n("m1"),
        n("m2"),
        n("up"),
        n("bad"),
        n("one-a"),
        n("one-b"),
        n("patch"),
        n("del"),
        n("empty"),
    );
    vec![
        Case::new(
            POST,
            "?select= with an embed returns the inserted row through the read renderer",
            ctx.request("post", &path())
                .query("select", "name,parent:conformance_rw_parents(name)")
                .header("Prefer", "return=representation")
                .json(json!({"name": sel, "parent_id": 1})),
            200,
        )
        .rights(&[INSERT, FETCH])
        .check_json({
            let sel = sel.clone();
            move |b| {
                expect_json(
                    "data",
                    &b["data"],
                    &json!([{"name": sel, "parent": {"name": "ann"}}]),
                )
            }
        })
        .then(
            read_back(ctx, &[&sel]),
            200,
            rows_read_back(json!([{"name": sel, "parent_id": 1, "score": 7}])),
        ),
        Case::new(
            POST,
            "?columns= limits the inserted keys; a listed key a row lacks is NULL",
            ctx.request("post", &path())
                .query("columns", "name,score")
                .json(json!([{"name": c1, "score": 1, "parent_id": 2}, {"name": c2}])),
            200,
        )
        .then(
            read_back(ctx, &[&c1, &c2]),
            200,
            rows_read_back(json!([
                {"name": c1, "parent_id": null, "score": 1},
                {"name": c2, "parent_id": null, "score": null}
            ])),
        ),
        Case::new(
            POST,
            "Prefer: missing=default gives a key a row lacks its DEFAULT (Preference-Applied)",
            ctx.request("post", &path())
                .header("Prefer", "missing=default")
                .json(json!([{"name": m1, "score": 1}, {"name": m2}])),
            200,
        )
        .check(|r| header(r, "preference-applied", "missing=default"))
        .then(
            read_back(ctx, &[&m1, &m2]),
            200,
            rows_read_back(json!([
                {"name": m1, "parent_id": null, "score": 1},
                {"name": m2, "parent_id": null, "score": 7}
            ])),
        ),
        Case::new(
            POST,
            "an empty bulk insert is a success with no rows (Content-Range */0)",
            ctx.request("post", &path())
                .header("Prefer", "count=exact")
                .json(json!([])),
            200,
        )
        .check(|r| {
            header(r, "content-range", "*/0")?;
            expect_eq("rows", rows(&r.json()?)?.len(), 0)
        })
        .then(read_back(ctx, &[&empty]), 200, rows_read_back(json!([]))),
        Case::new(
            POST,
            "on_conflict=code,batch with resolution=merge-duplicates updates the existing row",
            ctx.request("post", &path())
                .query("on_conflict", "code,batch")
                .query("select", "name,score")
                .header("Prefer", "resolution=merge-duplicates,count=exact")
                .json(json!({"name": up, "code": up, "batch": 1, "score": 2})),
            200,
        )
        .rights(&[INSERT, UPDATE])
        .after(
            ctx.request("post", &path())
                .json(json!({"name": up, "code": up, "batch": 1, "score": 1})),
        )
        .check({
            let up = up.clone();
            move |r| {
                header(r, "content-range", "*/1")?;
                header(
                    r,
                    "preference-applied",
                    "resolution=merge-duplicates, count=exact",
                )?;
                expect_json(
                    "data",
                    &r.json()?["data"],
                    &json!([{"name": up, "score": 2}]),
                )
            }
        })
        .then(
            read_back(ctx, &[&up]),
            200,
            rows_read_back(json!([{"name": up, "parent_id": null, "score": 2}])),
        ),
        Case::new(
            POST,
            "on_conflict naming no unique column set is a 400 and writes nothing",
            ctx.request("post", &path())
                .query("on_conflict", "score")
                .header("Prefer", "resolution=merge-duplicates")
                .json(json!({"name": bad, "score": 3})),
            400,
        )
        .rights(&[INSERT, UPDATE])
        .check(envelope)
        .then(read_back(ctx, &[&bad]), 200, rows_read_back(json!([]))),
        Case::new(
            POST,
            "a singular insert of two rows is a 406 and inserts neither",
            ctx.request("post", &path())
                .header("Accept", "application/vnd.pgrst.object+json")
                .json(json!([{"name": one_a}, {"name": one_b}])),
            406,
        )
        .check(envelope)
        .then(
            read_back(ctx, &[&one_a, &one_b]),
            200,
            rows_read_back(json!([])),
        ),
        Case::new(
            PATCH,
            "?select= with an embed returns the updated row with its new parent",
            ctx.request("patch", &path())
                .query("name", &format!("eq.{pat}"))
                .query("select", "name,conformance_rw_parents(name)")
                .json(json!({"parent_id": 2})),
            200,
        )
        .rights(&[UPDATE, FETCH])
        .after(
            ctx.request("post", &path())
                .json(json!({"name": pat, "parent_id": 1})),
        )
        .check_json({
            let pat = pat.clone();
            move |b| {
                expect_json(
                    "data",
                    &b["data"],
                    &json!([{"name": pat, "conformance_rw_parents": {"name": "bob"}}]),
                )
            }
        })
        .then(
            read_back(ctx, &[&pat]),
            200,
            rows_read_back(json!([{"name": pat, "parent_id": 2, "score": 7}])),
        ),
        Case::new(
            DELETE,
            "?select= with an embed returns the deleted row; count=exact answers */1",
            ctx.request("delete", &path())
                .query("name", &format!("eq.{del}"))
                .query("select", "name,parent:conformance_rw_parents(name)")
                .header("Prefer", "count=exact"),
            200,
        )
        .rights(&[REMOVE, FETCH])
        .after(
            ctx.request("post", &path())
                .json(json!({"name": del, "parent_id": 2})),
        )
        .check({
            let del = del.clone();
            move |r| {
                header(r, "content-range", "*/1")?;
                expect_json(
                    "data",
                    &r.json()?["data"],
                    &json!([{"name": del, "parent": {"name": "bob"}}]),
                )
            }
        })
        .then(read_back(ctx, &[&del]), 200, rows_read_back(json!([]))),
    ]
}
