//! The partition leader's half of ending a transaction: appending the COMMIT or ABORT marker to
//! the partitions this broker leads and waiting for it to be replicated — what WriteTxnMarkers
//! serves (`crate::apis::write_txn_markers`), and what a coordinator on this node calls directly
//! for the partitions it leads itself ([`super::markers`]).

use crate::group_coordinator::{GroupCoordinator, GROUP_METADATA_TOPIC};
use crate::replica_manager::ReplicaManager;
use rafka_controller::image::MetadataImage;
use rafka_protocol::control_record::{ControlRecordType, EndTransactionMarker};
use rafka_protocol::messages::write_txn_markers_request::WritableTxnMarker;
use rafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use rafka_protocol::messages::WriteTxnMarkersResponse;
use rafka_protocol::ErrorCode;
use rafka_storage::TopicPartition;
use std::time::Duration;

/// How long a marker waits to be replicated before the coordinator is told to retry.
pub const MARKER_REPLICATION_TIMEOUT: Duration = Duration::from_secs(30);

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
