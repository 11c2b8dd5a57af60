//! API keys: shown once, stored hashed, enforced per the global and
//! per-client settings, revocation effective at once on every replica.

use crate::common;

use common::{psql, TestServer, ADMIN_KEY, CLIENT};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const ADMIN: (&str, &str) = ("x-athena-key", ADMIN_KEY);

async fn create_key(s: &TestServer, body: Value) -> (String, Value) {
    let r = s
        .send("POST", "/admin/api-keys", &[ADMIN], Some(body))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    (
        v["api_key"].as_str().unwrap().to_string(),
        v["record"].clone(),
    )
}

async fn fetch(s: &TestServer, client: &str, key: Option<&str>) -> u16 {
    let mut headers = vec![("x-athena-client", client)];
    if let Some(k) = key {
        headers.push(("x-athena-key", k));
    }
    s.send(
        "POST",
        "/gateway/fetch",
        &headers,
        Some(json!({"table_name": "items"})),
    )
    .await
    .status
}

async fn enforce(s: &TestServer, on: bool) {
    s.enforce_keys(on).await
}

async fn setup() -> TestServer {
    let s = TestServer::start().await;
    s.tenant()
        .await
        .batch_execute("CREATE TABLE items (id int PRIMARY KEY)")
        .await
        .unwrap();
    s
}

#[tokio::test]
async fn keys_are_shown_once_and_stored_hashed() {
    let s = setup().await;
    let (key, record) = create_key(
        &s,
        json!({"name": "reader", "rights": ["gateway.fetch.execute"]}),
    )
    .await;
    assert!(key.starts_with("ath_"));
    assert_eq!(record["public_id"].as_str().unwrap(), &key[4..20]);
    assert_eq!(record["rights"], json!(["gateway.fetch.execute"]));
    let secret = key.split_once('.').unwrap().1;

    let listed = s.send("GET", "/admin/api-keys", &[ADMIN], None).await;
    assert!(
        !listed.text().contains(secret),
        "the secret is never shown again"
    );
    assert_eq!(listed.json()["api_keys"].as_array().unwrap().len(), 1);

    let catalog = psql(&s.catalog_url).await;
    let row = catalog
        .query_one("SELECT secret_hash FROM athena_api_keys", &[])
        .await
        .unwrap();
    let stored: Vec<u8> = row.get(0);
    assert_eq!(stored.len(), 32, "an HMAC-SHA256, not the secret");
    assert!(!stored.windows(secret.len()).any(|w| w == secret.as_bytes()));

    for bad in [
        json!({"rights": []}),
        json!({"name": "x", "rights": ["no.such.right"]}),
        json!({"name": "x", "client_name": "bad name"}),
    ] {
        let r = s
            .send("POST", "/admin/api-keys", &[ADMIN], Some(bad.clone()))
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        r.envelope();
    }
    s.stop().await;
}

