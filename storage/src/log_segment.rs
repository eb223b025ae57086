//! `LogSegment`: one `<20-digit base offset>.log` file with its `.index` and `.timeindex`.
//!
//! The `.log` file is a concatenation of RecordBatch v2 batches exactly as stored (Kafka's
//! format). It is written with ordinary positional writes, never mapped. Every
//! `index.interval.bytes` of appended data, the batch that crosses the interval gets an
//! [`OffsetIndex`] entry (its last offset → its position) and a [`TimeIndex`] entry (the largest
//! timestamp so far → its offset), as Kafka's `LogSegment.append` does.
//!
//! The file handle and the index mappings are opened on first use and can be released when the
//! segment goes cold ([`LogSegment::release`]), so a directory of many partitions does not hold
//! descriptors and mappings for all of them.
//!
//! Thread-safety: `&mut self` for everything that changes the segment; owned by its
//! [`UnifiedLog`](crate::UnifiedLog), whose caller serialises access.

use crate::error::{IoContext, Result, StorageError};
use crate::file_budget::{LogHandles, OpenFile};
use crate::fs::{FileSystem, LogFile};
use crate::index::{OffsetIndex, TimeIndex, TimestampOffset};
use crate::leader_epoch::LeaderEpochFileCache;
use crate::segment_batches::SegmentBatches;
use crate::transaction_index::TransactionIndex;
use rafka_protocol::record_batch::{
    RecordBatch, ATTRIBUTES_OFFSET, BASE_SEQUENCE_OFFSET, CONTROL_FLAG_MASK,
    LAST_OFFSET_DELTA_OFFSET, LENGTH_OFFSET, LOG_OVERHEAD, MAX_TIMESTAMP_OFFSET,
    PRODUCER_EPOCH_OFFSET, PRODUCER_ID_OFFSET, RECORD_BATCH_OVERHEAD, TRANSACTIONAL_FLAG_MASK,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The suffix of a cleaned segment's files before the swap starts.
pub const CLEANED_SUFFIX: &str = ".cleaned";
/// The suffix of a cleaned segment's files while the swap is under way.
pub const SWAP_SUFFIX: &str = ".swap";

/// Kafka's `RecordBatch.NO_TIMESTAMP`.
pub const NO_TIMESTAMP: i64 = -1;

/// The file name of a segment file: the base offset as 20 digits plus `suffix`.
pub fn file_name(base_offset: i64, suffix: &str) -> String {
    format!("{base_offset:020}{suffix}")
}

/// The smallest a stored batch can be: its header with no records.
const MIN_BATCH_SIZE: usize = RECORD_BATCH_OVERHEAD;

/// What an append writes for one batch: the (possibly rewritten) header and the untouched rest.
/// The header is a copy (61 bytes), so a leader's rewrite needs no buffer of its own.
#[derive(Debug, Clone, Copy)]
pub struct BatchToAppend<'a> {
    pub header: [u8; RECORD_BATCH_OVERHEAD],
    pub body: &'a [u8],
    pub last_offset: i64,
    pub max_timestamp: i64,
}

impl BatchToAppend<'_> {
    pub fn size(&self) -> usize {
        self.header.len() + self.body.len()
    }
}

/// Kafka's index upkeep on append (`LogSegment.append`), one batch at a time: the batch that
/// finds more than `index.interval.bytes` appended since the last entry gets an entry at its
/// position, for its last offset, with the largest timestamp so far.
#[derive(Debug, Clone, Copy)]
struct IndexPlan {
    interval: u64,
    position: u64,
    since_last_entry: u64,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
}

/// One planned entry of both indexes.
#[derive(Debug, Clone, Copy)]
struct IndexEntries {
    offset: i64,
    position: u32,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
}

impl IndexPlan {
    fn step(&mut self, b: &BatchToAppend<'_>) -> Option<IndexEntries> {
        if b.max_timestamp > self.max_timestamp {
            self.max_timestamp = b.max_timestamp;
            self.offset_of_max_timestamp = b.last_offset;
        }
        let entry = (self.since_last_entry > self.interval).then(|| {
            self.since_last_entry = 0;
            IndexEntries {
                offset: b.last_offset,
                position: self.position as u32,
                max_timestamp: self.max_timestamp,
                offset_of_max_timestamp: self.offset_of_max_timestamp,
            }
        });
        self.position += b.size() as u64;
        self.since_last_entry += b.size() as u64;
        entry
    }
}

/// The header bytes a walk through the batches reads: up to maxTimestamp.
const HEADER_FIELDS: usize = BASE_SEQUENCE_OFFSET + 4;
/// The most a walk reads at once.
const HEADER_CHUNK: usize = 64 << 10;
/// Batches smaller than this are walked a chunk at a time; from this size on a header at a time,
/// as copying the bytes between headers costs more than a read (~0.5 us, ~10 GB/s here).
const SMALL_BATCH: u64 = 4 << 10;

