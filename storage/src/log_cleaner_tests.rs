#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::config::{CleanupPolicy, LogConfig};
use crate::fs::DiskFs;
use crate::log_segment::file_name;
use crate::unified_log::{LogCheckpoints, UnifiedLog};
use rafka_protocol::record_batch::{Compression, RecordBatchBuilder};
use std::sync::Mutex;

fn tp() -> TopicPartition {
    TopicPartition::new("c", 0)
}

fn compact_config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        cleanup_policy: CleanupPolicy::COMPACT,
        min_cleanable_dirty_ratio: 0.0,
        delete_retention_ms: 1000,
        ..LogConfig::default()
    }
}

fn fs() -> Arc<dyn FileSystem> {
    Arc::new(DiskFs)
}

fn open(dir: &Path, config: LogConfig, clean_shutdown: bool) -> UnifiedLog {
    UnifiedLog::open(
        fs(),
        dir,
        tp(),
        config,
        LogCheckpoints {
            clean_shutdown,
            recovery_point: 0,
            ..Default::default()
        },
        0,
    )
    .unwrap()
}

/// One batch of `(key, value)` records at `timestamp`, compressed with `codec`.
fn batch(codec: Compression, timestamp: i64, records: &[(&str, Option<&str>)]) -> Bytes {
    let mut b = RecordBatchBuilder::new(0);
    for (k, v) in records {
        b.append(timestamp, Some(k.as_bytes()), v.map(str::as_bytes), &[])
            .unwrap();
    }
    let plain = b.build();
    if codec == Compression::None {
        return plain;
    }
    let payload = compression::compress(codec, &plain[RECORD_BATCH_OVERHEAD..]).unwrap();
    let mut out = plain[..RECORD_BATCH_OVERHEAD].to_vec();
    out.extend_from_slice(&payload);
    let attributes = i16::from(codec.id());
    let count = i32::from_be_bytes(
        out[RECORDS_COUNT_OFFSET..RECORDS_COUNT_OFFSET + 4]
            .try_into()
            .unwrap(),
    );
    let (base, max) = (
        i64::from_be_bytes(
            out[BASE_TIMESTAMP_OFFSET..BASE_TIMESTAMP_OFFSET + 8]
                .try_into()
                .unwrap(),
        ),
        i64::from_be_bytes(
            out[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8]
                .try_into()
                .unwrap(),
        ),
    );
    finish_header(&mut out, attributes, base, max, count);
    Bytes::from(out)
}

fn put(log: &mut UnifiedLog, codec: Compression, ts: i64, records: &[(&str, Option<&str>)]) {
    log.append_as_leader(&batch(codec, ts, records), 0, ts)
        .unwrap();
    let leo = log.log_end_offset();
    log.set_high_watermark(leo);
}

/// A stored record: offset, key, value, timestamp.
type Stored = (i64, String, Option<String>, i64);

/// Every batch and record of the log, from its start, checking each batch's CRC and that
/// offsets strictly increase.
fn read_all(log: &mut UnifiedLog) -> (Vec<RecordBatch>, Vec<Stored>) {
    let end = log.log_end_offset();
    let mut next = log.log_start_offset();
    let (mut batches, mut records) = (Vec::new(), Vec::new());
    let mut last = -1;
    while next < end {
        let info = log.read(next, 1 << 20, end, true).unwrap();
        let Some(slice) = info.slice else { break };
        for b in RecordBatch::batches(Bytes::from(slice.read_to_vec().unwrap())) {
            let b = b.unwrap();
            b.ensure_valid().unwrap();
            assert!(b.base_offset() > last, "batches in offset order");
            for r in records_of(&b, 1 << 30, Path::new("/")).unwrap() {
                let r = r.unwrap();
                let offset = r.offset(&b);
                assert!(offset > last, "offsets strictly increase");
                assert!(offset <= b.last_offset());
                last = offset;
                records.push((
                    offset,
                    String::from_utf8(r.key.clone().unwrap().to_vec()).unwrap(),
                    r.value
                        .as_ref()
                        .map(|v| String::from_utf8(v.to_vec()).unwrap()),
                    r.timestamp(&b),
                ));
            }
            last = last.max(b.last_offset());
            next = b.last_offset() + 1;
            batches.push(b);
        }
    }
    (batches, records)
}

