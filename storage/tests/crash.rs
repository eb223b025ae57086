//! Crash tests of `UnifiedLog` on the real disk (`DiskFs`).
//!
//! - `sigkill_during_appends_loses_no_acknowledged_batch`: this test binary re-executes itself
//!   as a child (`crash_child`) that appends forever and acknowledges each append on stdout; the
//!   parent kills it with a real SIGKILL after a seeded random delay, checks what it left on disk
//!   (every acknowledged batch, sane index files), reopens the log as after an unclean shutdown
//!   and checks it (exactly the intact prefix, dense, valid, indexes rebuilt, lookups right);
//!   the next child resumes on the same directory. Seed: `RAFKA_CRASH_SEED` (printed).
//! - `torn_or_corrupt_tail_is_truncated_at_recovery`: the last batch cut at every byte and
//!   flipped at every byte; a corrupt batch in the first segment.
//! - Index files deleted, zeroed, filled with junk, or shorter than their entries.
//!
//! Batch contents derive from their first offset, so any record can be checked by its offset
//! alone; the leader epoch of an append is the kill cycle that wrote it. Index files are parsed
//! here, independently of the crate.

use bytes::Bytes;
use rafka_protocol::record_batch::{RecordBatch, RecordBatchBuilder};
use rafka_storage::{DiskFs, LogCheckpoints, LogConfig, TopicPartition, UnifiedLog};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const CHILD_DIR_ENV: &str = "RAFKA_CRASH_CHILD_DIR";
const CHILD_EPOCH_ENV: &str = "RAFKA_CRASH_CHILD_EPOCH";
const CYCLES: u32 = 200;
/// The SIGKILL test fails rather than run past this (it takes about 30 s).
const BUDGET: Duration = Duration::from_secs(150);
const TS0: i64 = 1_700_000_000_000;
const INTERVAL: u64 = 256;

fn config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        // Small indexes: segments also roll because the time index is full.
        segment_index_bytes: 2048,
        index_interval_bytes: INTERVAL,
        retention_ms: -1,
        ..LogConfig::default()
    }
}

fn open_with(dir: &Path, config: LogConfig, checkpoints: LogCheckpoints) -> UnifiedLog {
    let tp = TopicPartition::new("crash", 0);
    UnifiedLog::open(Arc::new(DiskFs), dir, tp, config, checkpoints, TS0)
        .unwrap_or_else(|e| panic!("open {}: {e}", dir.display()))
}

/// As after an unclean shutdown with no recovery-point checkpoint: every segment is rescanned.
fn open_unclean(dir: &Path, segment_bytes: u64) -> UnifiedLog {
    open_with(dir, config(segment_bytes), checkpoints(0, false))
}

fn checkpoints(recovery_point: i64, clean_shutdown: bool) -> LogCheckpoints {
    let (log_start_offset, high_watermark) = (0, 0);
    LogCheckpoints {
        recovery_point,
        log_start_offset,
        high_watermark,
        clean_shutdown,
    }
}

fn junk(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.below(256) as u8).collect()
}

fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = mix(self.0);
        self.0 % n.max(1)
    }
}

fn record_count(first: i64) -> i64 {
    1 + (mix(first as u64) % 5) as i64
}

fn value(offset: i64) -> Vec<u8> {
    let h = mix(offset as u64 ^ 0xFACE);
    let len = 8 + (h % 120) as usize;
    (0..len)
        .map(|i| h.rotate_left(i as u32) as u8 ^ i as u8)
        .collect()
}

/// The batch appended at `first`: its records, keys, values and timestamps follow from offsets.
fn batch_for(first: i64) -> Bytes {
    let mut b = RecordBatchBuilder::new(0);
    for o in first..first + record_count(first) {
        let key = format!("k{o}");
        b.append(TS0 + o, Some(key.as_bytes()), Some(&value(o)), &[])
            .expect("record fits");
    }
    b.build()
}

