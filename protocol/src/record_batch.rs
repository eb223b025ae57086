//! RecordBatch v2 (magic 2): a zero-copy view and in-place offset assignment.
//!
//! This module owns the batch header view: reading it ([`RecordBatch`]), splitting a
//! concatenation of batches ([`RecordBatch::batches`]), validating a batch as the produce path
//! must ([`RecordBatch::validate`]) and rewriting the fields the broker assigns
//! ([`RecordBatchMut`]). The header layout, flags, [`Compression`], [`TimestampType`] and
//! [`RecordBatchError`] are defined in [`crate::record_format`] and re-exported here. Records
//! themselves are in [`crate::record`]; [`RecordBatchBuilder`], which writes them into
//! uncompressed batches of the broker's own, is in [`crate::record_batch_builder`] (re-exported
//! here). Compression is never acted on here: a compressed
//! batch's payload is exposed as bytes ([`RecordBatch::records_bytes`]) for whoever
//! decompresses it; offset assignment never needs to.
//!
//! Nothing in this module panics on input or allocates by a length read from input.

use std::iter::FusedIterator;
use std::mem;

use bytes::Bytes;

use crate::record::{Record, RecordIter};
pub use crate::record_batch_builder::RecordBatchBuilder;
pub use crate::record_format::{
    crc32c, Compression, RecordBatchError, TimestampType, ATTRIBUTES_OFFSET, BASE_OFFSET_OFFSET,
    BASE_SEQUENCE_OFFSET, BASE_TIMESTAMP_OFFSET, COMPRESSION_CODEC_MASK, CONTROL_FLAG_MASK,
    CRC_OFFSET, CRC_START, DELETE_HORIZON_FLAG_MASK, LAST_OFFSET_DELTA_OFFSET, LENGTH_OFFSET,
    LOG_OVERHEAD, MAGIC_OFFSET, MAGIC_V2, MAX_TIMESTAMP_OFFSET, NO_PARTITION_LEADER_EPOCH,
    NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, PARTITION_LEADER_EPOCH_OFFSET,
    PRODUCER_EPOCH_OFFSET, PRODUCER_ID_OFFSET, RECORDS_COUNT_OFFSET, RECORDS_OFFSET,
    RECORD_BATCH_OVERHEAD, TIMESTAMP_TYPE_MASK, TRANSACTIONAL_FLAG_MASK,
};
use crate::record_format::{crc_of, field, put_field, timestamp_type_of};

