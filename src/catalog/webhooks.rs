//! Gateway webhooks (`athena_webhooks`, migration 0009; issue 15): the
//! record behind `/admin/webhooks*`, its validation, and the delivery log
//! (`gateway_webhook_deliveries`). The contract leaves the body free-form;
//! it is defined in `openapi/CHANGES.md` ("Events and webhooks"):
//! `{name, client_name, route_key, table_name?, url, secret?, headers?,
//! enabled, timeout_ms ≤ 10000, max_attempts ≤ 10}`. The secret is sealed
//! (`src/secrets.rs`) and never returned; header values that look like
//! credentials are shown as `***`.

use crate::catalog::clients;
use crate::db::Pool;
use crate::domain::DomainError;
use crate::events::{self, Subscription};
use crate::outbound::{OutboundError, OutboundPolicy};
use crate::secrets::Secrets;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

pub const DEFAULT_TIMEOUT_MS: i32 = 5_000;
pub const MAX_TIMEOUT_MS: i32 = 10_000;
pub const MIN_TIMEOUT_MS: i32 = 100;
pub const DEFAULT_MAX_ATTEMPTS: i32 = 5;
pub const MAX_ATTEMPTS: i32 = 10;
/// Most custom headers on one webhook.
const MAX_HEADERS: usize = 20;
/// Headers the gateway sets itself (or that would change the framing).
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
    "expect",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-athena-key",
    "apikey",
    "x-api-key",
];

/// A webhook as stored (the secret stays sealed).
#[derive(Debug, Clone)]
pub struct Webhook {
    pub id: i64,
    pub name: String,
    pub client_name: String,
    pub route_key: String,
    pub table_name: Option<String>,
    pub url: String,
    pub has_secret: bool,
    pub headers: Map<String, Value>,
    pub enabled: bool,
    pub timeout_ms: i32,
    pub max_attempts: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, name, client_name, route_key, table_name, url, secret IS NOT NULL, \
    headers, enabled, timeout_ms, max_attempts, created_at, updated_at";

fn from_row(r: &tokio_postgres::Row) -> Webhook {
    Webhook {
        id: r.get(0),
        name: r.get(1),
        client_name: r.get(2),
        route_key: r.get(3),
        table_name: r.get(4),
        url: r.get(5),
        has_secret: r.get(6),
        headers: match r.get::<_, Value>(7) {
            Value::Object(m) => m,
            _ => Map::new(),
        },
        enabled: r.get(8),
        timeout_ms: r.get(9),
        max_attempts: r.get(10),
        created_at: r.get(11),
        updated_at: r.get(12),
    }
}

impl Webhook {
    /// The record as answered: no secret, credential-like header values
    /// masked.
    pub fn to_json(&self) -> Value {
        let headers: Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| {
                let shown = if sensitive_header(k) {
                    json!("***")
                } else {
                    v.clone()
                };
                (k.clone(), shown)
            })
            .collect();
        json!({
            "id": self.id,
            "name": self.name,
            "client_name": self.client_name,
            "route_key": self.route_key,
            "table_name": self.table_name,
            "url": self.url,
            "has_secret": self.has_secret,
            "headers": headers,
            "enabled": self.enabled,
            "timeout_ms": self.timeout_ms,
            "max_attempts": self.max_attempts,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }
}

fn sensitive_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "authorization",
        "cookie",
        "secret",
        "token",
        "key",
        "password",
        "signature",
    ]
    .iter()
    .any(|s| n.contains(s))
}

/// The secret's sealing context: bound to the row, so a sealed value moved
/// to another webhook does not open.
fn secret_context(id: i64) -> String {
    format!("webhook:{id}:secret")
}