fn shared(log: UnifiedLog) -> SharedLog {
    Arc::new(Mutex::new(log))
}

fn clean(
    cleaner: &mut LogCleaner,
    log: &SharedLog,
    checkpoint: Option<i64>,
    now: i64,
) -> Option<(i64, CleanStats)> {
    cleaner.clean_log(&tp(), log, checkpoint, now).unwrap()
}

fn active_bytes(log: &SharedLog) -> Vec<u8> {
    let log = lock_log(log);
    let base = *log.segment_base_offsets().last().unwrap();
    std::fs::read(log.dir().join(file_name(base, ".log"))).unwrap()
}

/// The latest value of each key, as a model of what compaction must keep.
fn latest(records: &[Stored]) -> BTreeMap<String, (i64, Option<String>)> {
    records
        .iter()
        .map(|(o, k, v, _)| (k.clone(), (*o, v.clone())))
        .collect()
}

use std::collections::BTreeMap;

#[test]
fn compaction_keeps_the_latest_record_per_key_at_its_offset_and_leaves_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compact_config(2048), true);
    for i in 0..400 {
        let (k, v) = (format!("k{}", i % 10), format!("v{i}"));
        put(&mut log, Compression::None, i, &[(&k, Some(&v))]);
    }
    let (_, before) = read_all(&mut log);
    let model = latest(&before);
    assert!(log.number_of_segments() > 5);
    let log = shared(log);
    let active = active_bytes(&log);
    let active_base = *lock_log(&log).segment_base_offsets().last().unwrap();
    let (checkpoint, stats) = clean(&mut LogCleaner::new(fs(), 1 << 20), &log, None, 1000).unwrap();
    assert_eq!(
        checkpoint, active_base,
        "everything below the active segment is clean"
    );
    assert!(stats.records_kept < stats.records_read);
    assert_eq!(
        active_bytes(&log),
        active,
        "the active segment is untouched"
    );
    let mut l = lock_log(&log);
    let (_, after) = read_all(&mut l);
    // Below the active segment: one record per key, the latest.
    let cleaned: Vec<&Stored> = after.iter().filter(|r| r.0 < active_base).collect();
    let keys: std::collections::BTreeSet<&String> = cleaned.iter().map(|r| &r.1).collect();
    assert_eq!(keys.len(), cleaned.len(), "one record per key: {cleaned:?}");
    assert_eq!(
        latest(&after),
        model,
        "every key keeps its latest value and offset"
    );
    // Each kept record is the very record it was: same offset, value and timestamp.
    for r in &after {
        assert!(before.contains(r), "{r:?} was written as it is read");
    }
    assert_eq!(l.log_end_offset(), 400);
    drop(l);
    // After an unclean shutdown every segment is rescanned: the holes are no torn tail.
    let dir_path = lock_log(&log).dir().to_path_buf();
    drop(log);
    let mut reopened = open(&dir_path, compact_config(2048), false);
    assert_eq!(reopened.log_end_offset(), 400);
    assert_eq!(read_all(&mut reopened).1, after);
}

#[test]
fn a_second_clean_without_new_data_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compact_config(1024), true);
    for i in 0..200 {
        put(
            &mut log,
            Compression::None,
            i,
            &[(&format!("k{}", i % 3), Some("v"))],
        );
    }
    let log = shared(log);
    let mut cleaner = LogCleaner::new(fs(), 1 << 20);
    let (cp, _) = clean(&mut cleaner, &log, None, 1000).unwrap();
    let many = lock_log(&log).segment_base_offsets().len();
    // Forced again (dirty ratio 0, from the log start): the small cleaned segments are merged
    // into groups of up to segment.bytes ...
    clean(&mut cleaner, &log, Some(0), 1000).unwrap();
    let bases = lock_log(&log).segment_base_offsets();
    assert!(bases.len() < many, "{bases:?}");
    // ... and then there is nothing left to do.
    let again = clean(&mut cleaner, &log, Some(0), 1000);
    assert_eq!(again.map(|(c, s)| (c, s.segments_cleaned)), Some((cp, 0)));
    assert_eq!(lock_log(&log).segment_base_offsets(), bases);
}

