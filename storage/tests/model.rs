//! Model-based property test of `UnifiedLog`.
//!
//! Random sequences of operations — leader appends (CreateTime and LogAppendTime), rolls,
//! truncations, high-watermark moves, retention by time and by size, DeleteRecords, flushes,
//! clean and unclean restarts — run against the log (on the real disk in a tempdir, and on
//! `SimFs`) and against a plain in-memory model: a list of segments, each a list of batches with
//! the bytes they must be stored as. After every operation both must agree on the offsets (log
//! start, log end, high watermark, recovery point), the segments, the `.log` files in the
//! directory, reads from random offsets (the batch holding the offset, whole, and the ones after
//! it within `max_bytes` and the segment), and ListOffsets by timestamp (EARLIEST, LATEST,
//! MAX_TIMESTAMP and concrete timestamps: the first record at or after the target).
//!
//! The model follows Kafka's rules (`LogSegment.shouldRoll`, `UnifiedLog.deleteOldSegments`,
//! `LogSegment.read`, `findOffsetByTimestamp`), restated here from what they mean rather than from
//! the code under test. The regression tests at the end are the minimal cases proptest found.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use rafka_protocol::record_batch::RecordBatchBuilder;
use rafka_storage::file_budget::MAX_OPEN_FILES_PER_LOG;
use rafka_storage::unified_log::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, MAX_TIMESTAMP};
use rafka_storage::{
    DiskFs, FileSystem, LogCheckpoints, LogConfig, SimFs, StorageError, TimestampAndOffset,
    TopicPartition, UnifiedLog,
};
use std::path::PathBuf;
use std::sync::Arc;

/// The clock every case starts at (ms); record timestamps stay well above 0.
const START_MS: i64 = 10_000_000;
/// Byte offsets of the header fields a leader rewrites (Kafka's RecordBatch v2 layout).
const BASE_OFFSET_AT: usize = 0;
const LEADER_EPOCH_AT: usize = 12;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const MAX_TIMESTAMP_AT: usize = 35;

// ---------------------------------------------------------------------------------------------
// Operations

#[derive(Debug, Clone)]
struct Rec {
    /// The record's timestamp relative to the clock (CreateTime; ignored under LogAppendTime).
    ts_delta: i64,
    value_len: usize,
}

#[derive(Debug, Clone)]
enum Op {
    /// One produce request of several batches, optionally as a new leader epoch.
    Append {
        batches: Vec<Vec<Rec>>,
        new_epoch: bool,
    },
    /// `message.timestamp.type` changes on the live log.
    SetLogAppendTime(bool),
    Roll,
    /// Offsets are chosen at run time from a selector, so that they land near the log.
    TruncateTo(u16),
    TruncateFully(u16),
    /// `None`: to the log end (everything replicated).
    SetHighWatermark(Option<u16>),
    Retention {
        retention_ms: i64,
        retention_bytes: i64,
        /// Then `remove_deleted_segments` this long after.
        remove_after_ms: Option<i64>,
    },
    IncrementLogStart(u16),
    Flush(u16),
    Tick(i64),
    /// flush, close, reopen with clean_shutdown = true.
    CloseReopen,
    /// drop without closing, reopen with clean_shutdown = false (the recovery point checkpoint
    /// possibly stale: 0).
    DropReopen {
        stale_recovery_point: bool,
    },
}

#[derive(Debug, Clone)]
struct Setup {
    segment_bytes: u64,
    segment_ms: i64,
    index_interval_bytes: u64,
    max_message_bytes: usize,
    log_append_time: bool,
    file_delete_delay_ms: i64,
    /// Seeds the probes (read offsets, sizes, timestamps) checked after each operation.
    seed: u64,
}

impl Setup {
    fn config(&self) -> LogConfig {
        LogConfig {
            segment_bytes: self.segment_bytes,
            segment_ms: self.segment_ms,
            segment_index_bytes: 64 * 1024,
            index_interval_bytes: self.index_interval_bytes,
            max_message_bytes: self.max_message_bytes,
            retention_ms: -1,
            retention_bytes: -1,
            log_append_time: self.log_append_time,
            file_delete_delay_ms: self.file_delete_delay_ms,
            ..LogConfig::default()
        }
    }
}

fn setup_strategy() -> impl Strategy<Value = Setup> {
    (
        prop::sample::select(vec![400u64, 800, 1_500, 1 << 20]),
        prop::sample::select(vec![3_000i64, 7 * 24 * 3600 * 1000]),
        prop::sample::select(vec![0u64, 100, 400, 4096]),
        prop::sample::select(vec![500usize, 1 << 20]),
        any::<bool>(),
        prop::sample::select(vec![0i64, 60_000]),
        any::<u64>(),
    )
        .prop_map(
            |(
                segment_bytes,
                segment_ms,
                index_interval_bytes,
                max_message_bytes,
                log_append_time,
                file_delete_delay_ms,
                seed,
            )| Setup {
                segment_bytes,
                segment_ms,
                index_interval_bytes,
                max_message_bytes,
                log_append_time,
                file_delete_delay_ms,
                seed,
            },
        )
}

