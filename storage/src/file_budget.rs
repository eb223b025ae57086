//! `FileBudget`: a node-wide bound on the files and index mappings its logs hold open.
//!
//! A segment holds up to three open files while it is in use — its `.log` descriptor and its
//! two indexes, each a descriptor and a mapping — and nothing while cold: everything reopens on
//! the next use ([`crate::LogSegment::release`]). Without a bound, every partition that was ever
//! written keeps its active segment's three files and every segment a reader touched keeps its
//! own, so 10,000 partitions exhaust `ulimit -n 20000`.
//!
//! The budget counts, per log and in total, the *open files* its segments hold: one per open
//! `.log` descriptor and one per mapped index (which is also one descriptor and one entry of
//! `vm.max_map_count`). Counting is by tokens ([`OpenFile`]) that the segment and index code
//! create when they open something and drop when they close it, so the count cannot drift.
//!
//! Two rules keep the count bounded, applied when a caller lets go of a log
//! ([`crate::log_manager::lock_log`]'s guard, [`crate::UnifiedLog::settle`]):
//! - per log: when a log holds more than [`MAX_OPEN_FILES_PER_LOG`], its inactive segments are
//!   released (the active one stays);
//! - per node: when the total passes the budget's bound, the least recently used logs (other
//!   than the caller's) are released whole, down to [`EVICT_TO`] of the bound. A log whose lock
//!   is held at that moment is in use and skipped (its lock is only tried, never waited for), so
//!   the bound may be passed by what the logs in use at that instant hold: at most
//!   [`MAX_OPEN_FILES_PER_LOG`] each.
//!
//! Not counted: a descriptor a [`crate::FileSlice`] keeps alive for a fetch response being sent
//! (its `Arc` holds the file open after the segment released it, so sendfile of an evicted
//! segment still works) and those a [`crate::unified_log::flush::PendingFlush`] holds until it runs —
//! both live only as long as a response or a flush.
//!
//! The default bound ([`FileBudget::from_process_limits`]) is half of `RLIMIT_NOFILE` (the
//! other half is left for connections and everything else) and at most three quarters of
//! `vm.max_map_count` (two of three counted files are mappings at most), and never below
//! [`MIN_MAX_OPEN_FILES`].
//!
//! Thread-safety: `FileBudget` and `LogHandles` are `Sync`; counts are atomics. The registry of
//! logs is behind a mutex held only to insert, remove or scan entries — never while a log's lock
//! is taken. Lock order: a log's lock, then (briefly) the registry; an eviction takes other logs'
//! locks only with `try_lock`, after letting go of the registry.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// The most open files one log keeps before its inactive segments are released: the active
/// segment's three and two inactive segments' worth (a reader catching up, a follower, a
/// timestamp search).
pub const MAX_OPEN_FILES_PER_LOG: usize = 9;
/// An eviction frees down to this fraction of the bound (9/10), so that it runs once per many
/// opens, not at every one.
pub const EVICT_TO: (usize, usize) = (9, 10);
/// The smallest bound (a process with a tiny limit still serves a few logs at a time).
pub const MIN_MAX_OPEN_FILES: usize = 64;

/// What the budget can do to a log it picked: release all its files, if its lock is free now.
pub trait ReleaseFiles: Send + Sync {
    /// Releases the log's open files unless its lock is held; whether it did.
    fn try_release_files(&self) -> bool;
}

/// The node-wide bound and count. Shared by every log of a [`crate::LogManager`].
pub struct FileBudget {
    max_open_files: usize,
    open_files: AtomicUsize,
    clock: AtomicU64,
    next_id: AtomicU64,
    evictions: AtomicU64,
    registry: Mutex<HashMap<u64, Weak<LogHandles>>>,
    /// Held by the one thread evicting; others skip (it frees for them too).
    evicting: Mutex<()>,
}

impl std::fmt::Debug for FileBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileBudget")
            .field("max_open_files", &self.max_open_files)
            .field("open_files", &self.open_files())
            .finish()
    }
}

