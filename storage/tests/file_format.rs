//! The files `UnifiedLog` leaves on disk, byte for byte, against Kafka's documented layout.
//!
//! Batches are appended through `UnifiedLog::append_as_leader` on the real disk with a small
//! `index.interval.bytes`, with size-based rolls and an explicit one, and the log is closed
//! cleanly. Then every file is read back with a parser written here from Kafka's layout (not
//! the crate's), and compared with what Kafka's rules give for the batches appended, computed
//! here independently from the batch sizes:
//!
//! - names: `<base offset, 20 digits>.log`, `.index`, `.timeindex`;
//! - `.log`: the batches as sent, with baseOffset and partitionLeaderEpoch rewritten and nothing
//!   else (the CRC, over attributes..end, still valid); under LogAppendTime also the timestamp
//!   type bit and maxTimestamp, with the CRC recomputed;
//! - `.index`: 8-byte entries, big-endian (offset - base offset: 4 bytes; position: 4 bytes).
//!   An entry for a batch when more than `index.interval.bytes` were appended since the last
//!   entry (Kafka's `LogSegment.append`): the batch's last offset → its position;
//! - `.timeindex`: 12-byte entries, big-endian (timestamp: 8 bytes; offset - base offset: 4
//!   bytes). With each offset-index entry, the largest timestamp so far → the last offset of the
//!   batch that has it, if that timestamp is above the last entry's (so timestamps strictly
//!   increase); and one more when the segment stops being active (`onBecomeInactiveSegment`)
//!   and when it is closed (`LogSegment.close`);
//! - after a clean close every index file is exactly its entries long (trimmed).

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use rafka_protocol::record_batch::RecordBatchBuilder;
use rafka_storage::{DiskFs, LogCheckpoints, LogConfig, TopicPartition, UnifiedLog};
use std::path::Path;
use std::sync::Arc;

const INDEX_INTERVAL: u64 = 400;
const SEGMENT_BYTES: u64 = 3_000;
const EPOCH: i32 = 7;
const START_MS: i64 = 1_700_000_000_000;

// Kafka's RecordBatch v2 header (DefaultRecordBatch): the fields this test reads or rewrites.
const BASE_OFFSET_AT: usize = 0;
const LENGTH_AT: usize = 8;
const LEADER_EPOCH_AT: usize = 12;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const MAX_TIMESTAMP_AT: usize = 35;
/// Size and length fields: the batch is `LENGTH_AT + 4 + length` bytes.
const LOG_OVERHEAD: usize = 12;

fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

// ---------------------------------------------------------------------------------------------
// The workload: produce requests of 1-3 batches, 1-5 records each, values of 0-150 bytes, with
// timestamps that mostly rise but sometimes step back (the time index must skip those).

struct Sent {
    bytes: Bytes,
    records: i64,
    max_ts: i64,
}

enum Step {
    Produce(Vec<Sent>),
    Roll,
}

fn workload() -> Vec<Step> {
    let mut rng = 0xDEADBEEFu64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut ts = START_MS;
    let mut steps = Vec::new();
    for request in 0..60 {
        if request == 23 || request == 24 {
            // An explicit roll (the second one is a no-op on the empty active segment).
            steps.push(Step::Roll);
        }
        let mut batches = Vec::new();
        for _ in 0..=next(3) {
            let mut b = RecordBatchBuilder::new(0);
            let n = 1 + next(5) as i64;
            let mut max_ts = i64::MIN;
            for i in 0..n {
                // Mostly forward, one record in five back in time.
                ts += if next(5) == 0 {
                    -(next(40) as i64)
                } else {
                    next(20) as i64
                };
                let value = vec![b'v'; next(151) as usize];
                let key = format!("k{i}");
                b.append(ts, Some(key.as_bytes()), Some(&value), &[])
                    .unwrap();
                max_ts = max_ts.max(ts);
            }
            batches.push(Sent {
                bytes: b.build(),
                records: n,
                max_ts,
            });
        }
        steps.push(Step::Produce(batches));
    }
    steps
}

// ---------------------------------------------------------------------------------------------
// What Kafka's rules give, computed from the batches sent.