/// The batch's CRC and records are valid and every record is the one written at its offset.
fn check_content(b: &RecordBatch) {
    let first = b.base_offset();
    b.validate()
        .unwrap_or_else(|e| panic!("batch at {first}: {e}"));
    let (n, max_ts) = (b.last_offset() - first + 1, b.max_timestamp());
    assert_eq!(
        (n, max_ts),
        (record_count(first), TS0 + b.last_offset()),
        "{first}"
    );
    for (i, r) in b.records().expect("uncompressed").enumerate() {
        let r = r.unwrap_or_else(|e| panic!("batch at {first}: {e}"));
        let o = first + i as i64;
        let key = format!("k{o}");
        assert_eq!(r.key.as_deref(), Some(key.as_bytes()), "key at {o}");
        assert_eq!(r.value.as_deref(), Some(&value(o)[..]), "value at {o}");
        assert_eq!(r.timestamp(b), TS0 + o, "timestamp at {o}");
    }
}

/// A batch found in a `.log` file by this test's own parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RawBatch {
    base: i64,
    last: i64,
    pos: u64,
    size: u64,
    epoch: i32,
}

/// A `.log` file: its valid batches from the start (`valid` bytes) and its length.
#[derive(Debug)]
struct RawSeg {
    base: i64,
    len: u64,
    batches: Vec<RawBatch>,
    valid: u64,
}

fn seg_path(dir: &Path, base: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{base:020}{suffix}"))
}

fn segment_bases(dir: &Path) -> Vec<i64> {
    let mut bases: Vec<i64> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| {
            let name = e.expect("dir entry").file_name().into_string().ok()?;
            name.strip_suffix(".log")?.parse().ok()
        })
        .collect();
    bases.sort_unstable();
    bases
}

/// Valid batches (CRC, records) with increasing offsets, up to the first that is not.
fn scan_log(dir: &Path, base: i64, mut prev_last: i64) -> RawSeg {
    let data = std::fs::read(seg_path(dir, base, ".log")).expect("read .log");
    let (mut pos, mut batches) = (0usize, Vec::new());
    while pos + 61 <= data.len() {
        let length = i32::from_be_bytes(data[pos + 8..pos + 12].try_into().expect("4"));
        let size = 12 + i64::from(length);
        if size < 61 || pos as i64 + size > data.len() as i64 {
            break;
        }
        let bytes = Bytes::copy_from_slice(&data[pos..pos + size as usize]);
        let Ok(b) = RecordBatch::parse(bytes) else {
            break;
        };
        if b.validate().is_err() || b.base_offset() <= prev_last {
            break;
        }
        let (base, last, epoch) = (b.base_offset(), b.last_offset(), b.partition_leader_epoch());
        let (pos64, size) = (pos as u64, size as u64);
        batches.push(RawBatch {
            base,
            last,
            pos: pos64,
            size,
            epoch,
        });
        prev_last = last;
        pos += size as usize;
    }
    RawSeg {
        base,
        len: data.len() as u64,
        batches,
        valid: pos as u64,
    }
}

fn scan_dir(dir: &Path) -> Vec<RawSeg> {
    let mut prev_last = -1;
    let mut out = Vec::new();
    for base in segment_bases(dir) {
        let s = scan_log(dir, base, prev_last);
        prev_last = s.batches.last().map_or(prev_last, |b| b.last);
        out.push(s);
    }
    out
}

/// What recovery must keep: every batch up to the first invalid one.
fn intact_prefix(segs: &[RawSeg]) -> Vec<RawBatch> {
    let mut out = Vec::new();
    for s in segs {
        out.extend_from_slice(&s.batches);
        if s.valid < s.len {
            break;
        }
    }
    out
}

/// The leading non-zero entries of an index file of `width`-byte entries; everything after the
/// first all-zero entry must be zeros (a full-size file left by a crash).
fn index_entries(path: &Path, width: usize) -> Vec<Vec<u8>> {
    let Ok(data) = std::fs::read(path) else {
        return Vec::new();
    };
    let p = path.display();
    assert_eq!(data.len() % width, 0, "{p}: length");
    let mut chunks = data.chunks(width);
    let entries: Vec<Vec<u8>> = chunks
        .by_ref()
        .take_while(|c| c.iter().any(|b| *b != 0))
        .map(<[u8]>::to_vec)
        .collect();
    assert!(chunks.flatten().all(|b| *b == 0), "{p}: stale entries");
    entries
}

