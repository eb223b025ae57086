//! AddPartitionsToTxn (v0-3, the clients' form): the partitions a transactional producer is
//! about to write join its transaction at the coordinator. Every partition must be of an
//! existing topic the principal may WRITE (else UNKNOWN_TOPIC_OR_PARTITION /
//! TOPIC_AUTHORIZATION_FAILED for it, and OPERATION_NOT_ATTEMPTED for the others, as Kafka), the
//! transactional id needs TRANSACTIONAL_ID WRITE; then the coordinator's answer applies to all.
//! A stale epoch is PRODUCER_FENCED from v2, INVALID_PRODUCER_EPOCH before.

use super::KafkaApis;
use crate::network::RequestContext;
use rafka_controller::control::topics::internal::is_internal;
use rafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use rafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::{AclOperation, ResourceType};

/// The most partitions one request may add (the transaction's state is one record of
/// `__transaction_state`, which must stay well under `max.message.bytes`).
pub const MAX_PARTITIONS_PER_REQUEST: usize = 10_000;

/// The code for a stale producer epoch at `version` (PRODUCER_FENCED is known from v2).
pub fn fenced_code(version: i16) -> ErrorCode {
    if version >= 2 {
        ErrorCode::ProducerFenced
    } else {
        ErrorCode::InvalidProducerEpoch
    }
}

pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    version: i16,
    req: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let image = apis.image();
    let authz = apis.authorizer_for(ctx, &image);
    let id = req.v3_and_below_transactional_id.clone();
    let mut per_partition: Vec<(String, i32, ErrorCode)> = Vec::new();
    let mut failed = false;
    let count: usize = req
        .v3_and_below_topics
        .iter()
        .map(|t| t.partitions.len())
        .sum();
    let id_allowed = authz.allows(AclOperation::Write, ResourceType::TransactionalId, &id);
    for t in &req.v3_and_below_topics {
        let allowed = authz.allows(AclOperation::Write, ResourceType::Topic, &t.name);
        let topic = image.topic_by_name(&t.name);
        for &p in &t.partitions {
            let code = if !id_allowed {
                ErrorCode::TransactionalIdAuthorizationFailed
            } else if count > MAX_PARTITIONS_PER_REQUEST {
                ErrorCode::InvalidRequest
            } else if !allowed {
                ErrorCode::TopicAuthorizationFailed
            } else if is_internal(&t.name) || topic.is_none_or(|t| !t.partitions.contains_key(&p)) {
                // Internal topics join a transaction only through AddOffsetsToTxn.
                ErrorCode::UnknownTopicOrPartition
            } else {
                ErrorCode::None
            };
            failed |= code != ErrorCode::None;
            per_partition.push((t.name.clone(), p, code));
        }
    }
    if failed {
        for e in per_partition.iter_mut().filter(|e| e.2 == ErrorCode::None) {
            e.2 = ErrorCode::OperationNotAttempted;
        }
    } else {
        let partitions: Vec<(String, i32)> = per_partition
            .iter()
            .map(|(t, p, _)| (t.clone(), *p))
            .collect();
        let result = apis
            .transactions
            .add_partitions(
                &id,
                req.v3_and_below_producer_id,
                req.v3_and_below_producer_epoch,
                &partitions,
                fenced_code(version),
            )
            .await;
        let code = result.err().unwrap_or(ErrorCode::None);
        for e in per_partition.iter_mut() {
            e.2 = code;
        }
    }
    let mut topics: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for (name, p, code) in per_partition {
        let r = AddPartitionsToTxnPartitionResult {
            partition_index: p,
            partition_error_code: code.code(),
            ..Default::default()
        };
        match topics.last_mut() {
            Some(t) if t.name == name => t.results_by_partition.push(r),
            _ => topics.push(AddPartitionsToTxnTopicResult {
                name,
                results_by_partition: vec![r],
                ..Default::default()
            }),
        }
    }
    AddPartitionsToTxnResponse {
        results_by_topic_v3_and_below: topics,
        ..Default::default()
    }
}
