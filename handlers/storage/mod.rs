//! `/storage/*` families (`openapi/families.yaml`): one module each.

mod buckets;
mod catalogs;
mod connections;
mod files;
mod folders;
mod multipart;
mod objects;
mod permissions;
mod service;
mod streams;

use crate::domain::DomainError;
use crate::http::payload::Json;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A request body as the storage layer's own request type (the SDK's
/// fields, `src/storage/objects.rs`): the generated model, or the
/// contract's free-form object, read again into it.
fn request<T: DeserializeOwned>(body: &impl Serialize) -> Result<T, DomainError> {
    let value = serde_json::to_value(body)
        .map_err(|e| DomainError::Internal(format!("re-reading a storage body: {e}")))?;
    serde_json::from_value(value)
        .map_err(|e| DomainError::Invalid(format!("invalid request body: {e}")))
}

/// The standard success envelope around `data`, as the operation's
/// declared answer type (a free JSON value or `ApiSuccessEnvelope`).
fn answer<T: DeserializeOwned>(
    message: &str,
    data: serde_json::Value,
) -> Result<Json<T>, DomainError> {
    let mut envelope = crate::domain::success(message);
    envelope.insert("data".into(), data);
    serde_json::from_value(serde_json::Value::Object(envelope))
        .map(Json::new)
        .map_err(|e| DomainError::Internal(format!("storage answer shape: {e}")))
}

/// `answer`, with `data` served exactly as given where the declared type
/// would drop fields it does not list (the SDK's superset, e.g. a list's
/// `has_more`).
fn answer_whole<T: DeserializeOwned>(
    message: &str,
    data: serde_json::Value,
) -> Result<Json<T>, DomainError> {
    let text = serde_json::to_string(&data)
        .map_err(|e| DomainError::Internal(format!("storage answer: {e}")))?;
    Ok(answer::<T>(message, data)?.with_raw_field("data", text))
}

/// The client a storage request runs for (`X-Athena-Client`).
fn client(cx: &crate::http::RequestCx) -> Option<String> {
    crate::auth::header_client(cx.headers()).map(str::to_string)
}

/// A store lacking a feature answers 501 only where the operation
/// documents it (versions, lifecycle, the SDK-only routes); elsewhere the
/// same reason is a 400.
fn documented(cx: &crate::http::RequestCx, e: DomainError) -> DomainError {
    match e {
        DomainError::Unsupported(why) if !cx.operation().meta().statuses.contains(&501) => {
            DomainError::Invalid(why)
        }
        other => other,
    }
}

/// One storage operation: read the body into the layer's request type,
/// call the service with the request's client, answer the envelope.
macro_rules! storage_call {
    ($self:ident, $cx:ident, $body:expr, $method:ident, $variant:path, $message:literal) => {{
        let client = super::client(&$cx);
        let request = super::request(&$body)?;
        let data = $self
            .storage
            .$method(client.as_deref(), request)
            .await
            .map_err(|e| super::documented(&$cx, e))?;
        Ok($variant(super::answer($message, data)?))
    }};
}
use storage_call;