/// A walk forward through a segment's batch headers, reading them a chunk at a time (up to
/// 64 KiB, never past the walk's horizon) while batches are small, so that 1 MiB of 1 KiB
/// batches takes 16 reads rather than 1000, and a header at a time once they are large. The
/// first read is at most 4 KiB, not knowing yet which.
#[derive(Debug)]
struct HeaderWalk {
    /// File bytes from `start`.
    chunk: Vec<u8>,
    start: u64,
    /// How far the caller expects to walk: a read stops there, but takes at least a header.
    horizon: u64,
    /// The most the next read takes.
    max_read: usize,
}

impl HeaderWalk {
    fn new(horizon: u64) -> HeaderWalk {
        HeaderWalk {
            chunk: Vec::new(),
            start: 0,
            horizon,
            max_read: SMALL_BATCH as usize,
        }
    }

    /// Where the header at `position` is in the chunk, if all of it is there.
    fn header_in_chunk(&self, position: u64) -> Option<usize> {
        let at = usize::try_from(position.checked_sub(self.start)?).ok()?;
        (at + HEADER_FIELDS <= self.chunk.len()).then_some(at)
    }

    /// How much to read at `position` (before the file's end is taken into account).
    fn read_len(&self, position: u64) -> usize {
        let to_horizon = self.horizon.saturating_sub(position) + HEADER_FIELDS as u64;
        to_horizon
            .min(self.max_read as u64)
            .max(HEADER_FIELDS as u64) as usize
    }

    fn saw_batch(&mut self, size: u64) {
        self.max_read = if size < SMALL_BATCH {
            HEADER_CHUNK
        } else {
            HEADER_FIELDS
        };
    }
}

/// A contiguous run of whole batches in a segment file, ready for `sendfile`.
#[derive(Debug, Clone)]
pub struct FileSlice {
    pub file: Arc<dyn LogFile>,
    pub position: u64,
    pub len: u32,
}

impl FileSlice {
    /// Copies the slice into memory (tests, tools, the internal topics' loaders).
    pub fn read_to_vec(&self) -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0; self.len as usize];
        self.file.read_exact_at(&mut buf, self.position)?;
        Ok(buf)
    }
}

/// A segment's open files, taken to be fsynced without the segment ([`LogSegment::files_to_sync`]).
/// The handles stay valid whatever happens to the segment meanwhile (a release, a rename, a
/// deletion): an fsync then still makes what was written durable, or is harmless.
#[derive(Debug, Clone)]
pub struct SegmentFiles {
    log: Arc<dyn LogFile>,
    /// The mapped index files (an index that is cold was flushed when released).
    indexes: Vec<(Arc<std::fs::File>, PathBuf)>,
    /// The `.txnindex`, if the segment has one.
    txn_index: Option<Arc<dyn LogFile>>,
}

impl SegmentFiles {
    /// fsyncs the `.log` file, then the indexes (which writes back what their mappings dirtied).
    pub fn sync(&self) -> Result<()> {
        self.log.sync().at(self.log.path())?;
        for (file, path) in &self.indexes {
            file.sync_data().at(path)?;
        }
        if let Some(f) = &self.txn_index {
            f.sync().at(f.path())?;
        }
        Ok(())
    }
}

/// Where a batch is: its base and last offsets, position and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPosition {
    pub base_offset: i64,
    pub last_offset: i64,
    pub position: u64,
    pub size: u32,
    pub max_timestamp: i64,
    /// The producer fields (-1 when the batch has no producer id), for producer state.
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    /// The batch's attributes (transactional and control flags).
    pub attributes: i16,
}

impl BatchPosition {
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG_MASK != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG_MASK != 0
    }
}

#[derive(Debug)]
pub struct LogSegment {
    fs: Arc<dyn FileSystem>,
    base_offset: i64,
    /// `None` while cold: opened on first use.
    file: Option<Arc<dyn LogFile>>,
    /// Counts the open `.log` descriptor against the log's [`crate::FileBudget`].
    file_token: Option<OpenFile>,
    /// Where the segment's open files are counted (set by its log).
    handles: Option<Arc<LogHandles>>,
    suffix: &'static str,
    /// The `.log` file's path, made once: an append or a read must not format it.
    log_path: PathBuf,
    size: u64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    /// The aborted transactions whose marker is in this segment (`.txnindex`).
    txn_index: TransactionIndex,
    index_interval_bytes: u64,
    bytes_since_last_index_entry: u64,
    max_timestamp_so_far: i64,
    offset_of_max_timestamp_so_far: i64,
    /// The first batch's largest timestamp: what `segment.ms` counts from (Kafka's
    /// `rollingBasedTimestamp`), else the creation time.
    rolling_based_timestamp: Option<i64>,
    created_ms: i64,
}

