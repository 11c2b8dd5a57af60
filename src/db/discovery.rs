//! Schema discovery (issue 16): what a tenant database holds, read from
//! `pg_catalog` for `/schema`, `/schema/tables|columns|constraints|migrations`.
//!
//! Each read is ONE catalog query that builds its JSON answer in Postgres
//! (no per-table loop, nothing decoded row by row). Postgres' own schemas
//! (`pg_*`, `information_schema`), the gateway's `athena_gateway` and the
//! gateway's tables in the shared `athena` schema
//! (`crate::db::migrate::TENANT_TABLES`) are never shown. Names from the
//! request are checked (`name`) and always bound, never written into SQL.

use super::Pool;
use crate::domain::DomainError;

/// Schemas and relations a discovery never shows: `$1` is the gateway's
/// tenant tables (a `text[]`); the gateway's own schemas
/// (`crate::db::migrate::GATEWAY_SCHEMAS`, a test checks the list).
const USER_RELATION: &str = "n.nspname NOT LIKE 'pg\\_%'
    AND n.nspname NOT IN ('information_schema', 'athena_gateway', 'athena_chat', 'billing')
    AND NOT (n.nspname = 'athena' AND c.relname = ANY($1::text[]))";

/// The relation kinds discovery lists: tables (plain, partitioned), views,
/// materialized views, foreign tables.
const LISTED_KINDS: &str = "c.relkind IN ('r', 'p', 'v', 'm', 'f')";

/// `table_type` as `information_schema.tables` spells it (materialized
/// views, which it omits, as `MATERIALIZED VIEW`).
const TABLE_TYPE: &str = "CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
    WHEN 'f' THEN 'FOREIGN' ELSE 'BASE TABLE' END";

fn gateway_tables() -> Vec<String> {
    crate::db::migrate::TENANT_TABLES
        .iter()
        .map(|t| t.to_string())
        .collect()
}

/// A schema, table or other name from a request: `^[A-Za-z_][A-Za-z0-9_$]*$`,
/// at most 63 bytes (the management grammar), else 400 naming `field`.
pub fn name(field: &str, raw: &str) -> Result<String, DomainError> {
    let ok = !raw.is_empty()
        && raw.len() <= crate::domain::identifier::MAX_IDENT_BYTES
        && raw
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$');
    if ok {
        Ok(raw.to_string())
    } else {
        Err(DomainError::invalid_field(
            field,
            "must match ^[A-Za-z_][A-Za-z0-9_$]*$ and be at most 63 bytes",
        ))
    }
}

/// Whether `schema` is one discovery never shows (400 when asked for).
pub fn is_hidden_schema(schema: &str) -> bool {
    crate::db::tenants::is_system_schema(schema) || crate::db::migrate::is_gateway_schema(schema)
}

/// A schema named by a request: a valid name, not a hidden one.
pub fn schema_name(field: &str, raw: &str) -> Result<String, DomainError> {
    let schema = name(field, raw)?;
    if is_hidden_schema(&schema) {
        return Err(DomainError::invalid_field(
            field,
            "system schemas are not shown",
        ));
    }
    Ok(schema)
}

/// `table_name` (`s.t` accepted) and an optional `table_schema`: the
/// schema (`None`: look the table up across schemas, `public` first) and
/// the table.
pub fn table_ref(
    table_name: &str,
    table_schema: Option<&str>,
) -> Result<(Option<String>, String), DomainError> {
    let table_schema = table_schema.map(str::trim).filter(|s| !s.is_empty());
    match (table_schema, table_name.split_once('.')) {
        (Some(_), Some(_)) => Err(DomainError::invalid_field(
            "table_name",
            "must not be schema-qualified when table_schema is given",
        )),
        (Some(s), None) => Ok((
            Some(schema_name("table_schema", s)?),
            name("table_name", table_name)?,
        )),
        (None, Some((s, t))) => Ok((Some(schema_name("table_name", s)?), name("table_name", t)?)),
        (None, None) => Ok((None, name("table_name", table_name)?)),
    }
}

