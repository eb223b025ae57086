//! Power-loss and fault-injection tests of `UnifiedLog` on the simulated disk (`SimFs`).
//!
//! - `power_cuts_keep_every_flushed_batch`: random appends, flushes, rolls and the flushes rolls
//!   leave behind, then a power cut
//!   (every unsynced write forgotten, or torn at a seeded random point), an unclean reopen, and
//!   the log must hold a prefix of what was appended that includes everything flushed, valid
//!   and dense; appends go on after it. Many seeds, several cuts each.
//! - Full disk (`set_space_left`): a failing append changes nothing; appends resume after.
//! - Failing fsync (`set_fail_sync`): the flush fails and the recovery point stays.
//! - A roll fsyncs nothing inline: the flush it leaves runs while appends go on, and the recovery
//!   point moves only once it has completed (and not over a truncation made meanwhile).
//! - The first append of a new leader epoch writes no checkpoint (no fsync): after every cut the
//!   log's leader-epoch history is exactly the one its surviving batches imply — entries below
//!   the recovery point from the file (written by the flush that moved it), those above rebuilt
//!   by recovery.
//!
//! Batch contents derive from their first offset; the leader epoch of an append tells which
//! round wrote it.

use bytes::Bytes;
use rafka_protocol::record_batch::{RecordBatch, RecordBatchBuilder};
use rafka_storage::{
    EpochEntry, FileSystem, LogCheckpoints, LogConfig, SimFs, StorageError, TopicPartition,
    UnifiedLog,
};
use std::io::ErrorKind;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const DIR: &str = "/data/power-0";
const TS0: i64 = 1_700_000_000_000;
const SEEDS: u64 = 300;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 8 << 10,
        segment_index_bytes: 4096,
        index_interval_bytes: 256,
        retention_ms: -1,
        ..LogConfig::default()
    }
}

