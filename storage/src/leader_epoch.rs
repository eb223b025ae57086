//! The leader-epoch cache of one partition and its `leader-epoch-checkpoint` file.
//!
//! Owns the history of leader epochs of a partition's log — for each epoch, the offset of its
//! first record ([`EpochEntry`]) — and the answers derived from it: the end offset of an epoch for
//! OffsetsForLeaderEpoch and follower truncation ([`LeaderEpochFileCache::end_offset_for`]), the
//! epoch of an offset. It does not decide when epochs begin or when the log is truncated: the log
//! (`UnifiedLog`) calls [`assign`](LeaderEpochFileCache::assign) for every appended batch and the
//! truncations when it truncates.
//!
//! # File
//!
//! `<log dir>/<topic>-<partition>/leader-epoch-checkpoint`, in the checkpoint text format of
//! [`crate::checkpoint`], one `<epoch> <start offset>` line per epoch in ascending order:
//!
//! ```text
//! 0
//! 2
//! 0 0
//! 3 1200
//! ```
//!
//! Unlike Kafka, which flushes truncations in the background, every truncation here is written
//! (atomically and durably) before the method returns, and the cache only changes once the write
//! succeeded: after an error the cache and the file both hold the previous history.
//!
//! A new epoch's entry from an append ([`assign_unflushed`](LeaderEpochFileCache::assign_unflushed))
//! is the exception: it is kept in memory and written by the next
//! [`flush`](LeaderEpochFileCache::flush), which the log runs before its recovery point passes
//! the entry's offset. Kafka writes it durably at once (`assign`); what that buys is only needed
//! below the recovery point, since after a crash the log recovers every segment above it and
//! assigns the epochs of the batches it finds there again (as Kafka's `LogSegment.recover`
//! does). So the first append of each epoch costs no fsync — the two it did cost were what
//! producing one record to each of many partitions waited on.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::checkpoint::{fields, CheckpointEntry, CheckpointFile};
use crate::error::{Result, StorageError};
use crate::fs::FileSystem;

/// The name of the file in a partition's directory.
pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";
/// No epoch: asked for by followers that know none, answered when the epoch is unknown.
pub const UNDEFINED_EPOCH: i32 = -1;
/// No offset, answered with [`UNDEFINED_EPOCH`].
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

/// A leader epoch and the offset of its first record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

impl EpochEntry {
    pub fn new(epoch: i32, start_offset: i64) -> EpochEntry {
        EpochEntry {
            epoch,
            start_offset,
        }
    }
}

/// As Kafka prints it.
impl fmt::Display for EpochEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "EpochEntry(epoch={}, startOffset={})",
            self.epoch, self.start_offset
        )
    }
}

/// A line of `leader-epoch-checkpoint`: `<epoch> <start offset>`, both non-negative (Kafka
/// refuses to load negative ones).
impl CheckpointEntry for EpochEntry {
    const VERSION: i32 = 0;

    fn format(&self, line: &mut String) {
        use std::fmt::Write as _;
        let _ = write!(line, "{} {}", self.epoch, self.start_offset);
    }

    fn parse(line: &str) -> std::result::Result<Self, String> {
        let [epoch, start_offset] = fields(line).ok_or("expected `<epoch> <start offset>`")?;
        let epoch = epoch
            .parse()
            .ok()
            .filter(|e: &i32| *e >= 0)
            .ok_or("the epoch is not a non-negative 32-bit integer")?;
        let start_offset = start_offset
            .parse()
            .ok()
            .filter(|o: &i64| *o >= 0)
            .ok_or("the start offset is not a non-negative 64-bit integer")?;
        Ok(EpochEntry::new(epoch, start_offset))
    }
}

/// The leader epochs of one partition's log, as Kafka's `LeaderEpochFileCache`, kept in its
/// `leader-epoch-checkpoint` file.
///
/// Invariant: entries are in strictly ascending order of epoch *and* of start offset; an
/// [`assign`](Self::assign) that would break it first removes the entries it conflicts with.
///
/// Not internally synchronised: mutation takes `&mut self`. The cache is owned by its partition's
/// log and used under the log's lock, which already orders appends and truncations.
#[derive(Debug)]
pub struct LeaderEpochFileCache {
    checkpoint: CheckpointFile<EpochEntry>,
    epochs: Vec<EpochEntry>,
    /// Whether `epochs` holds entries the file does not have yet ([`Self::assign_unflushed`]).
    unflushed: bool,
}

