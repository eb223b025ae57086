//! The file layer under the log: a seam between the log and the disk.
//!
//! [`DiskFs`] is the real thing: std files, `pwritev(2)` for gathered appends, `fsync(2)`.
//! [`SimFs`] is for tests: an in-memory file system that remembers, for every file and directory,
//! what was last made durable, so a test can cut the power ([`SimFs::power_cut`]) and see what a
//! machine would find after a crash — every write not yet fsynced forgotten, or torn at a random
//! point — and inject write and fsync failures (a full disk, a failing device).
//!
//! Index files are the exception: on disk they are memory-mapped (`OffsetIndex`), so they are not
//! written through this layer. Under [`SimFs`] indexes live in anonymous memory and are rebuilt
//! from the log when a segment is opened ([`FileSystem::persistent_indexes`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// An open file of a log directory. Thread-safe: positional reads and writes need no cursor.
pub trait LogFile: Send + Sync + Debug {
    fn path(&self) -> &Path;
    /// Reads at `pos`; fewer bytes than asked only at the end of the file.
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize>;
    /// Writes all of `bufs`, one after another, starting at `pos`.
    fn write_all_at(&self, bufs: &[&[u8]], pos: u64) -> io::Result<()>;
    /// Makes everything written so far durable (`fsync`).
    fn sync(&self) -> io::Result<()>;
    fn set_len(&self, len: u64) -> io::Result<()>;
    fn len(&self) -> io::Result<u64>;
    /// The descriptor for `sendfile`, when the file is a real one.
    fn raw_fd(&self) -> Option<RawFd>;

    /// Reads exactly `buf.len()` bytes at `pos`, or fails with `UnexpectedEof`.
    fn read_exact_at(&self, mut buf: &mut [u8], mut pos: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, pos)? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => {
                    buf = &mut buf[n..];
                    pos += n as u64;
                }
            }
        }
        Ok(())
    }
}

/// The directory operations the log needs.
pub trait FileSystem: Send + Sync + Debug {
    /// Opens a file for reading and writing, creating it if `create`.
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn LogFile>>;
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// The entries of a directory (files and directories), sorted.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>>;
    fn is_dir(&self, path: &Path) -> bool;
    fn exists(&self, path: &Path) -> bool;
    /// A file's size without opening it.
    fn file_size(&self, path: &Path) -> io::Result<u64>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes the directory's entries durable (creations, renames, removals).
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Makes everything written to the file system that holds `dir` durable — every file's
    /// contents and every directory's entries (`syncfs(2)`): one call instead of an fsync per
    /// file, for a shutdown that closes thousands of logs.
    fn sync_filesystem(&self, dir: &Path) -> io::Result<()>;
    /// Whether index files are real memory-mapped files that outlive the process.
    fn persistent_indexes(&self) -> bool;

    /// Reads a whole (small) file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let f = self.open(path, false)?;
        let mut buf = vec![0; f.len()? as usize];
        f.read_exact_at(&mut buf, 0)?;
        Ok(buf)
    }

    /// Replaces `path` atomically and durably: write a temporary file, fsync it, rename it over
    /// `path`, fsync the directory. After a crash the file holds the old or the new contents.
    fn write_atomic(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let tmp = path.with_extension("tmp");
        let f = self.open(&tmp, true)?;
        f.set_len(0)?;
        f.write_all_at(&[data], 0)?;
        f.sync()?;
        drop(f);
        self.rename(&tmp, path)?;
        self.sync_dir(path.parent().unwrap_or(Path::new(".")))
    }

    /// [`FileSystem::write_atomic`] without its fsyncs, for a caller that makes the whole file
    /// system durable afterwards ([`FileSystem::sync_filesystem`] at shutdown): a process crash
    /// leaves the old or the new contents; only a power loss before that sync may lose both
    /// (the file then reads as absent or as its old contents, never torn).
    fn write_atomic_unsynced(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let tmp = path.with_extension("tmp");
        let f = self.open(&tmp, true)?;
        f.set_len(0)?;
        f.write_all_at(&[data], 0)?;
        drop(f);
        self.rename(&tmp, path)
    }
}

