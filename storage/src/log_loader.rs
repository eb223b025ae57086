//! `LogLoader`: opening a partition's log directory (Kafka's `LogLoader`), before there is a
//! [`crate::UnifiedLog`] to hold what it finds.
//!
//! A load, in order: finish a log cleaner's swap that a crash interrupted
//! ([`complete_interrupted_swaps`]); remove what a crash left half done (`.deleted`, `.tmp`,
//! `.cleaned` files, indexes without their log); open every segment; trust the segments below
//! the recovery point after a clean shutdown (with sane indexes) and rescan the rest — a segment
//! is truncated at its first invalid or torn batch and its indexes rebuilt, and every segment
//! after a truncated one, or after one that lost its tail, goes; drop empty segments other than
//! the last; start an empty log at its checkpointed start; clamp the checkpointed offsets into
//! the segments found; truncate the leader-epoch cache to them; and rebuild the producer state
//! from its newest snapshot and the batch headers after it ([`rebuild_producer_state`], which a
//! truncation of the log runs too).
//!
//! What it returns ([`LoadedLog`]) is what the log is built from: the segments, the log start
//! offset, the recovery point, the log end offset (Kafka's next offset metadata), the high
//! watermark, the leader-epoch cache and the producer state. The checkpoints it starts from
//! ([`LogCheckpoints`]) are what the log directory's checkpoint files say.
//!
//! It owns no file format: segments, indexes, the leader-epoch checkpoint and producer
//! snapshots each read their own. Thread-safety: a loader is used once, by one thread, before
//! the log is shared.

use crate::checkpoint::TopicPartition;
use crate::config::LogConfig;
use crate::error::{IoContext, Result, StorageError};
use crate::file_budget::{FileBudget, LogHandles};
use crate::fs::FileSystem;
use crate::leader_epoch::{LeaderEpochFileCache, LEADER_EPOCH_CHECKPOINT};
use crate::log_segment::{file_name, LogSegment, SWAP_SUFFIX};
use crate::producer_state::{CompletedTxn, ProducerBatch, ProducerStateManager};
use crate::segment_batches::SegmentBatches;
use crate::transaction_index::AbortedTxn;
use rafka_protocol::control_record::EndTransactionMarker;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Where the log starts when it is opened: what the log directory's checkpoints say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogCheckpoints {
    pub recovery_point: i64,
    pub log_start_offset: i64,
    pub high_watermark: i64,
    /// Whether the previous process shut down cleanly (the marker was present).
    pub clean_shutdown: bool,
}

/// Loads one partition's log directory; see the module documentation.
pub(crate) struct LogLoader<'a> {
    pub fs: &'a Arc<dyn FileSystem>,
    pub dir: &'a Path,
    pub topic_partition: &'a TopicPartition,
    pub config: &'a LogConfig,
    pub checkpoints: LogCheckpoints,
    pub now_ms: i64,
    /// The node's open-file budget: the log takes its share of it here, for its segments.
    pub budget: &'a Arc<FileBudget>,
    /// Whether a first segment created for an empty log is made durably named (else the
    /// caller fsyncs the directory: [`crate::UnifiedLog::create_unsynced`]).
    pub sync_new_segment: bool,
}

/// What a load found, for [`crate::UnifiedLog`] to be built from.
#[derive(Debug)]
pub(crate) struct LoadedLog {
    pub dir: Arc<Path>,
    /// At least one segment; the last is active.
    pub segments: BTreeMap<i64, Box<LogSegment>>,
    pub log_start_offset: i64,
    /// The offset the next batch gets (Kafka's `nextOffsetMetadata`).
    pub log_end_offset: i64,
    pub recovery_point: i64,
    pub high_watermark: i64,
    pub leader_epoch_cache: LeaderEpochFileCache,
    pub producer_state: ProducerStateManager,
    /// The log's share of the node's [`FileBudget`], which its segments already count in.
    pub handles: Arc<LogHandles>,
}

