//! The SDK's storage connections and providers (`/storage/connections*`,
//! `/storage/providers`; SDK-only operations of `openapi/sdk-overlay.yaml`):
//! the camelCase view of the S3 catalog rows, always keyed, never a secret.

use crate::common::{allow, TestServer, ADMIN_KEY, CLIENT};
use serde_json::{json, Value};

const H: [(&str, &str); 2] = [("x-athena-key", ADMIN_KEY), ("x-athena-client", CLIENT)];
const SECRET: &str = "conn-s3cr3t-Must-Not-Leak";
const TOKEN: &str = "conn-session-Token-Must-Not-Leak";

/// What the SDK sends (`serializeConnectionInput`: flat camelCase).
fn sdk_body(name: &str) -> Value {
    json!({
        "name": name,
        "provider": "minio",
        "description": "local store",
        "bucket": "app-files",
        "endpoint": "http://127.0.0.1:8333",
        "region": "us-east-1",
        "forcePathStyle": false,
        "publicBaseUrl": "https://cdn.example.com/files",
        "defaultPrefix": "uploads/",
        "metadata": {"team": "web"},
        "accessKeyId": "AKIACONN",
        "secretAccessKey": SECRET,
        "sessionToken": TOKEN,
    })
}

async fn server() -> TestServer {
    TestServer::start_with(|c| allow(c, "127.0.0.1")).await
}

/// Every answer of a test, to check that no secret ever leaves.
#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    fn keep(&mut self, r: &crate::common::Reply) {
        self.0.push(r.text());
    }

    fn assert_no_secret(&self) {
        for text in &self.0 {
            assert!(
                !text.contains(SECRET) && !text.contains(TOKEN),
                "a secret leaked: {text}"
            );
        }
    }
}

