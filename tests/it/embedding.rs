//! Relation embedding in `select` (PostgREST style), resolved from the
//! tenant's foreign keys: `/gateway/fetch` (`columns`/`select` strings, the
//! canonical nested object) and `GET /rest/v1/{table}`.

use crate::common;

use common::{TestServer, CLIENT};
use serde_json::{json, Value};

const H: [(&str, &str); 1] = [("x-athena-client", CLIENT)];

/// users ←owner_id/editor_id— items ←item_id— comments —author_id→ users;
/// chat_subscriptions → athena.users (a second schema with its own `users`);
/// shops → regions over a two-column key.
async fn fixture(s: &TestServer) {
    s.tenant()
        .await
        .batch_execute(
            "CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL, email text);
             CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL,
                                 owner_id int REFERENCES users(id),
                                 editor_id int CONSTRAINT items_editor_fkey REFERENCES users(id));
             CREATE TABLE comments (id serial PRIMARY KEY, item_id int NOT NULL REFERENCES items(id),
                                    author_id int REFERENCES users(id), body text);
             CREATE SCHEMA athena;
             CREATE TABLE athena.users (id uuid PRIMARY KEY, username text, image text);
             CREATE TABLE chat_subscriptions (id serial PRIMARY KEY,
                                              user_id uuid REFERENCES athena.users(id), topic text);
             CREATE TABLE regions (country text, code text, label text, PRIMARY KEY (country, code));
             CREATE TABLE shops (id serial PRIMARY KEY, country text, region_code text,
                                 FOREIGN KEY (country, region_code) REFERENCES regions(country, code));
             INSERT INTO users (name, email) VALUES ('ann', 'a@x'), ('bob', NULL), ('cy', 'c@x');
             INSERT INTO items (name, owner_id, editor_id) VALUES ('lamp', 1, 2), ('desk', 2, NULL), ('orphan', NULL, NULL);
             INSERT INTO comments (item_id, author_id, body) VALUES (1, 2, 'nice'), (1, 3, 'meh'), (2, 1, 'ok');
             INSERT INTO athena.users VALUES ('ef7a4c74-cc35-4d32-945a-a5271279ecdb', 'floris', 'https://cdn/a.png');
             INSERT INTO chat_subscriptions (user_id, topic) VALUES ('ef7a4c74-cc35-4d32-945a-a5271279ecdb', 'news'), (NULL, 'void');
             INSERT INTO regions VALUES ('nl', 'ut', 'Utrecht'), ('be', 'ut', 'Unused');
             INSERT INTO shops (country, region_code) VALUES ('nl', 'ut'), ('nl', NULL);",
        )
        .await
        .unwrap();
}

async fn fetch(s: &TestServer, body: Value) -> Value {
    let r = s
        .send("POST", "/gateway/fetch", &H, Some(body.clone()))
        .await;
    assert_eq!(r.status, 200, "{body}: {}", r.text());
    r.json()
}

/// Asserts a 400 with the standard envelope; returns the `error` text.
async fn fetch_400(s: &TestServer, body: Value) -> String {
    let r = s
        .send("POST", "/gateway/fetch", &H, Some(body.clone()))
        .await;
    assert_eq!(r.status, 400, "{body}: {}", r.text());
    r.envelope()["error"].as_str().unwrap().to_string()
}

async fn rest(s: &TestServer, query: &str) -> common::Reply {
    s.send("GET", &format!("/rest/v1/{query}"), &H, None).await
}

/// The data rows, sorted by `id`.
fn rows(v: &Value) -> Vec<Value> {
    let mut rows = v["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data array: {v}"))
        .clone();
    rows.sort_by_key(|r| r["id"].as_i64());
    rows
}

/// An embedded array sorted by `key`, for order-free comparison.
fn sorted(v: &Value, key: &str) -> Value {
    let mut items = v
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .clone();
    items.sort_by(|a, b| a[key].to_string().cmp(&b[key].to_string()));
    Value::Array(items)
}

