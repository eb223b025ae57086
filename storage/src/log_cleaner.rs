//! `LogCleaner`: log compaction for logs whose `cleanup.policy` includes `compact` (Kafka's
//! `LogCleaner` and `Cleaner`).
//!
//! One pass over a log ([`LogCleaner::clean_log`]):
//!
//! 1. **What may be cleaned.** Only whole non-active segments below the *first uncleanable
//!    offset*: the smallest of the active segment's base, the high watermark, the first
//!    unstable offset (an open or unreplicated transaction's first offset), and the base of
//!    the first segment whose newest record is younger than `min.compaction.lag.ms`. The
//!    *dirty* part starts at the cleaner checkpoint (`cleaner-offset-checkpoint` at the top of
//!    the log directory, the format of every offset checkpoint), or the log start.
//! 2. **Whether to clean.** Dirty bytes / cleanable bytes ≥ `min.cleanable.dirty.ratio`, or a
//!    dirty segment older than `max.compaction.lag.ms` (its newest record, where Kafka takes its
//!    first: we only know segments' largest timestamps without reading them), or tombstones
//!    kept by an earlier clean whose delete horizon has passed.
//! 3. **The offset map.** Key → latest offset over the dirty records ([`OffsetMap`]): a
//!    `HashMap` of the keys themselves, not Kafka's MD5-digest `SkimpyOffsetMap`, so no two keys
//!    can collide; bounded by `log.cleaner.dedupe.buffer.size` (keys plus an estimated entry
//!    overhead), stopping at a segment boundary when full as Kafka does (at least one segment is
//!    always mapped).
//! 4. **Rewrite.** The segments from the log start to the end of the mapped part, grouped so a
//!    group's source bytes fit `segment.bytes` (and its offsets a 32-bit index), each group into
//!    one `<base>.log.cleaned` with its indexes built as it is appended. A record is kept unless
//!    the map holds a later offset for its key, or it is a tombstone (null value) in a batch
//!    whose delete horizon has passed. Records without a key are kept (the broker should refuse
//!    them on compacted topics at produce time, as Kafka does; the cleaner does not drop what it
//!    cannot key). Transactions as Kafka's `CleanedTransactionMetadata` handles them, from
//!    the aborted transactions the `.txnindex` files list: records of an aborted transaction
//!    never enter the map and are removed; its ABORT marker stays (and its `.txnindex` entry
//!    goes to the cleaned segment's index) while a clean still finds its data, and once none
//!    does, the marker is stamped with a delete horizon (`now + delete.retention.ms`, KIP-534)
//!    and removed by a clean after it, index entry and all. A COMMIT marker likewise goes once
//!    no clean finds a batch of its transaction before it. Unlike Kafka (which tracks this per
//!    group of segments) one clean tracks it over all the groups it rewrites, so a marker stays
//!    while any earlier batch of its transaction does. A log with more than
//!    [`MAX_ABORTED_TXNS_PER_CLEAN`] aborted transactions is not cleaned (logged).
//! 5. **Batches.** A batch keeping every record, needing no delete horizon, is copied byte for
//!    byte. Otherwise its kept records are re-encoded and recompressed with the batch's codec;
//!    base offset, last offset delta, producer fields and leader epoch stay (Kafka's
//!    `overrideLastOffset`), so offsets keep their holes but never move. A batch keeping nothing
//!    vanishes — except the last batch of each group, which stays as an empty batch (header
//!    only), so that every cleaned segment still ends where its source ended: recovery takes a
//!    segment ending below the next one's base for a lost tail — and the last batch of each
//!    active idempotent producer, kept empty as Kafka keeps it, so that the producer's state
//!    (sequence, epoch) can still be rebuilt from the log when no snapshot covers it.
//! 6. **Tombstones** use KIP-534's delete horizon rather than segment modification times: the
//!    first clean that keeps a tombstone stamps its batch with `now + delete.retention.ms` in
//!    baseTimestamp and sets attribute bit 6 (record timestamp deltas are re-based onto it, so
//!    record timestamps do not change); a clean after that horizon drops the tombstone.
//! 7. **Swap** ([`UnifiedLog::replace_segments`]) under the log's lock, taken only for it: the
//!    cleaned files are fsynced, renamed `.cleaned` → `.swap`, the replaced segments renamed
//!    `.deleted` (removed after `file.delete.delay.ms`; a reader's open file keeps working),
//!    then `.swap` → final names, the `.log` first. A clean is abandoned if the log was truncated
//!    or any of its segments changed while it was reading without the lock.
//!
//! Crash recovery ([`complete_interrupted_swaps`], which [`crate::log_loader`] runs when a log is
//! opened, and which this module re-exports): `.cleaned` files
//! are deleted (a clean that had not started swapping); a `<base>.log.swap` is completed — the
//! segments whose base lies in `[base, swap's next offset)` are deleted and the swap files take
//! their final names — and an index `.swap` left without its log (the log already renamed) takes
//! its final name.
//!
//! Not done: Kafka keeps the last batch of every producer still active so that producer state
//! can be rebuilt from the log; here a batch whose records are all superseded goes, so an
//! idempotent producer's state may have to come from its snapshot rather than a log replay.
//!
//! Faults: a log whose clean fails is marked uncleanable ([`LogCleaner::mark_uncleanable`]) by
//! the pass over all logs ([`crate::LogManager::clean_logs`]) and skipped from then on, so that
//! one bad batch never stops the compaction of every other partition.
//!
//! Thread-safety: a `LogCleaner` is used by one thread at a time (`&mut self`); it takes a log's
//! lock only to list its segments and to swap.