fn rec_strategy() -> impl Strategy<Value = Rec> {
    (-6_000i64..=1_000, 0usize..=80).prop_map(|(ts_delta, value_len)| Rec {
        ts_delta,
        value_len,
    })
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (
            prop::collection::vec(prop::collection::vec(rec_strategy(), 1..=4), 1..=3),
            prop::bool::weighted(0.15),
        )
            .prop_map(|(batches, new_epoch)| Op::Append { batches, new_epoch }),
        1 => any::<bool>().prop_map(Op::SetLogAppendTime),
        3 => Just(Op::Roll),
        2 => any::<u16>().prop_map(Op::TruncateTo),
        1 => any::<u16>().prop_map(Op::TruncateFully),
        4 => prop::option::weighted(0.5, any::<u16>()).prop_map(Op::SetHighWatermark),
        3 => (
            prop_oneof![Just(-1i64), 0i64..=8_000],
            prop_oneof![Just(-1i64), 0i64..=2_000],
            prop::option::of(0i64..=120_000),
        )
            .prop_map(|(retention_ms, retention_bytes, remove_after_ms)| Op::Retention {
                retention_ms,
                retention_bytes,
                remove_after_ms,
            }),
        2 => any::<u16>().prop_map(Op::IncrementLogStart),
        1 => any::<u16>().prop_map(Op::Flush),
        2 => (0i64..=20_000).prop_map(Op::Tick),
        1 => Just(Op::CloseReopen),
        1 => any::<bool>().prop_map(|stale_recovery_point| Op::DropReopen { stale_recovery_point }),
    ]
}

// ---------------------------------------------------------------------------------------------
// The model

#[derive(Debug, Clone)]
struct MBatch {
    base: i64,
    last: i64,
    epoch: i32,
    max_ts: i64,
    /// (offset, timestamp) of every record, in order.
    records: Vec<(i64, i64)>,
    /// The bytes the batch must be stored as.
    bytes: Bytes,
}

impl MBatch {
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
}

#[derive(Debug, Clone)]
struct MSeg {
    base: i64,
    batches: Vec<MBatch>,
}