#[tokio::test]
async fn many_to_one_is_an_object_or_null() {
    let s = TestServer::start().await;
    fixture(&s).await;
    // The SDK sends the grammar in `columns`.
    let v = fetch(
        &s,
        json!({"table_name": "items", "columns": "id,name,owner:users!owner_id(id,name)"}),
    )
    .await;
    assert_eq!(
        rows(&v),
        vec![
            json!({"id": 1, "name": "lamp", "owner": {"id": 1, "name": "ann"}}),
            json!({"id": 2, "name": "desk", "owner": {"id": 2, "name": "bob"}}),
            json!({"id": 3, "name": "orphan", "owner": null}),
        ]
    );
    // strip_nulls reaches into the embedded objects and drops a null embed.
    let v = fetch(
        &s,
        json!({"table_name": "items", "columns": "id,editor:users!items_editor_fkey(*)", "strip_nulls": true}),
    )
    .await;
    assert_eq!(
        rows(&v),
        vec![
            json!({"id": 1, "editor": {"id": 2, "name": "bob"}}),
            json!({"id": 2}),
            json!({"id": 3}),
        ]
    );
    // Two-column foreign key; a partly null key (MATCH SIMPLE) embeds null.
    let v = fetch(
        &s,
        json!({"table_name": "shops", "columns": "id,regions(label)"}),
    )
    .await;
    assert_eq!(
        rows(&v),
        vec![
            json!({"id": 1, "regions": {"label": "Utrecht"}}),
            json!({"id": 2, "regions": null}),
        ]
    );
    s.stop().await;
}

#[tokio::test]
async fn one_to_many_is_an_array_empty_when_none() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let v = fetch(
        &s,
        json!({"table_name": "items", "select": "id,comments(id,body)"}),
    )
    .await;
    let r = rows(&v);
    assert_eq!(
        sorted(&r[0]["comments"], "id"),
        json!([{"id": 1, "body": "nice"}, {"id": 2, "body": "meh"}])
    );
    assert_eq!(r[1]["comments"], json!([{"id": 3, "body": "ok"}]));
    assert_eq!(r[2]["comments"], json!([]));
    // Filters, order and limit apply to the base rows; count counts them.
    let v = fetch(
        &s,
        json!({"table_name": "items", "columns": "id,comments(body)",
               "conditions": [{"operator": "neq", "column": "name", "value": "lamp"}],
               "sort_by": {"field": "id", "direction": "desc"}, "limit": 1, "count": "exact"}),
    )
    .await;
    assert_eq!(v["data"], json!([{"id": 3, "comments": []}]));
    assert_eq!(v["count"], 2);
    s.stop().await;
}

#[tokio::test]
async fn schema_qualified_relation_in_a_second_schema() {
    let s = TestServer::start().await;
    fixture(&s).await;
    // The contract's example body.
    let v = fetch(
        &s,
        json!({"table_name": "public.chat_subscriptions",
               "select": "users:athena.users(id,username,image),user_id",
               "where_filters": [{"column": "user_id", "operator": "eq",
                                  "value": "ef7a4c74-cc35-4d32-945a-a5271279ecdb", "column_cast": "text"}],
               "orderBy": [{"column": "user_id", "direction": "desc"}], "limit": 1}),
    )
    .await;
    assert_eq!(
        v["data"],
        json!([{"user_id": "ef7a4c74-cc35-4d32-945a-a5271279ecdb",
                "users": {"id": "ef7a4c74-cc35-4d32-945a-a5271279ecdb", "username": "floris",
                          "image": "https://cdn/a.png"}}])
    );
    // Unqualified, the name follows the only foreign key: athena.users,
    // not public.users.
    let v = fetch(
        &s,
        json!({"table_name": "chat_subscriptions", "columns": "id,users(username)"}),
    )
    .await;
    assert_eq!(
        rows(&v),
        vec![
            json!({"id": 1, "users": {"username": "floris"}}),
            json!({"id": 2, "users": null})
        ]
    );
    // public.users exists but no foreign key leads there.
    let err = fetch_400(
        &s,
        json!({"table_name": "chat_subscriptions", "columns": "id,public.users(name)"}),
    )
    .await;
    assert!(
        err.contains("no relationship") && err.contains("public.users"),
        "{err}"
    );
    // The embed is resolved in the related table's schema.
    let err = fetch_400(
        &s,
        json!({"table_name": "chat_subscriptions", "columns": "id,athena.users(name)"}),
    )
    .await;
    assert!(err.contains("name"), "{err}");
    s.stop().await;
}

