//! OffsetForLeaderEpoch: for each partition this broker leads, the end offset of the requested
//! leader epoch from the log's leader-epoch cache (Kafka's `UnifiedLog.endOffsetForEpoch`: the
//! largest epoch ≤ the requested one and the start of the next, or the log end for the latest
//! epoch; -1/-1 when unknown). Followers and consumers use it to find where a log diverged.
//!
//! As Kafka's `Partition.getLocalLog`: `current_leader_epoch` (≥ 0) is checked first — older
//! than ours FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH — then leadership
//! (NOT_LEADER_OR_FOLLOWER; only leaders answer here, followers' own requests included). A
//! partition not hosted here is NOT_LEADER_OR_FOLLOWER if the image has it, else
//! UNKNOWN_TOPIC_OR_PARTITION.
//! Authorization as Kafka: CLUSTER CLUSTER_ACTION (followers) allows every topic, otherwise each
//! topic needs TOPIC DESCRIBE (else TOPIC_AUTHORIZATION_FAILED).

use super::kafka_apis::KafkaApis;
use crate::network::RequestContext;
use crate::replica_manager::{Partition, ReplicaManager};
use rafka_controller::image::MetadataImage;
use rafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use rafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::{AclOperation, ResourceType};
use rafka_storage::leader_epoch::UNDEFINED_EPOCH_OFFSET;
use rafka_storage::log_manager::lock_log;
use rafka_storage::TopicPartition;
use std::sync::Arc;

pub fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    _version: i16,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let image = apis.image();
    let authz = apis.authorizer_for(ctx, &image);
    let cluster_action = authz.allows_cluster(AclOperation::ClusterAction);
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let allowed = cluster_action
                || authz.allows(AclOperation::Describe, ResourceType::Topic, &t.topic);
            (t, allowed)
        })
        .map(|(t, allowed)| OffsetForLeaderTopicResult {
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    let tp = TopicPartition {
                        topic: t.topic.clone(),
                        partition: p.partition,
                    };
                    let found = if allowed {
                        end_offset(apis, &image, &tp, p.current_leader_epoch, p.leader_epoch)
                    } else {
                        Err(ErrorCode::TopicAuthorizationFailed)
                    };
                    match found {
                        Ok((leader_epoch, end_offset)) => EpochEndOffset {
                            partition: p.partition,
                            leader_epoch,
                            end_offset,
                            ..Default::default()
                        },
                        Err(code) => EpochEndOffset {
                            error_code: code.code(),
                            partition: p.partition,
                            leader_epoch: -1,
                            end_offset: -1,
                            ..Default::default()
                        },
                    }
                })
                .collect(),
            topic: t.topic,
            ..Default::default()
        })
        .collect();
    OffsetForLeaderEpochResponse {
        topics,
        ..Default::default()
    }
}

fn end_offset(
    apis: &KafkaApis,
    image: &MetadataImage,
    tp: &TopicPartition,
    current_leader_epoch: i32,
    requested_epoch: i32,
) -> Result<(i32, i64), ErrorCode> {
    let p = hosted_partition(&apis.replica_manager, image, tp)?;
    check_leader_epoch(p.leader_epoch(), current_leader_epoch)?;
    if !p.is_leader() {
        return Err(ErrorCode::NotLeaderOrFollower);
    }
    let log = lock_log(&p.log);
    let (epoch, offset) = log
        .leader_epoch_cache()
        .end_offset_for(requested_epoch, log.log_end_offset());
    Ok(if offset == UNDEFINED_EPOCH_OFFSET {
        (-1, -1)
    } else {
        (epoch, offset)
    })
}

/// Kafka's `Partition.checkCurrentLeaderEpoch`: a negative epoch means the client sent none.
pub fn check_leader_epoch(ours: i32, theirs: i32) -> Result<(), ErrorCode> {
    if theirs < 0 || theirs == ours {
        Ok(())
    } else if theirs < ours {
        Err(ErrorCode::FencedLeaderEpoch)
    } else {
        Err(ErrorCode::UnknownLeaderEpoch)
    }
}

/// A partition hosted on this broker, or the error a client gets: NOT_LEADER_OR_FOLLOWER when
/// the image has the partition (it is hosted elsewhere), else UNKNOWN_TOPIC_OR_PARTITION
/// (Kafka's `ReplicaManager.getPartitionOrError`).
pub fn hosted_partition(
    rm: &ReplicaManager,
    image: &MetadataImage,
    tp: &TopicPartition,
) -> Result<Arc<Partition>, ErrorCode> {
    match rm.partition(tp) {
        Some(p) => Ok(p),
        None => match image.topic_by_name(&tp.topic) {
            Some(t) if t.partitions.contains_key(&tp.partition) => {
                Err(ErrorCode::NotLeaderOrFollower)
            }
            _ => Err(ErrorCode::UnknownTopicOrPartition),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_epoch_fencing() {
        assert_eq!(check_leader_epoch(5, -1), Ok(()));
        assert_eq!(check_leader_epoch(5, 5), Ok(()));
        assert_eq!(check_leader_epoch(5, 4), Err(ErrorCode::FencedLeaderEpoch));
        assert_eq!(check_leader_epoch(5, 6), Err(ErrorCode::UnknownLeaderEpoch));
    }
}