/// What a POST or PATCH sets. `None` = not given (PATCH keeps the value).
#[derive(Debug, Default)]
pub struct Changes {
    pub id: Option<i64>,
    pub name: Option<String>,
    pub client_name: Option<String>,
    pub route_key: Option<String>,
    /// `Some(None)`: cleared.
    pub table_name: Option<Option<String>>,
    pub url: Option<String>,
    /// `Some(None)`: removed.
    pub secret: Option<Option<String>>,
    pub headers: Option<Map<String, Value>>,
    pub enabled: Option<bool>,
    pub timeout_ms: Option<i32>,
    pub max_attempts: Option<i32>,
}

/// The fields a body may carry, with their camelCase twins.
const FIELDS: &[(&str, &str)] = &[
    ("id", "id"),
    ("name", "name"),
    ("client_name", "clientName"),
    ("route_key", "routeKey"),
    ("table_name", "tableName"),
    ("url", "url"),
    ("secret", "secret"),
    ("headers", "headers"),
    ("enabled", "enabled"),
    ("timeout_ms", "timeoutMs"),
    ("max_attempts", "maxAttempts"),
];

/// Read-only fields of the record a client may echo back.
const IGNORED: &[&str] = &["has_secret", "created_at", "updated_at"];

impl Changes {
    /// Parses a body (`admin_key`: a header value containing it is refused,
    /// the admin key is never forwarded).
    pub fn parse(
        body: &Map<String, Value>,
        admin_key: Option<&str>,
    ) -> Result<Changes, DomainError> {
        for key in body.keys() {
            let known =
                FIELDS.iter().any(|(s, c)| key == s || key == c) || IGNORED.contains(&key.as_str());
            if !known {
                return Err(DomainError::invalid_field(
                    key.as_str(),
                    "is not a webhook field (name, client_name, route_key, table_name, url, secret, headers, enabled, timeout_ms, max_attempts)",
                ));
            }
        }
        let get = |field: &str| -> Option<&Value> {
            let (snake, camel) = FIELDS.iter().find(|(s, _)| *s == field).expect("listed");
            body.get(*snake).or_else(|| body.get(*camel))
        };
        let text = |field: &str, max: usize| -> Result<Option<String>, DomainError> {
            match get(field) {
                None => Ok(None),
                Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= max => {
                    Ok(Some(s.trim().to_string()))
                }
                Some(_) => Err(DomainError::invalid_field(
                    field,
                    format!("must be a non-empty string of at most {max} characters"),
                )),
            }
        };
        let int = |field: &str, min: i64, max: i64| -> Result<Option<i32>, DomainError> {
            match get(field) {
                None => Ok(None),
                Some(v) => match v.as_i64() {
                    Some(n) if (min..=max).contains(&n) => Ok(Some(n as i32)),
                    _ => Err(DomainError::invalid_field(
                        field,
                        format!("must be an integer from {min} to {max}"),
                    )),
                },
            }
        };
        let mut c = Changes {
            id: match get("id") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_i64().filter(|n| *n > 0).ok_or_else(|| {
                    DomainError::invalid_field("id", "must be a positive integer")
                })?),
            },
            name: text("name", 200)?,
            client_name: text("client_name", 200)?,
            route_key: text("route_key", 100)?,
            url: text("url", 2048)?,
            timeout_ms: int("timeout_ms", MIN_TIMEOUT_MS.into(), MAX_TIMEOUT_MS.into())?,
            max_attempts: int("max_attempts", 1, MAX_ATTEMPTS.into())?,
            ..Changes::default()
        };
        if let Some(key) = &c.route_key {
            if !events::known(key) {
                return Err(DomainError::invalid_field(
                    "route_key",
                    format!("`{key}` is not an event (GET /admin/webhooks/events lists them)"),
                ));
            }
        }
        c.table_name = match get("table_name") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::String(s)) if s.trim().is_empty() => Some(None),
            Some(Value::String(s)) if table_name_ok(s.trim()) => Some(Some(s.trim().to_string())),
            Some(_) => {
                return Err(DomainError::invalid_field(
                    "table_name",
                    "must be a table name (`table` or `schema.table`, letters, digits and `_`)",
                ))
            }
        };
        c.secret = match get("secret") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::String(s)) => {
                check_secret(s)?;
                Some(Some(s.clone()))
            }
            Some(_) => return Err(DomainError::invalid_field("secret", "must be a string")),
        };
        c.headers = match get("headers") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(check_headers(m, admin_key)?),
            Some(_) => {
                return Err(DomainError::invalid_field(
                    "headers",
                    "must be an object of header names to string values",
                ))
            }
        };
        c.enabled = match get("enabled") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err(DomainError::invalid_field("enabled", "must be a boolean")),
        };
        Ok(c)
    }
}

