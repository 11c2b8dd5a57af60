//! Sharing, audit and search of managed files: grants through
//! `/storage/permissions/*`, read back as another end user (`conf-peer` of
//! `conf-elsewhere`, who may read nothing of `conf-user`'s until granted),
//! the audit trail, and the search filters.

use super::{as_user, file, with};
use crate::cases::storage_s3::{data, S3Cases};
use crate::cases::{expect_eq, Case};
use crate::http::Request;
use serde_json::{json, Value};

/// `request` as an end user of another organization.
fn as_peer(r: Request) -> Request {
    r.header("X-User-Id", "conf-peer")
        .header("X-Organization-Id", "conf-elsewhere")
}

/// A grant of `permission` on the setup's file (`{{2.data.file.id}}`) to
/// `conf-peer`, by the owner.
fn grant(s: &S3Cases<'_>, permission: &str) -> Request {
    as_user(s.ctx.request("post", "/storage/permissions/grant")).json(json!({
        "file_id": "{{2.data.file.id}}", "principal_type": "user",
        "principal_id": "conf-peer", "permission": permission,
    }))
}

pub(super) fn cases(s: &S3Cases<'_>) -> Vec<Case> {
    let ctx = s.ctx;
    let peer_reads = || as_peer(ctx.request("get", "/storage/files/{{2.data.file.id}}"));
    let mut out = Vec::new();

    let b = s.bucket();
    out.push(
        with(
            Case::new(
                "post_storage_permissions_grant",
                "the owner grants read to a user of another organization, who then reads the file",
                grant(s, "read"),
                200,
            ),
            file(s, &b, false, false),
        )
        .check_json(|v| {
            let p = &data(v)?["permission"];
            expect_eq("principal", &p["principal_id"], &json!("conf-peer"))?;
            expect_eq("live", &p["live"], &json!(true))
        })
        .then_json(peer_reads(), 200, |v| {
            expect_eq(
                "key",
                &data(v)?["file"]["storage_key"],
                &json!("docs/file.txt"),
            )
        }),
    );

    let b = s.bucket();
    let mut steps = file(s, &b, false, false);
    steps.push(grant(s, "read"));
    out.push(
        with(
            Case::new(
                "post_storage_permissions_revoke",
                "a revoked grant stops reads at once",
                as_user(ctx.request("post", "/storage/permissions/revoke")).json(json!({
                    "file_id": "{{2.data.file.id}}", "principal_type": "user",
                    "principal_id": "conf-peer", "permission": "read",
                })),
                200,
            ),
            steps,
        )
        .check_json(|v| expect_eq("revoked", &data(v)?["revoked"], &json!(1)))
        .then_status(peer_reads(), 404),
    );

    let b = s.bucket();
    let mut steps = file(s, &b, false, false);
    steps.push(grant(s, "write"));
    out.push(
        with(
            Case::new(
                "post_storage_permissions_list",
                "the owner sees the owner grant and the peer's",
                as_user(ctx.request("post", "/storage/permissions/list"))
                    .json(json!({ "file_id": "{{2.data.file.id}}" })),
                200,
            ),
            steps,
        )
        .check_json(|v| {
            let d = data(v)?;
            expect_eq("count", &d["count"], &json!(2))?;
            let mut seen: Vec<String> = d["permissions"]
                .as_array()
                .ok_or("no permissions")?
                .iter()
                .map(|p| {
                    format!(
                        "{}:{}",
                        p["principal_id"].as_str().unwrap_or("?"),
                        p["permission"].as_str().unwrap_or("?")
                    )
                })
                .collect();
            seen.sort();
            expect_eq(
                "grants",
                seen,
                vec!["conf-peer:write".to_string(), "conf-user:owner".to_string()],
            )
        }),
    );

    let b = s.bucket();
    let mut steps = file(s, &b, false, false);
    steps.push(grant(s, "read"));
    out.push(
        with(
            Case::new(
                "post_storage_permissions_check",
                "a reader may not write",
                as_peer(ctx.request("post", "/storage/permissions/check"))
                    .json(json!({ "file_id": "{{2.data.file.id}}", "permission": "write" })),
                200,
            ),
            steps,
        )
        .check_json(|v| {
            let d = data(v)?;
            expect_eq("allowed", &d["allowed"], &json!(false))?;
            expect_eq("permission", &d["permission"], &json!("write"))
        })
        .then_json(
            as_user(ctx.request("post", "/storage/permissions/check"))
                .json(json!({ "file_id": "{{2.data.file.id}}", "permission": "owner" })),
            200,
            |v| expect_eq("owner allowed", &data(v)?["allowed"], &json!(true)),
        ),
    );

    let b = s.bucket();
    out.push(
        with(
            Case::new(
                "post_storage_audit_list",
                "a file's events, newest first",
                as_user(ctx.request("post", "/storage/audit/list"))
                    .json(json!({ "file_id": "{{2.data.file.id}}" })),
                200,
            ),
            file(s, &b, true, true),
        )
        .check_json(|v| {
            let ops: Vec<&str> = data(v)?["events"]
                .as_array()
                .ok_or("no events")?
                .iter()
                .filter_map(|e| e["operation"].as_str())
                .collect();
            expect_eq("operations", ops, vec!["confirm_upload", "upload_url"])
        }),
    );

    let b = s.bucket();
    let mut steps = file(s, &b, false, false);
    steps.push(
        as_user(ctx.request("post", "/storage/files/upload-url"))
            .json(json!({ "s3_id": "{{1.id}}", "storage_key": "docs/other.txt", "content_type": "image/png" })),
    );
    out.push(
        with(
            Case::new(
                "post_storage_files_search",
                "readable files by text and type, paged",
                as_user(ctx.request("post", "/storage/files/search")).json(json!({
                    "s3_id": "{{1.id}}", "query": "TXT", "mime_type": "text/plain", "limit": 1,
                })),
                200,
            ),
            steps,
        )
        .check_json(|v: &Value| {
            let d = data(v)?;
            expect_eq("count", &d["count"], &json!(1))?;
            expect_eq(
                "key",
                &d["files"][0]["storage_key"],
                &json!("docs/file.txt"),
            )?;
            expect_eq("has_more", &d["has_more"], &json!(false))
        })
        .then_json(
            as_peer(ctx.request("post", "/storage/files/search"))
                .json(json!({ "s3_id": "{{1.id}}", "query": "file" })),
            200,
            |v| expect_eq("peer sees nothing", &data(v)?["count"], &json!(0)),
        ),
    );
    out
}
