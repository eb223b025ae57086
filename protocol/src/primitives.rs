//! The protocol's primitive types, written once: fixed-width integers, zig-zag varints and
//! unsigned varints, UUIDs, float64, strings, bytes and arrays in their classic (length-prefixed
//! with a fixed-width integer) and compact (unsigned varint of length + 1) forms, and tagged-field
//! buffers.
//!
//! Decoding is a set of nom parsers over `&[u8]`. None of them allocates by a length it has not
//! first checked against the bytes actually present. Encoding writes to a [`Sink`], which is a
//! `BytesMut` for ordinary messages or a [`ChunkedSink`] that leaves slots for record data the
//! broker sends with `sendfile`.
//!
//! Messages are generated from the schema (`schema/*.schema`, by `build/`); this module holds
//! only what the generated code calls.

use bytes::{Bytes, BytesMut};
use nom::bytes::complete::take;
use nom::number::complete::{be_f64, be_i16, be_i32, be_i64, be_i8, be_u16, be_u32, be_u8};

/// Why a primitive failed to decode. The generated code wraps it in a
/// [`DecodeError`](crate::decode_error::DecodeError) naming the message, version and field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("needs {needed} more bytes, {remaining} remain")]
    Truncated { needed: usize, remaining: usize },
    #[error("varint longer than {max} bytes")]
    VarintTooLong { max: usize },
    #[error("invalid length {0}")]
    InvalidLength(i64),
    #[error("null where the version does not allow it")]
    UnexpectedNull,
    #[error("{count} elements claimed with only {remaining} bytes behind them")]
    ArrayTooLong { count: usize, remaining: usize },
    #[error("string is not valid utf-8")]
    InvalidUtf8,
    #[error("invalid boolean byte {0}")]
    InvalidBool(u8),
    #[error("invalid nullable-struct marker {0}")]
    InvalidStructMarker(i8),
    #[error("tagged field {tag} declares {declared} bytes but its value used {used}")]
    TaggedFieldSize {
        tag: u32,
        declared: usize,
        used: usize,
    },
    #[error("tagged field {tag} after tag {previous}: tags must strictly increase")]
    TagOrder { tag: u32, previous: u32 },
    #[error("{0} bytes left over after the message")]
    TrailingBytes(usize),
    #[error("unknown tagged field {0} would be read as a known field once written again")]
    TagCollision(u32),
    #[error("decoding needs {needed} more bytes of memory, {left} left of the frame's budget")]
    OverBudget { needed: usize, left: usize },
}

impl<'a> nom::error::ParseError<&'a [u8]> for WireError {
    fn from_error_kind(input: &'a [u8], _kind: nom::error::ErrorKind) -> Self {
        WireError::Truncated {
            needed: 1,
            remaining: input.len(),
        }
    }
    fn append(_input: &'a [u8], _kind: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
}

/// The result of a primitive parser.
pub type WResult<'a, T> = nom::IResult<&'a [u8], T, WireError>;

fn fail<T>(e: WireError) -> Result<T, nom::Err<WireError>> {
    Err(nom::Err::Failure(e))
}

/// Takes `n` bytes, reporting how many were missing.
pub fn take_n(i: &[u8], n: usize) -> WResult<'_, &[u8]> {
    if i.len() < n {
        return fail(WireError::Truncated {
            needed: n,
            remaining: i.len(),
        });
    }
    take(n)(i)
}

macro_rules! fixed {
    ($name:ident, $t:ty, $p:expr, $n:expr) => {
        #[doc = concat!("A big-endian `", stringify!($t), "`.")]
        pub fn $name(i: &[u8]) -> WResult<'_, $t> {
            if i.len() < $n {
                return fail(WireError::Truncated {
                    needed: $n,
                    remaining: i.len(),
                });
            }
            $p(i)
        }
    };
}
fixed!(int8, i8, be_i8, 1);
fixed!(int16, i16, be_i16, 2);
fixed!(uint16, u16, be_u16, 2);
fixed!(int32, i32, be_i32, 4);
fixed!(uint32, u32, be_u32, 4);
fixed!(int64, i64, be_i64, 8);
fixed!(float64, f64, be_f64, 8);

