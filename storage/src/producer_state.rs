//! `ProducerStateManager`: one partition's idempotent-producer state, as Kafka keeps it — per
//! producer id its epoch and the metadata of its last [`NUM_BATCHES_TO_RETAIN`] batches
//! (sequence range, offsets, timestamp), so that a retried batch is recognised and answered with
//! the offsets it got the first time, and a gap or a stale epoch is refused.
//!
//! Everything comes from batch headers (producer id, epoch, base sequence, last offset delta,
//! max timestamp): no payload is ever read.
//!
//! Transactions (KIP-98), as Kafka's `ProducerStateManager` keeps them: a producer's first
//! transactional batch opens its transaction at that offset; the end marker (COMMIT or ABORT,
//! appended by WriteTxnMarkers) closes it. The first offset of the oldest transaction still open
//! — or completed but with its marker not yet under the high watermark — is the first unstable
//! offset; the last stable offset (LSO) is the lower of it and the high watermark, and
//! read_committed consumers read no further.
//!
//! Durability, as in Kafka: `<offset>.snapshot` files in the partition directory hold the state
//! as it was just before `offset` (taken at every segment roll and at a clean shutdown; Kafka's
//! format: version 1, CRC-32C, then per producer its last batch). Opening a log loads the newest
//! snapshot at or below the log end and replays the batch headers from there; a truncation drops
//! the snapshots above its point and does the same.

pub use crate::error::ProducerError;
use crate::error::{IoContext, Result, StorageError};
use crate::fs::FileSystem;
use crate::log_segment::file_name;
use rafka_protocol::control_record::{ControlRecordType, EndTransactionMarker};
use rafka_protocol::record_batch::{crc32c, NO_PRODUCER_EPOCH, NO_SEQUENCE};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How many batches per producer are remembered for duplicate detection (Kafka's
/// `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`; clients keep at most 5 requests in flight).
pub const NUM_BATCHES_TO_RETAIN: usize = 5;
/// The suffix of producer-state snapshot files.
pub const SNAPSHOT_SUFFIX: &str = ".snapshot";
/// Kafka's `producer.id.expiration.ms` default: a producer idle this long is forgotten.
pub const DEFAULT_PRODUCER_ID_EXPIRATION_MS: i64 = 86_400_000;

const SNAPSHOT_VERSION: i16 = 1;
/// version int16, crc uint32, then the entries array (int32 count).
const SNAPSHOT_HEADER: usize = 2 + 4;
/// producer_id int64, epoch int16, last_sequence int32, last_offset int64, offset_delta int32,
/// timestamp int64, coordinator_epoch int32, current_txn_first_offset int64.
const SNAPSHOT_ENTRY: usize = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8;

/// `sequence + increment`, wrapping past `i32::MAX` to 0 as Kafka's sequences do.
pub fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

/// `sequence - decrement`, wrapping below 0 to `i32::MAX`.
pub fn decrement_sequence(sequence: i32, decrement: i32) -> i32 {
    if sequence < decrement {
        i32::MAX - (decrement - sequence) + 1
    } else {
        sequence - decrement
    }
}

fn in_sequence(last_sequence: i32, next_sequence: i32) -> bool {
    next_sequence == last_sequence.wrapping_add(1)
        || (next_sequence == 0 && last_sequence == i32::MAX)
}

/// The header fields of one appended batch that producer state needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub is_transactional: bool,
}

impl ProducerBatch {
    pub fn last_sequence(&self) -> i32 {
        increment_sequence(self.base_sequence, self.offset_delta())
    }

    fn offset_delta(&self) -> i32 {
        i32::try_from(self.last_offset - self.first_offset).unwrap_or(i32::MAX)
    }

    fn metadata(&self) -> BatchMetadata {
        BatchMetadata {
            last_seq: self.last_sequence(),
            last_offset: self.last_offset,
            offset_delta: self.offset_delta(),
            timestamp: self.max_timestamp,
        }
    }
}

/// One remembered batch (Kafka's `BatchMetadata`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub last_seq: i32,
    pub last_offset: i64,
    pub offset_delta: i32,
    pub timestamp: i64,
}

impl BatchMetadata {
    pub fn first_seq(&self) -> i32 {
        decrement_sequence(self.last_seq, self.offset_delta)
    }

    pub fn first_offset(&self) -> i64 {
        self.last_offset - i64::from(self.offset_delta)
    }
}

/// What is known of one producer (Kafka's `ProducerStateEntry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerStateEntry {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The newest last.
    pub batches: VecDeque<BatchMetadata>,
    pub coordinator_epoch: i32,
    pub last_timestamp: i64,
    /// The first offset of the producer's open transaction in this partition.
    pub current_txn_first_offset: Option<i64>,
}

impl ProducerStateEntry {
    fn empty(producer_id: i64) -> ProducerStateEntry {
        ProducerStateEntry {
            producer_id,
            producer_epoch: NO_PRODUCER_EPOCH,
            batches: VecDeque::new(),
            coordinator_epoch: -1,
            last_timestamp: -1,
            current_txn_first_offset: None,
        }
    }

