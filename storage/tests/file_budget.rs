//! The node-wide file budget on the real disk: many partitions of many small segments under a
//! bound far below what they would hold open, checked against the process's own descriptor and
//! mapping tables (`/proc/self/fd`, `/proc/self/maps`, only entries under the test's directory,
//! so tests running beside it do not count). Reads, index lookups, timestamp lookups,
//! retention, truncation and compaction give the same answers as with every file open, and a
//! file slice taken before its log was evicted is still read whole.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use rafka_protocol::record_batch::RecordBatchBuilder;
use rafka_storage::file_budget::MAX_OPEN_FILES_PER_LOG;
use rafka_storage::log_manager::lock_log;
use rafka_storage::{
    CleanupPolicy, DiskFs, FileBudget, LogConfig, LogManager, SharedLog, TopicPartition,
};
use std::path::Path;
use std::sync::Arc;

const PARTITIONS: i32 = 40;
const BATCHES: i64 = 40;
const BOUND: usize = 30;
const NOW: i64 = 1_000_000;

fn config(compact: bool) -> LogConfig {
    LogConfig {
        // About five batches a segment: eight segments a partition.
        segment_bytes: 1100,
        index_interval_bytes: 100,
        segment_index_bytes: 4096,
        cleanup_policy: if compact {
            CleanupPolicy::COMPACT
        } else {
            CleanupPolicy::DELETE
        },
        min_cleanable_dirty_ratio: 0.0,
        file_delete_delay_ms: 0,
        ..LogConfig::default()
    }
}

fn value(p: i32, o: i64) -> Vec<u8> {
    format!("partition {p:04} offset {o:06} ")
        .repeat(5)
        .into_bytes()
}

fn batch(p: i32, o: i64, compact: bool) -> Bytes {
    let mut b = RecordBatchBuilder::new(0);
    let key = if compact {
        format!("k{}", o % 4)
    } else {
        format!("k{o}")
    };
    b.append(NOW + o, Some(key.as_bytes()), Some(&value(p, o)), &[])
        .unwrap();
    b.build()
}

/// Descriptors and mappings of files under `dir` that this process holds.
fn held(dir: &Path) -> (usize, usize) {
    let fds = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|t| t.starts_with(dir))
        .count();
    let dir = dir.to_string_lossy().into_owned();
    let maps = std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&dir))
        .count();
    (fds, maps)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Reads offset `o` of `log` (one record a batch) and checks it is the record written there.
fn check_offset(log: &SharedLog, p: i32, o: i64) {
    let mut l = lock_log(log);
    let leo = l.log_end_offset();
    let info = l.read(o, 1 << 20, leo, true).unwrap();
    drop(l);
    assert_eq!(info.first_batch_offset, o, "partition {p} offset {o}");
    let bytes = info.slice.unwrap().read_to_vec().unwrap();
    assert!(contains(&bytes, &value(p, o)), "partition {p} offset {o}");
}

fn open(dir: &Path, budget: Arc<FileBudget>) -> LogManager {
    LogManager::open_with_budget(
        Arc::new(DiskFs),
        &[dir.to_path_buf()],
        &|tp| config(tp.topic == "compacted"),
        NOW,
        budget,
        4,
    )
    .unwrap()
}

