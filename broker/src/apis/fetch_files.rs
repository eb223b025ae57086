//! `ResponseFiles`: the bound on descriptors that fetch responses keep open while they wait to
//! be sent.
//!
//! A fetch answers with file slices that the network layer fills with `sendfile(2)`; each slice
//! holds its segment's `.log` file (an `Arc`) until the response is written, also after the
//! node's [`FileBudget`](rafka_storage::file_budget::FileBudget) released that segment — the
//! budget cannot close a file a response still needs. With many partitions per node, every
//! response to a consumer of thousands of partitions holds thousands of descriptors beyond the
//! budget: at 100,000 partitions under `ulimit -n 20000`, ten consumers' responses ran the
//! process out of descriptors (EMFILE on the recovery-point checkpoint).
//!
//! So the files responses hold are counted too, process-wide as `RLIMIT_NOFILE` is: a response
//! takes one hold per distinct file it sends from, and when none is left it copies that slice
//! into memory instead (its bytes are already bounded by the fetch's `max_bytes`) — slower than
//! `sendfile`, and only under descriptor pressure. The bound is a quarter of `RLIMIT_NOFILE`
//! (the file budget takes half; the last quarter is for connections and everything else), never
//! below [`MIN_HOLDS`].
//!
//! Thread-safety: the count is one atomic; a hold is returned when the last slice holding it is
//! dropped (after the response was written, or with a response never sent).

use rafka_storage::fs::LogFile;
use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// The smallest bound.
pub const MIN_HOLDS: usize = 64;

/// See the module doc.
#[derive(Debug)]
pub struct ResponseFiles {
    held: AtomicUsize,
    max: usize,
}

impl ResponseFiles {
    /// A bound of `max` held files (at least [`MIN_HOLDS`]).
    pub fn new(max: usize) -> Arc<ResponseFiles> {
        Arc::new(ResponseFiles {
            held: AtomicUsize::new(0),
            max: max.max(MIN_HOLDS),
        })
    }

    /// The process's bound: a quarter of `RLIMIT_NOFILE` (a generous fixed bound when there is
    /// no limit).
    pub fn process() -> &'static Arc<ResponseFiles> {
        static FILES: OnceLock<Arc<ResponseFiles>> = OnceLock::new();
        FILES.get_or_init(|| {
            let nofile = rafka_storage::file_budget::nofile_limit().unwrap_or(1 << 20);
            ResponseFiles::new(usize::try_from(nofile / 4).unwrap_or(usize::MAX))
        })
    }

    /// Files held now.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// One hold, if the bound allows.
    fn try_hold(self: &Arc<Self>) -> Option<Hold> {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Hold(self.clone()))
    }
}

/// One counted file; returned on drop.
#[derive(Debug)]
struct Hold(Arc<ResponseFiles>);

impl Drop for Hold {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A segment file a response holds, with its hold: what the response's slices point at.
#[derive(Debug)]
struct HeldFile {
    file: Arc<dyn LogFile>,
    _hold: Hold,
}

impl LogFile for HeldFile {
    fn path(&self) -> &Path {
        self.file.path()
    }
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.file.read_at(buf, pos)
    }
    fn write_all_at(&self, _bufs: &[&[u8]], _pos: u64) -> io::Result<()> {
        // A response only reads: nothing may write through it.
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "a fetch response's file is read-only",
        ))
    }
    fn sync(&self) -> io::Result<()> {
        Ok(())
    }
    fn set_len(&self, _len: u64) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "a fetch response's file is read-only",
        ))
    }
    fn len(&self) -> io::Result<u64> {
        self.file.len()
    }
    fn raw_fd(&self) -> Option<RawFd> {
        self.file.raw_fd()
    }
}

/// What one response holds: each distinct file once.
#[derive(Debug)]
pub struct ResponseHolds {
    files: Arc<ResponseFiles>,
    /// Segment file (by address) → the held file its slices use, or `None`: copied.
    seen: HashMap<usize, Option<Arc<dyn LogFile>>>,
}

/// How a slice goes out.
pub enum Sent {
    /// By `sendfile` from this slice (its file now counted).
    Slice(rafka_storage::FileSlice),
    /// Copied: the bound was reached.
    Copied(bytes::Bytes),
}

impl ResponseHolds {
    pub fn new(files: Arc<ResponseFiles>) -> ResponseHolds {
        ResponseHolds {
            files,
            seen: HashMap::new(),
        }
    }

    /// Holds `slice`'s file for the response, or copies the slice when no hold is left.
    pub fn hold(&mut self, slice: rafka_storage::FileSlice) -> io::Result<Sent> {
        let key = Arc::as_ptr(&slice.file) as *const u8 as usize;
        let files = &self.files;
        let held = self
            .seen
            .entry(key)
            .or_insert_with(|| {
                files.try_hold().map(|hold| {
                    Arc::new(HeldFile {
                        file: slice.file.clone(),
                        _hold: hold,
                    }) as Arc<dyn LogFile>
                })
            })
            .clone();
        match held {
            Some(file) => Ok(Sent::Slice(rafka_storage::FileSlice { file, ..slice })),
            None => slice.read_to_vec().map(|v| Sent::Copied(v.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rafka_storage::fs::{FileSystem, SimFs};
    use rafka_storage::FileSlice;

    fn slice_of(file: &Arc<dyn LogFile>, position: u64, len: u32) -> FileSlice {
        FileSlice {
            file: file.clone(),
            position,
            len,
        }
    }

    #[test]
    fn one_hold_per_distinct_file_and_copies_past_the_bound() {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/d"))
            .expect("a simulated directory");
        let open = |name: &str| -> Arc<dyn LogFile> {
            let f = fs
                .open(Path::new(name), true)
                .expect("open a simulated file");
            f.write_all_at(&[b"0123456789"], 0).expect("write");
            f
        };
        let files: Vec<_> = (0..MIN_HOLDS + 1)
            .map(|i| open(&format!("/d/f{i}")))
            .collect();
        let bound = ResponseFiles::new(MIN_HOLDS);
        let mut a = ResponseHolds::new(bound.clone());
        // Two slices of one file: one hold.
        for _ in 0..2 {
            assert!(matches!(
                a.hold(slice_of(&files[0], 2, 3)),
                Ok(Sent::Slice(_))
            ));
        }
        assert_eq!(bound.held(), 1);
        for f in &files[1..MIN_HOLDS] {
            assert!(matches!(a.hold(slice_of(f, 0, 4)), Ok(Sent::Slice(_))));
        }
        assert_eq!(bound.held(), MIN_HOLDS);
        // The bound is reached: the next file's slice is copied, bytes exact.
        match a.hold(slice_of(&files[MIN_HOLDS], 2, 3)) {
            Ok(Sent::Copied(b)) => assert_eq!(&b[..], b"234"),
            _ => panic!("expected a copy past the bound"),
        }
        assert_eq!(bound.held(), MIN_HOLDS);
        // A held slice still reads its file; holds return when the response and slices go.
        let mut b = ResponseHolds::new(bound.clone());
        assert!(matches!(
            b.hold(slice_of(&files[0], 0, 1)),
            Ok(Sent::Copied(_))
        ));
        drop(b);
        let kept = match a.hold(slice_of(&files[1], 1, 2)) {
            Ok(Sent::Slice(s)) => s,
            _ => panic!("a file the response holds is sent from"),
        };
        drop(a);
        assert_eq!(
            bound.held(),
            1,
            "the slice still alive keeps its file's hold"
        );
        assert_eq!(kept.read_to_vec().expect("read"), b"12");
        drop(kept);
        assert_eq!(bound.held(), 0);
    }
}
