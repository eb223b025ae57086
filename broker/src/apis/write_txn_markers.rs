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
//! needs it. A coordinator on this node calls the same code
//! ([`crate::transaction_coordinator::marker_writer::write_markers`]) directly, without a socket.
//!
//! Errors per partition, as the log answers them: PRODUCER_FENCED for an older producer epoch,
//! TRANSACTION_COORDINATOR_FENCED for an older coordinator epoch, NOT_LEADER_OR_FOLLOWER / UNKNOWN_TOPIC_OR_PARTITION, and
//! NOT_ENOUGH_REPLICAS(_AFTER_APPEND) or REQUEST_TIMED_OUT when it cannot be replicated.

use super::kafka_apis::KafkaApis;
use crate::network::RequestContext;
use crate::transaction_coordinator::marker_writer::write_markers;
use rafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use rafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::AclOperation;

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
