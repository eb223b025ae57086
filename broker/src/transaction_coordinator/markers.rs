//! Sending a completed transaction's markers to its partitions' leaders (Kafka's
//! `TransactionMarkerChannelManager`): WriteTxnMarkers, grouped by leader, through the same
//! handler code whether the leader is this node (a direct call) or another broker (its
//! inter-broker listener, over the connection kept for markers to that broker — see
//! [`crate::inter_node_client`]). Partitions that fail are retried with a backoff until every
//! one has its marker or this node stops coordinating the transaction (the next coordinator
//! resends them from the log).
//!
//! A broker answers one request per connection at a time, and a marker's answer waits for its
//! replication; so, as Kafka's `TxnMarkerSenderThread` drains its queue per broker, the markers
//! of every transaction waiting for one leader go in one WriteTxnMarkers, and those that arrive
//! while it is in flight in the next. At most [`MAX_MARKERS_PER_REQUEST`] go in one request.
//!
//! A peer's answer is taken only as far as it matches what was asked: one result per marker
//! sent, in order, for the same producer id, and only the partitions asked about.
//!
//! Lock order: `MarkerQueues::by_leader` alone, never held across an await.

use super::marker_writer::write_markers;
use crate::group_coordinator::GroupCoordinator;
use crate::inter_node_client::{InterNodeClient, InterNodeError, Purpose};
use crate::replica_fetcher::address_of;
use crate::replica_manager::ReplicaManager;
use rafka_controller::image::MetadataImage;
use rafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use rafka_protocol::messages::write_txn_markers_response::WritableTxnMarkerResult;
use rafka_protocol::messages::{RequestKind, ResponseKind, WriteTxnMarkersRequest};
use rafka_protocol::ErrorCode;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// The WriteTxnMarkers version our nodes send each other.
const WRITE_TXN_MARKERS_VERSION: i16 = 1;
/// How long one remote WriteTxnMarkers exchange may take (the leader waits for replication).
const REMOTE_TIMEOUT: Duration = Duration::from_secs(35);
/// The most markers in one WriteTxnMarkers request.
pub const MAX_MARKERS_PER_REQUEST: usize = 1000;

/// How to reach other brokers.
#[derive(Clone)]
pub struct MarkerChannel {
    pub broker_id: i32,
    pub replica_manager: Arc<ReplicaManager>,
    /// Writes the markers of `__consumer_offsets` partitions (the transactions' offsets).
    pub groups: Arc<GroupCoordinator>,
    /// `inter.broker.listener.name`.
    pub listener_name: String,
    /// The connections to the other brokers' inter-broker listener.
    pub client: Arc<InterNodeClient>,
    /// The markers waiting for each leader (shared by the clones).
    pub queues: Arc<MarkerQueues>,
}

/// A marker waiting to be sent, and where its result goes (`None`: no usable answer).
struct QueuedMarker {
    marker: WritableTxnMarker,
    reply: oneshot::Sender<Option<WritableTxnMarkerResult>>,
}

#[derive(Default)]
struct LeaderQueue {
    markers: Vec<QueuedMarker>,
    /// The leader's address as the newest marker's image named it.
    addr: String,
    /// A sender task runs for this leader.
    sending: bool,
}

