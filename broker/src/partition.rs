//! `Partition`: one partition this broker hosts (Kafka's `kafka.cluster.Partition`) — its log,
//! its leadership and epoch from the metadata image, as leader its followers' states and the
//! ISR change it proposed, its log's settings and `min.insync.replicas` (set when the image or a
//! config changes, never resolved per request), and the watch of its offsets that delayed
//! operations wait on ([`crate::purgatory::OffsetsWatch`]).
//!
//! The replication rules live here: the high watermark is the smallest log end offset over the
//! ISR and never goes backwards ([`Partition::maybe_increment_high_watermark`]); a follower is
//! caught up when it fetched from the leader's log end, or from the end the leader had at its
//! previous fetch ([`Partition::update_follower_fetch_state`], Kafka's `lastCaughtUpTime`); the
//! ISR changes to propose ([`Partition::isr_change`]). The `ReplicaManager` finds partitions,
//! applies image deltas and maps errors; it does not look inside one.
//!
//! Lock order (outer first; a lock is never taken while a later one is held):
//!
//! 1. `state` — the registration and leadership (a `RwLock`: reads are every request's, writes
//!    the image's). Held only to read or replace them; requests copy what they need and let go
//!    before taking the log.
//! 2. the log (`SharedLog`, storage's mutex) — every append, read and high-watermark change.
//! 3. `replicas` — the followers' states and the pending ISR change.
//!
//! `config` is a leaf (taken alone, to copy an `Arc` out or to replace it). The offsets watch
//! is published under the log's lock (so its values follow the log's order) and read without
//! any lock; its waiters are woken after the log's lock is let go.

use crate::errors::storage_error_code;
use crate::log_read::{FetchIsolation, FollowerRead, ReadResult, MAX_ABORTED_TXNS_PER_FETCH};
use crate::metrics::topic::TopicMetrics;
use crate::purgatory::{Moved, Offsets, OffsetsWatch, WatchKey};
use rafka_controller::image::{MetadataImage, PartitionRegistration};
use rafka_protocol::{ErrorCode, Uuid};
use rafka_storage::log_manager::{lock_log, LogGuard};
use rafka_storage::{LogConfig, SharedLog, TopicPartition, UnifiedLog};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// An ISR change to propose to the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrChange {
    pub tp: TopicPartition,
    pub topic_id: Uuid,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub new_isr: Vec<i32>,
}

/// One hosted partition.
#[derive(Debug)]
pub struct Partition {
    pub tp: TopicPartition,
    pub topic_id: Uuid,
    pub log: SharedLog,
    /// This broker's id.
    local_broker_id: i32,
    state: RwLock<PartitionState>,
    /// As leader: what each follower's fetches showed, and the ISR change in flight.
    replicas: Mutex<ReplicaStates>,
    /// The log's settings (the topic's overrides over the broker's), as the image last set them.
    config: RwLock<Arc<LogConfig>>,
    /// The topic's `min.insync.replicas`, as the image last set it.
    min_insync_replicas: AtomicI32,
    /// Log end, high watermark and last stable offset, for delayed operations.
    offsets: Arc<OffsetsWatch>,
    /// Its topic's metrics handle, resolved when the partition is created (none with
    /// `metrics.enable=false`): the produce and fetch paths record through it without a lookup.
    pub stats: Option<Arc<TopicMetrics>>,
}

#[derive(Debug, Clone)]
pub(crate) struct PartitionState {
    pub(crate) registration: PartitionRegistration,
    pub(crate) is_leader: bool,
}

/// The leader a partition in `st` is followed on, if this broker follows it.
pub(crate) fn followed_leader(st: &PartitionState) -> Option<i32> {
    (!st.is_leader && st.registration.leader >= 0).then_some(st.registration.leader)
}

/// What the leader knows of one follower.
#[derive(Debug, Clone, Copy)]
pub struct FollowerState {
    /// Its log end offset (the offset of its last fetch), -1 until it has fetched.
    pub log_end_offset: i64,
    pub last_caught_up_ms: i64,
    last_fetch_ms: i64,
    /// The leader's log end offset at that fetch.
    last_fetch_leader_leo: i64,
}

