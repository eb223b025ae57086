//! DescribeQuorum: the metadata quorum (`__cluster_metadata` partition 0) as the Raft leader
//! sees it — leader id, leader epoch (the Raft term), high watermark (the leader's applied
//! index plus one), and the voters and observers (learners) with their log end offsets (matched
//! index plus one, -1 unknown); v2 adds each voter's controller listener endpoint (its address
//! in the Raft membership, which is `controller.quorum.voters`'), as Kafka's
//! `RaftUtil.singletonDescribeQuorumResponse`.
//!
//! Served by the quorum controller (on the controller listener, and in-process for a combined
//! node's broker); a broker forwards it to the active controller, as Kafka's do. Another topic
//! or partition gets UNKNOWN_TOPIC_OR_PARTITION on each one named. Only the leader knows the
//! followers' progress: a voter that is not the leader answers NOT_LEADER_OR_FOLLOWER (Kafka's
//! Raft client on a follower).
//!
//! openraft reports no fetch times: the leader is caught up "now", a follower whose matched
//! index is the leader's last entry likewise, any other -1 (unknown).
//!
//! [`QuorumInfo`] — the quorum as this node sees it, read from openraft's metrics — is defined
//! here (the node and the quorum controller both read it; [`crate::node`] re-exports it).

use crate::now_ms;
use crate::raft_types::{NodeId, Raft};
use rafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use rafka_protocol::messages::{DescribeQuorumRequest, DescribeQuorumResponse};
use rafka_protocol::ErrorCode;
use std::collections::{BTreeMap, BTreeSet};

/// The quorum as this node sees it (served by DescribeQuorum and metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumInfo {
    pub leader: Option<NodeId>,
    pub term: u64,
    /// The next log offset on this node (Kafka's high watermark for the quorum is the leader's
    /// commit index).
    pub last_log_index: Option<u64>,
    pub last_applied: Option<u64>,
    pub voters: BTreeSet<NodeId>,
    pub learners: BTreeSet<NodeId>,
    /// On the leader: each replica's last matched log index.
    pub replicas: BTreeMap<NodeId, Option<u64>>,
}

impl QuorumInfo {
    /// The quorum as `raft` reports it now.
    pub fn of(raft: &Raft) -> QuorumInfo {
        let m = raft.metrics();
        let m = m.borrow();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let learners: BTreeSet<NodeId> = membership.learner_ids().collect();
        QuorumInfo {
            leader: m.current_leader,
            term: m.current_term,
            last_log_index: m.last_log_index,
            last_applied: m.last_applied.map(|l| l.index),
            voters,
            learners,
            replicas: m
                .replication
                .as_ref()
                .map(|r| r.iter().map(|(id, l)| (*id, l.map(|l| l.index))).collect())
                .unwrap_or_default(),
        }
    }

    /// The address of every member of the quorum, voters and learners (`host:port`, as the Raft
    /// membership holds them).
    pub fn endpoints(raft: &Raft) -> BTreeMap<NodeId, String> {
        let m = raft.metrics();
        let m = m.borrow();
        m.membership_config
            .membership()
            .nodes()
            .map(|(id, n)| (*id, n.addr.clone()))
            .collect()
    }
}

/// The metadata log's topic-partition.
pub const METADATA_TOPIC: &str = "__cluster_metadata";
const METADATA_PARTITION: i32 = 0;

/// Answers `req` at `version` on node `node_id`, whose view of the quorum is `info`;
/// `endpoints` are the voters' controller listener addresses (`host:port`), named
/// `listener_name` in v2 answers.
pub fn handle(
    node_id: NodeId,
    info: &QuorumInfo,
    endpoints: &BTreeMap<NodeId, String>,
    listener_name: &str,
    version: i16,
    req: DescribeQuorumRequest,
) -> DescribeQuorumResponse {
    let message = |code: ErrorCode| (version >= 2).then(|| code.message().to_owned());
    if !names_metadata_partition(&req) {
        return refuse(version, req, ErrorCode::UnknownTopicOrPartition);
    }
    if info.leader != Some(node_id) {
        let code = ErrorCode::NotLeaderOrFollower;
        return singleton(PartitionData {
            partition_index: METADATA_PARTITION,
            error_code: code.code(),
            error_message: message(code),
            ..Default::default()
        });
    }
    let mut resp = describe(info, now_ms());
    if version >= 2 {
        resp.nodes = info
            .voters
            .iter()
            .filter_map(|id| {
                let (host, port) = endpoints.get(id)?.rsplit_once(':')?;
                Some(Node {
                    node_id: i32::try_from(*id).ok()?,
                    listeners: vec![Listener {
                        name: listener_name.to_owned(),
                        host: host.to_owned(),
                        port: port.parse().ok()?,
                        ..Default::default()
                    }],
                    ..Default::default()
                })
            })
            .collect();
    }
    resp
}

/// `code` on every partition `req` names (its message from v2).
pub fn refuse(version: i16, req: DescribeQuorumRequest, code: ErrorCode) -> DescribeQuorumResponse {
    DescribeQuorumResponse {
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
                        error_message: (version >= 2).then(|| code.message().to_owned()),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
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
    fn a_follower_refuses_and_the_leader_names_the_endpoints() {
        let info = QuorumInfo {
            leader: Some(2),
            term: 3,
            last_log_index: Some(9),
            last_applied: Some(9),
            voters: BTreeSet::from([1, 2]),
            learners: BTreeSet::new(),
            replicas: BTreeMap::new(),
        };
        let ask = || DescribeQuorumRequest {
            topics: vec![req::TopicData {
                topic_name: METADATA_TOPIC.to_owned(),
                partitions: vec![req::PartitionData::default()],
                ..Default::default()
            }],
            ..Default::default()
        };
        let endpoints = BTreeMap::from([(1, "h1:9093".to_owned()), (2, "h2:9094".to_owned())]);
        let r = handle(1, &info, &endpoints, "CONTROLLER", 2, ask());
        let p = &r.topics[0].partitions[0];
        assert_eq!(p.error_code, ErrorCode::NotLeaderOrFollower.code());
        assert!(r.nodes.is_empty());
        let r = handle(2, &info, &endpoints, "CONTROLLER", 2, ask());
        assert_eq!(r.topics[0].partitions[0].error_code, 0);
        let nodes: Vec<(i32, &str, &str, u16)> = r
            .nodes
            .iter()
            .map(|n| {
                let l = &n.listeners[0];
                (n.node_id, l.name.as_str(), l.host.as_str(), l.port)
            })
            .collect();
        assert_eq!(
            nodes,
            [(1, "CONTROLLER", "h1", 9093), (2, "CONTROLLER", "h2", 9094)]
        );
        // v1 has no endpoints.
        assert!(handle(2, &info, &endpoints, "CONTROLLER", 1, ask())
            .nodes
            .is_empty());
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