/// A boolean: one byte, 0 or 1 (Kafka reads any non-zero as true; we keep the byte exact).
pub fn boolean(i: &[u8]) -> WResult<'_, bool> {
    let (rest, b) = uint8(i)?;
    match b {
        0 => Ok((rest, false)),
        1 => Ok((rest, true)),
        other => fail(WireError::InvalidBool(other)),
    }
}

fn uint8(i: &[u8]) -> WResult<'_, u8> {
    if i.is_empty() {
        return fail(WireError::Truncated {
            needed: 1,
            remaining: 0,
        });
    }
    be_u8(i)
}

/// An unsigned LEB128 varint of at most 5 bytes (a `u32`).
pub fn unsigned_varint(i: &[u8]) -> WResult<'_, u32> {
    let mut value: u32 = 0;
    for n in 0..5 {
        let Some(&b) = i.get(n) else {
            return fail(WireError::Truncated {
                needed: n + 1,
                remaining: i.len(),
            });
        };
        if n == 4 && b > 0x0f {
            return fail(WireError::VarintTooLong { max: 5 });
        }
        value |= u32::from(b & 0x7f) << (7 * n);
        if b & 0x80 == 0 {
            return Ok((&i[n + 1..], value));
        }
    }
    fail(WireError::VarintTooLong { max: 5 })
}

/// An unsigned LEB128 varint of at most 10 bytes (a `u64`).
pub fn unsigned_varlong(i: &[u8]) -> WResult<'_, u64> {
    let mut value: u64 = 0;
    for n in 0..10 {
        let Some(&b) = i.get(n) else {
            return fail(WireError::Truncated {
                needed: n + 1,
                remaining: i.len(),
            });
        };
        if n == 9 && b > 0x01 {
            return fail(WireError::VarintTooLong { max: 10 });
        }
        value |= u64::from(b & 0x7f) << (7 * n);
        if b & 0x80 == 0 {
            return Ok((&i[n + 1..], value));
        }
    }
    fail(WireError::VarintTooLong { max: 10 })
}

/// A zig-zag varint (`i32`).
pub fn varint(i: &[u8]) -> WResult<'_, i32> {
    let (rest, u) = unsigned_varint(i)?;
    Ok((rest, ((u >> 1) as i32) ^ -((u & 1) as i32)))
}

/// A zig-zag varlong (`i64`).
pub fn varlong(i: &[u8]) -> WResult<'_, i64> {
    let (rest, u) = unsigned_varlong(i)?;
    Ok((rest, ((u >> 1) as i64) ^ -((u & 1) as i64)))
}

/// A 16-byte UUID. Kafka's topic ids; all zeros is "no id".
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    pub const ZERO: Uuid = Uuid([0; 16]);

    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }

    /// The 128-bit value, most significant byte first as on the wire.
    pub fn as_u128(&self) -> u128 {
        u128::from_be_bytes(self.0)
    }

    pub fn from_u128(v: u128) -> Uuid {
        Uuid(v.to_be_bytes())
    }
}

impl std::fmt::Debug for Uuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

/// Kafka prints UUIDs as url-safe base64 without padding (22 characters).
impl std::fmt::Display for Uuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::with_capacity(22);
        for chunk in self.0.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            let chars = chunk.len() + 1;
            for k in 0..chars {
                out.push(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize] as char);
            }
        }
        f.write_str(&out)
    }
}

pub fn uuid(i: &[u8]) -> WResult<'_, Uuid> {
    let (rest, b) = take_n(i, 16)?;
    let mut a = [0u8; 16];
    a.copy_from_slice(b);
    Ok((rest, Uuid(a)))
}

