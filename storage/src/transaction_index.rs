//! `TransactionIndex`: a segment's `.txnindex` file — the aborted transactions whose ABORT marker
//! is in that segment, in Kafka's format byte for byte: 34-byte big-endian entries
//! `version int16 (0), producer_id int64, first_offset int64, last_offset int64,
//! last_stable_offset int64`, in marker order, no header. `last_offset` is the marker's offset;
//! `last_stable_offset` is the partition's LSO once the transaction completed.
//!
//! A read_committed Fetch asks it for the aborted transactions in its range so the consumer can
//! drop their records. Entries are written when the log appends an ABORT marker (leader or
//! follower) and rebuilt by replaying the markers when producer state is rebuilt (recovery).
//!
//! The file is opened per operation (aborts are rare; a segment keeps no descriptor for it) and
//! read in bounded chunks, so a large index never takes more memory than the entries a caller
//! asks for. Most segments never get one: once a look finds no file, the index remembers that
//! until it writes one, so a read_committed fetch costs no failing `statx` per segment. That is
//! sound because a segment's index file is written only through its one `TransactionIndex`
//! (recovery renames and removes files before segments are opened). Not fsynced on its own: the
//! segment flush syncs it with the log, and a lost tail is rebuilt from the log's markers at
//! recovery.

use crate::error::{IoContext, Result};
use crate::fs::FileSystem;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// The size of one entry.
pub const ABORTED_TXN_SIZE: usize = 34;
const ABORTED_TXN_VERSION: i16 = 0;
/// Entries read at a time.
const CHUNK_ENTRIES: usize = 2048;

