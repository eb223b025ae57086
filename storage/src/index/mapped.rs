//! `Index<E>`: what the two indexes share, written once — the file and its mapping (made on
//! first use, dropped on release), the entry count, binary search, truncation, trimming and
//! resizing, and fallocate(2) ahead of the next entry. The entry formats are in the parent module.

use super::index_entry::IndexEntry;
use crate::error::{IoContext, Result, StorageError};
use crate::file_budget::{LogHandles, OpenFile};
use memmap2::MmapMut;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

/// How far ahead of the next entry fallocate(2) backs the file (a multiple of any page size).
pub(super) const PREALLOCATE_STEP: u64 = 64 * 1024;
/// Entries a cold persistent index takes with pwrite(2) before it is mapped. Recovery rebuilds
/// one or two for most segments, and the first appends after a restart are as few: a map, and
/// later its unmap (the address-space lock and, on unmap, a TLB shootdown on every core), cost
/// more than that many writes. Past it, appends go through the mapping.
const COLD_WRITES: usize = 4;
/// Kafka's "warm section": lookups first check the last 8 KiB of entries, which appends and
/// readers near the log end keep in the page cache, so they fault in no cold page.
const WARM_BYTES: usize = 8192;

/// The logic both indexes share. Holds the file and mapping only while hot.
#[derive(Debug)]
pub(super) struct Index<E> {
    pub(super) path: PathBuf,
    pub(super) base_offset: i64,
    pub(super) max_index_size: u64,
    persistent: bool,
    /// What the first use learnt, kept while cold. `None`: never used.
    state: Option<State<E>>,
    /// The mapping and the open file, while hot.
    hot: Option<Hot>,
    /// Where a hot index counts itself (one open file: its descriptor and mapping).
    handles: Option<Arc<LogHandles>>,
    /// The file's length while it differs from [`State::length`]: a resize of a cold index (the
    /// active segment's, at load) waits for the next mapping, as in Kafka's `LazyIndex`. A node
    /// restarted with many partitions maps, extends and unmaps none of the indexes that get no
    /// append before they are closed again.
    on_disk: Option<u64>,
}

#[derive(Debug)]
pub(super) struct State<E> {
    pub(super) entries: usize,
    /// Bytes in the file (or the anonymous mapping).
    pub(super) length: u64,
    pub(super) last: Option<E>,
    /// The file may have writes not yet durable while cold (released dirty, or reset): the next
    /// [`Index::flush`] (or [`Index::file_to_sync`]) opens it to fsync them. A release does not:
    /// recovery rebuilds an index above the recovery point, so only the flush that moves the
    /// recovery point needs it durable — an fsync per index at each release made the recovery
    /// of many logs after a crash wait on one fsync a log.
    pub(super) unsynced: bool,
}

#[derive(Debug)]
struct Hot {
    mmap: MmapMut,
    /// `None` for an anonymous index. Shared so that a flush can fsync it without the index
    /// ([`Index::file_to_sync`]).
    file: Option<Arc<File>>,
    /// The file has real blocks below this byte.
    allocated: u64,
    /// Entries written or zeroed through the mapping since it was mapped or flushed: a release
    /// must fsync first, so that a cold index has nothing to make durable. A change of length
    /// alone (creation at full size, a trim, a reset) does not count: a crash that loses it
    /// leaves a file whose entries are counted as they are after any crash (zeros after the
    /// entries, or a missing file that recovery rebuilds). A clean index is released without a
    /// syscall but munmap and close.
    dirty: bool,
    /// Counts the mapping against the log's [`crate::FileBudget`] while it lives.
    _token: Option<OpenFile>,
}

fn decode_at<E: IndexEntry>(bytes: &[u8], n: usize, base_offset: i64) -> E {
    E::decode(&bytes[n * E::SIZE..(n + 1) * E::SIZE], base_offset)
}

