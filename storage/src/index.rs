//! A segment's two indexes, in Kafka's format byte for byte: [`OffsetIndex`] (`.index`: offset →
//! position in the `.log` file) and [`TimeIndex`] (`.timeindex`: timestamp → offset).
//!
//! Both are sparse, sorted arrays of fixed-size big-endian entries in a memory-mapped file. What
//! they share — the file and its mapping, the entry count, binary search, truncation, trimming,
//! preallocation — is written once in `mapped::Index<E>`; each format is a small `IndexEntry` part.
//!
//! The life of an index file:
//! - Nothing happens until first use: [`OffsetIndex::new`] opens no file and maps nothing, so a
//!   log directory with thousands of segments holds descriptors and mappings only for the ones in
//!   use. `release` unmaps and closes (the segment goes cold); the next use maps again.
//! - On first use a missing file is created at `segment.index.bytes` (rounded down to a multiple
//!   of the entry size) as a sparse file, and mapped read-write.
//! - Before an entry is written, fallocate(2) backs the file with real blocks, 64 KiB at a time
//!   ahead of the next entry: a store into a mapped hole on a full disk is a SIGBUS, whereas a
//!   failed fallocate is a clean [`crate::StorageError::Io`] (ENOSPC) with the index unchanged.
//! - When the segment rolls or the log closes, `trim_to_valid_size` shrinks the file to its
//!   entries; `resize` re-expands it when a closed segment becomes the active one again.
//! - A file left at full size (a crash before the trim) holds its entries followed by zeros:
//!   truncation zeroes the entries it drops, so the entry count is the number of leading entries
//!   in order. A shorter (trimmed) file is all entries, as in Kafka, unless it ends in a zero
//!   entry (truncated after the trim): then it is counted the same way.
//! - With `persistent == false` (the simulated file system, [`crate::fs::SimFs`]) an index lives
//!   in anonymous memory, is never written to disk, and `release` keeps it.
//!
//! Not here: when to add an entry (`LogSegment`, every `index.interval.bytes`) and rebuilding an
//! index that fails `sanity_check` (`LogSegment::recover`, from the log).

use crate::error::Result;
use index_entry::IndexEntry;
use mapped::Index;
#[cfg(test)]
use mapped::PREALLOCATE_STEP;
use std::fmt::Debug;
use std::path::{Path, PathBuf};

mod index_entry;
mod mapped;
#[cfg(test)]
mod tests;

/// Kafka's `RecordBatch.NO_TIMESTAMP`.
const NO_TIMESTAMP: i64 = -1;

/// A position in a segment: an offset and the byte in the `.log` file where its batch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetPosition {
    pub offset: i64,
    pub position: u32,
}

/// A time index entry: the largest timestamp so far and the offset of the record that has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    pub timestamp: i64,
    pub offset: i64,
}

fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes(b[..4].try_into().expect("invariant: 4 bytes"))
}

/// The offset relative to the segment's base offset, as Kafka stores it: in `0..=i32::MAX`.
fn relative_offset(base_offset: i64, offset: i64) -> Option<i32> {
    i32::try_from(offset.checked_sub(base_offset)?)
        .ok()
        .filter(|r| *r >= 0)
}

fn encode_relative(base_offset: i64, offset: i64) -> [u8; 4] {
    relative_offset(base_offset, offset)
        .expect("invariant: relative offset checked before append")
        .to_be_bytes()
}

impl IndexEntry for OffsetPosition {
    const SIZE: usize = 8;
    fn key(&self) -> i64 {
        self.offset
    }
    fn offset(&self) -> i64 {
        self.offset
    }
    fn decode(b: &[u8], base_offset: i64) -> Self {
        OffsetPosition {
            offset: base_offset + i64::from(be_i32(b)),
            position: be_i32(&b[4..]) as u32,
        }
    }
    fn encode(&self, base_offset: i64, out: &mut [u8]) {
        out[..4].copy_from_slice(&encode_relative(base_offset, self.offset));
        out[4..8].copy_from_slice(&self.position.to_be_bytes());
    }
    fn may_precede(&self, next: &Self) -> bool {
        next.offset > self.offset
    }
}

