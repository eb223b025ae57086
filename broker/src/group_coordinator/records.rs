//! The group coordinator's records in `__consumer_offsets`, as Kafka writes them: a key and a
//! value, each an int16 version then the struct (`protocol/schema/group_coordinator_records.schema`).
//!
//! - offset commit: key `OffsetCommitKey` v1 (group, topic, partition), value
//!   `OffsetCommitValue` v3 (offset, leader epoch, metadata, commit timestamp); a null value
//!   deletes the offset.
//! - group metadata: key `GroupMetadataKey` v2 (group), value `GroupMetadataValue`; a null
//!   value deletes the group.
//!
//! - consumer groups (KIP-848): key types 3–8, in `consumer/records.rs`.
//!
//! Reading accepts every version Kafka has written (keys 0–2, values up to 4), so a log
//! directory that Kafka wrote loads too.

use crate::coordinator_common::encode_record as encode;
use bytes::Bytes;
use rafka_protocol::messages::{
    GroupMetadataKey, GroupMetadataValue, OffsetCommitKey, OffsetCommitValue,
};
use rafka_protocol::Message;

/// The value version we write for offset commits (no expire timestamp: KIP-211).
const OFFSET_VALUE_VERSION: i16 = 3;
const OFFSET_KEY_VERSION: i16 = 1;
const GROUP_KEY_VERSION: i16 = 2;

/// A committed offset (Kafka's `OffsetAndMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAndMetadata {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
}

/// One record of `__consumer_offsets`, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum CoordinatorRecord {
    /// An offset commit; `None` deletes it.
    Offset {
        group: String,
        topic: String,
        partition: i32,
        value: Option<OffsetAndMetadata>,
    },
    /// A group's metadata; `None` deletes the group.
    Group {
        group: String,
        value: Option<GroupMetadataValue>,
    },
    /// A consumer group's record (KIP-848, key types 3–8).
    Consumer {
        group: String,
        record: super::consumer::records::ConsumerRecord,
    },
}

/// Why a record could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("a __consumer_offsets record without a key")]
    NoKey,
    #[error("unknown __consumer_offsets key version {0}")]
    UnknownKeyVersion(i16),
    #[error("malformed __consumer_offsets record: {0}")]
    Malformed(String),
}

fn decode<M: Message>(
    bytes: &Bytes,
    allowed: std::ops::RangeInclusive<i16>,
) -> Result<M, RecordError> {
    crate::coordinator_common::decode_record(bytes, allowed).map_err(RecordError::Malformed)
}

/// The key and value of an offset commit (`value` None: a tombstone).
pub fn offset_commit(
    group: &str,
    topic: &str,
    partition: i32,
    value: Option<&OffsetAndMetadata>,
) -> (Bytes, Option<Bytes>) {
    let key = OffsetCommitKey {
        group: group.to_owned(),
        topic: topic.to_owned(),
        partition,
        ..Default::default()
    };
    let value = value.map(|v| {
        let value = OffsetCommitValue {
            offset: v.offset,
            leader_epoch: v.leader_epoch,
            metadata: v.metadata.clone(),
            commit_timestamp: v.commit_timestamp,
            ..Default::default()
        };
        encode(&value, OFFSET_VALUE_VERSION)
    });
    (encode(&key, OFFSET_KEY_VERSION), value)
}

/// The value version we write for group metadata (Kafka's `GROUP_METADATA_VALUE_VERSION`).
const GROUP_VALUE_VERSION: i16 = 3;

/// The key and value of a group's metadata record.
pub fn group_metadata(group: &str, value: &GroupMetadataValue) -> (Bytes, Option<Bytes>) {
    let (key, _) = group_tombstone(group);
    (key, Some(encode(value, GROUP_VALUE_VERSION)))
}

/// The key of a group's metadata record, and its tombstone's (null) value.
pub fn group_tombstone(group: &str) -> (Bytes, Option<Bytes>) {
    let key = GroupMetadataKey {
        group: group.to_owned(),
        ..Default::default()
    };
    (encode(&key, GROUP_KEY_VERSION), None)
}

