//! Webhook sinks (issue 15, `src/events/sinks.rs`): an insert in tenant A
//! is projected into a row of tenant B (read back with a Postgres client on
//! B); `test` answers the row and leaves B unchanged; `onConflict` upserts;
//! bad pointers, tables, columns and clients are 400 naming the field; two
//! replicas write one row per event; an unknown target retries and then
//! fails; the billing helpers and provisioning (idempotent).

use crate::common::{psql, TestServer, ADMIN_KEY, CLIENT};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const C: (&str, &str) = ("X-Athena-Client", CLIENT);
const ADMIN: (&str, &str) = ("X-Athena-Key", ADMIN_KEY);
const B: &str = "sink_b";

/// A server with `items` in A and client `sink_b` (its own database) with
/// `mirror` (keyed) and `log` (no key: duplicates would show).
async fn setup(tweak: impl FnOnce(&mut athena::config::Config)) -> (TestServer, String) {
    let mut s = TestServer::start_with(tweak).await;
    s.tenant()
        .await
        .batch_execute(
            "CREATE TABLE items (id serial PRIMARY KEY, name text, qty int);
             CREATE TABLE other (id serial PRIMARY KEY, name text)",
        )
        .await
        .unwrap();
    let b_url = s.extra_db().await;
    psql(&b_url)
        .await
        .batch_execute(
            "CREATE TABLE mirror (id bigint PRIMARY KEY, name text, ev uuid, note text);
             CREATE TABLE log (src_id bigint, ev uuid, route text)",
        )
        .await
        .unwrap();
    let r = s
        .send(
            "POST",
            "/admin/clients",
            &[ADMIN],
            Some(json!({"client_name": B, "pg_uri": b_url})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    (s, b_url)
}

fn mirror_sink() -> Value {
    json!({
        "name": "items to mirror", "sourceClientName": CLIENT, "routeKey": "gateway.insert",
        "sourceTableName": "items", "targetClientName": B, "targetTable": "mirror",
        "columnMap": {"id": "/row/id", "name": "/row/name", "ev": "/event_id", "note": "/row/missing"},
        "enabled": true,
    })
}

async fn create(s: &TestServer, body: Value) -> Value {
    let r = s
        .send("POST", "/admin/webhook-sinks", &[ADMIN], Some(body))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["data"].clone()
}

async fn insert(s: &TestServer, name: &str) -> i64 {
    let r = s
        .send(
            "PUT",
            "/gateway/insert",
            &[C],
            Some(json!({"table_name": "items", "insert_body": {"name": name, "qty": 1}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    psql(&s.tenant_url)
        .await
        .query_one("SELECT max(id)::bigint FROM items", &[])
        .await
        .unwrap()
        .get(0)
}

async fn count(url: &str, sql: &str) -> i64 {
    psql(url).await.query_one(sql, &[]).await.unwrap().get(0)
}

/// Waits until `sql` on `url` counts `want`.
async fn wait_count(url: &str, sql: &str, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = count(url, sql).await;
        if n == want {
            return;
        }
        assert!(Instant::now() < deadline, "{sql}: {n}, want {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_insert_in_a_is_projected_into_b_and_logged() {
    let (s, b) = setup(|_| {}).await;
    let sink = create(&s, mirror_sink()).await;
    let id = sink["id"].as_i64().unwrap();
    assert_eq!(sink["targetClientName"], B);
    assert_eq!(sink["target_client_name"], B);
    assert_eq!(sink["targetSchema"], "public");

    let src = insert(&s, "alpha").await;
    wait_count(&b, "SELECT count(*) FROM mirror", 1).await;
    let row = psql(&b)
        .await
        .query_one("SELECT id, name, ev::text, note FROM mirror", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), src);
    assert_eq!(row.get::<_, String>(1), "alpha");
    assert!(row.get::<_, Option<String>>(2).is_some(), "the event id");
    assert_eq!(
        row.get::<_, Option<String>>(3),
        None,
        "a missing pointer is NULL"
    );

    // The delivery log lists the attempt.
    let deadline = Instant::now() + Duration::from_secs(10);
    let deliveries = loop {
        let r = s
            .send(
                "GET",
                &format!("/admin/webhook-sinks/{id}/deliveries"),
                &[ADMIN],
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let d = r.json()["data"].clone();
        if d["total"] == 1 {
            break d;
        }
        assert!(Instant::now() < deadline, "{d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let first = &deliveries["deliveries"][0];
    assert_eq!(first["ok"], true, "{first}");
    assert_eq!(first["affected"], 1);
    assert_eq!(first["test"], false);
    assert_eq!(first["route_key"], "gateway.insert");

    // An insert into another table of A is not this sink's.
    let r = s
        .send(
            "PUT",
            "/gateway/insert",
            &[C],
            Some(json!({"table_name": "other", "insert_body": {"name": "x"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count(&b, "SELECT count(*) FROM mirror").await, 1);
    s.stop().await;
}

#[tokio::test]
async fn test_answers_the_row_and_leaves_b_unchanged() {
    let (s, b) = setup(|c| c.events.workers = 0).await;
    let id = create(&s, mirror_sink()).await["id"].as_i64().unwrap();
    let r = s
        .send(
            "POST",
            &format!("/admin/webhook-sinks/{id}/test"),
            &[ADMIN],
            Some(json!({"data": {"rows": [{"id": 77, "name": "probe"}]}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let d = r.json()["data"].clone();
    assert_eq!(d["ok"], true, "{d}");
    assert_eq!(d["rolled_back"], true);
    assert_eq!(d["projected"][0]["id"], 77);
    assert_eq!(d["attempt"]["rows"][0]["name"], "probe", "{d}");
    assert_eq!(d["attempt"]["test"], true);
    assert_eq!(
        count(&b, "SELECT count(*) FROM mirror").await,
        0,
        "rolled back"
    );

    // A test whose value the column refuses says so, still 200, B unchanged.
    let r = s
        .send(
            "POST",
            &format!("/admin/webhook-sinks/{id}/test"),
            &[ADMIN],
            Some(json!({"data": {"rows": [{"id": "not a number"}]}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["ok"], false);
    assert!(r.json()["data"]["attempt"]["error"].is_string());
    assert_eq!(count(&b, "SELECT count(*) FROM mirror").await, 0);

    let r = s
        .send(
            "POST",
            "/admin/webhook-sinks/999999/test",
            &[ADMIN],
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    s.stop().await;
}

#[tokio::test]
async fn on_conflict_upserts_the_target_row() {
    let (s, b) = setup(|_| {}).await;
    let mut ins = mirror_sink();
    ins["onConflict"] = json!("id");
    create(&s, ins).await;
    let mut upd = mirror_sink();
    upd["name"] = json!("updates to mirror");
    upd["routeKey"] = json!("gateway.update");
    upd["on_conflict"] = json!({"columns": ["id"], "action": "merge"});
    let saved = create(&s, upd).await;
    assert_eq!(saved["onConflict"]["columns"], json!(["id"]));

    let src = insert(&s, "before").await;
    wait_count(&b, "SELECT count(*) FROM mirror WHERE name = 'before'", 1).await;
    let r = s
        .send(
            "POST",
            "/gateway/update",
            &[C],
            Some(json!({"table_name": "items",
                "conditions": [{"eq_column": "id", "eq_value": src}],
                "update_body": {"name": "after"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    wait_count(&b, "SELECT count(*) FROM mirror WHERE name = 'after'", 1).await;
    assert_eq!(
        count(&b, "SELECT count(*) FROM mirror").await,
        1,
        "one row, updated"
    );
    s.stop().await;
}

#[tokio::test]
async fn bad_pointers_tables_columns_and_clients_are_400_naming_the_field() {
    let (s, _b) = setup(|c| c.events.workers = 0).await;
    let cases = [
        (json!({"columnMap": {"id": "row/id"}}), "columnMap.id"),
        (json!({"columnMap": {"id": "/row/~2"}}), "columnMap.id"),
        (json!({"columnMap": {"id": 5}}), "columnMap.id"),
        (json!({"columnMap": {}}), "columnMap"),
        (json!({"targetTable": "nope"}), "targetTable"),
        (json!({"targetSchema": "nowhere"}), "targetTable"),
        (json!({"columnMap": {"nope": "/row/id"}}), "columnMap.nope"),
        (json!({"targetClientName": "ghost"}), "targetClientName"),
        (json!({"sourceClientName": "ghost"}), "sourceClientName"),
        (json!({"routeKey": "gateway.nope"}), "routeKey"),
        (json!({"onConflict": {"columns": ["nope"]}}), "onConflict"),
        (json!({"onConflict": 5}), "onConflict"),
        (json!({"maxAttempts": 99}), "maxAttempts"),
        (json!({"surprise": 1}), "surprise"),
    ];
    for (patch, field) in cases {
        let mut body = mirror_sink();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = s
            .send("POST", "/admin/webhook-sinks", &[ADMIN], Some(body.clone()))
            .await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(r.text().contains(field), "{field}: {}", r.text());
    }
    let r = s
        .send(
            "POST",
            "/admin/webhook-sinks",
            &[ADMIN],
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    // Nothing was saved.
    let r = s.send("GET", "/admin/webhook-sinks", &[ADMIN], None).await;
    assert_eq!(r.json()["data"]["total"], 0, "{}", r.text());
    s.stop().await;
}

#[tokio::test]
async fn routes_read_back_patch_and_delete() {
    let (s, _b) = setup(|c| c.events.workers = 0).await;
    let id = create(&s, mirror_sink()).await["id"].as_i64().unwrap();
    let path = format!("/admin/webhook-sinks/{id}");
    let r = s
        .send(
            "PATCH",
            &path,
            &[ADMIN],
            Some(json!({"enabled": false, "target_table": "log",
            "column_map": {"src_id": "/row/id", "ev": "/event_id", "route": "/route_key"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.send("GET", &path, &[ADMIN], None).await;
    assert_eq!(r.status, 200);
    let d = r.json()["data"].clone();
    assert_eq!(d["enabled"], false);
    assert_eq!(d["targetTable"], "log");
    assert_eq!(d["name"], "items to mirror", "kept");
    let r = s
        .send(
            "GET",
            &format!("/admin/webhook-sinks?client_name={CLIENT}"),
            &[ADMIN],
            None,
        )
        .await;
    assert_eq!(r.json()["data"]["total"], 1);
    let r = s
        .send(
            "GET",
            "/admin/webhook-sinks?client_name=someone",
            &[ADMIN],
            None,
        )
        .await;
    assert_eq!(r.json()["data"]["total"], 0);
    let r = s
        .send("GET", "/admin/webhook-sinks/events", &[ADMIN], None)
        .await;
    assert_eq!(r.status, 200);
    assert!(r.json()["data"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["route_key"] == "gateway.insert"));
    let r = s.send("DELETE", &path, &[ADMIN], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.send("GET", &path, &[ADMIN], None).await.status, 404);
    assert_eq!(s.send("DELETE", &path, &[ADMIN], None).await.status, 404);
    // Admin key required.
    assert_eq!(
        s.send("GET", "/admin/webhook-sinks", &[], None)
            .await
            .status,
        401
    );
    s.stop().await;
}

#[tokio::test]
async fn two_replicas_write_one_row_per_event() {
    let (s, b) = setup(|c| c.events.workers = 2).await;
    let other = s.replica_with(|_| {}).await;
    let mut sink = mirror_sink();
    sink["targetTable"] = json!("log");
    sink["columnMap"] = json!({"src_id": "/row/id", "ev": "/event_id", "route": "/route_key"});
    create(&s, sink).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..10 {
        let server = if i % 2 == 0 { &s } else { &other };
        insert(server, &format!("r{i}")).await;
    }
    wait_count(&b, "SELECT count(*) FROM log", 10).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(count(&b, "SELECT count(*) FROM log").await, 10);
    assert_eq!(count(&b, "SELECT count(DISTINCT ev) FROM log").await, 10);
    other.stop().await;
    s.stop().await;
}

#[tokio::test]
async fn an_unknown_target_is_retried_then_failed() {
    let (s, _b) = setup(|_| {}).await;
    let mut sink = mirror_sink();
    sink["maxAttempts"] = json!(2);
    let id = create(&s, sink).await["id"].as_i64().unwrap();
    // The target client goes away after the save.
    let r = s
        .send("DELETE", &format!("/admin/clients/{B}"), &[ADMIN], None)
        .await;
    assert!(r.status == 200 || r.status == 204, "{}", r.text());
    insert(&s, "lost").await;
    wait_count(
        &s.catalog_url,
        "SELECT count(*) FROM athena_outbox WHERE target_kind = 'sink' AND status = 'failed' AND attempts = 2",
        1,
    )
    .await;
    let r = s
        .send(
            "GET",
            &format!("/admin/webhook-sinks/{id}/deliveries"),
            &[ADMIN],
            None,
        )
        .await;
    let d = r.json()["data"].clone();
    assert_eq!(d["total"], 2, "{d}");
    assert_eq!(d["deliveries"][0]["ok"], false);
    assert!(
        d["deliveries"][0]["error"].as_str().unwrap().contains(B),
        "{d}"
    );
    s.stop().await;
}

#[tokio::test]
async fn billing_helpers_and_idempotent_provisioning() {
    let (s, b) = setup(|c| c.events.workers = 0).await;
    for q in [
        format!("client_name={CLIENT}"),
        format!("instance={CLIENT}"),
    ] {
        let r = s
            .send(
                "GET",
                &format!("/admin/webhook-sinks/helpers/billing?{q}&target_client_name={B}&targetSchema=mirror"),
                &[ADMIN],
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let d = r.json()["data"].clone();
        let kinds: Vec<&str> = d["helpers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["payment", "subscription", "invoice"]);
        assert_eq!(d["helpers"][0]["createBody"]["targetClientName"], B);
        assert_eq!(d["helpers"][0]["createBody"]["targetSchema"], "mirror");
        assert!(d["tableSql"]
            .as_str()
            .unwrap()
            .contains("\"mirror\".\"billing_payments\""));
        assert!(d["seedSql"].is_string());
    }
    let r = s
        .send(
            "GET",
            "/admin/webhook-sinks/helpers/billing",
            &[ADMIN],
            None,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());

    let path = format!("/admin/billing/clients/{CLIENT}/webhook-sinks/provision");
    let body = json!({"targetClientName": B, "targetSchema": "mirror"});
    let r = s.send("POST", &path, &[ADMIN], Some(body.clone())).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let first = r.json()["data"].clone();
    assert_eq!(first["created"], 3, "{first}");
    assert_eq!(
        count(
            &b,
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'mirror'"
        )
        .await,
        3
    );
    let r = s.send("POST", &path, &[ADMIN], Some(body)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let second = r.json()["data"].clone();
    assert_eq!(second["created"], 0);
    assert_eq!(second["updated"], 0);
    assert_eq!(second["unchanged"], 3, "{second}");
    assert_eq!(
        first["sinks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| &s["updatedAt"])
            .collect::<Vec<_>>(),
        second["sinks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| &s["updatedAt"])
            .collect::<Vec<_>>(),
        "nothing changed"
    );
    let r = s
        .send(
            "GET",
            &format!("/admin/webhook-sinks?client_name={CLIENT}"),
            &[ADMIN],
            None,
        )
        .await;
    assert_eq!(r.json()["data"]["total"], 3);
    let r = s
        .send(
            "POST",
            "/admin/billing/clients/ghost/webhook-sinks/provision",
            &[ADMIN],
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    s.stop().await;
}
