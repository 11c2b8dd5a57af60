//! The real binary as an operator runs it: configuration errors, graceful
//! shutdown that drains in-flight requests, and OTLP trace export.

use crate::common;

use bytes::Bytes;
use common::{free_port, psql, wait_ready, with_db};
use http_body_util::{BodyExt, Full};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn athena() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_athena"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

fn terminate(child: &Child) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

async fn fresh_db() -> String {
    let admin = std::env::var("ATHENA_PG_ADMIN_URL").expect("run through make test");
    let name = format!("t_{}_proc", uuid::Uuid::new_v4().simple());
    psql(&admin)
        .await
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap();
    with_db(&admin, &name)
}

async fn get(port: u16, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> (u16, Bytes) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let mut req = http::Request::builder()
        .method(if body.is_some() { "POST" } else { "GET" })
        .uri(format!("http://127.0.0.1:{port}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or("").to_string())))
        .unwrap();
    let res = client.request(req).await.expect("request");
    let status = res.status().as_u16();
    (status, res.into_body().collect().await.unwrap().to_bytes())
}

#[test]
fn configuration_errors_stop_the_server_with_a_message() {
    let out = athena().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DATABASE_URL"));

    let out = athena()
        .env("DATABASE_URL", "postgres://x@127.0.0.1:1/x")
        .env("ATHENA_MAX_ROWS", "many")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ATHENA_MAX_ROWS"));
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests() {
    let db = fresh_db().await;
    psql(&db)
        .await
        .batch_execute("CREATE VIEW slow AS SELECT pg_sleep(1.5)::text AS s")
        .await
        .unwrap();
    let port = free_port();
    let mut child = athena()
        .env("DATABASE_URL", &db)
        .env("ATHENA_CLIENTS", format!("t={db}"))
        .env("PORT", port.to_string())
        .spawn()
        .unwrap();
    wait_ready(port, &mut child).await;
    let slow = tokio::spawn(async move {
        get(
            port,
            "/gateway/fetch",
            &[
                ("x-athena-client", "t"),
                ("content-type", "application/json"),
            ],
            Some(r#"{"table_name":"slow"}"#),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    terminate(&child);
    let (status, body) = slow.await.unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit}");
    // After shutdown nothing listens.
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err());
}

#[tokio::test]
async fn traces_are_exported_over_otlp_http() {
    // A minimal OTLP/HTTP receiver that records what it is sent.
    let received: Arc<Mutex<Vec<(String, Bytes)>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp_port = listener.local_addr().unwrap().port();
    let sink = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let sink = sink.clone();
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let sink = sink.clone();
                        async move {
                            let path = req.uri().path().to_string();
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            sink.lock().unwrap().push((path, body));
                            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                                Bytes::new(),
                            )))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    let db = fresh_db().await;
    let port = free_port();
    let mut child = athena()
        .env("DATABASE_URL", &db)
        .env("PORT", port.to_string())
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{otlp_port}"),
        )
        .env("RUST_LOG", "warn,opentelemetry=debug")
        .spawn()
        .unwrap();
    let mut child_stderr = child.stderr.take().unwrap();
    wait_ready(port, &mut child).await;
    assert_eq!(get(port, "/ping", &[], None).await.0, 200);
    terminate(&child);
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success());
    let got = received.lock().unwrap().clone();
    if got.is_empty() {
        let mut err = String::new();
        use std::io::Read;
        let _ = child_stderr.read_to_string(&mut err);
        panic!("no spans exported; server log:\n{err}");
    }
    let traces: Vec<&Bytes> = got
        .iter()
        .filter(|(p, _)| p == "/v1/traces")
        .map(|(_, b)| b)
        .collect();
    assert!(!traces.is_empty(), "no spans exported: {got:?}");
    let all: Vec<u8> = traces.iter().flat_map(|b| b.to_vec()).collect();
    let needle = b"GET /ping";
    assert!(
        all.windows(needle.len()).any(|w| w == needle),
        "span named after the route template"
    );
}
