//! Writing uncompressed RecordBatch v2 batches of the broker's own (Kafka's
//! `MemoryRecordsBuilder`): control records, internal topics, tests.
//!
//! This module owns only the assembling of a batch: the header layout and its constants come
//! from [`crate::record_format`], each record's bytes from [`crate::record`]. It never
//! compresses. [`crate::record_batch`] re-exports the builder.

use bytes::Bytes;

use crate::record::write_record;
use crate::record_format::{
    crc_of, put_field, RecordBatchError, TimestampType, CONTROL_FLAG_MASK, CRC_OFFSET,
    LOG_OVERHEAD, MAGIC_V2, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
    NO_SEQUENCE, RECORD_BATCH_OVERHEAD, TIMESTAMP_TYPE_MASK, TRANSACTIONAL_FLAG_MASK,
};

/// Writes an uncompressed batch of the broker's own (control records, internal topics,
/// tests). baseTimestamp is the first record's timestamp, maxTimestamp the largest; the
/// producer fields default to "none" and the partition leader epoch to -1.
#[derive(Debug, Clone)]
pub struct RecordBatchBuilder {
    base_offset: i64,
    partition_leader_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    timestamp_type: TimestampType,
    is_transactional: bool,
    is_control: bool,
    base_timestamp: i64,
    max_timestamp: i64,
    record_count: i32,
    records: Vec<u8>,
}

impl RecordBatchBuilder {
    pub fn new(base_offset: i64) -> RecordBatchBuilder {
        RecordBatchBuilder {
            base_offset,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
            timestamp_type: TimestampType::CreateTime,
            is_transactional: false,
            is_control: false,
            base_timestamp: 0,
            max_timestamp: 0,
            record_count: 0,
            records: Vec::new(),
        }
    }

    pub fn partition_leader_epoch(mut self, epoch: i32) -> RecordBatchBuilder {
        self.partition_leader_epoch = epoch;
        self
    }

    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// With LogAppendTime, pass the append time as each record's timestamp.
    pub fn timestamp_type(mut self, timestamp_type: TimestampType) -> RecordBatchBuilder {
        self.timestamp_type = timestamp_type;
        self
    }

    pub fn transactional(mut self, is_transactional: bool) -> RecordBatchBuilder {
        self.is_transactional = is_transactional;
        self
    }

    pub fn control(mut self, is_control: bool) -> RecordBatchBuilder {
        self.is_control = is_control;
        self
    }

    pub fn record_count(&self) -> i32 {
        self.record_count
    }

    /// Appends a record at the next offset and returns that offset. Fails, changing
    /// nothing, if a length, the record count or the batch size would not fit in an int32.
    pub fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> Result<i64, RecordBatchError> {
        let offset_delta = self.record_count;
        if offset_delta == i32::MAX {
            return Err(RecordBatchError::BuilderOverflow {
                what: "record count",
            });
        }
        let base_timestamp = if offset_delta == 0 {
            timestamp
        } else {
            self.base_timestamp
        };
        let start = self.records.len();
        let written = write_record(
            &mut self.records,
            offset_delta,
            timestamp.wrapping_sub(base_timestamp),
            key,
            value,
            headers,
        );
        let fits = i32::try_from(RECORD_BATCH_OVERHEAD - LOG_OVERHEAD + self.records.len()).is_ok();
        if written.is_err() || !fits {
            self.records.truncate(start);
            written?;
            return Err(RecordBatchError::BuilderOverflow {
                what: "batch length",
            });
        }
        self.base_timestamp = base_timestamp;
        self.max_timestamp = if offset_delta == 0 {
            timestamp
        } else {
            self.max_timestamp.max(timestamp)
        };
        self.record_count += 1;
        Ok(self.base_offset.wrapping_add(i64::from(offset_delta)))
    }

