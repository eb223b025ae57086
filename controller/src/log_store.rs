//! `LogStore`: the Raft log and vote of the controller quorum — openraft's `RaftLogStorage` and
//! `RaftLogReader` — kept KRaft-style as a partition log, `__cluster_metadata-0`, in Kafka's own
//! segment format. It owns the log, the vote, the purge point and the committed hint; it does not
//! own the state machine or its snapshots (`state_machine`) nor the network.
//!
//! # On disk
//!
//! ```text
//! <metadata dir>/__cluster_metadata-0/
//!     00000000000000000000.log   segments (Kafka's format; .index and .timeindex beside them)
//!     leader-epoch-checkpoint    kept by the log: the first index of each term
//!     quorum-state               the vote                   (replaced atomically, fsynced)
//!     raft-purged                the last purged log id     (replaced atomically, fsynced)
//!     raft-committed             the last committed log id  (replaced atomically, NOT fsynced)
//! ```
//!
//! As in Kafka, the small state files sit in the partition directory next to the segments.
//! Each Raft entry is one RecordBatch v2: baseOffset is the entry's index, partitionLeaderEpoch
//! its term (so the leader-epoch checkpoint maps terms to their first index, as in KRaft), and
//! its one record has no key and the entry's encoding as its value
//! ([`crate::convert::entry_to_bytes`], the same encoding the RPCs carry).
//!
//! The three state files are line-oriented text, `key=value` per line, every key required:
//!
//! ```text
//! quorum-state:                   raft-purged / raft-committed:
//!     version=0                       version=0
//!     term=7                          term=3
//!     voted_for=2     (-1: none)      index=1041     (term=-1 index=-1: none)
//!     committed=true
//! ```
//!
//! # Durability contract (DESIGN invariant 7)
//!
//! - `append` writes the batches, fsyncs the log up to its new end, and only then reports the
//!   entries durable through the callback.
//! - `save_vote` returns once `quorum-state` is durable (temporary file fsynced, renamed, the
//!   directory fsynced).
//! - `truncate` fsyncs the shortened segment and the directory before it returns, so truncated
//!   entries can never come back after a crash.
//! - `purge` records the purge point durably before it moves the log start offset; a crash in
//!   between is finished at the next open.
//! - `save_committed` is called by openraft on every commit, inside its core loop, so it is not
//!   fsynced: losing it only makes a restarted node re-apply from its snapshot. At open it is
//!   believed only if the entry at its index carries its log id (or it is at or below the purge
//!   point).
//! - Opening never trusts a tail, and never drops committed metadata. Before the log is opened,
//!   every segment is walked batch by batch ([`crate::log_scan`]); then the log recovers as
//!   after an unclean shutdown (batches CRC-checked, a torn tail truncated), and every entry
//!   after the purge point is decoded and checked — indexes dense, index = baseOffset, term =
//!   partitionLeaderEpoch, terms never decreasing. Damage is told apart as Kafka tells a torn
//!   tail from corruption: every entry up to the committed point (the committed hint, or the
//!   purge point) was fsynced and acknowledged, so a batch that fails there is corruption and
//!   the store refuses to open, with one line naming the segment file, the byte position and the
//!   offset (the operator restores the directory, or removes it so the node refetches from the
//!   quorum). Damage past the committed point is a torn tail of unacknowledged appends: the log
//!   is truncated (durably) at it.
//!
//! Every value the store persists is one it can load again: terms are Kafka leader epochs
//! (`0..=i32::MAX`, a batch's partitionLeaderEpoch) and indexes are log offsets (`0..=i64::MAX`)
//! in entries, the vote, the purge point and the committed hint alike; a write of anything else
//! is refused before it reaches the disk, and the parsers refuse the same values.
//!
//! After an I/O error on a write or an fsync the store refuses every later write: the state of
//! unsynced pages is unknown (fsyncgate), so only a reopen, which rescans, may trust the disk.
//!
//! Appends must follow the log end, in order, with terms never decreasing; two leniencies, both
//! exercised by openraft's storage suite: entries at or below the purge point are skipped (they
//! are in the snapshot), and an append to a log with no entries starts the log at its first
//! index. A hole after existing entries is accepted with a warning, but the check at open
//! truncates the log at it — openraft itself never leaves one.
//!
//! # Threads and the lock
//!
//! A `LogStore` is a cheap handle, `Clone`, and is its own `LogReader`: every clone shares one
//! `Inner` behind a std `Mutex` (the reason for the lock: openraft's core writes while replication
//! tasks read). The lock may be held through an fsync, so every operation — reads too, which
//! would otherwise wait for that fsync on a runtime worker — runs on a blocking thread
//! (`spawn_blocking`) and is awaited; no lock is ever held across an `.await`. Awaiting each
//! operation also keeps writes in the order openraft issued them, which it requires.

use crate::convert::{entry_from_bytes, entry_to_bytes};
use crate::now_ms;
use crate::raft_types::{Entry, LogId, NodeId, StorageError, TypeConfig, Vote};
use bytes::{Bytes, BytesMut};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    AnyError, CommittedLeaderId, ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader,
    StorageIOError,
};
use rafka_protocol::record_batch::{RecordBatch, RecordBatchBuilder};
use rafka_storage::log_segment::file_name;
use rafka_storage::{FileSystem, LogCheckpoints, LogConfig, TopicPartition, UnifiedLog};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The metadata log's topic (KRaft's name); its one partition is 0.
pub const METADATA_TOPIC: &str = "__cluster_metadata";
/// The vote.
pub const QUORUM_STATE_FILE: &str = "quorum-state";
/// The last purged log id.
pub const PURGED_FILE: &str = "raft-purged";
/// The last committed log id (a hint, not fsynced).
pub const COMMITTED_FILE: &str = "raft-committed";

/// The most a read takes from the log at once.
const READ_CHUNK_BYTES: u64 = 1 << 20;

/// The metadata log's segment settings, with Kafka's names and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogStoreOptions {
    /// `metadata.log.segment.bytes` (1 GiB). A purge frees whole segments only.
    pub segment_bytes: u64,
    /// `metadata.log.segment.ms` (7 days).
    pub segment_ms: i64,
}

impl Default for LogStoreOptions {
    fn default() -> Self {
        LogStoreOptions {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
        }
    }
}

/// What went wrong in the log store; the trait methods wrap it in openraft's `StorageError`
/// with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum LogStoreError {
    #[error(transparent)]
    Log(#[from] rafka_storage::StorageError),
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {what}")]
    CorruptFile { path: PathBuf, what: String },
    #[error("{path}: invalid metadata log entry at offset {offset} (byte {position}), inside the committed log (committed up to offset {committed}): {what}; refusing to start rather than drop committed metadata")]
    CorruptCommitted {
        path: PathBuf,
        position: u64,
        offset: i64,
        committed: i64,
        what: String,
    },
    #[error("raft entry at index {index}: {what}")]
    Entry { index: u64, what: String },
    /// A request openraft never makes (overlapping appends, truncating purged entries...).
    #[error("metadata log: {0}")]
    Rejected(String),
    #[error("metadata log is offline after an earlier write error: {0}")]
    Offline(String),
    #[error("metadata log: {0}")]
    Internal(String),
}