use crate::checkpoint::TopicPartition;
use crate::compression;
use crate::error::{IoContext, Result, StorageError};
use crate::fs::FileSystem;
pub use crate::log_loader::complete_interrupted_swaps;
use crate::log_segment::{BatchToAppend, LogSegment, NO_TIMESTAMP};
pub use crate::log_segment::{CLEANED_SUFFIX, SWAP_SUFFIX};
use crate::segment_batches::SegmentBatches;
use crate::shared_log::{lock_log, SharedLog};
use crate::transaction_index::AbortedTxn;
pub use crate::unified_log::cleaning::{
    CleanableView, InactiveSegment, MAX_ABORTED_TXNS_PER_CLEAN,
};
use crate::unified_log::read::records_of;
use crate::unified_log::UnifiedLog;
use bytes::Bytes;
use rafka_protocol::control_record::{ControlRecordType, EndTransactionMarker};
use rafka_protocol::record::Record;
use rafka_protocol::record_batch::{
    crc32c, RecordBatch, TimestampType, ATTRIBUTES_OFFSET, BASE_TIMESTAMP_OFFSET,
    COMPRESSION_CODEC_MASK, CRC_OFFSET, DELETE_HORIZON_FLAG_MASK, LENGTH_OFFSET, LOG_OVERHEAD,
    MAX_TIMESTAMP_OFFSET, RECORDS_COUNT_OFFSET, RECORD_BATCH_OVERHEAD,
};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};

/// The cleaner checkpoint at the top of a log directory: per partition, the first offset not
/// yet cleaned.
pub const CLEANER_OFFSET_CHECKPOINT: &str = "cleaner-offset-checkpoint";
/// Kafka's `log.cleaner.dedupe.buffer.size` default.
pub const DEFAULT_DEDUPE_BUFFER_SIZE: usize = 128 << 20;

/// What one map entry costs beyond its key's bytes (hash table slot, box, offset).
const ENTRY_OVERHEAD: usize = 48;
/// How many output bytes are gathered before an append to the cleaned segment.
const WRITE_CHUNK: usize = 1 << 20;

/// Kafka's `CleanedTransactionMetadata`: which transactions a pass over batches in offset order
/// is inside, to drop aborted data and tell which markers may go.
#[derive(Debug)]
struct TxnTracker {
    /// Aborted transactions not reached yet, by first offset (next last).
    upcoming: Vec<AbortedTxn>,
    /// Aborted transactions reached whose marker has not been read: producer id → the
    /// transaction and whether a batch of it was read.
    ongoing_aborted: HashMap<i64, (AbortedTxn, bool)>,
    /// Producers with a batch of a (not aborted) transaction read and its marker not yet.
    ongoing_committed: HashSet<i64>,
}