#[tokio::test]
async fn aliases_and_nesting_two_and_three_deep() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let v = fetch(
        &s,
        json!({"table_name": "items",
               "columns": "id,owner:users!owner_id(name,written:comments(body,on:items(name))),notes:comments(body,author:users(name))"}),
    )
    .await;
    let r = rows(&v);
    assert_eq!(
        r[0]["owner"],
        json!({"name": "ann", "written": [{"body": "ok", "on": {"name": "desk"}}]})
    );
    assert_eq!(
        sorted(&r[0]["notes"], "body"),
        json!([{"body": "meh", "author": {"name": "cy"}}, {"body": "nice", "author": {"name": "bob"}}])
    );
    assert_eq!(
        r[1]["owner"],
        json!({"name": "bob", "written": [{"body": "nice", "on": {"name": "lamp"}}]})
    );
    assert_eq!(r[2], json!({"id": 3, "owner": null, "notes": []}));
    // An embed key must not shadow a column or another embed.
    for columns in [
        "*,name:users!owner_id(name)",
        "id,name,name:users!owner_id(name)",
        "id,users!owner_id(name),users!editor_id(name)",
    ] {
        let err = fetch_400(&s, json!({"table_name": "items", "columns": columns})).await;
        assert!(err.contains("alias"), "{columns}: {err}");
    }
    s.stop().await;
}

#[tokio::test]
async fn hints_disambiguate_and_ambiguity_is_400() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let err = fetch_400(
        &s,
        json!({"table_name": "items", "columns": "id,users(name)"}),
    )
    .await;
    assert!(
        err.contains("items_owner_id_fkey") && err.contains("items_editor_fkey"),
        "{err}"
    );
    // From the other side too: two foreign keys lead from items to users.
    let err = fetch_400(
        &s,
        json!({"table_name": "users", "columns": "id,items(id)"}),
    )
    .await;
    assert!(err.contains("more than one relationship"), "{err}");
    // By constraint name and by column, in both directions.
    let v = fetch(
        &s,
        json!({"table_name": "items", "columns": "id,users!items_editor_fkey(name)"}),
    )
    .await;
    assert_eq!(rows(&v)[0]["users"], json!({"name": "bob"}));
    let v = fetch(
        &s,
        json!({"table_name": "users", "columns": "id,owned:items!owner_id(name),edits:items!items_editor_fkey(name)"}),
    )
    .await;
    let r = rows(&v);
    assert_eq!(r[1]["owned"], json!([{"name": "desk"}]));
    assert_eq!(r[1]["edits"], json!([{"name": "lamp"}]));
    assert_eq!(
        (r[2]["owned"].clone(), r[2]["edits"].clone()),
        (json!([]), json!([]))
    );
    // A hint that names nothing.
    let err = fetch_400(
        &s,
        json!({"table_name": "items", "columns": "id,users!nope(name)"}),
    )
    .await;
    assert!(err.contains("nope"), "{err}");
    s.stop().await;
}