#[test]
fn compressed_batches_are_compacted_and_recompressed_with_their_codec() {
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), compact_config(4096), true);
        for i in 0..60 {
            let recs: Vec<(String, String)> = (0..10)
                .map(|j| (format!("k{}", (i * 10 + j) % 7), format!("v{i}-{j}")))
                .collect();
            let recs: Vec<(&str, Option<&str>)> = recs
                .iter()
                .map(|(k, v)| (k.as_str(), Some(v.as_str())))
                .collect();
            put(&mut log, codec, i, &recs);
        }
        log.roll(100).unwrap();
        put(&mut log, codec, 100, &[("other", Some("x"))]);
        let (_, before) = read_all(&mut log);
        let log = shared(log);
        let (_, stats) = clean(&mut LogCleaner::new(fs(), 1 << 20), &log, None, 1000).unwrap();
        assert!(stats.records_kept <= 7 + 60, "{codec}: {stats:?}");
        let mut l = lock_log(&log);
        let (batches, after) = read_all(&mut l);
        assert_eq!(latest(&after), latest(&before), "{codec}");
        assert!(after.len() <= 8, "{codec}: {after:?}");
        for b in batches.iter().filter(|b| b.record_count() > 0) {
            assert_eq!(b.compression().unwrap(), codec, "the batch keeps its codec");
        }
    }
}

#[test]
fn tombstones_stay_until_delete_retention_has_passed_since_their_first_clean() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compact_config(1 << 20), true);
    put(
        &mut log,
        Compression::None,
        10,
        &[("a", Some("1")), ("b", Some("1"))],
    );
    put(&mut log, Compression::None, 20, &[("a", None)]);
    log.roll(20).unwrap();
    put(&mut log, Compression::None, 30, &[("c", Some("1"))]);
    let log = shared(log);
    let mut cleaner = LogCleaner::new(fs(), 1 << 20);
    // First clean at t=1000: "a"'s value goes, its tombstone stays, stamped 1000 + 1000.
    let (cp, _) = clean(&mut cleaner, &log, None, 1000).unwrap();
    let (batches, after) = read_all(&mut lock_log(&log));
    let tomb = after.iter().find(|r| r.1 == "a").unwrap();
    assert_eq!(
        (tomb.0, &tomb.2, tomb.3),
        (2, &None, 20),
        "tombstone kept, timestamp as written"
    );
    let stamped = batches.iter().find(|b| b.last_offset() == 2).unwrap();
    assert_eq!(stamped.delete_horizon_ms(), Some(2000));
    // Before the horizon nothing is due.
    assert!(clean(&mut cleaner, &log, Some(cp), 1999).is_none());
    // A clean before the horizon (new dirty data) keeps the tombstone.
    {
        let mut l = lock_log(&log);
        l.roll(40).unwrap();
        put(&mut l, Compression::None, 40, &[("d", Some("1"))]);
    }
    let (cp, _) = clean(&mut cleaner, &log, Some(cp), 1500).unwrap();
    let (_, after) = read_all(&mut lock_log(&log));
    assert!(
        after.iter().any(|r| r.1 == "a" && r.2.is_none()),
        "{after:?}"
    );
    // After it the log is cleaned again though nothing is dirty, and the tombstone goes.
    let (_, stats) = clean(&mut cleaner, &log, Some(cp), 2000).unwrap();
    assert_eq!(stats.tombstones_dropped, 1);
    let (_, after) = read_all(&mut lock_log(&log));
    assert!(after.iter().all(|r| r.1 != "a"), "{after:?}");
    assert!(after.iter().any(|r| r.1 == "b") && after.iter().any(|r| r.1 == "c"));
    assert_eq!(lock_log(&log).log_end_offset(), 5);
}

#[test]
fn min_compaction_lag_keeps_young_segments_dirty_and_the_dirty_ratio_gates_cleaning() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        min_compaction_lag_ms: 500,
        ..compact_config(1 << 20)
    };
    let mut log = open(dir.path(), config, true);
    for i in 0..20 {
        put(&mut log, Compression::None, 1000 + i, &[("k", Some("v"))]);
    }
    log.roll(1020).unwrap();
    put(&mut log, Compression::None, 1020, &[("k", Some("v"))]);
    let log = shared(log);
    let mut cleaner = LogCleaner::new(fs(), 1 << 20);
    assert!(
        clean(&mut cleaner, &log, None, 1100).is_none(),
        "younger than the lag"
    );
    let (_, stats) = clean(&mut cleaner, &log, None, 1600).unwrap();
    assert_eq!(stats.records_kept, 1);
    // The dirty ratio: with half the log dirty, a ratio of 0.9 waits.
    let view = lock_log(&log).cleanable_view().unwrap();
    let mut strict = view.clone();
    strict.config.min_cleanable_dirty_ratio = 0.9;
    strict.config.min_compaction_lag_ms = 0;
    let half = strict.segments[0].end_offset;
    assert!(plan_clean(&strict, Some(half), 2000, false).is_none());
    let _ = half;
}

