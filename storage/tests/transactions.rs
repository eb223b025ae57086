//! Transactions on a real `UnifiedLog` (KIP-98's partition side): transactional batches open a
//! producer's transaction, COMMIT / ABORT markers close it; the last stable offset stops at the
//! oldest open (or unreplicated) transaction; aborted transactions get Kafka's 34-byte
//! `.txnindex` entries, found by `collect_aborted_txns`; and all of it comes back after a clean
//! close (snapshots carry open transactions) and after a crash (the index rebuilt from markers).

use bytes::Bytes;
use rafka_protocol::control_record::{ControlRecordType, EndTransactionMarker};
use rafka_protocol::record_batch::{RecordBatch, RecordBatchBuilder};
use rafka_storage::producer_state::ProducerError;
use rafka_storage::{
    AbortedTxn, DiskFs, LogCheckpoints, LogConfig, LogValidator, StorageError, TopicPartition,
    UnifiedLog, VerificationGuard,
};
use std::path::Path;
use std::sync::Arc;

fn open(dir: &Path, clean: bool, hw: i64) -> UnifiedLog {
    let config = LogConfig {
        segment_bytes: 2048,
        ..LogConfig::default()
    };
    UnifiedLog::open(
        Arc::new(DiskFs),
        dir,
        TopicPartition::new("t", 0),
        config,
        LogCheckpoints {
            clean_shutdown: clean,
            high_watermark: hw,
            ..Default::default()
        },
        0,
    )
    .expect("open log")
}

fn batch(pid: i64, epoch: i16, seq: i32, n: usize, transactional: bool) -> Bytes {
    let mut b = RecordBatchBuilder::new(0)
        .producer(pid, epoch, seq)
        .transactional(transactional);
    for i in 0..n {
        b.append(1_000 + i as i64, Some(b"k"), Some(b"v"), &[])
            .expect("append record");
    }
    b.build()
}

fn marker(commit: bool, coordinator_epoch: i32) -> EndTransactionMarker {
    EndTransactionMarker {
        control_type: if commit {
            ControlRecordType::Commit
        } else {
            ControlRecordType::Abort
        },
        coordinator_epoch,
    }
}

fn end(log: &mut UnifiedLog) -> i64 {
    let e = log.log_end_offset();
    log.set_high_watermark(e);
    e
}

#[test]
fn lso_aborted_index_and_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), true, 0);
    // 0..3: producer 1 opens a transaction; 3..5: a plain idempotent producer.
    log.append_as_leader(&batch(1, 0, 0, 3, true), 0, 0)
        .unwrap();
    log.append_as_leader(&batch(2, 0, 0, 2, false), 0, 0)
        .unwrap();
    end(&mut log);
    assert_eq!(log.last_stable_offset(), 0, "held at the open transaction");
    // A non-transactional write from a producer inside a transaction is refused.
    assert!(matches!(
        log.append_as_leader(&batch(1, 0, 3, 1, false), 0, 0),
        Err(StorageError::Producer {
            source: ProducerError::InvalidTxnState { producer_id: 1 },
            ..
        })
    ));
    // 5..7: producer 3 opens another; producer 1 aborts at 7.
    log.append_as_leader(&batch(3, 0, 0, 2, true), 0, 0)
        .unwrap();
    let a = log
        .append_end_txn_marker(1, 0, &marker(false, 4), 0, 0)
        .unwrap();
    assert_eq!(a.first_offset, 7);
    // The marker is not replicated yet: the aborted transaction is still unstable.
    assert_eq!(log.last_stable_offset(), 0);
    end(&mut log);
    assert_eq!(
        log.last_stable_offset(),
        5,
        "now at producer 3's transaction"
    );
    // Producer 3 commits at 8; everything is stable.
    log.append_end_txn_marker(3, 0, &marker(true, 4), 0, 0)
        .unwrap();
    let leo = end(&mut log);
    assert_eq!(leo, 9);
    assert_eq!(log.last_stable_offset(), 9);
    let want = vec![AbortedTxn {
        producer_id: 1,
        first_offset: 0,
        last_offset: 7,
        last_stable_offset: 5,
    }];
    assert_eq!(log.collect_aborted_txns(0, 9, 100).unwrap(), want);
    assert_eq!(log.collect_aborted_txns(8, 9, 100).unwrap(), vec![]);
    // Kafka's file: 34 bytes, version 0, then the four int64s.
    let idx = std::fs::read(dir.path().join("00000000000000000000.txnindex")).unwrap();
    let mut bytes = vec![0u8, 0];
    for v in [1i64, 0, 7, 5] {
        bytes.extend_from_slice(&v.to_be_bytes());
    }
    assert_eq!(idx, bytes);
    // The markers are control batches in Kafka's layout.
    let slice = log.read(7, 1 << 20, 9, true).unwrap().slice.unwrap();
    let read = Bytes::from(slice.read_to_vec().unwrap());
    let batches: Vec<RecordBatch> = RecordBatch::batches(read).map(|b| b.unwrap()).collect();
    assert!(batches
        .iter()
        .all(|b| b.is_control() && b.is_transactional()));
    assert_eq!(
        EndTransactionMarker::parse(&batches[0]).unwrap(),
        Some(marker(false, 4))
    );
    // An older coordinator, or an older producer epoch, is fenced.
    log.append_as_leader(&batch(5, 2, 0, 1, true), 0, 0)
        .unwrap();
    assert!(matches!(
        log.append_end_txn_marker(5, 1, &marker(true, 4), 0, 0),
        Err(StorageError::Producer {
            source: ProducerError::ProducerFenced { .. },
            ..
        })
    ));
    log.append_end_txn_marker(5, 2, &marker(true, 4), 0, 0)
        .unwrap();
    assert!(matches!(
        log.append_end_txn_marker(5, 2, &marker(true, 3), 0, 0),
        Err(StorageError::Producer {
            source: ProducerError::CoordinatorFenced { .. },
            ..
        })
    ));
    // An open transaction survives a clean close (in the producer snapshot) ...
    log.append_as_leader(&batch(6, 0, 0, 2, true), 0, 0)
        .unwrap();
    let open_at = log.log_end_offset() - 2;
    let leo = end(&mut log);
    log.close().unwrap();
    drop(log);
    let log = open(dir.path(), true, leo);
    assert_eq!(log.last_stable_offset(), open_at);
    assert_eq!(log.collect_aborted_txns(0, leo, 100).unwrap(), want);
    drop(log);
    // ... and a crash: the index is rebuilt from the markers, the open transaction from the log.
    std::fs::remove_file(dir.path().join("00000000000000000000.txnindex")).unwrap();
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "snapshot") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let mut log = open(dir.path(), false, leo);
    assert_eq!(log.last_stable_offset(), open_at);
    assert_eq!(log.collect_aborted_txns(0, leo, 100).unwrap(), want);
    // Truncating below the abort marker drops its entry.
    log.truncate_to(7, 0).unwrap();
    assert_eq!(log.collect_aborted_txns(0, 7, 100).unwrap(), vec![]);
}