impl FollowerState {
    fn unknown(now: i64) -> FollowerState {
        FollowerState {
            log_end_offset: -1,
            last_caught_up_ms: now,
            last_fetch_ms: now,
            last_fetch_leader_leo: -1,
        }
    }
}

/// A leader's view of its followers, and the ISR change it has proposed.
#[derive(Debug, Default)]
pub struct ReplicaStates {
    followers: HashMap<i32, FollowerState>,
    /// The ISR sent to the controller, with the partition epoch it was proposed at.
    pending_isr: Option<(i32, Vec<i32>)>,
}

impl ReplicaStates {
    /// Each follower's log end offset as its last fetch showed it (-1 before any fetch).
    pub fn follower_log_end_offsets(&self) -> Vec<(i32, i64)> {
        self.followers
            .iter()
            .map(|(id, f)| (*id, f.log_end_offset))
            .collect()
    }
}

/// What a change of registration did to a partition (for the replica manager's sets and logs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct StateChange {
    /// Whether this registration made this broker the partition's leader or moved it to a
    /// follower of another leader (logged by the replica manager).
    pub(crate) became: Option<Became>,
    pub(crate) followed_before: Option<i32>,
    pub(crate) followed_after: Option<i32>,
    /// ISR size before and after, when this broker led before and leads now.
    pub(crate) isr_sizes: Option<(usize, usize)>,
}

/// A change of this broker's role for a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Became {
    Leader { epoch: i32 },
    Follower { leader: i32, epoch: i32 },
}

fn offsets_of(log: &UnifiedLog) -> Offsets {
    Offsets {
        log_end_offset: log.log_end_offset(),
        high_watermark: log.high_watermark(),
        last_stable_offset: log.last_stable_offset(),
    }
}

/// The offset the current leader epoch starts at in `log` (its log end if it has not
/// appended yet).
pub(crate) fn epoch_start_offset(log: &UnifiedLog, leader_epoch: i32) -> i64 {
    log.leader_epoch_cache()
        .epoch_entries()
        .iter()
        .rev()
        .find(|e| e.epoch == leader_epoch)
        .map_or(log.log_end_offset(), |e| e.start_offset)
}

impl Partition {
    /// A partition of `log`, not led yet (the registration applies next).
    pub(crate) fn new(
        tp: TopicPartition,
        topic_id: Uuid,
        log: SharedLog,
        local_broker_id: i32,
        registration: PartitionRegistration,
        config: Arc<LogConfig>,
        min_insync_replicas: i32,
        stats: Option<Arc<TopicMetrics>>,
    ) -> Partition {
        let offsets = {
            let mut l = lock_log(&log);
            // One copy of the settings for the log and the partition (and, from the replica
            // manager, for every partition of the topic).
            l.set_config(config.clone());
            Arc::new(OffsetsWatch::new(offsets_of(&l)))
        };
        Partition {
            tp,
            topic_id,
            log,
            local_broker_id,
            state: RwLock::new(PartitionState {
                registration,
                is_leader: false,
            }),
            replicas: Mutex::new(ReplicaStates::default()),
            config: RwLock::new(config),
            min_insync_replicas: AtomicI32::new(min_insync_replicas),
            offsets,
            stats,
        }
    }