#[derive(Debug, Default)]
struct Expected {
    base: i64,
    log: Vec<u8>,
    /// (offset, position)
    index: Vec<(i64, u32)>,
    /// (timestamp, offset)
    time_index: Vec<(i64, i64)>,
    since_last_entry: u64,
    max_ts: i64,
    offset_of_max_ts: i64,
    /// Whether the segment was rolled (inactive) rather than active at the close.
    rolled: bool,
    /// Whether the roll or the close added a time-index entry (the rule had work to do).
    final_entry_added: bool,
}

impl Expected {
    fn new(base: i64) -> Expected {
        Expected {
            base,
            max_ts: -1,
            offset_of_max_ts: base,
            ..Expected::default()
        }
    }

    /// Whether an entry was added.
    fn maybe_append_time(&mut self) -> bool {
        let last = self.time_index.last().map_or(-1, |e| e.0);
        if self.max_ts > last {
            self.time_index.push((self.max_ts, self.offset_of_max_ts));
            return true;
        }
        false
    }

    fn append(&mut self, stored: &[u8], last_offset: i64, max_ts: i64) {
        if max_ts > self.max_ts {
            self.max_ts = max_ts;
            self.offset_of_max_ts = last_offset;
        }
        if self.since_last_entry > INDEX_INTERVAL {
            self.index.push((last_offset, self.log.len() as u32));
            let _ = self.maybe_append_time();
            self.since_last_entry = 0;
        }
        self.log.extend_from_slice(stored);
        self.since_last_entry += stored.len() as u64;
    }
}

/// Kafka's stored form of a batch a leader appends.
fn stored(sent: &Sent, base: i64, log_append_time: Option<i64>) -> Vec<u8> {
    let mut b = sent.bytes.to_vec();
    b[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base.to_be_bytes());
    b[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&EPOCH.to_be_bytes());
    if let Some(t) = log_append_time {
        let attrs = i16::from_be_bytes([b[ATTRIBUTES_AT], b[ATTRIBUTES_AT + 1]]) | 0x08;
        b[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attrs.to_be_bytes());
        b[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&t.to_be_bytes());
        let crc = crc32c::crc32c(&b[ATTRIBUTES_AT..]);
        b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    }
    b
}

/// Runs the workload through a log in `dir` (closing it cleanly) and through Kafka's rules.
fn write_and_expect(dir: &Path, log_append_time: Option<i64>) -> Vec<Expected> {
    let config = LogConfig {
        segment_bytes: SEGMENT_BYTES,
        index_interval_bytes: INDEX_INTERVAL,
        log_append_time: log_append_time.is_some(),
        ..LogConfig::default()
    };
    let mut log = UnifiedLog::open(
        Arc::new(DiskFs),
        dir,
        TopicPartition::new("format", 0),
        config,
        LogCheckpoints::default(),
        START_MS,
    )
    .unwrap();
    let mut segments = vec![Expected::new(0)];
    let mut offset = 0i64;
    for step in workload() {
        let now = log_append_time.unwrap_or(START_MS);
        match step {
            Step::Roll => {
                log.roll(now).unwrap();
                let active = segments.last_mut().unwrap();
                if !active.log.is_empty() {
                    active.final_entry_added = active.maybe_append_time();
                    active.rolled = true;
                    segments.push(Expected::new(offset));
                }
            }
            Step::Produce(batches) => {
                let request: Vec<u8> = batches.iter().flat_map(|b| b.bytes.to_vec()).collect();
                log.append_as_leader(&Bytes::from(request.clone()), EPOCH, now)
                    .unwrap();
                // Kafka's shouldRoll: the active segment would pass segment.bytes.
                let active = segments.last_mut().unwrap();
                if !active.log.is_empty()
                    && active.log.len() as u64 + request.len() as u64 > SEGMENT_BYTES
                {
                    active.final_entry_added = active.maybe_append_time();
                    active.rolled = true;
                    segments.push(Expected::new(offset));
                }
                let active = segments.last_mut().unwrap();
                for b in &batches {
                    let last = offset + b.records - 1;
                    let max_ts = log_append_time.unwrap_or(b.max_ts);
                    active.append(&stored(b, offset, log_append_time), last, max_ts);
                    offset = last + 1;
                }
            }
        }
    }
    // A clean shutdown: flush, close. Kafka's close appends the final time-index entry.
    log.flush(offset, START_MS).unwrap();
    log.close().unwrap();
    drop(log);
    let active = segments.last_mut().unwrap();
    active.final_entry_added = active.maybe_append_time();
    assert!(segments.len() >= 4, "the workload must roll a few segments");
    segments
}

