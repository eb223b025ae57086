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
pub mod decode_error;
pub mod encode_error;
pub mod error_code;
pub mod frame;
pub mod message;
pub mod messages;
pub mod metadata_record;
pub mod primitives;
pub mod record;
pub mod record_batch;
pub mod record_batch_builder;
pub mod record_format;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use api_key::ApiKey;
pub use decode_error::{DecodeError, DecodeErrorKind};
pub use encode_error::EncodeError;
pub use error_code::ErrorCode;
pub use frame::{RequestFrame, ResponseFrame};
pub use message::{DResult, Message, VersionRange, DECODE_MEMORY_BASE, DECODE_MEMORY_PER_BYTE};
pub use primitives::{Chunk, ChunkedSink, RawTaggedField, Records, Sink, Uuid, WireError};

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
