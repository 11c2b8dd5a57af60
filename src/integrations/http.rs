//! The one outbound JSON HTTP client of the integrations (issue 21): Neon,
//! Railway, Render, Typesense, Supabase and the cluster mirrors.
//!
//! Every connection goes through [`OutboundPolicy::https_connector`]
//! (security.md §11): the host is resolved once and checked (loopback,
//! private, link-local and metadata addresses refused unless
//! `ATHENA_OUTBOUND_ALLOW` lists them), hyper-util's client follows no
//! redirects (a 3xx is an answer like any other), connect and total time
//! are capped and the answer is read with [`read_capped`]. Upstream bodies
//! are never echoed whole: callers take one short message out of them
//! ([`upstream_message`]).

use crate::outbound::{read_capped, OutboundError, OutboundPolicy};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

type Https = hyper_rustls::HttpsConnector<crate::outbound::Connector>;

/// Longest wait for a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a whole exchange unless the caller asks for less.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest answer read.
pub const MAX_ANSWER: usize = 4 * 1024 * 1024;

/// Why an exchange gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The outbound policy refused the destination (nothing was opened).
    Refused(String),
    /// The URL is not usable (scheme, host, credentials).
    BadUrl(String),
    /// Unresolved, unreachable, timed out, or the answer was unreadable.
    Unreachable(String),
    /// The token / API key cannot be sent (not a valid header value).
    BadCredential(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Refused(m)
            | Failure::BadUrl(m)
            | Failure::Unreachable(m)
            | Failure::BadCredential(m) => f.write_str(m),
        }
    }
}

/// An answer: status, body (JSON when it parses, else `Value::Null`), the
/// raw bytes and how long it took.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub json: Value,
    pub bytes: Bytes,
    pub elapsed: Duration,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// One request.
pub struct Call<'a> {
    pub method: http::Method,
    pub url: String,
    /// `Authorization`-style headers (never logged).
    pub headers: Vec<(&'a str, String)>,
    pub body: Option<(String, Bytes)>,
    pub timeout: Duration,
    /// Largest answer read (at most [`MAX_ANSWER`]).
    pub cap: usize,
}

impl<'a> Call<'a> {
    pub fn new(method: http::Method, url: impl Into<String>) -> Call<'a> {
        Call {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: None,
            timeout: TOTAL_TIMEOUT,
            cap: MAX_ANSWER,
        }
    }

    pub fn get(url: impl Into<String>) -> Call<'a> {
        Call::new(http::Method::GET, url)
    }

    pub fn header(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    pub fn json(mut self, body: &Value) -> Self {
        self.body = Some((
            "application/json".into(),
            Bytes::from(serde_json::to_vec(body).unwrap_or_default()),
        ));
        self
    }

    pub fn raw(mut self, content_type: &str, body: Bytes) -> Self {
        self.body = Some((content_type.into(), body));
        self
    }

    /// Reads at most `cap` bytes of the answer (a larger one is a failure).
    pub fn cap(mut self, cap: usize) -> Self {
        self.cap = cap.min(MAX_ANSWER);
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.min(TOTAL_TIMEOUT);
        self
    }
}

/// The shared client.
pub struct JsonHttp {
    client: Client<Https, Full<Bytes>>,
    policy: Arc<OutboundPolicy>,
}

impl std::fmt::Debug for JsonHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JsonHttp")
    }
}

impl JsonHttp {
    pub fn new(policy: &Arc<OutboundPolicy>) -> JsonHttp {
        let client = Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(policy.https_connector(CONNECT_TIMEOUT));
        JsonHttp {
            client,
            policy: policy.clone(),
        }
    }

    /// A base URL from a body or the environment: http(s), a host, no
    /// credentials, an IP literal the policy allows (names are checked at
    /// connect time). Returned without a trailing `/`.
    pub fn check_base_url(&self, raw: &str) -> Result<String, Failure> {
        let url = self
            .policy
            .check_stored_url(raw)
            .map_err(|why| match why.contains("not allowed") {
                true => Failure::Refused(format!(
                    "{why}: the gateway does not connect to {} unless ATHENA_OUTBOUND_ALLOW lists them",
                    crate::outbound::REFUSED_RANGES
                )),
                false => Failure::BadUrl(why),
            })?;
        let parsed = url::Url::parse(&url).map_err(|e| Failure::BadUrl(e.to_string()))?;
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(Failure::BadUrl(
                "must not carry a query or a fragment".into(),
            ));
        }
        Ok(url.trim_end_matches('/').to_string())
    }

    /// Sends `call`: the answer whatever its status, or why there was none.
    pub async fn send(&self, call: Call<'_>) -> Result<Answer, Failure> {
        // A credential a header cannot carry (CR, LF, other controls) is
        // the caller's token, not the URL: said so, never echoed.
        if call
            .headers
            .iter()
            .any(|(_, v)| http::HeaderValue::from_str(v).is_err())
        {
            return Err(Failure::BadCredential(
                "contains characters an HTTP header cannot carry (CR, LF or other controls)".into(),
            ));
        }
        let mut builder = http::Request::builder()
            .method(call.method)
            .uri(call.url.as_str())
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, "athena-gateway");
        for (name, value) in &call.headers {
            builder = builder.header(*name, value);
        }
        let body = match call.body {
            Some((content_type, bytes)) => {
                builder = builder.header(http::header::CONTENT_TYPE, content_type);
                bytes
            }
            None => Bytes::new(),
        };
        let request = builder
            .body(Full::new(body))
            .map_err(|_| Failure::BadUrl("the URL is not valid".into()))?;
        let started = Instant::now();
        let cap = call.cap;
        let exchange =
            async {
                let response = self.client.request(request).await.map_err(|e| {
                    match OutboundError::find(&e) {
                        Some(OutboundError::Refused { .. }) => Failure::Refused(
                            OutboundError::find(&e)
                                .map(ToString::to_string)
                                .unwrap_or_default(),
                        ),
                        Some(OutboundError::BadUrl(why)) => Failure::BadUrl(why.clone()),
                        Some(other) => Failure::Unreachable(other.to_string()),
                        None => Failure::Unreachable("the connection failed".into()),
                    }
                })?;
                let status = response.status().as_u16();
                let bytes = read_capped(response.into_body(), cap)
                    .await
                    .map_err(Failure::Unreachable)?;
                Ok::<_, Failure>((status, bytes))
            };
        let (status, bytes) = tokio::time::timeout(call.timeout, exchange)
            .await
            .map_err(|_| Failure::Unreachable("no answer in time".into()))??;
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            json,
            bytes,
            elapsed: started.elapsed(),
        })
    }
}

/// One short, printable message out of an upstream error body (`message`,
/// `error`, `error.message`, `errors[0].message`), at most 300 characters;
/// never the whole body.
pub fn upstream_message(answer: &Answer) -> String {
    let j = &answer.json;
    let candidates = [
        j.get("message"),
        j.get("error").filter(|e| e.is_string()),
        j.get("error").and_then(|e| e.get("message")),
        j.get("errors")
            .and_then(|e| e.get(0))
            .and_then(|e| e.get("message")),
    ];
    let text = candidates
        .into_iter()
        .flatten()
        .find_map(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("HTTP {}", answer.status));
    text.chars().filter(|c| !c.is_control()).take(300).collect()
}
