//! The one error type of the HTTP layer and the only code that turns an
//! error into a status and the standard envelope
//! (`status`, `message`, `error`, optional `code`, `error_number`, `docs_url`).

use super::HttpResponse;
use crate::api::operations::Operation;
use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use http_body_util::Full;
use serde::{Deserialize, Serialize};

pub type ApiResult<T> = Result<T, ApiError>;

/// Machine-readable error codes: one registry, each with a stable number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BadRequest,
    InvalidJson,
    MissingParameter,
    InvalidParameter,
    MissingClientHeader,
    Unauthorized,
    Forbidden,
    NotFound,
    RouteNotFound,
    ClientNotFound,
    ClientFrozen,
    TableNotFound,
    FunctionNotFound,
    ColumnNotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    RequestTimeout,
    RateLimited,
    NotImplemented,
    DatabaseUnavailable,
    ServiceUnavailable,
    Timeout,
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BadRequest => "bad_request",
            Code::InvalidJson => "invalid_json",
            Code::MissingParameter => "missing_parameter",
            Code::InvalidParameter => "invalid_parameter",
            Code::MissingClientHeader => "missing_client_header",
            Code::Unauthorized => "unauthorized",
            Code::Forbidden => "forbidden",
            Code::NotFound => "not_found",
            Code::RouteNotFound => "route_not_found",
            Code::ClientNotFound => "client_not_found",
            Code::ClientFrozen => "client_frozen",
            Code::TableNotFound => "table_not_found",
            Code::FunctionNotFound => "function_not_found",
            Code::ColumnNotFound => "column_not_found",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::Conflict => "conflict",
            Code::PayloadTooLarge => "payload_too_large",
            Code::RequestTimeout => "request_timeout",
            Code::RateLimited => "rate_limited",
            Code::NotImplemented => "not_implemented",
            Code::DatabaseUnavailable => "database_unavailable",
            Code::ServiceUnavailable => "service_unavailable",
            Code::Timeout => "timeout",
            Code::Internal => "internal_error",
        }
    }

    /// Stable numbers: the hundreds follow the HTTP status family.
    pub fn number(self) -> i32 {
        match self {
            Code::BadRequest => 4000,
            Code::InvalidJson => 4001,
            Code::MissingParameter => 4002,
            Code::InvalidParameter => 4003,
            Code::MissingClientHeader => 4004,
            Code::Unauthorized => 4010,
            Code::Forbidden => 4030,
            Code::ClientFrozen => 4031,
            Code::NotFound => 4040,
            Code::RouteNotFound => 4041,
            Code::ClientNotFound => 4042,
            Code::TableNotFound => 4043,
            Code::FunctionNotFound => 4045,
            Code::ColumnNotFound => 4005,
            Code::MethodNotAllowed => 4050,
            Code::Conflict => 4090,
            Code::PayloadTooLarge => 4130,
            Code::RequestTimeout => 4080,
            Code::RateLimited => 4290,
            Code::Internal => 5000,
            Code::NotImplemented => 5010,
            Code::DatabaseUnavailable => 5030,
            Code::ServiceUnavailable => 5031,
            Code::Timeout => 5040,
        }
    }

    /// The registry's grouping (served by `GET /admin/errors/catalog` once
    /// that family lands): which part of the gateway answers the code.
    pub fn domain(self) -> &'static str {
        match self {
            Code::BadRequest
            | Code::InvalidJson
            | Code::MissingParameter
            | Code::InvalidParameter
            | Code::PayloadTooLarge
            | Code::RequestTimeout
            | Code::RateLimited => "request",
            Code::Unauthorized | Code::Forbidden => "auth",
            Code::NotFound | Code::RouteNotFound | Code::MethodNotAllowed => "routing",
            Code::MissingClientHeader | Code::ClientNotFound | Code::ClientFrozen => "clients",
            Code::TableNotFound
            | Code::FunctionNotFound
            | Code::ColumnNotFound
            | Code::Conflict => "data",
            Code::NotImplemented
            | Code::DatabaseUnavailable
            | Code::ServiceUnavailable
            | Code::Timeout
            | Code::Internal => "server",
        }
    }

    /// Every code, for the registry.
    pub const ALL: [Code; 24] = [
        Code::BadRequest,
        Code::InvalidJson,
        Code::MissingParameter,
        Code::InvalidParameter,
        Code::MissingClientHeader,
        Code::Unauthorized,
        Code::Forbidden,
        Code::NotFound,
        Code::RouteNotFound,
        Code::ClientNotFound,
        Code::ClientFrozen,
        Code::TableNotFound,
        Code::FunctionNotFound,
        Code::ColumnNotFound,
        Code::MethodNotAllowed,
        Code::Conflict,
        Code::PayloadTooLarge,
        Code::RequestTimeout,
        Code::RateLimited,
        Code::NotImplemented,
        Code::DatabaseUnavailable,
        Code::ServiceUnavailable,
        Code::Timeout,
        Code::Internal,
    ];

    pub fn status(self) -> StatusCode {
        StatusCode::from_u16((self.number() / 10) as u16)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn docs_url(self) -> String {
        format!("https://athena-cluster.com/docs/errors#{}", self.number())
    }
}