impl TxnTracker {
    /// A tracker for a pass from `from`: only transactions ending at or after it matter.
    fn new(aborted: &[AbortedTxn], from: i64) -> TxnTracker {
        let mut upcoming: Vec<AbortedTxn> = aborted
            .iter()
            .filter(|t| t.last_offset >= from)
            .copied()
            .collect();
        upcoming.sort_by_key(|t| std::cmp::Reverse(t.first_offset));
        TxnTracker {
            upcoming,
            ongoing_aborted: HashMap::new(),
            ongoing_committed: HashSet::new(),
        }
    }

    fn reach(&mut self, offset: i64) {
        while self
            .upcoming
            .last()
            .is_some_and(|t| t.first_offset <= offset)
        {
            if let Some(t) = self.upcoming.pop() {
                self.ongoing_aborted.insert(t.producer_id, (t, false));
            }
        }
    }

    /// A data batch: whether it belongs to an aborted transaction.
    fn on_batch(&mut self, batch: &RecordBatch) -> bool {
        self.reach(batch.last_offset());
        if !batch.is_transactional() {
            return false;
        }
        match self.ongoing_aborted.get_mut(&batch.producer_id()) {
            Some((_, seen)) => {
                *seen = true;
                true
            }
            None => {
                self.ongoing_committed.insert(batch.producer_id());
                false
            }
        }
    }

    /// A control batch: whether it may go (its transaction has no data left in this pass), and
    /// the `.txnindex` entry to keep for an ABORT marker that stays.
    fn on_control(&mut self, batch: &RecordBatch) -> (bool, Option<AbortedTxn>) {
        self.reach(batch.last_offset());
        let pid = batch.producer_id();
        if batch.record_count() == 0 {
            // An emptied control batch: nothing left to keep.
            return (true, None);
        }
        match EndTransactionMarker::parse(batch) {
            Ok(Some(m)) if m.control_type == ControlRecordType::Abort => {
                match self.ongoing_aborted.remove(&pid) {
                    Some((t, true)) => (false, Some(t)),
                    _ => (true, None),
                }
            }
            Ok(Some(_)) => (!self.ongoing_committed.remove(&pid), None),
            // Another control type, or one we cannot read: kept.
            _ => (false, None),
        }
    }
}

/// Key → the latest offset of a record with that key in the dirty part of a log.
#[derive(Debug)]
pub struct OffsetMap {
    map: HashMap<Box<[u8]>, i64>,
    bytes: usize,
    capacity_bytes: usize,
}

impl OffsetMap {
    pub fn new(capacity_bytes: usize) -> OffsetMap {
        OffsetMap {
            map: HashMap::new(),
            bytes: 0,
            capacity_bytes,
        }
    }

