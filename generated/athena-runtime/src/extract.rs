//! Typed extraction of path, query, header, cookie and body inputs. Every
//! failure is a 400 envelope that names the field, produced before any
//! handler runs.

use crate::{ApiError, Code};
use bytes::Bytes;
use http::HeaderMap;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::future::Future;

/// What the generated dispatch needs from the server's per-request context
/// (the server's `RequestCx`; this crate does not know it).
pub trait RequestContext: Send + Sync + 'static {
    /// What the operation's method receives once credentials are checked.
    type Cx: Send + 'static;
    /// The request's headers, where header and cookie parameters are read.
    fn headers(&self) -> &HeaderMap;
    /// The operation's credential checks, run before any parameter is parsed.
    fn authorize(&self) -> impl Future<Output = Result<Self::Cx, ApiError>> + Send;
}

/// One request as the dispatch receives it.
pub struct Inputs<C> {
    pub cx: C,
    pub path_params: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
    pub body: Bytes,
}

impl<C: RequestContext> Inputs<C> {
    /// Checks the operation's credentials; see `RequestContext::authorize`.
    pub async fn authorize(&self) -> Result<C::Cx, ApiError> {
        self.cx.authorize().await
    }

    /// What a generated extractor reads.
    pub fn fields(&self) -> Fields<'_> {
        Fields {
            path_params: &self.path_params,
            query: &self.query,
            headers: self.cx.headers(),
            body: &self.body,
        }
    }
}

/// Everything a generated extractor reads from one request. Not generic
/// over the context, so the extractors compile once, in `athena-api`.
pub struct Fields<'a> {
    pub path_params: &'a [(String, String)],
    pub query: &'a [(String, String)],
    pub headers: &'a HeaderMap,
    pub body: &'a Bytes,
}

/// Parsing a single textual parameter value.
pub trait FromParam: Sized {
    fn from_param(name: &str, raw: &str) -> Result<Self, ApiError>;
}

impl FromParam for String {
    fn from_param(_: &str, raw: &str) -> Result<Self, ApiError> {
        Ok(raw.to_string())
    }
}

impl FromParam for i64 {
    fn from_param(name: &str, raw: &str) -> Result<Self, ApiError> {
        raw.trim()
            .parse()
            .map_err(|_| ApiError::invalid_parameter(name, "expected an integer"))
    }
}

impl FromParam for f64 {
    fn from_param(name: &str, raw: &str) -> Result<Self, ApiError> {
        match raw.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(ApiError::invalid_parameter(name, "expected a number")),
        }
    }
}

impl FromParam for bool {
    fn from_param(name: &str, raw: &str) -> Result<Self, ApiError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(ApiError::invalid_parameter(name, "expected true or false")),
        }
    }
}

impl FromParam for uuid::Uuid {
    fn from_param(name: &str, raw: &str) -> Result<Self, ApiError> {
        uuid::Uuid::parse_str(raw.trim())
            .map_err(|_| ApiError::invalid_parameter(name, "expected a UUID"))
    }
}

impl FromParam for Vec<String> {
    fn from_param(_: &str, raw: &str) -> Result<Self, ApiError> {
        Ok(raw
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect())
    }
}

/// Enum-constrained parameters.
pub fn one_of(name: &str, value: &str, allowed: &[&str]) -> Result<(), ApiError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(ApiError::invalid_parameter(
            name,
            format!("expected one of {}", allowed.join(", ")),
        ))
    }
}

