//! A Kafka error code with its message, for one response entry (Kafka's `ApiError`).

use rafka_protocol::ErrorCode;

/// A Kafka error code with its message, for one response entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: Some(message.into()),
        }
    }

    pub fn code(code: ErrorCode) -> Self {
        ApiError {
            code,
            message: None,
        }
    }
}