/// The `.index` entries Kafka's rule gives: the batch that crosses each `index.interval.bytes`.
fn expected_index(batches: &[RawBatch], interval: u64) -> Vec<(i64, u64)> {
    let (mut since, mut out) = (0, Vec::new());
    for b in batches {
        if since > interval {
            out.push((b.last, b.pos));
            since = 0;
        }
        since += b.size;
    }
    out
}

/// What a segment's index files must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Indexes {
    /// Exactly the entries recovery builds (Kafka's `recover`): in the time index, also the
    /// entry for the largest timestamp that a roll or a clean close would add.
    Rebuilt,
    /// As a live process leaves them: the offset index a prefix of those (a kill between the log
    /// write and the entry); the time index may have the entry a roll adds.
    Written,
    /// As `Written`, but the last entry may be half-written: entries are plain stores into a
    /// shared mapping, so a kill can land between an entry's two fields (the active segment).
    KilledWriting,
}

/// Checks a segment's `.index` and `.timeindex` against its batches: every entry points at a
/// batch start whose last offset is the entry's offset (and, in the time index, whose largest
/// timestamp is the entry's), in order.
fn check_indexes(dir: &Path, seg: &RawSeg, expect: Indexes) {
    // Big-endian, unsigned for 4 bytes (a relative offset or a position), signed for 8.
    let be = |b: &[u8]| b.iter().fold(0i64, |a, x| a << 8 | i64::from(*x));
    let path = seg_path(dir, seg.base, ".index");
    let p = path.display();
    let mut idx: Vec<(i64, u64)> = index_entries(&path, 8)
        .iter()
        .map(|e| (seg.base + be(&e[..4]), be(&e[4..]) as u64))
        .collect();
    let (exact, torn) = (expect == Indexes::Rebuilt, expect == Indexes::KilledWriting);
    if torn {
        idx.pop();
    }
    for &(offset, pos) in &idx {
        let b = seg.batches.iter().find(|b| b.pos == pos);
        let ok = b.is_some_and(|b| b.last == offset);
        assert!(ok, "{p}: entry ({offset}, {pos}) points at {b:?}");
    }
    let want = expected_index(&seg.batches, INTERVAL);
    let prefix = want.starts_with(&idx);
    assert!(
        prefix && (!exact || idx == want),
        "{p}: {idx:?}, want {want:?}"
    );
    let path = seg_path(dir, seg.base, ".timeindex");
    let p = path.display();
    let mut tidx: Vec<(i64, i64)> = index_entries(&path, 12)
        .iter()
        .map(|e| (be(&e[..8]), seg.base + be(&e[8..])))
        .collect();
    if torn {
        tidx.pop();
    }
    for (i, &(ts, offset)) in tidx.iter().enumerate() {
        let ok = seg.batches.iter().any(|b| b.last == offset) && ts == TS0 + offset;
        let ordered = i == 0 || tidx[i - 1].0 < ts;
        assert!(ok && ordered, "{p}: entry {i}: ({ts}, {offset})");
    }
    if exact {
        // Kafka's recover: an entry with each offset-index entry, then the largest timestamp
        // (here the last offset's) unless the last entry has it already.
        let mut want: Vec<(i64, i64)> = want.iter().map(|&(o, _)| (TS0 + o, o)).collect();
        if let Some(b) = seg.batches.last() {
            if want.last().is_none_or(|&(ts, _)| ts < TS0 + b.last) {
                want.push((TS0 + b.last, b.last));
            }
        }
        assert_eq!(tidx, want, "{p}");
    }
}

/// Reads the whole log through `read`: dense offsets from the log start, every batch valid and
/// holding what was written at its offsets, the LEO right after the last one. Returns (base,
/// last, epoch) of every batch.
fn read_all(log: &mut UnifiedLog) -> Vec<(i64, i64, i32)> {
    let (leo, mut next) = (log.log_end_offset(), log.log_start_offset());
    let mut out = Vec::new();
    while next < leo {
        let f = log.read(next, 64 << 10, leo, true).expect("read");
        assert_eq!(f.first_batch_offset, next, "read at {next}");
        let slice = f.slice.unwrap_or_else(|| panic!("nothing at {next}"));
        for b in RecordBatch::batches(slice.read_to_vec().expect("read slice").into()) {
            let b = b.unwrap_or_else(|e| panic!("batch after {next}: {e}"));
            assert_eq!(b.base_offset(), next, "offsets are dense");
            check_content(&b);
            out.push((next, b.last_offset(), b.partition_leader_epoch()));
            next = b.last_offset() + 1;
        }
    }
    assert_eq!(next, leo, "the LEO is right after the last batch");
    out
}

