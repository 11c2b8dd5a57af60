use std::fmt;

/// What can go wrong in the domain. `Internal`/`Unavailable`/`Timeout` carry
/// detail for the log only; the HTTP layer never shows it to clients.
#[derive(Debug)]
pub enum DomainError {
    Invalid(String),
    MissingClient,
    UnknownClient(String),
    FrozenClient(String),
    UnknownTable(String),
    UnknownColumn(String),
    UnknownFunction(String),
    Conflict(String),
    Forbidden(String),
    Unavailable(String),
    Timeout(String),
    Internal(String),
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
            | "42P01" | "3F000" | "21000" | "22012" => DomainError::Invalid(message),
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
