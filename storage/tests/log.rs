//! Functional tests of `UnifiedLog` on the real disk: appends, reads, rolls, time lookups,
//! retention, truncation, validation failures, reopening.

use bytes::Bytes;
use rafka_protocol::record_batch::{RecordBatch, RecordBatchBuilder, TimestampType};
use rafka_storage::unified_log::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, MAX_TIMESTAMP};
use rafka_storage::{DiskFs, LogCheckpoints, LogConfig, StorageError, TopicPartition, UnifiedLog};
use std::path::Path;
use std::sync::Arc;

fn tp() -> TopicPartition {
    TopicPartition {
        topic: "t".into(),
        partition: 0,
    }
}

fn open(dir: &Path, config: LogConfig, clean: bool) -> UnifiedLog {
    UnifiedLog::open(
        Arc::new(DiskFs),
        dir,
        tp(),
        config,
        LogCheckpoints {
            clean_shutdown: clean,
            ..Default::default()
        },
        0,
    )
    .expect("open log")
}

/// A batch of `n` records with timestamps `ts, ts+1, ...` and values `v<ts+i>`.
fn batch(n: usize, ts: i64) -> Bytes {
    let mut b = RecordBatchBuilder::new(0);
    for i in 0..n {
        let v = format!("v{}", ts + i as i64);
        b.append(ts + i as i64, Some(b"k"), Some(v.as_bytes()), &[])
            .expect("append record");
    }
    b.build()
}

fn read_all(log: &mut UnifiedLog, from: i64) -> Vec<RecordBatch> {
    let hw = log.log_end_offset();
    let mut out = Vec::new();
    let mut next = from;
    while next < hw {
        let info = log.read(next, 1 << 20, hw, true).expect("read");
        let bytes = Bytes::from(info.slice.expect("data").read_to_vec().expect("bytes"));
        for b in RecordBatch::batches(bytes) {
            let b = b.expect("whole batch");
            b.validate().expect("valid stored batch");
            next = b.last_offset() + 1;
            out.push(b);
        }
    }
    out
}

#[test]
fn append_assigns_offsets_and_reads_back_whole_batches() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut log = open(dir.path(), LogConfig::default(), false);
    let a = log
        .append_as_leader(&batch(3, 100), 5, 1000)
        .expect("append");
    assert_eq!((a.first_offset, a.last_offset), (0, 2));
    let b = log
        .append_as_leader(&batch(2, 200), 5, 1000)
        .expect("append");
    assert_eq!((b.first_offset, b.last_offset), (3, 4));
    assert_eq!(log.log_end_offset(), 5);
    // A read from the middle of a batch returns that whole batch.
    let info = log.read(4, 1 << 20, 5, true).expect("read");
    assert_eq!(info.first_batch_offset, 3);
    let batches = read_all(&mut log, 0);
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[1].base_offset(), 3);
    assert_eq!(batches[1].partition_leader_epoch(), 5);
    // The high watermark bounds consumers: nothing at or above it.
    let info = log.read(0, 1 << 20, 3, true).expect("read");
    let got = Bytes::from(info.slice.expect("slice").read_to_vec().expect("bytes"));
    assert_eq!(RecordBatch::batches(got).count(), 1);
    assert!(log.read(3, 1 << 20, 3, true).expect("read").is_empty());
    // Out of range.
    assert!(matches!(
        log.read(6, 100, 6, true),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn stored_bytes_are_the_producers_except_offset_and_epoch() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut log = open(dir.path(), LogConfig::default(), false);
    let sent = batch(4, 1);
    log.append_as_leader(&batch(1, 0), 0, 0).expect("append");
    log.append_as_leader(&sent, 7, 0).expect("append");
    let stored = read_all(&mut log, 1).remove(0);
    let s = stored.as_bytes();
    assert_eq!(&s[12..16], &7i32.to_be_bytes());
    assert_eq!(&s[..8], &1i64.to_be_bytes());
    assert_eq!(&s[16..], &sent[16..], "bytes after the epoch are untouched");
}

#[test]
fn log_append_time_rewrites_the_timestamp_and_the_crc() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = LogConfig {
        log_append_time: true,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config, false);
    let info = log
        .append_as_leader(&batch(3, 5), 0, 424242)
        .expect("append");
    assert_eq!(info.log_append_time, 424242);
    let stored = read_all(&mut log, 0).remove(0);
    assert_eq!(stored.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(stored.max_timestamp(), 424242);
    stored.ensure_valid().expect("crc recomputed");
}

#[test]
fn corrupt_and_oversized_batches_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = LogConfig {
        max_message_bytes: 1000,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config, false);
    log.append_as_leader(&batch(1, 0), 0, 0).expect("append");
    let mut bad = batch(2, 0).to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0x40;
    let e = log
        .append_as_leader(&Bytes::from(bad), 0, 0)
        .expect_err("crc");
    assert!(matches!(e, StorageError::CorruptBatch { .. }), "{e}");
    let big = batch(100, 0);
    let e = log.append_as_leader(&big, 0, 0).expect_err("too large");
    assert!(matches!(e, StorageError::BatchTooLarge { .. }), "{e}");
    // A good batch followed by a torn one: nothing of the request is appended.
    let mut two = batch(1, 0).to_vec();
    two.extend_from_slice(&batch(1, 0)[..30]);
    assert!(log.append_as_leader(&Bytes::from(two), 0, 0).is_err());
    assert!(log.append_as_leader(&Bytes::new(), 0, 0).is_err());
    assert_eq!(log.log_end_offset(), 1);
    assert_eq!(read_all(&mut log, 0).len(), 1);
}

