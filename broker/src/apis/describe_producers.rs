//! DescribeProducers: the producers a partition's leader knows — id, epoch, last sequence and
//! timestamp, the coordinator epoch of their last marker and the first offset of their open
//! transaction — from its producer state.

use super::kafka_apis::KafkaApis;
use crate::network::RequestContext;
use rafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use rafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse};
use rafka_security::authorizer::{AclOperation, ResourceType};
use rafka_storage::TopicPartition;

pub fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    req: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let image = apis.image();
    let authz = apis.authorizer_for(ctx, &image);
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            // TOPIC READ, else TOPIC_AUTHORIZATION_FAILED for its partitions (Kafka).
            let allowed = authz.allows(AclOperation::Read, ResourceType::Topic, &t.name);
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&partition| {
                    let tp = TopicPartition::new(t.name.clone(), partition);
                    let described = if allowed {
                        apis.replica_manager.describe_producers(&image, &tp)
                    } else {
                        Err(rafka_protocol::ErrorCode::TopicAuthorizationFailed)
                    };
                    match described {
                        Ok(entries) => PartitionResponse {
                            partition_index: partition,
                            active_producers: entries
                                .iter()
                                .map(|e| ProducerState {
                                    producer_id: e.producer_id,
                                    producer_epoch: i32::from(e.producer_epoch),
                                    last_sequence: e.last_seq(),
                                    last_timestamp: e.last_timestamp,
                                    coordinator_epoch: e.coordinator_epoch,
                                    current_txn_start_offset: e
                                        .current_txn_first_offset
                                        .unwrap_or(-1),
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        },
                        Err(code) => PartitionResponse {
                            partition_index: partition,
                            error_code: code.code(),
                            error_message: Some(code.message().to_owned()),
                            ..Default::default()
                        },
                    }
                })
                .collect();
            TopicResponse {
                name: t.name,
                partitions,
                ..Default::default()
            }
        })
        .collect();
    DescribeProducersResponse {
        topics,
        ..Default::default()
    }
}
