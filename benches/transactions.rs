//! Transactions bench (`cargo bench --bench transactions`): the release `rafka` binary as a
//! process on loopback (started by `benches/e2e/support.rs`), driven by librdkafka.
//!
//! - **Throughput**, in one run: an idempotent, non-transactional producer sends `N` records of
//!   1 KiB (`BENCH_TXN_RECORDS`, default 100,000) to a one-partition topic and flushes; then a
//!   transactional producer sends `N` records in transactions of 100, 1,000 and 10,000 records
//!   (begin, send, commit). Records/s and MiB/s from the first send to the last acknowledgement
//!   (the last commit's answer for transactions). Same producer settings throughout
//!   (`linger.ms=5`, acks=all as idempotence requires).
//! - **Commit latency**: 200 transactions of 100 records; each one's records are flushed
//!   (acknowledged) first, then `commit_transaction` is timed: *EndTxn answered* is when it
//!   returns (the coordinator has replicated PrepareCommit), *markers written* is when the
//!   partition's last stable offset (ListOffsets read_committed, polled without pause) has passed
//!   the transaction's COMMIT marker, i.e. when a read_committed consumer can see it. p50 / p99.
//!
//! The broker runs with one replica of `__transaction_state` and `__consumer_offsets` (Kafka's
//! single-node example), `RUST_LOG=warn`.

#[path = "e2e/support.rs"]
#[allow(dead_code)]
mod support;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::time::{Duration, Instant};
use support::{client_config, Broker};

const RECORD_BYTES: usize = 1024;
const BOUND: Duration = Duration::from_secs(120);
const LATENCY_TRANSACTIONS: usize = 200;
const LATENCY_TXN_RECORDS: usize = 100;

fn producer(bootstrap: &str, transactional_id: Option<&str>) -> BaseProducer {
    let mut c = client_config(bootstrap);
    c.set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "200000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("message.timeout.ms", "120000");
    if let Some(id) = transactional_id {
        c.set("transactional.id", id)
            .set("transaction.timeout.ms", "120000");
    }
    c.create().expect("producer")
}

/// Sends `n` records to partition 0 of `topic`, retrying while librdkafka's queue is full.
fn send(p: &BaseProducer, topic: &str, n: usize, payload: &[u8]) {
    for _ in 0..n {
        let mut record = BaseRecord::<(), [u8]>::to(topic)
            .payload(payload)
            .partition(0);
        let deadline = Instant::now() + BOUND;
        loop {
            match p.send(record) {
                Ok(()) => break,
                Err((e, r)) => {
                    assert!(Instant::now() < deadline, "send: {e}");
                    record = r;
                    p.poll(Duration::from_millis(1));
                }
            }
        }
    }
}

fn report(what: &str, records: usize, elapsed: Duration) -> f64 {
    let rate = records as f64 / elapsed.as_secs_f64();
    println!(
        "{what:<32} {records:>8} records in {:>7.3} s: {:>9.0} records/s, {:>7.1} MiB/s",
        elapsed.as_secs_f64(),
        rate,
        rate * RECORD_BYTES as f64 / (1 << 20) as f64
    );
    rate
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: usize = std::env::var("BENCH_TXN_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start_with(
        dir.path(),
        "transaction.state.log.replication.factor=1\n\
         transaction.state.log.min.isr=1\n\
         offsets.topic.replication.factor=1",
    );
    let bootstrap = broker.bootstrap();
    let payload = vec![b'x'; RECORD_BYTES];

    println!("== throughput: {n} records of {RECORD_BYTES} B, one partition");
    broker.create_topic("bench-idempotent", &[]);
    let p = producer(&bootstrap, None);
    let start = Instant::now();
    send(&p, "bench-idempotent", n, &payload);
    p.flush(BOUND).expect("flush");
    let base = report("idempotent (no transactions)", n, start.elapsed());
    drop(p);

    for size in [100usize, 1_000, 10_000] {
        let topic = format!("bench-txn-{size}");
        broker.create_topic(&topic, &[]);
        let p = producer(&bootstrap, Some(&format!("bench-{size}")));
        p.init_transactions(BOUND).expect("init_transactions");
        let start = Instant::now();
        let mut sent = 0;
        while sent < n {
            let k = size.min(n - sent);
            p.begin_transaction().expect("begin");
            send(&p, &topic, k, &payload);
            // BaseProducer serves delivery reports only when polled: flush (which polls) first,
            // as commit_transaction would flush anyway.
            p.flush(BOUND).expect("flush");
            p.commit_transaction(BOUND).expect("commit");
            sent += k;
        }
        let rate = report(&format!("transactions of {size}"), n, start.elapsed());
        println!("{:<32} {:>7.1} % of idempotent", "", 100.0 * rate / base);
    }

    println!(
        "== commit latency: {LATENCY_TRANSACTIONS} transactions of {LATENCY_TXN_RECORDS} records"
    );
    let topic = "bench-txn-latency";
    broker.create_topic(topic, &[]);
    let p = producer(&bootstrap, Some("bench-latency"));
    p.init_transactions(BOUND).expect("init_transactions");
    let lso: BaseConsumer = client_config(&bootstrap)
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let mut answered = Vec::with_capacity(LATENCY_TRANSACTIONS);
    let mut visible = Vec::with_capacity(LATENCY_TRANSACTIONS);
    for i in 0..LATENCY_TRANSACTIONS {
        p.begin_transaction().expect("begin");
        send(&p, topic, LATENCY_TXN_RECORDS, &payload);
        p.flush(BOUND).expect("flush");
        // Records 0..end of this transaction are in the log; its marker goes at `end`, so the
        // LSO passes it at end + 1.
        let end = ((i + 1) * (LATENCY_TXN_RECORDS + 1) - 1) as i64;
        let t0 = Instant::now();
        p.commit_transaction(BOUND).expect("commit");
        answered.push(t0.elapsed());
        loop {
            let (_, high) = lso
                .fetch_watermarks(topic, 0, BOUND)
                .expect("ListOffsets read_committed");
            if high > end {
                break;
            }
            assert!(t0.elapsed() < BOUND, "the LSO never passed {end}: {high}");
        }
        visible.push(t0.elapsed());
    }
    answered.sort();
    visible.sort();
    for (what, v) in [
        ("EndTxn answered", &answered),
        ("markers written (LSO moved)", &visible),
    ] {
        println!(
            "{what:<32} p50 {:>8.2} ms   p99 {:>8.2} ms   max {:>8.2} ms",
            percentile(v, 0.50).as_secs_f64() * 1e3,
            percentile(v, 0.99).as_secs_f64() * 1e3,
            v[v.len() - 1].as_secs_f64() * 1e3
        );
    }
}
