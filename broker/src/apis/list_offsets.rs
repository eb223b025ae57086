//! ListOffsets: earliest (-2), latest (-1: the high watermark, or for isolation_level
//! read_committed the last stable offset), max timestamp (-3), or the first record whose
//! timestamp is at or after the target (-1 offset when there is none; never one a consumer of that
//! isolation may not read).
//!
//! A search by time may read and decompress batches (the first record at or after a time can be
//! inside a compressed batch): a request holding one runs on a blocking thread, never on the
//! async workers, and the replica manager reads and decompresses without the partition's lock.
//! Each topic needs TOPIC DESCRIBE (else TOPIC_AUTHORIZATION_FAILED for its partitions).

use super::kafka_apis::KafkaApis;
use crate::log_read::FetchIsolation;
use crate::network::RequestContext;
use crate::replica_manager::ReplicaManager;
use rafka_controller::image::MetadataImage;
use rafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use rafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::{AclOperation, ResourceType};
use rafka_storage::TopicPartition;
use std::collections::BTreeSet;
use std::sync::Arc;

pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    version: i16,
    req: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let image = apis.image();
    let authz = apis.authorizer_for(ctx, &image);
    let denied: BTreeSet<String> = req
        .topics
        .iter()
        .filter(|t| !authz.allows(AclOperation::Describe, ResourceType::Topic, &t.name))
        .map(|t| t.name.clone())
        .collect();
    let rm = apis.replica_manager.clone();
    let blocking = req.topics.iter().any(|t| {
        t.partitions
            .iter()
            .any(|p| ReplicaManager::needs_blocking_search(p.timestamp))
    });
    if !blocking {
        return answer(&rm, &image, &denied, version, req);
    }
    let topics: Vec<(String, Vec<i32>)> = req
        .topics
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    match tokio::task::spawn_blocking(move || answer(&rm, &image, &denied, version, req)).await {
        Ok(resp) => resp,
        Err(e) => {
            // Only a panic in the search gets here: that request's partitions fail alone.
            tracing::error!(error = %e, "ListOffsets search failed");
            ListOffsetsResponse {
                topics: topics
                    .into_iter()
                    .map(|(name, partitions)| ListOffsetsTopicResponse {
                        name,
                        partitions: partitions
                            .into_iter()
                            .map(|partition_index| ListOffsetsPartitionResponse {
                                partition_index,
                                error_code: ErrorCode::UnknownServerError.code(),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }
        }
    }
}

/// Answers every partition of the request (may block on reads; see the module docs).
fn answer(
    rm: &Arc<ReplicaManager>,
    image: &MetadataImage,
    denied: &BTreeSet<String>,
    version: i16,
    req: ListOffsetsRequest,
) -> ListOffsetsResponse {
    // v0-1 have no isolation level (read_uncommitted).
    let isolation_level = if version >= 2 { req.isolation_level } else { 0 };
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
                    let found = if denied.contains(&t.name) {
                        Err(ErrorCode::TopicAuthorizationFailed)
                    } else {
                        rm.fetch_offset_for_timestamp_isolated(
                            image,
                            &tp,
                            p.timestamp,
                            epoch,
                            FetchIsolation::of_consumer(isolation_level),
                        )
                    };
                    match found {
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
