//! The S3 layer on the test SeaweedFS (`S3_ENDPOINT`): a catalog, a bucket,
//! presigned upload and download of real bytes, head/exists/validate,
//! copy, folders (1,500 keys deleted in batches), versions, CORS and
//! lifecycle, credential rotation, and the refusals. Every effect is read
//! back through S3.

use crate::common::{allow, TestServer, ADMIN_KEY, CLIENT};
use serde_json::{json, Value};

const H: [(&str, &str); 2] = [("x-athena-key", ADMIN_KEY), ("x-athena-client", CLIENT)];

struct S3Env {
    endpoint: String,
    access_key: String,
    secret_key: String,
}

fn s3_env() -> S3Env {
    S3Env {
        endpoint: std::env::var("S3_ENDPOINT").expect("S3_ENDPOINT (the test SeaweedFS)"),
        access_key: std::env::var("S3_ACCESS_KEY_ID").unwrap_or_default(),
        secret_key: std::env::var("S3_SECRET_ACCESS_KEY").unwrap_or_default(),
    }
}

/// A bucket name no other test uses.
fn bucket_name(tag: &str) -> String {
    format!(
        "it-{tag}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

async fn server() -> TestServer {
    TestServer::start_with(|c| allow(c, "127.0.0.1")).await
}

/// Creates a catalog for the test store and returns its id.
async fn catalog(s: &TestServer, bucket: &str, secret: &str) -> String {
    let env = s3_env();
    let r = s
        .send(
            "POST",
            "/storage/catalogs",
            &H,
            Some(json!({
                "name": format!("store-{bucket}"),
                "endpoint": env.endpoint,
                "region": "us-east-1",
                "bucket": bucket,
                "provider": "custom_s3",
                "access_key_id": env.access_key,
                "secret_key": secret,
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["id"].as_str().unwrap().to_string()
}

/// `POST path` with `body` merged into `{s3_id, bucket}`; the `data` of a 200.
async fn call(s: &TestServer, path: &str, base: &Value, body: Value) -> Value {
    let r = send(s, path, base, body).await;
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    let v = r.json();
    assert_eq!(v["status"], "success", "{path}: {v}");
    v["data"].clone()
}

async fn send(s: &TestServer, path: &str, base: &Value, body: Value) -> crate::common::Reply {
    let mut merged = base.clone();
    for (k, v) in body.as_object().unwrap() {
        merged[k] = v.clone();
    }
    s.send("POST", path, &H, Some(merged)).await
}

async fn http(
    method: &str,
    url: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, Vec<u8>) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let mut req = http::Request::builder().method(method).uri(url);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let res = client
        .request(
            req.body(http_body_util::Full::new(bytes::Bytes::from(body)))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = res.status().as_u16();
    use http_body_util::BodyExt;
    let bytes = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, bytes)
}

#[tokio::test]
async fn objects_flow_on_a_real_store() {
    let s = server().await;
    let env = s3_env();
    let bucket = bucket_name("flow");
    let id = catalog(&s, &bucket, &env.secret_key).await;
    let base = json!({ "s3_id": id, "bucket": bucket });

    // Bucket: created, listed.
    let d = call(&s, "/storage/buckets/create", &base, json!({})).await;
    assert_eq!(d["created"], true);
    let d = call(
        &s,
        "/storage/buckets/list",
        &json!({ "s3Id": id }),
        json!({}),
    )
    .await;
    assert!(
        d["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["name"] == bucket.as_str()),
        "{d}"
    );

    // Presigned upload, real bytes with curl's verb, then presigned download.
    let d = call(
        &s,
        "/storage/objects/upload-url",
        &base,
        json!({ "key": "docs/a.txt", "content_type": "text/plain" }),
    )
    .await;
    assert_eq!(d["method"], "PUT");
    assert_eq!(d["headers"]["Content-Type"], "text/plain");
    let (status, _) = http(
        "PUT",
        d["url"].as_str().unwrap(),
        Some("text/plain"),
        b"hello athena".to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    // The signed content type is enforced.
    let (status, _) = http(
        "PUT",
        d["url"].as_str().unwrap(),
        Some("image/png"),
        b"x".to_vec(),
    )
    .await;
    assert_eq!(
        status, 403,
        "a different Content-Type must not match the signature"
    );

    let head = call(
        &s,
        "/storage/objects/head",
        &base,
        json!({ "key": "docs/a.txt" }),
    )
    .await;
    assert_eq!(head["size"], 12);
    assert_eq!(head["content_type"], "text/plain");
    let etag = head["etag"].as_str().unwrap().to_string();
    assert_eq!(etag, format!("{:x}", md5::compute(b"hello athena")));
    let d = call(
        &s,
        "/storage/objects/exists",
        &base,
        json!({ "key": "docs/a.txt" }),
    )
    .await;
    assert_eq!(d["exists"], true);
    let d = call(
        &s,
        "/storage/objects/exists",
        &base,
        json!({ "key": "docs/none.txt" }),
    )
    .await;
    assert_eq!(d["exists"], false);
    let d = call(
        &s,
        "/storage/objects/validate",
        &base,
        json!({ "key": "docs/a.txt", "etag": etag }),
    )
    .await;
    assert_eq!(d["valid"], true);
    let d = call(
        &s,
        "/storage/objects/validate",
        &base,
        json!({ "key": "docs/a.txt", "etag": "0000" }),
    )
    .await;
    assert_eq!(d["valid"], false);

    let d = call(
        &s,
        "/storage/objects/url",
        &base,
        json!({ "key": "docs/a.txt" }),
    )
    .await;
    assert_eq!(d["expires_in"], 900);
    let (status, bytes) = http("GET", d["url"].as_str().unwrap(), None, vec![]).await;
    assert_eq!((status, bytes.as_slice()), (200, &b"hello athena"[..]));

    // Metadata update (self-copy), read back through HEAD.
    let d = call(&s, "/storage/objects/update", &base, json!({ "key": "docs/a.txt", "content_type": "text/markdown", "cache_control": "max-age=60", "metadata": { "owner": "ada" } })).await;
    assert_eq!(d["content_type"], "text/markdown");
    let head = call(
        &s,
        "/storage/objects/head",
        &base,
        json!({ "key": "docs/a.txt" }),
    )
    .await;
    assert_eq!(head["content_type"], "text/markdown");
    assert_eq!(head["cache_control"], "max-age=60");
    assert_eq!(head["metadata"]["owner"], "ada");
    assert_eq!(head["size"], 12, "the bytes survive a metadata update");

    // Copy, read back as bytes.
    let d = call(
        &s,
        "/storage/objects/copy",
        &base,
        json!({ "source_key": "docs/a.txt", "destination_key": "docs/b.txt" }),
    )
    .await;
    assert_eq!(d["destination_key"], "docs/b.txt");
    let d = call(
        &s,
        "/storage/objects/url",
        &base,
        json!({ "key": "docs/b.txt" }),
    )
    .await;
    let (_, bytes) = http("GET", d["url"].as_str().unwrap(), None, vec![]).await;
    assert_eq!(bytes, b"hello athena");

    // Folder, rename (then re-run: nothing left to move), listing.
    let d = call(
        &s,
        "/storage/objects/folder",
        &base,
        json!({ "prefix": "empty" }),
    )
    .await;
    assert_eq!(d["key"], "empty/");
    let d = call(
        &s,
        "/storage/objects/folder/rename",
        &base,
        json!({ "from_prefix": "docs/", "to_prefix": "archive/" }),
    )
    .await;
    assert_eq!(d["moved"], 2);
    let d = call(
        &s,
        "/storage/objects/folder/rename",
        &base,
        json!({ "from_prefix": "docs/", "to_prefix": "archive/" }),
    )
    .await;
    assert_eq!(d["moved"], 0);
    let d = call(
        &s,
        "/storage/objects",
        &base,
        json!({ "prefix": "", "delimiter": "/" }),
    )
    .await;
    let prefixes: Vec<&str> = d["common_prefixes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    // (SeaweedFS may keep showing an emptied directory as a prefix.)
    assert!(
        prefixes.contains(&"archive/") && prefixes.contains(&"empty/"),
        "{d}"
    );
    let d = call(&s, "/storage/objects", &base, json!({ "prefix": "docs/" })).await;
    assert_eq!(
        d["key_count"], 0,
        "nothing is left under the old prefix: {d}"
    );
    let d = call(
        &s,
        "/storage/objects",
        &base,
        json!({ "prefix": "archive/" }),
    )
    .await;
    let keys: Vec<&str> = d["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["archive/a.txt", "archive/b.txt"]);

    // Public URL: path-style on the endpoint, or under a CDN base.
    let d = call(
        &s,
        "/storage/objects/public-url",
        &base,
        json!({ "key": "archive/a b.txt" }),
    )
    .await;
    assert_eq!(
        d["url"],
        format!("{}/{bucket}/archive/a%20b.txt", env.endpoint)
    );
    let d = call(
        &s,
        "/storage/objects/public-url",
        &base,
        json!({ "key": "a.txt", "public_base_url": "https://cdn.example.com/files/" }),
    )
    .await;
    assert_eq!(d["url"], "https://cdn.example.com/files/a.txt");

    // Delete one object, then the non-empty bucket is refused.
    call(
        &s,
        "/storage/objects/delete",
        &base,
        json!({ "key": "archive/b.txt" }),
    )
    .await;
    let d = call(
        &s,
        "/storage/objects/exists",
        &base,
        json!({ "key": "archive/b.txt" }),
    )
    .await;
    assert_eq!(d["exists"], false);
    let r = send(&s, "/storage/buckets/delete", &base, json!({})).await;
    assert_eq!(r.status, 400, "{}", r.text());

    // Folder delete empties it; the bucket then goes.
    let d = call(
        &s,
        "/storage/objects/folder/delete",
        &base,
        json!({ "prefix": "archive" }),
    )
    .await;
    assert_eq!(d["deleted"], 1);
    call(
        &s,
        "/storage/objects/folder/delete",
        &base,
        json!({ "prefix": "empty/" }),
    )
    .await;
    let d = call(&s, "/storage/buckets/delete", &base, json!({})).await;
    assert_eq!(d["deleted"], true);
    let d = call(&s, "/storage/buckets/list", &base, json!({})).await;
    assert!(!d["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b["name"] == bucket.as_str()));
}

#[tokio::test]
async fn folder_delete_pages_and_batches_1500_keys() {
    let s = server().await;
    let env = s3_env();
    let bucket = bucket_name("many");
    let id = catalog(&s, &bucket, &env.secret_key).await;
    let base = json!({ "s3_id": id, "bucket": bucket });
    call(&s, "/storage/buckets/create", &base, json!({})).await;
    // 1,500 zero-byte objects, 32 at a time.
    let keys: Vec<String> = (0..1500).map(|i| format!("bulk/{i:04}")).collect();
    for chunk in keys.chunks(32) {
        let mut calls = Vec::new();
        for key in chunk {
            calls.push(call(
                &s,
                "/storage/objects/folder",
                &base,
                json!({ "prefix": key }),
            ));
        }
        futures_util::future::join_all(calls).await;
    }
    let d = call(
        &s,
        "/storage/objects",
        &base,
        json!({ "prefix": "bulk/", "max_keys": 1000 }),
    )
    .await;
    assert_eq!(d["key_count"], 1000);
    assert_eq!(d["is_truncated"], true);
    let token = d["next_continuation_token"].as_str().unwrap().to_string();
    let d = call(
        &s,
        "/storage/objects",
        &base,
        json!({ "prefix": "bulk/", "continuation_token": token }),
    )
    .await;
    assert_eq!(d["key_count"], 200, "max_keys defaults to 200");

    let d = call(
        &s,
        "/storage/objects/folder/delete",
        &base,
        json!({ "prefix": "bulk" }),
    )
    .await;
    assert_eq!(d["deleted"], 1500);
    let d = call(&s, "/storage/objects", &base, json!({ "prefix": "bulk/" })).await;
    assert_eq!(d["key_count"], 0);
    call(&s, "/storage/buckets/delete", &base, json!({})).await;
}

#[tokio::test]
async fn bucket_rules_versions_and_inline_credentials() {
    let s = server().await;
    let env = s3_env();
    let bucket = bucket_name("rules");
    // The contract's inline credentials instead of a catalog.
    let base = json!({
        "endpoint": env.endpoint, "region": "us-east-1",
        "access_key_id": env.access_key, "secret_key": env.secret_key, "bucket": bucket,
    });
    call(&s, "/storage/buckets/create", &base, json!({})).await;

    // CORS: set, read back, delete, read back empty.
    let rules = json!([{ "allowed_origins": ["https://app.example"], "allowed_methods": ["GET", "PUT"], "allowed_headers": ["*"], "max_age_seconds": 300 }]);
    let r = send(
        &s,
        "/storage/buckets/cors/set",
        &base,
        json!({ "rules": rules }),
    )
    .await;
    eprintln!("cors/set on this store: {}", r.status);
    match r.status {
        200 => {
            let d = call(&s, "/storage/buckets/cors", &base, json!({})).await;
            assert_eq!(
                d["rules"][0]["allowed_origins"],
                json!(["https://app.example"]),
                "{d}"
            );
            assert_eq!(d["rules"][0]["max_age_seconds"], 300);
            call(&s, "/storage/buckets/cors/delete", &base, json!({})).await;
            let d = call(&s, "/storage/buckets/cors", &base, json!({})).await;
            assert_eq!(d["rules"], json!([]));
        }
        501 => assert_eq!(r.json()["code"], "not_implemented"),
        other => panic!("cors/set: {other} {}", r.text()),
    }

    // Lifecycle: the store implements it, or the documented 501.
    let r = send(
        &s,
        "/storage/buckets/lifecycle/set",
        &base,
        json!({ "rules": [{ "prefix": "tmp/", "expiration_days": 7 }] }),
    )
    .await;
    eprintln!("lifecycle/set on this store: {} {}", r.status, r.text());
    match r.status {
        200 => {
            let d = call(&s, "/storage/buckets/lifecycle", &base, json!({})).await;
            assert_eq!(d["rules"][0]["expiration_days"], 7, "{d}");
            call(&s, "/storage/buckets/lifecycle/delete", &base, json!({})).await;
        }
        501 => assert_eq!(r.json()["code"], "not_implemented", "{}", r.text()),
        other => panic!("lifecycle/set: {other} {}", r.text()),
    }

    // Versions: listed (one version per key on an unversioned bucket), or 501.
    call(
        &s,
        "/storage/objects/folder",
        &base,
        json!({ "prefix": "v" }),
    )
    .await;
    let r = send(
        &s,
        "/storage/objects/versions",
        &base,
        json!({ "key": "v/" }),
    )
    .await;
    eprintln!("versions on this store: {} {}", r.status, r.text());
    match r.status {
        200 => {
            let d = r.json()["data"].clone();
            let versions = d["versions"].as_array().unwrap();
            assert_eq!(versions.len(), 1, "{d}");
            assert_eq!(versions[0]["key"], "v/");
        }
        501 => assert_eq!(r.json()["code"], "not_implemented"),
        other => panic!("versions: {other} {}", r.text()),
    }
    call(
        &s,
        "/storage/objects/folder/delete",
        &base,
        json!({ "prefix": "v" }),
    )
    .await;
    call(&s, "/storage/buckets/delete", &base, json!({})).await;
}

#[tokio::test]
async fn credentials_rotate_and_wrong_secrets_are_a_clear_4xx() {
    let s = server().await;
    let env = s3_env();
    let bucket = bucket_name("rot");
    let id = catalog(&s, &bucket, "not-the-secret").await;
    let base = json!({ "s3_id": id, "bucket": bucket });
    let r = send(&s, "/storage/buckets/create", &base, json!({})).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("credentials"), "{}", r.text());
    assert!(!r.text().contains("<Error>"));

    // Rotate to the right secret: the same catalog now works.
    let r = s
        .send(
            "PATCH",
            &format!("/storage/catalogs/{id}"),
            &H,
            Some(json!({ "access_key_id": env.access_key, "secret_key": env.secret_key })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    call(&s, "/storage/buckets/create", &base, json!({})).await;
    let d = call(&s, "/storage/objects", &base, json!({})).await;
    assert_eq!(d["key_count"], 0);
    call(&s, "/storage/buckets/delete", &base, json!({})).await;
}

#[tokio::test]
async fn bad_input_and_auth_are_refused_before_s3() {
    let s = server().await;
    let env = s3_env();
    let id = catalog(&s, "never-created", &env.secret_key).await;
    let base = json!({ "s3_id": id, "bucket": "never-created" });
    for (path, body) in [
        ("/storage/objects/head", json!({ "key": "../etc/passwd" })),
        ("/storage/objects/head", json!({ "key": "/abs" })),
        ("/storage/objects/head", json!({ "key": "a\\b" })),
        ("/storage/objects/head", json!({ "key": "a\u{0}b" })),
        ("/storage/objects/head", json!({ "key": "k".repeat(1025) })),
        ("/storage/objects/folder/delete", json!({ "prefix": "" })),
        ("/storage/objects/folder/delete", json!({ "prefix": "/" })),
        (
            "/storage/objects/folder/rename",
            json!({ "from_prefix": "a/", "to_prefix": "a/b/" }),
        ),
        (
            "/storage/objects/url",
            json!({ "key": "a", "expires_in": 604801 }),
        ),
        ("/storage/objects", json!({ "max_keys": 1001 })),
        (
            "/storage/objects/head",
            json!({ "key": "a", "bucket": "Bad_Bucket" }),
        ),
        (
            "/storage/objects/head",
            json!({ "key": "a", "s3_id": "not-a-uuid" }),
        ),
    ] {
        let r = send(&s, path, &base, body.clone()).await;
        assert_eq!(r.status, 400, "{path} {body}: {}", r.text());
        assert_eq!(r.json()["status"], "error");
    }
    // Another client's (or an unknown) catalog: 404.
    let r = send(
        &s,
        "/storage/objects/head",
        &base,
        json!({ "key": "a", "s3_id": uuid::Uuid::new_v4().to_string() }),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    // Private and metadata endpoints are refused inline (only 127.0.0.1 is allowed).
    for endpoint in [
        "http://10.0.0.1:9000",
        "http://169.254.169.254",
        "http://[::1]:8333",
    ] {
        let body = json!({ "endpoint": endpoint, "region": "us-east-1", "access_key_id": "a", "secret_key": "b", "bucket": "abc", "key": "k" });
        let r = s
            .send("POST", "/storage/objects/head", &H, Some(body))
            .await;
        assert_eq!(r.status, 403, "{endpoint}: {}", r.text());
    }
    // Auth first: no key → 401 even with a broken body and keys not enforced.
    let r = s
        .send_raw(
            "POST",
            "/storage/objects/head",
            &[
                ("x-athena-client", CLIENT),
                ("content-type", "application/json"),
            ],
            bytes::Bytes::from_static(b"{not json"),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    // A key without the storage right: 403; with it: through.
    let reader = s.api_key(&["gateway.fetch.execute"], None).await;
    let storage = s.api_key(&["gateway.storage_proxy"], None).await;
    let body = json!({ "s3_id": id, "bucket": "never-created", "key": "a" });
    let r = s
        .send(
            "POST",
            "/storage/objects/exists",
            &[
                ("x-athena-key", reader.as_str()),
                ("x-athena-client", CLIENT),
            ],
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = s
        .send(
            "POST",
            "/storage/objects/url",
            &[
                ("x-athena-key", storage.as_str()),
                ("x-athena-client", CLIENT),
            ],
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // ACLs granting anyone beyond the owner need storage.admin on top
    // (authenticated-read is every AWS account).
    for acl in [
        "public-read",
        "public-read-write",
        "authenticated-read",
        "aws-exec-read",
    ] {
        let mut public = body.clone();
        public["acl"] = json!(acl);
        let r = s
            .send(
                "POST",
                "/storage/objects/update",
                &[
                    ("x-athena-key", storage.as_str()),
                    ("x-athena-client", CLIENT),
                ],
                Some(public),
            )
            .await;
        assert_eq!(r.status, 403, "{acl}: {}", r.text());
    }
    // Header values S3 cannot sign as text: a 400, never a 500.
    let env_base = json!({
        "endpoint": env.endpoint, "region": "us-east-1", "access_key_id": env.access_key,
        "secret_key": env.secret_key, "bucket": "never-created", "key": "k",
    });
    let mut bad = env_base.clone();
    bad["metadata"] = json!({ "author": "Müller" });
    let r = s
        .send("POST", "/storage/objects/update", &H, Some(bad))
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    // A host URL parsers read as a bad IPv4 address: a 400 too.
    let mut bad = env_base.clone();
    bad["endpoint"] = json!("http://s3.example.1");
    let r = s.send("POST", "/storage/objects/head", &H, Some(bad)).await;
    assert_eq!(r.status, 400, "{}", r.text());
}

#[tokio::test]
async fn versions_restore_and_delete_on_a_versioned_bucket() {
    let s = server().await;
    let env = s3_env();
    let bucket = bucket_name("ver");
    let id = catalog(&s, &bucket, &env.secret_key).await;
    let base = json!({ "s3_id": id, "bucket": bucket });
    call(&s, "/storage/buckets/create", &base, json!({})).await;
    // Versioning is switched on at the store (no route does that).
    let store = athena::storage::s3::Store {
        endpoint: athena::storage::endpoint::Endpoint {
            https: false,
            host: "127.0.0.1".into(),
            port: env.endpoint.rsplit(':').next().unwrap().parse().unwrap(),
        },
        region: "us-east-1".into(),
        access_key: env.access_key.clone(),
        secret_key: env.secret_key.clone(),
        session_token: None,
    };
    let policy = std::sync::Arc::new(athena::outbound::OutboundPolicy::new(
        athena::outbound::parse_allow_list("127.0.0.1").unwrap(),
    ));
    let s3 = athena::storage::s3::S3::new(&policy);
    let enable = athena::storage::s3::Call::new(http::Method::PUT, Some(&bucket), None)
        .query("versioning", "")
        .document(
            "application/xml",
            "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>Enabled</Status></VersioningConfiguration>".into(),
        )
        .unwrap();
    s3.send(&store, enable, &bucket).await.unwrap();

    for body in ["first", "second"] {
        let d = call(
            &s,
            "/storage/objects/upload-url",
            &base,
            json!({ "key": "v.txt" }),
        )
        .await;
        let (status, _) = http(
            "PUT",
            d["url"].as_str().unwrap(),
            None,
            body.as_bytes().to_vec(),
        )
        .await;
        assert_eq!(status, 200);
    }
    let d = call(
        &s,
        "/storage/objects/versions",
        &base,
        json!({ "key": "v.txt" }),
    )
    .await;
    let versions = d["versions"].as_array().unwrap().clone();
    assert_eq!(versions.len(), 2, "{d}");
    let oldest = versions.iter().find(|v| v["is_latest"] == false).unwrap();
    let oldest_id = oldest["version_id"].as_str().unwrap().to_string();

    // Restore the first version: the key reads "first" again.
    let d = call(
        &s,
        "/storage/objects/versions/restore",
        &base,
        json!({ "key": "v.txt", "version_id": oldest_id }),
    )
    .await;
    assert_eq!(d["restored_version_id"], oldest_id.as_str());
    let d = call(&s, "/storage/objects/url", &base, json!({ "key": "v.txt" })).await;
    let (_, bytes) = http("GET", d["url"].as_str().unwrap(), None, vec![]).await;
    assert_eq!(bytes, b"first");
    let d = call(
        &s,
        "/storage/objects/versions",
        &base,
        json!({ "key": "v.txt" }),
    )
    .await;
    assert_eq!(d["versions"].as_array().unwrap().len(), 3, "{d}");

    // Delete that old version: it is gone from the list.
    call(
        &s,
        "/storage/objects/versions/delete",
        &base,
        json!({ "key": "v.txt", "version_id": oldest_id }),
    )
    .await;
    let d = call(
        &s,
        "/storage/objects/versions",
        &base,
        json!({ "key": "v.txt" }),
    )
    .await;
    let left = d["versions"].as_array().unwrap();
    assert_eq!(left.len(), 2, "{d}");
    assert!(left.iter().all(|v| v["version_id"] != oldest_id.as_str()));
    // An unknown version: 404 or the store's 400, never a 500.
    let r = send(
        &s,
        "/storage/objects/versions/delete",
        &base,
        json!({ "key": "v.txt", "version_id": "nope" }),
    )
    .await;
    assert!(r.status < 500, "{}", r.text());
}

#[tokio::test]
async fn sdk_routes_policy_public_access_post_policy_and_connection_test() {
    let s = server().await;
    let env = s3_env();
    let bucket = bucket_name("sdk");
    let id = catalog(&s, &bucket, &env.secret_key).await;
    // The SDK's camelCase selector.
    let base = json!({ "s3Id": id, "bucket": bucket });
    call(&s, "/storage/buckets/create", &base, json!({})).await;

    // POST policy: a browser form upload of real bytes within the size range.
    let d = call(&s, "/storage/objects/post-policy", &base, json!({ "key": "form/upload.txt", "content_type": "text/plain", "max_size": 1024, "expires_in": 600 })).await;
    assert_eq!(d["method"], "POST");
    assert_eq!(d["url"], format!("{}/{bucket}", env.endpoint));
    let fields = d["fields"].as_object().unwrap().clone();
    for f in [
        "key",
        "policy",
        "x-amz-algorithm",
        "x-amz-credential",
        "x-amz-date",
        "x-amz-signature",
        "Content-Type",
    ] {
        assert!(fields.contains_key(f), "{f} missing: {d}");
    }
    let boundary = "athena-test-boundary";
    let mut form = Vec::new();
    for (k, v) in &fields {
        form.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{}\r\n",
                v.as_str().unwrap()
            )
            .as_bytes(),
        );
    }
    form.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"upload.txt\"\r\nContent-Type: text/plain\r\n\r\nform bytes\r\n--{boundary}--\r\n").as_bytes());
    let (status, body) = http(
        "POST",
        d["url"].as_str().unwrap(),
        Some(&format!("multipart/form-data; boundary={boundary}")),
        form,
    )
    .await;
    eprintln!("post-policy upload on this store: {status}");
    if (200..300).contains(&status) {
        let head = call(
            &s,
            "/storage/objects/head",
            &base,
            json!({ "key": "form/upload.txt" }),
        )
        .await;
        assert_eq!(head["size"], 10, "{head}");
    } else {
        assert!(
            status == 501 || status == 400,
            "{status} {}",
            String::from_utf8_lossy(&body)
        );
    }
    let r = send(
        &s,
        "/storage/objects/post-policy",
        &base,
        json!({ "key": "k", "expires_in": 3601 }),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = send(
        &s,
        "/storage/objects/post-policy",
        &base,
        json!({ "key": "k", "min_size": 10, "max_size": 5 }),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());

    // Bucket policy and public-access block: set and read back, or the documented 501.
    let policy = json!({ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"], "Resource": [format!("arn:aws:s3:::{bucket}/public/*")] }] });
    let r = send(
        &s,
        "/storage/buckets/policy/set",
        &base,
        json!({ "policy": policy }),
    )
    .await;
    eprintln!("policy/set on this store: {} {}", r.status, r.text());
    match r.status {
        200 => {
            let d = call(&s, "/storage/buckets/policy", &base, json!({})).await;
            assert_eq!(d["configured"], true, "{d}");
            assert_eq!(d["policy"]["Statement"][0]["Effect"], "Allow");
            call(&s, "/storage/buckets/policy/delete", &base, json!({})).await;
            let d = call(&s, "/storage/buckets/policy", &base, json!({})).await;
            assert_eq!(d["configured"], false, "{d}");
        }
        501 => assert_eq!(r.json()["code"], "not_implemented"),
        other => panic!("policy/set: {other} {}", r.text()),
    }
    let r = send(
        &s,
        "/storage/buckets/policy/set",
        &base,
        json!({ "policy": "not json" }),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = send(
        &s,
        "/storage/buckets/public-access/set",
        &base,
        json!({ "block_public_acls": true, "block_public_policy": true }),
    )
    .await;
    eprintln!("public-access/set on this store: {} {}", r.status, r.text());
    match r.status {
        200 => {
            let d = call(&s, "/storage/buckets/public-access", &base, json!({})).await;
            assert_eq!(
                (
                    d["block_public_acls"].clone(),
                    d["ignore_public_acls"].clone()
                ),
                (json!(true), json!(false)),
                "{d}"
            );
            call(
                &s,
                "/storage/buckets/public-access/delete",
                &base,
                json!({}),
            )
            .await;
            let d = call(&s, "/storage/buckets/public-access", &base, json!({})).await;
            assert_eq!(d["configured"], false, "{d}");
        }
        501 => assert_eq!(r.json()["code"], "not_implemented"),
        other => panic!("public-access/set: {other} {}", r.text()),
    }
    // Changing them needs storage.admin; reading them the storage right.
    let proxy = s.api_key(&["gateway.storage_proxy"], None).await;
    let mut b = base.clone();
    b["policy"] = policy.clone();
    let r = s
        .send(
            "POST",
            "/storage/buckets/policy/set",
            &[
                ("x-athena-key", proxy.as_str()),
                ("x-athena-client", CLIENT),
            ],
            Some(b),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = s
        .send(
            "POST",
            "/storage/buckets/public-access",
            &[
                ("x-athena-key", proxy.as_str()),
                ("x-athena-client", CLIENT),
            ],
            Some(base.clone()),
        )
        .await;
    assert_ne!(r.status, 403, "{}", r.text());

    // Connection test: the SDK's flat body; right secret → ok, wrong → a clear 400,
    // unknown bucket → 404; nothing stored.
    let conn = |secret: &str, bucket: &str| {
        json!({
            "name": "probe", "provider": "minio", "endpoint": env.endpoint, "region": "us-east-1",
            "bucket": bucket, "accessKeyId": env.access_key, "secretAccessKey": secret,
        })
    };
    let before = s.send("GET", "/storage/catalogs", &H, None).await.json()["data"]
        .as_array()
        .unwrap()
        .len();
    let r = s
        .send(
            "POST",
            "/storage/connections/test",
            &H,
            Some(conn(&env.secret_key, &bucket)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["ok"], true);
    assert_eq!(r.json()["data"]["config"]["bucket"], bucket.as_str());
    let r = s
        .send(
            "POST",
            "/storage/connections/test",
            &H,
            Some(conn("wrong-secret", &bucket)),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("credentials"), "{}", r.text());
    assert!(!r.text().contains("wrong-secret"));
    let r = s
        .send(
            "POST",
            "/storage/connections/test",
            &H,
            Some(conn(&env.secret_key, "no-such-bucket-athena")),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let after = s.send("GET", "/storage/catalogs", &H, None).await.json()["data"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after, "a test stores nothing");

    call(
        &s,
        "/storage/objects/folder/delete",
        &base,
        json!({ "prefix": "form" }),
    )
    .await;
    call(&s, "/storage/buckets/delete", &base, json!({})).await;
}