impl LeaderEpochFileCache {
    /// Loads the history in `path` (none if the file does not exist; the file is only created by
    /// the first change). As in Kafka, the file's entries are replayed through `assign`, so a
    /// file that is not monotonic loads as the monotonic history it implies.
    pub fn new(fs: Arc<dyn FileSystem>, path: PathBuf) -> Result<LeaderEpochFileCache> {
        let checkpoint = CheckpointFile::new(fs, path);
        let mut epochs = Vec::new();
        for entry in checkpoint.read()? {
            if is_update_needed(&epochs, entry) {
                assign_to(&mut epochs, entry);
            }
        }
        Ok(LeaderEpochFileCache {
            checkpoint,
            epochs,
            unflushed: false,
        })
    }

    pub fn path(&self) -> &Path {
        self.checkpoint.path()
    }

    /// Records that `epoch` starts at `start_offset`, as Kafka's `assign`: nothing happens if
    /// `epoch` is the latest epoch and `start_offset` is not below its start (the common case of
    /// every batch of the current leader); otherwise every entry whose epoch is `>= epoch` or
    /// whose start offset is `>= start_offset` is removed, the new entry appended, and the file
    /// rewritten.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> Result<()> {
        let Some(entry) = self.entry_to_assign(epoch, start_offset)? else {
            return Ok(());
        };
        let mut next = self.epochs.clone();
        let removed = assign_to(&mut next, entry);
        self.commit(next)?;
        if !self.warn_on_divergence(&removed, entry) {
            tracing::debug!(
                path = %self.path().display(),
                epoch,
                offset = start_offset,
                entries = self.epochs.len(),
                "appended new epoch entry"
            );
        }
        Ok(())
    }

    /// [`assign`](Self::assign) in memory only: the file is written by the next
    /// [`flush`](Self::flush) (or any write of the file). For the log's appends, whose batches
    /// carry their epoch: recovery assigns those above the recovery point again after a crash,
    /// so the log only has to flush the cache before its recovery point moves past the entry.
    pub fn assign_unflushed(&mut self, epoch: i32, start_offset: i64) -> Result<()> {
        let Some(entry) = self.entry_to_assign(epoch, start_offset)? else {
            return Ok(());
        };
        let removed = assign_to(&mut self.epochs, entry);
        self.unflushed = true;
        self.warn_on_divergence(&removed, entry);
        Ok(())
    }

    /// The entry `assign` would add, `None` when the cache already covers it; refuses a
    /// negative epoch or offset.
    fn entry_to_assign(&self, epoch: i32, start_offset: i64) -> Result<Option<EpochEntry>> {
        let entry = EpochEntry::new(epoch, start_offset);
        if epoch < 0 || start_offset < 0 {
            return Err(StorageError::InvalidArgument {
                partition: self.partition(),
                what: format!("invalid partition leader epoch entry {entry}"),
            });
        }
        Ok(is_update_needed(&self.epochs, entry).then_some(entry))
    }

    /// Warns when assigning `entry` removed more than an entry at its own start offset (which
    /// is expected: no record was written in it): the log diverged, worth an operator's look.
    /// Returns whether it warned.
    fn warn_on_divergence(&self, removed: &[EpochEntry], entry: EpochEntry) -> bool {
        let diverged = removed.len() > 1
            || removed
                .first()
                .is_some_and(|r| r.start_offset != entry.start_offset);
        if diverged {
            tracing::warn!(
                path = %self.path().display(),
                epoch = entry.epoch,
                offset = entry.start_offset,
                ?removed,
                entries = self.epochs.len(),
                "new epoch entry caused truncation of conflicting entries"
            );
        }
        diverged
    }

    /// Whether entries assigned with [`assign_unflushed`](Self::assign_unflushed) are not in
    /// the file yet.
    pub fn is_unflushed(&self) -> bool {
        self.unflushed
    }

    /// Writes the entries the file does not have yet, durably; nothing if it has them all.
    pub fn flush(&mut self) -> Result<()> {
        if self.unflushed {
            self.checkpoint.write(&self.epochs)?;
            self.unflushed = false;
        }
        Ok(())
    }

    /// [`flush`](Self::flush) without fsyncs, for a shutdown that syncs the whole file system
    /// afterwards.
    pub fn flush_unsynced(&mut self) -> Result<()> {
        if self.unflushed {
            self.checkpoint.write_unsynced(&self.epochs)?;
            self.unflushed = false;
        }
        Ok(())
    }

    /// Removes the entries whose start offset is `>= end_offset`, when the log is truncated to
    /// `end_offset` (Kafka's `truncateFromEndAsyncFlush`, flushed before returning). A negative
    /// `end_offset` changes nothing.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> Result<()> {
        let keep = self.epochs.partition_point(|e| e.start_offset < end_offset);
        if end_offset < 0 || keep == self.epochs.len() {
            return Ok(());
        }
        let next = self.epochs[..keep].to_vec();
        self.commit(next)?;
        tracing::debug!(
            path = %self.path().display(),
            offset = end_offset,
            entries = self.epochs.len(),
            "truncated epoch entries from the end"
        );
        Ok(())
    }

    /// Forgets the history below `start_offset`, when the log start offset moves up to it
    /// (Kafka's `truncateFromStartAsyncFlush`, flushed before returning): the entries starting at
    /// or below `start_offset` are removed and the last of them comes back starting at
    /// `start_offset`, so the epoch of `start_offset` is still known. An entry starting exactly at
    /// `start_offset` is therefore kept as it is.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> Result<()> {
        let removed = self
            .epochs
            .partition_point(|e| e.start_offset <= start_offset);
        if removed == 0 {
            return Ok(());
        }
        let first = EpochEntry::new(self.epochs[removed - 1].epoch, start_offset);
        let next: Vec<EpochEntry> = std::iter::once(first)
            .chain(self.epochs[removed..].iter().copied())
            .collect();
        if next == self.epochs {
            return Ok(());
        }
        self.commit(next)?;
        tracing::debug!(
            path = %self.path().display(),
            offset = start_offset,
            entries = self.epochs.len(),
            "truncated epoch entries from the start"
        );
        Ok(())
    }

    /// Removes every entry and writes the empty file.
    pub fn clear_and_flush(&mut self) -> Result<()> {
        self.commit(Vec::new())
    }

    /// All entries, ascending.
    pub fn epoch_entries(&self) -> &[EpochEntry] {
        &self.epochs
    }

    pub fn is_empty(&self) -> bool {
        self.epochs.is_empty()
    }

    /// The epoch of the latest entry: the current leader epoch as far as the log knows.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.latest_entry().map(|e| e.epoch)
    }

    pub fn latest_entry(&self) -> Option<EpochEntry> {
        self.epochs.last().copied()
    }

    pub fn earliest_entry(&self) -> Option<EpochEntry> {
        self.epochs.first().copied()
    }

    /// The entry of exactly `epoch`.
    pub fn epoch_entry(&self, epoch: i32) -> Option<EpochEntry> {
        self.epochs
            .binary_search_by_key(&epoch, |e| e.epoch)
            .ok()
            .map(|i| self.epochs[i])
    }

    /// The entry of the largest epoch below `epoch`.
    pub fn previous_entry(&self, epoch: i32) -> Option<EpochEntry> {
        let i = self.epochs.partition_point(|e| e.epoch < epoch);
        i.checked_sub(1).map(|i| self.epochs[i])
    }

    /// The smallest epoch above `epoch`.
    pub fn next_epoch(&self, epoch: i32) -> Option<i32> {
        let i = self.epochs.partition_point(|e| e.epoch <= epoch);
        self.epochs.get(i).map(|e| e.epoch)
    }

    /// The epoch the record at `offset` was written in: that of the last entry starting at or
    /// before `offset`; `None` if `offset` is before every entry.
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        let i = self.epochs.partition_point(|e| e.start_offset <= offset);
        i.checked_sub(1).map(|i| self.epochs[i].epoch)
    }

    /// The end of `requested_epoch` for OffsetsForLeaderEpoch, exactly as Kafka's `endOffsetFor`:
    /// `(epoch, end offset)` where `epoch` is the largest known epoch `<= requested_epoch` and
    /// the end offset is the start offset of the first epoch above `requested_epoch`, or
    /// `log_end_offset` if `requested_epoch` is the latest epoch.
    ///
    /// Edge cases, as in Kafka: [`UNDEFINED_EPOCH`] requested, no entries, or an epoch above the
    /// latest give `(UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)`; an epoch below the earliest gives
    /// `(requested_epoch, start offset of the earliest)` — its records are gone, and the follower
    /// should replicate from where the history begins.
    pub fn end_offset_for(&self, requested_epoch: i32, log_end_offset: i64) -> (i32, i64) {
        const UNDEFINED: (i32, i64) = (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        if requested_epoch == UNDEFINED_EPOCH {
            return UNDEFINED;
        }
        if self.latest_epoch() == Some(requested_epoch) {
            return (requested_epoch, log_end_offset);
        }
        let higher = self.epochs.partition_point(|e| e.epoch <= requested_epoch);
        let Some(next) = self.epochs.get(higher) else {
            return UNDEFINED;
        };
        match higher.checked_sub(1) {
            Some(floor) => (self.epochs[floor].epoch, next.start_offset),
            None => (requested_epoch, next.start_offset),
        }
    }

    /// Writes `next` to the file, then makes it the cache's history.
    fn commit(&mut self, next: Vec<EpochEntry>) -> Result<()> {
        self.checkpoint.write(&next)?;
        self.epochs = next;
        self.unflushed = false;
        Ok(())
    }

    /// The partition's name for error messages: its directory's name.
    fn partition(&self) -> String {
        let path = self.path();
        path.parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string())
    }
}

