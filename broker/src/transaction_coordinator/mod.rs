//! The transaction coordinator (Kafka's `TransactionCoordinator`, KIP-98).
//!
//! - [`metadata`]: a transactional id's state and its `__transaction_state` record.
//! - [`markers`]: writing COMMIT / ABORT markers to the transaction's partitions' leaders.
//! - [`TransactionCoordinator`] (here): which transactional ids this broker coordinates, and the
//!   state machine InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn and EndTxn drive.
//!
//! A transactional id belongs to partition `(javaStringHash(id) & 0x7fffffff) %
//! transaction.state.log.num.partitions` of `__transaction_state` (created through the
//! controller on the first FindCoordinator for a transactional id), and its coordinator is that
//! partition's leader; the coordinator epoch is the partition's leader epoch. Loading, appending
//! and waiting for replication are the group coordinator's ([`crate::coordinator_common`]): a
//! state change is appended (acks=all), answered and applied in memory only once replicated, and
//! while it is in flight the id answers CONCURRENT_TRANSACTIONS.
//!
//! The state machine, as Kafka's: InitProducerId bumps the epoch (fencing older instances; a
//! fresh producer id once the epoch is exhausted) from Empty / CompleteCommit / CompleteAbort,
//! and aborts an Ongoing transaction first (the client retries on CONCURRENT_TRANSACTIONS);
//! AddPartitionsToTxn / AddOffsetsToTxn move to Ongoing; EndTxn writes PrepareCommit or
//! PrepareAbort, answers, then sends the markers and writes CompleteCommit / CompleteAbort. A
//! transaction open longer than its timeout is aborted with a bumped epoch (checked every
//! `transaction.abort.timed.out.transaction.cleanup.interval.ms`), so its producer is fenced. A
//! new coordinator (after a failover or a restart) finishes the Prepare* transactions it loads.
//!
//! [`TransactionCoordinator::verify_partitions`] is KIP-890 part 1's check, asked by partition
//! leaders (AddPartitionsToTxn v4+ VerifyOnly, or a direct call from this node's leaders: see
//! [`crate::add_partitions_to_txn_manager`]).
//!
//! - [`listing`]: DescribeTransactions / ListTransactions.
//! - [`expiration`]: `transactional.id.expiration.ms`.
//!
//! - [`epoch_bump`]: transactions v2 (KIP-890 part 2): EndTxn v5 bumps the producer epoch at
//!   every commit and abort (a fresh producer id once it is exhausted), retries are answered from
//!   the completed state, and partition leaders add partitions themselves
//!   ([`TransactionCoordinator::add_partitions`] with transaction version 2).

pub mod epoch_bump;
pub mod expiration;
pub mod listing;
pub mod marker_writer;
pub mod markers;
pub mod metadata;

use crate::coordinator_common::loader::PartitionLoad;
use crate::coordinator_common::{append_records, not_loaded, read_partition, wait_replicated};
use crate::group_coordinator::partition_for;
use crate::now_ms;
use crate::producer_id_manager::ProducerIdManager;
use crate::replica_manager::ReplicaManager;
use epoch_bump::EndTxnV2;
use markers::{MarkerChannel, TxnMarkers};
use metadata::{read_record, TransactionMetadata, TransactionState};
use rafka_controller::image::MetadataImage;
use rafka_protocol::ErrorCode;
use rafka_storage::TopicPartition;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The internal topic of transaction state.
pub const TRANSACTION_STATE_TOPIC: &str =
    rafka_controller::control::topics::internal::TRANSACTION_STATE_TOPIC_NAME;

/// How long a state change waits to be replicated.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// The pause before markers that could not be written are sent again.
const MARKER_RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// The most marker sends (WriteTxnMarkers to one transaction's leaders) in flight at once; the
/// other completions wait their turn (each holds only its transaction's partitions).
const MAX_MARKER_SENDS: usize = 64;