/// The entries of a file that may have been left at full size: the leading entries in order. A
/// first entry of zeros counts only when an entry follows it (a full-size file that never got an
/// entry is all zeros).
fn count_in_order<E: IndexEntry>(bytes: &[u8], base_offset: i64) -> usize {
    let n = bytes.len() / E::SIZE;
    if n == 0 {
        return 0;
    }
    let mut prev: E = decode_at(bytes, 0, base_offset);
    let mut count = 1;
    while count < n {
        let next = decode_at(bytes, count, base_offset);
        if !prev.may_precede(&next) {
            break;
        }
        prev = next;
        count += 1;
    }
    if count == 1 && bytes[..E::SIZE].iter().all(|b| *b == 0) {
        0
    } else {
        count
    }
}

/// Whether the last whole entry is all zeros (never so in a trimmed index, but for a lone first
/// entry).
fn ends_in_zeros<E: IndexEntry>(bytes: &[u8]) -> bool {
    let end = bytes.len() / E::SIZE * E::SIZE;
    end > 0 && bytes[end - E::SIZE..end].iter().all(|b| *b == 0)
}

/// Maps an index file for reading and writing, without read-ahead: entries are appended one
/// at a time and looked up by binary search, and a fault on a file the size of
/// `segment.index.bytes` would otherwise read ahead (zero-fill, for the unwritten part) far
/// more than its page — milliseconds, in the first append to a new segment.
///
/// # Safety
/// As `MmapMut::map_mut`: nothing else may change the file's length or contents while mapped.
unsafe fn map(file: &File) -> io::Result<MmapMut> {
    // SAFETY: the caller's promise.
    let mmap = unsafe { MmapMut::map_mut(file) }?;
    // Only advice: a kernel that refuses it reads ahead as before.
    let _ = mmap.advise(memmap2::Advice::Random);
    Ok(mmap)
}

/// Writes zeros over every range of `file` below `length` that has data (`SEEK_DATA` /
/// `SEEK_HOLE`: the holes of a sparse index read as zeros already). A file system without them
/// reports the whole file as data, which is then all written.
fn zero_allocated(file: &File, length: u64) -> io::Result<()> {
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    let fd = file.as_raw_fd();
    let mut at = 0u64;
    while at < length {
        // SAFETY: plain syscalls on a descriptor we own.
        let data = unsafe { libc::lseek(fd, at as libc::off_t, libc::SEEK_DATA) };
        if data < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENXIO) {
                return Ok(()); // no data from `at` on
            }
            return Err(e);
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
        if hole < 0 {
            return Err(io::Error::last_os_error());
        }
        let (mut from, to) = (data as u64, (hole as u64).min(length));
        while from < to {
            let n = ((to - from) as usize).min(ZEROS.len());
            file.write_all_at(&ZEROS[..n], from)?;
            from += n as u64;
        }
        at = (hole as u64).max(at + 1);
    }
    Ok(())
}

/// Backs `[from, to)` of `file` with real blocks; bytes below `free_from` hold entries.
fn allocate(file: &File, from: u64, to: u64, free_from: u64) -> io::Result<()> {
    loop {
        // SAFETY: a plain syscall on a descriptor we own; mode 0 within the file's length
        // changes neither its contents nor its length.
        let r = unsafe {
            libc::fallocate(
                file.as_raw_fd(),
                0,
                from as libc::off_t,
                (to - from) as libc::off_t,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EOPNOTSUPP) => {
                // No fallocate on this file system: writing zeros over the free part allocates as
                // well, and fails as cleanly on a full disk.
                let start = from.max(free_from);
                if start < to {
                    file.write_all_at(&vec![0; (to - start) as usize], start)?;
                }
                return Ok(());
            }
            _ => return Err(e),
        }
    }
}

impl<E: IndexEntry> Index<E> {
    pub(super) fn new(
        path: PathBuf,
        base_offset: i64,
        max_index_size: u64,
        persistent: bool,
    ) -> Self {
        Index {
            path,
            base_offset,
            max_index_size,
            persistent,
            state: None,
            hot: None,
            handles: None,
            on_disk: None,
        }
    }

