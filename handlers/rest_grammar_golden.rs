//! Goldens of the `/rest/v1` query grammar (issue 14): query string → the
//! SQL text and binds of the read, resolved against an in-memory catalog
//! (self-reference, junction, two keys to one table). The query string goes
//! through the GET handler's own parsing (`query_parts`, `embed::parse`,
//! `embed::attach`, `parse_order`).

use super::query_parts;
use crate::db::schema_cache::{Column, ForeignKey, SchemaCache, Table};
use crate::db::tenants::Tenant;
use crate::domain::identifier::Ident;
use crate::domain::DomainError;
use crate::gateway::cond::parse_order;
use crate::gateway::embed;
use crate::gateway::read::{self, ReadQuery};
use std::sync::Arc;

fn table(cols: &[(&str, &str)]) -> Table {
    Table {
        columns: cols
            .iter()
            .map(|(n, t)| Column {
                name: n.to_string(),
                type_name: t.to_string(),
            })
            .collect(),
    }
}

fn fk(name: &str, from: &str, cols: &[&str], to: &str, ref_cols: &[&str]) -> ForeignKey {
    let v = |c: &[&str]| c.iter().map(|c| c.to_string()).collect();
    ForeignKey {
        name: name.into(),
        schema: "public".into(),
        table: from.into(),
        columns: v(cols),
        ref_schema: "public".into(),
        ref_table: to.into(),
        ref_columns: v(ref_cols),
        in_primary_key: from == "film_actors" || from == "film_stunts",
    }
}

fn tenant() -> Tenant {
    let int = "integer";
    let tables = vec![
        ("public", "clients", table(&[("id", int), ("name", "text")])),
        (
            "public",
            "projects",
            table(&[("id", int), ("name", "text"), ("client_id", int)]),
        ),
        (
            "public",
            "tasks",
            table(&[("id", int), ("name", "text"), ("project_id", int)]),
        ),
        (
            "public",
            "employees",
            table(&[("id", int), ("name", "text"), ("manager_id", int)]),
        ),
        ("public", "films", table(&[("id", int), ("title", "text")])),
        ("public", "actors", table(&[("id", int), ("name", "text")])),
        (
            "public",
            "film_actors",
            table(&[("film_id", int), ("actor_id", int), ("role", "text")]),
        ),
        // Keys to films and actors, but its own id as primary key: no junction.
        (
            "public",
            "reviews",
            table(&[("id", int), ("film_id", int), ("actor_id", int)]),
        ),
        // A second junction between films and actors.
        (
            "public",
            "film_stunts",
            table(&[("film_id", int), ("actor_id", int)]),
        ),
        (
            "public",
            "addresses",
            table(&[("id", int), ("city", "text")]),
        ),
        (
            "public",
            "orders",
            table(&[
                ("id", int),
                ("billing_address_id", int),
                ("shipping_address_id", int),
            ]),
        ),
    ];
    let fks = vec![
        fk(
            "projects_client_id_fkey",
            "projects",
            &["client_id"],
            "clients",
            &["id"],
        ),
        fk(
            "tasks_project_id_fkey",
            "tasks",
            &["project_id"],
            "projects",
            &["id"],
        ),
        fk(
            "employees_manager_id_fkey",
            "employees",
            &["manager_id"],
            "employees",
            &["id"],
        ),
        fk(
            "film_actors_film_id_fkey",
            "film_actors",
            &["film_id"],
            "films",
            &["id"],
        ),
        fk(
            "film_actors_actor_id_fkey",
            "film_actors",
            &["actor_id"],
            "actors",
            &["id"],
        ),
        fk(
            "reviews_film_id_fkey",
            "reviews",
            &["film_id"],
            "films",
            &["id"],
        ),
        fk(
            "reviews_actor_id_fkey",
            "reviews",
            &["actor_id"],
            "actors",
            &["id"],
        ),
        fk(
            "film_stunts_film_id_fkey",
            "film_stunts",
            &["film_id"],
            "films",
            &["id"],
        ),
        fk(
            "film_stunts_actor_id_fkey",
            "film_stunts",
            &["actor_id"],
            "actors",
            &["id"],
        ),
        fk(
            "orders_billing_address_id_fkey",
            "orders",
            &["billing_address_id"],
            "addresses",
            &["id"],
        ),
        fk(
            "orders_shipping_address_id_fkey",
            "orders",
            &["shipping_address_id"],
            "addresses",
            &["id"],
        ),
    ];
    // A lazy pool that is never used: the catalog never reloads.
    let pool = crate::db::pool(
        "postgres://nobody@127.0.0.1:1/none",
        crate::db::PoolSettings {
            max_size: 1,
            connect_timeout: std::time::Duration::from_millis(10),
            acquire_timeout: std::time::Duration::from_millis(10),
            statement_timeout: std::time::Duration::from_secs(1),
            tls: Default::default(),
        },
    )
    .unwrap();
    let mut t = Tenant::detached("golden".into(), "golden".into(), pool);
    t.schema = Arc::new(SchemaCache::preloaded(tables, fks));
    t
}

