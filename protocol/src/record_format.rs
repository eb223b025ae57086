//! The RecordBatch v2 format's shared vocabulary: the header layout (field offsets), the
//! attribute flags and sentinel values, the [`Compression`] and [`TimestampType`] codes, the
//! batch checksum ([`crc32c`]) and [`RecordBatchError`], which readers and writers of both
//! batches and records return.
//!
//! It owns no type that reads or writes a batch: the header view is [`crate::record_batch`],
//! records are [`crate::record`], and [`crate::record_batch_builder`] writes batches. All three
//! build on this module, which builds on nothing of theirs. Everything public here is
//! re-exported by [`crate::record_batch`], where Kafka keeps it (`DefaultRecordBatch`,
//! `RecordBatch`).

use std::fmt;

// Header layout (Kafka's `DefaultRecordBatch`); see [`RecordBatch`].
pub const BASE_OFFSET_OFFSET: usize = 0;
pub const LENGTH_OFFSET: usize = 8;
pub const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;
pub const MAGIC_OFFSET: usize = 16;
pub const CRC_OFFSET: usize = 17;
pub const ATTRIBUTES_OFFSET: usize = 21;
pub const LAST_OFFSET_DELTA_OFFSET: usize = 23;
pub const BASE_TIMESTAMP_OFFSET: usize = 27;
pub const MAX_TIMESTAMP_OFFSET: usize = 35;
pub const PRODUCER_ID_OFFSET: usize = 43;
pub const PRODUCER_EPOCH_OFFSET: usize = 51;
pub const BASE_SEQUENCE_OFFSET: usize = 53;
pub const RECORDS_COUNT_OFFSET: usize = 57;
pub const RECORDS_OFFSET: usize = 61;
/// Size of the header: the smallest possible batch.
pub const RECORD_BATCH_OVERHEAD: usize = RECORDS_OFFSET;
/// baseOffset + batchLength: the bytes not counted by batchLength (Kafka's `LOG_OVERHEAD`).
pub const LOG_OVERHEAD: usize = 12;
/// The CRC covers the batch from here to its end.
pub const CRC_START: usize = ATTRIBUTES_OFFSET;
pub const MAGIC_V2: i8 = 2;

pub const COMPRESSION_CODEC_MASK: i16 = 0x07;
pub const TIMESTAMP_TYPE_MASK: i16 = 0x08;
pub const TRANSACTIONAL_FLAG_MASK: i16 = 0x10;
pub const CONTROL_FLAG_MASK: i16 = 0x20;
pub const DELETE_HORIZON_FLAG_MASK: i16 = 0x40;

pub const NO_PRODUCER_ID: i64 = -1;
pub const NO_PRODUCER_EPOCH: i16 = -1;
pub const NO_SEQUENCE: i32 = -1;
pub const NO_PARTITION_LEADER_EPOCH: i32 = -1;