#[tokio::test]
async fn unknown_relations_and_columns_are_400() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let err = fetch_400(&s, json!({"table_name": "items", "columns": "id,nope(*)"})).await;
    assert!(err.contains("`nope`"), "{err}");
    // A real table with no foreign key to the base.
    let err = fetch_400(
        &s,
        json!({"table_name": "items", "columns": "id,regions(*)"}),
    )
    .await;
    assert!(err.contains("no relationship"), "{err}");
    // An unknown column of the related table.
    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &H,
            Some(json!({"table_name": "items", "columns": "id,comments(nope)"})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.envelope()["code"], "column_not_found");
    // Malformed grammar.
    for columns in [
        "id,users!owner_id(name",
        "id,users!owner_id(name))",
        "id,(name)",
    ] {
        fetch_400(&s, json!({"table_name": "items", "columns": columns})).await;
    }
    s.stop().await;
}

#[tokio::test]
async fn inner_drops_rows_without_a_match_and_counts_the_rest() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let v = fetch(
        &s,
        json!({"table_name": "items", "columns": "id,owner:users!owner_id!inner(name)", "count": "exact"}),
    )
    .await;
    assert_eq!(
        rows(&v),
        vec![
            json!({"id": 1, "owner": {"name": "ann"}}),
            json!({"id": 2, "owner": {"name": "bob"}})
        ]
    );
    assert_eq!(v["count"], 2);
    // One-to-many `!inner` with a nested `!inner`: items with a comment by
    // someone who has an email (ann on desk, cy on lamp).
    let v = fetch(
        &s,
        json!({"table_name": "items", "columns": "id,comments!inner(body,users!inner(email))",
               "count": "exact", "head": true}),
    )
    .await;
    assert_eq!(v["count"], 2);
    // Empty parentheses: a pure filter, not shown.
    let v = fetch(
        &s,
        json!({"table_name": "users", "columns": "id,items!editor_id!inner()"}),
    )
    .await;
    assert_eq!(rows(&v), vec![json!({"id": 2})]);
    s.stop().await;
}

#[tokio::test]
async fn rest_select_embeds() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let r = rest(
        &s,
        "items?select=id,name,author:users!owner_id(id,name)&order=id.desc&limit=2",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["data"],
        json!([{"id": 3, "name": "orphan", "author": null},
               {"id": 2, "name": "desk", "author": {"id": 2, "name": "bob"}}])
    );
    let r = rest(&s, "items?select=*,comments(*)&id=eq.2").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["data"],
        json!([{"id": 2, "name": "desk", "owner_id": 2, "editor_id": null,
                "comments": [{"id": 3, "item_id": 2, "author_id": 1, "body": "ok"}]}])
    );
    let r = rest(
        &s,
        "items?select=id,users!items_owner_id_fkey!inner(name)&order=id",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["data"],
        json!([{"id": 1, "users": {"name": "ann"}}, {"id": 2, "users": {"name": "bob"}}])
    );
    // Depth two, with an alias and `*`.
    let r = rest(
        &s,
        "comments?select=id,item:items(name,owner:users!owner_id(*))&id=eq.1",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["data"],
        json!([{"id": 1, "item": {"name": "lamp", "owner": {"id": 1, "name": "ann", "email": "a@x"}}}])
    );
    let r = rest(&s, "items?select=id,users(name)").await;
    assert_eq!(r.status, 400, "{}", r.text());
    let err = r.envelope()["error"].as_str().unwrap().to_string();
    assert!(err.contains("items_owner_id_fkey"), "{err}");
    s.stop().await;
}