    /// Records `offset` for `key` (keeping the larger if the key is there).
    pub fn put(&mut self, key: &[u8], offset: i64) {
        if let Some(o) = self.map.get_mut(key) {
            *o = (*o).max(offset);
        } else {
            self.map.insert(key.into(), offset);
            self.bytes += key.len() + ENTRY_OVERHEAD;
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<i64> {
        self.map.get(key).copied()
    }

    /// Whether the map holds its capacity's worth (it is never refused a put).
    pub fn is_full(&self) -> bool {
        self.bytes >= self.capacity_bytes
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// What a clean did, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanStats {
    pub segments_cleaned: usize,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_read: u64,
    pub records_kept: u64,
    pub tombstones_dropped: u64,
}

/// The cleaner: its checkpoint per partition is on disk; in memory only when each log's kept
/// tombstones are due to go, so that their log is cleaned again then whatever its dirty ratio.
#[derive(Debug)]
pub struct LogCleaner {
    fs: Arc<dyn FileSystem>,
    dedupe_buffer_size: usize,
    tombstone_horizons: HashMap<TopicPartition, i64>,
    /// Kafka's `uncleanablePartitions`: logs whose clean failed, never tried again. Held as a
    /// `Weak` of the very log, so that a partition deleted and re-created under the same name (a
    /// new log) is cleaned again, and the allocation it points to cannot be reused meanwhile.
    uncleanable: HashMap<TopicPartition, Weak<Mutex<UnifiedLog>>>,
}

impl LogCleaner {
    pub fn new(fs: Arc<dyn FileSystem>, dedupe_buffer_size: usize) -> LogCleaner {
        LogCleaner {
            fs,
            dedupe_buffer_size,
            tombstone_horizons: HashMap::new(),
            uncleanable: HashMap::new(),
        }
    }

    /// Sets `log` aside: no later pass cleans it (see [`LogCleaner::is_uncleanable`]).
    pub fn mark_uncleanable(&mut self, tp: &TopicPartition, log: &SharedLog) {
        self.tombstone_horizons.remove(tp);
        self.uncleanable.insert(tp.clone(), Arc::downgrade(log));
    }

    /// Whether `log` (this very log, not another of the same name) was set aside.
    pub fn is_uncleanable(&self, tp: &TopicPartition, log: &SharedLog) -> bool {
        self.uncleanable
            .get(tp)
            .is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(log)))
    }

    /// Keeps only the marks `keep` accepts (given the partition and its marked log, still alive).
    pub fn retain_uncleanable(&mut self, keep: impl Fn(&TopicPartition, &SharedLog) -> bool) {
        self.uncleanable
            .retain(|tp, w| w.upgrade().is_some_and(|log| keep(tp, &log)));
    }

    pub fn uncleanable_partitions(&self) -> Vec<TopicPartition> {
        let mut v: Vec<TopicPartition> = self.uncleanable.keys().cloned().collect();
        v.sort();
        v
    }

    pub fn set_dedupe_buffer_size(&mut self, bytes: usize) {
        self.dedupe_buffer_size = bytes;
    }

    /// Cleans `log` if it is compacted and due. `first_dirty` is its cleaner checkpoint (if
    /// any). Returns the new checkpoint and what was done, or `None` if nothing was cleaned
    /// (not compacted, not due, or abandoned because the log changed meanwhile).
    pub fn clean_log(
        &mut self,
        tp: &TopicPartition,
        log: &SharedLog,
        first_dirty: Option<i64>,
        now_ms: i64,
    ) -> Result<Option<(i64, CleanStats)>> {
        let view = {
            let mut log = lock_log(log);
            // Checked before the view: building it opens every closed segment's file, which a
            // pass over every log of a node must not do for logs it will not clean.
            if !log.config().cleanup_policy.compact {
                drop(log);
                self.tombstone_horizons.remove(tp);
                return Ok(None);
            }
            log.cleanable_view()?
        };
        if !view.config.cleanup_policy.compact {
            self.tombstone_horizons.remove(tp);
            return Ok(None);
        }
        let horizon_due = self
            .tombstone_horizons
            .get(tp)
            .is_some_and(|&h| h <= now_ms);
        let Some(plan) = plan_clean(&view, first_dirty, now_ms, horizon_due) else {
            return Ok(None);
        };
        let Some(aborted) = view.aborted_txns.as_deref() else {
            tracing::warn!(topic = %tp.topic, partition = tp.partition, max = MAX_ABORTED_TXNS_PER_CLEAN, "too many aborted transactions to clean the log");
            return Ok(None);
        };
        let mut map_txns = TxnTracker::new(aborted, plan.first_dirty);
        let mut stats = CleanStats::default();
        let mut map = OffsetMap::new(self.dedupe_buffer_size);
        let mut clean_end = plan.first_dirty;
        for seg in &view.segments[..plan.cleanable] {
            if seg.end_offset <= plan.first_dirty {
                continue;
            }
            if clean_end > plan.first_dirty && map.is_full() {
                break; // the map is full: clean up to here, the rest next time
            }
            map_segment(&view, seg, plan.first_dirty, &mut map, &mut map_txns)?;
            clean_end = seg.end_offset;
        }
        let to_clean: Vec<&InactiveSegment> = view.segments[..plan.cleanable]
            .iter()
            .filter(|s| s.end_offset <= clean_end.max(plan.first_dirty))
            .collect();
        let retention = Retention {
            map: &map,
            now_ms,
            delete_retention_ms: view.config.delete_retention_ms,
            decompression_limit: view.config.max_message_bytes.max(1 << 20) * 64,
            dir: &view.dir,
        };
        let mut next_horizon: Option<i64> = None;
        let mut txns = TxnTracker::new(aborted, view.log_start_offset);
        for group in group_by_size(&to_clean, view.config.segment_bytes) {
            let Some(cleaned) = self.clean_group(
                &view,
                group,
                &retention,
                &mut txns,
                &mut stats,
                &mut next_horizon,
            )?
            else {
                continue;
            };
            let old: Vec<(i64, u64)> = group.iter().map(|s| (s.base_offset, s.size)).collect();
            if !lock_log(log).replace_segments(cleaned, &old, view.truncations, now_ms)? {
                tracing::info!(topic = %tp.topic, partition = tp.partition, "log changed during cleaning: clean abandoned");
                return Ok(None);
            }
            stats.segments_cleaned += group.len();
        }
        match next_horizon {
            Some(h) => self.tombstone_horizons.insert(tp.clone(), h),
            None => self.tombstone_horizons.remove(tp),
        };
        let checkpoint = clean_end.max(plan.first_dirty);
        tracing::info!(
            topic = %tp.topic,
            partition = tp.partition,
            offset = checkpoint,
            segments = stats.segments_cleaned,
            bytes_read = stats.bytes_read,
            bytes_written = stats.bytes_written,
            records_kept = stats.records_kept,
            records_read = stats.records_read,
            "cleaned log"
        );
        Ok(Some((checkpoint, stats)))
    }

    /// Writes one group of segments into a `.cleaned` segment, fsynced; `None` if cleaning
    /// changes nothing in it (its files are then removed).
    fn clean_group(
        &self,
        view: &CleanableView,
        group: &[&InactiveSegment],
        retention: &Retention<'_>,
        txns: &mut TxnTracker,
        stats: &mut CleanStats,
        next_horizon: &mut Option<i64>,
    ) -> Result<Option<LogSegment>> {
        let first = group[0].base_offset;
        let mut out = LogSegment::create_with_suffix(
            self.fs.clone(),
            &view.dir,
            first,
            view.config.index_interval_bytes,
            view.config.segment_index_bytes,
            retention.now_ms,
            CLEANED_SUFFIX,
        )?;
        let result = (|| {
            let mut changed = group.len() > 1;
            let mut pending = Pending::default();
            let mut last_dropped: Option<RecordBatch> = None;
            for seg in group {
                let mut batches = SegmentBatches::of_file(seg.file.clone(), seg.size);
                while let Some(batch) = batches.next_batch()? {
                    stats.bytes_read += batch.size_in_bytes() as u64;
                    let filtered = if batch.is_control() {
                        let (may_go, keep_entry) = txns.on_control(&batch);
                        if let Some(t) = keep_entry {
                            out.txn_index().append(&t)?;
                            // The source index had it too: only a changed batch marks the group.
                        }
                        filter_marker(&batch, may_go, retention, next_horizon)?
                    } else if txns.on_batch(&batch) {
                        // Aborted: none of its records stay.
                        stats.records_read += u64::try_from(batch.record_count()).unwrap_or(0);
                        Filtered::Dropped
                    } else {
                        filter_batch(&batch, retention, stats, next_horizon)?
                    };
                    let bytes = match filtered {
                        Filtered::Unchanged => batch.as_bytes().clone(),
                        Filtered::Rewritten(b) => {
                            changed = true;
                            Bytes::from(b)
                        }
                        Filtered::Dropped
                            if batch.has_producer_id()
                                && view.producer_last_offsets.get(&batch.producer_id())
                                    == Some(&batch.last_offset()) =>
                        {
                            if batch.record_count() != 0 {
                                changed = true;
                            }
                            Bytes::from(empty_batch(&batch))
                        }
                        Filtered::Dropped => {
                            // An empty batch already (a group's last, kept so by an earlier
                            // clean) changes nothing if it stays last.
                            if batch.record_count() != 0 || last_dropped.is_some() {
                                changed = true;
                            }
                            last_dropped = Some(batch);
                            continue;
                        }
                    };
                    if last_dropped.take().is_some() {
                        changed = true;
                    }
                    pending.push(bytes, &mut out, stats)?;
                }
            }
            if let Some(b) = last_dropped {
                // The group's offsets end where its source ended (see the module's step 5).
                pending.push(Bytes::from(empty_batch(&b)), &mut out, stats)?;
            }
            pending.flush(&mut out, stats)?;
            if !changed {
                return Ok(false);
            }
            out.on_become_inactive()?;
            out.flush()?;
            Ok(true)
        })();
        match result {
            Ok(true) => Ok(Some(out)),
            Ok(false) => {
                out.delete_files()?;
                Ok(None)
            }
            Err(e) => {
                let _ = out.delete_files();
                Err(e)
            }
        }
    }
}

/// Batches gathered for one append to the cleaned segment.
#[derive(Default)]
struct Pending {
    batches: Vec<Bytes>,
    bytes: usize,
}

impl Pending {
    fn push(&mut self, b: Bytes, out: &mut LogSegment, stats: &mut CleanStats) -> Result<()> {
        self.bytes += b.len();
        self.batches.push(b);
        if self.bytes >= WRITE_CHUNK {
            self.flush(out, stats)?;
        }
        Ok(())
    }

