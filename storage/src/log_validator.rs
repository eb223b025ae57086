//! `LogValidator`: what a producer's batches must satisfy before the log takes them, as Kafka's
//! `LogValidator` and `ProduceRequest.validateRecords` check them — and nothing is re-encoded.
//!
//! Per batch, in order: the header ([`RecordBatch::validate_header`]: magic 2, CRC-32C, a known
//! codec, recordCount >= 1 and equal to lastOffsetDelta + 1, a base sequence for a producer
//! id), `max.message.bytes`, no control batch (Kafka: "Clients are not allowed to write control
//! records", INVALID_RECORD; only WriteTxnMarkers appends them), no transactional batch without
//! a producer id (INVALID_RECORD). Then the records themselves, walked where they lie —
//! in the request's bytes for an uncompressed batch, or as they stream out of the decompressor
//! into a fixed 64 KiB scratch buffer for a compressed one (the decompressed batch is never
//! held whole, and the scratch buffer is dropped with the call):
//!
//! - exactly recordCount records, each one's varint length in bounds and its fields (attributes,
//!   timestamp delta, offset delta, key, value, header count, each header's key and value)
//!   filling exactly that length, and the records filling exactly the batch (or the
//!   decompressed stream, whose checksums and end marks are read too);
//! - offset deltas 0, 1, 2... in order, so the last is lastOffsetDelta;
//! - per record, as Kafka's `validateRecord`: a key on a compacted topic (INVALID_RECORD), and
//!   for a CreateTime topic a timestamp within [now - `message.timestamp.before.max.ms`,
//!   now + `message.timestamp.after.max.ms`] (INVALID_TIMESTAMP), and no LogAppendTime batch
//!   from a producer (INVALID_TIMESTAMP). These per-record refusals are collected for the whole
//!   batch and come back as Produce's `record_errors` (at most [`MAX_RECORD_ERRORS`]).
//!
//! A decompressed stream larger than `max_decompressed_bytes` is a decompression bomb to us:
//! refused with MESSAGE_TOO_LARGE (Kafka's `RecordTooLargeException`), not CORRUPT_MESSAGE —
//! the stream is valid, only too big, and the Java producer answers MESSAGE_TOO_LARGE for a
//! compressed batch by splitting it and retrying, where CORRUPT_MESSAGE is retriable and would
//! send the same bytes again until the delivery timeout.
//!
//! Where we differ from Kafka, stricter: every malformed record structure is CORRUPT_MESSAGE at
//! once (Kafka answers some as INVALID_RECORD); a batch whose maxTimestamp differs from its
//! records' is kept as sent (Kafka rewrites maxTimestamp and the CRC; we never rewrite a
//! CreateTime batch).
//!
//! Pure and thread-safe: a `LogValidator` is a snapshot of the topic's settings and the clock;
//! it holds no lock and touches no file, so the broker runs it before taking the partition's
//! lock, on a blocking thread for compressed batches.

use std::fmt;

use bytes::Bytes;
use rafka_protocol::record_batch::{
    Compression, RecordBatch, RecordBatchError, TimestampType, RECORDS_OFFSET,
};

use crate::compression::{decompress_stream, DecompressError, DecompressStream};
use crate::config::LogConfig;
use crate::error::{RecordError, Result, StorageError};

/// The most per-record errors one refusal carries back (a batch of 100,000 key-less records
/// would otherwise answer with 100,000 messages).
pub const MAX_RECORD_ERRORS: usize = 1000;

/// Size of the scratch buffer a compressed batch streams through.
pub const SCRATCH_BYTES: usize = 64 << 10;

/// Kafka's `RecordBatch.NO_TIMESTAMP`: a record without a timestamp is not range-checked.
const NO_TIMESTAMP: i64 = -1;

/// The settings and clock one validation runs with.
#[derive(Debug, Clone)]
pub struct LogValidator {
    /// `cleanup.policy` includes `compact`: every record needs a key.
    pub compacted: bool,
    /// `message.timestamp.type`: timestamps are only checked for CreateTime.
    pub timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms`.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`.
    pub timestamp_after_max_ms: i64,
    /// `max.message.bytes`: the largest batch, as sent.
    pub max_message_bytes: usize,
    /// The most a compressed batch may decompress to.
    pub max_decompressed_bytes: usize,
    /// The broker's clock, in ms since the epoch.
    pub now_ms: i64,
}

/// Records that passed [`LogValidator::validate`]; only this module makes one, so the log's
/// append (`UnifiedLog::append_validated`) knows it needs no second look.
#[derive(Debug, Clone)]
pub struct ValidatedRecords {
    records: Bytes,
}

impl ValidatedRecords {
    pub fn bytes(&self) -> &Bytes {
        &self.records
    }
}