#[test]
fn rolls_on_segment_bytes_and_reads_across_segments() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = LogConfig {
        segment_bytes: 512,
        index_interval_bytes: 100,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config.clone(), false);
    for i in 0..50 {
        log.append_as_leader(&batch(3, i * 10), 1, 0)
            .expect("append");
    }
    assert!(
        log.number_of_segments() > 5,
        "{} segments",
        log.number_of_segments()
    );
    for base in log.segment_base_offsets() {
        assert!(dir.path().join(format!("{base:020}.log")).exists());
    }
    let all = read_all(&mut log, 0);
    assert_eq!(all.len(), 50);
    for (i, b) in all.iter().enumerate() {
        assert_eq!(b.base_offset(), i as i64 * 3);
    }
    // Every offset reads back from the batch holding it.
    for off in 0..150 {
        let info = log.read(off, 1, 150, true).expect("read");
        assert_eq!(info.first_batch_offset, off - off % 3);
    }
    // Clean close and reopen keeps everything, and appends continue densely.
    log.close().expect("close");
    drop(log);
    let mut log = open(dir.path(), config.clone(), true);
    assert_eq!(log.log_end_offset(), 150);
    log.append_as_leader(&batch(1, 0), 1, 0)
        .expect("append after reopen");
    assert_eq!(read_all(&mut log, 0).len(), 51);
    drop(log);
    // And an unclean reopen (no marker, recovery point 0) rescans and agrees.
    let mut log = open(dir.path(), config, false);
    assert_eq!(log.log_end_offset(), 151);
    assert_eq!(read_all(&mut log, 0).len(), 51);
}

#[test]
fn offsets_by_timestamp_find_the_first_record_not_batch() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = LogConfig {
        segment_bytes: 600,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config, false);
    // Batches of 5 records with timestamps 0..5, 10..15, 20..25, ...
    for i in 0..20 {
        log.append_as_leader(&batch(5, i * 10), 0, 0)
            .expect("append");
    }
    let at = |log: &mut UnifiedLog, ts| log.fetch_offset_by_timestamp(ts).expect("lookup");
    assert_eq!(at(&mut log, 0).map(|t| t.offset), Some(0));
    assert_eq!(
        at(&mut log, 3).map(|t| (t.offset, t.timestamp)),
        Some((3, 3))
    );
    // 7 falls between batches: the first record of the next batch.
    assert_eq!(
        at(&mut log, 7).map(|t| (t.offset, t.timestamp)),
        Some((5, 10))
    );
    assert_eq!(
        at(&mut log, 123).map(|t| (t.offset, t.timestamp)),
        Some((63, 123))
    );
    assert_eq!(at(&mut log, 194).map(|t| t.offset), Some(99));
    assert_eq!(at(&mut log, 195), None);
    assert_eq!(at(&mut log, EARLIEST_TIMESTAMP).map(|t| t.offset), Some(0));
    assert_eq!(at(&mut log, LATEST_TIMESTAMP).map(|t| t.offset), Some(100));
    assert_eq!(
        at(&mut log, MAX_TIMESTAMP).map(|t| (t.offset, t.timestamp)),
        Some((99, 194))
    );
}