    fn flush(&mut self, out: &mut LogSegment, stats: &mut CleanStats) -> Result<()> {
        let mut to_append = Vec::with_capacity(self.batches.len());
        for b in &self.batches {
            let batch = RecordBatch::parse(b.clone()).map_err(|e| StorageError::CorruptFile {
                path: out.log_path().to_path_buf(),
                what: e.to_string(),
            })?;
            let mut header = [0u8; RECORD_BATCH_OVERHEAD];
            header.copy_from_slice(&b[..RECORD_BATCH_OVERHEAD]);
            to_append.push(BatchToAppend {
                header,
                body: &b[RECORD_BATCH_OVERHEAD..],
                last_offset: batch.last_offset(),
                max_timestamp: batch.max_timestamp(),
            });
        }
        if !to_append.is_empty() {
            out.append(&to_append)?;
        }
        stats.bytes_written += self.bytes as u64;
        self.batches.clear();
        self.bytes = 0;
        Ok(())
    }
}

/// What a clean covers, decided from a [`CleanableView`] alone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CleanPlan {
    /// How many of the view's segments lie wholly below the first uncleanable offset.
    pub cleanable: usize,
    /// Where the dirty part starts.
    pub first_dirty: i64,
    /// Dirty bytes / cleanable bytes.
    pub dirty_ratio: f64,
}