impl MSeg {
    fn size(&self) -> u64 {
        self.batches.iter().map(MBatch::size).sum()
    }
    /// The largest batch maxTimestamp, -1 when empty.
    fn max_ts(&self) -> i64 {
        self.batches.iter().map(|b| b.max_ts).max().unwrap_or(-1)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum AppendError {
    BatchTooLarge,
    AppendTooLarge,
}

#[derive(Debug)]
struct Model {
    config: LogConfig,
    segs: Vec<MSeg>,
    lso: i64,
    leo: i64,
    hw: i64,
    recovery_point: i64,
    /// (base offset, leader epoch) of every batch appended and not truncated away, including
    /// those retention deleted: the leader-epoch history.
    history: Vec<(i64, i32)>,
    /// Segments renamed `.deleted`: (removal due at, base offset).
    pending_deletes: Vec<(i64, i64)>,
}

/// A produce request's batch as the client built it, with its records' timestamps.
struct Produced {
    bytes: Bytes,
    record_ts: Vec<i64>,
    max_ts: i64,
}

/// What Kafka stores for a batch a leader appends: baseOffset and partitionLeaderEpoch set;
/// under LogAppendTime also the timestamp-type bit and maxTimestamp, and the CRC (over
/// attributes..end) recomputed. Nothing else changes.
fn stored_bytes(sent: &Bytes, base: i64, epoch: i32, log_append_time: Option<i64>) -> Bytes {
    let mut b = sent.to_vec();
    b[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base.to_be_bytes());
    b[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&epoch.to_be_bytes());
    if let Some(t) = log_append_time {
        let attrs = i16::from_be_bytes([b[ATTRIBUTES_AT], b[ATTRIBUTES_AT + 1]]) | 0x08;
        b[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attrs.to_be_bytes());
        b[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&t.to_be_bytes());
        let crc = crc32c::crc32c(&b[ATTRIBUTES_AT..]);
        b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    }
    Bytes::from(b)
}

impl Model {
    fn new(config: LogConfig) -> Model {
        Model {
            config,
            segs: vec![MSeg {
                base: 0,
                batches: Vec::new(),
            }],
            lso: 0,
            leo: 0,
            hw: 0,
            recovery_point: 0,
            history: Vec::new(),
            pending_deletes: Vec::new(),
        }
    }

    fn batches(&self) -> impl Iterator<Item = &MBatch> {
        self.segs.iter().flat_map(|s| s.batches.iter())
    }

    fn size(&self) -> u64 {
        self.segs.iter().map(MSeg::size).sum()
    }

    /// `append_as_leader`: offsets from the log end; a roll first when the active segment is not
    /// empty and would pass segment.bytes, or the append's largest timestamp is more than
    /// segment.ms after the segment's first batch's (Kafka's `shouldRoll`).
    fn append(
        &mut self,
        produced: &[Produced],
        epoch: i32,
        now: i64,
    ) -> Result<(i64, i64, i64, usize), AppendError> {
        if produced
            .iter()
            .any(|p| p.bytes.len() > self.config.max_message_bytes)
        {
            return Err(AppendError::BatchTooLarge);
        }
        let total: u64 = produced.iter().map(|p| p.bytes.len() as u64).sum();
        if total > self.config.segment_bytes {
            return Err(AppendError::AppendTooLarge);
        }
        let lat = self.config.log_append_time.then_some(now);
        let first = self.leo;
        let mut offset = first;
        let mut batches = Vec::new();
        for p in produced {
            let n = p.record_ts.len() as i64;
            let records = p
                .record_ts
                .iter()
                .enumerate()
                .map(|(i, ts)| (offset + i as i64, lat.unwrap_or(*ts)))
                .collect();
            batches.push(MBatch {
                base: offset,
                last: offset + n - 1,
                epoch,
                max_ts: lat.unwrap_or(p.max_ts),
                records,
                bytes: stored_bytes(&p.bytes, offset, epoch, lat),
            });
            offset += n;
        }
        let append_max_ts = batches.iter().map(|b| b.max_ts).max().unwrap_or(-1);
        let active = self.segs.last().unwrap();
        if let Some(first_batch) = active.batches.first() {
            let too_big = active.size() + total > self.config.segment_bytes;
            let too_old = append_max_ts - first_batch.max_ts > self.config.segment_ms;
            if too_big || too_old {
                self.segs.push(MSeg {
                    base: first,
                    batches: Vec::new(),
                });
            }
        }
        self.history.push((first, epoch));
        let last = offset - 1;
        self.segs.last_mut().unwrap().batches.extend(batches);
        self.leo = offset;
        Ok((first, last, append_max_ts, produced.len()))
    }

    fn roll(&mut self) {
        if !self.segs.last().unwrap().batches.is_empty() {
            self.segs.push(MSeg {
                base: self.leo,
                batches: Vec::new(),
            });
        }
    }

    /// Everything at or above `offset` goes (the batch holding it whole); below the log start:
    /// everything goes and the log restarts there.
    fn truncate_to(&mut self, offset: i64) -> bool {
        if offset >= self.leo {
            return false;
        }
        if offset < self.lso {
            self.truncate_fully(offset);
            return true;
        }
        self.segs.retain(|s| s.base <= offset);
        let active = self.segs.last_mut().unwrap();
        active.batches.retain(|b| b.last < offset);
        self.leo = active.batches.last().map_or(active.base, |b| b.last + 1);
        // The log start offset can never be above the log end.
        self.lso = self.lso.min(self.leo);
        self.hw = self.hw.min(self.leo);
        self.recovery_point = self.recovery_point.min(self.leo);
        let leo = self.leo;
        self.history.retain(|(base, _)| *base < leo);
        true
    }

    fn truncate_fully(&mut self, offset: i64) {
        self.segs = vec![MSeg {
            base: offset,
            batches: Vec::new(),
        }];
        self.lso = offset;
        self.leo = offset;
        self.hw = offset;
        self.recovery_point = offset;
        self.history.clear();
    }

    fn set_hw(&mut self, hw: i64) {
        self.hw = hw.clamp(self.lso, self.leo);
    }

    /// Kafka's retention: from the oldest segment, while a segment is wholly below the high
    /// watermark and is past retention.ms (by its largest timestamp), or its bytes are in
    /// excess of retention.bytes, or it is wholly below the log start offset.
    fn delete_old_segments(&mut self, now: i64) -> usize {
        let (retention_ms, retention_bytes) =
            (self.config.retention_ms, self.config.retention_bytes);
        let mut excess = if retention_bytes >= 0 {
            self.size() as i64 - retention_bytes
        } else {
            0
        };
        let mut doomed = 0;
        for (i, seg) in self.segs.iter().enumerate() {
            let next = self.segs.get(i + 1).map_or(self.leo, |s| s.base);
            if seg.batches.is_empty() || next > self.hw {
                break;
            }
            let by_start = next <= self.lso;
            let by_time = retention_ms >= 0 && now - seg.max_ts() > retention_ms;
            let by_size = excess >= seg.size() as i64;
            if !(by_start || by_time || by_size) {
                break;
            }
            excess -= seg.size() as i64;
            doomed += 1;
        }
        if doomed == self.segs.len() {
            self.roll();
        }
        for seg in self.segs.drain(..doomed).collect::<Vec<_>>() {
            self.pending_deletes
                .push((now + self.config.file_delete_delay_ms, seg.base));
        }
        if doomed > 0 {
            self.lso = self.lso.max(self.segs[0].base);
            self.recovery_point = self.recovery_point.max(self.lso);
        }
        doomed
    }

    fn remove_deleted_segments(&mut self, now: i64) -> usize {
        let before = self.pending_deletes.len();
        self.pending_deletes.retain(|(at, _)| *at > now);
        before - self.pending_deletes.len()
    }

    fn increment_log_start(&mut self, offset: i64) -> bool {
        if offset > self.hw {
            return false;
        }
        if offset > self.lso {
            self.lso = offset;
            self.recovery_point = self.recovery_point.max(offset);
        }
        true
    }

    fn flush(&mut self, offset: i64) {
        self.recovery_point = self.recovery_point.max(offset.min(self.leo));
    }

    fn reopen(&mut self, recovery_point: i64) {
        self.recovery_point = recovery_point.clamp(self.lso, self.leo);
        self.hw = self.hw.clamp(self.lso, self.leo);
        // `.deleted` files are removed on open.
        self.pending_deletes.clear();
    }

    /// Read: the batch holding `start` (or the first after it), whole, then the following
    /// batches of the same segment while they fit `max_bytes` and start below `max_offset`.
    fn read(
        &self,
        start: i64,
        max_bytes: u64,
        max_offset: i64,
        min_one: bool,
    ) -> Option<Option<(i64, Vec<u8>)>> {
        if start < self.lso || start > self.leo {
            return None;
        }
        let max_offset = max_offset.min(self.leo);
        if start >= max_offset {
            return Some(None);
        }
        let Some(seg) = self
            .segs
            .iter()
            .find(|s| s.batches.iter().any(|b| b.last >= start))
        else {
            return Some(None);
        };
        let mut out = Vec::new();
        let mut first = None;
        for b in seg.batches.iter().skip_while(|b| b.last < start) {
            if b.base >= max_offset {
                break;
            }
            let fits = out.len() as u64 + b.size() <= max_bytes;
            let first_whole = out.is_empty() && min_one;
            if !(fits || first_whole) {
                break;
            }
            first.get_or_insert(b.base);
            out.extend_from_slice(&b.bytes);
        }
        Some(first.map(|f| (f, out)))
    }

    /// The epoch of `offset` from the leader-epoch history: that of the last batch starting at
    /// or before it.
    fn epoch_for(&self, offset: i64) -> i32 {
        self.history
            .iter()
            .rev()
            .find(|(base, _)| *base <= offset)
            .map_or(-1, |(_, e)| *e)
    }

    fn visible_records(&self) -> impl Iterator<Item = (&MBatch, i64, i64)> {
        let lso = self.lso;
        self.batches()
            .flat_map(|b| b.records.iter().map(move |(o, t)| (b, *o, *t)))
            .filter(move |(_, o, _)| *o >= lso)
    }

    fn offset_for_timestamp(&self, target: i64) -> Option<TimestampAndOffset> {
        match target {
            EARLIEST_TIMESTAMP => Some(TimestampAndOffset {
                timestamp: -1,
                offset: self.lso,
                leader_epoch: self.epoch_for(self.lso),
            }),
            LATEST_TIMESTAMP => Some(TimestampAndOffset {
                timestamp: -1,
                offset: self.leo,
                leader_epoch: self.history.last().map_or(-1, |(_, e)| *e),
            }),
            MAX_TIMESTAMP => {
                let max = self.visible_records().map(|(_, _, t)| t).max()?;
                self.visible_records()
                    .find(|(_, _, t)| *t == max)
                    .map(|(b, o, t)| TimestampAndOffset {
                        timestamp: t,
                        offset: o,
                        leader_epoch: b.epoch,
                    })
            }
            _ => self
                .visible_records()
                .find(|(_, _, t)| *t >= target)
                .map(|(b, o, t)| TimestampAndOffset {
                    timestamp: t,
                    offset: o,
                    leader_epoch: b.epoch,
                }),
        }
    }

    /// The `.log` and `.log.deleted` files the directory must hold.
    fn log_files(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .segs
            .iter()
            .map(|s| format!("{:020}.log", s.base))
            .chain(
                self.pending_deletes
                    .iter()
                    .map(|(_, b)| format!("{b:020}.log.deleted")),
            )
            .collect();
        v.sort();
        v
    }
}

// ---------------------------------------------------------------------------------------------
// The harness: the log and the model side by side

struct Harness {
    fs: Arc<dyn FileSystem>,
    _tmp: Option<tempfile::TempDir>,
    dir: PathBuf,
    log: Option<UnifiedLog>,
    model: Model,
    now: i64,
    epoch: i32,
    rng: u64,
    /// Files are released at random points, as a node's file budget does ([`Harness::pressure`]).
    evict: bool,
}

fn tp() -> TopicPartition {
    TopicPartition::new("model", 0)
}

/// What a failed comparison says: the operation that led to it is in proptest's report.
type Check = Result<(), TestCaseError>;

impl Harness {
    fn new(disk: bool, setup: &Setup, evict: bool) -> Harness {
        let (fs, tmp, dir): (Arc<dyn FileSystem>, _, _) = if disk {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("model-0");
            (Arc::new(DiskFs), Some(tmp), dir)
        } else {
            (
                Arc::new(SimFs::new()),
                None,
                PathBuf::from("/sim/data/model-0"),
            )
        };
        let mut h = Harness {
            fs,
            _tmp: tmp,
            dir,
            log: None,
            model: Model::new(setup.config()),
            now: START_MS,
            epoch: 0,
            rng: setup.seed | 1,
            evict,
        };
        h.open(LogCheckpoints::default());
        h
    }

    fn open(&mut self, checkpoints: LogCheckpoints) {
        let log = UnifiedLog::open(
            self.fs.clone(),
            &self.dir,
            tp(),
            self.model.config.clone(),
            checkpoints,
            self.now,
        )
        .unwrap();
        self.log = Some(log);
    }

    fn log(&mut self) -> &mut UnifiedLog {
        self.log.as_mut().unwrap()
    }

    /// Under a file budget: releases the whole log (the budget's eviction), its inactive segments
    /// (the per-log bound) or nothing, at random; then the log settles, after which it holds at
    /// most `MAX_OPEN_FILES_PER_LOG`. Whatever was released reopens on the next use.
    fn pressure(&mut self) -> Check {
        if !self.evict {
            return Ok(());
        }
        let what = self.below(3);
        let log = self.log.as_mut().unwrap();
        match what {
            0 => {
                log.release().unwrap();
                prop_assert_eq!(log.open_files(), 0, "a released log holds no file");
            }
            1 => log.release_inactive(),
            _ => {}
        }
        log.settle();
        prop_assert!(
            log.open_files() <= MAX_OPEN_FILES_PER_LOG,
            "{} files open after settling",
            log.open_files()
        );
        Ok(())
    }

    /// xorshift64*: the probes are a function of the case, so failures replay.
    fn next(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// An offset in [lo, hi] picked by `sel`.
    fn pick(sel: u16, lo: i64, hi: i64) -> i64 {
        lo + i64::from(sel) % (hi - lo + 1).max(1)
    }

    fn apply(&mut self, op: &Op) -> Check {
        self.now += 10;
        let now = self.now;
        let (lso, leo) = (self.model.lso, self.model.leo);
        match op {
            Op::Append { batches, new_epoch } => {
                if *new_epoch {
                    self.epoch += 1;
                }
                let produced: Vec<Produced> = batches
                    .iter()
                    .map(|recs| {
                        let mut b = RecordBatchBuilder::new(0);
                        let mut ts = Vec::new();
                        for (i, r) in recs.iter().enumerate() {
                            let t = now + r.ts_delta;
                            let value = vec![b'a' + (i % 26) as u8; r.value_len];
                            b.append(t, Some(b"key"), Some(&value), &[]).unwrap();
                            ts.push(t);
                        }
                        Produced {
                            bytes: b.build(),
                            max_ts: *ts.iter().max().unwrap(),
                            record_ts: ts,
                        }
                    })
                    .collect();
                let request: Vec<u8> = produced.iter().flat_map(|p| p.bytes.to_vec()).collect();
                let epoch = self.epoch;
                let got = self
                    .log()
                    .append_as_leader(&Bytes::from(request), epoch, now);
                let want = self.model.append(&produced, epoch, now);
                match (got, want) {
                    (Ok(info), Ok((first, last, max_ts, n))) => {
                        prop_assert_eq!(
                            (
                                info.first_offset,
                                info.last_offset,
                                info.max_timestamp,
                                info.batches
                            ),
                            (first, last, max_ts, n),
                            "LogAppendInfo"
                        );
                        let lat = if self.model.config.log_append_time {
                            now
                        } else {
                            -1
                        };
                        prop_assert_eq!(info.log_append_time, lat);
                        let bytes: usize = produced.iter().map(|p| p.bytes.len()).sum();
                        prop_assert_eq!(info.bytes, bytes);
                    }
                    (Err(StorageError::BatchTooLarge { .. }), Err(AppendError::BatchTooLarge)) => {}
                    (
                        Err(StorageError::AppendTooLarge { .. }),
                        Err(AppendError::AppendTooLarge),
                    ) => {}
                    (got, want) => {
                        return Err(TestCaseError::fail(format!(
                            "append: log {got:?}, model {want:?}"
                        )))
                    }
                }
            }
            Op::SetLogAppendTime(on) => {
                self.model.config.log_append_time = *on;
                let config = self.model.config.clone();
                self.log().set_config(config);
            }
            Op::Roll => {
                self.log().roll(now).unwrap();
                self.model.roll();
            }
            Op::TruncateTo(sel) => {
                let offset = Self::pick(*sel, (lso - 2).max(0), leo + 1);
                let got = self.log().truncate_to(offset, now).unwrap();
                let want = self.model.truncate_to(offset);
                prop_assert_eq!(got, want, "truncate_to({}) removed something", offset);
            }
            Op::TruncateFully(sel) => {
                let offset = Self::pick(*sel, 0, leo + 10);
                self.log().truncate_fully_and_start_at(offset, now).unwrap();
                self.model.truncate_fully(offset);
            }
            Op::SetHighWatermark(sel) => {
                let hw = sel.map_or(leo, |sel| Self::pick(sel, (lso - 1).max(0), leo + 1));
                self.log().set_high_watermark(hw);
                self.model.set_hw(hw);
            }
            Op::Retention {
                retention_ms,
                retention_bytes,
                remove_after_ms,
            } => {
                self.model.config.retention_ms = *retention_ms;
                self.model.config.retention_bytes = *retention_bytes;
                let config = self.model.config.clone();
                self.log().set_config(config);
                let got = self.log().delete_old_segments(now).unwrap();
                let want = self.model.delete_old_segments(now);
                prop_assert_eq!(got, want, "segments deleted by retention");
                if let Some(after) = remove_after_ms {
                    let got = self.log().remove_deleted_segments(now + after).unwrap();
                    let want = self.model.remove_deleted_segments(now + after);
                    prop_assert_eq!(got, want, ".deleted segments removed");
                }
            }
            Op::IncrementLogStart(sel) => {
                let offset = Self::pick(*sel, (lso - 1).max(0), leo + 1);
                let got = self.log().increment_log_start_offset(offset);
                let want = self.model.increment_log_start(offset);
                match got {
                    Ok(()) => {
                        prop_assert!(want, "increment_log_start_offset({}) succeeded", offset)
                    }
                    Err(StorageError::OffsetOutOfRange { .. }) => {
                        prop_assert!(!want, "increment_log_start_offset({}) failed", offset)
                    }
                    Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
                }
            }
            Op::Flush(sel) => {
                let offset = Self::pick(*sel, 0, leo + 1);
                self.log().flush(offset, now).unwrap();
                self.model.flush(offset);
            }
            Op::Tick(ms) => self.now += ms,
            Op::CloseReopen => {
                let mut log = self.log.take().unwrap();
                let leo = log.log_end_offset();
                log.flush(leo, now).unwrap();
                log.close().unwrap();
                let checkpoints = LogCheckpoints {
                    recovery_point: log.recovery_point(),
                    log_start_offset: log.log_start_offset(),
                    high_watermark: log.high_watermark(),
                    clean_shutdown: true,
                };
                drop(log);
                self.model.flush(leo);
                let rp = self.model.recovery_point;
                self.model.reopen(rp);
                self.open(checkpoints);
            }
            Op::DropReopen {
                stale_recovery_point,
            } => {
                let log = self.log.take().unwrap();
                let rp = if *stale_recovery_point {
                    0
                } else {
                    log.recovery_point()
                };
                let checkpoints = LogCheckpoints {
                    recovery_point: rp,
                    log_start_offset: log.log_start_offset(),
                    high_watermark: log.high_watermark(),
                    clean_shutdown: false,
                };
                drop(log);
                self.model.reopen(rp);
                self.open(checkpoints);
            }
        }
        Ok(())
    }

    /// Everything observable must agree with the model.
    fn check(&mut self) -> Check {
        let m = &self.model;
        let want = (m.lso, m.leo, m.hw, m.recovery_point);
        let want_bases: Vec<i64> = m.segs.iter().map(|s| s.base).collect();
        let want_size = m.size();
        let want_files = m.log_files();
        let log = self.log.as_mut().unwrap();
        let got = (
            log.log_start_offset(),
            log.log_end_offset(),
            log.high_watermark(),
            log.recovery_point(),
        );
        prop_assert_eq!(
            got,
            want,
            "(log start, log end, high watermark, recovery point)"
        );
        prop_assert!(got.0 <= got.1, "log start offset above the log end offset");
        prop_assert_eq!(
            log.segment_base_offsets(),
            want_bases,
            "segment base offsets"
        );
        prop_assert_eq!(log.size(), want_size, "log size");
        let mut files: Vec<String> = self
            .fs
            .list_dir(&self.dir)
            .unwrap()
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .filter(|n| n.ends_with(".log") || n.ends_with(".log.deleted"))
            .collect();
        files.sort();
        prop_assert_eq!(files, want_files, ".log files in the directory");

        // Reads: at the edges and at random offsets, with random sizes and bounds.
        let (lso, leo, hw) = (want.0, want.1, want.2);
        let mut offsets = vec![lso - 1, lso, leo, leo + 1];
        for _ in 0..6 {
            let span = (leo - lso + 1).max(1) as u64;
            offsets.push(lso + self.below(span) as i64);
        }
        for start in offsets {
            let max_bytes = [0u64, 1, 120, 400, 2_000, u64::from(u32::MAX)][self.below(6) as usize];
            let max_offset = if self.below(3) == 0 { hw } else { leo };
            let min_one = self.below(4) != 0;
            self.check_read(start, max_bytes, max_offset, min_one)?;
        }

        // Timestamp lookups: the special ones, existing timestamps and their neighbours, and
        // random ones.
        let mut targets = vec![EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, MAX_TIMESTAMP];
        let all_ts: Vec<i64> = self
            .model
            .batches()
            .flat_map(|b| b.records.iter().map(|(_, t)| *t))
            .collect();
        for _ in 0..4 {
            if all_ts.is_empty() {
                break;
            }
            let t = all_ts[self.below(all_ts.len() as u64) as usize];
            targets.push(t + self.below(3) as i64 - 1);
        }
        targets.push(self.now - self.below(10_000) as i64);
        targets.push(self.now + 2_000);
        for t in targets {
            self.pressure()?;
            let mut got = self.log().fetch_offset_by_timestamp(t).unwrap();
            let want = self.model.offset_for_timestamp(t);
            if (t == EARLIEST_TIMESTAMP || t == LATEST_TIMESTAMP) && lso == leo {
                // An empty log: no record has an epoch. (Kafka's cache may have forgotten the
                // last one, as Kafka's does: truncateFromStart then truncateFromEnd at the same
                // offset, on a truncation or on reopening.)
                if let (Some(g), Some(w)) = (got.as_mut(), want) {
                    g.leader_epoch = w.leader_epoch;
                }
            }
            prop_assert_eq!(got, want, "fetch_offset_by_timestamp({})", t);
        }
        Ok(())
    }

    fn check_read(&mut self, start: i64, max_bytes: u64, max_offset: i64, min_one: bool) -> Check {
        self.pressure()?;
        let want = self.model.read(start, max_bytes, max_offset, min_one);
        let got = self.log().read(start, max_bytes, max_offset, min_one);
        if self.evict && self.below(2) == 0 {
            // The slice's file outlives its segment's release (a fetch being sent).
            self.log().release().unwrap();
        }
        let what = format!(
            "read({start}, max_bytes {max_bytes}, max_offset {max_offset}, min_one {min_one})"
        );
        match (got, want) {
            (Err(StorageError::OffsetOutOfRange { .. }), None) => {}
            (Ok(info), Some(None)) => {
                prop_assert!(
                    info.is_empty(),
                    "{}: expected nothing, got {} bytes",
                    what,
                    info.len()
                )
            }
            (Ok(info), Some(Some((first, bytes)))) => {
                prop_assert_eq!(info.first_batch_offset, first, "{}: first batch", what);
                let slice = info.slice.as_ref();
                let got = slice.map(|s| s.read_to_vec().unwrap()).unwrap_or_default();
                prop_assert!(
                    got == bytes,
                    "{}: {} bytes read, {} expected (or they differ)",
                    what,
                    got.len(),
                    bytes.len()
                );
            }
            (got, want) => {
                return Err(TestCaseError::fail(format!(
                    "{what}: log {:?}, model {want:?}",
                    got.map(|i| (i.first_batch_offset, i.len()))
                )))
            }
        }
        Ok(())
    }
}

fn run(disk: bool, setup: &Setup, ops: &[Op]) -> Check {
    run_with(disk, setup, ops, false)
}

fn run_with(disk: bool, setup: &Setup, ops: &[Op], evict: bool) -> Check {
    let mut h = Harness::new(disk, setup, evict);
    h.check()?;
    for (i, op) in ops.iter().enumerate() {
        h.pressure()?;
        h.apply(op)
            .map_err(|e| TestCaseError::fail(format!("op #{i} {op:?}: {e}")))?;
        h.pressure()?;
        h.check()
            .map_err(|e| TestCaseError::fail(format!("after op #{i} {op:?}: {e}")))?;
    }
    Ok(())
}

/// `cases` unless PROPTEST_CASES says otherwise (for a longer hunt).
fn config(cases: u32) -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(cases),
        // Shrinking replays whole cases on the real disk: bound it too.
        max_shrink_iters: 2_000,
        max_shrink_time: 30_000,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/model.txt"
        )))),
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config(48))]
    #[test]
    fn log_matches_model_on_disk(setup in setup_strategy(), ops in prop::collection::vec(op_strategy(), 1..60)) {
        run(true, &setup, &ops)?;
    }
}

