//! The D1 REST client (Cloudflare's `/query` API on a configurable base
//! URL), through the outbound policy.

use crate::config::D1Config;
use crate::domain::DomainError;
use crate::outbound::{OutboundError, OutboundPolicy};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Largest D1 answer read (security.md §11: outbound answers are capped).
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// Everything but unreserved characters is escaped in a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `dbName`: 1-64 characters, letters, digits, `_` and `-`, starting with a
/// letter or digit.
pub fn check_db_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err("dbName must be 1-64 characters: letters, digits, `_` and `-`, starting with a letter or digit".into())
    }
}

/// A D1 database id (a UUID in Cloudflare's API): 1-64 letters, digits and `-`.
pub fn check_database_id(id: &str) -> Result<(), String> {
    if (1..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        Ok(())
    } else {
        Err("a D1 database id must be 1-64 letters, digits and `-`".into())
    }
}

/// D1's answer for one converted statement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// `meta.changes`.
    pub rows_affected: Option<i64>,
    /// `meta.duration` (milliseconds, rounded).
    pub duration_ms: Option<i64>,
}

/// Cloudflare's D1 REST API:
/// `POST {base}/accounts/{account}/d1/database/{id}/query` with a bearer
/// token and `{"sql", "params"}`, over `https://` (Cloudflare itself:
/// rustls with the webpki roots) or `http://` (a local fake, a proxy).
/// Every connection goes through the
/// outbound policy (`src/outbound.rs`): the API host is resolved once per
/// connection and refused when it is loopback, private, link-local or
/// metadata unless `ATHENA_OUTBOUND_ALLOW` lists it; redirects are not
/// followed and answers are capped at [`MAX_ANSWER_BYTES`].
pub struct D1Client {
    config: D1Config,
    timeout: Duration,
    http: Client<hyper_rustls::HttpsConnector<crate::outbound::Connector>, Full<Bytes>>,
}

/// Why a batch did not run.
#[derive(Debug)]
pub struct D1Error(pub String);

impl D1Client {
    pub fn new(config: D1Config, timeout: Duration, outbound: Arc<OutboundPolicy>) -> D1Client {
        let http = Client::builder(TokioExecutor::new()).build(outbound.https_connector(timeout));
        D1Client {
            config,
            timeout,
            http,
        }
    }

    /// The D1 database id of a request's `dbName` for the calling client:
    /// its `client:dbName=id` entry in `ATHENA_D1_DATABASES`. A `dbName`
    /// outside the grammar is a 400; one not mapped to this client (not
    /// mapped at all, or another client's) is a 404 with the same text
    /// either way, so a client learns nothing about others' databases.
    pub fn database_id(&self, client: &str, db_name: &str) -> Result<&str, DomainError> {
        check_db_name(db_name)
            .map_err(|why| DomainError::invalid_field("body field dbName", why))?;
        self.config
            .databases
            .iter()
            .find(|d| d.client == client && d.name == db_name)
            .map(|d| d.id.as_str())
            .ok_or_else(|| DomainError::not_found("D1 database of this client", db_name))
    }

    /// Runs `sql` (one or more statements) as one `/query` request and
    /// returns one outcome per statement D1 reported.
    pub async fn query(&self, database_id: &str, sql: &str) -> Result<Vec<Outcome>, D1Error> {
        let base = self.config.api_url.trim_end_matches('/');
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(D1Error(format!(
                "ATHENA_D1_API_URL must be an https:// (or http://) URL, not {base}"
            )));
        }
        let url = format!(
            "{base}/accounts/{}/d1/database/{}/query",
            utf8_percent_encode(&self.config.account_id, SEGMENT),
            utf8_percent_encode(database_id, SEGMENT)
        );
        let body = serde_json::json!({"sql": sql, "params": []}).to_string();
        let req = hyper::Request::post(&url)
            .header(
                hyper::header::AUTHORIZATION,
                format!("Bearer {}", self.config.api_token),
            )
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| D1Error(format!("building the D1 request: {e}")))?;
        let call = async {
            let resp = self.http.request(req).await.map_err(|e| {
                D1Error(match OutboundError::find(&e) {
                    Some(refused @ OutboundError::Refused { .. }) => {
                        format!("the D1 API host is not a permitted destination: {refused}")
                    }
                    Some(other) => format!("D1 API unreachable: {other}"),
                    None => format!("D1 API unreachable: {e}"),
                })
            })?;
            let status = resp.status();
            let bytes = crate::outbound::read_capped(resp.into_body(), MAX_ANSWER_BYTES)
                .await
                .map_err(|e| D1Error(format!("D1 API answer: {e}")))?;
            Ok::<_, D1Error>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| D1Error(format!("D1 API did not answer within {:?}", self.timeout)))??;
        let v: Value = serde_json::from_slice(&bytes).map_err(|_| {
            D1Error(format!(
                "D1 API answered HTTP {status} with a non-JSON body"
            ))
        })?;
        if !status.is_success() || v["success"] != Value::Bool(true) {
            let errors: Vec<String> = v["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| match (e["code"].as_i64(), e["message"].as_str()) {
                    (Some(c), Some(m)) => format!("{m} (code {c})"),
                    (None, Some(m)) => m.to_string(),
                    _ => e.to_string(),
                })
                .collect();
            let detail = if errors.is_empty() {
                "no error detail".to_string()
            } else {
                errors.join("; ")
            };
            return Err(D1Error(format!("D1 API answered HTTP {status}: {detail}")));
        }
        Ok(v["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| Outcome {
                rows_affected: r["meta"]["changes"].as_i64(),
                duration_ms: r["meta"]["duration"].as_f64().map(|d| d.round() as i64),
            })
            .collect())
    }
}