#[test]
fn the_dirty_ratio_counts_bytes_past_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compact_config(1 << 20), true);
    for seg in 0..4 {
        for i in 0..10 {
            put(
                &mut log,
                Compression::None,
                seg * 10 + i,
                &[("k", Some("v"))],
            );
        }
        log.roll(0).unwrap();
    }
    let mut view = lock_log(&shared(log)).cleanable_view().unwrap();
    assert_eq!(view.segments.len(), 4);
    let third = view.segments[2].base_offset;
    view.config.min_cleanable_dirty_ratio = 0.5;
    let plan = plan_clean(&view, Some(third), 0, false).unwrap();
    assert_eq!((plan.first_dirty, plan.cleanable), (third, 4));
    assert!((plan.dirty_ratio - 0.5).abs() < 1e-9);
    view.config.min_cleanable_dirty_ratio = 0.51;
    assert!(plan_clean(&view, Some(third), 0, false).is_none());
    // The high watermark bounds what may be cleaned: segments above it are not cleanable.
    view.high_watermark = view.segments[1].end_offset;
    view.config.min_cleanable_dirty_ratio = 0.0;
    assert_eq!(plan_clean(&view, None, 0, false).unwrap().cleanable, 2);
}

#[test]
fn a_truncation_during_a_clean_abandons_the_swap() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compact_config(1024), true);
    for i in 0..100 {
        put(&mut log, Compression::None, i, &[("k", Some("v"))]);
    }
    let log = shared(log);
    let view = lock_log(&log).cleanable_view().unwrap();
    let cleaner = LogCleaner::new(fs(), 1 << 20);
    let mut map = OffsetMap::new(1 << 20);
    let no_txns = || TxnTracker::new(&[], 0);
    for s in &view.segments {
        map_segment(&view, s, 0, &mut map, &mut no_txns()).unwrap();
    }
    let retention = Retention {
        map: &map,
        now_ms: 0,
        delete_retention_ms: 0,
        decompression_limit: 1 << 30,
        dir: &view.dir,
    };
    let group: Vec<&InactiveSegment> = view.segments.iter().take(1).collect();
    let (mut stats, mut h) = (CleanStats::default(), None);
    let cleaned = cleaner
        .clean_group(
            &view,
            &group,
            &retention,
            &mut no_txns(),
            &mut stats,
            &mut h,
        )
        .unwrap()
        .unwrap();
    let cleaned_path = dir
        .path()
        .join(file_name(group[0].base_offset, ".log.cleaned"));
    assert!(cleaned_path.exists());
    lock_log(&log).truncate_to(50, 0).unwrap();
    let old = [(group[0].base_offset, group[0].size)];
    assert!(!lock_log(&log)
        .replace_segments(cleaned, &old, view.truncations, 0)
        .unwrap());
    assert!(!cleaned_path.exists(), "the abandoned copy is removed");
    assert_eq!(read_all(&mut lock_log(&log)).1.len(), 50);
}

/// A log of two segments of superseded records and an active one, and the first segment's
/// cleaned copy left as `<base>.log.cleaned`.
fn log_with_cleaned_copy(dir: &Path) -> (SharedLog, LogSegment, Vec<Stored>) {
    let mut log = open(dir, compact_config(1024), true);
    for i in 0..60 {
        put(
            &mut log,
            Compression::None,
            i,
            &[(&format!("k{}", i % 2), Some("v"))],
        );
    }
    let (_, before) = read_all(&mut log);
    let log = shared(log);
    let view = lock_log(&log).cleanable_view().unwrap();
    let mut map = OffsetMap::new(1 << 20);
    let no_txns = || TxnTracker::new(&[], 0);
    for s in &view.segments {
        map_segment(&view, s, 0, &mut map, &mut no_txns()).unwrap();
    }
    let retention = Retention {
        map: &map,
        now_ms: 0,
        delete_retention_ms: 0,
        decompression_limit: 1 << 30,
        dir: &view.dir,
    };
    let group: Vec<&InactiveSegment> = view.segments.iter().take(2).collect();
    let (mut stats, mut h) = (CleanStats::default(), None);
    let cleaned = LogCleaner::new(fs(), 1 << 20)
        .clean_group(
            &view,
            &group,
            &retention,
            &mut no_txns(),
            &mut stats,
            &mut h,
        )
        .unwrap()
        .unwrap();
    (log, cleaned, before)
}

