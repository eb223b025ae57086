//! Control records: the COMMIT and ABORT markers that end a transaction in a partition (Kafka's
//! `ControlRecordType` and `EndTransactionMarker`).
//!
//! A marker is a batch of its own, with the control and transactional flags, the producer's id
//! and epoch, base sequence -1, uncompressed, holding one record: key `version int16 (0), type
//! int16` (0 ABORT, 1 COMMIT), value `version int16 (0), coordinator_epoch int32`. Only the
//! broker writes them (WriteTxnMarkers); a client's control batch is refused by the validator.

use crate::record_batch::{RecordBatch, RecordBatchError, NO_SEQUENCE};
use crate::record_batch_builder::RecordBatchBuilder;
use bytes::Bytes;

const CONTROL_KEY_VERSION: i16 = 0;
const END_TXN_MARKER_VERSION: i16 = 0;

/// The kind of a control record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlRecordType {
    Abort,
    Commit,
}

impl ControlRecordType {
    pub fn id(self) -> i16 {
        match self {
            ControlRecordType::Abort => 0,
            ControlRecordType::Commit => 1,
        }
    }
}

/// One end-of-transaction marker as it is in a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndTransactionMarker {
    pub control_type: ControlRecordType,
    pub coordinator_epoch: i32,
}

impl EndTransactionMarker {
    /// The marker batch for a producer, at offset 0 (the log assigns the real one).
    pub fn batch(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        timestamp: i64,
    ) -> Result<Bytes, RecordBatchError> {
        let mut key = Vec::with_capacity(4);
        key.extend_from_slice(&CONTROL_KEY_VERSION.to_be_bytes());
        key.extend_from_slice(&self.control_type.id().to_be_bytes());
        let mut value = Vec::with_capacity(6);
        value.extend_from_slice(&END_TXN_MARKER_VERSION.to_be_bytes());
        value.extend_from_slice(&self.coordinator_epoch.to_be_bytes());
        let mut b = RecordBatchBuilder::new(0)
            .producer(producer_id, producer_epoch, NO_SEQUENCE)
            .transactional(true)
            .control(true);
        b.append(timestamp, Some(&key), Some(&value), &[])?;
        Ok(b.build())
    }

    /// Reads the marker of a control batch. `None` for a control record of another type (Kafka
    /// has others, which are not transaction ends) or a batch that is not a control batch.
    pub fn parse(batch: &RecordBatch) -> Result<Option<EndTransactionMarker>, RecordBatchError> {
        if !batch.is_control() {
            return Ok(None);
        }
        let Some(record) = batch.records()?.next() else {
            return Ok(None);
        };
        let record = record?;
        let key = record.key.unwrap_or_default();
        if key.len() < 4 {
            return Err(RecordBatchError::InvalidControlRecord {
                reason: "control record key shorter than 4 bytes",
            });
        }
        let control_type = match i16::from_be_bytes([key[2], key[3]]) {
            0 => ControlRecordType::Abort,
            1 => ControlRecordType::Commit,
            _ => return Ok(None),
        };
        let value = record.value.unwrap_or_default();
        if value.len() < 6 {
            return Err(RecordBatchError::InvalidControlRecord {
                reason: "end transaction marker value shorter than 6 bytes",
            });
        }
        let coordinator_epoch = i32::from_be_bytes([value[2], value[3], value[4], value[5]]);
        Ok(Some(EndTransactionMarker {
            control_type,
            coordinator_epoch,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_round_trips_in_kafkas_layout() {
        let m = EndTransactionMarker {
            control_type: ControlRecordType::Commit,
            coordinator_epoch: 7,
        };
        let bytes = m.batch(42, 3, 1000).unwrap();
        let batch = RecordBatch::parse(bytes).unwrap();
        batch.ensure_valid().unwrap();
        assert!(batch.is_control() && batch.is_transactional());
        assert_eq!(
            (
                batch.producer_id(),
                batch.producer_epoch(),
                batch.base_sequence()
            ),
            (42, 3, -1)
        );
        let r = batch.records().unwrap().next().unwrap().unwrap();
        assert_eq!(&r.key.unwrap()[..], &[0, 0, 0, 1]);
        assert_eq!(&r.value.unwrap()[..], &[0, 0, 0, 0, 0, 7]);
        assert_eq!(EndTransactionMarker::parse(&batch).unwrap(), Some(m));
    }
}
