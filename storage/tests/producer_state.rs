//! Idempotent producers on a real `UnifiedLog`: retried batches are answered with their first
//! offsets and appended once, gaps and stale epochs are refused, and the state comes back after a
//! clean close, after a crash (snapshot + replay of the log tail), with no snapshot at all, and
//! after a truncation.

use bytes::Bytes;
use rafka_protocol::record_batch::RecordBatchBuilder;
use rafka_storage::producer_state::ProducerError;
use rafka_storage::{DiskFs, LogCheckpoints, LogConfig, StorageError, TopicPartition, UnifiedLog};
use std::path::Path;
use std::sync::Arc;

fn open(dir: &Path, clean: bool) -> UnifiedLog {
    let config = LogConfig {
        segment_bytes: 1024,
        ..LogConfig::default()
    };
    UnifiedLog::open(
        Arc::new(DiskFs),
        dir,
        TopicPartition::new("p", 0),
        config,
        LogCheckpoints {
            clean_shutdown: clean,
            ..Default::default()
        },
        0,
    )
    .expect("open log")
}

/// `n` records from producer `pid` at `epoch`, sequences from `seq`.
fn batch(pid: i64, epoch: i16, seq: i32, n: usize) -> Bytes {
    let mut b = RecordBatchBuilder::new(0).producer(pid, epoch, seq);
    for i in 0..n {
        let v = format!("{pid}-{}", seq as usize + i);
        b.append(1_000 + i as i64, Some(b"k"), Some(v.as_bytes()), &[])
            .expect("append record");
    }
    b.build()
}

fn producer_error(r: Result<rafka_storage::LogAppendInfo, StorageError>) -> ProducerError {
    match r {
        Err(StorageError::Producer { source, .. }) => source,
        other => panic!("expected a producer error, got {other:?}"),
    }
}

/// Appends 40 batches of 5 records for producer 1 (rolling several segments); returns the
/// first offset of each.
fn fill(log: &mut UnifiedLog) -> Vec<i64> {
    (0..40)
        .map(|i| {
            let info = log.append_as_leader(&batch(1, 0, i * 5, 5), 0, 0).unwrap();
            assert!(!info.duplicate);
            info.first_offset
        })
        .collect()
}

fn assert_knows_the_tail(log: &mut UnifiedLog, firsts: &[i64]) {
    let end = log.log_end_offset();
    // The newest batch is a duplicate: same offsets back, nothing appended.
    let dup = log.append_as_leader(&batch(1, 0, 195, 5), 0, 0).unwrap();
    assert!(dup.duplicate);
    assert_eq!(
        (dup.first_offset, dup.last_offset),
        (firsts[39], firsts[39] + 4)
    );
    assert_eq!(log.log_end_offset(), end);
    // The next sequence is 200.
    assert_eq!(
        producer_error(log.append_as_leader(&batch(1, 0, 205, 5), 0, 0)),
        ProducerError::OutOfOrderSequence {
            producer_id: 1,
            epoch: 0,
            found: 205,
            expected: 200
        }
    );
    let next = log.append_as_leader(&batch(1, 0, 200, 5), 0, 0).unwrap();
    assert_eq!(next.first_offset, end);
}

#[test]
fn retries_are_answered_with_their_first_offsets() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = open(tmp.path(), false);
    let firsts = fill(&mut log);
    assert!(log.number_of_segments() > 3, "the test wants rolls");
    // Each of the last five batches is recognised; an older one is out of order.
    for (i, &first) in firsts.iter().enumerate().skip(35) {
        let dup = log
            .append_as_leader(&batch(1, 0, i as i32 * 5, 5), 0, 0)
            .unwrap();
        assert!(dup.duplicate, "batch {i}");
        assert_eq!(dup.first_offset, first);
    }
    assert!(matches!(
        producer_error(log.append_as_leader(&batch(1, 0, 0, 5), 0, 0)),
        ProducerError::OutOfOrderSequence { .. }
    ));
    // A new epoch starts at 0; the old one is fenced.
    assert!(matches!(
        producer_error(log.append_as_leader(&batch(1, 1, 7, 1), 0, 0)),
        ProducerError::OutOfOrderSequence { expected: 0, .. }
    ));
    log.append_as_leader(&batch(1, 1, 0, 1), 0, 0).unwrap();
    assert!(matches!(
        producer_error(log.append_as_leader(&batch(1, 0, 200, 1), 0, 0)),
        ProducerError::InvalidProducerEpoch { current: 1, .. }
    ));
    // Batches without a producer id are untouched by all this.
    let mut plain = RecordBatchBuilder::new(0);
    plain.append(1, None, Some(b"x"), &[]).unwrap();
    let a = log.append_as_leader(&plain.build(), 0, 0).unwrap();
    let b = log.append_as_leader(&plain.build(), 0, 0).unwrap();
    assert_eq!(b.first_offset, a.first_offset + 1);
    let described: Vec<_> = log
        .producer_state()
        .active_producers()
        .iter()
        .map(|e| (e.producer_id, e.producer_epoch, e.last_seq()))
        .collect();
    assert_eq!(described, vec![(1, 1, 0)]);
}

#[test]
fn state_survives_a_clean_close() {
    let tmp = tempfile::tempdir().unwrap();
    let firsts = {
        let mut log = open(tmp.path(), false);
        let f = fill(&mut log);
        log.flush(log.log_end_offset(), 0).unwrap();
        log.close().unwrap();
        f
    };
    let mut log = open(tmp.path(), true);
    assert_knows_the_tail(&mut log, &firsts);
}

#[test]
fn state_survives_a_crash_by_replaying_the_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let firsts = {
        let mut log = open(tmp.path(), false);
        let f = fill(&mut log);
        log.flush(log.log_end_offset(), 0).unwrap();
        // No close: the newest snapshot is the last roll's, below the last batches.
        f
    };
    let mut log = open(tmp.path(), false);
    assert_knows_the_tail(&mut log, &firsts);
}

#[test]
fn state_is_rebuilt_from_the_log_without_any_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let firsts = {
        let mut log = open(tmp.path(), false);
        let f = fill(&mut log);
        log.flush(log.log_end_offset(), 0).unwrap();
        log.close().unwrap();
        f
    };
    let mut removed = 0;
    for e in std::fs::read_dir(tmp.path()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "snapshot") {
            std::fs::remove_file(p).unwrap();
            removed += 1;
        }
    }
    assert!(removed > 1);
    let mut log = open(tmp.path(), true);
    assert_knows_the_tail(&mut log, &firsts);
}

#[test]
fn truncation_forgets_the_batches_it_removes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = open(tmp.path(), false);
    let firsts = fill(&mut log);
    // Drop the last two batches (a follower's divergent tail).
    log.truncate_to(firsts[38], 0).unwrap();
    assert_eq!(log.log_end_offset(), firsts[38]);
    // Batch 38 is no longer a duplicate: it is appended again, at the new end.
    let again = log.append_as_leader(&batch(1, 0, 190, 5), 0, 0).unwrap();
    assert!(!again.duplicate);
    assert_eq!(again.first_offset, firsts[38]);
    // A truncation below a roll's snapshot drops that snapshot too.
    let mid = firsts[10];
    log.truncate_to(mid, 0).unwrap();
    assert!(log
        .producer_state()
        .snapshot_offsets()
        .iter()
        .all(|&o| o <= mid));
    let e = log.producer_state().entry(1).unwrap();
    assert_eq!(e.last_seq(), 49);
}