/// Opens as after an unclean shutdown, with `recovery_point` from a checkpoint.
fn open(fs: &SimFs, recovery_point: i64) -> rafka_storage::Result<UnifiedLog> {
    let checkpoints = LogCheckpoints {
        recovery_point,
        ..LogCheckpoints::default()
    };
    let tp = TopicPartition::new("power", 0);
    UnifiedLog::open(
        Arc::new(fs.clone()),
        Path::new(DIR),
        tp,
        config(),
        checkpoints,
        TS0,
    )
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

fn batch_for(first: i64) -> Bytes {
    let mut b = RecordBatchBuilder::new(0);
    for o in first..first + record_count(first) {
        let key = format!("k{o}");
        b.append(TS0 + o, Some(key.as_bytes()), Some(&value(o)), &[])
            .expect("record fits");
    }
    b.build()
}

fn check_content(b: &RecordBatch) {
    let first = b.base_offset();
    b.validate()
        .unwrap_or_else(|e| panic!("batch at {first}: {e}"));
    assert_eq!(
        b.last_offset() - first + 1,
        record_count(first),
        "batch at {first}"
    );
    for (i, r) in b.records().expect("uncompressed").enumerate() {
        let r = r.unwrap_or_else(|e| panic!("batch at {first}: {e}"));
        let o = first + i as i64;
        assert_eq!(
            r.key.as_deref(),
            Some(format!("k{o}").as_bytes()),
            "key at {o}"
        );
        assert_eq!(r.value.as_deref(), Some(&value(o)[..]), "value at {o}");
        assert_eq!(r.timestamp(b), TS0 + o, "timestamp at {o}");
    }
}

/// (base offset, last offset, leader epoch) of a batch.
type Entry = (i64, i64, i32);

/// The whole log through `read`: dense from 0, every batch valid with the records written at its
/// offsets, the LEO right after the last batch.
fn read_all(log: &mut UnifiedLog) -> Vec<Entry> {
    assert_eq!(log.log_start_offset(), 0);
    let (leo, mut next) = (log.log_end_offset(), 0);
    let mut out = Vec::new();
    while next < leo {
        let f = log.read(next, 64 << 10, leo, true).expect("read");
        assert_eq!(f.first_batch_offset, next, "read at {next}");
        let slice = f
            .slice
            .unwrap_or_else(|| panic!("nothing read at {next} below {leo}"));
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

/// Every `.log` file holds whole valid batches and nothing after them (no partial write left
/// behind, no torn tail left by recovery).
fn check_files(fs: &SimFs) {
    for p in fs.list_dir(Path::new(DIR)).expect("list") {
        if p.extension().is_some_and(|e| e == "log") {
            let data = fs.contents(&p).expect("contents");
            for b in RecordBatch::batches(data.into()) {
                let valid = b.and_then(|b| b.validate());
                valid.unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            }
        }
    }
}

fn append(log: &mut UnifiedLog, epoch: i32) -> rafka_storage::Result<Entry> {
    let first = log.log_end_offset();
    let info = log.append_as_leader(&batch_for(first), epoch, TS0)?;
    assert_eq!(info.first_offset, first, "offsets are dense");
    Ok((first, info.last_offset, epoch))
}

/// The leader-epoch history `batches` imply: the first batch of each epoch.
fn epochs_of(batches: &[Entry]) -> Vec<EpochEntry> {
    let mut out: Vec<EpochEntry> = Vec::new();
    for &(base, _, epoch) in batches {
        if out.last().is_none_or(|e| e.epoch != epoch) {
            out.push(EpochEntry::new(epoch, base));
        }
    }
    out
}

fn is_enospc(e: &StorageError) -> bool {
    matches!(e, StorageError::Io { source, .. } if source.kind() == ErrorKind::StorageFull)
}

#[test]
fn power_cuts_keep_every_flushed_batch() {
    let started = Instant::now();
    let (mut cuts, mut torn_cuts, mut appended, mut lost, mut flushes) = (0, 0, 0, 0, 0);
    for seed in 0..SEEDS {
        let mut rng = Rng(seed ^ 0xB0A7);
        let fs = SimFs::new();
        // What was appended since the log was last known whole; everything below `durable`
        // was flushed and must survive every cut.
        let mut model: Vec<Entry> = Vec::new();
        let mut durable = 0;
        for round in 1..=6 {
            let what = format!("seed {seed}, round {round}");
            let checkpoint = if rng.below(2) == 0 { 0 } else { durable };
            let mut log = open(&fs, checkpoint).unwrap_or_else(|e| panic!("{what}: open: {e}"));
            let got = read_all(&mut log);
            check_files(&fs);
            assert!(got.len() <= model.len(), "{what}: more than appended");
            assert_eq!(
                got[..],
                model[..got.len()],
                "{what}: a prefix of what was appended"
            );
            assert!(
                log.log_end_offset() >= durable,
                "{what}: flushed offsets lost"
            );
            assert_eq!(
                log.leader_epoch_cache().epoch_entries(),
                &epochs_of(&got)[..],
                "{what}: the leader-epoch history of what survived"
            );
            lost += model.len() - got.len();
            model.truncate(got.len());
            if round == 6 {
                break;
            }
            for _ in 0..rng.below(80) {
                model.push(append(&mut log, round).unwrap_or_else(|e| panic!("{what}: {e}")));
                appended += 1;
                let leo = log.log_end_offset();
                match rng.below(16) {
                    0 | 1 => {
                        let to = durable + rng.below((leo - durable + 1) as u64) as i64;
                        log.flush(to, TS0).expect("flush");
                        assert!(log.recovery_point() >= to, "{what}: flush({to})");
                        durable = durable.max(to);
                        flushes += 1;
                    }
                    2 => log.roll(TS0).expect("roll"),
                    3 => {
                        if let Some(f) = log.take_roll_flush().expect("take roll flush") {
                            f.run().expect("roll flush");
                            log.complete_flush(f);
                            durable = durable.max(log.recovery_point());
                            flushes += 1;
                        }
                    }
                    _ => {}
                }
            }
            let torn = rng.below(3) > 0;
            fs.power_cut(torn.then(|| mix(seed * 31 + round as u64)));
            cuts += 1;
            torn_cuts += u32::from(torn);
        }
        // Appends go on after the last recovery.
        let mut log = open(&fs, durable).expect("open");
        let entry = append(&mut log, 9).expect("append");
        assert_eq!(entry.0, model.last().map_or(0, |e| e.1 + 1));
        model.push(entry);
        assert_eq!(read_all(&mut log), model);
    }
    println!(
        "{SEEDS} seeds, {cuts} power cuts ({torn_cuts} torn) in {:.1?}: {appended} batches \
         appended, {flushes} flushes, {lost} unflushed batches lost",
        started.elapsed()
    );
    assert!(lost > 0 && flushes > 0, "the cuts must lose something");
}

/// A log of `n` batches in epoch 1 (a few segments).
fn log_with(fs: &SimFs, n: usize) -> (UnifiedLog, Vec<Entry>) {
    let mut log = open(fs, 0).expect("open");
    let model = (0..n)
        .map(|_| append(&mut log, 1).expect("append"))
        .collect();
    (log, model)
}

#[test]
fn full_disk_fails_the_append_and_changes_nothing() {
    let mut failures = 0;
    // Budgets from nothing to several batches, so the disk fills up at every point of an
    // append, a roll included.
    for budget in (0..60u64).map(|i| i * i * 7) {
        let fs = SimFs::new();
        let (mut log, mut model) = log_with(&fs, 25);
        fs.set_space_left(Some(budget));
        let mut full = 0;
        while full < 2 {
            let leo = log.log_end_offset();
            assert!(leo < 10_000, "budget {budget}: the disk never filled up");
            match append(&mut log, 1) {
                Ok(e) => {
                    assert!(
                        full == 0,
                        "budget {budget}: an append after the disk filled up"
                    );
                    model.push(e);
                }
                Err(e) => {
                    assert!(is_enospc(&e), "budget {budget}: {e}");
                    assert_eq!(log.log_end_offset(), leo, "budget {budget}: LEO moved");
                    assert_eq!(read_all(&mut log), model, "budget {budget}");
                    check_files(&fs);
                    full += 1;
                    failures += 1;
                }
            }
        }
        fs.set_space_left(None);
        for _ in 0..20 {
            model.push(append(&mut log, 1).expect("append after space returns"));
        }
        assert_eq!(read_all(&mut log), model, "budget {budget}");
        // And all of it is durable once flushed.
        log.flush(log.log_end_offset(), TS0).expect("flush");
        fs.power_cut(Some(budget));
        drop(log);
        let mut log = open(&fs, 0).expect("reopen");
        assert_eq!(
            read_all(&mut log),
            model,
            "budget {budget}: after a power cut"
        );
    }
    println!("{failures} appends failed on a full disk, each changing nothing");
}

/// The first append of a new leader epoch writes only the batch; the flush that moves the
/// recovery point over it writes the leader-epoch checkpoint first. A disk that is full by then
/// fails that flush (and the roll flush), and the recovery point stays below the epoch's start,
/// so a power cut still finds the epoch's batches above it and rebuilds the entry.
#[test]
fn a_new_epoch_is_checkpointed_by_the_flush_that_covers_it() {
    let fs = SimFs::new();
    let (mut log, mut model) = log_with(&fs, 10);
    let leo = log.log_end_offset();
    log.flush(leo, TS0).expect("flush");
    let checkpoint = Path::new(DIR).join("leader-epoch-checkpoint");
    let written = fs.contents(&checkpoint).expect("written by the flush");
    // Exactly room for the batch: the append needs no more.
    fs.set_space_left(Some(batch_for(leo).len() as u64));
    model.push(append(&mut log, 2).expect("a new epoch's append writes only its batch"));
    assert!(log.leader_epoch_cache().is_unflushed());
    assert_eq!(fs.contents(&checkpoint), Some(written.clone()));
    let leo2 = log.log_end_offset();
    match log.flush(leo2, TS0) {
        Ok(()) => panic!("the checkpoint cannot be written on a full disk"),
        Err(e) => assert!(is_enospc(&e), "{e}"),
    }
    assert_eq!(
        log.recovery_point(),
        leo,
        "the recovery point passed an unwritten epoch"
    );
    fs.set_space_left(None);
    log.roll(TS0).expect("roll");
    fs.set_space_left(Some(0));
    assert!(
        log.take_roll_flush().is_err(),
        "the roll flush writes the epoch first"
    );
    assert!(log.has_roll_flush(), "and stays pending when it cannot");
    assert_eq!(log.recovery_point(), leo);
    fs.power_cut(None);
    drop(log);
    fs.set_space_left(None);
    let mut log = open(&fs, leo).expect("reopen");
    let got = read_all(&mut log);
    assert_eq!(got[..], model[..got.len()]);
    assert_eq!(
        log.leader_epoch_cache().epoch_entries(),
        &epochs_of(&got)[..]
    );
    // With room again the flush writes it, durably.
    model.truncate(got.len());
    model.push(append(&mut log, 3).expect("append"));
    let end = log.log_end_offset();
    log.flush(end, TS0).expect("flush");
    assert!(!log.leader_epoch_cache().is_unflushed());
    fs.power_cut(None);
    drop(log);
    let mut log = open(&fs, end).expect("reopen");
    assert_eq!(read_all(&mut log), model);
    assert_eq!(
        log.leader_epoch_cache().epoch_entries(),
        &epochs_of(&model)[..]
    );
}

#[test]
fn failed_fsync_fails_the_flush_and_keeps_the_recovery_point() {
    let fs = SimFs::new();
    let (mut log, mut model) = log_with(&fs, 20);
    let flushed = log.log_end_offset();
    log.flush(flushed, TS0).expect("flush");
    assert_eq!(log.recovery_point(), flushed);
    for _ in 0..5 {
        model.push(append(&mut log, 1).expect("append"));
    }
    fs.set_fail_sync(true);
    let leo = log.log_end_offset();
    let e = log.flush(leo, TS0).expect_err("fsync fails");
    assert!(matches!(e, StorageError::Io { .. }), "{e}");
    assert_eq!(log.recovery_point(), flushed, "the recovery point advanced");
    // Appends need no fsync, until one rolls: creating the new segment fsyncs the directory, so
    // it fails and changes nothing.
    let mut failed = false;
    for _ in 0..100 {
        let leo = log.log_end_offset();
        match append(&mut log, 1) {
            Ok(e) => model.push(e),
            Err(e) => {
                assert!(matches!(e, StorageError::Io { .. }), "{e}");
                assert_eq!(log.log_end_offset(), leo);
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "a roll must have been needed");
    assert_eq!(read_all(&mut log), model);
    check_files(&fs);
    assert_eq!(log.recovery_point(), flushed);
    // Power goes: what was flushed before the failures is there, valid; the rest may be gone.
    fs.power_cut(Some(7));
    drop(log);
    fs.set_fail_sync(false);
    let mut log = open(&fs, flushed).expect("reopen");
    let got = read_all(&mut log);
    assert!(log.log_end_offset() >= flushed);
    assert_eq!(got[..], model[..got.len()]);
    let mut model = got;
    model.push(append(&mut log, 2).expect("append"));
    let leo = log.log_end_offset();
    log.flush(leo, TS0).expect("flush");
    assert_eq!(log.recovery_point(), leo);
    assert_eq!(read_all(&mut log), model);
}

#[test]
fn a_roll_leaves_its_fsync_to_a_flush_that_moves_the_recovery_point_when_done() {
    let fs = SimFs::new();
    let (mut log, mut model) = log_with(&fs, 5);
    assert_eq!(log.number_of_segments(), 1);
    log.roll(TS0).expect("roll");
    let closed_at = log.log_end_offset();
    for _ in 0..3 {
        model.push(append(&mut log, 1).expect("append"));
    }
    // The roll synced nothing: the recovery point stays where it was, a flush is pending.
    assert_eq!(log.recovery_point(), 0);
    assert!(log.has_roll_flush());
    // The epoch-1 entry is written when the flush is taken (before any fsync can fail here).
    log.leader_epoch_cache_mut()
        .flush()
        .expect("epoch checkpoint");
    // It fails: handed back, the recovery point still there.
    fs.set_fail_sync(true);
    let flush = log.take_roll_flush().expect("take").expect("pending");
    assert_eq!(flush.up_to(), closed_at);
    assert!(matches!(flush.run(), Err(StorageError::Io { .. })));
    log.abandon_flush(flush);
    assert_eq!(log.recovery_point(), 0);
    assert!(log.has_roll_flush());
    fs.set_fail_sync(false);
    // Taken again; the log takes appends while it runs (no lock held in between).
    let flush = log.take_roll_flush().expect("take").expect("pending");
    model.push(append(&mut log, 1).expect("append"));
    flush.run().expect("fsync");
    model.push(append(&mut log, 1).expect("append"));
    log.complete_flush(flush);
    assert_eq!(log.recovery_point(), closed_at);
    assert!(!log.has_roll_flush());
    assert!(log.take_roll_flush().expect("take").is_none());
    // Power goes: all below the recovery point is there, whatever else is lost.
    fs.power_cut(None);
    drop(log);
    let mut log = open(&fs, closed_at).expect("reopen");
    let got = read_all(&mut log);
    assert!(log.log_end_offset() >= closed_at, "flushed offsets lost");
    assert_eq!(got[..], model[..got.len()]);
}

#[test]
fn a_truncation_voids_a_roll_flush_taken_before_it() {
    let fs = SimFs::new();
    let (mut log, _) = log_with(&fs, 5);
    log.roll(TS0).expect("roll");
    let closed_at = log.log_end_offset();
    append(&mut log, 1).expect("append");
    let flush = log.take_roll_flush().expect("take").expect("pending");
    flush.run().expect("fsync");
    // A follower truncates below the flushed offsets and appends anew before the flush is
    // completed: those appends were not synced, so the recovery point must not cover them.
    let to = closed_at - 3;
    assert!(log.truncate_to(to, TS0).expect("truncate"));
    for _ in 0..3 {
        append(&mut log, 2).expect("append");
    }
    assert!(log.log_end_offset() > closed_at);
    log.complete_flush(flush);
    assert!(log.recovery_point() <= to, "{}", log.recovery_point());
}