/// Index lookups: the batch holding `o`, and the offset of timestamp `TS0 + o`.
fn check_lookup(log: &mut UnifiedLog, o: i64) {
    let f = log.read(o, 1, log.log_end_offset(), true).expect("read");
    let bytes = f.slice.expect("a batch").read_to_vec().expect("read slice");
    let b = RecordBatch::parse(bytes.into()).expect("one whole batch");
    let (base, last) = (b.base_offset(), b.last_offset());
    assert!(base <= o && o <= last, "read({o}) gave {base}");
    let t = log.fetch_offset_by_timestamp(TS0 + o).expect("ts");
    let t = t.map(|t| (t.offset, t.timestamp));
    assert_eq!(t, Some((o, TS0 + o)), "timestamp of {o}");
}

/// The child: appends forever to the log in `$RAFKA_CRASH_CHILD_DIR`, acknowledging each append.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let epoch = std::env::var(CHILD_EPOCH_ENV).expect("epoch");
    let epoch: i32 = epoch.parse().expect("epoch");
    let mut log = open_unclean(Path::new(&dir), 64 << 10);
    let mut out = std::io::stdout().lock();
    // The harness printed "test crash_child ... " without a line end: start a line.
    writeln!(out, "\nready {}", log.log_end_offset()).expect("stdout");
    out.flush().expect("stdout");
    // Bounded even if never killed: a write to a closed pipe fails (EPIPE), or time runs out.
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let first = log.log_end_offset();
        let info = log.append_as_leader(&batch_for(first), epoch, TS0);
        let info = info.expect("append");
        assert_eq!(info.first_offset, first);
        let acked = writeln!(out, "acked {first} {} {epoch}", info.last_offset);
        if acked.and_then(|()| out.flush()).is_err() {
            return;
        }
    }
}

/// Acknowledged batches: first offset -> (last offset, leader epoch).
type Acked = BTreeMap<i64, (i64, i32)>;

#[derive(Default, Debug)]
struct Stats {
    acked: usize,
    killed_before_ready: u32,
    torn_tails: u32,
    max_segments: usize,
    retention_passes: u32,
}

/// Spawns a child for `epoch`, kills it with SIGKILL after a seeded delay (from its "ready"
/// line, or from the spawn every 8th cycle, to hit its recovery) and returns its whole lines.
fn run_child(dir: &Path, epoch: i32, rng: &mut Rng) -> Vec<String> {
    let mut child = Command::new(std::env::current_exe().expect("current exe"))
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_EPOCH_ENV, epoch.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let (mut r, mut line) = (BufReader::new(stdout), Vec::new());
        // Only whole lines count: a line cut by the kill is no acknowledgement.
        while r.read_until(b'\n', &mut line).expect("read child") > 0 && line.ends_with(b"\n") {
            let _ = tx.send(String::from_utf8_lossy(&line).trim_end().to_string());
            line.clear();
        }
    });
    let mut lines = Vec::new();
    if epoch % 8 == 0 {
        std::thread::sleep(Duration::from_millis(rng.below(15)));
    } else {
        let ready = |l: &Vec<String>| l.last().is_some_and(|l| l.starts_with("ready "));
        while !ready(&lines) {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(l) => lines.push(l),
                Err(e) => {
                    let _ = child.kill();
                    panic!("epoch {epoch}: child not ready ({e}): {:?}", child.wait());
                }
            }
        }
        std::thread::sleep(Duration::from_micros(rng.below(30_000)));
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("wait child");
    assert_eq!(status.signal(), Some(9), "not killed: {status}");
    reader.join().expect("reader");
    lines.extend(rx.try_iter());
    lines
}

