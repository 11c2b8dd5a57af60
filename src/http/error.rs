//! Domain errors as HTTP errors: the one place a `DomainError` picks its
//! code, status and public detail. The error type and the envelope itself
//! (`ApiError`, `Code`, `ErrorEnvelope`) are in `athena-runtime`
//! (`generated/athena-runtime/src/error.rs`), re-exported by `crate::http`.

use super::{ApiError, Code};

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
            D::IpWhitelistCapExceeded(detail) => {
                ApiError::new(Code::IpWhitelistCapExceeded, "Bad request", detail)
            }
            D::Unsupported(detail) => {
                ApiError::new(Code::NotImplemented, "Not implemented", detail)
            }
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
    use crate::http::HttpResponse;
    use bytes::Bytes;
    use http::header;

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