proptest! {
    #![proptest_config(config(48))]
    /// The same, with the log's files released at random points (a node's file budget evicting
    /// it, or its own bound releasing its inactive segments): every answer is the same.
    #[test]
    fn log_matches_model_on_disk_with_files_released(setup in setup_strategy(), ops in prop::collection::vec(op_strategy(), 1..60)) {
        run_with(true, &setup, &ops, true)?;
    }
}

proptest! {
    #![proptest_config(config(160))]
    #[test]
    fn log_matches_model_on_simfs(setup in setup_strategy(), ops in prop::collection::vec(op_strategy(), 1..60)) {
        run(false, &setup, &ops)?;
    }
}

// ---------------------------------------------------------------------------------------------
// The minimal cases proptest found, as plain tests.

fn open_log(
    fs: Arc<dyn FileSystem>,
    dir: &std::path::Path,
    config: LogConfig,
    checkpoints: LogCheckpoints,
) -> UnifiedLog {
    UnifiedLog::open(fs, dir, tp(), config, checkpoints, START_MS).unwrap()
}

/// One batch whose records have these timestamps.
fn batch_at(timestamps: &[i64]) -> Bytes {
    let mut b = RecordBatchBuilder::new(0);
    for t in timestamps {
        b.append(*t, Some(b"k"), Some(b"v"), &[]).unwrap();
    }
    b.build()
}

