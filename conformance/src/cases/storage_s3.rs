//! The `/storage` area, families `storage_objects` and `storage_buckets`:
//! buckets and objects on the run's S3 store (`S3_ENDPOINT`,
//! `S3_ACCESS_KEY_ID`, `S3_SECRET_ACCESS_KEY`, as `make test` provides),
//! named inline as the contract's `StorageS3Connection`. Each case works in
//! a bucket of its own, created by its setup, and reads its effect back
//! through the API (listings, HEAD, existence); presigned URLs are checked
//! for what they sign (the bytes through them are `tests/it/storage_objects.rs`).

use super::{envelope, expect_eq, Case, Ctx};
use crate::http::Request;
use serde_json::{json, Value};

/// The S3 store of the run, when the environment names one.
pub(super) struct Store {
    pub(super) endpoint: String,
    pub(super) access_key: String,
    pub(super) secret_key: String,
}

pub(super) fn store() -> Option<Store> {
    Some(Store {
        endpoint: std::env::var("S3_ENDPOINT")
            .ok()?
            .trim_end_matches('/')
            .to_string(),
        access_key: std::env::var("S3_ACCESS_KEY_ID").ok()?,
        secret_key: std::env::var("S3_SECRET_ACCESS_KEY").ok()?,
    })
}

/// `data` of a success envelope.
pub(super) fn data(b: &Value) -> Result<&Value, String> {
    expect_eq("status", &b["status"], &json!("success"))?;
    b.get("data").ok_or_else(|| "no `data`".to_string())
}

/// The empty object's MD5 (a folder marker's ETag).
const EMPTY_ETAG: &str = "d41d8cd98f00b204e9800998ecf8427e";

pub(super) struct S3Cases<'a> {
    pub(super) ctx: &'a Ctx,
    pub(super) store: Store,
}

impl S3Cases<'_> {
    /// A bucket name of its own for one case.
    pub(super) fn bucket(&self) -> String {
        format!("conf-{}", &uuid::Uuid::new_v4().simple().to_string()[..16])
    }

    /// `POST path` with the inline connection, `bucket` and `body`.
    pub(super) fn post(&self, path: &str, bucket: &str, body: Value) -> Request {
        let mut b = json!({
            "endpoint": self.store.endpoint,
            "region": "us-east-1",
            "access_key_id": self.store.access_key,
            "secret_key": self.store.secret_key,
            "bucket": bucket,
        });
        for (k, v) in body.as_object().expect("an object body") {
            b[k] = v.clone();
        }
        self.ctx.request("post", path).json(b)
    }

    pub(super) fn create(&self, bucket: &str) -> Request {
        self.post("/storage/buckets/create", bucket, json!({}))
    }

    pub(super) fn folder(&self, bucket: &str, prefix: &str) -> Request {
        self.post(
            "/storage/objects/folder",
            bucket,
            json!({ "prefix": prefix }),
        )
    }

    pub(super) fn exists(&self, bucket: &str, key: &str) -> Request {
        self.post("/storage/objects/exists", bucket, json!({ "key": key }))
    }

    /// A case in a fresh bucket holding the folder markers `folders`.
    pub(super) fn case(
        &self,
        op: &str,
        name: &str,
        bucket: &str,
        folders: &[&str],
        request: Request,
    ) -> Case {
        let mut case = Case::new(op, name, request, 200).after(self.create(bucket));
        for f in folders {
            case = case.after(self.folder(bucket, f));
        }
        case
    }

    /// A case in a fresh bucket holding real objects `keys` (bytes put
    /// through presigned URLs: some stores cannot copy folder markers).
    pub(super) fn case_with_objects(
        &self,
        op: &str,
        name: &str,
        bucket: &str,
        keys: &[&str],
        request: Request,
    ) -> Case {
        let mut case = Case::new(op, name, request, 200).after(self.create(bucket));
        for (i, key) in keys.iter().enumerate() {
            case = case
                .after(self.post("/storage/objects/upload-url", bucket, json!({ "key": key })))
                .after(
                    Request::new("put", &format!("{{{{{}.data.url}}}}", 1 + 2 * i))
                        .json(json!(format!("bytes of {key}"))),
                );
        }
        case
    }

    /// The keys of a listing's `data.objects`.
    pub(super) fn keys(b: &Value) -> Result<Vec<String>, String> {
        Ok(data(b)?["objects"]
            .as_array()
            .ok_or("no `objects`")?
            .iter()
            .filter_map(|o| o["key"].as_str().map(String::from))
            .collect())
    }

    pub(super) fn exists_is(
        &self,
        bucket: &str,
        key: &str,
        want: bool,
    ) -> (
        Request,
        u16,
        impl Fn(&Value) -> Result<(), String> + Send + Sync + 'static,
    ) {
        let what = format!("{key} exists");
        (self.exists(bucket, key), 200, move |b: &Value| {
            expect_eq(&what, &data(b)?["exists"], &json!(want))
        })
    }
}

