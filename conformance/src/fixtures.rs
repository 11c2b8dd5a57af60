//! Tenant database fixtures (idempotent: truncates and reinserts).

pub const SETUP_SQL: &str = "\
CREATE TABLE IF NOT EXISTS conformance_items (id serial primary key, name text not null, score int, note text);
CREATE TABLE IF NOT EXISTS conformance_tags (id serial primary key,
  item_id int not null references conformance_items(id), label text not null);
TRUNCATE conformance_items, conformance_tags RESTART IDENTITY;
INSERT INTO conformance_items (name, score, note) VALUES ('alpha', 10, NULL), ('beta', 20, 'b'), ('gamma', 30, 'g');
INSERT INTO conformance_tags (item_id, label) VALUES (1, 'red'), (1, 'blue'), (2, 'green');
CREATE OR REPLACE FUNCTION conformance_above(min_score int) RETURNS SETOF conformance_items
  LANGUAGE sql STABLE AS $$ SELECT * FROM conformance_items WHERE score > min_score ORDER BY id $$;";

/// Rows of `conformance_items` for embedding cases: a foreign key
/// (`item_id`) to the items, two tags on item 1, one on item 2.
pub const TAGS_TABLE: &str = "conformance_tags";

/// The tables write cases write to (each case its own `name`s): the first
/// pass writes to the first; in the enforced pass the cases with a key
/// holding their rights write to the second, those with keys lacking one of
/// them to the others (one per right an operation may need).
pub const WRITES_TABLES: [&str; 4] = [
    "conformance_writes",
    "conformance_writes_keyed",
    "conformance_writes_denied_0",
    "conformance_writes_denied_1",
];

/// The fixtures: the read tables and function, and the writes tables empty.
pub fn setup_sql() -> String {
    let mut sql = SETUP_SQL.to_string();
    for t in WRITES_TABLES {
        sql.push_str(&format!(
            "\nCREATE TABLE IF NOT EXISTS {t} (id serial primary key, name text not null unique, score int, tags text[]);\n\
             TRUNCATE {t} RESTART IDENTITY;"
        ));
    }
    sql.push_str(REST_WRITES_SQL);
    sql.push_str(PIPELINES_STATS_SQL);
    sql
}

/// Pipelines and statistics (issue 19, `cases/pipelines_stats.rs`): the
/// pipeline sinks, a foreign key without an index (a query-optimization
/// finding; the index `apply` made is dropped again) and a table with dead
/// tuples for vacuum health.
const PIPELINES_STATS_SQL: &str = "
CREATE TABLE IF NOT EXISTS conformance_pipeline_sink (id serial primary key, label text not null, score int);
CREATE TABLE IF NOT EXISTS conformance_pipeline_dry (id serial primary key, label text not null, score int);
TRUNCATE conformance_pipeline_sink, conformance_pipeline_dry RESTART IDENTITY;
CREATE TABLE IF NOT EXISTS conformance_qo_parent (id int primary key);
CREATE TABLE IF NOT EXISTS conformance_qo_child (id serial primary key,
  parent_id int references conformance_qo_parent(id));
DROP INDEX IF EXISTS athena_conformance_qo_child_parent_id_idx;
CREATE TABLE IF NOT EXISTS conformance_vacuum (id int primary key) WITH (autovacuum_enabled = false);
TRUNCATE conformance_vacuum;
INSERT INTO conformance_vacuum SELECT generate_series(1, 2000);
DELETE FROM conformance_vacuum WHERE id <= 1500;";

/// `/rest/v1` writes (issue 14, `cases/rest_writes.rs`): a table with a
/// foreign key (embeds of the written rows), a DEFAULT and a composite
/// unique key (`on_conflict=code,batch`); each pass names its rows after
/// its writes table.
pub const REST_WRITES_TABLE: &str = "conformance_rw";
const REST_WRITES_SQL: &str = "
CREATE TABLE IF NOT EXISTS conformance_rw_parents (id int primary key, name text not null);
CREATE TABLE IF NOT EXISTS conformance_rw (id serial primary key, name text not null unique,
  parent_id int references conformance_rw_parents(id), score int default 7, code text, batch int,
  unique (code, batch));
TRUNCATE conformance_rw, conformance_rw_parents RESTART IDENTITY;
INSERT INTO conformance_rw_parents VALUES (1, 'ann'), (2, 'bob');";

/// Creates the fixtures, or puts them back as they were (the writes tables
/// emptied), at the start of every run.
pub async fn setup(db: &crate::db::Db) -> Result<(), String> {
    db.execute(&setup_sql())
        .await
        .map_err(|e| format!("creating fixtures: {e}"))
}
