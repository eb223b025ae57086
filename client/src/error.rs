//! [`ClientError`]: why a client operation failed, naming the broker, API or resource involved.

use rafka_protocol::ErrorCode;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The `--command-config` file or a client key in it is wrong.
    #[error("client configuration: {0}")]
    Config(String),
    /// A TCP connection (with its TLS and SASL layers) could not be opened.
    #[error("cannot connect to {addr}: {error}")]
    Connect { addr: String, error: std::io::Error },
    /// No answer within the bound.
    #[error("{addr}: no answer to {what} within {} ms", after.as_millis())]
    Timeout {
        addr: String,
        what: String,
        after: Duration,
    },
    /// The connection failed mid-request, or the answer was not a valid response.
    #[error("{addr}: {error}")]
    Exchange {
        addr: String,
        error: crate::wire::ExchangeError,
    },
    /// The broker serves no version of an API that this client implements.
    #[error("{addr} does not support {api} in any version this client speaks")]
    UnsupportedApi { addr: String, api: &'static str },
    /// None of the bootstrap servers answered.
    #[error("no broker reachable at {bootstrap}: {last}")]
    Unreachable { bootstrap: String, last: String },
    /// The broker answered with a Kafka error.
    #[error("{subject}: {} ({}){}", code.name(), code.message(), message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        subject: String,
        code: ErrorCode,
        message: Option<String>,
    },
    /// A Kafka error code this client does not know.
    #[error("{subject}: unknown error code {code}")]
    UnknownCode { subject: String, code: i16 },
    /// Something the broker said does not make sense (a missing partition, a bad record).
    #[error("{0}")]
    Protocol(String),
}

impl ClientError {
    /// Whether trying again (after a backoff, a metadata refresh or a reconnect) may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Connect { .. }
            | ClientError::Timeout { .. }
            | ClientError::Exchange { .. } => true,
            ClientError::Kafka { code, .. } => {
                code.is_retriable()
                    || matches!(
                        code,
                        ErrorCode::NotCoordinator
                            | ErrorCode::CoordinatorNotAvailable
                            | ErrorCode::CoordinatorLoadInProgress
                    )
            }
            _ => false,
        }
    }

    /// The Kafka error code, if the broker answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Turns a response's error code into `Ok(())` or the error it names.
    pub fn check(
        subject: impl Into<String>,
        code: i16,
        message: Option<&str>,
    ) -> Result<(), ClientError> {
        match ErrorCode::from_code(code) {
            Some(ErrorCode::None) => Ok(()),
            Some(code) => Err(ClientError::Kafka {
                subject: subject.into(),
                code,
                message: message.filter(|m| !m.is_empty()).map(str::to_owned),
            }),
            None => Err(ClientError::UnknownCode {
                subject: subject.into(),
                code,
            }),
        }
    }
}