/// Getters for the fixed-width header fields of a view whose field `$buf` holds the header.
macro_rules! header_getters {
    ($buf:ident; $($(#[$doc:meta])* $name:ident: $ty:ty = $at:ident;)*) => {$(
        $(#[$doc])*
        pub fn $name(&self) -> $ty {
            <$ty>::from_be_bytes(field(&self.$buf, $at))
        }
    )*};
}

/// Checks that `buf` is exactly one v2 batch by its length fields and magic.
fn check_view(buf: &[u8]) -> Result<(), RecordBatchError> {
    if buf.len() < RECORD_BATCH_OVERHEAD {
        return Err(RecordBatchError::TooShort { size: buf.len() });
    }
    let base_offset = i64::from_be_bytes(field(buf, BASE_OFFSET_OFFSET));
    let batch_length = i32::from_be_bytes(field(buf, LENGTH_OFFSET));
    if usize::try_from(batch_length).ok() != Some(buf.len() - LOG_OVERHEAD) {
        return Err(RecordBatchError::LengthMismatch {
            base_offset,
            batch_length,
            size: buf.len(),
        });
    }
    let magic = i8::from_be_bytes(field(buf, MAGIC_OFFSET));
    if magic != MAGIC_V2 {
        return Err(RecordBatchError::UnsupportedMagic { base_offset, magic });
    }
    Ok(())
}

/// The size of the batch at the start of `rest` (found `position` bytes into the input), if
/// `rest` holds all of it.
fn frame_len(rest: &[u8], position: usize) -> Result<usize, RecordBatchError> {
    let available = rest.len();
    if available < LOG_OVERHEAD {
        return Err(RecordBatchError::Truncated {
            position,
            needed: LOG_OVERHEAD,
            available,
        });
    }
    let base_offset = i64::from_be_bytes(field(rest, BASE_OFFSET_OFFSET));
    let batch_length = i32::from_be_bytes(field(rest, LENGTH_OFFSET));
    let body = usize::try_from(batch_length)
        .ok()
        .filter(|&len| len >= RECORD_BATCH_OVERHEAD - LOG_OVERHEAD)
        .ok_or(RecordBatchError::InvalidBatchLength {
            base_offset,
            batch_length,
        })?;
    let needed = LOG_OVERHEAD + body;
    if available < needed {
        return Err(RecordBatchError::Truncated {
            position,
            needed,
            available,
        });
    }
    Ok(needed)
}

/// A read-only view over exactly one RecordBatch v2, as Kafka's `DefaultRecordBatch`:
///
/// ```text
/// offset  field                 type    notes
///      0  baseOffset            int64   assigned by the broker (outside the CRC)
///      8  batchLength           int32   bytes after this field to the end of the batch
///     12  partitionLeaderEpoch  int32   assigned by the broker (outside the CRC)
///     16  magic                 int8    2
///     17  crc                   uint32  CRC-32C (Castagnoli) of bytes 21..end
///     21  attributes            int16   bits 0-2 compression (0 none, 1 gzip, 2 snappy,
///                                       3 lz4, 4 zstd), 3 timestamp type (1 = LogAppendTime),
///                                       4 isTransactional, 5 isControlBatch,
///                                       6 hasDeleteHorizonMs
///     23  lastOffsetDelta       int32   offset of the last record - baseOffset
///     27  baseTimestamp         int64   first record's timestamp (or the delete horizon)
///     35  maxTimestamp          int64   largest record timestamp (the append time for
///                                       LogAppendTime)
///     43  producerId            int64   -1 if none
///     51  producerEpoch         int16   -1 if none
///     53  baseSequence          int32   -1 if none
///     57  recordCount           int32
///     61  records               [Record], compressed as a whole if the codec is not none
/// ```
///
/// All integers are big-endian. [`RecordBatch::parse`] checks only the length fields and the
/// magic; [`RecordBatch::validate`] checks the rest. A view is immutable (`Send + Sync`);
/// cloning it shares the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    bytes: Bytes,
}

impl RecordBatch {
    /// Views `bytes` as one batch: at least the header, batchLength equal to the bytes after
    /// it, magic 2. Checks nothing else; see [`RecordBatch::validate`].
    pub fn parse(bytes: Bytes) -> Result<RecordBatch, RecordBatchError> {
        check_view(&bytes)?;
        Ok(RecordBatch { bytes })
    }

    /// Splits a concatenation of batches (a Produce request's records, a log segment read)
    /// into views sharing `bytes`. A truncated or malformed batch yields one error and ends
    /// the iteration; positions in errors count from the start of `bytes`. (Fetched data may
    /// end in a partial batch; a reader that tolerates that stops at the `Truncated` error.)
    pub fn batches(bytes: Bytes) -> Batches {
        Batches {
            bytes,
            position: 0,
            done: false,
        }
    }

    header_getters! { bytes;
        base_offset: i64 = BASE_OFFSET_OFFSET;
        batch_length: i32 = LENGTH_OFFSET;
        partition_leader_epoch: i32 = PARTITION_LEADER_EPOCH_OFFSET;
        magic: i8 = MAGIC_OFFSET;
        /// The CRC stored in the header.
        crc: u32 = CRC_OFFSET;
        attributes: i16 = ATTRIBUTES_OFFSET;
        last_offset_delta: i32 = LAST_OFFSET_DELTA_OFFSET;
        base_timestamp: i64 = BASE_TIMESTAMP_OFFSET;
        max_timestamp: i64 = MAX_TIMESTAMP_OFFSET;
        producer_id: i64 = PRODUCER_ID_OFFSET;
        producer_epoch: i16 = PRODUCER_EPOCH_OFFSET;
        base_sequence: i32 = BASE_SEQUENCE_OFFSET;
        record_count: i32 = RECORDS_COUNT_OFFSET;
    }

    /// The CRC-32C of the bytes the header's CRC covers (attributes to the end).
    pub fn compute_crc(&self) -> u32 {
        crc_of(&self.bytes)
    }

    /// The codec, or an error for the undefined codec ids 5-7.
    pub fn compression(&self) -> Result<Compression, RecordBatchError> {
        let codec = (self.attributes() & COMPRESSION_CODEC_MASK) as u8; // 0..=7
        Compression::from_id(codec).ok_or(RecordBatchError::UnknownCompression {
            base_offset: self.base_offset(),
            codec,
        })
    }

    pub fn timestamp_type(&self) -> TimestampType {
        timestamp_type_of(self.attributes())
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes() & TRANSACTIONAL_FLAG_MASK != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes() & CONTROL_FLAG_MASK != 0
    }

    pub fn has_delete_horizon_ms(&self) -> bool {
        self.attributes() & DELETE_HORIZON_FLAG_MASK != 0
    }

    /// The delete horizon the log cleaner stored in baseTimestamp, if the flag says so.
    pub fn delete_horizon_ms(&self) -> Option<i64> {
        self.has_delete_horizon_ms().then(|| self.base_timestamp())
    }

    /// Whether the batch comes from an idempotent or transactional producer.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id() > NO_PRODUCER_ID
    }

    /// baseOffset + lastOffsetDelta (wrapping, as Java's long arithmetic).
    pub fn last_offset(&self) -> i64 {
        self.base_offset()
            .wrapping_add(i64::from(self.last_offset_delta()))
    }

    /// The offset after this batch: last_offset() + 1.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().wrapping_add(1)
    }

    pub fn size_in_bytes(&self) -> usize {
        self.bytes.len()
    }

    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// The bytes after the header: the records, or their compressed form.
    pub fn records_bytes(&self) -> Bytes {
        self.bytes.slice(RECORDS_OFFSET..)
    }

    /// Magic and CRC only: what every stored batch must pass (Kafka's `ensureValid`), e.g.
    /// at log recovery or on a follower's fetch.
    pub fn ensure_valid(&self) -> Result<(), RecordBatchError> {
        let base_offset = self.base_offset();
        let magic = self.magic();
        if magic != MAGIC_V2 {
            return Err(RecordBatchError::UnsupportedMagic { base_offset, magic });
        }
        let (stored, computed) = (self.crc(), self.compute_crc());
        if stored != computed {
            return Err(RecordBatchError::CrcMismatch {
                base_offset,
                stored,
                computed,
            });
        }
        Ok(())
    }

    /// Everything the produce path requires of a batch a client sent (Kafka's
    /// `LogValidator.validateBatch` plus its record checks): [`ensure_valid`], a known codec,
    /// recordCount >= 1 and equal to lastOffsetDelta + 1, a base sequence for a producer id,
    /// and for an uncompressed batch exactly recordCount records with offset deltas 0, 1, 2...
    /// using up the batch's bytes. Compressed records are not looked at.
    ///
    /// Batches the log cleaner rewrote (empty, or with gaps in the offset deltas) fail this;
    /// check those with [`ensure_valid`].
    ///
    /// [`ensure_valid`]: RecordBatch::ensure_valid
    pub fn validate(&self) -> Result<(), RecordBatchError> {
        self.validate_header()?;
        if self.compression()? != Compression::None {
            return Ok(());
        }
        let base_offset = self.base_offset();
        for (index, record) in self.records()?.enumerate() {
            let offset_delta = record?.offset_delta;
            // index < record_count <= i32::MAX, checked by validate_header.
            let expected = i32::try_from(index).unwrap_or(i32::MAX);
            if offset_delta != expected {
                return Err(RecordBatchError::OffsetDeltaMismatch {
                    base_offset,
                    index,
                    offset_delta,
                    expected,
                });
            }
        }
        Ok(())
    }

    /// What the produce path checks of a client's batch without walking its records (the
    /// payload is never decoded there; the CRC covers it): [`ensure_valid`], a known codec,
    /// recordCount >= 1 and equal to lastOffsetDelta + 1, and a base sequence for a producer id.
    ///
    /// [`ensure_valid`]: RecordBatch::ensure_valid
    pub fn validate_header(&self) -> Result<(), RecordBatchError> {
        self.ensure_valid()?;
        let base_offset = self.base_offset();
        self.compression()?;
        let record_count = self.record_count();
        if record_count <= 0 {
            return Err(RecordBatchError::InvalidRecordCount {
                base_offset,
                record_count,
            });
        }
        let last_offset_delta = self.last_offset_delta();
        if i64::from(last_offset_delta) + 1 != i64::from(record_count) {
            return Err(RecordBatchError::LastOffsetDeltaMismatch {
                base_offset,
                last_offset_delta,
                record_count,
            });
        }
        if self.has_producer_id() && self.base_sequence() < 0 {
            return Err(RecordBatchError::InvalidSequence {
                base_offset,
                producer_id: self.producer_id(),
                base_sequence: self.base_sequence(),
            });
        }
        Ok(())
    }

    /// The records of an uncompressed batch, read lazily without copying. Checks neither the
    /// CRC nor the offset deltas; see [`RecordBatch::validate`].
    pub fn records(&self) -> Result<RecordIter, RecordBatchError> {
        let base_offset = self.base_offset();
        let compression = self.compression()?;
        if compression != Compression::None {
            return Err(RecordBatchError::Compressed {
                base_offset,
                compression,
            });
        }
        let record_count = self.record_count();
        let count =
            usize::try_from(record_count).map_err(|_| RecordBatchError::InvalidRecordCount {
                base_offset,
                record_count,
            })?;
        Ok(RecordIter::with_base_position(
            self.records_bytes(),
            count,
            RECORDS_OFFSET,
        ))
    }
}

