//! One record inside a RecordBatch v2, and the zig-zag varints it is made of.
//!
//! This module owns the record layout (Kafka's `DefaultRecord`), reading records out of a
//! region of record bytes without copying (keys, values and header values are `Bytes`
//! slices of the input), and writing them ([`Record::write_to`]; the batch builder,
//! [`crate::record_batch_builder`], writes its records with this module). It knows no batch
//! header: [`crate::record_batch`] owns that, and gives a record its absolute offset and
//! timestamp ([`Record::offset`], [`Record::timestamp`]). A region of records comes either from
//! an uncompressed batch ([`crate::record_batch::RecordBatch::records`]) or from a compressed
//! batch's payload decompressed elsewhere ([`RecordIter::new`]).
//!
//! ```text
//! Record =>
//!   length          varint   bytes after this field to the end of the record
//!   attributes      int8     unused, 0
//!   timestampDelta  varlong  timestamp - batch baseTimestamp
//!   offsetDelta     varint   offset - batch baseOffset
//!   keyLength       varint   -1 = null key
//!   key             bytes
//!   valueLength     varint   -1 = null value
//!   value           bytes
//!   headersCount    varint
//!   headers         [Header]
//! Header =>
//!   headerKeyLength   varint (never null)
//!   headerKey         bytes  (a UTF-8 string)
//!   headerValueLength varint   -1 = null value
//!   headerValue       bytes
//! ```
//!
//! Varints are protobuf base-128 varints of the zig-zag encoding of the value: at most 5
//! bytes for a varint (int32), 10 for a varlong (int64). Where we differ from Kafka's
//! `ByteUtils`: a last byte carrying bits beyond the type's width is rejected rather than
//! silently truncated, since no correct encoder produces one. Like Kafka, header keys are
//! not checked for UTF-8 when read (Java decodes them with replacement characters); use
//! [`RecordHeader::key_str`].

use std::iter::FusedIterator;

use crate::primitives::WireError;
use bytes::Bytes;

use crate::record_format::RecordBatchError;

/// Longest encoding of a varint (int32).
pub const MAX_VARINT_LEN: usize = 5;
/// Longest encoding of a varlong (int64).
pub const MAX_VARLONG_LEN: usize = 10;

/// One record, its variable parts as slices of the bytes it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<RecordHeader>,
}

/// One record header: a non-null key (a UTF-8 string on the wire) and a nullable value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    pub key: Bytes,
    pub value: Option<Bytes>,
}

impl RecordHeader {
    /// The key as a string, if it is valid UTF-8.
    pub fn key_str(&self) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(&self.key)
    }
}

impl Record {
    /// Appends the record to `out` as the format lays it out (the log cleaner rewrites the
    /// records it keeps this way); on error `out` is unchanged.
    pub fn write_to(&self, out: &mut Vec<u8>) -> Result<(), RecordBatchError> {
        write_record_fields(
            out,
            self.attributes,
            self.offset_delta,
            self.timestamp_delta,
            self.key.as_deref(),
            self.value.as_deref(),
            self.headers
                .iter()
                .map(|h| (&h.key[..], h.value.as_deref())),
        )
    }
}

/// Reads `record_count` records from a region of record bytes, then requires the region to
/// be used up exactly (Kafka: "Incorrect declared batch size, records still remaining").
///
/// Byte positions in errors count from the start of the region, or from the start of the
/// batch for [`crate::record_batch::RecordBatch::records`]. After the first error the iterator ends.
#[derive(Debug, Clone)]
pub struct RecordIter {
    records: Bytes,
    position: usize,
    base_position: usize,
    index: usize,
    record_count: usize,
    done: bool,
}

impl RecordIter {
    /// Iterates the `record_count` records of `records`, e.g. a compressed batch's payload
    /// after decompression (`record_count` is then the batch's recordCount).
    pub fn new(records: Bytes, record_count: usize) -> RecordIter {
        RecordIter::with_base_position(records, record_count, 0)
    }

    pub(crate) fn with_base_position(
        records: Bytes,
        record_count: usize,
        base_position: usize,
    ) -> RecordIter {
        RecordIter {
            records,
            position: 0,
            base_position,
            index: 0,
            record_count,
            done: false,
        }
    }
}

