//! Why a message could not be encoded.

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error(
        "{message} v{version}: {field} has a non-default value but does not exist in this version"
    )]
    UnsupportedField {
        message: &'static str,
        field: &'static str,
        version: i16,
    },
    #[error("{message} v{version}: {field} is null but not nullable in this version")]
    NullField {
        message: &'static str,
        field: &'static str,
        version: i16,
    },
    #[error("{message}: version {version} is not implemented")]
    UnsupportedVersion { message: &'static str, version: i16 },
    #[error("record slot given to a sink that needs the bytes")]
    RecordSlot,
    /// An unknown tagged field whose tag this version declares (kept from an older version).
    #[error("{message} v{version}: unknown tagged field {tag} is a known field at this version")]
    TagCollision {
        message: &'static str,
        tag: u32,
        version: i16,
    },
    /// A string, bytes, array or tagged field longer than its length prefix can say (Kafka's
    /// "field is too long to be serialized"), or a frame larger than its `int32` size.
    #[error("{message} v{version}: {field} is {len} long, more than the {max} the wire allows")]
    TooLong {
        message: &'static str,
        field: &'static str,
        version: i16,
        len: usize,
        max: usize,
    },
}