/// Kafka's `LogCleanerManager.cleanableOffsets` and the choice to clean: `None` if the log is
/// not due.
pub fn plan_clean(
    view: &CleanableView,
    checkpoint: Option<i64>,
    now_ms: i64,
    horizon_due: bool,
) -> Option<CleanPlan> {
    let config = &view.config;
    let mut uncleanable = view.high_watermark;
    if let Some(f) = view.first_unstable_offset {
        uncleanable = uncleanable.min(f);
    }
    if config.min_compaction_lag_ms > 0 {
        if let Some(young) = view.segments.iter().find(|s| {
            s.max_timestamp != NO_TIMESTAMP
                && now_ms.saturating_sub(s.max_timestamp) < config.min_compaction_lag_ms
        }) {
            uncleanable = uncleanable.min(young.base_offset);
        }
    }
    let cleanable = view
        .segments
        .iter()
        .take_while(|s| s.end_offset <= uncleanable)
        .count();
    let segments = &view.segments[..cleanable];
    let first = segments.first()?;
    let start = view.log_start_offset.max(first.base_offset);
    let first_dirty = match checkpoint {
        // A checkpoint outside the log (truncated, or moved past by retention) is reset.
        Some(c) if c >= start && c <= view.segments.last().map_or(c, |s| s.end_offset) => c,
        _ => start,
    };
    let total: u64 = segments.iter().map(|s| s.size).sum();
    let dirty_segments = || segments.iter().filter(|s| s.end_offset > first_dirty);
    let dirty: u64 = dirty_segments().map(|s| s.size).sum();
    let dirty_ratio = if total == 0 {
        0.0
    } else {
        dirty as f64 / total as f64
    };
    let overdue = dirty_segments().any(|s| {
        s.max_timestamp != NO_TIMESTAMP
            && now_ms.saturating_sub(s.max_timestamp) > config.max_compaction_lag_ms
    });
    let due = (dirty > 0 && dirty_ratio >= config.min_cleanable_dirty_ratio)
        || (dirty > 0 && overdue)
        || horizon_due;
    due.then_some(CleanPlan {
        cleanable,
        first_dirty,
        dirty_ratio,
    })
}

/// Kafka's `groupSegmentsBySize`: consecutive segments whose bytes together fit `max_bytes`
/// and whose offsets fit a 32-bit index relative offset; a segment alone is always a group.
fn group_by_size<'a>(
    segments: &'a [&'a InactiveSegment],
    max_bytes: u64,
) -> Vec<&'a [&'a InactiveSegment]> {
    let mut groups = Vec::new();
    let mut i = 0;
    while i < segments.len() {
        let base = segments[i].base_offset;
        let mut size = segments[i].size;
        let mut j = i + 1;
        while j < segments.len()
            && size + segments[j].size <= max_bytes
            && segments[j].end_offset - 1 - base <= i64::from(i32::MAX)
        {
            size += segments[j].size;
            j += 1;
        }
        groups.push(&segments[i..j]);
        i = j;
    }
    groups
}

