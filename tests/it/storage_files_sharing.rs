//! Managed files: sharing (grants through `/storage/permissions/*`), the
//! audit trail, folders and the list/search filters, on the test SeaweedFS.
//! The access rule is tested as data in `src/storage/file_access.rs`; here
//! the routes are shown to honour it.

use crate::common::files::{get_bytes, Files};
use crate::common::{allow, TestServer, ADMIN_KEY, CLIENT};
use serde_json::{json, Value};

type Who = Vec<(String, String)>;

async fn post(f: &Files<'_>, path: &str, who: &Who, body: Value) -> (u16, Value) {
    let r = f.send("POST", path, who, Some(body)).await;
    let v = if r.text().is_empty() {
        Value::Null
    } else {
        r.json()
    };
    (r.status, v)
}

async fn grant(f: &Files<'_>, who: &Who, file: &str, kind: &str, id: &str, perm: &str) -> u16 {
    let body =
        json!({ "file_id": file, "principal_type": kind, "principal_id": id, "permission": perm });
    post(f, "/storage/permissions/grant", who, body).await.0
}

async fn revoke(f: &Files<'_>, who: &Who, file: &str, kind: &str, id: &str, perm: &str) -> u16 {
    let body =
        json!({ "file_id": file, "principal_type": kind, "principal_id": id, "permission": perm });
    post(f, "/storage/permissions/revoke", who, body).await.0
}

/// Whether the object `key` exists in the catalog's bucket (S3 HEAD).
async fn exists(f: &Files<'_>, key: &str) -> bool {
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
    r.json()["data"]["exists"] == json!(true)
}

/// The statuses of read (GET), write (confirm-upload), share (a grant to
/// a third party) and delete (DELETE, last) of `file` by `who`.
async fn probe(f: &Files<'_>, who: &Who, file: &str) -> [u16; 4] {
    let read = f
        .send("GET", &format!("/storage/files/{file}"), who, None)
        .await
        .status;
    let write = f
        .send(
            "POST",
            &format!("/storage/files/{file}/confirm-upload"),
            who,
            Some(json!({})),
        )
        .await
        .status;
    let share = grant(f, who, file, "user", "zed", "read").await;
    let delete = f
        .send("DELETE", &format!("/storage/files/{file}"), who, None)
        .await
        .status;
    [read, write, delete, share]
}