impl LogValidator {
    /// A validator with the topic's settings from `config` and `now_ms` as the clock. The
    /// decompression cap is 64 times `max.message.bytes` (at least 1 MiB): what the log
    /// already allows itself when it must read compressed records.
    pub fn new(config: &LogConfig, now_ms: i64) -> LogValidator {
        LogValidator {
            compacted: config.cleanup_policy.compact,
            timestamp_type: if config.log_append_time {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
            timestamp_before_max_ms: config.message_timestamp_before_max_ms,
            timestamp_after_max_ms: config.message_timestamp_after_max_ms,
            max_message_bytes: config.max_message_bytes,
            max_decompressed_bytes: config.max_message_bytes.max(1 << 20).saturating_mul(64),
            now_ms,
        }
    }

    /// Whether any batch of `records` is compressed (a header look only), so the caller can
    /// decide where to run [`LogValidator::validate`].
    pub fn any_compressed(records: &Bytes) -> bool {
        RecordBatch::batches(records.clone())
            .any(|b| b.is_ok_and(|b| !matches!(b.compression(), Ok(Compression::None))))
    }

    /// Validates every batch of a producer's `records` for `partition` (named in errors).
    /// Nothing is kept of a refused request; an accepted one comes back as is.
    pub fn validate(
        &self,
        partition: &dyn fmt::Display,
        records: &Bytes,
    ) -> Result<ValidatedRecords> {
        let mut position = 0usize;
        let mut batches = 0usize;
        for b in RecordBatch::batches(records.clone()) {
            let corrupt = |source| StorageError::CorruptBatch {
                partition: partition.to_string(),
                position,
                source,
            };
            let batch = b.map_err(corrupt)?;
            let size = batch.size_in_bytes();
            if size > self.max_message_bytes {
                return Err(StorageError::BatchTooLarge {
                    partition: partition.to_string(),
                    size,
                    max: self.max_message_bytes,
                });
            }
            batch.validate_header().map_err(corrupt)?;
            if batch.is_control() {
                return Err(StorageError::InvalidRecord {
                    partition: partition.to_string(),
                    position,
                    reason: format!(
                        "Clients are not allowed to write control records in topic partition {partition}"
                    ),
                    record_errors: Vec::new(),
                });
            }
            if batch.is_transactional() && !batch.has_producer_id() {
                return Err(StorageError::InvalidRecord {
                    partition: partition.to_string(),
                    position,
                    reason: format!(
                        "Cannot produce transactional records without a producer id in topic partition {partition}"
                    ),
                    record_errors: Vec::new(),
                });
            }
            self.validate_records(&batch, partition, position)?;
            position += size;
            batches += 1;
        }
        if batches == 0 {
            return Err(StorageError::CorruptBatch {
                partition: partition.to_string(),
                position: 0,
                source: RecordBatchError::TooShort {
                    size: records.len(),
                },
            });
        }
        Ok(ValidatedRecords {
            records: records.clone(),
        })
    }

    /// Walks one header-valid batch's records, in place or streaming.
    fn validate_records(
        &self,
        batch: &RecordBatch,
        partition: &dyn fmt::Display,
        position: usize,
    ) -> Result<()> {
        // validate_header checked both: a known codec, 1 <= recordCount.
        let codec = batch.compression().unwrap_or(Compression::None);
        let count = usize::try_from(batch.record_count()).unwrap_or(0);
        let mut errors = RecordErrors::default();
        // The batch's maxTimestamp drives time-based retention and the time index: a claim
        // outside the range its records may have would keep a segment past retention forever
        // (2^62) or misplace ListOffsets by time. Kafka rewrites it from the records; we keep the
        // producer's bytes, so a claim no record of this topic could make is refused — an
        // honest client's maxTimestamp is one of its records' timestamps.
        let claimed = batch.max_timestamp();
        if self.timestamp_type == TimestampType::CreateTime
            && batch.timestamp_type() == TimestampType::CreateTime
            && claimed != NO_TIMESTAMP
            && self.out_of_range(claimed)
        {
            errors.push(Kind::Timestamp, 0, || {
                format!(
                    "The batch's maxTimestamp {claimed} is out of range. The timestamp should be within [{}, {}]",
                    self.now_ms.saturating_sub(self.timestamp_before_max_ms),
                    self.now_ms.saturating_add(self.timestamp_after_max_ms),
                )
            });
            return errors.into_result(partition, position);
        }
        let walked = if codec == Compression::None {
            let bytes = batch.as_bytes();
            if self.clean_in_place(batch, count, bytes) {
                return Ok(());
            }
            let mut source = SliceSource {
                buf: bytes,
                pos: RECORDS_OFFSET,
            };
            self.walk(batch, count, &mut source, &mut errors)
        } else {
            let payload = batch.as_bytes().get(RECORDS_OFFSET..).unwrap_or_default();
            decompress_stream(codec, payload, self.max_decompressed_bytes)
                .map_err(Fault::Decompress)
                .and_then(|stream| {
                    let mut source = StreamSource::new(stream);
                    self.walk(batch, count, &mut source, &mut errors)
                })
        };
        match walked {
            Ok(()) => {}
            Err(Fault::Record(source)) => {
                return Err(StorageError::CorruptBatch {
                    partition: partition.to_string(),
                    position,
                    source,
                })
            }
            Err(Fault::Decompress(source)) => {
                return Err(StorageError::Decompression {
                    partition: partition.to_string(),
                    position,
                    source,
                })
            }
        }
        errors.into_result(partition, position)
    }

    /// The common case of an uncompressed batch, checked in one pass over its bytes: true if
    /// every record is well formed and passes every check of [`LogValidator::walk`] and
    /// [`LogValidator::check_record`]. It may refuse more than they do (a varint in its longest
    /// encodings, say): false only sends the batch through the exact walk, which finds and
    /// names what is wrong, so a refusal never depends on this path. It exists for small
    /// records, where the exact walk's per-byte bookkeeping was most of the produce path's CPU.
    fn clean_in_place(&self, batch: &RecordBatch, count: usize, bytes: &[u8]) -> bool {
        let check_time = self.timestamp_type == TimestampType::CreateTime;
        if check_time && batch.timestamp_type() == TimestampType::LogAppendTime {
            return false; // every record is refused
        }
        // out_of_range's bounds, computed once (in i128, as there).
        let now = i128::from(self.now_ms);
        let low = now - i128::from(self.timestamp_before_max_ms);
        let high = now + i128::from(self.timestamp_after_max_ms);
        let base_timestamp = batch.base_timestamp();
        let mut pos = RECORDS_OFFSET;
        for index in 0..count {
            let Some(walked) = clean_record(bytes, &mut pos, index) else {
                return false;
            };
            if self.compacted && !walked.has_key {
                return false;
            }
            let timestamp = base_timestamp.wrapping_add(walked.timestamp_delta);
            if check_time
                && timestamp != NO_TIMESTAMP
                && !(low..=high).contains(&i128::from(timestamp))
            {
                return false;
            }
        }
        pos == bytes.len()
    }

    /// Whether a CreateTime `timestamp` lies outside `message.timestamp.before.max.ms` /
    /// `after.max.ms` of now.
    fn out_of_range(&self, timestamp: i64) -> bool {
        // In i128: neither difference may wrap (timestamps are any int64 on the wire).
        let (now, ts) = (i128::from(self.now_ms), i128::from(timestamp));
        ts - now > i128::from(self.timestamp_after_max_ms)
            || now - ts > i128::from(self.timestamp_before_max_ms)
    }

    /// Reads `count` records from `source`, then requires it to end.
    fn walk<S: Source>(
        &self,
        batch: &RecordBatch,
        count: usize,
        source: &mut S,
        errors: &mut RecordErrors,
    ) -> Result<(), Fault> {
        let base_timestamp = batch.base_timestamp();
        let batch_type = batch.timestamp_type();
        for index in 0..count {
            if source.at_end()? {
                return Err(Fault::Record(RecordBatchError::RecordCountMismatch {
                    declared: count,
                    found: index,
                }));
            }
            let record = walk_record(source, index)?;
            let timestamp = base_timestamp.wrapping_add(record.timestamp_delta);
            self.check_record(batch, batch_type, index, record.has_key, timestamp, errors);
        }
        if !source.at_end()? {
            return Err(Fault::Record(RecordBatchError::TrailingBytes {
                position: source.position(),
                remaining: source.remaining_hint(),
                record_count: count,
            }));
        }
        Ok(())
    }

    /// Kafka's `validateKey` then `validateTimestamp`: at most one error per record, the key's
    /// first.
    fn check_record(
        &self,
        batch: &RecordBatch,
        batch_type: TimestampType,
        index: usize,
        has_key: bool,
        timestamp: i64,
        errors: &mut RecordErrors,
    ) {
        if self.compacted && !has_key {
            errors.push(Kind::Record, index, || {
                "Compacted topic cannot accept message without key".to_string()
            });
            return;
        }
        if self.timestamp_type != TimestampType::CreateTime {
            return;
        }
        if batch_type == TimestampType::LogAppendTime {
            errors.push(Kind::Timestamp, index, || {
                "Invalid timestamp type in message: producer should not set timestamp type to LogAppendTime".to_string()
            });
            return;
        }
        if timestamp == NO_TIMESTAMP {
            return;
        }
        if self.out_of_range(timestamp) {
            let offset = batch.base_offset().wrapping_add(index as i64);
            errors.push(Kind::Timestamp, index, || {
                format!(
                    "Timestamp {timestamp} of message with offset {offset} is out of range. The timestamp should be within [{}, {}]",
                    self.now_ms.saturating_sub(self.timestamp_before_max_ms),
                    self.now_ms.saturating_add(self.timestamp_after_max_ms),
                )
            });
        }
    }
}

/// Which refusal a record error belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Record,
    Timestamp,
}

