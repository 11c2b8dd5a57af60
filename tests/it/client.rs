//! The generated Rust client (generated/athena-client) against the live
//! server: a contract drift between server and client breaks this test.
//! It drives at least one operation of every implemented family through the
//! typed client (health, registry, client catalog, API keys and their
//! enforcement, gateway fetch/insert/update/delete, REST, raw SQL and
//! count, RPC, public routes, deferred writes) and checks each effect
//! directly in Postgres where there is one.

use crate::common;

use athena_client::{types, ApiError, AthenaClient, AthenaClientBuilder};
use common::{TestServer, ADMIN_KEY, CLIENT};
use serde_json::{json, Map, Value};

/// A client whose writes are deferred (`deferred_clients`).
const DEFERRED: &str = "deferred_rust";

fn map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn client(s: &TestServer, name: &str, key: Option<&str>) -> AthenaClient {
    let mut b = AthenaClientBuilder::new(format!("http://{}", s.addr))
        .client_name(name)
        .admin_key(ADMIN_KEY);
    if let Some(key) = key {
        b = b.api_key(key);
    }
    b.build().unwrap()
}

/// The status and envelope text of a call that must fail.
async fn status<T: std::fmt::Debug, E: serde::Serialize + std::fmt::Debug>(
    r: Result<T, athena_client::Error<E>>,
) -> (Option<u16>, Option<String>) {
    let err = ApiError::from_progenitor(r.expect_err("an error")).await;
    (
        err.status.map(|s| s.as_u16()),
        err.envelope.map(|e| e.message + " " + &e.error),
    )
}

