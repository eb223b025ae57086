//! Produce: each partition's records go to `ReplicaManager::append` untouched (the log assigns
//! offsets in the batch headers). acks=0 sends nothing back (`None`); acks=1 and acks=all answer
//! after the local append — with a single replica the high watermark is the log end, so acks=all
//! is satisfied at once; waiting for followers lands with replication.

use super::KafkaApis;
use rafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use rafka_protocol::messages::{ProduceRequest, ProduceResponse};
use rafka_protocol::ErrorCode;
use rafka_storage::TopicPartition;

/// What to send back.
pub enum Outcome {
    Respond(ProduceResponse),
    /// acks=0 and everything was appended.
    Nothing,
    /// acks=0 and something failed: Kafka closes the connection so the client refreshes its
    /// metadata.
    Close,
}

pub fn handle(apis: &KafkaApis, version: i16, req: ProduceRequest) -> Outcome {
    let image = apis.image();
    let mut responses = Vec::with_capacity(req.topic_data.len());
    let invalid_acks = !matches!(req.acks, -1..=1);
    let transactional = req.transactional_id.is_some();
    for topic in req.topic_data {
        let mut partition_responses = Vec::with_capacity(topic.partition_data.len());
        for p in topic.partition_data {
            let tp = TopicPartition {
                topic: topic.name.clone(),
                partition: p.index,
            };
            let result = if invalid_acks {
                error(p.index, ErrorCode::InvalidRequiredAcks)
            } else if transactional {
                // Transactions land in their own issue.
                error(p.index, ErrorCode::TransactionalIdAuthorizationFailed)
            } else {
                match p.records.as_ref().and_then(|r| r.as_bytes()) {
                    None => error(p.index, ErrorCode::CorruptMessage),
                    Some(bytes) => {
                        let r = apis.replica_manager.append(&image, &tp, bytes, req.acks);
                        PartitionProduceResponse {
                            index: p.index,
                            error_code: r.error.code(),
                            base_offset: r.base_offset,
                            log_append_time_ms: r.log_append_time,
                            log_start_offset: r.log_start_offset,
                            error_message: if version >= 8 { r.error_message } else { None },
                            ..Default::default()
                        }
                    }
                }
            };
            partition_responses.push(result);
        }
        responses.push(TopicProduceResponse {
            name: topic.name,
            partition_responses,
            ..Default::default()
        });
    }
    if req.acks == 0 {
        let failed = responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .any(|p| p.error_code != 0);
        return if failed {
            Outcome::Close
        } else {
            Outcome::Nothing
        };
    }
    Outcome::Respond(ProduceResponse {
        responses,
        ..Default::default()
    })
}

fn error(index: i32, code: ErrorCode) -> PartitionProduceResponse {
    PartitionProduceResponse {
        index,
        error_code: code.code(),
        base_offset: -1,
        ..Default::default()
    }
}
