//! Sending a completed transaction's markers to its partitions' leaders (Kafka's
//! `TransactionMarkerChannelManager`): WriteTxnMarkers, grouped by leader, through the same
//! handler code whether the leader is this node (a direct call) or another broker (its
//! inter-broker listener, one short-lived connection per request). Partitions that fail are
//! retried with a backoff until every one has its marker or this node stops coordinating the
//! transaction (the next coordinator resends them from the log).

use crate::apis::write_txn_markers::write_markers;
use crate::group_coordinator::GroupCoordinator;
use crate::replica_fetcher::address_of;
use crate::replica_manager::ReplicaManager;
use rafka_controller::image::MetadataImage;
use rafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use rafka_protocol::messages::{
    RequestKind, ResponseKind, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use rafka_protocol::ErrorCode;
use rafka_security::transport::{connect, ClientSecurity};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// The WriteTxnMarkers version our nodes send each other.
const WRITE_TXN_MARKERS_VERSION: i16 = 1;
/// How long one remote WriteTxnMarkers exchange may take (the leader waits for replication).
const REMOTE_TIMEOUT: Duration = Duration::from_secs(35);

/// How to reach other brokers.
#[derive(Clone)]
pub struct MarkerChannel {
    pub broker_id: i32,
    pub replica_manager: Arc<ReplicaManager>,
    /// Writes the markers of `__consumer_offsets` partitions (the transactions' offsets).
    pub groups: Arc<GroupCoordinator>,
    /// `inter.broker.listener.name`.
    pub listener_name: String,
    pub security: Arc<ClientSecurity>,
}

/// One transaction's markers to write.
#[derive(Debug, Clone)]
pub struct TxnMarkers {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub coordinator_epoch: i32,
}

impl MarkerChannel {
    /// Writes the markers to every partition in `partitions` once; the partitions still without
    /// one (to retry).
    pub async fn send_once(
        &self,
        image: &MetadataImage,
        txn: &TxnMarkers,
        partitions: &BTreeSet<(String, i32)>,
    ) -> BTreeSet<(String, i32)> {
        let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
        let mut failed = BTreeSet::new();
        for (topic, p) in partitions {
            let leader = image
                .topic_by_name(topic)
                .and_then(|t| t.partitions.get(p))
                .map(|r| r.leader);
            match leader {
                Some(l) if l >= 0 => by_leader.entry(l).or_default().push((topic.clone(), *p)),
                // A deleted topic has nothing to mark (Kafka drops it too).
                None => {}
                Some(_) => {
                    failed.insert((topic.clone(), *p));
                }
            }
        }
        for (leader, parts) in by_leader {
            let marker = marker_of(txn, &parts);
            let answer = if leader == self.broker_id {
                Some(
                    write_markers(
                        &self.replica_manager,
                        &self.groups,
                        image,
                        std::slice::from_ref(&marker),
                    )
                    .await,
                )
            } else {
                self.send_remote(image, leader, marker).await
            };
            let mut done = BTreeSet::new();
            if let Some(r) = answer {
                for m in &r.markers {
                    for t in &m.topics {
                        for p in &t.partitions {
                            let code = ErrorCode::from_code(p.error_code)
                                .unwrap_or(ErrorCode::UnknownServerError);
                            match code {
                                ErrorCode::None => {
                                    done.insert((t.name.clone(), p.partition_index));
                                }
                                // A partition gone, or a producer already past this epoch:
                                // nothing more can be written there (Kafka's handling).
                                ErrorCode::UnknownTopicOrPartition
                                | ErrorCode::ProducerFenced
                                | ErrorCode::InvalidProducerEpoch
                                | ErrorCode::TransactionCoordinatorFenced => {
                                    tracing::warn!(topic = %t.name, partition = p.partition_index, producer_id = txn.producer_id, error = ?code, "transaction marker given up");
                                    done.insert((t.name.clone(), p.partition_index));
                                }
                                _ => {}
                            }
                        }
                    }
                }
            }
            for part in parts {
                if !done.contains(&part) {
                    failed.insert(part);
                }
            }
        }
        failed
    }

    async fn send_remote(
        &self,
        image: &MetadataImage,
        leader: i32,
        marker: WritableTxnMarker,
    ) -> Option<WriteTxnMarkersResponse> {
        let request = RequestKind::WriteTxnMarkers(WriteTxnMarkersRequest {
            markers: vec![marker],
            ..Default::default()
        });
        match self
            .request(
                image,
                leader,
                WRITE_TXN_MARKERS_VERSION,
                request,
                REMOTE_TIMEOUT,
            )
            .await
        {
            Some(ResponseKind::WriteTxnMarkers(r)) => Some(r),
            _ => None,
        }
    }

    /// One request to broker `node` on the inter-broker listener (a short-lived connection),
    /// bounded by `timeout`; `None` when it cannot be reached or does not answer in time (the
    /// caller retries, or answers with a retriable error). Also used by the partition leaders'
    /// KIP-890 verification ([`crate::add_partitions_to_txn_manager`]).
    pub async fn request(
        &self,
        image: &MetadataImage,
        node: i32,
        version: i16,
        request: RequestKind,
        timeout: Duration,
    ) -> Option<ResponseKind> {
        let addr = address_of(image, node, &self.listener_name)?;
        let exchange = async {
            let mut stream = connect(&addr, &self.security).await.ok()?;
            rafka_client::wire::exchange(
                &mut stream,
                version,
                1,
                &format!("broker-{}", self.broker_id),
                request,
                rafka_controller::network::MAX_FRAME_BYTES,
            )
            .await
            .ok()
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Some(r)) => Some(r),
            _ => {
                tracing::debug!(node, %addr, "no answer from a broker on the inter-broker listener");
                None
            }
        }
    }
}

fn marker_of(txn: &TxnMarkers, parts: &[(String, i32)]) -> WritableTxnMarker {
    let mut topics: Vec<WritableTxnMarkerTopic> = Vec::new();
    for (topic, p) in parts {
        match topics.last_mut() {
            Some(t) if &t.name == topic => t.partition_indexes.push(*p),
            _ => topics.push(WritableTxnMarkerTopic {
                name: topic.clone(),
                partition_indexes: vec![*p],
                ..Default::default()
            }),
        }
    }
    WritableTxnMarker {
        producer_id: txn.producer_id,
        producer_epoch: txn.producer_epoch,
        transaction_result: txn.commit,
        topics,
        coordinator_epoch: txn.coordinator_epoch,
        ..Default::default()
    }
}
