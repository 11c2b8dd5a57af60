//! Schema discovery (issue 16): `/schema`, `/schema/tables|columns|
//! constraints|migrations`, `/registry/{api_registry_id}`, `/debug/schema`.
//! Each case creates the relations it reads (through `/gateway/query`, in
//! names of its own, idempotently: the suite runs twice on one database)
//! and checks the body against them.

use super::{Case, Ctx};
use serde_json::{json, Value};

fn sql(ctx: &Ctx, statement: &str) -> crate::http::Request {
    ctx.request("post", "/gateway/query")
        .json(json!({"query": statement}))
}

fn list<'a>(body: &'a Value, field: &str) -> Result<&'a Vec<Value>, String> {
    body[field]
        .as_array()
        .ok_or_else(|| format!("`{field}` is not an array: {body}"))
}

fn names(items: &[Value], field: &str) -> Vec<String> {
    items
        .iter()
        .filter_map(|i| i[field].as_str().map(str::to_string))
        .collect()
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    let route = |path: &str| ctx.request("get", path);
    vec![
        Case::new(
            "get_schema_tables",
            "lists a table and a view of its own, no system schema",
            route("/schema/tables"),
            200,
        )
        .after(sql(ctx, "CREATE TABLE IF NOT EXISTS conf_disc_listed (id bigint PRIMARY KEY)"))
        .after(sql(
            ctx,
            "CREATE OR REPLACE VIEW conf_disc_listed_view AS SELECT id FROM conf_disc_listed",
        ))
        .check_json(|b| {
            let tables = list(b, "tables")?;
            let find = |name: &str| {
                tables
                    .iter()
                    .find(|t| t["table_schema"] == "public" && t["table_name"] == name)
                    .ok_or(format!("public.{name} is not listed"))
            };
            super::expect_eq("table type", &find("conf_disc_listed")?["table_type"], &json!("BASE TABLE"))?;
            super::expect_eq("view type", &find("conf_disc_listed_view")?["table_type"], &json!("VIEW"))?;
            match tables.iter().find(|t| {
                let s = t["table_schema"].as_str().unwrap_or("");
                s.starts_with("pg_") || s == "information_schema"
            }) {
                Some(t) => Err(format!("a system relation is listed: {t}")),
                None => Ok(()),
            }
        }),
        Case::new(
            "get_schema_columns",
            "columns of a table in ordinal order",
            route("/schema/columns").query("table_name", "conf_disc_columns"),
            200,
        )
        .after(sql(
            ctx,
            "CREATE TABLE IF NOT EXISTS conf_disc_columns (id bigint NOT NULL, label text DEFAULT 'x', seen timestamptz)",
        ))
        .check_json(|b| {
            super::expect_json(
                "columns",
                b,
                &json!({"columns": [
                    {"column_name": "id", "data_type": "bigint", "column_default": null, "is_nullable": "NO"},
                    {"column_name": "label", "data_type": "text", "column_default": "'x'::text", "is_nullable": "YES"},
                    {"column_name": "seen", "data_type": "timestamp with time zone", "column_default": null, "is_nullable": "YES"},
                ]}),
            )
        }),
        Case::new(
            "get_schema_columns",
            "`schema.table` names the schema",
            route("/schema/columns").query("table_name", "public.conf_disc_qualified"),
            200,
        )
        // A table of its own: cases run concurrently, and two `CREATE TABLE
        // IF NOT EXISTS` of one name at once collide.
        .after(sql(
            ctx,
            "CREATE TABLE IF NOT EXISTS conf_disc_qualified (id bigint NOT NULL, label text DEFAULT 'x', seen timestamptz)",
        ))
        .check_json(|b| {
            super::expect_eq("columns", names(list(b, "columns")?, "column_name"), vec!["id".to_string(), "label".into(), "seen".into()])
        }),
        Case::new(
            "get_schema_columns",
            "an unknown table is 400",
            route("/schema/columns").query("table_name", "conf_disc_no_such_table"),
            400,
        ),
        Case::new(
            "get_schema_columns",
            "a hostile table name is 400",
            route("/schema/columns").query("table_name", "x\";drop table conformance_items--"),
            400,
        )
        .then_json(route("/schema/columns").query("table_name", "conformance_items"), 200, |b| {
            super::expect_eq("conformance_items still has its columns", list(b, "columns")?.len(), 4)
        }),
        Case::new(
            "get_schema_constraints",
            "primary key and unique constraints with their columns",
            route("/schema/constraints").query("table_name", "conf_disc_keys"),
            200,
        )
        .after(sql(
            ctx,
            "CREATE TABLE IF NOT EXISTS conf_disc_keys (a int, b int, c int, PRIMARY KEY (a), CONSTRAINT conf_disc_keys_bc UNIQUE (c, b))",
        ))
        .check_json(|b| {
            let constraints = list(b, "constraints")?;
            let pairs: Vec<(String, Value)> = constraints
                .iter()
                .map(|c| (c["constraint_name"].as_str().unwrap_or("").to_string(), c["columns"].clone()))
                .collect();
            super::expect_json(
                "constraints",
                pairs,
                vec![
                    ("conf_disc_keys_pkey".to_string(), json!(["a"])),
                    ("conf_disc_keys_bc".to_string(), json!(["c", "b"])),
                ],
            )
        }),
        Case::new(
            "get_schema_constraints",
            "an unknown table is 400",
            route("/schema/constraints").query("table_name", "conf_disc_no_such_table"),
            400,
        ),
        Case::new(
            "get_schema_migrations",
            "no supabase table: an empty list with a message, then its rows",
            route("/schema/migrations"),
            200,
        )
        .after(sql(ctx, "DROP SCHEMA IF EXISTS supabase_migrations CASCADE"))
        .check_json(|b| {
            super::expect_json("migrations", &b["migrations"], &json!([]))?;
            match b["message"].as_str() {
                Some(m) if !m.is_empty() => Ok(()),
                _ => Err(format!("no message: {b}")),
            }
        })
        .then_status(sql(ctx, "CREATE SCHEMA supabase_migrations"), 200)
        .then_status(
            sql(ctx, "CREATE TABLE supabase_migrations.schema_migrations (version text PRIMARY KEY, statements text[], name text)"),
            200,
        )
        .then_status(
            sql(ctx, "INSERT INTO supabase_migrations.schema_migrations VALUES ('20240101000000', '{}', 'init'), ('20240201000000', '{}', 'next')"),
            200,
        )
        .then_json(route("/schema/migrations"), 200, |b| {
            super::expect_json(
                "migrations",
                b,
                &json!({"migrations": [
                    {"version": "20240101000000", "name": "init"},
                    {"version": "20240201000000", "name": "next"},
                ]}),
            )
        }),
        Case::new(
            "get_schema",
            "a schema's tables, columns, constraints, indexes, views and functions",
            route("/schema").query("schema", "conf_disc"),
            200,
        )
        .after(sql(ctx, "CREATE SCHEMA IF NOT EXISTS conf_disc"))
        .after(sql(ctx, "CREATE TABLE IF NOT EXISTS conf_disc.items (id bigint PRIMARY KEY, sku text UNIQUE, qty int)"))
        .after(sql(ctx, "CREATE INDEX IF NOT EXISTS items_qty_hash ON conf_disc.items USING hash (qty)"))
        .after(sql(ctx, "CREATE OR REPLACE VIEW conf_disc.skus AS SELECT sku FROM conf_disc.items"))
        .after(sql(
            ctx,
            "CREATE OR REPLACE FUNCTION conf_disc.double_it(n int) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT n * 2 $$",
        ))
        .check_json(|b| {
            super::expect_eq("status", &b["status"], &json!("success"))?;
            let d = &b["data"];
            super::expect_eq("schema", &d["schema"], &json!("conf_disc"))?;
            super::expect_eq("tables", names(list(d, "tables")?, "table_name"), vec!["items".to_string(), "skus".into()])?;
            super::expect_eq("columns", names(list(d, "columns")?, "column_name"), vec!["id".to_string(), "sku".into(), "qty".into(), "sku".into()])?;
            let constraints = names(list(d, "constraints")?, "constraint_name");
            super::expect_eq("constraints", constraints, vec!["items_pkey".to_string(), "items_sku_key".into()])?;
            let indexes = list(d, "indexes")?;
            let hash = indexes
                .iter()
                .find(|i| i["index_name"] == "items_qty_hash")
                .ok_or("the hash index is not listed")?;
            super::expect_json("hash index", (&hash["method"], &hash["columns"]), (&json!("hash"), &json!(["qty"])))?;
            super::expect_eq("views", names(list(d, "views")?, "view_name"), vec!["skus".to_string()])?;
            let functions = list(d, "functions")?;
            super::expect_json(
                "functions",
                functions,
                &vec![json!({"schema": "conf_disc", "name": "double_it", "arguments": "n integer",
                             "returns": "integer", "language": "sql", "volatility": "immutable"})],
            )
        }),
        Case::new(
            "get_schema",
            "a system schema is 400",
            route("/schema").query("schema", "pg_catalog"),
            400,
        ),
        Case::new(
            "get_registry_by_api_registry_id",
            "a registered client's entry as a one-element array",
            route("/registry/client:conf_registry_one"),
            200,
        )
        .after(ctx.request("post", "/admin/clients").json(json!({
            "client_name": "conf_registry_one",
            "pg_uri": ctx.tenant_db_url.clone().unwrap_or_else(|| "postgres://conformance@127.0.0.1:1/none".into()),
            "description": "looked up by id",
        })))
        .check_json(|b| {
            let entries = b.as_array().ok_or("body is not an array")?;
            super::expect_eq("entries", entries.len(), 1)?;
            let e = &entries[0];
            super::expect_json(
                "entry",
                (&e["api_registry_id"], &e["kind"], &e["name"], &e["description"]),
                (&json!("client:conf_registry_one"), &json!("client"), &json!("conf_registry_one"), &json!("looked up by id")),
            )
        })
        .then_status(ctx.request("delete", "/admin/clients/conf_registry_one"), 200)
        .then_json(
            route("/registry/client:conf_registry_one").header("Cache-Control", "no-cache"),
            200,
            |b| super::expect_json("after the delete (no-cache)", b, &json!([])),
        ),
        Case::new(
            "get_registry_by_api_registry_id",
            "an unknown id is an empty array",
            route("/registry/conf-no-such-entry"),
            200,
        )
        .check_json(|b| super::expect_json("entries", b, &json!([]))),
        Case::new(
            "get_debug_schema",
            "the catalog holds every table our migrations create",
            route("/debug/schema"),
            200,
        )
        .check_json(|b| {
            let summary = &b["summary"];
            super::expect_eq("health", &summary["health"], &json!("healthy"))?;
            super::expect_eq("found", &summary["found_table_count"], &summary["expected_table_count"])?;
            let expected = list(b, "expected_tables")?;
            let audit = expected
                .iter()
                .find(|t| t["table_name"] == "database_audit_log")
                .ok_or("database_audit_log is not expected")?;
            super::expect_eq("audit table found", &audit["found"], &json!(true))?;
            super::expect_json("audit table missing columns", &audit["missing_columns"], &json!([]))?;
            super::expect_json("still needed", &b["still_needed"]["required_missing_tables"], &json!([]))
        }),
    ]
}
