//! What the generated message code (`build/main.rs`) calls besides the primitives: error
//! attribution, array decoding, raw tagged fields, whole-message decode and checked encode.

pub(crate) use crate::primitives::put;
pub(crate) use crate::primitives::size;
pub(crate) use crate::primitives::*;
pub(crate) use crate::{DResult, DecodeError, DecodeErrorKind, EncodeError, Message, VersionRange};
pub(crate) use bytes::Bytes;

/// An error at `field`; the message and version are filled in by [`decode_all`].
pub(crate) fn err(field: &'static str, e: WireError) -> DecodeError {
    DecodeError {
        message: "",
        version: -1,
        field,
        error: DecodeErrorKind::Wire(e),
    }
}

/// Attributes a primitive parser's error to `field`.
pub(crate) fn at<'a, T>(field: &'static str, r: WResult<'a, T>) -> DResult<'a, T> {
    r.map_err(|e| match e {
        nom::Err::Error(w) | nom::Err::Failure(w) => nom::Err::Failure(err(field, w)),
        nom::Err::Incomplete(_) => nom::Err::Failure(err(
            field,
            WireError::Truncated {
                needed: 1,
                remaining: 0,
            },
        )),
    })
}

/// Decodes `n` elements (already checked against the bytes present). The first allocation is
/// capped; the vector grows only with elements that actually decoded.
pub(crate) fn decode_array<'a, T>(
    mut i: &'a [u8],
    n: usize,
    mut elem: impl FnMut(&'a [u8]) -> DResult<'a, T>,
) -> DResult<'a, Vec<T>> {
    let mut out = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let (rest, x) = elem(i)?;
        out.push(x);
        i = rest;
    }
    Ok((i, out))
}

pub(crate) fn put_raw_tagged<W: Sink + ?Sized>(w: &mut W, f: &RawTaggedField) {
    put::unsigned_varint(w, f.tag);
    put::unsigned_varint(w, f.data.len() as u32);
    w.put_slice(&f.data);
}

pub(crate) fn raw_tagged_size(f: &RawTaggedField) -> usize {
    size::unsigned_varint(f.tag) + size::unsigned_varint(f.data.len() as u32) + f.data.len()
}

/// Decodes `body` as `M` at `version`; bytes left over are an error unless `allow_trailing`.
pub(crate) fn decode_body<M: Message>(
    frame: &Bytes,
    body: &[u8],
    version: i16,
    allow_trailing: bool,
) -> Result<M, DecodeError> {
    if allow_trailing && M::VERSIONS.contains(version) {
        if let Ok((_, m)) = M::decode_from(frame, body, version) {
            return Ok(m);
        }
    }
    // Strict, or a failure: decode_all names the message, version and field.
    decode_all(frame, body, version)
}

/// Decodes all of `body` as `M` at `version`, naming the message and version in any error.
pub(crate) fn decode_all<M: Message>(
    frame: &Bytes,
    body: &[u8],
    version: i16,
) -> Result<M, DecodeError> {
    let named = |mut e: DecodeError| {
        e.message = M::NAME;
        e.version = version;
        e
    };
    if !M::VERSIONS.contains(version) {
        return Err(named(DecodeError {
            message: "",
            version,
            field: "request_api_version",
            error: DecodeErrorKind::UnsupportedVersion,
        }));
    }
    match M::decode_from(frame, body, version) {
        Ok(([], m)) => Ok(m),
        Ok((rest, _)) => Err(named(err("(end)", WireError::TrailingBytes(rest.len())))),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(named(e)),
        Err(nom::Err::Incomplete(_)) => Err(named(err(
            "(end)",
            WireError::Truncated {
                needed: 1,
                remaining: 0,
            },
        ))),
    }
}

pub(crate) fn encode_checked<M: Message, W: Sink + ?Sized>(
    m: &M,
    w: &mut W,
    version: i16,
) -> Result<(), EncodeError> {
    if !M::VERSIONS.contains(version) {
        return Err(EncodeError::UnsupportedVersion {
            message: M::NAME,
            version,
        });
    }
    m.encode_into(w, version)
}