    /// Records a batch: its metadata, and the start of a transaction if it opens one.
    fn add_batch(&mut self, batch: &ProducerBatch) {
        self.add(batch.producer_epoch, batch.metadata());
        if batch.is_transactional && self.current_txn_first_offset.is_none() {
            self.current_txn_first_offset = Some(batch.first_offset);
        }
    }

    pub fn last_seq(&self) -> i32 {
        self.batches.back().map_or(NO_SEQUENCE, |b| b.last_seq)
    }

    pub fn last_offset(&self) -> i64 {
        self.batches.back().map_or(-1, |b| b.last_offset)
    }

    fn find_duplicate(&self, epoch: i16, first_seq: i32, last_seq: i32) -> Option<BatchMetadata> {
        if epoch != self.producer_epoch {
            return None;
        }
        self.batches
            .iter()
            .find(|b| b.first_seq() == first_seq && b.last_seq == last_seq)
            .copied()
    }

    fn add(&mut self, epoch: i16, batch: BatchMetadata) {
        if epoch != self.producer_epoch {
            self.batches.clear();
            self.producer_epoch = epoch;
        }
        self.batches.push_back(batch);
        while self.batches.len() > NUM_BATCHES_TO_RETAIN {
            self.batches.pop_front();
        }
        self.last_timestamp = batch.timestamp;
    }
}

/// KIP-890 part 1 (Kafka's `VerificationGuard`): a token a partition leader takes before it asks
/// the transaction coordinator whether a producer's first transactional batch belongs to an
/// ongoing transaction, and presents with the append. An end marker (or the transaction
/// starting) drops the producer's token, so a request verified before a marker and appended
/// after it is refused rather than opening a transaction no coordinator will ever end.
/// [`VerificationGuard::SENTINEL`] (asked for a producer already in a transaction here) matches
/// nothing: it only lets the append through while that transaction is still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerificationGuard(u64);

impl VerificationGuard {
    pub const SENTINEL: VerificationGuard = VerificationGuard(0);

    pub fn is_sentinel(self) -> bool {
        self == Self::SENTINEL
    }
}

/// The most producers of one partition that may be waiting for a verification at once; past it
/// the oldest waiting one loses its guard (its append is then refused INVALID_TXN_STATE and its
/// client aborts and retries the transaction), so a flood of producer ids cannot grow the map.
pub const MAX_PENDING_VERIFICATIONS: usize = 10_000;

/// One producer's outstanding verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct VerificationState {
    guard: VerificationGuard,
    epoch: i16,
}

/// Who appends a batch (Kafka's `AppendOrigin`, for what the checks need).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOrigin {
    /// A producer's Produce request: every check.
    Client,
    /// A coordinator writing its own records (TxnOffsetCommit): no duplicate or sequence check.
    Coordinator,
}

/// A transaction an end marker closed (Kafka's `CompletedTxn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The marker's offset.
    pub last_offset: i64,
    pub is_aborted: bool,
}

/// What to do with a producer's batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProducerCheck {
    Append,
    /// A retry of a batch already in the log: answer with its offsets, append nothing.
    Duplicate(BatchMetadata),
}

/// The state of the producers a leader appends for, validated batch by batch within one request
/// before anything is written (Kafka's `ProducerAppendInfo`), then applied.
#[derive(Debug, Default)]
pub struct PendingProducerState {
    entries: HashMap<i64, ProducerStateEntry>,
    /// `Some`: a transactional batch that opens a transaction needs this guard to be its
    /// producer's current one (the produce path of a request with a transactional id); `None`:
    /// not checked (appends the broker makes itself).
    verification: Option<VerificationGuard>,
}

