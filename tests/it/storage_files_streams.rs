//! Managed files, streams (issue 12): multipart uploads through signed
//! part URLs, the streamed `PUT …/upload`, the `proxy` with `Range`, the
//! signed `proxy-url`, the Redis URL cache; and (ignored by default, run
//! alone) the flat-RSS check of a 1 GiB upload and proxy.

use crate::common::files::{get_bytes, Files};
use crate::common::{allow, TestServer};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use serde_json::{json, Value};

/// Deterministic content: byte `i` of a body.
fn byte_at(i: u64) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8
}

fn content(from: u64, len: usize) -> Vec<u8> {
    (from..from + len as u64).map(byte_at).collect()
}

/// A pending file at `key` (upload-url, no bytes yet); its id.
async fn pending(f: &Files<'_>, who: &[(String, String)], key: &str) -> String {
    let r = f
        .send(
            "POST",
            "/storage/files/upload-url",
            who,
            Some(json!({ "s3_id": f.s3_id, "storage_key": key, "content_type": "application/octet-stream" })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["data"]["file"]["id"].as_str().unwrap().to_string()
}

type BoxBody = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

/// One raw request (any body) to `url`: status, headers, body collected.
async fn raw(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: BoxBody,
) -> (u16, http::HeaderMap, Bytes) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<BoxBody>();
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let res = client.request(req.body(body).unwrap()).await.unwrap();
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (parts.status.as_u16(), parts.headers, bytes)
}

fn full(bytes: Vec<u8>) -> BoxBody {
    Full::new(Bytes::from(bytes)).boxed()
}

fn with(headers: &[(String, String)], extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut h = headers.to_vec();
    h.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    h
}

async fn post(f: &Files<'_>, who: &[(String, String)], path: &str, body: Value) -> (u16, Value) {
    let r = f.send("POST", path, who, Some(body)).await;
    let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, v)
}

/// A presigned S3 URL for a request the routes do not make (the test
/// reads the store directly).
fn store_url(bucket: &str, key: &str, query: &[(&str, String)]) -> String {
    let endpoint = url::Url::parse(&std::env::var("S3_ENDPOINT").unwrap()).unwrap();
    let store = athena::storage::s3::Store {
        endpoint: athena::storage::endpoint::Endpoint {
            https: endpoint.scheme() == "https",
            host: endpoint.host_str().unwrap().to_string(),
            port: endpoint.port_or_known_default().unwrap(),
        },
        region: "us-east-1".into(),
        access_key: std::env::var("S3_ACCESS_KEY_ID").unwrap(),
        secret_key: std::env::var("S3_SECRET_ACCESS_KEY").unwrap(),
        session_token: None,
    };
    store
        .presign_query(&http::Method::GET, bucket, key, query, 300, &[])
        .unwrap()
}

