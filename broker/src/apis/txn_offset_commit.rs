//! TxnOffsetCommit: a transactional producer commits a group's consumed positions inside its
//! transaction (consume-transform-produce, `send_offsets_to_transaction`). The offsets are
//! written to the group's `__consumer_offsets` partition as a transactional batch of the
//! producer, and become the group's committed offsets only when the transaction's COMMIT marker
//! lands there; an ABORT drops them ([`crate::group_coordinator::txn_offsets`]).
//!
//! Checks, in Kafka's order: TRANSACTIONAL_ID WRITE (TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
//! GROUP READ (GROUP_AUTHORIZATION_FAILED), then per topic TOPIC READ
//! (TOPIC_AUTHORIZATION_FAILED) and the partition existing (UNKNOWN_TOPIC_OR_PARTITION); then
//! the group id (INVALID_GROUP_ID), this broker coordinating the group (NOT_COORDINATOR /
//! COORDINATOR_LOAD_IN_PROGRESS), the transaction (KIP-890 part 1, when this broker also
//! coordinates the transactional id: the group's partition must have been added by
//! AddOffsetsToTxn — INVALID_TXN_STATE; INVALID_PRODUCER_ID_MAPPING for an unknown producer,
//! INVALID_PRODUCER_EPOCH for another epoch, CONCURRENT_TRANSACTIONS while it ends), the member
//! (v3+: ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, as Kafka's
//! `validateOffsetCommit` for a transactional commit), and per partition metadata longer than
//! `offset.metadata.max.bytes` (OFFSET_METADATA_TOO_LARGE). The log refuses a stale producer
//! epoch (INVALID_PRODUCER_EPOCH) whichever broker coordinates the id. Answered once replicated.

use super::KafkaApis;
use crate::group_coordinator::records::OffsetAndMetadata;
use crate::group_coordinator::GROUP_METADATA_TOPIC;
use crate::network::RequestContext;
use crate::now_ms;
use rafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use rafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::{AclOperation, ResourceType};
use rafka_storage::TopicPartition;

/// Every partition of the request answered `code`.
fn all(req: &TxnOffsetCommitRequest, code: ErrorCode) -> TxnOffsetCommitResponse {
    TxnOffsetCommitResponse {
        topics: req
            .topics
            .iter()
            .map(|t| TxnOffsetCommitResponseTopic {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| TxnOffsetCommitResponsePartition {
                        partition_index: p.partition_index,
                        error_code: code.code(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// The group-level checks after authorization: the coordinator, the transaction, the member.
fn check_group(apis: &KafkaApis, req: &TxnOffsetCommitRequest) -> Result<(), ErrorCode> {
    if req.group_id.is_empty() {
        return Err(ErrorCode::InvalidGroupId);
    }
    let p = apis.groups.check(&req.group_id)?;
    apis.transactions.verify_offsets(
        &req.transactional_id,
        req.producer_id,
        req.producer_epoch,
        &TopicPartition::new(GROUP_METADATA_TOPIC, p),
    )?;
    let instance = req.group_instance_id.as_deref();
    if let Some(r) = apis.groups.consumer().check_txn_commit(
        &req.group_id,
        &req.member_id,
        req.generation_id,
        instance,
    ) {
        return r;
    }
    apis.groups.membership().check_txn_commit(
        &req.group_id,
        req.generation_id,
        &req.member_id,
        instance,
    )
}

pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    req: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let image = apis.image();
    let authz = apis.authorizer_for(ctx, &image);
    if !authz.allows(
        AclOperation::Write,
        ResourceType::TransactionalId,
        &req.transactional_id,
    ) {
        return all(&req, ErrorCode::TransactionalIdAuthorizationFailed);
    }
    if !authz.allows(AclOperation::Read, ResourceType::Group, &req.group_id) {
        return all(&req, ErrorCode::GroupAuthorizationFailed);
    }
    let now = now_ms();
    let max = apis.groups.config().metadata_max_bytes;
    // Per partition: Ok(offset to commit) or its own error, before the group checks.
    let mut topics = Vec::with_capacity(req.topics.len());
    let mut commits = Vec::new();
    // (topic index, partition index) of each entry in `commits`.
    let mut accepted = Vec::new();
    let group_check = check_group(apis, &req);
    for (ti, t) in req.topics.iter().enumerate() {
        let allowed = authz.allows(AclOperation::Read, ResourceType::Topic, &t.name);
        let known = image.topic_by_name(&t.name);
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for (pi, p) in t.partitions.iter().enumerate() {
            let metadata = p.committed_metadata.clone().unwrap_or_default();
            let code = if !allowed {
                ErrorCode::TopicAuthorizationFailed
            } else if !known.is_some_and(|k| k.partitions.contains_key(&p.partition_index)) {
                ErrorCode::UnknownTopicOrPartition
            } else if let Err(e) = group_check {
                e
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
            };
            partitions.push(TxnOffsetCommitResponsePartition {
                partition_index: p.partition_index,
                error_code: code.code(),
                ..Default::default()
            });
        }
        topics.push(TxnOffsetCommitResponseTopic {
            name: t.name.clone(),
            partitions,
            ..Default::default()
        });
    }
    let result = match apis.groups.commit_txn_offsets(
        &image,
        &req.group_id,
        req.producer_id,
        req.producer_epoch,
        &commits,
    ) {
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
            let p: &mut TxnOffsetCommitResponsePartition = &mut topics[ti].partitions[pi];
            p.error_code = e.code();
        }
    }
    TxnOffsetCommitResponse {
        topics,
        ..Default::default()
    }
}