#[tokio::test]
async fn canonical_nested_select_object() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let v = fetch(
        &s,
        json!({"table_name": "items",
               "select": {"id": true, "name": true, "owner_id": false,
                          "users": {"select": {"id": true, "name": true}, "foreign_key": "items_owner_id_fkey"},
                          "editor": {"table": "users", "fk": "editor_id", "select": {"name": true}},
                          "comments": {"select": {"body": true, "users": {"select": {"name": true}}}}},
               "where": {"id": {"eq": 1}}}),
    )
    .await;
    let r = rows(&v);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["users"], json!({"id": 1, "name": "ann"}));
    assert_eq!(r[0]["editor"], json!({"name": "bob"}));
    assert_eq!(
        sorted(&r[0]["comments"], "body"),
        json!([{"body": "meh", "users": {"name": "cy"}}, {"body": "nice", "users": {"name": "bob"}}])
    );
    assert!(r[0].get("owner_id").is_none(), "{v}");
    // `schema`, `inner`, and `select: true` for every column.
    let v = fetch(
        &s,
        json!({"table_name": "chat_subscriptions",
               "select": {"topic": true, "users": {"schema": "athena", "inner": true, "select": true}}}),
    )
    .await;
    assert_eq!(
        v["data"],
        json!([{"topic": "news", "users": {"id": "ef7a4c74-cc35-4d32-945a-a5271279ecdb",
                                            "username": "floris", "image": "https://cdn/a.png"}}])
    );
    // Without a hint the edge is ambiguous; unknown relation keys are refused
    // (`where`/`order`/`limit`/`offset` are embedded-resource parameters:
    // tests/it/rest_grammar.rs).
    let err = fetch_400(
        &s,
        json!({"table_name": "items", "select": {"id": true, "users": {"select": {"id": true}}}}),
    )
    .await;
    assert!(err.contains("items_editor_fkey"), "{err}");
    fetch_400(
        &s,
        json!({"table_name": "items", "select": {"comments": {"select": {"id": true}, "on": {"id": 1}}}}),
    )
    .await;
    s.stop().await;
}

#[tokio::test]
async fn hostile_relation_names_are_never_executed() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let hostile = [
        "id,users\"; DROP TABLE items; --(id)",
        "id,x:users!owner_id\"; DROP TABLE items; --(id)",
        "id,\"users\"(id)",
        "id,users;DROP TABLE items(id)",
        "id,users!owner_id(id,name\"; DROP TABLE items; --)",
        "id,public\".\"users(id)",
    ];
    for columns in hostile {
        let r = s
            .send(
                "POST",
                "/gateway/fetch",
                &H,
                Some(json!({"table_name": "items", "columns": columns})),
            )
            .await;
        assert_eq!(r.status, 400, "{columns}: {}", r.text());
        r.envelope();
        let q = columns
            .replace(' ', "%20")
            .replace('"', "%22")
            .replace(';', "%3B");
        let r = rest(&s, &format!("items?select={q}")).await;
        assert_eq!(r.status, 400, "{columns}: {}", r.text());
        r.envelope();
    }
    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &H,
            Some(json!({"table_name": "items",
                        "select": {"users\"; DROP TABLE items; --": {"select": {"id": true}}}})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    r.envelope();
    let n = s.scalar("SELECT count(*) FROM items").await;
    assert_eq!(n, 3);
    s.stop().await;
}

#[tokio::test]
async fn foreign_keys_added_later_are_found() {
    let s = TestServer::start().await;
    fixture(&s).await;
    // Loads the schema cache.
    fetch(
        &s,
        json!({"table_name": "items", "columns": "id,comments(id)"}),
    )
    .await;
    s.tenant()
        .await
        .batch_execute(
            "CREATE TABLE tags (id serial PRIMARY KEY, item_id int REFERENCES items(id), label text);
             INSERT INTO tags (item_id, label) VALUES (3, 'new');",
        )
        .await
        .unwrap();
    // The reload after a miss is rate-limited; wait out the interval.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let v = fetch(
        &s,
        json!({"table_name": "items", "columns": "id,tags(label)", "conditions": [{"eq_column": "id", "eq_value": "3"}]}),
    )
    .await;
    assert_eq!(v["data"], json!([{"id": 3, "tags": [{"label": "new"}]}]));
    s.stop().await;
}