impl LogLoader<'_> {
    /// Loads the log: lists and cleans up the directory, opens and recovers the segments, and
    /// rebuilds the producer state.
    pub fn load(self) -> Result<LoadedLog> {
        let fs = self.fs;
        let dir = self.dir;
        let checkpoints = self.checkpoints;
        let now_ms = self.now_ms;
        // The directory is listed once (it was four times a log: a restart of many logs did
        // little else), and again only after completing a cleaner's interrupted swap or
        // removing what a crash left behind. A new log's directory is made here.
        let mut listing = match fs.list_dir(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs.create_dir_all(dir).at(dir)?;
                Vec::new()
            }
            listed => listed.at(dir)?,
        };
        let is_swap = |p: &std::path::PathBuf| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with(SWAP_SUFFIX))
        };
        if listing.iter().any(is_swap) {
            complete_interrupted_swaps(fs, dir)?;
            listing = fs.list_dir(dir).at(dir)?;
        }
        let mut bases = Vec::new();
        let mut removed = false;
        let names: std::collections::HashSet<&std::ffi::OsStr> =
            listing.iter().filter_map(|p| p.file_name()).collect();
        for p in &listing {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.ends_with(".deleted") || name.ends_with(".tmp") || name.ends_with(".cleaned") {
                // Deletions and rewrites that a crash interrupted: finish or undo them.
                fs.remove_file(p).at(p)?;
                removed = true;
            } else if let Some(base) = name.strip_suffix(".log") {
                if let Ok(base) = base.parse::<i64>() {
                    bases.push(base);
                }
            } else if let Some(base) = name
                .strip_suffix(".index")
                .or_else(|| name.strip_suffix(".timeindex"))
            {
                // An index without its log is an orphan.
                let log = file_name(base.parse().unwrap_or(-1), ".log");
                if !names.contains(std::ffi::OsStr::new(&log)) {
                    fs.remove_file(p).at(p)?;
                    removed = true;
                }
            }
        }
        if removed {
            listing = fs.list_dir(dir).at(dir)?;
        }
        bases.sort_unstable();
        let epoch_path = dir.join(LEADER_EPOCH_CHECKPOINT);
        let leader_epoch_cache = LeaderEpochFileCache::new(fs.clone(), epoch_path)?;
        let shared_dir: Arc<Path> = Arc::from(dir);
        let producer_state =
            ProducerStateManager::from_listing(fs.clone(), shared_dir.clone(), &listing);
        let mut log = LoadedLog {
            dir: shared_dir,
            segments: BTreeMap::new(),
            log_start_offset: checkpoints.log_start_offset.max(0),
            log_end_offset: 0,
            recovery_point: checkpoints.recovery_point,
            high_watermark: checkpoints.high_watermark,
            leader_epoch_cache,
            producer_state,
            handles: self.budget.new_log(),
        };
        for base in bases {
            let mut seg = LogSegment::open(
                fs.clone(),
                dir,
                base,
                self.config.index_interval_bytes,
                self.config.segment_index_bytes,
                now_ms,
            )?;
            seg.set_handles(log.handles.clone());
            log.segments.insert(base, Box::new(seg));
        }
        self.load_segments(&mut log)?;
        if log.segments.is_empty() {
            let start = log.log_start_offset.max(log.recovery_point).max(0);
            log.log_start_offset = start;
            // Durably named unless the caller fsyncs the directory (`sync_new_segment`).
            let create = if self.sync_new_segment {
                LogSegment::create
            } else {
                LogSegment::create_unsynced
            };
            let mut seg = create(
                fs.clone(),
                &log.dir,
                start,
                self.config.index_interval_bytes,
                self.config.segment_index_bytes,
                now_ms,
            )?;
            seg.set_handles(log.handles.clone());
            log.segments.insert(start, Box::new(seg));
            log.log_end_offset = start;
        }
        let first_base = *log
            .segments
            .keys()
            .next()
            .expect("invariant: a log has a segment");
        log.log_start_offset = log.log_start_offset.max(first_base);
        if log.log_start_offset > log.log_end_offset {
            // No log starts past its own end: a checkpoint written for another incarnation
            // of this partition (deleted and created again) or damaged. The segments say
            // where it starts.
            tracing::warn!(
                topic = %self.topic_partition.topic,
                partition = self.topic_partition.partition,
                checkpointed = log.log_start_offset,
                log_end_offset = log.log_end_offset,
                "the checkpointed log start offset is past the log's end: ignored"
            );
            log.log_start_offset = first_base;
        }
        log.recovery_point = log
            .recovery_point
            .clamp(log.log_start_offset, log.log_end_offset);
        log.high_watermark = log
            .high_watermark
            .clamp(log.log_start_offset, log.log_end_offset);
        log.leader_epoch_cache
            .truncate_from_end(log.log_end_offset)?;
        log.leader_epoch_cache
            .truncate_from_start(log.log_start_offset)?;
        let max = self.config.segment_index_bytes;
        log.segments
            .values_mut()
            .next_back()
            .expect("invariant: a log always has an active segment")
            .make_active(max)?;
        rebuild_producer_state(
            &mut log.segments,
            &mut log.producer_state,
            self.topic_partition,
            log.log_start_offset,
            log.log_end_offset,
            log.high_watermark,
        )?;
        Ok(log)
    }

    /// Loads the segments: trusts those below the recovery point after a clean shutdown (with
    /// sane indexes), rescans the rest, and drops every segment after a truncated one.
    fn load_segments(&self, log: &mut LoadedLog) -> Result<()> {
        let clean_shutdown = self.checkpoints.clean_shutdown;
        let bases: Vec<i64> = log.segments.keys().copied().collect();
        let persistent = self.fs.persistent_indexes();
        let max_batch = self
            .config
            .max_message_bytes
            .max(self.config.segment_bytes as usize);
        for (i, &base) in bases.iter().enumerate() {
            let next_base = bases.get(i + 1).copied();
            let seg = log
                .segments
                .get_mut(&base)
                .expect("invariant: listed segment");
            let below_recovery = next_base.is_some_and(|n| n <= log.recovery_point);
            // A missing index fails `load_trusted` (its first use opens without creating it).
            let trusted =
                persistent && (clean_shutdown || below_recovery) && seg.load_trusted().is_ok();
            if trusted {
                continue;
            }
            let truncated =
                seg.recover(max_batch, next_base.is_none(), &mut log.leader_epoch_cache)?;
            // A closed segment is fsynced after its roll, not before the next segment is
            // written, so a crash can keep a later segment's data and lose this one's tail, cut
            // at a batch boundary (nothing torn to see): it then ends below the next segment's
            // base offset. A follower's gap at a roll looks the same, but it is above the
            // recovery point too, so it may go: the follower fetches it again.
            let lost_tail = match next_base {
                Some(next) => seg.read_next_offset()? < next,
                None => false,
            };
            if truncated > 0 || lost_tail {
                tracing::warn!(
                    topic = %self.topic_partition.topic,
                    partition = self.topic_partition.partition,
                    offset = base,
                    bytes = truncated,
                    lost_tail,
                    "truncated an invalid or torn tail during recovery"
                );
                // Nothing after a torn batch can be trusted.
                for later in &bases[i + 1..] {
                    if let Some(s) = log.segments.remove(later) {
                        s.delete_files()?;
                    }
                }
                break;
            }
        }
        // Empty segments other than the last are dropped (a roll that a crash interrupted).
        while log.segments.len() > 1 {
            let (&first, seg) = log
                .segments
                .iter_mut()
                .next()
                .expect("invariant: non-empty");
            if seg.size() > 0 {
                break;
            }
            let seg = log.segments.remove(&first).expect("invariant: present");
            seg.delete_files()?;
        }
        if let Some(last) = log.segments.values_mut().next_back() {
            log.log_end_offset = last.read_next_offset()?;
        }
        Ok(())
    }
}

