//! Managed files, step 1 (upload URL, confirm, get, download URL, delete)
//! on the test SeaweedFS: end users by bearer JWT (`TEST_JWT_SECRET`) or
//! by trusted headers, the access rule, 404 for what a user may not read,
//! and the audit rows.

use crate::common::files::{get_bytes, jwt, put, Files};
use crate::common::{allow, TestServer, ADMIN_KEY, CLIENT};
use serde_json::{json, Value};

#[tokio::test]
async fn managed_file_flow_with_end_users() {
    let s = TestServer::start_with(|c| allow(c, "127.0.0.1")).await;
    let f = Files::new(&s).await;
    let (s3_id, storage_key, bucket) = (f.s3_id.clone(), f.key.clone(), f.bucket.clone());
    let admin = [("x-athena-key", ADMIN_KEY), ("x-athena-client", CLIENT)];
    let as_user = |token: String| {
        vec![
            ("x-athena-key".to_string(), storage_key.clone()),
            ("x-athena-client".to_string(), CLIENT.to_string()),
            ("authorization".to_string(), format!("Bearer {token}")),
        ]
    };
    let send = |method: &'static str,
                path: String,
                headers: Vec<(String, String)>,
                body: Option<Value>| {
        let s = &s;
        async move {
            let h: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            s.send(method, &path, &h, body).await
        }
    };
    let alice = as_user(jwt("alice", "acme"));

    // Upload URL → PUT bytes → confirm.
    let r = send("POST", "/storage/files/upload-url".into(), alice.clone(), Some(json!({
        "s3_id": s3_id, "storage_key": "docs/report.txt", "content_type": "text/plain", "size_bytes": 11,
    }))).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let d = r.json()["data"].clone();
    let id = d["file"]["id"].as_str().unwrap().to_string();
    assert_eq!(d["file"]["status"], "pending");
    assert_eq!(d["file"]["uploaded_by_user_id"], "alice");
    assert_eq!(d["file"]["organization_id"], "acme");
    assert_eq!(
        put(d["upload"]["url"].as_str().unwrap(), b"hello files").await,
        200
    );
    let r = send(
        "POST",
        format!("/storage/files/{id}/confirm-upload"),
        alice.clone(),
        Some(json!({})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["file"]["status"], "available");
    assert_eq!(r.json()["data"]["file"]["size_bytes"], 11);

    // Get, then a download URL that serves the same bytes.
    let r = send("GET", format!("/storage/files/{id}"), alice.clone(), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["file"]["storage_key"], "docs/report.txt");
    let r = send(
        "GET",
        format!("/storage/files/{id}/url?purpose=download"),
        alice.clone(),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["purpose"], "download");
    assert_eq!(
        get_bytes(r.json()["data"]["url"].as_str().unwrap()).await,
        b"hello files"
    );

    // Others: same organization on a private file, another organization,
    // a forged token — all see nothing (404 / 401), never the file.
    for (who, status) in [
        (as_user(jwt("bob", "acme")), 404),
        (as_user(jwt("eve", "globex")), 404),
        (as_user("x.y.z".into()), 401),
    ] {
        let r = send("GET", format!("/storage/files/{id}"), who.clone(), None).await;
        assert_eq!(r.status, status, "{}", r.text());
        let r = send("DELETE", format!("/storage/files/{id}"), who, None).await;
        assert_eq!(r.status, status, "{}", r.text());
    }
    // Someone else's key: a writer is needed to replace it.
    let r = send(
        "POST",
        "/storage/files/upload-url".into(),
        as_user(jwt("eve", "globex")),
        Some(json!({
            "s3_id": s3_id, "storage_key": "docs/report.txt",
        })),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    // Trusted headers: ignored from a storage.files key (no end user)…
    let mut forged = vec![
        ("x-athena-key".to_string(), storage_key.clone()),
        ("x-athena-client".to_string(), CLIENT.to_string()),
        ("x-user-id".to_string(), "alice".to_string()),
        ("x-organization-id".to_string(), "acme".to_string()),
    ];
    let r = send("GET", format!("/storage/files/{id}"), forged.clone(), None).await;
    assert_eq!(r.status, 401, "{}", r.text());
    // …honoured from the admin key.
    forged[0].1 = ADMIN_KEY.to_string();
    let r = send("GET", format!("/storage/files/{id}"), forged, None).await;
    assert_eq!(r.status, 200, "{}", r.text());

    // Listing: readable files only; visibility by share/owner only.
    let list = |who: Vec<(String, String)>| {
        send(
            "POST",
            "/storage/files/list".to_string(),
            who,
            Some(json!({ "s3_id": s3_id, "prefix": "docs/" })),
        )
    };
    let r = list(alice.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["count"], 1);
    let r = list(as_user(jwt("eve", "globex"))).await;
    assert_eq!(r.json()["data"]["count"], 0, "{}", r.text());
    let r = send(
        "POST",
        format!("/storage/files/{id}/visibility"),
        as_user(jwt("eve", "globex")),
        Some(json!({ "public": true })),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = send(
        "PATCH",
        format!("/storage/files/{id}/visibility"),
        alice.clone(),
        Some(json!({ "public": true })),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["file"]["is_public"], true);
    let r = list(as_user(jwt("eve", "globex"))).await;
    assert_eq!(r.json()["data"]["count"], 1, "{}", r.text());
    let r = send(
        "GET",
        format!("/storage/files/{id}"),
        as_user(jwt("eve", "globex")),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "a public file is readable: {}", r.text());
    // Eve may read it, not change who reads it.
    let r = send(
        "POST",
        format!("/storage/files/{id}/visibility"),
        as_user(jwt("eve", "globex")),
        Some(json!({ "public": false })),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = send(
        "POST",
        format!("/storage/files/{id}/visibility"),
        alice.clone(),
        Some(json!({ "public": false })),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // A prefix with LIKE wildcards matches them literally.
    let r = send(
        "POST",
        "/storage/files/list".to_string(),
        alice.clone(),
        Some(json!({ "s3_id": s3_id, "prefix": "d_cs/" })),
    )
    .await;
    assert_eq!(r.json()["data"]["count"], 0, "{}", r.text());

    // A writer (a grant inserted for bob) may replace the file but not
    // change who reads it; fields not sent are kept.
    let tenant = s.tenant().await;
    tenant
        .execute(
            "INSERT INTO athena.file_permissions (id, file_id, principal_type, principal_id, permission)
             VALUES (gen_random_uuid(), $1::text::uuid, 'user', 'bob', 'write')",
            &[&id],
        )
        .await
        .unwrap();
    let bob = as_user(jwt("bob", "acme"));
    let r = send(
        "POST",
        "/storage/files/upload-url".into(),
        bob.clone(),
        Some(json!({
            "s3_id": s3_id, "storage_key": "docs/report.txt", "public": true,
        })),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = send(
        "POST",
        "/storage/files/upload-url".into(),
        bob.clone(),
        Some(json!({
            "s3_id": s3_id, "storage_key": "docs/report.txt", "size_bytes": 11,
        })),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let f = r.json()["data"]["file"].clone();
    assert_eq!(
        (
            f["id"].as_str(),
            f["is_public"].as_bool(),
            f["uploaded_by_user_id"].as_str()
        ),
        (Some(id.as_str()), Some(false), Some("alice"))
    );
    assert_eq!(
        put(
            r.json()["data"]["upload"]["url"].as_str().unwrap(),
            b"hello again"
        )
        .await,
        200
    );
    let r = send(
        "POST",
        format!("/storage/files/{id}/confirm-upload"),
        bob.clone(),
        Some(json!({})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // An object no managed file owns is not anyone's to claim, and end
    // users write to the catalog's bucket only.
    let r = s
        .send(
            "POST",
            "/storage/objects/folder",
            &admin,
            Some(json!({ "s3_id": s3_id, "bucket": bucket, "prefix": "unmanaged" })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = send(
        "POST",
        "/storage/files/upload-url".into(),
        as_user(jwt("eve", "globex")),
        Some(json!({
            "s3_id": s3_id, "storage_key": "unmanaged/",
        })),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = send(
        "POST",
        "/storage/files/upload-url".into(),
        alice.clone(),
        Some(json!({
            "s3_id": s3_id, "bucket": "some-other-bucket", "storage_key": "x.txt",
        })),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());

    // Delete: the object goes, the row is soft-deleted, the file is gone.
    let r = send(
        "DELETE",
        format!("/storage/files/{id}"),
        alice.clone(),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["file"]["status"], "soft_deleted");
    let r = send("GET", format!("/storage/files/{id}"), alice.clone(), None).await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = s
        .send(
            "POST",
            "/storage/objects/exists",
            &admin,
            Some(json!({ "s3_id": s3_id, "bucket": bucket, "key": "docs/report.txt" })),
        )
        .await;
    assert_eq!(r.json()["data"]["exists"], false);

    // The audit trail.
    let ops: Vec<String> = tenant
        .query(
            "SELECT operation || ':' || status FROM athena.audit_log_files WHERE file_id = $1::text::uuid ORDER BY id",
            &[&id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        ops,
        [
            "upload_url:ok",
            "confirm_upload:available",
            "url:ok",
            "upload_url:denied",
            "visibility:ok",
            "visibility:denied",
            "visibility:ok",
            "upload_url:denied",
            "upload_url:ok",
            "confirm_upload:available",
            "delete:ok"
        ]
    );
    // …with how each actor was established.
    let sources: Vec<String> = tenant
        .query(
            "SELECT DISTINCT actor_source FROM athena.audit_log_files WHERE file_id = $1::text::uuid ORDER BY 1",
            &[&id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(sources, ["jwt"]);
    // A confirm after the delete finds no file.
    let r = send(
        "POST",
        format!("/storage/files/{id}/confirm-upload"),
        alice.clone(),
        Some(json!({})),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());

    // A confirm of an object never uploaded marks it failed (400).
    let r = send(
        "POST",
        "/storage/files/upload-url".into(),
        alice.clone(),
        Some(json!({ "s3_id": s3_id, "storage_key": "never.txt" })),
    )
    .await;
    let never = r.json()["data"]["file"]["id"].as_str().unwrap().to_string();
    let r = send(
        "POST",
        format!("/storage/files/{never}/confirm-upload"),
        alice.clone(),
        Some(json!({})),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = send(
        "GET",
        format!("/storage/files/{never}"),
        alice.clone(),
        None,
    )
    .await;
    assert_eq!(r.json()["data"]["file"]["status"], "failed");
    // Bad ids and keys.
    let r = send(
        "GET",
        "/storage/files/not-a-uuid".into(),
        alice.clone(),
        None,
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = send(
        "POST",
        "/storage/files/upload-url".into(),
        alice.clone(),
        Some(json!({ "s3_id": s3_id, "storage_key": "../x" })),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = send(
        "POST",
        "/storage/files/upload-url".into(),
        as_user(jwt("solo", "")).into_iter().collect(),
        Some(json!({ "s3_id": s3_id, "storage_key": "x" })),
    )
    .await;
    // No organization in the token: managed files need one (400).
    assert_eq!(r.status, 400, "{}", r.text());
    s.stop().await;
}

/// The flow, end to end on a versioned bucket: catalog →
/// upload-url → PUT bytes → confirm → list → url → GET the same bytes →
/// visibility → public-url → delete → restore → purge (bytes via S3 at
/// every step that moves them).
#[tokio::test]
async fn the_whole_managed_file_flow() {
    use crate::common::files::enable_versioning;
    let s = TestServer::start_with(|c| allow(c, "127.0.0.1")).await;
    let f = Files::new(&s).await;
    enable_versioning(&f.bucket).await;
    let alice = f.user("alice", "acme");
    let eve = f.user("eve", "globex");
    let r = f
        .send(
            "POST",
            "/storage/files/upload-url",
            &alice,
            Some(json!({ "s3_id": f.s3_id, "storage_key": "flow/a.txt", "content_type": "text/plain" })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let d = r.json()["data"].clone();
    assert_eq!(d["upload"]["headers"]["Content-Type"], "text/plain");
    let id = d["file"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        put(d["upload"]["url"].as_str().unwrap(), b"flow bytes").await,
        200
    );
    let r = f
        .send(
            "POST",
            &format!("/storage/files/{id}/confirm-upload"),
            &alice,
            Some(json!({})),
        )
        .await;
    assert_eq!(
        r.json()["data"]["file"]["status"],
        "available",
        "{}",
        r.text()
    );
    let r = f
        .send(
            "POST",
            "/storage/files/list",
            &alice,
            Some(json!({ "s3_id": f.s3_id, "prefix": "flow/" })),
        )
        .await;
    assert_eq!(
        r.json()["data"]["files"][0]["id"],
        id.as_str(),
        "{}",
        r.text()
    );
    let r = f
        .send("GET", &format!("/storage/files/{id}/url"), &alice, None)
        .await;
    assert_eq!(
        get_bytes(r.json()["data"]["url"].as_str().unwrap()).await,
        b"flow bytes"
    );
    // Private: no public URL, and another organization sees nothing.
    let r = f
        .send(
            "GET",
            &format!("/storage/files/{id}/public-url"),
            &alice,
            None,
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = f
        .send("GET", &format!("/storage/files/{id}"), &eve, None)
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = f
        .send(
            "PATCH",
            &format!("/storage/files/{id}/visibility"),
            &alice,
            Some(json!({ "public": true })),
        )
        .await;
    assert_eq!(
        r.json()["data"]["file"]["visibility"],
        "public",
        "{}",
        r.text()
    );
    let r = f
        .send(
            "GET",
            &format!("/storage/files/{id}/public-url"),
            &alice,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        get_bytes(r.json()["data"]["url"].as_str().unwrap()).await,
        b"flow bytes"
    );
    let r = f
        .send("GET", &format!("/storage/files/{id}"), &eve, None)
        .await;
    assert_eq!(r.status, 200, "public: {}", r.text());
    // Delete → the object is gone; restore brings the prior version back.
    let r = f
        .send("DELETE", &format!("/storage/files/{id}"), &alice, None)
        .await;
    assert_eq!(
        r.json()["data"]["file"]["status"],
        "soft_deleted",
        "{}",
        r.text()
    );
    let exists = |key: &'static str| {
        let s = &s;
        let f = &f;
        async move {
            s.send(
                "POST",
                "/storage/objects/exists",
                &[("x-athena-key", ADMIN_KEY), ("x-athena-client", CLIENT)],
                Some(json!({ "s3_id": f.s3_id, "bucket": f.bucket, "key": key })),
            )
            .await
            .json()["data"]["exists"]
                .clone()
        }
    };
    assert_eq!(exists("flow/a.txt").await, false);
    let r = f
        .send(
            "POST",
            &format!("/storage/files/{id}/restore"),
            &alice,
            None,
        )
        .await;
    assert_eq!(
        r.json()["data"]["file"]["status"],
        "available",
        "{}",
        r.text()
    );
    let r = f
        .send("GET", &format!("/storage/files/{id}/url"), &alice, None)
        .await;
    assert_eq!(
        get_bytes(r.json()["data"]["url"].as_str().unwrap()).await,
        b"flow bytes"
    );
    // Purge: every version gone, the file gone for good.
    let r = f
        .send(
            "DELETE",
            &format!("/storage/files/{id}/purge"),
            &alice,
            None,
        )
        .await;
    assert_eq!(r.json()["data"]["file"]["status"], "purged", "{}", r.text());
    assert_eq!(exists("flow/a.txt").await, false);
    let r = s
        .send(
            "POST",
            "/storage/objects/versions",
            &[("x-athena-key", ADMIN_KEY), ("x-athena-client", CLIENT)],
            Some(json!({ "s3_id": f.s3_id, "bucket": f.bucket, "key": "flow/a.txt" })),
        )
        .await;
    assert_eq!(r.json()["data"]["versions"], json!([]), "{}", r.text());
    let r = f
        .send(
            "POST",
            &format!("/storage/files/{id}/restore"),
            &alice,
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
}

/// A key with old versions (an object deleted through the S3 routes in a
/// versioned bucket) is not free: a new file there could list and restore
/// bytes written before it.
#[tokio::test]
async fn keys_with_old_versions_are_not_claimed() {
    use crate::common::files::enable_versioning;
    let s = TestServer::start_with(|c| allow(c, "127.0.0.1")).await;
    let f = Files::new(&s).await;
    enable_versioning(&f.bucket).await;
    let admin = [("x-athena-key", ADMIN_KEY), ("x-athena-client", CLIENT)];
    let r = s
        .send(
            "POST",
            "/storage/objects/upload-url",
            &admin,
            Some(json!({ "s3_id": f.s3_id, "bucket": f.bucket, "key": "old/secret.txt" })),
        )
        .await;
    assert_eq!(
        put(r.json()["data"]["url"].as_str().unwrap(), b"old secret").await,
        200
    );
    let r = s
        .send(
            "POST",
            "/storage/objects/delete",
            &admin,
            Some(json!({ "s3_id": f.s3_id, "bucket": f.bucket, "key": "old/secret.txt" })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = f
        .send(
            "POST",
            "/storage/files/upload-url",
            &f.user("eve", "globex"),
            Some(json!({ "s3_id": f.s3_id, "storage_key": "old/secret.txt" })),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
}

/// The SDK's `{visibility}` on the per-file route (the contract's `{public}`
/// cannot say `organization`); neither, or the two disagreeing: 400.
#[tokio::test]
async fn visibility_by_name_or_by_flag() {
    let s = TestServer::start_with(|c| allow(c, "127.0.0.1")).await;
    let f = Files::new(&s).await;
    let alice = f.user("alice", "acme");
    let id = f.upload(&alice, "vis/a.txt", b"v").await;
    let bob = f.user("bob", "acme");
    assert_eq!(
        f.send("GET", &format!("/storage/files/{id}"), &bob, None)
            .await
            .status,
        404
    );
    for (body, status) in [
        (json!({}), 400),
        (json!({ "visibility": "secret" }), 400),
        (json!({ "visibility": "public", "public": false }), 400),
        (json!({ "visibility": "organization" }), 200),
    ] {
        let r = f
            .send(
                "PATCH",
                &format!("/storage/files/{id}/visibility"),
                &alice,
                Some(body.clone()),
            )
            .await;
        assert_eq!(r.status, status, "{body}: {}", r.text());
    }
    let r = f
        .send("GET", &format!("/storage/files/{id}"), &bob, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["file"]["visibility"], "organization");
    let r = f
        .send(
            "GET",
            &format!("/storage/files/{id}"),
            &f.user("eve", "globex"),
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
}
