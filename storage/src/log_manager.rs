//! `LogManager`: the log directories of a node and every partition log in them.
//!
//! Each directory holds one sub-directory per partition (`<topic>-<partition>`), and at its top
//! the recovery-point, log-start-offset and replication-offset (high watermark) checkpoints and,
//! after a clean shutdown, the `.kafka_cleanshutdown` marker. Opening a directory reads the
//! checkpoints, opens every log (rescanning those that need it when the marker is absent), then
//! removes the marker so that a crash from now on is detected. Logs are released after loading
//! (no descriptors or mappings held) and reopen their files on first use.
//!
//! Thread-safety: the map of logs is behind a mutex held only to look up, insert or remove an
//! entry (never during I/O on a log); each log is behind its own mutex. Lock order: the map,
//! then a log.

use crate::checkpoint::{OffsetCheckpointFile, TopicPartition};
use crate::config::LogConfig;
use crate::error::{IoContext, Result, StorageError};
use crate::fs::FileSystem;
use crate::log_cleaner::{
    CleanStats, LogCleaner, CLEANER_OFFSET_CHECKPOINT, DEFAULT_DEDUPE_BUFFER_SIZE,
};
use crate::unified_log::{LogCheckpoints, UnifiedLog};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
/// The metadata quorum's log topic: never a partition of the log manager's.
pub const METADATA_TOPIC: &str = "__cluster_metadata";
pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
pub const REPLICATION_OFFSET_CHECKPOINT: &str = "replication-offset-checkpoint";

/// A shared partition log.
pub type SharedLog = Arc<Mutex<UnifiedLog>>;

/// Locks a log; a panic while holding it leaves the log as the panicking call left it, which
/// the next call may still use (every change is written before state is updated).
pub fn lock_log(log: &SharedLog) -> MutexGuard<'_, UnifiedLog> {
    log.lock().unwrap_or_else(|e| e.into_inner())
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
    /// Held for a whole cleaning pass (one cleaner at a time); taken before any log's lock.
    cleaner: Mutex<LogCleaner>,
}

