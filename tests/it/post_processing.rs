//! Fetch post-processing (`group_by`, `time_granularity`,
//! `aggregation_column` + `cumulative_sum`, `aggregation_dedup`) on a real
//! table, through `/gateway/fetch` and its `/gateway/data` alias.

use crate::common;

use common::{TestServer, CLIENT};
use serde_json::{json, Value};

const H: [(&str, &str); 1] = [("x-athena-client", CLIENT)];

async fn fixture(s: &TestServer) {
    s.tenant()
        .await
        .batch_execute(
            "CREATE TABLE http_log (id serial PRIMARY KEY, client_name text, status_code int,
                                    created_at timestamptz, bytes numeric);
             INSERT INTO http_log (client_name, status_code, created_at, bytes) VALUES
               ('a', 200, '2026-11-29 10:05:00+00', 1.5),
               ('a', 500, '2026-11-29 10:55:00+00', 2),
               ('b', 200, '2026-11-29 11:10:00+00', 3),
               ('b', 200, '2026-11-29 11:10:00+00', 3),
               ('c', 404, '2026-11-29 13:00:00+00', NULL);",
        )
        .await
        .unwrap();
}

async fn fetch(s: &TestServer, body: Value) -> (u16, Value) {
    let r = s.send("POST", "/gateway/fetch", &H, Some(body)).await;
    (r.status, r.json())
}

#[tokio::test]
async fn groups_buckets_and_running_totals() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let (status, body) = fetch(
        &s,
        json!({"table_name": "http_log", "columns": "client_name,created_at,bytes",
               "group_by": "created_at", "time_granularity": "hour",
               "aggregation_column": "bytes", "aggregation_strategy": "cumulative_sum"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Rows stay rows; the summary is beside them.
    assert_eq!(body["data"].as_array().unwrap().len(), 5);
    let pp = &body["post_processing"];
    assert_eq!(pp["group_by"], "created_at");
    assert_eq!(pp["time_granularity"], "hour");
    assert_eq!(
        pp["groups"],
        json!([
            {"key": "2026-11-29T10:00:00Z", "count": 2, "sum": 3.5, "cumulative_sum": 3.5},
            {"key": "2026-11-29T11:00:00Z", "count": 2, "sum": 6, "cumulative_sum": 9.5},
            {"key": "2026-11-29T13:00:00Z", "count": 1, "sum": 0, "cumulative_sum": 9.5},
        ])
    );

    // Dedup: the two identical `b` rows count once.
    let (status, body) = fetch(
        &s,
        json!({"table_name": "http_log", "columns": ["client_name", "status_code"],
               "group_by": "client_name", "aggregation_column": "status_code",
               "aggregation_dedup": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let groups = body["post_processing"]["groups"].as_array().unwrap();
    assert_eq!(groups[1], json!({"key": "b", "count": 1, "sum": 200}));
    assert_eq!(body["post_processing"]["input_rows"], json!(4));

    // Same request through the `/gateway/data` alias.
    let r = s
        .send(
            "POST",
            "/gateway/data",
            &H,
            Some(json!({"table_name": "http_log", "columns": "client_name", "conditions": [], "group_by": "client_name"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["post_processing"]["groups"][0],
        json!({"key": "a", "count": 2})
    );

    // No post-processing asked: no summary.
    let (_, body) = fetch(&s, json!({"table_name": "http_log"})).await;
    assert!(body.get("post_processing").is_none(), "{body}");
}

#[tokio::test]
async fn impossible_summaries_are_400() {
    let s = TestServer::start().await;
    fixture(&s).await;
    for bad in [
        json!({"table_name": "http_log", "time_granularity": "day"}),
        json!({"table_name": "http_log", "aggregation_strategy": "cumulative_sum"}),
        json!({"table_name": "http_log", "aggregation_strategy": "median", "aggregation_column": "bytes"}),
        json!({"table_name": "http_log", "group_by": "client_name", "time_granularity": "day"}),
        json!({"table_name": "http_log", "columns": "id", "group_by": "client_name"}),
        json!({"table_name": "http_log", "aggregation_column": "client_name"}),
    ] {
        let (status, body) = fetch(&s, bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["status"], "error");
    }
}