#[test]
fn many_segmented_partitions_stay_within_the_bound_and_read_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("logs");
    let budget = FileBudget::new(BOUND);
    let lm = open(&dir, budget.clone());
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(if p % 10 == 9 { "compacted" } else { "t" }, p))
        .collect();
    let logs: Vec<SharedLog> = tps
        .iter()
        .map(|tp| {
            lm.get_or_create_log(tp, config(tp.topic == "compacted"), NOW)
                .unwrap()
        })
        .collect();
    // Round-robin appends: every partition is used again after all the others.
    for o in 0..BATCHES {
        for (p, log) in logs.iter().enumerate() {
            let compact = tps[p].topic == "compacted";
            let mut l = lock_log(log);
            l.append_as_leader(&batch(p as i32, o, compact), 0, NOW + o)
                .unwrap();
            let leo = l.log_end_offset();
            l.set_high_watermark(leo);
        }
        let (fds, maps) = held(&dir);
        assert_eq!(fds, budget.open_files(), "every descriptor counted");
        assert!(maps <= fds);
        assert!(
            budget.open_files() <= BOUND + MAX_OPEN_FILES_PER_LOG,
            "{} open",
            budget.open_files()
        );
    }
    assert!(lock_log(&logs[0]).number_of_segments() >= 6);
    assert!(budget.evictions() > 0);

    // Every offset of every partition, read in an order that keeps evicting.
    for o in 0..BATCHES {
        for (p, log) in logs.iter().enumerate() {
            if tps[p].topic != "compacted" {
                check_offset(log, p as i32, o);
            }
        }
        assert!(budget.open_files() <= BOUND + MAX_OPEN_FILES_PER_LOG);
    }
    // Timestamp lookups go through the time and offset indexes of evicted segments.
    for (p, log) in logs.iter().enumerate() {
        let mut l = lock_log(log);
        for o in [0, 7, BATCHES / 2, BATCHES - 1] {
            let found = l.fetch_offset_by_timestamp(NOW + o).unwrap().unwrap();
            assert_eq!(found.offset, o, "partition {p} timestamp of offset {o}");
        }
    }

    // A file slice outlives its log's eviction (a fetch response being sent).
    let info = {
        let mut l = lock_log(&logs[0]);
        let leo = l.log_end_offset();
        l.read(1, 1 << 20, leo, true).unwrap()
    };
    for (p, log) in logs.iter().enumerate().skip(1) {
        check_offset(log, p as i32, BATCHES - 1);
    }
    assert_eq!(lock_log(&logs[0]).open_files(), 0, "evicted meanwhile");
    let bytes = info.slice.unwrap().read_to_vec().unwrap();
    assert!(contains(&bytes, &value(0, 1)));

    // Retention, truncation and compaction on evicted logs.
    {
        let mut l = lock_log(&logs[1]);
        l.increment_log_start_offset(12).unwrap();
        assert!(l.delete_old_segments(NOW).unwrap() > 0);
        l.remove_deleted_segments(NOW + 1).unwrap();
    }
    check_offset(&logs[1], 1, 12);
    assert!(lock_log(&logs[1]).read(11, 100, BATCHES, true).is_err());
    {
        let mut l = lock_log(&logs[2]);
        l.truncate_to(17, NOW).unwrap();
        assert_eq!(l.log_end_offset(), 17);
    }
    check_offset(&logs[2], 2, 16);
    lock_log(&logs[2])
        .append_as_leader(&batch(2, 17, false), 0, NOW + 17)
        .unwrap();
    check_offset(&logs[2], 2, 17);
    let stats = lm.clean_logs(NOW + 1_000).unwrap();
    assert!(stats.segments_cleaned > 0);
    for (p, log) in logs.iter().enumerate() {
        if tps[p].topic == "compacted" {
            // The last value of each key is still there.
            for o in BATCHES - 4..BATCHES {
                check_offset(log, p as i32, o);
            }
        }
    }
    let (fds, _) = held(&dir);
    assert_eq!(fds, budget.open_files());
    assert!(budget.open_files() <= BOUND + MAX_OPEN_FILES_PER_LOG);

    // A clean restart under the same bound reads the same.
    lm.shutdown(NOW + 2_000).unwrap();
    drop(logs);
    drop(lm);
    assert_eq!(held(&dir).0, 0, "nothing left open");
    let budget = FileBudget::new(BOUND);
    let lm = open(&dir, budget.clone());
    for o in 0..BATCHES {
        for tp in &tps {
            if tp.topic == "compacted" || tp.partition < 3 {
                continue;
            }
            check_offset(&lm.get_log(tp).unwrap(), tp.partition, o);
        }
    }
    assert_eq!(held(&dir).0, budget.open_files());
    assert!(budget.open_files() <= BOUND + MAX_OPEN_FILES_PER_LOG);
}

/// The per-log bound: a reader walking through one log's old segments leaves at most
/// `MAX_OPEN_FILES_PER_LOG` open, whatever the node's budget.
#[test]
fn one_log_read_from_the_start_keeps_few_segments_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("logs");
    let lm = open(&dir, FileBudget::unlimited());
    let log = lm
        .get_or_create_log(&TopicPartition::new("t", 0), config(false), NOW)
        .unwrap();
    for o in 0..200 {
        lock_log(&log)
            .append_as_leader(&batch(0, o, false), 0, NOW + o)
            .unwrap();
    }
    for o in 0..200 {
        check_offset(&log, 0, o);
        assert!(lock_log(&log).open_files() <= MAX_OPEN_FILES_PER_LOG);
    }
    assert!(lock_log(&log).number_of_segments() > 30);
    assert!(held(&dir).0 <= MAX_OPEN_FILES_PER_LOG);
}
