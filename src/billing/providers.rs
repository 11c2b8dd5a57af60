//! Billing providers (issue 15): Stripe and Mollie as real HTTP clients on
//! the connection's `config.api_base_url`, every connection through the
//! outbound policy (`src/outbound.rs`), answers capped; the Stripe webhook
//! signature; and the projection of a provider object into the canonical
//! billing document.

use crate::http::{ApiError, Code};
use crate::outbound::OutboundPolicy;
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// The providers Athena talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Stripe,
    Mollie,
}

impl Provider {
    pub fn parse(name: &str) -> Option<Provider> {
        match name.trim().to_ascii_lowercase().as_str() {
            "stripe" => Some(Provider::Stripe),
            "mollie" => Some(Provider::Mollie),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Stripe => "stripe",
            Provider::Mollie => "mollie",
        }
    }

    pub fn default_api_base_url(self) -> &'static str {
        match self {
            Provider::Stripe => "https://api.stripe.com",
            Provider::Mollie => "https://api.mollie.com",
        }
    }
}

/// The canonical resource kinds (reconcile's `resourceKind`, the tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Payment,
    PaymentLink,
    Subscription,
    Invoice,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Payment,
        Kind::PaymentLink,
        Kind::Subscription,
        Kind::Invoice,
    ];

    pub fn parse(name: &str) -> Option<Kind> {
        match name.trim() {
            "payment" => Some(Kind::Payment),
            "payment_link" | "paymentLink" => Some(Kind::PaymentLink),
            "subscription" => Some(Kind::Subscription),
            "invoice" => Some(Kind::Invoice),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Payment => "payment",
            Kind::PaymentLink => "payment_link",
            Kind::Subscription => "subscription",
            Kind::Invoice => "invoice",
        }
    }

    /// The table of the kind (a constant: never caller text).
    pub fn table(self) -> &'static str {
        match self {
            Kind::Payment => "billing.billing_payments",
            Kind::PaymentLink => "billing.billing_payment_links",
            Kind::Subscription => "billing.billing_subscriptions",
            Kind::Invoice => "billing.billing_invoices",
        }
    }
}

/// A provider object in the canonical shape.
#[derive(Debug, Clone)]
pub struct Document {
    pub kind: Kind,
    pub provider_ref: String,
    pub customer_ref: Option<String>,
    pub subscription_ref: Option<String>,
    pub status: Option<String>,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    /// The provider object as received.
    pub raw: Value,
}

