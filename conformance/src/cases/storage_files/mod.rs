//! Managed files (`/storage/files…`, `/storage/folders…`,
//! `/storage/permissions…`, `/storage/multipart…`, `/storage/audit…`;
//! issue 12) on the run's S3 store. The end user is named by the trusted
//! headers the admin key may send (`as_user`); each case sets up its own
//! bucket, catalog and file (`file`) and reads its effect back (rows through
//! the API, bytes through S3). One submodule per group of operations.

use super::storage_s3::{data, S3Cases};
use super::{expect_eq, Case};
use crate::http::Request;
use serde_json::{json, Value};

mod folders;
mod lifecycle;
mod service;
mod sharing;
mod streams;

/// Every managed-file case.
pub(super) fn cases(s: &S3Cases<'_>) -> Vec<Case> {
    let mut out = Vec::new();
    out.extend(core_cases(s));
    out.extend(lifecycle::cases(s));
    out.extend(streams::cases(s));
    out.extend(sharing::cases(s));
    out.extend(folders::cases(s));
    out
}

/// The SDK-only managed-file operations (`openapi/sdk-overlay.yaml`).
pub(super) fn sdk_only_cases(s: &S3Cases<'_>) -> Vec<Case> {
    let mut out = lifecycle::sdk_only_cases(s);
    out.extend(service::sdk_only_cases(s));
    out.extend(streams::sdk_only_cases(s));
    out
}

/// `request` as the conformance end user (`conf-user` of `conf-org`).
pub(super) fn as_user(r: Request) -> Request {
    r.header("X-User-Id", "conf-user")
        .header("X-Organization-Id", "conf-org")
}

/// Setup steps for one file at `docs/file.txt` in `bucket`: 0 bucket,
/// 1 catalog (`{{1.id}}`), 2 upload URL (`{{2.data.file.id}}`), then
/// optionally 3 the PUT of `"managed bytes"` (15 bytes) and 4 the confirm.
pub(super) fn file(s: &S3Cases<'_>, b: &str, bytes: bool, confirm: bool) -> Vec<Request> {
    let ctx = s.ctx;
    let mut steps = vec![
        s.create(b),
        ctx.request("post", "/storage/catalogs").json(json!({
            "name": format!("conf-files-{b}"), "endpoint": s.store.endpoint, "region": "us-east-1",
            "bucket": b, "access_key_id": s.store.access_key, "secret_key": s.store.secret_key,
        })),
        as_user(ctx.request("post", "/storage/files/upload-url"))
            .json(json!({ "s3_id": "{{1.id}}", "storage_key": "docs/file.txt", "content_type": "text/plain" })),
    ];
    if bytes {
        steps.push(
            Request::new("put", "{{2.data.upload.url}}")
                .header("content-type", "text/plain")
                .json(json!("managed bytes")),
        );
    }
    if confirm {
        steps.push(
            as_user(ctx.request("post", "/storage/files/{{2.data.file.id}}/confirm-upload"))
                .json(json!({})),
        );
    }
    steps
}

/// `case` after `steps`.
pub(super) fn with(case: Case, steps: Vec<Request>) -> Case {
    steps.into_iter().fold(case, Case::after)
}

/// A check that `data.file.status` is `want`.
pub(super) fn status_is(
    want: &'static str,
) -> impl Fn(&Value) -> Result<(), String> + Send + Sync + 'static {
    move |v: &Value| expect_eq("status", &data(v)?["file"]["status"], &json!(want))
}

