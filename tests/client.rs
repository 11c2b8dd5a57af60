//! The generated Rust client (generated/athena-client) against the live
//! server: a contract drift between server and client breaks this test.

mod common;

use athena_client::{types, ApiError, AthenaClientBuilder};
use common::{TestServer, ADMIN_KEY, CLIENT};

#[tokio::test]
async fn generated_client_calls_the_live_server() {
    let s = TestServer::start().await;
    s.tenant()
        .await
        .batch_execute("CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'a'), (2, 'b')")
        .await
        .unwrap();
    let athena = AthenaClientBuilder::new(format!("http://{}", s.addr))
        .client_name(CLIENT)
        .admin_key(ADMIN_KEY)
        .build()
        .unwrap();

    let health = athena.get_health().send().await.unwrap().into_inner();
    assert_eq!(health.status.as_deref(), Some("ok"));
    assert_eq!(health.version.as_deref(), Some(env!("CARGO_PKG_VERSION")));

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

    let rows = athena
        .get_rest_v1_by_table()
        .table("items")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rows.data.len(), 2);

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

    // Admin operations through the admin client.
    let admin = athena.admin().expect("admin key configured");
    let listed = admin.get_admin_clients().send().await.unwrap().into_inner();
    assert!(listed
        .clients
        .iter()
        .any(|c| c.client_name.as_deref() == Some(CLIENT)));
    let saved = admin
        .post_admin_clients()
        .body(types::SaveAthenaClientRequest {
            client_name: Some("from_rust".into()),
            pg_uri: Some(s.tenant_url.clone()),
            ..Default::default()
        })
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status().as_u16(), 201);
    // Without the admin key the same call is refused.
    let err = ApiError::from_progenitor(athena.get_admin_clients().send().await.unwrap_err()).await;
    assert_eq!(err.status.map(|s| s.as_u16()), Some(401));
    s.stop().await;
}