/// The standard error envelope, as sent on the wire.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorEnvelope {
    pub status: String,
    pub message: String,
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_number: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docs_url: Option<String>,
}

#[derive(Debug)]
pub struct ApiError {
    pub code: Code,
    /// Short human summary (`message`).
    pub message: String,
    /// Public detail (`error`). Never holds secrets, SQL text or URIs.
    pub detail: String,
    /// Seconds for `Retry-After` on 429/503.
    pub retry_after: Option<u32>,
    /// `Allow` for 405.
    pub allow: Option<String>,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            detail: detail.into(),
            retry_after: None,
            allow: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(Code::BadRequest, "Bad request", detail)
    }

    pub fn invalid_parameter(name: &str, detail: impl std::fmt::Display) -> Self {
        Self::new(
            Code::InvalidParameter,
            "Invalid parameter",
            format!("{name}: {detail}"),
        )
    }

    pub fn missing_parameter(kind: &str, name: &str) -> Self {
        Self::new(
            Code::MissingParameter,
            format!("Missing required {kind}"),
            format!("{kind} `{name}` is required"),
        )
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(Code::Unauthorized, "Unauthorized", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(Code::Forbidden, "Forbidden", detail)
    }

    pub fn not_found(code: Code, detail: impl Into<String>) -> Self {
        Self::new(code, "Not found", detail)
    }

    pub fn unavailable(code: Code, detail: impl Into<String>) -> Self {
        let mut e = Self::new(code, "Service unavailable", detail);
        e.retry_after = Some(1);
        e
    }

    pub fn internal() -> Self {
        Self::new(
            Code::Internal,
            "Internal server error",
            "an unexpected error occurred; see the server log for the request id",
        )
    }

    pub fn method_not_allowed(allow: String) -> Self {
        let mut e = Self::new(
            Code::MethodNotAllowed,
            "Method not allowed",
            format!("allowed methods: {allow}"),
        );
        e.allow = Some(allow);
        e
    }

    /// The answer of every operation whose issue has not landed yet.
    pub fn not_implemented(_cx: &super::RequestCx, op: Operation) -> Self {
        let meta = op.meta();
        Self::new(
            Code::NotImplemented,
            "Not implemented",
            format!(
                "{} {} ({}) is not implemented yet",
                meta.method, meta.path, meta.name
            ),
        )
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    pub fn envelope(&self) -> ErrorEnvelope {
        ErrorEnvelope {
            status: "error".into(),
            message: self.message.clone(),
            error: self.detail.clone(),
            code: Some(self.code.as_str().into()),
            error_number: Some(self.code.number()),
            docs_url: Some(self.code.docs_url()),
        }
    }

    pub fn into_http(self) -> HttpResponse {
        let body = serde_json::to_vec(&self.envelope()).unwrap_or_default();
        let mut response = http::Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(allow) = self
            .allow
            .as_deref()
            .and_then(|a| HeaderValue::from_str(a).ok())
        {
            headers.insert(header::ALLOW, allow);
        }
        response
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.message,
            self.code.as_str(),
            self.detail
        )
    }
}