// ---------------------------------------------------------------------------------------------
// The independent parsers.

/// `.index`: 8-byte entries — relative offset (int32 BE), position (int32 BE).
fn parse_offset_index(bytes: &[u8], base: i64) -> Vec<(i64, u32)> {
    assert_eq!(
        bytes.len() % 8,
        0,
        "offset index length {} is not whole entries",
        bytes.len()
    );
    bytes
        .chunks_exact(8)
        .map(|e| (base + i64::from(be_i32(e, 0)), be_i32(e, 4) as u32))
        .collect()
}

/// `.timeindex`: 12-byte entries — timestamp (int64 BE), relative offset (int32 BE).
fn parse_time_index(bytes: &[u8], base: i64) -> Vec<(i64, i64)> {
    assert_eq!(
        bytes.len() % 12,
        0,
        "time index length {} is not whole entries",
        bytes.len()
    );
    bytes
        .chunks_exact(12)
        .map(|e| (be_i64(e, 0), base + i64::from(be_i32(e, 8))))
        .collect()
}

/// The batches of a `.log` file: (position, base offset, last offset, bytes).
fn parse_log(bytes: &[u8]) -> Vec<(u32, i64, i64, &[u8])> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let size = LOG_OVERHEAD + be_i32(bytes, pos + LENGTH_AT) as usize;
        let b = &bytes[pos..pos + size];
        let base = be_i64(b, BASE_OFFSET_AT);
        out.push((
            pos as u32,
            base,
            base + i64::from(be_i32(b, LAST_OFFSET_DELTA_AT)),
            b,
        ));
        pos += size;
    }
    assert_eq!(pos, bytes.len(), "the .log file ends inside a batch");
    out
}

fn read(dir: &Path, name: String) -> Vec<u8> {
    std::fs::read(dir.join(&name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

// ---------------------------------------------------------------------------------------------

#[test]
fn segment_files_are_named_by_their_20_digit_base_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("format-0");
    let segments = write_and_expect(&dir, None);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "leader-epoch-checkpoint")
        .collect();
    names.sort();
    // Producer-state snapshots, as Kafka keeps them: one at each rolled segment's base offset
    // and one at the log end from the clean close.
    let (snapshots, names): (Vec<String>, Vec<String>) =
        names.into_iter().partition(|n| n.ends_with(".snapshot"));
    let mut want_snapshots: Vec<String> = segments[1..]
        .iter()
        .map(|s| format!("{:020}.snapshot", s.base))
        .collect();
    let last = snapshots.last().cloned().unwrap_or_default();
    if !want_snapshots.contains(&last) {
        want_snapshots.push(last);
    }
    assert_eq!(snapshots, want_snapshots);
    let mut want: Vec<String> = segments
        .iter()
        .flat_map(|s| ["log", "index", "timeindex"].map(|ext| format!("{:020}.{ext}", s.base)))
        .collect();
    want.sort();
    assert_eq!(names, want);
    assert_eq!(format!("{:020}.log", 123), "00000000000000000123.log");
}

#[test]
fn log_files_are_the_batches_with_base_offset_and_leader_epoch_rewritten() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("format-0");
    let segments = write_and_expect(&dir, None);
    let mut next = 0;
    for s in &segments {
        let log = read(&dir, format!("{:020}.log", s.base));
        assert!(
            log == s.log,
            "{:020}.log differs from the batches sent",
            s.base
        );
        for (pos, base, last, b) in parse_log(&log) {
            assert_eq!(base, next, "batch at {pos} of segment {}", s.base);
            assert_eq!(be_i32(b, LEADER_EPOCH_AT), EPOCH);
            let crc = be_i32(b, CRC_AT) as u32;
            assert_eq!(
                crc,
                crc32c::crc32c(&b[ATTRIBUTES_AT..]),
                "CRC of batch {base}"
            );
            next = last + 1;
        }
    }
}

