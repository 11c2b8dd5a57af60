//! Webhook delivery: the `webhook` target kind of the outbox.
//!
//! One attempt is one JSON `POST` of the event to the webhook's URL through
//! the outbound policy (`src/outbound.rs`: the address is checked again at
//! connect, no redirects are followed), with the Standard Webhooks headers
//! `webhook-id` (the event id: the same on every retry), `webhook-timestamp`
//! (seconds) and `webhook-signature` (`v1,<base64 HMAC-SHA256 of
//! "{id}.{timestamp}.{body}">`; a `whsec_` secret is base64-decoded first,
//! any other secret is used as its UTF-8 bytes; no secret, no signature),
//! plus the webhook's own headers. Nothing of the request that caused the
//! event (its keys, headers) is forwarded. The whole attempt — connect,
//! send, answer, at most 64 KiB of body (`outbound::read_capped`) — runs
//! within the webhook's `timeout_ms`. A 2xx delivers; anything else is
//! retried until `max_attempts`, then the job is `failed`. Every attempt
//! is logged in `gateway_webhook_deliveries`.

use super::{BoxFuture, Deliverer, Delivery, Job};
use crate::catalog::webhooks::{self, Attempt, Webhook};
use crate::db::Pool;
use crate::domain::DomainError;
use crate::outbound::{OutboundError, OutboundPolicy};
use crate::secrets::Secrets;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most of a receiver's answer kept (and read).
pub const MAX_RESPONSE: usize = 64 << 10;
const CONNECT: Duration = Duration::from_secs(5);
const USER_AGENT: &str = concat!("athena-webhooks/", env!("CARGO_PKG_VERSION"));

type HttpsClient = Client<hyper_rustls::HttpsConnector<crate::outbound::Connector>, Full<Bytes>>;

pub struct Webhooks {
    catalog: Pool,
    secrets: Option<Secrets>,
    client: HttpsClient,
}

/// The Standard Webhooks signature of one message.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = match secret.strip_prefix("whsec_") {
        Some(rest) => b64
            .decode(rest)
            .unwrap_or_else(|_| rest.as_bytes().to_vec()),
        None => secret.as_bytes().to_vec(),
    };
    let mut mac =
        <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", b64.encode(mac.finalize().into_bytes()))
}

/// An attempt whose log row could not be written, as answered instead.
fn unlogged(a: &Attempt) -> Value {
    json!({"webhook_id": a.webhook_id, "event_id": a.event_id, "attempt": a.attempt,
           "status_code": a.status_code, "logged": false})
}

/// The outcome of one HTTP exchange.
struct Exchange {
    status_code: Option<i32>,
    error: Option<String>,
    response: Option<String>,
}

impl Webhooks {
    pub fn new(catalog: Pool, secrets: Option<Secrets>, policy: &Arc<OutboundPolicy>) -> Webhooks {
        let https = policy.https_connector(CONNECT);
        let client = Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Webhooks {
            catalog,
            secrets,
            client,
        }
    }

    /// Sends `event` to `hook` once and logs the attempt; the logged row.
    pub async fn attempt(
        &self,
        hook: &Webhook,
        secret: Option<&str>,
        event: &Value,
        attempt: i32,
        outbox_id: Option<uuid::Uuid>,
        test: bool,
    ) -> Result<(Value, bool), DomainError> {
        let (logged, ok) = self
            .send_once(hook, secret, event, attempt, outbox_id, test)
            .await?;
        match webhooks::record(&self.catalog, &logged).await {
            Ok(row) => Ok((row, ok)),
            // Delivered is delivered: a log that could not be written does
            // not send the event again.
            Err(e) if ok => {
                tracing::warn!(webhook = hook.id, event = %logged.event_id, error = %e,
                    "a delivered webhook attempt could not be logged");
                Ok((unlogged(&logged), true))
            }
            Err(e) => Err(e),
        }
    }

    /// Sends `event` to `hook` once: the attempt as it is to be logged,
    /// and whether the receiver took it (2xx in time).
    async fn send_once(
        &self,
        hook: &Webhook,
        secret: Option<&str>,
        event: &Value,
        attempt: i32,
        outbox_id: Option<uuid::Uuid>,
        test: bool,
    ) -> Result<(Attempt, bool), DomainError> {
        let event_id = event
            .get("event_id")
            .and_then(Value::as_str)
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
            .ok_or_else(|| DomainError::Internal("an outbox event has no event_id".into()))?;
        let started = Instant::now();
        let budget = Duration::from_millis(hook.timeout_ms.max(1) as u64);
        let exchange = match tokio::time::timeout(
            budget,
            self.exchange(hook, secret, event_id, event),
        )
        .await
        {
            Ok(x) => x,
            Err(_) => Exchange {
                status_code: None,
                error: Some(format!("no answer within {} ms", hook.timeout_ms)),
                response: None,
            },
        };
        let ok = exchange.error.is_none()
            && exchange
                .status_code
                .is_some_and(|c| (200..300).contains(&c));
        let error = exchange.error.or_else(|| {
            (!ok).then(|| {
                format!(
                    "the receiver answered {}",
                    exchange.status_code.unwrap_or(0)
                )
            })
        });
        let logged = Attempt {
            webhook_id: hook.id,
            outbox_id,
            event_id,
            route_key: event["route_key"].as_str().unwrap_or_default().to_string(),
            attempt,
            status_code: exchange.status_code,
            duration_ms: started.elapsed().as_millis().min(i32::MAX as u128) as i32,
            error: error.map(|e| e.replace('\0', "")),
            response: exchange.response,
            test,
        };
        Ok((logged, ok))
    }

