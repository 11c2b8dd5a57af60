//! A minimal HTTP/1 client over hyper-util's legacy `Client`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::time::Duration;

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// One request, relative to the base URL.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: String,
    /// Concrete path (templates already filled in).
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
}

impl Request {
    pub fn new(method: &str, path: &str) -> Request {
        Request {
            method: method.to_ascii_uppercase(),
            path: path.to_string(),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn without_header(mut self, name: &str) -> Request {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    pub fn query(mut self, name: &str, value: &str) -> Request {
        self.query.push((name.to_string(), value.to_string()));
        self
    }

    pub fn json(mut self, body: Value) -> Request {
        self.body = Some(body);
        self
    }

    pub fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// Path plus encoded query string.
    pub fn path_and_query(&self) -> String {
        if self.query.is_empty() {
            return self.path.clone();
        }
        let q: Vec<String> = self
            .query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        format!("{}?{}", self.path, q.join("&"))
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters and `,`.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b',') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn content_type(&self) -> Option<&str> {
        self.header("content-type")
    }

    pub fn is_json(&self) -> bool {
        self.content_type().is_some_and(is_json_media_type)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Result<Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("body is not valid JSON: {e}"))
    }

    /// The start of the body, for failure messages.
    pub fn snippet(&self) -> String {
        let t = self.text();
        let t = t.trim();
        if t.chars().count() > 200 {
            format!("{}…", t.chars().take(200).collect::<String>())
        } else {
            t.to_string()
        }
    }
}

pub fn is_json_media_type(ct: &str) -> bool {
    let ct = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    ct == "application/json" || ct.ends_with("+json")
}

#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
    base_url: String,
}

impl HttpClient {
    pub fn new(base_url: &str) -> HttpClient {
        let client = Client::builder(TokioExecutor::new()).build_http();
        HttpClient {
            client,
            base_url: base_url.trim_end_matches('/').to_string(),
        }
    }

    pub async fn send(&self, req: &Request) -> Result<Response, String> {
        match tokio::time::timeout(TIMEOUT, self.send_inner(req)).await {
            Ok(r) => r,
            Err(_) => Err(format!("timed out after {}s", TIMEOUT.as_secs())),
        }
    }

    async fn send_inner(&self, req: &Request) -> Result<Response, String> {
        // An absolute URL taken from an earlier answer (a presigned S3
        // URL a setup step uploads through) is sent as it is.
        let uri = if req.path.starts_with("http://") || req.path.starts_with("https://") {
            req.path.clone()
        } else {
            format!("{}{}", self.base_url, req.path_and_query())
        };
        let method = http::Method::from_bytes(req.method.as_bytes())
            .map_err(|e| format!("bad method {}: {e}", req.method))?;
        let mut builder = http::Request::builder().method(method).uri(&uri);
        for (name, value) in &req.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let body = match &req.body {
            Some(v) => {
                if !req.has_header("content-type") {
                    builder = builder.header("content-type", "application/json");
                }
                Bytes::from(serde_json::to_vec(v).map_err(|e| e.to_string())?)
            }
            None => Bytes::new(),
        };
        let request = builder
            .body(Full::new(body))
            .map_err(|e| format!("building request {uri}: {e}"))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading body: {e}"))?
            .to_bytes();
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_encoded() {
        let r = Request::new("get", "/rest/v1/t")
            .query("id", "eq.2")
            .query("select", "a,b c");
        assert_eq!(r.path_and_query(), "/rest/v1/t?id=eq.2&select=a,b%20c");
        assert_eq!(r.method, "GET");
    }

    #[test]
    fn json_media_types() {
        assert!(is_json_media_type("application/json; charset=utf-8"));
        assert!(is_json_media_type("application/problem+json"));
        assert!(!is_json_media_type("text/plain"));
    }
}