impl Fields<'_> {
    pub fn path_param<T: FromParam>(&self, name: &str) -> Result<T, ApiError> {
        let raw = self
            .path_params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| ApiError::missing_parameter("path parameter", name))?;
        T::from_param(name, raw)
    }

    pub fn query<T: FromParam>(&self, name: &str) -> Result<Option<T>, ApiError> {
        match self.query.iter().find(|(k, _)| k == name) {
            Some((_, v)) => T::from_param(name, v).map(Some),
            None => Ok(None),
        }
    }

    pub fn required_query<T: FromParam>(&self, name: &str) -> Result<T, ApiError> {
        self.query(name)?
            .ok_or_else(|| ApiError::missing_parameter("query parameter", name))
    }

    pub fn header<T: FromParam>(&self, name: &str) -> Result<Option<T>, ApiError> {
        match self.headers.get(name) {
            Some(v) => {
                let s = v.to_str().map_err(|_| {
                    ApiError::invalid_parameter(name, "header is not visible ASCII")
                })?;
                T::from_param(name, s).map(Some)
            }
            None => Ok(None),
        }
    }

    pub fn required_header<T: FromParam>(&self, name: &str) -> Result<T, ApiError> {
        self.header(name)?
            .ok_or_else(|| ApiError::missing_parameter("header", name))
    }

    pub fn cookie<T: FromParam>(&self, name: &str) -> Result<Option<T>, ApiError> {
        for header in self.headers.get_all(http::header::COOKIE) {
            let Ok(s) = header.to_str() else { continue };
            for pair in s.split(';') {
                if let Some((k, v)) = pair.trim().split_once('=') {
                    if k == name {
                        return T::from_param(name, v).map(Some);
                    }
                }
            }
        }
        Ok(None)
    }

    pub fn required_cookie<T: FromParam>(&self, name: &str) -> Result<T, ApiError> {
        self.cookie(name)?
            .ok_or_else(|| ApiError::missing_parameter("cookie", name))
    }

    /// An optional JSON body; `aliases` maps camelCase spellings the SDK sends
    /// onto the snake_case fields of the generated model.
    pub fn json<T: DeserializeOwned>(
        &self,
        aliases: &[(&str, &str)],
    ) -> Result<Option<T>, ApiError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        if let Some(typed) = direct_json(self.body, aliases) {
            return Ok(Some(typed));
        }
        let value: Value = serde_json::from_slice(self.body)
            .map_err(|e| ApiError::new(Code::InvalidJson, "Invalid JSON body", e.to_string()))?;
        typed_json(value, aliases).map(Some)
    }

    pub fn required_json<T: DeserializeOwned>(
        &self,
        aliases: &[(&str, &str)],
    ) -> Result<T, ApiError> {
        self.json(aliases)?.ok_or_else(|| {
            ApiError::new(
                Code::BadRequest,
                "Missing request body",
                "a JSON request body is required",
            )
        })
    }

    pub fn bytes(&self) -> Option<Bytes> {
        (!self.body.is_empty()).then(|| self.body.clone())
    }

    pub fn required_bytes(&self) -> Result<Bytes, ApiError> {
        self.bytes().ok_or_else(|| {
            ApiError::new(
                Code::BadRequest,
                "Missing request body",
                "a request body is required",
            )
        })
    }
}

/// The model straight from the body's bytes, skipping the intermediate
/// `Value`, when that is sure to give what `typed_json` gives: no alias
/// spelling appears as a key and no escape (which could spell one) does.
/// `None` otherwise and on any error, which `typed_json` then reports with
/// its field path.
fn direct_json<T: DeserializeOwned>(body: &[u8], aliases: &[(&str, &str)]) -> Option<T> {
    if body.contains(&b'\\') {
        return None;
    }
    let text = std::str::from_utf8(body).ok()?;
    if aliases
        .iter()
        .any(|(camel, _)| text.contains(&format!("\"{camel}\"")))
    {
        return None;
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let typed = T::deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(typed)
}

/// A JSON value as a generated model, with camelCase aliases moved onto
/// their snake_case fields; the error names the offending field
/// (`limit: invalid type …`).
pub fn typed_json<T: DeserializeOwned>(
    mut value: Value,
    aliases: &[(&str, &str)],
) -> Result<T, ApiError> {
    if let Value::Object(map) = &mut value {
        for (camel, snake) in aliases {
            if !map.contains_key(*snake) {
                if let Some(v) = map.remove(*camel) {
                    map.insert(snake.to_string(), v);
                }
            }
        }
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let detail = if path == "." {
            e.inner().to_string()
        } else {
            format!("{path}: {}", e.inner())
        };
        ApiError::new(Code::InvalidJson, "Invalid request body", detail)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Body {
        sort_by: Option<String>,
        #[serde(default)]
        limit: Option<i64>,
    }

    const ALIASES: &[(&str, &str)] = &[("sortBy", "sort_by")];

    fn both(body: &str) -> (Option<Body>, Result<Body, String>) {
        let slow = serde_json::from_str(body)
            .map_err(|e| e.to_string())
            .and_then(|v| typed_json(v, ALIASES).map_err(|e| e.detail));
        (direct_json(body.as_bytes(), ALIASES), slow)
    }

    #[test]
    fn direct_json_agrees_with_the_two_step_path_or_steps_aside() {
        let (fast, slow) = both(r#"{"sort_by":"id","limit":3}"#);
        assert_eq!(fast.unwrap(), slow.unwrap());
        // Aliases and escapes take the two-step path.
        for body in [
            r#"{"sortBy":"id"}"#,
            r#"{"sort_by":"i\u0064"}"#,
            r#"{"sort\u0042y":"x"}"#,
        ] {
            let (fast, slow) = both(body);
            assert!(fast.is_none(), "{body}");
            assert!(slow.is_ok(), "{body}");
        }
        assert_eq!(
            both(r#"{"sortBy":"id"}"#).1.unwrap().sort_by.as_deref(),
            Some("id")
        );
        // Errors are always the two-step path's.
        for body in [r#"{"limit":"x"}"#, r#"{"limit":1} x"#, "[1"] {
            assert!(both(body).0.is_none(), "{body}");
        }
    }
}
