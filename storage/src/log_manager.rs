//! `LogManager`: the log directories of a node and every partition log in them.
//!
//! Each directory holds one sub-directory per partition (`<topic>-<partition>`), and at its top
//! the recovery-point, log-start-offset and replication-offset (high watermark) checkpoints and,
//! after a clean shutdown, the `.kafka_cleanshutdown` marker. Opening a directory reads the
//! checkpoints, opens every log (rescanning those that need it when the marker is absent), then
//! removes the marker so that a crash from now on is detected. Logs are released after loading
//! (no descriptors or mappings held) and reopen their files on first use.
//!
//! A log that cannot be opened at startup is left out and remembered as offline
//! ([`LogManager::offline_log`]): the node starts and serves every other partition, and that
//! partition's log is never re-created elsewhere; the replica manager reports it to the
//! controller as it does a log that cannot be created.
//!
//! Open files are bounded node-wide by a [`FileBudget`] (by default derived from the process's
//! `RLIMIT_NOFILE` and `vm.max_map_count`): every log counts its open segment files and index
//! maps against it, and the guard [`lock_log`] returns keeps the log within it when let go
//! ([`UnifiedLog::settle`]), releasing the least recently used logs' files when the node holds
//! too many. Released files reopen on their next use.
//!
//! Thread-safety: the map of logs is behind a mutex held only to look up, insert or remove an
//! entry (never during I/O on a log); each log is behind its own mutex. Lock order: the
//! checkpoint writer's (a whole pass of [`LogManager::checkpoint_only`]), then the map, then a
//! log, then the budget's registry (briefly, never while taking a log's lock); another log's lock
//! is only ever *tried* while one is held (the budget's eviction), never waited for.

use crate::checkpoint::{OffsetCheckpointFile, TopicPartition};
use crate::config::LogConfig;
use crate::error::{IoContext, Result, StorageError};
use crate::file_budget::FileBudget;
use crate::fs::FileSystem;
use crate::log_cleaner::{
    CleanStats, LogCleaner, CLEANER_OFFSET_CHECKPOINT, DEFAULT_DEDUPE_BUFFER_SIZE,
};
use crate::producer_state::DEFAULT_PRODUCER_ID_EXPIRATION_MS;
pub use crate::shared_log::{lock_log, share_log, LogGuard, SharedLog};
use crate::unified_log::{LogCheckpoints, UnifiedLog};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
/// The metadata quorum's log topic: never a partition of the log manager's.
pub const METADATA_TOPIC: &str = "__cluster_metadata";
pub use crate::checkpoint::{
    CheckpointKind, LOG_START_OFFSET_CHECKPOINT, RECOVERY_POINT_CHECKPOINT,
    REPLICATION_OFFSET_CHECKPOINT,
};

/// Threads per log directory that load logs at startup and close them at shutdown, unless
/// configured (`num.recovery.threads.per.data.dir`; Kafka's default is 1). The work waits on
/// the disk: 8 threads recover 10,000 logs after a crash 9 times faster than one.
pub const DEFAULT_RECOVERY_THREADS: usize = 8;

/// Runs `f` over `items` on up to `threads` threads (the caller's among them), each taking the
/// next item as it finishes one; the results in the order of `items`. A thread that cannot be
/// started leaves its share to the others.
fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(item) = items.get(i) else {
                return done;
            };
            done.push((i, f(item)));
        }
    };
    let parts: Vec<Vec<(usize, R)>> = std::thread::scope(|s| {
        let spawned: Vec<_> = (1..threads)
            .filter_map(|n| {
                std::thread::Builder::new()
                    .name(format!("log-load-{n}"))
                    .spawn_scoped(s, work)
                    .ok()
            })
            .collect();
        let mut parts = vec![work()];
        for h in spawned {
            match h.join() {
                Ok(p) => parts.push(p),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        parts
    });
    let mut out: Vec<Option<R>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    for (i, r) in parts.into_iter().flatten() {
        out[i] = Some(r);
    }
    out.into_iter()
        .map(|r| r.expect("invariant: every item was taken by a thread"))
        .collect()
}

/// The longest file name Linux (and every file system Kafka runs on) accepts.
const MAX_FILE_NAME_BYTES: usize = 255;
/// The suffix of a partition directory being deleted (Kafka's `DeleteDirSuffix`).
pub const DELETE_DIR_SUFFIX: &str = "-delete";

/// The name a partition directory takes while it is deleted, Kafka's `logDeleteDirName`:
/// `<topic>-<partition>.<unique id>-delete`, the topic cut short so the whole fits a file name
/// (255 bytes). A topic name may have 249 characters, so the plain form would not fit; the
/// name is never parsed back (a `-delete` directory is only removed), so nothing is lost.
pub fn delete_dir_name(tp: &TopicPartition, unique_id: u128) -> String {
    let suffix = format!("-{}.{unique_id:032x}{DELETE_DIR_SUFFIX}", tp.partition);
    let mut keep = tp
        .topic
        .len()
        .min(MAX_FILE_NAME_BYTES.saturating_sub(suffix.len()));
    // Topic names are ASCII; a boundary check keeps any other name valid UTF-8 all the same.
    while !tp.topic.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}{suffix}", &tp.topic[..keep])
}

/// A value unique to this deletion (Kafka takes a random UUID): the clock's nanoseconds, the
/// process id and a counter, so two deletions of one partition never collide.
fn unique_id() -> u128 {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    (nanos << 32) ^ (u128::from(std::process::id()) << 16) ^ u128::from(n)
}

#[derive(Debug)]
struct LogEntry {
    dir: PathBuf,
    log: SharedLog,
}

