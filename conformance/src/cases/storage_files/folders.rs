//! Folders of managed files (`/storage/folders/*`): built from the end
//! user's readable rows; delete and move read back through the API (rows)
//! and S3 (bytes).

use super::{as_user, file, with};
use crate::cases::storage_s3::{data, S3Cases};
use crate::cases::{expect_eq, Case};
use serde_json::json;

pub(super) fn cases(s: &S3Cases<'_>) -> Vec<Case> {
    let ctx = s.ctx;
    let get = || as_user(ctx.request("get", "/storage/files/{{2.data.file.id}}"));
    let mut out = Vec::new();

    let b = s.bucket();
    out.push(
        with(
            Case::new(
                "post_storage_folders_list",
                "the catalog's top folders with their file counts",
                as_user(ctx.request("post", "/storage/folders/list"))
                    .json(json!({ "s3_id": "{{1.id}}", "prefix": "" })),
                200,
            ),
            file(s, &b, true, true),
        )
        .check_json(|v| {
            expect_eq(
                "folders",
                &data(v)?["folders"],
                &json!([{ "name": "docs", "prefix": "docs/", "file_count": 1, "size_bytes": 15 }]),
            )
        }),
    );

    let b = s.bucket();
    out.push(
        with(
            Case::new(
                "post_storage_folders_tree",
                "the tree below the root",
                as_user(ctx.request("post", "/storage/folders/tree"))
                    .json(json!({ "s3_id": "{{1.id}}", "prefix": "" })),
                200,
            ),
            file(s, &b, false, false),
        )
        .check_json(|v| {
            let t = &data(v)?["tree"];
            expect_eq("total", &t["total_files"], &json!(1))?;
            expect_eq("child", &t["children"][0]["prefix"], &json!("docs/"))
        }),
    );

    let b = s.bucket();
    let (exists, status, gone) = s.exists_is(&b, "docs/file.txt", false);
    out.push(
        with(
            Case::new(
                "post_storage_folders_delete",
                "every file under the prefix: rows soft-deleted, objects deleted",
                as_user(ctx.request("post", "/storage/folders/delete"))
                    .json(json!({ "s3_id": "{{1.id}}", "prefix": "docs/" })),
                200,
            ),
            file(s, &b, true, true),
        )
        .check_json(|v| expect_eq("processed", &data(v)?["processed_files"], &json!(1)))
        .then_status(get(), 404)
        .then_json(exists, status, gone),
    );

    let b = s.bucket();
    let (old, status, old_gone) = s.exists_is(&b, "docs/file.txt", false);
    let (new, status2, new_there) = s.exists_is(&b, "moved/file.txt", true);
    out.push(
        with(
            Case::new(
                "post_storage_folders_move",
                "every file to the new prefix: same id, bytes at the new key, old key gone",
                as_user(ctx.request("post", "/storage/folders/move")).json(json!({
                    "s3_id": "{{1.id}}", "from_prefix": "docs/", "to_prefix": "moved/",
                })),
                200,
            ),
            file(s, &b, true, true),
        )
        .check_json(|v| expect_eq("processed", &data(v)?["processed_files"], &json!(1)))
        .then_json(get(), 200, |v| {
            expect_eq(
                "key",
                &data(v)?["file"]["storage_key"],
                &json!("moved/file.txt"),
            )
        })
        .then_json(old, status, old_gone)
        .then_json(new, status2, new_there),
    );
    out
}