/// The core operations: upload URL, get, confirm, URL, delete, list, visibility.
fn core_cases(s: &S3Cases<'_>) -> Vec<Case> {
    let ctx = s.ctx;
    let file = |b: &str, bytes: bool, confirm: bool| file(s, b, bytes, confirm);
    let mut out = Vec::new();

    let b = s.bucket();
    let mut steps = file(&b, false, false);
    steps.truncate(2);
    out.push(
        with(
            Case::new(
                "post_storage_files_upload_url",
                "a pending file owned by the end user, and its upload URL",
                as_user(ctx.request("post", "/storage/files/upload-url"))
                    .json(json!({ "s3_id": "{{1.id}}", "storage_key": "docs/new.txt", "content_type": "text/plain" })),
                201,
            ),
            steps,
        )
        .check_json(|v| {
            let d = data(v)?;
            expect_eq("owner", &d["file"]["uploaded_by_user_id"], &json!("conf-user"))?;
            expect_eq("signed PUT", d["upload"]["url"].as_str().is_some_and(|u| u.contains("X-Amz-Signature=")), true)
        })
        .then_json(as_user(ctx.request("get", "/storage/files/{{r.data.file.id}}")), 200, status_is("pending")),
    );
    let b = s.bucket();
    out.push(
        with(
            Case::new(
                "get_storage_files_by_file_id",
                "the end user's file",
                as_user(ctx.request("get", "/storage/files/{{2.data.file.id}}")),
                200,
            ),
            file(&b, false, false),
        )
        .check_json(|v| {
            expect_eq(
                "storage_key",
                &data(v)?["file"]["storage_key"],
                &json!("docs/file.txt"),
            )
        }),
    );
    let b = s.bucket();
    out.push(
        with(
            Case::new(
                "post_storage_files_by_file_id_confirm_upload",
                "the uploaded object makes the file available",
                as_user(ctx.request("post", "/storage/files/{{2.data.file.id}}/confirm-upload"))
                    .json(json!({})),
                200,
            ),
            file(&b, true, false),
        )
        .check_json(|v| expect_eq("size", &data(v)?["file"]["size_bytes"], &json!(15)))
        .then_json(
            as_user(ctx.request("get", "/storage/files/{{2.data.file.id}}")),
            200,
            status_is("available"),
        ),
    );
    let b = s.bucket();
    out.push(
        with(
            Case::new(
                "get_storage_files_by_file_id_url",
                "a download URL for an available file",
                as_user(ctx.request("get", "/storage/files/{{2.data.file.id}}/url")),
                200,
            ),
            file(&b, true, true),
        )
        .check_json({
            let prefix = format!("{}/{b}/docs/file.txt?", s.store.endpoint);
            move |v| {
                let d = data(v)?;
                expect_eq(
                    "signed GET",
                    d["url"].as_str().is_some_and(|u| u.starts_with(&prefix)),
                    true,
                )?;
                expect_eq("purpose", &d["purpose"], &json!("read"))
            }
        }),
    );
    let b = s.bucket();
    out.push(
        with(
            Case::new(
                "delete_storage_files_by_file_id",
                "deletes the object, soft-deletes the row",
                as_user(ctx.request("delete", "/storage/files/{{2.data.file.id}}")),
                200,
            ),
            file(&b, true, true),
        )
        .check_json(status_is("soft_deleted"))
        .then_status(
            as_user(ctx.request("get", "/storage/files/{{2.data.file.id}}")),
            404,
        )
        .then_json(s.exists(&b, "docs/file.txt"), 200, |v| {
            expect_eq("object gone", &data(v)?["exists"], &json!(false))
        }),
    );
    let b = s.bucket();
    out.push(
        with(
            Case::new(
                "post_storage_files_list",
                "the end user's files under a prefix",
                as_user(ctx.request("post", "/storage/files/list"))
                    .json(json!({ "s3_id": "{{1.id}}", "prefix": "docs/" })),
                200,
            ),
            file(&b, false, false),
        )
        .check_json(|v| {
            let d = data(v)?;
            expect_eq("count", &d["count"], &json!(1))?;
            expect_eq(
                "key",
                &d["files"][0]["storage_key"],
                &json!("docs/file.txt"),
            )
        }),
    );
    for (op, method) in [
        ("post_storage_files_by_file_id_visibility", "post"),
        ("patch_storage_files_by_file_id_visibility", "patch"),
    ] {
        let b = s.bucket();
        out.push(
            with(
                Case::new(
                    op,
                    "the owner makes a file public",
                    as_user(ctx.request(method, "/storage/files/{{2.data.file.id}}/visibility"))
                        .json(json!({ "public": true })),
                    200,
                ),
                file(&b, false, false),
            )
            .check_json(|v| expect_eq("is_public", &data(v)?["file"]["is_public"], &json!(true)))
            .then_json(
                as_user(ctx.request("get", "/storage/files/{{2.data.file.id}}")),
                200,
                |v| expect_eq("read back", &data(v)?["file"]["is_public"], &json!(true)),
            ),
        );
    }
    out
}