impl LogSegment {
    fn paths(dir: &Path, base_offset: i64, suffix: &str) -> (PathBuf, PathBuf, PathBuf) {
        (
            dir.join(file_name(base_offset, &format!(".log{suffix}"))),
            dir.join(file_name(base_offset, &format!(".index{suffix}"))),
            dir.join(file_name(base_offset, &format!(".timeindex{suffix}"))),
        )
    }

    fn txn_index_path(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
        dir.join(file_name(base_offset, &format!(".txnindex{suffix}")))
    }

    /// Creates a new, empty segment (its `.log` file is created now, durably named).
    pub fn create(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        base_offset: i64,
        index_interval_bytes: u64,
        max_index_size: u64,
        now_ms: i64,
    ) -> Result<LogSegment> {
        Self::create_with_suffix(
            fs,
            dir,
            base_offset,
            index_interval_bytes,
            max_index_size,
            now_ms,
            "",
        )
    }

    /// Creates a new, empty segment whose three files carry `suffix` after their usual names
    /// (`.cleaned`: the log cleaner's output, no part of the log until renamed by
    /// [`LogSegment::change_suffix`]).
    pub fn create_with_suffix(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        base_offset: i64,
        index_interval_bytes: u64,
        max_index_size: u64,
        now_ms: i64,
        suffix: &'static str,
    ) -> Result<LogSegment> {
        let seg = Self::create_in(
            fs.clone(),
            dir,
            base_offset,
            index_interval_bytes,
            max_index_size,
            now_ms,
            suffix,
        )?;
        fs.sync_dir(dir).at(dir)?;
        Ok(seg)
    }

    /// [`LogSegment::create`] without the fsync of the directory that makes the new files'
    /// names durable: for a caller that creates many logs and then fsyncs each one's directory
    /// once ([`crate::LogManager::create_logs`]), before anything relies on them.
    pub fn create_unsynced(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        base_offset: i64,
        index_interval_bytes: u64,
        max_index_size: u64,
        now_ms: i64,
    ) -> Result<LogSegment> {
        Self::create_in(
            fs,
            dir,
            base_offset,
            index_interval_bytes,
            max_index_size,
            now_ms,
            "",
        )
    }

    fn create_in(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        base_offset: i64,
        index_interval_bytes: u64,
        max_index_size: u64,
        now_ms: i64,
        suffix: &'static str,
    ) -> Result<LogSegment> {
        let (log, idx, tidx) = Self::paths(dir, base_offset, suffix);
        let file = fs.open(&log, true).at(&log)?;
        // Only a file left behind has anything to cut. Truncating even an empty file to 0 marks
        // it on ext4 (auto_da_alloc, for files rewritten by truncate-and-write) to have all its
        // dirty pages written back when it is closed: a segment released or deleted by
        // retention would then start writing out up to a whole segment.
        if file.len().at(&log)? != 0 {
            file.set_len(0).at(&log)?;
        }
        let persistent = fs.persistent_indexes();
        let mut seg = LogSegment {
            fs: fs.clone(),
            base_offset,
            file: Some(file),
            file_token: None,
            handles: None,
            suffix,
            log_path: log,
            size: 0,
            offset_index: OffsetIndex::new(idx, base_offset, max_index_size, persistent),
            time_index: TimeIndex::new(tidx, base_offset, max_index_size, persistent),
            txn_index: TransactionIndex::new(
                fs.clone(),
                Self::txn_index_path(dir, base_offset, suffix),
            ),
            index_interval_bytes,
            bytes_since_last_index_entry: 0,
            max_timestamp_so_far: NO_TIMESTAMP,
            offset_of_max_timestamp_so_far: base_offset,
            rolling_based_timestamp: None,
            created_ms: now_ms,
        };
        seg.offset_index.truncate()?;
        seg.time_index.truncate()?;
        seg.txn_index.reset()?;
        Ok(seg)
    }

