//! S3 catalogs and credentials (`/storage/catalogs`, `/storage/credentials`):
//! rows in the tenant database, secrets sealed at rest, rotation, soft
//! delete, and the refusals.

use crate::common::{allow, TestServer, ADMIN_KEY, CLIENT, TEST_SECRET_KEY};
use serde_json::{json, Value};

const H: [(&str, &str); 2] = [("x-athena-key", ADMIN_KEY), ("x-athena-client", CLIENT)];
const SECRET: &str = "s3cr3t-Value-That-Must-Not-Leak";

fn new_catalog(name: &str) -> Value {
    json!({
        "name": name,
        "description": "files of the app",
        "endpoint": "http://127.0.0.1:8333/",
        "region": "us-east-1",
        "bucket": "app-files",
        "provider": "minio",
        "access_key_id": "AKIAFIRST",
        "secret_key": SECRET,
    })
}

async fn server() -> TestServer {
    TestServer::start_with(|c| allow(c, "127.0.0.1")).await
}

#[tokio::test]
async fn catalogs_round_trip_with_sealed_secrets() {
    let s = server().await;
    let r = s
        .send(
            "POST",
            "/storage/catalogs",
            &H,
            Some(new_catalog("primary")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.text().contains(SECRET));
    let created = r.json();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["endpoint"], "http://127.0.0.1:8333");
    assert_eq!(created["active_access_key"], "AKIAFIRST");
    assert_eq!(created["is_active"], true);
    let first_credential = created["active_credential_id"]
        .as_str()
        .unwrap()
        .to_string();

    // At rest: ciphertext that opens only as this row's secret.
    let tenant = s.tenant().await;
    let row = tenant
        .query_one(
            "SELECT id::text, secret_ciphertext FROM athena.s3_credentials WHERE catalog_id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap();
    let (cred_id, sealed): (String, Vec<u8>) = (row.get(0), row.get(1));
    assert_eq!(cred_id, first_credential);
    assert!(!sealed.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
    let secrets = athena::secrets::Secrets::from_key_text(TEST_SECRET_KEY).unwrap();
    assert_eq!(
        secrets
            .open(
                &athena::storage::catalog::credential_context(
                    CLIENT,
                    id.parse().unwrap(),
                    cred_id.parse().unwrap(),
                    "secret",
                ),
                &sealed,
            )
            .unwrap(),
        SECRET
    );

    // Listed, and its credential too (never the secret).
    let r = s.send("GET", "/storage/catalogs", &H, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["data"][0]["id"], id.as_str());
    let r = s.send("GET", "/storage/credentials", &H, None).await;
    assert_eq!(r.status, 200);
    let creds = r.json();
    assert_eq!(creds["data"].as_array().unwrap().len(), 1);
    assert_eq!(creds["data"][0]["s3_id"], id.as_str());
    assert_eq!(creds["data"][0]["access_key"], "AKIAFIRST");
    assert!(!r.text().contains(SECRET));

    // A rename keeps the credential; a rotation replaces it.
    let path = format!("/storage/catalogs/{id}");
    let r = s
        .send(
            "PATCH",
            &path,
            &H,
            Some(json!({"name": "renamed", "bucket": null})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["name"], "renamed");
    assert_eq!(
        r.json()["bucket"],
        "app-files",
        "null leaves a field as it is"
    );
    assert_eq!(r.json()["active_credential_id"], first_credential.as_str());
    let r = s
        .send(
            "PATCH",
            &path,
            &H,
            Some(json!({"access_key_id": "AKIAONLY"})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = s
        .send(
            "PATCH",
            &path,
            &H,
            Some(json!({"access_key_id": "AKIASECOND", "secret_key": "second-secret"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let rotated = r.json();
    assert_eq!(rotated["active_access_key"], "AKIASECOND");
    assert_ne!(rotated["active_credential_id"], first_credential.as_str());
    let active: i64 = tenant
        .query_one(
            "SELECT count(*) FROM athena.s3_credentials WHERE catalog_id = $1::text::uuid AND is_active",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(active, 1, "the old credential is deactivated");

    // Names are unique among live catalogs.
    let r = s
        .send(
            "POST",
            "/storage/catalogs",
            &H,
            Some(new_catalog("RENAMED")),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("already exists"));

    // Soft delete: gone from every listing, rows kept and deactivated.
    let r = s.send("DELETE", &path, &H, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"id": id, "deleted": true}));
    let r = s.send("GET", "/storage/catalogs", &H, None).await;
    assert_eq!(r.json()["data"], json!([]));
    let r = s.send("GET", "/storage/credentials", &H, None).await;
    assert_eq!(r.json()["data"], json!([]));
    let (deleted, live_keys): (bool, i64) = {
        let row = tenant
            .query_one(
                "SELECT deleted_at IS NOT NULL,
                        (SELECT count(*) FROM athena.s3_credentials k WHERE k.catalog_id = c.id AND k.is_active)
                   FROM athena.s3_catalogs c WHERE id = $1::text::uuid",
                &[&id],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert!(deleted);
    assert_eq!(live_keys, 0);
    for (method, body) in [("DELETE", None), ("PATCH", Some(json!({"name": "x"})))] {
        let r = s.send(method, &path, &H, body).await;
        assert_eq!(r.status, 404, "{method}: {}", r.text());
        assert_eq!(r.envelope()["code"], "not_found");
    }
    // The name is free again.
    let r = s
        .send(
            "POST",
            "/storage/catalogs",
            &H,
            Some(new_catalog("renamed")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn refusals() {
    let s = server().await;
    // Credentials before the body: no key and bad JSON is a 401.
    let r = s
        .send_raw(
            "POST",
            "/storage/catalogs",
            &[
                ("x-athena-client", CLIENT),
                ("content-type", "application/json"),
            ],
            "{not json".into(),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    for (field, value, status) in [
        ("endpoint", json!("https://s3.example.com/bucket"), 400),
        ("endpoint", json!("ftp://s3.example.com"), 400),
        ("endpoint", json!("http://10.0.0.1:9000"), 403),
        ("endpoint", json!("http://169.254.169.254"), 403),
        ("bucket", json!("Not_A_Bucket"), 400),
        ("region", json!("us east"), 400),
        ("name", json!(""), 400),
        ("secret_key", json!("has space"), 400),
        ("name", json!("   "), 400),
        ("metadata", json!({"a": "nul \u{0} inside"}), 400),
    ] {
        let mut body = new_catalog("bad");
        body[field] = value.clone();
        let r = s.send("POST", "/storage/catalogs", &H, Some(body)).await;
        assert_eq!(r.status, status, "{field}={value}: {}", r.text());
        assert_eq!(r.envelope()["status"], "error");
    }
    let r = s
        .send(
            "POST",
            "/storage/catalogs",
            &[("x-athena-key", ADMIN_KEY), ("x-athena-client", "nobody")],
            Some(new_catalog("x")),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = s
        .send(
            "PATCH",
            &format!("/storage/catalogs/{}", uuid::Uuid::new_v4()),
            &H,
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = s
        .send("DELETE", "/storage/catalogs/not-a-uuid", &H, None)
        .await;
    assert_eq!(r.status, 400, "{}", r.text());

    // The data plane never reads the gateway's tenant schema.
    let r = s
        .send("POST", "/storage/catalogs", &H, Some(new_catalog("hidden")))
        .await;
    assert_eq!(r.status, 200);
    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &[("x-athena-client", CLIENT)],
            Some(json!({"table_name": "athena.s3_credentials"})),
        )
        .await;
    assert!(
        r.status >= 400 && r.status < 500,
        "{}: {}",
        r.status,
        r.text()
    );
}

#[tokio::test]
async fn plain_http_needs_the_flag_and_secrets_need_the_key() {
    let s = TestServer::start_with(|c| {
        allow(c, "127.0.0.1");
        c.storage_allow_http = false;
        c.secrets = None;
    })
    .await;
    let r = s
        .send("POST", "/storage/catalogs", &H, Some(new_catalog("x")))
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let mut body = new_catalog("x");
    body["endpoint"] = json!("https://s3.example.com");
    let r = s.send("POST", "/storage/catalogs", &H, Some(body)).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.envelope()["code"], "service_unavailable");
    assert!(r.text().contains("ATHENA_SECRET_KEY"));
    // Reading needs no key.
    let r = s.send("GET", "/storage/catalogs", &H, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"], json!([]));
}

#[tokio::test]
async fn clients_sharing_a_database_see_only_their_own() {
    let s = server().await;
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
    let r = s
        .send("POST", "/storage/catalogs", &H, Some(new_catalog("mine")))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    // Same database, other client: nothing listed, the id unknown.
    let r = s.send("GET", "/storage/catalogs", &twin, None).await;
    assert_eq!(r.json()["data"], json!([]), "{}", r.text());
    let r = s.send("GET", "/storage/credentials", &twin, None).await;
    assert_eq!(r.json()["data"], json!([]));
    let path = format!("/storage/catalogs/{id}");
    let r = s.send("DELETE", &path, &twin, None).await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = s
        .send("PATCH", &path, &twin, Some(json!({"name": "stolen"})))
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    // Its own name space: the same name is free for the twin.
    let r = s
        .send(
            "POST",
            "/storage/catalogs",
            &twin,
            Some(new_catalog("mine")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.send("GET", "/storage/catalogs", &H, None).await;
    let mine = r.json()["data"].as_array().unwrap().clone();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["id"], id.as_str());
    assert_eq!(mine[0]["name"], "mine");
}

#[tokio::test]
async fn missing_tables_are_a_503_and_a_dropped_schema_is_recreated() {
    let s = server().await;
    let r = s
        .send("POST", "/storage/catalogs", &H, Some(new_catalog("a")))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let tenant = s.tenant().await;
    // The whole set dropped: the next request sees the tables missing (503)
    // and the one after recreates them.
    tenant
        .batch_execute("DROP SCHEMA athena CASCADE")
        .await
        .unwrap();
    let r = s.send("GET", "/storage/catalogs", &H, None).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.envelope()["code"], "service_unavailable");
    let r = s.send("GET", "/storage/catalogs", &H, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"], json!([]));
    // One table dropped while the migration stays recorded: refused, never
    // answered from half a schema.
    tenant
        .batch_execute("DROP TABLE athena.s3_credentials")
        .await
        .unwrap();
    for _ in 0..2 {
        let r = s.send("GET", "/storage/credentials", &H, None).await;
        assert_eq!(r.status, 503, "{}", r.text());
    }
}

#[tokio::test]
async fn the_tenant_set_creates_the_managed_file_tables_with_their_rules() {
    let s = server().await;
    let r = s.send("GET", "/storage/catalogs", &H, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let tenant = s.tenant().await;
    for table in [
        "files",
        "file_permissions",
        "audit_log_files",
        "multipart_uploads",
    ] {
        let found: Option<String> = tenant
            .query_one(&format!("SELECT to_regclass('athena.{table}')::text"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(found.as_deref(), Some(format!("athena.{table}").as_str()));
    }
    // The states and visibilities are the issue's, enforced by the table.
    let created = s
        .send(
            "POST",
            "/storage/catalogs",
            &H,
            Some(new_catalog("files-home")),
        )
        .await
        .json();
    let id = created["id"].as_str().unwrap().to_string();
    let insert = |visibility: &str, status: &str| {
        format!(
            "INSERT INTO athena.files (id, client_name, s3_id, bucket, storage_key, name, organization_id, visibility, status)
             VALUES (gen_random_uuid(), '{CLIENT}', '{id}', 'b', 'k-{visibility}-{status}', 'n', 'org', '{visibility}', '{status}')"
        )
    };
    tenant
        .batch_execute(&insert("public", "available"))
        .await
        .unwrap();
    assert!(tenant
        .batch_execute(&insert("secret", "available"))
        .await
        .is_err());
    assert!(tenant
        .batch_execute(&insert("private", "lost"))
        .await
        .is_err());
    // One live row per object.
    assert!(tenant
        .batch_execute(&insert("public", "available"))
        .await
        .is_err());
}