type Result<T, E = LogStoreError> = std::result::Result<T, E>;

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> LogStoreError + '_ {
    move |source| LogStoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn raft_err(subject: ErrorSubject<NodeId>, verb: ErrorVerb, e: &LogStoreError) -> StorageError {
    StorageIOError::new(subject, verb, AnyError::new(e)).into()
}

fn log_id(term: u64, index: u64) -> LogId {
    // With single-term-leader a committed leader id is its term alone; the node is ignored.
    LogId::new(CommittedLeaderId::new(term, 0), index)
}

/// The Raft log store of one controller node. See the module documentation.
#[derive(Debug, Clone)]
pub struct LogStore {
    /// Shared with every reader handed to openraft; see the module docs for why and how it is
    /// locked.
    inner: Arc<Mutex<Inner>>,
    /// Told of every vote before it is saved (the election task's earliest news of it).
    elections: Option<crate::election_observer::ElectionObserver>,
}

#[derive(Debug)]
struct Inner {
    fs: Arc<dyn FileSystem>,
    /// The partition directory, `<metadata dir>/__cluster_metadata-0`.
    dir: PathBuf,
    log: UnifiedLog,
    vote: Option<Vote>,
    purged: Option<LogId>,
    committed: Option<LogId>,
    /// The last entry's id, or the purge point when no entry is left.
    last: Option<LogId>,
    /// Set by a failed write: the reason every later write is refused.
    offline: Option<String>,
}

impl LogStore {
    /// Tells `observer` of every vote before it is saved.
    pub(crate) fn observe_elections(
        &mut self,
        observer: crate::election_observer::ElectionObserver,
    ) {
        self.elections = Some(observer);
    }

    /// The last entry's id (the purge point when no entry is left): what a pre-vote compares.
    pub(crate) async fn last_log_id(&self) -> Result<Option<LogId>, StorageError> {
        self.run(ErrorSubject::Logs, ErrorVerb::Read, |inner| Ok(inner.last))
            .await
    }

    /// Opens (or creates) the metadata log under `dir` with Kafka's default segment settings.
    /// Blocking: recovery reads the whole live log. Call it from a blocking thread in async code.
    // openraft's error type, large as it is: callers hand it straight to openraft.
    #[allow(clippy::result_large_err)]
    pub fn open(fs: Arc<dyn FileSystem>, dir: &Path) -> Result<LogStore, StorageError> {
        LogStore::open_with(fs, dir, LogStoreOptions::default())
    }

    /// [`LogStore::open`] with explicit segment settings.
    #[allow(clippy::result_large_err)]
    pub fn open_with(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        options: LogStoreOptions,
    ) -> Result<LogStore, StorageError> {
        let inner = Inner::open(fs, dir, options)
            .map_err(|e| raft_err(ErrorSubject::Store, ErrorVerb::Read, &e))?;
        Ok(LogStore {
            elections: None,
            inner: Arc::new(Mutex::new(inner)),
        })
    }

    /// The directory holding the metadata log under a metadata directory.
    pub fn log_dir(dir: &Path) -> PathBuf {
        dir.join(TopicPartition::new(METADATA_TOPIC, 0).dir_name())
    }

    /// Runs `f` on the shared state on a blocking thread and waits for it.
    async fn run<T, F>(
        &self,
        subject: ErrorSubject<NodeId>,
        verb: ErrorVerb,
        f: F,
    ) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Inner) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        let res = tokio::task::spawn_blocking(move || {
            // A panic while the lock was held may have left the log half-written: refuse.
            let mut guard = inner
                .lock()
                .map_err(|_| LogStoreError::Internal("lock poisoned by an earlier panic".into()))?;
            f(&mut guard)
        })
        .await
        .unwrap_or_else(|e| {
            Err(LogStoreError::Internal(format!(
                "blocking task failed: {e}"
            )))
        });
        res.map_err(|e| raft_err(subject, verb, &e))
    }
}

