//! What the client puts on the wire and how it reads errors, against a
//! one-shot HTTP server on a local port (no gateway needed).

use athena_client::{types, ApiError, AthenaClientBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves one request with `status` and JSON `body`; returns the request
/// head (lower-cased) and body as received.
async fn serve_once(
    status: &'static str,
    body: &'static str,
) -> (String, tokio::task::JoinHandle<(String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let (head, body_start) = loop {
            let n = socket.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break (
                    String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase(),
                    i + 4,
                );
            }
            assert!(n > 0, "connection closed before the request head ended");
        };
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse::<usize>().unwrap())
            .unwrap_or(0);
        while buf.len() < body_start + length {
            let n = socket.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
        }
        let request_body =
            String::from_utf8_lossy(&buf[body_start..body_start + length]).to_string();
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(response.as_bytes()).await.unwrap();
        (head, request_body)
    });
    (url, handle)
}

#[tokio::test]
async fn builder_headers_and_typed_body() {
    let (url, server) = serve_once(
        "200 OK",
        r#"{"status":"success","data":[{"id":1,"name":"a"}]}"#,
    )
    .await;
    let athena = AthenaClientBuilder::new(url)
        .client_name("local")
        .api_key("k-1")
        .build()
        .unwrap();
    let body = types::PostGatewayFetchBody {
        table_name: Some("items".into()),
        limit: Some(5),
        ..Default::default()
    };
    let rows = athena
        .post_gateway_fetch()
        .body(body)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rows.data.len(), 1);
    let (head, sent) = server.await.unwrap();
    assert!(head.starts_with("post /gateway/fetch http/1.1"), "{head}");
    assert!(head.contains("\r\nx-athena-client: local"), "{head}");
    assert!(head.contains("\r\nx-athena-key: k-1"), "{head}");
    assert!(head.contains("\r\napi-version: 3.26.3"), "{head}");
    let sent: serde_json::Value = serde_json::from_str(&sent).unwrap();
    assert_eq!(sent, serde_json::json!({"table_name": "items", "limit": 5}));
}

#[tokio::test]
async fn admin_client_sends_the_admin_key_and_call_overrides_client_name() {
    let (url, server) = serve_once("200 OK", r#"{"status":"success","data":[]}"#).await;
    let athena = AthenaClientBuilder::new(url)
        .client_name("local")
        .api_key("k-1")
        .admin_key("admin-1")
        .build()
        .unwrap();
    let admin = athena.admin().unwrap();
    let _ = admin
        .post_gateway_fetch()
        .x_athena_client("other")
        .body(types::PostGatewayFetchBody::default())
        .send()
        .await;
    let (head, _) = server.await.unwrap();
    assert!(head.contains("\r\nx-athena-key: admin-1"), "{head}");
    assert!(!head.contains("k-1"), "{head}");
    assert!(head.contains("\r\nx-athena-client: other"), "{head}");
    assert_eq!(head.matches("x-athena-client:").count(), 1, "{head}");
}

#[tokio::test]
async fn error_envelope_and_status_are_exposed() {
    let (url, server) = serve_once(
        "404 Not Found",
        r#"{"status":"error","message":"Table not found","error":"relation \"nope\" does not exist","code":"table_not_found","error_number":4041}"#,
    )
    .await;
    let athena = AthenaClientBuilder::new(url)
        .client_name("local")
        .build()
        .unwrap();
    let body = types::PostGatewayFetchBody {
        table_name: Some("nope".into()),
        ..Default::default()
    };
    let err = athena
        .post_gateway_fetch()
        .body(body)
        .send()
        .await
        .unwrap_err();
    let err = ApiError::from_progenitor(err).await;
    server.await.unwrap();
    assert_eq!(err.status, Some(reqwest::StatusCode::NOT_FOUND));
    let env = err.envelope.as_ref().unwrap();
    assert_eq!(env.message, "Table not found");
    assert_eq!(env.error_number, Some(4041));
    assert_eq!(err.code(), Some("table_not_found"));
}

#[tokio::test]
async fn undocumented_status_still_yields_the_envelope() {
    // get /health documents only 200 and 500: a 429 is "unexpected".
    let (url, server) = serve_once(
        "429 Too Many Requests",
        r#"{"status":"error","message":"Slow down","error":"rate limited"}"#,
    )
    .await;
    let athena = AthenaClientBuilder::new(url).build().unwrap();
    let err = ApiError::from_progenitor(athena.get_health().send().await.unwrap_err()).await;
    server.await.unwrap();
    assert_eq!(err.status, Some(reqwest::StatusCode::TOO_MANY_REQUESTS));
    assert_eq!(err.message(), "Slow down");
}
