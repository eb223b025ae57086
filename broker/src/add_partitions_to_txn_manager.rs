//! KIP-890 part 1, the partition leader's half (Kafka's `AddPartitionsToTxnManager`): before a
//! transactional produce opens a transaction in a partition, the leader asks the transactional
//! id's coordinator whether the partition is in that producer's ongoing transaction.
//!
//! KIP-890 part 2 (transactions v2: Produce v12, TxnOffsetCommit v5): the producer no longer
//! sends AddPartitionsToTxn; the leader (or the group coordinator, for the offsets partition)
//! asks the coordinator to *add* the partition instead ([`Ask::Add`]: a direct call, or
//! AddPartitionsToTxn v5 without VerifyOnly), under the same guard.
//!
//! The coordinator is the leader of the id's `__transaction_state` partition. On this node it is
//! called directly; on another broker, the questions for it are queued and sent as one batched
//! AddPartitionsToTxn v4 request (VerifyOnly, one entry per transactional id) on the inter-broker
//! listener, over the connection kept for verifications to that node ([`MarkerChannel::request`],
//! [`Purpose::AddPartitionsToTxn`]); the questions that arrive while it is in flight go in the
//! next one. What the answer does not confirm is refused.
//!
//! The "cache" of verifications is the log's: a producer with a transaction open in the
//! partition is not asked about again until a marker closes it, and the guard
//! ([`rafka_storage::VerificationGuard`]) taken before asking makes an append verified before a
//! marker fail after it.
//!
//! Codes for the producer, as Kafka's `ReplicaManager` maps them: the coordinator's retriable
//! answers (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE,
//! CONCURRENT_TRANSACTIONS), no answer, or a full queue become NOT_ENOUGH_REPLICAS (retriable
//! for every producer); PRODUCER_FENCED becomes INVALID_PRODUCER_EPOCH; INVALID_TXN_STATE and
//! INVALID_PRODUCER_ID_MAPPING are passed on; anything else a peer answers is
//! NOT_ENOUGH_REPLICAS.
//!
//! Bounds: at most [`MAX_QUEUED_PARTITIONS`] partitions wait at once on this node; a peer's
//! answer is read within the frame limit and [`VERIFY_TIMEOUT`].
//!
//! Lock order: `queues` alone, never held across an await.

use crate::inter_node_client::Purpose;
use crate::transaction_coordinator::markers::MarkerChannel;
use crate::transaction_coordinator::metadata::TRANSACTION_VERSION_2;
use crate::transaction_coordinator::{TransactionCoordinator, TRANSACTION_STATE_TOPIC};
use rafka_controller::image::MetadataImage;
use rafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTransaction, AddPartitionsToTxnTransactionTopic,
};
use rafka_protocol::messages::{AddPartitionsToTxnRequest, RequestKind, ResponseKind};
use rafka_protocol::ErrorCode;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::oneshot;

/// The version partition leaders send (v4: batched, VerifyOnly; v5 only adds an error code
/// this coordinator never answers).
pub const VERIFY_VERSION: i16 = 4;
/// The version a leader adds partitions with for a transactions v2 producer (as Kafka 4 sends).
pub const ADD_VERSION: i16 = 5;

/// What a leader asks the coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ask {
    /// Whether the partitions are in the ongoing transaction (KIP-890 part 1).
    Verify,
    /// Add them to the transaction (transactions v2).
    Add,
}
/// How long one verification exchange with a coordinator may take.
pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(5);
/// The most partitions waiting for a remote coordinator's answer on this node.
pub const MAX_QUEUED_PARTITIONS: usize = 10_000;

/// One produce request's question: its partitions, and where to send the codes.
struct Waiter {
    partitions: Vec<(String, i32)>,
    reply: oneshot::Sender<Vec<ErrorCode>>,
}

/// The questions about one transactional id waiting for the next request.
struct PendingTxn {
    producer_id: i64,
    producer_epoch: i16,
    waiters: Vec<Waiter>,
}

#[derive(Default)]
struct NodeQueue {
    /// By what is asked, then transactional id (one request carries one kind: an id appears at
    /// most once in a request).
    txns: BTreeMap<(Ask, String), PendingTxn>,
    /// A sender task runs for this node.
    sending: bool,
    /// The newest image a question came with (to find the node's address).
    image: Option<Arc<MetadataImage>>,
}

#[derive(Default)]
struct Queues {
    by_node: HashMap<i32, NodeQueue>,
    /// Partitions queued over all nodes.
    queued: usize,
}

pub struct AddPartitionsToTxnManager {
    channel: MarkerChannel,
    coordinator: Arc<TransactionCoordinator>,
    queues: Mutex<Queues>,
}

/// A coordinator's code for one partition, as the producer is told it.
fn for_producer(code: ErrorCode) -> ErrorCode {
    match code {
        ErrorCode::None
        | ErrorCode::InvalidTxnState
        | ErrorCode::InvalidProducerIdMapping
        | ErrorCode::InvalidProducerEpoch => code,
        ErrorCode::ProducerFenced => ErrorCode::InvalidProducerEpoch,
        _ => ErrorCode::NotEnoughReplicas,
    }
}