/// Kafka's `isUpdateNeeded`: anything but the latest epoch again at or after its start offset.
fn is_update_needed(epochs: &[EpochEntry], entry: EpochEntry) -> bool {
    epochs
        .last()
        .is_none_or(|l| entry.epoch != l.epoch || entry.start_offset < l.start_offset)
}

/// Appends `entry` after removing, from the end, the entries it conflicts with (Kafka's
/// `maybeTruncateNonMonotonicEntries`); returns those, latest first.
fn assign_to(epochs: &mut Vec<EpochEntry>, entry: EpochEntry) -> Vec<EpochEntry> {
    let mut removed = Vec::new();
    while let Some(last) = epochs.last() {
        if last.epoch < entry.epoch && last.start_offset < entry.start_offset {
            break;
        }
        removed.extend(epochs.pop());
    }
    epochs.push(entry);
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::SimFs;

    const PARTITION_DIR: &str = "/data/kafka-logs/TestTopic-5";

    fn setup() -> (SimFs, PathBuf, LeaderEpochFileCache) {
        let sim = SimFs::new();
        sim.create_dir_all(Path::new(PARTITION_DIR)).expect("dir");
        let path = Path::new(PARTITION_DIR).join(LEADER_EPOCH_CHECKPOINT);
        let cache = LeaderEpochFileCache::new(Arc::new(sim.clone()), path.clone()).expect("new");
        (sim, path, cache)
    }

    fn reopen(sim: &SimFs, path: &Path) -> LeaderEpochFileCache {
        LeaderEpochFileCache::new(Arc::new(sim.clone()), path.to_path_buf()).expect("reopen")
    }

    /// An independent reading of the file, as strict as our writer.
    fn parse_strictly(bytes: &[u8]) -> Vec<EpochEntry> {
        let text = std::str::from_utf8(bytes).expect("utf-8");
        assert!(text.ends_with('\n') && !text.contains('\r'), "{text:?}");
        let lines: Vec<&str> = text[..text.len() - 1].split('\n').collect();
        assert_eq!(lines[0], "0", "version: {text:?}");
        assert_eq!(lines[1], (lines.len() - 2).to_string(), "count: {text:?}");
        lines[2..]
            .iter()
            .map(|l| {
                let (e, o) = l.split_once(' ').expect("two fields");
                EpochEntry::new(e.parse().expect("epoch"), o.parse().expect("offset"))
            })
            .collect()
    }

    fn show_entry(e: Option<EpochEntry>) -> String {
        e.map_or("none".into(), |e| format!("{}:{}", e.epoch, e.start_offset))
    }

    fn show_epoch(e: Option<i32>) -> String {
        e.map_or("none".into(), |e| e.to_string())
    }

    /// Kafka's `LeaderEpochFileCacheTest`, case by case, as scripts. Commands: `assign E O`,
    /// `truncate_from_end O`, `truncate_from_start O`, `clear_and_flush`; queries `<query> ->
    /// <expected>`: `entries` (`E:O` ...), `end_offset_for E LEO` (`E O`), `epoch_for_offset O`,
    /// `latest_epoch`, `latest_entry`, `earliest_entry`, `epoch_entry E`, `previous_entry E`,
    /// `next_epoch E` (`none` when absent). After every command the power is cut and the cache
    /// reloaded from its file, which must hold exactly the same history.
    const CASES: &str = "
case shouldAddEpochAndMessageOffsetToCache
assign 2 10
latest_epoch -> 2
entries -> 2:10
end_offset_for 2 11 -> 2 11

case shouldReturnLogEndOffsetIfLatestEpochRequested
assign 2 11
assign 2 12
end_offset_for 2 14 -> 2 14

case shouldReturnUndefinedOffsetIfUndefinedEpochRequested
assign 2 11
assign 3 12
end_offset_for -1 0 -> -1 -1

case shouldNotOverwriteLogEndOffsetForALeaderEpochOnceItHasBeenAssigned
assign 2 9
assign 2 10
entries -> 2:9

case shouldEnforceMonotonicallyIncreasingStartOffsets
assign 2 9
assign 3 9
entries -> 3:9

case shouldNotOverwriteOffsetForALeaderEpochOnceItHasBeenAssigned
assign 2 6
assign 2 10
entries -> 2:6

case shouldReturnUnsupportedIfNoEpochRecorded
end_offset_for 0 0 -> -1 -1

case shouldReturnUnsupportedIfNoEpochRecordedAndUndefinedEpochRequested
end_offset_for -1 73 -> -1 -1

case shouldReturnFirstEpochIfRequestedEpochLessThanFirstEpoch
assign 5 11
assign 6 12
assign 7 13
end_offset_for 4 0 -> 4 11

case shouldTruncateIfMatchingEpochButEarlierStartingOffset
assign 5 11
assign 6 12
assign 7 13
assign 7 12
entries -> 5:11 7:12
end_offset_for 5 0 -> 5 12
end_offset_for 6 0 -> 5 12

case shouldGetFirstOffsetOfSubsequentEpochWhenOffsetRequestedForPreviousEpoch
assign 1 11
assign 1 12
assign 2 13
assign 2 14
assign 3 15
assign 3 16
end_offset_for 2 17 -> 2 15

case shouldReturnNextAvailableEpochIfThereIsNoExactEpochForTheOneRequested
assign 0 10
assign 2 13
assign 4 17
end_offset_for 1 0 -> 0 13
end_offset_for 2 0 -> 2 17
end_offset_for 3 0 -> 2 17

case shouldNotUpdateEpochAndStartOffsetIfItDidNotChange
assign 2 6
assign 2 7
entries -> 2:6

case shouldReturnInvalidOffsetIfEpochIsRequestedWhichIsNotCurrentlyTracked
assign 2 100
end_offset_for 3 100 -> -1 -1

case shouldSupportEpochsThatDoNotStartFromZero
assign 2 6
end_offset_for 2 7 -> 2 7
entries -> 2:6

case shouldEnforceMonotonicallyIncreasingEpochs
assign 1 5
assign 2 6
assign 1 7
latest_epoch -> 1
end_offset_for 1 8 -> 1 8
end_offset_for 2 8 -> -1 -1
entries -> 1:7

case shouldEnforceOffsetsIncreaseMonotonically
assign 2 6
assign 3 5
entries -> 3:5

case shouldIncreaseAndTrackEpochsAsLeadersChangeManyTimes
assign 0 0
assign 1 0
latest_epoch -> 1
end_offset_for 1 0 -> 1 0
end_offset_for 0 0 -> 0 0
end_offset_for 1 5 -> 1 5
end_offset_for 0 5 -> 0 0
assign 2 5
end_offset_for 2 10 -> 2 10
end_offset_for 1 10 -> 1 5
end_offset_for 0 10 -> 0 0

case shouldIncreaseAndTrackEpochsAsFollowerReceivesManyMessages
assign 0 0
assign 0 1
assign 0 2
latest_epoch -> 0
end_offset_for 0 3 -> 0 3
assign 1 3
assign 1 4
assign 1 5
latest_epoch -> 1
end_offset_for 1 6 -> 1 6
assign 2 6
assign 2 7
assign 2 8
latest_epoch -> 2
end_offset_for 2 9 -> 2 9
end_offset_for 0 9 -> 0 3
end_offset_for 1 9 -> 1 6

case shouldDropEntriesOnEpochBoundaryWhenRemovingLatestEntries
assign 2 6
assign 3 8
assign 4 11
truncate_from_end 8
entries -> 2:6

case shouldPreserveResetOffsetOnClearEarliestIfOneExists
assign 2 6
assign 3 8
assign 4 11
truncate_from_start 8
entries -> 3:8 4:11

case shouldUpdateSavedOffsetWhenOffsetToClearToIsBetweenEpochs
assign 2 6
assign 3 8
assign 4 11
truncate_from_start 9
entries -> 3:9 4:11

case shouldNotClearAnythingIfOffsetToEarly
assign 2 6
assign 3 8
assign 4 11
truncate_from_start 1
entries -> 2:6 3:8 4:11

case shouldNotClearAnythingIfOffsetToFirstOffset
assign 2 6
assign 3 8
assign 4 11
truncate_from_start 6
entries -> 2:6 3:8 4:11

case shouldRetainLatestEpochOnClearAllEarliest
assign 2 6
assign 3 8
assign 4 11
truncate_from_start 11
entries -> 4:11

case shouldUpdateOffsetBetweenEpochBoundariesOnClearEarliest2
assign 0 0
assign 1 7
assign 2 10
truncate_from_start 5
entries -> 0:5 1:7 2:10

case shouldRetainLatestEpochOnClearAllEarliestAndUpdateItsOffset
assign 2 6
assign 3 8
assign 4 11
truncate_from_start 15
entries -> 4:15

case shouldDropEntriesBetweenEpochBoundaryWhenRemovingNewest
assign 2 6
assign 3 8
assign 4 11
truncate_from_end 9
latest_epoch -> 3
entries -> 2:6 3:8

case shouldClearAllEntries
assign 2 6
assign 3 8
assign 4 11
clear_and_flush
entries ->
latest_entry -> none

case shouldNotResetEpochHistoryHeadIfUndefinedPassed
assign 2 6
assign 3 8
assign 4 11
truncate_from_start -1
entries -> 2:6 3:8 4:11

case shouldNotResetEpochHistoryTailIfUndefinedPassed
assign 2 6
assign 3 8
assign 4 11
truncate_from_end -1
entries -> 2:6 3:8 4:11

case shouldFetchLatestEpochOfEmptyCache
latest_epoch -> none
latest_entry -> none
earliest_entry -> none

case shouldFetchEndOffsetOfEmptyCache
end_offset_for 7 0 -> -1 -1

case shouldClearEarliestOnEmptyCache
truncate_from_start 7
entries ->

case shouldClearLatestOnEmptyCache
truncate_from_end 7
entries ->

case testFindPreviousEntry
previous_entry 2 -> none
assign 2 10
previous_entry 2 -> none
assign 4 15
previous_entry 4 -> 2:10
assign 10 20
previous_entry 10 -> 4:15
truncate_from_end 18
latest_epoch -> 4
previous_entry 4 -> 2:10

case testFindNextEpoch
assign 0 0
assign 1 100
assign 2 200
next_epoch -1 -> 0
next_epoch 0 -> 1
next_epoch 1 -> 2
next_epoch 2 -> none
next_epoch 100 -> none

case testGetEpochEntry
assign 2 100
assign 3 500
assign 5 1000
epoch_entry 2 -> 2:100
epoch_entry 3 -> 3:500
epoch_entry 5 -> 5:1000
epoch_entry 4 -> none

case shouldFetchEpochForGivenOffset
assign 0 10
assign 1 20
assign 5 30
epoch_for_offset 25 -> 1
epoch_for_offset 20 -> 1
epoch_for_offset 30 -> 5
epoch_for_offset 50 -> 5
epoch_for_offset 5 -> none

case shouldWriteCheckpointOnTruncation
assign 2 6
assign 3 8
assign 4 11
truncate_from_end 11
truncate_from_start 8
entries -> 3:8
earliest_entry -> 3:8
latest_entry -> 3:8

case endOffsetForEpochBelowEarliestAfterStartTruncation
assign 1 0
assign 3 10
assign 5 20
truncate_from_start 12
end_offset_for 2 25 -> 2 12
end_offset_for 3 25 -> 3 20
end_offset_for 4 25 -> 3 20
end_offset_for 5 25 -> 5 25
end_offset_for 6 25 -> -1 -1
end_offset_for -2 25 -> -2 12

case assignOfAnOlderEpochAtTheSameOffsetReplacesTheNewerOnes
assign 1 0
assign 2 10
assign 3 20
assign 2 20
entries -> 1:0 2:20
assign 2 15
entries -> 1:0 2:15
";

    fn int<T: std::str::FromStr>(s: &str, line: &str) -> T {
        s.parse()
            .unwrap_or_else(|_| panic!("bad number {s:?} in {line:?}"))
    }

    #[test]
    fn kafka_leader_epoch_file_cache_cases() {
        let mut cases = 0;
        for case in CASES.split("\n\n").map(str::trim).filter(|c| !c.is_empty()) {
            cases += 1;
            let mut lines = case.lines();
            let name = lines
                .next()
                .and_then(|l| l.strip_prefix("case "))
                .expect("a case starts with `case <name>`");
            let (sim, path, mut cache) = setup();
            for line in lines {
                let ctx = format!("{name}: {line}");
                let (cmd, expected) = match line.split_once(" -> ") {
                    Some((q, e)) => (q, Some(e.trim())),
                    None => match line.strip_suffix(" ->") {
                        Some(q) => (q, Some("")),
                        None => (line, None),
                    },
                };
                let words: Vec<&str> = cmd.split_whitespace().collect();
                let arg = |i: usize| words.get(i).copied().unwrap_or_else(|| panic!("{ctx}"));
                let got = match words[0] {
                    "assign" => {
                        let (e, o) = (int(arg(1), line), int(arg(2), line));
                        cache.assign(e, o).expect(&ctx);
                        None
                    }
                    "truncate_from_end" => {
                        cache.truncate_from_end(int(arg(1), line)).expect(&ctx);
                        None
                    }
                    "truncate_from_start" => {
                        cache.truncate_from_start(int(arg(1), line)).expect(&ctx);
                        None
                    }
                    "clear_and_flush" => {
                        cache.clear_and_flush().expect(&ctx);
                        None
                    }
                    "entries" => Some(
                        cache
                            .epoch_entries()
                            .iter()
                            .map(|e| show_entry(Some(*e)))
                            .collect::<Vec<_>>()
                            .join(" "),
                    ),
                    "end_offset_for" => {
                        let (e, o) = cache.end_offset_for(int(arg(1), line), int(arg(2), line));
                        Some(format!("{e} {o}"))
                    }
                    "epoch_for_offset" => {
                        Some(show_epoch(cache.epoch_for_offset(int(arg(1), line))))
                    }
                    "latest_epoch" => Some(show_epoch(cache.latest_epoch())),
                    "latest_entry" => Some(show_entry(cache.latest_entry())),
                    "earliest_entry" => Some(show_entry(cache.earliest_entry())),
                    "epoch_entry" => Some(show_entry(cache.epoch_entry(int(arg(1), line)))),
                    "previous_entry" => Some(show_entry(cache.previous_entry(int(arg(1), line)))),
                    "next_epoch" => Some(show_epoch(cache.next_epoch(int(arg(1), line)))),
                    other => panic!("{name}: unknown command {other:?}"),
                };
                match (got, expected) {
                    (Some(got), Some(want)) => assert_eq!(got, want, "{ctx}"),
                    (None, None) => {
                        // A command: whatever it changed is on disk already.
                        sim.power_cut(None);
                        let on_disk = sim.contents(&path).map(|b| parse_strictly(&b));
                        let reloaded = reopen(&sim, &path);
                        assert_eq!(reloaded.epoch_entries(), cache.epoch_entries(), "{ctx}");
                        if let Some(on_disk) = on_disk {
                            assert_eq!(on_disk, cache.epoch_entries(), "{ctx}");
                        } else {
                            assert!(cache.is_empty(), "{ctx}: no file");
                        }
                        cache = reloaded;
                    }
                    _ => panic!("{ctx}: a query needs `-> expected`, a command none"),
                }
            }
        }
        assert!(cases >= 40, "only {cases} cases ran");
    }

    #[test]
    fn writes_kafkas_bytes_exactly() {
        let (sim, path, mut cache) = setup();
        cache.assign(0, 0).expect("assign");
        cache.assign(3, 1200).expect("assign");
        cache.assign(3, 1300).expect("assign"); // not an update: no rewrite
        let bytes = sim.contents(&path).expect("file");
        assert_eq!(bytes, b"0\n2\n0 0\n3 1200\n".as_slice());
        assert_eq!(
            parse_strictly(&bytes),
            vec![EpochEntry::new(0, 0), EpochEntry::new(3, 1200)]
        );
        cache.clear_and_flush().expect("clear");
        assert_eq!(sim.contents(&path).expect("file"), b"0\n0\n");
    }

    #[test]
    fn a_missing_file_is_an_empty_history_and_is_not_created() {
        let (sim, path, cache) = setup();
        assert!(cache.is_empty());
        assert!(!sim.exists(&path));
    }

    #[test]
    fn loads_a_file_kafka_wrote() {
        let (sim, path, _) = setup();
        sim.open(&path, true).expect("create");
        for (bytes, want) in [
            (b"".as_slice(), vec![]),
            (b"0\n0\n", vec![]),
            (
                b"0\n3\n0 0\n4 100\n7 2000\n",
                vec![(0, 0), (4, 100), (7, 2000)],
            ),
            // Not monotonic: replayed through `assign`, as Kafka does when it loads the file.
            (b"0\n3\n1 5\n2 3\n3 7\n", vec![(2, 3), (3, 7)]),
            (b"0\n2\n1 5\n1 9\n", vec![(1, 5)]),
        ] {
            sim.overwrite(&path, bytes);
            let cache = reopen(&sim, &path);
            let want: Vec<EpochEntry> = want
                .into_iter()
                .map(|(e, o)| EpochEntry::new(e, o))
                .collect();
            assert_eq!(
                cache.epoch_entries(),
                want,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn rejects_malformed_files_naming_path_and_line() {
        let cases: &[(&[u8], &str)] = &[
            (b"1\n0\n", "line 1: unsupported version 1"),
            (b"0\n2\n0 0\n", "line 2: expected 2 entries, found 1"),
            (
                b"0\n1\n0 0 0\n",
                "line 3: expected `<epoch> <start offset>`",
            ),
            (b"0\n1\n0\n", "line 3: expected `<epoch> <start offset>`"),
            (b"0\n1\n-1 0\n", "line 3: the epoch is not"),
            (b"0\n1\n2147483648 0\n", "line 3: the epoch is not"),
            (b"0\n1\n0 -5\n", "line 3: the start offset is not"),
            (b"0\n2\n0 0\n1 x\n", "line 4: the start offset is not"),
        ];
        for (bytes, want) in cases {
            let (sim, path, _) = setup();
            sim.open(&path, true).expect("create");
            sim.overwrite(&path, bytes);
            let shown = String::from_utf8_lossy(bytes);
            let err =
                LeaderEpochFileCache::new(Arc::new(sim.clone()), path.clone()).expect_err(&shown);
            assert!(
                matches!(err, StorageError::CorruptFile { .. }),
                "{shown:?}: {err:?}"
            );
            let msg = err.to_string();
            assert!(
                msg.starts_with(&path.display().to_string()),
                "{shown:?}: {msg}"
            );
            assert!(msg.contains(want), "{shown:?}: {msg}");
        }
    }

    #[test]
    fn negative_entries_are_refused_and_change_nothing() {
        let (sim, path, mut cache) = setup();
        cache.assign(1, 10).expect("assign");
        for (e, o) in [(-1, 20), (2, -1)] {
            let err = cache.assign(e, o).expect_err("negative");
            assert!(
                matches!(err, StorageError::InvalidArgument { .. }),
                "{err:?}"
            );
            assert!(err.to_string().starts_with("TestTopic-5: "), "{err}");
        }
        assert_eq!(cache.epoch_entries(), [EpochEntry::new(1, 10)]);
        assert_eq!(sim.contents(&path).expect("file"), b"0\n1\n1 10\n");
    }

    #[test]
    fn a_failed_write_changes_neither_the_cache_nor_the_file() {
        let (sim, path, mut cache) = setup();
        cache.assign(1, 10).expect("assign");
        cache.assign(2, 20).expect("assign");
        let before = cache.epoch_entries().to_vec();
        sim.set_fail_sync(true);
        assert!(matches!(cache.assign(3, 30), Err(StorageError::Io { .. })));
        assert!(matches!(
            cache.truncate_from_end(15),
            Err(StorageError::Io { .. })
        ));
        assert!(matches!(
            cache.truncate_from_start(15),
            Err(StorageError::Io { .. })
        ));
        assert!(matches!(
            cache.clear_and_flush(),
            Err(StorageError::Io { .. })
        ));
        assert_eq!(cache.epoch_entries(), before);
        sim.set_fail_sync(false);
        for seed in [None, Some(1), Some(2), Some(3)] {
            sim.power_cut(seed);
            assert_eq!(reopen(&sim, &path).epoch_entries(), before, "seed {seed:?}");
        }
    }

    #[test]
    fn a_left_over_temporary_file_is_ignored() {
        let (sim, path, mut cache) = setup();
        cache.assign(1, 10).expect("assign");
        sim.power_cut(None);
        assert_eq!(
            reopen(&sim, &path).epoch_entries(),
            [EpochEntry::new(1, 10)]
        );
        // The next write got as far as a synced temporary file, then the power went.
        let tmp = path.with_extension("tmp");
        let f = sim.open(&tmp, true).expect("tmp");
        f.write_all_at(&[b"0\n2\n1 10\n2 20\n"], 0).expect("write");
        f.sync().expect("sync");
        sim.sync_dir(Path::new(PARTITION_DIR)).expect("sync dir");
        sim.power_cut(None);
        let mut cache = reopen(&sim, &path);
        assert_eq!(cache.epoch_entries(), [EpochEntry::new(1, 10)]);
        cache.assign(3, 30).expect("assign over the left-over");
        sim.power_cut(None);
        assert_eq!(
            reopen(&sim, &path).epoch_entries(),
            [EpochEntry::new(1, 10), EpochEntry::new(3, 30)]
        );
    }

    #[test]
    fn display_as_kafka() {
        assert_eq!(
            EpochEntry::new(2, 6).to_string(),
            "EpochEntry(epoch=2, startOffset=6)"
        );
    }
}
