//! `make bench`'s tiny hyper server, the same HTTP stack as the gateway
//! with nothing behind it:
//!
//! - `GET` answers a point read's JSON (the gateway's `/rest/v1` answer for
//!   one `bench_items` row, ~200 bytes): the HTTP floor of this machine, so
//!   every gateway figure can also be read against what the machine allows
//!   (issue 17);
//! - `POST` reads the body and answers 204: the webhook receiver of the
//!   webhook scenario (a receiver that costs next to nothing, so the
//!   scenario measures the gateway's side of a delivery).
//!
//! `bench_floor <port>`; two runtime threads, keep-alive.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Response, StatusCode};
use std::convert::Infallible;

const POINT_READ: &str = r#"{"status":"success","message":"Fetched 1 rows","data":[{"id":4242,"name":"item 4242","score":42}],"cache_key":null,"post_processing":null}"#;

async fn answer(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let post = req.method() == Method::POST;
    // Read the request body whole (a webhook delivery), as a receiver does.
    let _ = req.into_body().collect().await;
    let response = if post {
        Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(Full::new(Bytes::new()))
    } else {
        Response::builder()
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(POINT_READ.as_bytes())))
    };
    Ok(response.expect("a static response"))
}

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| {
            eprintln!("usage: bench_floor <port>");
            std::process::exit(2)
        });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(
                        hyper_util::rt::TokioIo::new(stream),
                        hyper::service::service_fn(answer),
                    )
                    .await;
            });
        }
    });
}