#[derive(Debug)]
pub struct LogManager {
    fs: Arc<dyn FileSystem>,
    dirs: Vec<PathBuf>,
    logs: Mutex<BTreeMap<TopicPartition, LogEntry>>,
    /// Logs found at startup that could not be opened: their directory and why. Never created
    /// afresh elsewhere (that would fork the partition's data); only deleted, with the topic.
    offline: Mutex<BTreeMap<TopicPartition, (PathBuf, String)>>,
    /// Held for a whole cleaning pass (one cleaner at a time); taken before any log's lock.
    cleaner: Mutex<LogCleaner>,
    /// The bound on open segment files and index maps, shared by every log.
    budget: Arc<FileBudget>,
    /// Threads that load logs at startup and close them at shutdown (all directories').
    threads: usize,
    /// `producer.id.expiration.ms`: the retention pass forgets producers idle this long.
    producer_id_expiration_ms: AtomicI64,
    /// A log was deleted since the checkpoints were last written: they still hold its offsets,
    /// which a log created under the same name must not inherit after a crash (see
    /// [`LogManager::forget_deleted_in_checkpoints`]).
    deleted_since_checkpoint: AtomicBool,
    /// Held for a whole pass of [`LogManager::checkpoint_only`]: the periodic tasks, a deletion's
    /// rewrite and shutdown all write the same files through the same temporary name, and two
    /// passes at once could rename the other's file away (ENOENT) or go back in time.
    checkpoint_writer: Mutex<()>,
}

