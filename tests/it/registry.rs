//! `GET /registry`: the APIs this gateway fronts, from what the catalog
//! records (clients, public routes, curated `athena_api_registry` rows),
//! on the admin surface because entries name tenants.

use crate::common;

use common::{psql, TestServer, ADMIN_KEY, CLIENT};
use serde_json::{json, Value};

const ADMIN: (&str, &str) = ("x-athena-key", ADMIN_KEY);

async fn registry(s: &TestServer) -> Vec<Value> {
    let r = s.send("GET", "/registry", &[ADMIN], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json().as_array().expect("an array").clone()
}

fn find<'a>(entries: &'a [Value], id: &str) -> Option<&'a Value> {
    entries.iter().find(|e| e["api_registry_id"] == id)
}

#[tokio::test]
async fn registry_lists_what_the_catalog_records_to_the_admin_only() {
    let s = TestServer::start().await;

    // Anonymous callers and data-plane keys do not learn tenant names.
    assert_eq!(s.get("/registry").await.status, 401);
    let r = s
        .send(
            "GET",
            "/registry",
            &[("x-athena-key", "not-the-admin-key")],
            None,
        )
        .await;
    assert_eq!(r.status, 401);

    // The seeded client is listed from the start.
    let entries = registry(&s).await;
    let seeded = find(&entries, &format!("client:{CLIENT}")).expect("the seeded client");
    assert_eq!(seeded["kind"], "client");
    assert_eq!(seeded["name"], CLIENT);
    assert_eq!(seeded["metadata"]["routing_header"], "X-Athena-Client");
    // No connection string, redacted or not.
    assert!(!serde_json::to_string(&entries)
        .unwrap()
        .contains("postgres"));

    // A client registered through the admin API appears, with its description.
    let r = s
        .send(
            "POST",
            "/admin/clients",
            &[ADMIN],
            Some(
                json!({"client_name": "reg_added", "pg_uri": s.tenant_url, "description": "added"}),
            ),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = s
        .send(
            "POST",
            "/admin/public-routes",
            &[ADMIN],
            Some(json!({"route_key": "reg-route", "client_name": "reg_added", "allowed_ops": ["fetch"]})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    psql(&s.catalog_url)
        .await
        .batch_execute(
            "INSERT INTO athena_api_registry (api_registry_id, name, base_url, description)
             VALUES ('billing', 'Billing API', 'https://billing.example', 'curated')",
        )
        .await
        .unwrap();

    let entries = registry(&s).await;
    let added = find(&entries, "client:reg_added").expect("the registered client");
    assert_eq!(added["description"], "added");
    assert!(added["created_at"].is_string());
    let route = find(&entries, "public_route:reg-route").expect("the public route");
    assert_eq!(route["kind"], "public_route");
    assert_eq!(route["base_url"], "/public/reg-route");
    assert_eq!(route["metadata"]["allowed_ops"], json!(["fetch"]));
    let curated = find(&entries, "billing").expect("the curated row");
    assert_eq!(curated["kind"], "api");
    assert_eq!(curated["base_url"], "https://billing.example");
    // `Cache-Control: no-cache` answers the same (nothing is cached).
    let r = s
        .send(
            "GET",
            "/registry",
            &[ADMIN, ("cache-control", "no-cache")],
            None,
        )
        .await;
    assert_eq!(r.json().as_array().unwrap().len(), entries.len());

    // Deleted and deactivated clients leave the registry; so do deleted routes.
    let r = s
        .send("DELETE", "/admin/public-routes/reg-route", &[ADMIN], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s
        .send("DELETE", "/admin/clients/reg_added", &[ADMIN], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let entries = registry(&s).await;
    assert!(find(&entries, "client:reg_added").is_none());
    assert!(find(&entries, "public_route:reg-route").is_none());
    assert!(find(&entries, &format!("client:{CLIENT}")).is_some());
    s.stop().await;
}
