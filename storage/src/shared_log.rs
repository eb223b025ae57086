//! [`SharedLog`]: a partition log as the node shares it — behind its own mutex, registered with
//! the node's [`crate::FileBudget`] for eviction — and [`lock_log`], whose guard keeps the log
//! within that budget when let go ([`UnifiedLog::settle`]).
//!
//! It owns only the sharing and the lock; the map of logs is [`crate::LogManager`]'s, and the
//! cleaner ([`crate::LogCleaner`]) takes the same lock. Lock order: see [`crate::log_manager`].

use crate::file_budget::ReleaseFiles;
use crate::unified_log::UnifiedLog;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError, Weak};

/// A shared partition log.
pub type SharedLog = Arc<Mutex<UnifiedLog>>;

/// Locks a log; a panic while holding it leaves the log as the panicking call left it, which
/// the next call may still use (every change is written before state is updated). Letting go
/// of the guard keeps the log within its file budget ([`UnifiedLog::settle`]).
pub fn lock_log(log: &SharedLog) -> LogGuard<'_> {
    LogGuard(log.lock().unwrap_or_else(|e| e.into_inner()))
}

/// A locked log. On drop, before the lock is let go, the log settles its open files
/// ([`UnifiedLog::settle`]): what a use opened beyond the budget is released.
#[derive(Debug)]
pub struct LogGuard<'a>(MutexGuard<'a, UnifiedLog>);

impl Deref for LogGuard<'_> {
    type Target = UnifiedLog;
    fn deref(&self) -> &UnifiedLog {
        &self.0
    }
}

impl DerefMut for LogGuard<'_> {
    fn deref_mut(&mut self) -> &mut UnifiedLog {
        &mut self.0
    }
}

impl Drop for LogGuard<'_> {
    fn drop(&mut self) {
        self.0.settle();
    }
}

/// The budget's eviction: a log whose lock is free has all its files released.
impl ReleaseFiles for Mutex<UnifiedLog> {
    fn try_release_files(&self) -> bool {
        let mut log = match self.try_lock() {
            Ok(log) => log,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return false,
        };
        match log.release() {
            Ok(()) => true,
            Err(e) => {
                let tp = log.topic_partition();
                tracing::warn!(topic = %tp.topic, partition = tp.partition, error = %e, "cannot release a log's files");
                false
            }
        }
    }
}

/// A log shared under its mutex, registered with its budget for eviction.
pub fn share_log(log: UnifiedLog) -> SharedLog {
    let shared = Arc::new(Mutex::new(log));
    let weak: Weak<Mutex<UnifiedLog>> = Arc::downgrade(&shared);
    let weak: Weak<dyn ReleaseFiles> = weak;
    lock_log(&shared).handles().set_log(weak);
    shared
}