fn clean(log: &UnifiedLog) -> LogCheckpoints {
    LogCheckpoints {
        recovery_point: log.recovery_point(),
        log_start_offset: log.log_start_offset(),
        high_watermark: log.high_watermark(),
        clean_shutdown: true,
    }
}

/// A clean restart trusts the indexes; the active segment's largest timestamp must survive it
/// (Kafka's `LogSegment.close` appends it to the time index).
#[test]
fn clean_restart_keeps_the_active_segments_largest_timestamp() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model-0");
    let fs: Arc<dyn FileSystem> = Arc::new(DiskFs);
    let config = LogConfig::default();
    let mut log = open_log(fs.clone(), &dir, config.clone(), LogCheckpoints::default());
    let t = START_MS;
    log.append_as_leader(&batch_at(&[t, t + 5]), 0, t).unwrap();
    let before = log.fetch_offset_by_timestamp(MAX_TIMESTAMP).unwrap();
    assert_eq!(before.map(|x| (x.timestamp, x.offset)), Some((t + 5, 1)));
    log.flush(2, t).unwrap();
    log.close().unwrap();
    let checkpoints = clean(&log);
    drop(log);
    let mut log = open_log(fs, &dir, config, checkpoints);
    assert_eq!(
        log.fetch_offset_by_timestamp(MAX_TIMESTAMP).unwrap(),
        before
    );
    // Retention by time must still see the segment's timestamps.
    log.roll(t).unwrap();
    log.append_as_leader(&batch_at(&[t + 100_000]), 0, t)
        .unwrap();
    log.set_high_watermark(3);
    log.set_config(LogConfig {
        retention_ms: 50_000,
        ..LogConfig::default()
    });
    assert_eq!(
        log.delete_old_segments(t + 60_000).unwrap(),
        1,
        "segment 0 is past retention.ms"
    );
    assert_eq!(log.log_start_offset(), 2);
}

