//! Management DDL (`/management/*`, issue 16). Every case creates its own
//! API key bound to the conformance client holding the management rights
//! (setup step 0; the admin key is refused on these routes), works on
//! objects named for this run, and reads the effect back from the tenant
//! database (`information_schema`, `pg_indexes`, `pg_views`, `pg_proc`,
//! `pg_extension`).

use super::{envelope, expect_eq, Case, Ctx};
use crate::http::Request;
use serde_json::{json, Value};

const RIGHTS: &[&str] = &[
    "management.read",
    "management.tables.write",
    "management.tables.drop",
    "management.columns.drop",
    "management.indexes.write",
    "management.indexes.drop",
    "management.views.write",
    "management.views.drop",
    "management.functions.read",
    "management.functions.write",
    "management.functions.drop",
    "management.extensions.write",
];

/// Setup step 0: the bound key (`{{0.api_key}}`).
fn bound_key(ctx: &Ctx, rights: &[&str]) -> Request {
    ctx.request("post", "/admin/api-keys").json(json!({
        "name": "conf-management",
        "rights": rights,
        "client_name": ctx.client,
    }))
}

/// A management request with the bound key of step 0 (no admin key).
fn m(ctx: &Ctx, method: &str, path: &str) -> Request {
    Request::new(method, path)
        .header("X-Athena-Client", &ctx.client)
        .header("apikey", "{{0.api_key}}")
}

