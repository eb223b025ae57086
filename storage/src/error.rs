//! The storage crate's one error type, and the two refusals it carries that the broker maps
//! apart: [`ProducerError`] (an idempotent or transactional producer's batch refused, raised by
//! [`crate::producer_state`]) and [`DecompressError`] (raised by [`crate::compression`]). Both
//! modules re-export theirs. Messages name the subject (partition, offset, path); the broker maps
//! each variant to a Kafka error code with an exhaustive `match`.
//!
//! This module depends on no other module of the crate, so every module can return its errors.

use rafka_protocol::record_batch::{Compression, RecordBatchError};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A batch failed validation (CRC, magic, lengths, offsets): CORRUPT_MESSAGE.
    #[error("{partition}: corrupt batch at byte {position} of the request: {source}")]
    CorruptBatch {
        partition: String,
        position: usize,
        source: RecordBatchError,
    },
    /// A compressed batch whose payload does not decompress (CORRUPT_MESSAGE) or decompresses
    /// to more than the log allows (MESSAGE_TOO_LARGE; see [`crate::log_validator`]).
    #[error("{partition}: batch at byte {position} of the request: {source}")]
    Decompression {
        partition: String,
        position: usize,
        source: DecompressError,
    },
    /// A batch Kafka's `LogValidator` refuses as INVALID_RECORD: a control batch from a
    /// client, or records without a key on a compacted topic (then `record_errors` names them).
    #[error("{reason}")]
    InvalidRecord {
        partition: String,
        position: usize,
        reason: String,
        record_errors: Vec<RecordError>,
    },
    /// Records whose timestamps are out of the topic's range, or a LogAppendTime batch from a
    /// producer: INVALID_TIMESTAMP, with `record_errors`.
    #[error("One or more records have been rejected due to invalid timestamp")]
    InvalidTimestamp {
        partition: String,
        position: usize,
        record_errors: Vec<RecordError>,
    },
    /// A batch larger than `max.message.bytes`: MESSAGE_TOO_LARGE.
    #[error("{partition}: batch of {size} bytes exceeds max.message.bytes {max}")]
    BatchTooLarge {
        partition: String,
        size: usize,
        max: usize,
    },
    /// The whole append is larger than a segment can hold: RECORD_LIST_TOO_LARGE.
    #[error("{partition}: append of {size} bytes exceeds segment.bytes {max}")]
    AppendTooLarge {
        partition: String,
        size: usize,
        max: usize,
    },
    /// A follower append that overlaps or goes below the log end: the follower must truncate.
    #[error("{partition}: follower append at offset {first_offset} is below the log end offset {log_end_offset}")]
    OffsetsOutOfOrder {
        partition: String,
        first_offset: i64,
        log_end_offset: i64,
    },
    /// An idempotent producer's batch out of sequence or from a fenced epoch:
    /// OUT_OF_ORDER_SEQUENCE_NUMBER or INVALID_PRODUCER_EPOCH.
    #[error("{partition}: {source}")]
    Producer {
        partition: String,
        source: ProducerError,
    },
    /// A read outside [log start, log end]: OFFSET_OUT_OF_RANGE.
    #[error("{partition}: offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        partition: String,
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    /// An argument the caller should never pass (a truncation above the log end, a log start
    /// offset beyond the high watermark...).
    #[error("{partition}: {what}")]
    InvalidArgument { partition: String, what: String },
    /// An I/O error on a file of the log directory: KAFKA_STORAGE_ERROR; the directory goes
    /// offline.
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file we wrote does not parse (a checkpoint, an index we cannot rebuild).
    #[error("{path}: {what}")]
    CorruptFile { path: PathBuf, what: String },
}

impl StorageError {
    /// The per-record refusals, for Produce's `record_errors` (empty for most errors).
    pub fn record_errors(&self) -> &[RecordError] {
        match self {
            StorageError::InvalidRecord { record_errors, .. }
            | StorageError::InvalidTimestamp { record_errors, .. } => record_errors,
            _ => &[],
        }
    }
}

/// One record a produce refused, as Produce's `record_errors` (Kafka's `RecordError`): its
/// index in the batch and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub batch_index: i32,
    pub message: String,
}

/// Why a producer's batch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerError {
    /// INVALID_PRODUCER_EPOCH (Kafka ≥ 2.7 answers this rather than PRODUCER_FENCED).
    #[error("epoch {epoch} of producer {producer_id} is older than its last epoch {current}")]
    InvalidProducerEpoch {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
    /// OUT_OF_ORDER_SEQUENCE_NUMBER.
    #[error("out of order sequence number for producer {producer_id} at epoch {epoch}: {found}, expected {expected}")]
    OutOfOrderSequence {
        producer_id: i64,
        epoch: i16,
        found: i32,
        expected: i32,
    },
    /// INVALID_TXN_STATE: a non-transactional batch from a producer with an open transaction.
    #[error(
        "expected a transactional write from producer {producer_id}, which has a transaction open"
    )]
    InvalidTxnState { producer_id: i64 },
    /// INVALID_TXN_STATE: a transactional batch that would open a transaction without the
    /// coordinator's verification (KIP-890 part 1), or verified before a marker ended it.
    #[error("transactional batch of producer {producer_id} at epoch {epoch} opens a transaction the coordinator has not verified")]
    NotVerified { producer_id: i64, epoch: i16 },
    /// PRODUCER_FENCED: an end marker for an epoch older than the producer's.
    #[error(
        "end marker for producer {producer_id} at epoch {epoch} is older than its epoch {current}"
    )]
    ProducerFenced {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
    /// TRANSACTION_COORDINATOR_FENCED: an end marker from an older coordinator.
    #[error("end marker for producer {producer_id} from coordinator epoch {coordinator_epoch}, older than {current}")]
    CoordinatorFenced {
        producer_id: i64,
        coordinator_epoch: i32,
        current: i32,
    },
}

/// Why a records region could not be decompressed.
#[derive(Debug, thiserror::Error)]
pub enum DecompressError {
    /// The bytes are not a valid stream of the codec: a bad header or checksum, truncation,
    /// trailing bytes.
    #[error("{codec}: corrupt stream: {source}")]
    Corrupt {
        codec: Compression,
        source: std::io::Error,
    },
    /// The stream decodes to more than the caller's `max_output` bytes.
    #[error("{codec}: output exceeds {max_output} bytes")]
    TooLarge {
        codec: Compression,
        max_output: usize,
    },
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Attaches a path to an I/O error.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| StorageError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}