/// Loads the newest producer snapshot at or below the log end and replays the batch headers
/// after it (Kafka's `loadProducerState`): at the end of a load, and after a truncation
/// ([`crate::UnifiedLog::truncate_to`]).
pub(crate) fn rebuild_producer_state(
    segments: &mut BTreeMap<i64, Box<LogSegment>>,
    producer_state: &mut ProducerStateManager,
    topic_partition: &TopicPartition,
    log_start_offset: i64,
    log_end_offset: i64,
    high_watermark: i64,
) -> Result<()> {
    let from = producer_state.reload(log_start_offset, log_end_offset)?;
    let end = log_end_offset;
    // The aborted transactions from `from` on are rebuilt from their markers.
    for seg in segments.values() {
        seg.txn_index().truncate_to(from)?;
    }
    if from < end {
        let first = segments
            .range(..=from)
            .next_back()
            .map_or(i64::MIN, |(b, _)| *b);
        for (&base, seg) in segments.range_mut(first..) {
            let position = if base == first {
                match seg.translate_offset(from)? {
                    Some(b) => b.position,
                    None => continue,
                }
            } else {
                0
            };
            for b in seg.batches_from(position)? {
                if b.last_offset < from {
                    continue;
                }
                if b.is_control() && b.producer_id >= 0 {
                    let batch = seg.read_batch(&b)?;
                    let marker = EndTransactionMarker::parse(&batch).map_err(|source| {
                        StorageError::CorruptBatch {
                            partition: topic_partition.to_string(),
                            position: b.position as usize,
                            source,
                        }
                    })?;
                    if let Some(marker) = marker {
                        let done = producer_state.complete_txn(
                            b.producer_id,
                            b.producer_epoch,
                            &marker,
                            b.base_offset,
                            b.max_timestamp,
                        );
                        if done.is_aborted {
                            let lso = producer_state.last_stable_offset_after(&done);
                            seg.txn_index().append(&aborted_txn(&done, lso))?;
                        }
                    }
                    continue;
                }
                producer_state.update(&ProducerBatch {
                    producer_id: b.producer_id,
                    producer_epoch: b.producer_epoch,
                    base_sequence: b.base_sequence,
                    first_offset: b.base_offset,
                    last_offset: b.last_offset,
                    max_timestamp: b.max_timestamp,
                    is_transactional: b.is_transactional(),
                });
            }
        }
    }
    producer_state.advance_to(end);
    producer_state.on_high_watermark_updated(high_watermark);
    Ok(())
}

