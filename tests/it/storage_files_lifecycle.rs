//! Managed files after the upload (issue 12, lifecycle) on the test
//! SeaweedFS: delete → restore → purge (with and without bucket
//! versioning), copy, update and move, the public URL, versions,
//! retention (Object Lock), and the all-or-nothing batches.

use crate::common::files::{direct, enable_versioning, get_bytes, put, Files};
use crate::common::{allow, Reply, TestServer, ADMIN_KEY, CLIENT};
use serde_json::{json, Value};

async fn server() -> TestServer {
    TestServer::start_with(|c| allow(c, "127.0.0.1")).await
}

/// The versions of `key` as S3 lists them (the S3 layer's route).
async fn s3_versions(f: &Files<'_>, key: &str) -> Vec<Value> {
    let admin = [("x-athena-key", ADMIN_KEY), ("x-athena-client", CLIENT)];
    let r =
        f.s.send(
            "POST",
            "/storage/objects/versions",
            &admin,
            Some(json!({ "s3_id": f.s3_id, "bucket": f.bucket, "key": key })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["data"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["key"] == key)
        .cloned()
        .collect()
}

async fn object_exists(f: &Files<'_>, key: &str) -> bool {
    let admin = [("x-athena-key", ADMIN_KEY), ("x-athena-client", CLIENT)];
    let r =
        f.s.send(
            "POST",
            "/storage/objects/exists",
            &admin,
            Some(json!({ "s3_id": f.s3_id, "bucket": f.bucket, "key": key })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["data"]["exists"].as_bool().unwrap()
}

/// The bytes behind a readable file's download URL.
async fn bytes_of(f: &Files<'_>, who: &[(String, String)], id: &str) -> Vec<u8> {
    let r = f
        .send("GET", &format!("/storage/files/{id}/url"), who, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    get_bytes(r.json()["data"]["url"].as_str().unwrap()).await
}

async fn audit(s: &TestServer, id: &str) -> Vec<String> {
    let tenant = s.tenant().await;
    tenant
        .query(
            "SELECT operation || ':' || status FROM athena.audit_log_files
              WHERE file_id = $1::text::uuid ORDER BY id",
            &[&id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn ok(r: &Reply) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["data"].clone()
}

#[tokio::test]
async fn delete_restore_purge_with_versions_and_without() {
    let s = server().await;
    let f = Files::new(&s).await;
    let alice = f.user("alice", "acme");
    let bob = f.user("bob", "acme");

    // Without versioning: a deleted file's object is gone, no restore.
    let id = f.upload(&alice, "plain/a.txt", b"plain bytes").await;
    ok(&f
        .send("DELETE", &format!("/storage/files/{id}"), &alice, None)
        .await);
    let r = f
        .send(
            "POST",
            &format!("/storage/files/{id}/restore"),
            &alice,
            None,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("cannot be restored"), "{}", r.text());
    // Purge of a soft-deleted file: the row is purged, then not found.
    let d = ok(&f
        .send(
            "DELETE",
            &format!("/storage/files/{id}/purge"),
            &alice,
            None,
        )
        .await);
    assert_eq!(d["file"]["status"], "purged");
    let r = f
        .send(
            "POST",
            &format!("/storage/files/{id}/restore"),
            &alice,
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());

    // With versioning: upload → delete → restore (the bytes come back)
    // → purge (every version gone).
    enable_versioning(&f.bucket).await;
    let id = f.upload(&alice, "docs/a.txt", b"version one").await;
    ok(&f
        .send("DELETE", &format!("/storage/files/{id}"), &alice, None)
        .await);
    assert!(!object_exists(&f, "docs/a.txt").await);
    let r = f
        .send("GET", &format!("/storage/files/{id}"), &alice, None)
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    // Another user of the organization: the file is not theirs to see.
    let r = f
        .send("POST", &format!("/storage/files/{id}/restore"), &bob, None)
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let d = ok(&f
        .send(
            "POST",
            &format!("/storage/files/{id}/restore"),
            &alice,
            None,
        )
        .await);
    assert_eq!(d["file"]["status"], "available");
    assert_eq!(d["file"]["deleted_at"], Value::Null);
    assert_eq!(bytes_of(&f, &alice, &id).await, b"version one");
    // Restoring a live file: 400.
    let r = f
        .send(
            "POST",
            &format!("/storage/files/{id}/restore"),
            &alice,
            None,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(s3_versions(&f, "docs/a.txt").await.len() >= 2);
    // Bob may not purge it (not readable: 404); alice may.
    let r = f
        .send("DELETE", &format!("/storage/files/{id}/purge"), &bob, None)
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let d = ok(&f
        .send(
            "DELETE",
            &format!("/storage/files/{id}/purge"),
            &alice,
            None,
        )
        .await);
    assert_eq!(d["file"]["status"], "purged");
    assert_eq!(s3_versions(&f, "docs/a.txt").await, Vec::<Value>::new());
    assert!(!object_exists(&f, "docs/a.txt").await);
    let r = f
        .send("GET", &format!("/storage/files/{id}"), &alice, None)
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = f
        .send(
            "POST",
            &format!("/storage/files/{id}/restore"),
            &alice,
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    // The key is free again for a new file.
    f.upload(&alice, "docs/a.txt", b"new life").await;
    let trail: Vec<String> = audit(&s, &id)
        .await
        .into_iter()
        .filter(|t| t != "url:ok")
        .collect();
    assert_eq!(
        trail,
        [
            "upload_url:ok",
            "confirm_upload:available",
            "delete:ok",
            "restore:ok",
            "purge:ok"
        ]
    );
}

#[tokio::test]
async fn copy_update_move_and_public_url() {
    let s = server().await;
    let f = Files::new(&s).await;
    let alice = f.user("alice", "acme");
    let bob = f.user("bob", "acme");
    let eve = f.user("eve", "globex");
    let id = f.upload(&alice, "docs/report.txt", b"report bytes").await;

    // Copy: a new file of the caller, the same bytes.
    let d = ok(&f
        .send(
            "POST",
            &format!("/storage/files/{id}/copy"),
            &alice,
            Some(json!({ "storage_key": "copies/report.txt", "metadata": { "k": "v" } })),
        )
        .await);
    let copy = d["file"]["id"].as_str().unwrap().to_string();
    assert_ne!(copy, id);
    assert_eq!(d["file"]["status"], "available");
    assert_eq!(d["file"]["storage_key"], "copies/report.txt");
    assert_eq!(d["file"]["metadata"], json!({ "k": "v" }));
    assert_eq!(bytes_of(&f, &alice, &copy).await, b"report bytes");
    // Onto a taken key: 403; bob cannot read the source: 404.
    let r = f
        .send(
            "POST",
            &format!("/storage/files/{id}/copy"),
            &alice,
            Some(json!({ "storage_key": "copies/report.txt" })),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = f
        .send(
            "POST",
            &format!("/storage/files/{id}/copy"),
            &bob,
            Some(json!({ "storage_key": "bob/report.txt" })),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    // Shared with the organization, bob may copy it: the copy is bob's.
    let d = ok(&f
        .send(
            "PATCH",
            &format!("/storage/files/{id}"),
            &alice,
            Some(json!({ "visibility": "organization" })),
        )
        .await);
    assert_eq!(d["file"]["is_public"], false);
    let d = ok(&f
        .send(
            "POST",
            &format!("/storage/files/{id}/copy"),
            &bob,
            Some(json!({ "storage_key": "bob/report.txt" })),
        )
        .await);
    assert_eq!(d["file"]["uploaded_by_user_id"], "bob");
    let bobs = d["file"]["id"].as_str().unwrap().to_string();
    assert_eq!(bytes_of(&f, &bob, &bobs).await, b"report bytes");
    // …but not change it (write) nor who reads it.
    for body in [
        json!({ "name": "mine.txt" }),
        json!({ "visibility": "public" }),
    ] {
        let r = f
            .send("PATCH", &format!("/storage/files/{id}"), &bob, Some(body))
            .await;
        assert_eq!(r.status, 403, "{}", r.text());
    }
    let r = f
        .send(
            "PATCH",
            &format!("/storage/files/{id}"),
            &eve,
            Some(json!({ "name": "x" })),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());

    // Update in place: name, metadata, resource id, mime type.
    let d = ok(&f
        .send(
            "PATCH",
            &format!("/storage/files/{id}"),
            &alice,
            Some(json!({ "name": "Report.txt", "metadata": { "a": 1 }, "resource_id": "r-1", "mime_type": "text/markdown" })),
        )
        .await);
    assert_eq!(d["file"]["name"], "Report.txt");
    assert_eq!(d["file"]["metadata"], json!({ "a": 1 }));
    assert_eq!(d["file"]["resource_id"], "r-1");
    assert_eq!(d["file"]["mime_type"], "text/markdown");
    assert_eq!(d["file"]["storage_key"], "docs/report.txt");
    let r = f
        .send(
            "PATCH",
            &format!("/storage/files/{id}"),
            &alice,
            Some(json!({ "status": "available" })),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    // Move: the object follows the row; the old key is gone.
    let d = ok(&f
        .send(
            "PATCH",
            &format!("/storage/files/{id}"),
            &alice,
            Some(json!({ "storage_key": "moved/report.txt" })),
        )
        .await);
    assert_eq!(d["file"]["storage_key"], "moved/report.txt");
    assert_eq!(d["file"]["name"], "Report.txt");
    assert!(!object_exists(&f, "docs/report.txt").await);
    assert!(object_exists(&f, "moved/report.txt").await);
    assert_eq!(bytes_of(&f, &alice, &id).await, b"report bytes");
    // A pending file (no bytes yet) does not move.
    let r = f
        .send(
            "POST",
            "/storage/files/upload-url",
            &alice,
            Some(json!({ "s3_id": f.s3_id, "storage_key": "docs/pending.txt" })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let pending = r.json()["data"]["file"]["id"].as_str().unwrap().to_string();
    let r = f
        .send(
            "PATCH",
            &format!("/storage/files/{pending}"),
            &alice,
            Some(json!({ "storage_key": "docs/elsewhere.txt" })),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    // Onto another file's key: 403, nothing moved.
    let r = f
        .send(
            "PATCH",
            &format!("/storage/files/{id}"),
            &alice,
            Some(json!({ "storage_key": "bob/report.txt" })),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(object_exists(&f, "moved/report.txt").await);
    let r = f
        .send(
            "PATCH",
            &format!("/storage/files/{id}"),
            &alice,
            Some(json!({ "storage_key": "../x" })),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());

    // The public URL: public files only; a reader without credentials
    // gets the bytes.
    let r = f
        .send(
            "GET",
            &format!("/storage/files/{id}/public-url"),
            &alice,
            None,
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    ok(&f
        .send(
            "POST",
            &format!("/storage/files/{id}/visibility"),
            &alice,
            Some(json!({ "public": true })),
        )
        .await);
    let d = ok(&f
        .send(
            "GET",
            &format!("/storage/files/{id}/public-url"),
            &eve,
            None,
        )
        .await);
    assert_eq!(d["expires_in"], 900);
    assert_eq!(d["source"], "presigned");
    assert_eq!(get_bytes(d["url"].as_str().unwrap()).await, b"report bytes");
    // A catalog whose connection names a public base URL (a CDN): the URL
    // is under it, without expiry.
    s.tenant()
        .await
        .execute(
            "UPDATE athena.s3_catalogs SET metadata = COALESCE(metadata, '{}'::jsonb)
                 || '{\"athena_connection\": {\"publicBaseUrl\": \"https://cdn.example.com/files/\"}}'::jsonb
              WHERE id = $1::text::uuid",
            &[&f.s3_id],
        )
        .await
        .unwrap();
    let d = ok(&f
        .send(
            "GET",
            &format!("/storage/files/{id}/public-url"),
            &eve,
            None,
        )
        .await);
    assert_eq!(d["url"], "https://cdn.example.com/files/moved/report.txt");
    assert_eq!(d["source"], "public_base_url");
    let trail = audit(&s, &id).await;
    for op in [
        "copy:denied",
        "update:denied",
        "update:ok",
        "public_url:denied",
        "public_url:ok",
    ] {
        assert!(trail.iter().any(|t| t == op), "{op} in {trail:?}");
    }
}

#[tokio::test]
async fn batches_are_all_or_nothing() {
    let s = server().await;
    let f = Files::new(&s).await;
    let alice = f.user("alice", "acme");
    let bob = f.user("bob", "acme");
    let a1 = f.upload(&alice, "b/a1.txt", b"a1").await;
    let a2 = f.upload(&alice, "b/a2.txt", b"a2").await;
    let b1 = f.upload(&bob, "b/b1.txt", b"b1").await;
    // Alice may read bob's file (organization), not delete or share it.
    ok(&f
        .send(
            "PATCH",
            &format!("/storage/files/{b1}"),
            &bob,
            Some(json!({ "visibility": "organization" })),
        )
        .await);

    for (path, body) in [
        (
            "/storage/files/delete-many",
            json!({ "file_ids": [a1, a2, b1] }),
        ),
        (
            "/storage/files/visibility-many",
            json!({ "file_ids": [a1, a2, b1], "public": true }),
        ),
        (
            "/storage/files/update-many",
            json!({ "file_ids": [a1, a2, b1], "metadata": { "x": 1 } }),
        ),
    ] {
        let r = f.send("POST", path, &alice, Some(body)).await;
        assert_eq!(r.status, 403, "{path}: {}", r.text());
    }
    // Nothing changed.
    for (id, who, bytes) in [
        (&a1, &alice, b"a1"),
        (&a2, &alice, b"a2"),
        (&b1, &bob, b"b1"),
    ] {
        let d = ok(&f
            .send("GET", &format!("/storage/files/{id}"), who, None)
            .await);
        assert_eq!(d["file"]["status"], "available");
        assert_eq!(d["file"]["is_public"], false);
        assert!(
            matches!(&d["file"]["metadata"], Value::Null) || d["file"]["metadata"] == json!({}),
            "{d}"
        );
        assert_eq!(bytes_of(&f, who, id).await, bytes);
    }
    // An unknown (or unreadable) file: 404 for the whole batch.
    let unknown = uuid::Uuid::new_v4().to_string();
    let r = f
        .send(
            "POST",
            "/storage/files/delete-many",
            &alice,
            Some(json!({ "file_ids": [a1, unknown] })),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = f
        .send(
            "POST",
            "/storage/files/delete-many",
            &alice,
            Some(json!({ "file_ids": [] })),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let too_many: Vec<String> = (0..101).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let r = f
        .send(
            "POST",
            "/storage/files/delete-many",
            &alice,
            Some(json!({ "file_ids": too_many })),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());

    // Alice's own files: all three operations, read back.
    let d = ok(&f
        .send(
            "POST",
            "/storage/files/update-many",
            &alice,
            Some(json!({ "file_ids": [a1, a2], "metadata": { "tag": "q3" } })),
        )
        .await);
    assert_eq!(d["count"], 2);
    let d = ok(&f
        .send(
            "POST",
            "/storage/files/visibility-many",
            &alice,
            Some(json!({ "file_ids": [a1, a2], "visibility": "public" })),
        )
        .await);
    assert_eq!(d["count"], 2);
    for id in [&a1, &a2] {
        let d = ok(&f
            .send("GET", &format!("/storage/files/{id}"), &alice, None)
            .await);
        assert_eq!(d["file"]["is_public"], true);
        assert_eq!(d["file"]["metadata"], json!({ "tag": "q3" }));
    }
    let d = ok(&f
        .send(
            "POST",
            "/storage/files/delete-many",
            &alice,
            Some(json!({ "file_ids": [a1, a2] })),
        )
        .await);
    assert_eq!(d["count"], 2);
    for id in [&a1, &a2] {
        let r = f
            .send("GET", &format!("/storage/files/{id}"), &alice, None)
            .await;
        assert_eq!(r.status, 404, "{}", r.text());
    }
    assert!(!object_exists(&f, "b/a1.txt").await);
    assert!(!object_exists(&f, "b/a2.txt").await);

    // upload-urls: all or none.
    let r = f
        .send(
            "POST",
            "/storage/files/upload-urls",
            &alice,
            Some(json!({ "files": [
                { "s3_id": f.s3_id, "storage_key": "up/one.txt", "content_type": "text/plain" },
                { "s3_id": f.s3_id, "storage_key": "b/b1.txt" },
            ] })),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let list = f
        .send(
            "POST",
            "/storage/files/list",
            &alice,
            Some(json!({ "s3_id": f.s3_id, "prefix": "up/" })),
        )
        .await;
    assert_eq!(ok(&list)["count"], 0, "nothing was written");
    let r = f
        .send(
            "POST",
            "/storage/files/upload-urls",
            &alice,
            Some(json!({ "files": [
                { "s3_id": f.s3_id, "storage_key": "up/one.txt", "content_type": "text/plain" },
                { "s3_id": f.s3_id, "storage_key": "up/one.txt" },
            ] })),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = f
        .send(
            "POST",
            "/storage/files/upload-urls",
            &alice,
            Some(json!({ "files": [
                { "s3_id": f.s3_id, "storage_key": "up/one.txt", "content_type": "text/plain" },
                { "s3_id": f.s3_id, "storage_key": "up/two.txt", "content_type": "text/plain" },
            ] })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let files = r.json()["data"]["files"].as_array().unwrap().clone();
    assert_eq!(files.len(), 2);
    for (i, item) in files.iter().enumerate() {
        let body = format!("upload {i}");
        assert_eq!(
            put(item["upload"]["url"].as_str().unwrap(), body.as_bytes()).await,
            200
        );
        let id = item["file"]["id"].as_str().unwrap();
        ok(&f
            .send(
                "POST",
                &format!("/storage/files/{id}/confirm-upload"),
                &alice,
                Some(json!({})),
            )
            .await);
        assert_eq!(bytes_of(&f, &alice, id).await, body.as_bytes());
    }
    assert!(audit(&s, &b1).await.iter().any(|t| t == "delete:denied"));
}

#[tokio::test]
async fn versions_list_restore_and_delete() {
    let s = server().await;
    let f = Files::new(&s).await;
    let alice = f.user("alice", "acme");
    let eve = f.user("eve", "globex");
    enable_versioning(&f.bucket).await;
    let id = f.upload(&alice, "v/doc.txt", b"first").await;
    // A second upload to the same key by its owner: a second version.
    let again = f.upload(&alice, "v/doc.txt", b"second!").await;
    assert_eq!(again, id);
    let d = ok(&f
        .send(
            "GET",
            &format!("/storage/files/{id}/versions"),
            &alice,
            None,
        )
        .await);
    let versions = d["versions"].as_array().unwrap().clone();
    assert_eq!(versions.len(), 2, "{d}");
    let oldest = versions.iter().find(|v| v["is_latest"] == false).unwrap()["version_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = f
        .send("GET", &format!("/storage/files/{id}/versions"), &eve, None)
        .await;
    assert_eq!(r.status, 404, "{}", r.text());

    // Restore the first: the file reads "first" again, a third version.
    let d = ok(&f
        .send(
            "POST",
            &format!("/storage/files/{id}/versions/{oldest}/restore"),
            &alice,
            None,
        )
        .await);
    assert_eq!(d["restored_version_id"], oldest.as_str());
    assert_eq!(d["file"]["size_bytes"], 5);
    assert_eq!(bytes_of(&f, &alice, &id).await, b"first");
    assert_eq!(s3_versions(&f, "v/doc.txt").await.len(), 3);

    // Delete that old version: gone from the list, the file unchanged.
    let d = ok(&f
        .send(
            "DELETE",
            &format!("/storage/files/{id}/versions/{oldest}"),
            &alice,
            None,
        )
        .await);
    assert_eq!(d["file"]["status"], "available");
    let left = s3_versions(&f, "v/doc.txt").await;
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|v| v["version_id"] != oldest.as_str()));
    assert_eq!(bytes_of(&f, &alice, &id).await, b"first");
    // An unknown version: 404.
    for (method, path) in [
        ("DELETE", format!("/storage/files/{id}/versions/nope")),
        ("POST", format!("/storage/files/{id}/versions/nope/restore")),
    ] {
        let r = f.send(method, &path, &alice, None).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text());
    }
    // A move takes the current bytes along and leaves no version behind.
    let d = ok(&f
        .send(
            "PATCH",
            &format!("/storage/files/{id}"),
            &alice,
            Some(json!({ "storage_key": "v/moved.txt" })),
        )
        .await);
    assert_eq!(d["file"]["storage_key"], "v/moved.txt");
    assert_eq!(s3_versions(&f, "v/doc.txt").await, Vec::<Value>::new());
    assert_eq!(s3_versions(&f, "v/moved.txt").await.len(), 1);
    assert_eq!(bytes_of(&f, &alice, &id).await, b"first");
    let trail = audit(&s, &id).await;
    for op in ["versions:ok", "version_restore:ok", "version_delete:ok"] {
        assert!(trail.iter().any(|t| t == op), "{op} in {trail:?}");
    }
}

#[tokio::test]
async fn retention_is_object_lock_on_seaweedfs() {
    let s = server().await;
    let f = Files::new(&s).await;
    let alice = f.user("alice", "acme");
    let until = (chrono::Utc::now() + chrono::Duration::seconds(4))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);

    // A bucket without Object Lock: the store refuses (400, named).
    let id = f.upload(&alice, "r/plain.txt", b"plain").await;
    let r = f
        .send(
            "POST",
            &format!("/storage/files/{id}/retention"),
            &alice,
            Some(json!({ "mode": "GOVERNANCE", "retain_until": until })),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("Object Lock"), "{}", r.text());
    let d = ok(&f
        .send(
            "GET",
            &format!("/storage/files/{id}/retention"),
            &alice,
            None,
        )
        .await);
    assert_eq!(d["mode"], Value::Null);
    for body in [
        json!({ "mode": "FOREVER", "retain_until": until }),
        json!({ "mode": "GOVERNANCE", "retain_until": "yesterday" }),
        json!({ "mode": "GOVERNANCE", "retain_until": "2001-01-01T00:00:00Z" }),
    ] {
        let r = f
            .send(
                "POST",
                &format!("/storage/files/{id}/retention"),
                &alice,
                Some(body),
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.text());
    }

    // A bucket created with Object Lock (SeaweedFS supports it): the
    // retention is set and read back, and blocks a purge until it ends.
    let bucket = format!(
        "it-lock-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let (s3, store) = direct();
    let create = athena::storage::s3::Call::new(http::Method::PUT, Some(&bucket), None)
        .header("x-amz-bucket-object-lock-enabled", "true")
        .unwrap();
    s3.send(&store, create, &bucket).await.unwrap();
    let admin = [("x-athena-key", ADMIN_KEY), ("x-athena-client", CLIENT)];
    let catalog = s
        .send(
            "POST",
            "/storage/catalogs",
            &admin,
            Some(json!({
                "name": bucket, "endpoint": std::env::var("S3_ENDPOINT").unwrap(), "region": "us-east-1",
                "bucket": bucket, "access_key_id": std::env::var("S3_ACCESS_KEY_ID").unwrap(),
                "secret_key": std::env::var("S3_SECRET_ACCESS_KEY").unwrap(),
            })),
        )
        .await
        .json();
    let locked = Files {
        s: &s,
        s3_id: catalog["id"].as_str().unwrap().to_string(),
        bucket: bucket.clone(),
        key: f.key.clone(),
    };
    let id = locked.upload(&alice, "r/locked.txt", b"locked").await;
    let bob = f.user("bob", "acme");
    let r = f
        .send(
            "POST",
            &format!("/storage/files/{id}/retention"),
            &bob,
            Some(json!({ "mode": "GOVERNANCE", "retain_until": until })),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let d = ok(&f
        .send(
            "POST",
            &format!("/storage/files/{id}/retention"),
            &alice,
            Some(json!({ "mode": "governance", "retain_until_date": until })),
        )
        .await);
    assert_eq!(d["mode"], "GOVERNANCE");
    let d = ok(&f
        .send(
            "GET",
            &format!("/storage/files/{id}/retention"),
            &alice,
            None,
        )
        .await);
    assert_eq!(d["mode"], "GOVERNANCE");
    assert_eq!(d["retain_until"], until.as_str());
    let r = f
        .send(
            "DELETE",
            &format!("/storage/files/{id}/purge"),
            &alice,
            None,
        )
        .await;
    eprintln!("purge under retention: {} {}", r.status, r.text());
    assert!(matches!(r.status, 400 | 403 | 503), "{}", r.text());
    let d = ok(&f
        .send("GET", &format!("/storage/files/{id}"), &alice, None)
        .await);
    assert_eq!(d["file"]["status"], "available", "the row is as it was");
    // Past the retention (short sleeps: the test server drops idle
    // connections after 5 s).
    let end = chrono::DateTime::parse_from_rfc3339(&until).unwrap();
    while chrono::Utc::now() < end + chrono::Duration::seconds(1) {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        ok(&f
            .send("GET", &format!("/storage/files/{id}"), &alice, None)
            .await);
    }
    let d = ok(&f
        .send(
            "DELETE",
            &format!("/storage/files/{id}/purge"),
            &alice,
            None,
        )
        .await);
    assert_eq!(d["file"]["status"], "purged");
    assert_eq!(
        s3_versions(&locked, "r/locked.txt").await,
        Vec::<Value>::new()
    );
    let trail = audit(&s, &id).await;
    for op in [
        "retention:ok",
        "retention_get:ok",
        "purge:failed",
        "purge:ok",
    ] {
        assert!(trail.iter().any(|t| t == op), "{op} in {trail:?}");
    }
}
