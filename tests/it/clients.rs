//! The client catalog: registered, changed, frozen or deleted through the
//! admin API, routed accordingly at once — on every replica.

use crate::common;

use common::{psql, TestServer, ADMIN_KEY};
use serde_json::json;
use std::time::{Duration, Instant};

const KEY: (&str, &str) = ("x-athena-key", ADMIN_KEY);

async fn make_table(url: &str, label: &str) {
    psql(url)
        .await
        .batch_execute(&format!("CREATE TABLE things (id int PRIMARY KEY, label text); INSERT INTO things VALUES (1, '{label}')"))
        .await
        .unwrap();
}

async fn fetch_label(s: &TestServer, client: &str) -> (u16, serde_json::Value) {
    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &[("x-athena-client", client)],
            Some(json!({"table_name": "things"})),
        )
        .await;
    let v = r.json();
    (r.status, v)
}

#[tokio::test]
async fn client_lifecycle_routes_at_once() {
    let mut s = TestServer::start().await;
    let (db_a, db_b) = (s.extra_db().await, s.extra_db().await);
    make_table(&db_a, "from a").await;
    make_table(&db_b, "from b").await;

    // Create: 201, the password is never echoed.
    let with_password = db_a.replacen("postgres@", "postgres:secretpw@", 1);
    let r = s
        .send(
            "POST",
            "/admin/clients",
            &[KEY],
            Some(json!({"client_name": "shop", "pg_uri": with_password, "description": "d"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let c = &r.json()["client"];
    assert_eq!(c["client_name"], "shop");
    assert_eq!(c["source"], "catalog");
    assert!(!r.text().contains("secretpw"), "{}", r.text());
    assert!(c["pg_uri"].as_str().unwrap().contains(":***@"));

    let (status, v) = fetch_label(&s, "shop").await;
    assert_eq!(
        (status, v["data"][0]["label"].clone()),
        (200, json!("from a"))
    );

    // Listed by every listing route.
    let r = s.send("GET", "/admin/clients", &[KEY], None).await;
    let v = r.json();
    assert!(v["clients"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["client_name"] == "shop"));
    assert!(v["runtime"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["client_name"] == "shop" && c["pool_connected"].is_boolean()));
    for path in ["/clients", "/schema/clients"] {
        let v = s.send("GET", path, &[KEY], None).await.json();
        assert!(
            v["clients"].as_array().unwrap().contains(&json!("shop")),
            "{path}: {v}"
        );
    }

    // Change the URI: the next request reaches the new database.
    let r = s
        .send(
            "PATCH",
            "/admin/clients/shop",
            &[KEY],
            Some(json!({"pg_uri": db_b})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        fetch_label(&s, "shop").await.1["data"][0]["label"],
        "from b"
    );

    // Freeze and unfreeze.
    let r = s
        .send(
            "PUT",
            "/admin/clients/shop/freeze",
            &[KEY],
            Some(json!({"is_frozen": true})),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["client"]["is_frozen"].clone()),
        (200, json!(true))
    );
    let (status, v) = fetch_label(&s, "shop").await;
    assert_eq!((status, v["code"].clone()), (403, json!("client_frozen")));
    s.send(
        "PUT",
        "/admin/clients/shop/freeze",
        &[KEY],
        Some(json!({"is_frozen": false})),
    )
    .await;
    assert_eq!(fetch_label(&s, "shop").await.0, 200);

    // Deactivate, reactivate, delete.
    s.send(
        "PATCH",
        "/admin/clients/shop",
        &[KEY],
        Some(json!({"is_active": false})),
    )
    .await;
    assert_eq!(fetch_label(&s, "shop").await.0, 404);
    s.send(
        "PATCH",
        "/admin/clients/shop",
        &[KEY],
        Some(json!({"is_active": true})),
    )
    .await;
    assert_eq!(fetch_label(&s, "shop").await.0, 200);
    let r = s.send("DELETE", "/admin/clients/shop", &[KEY], None).await;
    assert_eq!(r.status, 200);
    assert!(r.json()["client"]["deleted_at"].is_string());
    let (status, v) = fetch_label(&s, "shop").await;
    assert_eq!(
        (status, v["code"].clone()),
        (404, json!("client_not_found"))
    );
    assert_eq!(
        s.send("DELETE", "/admin/clients/shop", &[KEY], None)
            .await
            .status,
        404
    );
    assert_eq!(
        s.send("PATCH", "/admin/clients/shop", &[KEY], Some(json!({})))
            .await
            .status,
        404
    );
    assert_eq!(
        s.send(
            "PUT",
            "/admin/clients/shop/freeze",
            &[KEY],
            Some(json!({"is_frozen": true}))
        )
        .await
        .status,
        404
    );

    // Saving the name again revives it.
    let r = s
        .send(
            "POST",
            "/admin/clients",
            &[KEY],
            Some(json!({"client_name": "shop", "pg_uri": db_a})),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        fetch_label(&s, "shop").await.1["data"][0]["label"],
        "from a"
    );
    s.stop().await;
}

#[tokio::test]
async fn bad_client_input_is_refused() {
    let s = TestServer::start().await;
    for body in [
        json!({"pg_uri": "postgres://u@h/db"}),
        json!({"client_name": "bad name; drop", "pg_uri": "postgres://u@h/db"}),
        json!({"client_name": "nouri"}),
        json!({"client_name": "baduri", "pg_uri": "not a uri ::"}),
        json!({"client_name": "badvar", "pg_uri_env_var": "lower; rm -rf"}),
    ] {
        let r = s
            .send("POST", "/admin/clients", &[KEY], Some(body.clone()))
            .await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        r.envelope();
    }
    let r = s
        .send("PUT", "/admin/clients/x/freeze", &[KEY], Some(json!({})))
        .await;
    assert_eq!(r.status, 400, "is_frozen is required");
    assert_eq!(s.send("GET", "/admin/clients", &[], None).await.status, 401);
    assert_eq!(s.send("GET", "/clients", &[], None).await.status, 401);
    s.stop().await;
}

/// Two replicas on one catalog: a freeze through one stops routing on the
/// other at once (catalog notifications), not after a cache timeout.
#[tokio::test]
async fn changes_reach_every_replica() {
    let a = TestServer::start().await;
    let b = TestServer::start_with(|c| c.database_url = a.catalog_url.clone()).await;
    make_table(&a.tenant_url, "x").await;
    let body = json!({"client_name": "shared", "pg_uri": a.tenant_url});
    assert_eq!(
        a.send("POST", "/admin/clients", &[KEY], Some(body))
            .await
            .status,
        201
    );
    assert_eq!(
        fetch_label(&b, "shared").await.0,
        200,
        "b routes the client a registered"
    );

    a.send(
        "PUT",
        "/admin/clients/shared/freeze",
        &[KEY],
        Some(json!({"is_frozen": true})),
    )
    .await;
    let started = Instant::now();
    loop {
        let (status, _) = fetch_label(&b, "shared").await;
        if status == 403 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "replica b still routes a frozen client"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.stop().await;
    a.stop().await;
}
