//! Managed-file streams: `PUT …/upload`, `proxy` (with `Range`), the
//! multipart operations, and the SDK-only `proxy-url`. Effects are read
//! back through S3 (object HEAD: size and MD5 ETag; the store's own
//! multipart state through `list-parts`) or as the proxied bytes.

use super::super::storage_s3::{data, S3Cases};
use super::super::{expect_eq, Case};
use super::{as_user, file, status_is, with};
use crate::http::Request;
use serde_json::{json, Value};

/// What the JSON string body `"streamed bytes"` puts on the wire: 16
/// bytes, this MD5.
const STREAMED: &str = "\"streamed bytes\"";
const STREAMED_MD5: &str = "44746e6741a451d5daa20fd29d7a7dca";
/// What the setup's `file` PUT stores.
const MANAGED: &str = "\"managed bytes\"";

fn body_is(
    want: &'static str,
) -> impl Fn(&crate::http::Response) -> Result<(), String> + Send + Sync {
    move |r| expect_eq("bytes", r.text().as_str(), want)
}

/// HEAD of the file's object on the store (`docs/file.txt` in `b`).
fn head(s: &S3Cases<'_>, b: &str) -> Request {
    s.post(
        "/storage/objects/head",
        b,
        json!({ "key": "docs/file.txt" }),
    )
}

/// Setup steps 3 (create: `{{3.data.upload_id}}`), 4 (sign part 1),
/// 5 (PUT `"part bytes"`, 12 bytes, to it) after `file`'s 0–2.
fn upload_steps(s: &S3Cases<'_>, b: &str, parts: bool) -> Vec<Request> {
    let ctx = s.ctx;
    let mut steps = file(s, b, false, false);
    steps.push(
        as_user(ctx.request("post", "/storage/multipart/create"))
            .json(json!({ "file_id": "{{2.data.file.id}}" })),
    );
    if parts {
        steps.push(
            as_user(ctx.request("post", "/storage/multipart/sign-part")).json(json!({
                "file_id": "{{2.data.file.id}}", "upload_id": "{{3.data.upload_id}}", "part_number": 1,
            })),
        );
        steps.push(Request::new("put", "{{4.data.url}}").json(json!("part bytes")));
    }
    steps
}

fn list_parts(s: &S3Cases<'_>, upload: &str) -> Request {
    as_user(s.ctx.request("post", "/storage/multipart/list-parts")).json(json!({
        "file_id": "{{2.data.file.id}}", "upload_id": upload,
    }))
}

fn part_count(n: usize) -> impl Fn(&Value) -> Result<(), String> + Send + Sync {
    move |v| expect_eq("parts on the store", &data(v)?["count"], &json!(n))
}

