//! One transactional id's state (Kafka's `TransactionMetadata` and `TransactionState`), and its
//! record in `__transaction_state` (`TransactionLogKey` v0 / `TransactionLogValue` v0, or v1 for
//! a transaction of transactions v2 — KIP-890 part 2 — whose tagged fields carry the previous and
//! next producer ids and the client's transaction version; read at v0 and v1).

use crate::coordinator_common::{decode_record, encode_record};
use bytes::Bytes;
use rafka_protocol::messages::transaction_log_value::PartitionsSchema;
use rafka_protocol::messages::{TransactionLogKey, TransactionLogValue};
use std::collections::BTreeSet;

const KEY_VERSION: i16 = 0;
/// The value version for transactions v1 (what older readers know).
const VALUE_VERSION: i16 = 0;
/// The value version with the tagged fields of transactions v2.
const VALUE_VERSION_TV2: i16 = 1;

/// No producer id (Kafka's `RecordBatch.NO_PRODUCER_ID`).
pub const NO_PRODUCER_ID: i64 = -1;
/// No producer epoch.
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// The `transaction.version` whose EndTxn bumps the epoch (KIP-890 part 2).
pub const TRANSACTION_VERSION_2: i16 = 2;

/// Kafka's transaction states, with the ids it writes in `TransactionStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TransactionState {
    pub fn id(self) -> i8 {
        match self {
            TransactionState::Empty => 0,
            TransactionState::Ongoing => 1,
            TransactionState::PrepareCommit => 2,
            TransactionState::PrepareAbort => 3,
            TransactionState::CompleteCommit => 4,
            TransactionState::CompleteAbort => 5,
            TransactionState::Dead => 6,
            TransactionState::PrepareEpochFence => 7,
        }
    }

    pub fn from_id(id: i8) -> Option<TransactionState> {
        Some(match id {
            0 => TransactionState::Empty,
            1 => TransactionState::Ongoing,
            2 => TransactionState::PrepareCommit,
            3 => TransactionState::PrepareAbort,
            4 => TransactionState::CompleteCommit,
            5 => TransactionState::CompleteAbort,
            6 => TransactionState::Dead,
            7 => TransactionState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// The state named `name` (Kafka's `TransactionState.fromName`, exact case).
    pub fn from_name(name: &str) -> Option<TransactionState> {
        [
            TransactionState::Empty,
            TransactionState::Ongoing,
            TransactionState::PrepareCommit,
            TransactionState::PrepareAbort,
            TransactionState::CompleteCommit,
            TransactionState::CompleteAbort,
            TransactionState::Dead,
            TransactionState::PrepareEpochFence,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }

    /// Kafka's names (ListTransactions, DescribeTransactions).
    pub fn name(self) -> &'static str {
        match self {
            TransactionState::Empty => "Empty",
            TransactionState::Ongoing => "Ongoing",
            TransactionState::PrepareCommit => "PrepareCommit",
            TransactionState::PrepareAbort => "PrepareAbort",
            TransactionState::CompleteCommit => "CompleteCommit",
            TransactionState::CompleteAbort => "CompleteAbort",
            TransactionState::Dead => "Dead",
            TransactionState::PrepareEpochFence => "PrepareEpochFence",
        }
    }
}

/// What the coordinator knows of one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionMetadata {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub txn_timeout_ms: i32,
    pub state: TransactionState,
    /// The partitions added to the ongoing transaction (or the one being completed).
    pub partitions: BTreeSet<(String, i32)>,
    pub txn_start_timestamp: i64,
    pub txn_last_update_timestamp: i64,
    /// The producer id before the last transition (Kafka's `prevProducerId`): after an epoch
    /// overflow rolled to a new id, a retried EndTxn names this one.
    pub prev_producer_id: i64,
    /// The producer id a Prepare* state rolls to when it completes (its epoch was exhausted).
    pub next_producer_id: i64,
    /// The epoch before the last bump (in memory only, as in Kafka).
    pub last_producer_epoch: i16,
    /// The client's transaction version (0: transactions v1; 2: KIP-890 part 2, the epoch is
    /// bumped at every EndTxn).
    pub client_transaction_version: i16,
}

impl TransactionMetadata {
    /// A new id's state before its first InitProducerId is written.
    pub fn new(producer_id: i64, txn_timeout_ms: i32, now: i64) -> TransactionMetadata {
        TransactionMetadata {
            producer_id,
            producer_epoch: NO_PRODUCER_EPOCH,
            txn_timeout_ms,
            state: TransactionState::Empty,
            partitions: BTreeSet::new(),
            txn_start_timestamp: -1,
            txn_last_update_timestamp: now,
            prev_producer_id: NO_PRODUCER_ID,
            next_producer_id: NO_PRODUCER_ID,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            client_transaction_version: 0,
        }
    }

    /// Whether EndTxn bumps the epoch for this transaction (transactions v2).
    pub fn bumps_epoch_on_end(&self) -> bool {
        self.client_transaction_version >= TRANSACTION_VERSION_2
    }

    /// Kafka's `isProducerEpochExhausted`: no client may use `i16::MAX`, so that the
    /// coordinator can always fence it.
    pub fn epoch_exhausted(&self) -> bool {
        self.producer_epoch >= i16::MAX - 1
    }

    /// The record that stores this state.
    pub fn to_record(&self, transactional_id: &str) -> (Bytes, Option<Bytes>) {
        let key = TransactionLogKey {
            transactional_id: transactional_id.to_owned(),
        };
        let partitions = if self.partitions.is_empty() {
            None
        } else {
            let mut topics: Vec<PartitionsSchema> = Vec::new();
            for (topic, p) in &self.partitions {
                match topics.last_mut() {
                    Some(t) if &t.topic == topic => t.partition_ids.push(*p),
                    _ => topics.push(PartitionsSchema {
                        topic: topic.clone(),
                        partition_ids: vec![*p],
                        ..Default::default()
                    }),
                }
            }
            Some(topics)
        };
        let value = TransactionLogValue {
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            transaction_timeout_ms: self.txn_timeout_ms,
            transaction_status: self.state.id(),
            transaction_partitions: partitions,
            transaction_last_update_timestamp_ms: self.txn_last_update_timestamp,
            transaction_start_timestamp_ms: self.txn_start_timestamp,
            previous_producer_id: self.prev_producer_id,
            next_producer_id: self.next_producer_id,
            client_transaction_version: self.client_transaction_version,
            ..Default::default()
        };
        // v1 only where its tagged fields matter: a transactions v1 id keeps the bytes older
        // readers (and rafka before KIP-890 part 2) know.
        let version = if self.bumps_epoch_on_end() || self.next_producer_id != NO_PRODUCER_ID {
            VALUE_VERSION_TV2
        } else {
            VALUE_VERSION
        };
        (
            encode_record(&key, KEY_VERSION),
            Some(encode_record(&value, version)),
        )
    }
}

/// The tombstone that removes `transactional_id` from `__transaction_state` (its expiry).
pub fn tombstone(transactional_id: &str) -> (Bytes, Option<Bytes>) {
    let key = TransactionLogKey {
        transactional_id: transactional_id.to_owned(),
    };
    (encode_record(&key, KEY_VERSION), None)
}

/// One record of `__transaction_state`: the id and its state (`None`: a tombstone).
pub type TransactionRecord = (String, Option<TransactionMetadata>);

/// Reads one record of `__transaction_state`.
pub fn read_record(
    key: Option<&Bytes>,
    value: Option<&Bytes>,
) -> Result<TransactionRecord, String> {
    let key = key.ok_or("a __transaction_state record without a key")?;
    let key: TransactionLogKey = decode_record(key, 0..=0)?;
    let Some(value) = value else {
        return Ok((key.transactional_id, None));
    };
    let v: TransactionLogValue = decode_record(value, 0..=1)?;
    let state = TransactionState::from_id(v.transaction_status)
        .ok_or_else(|| format!("unknown transaction status {}", v.transaction_status))?;
    let partitions = v
        .transaction_partitions
        .unwrap_or_default()
        .into_iter()
        .flat_map(|t| {
            let topic = t.topic;
            t.partition_ids.into_iter().map(move |p| (topic.clone(), p))
        })
        .collect();
    Ok((
        key.transactional_id,
        Some(TransactionMetadata {
            producer_id: v.producer_id,
            producer_epoch: v.producer_epoch,
            txn_timeout_ms: v.transaction_timeout_ms,
            state,
            partitions,
            txn_start_timestamp: v.transaction_start_timestamp_ms,
            txn_last_update_timestamp: v.transaction_last_update_timestamp_ms,
            prev_producer_id: v.previous_producer_id,
            next_producer_id: v.next_producer_id,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            client_transaction_version: v.client_transaction_version,
        }),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_in_kafkas_layout() {
        let m = TransactionMetadata {
            producer_id: 7,
            producer_epoch: 2,
            txn_timeout_ms: 60_000,
            state: TransactionState::Ongoing,
            partitions: [
                ("a".to_owned(), 1),
                ("a".to_owned(), 0),
                ("b".to_owned(), 3),
            ]
            .into_iter()
            .collect(),
            txn_start_timestamp: 100,
            txn_last_update_timestamp: 200,
            ..TransactionMetadata::new(7, 60_000, 0)
        };
        let (k, v) = m.to_record("tx");
        // Key: version 0, then the id as an int16-prefixed string.
        assert_eq!(&k[..], &[0, 0, 0, 2, b't', b'x']);
        let v = v.unwrap();
        // Value v0: version, producer id, epoch, timeout, status 1 (Ongoing), ...
        assert_eq!(&v[..2], &[0, 0]);
        assert_eq!(&v[2..10], &7i64.to_be_bytes());
        assert_eq!(&v[10..12], &2i16.to_be_bytes());
        assert_eq!(&v[12..16], &60_000i32.to_be_bytes());
        assert_eq!(v[16], 1);
        let (id, back) = read_record(Some(&k), Some(&v)).unwrap();
        assert_eq!(id, "tx");
        assert_eq!(back.unwrap(), m);
        assert_eq!(
            read_record(Some(&k), None).unwrap(),
            ("tx".to_owned(), None)
        );
        assert!(read_record(None, Some(&v)).is_err());
        assert!(read_record(Some(&k), Some(&Bytes::from_static(&[0, 0, 1]))).is_err());
    }

    #[test]
    fn transactions_v2_state_is_written_at_value_v1_with_its_tagged_fields() {
        let m = TransactionMetadata {
            producer_epoch: i16::MAX,
            state: TransactionState::PrepareCommit,
            partitions: [("a".to_owned(), 0)].into_iter().collect(),
            txn_start_timestamp: 100,
            prev_producer_id: 7,
            next_producer_id: 8,
            client_transaction_version: TRANSACTION_VERSION_2,
            ..TransactionMetadata::new(7, 60_000, 0)
        };
        let (k, v) = m.to_record("tx");
        let v = v.unwrap();
        assert_eq!(&v[..2], &[0, 1], "value version 1");
        let (_, back) = read_record(Some(&k), Some(&v)).unwrap();
        assert_eq!(back.unwrap(), m);
        // A transactions v1 state stays at v0, and reads back with the fields' defaults.
        let v1 = TransactionMetadata {
            producer_epoch: 3,
            ..TransactionMetadata::new(9, 1_000, 5)
        };
        let (k, v) = v1.to_record("tx");
        let v = v.unwrap();
        assert_eq!(&v[..2], &[0, 0]);
        assert_eq!(read_record(Some(&k), Some(&v)).unwrap().1.unwrap(), v1);
    }
}