    async fn exchange(
        &self,
        hook: &Webhook,
        secret: Option<&str>,
        event_id: uuid::Uuid,
        event: &Value,
    ) -> Exchange {
        let failed = |error: String| Exchange {
            status_code: None,
            error: Some(error),
            response: None,
        };
        let body = match serde_json::to_vec(event) {
            Ok(b) => b,
            Err(e) => return failed(format!("encoding the event: {e}")),
        };
        let id = event_id.to_string();
        let timestamp = chrono::Utc::now().timestamp();
        let mut request = http::Request::post(hook.url.as_str())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, USER_AGENT)
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string());
        if let Some(secret) = secret {
            request = request.header("webhook-signature", sign(secret, &id, timestamp, &body));
        }
        for (name, value) in &hook.headers {
            if let Some(v) = value.as_str() {
                request = request.header(name.as_str(), v);
            }
        }
        let request = match request.body(Full::new(Bytes::from(body))) {
            Ok(r) => r,
            Err(e) => return failed(format!("building the request: {e}")),
        };
        let response = match self.client.request(request).await {
            Ok(r) => r,
            Err(e) => {
                let why = match OutboundError::find(&e) {
                    Some(o) => o.to_string(),
                    None => format!("the request failed ({})", transport_kind(&e)),
                };
                return failed(why);
            }
        };
        let status = response.status().as_u16() as i32;
        let (text, error) =
            match crate::outbound::read_capped(response.into_body(), MAX_RESPONSE).await {
                Ok(bytes) => (Some(printable(&bytes)), None),
                // The status decides; an oversized answer is not kept.
                Err(e) if e.contains("larger than") => (None, None),
                Err(e) => (None, Some(e)),
            };
        let text = text.map(|t| truncate(t, MAX_RESPONSE));
        Exchange {
            status_code: Some(status),
            error,
            response: text,
        }
    }

    /// `POST /admin/webhooks/{id}/test`: a sample event delivered now
    /// (outside the outbox), logged as a test attempt; the attempt.
    pub async fn test(&self, id: i64, data: Option<Value>) -> Result<Option<Value>, DomainError> {
        let Some((hook, secret)) =
            webhooks::for_delivery(&self.catalog, self.secrets.as_ref(), id).await?
        else {
            return Ok(None);
        };
        let event = super::Event::now(
            hook.route_key.clone(),
            hook.client_name.clone(),
            hook.table_name.clone(),
            data.unwrap_or_else(|| json!({"test": true, "rows": [], "affected": 0})),
        )
        .to_json();
        let (attempt, delivered) = self
            .attempt(&hook, secret.as_deref(), &event, 1, None, true)
            .await?;
        Ok(Some(
            json!({"delivered": delivered, "attempt": attempt, "event": event}),
        ))
    }
}

/// A short, address-free description of a transport failure.
fn transport_kind(e: &hyper_util::client::legacy::Error) -> &'static str {
    if e.is_connect() {
        "connection failed"
    } else {
        "the connection broke"
    }
}

/// A receiver's answer as stored: invalid UTF-8 replaced, NUL dropped
/// (Postgres `text` refuses it).
fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace('\0', "")
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

impl Deliverer for Webhooks {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn deliver<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Delivery> {
        Box::pin(async move {
            match self.lookup(&job.target_id).await {
                Ok((hook, secret)) => self.send(job, &hook, secret.as_deref()).await,
                Err(refusal) => refusal.of(job),
            }
        })
    }

    /// A batch is one webhook's: looked up (and its secret opened) once,
    /// the attempts sent together.
    fn deliver_batch<'a>(&'a self, jobs: &'a [Job]) -> BoxFuture<'a, Vec<Delivery>> {
        Box::pin(async move {
            let Some(first) = jobs.first() else {
                return Vec::new();
            };
            if jobs.iter().any(|j| j.target_id != first.target_id) {
                return super::bounded(jobs.iter().map(|j| self.deliver(j))).await;
            }
            match self.lookup(&first.target_id).await {
                Ok((hook, secret)) => self.send_batch(jobs, &hook, secret.as_deref()).await,
                Err(refusal) => jobs.iter().map(|j| refusal.of(j)).collect(),
            }
        })
    }
}