#[tokio::test]
async fn enforcement_rights_and_client_binding() {
    let s = setup().await;
    let (reader, _) = create_key(
        &s,
        json!({"name": "reader", "rights": ["gateway.fetch.execute"]}),
    )
    .await;
    let (writer, _) = create_key(
        &s,
        json!({"name": "writer", "rights": ["gateway.insert.execute"]}),
    )
    .await;
    let (bound, _) = create_key(
        &s,
        json!({"name": "bound", "client_name": "other", "rights": ["*"]}),
    )
    .await;
    let (wild, _) = create_key(&s, json!({"name": "wild", "rights": ["gateway.*"]})).await;

    // Off by default: no key needed.
    assert_eq!(fetch(&s, CLIENT, None).await, 200);

    enforce(&s, true).await;
    assert_eq!(fetch(&s, CLIENT, None).await, 401);
    assert_eq!(
        fetch(
            &s,
            CLIENT,
            Some("ath_aaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbb")
        )
        .await,
        401
    );
    assert_eq!(fetch(&s, CLIENT, Some("garbage")).await, 401);
    let tampered = format!("{}x", &reader[..reader.len() - 1]);
    assert_eq!(fetch(&s, CLIENT, Some(&tampered)).await, 401);
    assert_eq!(fetch(&s, CLIENT, Some(&reader)).await, 200);
    assert_eq!(fetch(&s, CLIENT, Some(&wild)).await, 200);
    assert_eq!(
        fetch(&s, CLIENT, Some(&writer)).await,
        403,
        "lacks the fetch right"
    );
    assert_eq!(
        fetch(&s, CLIENT, Some(&bound)).await,
        403,
        "bound to another client"
    );
    assert_eq!(
        fetch(&s, CLIENT, Some(ADMIN_KEY)).await,
        200,
        "the admin key opens the data plane"
    );
    // Every accepted spelling of the key.
    let bearer = format!("Bearer {reader}");
    for (h, v) in [
        ("apikey", reader.as_str()),
        ("x-api-key", reader.as_str()),
        ("authorization", bearer.as_str()),
    ] {
        let r = s
            .send(
                "POST",
                "/gateway/fetch",
                &[("x-athena-client", CLIENT), (h, v)],
                Some(json!({"table_name": "items"})),
            )
            .await;
        assert_eq!(r.status, 200, "{h}");
    }
    // A missing key is a 401 even when the body is also bad (auth first).
    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &[("x-athena-client", CLIENT)],
            Some(json!({"limit": "x"})),
        )
        .await;
    assert_eq!(r.status, 401);

    // Per-client override wins over the global setting.
    let r = s
        .send(
            "PUT",
            &format!("/admin/api-key-clients/{CLIENT}"),
            &[ADMIN],
            Some(json!({"enforce_api_keys": false})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(fetch(&s, CLIENT, None).await, 200);
    let listed = s
        .send("GET", "/admin/api-key-clients", &[ADMIN], None)
        .await
        .json();
    assert_eq!(listed["clients"][0]["client_name"], CLIENT);
    let config = s
        .send("GET", "/admin/api-key-config", &[ADMIN], None)
        .await
        .json();
    assert_eq!(config["clients"][0]["enforce_api_keys"], false);
    assert_eq!(
        s.send(
            "DELETE",
            &format!("/admin/api-key-clients/{CLIENT}"),
            &[ADMIN],
            None
        )
        .await
        .status,
        200
    );
    assert_eq!(
        s.send(
            "DELETE",
            &format!("/admin/api-key-clients/{CLIENT}"),
            &[ADMIN],
            None
        )
        .await
        .status,
        404
    );
    assert_eq!(fetch(&s, CLIENT, None).await, 401);
    s.stop().await;
}

#[tokio::test]
async fn revocation_and_expiry_take_effect_at_once_on_every_replica() {
    let a = setup().await;
    let b = TestServer::start_with(|c| c.database_url = a.catalog_url.clone()).await;
    // b routes the same tenant database under the same client name.
    enforce(&a, true).await;
    let (key, record) = create_key(
        &a,
        json!({"name": "k", "rights": ["gateway.fetch.execute"]}),
    )
    .await;
    let id = record["id"].as_str().unwrap().to_string();
    a.send(
        "POST",
        "/admin/clients",
        &[ADMIN],
        Some(json!({"client_name": "shared", "pg_uri": a.tenant_url})),
    )
    .await;
    assert_eq!(fetch(&a, "shared", Some(&key)).await, 200);
    assert_eq!(
        fetch(&b, "shared", Some(&key)).await,
        200,
        "b has the key cached now"
    );

    let r = a
        .send(
            "PATCH",
            &format!("/admin/api-keys/{id}"),
            &[ADMIN],
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["record"]["rights"],
        json!(["gateway.fetch.execute"]),
        "rights untouched when absent"
    );
    assert_eq!(fetch(&a, "shared", Some(&key)).await, 401);
    let started = Instant::now();
    while fetch(&b, "shared", Some(&key)).await != 401 {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "replica b still accepts a revoked key"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Reactivate with an expiry in the past.
    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    a.send(
        "PATCH",
        &format!("/admin/api-keys/{id}"),
        &[ADMIN],
        Some(json!({"is_active": true, "expires_at": past})),
    )
    .await;
    assert_eq!(fetch(&a, "shared", Some(&key)).await, 401, "expired");

    // Rights replaced, then the key deleted.
    let future = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let r = a
        .send(
            "PATCH",
            &format!("/admin/api-keys/{id}"),
            &[ADMIN],
            Some(json!({"expires_at": future, "rights": []})),
        )
        .await;
    assert_eq!(r.json()["record"]["rights"], json!([]));
    assert_eq!(fetch(&a, "shared", Some(&key)).await, 403);
    assert_eq!(
        a.send("DELETE", &format!("/admin/api-keys/{id}"), &[ADMIN], None)
            .await
            .status,
        200
    );
    assert_eq!(
        a.send("DELETE", &format!("/admin/api-keys/{id}"), &[ADMIN], None)
            .await
            .status,
        404
    );
    assert_eq!(fetch(&a, "shared", Some(&key)).await, 401);
    let r = a
        .send(
            "PATCH",
            "/admin/api-keys/not-a-uuid",
            &[ADMIN],
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 400);
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn rights_catalog_and_custom_rights() {
    let s = setup().await;
    let r = s
        .send(
            "POST",
            "/admin/api-key-rights",
            &[ADMIN],
            Some(json!({"name": "reports.read", "description": "r"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["right"]["id"].as_str().unwrap().to_string();
    let r = s
        .send(
            "POST",
            "/admin/api-key-rights",
            &[ADMIN],
            Some(json!({"name": "reports.read"})),
        )
        .await;
    assert_eq!(r.status, 409, "duplicate right");
    let r = s
        .send(
            "POST",
            "/admin/api-key-rights",
            &[ADMIN],
            Some(json!({"name": "Bad Name"})),
        )
        .await;
    assert_eq!(r.status, 400);

    let catalog = s
        .send("GET", "/admin/rights/catalog", &[ADMIN], None)
        .await
        .json();
    assert_eq!(catalog["status"], "success");
    assert!(catalog["data"]["nativeRights"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "gateway.fetch.execute"));
    assert_eq!(
        catalog["data"]["dynamicApiKeyRights"][0]["name"],
        "reports.read"
    );

    // A custom right can be granted; grants follow a rename.
    let (_, rep) = create_key(&s, json!({"name": "rep", "rights": ["reports.read"]})).await;
    let r = s
        .send(
            "PATCH",
            &format!("/admin/api-key-rights/{id}"),
            &[ADMIN],
            Some(json!({"name": "reports.view"})),
        )
        .await;
    assert_eq!(r.json()["right"]["name"], "reports.view");
    let keys = s
        .send("GET", "/admin/api-keys", &[ADMIN], None)
        .await
        .json();
    let granted = keys["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == rep["id"])
        .unwrap()["rights"]
        .clone();
    assert_eq!(granted, json!(["reports.view"]));
    let listed = s
        .send("GET", "/admin/api-key-rights", &[ADMIN], None)
        .await
        .json();
    assert_eq!(listed["rights"].as_array().unwrap().len(), 1);
    assert_eq!(
        s.send(
            "DELETE",
            &format!("/admin/api-key-rights/{id}"),
            &[ADMIN],
            None
        )
        .await
        .status,
        200
    );
    assert_eq!(
        s.send(
            "DELETE",
            &format!("/admin/api-key-rights/{id}"),
            &[ADMIN],
            None
        )
        .await
        .status,
        404
    );
    s.stop().await;
}

/// The SDK sends `.eq("id", "<uuid>")` as SQL to `/gateway/query`; a key
/// with only the read right runs exactly that grammar (as a structured
/// read) and nothing else.
#[tokio::test]
async fn readers_run_the_sdk_lookup_selects_and_nothing_else() {
    let s = setup().await;
    s.tenant()
        .await
        .batch_execute(
            "CREATE TABLE docs (id uuid PRIMARY KEY, title text);
             INSERT INTO docs VALUES ('6f1c1a52-56b6-4c39-9d8e-0f3e0c7f6b11', 'one'), (gen_random_uuid(), 'two');",
        )
        .await
        .unwrap();
    enforce(&s, true).await;
    let (reader, _) = create_key(
        &s,
        json!({"name": "reader", "rights": ["gateway.fetch.execute"]}),
    )
    .await;
    let (nobody, _) = create_key(
        &s,
        json!({"name": "rpc-only", "rights": ["gateway.rpc.execute"]}),
    )
    .await;
    let query = |key: String, sql: &'static str| {
        let s = &s;
        async move {
            s.send(
                "POST",
                "/gateway/query",
                &[("x-athena-client", CLIENT), ("x-athena-key", key.as_str())],
                Some(json!({"query": sql, "expectedShape": "rows", "operation": "select"})),
            )
            .await
        }
    };
    let lookup =
        "SELECT * FROM \"docs\" WHERE \"id\"::text = '6f1c1a52-56b6-4c39-9d8e-0f3e0c7f6b11';";
    let r = query(reader.clone(), lookup).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["data"],
        json!([{"id": "6f1c1a52-56b6-4c39-9d8e-0f3e0c7f6b11", "title": "one"}])
    );
    for sql in [
        "SELECT * FROM \"docs\"; DROP TABLE docs;",
        "DELETE FROM docs",
        "SELECT * FROM \"docs\" WHERE \"id\"::text = '1' OR 1=1",
        "SELECT title, pg_sleep(1) FROM docs",
    ] {
        let r = query(reader.clone(), sql).await;
        assert_eq!(r.status, 403, "{sql}: {}", r.text());
    }
    // Without the read right, not even the lookup.
    let r = query(nobody, lookup).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let n = s.scalar("SELECT count(*) FROM docs").await;
    assert_eq!(n, 2);
}