impl LogManager {
    /// Opens every log in `dirs` (creating the directories if needed). `config_for` gives each
    /// partition its config (broker defaults plus topic overrides).
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dirs: &[PathBuf],
        config_for: &dyn Fn(&TopicPartition) -> LogConfig,
        now_ms: i64,
    ) -> Result<LogManager> {
        let mut logs = BTreeMap::new();
        for dir in dirs {
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
                if name.ends_with("-delete") {
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
                let mut log = UnifiedLog::open(
                    fs.clone(),
                    &p,
                    tp.clone(),
                    config_for(&tp),
                    checkpoints,
                    now_ms,
                )?;
                log.release()?;
                if logs.contains_key(&tp) {
                    return Err(StorageError::CorruptFile {
                        path: p,
                        what: format!("{tp} is in two log directories"),
                    });
                }
                logs.insert(
                    tp,
                    LogEntry {
                        dir: dir.clone(),
                        log: Arc::new(Mutex::new(log)),
                    },
                );
            }
            if clean {
                fs.remove_file(&marker).at(&marker)?;
                fs.sync_dir(dir).at(dir)?;
            }
        }
        Ok(LogManager {
            cleaner: Mutex::new(LogCleaner::new(fs.clone(), DEFAULT_DEDUPE_BUFFER_SIZE)),
            fs,
            dirs: dirs.to_vec(),
            logs: Mutex::new(logs),
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
        config: LogConfig,
        now_ms: i64,
    ) -> Result<SharedLog> {
        if tp.topic == METADATA_TOPIC {
            // Its directory is the controller quorum's log (it may share this log dir): never
            // opened, created or deleted as a partition, whatever an image says.
            return Err(StorageError::InvalidArgument {
                partition: tp.to_string(),
                what: "the metadata log is not a partition log".into(),
            });
        }
        if let Some(l) = self.get_log(tp) {
            return Ok(l);
        }
        let dir = {
            let map = self.map();
            self.dirs
                .iter()
                .min_by_key(|d| map.values().filter(|e| &e.dir == *d).count())
                .cloned()
                .expect("invariant: at least one log dir")
        };
        let path = dir.join(tp.dir_name());
        let log = UnifiedLog::open(
            self.fs.clone(),
            &path,
            tp.clone(),
            config,
            LogCheckpoints::default(),
            now_ms,
        )?;
        self.fs.sync_dir(&dir).at(&dir)?;
        let mut map = self.map();
        // Another caller may have created it meanwhile: keep theirs.
        let entry = map.entry(tp.clone()).or_insert(LogEntry {
            dir,
            log: Arc::new(Mutex::new(log)),
        });
        Ok(entry.log.clone())
    }

    /// Removes a partition's log: its directory is renamed `<topic>-<partition>.<n>-delete` (so a
    /// crash finishes the deletion at the next start) and then removed.
    pub fn delete_log(&self, tp: &TopicPartition) -> Result<bool> {
        let Some(entry) = self.map().remove(tp) else {
            return Ok(false);
        };
        let mut log = lock_log(&entry.log);
        log.release()?;
        let from = log.dir().to_path_buf();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let to = entry
            .dir
            .join(format!("{}.{nanos:x}-delete", tp.dir_name()));
        self.fs.rename(&from, &to).at(&from)?;
        self.fs.sync_dir(&entry.dir).at(&entry.dir)?;
        self.fs.remove_dir_all(&to).at(&to)?;
        Ok(true)
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
        self.flush_rolled_segments()?;
        for (dir, logs) in self.logs_by_dir() {
            let mut recovery = BTreeMap::new();
            let mut starts = BTreeMap::new();
            let mut hws = BTreeMap::new();
            for (tp, log) in logs {
                let log = lock_log(&log);
                recovery.insert(tp.clone(), log.recovery_point());
                starts.insert(tp.clone(), log.log_start_offset());
                hws.insert(tp, log.high_watermark());
            }
            OffsetCheckpointFile::new(self.fs.clone(), dir.join(RECOVERY_POINT_CHECKPOINT))
                .write(&recovery)?;
            OffsetCheckpointFile::new(self.fs.clone(), dir.join(LOG_START_OFFSET_CHECKPOINT))
                .write(&starts)?;
            OffsetCheckpointFile::new(self.fs.clone(), dir.join(REPLICATION_OFFSET_CHECKPOINT))
                .write(&hws)?;
        }
        Ok(())
    }

    /// One retention pass over every log: deletes expired segments and removes `.deleted` files
    /// whose delay has passed. Returns the segments deleted.
    pub fn cleanup_logs(&self, now_ms: i64) -> Result<usize> {
        let logs: Vec<SharedLog> = self.map().values().map(|e| e.log.clone()).collect();
        let mut n = 0;
        for log in logs {
            let mut log = lock_log(&log);
            n += log.delete_old_segments(now_ms)?;
            log.remove_deleted_segments(now_ms)?;
        }
        Ok(n)
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
    pub fn clean_logs(&self, now_ms: i64) -> Result<CleanStats> {
        let mut cleaner = self.cleaner.lock().unwrap_or_else(|e| e.into_inner());
        let mut total = CleanStats::default();
        for (dir, logs) in self.logs_by_dir() {
            let file =
                OffsetCheckpointFile::new(self.fs.clone(), dir.join(CLEANER_OFFSET_CHECKPOINT));
            let mut checkpoints = file.read()?;
            let mut cleaned = false;
            for (tp, log) in &logs {
                let Some((offset, stats)) =
                    cleaner.clean_log(tp, log, checkpoints.get(tp).copied(), now_ms)?
                else {
                    continue;
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
                file.write(&checkpoints)?;
            }
        }
        Ok(total)
    }

    /// A clean shutdown: every log flushed and closed, the checkpoints written, then the
    /// clean-shutdown marker, durably, in every directory.
    pub fn shutdown(&self, now_ms: i64) -> Result<()> {
        let logs: Vec<SharedLog> = self.map().values().map(|e| e.log.clone()).collect();
        for log in &logs {
            let mut log = lock_log(log);
            let leo = log.log_end_offset();
            log.flush(leo, now_ms)?;
            log.close()?;
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

    fn batch() -> Bytes {
        let mut b = RecordBatchBuilder::new(0);
        b.append(0, Some(b"k"), Some(&[7; 100]), &[])
            .expect("record fits");
        b.build()
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
}