/// The GET handler's parsing of a query string into a read.
fn read_query(table: &str, qs: &str) -> Result<ReadQuery, DomainError> {
    let pairs: Vec<(String, String)> = qs
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    let (filters, embedded) = query_parts(&pairs)?;
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let (columns, mut embeds) = match get("select").map(embed::parse).transpose()? {
        Some(s) => (Some(s.columns), s.embeds),
        None => (None, Vec::new()),
    };
    embed::attach(&mut embeds, embedded)?;
    let mut q = ReadQuery::table(
        Ident::parse("schema", "public")?,
        Ident::parse("table", table)?,
    );
    q.columns = columns;
    q.embeds = embeds;
    q.filters = filters;
    q.order = get("order")
        .map(parse_order)
        .transpose()?
        .unwrap_or_default();
    q.limit = get("limit").map(|l| l.parse().unwrap());
    Ok(q)
}

/// `(rows SQL, binds, count SQL)`, or the 400's message.
async fn golden(table: &str, qs: &str) -> Result<(String, Vec<String>, String), String> {
    let t = tenant();
    let q = read_query(table, qs).map_err(|e| format!("{e}"))?;
    let (rows, count) = read::statements(&t, &q, 100, true)
        .await
        .map_err(|e| format!("{e}"))?;
    let binds = rows.params.iter().map(|p| format!("{p:?}")).collect();
    Ok((rows.sql, binds, count.map(|c| c.sql).unwrap_or_default()))
}

/// The inner statement of `SELECT coalesce(json_agg(t.*), …)::text FROM (…) t`.
fn inner(sql: &str) -> &str {
    sql.strip_prefix("SELECT coalesce(json_agg(t.*), '[]'::json)::text FROM (")
        .and_then(|s| s.strip_suffix(") t"))
        .unwrap_or(sql)
}