impl AddPartitionsToTxnManager {
    pub fn new(
        channel: MarkerChannel,
        coordinator: Arc<TransactionCoordinator>,
    ) -> Arc<AddPartitionsToTxnManager> {
        Arc::new(AddPartitionsToTxnManager {
            channel,
            coordinator,
            queues: Mutex::new(Queues::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The coordinator's verdict on each of `partitions` (in order) for a transactional write of
    /// `producer_id` at `producer_epoch` under `transactional_id`, as codes for the producer:
    /// verified to be in its transaction, or (`Ask::Add`) added to it.
    pub async fn verify(
        self: &Arc<Self>,
        image: &Arc<MetadataImage>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: Vec<(String, i32)>,
        ask: Ask,
    ) -> Vec<ErrorCode> {
        let n = partitions.len();
        let p = self.coordinator.partition_for(transactional_id);
        let node = image
            .topic_by_name(TRANSACTION_STATE_TOPIC)
            .and_then(|t| t.partitions.get(&p))
            .map(|r| r.leader)
            .filter(|&l| l >= 0);
        let Some(node) = node else {
            return vec![ErrorCode::NotEnoughReplicas; n];
        };
        if node == self.channel.broker_id && ask == Ask::Add {
            let code = self
                .coordinator
                .add_partitions(
                    transactional_id,
                    producer_id,
                    producer_epoch,
                    &partitions,
                    ErrorCode::ProducerFenced,
                    TRANSACTION_VERSION_2,
                )
                .await
                .err()
                .unwrap_or(ErrorCode::None);
            return vec![for_producer(code); n];
        }
        if node == self.channel.broker_id {
            return match self.coordinator.verify_partitions(
                transactional_id,
                producer_id,
                producer_epoch,
                &partitions,
            ) {
                Ok(codes) => codes.into_iter().map(for_producer).collect(),
                Err(e) => vec![for_producer(e); n],
            };
        }
        let (tx, rx) = oneshot::channel();
        let spawn = {
            let mut q = self.lock();
            if q.queued + n > MAX_QUEUED_PARTITIONS {
                return vec![ErrorCode::NotEnoughReplicas; n];
            }
            let queue = q.by_node.entry(node).or_default();
            queue.image = Some(image.clone());
            let waiter = Waiter {
                partitions,
                reply: tx,
            };
            // Partitions now waiting, less those answered at once.
            let mut queued = n;
            let key = (ask, transactional_id.to_owned());
            match queue.txns.get_mut(&key) {
                Some(t) if t.producer_id == producer_id && t.producer_epoch == producer_epoch => {
                    t.waiters.push(waiter)
                }
                Some(t) if (t.producer_id, t.producer_epoch) > (producer_id, producer_epoch) => {
                    // An older instance than the one already queued: fenced.
                    let _ = waiter.reply.send(vec![ErrorCode::InvalidProducerEpoch; n]);
                    queued = 0;
                }
                _ => {
                    // First, or newer than the one queued (whose waiters are fenced).
                    let old = queue.txns.insert(
                        key,
                        PendingTxn {
                            producer_id,
                            producer_epoch,
                            waiters: vec![waiter],
                        },
                    );
                    for w in old.into_iter().flat_map(|t| t.waiters) {
                        let k = w.partitions.len();
                        let _ = w.reply.send(vec![ErrorCode::InvalidProducerEpoch; k]);
                        queued = queued.wrapping_sub(k);
                    }
                }
            }
            let spawn = !std::mem::replace(&mut queue.sending, true);
            q.queued = q.queued.wrapping_add(queued);
            spawn
        };
        if spawn {
            let this = self.clone();
            tokio::spawn(async move { this.send_loop(node).await });
        }
        // The sender answers every waiter it takes (the timeout only guards against a bug).
        match tokio::time::timeout(VERIFY_TIMEOUT * 2, rx).await {
            Ok(Ok(codes)) if codes.len() == n => codes,
            _ => vec![ErrorCode::NotEnoughReplicas; n],
        }
    }

    /// Sends `node`'s queued questions, one request at a time, until none are left.
    async fn send_loop(self: Arc<Self>, node: i32) {
        loop {
            let (txns, image) = {
                let mut q = self.lock();
                let Some(queue) = q.by_node.get_mut(&node) else {
                    return;
                };
                let txns = std::mem::take(&mut queue.txns);
                if txns.is_empty() {
                    q.by_node.remove(&node);
                    return;
                }
                let image = queue.image.clone();
                let taken: usize = txns
                    .values()
                    .flat_map(|t| &t.waiters)
                    .map(|w| w.partitions.len())
                    .sum();
                q.queued = q.queued.saturating_sub(taken);
                (txns, image)
            };
            let mut answers: HashMap<(Ask, String), HashMap<(String, i32), ErrorCode>> =
                HashMap::new();
            if let Some(image) = image {
                for kind in [Ask::Verify, Ask::Add] {
                    let of_kind: BTreeMap<String, &PendingTxn> = txns
                        .iter()
                        .filter(|((k, _), _)| *k == kind)
                        .map(|((_, id), t)| (id.clone(), t))
                        .collect();
                    if of_kind.is_empty() {
                        continue;
                    }
                    for (id, codes) in self.ask(&image, node, &of_kind, kind).await {
                        answers.insert((kind, id), codes);
                    }
                }
            }
            for (key, t) in txns {
                let answer = answers.get(&key);
                for w in t.waiters {
                    let codes = w
                        .partitions
                        .iter()
                        .map(|tp| {
                            answer
                                .and_then(|a| a.get(tp))
                                .copied()
                                .map_or(ErrorCode::NotEnoughReplicas, for_producer)
                        })
                        .collect();
                    let _ = w.reply.send(codes);
                }
            }
        }
    }

    /// One AddPartitionsToTxn request (v4 VerifyOnly, or v5 adding); per transactional id the
    /// coordinator's code for each partition it answered (none when it did not answer).
    async fn ask(
        &self,
        image: &MetadataImage,
        node: i32,
        txns: &BTreeMap<String, &PendingTxn>,
        kind: Ask,
    ) -> HashMap<String, HashMap<(String, i32), ErrorCode>> {
        let transactions = txns
            .iter()
            .map(|(id, t)| {
                let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
                for w in &t.waiters {
                    for (topic, p) in &w.partitions {
                        let ps = topics.entry(topic).or_default();
                        if !ps.contains(p) {
                            ps.push(*p);
                        }
                    }
                }
                AddPartitionsToTxnTransaction {
                    transactional_id: id.clone(),
                    producer_id: t.producer_id,
                    producer_epoch: t.producer_epoch,
                    verify_only: kind == Ask::Verify,
                    topics: topics
                        .into_iter()
                        .map(|(name, partitions)| AddPartitionsToTxnTransactionTopic {
                            name: name.to_owned(),
                            partitions,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }
            })
            .collect();
        let request = RequestKind::AddPartitionsToTxn(AddPartitionsToTxnRequest {
            transactions,
            ..Default::default()
        });
        let answer = self
            .channel
            .request(
                image,
                node,
                Purpose::AddPartitionsToTxn,
                if kind == Ask::Verify {
                    VERIFY_VERSION
                } else {
                    ADD_VERSION
                },
                request,
                VERIFY_TIMEOUT,
            )
            .await;
        let mut out: HashMap<String, HashMap<(String, i32), ErrorCode>> = HashMap::new();
        let r = match answer {
            Ok(ResponseKind::AddPartitionsToTxn(r)) => r,
            Ok(_) => return out,
            Err(e) => {
                tracing::debug!(node_id = node, error = %e, "no answer to a KIP-890 verification");
                return out;
            }
        };
        let top = ErrorCode::from_code(r.error_code).unwrap_or(ErrorCode::UnknownServerError);
        for t in r.results_by_transaction {
            // Only what was asked is taken from a peer's answer.
            let Some(asked) = txns.get(&t.transactional_id) else {
                continue;
            };
            let codes = out.entry(t.transactional_id.clone()).or_default();
            for topic in t.topic_results {
                for p in topic.results_by_partition {
                    let tp = (topic.name.clone(), p.partition_index);
                    if !asked.waiters.iter().any(|w| w.partitions.contains(&tp)) {
                        continue;
                    }
                    let code = if top != ErrorCode::None {
                        top
                    } else {
                        ErrorCode::from_code(p.partition_error_code)
                            .unwrap_or(ErrorCode::UnknownServerError)
                    };
                    codes.insert(tp, code);
                }
            }
        }
        if top != ErrorCode::None {
            // A top-level error answers every partition asked.
            for (id, t) in txns {
                let codes = out.entry(id.clone()).or_default();
                for w in &t.waiters {
                    for tp in &w.partitions {
                        codes.entry(tp.clone()).or_insert(top);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinator_codes_become_kafkas_produce_codes() {
        assert_eq!(for_producer(ErrorCode::None), ErrorCode::None);
        assert_eq!(
            for_producer(ErrorCode::ProducerFenced),
            ErrorCode::InvalidProducerEpoch
        );
        assert_eq!(
            for_producer(ErrorCode::InvalidTxnState),
            ErrorCode::InvalidTxnState
        );
        for retriable in [
            ErrorCode::NotCoordinator,
            ErrorCode::CoordinatorLoadInProgress,
            ErrorCode::CoordinatorNotAvailable,
            ErrorCode::ConcurrentTransactions,
            ErrorCode::UnknownServerError,
            ErrorCode::CorruptMessage,
        ] {
            assert_eq!(for_producer(retriable), ErrorCode::NotEnoughReplicas);
        }
    }
}