/// Everything that can be wrong with a batch or one of its records. Batch-level variants name
/// the batch's baseOffset; record-level ones the record's index and its byte position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordBatchError {
    #[error(
        "record batch of {size} bytes is shorter than its {RECORD_BATCH_OVERHEAD}-byte header"
    )]
    TooShort { size: usize },
    #[error("record batch at offset {base_offset}: batch length {batch_length} does not match its {size} bytes")]
    LengthMismatch {
        base_offset: i64,
        batch_length: i32,
        size: usize,
    },
    #[error("record batch at offset {base_offset}: batch length {batch_length} is below the minimum {}", RECORD_BATCH_OVERHEAD - LOG_OVERHEAD)]
    InvalidBatchLength { base_offset: i64, batch_length: i32 },
    #[error(
        "truncated record batch at byte {position}: it needs {needed} bytes, {available} remain"
    )]
    Truncated {
        position: usize,
        needed: usize,
        available: usize,
    },
    #[error("record batch at offset {base_offset}: unsupported magic {magic}")]
    UnsupportedMagic { base_offset: i64, magic: i8 },
    #[error("record batch at offset {base_offset}: crc mismatch, header has {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        base_offset: i64,
        stored: u32,
        computed: u32,
    },
    #[error("record batch at offset {base_offset}: unknown compression codec {codec}")]
    UnknownCompression { base_offset: i64, codec: u8 },
    #[error("record batch at offset {base_offset}: invalid record count {record_count}")]
    InvalidRecordCount { base_offset: i64, record_count: i32 },
    #[error("record batch at offset {base_offset}: last offset delta {last_offset_delta} inconsistent with record count {record_count}")]
    LastOffsetDeltaMismatch {
        base_offset: i64,
        last_offset_delta: i32,
        record_count: i32,
    },
    #[error("record batch at offset {base_offset}: invalid base sequence {base_sequence} for producer id {producer_id}")]
    InvalidSequence {
        base_offset: i64,
        producer_id: i64,
        base_sequence: i32,
    },
    #[error("record batch at offset {base_offset}: cannot iterate records of a compressed batch here ({compression})")]
    Compressed {
        base_offset: i64,
        compression: Compression,
    },
    #[error("record batch at offset {base_offset}: record {index} has offset delta {offset_delta}, expected {expected}")]
    OffsetDeltaMismatch {
        base_offset: i64,
        index: usize,
        offset_delta: i32,
        expected: i32,
    },
    #[error("records: {declared} declared but the bytes end after {found}")]
    RecordCountMismatch { declared: usize, found: usize },
    #[error("records: {remaining} bytes remain at byte {position} after the last of {record_count} records")]
    TrailingBytes {
        position: usize,
        remaining: usize,
        record_count: usize,
    },
    #[error("record {index}: {field} truncated at byte {position}")]
    RecordTruncated {
        index: usize,
        position: usize,
        field: &'static str,
    },
    #[error("record {index}: {field} at byte {position} is not a valid varint (too long or out of range)")]
    InvalidVarint {
        index: usize,
        position: usize,
        field: &'static str,
    },
    #[error("record {index}: invalid {field} {length} at byte {position}")]
    InvalidLength {
        index: usize,
        position: usize,
        field: &'static str,
        length: i32,
    },
    #[error("record {index} at byte {position}: record length {declared} but its fields take {consumed} bytes")]
    RecordSizeMismatch {
        index: usize,
        position: usize,
        declared: usize,
        consumed: usize,
    },
    #[error("record batch builder: {what} exceeds the format's int32 limit")]
    BuilderOverflow { what: &'static str },
    #[error("invalid control record: {reason}")]
    InvalidControlRecord { reason: &'static str },
}

/// The compression codec in attribute bits 0-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// The codec's id in the attributes, as Kafka's `CompressionType.id`.
    pub fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// Kafka's name for the codec, as in `compression.type`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    pub(crate) fn from_id(id: u8) -> Option<Compression> {
        [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ]
        .into_iter()
        .find(|c| c.id() == id)
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Attribute bit 3: whose clock the timestamps are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// `N` big-endian bytes at `at`. Callers have checked the buffer holds them (every view
/// holds the whole header), so a miss is a bug here, not bad input.
pub(crate) fn field<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    buf.get(at..at + N)
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .expect("invariant: the buffer was checked to hold the batch header")
}

pub(crate) fn put_field(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf.get_mut(at..at + bytes.len())
        .expect("invariant: the buffer was checked to hold the batch header")
        .copy_from_slice(bytes);
}

pub(crate) fn timestamp_type_of(attributes: i16) -> TimestampType {
    if attributes & TIMESTAMP_TYPE_MASK != 0 {
        TimestampType::LogAppendTime
    } else {
        TimestampType::CreateTime
    }
}

/// CRC-32C (Castagnoli), the batch checksum, of `parts` one after another (a rewritten header
/// and the payload after it, say).
///
/// `crc-fast` folds with VPCLMULQDQ (AVX-512) or PCLMULQDQ and the SSE4.2 CRC instruction, or
/// PMULL on aarch64, picked at run time from what the CPU has, with a table-driven fallback
/// elsewhere: the produce path checks every byte it appends, so this is most of what an append
/// costs beyond the write.
pub fn crc32c(parts: &[&[u8]]) -> u32 {
    match parts {
        [one] => crc_fast::crc32_iscsi(one),
        _ => {
            let mut digest = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
            for p in parts {
                digest.update(p);
            }
            // CRC-32 state in the low 32 bits.
            digest.finalize() as u32
        }
    }
}

pub(crate) fn crc_of(buf: &[u8]) -> u32 {
    crc32c(&[buf.get(CRC_START..).unwrap_or_default()])
}