/// Adds the keyed records of `seg` at or above `from` to the map (control batches aside).
fn map_segment(
    view: &CleanableView,
    seg: &InactiveSegment,
    from: i64,
    map: &mut OffsetMap,
    txns: &mut TxnTracker,
) -> Result<()> {
    let limit = view.config.max_message_bytes.max(1 << 20) * 64;
    let mut batches = SegmentBatches::of_file(seg.file.clone(), seg.size);
    while let Some(batch) = batches.next_batch()? {
        if batch.last_offset() < from {
            continue;
        }
        if batch.is_control() {
            txns.on_control(&batch);
            continue;
        }
        // An aborted transaction's records supersede nothing.
        if txns.on_batch(&batch) {
            continue;
        }
        for r in records_of(&batch, limit, &view.dir)? {
            let r = r.map_err(|e| corrupt(&view.dir, &batch, e.to_string()))?;
            let offset = r.offset(&batch);
            if let (Some(key), true) = (&r.key, offset >= from) {
                map.put(key, offset);
            }
        }
    }
    Ok(())
}

/// What decides whether a record stays.
struct Retention<'a> {
    map: &'a OffsetMap,
    now_ms: i64,
    delete_retention_ms: i64,
    decompression_limit: usize,
    dir: &'a Path,
}

enum Filtered {
    Unchanged,
    Rewritten(Vec<u8>),
    Dropped,
}

/// Kafka's `shouldRetainRecord` over one batch, and the batch that results.
fn filter_batch(
    batch: &RecordBatch,
    r: &Retention<'_>,
    stats: &mut CleanStats,
    next_horizon: &mut Option<i64>,
) -> Result<Filtered> {
    if batch.is_control() {
        return Ok(Filtered::Unchanged);
    }
    let horizon = batch.delete_horizon_ms();
    let mut kept: Vec<Record> = Vec::new();
    let mut total = 0u64;
    let mut kept_tombstone = false;
    for rec in records_of(batch, r.decompression_limit, r.dir)? {
        let rec = rec.map_err(|e| corrupt(r.dir, batch, e.to_string()))?;
        total += 1;
        let offset = rec.offset(batch);
        let superseded = rec
            .key
            .as_ref()
            .and_then(|k| r.map.get(k))
            .is_some_and(|latest| latest > offset);
        if superseded {
            continue;
        }
        if rec.value.is_none() {
            if horizon.is_some_and(|h| r.now_ms >= h) {
                stats.tombstones_dropped += 1;
                continue;
            }
            kept_tombstone = true;
        }
        kept.push(rec);
    }
    stats.records_read += total;
    stats.records_kept += kept.len() as u64;
    let new_horizon = match horizon {
        Some(h) => Some(h),
        None if kept_tombstone => Some(r.now_ms.saturating_add(r.delete_retention_ms)),
        None => None,
    };
    if kept_tombstone {
        if let Some(h) = new_horizon {
            *next_horizon = Some(next_horizon.map_or(h, |n| n.min(h)));
        }
    }
    if kept.is_empty() {
        return Ok(Filtered::Dropped);
    }
    if kept.len() as u64 == total && new_horizon == horizon {
        return Ok(Filtered::Unchanged);
    }
    rebuild_batch(batch, &kept, new_horizon, r.dir).map(Filtered::Rewritten)
}

