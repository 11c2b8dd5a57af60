use std::fmt;

/// What can go wrong in any domain (gateway, catalog, storage, …), mapped to
/// the error envelope in one place (`src/http/error.rs`). A new domain uses
/// these variants and needs no HTTP code. `Internal`/`Unavailable`/`Timeout`
/// carry detail for the log only; the HTTP layer never shows it to clients.
#[derive(Debug)]
pub enum DomainError {
    /// The request as a whole is wrong (400 `bad_request`).
    Invalid(String),
    /// One named input is wrong (400 `invalid_parameter`, "field: reason").
    InvalidField { field: String, reason: String },
    /// No `X-Athena-Client` (nor a direct URI) where a tenant is needed.
    MissingClient,
    /// Credentials missing or refused (401).
    Unauthorized(String),
    /// Not allowed (403).
    Forbidden(String),
    /// A registered client that is frozen (403 `client_frozen`).
    FrozenClient(String),
    /// A thing of `kind` named `key` does not exist (404; clients, tables
    /// and functions have their own codes).
    NotFound { kind: &'static str, key: String },
    /// A column the statement names does not exist (400 `column_not_found`).
    UnknownColumn(String),
    /// The state of a resource forbids the change (409).
    Conflict(String),
    /// A per-key IP whitelist would exceed its `max_whitelist_ips` (400
    /// `ip_whitelist_cap_exceeded`).
    IpWhitelistCapExceeded(String),
    /// Too many attempts; retry after `retry_after` seconds (429).
    RateLimited { detail: String, retry_after: u32 },
    /// The backing service does not implement what was asked (501
    /// `not_implemented`, e.g. an S3 store without versioning).
    Unsupported(String),
    /// A feature whose backing service is not configured or failed, with a
    /// message safe to show (503 `service_unavailable`).
    ServiceUnavailable(String),
    /// A database that cannot be reached (503 `database_unavailable`; the
    /// detail goes to the log only).
    Unavailable(String),
    /// The database did not answer in time (504; detail to the log only).
    Timeout(String),
    /// A bug or an unexpected state (500; detail to the log only).
    Internal(String),
}

impl DomainError {
    pub fn not_found(kind: &'static str, key: impl Into<String>) -> Self {
        DomainError::NotFound {
            kind,
            key: key.into(),
        }
    }

    pub fn invalid_field(field: impl Into<String>, reason: impl fmt::Display) -> Self {
        DomainError::InvalidField {
            field: field.into(),
            reason: reason.to_string(),
        }
    }
}

impl fmt::Display for DomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for DomainError {}

/// SQLSTATE → domain error, in one table. Messages that reach clients are
/// Postgres' own primary message for data errors (no SQL text, no URIs).
impl From<tokio_postgres::Error> for DomainError {
    fn from(e: tokio_postgres::Error) -> Self {
        let Some(db) = e.as_db_error() else {
            // Connection-level failure: closed socket, TLS, protocol.
            return DomainError::Unavailable(e.to_string());
        };
        let state = db.code().code();
        let message = db.message().to_string();
        match state {
            "23505" | "23P01" => DomainError::Conflict(message),
            "23503" | "23502" | "23514" | "22P02" | "22001" | "22003" | "22007" | "22008"
            | "22023" | "42804" | "42P18" | "2201W" | "2201X" | "42883" | "42601" | "42703"
            | "42P01" | "3F000" | "21000" | "22012" | "22P05" | "22021" => {
                DomainError::Invalid(message)
            }
            "42501" => DomainError::Forbidden(message),
            "57014" => DomainError::Timeout(message),
            "25006" => DomainError::Forbidden(message),
            s if s.starts_with("08")
                || s == "57P01"
                || s == "57P02"
                || s == "57P03"
                || s == "53300" =>
            {
                DomainError::Unavailable(message)
            }
            _ => DomainError::Internal(format!("{state}: {message}")),
        }
    }
}

impl<E: std::fmt::Display> From<bb8::RunError<E>> for DomainError {
    fn from(e: bb8::RunError<E>) -> Self {
        match e {
            bb8::RunError::TimedOut => {
                DomainError::Unavailable("timed out acquiring a pooled connection".into())
            }
            bb8::RunError::User(e) => DomainError::Unavailable(e.to_string()),
        }
    }
}