/// The coordinator's settings (Kafka's names).
#[derive(Debug, Clone)]
pub struct TransactionConfig {
    /// `transaction.state.log.num.partitions`.
    pub num_partitions: i32,
    /// `transaction.state.log.replication.factor`.
    pub replication_factor: i16,
    /// `transaction.state.log.segment.bytes`.
    pub segment_bytes: i32,
    /// `transaction.state.log.min.isr`.
    pub min_isr: i32,
    /// `transaction.max.timeout.ms`: a longer transaction timeout is INVALID_TRANSACTION_TIMEOUT.
    pub max_timeout_ms: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub abort_timed_out_interval_ms: i64,
    /// `transactional.id.expiration.ms`: an id idle this long after its last transaction ended
    /// is removed ([`expiration`]).
    pub transactional_id_expiration_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub remove_expired_interval_ms: i64,
}

impl Default for TransactionConfig {
    fn default() -> Self {
        TransactionConfig {
            num_partitions: 50,
            replication_factor: 3,
            segment_bytes: 104_857_600,
            min_isr: 2,
            max_timeout_ms: 900_000,
            abort_timed_out_interval_ms: 10_000,
            transactional_id_expiration_ms: 604_800_000,
            remove_expired_interval_ms: 3_600_000,
        }
    }
}

/// One transactional id: its state, and whether a change is being written.
#[derive(Debug, Clone)]
struct Entry {
    metadata: TransactionMetadata,
    /// A state change (or markers) in flight: other requests get CONCURRENT_TRANSACTIONS.
    pending: bool,
}

/// One `__transaction_state` partition this broker leads.
#[derive(Debug, Default)]
struct StatePartition {
    loaded: bool,
    coordinator_epoch: i32,
    txns: HashMap<String, Entry>,
}

/// The outcome of EndTxn's first half: markers to send.
struct Completion {
    transactional_id: String,
    partition: i32,
    coordinator_epoch: i32,
    markers: TxnMarkers,
    partitions: BTreeSet<(String, i32)>,
}

/// The transaction coordinator of this broker.
pub struct TransactionCoordinator {
    config: TransactionConfig,
    replica_manager: Arc<ReplicaManager>,
    producer_ids: Arc<ProducerIdManager>,
    channel: MarkerChannel,
    /// Bounds the marker sends in flight ([`MAX_MARKER_SENDS`]). Lock order: a permit is
    /// taken with no lock held, and `partitions` is never locked while one waits.
    marker_sends: tokio::sync::Semaphore,
    /// Lock order: this lock alone; never held across an await (appends are synchronous).
    partitions: Mutex<HashMap<i32, StatePartition>>,
    image: Mutex<Arc<MetadataImage>>,
}

/// A request's producer id and epoch against the current state (Kafka's checks).
fn check_producer(
    m: &TransactionMetadata,
    producer_id: i64,
    producer_epoch: i16,
    fenced: ErrorCode,
) -> Result<(), ErrorCode> {
    if m.producer_id != producer_id {
        return Err(ErrorCode::InvalidProducerIdMapping);
    }
    if m.producer_epoch != producer_epoch {
        return Err(fenced);
    }
    Ok(())
}

impl TransactionCoordinator {
    pub fn new(
        config: TransactionConfig,
        replica_manager: Arc<ReplicaManager>,
        producer_ids: Arc<ProducerIdManager>,
        channel: MarkerChannel,
    ) -> Arc<TransactionCoordinator> {
        Arc::new(TransactionCoordinator {
            config,
            replica_manager,
            producer_ids,
            channel,
            marker_sends: tokio::sync::Semaphore::new(MAX_MARKER_SENDS),
            partitions: Mutex::new(HashMap::new()),
            image: Mutex::new(Arc::new(MetadataImage::new())),
        })
    }

    pub fn config(&self) -> &TransactionConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<i32, StatePartition>> {
        self.partitions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn image(&self) -> Arc<MetadataImage> {
        self.image.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The `__transaction_state` partition of `transactional_id`.
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        partition_for(transactional_id, self.config.num_partitions)
    }

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new(TRANSACTION_STATE_TOPIC, p)
    }

