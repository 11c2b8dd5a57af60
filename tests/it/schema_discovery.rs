//! Schema discovery (issue 16): `/schema*`, `/registry/{id}`,
//! `/debug/schema`, and the management DDL audit store
//! (`src/audit/ddl.rs`) the `/management/*` writes go through.

use crate::common::{self, TestServer, ADMIN_KEY, CLIENT};
use athena::audit::ddl::{AuditEntry, AuditStore};
use athena::db::PoolSettings;
use athena::domain::DomainError;
use std::time::Duration;

fn settings() -> PoolSettings {
    PoolSettings {
        max_size: 2,
        connect_timeout: Duration::from_secs(2),
        acquire_timeout: Duration::from_secs(2),
        statement_timeout: Duration::from_secs(5),
    }
}

fn entry(statement: &str) -> AuditEntry {
    AuditEntry {
        client_name: CLIENT.into(),
        api_key_id: Some("0b6f3c1e-0000-4000-8000-000000000001".into()),
        request_id: "req-1".into(),
        operation: "management.tables.create".into(),
        object_schema: Some("public".into()),
        object_name: Some("widgets".into()),
        statement: statement.into(),
        function: None,
    }
}

// ---------------------------------------------------------------- audit store

#[tokio::test]
async fn audit_store_begin_finish_and_recover() {
    let server = TestServer::start().await;
    let store = AuditStore::new(athena::db::pool(&server.catalog_url, settings()).unwrap());

    // begin → pending, with every field as given; finish → success.
    let sql = r#"CREATE TABLE "public"."widgets" ("id" bigint)"#;
    let id = store.begin(&entry(sql)).await.expect("begin");
    let rows = store.recent(CLIENT, 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (row.id, row.status.as_str(), row.statement.as_str()),
        (id.0, "pending", sql)
    );
    assert_eq!(row.operation, "management.tables.create");
    assert_eq!(row.object_schema.as_deref(), Some("public"));
    assert_eq!(row.object_name.as_deref(), Some("widgets"));
    assert_eq!(row.request_id, "req-1");
    assert!(row.api_key_id.is_some() && row.finished_at.is_none());
    store.finish(id, Ok(())).await;
    let row = &store.recent(CLIENT, 10).await.unwrap()[0];
    assert_eq!(row.status, "success");
    assert!(row.error.is_none() && row.finished_at.is_some());
    // A finished row is not finished again.
    store.finish(id, Err("late")).await;
    assert_eq!(store.recent(CLIENT, 10).await.unwrap()[0].status, "success");

    // An error keeps its message.
    let failed = store.begin(&entry("DROP TABLE x")).await.unwrap();
    store
        .finish(failed, Err("relation \"x\" does not exist"))
        .await;
    let row = &store.recent(CLIENT, 1).await.unwrap()[0];
    assert_eq!(
        (row.status.as_str(), row.error.as_deref()),
        ("error", Some("relation \"x\" does not exist"))
    );

    // Function DDL: the replaced definition is kept in its own table.
    let mut f =
        entry("CREATE OR REPLACE FUNCTION public.f() RETURNS int LANGUAGE sql AS $$ SELECT 2 $$");
    f.operation = "management.functions.replace".into();
    f.function = Some(Some("CREATE FUNCTION public.f() ... SELECT 1".into()));
    let fid = store.begin(&f).await.unwrap();
    store.finish(fid, Ok(())).await;
    let row = &store.recent(CLIENT, 1).await.unwrap()[0];
    assert_eq!(
        row.previous_definition.as_deref(),
        Some("CREATE FUNCTION public.f() ... SELECT 1")
    );
    let catalog = common::psql(&server.catalog_url).await;
    let (status, prev): (String, Option<String>) = catalog
        .query_one(
            "SELECT status, previous_definition FROM function_ddl_audit_log WHERE audit_id = $1",
            &[&fid.0],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(status, "success");
    assert!(prev.is_some());

    // A crash leaves a pending row: recovery marks it error (the grace
    // keeps a fresh row of a live replica open).
    let crashed = store
        .begin(&entry("ALTER TABLE t ADD COLUMN c text"))
        .await
        .unwrap();
    assert_eq!(
        store.recover_pending().await.unwrap(),
        0,
        "a fresh row is spared"
    );
    assert_eq!(
        store
            .recover_pending_older_than(Duration::ZERO)
            .await
            .unwrap(),
        1
    );
    let row = &store.recent(CLIENT, 1).await.unwrap()[0];
    assert_eq!(row.id, crashed.0);
    assert_eq!(row.status, "error");
    assert_eq!(row.error.as_deref(), Some(athena::audit::ddl::INTERRUPTED));
    assert!(row.finished_at.is_some());
    server.stop().await;
}

#[tokio::test]
async fn audit_store_down_or_missing_tables_is_503() {
    // Nothing listens on this port: begin refuses (503), nothing runs.
    let port = common::free_port();
    let down = AuditStore::new(
        athena::db::pool(
            &format!("postgres://athena@127.0.0.1:{port}/nowhere"),
            settings(),
        )
        .unwrap(),
    );
    match down.begin(&entry("CREATE TABLE t ()")).await {
        Err(DomainError::ServiceUnavailable(m)) => assert!(m.contains("audit"), "{m}"),
        other => panic!("expected 503 service_unavailable, got {other:?}"),
    }

    // A reachable database without the tables: the same 503.
    let mut server = TestServer::start().await;
    let empty = server.extra_db().await;
    let store = AuditStore::new(athena::db::pool(&empty, settings()).unwrap());
    assert!(matches!(
        store.begin(&entry("CREATE TABLE t ()")).await,
        Err(DomainError::ServiceUnavailable(_))
    ));
    // A separate logging store gets its tables at start (`open`).
    let store = AuditStore::open(
        &athena::db::pool(&server.catalog_url, settings()).unwrap(),
        Some(&empty),
        settings(),
    )
    .await
    .unwrap();
    let id = store.begin(&entry("CREATE TABLE t ()")).await.unwrap();
    store.finish(id, Ok(())).await;
    let n: i64 = common::psql(&empty)
        .await
        .query_one(
            "SELECT count(*) FROM database_audit_log WHERE status = 'success'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    server.stop().await;
}

/// The server wires the store in: `ATHENA_LOGGING_DATABASE_URL` names it.
#[tokio::test]
async fn server_uses_the_logging_store() {
    let probe = TestServer::start().await;
    let mut probe = probe;
    let logging = probe.extra_db().await;
    let logging_for_config = logging.clone();
    let server =
        TestServer::start_with(move |c| c.logging_database_url = Some(logging_for_config)).await;
    // The separate store has the tables; the catalog has them too (the
    // migration), unused.
    let n: i64 = common::psql(&logging)
        .await
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename IN ('database_audit_log', 'function_ddl_audit_log')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    let _ = ADMIN_KEY;
    server.stop().await;
    probe.stop().await;
}