    /// Counts this index's mapping against `handles` from now on (a mapping made before is
    /// counted too).
    pub(super) fn set_handles(&mut self, handles: Arc<LogHandles>) {
        if let Some(hot) = &mut self.hot {
            hot._token = Some(handles.open_file());
        }
        self.handles = Some(handles);
    }

    fn token(&self) -> Option<OpenFile> {
        self.handles.as_ref().map(LogHandles::open_file)
    }

    /// The size a new index file gets.
    fn full_size(&self) -> u64 {
        self.max_index_size / E::SIZE as u64 * E::SIZE as u64
    }

    pub(super) fn invalid(&self, what: String) -> StorageError {
        StorageError::InvalidArgument {
            partition: self.path.display().to_string(),
            what,
        }
    }

    pub(super) fn corrupt(&self, what: String) -> StorageError {
        StorageError::CorruptFile {
            path: self.path.clone(),
            what,
        }
    }

    /// Maps the index (creating its file if missing) unless it is mapped already.
    fn open(&mut self) -> Result<()> {
        if self.hot.is_some() {
            return Ok(());
        }
        let full = self.full_size();
        let too_small = || {
            self.invalid(format!(
                "index size {} is smaller than one {}-byte entry",
                self.max_index_size,
                E::SIZE
            ))
        };
        if !self.persistent {
            // Never released, so this is the first use.
            if full == 0 {
                return Err(too_small());
            }
            let mmap = MmapMut::map_anon(full as usize).at(&self.path)?;
            self.state = Some(State {
                entries: 0,
                length: full,
                last: None,
                unsynced: false,
            });
            self.hot = Some(Hot {
                mmap,
                file: None,
                allocated: full,
                dirty: false,
                _token: self.token(),
            });
            return Ok(());
        }
        let (file, created) = self.open_file()?;
        let mut length = file.metadata().at(&self.path)?.len();
        if let (Some(disk), Some(st)) = (self.on_disk, &self.state) {
            // A resize made while cold: the file gets its length now, before it is mapped.
            if disk == length && st.length != length {
                file.set_len(st.length).at(&self.path)?;
                length = st.length;
            }
        }
        self.on_disk = None;
        // SAFETY: the file is this index's alone: nothing else maps, writes or resizes it while
        // it is mapped (`resize` unmaps before changing its length).
        let mmap = unsafe { map(&file) }.at(&self.path)?;
        let entries = match &self.state {
            Some(s) if s.length == length => s.entries,
            _ if created => 0,
            // Left at full size, or truncated after a trim: zeros may follow the entries.
            _ if length >= full || ends_in_zeros::<E>(&mmap) => {
                count_in_order::<E>(&mmap, self.base_offset)
            }
            _ => length as usize / E::SIZE,
        };
        let last = entries
            .checked_sub(1)
            .map(|n| decode_at(&mmap, n, self.base_offset));
        tracing::debug!(path = %self.path.display(), entries, length, created, "mapped index");
        let unsynced = self.state.as_ref().is_some_and(|s| s.unsynced);
        self.state = Some(State {
            entries,
            length,
            last,
            unsynced,
        });
        self.hot = Some(Hot {
            mmap,
            file: Some(Arc::new(file)),
            allocated: 0,
            dirty: false,
            _token: self.token(),
        });
        Ok(())
    }

    /// Opens the file without mapping it, creating it (at full size) if missing; whether it
    /// was created.
    fn open_file(&self) -> Result<(File, bool)> {
        let full = self.full_size();
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        let (file, created) = match options.clone().create_new(true).open(&self.path) {
            Ok(f) => (f, true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                (options.open(&self.path).at(&self.path)?, false)
            }
            Err(e) => return Err(e).at(&self.path),
        };
        if created {
            if full == 0 {
                let _ = std::fs::remove_file(&self.path);
                return Err(self.invalid(format!(
                    "index size {} is smaller than one {}-byte entry",
                    self.max_index_size,
                    E::SIZE
                )));
            }
            file.set_len(full).at(&self.path)?;
        }
        Ok((file, created))
    }