fn table_name_ok(s: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && p.len() <= 63
            && p.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    };
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() <= 2 && parts.iter().all(|p| part(p))
}

/// A secret: `whsec_<base64>` (Standard Webhooks: the key is the decoded
/// bytes, 16–64 of them) or any other text of 16–512 characters (the key
/// is its UTF-8 bytes).
pub fn check_secret(s: &str) -> Result<(), DomainError> {
    if let Some(rest) = s.strip_prefix("whsec_") {
        use base64::Engine;
        let key = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| DomainError::invalid_field("secret", "after `whsec_` must be base64"))?;
        if !(16..=64).contains(&key.len()) {
            return Err(DomainError::invalid_field(
                "secret",
                "after `whsec_` must decode to 16-64 bytes",
            ));
        }
        return Ok(());
    }
    if !(16..=512).contains(&s.chars().count()) {
        return Err(DomainError::invalid_field(
            "secret",
            "must be `whsec_<base64>` or 16-512 characters",
        ));
    }
    Ok(())
}

fn check_headers(
    m: &Map<String, Value>,
    admin_key: Option<&str>,
) -> Result<Map<String, Value>, DomainError> {
    if m.len() > MAX_HEADERS {
        return Err(DomainError::invalid_field(
            "headers",
            format!("at most {MAX_HEADERS} headers"),
        ));
    }
    let mut out = Map::new();
    for (name, value) in m {
        let lower = name.to_ascii_lowercase();
        if http::HeaderName::from_bytes(lower.as_bytes()).is_err() {
            return Err(DomainError::invalid_field(
                "headers",
                format!("`{name}` is not a header name"),
            ));
        }
        if RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with("x-athena-") {
            return Err(DomainError::invalid_field(
                "headers",
                format!("`{name}` is set by the gateway and cannot be configured"),
            ));
        }
        let Some(text) = value.as_str() else {
            return Err(DomainError::invalid_field(
                "headers",
                format!("the value of `{name}` must be a string"),
            ));
        };
        if text.len() > 4096 || http::HeaderValue::from_str(text).is_err() {
            return Err(DomainError::invalid_field(
                "headers",
                format!("the value of `{name}` is not a valid header value"),
            ));
        }
        if admin_key.is_some_and(|k| !k.is_empty() && text.contains(k)) {
            return Err(DomainError::invalid_field(
                "headers",
                "a header must not carry the gateway's admin key",
            ));
        }
        out.insert(lower, Value::String(text.to_string()));
    }
    Ok(out)
}

/// A URL the gateway will POST to: http(s), a host, no credentials, and
/// (security.md §11) an address the outbound policy allows — checked now
/// on the literal or the name's current addresses, and again at connect.
pub async fn check_url(policy: &OutboundPolicy, raw: &str) -> Result<String, DomainError> {
    let url = policy
        .check_stored_url(raw)
        .map_err(|e| DomainError::invalid_field("url", e))?;
    let parsed = url::Url::parse(&url).map_err(|e| DomainError::invalid_field("url", e))?;
    if parsed.fragment().is_some() {
        return Err(DomainError::invalid_field(
            "url",
            "must not carry a fragment",
        ));
    }
    let host = parsed
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = parsed.port_or_known_default().unwrap_or(443);
    match policy.resolve(&host, port).await {
        Err(e @ OutboundError::Refused { .. }) | Err(e @ OutboundError::BadUrl(_)) => {
            Err(DomainError::invalid_field("url", e))
        }
        // Not resolvable now: checked again when connecting.
        _ => Ok(url),
    }
}