/// Reads a length prefix: classic (`i16` for strings, `i32` otherwise) or compact (unsigned
/// varint holding length + 1). `None` is null.
fn length(i: &[u8], compact: bool, short: bool) -> WResult<'_, Option<usize>> {
    if compact {
        let (rest, n) = unsigned_varint(i)?;
        Ok((rest, n.checked_sub(1).map(|n| n as usize)))
    } else {
        let (rest, n) = if short {
            let (rest, n) = int16(i)?;
            (rest, i32::from(n))
        } else {
            int32(i)?
        };
        match n {
            -1 => Ok((rest, None)),
            n if n < 0 => fail(WireError::InvalidLength(i64::from(n))),
            n => Ok((rest, Some(n as usize))),
        }
    }
}

/// The longest string Kafka reads or writes, compact or not: its classic length is an `i16`, and
/// Kafka's generated code refuses a longer compact string too (`0x7fff`).
pub const MAX_STRING_LEN: usize = i16::MAX as usize;

/// A nullable string (classic or compact), borrowed from the input.
pub fn nullable_str(i: &[u8], compact: bool) -> WResult<'_, Option<&str>> {
    let (rest, len) = length(i, compact, true)?;
    let Some(len) = len else {
        return Ok((rest, None));
    };
    if len > MAX_STRING_LEN {
        return fail(WireError::InvalidLength(len as i64));
    }
    let (rest, b) = take_n(rest, len)?;
    match std::str::from_utf8(b) {
        Ok(s) => Ok((rest, Some(s))),
        Err(_) => fail(WireError::InvalidUtf8),
    }
}

/// A nullable string (classic or compact).
pub fn nullable_string(i: &[u8], compact: bool) -> WResult<'_, Option<String>> {
    let (rest, s) = nullable_str(i, compact)?;
    Ok((rest, s.map(str::to_owned)))
}

/// A non-null string.
pub fn string(i: &[u8], compact: bool) -> WResult<'_, String> {
    let (rest, s) = nullable_string(i, compact)?;
    match s {
        Some(s) => Ok((rest, s)),
        None => fail(WireError::UnexpectedNull),
    }
}

/// Nullable bytes (classic `i32` length or compact), sliced from `frame` without copying when
/// `i` lies inside it.
pub fn nullable_bytes<'a>(frame: &Bytes, i: &'a [u8], compact: bool) -> WResult<'a, Option<Bytes>> {
    let (rest, len) = length(i, compact, false)?;
    let Some(len) = len else {
        return Ok((rest, None));
    };
    let (rest, b) = take_n(rest, len)?;
    Ok((rest, Some(slice_of(frame, b))))
}

/// Non-null bytes.
pub fn bytes<'a>(frame: &Bytes, i: &'a [u8], compact: bool) -> WResult<'a, Bytes> {
    let (rest, b) = nullable_bytes(frame, i, compact)?;
    match b {
        Some(b) => Ok((rest, b)),
        None => fail(WireError::UnexpectedNull),
    }
}

/// `sub` as a `Bytes` sharing `frame`'s buffer when it lies inside it, else a copy.
pub fn slice_of(frame: &Bytes, sub: &[u8]) -> Bytes {
    let start = frame.as_ptr() as usize;
    let p = sub.as_ptr() as usize;
    if sub.is_empty() {
        Bytes::new()
    } else if p >= start && p + sub.len() <= start + frame.len() {
        frame.slice_ref(sub)
    } else {
        Bytes::copy_from_slice(sub)
    }
}

/// An array length prefix, checked against the bytes that remain: every element takes at least
/// `min_elem` bytes (at least one is assumed when the element could be empty), so a count that
/// cannot fit is refused before anything is allocated.
pub fn array_len(i: &[u8], compact: bool, min_elem: usize) -> WResult<'_, Option<usize>> {
    let (rest, n) = length(i, compact, false)?;
    if let Some(n) = n {
        let max = rest.len() / min_elem.max(1);
        if n > max {
            return fail(WireError::ArrayTooLong {
                count: n,
                remaining: rest.len(),
            });
        }
    }
    Ok((rest, n))
}