/// After a kill: every acknowledged batch is on disk, the index files left behind are sane,
/// recovery keeps exactly the intact prefix and rebuilds the indexes, lookups work. Keeps the
/// log's size bounded by retention.
fn verify_after_kill(dir: &Path, ready: bool, acked: &mut Acked, stats: &mut Stats) {
    let before = scan_dir(dir);
    let prefix = intact_prefix(&before);
    stats.torn_tails += u32::from(before.iter().any(|s| s.valid < s.len));
    let found: BTreeMap<i64, (i64, i32)> =
        prefix.iter().map(|b| (b.base, (b.last, b.epoch))).collect();
    for (first, want) in acked.iter() {
        assert_eq!(found.get(first), Some(want), "acked batch at {first}");
    }
    // A child killed before it was ready may have been rebuilding any index: nothing to check.
    for (i, s) in before.iter().enumerate().filter(|_| ready) {
        let last = i + 1 == before.len();
        let expect = if last {
            Indexes::KilledWriting
        } else {
            Indexes::Written
        };
        check_indexes(dir, s, expect);
    }
    let mut log = open_unclean(dir, 64 << 10);
    let want_leo = prefix.last().map_or(log.log_start_offset(), |b| b.last + 1);
    assert_eq!(log.log_end_offset(), want_leo, "LEO after recovery");
    let want: Vec<(i64, i64, i32)> = prefix.iter().map(|b| (b.base, b.last, b.epoch)).collect();
    assert_eq!(read_all(&mut log), want, "recovery keeps the intact prefix");
    // On disk: no byte after the last batch, no segment after a torn one, indexes rebuilt.
    let after = scan_dir(dir);
    stats.max_segments = stats.max_segments.max(after.len());
    let on_disk: Vec<RawBatch> = after.iter().flat_map(|s| s.batches.clone()).collect();
    assert_eq!(on_disk, prefix, "segment files after recovery");
    for (i, s) in after.iter().enumerate() {
        assert_eq!(s.valid, s.len, "{}: bytes after the last batch", s.base);
        let first = s.batches.first().map_or(want_leo, |b| b.base);
        let empty_ok = !s.batches.is_empty() || i + 1 == after.len();
        assert!(first == s.base && empty_ok, "segment {}: {first}", s.base);
        check_indexes(dir, s, Indexes::Rebuilt);
    }
    let (start, leo) = (log.log_start_offset(), log.log_end_offset());
    let mut rng = Rng(leo as u64);
    for _ in 0..(leo - start).min(12) {
        check_lookup(&mut log, start + rng.below((leo - start) as u64) as i64);
    }
    if log.size() > 384 << 10 {
        // Keep the log small so that each recovery stays quick.
        let retention_bytes = 192 << 10;
        log.set_config(LogConfig {
            retention_bytes,
            ..config(64 << 10)
        });
        log.set_high_watermark(leo);
        assert!(log.delete_old_segments(TS0).expect("retention") > 0);
        log.remove_deleted_segments(TS0 + 3_600_000).expect("rm");
        let start = log.log_start_offset();
        acked.retain(|first, _| *first >= start);
        stats.retention_passes += 1;
    }
    // Dropped without a clean close: the next child recovers it again.
}