/// A segment that unclean recovery rebuilt, trusted at the next start (it is then below the
/// recovery point), must still know its largest timestamp (Kafka's `recover` appends it to the
/// time index, as a roll does).
#[test]
fn recovered_segment_keeps_its_largest_timestamp_when_trusted_later() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model-0");
    let fs: Arc<dyn FileSystem> = Arc::new(DiskFs);
    let config = LogConfig::default();
    let mut log = open_log(fs.clone(), &dir, config.clone(), LogCheckpoints::default());
    let t = START_MS;
    log.append_as_leader(&batch_at(&[t]), 0, t).unwrap();
    log.append_as_leader(&batch_at(&[t + 5]), 0, t).unwrap();
    log.roll(t).unwrap();
    let want = log.fetch_offset_by_timestamp(MAX_TIMESTAMP).unwrap();
    assert_eq!(want.map(|x| (x.timestamp, x.offset)), Some((t + 5, 1)));
    // A crash: everything is rescanned.
    drop(log);
    let unclean = |recovery_point| LogCheckpoints {
        recovery_point,
        clean_shutdown: false,
        ..LogCheckpoints::default()
    };
    let mut log = open_log(fs.clone(), &dir, config.clone(), unclean(0));
    assert_eq!(log.fetch_offset_by_timestamp(MAX_TIMESTAMP).unwrap(), want);
    log.flush(2, t).unwrap();
    // Another crash: segment 0 is below the recovery point now, and trusted.
    drop(log);
    let mut log = open_log(fs, &dir, config, unclean(2));
    assert_eq!(log.fetch_offset_by_timestamp(MAX_TIMESTAMP).unwrap(), want);
}