/// Record data: a nullable byte region that is never decoded here.
///
/// On the encode side it is either the bytes themselves or a slot: a length plus an opaque
/// handle that the broker fills with `sendfile` from a log segment (see [`ChunkedSink`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Records {
    Bytes(Bytes),
    Slot { handle: u64, len: u32 },
}

impl Records {
    pub fn len(&self) -> usize {
        match self {
            Records::Bytes(b) => b.len(),
            Records::Slot { len, .. } => *len as usize,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, when they are in memory.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Records::Bytes(b) => Some(b),
            Records::Slot { .. } => None,
        }
    }
}

impl Default for Records {
    fn default() -> Self {
        Records::Bytes(Bytes::new())
    }
}

pub fn nullable_records<'a>(
    frame: &Bytes,
    i: &'a [u8],
    compact: bool,
) -> WResult<'a, Option<Records>> {
    let (rest, b) = nullable_bytes(frame, i, compact)?;
    Ok((rest, b.map(Records::Bytes)))
}

pub fn records<'a>(frame: &Bytes, i: &'a [u8], compact: bool) -> WResult<'a, Records> {
    let (rest, b) = bytes(frame, i, compact)?;
    Ok((rest, Records::Bytes(b)))
}

/// A tagged field this code does not know: kept so it can be written back unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawTaggedField {
    pub tag: u32,
    pub data: Bytes,
}

/// One entry of a tagged-field buffer: the tag and the bytes of its value.
pub fn tagged_field<'a>(frame: &Bytes, i: &'a [u8]) -> WResult<'a, (u32, &'a [u8], Bytes)> {
    let (rest, tag) = unsigned_varint(i)?;
    let (rest, size) = unsigned_varint(rest)?;
    let (rest, data) = take_n(rest, size as usize)?;
    Ok((rest, (tag, data, slice_of(frame, data))))
}

/// Where encoded bytes go.
pub trait Sink {
    fn put_slice(&mut self, b: &[u8]);

    /// Writes record data whose length prefix has already been written.
    fn put_records(&mut self, r: &Records) -> Result<(), crate::encode_error::EncodeError> {
        match r {
            Records::Bytes(b) => {
                self.put_slice(b);
                Ok(())
            }
            Records::Slot { .. } => Err(crate::encode_error::EncodeError::RecordSlot),
        }
    }
}

impl Sink for BytesMut {
    fn put_slice(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
}

impl Sink for Vec<u8> {
    fn put_slice(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
}

/// Counts bytes; used where only a size is wanted.
#[derive(Default)]
pub struct Counter(pub usize);

impl Sink for Counter {
    fn put_slice(&mut self, b: &[u8]) {
        self.0 += b.len();
    }
    fn put_records(&mut self, r: &Records) -> Result<(), crate::encode_error::EncodeError> {
        self.0 += r.len();
        Ok(())
    }
}

/// A piece of an encoded message: encoded bytes, or a slot the caller fills with record data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    Bytes(Bytes),
    Slot { handle: u64, len: u32 },
}

/// Encodes a message as chunks: everything but record data is copied into byte chunks, and each
/// [`Records::Slot`] becomes a [`Chunk::Slot`] between them. Record data given as
/// [`Records::Bytes`] is passed through as its own chunk without copying.
#[derive(Default)]
pub struct ChunkedSink {
    chunks: Vec<Chunk>,
    current: BytesMut,
}

impl ChunkedSink {
    pub fn with_capacity(bytes: usize) -> ChunkedSink {
        ChunkedSink {
            chunks: Vec::new(),
            current: BytesMut::with_capacity(bytes),
        }
    }

    fn cut(&mut self) {
        if !self.current.is_empty() {
            let b = self.current.split().freeze();
            self.chunks.push(Chunk::Bytes(b));
        }
    }

    pub fn finish(mut self) -> Vec<Chunk> {
        self.cut();
        self.chunks
    }
}

impl Sink for ChunkedSink {
    fn put_slice(&mut self, b: &[u8]) {
        self.current.extend_from_slice(b);
    }
    fn put_records(&mut self, r: &Records) -> Result<(), crate::encode_error::EncodeError> {
        if r.is_empty() {
            return Ok(());
        }
        self.cut();
        self.chunks.push(match r {
            Records::Bytes(b) => Chunk::Bytes(b.clone()),
            Records::Slot { handle, len } => Chunk::Slot {
                handle: *handle,
                len: *len,
            },
        });
        Ok(())
    }
}

/// Encoders for the primitives, on any [`Sink`].
pub mod put {
    use super::*;