/// The real disk.
#[derive(Debug, Default, Clone, Copy)]
pub struct DiskFs;

#[derive(Debug)]
struct DiskFile {
    file: std::fs::File,
    path: PathBuf,
}

impl LogFile for DiskFile {
    fn path(&self) -> &Path {
        &self.path
    }
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.file.read_at(buf, pos)
    }
    fn write_all_at(&self, bufs: &[&[u8]], pos: u64) -> io::Result<()> {
        pwritev_all(self.file.as_raw_fd(), bufs, pos)
    }
    fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
    fn raw_fd(&self) -> Option<RawFd> {
        Some(self.file.as_raw_fd())
    }
}

/// `pwritev(2)` until every byte of `bufs` is written.
fn pwritev_all(fd: RawFd, bufs: &[&[u8]], pos: u64) -> io::Result<()> {
    let iovec = |b: &&[u8]| libc::iovec {
        iov_base: b.as_ptr() as *mut libc::c_void,
        iov_len: b.len(),
    };
    // A batch is two buffers (its header and the rest): the usual append needs no allocation.
    const ON_STACK: usize = 8;
    if bufs.len() <= ON_STACK {
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; ON_STACK];
        let mut n = 0;
        for b in bufs.iter().filter(|b| !b.is_empty()) {
            iov[n] = iovec(b);
            n += 1;
        }
        // SAFETY: each iovec is one slice of `bufs`, borrowed for this call.
        return unsafe { pwritev_iov(fd, &mut iov[..n], pos) };
    }
    let mut iov: Vec<libc::iovec> = bufs.iter().filter(|b| !b.is_empty()).map(iovec).collect();
    // SAFETY: as above.
    unsafe { pwritev_iov(fd, &mut iov, pos) }
}