/// A record's place in its batch: its absolute offset and timestamp depend on the batch
/// header, so they are computed here rather than in [`crate::record`], which knows no batch.
impl Record {
    /// The record's absolute offset in `batch`: baseOffset + offsetDelta.
    pub fn offset(&self, batch: &RecordBatch) -> i64 {
        batch
            .base_offset()
            .wrapping_add(i64::from(self.offset_delta))
    }

    /// The record's timestamp in `batch`: the batch's maxTimestamp for LogAppendTime (as in
    /// Kafka, every record then carries the append time), else baseTimestamp + timestampDelta.
    pub fn timestamp(&self, batch: &RecordBatch) -> i64 {
        match batch.timestamp_type() {
            TimestampType::LogAppendTime => batch.max_timestamp(),
            TimestampType::CreateTime => batch.base_timestamp().wrapping_add(self.timestamp_delta),
        }
    }
}

/// The batches of a concatenation; see [`RecordBatch::batches`].
#[derive(Debug, Clone)]
pub struct Batches {
    bytes: Bytes,
    position: usize,
    done: bool,
}

impl Iterator for Batches {
    type Item = Result<RecordBatch, RecordBatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.bytes.get(self.position..).unwrap_or_default();
        if self.done || rest.is_empty() {
            return None;
        }
        let batch = frame_len(rest, self.position).and_then(|len| {
            let batch = self.bytes.slice(self.position..self.position + len);
            self.position += len;
            RecordBatch::parse(batch)
        });
        self.done = batch.is_err();
        Some(batch)
    }
}