    /// The batch, CRC included; empty bytes (no batch at all) if nothing was appended, as
    /// Kafka's `MemoryRecordsBuilder` builds `MemoryRecords.EMPTY`.
    pub fn build(&self) -> Bytes {
        if self.record_count == 0 {
            return Bytes::new();
        }
        let mut attributes = 0i16; // compression none
        if self.timestamp_type == TimestampType::LogAppendTime {
            attributes |= TIMESTAMP_TYPE_MASK;
        }
        if self.is_transactional {
            attributes |= TRANSACTIONAL_FLAG_MASK;
        }
        if self.is_control {
            attributes |= CONTROL_FLAG_MASK;
        }
        // append() keeps this within an int32.
        let batch_length = (RECORD_BATCH_OVERHEAD - LOG_OVERHEAD + self.records.len()) as i32;
        let mut out = Vec::with_capacity(RECORD_BATCH_OVERHEAD + self.records.len());
        out.extend_from_slice(&self.base_offset.to_be_bytes());
        out.extend_from_slice(&batch_length.to_be_bytes());
        out.extend_from_slice(&self.partition_leader_epoch.to_be_bytes());
        out.extend_from_slice(&MAGIC_V2.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes()); // crc, below
        out.extend_from_slice(&attributes.to_be_bytes());
        out.extend_from_slice(&(self.record_count - 1).to_be_bytes());
        out.extend_from_slice(&self.base_timestamp.to_be_bytes());
        out.extend_from_slice(&self.max_timestamp.to_be_bytes());
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.producer_epoch.to_be_bytes());
        out.extend_from_slice(&self.base_sequence.to_be_bytes());
        out.extend_from_slice(&self.record_count.to_be_bytes());
        out.extend_from_slice(&self.records);
        let crc = crc_of(&out);
        put_field(&mut out, CRC_OFFSET, &crc.to_be_bytes());
        Bytes::from(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::record::{Record, RecordHeader};
    use crate::record_batch::RecordBatch;
    use proptest::prelude::*;

    fn records(batch: &RecordBatch) -> Vec<Record> {
        batch.records().unwrap().collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn builder_writes_what_it_was_given() {
        let mut builder = RecordBatchBuilder::new(42)
            .partition_leader_epoch(3)
            .producer(9, 1, 5)
            .transactional(true)
            .control(true);
        assert_eq!(
            builder.append(1000, Some(b"k"), None, &[("a", None), ("b", Some(b"x"))]),
            Ok(42)
        );
        assert_eq!(builder.append(900, None, Some(b""), &[]), Ok(43));
        let b = RecordBatch::parse(builder.build()).unwrap();
        assert_eq!(b.validate(), Ok(()));
        assert_eq!(
            (
                b.base_offset(),
                b.partition_leader_epoch(),
                b.record_count()
            ),
            (42, 3, 2)
        );
        assert_eq!(
            (b.producer_id(), b.producer_epoch(), b.base_sequence()),
            (9, 1, 5)
        );
        assert!(b.is_transactional() && b.is_control());
        assert_eq!(
            (b.base_timestamp(), b.max_timestamp(), b.last_offset()),
            (1000, 1000, 43)
        );
        let rs = records(&b);
        assert_eq!(
            rs[0].headers,
            [
                RecordHeader {
                    key: Bytes::from_static(b"a"),
                    value: None
                },
                RecordHeader {
                    key: Bytes::from_static(b"b"),
                    value: Some(Bytes::from_static(b"x"))
                },
            ]
        );
        assert_eq!(
            (rs[1].key.clone(), rs[1].value.clone()),
            (None, Some(Bytes::new()))
        );
        assert_eq!((rs[1].timestamp(&b), rs[1].offset(&b)), (900, 43));
        assert!(RecordBatchBuilder::new(0).build().is_empty());
    }

    type Header = (String, Option<Vec<u8>>);
    type Rec = (i64, Option<Vec<u8>>, Option<Vec<u8>>, Vec<Header>);

    fn rec() -> impl Strategy<Value = Rec> {
        let bytes = || proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40));
        let header = ("[a-z\u{e9}]{0,8}", bytes());
        (
            any::<i64>(),
            bytes(),
            bytes(),
            proptest::collection::vec(header, 0..4),
        )
    }

    proptest! {
        #[test]
        fn builder_output_iterates_to_its_input(
            recs in proptest::collection::vec(rec(), 1..20),
            base_offset in any::<i64>(),
            producer in (-1i64..1000, -1i16..10, 0i32..1000),
            log_append in any::<bool>(),
        ) {
            let timestamp_type = if log_append { TimestampType::LogAppendTime } else { TimestampType::CreateTime };
            let mut builder = RecordBatchBuilder::new(base_offset)
                .producer(producer.0, producer.1, producer.2)
                .timestamp_type(timestamp_type);
            for (ts, key, value, headers) in &recs {
                let headers: Vec<_> = headers.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect();
                builder.append(*ts, key.as_deref(), value.as_deref(), &headers).unwrap();
            }
            let b = RecordBatch::parse(builder.build()).unwrap();
            prop_assert_eq!(b.validate(), Ok(()));
            prop_assert_eq!(b.timestamp_type(), timestamp_type);
            prop_assert_eq!(b.base_timestamp(), recs[0].0);
            prop_assert_eq!(b.max_timestamp(), recs.iter().map(|r| r.0).max().unwrap());
            let got = records(&b);
            prop_assert_eq!(got.len(), recs.len());
            for (i, (r, (ts, key, value, headers))) in got.iter().zip(&recs).enumerate() {
                prop_assert_eq!(r.offset(&b), base_offset.wrapping_add(i as i64));
                if !log_append {
                    prop_assert_eq!(r.timestamp(&b), *ts);
                }
                prop_assert_eq!(r.key.as_deref(), key.as_deref());
                prop_assert_eq!(r.value.as_deref(), value.as_deref());
                let got_headers: Vec<_> = r.headers.iter()
                    .map(|h| (h.key_str().unwrap().to_owned(), h.value.as_deref().map(<[u8]>::to_vec)))
                    .collect();
                prop_assert_eq!(&got_headers, headers);
            }
        }

    }
}
