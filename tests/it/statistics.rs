//! Statistics and health (issue 19): the operation log feeds statistics
//! and drilldown, `refresh` rebuilds the same numbers; a seq-scanned table
//! gets an index recommendation that `apply` creates; vacuum health shows
//! dead tuples; row estimates and pressure.

use crate::common::{psql, TestServer, ADMIN_KEY, CLIENT};
use serde_json::{json, Value};
use std::time::Duration;

const KEY: (&str, &str) = ("x-athena-key", ADMIN_KEY);

async fn get(s: &TestServer, path: &str) -> (u16, Value) {
    let r = s.send("GET", path, &[KEY], None).await;
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn two_hundred_calls_then_statistics_drilldown_and_refresh() {
    let s = TestServer::start().await;
    s.tenant()
        .await
        .batch_execute(
            "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'a')",
        )
        .await
        .unwrap();
    for i in 0..200 {
        // 190 reads, 10 failing ones (unknown column).
        let column = if i % 20 == 0 { "nope" } else { "name" };
        let r = s
            .send(
                "POST",
                "/gateway/fetch",
                &[("x-athena-client", CLIENT)],
                Some(json!({"table_name": "items", "columns": [column]})),
            )
            .await;
        assert!(matches!(r.status, 200 | 400), "{}", r.text());
    }
    let (status, v) = get(&s, &format!("/admin/clients/{CLIENT}/statistics")).await;
    assert_eq!(status, 200, "{v}");
    let stats = v["statistics"].clone();
    assert_eq!(stats["total_requests"], 200, "{v}");
    assert_eq!(stats["failed_requests"], 10);
    assert_eq!(stats["successful_requests"], 190);
    let table = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table_name"] == "items" && t["operation"] == "fetch")
        .cloned()
        .expect("items/fetch");
    assert_eq!(
        (
            table["total_operations"].clone(),
            table["error_operations"].clone()
        ),
        (json!(200), json!(10))
    );
    assert_eq!(
        v["data"]["statistics"], stats,
        "the envelope's data is the same object"
    );

    let (status, v) = get(
        &s,
        &format!("/admin/clients/{CLIENT}/statistics/drilldown?table_name=items&operation=fetch&status=errors&limit=500"),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 10);
    assert!(rows
        .iter()
        .all(|r| r["status_code"] == 400 && r["error"] == true));
    let (_, v) = get(
        &s,
        &format!("/admin/clients/{CLIENT}/statistics/drilldown?table_name=items&operation=fetch&status=normal&limit=500"),
    )
    .await;
    assert_eq!(v["rows"].as_array().unwrap().len(), 190);
    // Bad input.
    for q in [
        "operation=fetch",
        "table_name=items&operation=fetch&status=some",
        "table_name=items&operation=fetch&limit=501",
    ] {
        let (status, v) = get(
            &s,
            &format!("/admin/clients/{CLIENT}/statistics/drilldown?{q}"),
        )
        .await;
        assert_eq!(status, 400, "{q}: {v}");
    }

    let (_, before) = get(&s, "/admin/clients/statistics").await;
    let r = s
        .send("POST", "/admin/clients/statistics/refresh", &[KEY], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let strip = |v: &Value| -> Vec<Value> {
        v["statistics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let mut c = c.clone();
                c.as_object_mut().unwrap().remove("updated_at");
                c
            })
            .collect()
    };
    assert_eq!(
        strip(&r.json()),
        strip(&before),
        "refresh gives the same numbers"
    );
    let (status, _) = get(&s, "/admin/clients/nobody/statistics").await;
    assert_eq!(status, 404);
    s.stop().await;
}

/// Refused requests (401/403) never name a client in the log: an
/// unauthenticated caller can neither create statistics rows for a name of
/// its choosing nor move a real client's counters.
#[tokio::test]
async fn refused_requests_write_no_client_statistics() {
    let s = TestServer::start().await;
    s.tenant()
        .await
        .batch_execute("CREATE TABLE items (id int PRIMARY KEY, name text)")
        .await
        .unwrap();
    s.enforce_keys(true).await;
    let key = s.api_key(&["gateway.fetch.execute"], Some(CLIENT)).await;
    let fetch = json!({"table_name": "items", "columns": ["name"]});
    for _ in 0..3 {
        let r = s
            .send(
                "POST",
                "/gateway/fetch",
                &[("x-athena-client", CLIENT), ("x-athena-key", &key)],
                Some(fetch.clone()),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let (status, v) = get(&s, &format!("/admin/clients/{CLIENT}/statistics")).await;
    assert_eq!(status, 200, "{v}");
    let before = v["statistics"].clone();
    assert_eq!(before["total_requests"], 3, "{v}");
    for i in 0..50 {
        let (client, bad) = match i % 3 {
            0 => ("ghost", None),
            1 => (CLIENT, None),
            _ => (CLIENT, Some("athena_wrong_key")),
        };
        let mut headers = vec![("x-athena-client", client)];
        if let Some(k) = bad {
            headers.push(("x-athena-key", k));
        }
        let r = s
            .send("POST", "/gateway/fetch", &headers, Some(fetch.clone()))
            .await;
        assert!(matches!(r.status, 401 | 403), "{i}: {}", r.text());
        let r = s
            .send(
                "POST",
                "/gateway/fetch",
                &[("x-athena-client", "ghost"), ("x-athena-key", &key)],
                Some(fetch.clone()),
            )
            .await;
        assert!(matches!(r.status, 401 | 403), "{i}: {}", r.text());
    }
    let (status, v) = get(&s, &format!("/admin/clients/{CLIENT}/statistics")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["statistics"], before, "the real client's counters moved");
    let (status, v) = get(&s, "/admin/clients/ghost/statistics").await;
    assert_eq!(status, 404, "{v}");
    let catalog = psql(&s.catalog_url).await;
    let count = |sql: &'static str| {
        let catalog = &catalog;
        async move { catalog.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(
        count("SELECT count(*) FROM client_statistics WHERE client_name <> 'tenant'").await
            + count("SELECT count(*) FROM client_table_statistics WHERE client_name = 'ghost'")
                .await,
        0
    );
    // Logged, under no client.
    assert_eq!(
        count("SELECT count(*) FROM gateway_operation_log WHERE client_name IS NULL").await,
        100
    );
    assert_eq!(
        count("SELECT count(*) FROM gateway_operation_log WHERE client_name IS NOT NULL").await,
        3
    );
    s.stop().await;
}

/// The rows still queued at shutdown are written before the server exits.
#[tokio::test]
async fn operation_log_is_flushed_on_shutdown() {
    let mut s = TestServer::start().await;
    s.tenant()
        .await
        .batch_execute("CREATE TABLE items (id int PRIMARY KEY, name text)")
        .await
        .unwrap();
    for _ in 0..30 {
        let r = s
            .send(
                "POST",
                "/gateway/fetch",
                &[("x-athena-client", CLIENT)],
                Some(json!({"table_name": "items"})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    s.shut_down().await;
    let n: i64 = psql(&s.catalog_url)
        .await
        .query_one("SELECT count(*) FROM gateway_operation_log", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 30);
    s.stop().await;
}

#[tokio::test]
async fn operation_log_off_writes_nothing() {
    let s = TestServer::start_with(|c| c.stats.operation_log = false).await;
    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &[("x-athena-client", CLIENT)],
            Some(json!({"table_name": "missing"})),
        )
        .await;
    assert_ne!(r.status, 200);
    let (_, v) = get(&s, "/admin/clients/statistics").await;
    assert_eq!(v["statistics"], json!([]));
    s.stop().await;
}

#[tokio::test]
async fn seq_scanned_table_recommendation_applied_creates_the_index() {
    let s = TestServer::start().await;
    let t = s.tenant().await;
    t.batch_execute(
        "CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, total int);
         INSERT INTO orders SELECT g, g % 100, g FROM generate_series(1, 2000) g;",
    )
    .await
    .unwrap();
    for i in 0..60 {
        t.query("SELECT count(*) FROM orders WHERE customer_id = $1", &[&i])
            .await
            .unwrap();
    }
    // The statistics reach pg_stat_user_tables within a second or so.
    let mut rec = None;
    for _ in 0..40 {
        let r = s
            .send(
                "POST",
                &format!("/admin/clients/{CLIENT}/query-optimizations/refresh"),
                &[KEY],
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        assert_eq!(v["run"]["status"], "completed", "{v}");
        rec = v["recommendations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["kind"] == "missing_index" && r["table"] == "orders")
            .cloned();
        if rec.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let rec = rec.expect("a missing-index recommendation for orders");
    assert_eq!(rec["columns"], json!(["customer_id"]));
    assert!(
        rec["sql"]
            .as_str()
            .unwrap()
            .starts_with("CREATE INDEX CONCURRENTLY"),
        "{rec}"
    );
    let id = rec["id"].as_i64().unwrap();
    // Listed (open), runs listed.
    let (_, v) = get(
        &s,
        &format!("/admin/clients/{CLIENT}/query-optimizations?status=open"),
    )
    .await;
    assert!(v["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["id"] == id));
    let (_, v) = get(
        &s,
        &format!("/admin/clients/{CLIENT}/query-optimizations/runs"),
    )
    .await;
    assert!(!v["runs"].as_array().unwrap().is_empty());
    // Another client's id is 404.
    let r = s
        .send(
            "POST",
            &format!("/admin/clients/other/query-optimizations/{id}/apply"),
            &[KEY],
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = s
        .send(
            "POST",
            &format!("/admin/clients/{CLIENT}/query-optimizations/{id}/apply"),
            &[KEY],
            Some(json!({"actor": "dba@example"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["result"]["applied"], true, "{v}");
    assert_eq!(v["result"]["recommendation"]["status"], "applied");
    assert_eq!(v["result"]["recommendation"]["applied_by"], "dba@example");
    let indexed = s
        .scalar(
            "SELECT count(*) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
              WHERE i.indrelid = 'orders'::regclass AND a.attname = 'customer_id' AND i.indisvalid",
        )
        .await;
    assert_eq!(indexed, 1, "the index exists and is valid");
    s.stop().await;
}

#[tokio::test]
async fn vacuum_health_shows_dead_tuples_and_unreachable_clients() {
    let s = TestServer::start_with(|c| c.stats.collect_every = Duration::from_millis(500)).await;
    let t = s.tenant().await;
    t.batch_execute(
        "CREATE TABLE churn (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = false);
         INSERT INTO churn SELECT g, 'x' FROM generate_series(1, 5000) g;
         DELETE FROM churn WHERE id <= 4000;",
    )
    .await
    .unwrap();
    // A client whose database does not exist: recorded, never a crash.
    let r = s
        .send(
            "POST",
            "/admin/clients",
            &[KEY],
            Some(
                json!({"client_name": "gone", "pg_uri": "postgres://postgres@127.0.0.1:1/nothing"}),
            ),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let mut dead = None;
    for _ in 0..60 {
        let (status, v) = get(&s, &format!("/admin/vacuum-health/{CLIENT}")).await;
        if status == 200 {
            dead = v["tables"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["relname"] == "churn" && t["n_dead_tup"].as_i64() >= Some(4000))
                .cloned();
            if dead.is_some() {
                assert!(
                    v["snapshot"]["total_dead_rows"].as_i64().unwrap() >= 4000,
                    "{v}"
                );
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let dead = dead.expect("churn's dead tuples in vacuum health");
    assert!(dead["dead_pct"].as_f64().unwrap() > 50.0, "{dead}");
    let (status, v) = get(&s, "/admin/vacuum-health").await;
    assert_eq!(status, 200);
    let gone = v["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["client_name"] == "gone")
        .cloned()
        .expect("the unreachable client has a snapshot");
    assert!(gone["collection_error"].is_string(), "{gone}");
    let (status, _) = get(&s, "/admin/vacuum-health/never_seen").await;
    assert_eq!(status, 404);
    s.stop().await;
}

#[tokio::test]
async fn row_estimates_pressure_and_backfill() {
    let s = TestServer::start().await;
    s.tenant()
        .await
        .batch_execute(
            "CREATE TABLE big (id int PRIMARY KEY); INSERT INTO big SELECT generate_series(1, 3000); ANALYZE big;",
        )
        .await
        .unwrap();
    let path = format!("/admin/clients/{CLIENT}/table-row-estimates?limit=5");
    let (status, v) = get(&s, &path).await;
    assert_eq!(status, 200, "{v}");
    let top = &v["snapshot"]["top_tables"][0];
    assert_eq!(
        (top["table_name"].clone(), top["estimated_rows"].clone()),
        (json!("big"), json!(3000))
    );
    assert_eq!(v["snapshot"]["source"], "pg_class.reltuples");
    for q in ["limit=0", "limit=101"] {
        let (status, _) = get(
            &s,
            &format!("/admin/clients/{CLIENT}/table-row-estimates?{q}"),
        )
        .await;
        assert_eq!(status, 400, "{q}");
    }
    let (status, _) = get(&s, "/admin/clients/nobody/table-row-estimates").await;
    assert_eq!(status, 404);

    // Pressure: a few logged calls, a backfill, then snapshots.
    for _ in 0..5 {
        s.send(
            "POST",
            "/gateway/fetch",
            &[("x-athena-client", CLIENT)],
            Some(json!({"table_name": "big", "limit": 1})),
        )
        .await;
    }
    let r = s
        .send(
            "POST",
            "/admin/clients/pressure/backfill",
            &[KEY],
            Some(json!({"hours_back": 2})),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let r = s
        .send(
            "POST",
            "/admin/clients/pressure/backfill",
            &[KEY],
            Some(json!({"hours_back": 721})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let mut found = false;
    for _ in 0..40 {
        let (status, v) = get(&s, &format!("/admin/clients/{CLIENT}/pressure")).await;
        if status == 200 {
            assert!(
                v["data"]["snapshot"]["requests"].as_i64().unwrap() >= 5,
                "{v}"
            );
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(found, "pressure snapshot after the backfill");
    let (status, v) = get(&s, "/admin/clients/pressure").await;
    assert_eq!(status, 200);
    assert!(v["data"]["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["client_name"] == CLIENT));
    s.stop().await;
}

/// A duplicate-index recommendation is re-checked when applied: the index
/// it keeps was dropped since the refresh → 200 with `applied: false` and a
/// `stale:` error (the contract's answer for an apply that did not apply), nothing dropped (the duplicate is now the only index), the
/// recommendation still open. Once the kept index is back, apply drops the
/// duplicate and only it.
#[tokio::test]
async fn duplicate_index_apply_rechecks_the_kept_index() {
    let s = TestServer::start().await;
    let t = s.tenant().await;
    t.batch_execute(
        "CREATE TABLE dup (id int PRIMARY KEY, customer_id int NOT NULL);
         CREATE INDEX dup_keep ON dup (customer_id);
         CREATE INDEX dup_twin ON dup (customer_id);",
    )
    .await
    .unwrap();
    let refresh = || async {
        let r = s
            .send(
                "POST",
                &format!("/admin/clients/{CLIENT}/query-optimizations/refresh"),
                &[KEY],
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["recommendations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["kind"] == "duplicate_index" && r["table"] == "dup")
            .cloned()
    };
    let rec = refresh().await.expect("a duplicate_index recommendation");
    assert!(
        rec["sql"].as_str().unwrap().contains("\"dup_twin\""),
        "the later index is the one dropped: {rec}"
    );
    let id = rec["id"].as_i64().unwrap();
    let apply = || async {
        s.send(
            "POST",
            &format!("/admin/clients/{CLIENT}/query-optimizations/{id}/apply"),
            &[KEY],
            Some(json!({"actor": "dba"})),
        )
        .await
    };
    let indexes = || async {
        s.scalar(
            "SELECT count(*) FROM pg_index WHERE indrelid = 'dup'::regclass AND NOT indisprimary",
        )
        .await
    };
    // The kept index went away meanwhile.
    t.batch_execute("DROP INDEX dup_keep").await.unwrap();
    let r = apply().await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["result"]["applied"], false, "{}", r.text());
    assert!(
        r.json()["result"]["error"]
            .as_str()
            .unwrap()
            .starts_with("stale:"),
        "{}",
        r.text()
    );
    assert_eq!(
        indexes().await,
        1,
        "the only remaining index is not dropped"
    );
    let (_, v) = get(
        &s,
        &format!("/admin/clients/{CLIENT}/query-optimizations?status=open"),
    )
    .await;
    let listed = v["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
        .expect("still open");
    assert!(
        listed["apply_error"].as_str().unwrap().starts_with("stale"),
        "{listed}"
    );
    // The kept index back: the duplicate goes, the kept one stays.
    t.batch_execute("CREATE INDEX dup_keep ON dup (customer_id)")
        .await
        .unwrap();
    let r = apply().await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["result"]["applied"], true, "{}", r.text());
    assert_eq!(
        s.scalar("SELECT count(*) FROM pg_class WHERE relname = 'dup_twin'")
            .await,
        0
    );
    assert_eq!(
        s.scalar("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'dup_keep' AND i.indisvalid")
            .await,
        1
    );
    s.stop().await;
}

/// Two servers on one catalog, both collecting every second: one
/// collection per interval, not one per server (the leader lock is a
/// transaction's, and a round right after another replica's is skipped);
/// and no advisory lock is left behind on an idle catalog connection.
#[tokio::test]
async fn two_collectors_collect_once_per_tick() {
    let every = Duration::from_secs(1);
    let s = TestServer::start_with(|c| c.stats.collect_every = every).await;
    let replica = s.replica_with(|_| {}).await;
    let started = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(5200)).await;
    let catalog = psql(&s.catalog_url).await;
    let runs: i64 = catalog
        .query_one(
            "SELECT count(*) FROM client_pressure_runs WHERE kind = 'collect'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let ticks = started.elapsed().as_secs_f64() / every.as_secs_f64();
    assert!(runs >= 2, "the collectors ran: {runs}");
    assert!(
        (runs as f64) <= ticks + 1.5,
        "{runs} collections in {ticks:.1} intervals with two servers"
    );
    replica.stop().await;
    // Between rounds no session holds the collectors' lock.
    let held: i64 = catalog
        .query_one(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
              WHERE l.locktype = 'advisory' AND a.state = 'idle' AND a.datname = current_database()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(held, 0, "an advisory lock left on an idle connection");
    s.stop().await;
}

/// Retention: the collector leader deletes operation log rows older than
/// `ATHENA_OPLOG_RETENTION_HOURS` (recent ones stay), and the statistics
/// follow (they describe the retained log): what the API shows equals what
/// `refresh` recomputes. Old pressure snapshots go too.
#[tokio::test]
async fn retention_deletes_old_log_rows_and_statistics_follow() {
    let s = TestServer::start_with(|c| {
        c.stats.oplog_retention = Some(Duration::from_secs(3600));
        c.stats.health_retention = Some(Duration::from_secs(3600));
    })
    .await;
    s.tenant()
        .await
        .batch_execute(
            "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'a')",
        )
        .await
        .unwrap();
    for i in 0..30 {
        let column = if i % 10 == 0 { "nope" } else { "name" };
        let r = s
            .send(
                "POST",
                "/gateway/fetch",
                &[("x-athena-client", CLIENT)],
                Some(json!({"table_name": "items", "columns": [column]})),
            )
            .await;
        assert!(matches!(r.status, 200 | 400), "{}", r.text());
    }
    let (_, v) = get(&s, &format!("/admin/clients/{CLIENT}/statistics")).await;
    assert_eq!(v["statistics"]["total_requests"], 30, "{v}");
    let catalog = psql(&s.catalog_url).await;
    // 20 of them (3 failed ones among them: i = 0, 10 and … ordered by id)
    // made two days old; an old pressure snapshot.
    catalog
        .batch_execute(
            "UPDATE gateway_operation_log SET created_at = now() - interval '2 days'
              WHERE id IN (SELECT id FROM gateway_operation_log ORDER BY id LIMIT 20);
             INSERT INTO client_pressure_snapshots (client_name, window_start, window_end, requests, errors,
                request_rate, error_rate, tables, recorded_at)
             VALUES ('old', now() - interval '3 days', now() - interval '3 days', 1, 0, 0, 0, '[]', now() - interval '3 days');",
        )
        .await
        .unwrap();
    let old_failed: i64 = catalog
        .query_one(
            "SELECT count(*) FROM gateway_operation_log WHERE created_at < now() - interval '1 day' AND status_code >= 400",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    // One collector round (the leader's retention).
    let collector = s
        .replica_with(|c| c.stats.collect_every = Duration::from_secs(3600))
        .await;
    let mut left = 30;
    for _ in 0..50 {
        left = catalog
            .query_one("SELECT count(*) FROM gateway_operation_log", &[])
            .await
            .unwrap()
            .get::<_, i64>(0);
        if left == 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(left, 10, "the 20 old rows went, the 10 recent ones stayed");
    let snapshots: i64 = catalog
        .query_one(
            "SELECT count(*) FROM client_pressure_snapshots WHERE client_name = 'old'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(snapshots, 0, "the old pressure snapshot went");
    collector.stop().await;
    let (_, v) = get(&s, &format!("/admin/clients/{CLIENT}/statistics")).await;
    let stats = v["statistics"].clone();
    assert_eq!(stats["total_requests"], 10, "{v}");
    assert_eq!(stats["failed_requests"], 3 - old_failed, "{v}");
    let before = without_updated_at(&v);
    let r = s
        .send("POST", "/admin/clients/statistics/refresh", &[KEY], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (_, v) = get(&s, &format!("/admin/clients/{CLIENT}/statistics")).await;
    let after = without_updated_at(&v);
    assert_eq!(
        before, after,
        "the statistics equal what refresh recomputes"
    );
    s.stop().await;
}

/// `{statistics, tables}` of a statistics answer without the `updated_at`s.
fn without_updated_at(v: &Value) -> Value {
    let mut out = json!({"statistics": v["statistics"], "tables": v["tables"]});
    out["statistics"]
        .as_object_mut()
        .unwrap()
        .remove("updated_at");
    for t in out["tables"].as_array_mut().unwrap() {
        t.as_object_mut().unwrap().remove("updated_at");
    }
    out
}