#[tokio::test]
async fn connections_are_the_catalog_rows() {
    let s = server().await;
    let mut seen = Seen::default();

    // Created through the SDK's route ...
    let r = s
        .send(
            "POST",
            "/storage/connections",
            &H,
            Some(sdk_body("primary")),
        )
        .await;
    seen.keep(&r);
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["status"], "success");
    let c = &body["data"]["connection"];
    let id = c["id"].as_str().unwrap().to_string();
    assert_eq!(c["name"], "primary");
    assert_eq!(c["description"], "local store");
    assert_eq!(c["providerId"], "minio");
    assert_eq!(c["protocol"], "s3_compatible");
    assert_eq!(c["isActive"], true);
    assert_eq!(
        c["config"],
        json!({
            "bucket": "app-files", "endpoint": "http://127.0.0.1:8333", "region": "us-east-1",
            "forcePathStyle": false, "metadata": {"team": "web"},
            "publicBaseUrl": "https://cdn.example.com/files", "defaultPrefix": "uploads/",
        })
    );
    assert_eq!(c["credentialState"]["configured"], true);
    let credential = c["credentialState"]["activeCredentialId"]
        .as_str()
        .unwrap()
        .to_string();

    // ... is a catalog, with its credential.
    let r = s.send("GET", "/storage/catalogs", &H, None).await;
    seen.keep(&r);
    let catalogs = r.json()["data"].as_array().unwrap().clone();
    assert_eq!(catalogs.len(), 1);
    assert_eq!(catalogs[0]["id"], id.as_str());
    assert_eq!(catalogs[0]["provider"], "minio");
    assert_eq!(catalogs[0]["bucket"], "app-files");
    assert_eq!(catalogs[0]["active_access_key"], "AKIACONN");
    assert_eq!(catalogs[0]["active_credential_id"], credential.as_str());
    let r = s.send("GET", "/storage/credentials", &H, None).await;
    seen.keep(&r);
    assert_eq!(r.json()["data"][0]["s3_id"], id.as_str());

    // A catalog created through the contract's route is a connection.
    let r = s
        .send(
            "POST",
            "/storage/catalogs",
            &H,
            Some(json!({
                "name": "legacy", "endpoint": "https://s3.example.com", "region": "eu-west-3",
                "provider": "aws_s3", "access_key_id": "AKIALEGACY", "secret_key": SECRET,
                "metadata": {"owner": "ops"},
            })),
        )
        .await;
    seen.keep(&r);
    assert_eq!(r.status, 200, "{}", r.text());
    let legacy = r.json()["id"].as_str().unwrap().to_string();
    let r = s.send("GET", "/storage/connections", &H, None).await;
    seen.keep(&r);
    assert_eq!(r.status, 200, "{}", r.text());
    let list = r.json()["data"]["connections"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[1]["id"], legacy.as_str());
    assert_eq!(list[1]["providerId"], "aws_s3");
    assert_eq!(list[1]["config"]["metadata"], json!({"owner": "ops"}));
    assert_eq!(
        list[1]["config"]["forcePathStyle"], false,
        "the provider's default"
    );
    assert!(list[1]["config"].get("bucket").is_none());

    // One connection; the same view as on creation.
    let path = format!("/storage/connections/{id}");
    let r = s.send("GET", &path, &H, None).await;
    seen.keep(&r);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["connection"], list[0]);

    // The nested form of the SDK's type, and provider defaults.
    let r = s
        .send(
            "POST",
            "/storage/connections",
            &H,
            Some(json!({
                "name": "aws", "provider": "s3",
                "config": {"bucket": "aws-bucket", "region": "eu-west-3"},
                "credentials": {"accessKeyId": "AKIAAWS", "secretAccessKey": SECRET},
            })),
        )
        .await;
    seen.keep(&r);
    assert_eq!(r.status, 200, "{}", r.text());
    let aws = r.json()["data"]["connection"].clone();
    assert_eq!(aws["providerId"], "aws_s3");
    assert_eq!(
        aws["config"]["endpoint"],
        "https://s3.eu-west-3.amazonaws.com"
    );
    let r = s
        .send(
            "POST",
            "/storage/connections",
            &H,
            Some(json!({
                "name": "r2", "provider": "cloudflare_r2", "bucket": "r2-bucket",
                "config": {"accountId": "0123abcd"},
                "accessKeyId": "AKIAR2", "secretAccessKey": SECRET,
            })),
        )
        .await;
    seen.keep(&r);
    assert_eq!(r.status, 200, "{}", r.text());
    let r2 = r.json()["data"]["connection"].clone();
    assert_eq!(
        r2["config"]["endpoint"],
        "https://0123abcd.r2.cloudflarestorage.com"
    );
    assert_eq!(r2["config"]["region"], "auto");

    // Soft delete: the row stays, gone from both views, then 404.
    let r = s.send("DELETE", &path, &H, None).await;
    seen.keep(&r);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "success");
    assert_eq!(r.json()["data"], json!({"connectionId": id}));
    let deleted = s
        .scalar(&format!(
            "SELECT count(*) FROM athena.s3_catalogs WHERE id = '{id}' AND deleted_at IS NOT NULL"
        ))
        .await;
    assert_eq!(deleted, 1);
    for method in ["GET", "DELETE"] {
        let r = s.send(method, &path, &H, None).await;
        seen.keep(&r);
        assert_eq!(r.status, 404, "{method}: {}", r.text());
        assert_eq!(r.envelope()["code"], "not_found");
    }
    let r = s.send("GET", "/storage/catalogs", &H, None).await;
    assert!(!r.text().contains(&id));
    let r = s.send("GET", "/storage/connections", &H, None).await;
    seen.keep(&r);
    assert_eq!(r.json()["data"]["connections"].as_array().unwrap().len(), 3);
    assert!(!r.text().contains(&id));

    // Unknown and malformed ids; another client on the same database.
    let r = s
        .send(
            "GET",
            &format!("/storage/connections/{}", uuid::Uuid::new_v4()),
            &H,
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = s
        .send("GET", "/storage/connections/not-a-uuid", &H, None)
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = s
        .send(
            "POST",
            "/admin/clients",
            &[("x-athena-key", ADMIN_KEY)],
            Some(json!({"client_name": "twin", "pg_uri": s.tenant_url})),
        )
        .await;
    assert!(r.status < 300, "{}", r.text());
    let twin = [("x-athena-key", ADMIN_KEY), ("x-athena-client", "twin")];
    let path = format!("/storage/connections/{legacy}");
    for method in ["GET", "DELETE"] {
        let r = s.send(method, &path, &twin, None).await;
        assert_eq!(r.status, 404, "{method}: {}", r.text());
    }
    let r = s.send("GET", "/storage/connections", &twin, None).await;
    assert_eq!(r.json()["data"]["connections"], json!([]));

    seen.assert_no_secret();
    s.stop().await;
}

#[tokio::test]
async fn providers_are_static_descriptors() {
    let s = server().await;
    let r = s.send("GET", "/storage/providers", &H, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["status"], "success");
    let providers = body["data"]["providers"].as_array().unwrap();
    let ids: Vec<&str> = providers
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["aws_s3", "cloudflare_r2", "minio", "custom_s3"]);
    for p in providers {
        // What the SDK's `providers.list` reads, and the SDK's own names.
        assert_eq!(p["provider"], p["id"]);
        assert_eq!(p["connectionConfig"], p["connectionSchema"]);
        assert_eq!(p["protocol"], "s3_compatible");
        assert_eq!(p["implementationStatus"], "implemented");
        let fields = p["connectionSchema"]["fields"].as_array().unwrap();
        let field = |key: &str| fields.iter().find(|f| f["key"] == key).cloned();
        assert_eq!(
            field("credentials.secretAccessKey").unwrap()["secret"],
            true
        );
        assert_eq!(field("config.bucket").unwrap()["required"], true);
    }
    assert_eq!(
        providers[0]["defaultEndpointTemplate"],
        "https://s3.{region}.amazonaws.com"
    );
    assert_eq!(providers[1]["defaultRegion"], "auto");
    assert_eq!(providers[2]["forcePathStyleDefault"], true);
    // A connection test reaches the store (here: nothing listens there):
    // a 503, not a stored connection (tests/it/storage_objects.rs tests a
    // real store).
    let r = s
        .send("POST", "/storage/connections/test", &H, Some(sdk_body("t")))
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["code"], "service_unavailable");
    s.stop().await;
}

