//! `UnifiedLog`: one partition's log — an ordered set of [`LogSegment`]s in
//! `<log.dir>/<topic>-<partition>/`, the last one active.
//!
//! The offsets it keeps, named as Kafka (and Redpanda) name them:
//! - **log start offset**: the first offset a reader may ask for (retention and DeleteRecords
//!   move it forward);
//! - **log end offset** (LEO): the offset the next batch gets;
//! - **recovery point**: everything below it is known to be on disk (fsynced); after an unclean
//!   shutdown only segments from it on are rescanned;
//! - **high watermark**: kept here for the broker, which decides it (replication); readers that
//!   are consumers are bounded by it.
//!
//! Appends as leader take batches the [`LogValidator`] accepted (header, CRC, size, and every
//! record, streamed through a decompressor if compressed — read, never re-encoded) and assign
//! offsets and the leader epoch by rewriting each batch's header — for LogAppendTime also the
//! timestamp type and maxTimestamp, with the CRC recomputed from the header and the untouched
//! payload.
//! Appends as follower keep the leader's offsets.
//!
//! A roll fsyncs nothing in the append that rolls: it leaves a [`PendingFlush`](flush::PendingFlush) of the closed
//! segments, which the caller runs without the log's lock (Kafka schedules the same flush on
//! its scheduler); the recovery point advances once it has completed. Until then a crash
//! rescans those segments, and one that lost its tail (a later segment's data kept, its own
//! not) ends the log there.
//!
//! Opening a log is [`crate::log_loader`]'s (Kafka's `LogLoader`): it lists, recovers and
//! loads the directory, and the log is built from what it returns. What the log gives the
//! cleaner and takes back from it is in the `cleaning` sub-module; searching by timestamp in
//! [`TimestampSearch`](timestamp_search::TimestampSearch).
//!
//! Thread-safety: `&mut self` for changes, `&mut self` for reads too (segments open files and
//! map indexes lazily); the broker wraps a log in its partition's lock.