macro_rules! then_exists {
    ($case:expr, $s:expr, $bucket:expr, $key:expr, $want:expr) => {{
        let (req, status, check) = $s.exists_is($bucket, $key, $want);
        $case.then_json(req, status, check)
    }};
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    let Some(store) = store() else {
        return Vec::new();
    };
    let s = S3Cases { ctx, store };
    let mut out = Vec::new();

    // Buckets.
    let b = s.bucket();
    out.push(
        Case::new(
            "post_storage_buckets_create",
            "create a bucket",
            s.create(&b),
            200,
        )
        .check_json(|v| expect_eq("created", &data(v)?["created"], &json!(true)))
        .then_json(s.post("/storage/objects", &b, json!({})), 200, |v| {
            expect_eq("an empty bucket lists", &data(v)?["key_count"], &json!(0))
        }),
    );
    let b = s.bucket();
    out.push(
        Case::new(
            "post_storage_buckets_list",
            "lists the buckets of the store",
            s.post("/storage/buckets/list", &b, json!({})),
            200,
        )
        .after(s.create(&b))
        .check_json({
            let b = b.clone();
            move |v| {
                let listed = data(v)?["buckets"]
                    .as_array()
                    .ok_or("no `buckets`")?
                    .iter()
                    .any(|x| x["name"] == b.as_str());
                expect_eq("the new bucket is listed", listed, true)
            }
        }),
    );
    let b = s.bucket();
    out.push(
        Case::new(
            "post_storage_buckets_delete",
            "delete an empty bucket",
            s.post("/storage/buckets/delete", &b, json!({})),
            200,
        )
        .after(s.create(&b))
        .then_json(s.post("/storage/buckets/list", &b, json!({})), 200, {
            let b = b.clone();
            move |v| {
                let listed = data(v)?["buckets"]
                    .as_array()
                    .ok_or("no `buckets`")?
                    .iter()
                    .any(|x| x["name"] == b.as_str());
                expect_eq("the bucket is gone", listed, false)
            }
        }),
    );
    let b = s.bucket();
    out.push(
        s.case(
            "post_storage_buckets_delete",
            "a non-empty bucket is refused",
            &b,
            &["keep"],
            s.post("/storage/buckets/delete", &b, json!({})),
        )
        .any_of(&[400])
        .check(super::envelope)
        .then_json(s.post("/storage/objects", &b, json!({})), 200, |v| {
            expect_eq(
                "its object is still there",
                &data(v)?["key_count"],
                &json!(1),
            )
        }),
    );

    // CORS.
    let rules = json!([{ "allowed_origins": ["https://app.example"], "allowed_methods": ["GET"], "max_age_seconds": 60 }]);
    let b = s.bucket();
    out.push(
        s.case(
            "post_storage_buckets_cors_set",
            "set CORS rules",
            &b,
            &[],
            s.post("/storage/buckets/cors/set", &b, json!({ "rules": rules })),
        )
        .then_json(s.post("/storage/buckets/cors", &b, json!({})), 200, |v| {
            expect_eq(
                "origins read back",
                &data(v)?["rules"][0]["allowed_origins"],
                &json!(["https://app.example"]),
            )
        }),
    );
    let b = s.bucket();
    out.push(
        s.case(
            "post_storage_buckets_cors",
            "read CORS rules",
            &b,
            &[],
            s.post("/storage/buckets/cors", &b, json!({})),
        )
        .after(s.post("/storage/buckets/cors/set", &b, json!({ "rules": rules })))
        .check_json(|v| {
            expect_eq(
                "max_age_seconds",
                &data(v)?["rules"][0]["max_age_seconds"],
                &json!(60),
            )
        }),
    );
    let b = s.bucket();
    out.push(
        s.case(
            "post_storage_buckets_cors_delete",
            "delete CORS rules",
            &b,
            &[],
            s.post("/storage/buckets/cors/delete", &b, json!({})),
        )
        .after(s.post("/storage/buckets/cors/set", &b, json!({ "rules": rules })))
        .then_json(s.post("/storage/buckets/cors", &b, json!({})), 200, |v| {
            expect_eq("no rules left", &data(v)?["rules"], &json!([]))
        }),
    );

    // Lifecycle.
    let lifecycle = json!([{ "id": "tmp", "prefix": "tmp/", "expiration_days": 7 }]);
    let b = s.bucket();
    out.push(
        s.case(
            "post_storage_buckets_lifecycle_set",
            "set lifecycle rules",
            &b,
            &[],
            s.post(
                "/storage/buckets/lifecycle/set",
                &b,
                json!({ "rules": lifecycle }),
            ),
        )
        .then_json(
            s.post("/storage/buckets/lifecycle", &b, json!({})),
            200,
            |v| {
                expect_eq(
                    "expiration read back",
                    &data(v)?["rules"][0]["expiration_days"],
                    &json!(7),
                )
            },
        ),
    );
    let b = s.bucket();
    out.push(
        s.case(
            "post_storage_buckets_lifecycle",
            "read lifecycle rules",
            &b,
            &[],
            s.post("/storage/buckets/lifecycle", &b, json!({})),
        )
        .after(s.post(
            "/storage/buckets/lifecycle/set",
            &b,
            json!({ "rules": lifecycle }),
        ))
        .check_json(|v| expect_eq("rule id", &data(v)?["rules"][0]["id"], &json!("tmp"))),
    );
    let b = s.bucket();
    out.push(
        s.case(
            "post_storage_buckets_lifecycle_delete",
            "delete lifecycle rules",
            &b,
            &[],
            s.post("/storage/buckets/lifecycle/delete", &b, json!({})),
        )
        .after(s.post(
            "/storage/buckets/lifecycle/set",
            &b,
            json!({ "rules": lifecycle }),
        ))
        .then_json(
            s.post("/storage/buckets/lifecycle", &b, json!({})),
            200,
            |v| expect_eq("no rules left", &data(v)?["rules"], &json!([])),
        ),
    );

    // Objects.
    let b = s.bucket();
    out.push(then_exists!(
        s.case(
            "post_storage_objects_folder",
            "create a folder marker",
            &b,
            &[],
            s.folder(&b, "docs")
        )
        .check_json(|v| expect_eq("key", &data(v)?["key"], &json!("docs/"))),
        s,
        &b,
        "docs/",
        true
    ));
    let b = s.bucket();
    out.push(
        s.case(
            "post_storage_objects",
            "list objects under a prefix",
            &b,
            &["a", "a/b", "c"],
            s.post("/storage/objects", &b, json!({ "prefix": "a/" })),
        )
        .check_json(|v| expect_eq("keys", &json!(S3Cases::keys(v)?), &json!(["a/", "a/b/"]))),
    );
    let b = s.bucket();
    out.push(
        s.case(
            "post_storage_objects_head",
            "object metadata",
            &b,
            &["h"],
            s.post("/storage/objects/head", &b, json!({ "key": "h/" })),
        )
        .check_json(|v| {
            let d = data(v)?;
            expect_eq("size", &d["size"], &json!(0))?;
            expect_eq("etag", &d["etag"], &json!(EMPTY_ETAG))
        }),
    );
    let b = s.bucket();
    out.push(then_exists!(
        s.case(
            "post_storage_objects_exists",
            "an existing object",
            &b,
            &["e"],
            s.exists(&b, "e/")
        )
        .check_json(|v| expect_eq("exists", &data(v)?["exists"], &json!(true))),
        s,
        &b,
        "missing/",
        false
    ));
    let b = s.bucket();
    out.push(
        s.case(
            "post_storage_objects_validate",
            "validate by ETag",
            &b,
            &["v"],
            s.post(
                "/storage/objects/validate",
                &b,
                json!({ "key": "v/", "etag": EMPTY_ETAG }),
            ),
        )
        .check_json(|v| expect_eq("valid", &data(v)?["valid"], &json!(true)))
        .then_json(
            s.post(
                "/storage/objects/validate",
                &b,
                json!({ "key": "v/", "etag": "0" }),
            ),
            200,
            |v| expect_eq("a wrong ETag is invalid", &data(v)?["valid"], &json!(false)),
        ),
    );
    let b = s.bucket();
    out.push(
        s.case_with_objects("post_storage_objects_update", "replace metadata", &b, &["u.txt"], s.post("/storage/objects/update", &b, json!({ "key": "u.txt", "content_type": "text/plain", "metadata": { "owner": "conformance" } })))
            .then_json(s.post("/storage/objects/head", &b, json!({ "key": "u.txt" })), 200, |v| {
                let d = data(v)?;
                expect_eq("content_type", &d["content_type"], &json!("text/plain"))?;
                expect_eq("metadata", &d["metadata"]["owner"], &json!("conformance"))
            }),
    );
    let b = s.bucket();
    out.push(
        s.case(
            "post_storage_objects_url",
            "presigned download URL",
            &b,
            &["g"],
            s.post("/storage/objects/url", &b, json!({ "key": "g/" })),
        )
        .check_json({
            let prefix = format!(
                "{}/{b}/g/?X-Amz-Algorithm=AWS4-HMAC-SHA256",
                s.store.endpoint
            );
            move |v| {
                let d = data(v)?;
                let url = d["url"].as_str().ok_or("no url")?;
                expect_eq(
                    "signed GET URL",
                    url.starts_with(&prefix) && url.contains("X-Amz-Signature="),
                    true,
                )?;
                expect_eq("expires_in", &d["expires_in"], &json!(900))
            }
        }),
    );
    let b = s.bucket();
    out.push(
        s.case(
            "post_storage_objects_upload_url",
            "presigned upload URL signing the content type",
            &b,
            &[],
            s.post(
                "/storage/objects/upload-url",
                &b,
                json!({ "key": "up.txt", "content_type": "text/plain" }),
            ),
        )
        .check_json(|v| {
            let d = data(v)?;
            let url = d["url"].as_str().ok_or("no url")?;
            expect_eq(
                "content-type is signed",
                url.contains("X-Amz-SignedHeaders=content-type%3Bhost"),
                true,
            )?;
            expect_eq("method", &d["method"], &json!("PUT"))
        }),
    );
    let b = s.bucket();
    out.push(then_exists!(
        s.case(
            "post_storage_objects_delete",
            "delete an object",
            &b,
            &["d"],
            s.post("/storage/objects/delete", &b, json!({ "key": "d/" }))
        ),
        s,
        &b,
        "d/",
        false
    ));
    let b = s.bucket();
    out.push(
        s.case(
            "post_storage_objects_public_url",
            "public URL",
            &b,
            &[],
            s.post("/storage/objects/public-url", &b, json!({ "key": "p.png" })),
        )
        .check_json({
            let want = format!("{}/{b}/p.png", s.store.endpoint);
            move |v| expect_eq("url", &data(v)?["url"], &json!(want))
        }),
    );
    let b = s.bucket();
    out.push(then_exists!(
        s.case_with_objects(
            "post_storage_objects_copy",
            "server-side copy",
            &b,
            &["c.txt"],
            s.post(
                "/storage/objects/copy",
                &b,
                json!({ "source_key": "c.txt", "destination_key": "c2.txt" })
            )
        ),
        s,
        &b,
        "c2.txt",
        true
    ));
    let b = s.bucket();
    out.push(
        s.case(
            "post_storage_objects_folder_delete",
            "delete a folder and what it holds",
            &b,
            &["fd", "fd/x", "keep"],
            s.post(
                "/storage/objects/folder/delete",
                &b,
                json!({ "prefix": "fd" }),
            ),
        )
        .check_json(|v| expect_eq("deleted", &data(v)?["deleted"], &json!(2)))
        .then_json(s.post("/storage/objects", &b, json!({})), 200, |v| {
            expect_eq("what is left", &json!(S3Cases::keys(v)?), &json!(["keep/"]))
        }),
    );
    let b = s.bucket();
    out.push(
        s.case_with_objects(
            "post_storage_objects_folder_rename",
            "rename a folder",
            &b,
            &["r1/a.txt", "r1/x/b.txt"],
            s.post(
                "/storage/objects/folder/rename",
                &b,
                json!({ "from_prefix": "r1", "to_prefix": "r2" }),
            ),
        )
        .check_json(|v| expect_eq("moved", &data(v)?["moved"], &json!(2)))
        .then_json(
            s.post("/storage/objects", &b, json!({ "prefix": "r" })),
            200,
            |v| {
                expect_eq(
                    "keys after the move",
                    &json!(S3Cases::keys(v)?),
                    &json!(["r2/a.txt", "r2/x/b.txt"]),
                )
            },
        ),
    );
    let b = s.bucket();
    out.push(
        s.case(
            "post_storage_objects_versions",
            "list versions",
            &b,
            &["ver"],
            s.post("/storage/objects/versions", &b, json!({ "key": "ver/" })),
        )
        .check_json(|v| {
            let versions = data(v)?["versions"]
                .as_array()
                .ok_or("no versions")?
                .clone();
            expect_eq("one version", versions.len(), 1)?;
            expect_eq("latest", &versions[0]["is_latest"], &json!(true))
        }),
    );
    let b = s.bucket();
    out.push(then_exists!(
        s.case_with_objects(
            "post_storage_objects_versions_restore",
            "restore the current version",
            &b,
            &["vr.txt"],
            s.post(
                "/storage/objects/versions/restore",
                &b,
                json!({ "key": "vr.txt", "version_id": "null" })
            )
        )
        .check_json(|v| expect_eq(
            "restored",
            &data(v)?["restored_version_id"],
            &json!("null")
        )),
        s,
        &b,
        "vr.txt",
        true
    ));
    let b = s.bucket();
    out.push(then_exists!(
        s.case(
            "post_storage_objects_versions_delete",
            "delete a version",
            &b,
            &["vd"],
            s.post(
                "/storage/objects/versions/delete",
                &b,
                json!({ "key": "vd/", "version_id": "null" })
            )
        ),
        s,
        &b,
        "vd/",
        false
    ));
    out.extend(super::storage_files::cases(&s));

    // Diagnostics: a catalog of the run's store, its bucket reachable.
    let b = s.bucket();
    let name = format!("conf-debug-{b}");
    out.push(
        Case::new(
            "get_debug_s3",
            "a catalog resolves and its bucket answers",
            ctx.request("get", "/debug/s3"),
            200,
        )
        .after(s.create(&b))
        .after(ctx.request("post", "/storage/catalogs").json(json!({
            "name": name, "endpoint": s.store.endpoint, "region": "us-east-1", "bucket": b,
            "access_key_id": s.store.access_key, "secret_key": s.store.secret_key,
        })))
        .check_json({
            let secret = s.store.secret_key.clone();
            move |v| {
                expect_eq("no secret", v.to_string().contains(&secret), false)?;
                let catalogs = data(v)?["clients"][0]["catalogs"]
                    .as_array()
                    .ok_or("no catalogs")?
                    .clone();
                let c = catalogs
                    .iter()
                    .find(|c| c["name"] == name.as_str())
                    .ok_or("the catalog is not reported")?;
                expect_eq("resolution", &c["resolution"], &json!("ok"))?;
                expect_eq("bucket_reachable", &c["bucket_reachable"], &json!(true))
            }
        }),
    );
    out
}