impl PendingProducerState {
    /// State for a request whose transactional batches must carry `guard` (KIP-890 part 1).
    pub fn verified_by(guard: VerificationGuard) -> PendingProducerState {
        PendingProducerState {
            verification: Some(guard),
            ..Default::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[derive(Debug)]
pub struct ProducerStateManager {
    fs: Arc<dyn FileSystem>,
    dir: Arc<Path>,
    producers: HashMap<i64, ProducerStateEntry>,
    /// The offset the state covers the log up to (exclusive).
    map_end_offset: i64,
    /// The offsets of the snapshot files in the directory.
    snapshots: BTreeSet<i64>,
    /// Open transactions: first offset → producer id.
    ongoing_txns: BTreeMap<i64, i64>,
    /// Completed transactions whose marker may not be under the high watermark yet: first
    /// offset → marker offset. They stay unstable until it is.
    unreplicated_txns: BTreeMap<i64, i64>,
    /// KIP-890 part 1: producers waiting for their coordinator's verification (at most
    /// [`MAX_PENDING_VERIFICATIONS`]). In memory only: a new leader verifies again.
    verifications: HashMap<i64, VerificationState>,
    next_guard: u64,
}

impl ProducerStateManager {
    /// A manager for the partition directory `dir`, knowing its snapshot files, with no state
    /// loaded yet.
    pub fn new(fs: Arc<dyn FileSystem>, dir: impl Into<Arc<Path>>) -> Result<ProducerStateManager> {
        let dir: Arc<Path> = dir.into();
        let listing = fs.list_dir(&dir).at(&dir)?;
        Ok(Self::from_listing(fs, dir, &listing))
    }

    /// [`ProducerStateManager::new`] from the directory's entries as the caller listed them
    /// (the log lists its directory once when it loads).
    pub fn from_listing(
        fs: Arc<dyn FileSystem>,
        dir: Arc<Path>,
        listing: &[std::path::PathBuf],
    ) -> ProducerStateManager {
        let mut snapshots = BTreeSet::new();
        for p in listing {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let Some(offset) = name.strip_suffix(SNAPSHOT_SUFFIX) {
                match offset.parse::<i64>() {
                    Ok(o) if o >= 0 => {
                        snapshots.insert(o);
                    }
                    _ => {}
                }
            }
        }
        ProducerStateManager {
            fs,
            dir,
            producers: HashMap::new(),
            map_end_offset: 0,
            snapshots,
            ongoing_txns: BTreeMap::new(),
            unreplicated_txns: BTreeMap::new(),
            verifications: HashMap::new(),
            next_guard: 1,
        }
    }

    pub fn map_end_offset(&self) -> i64 {
        self.map_end_offset
    }

    pub fn entry(&self, producer_id: i64) -> Option<&ProducerStateEntry> {
        self.producers.get(&producer_id)
    }

    /// Every producer with state, by producer id.
    pub fn active_producers(&self) -> Vec<&ProducerStateEntry> {
        let mut v: Vec<_> = self.producers.values().collect();
        v.sort_by_key(|e| e.producer_id);
        v
    }

    pub fn snapshot_offsets(&self) -> Vec<i64> {
        self.snapshots.iter().copied().collect()
    }

    /// Whether `producer_id` has a transaction open here at `epoch` (its later batches need no
    /// verification).
    pub fn has_ongoing_txn(&self, producer_id: i64, epoch: i16) -> bool {
        self.producers
            .get(&producer_id)
            .is_some_and(|e| e.current_txn_first_offset.is_some() && e.producer_epoch == epoch)
    }

    /// The guard a transactional produce of `producer_id` at `epoch` presents with its append
    /// (Kafka's `maybeStartTransactionVerification`): the sentinel when the producer already has
    /// a transaction open here (nothing to ask the coordinator), else its current guard, a new
    /// one if it has none at this epoch.
    pub fn maybe_start_verification(&mut self, producer_id: i64, epoch: i16) -> VerificationGuard {
        if self.has_ongoing_txn(producer_id, epoch) {
            return VerificationGuard::SENTINEL;
        }
        if let Some(v) = self.verifications.get(&producer_id) {
            if v.epoch == epoch {
                return v.guard;
            }
        }
        if self.verifications.len() >= MAX_PENDING_VERIFICATIONS
            && !self.verifications.contains_key(&producer_id)
        {
            // Guards grow: the smallest is the oldest.
            if let Some(oldest) = self
                .verifications
                .iter()
                .min_by_key(|(_, v)| v.guard.0)
                .map(|(&pid, _)| pid)
            {
                self.verifications.remove(&oldest);
            }
        }
        let guard = VerificationGuard(self.next_guard);
        self.next_guard += 1;
        self.verifications
            .insert(producer_id, VerificationState { guard, epoch });
        guard
    }

    /// How many producers wait for a verification.
    pub fn pending_verifications(&self) -> usize {
        self.verifications.len()
    }

    /// Checks a client's batch against the state (and the batches before it in the same
    /// request, in `pending`), and records it in `pending` if it is to be appended. Kafka's
    /// order: a duplicate of a remembered batch first, then the epoch, then the sequence.
    pub fn check_and_stage(
        &self,
        pending: &mut PendingProducerState,
        batch: &ProducerBatch,
    ) -> std::result::Result<ProducerCheck, ProducerError> {
        self.check_and_stage_from(pending, batch, AppendOrigin::Client)
    }

    /// [`Self::check_and_stage`] for a batch from `origin`: a coordinator's own transactional
    /// batches (TxnOffsetCommit's offsets, all at base sequence 0) are checked for
    /// their epoch and transaction state only, as Kafka checks duplicates and sequences only for
    /// client appends.
    pub fn check_and_stage_from(
        &self,
        pending: &mut PendingProducerState,
        batch: &ProducerBatch,
        origin: AppendOrigin,
    ) -> std::result::Result<ProducerCheck, ProducerError> {
        let pid = batch.producer_id;
        let epoch = batch.producer_epoch;
        let first_seq = batch.base_sequence;
        let client = origin == AppendOrigin::Client;
        let current = pending
            .entries
            .get(&pid)
            .or_else(|| self.producers.get(&pid));
        if let Some(e) = current.filter(|_| client) {
            if let Some(dup) = e.find_duplicate(epoch, first_seq, batch.last_sequence()) {
                return Ok(ProducerCheck::Duplicate(dup));
            }
        }
        let current_epoch = current.map_or(NO_PRODUCER_EPOCH, |e| e.producer_epoch);
        if !batch.is_transactional && current.is_some_and(|e| e.current_txn_first_offset.is_some())
        {
            return Err(ProducerError::InvalidTxnState { producer_id: pid });
        }
        if current_epoch != NO_PRODUCER_EPOCH && epoch < current_epoch {
            return Err(ProducerError::InvalidProducerEpoch {
                producer_id: pid,
                epoch,
                current: current_epoch,
            });
        }
        // KIP-890 part 1: a batch that opens a transaction needs the producer's guard.
        let opens_txn = batch.is_transactional
            && !current
                .is_some_and(|e| e.current_txn_first_offset.is_some() && e.producer_epoch == epoch);
        if let (true, Some(guard)) = (opens_txn, pending.verification) {
            let verified = self
                .verifications
                .get(&pid)
                .is_some_and(|v| v.epoch == epoch && v.guard == guard && !guard.is_sentinel());
            if !verified {
                return Err(ProducerError::NotVerified {
                    producer_id: pid,
                    epoch,
                });
            }
        }
        if !client {
            // No sequence to check.
        } else if epoch != current_epoch {
            // A new epoch starts its sequences at 0. A producer with no state at all (new, or
            // its batches gone with retention) is accepted at any sequence, as Kafka ≥ 2.5 does.
            if current_epoch != NO_PRODUCER_EPOCH && first_seq != 0 {
                return Err(ProducerError::OutOfOrderSequence {
                    producer_id: pid,
                    epoch,
                    found: first_seq,
                    expected: 0,
                });
            }
        } else {
            let last = current.map_or(NO_SEQUENCE, ProducerStateEntry::last_seq);
            // A known epoch with no batch here (a transactions v2 marker bumped it to this
            // epoch) starts at 0, as in Kafka's `checkSequence`; a producer with no state at all
            // is accepted at any sequence (above).
            let in_order = if last == NO_SEQUENCE {
                current_epoch == NO_PRODUCER_EPOCH || first_seq == 0
            } else {
                in_sequence(last, first_seq)
            };
            if !in_order {
                return Err(ProducerError::OutOfOrderSequence {
                    producer_id: pid,
                    epoch,
                    found: first_seq,
                    expected: increment_sequence(last, 1),
                });
            }
        }
        let mut entry = current
            .cloned()
            .unwrap_or_else(|| ProducerStateEntry::empty(pid));
        entry.add_batch(batch);
        pending.entries.insert(pid, entry);
        Ok(ProducerCheck::Append)
    }

    /// Applies what a successful append staged; the state now covers the log up to `end`.
    pub fn apply(&mut self, pending: PendingProducerState, end: i64) {
        for (pid, e) in pending.entries {
            if let Some(first) = e.current_txn_first_offset {
                self.ongoing_txns.insert(first, pid);
                // The transaction is open: its guard has served.
                self.verifications.remove(&pid);
            }
            self.producers.insert(pid, e);
        }
        self.map_end_offset = self.map_end_offset.max(end);
    }

    /// Records a batch as it is in the log, unchecked (replay, and a follower's appends: the
    /// leader has checked it). Not for control batches: see [`Self::complete_txn`].
    pub fn update(&mut self, batch: &ProducerBatch) {
        if batch.producer_id >= 0 {
            let e = self
                .producers
                .entry(batch.producer_id)
                .or_insert_with(|| ProducerStateEntry::empty(batch.producer_id));
            e.add_batch(batch);
            if let Some(first) = e.current_txn_first_offset {
                self.ongoing_txns.insert(first, batch.producer_id);
            }
        }
        self.map_end_offset = self.map_end_offset.max(batch.last_offset + 1);
    }

    /// Checks an end marker a coordinator is about to append for `producer_id` (Kafka's
    /// `appendEndTxnMarker` checks): not from an older producer epoch, nor an older coordinator.
    pub fn check_end_txn(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
    ) -> std::result::Result<(), ProducerError> {
        let Some(e) = self.producers.get(&producer_id) else {
            return Ok(());
        };
        if e.producer_epoch != NO_PRODUCER_EPOCH && producer_epoch < e.producer_epoch {
            return Err(ProducerError::ProducerFenced {
                producer_id,
                epoch: producer_epoch,
                current: e.producer_epoch,
            });
        }
        if e.coordinator_epoch > coordinator_epoch {
            return Err(ProducerError::CoordinatorFenced {
                producer_id,
                coordinator_epoch,
                current: e.coordinator_epoch,
            });
        }
        Ok(())
    }

    /// Records an end marker at `offset` (appended, or replayed): the producer's transaction, if
    /// any, is closed, and stays unstable until the high watermark passes the marker.
    pub fn complete_txn(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        marker: &EndTransactionMarker,
        offset: i64,
        timestamp: i64,
    ) -> CompletedTxn {
        let e = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerStateEntry::empty(producer_id));
        if producer_epoch > e.producer_epoch {
            e.producer_epoch = producer_epoch;
            e.batches.clear();
        }
        e.coordinator_epoch = marker.coordinator_epoch;
        e.last_timestamp = timestamp;
        // A request verified before this marker must not open a transaction after it.
        self.verifications.remove(&producer_id);
        let first_offset = e.current_txn_first_offset.take().unwrap_or(offset);
        self.ongoing_txns.remove(&first_offset);
        self.unreplicated_txns.insert(first_offset, offset);
        self.map_end_offset = self.map_end_offset.max(offset + 1);
        CompletedTxn {
            producer_id,
            first_offset,
            last_offset: offset,
            is_aborted: marker.control_type == ControlRecordType::Abort,
        }
    }

    /// The LSO a completed transaction leaves (what its `.txnindex` entry records): the first
    /// offset of the oldest transaction still open, else just past its marker (Kafka's
    /// `lastStableOffset(completedTxn)`).
    pub fn last_stable_offset_after(&self, txn: &CompletedTxn) -> i64 {
        self.ongoing_txns
            .iter()
            .find(|(_, &pid)| pid != txn.producer_id)
            .map_or(txn.last_offset + 1, |(&first, _)| first)
    }

    /// The high watermark moved: completed transactions whose marker is below it are stable.
    pub fn on_high_watermark_updated(&mut self, high_watermark: i64) {
        self.unreplicated_txns
            .retain(|_, &mut marker| marker >= high_watermark);
    }

    /// The first offset a read_committed consumer may not read yet: the oldest open or
    /// unreplicated transaction's first offset.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        let ongoing = self.ongoing_txns.keys().next().copied();
        let unreplicated = self.unreplicated_txns.keys().next().copied();
        match (ongoing, unreplicated) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Every open transaction: (first offset, producer id), oldest first.
    pub fn ongoing_txns(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.ongoing_txns.iter().map(|(&f, &p)| (f, p))
    }

    /// Moves the covered end over batches without producer ids.
    pub fn advance_to(&mut self, end: i64) {
        self.map_end_offset = self.map_end_offset.max(end);
    }

    /// Forgets producers idle for `expiration_ms` (Kafka's `removeExpiredProducers`).
    pub fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        // A producer with an open transaction is kept (Kafka: `isProducerExpired`).
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some()
                || now_ms.saturating_sub(e.last_timestamp) < expiration_ms
        });
        before - self.producers.len()
    }

    /// The log now starts at `log_start`: producers whose last batch is below it are forgotten,
    /// and snapshots below it deleted (Kafka's `truncateHead`), keeping the newest one.
    pub fn truncate_head(&mut self, log_start: i64) -> Result<()> {
        self.producers.retain(|_, e| e.last_offset() >= log_start);
        // Kafka's `removeEvictedOngoingTransactions` and `removeUnreplicatedTransactions`: a
        // completed transaction whose marker is above the new start stays unstable until the
        // high watermark passes its marker.
        let producers = &self.producers;
        self.ongoing_txns.retain(|_, pid| {
            producers
                .get(pid)
                .is_some_and(|e| e.current_txn_first_offset.is_some())
        });
        self.unreplicated_txns
            .retain(|_, &mut marker| marker >= log_start);
        let newest = self.snapshots.iter().next_back().copied();
        let old: Vec<i64> = self
            .snapshots
            .range(..log_start)
            .copied()
            .filter(|&o| Some(o) != newest)
            .collect();
        for o in old {
            self.delete_snapshot(o)?;
        }
        Ok(())
    }

    /// Forgets everything and deletes every snapshot (the log was emptied).
    pub fn truncate_fully(&mut self, start: i64) -> Result<()> {
        self.producers.clear();
        self.rebuild_txn_maps();
        for o in self.snapshot_offsets() {
            self.delete_snapshot(o)?;
        }
        self.map_end_offset = start;
        Ok(())
    }

    /// Writes the state as a snapshot at the offset it covers. Not fsynced: a snapshot is a
    /// shortcut over the log, and a lost or torn one (its CRC fails) only means a longer replay.
    pub fn take_snapshot(&mut self) -> Result<()> {
        let offset = self.map_end_offset;
        let path = self.snapshot_path(offset);
        let bytes = encode_snapshot(self.producers.values());
        let tmp = path.with_extension("snapshot.tmp");
        let f = self.fs.open(&tmp, true).at(&tmp)?;
        f.set_len(0).at(&tmp)?;
        f.write_all_at(&[&bytes], 0).at(&tmp)?;
        drop(f);
        self.fs.rename(&tmp, &path).at(&path)?;
        self.snapshots.insert(offset);
        Ok(())
    }

    /// Drops the state and the snapshots above `offset`, then loads the newest snapshot at or
    /// below it (a corrupt one is deleted and the next older tried). Returns the offset the
    /// loaded state covers (the log start if none): the caller replays the log from there up to
    /// `offset`.
    pub fn reload(&mut self, log_start: i64, offset: i64) -> Result<i64> {
        self.producers.clear();
        self.rebuild_txn_maps();
        let above: Vec<i64> = self.snapshots.range(offset + 1..).copied().collect();
        for o in above {
            self.delete_snapshot(o)?;
        }
        while let Some(&o) = self.snapshots.iter().next_back() {
            let path = self.snapshot_path(o);
            let loaded = self
                .fs
                .read(&path)
                .at(&path)
                .and_then(|b| decode_snapshot(&path, &b));
            match loaded {
                Ok(entries) if o >= log_start => {
                    for e in entries {
                        if e.last_offset() >= log_start {
                            self.producers.insert(e.producer_id, e);
                        }
                    }
                    self.rebuild_txn_maps();
                    self.map_end_offset = o;
                    return Ok(o);
                }
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "deleting an unreadable producer snapshot");
                    self.delete_snapshot(o)?;
                }
            }
        }
        self.map_end_offset = log_start;
        Ok(log_start)
    }

    /// The open transactions as the producers' entries say; unreplicated ones forgotten (after
    /// a reload everything below the log end is as replicated as the log start allows).
    fn rebuild_txn_maps(&mut self) {
        self.unreplicated_txns.clear();
        self.verifications.clear();
        self.ongoing_txns = self
            .producers
            .values()
            .filter_map(|e| Some((e.current_txn_first_offset?, e.producer_id)))
            .collect();
    }

    fn snapshot_path(&self, offset: i64) -> PathBuf {
        self.dir.join(file_name(offset, SNAPSHOT_SUFFIX))
    }

    fn delete_snapshot(&mut self, offset: i64) -> Result<()> {
        let path = self.snapshot_path(offset);
        if self.fs.exists(&path) {
            self.fs.remove_file(&path).at(&path)?;
        }
        self.snapshots.remove(&offset);
        Ok(())
    }
}

