//! Why bytes did not decode as a message: the message, its version, the field and the cause.

use crate::api_key::ApiKey;
use crate::primitives::WireError;

/// Why bytes did not decode: the message, its version, the field (`Struct.Field`) and the cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} v{version}: {field}: {error}")]
pub struct DecodeError {
    pub message: &'static str,
    pub version: i16,
    pub field: &'static str,
    pub error: DecodeErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("version not implemented")]
    UnsupportedVersion,
    #[error("api {0} is not served")]
    UnsupportedApi(i16),
}

impl DecodeError {
    pub(crate) fn unsupported_api(key: ApiKey) -> DecodeError {
        DecodeError {
            message: key.name(),
            version: -1,
            field: "request_api_key",
            error: DecodeErrorKind::UnsupportedApi(key.key()),
        }
    }
}

impl<'a> nom::error::ParseError<&'a [u8]> for DecodeError {
    fn from_error_kind(input: &'a [u8], kind: nom::error::ErrorKind) -> Self {
        DecodeError {
            message: "",
            version: -1,
            field: "",
            error: DecodeErrorKind::Wire(WireError::from_error_kind(input, kind)),
        }
    }
    fn append(_: &'a [u8], _: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
}
