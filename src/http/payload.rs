//! Response payload wrappers used by the generated response enums.

use super::HttpResponse;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use http_body_util::Full;
use serde::Serialize;
use serde_json::{Map, Value};

pub trait Payload {
    fn into_http(self, status: StatusCode) -> HttpResponse;
}

/// A JSON body of the documented type, plus fields beyond the contract's
/// schema where the official SDK relies on them (the superset rule of
/// openapi/CHANGES.md), plus response headers.
#[derive(Debug)]
pub struct Json<T> {
    pub body: T,
    pub extra: Map<String, Value>,
    pub headers: HeaderMap,
}

impl<T> Json<T> {
    pub fn new(body: T) -> Self {
        Json {
            body,
            extra: Map::new(),
            headers: HeaderMap::new(),
        }
    }

    /// Adds a top-level field the documented schema does not list.
    pub fn with_field(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_string(), value);
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }
}

impl<T: Serialize> Json<T> {
    /// The same answer as untyped JSON (extra fields merged), for routes
    /// that forward to another operation and answer what it answered.
    pub fn into_value(self) -> Result<Json<Value>, serde_json::Error> {
        let mut body = serde_json::to_value(&self.body)?;
        if let Value::Object(map) = &mut body {
            map.extend(self.extra);
        }
        Ok(Json {
            body,
            extra: Map::new(),
            headers: self.headers,
        })
    }
}

impl<T> From<T> for Json<T> {
    fn from(body: T) -> Self {
        Json::new(body)
    }
}

impl<T: Serialize> Payload for Json<T> {
    fn into_http(self, status: StatusCode) -> HttpResponse {
        let bytes = if self.extra.is_empty() {
            serde_json::to_vec(&self.body)
        } else {
            match serde_json::to_value(&self.body) {
                Ok(Value::Object(mut map)) => {
                    map.extend(self.extra);
                    serde_json::to_vec(&Value::Object(map))
                }
                Ok(other) => serde_json::to_vec(&other),
                Err(e) => Err(e),
            }
        };
        let bytes = match bytes {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "response serialization failed");
                return super::ApiError::internal().into_http();
            }
        };
        build(status, Bytes::from(bytes), "application/json", self.headers)
    }
}

/// A non-JSON body (text, YAML, HTML, gzip, octet-stream).
#[derive(Debug)]
pub struct Binary {
    pub content_type: &'static str,
    pub body: Bytes,
    pub headers: HeaderMap,
}

impl Binary {
    pub fn new(content_type: &'static str, body: impl Into<Bytes>) -> Self {
        Binary {
            content_type,
            body: body.into(),
            headers: HeaderMap::new(),
        }
    }
}

impl Payload for Binary {
    fn into_http(self, status: StatusCode) -> HttpResponse {
        build(status, self.body, self.content_type, self.headers)
    }
}

/// No body (204, redirects, body-less successes).
#[derive(Debug, Default)]
pub struct NoBody {
    pub headers: HeaderMap,
}

impl NoBody {
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }
}

impl Payload for NoBody {
    fn into_http(self, status: StatusCode) -> HttpResponse {
        let mut response = http::Response::new(Full::new(Bytes::new()));
        *response.status_mut() = status;
        *response.headers_mut() = self.headers;
        response
    }
}

fn build(
    status: StatusCode,
    body: Bytes,
    content_type: &'static str,
    headers: HeaderMap,
) -> HttpResponse {
    let mut response = http::Response::new(Full::new(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
