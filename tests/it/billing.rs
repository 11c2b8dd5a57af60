//! Billing providers (issue 15, `src/billing/`): a fake Stripe/Mollie API
//! on 127.0.0.1 (its address and port allow-listed for the outbound
//! policy) answers the resources the gateway refetches. Proves the signed
//! Stripe ingest (row read back, replay a no-op, bad or stale signature
//! 401), the Mollie id-only ingest (refetch, 502 when the provider fails),
//! reconcile, the 404/400/422 refusals, that credentials never come back,
//! and that a provider URL outside the allow list is refused.

use crate::common::{allow, TestServer, ADMIN_KEY, CLIENT};
use bytes::Bytes;
use http_body_util::Full;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const ADMIN: (&str, &str) = ("X-Athena-Key", ADMIN_KEY);
const API_KEY: &str = "sk_test_fake_api_key_4242";
const WEBHOOK_SECRET: &str = "whsec_fake_signing_secret_4242";

/// The fake provider API: `answers` by path (status, body); every request
/// is logged as (path, Authorization).
#[derive(Clone, Default)]
struct FakeProvider {
    answers: Arc<Mutex<HashMap<String, (u16, Value)>>>,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl FakeProvider {
    fn answer(&self, path: &str, status: u16, body: Value) {
        self.answers
            .lock()
            .unwrap()
            .insert(path.to_string(), (status, body));
    }

    fn seen(&self) -> Vec<(String, String)> {
        self.seen.lock().unwrap().clone()
    }

    /// Starts the fake; its base URL.
    async fn start(&self) -> (String, u16) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let me = me.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: hyper::Request<_>| {
                        let me = me.clone();
                        async move {
                            let _: &hyper::body::Incoming = req.body();
                            let path = req.uri().path().to_string();
                            let auth = req
                                .headers()
                                .get("authorization")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_string();
                            me.seen.lock().unwrap().push((path.clone(), auth));
                            let (status, body) = me
                                .answers
                                .lock()
                                .unwrap()
                                .get(&path)
                                .cloned()
                                .unwrap_or((404, json!({"error": "not found"})));
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(body.to_string())))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        (format!("http://{addr}"), addr.port())
    }
}

/// A server allowing exactly the fake's address and port.
async fn server(fake: &FakeProvider) -> (TestServer, String) {
    let (base, port) = fake.start().await;
    let s = TestServer::start_with(|c| allow(c, &format!("127.0.0.1:{port}"))).await;
    (s, base)
}

fn connections_path() -> String {
    format!("/admin/billing/clients/{CLIENT}/connections")
}

/// Creates a connection; its JSON.
async fn create(s: &TestServer, body: Value) -> Value {
    let r = s
        .send("POST", &connections_path(), &[ADMIN], Some(body))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_no_secret(&r.text());
    r.json()["data"]["connection"].clone()
}

fn assert_no_secret(text: &str) {
    assert!(!text.contains(API_KEY), "an API key came back: {text}");
    assert!(
        !text.contains(WEBHOOK_SECRET),
        "a webhook secret came back: {text}"
    );
}

