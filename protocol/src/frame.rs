//! Request and response frames: a 4-byte size prefix, a header, a body.
//!
//! Header versions follow Kafka: a request uses header v2 in its API's flexible versions and v1
//! before; a response uses header v1 in flexible versions and v0 before — except ApiVersions,
//! whose response always uses header v0 so that a client can read it whatever version it sent
//! (KIP-511).
//!
//! Decoding takes the frame without its size prefix (the connection reads the prefix, checks it
//! against `socket.request.max.bytes`, then reads exactly that many bytes). Encoding writes the
//! prefix. A response can be encoded as [`Chunk`]s so that record data given as
//! [`Records::Slot`](crate::primitives::Records) is sent with `sendfile` rather than copied.

use crate::api_key::ApiKey;
use crate::codegen::decode_all;
use crate::decode_error::{DecodeError, DecodeErrorKind};
use crate::encode_error::EncodeError;
use crate::message::Message;
use crate::messages::{RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use crate::primitives::{put, Chunk, ChunkedSink, Sink};
use bytes::{Bytes, BytesMut};

/// The request header version for `key` at `version`.
///
/// An API we do not serve is read with header v1 (enough for its correlation id); a version above
/// the ones we implement is read as flexible when the API is flexible at all, as Kafka does.
pub fn request_header_version(key: ApiKey, version: i16) -> i16 {
    match RequestKind::first_flexible(key) {
        Some(f) if version >= f => 2,
        _ => 1,
    }
}

/// The response header version for `key` at `version`.
pub fn response_header_version(key: ApiKey, version: i16) -> i16 {
    if key == ApiKey::ApiVersions {
        return 0;
    }
    match ResponseKind::first_flexible(key) {
        Some(f) if version >= f => 1,
        _ => 0,
    }
}

/// A decoded request.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestFrame {
    pub header: RequestHeader,
    pub body: RequestKind,
}

/// Why a request frame was not decoded. Every variant that got as far as the header carries it,
/// so the broker can still answer (ApiVersions with UNSUPPORTED_VERSION, KIP-511) or log who sent
/// it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FrameError {
    #[error("malformed request header: {0}")]
    Header(DecodeError),
    #[error("unknown api key {key} (correlation id {})", header.as_ref().map_or(-1, |h| h.correlation_id))]
    UnknownApi {
        key: i16,
        header: Option<RequestHeader>,
    },
    #[error("{} v{} is not implemented (correlation id {})", api_name(header), header.request_api_version, header.correlation_id)]
    UnsupportedVersion { header: RequestHeader },
    #[error("malformed request body: {error}")]
    Body {
        header: RequestHeader,
        error: DecodeError,
    },
}

fn api_name(h: &RequestHeader) -> &'static str {
    ApiKey::from_key(h.request_api_key).map_or("unknown api", ApiKey::name)
}

impl RequestFrame {
    /// Decodes a request from `frame` (the bytes after the size prefix). Record data in the body
    /// stays a slice of `frame`.
    pub fn decode(frame: &Bytes) -> Result<RequestFrame, FrameError> {
        let b = &frame[..];
        if b.len() < 4 {
            // Let the header decoder say what is missing.
            return Err(FrameError::Header(header_error(frame, 1)));
        }
        let key = i16::from_be_bytes([b[0], b[1]]);
        let version = i16::from_be_bytes([b[2], b[3]]);
        let Some(api) = ApiKey::from_key(key) else {
            let header = RequestHeader::decode_from(frame, b, 1).ok().map(|(_, h)| h);
            return Err(FrameError::UnknownApi { key, header });
        };
        let hv = request_header_version(api, version);
        let (body, header) = match RequestHeader::decode_from(frame, b, hv) {
            Ok(x) => x,
            Err(_) => return Err(FrameError::Header(header_error(frame, hv))),
        };
        match RequestKind::versions(api) {
            None => {
                return Err(FrameError::UnknownApi {
                    key,
                    header: Some(header),
                })
            }
            Some(r) if !r.contains(version) => {
                return Err(FrameError::UnsupportedVersion { header })
            }
            Some(_) => {}
        }
        // Bytes after the body are ignored, as Kafka's parser ignores them (librdkafka 2.16
        // sends three after a Metadata v12 request for all topics).
        match RequestKind::decode_with(api, version, frame, body, true) {
            Ok(body) => Ok(RequestFrame { header, body }),
            Err(error) => Err(FrameError::Body { header, error }),
        }
    }