    pub(crate) fn state(&self) -> PartitionState {
        self.state.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads the state in place (no clone of the registration).
    pub(crate) fn with_state<R>(&self, f: impl FnOnce(&PartitionState) -> R) -> R {
        f(&self.state.read().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn is_leader(&self) -> bool {
        self.with_state(|st| st.is_leader)
    }

    pub fn leader_epoch(&self) -> i32 {
        self.with_state(|st| st.registration.leader_epoch)
    }

    /// The log's settings as the image last set them (no lock on the log).
    pub fn config(&self) -> Arc<LogConfig> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn min_insync_replicas(&self) -> i32 {
        self.min_insync_replicas.load(Ordering::Relaxed)
    }

    /// The topic's configs changed (or the broker's defaults): the log and the cached values.
    pub(crate) fn update_config(&self, config: Arc<LogConfig>, min_insync_replicas: i32) {
        lock_log(&self.log).set_config(config.clone());
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config;
        self.min_insync_replicas
            .store(min_insync_replicas, Ordering::Relaxed);
    }

    /// The watch of this partition's offsets.
    pub fn offsets(&self) -> &Arc<OffsetsWatch> {
        &self.offsets
    }

    /// Publishes the log's offsets to the watch (under the log's lock); wake what moved after
    /// letting the lock go ([`Partition::wake`]).
    fn publish(&self, log: &UnifiedLog) -> Moved {
        self.offsets.publish(offsets_of(log))
    }

    fn wake(&self, moved: Moved) {
        if moved.any() {
            self.offsets.wake(moved);
        }
    }

    /// Publishes what changed in the locked log, lets the lock go and wakes the waiters of the
    /// offsets that moved.
    pub(crate) fn release(&self, log: LogGuard<'_>) {
        let moved = self.publish(&log);
        drop(log);
        self.wake(moved);
    }

    /// Applies a new registration: leadership, epoch, ISR. Answers what changed for the
    /// replica manager's sets, and whether this is a new leadership (not led before, or a new
    /// epoch). Every waiter on this partition looks again when anything changed.
    pub(crate) fn set_registration(
        &self,
        reg: &PartitionRegistration,
        now: i64,
    ) -> (bool, StateChange) {
        let me = self.local_broker_id;
        let is_leader = reg.leader == me;
        let (new_leadership, change, left_isr) = {
            let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
            let became = if is_leader && !st.is_leader {
                Some(Became::Leader {
                    epoch: reg.leader_epoch,
                })
            } else if !is_leader
                && reg.leader >= 0
                && (st.is_leader || st.registration.leader != reg.leader)
            {
                Some(Became::Follower {
                    leader: reg.leader,
                    epoch: reg.leader_epoch,
                })
            } else {
                None
            };
            let new =
                is_leader && (!st.is_leader || st.registration.leader_epoch != reg.leader_epoch);
            let isr_sizes =
                (is_leader && st.is_leader).then_some((st.registration.isr.len(), reg.isr.len()));
            let followed_before = followed_leader(&st);
            let left_isr: Vec<i32> = st
                .registration
                .isr
                .iter()
                .copied()
                .filter(|id| !reg.isr.contains(id))
                .collect();
            st.registration = reg.clone();
            st.is_leader = is_leader;
            (
                new,
                StateChange {
                    became,
                    followed_before,
                    followed_after: followed_leader(&st),
                    isr_sizes,
                },
                left_isr,
            )
        };
        self.on_registration(reg, is_leader, new_leadership, &left_isr, now);
        let mut log = lock_log(&self.log);
        if is_leader {
            self.maybe_increment_high_watermark(reg, &mut log);
        }
        self.release(log);
        // Leadership, epoch or ISR changed: delayed produces and fetches decide again.
        self.offsets.wake_everyone();
        (new_leadership, change)
    }

    /// The partition goes away (deleted, moved, replaced): its waiters answer now.
    pub(crate) fn remove(&self) {
        self.offsets.wake_everyone();
    }

    /// Keeps the replica bookkeeping in step with a new registration: a new leadership starts
    /// with every follower unknown but counted as caught up now (as Kafka does, so an ISR member
    /// is not dropped before it could fetch); a decided ISR proposal is forgotten.
    ///
    /// A follower taken out of the ISR (`left_isr`) is known again only from its next fetch.
    /// The controller takes a broker whose heartbeat connection closed out of every ISR at once
    /// but fences it only when its session expires; in between the image shows it unfenced, and
    /// the fetch state of the dead process (caught up a moment ago) would let this leader add it
    /// straight back — an ISR counting a replica nobody serves. Kafka's fenced-broker check
    /// covers this there, because Kafka takes a broker out of the ISR only by fencing it.
    fn on_registration(
        &self,
        reg: &PartitionRegistration,
        is_leader: bool,
        new_leadership: bool,
        left_isr: &[i32],
        now: i64,
    ) {
        let me = self.local_broker_id;
        let mut r = self.replicas.lock().unwrap_or_else(|e| e.into_inner());
        if !is_leader {
            r.followers.clear();
            r.pending_isr = None;
            return;
        }
        if new_leadership {
            r.followers.clear();
        }
        for &id in left_isr.iter().filter(|&&id| id != me) {
            r.followers.insert(id, FollowerState::unknown(now));
        }
        for &id in reg.replicas.iter().filter(|&&id| id != me) {
            r.followers
                .entry(id)
                .or_insert_with(|| FollowerState::unknown(now));
        }
        r.followers.retain(|id, _| reg.replicas.contains(id));
        if r.pending_isr
            .as_ref()
            .is_some_and(|(epoch, _)| *epoch != reg.partition_epoch)
        {
            r.pending_isr = None;
        }
    }

    /// The followers' states (tests, DescribeTopicPartitions-like views).
    pub fn follower_states(&self) -> HashMap<i32, FollowerState> {
        self.replicas_lock().followers.clone()
    }

    pub(crate) fn replicas_lock(&self) -> std::sync::MutexGuard<'_, ReplicaStates> {
        self.replicas.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves the high watermark to the smallest log end offset over the ISR, if that is higher
    /// (never backwards). Answers whether it moved; the caller publishes ([`Partition::release`]).
    pub(crate) fn maybe_increment_high_watermark(
        &self,
        reg: &PartitionRegistration,
        log: &mut UnifiedLog,
    ) -> bool {
        let me = self.local_broker_id;
        if reg.leader != me {
            return false;
        }
        let mut hw = log.log_end_offset();
        {
            let r = self.replicas_lock();
            for id in reg.isr.iter().filter(|&&id| id != me) {
                match r.followers.get(id) {
                    Some(f) if f.log_end_offset >= 0 => hw = hw.min(f.log_end_offset),
                    // An ISR member not heard from yet: the high watermark waits for it.
                    _ => return false,
                }
            }
        }
        if hw > log.high_watermark() {
            log.set_high_watermark(hw);
            return true;
        }
        false
    }

    /// Appends as leader under the log's lock (`append` gets the leader epoch), moves the high
    /// watermark when the ISR is this broker alone, publishes and wakes. acks=all needs the ISR
    /// to have at least `min.insync.replicas` members first (NOT_ENOUGH_REPLICAS).
    pub(crate) fn append_records_to_leader<T>(
        &self,
        acks: i16,
        append: impl FnOnce(&mut UnifiedLog, i32) -> rafka_storage::Result<T>,
    ) -> Result<(T, AppendedOffsets), AppendRefused> {
        // The state's read lock is held through the append (state before log, as ordered
        // above): the append is made at the epoch and ISR it was checked against, without a
        // copy of the registration.
        let st = self.state.read().unwrap_or_else(|e| e.into_inner());
        if acks == -1 && (st.registration.isr.len() as i32) < self.min_insync_replicas() {
            return Err(AppendRefused::NotEnoughReplicas);
        }
        let mut log = lock_log(&self.log);
        let out = match append(&mut log, st.registration.leader_epoch) {
            Ok(out) => out,
            Err(e) => {
                self.release(log);
                return Err(AppendRefused::Log(e));
            }
        };
        // Alone in the ISR, the append is committed at once.
        self.maybe_increment_high_watermark(&st.registration, &mut log);
        let offsets = AppendedOffsets {
            high_watermark: log.high_watermark(),
            log_start_offset: log.log_start_offset(),
        };
        self.release(log);
        Ok((out, offsets))
    }

    /// Reads whole batches from `offset`, at most `max_bytes` (the first batch whole when
    /// `min_one`), up to the bound of `isolation`; read_committed also gets the aborted
    /// transactions in range.
    pub(crate) fn read_records(
        &self,
        offset: i64,
        max_bytes: u64,
        min_one: bool,
        isolation: FetchIsolation,
    ) -> ReadResult {
        let mut log = lock_log(&self.log);
        let hw = log.high_watermark();
        let lso = log.last_stable_offset();
        let mut out = ReadResult {
            error: ErrorCode::None,
            high_watermark: hw,
            last_stable_offset: lso,
            log_start_offset: log.log_start_offset(),
            records: None,
            stats: None,
            aborted_transactions: None,
        };
        let upper = match isolation {
            FetchIsolation::LogEnd => log.log_end_offset(),
            FetchIsolation::HighWatermark => hw,
            FetchIsolation::TxnCommitted => lso,
        };
        match log.read(offset, max_bytes, upper, min_one) {
            Ok(info) => out.records = info.slice,
            Err(e) => out.error = storage_error_code(&e),
        }
        if isolation == FetchIsolation::TxnCommitted && out.error == ErrorCode::None {
            let aborted = if out.records.is_some() {
                log.collect_aborted_txns(offset, upper, MAX_ABORTED_TXNS_PER_FETCH)
            } else {
                Ok(Vec::new())
            };
            match aborted {
                Ok(a) => out.aborted_transactions = Some(a),
                Err(e) => {
                    out.error = storage_error_code(&e);
                    out.records = None;
                }
            }
        }
        out
    }

    /// The bytes a read from `offset` up to the bound of `isolation` would answer now (at most
    /// `max_bytes`, the first batch whole), for a delayed fetch with `min_bytes` above one.
    /// An error answers `u64::MAX`: the fetch must answer now.
    pub(crate) fn available_bytes(
        &self,
        offset: i64,
        max_bytes: u64,
        isolation: FetchIsolation,
    ) -> u64 {
        let mut log = lock_log(&self.log);
        let upper = match isolation {
            FetchIsolation::LogEnd => log.log_end_offset(),
            FetchIsolation::HighWatermark => log.high_watermark(),
            FetchIsolation::TxnCommitted => log.last_stable_offset(),
        };
        match log.read(offset, max_bytes, upper, true) {
            Ok(info) => info.slice.map_or(0, |s| u64::from(s.len)),
            Err(_) => u64::MAX,
        }
    }

    /// A follower's fetch from this leader, after its replica and epoch were checked: finds a
    /// divergence (KIP-320), reads up to the log end (not the high watermark), records the
    /// follower's progress at `record_progress_at` (`None`: a re-read, already recorded) and
    /// moves the high watermark.
    pub(crate) fn read_for_follower(
        &self,
        reg: &PartitionRegistration,
        replica_id: i32,
        fetch_offset: i64,
        last_fetched_epoch: i32,
        max_bytes: u64,
        record_progress_at: Option<i64>,
    ) -> FollowerRead {
        let mut log = lock_log(&self.log);
        let leo = log.log_end_offset();
        let mut out = FollowerRead {
            error: ErrorCode::None,
            high_watermark: log.high_watermark(),
            log_start_offset: log.log_start_offset(),
            log_end_offset: leo,
            records: None,
            diverging_epoch: None,
        };
        if last_fetched_epoch >= 0 {
            let (epoch, end) = log
                .leader_epoch_cache()
                .end_offset_for(last_fetched_epoch, leo);
            if epoch < 0 || end < 0 {
                // Kafka: the end of the last fetched epoch cannot be determined.
                out.error = ErrorCode::OffsetOutOfRange;
                return out;
            }
            if epoch < last_fetched_epoch || end < fetch_offset {
                out.diverging_epoch = Some((epoch, end));
                return out;
            }
        }
        match log.read(fetch_offset, max_bytes, leo, true) {
            Ok(info) => out.records = info.slice,
            Err(e) => {
                out.error = storage_error_code(&e);
                return out;
            }
        }
        if let Some(now) = record_progress_at {
            self.update_follower_fetch_state(replica_id, fetch_offset, leo, now);
        }
        self.maybe_increment_high_watermark(reg, &mut log);
        out.high_watermark = log.high_watermark();
        self.release(log);
        out
    }

    /// Records a follower's fetch at `fetch_offset` when the leader's log ended at `leo`.
    fn update_follower_fetch_state(&self, replica_id: i32, fetch_offset: i64, leo: i64, now: i64) {
        let mut r = self.replicas_lock();
        let f = r
            .followers
            .entry(replica_id)
            .or_insert_with(|| FollowerState::unknown(now));
        if fetch_offset >= leo {
            f.last_caught_up_ms = now;
        } else if fetch_offset >= f.last_fetch_leader_leo && f.last_fetch_leader_leo >= 0 {
            f.last_caught_up_ms = f.last_caught_up_ms.max(f.last_fetch_ms);
        }
        f.last_fetch_leader_leo = leo;
        f.last_fetch_ms = now;
        f.log_end_offset = fetch_offset;
    }

    /// The ISR change this leader should propose now, if any: followers not caught up for
    /// `lag_ms` out, caught-up active replicas in. One proposal at a time.
    pub(crate) fn isr_change(
        &self,
        image: &MetadataImage,
        lag_ms: i64,
        now: i64,
    ) -> Option<IsrChange> {
        let me = self.local_broker_id;
        let st = self.state();
        if !st.is_leader || st.registration.replicas.len() <= 1 {
            return None;
        }
        let reg = &st.registration;
        let (hw, epoch_start) = {
            let log = lock_log(&self.log);
            (
                log.high_watermark(),
                epoch_start_offset(&log, reg.leader_epoch),
            )
        };
        let mut r = self.replicas_lock();
        if r.pending_isr.is_some() {
            return None;
        }
        let mut isr: Vec<i32> = reg
            .isr
            .iter()
            .copied()
            .filter(|&id| {
                id == me
                    || r.followers
                        .get(&id)
                        .is_some_and(|f| now - f.last_caught_up_ms <= lag_ms)
            })
            .collect();
        for &id in &reg.replicas {
            if isr.contains(&id) || !image.is_active(id) {
                continue;
            }
            if r.followers.get(&id).is_some_and(|f| {
                f.log_end_offset >= hw
                    && f.log_end_offset >= epoch_start
                    && now - f.last_caught_up_ms <= lag_ms
            }) {
                isr.push(id);
            }
        }
        if isr == reg.isr {
            return None;
        }
        r.pending_isr = Some((reg.partition_epoch, isr.clone()));
        Some(IsrChange {
            tp: self.tp.clone(),
            topic_id: self.topic_id,
            leader_epoch: reg.leader_epoch,
            partition_epoch: reg.partition_epoch,
            new_isr: isr,
        })
    }

    /// The controller refused (or never answered) a proposal: forget it, to propose again.
    pub(crate) fn isr_change_failed(&self) {
        self.replicas_lock().pending_isr = None;
    }

    /// The bound a read of `isolation` stops at, as last published (no lock).
    pub fn published_bound(&self, isolation: FetchIsolation) -> i64 {
        self.offsets.get(watch_key(isolation))
    }
}

/// The offset of the watch a read of `isolation` waits on.
pub fn watch_key(isolation: FetchIsolation) -> WatchKey {
    match isolation {
        FetchIsolation::LogEnd => WatchKey::LogEnd,
        FetchIsolation::HighWatermark => WatchKey::HighWatermark,
        FetchIsolation::TxnCommitted => WatchKey::LastStable,
    }
}

/// A leader's append that the log took: its high watermark and log start after it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AppendedOffsets {
    pub(crate) high_watermark: i64,
    pub(crate) log_start_offset: i64,
}

/// Why a leader's append was refused.
#[derive(Debug)]
pub(crate) enum AppendRefused {
    /// acks=all with fewer in-sync replicas than `min.insync.replicas`.
    NotEnoughReplicas,
    Log(rafka_storage::StorageError),
}
