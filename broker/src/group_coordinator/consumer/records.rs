//! The `__consumer_offsets` records of consumer groups (KIP-848), as Kafka 4.0 writes them: the
//! key's int16 version is the record type (3 group metadata, 4 partition metadata, 5 member
//! metadata, 6 target assignment metadata, 7 target assignment member, 8 current member
//! assignment), each value is version 0; a null value is a tombstone.
//!
//! [`MemberState`] is defined here, as the values its records carry (the group re-exports it).

use super::assignor::Assignment;
use bytes::{Bytes, BytesMut};
use rafka_protocol::messages::consumer_group_current_member_assignment_value::RecordTopicPartitions;
use rafka_protocol::messages::consumer_group_member_metadata_value::{
    ClassicMemberMetadata as WireClassicMember, ClassicProtocol as WireClassicProtocol,
};
use rafka_protocol::messages::consumer_group_partition_metadata_value::TopicMetadata;
use rafka_protocol::messages::consumer_group_target_assignment_member_value::RecordTopicPartitions as TargetTopicPartitions;
use rafka_protocol::messages::{
    ConsumerGroupCurrentMemberAssignmentKey, ConsumerGroupCurrentMemberAssignmentValue,
    ConsumerGroupMemberMetadataKey, ConsumerGroupMemberMetadataValue, ConsumerGroupMetadataKey,
    ConsumerGroupMetadataValue, ConsumerGroupPartitionMetadataKey,
    ConsumerGroupPartitionMetadataValue, ConsumerGroupTargetAssignmentMemberKey,
    ConsumerGroupTargetAssignmentMemberValue, ConsumerGroupTargetAssignmentMetadataKey,
    ConsumerGroupTargetAssignmentMetadataValue,
};
use rafka_protocol::{Message, Uuid};
use std::collections::BTreeMap;

/// Kafka's `MemberState`, with its record values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    Stable = 0,
    UnrevokedPartitions = 1,
    UnreleasedPartitions = 2,
    Unknown = 127,
}

impl MemberState {
    pub fn from_i8(v: i8) -> MemberState {
        match v {
            0 => MemberState::Stable,
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => MemberState::Unknown,
        }
    }
}

/// What a member's metadata record holds (record 5).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberMetadata {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
    /// Set for a member that speaks the classic protocol (JoinGroup, SyncGroup, Heartbeat)
    /// inside a consumer group (Kafka's `ClassicMemberMetadata`, KIP-848's online migration).
    pub classic: Option<ClassicMember>,
}

/// What a classic member of a consumer group joined with (record 5's `ClassicMemberMetadata`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClassicMember {
    pub session_timeout_ms: i32,
    /// Its JoinGroup protocols (name, ConsumerProtocolSubscription), in preference order.
    pub protocols: Vec<(String, Bytes)>,
}

/// A member's current assignment (record 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentAssignment {
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: MemberState,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
}

/// One consumer-group record, decoded; `None` values are tombstones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerRecord {
    GroupEpoch(Option<i32>),
    /// Subscribed topics: id → (name, partition count).
    PartitionMetadata(Option<BTreeMap<Uuid, (String, i32)>>),
    Member(String, Option<MemberMetadata>),
    AssignmentEpoch(Option<i32>),
    TargetAssignment(String, Option<Assignment>),
    CurrentAssignment(String, Option<CurrentAssignment>),
}

fn encode<M: Message>(m: &M, version: i16) -> Bytes {
    let mut out = BytesMut::with_capacity(2 + m.size_at(version));
    out.extend_from_slice(&version.to_be_bytes());
    // Our own values, at versions we implement: encoding cannot fail.
    if let Err(e) = rafka_protocol::encode(m, &mut out, version) {
        tracing::error!(error = %e, "cannot encode a consumer group record");
    }
    out.freeze()
}

fn decode<M: Message>(bytes: &Bytes, version: i16) -> Result<M, String> {
    if bytes.len() < 2 || i16::from_be_bytes([bytes[0], bytes[1]]) != version {
        return Err(format!("{}: not version {version}", M::NAME));
    }
    rafka_protocol::decode(bytes, &bytes[2..], version).map_err(|e| e.to_string())
}

fn to_wire(a: &Assignment) -> Vec<RecordTopicPartitions> {
    a.iter()
        .map(|(t, p)| RecordTopicPartitions {
            topic_id: *t,
            partitions: p.iter().copied().collect(),
            ..Default::default()
        })
        .collect()
}

fn from_wire(v: Vec<(Uuid, Vec<i32>)>) -> Assignment {
    v.into_iter()
        .filter(|(_, p)| !p.is_empty())
        .map(|(t, p)| (t, p.into_iter().collect()))
        .collect()
}