/// MAX_TIMESTAMP after DeleteRecords moved the log start into the batch holding the largest
/// timestamp: the first record at or above the log start with the largest timestamp.
#[test]
fn max_timestamp_skips_records_below_the_log_start_offset() {
    let fs: Arc<dyn FileSystem> = Arc::new(SimFs::new());
    let config = LogConfig {
        log_append_time: true,
        ..LogConfig::default()
    };
    let mut log = open_log(
        fs,
        std::path::Path::new("/sim/model-0"),
        config,
        LogCheckpoints::default(),
    );
    let t = START_MS;
    // One request: offsets 0-1, then 2, all stamped t.
    let request: Vec<u8> = [batch_at(&[1, 2]), batch_at(&[3])].concat();
    log.append_as_leader(&Bytes::from(request), 0, t).unwrap();
    log.set_high_watermark(3);
    log.increment_log_start_offset(2).unwrap();
    let got = log.fetch_offset_by_timestamp(MAX_TIMESTAMP).unwrap();
    assert_eq!(got.map(|x| (x.timestamp, x.offset)), Some((t, 2)));
}

/// Truncating inside the batch that holds the log start offset removes that batch whole: the log
/// end goes below the old log start, and the log start must follow it down (Kafka:
/// `logStartOffset = min(targetOffset, logStartOffset)`), or the log is left with
/// log start > log end, where no offset can be read and the next append lands below the start.
#[test]
fn truncation_below_the_log_start_batch_keeps_log_start_at_or_below_log_end() {
    let fs: Arc<dyn FileSystem> = Arc::new(SimFs::new());
    let mut log = open_log(
        fs,
        std::path::Path::new("/sim/model-0"),
        LogConfig::default(),
        LogCheckpoints::default(),
    );
    let t = START_MS;
    log.append_as_leader(&batch_at(&[t, t, t, t]), 0, t)
        .unwrap();
    log.set_high_watermark(4);
    log.increment_log_start_offset(2).unwrap();
    assert!(log.truncate_to(3, t).unwrap());
    assert_eq!(
        log.log_end_offset(),
        0,
        "the batch holding offset 3 goes whole"
    );
    assert!(
        log.log_start_offset() <= log.log_end_offset(),
        "log start {} above log end {}",
        log.log_start_offset(),
        log.log_end_offset()
    );
    let info = log.append_as_leader(&batch_at(&[t]), 0, t).unwrap();
    let read = log.read(info.first_offset, u64::MAX, info.last_offset + 1, true);
    assert!(
        read.is_ok_and(|r| !r.is_empty()),
        "the record just appended must be readable"
    );
}