fn stripe_signature(secret: &str, t: i64, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn webhook_path(provider: &str, id: &str) -> String {
    format!("/billing/providers/{provider}/clients/{CLIENT}/connections/{id}/webhook")
}

async fn post_signed(
    s: &TestServer,
    id: &str,
    event: &Value,
    secret: &str,
    t: i64,
) -> crate::common::Reply {
    let body = Bytes::from(serde_json::to_vec(event).unwrap());
    let sig = stripe_signature(secret, t, &body);
    s.send_raw(
        "POST",
        &webhook_path("stripe", id),
        &[
            ("content-type", "application/json"),
            ("stripe-signature", &sig),
        ],
        body,
    )
    .await
}

#[tokio::test]
async fn stripe_signed_events_project_once_and_bad_signatures_are_refused() {
    let fake = FakeProvider::default();
    let (s, base) = server(&fake).await;
    let conn = create(
        &s,
        json!({
            "provider": "stripe", "providerAccountId": "acct_1", "ownerKind": "organization",
            "ownerId": "org_1", "mode": "test", "config": {"api_base_url": base},
            "scopes": ["payments"],
            "credentials": {"apiKey": API_KEY, "webhookSecret": WEBHOOK_SECRET},
        }),
    )
    .await;
    let id = conn["id"].as_str().unwrap().to_string();
    assert_eq!(conn["webhookPath"], webhook_path("stripe", &id));
    assert_eq!(conn["capabilities"]["webhookIngest"], true);
    assert_eq!(conn["hasWebhookSecret"], true);
    // Sealed at rest: the plaintext is nowhere in the row.
    let sealed = s
        .scalar(&format!(
            "SELECT count(*) FROM billing.billing_provider_connections
              WHERE id = '{id}' AND position('{API_KEY}'::bytea in api_key_sealed) = 0
                AND position('{WEBHOOK_SECRET}'::bytea in webhook_secret_sealed) = 0"
        ))
        .await;
    assert_eq!(sealed, 1);

    let event = json!({
        "id": "evt_1", "type": "payment_intent.succeeded",
        "data": {"object": {"object": "payment_intent", "id": "pi_1", "amount": 1250,
                            "currency": "eur", "status": "succeeded", "customer": "cus_1"}}
    });
    let now = chrono::Utc::now().timestamp();
    let r = post_signed(&s, &id, &event, WEBHOOK_SECRET, now).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let data = r.json()["data"].clone();
    assert_eq!(data["document"]["kind"], "payment");
    assert_eq!(data["document"]["providerRef"], "pi_1");
    assert_eq!(data["auth_sync_result"]["status"], "skipped");
    assert_eq!(
        data["auth_grant_sync"]["grantKeys"],
        json!(["billing.payment.paid"])
    );
    assert_eq!(data["replayed"], false);
    let log_id = data["eventLogId"].as_str().unwrap().to_string();
    let row = s
        .tenant()
        .await
        .query_one(
            "SELECT status, amount_minor, currency, provider_customer_ref FROM billing.billing_payments
              WHERE connection_id = $1::text::uuid AND provider_ref = 'pi_1'",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, Option<String>>(0).as_deref(),
        Some("succeeded")
    );
    assert_eq!(row.get::<_, Option<i64>>(1), Some(1250));
    assert_eq!(row.get::<_, Option<String>>(2).as_deref(), Some("EUR"));
    assert_eq!(row.get::<_, Option<String>>(3).as_deref(), Some("cus_1"));

    // Replay: 200, nothing changes, the first recording's id.
    let r = post_signed(&s, &id, &event, WEBHOOK_SECRET, now).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["replayed"], true);
    assert_eq!(r.json()["data"]["eventLogId"], log_id.as_str());
    assert_eq!(
        s.scalar("SELECT count(*) FROM billing.billing_payments")
            .await,
        1
    );
    assert_eq!(
        s.scalar("SELECT count(*) FROM billing.billing_webhook_events")
            .await,
        1
    );

    // Another event on the same payment updates the row.
    let mut later = event.clone();
    later["id"] = json!("evt_2");
    later["data"]["object"]["status"] = json!("canceled");
    let r = post_signed(&s, &id, &later, WEBHOOK_SECRET, now).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.scalar("SELECT count(*) FROM billing.billing_payments WHERE status = 'canceled'")
            .await,
        1
    );

    // An older event arriving late is recorded but does not overwrite.
    let mut stale = event.clone();
    stale["id"] = json!("evt_0");
    stale["created"] = json!(now - 3600);
    stale["data"]["object"]["status"] = json!("processing");
    let r = post_signed(&s, &id, &stale, WEBHOOK_SECRET, now).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.scalar("SELECT count(*) FROM billing.billing_payments WHERE status = 'canceled'")
            .await,
        1
    );
    assert_eq!(
        s.scalar("SELECT count(*) FROM billing.billing_webhook_events")
            .await,
        3
    );
    // Bad signature, stale timestamp, no header: 401, nothing recorded.
    let mut forged = event.clone();
    forged["id"] = json!("evt_forged");
    let r = post_signed(&s, &id, &forged, "whsec_other", now).await;
    assert_eq!(r.status, 401, "{}", r.text());
    r.envelope();
    let r = post_signed(&s, &id, &forged, WEBHOOK_SECRET, now - 301).await;
    assert_eq!(r.status, 401, "{}", r.text());
    let r = s
        .send(
            "POST",
            &webhook_path("stripe", &id),
            &[],
            Some(forged.clone()),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    // A signature over other bytes than those sent.
    let sig = stripe_signature(WEBHOOK_SECRET, now, b"{}");
    let r = s
        .send(
            "POST",
            &webhook_path("stripe", &id),
            &[("stripe-signature", &sig)],
            Some(forged),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(
        s.scalar("SELECT count(*) FROM billing.billing_webhook_events")
            .await,
        3
    );

    // A verified event of a shape Athena does not project: 422.
    let coupon = json!({"id": "evt_3", "type": "coupon.created",
                        "data": {"object": {"object": "coupon", "id": "co_1"}}});
    let r = post_signed(&s, &id, &coupon, WEBHOOK_SECRET, now).await;
    assert_eq!(r.status, 422, "{}", r.text());
    r.envelope();
    // Provider mismatch 400; unknown connection 404; unknown provider 400.
    let r = s
        .send(
            "POST",
            &webhook_path("mollie", &id),
            &[],
            Some(json!({"id": "tr_1"})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let other = uuid::Uuid::new_v4().to_string();
    let r = post_signed(&s, &other, &event, WEBHOOK_SECRET, now).await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = s
        .send("POST", &webhook_path("paypal", &id), &[], Some(json!({})))
        .await;
    assert_eq!(r.status, 400, "{}", r.text());

    // The handled events, newest first; never a credential.
    let r = s
        .send(
            "GET",
            &format!("/admin/billing/clients/{CLIENT}/webhook-events?connectionId={id}"),
            &[ADMIN],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_no_secret(&r.text());
    let events = r.json()["data"]["events"].clone();
    assert_eq!(events.as_array().unwrap().len(), 3, "{events}");
    assert_eq!(events[2]["providerEventId"], "evt_1");
    let r = s
        .send(
            "GET",
            &format!("{}/{id}", connections_path()),
            &[ADMIN],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_no_secret(&r.text());
    let r = s
        .send(
            "GET",
            "/debug/billing",
            &[ADMIN, ("X-Athena-Client", CLIENT)],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_no_secret(&r.text());
    assert_eq!(r.json()["data"]["last_event"]["providerEventId"], "evt_0");
    // The Stripe path never called the provider API.
    assert!(fake.seen().is_empty());
    s.stop().await;
}

#[tokio::test]
async fn mollie_ids_are_refetched_and_a_failing_provider_is_a_502() {
    let fake = FakeProvider::default();
    fake.answer(
        "/v2/payments/tr_1",
        200,
        json!({"resource": "payment", "id": "tr_1", "status": "paid", "customerId": "cst_1",
               "amount": {"value": "10.50", "currency": "EUR"}}),
    );
    fake.answer("/v2/payments/tr_bad", 500, json!({"error": "boom"}));
    let (s, base) = server(&fake).await;
    let conn = create(
        &s,
        json!({"provider": "mollie", "config": {"apiBaseUrl": base},
               "credentials": {"api_key": API_KEY}}),
    )
    .await;
    let id = conn["id"].as_str().unwrap().to_string();
    let r = s
        .send(
            "POST",
            &webhook_path("mollie", &id),
            &[],
            Some(json!({"id": "tr_1"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["document"]["amountMinor"], 1050);
    assert_eq!(
        fake.seen(),
        vec![("/v2/payments/tr_1".to_string(), format!("Bearer {API_KEY}"))]
    );
    assert_eq!(
        s.scalar("SELECT count(*) FROM billing.billing_payments WHERE provider_ref = 'tr_1' AND status = 'paid' AND amount_minor = 1050").await,
        1
    );
    // The same id in the same state again: a no-op.
    let r = s
        .send(
            "POST",
            &webhook_path("mollie", &id),
            &[],
            Some(json!({"id": "tr_1"})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["data"]["replayed"], true);
    assert_eq!(
        s.scalar("SELECT count(*) FROM billing.billing_webhook_events")
            .await,
        1
    );

    // The provider fails: 502, nothing recorded.
    let r = s
        .send(
            "POST",
            &webhook_path("mollie", &id),
            &[],
            Some(json!({"id": "tr_bad"})),
        )
        .await;
    assert_eq!(r.status, 502, "{}", r.text());
    r.envelope();
    // Unknown to the provider (404 there): 502 too; an id of no projected kind: 422.
    let r = s
        .send(
            "POST",
            &webhook_path("mollie", &id),
            &[],
            Some(json!({"id": "tr_missing"})),
        )
        .await;
    assert_eq!(r.status, 502, "{}", r.text());
    let r = s
        .send(
            "POST",
            &webhook_path("mollie", &id),
            &[],
            Some(json!({"id": "ord_1"})),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(
        s.scalar("SELECT count(*) FROM billing.billing_webhook_events")
            .await,
        1
    );
    s.stop().await;
}

#[tokio::test]
async fn reconcile_refetches_and_upserts() {
    let fake = FakeProvider::default();
    fake.answer(
        "/v1/subscriptions/sub_1",
        200,
        json!({"object": "subscription", "id": "sub_1", "status": "active", "customer": "cus_9",
               "currency": "usd"}),
    );
    fake.answer(
        "/v2/customers/cst_1/subscriptions/sub_m1",
        200,
        json!({"resource": "subscription", "id": "sub_m1", "status": "active",
               "customerId": "cst_1", "amount": {"value": "5.00", "currency": "EUR"}}),
    );
    let (s, base) = server(&fake).await;
    let stripe = create(
        &s,
        json!({"provider": "stripe", "config": {"api_base_url": base},
               "credentials": {"apiKey": API_KEY}}),
    )
    .await;
    let sid = stripe["id"].as_str().unwrap();
    let path = format!("{}/{sid}/reconcile", connections_path());
    let r = s
        .send(
            "POST",
            &path,
            &[ADMIN],
            Some(json!({"resourceKind": "subscription", "providerRef": "sub_1"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["document"]["status"], "active");
    assert_eq!(
        r.json()["data"]["auth_grant_sync"]["grantKeys"],
        json!(["billing.subscription.active"])
    );
    assert_eq!(
        s.scalar("SELECT count(*) FROM billing.billing_subscriptions WHERE provider_ref = 'sub_1' AND provider_customer_ref = 'cus_9'").await,
        1
    );
    // The provider changed: a second reconcile (the SDK's field names)
    // updates the same row.
    fake.answer(
        "/v1/subscriptions/sub_1",
        200,
        json!({"object": "subscription", "id": "sub_1", "status": "canceled", "customer": "cus_9"}),
    );
    let r = s
        .send(
            "POST",
            &path,
            &[ADMIN],
            Some(json!({"resourceKind": "subscription", "resourceId": "sub_1"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.scalar("SELECT count(*) FROM billing.billing_subscriptions WHERE status = 'canceled'")
            .await,
        1
    );
    assert_eq!(
        s.scalar("SELECT count(*) FROM billing.billing_subscriptions")
            .await,
        1
    );
    // Not at the provider: 502. A bad kind or id: 400.
    let r = s
        .send(
            "POST",
            &path,
            &[ADMIN],
            Some(json!({"resourceKind": "invoice", "providerRef": "in_404"})),
        )
        .await;
    assert_eq!(r.status, 502, "{}", r.text());
    let r = s
        .send(
            "POST",
            &path,
            &[ADMIN],
            Some(json!({"resourceKind": "refund", "providerRef": "re_1"})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = s
        .send(
            "POST",
            &path,
            &[ADMIN],
            Some(json!({"resourceKind": "invoice", "providerRef": "../x"})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());

    // Mollie subscriptions need the customer.
    let mollie = create(
        &s,
        json!({"provider": "mollie", "config": {"api_base_url": base},
               "credentials": {"apiKey": API_KEY}}),
    )
    .await;
    let mpath = format!(
        "{}/{}/reconcile",
        connections_path(),
        mollie["id"].as_str().unwrap()
    );
    let r = s
        .send(
            "POST",
            &mpath,
            &[ADMIN],
            Some(json!({"resourceKind": "subscription", "providerRef": "sub_m1"})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = s
        .send(
            "POST",
            &mpath,
            &[ADMIN],
            Some(json!({"resourceKind": "subscription", "resourceId": "sub_m1", "customerId": "cst_1"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.scalar("SELECT count(*) FROM billing.billing_subscriptions WHERE provider_ref = 'sub_m1' AND amount_minor = 500").await,
        1
    );
    // Unknown connection: 404.
    let r = s
        .send(
            "POST",
            &format!("{}/{}/reconcile", connections_path(), uuid::Uuid::new_v4()),
            &[ADMIN],
            Some(json!({"resourceKind": "payment", "providerRef": "pi_1"})),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    s.stop().await;
}

#[tokio::test]
async fn connections_are_listed_patched_and_deleted_on_both_paths() {
    let fake = FakeProvider::default();
    let (s, base) = server(&fake).await;
    let a = create(
        &s,
        json!({"provider": "stripe", "ownerKind": "organization", "ownerId": "org_a",
               "mode": "live", "config": {"api_base_url": base}}),
    )
    .await;
    let b = create(
        &s,
        json!({"provider": "mollie", "owner_kind": "user", "owner_id": "u_1"}),
    )
    .await;
    let (a_id, b_id) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    assert_eq!(b["mode"], "test");
    assert_eq!(b["ownerKind"], "user");
    let list = |q: &str| {
        let path = format!("{}{q}", connections_path());
        let s = &s;
        async move {
            let r = s.send("GET", &path, &[ADMIN], None).await;
            assert_eq!(r.status, 200, "{}", r.text());
            r.json()["data"]["connections"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list("").await.len(), 2);
    assert_eq!(list("?provider=stripe").await, vec![a_id.to_string()]);
    assert_eq!(list("?ownerKind=user").await, vec![b_id.to_string()]);
    assert_eq!(
        list("?ownerId=org_a&mode=live").await,
        vec![a_id.to_string()]
    );
    assert!(list("?mode=test&provider=stripe").await.is_empty());

    // PATCH on the contract's path, then on the SDK's.
    let r = s
        .send(
            "PATCH",
            &format!("{}/{a_id}/reconcile", connections_path()),
            &[ADMIN],
            Some(json!({"ownerId": "org_b", "credentials": {"webhookSecret": WEBHOOK_SECRET}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_no_secret(&r.text());
    let r = s
        .send(
            "PATCH",
            &format!("{}/{a_id}", connections_path()),
            &[ADMIN],
            Some(json!({"scopes": ["invoices"]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s
        .send(
            "GET",
            &format!("{}/{a_id}", connections_path()),
            &[ADMIN],
            None,
        )
        .await;
    let got = r.json()["data"]["connection"].clone();
    assert_eq!(got["ownerId"], "org_b");
    assert_eq!(got["scopes"], json!(["invoices"]));
    assert_eq!(got["hasWebhookSecret"], true);
    // Bad input.
    for bad in [
        json!({"mode": "prod"}),
        json!({"provider": "mollie"}),
        json!({"config": {"api_key": "sk_in_config"}}),
        json!({"scopes": "all"}),
    ] {
        let r = s
            .send(
                "PATCH",
                &format!("{}/{a_id}", connections_path()),
                &[ADMIN],
                Some(bad.clone()),
            )
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    for bad in [json!({}), json!({"provider": "paypal"})] {
        let r = s
            .send("POST", &connections_path(), &[ADMIN], Some(bad.clone()))
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }

    // DELETE on the SDK's path, then on the contract's.
    let r = s
        .send(
            "DELETE",
            &format!("{}/{a_id}", connections_path()),
            &[ADMIN],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["connection"]["status"], "deleted");
    let r = s
        .send(
            "DELETE",
            &format!("{}/{b_id}/reconcile", connections_path()),
            &[ADMIN],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s
        .send(
            "GET",
            &format!("{}/{a_id}", connections_path()),
            &[ADMIN],
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = s
        .send(
            "DELETE",
            &format!("{}/{a_id}", connections_path()),
            &[ADMIN],
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    assert!(list("").await.is_empty());
    assert_eq!(list("?includeDeleted=true").await.len(), 2);
    // A deleted connection ingests nothing.
    let r = s
        .send(
            "POST",
            &webhook_path("stripe", a_id),
            &[],
            Some(json!({"id": "evt"})),
        )
        .await;
    assert_eq!(r.status, 404);
    // Admin routes need the admin key.
    let r = s.send("GET", &connections_path(), &[], None).await;
    assert_eq!(r.status, 401, "{}", r.text());
    s.stop().await;
}

#[tokio::test]
async fn provider_urls_outside_the_allow_list_are_refused() {
    let fake = FakeProvider::default();
    let (s, _base) = server(&fake).await;
    // At save: private and metadata literals, credentials in the URL.
    for url in [
        "http://10.1.2.3/",
        "http://169.254.169.254/",
        "http://127.0.0.1:1/",
        "http://user:pw@api.stripe.com/",
        "ftp://api.stripe.com/",
        "https://api.stripe.com/?x=1",
    ] {
        let r = s
            .send(
                "POST",
                &connections_path(),
                &[ADMIN],
                Some(json!({"provider": "stripe", "config": {"api_base_url": url}})),
            )
            .await;
        assert_eq!(r.status, 400, "{url}: {}", r.text());
    }
    // At connect: a name resolving to a loopback port not allow-listed.
    let c = create(
        &s,
        json!({"provider": "stripe", "config": {"api_base_url": "http://localhost:1"},
               "credentials": {"apiKey": API_KEY}}),
    )
    .await;
    let r = s
        .send(
            "POST",
            &format!(
                "{}/{}/reconcile",
                connections_path(),
                c["id"].as_str().unwrap()
            ),
            &[ADMIN],
            Some(json!({"resourceKind": "payment", "providerRef": "pi_1"})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    r.envelope();
    s.stop().await;
}

#[tokio::test]
async fn catalogs_answer_statically() {
    let s = TestServer::start().await;
    let r = s
        .send("GET", "/admin/billing/providers", &[ADMIN], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let providers: Vec<String> = r.json()["data"]["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["provider"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(providers, vec!["stripe", "mollie"]);
    let r = s.send("GET", "/admin/billing/grants", &[ADMIN], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["data"]["grants"].as_array().unwrap().len() >= 3);
    let r = s.send("GET", "/debug/billing", &[ADMIN], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["data"].get("connections").is_none());
    s.stop().await;
}

/// The billing sinks of `helpers/billing`, provisioned, fire on ingested
/// rows: a signed Stripe event lands in the mirror table (one row, the
/// event's values); its replay publishes nothing new; a reconcile that
/// changes the row is mirrored too.
#[tokio::test]
async fn provisioned_billing_sinks_mirror_ingested_rows() {
    let fake = FakeProvider::default();
    let (s, base) = server(&fake).await;
    let r = s
        .send(
            "POST",
            &format!("/admin/billing/clients/{CLIENT}/webhook-sinks/provision"),
            &[ADMIN],
            Some(json!({"targetSchema": "mirror"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let conn = create(
        &s,
        json!({
            "provider": "stripe", "providerAccountId": "acct_9", "ownerKind": "organization",
            "ownerId": "org_9", "mode": "test", "config": {"api_base_url": base},
            "credentials": {"apiKey": API_KEY, "webhookSecret": WEBHOOK_SECRET},
        }),
    )
    .await;
    let id = conn["id"].as_str().unwrap().to_string();
    let event = json!({
        "id": "evt_9", "type": "payment_intent.succeeded",
        "data": {"object": {"object": "payment_intent", "id": "pi_9", "amount": 900,
                            "currency": "usd", "status": "succeeded", "customer": "cus_9"}}
    });
    let now = chrono::Utc::now().timestamp();
    let r = post_signed(&s, &id, &event, WEBHOOK_SECRET, now).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let mirrored = "SELECT count(*) FROM mirror.billing_payments
                     WHERE provider_ref = 'pi_9' AND status = 'succeeded' AND amount = 900
                       AND currency = 'USD' AND customer_ref = 'cus_9'";
    let mut seen = 0;
    for _ in 0..100 {
        seen = s.scalar(mirrored).await;
        if seen == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(seen, 1, "the payment row was not mirrored by the sink");

    // A replay changes nothing and queues nothing.
    let queued = |s: &TestServer| {
        let url = s.catalog_url.clone();
        async move {
            crate::common::psql(&url).await.query_one(
                "SELECT count(*) FROM athena_outbox WHERE event->>'route_key' = 'billing.upsert'",
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
        }
    };
    let before = queued(&s).await;
    assert!(before >= 1);
    let r = post_signed(&s, &id, &event, WEBHOOK_SECRET, now).await;
    assert_eq!(r.json()["data"]["replayed"], true);
    assert_eq!(queued(&s).await, before);

    // A reconcile that changes the row is mirrored (an upsert by id).
    fake.answer(
        "/v1/payment_intents/pi_9",
        200,
        json!({"object": "payment_intent", "id": "pi_9", "amount": 900, "currency": "usd",
               "status": "canceled", "customer": "cus_9"}),
    );
    let r = s
        .send(
            "POST",
            &format!("{}/{id}/reconcile", connections_path()),
            &[ADMIN],
            Some(json!({"resourceKind": "payment", "providerRef": "pi_9"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let mut status = String::new();
    for _ in 0..100 {
        status = s
            .tenant()
            .await
            .query_one(
                "SELECT status FROM mirror.billing_payments WHERE provider_ref = 'pi_9'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if status == "canceled" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, "canceled");
    assert_eq!(
        s.scalar("SELECT count(*) FROM mirror.billing_payments")
            .await,
        1
    );
}
