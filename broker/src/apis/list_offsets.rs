//! ListOffsets: earliest (-2), latest (-1: the high watermark), max timestamp (-3), or the first
//! record whose timestamp is at or after the target (-1 offset when there is none).

use super::KafkaApis;
use rafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use rafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use rafka_storage::TopicPartition;

pub fn handle(apis: &KafkaApis, version: i16, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let image = apis.image();
    let topics = req
        .topics
        .into_iter()
        .map(|t| ListOffsetsTopicResponse {
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    let tp = TopicPartition {
                        topic: t.name.clone(),
                        partition: p.partition_index,
                    };
                    let epoch = if version >= 4 {
                        p.current_leader_epoch
                    } else {
                        -1
                    };
                    match apis.replica_manager.fetch_offset_for_timestamp(
                        &image,
                        &tp,
                        p.timestamp,
                        epoch,
                    ) {
                        Ok(Some(found)) => ListOffsetsPartitionResponse {
                            partition_index: p.partition_index,
                            timestamp: found.timestamp,
                            offset: found.offset,
                            leader_epoch: if version >= 4 { found.leader_epoch } else { -1 },
                            ..Default::default()
                        },
                        Ok(None) => ListOffsetsPartitionResponse {
                            partition_index: p.partition_index,
                            timestamp: -1,
                            offset: -1,
                            ..Default::default()
                        },
                        Err(code) => ListOffsetsPartitionResponse {
                            partition_index: p.partition_index,
                            error_code: code.code(),
                            ..Default::default()
                        },
                    }
                })
                .collect(),
            name: t.name,
            ..Default::default()
        })
        .collect();
    ListOffsetsResponse {
        topics,
        ..Default::default()
    }
}