/// Unclean recovery rebuilds an index from the log; a segment whose index was trimmed (by a
/// roll or a clean close) may need more entries than the trimmed file holds — here because a
/// truncation reset the byte count since the last entry, so the live segment made fewer entries
/// than a rebuild does (a smaller `index.interval.bytes` after a restart does the same). Kafka's
/// `recover` starts with `reset()`: truncate and resize to `segment.index.bytes`.
#[test]
fn recovery_rebuilds_an_index_that_was_trimmed_smaller() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model-0");
    let fs: Arc<dyn FileSystem> = Arc::new(DiskFs);
    let config = LogConfig {
        index_interval_bytes: 0,
        ..LogConfig::default()
    };
    let mut log = open_log(fs.clone(), &dir, config.clone(), LogCheckpoints::default());
    let t = START_MS;
    log.append_as_leader(&batch_at(&[t]), 0, t).unwrap();
    log.append_as_leader(&batch_at(&[t]), 0, t).unwrap(); // indexed: bytes were written before it
    assert!(log.truncate_to(1, t).unwrap());
    log.append_as_leader(&batch_at(&[t]), 0, t).unwrap(); // not indexed: the count restarted
    log.roll(t).unwrap(); // trims segment 0's index to its 0 entries
    drop(log);
    let unclean = LogCheckpoints {
        clean_shutdown: false,
        ..LogCheckpoints::default()
    };
    let mut log = UnifiedLog::open(fs, &dir, tp(), config, unclean, t)
        .expect("recovery must rebuild segment 0's index (2 batches, 1 entry)");
    assert_eq!(log.log_end_offset(), 2);
    let info = log.read(1, u64::MAX, 2, true).unwrap();
    assert_eq!(info.first_batch_offset, 1);
}