    /// Encodes the request with its size prefix (for our own clients: followers, tests, tools).
    pub fn encode(&self) -> Result<BytesMut, EncodeError> {
        let version = self.header.request_api_version;
        let api = self.body.api_key();
        let hv = request_header_version(api, version);
        let size = self.header.size_at(hv) + self.body.size_at(version);
        let mut b = BytesMut::with_capacity(4 + size);
        put::int32(&mut b, frame_size(RequestHeader::NAME, version, size)?);
        self.header.encode_into(&mut b, hv)?;
        self.body.encode(&mut b, version)?;
        Ok(b)
    }
}

/// The size prefix of a frame of `size` bytes: an `int32`, so a larger frame is an error, never
/// a wrapped (negative or short) size that would desynchronise the connection.
fn frame_size(message: &'static str, version: i16, size: usize) -> Result<i32, EncodeError> {
    i32::try_from(size).map_err(|_| EncodeError::TooLong {
        message,
        field: "(size)",
        version,
        len: size,
        max: i32::MAX as usize,
    })
}

fn header_error(frame: &Bytes, hv: i16) -> DecodeError {
    match decode_all::<RequestHeader>(frame, frame, hv) {
        Err(e) => e,
        // The header decoded alone: what failed was the body's absence, not the header.
        Ok(_) => DecodeError {
            message: RequestHeader::NAME,
            version: hv,
            field: "(end)",
            error: DecodeErrorKind::Wire(crate::primitives::WireError::Truncated {
                needed: 1,
                remaining: 0,
            }),
        },
    }
}

/// A response to encode.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseFrame {
    pub correlation_id: i32,
    pub api_version: i16,
    pub body: ResponseKind,
}

impl ResponseFrame {
    fn header_and_size(&self) -> (ResponseHeader, i16, usize) {
        let hv = response_header_version(self.body.api_key(), self.api_version);
        let header = ResponseHeader {
            correlation_id: self.correlation_id,
            ..Default::default()
        };
        let size = header.size_at(hv) + self.body.size_at(self.api_version);
        (header, hv, size)
    }

    fn encode_to<W: Sink>(&self, w: &mut W) -> Result<(), EncodeError> {
        let (header, hv, size) = self.header_and_size();
        put::int32(w, frame_size(ResponseHeader::NAME, self.api_version, size)?);
        header.encode_into(w, hv)?;
        self.body.encode(w, self.api_version)
    }

    /// The whole response, size prefix included, in one buffer (record data copied in).
    pub fn encode(&self) -> Result<BytesMut, EncodeError> {
        let (_, _, size) = self.header_and_size();
        let mut b = BytesMut::with_capacity(4 + size);
        self.encode_to(&mut b)?;
        Ok(b)
    }

    /// The whole response as chunks: encoded bytes with a [`Chunk::Slot`] wherever record data
    /// was given as a slot. Only the headers are copied; the caller fills each slot.
    pub fn encode_chunks(&self) -> Result<Vec<Chunk>, EncodeError> {
        let mut sink = ChunkedSink::with_capacity(256);
        self.encode_to(&mut sink)?;
        Ok(sink.finish())
    }

    /// Decodes a response of `key` at `version` from `frame` (after the size prefix); for our own
    /// clients (followers, tests).
    pub fn decode(key: ApiKey, version: i16, frame: &Bytes) -> Result<ResponseFrame, DecodeError> {
        let hv = response_header_version(key, version);
        let (body, header) = match ResponseHeader::decode_from(frame, frame, hv) {
            Ok(x) => x,
            Err(_) => {
                return Err(match decode_all::<ResponseHeader>(frame, frame, hv) {
                    Err(e) => e,
                    Ok(_) => DecodeError::unsupported_api(key),
                })
            }
        };
        let body = ResponseKind::decode(key, version, frame, body)?;
        Ok(ResponseFrame {
            correlation_id: header.correlation_id,
            api_version: version,
            body,
        })
    }
}
