//! Crate errors to Kafka error codes: one exhaustive `match` per crate error, so a new variant
//! forces a decision.

use rafka_protocol::ErrorCode;
use rafka_storage::compression::DecompressError;
use rafka_storage::producer_state::ProducerError;
use rafka_storage::StorageError;

/// The error code a client gets for a storage error.
pub fn storage_error_code(e: &StorageError) -> ErrorCode {
    match e {
        StorageError::CorruptBatch { .. } => ErrorCode::CorruptMessage,
        StorageError::BatchTooLarge { .. } => ErrorCode::MessageTooLarge,
        StorageError::Decompression { source, .. } => match source {
            DecompressError::Corrupt { .. } => ErrorCode::CorruptMessage,
            DecompressError::TooLarge { .. } => ErrorCode::MessageTooLarge,
        },
        StorageError::InvalidRecord { .. } => ErrorCode::InvalidRecord,
        StorageError::InvalidTimestamp { .. } => ErrorCode::InvalidTimestamp,
        StorageError::AppendTooLarge { .. } => ErrorCode::RecordListTooLarge,
        StorageError::OffsetsOutOfOrder { .. } => ErrorCode::UnknownServerError,
        StorageError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
        StorageError::Producer { source, .. } => match source {
            ProducerError::InvalidProducerEpoch { .. } => ErrorCode::InvalidProducerEpoch,
            ProducerError::OutOfOrderSequence { .. } => ErrorCode::OutOfOrderSequenceNumber,
            ProducerError::InvalidTxnState { .. } | ProducerError::NotVerified { .. } => {
                ErrorCode::InvalidTxnState
            }
            ProducerError::ProducerFenced { .. } => ErrorCode::ProducerFenced,
            ProducerError::CoordinatorFenced { .. } => ErrorCode::TransactionCoordinatorFenced,
        },
        StorageError::InvalidArgument { .. } => ErrorCode::InvalidRequest,
        StorageError::Io { .. } | StorageError::CorruptFile { .. } => ErrorCode::KafkaStorageError,
    }
}
