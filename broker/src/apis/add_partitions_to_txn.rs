//! AddPartitionsToTxn (v0-3, the clients' form): the partitions a transactional producer is
//! about to write join its transaction at the coordinator. Every partition must be of an
//! existing topic the principal may WRITE (else UNKNOWN_TOPIC_OR_PARTITION /
//! TOPIC_AUTHORIZATION_FAILED for it, and OPERATION_NOT_ATTEMPTED for the others, as Kafka), the
//! transactional id needs TRANSACTIONAL_ID WRITE; then the coordinator's answer applies to all.
//! A stale epoch is PRODUCER_FENCED from v2, INVALID_PRODUCER_EPOCH before.
//!
//! v4+ (batched, one entry per transactional id) is the brokers' form: a partition leader asks
//! with VerifyOnly whether partitions are in a producer's ongoing transaction (KIP-890 part 1),
//! or, without it, adds them for a transactions v2 producer (KIP-890 part 2: Produce v12,
//! TxnOffsetCommit v5 — the coordinator takes the request as transaction version 2, as Kafka
//! does for v4+) ([`crate::add_partitions_to_txn_manager`]). It is served only on the inter-broker
//! listener to a principal with CLUSTER CLUSTER_ACTION (Kafka's rule), else the whole request is
//! answered CLUSTER_AUTHORIZATION_FAILED; more than [`MAX_PARTITIONS_PER_REQUEST`] partitions is
//! INVALID_REQUEST.

use super::kafka_apis::KafkaApis;
use crate::group_coordinator::GROUP_METADATA_TOPIC;
use crate::network::RequestContext;
use crate::transaction_coordinator::metadata::TRANSACTION_VERSION_2;
use rafka_controller::control::topics::internal::is_internal;
use rafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
    AddPartitionsToTxnTransactionPartitionResult, AddPartitionsToTxnTransactionTopicResult,
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
    if version >= 4 {
        return handle_batched(apis, ctx, req).await;
    }
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
                0,
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

/// v4+: each transaction's partitions verified (VerifyOnly) or added, answered per transaction.
async fn handle_batched(
    apis: &KafkaApis,
    ctx: &RequestContext,
    req: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let image = apis.image();
    let authz = apis.authorizer_for(ctx, &image);
    let top = if !super::write_txn_markers::served_on(apis, ctx)
        || !authz.allows_cluster(AclOperation::ClusterAction)
    {
        Some(ErrorCode::ClusterAuthorizationFailed)
    } else if req
        .transactions
        .iter()
        .flat_map(|t| &t.topics)
        .map(|t| t.partitions.len())
        .sum::<usize>()
        > MAX_PARTITIONS_PER_REQUEST
    {
        Some(ErrorCode::InvalidRequest)
    } else {
        None
    };
    if let Some(code) = top {
        return AddPartitionsToTxnResponse {
            error_code: code.code(),
            ..Default::default()
        };
    }
    let mut results = Vec::with_capacity(req.transactions.len());
    for t in req.transactions {
        let partitions: Vec<(String, i32)> = t
            .topics
            .iter()
            .flat_map(|topic| topic.partitions.iter().map(|&p| (topic.name.clone(), p)))
            .collect();
        let codes = if t.verify_only {
            apis.transactions
                .verify_partitions(
                    &t.transactional_id,
                    t.producer_id,
                    t.producer_epoch,
                    &partitions,
                )
                .unwrap_or_else(|e| vec![e; partitions.len()])
        } else {
            // A partition leader adds what a transactions v2 producer writes: a topic's
            // partition, or (TxnOffsetCommit v5) a group's `__consumer_offsets` partition.
            let known = partitions.iter().all(|(topic, p)| {
                (!is_internal(topic) || topic == GROUP_METADATA_TOPIC)
                    && image
                        .topic_by_name(topic)
                        .is_some_and(|t| t.partitions.contains_key(p))
            });
            let code = if known {
                apis.transactions
                    .add_partitions(
                        &t.transactional_id,
                        t.producer_id,
                        t.producer_epoch,
                        &partitions,
                        ErrorCode::ProducerFenced,
                        TRANSACTION_VERSION_2,
                    )
                    .await
                    .err()
                    .unwrap_or(ErrorCode::None)
            } else {
                ErrorCode::UnknownTopicOrPartition
            };
            vec![code; partitions.len()]
        };
        let mut topics: Vec<AddPartitionsToTxnTransactionTopicResult> = Vec::new();
        for ((name, p), code) in partitions.into_iter().zip(codes) {
            let r = AddPartitionsToTxnTransactionPartitionResult {
                partition_index: p,
                partition_error_code: code.code(),
                ..Default::default()
            };
            match topics.last_mut() {
                Some(t) if t.name == name => t.results_by_partition.push(r),
                _ => topics.push(AddPartitionsToTxnTransactionTopicResult {
                    name,
                    results_by_partition: vec![r],
                    ..Default::default()
                }),
            }
        }
        results.push(AddPartitionsToTxnResult {
            transactional_id: t.transactional_id,
            topic_results: topics,
            ..Default::default()
        });
    }
    AddPartitionsToTxnResponse {
        results_by_transaction: results,
        ..Default::default()
    }
}