/// The stored fields after applying `c` to `old` (or defaults).
struct Row {
    name: String,
    client_name: String,
    route_key: String,
    table_name: Option<String>,
    url: String,
    headers: Value,
    enabled: bool,
    timeout_ms: i32,
    max_attempts: i32,
}

fn merged(c: &Changes, old: Option<&Webhook>) -> Result<Row, DomainError> {
    let required = |v: &Option<String>, was: Option<&String>, field: &str| {
        v.clone()
            .or_else(|| was.cloned())
            .ok_or_else(|| DomainError::invalid_field(field, "is required"))
    };
    Ok(Row {
        name: required(&c.name, old.map(|o| &o.name), "name")?,
        client_name: required(&c.client_name, old.map(|o| &o.client_name), "client_name")?,
        route_key: required(&c.route_key, old.map(|o| &o.route_key), "route_key")?,
        url: required(&c.url, old.map(|o| &o.url), "url")?,
        table_name: match &c.table_name {
            Some(t) => t.clone(),
            None => old.and_then(|o| o.table_name.clone()),
        },
        headers: Value::Object(
            c.headers
                .clone()
                .or_else(|| old.map(|o| o.headers.clone()))
                .unwrap_or_default(),
        ),
        enabled: c.enabled.or(old.map(|o| o.enabled)).unwrap_or(true),
        timeout_ms: c
            .timeout_ms
            .or(old.map(|o| o.timeout_ms))
            .unwrap_or(DEFAULT_TIMEOUT_MS),
        max_attempts: c
            .max_attempts
            .or(old.map(|o| o.max_attempts))
            .unwrap_or(DEFAULT_MAX_ATTEMPTS),
    })
}

/// Creates (no `id`) or replaces (`id` of an existing webhook; unknown →
/// `None`) a webhook. A secret needs `secrets` (else 503).
pub async fn save(
    pool: &Pool,
    secrets: Option<&Secrets>,
    c: &Changes,
    existing_id: Option<i64>,
) -> Result<Option<Webhook>, DomainError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let old = match existing_id {
        Some(id) => {
            let sql = format!("SELECT {COLUMNS} FROM athena_webhooks WHERE id = $1 FOR UPDATE");
            match tx.query_opt(&sql, &[&id]).await? {
                Some(r) => Some(from_row(&r)),
                None => return Ok(None),
            }
        }
        None => None,
    };
    let row = merged(c, old.as_ref())?;
    if c.client_name.is_some() && clients::get(pool, &row.client_name).await?.is_none() {
        return Err(DomainError::invalid_field(
            "client_name",
            format!("`{}` is not a registered client", row.client_name),
        ));
    }
    let id: i64 = match old {
        Some(o) => {
            tx.execute(
                "UPDATE athena_webhooks
                    SET name = $2, client_name = $3, route_key = $4, table_name = $5, url = $6,
                        headers = $7, enabled = $8, timeout_ms = $9, max_attempts = $10,
                        updated_at = now()
                  WHERE id = $1",
                &[
                    &o.id,
                    &row.name,
                    &row.client_name,
                    &row.route_key,
                    &row.table_name,
                    &row.url,
                    &row.headers,
                    &row.enabled,
                    &row.timeout_ms,
                    &row.max_attempts,
                ],
            )
            .await?;
            o.id
        }
        None => tx
            .query_one(
                "INSERT INTO athena_webhooks
                     (name, client_name, route_key, table_name, url, headers, enabled,
                      timeout_ms, max_attempts)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 RETURNING id",
                &[
                    &row.name,
                    &row.client_name,
                    &row.route_key,
                    &row.table_name,
                    &row.url,
                    &row.headers,
                    &row.enabled,
                    &row.timeout_ms,
                    &row.max_attempts,
                ],
            )
            .await?
            .get(0),
    };
    match &c.secret {
        Some(Some(plain)) => {
            let secrets = secrets.ok_or_else(|| {
                DomainError::ServiceUnavailable(
                    "storing a webhook secret needs ATHENA_SECRET_KEY".into(),
                )
            })?;
            let sealed = secrets.seal(&secret_context(id), plain)?;
            tx.execute(
                "UPDATE athena_webhooks SET secret = $2 WHERE id = $1",
                &[&id, &sealed],
            )
            .await?;
        }
        Some(None) => {
            tx.execute(
                "UPDATE athena_webhooks SET secret = NULL WHERE id = $1",
                &[&id],
            )
            .await?;
        }
        None => {}
    }
    let sql = format!("SELECT {COLUMNS} FROM athena_webhooks WHERE id = $1");
    let saved = from_row(&tx.query_one(&sql, &[&id]).await?);
    tx.commit().await?;
    Ok(Some(saved))
}

