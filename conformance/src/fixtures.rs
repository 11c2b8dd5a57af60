//! Tenant database fixtures (idempotent: truncates and reinserts).

use tokio_postgres::NoTls;

pub const SETUP_SQL: &str = "\
CREATE TABLE IF NOT EXISTS conformance_items (id serial primary key, name text not null, score int, note text);
CREATE TABLE IF NOT EXISTS conformance_tags (id serial primary key,
  item_id int not null references conformance_items(id), label text not null);
TRUNCATE conformance_items, conformance_tags RESTART IDENTITY;
INSERT INTO conformance_items (name, score, note) VALUES ('alpha', 10, NULL), ('beta', 20, 'b'), ('gamma', 30, 'g');
INSERT INTO conformance_tags (item_id, label) VALUES (1, 'red'), (1, 'blue'), (2, 'green');
CREATE TABLE IF NOT EXISTS conformance_writes (id serial primary key, name text not null unique, score int, tags text[]);
TRUNCATE conformance_writes RESTART IDENTITY;
CREATE OR REPLACE FUNCTION conformance_above(min_score int) RETURNS SETOF conformance_items
  LANGUAGE sql STABLE AS $$ SELECT * FROM conformance_items WHERE score > min_score ORDER BY id $$;";

/// Rows of `conformance_items` for embedding cases: a foreign key
/// (`item_id`) to the items, two tags on item 1, one on item 2.
pub const TAGS_TABLE: &str = "conformance_tags";

/// The table write cases insert into (each case its own `name`s).
pub const WRITES_TABLE: &str = "conformance_writes";

pub async fn setup(db_url: &str) -> Result<(), String> {
    let (client, connection) = tokio_postgres::connect(db_url, NoTls)
        .await
        .map_err(|e| format!("connecting to the tenant database: {e}"))?;
    let conn = tokio::spawn(async move {
        let _ = connection.await;
    });
    let result = client
        .batch_execute(SETUP_SQL)
        .await
        .map_err(|e| format!("creating fixtures: {e}"));
    drop(client);
    let _ = conn.await;
    result
}
