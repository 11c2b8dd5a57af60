//! PostgREST's bare shape on `/rest/v1/{table}` (issue 14): the same
//! requests answered in the contract's envelope (checked against the
//! contract's schemas, as every case) and, with `X-Athena-Rest-Shape:
//! postgrest`, as PostgREST answers (the bare rows checked here, errors as
//! PostgREST's `{code, message, details, hint}`: `check_bare`, which the
//! runner uses for requests carrying the header). Writes go to the run's
//! writes table, each case with rows of its own, and are read back through
//! the API (in the bare shape) and from the database.

use super::{envelope, expect_eq, expect_json, ids, rows, rows_are, Case, Ctx, TABLE};
use crate::http::{Request, Response};
use crate::rights;
use serde_json::{json, Value};

const GET: &str = "get_rest_v1_by_table";
const POST: &str = "post_rest_v1_by_table";
const PATCH: &str = "patch_rest_v1_by_table";
const DELETE: &str = "delete_rest_v1_by_table";

pub const HEADER: &str = "X-Athena-Rest-Shape";

/// Whether a case's request asks for the bare shape (judged by `check_bare`
/// instead of the contract's schemas).
pub fn is_bare(req: &Request) -> bool {
    req.headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case(HEADER) && v.eq_ignore_ascii_case("postgrest"))
}

/// The bare shape's own rules: a 2xx body is empty (201/204) or a JSON
/// array/object; an error is PostgREST's error JSON.
pub fn check_bare(resp: &Response) -> Result<(), String> {
    match resp.status {
        201 if resp.body.is_empty() => Ok(()),
        200 | 201 | 206 => match resp.json()? {
            Value::Array(_) | Value::Object(_) => Ok(()),
            other => Err(format!(
                "bare body is neither an array nor an object: {other}"
            )),
        },
        204 => expect_eq("204 body", resp.body.is_empty(), true),
        s if s >= 300 => pgrst_error(resp).map(|_| ()),
        s => Err(format!("status {s} is not an answer of the bare shape")),
    }
}

/// PostgREST's error JSON: exactly `code`, `details`, `hint`, `message`.
fn pgrst_error(resp: &Response) -> Result<Value, String> {
    let v = resp.json()?;
    let keys: Vec<&str> = v
        .as_object()
        .ok_or("error body is not an object")?
        .keys()
        .map(String::as_str)
        .collect();
    expect_eq(
        "error keys",
        keys,
        vec!["code", "details", "hint", "message"],
    )?;
    if !v["code"].is_string() || !v["message"].is_string() {
        return Err(format!("code/message are not strings: {v}"));
    }
    Ok(v)
}

fn error_code(want: &'static str) -> impl Fn(&Response) -> Result<(), String> + Send + Sync {
    move |r| {
        let v = pgrst_error(r)?;
        expect_eq("code", v["code"].as_str(), Some(want))
    }
}

/// The bare array's rows.
fn bare_rows(b: &Value) -> Result<&Vec<Value>, String> {
    b.as_array()
        .ok_or_else(|| format!("body is not a bare array: {b}"))
}