impl Document {
    pub fn to_json(&self, provider: Provider) -> Value {
        json!({
            "kind": self.kind.as_str(),
            "provider": provider.as_str(),
            "providerRef": self.provider_ref,
            "providerCustomerRef": self.customer_ref,
            "providerSubscriptionRef": self.subscription_ref,
            "status": self.status,
            "amountMinor": self.amount_minor,
            "currency": self.currency,
        })
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// `"10.50"` → 1050 (Mollie amounts are decimal strings).
fn decimal_minor(value: &str) -> Option<i64> {
    let (whole, frac) = value.trim().split_once('.').unwrap_or((value.trim(), ""));
    if frac.len() > 2 || !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = format!("{frac:0<2}").parse().ok()?;
    whole
        .checked_mul(100)
        .and_then(|w| w.checked_add(if whole < 0 { -frac } else { frac }))
}

fn unprocessable(detail: impl Into<String>) -> ApiError {
    ApiError::new(
        Code::Unprocessable,
        "Billing event not projected",
        detail.into(),
    )
}

/// A Stripe object (`object` names its kind) as a document; 422 for a
/// shape Athena does not project.
pub fn project_stripe(object: &Value) -> Result<Document, ApiError> {
    let kind = match object.get("object").and_then(Value::as_str) {
        Some("payment_intent" | "charge") => Kind::Payment,
        Some("payment_link") => Kind::PaymentLink,
        Some("subscription") => Kind::Subscription,
        Some("invoice") => Kind::Invoice,
        Some(other) => {
            return Err(unprocessable(format!(
                "Stripe objects of type `{}` are not projected",
                other.chars().take(64).collect::<String>()
            )))
        }
        None => return Err(unprocessable("the Stripe object has no `object` type")),
    };
    let provider_ref =
        text(object, "id").ok_or_else(|| unprocessable("the Stripe object has no `id`"))?;
    let amount = match kind {
        Kind::Invoice => object.get("amount_due").or_else(|| object.get("total")),
        _ => object.get("amount"),
    }
    .and_then(Value::as_i64);
    let subscription_ref = match kind {
        Kind::Subscription => Some(provider_ref.clone()),
        _ => text(object, "subscription"),
    };
    Ok(Document {
        kind,
        provider_ref,
        customer_ref: text(object, "customer"),
        subscription_ref,
        status: text(object, "status").or_else(|| {
            object
                .get("active")
                .and_then(Value::as_bool)
                .map(|a| if a { "active" } else { "inactive" }.to_string())
        }),
        amount_minor: amount,
        currency: text(object, "currency").map(|c| c.to_ascii_uppercase()),
        raw: object.clone(),
    })
}

/// A Mollie resource (`resource` names its kind) as a document.
pub fn project_mollie(object: &Value) -> Result<Document, ApiError> {
    let kind = match object.get("resource").and_then(Value::as_str) {
        Some("payment") => Kind::Payment,
        Some("payment-link") => Kind::PaymentLink,
        Some("subscription") => Kind::Subscription,
        Some("invoice") => Kind::Invoice,
        Some(other) => {
            return Err(unprocessable(format!(
                "Mollie resources of type `{}` are not projected",
                other.chars().take(64).collect::<String>()
            )))
        }
        None => return Err(unprocessable("the Mollie resource has no `resource` type")),
    };
    let provider_ref =
        text(object, "id").ok_or_else(|| unprocessable("the Mollie resource has no `id`"))?;
    let amount = match kind {
        Kind::Invoice => object.get("grossAmount"),
        _ => object.get("amount"),
    };
    let subscription_ref = match kind {
        Kind::Subscription => Some(provider_ref.clone()),
        _ => text(object, "subscriptionId"),
    };
    Ok(Document {
        kind,
        provider_ref,
        customer_ref: text(object, "customerId"),
        subscription_ref,
        status: text(object, "status").or_else(|| {
            object
                .get("paidAt")
                .filter(|v| !v.is_null())
                .map(|_| "paid".to_string())
        }),
        amount_minor: amount
            .and_then(|a| a.get("value"))
            .and_then(Value::as_str)
            .and_then(decimal_minor),
        currency: amount.and_then(|a| text(a, "currency")),
        raw: object.clone(),
    })
}

/// The kind a Mollie id names by its prefix (`tr_` payment, `pl_` payment
/// link, `sub_` subscription, `inv_` invoice).
pub fn mollie_kind_of(id: &str) -> Option<Kind> {
    let prefix = id.split_once('_')?.0;
    match prefix {
        "tr" => Some(Kind::Payment),
        "pl" => Some(Kind::PaymentLink),
        "sub" => Some(Kind::Subscription),
        "inv" => Some(Kind::Invoice),
        _ => None,
    }
}

/// How far a `Stripe-Signature` timestamp may be from now.
pub const STRIPE_TOLERANCE_SECS: i64 = 300;

/// Verifies `Stripe-Signature: t=<unix>,v1=<hex>[,v1=…]` over the raw body:
/// HMAC-SHA256(secret, "<t>.<body>"), compared in constant time, the
/// timestamp within [`STRIPE_TOLERANCE_SECS`] of `now`.
pub fn verify_stripe(header: &str, body: &[u8], secret: &str, now: i64) -> Result<(), String> {
    use hmac::{Hmac, Mac};
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", s)) => signatures.push(s.to_string()),
            _ => {}
        }
    }
    let t = timestamp.ok_or("the Stripe-Signature header has no timestamp")?;
    if signatures.is_empty() {
        return Err("the Stripe-Signature header has no v1 signature".into());
    }
    if (now - t).abs() > STRIPE_TOLERANCE_SECS {
        return Err("the Stripe-Signature timestamp is outside the 5-minute tolerance".into());
    }
    for sig in signatures {
        let Ok(sig) = hex::decode(sig) else { continue };
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        if mac.verify_slice(&sig).is_ok() {
            return Ok(());
        }
    }
    Err("no Stripe-Signature v1 signature matches the payload".into())
}

type Https = hyper_rustls::HttpsConnector<crate::outbound::Connector>;

/// Longest wait for a connection to a provider API.
const CONNECT: Duration = Duration::from_secs(5);
/// Longest wait for a provider API answer.
const EXCHANGE: Duration = Duration::from_secs(15);
/// Largest provider answer read.
const MAX_ANSWER: usize = 1024 * 1024;

/// The HTTP client of the provider APIs.
pub struct ProviderApi {
    client: Client<Https, Empty<Bytes>>,
}

impl std::fmt::Debug for ProviderApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProviderApi")
    }
}

fn upstream(detail: impl Into<String>) -> ApiError {
    ApiError::new(
        Code::UpstreamFailed,
        "Billing provider request failed",
        detail.into(),
    )
}

impl ProviderApi {
    pub fn new(policy: &Arc<OutboundPolicy>) -> ProviderApi {
        let client = Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(policy.https_connector(CONNECT));
        ProviderApi { client }
    }