#[test]
fn sigkill_during_appends_loses_no_acknowledged_batch() {
    let seed = std::env::var("RAFKA_CRASH_SEED").map_or(0xC0FFEE, |s| s.parse().expect("seed"));
    println!("RAFKA_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("crash-0");
    let started = Instant::now();
    let mut acked = Acked::new();
    let mut stats = Stats::default();
    for epoch in 1..=CYCLES as i32 {
        assert!(started.elapsed() < BUDGET, "over budget at {epoch}");
        let (mut ready, mut next) = (false, None);
        for l in run_child(&dir, epoch, &mut rng) {
            match l.split(' ').collect::<Vec<_>>()[..] {
                ["ready", leo] => {
                    ready = true;
                    next = Some(leo.parse::<i64>().expect("leo"));
                }
                ["acked", first, last, e] => {
                    let (first, last) = (first.parse().expect("n"), last.parse().expect("n"));
                    assert_eq!(Some(first), next, "acks are dense");
                    assert_eq!(e.parse::<i32>().expect("epoch"), epoch);
                    acked.insert(first, (last, epoch));
                    stats.acked += 1;
                    next = Some(last + 1);
                }
                _ => {}
            }
        }
        stats.killed_before_ready += u32::from(!ready);
        verify_after_kill(&dir, ready, &mut acked, &mut stats);
    }
    // The directory the kills left also opens as after a clean shutdown once flushed and closed.
    let mut log = open_unclean(&dir, 64 << 10);
    let leo = log.log_end_offset();
    log.flush(leo, TS0).expect("flush");
    log.close().expect("close");
    drop(log);
    let mut log = open_with(&dir, config(64 << 10), checkpoints(leo, true));
    assert_eq!(log.log_end_offset(), leo);
    assert!(read_all(&mut log).len() >= acked.len());
    let took = started.elapsed();
    println!("{CYCLES} SIGKILL cycles in {took:.1?}, offsets up to {leo}: {stats:?}");
    assert!(
        stats.acked > CYCLES as usize,
        "the children appended too little"
    );
}

/// Appends batches until the log has `segments` segments and a few batches in the last one.
fn build_log(dir: &Path, segment_bytes: u64, segments: usize) -> i64 {
    let mut log = open_unclean(dir, segment_bytes);
    let mut extra = 0;
    while log.number_of_segments() < segments || extra < 4 {
        extra += usize::from(log.number_of_segments() >= segments);
        let first = log.log_end_offset();
        log.append_as_leader(&batch_for(first), 1, TS0).expect("a");
    }
    log.log_end_offset()
}

#[test]
fn torn_or_corrupt_tail_is_truncated_at_recovery() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("tail-0");
    let seg = 8 << 10;
    build_log(&dir, seg, 3);
    let segs = scan_dir(&dir);
    let last_seg = segs.last().expect("segments");
    let last = *last_seg.batches.last().expect("a batch");
    let prev_last = last.base - 1;
    let path = seg_path(&dir, last_seg.base, ".log");
    let original = std::fs::read(&path).expect("read");
    // `Some(leo)`: the bad batch must be truncated; `None`: it may also be kept (see below).
    let reopen_expecting = |data: &[u8], leo: Option<i64>, what: &str| {
        std::fs::write(&path, data).expect("write");
        let mut log = open_unclean(&dir, seg);
        let len = std::fs::metadata(&path).expect("stat").len();
        if let Some(leo) = leo {
            assert_eq!(log.log_end_offset(), leo, "{what}");
            assert_eq!(len, last.pos, "{what}: the file ends before the bad batch");
        } else if ![last.base, last.last + 1].contains(&log.log_end_offset()) {
            // Kept at another base offset: whole, but its records are not where written.
            assert_eq!(len, last.pos + last.size, "{what}: kept whole");
            let f = log.read(prev_last + 1, 1 << 20, i64::MAX, true);
            let f = f.expect(what);
            assert_eq!(f.len() as u64, last.size, "{what}");
            return;
        }
        let got = read_all(&mut log);
        let kept_before = got.iter().all(|b| b.1 <= prev_last);
        assert!(leo.is_none() || kept_before, "{what}");
        check_indexes(
            &dir,
            scan_dir(&dir).last().expect("segment"),
            Indexes::Rebuilt,
        );
    };
    // Torn: the last batch cut at every byte.
    for cut in last.pos..last.pos + last.size {
        let what = format!("cut at {cut}");
        reopen_expecting(&original[..cut as usize], Some(last.base), &what);
    }
    // Corrupt: every byte of the last batch flipped. baseOffset and partitionLeaderEpoch are
    // outside the CRC (Kafka's format): an epoch flip goes unnoticed, and a base offset flip is
    // caught only when it goes backwards or out of the segment's range; otherwise the batch is
    // kept whole at its new offset, leaving a gap, as in Kafka.
    let (mut flips, mut unprotected) = (0, 0);
    for rel in 0..last.size as usize {
        for mask in [0x01u8, 0xFF] {
            let mut data = original.clone();
            data[last.pos as usize + rel] ^= mask;
            let at = last.pos as usize;
            let base = i64::from_be_bytes(data[at..at + 8].try_into().expect("8"));
            let new_last = base.wrapping_add(last.last - last.base);
            let fits = base > prev_last
                && new_last >= base
                && new_last - last_seg.base <= i64::from(i32::MAX);
            let may_keep = (rel < 8 && fits) || (12..16).contains(&rel);
            unprotected += u32::from(may_keep);
            let what = format!("byte {rel} of the last batch ^ {mask:#x}");
            reopen_expecting(&data, (!may_keep).then_some(last.base), &what);
            flips += 1;
        }
    }
    // A base offset going backwards (it overlaps the batch before) must be truncated too.
    for base in [prev_last, prev_last - 1, last_seg.base] {
        let mut data = original.clone();
        let at = last.pos as usize;
        data[at..at + 8].copy_from_slice(&base.to_be_bytes());
        let what = format!("base offset {base} after {prev_last}");
        reopen_expecting(&data, Some(last.base), &what);
    }
    // Appends continue right after the truncation point.
    let mut data = original.clone();
    data[last.pos as usize + 30] ^= 0x10;
    std::fs::write(&path, &data).expect("write");
    let mut log = open_unclean(&dir, seg);
    let info = log.append_as_leader(&batch_for(last.base), 2, TS0);
    let info = info.expect("append");
    assert_eq!(info.first_offset, last.base);
    assert_eq!(read_all(&mut log).last().map(|b| b.2), Some(2));
    drop(log);
    // A corrupt batch in the middle of the first segment: it and everything after it go.
    let first_seg = &segs[0];
    let victim = first_seg.batches[first_seg.batches.len() / 2];
    let path0 = seg_path(&dir, first_seg.base, ".log");
    let mut data = std::fs::read(&path0).expect("read");
    data[(victim.pos + victim.size - 1) as usize] ^= 0x80;
    std::fs::write(&path0, &data).expect("write");
    let mut log = open_unclean(&dir, seg);
    assert_eq!(log.log_end_offset(), victim.base);
    assert_eq!(segment_bases(&dir), [first_seg.base], "later segments go");
    for s in scan_dir(&dir) {
        assert_eq!(s.valid, s.len);
        check_indexes(&dir, &s, Indexes::Rebuilt);
    }
    let info = log.append_as_leader(&batch_for(victim.base), 3, TS0);
    let info = info.expect("append");
    assert_eq!(info.first_offset, victim.base);
    read_all(&mut log);
    let cuts = last.size;
    println!("{cuts} cuts and {flips} flips ({unprotected} outside the CRC)");
}

