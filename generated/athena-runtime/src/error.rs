//! The one error type of the HTTP layer and the only code that turns an
//! error into a status and the standard envelope
//! (`status`, `message`, `error`, optional `code`, `error_number`, `docs_url`).

use crate::HttpResponse;
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
    /// Issue 14: `Accept: application/vnd.pgrst.object+json` and not exactly one row.
    NotAcceptable,
    /// Issue 14: a range past the end of the counted rows (`Content-Range: */N`).
    RangeNotSatisfiable,
    Conflict,
    /// D1 migrate: the script uses what D1 (SQLite) cannot express.
    D1Unsupported,
    /// Billing (issue 15): a verified provider event Athena does not project.
    Unprocessable,
    /// Billing (issue 15): the provider's API failed or answered unusably.
    UpstreamFailed,
    /// A Supabase Management API call failed (documented as 500).
    SupabaseApiError,
    /// IP policy (issue 13): the caller's address is refused for this key.
    IpNotAllowed,
    /// IP policy: rules apply but the client address is unknown.
    ClientIpRequired,
    /// IP policy: a per-key whitelist over `max_whitelist_ips`.
    IpWhitelistCapExceeded,
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
            Code::NotAcceptable => "not_acceptable",
            Code::RangeNotSatisfiable => "range_not_satisfiable",
            Code::Conflict => "conflict",
            Code::D1Unsupported => "d1_unsupported",
            Code::Unprocessable => "unprocessable",
            Code::UpstreamFailed => "upstream_failed",
            Code::SupabaseApiError => "supabase_api_error",
            Code::IpNotAllowed => "ip_not_allowed",
            Code::ClientIpRequired => "client_ip_required",
            Code::IpWhitelistCapExceeded => "ip_whitelist_cap_exceeded",
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
            Code::NotAcceptable => 4060,
            Code::RangeNotSatisfiable => 4160,
            Code::Conflict => 4090,
            Code::D1Unsupported => 4220,
            Code::Unprocessable => 4221,
            Code::UpstreamFailed => 5020,
            Code::SupabaseApiError => 5001,
            Code::IpNotAllowed => 4032,
            Code::ClientIpRequired => 4033,
            Code::IpWhitelistCapExceeded => 4008,
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
            | Code::RateLimited
            | Code::NotAcceptable
            | Code::RangeNotSatisfiable
            | Code::Unprocessable => "request",
            Code::Unauthorized | Code::Forbidden => "auth",
            Code::IpNotAllowed | Code::ClientIpRequired | Code::IpWhitelistCapExceeded => {
                "ip_policy"
            }
            Code::NotFound | Code::RouteNotFound | Code::MethodNotAllowed => "routing",
            Code::MissingClientHeader | Code::ClientNotFound | Code::ClientFrozen => "clients",
            Code::TableNotFound
            | Code::FunctionNotFound
            | Code::ColumnNotFound
            | Code::Conflict
            | Code::D1Unsupported => "data",
            Code::NotImplemented
            | Code::UpstreamFailed
            | Code::SupabaseApiError
            | Code::DatabaseUnavailable
            | Code::ServiceUnavailable
            | Code::Timeout
            | Code::Internal => "server",
        }
    }

    /// Every code, for the registry.
    pub const ALL: [Code; 33] = [
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
        Code::NotAcceptable,
        Code::RangeNotSatisfiable,
        Code::Conflict,
        Code::D1Unsupported,
        Code::Unprocessable,
        Code::UpstreamFailed,
        Code::SupabaseApiError,
        Code::IpNotAllowed,
        Code::ClientIpRequired,
        Code::IpWhitelistCapExceeded,
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
    /// `Content-Range` for 416 (`*/N`, issue 14).
    pub content_range: Option<String>,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            detail: detail.into(),
            retry_after: None,
            allow: None,
            content_range: None,
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

    /// The answer of every operation whose issue has not landed yet
    /// (`method`, `path` template and `name` of the operation).
    pub fn not_implemented(method: &str, path: &str, name: &str) -> Self {
        Self::new(
            Code::NotImplemented,
            "Not implemented",
            format!("{method} {path} ({name}) is not implemented yet"),
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
        if let Some(range) = self
            .content_range
            .as_deref()
            .and_then(|r| HeaderValue::from_str(r).ok())
        {
            headers.insert(header::CONTENT_RANGE, range);
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