/// The markers waiting for each remote leader.
#[derive(Default)]
pub struct MarkerQueues {
    /// Bounded: each entry holds the markers of the sends in flight, which the transaction
    /// coordinator bounds (its `MAX_MARKER_SENDS`).
    by_leader: Mutex<HashMap<i32, LeaderQueue>>,
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
                write_markers(
                    &self.replica_manager,
                    &self.groups,
                    image,
                    std::slice::from_ref(&marker),
                )
                .await
                .markers
                .into_iter()
                .next()
            } else {
                self.send_remote(image, leader, marker).await
            };
            let mut done = BTreeSet::new();
            if let Some(m) = answer {
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
            for part in parts {
                if !done.contains(&part) {
                    failed.insert(part);
                }
            }
        }
        failed
    }

    /// Queues `marker` for `leader` and waits for its result, starting the leader's sender if
    /// none runs; `None` when the leader cannot be reached or did not answer usably.
    async fn send_remote(
        &self,
        image: &MetadataImage,
        leader: i32,
        marker: WritableTxnMarker,
    ) -> Option<WritableTxnMarkerResult> {
        let addr = address_of(image, leader, &self.listener_name)?;
        let (reply, answer) = oneshot::channel();
        let spawn = {
            let mut q = self
                .queues
                .by_leader
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let queue = q.entry(leader).or_default();
            queue.addr = addr;
            queue.markers.push(QueuedMarker { marker, reply });
            !std::mem::replace(&mut queue.sending, true)
        };
        if spawn {
            let (client, queues) = (self.client.clone(), self.queues.clone());
            tokio::spawn(send_loop(client, queues, leader));
        }
        // The sender answers every marker it takes; the bound only guards against a bug.
        tokio::time::timeout(REMOTE_TIMEOUT * 2, answer)
            .await
            .ok()
            .and_then(Result::ok)
            .flatten()
    }

    /// One request to broker `node` on the inter-broker listener, over the connection kept for
    /// `purpose`, bounded by `timeout` (the caller retries, or answers with a retriable error).
    /// Also used by the partition leaders' KIP-890 verification
    /// ([`crate::add_partitions_to_txn_manager`]).
    pub async fn request(
        &self,
        image: &MetadataImage,
        node: i32,
        purpose: Purpose,
        version: i16,
        request: RequestKind,
        timeout: Duration,
    ) -> Result<ResponseKind, InterNodeError> {
        let addr = address_of(image, node, &self.listener_name).ok_or_else(|| {
            InterNodeError::UnknownNode {
                node_id: node,
                listener: self.listener_name.clone(),
            }
        })?;
        self.client
            .send(node, &addr, purpose, version, request, timeout)
            .await
    }
}

/// Sends `leader`'s queued markers, as many as fit in one request at a time, until none are
/// left; answers each marker taken.
async fn send_loop(client: Arc<InterNodeClient>, queues: Arc<MarkerQueues>, leader: i32) {
    loop {
        let (batch, addr) = {
            let mut q = queues.by_leader.lock().unwrap_or_else(|e| e.into_inner());
            let Some(queue) = q.get_mut(&leader) else {
                return;
            };
            if queue.markers.is_empty() {
                q.remove(&leader);
                return;
            }
            let n = queue.markers.len().min(MAX_MARKERS_PER_REQUEST);
            let batch: Vec<QueuedMarker> = queue.markers.drain(..n).collect();
            (batch, queue.addr.clone())
        };
        let request = RequestKind::WriteTxnMarkers(WriteTxnMarkersRequest {
            markers: batch.iter().map(|q| q.marker.clone()).collect(),
            ..Default::default()
        });
        let answer = client
            .send(
                leader,
                &addr,
                Purpose::TransactionMarkers,
                WRITE_TXN_MARKERS_VERSION,
                request,
                REMOTE_TIMEOUT,
            )
            .await;
        let results = match answer {
            Ok(ResponseKind::WriteTxnMarkers(r)) => match_results(&batch, r.markers),
            Ok(_) => None,
            Err(e) => {
                tracing::debug!(node_id = leader, error = %e, "no answer to WriteTxnMarkers");
                None
            }
        };
        match results {
            Some(results) => {
                for (q, r) in batch.into_iter().zip(results) {
                    let _ = q.reply.send(Some(r));
                }
            }
            None => {
                for q in batch {
                    let _ = q.reply.send(None);
                }
            }
        }
    }
}