pub async fn get(pool: &Pool, id: i64) -> Result<Option<Webhook>, DomainError> {
    let conn = pool.get().await?;
    let sql = format!("SELECT {COLUMNS} FROM athena_webhooks WHERE id = $1");
    Ok(conn.query_opt(&sql, &[&id]).await?.map(|r| from_row(&r)))
}

/// The webhook with its secret opened, for a delivery.
pub async fn for_delivery(
    pool: &Pool,
    secrets: Option<&Secrets>,
    id: i64,
) -> Result<Option<(Webhook, Option<String>)>, DomainError> {
    let conn = pool.get().await?;
    let sql = format!("SELECT {COLUMNS}, secret FROM athena_webhooks WHERE id = $1");
    let Some(r) = conn.query_opt(&sql, &[&id]).await? else {
        return Ok(None);
    };
    let hook = from_row(&r);
    let secret = match r.get::<_, Option<Vec<u8>>>(13) {
        None => None,
        Some(sealed) => {
            let secrets = secrets.ok_or_else(|| {
                DomainError::ServiceUnavailable(
                    "the webhook's secret cannot be opened without ATHENA_SECRET_KEY".into(),
                )
            })?;
            Some(secrets.open(&secret_context(id), &sealed)?)
        }
    };
    Ok(Some((hook, secret)))
}

/// A page of webhooks (optionally of one client) and the total.
pub async fn list(
    pool: &Pool,
    client: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Webhook>, i64), DomainError> {
    let conn = pool.get().await?;
    let sql = format!(
        "SELECT {COLUMNS}, count(*) OVER () FROM athena_webhooks
          WHERE ($1::text IS NULL OR client_name = $1)
          ORDER BY id LIMIT $2 OFFSET $3"
    );
    let rows = conn.query(&sql, &[&client, &limit, &offset]).await?;
    let total = match rows.first() {
        Some(r) => r.get::<_, i64>(13),
        None => conn
            .query_one(
                "SELECT count(*) FROM athena_webhooks WHERE ($1::text IS NULL OR client_name = $1)",
                &[&client],
            )
            .await?
            .get(0),
    };
    Ok((rows.iter().map(from_row).collect(), total))
}

/// Deletes a webhook (its delivery log goes with it; its queued jobs fail
/// when claimed). The deleted record, `None` when unknown.
pub async fn delete(pool: &Pool, id: i64) -> Result<Option<Webhook>, DomainError> {
    let conn = pool.get().await?;
    let sql = format!("DELETE FROM athena_webhooks WHERE id = $1 RETURNING {COLUMNS}");
    Ok(conn.query_opt(&sql, &[&id]).await?.map(|r| from_row(&r)))
}

/// The enabled webhooks as event subscriptions (`events::Source`).
pub struct WebhookSource;

impl events::Source for WebhookSource {
    fn load<'a>(
        &'a self,
        catalog: &'a Pool,
    ) -> events::BoxFuture<'a, Result<Vec<Subscription>, DomainError>> {
        Box::pin(async move {
            let conn = catalog.get().await?;
            let rows = conn
                .query(
                    "SELECT id, client_name, route_key, table_name FROM athena_webhooks WHERE enabled",
                    &[],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| Subscription {
                    kind: "webhook",
                    id: r.get::<_, i64>(0).to_string(),
                    client_name: r.get(1),
                    route_key: r.get(2),
                    table_name: r.get(3),
                })
                .collect())
        })
    }
}