fn bare(req: Request) -> Request {
    req.header(HEADER, "postgrest")
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    let get = || ctx.request("get", &format!("/rest/v1/{TABLE}"));
    let writes = format!("/rest/v1/{}", ctx.writes);
    let post = |body: Value| ctx.request("post", &writes).json(body);
    let patch =
        |f: &str, v: &str, body: Value| ctx.request("patch", &writes).query(f, v).json(body);
    let delete = |f: &str, v: &str| ctx.request("delete", &writes).query(f, v);
    // The bare read-back of the writes table's rows named `name`.
    let read_back = |name: &str| {
        bare(ctx.request("get", &writes))
            .query("name", &format!("eq.{name}"))
            .query("select", "name,score")
    };
    vec![
        // --- Reads: the same request in both shapes ---
        Case::new(GET, "default shape: the envelope", get().query("select", "id,name").query("order", "id"), 200)
            .check_json(|b| expect_eq("ids", ids(rows(b)?), vec![1, 2, 3])),
        Case::new(GET, "bare shape: the array", bare(get()).query("select", "id,name").query("order", "id"), 200)
            .check(|r| {
                expect_eq("content-range", r.header("content-range"), Some("0-2/*"))?;
                expect_json(
                    "rows",
                    r.json()?,
                    json!([{"id": 1, "name": "alpha"}, {"id": 2, "name": "beta"}, {"id": 3, "name": "gamma"}]),
                )
            }),
        Case::new(
            GET,
            "bare shape: counted page is a 206 with Preference-Applied",
            bare(get()).query("order", "id").query("limit", "2").header("Prefer", "count=exact"),
            206,
        )
        .check(|r| {
            expect_eq("content-range", r.header("content-range"), Some("0-1/3"))?;
            expect_eq("preference-applied", r.header("preference-applied"), Some("count=exact"))?;
            expect_eq("ids", ids(bare_rows(&r.json()?)?), vec![1, 2])
        }),
        Case::new(
            GET,
            "bare shape: singular is the object",
            bare(get()).query("id", "eq.2").query("select", "name").header("Accept", "application/vnd.pgrst.object+json"),
            200,
        )
        .check(|r| expect_json("object", r.json()?, json!({"name": "beta"}))),
        Case::new(
            GET,
            "bare shape: singular of several rows is 406 PGRST116",
            bare(get()).header("Accept", "application/vnd.pgrst.object+json"),
            406,
        )
        .check(error_code("PGRST116")),
        Case::new(
            GET,
            "bare shape: range past the end is 416 PGRST103",
            bare(get()).query("offset", "10").header("Prefer", "count=exact"),
            416,
        )
        .check(|r| {
            expect_eq("content-range", r.header("content-range"), Some("*/3"))?;
            error_code("PGRST103")(r)
        }),
        Case::new(GET, "bare shape: a bad filter is 400 PGRST100", bare(get()).query("id", "zz.1"), 400)
            .check(error_code("PGRST100")),
        Case::new(GET, "default shape: a bad filter is the envelope", get().query("id", "zz.1"), 400).check(envelope),
        Case::new(
            GET,
            "another shape is 400 in the envelope",
            get().header(HEADER, "contract"),
            400,
        )
        .check(envelope),
        // --- Writes ---
        Case::new(
            POST,
            "bare shape: insert without Prefer is 201 with no body",
            bare(post(json!({"name": "shape-ins-1", "score": 1}))),
            201,
        )
        .check(|r| expect_eq("body", r.body.is_empty(), true))
        .then_json(read_back("shape-ins-1"), 200, |b| {
            expect_json("read back", b, &json!([{"name": "shape-ins-1", "score": 1}]))
        })
        .then_db(ctx.written("name, score", &["shape-ins-1"]), rows_are(json!([{"name": "shape-ins-1", "score": 1}]))),
        Case::new(
            POST,
            "bare shape: insert with return=representation is 201 with the rows",
            bare(post(json!([{"name": "shape-ins-2", "score": 2}])))
                .query("select", "name,score")
                .header("Prefer", "return=representation"),
            201,
        )
        .check_json(|b| expect_json("rows", b, &json!([{"name": "shape-ins-2", "score": 2}])))
        .then_json(read_back("shape-ins-2"), 200, |b| {
            expect_json("read back", b, &json!([{"name": "shape-ins-2", "score": 2}]))
        }),
        Case::new(
            POST,
            "bare shape: upsert echoes its preferences",
            bare(post(json!({"id": 900101, "name": "shape-ups-new", "score": 3})))
                .query("select", "name,score")
                .header("Prefer", "resolution=merge-duplicates, return=representation"),
            201,
        )
        .after(post(json!({"id": 900101, "name": "shape-ups-old", "score": 0})))
        .rights(&[rights::INSERT, rights::UPDATE])
        .check(|r| {
            expect_eq(
                "preference-applied",
                r.header("preference-applied"),
                Some("resolution=merge-duplicates, return=representation"),
            )?;
            expect_json("rows", r.json()?, json!([{"name": "shape-ups-new", "score": 3}]))
        })
        .then_json(read_back("shape-ups-new"), 200, |b| {
            expect_json("read back", b, &json!([{"name": "shape-ups-new", "score": 3}]))
        }),
        Case::new(
            POST,
            "bare shape: a unique violation is 409 23505",
            bare(post(json!({"name": "shape-dup", "score": 9}))),
            409,
        )
        .after(post(json!({"name": "shape-dup", "score": 4})))
        .check(error_code("23505"))
        .then_json(read_back("shape-dup"), 200, |b| {
            expect_json("read back", b, &json!([{"name": "shape-dup", "score": 4}]))
        }),
        Case::new(
            PATCH,
            "bare shape: patch without Prefer is 204",
            bare(patch("name", "eq.shape-patch", json!({"score": 50}))),
            204,
        )
        .after(post(json!({"name": "shape-patch", "score": 5})))
        .check(|r| expect_eq("body", r.body.is_empty(), true))
        .then_json(read_back("shape-patch"), 200, |b| {
            expect_json("read back", b, &json!([{"name": "shape-patch", "score": 50}]))
        }),
        Case::new(
            PATCH,
            "bare shape: patch with return=representation is 200 with the rows",
            bare(patch("name", "eq.shape-patch-2", json!({"score": 60})))
                .query("select", "name,score")
                .header("Prefer", "return=representation"),
            200,
        )
        .after(post(json!({"name": "shape-patch-2", "score": 6})))
        .check_json(|b| expect_json("rows", b, &json!([{"name": "shape-patch-2", "score": 60}])))
        .then_db(
            ctx.written("name, score", &["shape-patch-2"]),
            rows_are(json!([{"name": "shape-patch-2", "score": 60}])),
        ),
        Case::new(
            PATCH,
            "default shape: patch is 200 with the envelope",
            patch("name", "eq.shape-patch-3", json!({"score": 70})).query("select", "name,score"),
            200,
        )
        .after(post(json!({"name": "shape-patch-3", "score": 7})))
        .check_json(|b| expect_json("data", rows(b)?, &vec![json!({"name": "shape-patch-3", "score": 70})]))
        .then_json(read_back("shape-patch-3"), 200, |b| {
            expect_json("read back", b, &json!([{"name": "shape-patch-3", "score": 70}]))
        }),
        Case::new(
            DELETE,
            "bare shape: delete with count=exact is 204 with */1",
            bare(delete("name", "eq.shape-del")).header("Prefer", "count=exact"),
            204,
        )
        .after(post(json!({"name": "shape-del"})))
        .check(|r| expect_eq("content-range", r.header("content-range"), Some("*/1")))
        .then_json(read_back("shape-del"), 200, |b| expect_json("read back", b, &json!([]))),
        Case::new(
            DELETE,
            "bare shape: delete with return=representation is 200 with the rows",
            bare(delete("name", "eq.shape-del-2"))
                .query("select", "name")
                .header("Prefer", "return=representation"),
            200,
        )
        .after(post(json!({"name": "shape-del-2"})))
        .check_json(|b| expect_json("rows", b, &json!([{"name": "shape-del-2"}])))
        .then_db(ctx.written("name", &["shape-del-2"]), rows_are(json!([]))),
        Case::new(
            DELETE,
            "bare shape: delete without filters is 400 PGRST100",
            bare(ctx.request("delete", &writes)),
            400,
        )
        .after(post(json!({"name": "shape-del-keep"})))
        .check(error_code("PGRST100"))
        .then_json(read_back("shape-del-keep"), 200, |b| {
            expect_json("read back", b, &json!([{"name": "shape-del-keep", "score": null}]))
        }),
    ]
}