#[tokio::test]
async fn the_routes_honour_the_access_matrix_and_a_revoke_is_immediate() {
    let s = TestServer::start_with(|c| allow(c, "127.0.0.1")).await;
    let f = Files::new(&s).await;
    let db = s.tenant().await;
    let alice = f.user("alice", "acme");
    let bob = f.user("bob", "acme");
    let eve = f.user("eve", "globex");

    // (case, who probes, expected [read, write, delete, share]); 200
    // allowed, 403 readable but not allowed, 404 not even readable.
    const OK: [u16; 4] = [200, 200, 200, 200];
    const READ: [u16; 4] = [200, 403, 403, 403];
    const NONE: [u16; 4] = [404, 404, 404, 404];
    let cases: Vec<(&str, &Who, [u16; 4])> = vec![
        ("owner", &alice, OK),
        ("same-org-organization", &bob, READ),
        ("same-org-private", &bob, NONE),
        ("other-org-organization", &eve, NONE),
        ("other-org-public", &eve, READ),
        ("revoked-owner", &eve, NONE),
        ("expired-owner", &eve, NONE),
        ("live-write", &eve, [200, 200, 403, 403]),
        ("live-delete", &eve, [200, 403, 200, 403]),
        ("live-share", &eve, [200, 403, 403, 200]),
        ("live-owner", &eve, OK),
        ("org-read-grant", &bob, READ),
    ];
    let mut files = Vec::new();
    for (case, _, _) in &cases {
        let id = f.upload(&alice, &format!("m/{case}.txt"), b"matrix").await;
        match *case {
            "same-org-organization" | "other-org-organization" => {
                // Organization visibility (no route of this part sets it).
                db.execute(
                    "UPDATE athena.files SET visibility = 'organization' WHERE id = $1::text::uuid",
                    &[&id],
                )
                .await
                .unwrap();
            }
            "other-org-public" => {
                let r = f
                    .send(
                        "POST",
                        &format!("/storage/files/{id}/visibility"),
                        &alice,
                        Some(json!({ "public": true })),
                    )
                    .await;
                assert_eq!(r.status, 200, "{}", r.text());
            }
            "revoked-owner" => {
                assert_eq!(grant(&f, &alice, &id, "user", "eve", "owner").await, 200);
                assert_eq!(revoke(&f, &alice, &id, "user", "eve", "owner").await, 200);
            }
            "expired-owner" => {
                let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
                let body = json!({ "file_id": id, "principal_type": "user", "principal_id": "eve",
                                   "permission": "owner", "expires_at": soon });
                let (status, v) = post(&f, "/storage/permissions/grant", &alice, body).await;
                assert_eq!(status, 200, "{v}");
                assert_eq!(v["data"]["permission"]["live"], true);
            }
            "live-write" | "live-delete" | "live-share" | "live-owner" => {
                let perm = case.strip_prefix("live-").unwrap();
                assert_eq!(grant(&f, &alice, &id, "user", "eve", perm).await, 200);
            }
            "org-read-grant" => {
                assert_eq!(
                    grant(&f, &alice, &id, "organization", "acme", "read").await,
                    200
                );
            }
            _ => {}
        }
        files.push(id);
    }
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    for ((case, who, expected), id) in cases.iter().zip(&files) {
        assert_eq!(probe(&f, who, id).await, *expected, "case {case}");
    }

    // Grant → the colleague reads → revoke → 404 at once, every time, for
    // every read path (get, url, list, check).
    let id = f.upload(&alice, "shared/plan.txt", b"plan").await;
    for round in 0..5 {
        assert_eq!(grant(&f, &alice, &id, "user", "eve", "read").await, 200);
        let r = f
            .send("GET", &format!("/storage/files/{id}"), &eve, None)
            .await;
        assert_eq!(r.status, 200, "round {round}: {}", r.text());
        assert_eq!(revoke(&f, &alice, &id, "user", "eve", "read").await, 200);
        let path = format!("/storage/files/{id}");
        let reads =
            futures_util::future::join_all((0..4).map(|_| f.send("GET", &path, &eve, None))).await;
        for r in reads {
            assert_eq!(
                r.status,
                404,
                "round {round}: read after revoke: {}",
                r.text()
            );
        }
        let r = f
            .send("GET", &format!("/storage/files/{id}/url"), &eve, None)
            .await;
        assert_eq!(r.status, 404, "round {round}");
        let (status, v) = post(
            &f,
            "/storage/files/list",
            &eve,
            json!({ "s3_id": f.s3_id, "prefix": "shared/" }),
        )
        .await;
        assert_eq!(
            (status, v["data"]["count"].clone()),
            (200, json!(0)),
            "round {round}"
        );
        let (status, _) = post(
            &f,
            "/storage/permissions/check",
            &eve,
            json!({ "file_id": id, "permission": "read" }),
        )
        .await;
        assert_eq!(status, 404, "round {round}");
    }

    // A sharer whose share is revoked while granting: grant and revoke are
    // serialized on the file; afterwards the sharer cannot grant.
    assert_eq!(grant(&f, &alice, &id, "user", "eve", "share").await, 200);
    let (a, b) = tokio::join!(
        grant(&f, &eve, &id, "user", "mallory", "read"),
        revoke(&f, &alice, &id, "user", "eve", "share"),
    );
    assert!(a == 200 || a == 404, "{a}");
    assert_eq!(b, 200);
    assert_eq!(grant(&f, &eve, &id, "user", "mallory", "read").await, 404);
    // Only an owner gives or takes ownership; a sharer may share.
    assert_eq!(grant(&f, &alice, &id, "user", "bob", "share").await, 200);
    assert_eq!(grant(&f, &bob, &id, "user", "bob", "owner").await, 403);
    assert_eq!(revoke(&f, &bob, &id, "user", "alice", "owner").await, 403);
    assert_eq!(grant(&f, &bob, &id, "user", "carol", "read").await, 200);
    // A sharer grants only what they hold: no escalation.
    assert_eq!(grant(&f, &bob, &id, "user", "carol", "write").await, 403);
    assert_eq!(grant(&f, &bob, &id, "user", "bob", "delete").await, 403);
    // A grant to a deleted file is a 404.
    let gone = f.upload(&alice, "shared/gone.txt", b"x").await;
    assert_eq!(
        f.send("DELETE", &format!("/storage/files/{gone}"), &alice, None)
            .await
            .status,
        200
    );
    assert_eq!(grant(&f, &alice, &gone, "user", "bob", "read").await, 404);

    // Bad input: 400 with the envelope.
    for body in [
        json!({ "file_id": id, "principal_type": "group", "principal_id": "x", "permission": "read" }),
        json!({ "file_id": id, "principal_type": "user", "principal_id": "", "permission": "read" }),
        json!({ "file_id": id, "principal_type": "user", "principal_id": "x", "permission": "admin" }),
        json!({ "file_id": id, "principal_type": "user", "principal_id": "x", "permission": "read",
                "expires_at": "2001-01-01T00:00:00Z" }),
        json!({ "file_id": id, "principal_type": "user", "principal_id": "x", "permission": "read",
                "expires_at": "tomorrow" }),
        json!({ "principal_type": "user", "principal_id": "x", "permission": "read" }),
    ] {
        let (status, v) = post(&f, "/storage/permissions/grant", &alice, body.clone()).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["status"], "error", "{v}");
    }
    let (status, _) = post(&f, "/storage/permissions/grant", &alice,
        json!({ "file_id": "not-a-uuid", "principal_type": "user", "principal_id": "x", "permission": "read" })).await;
    assert_eq!(status, 404);

    // List: an owner sees every grant (revoked ones on request), a reader
    // only theirs, an outsider nothing (404).
    let (status, v) = post(
        &f,
        "/storage/permissions/list",
        &alice,
        json!({ "file_id": id }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let live: Vec<String> = v["data"]["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}:{}",
                p["principal_id"].as_str().unwrap(),
                p["permission"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        live.contains(&"alice:owner".to_string()) && live.contains(&"bob:share".to_string()),
        "{live:?}"
    );
    assert!(
        !live.iter().any(|p| p == "eve:read" || p == "eve:share"),
        "{live:?}"
    );
    let (_, v) = post(
        &f,
        "/storage/permissions/list",
        &alice,
        json!({ "file_id": id, "include_revoked": true }),
    )
    .await;
    assert!(v["data"]["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["principal_id"] == "eve" && !p["revoked_at"].is_null()));
    let carol = f.user("carol", "initech");
    let (status, v) = post(
        &f,
        "/storage/permissions/list",
        &carol,
        json!({ "file_id": id }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["count"], 1, "{v}");
    assert_eq!(v["data"]["permissions"][0]["principal_id"], "carol");
    let (status, _) = post(
        &f,
        "/storage/permissions/list",
        &eve,
        json!({ "file_id": id }),
    )
    .await;
    assert_eq!(status, 404);

    // Check: the caller's own permission.
    let (status, v) = post(
        &f,
        "/storage/permissions/check",
        &carol,
        json!({ "file_id": id, "permission": "write" }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (
            v["data"]["allowed"].clone(),
            v["data"]["permission"].clone()
        ),
        (json!(false), json!("write"))
    );
    let (_, v) = post(
        &f,
        "/storage/permissions/check",
        &carol,
        json!({ "file_id": id, "permission": "read" }),
    )
    .await;
    assert_eq!(v["data"]["allowed"], true);
    let (_, v) = post(
        &f,
        "/storage/permissions/check",
        &bob,
        json!({ "file_id": id, "permission": "share" }),
    )
    .await;
    assert_eq!(v["data"]["allowed"], true);

    // Audit: owner and sharers read a file's events; a reader 403; an
    // outsider 404; without a file id, one's own events.
    let (status, v) = post(
        &f,
        "/storage/audit/list",
        &alice,
        json!({ "file_id": id, "limit": 500 }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let ops: Vec<String> = v["data"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                e["operation"].as_str().unwrap(),
                e["status"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        ops.contains(&"permission_revoke:success".to_string()),
        "{ops:?}"
    );
    assert!(
        ops.contains(&"permission_grant:error".to_string()),
        "denied grants are there: {ops:?}"
    );
    assert_eq!(
        ops.last().map(String::as_str),
        Some("upload_url:success"),
        "newest first: {ops:?}"
    );
    assert_eq!(v["data"]["events"][0]["s3_id"], json!(f.s3_id));
    let (_, page) = post(
        &f,
        "/storage/audit/list",
        &alice,
        json!({ "file_id": id, "limit": 2, "offset": 1 }),
    )
    .await;
    assert_eq!(page["data"]["count"], 2);
    assert_eq!(page["data"]["has_more"], true);
    // (The first listing added its own event, the newest: offset 1 skips it.)
    assert_eq!(
        page["data"]["events"][0]["id"],
        v["data"]["events"][0]["id"]
    );
    let (status, _) = post(&f, "/storage/audit/list", &carol, json!({ "file_id": id })).await;
    assert_eq!(status, 403);
    let (status, _) = post(&f, "/storage/audit/list", &eve, json!({ "file_id": id })).await;
    assert_eq!(status, 404);
    let (status, v) = post(&f, "/storage/audit/list", &carol, json!({})).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["data"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["actor_user_id"] == "carol"));
    assert!(v["data"]["count"].as_i64().unwrap() >= 3, "{v}");
    let (status, _) = post(&f, "/storage/audit/list", &alice, json!({ "limit": 501 })).await;
    assert_eq!(status, 400);
    s.stop().await;
}

#[tokio::test]
async fn folders_move_and_delete_all_or_nothing() {
    let s = TestServer::start_with(|c| allow(c, "127.0.0.1")).await;
    let f = Files::new(&s).await;
    let db = s.tenant().await;
    let alice = f.user("alice", "acme");
    let bob = f.user("bob", "acme");
    let eve = f.user("eve", "globex");
    let x = f.upload(&alice, "a/x.txt", b"x bytes").await;
    f.upload(&alice, "a/y.txt", b"y bytes").await;
    let z = f.upload(&alice, "a/sub/z.txt", b"z bytes").await;
    // Bob's file in the folder, readable by alice (organization) but not hers to move.
    let bobs = f.upload(&bob, "a/bob.txt", b"bob bytes").await;
    db.execute(
        "UPDATE athena.files SET visibility = 'organization' WHERE id = $1::text::uuid",
        &[&bobs],
    )
    .await
    .unwrap();

    // List and tree from readable rows.
    let (status, v) = post(
        &f,
        "/storage/folders/list",
        &alice,
        json!({ "s3_id": f.s3_id, "prefix": "a" }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["prefix"], "a/");
    assert_eq!(v["data"]["file_count"], 3);
    assert_eq!(
        v["data"]["folders"],
        json!([{ "name": "sub", "prefix": "a/sub/", "file_count": 1, "size_bytes": 7 }])
    );
    let (status, v) = post(
        &f,
        "/storage/folders/tree",
        &alice,
        json!({ "s3_id": f.s3_id, "prefix": "" }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let a = &v["data"]["tree"]["children"][0];
    assert_eq!(
        (
            a["name"].clone(),
            a["total_files"].clone(),
            a["file_count"].clone()
        ),
        (json!("a"), json!(4), json!(3))
    );
    assert_eq!(a["children"][0]["prefix"], "a/sub/");
    let (_, v) = post(
        &f,
        "/storage/folders/tree",
        &eve,
        json!({ "s3_id": f.s3_id, "prefix": "" }),
    )
    .await;
    assert_eq!(v["data"]["tree"]["total_files"], 0, "{v}");

    // One file alice may not move or delete: nothing happens.
    let (status, v) = post(
        &f,
        "/storage/folders/move",
        &alice,
        json!({ "s3_id": f.s3_id, "from_prefix": "a/", "to_prefix": "b/" }),
    )
    .await;
    assert_eq!(status, 403, "{v}");
    let (status, v) = post(
        &f,
        "/storage/folders/delete",
        &alice,
        json!({ "s3_id": f.s3_id, "prefix": "a/" }),
    )
    .await;
    assert_eq!(status, 403, "{v}");
    for key in ["a/x.txt", "a/y.txt", "a/sub/z.txt", "a/bob.txt"] {
        assert!(exists(&f, key).await, "{key} still there");
    }
    assert!(!exists(&f, "b/x.txt").await);
    let r = f
        .send("GET", &format!("/storage/files/{x}"), &alice, None)
        .await;
    assert_eq!(r.json()["data"]["file"]["storage_key"], "a/x.txt");
    assert_eq!(
        s.scalar("SELECT count(*) FROM athena.files WHERE status = 'soft_deleted'")
            .await,
        0
    );
    // An outsider sees no folder there.
    let (status, _) = post(
        &f,
        "/storage/folders/delete",
        &eve,
        json!({ "s3_id": f.s3_id, "prefix": "a/" }),
    )
    .await;
    assert_eq!(status, 404);
    // Bad input.
    for body in [
        json!({ "s3_id": f.s3_id, "from_prefix": "a/", "to_prefix": "a/sub/" }),
        json!({ "s3_id": f.s3_id, "from_prefix": "/", "to_prefix": "c/" }),
        json!({ "s3_id": f.s3_id, "from_prefix": "a/", "to_prefix": "../c/" }),
    ] {
        let (status, v) = post(&f, "/storage/folders/move", &alice, body.clone()).await;
        assert_eq!(status, 400, "{body}: {v}");
    }

    // A sub-folder alice owns moves: bytes at the new key, the old gone,
    // the same file id.
    let (status, v) = post(
        &f,
        "/storage/folders/move",
        &alice,
        json!({ "s3_id": f.s3_id, "from_prefix": "a/sub/", "to_prefix": "c/" }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["processed_files"], 1);
    assert!(exists(&f, "c/z.txt").await && !exists(&f, "a/sub/z.txt").await);
    let r = f
        .send("GET", &format!("/storage/files/{z}/url"), &alice, None)
        .await;
    assert_eq!(r.json()["data"]["storage_key"], "c/z.txt");
    assert_eq!(
        get_bytes(r.json()["data"]["url"].as_str().unwrap()).await,
        b"z bytes"
    );
    // Bob removes his file. Moving onto a taken key is refused; then the
    // whole folder moves and is deleted.
    assert_eq!(
        f.send("DELETE", &format!("/storage/files/{bobs}"), &bob, None)
            .await
            .status,
        200
    );
    f.upload(&alice, "d/x.txt", b"taken").await;
    let (status, _) = post(
        &f,
        "/storage/folders/move",
        &alice,
        json!({ "s3_id": f.s3_id, "from_prefix": "a/", "to_prefix": "d/" }),
    )
    .await;
    assert_eq!(status, 403);
    assert!(exists(&f, "a/x.txt").await && !exists(&f, "d/y.txt").await);
    let (status, v) = post(
        &f,
        "/storage/folders/move",
        &alice,
        json!({ "s3_id": f.s3_id, "from_prefix": "a", "to_prefix": "b" }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["processed_files"], 2);
    assert!(exists(&f, "b/x.txt").await && !exists(&f, "a/x.txt").await);
    let (_, v) = post(
        &f,
        "/storage/files/list",
        &alice,
        json!({ "s3_id": f.s3_id, "prefix": "b/" }),
    )
    .await;
    assert_eq!(v["data"]["count"], 2, "{v}");
    let (status, v) = post(
        &f,
        "/storage/folders/delete",
        &alice,
        json!({ "s3_id": f.s3_id, "prefix": "b/" }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["processed_files"], 2);
    assert!(!exists(&f, "b/x.txt").await && !exists(&f, "b/y.txt").await);
    let r = f
        .send("GET", &format!("/storage/files/{x}"), &alice, None)
        .await;
    assert_eq!(r.status, 404);
    let (status, v) = post(&f, "/storage/audit/list", &alice, json!({})).await;
    assert_eq!(status, 200);
    let ops: Vec<&str> = v["data"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["operation"].as_str())
        .collect();
    assert!(
        ops.contains(&"folder_delete") && ops.contains(&"folder_move"),
        "{ops:?}"
    );

    // The cap: more than 1,000 files under a prefix is a 400 saying so.
    db.execute(
        "INSERT INTO athena.files (id, client_name, s3_id, bucket, storage_key, name, organization_id,
                                   uploaded_by_user_id, status)
         SELECT gen_random_uuid(), $1, $2::text::uuid, $3, 'big/' || n || '.txt', n || '.txt', 'acme', 'alice', 'available'
           FROM generate_series(1, 1001) n",
        &[&CLIENT, &f.s3_id, &f.bucket],
    )
    .await
    .unwrap();
    let (status, v) = post(
        &f,
        "/storage/folders/delete",
        &alice,
        json!({ "s3_id": f.s3_id, "prefix": "big/" }),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["message"].as_str().unwrap_or_default().contains("1000")
            || v.to_string().contains("1000"),
        "{v}"
    );
    let (_, v) = post(
        &f,
        "/storage/folders/list",
        &alice,
        json!({ "s3_id": f.s3_id }),
    )
    .await;
    let names: Vec<&str> = v["data"]["folders"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert_eq!(names, ["big", "c", "d"], "{v}");
    s.stop().await;
}

#[tokio::test]
async fn list_and_search_filter_and_page() {
    let s = TestServer::start_with(|c| allow(c, "127.0.0.1")).await;
    let f = Files::new(&s).await;
    let db = s.tenant().await;
    let alice = f.user("alice", "acme");
    let eve = f.user("eve", "globex");
    // 12 of alice's rows under s/, and one of eve's (private).
    db.execute(
        "INSERT INTO athena.files (id, client_name, s3_id, bucket, storage_key, name, organization_id,
                                   uploaded_by_user_id, status, mime_type, resource_id, visibility, metadata)
         SELECT gen_random_uuid(), $1, $2::text::uuid, $3, 's/file-' || lpad(n::text, 2, '0') || '.txt',
                'file-' || lpad(n::text, 2, '0') || '.txt', 'acme', 'alice',
                CASE WHEN n % 3 = 0 THEN 'pending' ELSE 'available' END,
                CASE WHEN n % 2 = 0 THEN 'text/plain' ELSE 'image/png' END,
                CASE WHEN n <= 3 THEN 'r1' END,
                CASE WHEN n = 5 THEN 'public' ELSE 'private' END,
                CASE WHEN n % 4 = 0 THEN '{\"tag\": \"x\", \"n\": 1}'::jsonb ELSE '{}'::jsonb END
           FROM generate_series(1, 12) n",
        &[&CLIENT, &f.s3_id, &f.bucket],
    )
    .await
    .unwrap();
    db.execute(
        "INSERT INTO athena.files (id, client_name, s3_id, bucket, storage_key, name, organization_id, uploaded_by_user_id)
         VALUES (gen_random_uuid(), $1, $2::text::uuid, $3, 's/100%_done.txt', '100%_done.txt', 'globex', 'eve')",
        &[&CLIENT, &f.s3_id, &f.bucket],
    )
    .await
    .unwrap();
    let search = |who: &Who, body: Value| {
        let who = who.clone();
        let f = &f;
        async move {
            let mut body = body;
            body["s3_id"] = json!(f.s3_id);
            let (status, v) = post(f, "/storage/files/search", &who, body).await;
            assert_eq!(status, 200, "{v}");
            let keys: Vec<String> = v["data"]["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| {
                    x["name"]
                        .as_str()
                        .unwrap()
                        .trim_end_matches(".txt")
                        .to_string()
                })
                .collect();
            (keys, v["data"].clone())
        }
    };
    // Paging.
    let (keys, d) = search(&alice, json!({ "prefix": "s/", "limit": 5 })).await;
    assert_eq!(
        keys,
        ["file-01", "file-02", "file-03", "file-04", "file-05"]
    );
    assert_eq!(
        (d["has_more"].clone(), d["next_offset"].clone()),
        (json!(true), json!(5))
    );
    let (keys, d) = search(&alice, json!({ "prefix": "s/", "limit": 5, "offset": 10 })).await;
    assert_eq!(keys, ["file-11", "file-12"]);
    assert_eq!(d["has_more"], false);
    // Filters.
    let (keys, _) = search(&alice, json!({ "name": "file-07.txt" })).await;
    assert_eq!(keys, ["file-07"]);
    let (keys, _) = search(&alice, json!({ "resource_id": "r1" })).await;
    assert_eq!(keys, ["file-01", "file-02", "file-03"]);
    let (keys, _) = search(
        &alice,
        json!({ "mime_type": "image/*", "status": "pending" }),
    )
    .await;
    assert_eq!(keys, ["file-03", "file-09"]);
    let (keys, _) = search(
        &alice,
        json!({ "content_type": "text/plain", "metadata": { "tag": "x" } }),
    )
    .await;
    assert_eq!(keys, ["file-04", "file-08", "file-12"]);
    let (keys, _) = search(&alice, json!({ "visibility": "public" })).await;
    assert_eq!(keys, ["file-05"]);
    let (keys, _) = search(&alice, json!({ "query": "LE-1" })).await;
    assert_eq!(keys, ["file-10", "file-11", "file-12"]);
    // Wildcards are literal; eve's own file is hers only.
    let (keys, _) = search(&alice, json!({ "query": "%" })).await;
    assert!(keys.is_empty(), "{keys:?}");
    let (keys, _) = search(&eve, json!({ "query": "0%_d" })).await;
    assert_eq!(keys, ["100%_done"]);
    let (keys, _) = search(&eve, json!({ "prefix": "s/" })).await;
    assert_eq!(
        keys,
        ["100%_done", "file-05"],
        "eve: her own and the public one"
    );
    // The list route takes the same filters and pages.
    let (status, v) = post(
        &f,
        "/storage/files/list",
        &alice,
        json!({ "s3_id": f.s3_id, "prefix": "s/file-1", "limit": 1, "mime_type": "text/plain" }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["data"]["count"].clone(), v["data"]["has_more"].clone()),
        (json!(1), json!(true))
    );
    assert_eq!(v["data"]["files"][0]["name"], "file-10.txt");
    assert_eq!(v["data"]["files"][0]["visibility"], "private");
    // Bad input.
    for body in [
        json!({ "s3_id": f.s3_id, "limit": 501 }),
        json!({ "s3_id": f.s3_id, "limit": 0 }),
        json!({ "s3_id": f.s3_id, "offset": -1 }),
        json!({ "s3_id": f.s3_id, "status": "soft_deleted" }),
        json!({ "s3_id": f.s3_id, "visibility": "everyone" }),
        json!({ "s3_id": "nope" }),
        json!({ "s3_id": f.s3_id, "prefix": "../x" }),
    ] {
        let (status, v) = post(&f, "/storage/files/search", &alice, body.clone()).await;
        assert_eq!(status, 400, "{body}: {v}");
    }
    let (status, v) = post(&f, "/storage/files/list", &alice, json!({ "prefix": "s/" })).await;
    assert_eq!(status, 400, "{v}");
    s.stop().await;
}
