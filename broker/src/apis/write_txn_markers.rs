//! WriteTxnMarkers: a transaction coordinator asks this broker, as leader of some of a
//! transaction's partitions, to append the COMMIT or ABORT marker that ends it there (Kafka's
//! `ReplicaManager.appendRecords` with origin COORDINATOR, acks=all). Each partition's marker
//! closes the producer's transaction in its producer state, moves the last stable offset, and
//! for an abort adds a `.txnindex` entry; the answer waits until the marker is replicated (the
//! high watermark passes it), so a coordinator that hears "done" knows read_committed consumers
//! will see the outcome.
//!
//! Trust: this is an inter-broker API. It is served only on `inter.broker.listener.name`, and
//! needs CLUSTER CLUSTER_ACTION (Kafka's rule); on any other listener the connection is closed,
//! as for every API a listener does not serve. It is not advertised in ApiVersions: no client
//! needs it. A coordinator on this node calls [`write_markers`] directly — the same code, no
//! socket.
//!
//! Errors per partition, as the log answers them: PRODUCER_FENCED for an older producer epoch,
//! TRANSACTION_COORDINATOR_FENCED for an older coordinator epoch, NOT_LEADER_OR_FOLLOWER / UNKNOWN_TOPIC_OR_PARTITION, and
//! NOT_ENOUGH_REPLICAS(_AFTER_APPEND) or REQUEST_TIMED_OUT when it cannot be replicated.

use super::KafkaApis;
use crate::group_coordinator::{GroupCoordinator, GROUP_METADATA_TOPIC};
use crate::network::RequestContext;
use crate::replica_manager::ReplicaManager;
use rafka_controller::image::MetadataImage;
use rafka_protocol::control_record::{ControlRecordType, EndTransactionMarker};
use rafka_protocol::messages::write_txn_markers_request::WritableTxnMarker;
use rafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use rafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::AclOperation;
use rafka_storage::TopicPartition;
use std::time::Duration;

/// How long a marker waits to be replicated before the coordinator is told to retry.
pub const MARKER_REPLICATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether this request may be served on the connection: the inter-broker listener only.
pub fn served_on(apis: &KafkaApis, ctx: &RequestContext) -> bool {
    ctx.listener == apis.config.inter_broker_listener_name()
}

pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    req: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    let image = apis.image();
    let authz = apis.authorizer_for(ctx, &image);
    if !authz.allows_cluster(AclOperation::ClusterAction) {
        return refuse_all(&req, ErrorCode::ClusterAuthorizationFailed);
    }
    write_markers(&apis.replica_manager, &apis.groups, &image, &req.markers).await
}

fn refuse_all(req: &WriteTxnMarkersRequest, code: ErrorCode) -> WriteTxnMarkersResponse {
    WriteTxnMarkersResponse {
        markers: req
            .markers
            .iter()
            .map(|m| WritableTxnMarkerResult {
                producer_id: m.producer_id,
                topics: m
                    .topics
                    .iter()
                    .map(|t| WritableTxnMarkerTopicResult {
                        name: t.name.clone(),
                        partitions: t
                            .partition_indexes
                            .iter()
                            .map(|&p| WritableTxnMarkerPartitionResult {
                                partition_index: p,
                                error_code: code.code(),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// Appends every marker to the partitions this broker leads and waits for each to be
/// replicated; the per-partition outcome. A marker for `__consumer_offsets` goes through the
/// group coordinator, which commits or drops the transaction's offsets with it.
pub async fn write_markers(
    rm: &ReplicaManager,
    groups: &GroupCoordinator,
    image: &MetadataImage,
    markers: &[WritableTxnMarker],
) -> WriteTxnMarkersResponse {
    let deadline = tokio::time::Instant::now() + MARKER_REPLICATION_TIMEOUT;
    let mut out = Vec::with_capacity(markers.len());
    for m in markers {
        let marker = EndTransactionMarker {
            control_type: if m.transaction_result {
                ControlRecordType::Commit
            } else {
                ControlRecordType::Abort
            },
            coordinator_epoch: m.coordinator_epoch,
        };
        let mut topics = Vec::with_capacity(m.topics.len());
        for t in &m.topics {
            let mut partitions = Vec::with_capacity(t.partition_indexes.len());
            for &p in &t.partition_indexes {
                let tp = TopicPartition::new(t.name.clone(), p);
                let r = if tp.topic == GROUP_METADATA_TOPIC {
                    groups.complete_transaction(image, p, m.producer_id, m.producer_epoch, &marker)
                } else {
                    rm.append_end_txn_marker(image, &tp, m.producer_id, m.producer_epoch, &marker)
                };
                let code = if r.error != ErrorCode::None {
                    r.error
                } else if r.replicated {
                    ErrorCode::None
                } else {
                    rm.wait_for_high_watermark(image, &tp, r.last_offset + 1, deadline)
                        .await
                };
                if code != ErrorCode::None {
                    tracing::debug!(topic = %tp.topic, partition = p, producer_id = m.producer_id, error = ?code, "transaction marker not written");
                }
                partitions.push(WritableTxnMarkerPartitionResult {
                    partition_index: p,
                    error_code: code.code(),
                    ..Default::default()
                });
            }
            topics.push(WritableTxnMarkerTopicResult {
                name: t.name.clone(),
                partitions,
                ..Default::default()
            });
        }
        out.push(WritableTxnMarkerResult {
            producer_id: m.producer_id,
            topics,
            ..Default::default()
        });
    }
    WriteTxnMarkersResponse {
        markers: out,
        ..Default::default()
    }
}