impl FusedIterator for Batches {}

/// A mutable view over exactly one batch in a buffer the caller owns, for the fields the
/// broker assigns on append. Record bytes are never touched.
///
/// Rewriting maxTimestamp recomputes the CRC over whatever the batch holds, so a batch must
/// be validated before it is rewritten, or a corrupt one would come out with a good CRC.
#[derive(Debug)]
pub struct RecordBatchMut<'a> {
    buf: &'a mut [u8],
}

impl<'a> RecordBatchMut<'a> {
    /// Views `buf` as one batch; the same checks as [`RecordBatch::parse`].
    pub fn new(buf: &'a mut [u8]) -> Result<RecordBatchMut<'a>, RecordBatchError> {
        check_view(buf)?;
        Ok(RecordBatchMut { buf })
    }

    /// Splits a buffer holding a concatenation of batches into mutable views, as
    /// [`RecordBatch::batches`] does for shared bytes.
    pub fn batches(buf: &'a mut [u8]) -> BatchesMut<'a> {
        BatchesMut {
            rest: buf,
            position: 0,
            done: false,
        }
    }

    header_getters! { buf;
        base_offset: i64 = BASE_OFFSET_OFFSET;
        partition_leader_epoch: i32 = PARTITION_LEADER_EPOCH_OFFSET;
        crc: u32 = CRC_OFFSET;
        attributes: i16 = ATTRIBUTES_OFFSET;
        max_timestamp: i64 = MAX_TIMESTAMP_OFFSET;
    }

    pub fn timestamp_type(&self) -> TimestampType {
        timestamp_type_of(self.attributes())
    }

    pub fn compute_crc(&self) -> u32 {
        crc_of(self.buf)
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buf
    }

    /// Sets baseOffset (outside the CRC).
    pub fn set_base_offset(&mut self, base_offset: i64) {
        put_field(self.buf, BASE_OFFSET_OFFSET, &base_offset.to_be_bytes());
    }

    /// Sets partitionLeaderEpoch (outside the CRC).
    pub fn set_partition_leader_epoch(&mut self, epoch: i32) {
        put_field(
            self.buf,
            PARTITION_LEADER_EPOCH_OFFSET,
            &epoch.to_be_bytes(),
        );
    }

    /// Sets the timestamp type bit and maxTimestamp, then recomputes the CRC, unless both
    /// already hold these values (Kafka's `DefaultRecordBatch.setMaxTimestamp`). The other
    /// attribute bits are kept as sent.
    pub fn set_max_timestamp(&mut self, timestamp_type: TimestampType, max_timestamp: i64) {
        if self.timestamp_type() == timestamp_type && self.max_timestamp() == max_timestamp {
            return;
        }
        let attributes = match timestamp_type {
            TimestampType::LogAppendTime => self.attributes() | TIMESTAMP_TYPE_MASK,
            TimestampType::CreateTime => self.attributes() & !TIMESTAMP_TYPE_MASK,
        };
        put_field(self.buf, ATTRIBUTES_OFFSET, &attributes.to_be_bytes());
        put_field(self.buf, MAX_TIMESTAMP_OFFSET, &max_timestamp.to_be_bytes());
        let crc = self.compute_crc();
        put_field(self.buf, CRC_OFFSET, &crc.to_be_bytes());
    }

    /// Marks the batch LogAppendTime with `timestamp` as its maxTimestamp (so every record's
    /// timestamp reads as `timestamp`) and recomputes the CRC.
    pub fn set_log_append_time(&mut self, timestamp: i64) {
        self.set_max_timestamp(TimestampType::LogAppendTime, timestamp);
    }
}

/// The mutable batches of a buffer; see [`RecordBatchMut::batches`].
#[derive(Debug)]
pub struct BatchesMut<'a> {
    rest: &'a mut [u8],
    position: usize,
    done: bool,
}

impl<'a> Iterator for BatchesMut<'a> {
    type Item = Result<RecordBatchMut<'a>, RecordBatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.is_empty() {
            return None;
        }
        let batch = frame_len(self.rest, self.position).and_then(|len| {
            let (batch, rest) = mem::take(&mut self.rest).split_at_mut(len);
            self.rest = rest;
            self.position += len;
            RecordBatchMut::new(batch)
        });
        self.done = batch.is_err();
        Some(batch)
    }
}