/// One delivery attempt as logged.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub webhook_id: i64,
    pub outbox_id: Option<uuid::Uuid>,
    pub event_id: uuid::Uuid,
    pub route_key: String,
    pub attempt: i32,
    pub status_code: Option<i32>,
    pub duration_ms: i32,
    pub error: Option<String>,
    pub response: Option<String>,
    pub test: bool,
}

/// Logs an attempt; its row as answered.
pub async fn record(pool: &Pool, a: &Attempt) -> Result<Value, DomainError> {
    let conn = pool.get().await?;
    let r = conn
        .query_one(
            &format!(
                "INSERT INTO gateway_webhook_deliveries
                     (webhook_id, outbox_id, event_id, route_key, attempt, status_code,
                      duration_ms, error, response, test)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 RETURNING {DELIVERY}"
            ),
            &[
                &a.webhook_id,
                &a.outbox_id,
                &a.event_id,
                &a.route_key,
                &a.attempt,
                &a.status_code,
                &a.duration_ms,
                &a.error,
                &a.response,
                &a.test,
            ],
        )
        .await?;
    Ok(delivery(&r))
}

/// Logs several attempts in one statement; their rows as answered, in the
/// order given.
pub async fn record_many(pool: &Pool, attempts: &[Attempt]) -> Result<Vec<Value>, DomainError> {
    if attempts.is_empty() {
        return Ok(Vec::new());
    }
    let col = |f: fn(&Attempt) -> Option<String>| attempts.iter().map(f).collect::<Vec<_>>();
    let conn = pool.get().await?;
    let rows = conn
        .query(
            &format!(
                "INSERT INTO gateway_webhook_deliveries
                     (webhook_id, outbox_id, event_id, route_key, attempt, status_code,
                      duration_ms, error, response, test)
                 SELECT webhook_id, outbox_id, event_id, route_key, attempt, status_code,
                        duration_ms, error, response, test
                   FROM unnest($1::bigint[], $2::uuid[], $3::uuid[], $4::text[], $5::int[],
                               $6::int[], $7::int[], $8::text[], $9::text[], $10::bool[])
                        WITH ORDINALITY AS u(webhook_id, outbox_id, event_id, route_key, attempt,
                                             status_code, duration_ms, error, response, test, n)
                  ORDER BY n
                 RETURNING {DELIVERY}"
            ),
            &[
                &attempts.iter().map(|a| a.webhook_id).collect::<Vec<_>>(),
                &attempts.iter().map(|a| a.outbox_id).collect::<Vec<_>>(),
                &attempts.iter().map(|a| a.event_id).collect::<Vec<_>>(),
                &attempts
                    .iter()
                    .map(|a| a.route_key.clone())
                    .collect::<Vec<_>>(),
                &attempts.iter().map(|a| a.attempt).collect::<Vec<_>>(),
                &attempts.iter().map(|a| a.status_code).collect::<Vec<_>>(),
                &attempts.iter().map(|a| a.duration_ms).collect::<Vec<_>>(),
                &col(|a| a.error.clone()),
                &col(|a| a.response.clone()),
                &attempts.iter().map(|a| a.test).collect::<Vec<_>>(),
            ],
        )
        .await?;
    // RETURNING follows the insert order in practice; matched by the
    // outbox id (unique per attempt in a batch) to be sure.
    let mut by_outbox: std::collections::HashMap<Option<uuid::Uuid>, Value> = rows
        .iter()
        .map(|r| (r.get::<_, Option<uuid::Uuid>>(2), delivery(r)))
        .collect();
    Ok(attempts
        .iter()
        .filter_map(|a| by_outbox.remove(&a.outbox_id))
        .collect())
}