impl Inner {
    fn open(fs: Arc<dyn FileSystem>, dir: &Path, options: LogStoreOptions) -> Result<Inner> {
        let pdir = LogStore::log_dir(dir);
        fs.create_dir_all(&pdir).map_err(io_at(&pdir))?;
        let vote = match read_state_file(&*fs, &pdir.join(QUORUM_STATE_FILE))? {
            // A vote we cannot read is fatal: guessing could vote twice in a term.
            Some(text) => Some(
                parse_vote(&text).map_err(|what| LogStoreError::CorruptFile {
                    path: pdir.join(QUORUM_STATE_FILE),
                    what,
                })?,
            ),
            None => None,
        };
        let purged = match read_state_file(&*fs, &pdir.join(PURGED_FILE))? {
            Some(text) => parse_log_id(&text).map_err(|what| LogStoreError::CorruptFile {
                path: pdir.join(PURGED_FILE),
                what,
            })?,
            None => None,
        };
        let committed_hint = match read_state_file(&*fs, &pdir.join(COMMITTED_FILE)) {
            Ok(Some(text)) => parse_log_id(&text).unwrap_or_else(|what| {
                tracing::warn!(path = %pdir.join(COMMITTED_FILE).display(), what, "ignoring an unreadable committed log id");
                None
            }),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring an unreadable committed log id");
                None
            }
        };
        let config = LogConfig {
            segment_bytes: options.segment_bytes,
            segment_ms: options.segment_ms,
            // Only a purge deletes entries: no retention, and deleted segments go at once.
            retention_ms: -1,
            retention_bytes: -1,
            file_delete_delay_ms: 0,
            ..LogConfig::default()
        };
        let next_after_purge = purged.map_or(0, |p| p.index as i64 + 1);
        // The last offset known committed: every entry up to it was fsynced and acknowledged.
        let committed_end = committed_hint.max(purged).map_or(-1, |c| c.index as i64);
        if let Some(bad) =
            crate::log_scan::first_invalid_batch(&*fs, &pdir, options.segment_bytes as usize)
                .map_err(io_at(&pdir))?
        {
            if bad.offset <= committed_end {
                return Err(LogStoreError::CorruptCommitted {
                    path: bad.path,
                    position: bad.position,
                    offset: bad.offset,
                    committed: committed_end,
                    what: bad.what,
                });
            }
            tracing::warn!(
                path = %bad.path.display(),
                offset = bad.offset,
                position = bad.position,
                what = bad.what,
                "metadata log: a torn tail past the committed point; recovery truncates it"
            );
        }
        let log = UnifiedLog::open(
            fs.clone(),
            &pdir,
            TopicPartition::new(METADATA_TOPIC, 0),
            config,
            // Never a clean shutdown: every segment holding live entries is rescanned. Segments
            // wholly below the purge point may be trusted; they are deleted just below anyway.
            LogCheckpoints {
                recovery_point: next_after_purge,
                log_start_offset: 0,
                high_watermark: 0,
                clean_shutdown: false,
            },
            now_ms(),
        )?;
        let mut inner = Inner {
            fs,
            dir: pdir,
            log,
            vote,
            purged,
            committed: None,
            last: None,
            offline: None,
        };
        // Finish a purge that a crash interrupted (idempotent).
        if let Some(p) = purged {
            inner.move_log_start(p.index)?;
        }
        let (bad, last) = inner.verify()?;
        if let Some(at) = bad.filter(|at| *at <= committed_end) {
            let base = inner
                .log
                .segment_base_offsets()
                .into_iter()
                .rfind(|b| *b <= at)
                .unwrap_or(0);
            return Err(LogStoreError::CorruptCommitted {
                path: inner.dir.join(file_name(base, ".log")),
                position: inner
                    .log
                    .read(at, 1, at + 1, true)
                    .ok()
                    .and_then(|i| i.slice.map(|s| s.position))
                    .unwrap_or(0),
                offset: at,
                committed: committed_end,
                what: "not the entry that belongs there".into(),
            });
        }
        if let Some(at) = bad {
            tracing::warn!(
                topic = METADATA_TOPIC,
                partition = 0,
                offset = at,
                "truncating the metadata log at an invalid entry"
            );
            inner.log.truncate_to(at, now_ms())?;
            inner.sync_truncation()?;
        }
        inner.last = last.max(purged);
        inner.committed = inner.check_committed(committed_hint)?;
        tracing::info!(
            topic = METADATA_TOPIC,
            partition = 0,
            log_start_offset = inner.log.log_start_offset(),
            log_end_offset = inner.log.log_end_offset(),
            "opened the metadata log"
        );
        Ok(inner)
    }

    /// Checks the live log: returns the index of the first batch that is not a valid entry in
    /// its place (if any) and the last valid entry's id.
    fn verify(&mut self) -> Result<(Option<i64>, Option<LogId>)> {
        let end = self.log.log_end_offset();
        let mut next = self.log.log_start_offset();
        let mut last: Option<LogId> = None;
        let mut term = self.purged.map_or(0, |p| p.leader_id.term);
        while next < end {
            let info = self.log.read(next, READ_CHUNK_BYTES, end, true)?;
            let Some(slice) = info.slice else {
                return Ok((Some(next), last));
            };
            let bytes = Bytes::from(slice.read_to_vec().map_err(io_at(&self.dir))?);
            for batch in RecordBatch::batches(bytes) {
                let entry = batch
                    .map_err(|e| e.to_string())
                    .and_then(|b| decode_batch(&b, Some(next as u64)));
                match entry {
                    Ok(e) if e.log_id.leader_id.term >= term => {
                        term = e.log_id.leader_id.term;
                        last = Some(e.log_id);
                        next += 1;
                    }
                    Ok(e) => {
                        tracing::warn!(
                            offset = next,
                            epoch = e.log_id.leader_id.term,
                            "metadata log: term goes backwards"
                        );
                        return Ok((Some(next), last));
                    }
                    Err(what) => {
                        tracing::warn!(offset = next, what, "metadata log: invalid entry");
                        return Ok((Some(next), last));
                    }
                }
            }
        }
        Ok((None, last))
    }

    /// The committed hint is believed only where the log proves it.
    fn check_committed(&mut self, hint: Option<LogId>) -> Result<Option<LogId>> {
        let Some(c) = hint else {
            return Ok(None);
        };
        if let Some(p) = self.purged {
            if c.index <= p.index {
                // Purged entries were applied, hence committed.
                return Ok(Some(c.max(p)));
            }
        }
        let found = self.read_entries(c.index, c.index + 1, None)?;
        if found.first().map(|e| e.log_id) == Some(c) {
            return Ok(Some(c));
        }
        tracing::warn!(
            offset = c.index,
            "the committed log id is not in the log; ignoring it"
        );
        Ok(self.purged)
    }

    fn check_online(&self) -> Result<()> {
        match &self.offline {
            Some(why) => Err(LogStoreError::Offline(why.clone())),
            None => Ok(()),
        }
    }

    /// Runs a write; a failure takes the store offline.
    fn write<T>(&mut self, f: impl FnOnce(&mut Inner) -> Result<T>) -> Result<T> {
        self.check_online()?;
        let res = f(self);
        if let Err(e @ (LogStoreError::Log(_) | LogStoreError::Io { .. })) = &res {
            tracing::error!(error = %e, "metadata log write failed; the log is offline until reopened");
            self.offline = Some(e.to_string());
        }
        res
    }

    fn append(&mut self, entries: &[Entry]) -> Result<()> {
        // Entries at or below the purge point are committed and already in the snapshot (Log
        // Matching makes a resent one identical): there is nothing to write for them.
        let purged_index = self.purged.map(|p| p.index);
        let entries: Vec<&Entry> = entries
            .iter()
            .filter(|e| purged_index.is_none_or(|p| e.log_id.index > p))
            .collect();
        let Some(first) = entries.first().map(|e| e.log_id) else {
            return Ok(());
        };
        if let Some(w) = entries
            .windows(2)
            .find(|w| w[1].log_id.index != w[0].log_id.index + 1)
        {
            return Err(LogStoreError::Rejected(format!(
                "entries {} and {} leave a hole",
                w[0].log_id, w[1].log_id
            )));
        }
        let mut prev = self.last;
        for e in &entries {
            if let Some(p) = prev.filter(|p| e.log_id.leader_id.term < p.leader_id.term) {
                return Err(LogStoreError::Rejected(format!(
                    "entry {} has a term below the previous entry {p}",
                    e.log_id
                )));
            }
            prev = Some(e.log_id);
        }
        let now = now_ms();
        let leo = self.log.log_end_offset() as u64;
        if self.log.log_start_offset() == self.log.log_end_offset() {
            if first.index != leo {
                // Nothing is left in the log: it simply starts where the entries do.
                self.log
                    .truncate_fully_and_start_at(first.index as i64, now)?;
            }
        } else if first.index < leo {
            return Err(LogStoreError::Rejected(format!(
                "append at index {} overlaps the log end {leo}; truncate first",
                first.index
            )));
        } else if first.index > leo {
            // openraft never leaves a hole (its storage suite does); the check at open
            // truncates the log at one.
            tracing::warn!(
                offset = first.index,
                log_end_offset = leo,
                "appending after a hole in the metadata log"
            );
        }
        // One write per group of batches that fits in a segment.
        let max = self.log.config().segment_bytes as usize;
        let mut group = BytesMut::new();
        for e in &entries {
            let batch = entry_batch(e, now)?;
            if !group.is_empty() && group.len() + batch.len() > max {
                self.log.append_as_follower(&group.split().freeze(), now)?;
            }
            group.extend_from_slice(&batch);
        }
        if !group.is_empty() {
            self.log.append_as_follower(&group.freeze(), now)?;
        }
        self.log.flush(self.log.log_end_offset(), now)?;
        self.last = prev;
        Ok(())
    }

    fn truncate(&mut self, at: LogId) -> Result<()> {
        if let Some(p) = self.purged.filter(|p| at.index <= p.index) {
            return Err(LogStoreError::Rejected(format!(
                "cannot truncate at index {}: entries up to {p} are purged",
                at.index
            )));
        }
        if at.index >= self.log.log_end_offset() as u64 {
            return Ok(());
        }
        self.log.truncate_to(at.index as i64, now_ms())?;
        self.sync_truncation()?;
        self.last = match at.index.checked_sub(1) {
            Some(prev) if prev >= self.log.log_start_offset() as u64 => self
                .read_entries(prev, at.index, None)?
                .last()
                .map(|e| e.log_id),
            _ => None,
        }
        .max(self.purged);
        Ok(())
    }

    /// Makes a truncation durable: the shortened active segment, and the directory for the
    /// segments removed after it.
    fn sync_truncation(&mut self) -> Result<()> {
        let base = *self
            .log
            .segment_base_offsets()
            .last()
            .expect("invariant: a log always has an active segment");
        let path = self.dir.join(file_name(base, ".log"));
        self.fs
            .open(&path, false)
            .and_then(|f| f.sync())
            .map_err(io_at(&path))?;
        self.fs.sync_dir(&self.dir).map_err(io_at(&self.dir))
    }

    fn purge(&mut self, upto: LogId) -> Result<()> {
        if self.purged.is_some_and(|p| p >= upto) {
            return Ok(());
        }
        check_log_id(&upto).map_err(LogStoreError::Rejected)?;
        let path = self.dir.join(PURGED_FILE);
        self.fs
            .write_atomic(&path, encode_log_id(Some(upto)).as_bytes())
            .map_err(io_at(&path))?;
        self.purged = Some(upto);
        self.move_log_start(upto.index)?;
        self.last = self.last.max(Some(upto));
        Ok(())
    }

    /// Moves the log start past `index`: deletes the segments wholly below it, or — when the
    /// purge reaches past the log end (a snapshot installed) — starts the log afresh after it.
    fn move_log_start(&mut self, index: u64) -> Result<()> {
        let next = index as i64 + 1;
        let now = now_ms();
        if next > self.log.log_end_offset() {
            self.log.truncate_fully_and_start_at(next, now)?;
        } else {
            // The metadata log's high watermark is its end: Raft commits, not the log.
            self.log.set_high_watermark(self.log.log_end_offset());
            self.log.increment_log_start_offset(next)?;
            self.log.delete_old_segments(now)?;
            self.log.remove_deleted_segments(now)?;
        }
        Ok(())
    }

    fn save_vote(&mut self, vote: &Vote) -> Result<()> {
        check_term(vote.leader_id.term).map_err(LogStoreError::Rejected)?;
        let path = self.dir.join(QUORUM_STATE_FILE);
        self.fs
            .write_atomic(&path, encode_vote(vote).as_bytes())
            .map_err(io_at(&path))?;
        self.vote = Some(*vote);
        Ok(())
    }

    /// Replaces `raft-committed` without fsync (see the module docs): a temporary file renamed
    /// over it, so a reader finds the old or the new contents, or — after a power cut — maybe
    /// garbage, which the strict parser and the check at open refuse.
    fn save_committed(&mut self, committed: Option<LogId>) -> Result<()> {
        if let Some(c) = &committed {
            check_log_id(c).map_err(LogStoreError::Rejected)?;
        }
        let path = self.dir.join(COMMITTED_FILE);
        let tmp = path.with_extension("tmp");
        let data = encode_log_id(committed);
        let f = self.fs.open(&tmp, true).map_err(io_at(&tmp))?;
        f.set_len(0).map_err(io_at(&tmp))?;
        f.write_all_at(&[data.as_bytes()], 0).map_err(io_at(&tmp))?;
        drop(f);
        self.fs.rename(&tmp, &path).map_err(io_at(&path))?;
        self.committed = committed;
        Ok(())
    }

    /// The entries in `[start, end)` that are present; at most about `max_bytes` of them (at
    /// least one) when given.
    fn read_entries(&mut self, start: u64, end: u64, max_bytes: Option<u64>) -> Result<Vec<Entry>> {
        let start = start.max(self.log.log_start_offset() as u64);
        let end = end.min(self.log.log_end_offset() as u64);
        let mut out = Vec::new();
        let mut next = start;
        while next < end {
            let chunk = max_bytes.unwrap_or(READ_CHUNK_BYTES).min(READ_CHUNK_BYTES);
            let info = self.log.read(next as i64, chunk, end as i64, true)?;
            let Some(slice) = info.slice else {
                break;
            };
            let bytes = Bytes::from(slice.read_to_vec().map_err(io_at(&self.dir))?);
            let before = next;
            for batch in RecordBatch::batches(bytes) {
                let batch = batch.map_err(|e| LogStoreError::Entry {
                    index: next,
                    what: e.to_string(),
                })?;
                let base = batch.base_offset() as u64;
                if base < next {
                    continue;
                }
                if base >= end {
                    break;
                }
                let entry = decode_batch(&batch, None)
                    .map_err(|what| LogStoreError::Entry { index: base, what })?;
                next = base + 1;
                out.push(entry);
            }
            if next == before || max_bytes.is_some() {
                break;
            }
        }
        Ok(out)
    }
}

