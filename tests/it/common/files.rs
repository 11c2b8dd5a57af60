//! Managed-file fixtures: a catalog on the test SeaweedFS with its bucket,
//! a `storage.files` key, end users by bearer JWT, and raw HTTP to
//! presigned URLs.

use super::{Reply, TestServer, ADMIN_KEY, CLIENT, TEST_JWT_SECRET};
use serde_json::{json, Value};

/// A bearer JWT for `user` of `org`, signed with `TEST_JWT_SECRET`.
pub fn jwt(user: &str, org: &str) -> String {
    let claims = json!({ "sub": user, "org_id": org, "exp": chrono::Utc::now().timestamp() + 600 });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

fn raw_client() -> hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<bytes::Bytes>,
> {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>()
}

/// PUTs `body` (text/plain) to a presigned URL; the status.
pub async fn put(url: &str, body: &[u8]) -> u16 {
    let req = http::Request::builder()
        .method("PUT")
        .uri(url)
        .header("content-type", "text/plain")
        .body(http_body_util::Full::new(bytes::Bytes::from(body.to_vec())))
        .unwrap();
    raw_client().request(req).await.unwrap().status().as_u16()
}

/// GETs a presigned URL; the bytes.
pub async fn get_bytes(url: &str) -> Vec<u8> {
    use http_body_util::BodyExt;
    let res = raw_client().get(url.parse().unwrap()).await.unwrap();
    res.into_body().collect().await.unwrap().to_bytes().to_vec()
}

/// A catalog (`s3_id`) whose bucket exists, and a `storage.files` key.
pub struct Files<'a> {
    pub s: &'a TestServer,
    pub s3_id: String,
    pub bucket: String,
    pub key: String,
}

impl<'a> Files<'a> {
    /// Creates the bucket and its catalog on the test store.
    pub async fn new(s: &'a TestServer) -> Files<'a> {
        let endpoint = std::env::var("S3_ENDPOINT").expect("S3_ENDPOINT");
        let bucket = format!(
            "it-files-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let admin = [("x-athena-key", ADMIN_KEY), ("x-athena-client", CLIENT)];
        let catalog = s
            .send(
                "POST",
                "/storage/catalogs",
                &admin,
                Some(json!({
                    "name": bucket, "endpoint": endpoint, "region": "us-east-1", "bucket": bucket,
                    "access_key_id": std::env::var("S3_ACCESS_KEY_ID").unwrap(),
                    "secret_key": std::env::var("S3_SECRET_ACCESS_KEY").unwrap(),
                })),
            )
            .await
            .json();
        let s3_id = catalog["id"].as_str().unwrap().to_string();
        let r = s
            .send(
                "POST",
                "/storage/buckets/create",
                &admin,
                Some(json!({ "s3_id": s3_id, "bucket": bucket })),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let key = s.api_key(&["storage.files"], None).await;
        Files {
            s,
            s3_id,
            bucket,
            key,
        }
    }

    /// The headers of `user` of `org` (bearer JWT, the `storage.files` key).
    pub fn user(&self, user: &str, org: &str) -> Vec<(String, String)> {
        self.bearer(jwt(user, org))
    }

    /// The headers of a bearer `token` (the `storage.files` key).
    pub fn bearer(&self, token: String) -> Vec<(String, String)> {
        vec![
            ("x-athena-key".to_string(), self.key.clone()),
            ("x-athena-client".to_string(), CLIENT.to_string()),
            ("authorization".to_string(), format!("Bearer {token}")),
        ]
    }

    /// Sends a request with owned headers.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Option<Value>,
    ) -> Reply {
        let h: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.s.send(method, path, &h, body).await
    }

    /// An available file at `key` holding `bytes`, uploaded and confirmed
    /// by `who`; its id.
    pub async fn upload(&self, who: &[(String, String)], key: &str, bytes: &[u8]) -> String {
        let r = self
            .send(
                "POST",
                "/storage/files/upload-url",
                who,
                Some(json!({ "s3_id": self.s3_id, "storage_key": key, "content_type": "text/plain" })),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let d = r.json()["data"].clone();
        assert_eq!(put(d["upload"]["url"].as_str().unwrap(), bytes).await, 200);
        let id = d["file"]["id"].as_str().unwrap().to_string();
        let r = self
            .send(
                "POST",
                &format!("/storage/files/{id}/confirm-upload"),
                who,
                Some(json!({})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        id
    }
}

/// The test store, reached directly (switching versioning on, creating an
/// Object Lock bucket: no route does either).
pub fn direct() -> (athena::storage::s3::S3, athena::storage::s3::Store) {
    let endpoint = std::env::var("S3_ENDPOINT").expect("S3_ENDPOINT");
    let store = athena::storage::s3::Store {
        endpoint: athena::storage::endpoint::Endpoint {
            https: false,
            host: "127.0.0.1".into(),
            port: endpoint.rsplit(':').next().unwrap().parse().unwrap(),
        },
        region: "us-east-1".into(),
        access_key: std::env::var("S3_ACCESS_KEY_ID").unwrap(),
        secret_key: std::env::var("S3_SECRET_ACCESS_KEY").unwrap(),
        session_token: None,
    };
    let policy = std::sync::Arc::new(athena::outbound::OutboundPolicy::new(
        athena::outbound::parse_allow_list("127.0.0.1").unwrap(),
    ));
    (athena::storage::s3::S3::new(&policy), store)
}

pub async fn enable_versioning(bucket: &str) {
    let (s3, store) = direct();
    let enable = athena::storage::s3::Call::new(http::Method::PUT, Some(bucket), None)
        .query("versioning", "")
        .document(
            "application/xml",
            "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>Enabled</Status></VersioningConfiguration>".into(),
        )
        .unwrap();
    s3.send(&store, enable, bucket).await.unwrap();
}