    /// Opens an existing segment without reading it (lazy). The caller either trusts it (below
    /// the recovery point, with sane indexes) or calls [`LogSegment::recover`].
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        base_offset: i64,
        index_interval_bytes: u64,
        max_index_size: u64,
        now_ms: i64,
    ) -> Result<LogSegment> {
        let (log, idx, tidx) = Self::paths(dir, base_offset, "");
        let size = fs.file_size(&log).at(&log)?;
        let persistent = fs.persistent_indexes();
        Ok(LogSegment {
            fs: fs.clone(),
            base_offset,
            file: None,
            file_token: None,
            handles: None,
            suffix: "",
            log_path: log,
            size,
            offset_index: OffsetIndex::new(idx, base_offset, max_index_size, persistent),
            time_index: TimeIndex::new(tidx, base_offset, max_index_size, persistent),
            txn_index: TransactionIndex::new(
                fs.clone(),
                Self::txn_index_path(dir, base_offset, ""),
            ),
            index_interval_bytes,
            bytes_since_last_index_entry: 0,
            max_timestamp_so_far: NO_TIMESTAMP,
            offset_of_max_timestamp_so_far: base_offset,
            rolling_based_timestamp: None,
            created_ms: now_ms,
        })
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// The segment's `.txnindex`.
    pub fn txn_index(&self) -> &TransactionIndex {
        &self.txn_index
    }

    /// Bytes in the `.log` file.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The partition directory the segment's files are in (from its `.log` file's path: one
    /// path a segment is kept, not one per use).
    fn dir(&self) -> &Path {
        self.log_path
            .parent()
            .expect("invariant: a segment's file is in its partition's directory")
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn file(&mut self) -> Result<Arc<dyn LogFile>> {
        if let Some(f) = &self.file {
            return Ok(f.clone());
        }
        let f = self.fs.open(&self.log_path, false).at(&self.log_path)?;
        self.file = Some(f.clone());
        self.file_token = self.handles.as_ref().map(LogHandles::open_file);
        Ok(f)
    }

    /// Counts this segment's open files (its `.log` descriptor, its index maps) against a log's
    /// share of the node's [`crate::FileBudget`] from now on, those open now included.
    pub fn set_handles(&mut self, handles: Arc<LogHandles>) {
        if self.file.is_some() {
            self.file_token = Some(handles.open_file());
        }
        self.offset_index.set_handles(handles.clone());
        self.time_index.set_handles(handles.clone());
        self.handles = Some(handles);
    }

    /// Whether the segment holds any file or mapping open now.
    pub fn is_open(&self) -> bool {
        self.file.is_some() || self.offset_index.is_mapped() || self.time_index.is_mapped()
    }

    pub fn max_timestamp_so_far(&self) -> i64 {
        self.max_timestamp_so_far
    }

    /// Closes the file handle and unmaps the indexes; the next use reopens them.
    pub fn release(&mut self) -> Result<()> {
        self.file = None;
        self.file_token = None;
        self.offset_index.release()?;
        self.time_index.release()
    }

    /// Whether appending `size` bytes of batches up to `last_offset` must first roll: the segment
    /// would pass `segment.bytes`, an index is full, the offset would not fit the index's 32-bit
    /// relative offset, or `segment.ms` has passed (Kafka's `shouldRoll`).
    pub fn should_roll(
        &mut self,
        size: u64,
        max_timestamp: i64,
        last_offset: i64,
        segment_bytes: u64,
        segment_ms: i64,
        now_ms: i64,
    ) -> Result<bool> {
        if self.size == 0 {
            return Ok(false);
        }
        if self.rolling_based_timestamp.is_none() {
            // After a restart: the first batch's largest timestamp, as Kafka loads it.
            self.rolling_based_timestamp = self.batch_at(0)?.map(|b| b.max_timestamp);
        }
        let waited = match self.rolling_based_timestamp {
            Some(t) if max_timestamp >= 0 => max_timestamp - t,
            _ => now_ms - self.created_ms,
        };
        Ok(self.size > segment_bytes.saturating_sub(size)
            || waited > segment_ms
            || self.offset_index.is_full()?
            || self.time_index.is_full()?
            || !self.offset_index.can_append_offset(last_offset))
    }

    /// Appends batches (their offsets already assigned) at the end of the file, adding index
    /// entries every `index.interval.bytes`.
    pub fn append(&mut self, batches: &[BatchToAppend<'_>]) -> Result<()> {
        let file = self.file()?;
        // Index entries are planned, and their space reserved, before the log is written: a full
        // disk must fail before the log has the batches. Planned twice (counted now, added after
        // the write) rather than collected: an append allocates nothing it can do without.
        let mut plan = self.index_plan();
        let entries = batches.iter().filter(|b| plan.step(b).is_some()).count();
        if entries > 0 {
            self.offset_index.reserve(entries)?;
            self.time_index.reserve(entries)?;
        }
        let written = match batches {
            [b] => file.write_all_at(&[&b.header[..], b.body], self.size),
            _ => {
                let parts: Vec<&[u8]> = batches
                    .iter()
                    .flat_map(|b| [&b.header[..], b.body])
                    .collect();
                file.write_all_at(&parts, self.size)
            }
        };
        written.map_err(|e| {
            // Leave no partial batch behind: the log must stay consistent on a full disk.
            let _ = file.set_len(self.size);
            StorageError::Io {
                path: self.log_path.clone(),
                source: e,
            }
        })?;
        let mut plan = self.index_plan();
        for b in batches {
            if let Some(e) = plan.step(b) {
                self.offset_index.append(e.offset, e.position)?;
                self.time_index
                    .maybe_append(e.max_timestamp, e.offset_of_max_timestamp)?;
            }
        }
        if self.rolling_based_timestamp.is_none() {
            if let Some(b) = batches.first() {
                self.rolling_based_timestamp = Some(b.max_timestamp);
            }
        }
        self.size = plan.position;
        self.bytes_since_last_index_entry = plan.since_last_entry;
        self.max_timestamp_so_far = plan.max_timestamp;
        self.offset_of_max_timestamp_so_far = plan.offset_of_max_timestamp;
        Ok(())
    }

    /// Where the index entries of the next appended batches go, from the segment's state now.
    fn index_plan(&self) -> IndexPlan {
        IndexPlan {
            interval: self.index_interval_bytes,
            position: self.size,
            since_last_entry: self.bytes_since_last_index_entry,
            max_timestamp: self.max_timestamp_so_far,
            offset_of_max_timestamp: self.offset_of_max_timestamp_so_far,
        }
    }

    /// Reads the header fields of the batch at `position`, or `None` at the end of the file or
    /// before a partial header.
    fn batch_at(&mut self, position: u64) -> Result<Option<BatchPosition>> {
        self.next_batch(&mut HeaderWalk::new(position), position)
    }

    /// The batch at `position` for a walk through the file: its header comes from the walk's
    /// last chunk when that holds it, else from a new read.
    fn next_batch(
        &mut self,
        walk: &mut HeaderWalk,
        position: u64,
    ) -> Result<Option<BatchPosition>> {
        if position + MIN_BATCH_SIZE as u64 > self.size {
            return Ok(None);
        }
        let at = match walk.header_in_chunk(position) {
            Some(at) => at,
            None => {
                let file = self.file()?;
                // At least the header (MIN_BATCH_SIZE bytes remain), at most to the file's end.
                let len = walk.read_len(position).min((self.size - position) as usize);
                walk.chunk.resize(len, 0);
                file.read_exact_at(&mut walk.chunk, position)
                    .at(&self.log_path)?;
                walk.start = position;
                0
            }
        };
        let h = &walk.chunk[at..at + HEADER_FIELDS];
        let base_offset = i64::from_be_bytes(h[..8].try_into().expect("invariant: 8 bytes"));
        let length = i32::from_be_bytes(
            h[LENGTH_OFFSET..LENGTH_OFFSET + 4]
                .try_into()
                .expect("invariant: 4 bytes"),
        );
        let delta = i32::from_be_bytes(
            h[LAST_OFFSET_DELTA_OFFSET..LAST_OFFSET_DELTA_OFFSET + 4]
                .try_into()
                .expect("invariant: 4 bytes"),
        );
        let max_timestamp = i64::from_be_bytes(
            h[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8]
                .try_into()
                .expect("invariant: 8 bytes"),
        );
        let producer_id = i64::from_be_bytes(
            h[PRODUCER_ID_OFFSET..PRODUCER_ID_OFFSET + 8]
                .try_into()
                .expect("invariant: 8 bytes"),
        );
        let producer_epoch =
            i16::from_be_bytes([h[PRODUCER_EPOCH_OFFSET], h[PRODUCER_EPOCH_OFFSET + 1]]);
        let base_sequence = i32::from_be_bytes(
            h[BASE_SEQUENCE_OFFSET..BASE_SEQUENCE_OFFSET + 4]
                .try_into()
                .expect("invariant: 4 bytes"),
        );
        let size = LOG_OVERHEAD as i64 + i64::from(length);
        if length < 0 || size < MIN_BATCH_SIZE as i64 || position + size as u64 > self.size {
            return Err(StorageError::CorruptFile {
                path: self.log_path.clone(),
                what: format!("batch at position {position} has invalid length {length}"),
            });
        }
        let attributes = i16::from_be_bytes([h[ATTRIBUTES_OFFSET], h[ATTRIBUTES_OFFSET + 1]]);
        walk.saw_batch(size as u64);
        Ok(Some(BatchPosition {
            base_offset,
            last_offset: base_offset + i64::from(delta),
            position,
            size: size as u32,
            max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
            attributes,
        }))
    }

    /// The first batch whose last offset is at least `offset`, searching from the index's hint
    /// (Kafka's `translateOffset`).
    pub fn translate_offset(&mut self, offset: i64) -> Result<Option<BatchPosition>> {
        let start = u64::from(self.offset_index.lookup(offset)?.position);
        // The offset is within about an index interval of its entry.
        let mut walk = HeaderWalk::new(start + self.index_interval_bytes);
        self.translate_offset_in(&mut walk, start, offset)
    }

    fn translate_offset_in(
        &mut self,
        walk: &mut HeaderWalk,
        start: u64,
        offset: i64,
    ) -> Result<Option<BatchPosition>> {
        let mut pos = start;
        while let Some(b) = self.next_batch(walk, pos)? {
            if b.last_offset >= offset {
                return Ok(Some(b));
            }
            pos += u64::from(b.size);
        }
        Ok(None)
    }

    /// Whole batches from the one holding `start_offset`: at most `max_bytes` (but the first
    /// batch whole when `min_one_batch`, so a consumer never gets stuck), none whose base offset
    /// is at or above `max_offset`.
    pub fn read(
        &mut self,
        start_offset: i64,
        max_bytes: u64,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<Option<(BatchPosition, FileSlice)>> {
        let start = u64::from(self.offset_index.lookup(start_offset)?.position);
        let mut walk = HeaderWalk::new(start + self.index_interval_bytes);
        let Some(first) = self.translate_offset_in(&mut walk, start, start_offset)? else {
            return Ok(None);
        };
        // The headers up to max_bytes from the first batch, and the one after (where it stops).
        walk.horizon = first.position.saturating_add(max_bytes);
        let mut len: u64 = 0;
        let mut pos = first.position;
        while let Some(b) = self.next_batch(&mut walk, pos)? {
            if b.base_offset >= max_offset {
                break;
            }
            let fits = len + u64::from(b.size) <= max_bytes;
            if !fits && !(len == 0 && min_one_batch) {
                break;
            }
            len += u64::from(b.size);
            pos += u64::from(b.size);
        }
        Ok(Some((
            first,
            FileSlice {
                file: self.file()?,
                position: first.position,
                len: len as u32,
            },
        )))
    }

    /// Every batch from `position` on (used by recovery, truncation and timestamp search).
    pub fn batches_from(&mut self, mut position: u64) -> Result<Vec<BatchPosition>> {
        let mut out = Vec::new();
        let mut walk = HeaderWalk::new(self.size);
        while let Some(b) = self.next_batch(&mut walk, position)? {
            position += u64::from(b.size);
            out.push(b);
        }
        Ok(out)
    }

    /// Reads the whole batch at `b` into memory.
    pub fn read_batch(&mut self, b: &BatchPosition) -> Result<RecordBatch> {
        let mut buf = vec![0; b.size as usize];
        self.file()?
            .read_exact_at(&mut buf, b.position)
            .at(&self.log_path)?;
        RecordBatch::parse(buf.into()).map_err(|e| StorageError::CorruptFile {
            path: self.log_path.clone(),
            what: e.to_string(),
        })
    }

    /// The next offset after the segment's last batch, or its base offset when empty.
    pub fn read_next_offset(&mut self) -> Result<i64> {
        let hint = self.offset_index.last_offset()?;
        let start = u64::from(self.offset_index.lookup(hint)?.position);
        let mut next = self.base_offset;
        let mut pos = start;
        let mut walk = HeaderWalk::new(self.size);
        while let Some(b) = self.next_batch(&mut walk, pos)? {
            next = b.last_offset + 1;
            pos += u64::from(b.size);
        }
        Ok(next)
    }

    /// Rescans the whole segment: validates every batch (magic, CRC, offsets increasing),
    /// truncates at the first invalid or torn one, and rebuilds both indexes. Returns the bytes
    /// truncated. The indexes are trimmed to their entries unless `active` (the log's last
    /// segment, whose indexes the log keeps at full size to append to).
    pub fn recover(
        &mut self,
        max_batch_size: usize,
        active: bool,
        epochs: &mut LeaderEpochFileCache,
    ) -> Result<u64> {
        // Kafka's reset(): empty indexes at their full size, so a denser rebuild than what a
        // trimmed (closed) index held still fits, and all zeros: nothing of the old files (a
        // partial entry at the end of a cut one, junk) is left after the rebuilt entries.
        self.offset_index.reset()?;
        self.time_index.reset()?;
        let file = self.file()?;
        let path = self.log_path.clone();
        let file_len = file.len().at(&path)?;
        self.size = file_len;
        self.bytes_since_last_index_entry = 0;
        self.max_timestamp_so_far = NO_TIMESTAMP;
        self.offset_of_max_timestamp_so_far = self.base_offset;
        self.rolling_based_timestamp = None;
        let mut pos = 0u64;
        let mut prev_last = self.base_offset - 1;
        // The file is read a chunk at a time and each batch parsed from its chunk without a
        // copy (it was a read of the header and another of the batch, then a copy: two system
        // calls and two copies a batch). Lengths are checked here: a bad one ends the scan.
        let mut chunks = SegmentBatches::of_file(file.clone(), file_len);
        while pos + RECORD_BATCH_OVERHEAD as u64 <= file_len {
            let header = chunks.bytes(pos, RECORD_BATCH_OVERHEAD)?;
            let length = i32::from_be_bytes(
                header[LENGTH_OFFSET..LENGTH_OFFSET + 4]
                    .try_into()
                    .expect("invariant: 4 bytes"),
            );
            let size = LOG_OVERHEAD as i64 + i64::from(length);
            if size < MIN_BATCH_SIZE as i64
                || size as u64 > file_len - pos
                || size as u64 > max_batch_size.max(MIN_BATCH_SIZE) as u64
            {
                break;
            }
            let bytes = chunks.bytes(pos, size as usize)?;
            let Ok(batch) = RecordBatch::parse(bytes) else {
                break;
            };
            if batch.ensure_valid().is_err()
                || batch.base_offset() <= prev_last
                || batch.last_offset() < batch.base_offset()
                || !self.offset_index.can_append_offset(batch.last_offset())
            {
                break;
            }
            if batch.max_timestamp() > self.max_timestamp_so_far {
                self.max_timestamp_so_far = batch.max_timestamp();
                self.offset_of_max_timestamp_so_far = batch.last_offset();
            }
            if self.rolling_based_timestamp.is_none() {
                self.rolling_based_timestamp = Some(batch.max_timestamp());
            }
            // As Kafka's recover: a batch of a newer epoch than the cache knows starts that
            // epoch (its entry may not have been written before the crash).
            let epoch = batch.partition_leader_epoch();
            if epoch >= 0 && epochs.latest_epoch().is_none_or(|e| epoch > e) {
                epochs.assign_unflushed(epoch, batch.base_offset())?;
            }
            if self.bytes_since_last_index_entry > self.index_interval_bytes {
                self.offset_index.append(batch.last_offset(), pos as u32)?;
                self.time_index.maybe_append(
                    self.max_timestamp_so_far,
                    self.offset_of_max_timestamp_so_far,
                )?;
                self.bytes_since_last_index_entry = 0;
            }
            self.bytes_since_last_index_entry += size as u64;
            prev_last = batch.last_offset();
            pos += size as u64;
        }
        let truncated = file_len - pos;
        if truncated > 0 {
            file.set_len(pos).at(&path)?;
            self.size = pos;
        }
        // As Kafka's recover: the largest timestamp gets its time-index entry, as a roll or a
        // clean close gives it, so that the next start, trusting the index, knows it; then, for a
        // closed segment, both indexes are trimmed (the active one keeps them at full size).
        self.time_index.maybe_append(
            self.max_timestamp_so_far,
            self.offset_of_max_timestamp_so_far,
        )?;
        if !active {
            self.offset_index.trim_to_valid_size()?;
            self.time_index.trim_to_valid_size()?;
        }
        Ok(truncated)
    }

    /// Loads the state a trusted segment needs for appending (the largest timestamp, from the
    /// time index's last entry, as Kafka does) and checks the indexes' sanity, without mapping
    /// them if they were not used yet. A missing index is an error (recovery rebuilds it).
    pub fn load_trusted(&mut self) -> Result<()> {
        self.offset_index.sanity_check()?;
        self.time_index.sanity_check()?;
        let last: TimestampOffset = self.time_index.last_entry()?;
        if last.timestamp > self.max_timestamp_so_far {
            self.max_timestamp_so_far = last.timestamp;
            self.offset_of_max_timestamp_so_far = last.offset;
        }
        Ok(())
    }

    /// Removes every batch holding offsets at or above `offset` (the batch containing `offset`
    /// goes whole). Returns the bytes removed.
    pub fn truncate_to(&mut self, offset: i64) -> Result<u64> {
        let Some(b) = self.translate_offset(offset)? else {
            return Ok(0);
        };
        let position = b.position;
        self.offset_index.truncate_to(offset)?;
        self.time_index.truncate_to(offset)?;
        self.txn_index.truncate_to(offset)?;
        let file = self.file()?;
        file.set_len(position).at(&self.log_path)?;
        let removed = self.size - position;
        self.size = position;
        self.bytes_since_last_index_entry = 0;
        if self.size == 0 {
            self.rolling_based_timestamp = None;
        }
        // The largest timestamp may have been truncated away: recompute from what is left.
        self.max_timestamp_so_far = NO_TIMESTAMP;
        self.offset_of_max_timestamp_so_far = self.base_offset;
        for b in self.batches_from(0)? {
            if b.max_timestamp > self.max_timestamp_so_far {
                self.max_timestamp_so_far = b.max_timestamp;
                self.offset_of_max_timestamp_so_far = b.last_offset;
            }
        }
        Ok(removed)
    }

    /// The first batch holding a record with a timestamp at or above `timestamp` and an offset at
    /// or above `start_offset`, found through the time index (the caller looks inside it).
    pub fn find_batch_by_timestamp(
        &mut self,
        timestamp: i64,
        start_offset: i64,
    ) -> Result<Option<BatchPosition>> {
        let hint = self.time_index.lookup(timestamp)?;
        let from = u64::from(
            self.offset_index
                .lookup(hint.offset.max(start_offset))?
                .position,
        );
        let mut walk = HeaderWalk::new(self.size);
        let mut pos = from;
        while let Some(b) = self.next_batch(&mut walk, pos)? {
            if b.max_timestamp >= timestamp && b.last_offset >= start_offset {
                return Ok(Some(b));
            }
            pos += u64::from(b.size);
        }
        Ok(None)
    }

    /// Called when the segment stops being the active one: a last time-index entry for the
    /// largest timestamp, then both indexes trimmed to their real size. Nothing is fsynced here:
    /// the log flushes a rolled segment later, off the append path ([`SegmentFiles`]).
    pub fn on_become_inactive(&mut self) -> Result<()> {
        self.time_index.maybe_append(
            self.max_timestamp_so_far,
            self.offset_of_max_timestamp_so_far,
        )?;
        self.offset_index.trim_to_valid_size()?;
        self.time_index.trim_to_valid_size()
    }

    /// fsyncs the log file and the indexes.
    pub fn flush(&mut self) -> Result<()> {
        self.files_to_sync()?.sync()
    }

    /// The segment's open files, to fsync later without the segment (and so without the log's
    /// lock): what [`LogSegment::flush`] syncs, taken now.
    pub fn files_to_sync(&mut self) -> Result<SegmentFiles> {
        let mut indexes = Vec::new();
        for (f, p) in [
            (self.offset_index.file_to_sync()?, self.offset_index.path()),
            (self.time_index.file_to_sync()?, self.time_index.path()),
        ] {
            if let Some(f) = f {
                indexes.push((f, p.to_path_buf()));
            }
        }
        Ok(SegmentFiles {
            log: self.file()?,
            indexes,
            txn_index: self.txn_index.file_to_sync()?,
        })
    }

    /// Trims the indexes and releases everything (a clean close).
    pub fn close(&mut self) -> Result<()> {
        // As Kafka's close: the largest timestamp gets its time-index entry first.
        if self.size > 0 {
            self.time_index.maybe_append(
                self.max_timestamp_so_far,
                self.offset_of_max_timestamp_so_far,
            )?;
        }
        self.offset_index.trim_to_valid_size()?;
        self.time_index.trim_to_valid_size()?;
        self.offset_index.flush()?;
        self.time_index.flush()?;
        self.release()
    }

    /// [`LogSegment::close`] without any fsync: the indexes trimmed (an index already trimmed is
    /// not even mapped) and everything released, for a shutdown that then syncs the whole file
    /// system ([`crate::fs::FileSystem::sync_filesystem`]).
    pub fn close_unsynced(&mut self) -> Result<()> {
        if self.size > 0 {
            self.time_index.maybe_append(
                self.max_timestamp_so_far,
                self.offset_of_max_timestamp_so_far,
            )?;
        }
        self.offset_index.close_unsynced()?;
        self.time_index.close_unsynced()?;
        self.file = None;
        self.file_token = None;
        Ok(())
    }

    /// Renames the segment's files to `<name>.deleted` (Kafka's first step of deletion: readers
    /// holding the file keep reading; removal happens later).
    pub fn mark_deleted(&mut self) -> Result<()> {
        self.change_suffix(".deleted")
    }

    /// Renames the segment's files from their current suffix to `suffix` (`""`, `.cleaned`,
    /// `.swap`, `.deleted`), the `.log` file first, and makes the renames durable. The files
    /// are released first; open handles (a reader's file slice) keep reading.
    pub fn change_suffix(&mut self, suffix: &'static str) -> Result<()> {
        self.release()?;
        let dir = self.dir().to_path_buf();
        let (log, idx, tidx) = Self::paths(&dir, self.base_offset, self.suffix);
        let (to_log, to_idx, to_tidx) = Self::paths(&dir, self.base_offset, suffix);
        for (from, to) in [(&log, &to_log), (&idx, &to_idx), (&tidx, &to_tidx)] {
            if self.fs.exists(from) {
                self.fs.rename(from, to).at(from)?;
            }
        }
        self.offset_index.rename_to(to_idx)?;
        self.time_index.rename_to(to_tidx)?;
        self.txn_index
            .rename_to(Self::txn_index_path(&dir, self.base_offset, suffix))?;
        self.suffix = suffix;
        self.log_path = to_log;
        self.fs.sync_dir(&dir).at(&dir)
    }

    /// Removes the segment's files (normally after [`LogSegment::mark_deleted`]).
    pub fn delete_files(mut self) -> Result<()> {
        self.release()?;
        let (log, idx, tidx) = Self::paths(self.dir(), self.base_offset, self.suffix);
        let txn = self.txn_index.path().to_path_buf();
        for p in [&log, &idx, &tidx, &txn] {
            if self.fs.exists(p) {
                self.fs.remove_file(p).at(p)?;
            }
        }
        Ok(())
    }

    /// Makes an index that was trimmed (a closed segment) ready to take entries again: the
    /// segment is the active one after a restart.
    pub fn make_active(&mut self, max_index_size: u64) -> Result<()> {
        self.offset_index.resize(max_index_size)?;
        self.time_index.resize(max_index_size)
    }
}
