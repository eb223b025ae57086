//! What the generated message code (`build/main.rs`) calls besides the primitives: error
//! attribution, array decoding, raw tagged fields, whole-message decode and checked encode.

pub(crate) use crate::decode_error::{DecodeError, DecodeErrorKind};
pub(crate) use crate::encode_error::EncodeError;
pub(crate) use crate::message::{DResult, Message, VersionRange};
pub(crate) use crate::primitives::put;
pub(crate) use crate::primitives::size;
pub(crate) use crate::primitives::*;
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

/// The frame a message is decoded from, and what is left of the memory its decoding may take.
///
/// A request's decoded size is bounded by its frame: every allocation the decoder makes (an
/// array's elements, a string's bytes, the unknown tagged fields of a struct) is charged here
/// *before* it is made, and one that would exceed the budget fails the decode with
/// [`WireError::OverBudget`]. The budget is [`crate::message::DECODE_MEMORY_PER_BYTE`] times the input's
/// length plus [`crate::message::DECODE_MEMORY_BASE`]; byte and record fields are slices of the frame and
/// cost nothing. Checking each count against the bytes that remain (`array_len`) alone is not
/// enough: a string is 24 bytes in memory for one byte on the wire, a struct can be hundreds of
/// bytes for a handful, and an array that fails half-way has already allocated its elements.
pub(crate) struct DecodeCx<'f> {
    frame: &'f Bytes,
    left: std::cell::Cell<usize>,
}

impl<'f> DecodeCx<'f> {
    /// A budget for decoding `input_len` bytes of `frame`.
    pub(crate) fn new(frame: &'f Bytes, input_len: usize) -> DecodeCx<'f> {
        DecodeCx {
            frame,
            left: std::cell::Cell::new(
                input_len
                    .saturating_mul(crate::message::DECODE_MEMORY_PER_BYTE)
                    .saturating_add(crate::message::DECODE_MEMORY_BASE),
            ),
        }
    }

    pub(crate) fn frame(&self) -> &'f Bytes {
        self.frame
    }

    /// Takes an allocation of `bytes` from the budget, as glibc's malloc rounds it (16-byte
    /// chunks with an 8-byte header, 32 bytes at least), so that the bound is on real memory.
    fn charge(&self, bytes: usize) -> Result<(), nom::Err<WireError>> {
        if bytes == 0 {
            return Ok(());
        }
        let cost = bytes.saturating_add(8 + 15) & !15;
        let cost = cost.max(32);
        let left = self.left.get();
        if cost > left {
            return Err(nom::Err::Failure(WireError::OverBudget {
                needed: cost,
                left,
            }));
        }
        self.left.set(left - cost);
        Ok(())
    }

    /// Charges a vector of `n` elements of `T` (`n` already checked against the bytes present).
    pub(crate) fn charge_array<'a, T>(&self, i: &'a [u8], n: usize) -> WResult<'a, ()> {
        self.charge(n.saturating_mul(std::mem::size_of::<T>()))?;
        Ok((i, ()))
    }

    /// A nullable string, charged before its bytes are copied.
    pub(crate) fn nullable_string<'a>(
        &self,
        i: &'a [u8],
        compact: bool,
    ) -> WResult<'a, Option<String>> {
        let (rest, s) = nullable_str(i, compact)?;
        match s {
            None => Ok((rest, None)),
            Some(s) => {
                self.charge(s.len())?;
                Ok((rest, Some(s.to_owned())))
            }
        }
    }

    /// A non-null string, charged before its bytes are copied.
    pub(crate) fn string<'a>(&self, i: &'a [u8], compact: bool) -> WResult<'a, String> {
        match self.nullable_string(i, compact)? {
            (rest, Some(s)) => Ok((rest, s)),
            (_, None) => Err(nom::Err::Failure(WireError::UnexpectedNull)),
        }
    }
}

/// Walks the `count` entries of a tagged-field buffer (each must be whole) and counts those whose
/// tag `known` does not claim.
pub(crate) fn count_unknown_tags(
    mut i: &[u8],
    count: u32,
    known: impl Fn(u32) -> bool,
) -> WResult<'_, usize> {
    let start = i;
    let mut unknown = 0;
    for _ in 0..count {
        let (rest, tag) = unsigned_varint(i)?;
        let (rest, size) = unsigned_varint(rest)?;
        let (rest, _) = take_n(rest, size as usize)?;
        if !known(tag) {
            unknown += 1;
        }
        i = rest;
    }
    Ok((start, unknown))
}

/// Decodes `n` elements, already checked against the bytes present and charged to the budget:
/// the vector is allocated once, at its final size.
pub(crate) fn decode_array<'a, T>(
    mut i: &'a [u8],
    n: usize,
    mut elem: impl FnMut(&'a [u8]) -> DResult<'a, T>,
) -> DResult<'a, Vec<T>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let (rest, x) = elem(i)?;
        out.push(x);
        i = rest;
    }
    Ok((i, out))
}

pub(crate) fn put_raw_tagged<W: Sink + ?Sized>(
    w: &mut W,
    f: &RawTaggedField,
) -> Result<(), EncodeError> {
    put::unsigned_varint(w, f.tag);
    put::varint_len(w, f.data.len())?;
    w.put_slice(&f.data);
    Ok(())
}

pub(crate) fn raw_tagged_size(f: &RawTaggedField) -> usize {
    size::unsigned_varint(f.tag) + size::unsigned_varlong(f.data.len() as u64) + f.data.len()
}

/// Names the message, field and version in an encoding error from a primitive.
pub(crate) fn named(
    r: Result<(), EncodeError>,
    message: &'static str,
    field: &'static str,
    version: i16,
) -> Result<(), EncodeError> {
    r.map_err(|e| match e {
        EncodeError::TooLong { len, max, .. } => EncodeError::TooLong {
            message,
            field,
            version,
            len,
            max,
        },
        other => other,
    })
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
