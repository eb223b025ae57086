//! AssignReplicasToDirs (API 73, KIP-858), the half rafka needs: a broker that cannot host a
//! replica — its log could not be created or opened — assigns it to Kafka's reserved
//! `DirectoryId.LOST`, and the controller moves leadership away from it as Kafka's
//! `ReplicationControlManager.handleAssignReplicasToDirs` does for a replica whose directory is
//! not online: the broker leaves the partition's ISR (the last member stays, as always) and
//! the partition gets a new leader from the rest of its ISR — or none, so that Metadata shows
//! leader −1 rather than a leader that has no log.
//!
//! rafka's image does not track directories (PartitionRecord's `directories` stay unset), so
//! an assignment to any other directory changes nothing and is acknowledged as such; only
//! `LOST` has an effect. The effect lasts as long as the ISR change does: the broker returns to
//! the ISR the usual way (a leader's AlterPartition once it has the log and has caught up, or,
//! for a partition left leaderless, being the last ISR member when it is unfenced again after
//! a restart, when it retries the log).

use super::broker_epoch::check_broker_epoch;
use super::controller_config::ControllerConfig;
use super::controller_result::ControllerResult;
use super::replication::replica_offline_changes;
use crate::image::MetadataImage;
use rafka_protocol::messages::assign_replicas_to_dirs_response as resp;
use rafka_protocol::messages::{
    AssignReplicasToDirsRequest, AssignReplicasToDirsResponse, MetadataRecord,
};
use rafka_protocol::{ErrorCode, Uuid};

/// Kafka's `DirectoryId.LOST`: a replica in a directory that is offline or unknown.
pub const LOST: Uuid = Uuid(1u128.to_be_bytes());

/// AssignReplicasToDirs: see the module docs.
pub fn assign_replicas_to_dirs(
    image: &MetadataImage,
    config: &ControllerConfig,
    request: &AssignReplicasToDirsRequest,
) -> ControllerResult<AssignReplicasToDirsResponse> {
    if let Err(e) = check_broker_epoch(image, request.broker_id, request.broker_epoch) {
        return ControllerResult::without_records(AssignReplicasToDirsResponse {
            error_code: e.code.code(),
            ..Default::default()
        });
    }
    let broker = request.broker_id;
    let mut records: Vec<MetadataRecord> = Vec::new();
    let mut response = AssignReplicasToDirsResponse::default();
    for dir in &request.directories {
        let mut dir_out = resp::DirectoryData {
            id: dir.id,
            ..Default::default()
        };
        for t in &dir.topics {
            let mut topic_out = resp::TopicData {
                topic_id: t.topic_id,
                ..Default::default()
            };
            let topic = image.topic(&t.topic_id);
            for p in &t.partitions {
                let code = match topic
                    .and_then(|tp| tp.partitions.get(&p.partition_index).map(|reg| (tp, reg)))
                {
                    None => ErrorCode::UnknownTopicId,
                    Some((_, reg)) if !reg.replicas.contains(&broker) => {
                        ErrorCode::NotLeaderOrFollower
                    }
                    Some((tp, reg)) => {
                        if dir.id == LOST {
                            let changes = replica_offline_changes(
                                image,
                                config,
                                tp,
                                p.partition_index,
                                reg,
                                broker,
                            );
                            if !changes.is_empty() {
                                tracing::warn!(topic = %tp.name, partition = p.partition_index, node_id = broker, "replica offline on its broker: leadership moves away");
                            }
                            records.extend(changes);
                        }
                        ErrorCode::None
                    }
                };
                topic_out.partitions.push(resp::PartitionData {
                    partition_index: p.partition_index,
                    error_code: code.code(),
                    ..Default::default()
                });
            }
            dir_out.topics.push(topic_out);
        }
        response.directories.push(dir_out);
    }
    ControllerResult::new(records, response)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::Kit;
    use super::*;
    use rafka_protocol::messages::assign_replicas_to_dirs_request as req;

    fn lost(k: &Kit, broker: i32, topic: &str, partitions: &[i32]) -> AssignReplicasToDirsRequest {
        AssignReplicasToDirsRequest {
            broker_id: broker,
            broker_epoch: k.epoch(broker),
            directories: vec![req::DirectoryData {
                id: LOST,
                topics: vec![req::TopicData {
                    topic_id: k.topic_id(topic),
                    partitions: partitions
                        .iter()
                        .map(|&p| req::PartitionData {
                            partition_index: p,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn codes(r: &AssignReplicasToDirsResponse) -> Vec<i16> {
        r.directories
            .iter()
            .flat_map(|d| &d.topics)
            .flat_map(|t| &t.partitions)
            .map(|p| p.error_code)
            .collect()
    }

    /// A leader that lost its log hands leadership to another ISR member and leaves the ISR;
    /// a follower that lost its log leaves the ISR.
    #[test]
    fn a_lost_replica_leaves_the_isr_and_leadership_moves_within_it() {
        let mut k = Kit::three_brokers();
        k.create_topic_on("t", &[&[1, 2, 3], &[2, 1, 3]]);
        let before = k.partition("t", 0);
        let r = k
            .controller
            .assign_replicas_to_dirs(&k.image, &lost(&k, 1, "t", &[0, 1]));
        let response = k.commit(r);
        assert_eq!(codes(&response), vec![0, 0]);
        let p0 = k.partition("t", 0);
        assert_eq!((p0.leader, p0.isr.clone()), (2, vec![2, 3]));
        assert!(p0.leader_epoch > before.leader_epoch);
        let p1 = k.partition("t", 1);
        assert_eq!((p1.leader, p1.isr.clone()), (2, vec![2, 3]));
    }

    /// Alone in its ISR, the replica stays in it (an ISR is never emptied) but may not lead:
    /// the partition is leaderless, not led by a broker without its log.
    #[test]
    fn a_lost_sole_replica_leaves_its_partition_leaderless() {
        let mut k = Kit::three_brokers();
        k.create_topic_on("solo", &[&[3]]);
        let r = k
            .controller
            .assign_replicas_to_dirs(&k.image, &lost(&k, 3, "solo", &[0]));
        assert_eq!(codes(&k.commit(r)), vec![0]);
        let p = k.partition("solo", 0);
        assert_eq!((p.leader, p.isr.clone()), (-1, vec![3]));
    }

    #[test]
    fn errors_per_partition_and_for_a_stale_broker_epoch() {
        let mut k = Kit::three_brokers();
        k.create_topic_on("t", &[&[1, 2]]);
        // Not a replica of it; no such partition.
        let r = k
            .controller
            .assign_replicas_to_dirs(&k.image, &lost(&k, 3, "t", &[0, 7]));
        assert!(r.records.is_empty());
        assert_eq!(
            codes(&r.response),
            vec![
                ErrorCode::NotLeaderOrFollower.code(),
                ErrorCode::UnknownTopicId.code()
            ]
        );
        let mut stale = lost(&k, 1, "t", &[0]);
        stale.broker_epoch -= 1;
        let r = k.controller.assign_replicas_to_dirs(&k.image, &stale);
        assert!(r.records.is_empty());
        assert_eq!(r.response.error_code, ErrorCode::StaleBrokerEpoch.code());
        // Another directory than LOST: acknowledged, nothing moves.
        let mut elsewhere = lost(&k, 1, "t", &[0]);
        elsewhere.directories[0].id = Uuid::from_u128(77);
        let r = k.controller.assign_replicas_to_dirs(&k.image, &elsewhere);
        assert!(r.records.is_empty());
        assert_eq!(codes(&r.response), vec![0]);
    }
}