impl FileBudget {
    /// A budget of at most `max_open_files` (at least 1) open segment files and index maps.
    pub fn new(max_open_files: usize) -> Arc<FileBudget> {
        Arc::new(FileBudget {
            max_open_files: max_open_files.max(1),
            open_files: AtomicUsize::new(0),
            clock: AtomicU64::new(1),
            next_id: AtomicU64::new(1),
            evictions: AtomicU64::new(0),
            registry: Mutex::new(HashMap::new()),
            evicting: Mutex::new(()),
        })
    }

    /// No bound (a log opened on its own, tools and tests).
    pub fn unlimited() -> Arc<FileBudget> {
        FileBudget::new(usize::MAX)
    }

    /// The default bound from this process's limits (see the module's documentation).
    pub fn from_process_limits() -> Arc<FileBudget> {
        FileBudget::new(default_max_open_files())
    }

    pub fn max_open_files(&self) -> usize {
        self.max_open_files
    }

    /// Segment files and index maps open now (counted by their tokens).
    pub fn open_files(&self) -> usize {
        self.open_files.load(Ordering::Relaxed)
    }

    /// How many logs the budget has released so far.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// The handles of a new log, registered for eviction.
    pub fn new_log(self: &Arc<Self>) -> Arc<LogHandles> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let h = Arc::new(LogHandles {
            id,
            budget: self.clone(),
            open: AtomicUsize::new(0),
            last_used: AtomicU64::new(self.clock.fetch_add(1, Ordering::Relaxed)),
            log: OnceLock::new(),
        });
        self.registry().insert(id, Arc::downgrade(&h));
        h
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Weak<LogHandles>>> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn over(&self) -> bool {
        self.open_files() > self.max_open_files
    }

    /// Releases the least recently used logs other than `caller` until the total is at most
    /// [`EVICT_TO`] of the bound, if it is over the bound. Returns how many logs were released.
    pub fn enforce(&self, caller: u64) -> usize {
        if !self.over() {
            return 0;
        }
        let Ok(_one) = self.evicting.try_lock() else {
            return 0;
        };
        let target = self.max_open_files / EVICT_TO.1 * EVICT_TO.0;
        // Candidates, oldest first, collected under the registry's lock and used without it.
        let mut candidates: Vec<(u64, Arc<LogHandles>)> = self
            .registry()
            .values()
            .filter_map(Weak::upgrade)
            .filter(|h| h.id != caller && h.open_files() > 0)
            .map(|h| (h.last_used.load(Ordering::Relaxed), h))
            .collect();
        candidates.sort_unstable_by_key(|(t, _)| *t);
        let mut released = 0;
        for (_, h) in candidates {
            if self.open_files() <= target {
                break;
            }
            let Some(log) = h.log.get().and_then(Weak::upgrade) else {
                continue;
            };
            if log.try_release_files() {
                released += 1;
            }
        }
        self.evictions.fetch_add(released as u64, Ordering::Relaxed);
        if released > 0 {
            tracing::debug!(
                released,
                open_files = self.open_files(),
                max = self.max_open_files,
                "released least recently used logs' files"
            );
        }
        released
    }
}

/// One log's share of the budget: its count of open files and when it was last used. Shared by
/// the log, its segments and indexes (through their [`OpenFile`] tokens) and the budget's registry.
pub struct LogHandles {
    id: u64,
    budget: Arc<FileBudget>,
    open: AtomicUsize,
    last_used: AtomicU64,
    log: OnceLock<Weak<dyn ReleaseFiles>>,
}

impl std::fmt::Debug for LogHandles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogHandles")
            .field("id", &self.id)
            .field("open", &self.open_files())
            .finish()
    }
}

impl LogHandles {
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn budget(&self) -> &Arc<FileBudget> {
        &self.budget
    }

