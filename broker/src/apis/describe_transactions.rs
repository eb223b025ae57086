//! DescribeTransactions (KIP-664, `kafka-transactions.sh describe`): the state of each named
//! transactional id this broker coordinates. Per id: TRANSACTIONAL_ID DESCRIBE, else
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED (Kafka's rule); NOT_COORDINATOR /
//! COORDINATOR_LOAD_IN_PROGRESS, TRANSACTIONAL_ID_NOT_FOUND, INVALID_REQUEST for an empty id.

use super::kafka_apis::KafkaApis;
use crate::network::RequestContext;
use rafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use rafka_protocol::messages::{DescribeTransactionsRequest, DescribeTransactionsResponse};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::{AclOperation, ResourceType};

pub fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    req: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let image = apis.image();
    let authz = apis.authorizer_for(ctx, &image);
    let transaction_states = req
        .transactional_ids
        .into_iter()
        .map(|id| {
            let failed = |id: String, code: ErrorCode| TransactionState {
                error_code: code.code(),
                transactional_id: id,
                ..Default::default()
            };
            if !authz.allows(AclOperation::Describe, ResourceType::TransactionalId, &id) {
                return failed(id, ErrorCode::TransactionalIdAuthorizationFailed);
            }
            match apis.transactions.describe(&id) {
                Err(code) => failed(id, code),
                Ok(m) => {
                    let mut topics: Vec<TopicData> = Vec::new();
                    for (topic, p) in &m.partitions {
                        match topics.last_mut() {
                            Some(t) if &t.name == topic => t.partition_indexes.push(*p),
                            _ => topics.push(TopicData {
                                name: topic.clone(),
                                partition_indexes: vec![*p],
                                ..Default::default()
                            }),
                        }
                    }
                    TransactionState {
                        error_code: 0,
                        transactional_id: id,
                        transaction_state: m.state.name().to_owned(),
                        transaction_timeout_ms: m.txn_timeout_ms,
                        transaction_start_time_ms: m.txn_start_timestamp,
                        producer_id: m.producer_id,
                        producer_epoch: m.producer_epoch,
                        topic_partitions: topics,
                        ..Default::default()
                    }
                }
            }
        })
        .collect();
    DescribeTransactionsResponse {
        transaction_states,
        ..Default::default()
    }
}
