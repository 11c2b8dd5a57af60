//! The `/storage` area, family `storage_catalogs`: S3 catalogs and their
//! credentials in the client's database. Every change is read back through
//! the listing routes and in the tenant database (`athena.s3_catalogs`,
//! `athena.s3_credentials`), secrets never in an answer.

use super::{envelope, expect_eq, Case, Ctx};
use crate::http::Request;
use serde_json::{json, Value};

const SECRET: &str = "conformance-secret-never-returned";

fn unique(prefix: &str) -> String {
    format!("conf-{prefix}-{}", uuid::Uuid::new_v4().simple())
}

fn create(ctx: &Ctx, name: &str) -> Request {
    ctx.request("post", "/storage/catalogs").json(json!({
        "name": name,
        "endpoint": "https://s3.us-east-1.amazonaws.com",
        "region": "us-east-1",
        "bucket": "conformance-files",
        "provider": "aws_s3",
        "access_key_id": "AKIACONFORMANCE",
        "secret_key": SECRET,
    }))
}

/// The catalog named `name` in a `{data: [...]}` listing.
fn listed<'a>(b: &'a Value, name: &str) -> Result<Option<&'a Value>, String> {
    Ok(b["data"]
        .as_array()
        .ok_or("no `data` array")?
        .iter()
        .find(|c| c["name"] == name))
}

fn no_secret(b: &Value) -> Result<(), String> {
    expect_eq(
        "the secret is never returned",
        b.to_string().contains(SECRET),
        false,
    )
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    let (created, rotated, deleted, credential) = (
        unique("created"),
        unique("rotated"),
        unique("deleted"),
        unique("credential"),
    );
    let catalogs = || ctx.request("get", "/storage/catalogs");
    vec![
        Case::new(
            "post_storage_catalogs",
            "create a catalog with its credential",
            create(ctx, &created),
            200,
        )
        .check_json(|b| {
            no_secret(b)?;
            expect_eq("active_access_key", &b["active_access_key"], &json!("AKIACONFORMANCE"))?;
            expect_eq("is_active", &b["is_active"], &json!(true))
        })
        .then_json(catalogs(), 200, {
            let name = created.clone();
            move |b| {
                let c = listed(b, &name)?.ok_or("the catalog is not listed")?;
                expect_eq("listed bucket", &c["bucket"], &json!("conformance-files"))
            }
        })
        .then_db(
            "SELECT count(*)::int AS n, bool_and(length(secret_ciphertext) > 28) AS sealed
               FROM athena.s3_credentials WHERE catalog_id = '{{r.id}}' AND is_active",
            |rows| expect_eq("one sealed active credential", rows, &json!([{"n": 1, "sealed": true}])),
        ),
        Case::new(
            "post_storage_catalogs",
            "a private endpoint is refused",
            ctx.request("post", "/storage/catalogs").json(json!({
                "name": unique("refused"), "endpoint": "http://169.254.169.254", "region": "us-east-1",
                "access_key_id": "AKIA", "secret_key": "x",
            })),
            403,
        )
        .check(envelope),
        Case::new(
            "get_storage_catalogs",
            "lists live catalogs without secrets",
            catalogs(),
            200,
        )
        .after(create(ctx, &unique("listed")))
        .check_json(|b| {
            no_secret(b)?;
            expect_eq("some catalogs", b["data"].as_array().is_some_and(|a| !a.is_empty()), true)
        }),
        Case::new(
            "get_storage_credentials",
            "lists the active credential of each catalog",
            ctx.request("get", "/storage/credentials"),
            200,
        )
        .after(create(ctx, &credential))
        .check_json({
            let name = credential.clone();
            move |b| {
                no_secret(b)?;
                let c = listed(b, &name)?.ok_or("the credential is not listed")?;
                expect_eq("access_key", &c["access_key"], &json!("AKIACONFORMANCE"))?;
                expect_eq("s3_id is the catalog", c["s3_id"].is_string(), true)
            }
        }),
        Case::new(
            "patch_storage_catalogs_by_id",
            "rotate the credential",
            ctx.request("patch", "/storage/catalogs/{{0.id}}")
                .json(json!({"access_key_id": "AKIAROTATED", "secret_key": "rotated-secret"})),
            200,
        )
        .after(create(ctx, &rotated))
        .check_json(|b| {
            expect_eq("active_access_key", &b["active_access_key"], &json!("AKIAROTATED"))
        })
        .then_json(catalogs(), 200, {
            let name = rotated.clone();
            move |b| {
                let c = listed(b, &name)?.ok_or("the catalog is not listed")?;
                expect_eq("listed key", &c["active_access_key"], &json!("AKIAROTATED"))
            }
        })
        .then_db(
            "SELECT access_key_id, is_active FROM athena.s3_credentials
              WHERE catalog_id = '{{0.id}}' ORDER BY created_at",
            |rows| {
                expect_eq(
                    "the old credential deactivated, the new one active",
                    rows,
                    &json!([
                        {"access_key_id": "AKIACONFORMANCE", "is_active": false},
                        {"access_key_id": "AKIAROTATED", "is_active": true}
                    ]),
                )
            },
        ),
        Case::new(
            "patch_storage_catalogs_by_id",
            "an unknown catalog is 404",
            ctx.request("patch", "/storage/catalogs/00000000-0000-0000-0000-000000000000")
                .json(json!({"name": "x"})),
            404,
        )
        .check(envelope),
        Case::new(
            "delete_storage_catalogs_by_id",
            "soft-delete a catalog",
            ctx.request("delete", "/storage/catalogs/{{0.id}}"),
            200,
        )
        .after(create(ctx, &deleted))
        .check_json(|b| expect_eq("deleted", &b["deleted"], &json!(true)))
        .then_json(catalogs(), 200, {
            let name = deleted.clone();
            move |b| expect_eq("still listed", listed(b, &name)?.is_some(), false)
        })
        .then_status(ctx.request("delete", "/storage/catalogs/{{0.id}}"), 404)
        .then_db(
            "SELECT deleted_at IS NOT NULL AS deleted,
                    (SELECT count(*)::int FROM athena.s3_credentials k WHERE k.catalog_id = c.id AND k.is_active) AS active
               FROM athena.s3_catalogs c WHERE id = '{{0.id}}'",
            |rows| expect_eq("row kept, credentials off", rows, &json!([{"deleted": true, "active": 0}])),
        ),
    ]
}