impl IndexEntry for TimestampOffset {
    const SIZE: usize = 12;
    fn key(&self) -> i64 {
        self.timestamp
    }
    fn offset(&self) -> i64 {
        self.offset
    }
    fn decode(b: &[u8], base_offset: i64) -> Self {
        TimestampOffset {
            timestamp: i64::from_be_bytes(b[..8].try_into().expect("invariant: 8 bytes")),
            offset: base_offset + i64::from(be_i32(&b[8..])),
        }
    }
    fn encode(&self, base_offset: i64, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&encode_relative(base_offset, self.offset));
    }
    fn may_precede(&self, next: &Self) -> bool {
        next.timestamp > self.timestamp && next.offset >= self.offset
    }
}

/// The methods both public index types delegate to the shared core.
macro_rules! common_index_methods {
    ($entry:ty) => {
        /// The index file (it exists once a persistent index has been used).
        pub fn path(&self) -> &Path {
            &self.index.path
        }

        pub fn base_offset(&self) -> i64 {
            self.index.base_offset
        }

        /// `segment.index.bytes`: the size a new index file gets.
        pub fn max_index_size(&self) -> u64 {
            self.index.max_index_size
        }

        /// Trims the file to its entries and unmaps it without an fsync: for a shutdown that
        /// syncs the whole file system afterwards.
        pub fn close_unsynced(&mut self) -> Result<()> {
            self.index.close_unsynced()
        }

        /// Counts this index's mapping against a log's share of the node's
        /// [`crate::FileBudget`] from now on.
        pub fn set_handles(&mut self, handles: std::sync::Arc<crate::file_budget::LogHandles>) {
            self.index.set_handles(handles)
        }

        /// Whether the index is mapped now (it maps on first use and unmaps on `release`).
        pub fn is_mapped(&self) -> bool {
            self.index.is_mapped()
        }

        /// Whether `offset` fits an entry: at most `i32::MAX` above the base offset.
        pub fn can_append_offset(&self, offset: i64) -> bool {
            relative_offset(self.index.base_offset, offset).is_some()
        }

        pub fn entries(&mut self) -> Result<usize> {
            Ok(self.index.state()?.entries)
        }

        pub fn max_entries(&mut self) -> Result<usize> {
            self.index.max_entries()
        }

        /// The file's length in bytes.
        pub fn length(&mut self) -> Result<u64> {
            Ok(self.index.state()?.length)
        }

        /// The bytes the entries take (the length after a trim).
        pub fn size_in_bytes(&mut self) -> Result<u64> {
            Ok((self.index.state()?.entries * Self::ENTRY_SIZE) as u64)
        }

        /// Entry `n` (an `InvalidArgument` error when `n >= entries()`).
        pub fn entry(&mut self, n: usize) -> Result<$entry> {
            self.index.entry(n)
        }

        /// Removes the entries pointing at `offset` or above.
        pub fn truncate_to(&mut self, offset: i64) -> Result<()> {
            self.index.truncate_to(offset)
        }

        /// Removes every entry.
        pub fn truncate(&mut self) -> Result<()> {
            self.index.truncate_to_entries(0)
        }

        /// Removes every entry and sets the file to `segment.index.bytes`, all zeros (Kafka's
        /// `reset`): an empty index with room for what recovery rebuilds, whatever the file held.
        pub fn reset(&mut self) -> Result<()> {
            self.index.reset()
        }

        /// Backs the file with disk blocks for the next `additional` entries, so that a full disk
        /// fails here (ENOSPC) rather than in the appends that follow.
        pub fn reserve(&mut self, additional: usize) -> Result<()> {
            self.index.reserve(additional)
        }

        /// Shrinks the file to its entries (the segment rolled or the log is closing).
        pub fn trim_to_valid_size(&mut self) -> Result<()> {
            self.index.trim_to_valid_size()
        }

        /// Sets the file's length to `new_size` rounded down to whole entries (to take entries
        /// again after a trim: pass `segment.index.bytes`). Never below the entries.
        pub fn resize(&mut self, new_size: u64) -> Result<()> {
            self.index.resize(new_size)
        }

        /// Makes the entries durable (fdatasync). A no-op when not mapped or anonymous.
        pub fn flush(&mut self) -> Result<()> {
            self.index.flush()
        }

        /// The file, to fsync later without the index (`None`: nothing to make durable, the
        /// index being anonymous, or cold with its writes synced).
        pub fn file_to_sync(&self) -> Result<Option<std::sync::Arc<std::fs::File>>> {
            self.index.file_to_sync()
        }

        /// Unmaps and closes the file (no fsync: the next flush makes what it dirtied durable);
        /// the next use maps it again. Keeps an anonymous index (its memory is its only copy).
        pub fn release(&mut self) -> Result<()> {
            self.index.release()
        }

        /// Trims and releases (nothing, for an index never used).
        pub fn close(&mut self) -> Result<()> {
            self.index.close()
        }

        /// Renames the file (a missing one is no error: the caller may have moved it already).
        pub fn rename_to(&mut self, new_path: impl Into<PathBuf>) -> Result<()> {
            self.index.rename_to(new_path.into())
        }

        /// Unmaps and removes the file; whether there was one.
        pub fn delete(self) -> Result<bool> {
            self.index.delete()
        }
    };
}