impl Iterator for RecordIter {
    type Item = Result<Record, RecordBatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let remaining = self.records.len().saturating_sub(self.position);
        if self.index == self.record_count {
            self.done = true;
            return (remaining > 0).then(|| {
                Err(RecordBatchError::TrailingBytes {
                    position: self.base_position + self.position,
                    remaining,
                    record_count: self.record_count,
                })
            });
        }
        if remaining == 0 {
            self.done = true;
            return Some(Err(RecordBatchError::RecordCountMismatch {
                declared: self.record_count,
                found: self.index,
            }));
        }
        match read_record(&self.records, self.position, self.base_position, self.index) {
            Ok((record, end)) => {
                self.position = end;
                self.index += 1;
                Some(Ok(record))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done {
            (0, Some(0))
        } else {
            // Possibly one more item than records left: the trailing-bytes error.
            (0, Some(self.record_count - self.index + 1))
        }
    }
}

impl FusedIterator for RecordIter {}

/// Why a varint could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VarintFault {
    /// The input ended before the last byte.
    Truncated,
    /// More bytes than the type allows, or bits beyond its width.
    Invalid,
}

/// A decoded value and the number of bytes it took.
type Decoded<T> = Result<(T, usize), VarintFault>;

/// Adapts a primitive varint parser (the one definition of the format, in `primitives`).
fn decoded<T>(buf: &[u8], r: crate::primitives::WResult<'_, T>) -> Decoded<T> {
    match r {
        Ok((rest, v)) => Ok((v, buf.len() - rest.len())),
        Err(
            nom::Err::Error(WireError::Truncated { .. })
            | nom::Err::Failure(WireError::Truncated { .. }),
        ) => Err(VarintFault::Truncated),
        Err(_) => Err(VarintFault::Invalid),
    }
}

fn decode_varint(buf: &[u8]) -> Decoded<i32> {
    decoded(buf, crate::primitives::varint(buf))
}

fn decode_varlong(buf: &[u8]) -> Decoded<i64> {
    decoded(buf, crate::primitives::varlong(buf))
}

/// Appends `v` as a zig-zag varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, v: i32) {
    crate::primitives::put::varint(out, v);
}

/// Appends `v` as a zig-zag varlong.
pub(crate) fn put_varlong(out: &mut Vec<u8>, v: i64) {
    crate::primitives::put::varlong(out, v);
}

/// A cursor over one record, naming the record and field in its errors.
struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
    end: usize,
    base: usize,
    index: usize,
}

impl Reader<'_> {
    fn truncated(&self, field: &'static str) -> RecordBatchError {
        RecordBatchError::RecordTruncated {
            index: self.index,
            position: self.base + self.pos,
            field,
        }
    }

    fn rest(&self) -> &[u8] {
        self.buf.get(self.pos..self.end).unwrap_or_default()
    }

    fn varint_with<T>(
        &mut self,
        field: &'static str,
        decode: fn(&[u8]) -> Decoded<T>,
    ) -> Result<T, RecordBatchError> {
        match decode(self.rest()) {
            Ok((v, len)) => {
                self.pos += len;
                Ok(v)
            }
            Err(VarintFault::Truncated) => Err(self.truncated(field)),
            Err(VarintFault::Invalid) => Err(RecordBatchError::InvalidVarint {
                index: self.index,
                position: self.base + self.pos,
                field,
            }),
        }
    }

    fn varint(&mut self, field: &'static str) -> Result<i32, RecordBatchError> {
        self.varint_with(field, decode_varint)
    }

    fn varlong(&mut self, field: &'static str) -> Result<i64, RecordBatchError> {
        self.varint_with(field, decode_varlong)
    }

    fn i8(&mut self, field: &'static str) -> Result<i8, RecordBatchError> {
        let byte = *self.rest().first().ok_or_else(|| self.truncated(field))?;
        self.pos += 1;
        Ok(byte as i8)
    }

    /// Reads a length varint that must be >= 0.
    fn length(&mut self, field: &'static str) -> Result<usize, RecordBatchError> {
        let position = self.base + self.pos;
        let length = self.varint(field)?;
        usize::try_from(length).map_err(|_| RecordBatchError::InvalidLength {
            index: self.index,
            position,
            field,
            length,
        })
    }

    /// Reads a length varint that must be >= 0, or -1 for null.
    fn nullable_length(&mut self, field: &'static str) -> Result<Option<usize>, RecordBatchError> {
        let start = self.pos;
        if self.varint(field)? == -1 {
            return Ok(None);
        }
        self.pos = start;
        self.length(field).map(Some)
    }

    fn bytes(&mut self, len: usize, field: &'static str) -> Result<Bytes, RecordBatchError> {
        if len > self.rest().len() {
            return Err(self.truncated(field));
        }
        let slice = self.buf.slice(self.pos..self.pos + len);
        self.pos += len;
        Ok(slice)
    }

    fn nullable_bytes(
        &mut self,
        length_field: &'static str,
        field: &'static str,
    ) -> Result<Option<Bytes>, RecordBatchError> {
        match self.nullable_length(length_field)? {
            None => Ok(None),
            Some(len) => self.bytes(len, field).map(Some),
        }
    }
}