/// One entry as one batch: baseOffset = index, partitionLeaderEpoch = term, one record whose
/// value is the entry's encoding.
fn entry_batch(e: &Entry, now_ms: i64) -> Result<Bytes> {
    let bad = |what: String| LogStoreError::Entry {
        index: e.log_id.index,
        what,
    };
    let term = i32::try_from(e.log_id.leader_id.term).map_err(|_| {
        bad(format!(
            "term {} does not fit a leader epoch",
            e.log_id.leader_id.term
        ))
    })?;
    let index =
        i64::try_from(e.log_id.index).map_err(|_| bad("index does not fit an offset".into()))?;
    let value = entry_to_bytes(e).map_err(|err| bad(err.to_string()))?;
    let mut b = RecordBatchBuilder::new(index).partition_leader_epoch(term);
    b.append(now_ms, None, Some(&value), &[])
        .map_err(|err| bad(err.to_string()))?;
    Ok(b.build())
}

/// Decodes a stored batch back into its entry, checking it is one the store wrote: CRC, a
/// single record, index = baseOffset (= `expected` when given), term = partitionLeaderEpoch.
fn decode_batch(batch: &RecordBatch, expected: Option<u64>) -> Result<Entry, String> {
    batch.ensure_valid().map_err(|e| e.to_string())?;
    let base = batch.base_offset();
    if let Some(want) = expected.filter(|w| *w as i64 != base) {
        return Err(format!(
            "batch at offset {base} where index {want} was expected"
        ));
    }
    if batch.last_offset_delta() != 0 || batch.record_count() != 1 {
        return Err(format!(
            "batch at offset {base} holds {} records, not one",
            batch.record_count()
        ));
    }
    let mut records = batch.records().map_err(|e| e.to_string())?;
    let record = match (records.next(), records.next()) {
        (Some(r), None) => r.map_err(|e| e.to_string())?,
        _ => {
            return Err(format!(
                "batch at offset {base} does not hold exactly one record"
            ))
        }
    };
    let value = record
        .value
        .ok_or_else(|| format!("batch at offset {base}: a record without a value"))?;
    let entry = entry_from_bytes(&value).map_err(|e| e.to_string())?;
    if entry.log_id.index as i64 != base
        || i64::try_from(entry.log_id.leader_id.term).ok()
            != Some(i64::from(batch.partition_leader_epoch()))
    {
        return Err(format!(
            "batch at offset {base} epoch {} holds entry {}",
            batch.partition_leader_epoch(),
            entry.log_id
        ));
    }
    Ok(entry)
}