    /// Whether this broker coordinates the id now: NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS
    /// otherwise ([`not_loaded`] before the load has begun).
    fn check_coordinator<'a>(
        rm: &ReplicaManager,
        parts: &'a HashMap<i32, StatePartition>,
        p: i32,
    ) -> Result<&'a StatePartition, ErrorCode> {
        match parts.get(&p) {
            Some(s) if s.loaded => Ok(s),
            Some(_) => Err(ErrorCode::CoordinatorLoadInProgress),
            None => Err(not_loaded(rm, TRANSACTION_STATE_TOPIC, p)),
        }
    }

    /// Follows leadership of `__transaction_state`: loads each partition this broker has come to
    /// lead (on a blocking thread), then completes the transactions it finds half-ended; forgets
    /// those it no longer leads.
    pub fn on_image(self: &Arc<Self>, image: &Arc<MetadataImage>) {
        *self.image.lock().unwrap_or_else(|e| e.into_inner()) = image.clone();
        let me = self.replica_manager.broker_id();
        let led: HashMap<i32, i32> = image
            .topic_by_name(TRANSACTION_STATE_TOPIC)
            .map(|t| {
                t.partitions
                    .iter()
                    .filter(|(_, r)| r.leader == me)
                    .map(|(p, r)| (*p, r.leader_epoch))
                    .collect()
            })
            .unwrap_or_default();
        let to_load: Vec<i32> = {
            let mut parts = self.lock();
            // A new leader epoch is a new coordinator epoch: reload.
            parts.retain(|p, s| led.get(p) == Some(&s.coordinator_epoch));
            let new: Vec<i32> = led
                .keys()
                .copied()
                .filter(|p| !parts.contains_key(p))
                .collect();
            for p in &new {
                parts.insert(
                    *p,
                    StatePartition {
                        coordinator_epoch: led[p],
                        ..Default::default()
                    },
                );
            }
            new
        };
        for p in to_load {
            let this = self.clone();
            let image = image.clone();
            tokio::spawn(async move {
                let loader = this.clone();
                let loaded = tokio::task::spawn_blocking(move || loader.load(&image, p)).await;
                match loaded {
                    Ok(Ok(pending)) => {
                        for c in pending {
                            this.clone().spawn_markers(c);
                        }
                    }
                    Ok(Err(e)) => {
                        tracing::error!(partition = p, error = %e, "cannot load transaction state")
                    }
                    Err(e) => {
                        tracing::error!(partition = p, error = %e, "transaction state load failed")
                    }
                }
            });
        }
    }

    /// Reads partition `p` into memory; the half-ended transactions to complete.
    fn load(&self, image: &MetadataImage, p: i32) -> Result<Vec<Completion>, String> {
        let mut txns: HashMap<String, TransactionMetadata> = HashMap::new();
        let mut load = PartitionLoad::new(TRANSACTION_STATE_TOPIC, p);
        read_partition(
            &self.replica_manager,
            image,
            &Self::tp(p),
            &mut load,
            &read_record,
            &mut |(id, m)| match m {
                Some(m) => {
                    txns.insert(id, m);
                }
                None => {
                    txns.remove(&id);
                }
            },
        )?;
        load.finish();
        let mut parts = self.lock();
        let Some(s) = parts.get_mut(&p) else {
            return Ok(Vec::new());
        };
        let mut pending = Vec::new();
        for (id, m) in txns {
            let commit = match m.state {
                TransactionState::PrepareCommit => Some(true),
                TransactionState::PrepareAbort => Some(false),
                _ => None,
            };
            let in_flight = commit.is_some();
            if let Some(commit) = commit {
                pending.push(Completion {
                    transactional_id: id.clone(),
                    partition: p,
                    coordinator_epoch: s.coordinator_epoch,
                    markers: TxnMarkers {
                        producer_id: m.producer_id,
                        producer_epoch: m.producer_epoch,
                        commit,
                        coordinator_epoch: s.coordinator_epoch,
                    },
                    partitions: m.partitions.clone(),
                });
            }
            s.txns.insert(
                id,
                Entry {
                    metadata: m,
                    pending: in_flight,
                },
            );
        }
        s.loaded = true;
        tracing::info!(
            partition = p,
            transactions = s.txns.len(),
            epoch = s.coordinator_epoch,
            "loaded transaction state"
        );
        Ok(pending)
    }

    /// Appends the new state of `id` (its entry already marked pending), waits for it to be
    /// replicated, then applies it; on failure the entry is left as it was, not pending.
    async fn write(
        &self,
        p: i32,
        coordinator_epoch: i32,
        id: &str,
        new: TransactionMetadata,
    ) -> Result<(), ErrorCode> {
        let image = self.image();
        let tp = Self::tp(p);
        let required = {
            let parts = self.lock();
            match parts.get(&p) {
                Some(s) if s.coordinator_epoch == coordinator_epoch => {}
                _ => return Err(ErrorCode::NotCoordinator),
            }
            append_records(
                &self.replica_manager,
                &image,
                &tp,
                &[new.to_record(id)],
                ErrorCode::UnknownServerError,
            )
        };
        let result = match required {
            Ok(required) => {
                let deadline = tokio::time::Instant::now() + WRITE_TIMEOUT;
                wait_replicated(&self.replica_manager, &image, &tp, required, deadline).await
            }
            Err(e) => Err(e),
        };
        let mut parts = self.lock();
        let Some(s) = parts
            .get_mut(&p)
            .filter(|s| s.coordinator_epoch == coordinator_epoch)
        else {
            return Err(ErrorCode::NotCoordinator);
        };
        match result {
            Ok(()) => {
                s.txns.insert(
                    id.to_owned(),
                    Entry {
                        metadata: new,
                        pending: false,
                    },
                );
                Ok(())
            }
            Err(e) => {
                if let Some(entry) = s.txns.get_mut(id) {
                    entry.pending = false;
                }
                Err(e)
            }
        }
    }

    /// Marks `id` pending and returns its state and the coordinator epoch, after `check`. As
    /// Kafka's, the producer's id and epoch are checked before the pending write: a fenced
    /// producer hears it is fenced, not CONCURRENT_TRANSACTIONS, while the id's markers are written.
    fn begin<T>(
        &self,
        id: &str,
        (producer_id, producer_epoch, fenced): (i64, i16, ErrorCode),
        check: impl FnOnce(&TransactionMetadata) -> Result<T, ErrorCode>,
    ) -> Result<(i32, i32, T), ErrorCode> {
        let p = self.partition_for(id);
        let mut parts = self.lock();
        let s = Self::check_coordinator(&self.replica_manager, &parts, p)?;
        let epoch = s.coordinator_epoch;
        let entry = s.txns.get(id).ok_or(ErrorCode::InvalidProducerIdMapping)?;
        check_producer(&entry.metadata, producer_id, producer_epoch, fenced)?;
        if entry.pending {
            return Err(ErrorCode::ConcurrentTransactions);
        }
        let out = check(&entry.metadata)?;
        if let Some(e) = parts.get_mut(&p).and_then(|s| s.txns.get_mut(id)) {
            e.pending = true;
        }
        Ok((p, epoch, out))
    }

    /// InitProducerId with a transactional id: the producer id and (bumped) epoch.
    pub async fn init_producer_id(
        self: &Arc<Self>,
        id: &str,
        txn_timeout_ms: i32,
        expected_producer_id: i64,
        expected_epoch: i16,
    ) -> Result<(i64, i16), ErrorCode> {
        if txn_timeout_ms <= 0 || txn_timeout_ms > self.config.max_timeout_ms {
            return Err(ErrorCode::InvalidTransactionTimeout);
        }
        // A new id needs a producer id before its first state is written; so does one whose
        // epoch is exhausted (Kafka's `prepareProducerIdRotation`).
        let needs_id = {
            let p = self.partition_for(id);
            let parts = self.lock();
            Self::check_coordinator(&self.replica_manager, &parts, p)?
                .txns
                .get(id)
                .is_none_or(|e| e.metadata.epoch_exhausted())
        };
        let fresh = if needs_id {
            Some(self.producer_ids.generate_producer_id().await?)
        } else {
            None
        };
        enum Plan {
            Bump(TransactionMetadata),
            AbortFirst(TransactionMetadata),
        }
        let now = now_ms();
        let (p, coordinator_epoch, plan) = {
            let p = self.partition_for(id);
            let mut parts = self.lock();
            let s = match parts.get_mut(&p) {
                Some(s) if s.loaded => s,
                Some(_) => return Err(ErrorCode::CoordinatorLoadInProgress),
                None => {
                    return Err(not_loaded(
                        &self.replica_manager,
                        TRANSACTION_STATE_TOPIC,
                        p,
                    ))
                }
            };
            let coordinator_epoch = s.coordinator_epoch;
            let entry = match (s.txns.get_mut(id), fresh) {
                (Some(e), _) => e,
                (None, Some(pid)) => s.txns.entry(id.to_owned()).or_insert(Entry {
                    metadata: TransactionMetadata::new(pid, txn_timeout_ms, now),
                    pending: false,
                }),
                (None, None) => return Err(ErrorCode::ConcurrentTransactions),
            };
            if entry.pending {
                return Err(ErrorCode::ConcurrentTransactions);
            }
            let m = &entry.metadata;
            // KIP-360: a producer that names its id and epoch must name the current ones.
            if expected_producer_id >= 0
                && (m.producer_id != expected_producer_id || m.producer_epoch != expected_epoch)
            {
                return Err(ErrorCode::ProducerFenced);
            }
            let plan = match m.state {
                TransactionState::PrepareCommit
                | TransactionState::PrepareAbort
                | TransactionState::PrepareEpochFence => {
                    return Err(ErrorCode::ConcurrentTransactions)
                }
                TransactionState::Ongoing => {
                    // Fence the old producer, abort its transaction with the new epoch.
                    Plan::AbortFirst(epoch_bump::fence_abort(m, now))
                }
                _ => {
                    let mut next = m.clone();
                    if m.epoch_exhausted() {
                        // A fresh producer id at epoch 0 (taken above; if the epoch ran out
                        // meanwhile, the client asks again).
                        let Some(pid) = fresh else {
                            return Err(ErrorCode::ConcurrentTransactions);
                        };
                        next.prev_producer_id = m.producer_id;
                        next.producer_id = pid;
                        next.producer_epoch = 0;
                    } else {
                        next.producer_epoch = m.producer_epoch + 1;
                    }
                    next.txn_timeout_ms = txn_timeout_ms;
                    next.state = TransactionState::Empty;
                    next.partitions.clear();
                    next.txn_start_timestamp = -1;
                    next.txn_last_update_timestamp = now;
                    Plan::Bump(next)
                }
            };
            entry.pending = true;
            (p, coordinator_epoch, plan)
        };
        match plan {
            Plan::Bump(next) => {
                let r = (next.producer_id, next.producer_epoch);
                self.write(p, coordinator_epoch, id, next).await?;
                Ok(r)
            }
            Plan::AbortFirst(next) => {
                self.prepare_and_send_markers(p, coordinator_epoch, id, next, false)
                    .await?;
                Err(ErrorCode::ConcurrentTransactions)
            }
        }
    }

    /// Writes `next` (PrepareCommit or PrepareAbort) and, once it is replicated, sends its
    /// markers to every partition of the transaction in the background (then Complete*).
    async fn prepare_and_send_markers(
        self: &Arc<Self>,
        p: i32,
        coordinator_epoch: i32,
        id: &str,
        next: TransactionMetadata,
        commit: bool,
    ) -> Result<(), ErrorCode> {
        let c = Completion {
            transactional_id: id.to_owned(),
            partition: p,
            coordinator_epoch,
            markers: TxnMarkers {
                producer_id: next.producer_id,
                producer_epoch: next.producer_epoch,
                commit,
                coordinator_epoch,
            },
            partitions: next.partitions.clone(),
        };
        self.write(p, coordinator_epoch, id, next).await?;
        self.mark_pending(p, id);
        self.clone().spawn_markers(c);
        Ok(())
    }

    fn mark_pending(&self, p: i32, id: &str) {
        if let Some(e) = self.lock().get_mut(&p).and_then(|s| s.txns.get_mut(id)) {
            e.pending = true;
        }
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: `partitions` join the transaction (Ongoing).
    /// `fenced` is the code for a stale epoch (PRODUCER_FENCED from v2, else
    /// INVALID_PRODUCER_EPOCH). `client_transaction_version` is the request's (Kafka's
    /// `clientTransactionVersion`: 2 when a partition leader adds a partition for a transactions
    /// v2 producer, AddPartitionsToTxn v4+ without VerifyOnly; 0 for the clients' v0–3).
    pub async fn add_partitions(
        &self,
        id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
        fenced: ErrorCode,
        client_transaction_version: i16,
    ) -> Result<(), ErrorCode> {
        let now = now_ms();
        let p = self.partition_for(id);
        let producer = (producer_id, producer_epoch, fenced);
        let (p2, coordinator_epoch, next) = self.begin(id, producer, |m| {
            match m.state {
                TransactionState::PrepareCommit | TransactionState::PrepareAbort => {
                    return Err(ErrorCode::ConcurrentTransactions)
                }
                TransactionState::PrepareEpochFence | TransactionState::Dead => {
                    return Err(ErrorCode::InvalidTxnState)
                }
                _ => {}
            }
            let mut next = m.clone();
            if next.state != TransactionState::Ongoing {
                next.txn_start_timestamp = now;
                next.partitions.clear();
            }
            next.state = TransactionState::Ongoing;
            next.txn_last_update_timestamp = now;
            next.client_transaction_version = client_transaction_version;
            next.partitions.extend(partitions.iter().cloned());
            Ok(next)
        })?;
        debug_assert_eq!(p, p2);
        self.write(p, coordinator_epoch, id, next).await
    }

    /// EndTxn: writes PrepareCommit / PrepareAbort, then (in the background) the markers and
    /// CompleteCommit / CompleteAbort. `bump_epoch` (EndTxn v5, transactions v2): the epoch is
    /// bumped ([`epoch_bump`]). `Ok` is the producer id and epoch the producer uses next.
    pub async fn end_txn(
        self: &Arc<Self>,
        id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        fenced: ErrorCode,
        bump_epoch: bool,
    ) -> Result<(i64, i16), ErrorCode> {
        if bump_epoch {
            return self
                .end_txn_v2(id, producer_id, producer_epoch, commit)
                .await;
        }
        let now = now_ms();
        let p = self.partition_for(id);
        let producer = (producer_id, producer_epoch, fenced);
        let result = self.begin(id, producer, |m| {
            match (m.state, commit) {
                (TransactionState::Ongoing, _) => {
                    let mut next = m.clone();
                    next.state = if commit {
                        TransactionState::PrepareCommit
                    } else {
                        TransactionState::PrepareAbort
                    };
                    next.txn_last_update_timestamp = now;
                    next.client_transaction_version = 0;
                    Ok(next)
                }
                // A retry of an EndTxn already done.
                (TransactionState::CompleteCommit, true)
                | (TransactionState::CompleteAbort, false) => Err(ErrorCode::None),
                (TransactionState::PrepareCommit, true)
                | (TransactionState::PrepareAbort, false) => Err(ErrorCode::ConcurrentTransactions),
                _ => Err(ErrorCode::InvalidTxnState),
            }
        });
        let (_, coordinator_epoch, next) = match result {
            Ok(r) => r,
            Err(ErrorCode::None) => return Ok((producer_id, producer_epoch)),
            Err(e) => return Err(e),
        };
        self.prepare_and_send_markers(p, coordinator_epoch, id, next, commit)
            .await?;
        Ok((producer_id, producer_epoch))
    }

    /// EndTxn v5 ([`epoch_bump`]): Kafka's transactions v2 checks, then PrepareCommit /
    /// PrepareAbort at the bumped epoch (with a fresh producer id when the epoch is exhausted),
    /// then the markers at that epoch in the background.
    async fn end_txn_v2(
        self: &Arc<Self>,
        id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<(i64, i16), ErrorCode> {
        let p = self.partition_for(id);
        let decide = || -> Result<EndTxnV2, ErrorCode> {
            let parts = self.lock();
            let s = Self::check_coordinator(&self.replica_manager, &parts, p)?;
            let entry = s.txns.get(id);
            Ok(epoch_bump::decide(
                entry.map(|e| &e.metadata),
                entry.is_some_and(|e| e.pending),
                producer_id,
                producer_epoch,
                commit,
            ))
        };
        // A fresh producer id is taken (asynchronously) before the state is looked at again.
        let fresh = match decide()? {
            EndTxnV2::Prepare { rotate: true, .. } => {
                Some(self.producer_ids.generate_producer_id().await?)
            }
            _ => None,
        };
        let now = now_ms();
        let (coordinator_epoch, next) = {
            let mut parts = self.lock();
            let s = Self::check_coordinator(&self.replica_manager, &parts, p)?;
            let coordinator_epoch = s.coordinator_epoch;
            let entry = s.txns.get(id);
            let decision = epoch_bump::decide(
                entry.map(|e| &e.metadata),
                entry.is_some_and(|e| e.pending),
                producer_id,
                producer_epoch,
                commit,
            );
            let next = match (decision, entry) {
                (
                    EndTxnV2::Done {
                        producer_id,
                        producer_epoch,
                    },
                    _,
                ) => return Ok((producer_id, producer_epoch)),
                (EndTxnV2::Refuse(code), _) => return Err(code),
                (EndTxnV2::Prepare { rotate: true, .. }, _) if fresh.is_none() => {
                    // The epoch ran out between the two looks: the client retries.
                    return Err(ErrorCode::ConcurrentTransactions);
                }
                (
                    EndTxnV2::Prepare {
                        state,
                        no_partition_added,
                        rotate,
                    },
                    Some(e),
                ) => epoch_bump::prepare(
                    &e.metadata,
                    state,
                    no_partition_added,
                    fresh.filter(|_| rotate),
                    now,
                ),
                (EndTxnV2::Prepare { .. }, None) => {
                    return Err(ErrorCode::InvalidProducerIdMapping)
                }
            };
            if let Some(e) = parts.get_mut(&p).and_then(|s| s.txns.get_mut(id)) {
                e.pending = true;
            }
            (coordinator_epoch, next)
        };
        let answer = epoch_bump::identity_after(&next);
        self.prepare_and_send_markers(p, coordinator_epoch, id, next, commit)
            .await?;
        Ok(answer)
    }

    /// Sends a completion's markers until every partition has one, then writes the Complete
    /// state; gives up if this broker stops coordinating the id.
    fn spawn_markers(self: Arc<Self>, c: Completion) {
        tokio::spawn(async move {
            let mut left = c.partitions.clone();
            loop {
                let still = {
                    let parts = self.lock();
                    parts
                        .get(&c.partition)
                        .is_some_and(|s| s.coordinator_epoch == c.coordinator_epoch)
                };
                if !still {
                    return;
                }
                // The leaders as the metadata names them now: a partition whose leader moved
                // (or answered NOT_LEADER_OR_FOLLOWER) is sent to its new leader.
                let Ok(permit) = self.marker_sends.acquire().await else {
                    return;
                };
                let image = self.image();
                left = self.channel.send_once(&image, &c.markers, &left).await;
                drop(permit);
                if left.is_empty() {
                    break;
                }
                tokio::time::sleep(MARKER_RETRY_BACKOFF).await;
            }
            let next = {
                let parts = self.lock();
                let Some(m) = parts
                    .get(&c.partition)
                    .and_then(|s| s.txns.get(&c.transactional_id))
                    .map(|e| e.metadata.clone())
                else {
                    return;
                };
                // Transactions v2: a state that named a next producer id rolls to it here.
                epoch_bump::complete(&m, now_ms())
            };
            // Retried until written or no longer the coordinator: the Prepare state stays
            // pending meanwhile.
            loop {
                match self
                    .write(
                        c.partition,
                        c.coordinator_epoch,
                        &c.transactional_id,
                        next.clone(),
                    )
                    .await
                {
                    Ok(()) => return,
                    Err(ErrorCode::NotCoordinator) => return,
                    Err(e) => {
                        tracing::warn!(transactional_id = %c.transactional_id, error = ?e, "cannot write a completed transaction; retrying");
                        self.mark_pending(c.partition, &c.transactional_id);
                        tokio::time::sleep(MARKER_RETRY_BACKOFF).await;
                    }
                }
            }
        });
    }

    /// KIP-890 part 1, the coordinator's half (AddPartitionsToTxn v4+ with VerifyOnly, Kafka's
    /// `handleVerifyPartitionsInTransaction`): whether each of `partitions` is in the ongoing
    /// transaction of `id` at `producer_id` / `producer_epoch`. `Err` applies to every partition
    /// (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, INVALID_PRODUCER_ID_MAPPING,
    /// PRODUCER_FENCED, CONCURRENT_TRANSACTIONS while the transaction is being ended); `Ok` has
    /// one code per partition: NONE, or INVALID_TXN_STATE for one not in the transaction.
    pub fn verify_partitions(
        &self,
        id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<Vec<ErrorCode>, ErrorCode> {
        let p = self.partition_for(id);
        let parts = self.lock();
        let s = Self::check_coordinator(&self.replica_manager, &parts, p)?;
        let m = &s
            .txns
            .get(id)
            .ok_or(ErrorCode::InvalidProducerIdMapping)?
            .metadata;
        check_producer(m, producer_id, producer_epoch, ErrorCode::ProducerFenced)?;
        match m.state {
            TransactionState::PrepareCommit | TransactionState::PrepareAbort => {
                return Err(ErrorCode::ConcurrentTransactions)
            }
            // An Ongoing transaction with a change in flight only grows (AddPartitionsToTxn) or
            // is about to be ended, whose markers come after any append verified now.
            TransactionState::Ongoing => {}
            _ => return Ok(vec![ErrorCode::InvalidTxnState; partitions.len()]),
        }
        Ok(partitions
            .iter()
            .map(|tp| {
                if m.partitions.contains(tp) {
                    ErrorCode::None
                } else {
                    ErrorCode::InvalidTxnState
                }
            })
            .collect())
    }

    /// Aborts every Ongoing transaction older than its timeout, with a bumped epoch so its
    /// producer is fenced (Kafka's `abortTimedOutTransactions`).
    pub async fn abort_timed_out(self: &Arc<Self>) {
        let now = now_ms();
        let timed_out: Vec<(i32, i32, String, TransactionMetadata)> = {
            let mut parts = self.lock();
            let mut out = Vec::new();
            for (p, s) in parts.iter_mut() {
                if !s.loaded {
                    continue;
                }
                for (id, e) in s.txns.iter_mut() {
                    let m = &e.metadata;
                    if e.pending
                        || m.state != TransactionState::Ongoing
                        || m.txn_start_timestamp + i64::from(m.txn_timeout_ms) > now
                    {
                        continue;
                    }
                    let next = epoch_bump::fence_abort(m, now);
                    e.pending = true;
                    out.push((*p, s.coordinator_epoch, id.clone(), next));
                }
            }
            out
        };
        for (p, coordinator_epoch, id, next) in timed_out {
            tracing::info!(transactional_id = %id, producer_id = next.producer_id, "aborting a timed-out transaction");
            if let Err(e) = self
                .prepare_and_send_markers(p, coordinator_epoch, &id, next, false)
                .await
            {
                // The entry is left as it was: the next check tries again.
                tracing::debug!(transactional_id = %id, ?e, "timed-out transaction not aborted yet");
            }
        }
    }
}
