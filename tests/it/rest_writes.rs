//! Writes on `/rest/v1/{table}` as PostgREST does them (issue 14, writes):
//! `?select=` rendered by the read renderer (embeds) over the written rows,
//! `?columns=`, `Prefer: missing=default`, empty bulk inserts, upserts with
//! `on_conflict=`, singular inserts, `Content-Range` and
//! `Preference-Applied`. Every effect is read back from the tenant database.

use crate::common;

use common::{Reply, TestServer, CLIENT};
use serde_json::{json, Value};

const H: [(&str, &str); 1] = [("x-athena-client", CLIENT)];
const OBJECT: (&str, &str) = ("accept", "application/vnd.pgrst.object+json");

async fn fixture(s: &TestServer) {
    s.tenant()
        .await
        .batch_execute(
            "CREATE TABLE authors (id int PRIMARY KEY, name text NOT NULL);
             CREATE TABLE books (
                 id serial PRIMARY KEY,
                 title text NOT NULL,
                 author_id int REFERENCES authors(id),
                 pages int DEFAULT 100,
                 isbn text,
                 edition int,
                 UNIQUE (isbn, edition));
             INSERT INTO authors VALUES (1, 'Ann'), (2, 'Bob');",
        )
        .await
        .unwrap();
}

async fn send(
    s: &TestServer,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    body: Option<Value>,
) -> Reply {
    let mut h = H.to_vec();
    h.extend_from_slice(extra);
    s.send(method, path, &h, body).await
}

fn header<'a>(r: &'a Reply, name: &str) -> Option<&'a str> {
    r.headers.get(name).map(|v| v.to_str().unwrap())
}