/// A segment's `.index`: offset → position of the batch in the `.log` file.
///
/// Format (Kafka's): a sequence of 8-byte entries, big-endian — the offset minus the segment's
/// base offset as a 4-byte integer, then the byte position in the `.log` file as a 4-byte
/// integer. Offsets strictly increase. No header; a trimmed file is exactly its entries.
///
/// Thread-safety: not synchronised; every operation, even a lookup (which may map the file),
/// takes `&mut self`. Owned by its `LogSegment`, under the log's lock.
#[derive(Debug)]
pub struct OffsetIndex {
    index: Index<OffsetPosition>,
}

impl OffsetIndex {
    pub const ENTRY_SIZE: usize = OffsetPosition::SIZE;

    /// An index at `path`; no I/O until first use. `persistent == false`: in anonymous memory.
    pub fn new(path: PathBuf, base_offset: i64, max_index_size: u64, persistent: bool) -> Self {
        OffsetIndex {
            index: Index::new(path, base_offset, max_index_size, persistent),
        }
    }

    common_index_methods!(OffsetPosition);

    /// Adds an entry. `offset` must be above the last one and fit ([`Self::can_append_offset`]),
    /// and the index must not be full; otherwise an `InvalidArgument` error.
    pub fn append(&mut self, offset: i64, position: u32) -> Result<()> {
        let st = self.index.state()?;
        if let Some(last) = st.last {
            if offset <= last.offset {
                return Err(self.index.invalid(format!(
                    "offset {offset} is not above the last offset {} in the index",
                    last.offset
                )));
            }
        }
        if !self.can_append_offset(offset) {
            return Err(self.index.invalid(format!(
                "offset {offset} does not fit 31 bits above the base offset {}",
                self.base_offset()
            )));
        }
        self.index.push(OffsetPosition { offset, position })
    }

    /// The entry with the largest offset at or below `target_offset`, or (base offset, 0).
    pub fn lookup(&mut self, target_offset: i64) -> Result<OffsetPosition> {
        Ok(self.index.lookup(target_offset)?.unwrap_or(OffsetPosition {
            offset: self.base_offset(),
            position: 0,
        }))
    }

    /// The first entry at or past `fetch_size` bytes after `fetch_offset`'s position: where a
    /// read of `fetch_size` bytes from there ends at the latest (Kafka's
    /// `fetchUpperBoundOffset`).
    pub fn fetch_upper_bound_offset(
        &mut self,
        fetch_offset: OffsetPosition,
        fetch_size: u32,
    ) -> Result<Option<OffsetPosition>> {
        let target = u64::from(fetch_offset.position) + u64::from(fetch_size);
        let n = self
            .index
            .partition_point(|e| u64::from(e.position) < target)?;
        if n < self.index.state()?.entries {
            Ok(Some(self.index.read(n)))
        } else {
            Ok(None)
        }
    }

    /// The last entry's offset, or the base offset.
    pub fn last_offset(&mut self) -> Result<i64> {
        let base = self.base_offset();
        Ok(self.index.state()?.last.map_or(base, |e| e.offset))
    }

    pub fn is_full(&mut self) -> Result<bool> {
        Ok(self.entries()? >= self.max_entries()?)
    }