fn unique(prefix: &str) -> String {
    format!(
        "conf_{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

fn create_table(ctx: &Ctx, table: &str) -> Request {
    m(ctx, "post", "/management/tables").json(json!({
        "table_name": table,
        "columns": [
            {"name": "id", "data_type": "bigint", "nullable": false},
            {"name": "name", "data_type": "text", "default_expression": "'x'"},
            {"name": "note", "data_type": "varchar(40)"}
        ]
    }))
}

fn rows(v: &Value) -> Result<&Vec<Value>, String> {
    v.as_array().ok_or_else(|| format!("not rows: {v}"))
}

/// The `n` of `SELECT count(*)::int AS n …`.
fn count(v: &Value) -> Result<i64, String> {
    rows(v)?
        .first()
        .and_then(|r| r["n"].as_i64())
        .ok_or_else(|| format!("no count in {v}"))
}

fn counted(want: i64) -> impl Fn(&Value) -> Result<(), String> + Send + Sync + 'static {
    move |v| expect_eq("rows", count(v)?, want)
}

fn success(b: &Value) -> Result<(), String> {
    expect_eq("status", &b["status"], &json!("success"))
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    let t_create = unique("mt");
    let t_alter = unique("ma");
    let t_drop = unique("md");
    let t_col = unique("mc");
    let t_idx = unique("mi");
    let t_idx_drop = unique("mj");
    let t_view = unique("mv");
    let t_view_drop = unique("mw");
    let f_put = unique("fp");
    let f_get = unique("fg");
    let f_drop = unique("fd");
    let function = |name: &str| {
        json!({"ddl": format!(
            "CREATE OR REPLACE FUNCTION public.{name}(x integer) RETURNS integer LANGUAGE sql IMMUTABLE AS $$ SELECT x + 1 $$"
        )})
    };
    let columns_of = |t: &str| {
        format!(
            "SELECT column_name::text AS column_name, data_type::text AS data_type \
             FROM information_schema.columns WHERE table_name = '{t}' ORDER BY ordinal_position"
        )
    };
    let relation =
        |name: &str| format!("SELECT count(*)::int AS n FROM pg_class WHERE relname = '{name}'");
    vec![
        Case::new(
            "get_management_capabilities",
            "capabilities with the rights the checks use",
            m(ctx, "get", "/management/capabilities"),
            200,
        )
        .after(bound_key(ctx, &["management.read"]))
        .check_json(|b| {
            success(b)?;
            let d = &b["data"];
            expect_eq("backend", &d["backend"], &json!("postgresql"))?;
            expect_eq("retention", &d["retention_mutation_supported"], &json!(false))?;
            expect_eq("replication", &d["replication_mutation_supported"], &json!(false))?;
            let has = |field: &str, v: Value| {
                d[field]
                    .as_array()
                    .is_some_and(|a| a.contains(&v))
                    .then_some(())
                    .ok_or(format!("{field} lacks {v}"))
            };
            has("allowed_index_methods", json!("brin"))?;
            has("allowed_column_data_types", json!("jsonb"))?;
            has(
                "required_rights",
                json!({"operation": "create_table", "required_right": "management.tables.write"}),
            )
        }),
        Case::new(
            "get_management_capabilities",
            "no key is 401",
            Request::new("get", "/management/capabilities").header("X-Athena-Client", &ctx.client),
            401,
        )
        .check(envelope),
        Case::new(
            "get_management_capabilities",
            "the admin key is not bound to a client: 403",
            ctx.request("get", "/management/capabilities"),
            403,
        )
        .check(envelope),
        Case::new(
            "get_management_capabilities",
            "a bound key without management.read is 403",
            m(ctx, "get", "/management/capabilities"),
            403,
        )
        .after(bound_key(ctx, &["management.tables.write"]))
        .check(envelope),
        Case::new(
            "post_management_tables",
            "creates the table with its columns",
            create_table(ctx, &t_create),
            201,
        )
        .after(bound_key(ctx, RIGHTS))
        .check_json(|b| {
            success(b)?;
            expect_eq("columns", b["data"]["columns"].as_array().map(Vec::len), Some(3))
        })
        .then_db(columns_of(&t_create), |v| {
            expect_eq(
                "columns",
                v.clone(),
                json!([
                    {"column_name": "id", "data_type": "bigint"},
                    {"column_name": "name", "data_type": "text"},
                    {"column_name": "note", "data_type": "character varying"}
                ]),
            )
        }),
        Case::new(
            "post_management_tables",
            "an existing table is 409",
            create_table(ctx, &format!("{t_create}_x")),
            409,
        )
        .after(bound_key(ctx, RIGHTS))
        .after(create_table(ctx, &format!("{t_create}_x")))
        .check(envelope),
        Case::new(
            "post_management_tables",
            "a hostile name is 400 and creates nothing",
            m(ctx, "post", "/management/tables")
                .json(json!({"table_name": "conf_hostile\"; DROP TABLE x; --", "columns": []})),
            400,
        )
        .after(bound_key(ctx, RIGHTS))
        .check(envelope)
        .then_db(
            "SELECT count(*)::int AS n FROM pg_class WHERE relname LIKE 'conf_hostile%'",
            counted(0),
        ),
        Case::new(
            "post_management_tables",
            "a default outside the closed grammar is 400",
            m(ctx, "post", "/management/tables").json(json!({
                "table_name": unique("mbad"),
                "columns": [{"name": "c", "data_type": "text", "default_expression": "pg_sleep(1)"}]
            })),
            400,
        )
        .after(bound_key(ctx, RIGHTS))
        .check(envelope),
        Case::new(
            "patch_management_tables_by_table_name",
            "adds a column and sets it NOT NULL in one transaction",
            m(ctx, "patch", &format!("/management/tables/{t_alter}")).json(json!({
                "operations": [
                    {"type": "add_column", "column": {"name": "price", "data_type": "numeric(10,2)", "default_expression": "0"}},
                    {"type": "set_not_null", "column_name": "price"}
                ]
            })),
            200,
        )
        .after(bound_key(ctx, RIGHTS))
        .after(create_table(ctx, &t_alter))
        .check_json(success)
        .then_db(
            format!(
                "SELECT count(*)::int AS n FROM information_schema.columns \
                 WHERE table_name = '{t_alter}' AND column_name = 'price' AND is_nullable = 'NO'"
            ),
            counted(1),
        ),
        Case::new(
            "patch_management_tables_by_table_name",
            "an unknown table is 404",
            m(ctx, "patch", &format!("/management/tables/{}", unique("nope"))).json(json!({
                "operations": [{"type": "drop_not_null", "column_name": "x"}]
            })),
            404,
        )
        .after(bound_key(ctx, RIGHTS))
        .check(envelope),
        Case::new(
            "delete_management_tables_by_table_name",
            "drops the table",
            m(ctx, "delete", &format!("/management/tables/{t_drop}")).json(json!({"cascade": false})),
            200,
        )
        .after(bound_key(ctx, RIGHTS))
        .after(create_table(ctx, &t_drop))
        .check_json(success)
        .then_db(relation(&t_drop), counted(0)),
        Case::new(
            "delete_management_tables_by_table_name",
            "an unknown table is 404",
            m(ctx, "delete", &format!("/management/tables/{}", unique("nope"))).json(json!({})),
            404,
        )
        .after(bound_key(ctx, RIGHTS))
        .check(envelope),
        Case::new(
            "delete_management_tables_by_table_name_columns_by_column_name",
            "drops the column",
            m(ctx, "delete", &format!("/management/tables/{t_col}/columns/note")).json(json!({})),
            200,
        )
        .after(bound_key(ctx, RIGHTS))
        .after(create_table(ctx, &t_col))
        .check_json(success)
        .then_db(columns_of(&t_col), |v| {
            expect_eq("columns left", rows(v)?.len(), 2)
        }),
        Case::new(
            "delete_management_tables_by_table_name_columns_by_column_name",
            "an unknown column is 404",
            m(ctx, "delete", &format!("/management/tables/{t_col}_u/columns/nope")).json(json!({})),
            404,
        )
        .after(bound_key(ctx, RIGHTS))
        .after(create_table(ctx, &format!("{t_col}_u")))
        .check(envelope)
        .then_db(columns_of(&format!("{t_col}_u")), |v| {
            expect_eq("columns", rows(v)?.len(), 3)
        }),
        Case::new(
            "post_management_indexes",
            "creates the index under its default name",
            m(ctx, "post", "/management/indexes")
                .json(json!({"table_name": t_idx, "columns": ["name"], "method": "btree"})),
            201,
        )
        .after(bound_key(ctx, RIGHTS))
        .after(create_table(ctx, &t_idx))
        .check_json({
            let name = format!("{t_idx}_name_idx");
            move |b| expect_eq("index_name", &b["data"]["index_name"], &json!(name))
        })
        .then_db(
            format!("SELECT count(*)::int AS n FROM pg_indexes WHERE indexname = '{t_idx}_name_idx'"),
            counted(1),
        ),
        Case::new(
            "post_management_indexes",
            "an unknown table is 404",
            m(ctx, "post", "/management/indexes").json(json!({"table_name": unique("nope"), "columns": ["a"]})),
            404,
        )
        .after(bound_key(ctx, RIGHTS))
        .check(envelope),
        Case::new(
            "delete_management_indexes_by_index_name",
            "drops the index",
            m(ctx, "delete", &format!("/management/indexes/{t_idx_drop}_i")).json(json!({})),
            200,
        )
        .after(bound_key(ctx, RIGHTS))
        .after(create_table(ctx, &t_idx_drop))
        .after(m(ctx, "post", "/management/indexes").json(json!({
            "table_name": t_idx_drop, "columns": ["id"], "index_name": format!("{t_idx_drop}_i")
        })))
        .check_json(success)
        .then_db(
            format!("SELECT count(*)::int AS n FROM pg_indexes WHERE indexname = '{t_idx_drop}_i'"),
            counted(0),
        ),
        Case::new(
            "delete_management_indexes_by_index_name",
            "an unknown index is 404",
            m(ctx, "delete", &format!("/management/indexes/{}", unique("nope"))).json(json!({})),
            404,
        )
        .after(bound_key(ctx, RIGHTS))
        .check(envelope),
        Case::new(
            "post_management_views",
            "creates the view",
            m(ctx, "post", "/management/views").json(json!({
                "view_name": format!("{t_view}_v"),
                "query": format!("SELECT id, name FROM {t_view} WHERE name <> ';'")
            })),
            200,
        )
        .after(bound_key(ctx, RIGHTS))
        .after(create_table(ctx, &t_view))
        .check_json(success)
        .then_db(
            format!("SELECT count(*)::int AS n FROM pg_views WHERE viewname = '{t_view}_v'"),
            counted(1),
        ),
        Case::new(
            "post_management_views",
            "a query of two statements is 400",
            m(ctx, "post", "/management/views").json(json!({
                "view_name": format!("{t_view}_bad"),
                "query": "SELECT 1; DROP TABLE x"
            })),
            400,
        )
        .after(bound_key(ctx, RIGHTS))
        .check(envelope)
        .then_db(relation(&format!("{t_view}_bad")), counted(0)),
        Case::new(
            "delete_management_views_by_view_name",
            "drops the view",
            m(ctx, "delete", &format!("/management/views/{t_view_drop}_v")).json(json!({})),
            200,
        )
        .after(bound_key(ctx, RIGHTS))
        .after(create_table(ctx, &t_view_drop))
        .after(m(ctx, "post", "/management/views").json(json!({
            "view_name": format!("{t_view_drop}_v"),
            "query": format!("SELECT id FROM {t_view_drop}")
        })))
        .check_json(success)
        .then_db(
            format!("SELECT count(*)::int AS n FROM pg_views WHERE viewname = '{t_view_drop}_v'"),
            counted(0),
        ),
        Case::new(
            "get_management_functions",
            "lists the function from pg_proc",
            m(ctx, "get", "/management/functions")
                .query("name_like", &f_get)
                .query("include_definition", "true"),
            200,
        )
        .after(bound_key(ctx, RIGHTS))
        .after(m(ctx, "put", "/management/functions").json(function(&f_get)))
        .check_json({
            let name = f_get.clone();
            move |b| {
                success(b)?;
                let fs = b["data"]["functions"].as_array().ok_or("no data.functions")?;
                expect_eq("functions", fs.len(), 1)?;
                expect_eq("name", &fs[0]["name"], &json!(name))?;
                expect_eq("language", &fs[0]["language"], &json!("sql"))?;
                expect_eq("arguments", &fs[0]["arguments"], &json!("x integer"))?;
                fs[0]["definition"]
                    .as_str()
                    .filter(|d| d.contains("x + 1"))
                    .map(|_| ())
                    .ok_or("no definition".into())
            }
        }),
        Case::new(
            "put_management_functions",
            "creates the function",
            m(ctx, "put", "/management/functions").json(function(&f_put)),
            200,
        )
        .after(bound_key(ctx, RIGHTS))
        .check_json(success)
        .then_db(
            format!("SELECT count(*)::int AS n FROM pg_proc WHERE proname = '{f_put}'"),
            counted(1),
        ),
        Case::new(
            "put_management_functions",
            "LANGUAGE c is 400",
            m(ctx, "put", "/management/functions").json(json!({
                "ddl": format!("CREATE FUNCTION public.{f_put}_c() RETURNS int LANGUAGE c AS 'x', 'y'")
            })),
            400,
        )
        .after(bound_key(ctx, RIGHTS))
        .check(envelope)
        .then_db(
            format!("SELECT count(*)::int AS n FROM pg_proc WHERE proname = '{f_put}_c'"),
            counted(0),
        ),
        Case::new(
            "delete_management_functions",
            "drops the function",
            m(ctx, "delete", "/management/functions")
                .json(json!({"function_name": f_drop, "arg_types": ["integer"]})),
            200,
        )
        .after(bound_key(ctx, RIGHTS))
        .after(m(ctx, "put", "/management/functions").json(function(&f_drop)))
        .check_json(success)
        .then_db(
            format!("SELECT count(*)::int AS n FROM pg_proc WHERE proname = '{f_drop}'"),
            counted(0),
        ),
        Case::new(
            "delete_management_functions",
            "an unknown function is 404",
            m(ctx, "delete", "/management/functions")
                .json(json!({"function_name": unique("nope"), "arg_types": []})),
            404,
        )
        .after(bound_key(ctx, RIGHTS))
        .check(envelope),
        Case::new(
            "post_management_extensions_install",
            "installs an allowlisted extension",
            m(ctx, "post", "/management/extensions/install")
                .json(json!({"extension_name": "pgcrypto", "if_not_exists": true})),
            200,
        )
        .after(bound_key(ctx, RIGHTS))
        .check_json(success)
        .then_db(
            "SELECT count(*)::int AS n FROM pg_extension WHERE extname = 'pgcrypto'",
            counted(1),
        ),
        Case::new(
            "post_management_extensions_install",
            "an extension outside the allowlist is 400",
            m(ctx, "post", "/management/extensions/install")
                .json(json!({"extension_name": "plpython3u"})),
            400,
        )
        .after(bound_key(ctx, RIGHTS))
        .check(envelope)
        .then_db(
            "SELECT count(*)::int AS n FROM pg_extension WHERE extname = 'plpython3u'",
            counted(0),
        ),
    ]
}