#[tokio::test]
async fn multipart_twenty_mib_in_three_parts_and_abort_and_ownership() {
    let s = TestServer::start_with(|c| allow(c, "127.0.0.1")).await;
    let f = Files::new(&s).await;
    let alice = f.user("alice", "acme");
    let bob = f.user("bob", "acme");
    let id = pending(&f, &alice, "big/twenty.bin").await;

    let (status, v) = post(
        &f,
        &alice,
        "/storage/multipart/create",
        json!({ "file_id": id }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let upload_id = v["data"]["upload_id"].as_str().unwrap().to_string();

    // Bob may not use Alice's upload, even on his own file.
    let bobs = pending(&f, &bob, "big/bobs.bin").await;
    for (file, path) in [(&id, "sign-part"), (&bobs, "list-parts"), (&id, "abort")] {
        let (status, v) = post(
            &f,
            &bob,
            &format!("/storage/multipart/{path}"),
            json!({ "file_id": file, "upload_id": upload_id, "part_number": 1, "parts": [] }),
        )
        .await;
        assert_eq!(status, 403, "{path}: {v}");
    }
    let (status, _) = post(
        &f,
        &alice,
        "/storage/multipart/sign-part",
        json!({ "file_id": id, "upload_id": "nope", "part_number": 1 }),
    )
    .await;
    assert_eq!(status, 404);
    for n in [0, 10_001] {
        let (status, _) = post(
            &f,
            &alice,
            "/storage/multipart/sign-part",
            json!({ "file_id": id, "upload_id": upload_id, "part_number": n }),
        )
        .await;
        assert_eq!(status, 400, "part {n}");
    }

    // 20 MiB: 8 + 8 + 4, each PUT to its signed URL.
    let total = 20usize << 20;
    let mut parts = Vec::new();
    for (n, (from, len)) in [
        (0usize, 8usize << 20),
        (8 << 20, 8 << 20),
        (16 << 20, 4 << 20),
    ]
    .into_iter()
    .enumerate()
    {
        let number = n + 1;
        let (status, v) = post(
            &f,
            &alice,
            "/storage/multipart/sign-part",
            json!({ "file_id": id, "upload_id": upload_id, "part_number": number }),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        let url = v["data"]["url"].as_str().unwrap().to_string();
        let (status, headers, body) = raw("PUT", &url, &[], full(content(from as u64, len))).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let etag = headers["etag"].to_str().unwrap().to_string();
        parts.push(json!({ "part_number": number, "etag": etag }));
    }
    let (status, v) = post(
        &f,
        &alice,
        "/storage/multipart/list-parts",
        json!({ "file_id": id, "upload_id": upload_id }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["count"], 3, "{v}");
    assert_eq!(v["data"]["parts"][2]["size_bytes"], 4 << 20);
    // Completed in any order of the list: sorted by part number.
    parts.reverse();
    let (status, v) = post(
        &f,
        &alice,
        "/storage/multipart/complete",
        json!({ "file_id": id, "upload_id": upload_id, "parts": parts }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["file"]["status"], "available");
    assert_eq!(v["data"]["file"]["size_bytes"], total);

    // The bytes, through the proxy and through a presigned URL.
    let (status, _, body) = raw(
        "GET",
        &format!("http://{}/storage/files/{id}/proxy", s.addr),
        &alice,
        full(vec![]),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        body.len() == total && body[..] == content(0, total)[..],
        "proxied bytes differ"
    );
    let r = f
        .send("GET", &format!("/storage/files/{id}/url"), &alice, None)
        .await;
    let url = r.json()["data"]["url"].as_str().unwrap().to_string();
    assert_eq!(get_bytes(&url).await.len(), total);

    // An aborted upload leaves no parts on the store.
    let (_, v) = post(
        &f,
        &alice,
        "/storage/multipart/create",
        json!({ "file_id": id }),
    )
    .await;
    let second = v["data"]["upload_id"].as_str().unwrap().to_string();
    let (status, v) = post(
        &f,
        &alice,
        "/storage/multipart/sign-part",
        json!({ "file_id": id, "upload_id": second, "part_number": 1 }),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, _) = raw(
        "PUT",
        v["data"]["url"].as_str().unwrap(),
        &[],
        full(content(0, 5 << 20)),
    )
    .await;
    assert_eq!(status, 200);
    let key = "big/twenty.bin";
    let listed = get_bytes(&store_url(&f.bucket, key, &[("uploadId", second.clone())])).await;
    assert!(String::from_utf8_lossy(&listed).contains("<PartNumber>1</PartNumber>"));
    let (status, v) = post(
        &f,
        &alice,
        "/storage/multipart/abort",
        json!({ "file_id": id, "upload_id": second }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["aborted"], true);
    let listed = String::from_utf8_lossy(
        &get_bytes(&store_url(&f.bucket, key, &[("uploadId", second.clone())])).await,
    )
    .into_owned();
    assert!(
        !listed.contains("<PartNumber>"),
        "parts left after abort: {listed}"
    );
    let uploads = String::from_utf8_lossy(
        &get_bytes(&store_url(&f.bucket, "", &[("uploads", String::new())])).await,
    )
    .into_owned();
    assert!(
        !uploads.contains(&second),
        "the aborted upload is still listed: {uploads}"
    );
    let (status, _) = post(
        &f,
        &alice,
        "/storage/multipart/list-parts",
        json!({ "file_id": id, "upload_id": second }),
    )
    .await;
    assert_eq!(status, 404);
    let rows = s
        .tenant()
        .await
        .query_one(
            "SELECT count(*) FROM athena.multipart_uploads WHERE status = 'aborted'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.get::<_, i64>(0), 1);
}

#[tokio::test]
async fn put_upload_then_proxy_with_ranges_and_proxy_urls() {
    let s = TestServer::start_with(|c| allow(c, "127.0.0.1")).await;
    let f = Files::new(&s).await;
    let alice = f.user("alice", "acme");
    let base = format!("http://{}", s.addr);

    // Above the part size: a multipart upload behind the route, the body
    // chunked (no length, as the SDK streams it) in pieces that straddle
    // the part boundary.
    let id = pending(&f, &alice, "streams/nine.bin").await;
    let len = 9usize << 20;
    let piece = 700 << 10;
    let pieces = futures_util::stream::iter((0..len).step_by(piece).map(move |at| {
        let n = piece.min(len - at);
        Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(content(at as u64, n))))
    }));
    let (status, _, body) = raw(
        "PUT",
        &format!("{base}/storage/files/{id}/upload"),
        &with(&alice, &[("content-type", "application/octet-stream")]),
        BodyExt::boxed(StreamBody::new(pieces)),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["data"]["file"]["status"], "available");
    assert_eq!(v["data"]["file"]["size_bytes"], len);

    // Whole, then ranges.
    let proxy = format!("{base}/storage/files/{id}/proxy");
    let (status, headers, body) = raw("GET", &proxy, &alice, full(vec![])).await;
    assert_eq!(status, 200);
    assert_eq!(headers["accept-ranges"], "bytes");
    assert!(body[..] == content(0, len)[..]);
    let (status, headers, body) = raw(
        "GET",
        &proxy,
        &with(&alice, &[("range", "bytes=100-199")]),
        full(vec![]),
    )
    .await;
    assert_eq!(status, 206);
    assert_eq!(
        headers["content-range"],
        format!("bytes 100-199/{len}").as_str()
    );
    assert_eq!(body[..], content(100, 100)[..]);
    let (status, _, body) = raw(
        "GET",
        &proxy,
        &with(&alice, &[("range", "bytes=-10")]),
        full(vec![]),
    )
    .await;
    assert_eq!(status, 206);
    assert_eq!(body[..], content(len as u64 - 10, 10)[..]);
    let (status, headers, body) = raw(
        "GET",
        &proxy,
        &with(&alice, &[("range", &format!("bytes={len}-"))]),
        full(vec![]),
    )
    .await;
    assert_eq!(status, 416, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["content-range"], format!("bytes */{len}").as_str());
    // Another organization's user: no such file.
    let (status, _, _) = raw("GET", &proxy, &f.user("mallory", "evil"), full(vec![])).await;
    assert_eq!(status, 404);

    // A small body: one PutObject.
    let small = pending(&f, &alice, "streams/small.txt").await;
    let (status, _, body) = raw(
        "PUT",
        &format!("{base}/storage/files/{small}/upload"),
        &with(&alice, &[("content-type", "text/plain")]),
        full(b"small body".to_vec()),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (status, headers, body) = raw(
        "GET",
        &format!("{base}/storage/files/{small}/proxy?purpose=download"),
        &alice,
        full(vec![]),
    )
    .await;
    assert_eq!((status, &body[..]), (200, &b"small body"[..]));
    assert_eq!(headers["content-type"], "text/plain");
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"small.txt\""));

    // proxy-url: no key, no actor, until it expires.
    let r = f
        .send(
            "GET",
            &format!("/storage/files/{small}/proxy-url"),
            &alice,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let d = r.json()["data"].clone();
    let url = d["url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&base), "{url}");
    let (status, _, body) = raw("GET", &url, &[], full(vec![])).await;
    assert_eq!((status, &body[..]), (200, &b"small body"[..]));
    // Tampered: another file, another expiry, another signature.
    for bad in [
        url.replace(&small, &id),
        url.replace(
            &format!("expires={}", d["expires_at_epoch_seconds"]),
            &format!(
                "expires={}",
                d["expires_at_epoch_seconds"].as_i64().unwrap() + 1000
            ),
        ),
        format!(
            "{}{}",
            &url[..url.len() - 1],
            if url.ends_with('0') { '1' } else { '0' }
        ),
        url.split("&token=").next().unwrap().to_string() + "&token=zz",
        // Issued to alice; claiming it was someone else's breaks the seal.
        url.replace("user=alice", "user=mallory"),
    ] {
        let (status, _, body) = raw("GET", &bad, &[], full(vec![])).await;
        assert_eq!(status, 403, "{bad}: {}", String::from_utf8_lossy(&body));
    }
    // A URL issued to a grantee stops working when the grant is revoked.
    let r = f
        .send(
            "POST",
            "/storage/permissions/grant",
            &alice,
            Some(json!({ "file_id": small, "principal_type": "user", "principal_id": "dave", "permission": "read" })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let dave = f.user("dave", "other-org");
    let r = f
        .send(
            "GET",
            &format!("/storage/files/{small}/proxy-url"),
            &dave,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let daves = r.json()["data"]["url"].as_str().unwrap().to_string();
    let (status, _, _) = raw("GET", &daves, &[], full(vec![])).await;
    assert_eq!(status, 200);
    let r = f
        .send(
            "POST",
            "/storage/permissions/revoke",
            &alice,
            Some(json!({ "file_id": small, "principal_type": "user", "principal_id": "dave", "permission": "read" })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (status, _, _) = raw("GET", &daves, &[], full(vec![])).await;
    assert_eq!(status, 404, "a revoked grantee's URL must stop at once");
    // Expired.
    let r = f
        .send(
            "GET",
            &format!("/storage/files/{small}/proxy-url?expires_in=1"),
            &alice,
            None,
        )
        .await;
    let short = r.json()["data"]["url"].as_str().unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, _, body) = raw("GET", &short, &[], full(vec![])).await;
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    // No token and no key: the key check as always.
    let (status, _, _) = raw("GET", &proxy, &[], full(vec![])).await;
    assert!(status == 401 || status == 400, "{status}");

    // Over the upload limit (declared): 413 before anything is read.
    let (status, _, body) = raw(
        "PUT",
        &format!("{base}/storage/files/{small}/upload"),
        &with(&alice, &[("content-length", &(3u64 << 30).to_string())]),
        full(vec![]),
    )
    .await;
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&body));
    // Without write permission: refused, nothing changed.
    let (status, _, _) = raw(
        "PUT",
        &format!("{base}/storage/files/{small}/upload"),
        &f.user("carol", "acme"),
        full(b"x".to_vec()),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn url_cache_hits_after_authorization_and_not_after_delete() {
    if std::env::var("REDIS_URL").is_err() {
        eprintln!("REDIS_URL unset: the URL cache is off, nothing to test");
        return;
    }
    let s = TestServer::start_with(|c| allow(c, "127.0.0.1")).await;
    let f = Files::new(&s).await;
    let alice = f.user("alice", "acme");
    let id = f.upload(&alice, "cache/a.txt", b"cached").await;
    let path = format!("/storage/files/{id}/url");
    let first = f.send("GET", &path, &alice, None).await.json()["data"].clone();
    assert_eq!(first["cache_hit"], false, "{first}");
    let second = f.send("GET", &path, &alice, None).await.json()["data"].clone();
    assert_eq!(second["cache_hit"], true, "{second}");
    assert_eq!(second["cache_layer"], "redis");
    assert_eq!(second["url"], first["url"]);
    assert_eq!(get_bytes(second["url"].as_str().unwrap()).await, b"cached");
    // Another purpose is another entry.
    let download = f
        .send("GET", &format!("{path}?purpose=download"), &alice, None)
        .await
        .json()["data"]
        .clone();
    assert_eq!(download["cache_hit"], false);
    // Authorization first: a user who may not read gets no cached URL.
    let r = f.send("GET", &path, &f.user("mallory", "evil"), None).await;
    assert_eq!(r.status, 404);
    // Deleted: nothing cached is answered.
    let r = f
        .send("DELETE", &format!("/storage/files/{id}"), &alice, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = f.send("GET", &path, &alice, None).await;
    assert_eq!(r.status, 404, "{}", r.text());
    let id2 = f.upload(&alice, "cache/b.txt", b"again").await;
    let path2 = format!("/storage/files/{id2}/url");
    assert_eq!(
        f.send("GET", &path2, &alice, None).await.json()["data"]["cache_hit"],
        false
    );
    assert_eq!(
        f.send("GET", &path2, &alice, None).await.json()["data"]["cache_hit"],
        true
    );
    let r = f
        .send(
            "POST",
            &format!("/storage/files/{id2}/visibility"),
            &alice,
            Some(json!({ "public": true })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        f.send("GET", &path2, &alice, None).await.json()["data"]["cache_hit"],
        false
    );
}

/// This process's resident set (kB): `VmRSS` of /proc/self/status.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The speed bar: moving 1 GiB through `PUT upload` and `proxy`
/// grows the server's RSS by < 32 MiB. The server runs in this process,
/// so its RSS is the test's: the body comes from a generator and the
/// proxied bytes are checked as they arrive (neither side holds the
/// file), and RSS is sampled throughout. Slow (minutes in a debug build)
/// and sensitive to other tests in the process: run it alone,
/// `cargo test --test it flat_rss -- --ignored --test-threads=1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "1 GiB through the server; run alone (see the doc comment)"]
async fn flat_rss_for_a_gib_through_upload_and_proxy() {
    use futures_util::StreamExt;
    const GIB: u64 = 1 << 30;
    const CHUNK: usize = 256 << 10;
    let s = TestServer::start_with(|c| allow(c, "127.0.0.1")).await;
    let f = Files::new(&s).await;
    let alice = f.user("alice", "acme");
    let base = format!("http://{}", s.addr);

    // Warm-up: one multipart-sized round trip, so pools and buffers exist.
    let warm = pending(&f, &alice, "rss/warm.bin").await;
    let (status, _, _) = raw(
        "PUT",
        &format!("{base}/storage/files/{warm}/upload"),
        &alice,
        full(content(0, 17 << 20)),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, _) = raw(
        "GET",
        &format!("{base}/storage/files/{warm}/proxy"),
        &alice,
        full(vec![]),
    )
    .await;
    assert_eq!(status, 200);

    let before = rss_kib();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let sampling = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
    };
    let started = std::time::Instant::now();
    let id = pending(&f, &alice, "rss/gib.bin").await;
    let chunks = futures_util::stream::iter((0..GIB / CHUNK as u64).map(|n| {
        Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(content(
            n * CHUNK as u64,
            CHUNK,
        ))))
    }));
    let body = BodyExt::boxed(StreamBody::new(chunks));
    let (status, _, answer) = raw(
        "PUT",
        &format!("{base}/storage/files/{id}/upload"),
        &with(&alice, &[("content-length", &GIB.to_string())]),
        body,
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let uploaded = started.elapsed();

    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<BoxBody>();
    let mut req = http::Request::builder().uri(format!("{base}/storage/files/{id}/proxy"));
    for (k, v) in &alice {
        req = req.header(k.as_str(), v.as_str());
    }
    let res = client
        .request(req.body(full(vec![])).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut seen = 0u64;
    let mut frames = res.into_body().into_data_stream();
    while let Some(chunk) = frames.next().await {
        let chunk = chunk.unwrap();
        assert!(
            chunk
                .iter()
                .enumerate()
                .all(|(i, b)| *b == byte_at(seen + i as u64)),
            "proxied bytes differ near {seen}"
        );
        seen += chunk.len() as u64;
    }
    assert_eq!(seen, GIB);
    sampling.abort();
    let grown = peak
        .load(std::sync::atomic::Ordering::Relaxed)
        .saturating_sub(before);
    eprintln!(
        "1 GiB: upload {:?}, upload + proxy {:?}, RSS {before} kB before, peak +{grown} kB",
        uploaded,
        started.elapsed()
    );
    assert!(grown < 32 * 1024, "RSS grew by {grown} kB moving 1 GiB");
}