/// `pwritev(2)` of `iov` (consumed as it is written) until every byte is written.
///
/// # Safety
/// Each iovec must point at `iov_len` readable bytes that stay alive for the call.
unsafe fn pwritev_iov(fd: RawFd, iov: &mut [libc::iovec], mut pos: u64) -> io::Result<()> {
    let mut first = 0;
    while first < iov.len() {
        let count = (iov.len() - first).min(1024) as libc::c_int;
        // SAFETY: every iovec points at `iov_len` live bytes (the caller's promise), and the
        // kernel only reads them.
        let n = unsafe { libc::pwritev(fd, iov[first..].as_ptr(), count, pos as libc::off_t) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let mut n = n as usize;
        pos += n as u64;
        while n > 0 {
            let v = &mut iov[first];
            if n >= v.iov_len {
                n -= v.iov_len;
                first += 1;
            } else {
                // SAFETY: advancing within the same slice by fewer than its remaining bytes.
                v.iov_base = unsafe { (v.iov_base as *mut u8).add(n) } as *mut libc::c_void;
                v.iov_len -= n;
                n = 0;
            }
        }
    }
    Ok(())
}

impl FileSystem for DiskFs {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn LogFile>> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)?;
        Ok(Arc::new(DiskFile {
            file,
            path: path.to_path_buf(),
        }))
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        let mut out = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.path()))
            .collect::<io::Result<Vec<_>>>()?;
        out.sort();
        Ok(out)
    }
    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn file_size(&self, path: &Path) -> io::Result<u64> {
        Ok(std::fs::metadata(path)?.len())
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::File::open(path)?.sync_all()
    }
    fn sync_filesystem(&self, dir: &Path) -> io::Result<()> {
        let d = std::fs::File::open(dir)?;
        // SAFETY: a plain syscall on a descriptor we own. Since Linux 5.8 it reports writeback
        // errors of the file system as fsync does.
        if unsafe { libc::syncfs(d.as_raw_fd()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
    fn persistent_indexes(&self) -> bool {
        true
    }
}

/// An in-memory file system with power cuts and injected faults, for tests.
///
/// Every file has its current contents and its durable contents (as of its last `sync`); every
/// directory its current entries and its durable entries (as of its last `sync_dir`).
/// [`SimFs::power_cut`] throws away everything not durable. Handles opened before a cut fail
/// with an error afterwards, as the process that held them is gone.
#[derive(Debug, Default, Clone)]
pub struct SimFs {
    state: Arc<Mutex<SimState>>,
}

#[derive(Debug, Default)]
struct SimState {
    /// Current directory entries: path -> file (directories are in `dirs`).
    files: BTreeMap<PathBuf, Arc<SimData>>,
    /// Durable directory entries.
    durable_files: BTreeMap<PathBuf, Arc<SimData>>,
    dirs: BTreeSet<PathBuf>,
    generation: u64,
    /// Bytes that may still be written before writes fail with ENOSPC.
    space_left: Option<u64>,
    fail_sync: bool,
}

#[derive(Debug, Default)]
struct SimData {
    // Lock order: the SimFs state lock, then a file's lock.
    contents: Mutex<SimContents>,
}

#[derive(Debug, Default, Clone)]
struct SimContents {
    current: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Debug)]
struct SimFile {
    fs: SimFs,
    data: Arc<SimData>,
    path: PathBuf,
    generation: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test thread that panicked holding the lock leaves consistent data: keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SimFs {
    pub fn new() -> SimFs {
        SimFs::default()
    }

    /// Cuts the power: every file reverts to its durable contents, every directory to its durable
    /// entries. With `torn_seed`, a file whose unsynced writes only appended keeps a
    /// pseudo-random prefix of them instead (a torn tail), as a real disk may.
    pub fn power_cut(&self, torn_seed: Option<u64>) {
        let mut st = lock(&self.state);
        st.generation += 1;
        st.files = st.durable_files.clone();
        let mut seed = torn_seed.unwrap_or(0) | 1;
        for data in st.files.values() {
            let mut c = lock(&data.contents);
            let keep = if torn_seed.is_some() && c.current.starts_with(&c.durable) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let extra = c.current.len() - c.durable.len();
                c.durable.len() + (seed as usize) % (extra + 1)
            } else {
                c.durable.len()
            };
            c.current.truncate(keep);
            if c.current.len() < keep {
                c.current = c.durable.clone();
            }
            c.durable = c.current.clone();
        }
    }

    /// After `bytes` more bytes, writes fail with ENOSPC (`None`: never).
    pub fn set_space_left(&self, bytes: Option<u64>) {
        lock(&self.state).space_left = bytes;
    }

    /// Makes every `sync` fail with EIO.
    pub fn set_fail_sync(&self, fail: bool) {
        lock(&self.state).fail_sync = fail;
    }

    /// The current contents of a file (for tests that look at bytes).
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let st = lock(&self.state);
        st.files
            .get(path)
            .map(|d| lock(&d.contents).current.clone())
    }

    /// Replaces a file's contents, current and durable (for tests that corrupt files).
    pub fn overwrite(&self, path: &Path, bytes: &[u8]) {
        let st = lock(&self.state);
        if let Some(d) = st.files.get(path) {
            let mut c = lock(&d.contents);
            c.current = bytes.to_vec();
            c.durable = bytes.to_vec();
        }
    }

    fn check_generation(&self, generation: u64) -> io::Result<()> {
        if lock(&self.state).generation != generation {
            return Err(io::Error::other("simulated power cut: handle is stale"));
        }
        Ok(())
    }
}