/// The one text column of the one row `sql` answers (JSON Postgres built).
async fn text(
    pool: &Pool,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Option<String>, DomainError> {
    let conn = pool.get().await?;
    Ok(conn.query_one(sql, params).await?.get(0))
}

/// `[{table_schema, table_name, table_type}]` (JSON text), by schema then
/// name.
pub async fn tables(pool: &Pool) -> Result<String, DomainError> {
    let sql = format!(
        "SELECT COALESCE(json_agg(json_build_object(
                    'table_schema', n.nspname, 'table_name', c.relname, 'table_type', {TABLE_TYPE})
                    ORDER BY n.nspname, c.relname), '[]'::json)::text
           FROM pg_catalog.pg_class c
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE {LISTED_KINDS} AND {USER_RELATION}"
    );
    Ok(text(pool, &sql, &[&gateway_tables()])
        .await?
        .unwrap_or_else(|| "[]".into()))
}

/// The relation `$2.$3` (`$2` NULL: `public` first, then the first schema
/// by name holding it), as the CTE `t (oid, nspname, relname)`.
fn target_cte() -> String {
    format!(
        "t AS (
             SELECT c.oid, n.nspname, c.relname
               FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE {LISTED_KINDS} AND {USER_RELATION}
                AND c.relname = $3 AND ($2::text IS NULL OR n.nspname = $2)
              ORDER BY (n.nspname = 'public') DESC, n.nspname
              LIMIT 1)"
    )
}

/// `[{column_name, data_type, column_default, is_nullable}]` (JSON text) of
/// one table or view, in ordinal order; `None` when there is no such
/// relation. `data_type` is `format_type` without the modifier
/// (`character varying`, `integer[]`, `timestamp with time zone`),
/// `is_nullable` `YES`/`NO`, as in `information_schema.columns`.
pub async fn columns(
    pool: &Pool,
    schema: Option<&str>,
    table: &str,
) -> Result<Option<String>, DomainError> {
    let sql = format!(
        "WITH {cte}
         SELECT CASE WHEN t.oid IS NULL THEN NULL ELSE COALESCE((
                    SELECT json_agg(json_build_object(
                               'column_name', a.attname,
                               'data_type', pg_catalog.format_type(a.atttypid, NULL),
                               'column_default', pg_catalog.pg_get_expr(d.adbin, d.adrelid),
                               'is_nullable', CASE WHEN a.attnotnull THEN 'NO' ELSE 'YES' END)
                               ORDER BY a.attnum)
                      FROM pg_catalog.pg_attribute a
                      LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                     WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]'::json)::text END
           FROM (SELECT 1) one LEFT JOIN t ON true",
        cte = target_cte()
    );
    text(pool, &sql, &[&gateway_tables(), &schema, &table]).await
}

/// `[{constraint_name, constraint_type, columns}]` (JSON text): the
/// primary key and unique constraints of one table, columns in key order;
/// `None` when there is no such table.
pub async fn constraints(
    pool: &Pool,
    schema: Option<&str>,
    table: &str,
) -> Result<Option<String>, DomainError> {
    let sql = format!(
        "WITH {cte}
         SELECT CASE WHEN t.oid IS NULL THEN NULL ELSE COALESCE((
                    SELECT json_agg(json_build_object(
                               'constraint_name', con.conname,
                               'constraint_type', CASE con.contype WHEN 'p' THEN 'PRIMARY KEY' ELSE 'UNIQUE' END,
                               'columns', (SELECT json_agg(a.attname ORDER BY k.ord)
                                             FROM unnest(con.conkey) WITH ORDINALITY k(attnum, ord)
                                             JOIN pg_catalog.pg_attribute a
                                               ON a.attrelid = con.conrelid AND a.attnum = k.attnum))
                               ORDER BY con.contype, con.conname)
                      FROM pg_catalog.pg_constraint con
                     WHERE con.conrelid = t.oid AND con.contype IN ('p', 'u')), '[]'::json)::text END
           FROM (SELECT 1) one LEFT JOIN t ON true",
        cte = target_cte()
    );
    text(pool, &sql, &[&gateway_tables(), &schema, &table]).await
}

/// `supabase_migrations.schema_migrations` as `[{version, name}]` (JSON text) by
/// version; `None` when the table does not exist. Columns are read through
/// `to_jsonb`, so a table without `name` (older Supabase CLIs) answers
/// `name: null`.
pub async fn migrations(pool: &Pool) -> Result<Option<String>, DomainError> {
    let conn = pool.get().await?;
    let exists: bool = conn
        .query_one(
            "SELECT to_regclass('supabase_migrations.schema_migrations') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let text: String = conn
        .query_one(
            "SELECT COALESCE(json_agg(json_build_object('version', to_jsonb(m) ->> 'version',
                                                        'name', to_jsonb(m) ->> 'name')
                                      ORDER BY to_jsonb(m) ->> 'version'), '[]'::json)::text
               FROM supabase_migrations.schema_migrations m",
            &[],
        )
        .await?
        .get(0);
    Ok(Some(text))
}