const DELIVERY: &str = "id, webhook_id, outbox_id, event_id, route_key, attempt, status_code, \
    duration_ms, error, response, test, created_at";

fn delivery(r: &tokio_postgres::Row) -> Value {
    json!({
        "id": r.get::<_, i64>(0),
        "webhook_id": r.get::<_, i64>(1),
        "outbox_id": r.get::<_, Option<uuid::Uuid>>(2),
        "event_id": r.get::<_, uuid::Uuid>(3),
        "route_key": r.get::<_, String>(4),
        "attempt": r.get::<_, i32>(5),
        "status_code": r.get::<_, Option<i32>>(6),
        "duration_ms": r.get::<_, i32>(7),
        "error": r.get::<_, Option<String>>(8),
        "response": r.get::<_, Option<String>>(9),
        "test": r.get::<_, bool>(10),
        "created_at": r.get::<_, DateTime<Utc>>(11),
    })
}

/// A page of a webhook's attempts, newest first, and the total.
pub async fn deliveries(
    pool: &Pool,
    webhook_id: i64,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Value>, i64), DomainError> {
    let conn = pool.get().await?;
    let rows = conn
        .query(
            &format!(
                "SELECT {DELIVERY} FROM gateway_webhook_deliveries WHERE webhook_id = $1
                  ORDER BY id DESC LIMIT $2 OFFSET $3"
            ),
            &[&webhook_id, &limit, &offset],
        )
        .await?;
    let total: i64 = conn
        .query_one(
            "SELECT count(*) FROM gateway_webhook_deliveries WHERE webhook_id = $1",
            &[&webhook_id],
        )
        .await?
        .get(0);
    Ok((rows.iter().map(delivery).collect(), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn parses_a_full_body_and_camel_case_twins() {
        let c = Changes::parse(
            &body(json!({
                "name": "n", "clientName": "c", "route_key": "gateway.insert",
                "table_name": "public.items", "url": "https://example.com/h",
                "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "headers": {"X-Team": "a"},
                "enabled": false, "timeoutMs": 2000, "max_attempts": 3
            })),
            None,
        )
        .unwrap();
        assert_eq!(c.client_name.as_deref(), Some("c"));
        assert_eq!(c.timeout_ms, Some(2000));
        assert_eq!(c.headers.unwrap()["x-team"], "a");
        assert_eq!(c.table_name, Some(Some("public.items".into())));
    }

    #[test]
    fn refuses_bad_fields() {
        for bad in [
            json!({"route_key": "nope"}),
            json!({"timeout_ms": 10001}),
            json!({"timeout_ms": 0}),
            json!({"max_attempts": 11}),
            json!({"secret": "short"}),
            json!({"secret": "whsec_%%%"}),
            json!({"headers": {"Host": "x"}}),
            json!({"headers": {"webhook-signature": "x"}}),
            json!({"headers": {"X-Athena-Client": "x"}}),
            json!({"headers": {"x-a": 1}}),
            json!({"headers": {"x-a": "admin-key-value"}}),
            json!({"table_name": "a;drop"}),
            json!({"unknown": 1}),
            json!({"enabled": "yes"}),
        ] {
            assert!(
                Changes::parse(&body(bad.clone()), Some("admin-key-value")).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn masks_credential_headers() {
        let mut headers = Map::new();
        headers.insert("authorization".into(), json!("Bearer x"));
        headers.insert("x-team".into(), json!("a"));
        let w = Webhook {
            id: 1,
            name: "n".into(),
            client_name: "c".into(),
            route_key: "gateway.insert".into(),
            table_name: None,
            url: "https://example.com".into(),
            has_secret: true,
            headers,
            enabled: true,
            timeout_ms: 1000,
            max_attempts: 1,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        let v = w.to_json();
        assert_eq!(v["headers"]["authorization"], "***");
        assert_eq!(v["headers"]["x-team"], "a");
        assert!(v.get("secret").is_none());
    }
}