#[test]
fn offsets_by_timestamp_look_inside_compressed_batches() {
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let dir = tempfile::tempdir().expect("tmp");
        let mut log = open(dir.path(), LogConfig::default(), false);
        let path = format!(
            "{}/../protocol/tests/data/librdkafka-batches/{codec}-1.bin",
            env!("CARGO_MANIFEST_DIR")
        );
        let b = Bytes::from(std::fs::read(path).expect("golden batch"));
        let batch = RecordBatch::parse(b.clone()).expect("batch");
        // A batch of earlier records first, so the answer is not simply offset 0.
        log.append_as_leader(&self::batch(3, 0), 0, 0)
            .expect("append");
        // Appended at the time librdkafka sent it: validation checks record timestamps
        // against message.timestamp.after.max.ms.
        let info = log
            .append_as_leader(&b, 0, batch.max_timestamp())
            .expect("append compressed");
        let data = rafka_storage::compression::decompress(
            batch.compression().expect("codec"),
            &batch.records_bytes(),
            1 << 20,
        )
        .expect("decompress");
        let times: Vec<i64> =
            rafka_protocol::record::RecordIter::new(data, batch.record_count() as usize)
                .map(|r| batch.base_timestamp() + r.expect("record").timestamp_delta)
                .collect();
        for (i, &target) in times.iter().enumerate() {
            let expected = times.iter().position(|&t| t >= target).expect("present");
            assert!(expected <= i);
            let found = log
                .fetch_offset_by_timestamp(target)
                .expect("lookup")
                .expect("found");
            assert_eq!(
                found.offset,
                info.first_offset + expected as i64,
                "{codec}: record {i}"
            );
            assert_eq!(found.timestamp, times[expected]);
        }
        let last = *times.iter().max().expect("records");
        assert_eq!(
            log.fetch_offset_by_timestamp(last + 1).expect("lookup"),
            None
        );
    }
}

#[test]
fn retention_deletes_whole_segments_below_the_high_watermark() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = LogConfig {
        segment_bytes: 500,
        retention_bytes: 1500,
        retention_ms: -1,
        file_delete_delay_ms: 0,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config.clone(), false);
    for i in 0..40 {
        log.append_as_leader(&batch(2, i), 0, 0).expect("append");
    }
    let before = log.number_of_segments();
    // Nothing is deleted while the high watermark is at 0.
    assert_eq!(log.delete_old_segments(0).expect("retention"), 0);
    log.set_high_watermark(log.log_end_offset());
    let deleted = log.delete_old_segments(0).expect("retention");
    assert!(deleted > 0 && log.number_of_segments() == before - deleted);
    assert!(log.size() <= 1500 + 500);
    assert!(log.log_start_offset() > 0);
    let lso = log.log_start_offset();
    assert!(matches!(
        log.read(lso - 1, 100, 80, true),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert!(!log.read(lso, 100, 80, true).expect("read").is_empty());
    // `.deleted` files are removed after the delay.
    let deleted_files = || {
        std::fs::read_dir(dir.path())
            .expect("dir")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".deleted"))
            })
            .count()
    };
    assert!(deleted_files() > 0);
    log.remove_deleted_segments(1).expect("remove");
    assert_eq!(deleted_files(), 0);

    // Time retention by each segment's largest timestamp.
    let config = LogConfig {
        segment_bytes: 500,
        retention_ms: 1000,
        file_delete_delay_ms: 0,
        ..LogConfig::default()
    };
    let dir = tempfile::tempdir().expect("tmp");
    let mut log = open(dir.path(), config, false);
    for i in 0..20 {
        log.append_as_leader(&batch(2, i * 100), 0, 0)
            .expect("append");
    }
    log.set_high_watermark(log.log_end_offset());
    let n = log.delete_old_segments(2500).expect("retention");
    assert!(n > 0);
    assert!(
        log.fetch_offset_by_timestamp(EARLIEST_TIMESTAMP)
            .expect("lso")
            .expect("lso")
            .offset
            > 0
    );
}

#[test]
fn delete_records_moves_the_log_start_offset() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut log = open(dir.path(), LogConfig::default(), false);
    for i in 0..5 {
        log.append_as_leader(&batch(2, i), 0, 0).expect("append");
    }
    assert!(
        log.increment_log_start_offset(4).is_err(),
        "above the high watermark"
    );
    log.set_high_watermark(10);
    log.increment_log_start_offset(4).expect("delete records");
    assert_eq!(log.log_start_offset(), 4);
    assert!(matches!(
        log.read(3, 100, 10, true),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert_eq!(
        log.fetch_offset_by_timestamp(EARLIEST_TIMESTAMP)
            .expect("ok")
            .map(|t| t.offset),
        Some(4)
    );
}

#[test]
fn truncation_removes_the_tail_and_the_epochs_above_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = LogConfig {
        segment_bytes: 400,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config, false);
    for i in 0..30 {
        log.append_as_leader(&batch(2, i), (i / 10) as i32, 0)
            .expect("append");
    }
    assert_eq!(log.leader_epoch_cache().latest_epoch(), Some(2));
    assert!(log.truncate_to(30, 0).expect("truncate"));
    assert_eq!(log.log_end_offset(), 30);
    assert_eq!(log.leader_epoch_cache().latest_epoch(), Some(1));
    assert_eq!(read_all(&mut log, 0).len(), 15);
    log.append_as_leader(&batch(1, 0), 3, 0)
        .expect("append after truncation");
    assert_eq!(log.log_end_offset(), 31);
    log.truncate_fully_and_start_at(1000, 0).expect("restart");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (1000, 1000));
    assert_eq!(log.number_of_segments(), 1);
    let info = log.append_as_leader(&batch(1, 0), 4, 0).expect("append");
    assert_eq!(info.first_offset, 1000);
}