/// Kafka's producer snapshot: version, CRC-32C of everything after the CRC field, then for each
/// producer its last batch.
fn encode_snapshot<'a>(entries: impl Iterator<Item = &'a ProducerStateEntry>) -> Vec<u8> {
    let entries: Vec<&ProducerStateEntry> = entries.filter(|e| !e.batches.is_empty()).collect();
    let mut out = Vec::with_capacity(SNAPSHOT_HEADER + 4 + entries.len() * SNAPSHOT_ENTRY);
    out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(entries.len() as i32).to_be_bytes());
    for e in entries {
        let last = e.batches.back().expect("invariant: filtered non-empty");
        out.extend_from_slice(&e.producer_id.to_be_bytes());
        out.extend_from_slice(&e.producer_epoch.to_be_bytes());
        out.extend_from_slice(&last.last_seq.to_be_bytes());
        out.extend_from_slice(&last.last_offset.to_be_bytes());
        out.extend_from_slice(&last.offset_delta.to_be_bytes());
        out.extend_from_slice(&e.last_timestamp.to_be_bytes());
        out.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
        out.extend_from_slice(&e.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
    }
    let crc = crc32c(&[&out[SNAPSHOT_HEADER..]]);
    out[2..SNAPSHOT_HEADER].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Reads a producer snapshot's bytes (`path` names the file in errors): its version, CRC and
/// entries; a corrupt one is an error (the tools' `dump-log` prints them).
pub fn decode_snapshot(path: &Path, b: &[u8]) -> Result<Vec<ProducerStateEntry>> {
    let corrupt = |what: String| StorageError::CorruptFile {
        path: path.to_path_buf(),
        what,
    };
    if b.len() < SNAPSHOT_HEADER + 4 {
        return Err(corrupt(format!(
            "snapshot of {} bytes is too short",
            b.len()
        )));
    }
    let version = i16::from_be_bytes([b[0], b[1]]);
    if version != SNAPSHOT_VERSION {
        return Err(corrupt(format!("unknown snapshot version {version}")));
    }
    let crc = u32::from_be_bytes([b[2], b[3], b[4], b[5]]);
    let computed = crc32c(&[&b[SNAPSHOT_HEADER..]]);
    if crc != computed {
        return Err(corrupt(format!(
            "snapshot CRC {crc:#x} does not match its contents ({computed:#x})"
        )));
    }
    let n = i32::from_be_bytes([b[6], b[7], b[8], b[9]]);
    let body = &b[SNAPSHOT_HEADER + 4..];
    if n < 0 || body.len() != n as usize * SNAPSHOT_ENTRY {
        return Err(corrupt(format!(
            "{n} entries do not fit {} bytes",
            body.len()
        )));
    }
    let mut out = Vec::with_capacity(n as usize);
    for c in body.chunks_exact(SNAPSHOT_ENTRY) {
        let i64_at = |i: usize| i64::from_be_bytes(c[i..i + 8].try_into().expect("8 bytes"));
        let i32_at = |i: usize| i32::from_be_bytes(c[i..i + 4].try_into().expect("4 bytes"));
        let producer_id = i64_at(0);
        let producer_epoch = i16::from_be_bytes([c[8], c[9]]);
        let last_seq = i32_at(10);
        let last_offset = i64_at(14);
        let offset_delta = i32_at(22);
        let timestamp = i64_at(26);
        let coordinator_epoch = i32_at(34);
        let current_txn_first_offset = i64_at(38);
        let mut entry = ProducerStateEntry::empty(producer_id);
        entry.current_txn_first_offset =
            (current_txn_first_offset >= 0).then_some(current_txn_first_offset);
        entry.producer_epoch = producer_epoch;
        entry.coordinator_epoch = coordinator_epoch;
        entry.last_timestamp = timestamp;
        entry.batches.push_back(BatchMetadata {
            last_seq,
            last_offset,
            offset_delta,
            timestamp,
        });
        out.push(entry);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::SimFs;

    fn batch(pid: i64, epoch: i16, seq: i32, first: i64, count: i64) -> ProducerBatch {
        ProducerBatch {
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            first_offset: first,
            last_offset: first + count - 1,
            max_timestamp: 1000 + first,
            is_transactional: false,
        }
    }

    fn manager() -> (Arc<SimFs>, ProducerStateManager) {
        let fs = Arc::new(SimFs::new());
        let dir = Path::new("/d/t-0");
        fs.create_dir_all(dir).unwrap();
        let m = ProducerStateManager::new(fs.clone(), dir).unwrap();
        (fs, m)
    }

    fn append(
        m: &mut ProducerStateManager,
        b: ProducerBatch,
    ) -> std::result::Result<ProducerCheck, ProducerError> {
        let mut p = PendingProducerState::default();
        let r = m.check_and_stage(&mut p, &b)?;
        m.apply(p, b.last_offset + 1);
        Ok(r)
    }

    #[test]
    fn sequences_wrap() {
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(decrement_sequence(1, 3), i32::MAX - 1);
        assert_eq!(decrement_sequence(5, 2), 3);
        assert!(in_sequence(i32::MAX, 0));
    }

    #[test]
    fn duplicates_of_the_last_five_batches_get_their_offsets_back() {
        let (_fs, mut m) = manager();
        for i in 0..7 {
            assert_eq!(
                append(&mut m, batch(7, 0, i * 10, i as i64 * 10, 10)),
                Ok(ProducerCheck::Append)
            );
        }
        // Batches 2..=6 are remembered; 0 and 1 are not.
        let dup = append(&mut m, batch(7, 0, 30, 999, 10)).unwrap();
        match dup {
            ProducerCheck::Duplicate(d) => {
                assert_eq!((d.first_offset(), d.last_offset), (30, 39));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            append(&mut m, batch(7, 0, 0, 999, 10)),
            Err(ProducerError::OutOfOrderSequence {
                producer_id: 7,
                epoch: 0,
                found: 0,
                expected: 70
            })
        );
        // A gap.
        assert!(matches!(
            append(&mut m, batch(7, 0, 80, 70, 10)),
            Err(ProducerError::OutOfOrderSequence { expected: 70, .. })
        ));
        // In order.
        assert_eq!(
            append(&mut m, batch(7, 0, 70, 70, 10)),
            Ok(ProducerCheck::Append)
        );
    }

    #[test]
    fn epochs_fence_and_restart_sequences() {
        let (_fs, mut m) = manager();
        append(&mut m, batch(1, 3, 0, 0, 5)).unwrap();
        assert!(matches!(
            append(&mut m, batch(1, 2, 5, 5, 1)),
            Err(ProducerError::InvalidProducerEpoch { current: 3, .. })
        ));
        // A new epoch must start at 0.
        assert!(matches!(
            append(&mut m, batch(1, 4, 5, 5, 1)),
            Err(ProducerError::OutOfOrderSequence { expected: 0, .. })
        ));
        assert_eq!(
            append(&mut m, batch(1, 4, 0, 5, 1)),
            Ok(ProducerCheck::Append)
        );
        assert_eq!(m.entry(1).unwrap().batches.len(), 1);
        // An unknown producer is accepted at any sequence (its state may have expired).
        assert_eq!(
            append(&mut m, batch(2, 0, 42, 6, 1)),
            Ok(ProducerCheck::Append)
        );
    }

    #[test]
    fn batches_in_one_request_are_checked_against_each_other() {
        let (_fs, mut m) = manager();
        let mut p = PendingProducerState::default();
        assert_eq!(
            m.check_and_stage(&mut p, &batch(1, 0, 0, 0, 2)),
            Ok(ProducerCheck::Append)
        );
        assert!(m.check_and_stage(&mut p, &batch(1, 0, 5, 2, 2)).is_err());
        assert_eq!(
            m.check_and_stage(&mut p, &batch(1, 0, 2, 2, 2)),
            Ok(ProducerCheck::Append)
        );
        // Nothing applied yet.
        assert!(m.entry(1).is_none());
        m.apply(p, 4);
        assert_eq!(m.entry(1).unwrap().last_seq(), 3);
        assert_eq!(m.map_end_offset(), 4);
    }

    #[test]
    fn snapshots_round_trip_and_reload_picks_the_newest_below() {
        let (fs, mut m) = manager();
        append(&mut m, batch(1, 0, 0, 0, 3)).unwrap();
        append(&mut m, batch(2, 5, 100, 3, 2)).unwrap();
        m.take_snapshot().unwrap();
        append(&mut m, batch(1, 0, 3, 5, 1)).unwrap();
        m.take_snapshot().unwrap();
        assert_eq!(m.snapshot_offsets(), vec![5, 6]);
        assert!(fs.exists(Path::new("/d/t-0/00000000000000000005.snapshot")));

        let mut again = ProducerStateManager::new(fs.clone(), Path::new("/d/t-0")).unwrap();
        assert_eq!(again.reload(0, 100).unwrap(), 6);
        assert_eq!(again.entry(1).unwrap().last_seq(), 3);
        assert_eq!(again.entry(2).unwrap().producer_epoch, 5);
        // A duplicate of the newest batch is still found after the reload.
        let mut p = PendingProducerState::default();
        assert!(matches!(
            again.check_and_stage(&mut p, &batch(1, 0, 3, 77, 1)),
            Ok(ProducerCheck::Duplicate(b)) if b.last_offset == 5
        ));
        // A truncation to 5 drops the snapshot at 6 and loads the one at 5.
        assert_eq!(again.reload(0, 5).unwrap(), 5);
        assert_eq!(again.snapshot_offsets(), vec![5]);
        assert_eq!(again.entry(1).unwrap().last_seq(), 2);
        // Producers entirely below the log start are not loaded.
        assert_eq!(again.reload(4, 5).unwrap(), 5);
        assert!(again.entry(1).is_none());
        assert!(again.entry(2).is_some());
    }

    #[test]
    fn a_corrupt_snapshot_is_deleted_and_an_older_one_used() {
        let (fs, mut m) = manager();
        append(&mut m, batch(1, 0, 0, 0, 3)).unwrap();
        m.take_snapshot().unwrap();
        append(&mut m, batch(1, 0, 3, 3, 3)).unwrap();
        m.take_snapshot().unwrap();
        let newest = Path::new("/d/t-0/00000000000000000006.snapshot");
        let mut bytes = fs.contents(newest).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs.overwrite(newest, &bytes);
        let mut again = ProducerStateManager::new(fs.clone(), Path::new("/d/t-0")).unwrap();
        assert_eq!(again.reload(0, 6).unwrap(), 3);
        assert!(!fs.exists(newest));
        assert_eq!(again.entry(1).unwrap().last_seq(), 2);
    }

    #[test]
    fn snapshot_bytes_are_kafkas() {
        // One producer: id 1, epoch 2, last batch sequences 0..=9 at offsets 90..=99, timestamp 7.
        let mut e = ProducerStateEntry::empty(1);
        e.add(
            2,
            BatchMetadata {
                last_seq: 9,
                last_offset: 99,
                offset_delta: 9,
                timestamp: 7,
            },
        );
        let b = encode_snapshot([e].iter());
        let mut want = vec![0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        want.extend_from_slice(&1i64.to_be_bytes());
        want.extend_from_slice(&2i16.to_be_bytes());
        want.extend_from_slice(&9i32.to_be_bytes());
        want.extend_from_slice(&99i64.to_be_bytes());
        want.extend_from_slice(&9i32.to_be_bytes());
        want.extend_from_slice(&7i64.to_be_bytes());
        want.extend_from_slice(&(-1i32).to_be_bytes());
        want.extend_from_slice(&(-1i64).to_be_bytes());
        let crc = crc32c::crc32c(&want[6..]);
        want[2..6].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(b, want);
    }

    #[test]
    fn expiry_and_head_truncation_forget_producers() {
        let (_fs, mut m) = manager();
        append(&mut m, batch(1, 0, 0, 0, 3)).unwrap(); // timestamp 1002
        append(&mut m, batch(2, 0, 0, 3, 3)).unwrap(); // timestamp 1005
        m.take_snapshot().unwrap();
        append(&mut m, batch(2, 0, 3, 6, 1)).unwrap();
        m.take_snapshot().unwrap();
        assert_eq!(m.remove_expired(1004 + 100, 100), 1);
        assert!(m.entry(1).is_none());
        m.truncate_head(7).unwrap();
        assert!(m.entry(2).is_none());
        assert_eq!(m.snapshot_offsets(), vec![7]);
    }
}