pub(in crate::cases) fn cases(s: &S3Cases<'_>) -> Vec<Case> {
    let ctx = s.ctx;
    let mut out = Vec::new();

    let b = s.bucket();
    out.push(
        with(
            Case::new(
                "put_storage_files_by_file_id_upload",
                "the body streamed to the file's object, the file available",
                as_user(ctx.request("put", "/storage/files/{{2.data.file.id}}/upload"))
                    .header("content-type", "text/plain")
                    .json(json!("streamed bytes")),
                200,
            ),
            file(s, &b, false, false),
        )
        .check_json(|v| {
            status_is("available")(v)?;
            expect_eq(
                "size",
                &data(v)?["file"]["size_bytes"],
                &json!(STREAMED.len()),
            )
        })
        .then_json(head(s, &b), 200, |v| {
            let d = data(v)?;
            expect_eq("size on the store", &d["size"], &json!(STREAMED.len()))?;
            expect_eq("MD5 on the store", &d["etag"], &json!(STREAMED_MD5))
        }),
    );

    let b = s.bucket();
    let proxy = "/storage/files/{{2.data.file.id}}/proxy";
    out.push(
        with(
            Case::new(
                "get_storage_files_by_file_id_proxy",
                "the object's bytes through Athena, and a byte range of them",
                as_user(ctx.request("get", proxy)),
                200,
            ),
            file(s, &b, true, true),
        )
        .check(body_is(MANAGED))
        .then(
            as_user(ctx.request("get", proxy)).header("range", "bytes=1-7"),
            206,
            |r| {
                expect_eq(
                    "content-range",
                    r.header("content-range"),
                    Some("bytes 1-7/15"),
                )?;
                expect_eq("bytes", r.text().as_str(), "managed")
            },
        )
        .then_status(
            as_user(ctx.request("get", proxy)).header("range", "bytes=15-"),
            416,
        ),
    );

    let b = s.bucket();
    out.push(
        with(
            Case::new(
                "post_storage_multipart_create",
                "an S3 multipart upload of the file's key, bound to the end user",
                as_user(ctx.request("post", "/storage/multipart/create"))
                    .json(json!({ "file_id": "{{2.data.file.id}}" })),
                200,
            ),
            file(s, &b, false, false),
        )
        .check_json(|v| {
            expect_eq(
                "upload_id",
                data(v)?["upload_id"]
                    .as_str()
                    .is_some_and(|u| !u.is_empty()),
                true,
            )
        })
        .then_json(list_parts(s, "{{r.data.upload_id}}"), 200, part_count(0)),
    );

    let b = s.bucket();
    out.push(
        with(
            Case::new(
                "post_storage_multipart_sign_part",
                "a presigned UploadPart URL the store accepts",
                as_user(ctx.request("post", "/storage/multipart/sign-part")).json(json!({
                    "file_id": "{{2.data.file.id}}", "upload_id": "{{3.data.upload_id}}", "part_number": 1,
                })),
                200,
            ),
            upload_steps(s, &b, false),
        )
        .check_json(|v| {
            let url = data(v)?["url"].as_str().unwrap_or_default().to_string();
            expect_eq("partNumber signed in", url.contains("partNumber=1") && url.contains("X-Amz-Signature="), true)
        })
        .then(Request::new("put", "{{r.data.url}}").json(json!("part bytes")), 200, |_| Ok(()))
        .then_json(list_parts(s, "{{3.data.upload_id}}"), 200, part_count(1)),
    );

    let b = s.bucket();
    let mut steps = upload_steps(s, &b, true);
    steps.push(list_parts(s, "{{3.data.upload_id}}"));
    out.push(
        with(
            Case::new(
                "post_storage_multipart_complete",
                "the parts joined into the object, the file available",
                as_user(ctx.request("post", "/storage/multipart/complete")).json(json!({
                    "file_id": "{{2.data.file.id}}", "upload_id": "{{3.data.upload_id}}",
                    "parts": [{ "part_number": 1, "etag": "{{6.data.parts.0.etag}}" }],
                })),
                200,
            ),
            steps,
        )
        .check_json(|v| {
            status_is("available")(v)?;
            expect_eq("size", &data(v)?["file"]["size_bytes"], &json!(12))
        })
        .then_json(head(s, &b), 200, |v| {
            expect_eq("size on the store", &data(v)?["size"], &json!(12))
        }),
    );

    let b = s.bucket();
    out.push(
        with(
            Case::new(
                "post_storage_multipart_abort",
                "the store's upload aborted, its parts freed",
                as_user(ctx.request("post", "/storage/multipart/abort")).json(json!({
                    "file_id": "{{2.data.file.id}}", "upload_id": "{{3.data.upload_id}}",
                })),
                200,
            ),
            upload_steps(s, &b, true),
        )
        .check_json(|v| expect_eq("aborted", &data(v)?["aborted"], &json!(true)))
        .then_status(list_parts(s, "{{3.data.upload_id}}"), 404),
    );

    let b = s.bucket();
    out.push(
        with(
            Case::new(
                "post_storage_multipart_list_parts",
                "the parts the store holds",
                list_parts(s, "{{3.data.upload_id}}"),
                200,
            ),
            upload_steps(s, &b, true),
        )
        .check_json(|v| {
            part_count(1)(v)?;
            expect_eq("size", &data(v)?["parts"][0]["size_bytes"], &json!(12))
        }),
    );
    out
}

/// The SDK-only `proxy-url`: the URL works with no key and no actor; a
/// tampered one does not.
pub(super) fn sdk_only_cases(s: &S3Cases<'_>) -> Vec<Case> {
    let b = s.bucket();
    vec![with(
        Case::new(
            "get_storage_files_by_file_id_proxy_url",
            "a signed Athena URL of the proxy",
            as_user(
                s.ctx
                    .request("get", "/storage/files/{{2.data.file.id}}/proxy-url"),
            ),
            200,
        ),
        file(s, &b, true, true),
    )
    .check_json(|v| {
        expect_eq(
            "signed",
            data(v)?["path"]
                .as_str()
                .is_some_and(|p| p.contains("token=")),
            true,
        )
    })
    .then(
        Request::new("get", "{{r.data.path}}"),
        200,
        body_is(MANAGED),
    )
    .then_status(Request::new("get", "{{r.data.path}}0"), 403)]
}