/// A transaction marker: kept while its transaction may still have data; once it has none,
/// stamped with a delete horizon, and dropped by a clean after it (Kafka's handling of
/// `containsMarkerForEmptyTxn` with KIP-534).
fn filter_marker(
    batch: &RecordBatch,
    may_go: bool,
    r: &Retention<'_>,
    next_horizon: &mut Option<i64>,
) -> Result<Filtered> {
    if !may_go {
        return Ok(Filtered::Unchanged);
    }
    if batch.record_count() == 0 {
        return Ok(Filtered::Dropped);
    }
    match batch.delete_horizon_ms() {
        Some(h) if r.now_ms >= h => Ok(Filtered::Dropped),
        Some(h) => {
            *next_horizon = Some(next_horizon.map_or(h, |n| n.min(h)));
            Ok(Filtered::Unchanged)
        }
        None => {
            let h = r.now_ms.saturating_add(r.delete_retention_ms);
            *next_horizon = Some(next_horizon.map_or(h, |n| n.min(h)));
            let mut kept = Vec::new();
            for rec in records_of(batch, r.decompression_limit, r.dir)? {
                kept.push(rec.map_err(|e| corrupt(r.dir, batch, e.to_string()))?);
            }
            rebuild_batch(batch, &kept, Some(h), r.dir).map(Filtered::Rewritten)
        }
    }
}

/// A batch with `batch`'s header (base offset, last offset delta, producer fields, leader
/// epoch, codec) holding `kept`, recompressed; with a delete horizon, baseTimestamp holds it
/// and attribute bit 6 is set, the records' timestamp deltas re-based onto it.
fn rebuild_batch(
    batch: &RecordBatch,
    kept: &[Record],
    horizon: Option<i64>,
    dir: &Path,
) -> Result<Vec<u8>> {
    let codec = batch
        .compression()
        .map_err(|e| corrupt(dir, batch, e.to_string()))?;
    let old_base = batch.base_timestamp();
    let new_base = horizon.unwrap_or(old_base);
    let mut records = Vec::new();
    let mut max_timestamp = NO_TIMESTAMP;
    for rec in kept {
        let timestamp = old_base.wrapping_add(rec.timestamp_delta);
        max_timestamp = max_timestamp.max(timestamp);
        let mut rec = rec.clone();
        rec.timestamp_delta = timestamp.wrapping_sub(new_base);
        rec.write_to(&mut records)
            .map_err(|e| corrupt(dir, batch, e.to_string()))?;
    }
    let payload = compression::compress(codec, &records).at(dir)?;
    let mut out = Vec::with_capacity(RECORD_BATCH_OVERHEAD + payload.len());
    out.extend_from_slice(&batch.as_bytes()[..RECORD_BATCH_OVERHEAD]);
    out.extend_from_slice(&payload);
    let mut attributes = batch.attributes();
    if horizon.is_some() {
        attributes |= DELETE_HORIZON_FLAG_MASK;
    }
    if batch.timestamp_type() == TimestampType::LogAppendTime {
        max_timestamp = batch.max_timestamp();
    }
    finish_header(
        &mut out,
        attributes,
        new_base,
        max_timestamp,
        kept.len() as i32,
    );
    Ok(out)
}

/// A header-only batch in place of `batch`: its offsets, producer fields and timestamps, no
/// records, no codec (Kafka's `writeEmptyHeader`).
fn empty_batch(batch: &RecordBatch) -> Vec<u8> {
    let mut out = batch.as_bytes()[..RECORD_BATCH_OVERHEAD].to_vec();
    let attributes = batch.attributes() & !COMPRESSION_CODEC_MASK;
    finish_header(
        &mut out,
        attributes,
        batch.base_timestamp(),
        batch.max_timestamp(),
        0,
    );
    out
}

/// Sets the header fields a rewrite changes, then the length and the CRC.
fn finish_header(
    out: &mut [u8],
    attributes: i16,
    base_timestamp: i64,
    max_timestamp: i64,
    record_count: i32,
) {
    let length = (out.len() - LOG_OVERHEAD) as i32;
    out[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&length.to_be_bytes());
    out[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    out[BASE_TIMESTAMP_OFFSET..BASE_TIMESTAMP_OFFSET + 8]
        .copy_from_slice(&base_timestamp.to_be_bytes());
    out[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8]
        .copy_from_slice(&max_timestamp.to_be_bytes());
    out[RECORDS_COUNT_OFFSET..RECORDS_COUNT_OFFSET + 4]
        .copy_from_slice(&record_count.to_be_bytes());
    let crc = crc32c(&[&out[ATTRIBUTES_OFFSET..]]);
    out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

fn corrupt(dir: &Path, batch: &RecordBatch, what: String) -> StorageError {
    StorageError::CorruptFile {
        path: dir.to_path_buf(),
        what: format!("batch at offset {}: {what}", batch.base_offset()),
    }
}

#[cfg(test)]
#[path = "log_cleaner_tests.rs"]
mod tests;