#[tokio::test]
async fn always_keyed_with_storage_admin_to_change() {
    let s = server().await;
    // Enforcement is off for the client: still keyed.
    let anonymous = [("x-athena-client", CLIENT)];
    for (method, path) in [
        ("GET", "/storage/providers"),
        ("GET", "/storage/connections"),
        ("POST", "/storage/connections"),
    ] {
        let body = (method == "POST").then(|| sdk_body("anon"));
        let r = s.send(method, path, &anonymous, body).await;
        assert_eq!(r.status, 401, "{method} {path}: {}", r.text());
    }
    // Credentials before the body: no key and bad JSON is a 401.
    let r = s
        .send_raw(
            "POST",
            "/storage/connections",
            &[
                ("x-athena-client", CLIENT),
                ("content-type", "application/json"),
            ],
            "{not json".into(),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());

    let proxy = s.api_key(&["gateway.storage_proxy"], None).await;
    let with_proxy = [
        ("x-athena-key", proxy.as_str()),
        ("x-athena-client", CLIENT),
    ];
    for path in ["/storage/providers", "/storage/connections"] {
        let r = s.send("GET", path, &with_proxy, None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    let r = s
        .send(
            "POST",
            "/storage/connections",
            &with_proxy,
            Some(sdk_body("p")),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());

    let admin = s.api_key(&["storage.admin"], Some(CLIENT)).await;
    let with_admin = [
        ("x-athena-key", admin.as_str()),
        ("x-athena-client", CLIENT),
    ];
    let r = s
        .send(
            "POST",
            "/storage/connections",
            &with_admin,
            Some(sdk_body("a")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["data"]["connection"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s
        .send(
            "DELETE",
            &format!("/storage/connections/{id}"),
            &with_proxy,
            None,
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    // Bound to its client: another client's connections are not its own.
    let r = s
        .send(
            "GET",
            "/storage/connections",
            &[
                ("x-athena-key", admin.as_str()),
                ("x-athena-client", "other"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = s
        .send(
            "DELETE",
            &format!("/storage/connections/{id}"),
            &with_admin,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    s.stop().await;
}

#[tokio::test]
async fn bad_input_is_a_400() {
    let s = TestServer::start_with(|c| {
        allow(c, "127.0.0.1");
        c.storage_allow_http = false;
    })
    .await;
    let https = |mut body: Value| {
        body["endpoint"] = json!("https://s3.example.com");
        body
    };
    let without = |field: &str| {
        let mut body = https(sdk_body("bad"));
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let cases = [
        ("http endpoint without the flag", sdk_body("bad")),
        ("provider characters", {
            let mut b = https(sdk_body("bad"));
            b["provider"] = json!("Bad Provider!");
            b
        }),
        ("no access key id", without("accessKeyId")),
        ("no secret", without("secretAccessKey")),
        ("no bucket", without("bucket")),
        ("no endpoint for minio", without("endpoint")),
        ("r2 without endpoint or account", {
            let mut b = without("endpoint");
            b["provider"] = json!("cloudflare_r2");
            b
        }),
        ("r2 account id", {
            let mut b = without("endpoint");
            b["provider"] = json!("cloudflare_r2");
            b["accountId"] = json!("../evil");
            b
        }),
        ("bucket name", {
            let mut b = https(sdk_body("bad"));
            b["bucket"] = json!("Not_A_Bucket");
            b
        }),
        ("public base URL", {
            let mut b = https(sdk_body("bad"));
            b["publicBaseUrl"] = json!("javascript:alert(1)");
            b
        }),
        ("no name", without("name")),
        ("metadata not an object", {
            let mut b = https(sdk_body("bad"));
            b["metadata"] = json!("text");
            b
        }),
    ];
    for (what, body) in cases {
        let r = s.send("POST", "/storage/connections", &H, Some(body)).await;
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        assert_eq!(r.envelope()["status"], "error", "{what}");
        assert!(!r.text().contains(SECRET), "{what}");
    }
    // Nothing was stored.
    let r = s.send("GET", "/storage/connections", &H, None).await;
    assert_eq!(r.json()["data"]["connections"], json!([]));
    s.stop().await;
}