impl LogFile for SimFile {
    fn path(&self) -> &Path {
        &self.path
    }
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.fs.check_generation(self.generation)?;
        let c = lock(&self.data.contents);
        let pos = (pos as usize).min(c.current.len());
        let n = buf.len().min(c.current.len() - pos);
        buf[..n].copy_from_slice(&c.current[pos..pos + n]);
        Ok(n)
    }
    fn write_all_at(&self, bufs: &[&[u8]], pos: u64) -> io::Result<()> {
        self.fs.check_generation(self.generation)?;
        let total: u64 = bufs.iter().map(|b| b.len() as u64).sum();
        {
            let mut st = lock(&self.fs.state);
            if let Some(left) = st.space_left.as_mut() {
                if *left < total {
                    // A real disk may take part of the write before it fills up.
                    let partial = *left;
                    *left = 0;
                    drop(st);
                    let mut c = lock(&self.data.contents);
                    let mut at = pos as usize;
                    let mut budget = partial as usize;
                    for b in bufs {
                        let n = b.len().min(budget);
                        write_into(&mut c.current, at, &b[..n]);
                        at += n;
                        budget -= n;
                    }
                    return Err(io::Error::from_raw_os_error(libc::ENOSPC));
                }
                *left -= total;
            }
        }
        let mut c = lock(&self.data.contents);
        let mut at = pos as usize;
        for b in bufs {
            write_into(&mut c.current, at, b);
            at += b.len();
        }
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        self.fs.check_generation(self.generation)?;
        if lock(&self.fs.state).fail_sync {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        let mut c = lock(&self.data.contents);
        c.durable = c.current.clone();
        Ok(())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.fs.check_generation(self.generation)?;
        lock(&self.data.contents).current.resize(len as usize, 0);
        Ok(())
    }
    fn len(&self) -> io::Result<u64> {
        self.fs.check_generation(self.generation)?;
        Ok(lock(&self.data.contents).current.len() as u64)
    }
    fn raw_fd(&self) -> Option<RawFd> {
        None
    }
}

fn write_into(v: &mut Vec<u8>, at: usize, b: &[u8]) {
    if v.len() < at + b.len() {
        v.resize(at + b.len(), 0);
    }
    v[at..at + b.len()].copy_from_slice(b);
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file", path.display()),
    )
}