/// Reads one record of `__consumer_offsets`.
pub fn read(key: Option<&Bytes>, value: Option<&Bytes>) -> Result<CoordinatorRecord, RecordError> {
    let key = key.ok_or(RecordError::NoKey)?;
    if key.len() < 2 {
        return Err(RecordError::Malformed(
            "key shorter than its version".into(),
        ));
    }
    match i16::from_be_bytes([key[0], key[1]]) {
        0 | 1 => {
            let k = decode::<OffsetCommitKey>(key, 0..=1)?;
            let value = match value {
                None => None,
                Some(v) => {
                    let v = decode::<OffsetCommitValue>(v, 0..=4)?;
                    Some(OffsetAndMetadata {
                        offset: v.offset,
                        leader_epoch: v.leader_epoch,
                        metadata: v.metadata,
                        commit_timestamp: v.commit_timestamp,
                    })
                }
            };
            Ok(CoordinatorRecord::Offset {
                group: k.group,
                topic: k.topic,
                partition: k.partition,
                value,
            })
        }
        2 => {
            let k = decode::<GroupMetadataKey>(key, 2..=2)?;
            let value = match value {
                None => None,
                Some(v) => Some(decode::<GroupMetadataValue>(v, 0..=4)?),
            };
            Ok(CoordinatorRecord::Group {
                group: k.group,
                value,
            })
        }
        3..=8 => {
            let (group, record) = super::consumer::records::ConsumerRecord::decode(key, value)
                .map_err(RecordError::Malformed)?;
            Ok(CoordinatorRecord::Consumer { group, record })
        }
        v => Err(RecordError::UnknownKeyVersion(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes Kafka's `GroupCoordinatorRecordHelpers.newOffsetCommitRecord` writes, built by
    /// hand from the documented layout (int16 version, then big-endian fields; strings as an
    /// int16 length and UTF-8).
    #[test]
    fn offset_commit_bytes_are_kafkas() {
        let v = OffsetAndMetadata {
            offset: 42,
            leader_epoch: 7,
            metadata: "m".into(),
            commit_timestamp: 0x0102_0304_0506_0708,
        };
        let (key, value) = offset_commit("g", "topic", 3, Some(&v));
        let mut want_key = vec![0, 1, 0, 1, b'g', 0, 5];
        want_key.extend_from_slice(b"topic");
        want_key.extend_from_slice(&[0, 0, 0, 3]);
        assert_eq!(key.as_ref(), want_key.as_slice());
        let mut want_value = vec![0, 3];
        want_value.extend_from_slice(&42i64.to_be_bytes());
        want_value.extend_from_slice(&7i32.to_be_bytes());
        want_value.extend_from_slice(&[0, 1, b'm']);
        want_value.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(value.as_deref(), Some(want_value.as_slice()));
        assert_eq!(
            read(Some(&key), value.as_ref()),
            Ok(CoordinatorRecord::Offset {
                group: "g".into(),
                topic: "topic".into(),
                partition: 3,
                value: Some(v),
            })
        );
        // A tombstone.
        let (key, none) = offset_commit("g", "topic", 3, None);
        assert_eq!(none, None);
        assert!(matches!(
            read(Some(&key), None),
            Ok(CoordinatorRecord::Offset { value: None, .. })
        ));
    }

    /// The bytes of Kafka's `newGroupMetadataRecord` (GroupMetadataValue v3), built by hand:
    /// int16 version; strings as int16 length + UTF-8 (null: -1); bytes as int32 length;
    /// arrays as an int32 count.
    #[test]
    fn group_metadata_bytes_are_kafkas() {
        use rafka_protocol::messages::group_metadata_value::MemberMetadata;
        let value = GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 5,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp: 0x0102_0304_0506_0708,
            members: vec![
                MemberMetadata {
                    member_id: "m1".into(),
                    group_instance_id: Some("i".into()),
                    client_id: "c".into(),
                    client_host: "/h".into(),
                    rebalance_timeout: 300_000,
                    session_timeout: 6000,
                    subscription: Bytes::from_static(&[9, 8]),
                    assignment: Bytes::from_static(&[7]),
                    ..Default::default()
                },
                MemberMetadata {
                    member_id: "m2".into(),
                    group_instance_id: None,
                    client_id: "".into(),
                    client_host: "h".into(),
                    rebalance_timeout: 1,
                    session_timeout: 2,
                    subscription: Bytes::new(),
                    assignment: Bytes::new(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let (key, v) = group_metadata("g", &value);
        assert_eq!(key.as_ref(), &[0, 2, 0, 1, b'g']);
        let mut want = vec![0, 3];
        want.extend_from_slice(&[0, 8]);
        want.extend_from_slice(b"consumer");
        want.extend_from_slice(&5i32.to_be_bytes());
        want.extend_from_slice(&[0, 5]);
        want.extend_from_slice(b"range");
        want.extend_from_slice(&[0, 2, b'm', b'1']);
        want.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        want.extend_from_slice(&2i32.to_be_bytes());
        // m1
        want.extend_from_slice(&[0, 2, b'm', b'1']);
        want.extend_from_slice(&[0, 1, b'i']);
        want.extend_from_slice(&[0, 1, b'c']);
        want.extend_from_slice(&[0, 2, b'/', b'h']);
        want.extend_from_slice(&300_000i32.to_be_bytes());
        want.extend_from_slice(&6000i32.to_be_bytes());
        want.extend_from_slice(&[0, 0, 0, 2, 9, 8]);
        want.extend_from_slice(&[0, 0, 0, 1, 7]);
        // m2: a null group instance id, empty strings and bytes
        want.extend_from_slice(&[0, 2, b'm', b'2']);
        want.extend_from_slice(&[0xff, 0xff]);
        want.extend_from_slice(&[0, 0]);
        want.extend_from_slice(&[0, 1, b'h']);
        want.extend_from_slice(&1i32.to_be_bytes());
        want.extend_from_slice(&2i32.to_be_bytes());
        want.extend_from_slice(&[0, 0, 0, 0]);
        want.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(v.as_deref(), Some(want.as_slice()));
        assert_eq!(
            read(Some(&key), v.as_ref()),
            Ok(CoordinatorRecord::Group {
                group: "g".into(),
                value: Some(value)
            })
        );
        // An Empty group's record: no protocol, no leader (nulls), no members.
        let empty = GroupMetadataValue {
            protocol_type: "".into(),
            generation: 0,
            protocol: None,
            leader: None,
            current_state_timestamp: -1,
            members: vec![],
            ..Default::default()
        };
        let (_, v) = group_metadata("g", &empty);
        let mut want = vec![0, 3, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        want.extend_from_slice(&(-1i64).to_be_bytes());
        want.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(v.as_deref(), Some(want.as_slice()));
    }

    #[test]
    fn older_versions_and_group_records_read() {
        // OffsetCommitValue v1 (with an expire timestamp), as Kafka before 2.1 wrote.
        let mut v1 = vec![0, 1];
        v1.extend_from_slice(&9i64.to_be_bytes());
        v1.extend_from_slice(&[0, 0]);
        v1.extend_from_slice(&5i64.to_be_bytes());
        v1.extend_from_slice(&6i64.to_be_bytes());
        let (key, _) = offset_commit("g", "t", 0, None);
        match read(Some(&key), Some(&Bytes::from(v1))) {
            Ok(CoordinatorRecord::Offset { value: Some(v), .. }) => {
                assert_eq!((v.offset, v.leader_epoch, v.commit_timestamp), (9, -1, 5));
            }
            other => panic!("{other:?}"),
        }
        let (key, none) = group_tombstone("g");
        assert_eq!(key.as_ref(), &[0, 2, 0, 1, b'g']);
        assert_eq!(
            read(Some(&key), none.as_ref()),
            Ok(CoordinatorRecord::Group {
                group: "g".into(),
                value: None
            })
        );
    }

    #[test]
    fn bad_records_are_errors() {
        assert_eq!(read(None, None), Err(RecordError::NoKey));
        assert_eq!(
            read(Some(&Bytes::from_static(&[0, 9, 0, 0])), None),
            Err(RecordError::UnknownKeyVersion(9))
        );
        assert!(read(Some(&Bytes::from_static(&[0, 1, 0, 5, b'x'])), None).is_err());
        assert!(read(Some(&Bytes::from_static(&[0])), None).is_err());
        let (key, _) = offset_commit("g", "t", 0, None);
        assert!(read(Some(&key), Some(&Bytes::from_static(&[0, 3, 1]))).is_err());
    }
}