#[test]
fn log_append_time_rewrites_the_type_bit_and_max_timestamp_and_the_crc() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("format-0");
    let t = START_MS + 1_000_000;
    let segments = write_and_expect(&dir, Some(t));
    for s in &segments {
        let log = read(&dir, format!("{:020}.log", s.base));
        assert!(
            log == s.log,
            "{:020}.log differs from the batches sent",
            s.base
        );
        for (_, base, _, b) in parse_log(&log) {
            assert_eq!(
                i16::from_be_bytes([b[ATTRIBUTES_AT], b[ATTRIBUTES_AT + 1]]) & 0x08,
                0x08
            );
            assert_eq!(be_i64(b, MAX_TIMESTAMP_AT), t);
            let crc = be_i32(b, CRC_AT) as u32;
            assert_eq!(
                crc,
                crc32c::crc32c(&b[ATTRIBUTES_AT..]),
                "CRC of batch {base}"
            );
        }
    }
}

#[test]
fn offset_index_entries_follow_kafkas_interval_rule_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("format-0");
    let segments = write_and_expect(&dir, None);
    let mut total = 0;
    for s in &segments {
        let bytes = read(&dir, format!("{:020}.index", s.base));
        let mut want = Vec::new();
        for (offset, position) in &s.index {
            want.extend_from_slice(&((offset - s.base) as i32).to_be_bytes());
            want.extend_from_slice(&position.to_be_bytes());
        }
        assert_eq!(
            bytes.len(),
            s.index.len() * 8,
            "{:020}.index length",
            s.base
        );
        assert!(
            bytes == want,
            "{:020}.index bytes: {:?} != {:?}",
            s.base,
            parse_offset_index(&bytes, s.base),
            s.index
        );
        // Each entry points at the start of the batch whose last offset it names.
        let log = read(&dir, format!("{:020}.log", s.base));
        let batches = parse_log(&log);
        for (offset, position) in parse_offset_index(&bytes, s.base) {
            assert!(
                batches
                    .iter()
                    .any(|(p, _, last, _)| *p == position && *last == offset),
                "{:020}.index entry ({offset}, {position}) does not name a batch",
                s.base
            );
        }
        total += s.index.len();
    }
    assert!(total > 10, "the workload must make index entries");
}

fn check_time_index(dir: &Path, s: &Expected) {
    let bytes = read(dir, format!("{:020}.timeindex", s.base));
    let mut want = Vec::new();
    for (ts, offset) in &s.time_index {
        want.extend_from_slice(&ts.to_be_bytes());
        want.extend_from_slice(&((offset - s.base) as i32).to_be_bytes());
    }
    let got = parse_time_index(&bytes, s.base);
    assert_eq!(
        bytes.len(),
        got.len() * 12,
        "{:020}.timeindex length",
        s.base
    );
    assert!(
        got.windows(2).all(|w| w[0].0 < w[1].0),
        "{:020}.timeindex timestamps must rise: {got:?}",
        s.base
    );
    assert!(
        bytes == want,
        "{:020}.timeindex entries: got {:?}, Kafka's rule gives {:?}",
        s.base,
        got,
        s.time_index
    );
}

#[test]
fn time_index_entries_of_rolled_segments_follow_kafkas_rule_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("format-0");
    let segments = write_and_expect(&dir, None);
    let rolled: Vec<&Expected> = segments.iter().filter(|s| s.rolled).collect();
    assert!(rolled.len() >= 3);
    let with_final = rolled.iter().filter(|s| s.final_entry_added).count();
    assert!(
        with_final >= 3,
        "the workload must exercise the roll's final entry"
    );
    for s in rolled {
        check_time_index(&dir, s);
    }
}

/// Kafka's `LogSegment.close` appends the largest timestamp so far to the time index, as a roll
/// does, so the active segment of a cleanly closed log has it too (and the next start, which
/// trusts the index, knows the segment's largest timestamp).
#[test]
fn active_segment_time_index_gets_its_final_entry_on_clean_close() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("format-0");
    let segments = write_and_expect(&dir, None);
    let active = segments.last().unwrap();
    assert!(!active.rolled);
    // The workload ends with the active segment's largest timestamp after its last index entry.
    assert!(
        active.final_entry_added,
        "the workload must exercise the close's final entry"
    );
    check_time_index(&dir, active);
}