/// The per-record refusals of one batch.
#[derive(Default)]
struct RecordErrors {
    errors: Vec<RecordError>,
    total: usize,
    any_timestamp: bool,
}

impl RecordErrors {
    fn push(&mut self, kind: Kind, index: usize, message: impl FnOnce() -> String) {
        self.total += 1;
        self.any_timestamp |= kind == Kind::Timestamp;
        if self.errors.len() < MAX_RECORD_ERRORS {
            self.errors.push(RecordError {
                batch_index: i32::try_from(index).unwrap_or(i32::MAX),
                message: message(),
            });
        }
    }

    /// Kafka's `processRecordErrors`: any timestamp error makes the whole INVALID_TIMESTAMP,
    /// otherwise INVALID_RECORD naming the first three.
    fn into_result(self, partition: &dyn fmt::Display, position: usize) -> Result<()> {
        if self.total == 0 {
            return Ok(());
        }
        let partition = partition.to_string();
        if self.any_timestamp {
            return Err(StorageError::InvalidTimestamp {
                partition,
                position,
                record_errors: self.errors,
            });
        }
        let first: Vec<String> = self
            .errors
            .iter()
            .take(3)
            .map(|e| format!("record {}: {}", e.batch_index, e.message))
            .collect();
        Err(StorageError::InvalidRecord {
            reason: format!(
                "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}] in topic partition {partition}",
                self.total,
                first.join("; ")
            ),
            partition,
            position,
            record_errors: self.errors,
        })
    }
}

/// Why a walk stopped.
#[derive(Debug)]
enum Fault {
    Record(RecordBatchError),
    Decompress(DecompressError),
}

impl From<DecompressError> for Fault {
    fn from(e: DecompressError) -> Fault {
        Fault::Decompress(e)
    }
}

/// Record bytes read front to back, one byte or a skip at a time.
trait Source {
    /// The next byte, or `None` at the end.
    fn byte(&mut self) -> Result<Option<u8>, Fault>;
    /// Skips `n` bytes; false if the input ends first.
    fn skip(&mut self, n: usize) -> Result<bool, Fault>;
    fn at_end(&mut self) -> Result<bool, Fault>;
    /// Bytes read so far (in the batch for a slice, in the decompressed stream otherwise).
    fn position(&self) -> usize;
    /// Bytes known to remain (for the trailing-bytes error only).
    fn remaining_hint(&self) -> usize;
}

/// An uncompressed batch's records, where they lie in the request.
struct SliceSource<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Source for SliceSource<'_> {
    #[inline]
    fn byte(&mut self) -> Result<Option<u8>, Fault> {
        let b = self.buf.get(self.pos).copied();
        self.pos += usize::from(b.is_some());
        Ok(b)
    }

    #[inline]
    fn skip(&mut self, n: usize) -> Result<bool, Fault> {
        if n > self.buf.len() - self.pos {
            self.pos = self.buf.len();
            return Ok(false);
        }
        self.pos += n;
        Ok(true)
    }

    fn at_end(&mut self) -> Result<bool, Fault> {
        Ok(self.pos >= self.buf.len())
    }

    fn position(&self) -> usize {
        self.pos
    }

    fn remaining_hint(&self) -> usize {
        self.buf.len() - self.pos
    }
}

/// A compressed batch's records as they come out of the decompressor, through a scratch
/// buffer of [`SCRATCH_BYTES`].
struct StreamSource<'a> {
    stream: DecompressStream<'a>,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    /// Stream bytes before `buf[0]`.
    before: usize,
    eof: bool,
}

impl<'a> StreamSource<'a> {
    fn new(stream: DecompressStream<'a>) -> StreamSource<'a> {
        StreamSource {
            stream,
            buf: vec![0u8; SCRATCH_BYTES].into_boxed_slice(),
            pos: 0,
            end: 0,
            before: 0,
            eof: false,
        }
    }

    /// Refills the (used-up) buffer; false at the end of the stream.
    fn fill(&mut self) -> Result<bool, Fault> {
        if self.eof {
            return Ok(false);
        }
        self.before += self.end;
        self.pos = 0;
        self.end = 0;
        let n = self.stream.read(&mut self.buf)?;
        if n == 0 {
            self.eof = true;
            return Ok(false);
        }
        self.end = n;
        Ok(true)
    }
}

impl Source for StreamSource<'_> {
    #[inline]
    fn byte(&mut self) -> Result<Option<u8>, Fault> {
        if self.pos == self.end && !self.fill()? {
            return Ok(None);
        }
        let b = self.buf[self.pos];
        self.pos += 1;
        Ok(Some(b))
    }

    fn skip(&mut self, mut n: usize) -> Result<bool, Fault> {
        loop {
            let here = (self.end - self.pos).min(n);
            self.pos += here;
            n -= here;
            if n == 0 {
                return Ok(true);
            }
            if !self.fill()? {
                return Ok(false);
            }
        }
    }

    fn at_end(&mut self) -> Result<bool, Fault> {
        Ok(self.pos == self.end && !self.fill()?)
    }

    fn position(&self) -> usize {
        self.before + self.pos
    }

    fn remaining_hint(&self) -> usize {
        self.end - self.pos
    }
}

/// What the checks need of one record.
struct Walked {
    timestamp_delta: i64,
    has_key: bool,
}

/// One record's fields, bounded by its declared length (the layout is documented in
/// [`rafka_protocol::record`]).
struct RecordCursor<'s, S> {
    source: &'s mut S,
    index: usize,
    /// Stream position of the record's end.
    end: usize,
}