/// The `.txnindex` entry of an aborted transaction.
pub(crate) fn aborted_txn(done: &CompletedTxn, last_stable_offset: i64) -> AbortedTxn {
    AbortedTxn {
        producer_id: done.producer_id,
        first_offset: done.first_offset,
        last_offset: done.last_offset,
        last_stable_offset,
    }
}

/// Finishes or undoes, in a partition directory, what a crash interrupted in a swap (see [`crate::log_cleaner`]'s crash-recovery paragraph). Run before the log's files are listed.
pub fn complete_interrupted_swaps(fs: &Arc<dyn FileSystem>, dir: &Path) -> Result<()> {
    let names = || -> Result<Vec<String>> {
        Ok(fs
            .list_dir(dir)
            .at(dir)?
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect())
    };
    let swap_log = format!(".log{SWAP_SUFFIX}");
    let mut changed = false;
    for name in names()? {
        let Some(base) = name
            .strip_suffix(&swap_log)
            .and_then(|b| b.parse::<i64>().ok())
        else {
            continue;
        };
        let path = dir.join(&name);
        let file = fs.open(&path, false).at(&path)?;
        let size = file.len().at(&path)?;
        let mut batches = SegmentBatches::of_file(file, size);
        let mut next = base;
        // The swap file was fsynced before it was named so: it is whole.
        while let Some(b) = batches.next_batch()? {
            next = b.next_offset();
        }
        for other in names()? {
            let Some(b) = other
                .strip_suffix(".log")
                .and_then(|b| b.parse::<i64>().ok())
            else {
                continue;
            };
            if (base..next.max(base + 1)).contains(&b) {
                for suffix in [".log", ".index", ".timeindex", ".txnindex"] {
                    let p = dir.join(file_name(b, suffix));
                    if fs.exists(&p) {
                        fs.remove_file(&p).at(&p)?;
                    }
                }
            }
        }
        fs.rename(&path, &dir.join(file_name(base, ".log")))
            .at(&path)?;
        tracing::warn!(dir = %dir.display(), offset = base, "completed a cleaner swap interrupted by a crash");
        changed = true;
    }
    for name in names()? {
        for suffix in [".index", ".timeindex", ".txnindex"] {
            let swap = format!("{suffix}{SWAP_SUFFIX}");
            if let Some(base) = name.strip_suffix(&swap) {
                let from = dir.join(&name);
                let to = dir.join(format!("{base}{suffix}"));
                fs.rename(&from, &to).at(&from)?;
                changed = true;
            }
        }
    }
    if changed {
        fs.sync_dir(dir).at(dir)?;
    }
    Ok(())
}