/// The SDK-only storage operations (`openapi/sdk-overlay.yaml`
/// `operations:`), judged against the schemas the overlay declares. Each
/// reads its effect back; where the store lacks a feature (SeaweedFS has no
/// public-access block) the documented 501 naming the store is expected.
pub fn sdk_only_cases(ctx: &Ctx) -> Vec<Case> {
    let Some(store) = store() else {
        return Vec::new();
    };
    let s = S3Cases { ctx, store };
    let mut out = Vec::new();
    let connection = |name: &str, bucket: &str, secret: &str| {
        json!({
            "name": name, "provider": "minio", "endpoint": s.store.endpoint, "region": "us-east-1",
            "bucket": bucket, "accessKeyId": s.store.access_key, "secretAccessKey": secret,
        })
    };
    let listed = |name: String| {
        move |v: &Value| {
            let found = v["data"]["connections"]
                .as_array()
                .ok_or("no connections")?
                .iter()
                .any(|c| c["name"] == name.as_str());
            expect_eq("the connection is listed", found, true)
        }
    };

    out.push(
        Case::new(
            "get_storage_providers",
            "static provider descriptors",
            ctx.request("get", "/storage/providers"),
            200,
        )
        .check_json(|v| {
            let ids: Vec<&str> = data(v)?["providers"]
                .as_array()
                .ok_or("no providers")?
                .iter()
                .filter_map(|p| p["id"].as_str())
                .collect();
            expect_eq(
                "providers",
                &json!(ids),
                &json!(["aws_s3", "cloudflare_r2", "minio", "custom_s3"]),
            )
        }),
    );
    let b = s.bucket();
    let name = format!("conf-conn-{b}");
    out.push(
        Case::new(
            "post_storage_connections",
            "create a connection (the SDK's flat body)",
            ctx.request("post", "/storage/connections").json(connection(
                &name,
                &b,
                &s.store.secret_key,
            )),
            200,
        )
        .check_json({
            let secret = s.store.secret_key.clone();
            move |v| {
                expect_eq("no secret", v.to_string().contains(&secret), false)?;
                expect_eq(
                    "configured",
                    &data(v)?["connection"]["credentialState"]["configured"],
                    &json!(true),
                )
            }
        })
        .then_json(ctx.request("get", "/storage/catalogs"), 200, {
            let name = name.clone();
            move |v| {
                let found = v["data"]
                    .as_array()
                    .ok_or("no data")?
                    .iter()
                    .any(|c| c["name"] == name.as_str());
                expect_eq("the catalog row exists", found, true)
            }
        }),
    );
    let b = s.bucket();
    let name = format!("conf-conn-{b}");
    out.push(
        Case::new(
            "get_storage_connections",
            "lists connections",
            ctx.request("get", "/storage/connections"),
            200,
        )
        .after(ctx.request("post", "/storage/connections").json(connection(
            &name,
            &b,
            &s.store.secret_key,
        )))
        .check_json(listed(name)),
    );
    let b = s.bucket();
    let name = format!("conf-conn-{b}");
    out.push(
        Case::new(
            "get_storage_connections_by_id",
            "one connection",
            ctx.request("get", "/storage/connections/{{0.data.connection.id}}"),
            200,
        )
        .after(ctx.request("post", "/storage/connections").json(connection(
            &name,
            &b,
            &s.store.secret_key,
        )))
        .check_json(move |v| expect_eq("name", &data(v)?["connection"]["name"], &json!(name))),
    );
    let b = s.bucket();
    out.push(
        Case::new(
            "delete_storage_connections_by_id",
            "soft delete",
            ctx.request("delete", "/storage/connections/{{0.data.connection.id}}"),
            200,
        )
        .after(ctx.request("post", "/storage/connections").json(connection(
            &format!("conf-conn-{b}"),
            &b,
            &s.store.secret_key,
        )))
        .then_status(
            ctx.request("get", "/storage/connections/{{0.data.connection.id}}"),
            404,
        ),
    );
    let b = s.bucket();
    let name = format!("conf-probe-{b}");
    out.push(
        Case::new(
            "post_storage_connections_test",
            "the bucket answers; nothing is stored",
            ctx.request("post", "/storage/connections/test")
                .json(connection(&name, &b, &s.store.secret_key)),
            200,
        )
        .after(s.create(&b))
        .check_json(|v| expect_eq("ok", &data(v)?["ok"], &json!(true)))
        .then_json(ctx.request("get", "/storage/connections"), 200, move |v| {
            let found = v["data"]["connections"]
                .as_array()
                .ok_or("no connections")?
                .iter()
                .any(|c| c["name"] == name.as_str());
            expect_eq("nothing stored", found, false)
        }),
    );
    let b = s.bucket();
    out.push(
        Case::new(
            "post_storage_connections_test",
            "a wrong secret is a clear 400",
            ctx.request("post", "/storage/connections/test")
                .json(connection("conf-wrong", &b, "not-the-secret")),
            400,
        )
        .after(s.create(&b))
        .check(super::envelope),
    );

    // Bucket policy.
    let policy = |b: &str| json!({ "policy": { "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"], "Resource": [format!("arn:aws:s3:::{b}/public/*")] }] } });
    let b = s.bucket();
    out.push(
        s.case(
            "post_storage_buckets_policy_set",
            "set a bucket policy",
            &b,
            &[],
            s.post("/storage/buckets/policy/set", &b, policy(&b)),
        )
        .then_json(s.post("/storage/buckets/policy", &b, json!({})), 200, |v| {
            expect_eq(
                "effect read back",
                &data(v)?["policy"]["Statement"][0]["Effect"],
                &json!("Allow"),
            )
        }),
    );
    let b = s.bucket();
    out.push(
        s.case(
            "post_storage_buckets_policy",
            "read a bucket policy",
            &b,
            &[],
            s.post("/storage/buckets/policy", &b, json!({})),
        )
        .after(s.post("/storage/buckets/policy/set", &b, policy(&b)))
        .check_json(|v| expect_eq("configured", &data(v)?["configured"], &json!(true))),
    );
    let b = s.bucket();
    out.push(
        s.case(
            "post_storage_buckets_policy_delete",
            "delete a bucket policy",
            &b,
            &[],
            s.post("/storage/buckets/policy/delete", &b, json!({})),
        )
        .after(s.post("/storage/buckets/policy/set", &b, policy(&b)))
        .then_json(s.post("/storage/buckets/policy", &b, json!({})), 200, |v| {
            expect_eq("no policy left", &data(v)?["configured"], &json!(false))
        }),
    );

    // Public-access block: the store implements it (set → read back) or
    // answers the documented 501 naming the store.
    let store_501 = |r: &crate::http::Response| {
        envelope(r)?;
        let v = r.json()?;
        expect_eq("code", &v["code"], &json!("not_implemented"))?;
        let from_store = v["error"]
            .as_str()
            .is_some_and(|e| e.contains("S3 store does not implement"));
        expect_eq("the 501 is the store's", from_store, true)
    };
    for (op, path, body) in [
        (
            "post_storage_buckets_public_access_set",
            "/storage/buckets/public-access/set",
            json!({ "block_public_acls": true }),
        ),
        (
            "post_storage_buckets_public_access",
            "/storage/buckets/public-access",
            json!({}),
        ),
        (
            "post_storage_buckets_public_access_delete",
            "/storage/buckets/public-access/delete",
            json!({}),
        ),
    ] {
        let b = s.bucket();
        out.push(
            s.case(
                op,
                "the store has no public-access block: its documented 501",
                &b,
                &[],
                s.post(path, &b, body),
            )
            .any_of(&[501])
            .check(store_501),
        );
    }

    // POST policy: the form fields the store checks.
    let b = s.bucket();
    out.push(
        s.case(
            "post_storage_objects_post_policy",
            "a browser POST form",
            &b,
            &[],
            s.post(
                "/storage/objects/post-policy",
                &b,
                json!({ "key": "form.txt", "max_size": 1024, "content_type": "text/plain" }),
            ),
        )
        .check_json({
            let url = format!("{}/{b}", s.store.endpoint);
            move |v| {
                let d = data(v)?;
                expect_eq("url", &d["url"], &json!(url))?;
                for f in [
                    "key",
                    "policy",
                    "x-amz-signature",
                    "x-amz-credential",
                    "x-amz-date",
                    "Content-Type",
                ] {
                    expect_eq(f, d["fields"][f].is_string(), true)?;
                }
                Ok(())
            }
        }),
    );
    out.extend(super::storage_files::streams::sdk_only_cases(&s));
    out
}