    /// Kafka's checks: a whole number of entries, the last offset not below the base offset
    /// (and the last two entries in order). A `CorruptFile` error means: rebuild the index.
    pub fn sanity_check(&mut self) -> Result<()> {
        self.index.sanity_check().map(drop)
    }
}

/// A segment's `.timeindex`: timestamp → offset.
///
/// Format (Kafka's): a sequence of 12-byte entries, big-endian — a timestamp as an 8-byte
/// integer, then the offset minus the segment's base offset as a 4-byte integer. Timestamps
/// strictly increase and offsets never decrease. No header; a trimmed file is exactly its
/// entries.
///
/// Thread-safety: as [`OffsetIndex`].
#[derive(Debug)]
pub struct TimeIndex {
    index: Index<TimestampOffset>,
}

impl TimeIndex {
    pub const ENTRY_SIZE: usize = TimestampOffset::SIZE;

    /// An index at `path`; no I/O until first use. `persistent == false`: in anonymous memory.
    pub fn new(path: PathBuf, base_offset: i64, max_index_size: u64, persistent: bool) -> Self {
        TimeIndex {
            index: Index::new(path, base_offset, max_index_size, persistent),
        }
    }

    common_index_methods!(TimestampOffset);

    /// Adds an entry if `timestamp` is above the last entry's (else does nothing, as Kafka). An
    /// offset below the last entry's, a timestamp below it, an offset that does not fit, or no
    /// room left is an `InvalidArgument` error.
    ///
    /// Unlike Kafka, the slot [`Self::is_full`] keeps free is usable here without a flag: it is
    /// for the entry the segment adds when it rolls, which then always has room.
    pub fn maybe_append(&mut self, timestamp: i64, offset: i64) -> Result<()> {
        let last = self.index.state()?.last;
        if let Some(last) = last {
            if offset < last.offset {
                return Err(self.index.invalid(format!(
                    "offset {offset} is below the last offset {} in the time index",
                    last.offset
                )));
            }
            if timestamp < last.timestamp {
                return Err(self.index.invalid(format!(
                    "timestamp {timestamp} is below the last timestamp {} in the time index",
                    last.timestamp
                )));
            }
        }
        if timestamp <= last.map_or(NO_TIMESTAMP, |e| e.timestamp) {
            return Ok(());
        }
        if !self.can_append_offset(offset) {
            return Err(self.index.invalid(format!(
                "offset {offset} does not fit 31 bits above the base offset {}",
                self.base_offset()
            )));
        }
        self.index.push(TimestampOffset { timestamp, offset })
    }

    /// The entry with the largest timestamp at or below `target_timestamp`, or
    /// (`NO_TIMESTAMP` = -1, base offset).
    pub fn lookup(&mut self, target_timestamp: i64) -> Result<TimestampOffset> {
        Ok(self
            .index
            .lookup(target_timestamp)?
            .unwrap_or(TimestampOffset {
                timestamp: NO_TIMESTAMP,
                offset: self.base_offset(),
            }))
    }

    /// The last entry, or (`NO_TIMESTAMP` = -1, base offset).
    pub fn last_entry(&mut self) -> Result<TimestampOffset> {
        let base = self.base_offset();
        Ok(self.index.state()?.last.unwrap_or(TimestampOffset {
            timestamp: NO_TIMESTAMP,
            offset: base,
        }))
    }

    /// Full one entry early, as in Kafka: the last slot is kept for the entry added on roll.
    pub fn is_full(&mut self) -> Result<bool> {
        Ok(self.entries()? + 1 >= self.max_entries()?)
    }

    /// Kafka's checks (a whole number of entries, the last offset not below the base offset, the
    /// last timestamp not below the first), and the last two entries in order. A `CorruptFile`
    /// error means: rebuild the index.
    pub fn sanity_check(&mut self) -> Result<()> {
        if let Some(first) = self.index.sanity_check()? {
            let last = self.last_entry()?;
            if last.timestamp < first.timestamp {
                return Err(self.index.corrupt(format!(
                    "the last timestamp {} is below the first timestamp {}",
                    last.timestamp, first.timestamp
                )));
            }
        }
        Ok(())
    }
}