impl ConsumerRecord {
    /// The key and value (None: tombstone) of this record of `group`.
    pub fn encode(&self, group: &str) -> (Bytes, Option<Bytes>) {
        let g = group.to_owned();
        match self {
            ConsumerRecord::GroupEpoch(v) => (
                encode(
                    &ConsumerGroupMetadataKey {
                        group_id: g,
                        ..Default::default()
                    },
                    3,
                ),
                v.map(|epoch| {
                    encode(
                        &ConsumerGroupMetadataValue {
                            epoch,
                            ..Default::default()
                        },
                        0,
                    )
                }),
            ),
            ConsumerRecord::PartitionMetadata(v) => (
                encode(
                    &ConsumerGroupPartitionMetadataKey {
                        group_id: g,
                        ..Default::default()
                    },
                    4,
                ),
                v.as_ref().map(|topics| {
                    let value = ConsumerGroupPartitionMetadataValue {
                        topics: topics
                            .iter()
                            .map(|(id, (name, n))| TopicMetadata {
                                topic_id: *id,
                                topic_name: name.clone(),
                                num_partitions: *n,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    };
                    encode(&value, 0)
                }),
            ),
            ConsumerRecord::Member(m, v) => (
                encode(
                    &ConsumerGroupMemberMetadataKey {
                        group_id: g,
                        member_id: m.clone(),
                        ..Default::default()
                    },
                    5,
                ),
                v.as_ref().map(|v| {
                    let value = ConsumerGroupMemberMetadataValue {
                        instance_id: v.instance_id.clone(),
                        rack_id: v.rack_id.clone(),
                        client_id: v.client_id.clone(),
                        client_host: v.client_host.clone(),
                        subscribed_topic_names: v.subscribed_topic_names.clone(),
                        subscribed_topic_regex: v.subscribed_topic_regex.clone(),
                        rebalance_timeout_ms: v.rebalance_timeout_ms,
                        server_assignor: v.server_assignor.clone(),
                        classic_member_metadata: v.classic.as_ref().map(|c| WireClassicMember {
                            session_timeout_ms: c.session_timeout_ms,
                            supported_protocols: c
                                .protocols
                                .iter()
                                .map(|(name, metadata)| WireClassicProtocol {
                                    name: name.clone(),
                                    metadata: metadata.clone(),
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    };
                    encode(&value, 0)
                }),
            ),
            ConsumerRecord::AssignmentEpoch(v) => (
                encode(
                    &ConsumerGroupTargetAssignmentMetadataKey {
                        group_id: g,
                        ..Default::default()
                    },
                    6,
                ),
                v.map(|assignment_epoch| {
                    let value = ConsumerGroupTargetAssignmentMetadataValue {
                        assignment_epoch,
                        ..Default::default()
                    };
                    encode(&value, 0)
                }),
            ),
            ConsumerRecord::TargetAssignment(m, v) => (
                encode(
                    &ConsumerGroupTargetAssignmentMemberKey {
                        group_id: g,
                        member_id: m.clone(),
                        ..Default::default()
                    },
                    7,
                ),
                v.as_ref().map(|a| {
                    let value = ConsumerGroupTargetAssignmentMemberValue {
                        topic_partitions: a
                            .iter()
                            .map(|(t, p)| TargetTopicPartitions {
                                topic_id: *t,
                                partitions: p.iter().copied().collect(),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    };
                    encode(&value, 0)
                }),
            ),
            ConsumerRecord::CurrentAssignment(m, v) => (
                encode(
                    &ConsumerGroupCurrentMemberAssignmentKey {
                        group_id: g,
                        member_id: m.clone(),
                        ..Default::default()
                    },
                    8,
                ),
                v.as_ref().map(|c| {
                    let value = ConsumerGroupCurrentMemberAssignmentValue {
                        member_epoch: c.member_epoch,
                        previous_member_epoch: c.previous_member_epoch,
                        state: c.state as i8,
                        assigned_partitions: to_wire(&c.assigned),
                        partitions_pending_revocation: to_wire(&c.pending_revocation),
                        ..Default::default()
                    };
                    encode(&value, 0)
                }),
            ),
        }
    }

    /// Reads a record whose key has version (record type) 3–8: the group and the record.
    pub fn decode(key: &Bytes, value: Option<&Bytes>) -> Result<(String, ConsumerRecord), String> {
        if key.len() < 2 {
            return Err("key shorter than its version".into());
        }
        let ty = i16::from_be_bytes([key[0], key[1]]);
        Ok(match ty {
            3 => {
                let k: ConsumerGroupMetadataKey = decode(key, 3)?;
                let v = value
                    .map(|v| decode::<ConsumerGroupMetadataValue>(v, 0).map(|v| v.epoch))
                    .transpose()?;
                (k.group_id, ConsumerRecord::GroupEpoch(v))
            }
            4 => {
                let k: ConsumerGroupPartitionMetadataKey = decode(key, 4)?;
                let v = value
                    .map(|v| {
                        decode::<ConsumerGroupPartitionMetadataValue>(v, 0).map(|v| {
                            v.topics
                                .into_iter()
                                .map(|t| (t.topic_id, (t.topic_name, t.num_partitions)))
                                .collect()
                        })
                    })
                    .transpose()?;
                (k.group_id, ConsumerRecord::PartitionMetadata(v))
            }
            5 => {
                let k: ConsumerGroupMemberMetadataKey = decode(key, 5)?;
                let v = value
                    .map(|v| {
                        decode::<ConsumerGroupMemberMetadataValue>(v, 0).map(|v| MemberMetadata {
                            instance_id: v.instance_id,
                            rack_id: v.rack_id,
                            client_id: v.client_id,
                            client_host: v.client_host,
                            subscribed_topic_names: v.subscribed_topic_names,
                            subscribed_topic_regex: v.subscribed_topic_regex,
                            rebalance_timeout_ms: v.rebalance_timeout_ms,
                            server_assignor: v.server_assignor,
                            classic: v.classic_member_metadata.map(|c| ClassicMember {
                                session_timeout_ms: c.session_timeout_ms,
                                protocols: c
                                    .supported_protocols
                                    .into_iter()
                                    .map(|p| (p.name, p.metadata))
                                    .collect(),
                            }),
                        })
                    })
                    .transpose()?;
                (k.group_id, ConsumerRecord::Member(k.member_id, v))
            }
            6 => {
                let k: ConsumerGroupTargetAssignmentMetadataKey = decode(key, 6)?;
                let v = value
                    .map(|v| {
                        decode::<ConsumerGroupTargetAssignmentMetadataValue>(v, 0)
                            .map(|v| v.assignment_epoch)
                    })
                    .transpose()?;
                (k.group_id, ConsumerRecord::AssignmentEpoch(v))
            }
            7 => {
                let k: ConsumerGroupTargetAssignmentMemberKey = decode(key, 7)?;
                let v = value
                    .map(|v| {
                        decode::<ConsumerGroupTargetAssignmentMemberValue>(v, 0).map(|v| {
                            from_wire(
                                v.topic_partitions
                                    .into_iter()
                                    .map(|t| (t.topic_id, t.partitions))
                                    .collect(),
                            )
                        })
                    })
                    .transpose()?;
                (k.group_id, ConsumerRecord::TargetAssignment(k.member_id, v))
            }
            8 => {
                let k: ConsumerGroupCurrentMemberAssignmentKey = decode(key, 8)?;
                let v = value
                    .map(|v| {
                        decode::<ConsumerGroupCurrentMemberAssignmentValue>(v, 0).map(|v| {
                            let wire = |x: Vec<RecordTopicPartitions>| {
                                from_wire(
                                    x.into_iter().map(|t| (t.topic_id, t.partitions)).collect(),
                                )
                            };
                            CurrentAssignment {
                                member_epoch: v.member_epoch,
                                previous_member_epoch: v.previous_member_epoch,
                                state: MemberState::from_i8(v.state),
                                assigned: wire(v.assigned_partitions),
                                pending_revocation: wire(v.partitions_pending_revocation),
                            }
                        })
                    })
                    .transpose()?;
                (
                    k.group_id,
                    ConsumerRecord::CurrentAssignment(k.member_id, v),
                )
            }
            other => return Err(format!("not a consumer group record type: {other}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let t = Uuid([7; 16]);
        let a: Assignment = [(t, [0, 2].into())].into();
        let recs = vec![
            ConsumerRecord::GroupEpoch(Some(4)),
            ConsumerRecord::GroupEpoch(None),
            ConsumerRecord::PartitionMetadata(Some([(t, ("orders".to_string(), 3))].into())),
            ConsumerRecord::Member(
                "m1".into(),
                Some(MemberMetadata {
                    instance_id: Some("i".into()),
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    subscribed_topic_names: vec!["orders".into()],
                    subscribed_topic_regex: Some("ord.*".into()),
                    rebalance_timeout_ms: 300_000,
                    ..Default::default()
                }),
            ),
            ConsumerRecord::Member(
                "classic".into(),
                Some(MemberMetadata {
                    client_id: "c".into(),
                    subscribed_topic_names: vec!["orders".into()],
                    rebalance_timeout_ms: 300_000,
                    classic: Some(ClassicMember {
                        session_timeout_ms: 10_000,
                        protocols: vec![("range".into(), Bytes::from_static(&[0, 0, 0, 0]))],
                    }),
                    ..Default::default()
                }),
            ),
            ConsumerRecord::AssignmentEpoch(Some(4)),
            ConsumerRecord::TargetAssignment("m1".into(), Some(a.clone())),
            ConsumerRecord::CurrentAssignment(
                "m1".into(),
                Some(CurrentAssignment {
                    member_epoch: 4,
                    previous_member_epoch: 3,
                    state: MemberState::UnrevokedPartitions,
                    assigned: a.clone(),
                    pending_revocation: [(t, [1].into())].into(),
                }),
            ),
            ConsumerRecord::CurrentAssignment("m1".into(), None),
        ];
        for r in recs {
            let (k, v) = r.encode("g");
            assert_eq!(ConsumerRecord::decode(&k, v.as_ref()), Ok(("g".into(), r)));
        }
        // The key's version is the record type, as in Kafka.
        let (k, _) = ConsumerRecord::AssignmentEpoch(Some(1)).encode("g");
        assert_eq!(&k[..2], &6i16.to_be_bytes());
        assert!(ConsumerRecord::decode(&Bytes::from_static(&[0, 9, 0, 0]), None).is_err());
        assert!(ConsumerRecord::decode(&Bytes::from_static(&[0, 3, 0xff]), None).is_err());
    }
}