    /// The file of a cold index whose state was learnt from it (or that was reset), opened for
    /// a write without a mapping; never created here. Counted against the log's budget for as
    /// long as the token lives (the caller keeps it beside the file).
    fn open_existing(&self) -> Result<(File, Option<OpenFile>)> {
        let counted = self.token();
        let file = OpenOptions::new()
            .write(true)
            .open(&self.path)
            .at(&self.path)?;
        Ok((file, counted))
    }

    /// Whether mapped now.
    pub(super) fn is_mapped(&self) -> bool {
        self.hot.is_some()
    }

    pub(super) fn state(&mut self) -> Result<&State<E>> {
        if self.state.is_none() {
            self.open()?;
        }
        Ok(self.state.as_ref().expect("invariant: opened"))
    }

    pub(super) fn max_entries(&mut self) -> Result<usize> {
        Ok(self.state()?.length as usize / E::SIZE)
    }

    /// Entry `n` of a mapped index.
    pub(super) fn read(&self, n: usize) -> E {
        let hot = self.hot.as_ref().expect("invariant: mapped");
        decode_at(&hot.mmap, n, self.base_offset)
    }

    pub(super) fn entry(&mut self, n: usize) -> Result<E> {
        self.open()?;
        let entries = self.state()?.entries;
        if n >= entries {
            return Err(self.invalid(format!(
                "entry {n} asked of an index with {entries} entries"
            )));
        }
        Ok(self.read(n))
    }