#[tokio::test]
async fn query_strings_to_sql_and_binds() {
    // (table, query string, inner rows SQL, binds)
    let cases: &[(&str, &str, &str, &[&str])] = &[
        // A plain point read keeps its short form.
        (
            "clients",
            "select=id,name&id=eq.1",
            r#"SELECT "id", "name" FROM "public"."clients" WHERE "id" = $1::text::integer LIMIT $2"#,
            &[r#""1""#, "100"],
        ),
        // Aliases and casts: output keys follow PostgREST.
        (
            "clients",
            "select=clientId:id,id::text,label:name::character varying(10)",
            r#"SELECT "id" AS "clientId", "id"::"text" AS "id", "name"::character varying(10) AS "label" FROM "public"."clients" LIMIT $1"#,
            &["100"],
        ),
        // Aliases and casts inside an embed.
        (
            "projects",
            "select=id,client:clients(clientId:id,name::text)",
            r#"SELECT "_b"."id", (SELECT row_to_json("_r".*) FROM (SELECT "_e1"."id" AS "clientId", "_e1"."name"::"text" AS "name" FROM "public"."clients" AS "_e1" WHERE "_e1"."id" = "_b"."client_id" LIMIT 1) AS "_r") AS "client" FROM "public"."projects" AS "_b" LIMIT $1"#,
            &["100"],
        ),
        // Embedded filter, order, limit, offset: clauses of the subquery only.
        (
            "projects",
            "select=id,tasks(id,name)&tasks.name=eq.x&tasks.order=id.desc&tasks.limit=2&tasks.offset=1&id=gt.0",
            r#"SELECT "_b"."id", (SELECT coalesce(json_agg("_r".*), '[]'::json) FROM (SELECT "_e1"."id", "_e1"."name" FROM "public"."tasks" AS "_e1" WHERE "_e1"."project_id" = "_b"."id" AND "name" = $1::text::text ORDER BY "_e1"."id" DESC LIMIT $2 OFFSET $3) AS "_r") AS "tasks" FROM "public"."projects" AS "_b" WHERE "id" > $4::text::integer LIMIT $5"#,
            &[r#""x""#, "2", "1", r#""0""#, "100"],
        ),
        // With !inner the embedded filter narrows the parent rows too.
        (
            "projects",
            "select=id,tasks!inner(id)&tasks.name=eq.x",
            r#"SELECT "_b"."id", (SELECT coalesce(json_agg("_r".*), '[]'::json) FROM (SELECT "_e1"."id" FROM "public"."tasks" AS "_e1" WHERE "_e1"."project_id" = "_b"."id" AND "name" = $1::text::text LIMIT 100) AS "_r") AS "tasks" FROM "public"."projects" AS "_b" WHERE EXISTS (SELECT 1 FROM "public"."tasks" AS "_e2" WHERE "_e2"."project_id" = "_b"."id" AND "name" = $2::text::text) LIMIT $3"#,
            &[r#""x""#, r#""x""#, "100"],
        ),
        // A nested path, and rel.or=(…) / rel.not.and=(…).
        (
            "clients",
            "select=id,projects(id,tasks(id))&projects.tasks.name=eq.x&projects.or=(id.eq.1,id.eq.2)&projects.not.and=(id.eq.3,name.eq.y)",
            r#"SELECT "_b"."id", (SELECT coalesce(json_agg("_r".*), '[]'::json) FROM (SELECT "_e1"."id", (SELECT coalesce(json_agg("_r".*), '[]'::json) FROM (SELECT "_e2"."id" FROM "public"."tasks" AS "_e2" WHERE "_e2"."project_id" = "_e1"."id" AND "name" = $1::text::text LIMIT 100) AS "_r") AS "tasks" FROM "public"."projects" AS "_e1" WHERE "_e1"."client_id" = "_b"."id" AND ("id" = $2::text::integer OR "id" = $3::text::integer) AND NOT (("id" = $4::text::integer AND "name" = $5::text::text)) LIMIT 100) AS "_r") AS "projects" FROM "public"."clients" AS "_b" LIMIT $6"#,
            &[r#""x""#, r#""1""#, r#""2""#, r#""3""#, r#""y""#, "100"],
        ),
        // Many-to-many through the junction table its name picks.
        (
            "films",
            "select=title,actors!film_actors(name)",
            r#"SELECT "_b"."title", (SELECT coalesce(json_agg("_r".*), '[]'::json) FROM (SELECT "_e1"."name" FROM "public"."actors" AS "_e1" WHERE EXISTS (SELECT 1 FROM "public"."film_actors" AS "_e2" WHERE "_e2"."film_id" = "_b"."id" AND "_e2"."actor_id" = "_e1"."id") LIMIT 100) AS "_r") AS "actors" FROM "public"."films" AS "_b" LIMIT $1"#,
            &["100"],
        ),
        // The same table twice, by referencing column and by constraint name.
        (
            "orders",
            "select=id,billing:addresses!billing_address_id(city),shipping:addresses!orders_shipping_address_id_fkey(city)",
            r#"SELECT "_b"."id", (SELECT row_to_json("_r".*) FROM (SELECT "_e1"."city" FROM "public"."addresses" AS "_e1" WHERE "_e1"."id" = "_b"."billing_address_id" LIMIT 1) AS "_r") AS "billing", (SELECT row_to_json("_r".*) FROM (SELECT "_e2"."city" FROM "public"."addresses" AS "_e2" WHERE "_e2"."id" = "_b"."shipping_address_id" LIMIT 1) AS "_r") AS "shipping" FROM "public"."orders" AS "_b" LIMIT $1"#,
            &["100"],
        ),
        // A self-reference, named by its column.
        (
            "employees",
            "select=name,manager:employees!manager_id(name)",
            r#"SELECT "_b"."name", (SELECT row_to_json("_r".*) FROM (SELECT "_e1"."name" FROM "public"."employees" AS "_e1" WHERE "_e1"."id" = "_b"."manager_id" LIMIT 1) AS "_r") AS "manager" FROM "public"."employees" AS "_b" LIMIT $1"#,
            &["100"],
        ),
        // Logic trees: not.or, nested and/or/not.and, whitespace, quotes.
        (
            "clients",
            "select=id&not.or=(id.eq.1,name.eq.\"a,b\")&and=( and( id.in.( 1,2 ), name.eq.x ), not.and(id.eq.3,name.like.\"(*)\"), or (id.is.null,id.gt.5) )",
            r#"SELECT "id" FROM "public"."clients" WHERE NOT (("id" = $1::text::integer OR "name" = $2::text::text)) AND (("id" = ANY($3::text[]::integer[]) AND "name" = $4::text::text) AND NOT (("id" = $5::text::integer AND "name"::text LIKE $6)) AND ("id" IS NULL OR "id" > $7::text::integer)) LIMIT $8"#,
            &[
                r#""1""#,
                r#""a,b""#,
                r#"["1", "2"]"#,
                r#""x""#,
                r#""3""#,
                r#""(%)""#,
                r#""5""#,
                "100",
            ],
        ),
    ];
    for (table, qs, want, binds) in cases {
        let (sql, got_binds, _) = golden(table, qs)
            .await
            .unwrap_or_else(|e| panic!("{qs}: {e}"));
        assert_eq!(inner(&sql), *want, "{qs}");
        assert_eq!(got_binds, *binds, "{qs}");
    }
}

#[tokio::test]
async fn counts_follow_inner_embeds_and_their_filters() {
    let (_, _, count) = golden(
        "projects",
        "select=id,tasks!inner(id)&tasks.name=eq.x&id=gt.0",
    )
    .await
    .unwrap();
    assert_eq!(
        count,
        r#"SELECT '[]', count(*) FROM "public"."projects" AS "_b" WHERE "id" > $1::text::integer AND EXISTS (SELECT 1 FROM "public"."tasks" AS "_e1" WHERE "_e1"."project_id" = "_b"."id" AND "name" = $2::text::text)"#
    );
}

#[tokio::test]
async fn bad_grammar_is_refused_naming_the_problem() {
    // (table, query string, a piece of the 400's message)
    let cases: &[(&str, &str, &str)] = &[
        (
            "projects",
            "select=id&tasks.name=eq.x",
            "`tasks` names no embedded resource",
        ),
        (
            "clients",
            "select=id,projects(id)&projects.tasks.name=eq.x",
            "`projects.tasks`",
        ),
        ("clients", "select=id::int;drop", "not a valid type name"),
        ("clients", "select=id::text)--", "unbalanced"),
        (
            "clients",
            "select=id::numeric(1,2,3)",
            "not a valid type name",
        ),
        ("clients", "select=nope", "nope"),
        ("clients", "select=id,projects(nope:missing)", "missing"),
        (
            "employees",
            "select=employees(name)",
            "employees!employees_manager_id_fkey",
        ),
        (
            "orders",
            "select=addresses(city)",
            "orders_shipping_address_id_fkey",
        ),
        ("clients", "and=(id.eq.1,or(id.eq.2)", "unbalanced"),
        ("clients", "or=id.eq.1)", "unbalanced"),
        ("projects", "select=tasks(id)&tasks.limit=x", "whole number"),
        ("clients", "select=*::text", "`*` takes no alias or cast"),
        ("clients", "select=id,id::text", "returned twice"),
    ];
    for (table, qs, want) in cases {
        let err = golden(table, qs).await.expect_err(qs);
        assert!(err.contains(want), "{qs}: {err}");
    }
    // Two junctions: both listed with the hint picking each; `reviews`
    // (keys to both, outside its primary key) is no junction.
    let err = golden("films", "select=actors(name)").await.unwrap_err();
    assert!(
        err.contains("`actors!film_actors(…)`")
            && err.contains("`actors!film_stunts(…)`")
            && err.contains("many-to-many")
            && !err.contains("reviews"),
        "{err}"
    );
}