#[test]
fn control_batches_from_clients_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), true, 0);
    // A marker as the coordinator writes it (base sequence -1) is refused by the header check.
    let bytes = marker(true, 0).batch(1, 0, 0).unwrap();
    assert!(log.append_as_leader(&bytes, 0, 0).is_err());
    // A control batch with a valid sequence is refused as Kafka does (INVALID_RECORD).
    let mut b = RecordBatchBuilder::new(0)
        .producer(1, 0, 0)
        .transactional(true)
        .control(true);
    b.append(0, Some(&[0, 0, 0, 1]), Some(&[0, 0, 0, 0, 0, 0]), &[])
        .unwrap();
    assert!(matches!(
        log.append_as_leader(&b.build(), 0, 0),
        Err(StorageError::InvalidRecord { .. })
    ));
    assert_eq!(log.log_end_offset(), 0);
}

/// Appends `bytes` presenting `guard` (KIP-890 part 1's produce path).
fn append_verified(
    log: &mut UnifiedLog,
    bytes: &Bytes,
    guard: VerificationGuard,
) -> Result<i64, StorageError> {
    let validated = LogValidator::new(log.config(), 0).validate(&"t-0", bytes)?;
    log.append_validated_verified(&validated, 0, 0, guard)
        .map(|i| i.first_offset)
}

fn not_verified(r: Result<i64, StorageError>) -> bool {
    matches!(
        r,
        Err(StorageError::Producer {
            source: ProducerError::NotVerified { .. },
            ..
        })
    )
}

#[test]
fn a_transaction_opens_only_with_the_guard_its_verification_took() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), true, 0);
    // No guard, or the sentinel: a first transactional batch is refused, nothing stored.
    assert!(not_verified(append_verified(
        &mut log,
        &batch(1, 0, 0, 1, true),
        VerificationGuard::SENTINEL
    )));
    let g = log.maybe_start_txn_verification(1, 0);
    assert!(!g.is_sentinel());
    assert_eq!(
        log.maybe_start_txn_verification(1, 0),
        g,
        "one guard per producer"
    );
    // A request verified before a marker and appended after it is refused: the marker drops
    // the guard (here the coordinator aborts the producer's earlier transaction).
    log.append_end_txn_marker(1, 0, &marker(false, 0), 0, 0)
        .unwrap();
    assert!(not_verified(append_verified(
        &mut log,
        &batch(1, 0, 0, 1, true),
        g
    )));
    assert_eq!(log.log_end_offset(), 1, "only the marker");
    // A fresh verification opens the transaction; its next batches need none (the sentinel).
    let g = log.maybe_start_txn_verification(1, 0);
    assert_eq!(
        append_verified(&mut log, &batch(1, 0, 0, 2, true), g).unwrap(),
        1
    );
    assert!(log.maybe_start_txn_verification(1, 0).is_sentinel());
    assert_eq!(
        append_verified(
            &mut log,
            &batch(1, 0, 2, 1, true),
            VerificationGuard::SENTINEL
        )
        .unwrap(),
        3
    );
    // Once the commit marker closes it, the sentinel opens nothing.
    log.append_end_txn_marker(1, 0, &marker(true, 0), 0, 0)
        .unwrap();
    assert!(not_verified(append_verified(
        &mut log,
        &batch(1, 0, 3, 1, true),
        VerificationGuard::SENTINEL
    )));
    // Non-transactional batches of other producers need no guard.
    assert!(append_verified(
        &mut log,
        &batch(2, 0, 0, 1, false),
        VerificationGuard::SENTINEL
    )
    .is_ok());
    // The guards a flood of producers can hold are bounded.
    for pid in 100..(100 + rafka_storage::producer_state::MAX_PENDING_VERIFICATIONS as i64 + 50) {
        log.maybe_start_txn_verification(pid, 0);
    }
    assert_eq!(
        log.producer_state().pending_verifications(),
        rafka_storage::producer_state::MAX_PENDING_VERIFICATIONS
    );
}