#[test]
fn a_crash_before_the_swap_leaves_the_log_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let (log, cleaned, before) = log_with_cleaned_copy(dir.path());
    let bases = lock_log(&log).segment_base_offsets();
    drop((log, cleaned)); // the crash: the .cleaned files stay
    assert!(dir.path().join(file_name(0, ".log.cleaned")).exists());
    let mut log = open(dir.path(), compact_config(1024), false);
    assert!(!dir.path().join(file_name(0, ".log.cleaned")).exists());
    assert_eq!(log.segment_base_offsets(), bases);
    assert_eq!(read_all(&mut log).1, before);
}

#[test]
fn a_crash_during_the_swap_is_completed_at_the_next_open() {
    for renamed_old in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (log, mut cleaned, before) = log_with_cleaned_copy(dir.path());
        let bases = lock_log(&log).segment_base_offsets();
        cleaned.change_suffix(SWAP_SUFFIX).unwrap();
        if renamed_old {
            // The crash came after the first old segment went `.deleted`.
            let p = dir.path().join(file_name(bases[0], ".log"));
            std::fs::rename(&p, dir.path().join(file_name(bases[0], ".log.deleted"))).unwrap();
        }
        drop((log, cleaned));
        let mut log = open(dir.path(), compact_config(1024), false);
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names
                .iter()
                .all(|n| !n.ends_with(".swap") && !n.ends_with(".deleted")),
            "{names:?}"
        );
        // The two old segments became one; the rest is as it was.
        let now = log.segment_base_offsets();
        assert_eq!(now[0], bases[0]);
        assert_eq!(&now[1..], &bases[2..], "renamed_old={renamed_old}");
        let (_, after) = read_all(&mut log);
        assert_eq!(latest(&after), latest(&before));
        assert!(after.len() < before.len());
        assert_eq!(log.log_end_offset(), 60);
    }
}

#[test]
fn compact_alone_keeps_old_segments_and_compact_delete_applies_retention() {
    for (policy, deleted) in [
        (CleanupPolicy::COMPACT, false),
        (CleanupPolicy::parse("compact,delete"), true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            retention_ms: 10,
            cleanup_policy: policy,
            ..compact_config(512)
        };
        let mut log = open(dir.path(), config, true);
        for i in 0..50 {
            put(&mut log, Compression::None, i, &[("k", Some("v"))]);
        }
        let n = log.delete_old_segments(10_000).unwrap();
        assert_eq!(n > 0, deleted, "{policy:?}");
    }
}

#[test]
fn the_offset_map_stops_at_a_segment_boundary_when_full() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compact_config(1024), true);
    for i in 0..300 {
        put(
            &mut log,
            Compression::None,
            i,
            &[(&format!("key-{i}"), Some("v"))],
        );
    }
    let log = shared(log);
    let first_end = lock_log(&log).cleanable_view().unwrap().segments[0].end_offset;
    // Room for a few keys only: one segment is mapped, and the checkpoint stops after it.
    let (cp, _) = clean(&mut LogCleaner::new(fs(), 100), &log, None, 0).unwrap();
    assert_eq!(cp, first_end);
}