    /// Files and maps this log holds open now.
    pub fn open_files(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Names what the budget releases when it picks this log (set once, by the log manager).
    pub fn set_log(&self, log: Weak<dyn ReleaseFiles>) {
        let _ = self.log.set(log);
    }

    /// Marks the log used now.
    pub fn touch(&self) {
        let now = self.budget.clock.fetch_add(1, Ordering::Relaxed);
        self.last_used.store(now, Ordering::Relaxed);
    }

    /// A token counting one open file of this log until it is dropped.
    pub fn open_file(self: &Arc<Self>) -> OpenFile {
        self.open.fetch_add(1, Ordering::Relaxed);
        self.budget.open_files.fetch_add(1, Ordering::Relaxed);
        OpenFile(self.clone())
    }
}

impl Drop for LogHandles {
    fn drop(&mut self) {
        self.budget.registry().remove(&self.id);
    }
}

/// One open file (a `.log` descriptor, or an index's descriptor and mapping), counted against
/// its log and the budget for as long as it lives.
#[derive(Debug)]
pub struct OpenFile(Arc<LogHandles>);

impl Drop for OpenFile {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
        self.0.budget.open_files.fetch_sub(1, Ordering::Relaxed);
    }
}

/// This process's soft `RLIMIT_NOFILE` (None if it cannot be read or is unlimited).
pub fn nofile_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass and nothing else.
    let r = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    (r == 0 && lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur)
}

/// `vm.max_map_count` (None where there is no such file).
pub fn max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The default bound: half the descriptors, three quarters of the maps, at least
/// [`MIN_MAX_OPEN_FILES`].
pub fn default_max_open_files() -> usize {
    let by_fds = nofile_limit().map_or(usize::MAX, |n| (n / 2) as usize);
    let by_maps = max_map_count().map_or(usize::MAX, |n| (n / 4 * 3) as usize);
    by_fds.min(by_maps).max(MIN_MAX_OPEN_FILES)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        handles: Arc<LogHandles>,
        tokens: Mutex<Vec<OpenFile>>,
        busy: bool,
    }

    impl ReleaseFiles for Fake {
        fn try_release_files(&self) -> bool {
            if self.busy {
                return false;
            }
            self.tokens.lock().expect("lock").clear();
            true
        }
    }

    #[test]
    fn tokens_count_and_the_least_recently_used_idle_logs_go_first() {
        let budget = FileBudget::new(10);
        let logs: Vec<Arc<Fake>> = (0..4)
            .map(|i| {
                let handles = budget.new_log();
                let tokens = (0..3).map(|_| handles.open_file()).collect();
                let f = Arc::new(Fake {
                    handles,
                    tokens: Mutex::new(tokens),
                    busy: i == 1,
                });
                let weak: Weak<dyn ReleaseFiles> =
                    Arc::downgrade(&(f.clone() as Arc<dyn ReleaseFiles>));
                f.handles.set_log(weak);
                f.handles.touch();
                f
            })
            .collect();
        assert_eq!(budget.open_files(), 12);
        // Log 3 is the caller and 0 the oldest: 0 goes (12 → 9, the target); 1 (busy) and 2 stay.
        assert_eq!(budget.enforce(logs[3].handles.id()), 1);
        assert_eq!(budget.open_files(), 9);
        assert_eq!(logs[0].handles.open_files(), 0);
        assert_eq!(logs[1].handles.open_files(), 3);
        assert_eq!(logs[2].handles.open_files(), 3);
        assert_eq!(budget.enforce(logs[3].handles.id()), 0, "under the bound");
        drop(logs);
        assert_eq!(budget.open_files(), 0);
        assert!(budget.registry().is_empty());
    }

    #[test]
    fn the_default_bound_follows_the_limits() {
        let n = default_max_open_files();
        assert!(n >= MIN_MAX_OPEN_FILES);
        if let Some(fds) = nofile_limit() {
            assert!(n as u64 <= (fds / 2).max(MIN_MAX_OPEN_FILES as u64));
        }
    }
}