use crate::checkpoint::TopicPartition;
use crate::config::LogConfig;
use crate::error::{IoContext, Result, StorageError};
use crate::file_budget::{FileBudget, LogHandles, MAX_OPEN_FILES_PER_LOG};
use crate::fs::FileSystem;
use crate::leader_epoch::LeaderEpochFileCache;
pub use crate::leader_epoch::LEADER_EPOCH_CHECKPOINT;
pub use crate::log_loader::LogCheckpoints;
use crate::log_loader::{rebuild_producer_state, LogLoader};
use crate::log_segment::{BatchToAppend, LogSegment, NO_TIMESTAMP};
use crate::log_validator::{LogValidator, ValidatedRecords};
use crate::producer_state::{
    AppendOrigin, PendingProducerState, ProducerBatch, ProducerCheck, ProducerStateManager,
    VerificationGuard,
};
use bytes::Bytes;
use rafka_protocol::control_record::EndTransactionMarker;
use rafka_protocol::record_batch::{
    crc32c, RecordBatch, ATTRIBUTES_OFFSET, BASE_OFFSET_OFFSET, BASE_SEQUENCE_OFFSET,
    CONTROL_FLAG_MASK, CRC_OFFSET, MAX_TIMESTAMP_OFFSET, PARTITION_LEADER_EPOCH_OFFSET,
    PRODUCER_EPOCH_OFFSET, PRODUCER_ID_OFFSET, RECORD_BATCH_OVERHEAD, TIMESTAMP_TYPE_MASK,
    TRANSACTIONAL_FLAG_MASK,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

pub mod cleaning;
pub mod flush;
pub mod read;
mod retention;
#[path = "timestamp_search.rs"]
pub mod timestamp_search;
mod transactions;

/// ListOffsets' special timestamps.
pub const LATEST_TIMESTAMP: i64 = -1;
pub const EARLIEST_TIMESTAMP: i64 = -2;
pub const MAX_TIMESTAMP: i64 = -3;

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogAppendInfo {
    pub first_offset: i64,
    pub last_offset: i64,
    /// The largest timestamp appended (the append time for LogAppendTime).
    pub max_timestamp: i64,
    /// The time stamped on the batches under LogAppendTime, else -1.
    pub log_append_time: i64,
    pub batches: usize,
    pub bytes: usize,
    /// The batch was a retry of one already in the log (an idempotent producer's): nothing was
    /// appended, and the offsets are the ones it got the first time.
    pub duplicate: bool,
}

#[derive(Debug)]
pub struct UnifiedLog {
    fs: Arc<dyn FileSystem>,
    /// Shared with the producer state (one copy of the path a log).
    dir: Arc<Path>,
    topic_partition: TopicPartition,
    /// Shared with the other logs of its topic and with the broker's partition (one copy a
    /// topic, not one a partition).
    config: Arc<LogConfig>,
    /// Boxed: a map's node holds room for 11 entries, and a log mostly has one segment (a
    /// `LogSegment` inline would cost its node 11 segments' size, ~5.6 KB a log).
    segments: BTreeMap<i64, Box<LogSegment>>,
    log_start_offset: i64,
    log_end_offset: i64,
    recovery_point: i64,
    high_watermark: i64,
    leader_epoch_cache: LeaderEpochFileCache,
    /// Idempotent producers' sequences, rebuilt from `<offset>.snapshot` files and the log.
    producer_state: ProducerStateManager,
    unflushed_batches: i64,
    last_flush_ms: i64,
    /// Segments renamed to `.deleted`, removed once `file.delete.delay.ms` has passed.
    pending_deletes: Vec<(i64, LogSegment)>,
    /// The base offset of the newest segment a roll started, while the segments below it are
    /// not known to be flushed: what [`UnifiedLog::take_roll_flush`] flushes up to.
    roll_flush_up_to: Option<i64>,
    /// Bumped by every truncation, so that a flush taken before one does not move the recovery
    /// point over data written after it.
    truncations: u64,
    /// This log's share of the node's [`FileBudget`]: every segment counts its open files here.
    handles: Arc<LogHandles>,
}

impl UnifiedLog {
    /// Opens (or creates) the log in `dir`, recovering it if the last shutdown was not clean:
    /// segments from the recovery point on are rescanned, truncated at the first invalid or torn
    /// batch, and their indexes rebuilt; a missing or insane index is rebuilt at any time.
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        topic_partition: TopicPartition,
        config: impl Into<Arc<LogConfig>>,
        checkpoints: LogCheckpoints,
        now_ms: i64,
    ) -> Result<UnifiedLog> {
        Self::open_with_budget(
            fs,
            dir,
            topic_partition,
            config,
            checkpoints,
            now_ms,
            &FileBudget::unlimited(),
        )
    }

    /// [`UnifiedLog::open`], the log's open files counted against `budget` (which releases
    /// them when the node holds too many: see [`crate::file_budget`]).
    pub fn open_with_budget(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        topic_partition: TopicPartition,
        config: impl Into<Arc<LogConfig>>,
        checkpoints: LogCheckpoints,
        now_ms: i64,
        budget: &Arc<FileBudget>,
    ) -> Result<UnifiedLog> {
        Self::open_in(
            fs,
            dir,
            topic_partition,
            config.into(),
            checkpoints,
            now_ms,
            budget,
            true,
        )
    }

    /// [`UnifiedLog::open_with_budget`] for a new log, without the fsync that makes its first
    /// segment's files durably named: the caller fsyncs the log's directory (and the directory
    /// above) before anything is appended ([`crate::LogManager::create_logs`]).
    pub fn create_unsynced(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        topic_partition: TopicPartition,
        config: impl Into<Arc<LogConfig>>,
        now_ms: i64,
        budget: &Arc<FileBudget>,
    ) -> Result<UnifiedLog> {
        Self::open_in(
            fs,
            dir,
            topic_partition,
            config.into(),
            LogCheckpoints::default(),
            now_ms,
            budget,
            false,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn open_in(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        topic_partition: TopicPartition,
        config: Arc<LogConfig>,
        checkpoints: LogCheckpoints,
        now_ms: i64,
        budget: &Arc<FileBudget>,
        sync_new_segment: bool,
    ) -> Result<UnifiedLog> {
        let loaded = LogLoader {
            fs: &fs,
            dir,
            topic_partition: &topic_partition,
            config: &config,
            checkpoints,
            now_ms,
            budget,
            sync_new_segment,
        }
        .load()?;
        Ok(UnifiedLog {
            fs,
            dir: loaded.dir,
            topic_partition,
            config,
            segments: loaded.segments,
            log_start_offset: loaded.log_start_offset,
            log_end_offset: loaded.log_end_offset,
            recovery_point: loaded.recovery_point,
            high_watermark: loaded.high_watermark,
            leader_epoch_cache: loaded.leader_epoch_cache,
            producer_state: loaded.producer_state,
            unflushed_batches: 0,
            last_flush_ms: now_ms,
            pending_deletes: Vec::new(),
            roll_flush_up_to: None,
            truncations: 0,
            handles: loaded.handles,
        })
    }

    /// Rebuilds the producer state after a truncation (as a load does at its end).
    fn rebuild_producer_state(&mut self) -> Result<()> {
        rebuild_producer_state(
            &mut self.segments,
            &mut self.producer_state,
            &self.topic_partition,
            self.log_start_offset,
            self.log_end_offset,
            self.high_watermark,
        )
    }

    /// The idempotent producers' state (DescribeProducers).
    pub fn producer_state(&self) -> &ProducerStateManager {
        &self.producer_state
    }

    fn add_segment(&mut self, base: i64, now_ms: i64) -> Result<()> {
        let mut seg = LogSegment::create(
            self.fs.clone(),
            &self.dir,
            base,
            self.config.index_interval_bytes,
            self.config.segment_index_bytes,
            now_ms,
        )?;
        seg.set_handles(self.handles.clone());
        self.segments.insert(base, Box::new(seg));
        Ok(())
    }

    fn active_segment(&mut self) -> &mut LogSegment {
        self.segments
            .values_mut()
            .next_back()
            .expect("invariant: a log always has an active segment")
    }

    fn name(&self) -> String {
        self.topic_partition.to_string()
    }

    pub fn topic_partition(&self) -> &TopicPartition {
        &self.topic_partition
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn config(&self) -> &LogConfig {
        &self.config
    }
    /// The config, to share (the broker's partition keeps the same one).
    pub fn shared_config(&self) -> &Arc<LogConfig> {
        &self.config
    }
    /// Changes the config of a live log: takes effect on the next append, roll or retention.
    pub fn set_config(&mut self, config: impl Into<Arc<LogConfig>>) {
        self.config = config.into();
    }
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }
    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }
    pub fn leader_epoch_cache(&self) -> &LeaderEpochFileCache {
        &self.leader_epoch_cache
    }
    pub fn leader_epoch_cache_mut(&mut self) -> &mut LeaderEpochFileCache {
        &mut self.leader_epoch_cache
    }
    pub fn number_of_segments(&self) -> usize {
        self.segments.len()
    }
    /// Bytes in all segments.
    pub fn size(&self) -> u64 {
        self.segments.values().map(|s| s.size()).sum()
    }
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments.keys().copied().collect()
    }

    /// Sets the high watermark (the broker's decision), kept within [log start, log end].
    pub fn set_high_watermark(&mut self, hw: i64) {
        self.high_watermark = hw.clamp(self.log_start_offset, self.log_end_offset);
        self.producer_state
            .on_high_watermark_updated(self.high_watermark);
    }

    /// Validates ([`LogValidator`], with this log's settings) and appends a producer's batches:
    /// offsets and the leader epoch are assigned by rewriting each batch's header; the payload
    /// is written as received.
    pub fn append_as_leader(
        &mut self,
        records: &Bytes,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<LogAppendInfo> {
        let validated = LogValidator::new(&self.config, now_ms).validate(&self.name(), records)?;
        self.append_validated(&validated, leader_epoch, now_ms)
    }

    /// Appends batches [`LogValidator::validate`] accepted (the broker validates before it takes
    /// the partition's lock); otherwise as [`UnifiedLog::append_as_leader`].
    pub fn append_validated(
        &mut self,
        validated: &ValidatedRecords,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<LogAppendInfo> {
        self.append_validated_with(
            validated,
            leader_epoch,
            now_ms,
            PendingProducerState::default(),
            AppendOrigin::Client,
        )
    }

    /// Appends a coordinator's own batches (Kafka's `appendAsLeader` with origin COORDINATOR):
    /// validated as a client's, but a transactional batch (the group coordinator's TxnOffsetCommit
    /// records, all at base sequence 0) is checked only for its producer's epoch and
    /// transaction state. With `guard`, a batch that would open its producer's transaction here
    /// needs it to be the producer's current guard (KIP-890, as
    /// [`append_validated_verified`](Self::append_validated_verified)).
    pub fn append_as_coordinator(
        &mut self,
        records: &Bytes,
        leader_epoch: i32,
        now_ms: i64,
        guard: Option<VerificationGuard>,
    ) -> Result<LogAppendInfo> {
        let validated = LogValidator::new(&self.config, now_ms).validate(&self.name(), records)?;
        self.append_validated_with(
            &validated,
            leader_epoch,
            now_ms,
            guard.map_or_else(
                PendingProducerState::default,
                PendingProducerState::verified_by,
            ),
            AppendOrigin::Coordinator,
        )
    }

    /// [`UnifiedLog::append_validated`] for a request whose transactional batches must carry
    /// `guard`: one that would open a transaction is refused (INVALID_TXN_STATE) unless the
    /// guard is still its producer's.
    pub fn append_validated_verified(
        &mut self,
        validated: &ValidatedRecords,
        leader_epoch: i32,
        now_ms: i64,
        guard: VerificationGuard,
    ) -> Result<LogAppendInfo> {
        self.append_validated_with(
            validated,
            leader_epoch,
            now_ms,
            PendingProducerState::verified_by(guard),
            AppendOrigin::Client,
        )
    }

    fn append_validated_with(
        &mut self,
        validated: &ValidatedRecords,
        leader_epoch: i32,
        now_ms: i64,
        mut producers: PendingProducerState,
        origin: AppendOrigin,
    ) -> Result<LogAppendInfo> {
        let records = validated.bytes();
        let log_append_time = self.config.log_append_time;
        let mut info = LogAppendInfo {
            first_offset: self.log_end_offset,
            last_offset: self.log_end_offset,
            max_timestamp: NO_TIMESTAMP,
            log_append_time: if log_append_time {
                now_ms
            } else {
                NO_TIMESTAMP
            },
            batches: 0,
            bytes: 0,
            duplicate: false,
        };
        // One pass: each batch is validated (nothing is written unless all are), then its header
        // copied and rewritten; the payload is written from `records` as received.
        let mut offset = self.log_end_offset;
        let mut to_append: Vec<BatchToAppend<'_>> = Vec::with_capacity(1);
        let mut position = 0usize;
        for b in RecordBatch::batches(records.clone()) {
            let corrupt = |source| StorageError::CorruptBatch {
                partition: self.name(),
                position,
                source,
            };
            // Validated: the header, size and records were checked by the LogValidator.
            let batch = b.map_err(corrupt)?;
            let size = batch.size_in_bytes();
            let raw = &records[position..position + size];
            let body = &raw[RECORD_BATCH_OVERHEAD..];
            let mut h = [0u8; RECORD_BATCH_OVERHEAD];
            h.copy_from_slice(&raw[..RECORD_BATCH_OVERHEAD]);
            h[BASE_OFFSET_OFFSET..BASE_OFFSET_OFFSET + 8].copy_from_slice(&offset.to_be_bytes());
            h[PARTITION_LEADER_EPOCH_OFFSET..PARTITION_LEADER_EPOCH_OFFSET + 4]
                .copy_from_slice(&leader_epoch.to_be_bytes());
            let max_timestamp = if log_append_time {
                // LogAppendTime: the type bit and maxTimestamp change, so the CRC (which covers
                // attributes..end) is recomputed over the new header and the payload as sent.
                let attrs = i16::from_be_bytes([h[ATTRIBUTES_OFFSET], h[ATTRIBUTES_OFFSET + 1]])
                    | TIMESTAMP_TYPE_MASK;
                h[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attrs.to_be_bytes());
                h[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8]
                    .copy_from_slice(&now_ms.to_be_bytes());
                let crc = crc32c(&[&h[ATTRIBUTES_OFFSET..], body]);
                h[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
                now_ms
            } else {
                batch.max_timestamp()
            };
            if batch.has_producer_id() {
                let b = ProducerBatch {
                    producer_id: batch.producer_id(),
                    producer_epoch: batch.producer_epoch(),
                    base_sequence: batch.base_sequence(),
                    first_offset: offset,
                    last_offset: offset + i64::from(batch.last_offset_delta()),
                    max_timestamp,
                    is_transactional: batch.is_transactional(),
                };
                let check = self
                    .producer_state
                    .check_and_stage_from(&mut producers, &b, origin)
                    .map_err(|source| StorageError::Producer {
                        partition: self.name(),
                        source,
                    })?;
                if let ProducerCheck::Duplicate(d) = check {
                    // Kafka answers the whole request with the duplicate's offsets.
                    return Ok(LogAppendInfo {
                        first_offset: d.first_offset(),
                        last_offset: d.last_offset,
                        max_timestamp: d.timestamp,
                        log_append_time: NO_TIMESTAMP,
                        batches: 0,
                        bytes: 0,
                        duplicate: true,
                    });
                }
            }
            info.max_timestamp = info.max_timestamp.max(max_timestamp);
            info.last_offset = offset + i64::from(batch.last_offset_delta());
            offset = info.last_offset + 1;
            position += size;
            to_append.push(BatchToAppend {
                header: h,
                body,
                last_offset: info.last_offset,
                max_timestamp,
            });
        }
        if to_append.is_empty() {
            return Err(StorageError::CorruptBatch {
                partition: self.name(),
                position: 0,
                source: rafka_protocol::record_batch::RecordBatchError::TooShort {
                    size: records.len(),
                },
            });
        }
        self.check_append_size(position)?;
        info.batches = to_append.len();
        info.bytes = position;
        // The epoch first, as Kafka does (an entry at the log end is harmless if the append
        // then fails: recovery truncates entries from it). In memory only: the file is written
        // before the recovery point passes it (see `crate::leader_epoch`).
        if self
            .leader_epoch_cache
            .latest_epoch()
            .is_none_or(|e| leader_epoch > e)
        {
            self.leader_epoch_cache
                .assign_unflushed(leader_epoch, info.first_offset)?;
        }
        self.append_batches(info.first_offset, &to_append, position, now_ms)?;
        self.producer_state.apply(producers, self.log_end_offset);
        Ok(info)
    }

    /// Appends a leader's batches as they are (a follower's fetch): their offsets must start at
    /// or above the log end and increase; every batch's CRC is checked. Gaps are allowed (a
    /// compacted leader has them).
    pub fn append_as_follower(&mut self, records: &Bytes, now_ms: i64) -> Result<LogAppendInfo> {
        let mut to_append: Vec<BatchToAppend<'_>> = Vec::with_capacity(1);
        let mut position = 0usize;
        let mut next = self.log_end_offset;
        for b in RecordBatch::batches(records.clone()) {
            let corrupt = |source| StorageError::CorruptBatch {
                partition: self.name(),
                position,
                source,
            };
            let batch = b.map_err(corrupt)?;
            batch.ensure_valid().map_err(corrupt)?;
            if batch.base_offset() < next || batch.last_offset() < batch.base_offset() {
                return Err(StorageError::OffsetsOutOfOrder {
                    partition: self.name(),
                    first_offset: batch.base_offset(),
                    log_end_offset: next,
                });
            }
            next = batch.last_offset() + 1;
            let size = batch.size_in_bytes();
            let raw = &records[position..position + size];
            let mut header = [0u8; RECORD_BATCH_OVERHEAD];
            header.copy_from_slice(&raw[..RECORD_BATCH_OVERHEAD]);
            to_append.push(BatchToAppend {
                header,
                body: &raw[RECORD_BATCH_OVERHEAD..],
                last_offset: batch.last_offset(),
                max_timestamp: batch.max_timestamp(),
            });
            position += size;
        }
        let Some(first) = to_append.first() else {
            return Ok(LogAppendInfo {
                first_offset: self.log_end_offset,
                last_offset: self.log_end_offset - 1,
                max_timestamp: NO_TIMESTAMP,
                log_append_time: NO_TIMESTAMP,
                batches: 0,
                bytes: 0,
                duplicate: false,
            });
        };
        self.check_append_size(position)?;
        let first_offset = header_field::<8>(&first.header, BASE_OFFSET_OFFSET);
        let first_offset = i64::from_be_bytes(first_offset);
        for b in &to_append {
            let epoch = i32::from_be_bytes(header_field(&b.header, PARTITION_LEADER_EPOCH_OFFSET));
            if epoch >= 0
                && self
                    .leader_epoch_cache
                    .latest_epoch()
                    .is_none_or(|e| epoch > e)
            {
                let base = i64::from_be_bytes(header_field(&b.header, BASE_OFFSET_OFFSET));
                self.leader_epoch_cache.assign_unflushed(epoch, base)?;
            }
        }
        self.append_batches(first_offset, &to_append, position, now_ms)?;
        let mut at = 0usize;
        for b in &to_append {
            let size = RECORD_BATCH_OVERHEAD + b.body.len();
            let batch_at = at;
            at += size;
            let producer_id = i64::from_be_bytes(header_field(&b.header, PRODUCER_ID_OFFSET));
            let attributes = i16::from_be_bytes(header_field(&b.header, ATTRIBUTES_OFFSET));
            if producer_id >= 0 && attributes & CONTROL_FLAG_MASK != 0 {
                // The leader's marker: the same transaction ends here.
                let batch = RecordBatch::parse(records.slice(batch_at..batch_at + size))
                    .and_then(|batch| EndTransactionMarker::parse(&batch))
                    .map_err(|source| StorageError::CorruptBatch {
                        partition: self.name(),
                        position: batch_at,
                        source,
                    })?;
                if let Some(marker) = batch {
                    let offset = i64::from_be_bytes(header_field(&b.header, BASE_OFFSET_OFFSET));
                    let epoch = i16::from_be_bytes(header_field(&b.header, PRODUCER_EPOCH_OFFSET));
                    self.record_end_txn(producer_id, epoch, &marker, offset, b.max_timestamp)?;
                }
                continue;
            }
            if producer_id >= 0 {
                self.producer_state.update(&ProducerBatch {
                    producer_id,
                    producer_epoch: i16::from_be_bytes(header_field(
                        &b.header,
                        PRODUCER_EPOCH_OFFSET,
                    )),
                    base_sequence: i32::from_be_bytes(header_field(
                        &b.header,
                        BASE_SEQUENCE_OFFSET,
                    )),
                    first_offset: i64::from_be_bytes(header_field(&b.header, BASE_OFFSET_OFFSET)),
                    last_offset: b.last_offset,
                    max_timestamp: b.max_timestamp,
                    is_transactional: attributes & TRANSACTIONAL_FLAG_MASK != 0,
                });
            }
        }
        self.producer_state.advance_to(self.log_end_offset);
        Ok(LogAppendInfo {
            first_offset,
            last_offset: next - 1,
            max_timestamp: to_append
                .iter()
                .map(|b| b.max_timestamp)
                .max()
                .unwrap_or(NO_TIMESTAMP),
            log_append_time: NO_TIMESTAMP,
            batches: to_append.len(),
            bytes: position,
            duplicate: false,
        })
    }

    fn check_append_size(&self, size: usize) -> Result<()> {
        if size as u64 > self.config.segment_bytes {
            return Err(StorageError::AppendTooLarge {
                partition: self.name(),
                size,
                max: self.config.segment_bytes as usize,
            });
        }
        Ok(())
    }

    fn append_batches(
        &mut self,
        first_offset: i64,
        batches: &[BatchToAppend<'_>],
        size: usize,
        now_ms: i64,
    ) -> Result<()> {
        let Some(last) = batches.last() else {
            return Ok(());
        };
        let max_ts = batches
            .iter()
            .map(|b| b.max_timestamp)
            .max()
            .unwrap_or(NO_TIMESTAMP);
        let (segment_bytes, segment_ms) = (self.config.segment_bytes, self.config.segment_ms);
        if self.active_segment().should_roll(
            size as u64,
            max_ts,
            last.last_offset,
            segment_bytes,
            segment_ms,
            now_ms,
        )? {
            self.roll_at(first_offset, now_ms)?;
        }
        self.active_segment().append(batches)?;
        self.log_end_offset = last.last_offset + 1;
        self.unflushed_batches += batches.len() as i64;
        if self.unflushed_batches >= self.config.flush_messages
            || now_ms - self.last_flush_ms >= self.config.flush_ms
        {
            self.flush(self.log_end_offset, now_ms)?;
        }
        Ok(())
    }

    /// Closes file handles and unmaps indexes of every segment (a cold log); they reopen on use.
    pub fn release(&mut self) -> Result<()> {
        for seg in self.segments.values_mut() {
            seg.release()?;
        }
        Ok(())
    }

    /// This log's share of the node's [`FileBudget`].
    pub fn handles(&self) -> &Arc<LogHandles> {
        &self.handles
    }

    /// Files and index maps this log holds open now.
    pub fn open_files(&self) -> usize {
        self.handles.open_files()
    }

    /// Keeps the log within its budget, after a use (the log manager's guard calls it when the
    /// log's lock is let go): marks the log used; when it holds more than
    /// [`MAX_OPEN_FILES_PER_LOG`] releases its inactive segments; and when the node is over its
    /// budget releases the least recently used other logs ([`FileBudget::enforce`]). A failure
    /// to release (an index's fsync) is logged; the segment stays open and is tried again.
    pub fn settle(&mut self) {
        self.handles.touch();
        if self.handles.open_files() > MAX_OPEN_FILES_PER_LOG {
            self.release_inactive();
        }
        self.handles.budget().enforce(self.handles.id());
    }

    /// Releases every open segment but the active one.
    pub fn release_inactive(&mut self) {
        let Some(&active) = self.segments.keys().next_back() else {
            return;
        };
        for seg in self.segments.range_mut(..active).map(|(_, s)| s) {
            if seg.is_open() {
                if let Err(e) = seg.release() {
                    tracing::warn!(topic = %self.topic_partition.topic, partition = self.topic_partition.partition, error = %e, "cannot release a segment's files");
                }
            }
        }
    }

    /// Deletes the whole partition directory (the topic was deleted).
    pub fn delete(mut self) -> Result<()> {
        self.release()?;
        self.fs.remove_dir_all(&self.dir).at(&self.dir)
    }
}

/// `N` bytes of a batch header at `at` (a constant inside the header).
fn header_field<const N: usize>(header: &[u8; RECORD_BATCH_OVERHEAD], at: usize) -> [u8; N] {
    header[at..at + N]
        .try_into()
        .expect("invariant: the field is inside the header")
}
