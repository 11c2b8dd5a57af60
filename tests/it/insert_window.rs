//! `X-Athena-Insert-Window`: concurrent inserts inside one window are
//! written by one statement (one transaction: the rows share `xmin`), each
//! caller gets its own rows back, and one caller's failure costs nobody
//! else their row.

use crate::common;

use common::{TestServer, CLIENT};
use serde_json::{json, Value};
use std::sync::Arc;

async fn fixture(s: &TestServer) {
    s.tenant()
        .await
        .batch_execute(
            "CREATE TABLE events (id serial PRIMARY KEY, name text NOT NULL, code text UNIQUE, score numeric);
             CREATE TABLE other (id serial PRIMARY KEY, label text);",
        )
        .await
        .unwrap();
}

/// Sends the inserts at once, each with the window header; returns the
/// replies in request order.
async fn concurrent(s: &Arc<TestServer>, window: &str, bodies: Vec<Value>) -> Vec<(u16, Value)> {
    let mut set = tokio::task::JoinSet::new();
    for (i, body) in bodies.into_iter().enumerate() {
        let s = s.clone();
        let window = window.to_string();
        set.spawn(async move {
            let h = [
                ("x-athena-client", CLIENT),
                ("x-athena-insert-window", window.as_str()),
            ];
            let r = s.send("PUT", "/gateway/insert", &h, Some(body)).await;
            (i, r.status, r.json())
        });
    }
    let mut out = vec![(0, Value::Null); set.len()];
    while let Some(done) = set.join_next().await {
        let (i, status, body) = done.unwrap();
        out[i] = (status, body);
    }
    out
}

async fn distinct_xmin(s: &TestServer, table: &str) -> i64 {
    s.tenant()
        .await
        .query_one(
            &format!("SELECT count(DISTINCT xmin::text) FROM {table}"),
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn window_writes_concurrent_inserts_in_one_statement() {
    let s = Arc::new(TestServer::start().await);
    fixture(&s).await;
    let bodies: Vec<Value> = (0..12)
        .map(|i| {
            if i % 4 == 3 {
                // Another table and an array body join the same window.
                json!({"table_name": "other", "insert_body": [{"label": format!("o{i}")}, {"label": format!("p{i}")}]})
            } else {
                json!({"table_name": "events", "columns": "id,name,score",
                       "insert_body": {"name": format!("n{i}"), "code": format!("c{i}"), "score": i}})
            }
        })
        .collect();
    let replies = concurrent(&s, "2000", bodies).await;
    for (i, (status, body)) in replies.iter().enumerate() {
        assert_eq!(*status, 200, "request {i}: {body}");
        if i % 4 == 3 {
            let rows = body["data"].as_array().unwrap();
            assert_eq!(rows.len(), 2, "{body}");
            assert_eq!(rows[0]["label"], json!(format!("o{i}")));
        } else {
            // Each caller gets exactly its own row, with its own projection.
            assert_eq!(body["data"]["name"], json!(format!("n{i}")), "{body}");
            assert_eq!(body["data"]["score"], json!(i));
            assert!(body["data"].get("code").is_none(), "{body}");
            assert_eq!(body["rows_affected"], json!(1));
        }
    }
    let tenant = s.tenant().await;
    let n: i64 = tenant
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 9);
    // All requests landed within the window: one transaction for both tables.
    assert_eq!(distinct_xmin(&s, "events").await, 1);
    let one_tx: bool = tenant
        .query_one(
            "SELECT (SELECT min(xmin::text) FROM events) = (SELECT min(xmin::text) FROM other)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(one_tx, "both tables were written by the same statement");
}

#[tokio::test]
async fn one_failing_insert_does_not_cost_the_others_their_rows() {
    let s = Arc::new(TestServer::start().await);
    fixture(&s).await;
    s.tenant()
        .await
        .batch_execute("INSERT INTO events (name, code) VALUES ('taken', 'dup')")
        .await
        .unwrap();
    let mut bodies: Vec<Value> = (0..6)
        .map(|i| json!({"table_name": "events", "insert_body": {"name": format!("ok{i}"), "code": format!("k{i}")}}))
        .collect();
    bodies.push(json!({"table_name": "events", "insert_body": {"name": "clash", "code": "dup"}}));
    bodies.push(
        json!({"table_name": "events", "insert_body": {"name": "bad", "score": "not a number"}}),
    );
    bodies.push(json!({"table_name": "events", "insert_body": {"nope": 1}}));
    let replies = concurrent(&s, "300", bodies).await;
    for (i, (status, body)) in replies.iter().take(6).enumerate() {
        assert_eq!(*status, 200, "request {i}: {body}");
        assert_eq!(body["data"]["name"], json!(format!("ok{i}")));
    }
    assert_eq!(replies[6].0, 409, "{}", replies[6].1);
    assert_eq!(replies[6].1["status"], "error");
    assert_eq!(replies[7].0, 400, "{}", replies[7].1);
    assert_eq!(replies[8].0, 400, "{}", replies[8].1);
    assert_eq!(replies[8].1["code"], "column_not_found");
    let names: Vec<String> = s
        .tenant()
        .await
        .query("SELECT name FROM events ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names.len(), 7, "{names:?}");
    for i in 0..6 {
        assert!(names.contains(&format!("ok{i}")), "{names:?}");
    }
}

#[tokio::test]
async fn window_header_is_validated_and_upserts_run_alone() {
    let s = Arc::new(TestServer::start().await);
    fixture(&s).await;
    for bad in ["60001", "-5", "soon"] {
        let h = [("x-athena-client", CLIENT), ("x-athena-insert-window", bad)];
        let r = s
            .send(
                "PUT",
                "/gateway/insert",
                &h,
                Some(json!({"table_name": "events", "insert_body": {"name": "x"}})),
            )
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert_eq!(r.envelope()["status"], "error");
    }
    // Upserts ignore the window (each commits alone), and still work.
    let bodies: Vec<Value> = (0..3)
        .map(|i| {
            json!({"table_name": "events", "insert_body": {"id": 100 + i, "name": format!("u{i}")},
                        "on_conflict": "id", "update_body": {"name": format!("u{i}b")}})
        })
        .collect();
    let replies = concurrent(&s, "200", bodies).await;
    for (status, body) in &replies {
        assert_eq!(*status, 200, "{body}");
    }
    assert_eq!(distinct_xmin(&s, "events").await, 3);
    // A zero window turns batching off for the request.
    let r = s
        .send(
            "PUT",
            "/gateway/insert",
            &[("x-athena-client", CLIENT), ("x-athena-insert-window", "0")],
            Some(json!({"table_name": "events", "insert_body": {"name": "plain"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}