/// One aborted transaction (Kafka's `AbortedTxn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The offset of the ABORT marker.
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    pub fn to_bytes(&self) -> [u8; ABORTED_TXN_SIZE] {
        let mut b = [0u8; ABORTED_TXN_SIZE];
        b[0..2].copy_from_slice(&ABORTED_TXN_VERSION.to_be_bytes());
        b[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        b[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        b[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        b[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        b
    }

    fn from_bytes(b: &[u8]) -> AbortedTxn {
        let at = |i: usize| i64::from_be_bytes(b[i..i + 8].try_into().expect("invariant: 8 bytes"));
        AbortedTxn {
            producer_id: at(2),
            first_offset: at(10),
            last_offset: at(18),
            last_stable_offset: at(26),
        }
    }
}

#[derive(Debug)]
pub struct TransactionIndex {
    fs: Arc<dyn FileSystem>,
    path: PathBuf,
    /// What is known of the file at `path`: [`UNKNOWN`], [`ABSENT`] (a look found none and this
    /// index has written none since) or [`PRESENT`] (this index wrote one). A reader that finds
    /// no file records ABSENT only over UNKNOWN, so a look that raced an append cannot hide the
    /// file the append created.
    file: AtomicU8,
}

const UNKNOWN: u8 = 0;
const ABSENT: u8 = 1;
const PRESENT: u8 = 2;

impl TransactionIndex {
    /// The index at `path`; no file is touched until an entry is written or read.
    pub fn new(fs: Arc<dyn FileSystem>, path: PathBuf) -> TransactionIndex {
        TransactionIndex {
            fs,
            path,
            file: AtomicU8::new(UNKNOWN),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn len(&self) -> Result<u64> {
        if self.file.load(Ordering::Acquire) == ABSENT {
            return Ok(0);
        }
        match self.fs.file_size(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let _ = self.file.compare_exchange(
                    UNKNOWN,
                    ABSENT,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
                Ok(0)
            }
            size => size.at(&self.path),
        }
    }

    /// Appends an entry (the caller keeps entries in marker order).
    pub fn append(&self, txn: &AbortedTxn) -> Result<()> {
        let f = self.fs.open(&self.path, true).at(&self.path)?;
        self.file.store(PRESENT, Ordering::Release);
        // A torn partial entry at the end (a crash mid-write) is overwritten.
        let len = f.len().at(&self.path)?;
        let end = len - len % ABORTED_TXN_SIZE as u64;
        f.write_all_at(&[&txn.to_bytes()], end).at(&self.path)?;
        Ok(())
    }

    /// Calls `visit` on each entry in order until it returns false. A partial entry at the end is
    /// ignored.
    fn scan(&self, mut visit: impl FnMut(u64, AbortedTxn) -> bool) -> Result<()> {
        let len = self.len()?;
        if len < ABORTED_TXN_SIZE as u64 {
            return Ok(());
        }
        let f = self.fs.open(&self.path, false).at(&self.path)?;
        let entries = len / ABORTED_TXN_SIZE as u64;
        let mut buf = vec![0u8; CHUNK_ENTRIES * ABORTED_TXN_SIZE];
        let mut i = 0u64;
        while i < entries {
            let n = (entries - i).min(CHUNK_ENTRIES as u64) as usize;
            let chunk = &mut buf[..n * ABORTED_TXN_SIZE];
            f.read_exact_at(chunk, i * ABORTED_TXN_SIZE as u64)
                .at(&self.path)?;
            for (j, e) in chunk.chunks_exact(ABORTED_TXN_SIZE).enumerate() {
                if !visit(i + j as u64, AbortedTxn::from_bytes(e)) {
                    return Ok(());
                }
            }
            i += n as u64;
        }
        Ok(())
    }

    /// Every entry (tests and tools).
    pub fn all(&self) -> Result<Vec<AbortedTxn>> {
        let mut out = Vec::new();
        self.scan(|_, t| {
            out.push(t);
            true
        })?;
        Ok(out)
    }

    /// Adds to `out` the transactions that may hold records in `[fetch_offset, upper_bound)`:
    /// marker at or after `fetch_offset`, first offset below `upper_bound` (Kafka's
    /// `collectAbortedTxns`). Returns true once an entry shows that no later segment can hold
    /// one (its LSO is at or past `upper_bound`). At most `limit` entries are taken in all.
    pub fn collect_aborted(
        &self,
        fetch_offset: i64,
        upper_bound: i64,
        out: &mut Vec<AbortedTxn>,
        limit: usize,
    ) -> Result<bool> {
        let mut complete = false;
        self.scan(|_, t| {
            if t.last_offset >= fetch_offset && t.first_offset < upper_bound {
                if out.len() >= limit {
                    complete = true;
                    return false;
                }
                out.push(t);
            }
            if t.last_stable_offset >= upper_bound {
                complete = true;
                return false;
            }
            true
        })?;
        Ok(complete)
    }

    /// Drops the entries whose marker is at or above `offset`.
    pub fn truncate_to(&self, offset: i64) -> Result<()> {
        let mut keep = None;
        self.scan(|i, t| {
            if t.last_offset >= offset {
                keep = Some(i);
                false
            } else {
                true
            }
        })?;
        if let Some(n) = keep {
            let f = self.fs.open(&self.path, false).at(&self.path)?;
            f.set_len(n * ABORTED_TXN_SIZE as u64).at(&self.path)?;
        }
        Ok(())
    }

    /// Removes every entry (recovery rebuilds them).
    pub fn reset(&self) -> Result<()> {
        if self.fs.exists(&self.path) {
            self.fs.remove_file(&self.path).at(&self.path)?;
        }
        self.file.store(ABSENT, Ordering::Release);
        Ok(())
    }

    /// Renames the file, if there is one, and points the index at the new path.
    pub fn rename_to(&mut self, to: PathBuf) -> Result<()> {
        let exists = self.fs.exists(&self.path);
        if exists {
            self.fs.rename(&self.path, &to).at(&self.path)?;
        }
        self.path = to;
        *self.file.get_mut() = if exists { PRESENT } else { ABSENT };
        Ok(())
    }

    /// The file to fsync with the segment, if there is one.
    pub fn file_to_sync(&self) -> Result<Option<Arc<dyn crate::fs::LogFile>>> {
        if self.file.load(Ordering::Acquire) == ABSENT || !self.fs.exists(&self.path) {
            return Ok(None);
        }
        Ok(Some(self.fs.open(&self.path, false).at(&self.path)?))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::fs::SimFs;

    fn txn(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: lso,
        }
    }

    #[test]
    fn entries_are_kafkas_34_bytes() {
        let b = txn(0x0102, 3, 9, 10).to_bytes();
        let mut want = vec![0u8, 0];
        want.extend_from_slice(&0x0102i64.to_be_bytes());
        want.extend_from_slice(&3i64.to_be_bytes());
        want.extend_from_slice(&9i64.to_be_bytes());
        want.extend_from_slice(&10i64.to_be_bytes());
        assert_eq!(b.to_vec(), want);
    }

    #[test]
    fn append_collect_truncate() {
        let fs = Arc::new(SimFs::new());
        fs.create_dir_all(Path::new("/d")).unwrap();
        let p = PathBuf::from("/d/00000000000000000000.txnindex");
        let idx = TransactionIndex::new(fs.clone(), p.clone());
        assert!(idx.all().unwrap().is_empty());
        idx.append(&txn(1, 0, 5, 6)).unwrap();
        idx.append(&txn(2, 3, 10, 11)).unwrap();
        idx.append(&txn(3, 12, 20, 21)).unwrap();
        assert_eq!(fs.contents(&p).unwrap().len(), 3 * 34);
        let mut out = Vec::new();
        assert!(idx.collect_aborted(6, 12, &mut out, 100).unwrap());
        assert_eq!(out, vec![txn(2, 3, 10, 11)]);
        let mut out = Vec::new();
        assert!(!idx.collect_aborted(0, 100, &mut out, 100).unwrap());
        assert_eq!(out.len(), 3);
        let mut out = Vec::new();
        idx.collect_aborted(0, 100, &mut out, 1).unwrap();
        assert_eq!(out.len(), 1);
        idx.truncate_to(10).unwrap();
        assert_eq!(idx.all().unwrap(), vec![txn(1, 0, 5, 6)]);
        // A torn tail is ignored and overwritten.
        let mut bytes = fs.contents(&p).unwrap();
        bytes.extend_from_slice(&[0, 0, 1]);
        fs.overwrite(&p, &bytes);
        assert_eq!(idx.all().unwrap().len(), 1);
        idx.append(&txn(4, 7, 8, 9)).unwrap();
        assert_eq!(idx.all().unwrap(), vec![txn(1, 0, 5, 6), txn(4, 7, 8, 9)]);
    }

    #[test]
    fn a_file_found_absent_is_not_looked_for_again_until_this_index_writes_one() {
        let fs = Arc::new(SimFs::new());
        fs.create_dir_all(Path::new("/d")).unwrap();
        let p = PathBuf::from("/d/00000000000000000005.txnindex");
        let mut idx = TransactionIndex::new(fs.clone(), p.clone());
        assert!(idx.all().unwrap().is_empty());
        // A file that appears behind the index's back is not seen: only this index writes it.
        let other = fs.open(&p, true).unwrap();
        other
            .write_all_at(&[&txn(9, 0, 1, 2).to_bytes()], 0)
            .unwrap();
        drop(other);
        assert!(idx.all().unwrap().is_empty());
        assert!(idx.file_to_sync().unwrap().is_none());
        fs.remove_file(&p).unwrap();
        // Its own write is seen at once.
        idx.append(&txn(1, 0, 5, 6)).unwrap();
        assert_eq!(idx.all().unwrap(), vec![txn(1, 0, 5, 6)]);
        // A rename carries what is known; a reset forgets the entries.
        let q = PathBuf::from("/d/00000000000000000005.txnindex.deleted");
        idx.rename_to(q.clone()).unwrap();
        assert_eq!(idx.all().unwrap(), vec![txn(1, 0, 5, 6)]);
        idx.reset().unwrap();
        assert!(idx.all().unwrap().is_empty());
        assert!(!fs.exists(&q));
        idx.append(&txn(2, 7, 8, 9)).unwrap();
        assert_eq!(idx.all().unwrap(), vec![txn(2, 7, 8, 9)]);
    }
}