/// Reads the record starting at `start` in `buf`; returns it and the position after it.
fn read_record(
    buf: &Bytes,
    start: usize,
    base: usize,
    index: usize,
) -> Result<(Record, usize), RecordBatchError> {
    let mut r = Reader {
        buf,
        pos: start,
        end: buf.len(),
        base,
        index,
    };
    let length = r.length("record length")?;
    let body_start = r.pos;
    let body_end = match body_start.checked_add(length) {
        Some(end) if end <= buf.len() => end,
        _ => return Err(r.truncated("record body")),
    };
    r.end = body_end;
    let attributes = r.i8("attributes")?;
    let timestamp_delta = r.varlong("timestamp delta")?;
    let offset_delta = r.varint("offset delta")?;
    let key = r.nullable_bytes("key length", "key")?;
    let value = r.nullable_bytes("value length", "value")?;
    let header_count = r.length("header count")?;
    // Each header takes at least two bytes: never reserve more than the body could hold.
    let mut headers = Vec::with_capacity(header_count.min((body_end - r.pos) / 2));
    for _ in 0..header_count {
        let key_len = r.length("header key length")?;
        let key = r.bytes(key_len, "header key")?;
        let value = r.nullable_bytes("header value length", "header value")?;
        headers.push(RecordHeader { key, value });
    }
    if r.pos != body_end {
        return Err(RecordBatchError::RecordSizeMismatch {
            index,
            position: base + start,
            declared: length,
            consumed: r.pos - body_start,
        });
    }
    let record = Record {
        attributes,
        timestamp_delta,
        offset_delta,
        key,
        value,
        headers,
    };
    Ok((record, body_end))
}

/// A length as the format's int32, or the builder's overflow error naming `what`.
fn length_i32(len: usize, what: &'static str) -> Result<i32, RecordBatchError> {
    i32::try_from(len).map_err(|_| RecordBatchError::BuilderOverflow { what })
}

fn put_nullable(
    out: &mut Vec<u8>,
    bytes: Option<&[u8]>,
    what: &'static str,
) -> Result<(), RecordBatchError> {
    match bytes {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, length_i32(b.len(), what)?);
            out.extend_from_slice(b);
        }
    }
    Ok(())
}

/// Appends one record (attributes 0) to `out`; on error `out` is unchanged.
pub(crate) fn write_record(
    out: &mut Vec<u8>,
    offset_delta: i32,
    timestamp_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[(&str, Option<&[u8]>)],
) -> Result<(), RecordBatchError> {
    write_record_fields(
        out,
        0,
        offset_delta,
        timestamp_delta,
        key,
        value,
        headers.iter().map(|(k, v)| (k.as_bytes(), *v)),
    )
}