    pub fn int8<W: Sink + ?Sized>(w: &mut W, v: i8) {
        w.put_slice(&v.to_be_bytes());
    }
    pub fn int16<W: Sink + ?Sized>(w: &mut W, v: i16) {
        w.put_slice(&v.to_be_bytes());
    }
    pub fn uint16<W: Sink + ?Sized>(w: &mut W, v: u16) {
        w.put_slice(&v.to_be_bytes());
    }
    pub fn int32<W: Sink + ?Sized>(w: &mut W, v: i32) {
        w.put_slice(&v.to_be_bytes());
    }
    pub fn uint32<W: Sink + ?Sized>(w: &mut W, v: u32) {
        w.put_slice(&v.to_be_bytes());
    }
    pub fn int64<W: Sink + ?Sized>(w: &mut W, v: i64) {
        w.put_slice(&v.to_be_bytes());
    }
    pub fn float64<W: Sink + ?Sized>(w: &mut W, v: f64) {
        w.put_slice(&v.to_be_bytes());
    }
    pub fn boolean<W: Sink + ?Sized>(w: &mut W, v: bool) {
        w.put_slice(&[u8::from(v)]);
    }
    pub fn uuid<W: Sink + ?Sized>(w: &mut W, v: &Uuid) {
        w.put_slice(&v.0);
    }
    pub fn unsigned_varint<W: Sink + ?Sized>(w: &mut W, mut v: u32) {
        let mut buf = [0u8; 5];
        let mut n = 0;
        while v >= 0x80 {
            buf[n] = (v as u8) | 0x80;
            v >>= 7;
            n += 1;
        }
        buf[n] = v as u8;
        w.put_slice(&buf[..=n]);
    }
    pub fn unsigned_varlong<W: Sink + ?Sized>(w: &mut W, mut v: u64) {
        let mut buf = [0u8; 10];
        let mut n = 0;
        while v >= 0x80 {
            buf[n] = (v as u8) | 0x80;
            v >>= 7;
            n += 1;
        }
        buf[n] = v as u8;
        w.put_slice(&buf[..=n]);
    }
    pub fn varint<W: Sink + ?Sized>(w: &mut W, v: i32) {
        unsigned_varint(w, ((v << 1) ^ (v >> 31)) as u32);
    }
    pub fn varlong<W: Sink + ?Sized>(w: &mut W, v: i64) {
        unsigned_varlong(w, ((v << 1) ^ (v >> 63)) as u64);
    }

    /// The longest array, bytes or records value the wire can carry: Kafka's lengths are `int32`,
    /// compact ones included (Kafka reads a compact length into an `int`).
    pub const MAX_LENGTH: usize = i32::MAX as usize;

    fn too_long(len: usize, max: usize) -> crate::encode_error::EncodeError {
        crate::encode_error::EncodeError::TooLong {
            message: "",
            field: "",
            version: -1,
            len,
            max,
        }
    }

    /// A length prefix; `None` is null. A length the prefix cannot hold (above `i16::MAX` for a
    /// string, `i32::MAX` otherwise) is an error: wrapping it would write a frame that says
    /// something else than its bytes.
    fn length<W: Sink + ?Sized>(
        w: &mut W,
        len: Option<usize>,
        compact: bool,
        short: bool,
    ) -> Result<(), crate::encode_error::EncodeError> {
        let max = if short { MAX_STRING_LEN } else { MAX_LENGTH };
        match len {
            Some(n) if n > max => return Err(too_long(n, max)),
            _ => {}
        }
        // Both casts are in range: `n <= max <= i32::MAX`.
        match (compact, short, len) {
            (true, _, None) => unsigned_varint(w, 0),
            (true, _, Some(n)) => unsigned_varint(w, n as u32 + 1),
            (false, true, None) => int16(w, -1),
            (false, true, Some(n)) => int16(w, n as i16),
            (false, false, None) => int32(w, -1),
            (false, false, Some(n)) => int32(w, n as i32),
        }
        Ok(())
    }