impl FusedIterator for BatchesMut<'_> {}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::record::Record;
    use proptest::prelude::*;

    struct Golden {
        name: &'static str,
        bytes: &'static [u8],
        compression: Compression,
        records: i32,
        size: usize,
        crc: u32,
    }

    macro_rules! golden {
        ($(($name:literal, $codec:ident, $records:literal, $size:literal, $crc:literal)),* $(,)?) => {
            [$(Golden {
                name: $name,
                bytes: include_bytes!(concat!(
                    env!("CARGO_MANIFEST_DIR"), "/tests/data/librdkafka-batches/", $name
                )),
                compression: Compression::$codec,
                records: $records,
                size: $size,
                crc: $crc,
            }),*]
        };
    }

    /// The table of tests/data/librdkafka-batches/README.md: batches librdkafka 2.16 sent.
    const GOLDEN: [Golden; 20] = golden![
        ("none-1.bin", None, 12, 995, 0x667ff050),
        ("none-2.bin", None, 13, 1068, 0x39e7660e),
        ("none-3.bin", None, 12, 987, 0xc654bb5c),
        ("none-4.bin", None, 13, 1064, 0x091e1127),
        ("gzip-1.bin", Gzip, 13, 247, 0x984fe982),
        ("gzip-2.bin", Gzip, 12, 240, 0xa7e22510),
        ("gzip-3.bin", Gzip, 13, 247, 0xaf6efeec),
        ("gzip-4.bin", Gzip, 12, 239, 0x74ca3ab0),
        ("lz4-1.bin", Lz4, 12, 296, 0x17b7908d),
        ("lz4-2.bin", Lz4, 13, 300, 0x5404753e),
        ("lz4-3.bin", Lz4, 12, 296, 0x95a6f0e0),
        ("lz4-4.bin", Lz4, 13, 300, 0x6886e808),
        ("zstd-1.bin", Zstd, 12, 251, 0x2ec959e9),
        ("zstd-2.bin", Zstd, 12, 254, 0xaa9548b3),
        ("zstd-3.bin", Zstd, 13, 259, 0x890df930),
        ("zstd-4.bin", Zstd, 13, 253, 0x24213108),
        ("snappy-1.bin", Snappy, 12, 291, 0x1b34c2a7),
        ("snappy-2.bin", Snappy, 12, 287, 0xf92f580d),
        ("snappy-3.bin", Snappy, 13, 293, 0x0ef9ad13),
        ("snappy-4.bin", Snappy, 13, 293, 0x9e4bc293),
    ];

    fn batch(g: &Golden) -> RecordBatch {
        RecordBatch::parse(Bytes::from_static(g.bytes)).unwrap()
    }

    fn records(batch: &RecordBatch) -> Vec<Record> {
        batch.records().unwrap().collect::<Result<_, _>>().unwrap()
    }

    /// Writes a correct CRC into a batch we tampered with.
    fn fix_crc(buf: &mut [u8]) {
        let crc = crc_of(buf);
        put_field(buf, CRC_OFFSET, &crc.to_be_bytes());
    }

    fn validate_bytes(buf: &[u8]) -> Result<(), RecordBatchError> {
        RecordBatch::parse(Bytes::copy_from_slice(buf))?.validate()
    }

    #[test]
    fn golden_batches_match_their_table() {
        for g in &GOLDEN {
            let b = batch(g);
            assert_eq!(b.validate(), Ok(()), "{}", g.name);
            assert_eq!(b.compression(), Ok(g.compression), "{}", g.name);
            assert_eq!(b.record_count(), g.records, "{}", g.name);
            assert_eq!(b.size_in_bytes(), g.size, "{}", g.name);
            assert_eq!(
                b.batch_length() as usize,
                g.size - LOG_OVERHEAD,
                "{}",
                g.name
            );
            assert_eq!((b.crc(), b.compute_crc()), (g.crc, g.crc), "{}", g.name);
            assert_eq!((b.magic(), b.base_offset()), (2, 0), "{}", g.name);
            assert_eq!(b.last_offset_delta(), g.records - 1, "{}", g.name);
            assert_eq!(b.last_offset(), i64::from(g.records - 1), "{}", g.name);
            assert_eq!(b.timestamp_type(), TimestampType::CreateTime, "{}", g.name);
            assert!(
                !b.is_transactional() && !b.is_control() && !b.has_producer_id(),
                "{}",
                g.name
            );
            assert!(b.base_timestamp() <= b.max_timestamp(), "{}", g.name);
            if g.compression != Compression::None {
                let err = b.records().unwrap_err();
                assert!(
                    matches!(err, RecordBatchError::Compressed { .. }),
                    "{}",
                    g.name
                );
                assert!(err
                    .to_string()
                    .contains("cannot iterate records of a compressed batch"));
            }
        }
    }

    #[test]
    fn golden_uncompressed_records_are_what_the_producer_sent() {
        let mut seen = Vec::new();
        for g in GOLDEN.iter().filter(|g| g.compression == Compression::None) {
            let b = batch(g);
            let records = records(&b);
            assert_eq!(records.len(), g.records as usize, "{}", g.name);
            let mut max_timestamp = i64::MIN;
            for (index, r) in records.iter().enumerate() {
                assert_eq!(r.offset_delta, index as i32);
                assert_eq!(r.offset(&b), index as i64);
                max_timestamp = max_timestamp.max(r.timestamp(&b));
                let key = std::str::from_utf8(r.key.as_deref().unwrap()).unwrap();
                let i: u32 = key.strip_prefix('k').unwrap().parse().unwrap();
                let value = format!("value-none-{i}-{}", "x".repeat(50));
                assert_eq!(
                    r.value.as_deref(),
                    Some(value.as_bytes()),
                    "{}: {key}",
                    g.name
                );
                let headers: Vec<_> = r
                    .headers
                    .iter()
                    .map(|h| (h.key_str().unwrap(), h.value.as_deref()))
                    .collect();
                let expected: &[(&str, Option<&[u8]>)] = if i % 2 == 1 {
                    &[("h", Some(b"v"))]
                } else {
                    &[]
                };
                assert_eq!(headers, expected, "{}: {key}", g.name);
                seen.push(i);
            }
            assert_eq!(b.max_timestamp(), max_timestamp, "{}", g.name);
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn batches_split_a_concatenation_without_copying() {
        let all: Vec<u8> = GOLDEN
            .iter()
            .flat_map(|g| g.bytes.iter().copied())
            .collect();
        let all = Bytes::from(all);
        let batches: Vec<_> = RecordBatch::batches(all.clone())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(batches.len(), GOLDEN.len());
        let mut position = 0;
        for (b, g) in batches.iter().zip(&GOLDEN) {
            assert_eq!(b.as_bytes().as_ref(), g.bytes);
            assert_eq!(
                b.as_bytes().as_ptr(),
                all[position..].as_ptr(),
                "{} was copied",
                g.name
            );
            position += g.size;
        }
        let cut = all.slice(..all.len() - 1);
        let results: Vec<_> = RecordBatch::batches(cut).collect();
        assert_eq!(results.len(), GOLDEN.len());
        let last = GOLDEN[GOLDEN.len() - 1].size;
        assert_eq!(
            results.last().unwrap().as_ref().unwrap_err(),
            &RecordBatchError::Truncated {
                position: all.len() - last,
                needed: last,
                available: last - 1
            }
        );
        assert_eq!(RecordBatch::batches(Bytes::new()).count(), 0);
    }

    #[test]
    fn every_flipped_bit_is_caught_except_in_assigned_fields() {
        for g in &GOLDEN {
            let mut buf = g.bytes.to_vec();
            for pos in 0..buf.len() {
                buf[pos] ^= 1 << (pos % 8);
                let result = validate_bytes(&buf);
                match pos {
                    BASE_OFFSET_OFFSET..LENGTH_OFFSET => {
                        assert_eq!(result, Ok(()), "{} @{pos}", g.name)
                    }
                    LENGTH_OFFSET..PARTITION_LEADER_EPOCH_OFFSET => assert!(
                        matches!(result, Err(RecordBatchError::LengthMismatch { .. })),
                        "{} @{pos}: {result:?}",
                        g.name
                    ),
                    PARTITION_LEADER_EPOCH_OFFSET..MAGIC_OFFSET => {
                        assert_eq!(result, Ok(()), "{} @{pos}", g.name)
                    }
                    MAGIC_OFFSET => assert!(matches!(
                        result,
                        Err(RecordBatchError::UnsupportedMagic { .. })
                    )),
                    _ => assert!(
                        matches!(result, Err(RecordBatchError::CrcMismatch { .. })),
                        "{} @{pos}: {result:?}",
                        g.name
                    ),
                }
                buf[pos] ^= 1 << (pos % 8);
            }
        }
    }

    #[test]
    fn structural_errors_behind_a_good_crc() {
        let g = &GOLDEN[0]; // none-1: 12 records
        let tampered = |edit: &dyn Fn(&mut Vec<u8>)| {
            let mut buf = g.bytes.to_vec();
            edit(&mut buf);
            fix_crc(&mut buf);
            validate_bytes(&buf)
        };
        let set_i32 = |buf: &mut Vec<u8>, at: usize, v: i32| put_field(buf, at, &v.to_be_bytes());
        assert_eq!(
            tampered(&|b| set_i32(b, RECORDS_COUNT_OFFSET, 0)),
            Err(RecordBatchError::InvalidRecordCount {
                base_offset: 0,
                record_count: 0
            })
        );
        assert_eq!(
            tampered(&|b| set_i32(b, LAST_OFFSET_DELTA_OFFSET, 12)),
            Err(RecordBatchError::LastOffsetDeltaMismatch {
                base_offset: 0,
                last_offset_delta: 12,
                record_count: 12
            })
        );
        assert_eq!(
            tampered(&|b| {
                set_i32(b, RECORDS_COUNT_OFFSET, 13);
                set_i32(b, LAST_OFFSET_DELTA_OFFSET, 12);
            }),
            Err(RecordBatchError::RecordCountMismatch {
                declared: 13,
                found: 12
            })
        );
        let fewer = tampered(&|b| {
            set_i32(b, RECORDS_COUNT_OFFSET, 11);
            set_i32(b, LAST_OFFSET_DELTA_OFFSET, 10);
        });
        assert!(
            matches!(
                fewer,
                Err(RecordBatchError::TrailingBytes {
                    record_count: 11,
                    ..
                })
            ),
            "{fewer:?}"
        );
        let longer = tampered(&|b| {
            b.push(0);
            let len = b.len() - LOG_OVERHEAD;
            set_i32(b, LENGTH_OFFSET, len as i32);
        });
        assert_eq!(
            longer,
            Err(RecordBatchError::TrailingBytes {
                position: g.size,
                remaining: 1,
                record_count: 12
            })
        );
        assert_eq!(
            tampered(&|b| put_field(b, ATTRIBUTES_OFFSET, &5i16.to_be_bytes())),
            Err(RecordBatchError::UnknownCompression {
                base_offset: 0,
                codec: 5
            })
        );
        assert_eq!(
            tampered(&|b| put_field(b, PRODUCER_ID_OFFSET, &5i64.to_be_bytes())),
            Err(RecordBatchError::InvalidSequence {
                base_offset: 0,
                producer_id: 5,
                base_sequence: -1
            })
        );
        // First record: length (2 bytes), attributes, timestampDelta 0, then offsetDelta.
        let offset_delta_at = RECORDS_OFFSET + 4;
        assert_eq!(g.bytes[offset_delta_at], 0);
        let err = tampered(&|b| b[offset_delta_at] = 2).unwrap_err();
        assert_eq!(
            err,
            RecordBatchError::OffsetDeltaMismatch {
                base_offset: 0,
                index: 0,
                offset_delta: 1,
                expected: 0
            }
        );
        assert_eq!(
            err.to_string(),
            "record batch at offset 0: record 0 has offset delta 1, expected 0"
        );
    }

    #[test]
    fn assigning_offset_and_epoch_keeps_the_crc() {
        for g in &GOLDEN {
            let mut buf = g.bytes.to_vec();
            let mut view = RecordBatchMut::new(&mut buf).unwrap();
            view.set_base_offset(1_000_000);
            view.set_partition_leader_epoch(7);
            assert_eq!(view.crc(), g.crc);
            assert_eq!(view.compute_crc(), g.crc);
            assert_eq!(buf[MAGIC_OFFSET..], g.bytes[MAGIC_OFFSET..]);
            let b = RecordBatch::parse(Bytes::from(buf)).unwrap();
            assert_eq!(b.validate(), Ok(()), "{}", g.name);
            assert_eq!(
                (b.base_offset(), b.partition_leader_epoch()),
                (1_000_000, 7)
            );
            assert_eq!(b.last_offset(), 1_000_000 + i64::from(g.records) - 1);
            if g.compression == Compression::None {
                let offsets: Vec<_> = records(&b).iter().map(|r| r.offset(&b)).collect();
                assert_eq!(
                    offsets,
                    (1_000_000..1_000_000 + i64::from(g.records)).collect::<Vec<_>>()
                );
            }
        }
    }

    #[test]
    fn log_append_time_recomputes_the_crc_and_touches_nothing_else() {
        let ts = 1_800_000_000_123;
        for g in &GOLDEN {
            let mut buf = g.bytes.to_vec();
            let mut view = RecordBatchMut::new(&mut buf).unwrap();
            let create_max = view.max_timestamp();
            view.set_log_append_time(ts);
            assert_ne!(view.crc(), g.crc, "{}", g.name);
            assert_eq!(view.crc(), view.compute_crc(), "{}", g.name);
            assert_eq!(view.timestamp_type(), TimestampType::LogAppendTime);
            let changed: Vec<_> = (0..buf.len()).filter(|&i| buf[i] != g.bytes[i]).collect();
            let allowed = CRC_OFFSET..ATTRIBUTES_OFFSET + 2;
            assert!(
                changed.iter().all(|i| allowed.contains(i)
                    || (MAX_TIMESTAMP_OFFSET..PRODUCER_ID_OFFSET).contains(i)),
                "{}: {changed:?}",
                g.name
            );
            let b = RecordBatch::parse(Bytes::copy_from_slice(&buf)).unwrap();
            assert_eq!(b.validate(), Ok(()), "{}", g.name);
            assert_eq!(
                (b.timestamp_type(), b.max_timestamp()),
                (TimestampType::LogAppendTime, ts)
            );
            assert_eq!(b.compression(), Ok(g.compression));
            if g.compression == Compression::None {
                assert!(records(&b).iter().all(|r| r.timestamp(&b) == ts));
            }
            // Back to CreateTime with the old maxTimestamp gives back the producer's bytes.
            let mut view = RecordBatchMut::new(&mut buf).unwrap();
            view.set_max_timestamp(TimestampType::CreateTime, create_max);
            assert_eq!(buf, g.bytes, "{}", g.name);
        }
    }

    #[test]
    fn mutable_batches_of_a_concatenation() {
        let mut all: Vec<u8> = GOLDEN[..3]
            .iter()
            .flat_map(|g| g.bytes.iter().copied())
            .collect();
        let mut next_offset = 100;
        for view in RecordBatchMut::batches(&mut all) {
            let mut view = view.unwrap();
            view.set_base_offset(next_offset);
            next_offset += 13; // at least each batch's record count
        }
        let batches: Vec<_> = RecordBatch::batches(Bytes::from(all))
            .collect::<Result<_, _>>()
            .unwrap();
        let offsets: Vec<_> = batches.iter().map(RecordBatch::base_offset).collect();
        assert_eq!(offsets, [100, 113, 126]);
        assert!(batches.iter().all(|b| b.validate().is_ok()));
        let mut torn = GOLDEN[0].bytes[..100].to_vec();
        let results: Vec<_> = RecordBatchMut::batches(&mut torn)
            .map(|r| r.map(|_| ()))
            .collect();
        assert_eq!(
            results,
            [Err(RecordBatchError::Truncated {
                position: 0,
                needed: 995,
                available: 100
            })]
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..300),
                                       frame in any::<bool>()) {
            if frame && bytes.len() >= RECORD_BATCH_OVERHEAD {
                // Make it pass parse, uncompressed, with a good CRC, to reach the records.
                let len = (bytes.len() - LOG_OVERHEAD) as i32;
                put_field(&mut bytes, LENGTH_OFFSET, &len.to_be_bytes());
                bytes[MAGIC_OFFSET] = 2;
                bytes[ATTRIBUTES_OFFSET + 1] &= !0x07;
                fix_crc(&mut bytes);
            }
            exercise(&bytes);
        }

        /// Ours against the crc32c crate's (SSE4.2 or a table): sizes around every fold width,
        /// at every alignment, whole and in parts.
        #[test]
        fn crc32c_matches_an_independent_implementation(
            data in proptest::collection::vec(any::<u8>(), 0..5000),
            skip in 0usize..64,
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
        ) {
            let data = &data[skip.min(data.len())..];
            let expected = crc32c::crc32c(data);
            prop_assert_eq!(crc32c(&[data]), expected);
            let mut at: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
            at.sort_unstable();
            let mut parts = Vec::new();
            let mut from = 0;
            for to in at {
                parts.push(&data[from..to]);
                from = to;
            }
            parts.push(&data[from..]);
            prop_assert_eq!(crc32c(&parts), expected);
        }

        #[test]
        fn mutated_golden_batches_never_panic(
            which in 0..GOLDEN.len(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        ) {
            let mut buf = GOLDEN[which].bytes.to_vec();
            for (at, byte) in edits {
                let at = at.index(buf.len() - CRC_START) + CRC_START;
                buf[at] = byte;
            }
            fix_crc(&mut buf);
            exercise(&buf);
        }
    }

    /// Drives every reading entry point over `bytes`; only panics count as failures.
    fn exercise(bytes: &[u8]) {
        let shared = Bytes::copy_from_slice(bytes);
        for batch in RecordBatch::batches(shared.clone()).flatten() {
            let _ = batch.validate();
            let _ = batch.compression();
            let _ = (
                batch.last_offset(),
                batch.next_offset(),
                batch.delete_horizon_ms(),
            );
            if let Ok(records) = batch.records() {
                for record in records.flatten() {
                    let _ = (record.offset(&batch), record.timestamp(&batch));
                }
            }
        }
        let _ = RecordBatch::parse(shared.clone()).map(|b| b.validate());
        let mut owned = bytes.to_vec();
        for view in RecordBatchMut::batches(&mut owned).flatten() {
            let mut view = view;
            view.set_base_offset(i64::MAX);
            view.set_log_append_time(-1);
        }
        let _ = RecordIter::new(shared, bytes.len()).count();
    }

    #[test]
    fn truncations_never_panic_and_are_errors() {
        for g in &GOLDEN {
            for cut in 0..g.size {
                let prefix = Bytes::from_static(&g.bytes[..cut]);
                assert!(
                    RecordBatch::parse(prefix.clone()).is_err(),
                    "{} cut {cut}",
                    g.name
                );
                let results: Vec<_> = RecordBatch::batches(prefix.clone()).collect();
                assert_eq!(results.len(), usize::from(cut > 0), "{} cut {cut}", g.name);
                assert!(results.iter().all(Result::is_err), "{} cut {cut}", g.name);
                if g.compression == Compression::None && cut >= RECORDS_OFFSET {
                    let region = prefix.slice(RECORDS_OFFSET..);
                    let errors = RecordIter::new(region, g.records as usize)
                        .filter(Result::is_err)
                        .count();
                    assert_eq!(errors, 1, "{} cut {cut}", g.name);
                }
            }
        }
    }

    #[test]
    fn crc32c_is_castagnoli() {
        // The check value of CRC-32/ISCSI in the CRC catalogue, and a megabyte (the wide folds).
        assert_eq!(crc32c(&[b"123456789"]), 0xe306_9283);
        let big: Vec<u8> = (0..1 << 20)
            .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert_eq!(crc32c(&[&big]), crc32c::crc32c(&big));
        assert_eq!(crc32c(&[&big[..40], &big[40..]]), crc32c::crc32c(&big));
        assert_eq!(crc32c(&[]), 0);
    }

    #[test]
    fn error_messages_name_the_subject() {
        let err = RecordBatch::parse(Bytes::from_static(&[0; 10])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "record batch of 10 bytes is shorter than its 61-byte header"
        );
        let mut buf = GOLDEN[4].bytes.to_vec();
        buf[MAGIC_OFFSET] = 1;
        put_field(&mut buf, BASE_OFFSET_OFFSET, &77i64.to_be_bytes());
        assert!(RecordBatchMut::new(&mut buf).is_err());
        let err = RecordBatch::parse(Bytes::copy_from_slice(&buf)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "record batch at offset 77: unsupported magic 1"
        );
        buf[MAGIC_OFFSET] = 2;
        buf[100] ^= 0xff;
        let err = validate_bytes(&buf).unwrap_err().to_string();
        assert!(
            err.starts_with("record batch at offset 77: crc mismatch, header has 0x984fe982"),
            "{err}"
        );
    }
}