/// Reads a state file, `None` if it does not exist.
fn read_state_file(fs: &dyn FileSystem, path: &Path) -> Result<Option<String>> {
    if !fs.exists(path) {
        return Ok(None);
    }
    let bytes = fs.read(path).map_err(io_at(path))?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| LogStoreError::CorruptFile {
            path: path.to_path_buf(),
            what: "not utf-8".into(),
        })
}

/// Parses `key=value` lines: version 0 and exactly the keys `keys`, returned in that order.
fn parse_fields<'a>(text: &'a str, keys: &[&str]) -> Result<Vec<&'a str>, String> {
    let mut fields = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| format!("malformed line {line:?}"))?;
        if fields.insert(k.trim(), v.trim()).is_some() {
            return Err(format!("duplicate key {k:?}"));
        }
    }
    if fields.remove("version") != Some("0") {
        return Err("missing or unknown version".into());
    }
    let out = keys
        .iter()
        .map(|k| fields.remove(k).ok_or_else(|| format!("missing key {k:?}")))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(k) = fields.keys().next() {
        return Err(format!("unknown key {k:?}"));
    }
    Ok(out)
}

fn encode_vote(v: &Vote) -> String {
    let voted_for = v
        .leader_id
        .voted_for
        .map_or_else(|| "-1".to_string(), |n| n.to_string());
    format!(
        "version=0\nterm={}\nvoted_for={voted_for}\ncommitted={}\n",
        v.leader_id.term, v.committed
    )
}

/// A term the store can persist and load again: a Kafka leader epoch.
fn check_term(term: u64) -> Result<(), String> {
    if term <= i32::MAX as u64 {
        Ok(())
    } else {
        Err(format!("term {term} does not fit a leader epoch"))
    }
}

/// A log id the store can persist and load again: a leader epoch and a log offset.
fn check_log_id(l: &LogId) -> Result<(), String> {
    check_term(l.leader_id.term)?;
    if l.index <= i64::MAX as u64 {
        Ok(())
    } else {
        Err(format!("index {} does not fit an offset", l.index))
    }
}

fn parse_vote(text: &str) -> Result<Vote, String> {
    let f = parse_fields(text, &["term", "voted_for", "committed"])?;
    let term = f[0].parse::<u64>().map_err(|e| format!("term: {e}"))?;
    check_term(term)?;
    let voted_for = match f[1] {
        "-1" => None,
        n => Some(n.parse::<NodeId>().map_err(|e| format!("voted_for: {e}"))?),
    };
    let committed = f[2]
        .parse::<bool>()
        .map_err(|e| format!("committed: {e}"))?;
    Ok(Vote {
        leader_id: openraft::LeaderId { term, voted_for },
        committed,
    })
}

fn encode_log_id(l: Option<LogId>) -> String {
    match l {
        Some(l) => format!("version=0\nterm={}\nindex={}\n", l.leader_id.term, l.index),
        None => "version=0\nterm=-1\nindex=-1\n".to_string(),
    }
}

fn parse_log_id(text: &str) -> Result<Option<LogId>, String> {
    let f = parse_fields(text, &["term", "index"])?;
    if f == ["-1", "-1"] {
        return Ok(None);
    }
    let term = f[0].parse::<u64>().map_err(|e| format!("term: {e}"))?;
    let index = f[1].parse::<u64>().map_err(|e| format!("index: {e}"))?;
    let l = log_id(term, index);
    check_log_id(&l)?;
    Ok(Some(l))
}

