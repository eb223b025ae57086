//! DescribeQuorum: the metadata quorum (`__cluster_metadata` partition 0) as the Raft leader
//! sees it — leader id, leader epoch (the Raft term), high watermark (the leader's applied
//! index plus one), and the voters and observers (learners) with their log end offsets (matched
//! index plus one, -1 unknown); v2 adds each voter's controller listener endpoint (from
//! `controller.quorum.voters`), as Kafka's `RaftUtil.singletonDescribeQuorumResponse`.
//!
//! Another topic or partition gets UNKNOWN_TOPIC_OR_PARTITION on each one named. Only the leader
//! knows the followers' progress: when this node's controller is not the Raft leader the answer
//! is NOT_LEADER_OR_FOLLOWER (Kafka's Raft client on a follower), since the controller listener
//! does not serve DescribeQuorum for a broker to forward it.
//!
//! openraft reports no fetch times: the leader is caught up "now", a follower whose matched
//! index is the leader's last entry likewise, any other -1 (unknown).

use super::KafkaApis;
use rafka_controller::node::QuorumInfo;
use rafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use rafka_protocol::messages::{DescribeQuorumRequest, DescribeQuorumResponse};
use rafka_protocol::ErrorCode;

/// The metadata log's topic-partition.
const METADATA_TOPIC: &str = "__cluster_metadata";
const METADATA_PARTITION: i32 = 0;

pub fn handle(
    apis: &KafkaApis,
    version: i16,
    req: DescribeQuorumRequest,
) -> DescribeQuorumResponse {
    let message = |code: ErrorCode| (version >= 2).then(|| code.message().to_owned());
    if !names_metadata_partition(&req) {
        let code = ErrorCode::UnknownTopicOrPartition;
        return DescribeQuorumResponse {
            topics: req
                .topics
                .into_iter()
                .map(|t| TopicData {
                    topic_name: t.topic_name,
                    partitions: t
                        .partitions
                        .into_iter()
                        .map(|p| PartitionData {
                            partition_index: p.partition_index,
                            error_code: code.code(),
                            error_message: message(code),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
    }
    let node = apis.controller.node();
    let info = node.quorum_info();
    if info.leader != Some(node.node_id()) {
        let code = ErrorCode::NotLeaderOrFollower;
        return singleton(PartitionData {
            partition_index: METADATA_PARTITION,
            error_code: code.code(),
            error_message: message(code),
            ..Default::default()
        });
    }
    let mut resp = describe(&info, now_ms());
    if version >= 2 {
        let listener = apis
            .config
            .controller_listener_names()
            .first()
            .cloned()
            .unwrap_or_default();
        resp.nodes = apis
            .config
            .quorum_voters()
            .iter()
            .filter(|v| u64::try_from(v.id).is_ok_and(|id| info.voters.contains(&id)))
            .map(|v| Node {
                node_id: v.id,
                listeners: vec![Listener {
                    name: listener.clone(),
                    host: v.host.clone(),
                    port: v.port,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect();
    }
    resp
}

/// Kafka's `hasValidTopicPartition`: exactly `__cluster_metadata` partition 0.
fn names_metadata_partition(req: &DescribeQuorumRequest) -> bool {
    matches!(req.topics.as_slice(), [t] if t.topic_name == METADATA_TOPIC
        && matches!(t.partitions.as_slice(), [p] if p.partition_index == METADATA_PARTITION))
}

fn singleton(partition: PartitionData) -> DescribeQuorumResponse {
    DescribeQuorumResponse {
        topics: vec![TopicData {
            topic_name: METADATA_TOPIC.to_owned(),
            partitions: vec![partition],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The leader's view (`info` taken on the leader).
fn describe(info: &QuorumInfo, now: i64) -> DescribeQuorumResponse {
    let leader = info.leader.unwrap_or_default();
    let leader_end = next_offset(info.last_log_index);
    let replica = |id: u64| {
        let log_end_offset = if id == leader {
            leader_end
        } else {
            next_offset(info.replicas.get(&id).copied().flatten())
        };
        let caught_up = log_end_offset >= 0 && log_end_offset == leader_end;
        ReplicaState {
            replica_id: i32::try_from(id).unwrap_or(-1),
            log_end_offset,
            last_fetch_timestamp: if caught_up { now } else { -1 },
            last_caught_up_timestamp: if caught_up { now } else { -1 },
            ..Default::default()
        }
    };
    singleton(PartitionData {
        partition_index: METADATA_PARTITION,
        error_code: 0,
        leader_id: i32::try_from(leader).unwrap_or(-1),
        leader_epoch: i32::try_from(info.term).unwrap_or(i32::MAX),
        high_watermark: next_offset(info.last_applied),
        current_voters: info.voters.iter().map(|id| replica(*id)).collect(),
        observers: info.learners.iter().map(|id| replica(*id)).collect(),
        ..Default::default()
    })
}

/// Kafka's offsets name the next entry: a Raft index + 1, -1 when there is none.
fn next_offset(index: Option<u64>) -> i64 {
    index.map_or(-1, |i| i64::try_from(i).map_or(i64::MAX, |i| i + 1))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rafka_protocol::messages::describe_quorum_request as req;
    use std::collections::{BTreeMap, BTreeSet};

    #[test]
    fn leader_view() {
        let info = QuorumInfo {
            leader: Some(1),
            term: 4,
            last_log_index: Some(41),
            last_applied: Some(40),
            voters: BTreeSet::from([1, 2, 3]),
            learners: BTreeSet::from([4]),
            replicas: BTreeMap::from([(1, Some(41)), (2, Some(41)), (3, None), (4, Some(10))]),
        };
        let resp = describe(&info, 99);
        let p = &resp.topics[0].partitions[0];
        assert_eq!(resp.topics[0].topic_name, METADATA_TOPIC);
        assert_eq!((p.leader_id, p.leader_epoch, p.high_watermark), (1, 4, 41));
        let voters: Vec<(i32, i64, i64)> = p
            .current_voters
            .iter()
            .map(|r| (r.replica_id, r.log_end_offset, r.last_caught_up_timestamp))
            .collect();
        assert_eq!(voters, [(1, 42, 99), (2, 42, 99), (3, -1, -1)]);
        let observers: Vec<(i32, i64)> = p
            .observers
            .iter()
            .map(|r| (r.replica_id, r.log_end_offset))
            .collect();
        assert_eq!(observers, [(4, 11)]);
    }

    #[test]
    fn only_the_metadata_partition() {
        let ask = |topic: &str, partitions: &[i32]| DescribeQuorumRequest {
            topics: vec![req::TopicData {
                topic_name: topic.to_owned(),
                partitions: partitions
                    .iter()
                    .map(|p| req::PartitionData {
                        partition_index: *p,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(names_metadata_partition(&ask(METADATA_TOPIC, &[0])));
        assert!(!names_metadata_partition(&ask(METADATA_TOPIC, &[1])));
        assert!(!names_metadata_partition(&ask(METADATA_TOPIC, &[0, 0])));
        assert!(!names_metadata_partition(&ask("t", &[0])));
        assert!(!names_metadata_partition(&DescribeQuorumRequest::default()));
    }
}