#[test]
fn the_last_batch_of_an_active_producer_is_kept_empty_so_its_state_can_be_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compact_config(1024), true);
    // Producer 7 writes key k twice (sequences 0 and 1), then plain writes supersede k.
    for seq in 0..2 {
        let mut b = RecordBatchBuilder::new(0).producer(7, 3, seq);
        b.append(i64::from(seq), Some(b"k"), Some(b"idempotent"), &[])
            .unwrap();
        log.append_as_leader(&b.build(), 0, 0).unwrap();
    }
    for i in 0..100 {
        put(&mut log, Compression::None, i, &[("k", Some("plain"))]);
    }
    assert!(log.number_of_segments() > 3);
    let log = shared(log);
    clean(&mut LogCleaner::new(fs(), 1 << 20), &log, None, 1000).unwrap();
    let mut l = lock_log(&log);
    let (batches, records) = read_all(&mut l);
    // No record of producer 7 is left, but its last batch is, empty, at its offsets.
    assert!(records.iter().all(|r| r.2.as_deref() == Some("plain")));
    let kept: Vec<&RecordBatch> = batches.iter().filter(|b| b.producer_id() == 7).collect();
    assert_eq!(kept.len(), 1, "only the producer's last batch");
    assert_eq!(
        (
            kept[0].base_offset(),
            kept[0].last_offset(),
            kept[0].record_count()
        ),
        (1, 1, 0)
    );
    assert_eq!((kept[0].producer_epoch(), kept[0].base_sequence()), (3, 1));
    let dir_path = l.dir().to_path_buf();
    drop(l);
    drop(log);
    // Without any snapshot, the state comes back from that batch.
    for e in std::fs::read_dir(&dir_path).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "snapshot") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let reopened = open(&dir_path, compact_config(1024), false);
    let e = reopened
        .producer_state()
        .entry(7)
        .expect("producer 7 rebuilt");
    assert_eq!((e.producer_epoch, e.last_seq(), e.last_offset()), (3, 1, 1));
}

/// Writes 200 keyed gzip batches (10 keys) to `tp`'s log through the manager; every segment
/// but the active one is then cleanable (high watermark at the log end).
fn fill_compacted(lm: &crate::LogManager, tp: &TopicPartition) -> SharedLog {
    let log = lm.get_or_create_log(tp, compact_config(2048), 0).unwrap();
    let mut l = lock_log(&log);
    for i in 0..200 {
        let (k, v) = (format!("k{}", i % 10), format!("v{i}"));
        put(&mut l, Compression::Gzip, i, &[(&k, Some(&v))]);
    }
    assert!(l.number_of_segments() > 3);
    drop(l);
    log
}

/// Overwrites the compressed payload of the first batch of `log`'s first segment with
/// garbage (its header, CRC included, stays as it was): what a bad disk sector or a buggy
/// writer leaves behind, found only when the cleaner decompresses it.
fn corrupt_first_batch_payload(log: &SharedLog) {
    use std::os::unix::fs::FileExt;
    let l = lock_log(log);
    let base = l.segment_base_offsets()[0];
    let path = l.dir().join(file_name(base, ".log"));
    drop(l);
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(&[0xAB; 16], RECORD_BATCH_OVERHEAD as u64)
        .unwrap();
}

#[test]
fn a_partition_that_fails_to_clean_is_set_aside_and_the_others_keep_compacting() {
    let dir = tempfile::tempdir().unwrap();
    let lm = crate::LogManager::open(
        fs(),
        &[dir.path().to_path_buf()],
        &|_| compact_config(2048),
        0,
    )
    .unwrap();
    // "b" sorts between the others: the pass meets the bad log in the middle.
    let (a, b, c) = (
        TopicPartition::new("a", 0),
        TopicPartition::new("b", 0),
        TopicPartition::new("c", 0),
    );
    let (la, lb, lc) = (
        fill_compacted(&lm, &a),
        fill_compacted(&lm, &b),
        fill_compacted(&lm, &c),
    );
    corrupt_first_batch_payload(&lb);
    let b_before = std::fs::read(lock_log(&lb).dir().join(file_name(0, ".log"))).unwrap();

    let stats = lm
        .clean_logs(1000)
        .expect("one bad partition is no error of the pass");
    assert_eq!(lm.uncleanable_partitions(), vec![b.clone()]);
    // a and c were both cleaned: one record per key below their active segments.
    assert!(stats.segments_cleaned >= 6, "{stats:?}");
    for log in [&la, &lc] {
        let mut l = lock_log(log);
        let active = *l.segment_base_offsets().last().unwrap();
        let (_, records) = read_all(&mut l);
        let cleaned = records.iter().filter(|r| r.0 < active).count();
        assert!(
            cleaned <= 10,
            "{cleaned} records left below the active segment"
        );
    }
    // b is as it was: nothing swapped in, nothing left behind.
    assert_eq!(
        std::fs::read(lock_log(&lb).dir().join(file_name(0, ".log"))).unwrap(),
        b_before
    );
    let leftovers: Vec<_> = std::fs::read_dir(lock_log(&lb).dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(CLEANED_SUFFIX))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // New data in a: cleaned again; b stays set aside.
    {
        let mut l = lock_log(&la);
        for i in 200..300 {
            put(
                &mut l,
                Compression::Gzip,
                i,
                &[(&format!("k{}", i % 10), Some("w"))],
            );
        }
    }
    let stats = lm.clean_logs(2000).unwrap();
    assert!(stats.segments_cleaned > 0, "{stats:?}");
    assert_eq!(lm.uncleanable_partitions(), vec![b.clone()]);

    // Deleted and re-created (a new log): cleaned again.
    drop(lb);
    assert!(lm.delete_log(&b).unwrap());
    let lb = fill_compacted(&lm, &b);
    lm.clean_logs(3000).unwrap();
    assert!(lm.uncleanable_partitions().is_empty());
    let mut l = lock_log(&lb);
    let active = *l.segment_base_offsets().last().unwrap();
    let (_, records) = read_all(&mut l);
    assert!(records.iter().filter(|r| r.0 < active).count() <= 10);
}