    pub fn string<W: Sink + ?Sized>(
        w: &mut W,
        s: Option<&str>,
        compact: bool,
    ) -> Result<(), crate::encode_error::EncodeError> {
        length(w, s.map(str::len), compact, true)?;
        if let Some(s) = s {
            w.put_slice(s.as_bytes());
        }
        Ok(())
    }
    pub fn bytes<W: Sink + ?Sized>(
        w: &mut W,
        b: Option<&[u8]>,
        compact: bool,
    ) -> Result<(), crate::encode_error::EncodeError> {
        length(w, b.map(<[u8]>::len), compact, false)?;
        if let Some(b) = b {
            w.put_slice(b);
        }
        Ok(())
    }
    pub fn records<W: Sink + ?Sized>(
        w: &mut W,
        r: Option<&Records>,
        compact: bool,
    ) -> Result<(), crate::encode_error::EncodeError> {
        length(w, r.map(Records::len), compact, false)?;
        match r {
            Some(r) => w.put_records(r),
            None => Ok(()),
        }
    }
    pub fn array_len<W: Sink + ?Sized>(
        w: &mut W,
        n: Option<usize>,
        compact: bool,
    ) -> Result<(), crate::encode_error::EncodeError> {
        length(w, n, compact, false)
    }
    /// A count or size written as an unsigned varint (tagged fields: their number, each one's
    /// size), at most `i32::MAX` as Kafka reads it into an `int`.
    pub fn varint_len<W: Sink + ?Sized>(
        w: &mut W,
        n: usize,
    ) -> Result<(), crate::encode_error::EncodeError> {
        if n > MAX_LENGTH {
            return Err(too_long(n, MAX_LENGTH));
        }
        unsigned_varint(w, n as u32);
        Ok(())
    }
}

/// Encoded sizes of the primitives.
pub mod size {
    pub fn unsigned_varint(v: u32) -> usize {
        match v {
            0..=0x7f => 1,
            0x80..=0x3fff => 2,
            0x4000..=0x1f_ffff => 3,
            0x20_0000..=0xfff_ffff => 4,
            _ => 5,
        }
    }
    pub fn unsigned_varlong(mut v: u64) -> usize {
        let mut n = 1;
        while v >= 0x80 {
            v >>= 7;
            n += 1;
        }
        n
    }
    pub fn varint(v: i32) -> usize {
        unsigned_varint(((v << 1) ^ (v >> 31)) as u32)
    }
    pub fn varlong(v: i64) -> usize {
        unsigned_varlong(((v << 1) ^ (v >> 63)) as u64)
    }
    /// A length prefix's size; `short` is the classic `i16` prefix of strings. (A length too
    /// large for the wire is sized as if it fitted; encoding it is the error.)
    pub fn length(len: Option<usize>, compact: bool, short: bool) -> usize {
        match (compact, short, len) {
            (true, _, None) => 1,
            (true, _, Some(n)) => unsigned_varlong(n as u64 + 1),
            (false, true, _) => 2,
            (false, false, _) => 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut v = Vec::new();
        f(&mut v);
        v
    }

    #[test]
    fn unsigned_varint_known_values() {
        for (v, bytes) in [
            (0u32, vec![0x00]),
            (1, vec![0x01]),
            (127, vec![0x7f]),
            (128, vec![0x80, 0x01]),
            (300, vec![0xac, 0x02]),
            (u32::MAX, vec![0xff, 0xff, 0xff, 0xff, 0x0f]),
        ] {
            assert_eq!(enc(|w| put::unsigned_varint(w, v)), bytes);
            assert_eq!(size::unsigned_varint(v), bytes.len());
            assert_eq!(unsigned_varint(&bytes), Ok((&[][..], v)));
        }
    }

    #[test]
    fn zigzag_known_values() {
        for (v, u) in [
            (0i32, 0u32),
            (-1, 1),
            (1, 2),
            (-2, 3),
            (i32::MAX, u32::MAX - 1),
        ] {
            assert_eq!(
                enc(|w| put::varint(w, v)),
                enc(|w| put::unsigned_varint(w, u))
            );
            let b = enc(|w| put::varint(w, v));
            assert_eq!(varint(&b).map(|x| x.1), Ok(v));
            assert_eq!(size::varint(v), b.len());
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            let b = enc(|w| put::varlong(w, v));
            assert_eq!(varlong(&b).map(|x| x.1), Ok(v));
            assert_eq!(size::varlong(v), b.len());
        }
    }

    #[test]
    fn overlong_varints_are_refused() {
        assert!(unsigned_varint(&[0xff, 0xff, 0xff, 0xff, 0x1f]).is_err());
        assert!(unsigned_varint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]).is_err());
        assert!(unsigned_varlong(&[0xff; 11]).is_err());
        assert!(unsigned_varint(&[0x80]).is_err());
    }

