//! Per-client configuration overrides (`/admin/client-configs*`): the
//! typed schema refuses what it does not know naming the JSON path; a PUT
//! reaches another replica's pool within a second; seeding from the
//! `ATHENA_CONFIG` file never overwrites.

use crate::common;

use common::{TestServer, ADMIN_KEY, CLIENT};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const ADMIN: (&str, &str) = ("X-Athena-Key", ADMIN_KEY);
const C: (&str, &str) = ("X-Athena-Client", CLIENT);

fn path(client: &str) -> String {
    format!("/admin/client-configs/{client}")
}

async fn put(s: &TestServer, client: &str, body: Value) -> common::Reply {
    s.send("PUT", &path(client), &[ADMIN], Some(body)).await
}

#[tokio::test]
async fn schema_refusals_name_the_json_path() {
    let s = TestServer::start().await;
    for (config, named) in [
        (
            json!({"resilience": {"pool_max": 0}}),
            "config.resilience.pool_max",
        ),
        (
            json!({"resilience": {"pool_max": 5000}}),
            "config.resilience.pool_max",
        ),
        (
            json!({"admission": {"window_seconds": "ten"}}),
            "config.admission.window_seconds",
        ),
        (
            json!({"admission": {"per_client_limit_per_window": -1}}),
            "config.admission.per_client_limit_per_window",
        ),
        (
            json!({"insert_window": {"max_ms": 70000}}),
            "config.insert_window.max_ms",
        ),
        (
            json!({"deferred_writes": {"enabled": "yes"}}),
            "config.deferred_writes.enabled",
        ),
        (json!({"features": {"beta": 1}}), "config.features.beta"),
        (json!({"resilience": {"pool_size": 3}}), "pool_size"),
        (json!({"unknown_section": {}}), "unknown_section"),
    ] {
        let r = put(&s, CLIENT, json!({"config": config})).await;
        assert_eq!(r.status, 400, "{config}: {}", r.text());
        let v = r.envelope();
        assert!(v.to_string().contains(named), "{config}: {v}");
    }
    // A body without `config`, or with a non-object one.
    for body in [
        json!({}),
        json!({"config": [1]}),
        json!({"config": {}, "metadata": 3}),
    ] {
        let r = put(&s, CLIENT, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
    }
    // Nothing was stored.
    let r = s.send("GET", &path(CLIENT), &[ADMIN], None).await;
    assert_eq!(r.status, 404, "{}", r.text());
    s.stop().await;
}

#[tokio::test]
async fn put_get_list_delete_round_trip() {
    let s = TestServer::start().await;
    let r = s.send("GET", &path(CLIENT), &[ADMIN], None).await;
    assert_eq!(r.status, 404, "{}", r.text());
    r.envelope();

    let config = json!({
        "admission": {"enabled": true, "window_seconds": 30, "per_client_limit_per_window": 1000},
        "deferred_writes": {"enabled": false},
        "insert_window": {"max_ms": 50},
        "resilience": {"statement_timeout_ms": 9000, "acquire_timeout_ms": 2000, "pool_max": 3},
        "features": {"beta": true}
    });
    let r = put(
        &s,
        CLIENT,
        json!({"config": config, "metadata": {"owner": "ops"}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["config"], config);

    let r = s.send("GET", &path(CLIENT), &[ADMIN], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["data"]["config"], config, "{v}");
    assert_eq!(v["data"]["metadata"], json!({"owner": "ops"}), "{v}");
    let effective = &v["data"]["effective"];
    assert_eq!(effective["resilience"]["pool_max"], 3, "{v}");
    assert_eq!(effective["admission"]["global_limit_per_window"], 0, "{v}");
    assert_eq!(effective["insert_window"]["max_ms"], 50, "{v}");

    let r = s.send("GET", "/admin/client-configs", &[ADMIN], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let listed = v["data"]["configs"].as_array().unwrap();
    assert!(listed.iter().any(|c| c["client_name"] == CLIENT), "{v}");

    // A replacement, not a merge.
    let r = put(&s, CLIENT, json!({"config": {"features": {"beta": false}}})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.send("GET", &path(CLIENT), &[ADMIN], None).await;
    assert_eq!(
        r.json()["data"]["config"],
        json!({"features": {"beta": false}})
    );
    assert_eq!(r.json()["data"]["metadata"], json!({}));
    // Fields left out act with the defaults (the test server's pool is 4).
    let effective = &r.json()["data"]["effective"]["resilience"];
    assert_eq!(effective["pool_max"], 4);
    assert_eq!(effective["statement_timeout_ms"], 5000);

    let r = s.send("DELETE", &path(CLIENT), &[ADMIN], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["removed"], true);
    let r = s.send("GET", &path(CLIENT), &[ADMIN], None).await;
    assert_eq!(r.status, 404, "{}", r.text());
    // Deleting again is not an error.
    let r = s.send("DELETE", &path(CLIENT), &[ADMIN], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["removed"], false);

    // Unknown client; no admin key.
    let r = put(&s, "nobody_here", json!({"config": {}})).await;
    assert_eq!(r.status, 404, "{}", r.text());
    r.envelope();
    let r = s.send("GET", "/admin/client-configs", &[], None).await;
    assert_eq!(r.status, 401, "{}", r.text());
    s.stop().await;
}

/// The backend pids of `n` concurrent reads of a view that sleeps 300 ms.
async fn pids(s: &TestServer, n: usize) -> HashSet<i64> {
    let reads = (0..n).map(|_| {
        s.send(
            "POST",
            "/gateway/fetch",
            &[C],
            Some(json!({"table_name": "slow", "columns": ["pid"]})),
        )
    });
    futures_util::future::join_all(reads)
        .await
        .into_iter()
        .map(|r| {
            assert_eq!(r.status, 200, "{}", r.text());
            r.json()["data"][0]["pid"].as_i64().expect("pid")
        })
        .collect()
}

#[tokio::test]
async fn a_put_pool_max_acts_on_another_replica_within_a_second() {
    let s = TestServer::start().await;
    s.tenant()
        .await
        .batch_execute(
            "CREATE VIEW slow AS SELECT pg_backend_pid() AS pid FROM pg_sleep(0.3);
             CREATE VIEW timeout AS SELECT current_setting('statement_timeout') AS t",
        )
        .await
        .unwrap();
    let b = s.replica_with(|_| {}).await;
    // The default pool (4 in tests) serves concurrent reads on several connections.
    assert!(pids(&b, 4).await.len() > 1);

    let config = json!({"resilience": {"pool_max": 1, "statement_timeout_ms": 4321}});
    let r = put(&s, CLIENT, json!({"config": config})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let changed = Instant::now();
    // Replica B rebuilds its pool with the new statement timeout ...
    loop {
        let r = b
            .send(
                "POST",
                "/gateway/fetch",
                &[C],
                Some(json!({"table_name": "timeout", "columns": ["t"]})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        if r.json()["data"][0]["t"] == "4321ms" {
            break;
        }
        assert!(
            changed.elapsed() < Duration::from_secs(1),
            "replica B still runs the old settings: {}",
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // ... and at most one connection.
    assert_eq!(pids(&b, 4).await.len(), 1);

    // Deleting the override restores the defaults.
    let r = s.send("DELETE", &path(CLIENT), &[ADMIN], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let r = b
            .send(
                "POST",
                "/gateway/fetch",
                &[C],
                Some(json!({"table_name": "timeout", "columns": ["t"]})),
            )
            .await;
        if r.json()["data"][0]["t"] == "5s" {
            break;
        }
        assert!(Instant::now() < deadline, "{}", r.text());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    b.stop().await;
    s.stop().await;
}

#[tokio::test]
async fn seed_from_config_copies_without_overwriting() {
    let dir = std::env::temp_dir().join(format!("athena-cc-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.yaml");
    std::fs::write(
        &file,
        format!(
            "client_config:\n  {CLIENT}:\n    resilience:\n      pool_max: 2\n    features:\n      beta: true\n  not_registered:\n    insert_window:\n      max_ms: 5\n"
        ),
    )
    .unwrap();
    let path_text = file.to_string_lossy().to_string();
    let s = TestServer::start_with(|c| c.config_file = Some(path_text)).await;

    let seed = || {
        s.send(
            "POST",
            "/admin/client-configs/seed-from-config",
            &[ADMIN],
            None,
        )
    };
    let r = seed().await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["data"]["seeded"], json!([CLIENT]), "{v}");
    assert_eq!(v["data"]["skipped"], json!(["not_registered"]), "{v}");
    let r = s.send("GET", &path(CLIENT), &[ADMIN], None).await;
    assert_eq!(
        r.json()["data"]["config"],
        json!({"resilience": {"pool_max": 2}, "features": {"beta": true}})
    );

    // Changed at runtime, then seeded again: kept.
    let r = put(&s, CLIENT, json!({"config": {"features": {"beta": false}}})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = seed().await;
    let v = r.json();
    assert_eq!(v["data"]["seeded"], json!([]), "{v}");
    assert_eq!(
        v["data"]["skipped"],
        json!(["not_registered", CLIENT]),
        "{v}"
    );
    let r = s.send("GET", &path(CLIENT), &[ADMIN], None).await;
    assert_eq!(
        r.json()["data"]["config"],
        json!({"features": {"beta": false}})
    );
    s.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}
