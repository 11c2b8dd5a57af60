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
            D::UnknownClient(name) => ApiError::not_found(
                Code::ClientNotFound,
                format!("client `{name}` is not registered"),
            ),
            D::FrozenClient(name) => ApiError::new(
                Code::ClientFrozen,
                "Client is frozen",
                format!("client `{name}` is frozen"),
            ),
            D::UnknownTable(name) => ApiError::not_found(
                Code::TableNotFound,
                format!("table `{name}` does not exist"),
            ),
            D::UnknownFunction(name) => ApiError::not_found(
                Code::FunctionNotFound,
                format!("function `{name}` does not exist"),
            ),
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