#[derive(Debug, Clone, Copy)]
enum Mangle {
    Delete,
    /// Not a whole number of entries.
    CutOddBytes,
    /// Half the entries gone.
    Halve,
    Zeros,
    Junk,
}

/// Builds a log of 5 segments, closes it cleanly, then for each scenario restores its index
/// files, damages them, reopens (clean or not) and checks every lookup and the rebuilt indexes.
fn reopen_with_damaged_indexes(scenarios: &[(Mangle, bool)]) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("index-0");
    let seg = 8 << 10;
    let leo = build_log(&dir, seg, 5);
    let mut log = open_unclean(&dir, seg);
    log.flush(leo, TS0).expect("flush");
    log.close().expect("close");
    drop(log);
    let pristine: Vec<(PathBuf, Vec<u8>)> = segment_bases(&dir)
        .into_iter()
        .flat_map(|b| [seg_path(&dir, b, ".index"), seg_path(&dir, b, ".timeindex")])
        .map(|p| (p.clone(), std::fs::read(p).expect("index file")))
        .collect();
    let mut rng = Rng(7);
    for &(how, clean) in scenarios {
        for (path, data) in &pristine {
            let width = if path.extension().unwrap_or_default() == "index" {
                8
            } else {
                12
            };
            let entries = data.len() / width;
            let new = match how {
                Mangle::Delete => None,
                Mangle::CutOddBytes => Some(data[..data.len().saturating_sub(3)].to_vec()),
                Mangle::Halve => Some(data[..entries / 2 * width].to_vec()),
                Mangle::Zeros => Some(vec![0; 2048 / width * width]),
                Mangle::Junk => Some(junk(&mut rng, entries.max(4) * width)),
            };
            match new {
                Some(new) => std::fs::write(path, new).expect("write"),
                None => std::fs::remove_file(path).expect("remove"),
            }
        }
        let what = format!("{how:?}, clean shutdown: {clean}");
        let tp = TopicPartition::new("crash", 0);
        let ckpt = checkpoints(if clean { leo } else { 0 }, clean);
        let log = UnifiedLog::open(Arc::new(DiskFs), &dir, tp, config(seg), ckpt, TS0);
        let mut log = log.unwrap_or_else(|e| panic!("{what}: open: {e}"));
        assert_eq!(log.log_end_offset(), leo, "{what}");
        for (base, last, _) in read_all(&mut log) {
            for o in base..=last {
                check_lookup(&mut log, o);
            }
        }
        for s in scan_dir(&dir) {
            check_indexes(
                &dir,
                &s,
                if clean {
                    Indexes::Written
                } else {
                    Indexes::Rebuilt
                },
            );
        }
    }
}