impl LogManager {
    /// Opens every log in `dirs` (creating the directories if needed). `config_for` gives each
    /// topic its config (broker defaults plus topic overrides); it is asked once per topic.
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dirs: &[PathBuf],
        config_for: &dyn Fn(&TopicPartition) -> LogConfig,
        now_ms: i64,
    ) -> Result<LogManager> {
        Self::open_with_budget(
            fs,
            dirs,
            config_for,
            now_ms,
            FileBudget::from_process_limits(),
            DEFAULT_RECOVERY_THREADS,
        )
    }

    /// [`LogManager::open`] with an explicit bound on open files ([`FileBudget`]) and number of
    /// threads per directory that load (and, after a crash, recover) its logs and close them at
    /// shutdown (Kafka's `num.recovery.threads.per.data.dir`).
    ///
    /// Loading is per log and independent of the others, so the logs are loaded in parallel,
    /// each by one thread from start to end (its recovery included) before anything is served:
    /// no log is used before it is recovered. Mostly the threads wait for the disk (reads,
    /// fsyncs of rebuilt indexes), so more threads than cores still help.
    pub fn open_with_budget(
        fs: Arc<dyn FileSystem>,
        dirs: &[PathBuf],
        config_for: &dyn Fn(&TopicPartition) -> LogConfig,
        now_ms: i64,
        budget: Arc<FileBudget>,
        recovery_threads_per_dir: usize,
    ) -> Result<LogManager> {
        /// One log to load.
        struct Load {
            dir: usize,
            tp: TopicPartition,
            path: PathBuf,
            checkpoints: LogCheckpoints,
            config: Arc<LogConfig>,
        }
        let mut loads = Vec::new();
        let mut clean_dirs = Vec::new();
        // A topic's partitions share its config: asked for once per topic.
        let mut configs: std::collections::HashMap<String, Arc<LogConfig>> =
            std::collections::HashMap::new();
        for (d, dir) in dirs.iter().enumerate() {
            fs.create_dir_all(dir).at(dir)?;
            let marker = dir.join(CLEAN_SHUTDOWN_FILE);
            let clean = fs.exists(&marker);
            let recovery =
                OffsetCheckpointFile::new(fs.clone(), dir.join(RECOVERY_POINT_CHECKPOINT))
                    .read()?;
            let starts =
                OffsetCheckpointFile::new(fs.clone(), dir.join(LOG_START_OFFSET_CHECKPOINT))
                    .read()?;
            let hws =
                OffsetCheckpointFile::new(fs.clone(), dir.join(REPLICATION_OFFSET_CHECKPOINT))
                    .read()?;
            for p in fs.list_dir(dir).at(dir)? {
                if !fs.is_dir(&p) {
                    continue;
                }
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if name.ends_with(DELETE_DIR_SUFFIX) {
                    // A deletion a crash interrupted.
                    fs.remove_dir_all(&p).at(&p)?;
                    continue;
                }
                let Some(tp) = TopicPartition::parse_dir_name(&name) else {
                    continue;
                };
                if tp.topic == METADATA_TOPIC {
                    // The controller quorum's own log (KRaft keeps it beside the partitions).
                    continue;
                }
                let checkpoints = LogCheckpoints {
                    recovery_point: recovery.get(&tp).copied().unwrap_or(0),
                    log_start_offset: starts.get(&tp).copied().unwrap_or(0),
                    high_watermark: hws.get(&tp).copied().unwrap_or(0),
                    clean_shutdown: clean,
                };
                let config = match configs.get(&tp.topic) {
                    Some(c) => c.clone(),
                    None => {
                        let c = Arc::new(config_for(&tp));
                        configs.insert(tp.topic.clone(), c.clone());
                        c
                    }
                };
                loads.push(Load {
                    dir: d,
                    tp,
                    path: p,
                    checkpoints,
                    config,
                });
            }
            if clean {
                clean_dirs.push(dir.clone());
            }
        }
        let threads = recovery_threads_per_dir
            .max(1)
            .saturating_mul(dirs.len().max(1));
        let opened = parallel_map(&loads, threads, |l| {
            UnifiedLog::open_with_budget(
                fs.clone(),
                &l.path,
                l.tp.clone(),
                l.config.clone(),
                l.checkpoints,
                now_ms,
                &budget,
            )
            .and_then(|mut log| log.release().map(|()| log))
        });
        let mut logs = BTreeMap::new();
        let mut offline = BTreeMap::new();
        for (l, opened) in loads.into_iter().zip(opened) {
            let Load { dir, tp, path, .. } = l;
            let log = match opened {
                Ok(log) => log,
                Err(e) => {
                    // One log that cannot be opened takes only its partition offline (Kafka
                    // takes its whole directory): the others are served.
                    tracing::error!(topic = %tp.topic, partition = tp.partition, error = %e, "cannot open log: partition offline until restart");
                    offline.insert(tp, (path, e.to_string()));
                    continue;
                }
            };
            if logs.contains_key(&tp) || offline.contains_key(&tp) {
                return Err(StorageError::CorruptFile {
                    path,
                    what: format!("{tp} is in two log directories"),
                });
            }
            logs.insert(
                tp,
                LogEntry {
                    dir: dirs[dir].clone(),
                    log: share_log(log),
                },
            );
        }
        for dir in clean_dirs {
            let marker = dir.join(CLEAN_SHUTDOWN_FILE);
            fs.remove_file(&marker).at(&marker)?;
            fs.sync_dir(&dir).at(&dir)?;
        }
        Ok(LogManager {
            cleaner: Mutex::new(LogCleaner::new(fs.clone(), DEFAULT_DEDUPE_BUFFER_SIZE)),
            fs,
            dirs: dirs.to_vec(),
            logs: Mutex::new(logs),
            offline: Mutex::new(offline),
            budget,
            threads,
            producer_id_expiration_ms: AtomicI64::new(DEFAULT_PRODUCER_ID_EXPIRATION_MS),
            deleted_since_checkpoint: AtomicBool::new(false),
            checkpoint_writer: Mutex::new(()),
        })
    }

    fn map(&self) -> MutexGuard<'_, BTreeMap<TopicPartition, LogEntry>> {
        self.logs.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    pub fn get_log(&self, tp: &TopicPartition) -> Option<SharedLog> {
        self.map().get(tp).map(|e| e.log.clone())
    }

    /// Every partition this node has a log for.
    pub fn partitions(&self) -> Vec<TopicPartition> {
        self.map().keys().cloned().collect()
    }

    /// The log of `tp`, created empty in the least loaded directory if it does not exist.
    pub fn get_or_create_log(
        &self,
        tp: &TopicPartition,
        config: impl Into<Arc<LogConfig>>,
        now_ms: i64,
    ) -> Result<SharedLog> {
        if let Some(existing) = self.existing_log(tp) {
            return existing;
        }
        self.forget_deleted_in_checkpoints();
        let dir = self.next_dirs(1).remove(0);
        let path = dir.join(tp.dir_name());
        let log = UnifiedLog::open_with_budget(
            self.fs.clone(),
            &path,
            tp.clone(),
            config,
            LogCheckpoints::default(),
            now_ms,
            &self.budget,
        )?;
        self.fs.sync_dir(&dir).at(&dir)?;
        Ok(self.insert_new(tp, dir, log))
    }

    /// The logs of many partitions, those that do not exist created at once (a topic's
    /// creation, a metadata delta): each as [`LogManager::get_or_create_log`] creates it, on
    /// the loading threads, but their names made durable together — every new log's directory
    /// fsynced once all were created (the first fsync commits them all to the file system's
    /// journal), then each parent directory once — rather than two fsyncs a log, one log after
    /// the other. A log is returned (and used) only once its names are durable. The results are
    /// in the order asked.
    pub fn create_logs(
        &self,
        logs: &[(TopicPartition, Arc<LogConfig>)],
        now_ms: i64,
    ) -> Vec<Result<SharedLog>> {
        let mut results: Vec<Option<Result<SharedLog>>> = Vec::with_capacity(logs.len());
        let mut new = Vec::new();
        for (i, (tp, _)) in logs.iter().enumerate() {
            let existing = self.existing_log(tp);
            if existing.is_none() {
                new.push(i);
            }
            results.push(existing);
        }
        if !new.is_empty() {
            self.forget_deleted_in_checkpoints();
        }
        let jobs: Vec<(usize, PathBuf)> = new.into_iter().zip(self.next_dirs(logs.len())).collect();
        let created = parallel_map(&jobs, self.threads, |(i, dir)| {
            let (tp, config) = &logs[*i];
            let log = UnifiedLog::create_unsynced(
                self.fs.clone(),
                &dir.join(tp.dir_name()),
                tp.clone(),
                config.clone(),
                now_ms,
                &self.budget,
            );
            (*i, dir.clone(), log)
        });
        // Every log created: now their directories, in the order they were made.
        let mut created: Vec<(usize, PathBuf, Result<UnifiedLog>)> = created
            .into_iter()
            .map(|(i, dir, log)| {
                let log = log.and_then(|log| {
                    self.fs.sync_dir(log.dir()).at(log.dir())?;
                    Ok(log)
                });
                (i, dir, log)
            })
            .collect();
        let mut parents: Vec<PathBuf> = created.iter().map(|(_, d, _)| d.clone()).collect();
        parents.sort();
        parents.dedup();
        for parent in parents {
            if let Err(e) = self.fs.sync_dir(&parent) {
                let why = e.to_string();
                for (_, dir, log) in created.iter_mut().filter(|(_, d, _)| *d == parent) {
                    if log.is_ok() {
                        *log = Err(StorageError::Io {
                            path: dir.clone(),
                            source: std::io::Error::new(e.kind(), why.clone()),
                        });
                    }
                }
            }
        }
        for (i, dir, log) in created {
            results[i] = Some(log.map(|log| self.insert_new(&logs[i].0, dir, log)));
        }
        results
            .into_iter()
            .map(|r| r.expect("invariant: every log found or created"))
            .collect()
    }

    /// What [`LogManager::get_or_create_log`] answers without creating: the log if it exists,
    /// an error for the metadata log and for a log that could not be opened at startup.
    fn existing_log(&self, tp: &TopicPartition) -> Option<Result<SharedLog>> {
        if tp.topic == METADATA_TOPIC {
            // Its directory is the controller quorum's log (it may share this log dir): never
            // opened, created or deleted as a partition, whatever an image says.
            return Some(Err(StorageError::InvalidArgument {
                partition: tp.to_string(),
                what: "the metadata log is not a partition log".into(),
            }));
        }
        if let Some(l) = self.get_log(tp) {
            return Some(Ok(l));
        }
        if let Some((path, why)) = self.offline_log(tp) {
            return Some(Err(StorageError::Io {
                path,
                source: std::io::Error::other(format!("log could not be opened at startup: {why}")),
            }));
        }
        None
    }

    /// The directories `n` new logs go to, each the least loaded when its turn comes.
    fn next_dirs(&self, n: usize) -> Vec<PathBuf> {
        match self.dirs.as_slice() {
            // One directory (the usual case): no counting. Counting every log at every creation
            // made creating N partitions O(N²): 30,000 took minutes.
            [only] => vec![only.clone(); n],
            // Several: the one with the fewest logs, counted in one pass (as Kafka's
            // `nextLogDirs` does).
            dirs => {
                let mut counts = vec![0usize; dirs.len()];
                for e in self.map().values() {
                    if let Some(i) = dirs.iter().position(|d| *d == e.dir) {
                        counts[i] += 1;
                    }
                }
                (0..n)
                    .map(|_| {
                        let i = (0..dirs.len())
                            .min_by_key(|i| counts[*i])
                            .expect("invariant: at least one log dir");
                        counts[i] += 1;
                        dirs[i].clone()
                    })
                    .collect()
            }
        }
    }

    /// Registers a log just created in `dir` (or, if another caller created it meanwhile,
    /// keeps theirs) and keeps the budget: a new log holds its first segment's files.
    fn insert_new(&self, tp: &TopicPartition, dir: PathBuf, log: UnifiedLog) -> SharedLog {
        let mut map = self.map();
        let entry = map.entry(tp.clone()).or_insert_with(|| LogEntry {
            dir,
            log: share_log(log),
        });
        let log = entry.log.clone();
        drop(map);
        lock_log(&log);
        log
    }

    /// Removes a partition's log: its directory is renamed [`delete_dir_name`] (so a crash
    /// finishes the deletion at the next start) and then removed.
    pub fn delete_log(&self, tp: &TopicPartition) -> Result<bool> {
        let (parent, from, _log) = match self.map().remove(tp) {
            Some(entry) => {
                let mut log = lock_log(&entry.log);
                log.release()?;
                let from = log.dir().to_path_buf();
                drop(log);
                (entry.dir, from, Some(entry.log))
            }
            None => {
                // A log that could not be opened goes with its topic all the same.
                let offline = self
                    .offline
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(tp);
                match offline.and_then(|(path, _)| Some((path.parent()?.to_path_buf(), path))) {
                    Some((parent, path)) => (parent, path, None),
                    None => return Ok(false),
                }
            }
        };
        self.deleted_since_checkpoint.store(true, Ordering::Relaxed);
        let to = parent.join(delete_dir_name(tp, unique_id()));
        self.fs.rename(&from, &to).at(&from)?;
        self.fs.sync_dir(&parent).at(&parent)?;
        self.fs.remove_dir_all(&to).at(&to)?;
        Ok(true)
    }

    /// Why `tp`'s log is offline, if it could not be opened at startup (its directory, and the
    /// error).
    pub fn offline_log(&self, tp: &TopicPartition) -> Option<(PathBuf, String)> {
        self.offline
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(tp)
            .cloned()
    }

    fn logs_by_dir(&self) -> Vec<(PathBuf, Vec<(TopicPartition, SharedLog)>)> {
        let map = self.map();
        self.dirs
            .iter()
            .map(|d| {
                let logs = map
                    .iter()
                    .filter(|(_, e)| &e.dir == d)
                    .map(|(tp, e)| (tp.clone(), e.log.clone()))
                    .collect();
                (d.clone(), logs)
            })
            .collect()
    }

    /// Runs the flushes that segment rolls left behind ([`UnifiedLog::take_roll_flush`]), each
    /// log's fsyncs made without its lock, so that its appends go on meanwhile; each recovery
    /// point advances once its flush has completed. Blocking: for a background thread, soon
    /// after rolls ([`UnifiedLog::has_roll_flush`]). Returns how many logs were flushed.
    pub fn flush_rolled_segments(&self) -> Result<usize> {
        let logs: Vec<SharedLog> = self.map().values().map(|e| e.log.clone()).collect();
        let mut n = 0;
        for log in logs {
            let Some(flush) = lock_log(&log).take_roll_flush()? else {
                continue;
            };
            if let Err(e) = flush.run() {
                lock_log(&log).abandon_flush(flush);
                return Err(e);
            }
            lock_log(&log).complete_flush(flush);
            n += 1;
        }
        Ok(n)
    }

    /// Writes the three checkpoints of every directory (atomically and durably), after the
    /// flushes that rolls left (so the recovery points written include them).
    pub fn checkpoint(&self) -> Result<()> {
        self.checkpoint_only(&CheckpointKind::ALL)
    }

    /// Writes the `kinds` of checkpoint of every directory; the recovery points after the
    /// flushes rolls left (so that they include them).
    pub fn checkpoint_only(&self, kinds: &[CheckpointKind]) -> Result<()> {
        // A pass that panicked wrote nothing shared but a temporary file the next one truncates.
        let _writer = self
            .checkpoint_writer
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if kinds.contains(&CheckpointKind::RecoveryPoints) {
            self.flush_rolled_segments()?;
        }
        for (dir, logs) in self.logs_by_dir() {
            let mut offsets: Vec<BTreeMap<TopicPartition, i64>> =
                vec![BTreeMap::new(); kinds.len()];
            for (tp, log) in logs {
                let log = lock_log(&log);
                for (kind, map) in kinds.iter().zip(&mut offsets) {
                    let offset = match kind {
                        CheckpointKind::HighWatermarks => log.high_watermark(),
                        CheckpointKind::RecoveryPoints => log.recovery_point(),
                        CheckpointKind::LogStartOffsets => log.log_start_offset(),
                    };
                    map.insert(tp.clone(), offset);
                }
            }
            for (kind, map) in kinds.iter().zip(&offsets) {
                OffsetCheckpointFile::new(self.fs.clone(), dir.join(kind.file_name()))
                    .write(map)?;
            }
        }
        Ok(())
    }

    /// One retention pass over every log: deletes expired segments, removes `.deleted` files
    /// whose delay has passed and forgets idle producers. Returns the segments deleted.
    pub fn cleanup_logs(&self, now_ms: i64) -> Result<usize> {
        let logs: Vec<SharedLog> = self.map().values().map(|e| e.log.clone()).collect();
        let expiration_ms = self.producer_id_expiration_ms.load(Ordering::Relaxed);
        let mut n = 0;
        for log in logs {
            let mut log = lock_log(&log);
            n += log.delete_old_segments(now_ms)?;
            log.remove_deleted_segments(now_ms)?;
            log.remove_expired_producers(now_ms, expiration_ms);
        }
        Ok(n)
    }

    /// Before a log is created: if one was deleted since the checkpoints were written, writes
    /// them now, without it. Otherwise a partition deleted and created again under the same
    /// name, then a crash before the next scheduled write, would load the new log with the old
    /// one's recovery point, log start offset and high watermark (Kafka rewrites a directory's
    /// checkpoints right after a deletion for the same reason). Once per deletion burst, not
    /// once per log. A failed write is logged and tried again at the next creation.
    fn forget_deleted_in_checkpoints(&self) {
        if !self.deleted_since_checkpoint.swap(false, Ordering::Relaxed) {
            return;
        }
        if let Err(e) = self.checkpoint_only(&CheckpointKind::ALL) {
            self.deleted_since_checkpoint.store(true, Ordering::Relaxed);
            tracing::warn!(error = %e, "could not rewrite the checkpoints after a log deletion");
        }
    }

    /// `producer.id.expiration.ms` (Kafka's default until set; at least 1 ms).
    pub fn set_producer_id_expiration_ms(&self, ms: i64) {
        self.producer_id_expiration_ms
            .store(ms.max(1), Ordering::Relaxed);
    }

    /// `log.cleaner.dedupe.buffer.size`: the most the cleaner's offset map holds.
    pub fn set_cleaner_dedupe_buffer_size(&self, bytes: usize) {
        self.cleaner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .set_dedupe_buffer_size(bytes);
    }

    /// One pass of the log cleaner over every log whose `cleanup.policy` includes `compact`
    /// ([`LogCleaner::clean_log`]), each directory's `cleaner-offset-checkpoint` rewritten after
    /// the logs it cleaned. Blocking and long: for a background thread, every
    /// `log.cleaner.backoff.ms`. Returns what was done, summed over the logs.
    ///
    /// Faults are isolated per partition, as Kafka's `LogCleanerManager` does with its
    /// `uncleanablePartitions`: a log whose clean fails (a corrupt batch, a decompression
    /// failure, an I/O error on its files) is marked uncleanable, logged once, and skipped by
    /// every later pass, while the other logs go on being cleaned. The mark is held in memory
    /// against that very log (its `SharedLog`): it ends when the partition is deleted (or deleted
    /// and re-created under the same name — a new log) or the broker restarts, as in Kafka.
    /// Kafka takes the whole log directory offline for an `IOException` while cleaning; here only
    /// the partition is set aside, since its appends and reads report their own I/O errors.
    /// Only a directory's checkpoint file failing to be read or written is an error of the pass,
    /// and only after every directory was tried.
    pub fn clean_logs(&self, now_ms: i64) -> Result<CleanStats> {
        let mut cleaner = self.cleaner.lock().unwrap_or_else(|e| e.into_inner());
        let mut total = CleanStats::default();
        let mut first_error = None;
        let by_dir = self.logs_by_dir();
        // Kafka's `maintainUncleanablePartitions`: marks of deleted logs go with them.
        cleaner.retain_uncleanable(|tp, log| {
            by_dir
                .iter()
                .flat_map(|(_, logs)| logs)
                .any(|(t, l)| t == tp && Arc::ptr_eq(l, log))
        });
        for (dir, logs) in by_dir {
            let file =
                OffsetCheckpointFile::new(self.fs.clone(), dir.join(CLEANER_OFFSET_CHECKPOINT));
            let mut checkpoints = match file.read() {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(dir = %dir.display(), error = %e, "cannot read the cleaner checkpoint: directory not cleaned");
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            let mut cleaned = false;
            for (tp, log) in &logs {
                if cleaner.is_uncleanable(tp, log) {
                    continue;
                }
                let (offset, stats) = match cleaner.clean_log(
                    tp,
                    log,
                    checkpoints.get(tp).copied(),
                    now_ms,
                ) {
                    Ok(Some(done)) => done,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(topic = %tp.topic, partition = tp.partition, error = %e, "cleaning failed: partition marked uncleanable until it is deleted or the broker restarts");
                        cleaner.mark_uncleanable(tp, log);
                        continue;
                    }
                };
                checkpoints.insert(tp.clone(), offset);
                cleaned = true;
                total.segments_cleaned += stats.segments_cleaned;
                total.bytes_read += stats.bytes_read;
                total.bytes_written += stats.bytes_written;
                total.records_read += stats.records_read;
                total.records_kept += stats.records_kept;
                total.tombstones_dropped += stats.tombstones_dropped;
            }
            if cleaned {
                // Deleted partitions leave the file with them.
                checkpoints.retain(|tp, _| logs.iter().any(|(t, _)| t == tp));
                if let Err(e) = file.write(&checkpoints) {
                    tracing::error!(dir = %dir.display(), error = %e, "cannot write the cleaner checkpoint");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(total),
        }
    }

    /// The partitions the cleaner has set aside after a failure ([`LogManager::clean_logs`]).
    pub fn uncleanable_partitions(&self) -> Vec<TopicPartition> {
        self.cleaner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .uncleanable_partitions()
    }

    /// A clean shutdown: every log closed (indexes trimmed, producer snapshots written), then
    /// each directory's file system synced once (`syncfs(2)`, rather than several fsyncs per
    /// log: 100,000 logs would take minutes), then the recovery points moved to the log ends
    /// the closes saw, the checkpoints written, and the clean-shutdown marker, durably, in
    /// every directory. A failed sync fails the shutdown: no marker, so the next start recovers.
    pub fn shutdown(&self, now_ms: i64) -> Result<()> {
        let logs: Vec<SharedLog> = self.map().values().map(|e| e.log.clone()).collect();
        let closed = parallel_map(&logs, self.threads, |log| lock_log(log).close_unsynced())
            .into_iter()
            .collect::<Result<Vec<i64>>>()?;
        for dir in &self.dirs {
            self.fs.sync_filesystem(dir).at(dir)?;
        }
        for (log, end) in logs.iter().zip(closed) {
            lock_log(log).mark_flushed(end, now_ms);
        }
        self.checkpoint()?;
        for dir in &self.dirs {
            let marker = dir.join(CLEAN_SHUTDOWN_FILE);
            self.fs.write_atomic(&marker, b"").at(&marker)?;
        }
        Ok(())
    }

    /// The directory a log lives in.
    pub fn log_dir_of(&self, tp: &TopicPartition) -> Option<PathBuf> {
        self.map().get(tp).map(|e| e.dir.clone())
    }

    pub fn fs(&self) -> &Arc<dyn FileSystem> {
        &self.fs
    }

    /// The bound on open segment files and index maps every log counts against.
    pub fn file_budget(&self) -> &Arc<FileBudget> {
        &self.budget
    }

    /// Whether a path is one of our log directories.
    pub fn is_log_dir(&self, p: &Path) -> bool {
        self.dirs.iter().any(|d| d == p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::SimFs;
    use bytes::Bytes;
    use rafka_protocol::record_batch::RecordBatchBuilder;

    /// A node's logs in `dir`, on the real file system, every topic with the default config.
    fn open_on_disk(dir: &Path) -> LogManager {
        LogManager::open(
            Arc::new(crate::fs::DiskFs),
            &[dir.to_path_buf()],
            &|_| LogConfig::default(),
            0,
        )
        .expect("the node opens")
    }

    fn batch() -> Bytes {
        let mut b = RecordBatchBuilder::new(0);
        b.append(0, Some(b"k"), Some(&[7; 100]), &[])
            .expect("record fits");
        b.build()
    }

    /// Kafka allows 249-character topic names: `<topic>-<partition>` fits a file name, but the
    /// directory's name during deletion must be cut short to fit too.
    #[test]
    fn a_partition_of_a_249_character_topic_is_created_and_deleted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lm = open_on_disk(dir.path());
        let tp = TopicPartition::new("t".repeat(249), 12_345);
        let log = lm
            .get_or_create_log(&tp, LogConfig::default(), 0)
            .expect("log");
        lock_log(&log)
            .append_as_leader(&batch(), 0, 0)
            .expect("append");
        drop(log);
        assert!(lm.delete_log(&tp).expect("deleted"));
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .collect();
        assert!(left.is_empty(), "{left:?}");
        let name = delete_dir_name(&tp, u128::MAX);
        assert_eq!(name.len(), 255);
        assert!(name.ends_with(&format!("-12345.{}-delete", "f".repeat(32))));
        // A short name is kept whole.
        assert_eq!(
            delete_dir_name(&TopicPartition::new("t", 0), 1),
            format!("t-0.{:032x}-delete", 1)
        );
    }

    /// A log that cannot be opened takes only its partition offline: the node opens, serves
    /// the others, never re-creates that log, and deletes it with its topic.
    #[test]
    fn a_log_that_cannot_be_opened_is_offline_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let open = || open_on_disk(dir.path());
        let (bad, good) = (
            TopicPartition::new("bad", 0),
            TopicPartition::new("good", 0),
        );
        {
            let lm = open();
            for tp in [&bad, &good] {
                let log = lm
                    .get_or_create_log(tp, LogConfig::default(), 0)
                    .expect("log");
                lock_log(&log)
                    .append_as_leader(&batch(), 0, 0)
                    .expect("append");
            }
            lm.shutdown(0).expect("shutdown");
        }
        // Where the first segment's file must be, a directory: the log cannot be opened.
        let segment = dir.path().join("bad-0").join("00000000000000000000.log");
        std::fs::remove_file(&segment).expect("remove");
        std::fs::create_dir(&segment).expect("dir in its place");
        let lm = open();
        assert!(lm.offline_log(&bad).is_some());
        assert_eq!(lm.partitions(), vec![good.clone()]);
        assert_eq!(
            lock_log(&lm.get_log(&good).expect("good is served")).log_end_offset(),
            1
        );
        assert!(
            lm.get_or_create_log(&bad, LogConfig::default(), 0).is_err(),
            "never re-created empty"
        );
        assert!(lm.delete_log(&bad).expect("deleted"));
        assert!(!dir.path().join("bad-0").exists());
        assert!(lm.offline_log(&bad).is_none());
        // Re-created (a new topic of that name): a new, empty log.
        let log = lm
            .get_or_create_log(&bad, LogConfig::default(), 0)
            .expect("log");
        assert_eq!(lock_log(&log).log_end_offset(), 0);
    }

    #[test]
    fn a_checkpoint_runs_the_flushes_rolls_left_and_records_their_recovery_points() {
        let fs = SimFs::new();
        let dir = PathBuf::from("/data/lm");
        let lm = LogManager::open(
            Arc::new(fs.clone()),
            std::slice::from_ref(&dir),
            &|_| LogConfig::default(),
            0,
        )
        .expect("open");
        let tp = TopicPartition::new("t", 0);
        let log = lm
            .get_or_create_log(&tp, LogConfig::default(), 0)
            .expect("log");
        let rolled_at = {
            let mut log = lock_log(&log);
            for _ in 0..3 {
                log.append_as_leader(&batch(), 0, 0).expect("append");
            }
            log.roll(0).expect("roll");
            log.append_as_leader(&batch(), 0, 0).expect("append");
            assert_eq!(log.recovery_point(), 0, "a roll syncs nothing itself");
            log.log_end_offset() - 1
        };
        lm.checkpoint().expect("checkpoint");
        assert_eq!(lock_log(&log).recovery_point(), rolled_at);
        assert!(!lock_log(&log).has_roll_flush());
        let written = OffsetCheckpointFile::new(Arc::new(fs), dir.join(RECOVERY_POINT_CHECKPOINT))
            .read()
            .expect("read");
        assert_eq!(written.get(&tp), Some(&rolled_at));
        assert_eq!(
            lm.flush_rolled_segments().expect("flush"),
            0,
            "nothing left"
        );
    }

    /// A clean shutdown syncs the file system once instead of each file: after a power cut
    /// right after it, every log is whole and trusted; a failed sync leaves no marker.
    #[test]
    fn a_clean_shutdown_is_durable_through_one_file_system_sync() {
        let fs = SimFs::new();
        let dir = PathBuf::from("/data/lm");
        let open = |fs: &SimFs| {
            LogManager::open(
                Arc::new(fs.clone()),
                std::slice::from_ref(&dir),
                &|_| LogConfig::default(),
                0,
            )
            .expect("open")
        };
        let lm = open(&fs);
        for p in 0..3 {
            let log = lm
                .get_or_create_log(&TopicPartition::new("t", p), LogConfig::default(), 0)
                .expect("log");
            let mut log = lock_log(&log);
            for _ in 0..=p {
                log.append_as_leader(&batch(), 0, 0).expect("append");
            }
            assert_eq!(log.recovery_point(), 0, "nothing fsynced yet");
        }
        lm.shutdown(0).expect("shutdown");
        drop(lm);
        fs.power_cut(None);
        assert!(fs.exists(&dir.join(CLEAN_SHUTDOWN_FILE)));
        let lm = open(&fs);
        for p in 0..3 {
            let log = lm.get_log(&TopicPartition::new("t", p)).expect("log");
            let log = lock_log(&log);
            assert_eq!(log.log_end_offset(), i64::from(p) + 1);
            assert_eq!(log.recovery_point(), i64::from(p) + 1);
        }
        let log = lm.get_log(&TopicPartition::new("t", 0)).expect("log");
        lock_log(&log)
            .append_as_leader(&batch(), 0, 0)
            .expect("append");
        drop(log);
        fs.set_fail_sync(true);
        assert!(lm.shutdown(0).is_err());
        fs.set_fail_sync(false);
        drop(lm);
        assert!(!fs.exists(&dir.join(CLEAN_SHUTDOWN_FILE)), "no marker");
    }

    /// Logs created in one batch are durably named once it returns (a power cut right after
    /// keeps them all), an existing log is returned as it is, and the metadata log is refused.
    #[test]
    fn logs_created_in_a_batch_survive_a_power_cut() {
        let fs = SimFs::new();
        let dir = PathBuf::from("/data/lm");
        let open = |fs: &SimFs| {
            LogManager::open_with_budget(
                Arc::new(fs.clone()),
                std::slice::from_ref(&dir),
                &|_| LogConfig::default(),
                0,
                FileBudget::unlimited(),
                3,
            )
            .expect("open")
        };
        let lm = open(&fs);
        let existing = lm
            .get_or_create_log(&TopicPartition::new("t", 0), LogConfig::default(), 0)
            .expect("log");
        let asked: Vec<(TopicPartition, Arc<LogConfig>)> = (0..5)
            .map(|p| TopicPartition::new("t", p))
            .chain([TopicPartition::new(METADATA_TOPIC, 0)])
            .map(|tp| (tp, Arc::new(LogConfig::default())))
            .collect();
        let got = lm.create_logs(&asked, 0);
        assert_eq!(got.len(), 6);
        assert!(Arc::ptr_eq(got[0].as_ref().expect("existing"), &existing));
        assert!(matches!(got[5], Err(StorageError::InvalidArgument { .. })));
        for (p, log) in got.iter().enumerate().take(5) {
            let log = log.as_ref().expect("created");
            assert_eq!(
                lock_log(log).topic_partition(),
                &TopicPartition::new("t", p as i32)
            );
        }
        drop((got, existing, lm));
        fs.power_cut(None);
        let lm = open(&fs);
        assert_eq!(
            lm.partitions(),
            (0..5)
                .map(|p| TopicPartition::new("t", p))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_metadata_log_is_never_a_partition() {
        let fs = SimFs::new();
        let dir = PathBuf::from("/data/lm");
        // The controller's log beside the partitions, as with metadata.log.dir = log.dirs.
        let meta = dir.join(TopicPartition::new(METADATA_TOPIC, 0).dir_name());
        fs.create_dir_all(&meta).expect("mkdir");
        let lm = LogManager::open(
            Arc::new(fs.clone()),
            std::slice::from_ref(&dir),
            &|_| LogConfig::default(),
            0,
        )
        .expect("open");
        assert!(lm.partitions().is_empty(), "not opened");
        let tp = TopicPartition::new(METADATA_TOPIC, 0);
        assert!(matches!(
            lm.get_or_create_log(&tp, LogConfig::default(), 0),
            Err(StorageError::InvalidArgument { .. })
        ));
        assert!(!lm.delete_log(&tp).expect("nothing to delete"));
        assert!(fs.is_dir(&meta), "left alone");
        assert!(lm.partitions().is_empty(), "not created");
    }

    /// A partition deleted and created again under the same name, then the process killed
    /// before any scheduled checkpoint: the new log does not inherit the old one's offsets —
    /// the creation rewrote the checkpoints without it — and a checkpointed log start offset
    /// past a log's end (an older file, or a damaged one) is ignored rather than panicking
    /// the load.
    /// The periodic tasks, a deletion's rewrite and shutdown may write the checkpoints at once
    /// (a node stopping right after it started does): every write must succeed. Before the
    /// passes were serialized, two renaming the same temporary file failed with ENOENT.
    #[test]
    fn checkpoints_written_at_once_by_several_threads_all_succeed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lm = Arc::new(open_on_disk(dir.path()));
        for p in 0..4 {
            lm.get_or_create_log(&TopicPartition::new("t", p), LogConfig::default(), 0)
                .expect("log");
        }
        let writers: Vec<_> = (0..4)
            .map(|_| {
                let lm = lm.clone();
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        lm.checkpoint().expect("a checkpoint pass");
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().expect("every pass succeeded");
        }
    }

    #[test]
    fn a_recreated_partition_does_not_inherit_the_deleted_ones_checkpoints() {
        let dir = tempfile::tempdir().expect("tempdir");
        let open = || open_on_disk(dir.path());
        let tp = TopicPartition::new("again", 0);
        let lm = open();
        let log = lm
            .get_or_create_log(&tp, LogConfig::default(), 0)
            .expect("log");
        {
            let mut log = lock_log(&log);
            for _ in 0..5 {
                log.append_as_leader(&batch(), 0, 0).expect("append");
            }
            log.set_high_watermark(5);
            log.increment_log_start_offset(4).expect("DeleteRecords");
        }
        lm.checkpoint().expect("checkpoint");
        let read = |name: &str| {
            OffsetCheckpointFile::new(Arc::new(crate::fs::DiskFs), dir.path().join(name))
                .read()
                .expect("read")
                .get(&tp)
                .copied()
        };
        assert_eq!(read(LOG_START_OFFSET_CHECKPOINT), Some(4));
        assert!(lm.delete_log(&tp).expect("delete"));
        let again = lm
            .get_or_create_log(&tp, LogConfig::default(), 0)
            .expect("again");
        lock_log(&again)
            .append_as_leader(&batch(), 0, 0)
            .expect("append");
        assert_eq!(
            read(LOG_START_OFFSET_CHECKPOINT),
            None,
            "rewritten without it"
        );
        assert_eq!(read(REPLICATION_OFFSET_CHECKPOINT), None);
        drop((again, log, lm)); // a crash: no clean shutdown, no checkpoint
        let lm = open();
        let log = lm.get_log(&tp).expect("loaded");
        assert_eq!(lock_log(&log).log_start_offset(), 0);
        assert_eq!(lock_log(&log).log_end_offset(), 1);
        // A damaged or older file naming a start past the end: ignored.
        lm.shutdown(0).expect("shutdown");
        drop((log, lm));
        let mut stale = BTreeMap::new();
        stale.insert(tp.clone(), 40);
        OffsetCheckpointFile::new(
            Arc::new(crate::fs::DiskFs),
            dir.path().join(LOG_START_OFFSET_CHECKPOINT),
        )
        .write(&stale)
        .expect("write");
        let lm = open();
        let log = lm.get_log(&tp).expect("loaded");
        assert_eq!(lock_log(&log).log_start_offset(), 0);
        assert_eq!(lock_log(&log).log_end_offset(), 1);
    }
}
