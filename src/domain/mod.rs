//! Domain layer: knows nothing about HTTP. Handlers parse and authorize,
//! call one function here, and convert the result.

mod error;
pub mod identifier;

pub use error::DomainError;

/// `{status: "success", message}`: the start of every success body the
/// contract shapes by hand (gateway answers, transactions, admin records).
pub fn success(message: impl Into<String>) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    out.insert("status".into(), "success".into());
    out.insert("message".into(), serde_json::Value::String(message.into()));
    out
}