    /// The number of leading entries for which `pred` holds (it must hold for a prefix).
    pub(super) fn partition_point(&mut self, pred: impl Fn(&E) -> bool) -> Result<usize> {
        self.open()?;
        let n = self.state()?.entries;
        if n == 0 {
            return Ok(0);
        }
        let first_warm = n.saturating_sub(1 + WARM_BYTES / E::SIZE);
        let (mut lo, mut hi) = if pred(&self.read(first_warm)) {
            (first_warm + 1, n)
        } else {
            (0, first_warm)
        };
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if pred(&self.read(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// The entry with the largest key at or below `target`.
    pub(super) fn lookup(&mut self, target: i64) -> Result<Option<E>> {
        // At or past the last entry (as the log end is looked up): known without mapping.
        if let (None, Some(st)) = (&self.hot, &self.state) {
            match st.last {
                None => return Ok(None),
                Some(last) if last.key() <= target => return Ok(Some(last)),
                Some(_) => {}
            }
        }
        let n = self.partition_point(|e| e.key() <= target)?;
        Ok(n.checked_sub(1).map(|n| self.read(n)))
    }

    /// Backs the file with blocks up to byte `end` (at least), 64 KiB at a time.
    fn back(&mut self, end: u64) -> Result<()> {
        self.open()?;
        let st = self.state.as_ref().expect("invariant: opened");
        let hot = self.hot.as_mut().expect("invariant: opened");
        let Some(file) = &hot.file else {
            return Ok(());
        };
        if end <= hot.allocated {
            return Ok(());
        }
        let to = end
            .div_ceil(PREALLOCATE_STEP)
            .saturating_mul(PREALLOCATE_STEP)
            .min(st.length);
        let free_from = (st.entries * E::SIZE) as u64;
        allocate(file, hot.allocated, to, free_from).at(&self.path)?;
        hot.allocated = to;
        Ok(())
    }

    /// Makes sure the next `additional` entries can be written without a disk allocation.
    pub(super) fn reserve(&mut self, additional: usize) -> Result<()> {
        let st = self.state()?;
        let end = ((st.entries + additional) * E::SIZE) as u64;
        let end = end.min(st.length);
        self.back(end)
    }

    /// Writes `e` after the last entry; the caller checked the order.
    pub(super) fn push(&mut self, e: E) -> Result<()> {
        let (entries, max) = (self.state()?.entries, self.max_entries()?);
        if entries >= max {
            return Err(self.invalid(format!(
                "attempt to append to a full index ({entries} entries)"
            )));
        }
        let at = entries * E::SIZE;
        if self.persistent && self.hot.is_none() && entries < COLD_WRITES {
            return self.push_cold(e, at as u64);
        }
        self.back((at + E::SIZE) as u64)?;
        let hot = self.hot.as_mut().expect("invariant: opened");
        e.encode(self.base_offset, &mut hot.mmap[at..at + E::SIZE]);
        hot.dirty = true;
        let st = self.state.as_mut().expect("invariant: opened");
        st.entries += 1;
        st.last = Some(e);
        Ok(())
    }

    /// [`Index::push`] to a cold index, with pwrite(2) at `at` (the end of the entries: only
    /// zeros, or the end of the file, follow).
    fn push_cold(&mut self, e: E, at: u64) -> Result<()> {
        let mut bytes = [0u8; 16];
        let bytes = &mut bytes[..E::SIZE];
        e.encode(self.base_offset, bytes);
        let (file, _counted) = self.open_existing()?;
        file.write_all_at(bytes, at).at(&self.path)?;
        let end = at + E::SIZE as u64;
        let st = self.state.as_mut().expect("invariant: known");
        // A file shorter than the index's length (a growth waiting for the mapping) may have
        // grown by the write.
        if let Some(disk) = self.on_disk.filter(|&d| end > d) {
            debug_assert!(disk <= st.length);
            self.on_disk = (end != st.length).then_some(end);
        }
        st.entries += 1;
        st.last = Some(e);
        st.unsynced = true;
        Ok(())
    }

    /// Keeps the first `n` entries and zeroes the rest, so that a full-size file left by a crash
    /// has nothing stale after its last entry.
    pub(super) fn truncate_to_entries(&mut self, n: usize) -> Result<()> {
        self.open()?;
        let old = self.state()?.entries;
        if n >= old {
            return Ok(());
        }
        let hot = self.hot.as_mut().expect("invariant: opened");
        hot.mmap[n * E::SIZE..old * E::SIZE].fill(0);
        hot.dirty = true;
        let last = n.checked_sub(1).map(|n| self.read(n));
        let st = self.state.as_mut().expect("invariant: opened");
        st.entries = n;
        st.last = last;
        tracing::debug!(path = %self.path.display(), entries = n, "truncated index");
        Ok(())
    }

    /// Removes the entries pointing at `offset` or above.
    pub(super) fn truncate_to(&mut self, offset: i64) -> Result<()> {
        let n = self.partition_point(|e| e.offset() < offset)?;
        self.truncate_to_entries(n)
    }

    /// Changes the file's length to `new_size` rounded down to whole entries.
    pub(super) fn resize(&mut self, new_size: u64) -> Result<()> {
        let rounded = new_size / E::SIZE as u64 * E::SIZE as u64;
        if self.state.as_ref().is_some_and(|s| s.length == rounded) {
            // Already that size (known without mapping it: a reset index).
            return Ok(());
        }
        if self.persistent && self.hot.is_none() {
            if let Some(&State {
                entries, length, ..
            }) = self.state.as_ref()
            {
                let disk = self.on_disk.unwrap_or(length);
                // Only a file of whole entries: a partial entry at its end is dropped by a
                // mapped resize (below).
                if disk.is_multiple_of(E::SIZE as u64) {
                    if rounded < (entries * E::SIZE) as u64 {
                        return Err(self.invalid(format!(
                            "cannot resize an index of {entries} entries to {new_size} bytes"
                        )));
                    }
                    if rounded < disk {
                        // A shrink (the trim at a close) reaches the file now, without a map.
                        let (file, _counted) = self.open_existing()?;
                        file.set_len(rounded).at(&self.path)?;
                    }
                    // A growth waits for the next mapping.
                    self.on_disk = (rounded > disk).then_some(disk);
                    self.state.as_mut().expect("invariant: known").length = rounded;
                    return Ok(());
                }
            }
        }
        self.open()?;
        let (entries, length) = {
            let st = self.state()?;
            (st.entries, st.length)
        };
        if rounded == length {
            return Ok(());
        }
        let used = entries * E::SIZE;
        if rounded < used as u64 {
            return Err(self.invalid(format!(
                "cannot resize an index of {entries} entries to {new_size} bytes"
            )));
        }
        if !self.persistent {
            let mut mmap = MmapMut::map_anon(rounded as usize).at(&self.path)?;
            let hot = self.hot.as_mut().expect("invariant: opened");
            mmap[..used].copy_from_slice(&hot.mmap[..used]);
            hot.mmap = mmap;
            hot.allocated = rounded;
            self.state.as_mut().expect("invariant: opened").length = rounded;
        } else {
            // Never change a file's length under its mapping. On an error below the index is
            // left cold, its state matching the file, and the next use maps it again.
            let Hot {
                mmap,
                file,
                allocated,
                dirty,
                _token,
            } = self.hot.take().expect("invariant: opened");
            drop(mmap);
            let file = file.expect("invariant: a persistent index has a file");
            let whole = length / E::SIZE as u64 * E::SIZE as u64;
            if whole < length && rounded > whole {
                // A partial entry at the end (a file cut or torn mid-entry) is no entry: drop it
                // first, or the longer file would have its bytes in the slot after the entries,
                // where only zeros may be (they would read back as a stale entry).
                file.set_len(whole).at(&self.path)?;
                self.state.as_mut().expect("invariant: opened").length = whole;
            }
            file.set_len(rounded).at(&self.path)?;
            self.state.as_mut().expect("invariant: opened").length = rounded;
            // SAFETY: as in `open`.
            let mmap = unsafe { map(&file) }.at(&self.path)?;
            self.hot = Some(Hot {
                mmap,
                file: Some(file),
                allocated: allocated.min(rounded),
                dirty,
                _token,
            });
        }
        tracing::debug!(path = %self.path.display(), entries, length = rounded, "resized index");
        Ok(())
    }

    /// Removes every entry and leaves the file at its full size, all zeros (Kafka's `reset`:
    /// truncate, then resize to `segment.index.bytes`), for recovery to rebuild into. Whatever the
    /// file held goes: entries, a partial entry at its end, junk after the entries counted.
    pub(super) fn reset(&mut self) -> Result<()> {
        self.on_disk = None;
        let full = self.full_size();
        if !self.persistent {
            self.open()?;
            let mmap = MmapMut::map_anon(full as usize).at(&self.path)?;
            let hot = self.hot.as_mut().expect("invariant: opened");
            hot.mmap = mmap;
            hot.allocated = full;
        } else {
            // As in `resize`: never change the length under the mapping. The index is left cold
            // (as Kafka's LazyIndex): recovery maps it only if it writes an entry, and most
            // segments recovered after a crash are small active ones that need none.
            let file = match self.hot.take() {
                Some(Hot { mmap, file, .. }) => {
                    drop(mmap);
                    file.expect("invariant: a persistent index has a file")
                }
                None => Arc::new(self.open_file()?.0),
            };
            let length = file.metadata().at(&self.path)?.len();
            // On an error below, the state matches the file as far as it is known: no entries
            // counted, and not known durable.
            self.state = Some(State {
                entries: 0,
                length,
                last: None,
                unsynced: true,
            });
            // Zeros over every allocated range, then the full length: the whole file reads as
            // zeros. Not a cut to nothing and a re-extension: on a file system mounted with
            // `discard` that frees the blocks with a synchronous discard, ~3 ms an index, which
            // made the recovery of 10,000 logs after a crash take over a minute.
            zero_allocated(&file, length).at(&self.path)?;
            if length != full {
                file.set_len(full).at(&self.path)?;
            }
        }
        let unsynced = self.persistent;
        *self.state.as_mut().expect("invariant: opened") = State {
            entries: 0,
            length: full,
            last: None,
            unsynced,
        };
        tracing::debug!(path = %self.path.display(), length = full, "reset index");
        Ok(())
    }

    pub(super) fn trim_to_valid_size(&mut self) -> Result<()> {
        let used = (self.state()?.entries * E::SIZE) as u64;
        self.resize(used)
    }

    pub(super) fn flush(&mut self) -> Result<()> {
        if let Some(file) = self.file_to_sync()? {
            // fdatasync writes back the pages dirtied through the mapping (msync(MS_SYNC) is the
            // same call on Linux) and the file's length.
            file.sync_data().at(&self.path)?;
            if let Some(hot) = &mut self.hot {
                hot.dirty = false;
            }
            if let Some(st) = &mut self.state {
                st.unsynced = false;
            }
        }
        Ok(())
    }

    /// The file of a persistent index, for an fsync made later without the index (it writes back
    /// what the mapping dirtied, as [`Index::flush`]): the mapped one, or for a cold index with
    /// writes not known durable the file opened again. `None` when there is nothing to make
    /// durable: anonymous, never used, or cold and synced.
    pub(super) fn file_to_sync(&self) -> Result<Option<Arc<File>>> {
        if let Some(hot) = &self.hot {
            return Ok(hot.file.clone());
        }
        if self.persistent && self.state.as_ref().is_some_and(|s| s.unsynced) {
            let file = File::open(&self.path).at(&self.path)?;
            return Ok(Some(Arc::new(file)));
        }
        Ok(None)
    }

    /// Unmaps and closes the file without an fsync; what the mapping dirtied is synced by the
    /// next flush ([`State::unsynced`]).
    pub(super) fn release(&mut self) -> Result<()> {
        if self.persistent {
            if let Some(hot) = self.hot.take() {
                if hot.dirty {
                    if let Some(st) = &mut self.state {
                        st.unsynced = true;
                    }
                }
            }
        }
        Ok(())
    }

    /// Unmaps and closes without an fsync: for a shutdown that then syncs the whole file system
    /// ([`crate::fs::FileSystem::sync_filesystem`]). Until that sync, a cold index may have
    /// unwritten entries.
    pub(super) fn release_unsynced(&mut self) {
        if self.persistent {
            self.hot = None;
        }
    }

    /// Trims the file to its entries and unmaps it, without an fsync (as `release_unsynced`).
    pub(super) fn close_unsynced(&mut self) -> Result<()> {
        if self.state.is_none() {
            return Ok(());
        }
        let trimmed = self
            .state
            .as_ref()
            .is_some_and(|s| s.length == (s.entries * E::SIZE) as u64);
        if !trimmed {
            self.trim_to_valid_size()?;
        }
        self.release_unsynced();
        Ok(())
    }

    pub(super) fn close(&mut self) -> Result<()> {
        if self.state.is_none() {
            return Ok(());
        }
        self.trim_to_valid_size()?;
        self.flush()?;
        self.release()
    }

    pub(super) fn rename_to(&mut self, new_path: PathBuf) -> Result<()> {
        if self.persistent {
            if let Err(e) = std::fs::rename(&self.path, &new_path) {
                // As Kafka's LazyIndex: a file already moved (or never created) is no error.
                if e.kind() != io::ErrorKind::NotFound || self.path.exists() {
                    return Err(e).at(&self.path);
                }
            }
        }
        self.path = new_path;
        Ok(())
    }

    pub(super) fn delete(self) -> Result<bool> {
        let Index {
            path,
            persistent,
            hot,
            ..
        } = self;
        drop(hot);
        if !persistent {
            return Ok(false);
        }
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).at(&path),
        }
    }

    /// Kafka's checks, plus the last two entries in order (which catches a full-size file taken
    /// for a trimmed one: zeros after the entries). Returns the first entry, if any.
    ///
    /// An index not yet used is checked without mapping it ([`Index::probe`]): a restart of a
    /// node trusts most of its segments this way, and a map and unmap per index (each taking the
    /// process's address-space lock) was most of what loading them cost.
    pub(super) fn sanity_check(&mut self) -> Result<Option<E>> {
        let ends = match self.probe()? {
            Some(ends) => ends,
            None => {
                self.open()?;
                let n = self.state()?.entries;
                Ends {
                    first: (n > 0).then(|| self.read(0)),
                    before_last: n.checked_sub(2).map(|i| self.read(i)),
                }
            }
        };
        let (length, last) = {
            let st = self.state()?;
            (st.length, st.last)
        };
        if length % E::SIZE as u64 != 0 {
            return Err(self.corrupt(format!(
                "{length} bytes is not a multiple of the entry size {}",
                E::SIZE
            )));
        }
        let Some(last) = last else {
            return Ok(None);
        };
        if last.offset() < self.base_offset {
            return Err(self.corrupt(format!(
                "the last offset {} is below the base offset {}",
                last.offset(),
                self.base_offset
            )));
        }
        if let Some(before) = ends.before_last.filter(|b| !b.may_precede(&last)) {
            return Err(self.corrupt(format!(
                "the last two entries are out of order: {before:?}, {last:?}"
            )));
        }
        Ok(ends.first)
    }

    /// Learns a persistent, never used index's entries from its file without mapping it: its
    /// length, and its first and last two entries read with pread(2). `None` when the index is in
    /// use already, or its file may hold zeros after its entries (a full-size file, or a last
    /// entry of zeros), which only counting the entries through a mapping tells.
    fn probe(&mut self) -> Result<Option<Ends<E>>> {
        if !self.persistent || self.state.is_some() || self.hot.is_some() {
            return Ok(None);
        }
        // No O_CREAT: a missing index is an error here, and recovery rebuilds it.
        let file = File::open(&self.path).at(&self.path)?;
        let length = file.metadata().at(&self.path)?.len();
        let size = E::SIZE as u64;
        if length >= self.full_size() || length % size != 0 {
            return Ok(None);
        }
        let n = (length / size) as usize;
        // Small files (most active segments') in one read; else the first entry and the last two.
        const WHOLE: u64 = 4096;
        let (first, tail, tail_from) = if length <= WHOLE {
            let mut all = vec![0; length as usize];
            file.read_exact_at(&mut all, 0).at(&self.path)?;
            let first = (n > 0).then(|| decode_at::<E>(&all, 0, self.base_offset));
            (first, all, 0)
        } else {
            let mut head = vec![0; E::SIZE];
            file.read_exact_at(&mut head, 0).at(&self.path)?;
            let from = n - 2;
            let mut tail = vec![0; 2 * E::SIZE];
            file.read_exact_at(&mut tail, (from * E::SIZE) as u64)
                .at(&self.path)?;
            (Some(decode_at::<E>(&head, 0, self.base_offset)), tail, from)
        };
        if n > 0 && ends_in_zeros::<E>(&tail) {
            return Ok(None);
        }
        let at = |i: usize| decode_at::<E>(&tail, i - tail_from, self.base_offset);
        let ends = Ends {
            first,
            before_last: n.checked_sub(2).map(at),
        };
        self.state = Some(State {
            entries: n,
            length,
            last: n.checked_sub(1).map(at),
            unsynced: false,
        });
        tracing::debug!(path = %self.path.display(), entries = n, length, "probed index");
        Ok(Some(ends))
    }
}

/// What a sanity check reads besides the last entry (kept in [`State::last`]).
pub(super) struct Ends<E> {
    first: Option<E>,
    before_last: Option<E>,
}

#[cfg(test)]
mod zero_tests {
    use super::zero_allocated;
    use std::os::unix::fs::FileExt;

    /// Junk anywhere in a sparse file — in its first block, past a hole, in its last bytes,
    /// across a 64 KiB chunk boundary — reads as zeros after `zero_allocated`, length unchanged.
    #[test]
    fn every_allocated_range_is_zeroed_and_holes_stay_holes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("i.index");
        let f = std::fs::File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .expect("open");
        let len = 4u64 << 20;
        f.set_len(len).expect("len");
        for at in [0, 5, 300_000, (1 << 20) - 3, 3 << 20, len - 7] {
            f.write_all_at(&[0xAB; 7], at).expect("junk");
        }
        f.write_all_at(&[0xCD; 200_000], 2 << 20)
            .expect("a long run");
        zero_allocated(&f, len).expect("zero");
        let mut all = vec![1u8; len as usize];
        f.read_exact_at(&mut all, 0).expect("read");
        assert!(all.iter().all(|b| *b == 0));
        assert_eq!(f.metadata().expect("meta").len(), len);
    }
}