fn range_of<RB: RangeBounds<u64>>(range: &RB) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(s) => *s,
        Bound::Excluded(s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(e) => e.saturating_add(1),
        Bound::Excluded(e) => *e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let (start, end) = range_of(&range);
        self.run(ErrorSubject::Logs, ErrorVerb::Read, move |inner| {
            inner.read_entries(start, end, None)
        })
        .await
    }

    /// At most about 1 MiB of entries (at least one).
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry>, StorageError> {
        self.run(ErrorSubject::Logs, ErrorVerb::Read, move |inner| {
            inner.read_entries(start, end, Some(READ_CHUNK_BYTES))
        })
        .await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        self.run(ErrorSubject::Logs, ErrorVerb::Read, |inner| {
            Ok(LogState {
                last_purged_log_id: inner.purged,
                last_log_id: inner.last,
            })
        })
        .await
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        if let Some(o) = &self.elections {
            o.saving_vote(vote);
        }
        let vote = *vote;
        self.run(ErrorSubject::Vote, ErrorVerb::Write, move |inner| {
            inner.write(|inner| inner.save_vote(&vote))
        })
        .await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.run(ErrorSubject::Vote, ErrorVerb::Read, |inner| Ok(inner.vote))
            .await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.run(ErrorSubject::Store, ErrorVerb::Write, move |inner| {
            inner.write(|inner| inner.save_committed(committed))
        })
        .await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        self.run(ErrorSubject::Store, ErrorVerb::Read, |inner| {
            Ok(inner.committed)
        })
        .await
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        self.run(ErrorSubject::Logs, ErrorVerb::Write, move |inner| {
            // Written and fsynced before the callback: the durability contract.
            let res = inner.write(|inner| inner.append(&entries));
            match &res {
                Ok(()) => callback.log_io_completed(Ok(())),
                Err(e) => callback.log_io_completed(Err(std::io::Error::other(e.to_string()))),
            }
            res
        })
        .await
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.run(ErrorSubject::Log(log_id), ErrorVerb::Delete, move |inner| {
            inner.write(|inner| inner.truncate(log_id))
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.run(ErrorSubject::Log(log_id), ErrorVerb::Delete, move |inner| {
            inner.write(|inner| inner.purge(log_id))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft_types::{CommandResult, MetadataCommand, SnapshotMeta, StoredMembership};
    use openraft::storage::{RaftLogStorageExt, RaftSnapshotBuilder, RaftStateMachine, Snapshot};
    use openraft::testing::{StoreBuilder, Suite};
    use openraft::{BasicNode, EntryPayload, Membership};
    use rafka_protocol::messages::{MetadataRecord, TopicRecord};
    use rafka_storage::{DiskFs, SimFs};
    use std::collections::{BTreeMap, BTreeSet};
    use std::io::Cursor;

    /// A state machine for the storage suite only (the real one is `state_machine`): applying
    /// records the entries; a snapshot is the applied entries, each behind a u32 length.
    #[derive(Debug, Default, Clone)]
    struct TestStateMachine {
        state: Arc<Mutex<SmState>>,
    }

    #[derive(Debug, Default)]
    struct SmState {
        applied: Option<LogId>,
        membership: StoredMembership,
        entries: Vec<Entry>,
        current: Option<(SnapshotMeta, Vec<u8>)>,
        built: u64,
    }

    impl TestStateMachine {
        fn state(&self) -> std::sync::MutexGuard<'_, SmState> {
            self.state.lock().expect("test state machine lock")
        }
    }

    fn encode_entries(entries: &[Entry]) -> Vec<u8> {
        let mut out = Vec::new();
        for e in entries {
            let b = entry_to_bytes(e).expect("entry encodes");
            out.extend_from_slice(&(b.len() as u32).to_be_bytes());
            out.extend_from_slice(&b);
        }
        out
    }

    fn decode_entries(mut data: &[u8]) -> Result<Vec<Entry>, String> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let (len, rest) = data.split_at_checked(4).ok_or("truncated length")?;
            let len = u32::from_be_bytes(len.try_into().map_err(|_| "length")?) as usize;
            let (e, rest) = rest.split_at_checked(len).ok_or("truncated entry")?;
            out.push(entry_from_bytes(&Bytes::copy_from_slice(e)).map_err(|e| e.to_string())?);
            data = rest;
        }
        Ok(out)
    }

    impl RaftSnapshotBuilder<TypeConfig> for TestStateMachine {
        async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
            let mut st = self.state();
            st.built += 1;
            let meta = SnapshotMeta {
                last_log_id: st.applied,
                last_membership: st.membership.clone(),
                snapshot_id: format!("{}-{}", st.applied.map_or(0, |l| l.index), st.built),
            };
            let data = encode_entries(&st.entries);
            st.current = Some((meta.clone(), data.clone()));
            Ok(Snapshot {
                meta,
                snapshot: Box::new(Cursor::new(data)),
            })
        }
    }

    impl RaftStateMachine<TypeConfig> for TestStateMachine {
        type SnapshotBuilder = TestStateMachine;

        async fn applied_state(
            &mut self,
        ) -> Result<(Option<LogId>, StoredMembership), StorageError> {
            let st = self.state();
            Ok((st.applied, st.membership.clone()))
        }

        async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResult>, StorageError>
        where
            I: IntoIterator<Item = Entry> + OptionalSend,
            I::IntoIter: OptionalSend,
        {
            let mut st = self.state();
            let mut out = Vec::new();
            for e in entries {
                st.applied = Some(e.log_id);
                if let EntryPayload::Membership(m) = &e.payload {
                    st.membership = StoredMembership::new(Some(e.log_id), m.clone());
                }
                out.push(CommandResult {
                    index: e.log_id.index,
                });
                st.entries.push(e);
            }
            Ok(out)
        }

        async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
            self.clone()
        }

        async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
            Ok(Box::new(Cursor::new(Vec::new())))
        }

        async fn install_snapshot(
            &mut self,
            meta: &SnapshotMeta,
            snapshot: Box<Cursor<Vec<u8>>>,
        ) -> Result<(), StorageError> {
            let data = snapshot.into_inner();
            let entries = decode_entries(&data).map_err(|e| {
                StorageIOError::read_snapshot(Some(meta.signature()), AnyError::error(e))
            })?;
            let mut st = self.state();
            st.entries = entries;
            st.applied = meta.last_log_id;
            st.membership = meta.last_membership.clone();
            st.current = Some((meta.clone(), data));
            Ok(())
        }

        async fn get_current_snapshot(
            &mut self,
        ) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
            Ok(self.state().current.clone().map(|(meta, data)| Snapshot {
                meta,
                snapshot: Box::new(Cursor::new(data)),
            }))
        }
    }

    /// Small segments, so that appends roll and purges delete whole segments.
    fn small() -> LogStoreOptions {
        LogStoreOptions {
            segment_bytes: 1024,
            ..LogStoreOptions::default()
        }
    }

    struct Builder;

    impl StoreBuilder<TypeConfig, LogStore, TestStateMachine, tempfile::TempDir> for Builder {
        async fn build(
            &self,
        ) -> Result<(tempfile::TempDir, LogStore, TestStateMachine), StorageError> {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = LogStore::open_with(Arc::new(DiskFs), dir.path(), small())?;
            Ok((dir, store, TestStateMachine::default()))
        }
    }

    #[test]
    fn openraft_storage_suite() {
        Suite::test_all(Builder).expect("openraft's storage suite passes");
    }

    /// Entries of every kind: blank, a metadata command, a membership.
    fn entry(term: u64, index: u64) -> Entry {
        let payload = match index % 3 {
            0 => EntryPayload::Blank,
            1 => EntryPayload::Normal(MetadataCommand {
                records: vec![MetadataRecord::Topic(TopicRecord {
                    name: format!("topic-{index}"),
                    topic_id: rafka_protocol::Uuid::from_u128(u128::from(index) + 1),
                    ..Default::default()
                })],
            }),
            _ => EntryPayload::Membership(Membership::new(
                vec![BTreeSet::from([1, 2, 3])],
                BTreeMap::from([1, 2, 3].map(|n| {
                    (
                        n,
                        BasicNode {
                            addr: format!("127.0.0.1:{}", 9092 + n),
                        },
                    )
                })),
            )),
        };
        Entry {
            log_id: log_id(term, index),
            payload,
        }
    }

    fn assert_entries(got: &[Entry], want: &[Entry]) {
        assert_eq!(got.len(), want.len(), "entry count");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(format!("{g:?}"), format!("{w:?}"));
        }
    }

    async fn state(s: &mut LogStore) -> (Option<LogId>, Option<LogId>) {
        let st = s.get_log_state().await.expect("log state");
        (st.last_purged_log_id, st.last_log_id)
    }

    fn segment_files(fs: &dyn FileSystem, dir: &Path) -> Vec<PathBuf> {
        fs.list_dir(&LogStore::log_dir(dir))
            .expect("list")
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect()
    }

    #[tokio::test]
    async fn entries_vote_purge_and_committed_survive_a_drop_without_close() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fs: Arc<dyn FileSystem> = Arc::new(DiskFs);
        let all: Vec<Entry> = (0..30).map(|i| entry(1 + i / 10, i)).collect();
        {
            let mut s = LogStore::open_with(fs.clone(), dir.path(), small()).expect("open");
            s.save_vote(&Vote::new_committed(3, 2)).await.expect("vote");
            for chunk in all.chunks(7) {
                s.blocking_append(chunk.to_vec()).await.expect("append");
            }
            s.purge(log_id(1, 9)).await.expect("purge");
            s.save_committed(Some(log_id(3, 25)))
                .await
                .expect("committed");
            // Dropped here without any close or flush.
        }
        let mut s = LogStore::open_with(fs.clone(), dir.path(), small()).expect("reopen");
        assert_eq!(
            s.read_vote().await.expect("vote"),
            Some(Vote::new_committed(3, 2))
        );
        assert_eq!(
            state(&mut s).await,
            (Some(log_id(1, 9)), Some(log_id(3, 29)))
        );
        assert_eq!(
            s.read_committed().await.expect("committed"),
            Some(log_id(3, 25))
        );
        let got = s.try_get_log_entries(0..100).await.expect("read");
        assert_entries(&got, &all[10..]);
        // The purge freed whole segments: the first one left starts after offset 0.
        let first = segment_files(&*fs, dir.path())
            .into_iter()
            .next()
            .expect("a segment");
        assert_ne!(first.file_name().expect("name"), "00000000000000000000.log");
        // And the log goes on.
        s.blocking_append([entry(4, 30)]).await.expect("append");
        assert_eq!(state(&mut s).await.1, Some(log_id(4, 30)));
    }

    /// Writes `entries` as batches at the end of the active segment without fsync: an append
    /// that a crash interrupts.
    fn write_unsynced(fs: &dyn FileSystem, dir: &Path, entries: &[Entry]) {
        let path = segment_files(fs, dir).pop().expect("a segment");
        let f = fs.open(&path, false).expect("open segment");
        let len = f.len().expect("len");
        let bytes: Vec<u8> = entries
            .iter()
            .flat_map(|e| entry_batch(e, 0).expect("batch").to_vec())
            .collect();
        f.write_all_at(&[&bytes], len).expect("write");
    }

    #[tokio::test]
    async fn power_cut_keeps_every_acknowledged_entry_and_the_vote() {
        let dir = Path::new("/meta");
        let mut torn = 0;
        for seed in 1..=24u64 {
            let sim = SimFs::new();
            let fs: Arc<dyn FileSystem> = Arc::new(sim.clone());
            let all: Vec<Entry> = (0..20).map(|i| entry(1 + i / 6, i)).collect();
            let mut s = LogStore::open_with(fs.clone(), dir, small()).expect("open");
            s.save_vote(&Vote::new(2, 1)).await.expect("vote");
            for chunk in all[..12].chunks(3) {
                s.blocking_append(chunk.to_vec()).await.expect("append");
            }
            write_unsynced(&*fs, dir, &all[12..16]);
            let active = segment_files(&*fs, dir).pop().expect("segment");
            sim.power_cut(Some(seed));
            drop(s);
            let len_after_cut = sim.contents(&active).expect("segment").len();

            let mut s = LogStore::open_with(fs.clone(), dir, small()).expect("reopen");
            assert_eq!(s.read_vote().await.expect("vote"), Some(Vote::new(2, 1)));
            let last = state(&mut s).await.1.expect("entries").index;
            assert!((11..16).contains(&last), "seed {seed}: last {last}");
            let got = s.try_get_log_entries(0..).await.expect("read");
            assert_entries(&got, &all[..=last as usize]);
            // What is left of the segment is whole batches: a torn one was cut away.
            let len_now = sim.contents(&active).expect("segment").len();
            if len_now < len_after_cut {
                torn += 1;
            }

            // The store keeps working: appends after the recovered end are durable.
            let more: Vec<Entry> = (last + 1..last + 4).map(|i| entry(5, i)).collect();
            s.blocking_append(more.clone())
                .await
                .expect("append after recovery");
            sim.power_cut(Some(seed));
            drop(s);
            let mut s = LogStore::open_with(fs.clone(), dir, small()).expect("reopen again");
            assert_eq!(state(&mut s).await.1, Some(log_id(5, last + 3)));
            let got = s.try_get_log_entries(last + 1..).await.expect("read");
            assert_entries(&got, &more);
        }
        assert!(torn > 0, "no seed tore a batch");
    }

    #[tokio::test]
    async fn truncation_and_purge_survive_a_power_cut() {
        let dir = Path::new("/meta");
        let sim = SimFs::new();
        let fs: Arc<dyn FileSystem> = Arc::new(sim.clone());
        let all: Vec<Entry> = (0..30).map(|i| entry(1, i)).collect();
        let mut s = LogStore::open_with(fs.clone(), dir, small()).expect("open");
        s.blocking_append(all.clone()).await.expect("append");
        s.truncate(log_id(1, 15)).await.expect("truncate");
        s.purge(log_id(1, 4)).await.expect("purge");
        sim.power_cut(None);
        drop(s);
        let mut s = LogStore::open_with(fs.clone(), dir, small()).expect("reopen");
        assert_eq!(
            state(&mut s).await,
            (Some(log_id(1, 4)), Some(log_id(1, 14)))
        );
        assert_entries(
            &s.try_get_log_entries(0..).await.expect("read"),
            &all[5..15],
        );
        // A purge past the end (a snapshot installed) empties the log, which restarts after it.
        s.purge(log_id(2, 40)).await.expect("purge past the end");
        sim.power_cut(None);
        drop(s);
        let mut s = LogStore::open_with(fs.clone(), dir, small()).expect("reopen");
        assert_eq!(
            state(&mut s).await,
            (Some(log_id(2, 40)), Some(log_id(2, 40)))
        );
        assert!(s.try_get_log_entries(0..).await.expect("read").is_empty());
        s.blocking_append([entry(2, 41)])
            .await
            .expect("append after the snapshot");
        assert_eq!(state(&mut s).await.1, Some(log_id(2, 41)));
    }

    #[tokio::test]
    async fn a_failed_fsync_is_never_reported_durable() {
        let dir = Path::new("/meta");
        let sim = SimFs::new();
        let fs: Arc<dyn FileSystem> = Arc::new(sim.clone());
        let mut s = LogStore::open_with(fs.clone(), dir, small()).expect("open");
        s.blocking_append((0..3).map(|i| entry(1, i)))
            .await
            .expect("append");
        sim.set_fail_sync(true);
        assert!(s.blocking_append([entry(1, 3)]).await.is_err());
        assert!(s.save_vote(&Vote::new(1, 1)).await.is_err());
        sim.set_fail_sync(false);
        // Offline until reopened: the pages' state is unknown.
        assert!(s.blocking_append([entry(1, 3)]).await.is_err());
        sim.power_cut(None);
        drop(s);
        let mut s = LogStore::open_with(fs.clone(), dir, small()).expect("reopen");
        assert_eq!(state(&mut s).await.1, Some(log_id(1, 2)));
        assert_eq!(s.read_vote().await.expect("vote"), None);
        s.blocking_append([entry(1, 3)])
            .await
            .expect("append after reopen");
    }

    #[tokio::test]
    async fn a_corrupt_last_batch_is_truncated_at_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fs: Arc<dyn FileSystem> = Arc::new(DiskFs);
        let all: Vec<Entry> = (0..6).map(|i| entry(1, i)).collect();
        let mut s = LogStore::open(fs.clone(), dir.path()).expect("open");
        s.blocking_append(all.clone()).await.expect("append");
        drop(s);
        let path = segment_files(&*fs, dir.path()).pop().expect("segment");
        let mut bytes = std::fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, &bytes).expect("write");

        let mut s = LogStore::open(fs.clone(), dir.path()).expect("reopen");
        assert_eq!(state(&mut s).await.1, Some(log_id(1, 4)));
        assert_entries(&s.try_get_log_entries(0..).await.expect("read"), &all[..5]);
        s.blocking_append([entry(2, 5)]).await.expect("append");
        drop(s);
        let mut s = LogStore::open(fs.clone(), dir.path()).expect("reopen");
        assert_eq!(state(&mut s).await.1, Some(log_id(2, 5)));
    }

    /// Batches whose CRC is good — the log's own recovery keeps them — but that are not the
    /// entry belonging there.
    #[tokio::test]
    async fn a_valid_batch_that_is_not_the_next_entry_is_truncated_at_reopen() {
        let not_an_entry = || {
            let mut b = RecordBatchBuilder::new(3).partition_leader_epoch(1);
            b.append(0, None, Some(b"not an entry"), &[])
                .expect("record");
            b.build()
        };
        let wrong_index = || {
            let mut b = RecordBatchBuilder::new(3).partition_leader_epoch(1);
            let value = entry_to_bytes(&entry(1, 7)).expect("entry");
            b.append(0, None, Some(&value), &[]).expect("record");
            b.build()
        };
        let wrong_term = || {
            let mut b = RecordBatchBuilder::new(3).partition_leader_epoch(9);
            let value = entry_to_bytes(&entry(1, 3)).expect("entry");
            b.append(0, None, Some(&value), &[]).expect("record");
            b.build()
        };
        let term_going_back = || entry_batch(&entry(0, 3), 0).expect("batch");
        let after_a_hole = || entry_batch(&entry(1, 4), 0).expect("batch");
        let cases: [(&str, &dyn Fn() -> Bytes); 5] = [
            ("not an entry", &not_an_entry),
            ("wrong index", &wrong_index),
            ("wrong term", &wrong_term),
            ("term going back", &term_going_back),
            ("after a hole", &after_a_hole),
        ];
        for (name, bad) in cases {
            let dir = tempfile::tempdir().expect("tempdir");
            let fs: Arc<dyn FileSystem> = Arc::new(DiskFs);
            let mut s = LogStore::open(fs.clone(), dir.path()).expect("open");
            s.blocking_append((0..3).map(|i| entry(1, i)))
                .await
                .expect("append");
            drop(s);
            let path = segment_files(&*fs, dir.path()).pop().expect("segment");
            let good_len = std::fs::metadata(&path).expect("len").len();
            let mut bytes = std::fs::read(&path).expect("read");
            bytes.extend_from_slice(&bad());
            std::fs::write(&path, &bytes).expect("write");

            let mut s = LogStore::open(fs.clone(), dir.path()).expect("reopen");
            assert_eq!(state(&mut s).await.1, Some(log_id(1, 2)), "{name}");
            assert_eq!(
                std::fs::metadata(&path).expect("len").len(),
                good_len,
                "{name}"
            );
            s.blocking_append([entry(1, 3)]).await.expect("append");
        }
    }

    #[tokio::test]
    async fn a_committed_hint_the_log_does_not_prove_is_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fs: Arc<dyn FileSystem> = Arc::new(DiskFs);
        let mut s = LogStore::open(fs.clone(), dir.path()).expect("open");
        s.blocking_append((0..5).map(|i| entry(1, i)))
            .await
            .expect("append");
        s.save_committed(Some(log_id(1, 3)))
            .await
            .expect("committed");
        drop(s);
        let committed = LogStore::log_dir(dir.path()).join(COMMITTED_FILE);
        for (text, want) in [
            ("version=0\nterm=1\nindex=3\n", Some(log_id(1, 3))),
            ("version=0\nterm=2\nindex=3\n", None),
            ("version=0\nterm=1\nindex=9\n", None),
            ("version=0\nterm=1\nind", None),
            ("\0\0\0\0", None),
        ] {
            std::fs::write(&committed, text).expect("write");
            let mut s = LogStore::open(fs.clone(), dir.path()).expect("reopen");
            assert_eq!(
                s.read_committed().await.expect("committed"),
                want,
                "{text:?}"
            );
        }
    }

    #[test]
    fn state_files_round_trip_and_reject_garbage() {
        for v in [Vote::new(7, 3), Vote::new_committed(9, 1), Vote::default()] {
            assert_eq!(parse_vote(&encode_vote(&v)), Ok(v));
        }
        for l in [None, Some(log_id(4, 1041))] {
            assert_eq!(parse_log_id(&encode_log_id(l)), Ok(l));
        }
        for bad in [
            "",
            "version=1\nterm=7\nvoted_for=3\ncommitted=true\n",
            "version=0\nterm=7\nvoted_for=3\n",
            "version=0\nterm=7\nvoted_for=3\ncommitted=true\nextra=1\n",
            "version=0\nterm=x\nvoted_for=3\ncommitted=true\n",
        ] {
            assert!(parse_vote(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_corrupt_vote_refuses_to_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log_dir = LogStore::log_dir(dir.path());
        std::fs::create_dir_all(&log_dir).expect("dir");
        std::fs::write(log_dir.join(QUORUM_STATE_FILE), "version=0\nterm=").expect("write");
        assert!(LogStore::open(Arc::new(DiskFs), dir.path()).is_err());
    }

    /// Damage inside the committed part is corruption, not a torn tail: the store refuses to
    /// open, naming the file, the byte position and the offset, and truncates nothing.
    #[tokio::test]
    async fn a_corrupt_committed_entry_refuses_to_open_and_truncates_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fs: Arc<dyn FileSystem> = Arc::new(DiskFs);
        let all: Vec<Entry> = (0..6).map(|i| entry(1, i)).collect();
        let mut s = LogStore::open(fs.clone(), dir.path()).expect("open");
        s.blocking_append(all.clone()).await.expect("append");
        s.save_committed(Some(log_id(1, 5))).await.expect("commit");
        drop(s);
        let path = segment_files(&*fs, dir.path()).pop().expect("segment");
        let mut bytes = std::fs::read(&path).expect("read");
        // The third batch (index 2): find its position by walking the first two.
        let mut pos = 0usize;
        for _ in 0..2 {
            let len = i32::from_be_bytes(bytes[pos + 8..pos + 12].try_into().expect("4"));
            pos += 12 + len as usize;
        }
        bytes[pos + 70] ^= 0x10;
        std::fs::write(&path, &bytes).expect("write");

        let e = LogStore::open(fs.clone(), dir.path()).expect_err("refuses");
        let msg = e.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("offset 2 "), "{msg}");
        assert!(msg.contains(&format!("byte {pos}")), "{msg}");
        assert!(!msg.contains('\n'), "one line: {msg}");
        assert_eq!(
            std::fs::read(&path).expect("read").len(),
            bytes.len(),
            "nothing truncated"
        );

        // Past the committed point the same damage is a torn tail: truncated.
        std::fs::write(
            LogStore::log_dir(dir.path()).join(COMMITTED_FILE),
            encode_log_id(Some(log_id(1, 1))),
        )
        .expect("write");
        let mut s = LogStore::open(fs.clone(), dir.path()).expect("reopen");
        assert_eq!(state(&mut s).await.1, Some(log_id(1, 1)));
    }

    /// A vote or log id the store could not load again is never written; the parsers refuse
    /// the same values.
    #[tokio::test]
    async fn terms_beyond_a_leader_epoch_are_never_persisted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = LogStore::open(Arc::new(DiskFs), dir.path()).expect("open");
        let huge = Vote::new(i64::MAX as u64, 1);
        assert!(s.save_vote(&huge).await.is_err());
        assert_eq!(s.read_vote().await.expect("read"), None);
        let ok = Vote::new(i32::MAX as u64, 1);
        s.save_vote(&ok).await.expect("the largest epoch is fine");
        assert!(s
            .save_committed(Some(log_id(u64::from(u32::MAX), 3)))
            .await
            .is_err());
        drop(s);
        let mut s = LogStore::open(Arc::new(DiskFs), dir.path()).expect("reopen");
        assert_eq!(s.read_vote().await.expect("read"), Some(ok));
        assert!(parse_vote("version=0\nterm=2147483648\nvoted_for=1\ncommitted=false\n").is_err());
        assert!(parse_log_id("version=0\nterm=1\nindex=18446744073709551615\n").is_err());
    }
}