/// A peer's results for `batch`: one per marker, in order, for the same producer id; `None` if
/// the answer does not match what was asked.
fn match_results(
    batch: &[QueuedMarker],
    results: Vec<WritableTxnMarkerResult>,
) -> Option<Vec<WritableTxnMarkerResult>> {
    let matches = results.len() == batch.len()
        && batch
            .iter()
            .zip(&results)
            .all(|(q, r)| q.marker.producer_id == r.producer_id);
    if !matches {
        tracing::warn!(
            sent = batch.len(),
            answered = results.len(),
            "a WriteTxnMarkers answer that does not match its request"
        );
        return None;
    }
    Some(results)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inter_node_client::ConnectionConfig;
    use rafka_protocol::messages::write_txn_markers_response::{
        WritableTxnMarkerPartitionResult, WritableTxnMarkerTopicResult,
    };
    use rafka_protocol::messages::WriteTxnMarkersResponse;
    use rafka_protocol::{RequestFrame, ResponseFrame};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncWriteExt;

    /// Queues markers of producers `pids` for leader 2 at `addr`; their answers.
    fn queue(
        queues: &MarkerQueues,
        addr: &str,
        pids: std::ops::RangeInclusive<i64>,
    ) -> Vec<oneshot::Receiver<Option<WritableTxnMarkerResult>>> {
        let mut q = queues.by_leader.lock().expect("lock");
        let lq = q.entry(2).or_default();
        lq.addr = addr.to_owned();
        lq.sending = true;
        pids.map(|pid| {
            let (reply, answer) = oneshot::channel();
            let marker = marker_of(
                &TxnMarkers {
                    producer_id: pid,
                    producer_epoch: 0,
                    commit: true,
                    coordinator_epoch: 0,
                },
                &[("t".to_owned(), 0)],
            );
            lq.markers.push(QueuedMarker { marker, reply });
            answer
        })
        .collect()
    }

    #[tokio::test]
    async fn markers_for_one_leader_go_in_one_request_and_only_a_matching_answer_counts() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel::<usize>();
        let count = accepted.clone();
        // A leader that answers its first request properly and the next with one result only.
        let peer = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            count.fetch_add(1, Ordering::SeqCst);
            let mut honest = true;
            while let Ok(Some(frame)) = rafka_client::wire::read_frame(&mut s, 1 << 20).await {
                let req = RequestFrame::decode(&frame).expect("decode");
                let RequestKind::WriteTxnMarkers(r) = req.body else {
                    panic!("not WriteTxnMarkers");
                };
                let _ = seen_tx.send(r.markers.len());
                let results = r.markers.iter().map(|m| WritableTxnMarkerResult {
                    producer_id: m.producer_id,
                    topics: vec![WritableTxnMarkerTopicResult {
                        name: "t".into(),
                        partitions: vec![WritableTxnMarkerPartitionResult {
                            partition_index: 0,
                            error_code: 0,
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                });
                let markers = if honest {
                    results.collect()
                } else {
                    results.take(1).collect()
                };
                honest = false;
                let out = ResponseFrame {
                    correlation_id: req.header.correlation_id,
                    api_version: req.header.request_api_version,
                    body: ResponseKind::WriteTxnMarkers(WriteTxnMarkersResponse {
                        markers,
                        ..Default::default()
                    }),
                }
                .encode()
                .expect("encode");
                s.write_all(&out).await.expect("write");
            }
        });
        let client = Arc::new(InterNodeClient::new(
            "test",
            ConnectionConfig::new("broker-1", Arc::new(Default::default())),
        ));
        let queues = Arc::new(MarkerQueues::default());

        let answers = queue(&queues, &addr, 1..=3);
        send_loop(client.clone(), queues.clone(), 2).await;
        assert_eq!(seen.recv().await, Some(3), "three markers, one request");
        for (pid, a) in (1..=3).zip(answers) {
            let r = a.await.expect("answered").expect("a result");
            assert_eq!(r.producer_id, pid);
        }
        assert!(queues.by_leader.lock().expect("lock").is_empty());

        let answers = queue(&queues, &addr, 4..=6);
        send_loop(client.clone(), queues.clone(), 2).await;
        assert_eq!(seen.recv().await, Some(3));
        for a in answers {
            assert!(
                a.await.expect("answered").is_none(),
                "a short answer is no answer"
            );
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one connection for both"
        );
        peer.abort();
    }
}
