//! The storage side of many partitions on one node, without the broker: N logs created in one
//! directory, one record appended to each, a clean shutdown and reopen, one more record each and
//! a reopen without shutdown (as after SIGKILL: every log recovered from its recovery point).
//! Prints each phase's wall time and the process's RSS above the start, per log.
//!
//! `RAFKA_RECOVERY_THREADS=8 cargo run --release -p rafka-storage --example open_logs -- 20000 [dir]`
//! (the directory defaults to one under `target/tmp`, removed at the end). The process's
//! `RLIMIT_NOFILE` decides the file budget, as in the broker. With `RAFKA_OPEN_ONLY=1` and a
//! `dir` a run left, only the open is run and timed; `RAFKA_OPEN_ONLY=clean` then shuts down
//! cleanly (a full run leaves the directory as a crash does).

use bytes::Bytes;
use rafka_protocol::record_batch::RecordBatchBuilder;
use rafka_storage::checkpoint::TopicPartition;
use rafka_storage::fs::DiskFs;
use rafka_storage::log_manager::lock_log;
use rafka_storage::{FileBudget, LogConfig, LogManager};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_millis() as i64)
}

fn batch() -> Bytes {
    let mut b = RecordBatchBuilder::new(0);
    // A real timestamp, as a client sends (a zero one would be a time-index entry of zeros).
    b.append(now_ms(), Some(b"k"), Some(&[b'v'; 100]), &[])
        .expect("a record fits");
    b.build()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let keep = args.next().map(PathBuf::from);
    let tmp = tempfile::tempdir_in(
        std::env::var("CARGO_TARGET_TMPDIR").unwrap_or_else(|_| "target/tmp".into()),
    )
    .or_else(|_| tempfile::tempdir())
    .expect("tempdir");
    let dir = keep.unwrap_or_else(|| tmp.path().to_path_buf());
    let dirs = [dir.join("data")];
    let tps: Vec<TopicPartition> = (0..n)
        .map(|i| TopicPartition::new(format!("p-{:05}", i / 100), (i % 100) as i32))
        .collect();
    let threads: usize = std::env::var("RAFKA_RECOVERY_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(rafka_storage::log_manager::DEFAULT_RECOVERY_THREADS);
    let open = || {
        LogManager::open_with_budget(
            Arc::new(DiskFs),
            &dirs,
            &|_| LogConfig::default(),
            0,
            FileBudget::from_process_limits(),
            threads,
        )
        .expect("open")
    };
    let batch = batch();
    let base = rss_kib();
    let per = |rss: u64| (rss.saturating_sub(base) as f64 * 1024.0) / n as f64;

    if let Some(then) = std::env::var_os("RAFKA_OPEN_ONLY") {
        // Only the restart, of a directory a run left (with `dir` given): for profiling it.
        let t = Instant::now();
        let lm = open();
        println!(
            "open_logs: open {} logs: {:.2} s",
            lm.partitions().len(),
            t.elapsed().as_secs_f64()
        );
        if then == "clean" {
            lm.shutdown(0).expect("shutdown");
        }
        std::mem::forget(lm);
        return;
    }
    let t = Instant::now();
    let lm = open();
    // As the broker creates them: a metadata delta's worth (20 topics of 100) at a time.
    let logs: Vec<_> = tps
        .chunks(2000)
        .flat_map(|chunk| {
            let new: Vec<_> = chunk
                .iter()
                .map(|tp| (tp.clone(), Arc::new(LogConfig::default())))
                .collect();
            lm.create_logs(&new, 0)
        })
        .map(|log| log.expect("create"))
        .collect();
    println!(
        "open_logs: create {n}: {:.2} s, RSS {:.0} B/log",
        t.elapsed().as_secs_f64(),
        per(rss_kib())
    );
    let t = Instant::now();
    for log in &logs {
        lock_log(log)
            .append_as_leader(&batch, 1, now_ms())
            .expect("append");
    }
    println!(
        "open_logs: append one each: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    lm.shutdown(0).expect("shutdown");
    drop(logs);
    drop(lm);
    println!(
        "open_logs: clean shutdown: {:.2} s",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let lm = open();
    println!(
        "open_logs: open after a clean shutdown: {:.2} s, RSS {:.0} B/log",
        t.elapsed().as_secs_f64(),
        per(rss_kib())
    );
    let t = Instant::now();
    for tp in &tps {
        let log = lm.get_log(tp).expect("log");
        lock_log(&log)
            .append_as_leader(&batch, 1, now_ms())
            .expect("append");
    }
    println!(
        "open_logs: append one each: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    lm.checkpoint().expect("checkpoint");
    drop(lm);

    let t = Instant::now();
    let lm = open();
    println!(
        "open_logs: open after a crash (recovery): {:.2} s, RSS {:.0} B/log",
        t.elapsed().as_secs_f64(),
        per(rss_kib())
    );
    let t = Instant::now();
    let mut records = 0;
    for tp in &tps {
        let log = lm.get_log(tp).expect("log");
        records += lock_log(&log).log_end_offset();
    }
    assert_eq!(records, 2 * n as i64, "every record recovered");
    println!(
        "open_logs: every log's end read: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    drop(lm);
}