impl<S: Source> RecordCursor<'_, S> {
    fn truncated(&self, field: &'static str) -> Fault {
        Fault::Record(RecordBatchError::RecordTruncated {
            index: self.index,
            position: self.source.position(),
            field,
        })
    }

    #[inline]
    fn byte(&mut self, field: &'static str) -> Result<u8, Fault> {
        if self.source.position() >= self.end {
            return Err(self.truncated(field));
        }
        self.source.byte()?.ok_or_else(|| self.truncated(field))
    }

    /// A zig-zag varint of at most `max_len` bytes whose last byte carries no bits beyond
    /// `bits` (32 or 64).
    #[inline]
    fn varint_bits(
        &mut self,
        field: &'static str,
        max_len: usize,
        bits: u32,
    ) -> Result<i64, Fault> {
        let position = self.source.position();
        let mut raw: u64 = 0;
        for i in 0..max_len {
            let b = self.byte(field)?;
            let shift = 7 * i as u32;
            let last = i + 1 == max_len;
            if last && u32::from(b) >> (bits - shift) != 0 {
                break; // bits beyond the type, or a continuation past the longest encoding
            }
            raw |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok((raw >> 1) as i64 ^ -((raw & 1) as i64));
            }
        }
        Err(Fault::Record(RecordBatchError::InvalidVarint {
            index: self.index,
            position,
            field,
        }))
    }

    fn varint(&mut self, field: &'static str) -> Result<i32, Fault> {
        // Fits: at most 32 bits were accepted.
        self.varint_bits(field, 5, 32).map(|v| v as i32)
    }

    fn varlong(&mut self, field: &'static str) -> Result<i64, Fault> {
        self.varint_bits(field, 10, 64)
    }

    /// A length that must be >= 0 (or -1 if `nullable`) and fit in the record; skips the
    /// bytes it announces. Returns whether it was non-null.
    fn skip_sized(
        &mut self,
        length_field: &'static str,
        field: &'static str,
        nullable: bool,
    ) -> Result<bool, Fault> {
        let position = self.source.position();
        let length = self.varint(length_field)?;
        if length == -1 && nullable {
            return Ok(false);
        }
        let Ok(n) = usize::try_from(length) else {
            return Err(Fault::Record(RecordBatchError::InvalidLength {
                index: self.index,
                position,
                field: length_field,
                length,
            }));
        };
        if n > self.end - self.source.position() || !self.source.skip(n)? {
            return Err(self.truncated(field));
        }
        Ok(true)
    }
}

