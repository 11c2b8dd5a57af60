//! Response payload wrappers used by the generated response enums.

use crate::HttpResponse;
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

/// Marks an `extra` entry whose value is JSON text to serve as it is (see
/// `Json::with_raw_field`); no field name of a body starts with NUL.
const RAW: &str = "\u{0}raw:";

/// Splits the raw fields (name, JSON text) off the extra fields.
fn take_raw(extra: &mut Map<String, Value>) -> Vec<(String, String)> {
    if !extra.keys().any(|k| k.starts_with(RAW)) {
        return Vec::new();
    }
    let keys: Vec<String> = extra
        .keys()
        .filter(|k| k.starts_with(RAW))
        .cloned()
        .collect();
    keys.into_iter()
        .filter_map(|k| match extra.remove(&k) {
            Some(Value::String(json)) => Some((k[RAW.len()..].to_string(), json)),
            _ => None,
        })
        .collect()
}

impl<T> Json<T> {
    pub fn new(body: T) -> Self {
        Json {
            body,
            extra: Map::new(),
            headers: HeaderMap::new(),
        }
    }

    /// Serves `json` (text that is already valid JSON, e.g. rows Postgres
    /// aggregated, see `gateway::sql::JsonRows`) as the top-level field
    /// `name`, in place of whatever the typed body holds there (left empty
    /// by the caller): large results are then copied, never parsed into
    /// values and serialized again.
    pub fn with_raw_field(mut self, name: &str, json: String) -> Self {
        self.extra
            .insert(format!("{RAW}{name}"), Value::String(json));
        self
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
    pub fn into_value(mut self) -> Result<Json<Value>, serde_json::Error> {
        let raw = take_raw(&mut self.extra);
        let mut body = serde_json::to_value(&self.body)?;
        if let Value::Object(map) = &mut body {
            for (name, json) in raw {
                map.insert(name, serde_json::from_str(&json)?);
            }
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
    fn into_http(mut self, status: StatusCode) -> HttpResponse {
        let raw = take_raw(&mut self.extra);
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
        let mut bytes = match bytes {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "response serialization failed");
                return crate::ApiError::internal().into_http();
            }
        };
        for (name, json) in raw {
            match splice(&bytes, &name, &json) {
                Some(spliced) => bytes = spliced,
                None => {
                    tracing::error!(field = name, "raw field on a body that is not an object");
                    return crate::ApiError::internal().into_http();
                }
            }
        }
        build(status, Bytes::from(bytes), "application/json", self.headers)
    }
}

/// The serialized object `body` with the value of its top-level field
/// `name` replaced by `json` (the field is added when absent); `None` if
/// `body` is not one object.
fn splice(body: &[u8], name: &str, json: &str) -> Option<Vec<u8>> {
    // Compact serde output: a key is `"name":`. Strings are skipped whole,
    // so nothing inside a string can match or change the depth.
    let key = format!("\"{name}\":");
    let (mut depth, mut i) = (0usize, 0usize);
    let (mut value_start, mut span) = (None, None);
    while i < body.len() {
        match body[i] {
            b'"' => {
                if depth == 1
                    && span.is_none()
                    && value_start.is_none()
                    && body[i..].starts_with(key.as_bytes())
                {
                    value_start = Some(i + key.len());
                }
                i += 1;
                while *body.get(i)? != b'"' {
                    i += if body[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' => depth += 1,
            c @ (b'}' | b']' | b',') => {
                // A top-level `,` or the closing `}` ends the field's value.
                if depth == 1 && c != b']' {
                    if let Some(start) = value_start.take() {
                        span = Some((start, i));
                    }
                }
                if c != b',' {
                    depth = depth.checked_sub(1)?;
                }
            }
            _ => {}
        }
        i += 1;
    }
    if depth != 0 || body.first() != Some(&b'{') {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() + key.len() + json.len() + 1);
    match span {
        Some((start, end)) => {
            out.extend_from_slice(&body[..start]);
            out.extend_from_slice(json.as_bytes());
            out.extend_from_slice(&body[end..]);
        }
        None => {
            let last = body.len() - 1;
            out.extend_from_slice(&body[..last]);
            if last > 1 {
                out.push(b',');
            }
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(json.as_bytes());
            out.push(b'}');
        }
    }
    Some(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_fields_replace_or_extend_the_object() {
        let cases = [
            (
                r#"{"count":2,"data":[],"n":"\"data\":[]"}"#,
                r#"{"count":2,"data":[{"a":1}],"n":"\"data\":[]"}"#,
            ),
            (
                r#"{"data":[],"x":{"data":[]}}"#,
                r#"{"data":[{"a":1}],"x":{"data":[]}}"#,
            ),
            (
                r#"{"x":{"data":1},"data":{"y":[1,{"z":"}"}]}}"#,
                r#"{"x":{"data":1},"data":[{"a":1}]}"#,
            ),
            (
                r#"{"m":"a\\","data":null}"#,
                r#"{"m":"a\\","data":[{"a":1}]}"#,
            ),
            (r#"{"count":1}"#, r#"{"count":1,"data":[{"a":1}]}"#),
            ("{}", r#"{"data":[{"a":1}]}"#),
        ];
        for (body, want) in cases {
            let got = splice(body.as_bytes(), "data", r#"[{"a":1}]"#).unwrap();
            assert_eq!(String::from_utf8(got).unwrap(), want, "{body}");
        }
        assert!(splice(b"[]", "data", "[]").is_none());
        assert!(splice(br#"{"a":"x"#, "data", "[]").is_none());
    }

    #[test]
    fn raw_fields_reach_the_body_and_values() {
        #[derive(Serialize)]
        struct Out {
            count: Option<i64>,
            data: Vec<Map<String, Value>>,
        }
        let json = || {
            Json::new(Out {
                count: Some(1),
                data: Vec::new(),
            })
            .with_raw_field("data", r#"[{"a":"é"}]"#.into())
        };
        let response = json()
            .with_field("extra", Value::Bool(true))
            .into_http(StatusCode::OK);
        let body = response.into_body();
        let bytes = futures_body(body);
        assert_eq!(bytes, r#"{"count":1,"data":[{"a":"é"}],"extra":true}"#);
        let v = json().into_value().unwrap().body;
        assert_eq!(v["data"][0]["a"], "é");
    }

    fn futures_body(body: Full<Bytes>) -> String {
        use http_body_util::BodyExt;
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = rt.block_on(body.collect()).unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }
}