/// A transactional batch of producer `pid` (epoch 0, sequence `seq`) with `(key, value)`s.
fn txn_batch(pid: i64, seq: i32, ts: i64, records: &[(&str, &str)]) -> Bytes {
    let mut b = RecordBatchBuilder::new(0)
        .producer(pid, 0, seq)
        .transactional(true);
    for (k, v) in records {
        b.append(ts, Some(k.as_bytes()), Some(v.as_bytes()), &[])
            .unwrap();
    }
    b.build()
}

fn txn_put(log: &mut UnifiedLog, pid: i64, seq: i32, ts: i64, records: &[(&str, &str)]) {
    log.append_as_leader(&txn_batch(pid, seq, ts, records), 0, ts)
        .unwrap();
}

fn txn_end(log: &mut UnifiedLog, pid: i64, commit: bool, ts: i64) {
    let marker = EndTransactionMarker {
        control_type: if commit {
            ControlRecordType::Commit
        } else {
            ControlRecordType::Abort
        },
        coordinator_epoch: 0,
    };
    log.append_end_txn_marker(pid, 0, &marker, 0, ts).unwrap();
    let leo = log.log_end_offset();
    log.set_high_watermark(leo);
}

/// Each control batch's (offset, producer id, record count, delete horizon).
fn markers(batches: &[RecordBatch]) -> Vec<(i64, i64, i32, Option<i64>)> {
    batches
        .iter()
        .filter(|b| b.is_control())
        .map(|b| {
            (
                b.base_offset(),
                b.producer_id(),
                b.record_count(),
                b.delete_horizon_ms(),
            )
        })
        .collect()
}