impl FileSystem for SimFs {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn LogFile>> {
        let mut st = lock(&self.state);
        let parent = path.parent().unwrap_or(Path::new(""));
        if !st.dirs.contains(parent) {
            return Err(not_found(parent));
        }
        let data = match st.files.get(path) {
            Some(d) => d.clone(),
            None if create => {
                let d = Arc::new(SimData::default());
                st.files.insert(path.to_path_buf(), d.clone());
                d
            }
            None => return Err(not_found(path)),
        };
        Ok(Arc::new(SimFile {
            fs: self.clone(),
            data,
            path: path.to_path_buf(),
            generation: st.generation,
        }))
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut st = lock(&self.state);
        let mut p = Some(path);
        while let Some(d) = p {
            st.dirs.insert(d.to_path_buf());
            p = d.parent();
        }
        Ok(())
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        let st = lock(&self.state);
        if !st.dirs.contains(path) {
            return Err(not_found(path));
        }
        let mut out: Vec<PathBuf> = st
            .files
            .keys()
            .chain(st.dirs.iter())
            .filter(|p| p.parent() == Some(path))
            .cloned()
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }
    fn is_dir(&self, path: &Path) -> bool {
        lock(&self.state).dirs.contains(path)
    }
    fn exists(&self, path: &Path) -> bool {
        let st = lock(&self.state);
        st.dirs.contains(path) || st.files.contains_key(path)
    }
    fn file_size(&self, path: &Path) -> io::Result<u64> {
        let st = lock(&self.state);
        let d = st.files.get(path).ok_or_else(|| not_found(path))?;
        let len = lock(&d.contents).current.len() as u64;
        Ok(len)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut st = lock(&self.state);
        st.files
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut st = lock(&self.state);
        st.files.retain(|p, _| !p.starts_with(path));
        st.durable_files.retain(|p, _| !p.starts_with(path));
        st.dirs.retain(|p| !p.starts_with(path));
        Ok(())
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = lock(&self.state);
        let d = st.files.remove(from).ok_or_else(|| not_found(from))?;
        st.files.insert(to.to_path_buf(), d);
        Ok(())
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut st = lock(&self.state);
        if st.fail_sync {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        let current: Vec<(PathBuf, Arc<SimData>)> = st
            .files
            .iter()
            .filter(|(p, _)| p.parent() == Some(path))
            .map(|(p, d)| (p.clone(), d.clone()))
            .collect();
        st.durable_files.retain(|p, _| p.parent() != Some(path));
        st.durable_files.extend(current);
        Ok(())
    }
    fn sync_filesystem(&self, _dir: &Path) -> io::Result<()> {
        let mut st = lock(&self.state);
        if st.fail_sync {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        st.durable_files = st.files.clone();
        for data in st.files.values() {
            let mut c = lock(&data.contents);
            c.durable = c.current.clone();
        }
        Ok(())
    }
    fn persistent_indexes(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_cut_forgets_what_was_not_synced() {
        let fs = SimFs::new();
        let dir = Path::new("/d");
        fs.create_dir_all(dir).expect("dir");
        let a = fs.open(&dir.join("a"), true).expect("a");
        a.write_all_at(&[b"durable"], 0).expect("write");
        a.sync().expect("sync");
        fs.sync_dir(dir).expect("sync dir");
        a.write_all_at(&[b"-volatile"], 7).expect("write");
        let b = fs.open(&dir.join("b"), true).expect("b");
        b.write_all_at(&[b"x"], 0).expect("write");
        b.sync().expect("sync"); // synced data, but the entry itself was never made durable
        fs.power_cut(None);
        assert!(a.len().is_err(), "stale handle");
        assert_eq!(fs.read(&dir.join("a")).expect("a"), b"durable");
        assert!(!fs.exists(&dir.join("b")));
    }

    #[test]
    fn torn_tails_keep_a_prefix() {
        for seed in 1..50 {
            let fs = SimFs::new();
            fs.create_dir_all(Path::new("/d")).expect("dir");
            let f = fs.open(Path::new("/d/f"), true).expect("f");
            f.write_all_at(&[b"abc"], 0).expect("w");
            f.sync().expect("s");
            fs.sync_dir(Path::new("/d")).expect("sd");
            f.write_all_at(&[b"defgh"], 3).expect("w");
            fs.power_cut(Some(seed));
            let got = fs.read(Path::new("/d/f")).expect("read");
            assert!(b"abcdefgh".starts_with(&got) && got.len() >= 3, "{got:?}");
        }
    }

    #[test]
    fn full_disk_is_enospc() {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/d")).expect("dir");
        let f = fs.open(Path::new("/d/f"), true).expect("f");
        fs.set_space_left(Some(4));
        let e = f.write_all_at(&[b"abcdef"], 0).expect_err("full");
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
    }

    #[test]
    fn disk_pwritev_writes_every_part() {
        let dir = tempfile::tempdir().expect("tmp");
        let f = DiskFs.open(&dir.path().join("f"), true).expect("open");
        let big = vec![7u8; 1 << 20];
        f.write_all_at(&[b"head", &big, b"tail"], 0).expect("write");
        assert_eq!(f.len().expect("len"), (1 << 20) + 8);
        let mut tail = [0u8; 4];
        f.read_exact_at(&mut tail, (1 << 20) + 4).expect("read");
        assert_eq!(&tail, b"tail");
        DiskFs
            .write_atomic(&dir.path().join("cp"), b"0\n0\n")
            .expect("atomic");
        assert_eq!(
            DiskFs.read(&dir.path().join("cp")).expect("read"),
            b"0\n0\n"
        );
    }
}
