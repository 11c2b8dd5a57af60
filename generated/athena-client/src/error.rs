//! The gateway's standard error envelope, recovered from any [`Error`].

use crate::Error;
use serde::{Deserialize, Serialize};

/// The body Athena sends with every error status:
/// `{"status": "error", "message": …, "error": …}` plus, when the failure
/// maps to the shared error registry, `code`, `error_number` and `docs_url`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    /// Always `"error"` on an error envelope.
    #[serde(default)]
    pub status: String,
    /// Human-readable summary.
    #[serde(default)]
    pub message: String,
    /// Error detail.
    #[serde(default)]
    pub error: String,
    /// Machine-readable Athena error code (`not_implemented`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Stable Athena error number from the shared registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_number: Option<i64>,
    /// Documentation URL for `error_number`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docs_url: Option<String>,
}

impl ErrorEnvelope {
    /// Parses a response body as an envelope; `None` unless it is a JSON
    /// object with at least one of `status`, `message` or `error`.
    pub fn from_body(body: &[u8]) -> Option<ErrorEnvelope> {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        Self::from_value(value)
    }

    /// Like [`ErrorEnvelope::from_body`], for an already parsed value (such
    /// as a generated error type serialized back to JSON).
    pub fn from_value(value: serde_json::Value) -> Option<ErrorEnvelope> {
        let obj = value.as_object()?;
        if !["status", "message", "error"]
            .iter()
            .any(|k| obj.contains_key(*k))
        {
            return None;
        }
        serde_json::from_value(value).ok()
    }
}

/// Any failed call, reduced to what callers usually branch on: the HTTP
/// status (when a response arrived) and the error envelope (when the body
/// was one), with a one-line description of everything else.
#[derive(Debug)]
pub struct ApiError {
    /// The response status; `None` when no response arrived (connection,
    /// timeout, invalid request) or the body of a documented status did not
    /// parse.
    pub status: Option<reqwest::StatusCode>,
    /// The error envelope, when the response body was one.
    pub envelope: Option<ErrorEnvelope>,
    /// What went wrong, for logs (`Display` of the original error).
    pub detail: String,
}

impl ApiError {
    /// Converts a generated call's error. Async because an undocumented
    /// status ([`Error::UnexpectedResponse`]) still has its body to read.
    pub async fn from_progenitor<E: Serialize + std::fmt::Debug>(err: Error<E>) -> ApiError {
        let status = err.status();
        let detail = err.to_string();
        let envelope = match err {
            Error::ErrorResponse(rv) => serde_json::to_value(rv.into_inner())
                .ok()
                .and_then(ErrorEnvelope::from_value),
            Error::InvalidResponsePayload(bytes, _) => ErrorEnvelope::from_body(&bytes),
            Error::UnexpectedResponse(response) => match response.bytes().await {
                Ok(bytes) => ErrorEnvelope::from_body(&bytes),
                Err(_) => None,
            },
            _ => None,
        };
        ApiError {
            status,
            envelope,
            detail,
        }
    }

    /// The envelope's `code`, if any.
    pub fn code(&self) -> Option<&str> {
        self.envelope.as_ref()?.code.as_deref()
    }

    /// The envelope's `message`, else the description of the failure.
    pub fn message(&self) -> &str {
        match &self.envelope {
            Some(env) if !env.message.is_empty() => &env.message,
            _ => &self.detail,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(status) => write!(f, "{status}: {}", self.message())?,
            None => f.write_str(self.message())?,
        }
        if let Some(env) = &self.envelope {
            if !env.error.is_empty() && env.error != env.message {
                write!(f, " ({})", env.error)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_parses_with_optional_fields() {
        let env = ErrorEnvelope::from_body(
            br#"{"status":"error","message":"Not found","error":"no table","code":"table_not_found","error_number":4041,"docs_url":"https://x/4041","extra":1}"#,
        )
        .unwrap();
        assert_eq!(env.code.as_deref(), Some("table_not_found"));
        assert_eq!(env.error_number, Some(4041));
        assert!(ErrorEnvelope::from_body(b"{\"data\":[]}").is_none());
        assert!(ErrorEnvelope::from_body(b"<html>").is_none());
    }

    #[tokio::test]
    async fn generated_error_types_convert() {
        let generated = crate::types::DefaultServerError5xx {
            code: Some("not_implemented".into()),
            docs_url: None,
            error: "later".into(),
            error_number: None,
            message: "Not implemented".into(),
            status: "error".into(),
        };
        let rv = crate::ResponseValue::new(
            generated,
            reqwest::StatusCode::NOT_IMPLEMENTED,
            Default::default(),
        );
        let e = ApiError::from_progenitor(Error::ErrorResponse(rv)).await;
        assert_eq!(e.status, Some(reqwest::StatusCode::NOT_IMPLEMENTED));
        assert_eq!(e.code(), Some("not_implemented"));
        assert_eq!(
            e.to_string(),
            "501 Not Implemented: Not implemented (later)"
        );
    }
}
