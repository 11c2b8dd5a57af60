//! Family `admin_billing`, the provider webhook (`billing`) and the SDK's
//! billing operations (issue 15): every case creates a connection of its
//! own (a unique owner, so the second run on the same databases starts
//! clean) and reads its effect back through the API or the tenant's
//! `billing.billing_*` tables. Stripe webhooks are signed here with the
//! connection's secret (no provider call). Reconcile needs a provider API:
//! `scripts/conformance-run` allow-lists a port for a fake one this process
//! serves (`ATHENA_CONFORMANCE_BILLING_PORT`); without it the reconcile
//! case is left to the generic pass.

use super::{envelope, expect_eq, Case, Ctx};
use crate::http::Request;
use serde_json::{json, Value};

const SECRET: &str = "whsec_conformance_secret";
const API_KEY: &str = "sk_test_conformance_key";

fn unique(prefix: &str) -> String {
    format!(
        "conf_{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

fn connections(ctx: &Ctx) -> String {
    format!("/admin/billing/clients/{}/connections", ctx.client)
}

/// Creates a Stripe connection owned by `owner` (setup step output:
/// `data.connection.id`).
fn create(ctx: &Ctx, owner: &str, config: Value) -> Request {
    ctx.request("post", &connections(ctx)).json(json!({
        "provider": "stripe", "ownerKind": "organization", "ownerId": owner, "mode": "test",
        "config": config,
        "credentials": {"apiKey": API_KEY, "webhookSecret": SECRET},
    }))
}

/// The connection of setup step 0.
fn one(ctx: &Ctx, suffix: &str) -> String {
    format!("{}/{{{{0.data.connection.id}}}}{suffix}", connections(ctx))
}

/// `data.connection.ownerId` must be `want`, and no credential is shown.
fn owner_is(want: String) -> impl Fn(&Value) -> Result<(), String> + Send + Sync + 'static {
    move |b| {
        no_secret(b)?;
        expect_eq(
            "data.connection.ownerId",
            &b["data"]["connection"]["ownerId"],
            &json!(want),
        )
    }
}

fn no_secret(b: &Value) -> Result<(), String> {
    let text = b.to_string();
    if text.contains(SECRET) || text.contains(API_KEY) {
        return Err("a credential came back".into());
    }
    Ok(())
}

fn sign(body: &Value, t: u64) -> String {
    use hmac::{Hmac, Mac};
    let bytes = serde_json::to_vec(body).expect("JSON");
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(format!("{t}.").as_bytes());
    mac.update(&bytes);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A signed Stripe `payment_intent.succeeded` for payment `payment`, posted
/// to the connection of setup step 0 (no API key: the signature is the
/// credential).
fn signed_webhook(ctx: &Ctx, payment: &str, signature: Option<&str>) -> Request {
    let event = json!({
        "id": format!("evt_{payment}"), "type": "payment_intent.succeeded",
        "data": {"object": {"object": "payment_intent", "id": payment, "amount": 990,
                            "currency": "eur", "status": "succeeded"}}
    });
    let sig = signature.map_or_else(|| sign(&event, now()), str::to_string);
    Request::new(
        "post",
        &format!(
            "/billing/providers/stripe/clients/{}/connections/{{{{0.data.connection.id}}}}/webhook",
            ctx.client
        ),
    )
    .header("Stripe-Signature", &sig)
    .json(event)
}

fn events(ctx: &Ctx) -> Request {
    ctx.request(
        "get",
        &format!("/admin/billing/clients/{}/webhook-events", ctx.client),
    )
    .query("connectionId", "{{0.data.connection.id}}")
}

fn event_count(want: usize) -> impl Fn(&Value) -> Result<(), String> + Send + Sync + 'static {
    move |b| {
        let n = b["data"]["events"]
            .as_array()
            .ok_or("no data.events")?
            .len();
        expect_eq("handled events of the connection", n, want)
    }
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    let (created, listed, got, patched, deleted, hooked, forged, logged) = (
        unique("bc_new"),
        unique("bc_list"),
        unique("bc_get"),
        unique("bc_patch"),
        unique("bc_del"),
        unique("bc_hook"),
        unique("bc_forged"),
        unique("bc_events"),
    );
    let mut out = vec![
        Case::new(
            "get_admin_billing_providers",
            "the provider catalog names stripe and mollie",
            ctx.request("get", "/admin/billing/providers"),
            200,
        )
        .check_json(|b| {
            let names: Vec<&str> = b["data"]["providers"]
                .as_array()
                .ok_or("no data.providers")?
                .iter()
                .filter_map(|p| p["provider"].as_str())
                .collect();
            expect_eq("providers", names, vec!["stripe", "mollie"])
        }),
        Case::new(
            "get_admin_billing_grants",
            "the grant catalog lists grant keys",
            ctx.request("get", "/admin/billing/grants"),
            200,
        )
        .check_json(|b| {
            let n = b["data"]["grants"].as_array().ok_or("no data.grants")?.len();
            expect_eq("grants listed", n >= 3, true)
        }),
        Case::new(
            "post_admin_billing_clients_by_client_name_connections",
            "create a connection; its credentials never come back",
            create(ctx, &created, json!({})),
            200,
        )
        .check_json(owner_is(created.clone()))
        .then_json(
            ctx.request(
                "get",
                &format!("{}/{{{{r.data.connection.id}}}}", connections(ctx)),
            ),
            200,
            owner_is(created.clone()),
        ),
        Case::new(
            "post_admin_billing_clients_by_client_name_connections",
            "an unknown provider is refused",
            ctx.request("post", &connections(ctx))
                .json(json!({"provider": "paypal", "ownerId": unique("bc_bad")})),
            400,
        )
        .check(envelope),
        Case::new(
            "get_admin_billing_clients_by_client_name_connections",
            "list filtered by owner",
            ctx.request("get", &connections(ctx))
                .query("ownerId", &listed)
                .query("provider", "stripe"),
            200,
        )
        .after(create(ctx, &listed, json!({})))
        .check_json(move |b| {
            let found = b["data"]["connections"]
                .as_array()
                .ok_or("no data.connections")?;
            no_secret(b)?;
            expect_eq("connections of the owner", found.len(), 1)?;
            expect_eq(
                "its webhook path",
                found[0]["webhookPath"].as_str().is_some_and(|p| p.ends_with("/webhook")),
                true,
            )
        }),
        Case::new(
            "get_admin_billing_clients_by_client_name_connections_by_connection_id",
            "load one connection",
            ctx.request("get", &one(ctx, "")),
            200,
        )
        .after(create(ctx, &got, json!({})))
        .check_json(owner_is(got.clone())),
        Case::new(
            "get_admin_billing_clients_by_client_name_connections_by_connection_id",
            "an unknown connection is a 404",
            ctx.request(
                "get",
                &format!("{}/{}", connections(ctx), uuid::Uuid::new_v4()),
            ),
            404,
        )
        .check(envelope),
        Case::new(
            "patch_admin_billing_clients_by_client_name_connections_by_connection_id_reconcile",
            "update a connection (the contract's path)",
            ctx.request("patch", &one(ctx, "/reconcile"))
                .json(json!({"ownerId": format!("{patched}_moved")})),
            200,
        )
        .after(create(ctx, &patched, json!({})))
        .check_json(owner_is(format!("{patched}_moved")))
        .then_json(
            ctx.request("get", &one(ctx, "")),
            200,
            owner_is(format!("{patched}_moved")),
        ),
        Case::new(
            "delete_admin_billing_clients_by_client_name_connections_by_connection_id_reconcile",
            "soft-delete a connection (the contract's path)",
            ctx.request("delete", &one(ctx, "/reconcile")),
            200,
        )
        .after(create(ctx, &deleted, json!({})))
        .then_status(ctx.request("get", &one(ctx, "")), 404),
        Case::new(
            "post_billing_providers_by_provider_clients_by_client_name_connections_by_connection_id_webhook",
            "a signed Stripe event is projected into billing_payments",
            signed_webhook(ctx, &format!("pi_{hooked}"), None),
            200,
        )
        .after(create(ctx, &hooked, json!({})))
        .check_json({
            let payment = format!("pi_{hooked}");
            move |b| expect_eq("data.document.providerRef", &b["data"]["document"]["providerRef"], &json!(payment))
        })
        .then_json(events(ctx), 200, event_count(1))
        .then_db(
            format!(
                "SELECT status, amount_minor FROM billing.billing_payments WHERE provider_ref = 'pi_{hooked}'"
            ),
            super::rows_are(json!([{"status": "succeeded", "amount_minor": 990}])),
        ),
        Case::new(
            "post_billing_providers_by_provider_clients_by_client_name_connections_by_connection_id_webhook",
            "a forged signature is refused and nothing is recorded",
            signed_webhook(ctx, &format!("pi_{forged}"), Some(&format!("t={},v1={}", now(), "00".repeat(32)))),
            401,
        )
        .after(create(ctx, &forged, json!({})))
        .check(envelope)
        .then_json(events(ctx), 200, event_count(0)),
        Case::new(
            "post_billing_providers_by_provider_clients_by_client_name_connections_by_connection_id_webhook",
            "an unknown connection is a 404",
            Request::new(
                "post",
                &format!(
                    "/billing/providers/stripe/clients/{}/connections/{}/webhook",
                    ctx.client,
                    uuid::Uuid::new_v4()
                ),
            )
            .json(json!({"id": "evt_none"})),
            404,
        )
        .check(envelope),
        Case::new(
            "get_admin_billing_clients_by_client_name_webhook_events",
            "the handled event is listed",
            events(ctx),
            200,
        )
        .after(create(ctx, &logged, json!({})))
        .after(signed_webhook(ctx, &format!("pi_{logged}"), None))
        .check_json({
            let event = format!("evt_pi_{logged}");
            move |b| {
                event_count(1)(b)?;
                expect_eq("providerEventId", &b["data"]["events"][0]["providerEventId"], &json!(event))
            }
        }),
    ];
    if let Some(base) = fake_provider() {
        let reconciled = unique("bc_rec");
        out.push(
            Case::new(
                "post_admin_billing_clients_by_client_name_connections_by_connection_id_reconcile",
                "reconcile refetches a subscription from the provider and upserts it",
                ctx.request("post", &one(ctx, "/reconcile")).json(
                    json!({"resourceKind": "subscription", "providerRef": "sub_conformance"}),
                ),
                200,
            )
            .after(create(ctx, &reconciled, json!({"api_base_url": base})))
            .check_json(|b| {
                expect_eq(
                    "data.document.status",
                    &b["data"]["document"]["status"],
                    &json!("active"),
                )
            })
            .then_db(
                format!(
                    "SELECT s.status, s.provider_customer_ref FROM billing.billing_subscriptions s
                       JOIN billing.billing_provider_connections c ON c.id = s.connection_id
                      WHERE c.owner_id = '{reconciled}' AND s.provider_ref = 'sub_conformance'"
                ),
                super::rows_are(
                    json!([{"status": "active", "provider_customer_ref": "cus_conformance"}]),
                ),
            ),
        );
    }
    out
}

/// The SDK-only operations: connection PATCH/DELETE on the connection's
/// own path and `/debug/billing`.
pub fn sdk_only_cases(ctx: &Ctx) -> Vec<Case> {
    let (patched, deleted, debugged) = (unique("bc_sdkp"), unique("bc_sdkd"), unique("bc_dbg"));
    vec![
        Case::new(
            "patch_admin_billing_clients_by_client_name_connections_by_connection_id",
            "update a connection (the SDK's path)",
            ctx.request("patch", &one(ctx, ""))
                .json(json!({"ownerId": format!("{patched}_moved"), "scopes": ["payments"]})),
            200,
        )
        .after(create(ctx, &patched, json!({})))
        .then_json(ctx.request("get", &one(ctx, "")), 200, {
            let want = format!("{patched}_moved");
            move |b| {
                owner_is(want.clone())(b)?;
                expect_eq(
                    "scopes",
                    &b["data"]["connection"]["scopes"],
                    &json!(["payments"]),
                )
            }
        }),
        Case::new(
            "delete_admin_billing_clients_by_client_name_connections_by_connection_id",
            "soft-delete a connection (the SDK's path)",
            ctx.request("delete", &one(ctx, "")),
            200,
        )
        .after(create(ctx, &deleted, json!({})))
        .then_status(ctx.request("get", &one(ctx, "")), 404),
        Case::new(
            "get_debug_billing",
            "diagnostics list the client's connections",
            ctx.request("get", "/debug/billing"),
            200,
        )
        .after(create(ctx, &debugged, json!({})))
        .check_json(move |b| {
            no_secret(b)?;
            let found = b["data"]["connections"]
                .as_array()
                .ok_or("no data.connections")?
                .iter()
                .any(|c| c["ownerId"] == debugged.as_str());
            expect_eq("the new connection is listed", found, true)
        }),
    ]
}

/// Serves a fake provider API on `ATHENA_CONFORMANCE_BILLING_PORT` (once
/// per process, inside the runtime): its base URL.
fn fake_provider() -> Option<String> {
    use std::sync::OnceLock;
    static STARTED: OnceLock<Option<String>> = OnceLock::new();
    STARTED
        .get_or_init(|| {
            let port: u16 = std::env::var("ATHENA_CONFORMANCE_BILLING_PORT")
                .ok()?
                .parse()
                .ok()?;
            let handle = tokio::runtime::Handle::try_current().ok()?;
            let listener = std::net::TcpListener::bind(("127.0.0.1", port)).ok()?;
            listener.set_nonblocking(true).ok()?;
            let _guard = handle.enter();
            let listener = tokio::net::TcpListener::from_std(listener).ok()?;
            handle.spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(
                            |req: hyper::Request<hyper::body::Incoming>| async move {
                                let (status, body) = match req.uri().path() {
                                    "/v1/subscriptions/sub_conformance" => (
                                        200,
                                        json!({"object": "subscription", "id": "sub_conformance",
                                           "status": "active", "customer": "cus_conformance"}),
                                    ),
                                    _ => (404, json!({"error": {"message": "no such resource"}})),
                                };
                                Ok::<_, std::convert::Infallible>(
                                    hyper::Response::builder()
                                        .status(status)
                                        .header("content-type", "application/json")
                                        .body(http_body_util::Full::new(bytes::Bytes::from(
                                            body.to_string(),
                                        )))
                                        .expect("response"),
                                )
                            },
                        );
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                            .await;
                    });
                }
            });
            Some(format!("http://127.0.0.1:{port}"))
        })
        .clone()
}