async fn names(s: &TestServer) -> Vec<String> {
    s.tenant()
        .await
        .query("SELECT name FROM items ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn generated_client_calls_the_live_server() {
    let s = TestServer::start_with(|c| c.deferred_clients = vec![DEFERRED.into()]).await;
    s.tenant()
        .await
        .batch_execute(
            "CREATE TABLE items (id int PRIMARY KEY, name text UNIQUE);
             INSERT INTO items VALUES (1, 'a'), (2, 'b');
             CREATE FUNCTION items_after(min_id int) RETURNS SETOF items
               LANGUAGE sql STABLE AS $$ SELECT * FROM items WHERE id > min_id ORDER BY id $$;",
        )
        .await
        .unwrap();
    let athena = client(&s, CLIENT, None);
    let admin = athena.admin().expect("admin key configured");

    // Health.
    let health = athena.get_health().send().await.unwrap().into_inner();
    assert_eq!(health.status.as_deref(), Some("ok"));
    assert_eq!(health.version.as_deref(), Some(env!("CARGO_PKG_VERSION")));

    // Gateway fetch.
    let body = types::PostGatewayFetchBody {
        table_name: Some("items".into()),
        limit: Some(1),
        ..Default::default()
    };
    let fetched = athena
        .post_gateway_fetch()
        .body(body)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched.data.len(), 1);
    assert_eq!(fetched.data[0]["name"], "a");

    // Errors come back as the typed envelope.
    let missing = types::PostGatewayFetchBody {
        table_name: Some("missing".into()),
        ..Default::default()
    };
    let err = ApiError::from_progenitor(
        athena
            .post_gateway_fetch()
            .body(missing)
            .send()
            .await
            .unwrap_err(),
    )
    .await;
    assert_eq!(err.status.map(|s| s.as_u16()), Some(404));
    assert_eq!(
        err.envelope.as_ref().and_then(|e| e.code.as_deref()),
        Some("table_not_found")
    );

    // Gateway insert: the row is in the table.
    let inserted = athena
        .put_gateway_insert()
        .body(types::PutGatewayInsertBody {
            insert_body: map(json!({"id": 3, "name": "c"})),
            schema_name: None,
            table_name: "items".into(),
            update_body: Map::new(),
        })
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(inserted["data"]["name"], "c");
    assert_eq!(names(&s).await, ["a", "b", "c"]);

    // Gateway update: the contract's body has no field for the new values
    // (`update_body` is only in the server's SDK overlay), so the typed
    // client can only send conditions, which the server refuses as a 400
    // naming the missing payload; the row is unchanged.
    let (code, message) = status(
        athena
            .post_gateway_update()
            .body(types::PostGatewayUpdateBody {
                table_name: Some("items".into()),
                conditions: vec![types::PostGatewayUpdateBodyConditionsItem {
                    eq_column: Some("id".into()),
                    eq_value: Some("3".into()),
                }],
                aggregation_column: None,
                aggregation_dedup: None,
                aggregation_strategy: None,
                columns: None,
                current_page: None,
                group_by: None,
                limit: None,
                offset: None,
                page_size: None,
                strip_nulls: None,
                time_granularity: None,
                total_pages: None,
                view_name: None,
            })
            .send()
            .await,
    )
    .await;
    assert_eq!(code, Some(400));
    assert!(message.unwrap_or_default().contains("update_body"));
    assert_eq!(names(&s).await, ["a", "b", "c"]);

    // Gateway delete by resource id: the row is gone.
    let deleted = athena
        .delete_gateway_delete()
        .body(types::DeleteGatewayDeleteBody {
            resource_id: "3".into(),
            schema_name: None,
            table_name: "items".into(),
        })
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted["rows_affected"], 1);
    assert_eq!(names(&s).await, ["a", "b"]);

    // REST: read with a filter, insert.
    let rows = athena
        .get_rest_v1_by_table()
        .table("items")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rows.data.len(), 2);
    let rows = athena
        .get_rest_v1_by_table()
        .table("items")
        .or("(id.eq.2)")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rows.data.len(), 1);
    assert_eq!(rows.data[0]["name"], "b");
    let posted = athena
        .post_rest_v1_by_table()
        .table("items")
        .body(types::PostRestV1ByTableBody::Object(map(
            json!({"id": 4, "name": "d"}),
        )))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(posted.data[0]["name"], "d");
    assert_eq!(names(&s).await, ["a", "b", "d"]);

    // Raw SQL and count.
    let queried = athena
        .post_gateway_query()
        .body(types::PostGatewayQueryBody {
            query: "SELECT name FROM items WHERE id = 4".into(),
            schema_name: None,
        })
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(queried["data"], json!([{"name": "d"}]));
    let counted = athena
        .post_query_count()
        .body(types::PostQueryCountBody {
            db_name: CLIENT.into(),
            driver: types::PostQueryCountBodyDriver::Postgresql,
            query: None,
            table_name: Some("items".into()),
            table_schema: None,
        })
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(counted.data.and_then(|d| d.count), Some(3));

    // RPC: the gateway form and the PostgREST form.
    let called = athena
        .post_gateway_rpc()
        .body(types::GatewayRpcRequest {
            function: "items_after".into(),
            args: map(json!({"min_id": 1})),
            schema: "public".into(),
            count: None,
            filters: Vec::new(),
            function_name: None,
            limit: None,
            offset: None,
            order: None,
            select: Some("name".into()),
        })
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        called.data,
        vec![map(json!({"name": "b"})), map(json!({"name": "d"}))]
    );
    let called = athena
        .post_rpc_by_function_name()
        .function_name("items_after")
        .body(types::PostRpcByFunctionNameBody::Object(map(
            json!({"min_id": 2}),
        )))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(called.data.len(), 1);
    assert_eq!(called.data[0]["name"], "d");

    // The client catalog (admin), and its refusal without the admin key.
    let listed = admin.get_admin_clients().send().await.unwrap().into_inner();
    assert!(listed
        .clients
        .iter()
        .any(|c| c.client_name.as_deref() == Some(CLIENT)));
    for name in ["from_rust", DEFERRED] {
        let saved = admin
            .post_admin_clients()
            .body(types::SaveAthenaClientRequest {
                client_name: Some(name.into()),
                pg_uri: Some(s.tenant_url.clone()),
                ..Default::default()
            })
            .send()
            .await
            .unwrap();
        assert_eq!(saved.status().as_u16(), 201);
    }
    let names_listed = admin.get_clients().send().await.unwrap().into_inner();
    assert!(names_listed.clients.iter().any(|c| c == "from_rust"));
    let err = ApiError::from_progenitor(athena.get_admin_clients().send().await.unwrap_err()).await;
    assert_eq!(err.status.map(|s| s.as_u16()), Some(401));

    // Public routes: created through the admin API, used without naming
    // the client. (The contract declares these bodies empty, so the typed
    // client sees statuses; the effect is read from Postgres.)
    let created = admin
        .post_admin_public_routes()
        .body(types::PostAdminPublicRoutesBody {
            route_key: "rust-route".into(),
            client_name: CLIENT.into(),
            allowed_ops: vec!["fetch".into(), "insert".into()],
            rest_shape: None,
        })
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let anonymous = AthenaClientBuilder::new(format!("http://{}", s.addr))
        .build()
        .unwrap();
    let fetched = anonymous
        .post_public_by_route_key_by_op()
        .route_key("rust-route")
        .op(types::PostPublicByRouteKeyByOpOp::Fetch)
        .body(map(json!({"table_name": "items"})))
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.status().as_u16(), 200);
    let inserted = anonymous
        .post_public_by_route_key_by_op()
        .route_key("rust-route")
        .op(types::PostPublicByRouteKeyByOpOp::Insert)
        .body(map(
            json!({"table_name": "items", "insert_body": {"id": 5, "name": "e"}}),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(inserted.status().as_u16(), 200);
    assert_eq!(names(&s).await, ["a", "b", "d", "e"]);
    let (code, _) = status(
        anonymous
            .post_public_by_route_key_by_op()
            .route_key("rust-route")
            .op(types::PostPublicByRouteKeyByOpOp::Delete)
            .body(map(json!({"table_name": "items", "resource_id": "5"})))
            .send()
            .await,
    )
    .await;
    assert_eq!(code, Some(403));
    assert_eq!(names(&s).await, ["a", "b", "d", "e"]);

    // The API registry lists the catalog's clients and routes.
    let registry = admin.get_registry().send().await.unwrap().into_inner();
    let ids: Vec<&str> = registry
        .iter()
        .filter_map(|e| e["api_registry_id"].as_str())
        .collect();
    assert!(ids.contains(&"client:from_rust"), "{ids:?}");
    assert!(ids.contains(&"public_route:rust-route"), "{ids:?}");
    let routes = athena
        .get_router_registry()
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(routes.len(), athena_client::OPERATION_NAMES.len());

    // Deferred writes: queued, flushed by the admin, then applied.
    let deferred = client(&s, DEFERRED, None);
    let queued = deferred
        .put_gateway_insert()
        .body(types::PutGatewayInsertBody {
            insert_body: map(json!({"id": 6, "name": "f"})),
            schema_name: None,
            table_name: "items".into(),
            update_body: Map::new(),
        })
        .send()
        .await
        .unwrap()
        .into_inner();
    let request_id = queued["request_id"]
        .as_str()
        .expect("a request id")
        .to_string();
    let state = deferred
        .get_gateway_deferred_by_request_id()
        .request_id(&request_id)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state["operation"], "insert");
    let flushed = deferred
        .admin()
        .unwrap()
        .post_gateway_deferred_flush()
        .send()
        .await
        .unwrap();
    assert_eq!(flushed.status().as_u16(), 200);
    let state = deferred
        .get_gateway_deferred_by_request_id()
        .request_id(&request_id)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state["status"], "completed", "{state:?}");
    assert_eq!(names(&s).await, ["a", "b", "d", "e", "f"]);

    // API keys: a key holding the read right, enforcement turned on, the
    // key reads but may not call functions, no key is refused; then off.
    let key = admin
        .post_admin_api_keys()
        .body(types::CreateApiKeyRequest {
            name: "from-rust".into(),
            rights: vec!["gateway.fetch.execute".into()],
            client_name: None,
            description: None,
            expires_at: None,
            ip_blacklist: Vec::new(),
            ip_whitelist: Vec::new(),
            max_whitelist_ips: None,
            virgin_mode: None,
            virgin_until_n_requests: None,
        })
        .send()
        .await
        .unwrap()
        .into_inner();
    let secret = key.api_key.expect("the key is shown once");
    let keys = admin
        .get_admin_api_keys()
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(keys
        .api_keys
        .iter()
        .any(|k| k.name.as_deref() == Some("from-rust")));
    let config = admin
        .put_admin_api_key_config()
        .body(types::ApiKeyConfigRequest {
            enforce_api_keys: true,
        })
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(config.global.and_then(|g| g.enforce_api_keys), Some(true));
    let keyed = client(&s, CLIENT, Some(&secret));
    let read = keyed
        .get_rest_v1_by_table()
        .table("items")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.data.len(), 5);
    let (code, _) = status(
        keyed
            .post_rpc_by_function_name()
            .function_name("items_after")
            .body(types::PostRpcByFunctionNameBody::Object(map(
                json!({"min_id": 0}),
            )))
            .send()
            .await,
    )
    .await;
    assert_eq!(code, Some(403));
    let (code, _) = status(anonymous.get_rest_v1_by_table().table("items").send().await).await;
    assert_eq!(code, Some(401));
    let config = admin
        .put_admin_api_key_config()
        .body(types::ApiKeyConfigRequest {
            enforce_api_keys: false,
        })
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(config.global.and_then(|g| g.enforce_api_keys), Some(false));
    s.stop().await;
}