/// Everything `schema` holds (JSON text), in one query: `{schema, tables, columns,
/// constraints, indexes, views, functions}`; `None` when the schema does
/// not exist. Lists are sorted by table (or name) then position. No
/// `pg_get_indexdef`/`pg_get_constraintdef` per row: on 500 tables they
/// cost more than everything else together.
pub async fn schema(pool: &Pool, schema: &str) -> Result<Option<String>, DomainError> {
    text(pool, &schema_sql(), &[&gateway_tables(), &schema]).await
}

fn schema_sql() -> String {
    format!(
        "WITH ns AS (SELECT oid, nspname FROM pg_catalog.pg_namespace WHERE nspname = $2),
         rel AS (
             SELECT c.oid, c.relname, c.relkind, n.nspname
               FROM pg_catalog.pg_class c
               JOIN ns n ON n.oid = c.relnamespace
              WHERE {LISTED_KINDS} AND {USER_RELATION})
         SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM ns) THEN NULL ELSE json_build_object(
           'schema', $2::text,
           'tables', COALESCE((
               SELECT json_agg(json_build_object('table_schema', c.nspname, 'table_name', c.relname,
                                                 'table_type', {TABLE_TYPE}) ORDER BY c.relname)
                 FROM rel c), '[]'::json),
           'columns', COALESCE((
               SELECT json_agg(json_build_object(
                          'table_name', c.relname, 'column_name', a.attname,
                          'ordinal_position', a.attnum,
                          'data_type', pg_catalog.format_type(a.atttypid, NULL),
                          'full_data_type', pg_catalog.format_type(a.atttypid, a.atttypmod),
                          'column_default', pg_catalog.pg_get_expr(d.adbin, d.adrelid),
                          'is_nullable', CASE WHEN a.attnotnull THEN 'NO' ELSE 'YES' END)
                          ORDER BY c.relname, a.attnum)
                 FROM rel c
                 JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                 LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum), '[]'::json),
           'constraints', COALESCE((
               SELECT json_agg(json_build_object(
                          'table_name', c.relname, 'constraint_name', con.conname,
                          'constraint_type', CASE con.contype WHEN 'p' THEN 'PRIMARY KEY' WHEN 'u' THEN 'UNIQUE'
                                             WHEN 'f' THEN 'FOREIGN KEY' WHEN 'c' THEN 'CHECK'
                                             WHEN 'x' THEN 'EXCLUDE' ELSE con.contype::text END,
                          'columns', COALESCE((SELECT json_agg(a.attname ORDER BY array_position(con.conkey, a.attnum))
                                                 FROM pg_catalog.pg_attribute a
                                                WHERE a.attrelid = con.conrelid AND a.attnum = ANY(con.conkey)), '[]'::json))
                          ORDER BY c.relname, con.conname)
                 FROM rel c JOIN pg_catalog.pg_constraint con ON con.conrelid = c.oid), '[]'::json),
           'indexes', COALESCE((
               SELECT json_agg(json_build_object(
                          'table_name', c.relname, 'index_name', ic.relname,
                          'is_unique', i.indisunique, 'is_primary', i.indisprimary,
                          'method', am.amname,
                          'columns', COALESCE((SELECT json_agg(a.attname ORDER BY array_position(i.indkey::int2[], a.attnum))
                                                 FROM pg_catalog.pg_attribute a
                                                WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey::int2[])), '[]'::json))
                          ORDER BY c.relname, ic.relname)
                 FROM rel c
                 JOIN pg_catalog.pg_index i ON i.indrelid = c.oid
                 JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
                 JOIN pg_catalog.pg_am am ON am.oid = ic.relam), '[]'::json),
           'views', COALESCE((
               SELECT json_agg(json_build_object(
                          'view_name', c.relname, 'materialized', c.relkind = 'm',
                          'definition', pg_catalog.pg_get_viewdef(c.oid))
                          ORDER BY c.relname)
                 FROM rel c WHERE c.relkind IN ('v', 'm')), '[]'::json),
           'functions', COALESCE((
               SELECT json_agg(json_build_object(
                          'schema', n.nspname, 'name', p.proname,
                          'arguments', pg_catalog.pg_get_function_identity_arguments(p.oid),
                          'returns', pg_catalog.pg_get_function_result(p.oid),
                          'language', l.lanname,
                          'volatility', CASE p.provolatile WHEN 'i' THEN 'immutable'
                                        WHEN 's' THEN 'stable' ELSE 'volatile' END)
                          ORDER BY p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid))
                 FROM pg_catalog.pg_proc p
                 JOIN ns n ON n.oid = p.pronamespace
                 JOIN pg_catalog.pg_language l ON l.oid = p.prolang
                WHERE p.prokind = 'f'
                  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend dep
                                   WHERE dep.classid = 'pg_catalog.pg_proc'::regclass
                                     AND dep.objid = p.oid AND dep.deptype = 'e')), '[]'::json)
         )::text END"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_schemas_are_never_listed() {
        for schema in crate::db::migrate::GATEWAY_SCHEMAS {
            assert!(USER_RELATION.contains(&format!("'{schema}'")), "{schema}");
            assert!(is_hidden_schema(schema), "{schema}");
        }
    }

    #[test]
    fn names_follow_the_management_grammar() {
        for ok in ["users", "_x", "a$1", "T9", &"a".repeat(63)] {
            assert_eq!(name("f", ok).unwrap(), ok);
        }
        for bad in [
            "",
            "1a",
            "a b",
            "a\"b",
            "a;b",
            "a--",
            "naïve",
            "a.b",
            "$a",
            &"a".repeat(64),
        ] {
            assert!(name("f", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    #[ignore = "prints the /schema query"]
    fn print_schema_sql() {
        println!("{}", schema_sql());
    }

    #[test]
    fn table_refs() {
        assert_eq!(
            table_ref("s.t", None).unwrap(),
            (Some("s".into()), "t".into())
        );
        assert_eq!(table_ref("t", None).unwrap(), (None, "t".into()));
        assert_eq!(
            table_ref("t", Some("public")).unwrap(),
            (Some("public".into()), "t".into())
        );
        assert!(table_ref("s.t", Some("public")).is_err());
        assert!(table_ref("t", Some("pg_catalog")).is_err());
        assert!(table_ref("information_schema.tables", None).is_err());
        assert!(table_ref("a.b.c", None).is_err());
    }
}
