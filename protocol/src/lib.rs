//! The Kafka wire protocol, as rafka speaks it.
//!
//! - [`primitives`]: every primitive type, written once (nom parsers and encoders).
//! - [`messages`]: every request and response body of the APIs we serve, plus the request and
//!   response headers, generated at build time from our schema files (`protocol/schema/`, read
//!   by `protocol/build/`). One struct per message for all its versions; the version is passed to
//!   encode, decode and size.
//! - [`frame`]: request and response frames — header versions, the size prefix, decoding a whole
//!   request, encoding a response into bytes or into chunks with `sendfile` slots.
//! - [`record_batch`]: a zero-copy view of RecordBatch v2, its validation and in-place offset
//!   assignment; it re-exports the format's constants and errors ([`record_format`]) and the
//!   builder for the broker's own batches ([`record_batch_builder`]). [`record`] reads and writes
//!   the records inside a batch.
//! - [`ApiKey`] and [`ErrorCode`]: Kafka's tables.
//!
//! This crate knows nothing of files, sockets or tasks. Decoding untrusted bytes never panics and
//! never allocates by a length it has not checked against the bytes present.

pub mod api_key;
mod codegen;
pub mod control_record;
pub mod error_code;
pub mod frame;
pub mod metadata_record;
pub mod primitives;
pub mod record;
pub mod record_batch;
pub mod record_batch_builder;
pub mod record_format;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use api_key::ApiKey;
pub use error_code::ErrorCode;
pub use frame::{RequestFrame, ResponseFrame};
pub use primitives::{Chunk, ChunkedSink, RawTaggedField, Records, Sink, Uuid, WireError};

/// The generated message types: `messages::ProduceRequest`, `messages::produce_request::*`, ...
pub mod messages {
    include!(concat!(env!("OUT_DIR"), "/messages.rs"));
}

/// The memory a message's decoding may take, per byte of its input: every array, string and
/// unknown-tagged-field vector is charged against `DECODE_MEMORY_PER_BYTE * input length +
/// DECODE_MEMORY_BASE` before it is allocated, and a message that would need more is a decode
/// error. Byte and record fields are slices of the frame, free. The densest element any request
/// can hold is LeaveGroup v4's `MemberIdentity`, 96 bytes in memory for 3 on the wire; arrays of
/// one-byte strings take 28 times their frame (`tests/decode_memory.rs` measures both), so 32
/// refuses no well-formed request, and bounds every one, including those that fail late.
pub const DECODE_MEMORY_PER_BYTE: usize = 32;
/// The fixed part of the decoding budget, so that a small message may hold a struct or two
/// whose memory is larger than its few bytes.
pub const DECODE_MEMORY_BASE: usize = 16 * 1024;

/// An inclusive range of versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionRange {
    pub min: i16,
    pub max: i16,
}

impl VersionRange {
    pub fn contains(&self, v: i16) -> bool {
        self.min <= v && v <= self.max
    }
}

/// A message body of one API (or a header), declared in the schema.
pub trait Message: Sized + Default + Clone + std::fmt::Debug + PartialEq {
    /// Kafka's name for it, e.g. `ProduceRequest`.
    const NAME: &'static str;
    /// The versions we implement.
    const VERSIONS: VersionRange;
    /// The first flexible version (compact encodings, tagged fields), if any.
    const FIRST_FLEXIBLE: Option<i16>;

    /// Encodes at `version` without checking it against [`Self::VERSIONS`]; use [`encode`].
    fn encode_into<W: Sink + ?Sized>(&self, w: &mut W, version: i16) -> Result<(), EncodeError>;
    /// The encoded size at `version`.
    fn size_at(&self, version: i16) -> usize;
    /// Decodes at `version` from `input`, a slice of `frame`; use [`decode`].
    fn decode_from<'a>(frame: &bytes::Bytes, input: &'a [u8], version: i16) -> DResult<'a, Self>;
    /// A random value carrying exactly the fields of `version`.
    #[cfg(any(test, feature = "testing"))]
    fn random(rng: &mut testing::Rng, version: i16) -> Self;

    fn is_flexible(version: i16) -> bool {
        Self::FIRST_FLEXIBLE.is_some_and(|f| version >= f)
    }
}

/// The result of a generated decoder: a nom result whose error names message, version and field.
pub type DResult<'a, T> = nom::IResult<&'a [u8], T, DecodeError>;

/// Encodes `m` at `version`, refusing a version we do not implement.
pub fn encode<M: Message, W: Sink + ?Sized>(
    m: &M,
    w: &mut W,
    version: i16,
) -> Result<(), EncodeError> {
    codegen::encode_checked(m, w, version)
}

/// Decodes all of `body` (a slice of `frame`) as `M` at `version`: a version we do not implement,
/// a malformed field or bytes left over are errors.
pub fn decode<M: Message>(
    frame: &bytes::Bytes,
    body: &[u8],
    version: i16,
) -> Result<M, DecodeError> {
    codegen::decode_all(frame, body, version)
}

/// Decodes a whole buffer as `M` at `version`.
pub fn decode_bytes<M: Message>(buf: &bytes::Bytes, version: i16) -> Result<M, DecodeError> {
    codegen::decode_all(buf, &buf[..], version)
}

/// Encodes `m` at `version` into a new buffer.
pub fn encode_to_bytes<M: Message>(m: &M, version: i16) -> Result<bytes::BytesMut, EncodeError> {
    let mut b = bytes::BytesMut::with_capacity(m.size_at(version));
    encode(m, &mut b, version)?;
    Ok(b)
}

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