    /// The path of one resource on the provider's API.
    fn path(
        provider: Provider,
        kind: Kind,
        id: &str,
        customer: Option<&str>,
    ) -> Result<String, ApiError> {
        let safe = |s: &str| {
            !s.is_empty()
                && s.len() <= 255
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
        };
        if !safe(id) {
            return Err(ApiError::invalid_parameter(
                "providerRef",
                "must be a provider id (letters, digits, `_`, `-`)",
            ));
        }
        Ok(match (provider, kind) {
            (Provider::Stripe, Kind::Payment) if id.starts_with("ch_") => {
                format!("/v1/charges/{id}")
            }
            (Provider::Stripe, Kind::Payment) => format!("/v1/payment_intents/{id}"),
            (Provider::Stripe, Kind::PaymentLink) => format!("/v1/payment_links/{id}"),
            (Provider::Stripe, Kind::Subscription) => format!("/v1/subscriptions/{id}"),
            (Provider::Stripe, Kind::Invoice) => format!("/v1/invoices/{id}"),
            (Provider::Mollie, Kind::Payment) => format!("/v2/payments/{id}"),
            (Provider::Mollie, Kind::PaymentLink) => format!("/v2/payment-links/{id}"),
            (Provider::Mollie, Kind::Invoice) => format!("/v2/invoices/{id}"),
            (Provider::Mollie, Kind::Subscription) => {
                let customer = customer.filter(|c| safe(c)).ok_or_else(|| {
                    ApiError::invalid_parameter(
                        "providerCustomerRef",
                        "Mollie subscriptions need the customer id (`cst_…`)",
                    )
                })?;
                format!("/v2/customers/{customer}/subscriptions/{id}")
            }
        })
    }

    /// Fetches one resource with the connection's API key: the JSON
    /// object, or 502 when the provider cannot be reached, answers non-2xx
    /// or sends something that is not a JSON object. A destination the
    /// outbound policy refuses is a 403.
    pub async fn fetch(
        &self,
        provider: Provider,
        base_url: &str,
        api_key: &str,
        kind: Kind,
        id: &str,
        customer: Option<&str>,
    ) -> Result<Value, ApiError> {
        let url = format!(
            "{}{}",
            base_url.trim_end_matches('/'),
            Self::path(provider, kind, id, customer)?
        );
        let request = http::Request::get(url.as_str())
            .header(http::header::AUTHORIZATION, format!("Bearer {api_key}"))
            .header(http::header::ACCEPT, "application/json")
            .body(Empty::new())
            .map_err(|_| upstream("the provider URL is not valid"))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                if let Some(refused) = crate::outbound::OutboundError::find(&e) {
                    if matches!(refused, crate::outbound::OutboundError::Refused { .. }) {
                        return ApiError::forbidden(format!("the provider API: {refused}"));
                    }
                    return upstream(format!("the provider API: {refused}"));
                }
                upstream("the provider API is unreachable")
            })?;
            let status = response.status();
            let body = crate::outbound::read_capped(response.into_body(), MAX_ANSWER)
                .await
                .map_err(|e| upstream(format!("the provider API: {e}")))?;
            if !status.is_success() {
                return Err(upstream(format!(
                    "the {} API answered {} for {} `{id}`",
                    provider.as_str(),
                    status.as_u16(),
                    kind.as_str()
                )));
            }
            let value: Value = serde_json::from_slice(&body)
                .map_err(|_| upstream("the provider API sent an answer that is not JSON"))?;
            if !value.is_object() {
                return Err(upstream(
                    "the provider API sent an answer that is not an object",
                ));
            }
            Ok(value)
        };
        tokio::time::timeout(EXCHANGE, exchange)
            .await
            .unwrap_or_else(|_| Err(upstream("the provider API did not answer in time")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, t: i64, body: &[u8]) -> String {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn stripe_signatures() {
        let body = br#"{"id":"evt_1"}"#;
        let header = sign("whsec_x", 1000, body);
        assert!(verify_stripe(&header, body, "whsec_x", 1100).is_ok());
        assert!(verify_stripe(&header, body, "whsec_y", 1100).is_err());
        assert!(verify_stripe(&header, b"{}", "whsec_x", 1100).is_err());
        assert!(verify_stripe(&header, body, "whsec_x", 1000 + 301).is_err());
        assert!(verify_stripe("v1=00", body, "whsec_x", 1000).is_err());
    }

    #[test]
    fn projections() {
        let d = project_stripe(&json!({"object": "payment_intent", "id": "pi_1",
            "amount": 1250, "currency": "eur", "status": "succeeded", "customer": "cus_1"}))
        .unwrap();
        assert_eq!(d.kind, Kind::Payment);
        assert_eq!(d.amount_minor, Some(1250));
        assert_eq!(d.currency.as_deref(), Some("EUR"));
        assert!(project_stripe(&json!({"object": "coupon", "id": "x"})).is_err());
        let m = project_mollie(&json!({"resource": "payment", "id": "tr_1",
            "amount": {"value": "10.50", "currency": "EUR"}, "status": "paid"}))
        .unwrap();
        assert_eq!(m.amount_minor, Some(1050));
        assert_eq!(decimal_minor("7"), Some(700));
        assert_eq!(decimal_minor("7.5"), Some(750));
        assert_eq!(decimal_minor("x"), None);
        assert_eq!(mollie_kind_of("tr_abc"), Some(Kind::Payment));
        assert_eq!(mollie_kind_of("zz_abc"), None);
    }
}
