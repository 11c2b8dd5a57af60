//! Gateway CRUD on a real tenant database, with the request shapes the
//! official athena-js SDK sends (../shared/docs/athena-js-sdk.md §3.1).

use crate::common;

use common::{TestServer, CLIENT};
use serde_json::{json, Value};

const H: [(&str, &str); 1] = [("x-athena-client", CLIENT)];

async fn fixture(s: &TestServer) {
    s.tenant()
        .await
        .batch_execute(
            "CREATE TABLE test (id serial PRIMARY KEY, test_bool boolean, test_json jsonb,
                                test_number numeric, test_text text, test_time time,
                                test_uuid uuid, tags text[], code text UNIQUE);
             CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, score int, note text);
             INSERT INTO items (name, score, note) VALUES ('alpha', 10, NULL), ('beta', 20, 'b'), ('gamma', 30, 'g');",
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

fn ids(v: &Value) -> Vec<i64> {
    let mut ids: Vec<i64> = v["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data array: {v}"))
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    ids.sort();
    ids
}

async fn count(s: &TestServer, table: &str) -> i64 {
    s.tenant()
        .await
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

fn cond(op: &str, column: &str, value: Value) -> Value {
    json!({"operator": op, "column": column, "eq_column": column, "value": value, "eq_value": value})
}

#[tokio::test]
async fn sdk_flow_insert_fetch_every_operator_count_update_delete() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let uuid = "6f1c1a52-56b6-4c39-9d8e-0f3e0c7f6b11";

    // Insert an object → `data` is the row object; numerics are JSON numbers.
    let r = s
        .send(
            "PUT",
            "/gateway/insert",
            &H,
            Some(json!({"table_name": "test", "columns": "*", "count": "exact",
                "insert_body": {"test_bool": true, "test_json": {"k": [1, 2]}, "test_number": 12.5,
                                "test_text": "hello world", "test_time": "12:34:56", "test_uuid": uuid,
                                "tags": ["red", "blue"], "unknown_field_is_not_sent": null}})),
        )
        .await;
    // Unknown *columns* are refused (400), unknown *body fields* are ignored.
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.envelope()["code"], "column_not_found");
    let r = s
        .send(
            "PUT",
            "/gateway/insert",
            &H,
            Some(json!({"table_name": "test", "columns": "*", "count": "exact", "head": false,
                "insert_body": {"test_bool": true, "test_json": {"k": [1, 2]}, "test_number": 12.5,
                                "test_text": "hello world", "test_time": "12:34:56", "test_uuid": uuid,
                                "tags": ["red", "blue"]}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["status"], "success");
    let row = &v["data"];
    assert!(row.is_object(), "{v}");
    assert_eq!(row["test_number"], json!(12.5));
    assert_eq!(row["test_json"], json!({"k": [1, 2]}));
    assert_eq!(row["tags"], json!(["red", "blue"]));
    assert_eq!(row["test_uuid"], uuid);
    assert_eq!(
        (v["rows_affected"].clone(), v["affected_rows"].clone()),
        (json!(1), json!(1))
    );
    let id = row["id"].as_i64().unwrap();
    // A second row with nulls.
    let r = s
        .send(
            "PUT",
            "/gateway/insert",
            &H,
            Some(json!({"table_name": "test", "columns": "id,test_text",
                "insert_body": {"test_bool": false, "test_number": 3, "test_text": "other", "test_json": null}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["data"],
        json!({"id": id + 1, "test_text": "other"})
    );
    let other = id + 1;

    // Every SDK operator, in the SDK's condition shape.
    let cases: Vec<(Value, Vec<i64>)> = vec![
        (cond("eq", "test_text", json!("hello world")), vec![id]),
        (cond("neq", "test_text", json!("hello world")), vec![other]),
        (cond("gt", "test_number", json!(5)), vec![id]),
        (cond("gte", "test_number", json!(3)), vec![id, other]),
        (cond("lt", "test_number", json!(12.5)), vec![other]),
        (cond("lte", "test_number", json!("12.5")), vec![id, other]),
        (cond("like", "test_text", json!("hello%")), vec![id]),
        (cond("ilike", "test_text", json!("HELLO%")), vec![id]),
        (cond("is", "test_uuid", Value::Null), vec![other]),
        (cond("is", "test_bool", json!(true)), vec![id]),
        (cond("in", "id", json!([id, 999])), vec![id]),
        (cond("contains", "tags", json!(["red"])), vec![id]),
        (cond("contains", "test_json", json!({"k": [2]})), vec![id]),
        (
            cond("containedBy", "tags", json!(["red", "blue", "green"])),
            vec![id],
        ),
        (
            json!({"operator": "not", "value": "test_text.eq.other"}),
            vec![id],
        ),
        (
            json!({"operator": "not", "column": "test_text", "value": {"operator": "eq", "value": "hello world"}}),
            vec![other],
        ),
        (
            json!({"operator": "or", "value": format!("id.eq.{other},test_text.like.hel*")}),
            vec![id, other],
        ),
        (
            json!({"operator": "eq", "column": "test_uuid", "value": uuid, "value_cast": "uuid"}),
            vec![id],
        ),
        (
            json!({"eq_column": "test_text", "eq_value": "other"}),
            vec![other],
        ),
        (
            json!({"eq_column": "test_bool", "eq_value": false}),
            vec![other],
        ),
    ];
    for (c, want) in cases {
        let v = fetch(&s, json!({"table_name": "test", "columns": "*", "conditions": [c.clone()], "strip_nulls": true})).await;
        assert_eq!(ids(&v), want, "{c}");
    }
    // Stripped nulls by default from the SDK (X-Strip-Nulls / strip_nulls).
    let v = fetch(&s, json!({"table_name": "test", "conditions": [cond("eq", "id", json!(other))], "strip_nulls": true})).await;
    assert!(v["data"][0].get("test_uuid").is_none(), "{v}");

    // where objects, where_filters, ordering, paging.
    let v = fetch(&s, json!({"table_name": "test", "where": {"test_number": {"gt": 1}, "or": [{"id": id}, {"id": other}]},
                             "orderBy": {"column": "id", "ascending": false}})).await;
    assert_eq!(v["data"][0]["id"], json!(other));
    let v = fetch(&s, json!({"table_name": "test", "where_filters": [{"column": "id", "operator": "in", "values": [id]}]})).await;
    assert_eq!(ids(&v), vec![id]);
    let v = fetch(&s, json!({"table_name": "items", "columns": "id", "sort_by": {"field": "id", "direction": "descending"}, "limit": 2})).await;
    assert_eq!(v["data"], json!([{"id": 3}, {"id": 2}]));
    let v = fetch(&s, json!({"table_name": "items", "columns": ["id"], "sort_by": "id.asc", "page_size": 2, "current_page": 2})).await;
    assert_eq!(v["data"], json!([{"id": 3}]));
    let v = fetch(&s, json!({"table_name": "items", "columns": "id", "sortBy": {"field": "score", "direction": "desc"}, "offset": 2})).await;
    assert_eq!(v["data"], json!([{"id": 1}]));

    // count: "exact" + head: true → top-level count and no rows.
    let v = fetch(
        &s,
        json!({"table_name": "items", "columns": "*", "count": "exact", "head": true,
                             "conditions": [cond("gte", "score", json!(20))]}),
    )
    .await;
    assert_eq!(v["count"], json!(2));
    assert_eq!(v["data"], json!([]));
    let v = fetch(
        &s,
        json!({"table_name": "items", "count": "exact", "limit": 1}),
    )
    .await;
    assert_eq!(
        (v["count"].clone(), v["data"].as_array().unwrap().len()),
        (json!(3), 1)
    );

    // Update → rows in data, affected rows at the top level.
    let r = s
        .send(
            "POST",
            "/gateway/update",
            &H,
            Some(json!({"table_name": "test", "conditions": [cond("eq", "test_text", json!("other"))],
                        "update_body": {"test_text": "updated", "test_number": 7, "test_json": [1, "x"]},
                        "strip_nulls": true})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["data"][0]["test_text"], "updated");
    assert_eq!(v["data"][0]["test_number"], json!(7));
    assert_eq!(v["data"][0]["test_json"], json!([1, "x"]));
    assert_eq!(v["affected_rows"], json!(1));
    // resource_id, and better-auth-athena's `update_body: {data, set}` retry shape.
    let r = s
        .send(
            "POST",
            "/gateway/update",
            &H,
            Some(json!({"table_name": "test", "resource_id": other.to_string(), "columns": ["id", "test_text"],
                        "update_body": {"data": {"test_text": "via-set"}, "set": {"test_text": "via-set"}}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["data"],
        json!([{"id": other, "test_text": "via-set"}])
    );
    let r = s
        .send(
            "POST",
            "/gateway/update",
            &H,
            Some(json!({"table_name": "test", "resource_id": other, "set": {"test_bool": null}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"][0]["test_bool"], Value::Null);

    // Delete by eq("id") (SDK sends resource_id), then by conditions only.
    let r = s
        .send(
            "DELETE",
            "/gateway/delete",
            &H,
            Some(json!({"table_name": "test", "resource_id": id.to_string(), "conditions": [cond("eq", "id", json!(id))]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(ids(&v), vec![id]);
    assert_eq!(
        (v["rows_affected"].clone(), v["table_name"].clone()),
        (json!(1), json!("test"))
    );
    let r = s
        .send(
            "DELETE",
            "/gateway/delete",
            &H,
            Some(json!({"table_name": "test", "conditions": [cond("eq", "test_text", json!("via-set"))], "columns": "*"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(ids(&r.json()), vec![other]);
    assert_eq!(count(&s, "test").await, 0);
    s.stop().await;
}

#[tokio::test]
async fn array_insert_upsert_and_conflicts() {
    let s = TestServer::start().await;
    fixture(&s).await;
    // Array body → array of rows; default_to_null; columns as a list.
    let r = s
        .send(
            "PUT",
            "/gateway/insert",
            &H,
            Some(
                json!({"table_name": "items", "columns": ["id", "name", "score"],
                        "insert_body": [{"name": "delta", "score": 40}, {"name": "epsilon"}]}),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        v["data"],
        json!([{"id": 4, "name": "delta", "score": 40}, {"id": 5, "name": "epsilon", "score": null}])
    );
    assert_eq!(
        (v["rows_affected"].clone(), v["affected_rows"].clone()),
        (json!(2), json!(2))
    );

    // Upsert on a column with update_body.
    let body = json!({"table_name": "test", "insert_body": {"code": "c1", "test_text": "first"},
                      "on_conflict": "code", "update_body": {"test_text": "second"}, "columns": "code,test_text"});
    let r = s
        .send("PUT", "/gateway/insert", &H, Some(body.clone()))
        .await;
    assert_eq!(
        r.json()["data"],
        json!({"code": "c1", "test_text": "first"}),
        "{}",
        r.text()
    );
    let r = s.send("PUT", "/gateway/insert", &H, Some(body)).await;
    assert_eq!(
        r.json()["data"],
        json!({"code": "c1", "test_text": "second"}),
        "{}",
        r.text()
    );
    // Upsert on the primary key without update_body merges the inserted columns.
    let r = s
        .send(
            "PUT",
            "/gateway/insert",
            &H,
            Some(json!({"table_name": "items", "insert_body": {"id": 1, "name": "ALPHA"}, "on_conflict": ["id"]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["name"], "ALPHA");
    assert_eq!(r.json()["data"]["score"], json!(10));

    // Unique violation → 409 envelope; the row is not duplicated.
    let r = s
        .send(
            "PUT",
            "/gateway/insert",
            &H,
            Some(json!({"table_name": "test", "insert_body": {"code": "c1"}})),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.envelope()["code"], "conflict");
    // Not-null violation, bad value for the type, ON CONFLICT without a
    // matching constraint: 400, never 500.
    for body in [
        json!({"table_name": "items", "insert_body": {"score": 1}}),
        json!({"table_name": "items", "insert_body": {"name": "x", "score": "not a number"}}),
        json!({"table_name": "items", "insert_body": {"name": "x"}, "on_conflict": "name"}),
        json!({"table_name": "items", "insert_body": []}),
        json!({"table_name": "items", "insert_body": "nope"}),
        json!({"table_name": "items"}),
    ] {
        let r = s
            .send("PUT", "/gateway/insert", &H, Some(body.clone()))
            .await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        r.envelope();
    }
    assert_eq!(count(&s, "items").await, 5);
    s.stop().await;
}

#[tokio::test]
async fn updates_and_deletes_without_a_filter_are_refused() {
    let s = TestServer::start().await;
    fixture(&s).await;
    for (method, path, body) in [
        (
            "POST",
            "/gateway/update",
            json!({"table_name": "items", "update_body": {"note": "all"}}),
        ),
        (
            "POST",
            "/gateway/update",
            json!({"table_name": "items", "conditions": [], "update_body": {"note": "all"}}),
        ),
        (
            "POST",
            "/gateway/update",
            json!({"table_name": "items", "conditions": [cond("eq", "id", json!(1))]}),
        ),
        ("DELETE", "/gateway/delete", json!({"table_name": "items"})),
        (
            "DELETE",
            "/gateway/delete",
            json!({"table_name": "items", "conditions": []}),
        ),
        (
            "DELETE",
            "/gateway/delete",
            json!({"table_name": "items", "resource_id": null}),
        ),
    ] {
        let r = s.send(method, path, &H, Some(body.clone())).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        r.envelope();
    }
    for (method, path) in [
        ("PATCH", "/rest/v1/items"),
        ("DELETE", "/rest/v1/items"),
        ("DELETE", "/rest/v1/items?select=id"),
    ] {
        let r = s.send(method, path, &H, Some(json!({"note": "all"}))).await;
        assert_eq!(r.status, 400, "{method} {path}: {}", r.text());
        r.envelope();
    }
    let untouched: i64 = s
        .tenant()
        .await
        .query_one(
            "SELECT count(*) FROM items WHERE note IS DISTINCT FROM 'all'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(untouched, 3);
    s.stop().await;
}

/// Hostile identifiers and values on every route: refused or bound, never executed.
#[tokio::test]
async fn hostile_identifiers_and_values_on_every_route() {
    let s = TestServer::start().await;
    fixture(&s).await;
    s.tenant()
        .await
        .batch_execute(
            "CREATE TABLE \"we\"\"ird; tablé\" (id serial PRIMARY KEY, \"select\" text, \"naïve col\" text);",
        )
        .await
        .unwrap();
    let long = "x".repeat(64);
    let hostile_idents = [
        "items; DROP TABLE items",
        "items\" ; DROP TABLE items; --",
        "items'--",
        "pg_catalog.pg_authid",
        "ïtems",
        "select",
        long.as_str(),
    ];
    let hostile_values = [
        "1; DROP TABLE items",
        "' OR '1'='1",
        "beta' --",
        "\"; DROP TABLE items; --",
        "ünïcödé ✓",
    ];
    for t in hostile_idents {
        let bodies = [
            ("POST", "/gateway/fetch", json!({"table_name": t})),
            (
                "PUT",
                "/gateway/insert",
                json!({"table_name": t, "insert_body": {"name": "x"}}),
            ),
            (
                "POST",
                "/gateway/update",
                json!({"table_name": t, "resource_id": 1, "update_body": {"name": "x"}}),
            ),
            (
                "DELETE",
                "/gateway/delete",
                json!({"table_name": t, "resource_id": 1}),
            ),
            // the identifier as a column
            (
                "POST",
                "/gateway/fetch",
                json!({"table_name": "items", "columns": [t]}),
            ),
            (
                "POST",
                "/gateway/fetch",
                json!({"table_name": "items", "conditions": [cond("eq", t, json!(1))]}),
            ),
            (
                "POST",
                "/gateway/fetch",
                json!({"table_name": "items", "sort_by": {"field": t}}),
            ),
            (
                "PUT",
                "/gateway/insert",
                json!({"table_name": "items", "insert_body": {t: "x", "name": "n"}}),
            ),
            (
                "PUT",
                "/gateway/insert",
                json!({"table_name": "items", "insert_body": {"name": "n"}, "columns": t}),
            ),
            (
                "POST",
                "/gateway/update",
                json!({"table_name": "items", "resource_id": 1, "update_body": {t: "x"}}),
            ),
            (
                "DELETE",
                "/gateway/delete",
                json!({"table_name": "items", "conditions": [cond("eq", t, json!(1))]}),
            ),
        ];
        for (method, path, body) in bodies {
            let r = s.send(method, path, &H, Some(body.clone())).await;
            assert!(
                matches!(r.status, 400 | 404),
                "{method} {path} {body}: {} {}",
                r.status,
                r.text()
            );
            r.envelope();
        }
        let enc = urlencode(t);
        for (method, path) in [
            ("GET", format!("/rest/v1/{enc}")),
            ("POST", format!("/rest/v1/{enc}")),
            ("PATCH", format!("/rest/v1/{enc}?id=eq.1")),
            ("DELETE", format!("/rest/v1/{enc}?id=eq.1")),
            ("GET", format!("/rest/v1/items?{enc}=eq.1")),
            ("PATCH", format!("/rest/v1/items?{enc}=eq.1")),
            ("DELETE", format!("/rest/v1/items?{enc}=eq.1")),
            ("GET", format!("/rest/v1/items?order={enc}")),
        ] {
            let r = s.send(method, &path, &H, Some(json!({"name": "x"}))).await;
            assert!(
                matches!(r.status, 400 | 404),
                "{method} {path}: {} {}",
                r.status,
                r.text()
            );
            r.envelope();
        }
    }
    // Hostile casts are refused.
    for c in [
        json!({"operator": "eq", "column": "id", "value": 1, "value_cast": "int; DROP TABLE items"}),
        json!({"operator": "eq", "column": "id", "value": 1, "column_cast": "text) OR (1=1"}),
        json!({"operator": "drop", "column": "id", "value": 1}),
        json!({"operator": "or", "value": "id.eq.1,name.eq.x);DROP TABLE items;--"}),
    ] {
        let r = s
            .send(
                "POST",
                "/gateway/fetch",
                &H,
                Some(json!({"table_name": "items", "conditions": [c.clone()]})),
            )
            .await;
        assert_eq!(r.status, 400, "{c}: {}", r.text());
    }
    // Hostile values are plain data: they match nothing, or are stored verbatim.
    for v in hostile_values {
        let r = fetch(
            &s,
            json!({"table_name": "items", "conditions": [cond("eq", "name", json!(v))]}),
        )
        .await;
        assert_eq!(r["data"], json!([]), "{v}");
        let r = s.send("POST", "/gateway/update", &H, Some(json!({"table_name": "items", "conditions": [cond("eq", "name", json!(v))], "update_body": {"note": v}}))).await;
        assert_eq!(r.json()["affected_rows"], json!(0), "{v}");
        let r = s
            .send(
                "DELETE",
                "/gateway/delete",
                &H,
                Some(json!({"table_name": "items", "conditions": [cond("eq", "name", json!(v))]})),
            )
            .await;
        assert_eq!(r.json()["affected_rows"], json!(0), "{v}");
        let r = s
            .send(
                "DELETE",
                "/gateway/delete",
                &H,
                Some(json!({"table_name": "items", "resource_id": v})),
            )
            .await;
        assert_eq!(r.status, 400, "{v}: id is an integer");
        let r = s.send("PUT", "/gateway/insert", &H, Some(json!({"table_name": "we\"ird; tablé", "insert_body": {"select": v, "naïve col": v}}))).await;
        assert_eq!(r.status, 200, "{v}: {}", r.text());
        assert_eq!(r.json()["data"]["select"], v);
        let enc = urlencode(v);
        let r = s
            .send("GET", &format!("/rest/v1/items?name=eq.{enc}"), &H, None)
            .await;
        assert_eq!(r.json()["data"], json!([]), "{v}");
        let r = s
            .send(
                "PATCH",
                &format!("/rest/v1/items?name=eq.{enc}"),
                &H,
                Some(json!({"note": v})),
            )
            .await;
        assert_eq!(r.json()["data"], json!([]), "{v}");
        let r = s
            .send("DELETE", &format!("/rest/v1/items?name=eq.{enc}"), &H, None)
            .await;
        assert_eq!(r.json()["data"], json!([]), "{v}");
    }
    // The weird table is reachable through every route with its real name.
    let r = fetch(&s, json!({"table_name": "we\"ird; tablé", "columns": ["select"], "conditions": [cond("eq", "select", json!("1; DROP TABLE items"))]})).await;
    assert_eq!(r["data"], json!([{"select": "1; DROP TABLE items"}]));
    let r = s.send("DELETE", "/gateway/delete", &H, Some(json!({"table_name": "we\"ird; tablé", "conditions": [cond("like", "naïve col", json!("%"))]}))).await;
    assert_eq!(
        r.json()["affected_rows"],
        json!(hostile_values.len()),
        "{}",
        r.text()
    );
    assert_eq!(count(&s, "items").await, 3, "the table is intact");
    let notes: i64 = s
        .tenant()
        .await
        .query_one(
            "SELECT count(*) FROM items WHERE note IS NOT NULL AND note NOT IN ('b','g')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(notes, 0);
    s.stop().await;
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[tokio::test]
async fn rest_writes_with_prefer_variants_and_logic_filters() {
    let s = TestServer::start().await;
    fixture(&s).await;
    // POST object: representation by default.
    let r = s
        .send(
            "POST",
            "/rest/v1/items?select=id,name",
            &H,
            Some(json!({"name": "delta", "score": 40})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"], json!([{"id": 4, "name": "delta"}]));
    // POST array, return=minimal → 204 with no body.
    let minimal = [("x-athena-client", CLIENT), ("prefer", "return=minimal")];
    let r = s
        .send(
            "POST",
            "/rest/v1/items",
            &minimal,
            Some(json!([{"name": "e1"}, {"name": "e2"}])),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.body.is_empty());
    assert_eq!(count(&s, "items").await, 6);
    // Upsert on the primary key.
    let merge = [
        ("x-athena-client", CLIENT),
        (
            "prefer",
            "return=representation,resolution=merge-duplicates",
        ),
    ];
    let r = s
        .send(
            "POST",
            "/rest/v1/items",
            &merge,
            Some(json!([{"id": 1, "name": "ALPHA"}, {"id": 7, "name": "new"}])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 2);
    assert_eq!(count(&s, "items").await, 7);
    let ignore = [
        ("x-athena-client", CLIENT),
        ("prefer", "resolution=ignore-duplicates"),
    ];
    let r = s
        .send(
            "POST",
            "/rest/v1/items",
            &ignore,
            Some(json!({"id": 1, "name": "ignored"})),
        )
        .await;
    assert_eq!(r.json()["data"], json!([]));
    // Plain duplicate → 409.
    let r = s
        .send(
            "POST",
            "/rest/v1/items",
            &H,
            Some(json!({"id": 1, "name": "dup"})),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    r.envelope();
    // PATCH with filters (both forms), or=, not.
    let r = s
        .send(
            "PATCH",
            "/rest/v1/items?or=(name.eq.beta,score.gte.30)&select=id,note",
            &H,
            Some(json!({"note": "x"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(ids(&r.json()), vec![2, 3, 4]);
    let r = s
        .send(
            "PATCH",
            "/rest/v1/items?id.eq=2",
            &minimal,
            Some(json!({"note": "y"})),
        )
        .await;
    assert_eq!(r.status, 204);
    let r = s.send("GET", "/rest/v1/items?note=eq.y", &H, None).await;
    assert_eq!(ids(&r.json()), vec![2]);
    let r = s
        .send(
            "GET",
            "/rest/v1/items?name=not.in.(ALPHA,beta,gamma)&score=not.is.null",
            &H,
            None,
        )
        .await;
    assert_eq!(ids(&r.json()), vec![4]);
    let r = s
        .send(
            "GET",
            "/rest/v1/items?or=(id.eq.1,and(score.gt.25,score.lt.35))",
            &H,
            None,
        )
        .await;
    assert_eq!(ids(&r.json()), vec![1, 3]);
    let r = s.send("GET", "/rest/v1/items?or=(id.eq.1", &H, None).await;
    assert_eq!(r.status, 400);
    // DELETE with filters.
    let r = s
        .send("DELETE", "/rest/v1/items?name=like.e*", &H, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 2);
    let r = s
        .send("DELETE", "/rest/v1/items?id=eq.7", &minimal, None)
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(count(&s, "items").await, 4);
    // Errors.
    let r = s
        .send("POST", "/rest/v1/missing_table", &H, Some(json!({"a": 1})))
        .await;
    assert_eq!(r.status, 404);
    let r = s
        .send(
            "PATCH",
            "/rest/v1/items?id=eq.1",
            &H,
            Some(json!({"bogus": 1})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.envelope()["code"], "column_not_found");
    s.stop().await;
}

/// `/gateway/data` (POST) and `/data` (GET) are fetch under older names.
#[tokio::test]
async fn legacy_data_aliases_answer_like_fetch() {
    let s = common::TestServer::start().await;
    s.tenant()
        .await
        .batch_execute("CREATE TABLE logs (id int PRIMARY KEY, kind text); INSERT INTO logs VALUES (1, 'a'), (2, 'b'), (3, 'b')")
        .await
        .unwrap();
    let h = [("x-athena-client", common::CLIENT)];
    let r = s
        .send("POST", "/gateway/data", &h, Some(serde_json::json!({"table_name": "logs", "conditions": [{"eq_column": "kind", "eq_value": "b"}], "columns": ["id"]})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        (v["status"].clone(), v["data"].clone()),
        (
            serde_json::json!("success"),
            serde_json::json!([{"id": 2}, {"id": 3}])
        )
    );

    let r = s.send("GET", "/data?view=logs&eq_column=kind&eq_value=b&columns=id&sort_by=id&sort_direction=desc&limit=1", &h, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"], serde_json::json!([{"id": 3}]));
    let r = s
        .send("GET", "/data?view=logs&eq_column=kind", &h, None)
        .await;
    assert_eq!(r.status, 400, "eq_value is required");
    let r = s
        .send("GET", "/data?view=nope&eq_column=kind&eq_value=b", &h, None)
        .await;
    assert_eq!(r.status, 404);
    s.stop().await;
}

/// Statements are prepared once per pooled connection; DDL that changes a
/// cached statement's result is handled (prepared afresh), not a 500.
#[tokio::test]
async fn cached_statements_survive_ddl() {
    let s = common::TestServer::start_with(|c| c.pool_max_size = 1).await;
    let db = s.tenant().await;
    db.batch_execute("CREATE TABLE shapes (id int PRIMARY KEY); INSERT INTO shapes VALUES (1)")
        .await
        .unwrap();
    let h = [("x-athena-client", common::CLIENT)];
    let body = serde_json::json!({"table_name": "shapes", "columns": "*"});
    for _ in 0..3 {
        let r = s
            .send("POST", "/gateway/fetch", &h, Some(body.clone()))
            .await;
        assert_eq!(r.json()["data"], serde_json::json!([{"id": 1}]));
    }
    db.batch_execute("ALTER TABLE shapes ADD COLUMN label text DEFAULT 'x'")
        .await
        .unwrap();
    let r = s.send("POST", "/gateway/fetch", &h, Some(body)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["data"],
        serde_json::json!([{"id": 1, "label": "x"}])
    );
    s.stop().await;
}