    #[test]
    fn overlong_varlongs_are_refused() {
        // Ten bytes whose last carries more than the 64th bit.
        let mut b = [0xffu8; 10];
        b[9] = 0x02;
        assert!(matches!(
            unsigned_varlong(&b),
            Err(nom::Err::Failure(WireError::VarintTooLong { max: 10 }))
        ));
        b[9] = 0x01;
        assert_eq!(unsigned_varlong(&b).map(|x| x.1), Ok(u64::MAX));
        assert!(varint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]).is_err());
        assert!(varlong(&[0x80; 11]).is_err());
    }

    #[test]
    fn negative_lengths_other_than_null_are_refused() {
        for (b, short) in [(&[0xff, 0xfe][..], true), (&[0x80, 0x00][..], true)] {
            assert_eq!(
                length(b, false, short).err(),
                Some(nom::Err::Failure(WireError::InvalidLength(i64::from(
                    i16::from_be_bytes([b[0], b[1]])
                ))))
            );
        }
        assert!(length(&[0xff, 0xff, 0xff, 0xfe], false, false).is_err());
        assert!(length(&[0x80, 0x00, 0x00, 0x00], false, false).is_err());
        assert_eq!(
            length(&[0xff, 0xff, 0xff, 0xff], false, false).map(|x| x.1),
            Ok(None)
        );
        let frame = Bytes::from_static(b"\xff\xff\xff\xf0abcd");
        assert!(nullable_bytes(&frame, &frame, false).is_err());
        assert!(array_len(&frame, false, 1).is_err());
    }

    #[test]
    fn strings_longer_than_kafka_allows_are_refused_compact_or_not() {
        let long = "x".repeat(MAX_STRING_LEN + 1);
        let mut b = Vec::new();
        put::unsigned_varint(&mut b, long.len() as u32 + 1);
        b.extend_from_slice(long.as_bytes());
        assert_eq!(
            nullable_string(&b, true).err(),
            Some(nom::Err::Failure(WireError::InvalidLength(
                long.len() as i64
            )))
        );
        let ok = &long[1..];
        let mut b = Vec::new();
        put::string(&mut b, Some(ok), true).expect("0x7fff bytes fit");
        assert_eq!(string(&b, true).map(|x| x.1.len()), Ok(MAX_STRING_LEN));
    }

    #[test]
    fn lengths_the_wire_cannot_carry_are_encode_errors() {
        let too_long = |r: Result<(), crate::encode_error::EncodeError>| {
            matches!(r, Err(crate::encode_error::EncodeError::TooLong { .. }))
        };
        // A 32,768-byte string: its classic i16 prefix would wrap to -32768 (null-like garbage).
        let s = "x".repeat(MAX_STRING_LEN + 1);
        for compact in [false, true] {
            let mut w = Vec::new();
            assert!(too_long(put::string(&mut w, Some(&s), compact)));
            assert!(w.is_empty(), "nothing is written before the error");
            let mut w = Vec::new();
            assert!(put::string(&mut w, Some(&s[1..]), compact).is_ok());
        }
        // Arrays and bytes: the check is on the length alone, so no 2 GiB value is needed.
        let mut w = Vec::new();
        assert!(too_long(put::array_len(
            &mut w,
            Some(i32::MAX as usize + 1),
            false
        )));
        assert!(too_long(put::array_len(
            &mut w,
            Some(u32::MAX as usize),
            true
        )));
        assert!(too_long(put::array_len(&mut w, Some(usize::MAX), true)));
        assert!(too_long(put::varint_len(&mut w, i32::MAX as usize + 1)));
        assert!(w.is_empty());
        assert!(put::array_len(&mut w, Some(i32::MAX as usize), true).is_ok());
        assert_eq!(w, [0x80, 0x80, 0x80, 0x80, 0x08]);
        assert_eq!(size::length(Some(usize::MAX - 1), true, false), 10);
    }

    #[test]
    fn strings_classic_and_compact() {
        let b = enc(|w| put::string(w, Some("kafka"), false).expect("short"));
        assert_eq!(b, b"\x00\x05kafka");
        assert_eq!(string(&b, false).map(|x| x.1), Ok("kafka".to_owned()));
        let b = enc(|w| put::string(w, Some("kafka"), true).expect("short"));
        assert_eq!(b, b"\x06kafka");
        assert_eq!(nullable_string(&[0], true).map(|x| x.1), Ok(None));
        assert_eq!(nullable_string(&[0xff, 0xff], false).map(|x| x.1), Ok(None));
        assert!(string(&[0xff, 0xff], false).is_err());
        assert!(nullable_string(&[0xff, 0xfe], false).is_err());
        assert!(string(b"\x00\x09kafka", false).is_err());
        assert!(string(b"\x00\x02\xff\xfe", false).is_err());
    }

    #[test]
    fn huge_array_counts_are_refused_before_allocating() {
        // 2^31 - 1 elements with ten bytes behind them.
        let mut b = vec![0x7f, 0xff, 0xff, 0xff];
        b.extend_from_slice(&[0; 10]);
        assert!(matches!(
            array_len(&b, false, 1),
            Err(nom::Err::Failure(WireError::ArrayTooLong { .. }))
        ));
        assert_eq!(array_len(&b, false, 1).map(|x| x.1).ok(), None);
        let b = [0x03, 1, 2];
        assert_eq!(array_len(&b, true, 1).map(|x| x.1), Ok(Some(2)));
        assert!(array_len(&b, true, 2).is_err());
    }

    #[test]
    fn bytes_share_the_frame() {
        let frame = Bytes::from_static(b"\x00\x00\x00\x03abc");
        let (_, b) = bytes(&frame, &frame[..], false).expect("valid");
        assert_eq!(&b[..], b"abc");
        assert_eq!(b.as_ptr(), frame[4..].as_ptr());
    }

    #[test]
    fn uuid_prints_like_kafka() {
        assert_eq!(Uuid::ZERO.to_string(), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(Uuid([0xff; 16]).to_string(), "_____________________w");
    }

    #[test]
    fn chunked_sink_leaves_slots() {
        let mut s = ChunkedSink::default();
        s.put_slice(b"head");
        put::records(
            &mut s,
            Some(&Records::Slot {
                handle: 7,
                len: 100,
            }),
            false,
        )
        .expect("slot");
        s.put_slice(b"tail");
        let chunks = s.finish();
        assert_eq!(
            chunks,
            vec![
                Chunk::Bytes(Bytes::from_static(b"head\x00\x00\x00\x64")),
                Chunk::Slot {
                    handle: 7,
                    len: 100
                },
                Chunk::Bytes(Bytes::from_static(b"tail")),
            ]
        );
        let mut v = Vec::new();
        assert!(put::records(&mut v, Some(&Records::Slot { handle: 7, len: 1 }), false).is_err());
    }
}
