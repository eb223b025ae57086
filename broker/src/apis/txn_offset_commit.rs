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
//! COORDINATOR_LOAD_IN_PROGRESS), the transaction (KIP-890 part 1: the group's partition must
//! have been added by AddOffsetsToTxn, asked of the transactional id's coordinator wherever it
//! is — a direct call or AddPartitionsToTxn VerifyOnly — under a verification guard the append
//! presents; INVALID_TXN_STATE, INVALID_PRODUCER_ID_MAPPING for an unknown producer,
//! INVALID_PRODUCER_EPOCH for another epoch, COORDINATOR_NOT_AVAILABLE while it ends or cannot
//! be reached), the member
//! (v3+: ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, as Kafka's
//! `validateOffsetCommit` for a transactional commit), and per partition metadata longer than
//! `offset.metadata.max.bytes` (OFFSET_METADATA_TOO_LARGE). The log also refuses a stale
//! producer epoch (INVALID_PRODUCER_EPOCH). Answered once replicated.
//!
//! v5 (KIP-890 part 2, transactions v2): the producer sends no AddOffsetsToTxn; after the group
//! and member checks, the group's `__consumer_offsets` partition is added to the transaction by
//! its coordinator, wherever it is (as a partition leader adds a produced partition:
//! [`crate::add_partitions_to_txn_manager`]). Its refusals as Kafka's group coordinator answers
//! them: INVALID_PRODUCER_ID_MAPPING, INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE, and
//! COORDINATOR_NOT_AVAILABLE (retriable) when the transaction coordinator cannot be reached or
//! is busy.

use super::kafka_apis::KafkaApis;
use crate::add_partitions_to_txn_manager::Ask;
use crate::group_coordinator::records::OffsetAndMetadata;
use crate::group_coordinator::GROUP_METADATA_TOPIC;
use crate::network::RequestContext;
use crate::now_ms;
use rafka_controller::image::MetadataImage;
use rafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use rafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::{AclOperation, ResourceType};
use rafka_storage::{TopicPartition, VerificationGuard};
use std::sync::Arc;

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

/// The first version of transactions v2: the offsets partition is added implicitly.
pub const TRANSACTIONS_V2_VERSION: i16 = 5;

/// The group-level checks after authorization: the coordinator, the transaction, the member
/// (v0–4 verify the transaction first, as Kafka; v5 adds the offsets partition only once the
/// member checks passed, so a refused commit adds nothing). The guard the append presents.
async fn check_group(
    apis: &KafkaApis,
    image: &Arc<MetadataImage>,
    version: i16,
    req: &TxnOffsetCommitRequest,
) -> Result<VerificationGuard, ErrorCode> {
    if req.group_id.is_empty() {
        return Err(ErrorCode::InvalidGroupId);
    }
    let p = apis.groups.check(&req.group_id)?;
    let v2 = version >= TRANSACTIONS_V2_VERSION;
    let verified = if v2 {
        None
    } else {
        Some(ask_coordinator(apis, image, req, p, Ask::Verify).await?)
    };
    let instance = req.group_instance_id.as_deref();
    if let Some(r) = apis.groups.consumer().check_txn_commit(
        &req.group_id,
        &req.member_id,
        req.generation_id,
        instance,
    ) {
        r?;
    } else {
        apis.groups.membership().check_txn_commit(
            &req.group_id,
            req.generation_id,
            &req.member_id,
            instance,
        )?;
    }
    match verified {
        Some(guard) => Ok(guard),
        None => ask_coordinator(apis, image, req, p, Ask::Add).await,
    }
}

/// KIP-890 for the group's offsets partition `p`: takes the producer's verification guard in
/// that partition, then asks the transactional id's coordinator, wherever it is, whether the
/// partition is in the producer's ongoing transaction (`Ask::Verify`, v0–4: AddOffsetsToTxn
/// put it there) or to add it (`Ask::Add`, v5) — unless the producer already has a transaction
/// open there (the sentinel guard). The append presents the guard, so an end marker written in
/// between refuses it rather than letting the offsets open a transaction nobody will end.
/// Refusals as Kafka's group coordinator answers them: INVALID_PRODUCER_ID_MAPPING,
/// INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE, and COORDINATOR_NOT_AVAILABLE (retriable) when
/// the transaction coordinator cannot be reached, is moving or is ending the transaction.
async fn ask_coordinator(
    apis: &KafkaApis,
    image: &Arc<MetadataImage>,
    req: &TxnOffsetCommitRequest,
    p: i32,
    ask: Ask,
) -> Result<VerificationGuard, ErrorCode> {
    let tp = TopicPartition::new(GROUP_METADATA_TOPIC, p);
    let guard = apis
        .replica_manager
        .start_txn_verification(image, &tp, req.producer_id, req.producer_epoch)
        .map_err(|_| ErrorCode::NotCoordinator)?;
    if guard.is_sentinel() {
        return Ok(guard);
    }
    let codes = apis
        .txn_verifier
        .verify(
            image,
            &req.transactional_id,
            req.producer_id,
            req.producer_epoch,
            vec![(GROUP_METADATA_TOPIC.to_owned(), p)],
            ask,
        )
        .await;
    match codes
        .first()
        .copied()
        .unwrap_or(ErrorCode::NotEnoughReplicas)
    {
        ErrorCode::None => Ok(guard),
        // Kafka's group coordinator normalizes a failed write's retriable codes so.
        ErrorCode::NotEnoughReplicas => Err(ErrorCode::CoordinatorNotAvailable),
        code => Err(code),
    }
}

pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    version: i16,
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
    // Only when a partition would be committed: an add is a write at the coordinator.
    let any = req.topics.iter().any(|t| {
        authz.allows(AclOperation::Read, ResourceType::Topic, &t.name)
            && image.topic_by_name(&t.name).is_some_and(|k| {
                t.partitions
                    .iter()
                    .any(|p| k.partitions.contains_key(&p.partition_index))
            })
    });
    let group_check = if any {
        check_group(apis, &image, version, &req).await.map(Some)
    } else {
        Ok(None)
    };
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
            } else if let Err(e) = &group_check {
                *e
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
        group_check.ok().flatten(),
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
