//! DeleteRecords: moves the log start offset of partitions this broker leads forward to the
//! requested offset (-1: the high watermark), as Kafka's `Partition.deleteRecordsOnLeader`;
//! the answer's low watermark is the new log start offset. Segments wholly below it are removed
//! by the next retention pass.
//!
//! Each partition on its own: an internal topic INVALID_TOPIC_EXCEPTION, a partition the image
//! does not have UNKNOWN_TOPIC_OR_PARTITION, one not led here NOT_LEADER_OR_FOLLOWER, a topic
//! whose `cleanup.policy` lacks `delete` POLICY_VIOLATION, an offset below 0 or above the high
//! watermark OFFSET_OUT_OF_RANGE — and nothing moves. With one replica per partition the low
//! watermark is reached at once, so nothing waits in a purgatory.
//!
//! Moving the log start rewrites the leader-epoch checkpoint: the work runs on a blocking
//! thread.

use super::kafka_apis::KafkaApis;
use super::offset_for_leader_epoch::hosted_partition;
use crate::config::KafkaConfig;
use crate::errors::storage_error_code;
use crate::network::RequestContext;
use crate::replica_manager::ReplicaManager;
use rafka_controller::image::{ConfigResource, MetadataImage};
use rafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use rafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::{AclOperation, ResourceType};
use rafka_storage::log_manager::lock_log;
use rafka_storage::TopicPartition;

/// `offset` -1: up to the high watermark.
const HIGH_WATERMARK: i64 = -1;

pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    req: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let image = apis.image();
    let config = apis.dynamic_config.current_config();
    // TOPIC DELETE on each topic, else TOPIC_AUTHORIZATION_FAILED for its partitions.
    let authz = apis.authorizer_for(ctx, &image);
    let mut refused = Vec::new();
    let topics: Vec<(String, Vec<(i32, i64)>)> = req
        .topics
        .into_iter()
        .filter(|t| {
            let ok = authz.allows(AclOperation::Delete, ResourceType::Topic, &t.name);
            if !ok {
                refused.push(DeleteRecordsTopicResult {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| DeleteRecordsPartitionResult {
                            partition_index: p.partition_index,
                            low_watermark: -1,
                            error_code: ErrorCode::TopicAuthorizationFailed.code(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                });
            }
            ok
        })
        .map(|t| {
            let parts = t
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.offset))
                .collect();
            (t.name, parts)
        })
        .collect();
    let names: Vec<(String, Vec<i32>)> = topics
        .iter()
        .map(|(n, ps)| (n.clone(), ps.iter().map(|p| p.0).collect()))
        .collect();
    // The replica manager is shared; `KafkaApis` is borrowed, so hand the blocking thread
    // what it needs by value.
    let rm = apis.replica_manager.clone();
    let work = tokio::task::spawn_blocking(move || {
        topics
            .into_iter()
            .map(|(name, partitions)| DeleteRecordsTopicResult {
                partitions: partitions
                    .into_iter()
                    .map(|(index, offset)| {
                        let tp = TopicPartition {
                            topic: name.clone(),
                            partition: index,
                        };
                        let (low_watermark, error) = match delete(&rm, &image, &config, &tp, offset)
                        {
                            Ok(lw) => (lw, ErrorCode::None),
                            Err(e) => (-1, e),
                        };
                        DeleteRecordsPartitionResult {
                            partition_index: index,
                            low_watermark,
                            error_code: error.code(),
                            ..Default::default()
                        }
                    })
                    .collect(),
                name,
                ..Default::default()
            })
            .collect()
    });
    let mut topics: Vec<DeleteRecordsTopicResult> = match work.await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "delete records failed");
            names
                .into_iter()
                .map(|(name, partitions)| DeleteRecordsTopicResult {
                    name,
                    partitions: partitions
                        .into_iter()
                        .map(|index| DeleteRecordsPartitionResult {
                            partition_index: index,
                            low_watermark: -1,
                            error_code: ErrorCode::UnknownServerError.code(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect()
        }
    };
    topics.extend(refused);
    DeleteRecordsResponse {
        topics,
        ..Default::default()
    }
}

/// Deletes the records of one partition below `offset`; the new low watermark.
fn delete(
    rm: &ReplicaManager,
    image: &MetadataImage,
    config: &KafkaConfig,
    tp: &TopicPartition,
    offset: i64,
) -> Result<i64, ErrorCode> {
    if rafka_controller::control::topics::internal::is_internal(&tp.topic) {
        return Err(ErrorCode::InvalidTopicException);
    }
    let p = hosted_partition(rm, image, tp)?;
    if !p.is_leader() {
        return Err(ErrorCode::NotLeaderOrFollower);
    }
    let overrides = image
        .configs()
        .get(&ConfigResource::topic(&tp.topic))
        .cloned()
        .unwrap_or_default();
    let deletes = config
        .topic_value("cleanup.policy", &overrides)
        .is_some_and(|v| v.split(',').any(|s| s.trim() == "delete"));
    if !deletes {
        return Err(ErrorCode::PolicyViolation);
    }
    let mut log = lock_log(&p.log);
    let target = if offset == HIGH_WATERMARK {
        log.high_watermark()
    } else {
        offset
    };
    if target < 0 {
        return Err(ErrorCode::OffsetOutOfRange);
    }
    log.increment_log_start_offset(target)
        .map_err(|e| storage_error_code(&e))?;
    tracing::info!(topic = %tp.topic, partition = tp.partition, offset = log.log_start_offset(), "deleted records below offset");
    Ok(log.log_start_offset())
}
