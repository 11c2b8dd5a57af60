//! The SDK's service routes (`/storage/service/files*`): a trusted
//! service (a `storage.service` key) acting for an organization through the
//! same access rule as end users, answered as the SDK's camelCase
//! `ManagedFile`; keys without the right refused.

use crate::common::files::{enable_versioning, get_bytes, Files};
use crate::common::{allow, TestServer, CLIENT};
use serde_json::json;

#[tokio::test]
async fn a_service_acts_for_an_organization() {
    let s = TestServer::start_with(|c| allow(c, "127.0.0.1")).await;
    let f = Files::new(&s).await;
    let alice = f.user("alice", "acme");
    enable_versioning(&f.bucket).await;
    let id = f.upload(&alice, "svc/a.txt", b"service bytes").await;
    let service_key = s.api_key(&["storage.service"], None).await;
    let svc = |org: Option<&str>| {
        let mut h = vec![
            ("x-athena-key".to_string(), service_key.clone()),
            ("x-athena-client".to_string(), CLIENT.to_string()),
        ];
        if let Some(org) = org {
            h.push(("x-organization-id".to_string(), org.to_string()));
        }
        h
    };

    // Get: the organization's file in the SDK's shape; another
    // organization's is absent.
    let r = f
        .send(
            "GET",
            &format!("/storage/service/files/{id}"),
            &svc(Some("acme")),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let file = r.json()["data"]["file"].clone();
    assert_eq!(file["key"], "svc/a.txt");
    assert_eq!(file["connectionId"], f.s3_id.as_str());
    assert_eq!(file["createdByUserId"], "alice");
    assert_eq!(file["organizationId"], "acme");
    assert_eq!(file["visibility"], "private");
    assert_eq!(file["sizeBytes"], 13);
    let r = f
        .send(
            "GET",
            &format!("/storage/service/files/{id}"),
            &svc(Some("globex")),
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());

    // List: by connection and organization.
    let anyone = svc(None);
    let list = |org: &'static str| {
        f.send(
            "POST",
            "/storage/service/files/list",
            &anyone,
            Some(json!({ "connectionId": f.s3_id, "organizationId": org, "prefix": "svc/" })),
        )
    };
    let r = list("acme").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["files"][0]["id"], id.as_str());
    assert_eq!(list("globex").await.json()["data"]["files"], json!([]));
    // The body's organization and the header's must agree.
    let r = f
        .send(
            "POST",
            "/storage/service/files/list",
            &svc(Some("globex")),
            Some(json!({ "connectionId": f.s3_id, "organizationId": "acme" })),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());

    // Visibility `organization` (which the end-user routes cannot set):
    // bob of acme may now read it, eve of globex still not.
    let r = f
        .send(
            "POST",
            &format!("/storage/service/files/{id}/visibility"),
            &svc(Some("acme")),
            Some(json!({ "visibility": "organization" })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["file"]["visibility"], "organization");
    let r = f
        .send(
            "GET",
            &format!("/storage/files/{id}/url"),
            &f.user("bob", "acme"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        get_bytes(r.json()["data"]["url"].as_str().unwrap()).await,
        b"service bytes"
    );
    let r = f
        .send(
            "GET",
            &format!("/storage/files/{id}"),
            &f.user("eve", "globex"),
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());

    // A storage.files key is no service: 403, and the file is untouched.
    let r = f
        .send(
            "DELETE",
            &format!("/storage/service/files/{id}"),
            &f.user("alice", "acme"),
            None,
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());

    // Delete: the row soft-deleted, the object gone.
    let r = f
        .send(
            "DELETE",
            &format!("/storage/service/files/{id}"),
            &svc(Some("acme")),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["file"]["status"], "soft_deleted");
    let r = f
        .send("GET", &format!("/storage/files/{id}"), &alice, None)
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = s
        .send(
            "POST",
            "/storage/objects/exists",
            &[
                ("x-athena-key", crate::common::ADMIN_KEY),
                ("x-athena-client", CLIENT),
            ],
            Some(json!({ "s3_id": f.s3_id, "bucket": f.bucket, "key": "svc/a.txt" })),
        )
        .await;
    assert_eq!(r.json()["data"]["exists"], false, "{}", r.text());

    // Restore (from the prior version), move, purge.
    let r = f
        .send(
            "POST",
            &format!("/storage/service/files/{id}/restore"),
            &svc(Some("acme")),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["file"]["status"], "available");
    let r = f
        .send(
            "POST",
            &format!("/storage/service/files/{id}/move"),
            &svc(Some("acme")),
            Some(json!({ "destinationKey": "svc/moved.txt" })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["file"]["key"], "svc/moved.txt");
    let r = f
        .send("GET", &format!("/storage/files/{id}/url"), &alice, None)
        .await;
    assert_eq!(
        get_bytes(r.json()["data"]["url"].as_str().unwrap()).await,
        b"service bytes"
    );
    let r = f
        .send(
            "DELETE",
            &format!("/storage/service/files/{id}/purge"),
            &svc(Some("globex")),
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = f
        .send(
            "DELETE",
            &format!("/storage/service/files/{id}/purge"),
            &svc(Some("acme")),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["fileId"], id.as_str());
    let r = f
        .send(
            "POST",
            &format!("/storage/service/files/{id}/restore"),
            &svc(Some("acme")),
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
}

#[tokio::test]
async fn a_service_uploads_and_shares() {
    use base64::Engine;
    let s = TestServer::start_with(|c| allow(c, "127.0.0.1")).await;
    let f = Files::new(&s).await;
    let service_key = s.api_key(&["storage.service"], None).await;
    let svc = vec![
        ("x-athena-key".to_string(), service_key.clone()),
        ("x-athena-client".to_string(), CLIENT.to_string()),
        ("x-organization-id".to_string(), "acme".to_string()),
    ];
    let body = base64::engine::general_purpose::STANDARD.encode(b"uploaded by a service");
    let r = f
        .send(
            "POST",
            "/storage/service/files",
            &svc,
            Some(json!({
                "body": body, "bucket": f.bucket, "connectionId": f.s3_id, "key": "svc/up.txt",
                "contentType": "text/plain", "idempotencyKey": "k-1",
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let file = r.json()["data"]["file"].clone();
    let id = file["id"].as_str().unwrap().to_string();
    assert_eq!(file["status"], "available");
    assert_eq!(file["sizeBytes"], 21);
    assert_eq!(file["createdByUserId"], json!(null));
    assert_eq!(file["metadata"]["idempotency_key"], "k-1");
    // Nobody owns it: a member of acme cannot read it until granted.
    let bob = f.user("bob", "acme");
    let r = f
        .send("GET", &format!("/storage/files/{id}"), &bob, None)
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let grant = json!({ "action": "read", "principalType": "user", "principalId": "bob" });
    let r = f
        .send(
            "POST",
            &format!("/storage/service/files/{id}/permissions/grant"),
            &svc,
            Some(grant.clone()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["permission"]["action"], "read");
    assert_eq!(r.json()["data"]["permission"]["principalId"], "bob");
    let r = f
        .send("GET", &format!("/storage/files/{id}/url"), &bob, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        get_bytes(r.json()["data"]["url"].as_str().unwrap()).await,
        b"uploaded by a service"
    );
    let r = f
        .send(
            "GET",
            &format!("/storage/service/files/{id}/permissions"),
            &svc,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let perms = r.json()["data"]["permissions"].clone();
    assert_eq!(perms.as_array().unwrap().len(), 1, "{perms}");
    assert_eq!(perms[0]["fileId"], id.as_str());
    // Revoke: bob sees nothing at once.
    let r = f
        .send(
            "POST",
            &format!("/storage/service/files/{id}/permissions/revoke"),
            &svc,
            Some(grant),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["fileId"], id.as_str());
    let r = f
        .send("GET", &format!("/storage/files/{id}"), &bob, None)
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    // Bad input: not base64, no organization.
    let r = f
        .send(
            "POST",
            "/storage/service/files",
            &svc,
            Some(json!({ "body": "%%%", "bucket": f.bucket, "connectionId": f.s3_id, "key": "svc/x" })),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = f
        .send(
            "POST",
            "/storage/service/files",
            &svc[..2],
            Some(json!({ "body": body, "bucket": f.bucket, "connectionId": f.s3_id, "key": "svc/y" })),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
}
