//! Domain layer: knows nothing about HTTP. Handlers parse and authorize,
//! call one function here, and convert the result.

mod error;
pub mod identifier;

pub use error::DomainError;
