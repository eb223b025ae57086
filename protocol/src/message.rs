//! What every generated message is: the [`Message`] trait, its versions, the decoder's result
//! type and the memory budget decoding is held to.

use crate::decode_error::DecodeError;
use crate::encode_error::EncodeError;
use crate::primitives::Sink;
#[cfg(any(test, feature = "testing"))]
use crate::testing;

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
