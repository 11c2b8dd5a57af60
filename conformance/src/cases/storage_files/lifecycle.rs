//! The lifecycle of a managed file: update (move), copy, restore, purge,
//! public URL, versions (the run's bucket is unversioned: its one version
//! is `null`), retention (the bucket has no Object Lock: the documented
//! 400), and the batches. Each case reads its effect back: rows through
//! get/list, objects through S3 (`exists`, version listings).

use super::super::storage_s3::{data, S3Cases};
use super::super::{envelope, expect_eq, Case};
use super::{as_user, file, status_is, with};
use crate::http::Request;
use serde_json::{json, Value};

/// `data.file.storage_key` is `want`.
fn key_is(want: &'static str) -> impl Fn(&Value) -> Result<(), String> + Send + Sync + 'static {
    move |v: &Value| {
        expect_eq(
            "storage_key",
            &data(v)?["file"]["storage_key"],
            &json!(want),
        )
    }
}

pub(super) fn cases(s: &S3Cases<'_>) -> Vec<Case> {
    let ctx = s.ctx;
    let file = |b: &str, bytes: bool, confirm: bool| file(s, b, bytes, confirm);
    let get = || as_user(ctx.request("get", "/storage/files/{{2.data.file.id}}"));
    let exists = |b: &str, key: &str, want: bool| {
        let what = format!("{key} exists");
        (s.exists(b, key), 200, move |v: &Value| {
            expect_eq(&what, &data(v)?["exists"], &json!(want))
        })
    };
    let mut out = Vec::new();

    // PATCH: a move; the object follows the row.
    let b = s.bucket();
    let (gone, moved) = (
        exists(&b, "docs/file.txt", false),
        exists(&b, "moved/file.txt", true),
    );
    out.push(
        with(
            Case::new(
                "patch_storage_files_by_file_id",
                "moves a file: the object is copied, the row follows, the old key is gone",
                as_user(ctx.request("patch", "/storage/files/{{2.data.file.id}}"))
                    .json(json!({ "storage_key": "moved/file.txt" })),
                200,
            ),
            file(&b, true, true),
        )
        .check_json(key_is("moved/file.txt"))
        .then_json(get(), 200, key_is("moved/file.txt"))
        .then_json(gone.0, gone.1, gone.2)
        .then_json(moved.0, moved.1, moved.2),
    );

    // Copy: a new available file of the caller at the new key.
    let b = s.bucket();
    let copied = exists(&b, "copies/file.txt", true);
    out.push(
        with(
            Case::new(
                "post_storage_files_by_file_id_copy",
                "copies a file to a new key: a new row, the object copied by the store",
                as_user(ctx.request("post", "/storage/files/{{2.data.file.id}}/copy"))
                    .json(json!({ "storage_key": "copies/file.txt" })),
                200,
            ),
            file(&b, true, true),
        )
        .check_json(|v| {
            let f = &data(v)?["file"];
            expect_eq("owner", &f["uploaded_by_user_id"], &json!("conf-user"))?;
            expect_eq("size", &f["size_bytes"], &json!(15))?;
            expect_eq("storage_key", &f["storage_key"], &json!("copies/file.txt"))
        })
        .then_json(
            as_user(ctx.request("get", "/storage/files/{{r.data.file.id}}")),
            200,
            status_is("available"),
        )
        .then_json(get(), 200, key_is("docs/file.txt"))
        .then_json(copied.0, copied.1, copied.2),
    );

    // Restore: a deleted file whose object is back (put again through
    // its upload URL) comes back.
    let b = s.bucket();
    let mut steps = file(&b, true, true);
    steps.push(as_user(
        ctx.request("delete", "/storage/files/{{2.data.file.id}}"),
    ));
    steps.push(
        Request::new("put", "{{2.data.upload.url}}")
            .header("content-type", "text/plain")
            .json(json!("managed bytes")),
    );
    out.push(
        with(
            Case::new(
                "post_storage_files_by_file_id_restore",
                "a soft-deleted file whose object exists is available again",
                as_user(ctx.request("post", "/storage/files/{{2.data.file.id}}/restore")),
                200,
            ),
            steps,
        )
        .check_json(status_is("available"))
        .then_json(get(), 200, status_is("available")),
    );

    // Purge: the row is purged, every version of the object gone.
    let b = s.bucket();
    let gone = exists(&b, "docs/file.txt", false);
    out.push(
        with(
            Case::new(
                "delete_storage_files_by_file_id_purge",
                "purges a file: the row is purged, no version of the object is left",
                as_user(ctx.request("delete", "/storage/files/{{2.data.file.id}}/purge")),
                200,
            ),
            file(&b, true, true),
        )
        .check_json(status_is("purged"))
        .then_status(get(), 404)
        .then_json(gone.0, gone.1, gone.2)
        .then_json(
            s.post(
                "/storage/objects/versions",
                &b,
                json!({ "key": "docs/file.txt" }),
            ),
            200,
            |v| expect_eq("versions", &data(v)?["versions"], &json!([])),
        ),
    );

    // Public URL: a public file's URL serves it without credentials.
    let b = s.bucket();
    let mut steps = file(&b, true, true);
    steps.push(
        as_user(ctx.request("post", "/storage/files/{{2.data.file.id}}/visibility"))
            .json(json!({ "public": true })),
    );
    out.push(
        with(
            Case::new(
                "get_storage_files_by_file_id_public_url",
                "a public file's URL, readable without credentials",
                as_user(ctx.request("get", "/storage/files/{{2.data.file.id}}/public-url")),
                200,
            ),
            steps,
        )
        .check_json({
            let prefix = format!("{}/{b}/docs/file.txt?", s.store.endpoint);
            move |v| {
                let d = data(v)?;
                expect_eq(
                    "URL of the object",
                    d["url"].as_str().is_some_and(|u| u.starts_with(&prefix)),
                    true,
                )?;
                expect_eq("lifetime", &d["expires_in"], &json!(900))
            }
        })
        .then_status(Request::new("get", "{{r.data.url}}"), 200),
    );
    let b = s.bucket();
    out.push(
        with(
            Case::new(
                "get_storage_files_by_file_id_public_url",
                "a private file has no public URL (403)",
                as_user(ctx.request("get", "/storage/files/{{2.data.file.id}}/public-url")),
                403,
            ),
            file(&b, true, true),
        )
        .then_json(get(), 200, |v| {
            expect_eq(
                "still private",
                &data(v)?["file"]["is_public"],
                &json!(false),
            )
        }),
    );

    // Versions on an unversioned bucket: the one `null` version.
    let b = s.bucket();
    out.push(
        with(
            Case::new(
                "get_storage_files_by_file_id_versions",
                "the versions of a file's object",
                as_user(ctx.request("get", "/storage/files/{{2.data.file.id}}/versions")),
                200,
            ),
            file(&b, true, true),
        )
        .check_json(|v| {
            let d = data(v)?;
            expect_eq("count", &d["count"], &json!(1))?;
            expect_eq("version", &d["versions"][0]["version_id"], &json!("null"))?;
            expect_eq("latest", &d["versions"][0]["is_latest"], &json!(true))
        })
        .then_json(
            s.post(
                "/storage/objects/versions",
                &b,
                json!({ "key": "docs/file.txt" }),
            ),
            200,
            |v| {
                let versions = data(v)?["versions"].as_array().ok_or("no versions")?.len();
                expect_eq("S3 lists the same", versions, 1)
            },
        ),
    );
    let b = s.bucket();
    let kept = exists(&b, "docs/file.txt", true);
    out.push(
        with(
            Case::new(
                "post_storage_files_by_file_id_versions_by_version_id_restore",
                "makes a version current again",
                as_user(ctx.request(
                    "post",
                    "/storage/files/{{2.data.file.id}}/versions/null/restore",
                )),
                200,
            ),
            file(&b, true, true),
        )
        .check_json(|v| {
            let d = data(v)?;
            expect_eq("restored", &d["restored_version_id"], &json!("null"))?;
            expect_eq("size", &d["file"]["size_bytes"], &json!(15))
        })
        .then_json(get(), 200, status_is("available"))
        .then_json(kept.0, kept.1, kept.2),
    );
    let b = s.bucket();
    let gone = exists(&b, "docs/file.txt", false);
    out.push(
        with(
            Case::new(
                "delete_storage_files_by_file_id_versions_by_version_id",
                "deletes the only version: the object is gone, the file soft-deleted",
                as_user(ctx.request("delete", "/storage/files/{{2.data.file.id}}/versions/null")),
                200,
            ),
            file(&b, true, true),
        )
        .check_json(|v| {
            let d = data(v)?;
            expect_eq("deleted", &d["deleted"], &json!(true))?;
            expect_eq("status", &d["file"]["status"], &json!("soft_deleted"))
        })
        .then_status(get(), 404)
        .then_json(gone.0, gone.1, gone.2),
    );

    // Retention: the run's bucket has no Object Lock (buckets get it only
    // when created with it): the documented 400 naming it; nothing set.
    let b = s.bucket();
    out.push(
        with(
            Case::new(
                "post_storage_files_by_file_id_retention",
                "a bucket without Object Lock: 400 naming it",
                as_user(ctx.request("post", "/storage/files/{{2.data.file.id}}/retention"))
                    .json(json!({ "mode": "GOVERNANCE", "retain_until": "2099-01-01T00:00:00Z" })),
                400,
            ),
            file(&b, true, true),
        )
        .check(|r| {
            envelope(r)?;
            let named = r.json()?["error"]
                .as_str()
                .is_some_and(|e| e.contains("Object Lock"));
            expect_eq("names Object Lock", named, true)
        })
        .then_json(get(), 200, status_is("available")),
    );

    // Batches.
    let b = s.bucket();
    let gone = exists(&b, "docs/file.txt", false);
    out.push(
        with(
            Case::new(
                "post_storage_files_delete_many",
                "deletes the files named",
                as_user(ctx.request("post", "/storage/files/delete-many"))
                    .json(json!({ "file_ids": ["{{2.data.file.id}}"] })),
                200,
            ),
            file(&b, true, true),
        )
        .check_json(|v| expect_eq("count", &data(v)?["count"], &json!(1)))
        .then_status(get(), 404)
        .then_json(gone.0, gone.1, gone.2),
    );
    let b = s.bucket();
    out.push(
        with(
            Case::new(
                "post_storage_files_update_many",
                "the same change on every file named",
                as_user(ctx.request("post", "/storage/files/update-many")).json(
                    json!({ "file_ids": ["{{2.data.file.id}}"], "metadata": { "tag": "conf" } }),
                ),
                200,
            ),
            file(&b, false, false),
        )
        .check_json(|v| expect_eq("count", &data(v)?["count"], &json!(1)))
        .then_json(get(), 200, |v| {
            expect_eq(
                "metadata",
                &data(v)?["file"]["metadata"],
                &json!({ "tag": "conf" }),
            )
        }),
    );
    let b = s.bucket();
    out.push(
        with(
            Case::new(
                "post_storage_files_visibility_many",
                "makes every file named public",
                as_user(ctx.request("post", "/storage/files/visibility-many"))
                    .json(json!({ "file_ids": ["{{2.data.file.id}}"], "public": true })),
                200,
            ),
            file(&b, false, false),
        )
        .check_json(|v| expect_eq("count", &data(v)?["count"], &json!(1)))
        .then_json(get(), 200, |v| {
            expect_eq("is_public", &data(v)?["file"]["is_public"], &json!(true))
        }),
    );
    let b = s.bucket();
    let mut steps = file(&b, false, false);
    steps.truncate(2);
    out.push(
        with(
            Case::new(
                "post_storage_files_upload_urls",
                "pending files and their upload URLs, all at once",
                as_user(ctx.request("post", "/storage/files/upload-urls")).json(json!({ "files": [
                    { "s3_id": "{{1.id}}", "storage_key": "many/a.txt", "content_type": "text/plain" },
                    { "s3_id": "{{1.id}}", "storage_key": "many/b.txt", "content_type": "text/plain" },
                ] })),
                201,
            ),
            steps,
        )
        .check_json(|v| {
            let files = data(v)?["files"].as_array().ok_or("no files")?.clone();
            expect_eq("two", files.len(), 2)?;
            expect_eq(
                "signed PUTs",
                files.iter().all(|f| {
                    f["upload"]["url"]
                        .as_str()
                        .is_some_and(|u| u.contains("X-Amz-Signature="))
                }),
                true,
            )
        })
        .then_json(
            as_user(ctx.request("post", "/storage/files/list"))
                .json(json!({ "s3_id": "{{1.id}}", "prefix": "many/" })),
            200,
            |v| expect_eq("listed", &data(v)?["count"], &json!(2)),
        ),
    );
    out
}

/// The SDK-only `GET /storage/files/{file_id}/retention` (overlay).
pub(super) fn sdk_only_cases(s: &S3Cases<'_>) -> Vec<Case> {
    let ctx = s.ctx;
    let b = s.bucket();
    vec![with(
        Case::new(
            "get_storage_files_by_file_id_retention",
            "a file without retention (its bucket has no Object Lock): mode and date null",
            as_user(ctx.request("get", "/storage/files/{{2.data.file.id}}/retention")),
            200,
        ),
        file(s, &b, true, true),
    )
    .check_json(|v| {
        let d = data(v)?;
        expect_eq("key", &d["storage_key"], &json!("docs/file.txt"))?;
        expect_eq("mode", &d["mode"], &Value::Null)?;
        expect_eq("retain_until", &d["retain_until"], &Value::Null)
    })
    .then_json(
        as_user(ctx.request("get", "/storage/files/{{2.data.file.id}}")),
        200,
        |v| expect_eq("the file", &data(v)?["file"]["status"], &json!("available")),
    )]
}
