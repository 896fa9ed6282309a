//! Validation errors: bad input that must be refused before it changes
//! anything. Every service maps these to a 4xx answer.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum ValidationError {
    #[error("vector dimension error: expected dim: {expected}, got {got}")]
    WrongDimension { expected: usize, got: usize },
    #[error("vector component {index} is not a finite number")]
    NonFiniteComponent { index: usize },
    #[error("batch of {got} points exceeds the limit of {limit}")]
    BatchTooLarge { got: usize, limit: usize },
    #[error("payload of {got} bytes exceeds the limit of {limit} bytes")]
    PayloadTooLarge { got: usize, limit: usize },
    #[error("payload must be a JSON object")]
    PayloadNotObject,
    #[error("malformed filter: {reason}")]
    MalformedFilter { reason: String },
    #[error("invalid collection config: {reason}")]
    InvalidConfig { reason: String },
    #[error("invalid request: {reason}")]
    InvalidRequest { reason: String },
    #[error("filter nesting is deeper than the limit of {limit} levels")]
    FilterTooDeep { limit: usize },
    #[error("{got} {what} exceed the limit of {limit}")]
    TooMany {
        what: &'static str,
        got: usize,
        limit: usize,
    },
    #[error(transparent)]
    InvalidName(#[from] crate::names::InvalidName),
}
