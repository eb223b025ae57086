//! Log compaction through the real broker: a million updates of a thousand keys, produced by
//! librdkafka in lz4-compressed batches to a topic with `cleanup.policy=compact`, are cleaned by
//! the broker's background cleaner down to at most one record per key below the active segment;
//! a consumer reading from the beginning then sees the latest value of every key, at increasing
//! offsets across the holes compaction left.

mod common;

use common::ffi::BEGINNING;
use common::{create_topic, partition_consumer, segment_files, Cluster, Deadline};
use rafka_protocol::record_batch::RecordBatch;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const TOPIC: &str = "compacted";
const KEYS: u64 = 1_000;
const UPDATES: u64 = 1_000_000;

fn key(i: u64) -> String {
    format!("key-{:04}", i % KEYS)
}

/// Records in the segments below the active one (batch headers' record counts), or `None` if
/// the files changed under the count (a swap).
fn records_below_active(log_dir: &std::path::Path) -> Option<(u64, usize)> {
    let files = segment_files(log_dir, TOPIC, 0);
    let (_active, inactive) = files.split_last()?;
    let mut records = 0;
    for f in inactive {
        let bytes = bytes::Bytes::from(std::fs::read(f).ok()?);
        for b in RecordBatch::batches(bytes) {
            records += u64::try_from(b.ok()?.record_count()).ok()?;
        }
    }
    Some((records, inactive.len()))
}

#[test]
fn a_million_updates_of_a_thousand_keys_compact_to_the_latest_value_of_each() {
    let deadline = Deadline::after(Duration::from_secs(170));
    let cluster = Cluster::start(1, &[("log.cleaner.backoff.ms", "300")]);
    let node = &cluster.nodes[0];
    let admin = common::admin(&node.bootstrap());
    create_topic(
        &admin,
        node,
        TOPIC,
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "1048576"),
            ("min.cleanable.dirty.ratio", "0.01"),
        ],
    );

    let p = common::producer(
        &node.bootstrap(),
        &[
            ("acks", "1"),
            ("linger.ms", "5"),
            ("batch.num.messages", "10000"),
            ("batch.size", "1000000"),
            ("compression.type", "lz4"),
            ("queue.buffering.max.messages", "1000000"),
            ("enable.idempotence", "false"),
        ],
    );
    let t0 = Instant::now();
    for i in 0..UPDATES {
        let (k, v) = (key(i), i.to_string());
        let mut record = BaseRecord::<str, str>::to(TOPIC)
            .partition(0)
            .key(k.as_str())
            .payload(v.as_str());
        loop {
            match p.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    p.poll(Duration::from_millis(5));
                    deadline.check(|| format!("producing update {i}"));
                }
                Err((e, _)) => panic!("send update {i}: {e}"),
            }
        }
        if i % 10_000 == 0 {
            p.poll(Duration::ZERO);
        }
    }
    p.flush(deadline.remaining()).expect("flush");
    println!("produced {UPDATES} updates in {:.2?}", t0.elapsed());

    // The cleaner compacts everything below the active segment to one record per key.
    let log_dir = node.log_dir();
    let t1 = Instant::now();
    let clean_deadline = Deadline::after(Duration::from_secs(60));
    let mut last = None;
    loop {
        let count = records_below_active(&log_dir);
        if let Some((records, segments)) = count {
            if segments > 0 && records <= KEYS {
                println!(
                    "compacted to {records} records in {segments} segments {:.2?} after the last produce",
                    t1.elapsed()
                );
                break;
            }
        }
        last = count.or(last);
        clean_deadline.check(|| {
            format!(
                "compaction: (records, segments) below the active segment {last:?}\n{}",
                node.log_tail(30)
            )
        });
        std::thread::sleep(Duration::from_millis(200));
    }

    // From the beginning: the latest value of every key, offsets increasing.
    let mut c = partition_consumer(&node.bootstrap(), &[("fetch.wait.max.ms", "100")]);
    c.start(TOPIC, 0, BEGINNING);
    let mut latest: BTreeMap<String, (i64, String)> = BTreeMap::new();
    let mut prev = -1;
    let mut read = 0u64;
    while prev < UPDATES as i64 - 1 {
        deadline.check(|| format!("consuming: at offset {prev}, {read} records read"));
        let Some(m) = c.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.unwrap_or_else(|e| panic!("consume after offset {prev}: {e}"));
        assert!(m.offset > prev, "offset {} after {prev}", m.offset);
        prev = m.offset;
        read += 1;
        let k = String::from_utf8(m.key.expect("every record has a key")).expect("utf-8 key");
        let v = String::from_utf8(m.payload.expect("no tombstones")).expect("utf-8 value");
        assert_eq!(v, m.offset.to_string(), "each update kept its offset");
        latest.insert(k, (m.offset, v));
    }
    assert!(
        read < UPDATES / 2,
        "compaction removed most records: {read} read"
    );
    assert_eq!(latest.len() as u64, KEYS, "every key is there");
    for (i, (k, (_, v))) in latest.iter().enumerate() {
        let want = UPDATES - KEYS + i as u64;
        assert_eq!(
            (k.as_str(), v.as_str()),
            (key(want).as_str(), want.to_string().as_str())
        );
    }
    println!("read {read} records from the beginning");
}
