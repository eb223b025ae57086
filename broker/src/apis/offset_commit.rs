//! OffsetCommit: a group's consumed positions, replicated in `__consumer_offsets` before they are
//! acknowledged ([`crate::group_coordinator::GroupCoordinator::commit_offsets`]).
//!
//! Checks, in Kafka's order: the group id (INVALID_GROUP_ID), this broker coordinating it
//! (NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS), the member and generation (a simple
//! commit — generation -1, no member id — is allowed on a group without members; otherwise
//! ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, REBALANCE_IN_PROGRESS), then per
//! partition (for a KIP-848 consumer group: the member and its epoch — UNKNOWN_MEMBER_ID,
//! STALE_MEMBER_EPOCH, UNSUPPORTED_VERSION below v9), then per partition: an unknown topic or partition (UNKNOWN_TOPIC_OR_PARTITION), metadata longer than
//! `offset.metadata.max.bytes` (OFFSET_METADATA_TOO_LARGE). The rest are written as one batch;
//! if that fails, each of them gets the error.
//! Needs GROUP READ (else GROUP_AUTHORIZATION_FAILED for every partition) and TOPIC READ on
//! each topic (else TOPIC_AUTHORIZATION_FAILED for its partitions), as Kafka.

use super::kafka_apis::KafkaApis;
use crate::group_coordinator::records::OffsetAndMetadata;
use crate::network::RequestContext;
use crate::now_ms;
use rafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use rafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::{AclOperation, ResourceType};

pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    version: i16,
    req: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let image = apis.image();
    let authz = apis.authorizer_for(ctx, &image);
    let group_check = if !authz.allows(AclOperation::Read, ResourceType::Group, &req.group_id) {
        Err(ErrorCode::GroupAuthorizationFailed)
    } else if req.group_id.is_empty() {
        Err(ErrorCode::InvalidGroupId)
    } else {
        apis.groups.check(&req.group_id).and_then(|_| {
            if let Some(r) = apis.groups.consumer().check_commit(
                &req.group_id,
                &req.member_id,
                req.generation_id_or_member_epoch,
                version,
            ) {
                return r;
            }
            apis.groups.membership().check_commit(
                &req.group_id,
                req.generation_id_or_member_epoch,
                &req.member_id,
                req.group_instance_id.as_deref(),
            )
        })
    };
    let now = now_ms();
    let max = apis.groups.config().metadata_max_bytes;
    // (topic index, partition index) of each accepted entry, in request order.
    let mut accepted = Vec::new();
    let mut commits = Vec::new();
    let mut topics: Vec<OffsetCommitResponseTopic> = req
        .topics
        .iter()
        .enumerate()
        .map(|(ti, t)| {
            (
                ti,
                t,
                authz.allows(AclOperation::Read, ResourceType::Topic, &t.name),
            )
        })
        .map(|(ti, t, topic_allowed)| OffsetCommitResponseTopic {
            name: t.name.clone(),
            partitions: t
                .partitions
                .iter()
                .enumerate()
                .map(|(pi, p)| {
                    let code = match &group_check {
                        Err(e) => *e,
                        Ok(()) if !topic_allowed => ErrorCode::TopicAuthorizationFailed,
                        Ok(()) => {
                            let known = image
                                .topic_by_name(&t.name)
                                .is_some_and(|tt| tt.partitions.contains_key(&p.partition_index));
                            let metadata = p.committed_metadata.clone().unwrap_or_default();
                            if !known {
                                ErrorCode::UnknownTopicOrPartition
                            } else if metadata.len() > max {
                                ErrorCode::OffsetMetadataTooLarge
                            } else {
                                accepted.push((ti, pi));
                                commits.push((
                                    t.name.clone(),
                                    p.partition_index,
                                    OffsetAndMetadata {
                                        offset: p.committed_offset,
                                        leader_epoch: p.committed_leader_epoch,
                                        metadata,
                                        commit_timestamp: now,
                                    },
                                ));
                                ErrorCode::None
                            }
                        }
                    };
                    OffsetCommitResponsePartition {
                        partition_index: p.partition_index,
                        error_code: code.code(),
                        ..Default::default()
                    }
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    // Acknowledged once replicated, as Kafka appends commits with acks=all
    // (`offsets.commit.timeout.ms`).
    let result = match apis.groups.commit_offsets(&image, &req.group_id, &commits) {
        Ok(Some(required)) => {
            let timeout = apis.config.offsets_commit_timeout_ms().max(1) as u64;
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(timeout);
            apis.groups
                .wait_for_commit(&image, &req.group_id, required, deadline)
                .await
        }
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        for (ti, pi) in accepted {
            topics[ti].partitions[pi].error_code = e.code();
        }
    }
    OffsetCommitResponse {
        topics,
        ..Default::default()
    }
}