/// The one writer of the record layout: appends a record to `out`; on error `out` is unchanged.
fn write_record_fields<'a>(
    out: &mut Vec<u8>,
    attributes: i8,
    offset_delta: i32,
    timestamp_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: impl ExactSizeIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
) -> Result<(), RecordBatchError> {
    let mut body = Vec::new();
    body.extend_from_slice(&attributes.to_be_bytes());
    put_varlong(&mut body, timestamp_delta);
    put_varint(&mut body, offset_delta);
    put_nullable(&mut body, key, "key length")?;
    put_nullable(&mut body, value, "value length")?;
    put_varint(&mut body, length_i32(headers.len(), "header count")?);
    for (key, value) in headers {
        put_nullable(&mut body, Some(key), "header key length")?;
        put_nullable(&mut body, value, "header value length")?;
    }
    put_varint(out, length_i32(body.len(), "record length")?);
    out.extend_from_slice(&body);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::record_batch::{RecordBatch, RECORD_BATCH_OVERHEAD};
    use crate::record_batch_builder::RecordBatchBuilder;
    use proptest::prelude::*;

    fn records(batch: &RecordBatch) -> Vec<Record> {
        batch.records().unwrap().collect::<Result<_, _>>().unwrap()
    }

    fn varint_bytes(v: i32) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        out
    }

    #[test]
    fn a_record_written_back_reads_the_same_bytes_and_fields() {
        let mut b = RecordBatchBuilder::new(0);
        b.append(
            10,
            Some(b"k"),
            Some(b"v"),
            &[("h", Some(b"x")), ("n", None)],
        )
        .unwrap();
        b.append(7, None, None, &[]).unwrap();
        let bytes = b.build();
        let batch = RecordBatch::parse(bytes.clone()).unwrap();
        let mut out = Vec::new();
        for r in records(&batch) {
            r.write_to(&mut out).unwrap();
        }
        assert_eq!(&out[..], &bytes[RECORD_BATCH_OVERHEAD..]);
        let again: Vec<Record> = RecordIter::new(Bytes::from(out), 2)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(again, records(&batch));
    }

    #[test]
    fn varint_known_encodings() {
        // Zig-zag: 0 -> 0, -1 -> 1, 1 -> 2, -2 -> 3, as Kafka's ByteUtils.
        assert_eq!(varint_bytes(0), [0x00]);
        assert_eq!(varint_bytes(-1), [0x01]);
        assert_eq!(varint_bytes(1), [0x02]);
        assert_eq!(varint_bytes(-2), [0x03]);
        assert_eq!(varint_bytes(64), [0x80, 0x01]);
        assert_eq!(varint_bytes(i32::MIN), [0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(
            decode_varint(&[0xff, 0xff, 0xff, 0xff, 0x0f]),
            Ok((i32::MIN, 5))
        );
        assert_eq!(
            decode_varint(&[0xfe, 0xff, 0xff, 0xff, 0x0f]),
            Ok((i32::MAX, 5))
        );
        // Non-minimal but within 5 bytes is accepted, as in Kafka.
        assert_eq!(decode_varint(&[0x80, 0x00]), Ok((0, 2)));
        let mut long = Vec::new();
        put_varlong(&mut long, i64::MIN);
        assert_eq!(
            long,
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        assert_eq!(decode_varlong(&long), Ok((i64::MIN, 10)));
    }

    #[test]
    fn varint_rejects_overlong_and_overflowing() {
        assert_eq!(
            decode_varint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]),
            Err(VarintFault::Invalid)
        );
        assert_eq!(
            decode_varint(&[0xff, 0xff, 0xff, 0xff, 0x10]),
            Err(VarintFault::Invalid)
        );
        assert_eq!(decode_varint(&[0x80, 0x80]), Err(VarintFault::Truncated));
        assert_eq!(decode_varint(&[]), Err(VarintFault::Truncated));
        assert_eq!(decode_varlong(&[0xff; 10]), Err(VarintFault::Invalid));
        let mut too_wide = [0xff; 10];
        too_wide[9] = 0x02;
        assert_eq!(decode_varlong(&too_wide), Err(VarintFault::Invalid));
        assert_eq!(decode_varlong(&[0x80; 11]), Err(VarintFault::Invalid));
        assert_eq!(decode_varlong(&[0x80; 9]), Err(VarintFault::Truncated));
    }

    fn one_record(body: &[u8]) -> Bytes {
        let mut out = Vec::new();
        put_varint(&mut out, body.len() as i32);
        out.extend_from_slice(body);
        Bytes::from(out)
    }

    #[test]
    fn record_field_errors_name_field_and_position() {
        // attributes, ts delta 0, offset delta 0, key length -2.
        let bad_key = one_record(&[0, 0, 0, 0x03]);
        let err = RecordIter::new(bad_key, 1).next().unwrap().unwrap_err();
        assert_eq!(
            err,
            RecordBatchError::InvalidLength {
                index: 0,
                position: 4,
                field: "key length",
                length: -2
            }
        );
        assert!(err.to_string().contains("key length"), "{err}");
        // Header key must not be null.
        let null_header_key = one_record(&[0, 0, 0, 0x01, 0x01, 0x02, 0x01]);
        let err = RecordIter::new(null_header_key, 1)
            .next()
            .unwrap()
            .unwrap_err();
        assert!(matches!(
            err,
            RecordBatchError::InvalidLength {
                field: "header key length",
                ..
            }
        ));
        // Negative header count.
        let neg_headers = one_record(&[0, 0, 0, 0x01, 0x01, 0x01]);
        let err = RecordIter::new(neg_headers, 1).next().unwrap().unwrap_err();
        assert!(matches!(
            err,
            RecordBatchError::InvalidLength {
                field: "header count",
                ..
            }
        ));
        // A body longer than its fields.
        let slack = one_record(&[0, 0, 0, 0x01, 0x01, 0x00, 0x00]);
        let err = RecordIter::new(slack, 1).next().unwrap().unwrap_err();
        assert_eq!(
            err,
            RecordBatchError::RecordSizeMismatch {
                index: 0,
                position: 0,
                declared: 7,
                consumed: 6
            }
        );
        // A key running past the record's declared length.
        let long_key = one_record(&[0, 0, 0, 0x08, b'a']);
        let err = RecordIter::new(long_key, 1).next().unwrap().unwrap_err();
        assert!(matches!(
            err,
            RecordBatchError::RecordTruncated { field: "key", .. }
        ));
        // Negative record length.
        let err = RecordIter::new(Bytes::from_static(&[0x03]), 1)
            .next()
            .unwrap()
            .unwrap_err();
        assert!(matches!(
            err,
            RecordBatchError::InvalidLength {
                field: "record length",
                ..
            }
        ));
    }

    #[test]
    fn iterator_checks_count_against_bytes() {
        let mut buf = Vec::new();
        write_record(&mut buf, 0, 0, Some(b"k"), None, &[]).unwrap();
        let region = Bytes::from(buf);
        assert_eq!(
            RecordIter::new(region.clone(), 1)
                .filter(Result::is_err)
                .count(),
            0
        );
        let errs: Vec<_> = RecordIter::new(region.clone(), 2)
            .filter_map(Result::err)
            .collect();
        assert_eq!(
            errs,
            [RecordBatchError::RecordCountMismatch {
                declared: 2,
                found: 1
            }]
        );
        let errs: Vec<_> = RecordIter::new(region, 0).filter_map(Result::err).collect();
        assert!(matches!(
            errs[..],
            [RecordBatchError::TrailingBytes { position: 0, .. }]
        ));
    }

    #[test]
    fn huge_header_count_does_not_allocate_it() {
        // Header count i32::MAX in a 6-byte body: fails on truncation, reserving nothing big.
        let body = [0, 0, 0, 0x01, 0x01, 0xfe, 0xff, 0xff, 0xff, 0x0f];
        let err = RecordIter::new(one_record(&body), 1)
            .next()
            .unwrap()
            .unwrap_err();
        assert!(matches!(
            err,
            RecordBatchError::RecordTruncated {
                field: "header key length",
                ..
            }
        ));
    }

    proptest! {
        #[test]
        fn varint_round_trips(v in any::<i32>(), w in any::<i64>()) {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            prop_assert!(out.len() <= MAX_VARINT_LEN);
            prop_assert_eq!(decode_varint(&out), Ok((v, out.len())));
            out.clear();
            put_varlong(&mut out, w);
            prop_assert!(out.len() <= MAX_VARLONG_LEN);
            prop_assert_eq!(decode_varlong(&out), Ok((w, out.len())));
        }

        #[test]
        fn arbitrary_regions_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200),
                                         count in 0usize..1000) {
            let iter = RecordIter::new(Bytes::from(bytes), count);
            // Ends within count + 1 items, after the first error at the latest.
            let items: Vec<_> = iter.collect();
            prop_assert!(items.len() <= count + 1);
            prop_assert!(items.iter().filter(|r| r.is_err()).count() <= 1);
        }
    }
}