/// Why a webhook could not be looked up for a delivery.
enum Refusal {
    /// For good (bad id, deleted, disabled, undecryptable).
    Failed(String),
    /// The catalog did not answer: again later, within the attempts.
    Unavailable(String),
}

impl Refusal {
    fn of(&self, job: &Job) -> Delivery {
        match self {
            Refusal::Failed(e) => Delivery::Failed(e.clone()),
            Refusal::Unavailable(e) if job.lease.attempts >= webhooks::MAX_ATTEMPTS => {
                Delivery::Failed(e.clone())
            }
            Refusal::Unavailable(e) => Delivery::Retry(e.clone()),
        }
    }
}

impl Webhooks {
    /// The webhook a job goes to, enabled, with its secret opened.
    async fn lookup(&self, target_id: &str) -> Result<(Webhook, Option<String>), Refusal> {
        let Ok(id) = target_id.parse::<i64>() else {
            return Err(Refusal::Failed(format!(
                "`{target_id}` is not a webhook id"
            )));
        };
        let found = webhooks::for_delivery(&self.catalog, self.secrets.as_ref(), id).await;
        let (hook, secret) = match found {
            Ok(Some(found)) => found,
            Ok(None) => return Err(Refusal::Failed("the webhook was deleted".into())),
            Err(e @ DomainError::Internal(_)) => return Err(Refusal::Failed(e.to_string())),
            Err(e) => return Err(Refusal::Unavailable(e.to_string())),
        };
        if !hook.enabled {
            return Err(Refusal::Failed("the webhook was disabled".into()));
        }
        Ok((hook, secret))
    }

    /// One attempt of each job to `hook`, sent together (at most
    /// [`super::CONCURRENCY`] at a time) and logged in one
    /// statement; the outcomes in the jobs' order.
    async fn send_batch(
        &self,
        jobs: &[Job],
        hook: &Webhook,
        secret: Option<&str>,
    ) -> Vec<Delivery> {
        let sent = super::bounded(jobs.iter().map(|j| {
            self.send_once(
                hook,
                secret,
                &j.event,
                j.lease.attempts,
                Some(j.lease.id),
                false,
            )
        }))
        .await;
        let attempts: Vec<Attempt> = sent
            .iter()
            .filter_map(|r| r.as_ref().ok().map(|(a, _)| a.clone()))
            .collect();
        let logged = webhooks::record_many(&self.catalog, &attempts).await;
        if let Err(e) = &logged {
            tracing::warn!(webhook = hook.id, error = %e, "webhook attempts could not be logged");
        }
        let mut rows = match logged {
            Ok(rows) => rows.into_iter(),
            Err(_) => Vec::new().into_iter(),
        };
        let logged_ok = !attempts.is_empty() && rows.len() == attempts.len();
        jobs.iter()
            .zip(sent)
            .map(|(job, sent)| {
                let last = job.lease.attempts >= hook.max_attempts;
                match sent {
                    Err(e) if last => Delivery::Failed(e.to_string()),
                    Err(e) => Delivery::Retry(e.to_string()),
                    Ok((a, ok)) => {
                        let row = match logged_ok {
                            true => rows.next().unwrap_or_else(|| unlogged(&a)),
                            false => unlogged(&a),
                        };
                        // Delivered is delivered, logged or not.
                        if ok {
                            return Delivery::Delivered(row);
                        }
                        let error = a.error.unwrap_or_else(|| "not delivered".into());
                        if last {
                            Delivery::Failed(error)
                        } else {
                            Delivery::Retry(error)
                        }
                    }
                }
            })
            .collect()
    }

    /// One attempt of `job` to `hook`, logged; its outcome.
    async fn send(&self, job: &Job, hook: &Webhook, secret: Option<&str>) -> Delivery {
        let attempt = self
            .attempt(
                hook,
                secret,
                &job.event,
                job.lease.attempts,
                Some(job.lease.id),
                false,
            )
            .await;
        match attempt {
            Ok((row, true)) => Delivery::Delivered(row),
            Ok((row, false)) => {
                let error = row["error"].as_str().unwrap_or("not delivered").to_string();
                if job.lease.attempts >= hook.max_attempts {
                    Delivery::Failed(error)
                } else {
                    Delivery::Retry(error)
                }
            }
            // The log could not be written: try again later, within
            // the webhook's attempts.
            Err(e) if job.lease.attempts >= hook.max_attempts => Delivery::Failed(e.to_string()),
            Err(e) => Delivery::Retry(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_signature() {
        // The Standard Webhooks reference vector.
        let sig = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn truncates_on_a_char_boundary() {
        assert_eq!(truncate("héllo".into(), 2), "h");
        assert_eq!(truncate("abc".into(), 10), "abc");
    }
}