/// A zig-zag varint of `bytes` at `pos`, ending before `end` (<= `bytes.len()`) within
/// `max_len` bytes, none of which may be a 32-bit varint's fifth or a 64-bit one's tenth: every
/// value read fits in 28 or 63 bits, so no bit check is needed. `None` for anything else.
#[inline(always)]
fn clean_varint(bytes: &[u8], pos: &mut usize, end: usize, max_len: usize) -> Option<i64> {
    // A small record's fields are one- or two-byte varints (its length and its value's from
    // 64 bytes): taken first, without the loop's bookkeeping.
    let zigzag = |raw: u64| (raw >> 1) as i64 ^ -((raw & 1) as i64);
    if let Some(&b) = bytes.get(*pos).filter(|_| *pos < end) {
        if b < 0x80 {
            *pos += 1;
            return Some(zigzag(u64::from(b)));
        }
        if let Some(&c) = bytes
            .get(*pos + 1)
            .filter(|_| *pos + 1 < end && max_len >= 2)
        {
            if c < 0x80 {
                *pos += 2;
                return Some(zigzag(u64::from(b & 0x7f) | u64::from(c) << 7));
            }
        }
    }
    let mut raw: u64 = 0;
    let mut at = *pos;
    let stop = end.min(at.saturating_add(max_len));
    let mut shift = 0;
    while at < stop {
        let b = bytes[at];
        at += 1;
        raw |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            *pos = at;
            return Some((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
        shift += 7;
    }
    None
}

/// A length of at least -1 (-1 only if `nullable`) at `pos` and the bytes it announces, all
/// before `end`; whether it was non-null.
#[inline(always)]
fn clean_sized(bytes: &[u8], pos: &mut usize, end: usize, nullable: bool) -> Option<bool> {
    let length = clean_varint(bytes, pos, end, 4)?;
    if length == -1 && nullable {
        return Some(false);
    }
    let n = usize::try_from(length).ok()?;
    if n > end - *pos {
        return None;
    }
    *pos += n;
    Some(true)
}

/// [`walk_record`] over a slice for [`LogValidator::clean_in_place`]: the record at `pos`,
/// which must be record `index`, or `None` where the exact walk would be needed.
#[inline]
fn clean_record(bytes: &[u8], pos: &mut usize, index: usize) -> Option<Walked> {
    let length = usize::try_from(clean_varint(bytes, pos, bytes.len(), 4)?).ok()?;
    if length > bytes.len() - *pos {
        return None;
    }
    let end = *pos + length;
    *pos += 1; // attributes (read as is by the exact walk)
    if *pos > end {
        return None;
    }
    let timestamp_delta = clean_varint(bytes, pos, end, 9)?;
    if clean_varint(bytes, pos, end, 4)? != index as i64 {
        return None;
    }
    let has_key = clean_sized(bytes, pos, end, true)?;
    clean_sized(bytes, pos, end, true)?;
    let headers = clean_varint(bytes, pos, end, 4)?;
    if headers < 0 {
        return None;
    }
    for _ in 0..headers {
        clean_sized(bytes, pos, end, false)?;
        clean_sized(bytes, pos, end, true)?;
    }
    (*pos == end).then_some(Walked {
        timestamp_delta,
        has_key,
    })
}

/// Walks the record at the source's position, which must be record `index` (offset delta
/// `index`), to its end.
fn walk_record<S: Source>(source: &mut S, index: usize) -> Result<Walked, Fault> {
    let start = source.position();
    let mut r = RecordCursor {
        source,
        index,
        end: usize::MAX,
    };
    let length = r.varint("record length")?;
    let Ok(length) = usize::try_from(length) else {
        return Err(Fault::Record(RecordBatchError::InvalidLength {
            index,
            position: start,
            field: "record length",
            length,
        }));
    };
    let body_start = r.source.position();
    r.end = body_start.saturating_add(length);
    r.byte("attributes")?;
    let timestamp_delta = r.varlong("timestamp delta")?;
    let offset_delta = r.varint("offset delta")?;
    let expected = i32::try_from(index).unwrap_or(i32::MAX);
    if offset_delta != expected {
        return Err(Fault::Record(RecordBatchError::OffsetDeltaMismatch {
            base_offset: 0,
            index,
            offset_delta,
            expected,
        }));
    }
    let has_key = r.skip_sized("key length", "key", true)?;
    r.skip_sized("value length", "value", true)?;
    let header_position = r.source.position();
    let headers = r.varint("header count")?;
    if headers < 0 {
        return Err(Fault::Record(RecordBatchError::InvalidLength {
            index,
            position: header_position,
            field: "header count",
            length: headers,
        }));
    }
    // Each header reads at least two bytes inside the record: a count beyond what is left
    // fails at the first read past the end, so this loop is bounded by the record's length.
    for _ in 0..headers {
        r.skip_sized("header key length", "header key", false)?;
        r.skip_sized("header value length", "header value", true)?;
    }
    let consumed = r.source.position() - body_start;
    if consumed != length {
        return Err(Fault::Record(RecordBatchError::RecordSizeMismatch {
            index,
            position: start,
            declared: length,
            consumed,
        }));
    }
    Ok(Walked {
        timestamp_delta,
        has_key,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::compression::compress;
    use crate::config::CleanupPolicy;
    use rafka_protocol::record::{Record, RecordHeader};
    use rafka_protocol::record_batch::RecordBatchBuilder;
    use rafka_protocol::record_batch::{
        crc32c, RecordBatchMut, ATTRIBUTES_OFFSET, CONTROL_FLAG_MASK, CRC_OFFSET, CRC_START,
        LAST_OFFSET_DELTA_OFFSET, LENGTH_OFFSET, LOG_OVERHEAD, RECORDS_COUNT_OFFSET,
        TIMESTAMP_TYPE_MASK, TRANSACTIONAL_FLAG_MASK,
    };

    const NOW: i64 = 1_700_000_000_000;
    const CODECS: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    fn validator() -> LogValidator {
        LogValidator::new(&LogConfig::default(), NOW)
    }

    fn compacted() -> LogValidator {
        let config = LogConfig {
            cleanup_policy: CleanupPolicy::COMPACT,
            ..LogConfig::default()
        };
        LogValidator::new(&config, NOW)
    }

    fn check(v: &LogValidator, batch: &Bytes) -> Result<ValidatedRecords> {
        v.validate(&"t-0", batch)
    }

    fn record(offset_delta: i32, key: Option<&[u8]>, value: Option<&[u8]>) -> Record {
        Record {
            attributes: 0,
            timestamp_delta: 0,
            offset_delta,
            key: key.map(Bytes::copy_from_slice),
            value: value.map(Bytes::copy_from_slice),
            headers: Vec::new(),
        }
    }

    /// A v2 batch (baseOffset 0, timestamps NOW) around `region`, compressed with `codec`,
    /// claiming `count` records, with `attributes` or'ed in; lengths and CRC consistent.
    fn frame(region: &[u8], count: i32, codec: Compression, attributes: i16) -> Bytes {
        let mut header = RecordBatchBuilder::new(0);
        header.append(NOW, Some(b"k"), None, &[]).unwrap();
        let mut out = header.build()[..RECORDS_OFFSET].to_vec();
        out.extend_from_slice(&compress(codec, region).unwrap());
        let length = i32::try_from(out.len() - LOG_OVERHEAD).unwrap();
        out[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&length.to_be_bytes());
        let attrs = i16::from(codec.id()) | attributes;
        out[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attrs.to_be_bytes());
        out[LAST_OFFSET_DELTA_OFFSET..LAST_OFFSET_DELTA_OFFSET + 4]
            .copy_from_slice(&count.wrapping_sub(1).to_be_bytes());
        out[RECORDS_COUNT_OFFSET..RECORDS_COUNT_OFFSET + 4].copy_from_slice(&count.to_be_bytes());
        let crc = crc32c(&[&out[CRC_START..]]);
        out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        Bytes::from(out)
    }

    fn region(records: &[Record]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            r.write_to(&mut out).unwrap();
        }
        out
    }

    /// `n` keyed records with `value_len`-byte values and one header on odd ones.
    fn keyed(n: usize, value_len: usize) -> Vec<Record> {
        (0..n)
            .map(|i| {
                let mut r = record(
                    i32::try_from(i).unwrap(),
                    Some(format!("k{i}").as_bytes()),
                    Some(&vec![b'a' + (i % 26) as u8; value_len]),
                );
                if i % 2 == 1 {
                    r.headers.push(RecordHeader {
                        key: Bytes::from_static(b"h"),
                        value: Some(Bytes::from_static(b"v")),
                    });
                }
                r
            })
            .collect()
    }

    fn corrupt_record(e: StorageError) -> RecordBatchError {
        match e {
            StorageError::CorruptBatch { source, .. } => source,
            other => panic!("not a corrupt batch: {other:?}"),
        }
    }

    const GOLDEN: [&[u8]; 20] = {
        macro_rules! g {
            ($($name:literal),*) => {[$(include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"), "/../protocol/tests/data/librdkafka-batches/", $name
            )) as &[u8]),*]};
        }
        g!(
            "none-1.bin",
            "none-2.bin",
            "none-3.bin",
            "none-4.bin",
            "gzip-1.bin",
            "gzip-2.bin",
            "gzip-3.bin",
            "gzip-4.bin",
            "snappy-1.bin",
            "snappy-2.bin",
            "snappy-3.bin",
            "snappy-4.bin",
            "lz4-1.bin",
            "lz4-2.bin",
            "lz4-3.bin",
            "lz4-4.bin",
            "zstd-1.bin",
            "zstd-2.bin",
            "zstd-3.bin",
            "zstd-4.bin"
        )
    };

    /// What librdkafka 2.16 sent passes, at the time it was sent and on a compacted topic (every
    /// record has a key).
    #[test]
    fn librdkafka_batches_pass() {
        for golden in GOLDEN {
            let batch = Bytes::from_static(golden);
            let sent = RecordBatch::parse(batch.clone()).unwrap().max_timestamp();
            for compact in [false, true] {
                let config = LogConfig {
                    cleanup_policy: if compact {
                        CleanupPolicy::COMPACT
                    } else {
                        CleanupPolicy::DELETE
                    },
                    ..LogConfig::default()
                };
                let v = LogValidator::new(&config, sent);
                assert_eq!(check(&v, &batch).unwrap().bytes(), &batch);
            }
        }
    }

    /// Every codec, records spanning the 64 KiB scratch buffer (values of 100 KiB) and many
    /// small ones crossing its edges.
    #[test]
    fn every_codec_passes_with_records_across_the_scratch_buffer() {
        for codec in CODECS {
            for (n, len) in [(1, 0), (3, 100 << 10), (2000, 97), (1, 700_000)] {
                let batch = frame(&region(&keyed(n, len)), n as i32, codec, 0);
                check(&validator(), &batch).unwrap_or_else(|e| panic!("{codec} {n}x{len}: {e}"));
            }
        }
    }

    /// The batch: 62 bytes claiming 2^31-1 records (lastOffsetDelta consistent).
    #[test]
    fn a_record_count_the_bytes_do_not_hold_is_corrupt() {
        let one = region(&keyed(1, 0));
        for codec in CODECS {
            let batch = frame(&one, i32::MAX, codec, 0);
            assert_eq!(
                corrupt_record(check(&validator(), &batch).unwrap_err()),
                RecordBatchError::RecordCountMismatch {
                    declared: i32::MAX as usize,
                    found: 1
                },
                "{codec}"
            );
            // And fewer records claimed than there are.
            let two = region(&keyed(2, 5));
            let batch = frame(&two, 1, codec, 0);
            assert!(matches!(
                corrupt_record(check(&validator(), &batch).unwrap_err()),
                RecordBatchError::TrailingBytes {
                    record_count: 1,
                    ..
                }
            ));
        }
    }

    #[test]
    fn offset_deltas_must_count_from_zero() {
        for codec in CODECS {
            for deltas in [[1, 2], [0, 0], [0, 2], [1, 0]] {
                let records: Vec<_> = deltas
                    .iter()
                    .map(|&d| record(d, Some(b"k"), Some(b"v")))
                    .collect();
                let batch = frame(&region(&records), 2, codec, 0);
                assert!(matches!(
                    corrupt_record(check(&validator(), &batch).unwrap_err()),
                    RecordBatchError::OffsetDeltaMismatch { .. }
                ));
            }
        }
    }

    /// Hand-made records: every varint length out of bounds, negative or too long.
    #[test]
    fn lengths_out_of_bounds_are_corrupt() {
        let zz = |v: i64| {
            let mut out = Vec::new();
            let mut u = ((v << 1) ^ (v >> 63)) as u64;
            loop {
                if u < 0x80 {
                    out.push(u as u8);
                    return out;
                }
                out.push((u as u8 & 0x7f) | 0x80);
                u >>= 7;
            }
        };
        // body: attributes, timestamp delta, offset delta, then the rest as given.
        let rec = |rest: &[Vec<u8>], declared: Option<i64>| {
            let mut body = vec![0u8, 0, 0];
            for part in rest {
                body.extend_from_slice(part);
            }
            let mut out = zz(declared.unwrap_or(body.len() as i64));
            out.extend_from_slice(&body);
            out
        };
        let k = |len: i64, bytes: &[u8]| [zz(len), bytes.to_vec()].concat();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("good", rec(&[k(1, b"k"), k(1, b"v"), zz(0)], None)),
            (
                "record length beyond the batch",
                rec(&[k(1, b"k"), k(1, b"v"), zz(0)], Some(1 << 20)),
            ),
            (
                "negative record length",
                rec(&[k(1, b"k"), k(1, b"v"), zz(0)], Some(-1)),
            ),
            (
                "record length short of its fields",
                rec(&[k(1, b"k"), k(1, b"v"), zz(0)], Some(5)),
            ),
            (
                "record length past its fields",
                [rec(&[k(1, b"k"), k(1, b"v"), zz(0)], Some(8)), vec![0]].concat(),
            ),
            (
                "key length beyond the record",
                rec(&[k(100, b"k"), k(1, b"v"), zz(0)], None),
            ),
            ("key length -2", rec(&[k(-2, b""), k(1, b"v"), zz(0)], None)),
            (
                "value length beyond the record",
                rec(&[k(1, b"k"), k(i64::from(i32::MAX), b"v"), zz(0)], None),
            ),
            (
                "negative header count",
                rec(&[k(1, b"k"), k(1, b"v"), zz(-1)], None),
            ),
            (
                "header count 2^31-1",
                rec(
                    &[
                        k(1, b"k"),
                        k(1, b"v"),
                        zz(i64::from(i32::MAX)),
                        k(1, b"h"),
                        k(-1, b""),
                    ],
                    None,
                ),
            ),
            (
                "null header key",
                rec(
                    &[k(1, b"k"), k(1, b"v"), zz(1), k(-1, b""), k(-1, b"")],
                    None,
                ),
            ),
            (
                "header value beyond the record",
                rec(
                    &[k(1, b"k"), k(1, b"v"), zz(1), k(1, b"h"), k(9, b"v")],
                    None,
                ),
            ),
            (
                "a 6-byte varint",
                rec(
                    &[vec![0x80, 0x80, 0x80, 0x80, 0x80, 0x00], k(1, b"v"), zz(0)],
                    None,
                ),
            ),
            (
                "a varint beyond 32 bits",
                rec(
                    &[vec![0xff, 0xff, 0xff, 0xff, 0x1f], k(1, b"v"), zz(0)],
                    None,
                ),
            ),
            ("truncated varint", vec![0x80]),
        ];
        for codec in CODECS {
            for (name, bytes) in &cases {
                let batch = frame(bytes, 1, codec, 0);
                let result = check(&validator(), &batch);
                if *name == "good" {
                    result.unwrap();
                } else {
                    let e = corrupt_record(result.unwrap_err());
                    assert!(
                        matches!(
                            e,
                            RecordBatchError::RecordTruncated { .. }
                                | RecordBatchError::InvalidLength { .. }
                                | RecordBatchError::InvalidVarint { .. }
                                | RecordBatchError::RecordSizeMismatch { .. }
                                | RecordBatchError::TrailingBytes { .. }
                        ),
                        "{codec} {name}: {e}"
                    );
                }
            }
        }
    }

    #[test]
    fn control_batches_and_transactional_batches_without_producer_id_are_refused() {
        let records = region(&keyed(2, 3));
        for codec in CODECS {
            let batch = frame(&records, 2, codec, CONTROL_FLAG_MASK);
            match check(&validator(), &batch).unwrap_err() {
                StorageError::InvalidRecord {
                    reason,
                    record_errors,
                    ..
                } => {
                    assert_eq!(
                        reason,
                        "Clients are not allowed to write control records in topic partition t-0"
                    );
                    assert!(record_errors.is_empty());
                }
                other => panic!("{other:?}"),
            }
            let batch = frame(&records, 2, codec, TRANSACTIONAL_FLAG_MASK);
            assert!(matches!(
                check(&validator(), &batch).unwrap_err(),
                StorageError::InvalidRecord { position: 0, .. }
            ));
        }
    }

    #[test]
    fn null_keys_on_a_compacted_topic_are_invalid_records_each_named() {
        let mut records = keyed(5, 3);
        records[1].key = None;
        records[3].key = None;
        for codec in CODECS {
            let batch = frame(&region(&records), 5, codec, 0);
            check(&validator(), &batch).unwrap();
            match check(&compacted(), &batch).unwrap_err() {
                StorageError::InvalidRecord {
                    reason,
                    record_errors,
                    ..
                } => {
                    let indexes: Vec<_> = record_errors.iter().map(|e| e.batch_index).collect();
                    assert_eq!(indexes, [1, 3]);
                    assert_eq!(
                        record_errors[0].message,
                        "Compacted topic cannot accept message without key"
                    );
                    assert!(reason.contains("2 record errors"), "{reason}");
                }
                other => panic!("{other:?}"),
            }
        }
        // A bound on what one refusal carries.
        let many: Vec<_> = (0..MAX_RECORD_ERRORS as i32 + 10)
            .map(|i| record(i, None, Some(b"v")))
            .collect();
        let batch = frame(&region(&many), many.len() as i32, Compression::None, 0);
        let e = check(&compacted(), &batch).unwrap_err();
        assert_eq!(e.record_errors().len(), MAX_RECORD_ERRORS);
        assert!(e.to_string().contains("1010 record errors"), "{e}");
    }

    fn at(delta: i64) -> Record {
        Record {
            timestamp_delta: delta,
            ..record(0, Some(b"k"), Some(b"v"))
        }
    }

    #[test]
    fn timestamps_outside_the_topic_range_are_invalid_timestamps() {
        // frame() puts baseTimestamp at NOW.
        let after = LogConfig::default().message_timestamp_after_max_ms;
        assert_eq!(after, 3_600_000, "Kafka 4.0's default");
        let one_day = LogConfig {
            message_timestamp_before_max_ms: 86_400_000,
            ..LogConfig::default()
        };
        for codec in CODECS {
            for (config, delta, ok) in [
                (LogConfig::default(), after, true),
                (LogConfig::default(), after + 1, false),
                (LogConfig::default(), (1 << 62) - NOW, false),
                (LogConfig::default(), i64::MIN / 2, true), // before.max.ms is Long.MAX
                (one_day.clone(), -86_400_000, true),
                (one_day.clone(), -86_400_001, false),
                (one_day.clone(), -1 - NOW, true), // NO_TIMESTAMP is not checked
            ] {
                let batch = frame(&region(&[at(delta)]), 1, codec, 0);
                let result = LogValidator::new(&config, NOW).validate(&"t-0", &batch);
                match (ok, result) {
                    (true, Ok(_)) => {}
                    (false, Err(StorageError::InvalidTimestamp { record_errors, .. })) => {
                        assert_eq!(record_errors.len(), 1);
                        assert!(
                            record_errors[0].message.starts_with(&format!(
                                "Timestamp {} of message with offset 0 is out of range",
                                NOW.wrapping_add(delta)
                            )),
                            "{}",
                            record_errors[0].message
                        );
                    }
                    (ok, other) => panic!("{codec} {delta} expected ok={ok}: {other:?}"),
                }
            }
            // LogAppendTime set by a producer on a CreateTime topic.
            let batch = frame(&region(&[at(0)]), 1, codec, TIMESTAMP_TYPE_MASK);
            assert!(matches!(
                check(&validator(), &batch).unwrap_err(),
                StorageError::InvalidTimestamp { .. }
            ));
            // A LogAppendTime topic checks no timestamp.
            let config = LogConfig {
                log_append_time: true,
                ..LogConfig::default()
            };
            let batch = frame(&region(&[at(1 << 62)]), 1, codec, 0);
            LogValidator::new(&config, NOW)
                .validate(&"t-0", &batch)
                .unwrap();
        }
    }

    /// A batch whose header claims a maxTimestamp no record of the topic may have is refused
    /// before its records are read, whatever its records say; a claim within range passes.
    #[test]
    fn a_max_timestamp_outside_the_topic_range_is_an_invalid_timestamp() {
        for codec in CODECS {
            for (claimed, ok) in [(NOW, true), (NOW - 1000, true), (1 << 62, false)] {
                let mut batch = frame(&region(&[at(0)]), 1, codec, 0).to_vec();
                RecordBatchMut::new(&mut batch)
                    .unwrap()
                    .set_max_timestamp(TimestampType::CreateTime, claimed);
                let result = check(&validator(), &Bytes::from(batch));
                match (ok, result) {
                    (true, Ok(_)) => {}
                    (false, Err(StorageError::InvalidTimestamp { record_errors, .. })) => {
                        assert!(
                            record_errors[0].message.starts_with(&format!(
                                "The batch's maxTimestamp {claimed} is out of range"
                            )),
                            "{}",
                            record_errors[0].message
                        );
                    }
                    (ok, other) => panic!("{codec} {claimed} expected ok={ok}: {other:?}"),
                }
            }
        }
    }

    /// 32 MiB of zeros in one record, against a 1 MiB cap: refused as too large, and never
    /// decompressed whole (the scratch buffer is the only output buffer).
    #[test]
    fn decompression_bombs_stop_at_the_cap() {
        let zeros = region(&[record(0, Some(b"k"), Some(&vec![0u8; 32 << 20]))]);
        let v = LogValidator {
            max_decompressed_bytes: 1 << 20,
            max_message_bytes: 64 << 20,
            ..validator()
        };
        for codec in CODECS.into_iter().skip(1) {
            let batch = frame(&zeros, 1, codec, 0);
            match check(&v, &batch).unwrap_err() {
                StorageError::Decompression {
                    source: DecompressError::TooLarge { max_output, .. },
                    ..
                } => assert_eq!(max_output, 1 << 20),
                other => panic!("{codec}: {other:?}"),
            }
        }
    }

    /// Garbage payloads, truncated payloads and single bit flips (with the CRC fixed so they
    /// reach the codec): refused, never a panic.
    #[test]
    fn corrupt_compressed_payloads_are_corrupt_messages() {
        let records = region(&keyed(20, 40));
        for codec in CODECS.into_iter().skip(1) {
            let good = frame(&records, 20, codec, 0);
            check(&validator(), &good).unwrap();
            let garbage = {
                let mut b = good[..RECORDS_OFFSET].to_vec();
                b.extend_from_slice(b"this is not compressed at all");
                refresh(b)
            };
            assert!(matches!(
                check(&validator(), &garbage).unwrap_err(),
                StorageError::Decompression {
                    source: DecompressError::Corrupt { .. },
                    ..
                }
            ));
            let truncated = refresh(good[..good.len() - 3].to_vec());
            assert!(check(&validator(), &truncated).is_err(), "{codec}");
            for bit in (RECORDS_OFFSET * 8..good.len() * 8).step_by(3) {
                let mut b = good.to_vec();
                b[bit / 8] ^= 1 << (bit % 8);
                let _ = check(&validator(), &refresh(b));
            }
        }
    }

    /// Recomputes batchLength and the CRC of a hand-edited batch.
    fn refresh(mut out: Vec<u8>) -> Bytes {
        let length = i32::try_from(out.len() - LOG_OVERHEAD).unwrap();
        out[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&length.to_be_bytes());
        let crc = crc32c(&[&out[CRC_START..]]);
        out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        Bytes::from(out)
    }

    #[test]
    fn header_checks_still_apply() {
        let good = frame(&region(&keyed(2, 3)), 2, Compression::None, 0);
        let mut bad_crc = good.to_vec();
        bad_crc[CRC_OFFSET] ^= 1;
        assert!(matches!(
            corrupt_record(check(&validator(), &Bytes::from(bad_crc)).unwrap_err()),
            RecordBatchError::CrcMismatch { .. }
        ));
        assert!(matches!(
            check(&validator(), &Bytes::new()).unwrap_err(),
            StorageError::CorruptBatch { .. }
        ));
        let small = LogValidator {
            max_message_bytes: 50,
            ..validator()
        };
        assert!(matches!(
            check(&small, &good).unwrap_err(),
            StorageError::BatchTooLarge { .. }
        ));
        // Two good batches, then a bad one: refused, naming the third's position.
        let bad = frame(&region(&keyed(1, 3)), 2, Compression::None, 0);
        let all = Bytes::from([&good[..], &good[..], &bad[..]].concat());
        match check(&validator(), &all).unwrap_err() {
            StorageError::CorruptBatch { position, .. } => assert_eq!(position, 2 * good.len()),
            other => panic!("{other:?}"),
        }
    }

    /// A record of the differential test: a timestamp offset from NOW, key, value, headers.
    type Spec = (
        i64,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        Vec<(String, Option<Vec<u8>>)>,
    );

    fn specs() -> impl proptest::strategy::Strategy<Value = Vec<Spec>> {
        use proptest::prelude::*;
        let bytes =
            || proptest::option::weighted(0.8, proptest::collection::vec(any::<u8>(), 0..200));
        let header = (
            "[a-z]{0,6}",
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
        );
        let timestamp = prop_oneof![
            4 => -2_000i64..2_000,
            1 => any::<i64>().prop_map(|t| t / 2),
            1 => Just(NO_TIMESTAMP - NOW),
        ];
        proptest::collection::vec(
            (
                timestamp,
                bytes(),
                bytes(),
                proptest::collection::vec(header, 0..3),
            ),
            1..40,
        )
    }

    fn any_index() -> proptest::sample::IndexStrategy {
        proptest::prelude::any::<proptest::sample::Index>()
    }

    /// Runs the in-place check and the exact walk on `bytes` (a batch's bytes, perhaps
    /// damaged, with `batch`'s header fields) and returns (in place clean, exact walk clean).
    fn both(v: &LogValidator, batch: &RecordBatch, count: usize, bytes: &[u8]) -> (bool, bool) {
        let fast = v.clean_in_place(batch, count, bytes);
        let mut errors = RecordErrors::default();
        let mut source = SliceSource {
            buf: bytes,
            pos: RECORDS_OFFSET,
        };
        let exact = v.walk(batch, count, &mut source, &mut errors).is_ok() && errors.total == 0;
        (fast, exact)
    }

    proptest::proptest! {
        /// The in-place check never passes a batch the exact walk refuses, and passes every
        /// batch of small, ordinary records that the exact walk passes.
        #[test]
        fn the_in_place_check_passes_only_what_the_exact_walk_passes(
            records in specs(),
            compact in proptest::bool::ANY,
            log_append in proptest::bool::ANY,
            window in 0i64..3_000,
            damage in proptest::collection::vec((any_index(), proptest::num::u8::ANY), 0..4),
            cut in proptest::option::of(any_index()),
        ) {
            let mut builder = RecordBatchBuilder::new(0);
            for (offset, key, value, headers) in &records {
                let headers: Vec<(&str, Option<&[u8]>)> =
                    headers.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect();
                builder
                    .append(NOW.wrapping_add(*offset), key.as_deref(), value.as_deref(), &headers)
                    .unwrap();
            }
            let built = builder.build();
            let batch = RecordBatch::parse(built.clone()).unwrap();
            let count = records.len();
            let config = LogConfig {
                cleanup_policy: if compact { CleanupPolicy::COMPACT } else { LogConfig::default().cleanup_policy },
                log_append_time: log_append,
                message_timestamp_before_max_ms: window,
                message_timestamp_after_max_ms: window,
                ..LogConfig::default()
            };
            let v = LogValidator::new(&config, NOW);
            let (fast, exact) = both(&v, &batch, count, &built);
            proptest::prop_assert!(!fast || exact);
            // Every varint of an ordinary record fits the in-place check's encodings, a
            // timestamp delta beyond 2^62 excepted (ten bytes).
            let base = NOW.wrapping_add(records[0].0);
            let ordinary = records
                .iter()
                .all(|r| NOW.wrapping_add(r.0).wrapping_sub(base).unsigned_abs() < 1 << 62);
            if ordinary {
                proptest::prop_assert_eq!(fast, exact);
            }
            let mut bytes = built.to_vec();
            let region = bytes.len() - RECORDS_OFFSET;
            for (at, b) in &damage {
                bytes[RECORDS_OFFSET + at.index(region)] = *b;
            }
            if let Some(cut) = cut {
                bytes.truncate(RECORDS_OFFSET + cut.index(region + 1));
            }
            let (fast, exact) = both(&v, &batch, count, &bytes);
            proptest::prop_assert!(!fast || exact, "in place passed what the exact walk refuses");
        }
    }

    #[test]
    fn overlong_varints_go_to_the_exact_walk() {
        // One record, its length written in five bytes (0x80 0x80 0x80 0x80 0x00 is not a
        // valid length-0 varint of the exact walk's either; use a valid 5-byte form of 8).
        let mut builder = RecordBatchBuilder::new(0);
        builder.append(NOW, Some(b"k"), Some(b"v"), &[]).unwrap();
        let built = builder.build();
        let batch = RecordBatch::parse(built.clone()).unwrap();
        let mut bytes = built[..RECORDS_OFFSET].to_vec();
        let body = &built[RECORDS_OFFSET + 1..];
        let zigzag = (body.len() as u8) << 1;
        bytes.extend_from_slice(&[zigzag | 0x80, 0x80, 0x80, 0x80, 0x00]);
        bytes.extend_from_slice(body);
        let v = validator();
        assert_eq!(both(&v, &batch, 1, &bytes), (false, true));
        assert_eq!(both(&v, &batch, 1, &built), (true, true));
    }
}