#[test]
fn deleted_zeroed_or_junk_indexes_are_rebuilt() {
    // Not here: a clean shutdown with indexes whose entries are valid but too few, or junk that
    // passes the sanity checks, is trusted, as in Kafka.
    reopen_with_damaged_indexes(&[
        (Mangle::Delete, true),
        (Mangle::Zeros, true),
        (Mangle::Delete, false),
        (Mangle::Zeros, false),
        (Mangle::Junk, false),
    ]);
}

/// Recovery must make room for the entries it rebuilds: a (trimmed) index file may be shorter
/// than them. Kafka's `LogSegment.recover` resets each index (`reset()`: truncate, then
/// `resize(maxIndexSize)`) and trims it at the end.
#[test]
fn indexes_shorter_than_their_rebuilt_entries_are_rebuilt() {
    reopen_with_damaged_indexes(&[
        (Mangle::CutOddBytes, true),
        (Mangle::CutOddBytes, false),
        (Mangle::Halve, false),
    ]);
}

/// `index.interval.bytes` lowered between runs, then a crash: recovery builds denser indexes
/// than the files (trimmed when their segments rolled) hold.
#[test]
fn recovery_after_lowering_index_interval_bytes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("interval-0");
    let leo = build_log(&dir, 8 << 10, 3);
    let index_interval_bytes = 64;
    let denser = LogConfig {
        index_interval_bytes,
        ..config(8 << 10)
    };
    let mut log = open_with(&dir, denser, checkpoints(0, false));
    assert_eq!(log.log_end_offset(), leo);
    for (base, last, _) in read_all(&mut log) {
        check_lookup(&mut log, base);
        check_lookup(&mut log, last);
    }
    for s in scan_dir(&dir) {
        let idx = index_entries(&seg_path(&dir, s.base, ".index"), 8).len();
        assert_eq!(
            idx,
            expected_index(&s.batches, 64).len(),
            "segment {}",
            s.base
        );
    }
}

/// A segment larger than what recovery reads at once (1 MiB): batches straddling the edges of
/// its reads are read whole and checked, and a torn last batch several reads in is cut.
#[test]
fn recovery_reads_a_segment_larger_than_one_read() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("big-0");
    let cfg = LogConfig {
        segment_bytes: 4 << 20,
        segment_index_bytes: 1 << 20,
        index_interval_bytes: INTERVAL,
        retention_ms: -1,
        ..LogConfig::default()
    };
    let mut log = open_with(&dir, cfg.clone(), checkpoints(0, false));
    while log.size() < 3 << 20 {
        let first = log.log_end_offset();
        log.append_as_leader(&batch_for(first), 1, TS0).expect("a");
    }
    drop(log);
    let segs = scan_dir(&dir);
    assert_eq!(segs.len(), 1, "one segment");
    let batches = &segs[0].batches;
    let last = *batches.last().expect("a batch");
    let path = seg_path(&dir, 0, ".log");
    let data = std::fs::read(&path).expect("read");
    std::fs::write(&path, &data[..(last.pos + last.size / 2) as usize]).expect("cut");
    let mut log = open_with(&dir, cfg, checkpoints(0, false));
    assert_eq!(log.log_end_offset(), last.base);
    let got = read_all(&mut log);
    assert_eq!(got.len(), batches.len() - 1);
    assert_eq!(std::fs::metadata(&path).expect("stat").len(), last.pos);
    check_indexes(&dir, &scan_dir(&dir)[0], Indexes::Rebuilt);
}