/// One text column of the tenant's `books` row `where` selects (`None`: NULL).
async fn book(s: &TestServer, column: &str, filter: &str) -> Option<String> {
    let sql = format!("SELECT {column}::text FROM books WHERE {filter}");
    s.tenant()
        .await
        .query_one(sql.as_str(), &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

#[tokio::test]
async fn select_renders_the_written_rows_with_embeds() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let repr = [("prefer", "return=representation")];

    // POST: the inserted row through the read renderer, the embed resolved
    // from the foreign key.
    let r = send(
        &s,
        "POST",
        "/rest/v1/books?select=id,title,author:authors(name)",
        &repr,
        Some(json!({"title": "Dune", "author_id": 1})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let row = &r.json()["data"][0];
    assert_eq!(row["title"], "Dune");
    assert_eq!(row["author"], json!({"name": "Ann"}));
    assert!(
        row.get("pages").is_none(),
        "only the selected columns: {row}"
    );
    let id = row["id"].as_i64().unwrap();
    assert_eq!(
        book(&s, "title", &format!("id = {id}")).await.as_deref(),
        Some("Dune")
    );

    // A bulk insert: every row, each with its embed.
    let r = send(
        &s,
        "POST",
        "/rest/v1/books?select=title,authors(id,name)",
        &[],
        Some(
            json!([{"title": "A", "author_id": 1}, {"title": "B", "author_id": 2}, {"title": "C"}]),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["data"],
        json!([
            {"title": "A", "authors": {"id": 1, "name": "Ann"}},
            {"title": "B", "authors": {"id": 2, "name": "Bob"}},
            {"title": "C", "authors": null}
        ])
    );
    assert_eq!(r.json()["rows_affected"], 3);
    assert_eq!(s.scalar("SELECT count(*) FROM books").await, 4);

    // PATCH: the updated row (new values) with its embed.
    let r = send(
        &s,
        "PATCH",
        &format!("/rest/v1/books?id=eq.{id}&select=title,author:authors(name)"),
        &repr,
        Some(json!({"title": "Dune Messiah", "author_id": 2})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["data"],
        json!([{"title": "Dune Messiah", "author": {"name": "Bob"}}])
    );
    assert_eq!(
        book(&s, "author_id", &format!("id = {id}"))
            .await
            .as_deref(),
        Some("2")
    );

    // DELETE: the deleted row, embed included; the row is gone.
    let r = send(
        &s,
        "DELETE",
        &format!("/rest/v1/books?id=eq.{id}&select=id,authors(name)"),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["data"],
        json!([{"id": id, "authors": {"name": "Bob"}}])
    );
    assert_eq!(
        s.scalar(&format!("SELECT count(*) FROM books WHERE id = {id}"))
            .await,
        0
    );

    // Without ?select=: every column, as before.
    let r = send(
        &s,
        "POST",
        "/rest/v1/books",
        &[],
        Some(json!({"title": "Plain"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let row = &r.json()["data"][0];
    assert_eq!(row["pages"], 100);
    assert!(row.get("isbn").is_some(), "{row}");

    // return=minimal: no body, the row is written.
    let r = send(
        &s,
        "POST",
        "/rest/v1/books?select=id,authors(name)",
        &[("prefer", "return=minimal")],
        Some(json!({"title": "Quiet", "author_id": 1})),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.body.is_empty());
    assert_eq!(
        s.scalar("SELECT count(*) FROM books WHERE title = 'Quiet'")
            .await,
        1
    );

    // A bad select is a 400 and nothing is written (one statement).
    for select in ["nope", "id,nope:missing_table(id)", "id,authors(nope)"] {
        let r = send(
            &s,
            "POST",
            &format!("/rest/v1/books?select={select}"),
            &[],
            Some(json!({"title": "Never"})),
        )
        .await;
        assert_eq!(r.status, 400, "{select}: {}", r.text());
        r.envelope();
    }
    let r = send(
        &s,
        "PATCH",
        "/rest/v1/books?title=eq.Quiet&select=nope",
        &[],
        Some(json!({"title": "Never"})),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    r.envelope();
    assert_eq!(
        s.scalar("SELECT count(*) FROM books WHERE title = 'Never'")
            .await,
        0
    );
    assert_eq!(
        s.scalar("SELECT count(*) FROM books WHERE title = 'Quiet'")
            .await,
        1
    );
    s.stop().await;
}

#[tokio::test]
async fn columns_and_missing_keys() {
    let s = TestServer::start().await;
    fixture(&s).await;

    // ?columns= limits the inserted keys: `pages` and `junk` are ignored
    // (pages takes its DEFAULT, not being inserted); a listed column a row
    // lacks is NULL.
    let r = send(
        &s,
        "POST",
        "/rest/v1/books?columns=title,author_id",
        &[],
        Some(json!([
            {"title": "c1", "author_id": 1, "pages": 5, "junk": true},
            {"title": "c2"}
        ])),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        book(&s, "pages", "title = 'c1'").await.as_deref(),
        Some("100")
    );
    assert_eq!(
        book(&s, "author_id", "title = 'c1'").await.as_deref(),
        Some("1")
    );
    assert_eq!(book(&s, "author_id", "title = 'c2'").await, None);

    // postgrest-js quotes the names; a listed column a row lacks: NULL by
    // default, its DEFAULT with `missing=default`.
    let r = send(
        &s,
        "POST",
        "/rest/v1/books?columns=%22title%22,%22pages%22",
        &[],
        Some(json!([{"title": "n1", "pages": 7}, {"title": "n2"}])),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        book(&s, "pages", "title = 'n1'").await.as_deref(),
        Some("7")
    );
    assert_eq!(book(&s, "pages", "title = 'n2'").await, None);
    let r = send(
        &s,
        "POST",
        "/rest/v1/books?columns=%22title%22,%22pages%22",
        &[("prefer", "missing=default")],
        Some(json!([{"title": "d1", "pages": 7}, {"title": "d2"}])),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(header(&r, "preference-applied"), Some("missing=default"));
    assert_eq!(
        book(&s, "pages", "title = 'd2'").await.as_deref(),
        Some("100")
    );

    // Without ?columns= (the union of the keys), the same rule.
    let r = send(
        &s,
        "POST",
        "/rest/v1/books",
        &[],
        Some(json!([{"title": "u1", "pages": 3}, {"title": "u2"}])),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"][1]["pages"], Value::Null);
    assert_eq!(book(&s, "pages", "title = 'u2'").await, None);
    let r = send(
        &s,
        "POST",
        "/rest/v1/books",
        &[("prefer", "missing=default")],
        Some(json!([{"title": "v1", "pages": 3}, {"title": "v2"}])),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        book(&s, "pages", "title = 'v2'").await.as_deref(),
        Some("100")
    );

    // An unknown or empty column list: 400, nothing inserted.
    for columns in ["title,nope", "", "%22%22"] {
        let r = send(
            &s,
            "POST",
            &format!("/rest/v1/books?columns={columns}"),
            &[],
            Some(json!([{"title": "bad"}])),
        )
        .await;
        assert_eq!(r.status, 400, "{columns}: {}", r.text());
        r.envelope();
    }
    assert_eq!(
        s.scalar("SELECT count(*) FROM books WHERE title = 'bad'")
            .await,
        0
    );
    s.stop().await;
}

#[tokio::test]
async fn an_empty_bulk_insert_writes_nothing() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let r = send(
        &s,
        "POST",
        "/rest/v1/books",
        &[("prefer", "count=exact")],
        Some(json!([])),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"], json!([]));
    assert_eq!(header(&r, "content-range"), Some("*/0"));
    assert_eq!(r.json()["rows_affected"], 0);
    let r = send(
        &s,
        "POST",
        "/rest/v1/books?select=id,authors(name)&columns=title",
        &[],
        Some(json!([])),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"], json!([]));
    let r = send(
        &s,
        "POST",
        "/rest/v1/books",
        &[("prefer", "return=minimal")],
        Some(json!([])),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    // Still checked: an unknown select column or table is an error, not a success.
    let r = send(
        &s,
        "POST",
        "/rest/v1/books?select=nope",
        &[],
        Some(json!([])),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    r.envelope();
    let r = send(&s, "POST", "/rest/v1/no_such_table", &[], Some(json!([]))).await;
    assert!((400..500).contains(&r.status), "{} {}", r.status, r.text());
    r.envelope();
    assert_eq!(s.scalar("SELECT count(*) FROM books").await, 0);
    s.stop().await;
}

#[tokio::test]
async fn upserts_on_conflict() {
    let s = TestServer::start().await;
    fixture(&s).await;
    s.tenant()
        .await
        .batch_execute(
            "INSERT INTO books (id, title, isbn, edition, pages) VALUES (10, 'Old', 'x-1', 1, 50);",
        )
        .await
        .unwrap();

    // on_conflict on a unique column set, merge-duplicates: updated.
    let r = send(
        &s,
        "POST",
        "/rest/v1/books?on_conflict=isbn,edition&columns=title,isbn,edition&select=id,title",
        &[("prefer", "resolution=merge-duplicates,return=representation,count=exact")],
        Some(json!([{"title": "New", "isbn": "x-1", "edition": 1, "pages": 1}, {"title": "Other", "isbn": "x-1", "edition": 2}])),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        header(&r, "preference-applied"),
        Some("resolution=merge-duplicates, return=representation, count=exact")
    );
    assert_eq!(header(&r, "content-range"), Some("*/2"));
    assert_eq!(r.json()["data"][0], json!({"id": 10, "title": "New"}));
    assert_eq!(book(&s, "title", "id = 10").await.as_deref(), Some("New"));
    // Not in ?columns=: not overwritten.
    assert_eq!(book(&s, "pages", "id = 10").await.as_deref(), Some("50"));
    assert_eq!(s.scalar("SELECT count(*) FROM books").await, 2);

    // ignore-duplicates: the existing row stays, nothing returned for it.
    let r = send(
        &s,
        "POST",
        "/rest/v1/books?on_conflict=isbn,edition",
        &[("prefer", "resolution=ignore-duplicates")],
        Some(json!({"title": "Ignored", "isbn": "x-1", "edition": 1})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"], json!([]));
    assert_eq!(book(&s, "title", "id = 10").await.as_deref(), Some("New"));

    // Without on_conflict: the primary key.
    let r = send(
        &s,
        "POST",
        "/rest/v1/books",
        &[("prefer", "resolution=merge-duplicates")],
        Some(json!({"id": 10, "title": "By key"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        book(&s, "title", "id = 10").await.as_deref(),
        Some("By key")
    );

    // A column set without a unique constraint: 400 naming it, nothing written.
    let r = send(
        &s,
        "POST",
        "/rest/v1/books?on_conflict=title",
        &[("prefer", "resolution=merge-duplicates")],
        Some(json!({"title": "By key", "pages": 1})),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let e = r.envelope();
    assert!(e.to_string().contains("on_conflict=title"), "{e}");
    // An unknown conflict column: 400 as well.
    let r = send(
        &s,
        "POST",
        "/rest/v1/books?on_conflict=nope",
        &[("prefer", "resolution=merge-duplicates")],
        Some(json!({"title": "x"})),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    r.envelope();
    assert_eq!(book(&s, "pages", "id = 10").await.as_deref(), Some("50"));
    s.stop().await;
}

#[tokio::test]
async fn upserts_need_insert_and_update_rights() {
    let s = TestServer::start().await;
    fixture(&s).await;
    s.tenant()
        .await
        .batch_execute("INSERT INTO books (id, title) VALUES (10, 'Mine');")
        .await
        .unwrap();
    s.enforce_keys(true).await;
    let insert_only = s
        .api_key(&["gateway.insert.execute", "gateway.fetch.execute"], None)
        .await;
    let both = s
        .api_key(&["gateway.insert.execute", "gateway.update.execute"], None)
        .await;
    let upsert = |key: &str| {
        vec![
            ("apikey", key.to_string()),
            ("prefer", "resolution=merge-duplicates".to_string()),
        ]
    };
    let h: Vec<(&str, String)> = upsert(&insert_only);
    let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = send(
        &s,
        "POST",
        "/rest/v1/books?on_conflict=id",
        &h,
        Some(json!({"id": 10, "title": "pwned"})),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    r.envelope();
    assert_eq!(book(&s, "title", "id = 10").await.as_deref(), Some("Mine"));
    // A plain insert is the insert right's.
    let r = send(
        &s,
        "POST",
        "/rest/v1/books",
        &[("apikey", insert_only.as_str())],
        Some(json!({"id": 11, "title": "plain"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(book(&s, "title", "id = 11").await.as_deref(), Some("plain"));
    // Embeds in ?select= read other tables: the read right as well.
    let r = send(
        &s,
        "POST",
        "/rest/v1/books?select=id,authors(name)",
        &[("apikey", both.as_str())],
        Some(json!({"id": 12, "title": "embedded", "author_id": 1})),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    r.envelope();
    assert_eq!(
        s.scalar("SELECT count(*) FROM books WHERE id = 12").await,
        0
    );
    let r = send(
        &s,
        "POST",
        "/rest/v1/books?select=id,authors(name)",
        &[("apikey", insert_only.as_str())],
        Some(json!({"id": 12, "title": "embedded", "author_id": 1})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["data"],
        json!([{"id": 12, "authors": {"name": "Ann"}}])
    );
    // Both rights: the upsert happens.
    let h: Vec<(&str, String)> = upsert(&both);
    let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = send(
        &s,
        "POST",
        "/rest/v1/books?on_conflict=id",
        &h,
        Some(json!({"id": 10, "title": "updated"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        book(&s, "title", "id = 10").await.as_deref(),
        Some("updated")
    );
    s.stop().await;
}

#[tokio::test]
async fn singular_inserts_write_exactly_one_row() {
    let s = TestServer::start().await;
    fixture(&s).await;
    // One row: the object (through the renderer here).
    let r = send(
        &s,
        "POST",
        "/rest/v1/books?select=title,authors(name)",
        &[OBJECT],
        Some(json!({"title": "One", "author_id": 1})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["data"],
        json!({"title": "One", "authors": {"name": "Ann"}})
    );
    assert_eq!(
        s.scalar("SELECT count(*) FROM books WHERE title = 'One'")
            .await,
        1
    );
    // Without select: the object of every column.
    let r = send(
        &s,
        "POST",
        "/rest/v1/books",
        &[OBJECT],
        Some(json!([{"title": "Two"}])),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["title"], "Two");
    assert_eq!(r.json()["data"]["pages"], 100);

    // Two rows: 406 and nothing inserted.
    let r = send(
        &s,
        "POST",
        "/rest/v1/books?select=id",
        &[OBJECT, ("prefer", "count=exact")],
        Some(json!([{"title": "Many"}, {"title": "Many"}])),
    )
    .await;
    assert_eq!(r.status, 406, "{}", r.text());
    assert_eq!(r.envelope()["code"], "not_acceptable");
    assert_eq!(
        s.scalar("SELECT count(*) FROM books WHERE title = 'Many'")
            .await,
        0
    );
    // Zero rows (a duplicate ignored, an empty array): 406.
    s.tenant()
        .await
        .batch_execute("INSERT INTO books (id, title) VALUES (50, 'Taken');")
        .await
        .unwrap();
    let r = send(
        &s,
        "POST",
        "/rest/v1/books",
        &[OBJECT, ("prefer", "resolution=ignore-duplicates")],
        Some(json!({"id": 50, "title": "Dup"})),
    )
    .await;
    assert_eq!(r.status, 406, "{}", r.text());
    r.envelope();
    let r = send(&s, "POST", "/rest/v1/books", &[OBJECT], Some(json!([]))).await;
    assert_eq!(r.status, 406, "{}", r.text());
    assert_eq!(book(&s, "title", "id = 50").await.as_deref(), Some("Taken"));

    // A singular PATCH with select: the object with its embed.
    let r = send(
        &s,
        "PATCH",
        "/rest/v1/books?title=eq.One&select=title,author:authors(name)",
        &[OBJECT],
        Some(json!({"author_id": 2})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["data"],
        json!({"title": "One", "author": {"name": "Bob"}})
    );
    assert_eq!(
        book(&s, "author_id", "title = 'One'").await.as_deref(),
        Some("2")
    );
    s.stop().await;
}

#[tokio::test]
async fn content_range_and_preference_applied_on_writes() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let r = send(
        &s,
        "POST",
        "/rest/v1/books",
        &[("prefer", "return=representation, count=exact")],
        Some(json!([{"title": "a"}, {"title": "b"}, {"title": "c"}])),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(header(&r, "content-range"), Some("*/3"));
    assert_eq!(
        header(&r, "preference-applied"),
        Some("return=representation, count=exact")
    );

    // Without Prefer: `*/*`, no Preference-Applied.
    let r = send(
        &s,
        "PATCH",
        "/rest/v1/books?title=eq.a",
        &[],
        Some(json!({"pages": 1})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(header(&r, "content-range"), Some("*/*"));
    assert_eq!(header(&r, "preference-applied"), None);

    // A one-row delete with count=exact: `*/1`, minimal echoed.
    let r = send(
        &s,
        "DELETE",
        "/rest/v1/books?title=eq.b",
        &[("prefer", "return=minimal"), ("prefer", "count=exact")],
        None,
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(header(&r, "content-range"), Some("*/1"));
    assert_eq!(
        header(&r, "preference-applied"),
        Some("return=minimal, count=exact")
    );
    assert_eq!(
        s.scalar("SELECT count(*) FROM books WHERE title = 'b'")
            .await,
        0
    );

    // resolution= and missing= are the insert's: a PATCH does not echo them.
    let r = send(
        &s,
        "PATCH",
        "/rest/v1/books?title=eq.c",
        &[(
            "prefer",
            "resolution=merge-duplicates, missing=default, count=exact",
        )],
        Some(json!({"pages": 2})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(header(&r, "preference-applied"), Some("count=exact"));
    assert_eq!(header(&r, "content-range"), Some("*/1"));
    assert_eq!(book(&s, "pages", "title = 'c'").await.as_deref(), Some("2"));

    // The first value of a kind wins (PostgREST reads them so).
    let r = send(
        &s,
        "POST",
        "/rest/v1/books",
        &[("prefer", "return=minimal, return=representation")],
        Some(json!({"title": "d"})),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(header(&r, "preference-applied"), Some("return=minimal"));
    assert_eq!(
        s.scalar("SELECT count(*) FROM books WHERE title = 'd'")
            .await,
        1
    );
    s.stop().await;
}
