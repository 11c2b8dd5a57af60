//! The SDK's service routes (`/storage/service/files*`, SDK-only): the
//! run's admin key acting for `conf-org` (`X-Organization-Id`) on a file
//! `conf-user` uploaded. Each case reads its effect back through the
//! end-user routes (the same rows) or S3.

use super::super::storage_s3::{data, S3Cases};
use super::super::{expect_eq, Case};
use super::{as_user, file, with};
use crate::http::Request;
use serde_json::{json, Value};

/// `request` as a service acting for `conf-org`.
fn as_service(r: Request) -> Request {
    r.header("X-Organization-Id", "conf-org")
}

/// `data.file.<field>` is `want`.
fn file_field(
    field: &'static str,
    want: Value,
) -> impl Fn(&Value) -> Result<(), String> + Send + Sync + 'static {
    move |v: &Value| expect_eq(field, &data(v)?["file"][field], &want)
}

pub(super) fn sdk_only_cases(s: &S3Cases<'_>) -> Vec<Case> {
    let ctx = s.ctx;
    let user_get = || as_user(ctx.request("get", "/storage/files/{{2.data.file.id}}"));
    let exists = |b: &str, key: &str, want: bool| {
        let what = format!("{key} exists");
        (s.exists(b, key), 200, move |v: &Value| {
            expect_eq(&what, &data(v)?["exists"], &json!(want))
        })
    };
    let mut out = Vec::new();

    let b = s.bucket();
    out.push(
        with(
            Case::new(
                "get_storage_service_files_by_file_id",
                "the organization's file, as the SDK's ManagedFile",
                as_service(ctx.request("get", "/storage/service/files/{{2.data.file.id}}")),
                200,
            ),
            file(s, &b, true, true),
        )
        .check_json(|v| {
            let f = &data(v)?["file"];
            expect_eq("key", &f["key"], &json!("docs/file.txt"))?;
            expect_eq(
                "createdByUserId",
                &f["createdByUserId"],
                &json!("conf-user"),
            )?;
            expect_eq("sizeBytes", &f["sizeBytes"], &json!(15))
        })
        .then_status(
            ctx.request("get", "/storage/service/files/{{2.data.file.id}}")
                .header("X-Organization-Id", "another-org"),
            404,
        ),
    );

    let b = s.bucket();
    out.push(
        with(
            Case::new(
                "post_storage_service_files_list",
                "the organization's files under a prefix of the connection",
                as_service(ctx.request("post", "/storage/service/files/list"))
                    .json(json!({ "connectionId": "{{1.id}}", "prefix": "docs/" })),
                200,
            ),
            file(s, &b, false, false),
        )
        .check_json(|v| {
            let files = data(v)?["files"].as_array().ok_or("no files")?;
            expect_eq("count", files.len(), 1)?;
            expect_eq("key", &files[0]["key"], &json!("docs/file.txt"))
        }),
    );

    let b = s.bucket();
    let gone = exists(&b, "docs/file.txt", false);
    out.push(
        with(
            Case::new(
                "delete_storage_service_files_by_file_id",
                "deletes the object, soft-deletes the row",
                as_service(ctx.request("delete", "/storage/service/files/{{2.data.file.id}}")),
                200,
            ),
            file(s, &b, true, true),
        )
        .check_json(file_field("status", json!("soft_deleted")))
        .then_status(user_get(), 404)
        .then_json(gone.0, gone.1, gone.2),
    );

    let b = s.bucket();
    out.push(
        with(
            Case::new(
                "post_storage_service_files_by_file_id_visibility",
                "organization visibility: a colleague may read it",
                as_service(ctx.request(
                    "post",
                    "/storage/service/files/{{2.data.file.id}}/visibility",
                ))
                .json(json!({ "visibility": "organization" })),
                200,
            ),
            file(s, &b, true, true),
        )
        .check_json(file_field("visibility", json!("organization")))
        .then_json(
            ctx.request("get", "/storage/files/{{2.data.file.id}}")
                .header("X-User-Id", "conf-colleague")
                .header("X-Organization-Id", "conf-org"),
            200,
            |v| {
                expect_eq(
                    "readable",
                    &data(v)?["file"]["storage_key"],
                    &json!("docs/file.txt"),
                )
            },
        ),
    );

    let b = s.bucket();
    let (old, new) = (
        exists(&b, "docs/file.txt", false),
        exists(&b, "docs/moved.txt", true),
    );
    out.push(
        with(
            Case::new(
                "post_storage_service_files_by_file_id_move",
                "moves the object, the row follows",
                as_service(ctx.request("post", "/storage/service/files/{{2.data.file.id}}/move"))
                    .json(json!({ "destinationKey": "docs/moved.txt" })),
                200,
            ),
            file(s, &b, true, true),
        )
        .check_json(file_field("key", json!("docs/moved.txt")))
        .then_json(user_get(), 200, |v| {
            expect_eq(
                "key",
                &data(v)?["file"]["storage_key"],
                &json!("docs/moved.txt"),
            )
        })
        .then_json(old.0, old.1, old.2)
        .then_json(new.0, new.1, new.2),
    );

    // Restore: deleted, its object put back, restored.
    let b = s.bucket();
    let mut steps = file(s, &b, true, true);
    steps.push(as_service(
        ctx.request("delete", "/storage/service/files/{{2.data.file.id}}"),
    ));
    steps.push(
        Request::new("put", "{{2.data.upload.url}}")
            .header("content-type", "text/plain")
            .json(json!("managed bytes")),
    );
    out.push(
        with(
            Case::new(
                "post_storage_service_files_by_file_id_restore",
                "a deleted file whose object exists is available again",
                as_service(
                    ctx.request("post", "/storage/service/files/{{2.data.file.id}}/restore"),
                ),
                200,
            ),
            steps,
        )
        .check_json(file_field("status", json!("available")))
        .then_json(user_get(), 200, |v| {
            expect_eq("status", &data(v)?["file"]["status"], &json!("available"))
        }),
    );

    let b = s.bucket();
    let gone = exists(&b, "docs/file.txt", false);
    out.push(
        with(
            Case::new(
                "delete_storage_service_files_by_file_id_purge",
                "purges: the row gone for good, no object left",
                as_service(
                    ctx.request("delete", "/storage/service/files/{{2.data.file.id}}/purge"),
                ),
                200,
            ),
            file(s, &b, true, true),
        )
        .check_json(|v| {
            expect_eq(
                "fileId",
                data(v)?["fileId"].as_str().is_some_and(|s| s.len() == 36),
                true,
            )
        })
        .then_status(user_get(), 404)
        .then_json(gone.0, gone.1, gone.2),
    );
    // Upload: inline bytes, then read back through S3 (HEAD size) and the
    // end-user routes (the same row).
    let b = s.bucket();
    let mut steps = file(s, &b, false, false);
    steps.truncate(2);
    out.push(
        with(
            Case::new(
                "post_storage_service_files",
                "inline bytes become an available file of the organization",
                as_service(ctx.request("post", "/storage/service/files")).json(json!({
                    "body": "c2VydmljZSBieXRlcw==", "bucket": b, "connectionId": "{{1.id}}",
                    "key": "svc/inline.txt", "contentType": "text/plain",
                })),
                200,
            ),
            steps,
        )
        .check_json(|v| {
            let f = &data(v)?["file"];
            expect_eq("status", &f["status"], &json!("available"))?;
            expect_eq("sizeBytes", &f["sizeBytes"], &json!(13))
        })
        .then_json(
            as_service(ctx.request("get", "/storage/service/files/{{r.data.file.id}}")),
            200,
            |v| {
                expect_eq(
                    "read back",
                    &data(v)?["file"]["key"],
                    &json!("svc/inline.txt"),
                )
            },
        )
        .then_json(
            s.post(
                "/storage/objects/head",
                &b,
                json!({ "key": "svc/inline.txt" }),
            ),
            200,
            |v| expect_eq("stored size", &data(v)?["size"], &json!(13)),
        ),
    );

    // Permissions: grant, list, revoke (read back as the grantee).
    let grant =
        json!({ "action": "read", "principalType": "user", "principalId": "conf-colleague" });
    let colleague_get = || {
        ctx.request("get", "/storage/files/{{2.data.file.id}}")
            .header("X-User-Id", "conf-colleague")
            .header("X-Organization-Id", "conf-org")
    };
    let b = s.bucket();
    out.push(
        with(
            Case::new(
                "post_storage_service_files_by_file_id_permissions_grant",
                "a read grant: the grantee may read the file",
                as_service(ctx.request(
                    "post",
                    "/storage/service/files/{{2.data.file.id}}/permissions/grant",
                ))
                .json(grant.clone()),
                200,
            ),
            file(s, &b, true, true),
        )
        .check_json(|v| {
            let p = &data(v)?["permission"];
            expect_eq("action", &p["action"], &json!("read"))?;
            expect_eq("principalId", &p["principalId"], &json!("conf-colleague"))
        })
        .then_json(colleague_get(), 200, |v| {
            expect_eq(
                "readable",
                &data(v)?["file"]["storage_key"],
                &json!("docs/file.txt"),
            )
        }),
    );
    let b = s.bucket();
    let mut steps = file(s, &b, true, true);
    steps.push(
        as_service(ctx.request(
            "post",
            "/storage/service/files/{{2.data.file.id}}/permissions/grant",
        ))
        .json(grant.clone()),
    );
    out.push(
        with(
            Case::new(
                "get_storage_service_files_by_file_id_permissions",
                "the file's live grants (the owner's and the colleague's)",
                as_service(ctx.request(
                    "get",
                    "/storage/service/files/{{2.data.file.id}}/permissions",
                )),
                200,
            ),
            steps,
        )
        .check_json(|v| {
            let all = data(v)?["permissions"].as_array().ok_or("no permissions")?;
            expect_eq(
                "the colleague's read grant",
                all.iter()
                    .any(|p| p["principalId"] == "conf-colleague" && p["action"] == "read"),
                true,
            )
        }),
    );
    let b = s.bucket();
    let mut steps = file(s, &b, true, true);
    steps.push(
        as_service(ctx.request(
            "post",
            "/storage/service/files/{{2.data.file.id}}/permissions/grant",
        ))
        .json(grant.clone()),
    );
    out.push(
        with(
            Case::new(
                "post_storage_service_files_by_file_id_permissions_revoke",
                "a revoked grant: the colleague sees nothing at once",
                as_service(ctx.request(
                    "post",
                    "/storage/service/files/{{2.data.file.id}}/permissions/revoke",
                ))
                .json(grant),
                200,
            ),
            steps,
        )
        .check_json(|v| {
            expect_eq(
                "fileId",
                data(v)?["fileId"].as_str().is_some_and(|s| s.len() == 36),
                true,
            )
        })
        .then_status(colleague_get(), 404),
    );
    out
}