#[test]
fn aborted_data_is_removed_and_markers_go_after_delete_retention_once_their_data_has() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compact_config(1 << 20), true);
    // 0: k=old. 1-2: producer 1's transaction (k, x), aborted at 3. 4: producer 2's (y),
    // committed at 5. 6: producer 1's next (q), committed at 7. Then an active segment.
    put(&mut log, Compression::None, 10, &[("k", Some("old"))]);
    txn_put(&mut log, 1, 0, 10, &[("k", "aborted"), ("x", "aborted")]);
    txn_end(&mut log, 1, false, 10);
    txn_put(&mut log, 2, 0, 10, &[("y", "committed")]);
    txn_end(&mut log, 2, true, 10);
    txn_put(&mut log, 1, 2, 10, &[("q", "later")]);
    txn_end(&mut log, 1, true, 10);
    log.roll(10).unwrap();
    put(&mut log, Compression::None, 10, &[("z", Some("1"))]);
    let aborted = log.collect_aborted_txns(0, 100, 10).unwrap();
    assert_eq!(aborted.len(), 1);
    let log = shared(log);
    let mut cleaner = LogCleaner::new(fs(), 1 << 20);

    // First clean: the aborted records go and do not supersede k=old; the markers stay (their
    // transactions' data was seen), and so does the aborted transaction's index entry.
    let (cp, _) = clean(&mut cleaner, &log, None, 1000).unwrap();
    let (batches, records) = read_all(&mut lock_log(&log));
    let control: Vec<i64> = markers(&batches).iter().map(|m| m.0).collect();
    let kv: Vec<(i64, &str, Option<&str>)> = records
        .iter()
        .filter(|r| !control.contains(&r.0))
        .map(|(o, k, v, _)| (*o, k.as_str(), v.as_deref()))
        .collect();
    assert_eq!(
        kv,
        [
            (0, "k", Some("old")),
            (4, "y", Some("committed")),
            (6, "q", Some("later")),
            (8, "z", Some("1"))
        ]
    );
    assert_eq!(
        markers(&batches),
        [(3, 1, 1, None), (5, 2, 1, None), (7, 1, 1, None)],
        "the markers as they were"
    );
    assert_eq!(
        lock_log(&log).collect_aborted_txns(0, 100, 10).unwrap(),
        aborted
    );
    assert!(
        batches.iter().all(|b| b.base_offset() != 1),
        "the aborted batch is gone"
    );

    // Second clean (new dirty data): the abort marker's transaction has no data left, so the
    // marker is stamped with a delete horizon; the commit marker's data is still there.
    {
        let mut l = lock_log(&log);
        l.roll(20).unwrap();
        put(&mut l, Compression::None, 20, &[("w", Some("1"))]);
    }
    let (cp, _) = clean(&mut cleaner, &log, Some(cp), 1500).unwrap();
    let (batches, _) = read_all(&mut lock_log(&log));
    assert_eq!(
        markers(&batches),
        [(3, 1, 1, Some(2500)), (5, 2, 1, None), (7, 1, 1, None)]
    );
    assert_eq!(
        lock_log(&log).collect_aborted_txns(0, 100, 10).unwrap(),
        [],
        "no data left for the aborted transaction: its index entry went with the rewrite"
    );
    // Not due before the horizon; after it, the abort marker goes.
    assert!(clean(&mut cleaner, &log, Some(cp), 2499).is_none());
    clean(&mut cleaner, &log, Some(cp), 2500).unwrap();
    let (batches, records) = read_all(&mut lock_log(&log));
    assert_eq!(markers(&batches), [(5, 2, 1, None), (7, 1, 1, None)]);
    assert!(records
        .iter()
        .any(|r| r.1 == "k" && r.2.as_deref() == Some("old")));
    // The cleaned log reopens (after a crash) to the same LSO and aborted list.
    let dir_path = lock_log(&log).dir().to_path_buf();
    let leo = lock_log(&log).log_end_offset();
    drop(log);
    let mut reopened = open(&dir_path, compact_config(1 << 20), false);
    reopened.set_high_watermark(leo);
    assert_eq!(reopened.last_stable_offset(), leo);
    assert_eq!(reopened.collect_aborted_txns(0, 100, 10).unwrap(), []);
}

#[test]
fn nothing_from_an_open_transaction_on_is_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compact_config(1 << 20), true);
    put(&mut log, Compression::None, 10, &[("a", Some("1"))]);
    put(&mut log, Compression::None, 10, &[("a", Some("2"))]);
    log.roll(10).unwrap();
    // Producer 3 opens a transaction at 2 and never ends it; later segments supersede keys.
    txn_put(&mut log, 3, 0, 10, &[("b", "open")]);
    put(&mut log, Compression::None, 10, &[("b", Some("later"))]);
    log.roll(10).unwrap();
    put(&mut log, Compression::None, 10, &[("a", Some("3"))]);
    log.roll(10).unwrap();
    put(&mut log, Compression::None, 10, &[("c", Some("1"))]);
    let leo = log.log_end_offset();
    log.set_high_watermark(leo);
    assert_eq!(log.last_stable_offset(), 2);
    let log = shared(log);
    let (cp, _) = clean(&mut LogCleaner::new(fs(), 1 << 20), &log, None, 1000).unwrap();
    assert_eq!(cp, 2, "the clean stops at the first unstable offset");
    let (_, records) = read_all(&mut lock_log(&log));
    let offsets: Vec<i64> = records.iter().map(|r| r.0).collect();
    // a=1 went (superseded by a=2 inside the cleanable part); the open transaction's record and
    // everything after it stay.
    assert_eq!(offsets, [1, 2, 3, 4, 5]);
}