#[test]
fn follower_appends_keep_the_leaders_offsets() {
    let leader_dir = tempfile::tempdir().expect("tmp");
    let follower_dir = tempfile::tempdir().expect("tmp");
    let mut leader = open(leader_dir.path(), LogConfig::default(), false);
    let mut follower = open(follower_dir.path(), LogConfig::default(), false);
    for i in 0..10 {
        leader.append_as_leader(&batch(3, i), 2, 0).expect("append");
    }
    let info = leader.read(0, 1 << 20, 30, true).expect("read");
    let bytes = Bytes::from(info.slice.expect("slice").read_to_vec().expect("bytes"));
    follower
        .append_as_follower(&bytes, 0)
        .expect("follower append");
    assert_eq!(follower.log_end_offset(), 30);
    assert_eq!(follower.leader_epoch_cache().latest_epoch(), Some(2));
    // The same batches again overlap: refused.
    let e = follower.append_as_follower(&bytes, 0).expect_err("overlap");
    assert!(matches!(e, StorageError::OffsetsOutOfOrder { .. }), "{e}");
    let replica: Vec<Vec<u8>> = read_all(&mut follower, 0)
        .iter()
        .map(|b| b.as_bytes().to_vec())
        .collect();
    let original: Vec<Vec<u8>> = read_all(&mut leader, 0)
        .iter()
        .map(|b| b.as_bytes().to_vec())
        .collect();
    assert_eq!(replica, original, "replicas hold the same bytes");
}

/// A batch of one record with a value of `len` bytes.
fn batch_of_size(len: usize) -> Bytes {
    let mut b = RecordBatchBuilder::new(0);
    b.append(0, Some(b"k"), Some(&vec![0x33; len]), &[])
        .expect("append record");
    b.build()
}

/// Reads walk the batch headers in chunks while batches are small and a header at a time when
/// they are large: whatever the mix, each read returns the batches a walk one header at a time
/// would (from the batch holding the offset, whole batches up to max_bytes, the first whole).
#[test]
fn reads_find_the_same_batches_whatever_the_batch_sizes() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = LogConfig {
        index_interval_bytes: 1000,
        max_message_bytes: 1 << 20,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config, false);
    // Runs of small batches between large ones, so that walks switch both ways; then a long run
    // of small batches of many sizes, so that chunk ends fall at every place of a header.
    let mixed: [usize; 8] = [10, 900, 3000, 70_000, 50, 4100, 300_000, 7];
    let lens: Vec<usize> = (0..48)
        .map(|i| mixed[i % 8] + i * 13)
        .chain((0..300).map(|i| (i * 7919) % 1900))
        .collect();
    let mut positions = Vec::new(); // (offset, position, size)
    let mut pos = 0u64;
    for len in lens {
        let b = batch_of_size(len);
        let info = log.append_as_leader(&b, 0, 0).expect("append");
        positions.push((info.first_offset, pos, b.len() as u64));
        pos += b.len() as u64;
    }
    let leo = log.log_end_offset();
    for &max_bytes in &[
        1u64,
        700,
        5000,
        65_536,
        300_000,
        1 << 20,
        u64::from(u32::MAX),
    ] {
        for (i, &(offset, position, size)) in positions.iter().enumerate() {
            let info = log.read(offset, max_bytes, leo, true).expect("read");
            let slice = info.slice.expect("data");
            let mut len = size;
            for &(_, _, next) in &positions[i + 1..] {
                if len + next > max_bytes {
                    break;
                }
                len += next;
            }
            assert_eq!(
                (
                    info.first_batch_offset,
                    slice.position,
                    u64::from(slice.len)
                ),
                (offset, position, len),
                "read at {offset} of {max_bytes} bytes"
            );
        }
    }
}

/// A new segment starts empty even where a crashed roll left a file of its name; an empty file
/// is not truncated (on ext4 that would schedule a write-back of the segment when closed).
#[test]
fn a_new_segment_cuts_a_file_left_behind() {
    use rafka_storage::LogSegment;
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("00000000000000000042.log");
    std::fs::write(&path, b"left by a crash").expect("write");
    let seg =
        LogSegment::create(Arc::new(DiskFs), dir.path(), 42, 4096, 1 << 20, 0).expect("create");
    assert_eq!(seg.size(), 0);
    assert_eq!(std::fs::metadata(&path).expect("stat").len(), 0);
}