impl From<crate::domain::DomainError> for ApiError {
    fn from(e: crate::domain::DomainError) -> Self {
        use crate::domain::DomainError as D;
        match e {
            D::Invalid(detail) => ApiError::bad_request(detail),
            D::MissingClient => ApiError::new(
                Code::MissingClientHeader,
                "Missing required header",
                "X-Athena-Client header is required (or a direct PostgreSQL URI header)",
            ),
            D::InvalidField { field, reason } => ApiError::invalid_parameter(&field, reason),
            D::Unauthorized(detail) => ApiError::unauthorized(detail),
            D::FrozenClient(name) => ApiError::new(
                Code::ClientFrozen,
                "Client is frozen",
                format!("client `{name}` is frozen"),
            ),
            D::NotFound { kind, key } => {
                // Keys are caller input: shown, but never unbounded.
                let key: String = key.chars().take(128).collect();
                match kind {
                    "client" => ApiError::not_found(
                        Code::ClientNotFound,
                        format!("client `{key}` is not registered"),
                    ),
                    "table" => ApiError::not_found(
                        Code::TableNotFound,
                        format!("table `{key}` does not exist"),
                    ),
                    "function" => ApiError::not_found(
                        Code::FunctionNotFound,
                        format!("function `{key}` does not exist"),
                    ),
                    kind => {
                        ApiError::not_found(Code::NotFound, format!("{kind} `{key}` was not found"))
                    }
                }
            }
            D::RateLimited {
                detail,
                retry_after,
            } => {
                let mut e = ApiError::new(Code::RateLimited, "Too many requests", detail);
                e.retry_after = Some(retry_after.max(1));
                e
            }
            D::ServiceUnavailable(detail) => {
                ApiError::unavailable(Code::ServiceUnavailable, detail)
            }
            D::UnknownColumn(name) => ApiError::new(
                Code::ColumnNotFound,
                "Bad request",
                format!("column `{name}` does not exist"),
            ),
            D::Conflict(detail) => ApiError::new(Code::Conflict, "Conflict", detail),
            D::Forbidden(detail) => ApiError::forbidden(detail),
            D::Unavailable(internal) => {
                tracing::warn!(error = %internal, "dependency unavailable");
                ApiError::unavailable(
                    Code::DatabaseUnavailable,
                    "the database is unavailable; retry shortly",
                )
            }
            D::Timeout(internal) => {
                tracing::warn!(error = %internal, "timed out");
                ApiError::new(
                    Code::Timeout,
                    "Gateway timeout",
                    "the database did not answer in time",
                )
            }
            D::Internal(internal) => {
                tracing::error!(error = %internal, "internal error");
                ApiError::internal()
            }
        }
    }
}

/// A domain error as a deferred job stores it (`src/gateway/deferred.rs`
/// `RenderFailure`): the envelope its route would have answered plus
/// `http_status`, and a one-line message.
pub fn stored_failure(e: crate::domain::DomainError) -> (serde_json::Value, String) {
    let api = ApiError::from(e);
    let envelope = api.envelope();
    let mut result = serde_json::to_value(&envelope).unwrap_or(serde_json::Value::Null);
    if let serde_json::Value::Object(m) = &mut result {
        m.insert("http_status".into(), api.status().as_u16().into());
    }
    let message = [&envelope.error, &envelope.message]
        .into_iter()
        .find(|s| !s.is_empty())
        .cloned()
        .unwrap_or_default();
    (result, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_always_matches_code() {
        for (code, status) in [
            (Code::BadRequest, 400),
            (Code::Unauthorized, 401),
            (Code::ClientFrozen, 403),
            (Code::TableNotFound, 404),
            (Code::MethodNotAllowed, 405),
            (Code::RequestTimeout, 408),
            (Code::Conflict, 409),
            (Code::PayloadTooLarge, 413),
            (Code::RateLimited, 429),
            (Code::NotImplemented, 501),
            (Code::DatabaseUnavailable, 503),
            (Code::Timeout, 504),
        ] {
            assert_eq!(code.status().as_u16(), status, "{code:?}");
        }
    }

    #[test]
    fn the_registry_has_unique_names_and_numbers() {
        let mut names = std::collections::HashSet::new();
        let mut numbers = std::collections::HashSet::new();
        for code in Code::ALL {
            assert!(names.insert(code.as_str()), "{code:?}");
            assert!(numbers.insert(code.number()), "{code:?}");
            assert!(!code.domain().is_empty());
        }
    }

    #[test]
    fn envelope_shape() {
        let e = ApiError::method_not_allowed("GET, POST".into());
        let r = e.into_http();
        assert_eq!(r.status(), 405);
        assert_eq!(r.headers()[header::ALLOW], "GET, POST");
        let v: serde_json::Value = serde_json::from_slice(&futures_body(r)).unwrap();
        assert_eq!(v["status"], "error");
        assert_eq!(v["code"], "method_not_allowed");
        assert_eq!(v["error_number"], 4050);
        assert!(v["message"].is_string() && v["error"].is_string());
    }

    fn futures_body(r: HttpResponse) -> Bytes {
        use http_body_util::BodyExt;
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async { r.into_body().collect().await.unwrap().to_bytes() })
    }
}