#[test]
fn delete_records_may_pass_an_open_transaction_and_the_lso_stays_at_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), true, 0);
    // 0-1 plain, 2-3 producer 1's open transaction, 4-5 plain.
    log.append_as_leader(&batch(9, 0, 0, 2, false), 0, 0)
        .unwrap();
    log.append_as_leader(&batch(1, 0, 0, 2, true), 0, 0)
        .unwrap();
    log.append_as_leader(&batch(9, 0, 2, 2, false), 0, 0)
        .unwrap();
    end(&mut log);
    assert_eq!(log.last_stable_offset(), 2);
    // Never past the high watermark (Kafka's only rule) ...
    assert!(log.increment_log_start_offset(7).is_err());
    // ... but past unstable data: the LSO is then the log start, never below it.
    log.increment_log_start_offset(3).unwrap();
    assert_eq!(log.log_start_offset(), 3);
    assert_eq!(log.last_stable_offset(), 3);
    // The transaction's marker still ends it.
    log.append_end_txn_marker(1, 0, &marker(true, 0), 0, 0)
        .unwrap();
    let leo = end(&mut log);
    assert_eq!(log.last_stable_offset(), leo);
}

/// Transactions v2 (KIP-890 part 2): the coordinator bumps the producer epoch at every EndTxn, so
/// a transaction's marker carries its data's epoch + 1. The partition closes the transaction
/// with it, then takes the producer's next transaction at that epoch (sequences from 0), and
/// fences a late batch of the previous epoch.
#[test]
fn a_marker_one_epoch_above_the_data_ends_it_and_the_next_transaction_runs_at_that_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), true, 0);
    // 0..3 at epoch 0, committed at 3 by a marker at epoch 1.
    log.append_as_leader(&batch(1, 0, 0, 3, true), 0, 0)
        .unwrap();
    log.append_end_txn_marker(1, 1, &marker(true, 4), 0, 0)
        .unwrap();
    end(&mut log);
    assert_eq!(log.last_stable_offset(), 4);
    // The next transaction at epoch 1 starts its sequences at 0 (anything else is out of
    // order, as in Kafka, and stores nothing): 4..6.
    assert!(matches!(
        log.append_as_leader(&batch(1, 1, 3, 2, true), 0, 0),
        Err(StorageError::Producer {
            source: ProducerError::OutOfOrderSequence { expected: 0, .. },
            ..
        })
    ));
    assert_eq!(log.log_end_offset(), 4);
    log.append_as_leader(&batch(1, 1, 0, 2, true), 0, 0)
        .unwrap();
    end(&mut log);
    assert_eq!(log.last_stable_offset(), 4, "held by the new transaction");
    // A late batch of the committed transaction's epoch is fenced, and nothing is stored.
    let before = log.log_end_offset();
    assert!(matches!(
        log.append_as_leader(&batch(1, 0, 3, 1, true), 0, 0),
        Err(StorageError::Producer {
            source: ProducerError::InvalidProducerEpoch { current: 1, .. },
            ..
        })
    ));
    assert_eq!(log.log_end_offset(), before);
    // A marker of the old epoch is fenced too; the abort at epoch 2 ends the transaction.
    assert!(matches!(
        log.append_end_txn_marker(1, 0, &marker(false, 4), 0, 0),
        Err(StorageError::Producer {
            source: ProducerError::ProducerFenced { .. },
            ..
        })
    ));
    log.append_end_txn_marker(1, 2, &marker(false, 4), 0, 0)
        .unwrap();
    let leo = end(&mut log);
    assert_eq!(leo, 7);
    assert_eq!(log.last_stable_offset(), 7);
    assert_eq!(
        log.collect_aborted_txns(0, 7, 100).unwrap(),
        vec![AbortedTxn {
            producer_id: 1,
            first_offset: 4,
            last_offset: 6,
            last_stable_offset: 7,
        }]
    );
    // And the same after a restart from the log (the epochs come back from the batches).
    drop(log);
    let mut log = open(dir.path(), false, 7);
    assert!(matches!(
        log.append_as_leader(&batch(1, 1, 2, 1, true), 0, 0),
        Err(StorageError::Producer {
            source: ProducerError::InvalidProducerEpoch { current: 2, .. },
            ..
        })
    ));
    log.append_as_leader(&batch(1, 2, 0, 1, true), 0, 0)
        .unwrap();
}
